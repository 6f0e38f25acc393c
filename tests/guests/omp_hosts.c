/* A team meant to span hosts: large shared arrays written by every thread, an array
 * reduction, a critical section guarding a heap structure, barriers between phases that read
 * the other threads' writes, memory allocated before the region, and malloc/free inside it:
 * every thread allocates a buffer large enough that the heap must grow, which main reads and
 * frees after the region, and churns small blocks. With an argument N > 0, thread N traps
 * inside the region (to check that the failure names it). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N (1 << 20)
#define BIG (4 << 20) /* bytes each thread allocates in the region */
#define SMALL 200     /* small blocks each thread allocates and frees in the region */

int main(int argc, char **argv) {
    int trap_thread = argc > 1 ? atoi(argv[1]) : -1;
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    long histogram[16] = {0};
    long *list = calloc(4096, sizeof *list), used = 0;
    double total = 0.0;
    int team = 0;
    unsigned char *slot[64] = {0};
    long churned[64] = {0};
    for (int i = 0; i < N; i++)
        a[i] = i * 0.5;
#pragma omp parallel reduction(+ : total, histogram[:16])
    {
        int me = omp_get_thread_num();
#pragma omp single
        team = omp_get_num_threads();
        if (me == trap_thread)
            __builtin_trap();
#pragma omp for schedule(static)
        for (int i = 0; i < N; i++)
            b[i] = a[i] * 2.0 + me * 0.0;
        /* phase two reads what other threads wrote in phase one */
#pragma omp for schedule(dynamic, 4096)
        for (int i = 0; i < N; i++) {
            double v = b[(i + N / 2) % N];
            total += v;
            histogram[(long)v % 16]++;
        }
        for (int k = 0; k < 100; k++) {
#pragma omp critical
            list[used++] = me;
        }
        unsigned char *big = malloc(BIG);
        if (big)
            for (long i = 0; i < BIG; i++)
                big[i] = (unsigned char)(i * (me + 1) + me);
        slot[me] = big;
        long *small[SMALL];
        long sum = 0;
        for (int k = 0; k < SMALL; k++) {
            small[k] = malloc((size_t)(16 + (k % 7) * 24) * sizeof(long));
            if (small[k])
                small[k][0] = k + me;
            if (k % 3 == 2) { /* free some at once, the rest at the end */
                sum += small[k - 1] ? small[k - 1][0] : -1000;
                free(small[k - 1]);
                small[k - 1] = NULL;
            }
        }
        for (int k = 0; k < SMALL; k++) {
            if (small[k]) {
                sum += small[k][0];
                free(small[k]);
            }
        }
        churned[me] = sum;
    }
    long per[64] = {0}, hsum = 0;
    for (long i = 0; i < used; i++)
        per[list[i]]++;
    int fair = 1;
    for (int t = 0; t < team; t++)
        fair &= per[t] == 100;
    for (int h = 0; h < 16; h++)
        hsum += histogram[h];
    printf("team=%d total=%.1f histogram=%ld used=%ld fair=%d b[7]=%.1f\n", team, total, hsum,
           used, fair, b[7]);
    printf("heap:");
    for (int t = 0; t < team; t++) {
        long sum = -1;
        if (slot[t]) {
            sum = 0;
            for (long i = 0; i < BIG; i++)
                sum += slot[t][i];
            free(slot[t]);
        }
        printf(" %ld/%ld", sum, churned[t]);
    }
    printf("\n");
    return 0;
}
