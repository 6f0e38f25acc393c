/* Communicators made from others: MPI_Comm_split and MPI_Comm_create, plus the small
 * inspection calls (attributes, names, Fortran handles, inter-communicator test).
 *
 * Both creators are collective over the parent and agree on the new context in the same
 * exchange. Must not keep state of its own: the table lives in comm.c.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct split_entry {
    int color, key, rank, ctx;
} split_entry;

static int by_key(const void *a, const void *b) {
    const split_entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->rank < y->rank ? -1 : (x->rank > y->rank);
}

/* Everyone's (color, key, next context) at every member of c. */
static split_entry *exchange(const fm_comm *c, int color, int key, int ctx) {
    split_entry mine = {color, key, c->rank, ctx};
    split_entry *all = fm_alloc((size_t)c->size * sizeof *all);
    if (all == NULL)
        return NULL;
    fm_gather_raw(c, &mine, sizeof mine, all, 0);
    fm_bcast_raw(c, all, (int)(c->size * sizeof *all), 0);
    return all;
}

static int split_make(fm_comm *c, split_entry *all, int color, MPI_Comm *newcomm) {
    int ctx = 0, n = 0;
    for (int r = 0; r < c->size; r++)
        ctx = all[r].ctx > ctx ? all[r].ctx : ctx;
    fm_comm_agree_ctx_set(ctx);
    *newcomm = MPI_COMM_NULL;
    if (color == MPI_UNDEFINED)
        return MPI_SUCCESS;
    for (int r = 0; r < c->size; r++)
        if (all[r].color == color)
            all[n++] = all[r];
    qsort(all, (size_t)n, sizeof *all, by_key);
    int *world = fm_alloc((size_t)n * sizeof(int));
    if (world == NULL)
        return MPI_ERR_NO_MEM;
    for (int i = 0; i < n; i++)
        world[i] = c->world[all[i].rank];
    *newcomm = fm_comm_make(world, n, ctx, c->errhandler);
    free(world);
    return *newcomm == MPI_COMM_NULL ? MPI_ERR_NO_MEM : MPI_SUCCESS;
}

int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_split");
    if (newcomm == NULL || (color < 0 && color != MPI_UNDEFINED))
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_split");
    split_entry *all = exchange(c, color, key, fm_comm_next_ctx());
    if (all == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Comm_split");
    int err = split_make(c, all, color, newcomm);
    free(all);
    return fm_raise(comm, err, "MPI_Comm_split");
}

int MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_create");
    int n;
    const int *world = fm_group_world(group, &n);
    if (world == NULL)
        return fm_raise(comm, MPI_ERR_GROUP, "MPI_Comm_create");
    if (newcomm == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_create");
    int ctx;
    int err = fm_comm_agree_ctx(c, &ctx);
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Comm_create");
    int me = c->world[c->rank], member = 0;
    for (int i = 0; i < n; i++)
        member |= world[i] == me;
    *newcomm = MPI_COMM_NULL;
    if (!member)
        return MPI_SUCCESS;
    *newcomm = fm_comm_make(world, n, ctx, c->errhandler);
    return fm_raise(comm, *newcomm == MPI_COMM_NULL ? MPI_ERR_NO_MEM : MPI_SUCCESS,
                    "MPI_Comm_create");
}

int MPI_Comm_get_attr(MPI_Comm comm, int keyval, void *attribute_val, int *flag) {
    static int tag_ub = FM_TAG_UB, host = MPI_PROC_NULL, io = MPI_ANY_SOURCE;
    static int wtime_global = 0, appnum = 0, universe;
    if (fm_comm_get(comm) == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_get_attr");
    if (attribute_val == NULL || flag == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_get_attr");
    universe = fm_comm_get(MPI_COMM_WORLD)->size;
    int *values[] = {NULL, &tag_ub, &host, &io, &wtime_global, &universe, &appnum};
    if (keyval < MPI_TAG_UB || keyval > MPI_APPNUM) {
        *flag = 0;
        return fm_raise(comm, MPI_ERR_KEYVAL, "MPI_Comm_get_attr");
    }
    memcpy(attribute_val, &values[keyval], sizeof(int *));
    *flag = 1;
    return MPI_SUCCESS;
}

int MPI_Comm_set_name(MPI_Comm comm, const char *name) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_set_name");
    if (name == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_set_name");
    strncpy(c->name, name, MPI_MAX_OBJECT_NAME - 1);
    c->name[MPI_MAX_OBJECT_NAME - 1] = '\0';
    return MPI_SUCCESS;
}

int MPI_Comm_get_name(MPI_Comm comm, char *name, int *resultlen) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_get_name");
    if (name == NULL || resultlen == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_get_name");
    strcpy(name, c->name);
    *resultlen = (int)strlen(name);
    return MPI_SUCCESS;
}

int MPI_Comm_test_inter(MPI_Comm comm, int *flag) {
    if (fm_comm_get(comm) == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_test_inter");
    if (flag == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_test_inter");
    *flag = 0; /* faabric has intra-communicators only */
    return MPI_SUCCESS;
}

MPI_Fint MPI_Comm_c2f(MPI_Comm comm) { return (MPI_Fint)comm; }

MPI_Comm MPI_Comm_f2c(MPI_Fint comm) { return (MPI_Comm)comm; }
