#include "http/dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "http/path.h"
#include "http/request.h"
#include "http/router.h"
#include "http/static.h"
#include "util/xalloc.h"

/* 405 with the verbs the handlers mapping this path accept. */
static void method_not_allowed(request_t *r, const buf_t *allow) {
    static const char body[] = "405 Method Not Allowed\n";
    resp_start(r, 405);
    resp_header(r, "Allow", allow->data, allow->len);
    resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
    uv_buf_t b = uv_buf_init((char *)body, sizeof(body) - 1);
    resp_send(r, (int64_t)b.len, &b, 1, NULL, NULL);
    resp_finish(r);
}

/* The handler mapping the path, else 405 when one maps it for other verbs, else a static file. */
static void route(request_t *r) {
    const cfg_t *cfg = r->gen->cfg;
    size_t script_len;
    int h = router_match(cfg, r->path, r->path_len, r->http.method, &script_len);
    if (h >= 0) {
        r->srv->serve_mapped(r, (size_t)h, script_len);
        return;
    }
    buf_t allow;
    buf_init(&allow);
    if (router_allow(cfg, r->path, r->path_len, &allow)) method_not_allowed(r, &allow);
    else r->srv->serve_file(r);
    buf_dispose(&allow);
}

/* A directory URL: its first index file that exists answers, through its handler if one maps it
 * (/ → /index.php), else as a static file. */
static bool try_index(request_t *r) {
    const cfg_t *cfg = r->gen->cfg;
    http_server_t *s = r->srv;
    for (size_t i = 0; i < cfg->server.n_index; i++) {
        char *cand = xasprintf("%s%s", r->path, cfg->server.index[i]);
        if (static_probe(s, cand) != STATIC_FILE) {
            free(cand);
            continue;
        }
        free(r->path);
        r->path = cand;
        r->path_len = strlen(cand);
        route(r);
        return true;
    }
    return false;
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
    int rc = http_path_decode(p.p, p.len, r->path, &r->path_len);
    if (rc < 0) {
        resp_error(r, -rc, rc == -403 ? "hidden path" : "bad path");
        return;
    }
    if (r->srv->intercept && r->srv->intercept(r)) return;
    const cfg_t *cfg = r->gen->cfg;
    size_t script_len;
    if (r->path[r->path_len - 1] == '/' &&
        router_match(cfg, r->path, r->path_len, r->http.method, &script_len) < 0 && try_index(r))
        return;
    route(r);
}
