/* A pool of FastCGI processes for one [fastcgi:NAME] application (SPEC §4.1, §4.4, §4.6).
 *
 * pool/ knows nothing about HTTP. A caller (the FastCGI request handler) asks for a worker with
 * pool_acquire(); it gets an exclusive lease on one process and its connected stream, runs one
 * FastCGI request over it, and gives it back with pool_release(). Requests wait in a FIFO queue of
 * at most queueLength while no process is free and no more may be started.
 *
 * Lifetimes: the pool owns its workers; a worker's stream is valid from the acquire callback until
 * pool_release(). A worker whose process dies while leased stays allocated (its stream reports
 * EOF or an error to the lessee) until the lessee releases it. */
#ifndef FCGIHOST_POOL_POOL_H
#define FCGIHOST_POOL_POOL_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "ctl/status.h"

typedef struct pool pool_t;
typedef struct worker worker_t;
typedef struct pool_waiter pool_waiter_t;

/* Acquire results besides 0. */
#define POOL_EQUEUE_FULL (-1001) /* queueLength reached: answer 503 */
#define POOL_EFAILED (-1002)     /* the pool is failed (rapid fails): answer 503 */
#define POOL_ESTOPPING (-1003)   /* the pool is being stopped or removed: answer 503 */
#define POOL_ESPAWN (-1004)      /* no process could be started: answer 503 (and it is logged) */

/* status 0: `wk` is leased to the waiter and connected. Otherwise wk is NULL and status says why.
 * May run before pool_acquire() returns (an idle process was available, or the queue is full). */
typedef void (*pool_acquire_cb)(pool_waiter_t *w, worker_t *wk, int status);

struct pool_waiter {
    pool_acquire_cb cb;
    void *data;              /* the caller's */
    bool prefer_fresh;       /* the caller's: a retry after a process closed before answering
                                (SPEC 4.11): take a process that has served no request yet when
                                one is idle or can still be started, rather than one that has
                                just completed a request and may be about to exit by itself */
    /* private to the pool: */
    pool_waiter_t *prev, *next;
    uint64_t enqueued;       /* loop ms */
    bool queued;
};

typedef enum pool_release {
    POOL_RELEASE_OK,         /* request completed cleanly; the connection is reusable (KEEP_CONN) */
    POOL_RELEASE_CLOSE,      /* request completed but the connection cannot be reused: reconnect */
    POOL_RELEASE_KILL,       /* the process misbehaved (protocol error, timeout, TerminateProcess):
                                end it (SIGTERM, grace, SIGKILL as §4.4) and start another if needed */
    POOL_RELEASE_DEAD,       /* the process died or the stream failed during the request */
    POOL_RELEASE_GONE,       /* EOF or a reset before the process sent anything for this request:
                                it was already going away between requests (it exits by itself,
                                as php-cgi after PHP_FCGI_MAX_REQUESTS). The request did not fail
                                in the application: the lessee should run it again on another
                                worker when it still can (SPEC §4.1). Unlike DEAD, this is not a
                                rapid fail unless the process then exits with a signal or a
                                non-zero status (it crashed on the request). */
} pool_release_t;

typedef enum worker_state {
    WORKER_STATE_STARTING,   /* spawned, connecting */
    WORKER_STATE_IDLE,
    WORKER_STATE_BUSY,       /* leased */
    WORKER_STATE_DRAINING,   /* busy, and will be ended after the current request (recycle) */
    WORKER_STATE_STOPPING,   /* SIGTERM sent, waiting for exit (SIGKILL at the deadline); or its
                                connection closed and it gets a short grace to exit by itself.
                                Not counted against maxInstances, never leased. */
    WORKER_STATE_EXITED,     /* the process is gone, the struct waits for release/close */
    WORKER_STATE_CLOSING,    /* the process is gone and not leased: its handles are closing, then
                                the struct is freed (never seen by a lessee) */
} worker_state_t;
#define WORKER_STATE_COUNT (WORKER_STATE_CLOSING + 1)

/* Counters and gauges for status, metrics and the autotuner. */
typedef struct pool_stats {
    unsigned limit;          /* the effective maxInstances now */
    bool auto_limit;         /* maxInstances = 0 */
    bool failed;             /* rapid fails: refusing requests until failed_until */
    uint64_t failed_until;   /* loop ms; meaningful when failed */
    unsigned processes;      /* all live processes (starting..stopping) */
    unsigned idle, busy, starting, stopping; /* busy includes draining */
    unsigned queued;         /* waiters in the queue now */
    uint64_t requests;       /* leases released (completed or not) */
    uint64_t spawns, spawn_failures;
    uint64_t rapid_fails;
    uint64_t queue_full;     /* acquires refused because the queue was full */
    uint64_t recycles_max_requests, recycles_idle, recycles_change, recycles_kill, recycles_manual;
    uint64_t recycles_memory;     /* privateMemoryLimit passed (SPEC 4.10) */
    uint64_t exits_unexpected;
    uint64_t queue_wait_ms_total; /* sum of the waits of acquired waiters */
    uint64_t acquired;            /* waiters served */
    uint64_t waited;              /* ... of which had to queue */
    /* maxInstances = 0: the last change the controller made (reason NULL before any; it points
     * into the pool and is valid until the next call into the pool) */
    const char *autotune_reason;
    uint64_t autotune_changed_ms; /* loop ms of that change */
    uint64_t autotune_changes;
    uint64_t stderr_lines;        /* lines the processes wrote to stderr: FCGI_STDERR and fd 2 */
    uint64_t crashes;             /* unexpected deaths by a signal or a non-zero status */
    uint64_t slow_requests;       /* requests slower than slowRequestSeconds (SPEC 4.12) */
    unsigned warm_old;            /* a warm recycle runs: its old processes still serving or
                                     draining; 0: none runs (SPEC 4.9) */
} pool_stats_t;

/* Create a pool (no process is started until the first acquire, or pool_warm/pool_tick for
 * minInstances). `exe` is the path of the fcgihost
 * binary (for the spawn trampoline, see pool_child_main); NULL = /proc/self/exe, resolved now. The
 * pool copies what it needs from `app` and `runtime_dir` (the caller may free them afterwards).
 * Sockets of unix-protocol processes are created in runtime_dir (made, mode 0755, if missing;
 * a server that drops privileges prepares it itself, see server_user.h), mode 0600. */
pool_t *pool_new(uv_loop_t *loop, const cfg_app_t *app, const char *runtime_dir, const char *exe);

/* Apply new settings (reload or live `set`): limits and timeouts take effect for new decisions at
 * once. If the process-defining settings differ (fullPath, arguments, env, protocol, user) the pool
 * recycles gracefully. The pool works on its own copy of the settings, so after a live `set`
 * (cfg_app_set_live) the caller must call pool_configure() for the change to reach the pool.
 * A lower maxInstances ends surplus idle processes now and busy ones as they are released. */
void pool_configure(pool_t *p, const cfg_app_t *app);

/* The pool's own settings (a copy: reloads and live `set`s change them, never a generation that
 * requests in flight share). Valid until the next call into the pool that reconfigures it. */
const cfg_app_t *pool_app(const pool_t *p);
/* `fcgihost ctl set`: change a live setting (cfg_app_set_live) of this pool only, until the next
 * reload. Returns 0, or -1 with the reason in err. */
int pool_set_live(pool_t *p, const char *key, const char *value, char *err, size_t errlen);

/* Ask for a worker. `w` is the caller's (typically embedded in its request) and must stay valid
 * until its callback ran or pool_cancel(). The callback runs exactly once unless cancelled,
 * possibly before pool_acquire() returns. queueLength counts the waiters beyond those that
 * processes being started (or that may still be started under the limit) will take: such a
 * waiter does not wait behind other requests, and queueLength = 0 could otherwise never start a
 * process. */
void pool_acquire(pool_t *p, pool_waiter_t *w, pool_acquire_cb cb);
/* Take a waiter out of the queue (the client went away); no callback runs for it afterwards. */
void pool_cancel(pool_t *p, pool_waiter_t *w);
/* End a lease. OK and CLOSE count as a completed request (END_REQUEST seen); the others do not.
 * After OK the stream is the pool's again (the lessee must have stopped reading it); with the other
 * modes the pool closes it: write requests still pending are cancelled and their callbacks run
 * later with UV_ECANCELED, so their memory must outlive this call. `wk` must not be used after. */
void pool_release(worker_t *wk, pool_release_t how);

/* Release with POOL_RELEASE_GONE and learn how the process ends: cb(data, clean) runs once, when
 * its exit is seen — clean when it exited on its own with status 0 — and no later than the
 * grace a process whose connection closed gets to exit (then it is ended: not clean). cb may run
 * before this returns (the exit was already seen). Used for the retries of SPEC 4.11. */
void pool_release_gone(worker_t *wk, void (*cb)(void *data, bool clean), void *data);

/* The connected stream of a leased worker (a uv_pipe_t or uv_tcp_t). The lessee may read and
 * write it, set handle->data, start/stop reading; it must stop reading before pool_release(). */
uv_stream_t *worker_stream(worker_t *wk);

/* The lessee's reading of worker_stream. The connection stays registered with the loop from one
 * request to the next (a uv_read_stop and uv_read_start cost two epoll_ctl calls per request):
 * worker_read_start points its reads at the lessee's callbacks (and starts reading if stopped,
 * for instance after worker_read_stop for back-pressure); worker_read_detach gives them back to
 * the pool before pool_release. Returns 0 or a libuv error. A lessee never calls uv_read_start
 * or uv_read_stop on worker_stream itself: the pool's record of the reading would be wrong. */
int worker_read_start(worker_t *wk, uv_alloc_cb alloc, uv_read_cb read);
void worker_read_stop(worker_t *wk);
void worker_read_detach(worker_t *wk);
pid_t worker_pid(const worker_t *wk);
/* The request a leased process serves, for `ctl status` and crash reports (SPEC 4.12): the
 * lessee names it once it has the lease. Copied, bounded (WORKER_METHOD_MAX, WORKER_URI_MAX bytes
 * with their NUL; a longer URI is cut and ends in "..."). Forgotten when the request completes
 * (release OK or CLOSE); kept after the other releases until the process has exited, so that a
 * crash names the request that killed it. */
void worker_set_request(worker_t *wk, const char *method, size_t mlen, const char *uri,
                        size_t ulen);
#define WORKER_METHOD_MAX 24
#define WORKER_URI_MAX 256
/* FCGI_STDERR text the lessee received for the current request: its last lines are kept with the
 * process's own fd 2 lines for a crash report (the pool splits at newlines, keeps the last
 * POOL_CRASH_LINES lines, each cut at POOL_CRASH_LINE_MAX - 1 bytes). */
void worker_note_stderr(worker_t *wk, const char *data, size_t len);

/* The last process of the pool that died unexpectedly: killed by a signal, or exited with a
 * non-zero status, without the server asking it to (SPEC 4.12). It is logged (one line: how, the
 * request it was serving, its last stderr lines) once its output has been read to the end. */
#define POOL_CRASH_LINES 5
#define POOL_CRASH_LINE_MAX 200
typedef struct pool_crash {
    pid_t pid;
    int signal;              /* the signal that killed it; 0: it exited with `status` */
    int64_t status;
    uint64_t when_ms;        /* loop ms of its exit */
    char how[80];            /* "killed by signal 11 (Segmentation fault)", "exited with status 3" */
    bool in_request;         /* it died serving the request below */
    char method[WORKER_METHOD_MAX];
    char uri[WORKER_URI_MAX];
    uint64_t request_ms;     /* how long it had been serving it */
    uint64_t completed;      /* requests it had completed before */
    unsigned n_stderr;
    char stderr_lines[POOL_CRASH_LINES][POOL_CRASH_LINE_MAX]; /* oldest first */
} pool_crash_t;
/* NULL when no process has crashed yet. Valid until the next call into the pool. */
const pool_crash_t *pool_last_crash(const pool_t *p);
/* Requests this process has completed before the current one (releases with OK or CLOSE). */
uint64_t worker_requests(const worker_t *wk);
pool_t *worker_pool(const worker_t *wk);
const char *pool_name(const pool_t *p);

/* Recycle every process gracefully: idle and starting ones now, busy ones after their request
 * (§4.8 / ctl). Counted in recycles_manual. `reason` is only logged (not kept). */
void pool_recycle(pool_t *p, const char *reason);

/* Same, choosing the counter: POOL_RECYCLE_CHANGE for configuration or monitored-file changes
 * (recycles_change), POOL_RECYCLE_MANUAL for ctl recycle (recycles_manual). */
typedef enum pool_recycle_kind {
    POOL_RECYCLE_MANUAL,
    POOL_RECYCLE_CHANGE,
} pool_recycle_kind_t;
void pool_recycle_for(pool_t *p, pool_recycle_kind_t kind, const char *reason);
/* Also clears a failed state (ctl recycle). */
void pool_reset_failed(pool_t *p);

/* Stop: refuse new acquires (POOL_ESTOPPING) and fail queued waiters, let busy processes finish
 * their request, end every process as §4.4, then call done once no process is left and every
 * handle of the pool is closed. done runs once; it may run before pool_stop() returns (nothing
 * was running) and may call pool_free(). A second pool_stop() is ignored. */
void pool_stop(pool_t *p, void (*done)(pool_t *p, void *arg), void *arg);
/* SIGKILL to every process still running (a stopping pool whose processes are in their grace
 * period, when the server's shutdownTimeout has passed); they are reaped as usual. */
void pool_kill(pool_t *p);
/* References (pool_new gives the first): whoever names the pool — the server's list of live
 * pools, each configuration generation — holds one. pool.c does not act on the count: the owner
 * stops the pool when the last reference goes (server.c) and frees it once it is also stopped. */
pool_t *pool_ref(pool_t *p);
unsigned pool_unref(pool_t *p); /* returns the references left */
unsigned pool_refs(const pool_t *p);
bool pool_stopping(const pool_t *p); /* pool_stop was called */
bool pool_stopped(const pool_t *p);  /* pool_stop's done callback has run */
/* Free a stopped pool (after done ran, or from done itself). */
void pool_free(pool_t *p);

/* Maintenance, from the server's one timer (about once a second): idle timeouts, failed-state
 * expiry, limit decisions, minInstances. `now` is the loop's time in ms (uv_now). */
void pool_tick(pool_t *p, uint64_t now);
/* The server has started (its privileges are dropped): start the minInstances processes now
 * rather than at the first pool_tick. A pool starts no process before either call. */
void pool_warm(pool_t *p);
/* A reload removed the application: the pool only serves what older generations still send it,
 * and starts no process for minInstances. pool_configure (the application is back) undoes it. */
void pool_retire(pool_t *p);

void pool_get_stats(const pool_t *p, pool_stats_t *out);

/* The Retry-After (seconds, >= 1) for a 503 this pool caused (SPEC 4.12): while it is failed,
 * the time until it tries again; otherwise (queue full, stopping, no process could start) 1. */
unsigned pool_retry_after(const pool_t *p);

/* HTTP responses to the requests mapped to this application, kept here so that they live as long
 * as the pool (across reloads) and go away with it. The server updates them as responses end. */
typedef struct pool_http {
    uint64_t classes[CTL_CLASS_COUNT];
    ctl_hist_t hist;
} pool_http_t;
pool_http_t *pool_http(pool_t *p);
const pool_http_t *pool_http_const(const pool_t *p);

/* Count lines a process wrote to stderr (FCGI_STDERR from the request handler, fd 2 from the
 * pool's capture). */
void pool_count_stderr(pool_t *p, uint64_t lines);
/* Count a request slower than slowRequestSeconds (the FastCGI handler logs it). */
void pool_count_slow(pool_t *p);

/* Per-process details for `ctl status`. Calls fn for each live process (spawned, exit not yet
 * seen), oldest first. fn must not call into the pool. */
typedef struct worker_info {
    pid_t pid;
    worker_state_t state;
    uint64_t requests;
    uint64_t started_ms;     /* loop ms */
    uint64_t idle_since_ms;  /* loop ms, when idle */
    bool leased;             /* in a lessee's hands (BUSY, DRAINING) */
    /* The request it is serving (worker_set_request), when leased; NULL otherwise. Borrowed:
     * valid until the next call into the pool. */
    const char *req_method, *req_uri;
    uint64_t req_start_ms;   /* loop ms the request got this process */
    /* preforkChildren (SPEC 4.9b): each member (instance, one connection) of a group is listed,
     * with pid = the group's process (php-cgi's master); group_pid is that pid too (0: no
     * group), and group_leader is set on the first member, after which the caller may list the
     * process's children (procstat_children). */
    pid_t group_pid;
    bool group_leader;
} worker_info_t;
/* The most children of a group's process that are looked at (status, privateMemoryLimit). */
#define POOL_CHILDREN_MAX 256
void pool_foreach_worker(const pool_t *p, void (*fn)(const worker_info_t *wi, void *arg), void *arg);

/* The spawn trampoline: fcgihost re-executes itself as
 *   fcgihost __fcgihost_spawn <uid> <gid>[,<group>...] <full_path> <argv...>
 * so that the child can set PR_SET_PDEATHSIG (no FastCGI process outlives the server, even after
 * SIGKILL) and change identity before exec'ing the application. <uid> is a number and the second
 * argument the primary gid followed by the supplementary groups (as resolved by the server, see
 * util/identity.h), or both are -1 (keep the identity). main() must call it first thing, before
 * any other argument parsing, when
 * argc > 1 and argv[1] is POOL_SPAWN_ARG:
 *     if (argc > 1 && strcmp(argv[1], POOL_SPAWN_ARG) == 0) return pool_child_main(argc, argv);
 * It does not return when the application starts; on failure it writes why to stderr (captured
 * into the error log by the pool) and returns 127, the exit status main should return. */
int pool_child_main(int argc, char **argv);
#define POOL_SPAWN_ARG "__fcgihost_spawn"
/* Set to TERM in the environment of a prefork group's process (SPEC 4.9b): the trampoline asks
 * for SIGTERM rather than SIGKILL at the server's death, so that php-cgi's master, which ends its
 * process group on SIGTERM, takes its children with it (a parent-death signal reaches only the
 * process that asked for it, and a SIGKILLed master would leave its children running). The
 * trampoline removes the variable before the application starts. */
#define POOL_PDEATHSIG_ENV "_FCGIHOST_PDEATHSIG"

#endif
