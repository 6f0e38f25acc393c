/* Naive dgemm, C += A * B (ikj loop order), rows shared out by an OpenMP parallel for.
 * Usage: omp_dgemm [N, default 384] [repetitions, default 5]
 * Prints "seconds <median seconds per multiplication>" and a checksum. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void dgemm(int n, const double *restrict a, const double *restrict b,
                  double *restrict c) {
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++)
                c[i * n + j] += aik * b[k * n + j];
        }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 384;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    long nn = (long)n * n;
    double *a = malloc(sizeof(double) * nn), *b = malloc(sizeof(double) * nn);
    double *c = calloc(nn, sizeof(double)), *times = malloc(sizeof(double) * reps);
    if (!a || !b || !c || !times || n < 1 || reps < 1) {
        fprintf(stderr, "out of memory or bad arguments\n");
        return 1;
    }
    for (long i = 0; i < nn; i++) {
        a[i] = (double)(i % 13) * 0.25 - 1.0;
        b[i] = (double)(i % 11) * 0.5 - 2.0;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        dgemm(n, a, b, c);
        times[r] = omp_get_wtime() - t0;
    }
    double sum = 0.0;
    for (long i = 0; i < nn; i++)
        sum += c[i];
    qsort(times, reps, sizeof(double), by_value);
    printf("seconds %.9f\n", times[reps / 2]);
    printf("check %.6f\n", sum);
    return 0;
}
