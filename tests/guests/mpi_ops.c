/* Reduction operations on every predefined C type MPI defines them for: arithmetic, logical
 * and bitwise ops on integers, MAX/MIN/SUM/PROD on floating point, logical ops on C_BOOL,
 * bitwise ops on BYTE, MAXLOC/MINLOC on the pair types, and user operations (commutative and
 * not). Rank 0 prints every result.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "mpi_harness.h"

#define E 3 /* elements per reduction */

static const struct { MPI_Op op; const char *name; } ARITH[] = {
    {MPI_MAX, "max"}, {MPI_MIN, "min"}, {MPI_SUM, "sum"}, {MPI_PROD, "prod"}};
static const struct { MPI_Op op; const char *name; } LOGIC[] = {
    {MPI_LAND, "land"}, {MPI_LOR, "lor"}, {MPI_LXOR, "lxor"}};
static const struct { MPI_Op op; const char *name; } BITS[] = {
    {MPI_BAND, "band"}, {MPI_BOR, "bor"}, {MPI_BXOR, "bxor"}};

/* value of element i on `rank` for an op family: 1..3 for arithmetic, 0/1 for logic, bits. */
static long long arith_value(int rank, int i) { return (rank + i) % 3 + 1; }
static long long logic_value(int rank, int i) { return (rank + i) % 2; }
static long long bits_value(int rank, int i) { return 1 << ((rank * 2 + i) % 7); }

#define INTEGER_TEST(fn, T)                                                                    \
    static void fn(MPI_Datatype type, const char *tname, int rank, int logic_and_bits) {       \
        T in[E], out[E];                                                                       \
        for (int k = 0; k < 4 + 6 * logic_and_bits; k++) {                                     \
            MPI_Op op = k < 4 ? ARITH[k].op : k < 7 ? LOGIC[k - 4].op : BITS[k - 7].op;        \
            const char *oname = k < 4 ? ARITH[k].name : k < 7 ? LOGIC[k - 4].name              \
                                                              : BITS[k - 7].name;             \
            for (int i = 0; i < E; i++)                                                        \
                in[i] = (T)(k < 4 ? arith_value(rank, i)                                       \
                                  : k < 7 ? logic_value(rank, i) : bits_value(rank, i));       \
            MPI_Allreduce(in, out, E, type, op, MPI_COMM_WORLD);                               \
            say("%s %s: %lld %lld %lld", tname, oname, (long long)out[0], (long long)out[1],   \
                (long long)out[2]);                                                            \
        }                                                                                      \
    }

#define FLOAT_TEST(fn, T)                                                                      \
    static void fn(MPI_Datatype type, const char *tname, int rank) {                           \
        T in[E], out[E];                                                                       \
        for (int k = 0; k < 4; k++) {                                                          \
            for (int i = 0; i < E; i++)                                                        \
                in[i] = (T)arith_value(rank, i) / 2;                                           \
            MPI_Allreduce(in, out, E, type, ARITH[k].op, MPI_COMM_WORLD);                      \
            say("%s %s: %.4f %.4f %.4f", tname, ARITH[k].name, (double)out[0], (double)out[1], \
                (double)out[2]);                                                               \
        }                                                                                      \
    }

INTEGER_TEST(test_schar, signed char)
INTEGER_TEST(test_uchar, unsigned char)
INTEGER_TEST(test_short, short)
INTEGER_TEST(test_ushort, unsigned short)
INTEGER_TEST(test_int, int)
INTEGER_TEST(test_uint, unsigned)
INTEGER_TEST(test_long, long)
INTEGER_TEST(test_ulong, unsigned long)
INTEGER_TEST(test_llong, long long)
INTEGER_TEST(test_ullong, unsigned long long)
INTEGER_TEST(test_i8, int8_t)
INTEGER_TEST(test_i16, int16_t)
INTEGER_TEST(test_i32, int32_t)
INTEGER_TEST(test_i64, int64_t)
INTEGER_TEST(test_u8, uint8_t)
INTEGER_TEST(test_u16, uint16_t)
INTEGER_TEST(test_u32, uint32_t)
INTEGER_TEST(test_u64, uint64_t)
FLOAT_TEST(test_float, float)
FLOAT_TEST(test_double, double)
FLOAT_TEST(test_ldouble, long double)

static void integers(int rank) {
    test_schar(MPI_SIGNED_CHAR, "MPI_SIGNED_CHAR", rank, 1);
    test_uchar(MPI_UNSIGNED_CHAR, "MPI_UNSIGNED_CHAR", rank, 1);
    test_short(MPI_SHORT, "MPI_SHORT", rank, 1);
    test_ushort(MPI_UNSIGNED_SHORT, "MPI_UNSIGNED_SHORT", rank, 1);
    test_int(MPI_INT, "MPI_INT", rank, 1);
    test_uint(MPI_UNSIGNED, "MPI_UNSIGNED", rank, 1);
    test_long(MPI_LONG, "MPI_LONG", rank, 1);
    test_ulong(MPI_UNSIGNED_LONG, "MPI_UNSIGNED_LONG", rank, 1);
    test_llong(MPI_LONG_LONG, "MPI_LONG_LONG", rank, 1);
    test_llong(MPI_LONG_LONG_INT, "MPI_LONG_LONG_INT", rank, 1);
    test_ullong(MPI_UNSIGNED_LONG_LONG, "MPI_UNSIGNED_LONG_LONG", rank, 1);
    test_i8(MPI_INT8_T, "MPI_INT8_T", rank, 1);
    test_i16(MPI_INT16_T, "MPI_INT16_T", rank, 1);
    test_i32(MPI_INT32_T, "MPI_INT32_T", rank, 1);
    test_i64(MPI_INT64_T, "MPI_INT64_T", rank, 1);
    test_u8(MPI_UINT8_T, "MPI_UINT8_T", rank, 1);
    test_u16(MPI_UINT16_T, "MPI_UINT16_T", rank, 1);
    test_u32(MPI_UINT32_T, "MPI_UINT32_T", rank, 1);
    test_u64(MPI_UINT64_T, "MPI_UINT64_T", rank, 1);
    test_float(MPI_FLOAT, "MPI_FLOAT", rank);
    test_double(MPI_DOUBLE, "MPI_DOUBLE", rank);
    test_ldouble(MPI_LONG_DOUBLE, "MPI_LONG_DOUBLE", rank);
}

static void bools_and_bytes(int rank) {
    bool b[E], bo[E];
    unsigned char y[E], yo[E];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < E; i++)
            b[i] = logic_value(rank, i) != 0;
        MPI_Allreduce(b, bo, E, MPI_C_BOOL, LOGIC[k].op, MPI_COMM_WORLD);
        say("MPI_C_BOOL %s: %d %d %d", LOGIC[k].name, bo[0], bo[1], bo[2]);
        for (int i = 0; i < E; i++)
            y[i] = (unsigned char)bits_value(rank, i);
        MPI_Allreduce(y, yo, E, MPI_BYTE, BITS[k].op, MPI_COMM_WORLD);
        say("MPI_BYTE %s: %d %d %d", BITS[k].name, yo[0], yo[1], yo[2]);
    }
}

#define LOC_TEST(fn, V, I)                                                                     \
    static void fn(MPI_Datatype type, const char *tname, int rank) {                           \
        struct { V v; I i; } in[2], out[2];                                                    \
        in[0].v = (V)(rank % 2), in[0].i = (I)rank;                                            \
        in[1].v = (V)(10 - rank), in[1].i = (I)(rank * 3);                                     \
        MPI_Allreduce(in, out, 2, type, MPI_MAXLOC, MPI_COMM_WORLD);                           \
        say("%s maxloc: (%g,%d) (%g,%d)", tname, (double)out[0].v, (int)out[0].i,              \
            (double)out[1].v, (int)out[1].i);                                                  \
        MPI_Allreduce(in, out, 2, type, MPI_MINLOC, MPI_COMM_WORLD);                           \
        say("%s minloc: (%g,%d) (%g,%d)", tname, (double)out[0].v, (int)out[0].i,              \
            (double)out[1].v, (int)out[1].i);                                                  \
    }

LOC_TEST(loc_float_int, float, int)
LOC_TEST(loc_double_int, double, int)
LOC_TEST(loc_long_int, long, int)
LOC_TEST(loc_2int, int, int)
LOC_TEST(loc_short_int, short, int)
LOC_TEST(loc_long_double_int, long double, int)

static void pairs(int rank) {
    loc_float_int(MPI_FLOAT_INT, "MPI_FLOAT_INT", rank);
    loc_double_int(MPI_DOUBLE_INT, "MPI_DOUBLE_INT", rank);
    loc_long_int(MPI_LONG_INT, "MPI_LONG_INT", rank);
    loc_2int(MPI_2INT, "MPI_2INT", rank);
    loc_short_int(MPI_SHORT_INT, "MPI_SHORT_INT", rank);
    loc_long_double_int(MPI_LONG_DOUBLE_INT, "MPI_LONG_DOUBLE_INT", rank);
}

/* Decimal concatenation: associative but not commutative. */
static long long concat(long long a, long long b) {
    long long scale = 10;
    while (scale <= b)
        scale *= 10;
    return a * scale + b;
}

static void concat_op(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    for (int i = 0; i < *len; i++)
        ((long long *)inout)[i] = concat(((long long *)in)[i], ((long long *)inout)[i]);
}

static void add_op(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    for (int i = 0; i < *len; i++)
        ((int *)inout)[i] += ((int *)in)[i];
}

static void user_ops(int rank, int size) {
    MPI_Op cat, add;
    int commute[2];
    MPI_Op_create(concat_op, 0, &cat);
    MPI_Op_create(add_op, 1, &add);
    MPI_Op_commutative(cat, &commute[0]);
    MPI_Op_commutative(add, &commute[1]);
    say("user ops commutative: concat %d, add %d", commute[0], commute[1]);
    long long digit[2] = {rank + 1, size - rank}, joined[2] = {0, 0}, prefix[2];
    for (int root = 0; root < size; root++) {
        MPI_Reduce(digit, joined, 2, MPI_LONG_LONG, cat, root, MPI_COMM_WORLD);
        MPI_Bcast(joined, 2, MPI_LONG_LONG, root, MPI_COMM_WORLD);
        say("concat reduce at root %d: %lld %lld", root, joined[0], joined[1]);
    }
    MPI_Allreduce(digit, joined, 2, MPI_LONG_LONG, cat, MPI_COMM_WORLD);
    MPI_Scan(digit, prefix, 2, MPI_LONG_LONG, cat, MPI_COMM_WORLD);
    say_all("rank %d: concat allreduce %lld, scan %lld %lld", rank, joined[0], prefix[0],
            prefix[1]);
    int v[2] = {rank, 1}, s[2];
    MPI_Allreduce(v, s, 2, MPI_INT, add, MPI_COMM_WORLD);
    say("user add: %d %d", s[0], s[1]);
    long long local[2] = {7, 8};
    MPI_Reduce_local(digit, local, 2, MPI_LONG_LONG, cat);
    MPI_Reduce_local(digit, local, 2, MPI_LONG_LONG, MPI_SUM);
    say("reduce_local on rank 0: %lld %lld", local[0], local[1]);
    MPI_Op_free(&cat);
    MPI_Op_free(&add);
    CHECK(cat == MPI_OP_NULL && add == MPI_OP_NULL);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_ops on %d ranks", size);
    integers(rank);
    bools_and_bytes(rank);
    pairs(rank);
    user_ops(rank, size);
    return finish("mpi_ops");
}
