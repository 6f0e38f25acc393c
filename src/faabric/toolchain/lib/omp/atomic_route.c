/*
 * atomic_route.c: the program's atomic operations, done at home while a team spans hosts.
 *
 * `faabric cc` rewrites every atomic instruction of the program's own code (not of this
 * runtime) into a call to one of the functions below, with the instruction's constant offset
 * as last argument (toolchain/atomics.py names them after the instruction). While no team
 * spans hosts, each does the instruction itself. While one does, each host has its own copy
 * of the memory, so an atomic operation on shared data goes to the main host instead
 * (fteam_atomic), which does it on its memory, in one order for the whole team, and makes
 * the operation a synchronisation point (docs/openmp.md, "Memory model"). Operations on the
 * runtime's per-host state (the excluded ranges) stay local. The `_drop` variants are
 * read-modify-writes whose result the program ignores: the host may batch them.
 * Must not be called by the runtime itself.
 */
#include "omp_internal.h"

/* 1 while a team of this granule spans hosts (set on the main host before the fork's
 * snapshot, so the other hosts start with it set; per host: excluded from the diffs) */
int fth_atomics_remote;
/* the ranges of per-host state while it is set, and the host's fteam_atomic (both set by
 * omp_remote.c: a program without OpenMP links neither it nor the host's team interface) */
const struct fteam_excludes *fth_atomics_local;
int64_t (*fth_atomics_call)(int32_t code, int32_t addr, int64_t a, int64_t b);

static int excluded(uintptr_t ea) {
    const struct fteam_excludes *set = fth_atomics_local;
    for (int i = 0; set && i < set->count; i++)
        if (ea >= (uint32_t)set->range[i].start && ea < (uint32_t)set->range[i].end)
            return 1;
    return 0;
}

#define ROUTED __attribute__((used, visibility("default")))
#define SEQ __ATOMIC_SEQ_CST

/* the effective address of an access at `addr` + `offset` (a trap if it wraps, as wasm) */
static inline uintptr_t at(int32_t addr, int32_t offset) {
    uint32_t base = (uint32_t)addr, ea = base + (uint32_t)offset;
    if (ea < base)
        __builtin_trap();
    return ea;
}

/* whether an access to `ea` goes to the main host now */
static inline int remote(uintptr_t ea) {
    return __builtin_expect(fth_atomics_remote, 0) && !excluded(ea);
}

#define LOAD(name, code, T, W)                                                                 \
    ROUTED T __faabric_atomic_##name(int32_t addr, int32_t off) {                             \
        uintptr_t ea = at(addr, off);                                                         \
        if (remote(ea))                                                                       \
            return (T)(W)fth_atomics_call(code, (int32_t)ea, 0, 0);                                \
        return (T)__atomic_load_n((W *)ea, SEQ);                                              \
    }

#define STORE(name, code, T, W)                                                                \
    ROUTED void __faabric_atomic_##name(int32_t addr, T value, int32_t off) {                 \
        uintptr_t ea = at(addr, off);                                                         \
        if (remote(ea))                                                                       \
            fth_atomics_call(code, (int32_t)ea, (int64_t)(W)value, 0);                             \
        else                                                                                  \
            __atomic_store_n((W *)ea, (W)value, SEQ);                                         \
    }

/* a read-modify-write and its variant whose result is dropped */
#define RMW(name, code, T, W, builtin)                                                         \
    ROUTED T __faabric_atomic_##name(int32_t addr, T value, int32_t off) {                    \
        uintptr_t ea = at(addr, off);                                                         \
        if (remote(ea))                                                                       \
            return (T)(W)fth_atomics_call(code, (int32_t)ea, (int64_t)(W)value, 0);                \
        return (T)builtin((W *)ea, (W)value, SEQ);                                            \
    }                                                                                         \
    ROUTED void __faabric_atomic_##name##_drop(int32_t addr, T value, int32_t off) {          \
        uintptr_t ea = at(addr, off);                                                         \
        if (remote(ea))                                                                       \
            fth_atomics_call((code) | FTEAM_ATOMIC_DROPPED, (int32_t)ea, (int64_t)(W)value, 0);   \
        else                                                                                  \
            (void)builtin((W *)ea, (W)value, SEQ);                                            \
    }

#define XCHG(name, code, T, W)                                                                 \
    ROUTED T __faabric_atomic_##name(int32_t addr, T value, int32_t off) {                    \
        uintptr_t ea = at(addr, off);                                                         \
        if (remote(ea))                                                                       \
            return (T)(W)fth_atomics_call(code, (int32_t)ea, (int64_t)(W)value, 0);                \
        return (T)__atomic_exchange_n((W *)ea, (W)value, SEQ);                                \
    }

#define CMPXCHG(name, code, T, W)                                                              \
    ROUTED T __faabric_atomic_##name(int32_t addr, T expected, T replacement, int32_t off) {  \
        uintptr_t ea = at(addr, off);                                                         \
        if (remote(ea))                                                                       \
            return (T)(W)fth_atomics_call(code, (int32_t)ea, (int64_t)(W)expected,                 \
                                      (int64_t)(W)replacement);                               \
        W old = (W)expected;                                                                  \
        __atomic_compare_exchange_n((W *)ea, &old, (W)replacement, 0, SEQ, SEQ);              \
        return (T)old;                                                                        \
    }

LOAD(i32_load, 0x10, uint32_t, uint32_t)
LOAD(i64_load, 0x11, uint64_t, uint64_t)
LOAD(i32_load8_u, 0x12, uint32_t, uint8_t)
LOAD(i32_load16_u, 0x13, uint32_t, uint16_t)
LOAD(i64_load8_u, 0x14, uint64_t, uint8_t)
LOAD(i64_load16_u, 0x15, uint64_t, uint16_t)
LOAD(i64_load32_u, 0x16, uint64_t, uint32_t)

STORE(i32_store, 0x17, uint32_t, uint32_t)
STORE(i64_store, 0x18, uint64_t, uint64_t)
STORE(i32_store8, 0x19, uint32_t, uint8_t)
STORE(i32_store16, 0x1a, uint32_t, uint16_t)
STORE(i64_store8, 0x1b, uint64_t, uint8_t)
STORE(i64_store16, 0x1c, uint64_t, uint16_t)
STORE(i64_store32, 0x1d, uint64_t, uint32_t)

/* one read-modify-write operation in its seven widths, sub-opcodes base..base+6 */
#define RMW_OP(MACRO, op, base, ...)                                                           \
    MACRO(i32_rmw_##op, (base) + 0, uint32_t, uint32_t, ##__VA_ARGS__)                         \
    MACRO(i64_rmw_##op, (base) + 1, uint64_t, uint64_t, ##__VA_ARGS__)                         \
    MACRO(i32_rmw8_##op##_u, (base) + 2, uint32_t, uint8_t, ##__VA_ARGS__)                     \
    MACRO(i32_rmw16_##op##_u, (base) + 3, uint32_t, uint16_t, ##__VA_ARGS__)                   \
    MACRO(i64_rmw8_##op##_u, (base) + 4, uint64_t, uint8_t, ##__VA_ARGS__)                     \
    MACRO(i64_rmw16_##op##_u, (base) + 5, uint64_t, uint16_t, ##__VA_ARGS__)                   \
    MACRO(i64_rmw32_##op##_u, (base) + 6, uint64_t, uint32_t, ##__VA_ARGS__)

RMW_OP(RMW, add, 0x1e, __atomic_fetch_add)
RMW_OP(RMW, sub, 0x25, __atomic_fetch_sub)
RMW_OP(RMW, and, 0x2c, __atomic_fetch_and)
RMW_OP(RMW, or, 0x33, __atomic_fetch_or)
RMW_OP(RMW, xor, 0x3a, __atomic_fetch_xor)
RMW_OP(XCHG, xchg, 0x41)
RMW_OP(CMPXCHG, cmpxchg, 0x48)

ROUTED void __faabric_atomic_fence(void) {
    if (__builtin_expect(fth_atomics_remote, 0))
        fth_atomics_call(FTEAM_ATOMIC_FENCE, 0, 0, 0);
    else
        __atomic_thread_fence(SEQ);
}

/* across hosts a wait returns once the word changed, was notified, or after a while (a
 * spurious wake-up, as futex users expect); the timeout still bounds it */
ROUTED int32_t __faabric_atomic_wait32(int32_t addr, int32_t expected, int64_t timeout,
                                       int32_t off) {
    uintptr_t ea = at(addr, off);
    if (remote(ea))
        return (int32_t)fth_atomics_call(0x01, (int32_t)ea, (int64_t)(uint32_t)expected, timeout);
    return __builtin_wasm_memory_atomic_wait32((int *)ea, expected, timeout);
}

ROUTED int32_t __faabric_atomic_wait64(int32_t addr, int64_t expected, int64_t timeout,
                                       int32_t off) {
    uintptr_t ea = at(addr, off);
    if (remote(ea))
        return (int32_t)fth_atomics_call(0x02, (int32_t)ea, expected, timeout);
    return __builtin_wasm_memory_atomic_wait64((long long *)ea, expected, timeout);
}

ROUTED int32_t __faabric_atomic_notify(int32_t addr, int32_t count, int32_t off) {
    uintptr_t ea = at(addr, off);
    if (remote(ea))
        return (int32_t)fth_atomics_call(0x00, (int32_t)ea, (int64_t)(uint32_t)count, 0);
    return __builtin_wasm_memory_atomic_notify((int *)ea, (unsigned)count);
}
