/*
 * omp_internal.h: the OpenMP runtime's teams, per-thread state and clang's ABI types.
 *
 * A top-level parallel region runs on the pool team: the encountering thread plus warm
 * worker threads that wait on their own word between regions. Nested regions, and regions
 * that find the pool busy, run serialized (a team of one). Each thread keeps its OpenMP state
 * in TLS. A pool team may be distributed: threads 0..local_n-1 run here and the others on
 * other hosts (omp_remote.c, fteam.h); its constructs then synchronise through the host.
 * Internal to the runtime; must not be included by programs.
 */
#ifndef FAABRIC_OMP_INTERNAL_H
#define FAABRIC_OMP_INTERNAL_H

#include "fteam.h"

typedef int32_t kmp_int32;
typedef uint32_t kmp_uint32;
typedef int64_t kmp_int64;
typedef uint64_t kmp_uint64;
typedef struct ident ident_t; /* source location: not read */
typedef kmp_int32 kmp_critical_name[8];
typedef void (*kmpc_micro)(kmp_int32 *gtid, kmp_int32 *btid, ...);

#define OMP_MAX_ARGS 16    /* shared variables a parallel region may capture */
#define OMP_MAX_THREADS 64 /* threads in one team */
#define OMP_DISPATCH_BUFS 7
#define OMP_MAX_LEVELS 8   /* nesting depth remembered for omp_get_ancestor_thread_num */
#define OMP_REMOTE_GTID 1000 /* gtid of thread tid on another host: OMP_REMOTE_GTID + tid */

/* clang's schedule numbers (kmp_sched_type) */
enum {
    SCH_STATIC_CHUNKED = 33,
    SCH_STATIC = 34,
    SCH_DYNAMIC = 35,
    SCH_GUIDED = 36,
    SCH_RUNTIME = 37,
    SCH_AUTO = 38,
    SCH_ORDERED_OFFSET = 32, /* kmp_ord_* = plain + 32 */
    SCH_NOMERGE_OFFSET = 128,
    SCH_MODIFIERS = (1 << 29) | (1 << 30),
};

/* one worksharing loop with a shared iteration space (dynamic, guided, ordered) */
struct omp_dispatch {
    atomic_int available; /* the loop sequence number this buffer may serve next */
    atomic_int claimed;   /* the loop sequence number whose parameters are being set */
    atomic_int ready;     /* the loop sequence number whose parameters are set */
    atomic_int finished;  /* threads done with the current loop */
    atomic_int ordered;   /* low 32 bits of the next iteration allowed into `ordered` */
    int kind;             /* SCH_STATIC, SCH_STATIC_CHUNKED, SCH_DYNAMIC or SCH_GUIDED */
    int64_t chunk;
    uint64_t trip;
    _Atomic uint64_t next; /* next unclaimed iteration (dynamic, guided) */
};

struct omp_team {
    int nthreads;
    int level;        /* nesting depth of this region (1 = outermost) */
    int active_level; /* regions with more than one thread, this one included */
    int icv_nthreads; /* nthreads-var the members inherit */
    int local_n;      /* members on this host (nthreads unless distributed) */
    int distributed;  /* members run on several hosts */
    int in_distributed; /* this team is or runs inside a distributed one: locks span hosts */
    kmpc_micro fn;
    int argc;
    void *args[OMP_MAX_ARGS];
    atomic_int bar_arrived;
    atomic_int bar_generation;
    atomic_int join_left;
    atomic_int single_claimed;
    void *volatile copy_data;
    struct omp_dispatch dispatch[OMP_DISPATCH_BUFS];
};

/* a thread's OpenMP state (one per thread, in TLS) */
struct omp_thread {
    int initialized;
    kmp_int32 gtid;
    struct omp_team *team;
    int tid;
    int nthreads_var;
    int pushed; /* from __kmpc_push_num_threads, 0 if none */
    unsigned single_seq;
    unsigned dispatch_seq;
    /* the dispatch loop in progress */
    struct omp_dispatch *loop;
    int loop_seq;
    int64_t loop_lb, loop_st;
    uint64_t static_next; /* the next chunk (static kinds) */
    uint64_t ordered_iter;
    int ordered_bumped;
    struct omp_dispatch own_loop; /* the dispatch loop's parameters in a distributed team */
    /* ancestors, for omp_get_ancestor_thread_num / omp_get_team_size */
    int ancestor_tid[OMP_MAX_LEVELS];
    int ancestor_size[OMP_MAX_LEVELS];
};

/* what a thread saves while it takes part in an inner region */
struct omp_saved {
    struct omp_team *team;
    int tid;
    int nthreads_var;
    unsigned single_seq, dispatch_seq;
    struct omp_dispatch *loop;
    int loop_seq;
    int64_t loop_lb, loop_st;
    uint64_t static_next, ordered_iter;
    int ordered_bumped;
};

/* omp_team.c */
struct omp_thread *omp_me(void);
struct omp_thread *omp_me_remote(int tid); /* omp_me of thread `tid` started on another host */
int omp_heap_spans_hosts(void); /* the caller's team spans hosts (never initialises, allocates) */
void omp_team_exclude(struct fteam_excludes *set);
void omp_team_init(struct omp_team *team, int nthreads, int level, int active_level);
void omp_enter(struct omp_thread *me, struct omp_team *team, int tid, struct omp_saved *saved);
void omp_leave(struct omp_thread *me, const struct omp_saved *saved);
void omp_barrier(struct omp_team *team);
int omp_spins(void); /* polls before sleeping: fewer when the pool outnumbers the cores */
void omp_call_micro(kmpc_micro fn, kmp_int32 gtid, kmp_int32 tid, int argc, void **args);

/* omp_api.c: internal control variables */
struct omp_icvs {
    int nthreads;
    int dynamic;
    int max_active_levels;
    int thread_limit;
    int run_sched; /* SCH_STATIC, SCH_DYNAMIC, SCH_GUIDED or SCH_AUTO */
    int run_chunk;
    int procs; /* the host's default team size: the cores the granule may use */
    int elastic; /* forks without num_threads get the host's free slots (omp_api.c) */
    size_t stack_size;
};
const struct omp_icvs *omp_icvs(void);
void omp_set_run_sched(int kind, int chunk);

/* omp_sync.c */
void omp_word_lock(kmp_critical_name *crit);
void omp_word_unlock(kmp_critical_name *crit);
void omp_sync_exclude(struct fteam_excludes *set);

/* omp_remote.c: distributed teams */
int omp_plan(int nthreads); /* threads of an nthreads team to run on this host (cached) */
int omp_available(int nthreads); /* threads of it the cluster has slots for (cached) */
int omp_remote_fork(struct omp_team *team); /* 0 once its threads local_n.. started elsewhere */
void omp_remote_join(void); /* wait for the other hosts of the region, bring in their writes */
extern int fth_atomics_remote; /* atomic_route.c: 1 while a team spans hosts, */
extern const struct fteam_excludes *fth_atomics_local; /* and its per-host ranges */
extern int64_t (*fth_atomics_call)(int32_t, int32_t, int64_t, int64_t); /* fteam_atomic */
/* the hooks of the shims' malloc_lock.c: the team-wide heap lock, taken (returning 1) when
 * the caller's team spans hosts */
int fth_team_heap_enter(void);
void fth_team_heap_leave(void);

#endif
