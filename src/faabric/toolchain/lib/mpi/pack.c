/* Moving typed data: packing elements of a (possibly non-contiguous) datatype into contiguous
 * bytes and back, and MPI_Pack/MPI_Unpack/MPI_Pack_size.
 *
 * Packed data is the type map's bytes in order, without gaps; it is what travels in messages.
 * Must not allocate except in fm_packed_view.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

int fm_is_contiguous(const fm_type *t, int count) {
    if (t->nsegs == 0)
        return 1;
    return t->nsegs == 1 && (count <= 1 || t->segs[0].len == t->extent);
}

void fm_pack(const void *buf, int count, const fm_type *t, void *out) {
    const char *in = buf;
    char *to = out;
    if (fm_is_contiguous(t, count)) {
        if (t->nsegs == 1)
            memcpy(to, in + t->segs[0].disp, (size_t)count * (size_t)t->size);
        return;
    }
    for (int i = 0; i < count; i++, in += t->extent) {
        for (int s = 0; s < t->nsegs; s++) {
            memcpy(to, in + t->segs[s].disp, (size_t)t->segs[s].len);
            to += t->segs[s].len;
        }
    }
}

void fm_unpack(const void *in, int bytes, int count, const fm_type *t, void *buf) {
    const char *from = in;
    char *to = buf;
    if (fm_is_contiguous(t, count)) {
        if (t->nsegs == 1)
            memcpy(to + t->segs[0].disp, from, (size_t)bytes);
        return;
    }
    for (int i = 0; i < count && bytes > 0; i++, to += t->extent) {
        for (int s = 0; s < t->nsegs && bytes > 0; s++) {
            int n = t->segs[s].len < bytes ? t->segs[s].len : bytes;
            memcpy(to + t->segs[s].disp, from, (size_t)n);
            from += n;
            bytes -= n;
        }
    }
}

const void *fm_packed_view(const void *buf, int count, const fm_type *t, void **tmp) {
    *tmp = NULL;
    if (fm_is_contiguous(t, count))
        return t->nsegs == 1 ? (const char *)buf + t->segs[0].disp : buf;
    *tmp = fm_alloc((size_t)count * (size_t)t->size);
    if (*tmp != NULL)
        fm_pack(buf, count, t, *tmp);
    return *tmp;
}

size_t fm_span(const fm_type *t, int count) {
    if (count <= 0 || t->nsegs == 0)
        return 0;
    return (size_t)((MPI_Aint)(count - 1) * t->extent + t->true_ub - t->true_lb);
}

size_t fm_raw_bytes(const fm_type *t, int count) {
    size_t span = fm_span(t, count);
    MPI_Aint whole = count > 0 ? (MPI_Aint)count * t->extent + t->lb - t->true_lb : 0;
    return whole > 0 && (size_t)whole > span ? (size_t)whole : span;
}

void fm_copy(void *dst, const void *src, int count, const fm_type *t) {
    if (fm_is_contiguous(t, count)) {
        if (t->nsegs == 1)
            memmove((char *)dst + t->segs[0].disp, (const char *)src + t->segs[0].disp,
                    (size_t)count * (size_t)t->size);
        return;
    }
    for (int i = 0; i < count; i++) {
        MPI_Aint at = i * t->extent;
        for (int s = 0; s < t->nsegs; s++)
            memmove((char *)dst + at + t->segs[s].disp, (const char *)src + at + t->segs[s].disp,
                    (size_t)t->segs[s].len);
    }
}

int fm_elements(const fm_type *t, int bytes) {
    if (t->size == 0)
        return 0;
    int n = bytes / t->size * t->nelems, rest = bytes % t->size;
    for (int s = 0; s < t->nsegs && rest > 0; s++) {
        int take = t->segs[s].len < rest ? t->segs[s].len : rest;
        n += take / t->segs[s].esz;
        rest -= take;
    }
    return n;
}

int MPI_Pack(const void *inbuf, int incount, MPI_Datatype datatype, void *outbuf, int outsize,
             int *position, MPI_Comm comm) {
    int err = fm_type_check(datatype), bytes = 0;
    if (err == MPI_SUCCESS)
        err = fm_type_bytes(fm_type_get(datatype), incount, &bytes);
    if (err == MPI_SUCCESS && (position == NULL || outbuf == NULL || *position < 0))
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && *position + bytes > outsize)
        err = MPI_ERR_TRUNCATE;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Pack");
    fm_pack(inbuf, incount, fm_type_get(datatype), (char *)outbuf + *position);
    *position += bytes;
    return MPI_SUCCESS;
}

int MPI_Unpack(const void *inbuf, int insize, int *position, void *outbuf, int outcount,
               MPI_Datatype datatype, MPI_Comm comm) {
    int err = fm_type_check(datatype), bytes = 0;
    if (err == MPI_SUCCESS)
        err = fm_type_bytes(fm_type_get(datatype), outcount, &bytes);
    if (err == MPI_SUCCESS && (position == NULL || inbuf == NULL || *position < 0))
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && *position + bytes > insize)
        err = MPI_ERR_TRUNCATE;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Unpack");
    fm_unpack((const char *)inbuf + *position, bytes, outcount, fm_type_get(datatype), outbuf);
    *position += bytes;
    return MPI_SUCCESS;
}

int MPI_Pack_size(int incount, MPI_Datatype datatype, MPI_Comm comm, int *size) {
    int err = fm_type_check(datatype);
    if (err == MPI_SUCCESS && size == NULL)
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS)
        err = fm_type_bytes(fm_type_get(datatype), incount, size);
    return fm_raise(comm, err, "MPI_Pack_size");
}
