/* A batch of typed collective messages posted together and completed together: sends pack
 * non-contiguous data, receives land in the user's buffer or in a temporary that is unpacked
 * at the end. Used by the v-collectives and all-to-all.
 *
 * Must not decide who talks to whom: callers do.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

int fm_batch_make(fm_batch *b, int cap) {
    memset(b, 0, sizeof *b);
    b->reqs = calloc((size_t)cap + 1, sizeof *b->reqs);
    b->ptrs = fm_alloc(((size_t)cap + 1) * sizeof *b->ptrs);
    b->lands = calloc((size_t)cap + 1, sizeof *b->lands);
    if (b->reqs && b->ptrs && b->lands)
        return MPI_SUCCESS;
    free(b->reqs), free(b->ptrs), free(b->lands);
    return MPI_ERR_NO_MEM;
}

static fm_landing *next(fm_batch *b) {
    b->ptrs[b->n] = &b->reqs[b->n];
    return &b->lands[b->n++];
}

void fm_batch_send(fm_batch *b, const fm_comm *c, int to, int tag, const void *buf, int count,
                   const fm_type *t) {
    fm_landing *l = next(b);
    const void *data = fm_packed_view(buf, count, t, &l->tmp);
    if (data == NULL && count * t->size > 0)
        fm_fatal("out of memory in a collective");
    fm_cisend(c, to, tag, data, count * t->size, b->ptrs[b->n - 1]);
}

void fm_batch_recv(fm_batch *b, const fm_comm *c, int from, int tag, void *buf, int count,
                   const fm_type *t) {
    fm_landing *l = next(b);
    int len = count * t->size;
    char *into = buf;
    if (fm_is_contiguous(t, count)) {
        into += t->nsegs ? t->segs[0].disp : 0;
    } else {
        *l = (fm_landing){fm_alloc((size_t)len), buf, count, t};
        if ((into = l->tmp) == NULL)
            fm_fatal("out of memory in a collective");
    }
    fm_cirecv(c, from, tag, into, len, b->ptrs[b->n - 1]);
}

int fm_batch_finish(fm_batch *b) {
    int err = MPI_SUCCESS;
    fm_wait_all(b->ptrs, b->n);
    for (int i = 0; i < b->n; i++) {
        fm_landing *l = &b->lands[i];
        if (b->reqs[i].error != FMPI_OK)
            err = MPI_ERR_TRUNCATE;
        if (l->dst != NULL) {
            int got = b->reqs[i].length < l->count * l->t->size ? b->reqs[i].length
                                                                 : l->count * l->t->size;
            fm_unpack(l->tmp, got, l->count, l->t, l->dst);
        }
        free(l->tmp);
    }
    free(b->reqs), free(b->ptrs), free(b->lands);
    return err;
}

int fm_local_copy(const void *src, int scount, const fm_type *st, void *dst, int rcount,
                  const fm_type *rt) {
    void *tmp;
    int slen = scount * st->size, rlen = rcount * rt->size;
    const void *data = fm_packed_view(src, scount, st, &tmp);
    if (data == NULL && slen > 0)
        return MPI_ERR_NO_MEM;
    fm_unpack(data, slen < rlen ? slen : rlen, rcount, rt, dst);
    free(tmp);
    return slen > rlen ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
}
