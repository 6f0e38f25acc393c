/* OpenMP synchronisation: critical (unnamed, named, nested names), atomic (update, capture,
 * read, write; int, long long, float, double), single with copyprivate, locks and nestable
 * locks, flush, reductions inside a region, and a critical section from many threads. */
#include <omp.h>
#include <stdio.h>

#define ROUNDS 2000

static long counter, named_a, named_b;

static void criticals(void) {
#pragma omp parallel num_threads(4)
    {
        for (int i = 0; i < ROUNDS; i++) {
#pragma omp critical
            counter++;
#pragma omp critical(alpha)
            {
                named_a += 2;
#pragma omp critical(beta)
                named_b += 3;
            }
        }
    }
    printf("critical: %ld %ld %ld\n", counter, named_a, named_b);
}

static void atomics(void) {
    int i32 = 0;
    long long i64 = 0;
    float f = 0.0f;
    double d = 0.0;
    int captured_max = -1, last_write = 0;
#pragma omp parallel num_threads(4)
    {
        for (int i = 0; i < ROUNDS; i++) {
            int mine;
#pragma omp atomic capture
            mine = ++i32;
#pragma omp atomic update
            i64 += 3;
#pragma omp atomic
            f += 0.5f;
#pragma omp atomic
            d += 0.25;
            if (mine == ROUNDS * 4)
                captured_max = mine;
        }
#pragma omp atomic write
        last_write = 42;
    }
    int read;
#pragma omp atomic read
    read = last_write;
    printf("atomic: %d %lld %.1f %.2f %d %d\n", i32, i64, f, d, captured_max, read);
}

static void single_copyprivate(void) {
    int results[64] = {0}, team = 1;
#pragma omp parallel num_threads(4)
    {
        int value = -1;
#pragma omp single copyprivate(value)
        value = 1234;
        results[omp_get_thread_num()] = value;
#pragma omp single
        team = omp_get_num_threads();
    }
    int all = 1;
    for (int t = 0; t < team; t++)
        all &= results[t] == 1234;
    printf("copyprivate: team=%d all=%d\n", team, all);
    int singles = 0;
#pragma omp parallel num_threads(4)
    {
        for (int i = 0; i < 100; i++) {
#pragma omp single nowait
            {
#pragma omp atomic
                singles++;
            }
        }
    }
    printf("100 single nowait: %d\n", singles);
}

static void locks(void) {
    omp_lock_t lock;
    omp_nest_lock_t nest;
    omp_init_lock(&lock);
    omp_init_nest_lock(&nest);
    long plain = 0, nested = 0;
    int tested = 0;
#pragma omp parallel num_threads(4)
    {
        for (int i = 0; i < ROUNDS; i++) {
            omp_set_lock(&lock);
            plain++;
            omp_unset_lock(&lock);
            omp_set_nest_lock(&nest);
            omp_set_nest_lock(&nest);
            nested += omp_test_nest_lock(&nest); /* 3: the owner nests a third time */
            omp_unset_nest_lock(&nest);
            omp_unset_nest_lock(&nest);
            omp_unset_nest_lock(&nest);
        }
        while (!omp_test_lock(&lock)) {
        }
        tested++;
        omp_unset_lock(&lock);
    }
    omp_destroy_lock(&lock);
    omp_destroy_nest_lock(&nest);
    printf("locks: %ld %ld %d\n", plain, nested, tested);
}

static void flush_handoff(void) {
    int flag = 0, data = 0, got = -1;
#pragma omp parallel num_threads(2)
    {
        if (omp_get_num_threads() == 2) {
            if (omp_get_thread_num() == 0) {
                data = 99;
#pragma omp flush
#pragma omp atomic write
                flag = 1;
            } else {
                int ready = 0;
                while (!ready) {
#pragma omp atomic read
                    ready = flag;
                }
#pragma omp flush
                got = data;
            }
        } else {
            got = 99;
        }
    }
    printf("flush: %d\n", got);
}

static void inner_reduction(void) {
    double total = 0.0;
    long count = 0;
#pragma omp parallel num_threads(3) reduction(+ : total, count)
    {
#pragma omp for
        for (int i = 0; i < 3000; i++) {
            total += i * 0.5;
            count++;
        }
    }
    printf("region reduction: %.1f %ld\n", total, count);
}

int main(void) {
    criticals();
    atomics();
    single_copyprivate();
    locks();
    flush_handoff();
    inner_reduction();
    return 0;
}
