/*
 * malloc_lock.c: serialises wasi-libc's allocator for thread-capable builds.
 *
 * The Debian wasi-libc is built single-threaded, so its malloc has no lock. When
 * several instances share one linear memory (threads of one granule) they would
 * corrupt the heap. `faabric cc -fopenmp` / `-pthread` links this file and passes
 * `--wrap=` for each allocator entry point, so calls land here first.
 *
 * The lock is a small futex lock (0 free, 1 held, 2 held with waiters) whose waits are
 * finite, so that the host can always stop a waiting thread. In a parallel region whose team
 * spans hosts each host runs on its own copy of memory, and the heap is shared data like any
 * other: once it holds the lock of its own copy, a thread of such a team also takes the
 * team-wide heap lock (fth_team_heap_enter, from the OpenMP runtime), which brings in the heap
 * as the other hosts left it, and releases it before letting go of the local lock, which
 * publishes its changes (memory growth included). The word `fth_heap_lock` is per-host state
 * (the OpenMP runtime excludes it from synchronisation). The hooks are weak: pthread-only
 * programs link without the OpenMP runtime, and then never span hosts. Must not allocate
 * nor call anything that could (the hooks included).
 */
#include <stdatomic.h>
#include <stddef.h>

#define WAIT_SLICE_NS 100000000LL /* longest single wait: 100 ms */
#define SPINS 200                 /* polls before sleeping */

atomic_int fth_heap_lock;

/* 1 if it took the team-wide heap lock (the caller's team spans hosts), else 0 */
int fth_team_heap_enter(void) __attribute__((weak));
void fth_team_heap_leave(void) __attribute__((weak));

static int try_lock(void) {
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(&fth_heap_lock, &expected, 1,
                                                   memory_order_acquire, memory_order_relaxed);
}

static int heap_enter(void) {
    if (!try_lock()) {
        int locked = 0;
        for (int i = 0; i < SPINS && !locked; i++)
            locked = atomic_load_explicit(&fth_heap_lock, memory_order_relaxed) == 0 &&
                     try_lock();
        if (!locked) {
            while (atomic_exchange_explicit(&fth_heap_lock, 2, memory_order_acquire) != 0)
                __builtin_wasm_memory_atomic_wait32((int *)&fth_heap_lock, 2, WAIT_SLICE_NS);
        }
    }
    return fth_team_heap_enter ? fth_team_heap_enter() : 0;
}

static void heap_leave(int team) {
    if (team)
        fth_team_heap_leave();
    if (atomic_exchange_explicit(&fth_heap_lock, 0, memory_order_release) == 2)
        __builtin_wasm_memory_atomic_notify((int *)&fth_heap_lock, 1);
}

void *__real_malloc(size_t size);
void __real_free(void *ptr);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *ptr, size_t size);
int __real_posix_memalign(void **out, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);

void *__wrap_malloc(size_t size) {
    int team = heap_enter();
    void *result = __real_malloc(size);
    heap_leave(team);
    return result;
}

void __wrap_free(void *ptr) {
    if (!ptr)
        return;
    int team = heap_enter();
    __real_free(ptr);
    heap_leave(team);
}

void *__wrap_calloc(size_t count, size_t size) {
    int team = heap_enter();
    void *result = __real_calloc(count, size);
    heap_leave(team);
    return result;
}

void *__wrap_realloc(void *ptr, size_t size) {
    int team = heap_enter();
    void *result = __real_realloc(ptr, size);
    heap_leave(team);
    return result;
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
    int team = heap_enter();
    int status = __real_posix_memalign(out, align, size);
    heap_leave(team);
    return status;
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
    int team = heap_enter();
    void *result = __real_aligned_alloc(align, size);
    heap_leave(team);
    return result;
}
