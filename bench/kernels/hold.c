/* A blocker that holds its slot without using a core: sleeps argv[1] milliseconds in 5 ms
 * slices (so a planner reset stops it within a slice), then exits 0. */
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    double end = now_ms() + (argc > 1 ? atof(argv[1]) : 1000.0);
    struct timespec slice = {0, 5 * 1000 * 1000};
    while (now_ms() < end) nanosleep(&slice, NULL);
    return 0;
}
