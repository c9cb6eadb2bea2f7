/* TLS (SPEC §7) with OpenSSL, for connections that libuv reads and writes: OpenSSL never touches
 * a socket. Ciphertext read from the socket goes into the session's memory BIO (http_tls_feed);
 * records OpenSSL writes go straight into the session's output buffer (a BIO of our own, so a
 * response body is copied once, by the encryption itself), which the connection hands to libuv.
 *
 * Contexts: one SSL_CTX per certificate, built with each configuration generation (site.c) and
 * reference counted by OpenSSL, so a connection keeps the context it started with across
 * reloads. The client's SNI name picks the site's context (the servername callback); session
 * tickets are encrypted with server-wide keys that rotate every 12 hours (the previous key still
 * decrypts, so a ticket lives at most a day and survives reloads). */
#ifndef FCGIHOST_HTTP_TLS_H
#define FCGIHOST_HTTP_TLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/http_server.h"
#include "util/buf.h"

typedef struct ssl_ctx_st http_tls_ctx_t; /* OpenSSL's SSL_CTX */
typedef struct http_tls http_tls_t;

/* A context for cert (PEM, full chain) and key (PEM; NULL: in the certificate file) with the
 * server's settings: TLS 1.2 and 1.3 only, `ciphers` for TLS 1.2, tickets, SNI, ALPN. NULL with
 * the reason in err (naming the file) when a file cannot be used. */
http_tls_ctx_t *http_tls_ctx_new(const char *cert, const char *key, const char *ciphers, char *err,
                                 size_t errlen);
void http_tls_ctx_ref(http_tls_ctx_t *ctx);
void http_tls_ctx_unref(http_tls_ctx_t *ctx);

/* Ticket keys: rotated by the maintenance tick (now in seconds). */
void http_tls_tick(uint64_t now_s);

typedef enum http_tls_rc {
    HTTP_TLS_OK,    /* bytes were read */
    HTTP_TLS_WANT,  /* needs more ciphertext */
    HTTP_TLS_EOF,   /* the client closed the session (close_notify) */
    HTTP_TLS_ERR,   /* a protocol error or a failed handshake: close */
} http_tls_rc_t;

/* A server session on the connection of listener listen_id (for SNI's site lookup). */
http_tls_t *http_tls_new(http_tls_ctx_t *ctx, http_server_t *hs, unsigned listen_id);
void http_tls_free(http_tls_t *t);

/* Ciphertext from the socket. */
void http_tls_feed(http_tls_t *t, const char *data, size_t n);
/* Plaintext into out[0..cap): runs the handshake first. */
http_tls_rc_t http_tls_read(http_tls_t *t, char *out, size_t cap, size_t *got);
/* Is plaintext or ciphertext left over that http_tls_read could return without more input? */
bool http_tls_pending(const http_tls_t *t);
/* Encrypt bufs[0..n) into the output buffer. False on a session error. */
bool http_tls_write(http_tls_t *t, const uv_buf_t *bufs, unsigned n);
/* Make room in the output buffer for the records of `plaintext` bytes about to be written. */
void http_tls_reserve(http_tls_t *t, size_t plaintext);
/* Queue a close_notify alert (the output buffer gets it). */
void http_tls_close_notify(http_tls_t *t);
/* The ciphertext waiting to be sent (handshake, alerts, records): the caller takes the buffer
 * (its data becomes the caller's, to free) and the session starts a new one. */
buf_t http_tls_take_output(http_tls_t *t);

bool http_tls_handshaken(const http_tls_t *t);
/* The handshake is done and ALPN chose h2. */
bool http_tls_alpn_h2(const http_tls_t *t);
/* "TLSv1.3"..., for SSL_PROTOCOL. */
const char *http_tls_version(const http_tls_t *t);
/* Why the last HTTP_TLS_ERR happened (OpenSSL's reason), for the log. */
const char *http_tls_error(const http_tls_t *t);

/* Handshakes since start, for the status page. */
typedef struct http_tls_stats {
    uint64_t full, resumed, failed;
} http_tls_stats_t;
extern http_tls_stats_t http_tls_stats;

#endif
