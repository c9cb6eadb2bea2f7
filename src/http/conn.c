/* Client connections: read → parse → dispatch, one request at a time, responses in order.
 *
 * Memory: an idle connection holds no read buffer (it is taken in alloc_cb when bytes arrive and
 * released as soon as nothing is pending), so 10,000 idle keep-alive connections cost little more
 * than their uv handle. Timeouts are deadlines checked by the server's one maintenance timer. */
#include "http/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/dispatch.h"
#include "http/encoding.h"
#include "http/forwarded.h"
#include "http/h2.h"
#include "http/parser.h"
#include "http/proxy_proto.h"
#include "http/request.h"
#include "http/request_int.h"
#include "http/http_server.h"
#include "http/site.h"
#include "http/tls.h"
#include "util/log.h"
#include "util/xalloc.h"

#define RBUF_INITIAL 4096u
#define RBUF_BODY 65536u
#define RBUF_H2 16384u           /* HTTP/2: frames of up to 16 KiB come in whole reads */
#define MAX_HEADERS 256
#define DISCARD_MAX 65536u        /* a finished request's unread body up to this is skipped */
#define WRITE_QUEUE_HIGH (256u * 1024u) /* pipelined heads wait while this much is unsent */
#define LINGER_MS 2000u

static http_header_t header_scratch[MAX_HEADERS]; /* the loop is single-threaded */

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void tls_flush(conn_t *c);
static void conn_process(conn_t *c);
static int h2_begins(conn_t *c);
static void access_log_refused(conn_t *c, int status, uint64_t bytes);
static void abandon_request(conn_t *c, request_t *r);
static void peers_remove(http_server_t *s, uint8_t family, const uint8_t *addr);

const char *http_date(http_server_t *hs) {
    time_t now = time(NULL);
    if (now != hs->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(hs->date, sizeof(hs->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        hs->date_sec = now;
    }
    return hs->date;
}

static const cfg_server_t *conn_cfg(const conn_t *c) {
    return &c->srv->gen->cfg->server;
}

static void set_deadline(conn_t *c, unsigned seconds) {
    c->deadline = uv_now(c->srv->loop) + (uint64_t)seconds * 1000u;
}

static void ensure_rbuf(conn_t *c) {
    if (c->rbuf == NULL) {
        c->rcap = c->h2 ? RBUF_H2 : RBUF_INITIAL;
        c->rbuf = xmalloc(c->rcap);
        c->rlen = 0;
    }
}

/* TLS: ciphertext is read here and handed to the session at once (the loop is single-threaded:
 * libuv calls on_read before the next on_alloc). */
static char tls_in[65536];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    conn_t *c = h->data;
    if (c->tls && !c->proxy_wait) {
        *buf = uv_buf_init(tls_in, sizeof(tls_in));
        return;
    }
    ensure_rbuf(c);
    *buf = uv_buf_init(c->rbuf + c->rlen, c->rcap - c->rlen);
}

static void read_start(conn_t *c) {
    if (c->reading || c->state == CONN_STATE_CLOSING || c->peer_eof) return;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0) c->reading = true;
}

static void read_stop(conn_t *c) {
    if (!c->reading) return;
    uv_read_stop(&c->h.stream);
    c->reading = false;
}

static void release_rbuf_if_empty(conn_t *c) {
    if (c->rbuf && c->rlen == 0) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
        c->scanned = c->parsed_at = 0;
    }
}

static void consume(conn_t *c, size_t n) {
    if (n >= c->rlen) {
        c->rlen = 0;
    } else {
        memmove(c->rbuf, c->rbuf + n, c->rlen - n);
        c->rlen -= (uint32_t)n;
    }
    c->scanned = c->parsed_at = 0;
}

static void grow_rbuf(conn_t *c, uint32_t cap) {
    if (c->rcap >= cap) return;
    c->rbuf = xrealloc(c->rbuf, cap);
    c->rcap = cap;
}

static void defer_unlink(conn_t *c) {
    http_server_t *s = c->srv;
    for (conn_t **pp = &s->defer_conns; *pp; pp = &(*pp)->defer_next) {
        if (*pp == c) {
            *pp = c->defer_next;
            break;
        }
    }
    c->deferred = false;
}

/* libuv's close callback: the only place a connection is freed. Every write callback has run. */
static void on_close(uv_handle_t *h) {
    conn_t *c = h->data;
    http_server_t *s = c->srv;
    if (c->deferred) defer_unlink(c);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    if (c->peer_counted) peers_remove(s, c->counted_family, c->counted_addr);
    h2_free(c);
    http_tls_free(c->tls);
    free(c->rbuf);
    free(c);
    s->on_conn_closed(s->owner);
}

void conn_close(conn_t *c) {
    if (c->state == CONN_STATE_CLOSING) return;
    request_t *r = c->req;
    c->state = CONN_STATE_CLOSING;
    if (r) abandon_request(c, r);
    if (c->h2) h2_closing(c);
    uv_close(&c->h.handle, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    conn_t *c = req->data;
    free(req);
    c->shutting = false;
    if (status < 0 || c->peer_eof) conn_close(c);
}

/* Answered: send FIN, then read and discard what the client still sends so that the kernel does
 * not reset the connection (and destroy the response) because of unread input. */
static void conn_linger(conn_t *c) {
    if (c->state == CONN_STATE_CLOSING || c->state == CONN_STATE_LINGER) return;
    c->state = CONN_STATE_LINGER;
    c->deadline = 0; /* while the response is still being written, sendTimeout watches it */
    c->rlen = 0;
    if (c->peer_eof) {
        if (c->pending_writes == 0) conn_close(c);
        return;
    }
    read_start(c);
    if (c->tls && !c->tls_notified) { /* close_notify, then the FIN once it is written */
        c->tls_notified = true;
        http_tls_close_notify(c->tls);
        tls_flush(c);
    }
    if (c->pending_writes == 0 && !c->shutting) {
        c->deadline = uv_now(c->srv->loop) + LINGER_MS;
        uv_shutdown_t *sr = xmalloc(sizeof(*sr));
        sr->data = c;
        c->shutting = true;
        if (uv_shutdown(sr, &c->h.stream, on_shutdown) != 0) {
            free(sr);
            c->shutting = false;
            conn_close(c);
        }
    }
}

void conn_write_done(conn_t *c, int status) {
    c->writes_done++;
    if (c->state == CONN_STATE_CLOSING) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_STATE_LINGER) {
        c->state = CONN_STATE_ACTIVE; /* re-enter to start the shutdown now that writes are done */
        conn_linger(c);
        return;
    }
    if (c->h2 || (c->req == NULL && c->pending_writes == 0)) conn_process(c);
}

/* ---- the deferred pass ---- */

static void on_defer_check(uv_check_t *h) {
    conn_defer_run(h->data);
}

static void on_defer_idle(uv_idle_t *h) {} /* only there to keep the poll from blocking */

static void defer_wake(http_server_t *s) {
    if (!uv_is_active((uv_handle_t *)&s->defer_idle)) uv_idle_start(&s->defer_idle, on_defer_idle);
}

void conn_defer_init(http_server_t *s) {
    uv_check_init(s->loop, &s->defer_check);
    s->defer_check.data = s;
    uv_check_start(&s->defer_check, on_defer_check);
    uv_idle_init(s->loop, &s->defer_idle);
    s->defer_idle.data = s;
}

static void on_defer_closed(uv_handle_t *h) {}

void conn_defer_close(http_server_t *s) {
    conn_defer_run(s);
    uv_close((uv_handle_t *)&s->defer_check, on_defer_closed);
    uv_close((uv_handle_t *)&s->defer_idle, on_defer_closed);
}

void conn_defer_run(http_server_t *s) {
    /* Each pass takes the lists as they are; work queued meanwhile waits for the next pass. */
    while (s->defer_aborts || s->defer_conns || s->defer_routes) {
        request_t *aborts = s->defer_aborts;
        s->defer_aborts = NULL;
        while (aborts) {
            request_t *r = aborts;
            aborts = r->defer_next;
            r->defer_next = NULL;
            if (!r->finished) {
                r->finished = true;
                if (r->handler && r->handler->on_abort) r->handler->on_abort(r);
                request_unref(r); /* the handler's */
            }
            request_unref(r); /* the list's */
        }
        conn_t *conns = s->defer_conns;
        s->defer_conns = NULL;
        while (conns) {
            conn_t *c = conns;
            conns = c->defer_next;
            c->defer_next = NULL;
            c->deferred = false;
            if (c->state != CONN_STATE_CLOSING) conn_process(c);
        }
        dispatch_run_deferred(s);
    }
    if (uv_is_active((uv_handle_t *)&s->defer_idle)) uv_idle_stop(&s->defer_idle);
}

/* Run conn_process from the deferred pass (a handler finished: its stack must unwind first). */
static void defer_process(conn_t *c) {
    if (c->deferred || c->state == CONN_STATE_CLOSING) return;
    c->deferred = true;
    c->defer_next = c->srv->defer_conns;
    c->srv->defer_conns = c;
    defer_wake(c->srv);
}

void conn_wake(conn_t *c) {
    defer_process(c);
}

void request_abandon(http_server_t *s, request_t *r) {
    r->conn = NULL;
    r->aborted = true;
    if (!r->finished) {
        request_ref(r);
        r->defer_next = s->defer_aborts;
        s->defer_aborts = r;
        defer_wake(s);
    }
    request_unref(r); /* the connection's */
}

/* Detach the current request from its connection. A handler that has not finished gets on_abort
 * from the deferred pass, never under the caller's stack (which may be the handler itself). */
static void abandon_request(conn_t *c, request_t *r) {
    c->req = NULL;
    request_abandon(c->srv, r);
}

/* A protocol error on the connection (malformed head or body, limit exceeded): answer `status`
 * and close. If a response for the current request has already begun, just close. */
static void conn_fail(conn_t *c, int status) {
    request_t *r = c->req;
    const char *reason = http_status_reason(status);
    int blen = snprintf(NULL, 0, "%d %s\n", status, reason);
    if (r) {
        bool begun = r->headers_sent;
        if (!begun) {
            r->status = status;
            r->resp_body_bytes = (uint64_t)blen;
        }
        conn_access_log(c, r);
        abandon_request(c, r);
        if (begun) {
            conn_close(c);
            return;
        }
    }
    char msg[512];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %d %s\r\nServer: fcgihost\r\nDate: %s\r\nContent-Type: text/plain; "
                     "charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%d %s\n",
                     status, reason, http_date(c->srv), blen, status, reason);
    if (n < 0 || (size_t)n >= sizeof(msg)) n = 0; /* cannot happen with these inputs */
    char *owned = xstrndup(msg, (size_t)n);
    uv_buf_t b = uv_buf_init(owned, (unsigned)n);
    char peer[64];
    conn_peer_str(c, peer, sizeof(peer));
    log_info("%s: %d %s (%s, connection closed)", peer, status, reason,
             status == 408 ? "timed out" : "malformed request");
    if (r == NULL && c->rbuf) access_log_refused(c, status, (uint64_t)blen);
    read_stop(c);
    conn_queue_write(c, NULL, &b, 1, owned, NULL, NULL);
    conn_linger(c);
}

/* Does rbuf now contain the end of a head? Scans only the bytes not seen before. */
static bool head_complete(conn_t *c) {
    uint32_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    const char *p = c->rbuf + from, *end = c->rbuf + c->rlen;
    c->scanned = c->rlen;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (p < end && *p == '\n') return true;
        if (p + 1 < end && p[0] == '\r' && p[1] == '\n') return true;
    }
    return false;
}

static request_t *request_new(conn_t *c, const http_request_t *h, const char *base, int head_len) {
    size_t nh = h->num_headers;
    request_t *r = xcalloc(1, sizeof(*r) + nh * sizeof(http_header_t) + (size_t)head_len);
    http_header_t *hdrs = (http_header_t *)(r + 1);
    char *head = (char *)(hdrs + nh);
    memcpy(head, base, (size_t)head_len);
#define REBASE(s) ((s).p = (s).p ? head + ((s).p - base) : NULL)
    r->http = *h;
    REBASE(r->http.method);
    REBASE(r->http.target);
    REBASE(r->http.path);
    REBASE(r->http.query);
    REBASE(r->http.host);
    for (size_t i = 0; i < nh; i++) {
        hdrs[i] = h->headers[i];
        REBASE(hdrs[i].name);
        REBASE(hdrs[i].value);
    }
#undef REBASE
    r->http.headers = hdrs;
    r->head = head;
    r->conn = c;
    r->srv = c->srv;
    r->loop = c->srv->loop;
    r->refs = 2; /* the connection's and the handler's (dropped by resp_finish or after on_abort) */
    r->peer.family = c->peer_family;
    r->peer.port = c->peer_port;
    memcpy(r->peer.addr, c->peer_addr, sizeof(r->peer.addr));
    r->gen = gen_ref(c->srv->gen);
    r->start_ns = uv_hrtime();
    r->app = "-";
    r->head_only = h->method_id == HTTP_METHOD_HEAD;
    r->body_chunked = h->chunked;
    r->body_left = h->chunked ? 0 : (h->content_length > 0 ? h->content_length : 0);
    r->body_complete = !h->chunked && r->body_left == 0;
    r->expect_continue = h->expect_continue && !r->body_complete && h->minor_version >= 1;
    http_chunked_init(&r->chunks);
    buf_init(&r->resp_head);
    return r;
}

static void request_free(request_t *r) {
    http_compressor_free(r->comp);
    buf_dispose(&r->resp_head);
    free(r->path);
    free(r->query_buf);
    free(r->allow);
    gen_unref(r->gen);
    free(r);
}

void request_ref(request_t *r) {
    r->refs++;
}

void request_unref(request_t *r) {
    if (--r->refs == 0) request_free(r);
}

static void body_end(conn_t *c, request_t *r) {
    r->body_complete = true;
    if (r->handler && r->handler->on_body_end) r->handler->on_body_end(r);
}

/* Hand decoded body bytes at the front of rbuf to the handler; returns false when it paused. */
static bool deliver(conn_t *c, request_t *r, size_t n, size_t *taken) {
    size_t t = n;
    if (r->handler && r->handler->on_body && !r->finished) t = r->handler->on_body(r, c->rbuf, n);
    *taken = t;
    if (t < n) r->body_paused = true;
    return t == n;
}

static void feed_chunked(conn_t *c, request_t *r) {
    uint64_t max = r->site ? r->site->cfg->max_body_bytes : conn_cfg(c)->site.max_body_bytes;
    size_t n = c->rlen;
    ssize_t rc = http_chunked_decode(&r->chunks, c->rbuf, &n);
    if (rc == HTTP_CHUNKED_ERROR) {
        conn_fail(c, 400);
        return;
    }
    if (max && r->chunks.total > max) {
        conn_fail(c, 413);
        return;
    }
    r->body_total = r->chunks.total;
    size_t tail = rc >= 0 ? (size_t)rc : 0;
    /* Decoded data is at rbuf[0..n), the bytes after the body (if it ended) follow it. */
    c->rlen = (uint32_t)(n + tail);
    c->scanned = c->parsed_at = 0;
    r->dec_pending = n;
    r->dec_ended = rc >= 0;
}

/* Deliver pending decoded chunked data; true when it was all taken. */
static bool deliver_decoded(conn_t *c, request_t *r) {
    size_t taken;
    bool all = deliver(c, r, r->dec_pending, &taken);
    consume(c, taken);
    r->dec_pending -= taken;
    return all;
}

static void feed_body(conn_t *c, request_t *r) {
    if (r->body_chunked) {
        if (r->dec_pending && !deliver_decoded(c, r)) return;
        if (!r->dec_ended && c->rlen) {
            feed_chunked(c, r);
            if (c->state == CONN_STATE_LINGER || c->state == CONN_STATE_CLOSING) return;
            if (r->dec_pending && !deliver_decoded(c, r)) return;
        }
        if (r->dec_ended && r->dec_pending == 0) body_end(c, r);
        return;
    }
    size_t n = c->rlen < (uint64_t)r->body_left ? c->rlen : (size_t)r->body_left;
    if (n == 0) return;
    size_t taken;
    bool all = deliver(c, r, n, &taken);
    consume(c, taken);
    r->body_left -= (int64_t)taken;
    r->body_total += taken;
    if (all && r->body_left == 0) body_end(c, r);
}

void req_resume_body(request_t *r) {
    if (r->h2s) {
        h2_resume_body(r);
        return;
    }
    conn_t *c = r->conn;
    if (c == NULL || c->req != r || !r->body_paused) return;
    r->body_paused = false;
    /* Delivering the body calls the handler back: that runs from the deferred pass, not under
     * the handler's own call. */
    defer_process(c);
}

bool req_client_gone(const request_t *r) {
    return r->conn == NULL || r->conn->state == CONN_STATE_CLOSING;
}

void req_abort(request_t *r) {
    if (r->h2s) h2_abort(r); /* the stream only: the connection's other streams go on */
    else if (r->conn) conn_close(r->conn);
}

void req_close_after(request_t *r) {
    if (r->conn && !r->h2s) r->conn->close_after = true;
}

void req_peer_str(const request_t *r, char *out, size_t outlen) {
    if (r->peer.family == AF_INET) inet_ntop(AF_INET, r->peer.addr, out, (socklen_t)outlen);
    else if (r->peer.family == AF_INET6) inet_ntop(AF_INET6, r->peer.addr, out, (socklen_t)outlen);
    else snprintf(out, outlen, "unix");
}

void req_local_addr(const request_t *r, char *addr, size_t alen, unsigned *port) {
    addr[0] = '\0';
    *port = 0;
    conn_t *c = r->conn;
    if (c == NULL || c->is_unix) return;
    if (c->local_family == 0) { /* once per connection, not once per request */
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0) return;
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            memcpy(c->local_addr, &a->sin6_addr, 16);
            c->local_port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            memcpy(c->local_addr, &a->sin_addr, 4);
            c->local_port = ntohs(a->sin_port);
        }
        c->local_family = (uint8_t)ss.ss_family;
    }
    inet_ntop(c->local_family, c->local_addr, addr, (socklen_t)alen);
    *port = c->local_port;
}

int req_socket_dup(const request_t *r) {
    uv_os_fd_t fd = -1;
    if (r->conn == NULL || r->conn->state == CONN_STATE_CLOSING || r->conn->tls || r->h2s) return -1;
    return uv_fileno(&r->conn->h.handle, &fd) == 0 ? dup(fd) : -1;
}

request_t *conn_new_request(conn_t *c, const http_request_t *h, const char *base, int head_len,
                            const http_site_t *site) {
    request_t *r = request_new(c, h, base, head_len);
    if (c->tls) {
        r->https = true;
        r->tls_version = http_tls_version(c->tls);
    }
    const cfg_server_t *sc = conn_cfg(c);
    if (sc->n_trusted_proxies &&
        http_forwarded_client(h, sc->trusted_proxies, sc->n_trusted_proxies, &r->peer.family,
                              r->peer.addr, &r->https))
        r->peer.port = 0; /* X-Forwarded-For gives no port */
    r->site = site; /* of r->gen, the generation just used */
    r->listen_id = c->listen_id;
    return r;
}

static void start_request(conn_t *c, const http_request_t *h, int head_len) {
    const http_site_t *site = http_site_for(c->srv->gen->sites, h->host, c->listen_id);
    uint64_t max = site ? site->cfg->max_body_bytes : conn_cfg(c)->site.max_body_bytes;
    if (!h->chunked && max && h->content_length > 0 && (uint64_t)h->content_length > max) {
        c->refused_site = site; /* logged in its site's access log */
        conn_fail(c, 413);
        c->refused_site = NULL;
        return;
    }
    request_t *r = conn_new_request(c, h, c->rbuf, head_len, site);
    consume(c, (size_t)head_len);
    c->req = r;
    c->state = CONN_STATE_ACTIVE;
    c->deadline = 0;
    if (!h->keep_alive) c->close_after = true;
    if (c->srv->stopping) c->close_after = true;
    dispatch_request(r);
}

static bool count_peer(conn_t *c, uint8_t family, const uint8_t *addr);

/* Send what the TLS session has produced (handshake messages, tickets, alerts). */
static void tls_flush(conn_t *c) {
    buf_t out = http_tls_take_output(c->tls);
    if (out.len == 0) {
        buf_dispose(&out);
        return;
    }
    uv_buf_t b = uv_buf_init(out.data, (unsigned)out.len);
    conn_write_raw(c, NULL, &b, 1, out.data, NULL, NULL);
}

/* TLS: decrypt what the session holds into rbuf, as far as it has room. True when bytes came.
 * A failed handshake or a protocol error closes the connection (its alert sent if the socket
 * takes it); the client's close_notify sets tls_eof. */
static bool tls_fill(conn_t *c) {
    if (c->tls == NULL || c->tls_eof || c->proxy_wait || c->state == CONN_STATE_CLOSING ||
        !http_tls_pending(c->tls))
        return false;
    ensure_rbuf(c);
    bool got_any = false;
    while (c->rlen < c->rcap) {
        size_t got = 0;
        http_tls_rc_t rc = http_tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen, &got);
        if (rc == HTTP_TLS_OK) {
            c->rlen += (uint32_t)got;
            got_any = true;
            continue;
        }
        if (rc == HTTP_TLS_EOF) c->tls_eof = true;
        if (rc == HTTP_TLS_ERR) {
            buf_t alert = http_tls_take_output(c->tls);
            if (alert.len) {
                uv_buf_t b = uv_buf_init(alert.data, (unsigned)alert.len);
                (void)uv_try_write(&c->h.stream, &b, 1);
            }
            buf_dispose(&alert);
            char peer[64];
            conn_peer_str(c, peer, sizeof(peer));
            log_info("%s: TLS %s: %s (connection closed)", peer,
                     http_tls_handshaken(c->tls) ? "error" : "handshake failed", http_tls_error(c->tls));
            conn_close(c);
            return false;
        }
        break;
    }
    tls_flush(c);
    return got_any;
}

/* A `proxy` listener's connection: the PROXY header at the start of rbuf. True when it was taken
 * (the client it names is now the peer); false while more bytes are needed, or when the
 * connection was closed (no valid header: nothing is answered, as there is no HTTP yet). */
static bool proxy_header(conn_t *c) {
    proxy_hdr_t ph;
    int rc = proxy_parse(c->rbuf, c->rlen, &ph);
    if (rc == PROXY_AGAIN) return false; /* within headerTimeout, set at accept */
    if (rc == PROXY_INVALID) {
        char peer[64];
        conn_peer_str(c, peer, sizeof(peer));
        log_info("%s: no valid PROXY protocol header on a proxy listener: connection closed", peer);
        conn_close(c);
        return false;
    }
    consume(c, (size_t)rc);
    c->proxy_wait = false;
    if (c->tls) { /* what follows the header is the TLS stream */
        http_tls_feed(c->tls, c->rbuf, c->rlen);
        c->rlen = 0;
    }
    if (!ph.local) {
        c->peer_family = ph.family;
        c->peer_port = ph.src_port;
        memcpy(c->peer_addr, ph.src, 16);
    }
    /* maxConnectionsPerIp counts the client the proxy names (its own address for LOCAL). */
    if (c->peer_family != AF_UNIX && !count_peer(c, c->peer_family, c->peer_addr)) return false;
    return true;
}

/* The next head in rbuf (if any): parse, then start it. Returns false when waiting for input. */
static bool next_head(conn_t *c) {
    if (c->discard) {
        size_t n = c->rlen < c->discard ? c->rlen : (size_t)c->discard;
        consume(c, n);
        c->discard -= n;
        if (c->discard) return false;
    }
    if (c->rlen == 0) return false;
    if (c->proxy_wait && !proxy_header(c)) return false;
    if (c->rlen == 0) return false;
    if (h2_begins(c) != 0) return true; /* an h2c preface after the PROXY header: the loop starts it */
    const cfg_server_t *sc = conn_cfg(c);
    if (c->state == CONN_STATE_IDLE) {
        c->state = CONN_STATE_HEAD;
        set_deadline(c, sc->header_timeout);
    }
    /* Parse once the end of the head is here, or every 1 KiB of a long head to catch limits early:
     * a client sending one byte at a time must not make us re-parse the whole head per byte.
     * Also each time the buffered bytes have doubled (the first bytes always): the parser stops
     * at the first byte that cannot belong to a request, so bytes that cannot begin one (a TLS
     * ClientHello's 0x16, binary noise) are answered 400 at once, not at headerTimeout, while a
     * slow client's partial head costs O(n log n) parsing. */
    if (!head_complete(c) && c->rlen - c->parsed_at < 1024 && c->rlen < 2 * c->parsed_at &&
        c->rlen < c->rcap)
        return false;
    c->parsed_at = c->rlen;
    http_limits_t lim = {.max_url_bytes = sc->max_url_bytes, .max_header_bytes = sc->max_header_bytes};
    http_request_t h;
    int rc = http_parse_request(c->rbuf, c->rlen, &h, header_scratch, MAX_HEADERS, &lim);
    if (rc == HTTP_PARSE_AGAIN) {
        uint32_t want = (uint32_t)(sc->max_header_bytes + 1024);
        if (c->rlen == c->rcap) {
            if (c->rcap >= want) {
                conn_fail(c, 431);
                return false;
            }
            grow_rbuf(c, c->rcap * 2 < want ? c->rcap * 2 : want);
        }
        return false;
    }
    if (rc < 0) {
        conn_fail(c, -rc);
        return false;
    }
    start_request(c, &h, rc);
    return true;
}

/* bodyTimeout: while a request body is read from the client, each read must come within
 * bodyTimeout of the one before (on_read clears the deadline, this arms a new one). Not while the
 * handler holds the body back (its pace, not the client's), nor while the client waits for a
 * 100 Continue not sent yet. */
static void arm_body_deadline(conn_t *c, request_t *r) {
    bool waiting = !r->body_complete && !r->body_paused && !r->expect_continue && c->reading;
    if (!waiting) c->deadline = 0;
    else if (c->deadline == 0) set_deadline(c, conn_cfg(c)->body_timeout);
}

/* HTTP/2: everything read goes to the session; then what is ready is sent. */
static void h2_process(conn_t *c) {
    for (;;) {
        if (c->rlen) {
            bool ok = h2_feed(c, c->rbuf, c->rlen);
            c->rlen = 0;
            if (!ok) break;
        }
        if (c->state == CONN_STATE_CLOSING || !tls_fill(c)) break;
    }
    if (c->state == CONN_STATE_CLOSING) return;
    h2_pump(c);
    if (c->state == CONN_STATE_CLOSING || c->state == CONN_STATE_LINGER) return;
    release_rbuf_if_empty(c);
    if (h2_done(c)) {
        conn_linger(c);
        return;
    }
    if (h2_active(c)) {
        c->state = CONN_STATE_ACTIVE;
        c->deadline = 0;
    } else if (c->state != CONN_STATE_IDLE || c->deadline == 0) {
        c->state = CONN_STATE_IDLE;
        set_deadline(c, conn_cfg(c)->keep_alive_timeout);
    }
    if (c->peer_eof) {
        if (c->pending_writes == 0) conn_close(c);
        return;
    }
    read_start(c);
}

/* Does the connection turn to HTTP/2 now? ALPN chose h2, or an h2c listener's first bytes are
 * the preface. -1: not decided yet (a part of the preface came). */
static int h2_begins(conn_t *c) {
    if (c->h2 || c->req || c->served || c->proxy_wait) return 0;
    if (c->tls) return http_tls_alpn_h2(c->tls) ? 1 : 0;
    if (!c->h2c || c->rlen == 0) return 0;
    return h2_preface(c->rbuf, c->rlen);
}

static void conn_process(conn_t *c) {
    if (c->in_process) return;
    c->in_process = true;
    tls_fill(c);
    while (c->state != CONN_STATE_CLOSING && c->state != CONN_STATE_LINGER) {
        int h2 = c->h2 ? 1 : h2_begins(c);
        if (h2 < 0) {
            read_start(c);
            break;
        }
        if (h2 > 0) {
            if (c->h2 == NULL) h2_start(c);
            h2_process(c);
            break;
        }
        request_t *r = c->req;
        if (r) {
            if (!r->body_complete && !r->body_paused && !r->finished) {
                if (c->rcap < RBUF_BODY && (r->body_chunked || r->body_left > (int64_t)c->rcap))
                    grow_rbuf(c, RBUF_BODY);
                request_ref(r); /* the handler may finish (or the connection fail) meanwhile */
                feed_body(c, r);
                bool gone = c->req != r;
                request_unref(r);
                if (gone) continue; /* finished (or failed) while taking the body */
                if (!r->body_complete && !r->body_paused && !r->finished && c->rlen < c->rcap &&
                    tls_fill(c))
                    continue; /* more of the body was waiting in the TLS session */
            }
            if (c->rlen == c->rcap || (r->body_complete && c->rlen)) read_stop(c);
            else read_start(c);
            arm_body_deadline(c, r);
            break;
        }
        if (c->close_after) {
            conn_linger(c);
            break;
        }
        if (c->pending_writes && c->h.stream.write_queue_size > WRITE_QUEUE_HIGH) {
            read_stop(c); /* resumed by conn_write_done */
            break;
        }
        if (!next_head(c)) {
            if (c->state != CONN_STATE_CLOSING && c->state != CONN_STATE_LINGER && c->rlen < c->rcap &&
                tls_fill(c))
                continue; /* more bytes were waiting in the TLS session */
            if (c->state == CONN_STATE_CLOSING || c->state == CONN_STATE_LINGER) break;
            if (c->rlen == 0 && c->discard == 0) {
                release_rbuf_if_empty(c);
                if (c->state != CONN_STATE_IDLE) {
                    c->state = CONN_STATE_IDLE;
                    set_deadline(c, conn_cfg(c)->keep_alive_timeout);
                }
                if (c->srv->stopping && c->pending_writes == 0) {
                    conn_close(c);
                    break;
                }
            }
            if (c->peer_eof) {
                if (c->pending_writes == 0) conn_close(c);
                else c->close_after = true;
                break;
            }
            read_start(c);
            break;
        }
    }
    c->in_process = false;
}

bool conn_must_close_after(const conn_t *c, const request_t *r) {
    if (r->body_complete) return false;
    /* Answered without the whole body: a small length-delimited rest is skipped; a chunked body,
     * a large rest, or one the client holds back waiting for 100 Continue means closing. */
    return r->body_chunked || r->expect_continue || r->body_left > (int64_t)DISCARD_MAX ||
           r->dec_pending > 0;
}

void conn_request_done(conn_t *c) {
    request_t *r = c->req;
    if (r == NULL) return;
    conn_access_log(c, r);
    c->served++;
    c->req = NULL;
    r->conn = NULL;
    if (conn_must_close_after(c, r)) c->close_after = true;
    else if (!r->body_complete) c->discard = (uint64_t)r->body_left; /* skip the small rest */
    if (r->resp_until_close) c->close_after = true;
    request_unref(r); /* the connection's */
    if (c->state == CONN_STATE_CLOSING) return;
    /* Idle until a byte of the next head is seen (next_head then starts the headerTimeout
     * deadline, also for a head that is already buffered). */
    c->state = CONN_STATE_IDLE;
    set_deadline(c, conn_cfg(c)->keep_alive_timeout);
    /* Inside conn_process (the handler answered at once) its loop goes on; otherwise the next
     * pipelined request starts from the deferred pass, once the finishing handler has unwound
     * and given back what it held (its FastCGI process, for one). */
    if (!c->in_process) defer_process(c);
}

static void conn_eof(conn_t *c, ssize_t nread);

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = st->data;
    if (nread > 0) {
        if (c->state == CONN_STATE_LINGER) {
            c->rlen = 0; /* discard */
            return;
        }
        if (c->state == CONN_STATE_ACTIVE) c->deadline = 0; /* body progress: bodyTimeout anew */
        if (c->tls && buf->base == tls_in) { /* ciphertext: conn_process decrypts (tls_fill) */
            http_tls_feed(c->tls, buf->base, (size_t)nread);
            conn_process(c);
            if (c->tls_eof && !c->peer_eof && c->state != CONN_STATE_CLOSING) conn_eof(c, UV_EOF);
            return;
        }
        c->rlen += (uint32_t)nread;
        conn_process(c);
        return;
    }
    if (nread == 0) return;
    conn_eof(c, nread);
}

/* The client shut down its side (UV_EOF) or the connection failed. */
static void conn_eof(conn_t *c, ssize_t nread) {
    read_stop(c);
    c->peer_eof = true;
    if (c->state == CONN_STATE_LINGER || nread != UV_EOF) {
        if (c->pending_writes == 0 || nread != UV_EOF) conn_close(c);
        return;
    }
    request_t *r = c->req;
    if (r && !r->body_complete) {
        conn_close(c); /* the body can never complete */
        return;
    }
    if (r) {
        c->close_after = true; /* answer what was asked, then close */
        return;
    }
    release_rbuf_if_empty(c);
    if (c->pending_writes == 0) conn_close(c);
    else c->close_after = true;
}

/* ---- connections per client address (maxConnectionsPerIp) ----
 * A chained hash table of the addresses with open TCP connections. It exists while one does: the
 * last close frees it, so a stopped server holds nothing. */

typedef struct peer_count {
    struct peer_count *next;
    uint8_t family;
    uint8_t addr[16];
    unsigned n;
} peer_count_t;

struct conn_peers {
    peer_count_t **buckets;
    size_t nbuckets;          /* a power of two */
    size_t n;                 /* addresses */
};

static size_t peer_hash(uint8_t family, const uint8_t *addr, size_t nbuckets) {
    uint64_t h = 1469598103934665603ull ^ family;
    for (int i = 0; i < 16; i++) h = (h ^ addr[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32)) & (nbuckets - 1);
}

static peer_count_t **peer_link(struct conn_peers *t, uint8_t family, const uint8_t *addr) {
    peer_count_t **link = &t->buckets[peer_hash(family, addr, t->nbuckets)];
    while (*link && ((*link)->family != family || memcmp((*link)->addr, addr, 16) != 0))
        link = &(*link)->next;
    return link;
}

static unsigned peers_count(http_server_t *s, uint8_t family, const uint8_t *addr) {
    if (s->peers == NULL) return 0;
    peer_count_t *p = *peer_link(s->peers, family, addr);
    return p ? p->n : 0;
}

static void peers_grow(struct conn_peers *t) {
    size_t old_n = t->nbuckets;
    peer_count_t **old = t->buckets;
    t->nbuckets = old_n ? old_n * 2 : 256;
    t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
    for (size_t i = 0; i < old_n; i++) {
        while (old[i]) {
            peer_count_t *p = old[i];
            old[i] = p->next;
            size_t b = peer_hash(p->family, p->addr, t->nbuckets);
            p->next = t->buckets[b];
            t->buckets[b] = p;
        }
    }
    free(old);
}

static void peers_add(http_server_t *s, uint8_t family, const uint8_t *addr) {
    if (s->peers == NULL) s->peers = xcalloc(1, sizeof(*s->peers));
    struct conn_peers *t = s->peers;
    if (t->n >= t->nbuckets) peers_grow(t);
    peer_count_t **link = peer_link(t, family, addr);
    if (*link == NULL) {
        peer_count_t *p = xcalloc(1, sizeof(*p));
        p->family = family;
        memcpy(p->addr, addr, 16);
        *link = p;
        t->n++;
    }
    (*link)->n++;
}

static void peers_remove(http_server_t *s, uint8_t family, const uint8_t *addr) {
    struct conn_peers *t = s->peers;
    peer_count_t **link = peer_link(t, family, addr);
    peer_count_t *p = *link;
    if (--p->n > 0) return;
    *link = p->next;
    free(p);
    if (--t->n > 0) return;
    free(t->buckets);
    free(t);
    s->peers = NULL;
}

/* The client's address in the connection's own form: family, 16 bytes (IPv4 in the first 4),
 * port. False when it cannot be had (the client is already gone). */
static bool peer_of(int fd, uint8_t *family, uint8_t *addr, uint16_t *port) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return false;
    memset(addr, 0, 16);
    *family = (uint8_t)ss.ss_family;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        memcpy(addr, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        memcpy(addr, &a->sin6_addr, 16);
        *port = ntohs(a->sin6_port);
    } else {
        return false;
    }
    return true;
}

/* A client over maxConnectionsPerIp: closed at once, logged at most every 10 s. */
static void refuse_over_limit(http_server_t *s, uint8_t family, const uint8_t *addr, unsigned max) {
    static uint64_t logged, refused;
    refused++;
    uint64_t now = uv_now(s->loop);
    if (logged && now - logged < 10000) return;
    logged = now;
    char peer[64];
    inet_ntop(family, addr, peer, sizeof(peer));
    log_warn("%s: more than maxConnectionsPerIp (%u) connections: closed (%" PRIu64
             " such connection(s) so far)", peer, max, refused);
}

/* Count the connection under the client's address; false (closed) when it is one too many. */
static bool count_peer(conn_t *c, uint8_t family, const uint8_t *addr) {
    http_server_t *s = c->srv;
    unsigned max = s->gen->cfg->server.max_connections_per_ip;
    if (max && peers_count(s, family, addr) >= max) {
        refuse_over_limit(s, family, addr, max);
        conn_close(c);
        return false;
    }
    peers_add(s, family, addr);
    c->counted_family = family;
    memcpy(c->counted_addr, addr, 16);
    c->peer_counted = true;
    return true;
}

void conn_accept(http_server_t *s, int fd, bool is_unix, unsigned listen_id, bool proxy, bool tls,
                 bool h2c) {
    uint8_t family = AF_UNIX, addr[16] = {0};
    uint16_t port = 0;
    bool counted = false;
    if (!is_unix && peer_of(fd, &family, addr, &port) && !proxy) {
        unsigned max = s->gen->cfg->server.max_connections_per_ip;
        if (max && peers_count(s, family, addr) >= max) {
            close(fd);
            refuse_over_limit(s, family, addr, max);
            return;
        }
        counted = true;
    }
    conn_t *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->is_unix = is_unix;
    c->listen_id = listen_id;
    int rc = is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
    if (rc != 0) {
        close(fd);
        free(c);
        return;
    }
    c->h.handle.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    rc = is_unix ? uv_pipe_open(&c->h.pipe, fd) : uv_tcp_open(&c->h.tcp, fd);
    if (rc != 0) {
        close(fd); /* not the handle's: its close will not close it */
        conn_close(c);
        return;
    }
    c->peer_family = family;
    c->peer_port = port;
    memcpy(c->peer_addr, addr, 16);
    if (counted) {
        peers_add(s, family, addr);
        c->counted_family = family;
        memcpy(c->counted_addr, addr, 16);
        c->peer_counted = true;
    }
    c->proxy_wait = proxy;
    c->h2c = h2c;
    if (tls) {
        struct ssl_ctx_st *ctx = http_sites_tls_ctx(s->gen->sites, listen_id);
        if (ctx == NULL) { /* -t refuses a tls listener without certificates */
            log_error("a TLS connection came in on a listener whose sites have no certificate");
            conn_close(c);
            return;
        }
        c->tls = http_tls_new(ctx, s, listen_id);
    }
    if (!is_unix) uv_tcp_nodelay(&c->h.tcp, 1);
    c->state = CONN_STATE_IDLE;
    /* A new connection must start a request within headerTimeout. */
    set_deadline(c, conn_cfg(c)->header_timeout);
    read_start(c);
}

void conn_peer_str(const conn_t *c, char *out, size_t outlen) {
    if (c->peer_family == AF_INET) inet_ntop(AF_INET, c->peer_addr, out, (socklen_t)outlen);
    else if (c->peer_family == AF_INET6) inet_ntop(AF_INET6, c->peer_addr, out, (socklen_t)outlen);
    else snprintf(out, outlen, "unix");
}

/* A number that changes whenever the client takes bytes of a response, whoever queued them
 * (libuv writes, or a threadpool sendfile on a duplicate of the socket): for TCP the bytes the
 * client acknowledged; for a unix socket a mix of the completed writes, libuv's unwritten bytes
 * and the bytes the client has not read yet. */
static uint64_t send_progress(const conn_t *c, int fd, int outq) {
    if (!c->is_unix) {
        /* The kernel's struct tcp_info (linux/tcp.h: a stable ABI that only grows) continues past
         * glibc's copy, which libuv's headers include and which stops before tcpi_bytes_acked
         * (Linux 4.1). */
        struct {
            struct tcp_info base;
            uint64_t pacing_rate, max_pacing_rate, bytes_acked;
        } ti;
        _Static_assert(sizeof(struct tcp_info) == 104, "glibc's tcp_info ends at tcpi_total_retrans");
        socklen_t len = sizeof(ti);
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && len >= sizeof(ti))
            return ti.bytes_acked;
    }
    return c->writes_done * 0x9E3779B97F4A7C15ull + c->h.stream.write_queue_size * 0xC2B2AE3D27D4EB4Full +
           (uint64_t)(unsigned)outq;
}

/* sendTimeout: output is waiting (in libuv's queue or in the kernel's send buffer) and the client
 * has taken none of it for this long: close. Checked once per tick; only connections that may
 * have output cost a system call. */
static void check_send(conn_t *c, uint64_t now) {
    if (c->pending_writes == 0 && c->state != CONN_STATE_ACTIVE) {
        c->send_since = 0;
        return;
    }
    uv_os_fd_t fd;
    int outq = 0;
    if (uv_fileno(&c->h.handle, &fd) != 0) return;
    if (ioctl(fd, SIOCOUTQ, &outq) != 0) outq = 0;
    if (c->h.stream.write_queue_size == 0 && outq <= 0) {
        c->send_since = 0;
        return;
    }
    uint64_t mark = send_progress(c, fd, outq);
    if (c->send_since == 0 || mark != c->send_mark) {
        c->send_mark = mark;
        c->send_since = now;
        return;
    }
    unsigned t = conn_cfg(c)->send_timeout;
    if (now - c->send_since < (uint64_t)t * 1000u) return;
    char peer[64];
    conn_peer_str(c, peer, sizeof(peer));
    log_info("%s: the client took nothing of the response for %us (sendTimeout): connection closed",
             peer, t);
    conn_close(c);
}

void conn_sweep(http_server_t *s, uint64_t now) {
    conn_t *next;
    for (conn_t *c = s->conns; c; c = next) {
        next = c->next;
        if (c->state != CONN_STATE_CLOSING) check_send(c, now);
        if (c->h2 && c->state != CONN_STATE_CLOSING) h2_sweep(c, now);
        if (c->state == CONN_STATE_CLOSING || c->deadline == 0 || now < c->deadline) continue;
        c->deadline = 0;
        switch (c->state) {
        case CONN_STATE_HEAD:
            if (c->req == NULL && c->rlen > 0) conn_fail(c, 408);
            else conn_close(c);
            break;
        case CONN_STATE_ACTIVE:
            if (c->req && !c->req->body_complete) {
                char peer[64];
                conn_peer_str(c, peer, sizeof(peer));
                log_info("%s: the request body stalled for %us (bodyTimeout)", peer,
                         conn_cfg(c)->body_timeout);
                conn_fail(c, 408);
            }
            break;
        case CONN_STATE_IDLE:
        case CONN_STATE_LINGER:
            conn_close(c);
            break;
        default:
            break;
        }
    }
}

void conn_begin_stop(http_server_t *s) {
    conn_t *next;
    for (conn_t *c = s->conns; c; c = next) {
        next = c->next;
        if (c->h2 && c->state != CONN_STATE_CLOSING) h2_begin_stop(c); /* GOAWAY; closes when done */
        else if (c->state == CONN_STATE_IDLE && c->pending_writes == 0) conn_close(c);
        else c->close_after = true;
    }
}

/* Access log: combined format + request time (seconds) + application. */
static void log_escaped(buf_t *b, str_t s) {
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') buf_printf(b, "\\x%02X", ch);
        else buf_append(b, &s.p[i], 1);
    }
}

/* One access-log line; `reqline` is written escaped between the quotes. */
static void access_log_write(conn_t *c, const request_t *r, http_log_t *log, str_t reqline,
                             int status, uint64_t bytes, str_t ref, str_t ua, double secs,
                             const char *app) {
    static char when[40];
    static time_t when_sec = -1;
    time_t now = time(NULL);
    if (now != when_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        when_sec = now;
    }
    char peer[64];
    if (r) req_peer_str(r, peer, sizeof(peer)); /* the client trustedProxies made of it */
    else conn_peer_str(c, peer, sizeof(peer));
    buf_t *b = &log->buf;
    buf_printf(b, "%s - - [%s] \"", peer, when);
    log_escaped(b, reqline);
    buf_printf(b, "\" %d %" PRIu64 " \"", status, bytes);
    if (ref.p) log_escaped(b, ref);
    else buf_append(b, "-", 1);
    buf_append(b, "\" \"", 3);
    if (ua.p) log_escaped(b, ua);
    else buf_append(b, "-", 1);
    buf_printf(b, "\" %.6f %s\n", secs, app);
}

void conn_access_log(conn_t *c, request_t *r) {
    double secs = (double)(uv_hrtime() - r->start_ns) / 1e9;
    c->srv->on_response(c->srv->owner, r->app, r->status, secs);
    http_log_t *log = r->site ? r->site->log : http_sites_fallback_log(r->gen->sites);
    if (log == NULL) return;
    const http_header_t *ref = HTTP_FIND_HEADER(&r->http, "referer");
    const http_header_t *ua = HTTP_FIND_HEADER(&r->http, "user-agent");
    /* method SP target SP version are contiguous in the head copy */
    str_t line = str_make(r->http.method.p, (size_t)(r->http.target.p + r->http.target.len - r->http.method.p) + 9);
    access_log_write(c, r, log, line, r->status, r->resp_body_bytes, ref ? ref->value : STR_NULL,
                     ua ? ua->value : STR_NULL, secs, r->app);
}

/* A request that was refused before it became a request_t: its first line as received. */
static void access_log_refused(conn_t *c, int status, uint64_t bytes) {
    c->srv->on_response(c->srv->owner, NULL, status, 0.0);
    http_log_t *log = c->refused_site ? c->refused_site->log : http_sites_fallback_log(c->srv->gen->sites);
    if (log == NULL) return;
    size_t n = 0;
    while (n < c->rlen && n < 512 && c->rbuf[n] != '\r' && c->rbuf[n] != '\n') n++;
    str_t line = n ? str_make(c->rbuf, n) : STR_LIT("-");
    access_log_write(c, NULL, log, line, status, bytes, STR_NULL, STR_NULL, 0.0, "-");
}
