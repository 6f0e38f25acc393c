/* Busy-waits for argv[1] milliseconds (default 200), then prints its granule index. */
#include <faabric.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    double ms = argc > 1 ? atof(argv[1]) : 200.0;
    double end = now_ms() + ms;
    while (now_ms() < end) {
    }
    printf("spun %d\n", faabric_granule_index());
    return 0;
}
