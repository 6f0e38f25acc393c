/*
 * fth.h: the thread core shared by faabric's pthreads and OpenMP runtime (internal).
 *
 * A thread is an instance of the module on the granule's shared memory, started by the host
 * (`faabric_threads.spawn`) on a stack and TLS block the guest allocated. Waiting uses wasm
 * atomics with a finite timeout per wait, so that the host can always stop a thread between
 * two waits. Nothing here may call the host except through the imports declared below.
 */
#ifndef FAABRIC_FTH_H
#define FAABRIC_FTH_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifndef PTHREAD_KEYS_MAX /* limits.h has them only under _REENTRANT (-pthread) */
#define PTHREAD_KEYS_MAX 128
#define PTHREAD_STACK_MIN 2048
#define PTHREAD_DESTRUCTOR_ITERATIONS 4
#endif

#define FTH_KEYS_MAX PTHREAD_KEYS_MAX
#define FTH_DEFAULT_STACK (1 << 20)     /* bytes of stack for a new thread */
#define FTH_WAIT_SLICE_NS 100000000LL   /* longest single wait: 100 ms */
#define FTH_SPIN_SHORT 200              /* polls before sleeping: locks */
#define FTH_SPIN_LONG 100000            /* polls before sleeping: fork/join, barriers */

__attribute__((import_module("faabric_threads"), import_name("spawn")))
int32_t faabric_threads_spawn(int32_t entry, int32_t arg, int32_t stack_top);
__attribute__((import_module("faabric_threads"), import_name("exit")))
void faabric_threads_exit(void);
__attribute__((import_module("faabric_threads"), import_name("default_team_size")))
int32_t faabric_threads_default_team_size(void);

/* The descriptor of a thread; pthread_t points at one (C) or holds its address (C++). */
struct __pthread {
    int number;                    /* the host's thread number; 0 for the main thread */
    int internal;                  /* an OpenMP worker: not a user thread */
    int adopted;                   /* runs on another host's copy of memory (fth_adopt) */
    void *(*start)(void *);
    void *arg;
    void *result;
    atomic_int state;              /* FTH_JOINABLE, FTH_DETACHED or FTH_EXITED */
    atomic_int done;               /* 0 while running, 1 once exited (a wait word) */
    void *tls;                     /* this thread's TLS block */
    struct __pthread *next_dead;   /* graveyard link for detached threads */
    void *specific[FTH_KEYS_MAX];  /* pthread_setspecific values */
};

enum { FTH_JOINABLE = 0, FTH_DETACHED = 1, FTH_EXITED = 2 };

/* the calling thread's descriptor (the main thread's is static) */
struct __pthread *fth_self(void);
int fth_is_main(const struct __pthread *t);

/* Start `t->start(t->arg)` on a new thread with `stack_size` bytes of stack. `t` must have
 * come from fth_alloc. Returns 0 or an errno value. */
struct __pthread *fth_alloc(size_t stack_size);
int fth_start(struct __pthread *t);
void fth_release(struct __pthread *t);  /* free a thread that has exited */
int32_t fth_stack_top(const struct __pthread *t); /* of a block that has not started */

/* A thread the host starts on another host's copy of the memory (a team spanning hosts):
 * its block comes from fth_alloc_adoptable, which sets up its TLS once, where it is
 * allocated, so that TLS values (threadprivate variables) persist from one start to the
 * next; the thread calls fth_adopt first. It touches no shared state of thread.c and cannot
 * start threads. */
struct __pthread *fth_alloc_adoptable(size_t stack_size);
void fth_adopt(struct __pthread *t);
_Noreturn void fth_exit_current(void *result);
void fth_run_key_destructors(struct __pthread *t);
int fth_live_user_threads(void);

/* waiting: each returns once *addr != expected (or on a timeout/spurious wake-up for the
 * timed one); `spins` polls happen before the thread sleeps */
void fth_wait(atomic_int *addr, int expected, int spins);
int fth_wait_timed(atomic_int *addr, int expected, int64_t timeout_ns);  /* 0 or ETIMEDOUT */
void fth_wake(atomic_int *addr, int count);
void fth_wake_all(atomic_int *addr);

/* a small futex lock (0 free, 1 held, 2 held with waiters) */
void fth_lock(atomic_int *word);
int fth_trylock(atomic_int *word);
void fth_unlock(atomic_int *word);

/* print "faabric: <message>" on stderr and trap */
_Noreturn void fth_fatal(const char *message);

int64_t fth_now_ns(clockid_t clock);

#endif
