/* Incremental, in-place decoder for the chunked transfer coding (RFC 9112 §7.1).
 *
 * PURE. Shaped like picohttpparser's phr_decode_chunked: the caller hands in each newly received
 * piece of the body; the decoder removes the framing in place and reports how much decoded data
 * sits at the front of the piece.
 *
 * Strict: chunk-size is 1*HEXDIG only ("5 5", "0x5", "+5", "-1", an empty size, and sizes that
 * overflow 63 bits are errors); BWS is allowed only before a ';' chunk extension; extensions are
 * syntax-checked and ignored; chunk data must be followed by exactly CRLF (a bare LF is accepted as
 * in the request head); trailer fields are syntax-checked (token ":" value, no obs-fold) and
 * discarded. A size line or a trailer section longer than the limits below is an error.
 */
#ifndef FCGIHOST_HTTP_CHUNKED_H
#define FCGIHOST_HTTP_CHUNKED_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_CHUNKED_AGAIN (-2)   /* all input consumed, the body has not ended yet */
#define HTTP_CHUNKED_ERROR (-1)   /* malformed: answer 400 and close */
#define HTTP_CHUNKED_MAX_LINE 4096     /* chunk-size line incl. extensions, excl. CRLF */
#define HTTP_CHUNKED_MAX_TRAILER 16384 /* all trailer lines together, line ends and the final
                                          empty line included */

typedef struct http_chunked {
    /* Private state; zero it (or call http_chunked_init) before the first call. */
    int state;
    uint64_t remaining; /* bytes of chunk data still expected in the current chunk */
    size_t line_len;    /* bytes seen on the current size / trailer line */
    size_t trailer_len; /* bytes of trailer seen */
    uint64_t total;     /* decoded data bytes so far (for maxBodyBytes checks by the caller) */
    unsigned flags;
} http_chunked_t;

void http_chunked_init(http_chunked_t *d);

/* Decode buf[0..*len) in place. On return *len is the number of decoded data bytes now at buf[0..).
 * Returns HTTP_CHUNKED_AGAIN, HTTP_CHUNKED_ERROR, or (>= 0) when the last chunk and trailer are
 * complete: the number of bytes after the body that were not consumed; they have been moved to
 * start at buf + *len (they are the next pipelined request). On HTTP_CHUNKED_ERROR, *len is the
 * data decoded before the error, and every later call fails too; once the body has ended, a later
 * call hands its whole input back as left over. */
ssize_t http_chunked_decode(http_chunked_t *d, char *buf, size_t *len);

#endif
