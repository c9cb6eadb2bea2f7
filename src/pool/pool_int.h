/* Private to src/pool/: the pool and worker structs and the calls between pool.c (queue, leases,
 * accounting: the "why") and worker.c (sockets, uv_spawn, connections, signals: the "how").
 *
 * Lifetime of a worker (STYLE.md "Ownership and lifetime"): allocated by worker_spawn() and linked
 * into pool->workers; every uv handle it embeds is counted in open_handles while initialized and in
 * pending_closes while closing. Once its process is gone and it is not leased it is "finishing":
 * its handles are closed and the struct is freed from the last close callback (worker_maybe_free),
 * which then tells the pool (pool_on_worker_freed). Nothing frees a worker synchronously. */
#ifndef FCGIHOST_POOL_POOL_INT_H
#define FCGIHOST_POOL_POOL_INT_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "pool/autotune.h"
#include "pool/policy.h"
#include "pool/procstat.h"
#include "pool/pool.h"
#include "pool/privsep.h"

/* Captured stdout/stderr lines are cut at this length; the rest of such a line is dropped, so a
 * process writing without newlines cannot grow the server's memory. */
#define WORKER_LINE_MAX 4096

typedef struct worker_linebuf {
    size_t len;
    bool cutting; /* inside a line that was already cut: drop until the newline */
    char data[WORKER_LINE_MAX];
} worker_linebuf_t;

typedef enum worker_conn_state {
    WORKER_CONN_NONE,    /* no connection handle */
    WORKER_CONN_OPEN,    /* initialized: connecting or connected */
    WORKER_CONN_CLOSING, /* uv_close called, close callback pending */
} worker_conn_state_t;

/* What the worker's one timer is doing now. */
typedef enum worker_timer_kind {
    WORKER_TIMER_NONE,
    WORKER_TIMER_RETRY, /* reconnect after a failed connect */
    WORKER_TIMER_GRACE, /* connection lost: give the process time to exit by itself */
    WORKER_TIMER_KILL,  /* SIGTERM sent: SIGKILL at the deadline (§4.4) */
    WORKER_TIMER_DRAIN, /* process gone: wait a little for the rest of its stdout/stderr */
    WORKER_TIMER_PROBE, /* FCGI_GET_VALUES sent: ready at the answer, or when this expires */
} worker_timer_kind_t;

struct worker {
    pool_t *pool;                    /* borrowed: the pool outlives its workers */
    worker_t *prev, *next;           /* pool->workers, oldest first */
    worker_t *idle_prev, *idle_next; /* pool->idle_head: most recently used first (LIFO) */
    worker_state_t state;            /* change only through pool_set_state() */
    unsigned seq;
    unsigned epoch;                  /* pool->epoch when spawned: older ones are being replaced by
                                        a warm recycle (SPEC 4.9) */
    bool warm_credited;              /* its first readiness was counted in pool->warm_credits */
    pid_t pid;                       /* 0 until spawned */

    uv_process_t proc;               /* the direct path: the server spawned the process */
    privsep_proc_t hproc;            /* via_helper: the privileged helper spawned it (privsep.h) */
    bool via_helper;
    uv_pipe_t out, err;              /* the process's stdout and stderr, logged line by line */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } conn;                          /* the FastCGI connection (the lessee's stream) */
    uv_connect_t connect_req;
    uv_timer_t timer;
    worker_timer_kind_t timer_kind;
    worker_conn_state_t conn_state;
    bool conn_reading;               /* the connection is registered for reading with the loop */
    uv_alloc_cb lessee_alloc;        /* the lessee's read callbacks (worker_read_start); NULL: */
    uv_read_cb lessee_read;          /*   the pool's own (idle) reading */

    cfg_protocol_t protocol;         /* as spawned */
    char *sock_path;                 /* unix: the socket file (unlinked when freed); NULL for tcp */
    struct sockaddr_in tcp_addr;     /* tcp: 127.0.0.1:port */
    char *tag;                       /* "<app>[<pid>]: " for captured output and log lines */
    char reason[96];                 /* why the pool ends it (logged at exit) */

    uint64_t completed;              /* requests completed (released OK or CLOSE) */
    bool req_active;                 /* req_* name its current (or interrupted) request */
    char req_method[WORKER_METHOD_MAX];
    char req_uri[WORKER_URI_MAX];
    uint64_t req_start_ms;
    /* The last stderr lines (fd 2 and FCGI_STDERR), a ring, for a crash report. */
    char err_keep[POOL_CRASH_LINES][POOL_CRASH_LINE_MAX];
    unsigned err_keep_n, err_keep_next;
    bool crash_pending;              /* died unexpectedly: reported once its output is read */
    int64_t exit_status;
    int exit_signal;
    uint64_t exit_ms;
    uint64_t cpu_ns, runq_ns;        /* /proc/PID/schedstat at the autotuner's last reading */
    bool sched_seen;                 /* cpu_ns and runq_ns hold a reading */
    uint64_t started_ms, idle_since_ms;
    unsigned connect_tries;
    unsigned open_handles, pending_closes;

    bool alive;                      /* spawned and exit_cb not yet run */
    bool proc_open, out_open, err_open, timer_open;
    bool leased;
    bool requested;                  /* the pool asked the process to end: its exit is expected */
    bool in_request_death;           /* released DEAD (or KILL once exited): failed in a request */
    bool gone_before_answer;         /* released GONE */
    void (*gone_cb)(void *data, bool clean); /* pool_release_gone: told how the process ended */
    void *gone_data;
    bool exit_clean;                 /* exit_cb ran: exit status 0, no signal */
    bool reconnect;                  /* connect again once the old connection handle is closed */
    bool ready;                      /* it answered FCGI_GET_VALUES (or its grace passed, or it
                                        closed the probe): no longer "starting" for
                                        maxConcurrentStarts (SPEC 4.9) */
    bool probing;                    /* the connection is the FCGI_GET_VALUES probe */
    bool probe_kept;                 /* ... kept as its first connection: until a request goes
                                        over it, an end of it is no exit (reconnect instead) */
    bool probe_late;                 /* kept unanswered (its grace passed): the answer may still
                                        come while it is idle, and is read as such */
    unsigned char probe_hdr[8];      /* the answer's record header, as it arrives */
    unsigned probe_have;             /* header bytes in probe_hdr */
    uint32_t probe_left;             /* content and padding bytes of the answer still to come */
    bool finishing;                  /* process gone, not leased: closing handles, then freed */

    worker_linebuf_t out_line, err_line;
    /* Its fd 1 and fd 2 reach the error log at a bounded rate (a process writing endlessly must
     * not fill the disk): a byte budget refilled over time; what is over it is counted, and one
     * line says how much was dropped. */
    uint64_t log_budget_ms;          /* loop ms of the last refill */
    uint64_t log_budget;             /* bytes that may still be logged */
    uint64_t log_dropped, log_dropped_lines;

    /* preforkChildren = N (SPEC 4.9b): a group is one started process whose N children share its
     * socket, served over N connections. The leader (slot false) owns the process, its pipes and
     * the socket file, and is also one of the N connections; the N - 1 slots own only a
     * connection and their timer and borrow the process: pid and alive mirror the leader's, and
     * the leader's exit is every slot's exit. Members find each other by `group` (the leader's
     * seq) in pool->workers, never by pointer: a slot may outlive its leader's struct while a
     * lessee still holds it. */
    unsigned group;                  /* 0: no group (preforkChildren = 0) */
    bool slot;                       /* a member without the process */
    bool term_sent;                  /* leader: the §4.4 end sequence (signal) has begun */
};

struct pool {
    uv_loop_t *loop;                 /* borrowed */
    cfg_app_t app;                   /* own deep copy of the strings the pool uses */
    char *runtime_dir;
    char *exe;
    unsigned auto_limit;             /* the limit used for maxInstances = 0 (at.limit) */
    unsigned limit;                  /* the effective limit */
    unsigned request_limit;          /* recycle after this many requests; 0 = never */
    unsigned seq;                    /* socket names: <app>-<serverpid>-<seq>.sock */

    worker_t *workers, *workers_tail;
    worker_t *idle_head, *idle_tail;
    pool_waiter_t *q_head, *q_tail;
    unsigned n_queued;
    pool_waiter_t *fail_last;        /* fail_waiters(): the last waiter of the batch being failed */
    unsigned n_state[WORKER_STATE_COUNT];
    unsigned n_alive;
    unsigned n_unready;              /* alive processes not yet ready (worker->ready): the ones
                                        starting, limited by maxConcurrentStarts */

    pool_stats_t st;                 /* counters; the gauges are filled in by pool_get_stats */
    pool_http_t http;                /* responses, by the server */

    /* maxInstances = 0 (autotune.h): the controller and what it measures between two decisions */
    autotune_t at;
    uint64_t at_last_ms;             /* the start of the interval being measured */
    pool_stats_t at_base;            /* the counters at that start */
    unsigned at_queued_max, at_busy_max;
    uint64_t busy_ms_acc;            /* busy processes x ms during the interval */
    uint64_t busy_last_ms;           /* up to when busy_ms_acc is counted */
    procstat_cpu_t at_cpu;
    bool at_cpu_ok;
    pool_failwin_t failwin;
    bool failed;
    uint64_t failed_until;

    /* Warm recycling (SPEC 4.9, pool.c "Warm recycling"): a whole-pool recycle in recycleMode =
     * warm moves to a new epoch; the processes of older epochs serve until replacements are
     * ready. */
    unsigned epoch;
    bool warm_active;                /* old processes remain (serving or draining) */
    unsigned warm_credits;           /* replacements ready, old processes not yet retired for them */
    unsigned warm_retired;           /* old processes retired by this warm recycle */
    uint64_t warm_started_ms;
    char warm_reason[96];            /* why, for the old processes' exit lines */

    bool stopping, done_called;
    bool warm;                       /* the server has started: minInstances may be started */
    bool retired;                    /* removed by a reload (pool_retire): no minInstances */
    uint64_t spawn_retry_at;         /* loop ms: no start before (descriptors or memory ran out) */
    unsigned refs;           /* pool_ref/pool_unref: the server's list and each generation naming it */
    void (*done)(pool_t *p, void *arg);
    void *done_arg;

    struct monitor *monitor;         /* monitorChangesTo; NULL = none */
    pool_crash_t last_crash;         /* valid when has_crash */
    bool has_crash;
    bool in_maintain, maintain_again;
};

/* ---- pool.c, called by worker.c ---- */

/* The one place where a worker's state changes: keeps n_state[] and the idle list right. */
void pool_set_state(worker_t *wk, worker_state_t s);
/* Register a new worker in state STARTING (before anything can fail). */
void pool_add_worker(pool_t *p, worker_t *wk);
/* The connection is established: the worker becomes idle and may serve a waiter. */
void pool_on_worker_connected(worker_t *wk);
/* exit_cb: accounting, logging, what happens to the struct. */
void pool_on_worker_exit(worker_t *wk, int64_t status, int term_signal);
/* Connecting kept failing while the process lives: a rapid fail, and the process is ended. */
void pool_on_worker_connect_failed(worker_t *wk);
/* Unlink a worker whose last handle closed, just before it is freed. */
void pool_remove_worker(worker_t *wk);
/* The last handle closed and wk was unlinked and freed. May call the stop callback: the caller
 * must not touch the pool afterwards. */
void pool_on_worker_freed(pool_t *p);
/* A process that died unexpectedly (crash_pending) has no output left to read: fill the pool's
 * last crash and log it. */
void pool_report_crash(worker_t *wk);
/* Keep one stderr line of the process for a crash report. */
void worker_keep_line(worker_t *wk, const char *line, size_t len);
/* Note a rapid fail; may mark the pool failed and fail the queued waiters. */
void pool_rapid_fail(pool_t *p);

/* ---- worker.c, called by pool.c ---- */

/* Start one process and begin connecting to it. Returns 0, or a negative UV_E* code (logged) after
 * which the worker is already finishing (it stays in the list until its handles are closed). */
int worker_spawn(pool_t *p);
/* (Re)connect a worker in state STARTING whose process lives. */
void worker_connect(worker_t *wk);
/* Idle connection watching: notice EOF (the process exits by itself) and stray bytes. */
void worker_watch(worker_t *wk);
void worker_unwatch(worker_t *wk);
void worker_close_conn(worker_t *wk);
/* End the process as §4.4 (SIGTERM + grace + SIGKILL, or SIGKILL) and mark it STOPPING; finishes
 * the worker instead when the process is already gone. Not for leased workers. A member of a
 * prefork group ends its whole group: its members not leased stop at once, the leased ones drain
 * (DRAINING), and the process is signalled when no member is leased any more. */
void worker_end(worker_t *wk, const char *reason);
/* End the prefork group `group` (SPEC 4.9b): its members not leased stop now, the leased ones
 * finish their request (DRAINING); the process gets the §4.4 sequence once none is leased. Called
 * again as each drained member is released (retire_if_due). Usable while members are leased. */
void worker_end_group(pool_t *p, unsigned group, const char *reason);
/* The connection is lost and the process is expected to exit by itself: STOPPING without a
 * signal; if it is still there after a short grace, worker_end(). */
void worker_expect_exit(worker_t *wk, const char *why);
/* preforkChildren (SPEC 4.9b): the number of instances in a group, or 0. */
unsigned pool_group_size(const pool_t *p);
/* A member's connection ended while its group lives (a child exited, or php-cgi's master re-forked
 * it): connect again; the group goes on. */
void worker_reconnect(worker_t *wk, const char *why);
/* SIGKILL now, whatever its state, if it still runs (pool_kill). */
void worker_kill(worker_t *wk);
/* The process is gone and the worker is not leased: close every handle; freed from the last
 * close callback. */
void worker_finish(worker_t *wk);

#endif
