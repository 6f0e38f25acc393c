/* pthread synchronisation: normal/recursive/errorcheck mutexes, trylock, a bounded queue
 * with condition variables, cond_timedwait timing out, barriers, read-write locks and spin
 * locks. Usage: pthread_sync [N] with N threads (default 4). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX 16
#define ITEMS 2000
#define SLOTS 8

static int n_threads;
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    int items[SLOTS];
    int head, count, closed;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_barrier_t barrier;
static int serial_count, phase_errors;
static int phase[MAX];
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static long shared_table[4];
static pthread_spinlock_t spin;
static long spun;

static void *count_up(void *arg) {
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&counter_lock);
        counter++;
        pthread_mutex_unlock(&counter_lock);
        pthread_spin_lock(&spin);
        spun += 2;
        pthread_spin_unlock(&spin);
    }
    return NULL;
}

static void *consume(void *arg) {
    long sum = 0;
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0 && !queue.closed)
            pthread_cond_wait(&queue.not_empty, &queue.lock);
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.lock);
            return (void *)sum;
        }
        sum += queue.items[queue.head];
        queue.head = (queue.head + 1) % SLOTS;
        queue.count--;
        pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.lock);
    }
}

static void *in_phases(void *arg) {
    long me = (long)arg;
    for (int round = 1; round <= 20; round++) {
        phase[me] = round;
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_fetch_add(&serial_count, 1, __ATOMIC_RELAXED);
        for (int t = 0; t < n_threads; t++)
            if (phase[t] != round)
                __atomic_fetch_add(&phase_errors, 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static void *read_write(void *arg) {
    long me = (long)arg, bad = 0;
    for (int i = 0; i < 2000; i++) {
        if (i % 10 == (int)me % 10) {
            pthread_rwlock_wrlock(&rwlock);
            for (int k = 0; k < 4; k++)
                shared_table[k]++;
            pthread_rwlock_unlock(&rwlock);
        } else {
            pthread_rwlock_rdlock(&rwlock);
            for (int k = 1; k < 4; k++)
                bad += shared_table[k] != shared_table[0];
            pthread_rwlock_unlock(&rwlock);
        }
    }
    return (void *)bad;
}

static void run_all(void *(*fn)(void *), void **results) {
    pthread_t threads[MAX];
    for (long i = 0; i < n_threads; i++)
        pthread_create(&threads[i], NULL, fn, (void *)i);
    for (int i = 0; i < n_threads; i++)
        pthread_join(threads[i], results ? &results[i] : NULL);
}

static void mutex_kinds(void) {
    pthread_mutexattr_t attr;
    pthread_mutex_t recursive, checked;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive, &attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&checked, &attr);
    pthread_mutexattr_destroy(&attr);
    int r1 = pthread_mutex_lock(&recursive), r2 = pthread_mutex_lock(&recursive);
    int r3 = pthread_mutex_unlock(&recursive), r4 = pthread_mutex_unlock(&recursive);
    int e1 = pthread_mutex_lock(&checked), e2 = pthread_mutex_lock(&checked) == EDEADLK;
    int e3 = pthread_mutex_unlock(&checked), e4 = pthread_mutex_unlock(&checked) == EPERM;
    int t1 = pthread_mutex_trylock(&counter_lock), t2 = pthread_mutex_trylock(&counter_lock);
    pthread_mutex_unlock(&counter_lock);
    printf("mutex kinds: %d%d%d%d %d%d%d%d %d %d\n", r1, r2, r3, r4, e1, e2, e3, e4, t1,
           t2 == EBUSY);
}

static void timed_wait(void) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_nsec += 50 * 1000 * 1000;
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m);
    int status = pthread_cond_timedwait(&c, &m, &at);
    pthread_mutex_unlock(&m);
    printf("timedwait: %s\n", status == ETIMEDOUT ? "ETIMEDOUT" : "woken");
}

int main(int argc, char **argv) {
    n_threads = argc > 1 ? atoi(argv[1]) : 4;
    if (n_threads < 1 || n_threads > MAX)
        return 2;
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    run_all(count_up, NULL);
    printf("mutex counter: %ld spin: %ld\n", counter, spun);
    mutex_kinds();

    void *sums[MAX];
    pthread_t consumers[MAX];
    for (int i = 0; i < n_threads; i++)
        pthread_create(&consumers[i], NULL, consume, NULL);
    for (int item = 1; item <= ITEMS; item++) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == SLOTS)
            pthread_cond_wait(&queue.not_full, &queue.lock);
        queue.items[(queue.head + queue.count) % SLOTS] = item;
        queue.count++;
        pthread_cond_signal(&queue.not_empty);
        pthread_mutex_unlock(&queue.lock);
    }
    pthread_mutex_lock(&queue.lock);
    queue.closed = 1;
    pthread_cond_broadcast(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
    long total = 0;
    for (int i = 0; i < n_threads; i++) {
        pthread_join(consumers[i], &sums[i]);
        total += (long)sums[i];
    }
    printf("queue total: %ld\n", total);
    timed_wait();

    pthread_barrier_init(&barrier, NULL, (unsigned)n_threads);
    run_all(in_phases, NULL);
    pthread_barrier_destroy(&barrier);
    printf("barrier: serial=%d errors=%d\n", serial_count, phase_errors);

    void *bad[MAX];
    run_all(read_write, bad);
    long inconsistent = 0;
    for (int i = 0; i < n_threads; i++)
        inconsistent += (long)bad[i];
    printf("rwlock: writes=%ld inconsistent=%ld\n", shared_table[0], inconsistent);
    return 0;
}
