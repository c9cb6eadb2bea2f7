#include "http/dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "http/path.h"
#include "http/request.h"
#include "http/router.h"
#include "http/static.h"
#include "fastcgi/handler.h"
#include "server.h"
#include "server_status.h"
#include "util/xalloc.h"

/* A directory URL: its first index file that exists answers, through its handler if one maps it
 * (/ → /index.php), else as a static file. */
static bool try_index(request_t *r) {
    const cfg_t *cfg = r->gen->cfg;
    server_t *s = r->srv;
    for (size_t i = 0; i < cfg->server.n_index; i++) {
        char *cand = xasprintf("%s%s", r->path, cfg->server.index[i]);
        size_t clen = strlen(cand), script_len;
        if (static_probe(s, cand) != STATIC_FILE) {
            free(cand);
            continue;
        }
        int h = router_match(cfg, cand, clen, r->http.method, &script_len);
        free(r->path);
        r->path = cand;
        r->path_len = clen;
        if (h >= 0) fcgi_serve(r, (size_t)h, script_len);
        else static_serve(r);
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
    if (server_status_page(r)) return;
    const cfg_t *cfg = r->gen->cfg;
    size_t script_len;
    int h = router_match(cfg, r->path, r->path_len, r->http.method, &script_len);
    if (h >= 0) {
        fcgi_serve(r, (size_t)h, script_len);
        return;
    }
    if (r->path[r->path_len - 1] == '/' && try_index(r)) return;
    static_serve(r);
}
