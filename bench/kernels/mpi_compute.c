/* Compute between MPI barriers: what the asyncify rewrite of movable MPI programs costs.
 *
 * Usage: mpi_compute KIND [N] [iterations, default 5]
 *   dgemm-fn        naive ikj dgemm on N x N doubles (default 384) in a noinline function
 *                   that calls nothing, so asyncify leaves its body alone
 *   dgemm-inline    the same loops written in main's iteration loop: main reaches
 *                   MPI_Barrier (a migration point), so its whole body is instrumented
 *   calls           N calls (default 10^7) from main to a noinline function of a few flops
 *   calls-indirect  the same through a function pointer (asyncify assumes an indirect call
 *                   may unwind, so every one of them is followed by a check)
 * Each iteration runs the kernel, then MPI_Barrier(MPI_COMM_WORLD). Only the kernel is
 * timed (clock_gettime(CLOCK_MONOTONIC)); rank 0 prints "seconds <median per iteration>"
 * and a checksum. Must stay plain C99 + MPI: the same source is built with and without
 * the asyncify step, and nothing in it may depend on which.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum kind { DGEMM_FN, DGEMM_INLINE, CALLS, CALLS_INDIRECT };

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* noinline: clang -O2 would otherwise inline a static function called once into main. */
__attribute__((noinline)) static void dgemm(int n, const double *restrict a,
                                            const double *restrict b, double *restrict c) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
}

__attribute__((noinline)) static double step(double acc, double x) {
    return acc * 0.999999 + x * 1e-9 - 0.5 * acc * 1e-7;
}

/* volatile: the compiler cannot see through the pointer, so the call stays indirect. */
static double (*volatile step_pointer)(double, double) = step;

static int parse_kind(const char *name) {
    const char *names[] = {"dgemm-fn", "dgemm-inline", "calls", "calls-indirect"};
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, names[i]) == 0) return i;
    return -1;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int kind = parse_kind(argc > 1 ? argv[1] : NULL);
    int dgemm_kind = kind == DGEMM_FN || kind == DGEMM_INLINE;
    long size = argc > 2 ? atol(argv[2]) : dgemm_kind ? 384 : 10000000;
    int iterations = argc > 3 ? atoi(argv[3]) : 5;
    int n = dgemm_kind ? (int)size : 1;
    long nn = (long)n * n;
    double *restrict a = malloc(sizeof(double) * nn), *restrict b = malloc(sizeof(double) * nn);
    double *restrict c = calloc(nn, sizeof(double));
    double *times = malloc(sizeof(double) * (iterations > 0 ? iterations : 1));
    if (kind < 0 || !a || !b || !c || !times || size < 1 || iterations < 1) {
        fprintf(stderr, "usage: mpi_compute dgemm-fn|dgemm-inline|calls|calls-indirect "
                        "[N] [iterations]\n");
        MPI_Finalize();
        return 1;
    }
    for (long i = 0; i < nn; i++) {
        a[i] = (double)(i % 13) * 0.25 - 1.0;
        b[i] = (double)(i % 11) * 0.5 - 2.0;
    }
    double acc = 1.0;
    for (int r = 0; r < iterations; r++) {
        double t0 = seconds();
        if (kind == DGEMM_FN) {
            dgemm(n, a, b, c);
        } else if (kind == DGEMM_INLINE) {
            for (int i = 0; i < n; i++)
                for (int k = 0; k < n; k++) {
                    double aik = a[i * n + k];
                    for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
                }
        } else if (kind == CALLS) {
            for (long i = 0; i < size; i++) acc = step(acc, (double)i);
        } else {
            double (*f)(double, double) = step_pointer;
            for (long i = 0; i < size; i++) acc = f(acc, (double)i);
        }
        times[r] = seconds() - t0;
        MPI_Barrier(MPI_COMM_WORLD);
    }
    double sum = acc;
    for (long i = 0; i < nn; i++) sum += c[i];
    qsort(times, iterations, sizeof(double), by_value);
    if (rank == 0) {
        printf("seconds %.9f\n", times[iterations / 2]);
        printf("check %.6f\n", sum);
    }
    MPI_Finalize();
    return 0;
}
