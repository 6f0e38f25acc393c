/* An all-to-all loop for bench/moves.py (the shape of faabric's migration experiment): per
 * iteration, a little compute, MPI_Alltoall of BYTES per pair of ranks, MPI_Barrier on
 * MPI_COMM_WORLD (a migration point).
 *
 * Usage: mpi_alltoall ITERATIONS BYTES WORK
 * Rank 0 prints "loop <seconds>" (CLOCK_REALTIME, which stays one clock when a rank moves;
 * the guest's CLOCK_MONOTONIC restarts on its new worker) and "check <sum>", which depends
 * only on the world size, so moved and unmoved runs print the same.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int iterations = argc > 1 ? atoi(argv[1]) : 100;
    long bytes = argc > 2 ? atol(argv[2]) : 65536;
    long work = argc > 3 ? atol(argv[3]) : 100000;
    long words = bytes / (long)sizeof(int);
    int *out = malloc(sizeof(int) * words * size), *in = malloc(sizeof(int) * words * size);
    if (!out || !in || iterations < 1 || words < 1) {
        fprintf(stderr, "usage: mpi_alltoall ITERATIONS BYTES WORK\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    long check = 0;
    double acc = rank + 1.0;
    MPI_Barrier(MPI_COMM_WORLD);
    double start = wall();
    for (int it = 0; it < iterations; it++) {
        for (long k = 0; k < work; k++) acc = acc * 0.999999 + (double)(k % 7) * 1e-6;
        for (long j = 0; j < words * size; j++) out[j] = rank * 1000 + (int)(j / words) + it;
        MPI_Alltoall(out, (int)words, MPI_INT, in, (int)words, MPI_INT, MPI_COMM_WORLD);
        for (int j = 0; j < size; j++) check += in[j * words] + in[j * words + words - 1];
        MPI_Barrier(MPI_COMM_WORLD);
    }
    double loop = wall() - start;
    long total = 0;
    MPI_Reduce(&check, &total, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    volatile double keep = acc; /* the compute must not be optimised away */
    (void)keep;
    if (rank == 0) printf("loop %.6f\ncheck %ld\n", loop, total);
    MPI_Finalize();
    return 0;
}
