/* A request in flight and the API its handler uses (docs/design.md, "Lifetimes").
 *
 * Lifetime: created by the connection when a head is complete and freed on its last reference.
 * References are held by the connection (while the request is its current one), by the handler
 * (from dispatch until resp_finish(), or until its on_abort returned), by each queued write, by
 * the deferred-abort list, and by any caller that must keep it across a call that may drop the
 * others (request_ref/request_unref).
 *
 * What a handler may rely on:
 *   - r stays valid until it calls resp_finish() or its on_abort returns, whatever it calls in
 *     between: no resp_* or req_* call frees r or runs on_abort under the caller. When the client
 *     goes away, on_abort runs later, from the server's deferred pass (a uv_check handle), at the
 *     top of the stack; resp_* calls made before then are accepted and dropped (their write
 *     callbacks run with UV_ECANCELED, possibly before the call returns).
 *   - A handler never touches conn_t: the req_* functions below give what it needs. */
#ifndef FCGIHOST_HTTP_REQUEST_H
#define FCGIHOST_HTTP_REQUEST_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http/chunked.h"
#include "http/encoding.h"
#include "http/parser.h"
#include "util/buf.h"

typedef struct conn conn_t;
typedef struct gen gen_t;
typedef struct request request_t;

/* What a handler provides so the connection can drive it. Any callback may be NULL. */
typedef struct request_handler {
    const char *name;
    /* A piece of the decoded request body. Return the number of bytes taken; taking fewer pauses
     * the body until the handler calls req_resume_body(). */
    size_t (*on_body)(request_t *r, const char *data, size_t len);
    /* The whole body has arrived (called once; also for requests without a body). */
    void (*on_body_end)(request_t *r);
    /* The client went away or the server gives up on the request: release everything now. */
    void (*on_abort)(request_t *r);
} request_handler_t;

typedef void (*resp_write_cb)(request_t *r, void *ctx, int status);

/* The client's address, copied from the connection (valid after the client left). */
typedef struct req_peer {
    uint8_t family;          /* AF_INET / AF_INET6 / AF_UNIX */
    uint16_t port;           /* host order */
    uint8_t addr[16];
} req_peer_t;

struct request {
    conn_t *conn;            /* private to src/http: NULL once detached (finished or abandoned) */
    struct http_server *srv; /* the HTTP server (its loop, caches) */
    uv_loop_t *loop;
    unsigned refs;
    bool aborted;            /* the client went away: on_abort is due or has run */
    request_t *defer_next;   /* on the server's deferred-abort list */
    request_t *route_next;   /* on the server's deferred re-routing list (errorPage) */
    req_peer_t peer;         /* the client: the TCP peer, or what a PROXY header or a trusted
                                proxy's X-Forwarded-For said */
    bool http2;              /* came over HTTP/2 (a stream of an HTTP/2 connection) */
    struct h2_stream *h2s;   /* private to src/http: its stream while attached */
    bool https;              /* came over TLS, or a trusted proxy's X-Forwarded-Proto said https */
    const char *tls_version; /* "TLSv1.3"... when it came over TLS (static string); else NULL */
    gen_t *gen;              /* the configuration generation this request runs under (a reference) */
    http_request_t http;     /* slices point into `head` */
    char *head;              /* owned copy of the request head */
    uint64_t start_ns;

    /* Request body framing. */
    int64_t body_left;       /* Content-Length bytes still to come */
    bool body_chunked;
    bool body_complete;
    bool body_paused;
    bool expect_continue;    /* a 100 Continue is owed before the body arrives */
    http_chunked_t chunks;
    size_t dec_pending;      /* decoded chunked bytes at the front of the read buffer, not taken yet */
    bool dec_ended;          /* the chunked body ended; only dec_pending bytes remain to deliver */
    uint64_t body_total;

    /* Response. */
    int status;
    buf_t resp_head;         /* header block being built */
    bool headers_sent;
    bool resp_chunked;       /* chunked response framing */
    bool resp_until_close;   /* HTTP/1.0 response of unknown length: close-delimited */
    bool head_only;          /* HEAD: headers but no body */
    bool finished;
    uint64_t resp_body_bytes;
    unsigned pending_writes; /* this request's writes not yet completed */
    const char *app;         /* application name for the access log ("-" for static) */
    char *path;              /* the decoded, checked URL path (NUL-terminated, owned): what the
                                routing made of the client's path (rewrite rules, index files,
                                fallback, errorPage) */
    size_t path_len;
    const struct http_site *site; /* the site Host chose (lives with r->gen); NULL before routing */
    unsigned listen_id;      /* the listener the connection came in on (http_listen_id) */
    str_t query;             /* the query string the routing produced (into head or query_buf) */
    bool has_query;
    char *query_buf;         /* owned storage of a rewritten query */
    unsigned reroutes;       /* rewrites and internal re-routings so far (at most 10) */
    int error_page;          /* the original status while an errorPage answers; else 0 */
    char *allow;             /* a 405's Allow value (owned), kept for its errorPage answer */
    unsigned retry_after;    /* a 503's Retry-After in seconds, set by its handler (kept for its
                                errorPage answer); 0: none */
    uint64_t header_rules;   /* bit i: the site's header rule i applies (set at resp_start) */
    bool no_compress;        /* the handler sends the body past resp_write (sendfile) */
    struct http_compressor *comp; /* the body's content coding while it streams (owned) */

    const request_handler_t *handler;
    void *hctx;              /* the handler's own state */
};

void request_ref(request_t *r);
/* Drop a reference; the last one frees the request. */
void request_unref(request_t *r);

/* The client has gone (or the connection failed): nothing more reaches it. */
bool req_client_gone(const request_t *r);
/* Resume reading the request body after the handler paused it (on_body took less). */
void req_resume_body(request_t *r);
/* Give up on the client: close the connection (a response that cannot be completed must not
 * look complete). on_abort follows from the deferred pass unless the handler finishes first. */
void req_abort(request_t *r);
/* Close the connection once this response is written (no keep-alive after it). Call before
 * the headers go out for a "Connection: close" to be announced. */
void req_close_after(request_t *r);
/* The client's address as text ("127.0.0.1", "::1", "unix"). */
void req_peer_str(const request_t *r, char *out, size_t outlen);
/* The local address and port the client connected to (empty strings when unknown or unix). */
void req_local_addr(const request_t *r, char *addr, size_t alen, unsigned *port);
/* A duplicate of the client socket's descriptor (for sendfile from the threadpool), or -1. */
int req_socket_dup(const request_t *r);

/* Send "100 Continue" if the client asked for it and it has not been sent (the handler is about to
 * read the body). */
void resp_continue(request_t *r);
/* Begin the response: status line and the standard headers (Date, Server). */
void resp_start(request_t *r, int status);
/* Same with the application's own reason phrase (empty: the standard one). */
void resp_start_reason(request_t *r, int status, const char *reason, size_t rlen);
/* Add a header (name without colon; value is written as given, the caller guarantees no CR/LF). */
void resp_header(request_t *r, const char *name, const char *value, size_t vlen);
/* The same with a counted name. A header that one of the site's [headers:NAME] rules sets for
 * this request is dropped here: the rule's value replaces it (SPEC §6). */
void resp_header_n(request_t *r, const char *name, size_t nlen, const char *value, size_t vlen);
void resp_header_str(request_t *r, const char *name, const char *value);
/* Finish the header block and queue it. content_length >= 0: length-delimited; -1: chunked for
 * HTTP/1.1 clients, close-delimited for HTTP/1.0. For HEAD the length is announced, no body sent. */
void resp_send_headers(request_t *r, int64_t content_length);
/* Same, and run cb once the header block has been written (before any body byte is queued). */
void resp_send_headers_cb(request_t *r, int64_t content_length, resp_write_cb cb, void *ctx);
/* A whole length-delimited response in one write: the header block and `body` (total `len` bytes;
 * the bytes must stay valid until cb runs — cb may be NULL for static or request-owned data).
 * HEAD and bodyless statuses send only the header block (cb still runs). Does not finish. */
void resp_send(request_t *r, int64_t len, const uv_buf_t *body, unsigned nbody, resp_write_cb cb, void *ctx);
/* Queue body bytes. The bytes must stay valid until `cb` runs (it always runs, status < 0 when the
 * connection failed; when the response is compressed the bytes are compressed at once and `cb`
 * runs before the call returns). `cb` may be NULL when the data is static or owned elsewhere for
 * long enough. */
void resp_write(request_t *r, const uv_buf_t *bufs, unsigned nbufs, resp_write_cb cb, void *ctx);
/* A resp_write_cb that frees ctx (for bytes the caller malloc'ed and hands over). */
void resp_free_ctx(request_t *r, void *ctx, int status);
/* Copy and queue body bytes. */
void resp_write_copy(request_t *r, const char *data, size_t len);
/* Push out what the content coding holds of the body written so far (a streaming application
 * flushed); nothing to do for an uncompressed body. */
void resp_flush(request_t *r);
/* The response is complete. The request is handed back to the connection. */
void resp_finish(request_t *r);
/* A complete short error response ("404 Not Found\n"): for statuses >= 400 with a one-line text. */
void resp_error(request_t *r, int status, const char *detail);
/* Whether a 200 of this media type and length (-1: unknown) would get a content coding for this
 * request's site (SPEC §7): its answers then vary on Accept-Encoding. */
bool resp_codable(const request_t *r, str_t content_type, int64_t len);
/* The coding this request's client takes among its site's (HTTP_ENC_IDENTITY when none). */
http_encoding_t resp_client_coding(const request_t *r);
/* Bytes queued on the connection and not yet written (for back-pressure decisions). */
size_t resp_queued_bytes(const request_t *r);

const char *http_status_reason(int status);

#endif
