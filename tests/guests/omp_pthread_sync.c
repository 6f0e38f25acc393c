/* pthread objects used by the threads of an OpenMP team: mutexes (normal and recursive), a
 * spin lock, a read-write lock, pthread_once, a barrier and a condition variable, each
 * protecting plain shared data. Every line is independent of the team size. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>

#define ROUNDS 100

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t recursive;
static pthread_spinlock_t spin;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_barrier_t barrier;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long under_mutex, under_recursive, under_spin, under_rw, inits, after_barrier;
static int turn; /* the thread whose turn it is, handed on with the condition variable */
static long order_sum;

static void init_once(void) {
    inits++;
}

int main(void) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive, &attr);
    pthread_spin_init(&spin, 0);
    int nthreads = 1;
#pragma omp parallel
    {
#pragma omp single
        {
            nthreads = omp_get_num_threads();
            pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
        }
        int me = omp_get_thread_num();
        for (int i = 0; i < ROUNDS; i++) {
            pthread_mutex_lock(&mutex);
            under_mutex++;
            pthread_mutex_unlock(&mutex);
            pthread_mutex_lock(&recursive);
            pthread_mutex_lock(&recursive);
            under_recursive += 2;
            pthread_mutex_unlock(&recursive);
            pthread_mutex_unlock(&recursive);
            pthread_spin_lock(&spin);
            under_spin++;
            pthread_spin_unlock(&spin);
            pthread_rwlock_wrlock(&rw);
            under_rw++;
            pthread_rwlock_unlock(&rw);
            pthread_once(&once, init_once);
        }
        pthread_barrier_wait(&barrier);
        pthread_rwlock_rdlock(&rw);
        long seen = under_rw; /* every write is done: all see the total */
        pthread_rwlock_unlock(&rw);
        pthread_mutex_lock(&mutex);
        after_barrier += seen;
        pthread_mutex_unlock(&mutex);
        /* each thread in turn, 0 first, handed on with a condition variable */
        pthread_mutex_lock(&mutex);
        while (turn != me)
            pthread_cond_wait(&cond, &mutex);
        order_sum = order_sum * 3 + me;
        turn++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mutex);
    }
    long n = nthreads;
    long expected_order = 0;
    for (long t = 0; t < n; t++)
        expected_order = expected_order * 3 + t;
    printf("mutex %d recursive %d spin %d rw %d once %ld\n", under_mutex == ROUNDS * n,
           under_recursive == 2 * ROUNDS * n, under_spin == ROUNDS * n, under_rw == ROUNDS * n,
           inits);
    printf("after barrier %d turns %d\n", after_barrier == n * ROUNDS * n,
           order_sum == expected_order);
    return 0;
}
