/* OpenMP regions meant to span hosts (bench/teams.py).
 *
 *   omp_span region MIB REPS   fill MIB MiB with incompressible bytes, then time REPS parallel
 *                              regions, each a `omp for` over the pages writing one byte in
 *                              every 100th page (1 % of the pages) plus a reduction; prints
 *                              "seconds <median per region>"
 *   omp_span sync N REPS       in one region, N barriers, then N critical sections per thread
 *                              (every hand-over of the lock may cross hosts), REPS times;
 *                              prints "barrier <median s per barrier>" and
 *                              "critical <median s per critical section entered>"
 *
 * Both print "team <threads>" and "check <value>" (the same natively and in wasm when the
 * other hosts' writes came back at the joins). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096L
#define STRIDE 100L
#define MAX_REPS 1000

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int region(long mib, int reps) {
    long bytes = mib << 20, pages = bytes / PAGE;
    uint64_t *words = malloc((size_t)bytes);
    if (words == NULL) {
        fprintf(stderr, "cannot allocate %ld MiB\n", mib);
        return 3;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift64: nothing to compress or skip */
    for (long i = 0; i < bytes / 8; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        words[i] = x;
    }
    unsigned char *buf = (unsigned char *)words;
    double times[MAX_REPS];
    long sum = 0;
    int team = 0;
    for (int r = 0; r < reps; r++) {
        double start = omp_get_wtime();
        sum = 0;
#pragma omp parallel reduction(+ : sum)
        {
#pragma omp single nowait
            team = omp_get_num_threads();
#pragma omp for schedule(static)
            for (long p = 0; p < pages; p += STRIDE) {
                buf[p * PAGE] += 1;
                sum += buf[p * PAGE];
            }
        }
        times[r] = omp_get_wtime() - start;
    }
    long check = sum;
    for (long p = 0; p < pages; p += STRIDE)
        check += buf[p * PAGE + 1] + buf[p * PAGE];
    printf("team %d\ncheck %ld\nseconds %.6e\n", team, check, median(times, reps));
    free(words);
    return 0;
}

static int sync_bench(int n, int reps) {
    double barriers[MAX_REPS], criticals[MAX_REPS];
    long counter = 0;
    int team = 0;
    for (int r = 0; r < reps; r++) {
#pragma omp parallel
        {
#pragma omp single
            team = omp_get_num_threads();
            /* the single's implied barrier lines the threads up before the clock starts */
            double start = omp_get_wtime();
            for (int i = 0; i < n; i++) {
#pragma omp barrier
            }
            double middle = omp_get_wtime();
            for (int i = 0; i < n; i++) {
#pragma omp critical
                counter++;
            }
#pragma omp barrier
            if (omp_get_thread_num() == 0) {
                barriers[r] = (middle - start) / n;
                criticals[r] = (omp_get_wtime() - middle) / ((double)n * team);
            }
        }
    }
    printf("team %d\ncheck %ld\nbarrier %.6e\ncritical %.6e\n", team, counter,
           median(barriers, reps), median(criticals, reps));
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4 || atoi(argv[3]) < 1 || atoi(argv[3]) > MAX_REPS) {
        fprintf(stderr, "usage: omp_span region MIB REPS | sync N REPS\n");
        return 2;
    }
    int reps = atoi(argv[3]);
    if (strcmp(argv[1], "region") == 0)
        return region(atol(argv[2]), reps);
    if (strcmp(argv[1], "sync") == 0)
        return sync_bench(atoi(argv[2]), reps);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
