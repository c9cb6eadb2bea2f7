/* maxInstances = 0: the controller that sets a pool's process limit (SPEC §4.2).
 *
 * PURE: no clock, no /proc, no libuv. pool.c measures (procstat.c reads /proc) and calls
 * autotune_step() every AUTOTUNE_INTERVAL_MS with what happened during the interval; the unit tests
 * (tests/unit/pool/test_autotune.c) drive it with simulated CPU-bound, wait-bound and mixed loads.
 *
 * The idea: more processes help only while requests wait for one AND the extra processes turn into
 * more completed requests. So the controller
 *   - grows the limit while requests wait and the limit is what holds them back, and memory holds
 *     more processes: by doubling while the CPU is mostly idle or its idle part holds twice the
 *     processes at what each uses now, else by a quarter, never
 *     past the demand it saw (busy + queued) or a memory budget; a saturated CPU stops growth only
 *     for CPU-bound processes (see below): processes that mostly wait add throughput anyway;
 *   - then checks each growth once the processes it allowed have started (processes start at most
 *     maxConcurrentStarts at a time, so a growth may take several intervals to be in place; the
 *     judgement waits while processes are starting, at most AUTOTUNE_DEFER_MAX intervals): if the
 *     interval did not complete at least 5 % more requests,
 *     the growth is undone and the limit held there for AUTOTUNE_HOLD_MS (then it may probe again);
 *     so is a growth after which nothing waited and no more processes were busy than before (the
 *     waits were a passing burst: clients reconnecting, or the spawns of the last growth);
 *   - under CPU saturation while requests wait for CPU-bound processes, probes downwards (a
 *     quarter less, not below the initial limit): fewer processes that complete as many requests
 *     are better (less memory, less latency); once throughput falls more than 5 % below where the
 *     downward probes started, the limit goes back there and is held;
 *   - when the pool's processes are CPU-bound it never goes above max(8, 4 x CPUs), and shrinks to
 *     it under CPU saturation. CPU-bound means a busy process wants a CPU at least half of the
 *     time: time on a CPU plus time runnable but waiting for one (/proc/PID/schedstat), per busy
 *     process. Counting the run-queue wait keeps a starved CPU-bound pool CPU-bound (8 processes
 *     on 2 CPUs each get a quarter of one), while a pool that waits on I/O stays below;
 *   - shrinks by a quarter when MemAvailable falls under a reserve (5 % of RAM, at least 64 MiB),
 *     and never grows beyond what the remaining memory holds at the pool's average process size;
 *   - once nothing has waited for AUTOTUNE_DECAY_MS, lowers an unused limit step by step towards
 *     what was used (never below the initial limit).
 * One change per interval at most, and every change is judged one interval later, so the limit
 * cannot swing wildly: it moves by at most 2x per interval and only on measured evidence. */
#ifndef FCGIHOST_POOL_AUTOTUNE_H
#define FCGIHOST_POOL_AUTOTUNE_H
#include <stdbool.h>
#include <stdint.h>

#define AUTOTUNE_INTERVAL_MS 2000   /* how often pool.c calls autotune_step */
#define AUTOTUNE_HOLD_MS 30000      /* how long a limit found too high/low is not probed again */
#define AUTOTUNE_DECAY_MS 60000     /* no waits for this long: an unused limit may come down */
#define AUTOTUNE_MAX 1024           /* the limit never goes above this */
#define AUTOTUNE_DEFER_MAX 3        /* intervals a growth's judgement waits for starting processes */

typedef struct autotune_sample {
    uint64_t now_ms;
    uint64_t interval_ms;     /* the length of the interval measured (> 0) */
    uint64_t completed;       /* requests completed during the interval */
    uint64_t acquired;        /* processes handed to requests during the interval */
    uint64_t waited;          /* ... of which the request had to queue */
    uint64_t wait_ms;         /* total queue wait of those requests */
    uint64_t refused;         /* requests refused with 503 because the queue was full */
    unsigned queued_max;      /* the longest the queue was during the interval */
    unsigned counted;         /* processes counting against the limit now */
    unsigned starting;        /* ... of which are still starting (maxConcurrentStarts spreads the
                                 starts of a growth over time) */
    unsigned busy_max;        /* the most processes busy at once during the interval */
    double busy_avg;          /* processes busy, averaged over the interval */
    double cpu_machine;       /* fraction of all CPUs busy during the interval, 0..1; < 0 unknown */
    double cpu_pool;          /* CPUs used by the pool's processes (1.0 = one CPU); < 0 unknown */
    double runq_pool;         /* CPUs' worth of time they spent runnable, waiting for a CPU */
    uint64_t mem_available;   /* MemAvailable, bytes; 0 unknown */
    uint64_t mem_total;       /* MemTotal, bytes; 0 unknown */
    uint64_t rss_avg;         /* the pool's average private resident memory per process; 0 unknown */
} autotune_sample_t;

typedef struct autotune {
    unsigned ncpu;            /* CPUs available (>= 1) */
    unsigned initial;         /* the limit it starts from and does not decay below */
    unsigned min;             /* minInstances: the limit never goes below it (0: none) */
    unsigned limit;           /* the limit now */
    unsigned step;            /* preforkChildren (SPEC 4.9b): the limit moves in multiples of
                                 this; 0: by any amount */
    /* the change being judged */
    int probing;              /* +1 grew, -1 shrank (judge it next step), 0 nothing to judge */
    unsigned prev_limit;
    double tput_before;       /* requests/s in the interval before the change */
    unsigned deferred;        /* intervals the judgement of a growth waited for its starts */
    /* a chain of downward probes is judged against the limit and throughput it started from */
    bool shrinking;
    unsigned ref_limit;
    double ref_tput;
    /* limits found wrong, not probed again until the time given */
    unsigned ceiling, floor;  /* 0: none */
    uint64_t ceiling_until, floor_until;
    uint64_t last_wait_ms;    /* when requests last waited (now_ms of that step) */
    unsigned used_peak;       /* the most processes busy since the last wait or decay */
    uint64_t changes;
    uint64_t last_change_ms;
    char reason[200];         /* why the last change was made ("" before any) */
} autotune_t;

/* The limit to start from: max(4, 2 x ncpu) (IIS 7.0's default is 4; php-fpm's 5). */
unsigned autotune_initial(unsigned ncpu);
/* The CPU-bound ceiling of SPEC §4.2: max(8, 4 x ncpu). */
unsigned autotune_cpu_cap(unsigned ncpu);

void autotune_init(autotune_t *a, unsigned ncpu, uint64_t now_ms);
/* minInstances (SPEC 4.9): the pre-started processes are part of the pool the controller tunes,
 * so its limit never goes below them: a limit under `min` is raised to it now (not counted as a
 * change), and no later step (decay, downward probe, memory pressure) goes below it. */
void autotune_set_min(autotune_t *a, unsigned min);
/* preforkChildren = N >= 2 (SPEC 4.9b): instances come in groups of N, so every change moves the
 * limit to a multiple of N (a growth up to the next one, a shrink down, never below N), and the
 * limit now is rounded up to one. 0 or 1: no rounding. */
void autotune_set_step(autotune_t *a, unsigned step);

/* One decision. Returns true when a->limit changed; a->reason then says from what, to what and
 * why (for the log and `ctl status`). */
bool autotune_step(autotune_t *a, const autotune_sample_t *s);

#endif
