/* MPI_Alltoall and MPI_Alltoallv: every pair exchanges one message directly; a rank's block
 * for itself is copied locally. With MPI_IN_PLACE the outgoing data is first copied aside.
 *
 * Must not reach the host directly (coll_batch.c does).
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct layout {
    const void *buf;
    const int *counts; /* NULL: `count` for every rank */
    const int *displs; /* NULL: rank * count */
    int count;
    const fm_type *t;
} layout;

static int count_of(const layout *l, int r) { return l->counts ? l->counts[r] : l->count; }

static char *block_of(const layout *l, int r) {
    MPI_Aint index = l->displs ? l->displs[r] : (MPI_Aint)r * l->count;
    return (char *)l->buf + index * l->t->extent;
}

static int exchange(fm_comm *c, const layout *snd, const layout *rcv) {
    fm_batch b;
    int err = fm_batch_make(&b, 2 * c->size);
    if (err != MPI_SUCCESS)
        return err;
    for (int r = 0; r < c->size; r++)
        if (r != c->rank)
            fm_batch_recv(&b, c, r, FM_TAG_ALLTOALL, block_of(rcv, r), count_of(rcv, r), rcv->t);
    for (int i = 1; i < c->size; i++) { /* start with the next rank to spread the load */
        int r = (c->rank + i) % c->size;
        fm_batch_send(&b, c, r, FM_TAG_ALLTOALL, block_of(snd, r), count_of(snd, r), snd->t);
    }
    err = fm_local_copy(block_of(snd, c->rank), count_of(snd, c->rank), snd->t,
                        block_of(rcv, c->rank), count_of(rcv, c->rank), rcv->t);
    int done = fm_batch_finish(&b);
    return err != MPI_SUCCESS ? err : done;
}

/* For MPI_IN_PLACE: a copy of the receive buffer to send from. */
static int aside(layout *snd, const layout *rcv, int size, void **copy) {
    MPI_Aint end = 0;
    for (int r = 0; r < size; r++) {
        MPI_Aint last = (rcv->displs ? rcv->displs[r] : (MPI_Aint)r * rcv->count) +
                        count_of(rcv, r);
        end = last > end ? last : end;
    }
    size_t bytes = (size_t)(end * rcv->t->extent);
    *copy = fm_alloc(bytes);
    if (*copy == NULL)
        return MPI_ERR_NO_MEM;
    memcpy(*copy, rcv->buf, bytes);
    *snd = *rcv;
    snd->buf = *copy;
    return MPI_SUCCESS;
}

static int alltoall(MPI_Comm comm, layout *snd, const layout *rcv, MPI_Datatype st,
                    MPI_Datatype rt, int in_place) {
    fm_comm *c = fm_comm_get(comm);
    void *copy = NULL;
    if (c == NULL)
        return MPI_ERR_COMM;
    if (fm_type_check(rt) != MPI_SUCCESS || (!in_place && fm_type_check(st) != MPI_SUCCESS))
        return MPI_ERR_TYPE;
    int err = in_place ? aside(snd, rcv, c->size, &copy) : MPI_SUCCESS;
    if (err == MPI_SUCCESS)
        err = exchange(c, snd, rcv);
    free(copy);
    return err;
}

int MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                 int recvcount, MPI_Datatype recvtype, MPI_Comm comm) {
    layout snd = {sendbuf, NULL, NULL, sendcount, fm_type_get(sendtype)};
    layout rcv = {recvbuf, NULL, NULL, recvcount, fm_type_get(recvtype)};
    int err = sendcount < 0 || recvcount < 0 ? MPI_ERR_COUNT : MPI_SUCCESS;
    if (err == MPI_SUCCESS)
        err = alltoall(comm, &snd, &rcv, sendtype, recvtype, sendbuf == MPI_IN_PLACE);
    return fm_raise(comm, err, "MPI_Alltoall");
}

int MPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
                  MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                  const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm) {
    int in_place = sendbuf == MPI_IN_PLACE;
    layout snd = {sendbuf, sendcounts, sdispls, 0, fm_type_get(sendtype)};
    layout rcv = {recvbuf, recvcounts, rdispls, 0, fm_type_get(recvtype)};
    int err = MPI_SUCCESS;
    if (!recvcounts || !rdispls || (!in_place && (!sendcounts || !sdispls)))
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS)
        err = alltoall(comm, &snd, &rcv, sendtype, recvtype, in_place);
    return fm_raise(comm, err, "MPI_Alltoallv");
}
