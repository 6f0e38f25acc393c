/*
 * omp_sync.c: critical, master/masked, single, copyprivate, reductions, flush, cancellation
 * and the omp_*_lock API.
 *
 * A critical section's lock is the first word of its kmp_critical_name in guest memory.
 * clang names that storage `.gomp_critical_user_<name>.var` and leaves it undefined; this
 * file defines the unnamed and reduction ones. wasm-ld places any other (named) one at
 * address 0, so a critical section whose name is at address 0 uses one shared recursive lock
 * instead: all named critical sections then exclude each other (correct, but they serialise
 * more than they would natively). Reductions return 1 (each thread combines its partial
 * result under the reduction lock). In a team spanning hosts (or a region inside one), every
 * lock is the host's team-wide mutex keyed by the lock's address (0 for the named ones) and
 * `single` is decided by the host; lock words in memory are not used then, since each host
 * has its own copy of them. Must not implement loops or teams.
 */
#include "omp_internal.h"
#include <omp.h>

kmp_critical_name omp_unnamed_critical __asm__(".gomp_critical_user_.var");
kmp_critical_name omp_reduction_critical __asm__(".gomp_critical_user_.reduction.var");

/* the lock of every critical section whose name was placed at address 0 (per host: in a
 * team spanning hosts the host's lock of key 0 replaces `word`) */
static struct {
    atomic_int word;
    atomic_int owner; /* gtid + 1 of the holder, 0 if free */
    int depth;
} named;

/* the data of a copyprivate in a team spanning hosts: outside the per-host team, so that
 * the barrier's memory synchronisation carries it to the other hosts */
static void *volatile copy_data_shared;

static int spans_hosts(void) {
    return omp_me()->team->in_distributed;
}

/* lock or unlock the mutex whose word is at `word` (a team-wide one if `hosts`) */
static void lock_word(atomic_int *word, int hosts) {
    if (hosts)
        fteam_acquire(FTEAM_ADDR(word));
    else
        fth_lock(word);
}

static int trylock_word(atomic_int *word, int hosts) {
    return hosts ? fteam_try_acquire(FTEAM_ADDR(word)) : fth_trylock(word);
}

static void unlock_word(atomic_int *word, int hosts) {
    if (hosts)
        fteam_release(FTEAM_ADDR(word));
    else
        fth_unlock(word);
}

void omp_word_lock(kmp_critical_name *crit) {
    int hosts = spans_hosts();
    if (crit) {
        lock_word((atomic_int *)crit, hosts);
        return;
    }
    int me = omp_me()->gtid + 1;
    if (atomic_load(&named.owner) == me) {
        named.depth++;
        return;
    }
    if (hosts)
        fteam_acquire(0);
    else
        fth_lock(&named.word);
    atomic_store(&named.owner, me);
    named.depth = 1;
}

void omp_word_unlock(kmp_critical_name *crit) {
    int hosts = spans_hosts();
    if (crit) {
        unlock_word((atomic_int *)crit, hosts);
        return;
    }
    if (--named.depth > 0)
        return;
    atomic_store(&named.owner, 0);
    if (hosts)
        fteam_release(0);
    else
        fth_unlock(&named.word);
}

void omp_sync_exclude(struct fteam_excludes *set) {
    fteam_exclude(set, &named, sizeof named);
}

void __kmpc_critical(ident_t *loc, kmp_int32 gtid, kmp_critical_name *crit) {
    (void)loc, (void)gtid;
    omp_word_lock(crit);
}

void __kmpc_critical_with_hint(ident_t *loc, kmp_int32 gtid, kmp_critical_name *crit,
                               uint32_t hint) {
    (void)loc, (void)gtid, (void)hint;
    omp_word_lock(crit);
}

void __kmpc_end_critical(ident_t *loc, kmp_int32 gtid, kmp_critical_name *crit) {
    (void)loc, (void)gtid;
    omp_word_unlock(crit);
}

kmp_int32 __kmpc_master(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    return omp_me()->tid == 0;
}

void __kmpc_end_master(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
}

kmp_int32 __kmpc_masked(ident_t *loc, kmp_int32 gtid, kmp_int32 filter) {
    (void)loc, (void)gtid;
    return omp_me()->tid == filter;
}

void __kmpc_end_masked(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
}

/* single k of a region goes to the first thread that moves `single_claimed` from k to k+1 */
kmp_int32 __kmpc_single(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = omp_me();
    int k = (int)me->single_seq++;
    if (me->team->distributed)
        return fteam_single(k);
    return atomic_compare_exchange_strong(&me->team->single_claimed, &k, k + 1);
}

void __kmpc_end_single(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
}

void __kmpc_copyprivate(ident_t *loc, kmp_int32 gtid, size_t size, void *data,
                        void (*copy)(void *, void *), kmp_int32 didit) {
    (void)loc, (void)gtid, (void)size;
    struct omp_team *team = omp_me()->team;
    if (team->nthreads == 1)
        return;
    void *volatile *slot = team->distributed ? &copy_data_shared : &team->copy_data;
    if (didit)
        *slot = data;
    omp_barrier(team);
    if (!didit)
        copy(data, *slot);
    omp_barrier(team);
}

kmp_int32 __kmpc_reduce_nowait(ident_t *loc, kmp_int32 gtid, kmp_int32 nvars, size_t size,
                               void *data, void (*reduce)(void *, void *),
                               kmp_critical_name *lock) {
    (void)loc, (void)gtid, (void)nvars, (void)size, (void)data, (void)reduce;
    omp_word_lock(lock);
    return 1;
}

void __kmpc_end_reduce_nowait(ident_t *loc, kmp_int32 gtid, kmp_critical_name *lock) {
    (void)loc, (void)gtid;
    omp_word_unlock(lock);
}

kmp_int32 __kmpc_reduce(ident_t *loc, kmp_int32 gtid, kmp_int32 nvars, size_t size, void *data,
                        void (*reduce)(void *, void *), kmp_critical_name *lock) {
    return __kmpc_reduce_nowait(loc, gtid, nvars, size, data, reduce, lock);
}

void __kmpc_end_reduce(ident_t *loc, kmp_int32 gtid, kmp_critical_name *lock) {
    (void)loc, (void)gtid;
    omp_word_unlock(lock);
    omp_barrier(omp_me()->team);
}

/* across hosts, a flush publishes this host's writes and brings in the ones published
 * before it; a thread that flushes again and again with nothing new either way is held by
 * the main host until something is published (a spin on a flag does not spin the network) */
void __kmpc_flush(ident_t *loc) {
    (void)loc;
    atomic_thread_fence(memory_order_seq_cst);
    if (spans_hosts())
        fteam_atomic(FTEAM_ATOMIC_FENCE, 0, 0, 0);
}

/* cancellation is off (OMP_CANCELLATION is not supported): nothing is ever cancelled */
kmp_int32 __kmpc_cancel(ident_t *loc, kmp_int32 gtid, kmp_int32 kind) {
    (void)loc, (void)gtid, (void)kind;
    return 0;
}

kmp_int32 __kmpc_cancellationpoint(ident_t *loc, kmp_int32 gtid, kmp_int32 kind) {
    (void)loc, (void)gtid, (void)kind;
    return 0;
}

kmp_int32 __kmpc_cancel_barrier(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    omp_barrier(omp_me()->team);
    return 0;
}

/* -- omp_*_lock ----------------------------------------------------------------------------- */

enum { NEST_WORD = 0, NEST_OWNER = 1, NEST_COUNT = 2 };

void omp_init_lock(omp_lock_t *lock) {
    *lock = (omp_lock_t){{0}};
}

void omp_init_lock_with_hint(omp_lock_t *lock, omp_sync_hint_t hint) {
    (void)hint;
    omp_init_lock(lock);
}

void omp_destroy_lock(omp_lock_t *lock) {
    (void)lock;
}

void omp_set_lock(omp_lock_t *lock) {
    lock_word((atomic_int *)&lock->_state[0], spans_hosts());
}

void omp_unset_lock(omp_lock_t *lock) {
    unlock_word((atomic_int *)&lock->_state[0], spans_hosts());
}

int omp_test_lock(omp_lock_t *lock) {
    return trylock_word((atomic_int *)&lock->_state[0], spans_hosts());
}

void omp_init_nest_lock(omp_nest_lock_t *lock) {
    *lock = (omp_nest_lock_t){{0}};
}

void omp_init_nest_lock_with_hint(omp_nest_lock_t *lock, omp_sync_hint_t hint) {
    (void)hint;
    omp_init_nest_lock(lock);
}

void omp_destroy_nest_lock(omp_nest_lock_t *lock) {
    (void)lock;
}

static int nest_owner(void) {
    return omp_me()->gtid + 1;
}

void omp_set_nest_lock(omp_nest_lock_t *lock) {
    if (lock->_state[NEST_OWNER] == nest_owner()) {
        lock->_state[NEST_COUNT]++;
        return;
    }
    lock_word((atomic_int *)&lock->_state[NEST_WORD], spans_hosts());
    lock->_state[NEST_OWNER] = nest_owner();
    lock->_state[NEST_COUNT] = 1;
}

void omp_unset_nest_lock(omp_nest_lock_t *lock) {
    if (--lock->_state[NEST_COUNT] > 0)
        return;
    lock->_state[NEST_OWNER] = 0;
    unlock_word((atomic_int *)&lock->_state[NEST_WORD], spans_hosts());
}

int omp_test_nest_lock(omp_nest_lock_t *lock) {
    if (lock->_state[NEST_OWNER] == nest_owner())
        return ++lock->_state[NEST_COUNT];
    if (!trylock_word((atomic_int *)&lock->_state[NEST_WORD], spans_hosts()))
        return 0;
    lock->_state[NEST_OWNER] = nest_owner();
    lock->_state[NEST_COUNT] = 1;
    return 1;
}
