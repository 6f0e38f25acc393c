/* MPI_Gather, MPI_Scatter and MPI_Allgather: argument checks and typed data around the raw
 * engines of coll_gather.c (MPI_IN_PLACE included).
 *
 * Data lands directly in the user's buffer when its type is contiguous; otherwise it goes
 * through a packed buffer. Must not talk to the host directly.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct side {
    const fm_type *t;
    int count;
    int len; /* bytes of one rank's block */
} side;

static int side_check(MPI_Datatype type, int count, side *s) {
    s->t = fm_type_get(type);
    s->count = count;
    if (s->t == NULL || !s->t->committed)
        return MPI_ERR_TYPE;
    return fm_type_bytes(s->t, count, &s->len);
}

static char *block_at(const void *buf, int i, const side *s) {
    return (char *)buf + (MPI_Aint)i * s->count * s->t->extent;
}

/* Where `size` blocks of s at buf can be written contiguously, or a new buffer (*tmp). */
static char *landing(void *buf, int size, const side *s, void **tmp) {
    *tmp = NULL;
    if (fm_is_contiguous(s->t, s->count * size))
        return (char *)buf + (s->t->nsegs ? s->t->segs[0].disp : 0);
    return *tmp = fm_alloc((size_t)size * (size_t)s->len);
}

static int common(MPI_Comm comm, int root, fm_comm **c) {
    *c = fm_comm_get(comm);
    if (*c == NULL)
        return MPI_ERR_COMM;
    return root < 0 || root >= (*c)->size ? MPI_ERR_ROOT : MPI_SUCCESS;
}

int MPI_Gather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
               int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm) {
    fm_comm *c;
    side snd = {0}, rcv = {0};
    int err = common(comm, root, &c);
    int at_root = err == MPI_SUCCESS && c->rank == root, in_place = sendbuf == MPI_IN_PLACE;
    if (err == MPI_SUCCESS && at_root)
        err = side_check(recvtype, recvcount, &rcv);
    if (err == MPI_SUCCESS && !(at_root && in_place))
        err = side_check(sendtype, sendcount, &snd);
    if (err == MPI_SUCCESS && at_root && (long long)rcv.len * c->size > INT_MAX)
        err = MPI_ERR_COUNT;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Gather");
    void *packed = NULL, *tmp = NULL;
    const void *mine = at_root && in_place ? NULL : fm_packed_view(sendbuf, sendcount, snd.t,
                                                                   &packed);
    char *all = at_root ? landing(recvbuf, c->size, &rcv, &tmp) : NULL;
    fm_gather_raw(c, mine, at_root ? rcv.len : snd.len, all, root);
    for (int r = 0; tmp != NULL && r < c->size; r++)
        if (!(in_place && r == root))
            fm_unpack(all + (size_t)r * rcv.len, rcv.len, recvcount, rcv.t,
                      block_at(recvbuf, r, &rcv));
    free(packed);
    free(tmp);
    return MPI_SUCCESS;
}

int MPI_Scatter(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm) {
    fm_comm *c;
    side snd = {0}, rcv = {0};
    int err = common(comm, root, &c);
    int at_root = err == MPI_SUCCESS && c->rank == root, in_place = recvbuf == MPI_IN_PLACE;
    if (err == MPI_SUCCESS && at_root)
        err = side_check(sendtype, sendcount, &snd);
    if (err == MPI_SUCCESS && !(at_root && in_place))
        err = side_check(recvtype, recvcount, &rcv);
    if (err == MPI_SUCCESS && at_root && (long long)snd.len * c->size > INT_MAX)
        err = MPI_ERR_COUNT;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Scatter");
    void *packed = NULL, *tmp = NULL;
    const void *all = at_root ? fm_packed_view(sendbuf, sendcount * c->size, snd.t, &packed)
                              : NULL;
    char *mine = at_root && in_place ? NULL : landing(recvbuf, 1, &rcv, &tmp);
    fm_scatter_raw(c, all, at_root ? snd.len : rcv.len, mine, root);
    if (tmp != NULL)
        fm_unpack(tmp, rcv.len, recvcount, rcv.t, recvbuf);
    free(packed);
    free(tmp);
    return MPI_SUCCESS;
}

int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, MPI_Comm comm) {
    fm_comm *c;
    side snd = {0}, rcv = {0};
    int err = common(comm, 0, &c), in_place = sendbuf == MPI_IN_PLACE;
    if (err == MPI_SUCCESS)
        err = side_check(recvtype, recvcount, &rcv);
    if (err == MPI_SUCCESS && !in_place)
        err = side_check(sendtype, sendcount, &snd);
    if (err == MPI_SUCCESS && (long long)rcv.len * c->size > INT_MAX)
        err = MPI_ERR_COUNT;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Allgather");
    void *packed = NULL, *tmp = NULL;
    const void *mine = in_place ? fm_packed_view(block_at(recvbuf, c->rank, &rcv), recvcount,
                                                 rcv.t, &packed)
                                : fm_packed_view(sendbuf, sendcount, snd.t, &packed);
    char *all = landing(recvbuf, c->size, &rcv, &tmp);
    fm_gather_raw(c, mine, rcv.len, all, 0);
    fm_bcast_raw(c, all, rcv.len * c->size, 0);
    if (tmp != NULL)
        fm_unpack(tmp, rcv.len * c->size, recvcount * c->size, rcv.t, recvbuf);
    free(packed);
    free(tmp);
    return MPI_SUCCESS;
}
