/* Routing (SPEC §6). For each request, in order:
 *   1. the path is decoded and checked; the site was chosen by Host when the head arrived
 *      (conn.c); no site: 404;
 *   2. the status page (intercept) answers on every site;
 *   3. deny patterns on the client's path: 404;
 *   4. the site's rewrite rules, in file order (a redirect answers here);
 *   5. deny patterns on the rewritten path;
 *   6. a directory URL tries its index files;
 *   7. the first handler mapping of the site that takes the path and verb; a script that must
 *      exist and does not goes to the fallback when the site has one;
 *   8. 405 when a handler maps the path for other verbs (never the file's source);
 *   9. a static file; a missing one goes to the fallback when the site has one.
 * A request routed again (fallback, errorPage) runs from step 4 with its new URL; rewrites and
 * re-routings count together, more than REWRITE_MAX of them is a 500. */
#include "http/dispatch.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"
#include "http/request.h"
#include "http/rewrite.h"
#include "http/router.h"
#include "http/site.h"
#include "http/static.h"
#include "util/log.h"
#include "util/xalloc.h"

static void route(request_t *r);

/* 405 with the verbs the handlers mapping this path accept. */
/* A path a handler maps, with a verb none of its handlers accepts: 405 with their verbs in
 * Allow (resp_start writes it, also when the site's errorPage for 405 answers). */
static void method_not_allowed(request_t *r, const buf_t *allow) {
    free(r->allow);
    r->allow = xstrndup(allow->data, allow->len);
    resp_error(r, 405, NULL);
}

/* ---- deny ---- */

static bool deny_one(const cfg_deny_t *d, const char *path, size_t len) {
    size_t n = strlen(d->pattern);
    switch (d->kind) {
    case CFG_DENY_PREFIX:
        return len >= n && memcmp(path, d->pattern, n) == 0 && (path[n] == '/' || path[n] == '\0');
    case CFG_DENY_PATH_GLOB: {
        /* The whole path and each prefix ending at a segment boundary: /uploads/x.php/extra is
         * the script /uploads/x.php. */
        char *tmp = xstrndup(path, len);
        bool hit = false;
        for (size_t i = 1; i <= len && !hit; i++) {
            if (i < len && tmp[i] != '/') continue;
            char c = tmp[i];
            tmp[i] = '\0';
            hit = fnmatch(d->pattern, tmp, 0) == 0;
            tmp[i] = c;
        }
        free(tmp);
        return hit;
    }
    case CFG_DENY_NAME: { /* a file-name pattern against each segment, as a handler's */
        size_t script_len;
        return router_path_matches(d->pattern, path, len, &script_len);
    }
    }
    return false;
}

static bool denied(const request_t *r) {
    const cfg_denies_t *dl = &r->site->cfg->deny;
    for (size_t i = 0; i < dl->n; i++)
        if (deny_one(&dl->v[i], r->path, r->path_len)) return true;
    return false;
}

/* ---- the request's URL ---- */

static void set_path(request_t *r, const char *p, size_t n) {
    char *np = xstrndup(p, n);
    free(r->path);
    r->path = np;
    r->path_len = n;
}

static void set_query(request_t *r, const char *q, size_t n, bool has) {
    char *nq = has ? xstrndup(q, n) : NULL;
    free(r->query_buf);
    r->query_buf = nq;
    r->has_query = has;
    r->query = has ? str_make(nq, n) : STR_NULL;
}

static int probe_cb(void *arg, const char *path) {
    request_t *r = arg;
    switch (static_probe(r->srv, r->site, path)) {
    case STATIC_FILE: return REWRITE_IS_FILE;
    case STATIC_DIR: return REWRITE_IS_DIR;
    default: return 0;
    }
}

/* Route the request to `url` (a configured path with an optional query: fallback, errorPage);
 * keep_query: the client's query string is kept when `url` has none (fallback). */
static void reroute(request_t *r, const char *url, bool keep_query) {
    if (++r->reroutes > REWRITE_MAX) {
        log_warn("%s: more than %d rewrites and internal redirects: 500", r->path, REWRITE_MAX);
        resp_error(r, 500, "too many internal redirects");
        return;
    }
    const char *qm = strchr(url, '?');
    size_t plen = qm ? (size_t)(qm - url) : strlen(url);
    /* Configured URLs are plain paths (checked at load): no decoding. */
    set_path(r, url, plen);
    if (qm) set_query(r, qm + 1, strlen(qm + 1), true);
    else if (!keep_query) set_query(r, NULL, 0, false);
    route(r);
}

/* A path naming nothing: the fallback when the site has one, else 404. */
static void not_found(request_t *r) {
    const char *fb = r->site->cfg->fallback;
    if (fb && !r->error_page) reroute(r, fb, true);
    else resp_error(r, 404, NULL);
}

/* ---- steps 4 to 9 ---- */

static void redirect(request_t *r, int status, const char *location, size_t len) {
    static const char body[] = "redirected\n";
    resp_start(r, status);
    resp_header(r, "Location", location, len);
    resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
    uv_buf_t b = uv_buf_init((char *)body, sizeof(body) - 1);
    resp_send(r, (int64_t)b.len, &b, 1, NULL, NULL);
    resp_finish(r);
}

/* Rewrite rules; returns false when the request was answered. */
static bool run_rewrites(request_t *r) {
    const cfg_site_t *site = r->site->cfg;
    if (site->n_rewrites == 0) return true;
    rewrite_io_t io;
    rewrite_io_init(&io, &r->reroutes, r->path, r->path_len, r->has_query ? r->query.p : NULL,
                    r->query.len);
    rewrite_outcome_t out = rewrite_run(r->gen->cfg, site, &io, probe_cb, r);
    bool go_on = true;
    switch (out) {
    case REWRITE_NONE: break;
    case REWRITE_DONE:
        set_path(r, io.path.data, io.path.len);
        set_query(r, io.query.data, io.query.len, io.has_query);
        break;
    case REWRITE_REDIRECT:
        redirect(r, io.status, io.location.data, io.location.len);
        go_on = false;
        break;
    case REWRITE_LOOP:
        log_warn("%s: more than %d rewrites: 500", r->path, REWRITE_MAX);
        resp_error(r, 500, "too many rewrites");
        go_on = false;
        break;
    case REWRITE_BAD:
        resp_error(r, io.status, io.status == 403 ? "hidden path" : "bad path");
        go_on = false;
        break;
    }
    rewrite_io_dispose(&io);
    return go_on;
}

/* A handler mapping, else 405 when one maps the path for other verbs, else a static file. */
static void serve(request_t *r) {
    const cfg_t *cfg = r->gen->cfg;
    const cfg_site_t *site = r->site->cfg;
    size_t script_len;
    int h = router_match(cfg, site, r->path, r->path_len, r->http.method, &script_len);
    if (h >= 0) {
        if (site->fallback && !r->error_page &&
            cfg->handlers[h].resource_type == CFG_RESOURCE_FILE) {
            char *script = xstrndup(r->path, script_len ? script_len : 1);
            static_kind_t k = static_probe(r->srv, r->site, script);
            free(script);
            if (k == STATIC_MISSING) {
                not_found(r);
                return;
            }
        }
        r->srv->serve_mapped(r, (size_t)h, script_len);
        return;
    }
    buf_t allow;
    buf_init(&allow);
    if (router_allow(cfg, site, r->path, r->path_len, &allow)) {
        method_not_allowed(r, &allow);
    } else if (site->fallback && !r->error_page &&
               static_probe(r->srv, r->site, r->path) == STATIC_MISSING) {
        not_found(r);
    } else {
        r->srv->serve_file(r);
    }
    buf_dispose(&allow);
}

/* A directory URL: its first index file that exists answers, through its handler if one maps it
 * (/ → /index.php), else as a static file. */
static bool try_index(request_t *r) {
    const cfg_site_t *site = r->site->cfg;
    for (size_t i = 0; i < site->index.n; i++) {
        char *cand = xasprintf("%s%s", r->path, site->index.v[i]);
        if (static_probe(r->srv, r->site, cand) != STATIC_FILE) {
            free(cand);
            continue;
        }
        free(r->path);
        r->path = cand;
        r->path_len = strlen(cand);
        serve(r);
        return true;
    }
    return false;
}

static void route(request_t *r) {
    size_t before = r->path_len;
    char *orig = NULL;
    if (r->site->cfg->deny.n) orig = xstrndup(r->path, r->path_len);
    if (!run_rewrites(r)) {
        free(orig);
        return;
    }
    bool changed = orig && (before != r->path_len || memcmp(orig, r->path, before) != 0);
    free(orig);
    if (changed && denied(r)) {
        resp_error(r, 404, NULL);
        return;
    }
    size_t script_len;
    if (r->path[r->path_len - 1] == '/' &&
        router_match(r->gen->cfg, r->site->cfg, r->path, r->path_len, r->http.method,
                     &script_len) < 0 &&
        try_index(r))
        return;
    serve(r);
}

/* redirectToHttps (SPEC §7): a clear-text request goes to the same host and target over TLS, on
 * the port of a tls listener of the site (written out unless 443). */
static bool redirect_to_https(request_t *r) {
    const http_site_t *site = r->site;
    if (r->https || !site->cfg->redirect_to_https || site->tls_port == 0) return false;
    str_t host = r->http.host;
    size_t hlen = host.len;
    if (hlen && host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', hlen);
        hlen = rb ? (size_t)(rb - host.p) + 1 : hlen;
    } else if (hlen) {
        const char *colon = memchr(host.p, ':', hlen);
        if (colon) hlen = (size_t)(colon - host.p);
    }
    if (hlen == 0) return false; /* HTTP/1.0 without Host: nothing to name */
    buf_t loc;
    buf_init(&loc);
    buf_printf(&loc, "https://%.*s", (int)hlen, host.p);
    if (site->tls_port != 443) buf_printf(&loc, ":%d", site->tls_port);
    buf_append(&loc, r->http.target.p, r->http.target.len);
    redirect(r, 301, loc.data, loc.len);
    buf_dispose(&loc);
    return true;
}

void dispatch_request(request_t *r) {
    str_t p = r->http.path;
    if (p.len == 1 && p.p[0] == '*') {
        /* OPTIONS * : the server itself. */
        resp_start(r, r->http.method_id == HTTP_METHOD_OPTIONS ? 200 : 400);
        resp_header_str(r, "Allow", "GET, HEAD, POST, OPTIONS");
        resp_send_headers(r, 0);
        resp_finish(r);
        return;
    }
    r->path = xmalloc(p.len + 1);
    r->query = r->http.query;
    r->has_query = r->http.has_query;
    int rc = http_path_decode(p.p, p.len, r->path, &r->path_len);
    if (rc < 0) {
        resp_error(r, -rc, rc == -403 ? "hidden path" : "bad path");
        return;
    }
    if (r->srv->intercept && r->srv->intercept(r)) return;
    if (r->site == NULL) {
        /* Over HTTP/2 on TLS a client may send requests for other names on a connection set up
         * for one (RFC 9113 §9.1.1): 421 tells it to open one of their own (RFC 9110 §15.5.20). */
        if (r->http2 && r->tls_version) resp_error(r, 421, "no site for this host on this connection");
        else resp_error(r, 404, "no site for this host");
        return;
    }
    if (redirect_to_https(r)) return;
    if (denied(r)) {
        resp_error(r, 404, NULL);
        return;
    }
    route(r);
}

/* ---- error pages ---- */

bool dispatch_error_page(request_t *r, int status) {
    if (r->site == NULL || r->error_page || r->aborted || r->finished || r->path == NULL)
        return false;
    const cfg_error_pages_t *ep = &r->site->cfg->error_pages;
    const char *url = NULL;
    for (size_t i = 0; i < ep->n && !url; i++)
        if (ep->v[i].status == status) url = ep->v[i].url;
    if (url == NULL) return false;
    /* The handler that called resp_error lets go of r now (as after resp_finish); its reference
     * passes to the re-routing, which runs once the caller's stack has unwound. */
    r->error_page = status;
    r->handler = NULL;
    r->hctx = NULL;
    r->app = "-";
    r->status = 0;
    r->resp_head.len = 0;
    if (r->http.method_id != HTTP_METHOD_HEAD) r->http.method_id = HTTP_METHOD_GET;
    char *dup = xstrdup(url);
    free(r->query_buf); /* the page's URL decides the query (none when it has none) */
    r->query_buf = NULL;
    r->has_query = false;
    r->query = STR_NULL;
    free(r->path);
    r->path = dup; /* set_path happens in the deferred pass: keep the URL here meanwhile */
    r->path_len = strlen(dup);
    request_ref(r); /* the list's */
    r->route_next = r->srv->defer_routes;
    r->srv->defer_routes = r;
    return true;
}

void dispatch_run_deferred(http_server_t *s) {
    request_t *list = s->defer_routes;
    s->defer_routes = NULL;
    while (list) {
        request_t *r = list;
        list = r->route_next;
        r->route_next = NULL;
        if (!r->aborted && !r->finished) {
            char *url = xstrdup(r->path);
            reroute(r, url, false);
            free(url);
        }
        request_unref(r); /* the list's */
    }
}

/* ---- header rules ---- */

uint64_t dispatch_header_rules(const request_t *r) {
    const cfg_site_t *site = r->site->cfg;
    if (site->n_headers == 0 || r->path == NULL) return 0;
    const cfg_t *cfg = r->gen->cfg;
    uint64_t mask = 0;
    size_t script_len;
    for (size_t k = 0; k < site->n_headers && k < 64; k++) {
        const cfg_headers_t *h = &cfg->headers[site->headers[k]];
        if (router_rule_matches(h->path, h->path_kind, h->path_n, r->path, r->path_len,
                                &script_len))
            mask |= 1ull << k;
    }
    return mask;
}
