/*
 * omp_team.c: parallel regions (fork/join), the warm worker pool and team barriers.
 *
 * __kmpc_fork_call hands the region to pool workers by writing their job and bumping the
 * word each one waits on, runs its own share as thread 0 and waits for the others to finish.
 * Workers stay alive between regions (polling, then sleeping on their word), so a fork costs
 * a wake-up, not a host call; they end when the program exits (an atexit handler) or when
 * the host stops the granule. Nested regions and regions that find the pool busy run with
 * one thread. When the host plans part of a team elsewhere (omp_plan), the pool team is
 * distributed: its local threads run here as usual, omp_remote.c starts the others, and the
 * pool and gtid counter are per-host state. In an elastic app a fork without num_threads
 * asks the host at each fork how many threads it may run (the host's free slots) and tells
 * it at the join; such teams never span hosts. Must not implement worksharing or
 * synchronisation constructs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omp_internal.h"

struct omp_worker {
    atomic_int go; /* bumped to start a region (or to shut down) */
    struct omp_team *team;
    int tid;
};

struct omp_serial {
    struct omp_team team;
    struct omp_saved saved;
    struct omp_serial *outer;
};

static struct {
    atomic_int busy; /* a region is using the pool */
    atomic_int shutdown;
    int size;        /* workers started */
    int exit_hook;
    struct omp_worker workers[OMP_MAX_THREADS - 1];
    struct omp_team team;
} pool;

static _Thread_local struct omp_thread tls_state;
static _Thread_local struct omp_team implicit_team; /* outside any parallel region */
static _Thread_local struct omp_serial *serial_top;
static atomic_int next_gtid;

static void init_state(struct omp_thread *me, kmp_int32 gtid) {
    me->initialized = 1;
    me->gtid = gtid;
    me->nthreads_var = omp_icvs()->nthreads;
    omp_team_init(&implicit_team, 1, 0, 0);
    implicit_team.icv_nthreads = me->nthreads_var;
    me->team = &implicit_team;
    me->tid = 0;
}

struct omp_thread *omp_me(void) {
    struct omp_thread *me = &tls_state;
    if (!me->initialized)
        init_state(me, fth_is_main(fth_self()) ? 0 : atomic_fetch_add(&next_gtid, 1) + 1);
    return me;
}

/* its TLS persists from one distributed region to the next, so this runs once per block */
struct omp_thread *omp_me_remote(int tid) {
    struct omp_thread *me = &tls_state;
    if (!me->initialized)
        init_state(me, OMP_REMOTE_GTID + tid);
    return me;
}

/* for malloc: a thread that never used OpenMP (a pthread, main before any region) is in no
 * team, and setting its state up could allocate */
int omp_heap_spans_hosts(void) {
    return tls_state.initialized && tls_state.team->in_distributed;
}

void omp_team_init(struct omp_team *team, int nthreads, int level, int active_level) {
    team->nthreads = nthreads;
    team->level = level;
    team->active_level = active_level;
    team->local_n = nthreads;
    team->distributed = team->in_distributed = 0;
    atomic_store(&team->bar_arrived, 0);
    atomic_store(&team->bar_generation, 0);
    atomic_store(&team->single_claimed, 0);
    team->copy_data = NULL;
    for (int i = 0; i < OMP_DISPATCH_BUFS; i++) {
        struct omp_dispatch *d = &team->dispatch[i];
        atomic_store(&d->available, i);
        atomic_store(&d->claimed, i - OMP_DISPATCH_BUFS);
        atomic_store(&d->ready, i - OMP_DISPATCH_BUFS);
        atomic_store(&d->finished, 0);
    }
}

void omp_enter(struct omp_thread *me, struct omp_team *team, int tid, struct omp_saved *saved) {
    *saved = (struct omp_saved){me->team, me->tid, me->nthreads_var, me->single_seq,
                                me->dispatch_seq, me->loop, me->loop_seq, me->loop_lb,
                                me->loop_st, me->static_next, me->ordered_iter,
                                me->ordered_bumped};
    me->team = team;
    me->tid = tid;
    me->nthreads_var = team->icv_nthreads;
    me->single_seq = me->dispatch_seq = 0;
    me->loop = NULL;
    if (team->level >= 1 && team->level <= OMP_MAX_LEVELS) {
        me->ancestor_tid[team->level - 1] = tid;
        me->ancestor_size[team->level - 1] = team->nthreads;
    }
}

void omp_leave(struct omp_thread *me, const struct omp_saved *saved) {
    me->team = saved->team;
    me->tid = saved->tid;
    me->nthreads_var = saved->nthreads_var;
    me->single_seq = saved->single_seq;
    me->dispatch_seq = saved->dispatch_seq;
    me->loop = saved->loop;
    me->loop_seq = saved->loop_seq;
    me->loop_lb = saved->loop_lb;
    me->loop_st = saved->loop_st;
    me->static_next = saved->static_next;
    me->ordered_iter = saved->ordered_iter;
    me->ordered_bumped = saved->ordered_bumped;
}

int omp_spins(void) {
    return pool.size + 1 > omp_icvs()->procs ? FTH_SPIN_SHORT : FTH_SPIN_LONG;
}

void omp_barrier(struct omp_team *team) {
    if (team->nthreads == 1)
        return;
    int generation = atomic_load(&team->bar_generation);
    if (atomic_fetch_add(&team->bar_arrived, 1) == team->local_n - 1) {
        if (team->distributed)
            fteam_barrier(); /* the last to arrive here waits for the other hosts */
        atomic_store(&team->bar_arrived, 0);
        atomic_fetch_add(&team->bar_generation, 1);
        fth_wake_all(&team->bar_generation);
        return;
    }
    fth_wait(&team->bar_generation, generation, omp_spins());
}

void omp_team_exclude(struct fteam_excludes *set) {
    fteam_exclude(set, &pool, sizeof pool);
    fteam_exclude(set, &next_gtid, sizeof next_gtid);
}

/* -- the pool -------------------------------------------------------------------------------- */

static void *worker_main(void *arg) {
    struct omp_worker *w = arg;
    struct omp_thread *me = omp_me();
    int seen = 0;
    for (;;) {
        fth_wait(&w->go, seen, omp_spins());
        seen = atomic_load(&w->go);
        if (atomic_load(&pool.shutdown))
            return NULL;
        struct omp_team *team = w->team;
        struct omp_saved saved;
        omp_enter(me, team, w->tid, &saved);
        omp_call_micro(team->fn, me->gtid, w->tid, team->argc, team->args);
        omp_leave(me, &saved);
        if (atomic_fetch_sub(&team->join_left, 1) == 1)
            fth_wake_all(&team->join_left);
    }
}

static void pool_shutdown(void) {
    atomic_store(&pool.shutdown, 1);
    for (int i = 0; i < pool.size; i++) {
        atomic_fetch_add(&pool.workers[i].go, 1);
        fth_wake_all(&pool.workers[i].go);
    }
}

/* start workers until a team of `wanted` is possible; returns the team size available */
static int pool_grow(int wanted) {
    if (!pool.exit_hook) {
        pool.exit_hook = 1;
        atexit(pool_shutdown);
    }
    while (pool.size < wanted - 1) {
        struct __pthread *t = fth_alloc(omp_icvs()->stack_size);
        if (!t)
            break;
        t->internal = 1;
        t->start = worker_main;
        t->arg = &pool.workers[pool.size];
        atomic_store(&t->state, FTH_DETACHED);
        if (fth_start(t) != 0) {
            fth_release(t);
            break;
        }
        pool.size++;
    }
    return pool.size + 1 < wanted ? pool.size + 1 : wanted;
}

static struct omp_team *pool_team(struct omp_thread *me, int n, kmpc_micro fn, int argc,
                                  void **args) {
    struct omp_team *team = &pool.team;
    int level = me->team->level;
    int active = me->team->active_level;
    omp_team_init(team, n, level + 1, active + 1);
    team->icv_nthreads = me->nthreads_var;
    team->fn = fn;
    team->argc = argc;
    memcpy(team->args, args, sizeof(void *) * (size_t)argc);
    return team;
}

/* run threads 0..local_n-1 of `team` here: the workers and the calling thread */
static void run_on_pool(struct omp_thread *me, struct omp_team *team) {
    int n = team->local_n;
    atomic_store(&team->join_left, n - 1);
    for (int i = 1; i < n; i++) {
        struct omp_worker *w = &pool.workers[i - 1];
        w->team = team;
        w->tid = i;
        atomic_fetch_add(&w->go, 1);
        fth_wake(&w->go, 1);
    }
    struct omp_saved saved;
    omp_enter(me, team, 0, &saved);
    omp_call_micro(team->fn, me->gtid, 0, team->argc, team->args);
    omp_leave(me, &saved);
    int left;
    while ((left = atomic_load(&team->join_left)) != 0)
        fth_wait(&team->join_left, left, omp_spins());
}

static void run_serialized(struct omp_thread *me, kmpc_micro fn, int argc, void **args) {
    struct omp_team team;
    int level = me->team->level;
    int active = me->team->active_level;
    omp_team_init(&team, 1, level + 1, active);
    team.icv_nthreads = me->nthreads_var;
    team.in_distributed = me->team->in_distributed;
    struct omp_saved saved;
    omp_enter(me, &team, 0, &saved);
    omp_call_micro(fn, me->gtid, 0, argc, args);
    omp_leave(me, &saved);
}

/* what became of a team meant to span hosts */
enum spread { SPREAD_FAILED, SPREAD_RAN, SPREAD_TIME_HERE /* run it here, timed */ };

/* a team of n spanning hosts, `local` of its threads here */
static enum spread run_distributed(struct omp_thread *me, int n, int local, kmpc_micro fn,
                                   int argc, void **args) {
    if (pool_grow(local) < local)
        return SPREAD_FAILED;
    struct omp_team *team = pool_team(me, n, fn, argc, args);
    team->local_n = local;
    team->distributed = team->in_distributed = 1;
    int failed = omp_remote_fork(team);
    if (failed != 0)
        return failed == FTEAM_TIME_HERE ? SPREAD_TIME_HERE : SPREAD_FAILED;
    run_on_pool(me, team);
    fflush(stdout); /* this host's output of the region comes before the other hosts' */
    fflush(stderr);
    omp_remote_join();
    return SPREAD_RAN;
}

/* run the region on the pool (the caller holds it); 0 if it has no worker to offer */
static int fork_on_pool(struct omp_thread *me, int wanted, kmpc_micro fn, int argc,
                        void **args) {
    if (omp_icvs()->dynamic) /* the team may be smaller: as many as the cluster has slots */
        wanted = omp_available(wanted);
    if (wanted < 2)
        return 0;
    int local = omp_plan(wanted);
    enum spread spread =
        local < wanted ? run_distributed(me, wanted, local, fn, argc, args) : SPREAD_FAILED;
    if (spread == SPREAD_RAN)
        return 1;
    int n = pool_grow(wanted);
    if (n > 1)
        run_on_pool(me, pool_team(me, n, fn, argc, args));
    if (spread == SPREAD_TIME_HERE) /* timed against the runs across hosts */
        fteam_trial_done(n > 1);
    return n > 1;
}

/* an elastic region: as many threads as the host lends slots for now (at most `wanted`),
 * given back at the join; 0 if it runs with one thread (serialized, by the caller) */
static int fork_elastic(struct omp_thread *me, int wanted, kmpc_micro fn, int argc,
                        void **args) {
    int n = fteam_elastic_fork(wanted);
    if (n > wanted)
        n = wanted;
    if (n > 1)
        n = pool_grow(n);
    if (n > 1)
        run_on_pool(me, pool_team(me, n, fn, argc, args));
    fteam_elastic_join(n > 1 ? n : 1);
    return n > 1;
}

static int team_size_for(struct omp_thread *me) {
    int wanted = me->pushed > 0 ? me->pushed : me->nthreads_var;
    me->pushed = 0;
    const struct omp_icvs *icvs = omp_icvs();
    if (wanted > icvs->thread_limit)
        wanted = icvs->thread_limit;
    if (wanted > OMP_MAX_THREADS)
        wanted = OMP_MAX_THREADS;
    int active = me->team->active_level;
    return active >= icvs->max_active_levels ? 1 : wanted;
}

void __kmpc_fork_call(ident_t *loc, kmp_int32 argc, kmpc_micro fn, ...) {
    (void)loc;
    if (argc < 0 || argc > OMP_MAX_ARGS)
        fth_fatal("a parallel region shares more than 16 variables; faabric's OpenMP "
                  "runtime supports up to 16 (put them in a struct)");
    void *args[OMP_MAX_ARGS];
    va_list ap;
    va_start(ap, fn);
    for (int i = 0; i < argc; i++)
        args[i] = va_arg(ap, void *);
    va_end(ap);
    struct omp_thread *me = omp_me();
    int elastic = me->pushed == 0 && omp_icvs()->elastic;
    int wanted = team_size_for(me);
    int expected = 0;
    if (wanted > 1 && atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        int forked = elastic ? fork_elastic(me, wanted, fn, argc, args)
                             : fork_on_pool(me, wanted, fn, argc, args);
        atomic_store(&pool.busy, 0);
        if (forked)
            return;
    }
    run_serialized(me, fn, argc, args);
}

void __kmpc_serialized_parallel(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = omp_me();
    struct omp_serial *serial = malloc(sizeof *serial);
    if (!serial)
        fth_fatal("out of memory entering a serialized parallel region");
    int level = me->team->level;
    int active = me->team->active_level;
    omp_team_init(&serial->team, 1, level + 1, active);
    serial->team.icv_nthreads = me->nthreads_var;
    serial->team.in_distributed = me->team->in_distributed;
    serial->outer = serial_top;
    serial_top = serial;
    me->pushed = 0;
    omp_enter(me, &serial->team, 0, &serial->saved);
}

void __kmpc_end_serialized_parallel(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    struct omp_serial *serial = serial_top;
    if (!serial)
        fth_fatal("__kmpc_end_serialized_parallel without a serialized region");
    omp_leave(omp_me(), &serial->saved);
    serial_top = serial->outer;
    free(serial);
}

kmp_int32 __kmpc_global_thread_num(ident_t *loc) {
    (void)loc;
    return omp_me()->gtid;
}

kmp_int32 __kmpc_global_num_threads(ident_t *loc) {
    (void)loc;
    return pool.size + 1;
}

kmp_int32 __kmpc_bound_thread_num(ident_t *loc) {
    (void)loc;
    return omp_me()->tid;
}

kmp_int32 __kmpc_bound_num_threads(ident_t *loc) {
    (void)loc;
    struct omp_thread *me = omp_me();
    return me->team->nthreads;
}

kmp_int32 __kmpc_in_parallel(ident_t *loc) {
    (void)loc;
    struct omp_thread *me = omp_me();
    return me->team->active_level > 0;
}

kmp_int32 __kmpc_ok_to_fork(ident_t *loc) {
    (void)loc;
    return 1;
}

void __kmpc_push_num_threads(ident_t *loc, kmp_int32 gtid, kmp_int32 nthreads) {
    (void)loc, (void)gtid;
    omp_me()->pushed = nthreads;
}

void __kmpc_push_proc_bind(ident_t *loc, kmp_int32 gtid, int bind) {
    (void)loc, (void)gtid, (void)bind;
}

void __kmpc_begin(ident_t *loc, kmp_int32 flags) {
    (void)loc, (void)flags;
}

void __kmpc_end(ident_t *loc) {
    (void)loc;
}

void __kmpc_barrier(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    omp_barrier(omp_me()->team);
}
