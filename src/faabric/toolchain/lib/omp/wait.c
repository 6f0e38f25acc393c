/*
 * wait.c: waiting on memory words and the small futex lock every other primitive uses.
 *
 * A wait first polls the word, then sleeps in memory.atomic.wait32 for at most
 * FTH_WAIT_SLICE_NS at a time: an infinite wait could never be interrupted by the host,
 * which stops threads only between wasm instructions. Must not allocate or print.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "fth.h"

static int sleep_on(atomic_int *addr, int expected, int64_t timeout_ns) {
    return __builtin_wasm_memory_atomic_wait32((int *)addr, expected, timeout_ns);
}

void fth_wait(atomic_int *addr, int expected, int spins) {
    for (int i = 0; i < spins; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != expected)
            return;
    }
    while (atomic_load_explicit(addr, memory_order_acquire) == expected)
        sleep_on(addr, expected, FTH_WAIT_SLICE_NS);
}

int fth_wait_timed(atomic_int *addr, int expected, int64_t timeout_ns) {
    int64_t deadline = fth_now_ns(CLOCK_MONOTONIC) + timeout_ns;
    while (atomic_load_explicit(addr, memory_order_acquire) == expected) {
        int64_t left = deadline - fth_now_ns(CLOCK_MONOTONIC);
        if (left <= 0)
            return ETIMEDOUT;
        sleep_on(addr, expected, left < FTH_WAIT_SLICE_NS ? left : FTH_WAIT_SLICE_NS);
    }
    return 0;
}

void fth_wake(atomic_int *addr, int count) {
    __builtin_wasm_memory_atomic_notify((int *)addr, (unsigned)count);
}

void fth_wake_all(atomic_int *addr) {
    __builtin_wasm_memory_atomic_notify((int *)addr, UINT_MAX);
}

int fth_trylock(atomic_int *word) {
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(word, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

void fth_lock(atomic_int *word) {
    if (fth_trylock(word))
        return;
    for (int i = 0; i < FTH_SPIN_SHORT; i++) {
        if (atomic_load_explicit(word, memory_order_relaxed) == 0 && fth_trylock(word))
            return;
    }
    while (atomic_exchange_explicit(word, 2, memory_order_acquire) != 0)
        sleep_on(word, 2, FTH_WAIT_SLICE_NS);
}

void fth_unlock(atomic_int *word) {
    if (atomic_exchange_explicit(word, 0, memory_order_release) == 2)
        fth_wake(word, 1);
}

int64_t fth_now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

_Noreturn void fth_fatal(const char *message) {
    fprintf(stderr, "faabric: %s\n", message);
    fflush(stderr);
    __builtin_trap();
}
