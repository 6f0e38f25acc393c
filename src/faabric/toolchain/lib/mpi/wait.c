/* Waiting for and testing requests: MPI_Wait*, MPI_Test*, MPI_Request_free, MPI_Cancel.
 *
 * A wait spins briefly on the requests' `done` flags (written by host threads), then sleeps
 * in the host with fmpi_completions/fmpi_wait_change. The spin is bounded to a few
 * microseconds because ranks may share few cores: spins of 20-100 us were measured with 2 and
 * 4 ranks on 2 cores, on one and two workers, and made ping-pongs and barriers slower, since
 * a spinning rank holds a core the completing thread (another rank, or a data-plane reader)
 * needs. Must not post requests.
 */
#include <stdlib.h>

#include "fm_internal.h"

#define FM_SPIN 2000 /* reads of the done flags before sleeping in the host */

int fm_done_index(fmpi_req *const *reqs, int n, int want_all) {
    fm_icoll_poll();
    for (int i = 0; i < n; i++) {
        if (reqs[i] == NULL)
            continue;
        if (reqs[i]->done) {
            if (!want_all)
                return i;
        } else if (want_all) {
            return -1;
        }
    }
    return want_all ? n : -1;
}

static int wait_for(fmpi_req *const *reqs, int n, int want_all) {
    int found;
    for (int spin = 0; spin < FM_SPIN; spin++)
        if ((found = fm_done_index(reqs, n, want_all)) >= 0)
            return found;
    int seen = fmpi_completions();
    while ((found = fm_done_index(reqs, n, want_all)) < 0)
        seen = fmpi_wait_change(seen);
    return found;
}

void fm_wait_all(fmpi_req *const *reqs, int n) { wait_for(reqs, n, 1); }

int fm_wait_any(fmpi_req *const *reqs, int n) { return wait_for(reqs, n, 0); }

/* Completes request *handle into status; releases it unless persistent. */
int fm_finish(MPI_Request *handle, fm_request *r, MPI_Status *status) {
    int err = fm_request_complete(r, status);
    if (!r->persistent)
        fm_request_release(handle);
    return err;
}

/* The request behind a handle for a wait/test; *r = NULL for null or inactive handles. */
int fm_lookup(MPI_Request handle, fm_request **r) {
    *r = NULL;
    if (handle == MPI_REQUEST_NULL)
        return MPI_SUCCESS;
    fm_request *found = fm_request_get(handle);
    if (found == NULL)
        return MPI_ERR_REQUEST;
    *r = found->active ? found : NULL;
    if (found->kind == FM_REQ_COLL)
        fm_icoll_poll();
    return MPI_SUCCESS;
}

int MPI_Wait(MPI_Request *request, MPI_Status *status) {
    fm_request *r;
    if (request == NULL || fm_lookup(*request, &r) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_REQUEST, "MPI_Wait");
    if (r == NULL) {
        fm_status_empty(status);
        return MPI_SUCCESS;
    }
    fmpi_req *h = &r->host;
    fm_wait_all(&h, 1);
    MPI_Comm comm = r->comm;
    return fm_raise(comm, fm_finish(request, r, status), "MPI_Wait");
}

int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status) {
    fm_request *r;
    if (request == NULL || flag == NULL || fm_lookup(*request, &r) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_REQUEST, "MPI_Test");
    *flag = r == NULL || r->host.done;
    if (r == NULL) {
        fm_status_empty(status);
        return MPI_SUCCESS;
    }
    if (!*flag)
        return MPI_SUCCESS;
    MPI_Comm comm = r->comm;
    return fm_raise(comm, fm_finish(request, r, status), "MPI_Test");
}

/* Host requests of the active requests in handles[0..n) (NULL elsewhere); -1 if invalid. */
int fm_collect(int n, const MPI_Request handles[], fmpi_req **hosts, fm_request **rs) {
    int active = 0;
    for (int i = 0; i < n; i++) {
        if (fm_lookup(handles[i], &rs[i]) != MPI_SUCCESS)
            return -1;
        hosts[i] = rs[i] ? &rs[i]->host : NULL;
        active += rs[i] != NULL;
    }
    return active;
}

MPI_Status *fm_status_at(MPI_Status statuses[], int i) {
    return statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i];
}

/* Completes every done request; returns MPI_ERR_IN_STATUS if one failed. */
static int finish_done(int n, MPI_Request handles[], fm_request **rs, MPI_Status statuses[],
                       MPI_Comm *comm) {
    int failed = 0;
    for (int i = 0; i < n; i++) {
        if (rs[i] == NULL) {
            fm_status_empty(fm_status_at(statuses, i));
            continue;
        }
        *comm = rs[i]->comm;
        int err = fm_finish(&handles[i], rs[i], fm_status_at(statuses, i));
        failed |= err != MPI_SUCCESS;
        if (err != MPI_SUCCESS && statuses != MPI_STATUSES_IGNORE)
            statuses[i].MPI_ERROR = err;
    }
    return failed ? MPI_ERR_IN_STATUS : MPI_SUCCESS;
}

int fm_with_arrays(int n, fmpi_req ***hosts, fm_request ***rs) {
    *hosts = fm_alloc((size_t)n * sizeof **hosts);
    *rs = fm_alloc((size_t)n * sizeof **rs);
    if (*hosts && *rs)
        return MPI_SUCCESS;
    free(*hosts);
    free(*rs);
    return MPI_ERR_NO_MEM;
}

int MPI_Waitall(int count, MPI_Request requests[], MPI_Status statuses[]) {
    fmpi_req **hosts;
    fm_request **rs;
    if (count < 0 || (count > 0 && requests == NULL))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Waitall");
    if (fm_with_arrays(count, &hosts, &rs) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, "MPI_Waitall");
    MPI_Comm comm = MPI_COMM_WORLD;
    int err = fm_collect(count, requests, hosts, rs) < 0 ? MPI_ERR_REQUEST : MPI_SUCCESS;
    if (err == MPI_SUCCESS) {
        fm_wait_all(hosts, count);
        err = finish_done(count, requests, rs, statuses, &comm);
    }
    free(hosts);
    free(rs);
    return fm_raise(comm, err, "MPI_Waitall");
}

int MPI_Testall(int count, MPI_Request requests[], int *flag, MPI_Status statuses[]) {
    fmpi_req **hosts;
    fm_request **rs;
    if (count < 0 || (count > 0 && requests == NULL) || flag == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Testall");
    if (fm_with_arrays(count, &hosts, &rs) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, "MPI_Testall");
    MPI_Comm comm = MPI_COMM_WORLD;
    int err = fm_collect(count, requests, hosts, rs) < 0 ? MPI_ERR_REQUEST : MPI_SUCCESS;
    *flag = 0;
    if (err == MPI_SUCCESS && fm_done_index(hosts, count, 1) >= 0) {
        *flag = 1;
        err = finish_done(count, requests, rs, statuses, &comm);
    }
    free(hosts);
    free(rs);
    return fm_raise(comm, err, "MPI_Testall");
}

/* Waitany/Testany: `block` selects waiting. */
static int any(int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status,
               int block, const char *fn) {
    fmpi_req **hosts;
    fm_request **rs;
    if (count < 0 || (count > 0 && requests == NULL) || index == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, fn);
    if (fm_with_arrays(count, &hosts, &rs) != MPI_SUCCESS)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, fn);
    int active = fm_collect(count, requests, hosts, rs), err = MPI_SUCCESS, i = -1;
    MPI_Comm comm = MPI_COMM_WORLD;
    *index = MPI_UNDEFINED;
    *flag = active == 0;
    if (active < 0)
        err = MPI_ERR_REQUEST;
    else if (active == 0)
        fm_status_empty(status);
    else
        i = block ? fm_wait_any(hosts, count) : fm_done_index(hosts, count, 0);
    if (i >= 0) {
        *flag = 1;
        *index = i;
        comm = rs[i]->comm;
        err = fm_finish(&requests[i], rs[i], status);
    }
    free(hosts);
    free(rs);
    return fm_raise(comm, err, fn);
}

int MPI_Waitany(int count, MPI_Request requests[], int *index, MPI_Status *status) {
    int flag;
    return any(count, requests, index, &flag, status, 1, "MPI_Waitany");
}

int MPI_Testany(int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status) {
    if (flag == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Testany");
    return any(count, requests, index, flag, status, 0, "MPI_Testany");
}
