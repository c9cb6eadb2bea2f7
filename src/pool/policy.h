/* Pool policy: the decisions of the process pool as pure functions of settings, counters and `now`.
 *
 * PURE: no libuv, no processes, no clock. pool.c asks these functions what to do and does it; the
 * unit tests (tests/unit/pool/test_policy.c) drive them with tables and simulated time. Times are
 * milliseconds on the caller's monotonic clock (the loop's uv_now()).
 */
#ifndef FCGIHOST_POOL_POLICY_H
#define FCGIHOST_POOL_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Instance limit ---- */

/* The effective limit: max_instances when set, else the automatic one (autotune.h), and never
 * below min_instances (minInstances, SPEC 4.9; the configuration keeps it at most a non-zero
 * maxInstances) nor below 1. */
unsigned pool_policy_limit(unsigned max_instances, unsigned auto_limit, unsigned min_instances);

/* How many processes to start now: one for each queued waiter that no starting process will serve,
 * and as many as bring `counted` (starting + idle + busy + draining: processes that count against
 * the limit) up to min_instances, as long as `counted` stays within `limit`. */
unsigned pool_policy_spawns_needed(unsigned queued, unsigned starting, unsigned counted,
                                   unsigned limit, unsigned min_instances);

/* maxConcurrentStarts (SPEC 4.9): of `wanted` new processes, how many may start now while
 * `starting` processes have not finished starting (not ready yet). Never more than max_starts at
 * once (a max_starts of 0 counts as 1), so that a growth or a recycle cannot stall the machine. */
unsigned pool_policy_starts_allowed(unsigned wanted, unsigned starting, unsigned max_starts);

/* May an idle process beyond idleTimeout be ended? Not when that would leave fewer than
 * min_instances processes counting against the limit. */
bool pool_policy_may_end_idle(unsigned counted, unsigned min_instances);

/* Whether a new waiter may join a queue that holds `queued` waiters. The queue holds at most
 * queue_length waiters beyond those that processes now starting or still startable will take
 * (`startable` = starting + room under the limit): a waiter for a process being started for it is
 * not waiting behind other requests, so queueLength = 0 still lets a cold pool start processes. */
bool pool_policy_queue_accepts(unsigned queued, unsigned queue_length, unsigned startable);

/* ---- Warm recycling (SPEC 4.9; pool.c "Warm recycling") ---- */

/* The processes of a pool during a warm recycle. */
typedef struct pool_warm_counts {
    unsigned old;        /* of an earlier generation, still taking requests */
    unsigned leaving;    /* of an earlier generation, retired and finishing a request */
    unsigned new_ready;  /* of the current generation, ready (each has retired an old one) */
    unsigned new_coming; /* of the current generation, not ready yet: replacements on their way */
    unsigned counted;    /* every process counted against the limit (starting..draining) */
    unsigned unready;    /* every process still starting (for maxConcurrentStarts) */
} pool_warm_counts_t;

typedef struct pool_warm_step {
    bool retire_all;     /* the new processes are as many as the limit: retire the old ones left */
    bool done;           /* nothing old is left, serving or finishing: the recycle is over (after
                            retire_all, the next step tells, once the retired ones are gone) */
    unsigned starts;     /* replacements to start now */
} pool_warm_step_t;

/* What a warm recycle does next: one replacement on its way per old process still serving, no
 * more new processes than `limit`, no more processes counted than limit + max_starts, no more
 * than max_starts starting at once (0 counts as 1). */
pool_warm_step_t pool_policy_warm_step(const pool_warm_counts_t *c, unsigned limit,
                                       unsigned max_starts);
/* ---- Prefork groups (SPEC 4.9b) ----
 *
 * With preforkChildren = N >= 2 a started process forks N children that share its socket; the pool
 * counts them as N instances and starts and ends them together (a "group"). `group` below is N, or
 * 0 or 1 for the ordinary one process per socket (then every function is the identity). */

/* The limit in instances, as whole groups: rounded down to a multiple of N, and at least N. */
unsigned pool_policy_group_limit(unsigned limit, unsigned group);

/* How many groups to start for `wanted` instances (pool_policy_spawns_needed) when `counted`
 * instances count against `limit`: enough groups to cover them, but no group when less than one
 * instance of room is left; a group may pass the limit by less than N while another drains
 * (its busy children still count until their requests end). */
unsigned pool_policy_groups_to_start(unsigned wanted, unsigned counted, unsigned limit,
                                     unsigned group);

/* The request limit of a whole group: N times the per-instance limit (0 stays 0: never),
 * saturating. */
unsigned pool_policy_group_request_limit(unsigned request_limit, unsigned group);

/* idleTimeout for a group: it ends when every one of its N connections is idle (all_idle), the
 * most recent of their last requests ended idle_timeout seconds ago (0 = never), and ending its N
 * instances leaves at least min_instances of the `counted` ones. */
bool pool_policy_group_idle_ends(bool all_idle, uint64_t now, uint64_t last_idle_since,
                                 unsigned idle_timeout, unsigned counted, unsigned group,
                                 unsigned min_instances);

/* ---- Recycling ---- */

/* The variable `name` from "NAME=value" entries (the last one wins; stops early at a NULL entry,
 * so a NULL-terminated array such as environ may pass n_env = SIZE_MAX). Sets *found when it is
 * present. Returns its value as php-cgi reads numbers (atoi): 0 for 0, empty, negative or garbage,
 * "12abc" is 12, at most INT_MAX. */
unsigned pool_policy_env_number(const char *const *env, size_t n_env, const char *name,
                                bool *found);

/* PHP_FCGI_MAX_REQUESTS as above: 0 means no limit to php-cgi. */
unsigned pool_policy_php_max_requests(const char *const *env, size_t n_env, bool *found);

/* php-cgi's own default when PHP_FCGI_MAX_REQUESTS is not set (sapi/cgi/cgi_main.c). */
#define POOL_PHP_CGI_DEFAULT_MAX_REQUESTS 500

/* Does full_path look like php-cgi (basename php-cgi*, or php*-cgi*)? Used only to assume php-cgi's
 * default request limit when the environment does not set one. */
bool pool_policy_is_php_cgi(const char *full_path);

/* The number of requests after which the pool ends a process: the smaller of instanceMaxRequests
 * and PHP_FCGI_MAX_REQUESTS where each 0 means "no limit"; 0 = never. */
unsigned pool_policy_request_limit(unsigned instance_max_requests, unsigned php_max_requests);

/* After a process completed `completed` requests in all: is it due for recycling? */
bool pool_policy_recycle_after(uint64_t completed, unsigned request_limit);

/* Has an idle process idle since `idle_since` outlived idle_timeout seconds (0 = never)? */
bool pool_policy_idle_expired(uint64_t now, uint64_t idle_since, unsigned idle_timeout);

/* ---- Rapid fails (SPEC §4.6) ---- */

/* What is known about a process once it has exited and is no longer leased. */
typedef struct pool_exit_facts {
    bool requested;          /* the pool asked it to end */
    uint64_t completed;      /* requests it completed */
    bool died_in_request;    /* released DEAD or KILL after the process had died, or DEAD before */
    bool gone_before_answer; /* released GONE: EOF before it sent anything for the request */
    bool clean_exit;         /* exit status 0, no signal */
} pool_exit_facts_t;

/* Does an exit count as a rapid fail (SPEC §4.6)? Only an exit the pool did not ask for, before
 * the process completed its first request or in the middle of one. A process that closed the
 * connection of a new request before answering it and then exited cleanly was ending between
 * requests (not a fail); one that exited with a signal or an error status crashed on it. */
bool pool_policy_is_rapid_fail(const pool_exit_facts_t *f);

/* Rapid fails of the last minute, as 60 one-second buckets: fixed memory whatever
 * rapidFailsPerMinute is. The window is the current second and the 59 before it, so an event
 * leaves the count between 59 and 60 s after it happened. */
#define POOL_FAILWIN_BUCKETS 60
#define POOL_FAILED_MS 60000 /* how long a failed pool refuses requests before trying again */

typedef struct pool_failwin {
    uint64_t sec[POOL_FAILWIN_BUCKETS];   /* (now / 1000) + 1 of what each counts; 0: unused */
    uint32_t count[POOL_FAILWIN_BUCKETS];
} pool_failwin_t;

void pool_failwin_init(pool_failwin_t *fw);
void pool_failwin_record(pool_failwin_t *fw, uint64_t now);
unsigned pool_failwin_count(const pool_failwin_t *fw, uint64_t now);

/* More than rapid_fails_per_minute in the window: the pool must be marked failed. */
bool pool_policy_should_fail(unsigned fails_in_window, unsigned rapid_fails_per_minute);

#endif
