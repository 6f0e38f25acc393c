/* An MPI loop whose ranks may migrate at every barrier: compute, a ring exchange whose sends
 * (one small, one large) are still pending at the barrier, an all-to-all, reductions over
 * the world and over a split communicator, and a receive posted before the first barrier
 * that matches only halfway through. The output depends only on the world size, never on
 * where ranks run or whether they moved, so a migrated run prints exactly what a run that
 * never moved prints; MPI_Wtime never goes back. argv[1]: iterations (default 40); argv[2]: compute per iteration
 * (default 200000). */
#include <faabric.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define BIG 40000 /* doubles: 320 KB, beyond the eager limit between ranks of one host */

static double big_out[BIG], big_in[BIG];

static double compute(double seed, int work) {
    double acc = seed;
    for (int k = 0; k < work; k++)
        acc = fmod(acc * 1.000001 + (k % 7) * 0.5, 1000.0);
    return acc;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int iterations = argc > 1 ? atoi(argv[1]) : 40;
    int work = argc > 2 ? atoi(argv[2]) : 200000;
    int right = (rank + 1) % size, left = (rank - 1 + size) % size;
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);

    int early = -1;
    MPI_Request early_req;
    MPI_Irecv(&early, 1, MPI_INT, left, 99, MPI_COMM_WORLD, &early_req);

    double local = rank + 1.0;
    long checksum = 0;
    int moved = 0, clock_went_back = 0;
    double last = MPI_Wtime();
    for (int it = 0; it < iterations; it++) {
        local = compute(local, work);
        int token = it * 100 + rank, got = -1;
        MPI_Request reqs[2];
        for (int i = 0; i < BIG; i++)
            big_out[i] = rank * 1e6 + it * 1e3 + i;
        MPI_Isend(&token, 1, MPI_INT, right, 7, MPI_COMM_WORLD, &reqs[0]);
        MPI_Isend(big_out, BIG, MPI_DOUBLE, right, 8, MPI_COMM_WORLD, &reqs[1]);
        MPI_Barrier(MPI_COMM_WORLD); /* a migration point, with both sends pending */
        MPI_Recv(&got, 1, MPI_INT, left, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Recv(big_in, BIG, MPI_DOUBLE, left, 8, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Waitall(2, reqs, MPI_STATUSES_IGNORE);
        checksum += got + (long)big_in[BIG - 1] % 100000;

        int out[64], in[64];
        for (int j = 0; j < size; j++)
            out[j] = rank * 1000 + j * 10 + it;
        MPI_Alltoall(out, 1, MPI_INT, in, 1, MPI_INT, MPI_COMM_WORLD);
        for (int j = 0; j < size; j++)
            checksum += in[j];

        double world_sum = 0, half_max = 0;
        MPI_Allreduce(&local, &world_sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(&local, &half_max, 1, MPI_DOUBLE, MPI_MAX, half);
        if (rank == 0 && it % 10 == 0)
            printf("iteration %d: sum %.6f half max %.6f\n", it, world_sum, half_max);
        if (it == iterations / 2) {
            int note = 5000 + rank;
            MPI_Send(&note, 1, MPI_INT, right, 99, MPI_COMM_WORLD);
            MPI_Wait(&early_req, MPI_STATUS_IGNORE);
        }
        moved += faabric_migration_point(); /* an explicit point as well */
        double now = MPI_Wtime(); /* a moved rank's clock must not jump back */
        clock_went_back += now < last;
        last = now;
    }
    long total = 0;
    MPI_Reduce(&checksum, &total, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    printf("rank %d of %d: checksum %ld early %d clock %s\n", rank, size, checksum, early,
           clock_went_back ? "went back" : "steady");
    if (rank == 0)
        printf("total %ld\n", total);
    fprintf(stderr, "rank %d moved %d times\n", rank, moved);
    MPI_Comm_free(&half);
    MPI_Finalize();
    return 0;
}
