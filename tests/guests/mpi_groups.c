/* Groups and communicators made from them: MPI_Comm_group, Group_size/rank/incl/excl/
 * translate_ranks/free, MPI_GROUP_EMPTY, MPI_Comm_create on MPI_COMM_WORLD and on a
 * communicator made by MPI_Comm_create itself, with blocking and non-blocking collectives
 * and a window on the new communicators.
 */
#include <stdlib.h>

#include "mpi_harness.h"

static void world_group(int rank, int size) {
    MPI_Group world, reversed, without0;
    int gsize, grank, rrank, xsize, xrank, back = -1;
    int *order = malloc(size * sizeof(int)), zero = 0;
    for (int i = 0; i < size; i++)
        order[i] = size - 1 - i;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    MPI_Group_size(world, &gsize);
    MPI_Group_rank(world, &grank);
    MPI_Group_incl(world, size, order, &reversed);
    MPI_Group_rank(reversed, &rrank);
    MPI_Group_translate_ranks(reversed, 1, &rrank, world, &back);
    MPI_Group_excl(world, 1, &zero, &without0);
    MPI_Group_size(without0, &xsize);
    MPI_Group_rank(without0, &xrank);
    say_all("rank %d: world group %d of %d, reversed rank %d (back to %d), without rank 0: "
            "%d of %d", rank, grank, gsize, rrank, back, xrank == MPI_UNDEFINED ? -1 : xrank,
            xsize);
    MPI_Group_free(&reversed);
    MPI_Group_free(&without0);
    MPI_Group_free(&world);
    CHECK(world == MPI_GROUP_NULL && reversed == MPI_GROUP_NULL);
    free(order);
}

static void empty(void) {
    int esize = -1, erank = 0;
    MPI_Group_size(MPI_GROUP_EMPTY, &esize);
    MPI_Group_rank(MPI_GROUP_EMPTY, &erank);
    MPI_Comm none;
    MPI_Comm_create(MPI_COMM_WORLD, MPI_GROUP_EMPTY, &none);
    int null = none == MPI_COMM_NULL, all = 0;
    MPI_Allreduce(&null, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    say("empty group: size %d, rank undefined %d, comm_create gives MPI_COMM_NULL %d", esize,
        erank == MPI_UNDEFINED, all);
}

/* The first half (rounded up) of `comm`'s ranks, in reverse order, as a new communicator. */
static MPI_Comm reversed_half(MPI_Comm comm) {
    int size;
    MPI_Comm_size(comm, &size);
    int n = (size + 1) / 2, *ranks = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++)
        ranks[i] = n - 1 - i;
    MPI_Group group, half;
    MPI_Comm_group(comm, &group);
    MPI_Group_incl(group, n, ranks, &half);
    MPI_Comm out;
    MPI_Comm_create(comm, half, &out);
    MPI_Group_free(&half);
    MPI_Group_free(&group);
    free(ranks);
    return out;
}

static void describe(int rank, MPI_Comm comm, const char *what) {
    int sub = -1, subsize = 0, sum = -1, first = -1, iall = -1, zero = 0;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &sub);
        MPI_Comm_size(comm, &subsize);
        MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, comm);
        MPI_Group group, world;
        MPI_Comm_group(comm, &group);
        MPI_Comm_group(MPI_COMM_WORLD, &world);
        MPI_Group_translate_ranks(group, 1, &zero, world, &first);
        MPI_Group_free(&group);
        MPI_Group_free(&world);
        MPI_Request r;
        MPI_Iallreduce(&rank, &iall, 1, MPI_INT, MPI_MAX, comm, &r);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    say_all("rank %d: %s rank %d of %d, sum of world ranks %d, its rank 0 is world %d, "
            "iallreduce max %d", rank, what, sub, subsize, sum, first, iall);
}

static void window_on(int rank, MPI_Comm comm) {
    int slot = -1;
    if (comm != MPI_COMM_NULL) {
        MPI_Win win;
        int sub, subsize;
        MPI_Comm_rank(comm, &sub);
        MPI_Comm_size(comm, &subsize);
        MPI_Win_create(&slot, sizeof slot, sizeof slot, MPI_INFO_NULL, comm, &win);
        MPI_Win_fence(0, win);
        MPI_Put(&rank, 1, MPI_INT, (sub + 1) % subsize, 0, 1, MPI_INT, win);
        MPI_Win_fence(0, win);
        MPI_Win_free(&win);
    }
    say_all("rank %d: window on the created communicator holds %d", rank, slot);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_groups on %d ranks", size);
    world_group(rank, size);
    empty();
    MPI_Comm half = reversed_half(MPI_COMM_WORLD);
    describe(rank, half, "half");
    MPI_Comm quarter = MPI_COMM_NULL;
    if (half != MPI_COMM_NULL)
        quarter = reversed_half(half); /* collective over `half` only */
    describe(rank, quarter, "half of half");
    window_on(rank, half);
    if (quarter != MPI_COMM_NULL)
        MPI_Comm_free(&quarter);
    if (half != MPI_COMM_NULL)
        MPI_Comm_free(&half);
    return finish("mpi_groups");
}
