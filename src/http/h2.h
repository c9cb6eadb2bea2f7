/* HTTP/2 (SPEC §7) on nghttp2: one session per connection, one request_t per stream. Internal to
 * src/http: conn.c drives the session (bytes in, frames out), response.c turns a response into
 * HEADERS and DATA; handlers see the same request API as over HTTP/1.1 (docs/design.md, "HTTP/2").
 *
 * Output: each stream queues the body pieces its handler gave (with their write callbacks); the
 * session pulls them into DATA frames as the peer's flow-control windows allow, so a stream whose
 * window is closed keeps its pieces, its handler sees resp_queued_bytes() grow and slows its
 * application down. Frames go to the socket while libuv's queue for it stays short.
 * Input: DATA is handed to the stream's handler; what it does not take waits in the stream and is
 * acknowledged (WINDOW_UPDATE) only once taken, so a client can have at most the window in flight.
 *
 * Lifetimes: a stream is freed once nghttp2 closed it, its request let go of it and its pieces'
 * callbacks ran; callbacks run from the connection's own pass (h2_process / h2_on_write_done) or
 * from its close callback, never inside nghttp2 or under a handler's call (except, as over
 * HTTP/1.1, with UV_ECANCELED for a request whose client already left). */
#ifndef FCGIHOST_HTTP_H2_H
#define FCGIHOST_HTTP_H2_H
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "http/request.h"

typedef struct h2_conn h2_conn_t;

/* The client connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") at the start of p[0..n):
 * 1 when it is there in full, 0 when p cannot be its start, -1 when p is a proper prefix of it. */
int h2_preface(const char *p, size_t n);

/* Start HTTP/2 on c (ALPN chose h2, or an h2c listener saw the preface); queues our SETTINGS. */
void h2_start(conn_t *c);
/* Feed plaintext from the client. False on a connection error (the session is over). */
bool h2_feed(conn_t *c, const char *data, size_t n);
/* After input or when woken: deliver bodies a handler resumed, send what is ready, run the
 * callbacks of consumed pieces. */
void h2_pump(conn_t *c);
/* The session is over (GOAWAY exchanged, or a fatal error) and all is sent: close. */
bool h2_done(const conn_t *c);
/* Streams with a request in progress. */
unsigned h2_active(const conn_t *c);
/* Maintenance tick: bodyTimeout and sendTimeout per stream (408 or a reset). */
void h2_sweep(conn_t *c, uint64_t now);
/* Graceful stop: GOAWAY, finish the streams in progress. */
void h2_begin_stop(conn_t *c);
/* conn_close: every request still attached is abandoned (its on_abort comes from the deferred
 * pass). */
void h2_closing(conn_t *c);
/* The connection's close callback: run what callbacks remain (UV_ECANCELED), free everything. */
void h2_free(conn_t *c);

/* ---- for response.c and conn.c's req_* (r->h2s != NULL) ---- */

/* The response head: `head` is the HTTP/1.1-style block response.c built (status line, fields,
 * blank line), turned into HEADERS; body[0..nbody) (may be empty) is the first of the body, whose
 * callback cb runs once it was taken. end: no body follows (resp_finish will come). */
void h2_respond(request_t *r, const char *head, size_t head_len, const uv_buf_t *body,
                unsigned nbody, char *owned, resp_write_cb cb, void *ctx);
/* Body bytes; `owned` (may be NULL) is freed once they were taken. */
void h2_write(request_t *r, const uv_buf_t *bufs, unsigned n, char *owned, resp_write_cb cb, void *ctx);
/* The response is complete: END_STREAM after what is queued; the request is logged and let go. */
void h2_finish(request_t *r);
/* 100 Continue (an interim HEADERS). */
void h2_continue(request_t *r);
/* Body bytes given and not yet taken into frames. */
size_t h2_queued_bytes(const request_t *r);
/* The handler takes body bytes again. */
void h2_resume_body(request_t *r);
/* The response cannot complete: reset the stream (the connection and its other streams go on). */
void h2_abort(request_t *r);

#endif
