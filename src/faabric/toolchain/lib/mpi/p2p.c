/* Point-to-point communication: sends in every mode, receives, persistent requests and
 * MPI_Sendrecv(_replace).
 *
 * Every call is a request posted to the host (tag matching is the host's) and, for blocking
 * calls, waited on at once. Argument checks follow MPI's error classes. Must not touch the
 * collective context: user traffic uses the communicator's ctx only.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct p2p_args {
    int kind;
    const void *buf;
    int count;
    MPI_Datatype type;
    int peer, tag;
    MPI_Comm comm;
    int sync;
} p2p_args;

static int check(const p2p_args *a) {
    fm_comm *c = fm_comm_get(a->comm);
    fm_type *t = fm_type_get(a->type);
    int bytes, recv = a->kind == FM_REQ_RECV;
    if (c == NULL)
        return MPI_ERR_COMM;
    if (t == NULL || !t->committed)
        return MPI_ERR_TYPE;
    if (fm_type_bytes(t, a->count, &bytes) != MPI_SUCCESS)
        return MPI_ERR_COUNT;
    if (a->buf == NULL && bytes > 0)
        return MPI_ERR_BUFFER;
    if (a->peer != MPI_PROC_NULL && !(recv && a->peer == MPI_ANY_SOURCE) &&
        (a->peer < 0 || a->peer >= c->size))
        return MPI_ERR_RANK;
    if (!(recv && a->tag == MPI_ANY_TAG) && (a->tag < 0 || a->tag > FM_TAG_UB))
        return MPI_ERR_TAG;
    return MPI_SUCCESS;
}

/* Creates (and unless `persistent`, posts) the request for `a`. Not raised. */
static int make(const p2p_args *a, int persistent, MPI_Request *out) {
    int err = out == NULL ? MPI_ERR_ARG : check(a);
    if (err != MPI_SUCCESS)
        return err;
    if ((err = fm_request_new(a->kind, a->comm, out)) != MPI_SUCCESS)
        return err;
    fm_request *r = fm_request_get(*out);
    r->buf = (void *)a->buf;
    r->sendbuf = a->buf;
    r->count = a->count;
    r->type = a->type;
    r->peer = a->peer;
    r->tag = a->tag;
    r->sync = a->sync;
    r->persistent = persistent;
    if (!persistent && (err = fm_request_post(r)) != MPI_SUCCESS)
        fm_request_release(out);
    return err;
}

static int wait_one(MPI_Request *handle, MPI_Status *status) {
    fm_request *r = fm_request_get(*handle);
    fmpi_req *h = &r->host;
    fm_wait_all(&h, 1);
    return fm_finish(handle, r, status);
}

static int blocking(const p2p_args *a, MPI_Status *status, const char *fn) {
    MPI_Request handle;
    int err = make(a, 0, &handle);
    if (err == MPI_SUCCESS)
        err = wait_one(&handle, status);
    return fm_raise(a->comm, err, fn);
}

#define SEND_ARGS(sync_) {FM_REQ_SEND, buf, count, datatype, dest, tag, comm, sync_}
#define RECV_ARGS {FM_REQ_RECV, buf, count, datatype, source, tag, comm, 0}

int MPI_Send(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
             MPI_Comm comm) {
    p2p_args a = SEND_ARGS(0);
    return blocking(&a, MPI_STATUS_IGNORE, "MPI_Send");
}

int MPI_Ssend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
              MPI_Comm comm) {
    p2p_args a = SEND_ARGS(1);
    return blocking(&a, MPI_STATUS_IGNORE, "MPI_Ssend");
}

int MPI_Rsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
              MPI_Comm comm) {
    p2p_args a = SEND_ARGS(0);
    return blocking(&a, MPI_STATUS_IGNORE, "MPI_Rsend");
}

int MPI_Recv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
             MPI_Status *status) {
    p2p_args a = RECV_ARGS;
    return blocking(&a, status, "MPI_Recv");
}

int MPI_Isend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
              MPI_Comm comm, MPI_Request *request) {
    p2p_args a = SEND_ARGS(0);
    return fm_raise(comm, make(&a, 0, request), "MPI_Isend");
}

int MPI_Issend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
               MPI_Comm comm, MPI_Request *request) {
    p2p_args a = SEND_ARGS(1);
    return fm_raise(comm, make(&a, 0, request), "MPI_Issend");
}

int MPI_Irsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
               MPI_Comm comm, MPI_Request *request) {
    p2p_args a = SEND_ARGS(0);
    return fm_raise(comm, make(&a, 0, request), "MPI_Irsend");
}

int MPI_Irecv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
              MPI_Request *request) {
    p2p_args a = RECV_ARGS;
    return fm_raise(comm, make(&a, 0, request), "MPI_Irecv");
}

int MPI_Send_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
                  MPI_Comm comm, MPI_Request *request) {
    p2p_args a = SEND_ARGS(0);
    return fm_raise(comm, make(&a, 1, request), "MPI_Send_init");
}

int MPI_Recv_init(void *buf, int count, MPI_Datatype datatype, int source, int tag,
                  MPI_Comm comm, MPI_Request *request) {
    p2p_args a = RECV_ARGS;
    return fm_raise(comm, make(&a, 1, request), "MPI_Recv_init");
}

int MPI_Start(MPI_Request *request) {
    fm_request *r = request ? fm_request_get(*request) : NULL;
    if (r == NULL || !r->persistent || r->active)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_REQUEST, "MPI_Start");
    return fm_raise(r->comm, fm_request_post(r), "MPI_Start");
}

int MPI_Startall(int count, MPI_Request requests[]) {
    if (count < 0 || (count > 0 && requests == NULL))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Startall");
    for (int i = 0; i < count; i++) {
        int err = MPI_Start(&requests[i]);
        if (err != MPI_SUCCESS)
            return err;
    }
    return MPI_SUCCESS;
}

int MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest,
                 int sendtag, void *recvbuf, int recvcount, MPI_Datatype recvtype, int source,
                 int recvtag, MPI_Comm comm, MPI_Status *status) {
    p2p_args ra = {FM_REQ_RECV, recvbuf, recvcount, recvtype, source, recvtag, comm, 0};
    p2p_args sa = {FM_REQ_SEND, sendbuf, sendcount, sendtype, dest, sendtag, comm, 0};
    MPI_Request rh = MPI_REQUEST_NULL, sh = MPI_REQUEST_NULL;
    fm_comm *c = fm_comm_get(comm);
    int recv_first = c == NULL || source < 0 || source >= c->size || fm_receive_first(c, source);
    int err = recv_first ? make(&ra, 0, &rh) : make(&sa, 0, &sh);
    if (err == MPI_SUCCESS && (err = recv_first ? make(&sa, 0, &sh) : make(&ra, 0, &rh)))
        wait_one(recv_first ? &rh : &sh, MPI_STATUS_IGNORE); /* cannot cancel: let it end */
    if (err == MPI_SUCCESS) {
        wait_one(&sh, MPI_STATUS_IGNORE);
        err = wait_one(&rh, status);
    }
    return fm_raise(comm, err, "MPI_Sendrecv");
}

int MPI_Sendrecv_replace(void *buf, int count, MPI_Datatype datatype, int dest, int sendtag,
                         int source, int recvtag, MPI_Comm comm, MPI_Status *status) {
    fm_type *t = fm_type_get(datatype);
    int bytes = 0;
    if (t == NULL || !t->committed || fm_type_bytes(t, count, &bytes) != MPI_SUCCESS)
        return fm_raise(comm, t && t->committed ? MPI_ERR_COUNT : MPI_ERR_TYPE,
                        "MPI_Sendrecv_replace");
    void *copy = fm_alloc((size_t)bytes);
    if (copy == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Sendrecv_replace");
    fm_pack(buf, count, t, copy);
    p2p_args sa = {FM_REQ_SEND, copy, bytes, MPI_BYTE, dest, sendtag, comm, 0};
    p2p_args ra = {FM_REQ_RECV, buf, count, datatype, source, recvtag, comm, 0};
    MPI_Request rh = MPI_REQUEST_NULL, sh = MPI_REQUEST_NULL;
    int err = make(&sa, 0, &sh);
    if (err == MPI_SUCCESS) {
        err = make(&ra, 0, &rh);
        wait_one(&sh, MPI_STATUS_IGNORE);
        if (err == MPI_SUCCESS)
            err = wait_one(&rh, status);
    }
    free(copy);
    return fm_raise(comm, err, "MPI_Sendrecv_replace");
}
