/* Process groups: ordered lists of world ranks (MPI_Comm_group, MPI_Group_*).
 *
 * A group is only a list; it carries no context and cannot be used to communicate until
 * MPI_Comm_create turns it into a communicator. MPI_GROUP_EMPTY is handle 1.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct fm_group {
    int size;
    int *world;
} fm_group;

static fm_group **groups; /* [0] null, [1] empty */
static int ngroups;
static fm_group empty_group = {0, NULL};

static fm_group *group_get(MPI_Group g) {
    if (g == MPI_GROUP_EMPTY)
        return &empty_group;
    if (g <= MPI_GROUP_EMPTY || g >= ngroups)
        return NULL;
    return groups[g];
}

const int *fm_group_world(MPI_Group group, int *size) {
    fm_group *g = group_get(group);
    if (g == NULL)
        return NULL;
    *size = g->size;
    return g->world ? g->world : (const int *)&empty_group;
}

static int slot(void) {
    for (int h = 2; h < ngroups; h++)
        if (groups[h] == NULL)
            return h;
    int grown = ngroups < 8 ? 8 : ngroups * 2;
    fm_group **more = realloc(groups, (size_t)grown * sizeof *more);
    if (more == NULL)
        return -1;
    memset(more + ngroups, 0, (size_t)(grown - ngroups) * sizeof *more);
    groups = more;
    int h = ngroups < 2 ? 2 : ngroups;
    ngroups = grown;
    return h;
}

int fm_group_make(const int *world, int size, MPI_Group *out) {
    int h = slot();
    fm_group *g = h < 0 ? NULL : malloc(sizeof *g);
    int *copy = fm_alloc((size_t)size * sizeof(int));
    if (g == NULL || copy == NULL) {
        free(g);
        free(copy);
        return MPI_ERR_NO_MEM;
    }
    memcpy(copy, world, (size_t)size * sizeof(int));
    g->size = size;
    g->world = copy;
    groups[h] = g;
    *out = h;
    return MPI_SUCCESS;
}

static int index_of(const fm_group *g, int world) {
    for (int i = 0; i < g->size; i++)
        if (g->world[i] == world)
            return i;
    return MPI_UNDEFINED;
}

int MPI_Comm_group(MPI_Comm comm, MPI_Group *group) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_group");
    if (group == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_group");
    return fm_raise(comm, fm_group_make(c->world, c->size, group), "MPI_Comm_group");
}

int MPI_Group_size(MPI_Group group, int *size) {
    fm_group *g = group_get(group);
    if (g == NULL || size == NULL)
        return fm_raise(MPI_COMM_WORLD, g ? MPI_ERR_ARG : MPI_ERR_GROUP, "MPI_Group_size");
    *size = g->size;
    return MPI_SUCCESS;
}

int MPI_Group_rank(MPI_Group group, int *rank) {
    fm_group *g = group_get(group);
    if (g == NULL || rank == NULL)
        return fm_raise(MPI_COMM_WORLD, g ? MPI_ERR_ARG : MPI_ERR_GROUP, "MPI_Group_rank");
    *rank = index_of(g, fm_comm_get(MPI_COMM_WORLD)->rank);
    return MPI_SUCCESS;
}

static int pick(MPI_Group group, int n, const int ranks[], int exclude, MPI_Group *out,
                const char *fn) {
    fm_group *g = group_get(group);
    if (g == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_GROUP, fn);
    if (n < 0 || n > g->size || (n > 0 && ranks == NULL) || out == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, fn);
    char *chosen = calloc((size_t)g->size + 1, 1);
    int *world = fm_alloc((size_t)g->size * sizeof(int));
    int err = chosen && world ? MPI_SUCCESS : MPI_ERR_NO_MEM, m = 0;
    for (int i = 0; i < n && err == MPI_SUCCESS; i++) {
        if (ranks[i] < 0 || ranks[i] >= g->size || chosen[ranks[i]])
            err = MPI_ERR_RANK;
        else if ((chosen[ranks[i]] = 1) && !exclude)
            world[m++] = g->world[ranks[i]];
    }
    for (int r = 0; r < g->size && exclude && err == MPI_SUCCESS; r++)
        if (!chosen[r])
            world[m++] = g->world[r];
    if (err == MPI_SUCCESS)
        err = fm_group_make(world, m, out);
    free(chosen);
    free(world);
    return fm_raise(MPI_COMM_WORLD, err, fn);
}

int MPI_Group_incl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
    return pick(group, n, ranks, 0, newgroup, "MPI_Group_incl");
}

int MPI_Group_excl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
    return pick(group, n, ranks, 1, newgroup, "MPI_Group_excl");
}

int MPI_Group_translate_ranks(MPI_Group group1, int n, const int ranks1[], MPI_Group group2,
                              int ranks2[]) {
    fm_group *a = group_get(group1), *b = group_get(group2);
    if (a == NULL || b == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_GROUP, "MPI_Group_translate_ranks");
    if (n < 0 || (n > 0 && (ranks1 == NULL || ranks2 == NULL)))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Group_translate_ranks");
    for (int i = 0; i < n; i++) {
        if (ranks1[i] == MPI_PROC_NULL) {
            ranks2[i] = MPI_PROC_NULL;
            continue;
        }
        if (ranks1[i] < 0 || ranks1[i] >= a->size)
            return fm_raise(MPI_COMM_WORLD, MPI_ERR_RANK, "MPI_Group_translate_ranks");
        ranks2[i] = index_of(b, a->world[ranks1[i]]);
    }
    return MPI_SUCCESS;
}

int MPI_Group_free(MPI_Group *group) {
    if (group == NULL || group_get(*group) == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_GROUP, "MPI_Group_free");
    if (*group != MPI_GROUP_EMPTY) {
        free(groups[*group]->world);
        free(groups[*group]);
        groups[*group] = NULL;
    }
    *group = MPI_GROUP_NULL;
    return MPI_SUCCESS;
}
