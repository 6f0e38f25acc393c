/* The datatype table: the predefined C types (with their pair types for MAXLOC/MINLOC), the
 * derived types programs build, and the calls that query, commit and free them.
 *
 * Constructors live in datatype_build.c and packing in pack.c; this file must not move data.
 */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "fm_internal.h"

static fm_type predefined[FM_PREDEFINED_TYPES];
static fm_seg predefined_segs[FM_PREDEFINED_TYPES][2];
static fm_block predefined_blocks[FM_PREDEFINED_TYPES];
static int predefined_ready;
static fm_type **derived; /* index = handle - FM_FIRST_DERIVED_TYPE */
static int nderived;

static void basic(MPI_Datatype h, int size) {
    fm_type *t = &predefined[h];
    predefined_segs[h][0] = (fm_seg){0, size, size};
    predefined_blocks[h] = (fm_block){0, 1};
    *t = (fm_type){.predefined = 1, .committed = 1, .refs = 1, .size = size, .align = size,
                   .lb = 0,
                   .extent = size, .true_lb = 0, .true_ub = size, .nsegs = 1,
                   .segs = predefined_segs[h], .nelems = 1, .base = h, .nblocks = 1,
                   .blocks = &predefined_blocks[h]};
}

static void pair(MPI_Datatype h, int vsize, int ioff, int extent) {
    basic(h, vsize);
    fm_type *t = &predefined[h];
    t->size = vsize + (int)sizeof(int);
    t->extent = extent;
    t->true_ub = ioff + (MPI_Aint)sizeof(int);
    t->nelems = 2;
    if (ioff == vsize && vsize == (int)sizeof(int)) {
        predefined_segs[h][0] = (fm_seg){0, 2 * vsize, vsize};
    } else {
        predefined_segs[h][1] = (fm_seg){ioff, (int)sizeof(int), (int)sizeof(int)};
        t->nsegs = 2;
    }
}

#define PAIR(h, T)                                                                             \
    pair(h, (int)sizeof(((T *)0)->v), (int)offsetof(T, i), (int)sizeof(T));                    \
    predefined[h].align = (int)_Alignof(T)

static void setup_predefined(void) {
    static const struct { MPI_Datatype h; int size; } basics[] = {
        {MPI_CHAR, 1}, {MPI_SIGNED_CHAR, 1}, {MPI_UNSIGNED_CHAR, 1}, {MPI_BYTE, 1},
        {MPI_SHORT, sizeof(short)}, {MPI_UNSIGNED_SHORT, sizeof(short)}, {MPI_INT, sizeof(int)},
        {MPI_UNSIGNED, sizeof(int)}, {MPI_LONG, sizeof(long)}, {MPI_UNSIGNED_LONG, sizeof(long)},
        {MPI_LONG_LONG_INT, sizeof(long long)}, {MPI_UNSIGNED_LONG_LONG, sizeof(long long)},
        {MPI_FLOAT, sizeof(float)}, {MPI_DOUBLE, sizeof(double)},
        {MPI_LONG_DOUBLE, sizeof(long double)}, {MPI_C_BOOL, sizeof(_Bool)}, {MPI_INT8_T, 1},
        {MPI_INT16_T, 2}, {MPI_INT32_T, 4}, {MPI_INT64_T, 8}, {MPI_UINT8_T, 1},
        {MPI_UINT16_T, 2}, {MPI_UINT32_T, 4}, {MPI_UINT64_T, 8}, {MPI_WCHAR, sizeof(wchar_t)},
        {MPI_AINT, sizeof(MPI_Aint)}, {MPI_OFFSET, sizeof(MPI_Offset)},
        {MPI_COUNT, sizeof(MPI_Count)}, {MPI_C_FLOAT_COMPLEX, sizeof(float _Complex)},
        {MPI_C_DOUBLE_COMPLEX, sizeof(double _Complex)},
        {MPI_C_LONG_DOUBLE_COMPLEX, sizeof(long double _Complex)}, {MPI_PACKED, 1},
    };
    for (size_t i = 0; i < sizeof basics / sizeof basics[0]; i++)
        basic(basics[i].h, basics[i].size);
    PAIR(MPI_FLOAT_INT, fm_float_int);
    PAIR(MPI_DOUBLE_INT, fm_double_int);
    PAIR(MPI_LONG_INT, fm_long_int);
    PAIR(MPI_2INT, fm_2int);
    PAIR(MPI_SHORT_INT, fm_short_int);
    PAIR(MPI_LONG_DOUBLE_INT, fm_long_double_int);
    predefined[MPI_C_FLOAT_COMPLEX].align = (int)_Alignof(float);
    predefined[MPI_C_DOUBLE_COMPLEX].align = (int)_Alignof(double);
    predefined[MPI_C_LONG_DOUBLE_COMPLEX].align = (int)_Alignof(long double);
    predefined[MPI_LONG_DOUBLE].align = (int)_Alignof(long double);
    predefined_ready = 1;
}

fm_type *fm_type_get(MPI_Datatype type) {
    if (!predefined_ready)
        setup_predefined();
    if (type > 0 && type < FM_PREDEFINED_TYPES)
        return &predefined[type];
    int i = type - FM_FIRST_DERIVED_TYPE;
    if (i < 0 || i >= nderived)
        return NULL;
    return derived[i];
}

int fm_type_check(MPI_Datatype type) {
    fm_type *t = fm_type_get(type);
    return t != NULL && t->committed ? MPI_SUCCESS : MPI_ERR_TYPE;
}

int fm_type_bytes(const fm_type *t, int count, int *bytes) {
    long long n = (long long)count * t->size;
    if (count < 0 || n > INT_MAX)
        return MPI_ERR_COUNT;
    *bytes = (int)n;
    return MPI_SUCCESS;
}

MPI_Datatype fm_type_register(fm_type *t) {
    int i = 0;
    while (i < nderived && derived[i] != NULL)
        i++;
    if (i == nderived) {
        int grown = nderived < 16 ? 16 : nderived * 2;
        fm_type **more = realloc(derived, (size_t)grown * sizeof *more);
        if (more == NULL)
            return MPI_DATATYPE_NULL;
        memset(more + nderived, 0, (size_t)(grown - nderived) * sizeof *more);
        derived = more;
        nderived = grown;
    }
    derived[i] = t;
    return FM_FIRST_DERIVED_TYPE + i;
}

static void type_destroy(fm_type *t) {
    free(t->segs);
    free(t->blocks);
    free(t);
}

int MPI_Type_commit(MPI_Datatype *datatype) {
    fm_type *t = datatype ? fm_type_get(*datatype) : NULL;
    if (t == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Type_commit");
    t->committed = 1;
    return MPI_SUCCESS;
}

int MPI_Type_free(MPI_Datatype *datatype) {
    fm_type *t = datatype ? fm_type_get(*datatype) : NULL;
    if (t == NULL || t->predefined)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Type_free");
    derived[*datatype - FM_FIRST_DERIVED_TYPE] = NULL;
    type_destroy(t);
    *datatype = MPI_DATATYPE_NULL;
    return MPI_SUCCESS;
}

int MPI_Type_size(MPI_Datatype datatype, int *size) {
    fm_type *t = fm_type_get(datatype);
    if (t == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Type_size");
    if (size == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Type_size");
    *size = t->size;
    return MPI_SUCCESS;
}

int MPI_Type_get_extent(MPI_Datatype datatype, MPI_Aint *lb, MPI_Aint *extent) {
    fm_type *t = fm_type_get(datatype);
    if (t == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Type_get_extent");
    if (lb == NULL || extent == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Type_get_extent");
    *lb = t->lb;
    *extent = t->extent;
    return MPI_SUCCESS;
}

int MPI_Type_get_true_extent(MPI_Datatype datatype, MPI_Aint *true_lb, MPI_Aint *true_extent) {
    fm_type *t = fm_type_get(datatype);
    if (t == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Type_get_true_extent");
    if (true_lb == NULL || true_extent == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Type_get_true_extent");
    *true_lb = t->true_lb;
    *true_extent = t->true_ub - t->true_lb;
    return MPI_SUCCESS;
}

int MPI_Get_count(const MPI_Status *status, MPI_Datatype datatype, int *count) {
    fm_type *t = fm_type_get(datatype);
    if (t == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Get_count");
    if (status == NULL || count == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Get_count");
    if (t->size == 0)
        *count = 0;
    else
        *count = status->fm_count % t->size ? MPI_UNDEFINED : status->fm_count / t->size;
    return MPI_SUCCESS;
}

int MPI_Get_elements(const MPI_Status *status, MPI_Datatype datatype, int *count) {
    fm_type *t = fm_type_get(datatype);
    if (t == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_TYPE, "MPI_Get_elements");
    if (status == NULL || count == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Get_elements");
    *count = fm_elements(t, status->fm_count);
    return MPI_SUCCESS;
}
