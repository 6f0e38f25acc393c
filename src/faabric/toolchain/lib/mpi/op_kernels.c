/* The predefined reduction operations as loops over C types, and the table saying which
 * operation MPI defines on which predefined datatype.
 *
 * Kernels compute inout[i] = in[i] op inout[i]. A NULL entry means MPI does not define that
 * pair (e.g. MPI_SUM on MPI_CHAR, bitwise ops on floating point); callers report MPI_ERR_OP.
 */
#include <complex.h>

#include "fm_internal.h"

#define LOOP(T, expr)                                                                          \
    const T *x = in;                                                                           \
    T *y = inout;                                                                              \
    for (int i = 0; i < n; i++)                                                                \
    y[i] = (T)(expr)

#define ARITH(N, T)                                                                            \
    static void N##_max(const void *in, void *inout, int n) { LOOP(T, x[i] > y[i] ? x[i] : y[i]); } \
    static void N##_min(const void *in, void *inout, int n) { LOOP(T, x[i] < y[i] ? x[i] : y[i]); } \
    static void N##_sum(const void *in, void *inout, int n) { LOOP(T, x[i] + y[i]); }          \
    static void N##_prod(const void *in, void *inout, int n) { LOOP(T, x[i] * y[i]); }

#define LOGIC(N, T)                                                                            \
    static void N##_land(const void *in, void *inout, int n) { LOOP(T, x[i] && y[i]); }        \
    static void N##_lor(const void *in, void *inout, int n) { LOOP(T, x[i] || y[i]); }         \
    static void N##_lxor(const void *in, void *inout, int n) { LOOP(T, !x[i] != !y[i]); }

#define BITS(N, T)                                                                             \
    static void N##_band(const void *in, void *inout, int n) { LOOP(T, x[i] & y[i]); }         \
    static void N##_bor(const void *in, void *inout, int n) { LOOP(T, x[i] | y[i]); }          \
    static void N##_bxor(const void *in, void *inout, int n) { LOOP(T, x[i] ^ y[i]); }

#define INTEGER(N, T) ARITH(N, T) LOGIC(N, T) BITS(N, T)

#define LOC(N, T)                                                                              \
    static void N##_maxloc(const void *in, void *inout, int n) {                               \
        const T *x = in;                                                                       \
        T *y = inout;                                                                          \
        for (int i = 0; i < n; i++)                                                            \
            if (x[i].v > y[i].v || (x[i].v == y[i].v && x[i].i < y[i].i))                      \
                y[i] = x[i];                                                                   \
    }                                                                                          \
    static void N##_minloc(const void *in, void *inout, int n) {                               \
        const T *x = in;                                                                       \
        T *y = inout;                                                                          \
        for (int i = 0; i < n; i++)                                                            \
            if (x[i].v < y[i].v || (x[i].v == y[i].v && x[i].i < y[i].i))                      \
                y[i] = x[i];                                                                   \
    }

#define SUMPROD(N, T)                                                                          \
    static void N##_sum(const void *in, void *inout, int n) { LOOP(T, x[i] + y[i]); }          \
    static void N##_prod(const void *in, void *inout, int n) { LOOP(T, x[i] * y[i]); }

INTEGER(sc, signed char)
INTEGER(uc, unsigned char)
INTEGER(sh, short)
INTEGER(us, unsigned short)
INTEGER(in, int)
INTEGER(ui, unsigned)
INTEGER(lo, long)
INTEGER(ul, unsigned long)
INTEGER(ll, long long)
INTEGER(ull, unsigned long long)
ARITH(fl, float)
ARITH(db, double)
ARITH(ld, long double)
LOGIC(bo, _Bool)
SUMPROD(cf, float _Complex)
SUMPROD(cd, double _Complex)
SUMPROD(cl, long double _Complex)
LOC(p_fi, fm_float_int)
LOC(p_di, fm_double_int)
LOC(p_li, fm_long_int)
LOC(p_2i, fm_2int)
LOC(p_si, fm_short_int)
LOC(p_ldi, fm_long_double_int)

typedef struct kset {
    fm_kernel k[MPI_NO_OP + 1];
} kset;

#define KINT(N)                                                                                \
    {{[MPI_MAX] = N##_max, [MPI_MIN] = N##_min, [MPI_SUM] = N##_sum, [MPI_PROD] = N##_prod,    \
      [MPI_LAND] = N##_land, [MPI_LOR] = N##_lor, [MPI_LXOR] = N##_lxor,                       \
      [MPI_BAND] = N##_band, [MPI_BOR] = N##_bor, [MPI_BXOR] = N##_bxor}}
#define KFLOAT(N)                                                                              \
    {{[MPI_MAX] = N##_max, [MPI_MIN] = N##_min, [MPI_SUM] = N##_sum, [MPI_PROD] = N##_prod}}
#define KCOMPLEX(N) {{[MPI_SUM] = N##_sum, [MPI_PROD] = N##_prod}}
#define KLOC(N) {{[MPI_MAXLOC] = N##_maxloc, [MPI_MINLOC] = N##_minloc}}

static const kset k_sc = KINT(sc), k_uc = KINT(uc), k_sh = KINT(sh), k_us = KINT(us);
static const kset k_in = KINT(in), k_ui = KINT(ui), k_lo = KINT(lo), k_ul = KINT(ul);
static const kset k_ll = KINT(ll), k_ull = KINT(ull);
static const kset k_fl = KFLOAT(fl), k_db = KFLOAT(db), k_ld = KFLOAT(ld);
static const kset k_bo = {{[MPI_LAND] = bo_land, [MPI_LOR] = bo_lor, [MPI_LXOR] = bo_lxor}};
static const kset k_byte = {{[MPI_BAND] = uc_band, [MPI_BOR] = uc_bor, [MPI_BXOR] = uc_bxor}};
static const kset k_cf = KCOMPLEX(cf), k_cd = KCOMPLEX(cd), k_cl = KCOMPLEX(cl);
static const kset k_fi = KLOC(p_fi), k_di = KLOC(p_di), k_li = KLOC(p_li);
static const kset k_2i = KLOC(p_2i), k_si = KLOC(p_si), k_ldi = KLOC(p_ldi);

/* The integer kernels of a C type of `size` bytes, signed or not. */
static const kset *exact(int size, int is_signed) {
    if (size == 1)
        return is_signed ? &k_sc : &k_uc;
    if (size == 2)
        return is_signed ? &k_sh : &k_us;
    if (size == (int)sizeof(int))
        return is_signed ? &k_in : &k_ui;
    return is_signed ? &k_ll : &k_ull;
}

static const kset *set_for(MPI_Datatype type) {
    static const kset *const fixed[FM_PREDEFINED_TYPES] = {
        [MPI_SIGNED_CHAR] = &k_sc, [MPI_UNSIGNED_CHAR] = &k_uc, [MPI_BYTE] = &k_byte,
        [MPI_SHORT] = &k_sh, [MPI_UNSIGNED_SHORT] = &k_us, [MPI_INT] = &k_in,
        [MPI_UNSIGNED] = &k_ui, [MPI_LONG] = &k_lo, [MPI_UNSIGNED_LONG] = &k_ul,
        [MPI_LONG_LONG_INT] = &k_ll, [MPI_UNSIGNED_LONG_LONG] = &k_ull, [MPI_FLOAT] = &k_fl,
        [MPI_DOUBLE] = &k_db, [MPI_LONG_DOUBLE] = &k_ld, [MPI_C_BOOL] = &k_bo,
        [MPI_C_FLOAT_COMPLEX] = &k_cf, [MPI_C_DOUBLE_COMPLEX] = &k_cd,
        [MPI_C_LONG_DOUBLE_COMPLEX] = &k_cl, [MPI_FLOAT_INT] = &k_fi, [MPI_DOUBLE_INT] = &k_di,
        [MPI_LONG_INT] = &k_li, [MPI_2INT] = &k_2i, [MPI_SHORT_INT] = &k_si,
        [MPI_LONG_DOUBLE_INT] = &k_ldi,
    };
    switch (type) {
    case MPI_INT8_T: case MPI_INT16_T: case MPI_INT32_T: case MPI_INT64_T:
        return exact(fm_type_get(type)->size, 1);
    case MPI_UINT8_T: case MPI_UINT16_T: case MPI_UINT32_T: case MPI_UINT64_T:
        return exact(fm_type_get(type)->size, 0);
    case MPI_AINT:
        return exact((int)sizeof(MPI_Aint), 1);
    case MPI_OFFSET: case MPI_COUNT:
        return exact(8, 1);
    default:
        return type > 0 && type < FM_PREDEFINED_TYPES ? fixed[type] : NULL;
    }
}

fm_kernel fm_kernel_for(MPI_Op op, MPI_Datatype type) {
    if (op < MPI_MAX || op > MPI_MINLOC)
        return NULL;
    const kset *set = set_for(type);
    return set ? set->k[op] : NULL;
}
