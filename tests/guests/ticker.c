/* Prints argv[1] lines (default 3), "tick N of granule G", one every argv[2] milliseconds
 * (default 500), flushing each; a line to stderr after the first. */
#include <faabric.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    int lines = argc > 1 ? atoi(argv[1]) : 3;
    long ms = argc > 2 ? atol(argv[2]) : 500;
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    for (int i = 0; i < lines; i++) {
        if (i > 0)
            nanosleep(&pause, NULL);
        printf("tick %d of granule %d\n", i, faabric_granule_index());
        fflush(stdout);
        if (i == 0) {
            fprintf(stderr, "started %d\n", faabric_granule_index());
            fflush(stderr);
        }
    }
    return 0;
}
