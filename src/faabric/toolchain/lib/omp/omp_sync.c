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
 * result under the reduction lock). Must not implement loops or teams.
 */
#include "omp_internal.h"
#include <omp.h>

kmp_critical_name omp_unnamed_critical __asm__(".gomp_critical_user_.var");
kmp_critical_name omp_reduction_critical __asm__(".gomp_critical_user_.reduction.var");

/* the lock of every critical section whose name was placed at address 0 */
static atomic_int named_word;
static atomic_int named_owner; /* gtid + 1 of the holder, 0 if free */
static int named_depth;

void omp_word_lock(kmp_critical_name *crit) {
    if (crit) {
        fth_lock((atomic_int *)crit);
        return;
    }
    int me = omp_me()->gtid + 1;
    if (atomic_load(&named_owner) == me) {
        named_depth++;
        return;
    }
    fth_lock(&named_word);
    atomic_store(&named_owner, me);
    named_depth = 1;
}

void omp_word_unlock(kmp_critical_name *crit) {
    if (crit) {
        fth_unlock((atomic_int *)crit);
        return;
    }
    if (--named_depth > 0)
        return;
    atomic_store(&named_owner, 0);
    fth_unlock(&named_word);
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
    if (didit)
        team->copy_data = data;
    omp_barrier(team);
    if (!didit)
        copy(data, team->copy_data);
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

void __kmpc_flush(ident_t *loc) {
    (void)loc;
    atomic_thread_fence(memory_order_seq_cst);
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
    fth_lock((atomic_int *)&lock->_state[0]);
}

void omp_unset_lock(omp_lock_t *lock) {
    fth_unlock((atomic_int *)&lock->_state[0]);
}

int omp_test_lock(omp_lock_t *lock) {
    return fth_trylock((atomic_int *)&lock->_state[0]);
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
    fth_lock((atomic_int *)&lock->_state[NEST_WORD]);
    lock->_state[NEST_OWNER] = nest_owner();
    lock->_state[NEST_COUNT] = 1;
}

void omp_unset_nest_lock(omp_nest_lock_t *lock) {
    if (--lock->_state[NEST_COUNT] > 0)
        return;
    lock->_state[NEST_OWNER] = 0;
    fth_unlock((atomic_int *)&lock->_state[NEST_WORD]);
}

int omp_test_nest_lock(omp_nest_lock_t *lock) {
    if (lock->_state[NEST_OWNER] == nest_owner())
        return ++lock->_state[NEST_COUNT];
    if (!fth_trylock((atomic_int *)&lock->_state[NEST_WORD]))
        return 0;
    lock->_state[NEST_OWNER] = nest_owner();
    lock->_state[NEST_COUNT] = 1;
    return 1;
}
