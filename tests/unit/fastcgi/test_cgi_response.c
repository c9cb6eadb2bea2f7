/* Unit tests for src/fastcgi/cgi_response.c. Every case is also parsed at every prefix length (the
 * caller re-parses its growing buffer), and every input strict accepts must be accepted by relaxed
 * with the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fastcgi/cgi_response.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define S (1u << CGI_MODE_STRICT)
#define X (1u << CGI_MODE_RELAXED)
#define B (S | X)

typedef struct resp_case {
    int line;
    unsigned modes;
    const char *in;
    size_t len;
    int rc;            /* 0: success, the block ending where `body` starts; else the error code */
    const char *body;  /* success: the bytes after the header block */
    int status;
    const char *reason;
    const char *headers; /* "Name=value|Name=value" */
    unsigned flags;
    int64_t cl;
    size_t dropped;
    unsigned first_dropped_line;
    const char *first_dropped;
    const char *err; /* error: a substring of the message, or "=" and the whole message */
    size_t max_bytes, max_headers;
} resp_case_t;

#define C(input, ...) {.line = __LINE__, .in = (input), .len = sizeof(input) - 1, __VA_ARGS__}
#define OK .body = ""

#define PHP_CT "Content-type: text/html; charset=UTF-8"
#define PHP_PB "X-Powered-By: PHP/8.2.7"

static const resp_case_t cases[] = {
    /* php-cgi's real output shapes */
    C(PHP_PB "\r\n" PHP_CT "\r\n\r\n<html>", .modes = B, .body = "<html>", .status = 200,
      .reason = "", .headers = "X-Powered-By=PHP/8.2.7|Content-type=text/html; charset=UTF-8",
      .flags = CGI_F_CONTENT_TYPE),
    C("Status: 404 Not Found\r\n" PHP_PB "\r\n" PHP_CT "\r\n\r\nNot found", .modes = B,
      .body = "Not found", .status = 404, .reason = "Not Found",
      .headers = "X-Powered-By=PHP/8.2.7|Content-type=text/html; charset=UTF-8",
      .flags = CGI_F_STATUS | CGI_F_CONTENT_TYPE),
    C("Status: 302 Found\r\n" PHP_PB "\r\nLocation: https://example.com/a?b=c\r\n" PHP_CT "\r\n\r\n",
      .modes = B, OK, .status = 302, .reason = "Found",
      .headers = "X-Powered-By=PHP/8.2.7|Location=https://example.com/a?b=c|Content-type=text/html; "
                 "charset=UTF-8",
      .flags = CGI_F_STATUS | CGI_F_LOCATION | CGI_F_CONTENT_TYPE),
    C("Status: 500 Internal Server Error\r\n" PHP_PB "\r\n" PHP_CT "\r\n\r\n", .modes = B, OK,
      .status = 500, .reason = "Internal Server Error",
      .headers = "X-Powered-By=PHP/8.2.7|Content-type=text/html; charset=UTF-8",
      .flags = CGI_F_STATUS | CGI_F_CONTENT_TYPE),
    /* Location without Status */
    C("Location: http://example.com/x\r\n\r\n", .modes = B, OK, .status = 302, .reason = "",
      .headers = "Location=http://example.com/x", .flags = CGI_F_LOCATION),
    C("Location: /local?x=1\r\n\r\n", .modes = B, OK, .status = 302, .reason = "",
      .headers = "Location=/local?x=1", .flags = CGI_F_LOCATION | CGI_F_LOCAL_REDIRECT),
    C("Location: /\r\n\r\n", .modes = B, OK, .status = 302, .reason = "", .headers = "Location=/",
      .flags = CGI_F_LOCATION | CGI_F_LOCAL_REDIRECT),
    C("Location: //evil.example/x\r\n\r\n", .modes = B, OK, .status = 302, .reason = "",
      .headers = "Location=//evil.example/x", .flags = CGI_F_LOCATION),
    C("Status: 301 Moved Permanently\r\nLocation: https://a.example/\r\n\r\n", .modes = B, OK,
      .status = 301, .reason = "Moved Permanently", .headers = "Location=https://a.example/",
      .flags = CGI_F_STATUS | CGI_F_LOCATION),
    C("Location: /new\r\nStatus: 201 Created\r\n\r\n", .modes = B, OK, .status = 201,
      .reason = "Created", .headers = "Location=/new",
      .flags = CGI_F_STATUS | CGI_F_LOCATION | CGI_F_LOCAL_REDIRECT),
    C("Location:\r\nLocation: /second\r\n\r\n", .modes = B, OK, .status = 302, .reason = "",
      .headers = "Location=|Location=/second", .flags = CGI_F_LOCATION | CGI_F_LOCAL_REDIRECT),
    C("Location: \r\n\r\n", .modes = B, OK, .status = 200, .reason = "", .headers = "Location="),
    /* empty header block, body right after */
    C("\r\nbody", .modes = B, .body = "body", .status = 200, .reason = "", .headers = ""),
    C("\nbody", .modes = X, .body = "body", .status = 200, .reason = "", .headers = ""),
    C("\nbody", .modes = S, .rc = CGI_EINVALID, .err = "line 1: line ends with LF, not CRLF"),
    /* the first empty line ends the block */
    C("A: b\r\n\r\nC: d\r\n\r\n", .modes = B, .body = "C: d\r\n\r\n", .status = 200, .reason = "",
      .headers = "A=b"),
    /* Content-Length */
    C("Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", .modes = B, .body = "hello",
      .status = 200, .reason = "", .headers = "Content-Length=5|Content-Type=text/plain",
      .flags = CGI_F_CONTENT_LENGTH | CGI_F_CONTENT_TYPE, .cl = 5),
    C("Content-Length: 0\r\ncontent-length: 000\r\n\r\n", .modes = B, OK, .status = 200,
      .reason = "", .headers = "Content-Length=0|content-length=000",
      .flags = CGI_F_CONTENT_LENGTH, .cl = 0),
    C("Content-Length: 999999999999999999\r\n\r\n", .modes = B, OK, .status = 200, .reason = "",
      .headers = "Content-Length=999999999999999999", .flags = CGI_F_CONTENT_LENGTH,
      .cl = 999999999999999999),
    C("Content-Length: 1000000000000000000\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 1: invalid Content-Length \"1000000000000000000\""),
    C("Content-Length: 1000000000000000000\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "", .dropped = 1, .first_dropped_line = 1,
      .first_dropped = "Content-Length: 1000000000000000000"),
    C("Content-Length: 12a\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "invalid Content-Length"),
    C("Content-Length: -1\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "invalid Content-Length"),
    C("Content-Length:\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "invalid Content-Length"),
    C("Content-Length: 1 2\r\nA: b\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "A=b", .dropped = 1, .first_dropped_line = 1, .first_dropped = "Content-Length: 1 2"),
    C("Content-Length: 5\r\nContent-Length: 6\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 2: conflicting Content-Length"),
    C("Content-Length: 5\r\nContent-Length: 6\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "Content-Length=5", .flags = CGI_F_CONTENT_LENGTH, .cl = 5, .dropped = 1,
      .first_dropped_line = 2, .first_dropped = "Content-Length: 6"),
    /* hop-by-hop fields are reported, not removed */
    C("Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n", .modes = B, OK, .status = 200,
      .reason = "", .headers = "Connection=close|Transfer-Encoding=chunked",
      .flags = CGI_F_CONNECTION | CGI_F_TRANSFER_ENCODING | CGI_F_HOP_BY_HOP),
    C("Keep-Alive: timeout=5\r\n\r\n", .modes = B, OK, .status = 200, .reason = "",
      .headers = "Keep-Alive=timeout=5", .flags = CGI_F_HOP_BY_HOP),
    C("Upgrade: h2c\r\n\r\n", .modes = B, OK, .status = 200, .reason = "", .headers = "Upgrade=h2c",
      .flags = CGI_F_HOP_BY_HOP),
    /* values */
    C("X-Time: 12:30:00\r\nX-Sp: a  b\t c  \r\nX-Tab:\tv\r\nX-Utf8: caf\xc3\xa9\r\n\r\n", .modes = B,
      OK, .status = 200, .reason = "",
      .headers = "X-Time=12:30:00|X-Sp=a  b\t c|X-Tab=v|X-Utf8=caf\xc3\xa9"),
    C("X-Empty:\r\nX-Blank: \r\nX-Blank2:   \t\r\n\r\n", .modes = B, OK, .status = 200,
      .reason = "", .headers = "X-Empty=|X-Blank=|X-Blank2="),
    C("status: 404 Not Found\r\nCONTENT-TYPE: text/plain\r\n\r\n", .modes = B, OK, .status = 404,
      .reason = "Not Found", .headers = "CONTENT-TYPE=text/plain",
      .flags = CGI_F_STATUS | CGI_F_CONTENT_TYPE),
    C("Status: 418 I'm a teapot  \r\n\r\n", .modes = B, OK, .status = 418, .reason = "I'm a teapot",
      .headers = "", .flags = CGI_F_STATUS),
    C("Status: 100 Continue\r\n\r\n", .modes = B, OK, .status = 100, .reason = "Continue",
      .headers = "", .flags = CGI_F_STATUS),
    C("Status: 599 Whatever It Is\r\n\r\n", .modes = B, OK, .status = 599,
      .reason = "Whatever It Is", .headers = "", .flags = CGI_F_STATUS),
    C("!#$%&'*+-.^_`|~09azAZ: token\r\n\r\n", .modes = B, OK, .status = 200, .reason = "",
      .headers = "!#$%&'*+-.^_`|~09azAZ=token"),
    /* line ends: strict wants CRLF, relaxed takes LF and mixed */
    C("Content-Type: text/html\n\nx", .modes = S, .rc = CGI_EINVALID,
      .err = "line 1: line ends with LF, not CRLF"),
    C("Content-Type: text/html\n\nx", .modes = X, .body = "x", .status = 200, .reason = "",
      .headers = "Content-Type=text/html", .flags = CGI_F_CONTENT_TYPE),
    C("A: b\r\nC: d\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "line 2: line ends with LF"),
    C("A: b\r\nC: d\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "A=b|C=d"),
    C("A: b\r\n\n", .modes = S, .rc = CGI_EINVALID, .err = "line 2: line ends with LF"),
    C("A: b\r\n\nbody", .modes = X, .body = "body", .status = 200, .reason = "", .headers = "A=b"),
    C("A: b\n\r\nbody", .modes = X, .body = "body", .status = 200, .reason = "", .headers = "A=b"),
    /* colon spacing */
    C("Content-Type:text/html\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 1: no space after the colon of Content-Type"),
    C("Content-Type:text/html\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "Content-Type=text/html", .flags = CGI_F_CONTENT_TYPE),
    /* Status forms */
    C("Status: 404\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "Status must be \"NNN reason\""),
    C("Status: 404\r\n\r\n", .modes = X, OK, .status = 404, .reason = "", .headers = "",
      .flags = CGI_F_STATUS),
    C("Status: 404 \r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "Status must be"),
    C("Status: 404 \r\n\r\n", .modes = X, OK, .status = 404, .reason = "", .headers = "",
      .flags = CGI_F_STATUS),
    C("Status:404 Not Found\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "no space after the colon"),
    C("Status:404 Not Found\r\n\r\n", .modes = X, OK, .status = 404, .reason = "Not Found",
      .headers = "", .flags = CGI_F_STATUS),
    C("Status: 404\tNot Found\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "Status must be"),
    C("Status: 404\tNot Found\r\n\r\n", .modes = X, OK, .status = 404, .reason = "Not Found",
      .headers = "", .flags = CGI_F_STATUS),
    C("Status: 200 OK\r\nStatus: 404 Not Found\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 2: more than one Status"),
    C("Status: 200 OK\r\nStatus: 404 Not Found\r\n\r\n", .modes = X, OK, .status = 200,
      .reason = "OK", .headers = "", .flags = CGI_F_STATUS, .dropped = 1, .first_dropped_line = 2,
      .first_dropped = "Status: 404 Not Found"),
    /* invalid status: an error in both modes */
    C("Status: abc\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "=line 1: invalid status \"abc\""),
    C("Status:\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: 20\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: 099 Low\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: 600 High\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: 2000 OK\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: 200OK\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: -200 OK\r\n\r\n", .modes = B, .rc = CGI_EINVALID, .err = "invalid status"),
    C("Status: \x01\x7f\\\r\n\r\n", .modes = X, .rc = CGI_EINVALID,
      .err = "invalid status \"\\x01\\x7f\\x5c\""),
    /* NPH-style status line */
    C("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 1: an HTTP status line is not a header"),
    C("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n", .modes = X, OK, .status = 404,
      .reason = "Not Found", .headers = "Content-Type=text/html",
      .flags = CGI_F_STATUS | CGI_F_NPH_STATUS_LINE | CGI_F_CONTENT_TYPE),
    C("HTTP/1.0 200\n\n", .modes = X, OK, .status = 200, .reason = "", .headers = "",
      .flags = CGI_F_STATUS | CGI_F_NPH_STATUS_LINE),
    C("HTTP/1.1 200 OK\r\nStatus: 404 Not Found\r\n\r\n", .modes = X, OK, .status = 200,
      .reason = "OK", .headers = "", .flags = CGI_F_STATUS | CGI_F_NPH_STATUS_LINE, .dropped = 1,
      .first_dropped_line = 2),
    C("HTTP/1.1 999 Bad\r\n\r\n", .modes = X, .rc = CGI_EINVALID, .err = "line 1: invalid status"),
    C("HTTP/2 200\r\nA: b\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "A=b",
      .dropped = 1, .first_dropped_line = 1, .first_dropped = "HTTP/2 200"),
    C("A: b\r\nHTTP/1.1 404 Not Found\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "A=b", .dropped = 1, .first_dropped_line = 2),
    C("A: b\r\nHTTP/1.1 404 Not Found\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 2: no colon"),
    /* white space around names */
    C(" X-A : b \r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "line 1: header name contains ' '"),
    C(" X-A : b \r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "X-A=b"),
    C("X-A\t: b\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "header name contains 0x09"),
    C("X-A\t: b\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "X-A=b"),
    C("Status : 404 Not Found\r\n\r\n", .modes = X, OK, .status = 404, .reason = "Not Found",
      .headers = "", .flags = CGI_F_STATUS),
    /* lines without a colon, bad names */
    C("Content-Type: text/html\r\ngarbage line\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 2: no colon in \"garbage line\""),
    C("Content-Type: text/html\r\ngarbage line\r\nmore\r\n\r\n", .modes = X, OK, .status = 200,
      .reason = "", .headers = "Content-Type=text/html", .flags = CGI_F_CONTENT_TYPE, .dropped = 2,
      .first_dropped_line = 2, .first_dropped = "garbage line"),
    C(": foo\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "line 1: header name is empty"),
    C(" : foo\r\nA: b\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "A=b",
      .dropped = 1, .first_dropped_line = 1, .first_dropped = " : foo"),
    C("X(A): b\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "header name contains '('"),
    C("X A: b\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "header name contains ' '"),
    C("X A: b\r\nX(A): b\r\nX\xc3\xa9: b\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "", .dropped = 3, .first_dropped_line = 1, .first_dropped = "X A: b"),
    C("X\xc3\xa9: b\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "header name contains 0xc3"),
    /* CR, NUL and other control characters in values */
    C("X-A: a\rb\r\n\r\n", .modes = S, .rc = CGI_EINVALID,
      .err = "line 1: control character 0x0d in the value of X-A"),
    C("X-A: a\rb\r\nX-B: c\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "X-B=c",
      .dropped = 1, .first_dropped_line = 1, .first_dropped = "X-A: a\rb"),
    C("X-A: a\r\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "control character 0x0d"),
    C("X-A: a\r\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "", .dropped = 1,
      .first_dropped_line = 1, .first_dropped = "X-A: a\r"),
    C("X-A: a\0b\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "control character 0x00"),
    C("X-A: a\0b\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "", .dropped = 1,
      .first_dropped_line = 1),
    C("Status: 404 Not\0Found\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "",
      .dropped = 1, .first_dropped_line = 1),
    C("HTTP/1.1 404 Not\rFound\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "",
      .dropped = 1, .first_dropped_line = 1),
    C("X-A: a\x01z\x7f\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "control character 0x01"),
    C("X-A: a\x01z\x7f\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "X-A=a\x01z\x7f"),
    C("A: b\r\n\r\r\n\r\n", .modes = S, .rc = CGI_EINVALID, .err = "line 2: no colon"),
    C("A: b\r\n\r\r\n\r\n", .modes = X, OK, .status = 200, .reason = "", .headers = "A=b",
      .dropped = 1, .first_dropped_line = 2, .first_dropped = "\r"),
    /* limits */
    C("Content-Type: text/html\r\n\r\n", .modes = B, .rc = CGI_ETOO_LARGE, .max_bytes = 26,
      .err = "=header block longer than 26 bytes"),
    C("Content-Type: text/html\r\n\r\n", .modes = B, OK, .status = 200, .reason = "",
      .headers = "Content-Type=text/html", .flags = CGI_F_CONTENT_TYPE, .max_bytes = 27),
    C("A: 1\r\nB: 2\r\nC: 3\r\n\r\n", .modes = B, .rc = CGI_ETOO_LARGE, .max_headers = 2,
      .err = "line 3: more than 2 header lines"),
    C("A: 1\r\nB: 2\r\nStatus: 200 OK\r\n\r\n", .modes = B, OK, .status = 200, .reason = "OK",
      .headers = "A=1|B=2", .flags = CGI_F_STATUS, .max_headers = 2),
    C("A: 1\r\nB: 2\r\nno colon\r\n\r\n", .modes = X, OK, .status = 200, .reason = "",
      .headers = "A=1|B=2", .dropped = 1, .first_dropped_line = 3, .max_headers = 2),
};

/* ---- Helpers ---- */

static void render_headers(const cgi_response_t *res, buf_t *out) {
    out->len = 0;
    for (size_t i = 0; i < res->num_headers; i++)
        buf_printf(out, "%s%.*s=%.*s", i ? "|" : "", (int)res->headers[i].name.len,
                   res->headers[i].name.p, (int)res->headers[i].value.len, res->headers[i].value.p);
    buf_append(out, "", 1);
}

static bool has_crlfnul(str_t s) {
    return memchr(s.p ? s.p : "", '\r', s.len) || memchr(s.p ? s.p : "", '\n', s.len) ||
           memchr(s.p ? s.p : "", '\0', s.len);
}

/* The guarantee of SPEC §4.5, checked on every successful parse. */
static void check_clean(int line, const cgi_response_t *res) {
    if (has_crlfnul(res->reason)) fail_msg("line %d: CR/LF/NUL in the reason", line);
    for (size_t i = 0; i < res->num_headers; i++)
        if (has_crlfnul(res->headers[i].name) || has_crlfnul(res->headers[i].value))
            fail_msg("line %d: CR/LF/NUL in header %zu", line, i);
    assert_true(res->status >= 100 && res->status <= 599);
}

static int parse(const char *in, size_t len, cgi_mode_t mode, size_t max_bytes, size_t max_headers,
                 cgi_response_t *res, cgi_header_t *hdrs, char *err, size_t errlen) {
    cgi_parse_opts_t opts = {mode, max_bytes};
    int rc = cgi_parse_response(in, len, &opts, res, hdrs, max_headers, err, errlen);
    if (rc > 0) {
        assert_int_equal(res->head_len, rc);
        assert_true((size_t)rc <= len);
    }
    return rc;
}

static bool same_result(const cgi_response_t *a, const cgi_response_t *b) {
    if (a->status != b->status || a->flags != b->flags || a->content_length != b->content_length ||
        a->num_headers != b->num_headers || a->head_len != b->head_len ||
        a->dropped != b->dropped || a->reason.p != b->reason.p || a->reason.len != b->reason.len)
        return false;
    for (size_t i = 0; i < a->num_headers; i++)
        if (a->headers[i].name.p != b->headers[i].name.p ||
            a->headers[i].name.len != b->headers[i].name.len ||
            a->headers[i].value.p != b->headers[i].value.p ||
            a->headers[i].value.len != b->headers[i].value.len || a->headers[i].id != b->headers[i].id)
            return false;
    return true;
}

static void check_case(const resp_case_t *c, cgi_mode_t mode) {
    size_t maxh = c->max_headers ? c->max_headers : 64;
    cgi_header_t hdrs[64], hdrs2[64];
    cgi_response_t res, res2;
    char err[256], err2[256];
    /* parse from a heap copy of exactly len bytes so ASan sees any over-read */
    char *in = xmalloc(c->len ? c->len : 1);
    memcpy(in, c->in, c->len);
    int rc = parse(in, c->len, mode, c->max_bytes, maxh, &res, hdrs, err, sizeof(err));
    const char *mname = mode == CGI_MODE_STRICT ? "strict" : "relaxed";
    if (c->rc != 0) {
        if (rc != c->rc) fail_msg("line %d (%s): rc %d, want %d (%s)", c->line, mname, rc, c->rc, err);
        if (c->err[0] == '=' ? strcmp(err, c->err + 1) != 0 : !strstr(err, c->err))
            fail_msg("line %d (%s): message \"%s\" lacks \"%s\"", c->line, mname, err, c->err);
    } else {
        size_t want = c->len - strlen(c->body);
        if (rc != (int)want)
            fail_msg("line %d (%s): rc %d, want %zu (%s)", c->line, mname, rc, want, err);
        check_clean(c->line, &res);
        buf_t h;
        buf_init(&h);
        render_headers(&res, &h);
        if (strcmp(h.data, c->headers) != 0)
            fail_msg("line %d (%s): headers\n got: %s\nwant: %s", c->line, mname, h.data, c->headers);
        buf_dispose(&h);
        if (res.status != c->status) fail_msg("line %d (%s): status %d", c->line, mname, res.status);
        if (!str_eq(res.reason, c->reason, strlen(c->reason)))
            fail_msg("line %d (%s): reason \"%.*s\"", c->line, mname, (int)res.reason.len,
                     res.reason.p);
        if (res.flags != c->flags) fail_msg("line %d (%s): flags %#x", c->line, mname, res.flags);
        int64_t cl = (c->flags & CGI_F_CONTENT_LENGTH) ? c->cl : -1;
        if (res.content_length != cl) fail_msg("line %d (%s): content_length", c->line, mname);
        if (res.dropped != c->dropped || res.first_dropped_line != c->first_dropped_line)
            fail_msg("line %d (%s): dropped %zu at line %u", c->line, mname, res.dropped,
                     res.first_dropped_line);
        if (c->first_dropped && !str_eq(res.first_dropped, c->first_dropped, strlen(c->first_dropped)))
            fail_msg("line %d (%s): first_dropped \"%.*s\"", c->line, mname,
                     (int)res.first_dropped.len, res.first_dropped.p);
    }
    /* Every prefix: AGAIN until the block is complete, then the same result as the whole input. */
    bool settled = false;
    for (size_t k = 0; k < c->len; k++) {
        int rk = parse(in, k, mode, c->max_bytes, maxh, &res2, hdrs2, err2, sizeof(err2));
        if (!settled && rk == CGI_AGAIN) continue;
        if (!settled && rc > 0 && k != (size_t)rc)
            fail_msg("line %d (%s): complete at %zu bytes, not %d", c->line, mname, k, rc);
        settled = true;
        if (rk != rc)
            fail_msg("line %d (%s): prefix %zu gives %d, whole gives %d", c->line, mname, k, rk, rc);
        if (rc > 0 && !same_result(&res, &res2))
            fail_msg("line %d (%s): prefix %zu gives another result", c->line, mname, k);
        if (rc < 0 && strcmp(err, err2) != 0)
            fail_msg("line %d (%s): prefix %zu gives \"%s\"", c->line, mname, k, err2);
    }
    if (rc > 0 && !settled && rc != (int)c->len)
        fail_msg("line %d (%s): a prefix of %d bytes was not complete", c->line, mname, rc);
    /* strict acceptance implies relaxed acceptance with the same result */
    if (mode == CGI_MODE_STRICT && rc > 0) {
        int rr = parse(in, c->len, CGI_MODE_RELAXED, c->max_bytes, maxh, &res2, hdrs2, err2,
                       sizeof(err2));
        if (rr != rc || !same_result(&res, &res2))
            fail_msg("line %d: strict accepts, relaxed gives %d / another result", c->line, rr);
    }
    free(in);
}

static void test_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].modes & S) check_case(&cases[i], CGI_MODE_STRICT);
        if (cases[i].modes & X) check_case(&cases[i], CGI_MODE_RELAXED);
    }
}

static void test_again(void **state) {
    (void)state;
    static const struct { int line; const char *in; } cases_again[] = {
        {__LINE__, ""}, {__LINE__, "\r"}, {__LINE__, "Content-Type: text/html\r\n"},
        {__LINE__, "Content-Type: text/html\r\n\r"}, {__LINE__, "A: b\n"},
        {__LINE__, "garbage without any line end"}, {__LINE__, "Status: abc\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases_again) / sizeof(cases_again[0]); i++)
        for (int m = 0; m < 2; m++) {
            cgi_header_t hdrs[8];
            cgi_response_t res;
            char err[64];
            int rc = parse(cases_again[i].in, strlen(cases_again[i].in), (cgi_mode_t)m, 0, 8, &res,
                           hdrs, err, sizeof(err));
            if (rc != CGI_AGAIN) fail_msg("line %d: rc %d", cases_again[i].line, rc);
        }
}

static void test_header_ids(void **state) {
    (void)state;
    static const char in[] =
        "Content-Type: a\r\nLocation: /b\r\nContent-Length: 1\r\nTransfer-Encoding: c\r\n"
        "Connection: d\r\nKeep-Alive: e\r\nTE: f\r\nTrailer: g\r\nUpgrade: h\r\n"
        "Proxy-Connection: i\r\nDate: j\r\nServer: k\r\nX-Other: l\r\ncontent-TYPE: m\r\n"
        "Content-Typo: n\r\nLocations: o\r\n\r\n";
    static const cgi_header_id_t want[] = {
        CGI_H_CONTENT_TYPE, CGI_H_LOCATION,   CGI_H_CONTENT_LENGTH, CGI_H_TRANSFER_ENCODING,
        CGI_H_CONNECTION,   CGI_H_KEEP_ALIVE, CGI_H_HOP_BY_HOP,     CGI_H_HOP_BY_HOP,
        CGI_H_HOP_BY_HOP,   CGI_H_HOP_BY_HOP, CGI_H_DATE,           CGI_H_SERVER,
        CGI_H_OTHER,        CGI_H_CONTENT_TYPE, CGI_H_OTHER,        CGI_H_OTHER,
    };
    cgi_header_t hdrs[32];
    cgi_response_t res;
    assert_true(parse(in, sizeof(in) - 1, CGI_MODE_STRICT, 0, 32, &res, hdrs, NULL, 0) > 0);
    assert_int_equal(res.num_headers, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < res.num_headers; i++)
        if (hdrs[i].id != want[i])
            fail_msg("header %zu (%.*s): id %d", i, (int)hdrs[i].name.len, hdrs[i].name.p,
                     hdrs[i].id);
    assert_true(STR_EQ(res.content_type, "a"));
    assert_true(STR_EQ(res.location, "/b"));
    assert_int_equal(res.content_length, 1);
    assert_ptr_equal(res.headers, hdrs);
}

/* Every byte value at several places of a line: no CR, LF or NUL ever reaches a returned value,
 * strict refuses every control character but HTAB, and relaxed keeps the line unless it is CR/NUL. */
static void test_every_byte(void **state) {
    (void)state;
    static const char *const templates[] = {
        "X-A: @v\r\n\r\n", "X-A: v@\r\n\r\n", "X-A: v@w\r\n\r\n", "X-A:@ v\r\n\r\n",
        "Status: 404 N@t\r\n\r\n", "X-@: v\r\n\r\n", "@X-A: v\r\n\r\n", "HTTP/1.1 404 N@t\r\n\r\n",
        "Location: /@\r\n\r\n",
    };
    for (size_t t = 0; t < sizeof(templates) / sizeof(templates[0]); t++)
        for (int c = 0; c < 256; c++) {
            char in[64];
            size_t len = strlen(templates[t]);
            memcpy(in, templates[t], len);
            *(char *)memchr(in, '@', len) = (char)c;
            for (int m = 0; m < 2; m++) {
                cgi_header_t hdrs[8];
                cgi_response_t res;
                char err[128];
                int rc = parse(in, len, (cgi_mode_t)m, 0, 8, &res, hdrs, err, sizeof(err));
                if (rc > 0) check_clean(__LINE__, &res);
                bool in_value = t < 5 || t == 7 || t == 8;
                if (m == CGI_MODE_RELAXED && in_value && t != 3 && c != '\n' && c != '\r' && c != 0)
                    if (rc <= 0) fail_msg("template %zu byte %#x: relaxed rc %d (%s)", t, c, rc, err);
                if (m == CGI_MODE_STRICT && in_value && t < 3 && ((c < 0x20 && c != '\t') || c == 0x7f))
                    if (rc != CGI_EINVALID && rc != CGI_AGAIN)
                        fail_msg("template %zu byte %#x: strict rc %d", t, c, rc);
            }
        }
}

static void test_err_buffer(void **state) {
    (void)state;
    static const char in[] = "Bad Name: v\r\n\r\n";
    cgi_header_t hdrs[4];
    cgi_response_t res;
    char err[8];
    memset(err, 'z', sizeof(err));
    assert_int_equal(parse(in, sizeof(in) - 1, CGI_MODE_STRICT, 0, 4, &res, hdrs, err, 5),
                     CGI_EINVALID);
    assert_string_equal(err, "line");
    assert_int_equal(err[5], 'z');
    assert_int_equal(parse(in, sizeof(in) - 1, CGI_MODE_STRICT, 0, 4, &res, hdrs, NULL, 0),
                     CGI_EINVALID);
    char big[256];
    /* a long quoted line is shortened and escaped */
    static const char longline[] =
        "this line has no colon and goes on and on and on and on\x01\r\n\r\n";
    assert_int_equal(parse(longline, sizeof(longline) - 1, CGI_MODE_STRICT, 0, 4, &res, hdrs, big,
                           sizeof(big)), CGI_EINVALID);
    assert_string_equal(big, "line 1: no colon in \"this line has no colon and goes ...\"");
    /* a successful parse leaves an empty message */
    strcpy(big, "old");
    assert_true(parse("A: b\r\n\r\n", 8, CGI_MODE_STRICT, 0, 4, &res, hdrs, big, sizeof(big)) > 0);
    assert_string_equal(big, "");
}

/* max_bytes 0 means CGI_DEFAULT_MAX_BYTES; the limit counts the whole block through its empty line. */
static void test_default_limit(void **state) {
    (void)state;
    size_t n = CGI_DEFAULT_MAX_BYTES + 100;
    char *in = xmalloc(n);
    cgi_header_t hdrs[4];
    cgi_response_t res;
    memset(in, 'a', n);
    memcpy(in, "X-Long: ", 8);
    /* no end yet: AGAIN below the limit, too large at it */
    assert_int_equal(parse(in, CGI_DEFAULT_MAX_BYTES - 1, CGI_MODE_RELAXED, 0, 4, &res, hdrs, NULL, 0),
                     CGI_AGAIN);
    assert_int_equal(parse(in, CGI_DEFAULT_MAX_BYTES, CGI_MODE_RELAXED, 0, 4, &res, hdrs, NULL, 0),
                     CGI_ETOO_LARGE);
    /* a block of exactly the limit is fine */
    memcpy(in + CGI_DEFAULT_MAX_BYTES - 4, "\r\n\r\n", 4);
    assert_int_equal(parse(in, n, CGI_MODE_STRICT, 0, 4, &res, hdrs, NULL, 0), CGI_DEFAULT_MAX_BYTES);
    assert_int_equal(res.headers[0].value.len, CGI_DEFAULT_MAX_BYTES - 12);
    /* one byte more is not */
    memcpy(in + CGI_DEFAULT_MAX_BYTES - 4, "a\r\n\r\n", 5);
    assert_int_equal(parse(in, n, CGI_MODE_STRICT, 0, 4, &res, hdrs, NULL, 0), CGI_ETOO_LARGE);
    free(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),      cmocka_unit_test(test_again),
        cmocka_unit_test(test_header_ids), cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_err_buffer), cmocka_unit_test(test_default_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
