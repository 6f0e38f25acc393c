/* The request table: creating, posting, completing and releasing MPI requests.
 *
 * A request's fmpi_req is written by host threads until `done`, so requests are allocated one
 * by one and never moved; the table holds pointers. Posting packs non-contiguous send data
 * into a temporary buffer and receives non-contiguous data into one, unpacked at completion.
 * Must not block: waiting is in wait.c.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

static fm_request **reqs; /* handle h lives at reqs[h - 1] */
static int nreqs;

fm_request *fm_request_get(MPI_Request handle) {
    if (handle <= 0 || handle > nreqs)
        return NULL;
    fm_request *r = reqs[handle - 1];
    return r != NULL && !r->freed ? r : NULL;
}

int fm_request_count(void) { return nreqs; }

fm_request *fm_request_at(int index, MPI_Request *handle) {
    *handle = index + 1;
    return reqs[index];
}

/* Releases requests the program freed while pending that have completed since. */
static int reap(void) {
    int found = -1;
    fm_icoll_poll();
    for (int i = 0; i < nreqs; i++) {
        if (reqs[i] != NULL && reqs[i]->freed && reqs[i]->host.done) {
            MPI_Request h = i + 1;
            fm_request_complete(reqs[i], MPI_STATUS_IGNORE);
            fm_request_release(&h);
            found = found < 0 ? i : found;
        }
    }
    return found;
}

static int free_slot(void) {
    for (int i = 0; i < nreqs; i++)
        if (reqs[i] == NULL)
            return i;
    int reaped = reap();
    if (reaped >= 0)
        return reaped;
    int grown = nreqs < 16 ? 16 : nreqs * 2;
    fm_request **more = realloc(reqs, (size_t)grown * sizeof *more);
    if (more == NULL)
        return -1;
    memset(more + nreqs, 0, (size_t)(grown - nreqs) * sizeof *more);
    reqs = more;
    int i = nreqs;
    nreqs = grown;
    return i;
}

int fm_request_new(int kind, MPI_Comm comm, MPI_Request *handle) {
    int i = free_slot();
    fm_request *r = i < 0 ? NULL : calloc(1, sizeof *r);
    if (r == NULL)
        return MPI_ERR_NO_MEM;
    r->kind = kind;
    r->comm = comm;
    reqs[i] = r;
    *handle = i + 1;
    return MPI_SUCCESS;
}

void fm_request_release(MPI_Request *handle) {
    if (*handle > 0 && *handle <= nreqs && reqs[*handle - 1] != NULL) {
        fm_icoll_free(reqs[*handle - 1]->coll);
        free(reqs[*handle - 1]->tmp);
        free(reqs[*handle - 1]);
        reqs[*handle - 1] = NULL;
    }
    *handle = MPI_REQUEST_NULL;
}

int fm_host_error(int code) {
    switch (code) {
    case FMPI_OK: return MPI_SUCCESS;
    case FMPI_E_RANK: return MPI_ERR_RANK;
    case FMPI_E_TAG: return MPI_ERR_TAG;
    case FMPI_E_COUNT: return MPI_ERR_COUNT;
    case FMPI_E_TRUNCATE: return MPI_ERR_TRUNCATE;
    case FMPI_E_WIN: return MPI_ERR_WIN;
    case FMPI_E_RANGE: return MPI_ERR_RMA_RANGE;
    case FMPI_E_SYNC: return MPI_ERR_RMA_SYNC;
    default: return MPI_ERR_INTERN;
    }
}

static int post_send(fm_request *r, const fm_comm *c, const fm_type *t, int bytes) {
    const void *data = fm_packed_view(r->sendbuf, r->count, t, &r->tmp);
    if (data == NULL && r->tmp == NULL && bytes > 0)
        return MPI_ERR_NO_MEM;
    return fmpi_isend(c->ctx, c->world[r->peer], r->tag, data, bytes, r->sync, &r->host);
}

static int post_recv(fm_request *r, const fm_comm *c, const fm_type *t, int bytes) {
    void *into = r->buf;
    if (fm_is_contiguous(t, r->count)) {
        if (t->nsegs == 1)
            into = (char *)r->buf + t->segs[0].disp;
    } else if ((into = r->tmp = fm_alloc((size_t)bytes)) == NULL) {
        return MPI_ERR_NO_MEM;
    }
    r->cap = bytes;
    int source = r->peer == MPI_ANY_SOURCE ? FMPI_ANY_SOURCE : c->world[r->peer];
    int tag = r->tag == MPI_ANY_TAG ? FMPI_ANY_TAG : r->tag;
    return fmpi_irecv(c->ctx, source, tag, into, bytes, &r->host);
}

int fm_request_post(fm_request *r) {
    fm_comm *c = fm_comm_get(r->comm);
    fm_type *t = fm_type_get(r->type);
    int bytes = 0;
    memset((void *)&r->host, 0, sizeof r->host);
    r->cancelled = 0;
    if (c == NULL || t == NULL)
        return c == NULL ? MPI_ERR_COMM : MPI_ERR_TYPE;
    if (fm_type_bytes(t, r->count, &bytes) != MPI_SUCCESS)
        return MPI_ERR_COUNT;
    r->active = 1;
    if (r->peer == MPI_PROC_NULL) {
        r->host.done = 1;
        return MPI_SUCCESS;
    }
    int rc = r->kind == FM_REQ_SEND ? post_send(r, c, t, bytes) : post_recv(r, c, t, bytes);
    if (rc != FMPI_OK) {
        r->active = 0;
        free(r->tmp);
        r->tmp = NULL;
        return rc == MPI_ERR_NO_MEM ? rc : fm_host_error(rc);
    }
    return MPI_SUCCESS;
}

void fm_status_empty(MPI_Status *status) {
    if (status == MPI_STATUS_IGNORE)
        return;
    status->MPI_SOURCE = MPI_ANY_SOURCE;
    status->MPI_TAG = MPI_ANY_TAG;
    status->MPI_ERROR = MPI_SUCCESS;
    status->fm_count = 0;
    status->fm_cancelled = 0;
}

static int complete_recv(fm_request *r, MPI_Status *status) {
    const fmpi_req *h = &r->host;
    int got = h->length < r->cap ? h->length : r->cap;
    fm_type *t = fm_type_get(r->type);
    if (r->tmp != NULL && t != NULL)
        fm_unpack(r->tmp, got, r->count, t, r->buf);
    int err = h->error == FMPI_E_TRUNCATE ? MPI_ERR_TRUNCATE : fm_host_error(h->error);
    if (status != MPI_STATUS_IGNORE) {
        fm_comm *c = fm_comm_get(r->comm);
        status->MPI_SOURCE = c ? fm_comm_source(c, h->source) : h->source;
        status->MPI_TAG = h->tag;
        status->MPI_ERROR = err;
        status->fm_count = got;
        status->fm_cancelled = 0;
    }
    return err;
}

int fm_request_complete(fm_request *r, MPI_Status *status) {
    int err = MPI_SUCCESS;
    r->active = 0;
    fm_status_empty(status);
    if (r->cancelled) {
        if (status != MPI_STATUS_IGNORE)
            status->fm_cancelled = 1;
    } else if (r->peer == MPI_PROC_NULL) {
        if (status != MPI_STATUS_IGNORE)
            status->MPI_SOURCE = MPI_PROC_NULL;
    } else if (r->kind == FM_REQ_RECV) {
        err = complete_recv(r, status);
    } else if (r->kind == FM_REQ_COLL) {
        err = fm_icoll_finish(r);
    }
    free(r->tmp);
    r->tmp = NULL;
    return err;
}
