/* Elastic OpenMP check: argv[1] parallel regions (default 20) without num_threads, each
 * recording its team size and an exact reduction whose value does not depend on it, with
 * argv[2] ms of sleep after each (default 0); then one region with num_threads(3), which is
 * never elastic. Prints "region R threads T sum S" per region, then "fixed threads T sum S". */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERATIONS 200000L

static long long work(int seed, int *threads) {
    long long sum = 0;
#pragma omp parallel reduction(+ : sum)
    {
#pragma omp single
        *threads = omp_get_num_threads();
#pragma omp for schedule(static)
        for (long i = 0; i < ITERATIONS; i++)
            sum += (i * (seed + 1)) % 1009;
    }
    return sum;
}

static long long fixed_work(int *threads) {
    long long sum = 0;
#pragma omp parallel num_threads(3) reduction(+ : sum)
    {
#pragma omp single
        *threads = omp_get_num_threads();
#pragma omp for schedule(dynamic, 64)
        for (long i = 0; i < ITERATIONS; i++)
            sum += i % 7;
    }
    return sum;
}

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    int regions = argc > 1 ? atoi(argv[1]) : 20;
    int ms = argc > 2 ? atoi(argv[2]) : 0;
    int threads = 0;
    for (int r = 0; r < regions; r++) {
        long long sum = work(r, &threads);
        printf("region %d threads %d sum %lld\n", r, threads, sum);
        fflush(stdout);
        if (ms > 0)
            pause_ms(ms);
    }
    long long sum = fixed_work(&threads);
    printf("fixed threads %d sum %lld\n", threads, sum);
    return 0;
}
