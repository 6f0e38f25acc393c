/* The same synchronisation-heavy parallel region run REPS times: across hosts each of its
 * critical sections is a round trip to the main host, so the runtime should find that the
 * region runs faster on one host and keep it there. Prints the total only. */
#include <omp.h>
#include <stdio.h>

#define REPS 6
#define ENTRIES 40

static long total;

int main(void) {
    for (int rep = 0; rep < REPS; rep++) {
#pragma omp parallel
        {
            for (int i = 0; i < ENTRIES; i++) {
#pragma omp critical
                total++;
            }
        }
    }
    printf("total %ld\n", total);
    return 0;
}
