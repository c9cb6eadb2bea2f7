/* The server: owns the uv loop, the configuration generations, listeners, connections, signals and
 * the one maintenance timer. There is exactly one server_t per process, passed explicitly (no
 * global), so tests could run several. */
#ifndef FCGIHOST_SERVER_H
#define FCGIHOST_SERVER_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "ctl/status.h"
#include "util/buf.h"

typedef struct conn conn_t;
typedef struct listener listener_t;
typedef struct file_cache file_cache_t;
typedef struct mime_table mime_table_t;
typedef struct ctl_listener ctl_listener_t;

/* One configuration generation. Requests hold a reference to the generation they started with, so
 * a reload never changes the rules under a request in flight. */
typedef struct pool pool_t;

typedef struct gen {
    cfg_t *cfg;
    pool_t **pools;           /* the pool of cfg->apps[i], each with a reference of this generation:
                                 a pool runs while a generation (a request in flight) names it */
    struct server *srv;
    unsigned refs;
} gen_t;

typedef struct server {
    uv_loop_t *loop;
    char *conf_path;
    gen_t *gen;               /* current generation (holds one reference) */
    listener_t *listeners;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t maint;         /* the one maintenance timer: timeouts, clock, caches */
    uv_prepare_t flush;       /* flushes the access log once per loop iteration */
    /* The deferred pass (src/http/conn.c): work that must not run under a caller's stack —
     * on_abort of requests whose client left, and continuing a connection after a handler
     * finished its request — runs from this check handle, right after the poll phase; the idle
     * handle keeps the poll from blocking while work is pending. */
    uv_check_t defer_check;
    uv_idle_t defer_idle;
    struct request *defer_aborts; /* each holds a reference */
    conn_t *defer_conns;
    conn_t *conns;            /* all open connections (intrusive list) */
    size_t n_conns;
    pool_t **pools;           /* every live pool, by application name (stopping ones excluded);
                                 the list holds a reference on each */
    size_t n_pools;
    pool_t **retired;         /* pools a reload removed, still named by an older generation: they
                                 serve its requests (and get ticks) until the last one ends */
    size_t n_retired;
    pool_t **stopping_pools;  /* pools whose pool_stop has not called back yet (owned) */
    size_t n_stopping;
    bool pools_killed;        /* shutdownTimeout passed: what was left got SIGKILL */
    char *exe;                /* this binary, for the spawn trampoline */
    mime_table_t *mime;
    file_cache_t *files;
    int root_fd;              /* O_PATH descriptor of the document root */
    char *root_real;          /* realpath() of the document root */
    int access_fd;            /* -1 = off */
    char *access_path;        /* NULL for stdout or off */
    buf_t access_buf;
    char date[40];            /* "Date: ...\r\n" value part, refreshed every second */
    int64_t date_sec;
    ctl_listener_t *ctl;      /* the control socket; NULL when it could not be created */
    /* status and metrics (server_status.c) */
    uint64_t start_ms;        /* loop ms at start */
    int64_t start_unix;
    uint64_t classes[CTL_CLASS_COUNT]; /* responses by status class */
    ctl_hist_t hist;          /* response durations */
    uint64_t reloads_ok, reloads_failed;
    uint64_t held_body_bytes; /* request bodies held in memory by handlers (server_body_hold) */
    /* Accepting (server.c): the listeners are polled only while `accepting`; maxConnections and
     * running short of descriptors pause it, and connections wait in the kernel's backlog. */
    bool accepting;
    bool fds_short;           /* paused: out of descriptors, or only the reserve is left */
    bool fds_warned;          /* the shortage was logged (once per episode) */
    bool fds_near;            /* the last descriptor accepted was near the reserve: probe first */
    uint64_t max_conn_logged; /* loop ms of the last "maxConnections reached" line */
    unsigned fd_limit;        /* RLIMIT_NOFILE (soft), refreshed every tick */
    struct conn_peers *peers; /* open connections per client address (src/http/conn.c) */
    bool stopping;
    uint64_t stop_deadline;   /* loop ms */
    int exit_code;
} server_t;

/* Load the configuration at conf_path, bind, run until stopped. Returns the process exit code. */
int server_run(const char *conf_path);

gen_t *gen_ref(gen_t *g);
void gen_unref(gen_t *g);

/* Re-read the configuration (SIGHUP, ctl reload). Returns 0, or -1 when the file has errors or
 * cannot be applied: the running configuration stays, and every problem is logged and, when
 * `errors` is not NULL, appended to it one per line. */
int server_reload(server_t *s, buf_t *errors);

/* Begin the graceful stop (SIGTERM, SIGINT, ctl stop). */
void server_begin_stop(server_t *s, const char *why);

/* Called by connections when they close, so a stopping server can finish. */
void server_conn_closed(server_t *s);

/* Request bodies held in memory, server-wide (SPEC §2): a handler that wants to keep n more body
 * bytes in memory asks first; past SERVER_HELD_BODY_MAX in all the answer is no and the bytes go
 * to a file in tempDir. What was granted is given back with server_body_release. */
#define SERVER_HELD_BODY_MAX (64u * 1024u * 1024u)
static inline bool server_body_hold(server_t *s, size_t n) {
    if (s->held_body_bytes + n > SERVER_HELD_BODY_MAX) return false;
    s->held_body_bytes += n;
    return true;
}
static inline void server_body_release(server_t *s, uint64_t n) {
    s->held_body_bytes -= n;
}

/* Cached "Sun, 22 Nov 2026 04:40:00 GMT" for the current second. */
const char *server_date(server_t *s);


#endif
