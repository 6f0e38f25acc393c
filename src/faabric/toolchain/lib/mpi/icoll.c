/* The requests of the non-blocking collectives (icoll_calls.c): a set of host messages that
 * completes as a whole, then finishes in MPI_Wait/Test (unpacking, reductions).
 *
 * A collective request is done once all of its messages are; the library notices that when
 * it looks at request flags (fm_done_index, fm_lookup), so waiting on one sleeps in the host
 * like any request. Must not post messages (icoll_calls.c does) and must not block.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

static fm_request **pending; /* collective requests posted and not yet seen done */
static int npending, cap;

fm_icoll *fm_icoll_new(int kind, int nmsgs) {
    fm_icoll *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->kind = kind;
    k->msgs = calloc((size_t)nmsgs + 1, sizeof *k->msgs);
    if (k->msgs == NULL) {
        free(k);
        return NULL;
    }
    return k;
}

void fm_icoll_free(fm_icoll *k) {
    if (k == NULL)
        return;
    free(k->msgs);
    free(k->out);
    free(k->in);
    free(k);
}

fmpi_req *fm_icoll_msg(fm_icoll *k) { return &k->msgs[k->nmsgs++]; }

/* Marks done every pending collective request whose messages have all completed. */
void fm_icoll_poll(void) {
    for (int i = 0; i < npending;) {
        fm_icoll *k = pending[i]->coll;
        int done = 1;
        for (int m = 0; done && m < k->nmsgs; m++)
            done = k->msgs[m].done;
        if (!done) {
            i++;
            continue;
        }
        pending[i]->host.done = 1;
        pending[i] = pending[--npending];
    }
}

/* Makes the request for collective `k` on `comm`, before its messages are posted into it;
   frees `k` on failure. */
int fm_icoll_start(fm_icoll *k, MPI_Comm comm, MPI_Request *request) {
    if (npending == cap) {
        int grown = cap < 8 ? 8 : cap * 2;
        fm_request **more = realloc(pending, (size_t)grown * sizeof *more);
        if (more == NULL) {
            fm_icoll_free(k);
            return MPI_ERR_NO_MEM;
        }
        pending = more;
        cap = grown;
    }
    int err = fm_request_new(FM_REQ_COLL, comm, request);
    if (err != MPI_SUCCESS) {
        fm_icoll_free(k);
        return err;
    }
    fm_request *r = fm_request_get(*request);
    r->coll = k;
    r->active = 1;
    pending[npending++] = r;
    return MPI_SUCCESS;
}

/* Combines the packed contributions of every rank in rank order into recvbuf. */
static int reduce_all(fm_icoll *k) {
    const fm_type *t = fm_type_get(k->type);
    size_t raw = fm_raw_bytes(t, k->count);
    char *acc_block = fm_alloc(raw), *tmp_block = fm_alloc(raw);
    int err = acc_block && tmp_block ? MPI_SUCCESS : MPI_ERR_NO_MEM;
    char *acc = acc_block - t->true_lb, *tmp = tmp_block - t->true_lb;
    for (int j = k->size - 1; err == MPI_SUCCESS && j >= 0; j--) {
        const char *packed = k->in + (size_t)j * (size_t)k->slot;
        fm_unpack(packed, k->slot, k->count, t, j == k->size - 1 ? acc : tmp);
        if (j != k->size - 1 && fm_op_apply(k->op, k->type, tmp, acc, k->count) != MPI_SUCCESS)
            err = MPI_ERR_OP;
    }
    if (err == MPI_SUCCESS)
        fm_copy(k->recvbuf, acc, k->count, t);
    free(acc_block);
    free(tmp_block);
    return err;
}

/* Unpacks each rank's block (or only the root's) into recvbuf. */
static void unpack_blocks(fm_icoll *k) {
    const fm_type *t = fm_type_get(k->type);
    int n = k->only >= 0 ? 1 : k->size;
    for (int j = 0; j < n; j++) {
        const char *packed = k->in + (size_t)j * (size_t)k->slot;
        fm_unpack(packed, k->slot, k->count, t, (char *)k->recvbuf + j * k->count * t->extent);
    }
}

int fm_icoll_finish(fm_request *r) {
    fm_icoll *k = r->coll;
    int err = MPI_SUCCESS;
    for (int m = 0; m < k->nmsgs; m++)
        if (k->msgs[m].error != FMPI_OK)
            err = MPI_ERR_TRUNCATE;
    if (err == MPI_SUCCESS && k->kind == FM_ICOLL_REDUCE)
        err = reduce_all(k);
    else if (err == MPI_SUCCESS && k->kind == FM_ICOLL_BLOCKS)
        unpack_blocks(k);
    fm_icoll_free(k);
    r->coll = NULL;
    return err;
}
