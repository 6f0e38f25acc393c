/* Sparse matrix-vector product y = A x, A in CSR with 16 nonzeros a row in a fixed
 * pseudo-random pattern, timed by the program itself.
 * Usage: spmv [N rows, default 400000] [repetitions, default 10]
 * Prints "seconds <median seconds per product>" and a checksum, so start-up and
 * compilation are excluded from the figure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NNZ_ROW 16

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void spmv(int n, const int *restrict start, const int *restrict cols,
                 const double *restrict vals, const double *restrict x, double *restrict y) {
    for (int i = 0; i < n; i++) {
        double sum = 0.0;
        for (int e = start[i]; e < start[i + 1]; e++) sum += vals[e] * x[cols[e]];
        y[i] = sum;
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 400000;
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    long nnz = (long)n * NNZ_ROW;
    int *start = malloc(sizeof(int) * ((size_t)n + 1)), *cols = malloc(sizeof(int) * nnz);
    double *vals = malloc(sizeof(double) * nnz), *x = malloc(sizeof(double) * n);
    double *y = malloc(sizeof(double) * n), *times = malloc(sizeof(double) * reps);
    if (!start || !cols || !vals || !x || !y || !times || n < 1 || reps < 1) {
        fprintf(stderr, "out of memory or bad arguments\n");
        return 1;
    }
    uint32_t r = 2463534242u; /* xorshift32: the same pattern natively and in wasm */
    for (long e = 0; e < nnz; e++) {
        r ^= r << 13, r ^= r >> 17, r ^= r << 5;
        cols[e] = (int)(r % (uint32_t)n);
        vals[e] = (double)(r % 64) / 8.0 - 4.0;
    }
    for (int i = 0; i <= n; i++) start[i] = i * NNZ_ROW;
    for (int i = 0; i < n; i++) x[i] = (double)(i % 100) / 10.0;
    for (int k = 0; k < reps; k++) {
        double t0 = seconds();
        spmv(n, start, cols, vals, x, y);
        times[k] = seconds() - t0;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += y[i];
    qsort(times, reps, sizeof(double), by_value);
    printf("seconds %.9f\n", times[reps / 2]);
    printf("check %.6f\n", sum);
    return 0;
}
