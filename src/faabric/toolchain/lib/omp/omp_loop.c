/*
 * omp_loop.c: worksharing loops and sections (__kmpc_for_static_* and __kmpc_dispatch_*).
 *
 * Loops are handled as iteration numbers 0..trip-1. Static schedules are a pure function of
 * the thread number. Dispatched loops (dynamic, guided, runtime, ordered) share a buffer of
 * the team: loop k of a region uses buffer k % OMP_DISPATCH_BUFS, set up by the first
 * thread to arrive and recycled once every thread has finished with it, so threads may run
 * ahead through `nowait` loops. In a team spanning hosts there is no shared buffer: each
 * thread takes its chunks round robin, as with schedule(static, chunk) (dynamic and guided
 * with their chunk, or 1: which thread runs which chunk is unspecified for them), and the
 * turns of `ordered` are the host's. Must not implement other constructs.
 */
#include "omp_internal.h"

struct share {
    uint64_t first, count; /* iteration numbers given to this thread */
    uint64_t stride;       /* iterations between this thread's chunks */
    int last;              /* the share holds the loop's last iteration */
};

static int base_kind(int sched, int *ordered) {
    int kind = sched & ~SCH_MODIFIERS;
    if (kind >= 160 && kind < 200)
        kind -= SCH_NOMERGE_OFFSET;
    *ordered = kind > 64 && kind < 72;
    if (*ordered)
        kind -= SCH_ORDERED_OFFSET;
    return kind;
}

static struct share split_static(int kind, uint64_t trip, int64_t chunk, int tid, int n) {
    struct share s = {0, 0, 0, 0};
    if (kind == SCH_STATIC_CHUNKED || kind == 91) {
        uint64_t size = chunk > 0 ? (uint64_t)chunk : 1;
        s.first = (uint64_t)tid * size;
        s.stride = (uint64_t)n * size;
        if (s.first < trip) {
            s.count = trip - s.first < size ? trip - s.first : size;
            s.last = (uint64_t)tid == ((trip - 1) / size) % (uint64_t)n;
        }
        return s;
    }
    uint64_t small = trip / (uint64_t)n, extra = trip % (uint64_t)n, t = (uint64_t)tid;
    s.first = t * small + (t < extra ? t : extra);
    s.count = small + (t < extra ? 1 : 0);
    s.stride = trip;
    s.last = s.count > 0 && s.first + s.count == trip;
    return s;
}

#define TRIP(UT, lower, upper, incr)                                                        \
    ((incr) > 0 ? ((lower) > (upper) ? 0 : (uint64_t)((UT)((UT)(upper) - (UT)(lower)) /     \
                                                       (UT)(incr)) + 1)                      \
                : ((lower) < (upper) ? 0 : (uint64_t)((UT)((UT)(lower) - (UT)(upper)) /     \
                                                       (UT)(-(incr))) + 1))

#define DEFINE_STATIC_INIT(SUFFIX, T, UT, ST)                                                 \
    void __kmpc_for_static_init_##SUFFIX(ident_t *loc, kmp_int32 gtid, kmp_int32 sched,       \
                                         kmp_int32 *plast, T *plower, T *pupper, ST *pstride, \
                                         ST incr, ST chunk) {                                 \
        (void)loc, (void)gtid;                                                                \
        struct omp_thread *me = omp_me();                                                     \
        T lower = *plower, upper = *pupper;                                                   \
        int ordered;                                                                          \
        uint64_t trip = TRIP(UT, lower, upper, incr);                                         \
        struct share s = split_static(base_kind(sched, &ordered), trip, (int64_t)chunk,       \
                                      me->tid, me->team->nthreads);                           \
        *pstride = (ST)((UT)s.stride * (UT)incr);                                             \
        *plast = s.last;                                                                      \
        if (s.count == 0) {                                                                   \
            *plower = (T)((UT)upper + (UT)incr);                                              \
            return;                                                                           \
        }                                                                                     \
        *plower = (T)((UT)lower + (UT)s.first * (UT)incr);                                    \
        *pupper = (T)((UT)*plower + (UT)(s.count - 1) * (UT)incr);                            \
    }

DEFINE_STATIC_INIT(4, kmp_int32, kmp_uint32, kmp_int32)
DEFINE_STATIC_INIT(4u, kmp_uint32, kmp_uint32, kmp_int32)
DEFINE_STATIC_INIT(8, kmp_int64, kmp_uint64, kmp_int64)
DEFINE_STATIC_INIT(8u, kmp_uint64, kmp_uint64, kmp_int64)

void __kmpc_for_static_fini(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
}

/* -- dispatched loops ------------------------------------------------------------------------ */

static void wait_for(atomic_int *word, int value) {
    int seen;
    while ((seen = atomic_load(word)) != value)
        fth_wait(word, seen, omp_spins());
}

static int resolve(int sched, int64_t *chunk) {
    int ordered, kind = base_kind(sched, &ordered);
    if (kind == SCH_RUNTIME || kind == 47) {
        const struct omp_icvs *icvs = omp_icvs();
        kind = icvs->run_sched;
        *chunk = icvs->run_chunk;
        if (kind == SCH_STATIC && *chunk > 0)
            kind = SCH_STATIC_CHUNKED;
    }
    switch (kind) {
    case SCH_STATIC_CHUNKED:
    case SCH_DYNAMIC:
    case SCH_GUIDED:
        return kind;
    case 39:
    case 44:
        return SCH_DYNAMIC;
    case 42:
    case 43:
    case 46:
        return SCH_GUIDED;
    default: /* static, auto, balanced, greedy */
        return SCH_STATIC;
    }
}

/* loop `seq` of the team's buffers, set up by the first thread to arrive */
static struct omp_dispatch *shared_loop(struct omp_team *team, int seq, int kind,
                                        int64_t chunk, uint64_t trip) {
    struct omp_dispatch *d = &team->dispatch[seq % OMP_DISPATCH_BUFS];
    wait_for(&d->available, seq);
    int previous = seq - OMP_DISPATCH_BUFS;
    if (atomic_compare_exchange_strong(&d->claimed, &previous, seq)) {
        d->kind = kind;
        d->chunk = chunk > 0 ? chunk : 1;
        d->trip = trip;
        atomic_store(&d->next, 0);
        atomic_store(&d->ordered, 0);
        atomic_store(&d->ready, seq);
        fth_wake_all(&d->ready);
    } else {
        wait_for(&d->ready, seq);
    }
    return d;
}

/* the calling thread's own loop, in a team spanning hosts */
static struct omp_dispatch *own_loop(struct omp_thread *me, int kind, int64_t chunk,
                                     uint64_t trip) {
    struct omp_dispatch *d = &me->own_loop;
    d->kind = kind == SCH_STATIC ? SCH_STATIC : SCH_STATIC_CHUNKED;
    d->chunk = chunk > 0 ? chunk : 1;
    d->trip = trip;
    return d;
}

static void dispatch_init(int sched, int64_t lb, int64_t st, uint64_t trip, int64_t chunk) {
    struct omp_thread *me = omp_me();
    int kind = resolve(sched, &chunk);
    int seq = (int)me->dispatch_seq++;
    struct omp_team *team = me->team;
    me->loop = team->distributed ? own_loop(me, kind, chunk, trip)
                                 : shared_loop(team, seq, kind, chunk, trip);
    me->loop_seq = seq;
    me->loop_lb = lb;
    me->loop_st = st;
    me->static_next = 0;
    me->ordered_bumped = 0;
}

static int claim_guided(struct omp_dispatch *d, int n, struct share *s) {
    uint64_t start = atomic_load(&d->next);
    while (start < d->trip) {
        uint64_t left = d->trip - start, size = left / (2 * (uint64_t)n);
        if (size < (uint64_t)d->chunk)
            size = (uint64_t)d->chunk;
        if (size > left)
            size = left;
        if (atomic_compare_exchange_weak(&d->next, &start, start + size)) {
            s->first = start;
            s->count = size;
            return 1;
        }
    }
    return 0;
}

static int claim(struct omp_thread *me, struct omp_dispatch *d, struct share *s) {
    int n = me->team->nthreads;
    switch (d->kind) {
    case SCH_STATIC:
        *s = split_static(SCH_STATIC, d->trip, 0, me->tid, n);
        return me->static_next++ == 0 && s->count > 0;
    case SCH_STATIC_CHUNKED: {
        uint64_t index = (uint64_t)me->tid + me->static_next++ * (uint64_t)n;
        s->first = index * (uint64_t)d->chunk;
        if (s->first >= d->trip)
            return 0;
        s->count = d->trip - s->first < (uint64_t)d->chunk ? d->trip - s->first : (uint64_t)d->chunk;
        return 1;
    }
    case SCH_DYNAMIC:
        s->first = atomic_fetch_add(&d->next, (uint64_t)d->chunk);
        if (s->first >= d->trip)
            return 0;
        s->count = d->trip - s->first < (uint64_t)d->chunk ? d->trip - s->first : (uint64_t)d->chunk;
        return 1;
    default:
        return claim_guided(d, n, s);
    }
}

/* the next share of the current dispatched loop; 0 (and the loop is left) when none is left */
static int dispatch_next(struct share *s) {
    struct omp_thread *me = omp_me();
    struct omp_dispatch *d = me->loop;
    if (!d)
        return 0;
    if (claim(me, d, s)) {
        s->last = s->first + s->count == d->trip;
        me->ordered_iter = s->first;
        me->ordered_bumped = 0;
        return 1;
    }
    int n = me->team->nthreads;
    if (!me->team->distributed && atomic_fetch_add(&d->finished, 1) == n - 1) {
        atomic_store(&d->finished, 0);
        atomic_store(&d->available, me->loop_seq + OMP_DISPATCH_BUFS);
        fth_wake_all(&d->available);
    }
    me->loop = NULL;
    return 0;
}

#define DEFINE_DISPATCH(SUFFIX, T, UT, ST)                                                    \
    void __kmpc_dispatch_init_##SUFFIX(ident_t *loc, kmp_int32 gtid, int sched, T lb, T ub,    \
                                       ST st, ST chunk) {                                      \
        (void)loc, (void)gtid;                                                                \
        dispatch_init(sched, (int64_t)lb, (int64_t)st, TRIP(UT, lb, ub, st), (int64_t)chunk); \
    }                                                                                          \
    int __kmpc_dispatch_next_##SUFFIX(ident_t *loc, kmp_int32 gtid, kmp_int32 *plast, T *plb, \
                                      T *pub, ST *pst) {                                       \
        (void)loc, (void)gtid;                                                                \
        struct share s;                                                                        \
        if (!dispatch_next(&s))                                                                \
            return 0;                                                                          \
        struct omp_thread *me = omp_me();                                                      \
        T lb = (T)me->loop_lb;                                                                 \
        ST st = (ST)me->loop_st;                                                               \
        *plb = (T)((UT)lb + (UT)s.first * (UT)st);                                             \
        *pub = (T)((UT)*plb + (UT)(s.count - 1) * (UT)st);                                     \
        if (pst)                                                                               \
            *pst = st;                                                                         \
        if (plast)                                                                             \
            *plast = s.last;                                                                   \
        return 1;                                                                              \
    }                                                                                          \
    void __kmpc_dispatch_fini_##SUFFIX(ident_t *loc, kmp_int32 gtid) {                        \
        (void)loc, (void)gtid;                                                                \
        omp_ordered_step();                                                                    \
    }

/* -- ordered --------------------------------------------------------------------------------- */

static void wait_turn(struct omp_thread *me) {
    if (me->team->distributed)
        fteam_ordered_wait(me->loop_seq, (int64_t)me->ordered_iter);
    else
        wait_for(&me->loop->ordered, (int)me->ordered_iter);
}

static void pass_turn(struct omp_thread *me) {
    if (me->team->distributed) {
        fteam_ordered_pass(me->loop_seq, (int64_t)(me->ordered_iter + 1));
        return;
    }
    atomic_store(&me->loop->ordered, (int)(me->ordered_iter + 1));
    fth_wake_all(&me->loop->ordered);
}

/* end of one iteration of an ordered loop: let the next iteration in if it has not been */
static void omp_ordered_step(void) {
    struct omp_thread *me = omp_me();
    if (!me->loop)
        return;
    if (!me->ordered_bumped) {
        wait_turn(me);
        pass_turn(me);
    }
    me->ordered_iter++;
    me->ordered_bumped = 0;
}

void __kmpc_ordered(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = omp_me();
    if (me->loop)
        wait_turn(me);
}

void __kmpc_end_ordered(ident_t *loc, kmp_int32 gtid) {
    (void)loc, (void)gtid;
    struct omp_thread *me = omp_me();
    if (me->loop) {
        pass_turn(me);
        me->ordered_bumped = 1;
    }
}

DEFINE_DISPATCH(4, kmp_int32, kmp_uint32, kmp_int32)
DEFINE_DISPATCH(4u, kmp_uint32, kmp_uint32, kmp_int32)
DEFINE_DISPATCH(8, kmp_int64, kmp_uint64, kmp_int64)
DEFINE_DISPATCH(8u, kmp_uint64, kmp_uint64, kmp_int64)
