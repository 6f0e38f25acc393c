/* STREAM triad with an OpenMP parallel for, a[i] = b[i] + s * c[i], timed by the program.
 * Usage: omp_triad [N doubles per array, default 16M] [repetitions, default 10]
 * Prints "seconds <median seconds per triad>" and a checksum. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 16L << 20;
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n);
    double *c = malloc(sizeof(double) * n), *times = malloc(sizeof(double) * reps);
    if (!a || !b || !c || !times || reps < 1) {
        fprintf(stderr, "out of memory or bad arguments\n");
        return 1;
    }
#pragma omp parallel for
    for (long i = 0; i < n; i++) {
        a[i] = 0.0;
        b[i] = 1.0 + (double)(i % 7);
        c[i] = 2.0 - (double)(i % 5);
    }
    const double s = 3.0;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
#pragma omp parallel for
        for (long i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
        times[r] = omp_get_wtime() - t0;
    }
    double sum = 0.0;
    for (long i = 0; i < n; i += 4096)
        sum += a[i];
    qsort(times, reps, sizeof(double), by_value);
    printf("seconds %.9f\n", times[reps / 2]);
    printf("check %.6f\n", sum);
    return 0;
}
