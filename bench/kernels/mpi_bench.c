/* MPI micro-benchmarks, built unchanged with `faabric cc` and with OpenMPI's `mpicc`.
 *
 * Usage: mpi_bench [--quick]
 * Rank 0 prints one line per measurement: "<what> <bytes> <median seconds>", where
 * ping-pong times are one-way (half a round trip between ranks 0 and size-1, the pair most
 * likely to be on different hosts) and collective times are per call, each the median over
 * repetitions that start together after a barrier.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS 2000

static double samples[MAX_REPS];

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(int n) {
    qsort(samples, n, sizeof(double), cmp_double);
    return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

static int reps_for(long bytes, int quick) {
    int reps = bytes <= 65536 ? 1000 : bytes <= (1 << 20) ? 100 : 20;
    return quick ? reps / 4 + 3 : reps;
}

static void pingpong(char *buf, long bytes, int quick, int rank, int size) {
    int peer = size - 1, reps = reps_for(bytes, quick);
    for (int i = -3; i < reps; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        if (rank == 0) {
            MPI_Send(buf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
            MPI_Recv(buf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == peer) {
            MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
        }
        if (i >= 0) samples[i] = (MPI_Wtime() - start) / 2;
    }
    if (rank == 0) printf("pingpong %ld %.9f\n", bytes, median(reps));
}

static void allreduce(double *in, double *out, long bytes, int quick, int rank) {
    int reps = reps_for(bytes, quick), count = (int)(bytes / sizeof(double));
    for (int i = -3; i < reps; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        MPI_Allreduce(in, out, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (i >= 0) samples[i] = MPI_Wtime() - start;
    }
    if (rank == 0) printf("allreduce %ld %.9f\n", bytes, median(reps));
}

static void bcast(char *buf, long bytes, int quick, int rank) {
    int reps = reps_for(bytes, quick);
    for (int i = -3; i < reps; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (i >= 0) samples[i] = MPI_Wtime() - start;
    }
    if (rank == 0) printf("bcast %ld %.9f\n", bytes, median(reps));
}

static void barrier(int quick, int rank) {
    int reps = quick ? 250 : 1000;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < reps; i++) {
        double start = MPI_Wtime();
        MPI_Barrier(MPI_COMM_WORLD);
        samples[i] = MPI_Wtime() - start;
    }
    if (rank == 0) printf("barrier 0 %.9f\n", median(reps));
}

int main(int argc, char **argv) {
    static const long sizes[] = {8, 1024, 65536, 1 << 20, 16 << 20};
    int rank, size, quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long most = 16 << 20;
    char *buf = calloc(most, 1);
    double *in = calloc(most / sizeof(double), sizeof(double));
    double *out = calloc(most / sizeof(double), sizeof(double));
    if (!buf || !in || !out) {
        fprintf(stderr, "out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (long i = 0; i < most / (long)sizeof(double); i++) in[i] = (double)(i % 97) + rank;
    for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        pingpong(buf, sizes[s], quick, rank, size);
    allreduce(in, out, 8, quick, rank);
    allreduce(in, out, 8 << 20, quick, rank);
    barrier(quick, rank);
    bcast(buf, 8 << 20, quick, rank);
    free(buf);
    free(in);
    free(out);
    MPI_Finalize();
    return 0;
}
