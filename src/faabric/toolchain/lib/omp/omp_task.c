/*
 * omp_task.c: explicit tasks, run at once by the thread that creates them.
 *
 * Running a task when it is created is a valid schedule (as if every task were undeferred),
 * so taskwait, taskgroup and task dependences have nothing left to wait for. Tasks give no
 * parallelism here: use worksharing loops for that. Not provided: reductions with the `task`
 * modifier on parallel/for, detachable tasks, target tasks.
 */
#include <stdlib.h>

#include "omp_internal.h"

typedef kmp_int32 (*kmp_routine_entry_t)(kmp_int32, void *);

typedef union {
    kmp_int32 priority;
    kmp_routine_entry_t destructors;
} kmp_cmplrdata_t;

typedef struct kmp_task {
    void *shareds;
    kmp_routine_entry_t routine;
    kmp_int32 part_id;
    kmp_cmplrdata_t data1;
    kmp_cmplrdata_t data2;
} kmp_task_t;

#define TASK_HEADER 16 /* bytes before the task: flags, running; keeps 16-byte alignment */
#define FLAG_DESTRUCTORS 8

kmp_task_t *__kmpc_omp_task_alloc(ident_t *loc, kmp_int32 gtid, kmp_int32 flags,
                                  size_t task_size, size_t shareds_size,
                                  kmp_routine_entry_t entry) {
    (void)loc, (void)gtid;
    size_t body = (task_size + 15) & ~(size_t)15;
    char *block = aligned_alloc(16, TASK_HEADER + body + shareds_size + 16);
    if (!block)
        fth_fatal("out of memory allocating an OpenMP task");
    *(kmp_int32 *)block = flags;
    ((kmp_int32 *)block)[1] = 0; /* running */
    kmp_task_t *task = (kmp_task_t *)(block + TASK_HEADER);
    task->shareds = shareds_size ? block + TASK_HEADER + body : NULL;
    task->routine = entry;
    task->part_id = 0;
    return task;
}

static void finish_task(kmp_int32 gtid, kmp_task_t *task) {
    char *block = (char *)task - TASK_HEADER;
    if (*(kmp_int32 *)block & FLAG_DESTRUCTORS)
        task->data1.destructors(gtid, task);
    free(block);
}

/* An untied task hands itself back at each of its scheduling points: it then runs on here
 * (the next part) and is finished once, by the outermost call. */
kmp_int32 __kmpc_omp_task(ident_t *loc, kmp_int32 gtid, kmp_task_t *task) {
    (void)loc;
    kmp_int32 *running = (kmp_int32 *)((char *)task - TASK_HEADER) + 1;
    if (*running) {
        task->routine(gtid, task);
        return 0;
    }
    *running = 1;
    task->routine(gtid, task);
    finish_task(gtid, task);
    return 0;
}

kmp_int32 __kmpc_omp_task_with_deps(ident_t *loc, kmp_int32 gtid, kmp_task_t *task,
                                    kmp_int32 ndeps, void *deps, kmp_int32 ndeps_noalias,
                                    void *noalias) {
    (void)ndeps, (void)deps, (void)ndeps_noalias, (void)noalias;
    return __kmpc_omp_task(loc, gtid, task);
}

void __kmpc_omp_wait_deps(ident_t *loc, kmp_int32 gtid, kmp_int32 ndeps, void *deps,
                          kmp_int32 ndeps_noalias, void *noalias) {
    (void)loc, (void)gtid, (void)ndeps, (void)deps, (void)ndeps_noalias, (void)noalias;
}

void __kmpc_omp_task_begin_if0(ident_t *loc, kmp_int32 gtid, kmp_task_t *task) {
    (void)loc, (void)gtid, (void)task;
}

void __kmpc_omp_task_complete_if0(ident_t *loc, kmp_int32 gtid, kmp_task_t *task) {
    (void)loc;
    finish_task(gtid, task);
}

kmp_int32 __kmpc_omp_taskwait(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    return 0;
}

kmp_int32 __kmpc_omp_taskyield(ident_t *loc, kmp_int32 gtid, int end_part) {
    (void)loc, (void)gtid, (void)end_part;
    return 0;
}

void __kmpc_taskgroup(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
}

void __kmpc_end_taskgroup(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
}

/* taskloop: the task already covers [*lb, *ub]; run it once over the whole range */
void __kmpc_taskloop(ident_t *loc, kmp_int32 gtid, kmp_task_t *task, int if_val,
                     kmp_uint64 *lb, kmp_uint64 *ub, kmp_int64 st, int nogroup, int sched,
                     kmp_uint64 grainsize, void *task_dup) {
    (void)if_val, (void)lb, (void)ub, (void)st, (void)nogroup, (void)sched, (void)grainsize;
    (void)task_dup;
    __kmpc_omp_task(loc, gtid, task);
}

/* Task reductions (taskgroup task_reduction, taskloop reduction): every participating task
 * runs on the thread that created it, one after the other, so each can combine straight
 * into the original variable. The handle only has to be non-null. */
void *__kmpc_taskred_init(kmp_int32 gtid, kmp_int32 num, void *data) {
    (void)gtid, (void)num;
    return data;
}

void *__kmpc_task_reduction_init(kmp_int32 gtid, kmp_int32 num, void *data) {
    (void)gtid, (void)num;
    return data;
}

void *__kmpc_task_reduction_get_th_data(kmp_int32 gtid, void *group, void *item) {
    (void)gtid, (void)group;
    return item;
}
