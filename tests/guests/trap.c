/* Writes a line, then stores far outside its linear memory: an out-of-bounds trap. */
#include <stdio.h>

int main(void) {
    printf("about to trap\n");
    fflush(stdout);
    volatile int *wild = (volatile int *)0xFFFFFFF0u;
    *wild = 1;
    return 0;
}
