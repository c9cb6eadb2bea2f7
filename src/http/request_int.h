/* Internals shared by conn.c and response.c only. */
#ifndef FCGIHOST_HTTP_REQUEST_INT_H
#define FCGIHOST_HTTP_REQUEST_INT_H
#include "http/conn.h"
#include "http/request.h"

typedef struct wreq {
    uv_write_t w;
    conn_t *c;
    request_t *r;    /* NULL for connection-level writes (parse errors) */
    resp_write_cb cb;
    void *ctx;
    char *owned;     /* freed when the write completes */
} wreq_t;

/* Queue bufs on the connection; `owned` (may be NULL) is freed after the write. Over TLS the
 * bytes are encrypted at once (and `owned` freed then); cb still runs when the records are
 * written. */
void conn_queue_write(conn_t *c, request_t *r, const uv_buf_t *bufs, unsigned n, char *owned,
                      resp_write_cb cb, void *ctx);
/* The same for bytes that go to the socket as they are (TLS records). */
void conn_write_raw(conn_t *c, request_t *r, const uv_buf_t *bufs, unsigned n, char *owned,
                    resp_write_cb cb, void *ctx);
/* Connection-level bytes that need not outlive the call (HTTP/2 frames from a scratch buffer):
 * over TLS they are encrypted at once; in clear text only what the socket does not take at once
 * is copied and queued. */
void conn_write_transient(conn_t *c, const char *data, size_t len);
/* A write finished: continue pipelined work or finish a close. */
void conn_write_done(conn_t *c, int status);
/* A request from a parsed head whose bytes start at base (copied), on connection c, for site. The
 * connection's and the handler's references are taken. */
request_t *conn_new_request(conn_t *c, const http_request_t *h, const char *base, int head_len,
                            const struct http_site *site);
/* The request's access-log line (and the response hook). */
void conn_access_log(conn_t *c, request_t *r);
/* Detach a request whose client went away: on_abort follows from the deferred pass if the
 * handler has not finished; takes the caller's (the connection's) reference. */
void request_abandon(http_server_t *s, request_t *r);
/* Run conn_process from the deferred pass. */
void conn_wake(conn_t *c);
/* Will the connection have to close after answering r (a body we will not read to its end)? */
bool conn_must_close_after(const conn_t *c, const request_t *r);

#endif
