/* glassnet's thread pool for its compiled loops: one job at a time, cut into parts.
 *
 * gn_run(part, args, bounds, parts) runs part(args, bounds[k], bounds[k + 1]) for every k:
 * part 0 on the calling thread, the others on worker threads the pool starts when first
 * needed and keeps. A worker polls for the next job for a short while (POLLS) after each,
 * then sleeps on a condition variable, so that a layer's loops start on every thread within
 * microseconds of each other without keeping a core busy between steps. Handing work to
 * Python threads instead cost about 90 microseconds a call here, a few milliseconds a step.
 *
 * The pool is glassnet's own: it changes no setting of the process (no OpenMP, no BLAS
 * threads). After fork() the child starts with no workers and makes its own when it needs
 * them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "compiled.h"

#define MAX_WORKERS 255
#define POLLS 2000 /* about 100 microseconds of polling before a worker sleeps */

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int workers;                /* started, each with its part index 1 .. workers */
static atomic_long generation;     /* the number of jobs posted so far */
static atomic_int pending, failed; /* workers yet to answer this job; whether a part failed */
static long first_seen[MAX_WORKERS + 1]; /* the jobs posted before each worker was started */
static gn_part job_part;
static const gn_slot *job_args;
static const long *job_bounds;
static int job_parts;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *index)
{
    int me = (int)(intptr_t)index;
    long seen = first_seen[me]; /* not the count now: the job it was started for may be in */
    for (;;) {
        long now = atomic_load_explicit(&generation, memory_order_acquire);
        for (int polls = 0; now == seen && polls < POLLS; polls++) {
            relax();
            now = atomic_load_explicit(&generation, memory_order_acquire);
        }
        if (now == seen) {
            pthread_mutex_lock(&sleep_lock);
            while ((now = atomic_load(&generation)) == seen) pthread_cond_wait(&wake, &sleep_lock);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = now;
        if (me < job_parts && job_part(job_args, job_bounds[me], job_bounds[me + 1]))
            atomic_store(&failed, 1);
        /* every worker answers every job, with a part or without: none can still be reading
         * this job's fields when the next one is posted */
        atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
    }
    return NULL;
}

static void forget_workers(void) /* in a fork()ed child: the parent's workers are not here */
{
    pthread_mutex_t fresh_mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    run_lock = fresh_mutex;
    sleep_lock = fresh_mutex;
    wake = fresh_cond;
    workers = 0;
}

static int start_workers(int wanted)
{
    static int registered;
    if (!registered) {
        pthread_atfork(NULL, NULL, forget_workers);
        registered = 1;
    }
    while (workers < wanted && workers < MAX_WORKERS) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        first_seen[workers + 1] = atomic_load(&generation);
        int error = pthread_create(&thread, &attr, worker, (void *)(intptr_t)(workers + 1));
        pthread_attr_destroy(&attr);
        if (error) break;
        workers++;
    }
    return workers;
}

int gn_run(gn_part part, const gn_slot *args, const long *bounds, int parts)
{
    if (parts <= 1) return parts == 1 ? part(args, bounds[0], bounds[1]) : 0;
    pthread_mutex_lock(&run_lock);
    int started = start_workers(parts - 1);
    int shared = started + 1 < parts ? started + 1 : parts; /* parts the pool takes */
    job_part = part;
    job_args = args;
    job_bounds = bounds;
    job_parts = shared;
    atomic_store(&failed, 0);
    atomic_store(&pending, started);
    pthread_mutex_lock(&sleep_lock);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&sleep_lock);
    int error = part(args, bounds[0], bounds[1]);
    for (int k = shared; k < parts; k++) /* parts no worker could be started for */
        error |= part(args, bounds[k], bounds[k + 1]);
    for (long polls = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0; polls++)
        if (polls > POLLS) sched_yield(); else relax();
    error |= atomic_load(&failed);
    pthread_mutex_unlock(&run_lock);
    return error ? -1 : 0;
}
