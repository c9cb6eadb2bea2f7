/* One FastCGI process: its listening socket, uv_spawn through the fcgihost trampoline, captured
 * stdout/stderr, the connection the pool leases, signals (§4.4) and the exit callback.
 *
 * The pool (pool.c) decides; this file carries out. Every uv handle here is embedded in the worker
 * and the worker is freed only from the last close callback (see pool_int.h). */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/identity.h"
#include "util/log.h"
#include "util/xalloc.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define WORKER_BACKLOG 64
#define WORKER_CONNECT_TRIES 5  /* connect attempts before the process is given up */
#define WORKER_RETRY_MS 100     /* × attempt number */
#define WORKER_GRACE_MS 2000    /* a process whose connection closed gets this long to exit */
#define WORKER_DRAIN_MS 500     /* after exit, how long to wait for the rest of its output */
#define WORKER_PROBE_MS 2000    /* SPEC 4.9: an application that ignores FCGI_GET_VALUES is ready
                                   after this grace */

/* FCGI_GET_VALUES (request id 0) asking for FCGI_MPXS_CONNS: content = one name-value pair (name
 * length 15, value length 0, the name), 17 bytes, padded to 24. Written out by hand: pool/ does
 * not use the FastCGI codec (fastcgi/ sits above it), and this record never changes. */
static const char probe_record[32] = {
    1, 9, 0, 0, 0, 17, 7, 0,                                              /* header */
    15, 0, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O', 'N', 'N', 'S', /* pair */
    0, 0, 0, 0, 0, 0, 0,                                                  /* padding */
};

/* One read buffer for every pipe and idle connection this file reads: libuv calls alloc_cb,
 * read(2), then read_cb before the next alloc_cb, and every callback consumes the bytes at once. */
static char read_buf[65536];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    buf->base = read_buf;
    buf->len = sizeof(read_buf);
}

/* ---- Handles and freeing ---- */

static void worker_maybe_free(worker_t *wk) {
    if (!wk->finishing || wk->open_handles || wk->pending_closes) return;
    pool_t *p = wk->pool;
    if (wk->sock_path && !wk->slot) unlink(wk->sock_path); /* the leader's file */
    free(wk->sock_path);
    free(wk->tag);
    pool_remove_worker(wk);
    free(wk);
    pool_on_worker_freed(p); /* may free the pool: nothing after this */
}

static void on_closed(uv_handle_t *h) {
    worker_t *wk = h->data;
    wk->pending_closes--;
    worker_maybe_free(wk);
}

static void close_handle(worker_t *wk, uv_handle_t *h, uv_close_cb cb) {
    wk->open_handles--;
    wk->pending_closes++;
    uv_close(h, cb ? cb : on_closed);
}

static void close_timer(worker_t *wk) {
    if (!wk->timer_open) return;
    wk->timer_open = false;
    close_handle(wk, (uv_handle_t *)&wk->timer, NULL);
}

static void timer_start(worker_t *wk, worker_timer_kind_t kind, uint64_t ms);

/* ---- Captured stdout / stderr ---- */

#define LOG_RATE_BYTES (64u * 1024u)   /* per second and process, of its own fd 1 and fd 2 */
#define LOG_BURST_BYTES (256u * 1024u)

static void note_dropped(worker_t *wk) {
    if (wk->log_dropped == 0) return;
    log_warn("%s%" PRIu64 " line(s), %" PRIu64 " bytes of output not logged (more than %u bytes/s)",
             wk->tag, wk->log_dropped_lines, wk->log_dropped, LOG_RATE_BYTES);
    wk->log_dropped = wk->log_dropped_lines = 0;
}

/* May this many bytes go to the log now? */
static bool log_budget_take(worker_t *wk, size_t n) {
    uint64_t now = uv_now(wk->pool->loop);
    if (wk->log_budget_ms == 0) {
        wk->log_budget = LOG_BURST_BYTES;
    } else if (now > wk->log_budget_ms) {
        uint64_t add = (now - wk->log_budget_ms) * LOG_RATE_BYTES / 1000u;
        wk->log_budget = wk->log_budget + add > LOG_BURST_BYTES ? LOG_BURST_BYTES : wk->log_budget + add;
    }
    wk->log_budget_ms = now;
    if (wk->log_budget < n) return false;
    wk->log_budget -= n;
    return true;
}

void worker_keep_line(worker_t *wk, const char *line, size_t len) {
    if (len && line[len - 1] == '\r') len--;
    if (len == 0) return;
    if (len > POOL_CRASH_LINE_MAX - 1) len = POOL_CRASH_LINE_MAX - 1;
    char *slot = wk->err_keep[wk->err_keep_next];
    memcpy(slot, line, len);
    slot[len] = '\0';
    wk->err_keep_next = (wk->err_keep_next + 1) % POOL_CRASH_LINES;
    if (wk->err_keep_n < POOL_CRASH_LINES) wk->err_keep_n++;
}

void worker_note_stderr(worker_t *wk, const char *data, size_t len) {
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        worker_keep_line(wk, data, n);
        n += nl != NULL;
        data += n;
        len -= n;
    }
}

static void linebuf_emit(worker_t *wk, worker_linebuf_t *lb, log_level_t lvl) {
    if (lb->len && lb == &wk->err_line) worker_keep_line(wk, lb->data, lb->len);
    if (lb->len) {
        if (log_budget_take(wk, lb->len)) {
            note_dropped(wk);
            log_lines(lvl, wk->tag, lb->data, lb->len);
        } else {
            wk->log_dropped += lb->len;
            wk->log_dropped_lines++;
        }
        if (lb == &wk->err_line) pool_count_stderr(wk->pool, 1);
    }
    lb->len = 0;
}

/* Log complete lines; a line longer than WORKER_LINE_MAX is logged cut and the rest dropped. */
static void linebuf_feed(worker_t *wk, worker_linebuf_t *lb, log_level_t lvl, const char *p,
                         size_t n) {
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (!lb->cutting) {
            size_t room = sizeof(lb->data) - lb->len;
            size_t c = take < room ? take : room;
            memcpy(lb->data + lb->len, p, c);
            lb->len += c;
            if (take > room) {
                linebuf_emit(wk, lb, lvl);
                lb->cutting = true;
            }
        }
        if (nl) {
            if (!lb->cutting) linebuf_emit(wk, lb, lvl);
            lb->cutting = false;
            lb->len = 0;
            take++;
        }
        p += take;
        n -= take;
    }
}

static void close_output(worker_t *wk, bool is_err) {
    bool *open = is_err ? &wk->err_open : &wk->out_open;
    if (!*open) return;
    *open = false;
    linebuf_emit(wk, is_err ? &wk->err_line : &wk->out_line,
                 is_err ? LOG_LEVEL_WARN : LOG_LEVEL_INFO);
    if (!wk->out_open && !wk->err_open) note_dropped(wk);
    close_handle(wk, (uv_handle_t *)(is_err ? &wk->err : &wk->out), NULL);
    if (!wk->out_open && !wk->err_open && wk->crash_pending) pool_report_crash(wk);
}

static void on_output(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    worker_t *wk = s->data;
    bool is_err = s == (uv_stream_t *)&wk->err;
    if (nread > 0) {
        linebuf_feed(wk, is_err ? &wk->err_line : &wk->out_line,
                     is_err ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) return;
    close_output(wk, is_err); /* EOF or error: every writer (the process, its children) is gone */
    if (wk->finishing && !wk->out_open && !wk->err_open) close_timer(wk);
}

/* ---- The connection ---- */

/* The connection's close callback: the lessee may have changed handle->data, so the worker is
 * found by address. A reconnect waits for this because the handle memory is reused. */
static void on_conn_closed(uv_handle_t *h) {
    worker_t *wk = container_of(h, worker_t, conn.handle);
    wk->conn_state = WORKER_CONN_NONE;
    wk->pending_closes--;
    if (wk->reconnect) {
        wk->reconnect = false;
        if (wk->state == WORKER_STATE_STARTING && wk->alive && !wk->finishing) worker_connect(wk);
    }
    worker_maybe_free(wk);
}

void worker_close_conn(worker_t *wk) {
    if (wk->conn_state != WORKER_CONN_OPEN) return;
    wk->probing = false;
    wk->conn_state = WORKER_CONN_CLOSING;
    wk->conn_reading = false;
    worker_read_detach(wk);
    close_handle(wk, &wk->conn.handle, on_conn_closed);
}

static void connect_failed(worker_t *wk, int status) {
    worker_close_conn(wk);
    if (wk->state != WORKER_STATE_STARTING || !wk->alive) return; /* the exit path took over */
    if (wk->connect_tries < WORKER_CONNECT_TRIES) {
        log_debug("%sconnect failed (%s), retrying", wk->tag, uv_strerror(status));
        timer_start(wk, WORKER_TIMER_RETRY, (uint64_t)WORKER_RETRY_MS * wk->connect_tries);
        return;
    }
    log_error("%scannot connect to its socket after %u attempts: %s", wk->tag, wk->connect_tries,
              uv_strerror(status));
    pool_on_worker_connect_failed(wk);
}

static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- Readiness (SPEC 4.9) ----
 *
 * The listening socket is the server's own, made before the fork, so a connection to it succeeds
 * at once, long before the application has loaded and calls accept(). A process is therefore
 * "starting" (for maxConcurrentStarts) until it answers an FCGI_GET_VALUES record, which php-cgi,
 * libfcgi and the other FastCGI libraries answer from their accept loop; an application that
 * ignores it is taken as ready after WORKER_PROBE_MS.
 *
 * The probe's connection then becomes the process's connection, once the answer record has been
 * read whole (so no byte of it is taken for part of a request): libfcgi (C, Perl, Ruby) drops a
 * unix-socket connection on which nothing arrives within 2 s of its accept(), so a connection
 * opened after the probe would be dropped under an idle process (minInstances). php-cgi closes
 * the connection once it has answered a management record: for php-cgi (fullPath) the worker
 * connects again at once; for another program that does the same, the end of a kept probe
 * connection before any request is taken the same way, not as an exit. */

static void worker_set_ready(worker_t *wk) {
    if (wk->ready) return;
    wk->ready = true;
    if (!wk->slot) wk->pool->n_unready--; /* a group starts as one process */
}

static void probe_done(worker_t *wk, const char *how) {
    log_debug("%sready (%s)", wk->tag, how);
    if (wk->timer_kind == WORKER_TIMER_PROBE) {
        uv_timer_stop(&wk->timer);
        wk->timer_kind = WORKER_TIMER_NONE;
    }
    worker_set_ready(wk);
    worker_close_conn(wk);
    if (wk->state == WORKER_STATE_STARTING && wk->alive && !wk->finishing) {
        wk->connect_tries = 0;
        worker_connect(wk); /* once the probe's handle is closed */
    }
}

/* Feed bytes of the answer record to the probe's reader. Returns 1 when the record is complete,
 * 0 when more is to come, -1 when bytes follow the record. */
static int probe_feed(worker_t *wk, const unsigned char *p, size_t n) {
    while (n > 0 && wk->probe_have < sizeof(wk->probe_hdr)) {
        wk->probe_hdr[wk->probe_have++] = *p++;
        n--;
        if (wk->probe_have == sizeof(wk->probe_hdr))
            wk->probe_left = ((uint32_t)wk->probe_hdr[4] << 8 | wk->probe_hdr[5]) + wk->probe_hdr[6];
    }
    size_t skip = n < wk->probe_left ? n : wk->probe_left;
    wk->probe_left -= (uint32_t)skip;
    n -= skip;
    if (wk->probe_have < sizeof(wk->probe_hdr) || wk->probe_left > 0) return 0;
    return n > 0 ? -1 : 1;
}

/* The answer was read whole (or none came in time): the process is ready. */
static void probe_answered(worker_t *wk, const char *how) {
    if (pool_policy_is_php_cgi(wk->pool->app.full_path)) { /* it closes this connection itself */
        probe_done(wk, how);
        return;
    }
    log_debug("%sready (%s)", wk->tag, how);
    if (wk->timer_kind == WORKER_TIMER_PROBE) {
        uv_timer_stop(&wk->timer);
        wk->timer_kind = WORKER_TIMER_NONE;
    }
    worker_set_ready(wk);
    wk->probing = false;
    wk->probe_kept = true;
    pool_on_worker_connected(wk);
}

static void probe_start(worker_t *wk) {
    uv_buf_t b = uv_buf_init((char *)probe_record, sizeof(probe_record));
    wk->probing = true;
    wk->probe_have = 0;
    wk->probe_left = 0;
    /* A fresh connection's send buffer takes 32 bytes at once, or the connection is broken. */
    if (uv_try_write(&wk->conn.stream, &b, 1) != (int)sizeof(probe_record)) {
        probe_done(wk, "the probe could not be sent");
        return;
    }
    int r = uv_read_start(&wk->conn.stream, on_conn_alloc, on_conn_read);
    if (r < 0) {
        probe_done(wk, uv_strerror(r));
        return;
    }
    wk->conn_reading = true;
    timer_start(wk, WORKER_TIMER_PROBE, WORKER_PROBE_MS);
}

/* Any answer record will do: the process has reached its accept loop. It is read to its end
 * (header, then content and padding as the header says). EOF, an error or bytes beyond the record
 * end the probe on a new connection: a process that is dying is handled by the exit path; one
 * that lives is used. */
static void on_probe_read(worker_t *wk, ssize_t nread, const uv_buf_t *buf) {
    if (nread == 0) return;
    if (nread < 0) {
        probe_done(wk, "closed the probe without answering");
        return;
    }
    int r = probe_feed(wk, (const unsigned char *)buf->base, (size_t)nread);
    if (r < 0) probe_done(wk, "answered FCGI_GET_VALUES, and more");
    else if (r > 0) probe_answered(wk, "answered FCGI_GET_VALUES");
}

static void on_connect(uv_connect_t *req, int status) {
    worker_t *wk = container_of(req, worker_t, connect_req);
    /* ECANCELED: the handle was closed under the request (the worker is being ended). */
    if (status == UV_ECANCELED || wk->conn_state != WORKER_CONN_OPEN) return;
    if (status < 0) {
        connect_failed(wk, status);
        return;
    }
    wk->connect_tries = 0;
    if (!wk->ready) {
        probe_start(wk);
        return;
    }
    pool_on_worker_connected(wk);
}

void worker_connect(worker_t *wk) {
    if (wk->conn_state == WORKER_CONN_CLOSING) {
        wk->reconnect = true;
        return;
    }
    assert(wk->conn_state == WORKER_CONN_NONE);
    uv_loop_t *loop = wk->pool->loop;
    wk->connect_tries++;
    wk->conn_state = WORKER_CONN_OPEN;
    wk->open_handles++;
    if (wk->protocol == CFG_PROTOCOL_UNIX) {
        uv_pipe_init(loop, &wk->conn.pipe, 0);
        uv_pipe_connect(&wk->connect_req, &wk->conn.pipe, wk->sock_path, on_connect);
        return;
    }
    uv_tcp_init(loop, &wk->conn.tcp);
    int r = uv_tcp_connect(&wk->connect_req, &wk->conn.tcp, (const struct sockaddr *)&wk->tcp_addr,
                           on_connect);
    if (r < 0) connect_failed(wk, r);
}

/* While idle the pool reads the connection itself: EOF means the process is going away (php-cgi
 * after PHP_FCGI_MAX_REQUESTS); bytes mean it is confused about the protocol. */
static void on_idle_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    worker_t *wk = container_of(s, worker_t, conn.stream);
    if (nread == 0) return;
    if (nread > 0 && wk->probe_late) { /* the late answer to the probe */
        int r = probe_feed(wk, (const unsigned char *)buf->base, (size_t)nread);
        if (r >= 0) {
            wk->probe_late = r == 0;
            return;
        }
        wk->probe_late = false;
    }
    if (nread > 0) {
        log_warn("%ssent %zd bytes outside a request", wk->tag, nread);
        worker_end(wk, "sent data outside a request");
        return;
    }
    if (wk->probe_kept && wk->completed == 0 && wk->state == WORKER_STATE_IDLE) {
        /* the end of the probe's connection (a program that closes it after a management
         * record, as php-cgi does): connect again rather than take it for an exit */
        log_debug("%sclosed the probe's connection: connecting again", wk->tag);
        wk->probe_kept = false;
        worker_close_conn(wk);
        pool_set_state(wk, WORKER_STATE_STARTING);
        wk->connect_tries = 0;
        worker_connect(wk);
        return;
    }
    log_debug("%sidle connection closed: %s", wk->tag, uv_strerror((int)nread));
    worker_expect_exit(wk, "closed its connection");
}

/* The connection's read callbacks, for the whole of its life: the lessee's while it has set
 * them, the pool's idle watch otherwise. */
static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    worker_t *wk = container_of(h, worker_t, conn.handle);
    if (wk->lessee_read) wk->lessee_alloc(h, suggested, buf);
    else on_alloc(h, suggested, buf);
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    worker_t *wk = container_of(s, worker_t, conn.stream);
    if (wk->lessee_read) wk->lessee_read(s, nread, buf);
    else if (wk->probing) on_probe_read(wk, nread, buf);
    else on_idle_read(s, nread, buf);
}

static int conn_read_on(worker_t *wk) {
    if (wk->conn_state != WORKER_CONN_OPEN) return UV_EINVAL;
    if (wk->conn_reading) return 0;
    int r = uv_read_start(&wk->conn.stream, on_conn_alloc, on_conn_read);
    if (r == 0) wk->conn_reading = true;
    return r;
}

int worker_read_start(worker_t *wk, uv_alloc_cb alloc, uv_read_cb read) {
    wk->lessee_alloc = alloc;
    wk->lessee_read = read;
    return conn_read_on(wk);
}

void worker_read_stop(worker_t *wk) {
    if (wk->conn_state == WORKER_CONN_OPEN && wk->conn_reading) uv_read_stop(&wk->conn.stream);
    wk->conn_reading = false;
}

void worker_read_detach(worker_t *wk) {
    wk->lessee_alloc = NULL;
    wk->lessee_read = NULL;
}

void worker_watch(worker_t *wk) {
    if (wk->conn_state != WORKER_CONN_OPEN) return;
    wk->conn.handle.data = wk;
    worker_read_detach(wk);
    int r = conn_read_on(wk);
    if (r < 0) worker_expect_exit(wk, "connection unusable");
}

void worker_unwatch(worker_t *wk) {
    /* Reading goes on: the lessee points it at its callbacks at once (worker_read_start). */
    worker_read_detach(wk);
}

/* ---- Ending ---- */

static void send_signal(worker_t *wk, int sig) {
    /* A process of another user, started by the privileged helper: only the helper may signal it
     * (it signals the group as below, and only its own live children). */
    if (wk->via_helper) {
        int r = privsep_kill(&wk->hproc, sig);
        if (r < 0 && r != UV_ESRCH)
            log_warn("%scannot send signal %d: %s", wk->tag, sig, uv_strerror(r));
        return;
    }
    /* The process leads its own session and process group (UV_PROCESS_DETACHED), so signalling the
     * group also reaches children it forked (php-cgi with PHP_FCGI_CHILDREN). Until libuv reaps the
     * leader its pid cannot be reused, so the group id is still ours. */
    int r = uv_kill(-wk->pid, sig);
    if (r < 0) r = uv_process_kill(&wk->proc, sig);
    if (r < 0 && r != UV_ESRCH)
        log_warn("%scannot send signal %d: %s", wk->tag, sig, uv_strerror(r));
}

/* The §4.4 sequence on a live process: SIGTERM and SIGKILL at the deadline, or SIGKILL. */
static void end_process(worker_t *wk, const char *reason) {
    wk->term_sent = true;
    if (wk->timer_open) uv_timer_stop(&wk->timer);
    wk->timer_kind = WORKER_TIMER_NONE;
    unsigned secs = wk->pool->app.signal_before_terminate_seconds;
    log_debug("%sending it (%s), %s", wk->tag, reason, secs ? "SIGTERM" : "SIGKILL");
    if (secs == 0) {
        send_signal(wk, SIGKILL);
        return;
    }
    send_signal(wk, SIGTERM);
    timer_start(wk, WORKER_TIMER_KILL, (uint64_t)secs * 1000);
}

/* A member that is not leased leaves its ending group: no connection, STOPPING (not counted)
 * until the group's process exits; finished at once when the process is already gone. */
static void member_stop(worker_t *m, const char *reason) {
    if (m->finishing) return;
    if (!m->alive) {
        worker_finish(m);
        return;
    }
    worker_close_conn(m);
    if (m->requested) return;
    m->requested = true;
    snprintf(m->reason, sizeof(m->reason), "%s", reason);
    pool_set_state(m, WORKER_STATE_STOPPING);
    if (m->timer_open && m->timer_kind != WORKER_TIMER_KILL) {
        uv_timer_stop(&m->timer); /* a connect retry or the probe: nothing to wait for now */
        m->timer_kind = WORKER_TIMER_NONE;
    }
}

/* End a prefork group (SPEC 4.9b): the members not leased stop now, the leased ones finish their
 * request (DRAINING: nothing new is sent to the group); the process gets the §4.4 sequence once no
 * member is leased. Called again as each drained member is released (retire_if_due). */
void worker_end_group(pool_t *p, unsigned group, const char *reason) {
    worker_t *leader = NULL;
    bool leased = false;
    for (worker_t *m = p->workers; m; m = m->next) {
        if (m->group != group) continue;
        if (!m->slot) leader = m;
        if (m->leased) {
            if (m->state == WORKER_STATE_BUSY) {
                snprintf(m->reason, sizeof(m->reason), "%s", reason);
                pool_set_state(m, WORKER_STATE_DRAINING);
            }
            leased = true;
            continue;
        }
        member_stop(m, reason); /* never frees synchronously: m->next stays valid */
    }
    if (!leased && leader && leader->alive && !leader->term_sent) end_process(leader, reason);
}

void worker_end(worker_t *wk, const char *reason) {
    assert(!wk->leased);
    if (wk->finishing) return;
    if (wk->group) {
        worker_end_group(wk->pool, wk->group, reason);
        return;
    }
    if (!wk->alive) {
        worker_finish(wk);
        return;
    }
    worker_close_conn(wk);
    if (wk->requested) return; /* already ending: the §4.4 sequence is under way */
    wk->requested = true;
    snprintf(wk->reason, sizeof(wk->reason), "%s", reason);
    pool_set_state(wk, WORKER_STATE_STOPPING);
    end_process(wk, reason);
}

void worker_kill(worker_t *wk) {
    if (wk->alive && wk->pid > 0 && !wk->slot) send_signal(wk, SIGKILL);
}

void worker_reconnect(worker_t *wk, const char *why) {
    log_info("%sconnection ended (%s): its group lives, connecting again", wk->tag, why);
    if (wk->gone_cb) { /* a child's exit status is its master's to see: no proof of a clean one */
        void (*cb)(void *, bool) = wk->gone_cb;
        wk->gone_cb = NULL;
        cb(wk->gone_data, false);
    }
    worker_close_conn(wk);
    wk->probe_kept = wk->probe_late = false;
    pool_set_state(wk, WORKER_STATE_STARTING);
    wk->connect_tries = 0;
    worker_connect(wk);
}

void worker_expect_exit(worker_t *wk, const char *why) {
    if (wk->finishing) return;
    if (wk->group) {
        /* One child's connection ended, not the group's process: php-cgi's master forks a
         * replacement, which accepts the new connection. A group that is ending ends. */
        if (wk->alive && !wk->requested && (wk->state == WORKER_STATE_IDLE ||
                                            wk->state == WORKER_STATE_BUSY ||
                                            wk->state == WORKER_STATE_STARTING))
            worker_reconnect(wk, why);
        else
            worker_end(wk, why);
        return;
    }
    worker_close_conn(wk);
    if (!wk->alive) {
        worker_finish(wk);
        return;
    }
    if (wk->state == WORKER_STATE_STOPPING) return;
    snprintf(wk->reason, sizeof(wk->reason), "%s", why);
    pool_set_state(wk, WORKER_STATE_STOPPING);
    timer_start(wk, WORKER_TIMER_GRACE, WORKER_GRACE_MS);
}

void worker_finish(worker_t *wk) {
    if (wk->finishing) return;
    assert(!wk->leased && !wk->alive);
    wk->finishing = true;
    if (wk->gone_cb) { /* pool_release_gone's lessee still waits: the exit was not a clean one */
        void (*cb)(void *, bool) = wk->gone_cb;
        wk->gone_cb = NULL;
        cb(wk->gone_data, false);
    }
    pool_set_state(wk, WORKER_STATE_CLOSING);
    worker_close_conn(wk);
    if (wk->proc_open) {
        wk->proc_open = false;
        close_handle(wk, (uv_handle_t *)&wk->proc, NULL);
    }
    if (wk->timer_open) uv_timer_stop(&wk->timer);
    if ((wk->out_open || wk->err_open) && wk->pid != 0) {
        timer_start(wk, WORKER_TIMER_DRAIN, WORKER_DRAIN_MS);
        return;
    }
    close_output(wk, false);
    close_output(wk, true);
    close_timer(wk);
}

static void on_timer(uv_timer_t *t) {
    worker_t *wk = t->data;
    worker_timer_kind_t kind = wk->timer_kind;
    wk->timer_kind = WORKER_TIMER_NONE;
    switch (kind) {
    case WORKER_TIMER_RETRY:
        if (wk->state == WORKER_STATE_STARTING && wk->alive && wk->conn_state != WORKER_CONN_OPEN)
            worker_connect(wk);
        break;
    case WORKER_TIMER_GRACE:
        if (wk->alive && !wk->slot) worker_end(wk, "still running after its connection closed");
        break;
    case WORKER_TIMER_KILL:
        if (!wk->alive || wk->slot) break;
        log_warn("%sstill running %u s after SIGTERM: SIGKILL", wk->tag,
                 wk->pool->app.signal_before_terminate_seconds);
        send_signal(wk, SIGKILL);
        break;
    case WORKER_TIMER_DRAIN:
        close_output(wk, false);
        close_output(wk, true);
        close_timer(wk);
        break;
    case WORKER_TIMER_PROBE:
        if (wk->probing) {
            wk->probe_late = true; /* a slow start: its answer may come while it is idle */
            probe_answered(wk, "no answer to FCGI_GET_VALUES within 2 s");
        }
        break;
    case WORKER_TIMER_NONE: break;
    }
}

static void timer_start(worker_t *wk, worker_timer_kind_t kind, uint64_t ms) {
    if (!wk->timer_open) return;
    wk->timer_kind = kind;
    uv_timer_start(&wk->timer, on_timer, ms, 0);
}

/* Processes the application forked stay in its process group after it exits (php-cgi with
 * PHP_FCGI_CHILDREN, a wrapper script that did not exec): they are FastCGI processes nobody
 * manages, so they go with it. The group id cannot have been reused: a group id stays taken while
 * any member lives, and the leader was reaped only just now. */
static void sweep_group(worker_t *wk) {
    if (uv_kill(-wk->pid, SIGKILL) == 0)
        log_debug("%skilled what was left of its process group", wk->tag);
}

static void worker_exited(worker_t *wk, int64_t status, int term_signal) {
    if (wk->group && !wk->slot) {
        /* The group's process is gone: so is every slot's (its children went with its process
         * group, see sweep_group). The slots first, so that the pool counts none of them when
         * the leader's exit lets it start another group. */
        for (worker_t *m = wk->pool->workers; m; m = m->next)
            if (m->group == wk->group && m->slot && m->alive) worker_exited(m, status, term_signal);
    }
    worker_set_ready(wk); /* no longer starting, whatever it was */
    wk->alive = false;
    if (!wk->slot) wk->pool->n_alive--;
    if (wk->timer_open && wk->timer_kind != WORKER_TIMER_DRAIN) {
        uv_timer_stop(&wk->timer);
        wk->timer_kind = WORKER_TIMER_NONE;
    }
    pool_on_worker_exit(wk, status, term_signal);
}

static void on_worker_exit(uv_process_t *proc, int64_t status, int term_signal) {
    worker_t *wk = proc->data;
    sweep_group(wk);
    worker_exited(wk, status, term_signal);
}

/* The helper reaped it and swept its group already. */
static void on_helper_exit(privsep_proc_t *hp, int64_t status, int term_signal) {
    worker_exited(hp->data, status, term_signal);
}

/* ---- Spawning ---- */

static int mkdir_p(const char *dir) {
    char *tmp = xstrdup(dir);
    int r = 0;
    for (char *s = tmp + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) r = -errno;
        *s = c;
        if (c == '\0' || r < 0) break;
    }
    free(tmp);
    return r;
}

/* The app's name as a file-name component: anything but [A-Za-z0-9._-] becomes '_'. */
static char *file_name_part(const char *name) {
    char *s = xstrdup(name);
    for (char *c = s; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '.' || *c == '_' || *c == '-';
        if (!ok) *c = '_';
    }
    return s;
}

/* A listening AF_UNIX socket at <runtimeDir>/<app>-<serverpid>-<seq>.sock. */
static int listen_unix(worker_t *wk, const char **what) {
    pool_t *p = wk->pool;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    *what = p->runtime_dir;
    int r = mkdir_p(p->runtime_dir);
    if (r < 0) return r;
    char *name = file_name_part(p->app.name);
    wk->sock_path = xasprintf("%s/%s-%ld-%u.sock", p->runtime_dir, name, (long)getpid(), wk->seq);
    free(name);
    *what = wk->sock_path;
    if (strlen(wk->sock_path) >= sizeof(sa.sun_path)) return UV_ENAMETOOLONG;
    memcpy(sa.sun_path, wk->sock_path, strlen(wk->sock_path) + 1);
    if (unlink(wk->sock_path) < 0 && errno != ENOENT) return -errno; /* a stale socket */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    /* Only the server connects to it (the process gets it open as fd 0): 0600, owned by the server's
     * user. On Linux bind() creates the file with the socket inode's mode, so setting it first
     * leaves no moment in which the file has a wider one (see server_user.h). */
    if (fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, WORKER_BACKLOG) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

/* A listening TCP socket on 127.0.0.1, ephemeral port. */
static int listen_tcp(worker_t *wk, const char **what) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    *what = "127.0.0.1:0";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, WORKER_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    wk->tcp_addr = sa;
    return fd;
}

/* The value of _FCGI_X_PIPE_: the socket path, or 127.0.0.1:PORT. */
static char *pipe_name(const worker_t *wk) {
    if (wk->sock_path) return xstrdup(wk->sock_path);
    return xasprintf("127.0.0.1:%u", (unsigned)ntohs(wk->tcp_addr.sin_port));
}

/* The app's `user` as the trampoline's <uid> <gid,groups> arguments (*gids NULL: keep the
 * server's identity). Only root can switch. A server that dropped root has the privileged helper
 * start the processes of the other users (wk->via_helper); without a helper it has refused, at
 * start or reload, every app whose user is not its own (server_user.h). */
static int resolve_user(worker_t *wk, long *uid, char **gids) {
    pool_t *p = wk->pool;
    *uid = -1;
    *gids = NULL;
    wk->via_helper = false;
    if (p->app.user == NULL) return 0;
    identity_t id;
    char err[256];
    int r = 0;
    if (identity_lookup(p->app.user, &id, err, sizeof(err)) < 0) {
        log_error("%s: cannot start a process: %s", p->app.name, err);
        return UV_ENOENT;
    }
    if (geteuid() == 0) {
        *uid = (long)id.uid;
        *gids = identity_format_groups(&id);
    } else if (id.uid != geteuid() && privsep_active()) {
        wk->via_helper = true;
    } else if (id.uid != geteuid()) {
        log_error("%s: cannot start a process as %s: the server does not run as root and no "
                  "privileged spawn helper runs", p->app.name, id.name);
        r = UV_EPERM;
    }
    identity_dispose(&id);
    return r;
}

/* Catch a missing program here: the trampoline would only report it from the child, after a fork,
 * as one more rapid fail. */
static int check_program(const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) return UV_EACCES;
    return 0;
}

typedef struct strv {
    char **v;
    size_t n, cap;
} strv_t;

static void strv_push(strv_t *s, char *e) {
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = e;
    s->v[s->n] = NULL;
}

/* Add NAME=value, replacing an entry with the same name (later settings win). */
static void env_put(strv_t *s, char *e) {
    const char *eq = strchr(e, '=');
    size_t nl = eq ? (size_t)(eq - e) : strlen(e);
    for (size_t i = 0; i < s->n; i++) {
        if (strncmp(s->v[i], e, nl) == 0 && (s->v[i][nl] == '=' || s->v[i][nl] == '\0')) {
            s->v[i] = e;
            return;
        }
    }
    strv_push(s, e);
}

/* The environment: the server's, then _FCGI_X_PIPE_, then the app's `env` (§4.1), then for a
 * prefork group (SPEC 4.9b) PHP_FCGI_CHILDREN=N, PHP_FCGI_MAX_REQUESTS=0 (the children never end
 * on their own: the pool recycles the whole group after N times the request limit, see
 * update_limits) and the trampoline's parent-death signal (pool_child_main). Entries are borrowed
 * except `own` and `children`, which the caller frees. */
static void build_env(const pool_t *p, strv_t *env, char *own, char *children) {
    extern char **environ;
    for (char **e = environ; e && *e; e++) env_put(env, *e);
    env_put(env, own);
    for (size_t i = 0; i < p->app.n_env; i++) env_put(env, p->app.env[i]);
    if (children) {
        env_put(env, children);
        env_put(env, "PHP_FCGI_MAX_REQUESTS=0");
        env_put(env, POOL_PDEATHSIG_ENV "=TERM");
    }
}

/* The read end of a new pipe into `h` (an initialized uv_pipe_t); the write end in *w. */
static int open_output(uv_pipe_t *h, int *w) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return -errno;
    int r = uv_pipe_open(h, fds[0]);
    if (r < 0) {
        close(fds[0]);
        close(fds[1]);
        return r;
    }
    *w = fds[1];
    return 0;
}

/* A process of another user, through the privileged helper (privsep.h): the same trampoline,
 * arguments and environment as the direct path, with the output pipes made here. Logs failures. */
static int spawn_via_helper(worker_t *wk, int fd, char **argv, char **env) {
    pool_t *p = wk->pool;
    int out_w = -1, err_w = -1;
    char err[1024] = "";
    int r = open_output(&wk->out, &out_w);
    if (r == 0) r = open_output(&wk->err, &err_w);
    if (r < 0) snprintf(err, sizeof(err), "pipe: %s", uv_strerror(r));
    if (r == 0) {
        privsep_spawn_req_t req = {.app = p->app.name, .full_path = p->app.full_path,
                                   .user = p->app.user, .argv = argv, .env = env,
                                   .fds = {fd, out_w, err_w}};
        wk->hproc.data = wk;
        r = privsep_spawn(&wk->hproc, &req, on_helper_exit, err, sizeof(err));
    }
    if (out_w >= 0) close(out_w);
    if (err_w >= 0) close(err_w);
    if (r < 0) {
        log_error("%s: cannot start a process as %s: %s", p->app.name, p->app.user, err);
        return r;
    }
    wk->pid = wk->hproc.pid;
    return 0;
}

static int spawn_process(worker_t *wk, int fd, long uid, char *gids) {
    pool_t *p = wk->pool;
    char uids[24];
    snprintf(uids, sizeof(uids), "%ld", uid);
    strv_t args = {0}, env = {0};
    strv_push(&args, p->exe);
    strv_push(&args, POOL_SPAWN_ARG);
    strv_push(&args, uids);
    strv_push(&args, gids ? gids : "-1");
    strv_push(&args, p->app.full_path);
    if (p->app.argv && p->app.argv[0]) {
        for (char **a = p->app.argv; *a; a++) strv_push(&args, *a);
    } else {
        strv_push(&args, p->app.full_path);
    }
    char *name = pipe_name(wk);
    char *pipe_env = xasprintf("_FCGI_X_PIPE_=%s", name);
    free(name);
    unsigned n = pool_group_size(p);
    char *children = n ? xasprintf("PHP_FCGI_CHILDREN=%u", n) : NULL;
    build_env(p, &env, pipe_env, children);
    if (wk->via_helper) {
        int r = spawn_via_helper(wk, fd, args.v + 5, env.v);
        free(args.v);
        free(env.v);
        free(pipe_env);
        free(children);
        return r;
    }

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_INHERIT_FD; /* FCGI_LISTENSOCK_FILENO */
    stdio[0].data.fd = fd;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&wk->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&wk->err;
    uv_process_options_t opt = {
        .exit_cb = on_worker_exit,
        .file = p->exe,
        .args = args.v,
        .env = env.v,
        /* Own session: a terminal's Ctrl-C does not reach the apps; the server ends them itself. */
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    /* uv_spawn initializes the handle even when it fails: it must be closed either way. */
    wk->proc_open = true;
    wk->open_handles++;
    wk->proc.data = wk;
    int r = uv_spawn(p->loop, &wk->proc, &opt);
    if (r == 0) wk->pid = wk->proc.pid;
    free(args.v);
    free(env.v);
    free(pipe_env);
    free(children);
    return r;
}

static void worker_started(worker_t *wk) {
    pool_t *p = wk->pool;
    wk->alive = true;
    p->n_alive++;
    wk->ready = false;
    p->n_unready++;
    free(wk->tag);
    wk->tag = xasprintf("%s[%ld]: ", p->app.name, (long)wk->pid);
    uv_read_start((uv_stream_t *)&wk->out, on_alloc, on_output);
    uv_read_start((uv_stream_t *)&wk->err, on_alloc, on_output);
    char *name = pipe_name(wk);
    log_info("%s: started process %ld on %s", p->app.name, (long)wk->pid, name);
    free(name);
    worker_connect(wk);
}

/* Slot i (2..N) of the prefork group `leader` heads (SPEC 4.9b): one more connection to the
 * group's socket, which one of its children accepts. It probes readiness as the leader does. */
static void slot_start(worker_t *leader, unsigned i) {
    pool_t *p = leader->pool;
    worker_t *wk = xcalloc(1, sizeof(*wk));
    wk->pool = p;
    wk->seq = leader->seq;
    wk->group = leader->seq;
    wk->slot = true;
    wk->protocol = leader->protocol;
    wk->sock_path = leader->sock_path ? xstrdup(leader->sock_path) : NULL;
    wk->tcp_addr = leader->tcp_addr;
    wk->started_ms = leader->started_ms;
    wk->epoch = leader->epoch; /* a group is one process of one generation */
    wk->pid = leader->pid;
    wk->via_helper = leader->via_helper;
    wk->tag = xasprintf("%s[%ld/%u]: ", p->app.name, (long)leader->pid, i);
    pool_add_worker(p, wk);
    uv_timer_init(p->loop, &wk->timer);
    wk->timer.data = wk;
    wk->timer_open = true;
    wk->open_handles++;
    wk->alive = true; /* the leader's process */
    worker_connect(wk);
}

static void init_handles(worker_t *wk) {
    uv_loop_t *loop = wk->pool->loop;
    uv_timer_init(loop, &wk->timer);
    uv_pipe_init(loop, &wk->out, 0);
    uv_pipe_init(loop, &wk->err, 0);
    wk->timer.data = wk->out.data = wk->err.data = wk;
    wk->timer_open = wk->out_open = wk->err_open = true;
    wk->open_handles += 3;
}

/* Everything before the fork, logging what failed. Returns the listening socket or an error. */
static int prepare(worker_t *wk, long *uid, char **gids) {
    pool_t *p = wk->pool;
    const char *what = p->app.full_path;
    int r = check_program(p->app.full_path);
    if (r == 0 && (r = resolve_user(wk, uid, gids)) < 0) return r; /* logged */
    if (r == 0)
        r = wk->protocol == CFG_PROTOCOL_TCP ? listen_tcp(wk, &what) : listen_unix(wk, &what);
    if (r < 0) log_error("%s: cannot start a process: %s: %s", p->app.name, what, uv_strerror(r));
    return r;
}

int worker_spawn(pool_t *p) {
    worker_t *wk = xcalloc(1, sizeof(*wk));
    wk->pool = p;
    wk->seq = ++p->seq;
    wk->epoch = p->epoch;
    wk->protocol = p->app.protocol;
    wk->started_ms = uv_now(p->loop);
    wk->tag = xasprintf("%s[-]: ", p->app.name);
    pool_add_worker(p, wk);
    init_handles(wk);

    long uid = -1;
    char *gids = NULL;
    int fd = prepare(wk, &uid, &gids);
    int r = fd;
    if (fd >= 0) {
        r = spawn_process(wk, fd, uid, gids);
        close(fd); /* the child has its own copy on fd 0; ours must not keep it open */
        if (r < 0 && !wk->via_helper) /* the helper path logged why */
            log_error("%s: cannot start a process: spawning %s: %s", p->app.name, p->exe,
                      uv_strerror(r));
    }
    free(gids);
    if (r < 0) {
        worker_finish(wk); /* frees it once the handles are closed */
        return r;
    }
    worker_started(wk);
    unsigned n = pool_group_size(p);
    if (n) {
        wk->group = wk->seq;
        for (unsigned i = 2; i <= n; i++) slot_start(wk, i);
    }
    return 0;
}
