/* Communicators and Cartesian topologies: dup, compare, split (with MPI_UNDEFINED and
 * reversed keys), create from a group, traffic and collectives on sub-communicators with
 * translated ranks, Dims_create, Cart_create/rank/coords/shift/get/sub.
 */
#include <stdlib.h>

#include "mpi_harness.h"

static void dup_and_compare(int rank, int size) {
    MPI_Comm dup;
    int same, cong, sum;
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_compare(MPI_COMM_WORLD, MPI_COMM_WORLD, &same);
    MPI_Comm_compare(MPI_COMM_WORLD, dup, &cong);
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, dup);
    say("dup: ident=%d congruent=%d sum of ranks=%d", same == MPI_IDENT, cong == MPI_CONGRUENT,
        sum);
    CHECK(sum == size * (size - 1) / 2);
    MPI_Comm_free(&dup);
    CHECK(dup == MPI_COMM_NULL);
}

static void split(int rank, int size) {
    MPI_Comm half, none;
    int color = rank % 2, sub, subsize, sum, result;
    MPI_Comm_split(MPI_COMM_WORLD, color, -rank, &half); /* reversed order */
    MPI_Comm_rank(half, &sub);
    MPI_Comm_size(half, &subsize);
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, half);
    MPI_Comm_compare(MPI_COMM_WORLD, half, &result);
    /* every sub-rank sends its world rank to sub-rank 0, which receives from any source */
    int from = -1, ok = 1;
    if (sub != 0)
        MPI_Send(&rank, 1, MPI_INT, 0, 1, half);
    for (int k = 1; sub == 0 && k < subsize; k++) {
        MPI_Status st;
        MPI_Recv(&from, 1, MPI_INT, MPI_ANY_SOURCE, 1, half, &st);
        ok &= st.MPI_SOURCE == (rank - from) / 2; /* keys reversed: sub rank from world */
    }
    CHECK(ok);
    say_all("rank %d: color %d sub-rank %d of %d, sum %d, %s", rank, color, sub, subsize, sum,
            result == MPI_UNEQUAL ? "unequal" : result == MPI_SIMILAR ? "similar" : "same");
    MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? MPI_UNDEFINED : 1, 0, &none);
    int nsize = 0;
    if (none != MPI_COMM_NULL) {
        MPI_Comm_size(none, &nsize);
        MPI_Comm_free(&none);
    }
    say_all("rank %d: split without rank 0 gives %s (size %d)", rank,
            rank == 0 ? "MPI_COMM_NULL" : "a communicator", nsize);
    MPI_Comm inner;
    MPI_Comm_split(half, sub < 1 ? 0 : 1, sub, &inner);
    int inner_size;
    MPI_Comm_size(inner, &inner_size);
    MPI_Bcast(&inner_size, 1, MPI_INT, 0, inner);
    say_all("rank %d: nested split size %d", rank, inner_size);
    MPI_Comm_free(&inner);
    MPI_Comm_free(&half);
}

static void from_group(int rank, int size) {
    MPI_Group world, evens;
    int n = (size + 1) / 2, *ranks = malloc(n * sizeof(int)), trans[2], probe[2] = {0, 1};
    for (int i = 0; i < n; i++)
        ranks[i] = 2 * (n - 1 - i); /* descending even ranks */
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    MPI_Group_incl(world, n, ranks, &evens);
    MPI_Group_translate_ranks(evens, n < 2 ? 1 : 2, probe, world, trans);
    MPI_Comm comm;
    MPI_Comm_create(MPI_COMM_WORLD, evens, &comm);
    int sub = -1, total = -1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &sub);
        MPI_Allreduce(&rank, &total, 1, MPI_INT, MPI_SUM, comm);
        MPI_Comm_free(&comm);
    }
    say_all("rank %d: group sub-rank %d, sum %d, group rank 0 is world %d", rank, sub, total,
            trans[0]);
    MPI_Group_free(&evens);
    MPI_Group_free(&world);
    free(ranks);
}

static void dims(void) {
    static const int cases[][2] = {{12, 2}, {16, 3}, {6, 3}, {7, 2}, {24, 3}, {36, 2}, {1, 2}};
    for (int k = 0; k < 7; k++) {
        int d[3] = {0, 0, 0};
        MPI_Dims_create(cases[k][0], cases[k][1], d);
        say("dims_create(%d, %d): %d %d %d", cases[k][0], cases[k][1], d[0], d[1],
            cases[k][1] > 2 ? d[2] : 0);
    }
    int fixed[3] = {0, 3, 0};
    MPI_Dims_create(24, 3, fixed);
    say("dims_create(24, {0,3,0}): %d %d %d", fixed[0], fixed[1], fixed[2]);
}

static void cartesian(int rank, int size) {
    int d[2] = {0, 0}, periods[2] = {1, 0}, coords[2], src0, dst0, src1, dst1, back;
    MPI_Dims_create(size, 2, d);
    MPI_Comm cart;
    MPI_Cart_create(MPI_COMM_WORLD, 2, d, periods, 0, &cart);
    int me, nd, gd[2], gp[2], gc[2], topo;
    MPI_Comm_rank(cart, &me);
    MPI_Cart_coords(cart, me, 2, coords);
    MPI_Cart_rank(cart, coords, &back);
    MPI_Cart_shift(cart, 0, 1, &src0, &dst0);
    MPI_Cart_shift(cart, 1, 1, &src1, &dst1);
    MPI_Cartdim_get(cart, &nd);
    MPI_Cart_get(cart, 2, gd, gp, gc);
    MPI_Topo_test(cart, &topo);
    CHECK(back == me && nd == 2 && gc[0] == coords[0] && gp[0] == 1 && topo == MPI_CART);
    say_all("rank %d: grid %dx%d coords (%d,%d) dim0 %d->%d dim1 %d->%d", rank, gd[0], gd[1],
            coords[0], coords[1], src0, dst0, src1, dst1);
    int value = me * 10, got = -1;
    MPI_Sendrecv(&value, 1, MPI_INT, dst0, 0, &got, 1, MPI_INT, src0, 0, cart,
                 MPI_STATUS_IGNORE);
    CHECK(got == src0 * 10);
    int keep[2] = {0, 1}, row_rank, row_size;
    MPI_Comm row;
    MPI_Cart_sub(cart, keep, &row);
    MPI_Comm_rank(row, &row_rank);
    MPI_Comm_size(row, &row_size);
    CHECK(row_rank == coords[1] && row_size == d[1]);
    MPI_Comm_free(&row);
    MPI_Comm_free(&cart);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_comm on %d ranks", size);
    dup_and_compare(rank, size);
    split(rank, size);
    from_group(rank, size);
    dims();
    cartesian(rank, size);
    return finish("mpi_comm");
}
