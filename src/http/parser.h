/* Strict HTTP/1.x request-head parser (RFC 9112), zero-copy and picohttpparser-shaped.
 *
 * PURE: bytes in, struct out; no I/O, no allocation. Every slice in the result points into the
 * caller's buffer, so the buffer must outlive the use of the request.
 *
 * Call it with the whole buffer received so far each time more bytes arrive (not just the new bytes).
 * The parse is restartable from scratch and its result never depends on how the input was split.
 */
#ifndef FCGIHOST_HTTP_PARSER_H
#define FCGIHOST_HTTP_PARSER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/str.h"

/* Return codes: > 0 is the length of the head (through the blank line). */
#define HTTP_PARSE_AGAIN (-1) /* the head is not complete yet and no limit is exceeded */
/* Errors are the negated HTTP status the server should answer with:
 *   -400 malformed (bad request line, bad header syntax, obs-fold, white space before a colon,
 *        HTTP/1.1 without Host, several Host fields, a Host that is not a non-empty host[:port],
 *        invalid or differing Content-Length,
 *        Content-Length together with Transfer-Encoding, Transfer-Encoding that is empty, lists
 *        chunked twice or gives chunked a parameter, Transfer-Encoding in an HTTP/1.0 request, a
 *        control character in a field value other than HTAB, a target that is not origin-form /
 *        asterisk-form ("*" with OPTIONS only) / absolute-form (http or https, no userinfo):
 *        CONNECT's authority-form is refused too; a raw byte >= 0x80 in the target),
 *   -414 request-target longer than limits.max_url_bytes (also while still incomplete),
 *   -431 head longer than limits.max_header_bytes, or more than max_headers fields,
 *   -501 a transfer coding other than chunked (e.g. "gzip, chunked", "chunked, gzip"),
 *   -505 an HTTP version other than 1.0 / 1.1,
 *   -417 an Expect value other than 100-continue.
 * Checks run left to right and the first failing byte decides, so the error for a given input does
 * not depend on how much of it has arrived; a field's semantics are checked when its line ends. */

typedef enum http_method {
    HTTP_METHOD_OTHER = 0,
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_PATCH,
    HTTP_METHOD_TRACE,
    HTTP_METHOD_CONNECT,
} http_method_t;

typedef struct http_header {
    str_t name;  /* as sent (case preserved), a token */
    str_t value; /* leading and trailing OWS removed; may be empty */
} http_header_t;

typedef struct http_limits {
    size_t max_url_bytes;    /* length of the request-target; 0 = no limit */
    size_t max_header_bytes; /* length of the whole head, counted from buf[0] (skipped empty lines
                                included); 0 = no limit (INT_MAX) */
} http_limits_t;

typedef struct http_request {
    str_t method;          /* a token */
    http_method_t method_id;
    str_t target;          /* request-target as sent */
    str_t path;            /* the target's path part (absolute-form: without scheme and authority,
                              and "/" -- the last '/' of "://" -- when empty; asterisk-form: "*"),
                              still percent-encoded, without the query */
    str_t query;           /* after the first '?', without it; STR_NULL (p == NULL) when no '?' */
    bool has_query;
    int minor_version;     /* 0 or 1 (HTTP/1.x) */

    http_header_t *headers; /* borrowed: the array the caller passed */
    size_t num_headers;

    /* Framing and connection semantics, derived while parsing: */
    str_t host;            /* Host field value (authority from an absolute-form target wins);
                              STR_NULL for HTTP/1.0 without either */
    int64_t content_length; /* -1 when absent */
    bool chunked;          /* Transfer-Encoding: chunked (the only accepted coding) */
    bool keep_alive;       /* 1.1 unless "Connection: close"; 1.0 only with "Connection: keep-alive" */
    bool expect_continue;  /* Expect: 100-continue (ignored in HTTP/1.0, RFC 9110 §10.1.1) */
    size_t head_len;       /* same as the positive return value */
} http_request_t;

/* Parse a request head from buf[0..len). `headers` is an array of `max_headers` entries that
 * receives the fields. Empty lines (CRLF or LF) before the request line are skipped, at most a few.
 * Line ends are CRLF; a bare LF is accepted as a line end (RFC 9112 §2.2) but a bare CR is -400.
 * Returns the head length (> 0), HTTP_PARSE_AGAIN, or a negated status (see above). */
int http_parse_request(const char *buf, size_t len, http_request_t *req, http_header_t *headers,
                       size_t max_headers, const http_limits_t *limits);

/* Name of a method id ("GET", ...); NULL for HTTP_METHOD_OTHER. */
const char *http_method_name(http_method_t m);

/* Case-insensitive lookup of the first field named `name` (lower-case literal); NULL if absent. */
const http_header_t *http_find_header(const http_request_t *req, const char *lower_name, size_t len);
#define HTTP_FIND_HEADER(req, lit) http_find_header((req), (lit), sizeof(lit) - 1)

#endif
