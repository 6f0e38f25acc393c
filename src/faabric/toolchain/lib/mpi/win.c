/* Windows of one-sided communication: MPI_Win_create/allocate/free, attributes and the
 * table of open windows.
 *
 * A window duplicates its communicator; the duplicate's context is the window's id for the
 * host, which serves other ranks' operations on the exposed memory (fmpi_win_expose) without
 * this rank calling in. Creation and freeing end with a barrier, so no operation reaches a
 * rank before it exposes its window or after it withdrew it. Must not start operations
 * (rma.c) or epochs (win_sync.c).
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

static fm_win **wins; /* handle h lives at wins[h - 1] */
static int nwins, open_wins;

fm_win *fm_win_get(MPI_Win win) {
    return win > 0 && win <= nwins ? wins[win - 1] : NULL;
}

int fm_win_open(void) { return open_wins; }

int fm_win_ctx(const fm_win *w) { return fm_comm_get(w->comm)->ctx; }

int fm_win_world(const fm_win *w, int rank) { return fm_comm_get(w->comm)->world[rank]; }

static int add(fm_win *w, MPI_Win *handle) {
    int i = 0;
    while (i < nwins && wins[i] != NULL)
        i++;
    if (i == nwins) {
        fm_win **more = realloc(wins, (size_t)(nwins + 8) * sizeof *more);
        if (more == NULL)
            return MPI_ERR_NO_MEM;
        memset(more + nwins, 0, 8 * sizeof *more);
        wins = more;
        nwins += 8;
    }
    wins[i] = w;
    *handle = i + 1;
    open_wins++;
    return MPI_SUCCESS;
}

static void release(fm_win *w) {
    free(w->sizes);
    free(w->units);
    free(w->locks);
    free(w->ops);
    free(w->owned);
    free(w);
}

/* Every rank's size and displacement unit, and this rank's exposure (collective). */
static int share(fm_win *w, const fm_comm *c) {
    long mine[2] = {(long)w->size, w->disp_unit};
    long *all = fm_alloc((size_t)c->size * sizeof mine);
    w->sizes = fm_alloc((size_t)c->size * sizeof *w->sizes);
    w->units = fm_alloc((size_t)c->size * sizeof *w->units);
    w->locks = calloc((size_t)c->size, sizeof *w->locks);
    int err = all && w->sizes && w->units && w->locks ? MPI_SUCCESS : MPI_ERR_NO_MEM;
    if (err == MPI_SUCCESS)
        err = MPI_Allgather(mine, 2, MPI_LONG, all, 2, MPI_LONG, w->comm);
    for (int r = 0; err == MPI_SUCCESS && r < c->size; r++) {
        w->sizes[r] = (MPI_Aint)all[2 * r];
        w->units[r] = (int)all[2 * r + 1];
    }
    free(all);
    if (err == MPI_SUCCESS && fmpi_win_expose(c->ctx, w->base, (int32_t)w->size) != FMPI_OK)
        err = MPI_ERR_ARG;
    return err;
}

static int check(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                 MPI_Win *win) {
    if (fm_comm_get(comm) == NULL)
        return MPI_ERR_COMM;
    if (win == NULL || size < 0 || (size > 0 && base == NULL))
        return MPI_ERR_ARG;
    if (disp_unit <= 0)
        return MPI_ERR_DISP;
    return info != MPI_INFO_NULL ? MPI_ERR_INFO : MPI_SUCCESS;
}

/* Makes the window (collective); on failure frees `owned`. */
static int create(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                  int flavor, void *owned, MPI_Win *win) {
    int err = check(base, size, disp_unit, info, comm, win);
    fm_win *w = err == MPI_SUCCESS ? calloc(1, sizeof *w) : NULL;
    if (w == NULL) {
        free(owned);
        return err == MPI_SUCCESS ? MPI_ERR_NO_MEM : err;
    }
    *w = (fm_win){.base = base, .size = size, .disp_unit = disp_unit, .flavor = flavor,
                  .model = MPI_WIN_UNIFIED, .owned = owned};
    err = MPI_Comm_dup(comm, &w->comm);
    if (err == MPI_SUCCESS && (err = share(w, fm_comm_get(w->comm))) == MPI_SUCCESS)
        err = add(w, win);
    if (err == MPI_SUCCESS)
        return MPI_Barrier(w->comm); /* every rank exposes its window before any operation */
    if (w->comm != MPI_COMM_NULL)
        MPI_Comm_free(&w->comm);
    release(w);
    return err;
}

int MPI_Win_create(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                   MPI_Win *win) {
    int err = create(base, size, disp_unit, info, comm, MPI_WIN_FLAVOR_CREATE, NULL, win);
    return fm_raise(comm, err, "MPI_Win_create");
}

int MPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr,
                     MPI_Win *win) {
    void *mem = size >= 0 ? fm_alloc((size_t)size) : NULL;
    int err = baseptr == NULL || size < 0 ? MPI_ERR_ARG : mem == NULL ? MPI_ERR_NO_MEM : 0;
    if (err == MPI_SUCCESS) {
        memset(mem, 0, (size_t)size);
        err = create(mem, size, disp_unit, info, comm, MPI_WIN_FLAVOR_ALLOCATE, mem, win);
        mem = err == MPI_SUCCESS ? mem : NULL; /* create freed it on failure */
    } else {
        free(mem);
        mem = NULL;
    }
    if (err == MPI_SUCCESS)
        memcpy(baseptr, &mem, sizeof mem);
    return fm_raise(comm, err, "MPI_Win_allocate");
}

int MPI_Win_free(MPI_Win *win) {
    fm_win *w = win ? fm_win_get(*win) : NULL;
    if (w == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_WIN, "MPI_Win_free");
    MPI_Comm comm = w->comm;
    int err = fm_win_complete(w, -1);
    MPI_Barrier(comm); /* every rank's operations on this window are complete */
    fmpi_win_withdraw(fm_win_ctx(w));
    wins[*win - 1] = NULL;
    open_wins--;
    *win = MPI_WIN_NULL;
    MPI_Comm_free(&w->comm);
    release(w);
    return fm_raise(MPI_COMM_WORLD, err, "MPI_Win_free");
}

int MPI_Win_get_attr(MPI_Win win, int win_keyval, void *attribute_val, int *flag) {
    fm_win *w = fm_win_get(win);
    if (w == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_WIN, "MPI_Win_get_attr");
    if (attribute_val == NULL || flag == NULL)
        return fm_raise(w->comm, MPI_ERR_ARG, "MPI_Win_get_attr");
    void *value;
    switch (win_keyval) {
    case MPI_WIN_BASE: value = w->base; break;
    case MPI_WIN_SIZE: value = &w->size; break;
    case MPI_WIN_DISP_UNIT: value = &w->disp_unit; break;
    case MPI_WIN_CREATE_FLAVOR: value = &w->flavor; break;
    case MPI_WIN_MODEL: value = &w->model; break;
    default: return fm_raise(w->comm, MPI_ERR_KEYVAL, "MPI_Win_get_attr");
    }
    memcpy(attribute_val, &value, sizeof value);
    *flag = 1;
    return MPI_SUCCESS;
}

int MPI_Win_get_group(MPI_Win win, MPI_Group *group) {
    fm_win *w = fm_win_get(win);
    if (w == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_WIN, "MPI_Win_get_group");
    return MPI_Comm_group(w->comm, group);
}
