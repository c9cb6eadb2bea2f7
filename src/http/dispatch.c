#include "http/dispatch.h"

#include <string.h>

#include "http/conn.h"
#include "http/path.h"
#include "http/request.h"
#include "http/static.h"
#include "util/xalloc.h"

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
    static_serve(r);
}
