/* The maxInstances = 0 controller: see autotune.h. */
#include "pool/autotune.h"

#include <stdio.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)
#define GAIN_MIN 1.05        /* a growth must bring 5 % more completed requests */
#define LOSS_MAX 0.95        /* a shrink may lose at most 5 % */
#define CPU_SATURATED 0.90   /* machine CPU busy fraction: no growth at or above */
#define CPU_SHRINK 0.95      /* ... and a downward probe at or above */
#define CPU_IDLE 0.50        /* below: grow by doubling */
#define CPU_BOUND 0.50       /* CPUs per busy process at or above: the processes are CPU-bound */
#define WAIT_MIN_MS 1.0      /* average wait of the requests that queued, to count as waiting */
#define MEM_RESERVE_MIN (64ull * 1024 * 1024)

unsigned autotune_initial(unsigned ncpu) {
    if (ncpu == 0) ncpu = 1;
    unsigned twice = ncpu > AUTOTUNE_MAX / 2 ? AUTOTUNE_MAX : 2 * ncpu;
    return twice > 4 ? twice : 4;
}

unsigned autotune_cpu_cap(unsigned ncpu) {
    if (ncpu == 0) ncpu = 1;
    unsigned four = ncpu > AUTOTUNE_MAX / 4 ? AUTOTUNE_MAX : 4 * ncpu;
    return four > 8 ? four : 8;
}

void autotune_init(autotune_t *a, unsigned ncpu, uint64_t now_ms) {
    memset(a, 0, sizeof(*a));
    a->ncpu = ncpu ? ncpu : 1;
    a->initial = autotune_initial(a->ncpu);
    a->limit = a->initial;
    a->last_wait_ms = now_ms;
}

void autotune_set_step(autotune_t *a, unsigned step) {
    a->step = step >= 2 ? step : 0;
    if (a->step && a->limit % a->step) a->limit += a->step - a->limit % a->step;
}

void autotune_set_min(autotune_t *a, unsigned min) {
    a->min = min > AUTOTUNE_MAX ? AUTOTUNE_MAX : min;
    if (a->limit < a->min) a->limit = a->min;
}

static unsigned umin(unsigned a, unsigned b) {
    return a < b ? a : b;
}

static unsigned umax(unsigned a, unsigned b) {
    return a > b ? a : b;
}

static uint64_t mem_reserve(const autotune_sample_t *s) {
    uint64_t r = s->mem_total / 20;
    return r > MEM_RESERVE_MIN ? r : MEM_RESERVE_MIN;
}

static bool cpu_known(const autotune_sample_t *s) {
    return s->cpu_machine >= 0;
}

/* CPUs wanted per busy process (on a CPU or waiting for one), or -1 when unknown. */
static double cpu_per_busy(const autotune_sample_t *s) {
    if (s->cpu_pool < 0 || s->busy_avg < 0.5) return -1;
    return (s->cpu_pool + (s->runq_pool > 0 ? s->runq_pool : 0)) / s->busy_avg;
}

static bool cpu_bound(const autotune_sample_t *s) {
    return cpu_per_busy(s) >= CPU_BOUND;
}

/* Double the limit (rather than add a quarter) while the CPU is mostly idle, or while the idle
 * CPU holds twice the processes at what each busy one uses now: processes that mostly wait (I/O, a
 * database) need little CPU, whoever else keeps the machine busy. */
static bool grows_fast(const autotune_t *a, const autotune_sample_t *s) {
    if (!cpu_known(s) || s->cpu_machine < CPU_IDLE) return true;
    if (s->cpu_pool < 0 || s->busy_avg < 0.5) return false;
    double each = s->cpu_pool / s->busy_avg;
    double idle = (1.0 - s->cpu_machine) * a->ncpu;
    return (double)a->limit * each <= idle;
}

/* Set the limit and the reason. `judge` (+1/-1): the change is a probe to judge next step. */
static bool change(autotune_t *a, const autotune_sample_t *s, unsigned to, int judge, double tput,
                   const char *why) {
    if (to < 1) to = 1;
    if (to < a->min) to = a->min;
    if (to > AUTOTUNE_MAX) to = AUTOTUNE_MAX;
    if (a->step >= 2) { /* whole groups: a growth takes the next one, a shrink gives one up */
        unsigned r = to % a->step;
        if (r && to > a->limit) to += a->step - r;
        else if (r) to -= r;
        if (to < a->step) to = a->step;
    }
    if (to == a->limit) return false;
    snprintf(a->reason, sizeof(a->reason), "%u -> %u: %s", a->limit, to, why);
    a->prev_limit = a->limit;
    a->limit = to;
    a->probing = judge;
    a->tput_before = tput;
    if (judge >= 0) a->shrinking = false; /* anything but a downward probe ends a chain of them */
    a->changes++;
    a->last_change_ms = s->now_ms;
    return true;
}

bool autotune_step(autotune_t *a, const autotune_sample_t *s) {
    char why[160];
    double secs = (double)(s->interval_ms ? s->interval_ms : 1) / 1000.0;
    double tput = (double)s->completed / secs;
    double avg_wait = s->waited ? (double)s->wait_ms / (double)s->waited : 0;
    bool waiting = (s->waited > 0 && avg_wait >= WAIT_MIN_MS) || s->queued_max > 0 || s->refused;
    bool binding = s->busy_max >= a->limit || s->counted >= a->limit;
    bool demand = waiting && binding;
    int cpu_pct = cpu_known(s) ? (int)(s->cpu_machine * 100 + 0.5) : -1;

    if (a->ceiling && s->now_ms >= a->ceiling_until) a->ceiling = 0;
    if (a->floor && s->now_ms >= a->floor_until) a->floor = 0;
    if (waiting) {
        a->last_wait_ms = s->now_ms;
        a->used_peak = 0;
    }
    a->used_peak = umax(a->used_peak, s->busy_max);

    /* 1. Memory pressure comes first. */
    uint64_t reserve = mem_reserve(s);
    if (s->mem_available && s->mem_available < reserve && a->limit > 1) {
        unsigned to = umax(1, umin(a->limit, s->counted) * 3 / 4);
        snprintf(why, sizeof(why), "memory is short (MemAvailable %.0f MiB, reserve %.0f MiB)",
                 (double)s->mem_available / MIB, (double)reserve / MIB);
        a->ceiling = to;
        a->ceiling_until = s->now_ms + AUTOTUNE_HOLD_MS;
        return change(a, s, to, 0, tput, why);
    }

    /* 2. Judge the last change, on the interval that followed it, once the processes a growth
     * allowed have started: processes still starting (maxConcurrentStarts) add nothing yet, and
     * the growth would be undone for it. Nothing else changes meanwhile. */
    if (a->probing > 0 && s->starting > 0 && a->deferred < AUTOTUNE_DEFER_MAX) {
        a->deferred++;
        return false;
    }
    a->deferred = 0;
    int judged = a->probing;
    a->probing = 0;
    if (judged > 0 && demand && tput < a->tput_before * GAIN_MIN) {
        snprintf(why, sizeof(why),
                 "%u processes completed no more requests than %u (%.0f/s vs %.0f/s)", a->limit,
                 a->prev_limit, tput, a->tput_before);
        a->ceiling = a->prev_limit;
        a->ceiling_until = s->now_ms + AUTOTUNE_HOLD_MS;
        return change(a, s, a->prev_limit, 0, tput, why);
    }
    if (judged > 0 && !waiting && s->busy_max <= a->prev_limit && a->prev_limit >= a->initial) {
        /* the waits that caused the growth are gone, and the processes it allowed were not needed
         * (a burst of reconnecting clients, the spawns themselves): no reason to keep it */
        snprintf(why, sizeof(why), "the %u processes more were not needed (at most %u busy, no "
                 "waits)", a->limit - a->prev_limit, s->busy_max);
        a->ceiling = a->prev_limit;
        a->ceiling_until = s->now_ms + AUTOTUNE_HOLD_MS;
        return change(a, s, a->prev_limit, 0, tput, why);
    }
    if (judged < 0 && demand && tput < a->ref_tput * LOSS_MAX) {
        /* judged against where the chain of downward probes started, so that small losses do
         * not add up step after step */
        snprintf(why, sizeof(why), "%u processes completed fewer requests than %u (%.0f/s vs "
                 "%.0f/s)", a->limit, a->ref_limit, tput, a->ref_tput);
        a->floor = a->ref_limit;
        a->floor_until = s->now_ms + AUTOTUNE_HOLD_MS;
        return change(a, s, a->ref_limit, 0, tput, why);
    }

    /* 3. CPU-bound processes: never above max(8, 4 x CPUs) once the CPU is saturated. */
    unsigned cap = autotune_cpu_cap(a->ncpu);
    bool saturated = cpu_known(s) && s->cpu_machine >= CPU_SATURATED;
    if (saturated && cpu_bound(s) && a->limit > cap) {
        snprintf(why, sizeof(why), "CPU-bound processes (each wants %.2f CPU) and the CPU is "
                 "%d%% busy",
                 cpu_per_busy(s), cpu_pct);
        return change(a, s, cap, 0, tput, why);
    }

    /* 4. Grow while requests wait for a process and the machine has room. A saturated CPU stops
     * the growth of CPU-bound processes only: processes that mostly wait (I/O, a database) add
     * throughput on a busy machine too, and each growth is judged by what it brought. */
    if (demand && (!saturated || !cpu_bound(s)) && (a->ceiling == 0 || a->limit < a->ceiling)) {
        unsigned to = grows_fast(a, s) ? a->limit * 2 : a->limit + umax(1, a->limit / 4);
        /* no further than the demand seen: the busy processes plus the queue */
        to = umin(to, umax(s->busy_max, a->limit) + umax(1, s->queued_max));
        if (a->ceiling) to = umin(to, a->ceiling);
        if (cpu_bound(s)) to = umin(to, cap);
        if (s->mem_available && s->rss_avg) {
            uint64_t room = s->mem_available > reserve ? (s->mem_available - reserve) / s->rss_avg
                                                       : 0;
            to = umin(to, a->limit + (unsigned)umin((unsigned)(room > 100000 ? 100000 : room),
                                                    AUTOTUNE_MAX));
        }
        if (to > a->limit) {
            char cpu[32] = "CPU not measured yet";
            if (cpu_pct >= 0) snprintf(cpu, sizeof(cpu), "CPU %d%% busy", cpu_pct);
            snprintf(why, sizeof(why), "requests waited %.0f ms on average, %u queued at most, %s",
                     avg_wait, s->queued_max, cpu);
            return change(a, s, to, +1, tput, why);
        }
    }

    /* 5. Saturated CPU while requests wait for CPU-bound processes: try fewer processes, down to
     * the initial limit at the lowest (the server and other programs share the CPUs, so a pool of
     * one process per CPU loses throughput that the probes' 5 % cannot see step by step). */
    unsigned low = umax(a->floor, a->initial);
    if (demand && cpu_known(s) && s->cpu_machine >= CPU_SHRINK && cpu_bound(s) && a->limit > low) {
        unsigned to = umax(low, a->limit - umax(1, a->limit / 4));
        if (!a->shrinking) {
            a->ref_tput = tput;
            a->ref_limit = a->limit;
        }
        snprintf(why, sizeof(why), "the CPU is %d%% busy: trying fewer processes", cpu_pct);
        bool changed = change(a, s, to, -1, tput, why);
        a->shrinking = changed;
        return changed;
    }

    /* 6. Nothing waited for a long time: bring an unused limit down towards what was used. */
    if (!waiting && s->now_ms - a->last_wait_ms >= AUTOTUNE_DECAY_MS) {
        unsigned used = a->used_peak + 1;
        unsigned to = umax(umax(a->initial, used), a->limit - a->limit / 4);
        a->last_wait_ms = s->now_ms; /* one step per decay period */
        a->used_peak = 0;
        if (to < a->limit) {
            snprintf(why, sizeof(why), "no request waited for %d s; at most %u processes were busy",
                     AUTOTUNE_DECAY_MS / 1000, used - 1);
            return change(a, s, to, 0, tput, why);
        }
    }
    return false;
}
