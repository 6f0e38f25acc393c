/*
 * fteam.h: the host interface of teams that span hosts (import module "faabric_team").
 *
 * A distributed parallel region runs threads 0..local-1 of its team here and the others on
 * other hosts, each host on its own copy of the memory, restored from a snapshot the host
 * takes at fteam_fork. The copies are kept coherent at synchronisation points (release
 * consistency): every call below that synchronises ships this host's writes since its last
 * synchronisation and brings in the others', except for the excluded ranges, which hold
 * per-host state and are never synchronised. Keys and addresses are guest addresses. Each
 * part of the runtime with per-host state names it through an *_exclude function (see
 * fteam_exclude). Must not hold policy: it only declares the imports and the structures.
 */
#ifndef FAABRIC_FTEAM_H
#define FAABRIC_FTEAM_H

#include "fth.h"

#define FTEAM_IMPORT(name) __attribute__((import_module("faabric_team"), import_name(name)))
#define FTEAM_ADDR(pointer) ((int32_t)(uintptr_t)(pointer)) /* as keys and in structs */
#define FTEAM_MAX_EXCLUDE 16

/* threads of an n-thread team (n > 1) that run on this host: n means all of them */
FTEAM_IMPORT("plan") int32_t fteam_plan(int32_t nthreads);
/* how many threads of an n-thread team the cluster has slots for (1..n): with dynamic
 * adjustment on, a team gets no more */
FTEAM_IMPORT("available") int32_t fteam_available(int32_t nthreads);
/* start threads local..n-1 of the region described at `desc` (struct fteam_fork) elsewhere:
 * 0; else nothing started and the region runs here: a negative errno, or FTEAM_TIME_HERE
 * when the host times this run here (ended by fteam_trial_done) against those across hosts */
#define FTEAM_TIME_HERE 1
FTEAM_IMPORT("fork") int32_t fteam_fork(int32_t desc);
/* the run here that fteam_fork asked for with -EAGAIN has ended (`ran`: with a team, not
 * serialised for want of threads) */
FTEAM_IMPORT("trial_done") void fteam_trial_done(int32_t ran);
/* main host, after its own threads of the region ended: wait for the others (traps if one
 * failed) and bring in their writes */
FTEAM_IMPORT("join") void fteam_join(void);
/* one call per host per barrier (its last thread to arrive); returns once all hosts did */
FTEAM_IMPORT("barrier") void fteam_barrier(void);
/* a team-wide mutex per key (0: the lock of named critical sections); not recursive */
FTEAM_IMPORT("acquire") void fteam_acquire(int32_t key);
FTEAM_IMPORT("try_acquire") int32_t fteam_try_acquire(int32_t key);
FTEAM_IMPORT("release") void fteam_release(int32_t key);
/* 1 for the first thread of the team to ask for `seq`, 0 for the others (no memory sync) */
FTEAM_IMPORT("single") int32_t fteam_single(int32_t seq);
/* the turn of `iteration` in dispatched ordered loop number `loop` of the region (counters
 * start at 0): wait for it (memory synced in), or pass it on to `next` (synced out) */
FTEAM_IMPORT("ordered_wait") void fteam_ordered_wait(int32_t loop, int64_t iteration);
FTEAM_IMPORT("ordered_pass") void fteam_ordered_pass(int32_t loop, int64_t next);
/* an atomic instruction of the program (atomic_route.c), done by the main host on its memory:
 * `code` is the instruction's sub-opcode after the 0xfe prefix, plus FTEAM_ATOMIC_DROPPED
 * for a read-modify-write whose result is ignored (the host may batch those); `a` and `b`
 * are its operands zero-extended (a wait's are the expected value and the timeout). Returns
 * what the instruction returns, zero-extended. Every one synchronises memory: this host's
 * writes out first, then the others' in. FTEAM_ATOMIC_FENCE is a flush. */
FTEAM_IMPORT("atomic") int64_t fteam_atomic(int32_t code, int32_t addr, int64_t a, int64_t b);
#define FTEAM_ATOMIC_DROPPED 0x100
#define FTEAM_ATOMIC_FENCE 0x03
/* threads of the current distributed region on this host */
FTEAM_IMPORT("local_threads") int32_t fteam_local_threads(void);
/* elastic apps (faabric run --elastic): 1 if the granule's app is elastic, asked once */
FTEAM_IMPORT("elastic") int32_t fteam_elastic(void);
/* an elastic region wants up to `wanted` threads: how many it may run here (1..wanted), the
 * extra ones on slots lent by the planner until fteam_elastic_join, which says how many
 * threads the region ran with. One planner round trip per region; never spans hosts. */
FTEAM_IMPORT("elastic_fork") int32_t fteam_elastic_fork(int32_t wanted);
FTEAM_IMPORT("elastic_join") void fteam_elastic_join(int32_t threads);

/* a thread started elsewhere: the host calls table[entry](arg) with __stack_pointer at
 * stack_top (16-byte aligned) */
struct fteam_member {
    int32_t arg;
    int32_t stack_top;
};

struct fteam_range {
    int32_t start; /* [start, end): bytes never synchronised between hosts */
    int32_t end;
};

/* what fteam_fork reads; it and the arrays it points to stay valid until fteam_join */
struct fteam_fork {
    int32_t nthreads; /* the whole team */
    int32_t local;    /* threads 0..local-1 run here, local..nthreads-1 elsewhere */
    int32_t entry;    /* function-table index of a void f(int32_t arg) */
    int32_t members;  /* struct fteam_member[nthreads - local]: element i is thread local+i */
    int32_t nexclude;
    int32_t exclude;  /* struct fteam_range[nexclude] */
    int32_t region;   /* the region's outlined function (table index): names the region */
};

struct fteam_excludes {
    int32_t count;
    struct fteam_range range[FTEAM_MAX_EXCLUDE];
};

/* add `size` bytes at `start` to the ranges never synchronised */
static inline void fteam_exclude(struct fteam_excludes *set, const volatile void *start,
                                 size_t size) {
    if (set->count == FTEAM_MAX_EXCLUDE)
        fth_fatal("too many per-host memory ranges for a team spanning hosts");
    uintptr_t at = (uintptr_t)start;
    set->range[set->count++] = (struct fteam_range){(int32_t)at, (int32_t)(at + size)};
}

/* the per-host state of thread.c and stdio_lock.c */
void fth_exclude_state(struct fteam_excludes *set);
void fth_stdio_exclude_state(struct fteam_excludes *set);

#endif
