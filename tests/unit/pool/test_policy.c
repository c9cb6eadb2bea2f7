/* Unit tests for src/pool/policy.c: the pool's pure decisions, as tables of cases that carry
 * __LINE__, plus simulated time for the rapid-fail window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/policy.h"

/* ---- Instance limit ---- */

static void test_limit(void **state) {
    assert_int_equal(pool_policy_limit(0, 8, 0), 8);
    assert_int_equal(pool_policy_limit(3, 8, 0), 3);
    assert_int_equal(pool_policy_limit(20, 8, 0), 20);
    assert_int_equal(pool_policy_limit(0, 0, 0), 1); /* never 0: a pool must be able to start one */
    /* minInstances: the automatic limit never goes below it; a fixed one is at least it (the
     * configuration refuses minInstances > maxInstances, the policy still never goes under) */
    assert_int_equal(pool_policy_limit(0, 4, 6), 6);
    assert_int_equal(pool_policy_limit(0, 8, 6), 8);
    assert_int_equal(pool_policy_limit(6, 8, 6), 6);
    assert_int_equal(pool_policy_limit(3, 8, 5), 5);
}

static void test_spawns_needed(void **state) {
    static const struct {
        int line;
        unsigned queued, starting, counted, limit, min, want;
    } cases[] = {
        {__LINE__, 0, 0, 0, 4, 0, 0},  /* nobody waits */
        {__LINE__, 1, 0, 0, 4, 0, 1},  /* cold start */
        {__LINE__, 3, 0, 0, 2, 0, 2},  /* capped by the limit */
        {__LINE__, 3, 1, 1, 2, 0, 1},  /* one is starting already */
        {__LINE__, 3, 2, 2, 2, 0, 0},  /* at the limit */
        {__LINE__, 1, 1, 1, 4, 0, 0},  /* the starting one will take it */
        {__LINE__, 5, 0, 4, 4, 0, 0},  /* all busy: the queue waits */
        {__LINE__, 5, 0, 6, 4, 0, 0},  /* above the limit (lowered): nothing */
        {__LINE__, 10, 2, 3, 8, 0, 5}, /* 8 needed, 5 of room */
        /* minInstances */
        {__LINE__, 0, 0, 0, 4, 2, 2},  /* at start-up: two processes before any request */
        {__LINE__, 0, 1, 1, 4, 2, 1},  /* one started already */
        {__LINE__, 0, 0, 2, 4, 2, 0},  /* there are two */
        {__LINE__, 1, 0, 0, 4, 2, 2},  /* a waiter and the minimum: the minimum covers it */
        {__LINE__, 3, 0, 0, 4, 2, 3},  /* more waiters than the minimum */
        {__LINE__, 0, 0, 0, 3, 5, 3},  /* never past the limit */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = pool_policy_spawns_needed(cases[i].queued, cases[i].starting,
                                                 cases[i].counted, cases[i].limit, cases[i].min);
        if (got != cases[i].want)
            fail_msg("line %d: got %u want %u", cases[i].line, got, cases[i].want);
    }
}

static void test_starts_allowed(void **state) {
    static const struct {
        int line;
        unsigned wanted, starting, max_starts, want;
    } cases[] = {
        {__LINE__, 60, 0, 4, 4},  /* a growth from 4 to 64: four at a time */
        {__LINE__, 60, 3, 4, 1},  /* one finished starting: one more */
        {__LINE__, 60, 4, 4, 0},  /* four starting: none */
        {__LINE__, 2, 0, 4, 2},   /* fewer wanted than allowed */
        {__LINE__, 5, 6, 4, 0},   /* more starting than allowed (lowered live): none */
        {__LINE__, 3, 0, 0, 1},   /* 0 counts as 1 */
        {__LINE__, 0, 0, 4, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = pool_policy_starts_allowed(cases[i].wanted, cases[i].starting,
                                                  cases[i].max_starts);
        if (got != cases[i].want)
            fail_msg("line %d: got %u want %u", cases[i].line, got, cases[i].want);
    }
}

/* A warm recycle of a pool of 8 (maxConcurrentStarts 4), step by step, then the corners. */
static void test_warm_step(void **state) {
    static const struct {
        int line;
        unsigned old, leaving, new_ready, new_coming, counted, unready, limit, max_starts;
        bool retire_all, done;
        unsigned starts;
    } cases[] = {
        /* old  leav rdy  com  cnt unrdy lim ms */
        {__LINE__, 8, 0, 0, 0, 8, 0, 8, 4, false, false, 4},  /* the start: four at once */
        {__LINE__, 8, 0, 0, 4, 12, 4, 8, 4, false, false, 0}, /* four starting: none more */
        {__LINE__, 7, 0, 1, 3, 11, 3, 8, 4, false, false, 1}, /* one ready retired an idle one */
        {__LINE__, 7, 1, 1, 3, 12, 3, 8, 4, false, false, 0}, /* ... a busy one: drains, counted */
        {__LINE__, 4, 0, 4, 4, 12, 4, 8, 4, false, false, 0}, /* the second half on its way */
        {__LINE__, 0, 2, 8, 0, 10, 0, 8, 4, false, false, 0}, /* all replaced, two finishing */
        {__LINE__, 0, 0, 8, 0, 8, 0, 8, 4, false, true, 0},   /* over */
        {__LINE__, 0, 0, 0, 0, 0, 0, 8, 4, false, true, 0},   /* nothing was old */
        {__LINE__, 3, 0, 8, 0, 11, 0, 8, 4, true, false, 0},  /* limit reached: retire the rest */
        {__LINE__, 8, 0, 2, 2, 12, 2, 4, 4, false, false, 0}, /* limit lowered to 4: 4 new at most */
        {__LINE__, 8, 0, 0, 0, 8, 0, 8, 1, false, false, 1},  /* maxConcurrentStarts 1 */
        {__LINE__, 8, 0, 0, 0, 8, 0, 8, 0, false, false, 1},  /* 0 counts as 1 */
        {__LINE__, 2, 0, 0, 0, 2, 3, 8, 4, false, false, 1},  /* 3 others starting (a growth) */
        {__LINE__, 6, 2, 0, 0, 12, 0, 8, 4, false, false, 0}, /* counted at limit + 4: wait */
        {__LINE__, 1, 0, 0, 3, 4, 3, 8, 4, false, false, 0},  /* more coming than old: none */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pool_warm_counts_t c = {cases[i].old,     cases[i].leaving, cases[i].new_ready,
                                cases[i].new_coming, cases[i].counted, cases[i].unready};
        pool_warm_step_t s = pool_policy_warm_step(&c, cases[i].limit, cases[i].max_starts);
        if (s.retire_all != cases[i].retire_all || s.done != cases[i].done ||
            s.starts != cases[i].starts)
            fail_msg("line %d: got retire_all %d done %d starts %u, want %d %d %u", cases[i].line,
                     s.retire_all, s.done, s.starts, cases[i].retire_all, cases[i].done,
                     cases[i].starts);
    }
}

static void test_may_end_idle(void **state) {
    assert_true(pool_policy_may_end_idle(3, 0));
    assert_true(pool_policy_may_end_idle(3, 2));
    assert_false(pool_policy_may_end_idle(2, 2)); /* minInstances = 2: the last two stay */
    assert_false(pool_policy_may_end_idle(1, 2));
    assert_false(pool_policy_may_end_idle(0, 0));
}

static void test_queue_accepts(void **state) {
    static const struct {
        int line;
        unsigned queued, queue_length, startable;
        bool want;
    } cases[] = {
        {__LINE__, 0, 0, 1, true},      /* queueLength 0, cold pool: wait for the process */
        {__LINE__, 1, 0, 1, false},     /* ... but only one per process that can start */
        {__LINE__, 0, 0, 0, false},     /* queueLength 0, all busy: 503 */
        {__LINE__, 0, 1, 0, true},
        {__LINE__, 1, 1, 0, false},     /* full */
        {__LINE__, 1, 1, 1, true},      /* one is covered by a starting process */
        {__LINE__, 999, 1000, 0, true},
        {__LINE__, 1000, 1000, 0, false},
        {__LINE__, 4294967295u, 4294967295u, 4, true}, /* no overflow */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = pool_policy_queue_accepts(cases[i].queued, cases[i].queue_length,
                                             cases[i].startable);
        if (got != cases[i].want) fail_msg("line %d: got %d", cases[i].line, got);
    }
}

/* ---- Recycling ---- */

static void test_php_max_requests(void **state) {
    static const struct {
        int line;
        const char *env[4];
        bool found;
        unsigned want;
    } cases[] = {
        {__LINE__, {NULL}, false, 0},
        {__LINE__, {"PATH=/bin", NULL}, false, 0},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=5", NULL}, true, 5},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=5", "PHP_FCGI_MAX_REQUESTS=7", NULL}, true, 7},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=0", NULL}, true, 0},   /* php-cgi: no limit */
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=", NULL}, true, 0},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=abc", NULL}, true, 0}, /* atoi("abc") = 0 */
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=12abc", NULL}, true, 12},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS= 9", NULL}, true, 9},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=-3", NULL}, true, 0},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTS=99999999999", NULL}, true, 0x7fffffffu},
        {__LINE__, {"PHP_FCGI_MAX_REQUESTSX=5", NULL}, false, 0},
        {__LINE__, {"XPHP_FCGI_MAX_REQUESTS=5", NULL}, false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        while (cases[i].env[n]) n++;
        bool found = !cases[i].found;
        unsigned got = pool_policy_php_max_requests(cases[i].env, n, &found);
        if (got != cases[i].want || found != cases[i].found)
            fail_msg("line %d: got %u/%d want %u/%d", cases[i].line, got, found, cases[i].want,
                     cases[i].found);
        /* NULL-terminated form, as for environ */
        got = pool_policy_php_max_requests(cases[i].env, SIZE_MAX, &found);
        if (got != cases[i].want || found != cases[i].found)
            fail_msg("line %d (SIZE_MAX): got %u/%d", cases[i].line, got, found);
    }
}

static void test_env_number(void **state) {
    const char *env[] = {"PHP_FCGI_CHILDREN=4", "PHP_FCGI_CHILDREN_X=9", "A=1", "PHP_FCGI=2", NULL};
    bool found;
    assert_int_equal(pool_policy_env_number(env, 4, "PHP_FCGI_CHILDREN", &found), 4);
    assert_true(found);
    assert_int_equal(pool_policy_env_number(env, 4, "PHP_FCGI", &found), 2);
    assert_true(found);
    assert_int_equal(pool_policy_env_number(env, 4, "PHP", &found), 0);
    assert_false(found);
    assert_int_equal(pool_policy_env_number(env, 1, "A", &found), 0); /* only the first entry */
    assert_false(found);
}

static void test_is_php_cgi(void **state) {
    assert_true(pool_policy_is_php_cgi("/usr/bin/php-cgi"));
    assert_true(pool_policy_is_php_cgi("/usr/bin/php-cgi8.2"));
    assert_true(pool_policy_is_php_cgi("/opt/php/bin/php8.3-cgi"));
    assert_true(pool_policy_is_php_cgi("php-cgi"));
    assert_false(pool_policy_is_php_cgi("/usr/bin/php"));
    assert_false(pool_policy_is_php_cgi("/usr/sbin/php-fpm8.2"));
    assert_false(pool_policy_is_php_cgi("/srv/php-cgi/app")); /* the directory does not count */
    assert_false(pool_policy_is_php_cgi("/usr/bin/fcgi_app"));
    assert_false(pool_policy_is_php_cgi(NULL));
}

static void test_request_limit(void **state) {
    assert_int_equal(pool_policy_request_limit(0, 0), 0);
    assert_int_equal(pool_policy_request_limit(10000, 0), 10000);
    assert_int_equal(pool_policy_request_limit(0, 500), 500);
    assert_int_equal(pool_policy_request_limit(10000, 500), 500);
    assert_int_equal(pool_policy_request_limit(5, 500), 5);
}

static void test_recycle_after(void **state) {
    assert_false(pool_policy_recycle_after(0, 0));
    assert_false(pool_policy_recycle_after(1000000, 0)); /* 0 = never */
    assert_false(pool_policy_recycle_after(4, 5));
    assert_true(pool_policy_recycle_after(5, 5));
    assert_true(pool_policy_recycle_after(6, 5));
    assert_true(pool_policy_recycle_after(1, 1));
}

static void test_idle_expired(void **state) {
    assert_false(pool_policy_idle_expired(1000000, 0, 0)); /* 0 = never */
    assert_false(pool_policy_idle_expired(10999, 1000, 10));
    assert_true(pool_policy_idle_expired(11000, 1000, 10));
    assert_true(pool_policy_idle_expired(50000, 1000, 10));
    assert_false(pool_policy_idle_expired(500, 1000, 10)); /* clock before idle_since: not yet */
}

/* ---- Rapid fails ---- */

static void test_is_rapid_fail(void **state) {
    static const struct {
        int line;
        pool_exit_facts_t f;
        bool want;
    } cases[] = {
        /* requested, completed, died_in_request, gone_before_answer, clean_exit */
        {__LINE__, {true, 0, false, false, false}, false},  /* ended by the pool */
        {__LINE__, {true, 0, true, false, false}, false},   /* ended by the pool mid-request */
        {__LINE__, {false, 0, false, false, false}, true},  /* died before serving anything */
        {__LINE__, {false, 0, false, false, true}, true},   /* exit(0) at start: still a fail */
        {__LINE__, {false, 3, false, false, true}, false},  /* between requests, after serving */
        {__LINE__, {false, 3, false, false, false}, false}, /* crashed while idle, after serving */
        {__LINE__, {false, 3, true, false, false}, true},   /* died in the middle of a request */
        {__LINE__, {false, 3, false, true, true}, false},   /* closed a new request, exit 0 */
        {__LINE__, {false, 3, false, true, false}, true},   /* closed a new request, crashed */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = pool_policy_is_rapid_fail(&cases[i].f);
        if (got != cases[i].want) fail_msg("line %d: got %d", cases[i].line, got);
    }
}

static void test_failwin_window(void **state) {
    pool_failwin_t fw;
    pool_failwin_init(&fw);
    assert_int_equal(pool_failwin_count(&fw, 0), 0);
    pool_failwin_record(&fw, 0);      /* second 0 */
    pool_failwin_record(&fw, 999);    /* second 0 */
    pool_failwin_record(&fw, 30500);  /* second 30 */
    assert_int_equal(pool_failwin_count(&fw, 30500), 3);
    assert_int_equal(pool_failwin_count(&fw, 59999), 3); /* second 59: still inside */
    assert_int_equal(pool_failwin_count(&fw, 60000), 1); /* second 60: second 0 left */
    assert_int_equal(pool_failwin_count(&fw, 89999), 1);
    assert_int_equal(pool_failwin_count(&fw, 90000), 0);
    /* A bucket is reused for a later second: its old count must not leak in. */
    pool_failwin_record(&fw, 120100); /* second 120, same bucket as 0 and 60 */
    assert_int_equal(pool_failwin_count(&fw, 120100), 1);
}

/* Simulated load: a process that dies at start every `gap` ms, rapidFailsPerMinute = limit. */
static uint64_t time_to_fail(unsigned limit, uint64_t gap) {
    pool_failwin_t fw;
    pool_failwin_init(&fw);
    for (uint64_t now = 0; now < 3600 * 1000; now += gap) {
        pool_failwin_record(&fw, now);
        if (pool_policy_should_fail(pool_failwin_count(&fw, now), limit)) return now;
    }
    return UINT64_MAX;
}

static void test_failwin_simulated(void **state) {
    /* 10 per minute allowed: one fail every second fails the pool at the 11th (t = 10 s). */
    assert_int_equal(time_to_fail(10, 1000), 10000);
    /* One every 7 s is at most 9 in any 60 s window: never fails. */
    assert_true(time_to_fail(10, 7000) == UINT64_MAX);
    /* A spawn storm (every 10 ms) fails at once after limit + 1. */
    assert_int_equal(time_to_fail(10, 10), 100);
    /* rapidFailsPerMinute = 0: the first fail marks the pool failed. */
    assert_int_equal(time_to_fail(0, 1000), 0);
}

static void test_should_fail(void **state) {
    assert_false(pool_policy_should_fail(0, 0));
    assert_true(pool_policy_should_fail(1, 0));
    assert_false(pool_policy_should_fail(10, 10)); /* "more than" */
    assert_true(pool_policy_should_fail(11, 10));
}

/* preforkChildren (SPEC 4.9b): limits and starts in whole groups; N < 2 changes nothing. */
static void test_group_limit(void **state) {
    (void)state;
    assert_int_equal(pool_policy_group_limit(7, 0), 7);
    assert_int_equal(pool_policy_group_limit(7, 1), 7);
    assert_int_equal(pool_policy_group_limit(8, 4), 8);
    assert_int_equal(pool_policy_group_limit(11, 4), 8);  /* whole groups only */
    assert_int_equal(pool_policy_group_limit(3, 4), 4);   /* at least one group */
    assert_int_equal(pool_policy_group_limit(1, 4), 4);
    assert_int_equal(pool_policy_group_limit(12, 4), 12);
}

static void test_groups_to_start(void **state) {
    (void)state;
    assert_int_equal(pool_policy_groups_to_start(3, 0, 8, 0), 3); /* ordinary pool: as asked */
    assert_int_equal(pool_policy_groups_to_start(0, 0, 8, 4), 0);
    assert_int_equal(pool_policy_groups_to_start(1, 0, 8, 4), 1);  /* one request: one group */
    assert_int_equal(pool_policy_groups_to_start(5, 0, 8, 4), 2);
    assert_int_equal(pool_policy_groups_to_start(20, 0, 8, 4), 2); /* the limit: 2 groups */
    assert_int_equal(pool_policy_groups_to_start(20, 4, 8, 4), 1);
    assert_int_equal(pool_policy_groups_to_start(20, 8, 8, 4), 0);
    /* two busy children of a draining group still count: the new group may start */
    assert_int_equal(pool_policy_groups_to_start(4, 2, 4, 4), 1);
    assert_int_equal(pool_policy_groups_to_start(4, 6, 4, 4), 0);
}

static void test_group_request_limit(void **state) {
    (void)state;
    assert_int_equal(pool_policy_group_request_limit(500, 0), 500);
    assert_int_equal(pool_policy_group_request_limit(500, 4), 2000);
    assert_int_equal(pool_policy_group_request_limit(0, 4), 0); /* never stays never */
    assert_int_equal(pool_policy_group_request_limit(UINT32_MAX / 2, 4), UINT32_MAX);
}

static void test_group_idle_ends(void **state) {
    (void)state;
    /* all idle, the last request ended 300 s ago, idleTimeout 300: it ends */
    assert_true(pool_policy_group_idle_ends(true, 400000, 100000, 300, 8, 4, 0));
    /* one connection busy (or its last request recent): it stays */
    assert_false(pool_policy_group_idle_ends(false, 400000, 100000, 300, 8, 4, 0));
    assert_false(pool_policy_group_idle_ends(true, 400000, 100001, 300, 8, 4, 0));
    /* idleTimeout = 0: never */
    assert_false(pool_policy_group_idle_ends(true, 400000, 0, 0, 8, 4, 0));
    /* minInstances: 8 counted, a group of 4 may go while 4 stay for minInstances = 4 ... */
    assert_true(pool_policy_group_idle_ends(true, 400000, 0, 300, 8, 4, 4));
    /* ... not when fewer would stay (a minimum between groups keeps the whole group) */
    assert_false(pool_policy_group_idle_ends(true, 400000, 0, 300, 8, 4, 5));
    assert_false(pool_policy_group_idle_ends(true, 400000, 0, 300, 4, 4, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_spawns_needed),    cmocka_unit_test(test_may_end_idle),
        cmocka_unit_test(test_starts_allowed),    cmocka_unit_test(test_queue_accepts),
        cmocka_unit_test(test_warm_step),
        cmocka_unit_test(test_php_max_requests), cmocka_unit_test(test_env_number),
        cmocka_unit_test(test_is_php_cgi),
        cmocka_unit_test(test_request_limit),    cmocka_unit_test(test_recycle_after),
        cmocka_unit_test(test_idle_expired),     cmocka_unit_test(test_is_rapid_fail),
        cmocka_unit_test(test_failwin_window),   cmocka_unit_test(test_failwin_simulated),
        cmocka_unit_test(test_should_fail),
        cmocka_unit_test(test_group_limit),      cmocka_unit_test(test_groups_to_start),
        cmocka_unit_test(test_group_request_limit), cmocka_unit_test(test_group_idle_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
