/* The collectives with per-rank counts and the all-to-alls: MPI_Gatherv, MPI_Scatterv,
 * MPI_Allgatherv, MPI_Alltoall and MPI_Alltoallv (MPI_IN_PLACE included).
 *
 * Only the root knows every count of a gatherv/scatterv, so those exchange directly with the
 * root; all-to-all messages go straight between each pair. Must not reach the host directly.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

static int type_ok(MPI_Datatype type, const fm_type **t) {
    *t = fm_type_get(type);
    return *t != NULL && (*t)->committed ? MPI_SUCCESS : MPI_ERR_TYPE;
}

static char *at(const void *buf, MPI_Aint index, const fm_type *t) {
    return (char *)buf + index * t->extent;
}

static int start(MPI_Comm comm, int root, fm_comm **c, fm_batch *b) {
    *c = fm_comm_get(comm);
    if (*c == NULL)
        return MPI_ERR_COMM;
    if (root < 0 || root >= (*c)->size)
        return MPI_ERR_ROOT;
    return fm_batch_make(b, 2 * (*c)->size);
}

int MPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root,
                MPI_Comm comm) {
    fm_comm *c;
    fm_batch b;
    const fm_type *st = NULL, *rt = NULL;
    int err = start(comm, root, &c, &b), in_place = sendbuf == MPI_IN_PLACE;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Gatherv");
    int at_root = c->rank == root;
    if (at_root && (err = type_ok(recvtype, &rt)) == MPI_SUCCESS && !recvcounts)
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && !(at_root && in_place))
        err = type_ok(sendtype, &st);
    if (err != MPI_SUCCESS) {
        fm_batch_finish(&b);
        return fm_raise(comm, err, "MPI_Gatherv");
    }
    for (int r = 0; at_root && r < c->size; r++)
        if (r != root)
            fm_batch_recv(&b, c, r, FM_TAG_GATHERV, at(recvbuf, displs[r], rt), recvcounts[r],
                          rt);
    if (!at_root)
        fm_batch_send(&b, c, root, FM_TAG_GATHERV, sendbuf, sendcount, st);
    else if (!in_place)
        err = fm_local_copy(sendbuf, sendcount, st, at(recvbuf, displs[root], rt),
                            recvcounts[root], rt);
    int done = fm_batch_finish(&b);
    return fm_raise(comm, err != MPI_SUCCESS ? err : done, "MPI_Gatherv");
}

int MPI_Scatterv(const void *sendbuf, const int sendcounts[], const int displs[],
                 MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype,
                 int root, MPI_Comm comm) {
    fm_comm *c;
    fm_batch b;
    const fm_type *st = NULL, *rt = NULL;
    int err = start(comm, root, &c, &b), in_place = recvbuf == MPI_IN_PLACE;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Scatterv");
    int at_root = c->rank == root;
    if (at_root && (err = type_ok(sendtype, &st)) == MPI_SUCCESS && !sendcounts)
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && !(at_root && in_place))
        err = type_ok(recvtype, &rt);
    if (err != MPI_SUCCESS) {
        fm_batch_finish(&b);
        return fm_raise(comm, err, "MPI_Scatterv");
    }
    for (int r = 0; at_root && r < c->size; r++)
        if (r != root)
            fm_batch_send(&b, c, r, FM_TAG_SCATTERV, at(sendbuf, displs[r], st), sendcounts[r],
                          st);
    if (!at_root)
        fm_batch_recv(&b, c, root, FM_TAG_SCATTERV, recvbuf, recvcount, rt);
    else if (!in_place)
        err = fm_local_copy(at(sendbuf, displs[root], st), sendcounts[root], st, recvbuf,
                            recvcount, rt);
    int done = fm_batch_finish(&b);
    return fm_raise(comm, err != MPI_SUCCESS ? err : done, "MPI_Scatterv");
}

/* Gathers every rank's packed block at 0 and broadcasts them all. */
static int allgatherv_packed(fm_comm *c, const void *mine, int len, const int *lens,
                             char *packed, int total) {
    fm_batch b;
    int off = 0, err = fm_batch_make(&b, c->size);
    const fm_type *byte = fm_type_get(MPI_BYTE);
    if (err != MPI_SUCCESS)
        return err;
    for (int r = 0; r < c->size; off += lens[r++]) {
        if (c->rank == 0 && r != 0)
            fm_batch_recv(&b, c, r, FM_TAG_GATHERV, packed + off, lens[r], byte);
        else if (c->rank == 0)
            memcpy(packed, mine, (size_t)len);
    }
    if (c->rank != 0)
        fm_batch_send(&b, c, 0, FM_TAG_GATHERV, mine, len, byte);
    err = fm_batch_finish(&b);
    fm_bcast_raw(c, packed, total, 0);
    return err;
}

int MPI_Allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                   const int recvcounts[], const int displs[], MPI_Datatype recvtype,
                   MPI_Comm comm) {
    fm_comm *c = fm_comm_get(comm);
    const fm_type *st = NULL, *rt = NULL;
    int in_place = sendbuf == MPI_IN_PLACE, err = c ? type_ok(recvtype, &rt) : MPI_ERR_COMM;
    if (err == MPI_SUCCESS && !in_place)
        err = type_ok(sendtype, &st);
    if (err == MPI_SUCCESS && (recvcounts == NULL || displs == NULL))
        err = MPI_ERR_ARG;
    long long total = 0;
    int *lens = err == MPI_SUCCESS ? fm_alloc((size_t)c->size * sizeof(int)) : NULL;
    for (int r = 0; lens != NULL && r < c->size; r++)
        total += lens[r] = recvcounts[r] * rt->size;
    if (err == MPI_SUCCESS && (lens == NULL || total > INT_MAX))
        err = lens == NULL ? MPI_ERR_NO_MEM : MPI_ERR_COUNT;
    char *packed = err == MPI_SUCCESS ? fm_alloc((size_t)total) : NULL;
    void *tmp = NULL;
    const void *mine = NULL;
    if (packed != NULL)
        mine = in_place ? fm_packed_view(at(recvbuf, displs[c->rank], rt), recvcounts[c->rank],
                                         rt, &tmp)
                        : fm_packed_view(sendbuf, sendcount, st, &tmp);
    if (packed != NULL) {
        int len = in_place ? lens[c->rank] : sendcount * st->size;
        err = allgatherv_packed(c, mine, len, lens, packed, (int)total);
        for (int r = 0, off = 0; r < c->size; off += lens[r++])
            fm_unpack(packed + off, lens[r], recvcounts[r], rt, at(recvbuf, displs[r], rt));
    }
    free(tmp), free(packed), free(lens);
    return fm_raise(comm, err, "MPI_Allgatherv");
}
