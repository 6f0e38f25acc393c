/*
 * omp_remote.c: teams that span hosts (fteam.h): the host's plans, starting a region's
 * threads on other hosts, their entry, and the team-wide heap lock.
 *
 * When the host plans fewer than n threads of an n-thread team here, omp_team.c runs
 * threads 0..local-1 as usual and omp_remote_fork has the host start the others elsewhere,
 * each on a block (descriptor, TLS, stack) kept per thread number across regions. The fork
 * descriptor and its arrays stay here until the join. The heap is shared data: on every
 * host, a thread of a team spanning hosts (or of a region nested in one) allocates under a
 * team-wide lock, taken by the shims' malloc_lock.c through fth_team_heap_enter, so that the
 * allocator's bookkeeping (and the memory growth it causes) travels with the lock. Must not
 * implement constructs nor run this host's threads of a region.
 */
#include <errno.h>
#include <stdio.h>

#include "omp_internal.h"

/* a thread number of a team that runs on another host */
struct remote_slot {
    struct __pthread *thread; /* from fth_alloc_adoptable */
    int tid;
};

extern atomic_int fth_heap_lock __attribute__((weak)); /* malloc_lock.c's lock of this copy */

static struct {
    int plans[OMP_MAX_THREADS + 1]; /* fteam_plan's answer per team size, 0 until asked */
    int available[OMP_MAX_THREADS + 1]; /* fteam_available's, likewise */
    struct remote_slot slots[OMP_MAX_THREADS];
    struct fteam_member members[OMP_MAX_THREADS];
    struct fteam_excludes excludes;
    struct fteam_fork desc;
    struct omp_team *team; /* the region's team, as the threads on other hosts find it */
} dist;

/* the host's answer `ask(nthreads)` (1..nthreads), asked once per team size */
static int cached(int *answers, int nthreads, int32_t (*ask)(int32_t)) {
    int found = answers[nthreads];
    if (found == 0) {
        found = ask(nthreads);
        if (found < 1 || found > nthreads)
            found = nthreads;
        answers[nthreads] = found;
    }
    return found;
}

int omp_plan(int nthreads) {
    return cached(dist.plans, nthreads, fteam_plan);
}

int omp_available(int nthreads) {
    return cached(dist.available, nthreads, fteam_available);
}

/* thread `arg` (a struct remote_slot) of dist.team, started by the host on another host;
 * the host ends the thread when this returns */
static void remote_entry(int32_t arg) {
    struct remote_slot *slot = (struct remote_slot *)(uintptr_t)arg;
    fth_adopt(slot->thread);
    struct omp_thread *me = omp_me_remote(slot->tid);
    struct omp_team *team = dist.team; /* each host has its own: it is in the excluded pool */
    team->local_n = fteam_local_threads();
    struct omp_saved saved;
    omp_enter(me, team, slot->tid, &saved);
    omp_call_micro(team->fn, me->gtid, slot->tid, team->argc, team->args);
    omp_leave(me, &saved);
    fflush(stdout); /* this host's output; other FILEs may hold the main host's buffered data */
    fflush(stderr);
}

/* the slot of thread `tid`, made the first time it runs elsewhere; NULL if out of memory */
static struct remote_slot *slot_for(int tid) {
    struct remote_slot *slot = &dist.slots[tid];
    if (slot->thread)
        return slot;
    struct __pthread *thread = fth_alloc_adoptable(omp_icvs()->stack_size);
    if (!thread)
        return NULL;
    *slot = (struct remote_slot){thread, tid};
    return slot;
}

/* the per-host state of each part of the runtime */
static void collect_excludes(void) {
    dist.excludes.count = 0;
    omp_team_exclude(&dist.excludes);
    omp_sync_exclude(&dist.excludes);
    fth_exclude_state(&dist.excludes);
    fth_stdio_exclude_state(&dist.excludes);
    if (&fth_heap_lock) /* each host's lock of its own copy of the heap */
        fteam_exclude(&dist.excludes, &fth_heap_lock, sizeof fth_heap_lock);
    fteam_exclude(&dist.excludes, &fth_atomics_remote, sizeof fth_atomics_remote);
}


int omp_remote_fork(struct omp_team *team) {
    int n = team->nthreads, local = team->local_n;
    for (int tid = local; tid < n; tid++) {
        struct remote_slot *slot = slot_for(tid);
        if (!slot)
            return -ENOMEM;
        dist.members[tid - local] =
            (struct fteam_member){FTEAM_ADDR(slot), fth_stack_top(slot->thread)};
    }
    collect_excludes();
    fflush(NULL); /* output buffered now would be printed again by the other hosts */
    dist.team = team;
    fth_atomics_local = &dist.excludes;
    fth_atomics_call = fteam_atomic;
    fth_atomics_remote = 1; /* before the snapshot: the other hosts start with it set */
    dist.desc = (struct fteam_fork){n, local, FTEAM_ADDR(&remote_entry),
                                    FTEAM_ADDR(dist.members), dist.excludes.count,
                                    FTEAM_ADDR(dist.excludes.range), FTEAM_ADDR(team->fn)};
    int failed = fteam_fork(FTEAM_ADDR(&dist.desc));
    if (failed)
        fth_atomics_remote = 0;
    return failed;
}

void omp_remote_join(void) {
    fth_atomics_remote = 0; /* this host's threads of the region are done */
    fteam_join();
}

/* -- the heap ------------------------------------------------------------------------------ */

static int heap_key; /* its address keys the team-wide heap lock */

/* called by malloc_lock.c with this host's heap lock held: must not allocate */
int fth_team_heap_enter(void) {
    if (!omp_heap_spans_hosts())
        return 0;
    fteam_acquire(FTEAM_ADDR(&heap_key));
    return 1;
}

void fth_team_heap_leave(void) {
    fteam_release(FTEAM_ADDR(&heap_key));
}
