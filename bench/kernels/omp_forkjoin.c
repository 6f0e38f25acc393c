/* Fork/join cost of an empty OpenMP parallel region, timed by the program itself.
 * Usage: omp_forkjoin [regions per block, default 10000] [blocks, default 5]
 * Prints "seconds <median seconds per region>" and "loop <median seconds per block>". */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    int regions = argc > 1 ? atoi(argv[1]) : 10000;
    int blocks = argc > 2 ? atoi(argv[2]) : 5;
    double *times = malloc(sizeof(double) * blocks);
    volatile int sink = 0;
#pragma omp parallel
    sink++;
    for (int b = 0; b < blocks; b++) {
        double t0 = omp_get_wtime();
        for (int r = 0; r < regions; r++) {
#pragma omp parallel
            {
                if (omp_get_thread_num() == 0)
                    sink++;
            }
        }
        times[b] = omp_get_wtime() - t0;
    }
    qsort(times, blocks, sizeof(double), by_value);
    printf("seconds %.9f\n", times[blocks / 2] / regions);
    printf("loop %.9f\n", times[blocks / 2]);
    printf("threads %d\n", omp_get_max_threads());
    return 0;
}
