/* Large reductions as reduce-scatter and allgather rings: MPI_Allreduce and MPI_Reduce of
 * dense predefined types with a commutative operation, above FM_RING_MIN bytes.
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

#include "fm_internal.h"
#include <stdio.h>

#define FM_RING_MIN (32 << 10) /* bytes; smaller reductions use the trees of coll_reduce.c */

typedef struct ring {
    const fm_comm *c;
    int *members; /* comm ranks in ring order */
    int n, i;     /* members, and my index among them */
} ring;

typedef struct rings {
    ring local;  /* my host's ranks, or every rank when hosts are uneven (flat) */
    ring column; /* one rank per host, holding the same part; just me when flat */
    int flat;
    MPI_Datatype type;
    MPI_Op op;
    int esz;
    char *tmp; /* one block, for combining into data that is also being sent */
} rings;

int fm_dense(const fm_type *t) {
    return t->predefined && t->size == t->extent && t->nsegs == 1 && t->segs[0].disp == 0;
}

int fm_ring_applies(const fm_comm *c, int count, MPI_Datatype type, MPI_Op op) {
    const fm_type *t = fm_type_get(type);
    return c->size > 1 && fm_dense(t) && fm_op_commutes(op) &&
           (long long)count * t->size >= FM_RING_MIN;
}

/* Elements [*blo, *bhi) of block k when [lo, hi) is cut into n nearly equal blocks. */
static void block_of(int lo, int hi, int n, int k, int *blo, int *bhi) {
    long long len = (long long)hi - lo;
    *blo = lo + (int)(len * k / n);
    *bhi = lo + (int)(len * (k + 1) / n);
}

/* Sends `out` to the next member and receives `in` from the previous one. */
static void exchange(const ring *r, const char *out, int outlen, char *in, int inlen) {
    fm_cexchange(r->c, FM_TAG_RING, r->members[(r->i + 1) % r->n], out, outlen,
                 r->members[(r->i + r->n - 1) % r->n], in, inlen);
}

/* Reduce-scatter of elements [lo, hi) of every member's `src` into `dst` (src == dst is
   allowed); afterwards block (i + 1) % n of dst holds the combination of all members. */
static int ring_rs(const rings *g, const ring *r, const char *src, char *dst, int lo, int hi) {
    int n = r->n, esz = g->esz, err = MPI_SUCCESS, slo, shi, blo, bhi;
    for (int s = 0; s < n - 1; s++) {
        block_of(lo, hi, n, (r->i - s + n) % n, &slo, &shi);
        block_of(lo, hi, n, (r->i - s - 1 + n) % n, &blo, &bhi);
        const char *out = (s == 0 ? src : dst) + (size_t)slo * esz;
        char *land = src == dst ? g->tmp : dst + (size_t)blo * esz;
        double t0 = MPI_Wtime();
        exchange(r, out, (shi - slo) * esz, land, (bhi - blo) * esz);
        double t1 = MPI_Wtime();
        const char *mine = src == dst ? g->tmp : src + (size_t)blo * esz;
        err |= fm_op_apply(g->op, g->type, mine, dst + (size_t)blo * esz, bhi - blo);
        if (getenv("FM_DBG")) fprintf(stderr, "rank %d rs exchange %.0f op %.0f us\n", r->c->rank, (t1-t0)*1e6, (MPI_Wtime()-t1)*1e6);
    }
    return err;
}

/* Allgather of [lo, hi) in dst: member i starts owning block (i + 1) % n. */
static void ring_ag(const rings *g, const ring *r, char *dst, int lo, int hi) {
    int n = r->n, esz = g->esz, slo, shi, blo, bhi;
    for (int s = 0; s < n - 1; s++) {
        block_of(lo, hi, n, (r->i + 1 - s + n) % n, &slo, &shi);
        block_of(lo, hi, n, (r->i - s + n) % n, &blo, &bhi);
        double t0 = MPI_Wtime();
        exchange(r, dst + (size_t)slo * esz, (shi - slo) * esz, dst + (size_t)blo * esz,
                 (bhi - blo) * esz);
        if (getenv("FM_DBG")) fprintf(stderr, "rank %d ag exchange %.0f us\n", r->c->rank, (MPI_Wtime()-t0)*1e6);
    }
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

static int index_of(const ring *r, int who) {
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
    g->local = (ring){c, ranks_alloc(c), 0, 0};
    g->column = (ring){c, ranks_alloc(c), 0, 0};
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
    block_of(0, count, g->local.n, (li + 1) % g->local.n, &llo, &lhi);
    block_of(llo, lhi, g->column.n, (ci + 1) % g->column.n, lo, hi);
}

/* Reduce-scatter through both rings; dst[final_range(me)] then holds the full result. */
static int scatter_rings(const rings *g, const char *src, char *dst, int count) {
    int lo = 0, hi = count, err = MPI_SUCCESS;
    if (g->local.n > 1) {
        err |= ring_rs(g, &g->local, src, dst, 0, count);
        block_of(0, count, g->local.n, (g->local.i + 1) % g->local.n, &lo, &hi);
        src = dst;
    }
    if (g->column.n > 1)
        err |= ring_rs(g, &g->column, src, dst, lo, hi);
    return err;
}

static void gather_rings(const rings *g, char *dst, int count) {
    int lo, hi;
    if (g->column.n > 1) {
        block_of(0, count, g->local.n, (g->local.i + 1) % g->local.n, &lo, &hi);
        ring_ag(g, &g->column, dst, lo, hi);
    }
    if (g->local.n > 1)
        ring_ag(g, &g->local, dst, 0, count);
}

static int rings_make(rings *g, const fm_comm *c, int count, MPI_Datatype type, MPI_Op op) {
    rings_layout(g, c);
    g->type = type;
    g->op = op;
    g->esz = fm_type_get(type)->size;
    g->tmp = fm_alloc(((size_t)count / 2 + 1) * (size_t)g->esz);
    return g->tmp == NULL ? MPI_ERR_NO_MEM : MPI_SUCCESS;
}

static void rings_free(rings *g) {
    free(g->local.members);
    free(g->column.members);
    free(g->tmp);
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
        fm_csend(c, root, FM_TAG_RING, dst + (size_t)lo * g->esz, (hi - lo) * g->esz);
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
            fm_cirecv(c, r, FM_TAG_RING, dst + (size_t)lo * g->esz, (hi - lo) * g->esz,
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
        dst = scratch = fm_alloc((size_t)count * (size_t)g.esz);
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
