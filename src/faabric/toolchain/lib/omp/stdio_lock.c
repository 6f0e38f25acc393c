/*
 * stdio_lock.c: one lock around wasi-libc's output functions, for threads.
 *
 * The Debian wasi-libc is built single-threaded: its FILE buffers have no locks, and two
 * threads printing at once lose or mangle lines. Thread-capable links pass `--wrap=` for the
 * functions below, so calls land here first and run one at a time (the lock is recursive:
 * fputs calls fwrite). Input functions are not wrapped: read stdin from one thread. In a team
 * spanning hosts, each host prints through its own stdout and stderr: the lock, both FILEs
 * and their buffers are per-host state. Must not change what the wrapped functions do.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "fteam.h"

static struct {
    atomic_int word;
    _Atomic(struct __pthread *) owner;
    int depth;
} lock;

static void enter(void) {
    struct __pthread *self = fth_self();
    if (atomic_load(&lock.owner) == self) {
        lock.depth++;
        return;
    }
    fth_lock(&lock.word);
    atomic_store(&lock.owner, self);
    lock.depth = 1;
}

static void leave(void) {
    if (--lock.depth > 0)
        return;
    atomic_store(&lock.owner, NULL);
    fth_unlock(&lock.word);
}

/* The start of wasi-libc's FILE: musl's struct _IO_FILE as Debian's single-threaded
 * wasi-libc (0.0~git20220510) builds it, 112 bytes in all. Its buffer `buf` follows UNGET
 * bytes of push-back room. The layout is checked through `fd`. */
struct libc_file {
    unsigned flags;
    unsigned char *rpos, *rend;
    void *close;
    unsigned char *wend, *wpos, *wbase;
    void *read, *write, *seek;
    unsigned char *buf;
    size_t buf_size;
    void *prev, *next;
    int fd;
};
#define LIBC_FILE_SIZE 112
#define LIBC_UNGET 8
_Static_assert(offsetof(struct libc_file, buf) == 40 && offsetof(struct libc_file, fd) == 56,
               "the FILE layout of wasi-libc 0.0~git20220510 on wasm32");

static void exclude_file(struct fteam_excludes *set, FILE *f, int fd) {
    const struct libc_file *file = (const struct libc_file *)f;
    if (file->fd != fd)
        fth_fatal("this wasi-libc's FILE layout is not the one faabric knows: a team cannot "
                  "span hosts");
    fteam_exclude(set, f, LIBC_FILE_SIZE);
    if (file->buf)
        fteam_exclude(set, file->buf - LIBC_UNGET, LIBC_UNGET + file->buf_size);
}

void fth_stdio_exclude_state(struct fteam_excludes *set) {
    enter();
    fteam_exclude(set, &lock, sizeof lock);
    exclude_file(set, stdout, 1);
    exclude_file(set, stderr, 2);
    leave();
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
