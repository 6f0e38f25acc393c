/* Prints its granule index/count, argv and one environment variable; a line to stderr. */
#include <faabric.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("granule %d of %d\n", faabric_granule_index(), faabric_granule_count());
    for (int i = 0; i < argc; i++) {
        printf("argv[%d]=%s\n", i, argv[i]);
    }
    const char *greeting = getenv("GREETING");
    printf("GREETING=%s\n", greeting ? greeting : "(unset)");
    fprintf(stderr, "to stderr\n");
    return 0;
}
