/* The server: owns the uv loop, the configuration generations, listeners, connections, signals and
 * the one maintenance timer. There is exactly one server_t per process, passed explicitly (no
 * global), so tests could run several. */
#ifndef FCGIHOST_SERVER_H
#define FCGIHOST_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "config/generation.h"
#include "ctl/status.h"
#include "http/http_server.h"
#include "util/buf.h"

typedef struct listener listener_t;
typedef struct ctl_listener ctl_listener_t;

typedef struct server {
    http_server_t http;       /* connections, the current generation (http.gen), static files,
                                 the access log buffer, the deferred pass (src/http) */
    uv_loop_t *loop;
    char *conf_path;
    listener_t *listeners;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t maint;         /* the one maintenance timer: timeouts, clock, caches */
    uv_prepare_t flush;       /* flushes the access log once per loop iteration */
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
    char *access_path;        /* NULL for stdout or off (the descriptor is http.access_fd) */
    ctl_listener_t *ctl;      /* the control socket; NULL when it could not be created */
    /* status and metrics (server_status.c) */
    uint64_t start_ms;        /* loop ms at start */
    int64_t start_unix;
    uint64_t classes[CTL_CLASS_COUNT]; /* responses by status class */
    uint64_t codes[CTL_CODE_COUNT];    /* responses by exact status, 100..599 */
    ctl_hist_t hist;          /* response durations */
    uint64_t reloads_ok, reloads_failed;
    /* Accepting (server.c): the listeners are polled only while `accepting`; maxConnections and
     * running short of descriptors pause it, and connections wait in the kernel's backlog. */
    bool accepting;
    bool fds_short;           /* paused: out of descriptors, or only the reserve is left */
    bool fds_warned;          /* the shortage was logged (once per episode) */
    bool fds_near;            /* the last descriptor accepted was near the reserve: probe first */
    uint64_t max_conn_logged; /* loop ms of the last "maxConnections reached" line */
    unsigned fd_limit;        /* RLIMIT_NOFILE (soft), refreshed every tick */
    uint64_t stop_deadline;   /* loop ms */
    int exit_code;
} server_t;

/* Load the configuration at conf_path, bind, run until stopped. Returns the process exit code. */
int server_run(const char *conf_path);

/* Re-read the configuration (SIGHUP, ctl reload). Returns 0, or -1 when the file has errors or
 * cannot be applied: the running configuration stays, and every problem is logged and, when
 * `errors` is not NULL, appended to it one per line. */
int server_reload(server_t *s, buf_t *errors);

/* Begin the graceful stop (SIGTERM, SIGINT, ctl stop). */
void server_begin_stop(server_t *s, const char *why);

/* Called by connections when they close, so a stopping server can finish. */
void server_conn_closed(server_t *s);

/* The server_t an http_server_t is embedded in. */
static inline server_t *server_of(http_server_t *hs) {
    return (server_t *)((char *)hs - offsetof(server_t, http));
}


#endif
