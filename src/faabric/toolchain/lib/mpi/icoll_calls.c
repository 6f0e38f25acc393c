/* Non-blocking collectives: MPI_Ibarrier, Ibcast, Ireduce, Iallreduce, Iallgather, Ialltoall.
 *
 * Each posts all of its messages at the call, directly between the ranks concerned (no
 * trees: a message per pair that exchanges data), on the communicator's collective context
 * under a tag of its own. The host completes them while the program does anything else, so
 * no rank has to call MPI for another rank's collective to progress. Outgoing data is packed
 * at the call; received data is unpacked, and reductions applied in rank order, when the
 * request completes (MPI_Wait/Test). Collectives are matched in the order they are called,
 * as MPI requires every rank to call them in the same order. Must not block.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct args {
    const char *fn;
    MPI_Comm comm;
    fm_comm *c;
} args;

static void send_to(fm_icoll *k, const fm_comm *c, int to, const void *buf, int len) {
    fm_cisend(c, to, FM_TAG_ICOLL, buf, len, fm_icoll_msg(k));
}

static void recv_from(fm_icoll *k, const fm_comm *c, int from, void *buf, int len) {
    fm_cirecv(c, from, FM_TAG_ICOLL, buf, len, fm_icoll_msg(k));
}

/* Common checks; MPI_SUCCESS or the error class (not raised). */
static int check(args *a, MPI_Request *request) {
    a->c = fm_comm_get(a->comm);
    if (a->c == NULL)
        return MPI_ERR_COMM;
    return request == NULL ? MPI_ERR_ARG : MPI_SUCCESS;
}

/* A block of `count` elements of `type`: its packed size in *bytes, or an error. */
static int block(MPI_Datatype type, int count, int *bytes) {
    fm_type *t = fm_type_get(type);
    if (t == NULL || !t->committed)
        return MPI_ERR_TYPE;
    return fm_type_bytes(t, count, bytes);
}

static fm_icoll *make(const fm_comm *c, int kind, int slot, int slots, int out) {
    fm_icoll *k = fm_icoll_new(kind, 2 * c->size);
    if (k == NULL)
        return NULL;
    k->rank = c->rank;
    k->size = c->size;
    k->slot = slot;
    k->only = -1;
    k->in = fm_alloc((size_t)slot * (size_t)slots);
    k->out = fm_alloc((size_t)out);
    if (k->in == NULL || k->out == NULL) {
        fm_icoll_free(k);
        return NULL;
    }
    return k;
}

int MPI_Ibarrier(MPI_Comm comm, MPI_Request *request) {
    args a = {"MPI_Ibarrier", comm, NULL};
    int err = check(&a, request);
    fm_icoll *k = err == MPI_SUCCESS ? make(a.c, FM_ICOLL_SYNC, 0, 0, 0) : NULL;
    if (err == MPI_SUCCESS && k == NULL)
        err = MPI_ERR_NO_MEM;
    if (err == MPI_SUCCESS && (err = fm_icoll_start(k, comm, request)) == MPI_SUCCESS) {
        for (int j = 0; j < a.c->size; j++)
            if (j != a.c->rank)
                recv_from(k, a.c, j, NULL, 0);
        for (int j = 0; j < a.c->size; j++)
            if (j != a.c->rank)
                send_to(k, a.c, j, NULL, 0);
    }
    return fm_raise(comm, err, a.fn);
}

static void post_bcast(fm_icoll *k, const fm_comm *c, void *buffer, int root) {
    if (c->rank == root) {
        for (int j = 0; j < c->size; j++)
            if (j != root)
                send_to(k, c, j, k->out, k->slot);
    } else {
        recv_from(k, c, root, k->in, k->slot);
    }
    k->recvbuf = buffer;
}

int MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
               MPI_Request *request) {
    args a = {"MPI_Ibcast", comm, NULL};
    int bytes = 0, err = check(&a, request);
    if (err == MPI_SUCCESS)
        err = block(datatype, count, &bytes);
    if (err == MPI_SUCCESS && (root < 0 || root >= a.c->size))
        err = MPI_ERR_ROOT;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, a.fn);
    int me = a.c->rank == root;
    fm_icoll *k = make(a.c, me ? FM_ICOLL_SYNC : FM_ICOLL_BLOCKS, bytes, 1, me ? bytes : 0);
    if (k == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, a.fn);
    k->only = root;
    k->count = count;
    k->type = datatype;
    if (me)
        fm_pack(buffer, count, fm_type_get(datatype), k->out);
    if ((err = fm_icoll_start(k, comm, request)) == MPI_SUCCESS)
        post_bcast(k, a.c, buffer, root);
    return fm_raise(comm, err, a.fn);
}

/* Receives every other rank's block into its slot of k->in, and sends each other rank j the
   `k->slot` bytes at out + j * stride (stride 0: the same block to all). */
static void post_exchange(fm_icoll *k, const fm_comm *c, const char *out, size_t stride) {
    for (int j = 0; j < c->size; j++)
        if (j != c->rank)
            recv_from(k, c, j, k->in + (size_t)j * (size_t)k->slot, k->slot);
    for (int j = 0; j < c->size; j++)
        if (j != c->rank)
            send_to(k, c, j, out + (size_t)j * stride, k->slot);
}

/* Checks a send block against a receive block: both must carry the same bytes. */
static int blocks(const void *sendbuf, int scount, MPI_Datatype stype, int rcount,
                  MPI_Datatype rtype, int *bytes) {
    int sbytes = 0, err = block(rtype, rcount, bytes);
    if (err == MPI_SUCCESS && sendbuf != MPI_IN_PLACE)
        err = block(stype, scount, &sbytes);
    if (err == MPI_SUCCESS && sendbuf != MPI_IN_PLACE && sbytes != *bytes)
        err = MPI_ERR_TRUNCATE;
    return err;
}

int MPI_Iallgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                   int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request) {
    args a = {"MPI_Iallgather", comm, NULL};
    int bytes = 0, err = check(&a, request);
    if (err == MPI_SUCCESS)
        err = blocks(sendbuf, sendcount, sendtype, recvcount, recvtype, &bytes);
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, a.fn);
    fm_icoll *k = make(a.c, FM_ICOLL_BLOCKS, bytes, a.c->size, 0);
    if (k == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, a.fn);
    const fm_type *rt = fm_type_get(recvtype);
    char *mine = k->in + (size_t)a.c->rank * (size_t)bytes;
    if (sendbuf == MPI_IN_PLACE)
        fm_pack((char *)recvbuf + a.c->rank * recvcount * rt->extent, recvcount, rt, mine);
    else
        fm_pack(sendbuf, sendcount, fm_type_get(sendtype), mine);
    k->recvbuf = recvbuf;
    k->count = recvcount;
    k->type = recvtype;
    if ((err = fm_icoll_start(k, comm, request)) == MPI_SUCCESS)
        post_exchange(k, a.c, mine, 0);
    return fm_raise(comm, err, a.fn);
}

int MPI_Ialltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request) {
    args a = {"MPI_Ialltoall", comm, NULL};
    int bytes = 0, err = check(&a, request);
    if (err == MPI_SUCCESS)
        err = blocks(sendbuf, sendcount, sendtype, recvcount, recvtype, &bytes);
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, a.fn);
    size_t slot = (size_t)bytes, size = (size_t)a.c->size;
    fm_icoll *k = make(a.c, FM_ICOLL_BLOCKS, bytes, a.c->size, (int)(slot * size));
    if (k == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, a.fn);
    int in_place = sendbuf == MPI_IN_PLACE;
    const fm_type *st = fm_type_get(in_place ? recvtype : sendtype);
    int scount = in_place ? recvcount : sendcount;
    const char *src = in_place ? recvbuf : sendbuf;
    for (size_t j = 0; j < size; j++)
        fm_pack(src + (MPI_Aint)j * scount * st->extent, scount, st, k->out + j * slot);
    memcpy(k->in + (size_t)a.c->rank * slot, k->out + (size_t)a.c->rank * slot, slot);
    k->recvbuf = recvbuf;
    k->count = recvcount;
    k->type = recvtype;
    if ((err = fm_icoll_start(k, comm, request)) == MPI_SUCCESS)
        post_exchange(k, a.c, k->out, slot);
    return fm_raise(comm, err, a.fn);
}

/* Ireduce (root >= 0) and Iallreduce (root < 0). */
static int ireduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                   MPI_Op op, int root, args *a, MPI_Request *request) {
    fm_type *t;
    int bytes = 0, err = check(a, request);
    if (err == MPI_SUCCESS)
        err = fm_reduce_args(a->comm, count, datatype, op, &a->c, &t);
    if (err == MPI_SUCCESS && root >= a->c->size)
        err = MPI_ERR_ROOT;
    if (err != MPI_SUCCESS)
        return err;
    fm_type_bytes(t, count, &bytes);
    int gets = root < 0 || root == a->c->rank;
    fm_icoll *k = make(a->c, gets ? FM_ICOLL_REDUCE : FM_ICOLL_SYNC, bytes,
                       gets ? a->c->size : 1, 0);
    if (k == NULL)
        return MPI_ERR_NO_MEM;
    char *mine = k->in + (gets ? (size_t)a->c->rank * (size_t)bytes : 0);
    fm_pack(sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, count, t, mine);
    k->recvbuf = recvbuf;
    k->count = count;
    k->type = datatype;
    k->op = op;
    if ((err = fm_icoll_start(k, a->comm, request)) != MPI_SUCCESS)
        return err;
    if (root < 0) {
        post_exchange(k, a->c, mine, 0);
    } else if (gets) {
        for (int j = 0; j < a->c->size; j++)
            if (j != root)
                recv_from(k, a->c, j, k->in + (size_t)j * (size_t)bytes, bytes);
    } else {
        send_to(k, a->c, root, mine, bytes);
    }
    return MPI_SUCCESS;
}

int MPI_Ireduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                MPI_Op op, int root, MPI_Comm comm, MPI_Request *request) {
    args a = {"MPI_Ireduce", comm, NULL};
    int err = root < 0 ? MPI_ERR_ROOT
                       : ireduce(sendbuf, recvbuf, count, datatype, op, root, &a, request);
    return fm_raise(comm, err, a.fn);
}

int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                   MPI_Op op, MPI_Comm comm, MPI_Request *request) {
    args a = {"MPI_Iallreduce", comm, NULL};
    int err = ireduce(sendbuf, recvbuf, count, datatype, op, -1, &a, request);
    return fm_raise(comm, err, a.fn);
}
