/* One-sided data movement: MPI_Put and MPI_Get, and the pieces the read-modify-write calls
 * (rma_update.c) share: target segments and blocking transfers.
 *
 * The target's layout is the target datatype as this rank knows it (MPI requires both sides
 * to agree), flattened into byte segments of the target's window and checked against the
 * window's size here. Puts hand the host packed data, which it copies at the call; gets land
 * in the origin buffer, or in a packed buffer unpacked when the epoch ends. Must not wait
 * for an operation except in fm_rma_now.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

int fm_win_segments(const fm_win *w, int target, MPI_Aint disp, int count, const fm_type *t,
                    int32_t **segs, int *nsegs) {
    long long base = (long long)disp * w->units[target], limit = w->sizes[target];
    int32_t *out = fm_alloc((size_t)count * (size_t)t->nsegs * 2 * sizeof *out);
    int n = 0;
    if (out == NULL)
        return MPI_ERR_NO_MEM;
    for (int i = 0; i < count; i++) {
        for (int s = 0; s < t->nsegs; s++) {
            long long at = base + (long long)i * t->extent + t->segs[s].disp;
            int len = t->segs[s].len;
            if (at < 0 || at + len > limit) {
                free(out);
                return MPI_ERR_RMA_RANGE;
            }
            if (n > 0 && out[2 * n - 2] + out[2 * n - 1] == at) {
                out[2 * n - 1] += len;
                continue;
            }
            out[2 * n] = (int32_t)at;
            out[2 * n + 1] = len;
            n++;
        }
    }
    *segs = out;
    *nsegs = n;
    return MPI_SUCCESS;
}

int fm_rma_now(fm_win *w, int kind, int target, const int32_t *segs, int nsegs, void *data) {
    fmpi_req r = {0};
    fmpi_req *p = &r;
    int rc = fmpi_rma(kind, fm_win_ctx(w), fm_win_world(w, target), segs, nsegs, data, &r);
    if (rc != FMPI_OK)
        return fm_host_error(rc);
    fm_wait_all(&p, 1);
    return fm_host_error(r.error);
}

typedef struct transfer {
    int kind;
    void *origin;
    int ocount;
    MPI_Datatype otype;
    int target;
    MPI_Aint disp;
    int tcount;
    MPI_Datatype ttype;
} transfer;

/* Checks; the target's segments in *segs. Not raised. */
static int prepare(fm_win *w, const transfer *x, int32_t **segs, int *nsegs) {
    fm_type *ot = fm_type_get(x->otype), *tt = fm_type_get(x->ttype);
    int obytes, tbytes;
    if (x->target < 0 || x->target >= fm_comm_get(w->comm)->size)
        return MPI_ERR_RANK;
    if (ot == NULL || tt == NULL || !ot->committed || !tt->committed)
        return MPI_ERR_TYPE;
    if (fm_type_bytes(ot, x->ocount, &obytes) != MPI_SUCCESS ||
        fm_type_bytes(tt, x->tcount, &tbytes) != MPI_SUCCESS)
        return MPI_ERR_COUNT;
    if (obytes != tbytes)
        return MPI_ERR_ARG;
    if (x->disp < 0)
        return MPI_ERR_DISP;
    return fm_win_segments(w, x->target, x->disp, x->tcount, tt, segs, nsegs);
}

/* Starts a put or get; it completes when the epoch ends. Not raised. */
static int start(fm_win *w, const transfer *x) {
    int32_t *segs = NULL;
    int nsegs, err = prepare(w, x, &segs, &nsegs);
    fm_rma_op *op = err == MPI_SUCCESS ? calloc(1, sizeof *op) : NULL;
    if (err == MPI_SUCCESS && op == NULL)
        err = MPI_ERR_NO_MEM;
    if (err != MPI_SUCCESS) {
        free(segs);
        return err;
    }
    const fm_type *ot = fm_type_get(x->otype);
    void *data = x->origin;
    *op = (fm_rma_op){.target = x->target, .origin = x->origin, .count = x->ocount,
                      .type = x->otype};
    if (x->kind == FMPI_RMA_PUT)
        data = (void *)fm_packed_view(x->origin, x->ocount, ot, &op->tmp);
    else if (fm_is_contiguous(ot, x->ocount))
        data = (char *)x->origin + (ot->nsegs == 1 ? ot->segs[0].disp : 0);
    else
        data = op->tmp = fm_alloc((size_t)ot->size * (size_t)x->ocount);
    int rc = fmpi_rma(x->kind, fm_win_ctx(w), fm_win_world(w, x->target), segs, nsegs, data,
                      &op->host);
    free(segs);
    if (x->kind == FMPI_RMA_PUT) { /* the host copied the data at the call */
        free(op->tmp);
        op->tmp = NULL;
    }
    if (rc != FMPI_OK) {
        free(op->tmp);
        free(op);
        return fm_host_error(rc);
    }
    return fm_win_track(w, op);
}

static int transfer_call(const transfer *x, MPI_Win win, const char *fn) {
    fm_win *w = fm_win_get(win);
    if (w == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_WIN, fn);
    if (x->target == MPI_PROC_NULL)
        return MPI_SUCCESS;
    return fm_raise(w->comm, start(w, x), fn);
}

int MPI_Put(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
            int target_rank, MPI_Aint target_disp, int target_count,
            MPI_Datatype target_datatype, MPI_Win win) {
    transfer x = {FMPI_RMA_PUT, (void *)origin_addr, origin_count, origin_datatype,
                  target_rank, target_disp, target_count, target_datatype};
    return transfer_call(&x, win, "MPI_Put");
}

int MPI_Get(void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
            int target_rank, MPI_Aint target_disp, int target_count,
            MPI_Datatype target_datatype, MPI_Win win) {
    transfer x = {FMPI_RMA_GET, origin_addr, origin_count, origin_datatype, target_rank,
                  target_disp, target_count, target_datatype};
    return transfer_call(&x, win, "MPI_Get");
}
