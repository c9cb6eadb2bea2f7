/* HTTP/2 on nghttp2 (see h2.h). */
#include "http/h2.h"

#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/conn.h"
#include "http/dispatch.h"
#include "http/http_server.h"
#include "http/parser.h"
#include "http/request_int.h"
#include "http/site.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define MAX_HEADERS 256
#define OUT_CHUNK (64u * 1024u)           /* frames gathered into one write */
#define OUT_HIGH (256u * 1024u)           /* libuv's queue for the socket: stop producing frames */
#define STREAM_WINDOW (256u * 1024u)      /* SETTINGS_INITIAL_WINDOW_SIZE we offer */
#define CONN_WINDOW (1024u * 1024u)       /* the connection's receive window */
#define FLOOD_WINDOW_MS 1000u
#define MAX_PINGS 50u                     /* per FLOOD_WINDOW_MS */
#define MAX_SETTINGS 50u
#define MAX_EMPTY 100u                    /* DATA frames without data or END_STREAM */
#define MAX_PRIORITY 500u
#define MAX_INVALID 20u                   /* invalid frames and refused header blocks, per connection */
#define BOMB_FACTOR 4u                    /* a header list this many times maxHeaderBytes: a bomb */

static http_header_t header_scratch[MAX_HEADERS]; /* the loop is single-threaded */

/* Body bytes of a response waiting for DATA frames, with the write callback of their caller. */
typedef struct piece {
    struct piece *next;
    request_t *r;          /* a reference, or NULL (a response of our own) */
    uv_buf_t *bufs;        /* `one` or allocated */
    uv_buf_t one;
    unsigned n, i;         /* buffers, the current one */
    size_t off;            /* taken of bufs[i] */
    size_t left;           /* bytes not taken yet */
    char *owned;
    resp_write_cb cb;
    void *ctx;
    int status;            /* for the callback: 0, or UV_ECANCELED */
} piece_t;

typedef struct h2_stream {
    struct h2_stream *prev, *next; /* the connection's streams */
    h2_conn_t *h;
    int32_t id;
    request_t *r;          /* the request while it is in progress (a reference) */
    /* The request head, gathered from HEADERS/CONTINUATION */
    buf_t fields;          /* "name: value\r\n" for the regular fields */
    buf_t cookie;          /* cookie crumbs joined with "; " (RFC 9113 §8.2.3) */
    buf_t pseudo;          /* :method, :path and :authority, each NUL-terminated */
    buf_t resp;            /* the response head that HEADERS refers to (see submit_head) */
    int method_at, path_at, authority_at; /* their offsets in pseudo, or -1 */
    size_t head_bytes;
    int refuse;            /* a status to answer instead of starting a request (431) */
    bool started;          /* the request head was complete: later HEADERS are trailers */
    /* Input */
    buf_t in;              /* DATA not taken by the handler yet (bounded by the window) */
    bool in_end;           /* END_STREAM came */
    bool in_paused;        /* the handler took less than it was given */
    /* Output */
    piece_t *out, **out_tail;
    size_t out_bytes;
    bool out_end;          /* END_STREAM after the queued pieces */
    bool out_deferred;     /* the data source said "deferred": resume it when pieces come */
    bool responded;        /* HEADERS with a final status submitted */
    bool closed;           /* nghttp2 closed it */
    uint64_t in_at;        /* loop ms of the last DATA (bodyTimeout, per stream) */
    uint64_t out_at;       /* loop ms at which the queued output last moved (sendTimeout) */
} h2_stream_t;

struct h2_conn {
    conn_t *c;
    nghttp2_session *ng;
    h2_stream_t *streams;
    h2_stream_t *dead;     /* closed and let go of: freed by reap() */
    piece_t *done, **done_tail; /* pieces taken (or cancelled) whose callbacks are due */
    unsigned active;       /* streams with a request in progress */
    bool sending;          /* inside send(): no recursion */
    bool blocked;          /* stopped producing frames at OUT_HIGH: resume on write completion */
    bool fatal;            /* the session failed: close once what is queued is written */
    bool stopping;
    bool goaway_logged;      /* the reason of our GOAWAY is in the log */
    const uint8_t *pending;  /* the rest of nghttp2's last output that did not fit (its buffer) */
    size_t pending_len;
    uint64_t window_start; /* flood counters: loop ms of the current window */
    unsigned pings, settings, empty, priority, invalid;
};

int h2_preface(const char *p, size_t n) {
    static const char magic[] = NGHTTP2_CLIENT_MAGIC;
    size_t m = sizeof(magic) - 1;
    size_t k = n < m ? n : m;
    if (memcmp(p, magic, k) != 0) return 0;
    return n >= m ? 1 : -1;
}

/* ---- pieces and streams ---- */

/* Streams and pieces let go of are kept for the next ones (a stream's buffers keep their room):
 * at 32 streams per connection a request would otherwise cost a dozen mallocs here alone. The
 * loop is single-threaded. */
#define CACHE_MAX 256u
#define CACHED_BUF_MAX 4096u /* a buffer that grew past this is given back */
static h2_stream_t *stream_cache;
static piece_t *piece_cache;
static unsigned stream_cached, piece_cached;

static piece_t *piece_new(void) {
    piece_t *p = piece_cache;
    if (p == NULL) return xcalloc(1, sizeof(*p));
    piece_cache = p->next;
    piece_cached--;
    memset(p, 0, sizeof(*p));
    return p;
}

static void piece_free(piece_t *p) {
    if (piece_cached >= CACHE_MAX) {
        free(p);
        return;
    }
    p->next = piece_cache;
    piece_cache = p;
    piece_cached++;
}

static void buf_keep(buf_t *b) {
    if (b->cap > CACHED_BUF_MAX) buf_dispose(b);
    b->len = 0;
}

static h2_stream_t *stream_new(void) {
    h2_stream_t *st = stream_cache;
    if (st == NULL) {
        st = xcalloc(1, sizeof(*st));
        buf_init(&st->fields);
        buf_init(&st->cookie);
        buf_init(&st->pseudo);
        buf_init(&st->resp);
        buf_init(&st->in);
    } else {
        stream_cache = st->next;
        stream_cached--;
        buf_t keep[5] = {st->fields, st->cookie, st->pseudo, st->resp, st->in};
        memset(st, 0, sizeof(*st));
        st->fields = keep[0], st->cookie = keep[1], st->pseudo = keep[2], st->resp = keep[3];
        st->in = keep[4];
    }
    st->method_at = st->path_at = st->authority_at = -1;
    st->out_tail = &st->out;
    return st;
}

static void stream_free(h2_stream_t *st) {
    if (stream_cached >= CACHE_MAX) {
        buf_dispose(&st->fields);
        buf_dispose(&st->cookie);
        buf_dispose(&st->pseudo);
        buf_dispose(&st->resp);
        buf_dispose(&st->in);
        free(st);
        return;
    }
    buf_keep(&st->fields);
    buf_keep(&st->cookie);
    buf_keep(&st->pseudo);
    buf_keep(&st->resp);
    buf_keep(&st->in);
    st->next = stream_cache;
    stream_cache = st;
    stream_cached++;
}

/* A pseudo-header field's value, or NULL when the client sent none. */
static const char *pseudo(const h2_stream_t *st, int at) {
    return at < 0 ? NULL : st->pseudo.data + at;
}

static void piece_done(h2_conn_t *h, piece_t *p, int status) {
    p->status = status;
    p->next = NULL;
    *h->done_tail = p;
    h->done_tail = &p->next;
}

/* Run the callbacks of taken or cancelled pieces (they may write, finish, or free their state). */
static void run_done(h2_conn_t *h) {
    while (h->done) {
        piece_t *p = h->done;
        h->done = p->next;
        if (h->done == NULL) h->done_tail = &h->done;
        if (p->cb) p->cb(p->r, p->ctx, p->status);
        free(p->owned);
        if (p->bufs != &p->one) free(p->bufs);
        if (p->r) {
            p->r->pending_writes--;
            request_unref(p->r);
        }
        piece_free(p);
    }
}

/* Free what nothing refers to any more (called from the top of our own passes). */
static void reap(h2_conn_t *h) {
    while (h->dead) {
        h2_stream_t *st = h->dead;
        h->dead = st->next;
        stream_free(st);
    }
}

static void stream_unlink(h2_stream_t *st) {
    h2_conn_t *h = st->h;
    if (st->prev) st->prev->next = st->next;
    else h->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    st->prev = NULL;
    st->next = h->dead;
    h->dead = st;
}

/* Cancel what the stream still holds of its response. */
static void cancel_pieces(h2_stream_t *st) {
    while (st->out) {
        piece_t *p = st->out;
        st->out = p->next;
        piece_done(st->h, p, UV_ECANCELED);
    }
    st->out_tail = &st->out;
    st->out_bytes = 0;
}

/* The request and its stream part (its reference passes to the caller). */
static request_t *unlink_request(h2_stream_t *st) {
    request_t *r = st->r;
    if (r == NULL) return NULL;
    st->r = NULL;
    r->h2s = NULL;
    st->h->active--;
    return r;
}

/* The request lets go of the stream: it finished. */
static void detach_request(h2_stream_t *st) {
    request_t *r = unlink_request(st);
    if (r) request_unref(r); /* the stream's */
}

/* The client went away from this stream (reset, or the connection ends): the request is
 * abandoned as over HTTP/1.1, its on_abort runs from the deferred pass. */
static void abandon(h2_stream_t *st) {
    request_t *r = unlink_request(st);
    if (r) request_abandon(st->h->c->srv, r); /* takes the stream's reference */
}

/* ---- output ---- */

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
    (void)ng, (void)id;
    h2_stream_t *st = src->ptr;
    h2_conn_t *h = ud;
    size_t n = 0;
    while (n < length && st->out) {
        piece_t *p = st->out;
        uv_buf_t *b = &p->bufs[p->i];
        size_t k = b->len - p->off;
        if (k > length - n) k = length - n;
        memcpy(buf + n, b->base + p->off, k);
        n += k;
        p->off += k;
        p->left -= k;
        st->out_bytes -= k;
        while (p->i < p->n && p->off == p->bufs[p->i].len) {
            p->i++;
            p->off = 0;
        }
        if (p->left == 0) {
            st->out = p->next;
            if (st->out == NULL) st->out_tail = &st->out;
            piece_done(h, p, 0);
        }
    }
    if (n) st->out_at = uv_now(h->c->srv->loop);
    if (st->out == NULL && st->out_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (n == 0) {
        st->out_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* Produce frames into libuv's queue while it is short. */
static void send_frames(h2_conn_t *h) {
    conn_t *c = h->c;
    if (h->sending) return;
    h->sending = true;
    h->blocked = false;
    while (c->state != CONN_STATE_CLOSING) {
        if (c->h.stream.write_queue_size >= OUT_HIGH) {
            h->blocked = true;
            break;
        }
        /* Frames are gathered in one scratch buffer (the loop is single-threaded), which the
         * write copies only if the socket does not take it at once (or encrypts, over TLS). */
        static uint8_t out[OUT_CHUNK];
        size_t len = 0;
        while (len < OUT_CHUNK) {
            const uint8_t *data;
            ssize_t n = h->pending_len ? (ssize_t)h->pending_len : nghttp2_session_mem_send(h->ng, &data);
            if (h->pending_len) data = h->pending;
            if (n < 0) {
                log_info("HTTP/2: %s (connection closed)", nghttp2_strerror((int)n));
                h->fatal = true;
                break;
            }
            if (n == 0) break;
            size_t k = (size_t)n <= OUT_CHUNK - len ? (size_t)n : OUT_CHUNK - len;
            memcpy(out + len, data, k);
            len += k;
            /* What did not fit stays valid until the next mem_send call: taken next round. */
            h->pending = data + k;
            h->pending_len = (size_t)n - k;
        }
        if (len == 0) break;
        conn_write_transient(c, (const char *)out, len);
        if (h->fatal) break;
    }
    h->sending = false;
}

static void wake(h2_conn_t *h) {
    conn_wake(h->c); /* h2_pump from the deferred pass */
}

/* New pieces or the end of the body: let the session take them. */
static void resume_output(h2_stream_t *st) {
    if (st->out_deferred && !st->closed) {
        st->out_deferred = false;
        nghttp2_session_resume_data(st->h->ng, st->id);
    }
    wake(st->h);
}

static void enqueue(h2_stream_t *st, request_t *r, const uv_buf_t *bufs, unsigned n, char *owned,
                    resp_write_cb cb, void *ctx) {
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    piece_t *p = piece_new();
    p->r = r;
    if (r) {
        request_ref(r);
        r->pending_writes++;
    }
    p->owned = owned;
    p->cb = cb;
    p->ctx = ctx;
    p->left = total;
    if (n == 1) {
        p->one = bufs[0];
        p->bufs = &p->one;
    } else {
        p->bufs = xmalloc((n ? n : 1) * sizeof(uv_buf_t));
        memcpy(p->bufs, bufs, n * sizeof(uv_buf_t));
    }
    p->n = n;
    while (p->i < p->n && p->bufs[p->i].len == 0) p->i++;
    if (total == 0 || st->closed) {
        piece_done(st->h, p, st->closed ? UV_ECANCELED : 0);
        wake(st->h);
        return;
    }
    if (st->out == NULL) st->out_at = uv_now(st->h->c->srv->loop); /* waiting starts now */
    *st->out_tail = p;
    st->out_tail = &p->next;
    st->out_bytes += total;
    resume_output(st);
}

/* Connection-specific fields, which HTTP/2 forbids (RFC 9113 §8.2.2). */
static bool skip_field(const char *name, size_t n) {
    str_t f = str_make(name, n);
    switch (n) {
    case 7: return STR_IEQ(f, "upgrade");
    case 10: return STR_IEQ(f, "connection") || STR_IEQ(f, "keep-alive");
    case 16: return STR_IEQ(f, "proxy-connection");
    case 17: return STR_IEQ(f, "transfer-encoding");
    default: return false;
    }
}

/* HEADERS from an HTTP/1.1-style head block ("HTTP/1.1 200 OK\r\nName: value\r\n...\r\n").
 * The block is copied into the stream's `resp` buffer and its names lowered there: nghttp2 is
 * given the fields without copying them (NO_COPY), as they stay in place until the stream is
 * freed, and nghttp2 reads them only while it prepares the HEADERS frame of an open stream. A
 * stream submits one head at most (`responded`). */
static int submit_head(h2_stream_t *st, const char *head, size_t len, bool with_body) {
    static nghttp2_nv nva_scratch[128]; /* nghttp2 copies the array: the loop is single-threaded */
    const uint8_t nocopy = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    st->resp.len = 0;
    buf_append(&st->resp, head, len);
    char *h = st->resp.data, *end = h + len;
    size_t cap = sizeof(nva_scratch) / sizeof(nva_scratch[0]), nv = 0;
    nghttp2_nv *nva = nva_scratch;
    const char *status = "500";
    if (len > 12 && memcmp(h, "HTTP/1.1 ", 9) == 0) status = h + 9;
    nva[nv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, nocopy};
    char *eol = memchr(h, '\n', len);
    for (char *s = eol ? eol + 1 : end; s < end;) {
        char *e = memchr(s, '\n', (size_t)(end - s));
        if (e == NULL) break;
        char *le = e > s && e[-1] == '\r' ? e - 1 : e;
        char *colon = memchr(s, ':', (size_t)(le - s));
        if (le > s && colon && colon > s && !skip_field(s, (size_t)(colon - s))) {
            size_t nl = (size_t)(colon - s);
            for (size_t i = 0; i < nl; i++) s[i] = ascii_lower(s[i]);
            char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            if (nv == cap) { /* a head of more than 127 fields */
                cap *= 2;
                nghttp2_nv *grown = xmalloc(cap * sizeof(*grown));
                memcpy(grown, nva, nv * sizeof(*grown));
                if (nva != nva_scratch) free(nva);
                nva = grown;
            }
            nva[nv++] = (nghttp2_nv){(uint8_t *)s, (uint8_t *)v, nl, (size_t)(le - v), nocopy};
        }
        s = e + 1;
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rc = nghttp2_submit_response(st->h->ng, st->id, nva, nv, with_body ? &prd : NULL);
    if (nva != nva_scratch) free(nva);
    return rc;
}

/* An answer of our own to a stream that has no request (a head refused, a body too large): a
 * short text, then END_STREAM. */
static void answer_simple(h2_stream_t *st, int status) {
    if (st->responded || st->closed) {
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    const char *reason = http_status_reason(status);
    char *body = xasprintf("%d %s\n", status, reason);
    size_t blen = strlen(body);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nserver: fcgihost\r\ndate: %s\r\ncontent-type: text/plain; "
                     "charset=utf-8\r\ncontent-length: %zu\r\n\r\n",
                     status, reason, http_date(st->h->c->srv), blen);
    st->responded = true;
    st->out_end = true;
    uv_buf_t b = uv_buf_init(body, (unsigned)blen);
    enqueue(st, NULL, &b, 1, body, NULL, NULL);
    submit_head(st, head, (size_t)n, true);
    http_server_t *s = st->h->c->srv;
    s->on_response(s->owner, NULL, status, 0.0);
}

/* A stream's request fails on its side of the exchange (a body over maxBodyBytes): the handler is
 * let go of as if the client left, and the client gets `status` if nothing was answered yet. */
static void fail_stream(h2_stream_t *st, int status) {
    bool answered = st->responded;
    abandon(st);
    if (answered) nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    else answer_simple(st, status);
}

void h2_respond(request_t *r, const char *head, size_t head_len, const uv_buf_t *body,
                unsigned nbody, char *owned, resp_write_cb cb, void *ctx) {
    h2_stream_t *st = r->h2s;
    bool bodyless = r->head_only;
    if (st == NULL || st->closed || st->responded) {
        free(owned);
        if (cb) cb(r, ctx, UV_ECANCELED);
        return;
    }
    st->responded = true;
    size_t total = 0;
    for (unsigned i = 0; i < nbody; i++) total += body[i].len;
    /* With no body at all (HEAD, 204, 304, or an empty one that resp_finish ends), END_STREAM
     * still comes from the data source, so that resp_finish decides when the stream ends. */
    int rc = submit_head(st, head, head_len, true);
    free(owned);
    if (rc != 0) {
        log_info("HTTP/2: cannot submit a response: %s", nghttp2_strerror(rc));
        if (cb) cb(r, ctx, UV_EPROTO);
        h2_abort(r);
        return;
    }
    if (nbody && total && !bodyless) enqueue(st, r, body, nbody, NULL, cb, ctx);
    else if (cb) enqueue(st, r, body, 0, NULL, cb, ctx); /* its callback, in order */
    else resume_output(st);
}

void h2_write(request_t *r, const uv_buf_t *bufs, unsigned n, char *owned, resp_write_cb cb, void *ctx) {
    h2_stream_t *st = r->h2s;
    if (st == NULL || st->closed || st->out_end) {
        free(owned);
        if (cb) cb(r, ctx, UV_ECANCELED);
        return;
    }
    enqueue(st, r, bufs, n, owned, cb, ctx);
}

void h2_finish(request_t *r) {
    h2_stream_t *st = r->h2s;
    if (st == NULL) return;
    conn_t *c = st->h->c;
    st->out_end = true;
    if (!st->responded) { /* cannot happen: resp_finish follows a head */
        answer_simple(st, 500);
    }
    conn_access_log(c, r);
    c->served++;
    r->conn = NULL;
    detach_request(st);
    resume_output(st);
}

void h2_continue(request_t *r) {
    h2_stream_t *st = r->h2s;
    if (st == NULL || st->closed || st->responded) return;
    nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE};
    nghttp2_submit_headers(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NULL, &nv, 1, NULL);
    wake(st->h);
}

size_t h2_queued_bytes(const request_t *r) {
    const h2_stream_t *st = r->h2s;
    return st ? st->out_bytes : 0;
}

void h2_resume_body(request_t *r) {
    h2_stream_t *st = r->h2s;
    if (st == NULL || !st->in_paused) return;
    st->in_paused = false;
    wake(st->h); /* delivered from h2_pump, not under the handler's call */
}

void h2_abort(request_t *r) {
    h2_stream_t *st = r->h2s;
    if (st == NULL) return;
    if (!st->closed) nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    r->conn = NULL;
    abandon(st);
    wake(st->h);
}

/* ---- input ---- */

/* Hand what the stream holds of its body to the handler; acknowledge what it took. */
static void deliver(h2_stream_t *st) {
    h2_conn_t *h = st->h;
    request_t *r = st->r;
    if (r == NULL || st->in_paused) return;
    request_ref(r); /* the handler may finish or abort meanwhile */
    while (st->in.len && st->r == r && !st->in_paused) {
        size_t n = st->in.len, t = n;
        if (r->handler && r->handler->on_body && !r->finished) t = r->handler->on_body(r, st->in.data, n);
        if (t > n) t = n;
        if (st->r != r) break; /* its stream let go meanwhile: the bytes are dropped below */
        buf_consume(&st->in, t);
        r->body_total += t;
        if (r->body_left >= (int64_t)t) r->body_left -= (int64_t)t;
        nghttp2_session_consume(h->ng, st->id, t);
        if (t < n) {
            st->in_paused = r->body_paused = true;
            break;
        }
    }
    if (st->r == r && !st->in_paused) r->body_paused = false;
    if (st->r == r && st->in_end && st->in.len == 0 && !r->body_complete) {
        r->body_complete = true;
        r->body_left = 0;
        if (r->handler && r->handler->on_body_end && !r->finished) r->handler->on_body_end(r);
    }
    if (st->r != r && st->in.len) { /* nobody takes these any more */
        nghttp2_session_consume(h->ng, st->id, st->in.len);
        buf_consume(&st->in, st->in.len);
    }
    request_unref(r);
}

static uint64_t max_body(const conn_t *c, const request_t *r) {
    return r->site ? r->site->cfg->max_body_bytes : c->srv->gen->cfg->server.site.max_body_bytes;
}

/* The request head is complete: check it as an HTTP/1.1 head would be, and dispatch it. */
static void start_request(h2_stream_t *st, bool end_stream) {
    h2_conn_t *h = st->h;
    conn_t *c = h->c;
    http_server_t *s = c->srv;
    const cfg_server_t *sc = &s->gen->cfg->server;
    st->started = true;
    if (st->refuse) {
        answer_simple(st, st->refuse);
        return;
    }
    const char *method = pseudo(st, st->method_at), *path = pseudo(st, st->path_at);
    const char *authority = pseudo(st, st->authority_at);
    if (method == NULL || path == NULL) { /* nghttp2 refuses these; CONNECT has no :path */
        answer_simple(st, method && strcmp(method, "CONNECT") == 0 ? 405 : 400);
        return;
    }
    /* The head as HTTP/1.1 would have it, checked by the same parser: one set of rules. It is
     * built in a scratch buffer (the loop is single-threaded): the request keeps its own copy. */
    static buf_t t;
    if (t.cap > 64u * 1024u) buf_dispose(&t); /* the last head was a rare large one: not kept */
    t.len = 0;
    buf_append_str(&t, method); /* no printf on the per-request path */
    buf_append(&t, " ", 1);
    buf_append_str(&t, path);
    buf_append(&t, " HTTP/1.1\r\n", 11);
    if (authority) {
        buf_append(&t, "host: ", 6);
        buf_append_str(&t, authority);
        buf_append(&t, "\r\n", 2);
    }
    buf_append(&t, st->fields.data, st->fields.len);
    if (st->cookie.len) {
        buf_append_str(&t, "cookie: ");
        buf_append(&t, st->cookie.data, st->cookie.len);
        buf_append(&t, "\r\n", 2);
    }
    buf_append(&t, "\r\n", 2);
    http_limits_t lim = {.max_url_bytes = sc->max_url_bytes, .max_header_bytes = sc->max_header_bytes + 64};
    http_request_t hr;
    int rc = http_parse_request(t.data, t.len, &hr, header_scratch, MAX_HEADERS, &lim);
    if (rc < 0) {
        answer_simple(st, rc == HTTP_PARSE_AGAIN ? 400 : -rc);
        return;
    }
    /* The version the access log shows: "HTTP/2.0" (the bytes after the target). */
    memcpy((char *)hr.target.p + hr.target.len + 6, "2.0", 3);
    const http_site_t *site = http_site_for(s->gen->sites, hr.host, c->listen_id);
    uint64_t max = site ? site->cfg->max_body_bytes : sc->site.max_body_bytes;
    if (max && hr.content_length > 0 && (uint64_t)hr.content_length > max) {
        answer_simple(st, 413);
        return;
    }
    request_t *r = conn_new_request(c, &hr, t.data, rc, site);
    r->http2 = true;
    r->h2s = st;
    st->r = r;
    h->active++;
    s->h2_streams++;
    r->body_chunked = !end_stream && hr.content_length < 0; /* length unknown until END_STREAM */
    r->body_left = end_stream || hr.content_length < 0 ? 0 : hr.content_length;
    r->body_complete = end_stream;
    r->expect_continue = hr.expect_continue && !end_stream;
    st->in_end = end_stream;
    st->in_at = uv_now(s->loop);
    c->state = CONN_STATE_ACTIVE;
    c->deadline = 0;
    request_ref(r);
    dispatch_request(r);
    if (st->r == r) deliver(st); /* DATA may have come with the head */
    request_unref(r);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    h2_conn_t *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    h2_stream_t *st = stream_new();
    st->h = h;
    st->id = f->hd.stream_id;
    st->next = h->streams;
    if (h->streams) h->streams->prev = st;
    h->streams = st;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static void flood(h2_conn_t *h, const char *what) {
    char peer[64];
    conn_peer_str(h->c, peer, sizeof(peer));
    log_warn("%s: HTTP/2 %s: connection closed (GOAWAY ENHANCE_YOUR_CALM)", peer, what);
    h->goaway_logged = true;
    nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* A GOAWAY with an error that nghttp2 decided on (a client resetting streams too fast, more
 * CONTINUATION frames than allowed, a protocol error): logged once, floods as warnings. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    (void)ng;
    h2_conn_t *h = ud;
    if (f->hd.type != NGHTTP2_GOAWAY || f->goaway.error_code == NGHTTP2_NO_ERROR || h->goaway_logged)
        return 0;
    h->goaway_logged = true;
    char peer[64];
    conn_peer_str(h->c, peer, sizeof(peer));
    int n = (int)(f->goaway.opaque_data_len < 120 ? f->goaway.opaque_data_len : 120);
    const char *why = n ? (const char *)f->goaway.opaque_data : "";
    uint32_t code = f->goaway.error_code;
    if (code == NGHTTP2_ENHANCE_YOUR_CALM)
        log_warn("%s: HTTP/2 flood: %.*s: connection closed (GOAWAY ENHANCE_YOUR_CALM)", peer, n, why);
    else
        log_info("%s: HTTP/2 protocol error: %.*s: connection closed (GOAWAY %s)", peer, n, why,
                 nghttp2_http2_strerror(code));
    return 0;
}

static bool is_name(const uint8_t *n, size_t nl, const char *lit) {
    return strlen(lit) == nl && memcmp(n, lit, nl) == 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud) {
    (void)flags;
    h2_conn_t *h = ud;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (st == NULL || st->started || f->hd.type != NGHTTP2_HEADERS) return 0; /* trailers: ignored */
    uint64_t limit = h->c->srv->gen->cfg->server.max_header_bytes;
    st->head_bytes += nl + vl + 4;
    if (st->head_bytes > limit) {
        if (st->head_bytes > limit * BOMB_FACTOR) { /* decoded far past any head we take */
            flood(h, "header list far over maxHeaderBytes (HPACK bomb)");
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->refuse = 431;
        return 0;
    }
    if (st->refuse) return 0;
    if (nl && name[0] == ':') {
        int *slot = is_name(name, nl, ":method")      ? &st->method_at
                    : is_name(name, nl, ":path")      ? &st->path_at
                    : is_name(name, nl, ":authority") ? &st->authority_at
                                                      : NULL;
        if (slot && *slot < 0) {
            *slot = (int)st->pseudo.len;
            buf_append(&st->pseudo, value, vl);
            buf_append(&st->pseudo, "", 1); /* its NUL (the buffer's own moves on) */
        }
        return 0;
    }
    if (is_name(name, nl, "cookie")) {
        if (st->cookie.len) buf_append(&st->cookie, "; ", 2);
        buf_append(&st->cookie, value, vl);
        return 0;
    }
    if (is_name(name, nl, "host") && st->authority_at >= 0) return 0; /* :authority wins (RFC 9113 §8.3.1) */
    buf_append(&st->fields, name, nl);
    buf_append(&st->fields, ": ", 2);
    buf_append(&st->fields, value, vl);
    buf_append(&st->fields, "\r\n", 2);
    return 0;
}

static bool count(h2_conn_t *h, unsigned *n, unsigned max, const char *what) {
    uint64_t now = uv_now(h->c->srv->loop);
    if (now - h->window_start >= FLOOD_WINDOW_MS) {
        h->window_start = now;
        h->pings = h->settings = h->empty = h->priority = 0;
    }
    if (++*n <= max) return true;
    flood(h, what);
    return false;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    h2_conn_t *h = ud;
    h2_stream_t *st = f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id) : NULL;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL) break;
        if (!st->started && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (end) st->in_end = true;
            start_request(st, end);
            break;
        }
        if (end) { /* trailers end the body */
            st->in_end = true;
            deliver(st);
        }
        break;
    case NGHTTP2_DATA:
        if (f->hd.length == 0 && !end) count(h, &h->empty, MAX_EMPTY, "flood of empty DATA frames");
        if (st && end) {
            st->in_end = true;
            deliver(st);
        }
        break;
    case NGHTTP2_PING:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) count(h, &h->pings, MAX_PINGS, "PING flood");
        break;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) count(h, &h->settings, MAX_SETTINGS, "SETTINGS flood");
        break;
    case NGHTTP2_PRIORITY:
        count(h, &h->priority, MAX_PRIORITY, "PRIORITY flood");
        break;
    default:
        break;
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud) {
    (void)ng, (void)f, (void)err;
    h2_conn_t *h = ud;
    if (++h->invalid == MAX_INVALID) flood(h, "stream of invalid frames");
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
    (void)flags;
    h2_conn_t *h = ud;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, id);
    request_t *r = st ? st->r : NULL;
    if (r == NULL) { /* answered already, or never a request: dropped */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    uint64_t max = max_body(h->c, r);
    if (max && r->body_total + st->in.len + len > max) {
        nghttp2_session_consume(ng, id, len);
        fail_stream(st, 413);
        return 0;
    }
    st->in_at = uv_now(h->c->srv->loop);
    buf_append(&st->in, data, len);
    deliver(st);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t err, void *ud) {
    (void)err, (void)ud;
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, id);
    if (st == NULL) return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    st->closed = true;
    if (st->r) {
        st->r->conn = NULL;
        abandon(st); /* reset by the client, or the session ended: a client that left */
    }
    cancel_pieces(st);
    if (st->in.len) {
        nghttp2_session_consume_connection(ng, st->in.len);
        buf_consume(&st->in, st->in.len);
    }
    stream_unlink(st);
    return 0;
}

/* ---- the session ---- */

static nghttp2_session_callbacks *callbacks(void) {
    static nghttp2_session_callbacks *cb;
    if (cb == NULL) {
        if (nghttp2_session_callbacks_new(&cb) != 0) abort(); /* out of memory */
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    }
    return cb;
}

void h2_start(conn_t *c) {
    http_server_t *s = c->srv;
    const cfg_server_t *sc = &s->gen->cfg->server;
    h2_conn_t *h = xcalloc(1, sizeof(*h));
    h->c = c;
    h->done_tail = &h->done;
    h->window_start = uv_now(s->loop);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) abort();
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000);      /* PING/SETTINGS answers not read */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33); /* rapid reset, CVE-2023-44487 */
    nghttp2_option_set_max_continuations(opt, 8);        /* CVE-2024-27316 */
    nghttp2_option_set_max_settings(opt, 32);
    if (nghttp2_session_server_new2(&h->ng, callbacks(), h, opt) != 0) abort();
    nghttp2_option_del(opt);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, sc->http2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)sc->max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* RFC 9218 priorities (urgency, incremental) instead of RFC 7540's dependency tree: the
         * session keeps no closed streams for the tree, which costs every stream a little. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    c->h2 = h;
    s->h2_conns++;
}

bool h2_feed(conn_t *c, const char *data, size_t n) {
    h2_conn_t *h = c->h2;
    if (h->fatal) return false;
    ssize_t rc = nghttp2_session_mem_recv(h->ng, (const uint8_t *)data, n);
    if (rc < 0) {
        char peer[64];
        conn_peer_str(c, peer, sizeof(peer));
        if (rc == NGHTTP2_ERR_FLOODED || rc == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            log_info("%s: HTTP/2: %s (connection closed)", peer, nghttp2_strerror((int)rc));
        else
            log_info("%s: HTTP/2 protocol error: %s (connection closed)", peer, nghttp2_strerror((int)rc));
        h->fatal = true;
        return false;
    }
    return true;
}

void h2_pump(conn_t *c) {
    h2_conn_t *h = c->h2;
    if (h == NULL) return;
    /* Bodies a handler resumed. */
    for (h2_stream_t *st = h->streams; st; st = st->next)
        if (st->r && !st->in_paused && (st->in.len || (st->in_end && !st->r->body_complete))) deliver(st);
    send_frames(h);
    run_done(h);
    /* Callbacks may have queued more (a static file's next chunk, the end of a response). */
    if ((h->pending_len || nghttp2_session_want_write(h->ng)) && !h->blocked) send_frames(h);
    reap(h);
    if (h->active == 0 && c->state == CONN_STATE_ACTIVE) c->state = CONN_STATE_IDLE;
}

void h2_sweep(conn_t *c, uint64_t now) {
    h2_conn_t *h = c->h2;
    const cfg_server_t *sc = &c->srv->gen->cfg->server;
    char peer[64];
    bool acted = false;
    for (h2_stream_t *st = h->streams; st; st = st->next) {
        request_t *r = st->r;
        if (r == NULL || st->closed) continue;
        /* bodyTimeout: the handler waits for more of the body and none came (not while it holds
         * the body back, nor while the client waits for a 100 Continue not sent yet). */
        if (!r->body_complete && !st->in_paused && !r->expect_continue &&
            now - st->in_at >= (uint64_t)sc->body_timeout * 1000u) {
            conn_peer_str(c, peer, sizeof(peer));
            log_info("%s: HTTP/2 stream %d: the request body stalled for %us (bodyTimeout)", peer,
                     (int)st->id, sc->body_timeout);
            fail_stream(st, 408);
            acted = true;
            continue;
        }
        /* sendTimeout: the answer waits for the client (its window stays closed) and none of it
         * moved: the stream is reset and its application let go. */
        if (st->out && now - st->out_at >= (uint64_t)sc->send_timeout * 1000u) {
            conn_peer_str(c, peer, sizeof(peer));
            log_info("%s: HTTP/2 stream %d: the client took nothing of the response for %us "
                     "(sendTimeout): stream reset", peer, (int)st->id, sc->send_timeout);
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
            r->conn = NULL;
            abandon(st);
            acted = true;
        }
    }
    if (acted) wake(h);
}

bool h2_done(const conn_t *c) {
    const h2_conn_t *h = c->h2;
    return h->fatal || (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng) &&
                        h->pending_len == 0);
}

unsigned h2_active(const conn_t *c) {
    return c->h2 ? c->h2->active : 0;
}

void h2_begin_stop(conn_t *c) {
    h2_conn_t *h = c->h2;
    if (h->stopping) return;
    h->stopping = true;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    wake(h);
}

void h2_closing(conn_t *c) {
    h2_conn_t *h = c->h2;
    for (h2_stream_t *st = h->streams; st; st = st->next) {
        if (st->r) {
            st->r->conn = NULL;
            abandon(st);
        }
        st->closed = true;
    }
}

void h2_free(conn_t *c) {
    h2_conn_t *h = c->h2;
    if (h == NULL) return;
    for (h2_stream_t *st = h->streams; st; st = st->next) cancel_pieces(st);
    nghttp2_session_del(h->ng); /* before the streams it points to go */
    h->ng = NULL;
    while (h->streams) stream_unlink(h->streams);
    run_done(h);
    reap(h);
    free(h);
    c->h2 = NULL;
}
