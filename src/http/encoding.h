/* Content codings (SPEC §7 Compression): choosing one from Accept-Encoding, telling compressible
 * media types, and streaming compressors over zlib (gzip) and brotli. PURE: bytes in, bytes out.
 *
 * Streaming: http_compressor_feed takes body bytes as they come and appends whatever the library
 * produced to `out`; HTTP_COMPRESS_FLUSH also pushes out everything fed so far (the application's
 * own flushes are kept: a client sees a streamed page as it is written), HTTP_COMPRESS_FINISH ends
 * the stream. Memory is bounded by the libraries' windows, whatever the body's length. */
#ifndef FCGIHOST_HTTP_ENCODING_H
#define FCGIHOST_HTTP_ENCODING_H
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/str.h"

typedef enum http_encoding {
    HTTP_ENC_IDENTITY = 0,
    HTTP_ENC_GZIP = 1,
    HTTP_ENC_BR = 2,
} http_encoding_t;

#define HTTP_ENC_MASK(e) (1u << (e))

/* The coding to use for a response, from the request's Accept-Encoding field value (RFC 9110
 * §12.5.3): the acceptable coding (q > 0) among `allowed` (a mask of HTTP_ENC_MASK bits) with the
 * highest q-value, brotli before gzip when equal; "*" stands for any coding not named; "x-gzip" is
 * gzip. HTTP_ENC_IDENTITY when none (also for a malformed field: compression is never required). */
http_encoding_t http_accept_encoding(str_t value, unsigned allowed);

/* The token for Content-Encoding ("gzip", "br"), NULL for identity. */
const char *http_encoding_name(http_encoding_t e);

/* Text that compresses: text/ (any), JSON, JavaScript, XML, SVG (+json / +xml suffixes included),
 * compared without regard to case and parameters. */
bool http_compressible_type(str_t content_type);

typedef enum http_compress_mode {
    HTTP_COMPRESS_MORE,   /* more input follows: output what is ready */
    HTTP_COMPRESS_FLUSH,  /* output everything fed so far */
    HTTP_COMPRESS_FINISH, /* the end of the body */
} http_compress_mode_t;

typedef struct http_compressor http_compressor_t;

/* level: gzip 1..9, brotli 0..11; -1 for the default (gzip 1, as nginx's default gzip on;
 * brotli 4). NULL for identity or when the library cannot start (memory). */
http_compressor_t *http_compressor_new(http_encoding_t enc, int level);
/* Returns 0, or -1 when the library failed (the response must be cut). After FINISH, further
 * calls fail. */
int http_compressor_feed(http_compressor_t *c, const void *in, size_t n, http_compress_mode_t mode,
                         buf_t *out);
void http_compressor_free(http_compressor_t *c);

/* A whole body coded at once (not streamed), appended to out: gzip with libdeflate (level 1:
 * about three times zlib's speed, and smaller than zlib's level 1, nginx's default), br with
 * brotli's one-shot encoder (quality 4, as the streaming one). Returns 0, or -1 (memory). */
int http_compress_whole(http_encoding_t enc, const void *in, size_t n, buf_t *out);

#endif
