/*
 * thread.c: starting and ending threads (the core under pthreads and the OpenMP pool).
 *
 * One malloc'd block holds a thread's descriptor, its TLS block and its stack. The host
 * starts the thread in a new instance, with __stack_pointer at the top of that stack, by
 * calling `fth_entry` through the function table; fth_entry first sets up TLS
 * (__wasm_init_tls), since a new instance's __tls_base is 0. A thread that exits before its
 * entry function returns (pthread_exit) asks the host to end it. The block of a joinable
 * thread is freed by its joiner; a detached thread puts itself in a graveyard that the next
 * pthread_create empties. A block can also be adopted: run by the host on another host's copy
 * of the memory (fth_adopt), in a team spanning hosts. Must not know about OpenMP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fteam.h"

extern void __wasm_init_tls(void *);

static _Thread_local struct __pthread *current;
static struct __pthread main_thread;
static atomic_int live_user_threads;
static _Atomic(struct __pthread *) graveyard;

struct __pthread *fth_self(void) {
    struct __pthread *self = current;
    return self ? self : &main_thread;
}

int fth_is_main(const struct __pthread *t) {
    return t == &main_thread;
}

int fth_live_user_threads(void) {
    return atomic_load(&live_user_threads);
}

static size_t round_up(size_t value, size_t align) {
    return (value + align - 1) & ~(align - 1);
}

static void empty_graveyard(void) {
    struct __pthread *dead = atomic_exchange(&graveyard, NULL);
    while (dead) {
        struct __pthread *next = dead->next_dead;
        free(dead);
        dead = next;
    }
}

struct __pthread *fth_alloc(size_t stack_size) {
    if (fth_self()->adopted)
        fth_fatal("a thread running on another host cannot start threads");
    size_t tls_align = __builtin_wasm_tls_align();
    size_t align = tls_align > 16 ? tls_align : 16;
    size_t tls_at = round_up(sizeof(struct __pthread), align);
    size_t stack_at = round_up(tls_at + __builtin_wasm_tls_size(), 16);
    size_t total = round_up(stack_at + stack_size, align);
    empty_graveyard();
    char *block = aligned_alloc(align, total);
    if (!block)
        return NULL;
    struct __pthread *t = (struct __pthread *)block;
    memset(t, 0, sizeof *t);
    t->tls = block + tls_at;
    t->result = block + total; /* the stack top, until the thread starts */
    return t;
}

static void finish(struct __pthread *t, void *result) {
    fth_run_key_destructors(t);
    t->result = result;
    if (!t->internal) {
        atomic_fetch_sub(&live_user_threads, 1);
        fth_wake_all(&live_user_threads);
    }
    int expected = FTH_JOINABLE;
    if (atomic_compare_exchange_strong(&t->state, &expected, FTH_EXITED)) {
        atomic_store(&t->done, 1);
        fth_wake_all(&t->done);
        return; /* the joiner frees the block: touch nothing of it from here on */
    }
    /* detached: the next pthread_create frees the block */
    struct __pthread *head = atomic_load(&graveyard);
    do {
        t->next_dead = head;
    } while (!atomic_compare_exchange_weak(&graveyard, &head, t));
}

static void fth_entry(int32_t arg) {
    struct __pthread *t = (struct __pthread *)(uintptr_t)arg;
    __wasm_init_tls(t->tls);
    current = t;
    finish(t, t->start(t->arg));
}

int32_t fth_stack_top(const struct __pthread *t) {
    return (int32_t)((uintptr_t)t->result & ~(uintptr_t)15);
}

int fth_start(struct __pthread *t) {
    int32_t stack_top = fth_stack_top(t);
    t->result = NULL;
    if (!t->internal)
        atomic_fetch_add(&live_user_threads, 1);
    int32_t number = faabric_threads_spawn((int32_t)(uintptr_t)&fth_entry,
                                           (int32_t)(uintptr_t)t, stack_top);
    if (number < 0) {
        if (!t->internal)
            atomic_fetch_sub(&live_user_threads, 1);
        return EAGAIN; /* the host's only refusal; its numbers are Linux's, not WASI's */
    }
    t->number = number;
    return 0;
}

static void set_tls_base(void *base) {
    __asm__ volatile(".globaltype __tls_base, i32\n\tlocal.get %0\n\tglobal.set __tls_base"
                     :
                     : "r"(base)
                     : "memory");
}

struct __pthread *fth_alloc_adoptable(size_t stack_size) {
    struct __pthread *t = fth_alloc(stack_size);
    if (!t)
        return NULL;
    t->internal = 1;
    t->adopted = 1;
    void *own = __builtin_wasm_tls_base();
    __wasm_init_tls(t->tls); /* switches this thread's TLS to t's block: switch back */
    set_tls_base(own);
    return t;
}

/* not inlined: the address of `current` must be taken after the switch of TLS block */
__attribute__((noinline)) static void set_current(struct __pthread *t) {
    current = t;
}

void fth_adopt(struct __pthread *t) {
    set_tls_base(t->tls);
    set_current(t);
}

void fth_exclude_state(struct fteam_excludes *set) {
    fteam_exclude(set, &live_user_threads, sizeof live_user_threads);
    fteam_exclude(set, &graveyard, sizeof graveyard);
}

void fth_release(struct __pthread *t) {
    if (t != &main_thread)
        free(t);
}

_Noreturn void fth_exit_current(void *result) {
    struct __pthread *self = fth_self();
    if (fth_is_main(self)) {
        /* the process lives on until its other threads are done, then exits with 0 */
        fth_run_key_destructors(self);
        int live;
        while ((live = atomic_load(&live_user_threads)) != 0)
            fth_wait(&live_user_threads, live, FTH_SPIN_SHORT);
        exit(0);
    }
    finish(self, result);
    faabric_threads_exit();
    __builtin_unreachable();
}
