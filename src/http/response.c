/* Response writing: status line and headers, body framing (length, chunked, close-delimited),
 * and the write requests that keep the bytes alive until libuv has written them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/conn.h"
#include "http/dispatch.h"
#include "http/encoding.h"
#include "http/h2.h"
#include "http/site.h"
#include "http/request.h"
#include "http/request_int.h"
#include "http/tls.h"
#include "http/http_server.h"
#include "util/log.h"
#include "util/xalloc.h"

const char *http_status_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

static void on_write(uv_write_t *w, int status) {
    wreq_t *wr = (wreq_t *)w;
    conn_t *c = wr->c;
    request_t *r = wr->r;
    c->pending_writes--;
    if (r) r->pending_writes--;
    if (wr->cb) wr->cb(r, wr->ctx, status);
    free(wr->owned);
    free(wr);
    if (r) request_unref(r); /* the write's */
    conn_write_done(c, status); /* c lives until its close callback, which comes after this one */
}

void conn_queue_write(conn_t *c, request_t *r, const uv_buf_t *bufs, unsigned n, char *owned,
                      resp_write_cb cb, void *ctx) {
    if (c == NULL || c->tls == NULL || c->state == CONN_STATE_CLOSING) {
        conn_write_raw(c, r, bufs, n, owned, cb, ctx);
        return;
    }
    /* TLS: the records (with whatever the session had queued before them) replace the bytes. */
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    http_tls_reserve(c->tls, total);
    bool ok = http_tls_write(c->tls, bufs, n);
    free(owned);
    buf_t out = http_tls_take_output(c->tls);
    if (!ok) {
        log_info("TLS write failed: %s", http_tls_error(c->tls));
        buf_dispose(&out);
        if (cb) cb(r, ctx, UV_EPROTO);
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(out.data, (unsigned)out.len);
    conn_write_raw(c, r, &b, 1, out.data, cb, ctx);
}

void conn_write_transient(conn_t *c, const char *data, size_t len) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (c->tls || c->state == CONN_STATE_CLOSING) { /* encrypted (copied) at once, or dropped */
        conn_queue_write(c, NULL, &b, 1, NULL, NULL, NULL);
        return;
    }
    if (c->pending_writes == 0 && c->h.stream.write_queue_size == 0) {
        int w = uv_try_write(&c->h.stream, &b, 1);
        if (w >= 0 && (size_t)w == len) return;
        if (w < 0 && w != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        }
    }
    char *copy = xmalloc(len); /* only what the socket did not take at once */
    memcpy(copy, data, len);
    b = uv_buf_init(copy, (unsigned)len);
    conn_write_raw(c, NULL, &b, 1, copy, NULL, NULL);
}

void conn_write_raw(conn_t *c, request_t *r, const uv_buf_t *bufs, unsigned n, char *owned,
                    resp_write_cb cb, void *ctx) {
    if (c == NULL || c->state == CONN_STATE_CLOSING) {
        free(owned);
        if (cb) cb(r, ctx, UV_ECANCELED);
        return;
    }
    /* Nothing queued: try to write at once. When the kernel takes everything (the usual case for
     * a response) no write request exists at all, which also spares the epoll_ctl that libuv
     * makes after every completed write request. The callback then runs before we return. */
    uv_buf_t rest[16];
    if (c->pending_writes == 0 && c->h.stream.write_queue_size == 0 && n <= 16) {
        size_t total = 0;
        for (unsigned i = 0; i < n; i++) total += bufs[i].len;
        int w = uv_try_write(&c->h.stream, bufs, n);
        if (w >= 0 && (size_t)w == total) {
            free(owned);
            if (cb) cb(r, ctx, 0);
            return;
        }
        if (w < 0 && w != UV_EAGAIN) {
            free(owned);
            if (cb) cb(r, ctx, w);
            conn_close(c);
            return;
        }
        if (w > 0) { /* queue only what is left */
            size_t skip = (size_t)w;
            unsigned k = 0;
            for (unsigned i = 0; i < n; i++) {
                if (skip >= bufs[i].len) {
                    skip -= bufs[i].len;
                    continue;
                }
                rest[k++] = uv_buf_init(bufs[i].base + skip, (unsigned)(bufs[i].len - skip));
                skip = 0;
            }
            bufs = rest;
            n = k;
        }
    }
    wreq_t *wr = xmalloc(sizeof(*wr));
    wr->c = c;
    wr->r = r;
    wr->cb = cb;
    wr->ctx = ctx;
    wr->owned = owned;
    c->pending_writes++;
    if (r) {
        r->pending_writes++;
        request_ref(r);
    }
    int rc = uv_write(&wr->w, &c->h.stream, bufs, n, on_write);
    if (rc != 0) {
        /* The stream is unusable; report through the same path as an asynchronous failure. */
        c->pending_writes--;
        if (r) {
            r->pending_writes--;
            request_unref(r); /* never the last: the caller holds one */
        }
        free(owned);
        free(wr);
        if (cb) cb(r, ctx, rc);
        conn_close(c);
    }
}

void resp_continue(request_t *r) {
    if (!r->expect_continue || r->conn == NULL) return;
    r->expect_continue = false;
    if (r->h2s) {
        h2_continue(r);
        return;
    }
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    conn_queue_write(r->conn, NULL, &b, 1, NULL, NULL, NULL);
}

/* Decimal digits of v into out (no NUL); returns the length. Hot path: no printf. */
static size_t fmt_u64(char *out, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static void append_u64(buf_t *b, uint64_t v) {
    char d[20];
    buf_append(b, d, fmt_u64(d, v));
}

/* The site's header rules that apply to the response being started, and the status an errorPage
 * answer keeps. */
static int begin_response(request_t *r, int status) {
    r->header_rules = r->site ? dispatch_header_rules(r) : 0;
    if (r->error_page && status >= 200) status = r->error_page;
    return status;
}

/* Is `name` set by one of the header rules of this response? Then the rule's value wins. */
static bool rule_sets(const request_t *r, const char *name, size_t nlen, size_t from) {
    const cfg_t *cfg = r->gen->cfg;
    const cfg_site_t *site = r->site->cfg;
    for (size_t k = from; k < site->n_headers && k < 64; k++) {
        if (!(r->header_rules & (1ull << k))) continue;
        const cfg_headers_t *h = &cfg->headers[site->headers[k]];
        for (size_t i = 0; i < h->n_set; i++)
            if (strlen(h->set[i].name) == nlen && strncasecmp(h->set[i].name, name, nlen) == 0)
                return true;
    }
    return false;
}

static void append_rule_headers(request_t *r) {
    const cfg_t *cfg = r->gen->cfg;
    const cfg_site_t *site = r->site->cfg;
    for (size_t k = 0; k < site->n_headers && k < 64; k++) {
        if (!(r->header_rules & (1ull << k))) continue;
        const cfg_headers_t *h = &cfg->headers[site->headers[k]];
        for (size_t i = 0; i < h->n_set; i++) {
            const cfg_header_set_t *hs = &h->set[i];
            if (rule_sets(r, hs->name, strlen(hs->name), k + 1)) continue; /* a later rule wins */
            buf_append_str(&r->resp_head, hs->name);
            buf_append(&r->resp_head, ": ", 2);
            buf_append_str(&r->resp_head, hs->value);
            buf_append(&r->resp_head, "\r\n", 2);
        }
    }
}

static void retry_after_header(request_t *r) {
    char v[16];
    snprintf(v, sizeof(v), "%u", r->retry_after);
    resp_header_str(r, "Retry-After", v); /* also on an errorPage */
}

void resp_start(request_t *r, int status) {
    http_server_t *s = r->srv;
    status = begin_response(r, status);
    r->status = status;
    r->resp_head.len = 0;
    buf_t *b = &r->resp_head;
    buf_reserve(b, 160);
    buf_append(b, "HTTP/1.1 ", 9);
    append_u64(b, (uint64_t)(status >= 100 && status <= 999 ? status : 500));
    buf_append(b, " ", 1);
    buf_append_str(b, http_status_reason(status));
    buf_append_str(b, "\r\nServer: fcgihost\r\nDate: ");
    if (s) buf_append(b, http_date(s), 29);
    buf_append(b, "\r\n", 2);
    if (status == 405 && r->allow) resp_header_str(r, "Allow", r->allow); /* also on an errorPage */
    if (status == 503 && r->retry_after) retry_after_header(r);
}

void resp_start_reason(request_t *r, int status, const char *reason, size_t rlen) {
    if (rlen == 0 || (r->error_page && status >= 200)) {
        resp_start(r, status);
        return;
    }
    http_server_t *s = r->srv;
    status = begin_response(r, status);
    r->status = status;
    r->resp_head.len = 0;
    buf_printf(&r->resp_head, "HTTP/1.1 %d %.*s\r\nServer: fcgihost\r\nDate: %s\r\n", status, (int)rlen,
               reason, s ? http_date(s) : "");
    if (status == 405 && r->allow) resp_header_str(r, "Allow", r->allow); /* also on an errorPage */
    if (status == 503 && r->retry_after) retry_after_header(r);
}

void resp_header(request_t *r, const char *name, const char *value, size_t vlen) {
    resp_header_n(r, name, strlen(name), value, vlen);
}

void resp_header_n(request_t *r, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (r->header_rules && rule_sets(r, name, nlen, 0)) return;
    buf_append(&r->resp_head, name, nlen);
    buf_append(&r->resp_head, ": ", 2);
    buf_append(&r->resp_head, value, vlen);
    buf_append(&r->resp_head, "\r\n", 2);
}

void resp_header_str(request_t *r, const char *name, const char *value) {
    resp_header(r, name, value, strlen(value));
}

void resp_send_headers(request_t *r, int64_t content_length) {
    resp_send_headers_cb(r, content_length, NULL, NULL);
}

/* ---- content codings (SPEC §7) ---- */

/* The value of header `name` in the block being built ("Name: value\r\n" lines after the status
 * line); STR_NULL when absent. */
static str_t head_field(const buf_t *head, const char *name) {
    size_t n = strlen(name);
    const char *p = head->data, *end = head->data + head->len;
    const char *line = memchr(p, '\n', head->len);
    while (line && line + 1 < end) {
        const char *s = line + 1;
        line = memchr(s, '\n', (size_t)(end - s));
        if (line == NULL) break;
        if ((size_t)(line - s) > n && s[n] == ':' && strncasecmp(s, name, n) == 0) {
            const char *v = s + n + 1;
            while (v < line && (*v == ' ' || *v == '\t')) v++;
            const char *ve = line;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            return str_make(v, (size_t)(ve - v));
        }
    }
    return STR_NULL;
}

static bool compressible_status(int st) {
    return st == 200 || st == 201 || st == 203 || st == 403 || st == 404 || st == 410;
}

/* Whether this response gets a content coding: adds Vary (and Content-Encoding when the client
 * takes one) and returns the coding; HTTP_ENC_IDENTITY otherwise. `len`: the body's length, -1
 * when unknown (streamed). */
bool resp_codable(const request_t *r, str_t content_type, int64_t len) {
    if (r->site == NULL || r->no_compress || !r->site->cfg->compress || r->error_page) return false;
    if (len >= 0 && (uint64_t)len < r->site->cfg->compress_min_bytes) return false;
    return content_type.p && http_compressible_type(content_type);
}

http_encoding_t resp_client_coding(const request_t *r) {
    const http_header_t *ae = HTTP_FIND_HEADER(&r->http, "accept-encoding");
    return ae && r->site ? http_accept_encoding(ae->value, r->site->cfg->compress) : HTTP_ENC_IDENTITY;
}

/* A strong validator names one representation: the coded one gets a weak ETag (as nginx). */
static void weaken_etag(request_t *r) {
    str_t etag = head_field(&r->resp_head, "etag");
    if (etag.len && etag.p[0] == '"') {
        size_t at = (size_t)(etag.p - r->resp_head.data);
        buf_reserve(&r->resp_head, 2);
        memmove(r->resp_head.data + at + 2, r->resp_head.data + at, r->resp_head.len - at);
        memcpy(r->resp_head.data + at, "W/", 2);
        r->resp_head.len += 2;
    }
}

static http_encoding_t choose_coding(request_t *r, int64_t len) {
    if (!compressible_status(r->status)) return HTTP_ENC_IDENTITY;
    if (!resp_codable(r, head_field(&r->resp_head, "content-type"), len)) return HTTP_ENC_IDENTITY;
    if (head_field(&r->resp_head, "content-encoding").p ||
        head_field(&r->resp_head, "content-range").p)
        return HTTP_ENC_IDENTITY; /* already coded, or a part of a whole */
    buf_append_str(&r->resp_head, "Vary: Accept-Encoding\r\n");
    http_encoding_t enc = resp_client_coding(r);
    if (enc == HTTP_ENC_IDENTITY) return enc;
    weaken_etag(r);
    buf_append_str(&r->resp_head, "Content-Encoding: ");
    buf_append_str(&r->resp_head, http_encoding_name(enc));
    buf_append(&r->resp_head, "\r\n", 2);
    return enc;
}

static void queue_body(request_t *r, const char *data, size_t len, char *owned);

/* Queue what the coder produced (owned by the write). */
static void queue_coded(request_t *r, buf_t *out) {
    if (r->srv) r->srv->compress_out += out->len;
    if (out->len == 0) {
        buf_dispose(out);
        return;
    }
    char *data = out->data;
    size_t len = out->len;
    buf_init(out);
    queue_body(r, data, len, data);
}

/* Strict-Transport-Security and the site's header rules. */
static void append_site_fields(request_t *r) {
    if (r->https && r->site && r->site->cfg->hsts) {
        buf_append_str(&r->resp_head, "Strict-Transport-Security: max-age=");
        append_u64(&r->resp_head, r->site->cfg->hsts);
        buf_append(&r->resp_head, "\r\n", 2);
    }
    if (r->header_rules) append_rule_headers(r);
}

/* Framing headers and the blank line; returns false when no body may follow. */
static bool finish_head(request_t *r, int64_t content_length) {
    conn_t *c = r->conn;
    bool bodyless = r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200);
    if (r->h2s) { /* HTTP/2 frames the body itself: a length when known, no connection fields */
        if (content_length >= 0 && !bodyless) {
            buf_append(&r->resp_head, "Content-Length: ", 16);
            append_u64(&r->resp_head, (uint64_t)content_length);
            buf_append(&r->resp_head, "\r\n", 2);
        }
        if (bodyless) r->head_only = true;
        append_site_fields(r);
    } else {
        if (content_length >= 0) {
            if (!bodyless) {
                buf_append(&r->resp_head, "Content-Length: ", 16);
                append_u64(&r->resp_head, (uint64_t)content_length);
                buf_append(&r->resp_head, "\r\n", 2);
            }
        } else if (!bodyless && r->http.minor_version >= 1) {
            r->resp_chunked = !r->head_only;
            if (!r->head_only) buf_append_str(&r->resp_head, "Transfer-Encoding: chunked\r\n");
        } else if (!bodyless && !r->head_only) {
            r->resp_until_close = true;
            if (c) c->close_after = true;
        }
        if (bodyless) r->head_only = true;
        append_site_fields(r);
        if (c && conn_must_close_after(c, r)) c->close_after = true;
        if (c && (c->close_after || c->srv->stopping))
            buf_append_str(&r->resp_head, "Connection: close\r\n");
        else if (r->http.minor_version == 0)
            buf_append_str(&r->resp_head, "Connection: keep-alive\r\n");
    }
    buf_append(&r->resp_head, "\r\n", 2);
    r->headers_sent = true;
    return !r->head_only;
}

/* The finished head (bufs[0], owned) with the first of the body (bufs[1..n), whose callback is cb). */
static void send_head(request_t *r, const uv_buf_t *bufs, unsigned n, char *owned, resp_write_cb cb,
                      void *ctx) {
    if (r->h2s) h2_respond(r, bufs[0].base, bufs[0].len, bufs + 1, n - 1, owned, cb, ctx);
    else conn_queue_write(r->conn, r, bufs, n, owned, cb, ctx);
}

void resp_send_headers_cb(request_t *r, int64_t content_length, resp_write_cb cb, void *ctx) {
    http_encoding_t enc = choose_coding(r, content_length);
    if (enc != HTTP_ENC_IDENTITY) {
        content_length = -1; /* the coded length is known only at the end: chunked */
        if (!r->head_only && r->status != 204 && r->status != 304) {
            r->comp = http_compressor_new(enc, -1);
            if (r->comp && r->srv) r->srv->compressed++;
        }
    }
    finish_head(r, content_length);
    uv_buf_t b = uv_buf_init(r->resp_head.data, (unsigned)r->resp_head.len);
    char *owned = r->resp_head.data;
    buf_init(&r->resp_head); /* ownership moves to the write request */
    send_head(r, &b, 1, owned, cb, ctx);
}

void resp_send(request_t *r, int64_t len, const uv_buf_t *body, unsigned nbody, resp_write_cb cb, void *ctx) {
    http_encoding_t enc = choose_coding(r, len);
    size_t given = 0;
    for (unsigned i = 0; i < nbody; i++) given += body[i].len;
    if (enc != HTTP_ENC_IDENTITY && r->head_only && (len < 0 || given != (uint64_t)len)) {
        /* HEAD without the body (an application sends none): GET's coded length is unknown, so
         * none is announced; Content-Encoding and Vary are those GET would get. */
        if (cb) cb(r, ctx, 0);
        finish_head(r, -1);
        uv_buf_t b = uv_buf_init(r->resp_head.data, (unsigned)r->resp_head.len);
        char *owned = r->resp_head.data;
        buf_init(&r->resp_head);
        send_head(r, &b, 1, owned, NULL, NULL);
        return;
    }
    if (enc != HTTP_ENC_IDENTITY) {
        /* The whole body is here: code it now and announce the coded length (HEAD too, so that
         * it gets the header fields GET would). */
        buf_t out;
        buf_init(&out);
        int rc;
        if (nbody == 1) {
            rc = http_compress_whole(enc, body[0].base, body[0].len, &out);
        } else {
            http_compressor_t *c = http_compressor_new(enc, -1);
            rc = c ? 0 : -1;
            for (unsigned i = 0; rc == 0 && i < nbody; i++)
                rc = http_compressor_feed(c, body[i].base, body[i].len, HTTP_COMPRESS_MORE, &out);
            if (rc == 0) rc = http_compressor_feed(c, NULL, 0, HTTP_COMPRESS_FINISH, &out);
            http_compressor_free(c);
        }
        if (rc == 0) {
            if (r->srv) {
                r->srv->compressed++;
                for (unsigned i = 0; i < nbody; i++) r->srv->compress_in += body[i].len;
                r->srv->compress_out += out.len;
            }
            if (cb) cb(r, ctx, 0); /* the caller's bytes are no longer needed */
            bool with_body = finish_head(r, (int64_t)out.len) && out.len > 0;
            uv_buf_t bufs[2] = {uv_buf_init(r->resp_head.data, (unsigned)r->resp_head.len),
                                uv_buf_init(out.data, (unsigned)out.len)};
            if (with_body) r->resp_body_bytes += out.len;
            char *owned = r->resp_head.data;
            buf_init(&r->resp_head);
            send_head(r, bufs, with_body ? 2 : 1, owned, resp_free_ctx, out.data);
            return;
        }
        buf_dispose(&out); /* cannot happen short of memory: send it as it is */
    }
    bool with_body = finish_head(r, len) && len > 0;
    uv_buf_t bufs[8];
    unsigned n = 1;
    bufs[0] = uv_buf_init(r->resp_head.data, (unsigned)r->resp_head.len);
    for (unsigned i = 0; with_body && i < nbody && n < 8; i++) bufs[n++] = body[i];
    if (with_body) r->resp_body_bytes += (uint64_t)len;
    char *owned = r->resp_head.data;
    buf_init(&r->resp_head);
    send_head(r, bufs, n, owned, cb, ctx);
}

/* One framed piece of body (chunked when the response is), bytes owned by the write. */
static void queue_body(request_t *r, const char *data, size_t len, char *owned) {
    r->resp_body_bytes += len;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (r->h2s) {
        h2_write(r, &b, 1, NULL, resp_free_ctx, owned);
        return;
    }
    if (!r->resp_chunked) {
        conn_queue_write(r->conn, r, &b, 1, NULL, resp_free_ctx, owned);
        return;
    }
    char *hdr = xmalloc(24);
    int n = snprintf(hdr, 24, "%zx\r\n", len);
    uv_buf_t fb[3] = {uv_buf_init(hdr, (unsigned)n), b, uv_buf_init((char *)"\r\n", 2)};
    conn_queue_write(r->conn, r, fb, 3, hdr, resp_free_ctx, owned);
}

void resp_write(request_t *r, const uv_buf_t *bufs, unsigned nbufs, resp_write_cb cb, void *ctx) {
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++) total += bufs[i].len;
    if (r->head_only || total == 0) {
        if (cb) cb(r, ctx, 0);
        return;
    }
    if (r->comp) {
        buf_t out;
        buf_init(&out);
        int rc = 0;
        for (unsigned i = 0; rc == 0 && i < nbufs; i++)
            rc = http_compressor_feed(r->comp, bufs[i].base, bufs[i].len, HTTP_COMPRESS_MORE, &out);
        if (r->srv) r->srv->compress_in += total;
        if (rc < 0) { /* the coder failed (memory): the body cannot be completed */
            buf_dispose(&out);
            req_abort(r);
        } else {
            queue_coded(r, &out);
        }
        if (cb) cb(r, ctx, rc < 0 ? UV_ENOMEM : 0);
        return;
    }
    r->resp_body_bytes += total;
    if (r->h2s) {
        h2_write(r, bufs, nbufs, NULL, cb, ctx);
        return;
    }
    if (!r->resp_chunked) {
        conn_queue_write(r->conn, r, bufs, nbufs, NULL, cb, ctx);
        return;
    }
    uv_buf_t framed[18];
    uv_buf_t *fb = nbufs + 2 <= 18 ? framed : xmalloc((nbufs + 2) * sizeof(uv_buf_t));
    char *hdr = xmalloc(24);
    int n = snprintf(hdr, 24, "%zx\r\n", total);
    fb[0] = uv_buf_init(hdr, (unsigned)n);
    memcpy(fb + 1, bufs, nbufs * sizeof(uv_buf_t));
    fb[nbufs + 1] = uv_buf_init((char *)"\r\n", 2);
    conn_queue_write(r->conn, r, fb, nbufs + 2, hdr, cb, ctx);
    if (fb != framed) free(fb);
}

void resp_flush(request_t *r) {
    if (r->comp == NULL || r->finished) return;
    buf_t out;
    buf_init(&out);
    if (http_compressor_feed(r->comp, NULL, 0, HTTP_COMPRESS_FLUSH, &out) < 0) {
        buf_dispose(&out);
        req_abort(r);
        return;
    }
    queue_coded(r, &out);
}

void resp_write_copy(request_t *r, const char *data, size_t len) {
    if (r->head_only || len == 0) return;
    char *copy = xmalloc(len);
    memcpy(copy, data, len);
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    resp_write(r, &b, 1, resp_free_ctx, copy);
}

void resp_free_ctx(request_t *r, void *ctx, int status) {
    free(ctx);
}

void resp_finish(request_t *r) {
    if (r->finished) return;
    if (r->comp) { /* the coded body's end */
        buf_t out;
        buf_init(&out);
        if (http_compressor_feed(r->comp, NULL, 0, HTTP_COMPRESS_FINISH, &out) == 0) {
            queue_coded(r, &out);
        } else {
            buf_dispose(&out);
            req_abort(r);
        }
        http_compressor_free(r->comp);
        r->comp = NULL;
    }
    r->finished = true;
    if (r->resp_chunked && r->conn) {
        uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
        conn_queue_write(r->conn, r, &b, 1, NULL, NULL, NULL);
    }
    if (r->h2s) h2_finish(r);                 /* END_STREAM; drops the stream's reference */
    else if (r->conn) conn_request_done(r->conn); /* drops the connection's reference */
    request_unref(r);                         /* the handler's */
}

void resp_error(request_t *r, int status, const char *detail) {
    if (status == 405 && r->allow == NULL) r->allow = xstrdup("GET, HEAD"); /* static files */
    if (!r->headers_sent && dispatch_error_page(r, status)) return;
    char body[256];
    int n;
    if (detail && *detail)
        n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_status_reason(status), detail);
    else
        n = snprintf(body, sizeof(body), "%d %s\n", status, http_status_reason(status));
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(body)) n = sizeof(body) - 1;
    resp_start(r, status);
    resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
    char *copy = xstrndup(body, (size_t)n);
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    resp_send(r, n, &b, 1, resp_free_ctx, copy);
    resp_finish(r);
}

size_t resp_queued_bytes(const request_t *r) {
    if (r->h2s) return h2_queued_bytes(r);
    return r->conn ? r->conn->h.stream.write_queue_size : 0;
}
