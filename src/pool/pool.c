/* The process pool of one FastCGI application: the waiter queue, leases, limits, recycling,
 * rapid fails and stop (SPEC §4.1, §4.4, §4.6). worker.c does the process mechanics.
 *
 * Which processes count against the limit: starting, idle, busy and draining ones. A STOPPING
 * process (being ended, §4.4) does not: clients never wait for the grace period of a process the
 * pool no longer uses, so for up to signalBeforeTerminateSeconds there may be more than
 * maxInstances processes alive. EXITED and CLOSING workers have no process. During a warm recycle
 * the counted processes may reach maxInstances + one (allowed()).
 *
 * Re-entrancy: waiter callbacks run from inside the pool and may call back into it (acquire,
 * release, cancel, stop). maintain() is therefore guarded and loops until nothing changed, and the
 * stop callback (which may free the pool) only runs as the last action of an outermost call. */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/monitor.h"
#include "pool/pool_int.h"
#include "util/log.h"
#include "util/xalloc.h"

static void maintain(pool_t *p);

/* ---- The pool's copy of the settings ---- */

static char *dup_or_null(const char *s) {
    return s ? xstrdup(s) : NULL;
}

static char **dup_strv(char *const *v, size_t n) {
    char **out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++) out[i] = xstrdup(v[i]);
    return out;
}

static size_t strv_len(char *const *v) {
    size_t n = 0;
    while (v && v[n]) n++;
    return n;
}

static void free_strv(char **v) {
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

/* Copy the settings: the pool keeps its own, so nothing points into a configuration generation
 * that may be freed, and a live `set` never writes into one that requests share. */


static void app_copy(cfg_app_t *dst, const cfg_app_t *src) {
    *dst = *src;
    dst->name = xstrdup(src->name ? src->name : "fastcgi");
    dst->full_path = xstrdup(src->full_path ? src->full_path : "");
    dst->arguments = dup_or_null(src->arguments);
    dst->argv = dup_strv(src->argv, strv_len(src->argv));
    dst->env = dup_strv(src->env, src->n_env);
    dst->user = dup_or_null(src->user);
    dst->monitor_changes_to = dup_or_null(src->monitor_changes_to);
    dst->utf8_vars = src->n_utf8_vars ? dup_strv(src->utf8_vars, src->n_utf8_vars) : NULL;
}

static void app_dispose(cfg_app_t *a) {
    free(a->name);
    free(a->full_path);
    free(a->arguments);
    free_strv(a->argv);
    free_strv(a->env);
    free(a->user);
    free(a->monitor_changes_to);
    if (a->utf8_vars) free_strv(a->utf8_vars);
}

static bool str_differs(const char *a, const char *b) {
    if (a == NULL || b == NULL) return a != b;
    return strcmp(a, b) != 0;
}

static bool strv_differs(char *const *a, size_t na, char *const *b, size_t nb) {
    if (na != nb) return true;
    for (size_t i = 0; i < na; i++)
        if (str_differs(a[i], b[i])) return true;
    return false;
}

/* The settings a running process was started with (SPEC §1: changed apps are recycled). */
static bool app_process_differs(const cfg_app_t *a, const cfg_app_t *b) {
    return str_differs(a->full_path, b->full_path) ||
           strv_differs(a->argv, strv_len(a->argv), b->argv, strv_len(b->argv)) ||
           strv_differs(a->env, a->n_env, b->env, b->n_env) || a->protocol != b->protocol ||
           str_differs(a->user, b->user) || a->prefork_children != b->prefork_children;
}

/* A variable as the process will see it: its `env`, else the server's environment. */
static unsigned process_env_number(const pool_t *p, const char *name, bool *found) {
    extern char **environ;
    unsigned v = pool_policy_env_number((const char *const *)p->app.env, p->app.n_env, name, found);
    if (!*found) v = pool_policy_env_number((const char *const *)environ, SIZE_MAX, name, found);
    return v;
}

unsigned pool_group_size(const pool_t *p) {
    return p->app.prefork_children >= 2 ? p->app.prefork_children : 0;
}

/* The effective limit in instances; with preforkChildren whole groups (SPEC 4.9b). */
static unsigned effective_limit(const pool_t *p) {
    return pool_policy_group_limit(
        pool_policy_limit(p->app.max_instances, p->auto_limit, p->app.min_instances),
        pool_group_size(p));
}

/* The request limit: instanceMaxRequests, lowered to PHP_FCGI_MAX_REQUESTS as the process will
 * see it (or php-cgi's default of 500 when fullPath is php-cgi and nothing sets it). php-cgi exits
 * by itself after that many requests; if the pool handed such a process one more request, that
 * request would race the exit. Ending the process ourselves first avoids the race.
 * With preforkChildren the process gets PHP_FCGI_MAX_REQUESTS=0 (worker.c): its children never
 * end on their own, and the limit computed here, per instance, applies to the whole group as N
 * times it (over_requests). */
static void update_limits(pool_t *p) {
    bool found;
    unsigned php = process_env_number(p, "PHP_FCGI_MAX_REQUESTS", &found);
    if (!found && pool_policy_is_php_cgi(p->app.full_path)) php = POOL_PHP_CGI_DEFAULT_MAX_REQUESTS;
    p->request_limit = pool_policy_request_limit(p->app.instance_max_requests, php);
    /* minInstances: the automatic limit never goes below the processes kept started */
    autotune_set_min(&p->at, p->app.min_instances);
    /* after the minimum: a minimum between two multiples of N is raised to the next one */
    autotune_set_step(&p->at, pool_group_size(p));
    if (p->app.max_instances == 0) p->auto_limit = p->at.limit;
    p->limit = effective_limit(p);
}

/* PHP_FCGI_CHILDREN > 0 makes php-cgi a master that forks its own workers. The pool gains nothing
 * from them (it sends one request at a time to each process) and the kernel's parent-death signal
 * reaches only the master: if the server is killed with SIGKILL, those children outlive it
 * (SPEC §4.1). A normal stop kills them with the process group. */
static void warn_php_children(const pool_t *p) {
    bool found;
    if (pool_group_size(p)) return; /* preforkChildren: the server sets it (SPEC 4.9b) */
    unsigned n = process_env_number(p, "PHP_FCGI_CHILDREN", &found);
    if (n > 0)
        log_warn("%s: PHP_FCGI_CHILDREN=%u: php-cgi will fork children the pool does not manage "
                 "(they would survive a SIGKILL of the server); leave it unset, use maxInstances",
                 p->app.name, n);
}

/* ---- Workers: state, lists, counters ---- */

/* The states that count against the limit (see the top of this file). */
static bool state_counts(worker_state_t s) {
    return s == WORKER_STATE_STARTING || s == WORKER_STATE_IDLE || s == WORKER_STATE_BUSY ||
           s == WORKER_STATE_DRAINING;
}

static unsigned counted(const pool_t *p) {
    unsigned n = 0;
    for (int s = 0; s < WORKER_STATE_COUNT; s++)
        if (state_counts((worker_state_t)s)) n += p->n_state[s];
    return n;
}

static void idle_unlink(pool_t *p, worker_t *wk) {
    if (wk->idle_prev) wk->idle_prev->idle_next = wk->idle_next;
    else p->idle_head = wk->idle_next;
    if (wk->idle_next) wk->idle_next->idle_prev = wk->idle_prev;
    else p->idle_tail = wk->idle_prev;
    wk->idle_prev = wk->idle_next = NULL;
}

/* Most recently used first: its code and data are warm, and the others can reach idleTimeout. */
static void idle_push(pool_t *p, worker_t *wk) {
    wk->idle_prev = NULL;
    wk->idle_next = p->idle_head;
    if (p->idle_head) p->idle_head->idle_prev = wk;
    else p->idle_tail = wk;
    p->idle_head = wk;
}

static unsigned n_busy(const pool_t *p) {
    return p->n_state[WORKER_STATE_BUSY] + p->n_state[WORKER_STATE_DRAINING];
}

/* The autotuner's average of busy processes: integrate up to now. */
static void busy_account(pool_t *p) {
    uint64_t now = uv_now(p->loop);
    if (now > p->busy_last_ms) p->busy_ms_acc += (uint64_t)n_busy(p) * (now - p->busy_last_ms);
    p->busy_last_ms = now;
}

void pool_set_state(worker_t *wk, worker_state_t s) {
    pool_t *p = wk->pool;
    worker_state_t old = wk->state;
    if (old == s) return;
    assert(old != WORKER_STATE_CLOSING);
    busy_account(p);
    assert(p->n_state[old] > 0);
    p->n_state[old]--;
    p->n_state[s]++;
    if (old == WORKER_STATE_IDLE) idle_unlink(p, wk);
    wk->state = s;
    if (s == WORKER_STATE_IDLE) {
        wk->idle_since_ms = uv_now(p->loop);
        idle_push(p, wk);
    }
    if (n_busy(p) > p->at_busy_max) p->at_busy_max = n_busy(p);
}

void pool_add_worker(pool_t *p, worker_t *wk) {
    wk->state = WORKER_STATE_STARTING;
    p->n_state[WORKER_STATE_STARTING]++;
    wk->prev = p->workers_tail;
    wk->next = NULL;
    if (p->workers_tail) p->workers_tail->next = wk;
    else p->workers = wk;
    p->workers_tail = wk;
}

void pool_remove_worker(worker_t *wk) {
    pool_t *p = wk->pool;
    assert(wk->state == WORKER_STATE_CLOSING);
    p->n_state[wk->state]--;
    if (wk->prev) wk->prev->next = wk->next;
    else p->workers = wk->next;
    if (wk->next) wk->next->prev = wk->prev;
    else p->workers_tail = wk->prev;
}

/* ---- The queue ---- */

static void enqueue(pool_t *p, pool_waiter_t *w) {
    w->next = NULL;
    w->prev = p->q_tail;
    if (p->q_tail) p->q_tail->next = w;
    else p->q_head = w;
    p->q_tail = w;
    w->queued = true;
    p->n_queued++;
    if (p->n_queued > p->at_queued_max) p->at_queued_max = p->n_queued;
}

static void dequeue(pool_t *p, pool_waiter_t *w) {
    if (w == p->fail_last) p->fail_last = w->prev; /* cancelled: the batch now ends before it */
    if (w->prev) w->prev->next = w->next;
    else p->q_head = w->next;
    if (w->next) w->next->prev = w->prev;
    else p->q_tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
    p->n_queued--;
}

/* Every waiter queued now gets `status`, oldest first. Waiters that callbacks queue meanwhile are
 * not part of the batch: they get their own chance (a new spawn attempt after POOL_ESPAWN; when
 * the pool is failed or stopping, pool_acquire refuses them itself). */
static void fail_waiters(pool_t *p, int status) {
    p->fail_last = p->q_tail;
    while (p->fail_last) {
        pool_waiter_t *w = p->q_head;
        if (w == p->fail_last) p->fail_last = NULL;
        dequeue(p, w);
        w->cb(w, NULL, status);
    }
}

static void lease(pool_t *p, worker_t *wk, pool_waiter_t *w) {
    worker_unwatch(wk);
    wk->probe_kept = false; /* a request goes over it: its end is an ordinary one from now on */
    wk->probe_late = false;
    pool_set_state(wk, WORKER_STATE_BUSY);
    wk->leased = true;
    uint64_t now = uv_now(p->loop);
    p->st.acquired++;
    p->st.queue_wait_ms_total += now > w->enqueued ? now - w->enqueued : 0;
    w->queued = false;
    w->cb(w, wk, 0);
}

/* ---- Failures ---- */

void pool_rapid_fail(pool_t *p) {
    uint64_t now = uv_now(p->loop);
    p->st.rapid_fails++;
    pool_failwin_record(&p->failwin, now);
    if (p->failed) return;
    unsigned n = pool_failwin_count(&p->failwin, now);
    if (!pool_policy_should_fail(n, p->app.rapid_fails_per_minute)) return;
    p->failed = true;
    p->failed_until = now + POOL_FAILED_MS;
    log_error("%s: %u processes failed within a minute (rapidFailsPerMinute = %u): the pool is "
              "failed, requests get 503 for %d s",
              p->app.name, n, p->app.rapid_fails_per_minute, POOL_FAILED_MS / 1000);
    fail_waiters(p, POOL_EFAILED);
}

static void unfail(pool_t *p, const char *why) {
    p->failed = false;
    pool_failwin_init(&p->failwin);
    log_info("%s: leaving the failed state (%s): starting processes again", p->app.name, why);
}

/* ---- Maintenance: serve the queue, trim, start ---- */

static void check_stopped(pool_t *p) {
    if (!p->stopping || p->workers || p->done_called || p->in_maintain) return;
    p->done_called = true;
    if (p->done) p->done(p, p->done_arg); /* may free p */
}

/* A warm recycle starts its replacements one at a time (see "Warm recycling" below). */
#define WARM_STARTS 1u

/* The most instances that may count against the limit: maxInstances, and during a warm recycle
 * WARM_STARTS processes more (SPEC 4.9), for the replacement starting while the old ones serve
 * (with preforkChildren a started process is a group of N instances). */
static unsigned allowed(const pool_t *p) {
    unsigned n = pool_group_size(p);
    return p->limit + (p->warm_active ? WARM_STARTS * (n ? n : 1) : 0);
}

/* Instances counted against the limit that will go on serving: with preforkChildren, the
 * draining members of an ending group are left out (ending another group for them would end
 * too many). */
static unsigned counted_staying(const pool_t *p) {
    return pool_group_size(p) ? counted(p) - p->n_state[WORKER_STATE_DRAINING] : counted(p);
}

static void trim_surplus(pool_t *p) {
    while (counted_staying(p) > allowed(p) && p->idle_tail)
        worker_end(p->idle_tail, "above maxInstances"); /* a group member: its whole group */
}

/* Start up to n processes; stops at the first failure. Returns how many started. */
static unsigned spawn_some(pool_t *p, unsigned n) {
    if (p->spawn_retry_at && uv_now(p->loop) < p->spawn_retry_at) return 0;
    p->spawn_retry_at = 0;
    for (unsigned i = 0; i < n; i++) {
        int r = worker_spawn(p);
        if (r == 0) {
            p->st.spawns++;
            continue;
        }
        p->st.spawn_failures++;
        if (r == UV_EMFILE || r == UV_ENFILE || r == UV_ENOMEM || r == UV_EAGAIN) {
            /* SPEC 4.11: out of descriptors or memory is no fault of the application: not a
             * rapid fail; the requests wait in the queue, and the start is tried again at the
             * next tick (pool_tick) or when a process frees up, at most once a second. */
            p->spawn_retry_at = uv_now(p->loop) + 1000u;
            break;
        }
        pool_rapid_fail(p);
        /* No process exists to serve them later: answer now rather than leave them hanging. */
        if (counted(p) == 0) fail_waiters(p, POOL_ESPAWN);
        return i;
    }
    return n;
}

static void start_processes(pool_t *p) {
    if (p->failed || p->stopping) return;
    /* minInstances only once the server has started (pool_warm): pools are created before the
     * server drops its privileges, and no process may start before that. */
    unsigned n = pool_policy_spawns_needed(p->n_queued, p->n_state[WORKER_STATE_STARTING],
                                           counted(p), p->limit,
                                           p->warm && !p->retired ? p->app.min_instances : 0);
    /* preforkChildren: instances wanted -> groups; a starting group counts once in n_unready */
    n = pool_policy_groups_to_start(n, counted(p), p->limit, pool_group_size(p));
    n = pool_policy_starts_allowed(n, p->n_unready, p->app.max_concurrent_starts);
    spawn_some(p, n);
}

/* ---- Warm recycling (SPEC 4.9) ----
 *
 * A whole-pool recycle (pool_recycle_for) with recycleMode = warm moves the pool to a new epoch.
 * Processes of an older epoch that serve ("old": idle, busy, or reconnecting) keep serving; those
 * still starting are ended at once (they serve nobody yet, and would load the old settings). For
 * each old process a replacement is started, one at a time (WARM_STARTS, and not while other
 * processes start, maxConcurrentStarts counting them all): nobody waits for the replacements, so
 * the recycle spares the serving processes' CPU rather than hurrying. Measured with bench/recycle.sh
 * (4 php-cgi on 2 CPUs, recycled every 2 s): starting the 4 at once tripled hello.php's p99 while
 * one at a time kept it within 1.6 x (bench/RESULTS.md "recycle");
 * each process of the new epoch that becomes ready (connected and idle for the first time, after
 * FCGI_GET_VALUES) earns a credit that retires one old process: an idle one is ended at once (as
 * §4.4 says: SIGTERM, grace, SIGKILL), a busy one drains and ends after its request. New requests
 * prefer the new processes (the idle list is most recently used first, and a ready process joins
 * it at its head), and no client waits for a start that the old processes could have spared it.
 *
 * While old processes remain, serving or draining, the pool may count WARM_STARTS process
 * above its limit (allowed()), and neither trim_surplus nor retire_if_due ends a process
 * for that. Once the new processes reach the limit, the old ones left are retired without waiting
 * for credits. If the pool fails (rapidFailsPerMinute: the replacements keep dying) or stops, the
 * recycle finishes as an immediate one. A second recycle during a warm one starts over from the
 * processes there are then. */

/* An old process that still takes requests (not yet retired). */
static bool old_serving(const pool_t *p, const worker_t *wk) {
    return wk->epoch != p->epoch && state_counts(wk->state) && wk->state != WORKER_STATE_DRAINING;
}

/* End an old process for the warm recycle: at once when idle or reconnecting, after its request
 * when busy. A prefork group member ends its whole group (worker_end_group: its idle members now,
 * its busy ones after their requests), which counts as one process retired. */
static void retire(pool_t *p, worker_t *wk) {
    if (wk->group) {
        worker_end_group(p, wk->group, p->warm_reason);
    } else if (wk->state == WORKER_STATE_BUSY) {
        snprintf(wk->reason, sizeof(wk->reason), "%s", p->warm_reason);
        pool_set_state(wk, WORKER_STATE_DRAINING);
    } else {
        worker_end(wk, p->warm_reason);
    }
    p->warm_retired++;
}

/* Retire one old process: an idle one (the least recently used) at once, else one that is
 * reconnecting, else a busy one after its request. Returns false when none serves any more. */
static bool retire_one_old(pool_t *p) {
    for (worker_t *wk = p->idle_tail; wk; wk = wk->idle_prev) {
        if (wk->epoch == p->epoch) continue;
        retire(p, wk);
        return true;
    }
    worker_t *busy = NULL;
    for (worker_t *wk = p->workers; wk; wk = wk->next) {
        if (!old_serving(p, wk)) continue;
        if (wk->state == WORKER_STATE_STARTING) {
            retire(p, wk);
            return true;
        }
        if (busy == NULL) busy = wk; /* the oldest: likely the first to finish */
    }
    if (busy == NULL) return false;
    retire(p, busy);
    return true;
}

static void warm_finish(pool_t *p, const char *how) {
    p->warm_active = false;
    p->warm_credits = 0;
    double s = (double)(uv_now(p->loop) - p->warm_started_ms) / 1000;
    log_info("%s: warm recycle %s after %.1f s: %u old processes retired", p->app.name, how, s,
             p->warm_retired);
}

static void warm_step(pool_t *p) {
    if (!p->warm_active) return;
    if (p->failed) { /* finish as an immediate recycle (pool_stop ends it itself) */
        while (retire_one_old(p)) {
        }
        warm_finish(p, "cut short: the pool failed");
        return;
    }
    /* With preforkChildren = N the credits are earned per instance (each connection ready) and a
     * group is retired for N of them; the decision counts whole groups. */
    unsigned unit = pool_group_size(p) ? pool_group_size(p) : 1;
    while (p->warm_credits >= unit && retire_one_old(p)) p->warm_credits -= unit;
    /* new processes: ready ones have earned their credit (pool_on_worker_connected); the others
     * are the replacements on their way */
    pool_warm_counts_t c = {0};
    unsigned new_ready = 0, counted_n = counted(p);
    for (const worker_t *wk = p->workers; wk; wk = wk->next) {
        if (!state_counts(wk->state)) continue;
        if (wk->epoch != p->epoch) {
            if (wk->state == WORKER_STATE_DRAINING) c.leaving++;
            else c.old++;
        } else if (wk->warm_credited) {
            new_ready++;
        } else {
            c.new_coming++;
        }
    }
    /* in processes (groups): a group is new_ready once all its instances are */
    c.old = (c.old + unit - 1) / unit;
    c.leaving = (c.leaving + unit - 1) / unit;
    c.new_ready = new_ready / unit;
    c.new_coming = (new_ready % unit + c.new_coming + unit - 1) / unit;
    c.counted = (counted_n + unit - 1) / unit;
    c.unready = p->n_unready;
    pool_warm_step_t step = pool_policy_warm_step(&c, p->limit / unit, WARM_STARTS);
    if (step.retire_all) {
        while (retire_one_old(p)) {
        }
    } else if (step.done) {
        warm_finish(p, "done");
    } else if (step.starts) {
        spawn_some(p, step.starts);
    }
}

/* The process for waiter w among the idle ones, or NULL when w should rather wait: a retry
 * (prefer_fresh) takes a process that has not served yet — an idle one, or one still starting or
 * startable — since a process that has just completed a request may be the next to exit on its own
 * (php-cgi after PHP_FCGI_MAX_REQUESTS, the retry's very cause). With no fresh one to come it
 * takes what there is. */
static worker_t *pick_idle(pool_t *p, const pool_waiter_t *w) {
    worker_t *wk = p->idle_head;
    if (wk == NULL || !w->prefer_fresh || wk->completed == 0) return wk;
    for (worker_t *f = wk; f; f = f->idle_next)
        if (f->completed == 0) return f;
    bool fresh_coming = p->n_state[WORKER_STATE_STARTING] > 0 || counted(p) < p->limit;
    return fresh_coming && !p->failed ? NULL : wk;
}

/* Serve queued waiters with idle processes, oldest waiter first; a retry waiting for a fresh
 * process lets the waiters behind it go first. */
static void serve_queue(pool_t *p) {
    while (p->q_head && p->idle_head) {
        pool_waiter_t *w = p->q_head;
        worker_t *wk = pick_idle(p, w);
        while (wk == NULL && (w = w->next) != NULL) wk = pick_idle(p, w);
        if (wk == NULL) return;
        dequeue(p, w);
        p->st.waited++;
        lease(p, wk, w);
    }
}

static void maintain(pool_t *p) {
    if (p->in_maintain) {
        p->maintain_again = true;
        return;
    }
    p->in_maintain = true;
    do {
        p->maintain_again = false;
        serve_queue(p);
        warm_step(p);
        trim_surplus(p);
        start_processes(p);
    } while (p->maintain_again);
    p->in_maintain = false;
    check_stopped(p); /* last: may free p */
}

/* ---- Events from worker.c ---- */

void pool_on_worker_connected(worker_t *wk) {
    pool_t *p = wk->pool;
    if (p->stopping) {
        worker_end(wk, "server stopping");
        return;
    }
    pool_set_state(wk, WORKER_STATE_IDLE);
    worker_watch(wk);
    if (p->warm_active && wk->epoch == p->epoch && !wk->warm_credited) {
        wk->warm_credited = true; /* ready: it may replace an old process (warm_step) */
        p->warm_credits++;
    }
    maintain(p);
}

void pool_on_worker_connect_failed(worker_t *wk) {
    pool_t *p = wk->pool;
    /* Ended on purpose, so its exit will not count: this failure is the rapid fail. */
    worker_end(wk, "cannot connect to it");
    pool_rapid_fail(p);
    maintain(p);
}

static void describe_exit(char *out, size_t size, int64_t status, int sig);

/* Requests the members of a prefork group completed, together. */
static uint64_t group_completed(const pool_t *p, unsigned group) {
    uint64_t n = 0;
    for (const worker_t *m = p->workers; m; m = m->next)
        if (m->group == group) n += m->completed;
    return n;
}

/* Logged once the process is gone and no longer leased (settle_exit): only then is it known
 * whether a request it had was completed, so an exit right after an answer (php-cgi after
 * PHP_FCGI_MAX_REQUESTS) is told apart from one in the middle of a request, whichever of the
 * exit and the end of the lease the loop sees first. */
static void log_exit(const worker_t *wk) {
    char how[80];
    describe_exit(how, sizeof(how), wk->exit_status, wk->exit_signal);
    /* a prefork group's leader speaks for the group: its slots are still listed (closing) */
    unsigned long long n = (unsigned long long)(wk->group ? group_completed(wk->pool, wk->group)
                                                          : wk->completed);
    bool in_request = wk->in_request_death || (wk->gone_before_answer && !wk->exit_clean);
    if (wk->requested) {
        log_info("%s%s, ended by the server (%s), after %llu requests", wk->tag, how, wk->reason,
                 n);
    } else if (wk->exit_clean && n > 0 && !in_request) {
        log_info("%s%s on its own after %llu requests", wk->tag, how, n); /* php-cgi's way */
    } else {
        log_warn("%s%s unexpectedly%s, after %llu requests", wk->tag, how,
                 in_request ? " during a request" : "", n);
    }
}

/* The process is gone and the worker no longer leased: count a rapid fail if it was one, and
 * close the worker. */
static void settle_exit(pool_t *p, worker_t *wk) {
    if (wk->slot) { /* a prefork slot: its group's leader logs and counts the exit */
        log_debug("%sgone with its group", wk->tag);
        if (wk->gone_cb) {
            void (*cb)(void *, bool) = wk->gone_cb;
            wk->gone_cb = NULL;
            cb(wk->gone_data, false);
        }
        worker_finish(wk);
        return;
    }
    log_exit(wk);
    pool_exit_facts_t f = {
        .requested = wk->requested,
        .completed = wk->completed,
        .died_in_request = wk->in_request_death,
        .gone_before_answer = wk->gone_before_answer,
        .clean_exit = wk->exit_clean,
    };
    if (wk->gone_cb) {
        void (*cb)(void *, bool) = wk->gone_cb;
        wk->gone_cb = NULL;
        cb(wk->gone_data, wk->exit_clean && !wk->requested);
    }
    worker_finish(wk);
    if (pool_policy_is_rapid_fail(&f)) pool_rapid_fail(p);
}

/* "killed by signal 11 (Segmentation fault)" or "exited with status 3". */
static void describe_exit(char *out, size_t size, int64_t status, int sig) {
    if (sig) snprintf(out, size, "killed by signal %d (%s)", sig, strsignal(sig));
    else snprintf(out, size, "exited with status %lld", (long long)status);
}

void pool_report_crash(worker_t *wk) {
    pool_t *p = wk->pool;
    pool_crash_t *c = &p->last_crash;
    wk->crash_pending = false;
    memset(c, 0, sizeof(*c));
    c->pid = wk->pid;
    c->signal = wk->exit_signal;
    c->status = wk->exit_status;
    c->when_ms = wk->exit_ms;
    c->completed = wk->completed;
    describe_exit(c->how, sizeof(c->how), wk->exit_status, wk->exit_signal);
    c->in_request = wk->req_active;
    if (c->in_request) {
        memcpy(c->method, wk->req_method, sizeof(c->method));
        memcpy(c->uri, wk->req_uri, sizeof(c->uri));
        c->request_ms = wk->exit_ms > wk->req_start_ms ? wk->exit_ms - wk->req_start_ms : 0;
    }
    for (unsigned i = 0; i < wk->err_keep_n; i++) {
        unsigned k = (wk->err_keep_next + POOL_CRASH_LINES - wk->err_keep_n + i) % POOL_CRASH_LINES;
        memcpy(c->stderr_lines[i], wk->err_keep[k], POOL_CRASH_LINE_MAX);
    }
    c->n_stderr = wk->err_keep_n;
    p->has_crash = true;

    char what[WORKER_URI_MAX + 96], err[POOL_CRASH_LINES * (POOL_CRASH_LINE_MAX + 3) + 32];
    if (c->in_request)
        snprintf(what, sizeof(what), "while serving %s %s (for %.2f s)", c->method, c->uri,
                 (double)c->request_ms / 1000);
    else if (c->completed == 0)
        snprintf(what, sizeof(what), "before its first request");
    else
        snprintf(what, sizeof(what), "between requests (after %llu completed)",
                 (unsigned long long)c->completed);
    size_t n = (size_t)snprintf(err, sizeof(err), "%s",
                                c->n_stderr ? "; last stderr: " : "; no stderr output");
    for (unsigned i = 0; i < c->n_stderr && n < sizeof(err); i++)
        n += (size_t)snprintf(err + n, sizeof(err) - n, "%s%s", i ? " | " : "", c->stderr_lines[i]);
    log_error("%scrashed: %s %s%s", wk->tag, c->how, what, err);
}

const pool_crash_t *pool_last_crash(const pool_t *p) {
    return p->has_crash ? &p->last_crash : NULL;
}

void pool_on_worker_exit(worker_t *wk, int64_t status, int term_signal) {
    pool_t *p = wk->pool;
    wk->exit_clean = status == 0 && term_signal == 0;
    wk->exit_status = status;
    wk->exit_signal = term_signal;
    wk->exit_ms = uv_now(p->loop);
    if (!wk->requested && !wk->slot) p->st.exits_unexpected++;
    /* SPEC 4.12: a crash, reported with its output (a prefork group's by its leader) */
    if (!wk->requested && !wk->exit_clean && !wk->slot) {
        p->st.crashes++;
        wk->crash_pending = true;
        if (!wk->out_open && !wk->err_open) pool_report_crash(wk);
    }
    /* While leased, the lessee will see EOF or an error and release; whether a request was in
     * progress (a rapid fail) or had just completed is known only then. */
    if (wk->leased) pool_set_state(wk, WORKER_STATE_EXITED);
    else settle_exit(p, wk);
    maintain(p);
}

void pool_on_worker_freed(pool_t *p) {
    check_stopped(p);
}

/* ---- monitorChangesTo (§4.8) ---- */

static void on_monitored_change(void *arg, const char *what) {
    pool_t *p = arg;
    if (!p->stopping) pool_recycle_for(p, POOL_RECYCLE_CHANGE, what);
}

/* Start, replace or end the monitor to match p->app.monitor_changes_to. */
static void update_monitor(pool_t *p) {
    const char *want = p->app.monitor_changes_to;
    if (p->monitor && want && strcmp(monitor_path(p->monitor), want) == 0) return;
    monitor_close(p->monitor);
    p->monitor = NULL;
    if (want && !p->stopping) p->monitor = monitor_new(p->loop, want, p->app.name,
                                                       on_monitored_change, p);
}

/* ---- Public API ---- */

static char *self_exe(void) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) return xstrdup("/proc/self/exe");
    buf[n] = '\0';
    return xstrdup(buf);
}

pool_t *pool_new(uv_loop_t *loop, const cfg_app_t *app, const char *runtime_dir, const char *exe) {
    pool_t *p = xcalloc(1, sizeof(*p));
    p->refs = 1;
    p->loop = loop;
    app_copy(&p->app, app);
    p->runtime_dir = xstrdup(runtime_dir ? runtime_dir : "/run/fcgihost");
    p->exe = exe ? xstrdup(exe) : self_exe();
    autotune_init(&p->at, uv_available_parallelism(), uv_now(loop));
    p->auto_limit = p->at.limit;
    p->at_last_ms = p->busy_last_ms = uv_now(loop);
    pool_failwin_init(&p->failwin);
    update_limits(p);
    warn_php_children(p);
    update_monitor(p);
    return p;
}

void pool_configure(pool_t *p, const cfg_app_t *app) {
    bool changed = app_process_differs(&p->app, app);
    p->retired = false;
    cfg_app_t fresh;
    app_copy(&fresh, app);
    app_dispose(&p->app);
    p->app = fresh;
    update_limits(p);
    update_monitor(p);
    if (changed) warn_php_children(p);
    if (changed && !p->stopping) {
        pool_recycle_for(p, POOL_RECYCLE_CHANGE, "configuration changed");
        return; /* pool_recycle_for ran maintain() */
    }
    maintain(p);
}

const cfg_app_t *pool_app(const pool_t *p) {
    return &p->app;
}

int pool_set_live(pool_t *p, const char *key, const char *value, char *err, size_t errlen) {
    cfg_app_t fresh;
    app_copy(&fresh, &p->app);
    int rc = cfg_app_set_live(&fresh, key, value, err, errlen);
    if (rc == 0) pool_configure(p, &fresh);
    app_dispose(&fresh);
    return rc;
}

void pool_acquire(pool_t *p, pool_waiter_t *w, pool_acquire_cb cb) {
    w->cb = cb;
    w->queued = false;
    w->prev = w->next = NULL;
    w->enqueued = uv_now(p->loop);
    if (p->stopping) {
        cb(w, NULL, POOL_ESTOPPING);
        return;
    }
    if (p->failed && w->enqueued >= p->failed_until) unfail(p, "a minute passed");
    if (p->failed) {
        cb(w, NULL, POOL_EFAILED);
        return;
    }
    worker_t *idle = p->q_head == NULL ? pick_idle(p, w) : NULL;
    if (idle) {
        lease(p, idle, w);
        return;
    }
    unsigned c = counted(p);
    unsigned startable = p->n_state[WORKER_STATE_STARTING] + (p->limit > c ? p->limit - c : 0);
    if (!pool_policy_queue_accepts(p->n_queued, p->app.queue_length, startable)) {
        p->st.queue_full++;
        cb(w, NULL, POOL_EQUEUE_FULL);
        return;
    }
    enqueue(p, w);
    maintain(p);
}

void pool_cancel(pool_t *p, pool_waiter_t *w) {
    if (w->queued) dequeue(p, w);
}

/* privateMemoryLimit (SPEC 4.10), after a completed request: has the process's private memory
 * passed it? Read from /proc only when a limit is set. */
static bool over_memory(pool_t *p, worker_t *wk, char *why, size_t size) {
    uint64_t priv, rss;
    if (p->app.private_memory_limit == 0) return false;
    if (wk->group) { /* SPEC 4.9b: any child of the group over the limit recycles the group */
        pid_t kids[POOL_CHILDREN_MAX];
        size_t n = procstat_children(wk->pid, kids, POOL_CHILDREN_MAX);
        for (size_t i = 0; i < n; i++) {
            if (!procstat_private(kids[i], &priv, &rss)) continue;
            if (priv <= (uint64_t)p->app.private_memory_limit * 1024) continue;
            log_info("%schild %ld: private memory %llu KiB (RSS %llu KiB) is over "
                     "privateMemoryLimit = %u KiB: recycling its group", wk->tag, (long)kids[i],
                     (unsigned long long)(priv / 1024), (unsigned long long)(rss / 1024),
                     p->app.private_memory_limit);
            snprintf(why, size, "a child's private memory %llu KiB over privateMemoryLimit",
                     (unsigned long long)(priv / 1024));
            return true;
        }
        return false;
    }
    if (!procstat_private(wk->pid, &priv, &rss)) return false;
    if (priv <= (uint64_t)p->app.private_memory_limit * 1024) return false;
    log_info("%sprivate memory %llu KiB (RSS %llu KiB) is over privateMemoryLimit = %u KiB after "
             "its request %llu: recycling it", wk->tag, (unsigned long long)(priv / 1024),
             (unsigned long long)(rss / 1024), p->app.private_memory_limit,
             (unsigned long long)wk->completed);
    snprintf(why, size, "private memory %llu KiB over privateMemoryLimit",
             (unsigned long long)(priv / 1024));
    return true;
}

/* Is the process (with preforkChildren: the group) due for recycling by its request count? */
static bool over_requests(const pool_t *p, const worker_t *wk) {
    if (!wk->group) return pool_policy_recycle_after(wk->completed, p->request_limit);
    if (p->request_limit == 0) return false; /* never: no need to sum the group's members */
    return pool_policy_recycle_after(group_completed(p, wk->group),
                                     pool_policy_group_request_limit(p->request_limit,
                                                                     pool_group_size(p)));
}

/* After a completed request: should this process end rather than serve again? */
static bool retire_if_due(pool_t *p, worker_t *wk) {
    char why[sizeof(wk->reason)];
    if (wk->state == WORKER_STATE_DRAINING) {
        snprintf(why, sizeof(why), "%s", wk->reason);
    } else if (p->stopping) {
        snprintf(why, sizeof(why), "server stopping");
    } else if (over_requests(p, wk)) {
        p->st.recycles_max_requests++;
        if (wk->group)
            snprintf(why, sizeof(why), "its group served %u requests",
                     pool_policy_group_request_limit(p->request_limit, pool_group_size(p)));
        else
            snprintf(why, sizeof(why), "served %u requests", p->request_limit);
    } else if (counted_staying(p) > allowed(p)) {
        snprintf(why, sizeof(why), "above maxInstances");
    } else if (over_memory(p, wk, why, sizeof(why))) {
        p->st.recycles_memory++;
    } else {
        return false;
    }
    worker_read_stop(wk);
    worker_end(wk, why);
    return true;
}

void pool_release(worker_t *wk, pool_release_t how) {
    pool_t *p = wk->pool;
    assert(wk->leased);
    wk->leased = false;
    p->st.requests++;
    bool completed = how == POOL_RELEASE_OK || how == POOL_RELEASE_CLOSE;
    if (completed) wk->completed++;
    if (completed) wk->req_active = false; /* else kept: the exit may be a crash it caused */
    if (how == POOL_RELEASE_DEAD) wk->in_request_death = true;
    if (how == POOL_RELEASE_GONE) wk->gone_before_answer = true;
    worker_read_detach(wk);
    /* Only a connection going back to idle stays registered for reading. */
    if (how != POOL_RELEASE_OK || wk->state == WORKER_STATE_EXITED) worker_read_stop(wk);
    if (wk->state == WORKER_STATE_EXITED) {
        if (how == POOL_RELEASE_KILL) wk->in_request_death = true; /* it died, then misbehaved */
        settle_exit(p, wk);
    } else if (how == POOL_RELEASE_KILL) {
        p->st.recycles_kill++;
        worker_end(wk, "ended after a failed request");
    } else if (how == POOL_RELEASE_DEAD) {
        /* a prefork child that died in a request is a rapid fail of its own: its group lives */
        if (wk->group && wk->alive && wk->state == WORKER_STATE_BUSY) pool_rapid_fail(p);
        worker_expect_exit(wk, "failed during a request");
    } else if (how == POOL_RELEASE_GONE) {
        /* ... and so is one that closed the connection of a request before answering: its
         * children never end on their own (PHP_FCGI_MAX_REQUESTS=0), so it did not end cleanly */
        if (wk->group && wk->alive && wk->state == WORKER_STATE_BUSY) pool_rapid_fail(p);
        worker_expect_exit(wk, "closed its connection");
    } else if (!retire_if_due(p, wk)) {
        if (how == POOL_RELEASE_OK) {
            pool_set_state(wk, WORKER_STATE_IDLE);
            worker_watch(wk);
        } else {
            worker_close_conn(wk);
            pool_set_state(wk, WORKER_STATE_STARTING);
            wk->connect_tries = 0;
            worker_connect(wk);
        }
    }
    maintain(p);
}

void pool_release_gone(worker_t *wk, void (*cb)(void *data, bool clean), void *data) {
    wk->gone_cb = cb;
    wk->gone_data = data;
    pool_release(wk, POOL_RELEASE_GONE);
}

uv_stream_t *worker_stream(worker_t *wk) {
    return &wk->conn.stream;
}

pid_t worker_pid(const worker_t *wk) {
    return wk->pid;
}

static void copy_cut(char *dst, size_t size, const char *src, size_t len) {
    if (len < size) {
        memcpy(dst, src, len);
        dst[len] = '\0';
        return;
    }
    memcpy(dst, src, size - 4);
    memcpy(dst + size - 4, "...", 4);
}

void worker_set_request(worker_t *wk, const char *method, size_t mlen, const char *uri,
                        size_t ulen) {
    copy_cut(wk->req_method, sizeof(wk->req_method), method ? method : "", method ? mlen : 0);
    copy_cut(wk->req_uri, sizeof(wk->req_uri), uri ? uri : "", uri ? ulen : 0);
    wk->req_start_ms = uv_now(wk->pool->loop);
    wk->req_active = true;
}

uint64_t worker_requests(const worker_t *wk) {
    return wk->completed;
}

pool_t *worker_pool(const worker_t *wk) {
    return wk->pool;
}

const char *pool_name(const pool_t *p) {
    return p->app.name;
}

void pool_recycle(pool_t *p, const char *reason) {
    pool_recycle_for(p, POOL_RECYCLE_MANUAL, reason);
}

/* Warm (SPEC 4.9, "Warm recycling" above): the old processes serve until replacements are
 * ready. Returns how many processes it will replace, or -1 when it does not apply. */
static int recycle_warm(pool_t *p, const char *reason) {
    if (p->app.recycle_mode != CFG_RECYCLE_WARM || p->failed || p->stopping) return -1;
    p->epoch++;
    p->warm_credits = 0;
    p->warm_retired = 0;
    snprintf(p->warm_reason, sizeof(p->warm_reason), "%s", reason);
    unsigned n = 0;
    for (worker_t *wk = p->workers; wk; wk = wk->next) {
        /* a prefork group counts as one process (its leader); its members go with it */
        if (wk->state == WORKER_STATE_STARTING && !wk->ready) {
            n += !wk->slot;
            worker_end(wk, reason); /* never frees synchronously: wk->next stays valid */
        } else if (old_serving(p, wk)) {
            n += !wk->slot;
        }
    }
    if (n == 0 && !p->warm_active) return -1; /* nothing to replace: nothing warm to do */
    if (!p->warm_active) p->warm_started_ms = uv_now(p->loop);
    p->warm_active = true;
    return (int)n;
}

/* Immediate (IIS 7.5): idle and starting processes end now, busy ones after their request;
 * replacements start on demand. Returns how many processes it ends. */
static unsigned recycle_immediate(pool_t *p, const char *reason) {
    p->epoch++;
    if (p->warm_active) warm_finish(p, "overtaken by an immediate recycle");
    unsigned n = 0;
    for (worker_t *wk = p->workers; wk; wk = wk->next) {
        /* a prefork group counts as one process here (its leader); its members go with it */
        if (wk->state == WORKER_STATE_IDLE || wk->state == WORKER_STATE_STARTING) {
            n += !wk->slot;
            worker_end(wk, reason); /* never frees synchronously: wk->next stays valid */
        } else if (wk->state == WORKER_STATE_BUSY) {
            n += !wk->slot;
            snprintf(wk->reason, sizeof(wk->reason), "%s", reason);
            pool_set_state(wk, WORKER_STATE_DRAINING);
        }
    }
    return n;
}

void pool_recycle_for(pool_t *p, pool_recycle_kind_t kind, const char *reason) {
    int warm = recycle_warm(p, reason);
    unsigned n = warm >= 0 ? (unsigned)warm : recycle_immediate(p, reason);
    if (kind == POOL_RECYCLE_CHANGE) p->st.recycles_change += n;
    else p->st.recycles_manual += n;
    log_info("%s: recycling %u processes%s: %s", p->app.name, n,
             warm >= 0 ? " (warm: the replacements start first)" : "", reason);
    maintain(p);
}

void pool_reset_failed(pool_t *p) {
    if (p->failed) unfail(p, "reset");
    maintain(p);
}

void pool_stop(pool_t *p, void (*done)(pool_t *p, void *arg), void *arg) {
    if (p->stopping) return;
    p->stopping = true;
    if (p->warm_active) warm_finish(p, "cut short by the stop");
    p->done = done;
    p->done_arg = arg;
    monitor_close(p->monitor);
    p->monitor = NULL;
    log_info("%s: stopping %u processes", p->app.name, p->n_alive);
    fail_waiters(p, POOL_ESTOPPING);
    for (worker_t *wk = p->workers; wk; wk = wk->next) {
        switch (wk->state) {
        case WORKER_STATE_STARTING:
        case WORKER_STATE_IDLE:
        case WORKER_STATE_STOPPING: /* also one waiting to exit by itself: no more grace */
            worker_end(wk, "server stopping");
            break;
        case WORKER_STATE_BUSY:
            snprintf(wk->reason, sizeof(wk->reason), "server stopping");
            pool_set_state(wk, WORKER_STATE_DRAINING);
            break;
        default: break;
        }
    }
    check_stopped(p); /* last: may free p */
}

pool_t *pool_ref(pool_t *p) {
    p->refs++;
    return p;
}

unsigned pool_unref(pool_t *p) {
    return --p->refs;
}

unsigned pool_refs(const pool_t *p) {
    return p->refs;
}

bool pool_stopping(const pool_t *p) {
    return p->stopping;
}

bool pool_stopped(const pool_t *p) {
    return p->done_called;
}

void pool_kill(pool_t *p) {
    for (worker_t *wk = p->workers; wk; wk = wk->next) worker_kill(wk);
}

void pool_free(pool_t *p) {
    if (p == NULL) return;
    assert(p->workers == NULL);
    app_dispose(&p->app);
    free(p->runtime_dir);
    free(p->exe);
    free(p);
}

/* ---- maxInstances = 0: measure, then let the controller decide (autotune.h) ---- */

/* CPU and run-queue time of a process and, for a prefork group, of its children `kids` now (a child
 * that ended since the last reading takes its time with it: the sum may fall, and the interval
 * then counts nothing for the group rather than a wrapped value). */
static bool group_sched(const worker_t *wk, const pid_t *kids, size_t nk, uint64_t *cpu,
                        uint64_t *runq) {
    if (!procstat_sched(wk->pid, cpu, runq)) return false;
    for (size_t i = 0; i < nk; i++) {
        uint64_t c, q;
        if (!procstat_sched(kids[i], &c, &q)) continue;
        *cpu += c;
        *runq += q;
    }
    return true;
}

/* The pool's processes over the interval: CPU and run-queue time (CPUs' worth), and the average
 * private memory per process. */
static void measure_processes(pool_t *p, uint64_t interval_ms, autotune_sample_t *s) {
    uint64_t cpu = 0, runq = 0, priv_sum = 0;
    unsigned n_rss = 0;
    bool any = false;
    for (worker_t *wk = p->workers; wk; wk = wk->next) {
        if (!wk->alive || wk->pid <= 0 || wk->slot) continue;
        uint64_t c, q, rss, priv;
        /* a prefork group: its children do the work, each is an instance */
        pid_t kids[POOL_CHILDREN_MAX];
        size_t nk = wk->group ? procstat_children(wk->pid, kids, POOL_CHILDREN_MAX) : 0;
        for (size_t i = 0; i < nk; i++) {
            if (!procstat_rss(kids[i], &rss, &priv)) continue;
            priv_sum += priv;
            n_rss++;
        }
        if (group_sched(wk, kids, nk, &c, &q)) {
            any = true;
            /* a process started during the interval: all it used belongs to the interval */
            uint64_t c0 = wk->sched_seen ? wk->cpu_ns : 0, q0 = wk->sched_seen ? wk->runq_ns : 0;
            if (wk->sched_seen || wk->started_ms >= p->at_last_ms) {
                cpu += c > c0 ? c - c0 : 0;
                runq += q > q0 ? q - q0 : 0;
            }
            wk->cpu_ns = c;
            wk->runq_ns = q;
            wk->sched_seen = true;
        }
        if (!wk->group && procstat_rss(wk->pid, &rss, &priv)) {
            priv_sum += priv;
            n_rss++;
        }
    }
    double ns = (double)interval_ms * 1e6;
    s->cpu_pool = any ? (double)cpu / ns : -1;
    s->runq_pool = any ? (double)runq / ns : -1;
    s->rss_avg = n_rss ? priv_sum / n_rss : 0;
}

static void autotune_restart_interval(pool_t *p, uint64_t now) {
    p->at_last_ms = now;
    p->at_base = p->st;
    p->at_queued_max = p->n_queued;
    p->at_busy_max = n_busy(p);
    p->busy_ms_acc = 0;
    p->busy_last_ms = now;
}

static void autotune_tick(pool_t *p, uint64_t now) {
    if (p->app.max_instances != 0 || p->stopping) {
        autotune_restart_interval(p, now);
        p->at_cpu_ok = false;
        return;
    }
    if (now - p->at_last_ms < AUTOTUNE_INTERVAL_MS) return;
    busy_account(p);
    uint64_t interval = now - p->at_last_ms;
    autotune_sample_t s = {
        .now_ms = now,
        .interval_ms = interval,
        .completed = p->st.requests - p->at_base.requests,
        .acquired = p->st.acquired - p->at_base.acquired,
        .waited = p->st.waited - p->at_base.waited,
        .wait_ms = p->st.queue_wait_ms_total - p->at_base.queue_wait_ms_total,
        .refused = p->st.queue_full - p->at_base.queue_full,
        .queued_max = p->at_queued_max > p->n_queued ? p->at_queued_max : p->n_queued,
        .counted = counted(p),
        .busy_max = p->at_busy_max > n_busy(p) ? p->at_busy_max : n_busy(p),
        .busy_avg = (double)p->busy_ms_acc / (double)interval,
        .starting = p->n_unready,
        .cpu_machine = -1,
    };
    procstat_cpu_t cpu;
    if (procstat_cpu(&cpu)) {
        if (p->at_cpu_ok) s.cpu_machine = procstat_cpu_busy(&p->at_cpu, &cpu);
        p->at_cpu = cpu;
        p->at_cpu_ok = true;
    }
    procstat_mem(&s.mem_total, &s.mem_available);
    measure_processes(p, interval, &s);
    if (autotune_step(&p->at, &s)) {
        p->auto_limit = p->at.limit;
        log_info("%s: maxInstances (auto) %s", p->app.name, p->at.reason);
    }
    autotune_restart_interval(p, now);
}

/* idleTimeout with preforkChildren (SPEC 4.9b): a group ends when every member is idle and the
 * last request of any of them ended idleTimeout ago; minInstances counts instances. */
static void end_idle_groups(pool_t *p, uint64_t now) {
    unsigned n = pool_group_size(p);
    for (worker_t *l = p->workers; l && !p->stopping; l = l->next) {
        if (!l->group || l->slot || l->state != WORKER_STATE_IDLE) continue;
        uint64_t last = l->idle_since_ms;
        bool all_idle = true;
        for (worker_t *m = p->workers; m; m = m->next) {
            if (m->group != l->group) continue;
            if (m->state != WORKER_STATE_IDLE) all_idle = false;
            else if (m->idle_since_ms > last) last = m->idle_since_ms;
        }
        if (!pool_policy_group_idle_ends(all_idle, now, last, p->app.idle_timeout, counted(p), n,
                                         p->retired ? 0 : p->app.min_instances))
            continue;
        p->st.recycles_idle++;
        worker_end(l, "idle timeout"); /* never frees synchronously: l->next stays valid */
    }
}

void pool_retire(pool_t *p) {
    p->retired = true;
}

void pool_warm(pool_t *p) {
    p->warm = true;
    maintain(p);
}

void pool_tick(pool_t *p, uint64_t now) {
    p->warm = true;
    if (p->failed && now >= p->failed_until) unfail(p, "a minute passed");
    if (p->monitor) monitor_check(p->monitor);
    autotune_tick(p, now);
    p->limit = effective_limit(p);
    if (pool_group_size(p)) {
        end_idle_groups(p, now);
        maintain(p);
        return;
    }
    /* The idle list runs from the most to the least recently used: the expired ones are at its
     * tail. minInstances of them stay. */
    while (!p->stopping && p->idle_tail &&
           pool_policy_may_end_idle(counted(p), p->retired ? 0 : p->app.min_instances) &&
           pool_policy_idle_expired(now, p->idle_tail->idle_since_ms, p->app.idle_timeout)) {
        p->st.recycles_idle++;
        worker_end(p->idle_tail, "idle timeout");
    }
    maintain(p);
}

void pool_get_stats(const pool_t *p, pool_stats_t *out) {
    *out = p->st;
    out->limit = p->limit;
    out->auto_limit = p->app.max_instances == 0;
    out->failed = p->failed;
    out->failed_until = p->failed ? p->failed_until : 0;
    out->processes = p->n_alive;
    out->idle = p->n_state[WORKER_STATE_IDLE];
    out->busy = p->n_state[WORKER_STATE_BUSY] + p->n_state[WORKER_STATE_DRAINING];
    out->starting = p->n_state[WORKER_STATE_STARTING];
    out->stopping = p->n_state[WORKER_STATE_STOPPING];
    out->queued = p->n_queued;
    out->autotune_reason = p->at.changes ? p->at.reason : NULL;
    out->autotune_changed_ms = p->at.last_change_ms;
    out->autotune_changes = p->at.changes;
    out->warm_old = 0;
    for (const worker_t *wk = p->warm_active ? p->workers : NULL; wk; wk = wk->next)
        if (wk->epoch != p->epoch && state_counts(wk->state)) out->warm_old++;
}

unsigned pool_retry_after(const pool_t *p) {
    uint64_t now = uv_now(p->loop);
    if (!p->failed || p->failed_until <= now) return 1;
    uint64_t s = (p->failed_until - now + 999) / 1000;
    return s < 1 ? 1 : (unsigned)s;
}

pool_http_t *pool_http(pool_t *p) {
    return &p->http;
}

const pool_http_t *pool_http_const(const pool_t *p) {
    return &p->http;
}

void pool_count_slow(pool_t *p) {
    p->st.slow_requests++;
}

void pool_count_stderr(pool_t *p, uint64_t lines) {
    p->st.stderr_lines += lines;
}

void pool_foreach_worker(const pool_t *p, void (*fn)(const worker_info_t *wi, void *arg),
                         void *arg) {
    for (const worker_t *wk = p->workers; wk; wk = wk->next) {
        if (!wk->alive) continue;
        worker_info_t wi = {
            .pid = wk->pid,
            .state = wk->state,
            .requests = wk->completed,
            .started_ms = wk->started_ms,
            .idle_since_ms = wk->state == WORKER_STATE_IDLE ? wk->idle_since_ms : 0,
            .leased = wk->leased,
            .group_pid = wk->group ? wk->pid : 0,
            .group_leader = wk->group && !wk->slot,
        };
        if (wk->leased && wk->req_active) {
            wi.req_method = wk->req_method;
            wi.req_uri = wk->req_uri;
            wi.req_start_ms = wk->req_start_ms;
        }
        fn(&wi, arg);
    }
}
