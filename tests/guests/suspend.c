/* Suspends itself deep in a recursion through the migration import and checks, after it
 * resumes (in another instance), that its locals, globals, heap and stdio buffer survived. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("faabric_mpi"), import_name("fmpi_migrate")))
int32_t fmpi_migrate(int32_t epoch, void *area, int32_t size);

static char area[16384];
static char tiny_area[32]; /* too small for the call stack: the unwind traps */
static int calls;

static long descend(int depth, long acc, char *heap) {
    char local[32];
    snprintf(local, sizeof local, "depth-%d", depth);
    calls++;
    if (depth == 0) {
        int tiny = heap[0] == 't';
        int answer = fmpi_migrate(3, tiny ? tiny_area : area, tiny ? sizeof tiny_area
                                                                 : sizeof area);
        printf("resumed with %d\n", answer);
        return acc + answer;
    }
    long below = descend(depth - 1, acc * 3 + depth, heap);
    printf("%s %s %ld\n", local, heap, below);
    return below + depth;
}

int main(int argc, char **argv) {
    char *heap = malloc(16);
    strcpy(heap, argc > 1 ? "tiny" : "heap-ok");
    printf("before\n");
    long total = descend(5, 1, heap);
    printf("total %ld calls %d\n", total, calls);
    return 0;
}
