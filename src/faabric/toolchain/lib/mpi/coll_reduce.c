/* Reductions and the collectives built from a reduction and a broadcast: MPI_Reduce,
 * MPI_Allreduce and MPI_Bcast (MPI_Barrier is in coll_small.c).
 *
 * Allreduces of dense types with commutative operations go to coll_ring.c when large and to
 * recursive doubling (coll_small.c) on power-of-two communicators when small; so do large
 * MPI_Reduce calls.
 * Locality: with a commutative operation each host first reduces to its leader (binomial
 * tree), then the leaders reduce to the root, so each pair of hosts carries at most one
 * message per tree edge. Non-commutative user operations use one tree in rank order, so the
 * result is x0 op x1 op ... op xn-1 as MPI requires. Data travels in the type's raw layout
 * (gaps included) so that operations see elements exactly as in the user's buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct reduction {
    const fm_comm *c;
    char *acc, *tmp; /* raw-layout origins: element 0 starts here */
    int count;
    MPI_Datatype type;
    MPI_Op op;
    int ordered;
    MPI_Aint tlb;
    int span;
} reduction;

/* Binomial reduce over members[0..n) towards members[0]; result ends in red->acc. */
static int tree_reduce(reduction *red, const int *members, int n) {
    int i = -1, err = MPI_SUCCESS;
    for (int k = 0; k < n; k++)
        i = members[k] == red->c->rank ? k : i;
    for (int mask = 1; i >= 0 && mask < n; mask <<= 1) {
        if (i & mask) {
            fm_csend(red->c, members[i - mask], FM_TAG_REDUCE, red->acc + red->tlb, red->span);
            break;
        }
        if (i + mask >= n)
            continue;
        fm_crecv(red->c, members[i + mask], FM_TAG_REDUCE, red->tmp + red->tlb, red->span);
        if (!red->ordered) {
            err |= fm_op_apply(red->op, red->type, red->tmp, red->acc, red->count);
            continue;
        }
        err |= fm_op_apply(red->op, red->type, red->acc, red->tmp, red->count);
        char *swap = red->acc;
        red->acc = red->tmp;
        red->tmp = swap;
    }
    return err ? MPI_ERR_OP : MPI_SUCCESS;
}

static int reduce_ordered(reduction *red, int root) {
    const fm_comm *c = red->c;
    int *all = fm_alloc((size_t)c->size * sizeof(int));
    if (all == NULL)
        return MPI_ERR_NO_MEM;
    for (int r = 0; r < c->size; r++)
        all[r] = r;
    int err = tree_reduce(red, all, c->size);
    free(all);
    if (root != 0 && c->rank == 0)
        fm_csend(c, root, FM_TAG_REDUCE, red->acc + red->tlb, red->span);
    if (root != 0 && c->rank == root)
        fm_crecv(c, 0, FM_TAG_REDUCE, red->acc + red->tlb, red->span);
    return err;
}

int fm_reduce_raw(const fm_comm *c, void *acc, int count, MPI_Datatype type, MPI_Op op,
                  int root) {
    fm_type *t = fm_type_get(type);
    reduction red = {c, acc, NULL, count, type, op, !fm_op_commutes(op), t->true_lb,
                     (int)fm_span(t, count)};
    char *tmp = fm_alloc(fm_raw_bytes(t, count));
    if (tmp == NULL)
        return MPI_ERR_NO_MEM;
    red.tmp = tmp - red.tlb;
    int err;
    if (red.ordered) {
        err = reduce_ordered(&red, root);
    } else {
        fm_plan p;
        err = fm_plan_make(c, root, &p);
        if (err == MPI_SUCCESS) {
            err = tree_reduce(&red, p.local, p.nlocal);
            if (p.local[0] == c->rank)
                err |= tree_reduce(&red, p.leaders, p.nleaders);
            fm_plan_free(&p);
        }
    }
    if (red.acc != (char *)acc) /* the result ended in the scratch buffer */
        memcpy((char *)acc + red.tlb, red.acc + red.tlb, (size_t)red.span);
    free(tmp);
    return err;
}

/* Checks shared by the reductions; on success *t and the span of `count` are set. */
int fm_reduce_args(MPI_Comm comm, int count, MPI_Datatype type, MPI_Op op, fm_comm **c,
                   fm_type **t) {
    *c = fm_comm_get(comm);
    *t = fm_type_get(type);
    int bytes;
    if (*c == NULL)
        return MPI_ERR_COMM;
    if (*t == NULL || !(*t)->committed)
        return MPI_ERR_TYPE;
    if (fm_type_bytes(*t, count, &bytes) != MPI_SUCCESS || fm_span(*t, count) > 0x7fffffff)
        return MPI_ERR_COUNT;
    return fm_op_check(op, type);
}

/* A raw copy of `count` elements of `src`; returns the origin (NULL if out of memory). */
char *fm_raw_copy(const void *src, int count, const fm_type *t, char **block) {
    size_t span = fm_span(t, count);
    *block = fm_alloc(fm_raw_bytes(t, count));
    if (*block == NULL)
        return NULL;
    if (span > 0)
        memcpy(*block, (const char *)src + t->true_lb, span);
    return *block - t->true_lb;
}

int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
               int root, MPI_Comm comm) {
    fm_comm *c;
    fm_type *t;
    char *block;
    int err = fm_reduce_args(comm, count, datatype, op, &c, &t);
    if (err == MPI_SUCCESS && (root < 0 || root >= c->size))
        err = MPI_ERR_ROOT;
    if (err == MPI_SUCCESS && c->rank == root && recvbuf == NULL && count > 0)
        err = MPI_ERR_BUFFER;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Reduce");
    const void *in = sendbuf == MPI_IN_PLACE && c->rank == root ? recvbuf : sendbuf;
    if (fm_ring_applies(c, count, datatype, op))
        return fm_raise(comm, fm_reduce_ring(c, in, recvbuf, count, datatype, op, root),
                        "MPI_Reduce");
    char *acc = fm_raw_copy(in, count, t, &block);
    err = acc == NULL ? MPI_ERR_NO_MEM : fm_reduce_raw(c, acc, count, datatype, op, root);
    if (err == MPI_SUCCESS && c->rank == root)
        fm_copy(recvbuf, acc, count, t);
    free(block);
    return fm_raise(comm, err, "MPI_Reduce");
}

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                  MPI_Op op, MPI_Comm comm) {
    fm_comm *c;
    fm_type *t;
    char *block;
    int err = fm_reduce_args(comm, count, datatype, op, &c, &t);
    if (err == MPI_SUCCESS && recvbuf == NULL && count > 0)
        err = MPI_ERR_BUFFER;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Allreduce");
    const void *in = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    if (fm_ring_applies(c, count, datatype, op))
        return fm_raise(comm, fm_allreduce_ring(c, in, recvbuf, count, datatype, op),
                        "MPI_Allreduce");
    if (fm_doubling_applies(c, datatype, op))
        return fm_raise(comm, fm_allreduce_doubling(c, in, recvbuf, count, datatype, op),
                        "MPI_Allreduce");
    char *acc = fm_raw_copy(in, count, t, &block);
    err = acc == NULL ? MPI_ERR_NO_MEM : fm_reduce_raw(c, acc, count, datatype, op, 0);
    if (err == MPI_SUCCESS) {
        fm_bcast_raw(c, block, (int)fm_span(t, count), 0);
        fm_copy(recvbuf, acc, count, t);
    }
    free(block);
    return fm_raise(comm, err, "MPI_Allreduce");
}

int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm) {
    fm_comm *c = fm_comm_get(comm);
    fm_type *t = fm_type_get(datatype);
    int bytes = 0, err = MPI_SUCCESS;
    if (c == NULL)
        err = MPI_ERR_COMM;
    else if (t == NULL || !t->committed)
        err = MPI_ERR_TYPE;
    else if (fm_type_bytes(t, count, &bytes) != MPI_SUCCESS)
        err = MPI_ERR_COUNT;
    else if (root < 0 || root >= c->size)
        err = MPI_ERR_ROOT;
    else if (buffer == NULL && bytes > 0)
        err = MPI_ERR_BUFFER;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Bcast");
    void *tmp;
    const void *view = fm_packed_view(buffer, count, t, &tmp);
    if (view == NULL && bytes > 0)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Bcast");
    fm_bcast_raw(c, (void *)view, bytes, root);
    if (tmp != NULL && c->rank != root)
        fm_unpack(tmp, bytes, count, t, buffer);
    free(tmp);
    return MPI_SUCCESS;
}
