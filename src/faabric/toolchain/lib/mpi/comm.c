/* The communicator table: MPI_COMM_WORLD, MPI_COMM_SELF and the communicators programs make,
 * their rank translations and context ids, and the calls that create or inspect them.
 *
 * Contexts: a communicator owns two host contexts, ctx (user point-to-point) and ctx + 1
 * (collectives), so the two kinds of traffic never match each other. New contexts are agreed
 * by all members (the maximum of their next free context). Must not do point-to-point itself.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

#define FM_FIRST_FREE_CTX 4 /* 0/1: world, 2/3: self */

static fm_comm **comms; /* index = handle; [0] stays NULL */
static int ncomms;
static int next_ctx = FM_FIRST_FREE_CTX;
static int world_size;
static int world_rank;

fm_comm *fm_comm_get(MPI_Comm comm) {
    if (comm <= 0 || comm >= ncomms)
        return NULL;
    return comms[comm];
}

static int free_slot(void) {
    for (int h = 3; h < ncomms; h++)
        if (comms[h] == NULL)
            return h;
    int grown = ncomms < 8 ? 8 : ncomms * 2;
    fm_comm **more = realloc(comms, (size_t)grown * sizeof *more);
    if (more == NULL)
        return -1;
    memset(more + ncomms, 0, (size_t)(grown - ncomms) * sizeof *more);
    comms = more;
    int h = ncomms < 3 ? 3 : ncomms;
    ncomms = grown;
    return h;
}

static void comm_destroy(fm_comm *c) {
    if (c == NULL)
        return;
    if (c->cart != NULL) {
        free(c->cart->dims);
        free(c->cart->periods);
        free(c->cart);
    }
    fm_errhandler_release(c->errhandler);
    free(c->world);
    free(c->from_world);
    free(c->host);
    free(c);
}

static fm_comm *comm_build(const int *world, int size, int ctx, MPI_Errhandler errhandler) {
    fm_comm *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->world = fm_alloc((size_t)size * sizeof(int));
    c->host = fm_alloc((size_t)size * sizeof(int));
    c->from_world = fm_alloc((size_t)world_size * sizeof(int));
    if (c->world == NULL || c->host == NULL || c->from_world == NULL) {
        comm_destroy(c);
        return NULL;
    }
    for (int w = 0; w < world_size; w++)
        c->from_world[w] = -1;
    c->size = size;
    c->rank = MPI_UNDEFINED;
    for (int r = 0; r < size; r++) {
        c->world[r] = world[r];
        c->host[r] = fmpi_host_of(world[r]);
        c->from_world[world[r]] = r;
        if (world[r] == world_rank)
            c->rank = r;
    }
    c->ctx = ctx;
    c->errhandler = errhandler;
    fm_errhandler_retain(errhandler);
    return c;
}

void fm_comm_refresh_hosts(void) {
    for (int h = 1; h < ncomms; h++)
        if (comms[h] != NULL)
            for (int r = 0; r < comms[h]->size; r++)
                comms[h]->host[r] = fmpi_host_of(comms[h]->world[r]);
}

MPI_Comm fm_comm_make(const int *world, int size, int ctx, MPI_Errhandler errhandler) {
    int h = free_slot();
    if (h < 0)
        return MPI_COMM_NULL;
    comms[h] = comm_build(world, size, ctx, errhandler);
    return comms[h] ? h : MPI_COMM_NULL;
}

int fm_world_setup(void) {
    world_size = fmpi_size();
    world_rank = fmpi_rank();
    int *ranks = fm_alloc((size_t)world_size * sizeof(int));
    if (ranks == NULL || free_slot() < 0) {
        free(ranks);
        return MPI_ERR_NO_MEM;
    }
    for (int r = 0; r < world_size; r++)
        ranks[r] = r;
    comms[MPI_COMM_WORLD] = comm_build(ranks, world_size, 0, MPI_ERRORS_ARE_FATAL);
    comms[MPI_COMM_SELF] = comm_build(&world_rank, 1, 2, MPI_ERRORS_ARE_FATAL);
    free(ranks);
    if (comms[MPI_COMM_WORLD] == NULL || comms[MPI_COMM_SELF] == NULL)
        return MPI_ERR_NO_MEM;
    strcpy(comms[MPI_COMM_WORLD]->name, "MPI_COMM_WORLD");
    strcpy(comms[MPI_COMM_SELF]->name, "MPI_COMM_SELF");
    return MPI_SUCCESS;
}

int fm_comm_source(const fm_comm *c, int world) {
    if (world < 0 || world >= world_size)
        return world;
    return c->from_world[world];
}

int fm_comm_next_ctx(void) { return next_ctx; }

void fm_comm_agree_ctx_set(int agreed) { next_ctx = agreed + 2; }

int fm_comm_agree_ctx(fm_comm *c, int *ctx) {
    int value = next_ctx;
    int err = fm_reduce_raw(c, &value, 1, MPI_INT, MPI_MAX, 0);
    if (err != MPI_SUCCESS)
        return err;
    fm_bcast_raw(c, &value, sizeof value, 0);
    fm_comm_agree_ctx_set(value);
    *ctx = value;
    return MPI_SUCCESS;
}

int MPI_Comm_size(MPI_Comm comm, int *size) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_size");
    if (size == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_size");
    *size = c->size;
    return MPI_SUCCESS;
}

int MPI_Comm_rank(MPI_Comm comm, int *rank) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_rank");
    if (rank == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_rank");
    *rank = c->rank;
    return MPI_SUCCESS;
}

int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_dup");
    if (newcomm == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_dup");
    int ctx;
    int err = fm_comm_agree_ctx(c, &ctx);
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Comm_dup");
    *newcomm = fm_comm_make(c->world, c->size, ctx, c->errhandler);
    if (*newcomm == MPI_COMM_NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Comm_dup");
    if (c->cart != NULL && fm_cart_attach(comms[*newcomm], c->cart->ndims, c->cart->dims,
                                          c->cart->periods) != MPI_SUCCESS)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Comm_dup");
    return MPI_SUCCESS;
}

int MPI_Comm_free(MPI_Comm *comm) {
    if (comm == NULL || fm_comm_get(*comm) == NULL || *comm == MPI_COMM_WORLD ||
        *comm == MPI_COMM_SELF)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_free");
    comm_destroy(comms[*comm]);
    comms[*comm] = NULL;
    *comm = MPI_COMM_NULL;
    return MPI_SUCCESS;
}

static int same_members(const fm_comm *a, const fm_comm *b) {
    for (int r = 0; r < a->size; r++)
        if (b->from_world[a->world[r]] < 0)
            return 0;
    return 1;
}

int MPI_Comm_compare(MPI_Comm comm1, MPI_Comm comm2, int *result) {
    fm_comm *a = fm_comm_get(comm1), *b = fm_comm_get(comm2);
    if (a == NULL || b == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_compare");
    if (result == NULL)
        return fm_raise(comm1, MPI_ERR_ARG, "MPI_Comm_compare");
    if (comm1 == comm2)
        *result = MPI_IDENT;
    else if (a->size != b->size || !same_members(a, b))
        *result = MPI_UNEQUAL;
    else if (memcmp(a->world, b->world, (size_t)a->size * sizeof(int)) == 0)
        *result = MPI_CONGRUENT;
    else
        *result = MPI_SIMILAR;
    return MPI_SUCCESS;
}
