/*
 * stdio_lock.c: one lock around wasi-libc's output functions, for threads.
 *
 * The Debian wasi-libc is built single-threaded: its FILE buffers have no locks, and two
 * threads printing at once lose or mangle lines. Thread-capable links pass `--wrap=` for the
 * functions below, so calls land here first and run one at a time (the lock is recursive:
 * fputs calls fwrite). Input functions are not wrapped: read stdin from one thread.
 */
#include <stdarg.h>
#include <stdio.h>

#include "fth.h"

static atomic_int word;
static _Atomic(struct __pthread *) owner;
static int depth;

static void enter(void) {
    struct __pthread *self = fth_self();
    if (atomic_load(&owner) == self) {
        depth++;
        return;
    }
    fth_lock(&word);
    atomic_store(&owner, self);
    depth = 1;
}

static void leave(void) {
    if (--depth > 0)
        return;
    atomic_store(&owner, NULL);
    fth_unlock(&word);
}

int __real_vfprintf(FILE *restrict, const char *restrict, va_list);
size_t __real_fwrite(const void *restrict, size_t, size_t, FILE *restrict);
int __real_fputs(const char *restrict, FILE *restrict);
int __real_puts(const char *);
int __real_fputc(int, FILE *);
int __real_putc(int, FILE *);
int __real_putchar(int);
int __real_fflush(FILE *);

int __wrap_vfprintf(FILE *restrict f, const char *restrict format, va_list ap) {
    enter();
    int result = __real_vfprintf(f, format, ap);
    leave();
    return result;
}

size_t __wrap_fwrite(const void *restrict data, size_t size, size_t count, FILE *restrict f) {
    enter();
    size_t result = __real_fwrite(data, size, count, f);
    leave();
    return result;
}

int __wrap_fputs(const char *restrict text, FILE *restrict f) {
    enter();
    int result = __real_fputs(text, f);
    leave();
    return result;
}

int __wrap_puts(const char *text) {
    enter();
    int result = __real_puts(text);
    leave();
    return result;
}

int __wrap_fputc(int c, FILE *f) {
    enter();
    int result = __real_fputc(c, f);
    leave();
    return result;
}

int __wrap_putc(int c, FILE *f) {
    enter();
    int result = __real_putc(c, f);
    leave();
    return result;
}

int __wrap_putchar(int c) {
    enter();
    int result = __real_putchar(c);
    leave();
    return result;
}

int __wrap_fflush(FILE *f) {
    enter();
    int result = __real_fflush(f);
    leave();
    return result;
}
