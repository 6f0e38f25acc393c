/* A loop of argv[1] parallel regions (no num_threads clause, so an elastic app's team may
 * grow between them), each summing argv[2] terms. Prints "seconds <wall time of the loop>"
 * and a checksum that does not depend on the team sizes. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int regions = argc > 1 ? atoi(argv[1]) : 100;
    long terms = argc > 2 ? atol(argv[2]) : 20000000L;
    long long checksum = 0;
    int widest = 0;
    double start = now();
    for (int r = 0; r < regions; r++) {
        long long sum = 0;
        int threads = 0;
#pragma omp parallel reduction(+ : sum)
        {
#pragma omp single
            threads = omp_get_num_threads();
#pragma omp for schedule(static)
            for (long i = 0; i < terms; i++)
                sum += (i * 7 + r) % 13;
        }
        checksum += sum;
        widest = threads > widest ? threads : widest;
    }
    printf("seconds %.6f\n", now() - start);
    printf("checksum %lld widest %d\n", checksum, widest);
    return 0;
}
