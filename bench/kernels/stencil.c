/* 5-point Jacobi stencil on an N x N grid of doubles: each repetition is one sweep from a
 * into b, then the two swap. Timed by the program itself.
 * Usage: stencil [N, default 1024] [repetitions, default 20]
 * Prints "seconds <median seconds per sweep>" and a checksum, so start-up and compilation
 * are excluded from the figure. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void sweep(int n, const double *restrict a, double *restrict b) {
    for (int i = 1; i < n - 1; i++)
        for (int j = 1; j < n - 1; j++)
            b[i * n + j] = 0.25 * (a[(i - 1) * n + j] + a[(i + 1) * n + j] + a[i * n + j - 1] +
                                   a[i * n + j + 1]);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    long nn = (long)n * n;
    double *a = malloc(sizeof(double) * nn), *b = malloc(sizeof(double) * nn);
    double *times = malloc(sizeof(double) * reps);
    if (!a || !b || !times || n < 3 || reps < 1) {
        fprintf(stderr, "out of memory or bad arguments\n");
        return 1;
    }
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++)
            a[i * n + j] = b[i * n + j] = (i == 0 || j == 0) ? 100.0 : (double)((i * j) % 17);
    for (int k = 0; k < reps; k++) {
        double t0 = seconds();
        sweep(n, a, b);
        times[k] = seconds() - t0;
        double *t = a;
        a = b, b = t;
    }
    double sum = 0.0;
    for (long i = 0; i < nn; i++) sum += a[i];
    qsort(times, reps, sizeof(double), by_value);
    printf("seconds %.9f\n", times[reps / 2]);
    printf("check %.6f\n", sum);
    return 0;
}
