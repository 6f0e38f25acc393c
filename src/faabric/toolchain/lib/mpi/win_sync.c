/* Epochs of one-sided communication: MPI_Win_fence, lock/unlock (one target or all),
 * flushes and MPI_Win_sync, and the list of operations started in the current epoch.
 *
 * Operations complete in the host on their own; ending an epoch (or a flush) waits for this
 * rank's operations, so once every rank passed the barrier of a fence, every operation of
 * the epoch before it is complete at its target. Locks are the host's (fmpi_win_lock),
 * granted eagerly at MPI_Win_lock. The memory model is unified: there is one copy of the
 * window, so MPI_Win_sync has nothing to do. Must not start operations (rma.c).
 */
#include <stdlib.h>

#include "fm_internal.h"

int fm_win_track(fm_win *w, fm_rma_op *op) {
    if (w->nops == w->capops) {
        int grown = w->capops < 16 ? 16 : w->capops * 2;
        fm_rma_op **more = realloc(w->ops, (size_t)grown * sizeof *more);
        if (more == NULL)
            return MPI_ERR_NO_MEM;
        w->ops = more;
        w->capops = grown;
    }
    w->ops[w->nops++] = op;
    return MPI_SUCCESS;
}

/* Finishes a completed operation (unpacks a get); its error as an MPI code. */
static int finish(fm_rma_op *op) {
    int err = fm_host_error(op->host.error);
    if (err == MPI_SUCCESS && op->tmp != NULL)
        fm_unpack(op->tmp, op->host.length, op->count, fm_type_get(op->type), op->origin);
    free(op->tmp);
    free(op);
    return err;
}

int fm_win_complete(fm_win *w, int target) {
    int err = MPI_SUCCESS, kept = 0;
    for (int i = 0; i < w->nops; i++) {
        fm_rma_op *op = w->ops[i];
        if (target >= 0 && op->target != target) {
            w->ops[kept++] = op;
            continue;
        }
        fmpi_req *h = &op->host;
        fm_wait_all(&h, 1);
        int e = finish(op);
        err = err == MPI_SUCCESS ? e : err;
    }
    w->nops = kept;
    return err;
}

int fm_win_lock_host(fm_win *w, int target, int kind, int acquire) {
    fmpi_req r = {0};
    fmpi_req *p = &r;
    int rc = fmpi_win_lock(fm_win_ctx(w), fm_win_world(w, target), kind, acquire, &r);
    if (rc != FMPI_OK)
        return fm_host_error(rc);
    fm_wait_all(&p, 1);
    return fm_host_error(r.error);
}

static fm_win *window(MPI_Win win, int rank, const char *fn, int *err) {
    fm_win *w = fm_win_get(win);
    *err = w == NULL ? MPI_ERR_WIN : MPI_SUCCESS;
    if (w != NULL && rank != MPI_PROC_NULL && (rank < 0 || rank >= fm_comm_get(w->comm)->size))
        *err = MPI_ERR_RANK;
    if (*err != MPI_SUCCESS)
        fm_raise(w ? w->comm : MPI_COMM_WORLD, *err, fn);
    return *err == MPI_SUCCESS ? w : NULL;
}

int MPI_Win_fence(int assert, MPI_Win win) {
    int err;
    fm_win *w = window(win, 0, "MPI_Win_fence", &err);
    if (w == NULL)
        return err;
    (void)assert;
    err = fm_win_complete(w, -1);
    int barrier = MPI_Barrier(w->comm);
    return fm_raise(w->comm, err != MPI_SUCCESS ? err : barrier, "MPI_Win_fence");
}

static int lock(fm_win *w, int type, int rank, int assert) {
    if (type != MPI_LOCK_SHARED && type != MPI_LOCK_EXCLUSIVE)
        return MPI_ERR_LOCKTYPE;
    if (w->locks[rank] != 0)
        return MPI_ERR_RMA_SYNC;
    if (assert & MPI_MODE_NOCHECK) {
        w->locks[rank] = -type;
        return MPI_SUCCESS;
    }
    int kind = type == MPI_LOCK_SHARED ? FMPI_LOCK_SHARED : FMPI_LOCK_EXCLUSIVE;
    int err = fm_win_lock_host(w, rank, kind, 1);
    if (err == MPI_SUCCESS)
        w->locks[rank] = type;
    return err;
}

static int unlock(fm_win *w, int rank) {
    int held = w->locks[rank];
    if (held == 0)
        return MPI_ERR_RMA_SYNC;
    int err = fm_win_complete(w, rank);
    w->locks[rank] = 0;
    if (held < 0)
        return err;
    int kind = held == MPI_LOCK_SHARED ? FMPI_LOCK_SHARED : FMPI_LOCK_EXCLUSIVE;
    int given = fm_win_lock_host(w, rank, kind, 0);
    return err != MPI_SUCCESS ? err : given;
}

int MPI_Win_lock(int lock_type, int rank, int assert, MPI_Win win) {
    int err;
    fm_win *w = window(win, rank, "MPI_Win_lock", &err);
    if (w == NULL || rank == MPI_PROC_NULL)
        return err;
    return fm_raise(w->comm, lock(w, lock_type, rank, assert), "MPI_Win_lock");
}

int MPI_Win_unlock(int rank, MPI_Win win) {
    int err;
    fm_win *w = window(win, rank, "MPI_Win_unlock", &err);
    if (w == NULL || rank == MPI_PROC_NULL)
        return err;
    return fm_raise(w->comm, unlock(w, rank), "MPI_Win_unlock");
}

int MPI_Win_lock_all(int assert, MPI_Win win) {
    int err;
    fm_win *w = window(win, 0, "MPI_Win_lock_all", &err);
    for (int r = 0; w != NULL && err == MPI_SUCCESS && r < fm_comm_get(w->comm)->size; r++)
        err = lock(w, MPI_LOCK_SHARED, r, assert);
    return w == NULL ? err : fm_raise(w->comm, err, "MPI_Win_lock_all");
}

int MPI_Win_unlock_all(MPI_Win win) {
    int err;
    fm_win *w = window(win, 0, "MPI_Win_unlock_all", &err);
    for (int r = 0; w != NULL && r < fm_comm_get(w->comm)->size; r++) {
        int e = w->locks[r] != 0 ? unlock(w, r) : MPI_SUCCESS;
        err = err == MPI_SUCCESS ? e : err;
    }
    return w == NULL ? err : fm_raise(w->comm, err, "MPI_Win_unlock_all");
}

static int flush(MPI_Win win, int rank, const char *fn) {
    int err;
    fm_win *w = window(win, rank < 0 ? 0 : rank, fn, &err);
    if (w == NULL)
        return err;
    return fm_raise(w->comm, fm_win_complete(w, rank), fn);
}

int MPI_Win_flush(int rank, MPI_Win win) { return flush(win, rank, "MPI_Win_flush"); }

int MPI_Win_flush_all(MPI_Win win) { return flush(win, -1, "MPI_Win_flush_all"); }

int MPI_Win_flush_local(int rank, MPI_Win win) {
    return flush(win, rank, "MPI_Win_flush_local");
}

int MPI_Win_flush_local_all(MPI_Win win) { return flush(win, -1, "MPI_Win_flush_local_all"); }

int MPI_Win_sync(MPI_Win win) {
    int err;
    window(win, 0, "MPI_Win_sync", &err);
    return err;
}
