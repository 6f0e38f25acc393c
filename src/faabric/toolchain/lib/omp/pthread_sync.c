/*
 * pthread_sync.c: mutexes, condition variables, barriers, read-write locks, spin locks and
 * pthread_once.
 *
 * Each object lives in wasi-libc's opaque pthread_*_t storage; the words used are named
 * below. All of them are process-private (one granule's threads). They wait and lock with a
 * family of word functions of this file's own (fth_words.h), whose atomic instructions
 * `faabric cc` routes like the program's: while an OpenMP team spans hosts, every operation
 * on these words is done at the main host, so the objects work across hosts (each wait is
 * held there until the word changes). Must not allocate.
 */
#include <errno.h>
#include <pthread.h>

#include "fth.h"

#define WORDS(name) pthread_words_##name
#define WORDS_LINKAGE static
#include "fth_words.h"

/* pthread_mutex_t words */
enum { M_WORD = 0, M_TYPE = 1, M_OWNER = 2, M_COUNT = 3 };
/* pthread_cond_t words */
enum { C_SEQ = 0, C_CLOCK = 1 };
/* pthread_barrier_t words */
enum { B_LIMIT = 0, B_ARRIVED = 1, B_GENERATION = 2 };
/* pthread_rwlock_t word: readers holding it, or -1 for a writer */
enum { RW_STATE = 0 };

#define WORD(object, index) ((atomic_int *)&(object)->__u.__i[index])

static int self_id(void) {
    return (int)(uintptr_t)fth_self();
}

/* -- mutexes -------------------------------------------------------------------------------- */

int pthread_mutexattr_init(pthread_mutexattr_t *attr) {
    attr->__attr = PTHREAD_MUTEX_NORMAL;
    return 0;
}

int pthread_mutexattr_destroy(pthread_mutexattr_t *attr) {
    (void)attr;
    return 0;
}

int pthread_mutexattr_gettype(const pthread_mutexattr_t *restrict attr, int *restrict type) {
    *type = (int)(attr->__attr & 3);
    return 0;
}

int pthread_mutexattr_settype(pthread_mutexattr_t *attr, int type) {
    if (type < PTHREAD_MUTEX_NORMAL || type > PTHREAD_MUTEX_ERRORCHECK)
        return EINVAL;
    attr->__attr = (unsigned)type;
    return 0;
}

int pthread_mutexattr_getpshared(const pthread_mutexattr_t *restrict attr, int *restrict shared) {
    (void)attr;
    *shared = PTHREAD_PROCESS_PRIVATE;
    return 0;
}

int pthread_mutexattr_setpshared(pthread_mutexattr_t *attr, int shared) {
    (void)attr;
    return shared == PTHREAD_PROCESS_PRIVATE ? 0 : ENOTSUP;
}

int pthread_mutex_init(pthread_mutex_t *restrict m, const pthread_mutexattr_t *restrict attr) {
    *m = (pthread_mutex_t){0};
    m->__u.__i[M_TYPE] = attr ? (int)(attr->__attr & 3) : PTHREAD_MUTEX_NORMAL;
    return 0;
}

int pthread_mutex_destroy(pthread_mutex_t *m) {
    return atomic_load(WORD(m, M_WORD)) ? EBUSY : 0;
}

/* 0 if the caller already holds a typed mutex (and the result is in *status), else 1 */
static int check_owner(pthread_mutex_t *m, int *status) {
    int type = m->__u.__i[M_TYPE];
    if (type == PTHREAD_MUTEX_NORMAL || m->__u.__i[M_OWNER] != self_id())
        return 1;
    if (type == PTHREAD_MUTEX_RECURSIVE) {
        m->__u.__i[M_COUNT]++;
        *status = 0;
    } else {
        *status = EDEADLK;
    }
    return 0;
}

static void take(pthread_mutex_t *m) {
    m->__u.__i[M_OWNER] = self_id();
    m->__u.__i[M_COUNT] = 1;
}

int pthread_mutex_lock(pthread_mutex_t *m) {
    int status;
    if (!check_owner(m, &status))
        return status;
    pthread_words_lock(WORD(m, M_WORD));
    take(m);
    return 0;
}

int pthread_mutex_trylock(pthread_mutex_t *m) {
    int status;
    if (!check_owner(m, &status))
        return status == EDEADLK ? EBUSY : status;
    if (!pthread_words_trylock(WORD(m, M_WORD)))
        return EBUSY;
    take(m);
    return 0;
}

int pthread_mutex_timedlock(pthread_mutex_t *restrict m, const struct timespec *restrict at) {
    int status;
    if (!check_owner(m, &status))
        return status;
    int64_t deadline = (int64_t)at->tv_sec * 1000000000LL + at->tv_nsec;
    while (!pthread_words_trylock(WORD(m, M_WORD))) {
        int64_t left = deadline - fth_now_ns(CLOCK_REALTIME);
        if (left <= 0)
            return ETIMEDOUT;
        int seen = atomic_load(WORD(m, M_WORD));
        if (seen)
            pthread_words_wait_timed(WORD(m, M_WORD), seen, left < 1000000 ? left : 1000000);
    }
    take(m);
    return 0;
}

int pthread_mutex_unlock(pthread_mutex_t *m) {
    int type = m->__u.__i[M_TYPE];
    if (type != PTHREAD_MUTEX_NORMAL) {
        if (m->__u.__i[M_OWNER] != self_id())
            return EPERM;
        if (--m->__u.__i[M_COUNT] > 0)
            return 0;
    }
    m->__u.__i[M_OWNER] = 0;
    pthread_words_unlock(WORD(m, M_WORD));
    return 0;
}

/* -- condition variables ---------------------------------------------------------------------- */

int pthread_condattr_init(pthread_condattr_t *attr) {
    attr->__attr = 0;
    return 0;
}

int pthread_condattr_destroy(pthread_condattr_t *attr) {
    (void)attr;
    return 0;
}

int pthread_condattr_getclock(const pthread_condattr_t *restrict attr, clockid_t *restrict clock) {
    *clock = attr->__attr ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    return 0;
}

int pthread_condattr_setclock(pthread_condattr_t *attr, clockid_t clock) {
    if (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME)
        return EINVAL;
    attr->__attr = clock == CLOCK_MONOTONIC;
    return 0;
}

int pthread_cond_init(pthread_cond_t *restrict c, const pthread_condattr_t *restrict attr) {
    *c = (pthread_cond_t){0};
    c->__u.__i[C_CLOCK] = attr ? (int)attr->__attr : 0;
    return 0;
}

int pthread_cond_destroy(pthread_cond_t *c) {
    (void)c;
    return 0;
}

/* unlock `m` completely, returning its recursion count, and relock it afterwards */
static int release_all(pthread_mutex_t *m) {
    int count = m->__u.__i[M_COUNT];
    m->__u.__i[M_COUNT] = 1;
    pthread_mutex_unlock(m);
    return count;
}

static void reacquire(pthread_mutex_t *m, int count) {
    pthread_words_lock(WORD(m, M_WORD));
    take(m);
    m->__u.__i[M_COUNT] = count;
}

int pthread_cond_wait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m) {
    int seq = atomic_load(WORD(c, C_SEQ));
    int count = release_all(m);
    pthread_words_wait(WORD(c, C_SEQ), seq, FTH_SPIN_SHORT);
    reacquire(m, count);
    return 0;
}

int pthread_cond_timedwait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m,
                           const struct timespec *restrict at) {
    if (at->tv_nsec < 0 || at->tv_nsec >= 1000000000L)
        return EINVAL;
    clockid_t clock = c->__u.__i[C_CLOCK] ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    int64_t left = (int64_t)at->tv_sec * 1000000000LL + at->tv_nsec - fth_now_ns(clock);
    int seq = atomic_load(WORD(c, C_SEQ));
    int count = release_all(m);
    int status = left > 0 ? pthread_words_wait_timed(WORD(c, C_SEQ), seq, left) : ETIMEDOUT;
    reacquire(m, count);
    return status;
}

int pthread_cond_signal(pthread_cond_t *c) {
    atomic_fetch_add(WORD(c, C_SEQ), 1);
    pthread_words_wake(WORD(c, C_SEQ), 1);
    return 0;
}

int pthread_cond_broadcast(pthread_cond_t *c) {
    atomic_fetch_add(WORD(c, C_SEQ), 1);
    pthread_words_wake_all(WORD(c, C_SEQ));
    return 0;
}

/* -- barriers -------------------------------------------------------------------------------- */

int pthread_barrierattr_init(pthread_barrierattr_t *attr) {
    attr->__attr = 0;
    return 0;
}

int pthread_barrierattr_destroy(pthread_barrierattr_t *attr) {
    (void)attr;
    return 0;
}

int pthread_barrier_init(pthread_barrier_t *restrict b, const pthread_barrierattr_t *restrict attr,
                         unsigned count) {
    (void)attr;
    if (count == 0 || count > INT_MAX)
        return EINVAL;
    *b = (pthread_barrier_t){0};
    b->__u.__i[B_LIMIT] = (int)count;
    return 0;
}

int pthread_barrier_destroy(pthread_barrier_t *b) {
    (void)b;
    return 0;
}

int pthread_barrier_wait(pthread_barrier_t *b) {
    int generation = atomic_load(WORD(b, B_GENERATION));
    if (atomic_fetch_add(WORD(b, B_ARRIVED), 1) + 1 == b->__u.__i[B_LIMIT]) {
        atomic_store(WORD(b, B_ARRIVED), 0);
        atomic_fetch_add(WORD(b, B_GENERATION), 1);
        pthread_words_wake_all(WORD(b, B_GENERATION));
        return PTHREAD_BARRIER_SERIAL_THREAD;
    }
    pthread_words_wait(WORD(b, B_GENERATION), generation, FTH_SPIN_LONG);
    return 0;
}

/* -- read-write locks ------------------------------------------------------------------------ */

int pthread_rwlockattr_init(pthread_rwlockattr_t *attr) {
    *attr = (pthread_rwlockattr_t){0};
    return 0;
}

int pthread_rwlockattr_destroy(pthread_rwlockattr_t *attr) {
    (void)attr;
    return 0;
}

int pthread_rwlock_init(pthread_rwlock_t *restrict rw, const pthread_rwlockattr_t *restrict attr) {
    (void)attr;
    *rw = (pthread_rwlock_t){0};
    return 0;
}

int pthread_rwlock_destroy(pthread_rwlock_t *rw) {
    return atomic_load(WORD(rw, RW_STATE)) ? EBUSY : 0;
}

int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw) {
    int state = atomic_load(WORD(rw, RW_STATE));
    while (state >= 0) {
        if (atomic_compare_exchange_weak(WORD(rw, RW_STATE), &state, state + 1))
            return 0;
    }
    return EBUSY;
}

int pthread_rwlock_trywrlock(pthread_rwlock_t *rw) {
    int expected = 0;
    return atomic_compare_exchange_strong(WORD(rw, RW_STATE), &expected, -1) ? 0 : EBUSY;
}

int pthread_rwlock_rdlock(pthread_rwlock_t *rw) {
    while (pthread_rwlock_tryrdlock(rw) != 0)
        pthread_words_wait(WORD(rw, RW_STATE), -1, FTH_SPIN_SHORT);
    return 0;
}

int pthread_rwlock_wrlock(pthread_rwlock_t *rw) {
    int state;
    while (pthread_rwlock_trywrlock(rw) != 0) {
        if ((state = atomic_load(WORD(rw, RW_STATE))) != 0)
            pthread_words_wait(WORD(rw, RW_STATE), state, FTH_SPIN_SHORT);
    }
    return 0;
}

int pthread_rwlock_unlock(pthread_rwlock_t *rw) {
    int state = atomic_load(WORD(rw, RW_STATE));
    if (state == -1) {
        atomic_store(WORD(rw, RW_STATE), 0);
        pthread_words_wake_all(WORD(rw, RW_STATE));
        return 0;
    }
    if (state <= 0)
        return EPERM;
    if (atomic_fetch_sub(WORD(rw, RW_STATE), 1) == 1)
        pthread_words_wake_all(WORD(rw, RW_STATE));
    return 0;
}

/* -- spin locks ------------------------------------------------------------------------------ */

int pthread_spin_init(pthread_spinlock_t *lock, int shared) {
    (void)shared;
    *lock = 0;
    return 0;
}

int pthread_spin_destroy(pthread_spinlock_t *lock) {
    (void)lock;
    return 0;
}

int pthread_spin_trylock(pthread_spinlock_t *lock) {
    int expected = 0;
    return atomic_compare_exchange_strong((atomic_int *)lock, &expected, 1) ? 0 : EBUSY;
}

int pthread_spin_lock(pthread_spinlock_t *lock) {
    while (pthread_spin_trylock(lock) != 0) {
    }
    return 0;
}

int pthread_spin_unlock(pthread_spinlock_t *lock) {
    atomic_store((atomic_int *)lock, 0);
    return 0;
}

/* -- once ------------------------------------------------------------------------------------ */

int pthread_once(pthread_once_t *once, void (*init)(void)) {
    atomic_int *word = (atomic_int *)once;
    int expected = 0;
    if (atomic_compare_exchange_strong(word, &expected, 1)) {
        init();
        atomic_store(word, 2);
        pthread_words_wake_all(word);
        return 0;
    }
    while ((expected = atomic_load(word)) != 2)
        pthread_words_wait(word, expected, FTH_SPIN_SHORT);
    return 0;
}
