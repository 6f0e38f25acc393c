/* How a threaded granule ends, chosen by argv[1]:
 *   trap     thread 1 traps (out-of-bounds store) while main waits for it
 *   exit     thread 1 calls exit(3) while main waits for it
 *   return   main returns while thread 1 spins forever
 *   spin     main and thread 1 both spin forever (only a timeout or cancel ends it)
 *   mainexit main calls pthread_exit; thread 1 prints after a while and the process exits 0 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *mode = "";

static void *thread_main(void *arg) {
    (void)arg;
    if (strcmp(mode, "trap") == 0)
        *(volatile int *)(uintptr_t)0xfffffff0u = 1;
    if (strcmp(mode, "exit") == 0)
        exit(3);
    if (strcmp(mode, "mainexit") == 0) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        printf("thread still ran\n");
        return NULL;
    }
    volatile unsigned long spins = 0;
    for (;;)
        spins++;
}

int main(int argc, char **argv) {
    mode = argc > 1 ? argv[1] : "";
    pthread_t thread;
    pthread_create(&thread, NULL, thread_main, NULL);
    if (strcmp(mode, "return") == 0) {
        printf("main returns\n");
        return 0;
    }
    if (strcmp(mode, "mainexit") == 0)
        pthread_exit(NULL);
    if (strcmp(mode, "spin") == 0) {
        volatile unsigned long spins = 0;
        for (;;)
            spins++;
    }
    pthread_join(thread, NULL);
    printf("joined\n");
    return 0;
}
