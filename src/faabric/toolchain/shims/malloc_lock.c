/*
 * malloc_lock.c: serialises wasi-libc's allocator for thread-capable builds.
 *
 * The Debian wasi-libc is built single-threaded, so its malloc has no lock. When
 * several instances share one linear memory (threads of one granule) they would
 * corrupt the heap. `faabric cc -fopenmp` / `-pthread` links this file and passes
 * `--wrap=` for each allocator entry point, so calls land here first.
 */
#include <stdatomic.h>
#include <stddef.h>

static atomic_flag heap_busy = ATOMIC_FLAG_INIT;

static void heap_enter(void) {
    while (atomic_flag_test_and_set_explicit(&heap_busy, memory_order_acquire)) {
    }
}

static void heap_leave(void) {
    atomic_flag_clear_explicit(&heap_busy, memory_order_release);
}

void *__real_malloc(size_t size);
void __real_free(void *ptr);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *ptr, size_t size);
int __real_posix_memalign(void **out, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);

void *__wrap_malloc(size_t size) {
    heap_enter();
    void *result = __real_malloc(size);
    heap_leave();
    return result;
}

void __wrap_free(void *ptr) {
    heap_enter();
    __real_free(ptr);
    heap_leave();
}

void *__wrap_calloc(size_t count, size_t size) {
    heap_enter();
    void *result = __real_calloc(count, size);
    heap_leave();
    return result;
}

void *__wrap_realloc(void *ptr, size_t size) {
    heap_enter();
    void *result = __real_realloc(ptr, size);
    heap_leave();
    return result;
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
    heap_enter();
    int status = __real_posix_memalign(out, align, size);
    heap_leave();
    return status;
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
    heap_enter();
    void *result = __real_aligned_alloc(align, size);
    heap_leave();
    return result;
}
