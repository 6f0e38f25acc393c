/* Built thread-capable (-pthread): uses atomics and malloc on an imported shared memory. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int counter;

int main(void) {
    int *values = malloc(100 * sizeof(int));
    for (int i = 0; i < 100; i++) {
        values[i] = i;
        atomic_fetch_add(&counter, values[i]);
    }
    free(values);
    printf("sum=%d\n", atomic_load(&counter));
    return 0;
}
