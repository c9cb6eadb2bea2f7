/* Unit tests for src/pool/autotune.c: the maxInstances = 0 controller driven by a simulated
 * machine. The model is a closed loop of `conns` clients (as wrk keeps its connections busy): each
 * request needs `cpu_ms` of CPU and `wait_ms` of waiting (a database, an API); `ncpu` CPUs are
 * shared by the pool and by the rest of the machine (the server and the load generator), which
 * need `other_ms` of CPU per request. With P processes the throughput is the smaller of what the
 * processes can turn around, P / (cpu + wait), and what the CPUs can do, ncpu / (cpu + other).
 * Busy processes that the CPUs cannot serve wait in the run queue. A deterministic +-noise can be
 * put on the throughput the controller sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/autotune.h"

typedef struct model {
    unsigned ncpu, conns;
    double cpu_ms, wait_ms, other_ms;
    double noise;            /* relative, e.g. 0.03 for +-3 % */
    double external;         /* fraction of the CPUs used by something else (another tenant) */
    uint64_t mem_total, mem_free_base, rss; /* bytes; memory left = base - processes x rss */
    uint32_t rng;
} model_t;

/* Requests per second with `p` processes. */
static double model_tput(const model_t *m, unsigned p) {
    if (p > m->conns) p = m->conns;
    double by_procs = p * 1000.0 / (m->cpu_ms + m->wait_ms);
    double by_cpu = m->ncpu * (1.0 - m->external) * 1000.0 / (m->cpu_ms + m->other_ms);
    return by_procs < by_cpu ? by_procs : by_cpu;
}

static double rnd(model_t *m) { /* -1..1 */
    m->rng = m->rng * 1103515245u + 12345u;
    return ((m->rng >> 8) & 0xffff) / 32767.5 - 1.0;
}

/* What the pool would measure over one interval with the limit `limit`. */
static autotune_sample_t model_sample(model_t *m, unsigned limit, uint64_t now) {
    autotune_sample_t s = {0};
    unsigned p = limit < m->conns ? limit : m->conns;
    double x = model_tput(m, p);
    double secs = AUTOTUNE_INTERVAL_MS / 1000.0;
    s.now_ms = now;
    s.interval_ms = AUTOTUNE_INTERVAL_MS;
    s.completed = (uint64_t)(x * (1.0 + m->noise * rnd(m)) * secs);
    s.acquired = (uint64_t)(x * secs);
    unsigned queued = m->conns > p ? m->conns - p : 0;
    s.queued_max = queued;
    s.waited = queued ? s.acquired : 0;
    /* each queued request waits until `queued` requests ahead of it went through */
    s.wait_ms = queued ? (uint64_t)((double)s.waited * queued / x * 1000.0) : 0;
    s.counted = p;
    s.busy_max = p;
    s.busy_avg = p;
    double cpu_used = x * (m->cpu_ms + m->other_ms) / 1000.0;
    s.cpu_machine = m->external + cpu_used / m->ncpu;
    if (s.cpu_machine > 1) s.cpu_machine = 1;
    s.cpu_pool = x * m->cpu_ms / 1000.0;
    /* a process cycle takes p / x seconds; what is not CPU or waiting is run-queue time */
    double rq = (double)p / x - (m->cpu_ms + m->wait_ms) / 1000.0;
    s.runq_pool = rq > 0 ? rq * x : 0;
    if (m->mem_total) {
        s.mem_total = m->mem_total;
        uint64_t used = (uint64_t)p * m->rss;
        s.mem_available = m->mem_free_base > used + 1024 * 1024 ? m->mem_free_base - used
                                                                : 1024 * 1024;
        s.rss_avg = m->rss;
    }
    return s;
}

typedef struct run {
    unsigned final, lo, hi;  /* the limit at the end; its range over the last `tail` steps */
    unsigned changes_tail;
    double tput_tail;        /* average true throughput over the tail */
} run_t;

static run_t simulate(autotune_t *a, model_t *m, uint64_t *now, unsigned steps, unsigned tail,
                      int verbose) {
    run_t r = {.lo = ~0u};
    for (unsigned i = 0; i < steps; i++) {
        *now += AUTOTUNE_INTERVAL_MS;
        autotune_sample_t s = model_sample(m, a->limit, *now);
        bool changed = autotune_step(a, &s);
        if (verbose && changed) printf("  t=%4llus %s\n", (unsigned long long)(*now / 1000), a->reason);
        if (i >= steps - tail) {
            if (changed) r.changes_tail++;
            if (a->limit < r.lo) r.lo = a->limit;
            if (a->limit > r.hi) r.hi = a->limit;
            r.tput_tail += model_tput(m, a->limit) / tail;
        }
    }
    r.final = a->limit;
    return r;
}

static double best_fixed(const model_t *m, unsigned *best_n) {
    static const unsigned fixed[] = {1, 2, 4, 8, 16, 32, 64};
    double best = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        double x = model_tput(m, fixed[i]);
        if (x > best * 1.0001) {
            best = x;
            *best_n = fixed[i];
        }
    }
    return best;
}

static void check_run(const char *name, model_t *m, unsigned ncpu_cap_check) {
    autotune_t a;
    uint64_t now = 0;
    autotune_init(&a, m->ncpu, now);
    printf("%s:\n", name);
    run_t r = simulate(&a, m, &now, 150, 100, 1); /* 5 minutes; judge the last 200 s */
    unsigned best_n = 0;
    double best = best_fixed(m, &best_n);
    printf("  limit %u (range %u..%u, %u changes in the last 100 steps), %.0f req/s vs best fixed "
           "%.0f (maxInstances %u): %.2f\n",
           r.final, r.lo, r.hi, r.changes_tail, r.tput_tail, best, best_n, r.tput_tail / best);
    if (r.tput_tail < 0.9 * best)
        fail_msg("%s: %.0f req/s < 0.90 x best fixed %.0f", name, r.tput_tail, best);
    if (ncpu_cap_check && r.hi > autotune_cpu_cap(m->ncpu))
        fail_msg("%s: limit reached %u on a CPU-bound page (cap %u)", name, r.hi,
                 autotune_cpu_cap(m->ncpu));
    /* no wild oscillation: at most a probe and its undoing every hold period */
    unsigned max_changes = 2 * (100 * AUTOTUNE_INTERVAL_MS / AUTOTUNE_HOLD_MS + 1);
    if (r.changes_tail > max_changes)
        fail_msg("%s: %u changes in 100 steps (> %u)", name, r.changes_tail, max_changes);
    if (r.hi > 2 * r.lo + 1) fail_msg("%s: limit swung between %u and %u", name, r.lo, r.hi);
}

/* cpu.php on 2 CPUs: 5 ms of CPU, wrk at 64 connections. */
static void test_cpu_bound(void **state) {
    (void)state;
    model_t m = {.ncpu = 2, .conns = 64, .cpu_ms = 5, .wait_ms = 0, .other_ms = 0.3, .noise = 0.03};
    check_run("cpu-bound, 2 CPUs", &m, 1);
    model_t m8 = {.ncpu = 8, .conns = 256, .cpu_ms = 5, .other_ms = 0.3, .noise = 0.03};
    check_run("cpu-bound, 8 CPUs", &m8, 1);
}

/* A fresh controller on 2 CPUs reaches the 64 connections' processes within 20 s (10 steps). */
static void check_reaches_64_in_20s(const char *name, model_t *m) {
    autotune_t a;
    uint64_t now = 0;
    autotune_init(&a, 2, now);
    simulate(&a, m, &now, 10, 1, 0);
    if (a.limit < 64) fail_msg("%s: limit %u after 20 s, want 64", name, a.limit);
}

/* io.php: 20 ms of waiting and a little CPU; the limit must reach the 64 connections, quickly. */
static void test_wait_bound(void **state) {
    (void)state;
    model_t m = {.ncpu = 2, .conns = 64, .cpu_ms = 0.3, .wait_ms = 20, .other_ms = 0.2,
                 .noise = 0.03};
    check_run("wait-bound", &m, 0);
    check_reaches_64_in_20s("wait-bound", &m);
}

/* Another program keeps the CPUs 95 % busy: processes that wait still add throughput. */
static void test_wait_bound_on_a_busy_machine(void **state) {
    (void)state;
    model_t m = {.ncpu = 2, .conns = 64, .cpu_ms = 0.1, .wait_ms = 20, .other_ms = 0.05,
                 .external = 0.95, .noise = 0.03};
    check_run("wait-bound, busy machine", &m, 0);
    /* With 70 % taken by another program the CPUs still hold all 64 connections' processes: the
     * limit grows as fast as on an idle machine, 64 within 20 s. */
    model_t m70 = m;
    m70.external = 0.70;
    check_run("wait-bound, machine 70 % busy", &m70, 0);
    check_reaches_64_in_20s("wait-bound, machine 70 % busy", &m70);
}

/* 5 ms CPU + 20 ms waiting on 2 CPUs: about 10 processes saturate the CPUs. */
static void test_mixed(void **state) {
    (void)state;
    model_t m = {.ncpu = 2, .conns = 64, .cpu_ms = 5, .wait_ms = 20, .other_ms = 0.3,
                 .noise = 0.03};
    check_run("mixed", &m, 0);
    model_t few = {.ncpu = 4, .conns = 6, .cpu_ms = 2, .wait_ms = 50, .other_ms = 0.2,
                   .noise = 0.02};
    check_run("mixed, few clients", &few, 0);
}

/* io.php at 64 connections on 2 CPUs, and a controller that has grown to it. */
static model_t io_pool_at_64(autotune_t *a, uint64_t *now) {
    model_t io = {.ncpu = 2, .conns = 64, .cpu_ms = 0.3, .wait_ms = 20, .other_ms = 0.2};
    *now = 0;
    autotune_init(a, 2, *now);
    simulate(a, &io, now, 20, 1, 0);
    assert_int_equal(a->limit, 64);
    return io;
}

/* The load changes from waiting to CPU: the limit comes back under the CPU-bound cap. */
static void test_shift_to_cpu_bound(void **state) {
    (void)state;
    autotune_t a;
    uint64_t now;
    io_pool_at_64(&a, &now);
    model_t cpu = {.ncpu = 2, .conns = 64, .cpu_ms = 5, .other_ms = 0.3};
    run_t r = simulate(&a, &cpu, &now, 30, 20, 1);
    assert_true(r.hi <= autotune_cpu_cap(2));
}

/* Memory running short: the limit comes down, and growth stops at what memory holds. */
static void test_memory(void **state) {
    (void)state;
    const uint64_t mib = 1024 * 1024;
    /* 1 GiB machine, 400 MiB free before the pool, 30 MiB per process: reserve 64 MiB leaves
     * room for 11 processes, though the wait-bound load would like 64. */
    model_t m = {.ncpu = 2, .conns = 64, .cpu_ms = 0.3, .wait_ms = 20, .other_ms = 0.2,
                 .mem_total = 1024 * mib, .mem_free_base = 400 * mib, .rss = 30 * mib};
    autotune_t a;
    uint64_t now = 0;
    autotune_init(&a, 2, now);
    run_t r = simulate(&a, &m, &now, 60, 40, 1);
    assert_true(r.hi <= 12);
    assert_true(r.final >= 8);
    /* then something else takes the memory: the pool shrinks */
    m.mem_free_base = 200 * mib;
    simulate(&a, &m, &now, 5, 1, 1);
    assert_true(a.limit <= 6);
    assert_non_null(strstr(a.reason, "memory"));
}

/* Nothing waits any more: an unused high limit decays towards what is used, never below the start. */
static void test_decay(void **state) {
    (void)state;
    autotune_t a;
    uint64_t now;
    model_t io = io_pool_at_64(&a, &now);
    io.conns = 3; /* three clients now: no queue */
    simulate(&a, &io, &now, 60 * 15 / 2, 1, 1); /* fifteen minutes */
    assert_int_equal(a.limit, autotune_initial(2));
    /* and a burst brings it back up */
    io.conns = 40;
    simulate(&a, &io, &now, 10, 1, 0);
    assert_true(a.limit >= 40);
}

/* minInstances: the pre-started processes are the controller's floor. A limit under it is raised
 * at once, and neither the decay of an unused limit nor memory pressure goes below it. */
static void test_min_instances_floor(void **state) {
    (void)state;
    autotune_t a;
    uint64_t now;
    model_t io = io_pool_at_64(&a, &now);
    autotune_set_min(&a, 10);
    io.conns = 3;
    simulate(&a, &io, &now, 60 * 15 / 2, 1, 1); /* fifteen quiet minutes */
    assert_int_equal(a.limit, 10);
    autotune_t b;
    autotune_init(&b, 2, 0);
    assert_int_equal(b.limit, autotune_initial(2));
    autotune_set_min(&b, 12);
    assert_int_equal(b.limit, 12);
    autotune_sample_t s = {.now_ms = 2000, .interval_ms = 2000, .counted = 12, .cpu_machine = -1,
                           .cpu_pool = -1, .mem_total = 4ull << 30, .mem_available = 1 << 20};
    autotune_step(&b, &s); /* memory is short: shrink, but not below the minimum */
    assert_int_equal(b.limit, 12);
    autotune_set_min(&b, 0); /* and without one, memory pressure shrinks it */
    s.now_ms += 2000;
    assert_true(autotune_step(&b, &s));
    assert_true(b.limit < 12);
}

/* preforkChildren = 3 (SPEC 4.9b): whatever the controller decides, the limit is a multiple of
 * the group size at every step, growing and shrinking in whole groups, and never below one. */
static void test_step_whole_groups(void **state) {
    (void)state;
    autotune_t a;
    uint64_t now = 0;
    autotune_init(&a, 2, now);
    autotune_set_step(&a, 3);
    assert_int_equal(a.limit % 3, 0);
    assert_true(a.limit >= autotune_initial(2));
    model_t io = {.ncpu = 2, .conns = 40, .cpu_ms = 0.3, .wait_ms = 20, .other_ms = 0.2};
    unsigned hi = 0;
    for (unsigned i = 0; i < 200; i++) {
        now += AUTOTUNE_INTERVAL_MS;
        if (i == 100) io.conns = 2; /* the load goes: the limit decays, in groups */
        autotune_sample_t s = model_sample(&io, a.limit, now);
        autotune_step(&a, &s);
        assert_int_equal(a.limit % 3, 0);
        assert_true(a.limit >= 3);
        if (a.limit > hi) hi = a.limit;
    }
    assert_true(hi >= 39); /* it grew to the demand (40 clients) */
    assert_true(a.limit < hi);
    autotune_set_step(&a, 0); /* and without groups, any value again */
    assert_int_equal(a.step, 0);
}

/* maxConcurrentStarts: a growth is judged once its processes have started, not while they still
 * start (they add no throughput yet); the wait is bounded. */
static void test_growth_judged_after_its_starts(void **state) {
    (void)state;
    autotune_t a;
    autotune_init(&a, 1, 0);
    autotune_sample_t s = {.now_ms = 2000, .interval_ms = 2000, .completed = 400, .acquired = 400,
                           .waited = 400, .wait_ms = 400 * 100, .queued_max = 20, .counted = 4,
                           .busy_max = 4, .busy_avg = 4, .cpu_machine = -1, .cpu_pool = -1};
    assert_true(autotune_step(&a, &s));
    assert_int_equal(a.limit, 8);
    /* next interval: four of the new processes still start, no more completed: not undone */
    s.now_ms += 2000;
    s.counted = 8;
    s.starting = 4;
    assert_false(autotune_step(&a, &s));
    assert_int_equal(a.limit, 8);
    /* started: twice the requests completed, the growth is kept (and it may grow again) */
    s.now_ms += 2000;
    s.starting = 0;
    s.completed = 800;
    s.busy_max = 8;
    s.busy_avg = 8;
    autotune_step(&a, &s);
    assert_true(a.limit >= 8);
    /* a growth whose processes never finish starting is judged after AUTOTUNE_DEFER_MAX waits */
    autotune_t b;
    autotune_init(&b, 1, 0);
    s.now_ms = 2000;
    s.completed = 400;
    s.counted = s.busy_max = 4;
    s.busy_avg = 4;
    assert_true(autotune_step(&b, &s));
    assert_int_equal(b.limit, 8);
    s.counted = 8;
    s.starting = 4;
    for (int i = 0; i < AUTOTUNE_DEFER_MAX; i++) {
        s.now_ms += 2000;
        assert_false(autotune_step(&b, &s));
        assert_int_equal(b.limit, 8);
    }
    s.now_ms += 2000;
    assert_true(autotune_step(&b, &s)); /* no gain: undone */
    assert_int_equal(b.limit, 4);
}

/* Unknown CPU and memory figures (no /proc): it still grows on waits and is judged by throughput. */
static void test_without_proc(void **state) {
    (void)state;
    autotune_t a;
    autotune_init(&a, 1, 0);
    autotune_sample_t s = {.now_ms = 2000, .interval_ms = 2000, .completed = 400, .acquired = 400,
                           .waited = 400, .wait_ms = 400 * 100, .queued_max = 20, .counted = 4,
                           .busy_max = 4, .busy_avg = 4, .cpu_machine = -1, .cpu_pool = -1};
    assert_true(autotune_step(&a, &s));
    assert_int_equal(a.limit, 8);
    s.now_ms += 2000; /* 8 busy now, but no more completed: undone, and held */
    s.counted = s.busy_max = 8;
    s.busy_avg = 8;
    assert_true(autotune_step(&a, &s));
    assert_int_equal(a.limit, 4);
    assert_non_null(strstr(a.reason, "no more requests"));
    s.now_ms += 2000;
    s.counted = s.busy_max = 4;
    s.busy_avg = 4;
    assert_false(autotune_step(&a, &s));
    assert_int_equal(a.limit, 4);
}

/* A saturated CPU where every process fewer costs a little throughput (the pool's share of the
 * CPUs against the server and the load generator): each downward probe alone loses less than
 * 5 %, together they would lose more. The probes are judged against where they started, so the
 * limit does not ratchet down. */
static double share_tput(unsigned p) {
    return 1000.0 * (1.0 - 0.012 * (16.0 - (p > 16 ? 16 : p)));
}

static void test_downward_probes_do_not_ratchet(void **state) {
    (void)state;
    autotune_t a;
    uint64_t now = 0;
    autotune_init(&a, 4, now); /* initial 8, CPU-bound cap 16 */
    a.limit = 16;
    double sum = 0;
    unsigned lo = a.limit;
    for (unsigned i = 0; i < 60; i++) {
        now += AUTOTUNE_INTERVAL_MS;
        unsigned p = a.limit;
        double x = share_tput(p);
        autotune_sample_t s = {.now_ms = now, .interval_ms = AUTOTUNE_INTERVAL_MS,
                               .completed = (uint64_t)(x * 2), .acquired = (uint64_t)(x * 2),
                               .waited = (uint64_t)(x * 2), .wait_ms = (uint64_t)(x * 2 * 50),
                               .queued_max = 64 - p, .counted = p, .busy_max = p,
                               .busy_avg = p, .cpu_machine = 1.0, .cpu_pool = 3.5,
                               .runq_pool = p - 3.5};
        if (autotune_step(&a, &s)) printf("  t=%3llus %s\n", (unsigned long long)(now / 1000), a.reason);
        if (a.limit < lo) lo = a.limit;
        if (i >= 30) sum += share_tput(a.limit) / 30;
    }
    if (lo < 9) fail_msg("the downward probes went down to %u", lo);
    if (sum < 0.95 * share_tput(16)) fail_msg("%.0f req/s < 0.95 x %.0f", sum, share_tput(16));
}

/* 64 clients and a limit of 64, then one interval of waits (the clients reconnect while their
 * old requests finish): the limit grows, the next interval shows the extra processes were not
 * needed, and the growth is undone rather than kept until the slow decay. */
static void test_transient_waits_do_not_keep_a_growth(void **state) {
    (void)state;
    autotune_t a;
    uint64_t now;
    model_t io = io_pool_at_64(&a, &now);
    now += AUTOTUNE_INTERVAL_MS;
    autotune_sample_t spike = model_sample(&io, 64, now);
    spike.queued_max = 40;
    spike.waited = spike.acquired / 2;
    spike.wait_ms = spike.waited * 200;
    assert_true(autotune_step(&a, &spike));
    assert_true(a.limit > 64);
    simulate(&a, &io, &now, 2, 1, 1);
    assert_int_equal(a.limit, 64);
    assert_non_null(strstr(a.reason, "not needed"));
}

static void test_constants(void **state) {
    (void)state;
    assert_int_equal(autotune_initial(0), 4);
    assert_int_equal(autotune_initial(2), 4);
    assert_int_equal(autotune_initial(8), 16);
    assert_int_equal(autotune_initial(100000), AUTOTUNE_MAX);
    assert_int_equal(autotune_cpu_cap(1), 8);
    assert_int_equal(autotune_cpu_cap(2), 8);
    assert_int_equal(autotune_cpu_cap(16), 64);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),     cmocka_unit_test(test_cpu_bound),
        cmocka_unit_test(test_wait_bound),    cmocka_unit_test(test_wait_bound_on_a_busy_machine),
        cmocka_unit_test(test_mixed),         cmocka_unit_test(test_downward_probes_do_not_ratchet),
        cmocka_unit_test(test_shift_to_cpu_bound), cmocka_unit_test(test_memory),
        cmocka_unit_test(test_decay),         cmocka_unit_test(test_min_instances_floor),
        cmocka_unit_test(test_step_whole_groups),
        cmocka_unit_test(test_growth_judged_after_its_starts),         cmocka_unit_test(test_transient_waits_do_not_keep_a_growth),         cmocka_unit_test(test_without_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
