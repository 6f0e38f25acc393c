/* Building blocks of the collectives: blocking and nonblocking messages on a communicator's
 * collective context, locality plans (one leader per host) and the binomial-tree broadcast.
 *
 * Collective messages use ctx + 1 and fixed tags per collective kind, so they never match
 * user receives. Errors from the host here mean a bug in the library: they stop the rank.
 */
#include <stdlib.h>

#include "fm_internal.h"

#define FM_MAX_CHILDREN 32

static void checked(int rc, const char *what) {
    if (rc != FMPI_OK)
        fm_fatal(what);
}

void fm_cisend(const fm_comm *c, int to, int tag, const void *buf, int len, fmpi_req *r) {
    checked(fmpi_isend(c->ctx + 1, c->world[to], tag, buf, len, 0, r), "collective send");
}

void fm_cirecv(const fm_comm *c, int from, int tag, void *buf, int len, fmpi_req *r) {
    checked(fmpi_irecv(c->ctx + 1, c->world[from], tag, buf, len, r), "collective receive");
}

void fm_csend(const fm_comm *c, int to, int tag, const void *buf, int len) {
    fmpi_req r = {0};
    fmpi_req *p = &r;
    fm_cisend(c, to, tag, buf, len, &r);
    fm_wait_all(&p, 1);
}

void fm_crecv(const fm_comm *c, int from, int tag, void *buf, int len) {
    fmpi_req r = {0};
    fmpi_req *p = &r;
    fm_cirecv(c, from, tag, buf, len, &r);
    fm_wait_all(&p, 1);
    checked(r.error, "collective receive (size mismatch)");
}

/* Whether an exchange should post its receive before its send. A receive from another host
   goes first, so the message lands in place; otherwise the send goes first, so that when both
   sides of a same-host exchange find the other's message waiting, each copies its own
   incoming data and the two copies run at once. */
int fm_receive_first(const fm_comm *c, int from) {
    return from < 0 || c->host[from] != c->host[c->rank];
}

void fm_cexchange(const fm_comm *c, int tag, int to, const void *out, int outlen, int from,
                  void *in, int inlen) {
    fmpi_req reqs[2] = {{0}, {0}};
    fmpi_req *ptrs[2] = {&reqs[0], &reqs[1]};
    int first = fm_receive_first(c, from);
    if (first)
        fm_cirecv(c, from, tag, in, inlen, &reqs[0]);
    fm_cisend(c, to, tag, out, outlen, &reqs[1]);
    if (!first)
        fm_cirecv(c, from, tag, in, inlen, &reqs[0]);
    fm_wait_all(ptrs, 2);
    checked(reqs[0].error, "collective exchange (size mismatch)");
}

/* The lowest rank on `host`, or `root` if the root is on it. */
static int leader_of(const fm_comm *c, int host, int root) {
    if (c->host[root] == host)
        return root;
    for (int r = 0; r < c->size; r++)
        if (c->host[r] == host)
            return r;
    return root;
}

int fm_plan_make(const fm_comm *c, int root, fm_plan *p) {
    p->leaders = fm_alloc((size_t)c->size * sizeof(int));
    p->local = fm_alloc((size_t)c->size * sizeof(int));
    if (p->leaders == NULL || p->local == NULL) {
        fm_plan_free(p);
        return MPI_ERR_NO_MEM;
    }
    p->nleaders = 0;
    for (int r = 0; r < c->size; r++)
        if (leader_of(c, c->host[r], root) == r)
            p->leaders[r == root ? 0 : ++p->nleaders] = r;
    p->nleaders++; /* the root sits at index 0, other leaders follow in rank order */
    int mine = c->host[c->rank], leader = leader_of(c, mine, root);
    p->local[0] = leader;
    p->nlocal = 1;
    for (int r = 0; r < c->size; r++)
        if (c->host[r] == mine && r != leader)
            p->local[p->nlocal++] = r;
    return MPI_SUCCESS;
}

void fm_plan_free(fm_plan *p) {
    free(p->leaders);
    free(p->local);
    p->leaders = p->local = NULL;
}

static int index_in(const int *members, int n, int rank) {
    for (int i = 0; i < n; i++)
        if (members[i] == rank)
            return i;
    return -1;
}

void fm_tree_bcast(const fm_comm *c, const int *members, int n, int tag, void *buf, int len) {
    int i = index_in(members, n, c->rank), mask = 1;
    if (i < 0)
        return;
    while (mask < n) {
        if (i & mask) {
            fm_crecv(c, members[i - mask], tag, buf, len);
            break;
        }
        mask <<= 1;
    }
    fmpi_req reqs[FM_MAX_CHILDREN] = {0};
    fmpi_req *ptrs[FM_MAX_CHILDREN];
    int k = 0;
    for (mask >>= 1; mask > 0; mask >>= 1) {
        if (i + mask < n) {
            ptrs[k] = &reqs[k];
            fm_cisend(c, members[i + mask], tag, buf, len, &reqs[k]);
            k++;
        }
    }
    fm_wait_all(ptrs, k);
}

void fm_bcast_raw(const fm_comm *c, void *buf, int len, int root) {
    fm_plan p;
    if (fm_plan_make(c, root, &p) != MPI_SUCCESS)
        checked(-1, "allocating a broadcast plan");
    fm_tree_bcast(c, p.leaders, p.nleaders, FM_TAG_BCAST, buf, len);
    fm_tree_bcast(c, p.local, p.nlocal, FM_TAG_BCAST, buf, len);
    fm_plan_free(&p);
}
