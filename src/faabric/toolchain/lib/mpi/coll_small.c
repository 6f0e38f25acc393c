/* Latency-bound collectives: MPI_Barrier, and small allreduces of dense predefined types
 * with a commutative operation as recursive doubling.
 *
 * Doubling and the dissemination barrier take ceil(log2 p) rounds in which every rank sends
 * and receives at once, instead of the 2 log2 p sequential steps of a reduce followed by a
 * broadcast. They are used only when every rank runs on its own host: ranks of one worker
 * share its interpreter, so their simultaneous calls queue for it and the trees of
 * coll_reduce.c (fewer messages, calls taking turns) measured as fast or faster there.
 * Doubling pairs combine as (lower rank) op (higher rank), so both partners hold the same
 * bits. Must not take non-commutative operations or types with gaps.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

/* 1 when every rank of `c` runs on its own host. */
static int hosts_apart(const fm_comm *c) {
    int apart = 1;
    for (int r = 1; r < c->size; r++)
        for (int q = 0; q < r; q++)
            apart &= c->host[q] != c->host[r];
    return apart;
}

int MPI_Barrier(MPI_Comm comm) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Barrier");
    char none = 0, got = 0;
    int err = MPI_SUCCESS;
    int world = comm == MPI_COMM_WORLD;
    if (!hosts_apart(c)) {
        /* The release from rank 0 also carries its answer to "move the ranks now?" */
        int32_t epoch = 0;
        err = fm_reduce_raw(c, &none, 0, MPI_BYTE, MPI_BAND, 0);
        if (world && c->rank == 0 && err == MPI_SUCCESS)
            epoch = fmpi_migration_epoch(1);
        fm_bcast_raw(c, &epoch, world ? (int)sizeof epoch : 0, 0);
        if (epoch > 0)
            fm_migration_point(1, epoch);
        return fm_raise(comm, err, "MPI_Barrier");
    }
    for (int k = 1; k < c->size; k <<= 1)
        fm_cexchange(c, FM_TAG_BARRIER, (c->rank + k) % c->size, &none, 0,
                     (c->rank - k + c->size) % c->size, &got, 0);
    if (world)
        fm_migration_point(1, -1);
    return MPI_SUCCESS;
}

int fm_doubling_applies(const fm_comm *c, MPI_Datatype type, MPI_Op op) {
    const fm_type *t = fm_type_get(type);
    return c->size > 1 && (c->size & (c->size - 1)) == 0 && hosts_apart(c) && fm_dense(t) &&
           fm_op_commutes(op);
}

int fm_allreduce_doubling(const fm_comm *c, const void *src, void *dst, int count,
                          MPI_Datatype type, MPI_Op op) {
    size_t bytes = (size_t)count * (size_t)fm_type_get(type)->size;
    char *theirs = fm_alloc(bytes);
    int err = MPI_SUCCESS;
    if (theirs == NULL)
        return MPI_ERR_NO_MEM;
    if (src != dst && bytes > 0)
        memcpy(dst, src, bytes);
    for (int mask = 1; mask < c->size; mask <<= 1) {
        int peer = c->rank ^ mask;
        fm_cexchange(c, FM_TAG_REDUCE, peer, dst, (int)bytes, peer, theirs, (int)bytes);
        if (c->rank > peer) {
            err |= fm_op_apply(op, type, theirs, dst, count);
            continue;
        }
        err |= fm_op_apply(op, type, dst, theirs, count);
        if (bytes > 0)
            memcpy(dst, theirs, bytes);
    }
    free(theirs);
    return err ? MPI_ERR_OP : MPI_SUCCESS;
}
