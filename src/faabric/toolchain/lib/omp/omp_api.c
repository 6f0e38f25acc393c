/*
 * omp_api.c: the omp_* query and setting functions and the internal control variables.
 *
 * The ICVs are read once from the environment the guest was given (OMP_NUM_THREADS,
 * OMP_SCHEDULE, OMP_DYNAMIC, OMP_MAX_ACTIVE_LEVELS, OMP_NESTED, OMP_THREAD_LIMIT,
 * OMP_STACKSIZE). Without OMP_NUM_THREADS a team has as many threads as the host says the
 * granule may use (faabric_threads.default_team_size: the worker's slots). nthreads-var is
 * per thread; the others are process-wide. An elastic app (fteam_elastic) keeps its forks
 * elastic until the program fixes the team size: OMP_NUM_THREADS set, or any thread calling
 * omp_set_num_threads. Must not implement constructs.
 */
#include <ctype.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omp_internal.h"

static struct omp_icvs icvs;
static atomic_int icvs_state; /* 0 unset, 1 being read, 2 ready */

static int env_int(const char *name, int fallback) {
    const char *text = getenv(name);
    if (!text || !*text)
        return fallback;
    char *end;
    long value = strtol(text, &end, 10);
    return end == text || value <= 0 || value > INT_MAX ? fallback : (int)value;
}

static int env_bool(const char *name, int fallback) {
    const char *text = getenv(name);
    if (!text || !*text)
        return fallback;
    return strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0;
}

static size_t env_size(const char *name, size_t fallback) {
    const char *text = getenv(name);
    if (!text || !*text)
        return fallback;
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    switch (toupper((unsigned char)*end)) {
    case 'B': break;
    case 'M': value <<= 20; break;
    case 'G': value <<= 30; break;
    default: value <<= 10; break; /* K is the default unit */
    }
    return value >= PTHREAD_STACK_MIN && value < (1ULL << 31) ? (size_t)value : fallback;
}

static void read_schedule(void) {
    const char *text = getenv("OMP_SCHEDULE");
    icvs.run_sched = SCH_STATIC;
    icvs.run_chunk = 0;
    if (!text)
        return;
    const char *colon = strchr(text, ':');
    if (colon)
        text = colon + 1; /* monotonic: / nonmonotonic: */
    if (strncasecmp(text, "dynamic", 7) == 0)
        icvs.run_sched = SCH_DYNAMIC;
    else if (strncasecmp(text, "guided", 6) == 0)
        icvs.run_sched = SCH_GUIDED;
    else if (strncasecmp(text, "auto", 4) == 0)
        icvs.run_sched = SCH_AUTO;
    const char *comma = strchr(text, ',');
    if (comma)
        icvs.run_chunk = atoi(comma + 1);
}

static void read_icvs(void) {
    int procs = faabric_threads_default_team_size();
    icvs.procs = procs > 0 ? procs : 1;
    const char *fixed = getenv("OMP_NUM_THREADS");
    icvs.elastic = (!fixed || !*fixed) && fteam_elastic();
    icvs.nthreads = env_int("OMP_NUM_THREADS", icvs.procs);
    if (icvs.nthreads > OMP_MAX_THREADS)
        icvs.nthreads = OMP_MAX_THREADS;
    icvs.dynamic = env_bool("OMP_DYNAMIC", 0);
    icvs.max_active_levels = env_int("OMP_MAX_ACTIVE_LEVELS",
                                     env_bool("OMP_NESTED", 0) ? OMP_MAX_LEVELS : 1);
    icvs.thread_limit = env_int("OMP_THREAD_LIMIT", OMP_MAX_THREADS);
    icvs.stack_size = env_size("OMP_STACKSIZE", FTH_DEFAULT_STACK);
    read_schedule();
}

const struct omp_icvs *omp_icvs(void) {
    if (atomic_load(&icvs_state) == 2)
        return &icvs;
    int expected = 0;
    if (atomic_compare_exchange_strong(&icvs_state, &expected, 1)) {
        read_icvs();
        atomic_store(&icvs_state, 2);
        fth_wake_all(&icvs_state);
    } else {
        while ((expected = atomic_load(&icvs_state)) != 2)
            fth_wait(&icvs_state, expected, FTH_SPIN_SHORT);
    }
    return &icvs;
}

void omp_set_num_threads(int n) {
    if (n <= 0)
        return;
    omp_icvs();
    icvs.elastic = 0; /* the program chose its team sizes */
    omp_me()->nthreads_var = n;
}

int omp_get_num_threads(void) {
    return omp_me()->team->nthreads;
}

int omp_get_max_threads(void) {
    int n = omp_me()->nthreads_var, limit = omp_icvs()->thread_limit;
    return n < limit ? n : limit;
}

int omp_get_thread_num(void) {
    return omp_me()->tid;
}

int omp_get_num_procs(void) {
    return omp_icvs()->procs;
}

int omp_in_parallel(void) {
    return omp_me()->team->active_level > 0;
}

void omp_set_dynamic(int on) {
    omp_icvs();
    icvs.dynamic = on != 0;
}

int omp_get_dynamic(void) {
    return omp_icvs()->dynamic;
}

void omp_set_nested(int on) {
    omp_icvs();
    icvs.max_active_levels = on ? OMP_MAX_LEVELS : 1;
}

int omp_get_nested(void) {
    return omp_icvs()->max_active_levels > 1;
}

int omp_get_thread_limit(void) {
    return omp_icvs()->thread_limit;
}

void omp_set_max_active_levels(int levels) {
    omp_icvs();
    if (levels >= 0)
        icvs.max_active_levels = levels;
}

int omp_get_max_active_levels(void) {
    return omp_icvs()->max_active_levels;
}

int omp_get_supported_active_levels(void) {
    return OMP_MAX_LEVELS;
}

int omp_get_level(void) {
    return omp_me()->team->level;
}

int omp_get_active_level(void) {
    return omp_me()->team->active_level;
}

int omp_get_ancestor_thread_num(int level) {
    struct omp_thread *me = omp_me();
    if (level == 0)
        return 0;
    if (level < 0 || level > me->team->level || level > OMP_MAX_LEVELS)
        return -1;
    return level == me->team->level ? me->tid : me->ancestor_tid[level - 1];
}

int omp_get_team_size(int level) {
    struct omp_thread *me = omp_me();
    if (level == 0)
        return 1;
    if (level < 0 || level > me->team->level || level > OMP_MAX_LEVELS)
        return -1;
    return level == me->team->level ? me->team->nthreads : me->ancestor_size[level - 1];
}

void omp_set_schedule(omp_sched_t kind, int chunk) {
    static const int kinds[] = {SCH_STATIC, SCH_STATIC, SCH_DYNAMIC, SCH_GUIDED, SCH_AUTO};
    int plain = (int)kind & ~(int)omp_sched_monotonic;
    omp_icvs();
    icvs.run_sched = plain >= 1 && plain <= 4 ? kinds[plain] : SCH_STATIC;
    icvs.run_chunk = chunk;
}

void omp_get_schedule(omp_sched_t *kind, int *chunk) {
    const struct omp_icvs *now = omp_icvs();
    switch (now->run_sched) {
    case SCH_DYNAMIC: *kind = omp_sched_dynamic; break;
    case SCH_GUIDED: *kind = omp_sched_guided; break;
    case SCH_AUTO: *kind = omp_sched_auto; break;
    default: *kind = omp_sched_static; break;
    }
    *chunk = now->run_chunk;
}

omp_proc_bind_t omp_get_proc_bind(void) { return omp_proc_bind_false; }
int omp_in_final(void) { return 0; }
int omp_get_cancellation(void) { return 0; }
int omp_get_max_task_priority(void) { return 0; }
int omp_get_num_teams(void) { return 1; }
int omp_get_team_num(void) { return 0; }
int omp_get_num_devices(void) { return 0; }
int omp_get_default_device(void) { return 0; }
void omp_set_default_device(int device) { (void)device; }
int omp_is_initial_device(void) { return 1; }
int omp_get_initial_device(void) { return 0; }
int omp_get_device_num(void) { return 0; }

double omp_get_wtime(void) {
    return (double)fth_now_ns(CLOCK_MONOTONIC) * 1e-9;
}

double omp_get_wtick(void) {
    return 1e-9;
}
