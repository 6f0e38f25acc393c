/* Copies its input to its output as "<size>:<input>"; with argv[1] == "bad" it passes the host
 * a pointer outside its memory instead. */
#include <faabric.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "bad") == 0) {
        faabric_read_input((void *)0xFFFFFF00u, 4096);
        return 0;
    }
    int size = faabric_input_size();
    char *buf = malloc(size + 1);
    int got = faabric_read_input(buf, size + 1);
    char head[32];
    int n = snprintf(head, sizeof head, "%d:", got);
    faabric_write_output(head, n);
    faabric_write_output(buf, got);
    free(buf);
    return got == size ? 0 : 1;
}
