/* A plain snapshot of everything `fcgihost ctl status`, the HTTP status page (statusPath) and the
 * Prometheus metrics show, plus the request-duration histogram the server keeps per pool and for
 * the whole server.
 *
 * PURE: no libuv and no pool.h, so the renderers (ctl/render.h) and their unit tests link without
 * the event loop. The server fills a ctl_status_t from pool_get_stats(), pool_foreach_worker() and
 * its own counters, renders it and throws it away: every pointer in it is borrowed and only needs
 * to stay valid while a renderer runs.
 *
 * ---- JSON status (ctl status --json, statusPath) ----
 *
 * One object on one line, followed by a newline. Field names are stable once released (SPEC §5);
 * new fields may be added, none is renamed or removed. Counters are integers that only grow until
 * the server restarts; seconds are integers unless noted. `status APP --json` has the same shape
 * with only that pool in "pools".
 *
 *   {
 *     "server": {
 *       "version": "0.1.0",               fcgihost's version
 *       "pid": 1234,                      the server's process id
 *       "uptime_seconds": 3600,
 *       "start_time": 1700000000,         Unix time (seconds) the server started
 *       "reloads": {"ok": 2, "failed": 0},   configuration reloads (SIGHUP or ctl reload)
 *       "connections": 5,                 HTTP connections open now
 *       "requests": {"total": 12345, "1xx": 0, "2xx": 12000, "3xx": 100, "4xx": 200, "5xx": 45},
 *                                         responses sent, by status class; total = their sum
 *       "request_duration_seconds": HISTOGRAM   every response, from the request head to the end
 *       "compression": {"responses": 40, "bytes_in": 900000, "bytes_out": 200000}
 *                                         responses coded on the fly (gzip/br) and their body bytes
 *                                         before and after; bytes_in - bytes_out is what was saved
 *     },
 *     "pools": [ {                        one per [fastcgi:NAME], in configuration order
 *       "name": "php",
 *       "limit": 12,                      the effective maxInstances now
 *       "auto": true,                     maxInstances = 0: the limit is tuned automatically
 *       "min_instances": 0,               the minInstances setting (processes kept started)
 *       "max_concurrent_starts": 4,       the maxConcurrentStarts setting
 *       "private_memory_limit_bytes": 0,  privateMemoryLimit (KiB in the file) in bytes; 0: none
 *       "slow_request_seconds": 0,        the slowRequestSeconds setting; 0: off
 *       "recycle_mode": "warm",           the recycleMode setting: "warm" | "immediate"
 *       "warm_recycle_old": 0,            a warm recycle runs: its old processes still serving
 *                                         or draining (replacements start first); 0: none runs
 *       "prefork_children": 0,            the preforkChildren setting (SPEC 4.9b); 0: one process
 *                                         per socket, else the children per group
 *       "autotune": {"note": "raised 8 -> 12: requests waited", "seconds_ago": 30} | null,
 *                                         the last limit change and why; null if none yet
 *       "failed": false,                  rapid fails (SPEC §4.6): 503 at once until it retries
 *       "retry_in_seconds": 0,            seconds until a failed pool tries again; 0 when not failed
 *       "processes": {"total": 12, "starting": 0, "idle": 3, "busy": 9, "draining": 0,
 *                     "stopping": 0},     live processes by state; busy does not include draining;
 *                                         starting: started and not yet answering FCGI_GET_VALUES
 *                                         (at most maxConcurrentStarts), or reconnecting
 *       "queue": {"queued": 0,            requests waiting for a process now
 *                 "length": 1000,         the queueLength setting
 *                 "acquired": 5000,       waiters that got a process
 *                 "wait_ms_total": 1234,  the sum of their waits, in milliseconds
 *                 "full": 0},             requests refused with 503 because the queue was full
 *       "requests": {"completed": 12340, "total": 12345, "1xx": 0, "2xx": ..., "5xx": ...},
 *                                         completed: FastCGI requests its processes ended
 *                                         (successfully or not); total and the classes: HTTP
 *                                         responses to requests mapped to this application
 *       "request_duration_seconds": HISTOGRAM,
 *       "spawns": 14, "spawn_failures": 0,
 *       "rapid_fails": 0,                 SPEC §4.6
 *       "recycles": {"max_requests": 2, "idle": 1, "change": 0, "kill": 0, "manual": 0,
 *                    "memory": 0},
 *                                         processes ended by the server, by reason
 *       "exits_unexpected": 0,            processes that exited without being asked to
 *       "stderr_lines": 0,                lines the processes wrote to stderr (FCGI_STDERR included)
 *       "slow_requests": 0,               requests slower than slowRequestSeconds (each logged)
 *       "crashes": 0,                     processes that died by a signal or with a non-zero
 *                                         status without being asked to
 *       "last_crash": {                   the last of them, or null
 *         "pid": 2345, "seconds_ago": 12,
 *         "how": "killed by signal 11 (Segmentation fault)" | "exited with status 3",
 *         "signal": 11 | null, "exit_status": 3 | null,
 *         "request": {"method": "GET", "uri": "/x.php", "elapsed_seconds": 0.2} | null,
 *                                         the request it was serving when it died
 *         "requests": 17,                 requests it had completed
 *         "stderr": ["...", ...]          its last stderr lines (fd 2 and FCGI_STDERR), at most 5,
 *                                         oldest first, each at most 199 bytes
 *       } | null,
 *       "process_list": [ {
 *         "pid": 2345, "state": "idle",   starting | idle | busy | draining | stopping | child
 *         "requests": 1234,               requests this process completed
 *         "age_seconds": 192,
 *         "idle_seconds": 2 | null,       null unless idle
 *         "rss_bytes": 47395635 | null,   resident memory; null when unknown
 *         "cpu_seconds": 1.25 | null,     CPU time used (user + system); null when unknown
 *         "request": {"method": "GET",    the request it serves now (busy, draining), else null
 *                     "uri": "/x.php?a=1",   the target as the client sent it (at most 255 bytes:
 *                                            a longer one is cut and ends in "...")
 *                     "elapsed_seconds": 2.5} | null   since the request got this process
 *         "group": 2345 | null            preforkChildren: the pid of the group's process
 *       } ]
 *                                         With preforkChildren = N each group shows as N entries
 *                                         (its instances: connections, each serving one request
 *                                         at a time) with the pid, RSS and CPU of the group's
 *                                         process (php-cgi's master), each followed, after the
 *                                         first, by one entry per child process with state
 *                                         "child" (requests 0, request null; its own pid, RSS,
 *                                         CPU). Children count in no state of "processes".
 *     } ]
 *   }
 *
 *   HISTOGRAM = {"buckets": {"0.005": 3, "0.01": 5, "0.025": 9, ..., "10": 12, "+Inf": 12},
 *                "sum": 1.234567, "count": 12}
 *     Buckets are cumulative as in Prometheus: the value under "0.025" counts observations of at
 *     most 25 ms; "+Inf" equals count. The keys are always the twelve listed in ctl_hist_t, in
 *     increasing order. sum is in seconds, with up to six decimals.
 *
 * Strings are escaped as RFC 8259 requires: quote, backslash and control bytes (< 0x20, and 0x7f)
 * are escaped; valid UTF-8 passes through unchanged; each byte that is not part of a valid UTF-8
 * sequence (overlong forms and surrogates included) becomes U+FFFD (written "\ufffd"), so the
 * document is always valid UTF-8 JSON.
 */
#ifndef FCGIHOST_CTL_STATUS_H
#define FCGIHOST_CTL_STATUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* ---- Request-duration histogram ---- */

/* Upper bounds in seconds: 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10, then +Inf. */
#define CTL_HIST_BUCKETS 12

/* A fixed-bucket histogram of durations. Zero-initialised (memset or `= {0}`) it is empty. */
typedef struct ctl_hist {
    uint64_t buckets[CTL_HIST_BUCKETS]; /* NOT cumulative: observations in (bound[i-1], bound[i]] */
    uint64_t count;
    double sum; /* seconds */
} ctl_hist_t;

/* Upper bound of bucket i (0 <= i < CTL_HIST_BUCKETS - 1) in microseconds; the last bucket is
 * +Inf and has no bound (UINT64_MAX). */
static inline uint64_t ctl_hist_bound_us(unsigned i) {
    static const uint64_t bounds[CTL_HIST_BUCKETS - 1] = {
        5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
    };
    return i < CTL_HIST_BUCKETS - 1 ? bounds[i] : UINT64_MAX;
}

/* Record one duration. A value counts in the first bucket whose bound it does not exceed; values
 * are compared at microsecond resolution (within half a microsecond of a bound counts as equal),
 * so 5 ms computed as 5 / 1000.0 or 0.001 * 5 lands in the 0.005 bucket either way. Negative and
 * NaN durations count as 0 (a clock that stepped back must not poison the sum); anything above
 * 1e9 s (+Inf included) counts as 1e9 s so that the sum stays finite. */
static inline void ctl_hist_observe(ctl_hist_t *h, double seconds) {
    if (!(seconds >= 0)) seconds = 0;
    if (seconds > 1e9) seconds = 1e9;
    double us = seconds * 1e6;
    unsigned i = 0;
    while (i < CTL_HIST_BUCKETS - 1 && us >= (double)ctl_hist_bound_us(i) + 0.5) i++;
    h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

/* ---- Status classes, process states, recycle reasons ---- */

#define CTL_CLASS_COUNT 5 /* 1xx .. 5xx */

/* Index (0 = 1xx .. 4 = 5xx) of an HTTP status code, or -1 outside 100..599. */
static inline int ctl_status_class(int http_status) {
    return http_status >= 100 && http_status <= 599 ? http_status / 100 - 1 : -1;
}

/* Responses are also counted by exact status code, 100..599 only (any other code a response could
 * carry is not counted there, so the series stay bounded). */
#define CTL_CODE_MIN 100
#define CTL_CODE_COUNT 500

/* Index (0 = 100 .. 499 = 599) of an HTTP status code, or -1 outside 100..599. */
static inline int ctl_status_code_index(int http_status) {
    return http_status >= CTL_CODE_MIN && http_status < CTL_CODE_MIN + CTL_CODE_COUNT
               ? http_status - CTL_CODE_MIN
               : -1;
}

static inline const char *ctl_class_name(unsigned i) {
    static const char *const names[CTL_CLASS_COUNT] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    return i < CTL_CLASS_COUNT ? names[i] : "?";
}

/* Process states as status shows them (pool.h's STARTING, IDLE, BUSY, DRAINING, STOPPING; EXITED
 * and CLOSING processes are gone and not shown). */
typedef enum ctl_proc_state {
    CTL_PROC_STARTING,
    CTL_PROC_IDLE,
    CTL_PROC_BUSY,     /* leased, not draining */
    CTL_PROC_DRAINING, /* leased, ends after its request */
    CTL_PROC_STOPPING,
} ctl_proc_state_t;
#define CTL_PROC_STATE_COUNT (CTL_PROC_STOPPING + 1)

static inline const char *ctl_proc_state_name(unsigned s) {
    static const char *const names[CTL_PROC_STATE_COUNT] = {"starting", "idle", "busy", "draining",
                                                            "stopping"};
    return s < CTL_PROC_STATE_COUNT ? names[s] : "unknown";
}

/* Why the server ended a process (pool_stats_t's recycles_*). */
typedef enum ctl_recycle {
    CTL_RECYCLE_MAX_REQUESTS, /* instanceMaxRequests / PHP_FCGI_MAX_REQUESTS reached */
    CTL_RECYCLE_IDLE,         /* idleTimeout */
    CTL_RECYCLE_CHANGE,       /* configuration or monitorChangesTo file changed */
    CTL_RECYCLE_KILL,         /* misbehaved: timeout, protocol error, TerminateProcess */
    CTL_RECYCLE_MANUAL,       /* ctl recycle */
    CTL_RECYCLE_MEMORY,       /* privateMemoryLimit passed */
} ctl_recycle_t;
#define CTL_RECYCLE_COUNT (CTL_RECYCLE_MEMORY + 1)

static inline const char *ctl_recycle_name(unsigned r) {
    static const char *const names[CTL_RECYCLE_COUNT] = {"max_requests", "idle", "change", "kill",
                                                         "manual", "memory"};
    return r < CTL_RECYCLE_COUNT ? names[r] : "unknown";
}

/* ---- The snapshot ---- */

typedef struct ctl_proc_status {
    pid_t pid;
    const char *state;  /* borrowed: ctl_proc_state_name() of its state */
    uint64_t requests;  /* requests it completed */
    uint64_t age_s;
    int64_t idle_s;     /* seconds idle, or -1 when not idle */
    uint64_t rss_bytes; /* resident memory, 0 when unknown */
    bool cpu_known;     /* cpu_ms is known */
    uint64_t cpu_ms;    /* CPU time it used (user + system) */
    const char *method; /* borrowed: the request it serves now, or NULL */
    const char *uri;    /* borrowed: that request's target as the client sent it */
    uint64_t request_ms; /* how long that request has had this process */
    pid_t group;        /* preforkChildren: the pid of the group's process (its master); 0: none */
} ctl_proc_status_t;

/* The last process of a pool that died unexpectedly (SPEC 4.12). Strings borrowed. */
typedef struct ctl_crash {
    pid_t pid;
    uint64_t age_s;            /* seconds since it died */
    const char *how;           /* "killed by signal 11 (Segmentation fault)", "exited with status 3" */
    int signal;                /* 0 when it exited */
    int64_t exit_status;       /* when signal is 0 */
    const char *method;        /* the request it was serving, or NULL */
    const char *uri;
    uint64_t request_ms;       /* how long it had been serving it */
    uint64_t requests;         /* requests it had completed */
    const char *const *stderr_lines; /* its last stderr lines, oldest first */
    size_t n_stderr;
} ctl_crash_t;

typedef struct ctl_pool_status {
    const char *name;          /* borrowed */
    unsigned limit;            /* effective maxInstances now */
    bool auto_limit;           /* maxInstances = 0 */
    unsigned min_instances;    /* the minInstances setting */
    unsigned max_concurrent_starts; /* the maxConcurrentStarts setting */
    uint64_t private_memory_limit;  /* the privateMemoryLimit setting, bytes; 0: none */
    unsigned slow_request_seconds;  /* the slowRequestSeconds setting; 0: off */
    const char *recycle_mode;  /* "warm" | "immediate" (static) */
    unsigned warm_old;         /* old processes of a running warm recycle; 0: none runs */
    unsigned prefork_children;      /* the preforkChildren setting; 0: one process per socket */
    const char *autotune_note; /* borrowed; the last limit change and why, or NULL */
    uint64_t autotune_note_age_s; /* seconds since that change (meaningful with a note) */
    bool failed;
    uint64_t failed_retry_s;   /* seconds until a failed pool tries again */
    unsigned procs[CTL_PROC_STATE_COUNT]; /* live processes by state (busy excludes draining) */
    unsigned queued;           /* waiting now */
    unsigned queue_length;     /* the queueLength setting */
    uint64_t acquired;         /* waiters that got a process */
    uint64_t queue_wait_ms_total;
    uint64_t queue_full;       /* 503: queue full */
    uint64_t completed;        /* FastCGI requests ended (pool_stats_t.requests) */
    uint64_t requests[CTL_CLASS_COUNT]; /* HTTP responses of requests mapped to it, by class */
    ctl_hist_t duration;
    uint64_t spawns, spawn_failures;
    uint64_t rapid_fails;
    uint64_t recycles[CTL_RECYCLE_COUNT];
    uint64_t exits_unexpected;
    uint64_t stderr_lines;
    uint64_t crashes;          /* unexpected deaths by a signal or a non-zero exit status */
    uint64_t slow_requests;    /* requests slower than slowRequestSeconds */
    const ctl_crash_t *last_crash; /* borrowed; NULL when none */
    const ctl_proc_status_t *procs_list; /* borrowed, n_procs entries, oldest first */
    size_t n_procs;
} ctl_pool_status_t;

typedef struct ctl_server_status {
    const char *version; /* borrowed */
    pid_t pid;
    uint64_t uptime_s;
    int64_t start_time;  /* Unix seconds */
    uint64_t reloads_ok, reloads_failed;
    uint64_t connections; /* open now */
    uint64_t requests[CTL_CLASS_COUNT];
    const uint64_t *codes; /* borrowed: CTL_CODE_COUNT counters of responses by exact status
                              (index = code - CTL_CODE_MIN), or NULL for none */
    ctl_hist_t duration;
    /* Content codings (SPEC §7): responses coded, body bytes before and after coding. */
    uint64_t compressed, compress_in_bytes, compress_out_bytes;
    /* TLS handshakes (SPEC §7): full, resumed (session tickets), failed. */
    uint64_t tls_full, tls_resumed, tls_failed;
    /* HTTP/2 (SPEC §7): connections and streams (requests) since start. */
    uint64_t h2_connections, h2_streams;
} ctl_server_status_t;

typedef struct ctl_status {
    ctl_server_status_t server;
    const ctl_pool_status_t *pools; /* borrowed, n_pools entries */
    size_t n_pools;
} ctl_status_t;

/* The pool called `name`, or NULL (the server answers `status APP` for an unknown APP with
 * code 1). */
static inline const ctl_pool_status_t *ctl_status_find_pool(const ctl_status_t *st,
                                                            const char *name) {
    for (size_t i = 0; i < st->n_pools; i++)
        if (st->pools[i].name && strcmp(st->pools[i].name, name) == 0) return &st->pools[i];
    return NULL;
}

#endif
