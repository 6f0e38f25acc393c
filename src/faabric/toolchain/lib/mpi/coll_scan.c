/* Prefix reductions (MPI_Scan, MPI_Exscan) and reduce-scatter (MPI_Reduce_scatter_block,
 * MPI_Reduce_scatter).
 *
 * Scans pass the running prefix along the ranks in order, so non-commutative operations see
 * x0 op x1 op ... in rank order. Reduce-scatter reduces at rank 0 and scatters packed pieces.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

static int scan(MPI_Comm comm, const void *sendbuf, void *recvbuf, int count,
                MPI_Datatype datatype, MPI_Op op, int exclusive) {
    fm_comm *c;
    fm_type *t;
    char *mine_block, *prev_block;
    int err = fm_reduce_args(comm, count, datatype, op, &c, &t);
    if (err != MPI_SUCCESS)
        return err;
    int span = (int)fm_span(t, count);
    char *mine = fm_raw_copy(sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, count, t, &mine_block);
    prev_block = fm_alloc(fm_raw_bytes(t, count));
    if (mine == NULL || prev_block == NULL) {
        free(mine_block), free(prev_block);
        return MPI_ERR_NO_MEM;
    }
    char *prev = prev_block - t->true_lb;
    if (c->rank > 0) {
        fm_crecv(c, c->rank - 1, FM_TAG_SCAN, prev_block, span);
        if (exclusive)
            fm_copy(recvbuf, prev, count, t);
        err = fm_op_apply(op, datatype, prev, mine, count); /* mine = prev op mine */
    }
    if (c->rank + 1 < c->size)
        fm_csend(c, c->rank + 1, FM_TAG_SCAN, mine_block, span);
    if (!exclusive)
        fm_copy(recvbuf, mine, count, t);
    free(mine_block), free(prev_block);
    return err;
}

int MPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
             MPI_Comm comm) {
    return fm_raise(comm, scan(comm, sendbuf, recvbuf, count, datatype, op, 0), "MPI_Scan");
}

int MPI_Exscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
               MPI_Comm comm) {
    return fm_raise(comm, scan(comm, sendbuf, recvbuf, count, datatype, op, 1), "MPI_Exscan");
}

/* Reduces `total` elements at rank 0, then gives rank r counts[r] elements of it. */
static int reduce_scatter(MPI_Comm comm, const void *sendbuf, void *recvbuf, const int *counts,
                          MPI_Datatype datatype, MPI_Op op) {
    fm_comm *c = fm_comm_get(comm);
    fm_type *t = fm_type_get(datatype);
    long long total = 0;
    for (int r = 0; c != NULL && r < c->size; r++)
        total += counts[r] < 0 ? INT_MIN : counts[r];
    if (c == NULL)
        return MPI_ERR_COMM;
    if (total < 0 || total > INT_MAX)
        return MPI_ERR_COUNT;
    char *block;
    int err = fm_reduce_args(comm, (int)total, datatype, op, &c, &t);
    char *acc = err ? NULL : fm_raw_copy(sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf,
                                         (int)total, t, &block);
    if (err == MPI_SUCCESS && acc == NULL)
        err = MPI_ERR_NO_MEM;
    if (err == MPI_SUCCESS)
        err = fm_reduce_raw(c, acc, (int)total, datatype, op, 0);
    fm_batch b;
    if (err == MPI_SUCCESS)
        err = fm_batch_make(&b, c->size);
    for (int r = 0, first = 0; err == MPI_SUCCESS && r < c->size; first += counts[r++]) {
        char *piece = acc + (MPI_Aint)first * t->extent;
        if (c->rank == 0 && r == 0)
            fm_copy(recvbuf, piece, counts[0], t);
        else if (c->rank == 0)
            fm_batch_send(&b, c, r, FM_TAG_SCATTERV, piece, counts[r], t);
        else if (c->rank == r)
            fm_batch_recv(&b, c, 0, FM_TAG_SCATTERV, recvbuf, counts[r], t);
    }
    if (err == MPI_SUCCESS)
        err = fm_batch_finish(&b);
    if (acc != NULL)
        free(block);
    return err;
}

int MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[],
                       MPI_Datatype datatype, MPI_Op op, MPI_Comm comm) {
    if (recvcounts == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Reduce_scatter");
    return fm_raise(comm, reduce_scatter(comm, sendbuf, recvbuf, recvcounts, datatype, op),
                    "MPI_Reduce_scatter");
}

int MPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount,
                             MPI_Datatype datatype, MPI_Op op, MPI_Comm comm) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Reduce_scatter_block");
    int *counts = fm_alloc((size_t)c->size * sizeof(int));
    if (counts == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Reduce_scatter_block");
    for (int r = 0; r < c->size; r++)
        counts[r] = recvcount;
    int err = reduce_scatter(comm, sendbuf, recvbuf, counts, datatype, op);
    free(counts);
    return fm_raise(comm, err, "MPI_Reduce_scatter_block");
}
