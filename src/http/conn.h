/* One client connection: reads, parses request heads, runs one request at a time (pipelined heads
 * wait their turn), writes responses in order, enforces the head, body, send and keep-alive
 * timeouts. */
#ifndef FCGIHOST_HTTP_CONN_H
#define FCGIHOST_HTTP_CONN_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http/http_server.h"

typedef struct request request_t;

typedef enum conn_state {
    CONN_STATE_IDLE,    /* between requests: no byte of the next one yet */
    CONN_STATE_HEAD,    /* some bytes of a head arrived: the headerTimeout deadline runs */
    CONN_STATE_ACTIVE,  /* a request is being served */
    CONN_STATE_LINGER,  /* answered and shut down for writing; discarding input until EOF */
    CONN_STATE_CLOSING, /* uv_close called; freed in the close callback */
} conn_state_t;

typedef struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    http_server_t *srv; /* borrowed */
    struct conn *prev, *next;
    char *rbuf;             /* NULL while idle: idle connections hold no read buffer */
    uint32_t rlen, rcap;
    uint32_t scanned;       /* bytes of rbuf already searched for the end of the head */
    uint32_t parsed_at;     /* rlen at the last full parse attempt */
    request_t *req;         /* the request being served, or NULL */
    uint64_t deadline;      /* loop time (ms) at which the current timeout fires; 0 = none:
                               headerTimeout (HEAD), keepAliveTimeout (IDLE), bodyTimeout (ACTIVE,
                               while the body is read), the linger (LINGER) */
    uint64_t send_since;    /* sendTimeout: loop ms since output has waited without progress
                               (0 = nothing waiting) */
    uint64_t send_mark;     /* the progress measure at send_since (see send_progress) */
    uint32_t writes_done;   /* completed writes: part of the progress measure */
    uint32_t served;        /* requests served on this connection */
    uint64_t discard;       /* bytes of a finished request's body still to skip */
    uint8_t state;          /* conn_state_t */
    bool reading;
    bool close_after;       /* close once the current response is written */
    bool is_unix;
    unsigned listen_id;      /* the listener it came in on (http_listen_id) */
    bool shutting;          /* uv_shutdown in progress */
    bool in_process;        /* inside conn_process: finishing a request must not recurse */
    bool peer_eof;          /* the client shut down its side */
    bool peer_counted;      /* counted in the server's per-address table (as counted_*) */
    bool proxy_wait;        /* a `proxy` listener's connection: its PROXY header has not come yet */
    struct http_tls *tls;   /* a `tls` listener's session (owned); NULL: clear text */
    struct h2_conn *h2;     /* the HTTP/2 session once ALPN or the preface chose it (owned) */
    bool h2c;               /* an `h2c` listener's: the HTTP/2 preface is accepted in clear text */
    bool tls_eof;           /* the client's close_notify came: end of input once rbuf is used */
    bool tls_notified;      /* our close_notify is queued */
    const struct http_site *refused_site; /* while a head is refused (conn_fail): its site */
    uint8_t peer_family;    /* AF_INET / AF_INET6 / AF_UNIX: the client (after a PROXY header, the
                               address it gave) */
    uint16_t peer_port;     /* host order */
    uint8_t peer_addr[16];
    uint8_t local_family;   /* the socket's own address, once asked for (0: not yet) */
    uint16_t local_port;
    uint8_t local_addr[16];
    uint8_t counted_family; /* the address counted for maxConnectionsPerIp */
    uint8_t counted_addr[16];
    unsigned pending_writes;
    bool deferred;          /* on the server's deferred list: conn_process runs from the pass */
    struct conn *defer_next;
} conn_t;

/* The deferred pass (see server_t): set up at start, closed at the end of a stop. */
void conn_defer_init(http_server_t *s);
void conn_defer_close(http_server_t *s);
/* Run what is pending now (also called once before the loop's handles close). */
void conn_defer_run(http_server_t *s);

/* Serve a connection accept() returned (fd: non-blocking; owned from here on, closed at once
 * when the client is over maxConnectionsPerIp); listen_id: its listener (http_listen_id); proxy:
 * the listener expects a PROXY protocol header first (the client it names is the one counted);
 * tls: TLS (after the PROXY header, when both), offering h2 by ALPN when `http2` is on; h2c: HTTP/2
 * with prior knowledge is accepted besides HTTP/1.1. */
void conn_accept(http_server_t *s, int fd, bool is_unix, unsigned listen_id, bool proxy, bool tls,
                 bool h2c);

/* Maintenance tick: fire expired deadlines, close connections whose client has taken nothing of a
 * response for sendTimeout. */
void conn_sweep(http_server_t *s, uint64_t now);

/* Graceful stop: close idle connections now; busy ones close after their current response. */
void conn_begin_stop(http_server_t *s);

/* Close the connection (idempotent). */
void conn_close(conn_t *c);

/* Format the peer address ("127.0.0.1", "::1", "unix") into out. */
void conn_peer_str(const conn_t *c, char *out, size_t outlen);

/* The request finished (response fully queued): log it, free it, continue with the next one. */
void conn_request_done(conn_t *c);


#endif
