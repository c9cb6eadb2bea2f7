/* CGI response-header parser (RFC 3875 §6, SPEC §4.5 responseHeaders = strict | relaxed).
 *
 * PURE: bytes in, struct out; no I/O, no allocation. Every slice in the result points into the
 * caller's buffer, so the buffer must outlive the use of the result.
 *
 * Incremental in the picohttpparser way: the caller appends each FCGI_STDOUT span to one buffer and
 * calls cgi_parse_response() with the whole buffer received so far. The parse restarts from the
 * beginning each time and its result never depends on how the input was split. While the header
 * block is incomplete nothing but the block limit is checked, so an error is only reported once the
 * block is complete (or too long).
 *
 * The header block ends at the first empty line: "\r\n\r\n", "\n\n", "\r\n\n" or "\n\r\n" (or
 * the buffer starting with "\r\n" / "\n": no header lines at all). Whatever follows in the buffer
 * is the start of the body; the return value says where it begins.
 *
 * Modes (SPEC §4.5):
 *   strict   Every line ends with CRLF (the empty line too). Every line is `Name: value`: a
 *            token name (RFC 9110 tchar), no white space before the colon, at least one SP or
 *            HTAB after it unless the value is empty; trailing white space is allowed and
 *            trimmed. Values hold no control characters but HTAB (so no CR, LF or NUL).
 *            `Status:` is `Status: NNN reason` (one SP) with 3 digits in 100..599 and a non-empty
 *            reason. At most one Status; Content-Length is 1*DIGIT (at most 18 digits) and every
 *            copy has the same value. Anything else: CGI_EINVALID and a message.
 *   relaxed  (the IIS hotfix behaviour; the default) also accepts: no space after the colon,
 *            LF-only and mixed line ends, `Status: 404` without a reason, an
 *            `HTTP/1.x NNN [reason]` first line (NPH style) taken as the status, white space
 *            around names and values (a line starting with white space is a header of its own,
 *            not an obs-fold continuation), and control characters other than CR and NUL in
 *            values. These lines are dropped (and reported in `dropped`/`first_dropped`, see
 *            below) instead of failing: a line without a colon, a line whose name is empty or not
 *            a token, a value holding a CR or NUL, a Content-Length that is not 1*DIGIT or differs
 *            from an earlier one, a second Status (or a Status after an HTTP/1.x status line;
 *            it is dropped unparsed, the first status wins).
 * Both modes: a status that is not 3 digits in 100..599 is CGI_EINVALID, and no returned value ever
 * contains CR, LF or NUL. More header lines to keep than the caller's array holds (Status lines and
 * dropped lines do not count), or a block longer than max_bytes, is CGI_ETOO_LARGE.
 *
 * Status (RFC 3875 §6.2): from `Status:` (or the HTTP/1.x line); otherwise 302 when a non-empty
 * Location is present (a client redirect for an absolute URL, §6.2.3; for a local path, the
 * redirect nginx and php-fpm users expect instead of §6.2.2's server-side internal redirect, which
 * is not implemented: CGI_F_LOCAL_REDIRECT tells it apart); otherwise 200.
 */
#ifndef FCGIHOST_FASTCGI_CGI_RESPONSE_H
#define FCGIHOST_FASTCGI_CGI_RESPONSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/str.h"

/* Return codes; > 0 is the length of the header block, through its empty line. */
#define CGI_AGAIN (-1)      /* the block is not complete yet and max_bytes is not reached */
#define CGI_EINVALID (-2)   /* malformed (mode-dependent, see above); err says why */
#define CGI_ETOO_LARGE (-3) /* block longer than max_bytes, or more lines than max_headers */

#define CGI_DEFAULT_MAX_BYTES 65536

typedef enum cgi_mode {
    CGI_MODE_RELAXED = 0,
    CGI_MODE_STRICT = 1,
} cgi_mode_t;

/* What a header is to the server, so it can drop or replace fields without comparing names. */
typedef enum cgi_header_id {
    CGI_H_OTHER = 0,
    CGI_H_CONTENT_TYPE,
    CGI_H_LOCATION,
    CGI_H_CONTENT_LENGTH,
    CGI_H_TRANSFER_ENCODING, /* hop-by-hop: the server frames the body itself */
    CGI_H_CONNECTION,        /* hop-by-hop */
    CGI_H_KEEP_ALIVE,        /* hop-by-hop */
    CGI_H_HOP_BY_HOP,        /* TE, Trailer, Upgrade, Proxy-Connection */
    CGI_H_DATE,
    CGI_H_SERVER,
} cgi_header_id_t;

typedef struct cgi_header {
    str_t name;  /* borrowed; a token, case as sent */
    str_t value; /* borrowed; white space around it removed; may be empty */
    cgi_header_id_t id;
} cgi_header_t;

/* cgi_response_t.flags */
#define CGI_F_STATUS (1u << 0)            /* status came from Status: or an HTTP/1.x line */
#define CGI_F_NPH_STATUS_LINE (1u << 1)   /* ... from an HTTP/1.x first line (relaxed only) */
#define CGI_F_CONTENT_TYPE (1u << 2)
#define CGI_F_LOCATION (1u << 3)          /* a non-empty Location */
#define CGI_F_LOCAL_REDIRECT (1u << 4)    /* Location is a local path ("/...", not "//") */
#define CGI_F_CONTENT_LENGTH (1u << 5)    /* content_length is valid */
#define CGI_F_TRANSFER_ENCODING (1u << 6)
#define CGI_F_CONNECTION (1u << 7)
#define CGI_F_HOP_BY_HOP (1u << 8)        /* any hop-by-hop id above, Connection included */

typedef struct cgi_response {
    int status;             /* 100..599 */
    str_t reason;           /* borrowed; empty: the server uses the standard phrase */
    unsigned flags;         /* CGI_F_* */
    int64_t content_length; /* -1 when absent */
    str_t content_type;     /* first Content-Type (empty when none) */
    str_t location;         /* first non-empty Location (empty when none) */
    cgi_header_t *headers;  /* borrowed: the caller's array; Status lines are not in it */
    size_t num_headers;
    size_t head_len;        /* same as the positive return value: the body starts there */
    /* relaxed: lines dropped instead of failing. first_dropped is the raw line without its line
     * end (it may hold any byte, CR and NUL included: escape it before logging). */
    size_t dropped;
    str_t first_dropped;
    unsigned first_dropped_line; /* 1-based line number, 0 when nothing was dropped */
} cgi_response_t;

typedef struct cgi_parse_opts {
    cgi_mode_t mode;
    size_t max_bytes; /* header block limit; 0 = CGI_DEFAULT_MAX_BYTES; capped at INT_MAX */
} cgi_parse_opts_t;

/* Parse the header block at the start of buf[0..len). `headers` is an array of `max_headers`
 * entries receiving the header lines in order. On CGI_EINVALID / CGI_ETOO_LARGE a one-line message
 * ("line 2: header name contains ' '") is written to err (NUL-terminated, truncated to errlen; err
 * may be NULL when errlen is 0); it quotes at most a few bytes of the input, escaped. The contents
 * of `res` are meaningful only when the return value is > 0.
 * Returns the header block length (> 0), CGI_AGAIN, CGI_EINVALID or CGI_ETOO_LARGE. */
int cgi_parse_response(const char *buf, size_t len, const cgi_parse_opts_t *opts,
                       cgi_response_t *res, cgi_header_t *headers, size_t max_headers, char *err,
                       size_t errlen);

#endif
