/* OpenMP worksharing: static (plain and chunked), dynamic, guided, runtime and ordered
 * loops, nowait, collapse, 64-bit and unsigned and downward loops, sections, an orphaned
 * loop, and reductions of every operator. Output is independent of how iterations are
 * spread, except where OpenMP fixes it (static with a chunk, ordered). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 1000

static int hits[N];

static void clear(void) {
    for (int i = 0; i < N; i++)
        hits[i] = 0;
}

static void check(const char *what) {
    int once = 1;
    long sum = 0;
    for (int i = 0; i < N; i++) {
        once &= hits[i] == 1;
        sum += hits[i] * i;
    }
    printf("%s: each once=%d weighted=%ld\n", what, once, sum);
}

static void orphaned(void) {
#pragma omp for schedule(dynamic, 7)
    for (int i = 0; i < N; i++)
        hits[i]++;
}

static void schedules(void) {
    clear();
#pragma omp parallel for
    for (int i = 0; i < N; i++)
        hits[i]++;
    check("static");
    int owner[16];
#pragma omp parallel for schedule(static, 2) num_threads(3)
    for (int i = 0; i < 16; i++)
        owner[i] = omp_get_thread_num();
    printf("static,2 owners:");
    for (int i = 0; i < 16; i++)
        printf(" %d", owner[i]);
    printf("\n");
    clear();
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < N; i++)
        hits[i]++;
    check("dynamic");
    clear();
#pragma omp parallel for schedule(dynamic, 13)
    for (int i = 0; i < N; i++)
        __atomic_fetch_add(&hits[i], 1, __ATOMIC_RELAXED);
    check("dynamic,13");
    clear();
#pragma omp parallel for schedule(guided, 5)
    for (int i = 0; i < N; i++)
        hits[i]++;
    check("guided,5");
    omp_set_schedule(omp_sched_dynamic, 3);
    clear();
#pragma omp parallel for schedule(runtime)
    for (int i = 0; i < N; i++)
        hits[i]++;
    check("runtime(dynamic,3)");
    clear();
#pragma omp parallel
    orphaned();
    check("orphaned in parallel");
    clear();
    orphaned();
    check("orphaned alone");
}

static void ordered_and_nowait(void) {
    int order[N], next = 0;
#pragma omp parallel for ordered schedule(dynamic, 3)
    for (int i = 0; i < 100; i++) {
        int value = i * i;
#pragma omp ordered
        order[next++] = value;
    }
    long sum = 0;
    int sorted = 1;
    for (int i = 0; i < 100; i++) {
        sum += order[i];
        sorted &= order[i] == i * i;
    }
    printf("ordered: in order=%d sum=%ld\n", sorted, sum);
    clear();
#pragma omp parallel
    {
        for (int round = 0; round < 20; round++) {
#pragma omp for schedule(dynamic, 11) nowait
            for (int i = 0; i < N; i++)
                __atomic_fetch_add(&hits[i], 1, __ATOMIC_RELAXED);
        }
    }
    int all = 1;
    for (int i = 0; i < N; i++)
        all &= hits[i] == 20;
    printf("20 nowait loops: all 20=%d\n", all);
}

static void shapes(void) {
    long long total = 0;
#pragma omp parallel for collapse(2) reduction(+ : total) schedule(dynamic, 4)
    for (int i = 0; i < 30; i++)
        for (int j = 0; j < 40; j++)
            total += i * 100 + j;
    printf("collapse(2): %lld\n", total);
    long long big = 0;
#pragma omp parallel for reduction(+ : big) schedule(guided)
    for (long long i = 5000000000LL; i > 4999000000LL; i -= 7)
        big += i % 1000;
    printf("int64 downward: %lld\n", big);
    unsigned long long ub = 0;
#pragma omp parallel for reduction(+ : ub) schedule(static, 5)
    for (unsigned i = 4000000000u; i < 4000001000u; i += 3)
        ub += i - 4000000000u;
    printf("unsigned: %llu\n", ub);
    long down = 0;
#pragma omp parallel for reduction(+ : down)
    for (int i = 100; i >= -100; i -= 2)
        down += i * i;
    printf("int downward: %ld\n", down);
}

static void sections(void) {
    int done[4] = {0};
#pragma omp parallel sections
    {
#pragma omp section
        done[0] = 1;
#pragma omp section
        done[1] = 2;
#pragma omp section
        done[2] = 3;
#pragma omp section
        done[3] = 4;
    }
    printf("sections: %d %d %d %d\n", done[0], done[1], done[2], done[3]);
}

static void reductions(void) {
    long sum = 0, prod = 1;
    int mx = -1000, mn = 1000, land = 1, lor = 0, bxor = 0, band = ~0, bor = 0;
    double dsum = 0.0;
#pragma omp parallel for reduction(+ : sum, dsum) reduction(* : prod) reduction(max : mx) \
    reduction(min : mn) reduction(&& : land) reduction(|| : lor) reduction(^ : bxor) \
    reduction(& : band) reduction(| : bor)
    for (int i = 1; i <= 20; i++) {
        sum += i;
        dsum += 1.0 / i;
        prod *= (i % 3) + 1;
        mx = i * 7 % 23 > mx ? i * 7 % 23 : mx;
        mn = i * 5 % 17 < mn ? i * 5 % 17 : mn;
        land = land && i > 0;
        lor = lor || i == 13;
        bxor ^= i;
        band &= i | 0x40;
        bor |= i;
    }
    printf("reductions: %ld %.12f %ld %d %d %d %d %d %d %d\n", sum, dsum, prod, mx, mn, land,
           lor, bxor, band, bor);
}

int main(void) {
    schedules();
    ordered_and_nowait();
    shapes();
    sections();
    reductions();
    return 0;
}
