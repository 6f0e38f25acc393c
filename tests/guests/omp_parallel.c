/* OpenMP parallel regions: team sizes (OMP_NUM_THREADS, num_threads, omp_set_num_threads,
 * if), thread numbers, master/masked, barriers, nesting queries, threadprivate and copyin.
 * Prints the same lines as a native clang-16 -fopenmp build for any OMP_NUM_THREADS. */
#include <omp.h>
#include <stdio.h>

#define MAX 64

static int counter;
#pragma omp threadprivate(counter)

static void report(const char *what, const int *values, int n) {
    printf("%s:", what);
    for (int i = 0; i < n; i++)
        printf(" %d", values[i]);
    printf("\n");
}

int main(void) {
    int seen[MAX] = {0}, n = 0;
    printf("outside: num=%d thread=%d in_parallel=%d level=%d\n", omp_get_num_threads(),
           omp_get_thread_num(), omp_in_parallel(), omp_get_level());
    int max = omp_get_max_threads();

#pragma omp parallel
    {
        seen[omp_get_thread_num()] = omp_get_thread_num() + 1;
#pragma omp master
        n = omp_get_num_threads();
    }
    printf("default team == max_threads: %d\n", n == max);
    report("threads", seen, n);

#pragma omp parallel num_threads(3)
    {
#pragma omp masked
        n = omp_get_num_threads();
        int level = omp_get_level(), active = omp_get_active_level();
        seen[omp_get_thread_num()] = level * 10 + active + omp_in_parallel() * 100;
    }
    report("num_threads(3) level/active", seen, n);

    omp_set_num_threads(2);
#pragma omp parallel
    {
#pragma omp single
        n = omp_get_num_threads();
    }
    printf("after omp_set_num_threads(2): %d max=%d\n", n, omp_get_max_threads());

    int on = 0;
#pragma omp parallel if (on) num_threads(4)
    {
        n = omp_get_num_threads();
        seen[0] = omp_get_level();
        seen[1] = omp_get_active_level();
    }
    printf("if(0): num=%d level=%d active=%d\n", n, seen[0], seen[1]);

    /* barriers: every thread sees every other thread's first-phase write */
    int phase[MAX] = {0}, ok[MAX] = {0};
#pragma omp parallel num_threads(4)
    {
        int me = omp_get_thread_num(), team = omp_get_num_threads();
        for (int round = 1; round <= 50; round++) {
            phase[me] = round;
#pragma omp barrier
            int good = 1;
            for (int t = 0; t < team; t++)
                good &= phase[t] == round;
            ok[me] += good;
#pragma omp barrier
        }
    }
    report("barrier rounds ok", ok, 4);

    /* nesting: inner regions run with one thread, as with libomp's defaults */
    int inner[MAX] = {0};
#pragma omp parallel num_threads(2)
    {
        int outer = omp_get_thread_num();
#pragma omp parallel num_threads(2)
        {
            inner[outer] = omp_get_level() * 1000 + omp_get_active_level() * 100 +
                           omp_get_num_threads() * 10 + omp_get_ancestor_thread_num(1);
            if (omp_get_team_size(1) != 2 || omp_get_ancestor_thread_num(0) != 0)
                inner[outer] = -1;
        }
    }
    report("nested", inner, 2);

    /* threadprivate and copyin */
    counter = 7;
#pragma omp parallel num_threads(4) copyin(counter)
    {
        counter += omp_get_thread_num();
        seen[omp_get_thread_num()] = counter;
    }
    report("copyin", seen, 4);
    printf("main counter=%d\n", counter);
    return 0;
}
