/*
 * wait.c: the runtime's waits on memory words and its futex lock (fth_words.h), the clock
 * they use and fatal errors. Must not allocate or print (except fth_fatal).
 */
#include <stdio.h>

#include "fth.h"

#define WORDS(name) fth_##name
#define WORDS_LINKAGE
#include "fth_words.h"

int64_t fth_now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

_Noreturn void fth_fatal(const char *message) {
    fprintf(stderr, "faabric: %s\n", message);
    fflush(stderr);
    __builtin_trap();
}
