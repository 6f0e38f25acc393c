/* Allocates 1 MiB blocks (touching each, chaining them so none can be optimised away) until
 * malloc fails; reports how many it got and exits with 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile chain;

int main(void) {
    int blocks = 0;
    for (;;) {
        void **block = malloc(1 << 20);
        if (block == NULL) {
            break;
        }
        memset(block, 1, 1 << 20);
        block[0] = chain;
        chain = block;
        blocks++;
    }
    printf("allocated %d MiB\n", blocks);
    return 3;
}
