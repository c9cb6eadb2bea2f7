/* The FastCGI request handler. See handler.h.
 *
 * One fcgi_req_t per HTTP request sent to an application:
 *   queued (pool_acquire) → leased: BEGIN_REQUEST + PARAMS + STDIN written, records read back →
 *   CGI header block parsed → body held up to responseBufferLimit, then streamed → END_REQUEST →
 *   the process goes back to its pool.
 *
 * The request body is kept as encoded STDIN blocks. While the whole exchange is still small
 * (REPLAY_MAX) the blocks are kept after they are written, so that when a process turns out to have
 * exited on its own before answering anything (php-cgi after PHP_FCGI_MAX_REQUESTS), the request
 * is replayed on another process and the client never sees the error.
 *
 * The fcgi_req_t can outlive its HTTP request: when the client goes away mid-request the process
 * is drained (its output read and dropped until END_REQUEST) instead of being killed, so one
 * impatient client does not cost a process. */
#include "fastcgi/handler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fastcgi/cgi_response.h"
#include "fastcgi/codec.h"
#include "fastcgi/params.h"
#include "http/request.h"
#include "http/site.h"
#include "http/static.h"
#include "pool/pool.h"
#include "config/generation.h"
#include "util/log.h"
#include "util/xalloc.h"

#define READ_BUF 65536u
#define REPLAY_MAX (1024u * 1024u)     /* body bytes kept for a replay on another process */
#define BODY_WINDOW (1024u * 1024u)    /* unwritten body bytes before the client is paused */
#define SPILL_AT (1024u * 1024u)       /* chunked bodies past this go to a temporary file */
#define CLIENT_HIGH (1024u * 1024u)    /* unsent response bytes before the app is paused */
#define CLIENT_LOW (256u * 1024u)
#define STDERR_KEEP (64u * 1024u)      /* stderr bytes kept and logged per request */
#define MAX_ATTEMPTS 3 /* SPEC 4.11: a request goes to at most this many processes */
#define RBUF_CACHE 64  /* READ_BUF buffers kept for the next requests */

/* Read buffers go back to a short free list: a fresh 64 KiB buffer for every FastCGI request made
 * glibc grow and trim the top of the heap (brk) every few requests under load. The server has one
 * loop: the list needs no lock. */
static char *rbuf_cache[RBUF_CACHE];
static unsigned n_rbuf_cache;

static char *rbuf_get(void) {
    return n_rbuf_cache ? rbuf_cache[--n_rbuf_cache] : xmalloc(READ_BUF);
}

static void rbuf_put(char *b) {
    if (b && n_rbuf_cache < RBUF_CACHE) rbuf_cache[n_rbuf_cache++] = b;
    else free(b);
}
#define MAX_CGI_HEADERS 128

typedef struct blk {
    struct blk *next;
    size_t len;
    bool written;   /* handed to uv_write in the current attempt */
    bool done;      /* that write completed (only then may the block be freed) */
    char data[];
} blk_t;

/* The exchange's one state. fr_set_state() is the only place it changes, and it refuses any
 * transition not listed in fr_next_ok() (docs/design.md has the diagram):
 *
 *   COLLECTING ─► QUEUED ─► HEAD ─► HOLDING ─► STREAMING
 *                   ▲        │  ╲      │          │
 *                   │        │   ╲     ▼          ▼
 *               WAIT_EXIT ◄──┘    ──► DRAINING ◄──┘        every state ─► DONE
 */
typedef enum fr_state {
    FR_COLLECTING, /* a chunked body is being collected first (the application needs CONTENT_LENGTH) */
    FR_QUEUED,     /* waiting in the pool's queue for a process */
    FR_HEAD,       /* a process is leased: the request goes out, the response header block is not complete */
    FR_HOLDING,    /* header block parsed; the body is held up to responseBufferLimit */
    FR_STREAMING,  /* the headers went out; the body streams with back-pressure */
    FR_DRAINING,   /* the client is gone or was answered otherwise: the process's output is read and
                      dropped until END_REQUEST, so that the process stays usable */
    FR_WAIT_EXIT,  /* the process closed before answering: waiting for its exit status (SPEC 4.11) */
    FR_DONE,       /* over: the process was given back; freed once our writes and timer are done */
} fr_state_t;

typedef struct fcgi_req {
    fr_state_t state;
    request_t *r;            /* the client's request: set exactly in COLLECTING, QUEUED, HEAD,
                                HOLDING, STREAMING and (until the client leaves) WAIT_EXIT */
    uv_loop_t *loop;
    http_server_t *hs;       /* borrowed: outlives every request */
    gen_t *gen;              /* our own reference: the app settings live in it */
    const cfg_app_t *app;
    const cfg_handler_t *handler;
    pool_t *pool;
    worker_t *wk;
    pid_t pid;
    pool_waiter_t waiter;
    uint64_t id;             /* for log lines */
    uint16_t reqid;          /* FastCGI request id: differs from the previous request's on the same
                                connection, so a stale record from it is a protocol error */
    size_t script_len;       /* SCRIPT_NAME is r->path[0..script_len) */

    buf_t params;            /* BEGIN_REQUEST + PARAMS, kept for a replay */
    bool params_built;
    blk_t *blocks, *last;    /* encoded STDIN records, in order */
    uint64_t body_kept;      /* bytes in blocks */
    uint64_t body_held;      /* chunked body bytes counted in http_body_hold */
    uint64_t body_unwritten; /* bytes in blocks not yet handed to uv_write */
    bool replayable;
    bool body_end;           /* the client's body is complete */
    bool end_queued;         /* the empty STDIN record is in blocks */
    int spill_fd;            /* chunked body overflow (encoded records), -1 when none */
    uint64_t spill_len, spill_sent;
    bool spill_reading;
    unsigned writes;         /* our writes on the worker stream not yet completed */

    char *rbuf;
    fcgi_decoder_t dec;
    bool reading;
    buf_t hdr;               /* the CGI header block, then held body bytes follow it */
    cgi_response_t res;
    cgi_header_t headers[MAX_CGI_HEADERS];
    size_t body_at;          /* where held body bytes start in hdr */
    int64_t app_len;         /* the application's Content-Length, -1 without one (SPEC §3 framing) */
    uint64_t body_out;       /* body bytes passed on to the client while streaming */
    bool surplus;            /* it sent more than its Content-Length (logged once) */
    bool got_output;
    buf_t errtext;
    uint64_t err_total;
    bool err_open_line;          /* the stderr text so far ends inside a line */
    bool kill_after;         /* TerminateProcess: end the process after the request */

    uv_timer_t timer;
    uint64_t started, activity;
    /* slowRequestSeconds (SPEC 4.12): loop ms of each phase's end, 0 until reached */
    uint64_t t_arrived, t_queued, t_connected, t_sent, t_first, t_last;
    char *what;              /* "METHOD URI" for the slow-request line (only while it is on) */
    int attempts;            /* processes this request was sent to */
    uint64_t attempt_rx;     /* bytes received from the process in the current attempt */
    bool exit_cb_pending;    /* pool_release_gone's callback is still to come (fr must live) */
} fcgi_req_t;

static uint64_t next_id;

static const char *const fr_state_names[] = {"collecting", "queued", "head", "holding", "streaming",
                                             "draining", "wait-exit", "done"};

static bool fr_next_ok(fr_state_t from, fr_state_t to) {
    if (to == FR_DONE) return from != FR_DONE;
    switch (from) {
    case FR_COLLECTING: return to == FR_QUEUED;
    case FR_QUEUED: return to == FR_HEAD;
    case FR_HEAD: return to == FR_HOLDING || to == FR_DRAINING || to == FR_WAIT_EXIT;
    case FR_HOLDING: return to == FR_STREAMING || to == FR_DRAINING;
    case FR_STREAMING: return to == FR_DRAINING;
    case FR_WAIT_EXIT: return to == FR_QUEUED;
    default: return false;
    }
}

/* An illegal transition is a bug: it is logged (the test harness fails any test whose server
 * logged one) and the server goes on rather than abort with every connection. */
static void fr_set_state(fcgi_req_t *fr, fr_state_t to) {
    if (!fr_next_ok(fr->state, to))
        log_error("BUG: FastCGI request %" PRIu64 ": illegal transition %s -> %s", fr->id,
                  fr_state_names[fr->state], fr_state_names[to]);
    fr->state = to;
}

/* A process is leased and the client still waits for the application's answer. */
static bool fr_answering(const fcgi_req_t *fr) {
    return fr->state == FR_HEAD || fr->state == FR_HOLDING || fr->state == FR_STREAMING;
}

static void fr_finish(fcgi_req_t *fr, pool_release_t how);
static void note_sent(fcgi_req_t *fr);
static void pump(fcgi_req_t *fr);
static void start_attempt(fcgi_req_t *fr);

/* ---- helpers ---- */

static uint64_t now_ms(fcgi_req_t *fr) {
    return uv_now(fr->loop);
}

static void log_req(fcgi_req_t *fr, log_level_t lvl, const char *fmt, const char *detail) {
    if (!log_enabled(lvl)) return;
    log_msg(lvl, "%s[%d] request %" PRIu64 " (%s): %s%s%s", fr->app->name, (int)fr->pid, fr->id,
            fr->r ? fr->r->path : "client gone", fmt, detail ? ": " : "", detail ? detail : "");
}

/* Answer the client with an error if nothing went out yet; otherwise cut the connection (the
 * client must not take a truncated body for a whole one). */
static void fail_client(fcgi_req_t *fr, int status, const char *detail) {
    request_t *r = fr->r;
    if (r == NULL) return;
    fr->r = NULL;
    r->hctx = NULL;
    if (fr_answering(fr)) fr_set_state(fr, FR_DRAINING); /* the process's answer is dropped */
    if (!r->headers_sent) {
        resp_error(r, status, detail);
    } else {
        /* The client must not take a truncated body for a whole one. */
        req_abort(r);
        resp_finish(r);
    }
}

/* ---- request body: encoded STDIN blocks ---- */

static void append_block(fcgi_req_t *fr, const char *data, size_t len, bool end) {
    size_t enc = end ? FCGI_HEADER_LEN : fcgi_stream_encoded_len(len);
    blk_t *b = xmalloc(sizeof(*b) + enc + 1); /* + the NUL a buf_t keeps after its bytes */
    b->next = NULL;
    b->written = b->done = false;
    if (end) {
        fcgi_stdin_end_write(b->data, fr->reqid);
        b->len = FCGI_HEADER_LEN;
    } else {
        buf_t tmp = {.data = b->data, .len = 0, .cap = enc + 1}; /* never grows: exact size */
        fcgi_append_stdin(&tmp, fr->reqid, data, len);
        b->len = tmp.len;
    }
    if (fr->last) fr->last->next = b;
    else fr->blocks = b;
    fr->last = b;
    fr->body_kept += b->len;
    fr->body_unwritten += b->len;
}

static void free_blocks(fcgi_req_t *fr) {
    while (fr->blocks) {
        blk_t *b = fr->blocks;
        fr->blocks = b->next;
        free(b);
    }
    fr->last = NULL;
    fr->body_kept = 0;
}

/* Chunked bodies are collected whole (the application needs CONTENT_LENGTH): past SPILL_AT, or
 * past the server-wide cap (http_body_hold), the encoded records go to an unlinked temporary
 * file in tempDir. */
static bool spill(fcgi_req_t *fr, const char *data, size_t len) {
    if (fr->spill_fd < 0) {
        const char *dir = fr->gen->cfg->server.temp_dir;
        fr->spill_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fr->spill_fd < 0) {
            log_req(fr, LOG_LEVEL_WARN, "cannot create a file in tempDir, using /tmp", strerror(errno));
            fr->spill_fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        }
        if (fr->spill_fd < 0) return false;
    }
    buf_t enc;
    buf_init(&enc);
    fcgi_append_stdin(&enc, fr->reqid, data, len);
    ssize_t w = pwrite(fr->spill_fd, enc.data, enc.len, (off_t)fr->spill_len);
    bool ok = w == (ssize_t)enc.len;
    if (ok) fr->spill_len += enc.len;
    buf_dispose(&enc);
    return ok;
}

/* Body bytes accepted from the client and not yet written to the process. */
static uint64_t body_backlog(const fcgi_req_t *fr) {
    return fr->body_unwritten + (fr->wk ? worker_stream(fr->wk)->write_queue_size : 0);
}

static size_t on_body(request_t *r, const char *data, size_t len) {
    fcgi_req_t *fr = r->hctx;
    if (fr == NULL || r->error_page) return len; /* an errorPage GET takes no body */
    if (r->body_chunked) {
        if (fr->body_kept + len <= SPILL_AT && fr->spill_fd < 0 && http_body_hold(fr->hs, len)) {
            fr->body_held += len;
            append_block(fr, data, len, false);
        } else if (!spill(fr, data, len)) {
            log_req(fr, LOG_LEVEL_ERROR, "cannot store the request body", strerror(errno));
            fail_client(fr, 500, "cannot store the request body");
            fr_finish(fr, POOL_RELEASE_OK);
            return len;
        }
        return len;
    }
    if (body_backlog(fr) >= BODY_WINDOW) return 0; /* resumed from on_worker_write */
    append_block(fr, data, len, false);
    pump(fr);
    return len;
}

static void build_params(fcgi_req_t *fr);

static void on_body_end(request_t *r) {
    fcgi_req_t *fr = r->hctx;
    if (fr == NULL || r->error_page) return;
    fr->body_end = true;
    if (r->body_chunked) {
        build_params(fr);
        if (!fr->params_built) return;
        fr->t_queued = now_ms(fr);
        fr_set_state(fr, FR_QUEUED);
        pool_acquire(fr->pool, &fr->waiter, fr->waiter.cb);
        return;
    }
    pump(fr);
}

/* ---- writing to the process ---- */

typedef struct fwrite {
    uv_write_t w;
    fcgi_req_t *fr;
    char *owned;
    blk_t *blk;     /* the kept block being written, if any */
} fwrite_t;

static void maybe_free(fcgi_req_t *fr);

static void on_worker_write(uv_write_t *w, int status) {
    fwrite_t *fw = (fwrite_t *)w;
    fcgi_req_t *fr = fw->fr;
    fr->writes--;
    if (fw->blk) fw->blk->done = true;
    free(fw->owned);
    free(fw);
    if (fr->state == FR_DONE) {
        maybe_free(fr);
        return;
    }
    if (status < 0) return; /* the read side reports the broken connection */
    fr->activity = now_ms(fr);
    note_sent(fr);
    if (!fr->replayable) {
        /* Written blocks are no longer needed. */
        while (fr->blocks && fr->blocks->done) {
            blk_t *b = fr->blocks;
            fr->blocks = b->next;
            fr->body_kept -= b->len;
            free(b);
        }
        if (fr->blocks == NULL) fr->last = NULL;
    }
    if (fr->spill_reading) {
        fr->spill_reading = false;
        pump(fr);
    }
    if (fr->r && fr->r->body_paused && body_backlog(fr) < BODY_WINDOW / 4) req_resume_body(fr->r);
}

/* Write bufs[0..n) in one go; `blk` (may be NULL) is marked done when the write completes. */
static void worker_writev(fcgi_req_t *fr, const uv_buf_t *bufs, unsigned n, char *owned, blk_t *blk) {
    fwrite_t *fw = xmalloc(sizeof(*fw));
    fw->fr = fr;
    fw->owned = owned;
    fw->blk = blk;
    fr->writes++;
    if (uv_write(&fw->w, worker_stream(fr->wk), bufs, n, on_worker_write) != 0) {
        fr->writes--;
        if (blk) blk->done = true;
        free(owned);
        free(fw);
    }
}

/* The request's first write (params and the first block, owned by fr): tried at once. When the
 * socket takes it all, as it does for nearly every request, no write request exists: libuv would
 * otherwise re-register the socket with epoll after completing one (an epoll_ctl per request).
 * What on_worker_write does for a completed write that matters here is done in place. */
static void worker_write_head(fcgi_req_t *fr, const uv_buf_t *bufs, unsigned n, blk_t *blk) {
    uv_stream_t *st = worker_stream(fr->wk);
    if (fr->writes == 0 && st->write_queue_size == 0) {
        size_t total = 0;
        for (unsigned i = 0; i < n; i++) total += bufs[i].len;
        int w = uv_try_write(st, bufs, n);
        if (w >= 0 && (size_t)w == total) {
            if (blk) blk->done = true;
            fr->activity = now_ms(fr);
            if (fr->r && fr->r->body_paused && body_backlog(fr) < BODY_WINDOW / 4)
                req_resume_body(fr->r); /* runs from the deferred pass */
            return;
        }
        if (w > 0) { /* queue the rest */
            uv_buf_t rest[2];
            unsigned k = 0;
            size_t skip = (size_t)w;
            for (unsigned i = 0; i < n && k < 2; i++) {
                if (skip >= bufs[i].len) {
                    skip -= bufs[i].len;
                    continue;
                }
                rest[k++] = uv_buf_init(bufs[i].base + skip, (unsigned)(bufs[i].len - skip));
                skip = 0;
            }
            worker_writev(fr, rest, k, NULL, blk);
            return;
        }
        /* EAGAIN, or an error the read side reports: the ordinary write path */
    }
    worker_writev(fr, bufs, n, NULL, blk);
}

static void worker_write(fcgi_req_t *fr, const char *data, size_t len, char *owned, blk_t *blk) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    worker_writev(fr, &b, 1, owned, blk);
}

/* Hand everything that may go to the process now to libuv. */
static void pump(fcgi_req_t *fr) {
    if (fr->wk == NULL || fr->state == FR_DONE) return;
    if (fr->body_end && !fr->end_queued && (fr->spill_fd < 0 || fr->spill_sent == fr->spill_len)) {
        if (fr->spill_fd < 0) {
            append_block(fr, NULL, 0, true);
            fr->end_queued = true;
        }
    }
    for (blk_t *b = fr->blocks; b; b = b->next) {
        if (b->written) continue;
        b->written = true;
        fr->body_unwritten -= b->len;
        worker_write(fr, b->data, b->len, NULL, b);
    }
    if (fr->replayable && fr->body_kept > REPLAY_MAX) fr->replayable = false;
    if (fr->spill_fd >= 0 && !fr->spill_reading) {
        if (fr->spill_sent < fr->spill_len) {
            size_t n = fr->spill_len - fr->spill_sent > READ_BUF ? READ_BUF : fr->spill_len - fr->spill_sent;
            char *chunk = xmalloc(n);
            ssize_t got = pread(fr->spill_fd, chunk, n, (off_t)fr->spill_sent);
            if (got != (ssize_t)n) {
                free(chunk);
                log_req(fr, LOG_LEVEL_ERROR, "cannot read the stored request body", strerror(errno));
                fail_client(fr, 500, NULL);
                fr_finish(fr, POOL_RELEASE_CLOSE);
                return;
            }
            fr->spill_sent += n;
            fr->spill_reading = true; /* one chunk in flight: the write callback pumps again */
            worker_write(fr, chunk, n, chunk, NULL);
        } else if (fr->body_end && !fr->end_queued) {
            char *end = xmalloc(FCGI_HEADER_LEN);
            fcgi_stdin_end_write(end, fr->reqid);
            fr->end_queued = true;
            worker_write(fr, end, FCGI_HEADER_LEN, end, NULL);
        }
    }
}

/* ---- the response ---- */

static bool hop_by_hop(const cgi_header_t *h) {
    switch (h->id) {
    case CGI_H_CONTENT_LENGTH:
    case CGI_H_TRANSFER_ENCODING:
    case CGI_H_CONNECTION:
    case CGI_H_KEEP_ALIVE:
    case CGI_H_HOP_BY_HOP:
    case CGI_H_DATE:
    case CGI_H_SERVER: return true;
    default: return false;
    }
}

static int response_status(const cgi_response_t *res) {
    if (res->flags & CGI_F_STATUS) return res->status;
    if (res->flags & CGI_F_LOCATION) return 302;
    return res->status ? res->status : 200;
}

/* Does stderr turn this response into a 500 (§4.3)? */
static bool stderr_refuses(const fcgi_req_t *fr) {
    if (fr->err_total == 0) return false;
    cfg_stderr_mode_t m = fr->app->stderr_mode;
    return m == CFG_STDERR_RETURN_IN_500 || m == CFG_STDERR_GENERIC_500 || m == CFG_STDERR_TERMINATE;
}

static void refuse_with_stderr(fcgi_req_t *fr) {
    request_t *r = fr->r;
    if (r == NULL) return;
    fr->r = NULL;
    r->hctx = NULL;
    fr_set_state(fr, FR_DRAINING); /* the application's own answer is dropped */
    if (fr->app->stderr_mode == CFG_STDERR_RETURN_IN_500) {
        resp_start(r, 500);
        resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
        resp_send_headers(r, (int64_t)fr->errtext.len);
        resp_write_copy(r, fr->errtext.data, fr->errtext.len);
        resp_finish(r);
    } else {
        resp_error(r, 500, "the application wrote to stderr");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_worker_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* A body chunk reached the client. r->hctx is NULL once the exchange let go of the request, so a
 * late callback never touches a freed fcgi_req_t. */
static void on_chunk_written(request_t *r, void *ctx, int status) {
    free(ctx);
    fcgi_req_t *fr = r->hctx;
    if (fr == NULL || fr->state == FR_DONE || fr->reading || fr->wk == NULL || status < 0) return;
    if (!req_client_gone(r) && resp_queued_bytes(r) < CLIENT_LOW &&
        worker_read_start(fr->wk, on_alloc, on_worker_read) == 0)
        fr->reading = true;
}

static cgi_parse_opts_t parse_opts(const fcgi_req_t *fr) {
    return (cgi_parse_opts_t){.mode = fr->app->response_headers_strict ? CGI_MODE_STRICT : CGI_MODE_RELAXED};
}

/* Status line and the application's headers (hop-by-hop ones dropped), not yet framed. The held
 * body grows the same buffer as the header block, so the header slices are taken again here from
 * the (unchanged) block instead of being kept across reallocations. */
static void build_head(fcgi_req_t *fr) {
    request_t *r = fr->r;
    cgi_parse_opts_t o = parse_opts(fr);
    char err[8];
    cgi_parse_response(fr->hdr.data, fr->body_at, &o, &fr->res, fr->headers, MAX_CGI_HEADERS, err, sizeof(err));
    resp_start_reason(r, response_status(&fr->res), fr->res.reason.p, fr->res.reason.len);
    for (size_t i = 0; i < fr->res.num_headers; i++) {
        const cgi_header_t *h = &fr->res.headers[i];
        if (hop_by_hop(h)) continue;
        resp_header_n(r, h->name.p, h->name.len, h->value.p, h->value.len);
    }
    if (!(fr->res.flags & CGI_F_CONTENT_TYPE) && !(fr->res.flags & CGI_F_LOCATION))
        resp_header_str(r, "Content-Type", "text/html; charset=UTF-8");
}

static void write_body(fcgi_req_t *fr, const char *data, size_t len);

/* The held bytes exceed responseBufferLimit (or the limit is 0): headers go out, the body streams. */
static void begin_stream(fcgi_req_t *fr) {
    if (stderr_refuses(fr)) {
        refuse_with_stderr(fr);
        return;
    }
    fr_set_state(fr, FR_STREAMING);
    int64_t len = (fr->res.flags & CGI_F_CONTENT_LENGTH) ? fr->res.content_length : -1;
    build_head(fr);
    resp_send_headers(fr->r, len);
    size_t held = fr->hdr.len - fr->body_at;
    if (held) write_body(fr, fr->hdr.data + fr->body_at, held);
    /* Streaming from here on: the held bytes were copied out, the header block is no longer
     * needed, and up to responseBufferLimit bytes should not stay allocated for the whole body. */
    buf_dispose(&fr->hdr);
    fr->body_at = 0;
}

/* Does this response carry a body at all (not HEAD, 204, 304)? */
static bool body_expected(const fcgi_req_t *fr) {
    return !fr->r->head_only && fr->r->status != 204 && fr->r->status != 304;
}

static void note_surplus(fcgi_req_t *fr, uint64_t extra) {
    if (fr->surplus) return;
    fr->surplus = true;
    char msg[200];
    snprintf(msg, sizeof(msg), "the application sent more than its Content-Length of %" PRId64
             " (at least %" PRIu64 " bytes more): dropped, connection closed after the response",
             fr->app_len, extra);
    log_req(fr, LOG_LEVEL_WARN, msg, NULL);
    req_close_after(fr->r);
}

static void write_body(fcgi_req_t *fr, const char *data, size_t len) {
    request_t *r = fr->r;
    if (fr->app_len >= 0) { /* the client never gets more than the application announced */
        uint64_t room = (uint64_t)fr->app_len > fr->body_out ? (uint64_t)fr->app_len - fr->body_out : 0;
        if (len > room) {
            note_surplus(fr, len - room);
            len = (size_t)room;
        }
    }
    fr->body_out += len;
    if (len == 0) return;
    char *copy = xmalloc(len);
    memcpy(copy, data, len);
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    resp_write(r, &b, 1, on_chunk_written, copy);
    if (fr->r && !req_client_gone(r) && resp_queued_bytes(r) > CLIENT_HIGH && fr->reading) {
        /* Back-pressure: stop reading the application until the client catches up; the write
         * callbacks start it again. */
        worker_read_stop(fr->wk);
        fr->reading = false;
    }
}

static void on_stdout(fcgi_req_t *fr, const char *data, size_t len) {
    if (fr->state == FR_DRAINING) return;
    if (fr->state == FR_STREAMING) {
        write_body(fr, data, len);
        return;
    }
    buf_append(&fr->hdr, data, len);
    if (fr->state == FR_HEAD) {
        char err[160];
        cgi_parse_opts_t o = parse_opts(fr);
        int rc = cgi_parse_response(fr->hdr.data, fr->hdr.len, &o, &fr->res, fr->headers,
                                    MAX_CGI_HEADERS, err, sizeof(err));
        if (rc == CGI_AGAIN) return;
        if (rc < 0) {
            log_req(fr, LOG_LEVEL_ERROR, "bad response headers", err);
            fail_client(fr, 502, "the application sent malformed response headers");
            fr_finish(fr, POOL_RELEASE_KILL);
            return;
        }
        if (fr->res.dropped) {
            char msg[200];
            snprintf(msg, sizeof(msg), "%zu header line(s) without a colon dropped, first at line %u",
                     fr->res.dropped, fr->res.first_dropped_line);
            log_req(fr, LOG_LEVEL_WARN, msg, NULL);
        }
        fr_set_state(fr, FR_HOLDING);
        fr->body_at = (size_t)rc;
        int status = response_status(&fr->res);
        if (status < 200) { /* SPEC §3: an interim status cannot be the final answer */
            char msg[64];
            snprintf(msg, sizeof(msg), "Status %d as the final answer", status);
            log_req(fr, LOG_LEVEL_ERROR, "bad response", msg);
            fail_client(fr, 502, "the application sent an interim (1xx) status");
            return; /* its output is drained until END_REQUEST */
        }
        fr->app_len = (fr->res.flags & CGI_F_CONTENT_LENGTH) ? fr->res.content_length : -1;
    }
    if (fr->hdr.len - fr->body_at > fr->handler->response_buffer_limit) begin_stream(fr);
}

static void on_stderr(fcgi_req_t *fr, const char *data, size_t len) {
    if (fr->err_total < STDERR_KEEP) {
        size_t keep = len < STDERR_KEEP - fr->err_total ? len : STDERR_KEEP - fr->err_total;
        buf_append(&fr->errtext, data, keep);
        char tag[160];
        snprintf(tag, sizeof(tag), "%s[%d] request %" PRIu64 " stderr: ", fr->app->name, (int)fr->pid, fr->id);
        log_lines(LOG_LEVEL_WARN, tag, data, keep);
        if (fr->wk) worker_note_stderr(fr->wk, data, keep); /* for a crash report */
    }
    fr->err_total += len;
    if (len) {
        /* Every line is counted once, when it starts (records may split lines). */
        uint64_t nl = 0;
        for (const char *q = data, *end = data + len; (q = memchr(q, '\n', (size_t)(end - q)));
             q++)
            nl++;
        uint64_t lines = fr->err_open_line && nl > 0 ? nl - 1 : nl;
        bool open_now = data[len - 1] != '\n';
        if (open_now && !(fr->err_open_line && nl == 0)) lines++;
        fr->err_open_line = open_now;
        if (fr->wk && lines) pool_count_stderr(worker_pool(fr->wk), lines);
    }
    if (fr->app->stderr_mode == CFG_STDERR_TERMINATE) {
        fr->kill_after = true;
        if (fr->state == FR_HEAD || fr->state == FR_HOLDING) {
            refuse_with_stderr(fr);
            fr_finish(fr, POOL_RELEASE_KILL);
        }
    }
}

static void on_end_request(fcgi_req_t *fr, bool trailing) {
    request_t *r = fr->r;
    fr->t_last = now_ms(fr);
    pool_release_t how = fr->writes ? POOL_RELEASE_CLOSE : POOL_RELEASE_OK;
    if (trailing) { /* what follows END_REQUEST belongs to no request: never to the next one */
        log_req(fr, LOG_LEVEL_WARN, "the application sent data after END_REQUEST", "the process is ended");
        how = POOL_RELEASE_KILL;
    }
    if (fr->kill_after) how = POOL_RELEASE_KILL;
    if (fr->err_total > STDERR_KEEP) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%" PRIu64 " more bytes of stderr not logged", fr->err_total - STDERR_KEEP);
        log_req(fr, LOG_LEVEL_WARN, msg, NULL);
    }
    if (fr_answering(fr)) {
        if (fr->state == FR_HEAD) {
            if (stderr_refuses(fr)) {
                refuse_with_stderr(fr);
            } else {
                log_req(fr, LOG_LEVEL_ERROR, "the application ended the request without response headers", NULL);
                fail_client(fr, 502, "the application sent no response");
            }
        } else if (fr->state == FR_STREAMING) {
            if (fr->app_len >= 0 && fr->body_out < (uint64_t)fr->app_len && body_expected(fr)) {
                log_req(fr, LOG_LEVEL_WARN, "the application sent less than its Content-Length",
                        "connection closed");
                fail_client(fr, 502, NULL); /* headers went out: cuts the connection */
            } else {
                fr->r = NULL;
                r->hctx = NULL;
                resp_finish(r);
            }
        } else if (stderr_refuses(fr)) {
            refuse_with_stderr(fr);
        } else {
            /* The whole response was held: one write, length-delimited by the application's
             * Content-Length when it gave one (SPEC §3), else by what it sent. */
            size_t held = fr->hdr.len - fr->body_at;
            build_head(fr);
            /* HEAD: the application sends no body, so GET's length is known only when it said. */
            int64_t announce = r->head_only && held == 0 ? -1 : (int64_t)held;
            if (fr->app_len >= 0) {
                announce = fr->app_len;
                if (body_expected(fr) && held > (uint64_t)fr->app_len) {
                    note_surplus(fr, held - (uint64_t)fr->app_len);
                    held = (size_t)fr->app_len;
                } else if (body_expected(fr) && held < (uint64_t)fr->app_len) {
                    /* Nothing went out yet: a clean error rather than a body cut short. */
                    log_req(fr, LOG_LEVEL_ERROR, "the application sent less than its Content-Length", NULL);
                    fail_client(fr, 502, "the application sent an incomplete response");
                    fr_finish(fr, how);
                    return;
                } else if (!body_expected(fr)) {
                    held = 0;
                }
            }
            char *copy = xmalloc(held ? held : 1);
            memcpy(copy, fr->hdr.data + fr->body_at, held);
            fr->r = NULL;
            r->hctx = NULL;
            uv_buf_t b = uv_buf_init(copy, (unsigned)held);
            resp_send(r, announce, &b, 1, resp_free_ctx, copy);
            resp_finish(r);
        }
    }
    fr_finish(fr, how);
}

/* After pool_release_gone: the process that closed its connection has ended. SPEC 4.11: only a
 * clean exit (status 0, on its own) proves it never ran the request; anything else may have. */
static void on_gone_exit(void *data, bool clean) {
    fcgi_req_t *fr = data;
    fr->exit_cb_pending = false;
    if (fr->state == FR_DONE) {
        maybe_free(fr);
        return;
    }
    if (fr->r == NULL) { /* the client left meanwhile */
        fr_finish(fr, POOL_RELEASE_OK);
        return;
    }
    if (clean) {
        log_req(fr, LOG_LEVEL_INFO, "the process exited on its own before answering, sending the request to another", NULL);
        fr->waiter.prefer_fresh = true; /* not one that may be about to leave the same way */
        fr_set_state(fr, FR_QUEUED);
        pool_acquire(fr->pool, &fr->waiter, fr->waiter.cb);
        return;
    }
    log_req(fr, LOG_LEVEL_ERROR, "the application closed the connection mid-request", "and did not exit cleanly");
    fail_client(fr, 502, "the application ended unexpectedly");
    fr_finish(fr, POOL_RELEASE_OK);
}

/* The process went away (EOF or error on its connection) before END_REQUEST. SPEC 4.11: the
 * request may go to another process only when nothing of it can have been processed — a reused
 * connection, closed before any byte of answer, the body held in full or not sent yet — and,
 * known only once the process is reaped, it exited on its own with status 0 (php-cgi after
 * PHP_FCGI_MAX_REQUESTS). At most MAX_ATTEMPTS processes per request. */
static void on_worker_lost(fcgi_req_t *fr, const char *why) {
    worker_read_stop(fr->wk);
    fr->reading = false;
    if (fr->r && fr->attempt_rx == 0 && worker_requests(fr->wk) > 0 && fr->replayable &&
        fr->attempts < MAX_ATTEMPTS) {
        worker_t *wk = fr->wk;
        fr->wk = NULL;
        fr->exit_cb_pending = true;
        fr_set_state(fr, FR_WAIT_EXIT);
        uv_timer_stop(&fr->timer); /* the pool bounds the wait (the grace of a closed process) */
        pool_release_gone(wk, on_gone_exit, fr);
        return;
    }
    log_req(fr, LOG_LEVEL_ERROR, "the application closed the connection mid-request", why);
    fail_client(fr, 502, "the application ended unexpectedly");
    fr_finish(fr, POOL_RELEASE_DEAD);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    fcgi_req_t *fr = h->data;
    *buf = uv_buf_init(fr->rbuf, READ_BUF);
}

static void on_worker_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    fcgi_req_t *fr = st->data;
    if (nread == 0) return;
    if (nread < 0) {
        on_worker_lost(fr, nread == UV_EOF ? "end of stream" : uv_strerror((int)nread));
        return;
    }
    fr->activity = now_ms(fr);
    if (fr->attempt_rx == 0) fr->t_first = fr->activity;
    fr->attempt_rx += (uint64_t)nread;
    const char *p = buf->base;
    size_t left = (size_t)nread;
    while (left && fr->state != FR_DONE) {
        fcgi_event_t ev;
        size_t used = 0;
        int kind = fcgi_decoder_next(&fr->dec, p, left, &used, &ev);
        p += used;
        left -= used;
        if (kind < 0) {
            log_req(fr, LOG_LEVEL_ERROR, "FastCGI protocol error", fcgi_strerror(kind));
            fail_client(fr, 502, "the application broke the FastCGI protocol");
            fr_finish(fr, POOL_RELEASE_KILL);
            return;
        }
        switch (kind) {
        case FCGI_EV_STDOUT:
            fr->got_output = true;
            on_stdout(fr, ev.data.p, ev.data.len);
            break;
        case FCGI_EV_STDERR:
            fr->got_output = true;
            on_stderr(fr, ev.data.p, ev.data.len);
            break;
        case FCGI_EV_END_REQUEST: on_end_request(fr, left > 0); return;
        default: break; /* GET_VALUES_RESULT / UNKNOWN_TYPE: nothing to do */
        }
        if (kind == FCGI_EV_NEED_MORE) break;
    }
    /* What the application wrote so far reaches the client now, also through a content coding
     * (its flushes are kept: a streamed page is seen as it is written). */
    if (fr->state == FR_STREAMING && fr->r) resp_flush(fr->r);
}

/* ---- timeouts ---- */

static void on_timer(uv_timer_t *t) {
    fcgi_req_t *fr = t->data;
    uint64_t now = now_ms(fr);
    uint64_t act = (uint64_t)fr->app->activity_timeout * 1000u;
    uint64_t req = (uint64_t)fr->app->request_timeout * 1000u;
    const char *which = NULL;
    if (req && now - fr->started >= req) which = "requestTimeout";
    else if (act && now - fr->activity >= act) which = "activityTimeout";
    if (which == NULL) {
        uint64_t next = 1000;
        if (act && fr->activity + act > now) next = fr->activity + act - now;
        if (req && fr->started + req > now && fr->started + req - now < next) next = fr->started + req - now;
        uv_timer_start(t, on_timer, next < 50 ? 50 : next, 0);
        return;
    }
    log_req(fr, LOG_LEVEL_ERROR, which, "the process is ended");
    fail_client(fr, 500, which);
    fr_finish(fr, POOL_RELEASE_KILL);
}

/* ---- attempts and the pool ---- */

static void on_acquired(pool_waiter_t *w, worker_t *wk, int status) {
    fcgi_req_t *fr = w->data;
    if (status != 0) {
        const char *why = status == POOL_EQUEUE_FULL ? "queue full"
                          : status == POOL_EFAILED   ? "application failed (rapid fails)"
                          : status == POOL_ESTOPPING ? "application stopping"
                                                     : "cannot start the application";
        log_req(fr, LOG_LEVEL_WARN, "503", why);
        if (fr->r) fr->r->retry_after = pool_retry_after(fr->pool); /* SPEC 4.12 */
        fail_client(fr, 503, why);
        fr_finish(fr, POOL_RELEASE_OK);
        return;
    }
    fr->wk = wk;
    fr->pid = worker_pid(wk);
    fr->t_connected = now_ms(fr);
    fr->t_sent = fr->t_first = 0; /* this attempt's */
    if (fr->r) /* for `ctl status` and a crash report (SPEC 4.12) */
        worker_set_request(wk, fr->r->http.method.p, fr->r->http.method.len, fr->r->http.target.p,
                           fr->r->http.target.len);
    fr_set_state(fr, FR_HEAD);
    fr->attempts++;
    fr->attempt_rx = 0;
    start_attempt(fr);
}

static void start_attempt(fcgi_req_t *fr) {
    uv_stream_t *st = worker_stream(fr->wk);
    st->data = fr;
    fcgi_decoder_init(&fr->dec, fr->reqid);
    fr->started = fr->activity = now_ms(fr);
    uv_timer_start(&fr->timer, on_timer, 1000, 0);
    if (worker_read_start(fr->wk, on_alloc, on_worker_read) == 0) fr->reading = true;
    /* A replay sends every kept block again (only a replayable request is ever retried, and its
     * blocks are all still kept). */
    fr->body_unwritten = 0;
    for (blk_t *b = fr->blocks; b; b = b->next) {
        b->written = b->done = false;
        fr->body_unwritten += b->len;
    }
    if (fr->body_end && fr->spill_fd < 0 && !fr->end_queued) {
        append_block(fr, NULL, 0, true);
        fr->end_queued = true;
    }
    /* The params and the first block leave in one write: an application that does not read its
     * STDIN (libfcgi's hello world) must find the whole request in its first read, or the unread
     * empty STDIN record is taken for the next request's first record and the connection dropped. */
    blk_t *first = fr->blocks;
    uv_buf_t bufs[2] = {uv_buf_init(fr->params.data, (unsigned)fr->params.len)};
    unsigned n = 1;
    if (first) {
        bufs[n++] = uv_buf_init(first->data, (unsigned)first->len);
        first->written = true;
        fr->body_unwritten -= first->len;
    }
    worker_write_head(fr, bufs, n, first);
    fr->spill_sent = 0;
    fr->spill_reading = false;
    if (fr->spill_fd >= 0) fr->end_queued = false;
    pump(fr);
    note_sent(fr); /* all of it may have been written at once */
}

static void maybe_free(fcgi_req_t *fr) {
    if (fr->writes || fr->exit_cb_pending || !uv_is_closing((uv_handle_t *)&fr->timer) || fr->timer.data != NULL) return;
    free_blocks(fr);
    http_body_release(fr->hs, fr->body_held);
    buf_dispose(&fr->params);
    buf_dispose(&fr->hdr);
    buf_dispose(&fr->errtext);
    free(fr->what);
    if (fr->spill_fd >= 0) close(fr->spill_fd);
    rbuf_put(fr->rbuf);
    gen_unref(fr->gen);
    free(fr);
}

static void on_timer_closed(uv_handle_t *h) {
    fcgi_req_t *fr = h->data;
    fr->timer.data = NULL;
    maybe_free(fr);
}

/* The exchange is over: give the process back and free once our writes have completed. */
/* The request is fully written to the process: its end record went out and no write is pending. */
static void note_sent(fcgi_req_t *fr) {
    if (fr->t_sent || !fr->end_queued || fr->writes || fr->body_unwritten ||
        (fr->spill_fd >= 0 && fr->spill_sent < fr->spill_len))
        return;
    fr->t_sent = now_ms(fr);
}

/* "1.234 s" since the request arrived, or "-" when the phase was not reached. */
static void phase(char *out, size_t size, const fcgi_req_t *fr, uint64_t t) {
    if (t == 0) snprintf(out, size, "-");
    else snprintf(out, size, "%.3f s", (double)(t - fr->t_arrived) / 1000);
}

/* slowRequestSeconds (SPEC 4.12): one line once a slow request has ended, with the time at which
 * each phase ended, counted from its arrival at the handler: queued (it waited for a process
 * from then on), connected (a process took it), request sent (its last byte was written), first
 * byte and last byte (END_REQUEST) of the answer. */
static void log_if_slow(fcgi_req_t *fr) {
    unsigned limit = fr->app->slow_request_seconds;
    uint64_t now = now_ms(fr), total = now - fr->t_arrived;
    if (limit == 0 || total < (uint64_t)limit * 1000) return;
    char q[32], c[32], s[32], f[32], l[32];
    phase(q, sizeof(q), fr, fr->t_queued);
    phase(c, sizeof(c), fr, fr->t_connected);
    phase(s, sizeof(s), fr, fr->t_sent);
    phase(f, sizeof(f), fr, fr->t_first);
    phase(l, sizeof(l), fr, fr->t_last);
    log_warn("%s[%d] request %" PRIu64 " (%s): slow: %.3f s (slowRequestSeconds = %u): queued %s, "
             "connected %s, request sent %s, first byte %s, last byte %s",
             fr->app->name, (int)fr->pid, fr->id, fr->what ? fr->what : "-", (double)total / 1000,
             limit, q, c, s, f, l);
    pool_count_slow(fr->pool);
}

static void fr_finish(fcgi_req_t *fr, pool_release_t how) {
    if (fr->state == FR_DONE) return;
    log_if_slow(fr);
    fr_set_state(fr, FR_DONE);
    if (fr->r) {
        fr->r->hctx = NULL;
        fr->r = NULL;
    }
    if (fr->waiter.queued) pool_cancel(fr->pool, &fr->waiter);
    if (fr->wk) {
        worker_read_detach(fr->wk); /* pool_release keeps it reading when it goes back idle */
        if (how == POOL_RELEASE_OK && fr->writes) how = POOL_RELEASE_CLOSE;
        pool_release(fr->wk, how);
        fr->wk = NULL;
    }
    uv_close((uv_handle_t *)&fr->timer, on_timer_closed);
}

static void on_abort(request_t *r) {
    fcgi_req_t *fr = r->hctx;
    if (fr == NULL) return;
    fr->r = NULL;
    r->hctx = NULL;
    if (fr->state == FR_WAIT_EXIT) return; /* on_gone_exit finishes: it sees no client */
    if (fr->wk == NULL) {
        fr_finish(fr, POOL_RELEASE_OK); /* still collecting or queued */
        return;
    }
    /* Let the process finish this request (its output is dropped) so it stays usable. */
    fr_set_state(fr, FR_DRAINING);
    log_req(fr, LOG_LEVEL_INFO, "client went away, draining the process", NULL);
    if (!fr->body_end) {
        fr->body_end = true;
        pump(fr);
    }
    if (!fr->reading) {
        if (worker_read_start(fr->wk, on_alloc, on_worker_read) == 0) fr->reading = true;
    }
}

static const request_handler_t fcgi_handler = {
    .name = "fastcgi",
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_abort = on_abort,
};

/* ---- building the request ---- */

static void addr_strings(request_t *r, char *local, size_t llen, char *lport, char *remote, size_t rlen,
                         char *rport) {
    local[0] = remote[0] = lport[0] = rport[0] = '\0';
    if (r->peer.family == AF_UNIX) {
        snprintf(remote, rlen, "127.0.0.1");
        snprintf(local, llen, "127.0.0.1");
        snprintf(lport, 8, "0");
        snprintf(rport, 8, "0");
        return;
    }
    req_peer_str(r, remote, rlen);
    snprintf(rport, 8, "%u", (unsigned)r->peer.port);
    unsigned port;
    req_local_addr(r, local, llen, &port);
    if (local[0]) snprintf(lport, 8, "%u", port);
}

static str_t host_name(str_t host) {
    if (host.len && host.p[0] == '[') {
        const char *rb = memchr(host.p, ']', host.len);
        return rb ? str_make(host.p, (size_t)(rb - host.p + 1)) : host;
    }
    const char *colon = memchr(host.p, ':', host.len);
    return colon ? str_make(host.p, (size_t)(colon - host.p)) : host;
}

static void build_params(fcgi_req_t *fr) {
    request_t *r = fr->r;
    char local[64], lport[8], remote[64], rport[8];
    addr_strings(r, local, sizeof(local), lport, remote, sizeof(remote), rport);
    size_t sl = fr->script_len;
    /* The script's file: under the alias directory that covers it, else under the site root. */
    char *script = xstrndup(r->path, sl);
    const char *rest;
    const http_root_t *dir = http_site_map(r->site, sl ? script : "/", &rest);
    char *filename = sl ? xasprintf("%s%s", strcmp(dir->real, "/") ? dir->real : "", rest)
                        : xstrdup(dir->real);
    free(script);
    const char *root = r->site->cfg->root;
    cgi_vars_t v = {
        .request_id = fr->reqid,
        /* An errorPage answer is a GET of the page (HEAD stays HEAD). */
        .method = r->error_page && r->http.method_id == HTTP_METHOD_GET ? STR_LIT("GET")
                                                                         : r->http.method,
        .request_uri = r->http.target,
        .query = r->has_query ? r->query : STR_LIT(""),
        .script_name = str_make(r->path, sl),
        .path_info = str_make(r->path + sl, r->path_len - sl),
        .document_uri = str_make(r->path, r->path_len),
        .document_root = str_make(root, strlen(root)),
        .script_filename = str_make(filename, strlen(filename)),
        .server_addr = str_make(local, strlen(local)),
        .server_port = str_make(lport, strlen(lport)),
        .server_name = r->http.host.len ? host_name(r->http.host) : str_make(local, strlen(local)),
        .remote_addr = str_make(remote, strlen(remote)),
        .remote_port = str_make(rport, strlen(rport)),
        .https = r->https,
        .ssl_protocol = r->tls_version,
        .minor_version = r->http.minor_version,
        .http2 = r->http2,
        .content_length = r->error_page ? -1
                          : r->body_chunked ? (int64_t)r->body_total
                                            : (r->http.content_length >= 0 ? r->http.content_length : -1),
        .headers = r->http.headers,
        .n_headers = r->http.num_headers,
        .utf8_all = fr->app->utf8_all,
        .utf8_vars = fr->app->utf8_vars,
        .n_utf8_vars = fr->app->n_utf8_vars,
    };
    char err[128];
    int rc = cgi_params_build(&v, &fr->params, err, sizeof(err));
    free(filename);
    if (rc < 0) {
        log_req(fr, LOG_LEVEL_INFO, "refused", err);
        fail_client(fr, 400, err);
        fr_finish(fr, POOL_RELEASE_OK);
        return;
    }
    fr->params_built = true;
}

/* resourceType (SPEC §3): 0 to go on, or the status to answer without contacting the app. */
static int check_resource(request_t *r, const cfg_handler_t *h, size_t script_len) {
    if (h->resource_type == CFG_RESOURCE_UNSPECIFIED) return 0;
    char *script = xstrndup(r->path, script_len ? script_len : 1);
    static_kind_t k = static_probe(r->srv, r->site, script);
    free(script);
    if (k == STATIC_FORBIDDEN) return 403;
    if (k == STATIC_UNAVAILABLE) return 503;
    switch (h->resource_type) {
    case CFG_RESOURCE_FILE: return k == STATIC_FILE ? 0 : 404;
    case CFG_RESOURCE_DIRECTORY: return k == STATIC_DIR ? 0 : 404;
    case CFG_RESOURCE_EITHER: return k == STATIC_FILE || k == STATIC_DIR ? 0 : 404;
    default: return 0;
    }
}

void fcgi_serve(request_t *r, size_t handler_index, size_t script_len) {
    const cfg_handler_t *h = &r->gen->cfg->handlers[handler_index];
    int st = check_resource(r, h, script_len);
    if (st) {
        resp_error(r, st, NULL);
        return;
    }
    fcgi_req_t *fr = xcalloc(1, sizeof(*fr));
    fr->r = r;
    fr->loop = r->loop;
    fr->hs = r->srv;
    fr->gen = gen_ref(r->gen);
    fr->handler = h;
    fr->pool = fr->gen->pools[h->app_index];
    fr->app = pool_app(fr->pool); /* live settings: the pool's own copy */
    fr->id = ++next_id;
    fr->reqid = (uint16_t)(fr->id % 65535u + 1u);
    fr->spill_fd = -1;
    fr->app_len = -1;
    fr->replayable = true;
    fr->rbuf = rbuf_get();
    fr->t_arrived = uv_now(r->loop);
    if (fr->app->slow_request_seconds) /* named in its slow-request line */
        fr->what = xasprintf("%.*s %.*s", (int)r->http.method.len, r->http.method.p,
                             (int)r->http.target.len, r->http.target.p);
    fr->waiter.data = fr;
    fr->waiter.cb = on_acquired;
    fr->script_len = script_len;
    buf_init(&fr->params);
    buf_init(&fr->hdr);
    buf_init(&fr->errtext);
    uv_timer_init(r->loop, &fr->timer);
    fr->timer.data = fr;
    r->handler = &fcgi_handler;
    r->hctx = fr;
    r->app = fr->gen->cfg->apps[h->app_index].name; /* lives as long as r: it holds the generation */
    if (!r->error_page) resp_continue(r);
    fr->state = FR_COLLECTING;
    if (r->body_chunked && !r->body_complete && !r->error_page)
        return; /* acquired in on_body_end */
    build_params(fr);
    if (!fr->params_built) return;
    fr->body_end = r->body_complete || r->error_page;
    fr->t_queued = now_ms(fr);
    fr_set_state(fr, FR_QUEUED);
    pool_acquire(fr->pool, &fr->waiter, on_acquired);
}
