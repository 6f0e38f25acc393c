/* How long an MPI rank that migrates stops: bench/moves.py runs it as 2 ranks on 2 workers
 * and frees a slot next to one of them, so the other moves to it at a barrier.
 *
 * Usage: mpi_pause MIB ITERATIONS [STEP_MS, default 10]
 * Each rank allocates MIB MiB and writes every byte (so the whole memory is real and must
 * travel), then loops: spin STEP_MS ms, MPI_Barrier(MPI_COMM_WORLD) (a migration point),
 * record the time. Each rank prints one line per iteration, "t RANK I MONO REAL", with
 * clock_gettime(CLOCK_MONOTONIC) and (CLOCK_REALTIME) in seconds, and at the end
 * "check RANK OK|BAD" (its memory still holds what it wrote). The spin measures only
 * differences within one iteration, so a clock that restarts when a rank moves cannot
 * stretch it.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned char mark(long page, int rank) { return (unsigned char)(page * 7 + rank + 1); }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long mib = argc > 1 ? atol(argv[1]) : 16;
    int iterations = argc > 2 ? atoi(argv[2]) : 200;
    double step = (argc > 3 ? atof(argv[3]) : 10.0) * 1e-3;
    long bytes = mib << 20;
    unsigned char *memory = malloc(bytes > 0 ? bytes : 1);
    double *mono = malloc(sizeof(double) * (iterations > 0 ? iterations : 1));
    double *real = malloc(sizeof(double) * (iterations > 0 ? iterations : 1));
    if (!memory || !mono || !real || mib < 0 || iterations < 1) {
        fprintf(stderr, "usage: mpi_pause MIB ITERATIONS [STEP_MS] (or out of memory)\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    memset(memory, 0x5a, bytes);
    for (long p = 0; p < bytes / PAGE; p++) memory[p * PAGE] = mark(p, rank);
    volatile double sink = 0;
    for (int i = 0; i < iterations; i++) {
        double start = now(CLOCK_MONOTONIC);
        while (now(CLOCK_MONOTONIC) - start < step) sink += 1.0;
        MPI_Barrier(MPI_COMM_WORLD);
        mono[i] = now(CLOCK_MONOTONIC);
        real[i] = now(CLOCK_REALTIME);
    }
    int ok = 1;
    for (long p = 0; p < bytes / PAGE; p++)
        ok &= memory[p * PAGE] == mark(p, rank) && memory[p * PAGE + 1] == 0x5a;
    for (int i = 0; i < iterations; i++)
        printf("t %d %d %.9f %.9f\n", rank, i, mono[i], real[i]);
    printf("check %d %s\n", rank, ok ? "OK" : "BAD");
    MPI_Finalize();
    return 0;
}
