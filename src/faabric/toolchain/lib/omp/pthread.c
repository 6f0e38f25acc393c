/*
 * pthread.c: creating, joining and identifying threads, attributes, once and keys.
 *
 * pthread_t is the address of the thread's descriptor (fth.h). Keys are a process-wide table
 * of destructors; each descriptor holds its own values. Cancellation is not provided:
 * pthread_cancel is left undefined so that a program using it fails at load time with its
 * name, and the cancel-state calls only report "enabled, deferred".
 */
#include <errno.h>
#include <pthread.h>

#include "fth.h"

/* pthread_attr_t words used here */
enum { ATTR_STACK = 0, ATTR_DETACHED = 1 };

static struct __pthread *desc(pthread_t thread) {
    return (struct __pthread *)thread;
}

int pthread_create(pthread_t *restrict out, const pthread_attr_t *restrict attr,
                   void *(*start)(void *), void *restrict arg) {
    size_t stack = FTH_DEFAULT_STACK;
    int detached = 0;
    if (attr) {
        if (attr->__u.__i[ATTR_STACK] > 0)
            stack = (size_t)attr->__u.__i[ATTR_STACK];
        detached = attr->__u.__i[ATTR_DETACHED];
    }
    struct __pthread *t = fth_alloc(stack);
    if (!t)
        return EAGAIN;
    t->start = start;
    t->arg = arg;
    atomic_store(&t->state, detached ? FTH_DETACHED : FTH_JOINABLE);
    *out = (pthread_t)t;
    int error = fth_start(t);
    if (error) {
        fth_release(t);
        return error;
    }
    return 0;
}

int pthread_join(pthread_t thread, void **result) {
    struct __pthread *t = desc(thread);
    if (t == fth_self())
        return EDEADLK;
    if (atomic_load(&t->state) == FTH_DETACHED)
        return EINVAL;
    fth_wait(&t->done, 0, FTH_SPIN_SHORT);
    if (result)
        *result = t->result;
    fth_release(t);
    return 0;
}

int pthread_detach(pthread_t thread) {
    struct __pthread *t = desc(thread);
    int expected = FTH_JOINABLE;
    if (atomic_compare_exchange_strong(&t->state, &expected, FTH_DETACHED))
        return 0;
    if (expected == FTH_DETACHED)
        return EINVAL;
    /* it has already exited: nobody will join it */
    fth_wait(&t->done, 0, FTH_SPIN_SHORT);
    fth_release(t);
    return 0;
}

_Noreturn void pthread_exit(void *result) {
    fth_exit_current(result);
}

pthread_t pthread_self(void) {
    return (pthread_t)fth_self();
}

int pthread_equal(pthread_t a, pthread_t b) {
    return a == b;
}

int pthread_setcancelstate(int state, int *old) {
    if (old)
        *old = PTHREAD_CANCEL_ENABLE;
    return state == PTHREAD_CANCEL_ENABLE || state == PTHREAD_CANCEL_DISABLE ? 0 : EINVAL;
}

int pthread_setcanceltype(int type, int *old) {
    if (old)
        *old = PTHREAD_CANCEL_DEFERRED;
    return type == PTHREAD_CANCEL_DEFERRED || type == PTHREAD_CANCEL_ASYNCHRONOUS ? 0 : EINVAL;
}

void pthread_testcancel(void) {}

static int concurrency;

int pthread_getconcurrency(void) {
    return concurrency;
}

int pthread_setconcurrency(int level) {
    if (level < 0)
        return EINVAL;
    concurrency = level;
    return 0;
}

/* -- attributes -------------------------------------------------------------------------- */

int pthread_attr_init(pthread_attr_t *attr) {
    *attr = (pthread_attr_t){0};
    return 0;
}

int pthread_attr_destroy(pthread_attr_t *attr) {
    (void)attr;
    return 0;
}

int pthread_attr_getdetachstate(const pthread_attr_t *attr, int *state) {
    *state = attr->__u.__i[ATTR_DETACHED];
    return 0;
}

int pthread_attr_setdetachstate(pthread_attr_t *attr, int state) {
    if (state != PTHREAD_CREATE_JOINABLE && state != PTHREAD_CREATE_DETACHED)
        return EINVAL;
    attr->__u.__i[ATTR_DETACHED] = state;
    return 0;
}

int pthread_attr_getstacksize(const pthread_attr_t *restrict attr, size_t *restrict size) {
    int set = attr->__u.__i[ATTR_STACK];
    *size = set > 0 ? (size_t)set : FTH_DEFAULT_STACK;
    return 0;
}

int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size) {
    if (size < PTHREAD_STACK_MIN || size > INT_MAX)
        return EINVAL;
    attr->__u.__i[ATTR_STACK] = (int)size;
    return 0;
}

int pthread_attr_getscope(const pthread_attr_t *restrict attr, int *restrict scope) {
    (void)attr;
    *scope = PTHREAD_SCOPE_SYSTEM;
    return 0;
}

int pthread_attr_setscope(pthread_attr_t *attr, int scope) {
    (void)attr;
    return scope == PTHREAD_SCOPE_SYSTEM ? 0 : ENOTSUP;
}

/* -- thread-specific data ---------------------------------------------------------------- */

static atomic_int key_lock;
static unsigned char key_used[FTH_KEYS_MAX];
static void (*key_destructor[FTH_KEYS_MAX])(void *);

int pthread_key_create(pthread_key_t *key, void (*destructor)(void *)) {
    fth_lock(&key_lock);
    for (unsigned i = 0; i < FTH_KEYS_MAX; i++) {
        if (!key_used[i]) {
            key_used[i] = 1;
            key_destructor[i] = destructor;
            fth_unlock(&key_lock);
            *key = i;
            return 0;
        }
    }
    fth_unlock(&key_lock);
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t key) {
    if (key >= FTH_KEYS_MAX)
        return EINVAL;
    fth_lock(&key_lock);
    key_used[key] = 0;
    key_destructor[key] = 0;
    fth_unlock(&key_lock);
    return 0;
}

void *pthread_getspecific(pthread_key_t key) {
    return key < FTH_KEYS_MAX ? fth_self()->specific[key] : NULL;
}

int pthread_setspecific(pthread_key_t key, const void *value) {
    if (key >= FTH_KEYS_MAX)
        return EINVAL;
    fth_self()->specific[key] = (void *)value;
    return 0;
}

void fth_run_key_destructors(struct __pthread *t) {
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
        int again = 0;
        for (unsigned i = 0; i < FTH_KEYS_MAX; i++) {
            void *value = t->specific[i];
            void (*destructor)(void *) = key_destructor[i];
            if (value && destructor && key_used[i]) {
                t->specific[i] = NULL;
                destructor(value);
                again = 1;
            }
        }
        if (!again)
            return;
    }
}
