/* Large reductions as reduce-scatter plus allgather (or gather to the root): MPI_Allreduce
 * and MPI_Reduce of dense predefined types with a commutative operation, above FM_RING_MIN
 * bytes. The steps on one ring are in coll_ring_steps.c; this file lays the rings out.
 *
 * Each rank combines 1/p of the data and every rank copies at the same time, instead of one
 * rank combining everything. Locality: when every host runs the same number of ranks L, a
 * ring first runs among the ranks of each host (each ends owning 1/L of the host's sum), then
 * one ring per position among the ranks holding the same 1/L on every host, then (allreduce)
 * the host's ranks share their parts again; each pair of hosts carries the data once each
 * way. Otherwise one ring over all ranks, ordered by host. Receives land straight in the
 * result buffer, so types with gaps and non-commutative operations (the combine order here is
 * not rank order) must not come here: fm_ring_applies says which calls may.
 */
#include <stdlib.h>
#include <string.h>

#include "coll_ring.h"

#define FM_RING_MIN (32 << 10) /* bytes; smaller reductions use the trees of coll_reduce.c */

typedef struct rings {
    fm_ring local;  /* my host's ranks, or every rank when hosts are uneven (flat) */
    fm_ring column; /* one rank per host, holding the same part; just me when flat */
    int flat;
    fm_combine k;
} rings;

int fm_dense(const fm_type *t) {
    return t->predefined && t->size == t->extent && t->nsegs == 1 && t->segs[0].disp == 0;
}

int fm_ring_applies(const fm_comm *c, int count, MPI_Datatype type, MPI_Op op) {
    const fm_type *t = fm_type_get(type);
    return c->size > 1 && fm_dense(t) && fm_op_commutes(op) &&
           (long long)count * t->size >= FM_RING_MIN;
}

static int *ranks_alloc(const fm_comm *c) {
    int *out = fm_alloc((size_t)c->size * sizeof(int));
    if (out == NULL)
        fm_fatal("out of memory in a collective");
    return out;
}

/* The communicator's hosts in order of their lowest rank, into hosts[]; returns how many.
   *even says whether every one runs the same number of its ranks. */
static int hosts_of(const fm_comm *c, int *hosts, int *even) {
    int n = 0, first = -1;
    for (int r = 0; r < c->size; r++) {
        int known = 0;
        for (int k = 0; k < n; k++)
            known |= hosts[k] == c->host[r];
        if (!known)
            hosts[n++] = c->host[r];
    }
    *even = 1;
    for (int k = 0; k < n; k++) {
        int count = 0;
        for (int r = 0; r < c->size; r++)
            count += c->host[r] == hosts[k];
        *even &= first < 0 || count == first;
        first = count;
    }
    return n;
}

/* Where comm rank `who` sits: its index in its local ring and its host's column index. */
static void position(const rings *g, int who, int *li, int *ci) {
    const fm_comm *c = g->local.c;
    *li = *ci = 0;
    if (g->flat) {
        for (int k = 0; k < g->local.n; k++)
            *li = g->local.members[k] == who ? k : *li;
        return;
    }
    for (int r = 0; r < who; r++)
        *li += c->host[r] == c->host[who];
    for (int k = 0; k < g->column.n; k++)
        *ci = c->host[g->column.members[k]] == c->host[who] ? k : *ci;
}

static int index_of(const fm_ring *r, int who) {
    for (int k = 0; k < r->n; k++)
        if (r->members[k] == who)
            return k;
    return 0;
}

/* Rings through the hosts of `c`: see the comment atop this file. */
static void rings_layout(rings *g, const fm_comm *c) {
    int *hosts = ranks_alloc(c), even, mine = c->host[c->rank];
    int nhosts = hosts_of(c, hosts, &even);
    g->flat = !even;
    g->local = (fm_ring){c, ranks_alloc(c), 0, 0};
    g->column = (fm_ring){c, ranks_alloc(c), 0, 0};
    for (int h = 0; h < nhosts; h++)
        for (int r = 0; r < c->size; r++)
            if (c->host[r] == hosts[h] && (g->flat || hosts[h] == mine))
                g->local.members[g->local.n++] = r;
    g->local.i = index_of(&g->local, c->rank);
    for (int h = 0; h < nhosts && !g->flat; h++)
        for (int r = 0, k = 0; r < c->size; r++)
            if (c->host[r] == hosts[h] && k++ == g->local.i)
                g->column.members[g->column.n++] = r;
    if (g->flat)
        g->column.members[g->column.n++] = c->rank;
    g->column.i = index_of(&g->column, c->rank);
    free(hosts);
}

/* Elements [*lo, *hi) that comm rank `who` holds fully reduced after scatter_rings. */
static void final_range(const rings *g, int who, int count, int *lo, int *hi) {
    int li, ci, llo, lhi;
    position(g, who, &li, &ci);
    fm_ring_owned(g->local.n, li, 0, count, &llo, &lhi);
    fm_ring_owned(g->column.n, ci, llo, lhi, lo, hi);
}

/* Reduce-scatter through both rings; dst[final_range(me)] then holds the full result. */
static int scatter_rings(const rings *g, const char *src, char *dst, int count) {
    int lo = 0, hi = count, err = MPI_SUCCESS;
    if (g->local.n > 1) {
        err |= fm_ring_rs(&g->k, &g->local, src, dst, 0, count);
        fm_ring_owned(g->local.n, g->local.i, 0, count, &lo, &hi);
        src = dst;
    }
    if (g->column.n > 1)
        err |= fm_ring_rs(&g->k, &g->column, src, dst, lo, hi);
    return err;
}

static void gather_rings(const rings *g, char *dst, int count) {
    int lo, hi;
    if (g->column.n > 1) {
        fm_ring_owned(g->local.n, g->local.i, 0, count, &lo, &hi);
        fm_ring_ag(&g->k, &g->column, dst, lo, hi);
    }
    if (g->local.n > 1)
        fm_ring_ag(&g->k, &g->local, dst, 0, count);
}

static int rings_make(rings *g, const fm_comm *c, int count, MPI_Datatype type, MPI_Op op) {
    rings_layout(g, c);
    g->k.type = type;
    g->k.op = op;
    g->k.esz = fm_type_get(type)->size;
    g->k.tmp = fm_alloc(((size_t)count / 2 + 1) * (size_t)g->k.esz);
    return g->k.tmp == NULL ? MPI_ERR_NO_MEM : MPI_SUCCESS;
}

static void rings_free(rings *g) {
    free(g->local.members);
    free(g->column.members);
    free(g->k.tmp);
}

int fm_allreduce_ring(const fm_comm *c, const void *src, void *dst, int count,
                      MPI_Datatype type, MPI_Op op) {
    rings g;
    int err = rings_make(&g, c, count, type, op);
    if (err == MPI_SUCCESS) {
        err = scatter_rings(&g, src, dst, count);
        gather_rings(&g, dst, count);
    }
    rings_free(&g);
    return err ? MPI_ERR_OP : MPI_SUCCESS;
}

/* Every rank's final part goes straight to its place in the root's result. */
static void to_root(const rings *g, char *dst, int count, int root) {
    const fm_comm *c = g->local.c;
    int lo, hi;
    if (c->rank != root) {
        final_range(g, c->rank, count, &lo, &hi);
        fm_csend(c, root, FM_TAG_RING, dst + (size_t)lo * g->k.esz, (hi - lo) * g->k.esz);
        return;
    }
    fmpi_req *reqs = calloc((size_t)c->size, sizeof *reqs);
    fmpi_req **ptrs = fm_alloc((size_t)c->size * sizeof *ptrs);
    if (reqs == NULL || ptrs == NULL)
        fm_fatal("out of memory in a collective");
    for (int r = 0; r < c->size; r++) {
        ptrs[r] = &reqs[r];
        final_range(g, r, count, &lo, &hi);
        if (r != root)
            fm_cirecv(c, r, FM_TAG_RING, dst + (size_t)lo * g->k.esz, (hi - lo) * g->k.esz,
                      &reqs[r]);
        else
            reqs[r].done = 1;
    }
    fm_wait_all(ptrs, c->size);
    free(reqs);
    free(ptrs);
}

int fm_reduce_ring(const fm_comm *c, const void *src, void *dst, int count, MPI_Datatype type,
                   MPI_Op op, int root) {
    rings g;
    int err = rings_make(&g, c, count, type, op);
    char *scratch = NULL;
    if (err == MPI_SUCCESS && c->rank != root) {
        dst = scratch = fm_alloc((size_t)count * (size_t)g.k.esz);
        err = scratch == NULL ? MPI_ERR_NO_MEM : MPI_SUCCESS;
    }
    if (err == MPI_SUCCESS) {
        err = scatter_rings(&g, src, dst, count) ? MPI_ERR_OP : MPI_SUCCESS;
        to_root(&g, dst, count, root);
    }
    free(scratch);
    rings_free(&g);
    return err;
}
