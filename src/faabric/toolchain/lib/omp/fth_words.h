/*
 * fth_words.h: waiting on memory words, and the small futex lock built on that, as a family
 * of functions named by the includer: WORDS(name) gives each function's name and
 * WORDS_LINKAGE its linkage (empty or static).
 *
 * wait.c defines the runtime's own family (fth_wait, fth_lock, ...), whose atomic
 * instructions stay native: they work on per-host state. pthread_sync.c includes a static
 * family of its own for the words of the program's pthread objects: `faabric cc` routes its
 * atomic instructions like the program's (toolchain/atomics.py), so mutexes, condition
 * variables, barriers and read-write locks work in OpenMP teams spanning hosts.
 *
 * A wait first polls the word, then sleeps in memory.atomic.wait32 for at most
 * FTH_WAIT_SLICE_NS at a time: an infinite wait could never be interrupted by the host,
 * which stops threads only between wasm instructions. Must not allocate or print.
 */
#include <errno.h>
#include <limits.h>
#include <time.h>

#include "fth.h"

WORDS_LINKAGE int WORDS(sleep_on)(atomic_int *addr, int expected, int64_t timeout_ns) {
    return __builtin_wasm_memory_atomic_wait32((int *)addr, expected, timeout_ns);
}

WORDS_LINKAGE void WORDS(wait)(atomic_int *addr, int expected, int spins) {
    for (int i = 0; i < spins; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != expected)
            return;
    }
    while (atomic_load_explicit(addr, memory_order_acquire) == expected)
        WORDS(sleep_on)(addr, expected, FTH_WAIT_SLICE_NS);
}

WORDS_LINKAGE int WORDS(wait_timed)(atomic_int *addr, int expected, int64_t timeout_ns) {
    int64_t deadline = fth_now_ns(CLOCK_MONOTONIC) + timeout_ns;
    while (atomic_load_explicit(addr, memory_order_acquire) == expected) {
        int64_t left = deadline - fth_now_ns(CLOCK_MONOTONIC);
        if (left <= 0)
            return ETIMEDOUT;
        WORDS(sleep_on)(addr, expected, left < FTH_WAIT_SLICE_NS ? left : FTH_WAIT_SLICE_NS);
    }
    return 0;
}

WORDS_LINKAGE void WORDS(wake)(atomic_int *addr, int count) {
    __builtin_wasm_memory_atomic_notify((int *)addr, (unsigned)count);
}

WORDS_LINKAGE void WORDS(wake_all)(atomic_int *addr) {
    __builtin_wasm_memory_atomic_notify((int *)addr, UINT_MAX);
}

WORDS_LINKAGE int WORDS(trylock)(atomic_int *word) {
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(word, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

WORDS_LINKAGE void WORDS(lock)(atomic_int *word) {
    if (WORDS(trylock)(word))
        return;
    for (int i = 0; i < FTH_SPIN_SHORT; i++) {
        if (atomic_load_explicit(word, memory_order_relaxed) == 0 && WORDS(trylock)(word))
            return;
    }
    while (atomic_exchange_explicit(word, 2, memory_order_acquire) != 0)
        WORDS(sleep_on)(word, 2, FTH_WAIT_SLICE_NS);
}

WORDS_LINKAGE void WORDS(unlock)(atomic_int *word) {
    if (atomic_exchange_explicit(word, 0, memory_order_release) == 2)
        WORDS(wake)(word, 1);
}
