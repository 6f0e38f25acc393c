/* Non-blocking collectives: Ibarrier overlapped with point-to-point traffic and used for a
 * non-blocking consensus (each rank learns it has no more messages without a reply count),
 * Ibcast (contiguous and strided), Ireduce and Iallreduce (in place, a non-commutative user
 * operation), Iallgather and Ialltoall, several outstanding at once and completed out of
 * order, with MPI_Wait, MPI_Test loops, MPI_Waitall and MPI_Waitany.
 */
#include <stdlib.h>

#include "mpi_harness.h"

static void barrier_overlap(int rank, int size) {
    MPI_Request bar;
    MPI_Ibarrier(MPI_COMM_WORLD, &bar);
    int next = (rank + 1) % size, prev = (rank + size - 1) % size, got = -1;
    /* a blocking ring while the barrier is pending: no rank may be held in the barrier */
    if (rank % 2 == 0) {
        MPI_Send(&rank, 1, MPI_INT, next, 7, MPI_COMM_WORLD);
        MPI_Recv(&got, 1, MPI_INT, prev, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        MPI_Recv(&got, 1, MPI_INT, prev, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(&rank, 1, MPI_INT, next, 7, MPI_COMM_WORLD);
    }
    MPI_Wait(&bar, MPI_STATUS_IGNORE);
    CHECK(bar == MPI_REQUEST_NULL);
    say_all("rank %d: ring under an Ibarrier got %d", rank, got);
}

/* Every rank sends one synchronous message to each of its two neighbours, then receives
   whatever arrives until everyone's sends are matched (the barrier completes). */
static void consensus(int rank, int size) {
    int to[2] = {(rank + 1) % size, (rank + 2) % size}, value = rank * 10, received = 0;
    int sum = 0, barrier_active = 0, done = 0;
    MPI_Request sends[2], bar = MPI_REQUEST_NULL;
    for (int i = 0; i < 2; i++)
        MPI_Issend(&value, 1, MPI_INT, to[i], 3, MPI_COMM_WORLD, &sends[i]);
    while (!done) {
        int flag;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, 3, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            int v;
            MPI_Recv(&v, 1, MPI_INT, st.MPI_SOURCE, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            sum += v;
            received++;
        }
        if (barrier_active) {
            MPI_Test(&bar, &done, MPI_STATUS_IGNORE);
        } else {
            int sent;
            MPI_Testall(2, sends, &sent, MPI_STATUSES_IGNORE);
            if (sent) {
                MPI_Ibarrier(MPI_COMM_WORLD, &bar);
                barrier_active = 1;
            }
        }
    }
    say_all("rank %d: consensus received %d messages summing %d", rank, received, sum);
}

static void broadcasts(int rank, int size) {
    int data[6], root = size - 1;
    for (int i = 0; i < 6; i++)
        data[i] = rank == root ? 7 * i + 1 : -1;
    double grid[8];
    for (int i = 0; i < 8; i++)
        grid[i] = rank == 0 ? i * 0.5 : -1;
    MPI_Datatype column;
    MPI_Type_vector(4, 1, 2, MPI_DOUBLE, &column);
    MPI_Type_commit(&column);
    MPI_Request reqs[2];
    MPI_Ibcast(data, 6, MPI_INT, root, MPI_COMM_WORLD, &reqs[0]);
    MPI_Ibcast(grid, 1, column, 0, MPI_COMM_WORLD, &reqs[1]);
    int flag = 0;
    while (!flag)
        MPI_Test(&reqs[1], &flag, MPI_STATUS_IGNORE);
    MPI_Wait(&reqs[0], MPI_STATUS_IGNORE);
    say_all("rank %d: ibcast %d %d %d %d %d %d; column %g %g %g %g, gaps %g", rank, data[0],
            data[1], data[2], data[3], data[4], data[5], grid[0], grid[2], grid[4], grid[6],
            rank == 0 ? -1.0 : grid[1]);
    MPI_Type_free(&column);
}

/* inout = the digits of in followed by those of inout (lower ranks come in `in`). */
static void digits(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    for (int i = 0; i < *len; i++) {
        int right = ((int *)inout)[i], scale = 1;
        for (int rest = right; rest > 0; rest /= 10)
            scale *= 10;
        ((int *)inout)[i] = ((int *)in)[i] * scale + right;
    }
}

static void reductions(int rank, int size) {
    int mine[3] = {rank + 1, -rank, rank * rank}, sum[3], max[3], prod = 0, prod_in = rank + 2;
    double dsum[2] = {rank + 0.25, 1.5}, total = 0;
    MPI_Request reqs[4];
    MPI_Iallreduce(mine, sum, 3, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &reqs[0]);
    MPI_Iallreduce(mine, max, 3, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &reqs[1]);
    MPI_Ireduce(&prod_in, &prod, 1, MPI_INT, MPI_PROD, 1 % size, MPI_COMM_WORLD, &reqs[2]);
    MPI_Iallreduce(MPI_IN_PLACE, dsum, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &reqs[3]);
    for (int k = 0; k < 4; k++) {
        int index;
        MPI_Waitany(4, reqs, &index, MPI_STATUS_IGNORE);
    }
    total = dsum[0] + dsum[1];
    say("iallreduce sum %d %d %d, max %d %d %d, in place doubles %g", sum[0], sum[1], sum[2],
        max[0], max[1], max[2], total);
    MPI_Bcast(&prod, 1, MPI_INT, 1 % size, MPI_COMM_WORLD);
    say("ireduce prod at rank %d: %d", 1 % size, prod);
    MPI_Op cat;
    MPI_Op_create(digits, 0, &cat);
    int digit = rank + 1, ordered = 0;
    MPI_Request r;
    MPI_Iallreduce(&digit, &ordered, 1, MPI_INT, cat, MPI_COMM_WORLD, &r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
    say("non-commutative iallreduce in rank order: %d", ordered);
    int root_value = 5, reduced = 5;
    MPI_Ireduce(rank == 0 ? MPI_IN_PLACE : &root_value, &reduced, 1, MPI_INT, MPI_SUM, 0,
                MPI_COMM_WORLD, &r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
    say("ireduce in place at root: %d", reduced);
    MPI_Op_free(&cat);
}

static void exchanges(int rank, int size) {
    int mine[2] = {rank, rank * rank}, *all = malloc(2 * size * sizeof(int));
    int *out = malloc(size * sizeof(int)), *in = malloc(size * sizeof(int));
    int *inplace = malloc(size * sizeof(int));
    for (int j = 0; j < size; j++) {
        out[j] = rank * 100 + j;
        inplace[j] = j == rank ? rank + 50 : -1;
    }
    MPI_Request reqs[3];
    MPI_Iallgather(mine, 2, MPI_INT, all, 2, MPI_INT, MPI_COMM_WORLD, &reqs[0]);
    MPI_Ialltoall(out, 1, MPI_INT, in, 1, MPI_INT, MPI_COMM_WORLD, &reqs[1]);
    MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, inplace, 1, MPI_INT, MPI_COMM_WORLD,
                   &reqs[2]);
    MPI_Waitall(3, reqs, MPI_STATUSES_IGNORE);
    char line[LINE];
    int at = 0;
    for (int j = 0; j < size; j++)
        at += snprintf(line + at, sizeof line - at, " [%d %d|%d|%d]", all[2 * j],
                       all[2 * j + 1], in[j], inplace[j]);
    say_all("rank %d:%s", rank, line);
    free(all);
    free(out);
    free(in);
    free(inplace);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_icoll on %d ranks", size);
    barrier_overlap(rank, size);
    consensus(rank, size);
    broadcasts(rank, size);
    reductions(rank, size);
    exchanges(rank, size);
    return finish("mpi_icoll");
}
