/* Derived datatype constructors: contiguous, vector, hvector, indexed, hindexed,
 * indexed_block, struct, resized and dup.
 *
 * Every constructor places copies of old types at byte displacements through one builder that
 * flattens the result into runs of bytes (for packing) and, when every part is made of the
 * same predefined type, runs of base elements (for reductions). No data moves here.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

typedef struct builder {
    fm_type *t;
    int cap_segs, cap_blocks;
    int started;
    int failed;
    MPI_Aint ub;
} builder;

static int grow(void **items, int *cap, int need, size_t size) {
    if (need <= *cap)
        return 1;
    int next = *cap < 8 ? 8 : *cap * 2;
    while (next < need)
        next *= 2;
    void *more = realloc(*items, (size_t)next * size);
    if (more == NULL)
        return 0;
    *items = more;
    *cap = next;
    return 1;
}

static void add_seg(builder *b, fm_seg s) {
    fm_type *t = b->t;
    if (s.len == 0)
        return;
    fm_seg *last = t->nsegs ? &t->segs[t->nsegs - 1] : NULL;
    if (last && last->disp + last->len == s.disp && last->esz == s.esz) {
        last->len += s.len;
        return;
    }
    if (!grow((void **)&t->segs, &b->cap_segs, t->nsegs + 1, sizeof *t->segs)) {
        b->failed = 1;
        return;
    }
    t->segs[t->nsegs++] = s;
}

static void add_block(builder *b, fm_block k, MPI_Aint base_extent) {
    fm_type *t = b->t;
    fm_block *last = t->nblocks ? &t->blocks[t->nblocks - 1] : NULL;
    if (last && last->disp + last->n * base_extent == k.disp) {
        last->n += k.n;
        return;
    }
    if (!grow((void **)&t->blocks, &b->cap_blocks, t->nblocks + 1, sizeof *t->blocks)) {
        b->failed = 1;
        return;
    }
    t->blocks[t->nblocks++] = k;
}

static void extend_bounds(builder *b, const fm_type *old, MPI_Aint disp) {
    fm_type *t = b->t;
    MPI_Aint lb = disp + old->lb, ub = lb + old->extent;
    MPI_Aint tlb = disp + old->true_lb, tub = disp + old->true_ub;
    if (!b->started) {
        t->lb = lb, b->ub = ub, t->true_lb = tlb, t->true_ub = tub;
        t->base = old->base;
        b->started = 1;
        return;
    }
    t->lb = lb < t->lb ? lb : t->lb;
    b->ub = ub > b->ub ? ub : b->ub;
    t->true_lb = tlb < t->true_lb ? tlb : t->true_lb;
    t->true_ub = tub > t->true_ub ? tub : t->true_ub;
    if (t->base != old->base)
        t->base = MPI_DATATYPE_NULL;
}

/* Places one copy of `old` at byte displacement `disp`. */
static void place(builder *b, const fm_type *old, MPI_Aint disp) {
    extend_bounds(b, old, disp);
    b->t->size += old->size;
    b->t->nelems += old->nelems;
    b->t->align = old->align > b->t->align ? old->align : b->t->align;
    for (int i = 0; i < old->nsegs; i++) {
        fm_seg s = old->segs[i];
        s.disp += disp;
        add_seg(b, s);
    }
    if (b->t->base == MPI_DATATYPE_NULL)
        return;
    MPI_Aint base_extent = fm_type_get(b->t->base)->extent;
    for (int i = 0; i < old->nblocks; i++)
        add_block(b, (fm_block){old->blocks[i].disp + disp, old->blocks[i].n}, base_extent);
}

static void place_run(builder *b, const fm_type *old, MPI_Aint disp, int n) {
    for (int j = 0; j < n; j++)
        place(b, old, disp + j * old->extent);
}

static int finish(builder *b, MPI_Datatype *newtype, const char *fn) {
    fm_type *t = b->t;
    if (b->failed || t == NULL) {
        if (t != NULL) {
            free(t->segs);
            free(t->blocks);
            free(t);
        }
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, fn);
    }
    t->extent = b->started ? b->ub - t->lb : 0;
    if (t->base == MPI_DATATYPE_NULL) {
        free(t->blocks);
        t->blocks = NULL;
        t->nblocks = 0;
    }
    t->refs = 1;
    *newtype = fm_type_register(t);
    if (*newtype == MPI_DATATYPE_NULL) {
        b->failed = 1;
        return finish(b, newtype, fn);
    }
    return MPI_SUCCESS;
}

static int start(builder *b, int count, MPI_Datatype oldtype, const fm_type **old,
                 MPI_Datatype *newtype, const char *fn) {
    memset(b, 0, sizeof *b);
    *old = fm_type_get(oldtype);
    if (*old == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, fn);
    if (count < 0)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COUNT, fn);
    if (newtype == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, fn);
    b->t = calloc(1, sizeof *b->t);
    b->failed = b->t == NULL;
    return MPI_SUCCESS;
}

int MPI_Type_contiguous(int count, MPI_Datatype oldtype, MPI_Datatype *newtype) {
    builder b;
    const fm_type *old;
    int err = start(&b, count, oldtype, &old, newtype, "MPI_Type_contiguous");
    if (err != MPI_SUCCESS)
        return err;
    if (!b.failed)
        place_run(&b, old, 0, count);
    return finish(&b, newtype, "MPI_Type_contiguous");
}

int MPI_Type_create_hvector(int count, int blocklength, MPI_Aint stride, MPI_Datatype oldtype,
                            MPI_Datatype *newtype) {
    builder b;
    const fm_type *old;
    int err = start(&b, count, oldtype, &old, newtype, "MPI_Type_create_hvector");
    if (err != MPI_SUCCESS)
        return err;
    if (blocklength < 0)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Type_create_hvector");
    for (int i = 0; i < count && !b.failed; i++)
        place_run(&b, old, i * stride, blocklength);
    return finish(&b, newtype, "MPI_Type_create_hvector");
}

int MPI_Type_vector(int count, int blocklength, int stride, MPI_Datatype oldtype,
                    MPI_Datatype *newtype) {
    const fm_type *old = fm_type_get(oldtype);
    MPI_Aint extent = old ? old->extent : 0;
    return MPI_Type_create_hvector(count, blocklength, stride * extent, oldtype, newtype);
}

static int hindexed(int count, const int lens[], int same_len, const MPI_Aint byte_disps[],
                    const int elem_disps[], MPI_Datatype oldtype, MPI_Datatype *newtype,
                    const char *fn) {
    builder b;
    const fm_type *old;
    int err = start(&b, count, oldtype, &old, newtype, fn);
    if (err != MPI_SUCCESS)
        return err;
    if (count > 0 && ((lens == NULL && same_len < 0) || (!byte_disps && !elem_disps)))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, fn);
    for (int i = 0; i < count && !b.failed; i++) {
        int n = lens ? lens[i] : same_len;
        if (n < 0)
            return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, fn);
        MPI_Aint disp = byte_disps ? byte_disps[i] : elem_disps[i] * old->extent;
        place_run(&b, old, disp, n);
    }
    return finish(&b, newtype, fn);
}

int MPI_Type_indexed(int count, const int blocklengths[], const int displacements[],
                     MPI_Datatype oldtype, MPI_Datatype *newtype) {
    return hindexed(count, blocklengths, -1, NULL, displacements, oldtype, newtype,
                    "MPI_Type_indexed");
}

int MPI_Type_create_hindexed(int count, const int blocklengths[],
                             const MPI_Aint displacements[], MPI_Datatype oldtype,
                             MPI_Datatype *newtype) {
    return hindexed(count, blocklengths, -1, displacements, NULL, oldtype, newtype,
                    "MPI_Type_create_hindexed");
}

int MPI_Type_create_indexed_block(int count, int blocklength, const int displacements[],
                                  MPI_Datatype oldtype, MPI_Datatype *newtype) {
    return hindexed(count, NULL, blocklength, NULL, displacements, oldtype, newtype,
                    "MPI_Type_create_indexed_block");
}

int MPI_Type_create_struct(int count, const int blocklengths[], const MPI_Aint displacements[],
                           const MPI_Datatype types[], MPI_Datatype *newtype) {
    builder b;
    const fm_type *old;
    if (count > 0 && (types == NULL || blocklengths == NULL || displacements == NULL))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Type_create_struct");
    int err = start(&b, count, count > 0 ? types[0] : MPI_BYTE, &old, newtype,
                    "MPI_Type_create_struct");
    for (int i = 0; i < count && err == MPI_SUCCESS && !b.failed; i++) {
        old = fm_type_get(types[i]);
        if (old == NULL || blocklengths[i] < 0) {
            free(b.t->segs), free(b.t->blocks), free(b.t);
            return fm_raise(MPI_COMM_WORLD, old ? MPI_ERR_ARG : MPI_ERR_TYPE,
                            "MPI_Type_create_struct");
        }
        place_run(&b, old, displacements[i], blocklengths[i]);
    }
    if (err == MPI_SUCCESS && b.started && b.t->align > 1) /* MPI's alignment padding */
        b.ub = b.t->lb + ((b.ub - b.t->lb + b.t->align - 1) / b.t->align) * b.t->align;
    return err != MPI_SUCCESS ? err : finish(&b, newtype, "MPI_Type_create_struct");
}

int MPI_Type_create_resized(MPI_Datatype oldtype, MPI_Aint lb, MPI_Aint extent,
                            MPI_Datatype *newtype) {
    builder b;
    const fm_type *old;
    int err = start(&b, 1, oldtype, &old, newtype, "MPI_Type_create_resized");
    if (err != MPI_SUCCESS)
        return err;
    if (!b.failed) {
        place(&b, old, 0);
        b.t->lb = lb;
        b.ub = lb + extent;
    }
    return finish(&b, newtype, "MPI_Type_create_resized");
}

int MPI_Type_dup(MPI_Datatype oldtype, MPI_Datatype *newtype) {
    builder b;
    const fm_type *old;
    int err = start(&b, 1, oldtype, &old, newtype, "MPI_Type_dup");
    if (err != MPI_SUCCESS)
        return err;
    if (!b.failed)
        place(&b, old, 0);
    err = finish(&b, newtype, "MPI_Type_dup");
    if (err == MPI_SUCCESS)
        fm_type_get(*newtype)->committed = old->committed;
    return err;
}
