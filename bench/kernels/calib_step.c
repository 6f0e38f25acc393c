/* The reference step of the replay's cost model (bench/calibrate.py): one unit of trace work
 * is one step of this program at the calibration's fixed arguments, run by one rank.
 *
 * Usage: calib_step N STEPS PAIR_BYTES
 * Each rank holds A, B and C, N x N doubles. One step: C += A x B (naive ikj dgemm, N^3
 * multiply-adds, in a noinline function), then MPI_Alltoall of PAIR_BYTES to every rank
 * (itself included) taken from C, then MPI_Allreduce of one double (the residual of an
 * iterative solver). Every pair of ranks exchanges the same bytes each step: the pattern the
 * replay's cross-host pair cost assumes. An MPI_Barrier precedes the loop. Rank 0 times every
 * step (clock_gettime(CLOCK_MONOTONIC); its collectives wait for the slowest rank) and
 * prints "step <median seconds per step>", "compute <median seconds of the dgemm alone>",
 * "memory <MiB of the rank's linear memory>" and "check <sum>".
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static double median(double *values, int n) {
    qsort(values, n, sizeof(double), by_value);
    return values[n / 2];
}

__attribute__((noinline)) static void dgemm(int n, const double *restrict a,
                                            const double *restrict b, double *restrict c) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
}

static double memory_mib(void) {
#ifdef __wasm__
    return (double)__builtin_wasm_memory_size(0) * 65536.0 / (1 << 20);
#else
    return 0.0;
#endif
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int n = argc > 1 ? atoi(argv[1]) : 512;
    int steps = argc > 2 ? atoi(argv[2]) : 5;
    long pair = argc > 3 ? atol(argv[3]) : 65536;
    long nn = (long)n * n, words = pair / (long)sizeof(double);
    double *a = malloc(sizeof(double) * nn), *b = malloc(sizeof(double) * nn);
    double *c = calloc(nn > 0 ? nn : 1, sizeof(double));
    double *out = malloc(sizeof(double) * (words > 0 ? words : 1) * size);
    double *in = malloc(sizeof(double) * (words > 0 ? words : 1) * size);
    double *step = malloc(sizeof(double) * (steps > 0 ? steps : 1));
    double *compute = malloc(sizeof(double) * (steps > 0 ? steps : 1));
    if (!a || !b || !c || !out || !in || !step || !compute || n < 1 || steps < 1 || words < 1) {
        fprintf(stderr, "usage: calib_step N STEPS PAIR_BYTES (or out of memory)\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (long i = 0; i < nn; i++) {
        a[i] = (double)((i + rank) % 13) * 0.25 - 1.0;
        b[i] = (double)(i % 11) * 0.5 - 2.0;
    }
    double residual = 0.0;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int s = 0; s < steps; s++) {
        double t0 = seconds();
        dgemm(n, a, b, c);
        double t1 = seconds();
        for (long j = 0; j < words * size; j++) out[j] = c[j % nn] + (double)s;
        MPI_Alltoall(out, (int)words, MPI_DOUBLE, in, (int)words, MPI_DOUBLE, MPI_COMM_WORLD);
        double local = 0.0;
        for (int r = 0; r < size; r++) local += in[r * words] + in[r * words + words - 1];
        MPI_Allreduce(&local, &residual, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        step[s] = seconds() - t0;
        compute[s] = t1 - t0;
    }
    double sum = residual;
    for (long i = 0; i < nn; i += n + 1) sum += c[i];
    if (rank == 0) {
        printf("step %.9f\n", median(step, steps));
        printf("compute %.9f\n", median(compute, steps));
        printf("memory %.3f\n", memory_mib());
        printf("check %.6f\n", sum);
    }
    MPI_Finalize();
    return 0;
}
