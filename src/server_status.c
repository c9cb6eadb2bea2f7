/* The status snapshot, the status page and the control commands: see server_status.h. */
#include "server_status.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/render.h"
#include "http/forwarded.h"
#include "http/tls.h"
#include "http/request.h"
#include "http/request_int.h"
#include "pool/pool.h"
#include "pool/procstat.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- Counters ---- */

static pool_t *find_pool(server_t *s, const char *name) {
    for (size_t i = 0; i < s->n_pools; i++)
        if (s->pools[i] && strcmp(pool_name(s->pools[i]), name) == 0) return s->pools[i];
    return NULL;
}

void server_note_response(server_t *s, const char *app, int status, double secs) {
    int cls = ctl_status_class(status);
    if (cls >= 0) s->classes[cls]++;
    int code = ctl_status_code_index(status);
    if (code >= 0) s->codes[code]++;
    ctl_hist_observe(&s->hist, secs);
    if (app == NULL || strcmp(app, "-") == 0) return;
    pool_t *p = find_pool(s, app);
    if (p == NULL) return; /* removed by a reload while the request ran */
    pool_http_t *h = pool_http(p);
    if (cls >= 0) h->classes[cls]++;
    ctl_hist_observe(&h->hist, secs);
}

/* ---- The snapshot ---- */

typedef struct proc_list {
    ctl_proc_status_t *v;
    size_t n, cap;
    uint64_t now;
    ctl_crash_t crash;          /* the pool's last crash, when it has one */
    const char *crash_lines[POOL_CRASH_LINES];
} proc_list_t;

static void add_proc(const worker_info_t *wi, void *arg) {
    proc_list_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    ctl_proc_status_t *ps = &l->v[l->n++];
    unsigned st;
    switch (wi->state) {
    case WORKER_STATE_STARTING: st = CTL_PROC_STARTING; break;
    case WORKER_STATE_IDLE: st = CTL_PROC_IDLE; break;
    case WORKER_STATE_BUSY: st = CTL_PROC_BUSY; break;
    case WORKER_STATE_DRAINING: st = CTL_PROC_DRAINING; break;
    default: st = CTL_PROC_STOPPING; break;
    }
    uint64_t rss = 0, priv, cpu_ns = 0, runq_ns;
    if (!procstat_rss(wi->pid, &rss, &priv)) rss = 0;
    bool cpu_known = procstat_sched(wi->pid, &cpu_ns, &runq_ns);
    *ps = (ctl_proc_status_t){
        .pid = wi->pid,
        .state = ctl_proc_state_name(st),
        .requests = wi->requests,
        .age_s = l->now > wi->started_ms ? (l->now - wi->started_ms) / 1000 : 0,
        .idle_s = st == CTL_PROC_IDLE && l->now >= wi->idle_since_ms
                      ? (int64_t)((l->now - wi->idle_since_ms) / 1000)
                      : -1,
        .rss_bytes = rss,
        .cpu_known = cpu_known,
        .cpu_ms = cpu_ns / 1000000,
        .method = wi->req_method, /* borrowed until the next call into the pool */
        .uri = wi->req_uri,
        .request_ms = wi->req_method && l->now > wi->req_start_ms ? l->now - wi->req_start_ms : 0,
        .group = wi->group_pid,
    };
    if (!wi->group_leader) return;
    /* preforkChildren (SPEC 4.9b): the group's children, each with its pid, RSS and CPU */
    pid_t kids[POOL_CHILDREN_MAX];
    size_t nk = procstat_children(wi->pid, kids, POOL_CHILDREN_MAX);
    for (size_t i = 0; i < nk; i++) {
        worker_info_t child = {.pid = kids[i], .state = WORKER_STATE_COUNT, .started_ms = l->now};
        add_proc(&child, l);
        l->v[l->n - 1].group = wi->pid;
        l->v[l->n - 1].state = "child";
        l->v[l->n - 1].age_s = 0;
    }
}

static void fill_pool(server_t *s, pool_t *p, const cfg_app_t *app, ctl_pool_status_t *out,
                      proc_list_t *procs) {
    pool_stats_t st;
    pool_get_stats(p, &st);
    uint64_t now = uv_now(s->loop);
    const pool_http_t *h = pool_http_const(p);
    *out = (ctl_pool_status_t){
        .name = pool_name(p),
        .limit = st.limit,
        .auto_limit = st.auto_limit,
        .min_instances = app ? app->min_instances : 0,
        .max_concurrent_starts = app ? app->max_concurrent_starts : 0,
        .private_memory_limit = app ? (uint64_t)app->private_memory_limit * 1024 : 0,
        .slow_request_seconds = app ? app->slow_request_seconds : 0,
        .recycle_mode = app && app->recycle_mode == CFG_RECYCLE_IMMEDIATE ? "immediate" : "warm",
        .warm_old = st.warm_old,
        .prefork_children = app ? app->prefork_children : 0,
        .autotune_note = st.autotune_reason,
        .autotune_note_age_s = now > st.autotune_changed_ms ? (now - st.autotune_changed_ms) / 1000
                                                            : 0,
        .failed = st.failed,
        .failed_retry_s = st.failed && st.failed_until > now ? (st.failed_until - now + 999) / 1000
                                                             : 0,
        .queued = st.queued,
        .queue_length = app ? app->queue_length : 0,
        .acquired = st.acquired,
        .queue_wait_ms_total = st.queue_wait_ms_total,
        .queue_full = st.queue_full,
        .completed = st.requests,
        .duration = h->hist,
        .spawns = st.spawns,
        .spawn_failures = st.spawn_failures,
        .rapid_fails = st.rapid_fails,
        .exits_unexpected = st.exits_unexpected,
        .stderr_lines = st.stderr_lines,
        .crashes = st.crashes,
        .slow_requests = st.slow_requests,
    };
    const pool_crash_t *c = pool_last_crash(p);
    if (c) {
        for (unsigned i = 0; i < c->n_stderr; i++) procs->crash_lines[i] = c->stderr_lines[i];
        procs->crash = (ctl_crash_t){
            .pid = c->pid,
            .age_s = now > c->when_ms ? (now - c->when_ms) / 1000 : 0,
            .how = c->how,
            .signal = c->signal,
            .exit_status = c->status,
            .method = c->in_request ? c->method : NULL,
            .uri = c->in_request ? c->uri : NULL,
            .request_ms = c->request_ms,
            .requests = c->completed,
            .stderr_lines = procs->crash_lines,
            .n_stderr = c->n_stderr,
        };
        out->last_crash = &procs->crash;
    }
    memcpy(out->requests, h->classes, sizeof(out->requests));
    out->recycles[CTL_RECYCLE_MAX_REQUESTS] = st.recycles_max_requests;
    out->recycles[CTL_RECYCLE_IDLE] = st.recycles_idle;
    out->recycles[CTL_RECYCLE_CHANGE] = st.recycles_change;
    out->recycles[CTL_RECYCLE_KILL] = st.recycles_kill;
    out->recycles[CTL_RECYCLE_MANUAL] = st.recycles_manual;
    out->recycles[CTL_RECYCLE_MEMORY] = st.recycles_memory;
    procs->now = now;
    pool_foreach_worker(p, add_proc, procs);
    for (size_t i = 0; i < procs->n; i++)
        for (unsigned k = 0; k < CTL_PROC_STATE_COUNT; k++)
            if (strcmp(procs->v[i].state, ctl_proc_state_name(k)) == 0) out->procs[k]++;
    out->procs_list = procs->v;
    out->n_procs = procs->n;
}

bool server_render_status(server_t *s, ctl_format_t fmt, const char *app, buf_t *out) {
    size_t n = s->n_pools;
    ctl_pool_status_t *pools = xcalloc(n ? n : 1, sizeof(*pools));
    proc_list_t *procs = xcalloc(n ? n : 1, sizeof(*procs));
    const ctl_pool_status_t *only = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->pools[i] == NULL) continue;
        fill_pool(s, s->pools[i], pool_app(s->pools[i]), &pools[k], &procs[k]);
        if (app && strcmp(app, pools[k].name) == 0) only = &pools[k];
        k++;
    }
    uint64_t now = uv_now(s->loop);
    ctl_status_t st = {
        .server = {
            .version = FCGIHOST_VERSION,
            .pid = getpid(),
            .uptime_s = now > s->start_ms ? (now - s->start_ms) / 1000 : 0,
            .start_time = s->start_unix,
            .reloads_ok = s->reloads_ok,
            .reloads_failed = s->reloads_failed,
            .connections = s->http.n_conns,
            .codes = s->codes,
            .duration = s->hist,
            .compressed = s->http.compressed,
            .compress_in_bytes = s->http.compress_in,
            .compress_out_bytes = s->http.compress_out,
            .tls_full = http_tls_stats.full,
            .tls_resumed = http_tls_stats.resumed,
            .tls_failed = http_tls_stats.failed,
            .h2_connections = s->http.h2_conns,
            .h2_streams = s->http.h2_streams,
        },
        .pools = pools,
        .n_pools = k,
    };
    memcpy(st.server.requests, s->classes, sizeof(st.server.requests));
    bool ok = app == NULL || only != NULL;
    if (ok) {
        switch (fmt) {
        case CTL_FORMAT_JSON: ctl_render_json(out, &st, only); break;
        case CTL_FORMAT_PROMETHEUS: ctl_render_prometheus(out, &st); break;
        default: ctl_render_text(out, &st, only); break;
        }
    }
    for (size_t i = 0; i < k; i++) free(procs[i].v);
    free(procs);
    free(pools);
    return ok;
}

/* ---- The status page ---- */

static bool status_allowed(const req_peer_t *c, const cfg_server_t *srv) {
    if (c->family == AF_UNIX) return true;
    return http_cidrs_contain(srv->status_allow, srv->n_status_allow, c->family, c->addr);
}

static bool query_has(str_t q, const char *kv) {
    size_t n = strlen(kv);
    for (size_t i = 0; q.p && i + n <= q.len; i++) {
        if ((i == 0 || q.p[i - 1] == '&') && memcmp(q.p + i, kv, n) == 0 &&
            (i + n == q.len || q.p[i + n] == '&'))
            return true;
    }
    return false;
}

bool server_status_page(request_t *r) {
    const cfg_server_t *srv = &r->gen->cfg->server;
    if (srv->status_path == NULL || srv->status_path[0] == '\0') return false;
    if (strlen(srv->status_path) != r->path_len ||
        memcmp(srv->status_path, r->path, r->path_len) != 0)
        return false;
    server_t *s = server_of(r->srv);
    r->app = "-";
    if (!status_allowed(&r->peer, srv)) {
        char peer[64];
        req_peer_str(r, peer, sizeof(peer));
        log_warn("%s: status page refused (not in statusAllow)", peer);
        resp_error(r, 403, "not allowed");
        return true;
    }
    if (r->http.method_id != HTTP_METHOD_GET && r->http.method_id != HTTP_METHOD_HEAD) {
        resp_start(r, 405);
        resp_header_str(r, "Allow", "GET, HEAD");
        resp_send_headers(r, 0);
        resp_finish(r);
        return true;
    }
    bool prom = query_has(r->http.query, "format=prometheus");
    buf_t body;
    buf_init(&body);
    server_render_status(s, prom ? CTL_FORMAT_PROMETHEUS : CTL_FORMAT_JSON, NULL, &body);
    resp_start(r, 200);
    resp_header_str(r, "Content-Type",
                    prom ? "text/plain; version=0.0.4; charset=utf-8" : "application/json");
    resp_header_str(r, "Cache-Control", "no-store");
    resp_send_headers(r, (int64_t)body.len);
    if (r->http.method_id != HTTP_METHOD_HEAD) resp_write_copy(r, body.data, body.len);
    resp_finish(r);
    buf_dispose(&body);
    return true;
}

/* ---- Control commands ---- */

static void cmd_set(server_t *s, const ctl_cmd_t *cmd, buf_t *out) {
    pool_t *p = find_pool(s, cmd->app);
    if (p == NULL) {
        ctl_response_head(out, CTL_CODE_REFUSED, "no application %s", cmd->app);
        return;
    }
    char err[256];
    if (pool_set_live(p, cmd->key, cmd->value, err, sizeof(err)) != 0) {
        ctl_response_head(out, CTL_CODE_REFUSED, "%s", err);
        return;
    }
    log_info("%s: %s set to %s (fcgihost ctl; until the next reload)", cmd->app, cmd->key,
             cmd->value);
    ctl_response_head(out, CTL_CODE_OK, "%s: %s = %s", cmd->app, cmd->key, cmd->value);
}

void server_ctl_command(server_t *s, const ctl_cmd_t *cmd, buf_t *out) {
    switch (cmd->kind) {
    case CTL_CMD_STATUS: {
        buf_t body;
        buf_init(&body);
        if (!server_render_status(s, cmd->format, cmd->app, &body)) {
            ctl_response_head(out, CTL_CODE_REFUSED, "no application %s", cmd->app);
        } else {
            ctl_response_head(out, CTL_CODE_OK, "status");
            buf_append(out, body.data, body.len);
        }
        buf_dispose(&body);
        return;
    }
    case CTL_CMD_RECYCLE: {
        pool_t *p = find_pool(s, cmd->app);
        if (p == NULL) {
            ctl_response_head(out, CTL_CODE_REFUSED, "no application %s", cmd->app);
            return;
        }
        pool_stats_t st;
        pool_get_stats(p, &st);
        pool_reset_failed(p);
        pool_recycle_for(p, POOL_RECYCLE_MANUAL, "fcgihost ctl recycle");
        ctl_response_head(out, CTL_CODE_OK, "%s: recycling %u processes", cmd->app,
                          st.processes - st.stopping);
        return;
    }
    case CTL_CMD_SET: cmd_set(s, cmd, out); return;
    case CTL_CMD_RELOAD: {
        buf_t errs;
        buf_init(&errs);
        if (server_reload(s, &errs) == 0) {
            ctl_response_head(out, CTL_CODE_OK, "configuration reloaded");
        } else {
            ctl_response_head(out, CTL_CODE_REFUSED,
                              "reload failed: keeping the running configuration");
            buf_append(out, errs.data, errs.len);
        }
        buf_dispose(&errs);
        return;
    }
    case CTL_CMD_STOP:
        ctl_response_head(out, CTL_CODE_OK, "stopping");
        server_begin_stop(s, "fcgihost ctl stop");
        return;
    }
    ctl_response_head(out, CTL_CODE_INTERNAL, "unknown command");
}
