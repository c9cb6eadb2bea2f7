/* The server: configuration generations, listeners, signals, the maintenance timer, logs and the
 * graceful stop. See server.h. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fastcgi/handler.h"
#include "http/conn.h"
#include "http/mime.h"
#include "http/site.h"
#include "http/tls.h"
#include "http/static.h"
#include "ctl/listener.h"
#include "pool/pool.h"
#include "pool/privsep.h"
#include "server_status.h"
#include "server_user.h"
#include "util/sdnotify.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MAINT_INTERVAL_MS 1000
#define STOP_KILL_WAIT_MS 2000  /* after shutdownTimeout's SIGKILL: how long reaping may take */
#define LISTEN_BACKLOG 1024
#define ACCEPT_BATCH 128        /* connections taken per readiness: the loop serves others between */
#define MAX_CONN_LOG_MS 60000u  /* "maxConnections reached" at most once a minute */

/* A listening socket that we accept on ourselves, watched with a uv_poll_t. Not uv_listen():
 * when accept() fails with EMFILE, libuv's uv__server_io closes its spare descriptor and accepts
 * and closes every pending connection (uv__emfile_trick), so clients are dropped instead of
 * waiting; and with no spare left it calls back in a loop. SPEC §8 wants them to wait in the
 * backlog: accepting pauses (the poll stops) and resumes as descriptors free. */
struct listener {
    uv_poll_t poll;   /* readability of fd; freed in its close callback */
    int fd;
    server_t *srv;
    char *text;       /* the listen value, to match listeners across reloads */
    char *unix_path;  /* unlinked when the listener closes */
    bool is_unix;
    unsigned id;      /* http_listen_id of text: the sites it serves */
    bool proxy;       /* connections start with a PROXY protocol header (may change on reload) */
    bool tls;         /* connections speak TLS (may change on reload) */
    bool h2c;         /* HTTP/2 with prior knowledge is accepted besides HTTP/1.1 */
    bool polling;
    bool keep;        /* reload bookkeeping */
    listener_t *next;
};

static void pool_put(server_t *s, pool_t *p);

/* The generation's last reference is going: its references on the pools go too. */
static void gen_release(gen_t *g, void *arg) {
    for (size_t i = 0; i < g->cfg->n_apps; i++)
        if (g->pools[i]) pool_put(arg, g->pools[i]);
    http_sites_free(g->sites);
    g->sites = NULL;
}

/* A generation for cfg with its sites opened (roots, alias directories, access logs); NULL (cfg
 * freed) when a directory cannot be opened. Its pools come from attach_pools. */
static gen_t *new_gen(server_t *s, cfg_t *cfg) {
    http_sites_t *sites = http_sites_open(&s->http, cfg, s->http.gen ? s->http.gen->sites : NULL);
    if (sites == NULL) {
        cfg_free(cfg);
        return NULL;
    }
    gen_t *g = gen_new(cfg, gen_release, s);
    g->sites = sites;
    return g;
}

/* ---- pools: one per application name, kept across reloads ---- */

static void on_pool_stopped(pool_t *p, void *arg) {
    server_t *s = arg;
    for (size_t i = 0; i < s->n_stopping; i++) {
        if (s->stopping_pools[i] == p) {
            s->stopping_pools[i] = s->stopping_pools[--s->n_stopping];
            break;
        }
    }
    if (pool_refs(p) == 0) pool_free(p); /* else the last pool_put frees it */
    server_conn_closed(s);
}

/* pool_stop may call back at once (no process left): list them all first, so the callback never
 * sees an empty list while other pools are still to be stopped. */
static void stop_pools(server_t *s, pool_t **pools, size_t n) {
    if (n == 0) return;
    s->stopping_pools = xrealloc(s->stopping_pools, (s->n_stopping + n) * sizeof(pool_t *));
    memcpy(s->stopping_pools + s->n_stopping, pools, n * sizeof(pool_t *));
    s->n_stopping += n;
    for (size_t i = 0; i < n; i++) pool_stop(pools[i], on_pool_stopped, s);
}

static void retired_remove(server_t *s, pool_t *p) {
    for (size_t i = 0; i < s->n_retired; i++) {
        if (s->retired[i] == p) {
            s->retired[i] = s->retired[--s->n_retired];
            return;
        }
    }
}

/* Drop a reference. The last one stops the pool (nothing can send it a request any more), and a
 * stopped pool with no reference left is freed. */
static void pool_put(server_t *s, pool_t *p) {
    if (pool_unref(p) > 0) return;
    retired_remove(s, p);
    if (pool_stopped(p)) pool_free(p);
    else if (!pool_stopping(p)) stop_pools(s, &p, 1); /* on_pool_stopped frees it */
    /* else stopping already: on_pool_stopped frees it */
}

/* Give generation g its pools: reuse (and reconfigure) the pool of each application that keeps
 * its name, create the new ones. A pool whose application is gone leaves the live list; it keeps
 * serving the requests of older generations (queued ones included) and stops when the last of
 * them ends (pool_put). */
static void attach_pools(server_t *s, gen_t *g) {
    const cfg_t *cfg = g->cfg;
    pool_t **keep = xcalloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(pool_t *));
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const cfg_app_t *app = &cfg->apps[i];
        for (size_t k = 0; k < s->n_pools; k++) {
            if (s->pools[k] && strcmp(pool_name(s->pools[k]), app->name) == 0) {
                keep[i] = s->pools[k]; /* the list's reference moves over */
                s->pools[k] = NULL;
                pool_configure(keep[i], app);
            }
        }
        /* An application removed by an earlier reload and added back: its retired pool again. */
        for (size_t k = 0; keep[i] == NULL && k < s->n_retired; k++) {
            if (strcmp(pool_name(s->retired[k]), app->name) == 0) {
                keep[i] = pool_ref(s->retired[k]);
                retired_remove(s, keep[i]);
                pool_configure(keep[i], app);
            }
        }
        if (keep[i] == NULL) keep[i] = pool_new(s->loop, app, cfg->server.runtime_dir, s->exe);
        g->pools[i] = pool_ref(keep[i]);
    }
    pool_t **old = s->pools;
    size_t n_old = s->n_pools;
    s->pools = keep;
    s->n_pools = cfg->n_apps;
    for (size_t k = 0; k < n_old; k++) {
        if (old[k] == NULL) continue;
        log_info("application %s removed: it stops once its requests have ended", pool_name(old[k]));
        s->retired = xrealloc(s->retired, (s->n_retired + 1) * sizeof(pool_t *));
        s->retired[s->n_retired++] = old[k];
        pool_retire(old[k]); /* minInstances no longer applies */
        pool_put(s, old[k]); /* the list's reference; older generations keep theirs */
    }
    free(old);
}


/* ---- access logs (src/http/site.c) ---- */

static void on_prepare(uv_prepare_t *p) {
    server_t *s = p->data;
    http_logs_flush(&s->http);
}

static void reopen_logs(server_t *s) {
    http_logs_reopen(&s->http);
    int rc = log_reopen();
    if (rc < 0) log_error("cannot reopen error log: %s", strerror(-rc));
    log_info("log files reopened");
}

/* ---- listeners and accepting ---- */

/* Descriptors kept free for what serving the connections needs (files, FastCGI sockets, the
 * spool files of request bodies): accepting never takes one of the top fd_reserve(). The kernel
 * hands out the lowest free descriptor, so a probe tells whether one below the reserve is free;
 * it is made only near the limit (fds_near), so it costs nothing in the usual case. */
static unsigned fd_reserve(const server_t *s) {
    unsigned r = s->fd_limit / 16;
    return r < 16 ? 16 : r > 256 ? 256 : r;
}

static bool fd_free_below_reserve(const server_t *s, int any_fd) {
    int fd = fcntl(any_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return false; /* none free at all */
    close(fd);
    return (unsigned)fd + fd_reserve(s) < s->fd_limit;
}

static void refresh_fd_limit(server_t *s) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        s->fd_limit = rl.rlim_cur > 1u << 30 ? 1u << 30 : (unsigned)rl.rlim_cur;
}

static void on_accept_ready(uv_poll_t *p, int status, int events);

/* Poll the listeners exactly while accepting is allowed: not stopping, under maxConnections, and
 * not short of descriptors. Called whenever one of those may have changed. */
static void accept_sync(server_t *s) {
    unsigned max = s->http.gen->cfg->server.max_connections;
    bool want = !s->http.stopping && !s->fds_short && s->http.n_conns < max;
    if (!want && s->accepting && !s->http.stopping && !s->fds_short) {
        uint64_t now = uv_now(s->loop);
        if (s->max_conn_logged == 0 || now - s->max_conn_logged >= MAX_CONN_LOG_MS) {
            s->max_conn_logged = now;
            log_info("maxConnections (%u) reached: new connections wait in the backlog", max);
        }
    }
    s->accepting = want;
    for (listener_t *l = s->listeners; l; l = l->next) {
        if (l->polling == want) continue;
        if (!want) uv_poll_stop(&l->poll);
        else if (uv_poll_start(&l->poll, UV_READABLE, on_accept_ready) != 0) continue;
        l->polling = want;
    }
}

/* Accepting stops until a connection closes or the next tick: descriptors ran out (or only the
 * reserve is left), or accept() failed in a way that retrying at once would only repeat. */
static void accept_pause(server_t *s, const char *why) {
    if (!s->fds_warned) {
        log_warn("accepting paused: %s; connections wait in the backlog until descriptors free", why);
        s->fds_warned = true;
    }
    s->fds_short = true;
    accept_sync(s);
}

static void on_accept_ready(uv_poll_t *p, int status, int events) {
    listener_t *l = p->data;
    server_t *s = l->srv;
    if (status < 0) { /* libuv stopped the handle: start it again from the next tick */
        l->polling = false;
        log_warn("listener %s: %s", l->text, uv_strerror(status));
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && s->accepting; i++) {
        if (s->fds_near && !fd_free_below_reserve(s, l->fd)) {
            accept_pause(s, "only the reserve of file descriptors is left");
            return;
        }
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN: return;
            /* The connection went away, or a network error of its own (accept(2), Linux): next. */
            case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
            case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
            case EPERM:
                continue;
            case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
                s->fds_near = true;
                accept_pause(s, strerror(errno));
                return;
            default: {
                char why[160];
                snprintf(why, sizeof(why), "accept on %s: %s", l->text, strerror(errno));
                accept_pause(s, why);
                return;
            }
            }
        }
        s->fds_near = (unsigned)fd + fd_reserve(s) + 64 >= s->fd_limit;
        conn_accept(&s->http, fd, l->is_unix, l->id, l->proxy, l->tls, l->h2c);
        if (s->fds_warned) {
            log_info("file descriptors available again: accepting");
            s->fds_warned = false;
        }
        accept_sync(s); /* maxConnections may be reached now */
    }
}

/* A connection closed (one descriptor free, one connection fewer) or a tick passed: accepting
 * resumes if it may. When descriptors are still short the next accept() says so again. */
static void accept_resume(server_t *s) {
    s->fds_short = false;
    accept_sync(s);
}

static void on_listener_closed(uv_handle_t *h) {
    listener_t *l = h->data;
    close(l->fd);
    free(l->text);
    free(l->unix_path);
    free(l);
}

static void listener_close(listener_t *l) {
    if (l->unix_path) unlink(l->unix_path);
    uv_close((uv_handle_t *)&l->poll, on_listener_closed);
}

/* A bound, listening, non-blocking socket for cl in *fd; returns 0 or a negative errno (= UV_E*). */
static int listen_socket(const cfg_listen_t *cl, int *fd) {
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = 0, one = 1;
    memset(&ss, 0, sizeof(ss));
    if (cl->kind == CFG_LISTEN_UNIX) {
        struct sockaddr_un *a = (struct sockaddr_un *)&ss;
        if (strlen(cl->path) >= sizeof(a->sun_path)) return UV_ENAMETOOLONG;
        a->sun_family = AF_UNIX;
        memcpy(a->sun_path, cl->path, strlen(cl->path) + 1);
        len = sizeof(*a);
        struct stat st;
        if (lstat(cl->path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(cl->path); /* stale */
    } else if (cl->kind == CFG_LISTEN_TCP6) {
        rc = uv_ip6_addr(cl->host, cl->port, (struct sockaddr_in6 *)&ss);
        len = sizeof(struct sockaddr_in6);
    } else {
        rc = uv_ip4_addr(cl->host, cl->port, (struct sockaddr_in *)&ss);
        len = sizeof(struct sockaddr_in);
    }
    if (rc != 0) return rc;
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    if (cl->kind != CFG_LISTEN_UNIX) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (cl->kind == CFG_LISTEN_TCP6) setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&ss, len) != 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    if (cl->kind == CFG_LISTEN_UNIX) chmod(cl->path, 0666);
    if (listen(s, LISTEN_BACKLOG) != 0) {
        rc = -errno;
        if (cl->kind == CFG_LISTEN_UNIX) unlink(cl->path);
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

static int listener_open(server_t *s, const cfg_listen_t *cl, listener_t **out) {
    int fd = -1;
    int rc = listen_socket(cl, &fd);
    if (rc == 0) {
        listener_t *l = xcalloc(1, sizeof(*l));
        rc = uv_poll_init(s->loop, &l->poll, fd);
        if (rc == 0) {
            l->fd = fd;
            l->srv = s;
            l->text = xstrdup(cl->text);
            l->is_unix = cl->kind == CFG_LISTEN_UNIX;
            if (l->is_unix) l->unix_path = xstrdup(cl->path);
            l->poll.data = l;
            log_info("listening on %s", cl->text);
            *out = l; /* polled by accept_sync */
            return 0;
        }
        free(l);
        if (cl->kind == CFG_LISTEN_UNIX) unlink(cl->path);
        close(fd);
    }
    log_error("cannot listen on %s: %s%s", cl->text, uv_strerror(rc), server_user_listen_hint(cl, rc));
    return rc;
}

/* Make the listeners match cfg: keep the ones still configured, open new ones, close the rest. */
/* Keep the listener of cl (when open) or open one; returns -1 when it cannot be opened. */
static int want_listener(server_t *s, const cfg_listen_t *cl) {
    for (listener_t *l = s->listeners; l; l = l->next) {
        if (strcmp(l->text, cl->text) != 0) continue;
        l->keep = true;
        l->proxy = cl->proxy;
        l->tls = cl->tls;
        l->h2c = cl->h2c;
        return 0;
    }
    listener_t *l;
    if (listener_open(s, cl, &l) != 0) return -1;
    l->id = http_listen_id(&s->http, l->text);
    l->proxy = cl->proxy;
    l->tls = cl->tls;
    l->h2c = cl->h2c;
    l->keep = true;
    l->next = s->listeners;
    s->listeners = l;
    return 0;
}

static int sync_listeners(server_t *s, const cfg_t *cfg) {
    for (listener_t *l = s->listeners; l; l = l->next) l->keep = false;
    int failed = 0;
    for (size_t i = 0; i < cfg->server.n_listen; i++)
        if (want_listener(s, &cfg->server.listen[i]) < 0) failed++;
    for (size_t k = 0; k < cfg->n_sites; k++) /* the sites' own addresses (SPEC §6) */
        for (size_t i = 0; i < cfg->sites[k].n_listen; i++)
            if (want_listener(s, &cfg->sites[k].listen[i]) < 0) failed++;
    for (listener_t **pl = &s->listeners; *pl;) {
        listener_t *l = *pl;
        if (l->keep) {
            pl = &l->next;
            continue;
        }
        *pl = l->next;
        log_info("no longer listening on %s", l->text);
        listener_close(l);
    }
    accept_sync(s); /* new listeners, or a new maxConnections */
    return failed ? -1 : 0;
}

static void close_listeners(server_t *s) {
    while (s->listeners) {
        listener_t *l = s->listeners;
        s->listeners = l->next;
        listener_close(l);
    }
}

/* ---- configuration generations ---- */

static void apply_logging(server_t *s, const cfg_t *cfg) {
    log_set_level((log_level_t)cfg->server.log_level);
    int rc = log_open(cfg->server.error_log);
    if (rc < 0) log_error("cannot open error log %s: %s", cfg->server.error_log, strerror(-rc));
}

static void on_ctl_command(void *arg, const ctl_cmd_t *cmd, buf_t *out) {
    server_ctl_command(arg, cmd, out);
}

/* Open the control socket of cfg, or keep the one open when the path is the same. Must run before
 * privileges are dropped (the socket is root's, 0600). A failure is logged: the server runs on
 * without `fcgihost ctl`. */
static void sync_control_socket(server_t *s, const cfg_t *cfg) {
    const char *path = cfg->server.control_socket;
    if (s->ctl && path && strcmp(ctl_listener_path(s->ctl), path) == 0) return;
    ctl_listener_close(s->ctl);
    s->ctl = NULL;
    if (path == NULL || path[0] == '\0') return;
    int err = 0;
    s->ctl = ctl_listener_open(s->loop, path, on_ctl_command, s, &err);
    if (s->ctl == NULL)
        log_error("cannot create the control socket %s: %s%s", path,
                  err == UV_EADDRINUSE ? "another fcgihost answers on it" : uv_strerror(err),
                  "; `fcgihost ctl` will not work");
}

static void log_diag(cfg_diag_t *d, buf_t *errors) {
    for (size_t i = 0; i < d->n; i++) {
        log_error("%s", d->msgs[i]);
        if (errors) buf_printf(errors, "%s\n", d->msgs[i]);
    }
}

int server_reload(server_t *s, buf_t *errors) {
    if (s->http.stopping) {
        if (errors) buf_append_str(errors, "the server is stopping\n");
        return -1;
    }
    log_info("reloading %s", s->conf_path);
    fh_notify_reloading();
    cfg_diag_t diag;
    cfg_diag_init(&diag);
    cfg_t *cfg = cfg_load(s->conf_path, &diag);
    log_diag(&diag, cfg == NULL ? errors : NULL);
    cfg_diag_dispose(&diag);
    gen_t *g = NULL;
    bool loaded = cfg != NULL;
    if (cfg && server_user_reload(cfg, s->http.gen->cfg) != 0) {
        cfg_free(cfg);
        cfg = NULL;
    } else if (cfg && (g = new_gen(s, cfg)) == NULL) {
        cfg = NULL; /* a root or alias directory that cannot be opened (logged) */
    }
    if (cfg == NULL) {
        if (errors && loaded)
            buf_append_str(errors, "the new configuration cannot be applied (see the error log)\n");
        log_error("reload failed: keeping the running configuration");
        s->reloads_failed++;
        fh_notify_ready();
        return -1;
    }
    attach_pools(s, g);
    gen_t *old = s->http.gen;
    s->http.gen = g;
    gen_unref(old);
    file_cache_clear(s->http.files);
    apply_logging(s, cfg);
    sync_listeners(s, cfg);
    sync_control_socket(s, cfg);
    s->reloads_ok++;
    log_info("configuration reloaded");
    fh_notify_ready();
    return 0;
}

/* ---- stop ---- */

static void on_handle_closed(uv_handle_t *h) {}

static void finish_stop(server_t *s) {
    privsep_stop(); /* every process is gone: the helper, if any, exits and is reaped */
    log_info("stopped");
    uv_close((uv_handle_t *)&s->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&s->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&s->sig_hup, on_handle_closed);
    uv_close((uv_handle_t *)&s->sig_usr1, on_handle_closed);
    uv_close((uv_handle_t *)&s->maint, on_handle_closed);
    uv_close((uv_handle_t *)&s->flush, on_handle_closed);
    conn_defer_close(&s->http);
}

/* Called whenever a connection or a pool finished: accepting may resume; the stop proceeds in two
 * steps, connections first (their requests may still need the processes), then the pools. */
void server_conn_closed(server_t *s) {
    if (!s->http.stopping) accept_resume(s);
    if (!s->http.stopping || s->http.n_conns > 0 || uv_is_closing((uv_handle_t *)&s->maint)) return;
    if (s->n_pools || s->n_retired) {
        /* Detached first: the stop callbacks re-enter this function. The generations still hold
         * references: a stopped pool is freed by the last pool_put (server_dispose). */
        pool_t **pools = s->pools, **retired = s->retired;
        size_t n = s->n_pools, nr = s->n_retired;
        s->pools = s->retired = NULL;
        s->n_pools = s->n_retired = 0;
        for (size_t i = 0; i < nr; i++) pool_ref(retired[i]); /* theirs while they stop */
        stop_pools(s, pools, n);
        stop_pools(s, retired, nr);
        for (size_t i = 0; i < n; i++) pool_put(s, pools[i]);
        for (size_t i = 0; i < nr; i++) pool_put(s, retired[i]);
        free(pools);
        free(retired);
    }
    if (s->n_stopping == 0 && !uv_is_closing((uv_handle_t *)&s->maint)) finish_stop(s);
}

void server_begin_stop(server_t *s, const char *why) {
    if (s->http.stopping) return;
    s->http.stopping = true;
    fh_notify_stopping();
    ctl_listener_close(s->ctl);
    s->ctl = NULL;
    s->stop_deadline = uv_now(s->loop) + (uint64_t)s->http.gen->cfg->server.shutdown_timeout * 1000u;
    log_info("%s: stopping (finishing %zu connection(s), at most %us)", why, s->http.n_conns,
             s->http.gen->cfg->server.shutdown_timeout);
    close_listeners(s);
    conn_begin_stop(&s->http);
    server_conn_closed(s);
}

static void on_signal(uv_signal_t *h, int signum) {
    server_t *s = h->data;
    switch (signum) {
    case SIGTERM: server_begin_stop(s, "SIGTERM"); break;
    case SIGINT: server_begin_stop(s, "SIGINT"); break;
    case SIGHUP: server_reload(s, NULL); break;
    case SIGUSR1: reopen_logs(s); break;
    }
}

static void on_maint(uv_timer_t *t) {
    server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    http_date(&s->http);
    http_tls_tick((uint64_t)time(NULL));
    conn_sweep(&s->http, now);
    file_cache_sweep(s->http.files, now);
    refresh_fd_limit(s);
    if (!s->http.stopping) accept_resume(s);
    for (size_t i = 0; i < s->n_pools; i++) pool_tick(s->pools[i], now);
    for (size_t i = 0; i < s->n_retired; i++) pool_tick(s->retired[i], now);
    if (s->http.stopping && now >= s->stop_deadline && !uv_is_closing((uv_handle_t *)&s->maint)) {
        if (s->http.n_conns) {
            log_warn("shutdownTimeout reached: closing %zu connection(s)", s->http.n_conns);
            for (conn_t *c = s->http.conns; c; c = c->next) conn_close(c);
        } else if (s->n_stopping && !s->pools_killed) {
            /* Processes still in their signalBeforeTerminateSeconds grace: the stop is bounded,
             * so they get SIGKILL now and are reaped as usual. */
            log_warn("shutdownTimeout reached with FastCGI processes still ending: SIGKILL");
            s->pools_killed = true;
            s->stop_deadline = now + STOP_KILL_WAIT_MS;
            for (size_t i = 0; i < s->n_stopping; i++) pool_kill(s->stopping_pools[i]);
        } else if (s->n_stopping) {
            /* Not reaped after SIGKILL (a process stuck in the kernel): exiting now still ends
             * them (PR_SET_PDEATHSIG). */
            log_error("FastCGI processes still there %d ms after SIGKILL: exiting",
                      STOP_KILL_WAIT_MS);
            uv_stop(s->loop);
        }
    }
}

static void on_http_response(void *owner, const char *app, int status, double secs) {
    server_note_response(owner, app, status, secs);
}

static void on_http_conn_closed(void *owner) {
    server_conn_closed(owner);
}

static void start_signal(server_t *s, uv_signal_t *h, int signum) {
    uv_signal_init(s->loop, h);
    h->data = s;
    uv_signal_start(h, on_signal, signum);
}

static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static mime_table_t *load_mime(void) {
    FILE *f = fopen("/etc/mime.types", "re");
    buf_t b;
    buf_init(&b);
    if (f) {
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) buf_append(&b, chunk, n);
        fclose(f);
    }
    mime_table_t *t = mime_table_new(b.data, b.len);
    buf_dispose(&b);
    return t;
}

static void server_dispose(server_t *s) {
    if (s->http.gen) gen_unref(s->http.gen); /* its sites' access logs are written and closed */
    http_logs_close(&s->http);
    file_cache_free(s->http.files);
    mime_table_free(s->http.mime);
    for (size_t i = 0; i < s->http.n_listen_texts; i++) free(s->http.listen_texts[i]);
    free(s->http.listen_texts);
    free(s->pools);
    free(s->retired);
    free(s->stopping_pools);
    free(s->exe);
    free(s->conf_path);
}

int server_run(const char *conf_path) {
    cfg_diag_t diag;
    cfg_diag_init(&diag);
    cfg_t *cfg = cfg_load(conf_path, &diag);
    for (size_t i = 0; i < diag.n; i++) fprintf(stderr, "%s\n", diag.msgs[i]);
    cfg_diag_dispose(&diag);
    if (cfg == NULL) {
        fprintf(stderr, "fcgihost: not started: %s has errors\n", conf_path);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    server_t srv = {.http = {.date_sec = -1}};
    server_t *s = &srv;
    refresh_fd_limit(s);
    s->conf_path = realpath(conf_path, NULL);
    if (s->conf_path == NULL) s->conf_path = xstrdup(conf_path);
    apply_logging(s, cfg);
    s->http.gen = new_gen(s, cfg);
    if (s->http.gen == NULL) {
        fprintf(stderr, "fcgihost: not started (see the error log)\n");
        server_dispose(s);
        return 1;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    s->loop = &loop;
    s->http.loop = &loop;
    s->http.owner = s;
    s->http.on_response = on_http_response;
    s->http.on_conn_closed = on_http_conn_closed;
    s->http.intercept = server_status_page;
    s->http.serve_mapped = fcgi_serve;
    s->http.serve_file = static_serve;
    conn_defer_init(&s->http);
    /* Signal handlers before anything is bound: a signal that arrives once the listeners accept
     * (a supervisor's SIGTERM, a logrotate's SIGUSR1) waits for the loop instead of killing the
     * half-started server with the default disposition. */
    start_signal(s, &s->sig_term, SIGTERM);
    start_signal(s, &s->sig_int, SIGINT);
    start_signal(s, &s->sig_hup, SIGHUP);
    start_signal(s, &s->sig_usr1, SIGUSR1);
    s->http.mime = load_mime();
    s->http.files = file_cache_new();
    s->exe = realpath("/proc/self/exe", NULL);
    attach_pools(s, s->http.gen);
    /* server_user_start() drops root ([server] user): everything that needs root (listeners, the
     * control socket, bound 0600 before this point, the log files) must be open by then. */
    s->start_ms = uv_now(&loop);
    s->start_unix = (int64_t)time(NULL);
    int ok = sync_listeners(s, cfg) == 0;
    if (ok) sync_control_socket(s, cfg);
    if (!ok || server_user_start(cfg, &loop, s->exe, s->conf_path) != 0) {
        uv_close((uv_handle_t *)&s->sig_term, on_handle_closed); /* a pending signal is dropped */
        uv_close((uv_handle_t *)&s->sig_int, on_handle_closed);
        uv_close((uv_handle_t *)&s->sig_hup, on_handle_closed);
        uv_close((uv_handle_t *)&s->sig_usr1, on_handle_closed);
        ctl_listener_close(s->ctl);
        close_listeners(s);
        pool_t **pools = s->pools; /* none has started a process: they stop at once */
        size_t n = s->n_pools;
        s->pools = NULL;
        s->n_pools = 0;
        stop_pools(s, pools, n);
        for (size_t i = 0; i < n; i++) pool_put(s, pools[i]);
        free(pools);
        conn_defer_close(&s->http);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        server_dispose(s);
        fprintf(stderr, "fcgihost: not started (see the error log)\n");
        return 1;
    }
    uv_timer_init(&loop, &s->maint);
    s->maint.data = s;
    uv_timer_start(&s->maint, on_maint, MAINT_INTERVAL_MS, MAINT_INTERVAL_MS);
    for (size_t i = 0; i < s->n_pools; i++) pool_warm(s->pools[i]); /* minInstances, now dropped */
    uv_prepare_init(&loop, &s->flush);
    s->flush.data = s;
    uv_prepare_start(&s->flush, on_prepare);
    log_info("fcgihost %s started (pid %d, config %s)", FCGIHOST_VERSION, (int)getpid(), s->conf_path);
    fh_notify_ready();

    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0 && s->n_stopping == 0)
        log_error("event loop closed with handles still open: %s", uv_strerror(rc));
    server_dispose(s);
    return s->exit_code;
}
