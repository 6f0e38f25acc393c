/* Read-modify-write one-sided calls: MPI_Accumulate, MPI_Get_accumulate, MPI_Fetch_and_op and
 * MPI_Compare_and_swap.
 *
 * Each is a cycle under the target window's update lock (a host lock only these calls
 * take): read the target's bytes, combine them here with the library's own operation
 * kernels (so every predefined operation on every predefined type works as in reductions),
 * write the result back, give the lock back. So updates of one target are atomic with
 * respect to each other, whatever epoch they run in, and complete before the call returns.
 * Must not be used for plain puts and gets (rma.c).
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct update {
    const void *origin;    /* NULL: nothing to combine (MPI_NO_OP) */
    int ocount;
    MPI_Datatype otype;
    void *result;          /* NULL: the old value is not wanted */
    int rcount;
    MPI_Datatype rtype;
    const void *compare;   /* compare-and-swap: the expected value (datatype ttype) */
    int target;
    MPI_Aint disp;
    int tcount;
    MPI_Datatype ttype;
    MPI_Op op;
} update;

/* The predefined type every element of t is made of, or 0. */
static MPI_Datatype base_of(MPI_Datatype type, const fm_type *t) {
    return t->predefined ? type : t->base;
}

/* old = origin op old, both packed; n elements of the predefined type `base`. */
static int combine(MPI_Op op, MPI_Datatype base, int n, const char *origin, char *old) {
    const fm_type *bt = fm_type_get(base);
    size_t raw = fm_raw_bytes(bt, n), bytes = (size_t)n * (size_t)bt->size;
    char *in_block = fm_alloc(raw), *acc_block = fm_alloc(raw);
    int err = in_block && acc_block ? MPI_SUCCESS : MPI_ERR_NO_MEM;
    if (err == MPI_SUCCESS) {
        char *in = in_block - bt->true_lb, *acc = acc_block - bt->true_lb;
        fm_unpack(origin, (int)bytes, n, bt, in);
        fm_unpack(old, (int)bytes, n, bt, acc);
        err = fm_op_apply(op, base, in, acc, n);
        fm_pack(acc, n, bt, old);
    }
    free(in_block);
    free(acc_block);
    return err;
}

/* The new bytes for the target, in `old` (packed origin data in `mine`); *write = 0 when
   nothing is to be written. */
static int next_value(const update *u, const fm_type *tt, int bytes, const char *mine,
                      char *old, int *write) {
    *write = u->origin != NULL && u->op != MPI_NO_OP;
    if (u->compare != NULL) {
        char *expected = fm_alloc((size_t)bytes);
        if (expected == NULL)
            return MPI_ERR_NO_MEM;
        fm_pack(u->compare, u->tcount, tt, expected);
        *write = memcmp(expected, old, (size_t)bytes) == 0;
        free(expected);
    }
    if (*write && (u->compare != NULL || u->op == MPI_REPLACE)) {
        memcpy(old, mine, (size_t)bytes);
        return MPI_SUCCESS;
    }
    MPI_Datatype base = base_of(u->ttype, tt);
    if (!*write)
        return MPI_SUCCESS;
    if (base == 0)
        return MPI_ERR_TYPE;
    return combine(u->op, base, bytes / fm_type_get(base)->size, mine, old);
}

static int checks(const fm_win *w, const update *u, int *bytes) {
    fm_type *tt = fm_type_get(u->ttype), *ot = fm_type_get(u->otype);
    int obytes = 0;
    if (u->target < 0 || u->target >= fm_comm_get(w->comm)->size)
        return MPI_ERR_RANK;
    if (tt == NULL || !tt->committed || (u->origin && (ot == NULL || !ot->committed)))
        return MPI_ERR_TYPE;
    if (fm_type_bytes(tt, u->tcount, bytes) != MPI_SUCCESS ||
        (u->origin && fm_type_bytes(ot, u->ocount, &obytes) != MPI_SUCCESS))
        return MPI_ERR_COUNT;
    if (u->origin && obytes != *bytes)
        return MPI_ERR_ARG;
    if (u->disp < 0)
        return MPI_ERR_DISP;
    if (u->op != MPI_REPLACE && u->op != MPI_NO_OP && u->compare == NULL) {
        MPI_Datatype base = base_of(u->ttype, tt);
        return base == 0 ? MPI_ERR_TYPE : fm_op_check(u->op, base);
    }
    return MPI_SUCCESS;
}

/* The cycle, with the update lock held. */
static int cycle(fm_win *w, const update *u, const int32_t *segs, int nsegs, int bytes) {
    const fm_type *tt = fm_type_get(u->ttype);
    char *old = fm_alloc((size_t)bytes), *mine = fm_alloc((size_t)bytes);
    int err = old && mine ? MPI_SUCCESS : MPI_ERR_NO_MEM, write = 0;
    if (err == MPI_SUCCESS)
        err = fm_rma_now(w, FMPI_RMA_GET, u->target, segs, nsegs, old);
    if (err == MPI_SUCCESS && u->result != NULL)
        fm_unpack(old, bytes, u->rcount, fm_type_get(u->rtype), u->result);
    if (err == MPI_SUCCESS && u->origin != NULL)
        fm_pack(u->origin, u->ocount, fm_type_get(u->otype), mine);
    if (err == MPI_SUCCESS)
        err = next_value(u, tt, bytes, mine, old, &write);
    if (err == MPI_SUCCESS && write)
        err = fm_rma_now(w, FMPI_RMA_PUT, u->target, segs, nsegs, old);
    free(old);
    free(mine);
    return err;
}

static int run(const update *u, MPI_Win win, const char *fn) {
    fm_win *w = fm_win_get(win);
    int32_t *segs = NULL;
    int nsegs = 0, bytes = 0;
    if (w == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_WIN, fn);
    if (u->target == MPI_PROC_NULL)
        return MPI_SUCCESS;
    int err = checks(w, u, &bytes);
    if (err == MPI_SUCCESS)
        err = fm_win_segments(w, u->target, u->disp, u->tcount, fm_type_get(u->ttype), &segs,
                              &nsegs);
    if (err == MPI_SUCCESS)
        err = fm_win_lock_host(w, u->target, FMPI_LOCK_UPDATE, 1);
    if (err == MPI_SUCCESS) {
        err = cycle(w, u, segs, nsegs, bytes);
        int given = fm_win_lock_host(w, u->target, FMPI_LOCK_UPDATE, 0);
        err = err == MPI_SUCCESS ? given : err;
    }
    free(segs);
    return fm_raise(w->comm, err, fn);
}

int MPI_Accumulate(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                   int target_rank, MPI_Aint target_disp, int target_count,
                   MPI_Datatype target_datatype, MPI_Op op, MPI_Win win) {
    update u = {origin_addr, origin_count, origin_datatype, NULL, 0, 0, NULL, target_rank,
                target_disp, target_count, target_datatype, op};
    return run(&u, win, "MPI_Accumulate");
}

int MPI_Get_accumulate(const void *origin_addr, int origin_count,
                       MPI_Datatype origin_datatype, void *result_addr, int result_count,
                       MPI_Datatype result_datatype, int target_rank, MPI_Aint target_disp,
                       int target_count, MPI_Datatype target_datatype, MPI_Op op,
                       MPI_Win win) {
    update u = {op == MPI_NO_OP ? NULL : origin_addr, origin_count, origin_datatype,
                result_addr, result_count, result_datatype, NULL, target_rank, target_disp,
                target_count, target_datatype, op};
    return run(&u, win, "MPI_Get_accumulate");
}

int MPI_Fetch_and_op(const void *origin_addr, void *result_addr, MPI_Datatype datatype,
                     int target_rank, MPI_Aint target_disp, MPI_Op op, MPI_Win win) {
    update u = {op == MPI_NO_OP ? NULL : origin_addr, 1, datatype, result_addr, 1, datatype,
                NULL, target_rank, target_disp, 1, datatype, op};
    return run(&u, win, "MPI_Fetch_and_op");
}

int MPI_Compare_and_swap(const void *origin_addr, const void *compare_addr, void *result_addr,
                         MPI_Datatype datatype, int target_rank, MPI_Aint target_disp,
                         MPI_Win win) {
    update u = {origin_addr, 1, datatype, result_addr, 1, datatype, compare_addr, target_rank,
                target_disp, 1, datatype, MPI_REPLACE};
    return run(&u, win, "MPI_Compare_and_swap");
}
