/* Gathering and scattering equal-sized blocks through one leader per host (the raw engines
 * behind MPI_Gather, MPI_Scatter, MPI_Allgather, MPI_Comm_split and MPI_Reduce_scatter).
 *
 * A host's leader collects (or hands out) the blocks of every rank on its host, so each remote
 * host exchanges a single message with the root. Blocks are packed bytes in rank order.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct pending {
    fmpi_req *reqs;
    fmpi_req **ptrs;
    int n;
} pending;

static int pending_make(pending *p, int cap) {
    p->reqs = calloc((size_t)cap + 1, sizeof *p->reqs);
    p->ptrs = fm_alloc(((size_t)cap + 1) * sizeof *p->ptrs);
    p->n = 0;
    return p->reqs && p->ptrs ? MPI_SUCCESS : MPI_ERR_NO_MEM;
}

static fmpi_req *pending_next(pending *p) {
    p->ptrs[p->n] = &p->reqs[p->n];
    return &p->reqs[p->n++];
}

static void pending_finish(pending *p) {
    fm_wait_all(p->ptrs, p->n);
    free(p->reqs);
    free(p->ptrs);
}

/* Ranks of `host` in ascending order (the order of a non-root host's block buffer). */
static int host_ranks(const fm_comm *c, int host, int *out) {
    int n = 0;
    for (int r = 0; r < c->size; r++)
        if (c->host[r] == host)
            out[n++] = r;
    return n;
}

static void fatal_no_mem(void) {
    fm_fatal("out of memory in a collective");
}

static void root_gather(const fm_comm *c, const fm_plan *p, int len, char *all, pending *q) {
    int *ranks = fm_alloc((size_t)c->size * sizeof(int));
    char *remote = fm_alloc((size_t)c->size * (size_t)len);
    int *counts = fm_alloc((size_t)p->nleaders * sizeof(int));
    if (!ranks || !remote || !counts)
        fatal_no_mem();
    char *at = remote;
    for (int k = 1; k < p->nlocal; k++)
        fm_cirecv(c, p->local[k], FM_TAG_GATHER, all + (size_t)p->local[k] * len, len,
                  pending_next(q));
    for (int l = 1; l < p->nleaders; l++) {
        counts[l] = host_ranks(c, c->host[p->leaders[l]], ranks);
        fm_cirecv(c, p->leaders[l], FM_TAG_GATHER, at, counts[l] * len, pending_next(q));
        at += (size_t)counts[l] * len;
    }
    pending_finish(q);
    at = remote;
    for (int l = 1; l < p->nleaders; l++) {
        host_ranks(c, c->host[p->leaders[l]], ranks);
        for (int k = 0; k < counts[l]; k++, at += len)
            memcpy(all + (size_t)ranks[k] * len, at, (size_t)len);
    }
    free(ranks);
    free(remote);
    free(counts);
}

static void leader_gather(const fm_comm *c, const fm_plan *p, const void *mine, int len,
                          int root, pending *q) {
    char *hostbuf = fm_alloc((size_t)p->nlocal * (size_t)len);
    if (hostbuf == NULL)
        fatal_no_mem();
    memcpy(hostbuf, mine, (size_t)len);
    for (int k = 1; k < p->nlocal; k++)
        fm_cirecv(c, p->local[k], FM_TAG_GATHER, hostbuf + (size_t)k * len, len,
                  pending_next(q));
    pending_finish(q);
    fm_csend(c, root, FM_TAG_GATHER, hostbuf, p->nlocal * len);
    free(hostbuf);
}

void fm_gather_raw(const fm_comm *c, const void *mine, int len, void *all, int root) {
    fm_plan p;
    pending q;
    if (fm_plan_make(c, root, &p) != MPI_SUCCESS || pending_make(&q, c->size) != MPI_SUCCESS)
        fatal_no_mem();
    if (c->rank == root) {
        if (mine != NULL && (char *)all + (size_t)root * len != mine)
            memcpy((char *)all + (size_t)root * len, mine, (size_t)len);
        root_gather(c, &p, len, all, &q);
    } else if (p.local[0] == c->rank) {
        leader_gather(c, &p, mine, len, root, &q);
    } else {
        pending_finish(&q);
        fm_csend(c, p.local[0], FM_TAG_GATHER, mine, len);
    }
    fm_plan_free(&p);
}

static void root_scatter(const fm_comm *c, const fm_plan *p, const char *all, int len,
                         pending *q) {
    int *ranks = fm_alloc((size_t)c->size * sizeof(int));
    char *remote = fm_alloc((size_t)c->size * (size_t)len), *at = remote;
    if (!ranks || !remote)
        fatal_no_mem();
    for (int l = 1; l < p->nleaders; l++) {
        int n = host_ranks(c, c->host[p->leaders[l]], ranks);
        for (int k = 0; k < n; k++)
            memcpy(at + (size_t)k * len, all + (size_t)ranks[k] * len, (size_t)len);
        fm_cisend(c, p->leaders[l], FM_TAG_SCATTER, at, n * len, pending_next(q));
        at += (size_t)n * len;
    }
    for (int k = 1; k < p->nlocal; k++)
        fm_cisend(c, p->local[k], FM_TAG_SCATTER, all + (size_t)p->local[k] * len, len,
                  pending_next(q));
    pending_finish(q);
    free(ranks);
    free(remote);
}

void fm_scatter_raw(const fm_comm *c, const void *all, int len, void *mine, int root) {
    fm_plan p;
    pending q;
    if (fm_plan_make(c, root, &p) != MPI_SUCCESS || pending_make(&q, c->size) != MPI_SUCCESS)
        fatal_no_mem();
    if (c->rank == root) {
        if (mine != NULL)
            memcpy(mine, (const char *)all + (size_t)root * len, (size_t)len);
        root_scatter(c, &p, all, len, &q);
    } else if (p.local[0] == c->rank) {
        char *hostbuf = fm_alloc((size_t)p.nlocal * (size_t)len);
        if (hostbuf == NULL)
            fatal_no_mem();
        fm_crecv(c, root, FM_TAG_SCATTER, hostbuf, p.nlocal * len);
        memcpy(mine, hostbuf, (size_t)len);
        for (int k = 1; k < p.nlocal; k++)
            fm_cisend(c, p.local[k], FM_TAG_SCATTER, hostbuf + (size_t)k * len, len,
                      pending_next(&q));
        pending_finish(&q);
        free(hostbuf);
    } else {
        pending_finish(&q);
        fm_crecv(c, p.local[0], FM_TAG_SCATTER, mine, len);
    }
    fm_plan_free(&p);
}
