/* The rest of request completion: MPI_Waitsome/Testsome, freeing, cancelling and inspecting
 * requests, and draining requests the program freed while they were pending.
 *
 * Must not post requests; wait.c holds the waiting loop these calls use.
 */
#include <stdlib.h>

#include "fm_internal.h"

static int some(int incount, MPI_Request requests[], int *outcount, int indices[],
                MPI_Status statuses[], int block, const char *fn) {
    fmpi_req **hosts;
    fm_request **rs;
    if (incount < 0 || (incount > 0 && (requests == NULL || indices == NULL)) || !outcount)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, fn);
    if (fm_with_arrays(incount, &hosts, &rs) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, fn);
    int active = fm_collect(incount, requests, hosts, rs), failed = 0;
    MPI_Comm comm = MPI_COMM_WORLD;
    *outcount = active == 0 ? MPI_UNDEFINED : 0;
    if (active > 0 && block)
        fm_wait_any(hosts, incount);
    for (int i = 0; active > 0 && i < incount; i++) {
        if (rs[i] == NULL || !rs[i]->host.done)
            continue;
        MPI_Status *st = fm_status_at(statuses, *outcount);
        comm = rs[i]->comm;
        int err = fm_finish(&requests[i], rs[i], st);
        if (err != MPI_SUCCESS && st != MPI_STATUS_IGNORE)
            st->MPI_ERROR = err;
        failed |= err != MPI_SUCCESS;
        indices[(*outcount)++] = i;
    }
    free(hosts);
    free(rs);
    if (active < 0)
        return fm_raise(comm, MPI_ERR_REQUEST, fn);
    return fm_raise(comm, failed ? MPI_ERR_IN_STATUS : MPI_SUCCESS, fn);
}

int MPI_Waitsome(int incount, MPI_Request requests[], int *outcount, int indices[],
                 MPI_Status statuses[]) {
    return some(incount, requests, outcount, indices, statuses, 1, "MPI_Waitsome");
}

int MPI_Testsome(int incount, MPI_Request requests[], int *outcount, int indices[],
                 MPI_Status statuses[]) {
    return some(incount, requests, outcount, indices, statuses, 0, "MPI_Testsome");
}

int MPI_Request_free(MPI_Request *request) {
    fm_request *r = request ? fm_request_get(*request) : NULL;
    if (r == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_REQUEST, "MPI_Request_free");
    fm_icoll_poll();
    if (r->active && !r->host.done) {
        r->freed = 1; /* completed and released by fm_requests_drain */
        *request = MPI_REQUEST_NULL;
        return MPI_SUCCESS;
    }
    if (r->active)
        fm_request_complete(r, MPI_STATUS_IGNORE);
    fm_request_release(request);
    return MPI_SUCCESS;
}

int MPI_Request_get_status(MPI_Request request, int *flag, MPI_Status *status) {
    fm_request *r;
    if (flag == NULL || fm_lookup(request, &r) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_REQUEST, "MPI_Request_get_status");
    *flag = r == NULL || r->host.done;
    fm_status_empty(status);
    if (r == NULL || !*flag || status == MPI_STATUS_IGNORE)
        return MPI_SUCCESS;
    if (r->kind == FM_REQ_RECV && r->peer != MPI_PROC_NULL && !r->cancelled) {
        fm_comm *c = fm_comm_get(r->comm);
        status->MPI_SOURCE = c ? fm_comm_source(c, r->host.source) : r->host.source;
        status->MPI_TAG = r->host.tag;
        status->fm_count = r->host.length < r->cap ? r->host.length : r->cap;
        status->MPI_ERROR = r->host.error == FMPI_E_TRUNCATE ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
    }
    status->fm_cancelled = r->cancelled;
    return MPI_SUCCESS;
}

int MPI_Cancel(MPI_Request *request) {
    fm_request *r;
    if (request == NULL || fm_lookup(*request, &r) != MPI_SUCCESS || r == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_REQUEST, "MPI_Cancel");
    if (r->kind != FM_REQ_RECV || r->host.done || r->peer == MPI_PROC_NULL)
        return MPI_SUCCESS; /* sends and matched receives complete as usual */
    if (fmpi_cancel(&r->host) == 1) {
        r->cancelled = 1;
        r->host.done = 1; /* the host will never complete it */
    }
    return MPI_SUCCESS;
}

int MPI_Test_cancelled(const MPI_Status *status, int *flag) {
    if (status == NULL || flag == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Test_cancelled");
    *flag = status->fm_cancelled;
    return MPI_SUCCESS;
}

void fm_requests_drain(void) {
    for (int i = 0; i < fm_request_count(); i++) {
        MPI_Request handle;
        fm_request *r = fm_request_at(i, &handle);
        if (r == NULL || !r->freed)
            continue;
        fmpi_req *h = &r->host;
        fm_wait_all(&h, 1);
        fm_request_complete(r, MPI_STATUS_IGNORE);
        fm_request_release(&handle);
    }
}
