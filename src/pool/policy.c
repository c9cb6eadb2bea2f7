/* Pool policy: pure decisions (see policy.h). */
#include "pool/policy.h"

#include <stdlib.h>
#include <string.h>

unsigned pool_policy_limit(unsigned max_instances, unsigned auto_limit, unsigned min_instances) {
    unsigned l = max_instances ? max_instances : auto_limit;
    if (l < min_instances) l = min_instances;
    return l ? l : 1;
}

unsigned pool_policy_spawns_needed(unsigned queued, unsigned starting, unsigned counted,
                                   unsigned limit, unsigned min_instances) {
    if (counted >= limit) return 0;
    unsigned want = queued > starting ? queued - starting : 0;
    unsigned below_min = min_instances > counted ? min_instances - counted : 0;
    if (below_min > want) want = below_min;
    unsigned room = limit - counted;
    return want < room ? want : room;
}

unsigned pool_policy_starts_allowed(unsigned wanted, unsigned starting, unsigned max_starts) {
    if (max_starts == 0) max_starts = 1;
    unsigned room = max_starts > starting ? max_starts - starting : 0;
    return wanted < room ? wanted : room;
}

pool_warm_step_t pool_policy_warm_step(const pool_warm_counts_t *c, unsigned limit,
                                       unsigned max_starts) {
    pool_warm_step_t s = {0};
    s.retire_all = c->old > 0 && c->new_ready >= limit;
    s.done = c->old == 0 && c->leaving == 0;
    if (s.retire_all || c->old == 0) return s;
    unsigned want = c->old > c->new_coming ? c->old - c->new_coming : 0;
    unsigned n_new = c->new_ready + c->new_coming;
    unsigned room_new = limit > n_new ? limit - n_new : 0;
    if (want > room_new) want = room_new;
    unsigned all = limit + (max_starts ? max_starts : 1);
    unsigned room_all = all > c->counted ? all - c->counted : 0;
    if (want > room_all) want = room_all;
    s.starts = pool_policy_starts_allowed(want, c->unready, max_starts);
    return s;
}

bool pool_policy_may_end_idle(unsigned counted, unsigned min_instances) {
    return counted > min_instances;
}

bool pool_policy_queue_accepts(unsigned queued, unsigned queue_length, unsigned startable) {
    return (uint64_t)queued < (uint64_t)queue_length + startable;
}

unsigned pool_policy_group_limit(unsigned limit, unsigned group) {
    if (group < 2) return limit;
    unsigned l = limit - limit % group;
    return l < group ? group : l;
}

unsigned pool_policy_groups_to_start(unsigned wanted, unsigned counted, unsigned limit,
                                     unsigned group) {
    if (group < 2) return wanted;
    if (wanted == 0 || counted >= limit) return 0;
    unsigned room = limit - counted;
    unsigned by_want = wanted / group + (wanted % group != 0);
    unsigned by_room = room / group + (room % group != 0);
    return by_want < by_room ? by_want : by_room;
}

unsigned pool_policy_group_request_limit(unsigned request_limit, unsigned group) {
    if (group < 2) return request_limit;
    uint64_t l = (uint64_t)request_limit * group;
    return l > UINT32_MAX ? UINT32_MAX : (unsigned)l;
}

bool pool_policy_group_idle_ends(bool all_idle, uint64_t now, uint64_t last_idle_since,
                                 unsigned idle_timeout, unsigned counted, unsigned group,
                                 unsigned min_instances) {
    if (!all_idle || !pool_policy_idle_expired(now, last_idle_since, idle_timeout)) return false;
    unsigned left = counted >= group ? counted - group : 0;
    return left >= min_instances;
}

/* The value as php-cgi reads it: atoi(), so "12abc" is 12 and garbage is 0 (no limit). Reading it
 * the same way matters: a different reading would bring back the race the limit avoids. A negative
 * value makes php-cgi refuse to start; it is 0 here. */
static unsigned parse_like_atoi(const char *s) {
    long long v = strtoll(s, NULL, 10); /* saturates on overflow */
    if (v <= 0) return 0;
    return v > 0x7fffffffLL ? 0x7fffffffu : (unsigned)v; /* atoi() yields an int */
}

unsigned pool_policy_env_number(const char *const *env, size_t n_env, const char *name,
                                bool *found) {
    size_t len = strlen(name);
    unsigned value = 0;
    *found = false;
    for (size_t i = 0; i < n_env && env[i]; i++) {
        if (strncmp(env[i], name, len) != 0 || env[i][len] != '=') continue;
        *found = true;
        value = parse_like_atoi(env[i] + len + 1);
    }
    return value;
}

unsigned pool_policy_php_max_requests(const char *const *env, size_t n_env, bool *found) {
    return pool_policy_env_number(env, n_env, "PHP_FCGI_MAX_REQUESTS", found);
}

bool pool_policy_is_php_cgi(const char *full_path) {
    if (full_path == NULL) return false;
    const char *base = strrchr(full_path, '/');
    base = base ? base + 1 : full_path;
    if (strncmp(base, "php-cgi", 7) == 0) return true;
    return strncmp(base, "php", 3) == 0 && strstr(base, "-cgi") != NULL;
}

unsigned pool_policy_request_limit(unsigned instance_max_requests, unsigned php_max_requests) {
    if (instance_max_requests == 0) return php_max_requests;
    if (php_max_requests == 0) return instance_max_requests;
    return instance_max_requests < php_max_requests ? instance_max_requests : php_max_requests;
}

bool pool_policy_recycle_after(uint64_t completed, unsigned request_limit) {
    return request_limit != 0 && completed >= request_limit;
}

bool pool_policy_idle_expired(uint64_t now, uint64_t idle_since, unsigned idle_timeout) {
    return idle_timeout != 0 && now >= idle_since &&
           now - idle_since >= (uint64_t)idle_timeout * 1000;
}

bool pool_policy_is_rapid_fail(const pool_exit_facts_t *f) {
    if (f->requested) return false;
    bool in_request = f->died_in_request || (f->gone_before_answer && !f->clean_exit);
    return f->completed == 0 || in_request;
}

void pool_failwin_init(pool_failwin_t *fw) {
    memset(fw, 0, sizeof(*fw));
}

void pool_failwin_record(pool_failwin_t *fw, uint64_t now) {
    uint64_t s = now / 1000 + 1;
    size_t i = (size_t)(s % POOL_FAILWIN_BUCKETS);
    if (fw->sec[i] != s) {
        fw->sec[i] = s;
        fw->count[i] = 0;
    }
    if (fw->count[i] != UINT32_MAX) fw->count[i]++;
}

unsigned pool_failwin_count(const pool_failwin_t *fw, uint64_t now) {
    uint64_t s = now / 1000 + 1;
    uint64_t total = 0;
    for (size_t i = 0; i < POOL_FAILWIN_BUCKETS; i++)
        if (fw->sec[i] != 0 && fw->sec[i] <= s && s - fw->sec[i] < POOL_FAILWIN_BUCKETS)
            total += fw->count[i];
    return total > 0xffffffffu ? 0xffffffffu : (unsigned)total;
}

bool pool_policy_should_fail(unsigned fails_in_window, unsigned rapid_fails_per_minute) {
    return fails_in_window > rapid_fails_per_minute;
}
