/* Atomics on shared data from every thread of a team: omp atomic (read, write, update,
 * capture, compare), C11 <stdatomic.h>, __atomic and __sync builtins, in 8 to 64 bits and in
 * floating point, plus a reduction mixed with atomics. Every line is independent of the team
 * size and of scheduling, so it equals the native program's output. */
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 600

static long counter;
static int64_t wide;
static int8_t small8;
static int16_t small16;
static double fsum;
static float fsum32;
static atomic_int c11;
static atomic_llong c11_wide;
static unsigned bits;
static int maxval = -1;
static int tickets[N];
static int claims;

int main(void) {
    int seen_distinct = 1;
    long reduced = 0;
#pragma omp parallel reduction(+ : reduced)
    {
#pragma omp for
        for (int i = 0; i < N; i++) {
#pragma omp atomic
            counter++;
#pragma omp atomic update
            wide += (int64_t)i << 20;
#pragma omp atomic
            small8 += 1;
#pragma omp atomic
            small16 += 3;
#pragma omp atomic
            fsum += 0.5;
#pragma omp atomic
            fsum32 += 0.25f;
            atomic_fetch_add(&c11, 2);
            atomic_fetch_sub_explicit(&c11_wide, 5, memory_order_relaxed);
            __atomic_fetch_or(&bits, 1u << (i % 32), __ATOMIC_SEQ_CST);
            int ticket;
#pragma omp atomic capture
            ticket = claims++;
            tickets[ticket] = 1;
            int old = __atomic_load_n(&maxval, __ATOMIC_ACQUIRE);
            while (i > old && !__atomic_compare_exchange_n(&maxval, &old, i, 0,
                                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                ;
            reduced += i;
            __sync_fetch_and_add(&counter, 1);
        }
    }
    for (int i = 0; i < N; i++)
        seen_distinct &= tickets[i];
    int last = 0;
#pragma omp parallel
    {
        int me = omp_get_thread_num();
#pragma omp atomic write
        last = 7;
        int got;
#pragma omp atomic read
        got = last;
        if (got != 7)
            printf("thread %d read %d\n", me, got);
    }
    int best = 0;
#pragma omp parallel for
    for (int i = 0; i < 100; i++) {
        int v = (i * 37) % 101;
#if _OPENMP >= 202011
#pragma omp atomic compare
        best = best < v ? v : best;
#else
        int cur = __atomic_load_n(&best, __ATOMIC_RELAXED);
        while (cur < v && !__atomic_compare_exchange_n(&best, &cur, v, 1, __ATOMIC_RELAXED,
                                                       __ATOMIC_RELAXED))
            ;
#endif
    }
    printf("counter %ld wide %lld small8 %d small16 %d\n", counter, (long long)wide,
           small8, small16);
    printf("fsum %.2f fsum32 %.2f\n", fsum, (double)fsum32);
    printf("c11 %d c11_wide %lld bits %x max %d\n", atomic_load(&c11),
           (long long)atomic_load(&c11_wide), bits, maxval);
    printf("claims %d distinct %d reduced %ld last %d best %d\n", claims, seen_distinct,
           reduced, last, best);
    return 0;
}
