/* The HTTP layer's server: what connections, requests and the static-file handler share. It is
 * embedded in the program's server (server_t.http), which fills in the hooks: src/http includes
 * nothing of src/server*.c or src/fastcgi (docs/design.md, "Modules").
 *
 * The owner keeps `gen` current (a reload swaps it; requests hold their own reference) and sets
 * `stopping`; the HTTP layer owns the rest. */
#ifndef FCGIHOST_HTTP_HTTP_SERVER_H
#define FCGIHOST_HTTP_HTTP_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/generation.h"
#include "util/buf.h"

typedef struct conn conn_t;
typedef struct request request_t;
typedef struct file_cache file_cache_t;
typedef struct mime_table mime_table_t;

typedef struct http_server {
    uv_loop_t *loop;
    gen_t *gen;               /* the current generation (the owner's reference) */
    bool stopping;            /* the owner's graceful stop: no keep-alive, idle connections close */
    conn_t *conns;            /* all open connections (intrusive list) */
    size_t n_conns;
    struct conn_peers *peers; /* open connections per client address (conn.c, maxConnectionsPerIp) */
    uint64_t held_body_bytes; /* request bodies held in memory by handlers (http_body_hold) */
    uint64_t compressed, compress_in, compress_out; /* coded responses and their bytes (response.c) */
    uint64_t h2_conns, h2_streams; /* HTTP/2 connections and requests since start (h2.c) */

    /* Static files (static.c): the file cache, content types. The document roots are the
     * sites' (site.h, in each generation). */
    file_cache_t *files;
    mime_table_t *mime;

    /* Access-log targets of every site and generation (site.c); the owner calls
     * http_logs_flush once per loop iteration. */
    struct http_log *logs;
    char **listen_texts;      /* http_listen_id's table */
    size_t n_listen_texts;
    char date[40];            /* IMF-fixdate of the current second (http_date) */
    int64_t date_sec;

    /* The deferred pass (conn.c): work that must not run under a caller's stack — on_abort of
     * requests whose client left, and continuing a connection after a handler finished its
     * request — runs from this check handle, right after the poll phase; the idle handle keeps
     * the poll from blocking while work is pending. */
    uv_check_t defer_check;
    uv_idle_t defer_idle;
    request_t *defer_aborts;  /* each holds a reference */
    request_t *defer_routes;  /* errorPage re-routings (dispatch.c); each holds a reference */
    conn_t *defer_conns;

    /* Hooks, set by the owner before the first connection. */
    void *owner;
    /* A response ended (for counters and histograms); app is NULL or "-" for non-FastCGI. */
    void (*on_response)(void *owner, const char *app, int status, double secs);
    /* A connection closed (a stopping server finishes once none is left). */
    void (*on_conn_closed)(void *owner);
    /* Tried first for every request (the status page); true when it answered. */
    bool (*intercept)(request_t *r);
    /* A handler mapping ([handler:NAME] index) selected the request: the FastCGI module. */
    void (*serve_mapped)(request_t *r, size_t handler_index, size_t script_len);
    /* No mapping took the request: static files (static_serve). */
    void (*serve_file)(request_t *r);
} http_server_t;

/* "Sun, 22 Nov 2026 04:40:00 GMT" for the current second. */
const char *http_date(http_server_t *hs);

/* Request bodies held in memory, server-wide (SPEC §2): a handler that wants to keep n more body
 * bytes in memory asks first; past HTTP_HELD_BODY_MAX in all the answer is no and the bytes go
 * to a file in tempDir. What was granted is given back with http_body_release. */
#define HTTP_HELD_BODY_MAX (64u * 1024u * 1024u)
static inline bool http_body_hold(http_server_t *hs, size_t n) {
    if (hs->held_body_bytes + n > HTTP_HELD_BODY_MAX) return false;
    hs->held_body_bytes += n;
    return true;
}
static inline void http_body_release(http_server_t *hs, uint64_t n) {
    hs->held_body_bytes -= n;
}

#endif
