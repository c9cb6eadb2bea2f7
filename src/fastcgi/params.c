#include "fastcgi/params.h"

#include <stdio.h>
#include <string.h>

#include "http/path.h"

static bool is_utf8_var(const cgi_vars_t *v, const char *name, size_t n) {
    if (v->utf8_all) return true;
    for (size_t i = 0; i < v->n_utf8_vars; i++)
        if (strlen(v->utf8_vars[i]) == n && strncasecmp(v->utf8_vars[i], name, n) == 0) return true;
    return false;
}

typedef struct builder {
    const cgi_vars_t *v;
    fcgi_params_t fp;
    buf_t scratch;
    int error;
    char *err;
    size_t errlen;
} builder_t;

/* Add one variable, applying the UTF-8 / ASCII rule to its value. */
static void add(builder_t *b, const char *name, size_t nlen, const char *val, size_t vlen) {
    if (b->error) return;
    bool high = false;
    for (size_t i = 0; i < vlen && !high; i++) high = (unsigned char)val[i] >= 0x80;
    if (!high) {
        fcgi_params_add(&b->fp, name, nlen, val, vlen);
        return;
    }
    if (is_utf8_var(b->v, name, nlen)) {
        if (!utf8_valid((const unsigned char *)val, vlen)) {
            b->error = -400;
            snprintf(b->err, b->errlen, "%.*s is not valid UTF-8", (int)nlen, name);
            return;
        }
        fcgi_params_add(&b->fp, name, nlen, val, vlen);
        return;
    }
    static const char hex[] = "0123456789ABCDEF";
    b->scratch.len = 0;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c < 0x80) {
            buf_append(&b->scratch, &val[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(&b->scratch, e, 3);
        }
    }
    fcgi_params_add(&b->fp, name, nlen, b->scratch.data, b->scratch.len);
}

#define ADD(b, lit, s) add((b), lit, sizeof(lit) - 1, (s).p ? (s).p : "", (s).len)
#define ADDZ(b, lit, z) add((b), lit, sizeof(lit) - 1, (z), strlen(z))

/* HTTP_* for each request header: upper case, '-' to '_'; repeated fields joined with ", ". */
static void add_headers(builder_t *b) {
    const cgi_vars_t *v = b->v;
    buf_t name, value;
    buf_init(&name);
    buf_init(&value);
    for (size_t i = 0; i < v->n_headers; i++) {
        str_t hn = v->headers[i].name;
        if (memchr(hn.p, '_', hn.len) || STR_IEQ(hn, "proxy") || STR_IEQ(hn, "content-length") ||
            STR_IEQ(hn, "content-type"))
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = v->headers[k].name.len == hn.len && strncasecmp(v->headers[k].name.p, hn.p, hn.len) == 0;
        if (seen) continue;
        name.len = 0;
        buf_append(&name, "HTTP_", 5);
        for (size_t k = 0; k < hn.len; k++) {
            char c = hn.p[k];
            c = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            buf_append(&name, &c, 1);
        }
        value.len = 0;
        const char *sep = STR_IEQ(hn, "cookie") ? "; " : ", ";
        for (size_t k = i; k < v->n_headers; k++) {
            if (v->headers[k].name.len != hn.len || strncasecmp(v->headers[k].name.p, hn.p, hn.len) != 0)
                continue;
            if (value.len) buf_append_str(&value, sep);
            buf_append(&value, v->headers[k].value.p, v->headers[k].value.len);
        }
        add(b, name.data, name.len, value.data ? value.data : "", value.len);
    }
    buf_dispose(&name);
    buf_dispose(&value);
}

int cgi_params_build(const cgi_vars_t *v, buf_t *out, char *err, size_t errlen) {
    builder_t b = {.v = v, .err = err, .errlen = errlen};
    buf_init(&b.scratch);
    uint16_t id = v->request_id ? v->request_id : 1;
    fcgi_append_begin_request(out, id, FCGI_RESPONDER, FCGI_KEEP_CONN);
    fcgi_params_init(&b.fp, out, id);
    char num[32];
    ADDZ(&b, "GATEWAY_INTERFACE", "CGI/1.1");
    ADDZ(&b, "SERVER_SOFTWARE", "fcgihost/" FCGIHOST_VERSION);
    ADDZ(&b, "SERVER_PROTOCOL", v->http2 ? "HTTP/2.0" : v->minor_version ? "HTTP/1.1" : "HTTP/1.0");
    ADD(&b, "REQUEST_METHOD", v->method);
    ADD(&b, "REQUEST_URI", v->request_uri);
    ADD(&b, "QUERY_STRING", v->query);
    ADD(&b, "SCRIPT_NAME", v->script_name);
    ADD(&b, "PATH_INFO", v->path_info);
    if (v->path_info.len) {
        b.scratch.len = 0;
        buf_t pt;
        buf_init(&pt);
        buf_append(&pt, v->document_root.p, v->document_root.len);
        buf_append(&pt, v->path_info.p, v->path_info.len);
        add(&b, "PATH_TRANSLATED", 15, pt.data, pt.len);
        buf_dispose(&pt);
    }
    ADD(&b, "SCRIPT_FILENAME", v->script_filename);
    ADD(&b, "DOCUMENT_ROOT", v->document_root);
    ADD(&b, "DOCUMENT_URI", v->document_uri);
    ADD(&b, "SERVER_NAME", v->server_name);
    ADD(&b, "SERVER_ADDR", v->server_addr);
    ADD(&b, "SERVER_PORT", v->server_port);
    ADD(&b, "REMOTE_ADDR", v->remote_addr);
    ADD(&b, "REMOTE_PORT", v->remote_port);
    ADDZ(&b, "REQUEST_SCHEME", v->https ? "https" : "http");
    if (v->https) ADDZ(&b, "HTTPS", "on");
    if (v->ssl_protocol) ADDZ(&b, "SSL_PROTOCOL", v->ssl_protocol);
    ADDZ(&b, "REDIRECT_STATUS", "200");
    if (v->content_length >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)v->content_length);
        ADDZ(&b, "CONTENT_LENGTH", num);
    } else {
        ADDZ(&b, "CONTENT_LENGTH", "");
    }
    const http_header_t *ct = NULL;
    for (size_t i = 0; i < v->n_headers && !ct; i++)
        if (STR_IEQ(v->headers[i].name, "content-type")) ct = &v->headers[i];
    if (ct) ADD(&b, "CONTENT_TYPE", ct->value);
    else ADDZ(&b, "CONTENT_TYPE", "");
    add_headers(&b);
    fcgi_params_end(&b.fp);
    buf_dispose(&b.scratch);
    return b.error;
}
