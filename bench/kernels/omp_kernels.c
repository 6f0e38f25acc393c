/* OpenMP kernel families for teams that span hosts (bench/omp_kernels.py).
 *
 *   omp_kernels KERNEL N REPS
 *
 * KERNEL is one of dgemm (N x N matmul, `omp for` over rows), stream (triad over N doubles),
 * transpose (blocked, N x N), stencil (one 5-point Jacobi sweep of N x N per repetition),
 * spmv (CSR matvec, N rows, 16 nonzeros a row), reduce (`reduction(+:)` over N doubles),
 * atomics (N `omp atomic` increments of one counter per thread) and wavefront (a pipeline
 * over N columns handing on through flags and `omp flush`); capture (bench/teams.py): the
 * team's last thread, on the other host when the team spans, does N `omp atomic capture`
 * increments of a shared counter. Each repetition is the kernel's parallel region(s); one
 * warm-up, then REPS timed with omp_get_wtime. Prints one line:
 *   team=<threads> seconds=<median> check=<value>[ op=<median seconds per capture>]
 * (bench/omp_kernels.py launches it with REPS=1: a region that spanned hosts twice may then
 * be kept on one host by the runtime.)
 * The check does not depend on the team size (atomics: the count divided by the team), so
 * it equals the native build's whenever every write reached memory. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS 1000
#define BLOCK 32     /* transpose tile */
#define NNZ_ROW 16   /* spmv nonzeros per row */
#define WAVE_ROWS 512
#define MAX_TEAM 64

static long n;
static int team;
static double *a, *b, *c;
static int *cols, done_upto[MAX_TEAM];
static long atomic_counter, captured;

#define NOTE_TEAM()                                                                          \
    do {                                                                                      \
        if (omp_get_thread_num() == 0)                                                        \
            team = omp_get_num_threads();                                                     \
    } while (0)

static double *doubles(long count) {
    double *p = calloc((size_t)count, sizeof(double));
    if (p == NULL) {
        fprintf(stderr, "cannot allocate %ld doubles\n", count);
        exit(3);
    }
    return p;
}

static double sum_of(const double *v, long count) {
    double sum = 0;
    for (long i = 0; i < count; i++)
        sum += v[i] * (double)(1 + i % 7);
    return sum;
}

/* -- dgemm: C = A B ------------------------------------------------------------------------ */

static void dgemm_setup(void) {
    a = doubles(n * n), b = doubles(n * n), c = doubles(n * n);
    for (long i = 0; i < n * n; i++) {
        a[i] = (double)(i % 13) * 0.25 - 1.0;
        b[i] = (double)(i % 11) * 0.5 - 2.0;
    }
}

static void dgemm_run(void) {
#pragma omp parallel
    {
        NOTE_TEAM();
#pragma omp for schedule(static)
        for (long i = 0; i < n; i++) {
            double *restrict row = c + i * n;
            for (long j = 0; j < n; j++)
                row[j] = 0;
            for (long k = 0; k < n; k++) {
                double aik = a[i * n + k];
                const double *restrict bk = b + k * n;
                for (long j = 0; j < n; j++)
                    row[j] += aik * bk[j];
            }
        }
    }
}

static double dgemm_check(void) { return sum_of(c, n * n); }

/* -- stream: a = b + s c ------------------------------------------------------------------- */

static void stream_setup(void) {
    a = doubles(n), b = doubles(n), c = doubles(n);
    for (long i = 0; i < n; i++)
        b[i] = (double)(i % 1000), c[i] = (double)(i % 37);
}

static void stream_run(void) {
    const double s = 3.0;
#pragma omp parallel
    {
        NOTE_TEAM();
#pragma omp for schedule(static)
        for (long i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
    }
}

static double stream_check(void) { return sum_of(a, n); }

/* -- transpose: B = A^T in BLOCK x BLOCK tiles ---------------------------------------------- */

static void transpose_setup(void) {
    a = doubles(n * n), b = doubles(n * n);
    for (long i = 0; i < n * n; i++)
        a[i] = (double)(i % 1000);
}

static void transpose_run(void) {
#pragma omp parallel
    {
        NOTE_TEAM();
#pragma omp for schedule(static)
        for (long ib = 0; ib < n; ib += BLOCK)
            for (long jb = 0; jb < n; jb += BLOCK)
                for (long i = ib; i < ib + BLOCK && i < n; i++)
                    for (long j = jb; j < jb + BLOCK && j < n; j++)
                        b[j * n + i] = a[i * n + j];
    }
}

static double transpose_check(void) { return sum_of(b, n * n); }

/* -- stencil: one Jacobi sweep from a into b, then the two swap ----------------------------- */

static void stencil_setup(void) {
    a = doubles(n * n), b = doubles(n * n);
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++)
            a[i * n + j] = b[i * n + j] = (i == 0 || j == 0) ? 100.0 : (double)((i * j) % 17);
}

static void stencil_run(void) {
#pragma omp parallel
    {
        NOTE_TEAM();
#pragma omp for schedule(static)
        for (long i = 1; i < n - 1; i++)
            for (long j = 1; j < n - 1; j++)
                b[i * n + j] = 0.25 * (a[(i - 1) * n + j] + a[(i + 1) * n + j] +
                                       a[i * n + j - 1] + a[i * n + j + 1]);
    }
    double *t = a;
    a = b, b = t;
}

static double stencil_check(void) { return sum_of(a, n * n); }

/* -- spmv: y = A x, A in CSR with a fixed pseudo-random pattern ----------------------------- */

static void spmv_setup(void) {
    a = doubles(n * NNZ_ROW), b = doubles(n), c = doubles(n);
    cols = malloc(sizeof(int) * (size_t)(n * NNZ_ROW));
    if (cols == NULL)
        exit(3);
    uint32_t x = 2463534242u; /* xorshift32: the same pattern natively and in wasm */
    for (long e = 0; e < n * NNZ_ROW; e++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        cols[e] = (int)(x % (uint32_t)n);
        a[e] = (double)(x % 64) / 8.0 - 4.0;
    }
    for (long i = 0; i < n; i++)
        b[i] = (double)(i % 100) / 10.0;
}

static void spmv_run(void) {
#pragma omp parallel
    {
        NOTE_TEAM();
#pragma omp for schedule(static)
        for (long i = 0; i < n; i++) {
            double y = 0;
            for (long e = i * NNZ_ROW; e < (i + 1) * NNZ_ROW; e++)
                y += a[e] * b[cols[e]];
            c[i] = y;
        }
    }
}

static double spmv_check(void) { return sum_of(c, n); }

/* -- reduce: integer-valued doubles, so the sum is exact in any order ------------------------ */

static double reduced;

static void reduce_setup(void) {
    a = doubles(n);
    for (long i = 0; i < n; i++)
        a[i] = (double)(i % 1024);
}

static void reduce_run(void) {
    double sum = 0;
#pragma omp parallel
    {
        NOTE_TEAM();
#pragma omp for schedule(static) reduction(+ : sum)
        for (long i = 0; i < n; i++)
            sum += a[i];
    }
    reduced = sum;
}

static double reduce_check(void) { return reduced; }

/* -- atomics: N increments of one shared counter per thread --------------------------------- */

static void atomics_setup(void) {}

static void atomics_run(void) {
    atomic_counter = 0;
#pragma omp parallel
    {
        NOTE_TEAM();
        for (long i = 0; i < n; i++) {
#pragma omp atomic
            atomic_counter++;
        }
    }
}

static double atomics_check(void) { return (double)atomic_counter / team; }

/* -- capture: one thread's atomic read-modify-writes ---------------------------------------- */

static double op_times[MAX_REPS]; /* per repetition: the capturing thread's seconds per op */
static int ops_timed;
static int timing; /* set by the driver after the warm-up */

static void capture_setup(void) {}

static void capture_run(void) {
    atomic_counter = 0;
#pragma omp parallel
    {
        NOTE_TEAM();
        if (omp_get_thread_num() == omp_get_num_threads() - 1) {
            long seen = 0;
            double start = omp_get_wtime();
            for (long i = 0; i < n; i++) {
                long value;
#pragma omp atomic capture
                value = ++atomic_counter;
                seen += value == i + 1;
            }
            double took = omp_get_wtime() - start;
            if (timing)
                op_times[ops_timed++] = took / (double)n;
            captured = seen;
        }
    }
}

static double capture_check(void) { return (double)(captured + atomic_counter); }

/* -- wavefront: thread t works on column j once thread t-1 has published it ----------------- */

static void wavefront_setup(void) {
    a = doubles(WAVE_ROWS * n);
    for (long i = 0; i < WAVE_ROWS; i++)
        for (long j = 0; j < n; j++)
            a[i * n + j] = i == 0 ? (double)j : j == 0 ? (double)i : 0;
}

static void wave_block(long lo, long hi, long j) {
    for (long i = lo; i < hi; i++)
        a[i * n + j] = (a[(i - 1) * n + j] + a[i * n + j - 1] + a[(i - 1) * n + j - 1]) / 3.0 + 1;
}

static void wavefront_run(void) {
    for (int t = 0; t < MAX_TEAM; t++)
        done_upto[t] = 0;
#pragma omp parallel
    {
        NOTE_TEAM();
        int t = omp_get_thread_num(), size = omp_get_num_threads();
        long lo = 1 + (WAVE_ROWS - 1) * t / size, hi = 1 + (WAVE_ROWS - 1) * (t + 1) / size;
        for (long j = 1; j < n; j++) {
            if (t > 0) {
#pragma omp flush
                while (done_upto[t - 1] < j) {
#pragma omp flush
                }
            }
            wave_block(lo, hi, j);
#pragma omp flush
            done_upto[t] = (int)j;
#pragma omp flush
        }
    }
}

static double wavefront_check(void) { return sum_of(a, WAVE_ROWS * n); }

/* -- the driver ----------------------------------------------------------------------------- */

struct kernel {
    const char *name;
    void (*setup)(void), (*run)(void);
    double (*check)(void);
};

#define KERNEL(x) {#x, x##_setup, x##_run, x##_check}
static const struct kernel KERNELS[] = {
    KERNEL(dgemm), KERNEL(stream),  KERNEL(transpose), KERNEL(stencil),
    KERNEL(spmv),  KERNEL(reduce), KERNEL(atomics),   KERNEL(wavefront), KERNEL(capture),
};

static int by_value(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

static double median(double *v, long count) {
    qsort(v, (size_t)count, sizeof *v, by_value);
    return count % 2 ? v[count / 2] : 0.5 * (v[count / 2 - 1] + v[count / 2]);
}

int main(int argc, char **argv) {
    int reps = argc == 4 ? atoi(argv[3]) : 0;
    n = argc == 4 ? atol(argv[2]) : 0;
    const struct kernel *k = NULL;
    for (size_t i = 0; argc == 4 && i < sizeof KERNELS / sizeof *KERNELS; i++)
        if (strcmp(argv[1], KERNELS[i].name) == 0)
            k = &KERNELS[i];
    if (k == NULL || n < 3 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "usage: omp_kernels dgemm|stream|transpose|stencil|spmv|reduce|"
                        "atomics|wavefront|capture N REPS (N >= 3, 1 <= REPS <= %d)\n", MAX_REPS);
        return 2;
    }
    static double times[MAX_REPS];
    k->setup();
    k->run(); /* warm-up: the first fork of a spanning team ships the whole memory */
    timing = 1;
    for (int r = 0; r < reps; r++) {
        double start = omp_get_wtime();
        k->run();
        times[r] = omp_get_wtime() - start;
    }
    printf("team=%d seconds=%.6e check=%.17g", team, median(times, reps), k->check());
    if (ops_timed > 0)
        printf(" op=%.6e", median(op_times, ops_timed));
    printf("\n");
    return 0;
}
