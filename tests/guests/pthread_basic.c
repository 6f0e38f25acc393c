/* pthreads: create/join with results, detach, self/equal, pthread_exit, once, keys with
 * destructors, _Thread_local, attributes (stack size, detached). Usage: pthread_basic [N]
 * with N threads (default 4). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX 16

static _Thread_local int tls_value = 5;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static pthread_key_t key;
static int destroyed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int detached_done;

static void init_once(void) {
    once_runs++;
}

static void destroy(void *value) {
    pthread_mutex_lock(&lock);
    destroyed += *(int *)value;
    pthread_mutex_unlock(&lock);
    free(value);
}

static void *worker(void *arg) {
    long index = (long)arg;
    pthread_once(&once, init_once);
    tls_value += (int)index; /* every thread starts from its own copy of 5 */
    int *mine = malloc(sizeof *mine);
    *mine = (int)index + 1;
    pthread_setspecific(key, mine);
    long result = index * 100 + tls_value;
    if (index % 2)
        pthread_exit((void *)result);
    return (void *)result;
}

static void *detached(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    detached_done++;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *self_check(void *arg) {
    pthread_t *expected = arg;
    return (void *)(long)(pthread_equal(pthread_self(), *expected) &&
                          !pthread_equal(pthread_self(), expected[1]));
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    if (n < 1 || n > MAX)
        return 2;
    pthread_key_create(&key, destroy);
    pthread_t threads[MAX];
    for (long i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)i) != 0)
            return 3;
    for (int i = 0; i < n; i++) {
        void *result;
        pthread_join(threads[i], &result);
        printf("thread %d returned %ld\n", i, (long)result);
    }
    printf("once ran %d time(s); destructors saw %d; main tls %d\n", once_runs, destroyed,
           tls_value);

    pthread_t pair[2];
    pair[1] = pthread_self();
    pthread_create(&pair[0], NULL, self_check, pair);
    void *same;
    pthread_join(pair[0], &same);
    printf("self/equal: %ld\n", (long)same);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    size_t stack;
    int state;
    pthread_attr_getstacksize(&attr, &stack);
    pthread_attr_getdetachstate(&attr, &state);
    printf("attr: stack=%zu detached=%d\n", stack, state == PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, &attr, detached, NULL);
    }
    pthread_attr_destroy(&attr);
    pthread_t late;
    pthread_create(&late, NULL, detached, NULL);
    pthread_detach(late);
    for (;;) {
        pthread_mutex_lock(&lock);
        int done = detached_done;
        pthread_mutex_unlock(&lock);
        if (done == n + 1)
            break;
        sched_yield();
    }
    printf("detached threads done: %d\n", n + 1);
    return 0;
}
