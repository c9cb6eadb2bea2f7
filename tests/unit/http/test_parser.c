/* Unit tests for src/http/parser.c.
 *
 * Every table case is parsed whole and then as each of its prefixes, each copied into a buffer of
 * exactly that size (so AddressSanitizer sees any read past the end). A prefix shorter than a
 * complete head must give AGAIN; a prefix of an erroneous input gives AGAIN or the same error, and
 * once an error appears every longer prefix gives it too; a prefix that holds the whole head gives
 * a result identical to the full parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parser.h"

#define MAX_HDRS 64
#define ALL 0x7fffffff /* expected return: the whole input is the head */

typedef struct pcase {
    int line;
    const char *in;
    size_t len;
    int ret; /* ALL, a head length, HTTP_PARSE_AGAIN or -status */
    /* limits; max_hdrs 0 means MAX_HDRS */
    size_t max_hdrs, max_url, max_head;
    /* when > 0: the shortest prefix that must already give the error */
    size_t err_at;
    /* expected fields of a complete head; unset strings are not checked */
    const char *method;
    http_method_t mid;
    const char *target, *path, *query, *host;
    bool no_query, no_host, v10, close, chunked, expect;
    int64_t cl1;  /* expected content_length + 1 (so that 0 means "absent") */
    int nh1;      /* expected num_headers + 1; 0 means not checked */
    const char *hdrs[8]; /* expected name, value, name, value, ... */
} pcase_t;

#define C(s, ...) {.line = __LINE__, .in = (s), .len = sizeof(s) - 1, __VA_ARGS__}
#define CL(n) .cl1 = (int64_t)(n) + 1
#define NH(n) .nh1 = (n) + 1
#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define REQ1 "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
#define POST_HEAD "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"

static const pcase_t cases[] = {
    /* --- basics --- */
    C("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", .ret = ALL, .method = "GET",
      .mid = HTTP_METHOD_GET, .target = "/", .path = "/", .no_query = true, .host = "example.com",
      NH(1), .hdrs = {"Host", "example.com"}),
    C("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .target = "/a/b?x=1&y=2",
      .path = "/a/b", .query = "x=1&y=2"),
    C("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/a", .query = ""),
    C("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/a", .query = "b?c"),
    C("GET /%2e%2E/x%20y HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/%2e%2E/x%20y",
      .no_query = true),
    C("GET /{}|\"<>^`[]\\ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/{}|\"<>^`[]\\"),
    C("GET / HTTP/1.0\r\n\r\n", .ret = ALL, .v10 = true, .close = true, .no_host = true, NH(0)),
    C("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", .ret = ALL, .v10 = true),
    C("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .ret = ALL, .v10 = true),
    C("GET / HTTP/1.0\r\nConnection: foo, keep-alive , bar\r\n\r\n", .ret = ALL, .v10 = true),
    C("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", .ret = ALL,
      .v10 = true, .close = true),
    C("GET / HTTP/1.0\r\nHost: h\r\n\r\n", .ret = ALL, .v10 = true, .close = true, .host = "h"),
    C(H11 "Connection: close\r\n\r\n", .ret = ALL, .close = true),
    C(H11 "Connection: CLOSE\r\n\r\n", .ret = ALL, .close = true),
    C(H11 "Connection: keep-alive, close\r\n\r\n", .ret = ALL, .close = true),
    C(H11 "Connection: Upgrade,close\r\n\r\n", .ret = ALL, .close = true),
    C(H11 "Connection: closed\r\n\r\n", .ret = ALL),
    C(H11 "Connection:\r\n\r\n", .ret = ALL, NH(2), .hdrs = {"Host", "a", "Connection", ""}),

    /* --- line ends and leading empty lines --- */
    C("GET / HTTP/1.1\nHost: h\n\n", .ret = ALL, .host = "h"),
    C("GET / HTTP/1.1\r\nHost: h\n\r\n", .ret = ALL, .host = "h"),
    C("GET / HTTP/1.1\nHost: h\r\n\n", .ret = ALL, .host = "h"),
    C("\r\n\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/"),
    C("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 9),
    C("\n\n\n\n\n", .ret = -400, .err_at = 5),
    C("\r\r\n", .ret = -400, .err_at = 2),
    C("\r", .ret = HTTP_PARSE_AGAIN),
    C("", .ret = HTTP_PARSE_AGAIN),
    C("GET / HTTP/1.1\r\nHost: h\r\n", .ret = HTTP_PARSE_AGAIN),
    C("GET / HTTP/1.1\r\nHost: h\r\n\r", .ret = HTTP_PARSE_AGAIN),

    /* --- bare CR anywhere is -400 as soon as the next byte is not LF --- */
    C("GET / HTTP/1.1\rHost: h\r\n\r\n", .ret = -400, .err_at = 16),
    C("GET / HTTP/1.1\r\nX: a\rb\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 22),
    C("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", .ret = -400, .err_at = 22),
    C("GET / HTTP/1.1\r\nHost: h\r\n\rX", .ret = -400, .err_at = 27),
    C("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", .ret = -400, .err_at = 27),
    C("GET / HTTP/1.1\r\nX\r: a\r\n\r\n", .ret = -400, .err_at = 18),

    /* --- request line --- */
    C("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 5),
    C("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 7),
    C("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", .ret = -400, .err_at = 15),
    C(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 1),
    C("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 4),
    C("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 6),
    C("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 2),
    C("G\0T / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 2),
    C("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 6),
    C("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 6),
    C("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 9),
    C("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 6),
    C("GET /\r\n\r\n", .ret = -400, .err_at = 6),          /* HTTP/0.9 */
    C("GET\r\n\r\n", .ret = -400, .err_at = 4),
    C("GET / HTTP/2.0\r\nHost: h\r\n\r\n", .ret = -505, .err_at = 16),
    C("GET / HTTP/1.2\r\nHost: h\r\n\r\n", .ret = -505, .err_at = 16),
    C("GET / HTTP/0.9\r\n\r\n", .ret = -505),
    C("GET / HTTP/9.9\n", .ret = -505, .err_at = 15),
    C("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .ret = -505),
    C("GET / HTTP/1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 13),
    C("GET / HTTP/1.\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 14),
    C("GET / HTTP/1.10\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 15),
    C("GET / HTTP/11.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 13),
    C("GET / http/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 7),
    C("GET / HTTPS/1.1\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 11),
    C("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", .ret = -400, .err_at = 15),
    C("GET / HTTP/1.1", .ret = HTTP_PARSE_AGAIN),
    C("get / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "get", .mid = HTTP_METHOD_OTHER),
    C("PROPFIND /x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "PROPFIND",
      .mid = HTTP_METHOD_OTHER),
    C("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "HEAD", .mid = HTTP_METHOD_HEAD),
    C("POST / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "POST", .mid = HTTP_METHOD_POST),
    C("PUT / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "PUT", .mid = HTTP_METHOD_PUT),
    C("DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "DELETE",
      .mid = HTTP_METHOD_DELETE),
    C("PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "PATCH",
      .mid = HTTP_METHOD_PATCH),
    C("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "TRACE",
      .mid = HTTP_METHOD_TRACE),
    C("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "CONNECT",
      .mid = HTTP_METHOD_CONNECT),
    C("!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL,
      .method = "!#$%&'*+-.^_`|~09azAZ"),

    /* --- target forms --- */
    C("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .method = "OPTIONS",
      .mid = HTTP_METHOD_OPTIONS, .target = "*", .path = "*", .no_query = true),
    C("GET * HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("OPTIONS *?x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET ?x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", .ret = -400),
    C("GET http://example.com/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", .ret = ALL,
      .target = "http://example.com/p/q?x=1", .path = "/p/q", .query = "x=1",
      .host = "example.com", .hdrs = {"Host", "other"}),
    C("GET https://EXAMPLE.com:8443 HTTP/1.1\r\nHost: x\r\n\r\n", .ret = ALL, .path = "/",
      .no_query = true, .host = "EXAMPLE.com:8443"),
    C("GET HTTP://h?x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/", .query = "x",
      .host = "h"),
    C("GET hTTpS://h/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/", .host = "h"),
    C("GET http://[::1]:8080/x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = ALL, .path = "/x",
      .host = "[::1]:8080"),
    C("GET http://h/ HTTP/1.0\r\n\r\n", .ret = ALL, .v10 = true, .close = true, .host = "h"),
    C("GET http://h/ HTTP/1.1\r\n\r\n", .ret = -400), /* Host still required in 1.1 */
    C("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET http:/h/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),
    C("GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n", .ret = -400),

    /* --- field syntax --- */
    C(H11 "X:   a b \t \r\n\r\n", .ret = ALL, NH(2), .hdrs = {"Host", "a", "X", "a b"}),
    C(H11 "X:\ta\tb\t\r\nY:\r\nZ:  \r\n\r\n", .ret = ALL, NH(4),
      .hdrs = {"Host", "a", "X", "a\tb", "Y", "", "Z", ""}),
    C(H11 "X: caf\xc3\xa9 \x80\xff\r\n\r\n", .ret = ALL,
      .hdrs = {"Host", "a", "X", "caf\xc3\xa9 \x80\xff"}),
    C(H11 "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", .ret = ALL,
      .hdrs = {"Host", "a", "!#$%&'*+-.^_`|~09azAZ", "v"}),
    C(H11 "X: a\r\n b\r\n\r\n", .ret = -400, .err_at = 32),       /* obs-fold */
    C(H11 "X: a\r\n\tb\r\n\r\n", .ret = -400, .err_at = 32),
    C("GET / HTTP/1.1\r\n Host: h\r\n\r\n", .ret = -400, .err_at = 17),
    C("GET / HTTP/1.1\r\nHost : h\r\n\r\n", .ret = -400, .err_at = 21),
    C("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", .ret = -400, .err_at = 21),
    C(H11 ": v\r\n\r\n", .ret = -400, .err_at = 26),
    C(H11 "X(y: v\r\n\r\n", .ret = -400, .err_at = 27),
    C(H11 "X\x80: v\r\n\r\n", .ret = -400, .err_at = 27),
    C(H11 "X y: v\r\n\r\n", .ret = -400, .err_at = 27),
    C(H11 "Xy\r\n\r\n", .ret = -400, .err_at = 28),
    C(H11 "Xy\n\r\n", .ret = -400, .err_at = 28),
    C(H11 "X: a\x01" "b\r\n\r\n", .ret = -400, .err_at = 30),
    C(H11 "X: a\0b\r\n\r\n", .ret = -400, .err_at = 30),
    C(H11 "X: a\x7f\r\n\r\n", .ret = -400, .err_at = 30),
    C(H11 "X: a\x1f\r\n\r\n", .ret = -400, .err_at = 30),
    C(H11 "X: a\x0b\r\n\r\n", .ret = -400, .err_at = 30),
    C(H11 "X: 0123456789abcdef0123456789abcdef\x01\r\n\r\n", .ret = -400, .err_at = 61),

    /* --- Host --- */
    C("GET / HTTP/1.1\r\n\r\n", .ret = -400, .err_at = 18),
    C("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", .ret = -400, .err_at = 34),
    C("GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: \r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: []\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", .ret = -400),
    C("GET / HTTP/1.1\r\nHost: a:8080\r\n\r\n", .ret = ALL, .host = "a:8080"),
    C("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", .ret = ALL, .host = "a:"),
    C("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", .ret = ALL, .host = "[::1]:80"),
    C("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", .ret = ALL, .host = "10.0.0.1"),
    C("GET / HTTP/1.1\r\nHOST:   xn--bcher-kva.example. \r\n\r\n", .ret = ALL,
      .host = "xn--bcher-kva.example."),
    C("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", .ret = -400),

    /* --- Content-Length --- */
    C(H11 "Content-Length: 5\r\n\r\n", .ret = ALL, CL(5)),
    C(H11 "Content-Length: 0\r\n\r\n", .ret = ALL, CL(0)),
    C(H11 "content-length:   42  \r\n\r\n", .ret = ALL, CL(42)),
    C(H11 "Content-Length: 5, 5\r\n\r\n", .ret = ALL, CL(5)),
    C(H11 "Content-Length: 5,5 ,\t5\r\n\r\n", .ret = ALL, CL(5)),
    C(H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", .ret = ALL, CL(5)),
    C(H11 "Content-Length: 5\r\nContent-Length: 005\r\n\r\n", .ret = ALL, CL(5)),
    C(H11 "Content-Length: 4611686018427387904\r\n\r\n", .ret = ALL, CL(4611686018427387904LL)),
    C(H11 "Content-Length: 0004611686018427387904\r\n\r\n", .ret = ALL,
      CL(4611686018427387904LL)),
    C(H11 "Content-Length: 4611686018427387905\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 9223372036854775807\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 99999999999999999999999999\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5, 6\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", .ret = -400),
    C(H11 "Content-Length:\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: abc\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: -1\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: +5\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5 5\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5,\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: ,5\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5,,5\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 0x5\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5;\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: \"5\"\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5\r\nContent-Length: x\r\n\r\n", .ret = -400),
    C(H11 "Content-Length : 5\r\n\r\n", .ret = -400),

    /* --- Transfer-Encoding --- */
    C(H11 "Transfer-Encoding: chunked\r\n\r\n", .ret = ALL, .chunked = true),
    C(H11 "transfer-encoding: CHUNKED\r\n\r\n", .ret = ALL, .chunked = true),
    C(H11 "Transfer-Encoding: chunked ,\r\n\r\n", .ret = ALL, .chunked = true),
    C(H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding: gzip\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding: identity\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding: xchunked\r\n\r\n", .ret = -501),
    C(H11 "Transfer-Encoding:\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: , ,\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: chun ked\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding : chunked\r\n\r\n", .ret = -400),
    C(H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", .ret = -400),
    C(H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .ret = -400),
    C("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .ret = -400),

    /* --- Expect --- */
    C(H11 "Expect: 100-continue\r\n\r\n", .ret = ALL, .expect = true),
    C(H11 "Expect: 100-Continue \r\n\r\n", .ret = ALL, .expect = true),
    C("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", .ret = ALL, .v10 = true, .close = true,
      .expect = false),
    C(H11 "Expect: foo\r\n\r\n", .ret = -417),
    C(H11 "Expect:\r\n\r\n", .ret = -417),
    C(H11 "Expect: 100-continue, foo\r\n\r\n", .ret = -417),
    C(H11 "Expect: 100-continue\r\nX: \x01\r\n\r\n", .ret = -400),

    /* --- pipelining and bodies: the return value is the head length only --- */
    C(REQ1 "GET /two HTTP/1.1\r\nHost: a\r\n\r\n", .ret = sizeof(REQ1) - 1, .path = "/one"),
    C(REQ1 "garbage\x01\r\r", .ret = sizeof(REQ1) - 1, .path = "/one"),
    C(POST_HEAD "hello", .ret = sizeof(POST_HEAD) - 1, CL(5), .method = "POST",
      .mid = HTTP_METHOD_POST),

    /* --- limits --- */
    C("GET /234567890 HTTP/1.1\r\nHost: h\r\n\r\n", .max_url = 10, .ret = ALL),
    C("GET /2345678901 HTTP/1.1\r\nHost: h\r\n\r\n", .max_url = 10, .ret = -414, .err_at = 15),
    C("GET /23456789012345", .max_url = 10, .ret = -414, .err_at = 15),
    C("GET http://h/0 HTTP/1.1\r\nHost: h\r\n\r\n", .max_url = 10, .ret = ALL),
    C("GET / HTTP/1.1\r\nHost: h\r\n\r\n", .max_head = 27, .ret = ALL),
    C("GET / HTTP/1.1\r\nHost: h\r\n\r\n", .max_head = 26, .ret = -431, .err_at = 26),
    C("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET", .max_head = 27, .ret = 27),
    C("GET / HTTP/1.1\r\nHost: h\r\n\n", .max_head = 26, .ret = ALL),
    C("GET /a HTTP/1.1\r\n", .max_head = 8, .ret = -431, .err_at = 8),
    C("GET /23456789012345", .max_url = 10, .max_head = 8, .ret = -431, .err_at = 8),
    C("GET /23456789012345", .max_url = 10, .max_head = 16, .ret = -414, .err_at = 15),
    C("GET /\x01", .max_head = 6, .ret = -400, .err_at = 6),
    C(H11 "A: 1\r\nB: 2\r\n\r\n", .max_hdrs = 3, .ret = ALL, NH(3)),
    C(H11 "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", .max_hdrs = 3, .ret = -431, .err_at = 38),
    C(H11 "\r\n", .max_hdrs = 1, .ret = ALL, NH(1)),
};

typedef struct result {
    int ret;
    http_request_t req;
    http_header_t hdrs[MAX_HDRS];
} result_t;

/* malloc that never returns NULL, so the compiler knows the pointer is valid. */
static void *must_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) abort();
    return p;
}

static int parse(const char *in, size_t len, const pcase_t *c, result_t *r, char **copy) {
    /* An exact-size heap copy, so that reading past `len` is caught by AddressSanitizer. */
    char *b = must_malloc(len);
    memcpy(b, in, len);
    http_limits_t lim = {.max_url_bytes = c->max_url, .max_header_bytes = c->max_head};
    size_t max_hdrs = c->max_hdrs ? c->max_hdrs : MAX_HDRS;
    r->ret = http_parse_request(b, len, &r->req, r->hdrs, max_hdrs, &lim);
    *copy = b;
    return r->ret;
}

/* Offset of a slice in its buffer, or -1 for STR_NULL, -2 for a slice outside the buffer. */
static long off(str_t s, const char *b, size_t len) {
    if (s.p == NULL) return -1;
    if (s.p < b || s.p + s.len > b + len) return -2;
    return (long)(s.p - b);
}

static void check_slice(const pcase_t *c, const char *what, str_t s, const char *b, size_t len,
                        const char *want) {
    if (want == NULL) return;
    if (s.p == NULL || s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        fail_msg("line %d: %s is '%.*s', want '%s'", c->line, what, (int)s.len, s.p ? s.p : "",
                 want);
    if (off(s, b, len) < 0)
        fail_msg("line %d: %s does not point into the buffer", c->line, what);
}

static void check_fields(const pcase_t *c, const result_t *r, const char *b, size_t len) {
    const http_request_t *q = &r->req;
    check_slice(c, "method", q->method, b, len, c->method);
    if (c->method && q->method_id != c->mid)
        fail_msg("line %d: method_id %d, want %d", c->line, q->method_id, c->mid);
    check_slice(c, "target", q->target, b, len, c->target);
    check_slice(c, "path", q->path, b, len, c->path);
    check_slice(c, "query", q->query, b, len, c->query);
    if (c->query && !q->has_query) fail_msg("line %d: has_query false", c->line);
    if (c->no_query && (q->has_query || q->query.p != NULL))
        fail_msg("line %d: unexpected query", c->line);
    check_slice(c, "host", q->host, b, len, c->host);
    if (c->no_host && q->host.p != NULL) fail_msg("line %d: unexpected host", c->line);
    if (q->minor_version != (c->v10 ? 0 : 1))
        fail_msg("line %d: minor_version %d", c->line, q->minor_version);
    if (q->content_length != c->cl1 - 1)
        fail_msg("line %d: content_length %lld, want %lld", c->line, (long long)q->content_length,
                 (long long)(c->cl1 - 1));
    if (q->chunked != c->chunked) fail_msg("line %d: chunked %d", c->line, q->chunked);
    if (q->keep_alive != !c->close) fail_msg("line %d: keep_alive %d", c->line, q->keep_alive);
    if (q->expect_continue != c->expect)
        fail_msg("line %d: expect_continue %d", c->line, q->expect_continue);
    if (q->head_len != (size_t)r->ret) fail_msg("line %d: head_len %zu", c->line, q->head_len);
    if (q->headers != r->hdrs) fail_msg("line %d: headers not the caller's array", c->line);
    if (c->nh1 && q->num_headers != (size_t)(c->nh1 - 1))
        fail_msg("line %d: num_headers %zu, want %d", c->line, q->num_headers, c->nh1 - 1);
    for (size_t i = 0; i < 8 && c->hdrs[i]; i += 2) {
        if (i / 2 >= q->num_headers) fail_msg("line %d: header %zu missing", c->line, i / 2);
        check_slice(c, "header name", q->headers[i / 2].name, b, len, c->hdrs[i]);
        check_slice(c, "header value", q->headers[i / 2].value, b, len, c->hdrs[i + 1]);
    }
}

/* Two parses of (prefixes of) the same bytes must agree on every field, slice for slice. */
static void check_same(const pcase_t *c, size_t k, const result_t *a, const char *ab,
                       const result_t *b, const char *bb, size_t blen) {
    const http_request_t *x = &a->req, *y = &b->req;
#define SAME_SLICE(f)                                                                              \
    if (off(x->f, ab, blen) != off(y->f, bb, blen) || x->f.len != y->f.len)                        \
    fail_msg("line %d: prefix %zu differs in " #f, c->line, k)
    SAME_SLICE(method);
    SAME_SLICE(target);
    SAME_SLICE(query);
    SAME_SLICE(host);
    SAME_SLICE(path);
    if (x->method_id != y->method_id || x->has_query != y->has_query ||
        x->minor_version != y->minor_version || x->num_headers != y->num_headers ||
        x->content_length != y->content_length || x->chunked != y->chunked ||
        x->keep_alive != y->keep_alive || x->expect_continue != y->expect_continue ||
        x->head_len != y->head_len)
        fail_msg("line %d: prefix %zu differs", c->line, k);
    for (size_t i = 0; i < x->num_headers; i++) {
        SAME_SLICE(headers[i].name);
        SAME_SLICE(headers[i].value);
    }
#undef SAME_SLICE
}

static void run_case(const pcase_t *c) {
    result_t full, pre;
    char *fb, *pb;
    int want = c->ret == ALL ? (int)c->len : c->ret;
    int got = parse(c->in, c->len, c, &full, &fb);
    if (got != want) fail_msg("line %d: returned %d, want %d", c->line, got, want);
    if (got > 0) check_fields(c, &full, fb, c->len);

    size_t first_err = 0;
    for (size_t k = 0; k < c->len; k++) {
        int r = parse(c->in, k, c, &pre, &pb);
        if (got > 0 && k >= (size_t)got) {
            if (r != got) fail_msg("line %d: prefix %zu gives %d, want %d", c->line, k, r, got);
            check_same(c, k, &pre, pb, &full, fb, c->len);
        } else if (r != HTTP_PARSE_AGAIN) {
            if (got >= 0 || r != got)
                fail_msg("line %d: prefix %zu gives %d (full input: %d)", c->line, k, r, got);
            if (first_err == 0) first_err = k;
        } else if (first_err != 0) {
            fail_msg("line %d: prefix %zu gives AGAIN after an error at %zu", c->line, k,
                     first_err);
        }
        free(pb);
    }
    if (got < 0 && got != HTTP_PARSE_AGAIN && first_err == 0) first_err = c->len;
    if (c->err_at && first_err != c->err_at)
        fail_msg("line %d: error first reported at prefix %zu, want %zu", c->line, first_err,
                 c->err_at);
    free(fb);
}

static void test_table(void **state) {
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) run_case(&cases[i]);
}

/* A generated head: request line, Host, then n fields "X-Field-NNN: value-NNN". */
static char *make_head(size_t nfields, size_t value_len, size_t *len) {
    size_t cap = 64 + nfields * (32 + value_len);
    char *b = must_malloc(cap);
    size_t n = (size_t)sprintf(b, "GET /gen HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 0; i < nfields; i++) {
        n += (size_t)sprintf(b + n, "X-Field-%03zu: ", i);
        memset(b + n, 'v', value_len);
        n += value_len;
        b[n++] = '\r';
        b[n++] = '\n';
    }
    b[n++] = '\r';
    b[n++] = '\n';
    *len = n;
    return b;
}

static void test_many_headers(void **state) {
    enum { N = 200 };
    http_header_t hdrs[N + 2];
    http_request_t req;
    size_t len;
    char *b = make_head(N - 1, 5, &len); /* N fields with Host */
    assert_int_equal(http_parse_request(b, len, &req, hdrs, N, NULL), (int)len);
    assert_int_equal(req.num_headers, N);
    assert_true(str_eq(req.headers[N - 1].name, "X-Field-198", 11));
    assert_true(str_eq(req.headers[N - 1].value, "vvvvv", 5));
    assert_int_equal(http_parse_request(b, len, &req, hdrs, N - 1, NULL), -431);
    assert_int_equal(http_parse_request(b, len, &req, hdrs, N + 2, NULL), (int)len);
    assert_int_equal(http_parse_request(b, len, &req, NULL, 0, NULL), -431);
    /* An HTTP/1.0 head without fields needs no array at all. */
    assert_int_equal(http_parse_request("GET / HTTP/1.0\r\n\r\n", 18, &req, NULL, 0, NULL), 18);
    free(b);
}

static void test_long_value_and_head_limit(void **state) {
    http_header_t hdrs[8];
    http_request_t req;
    size_t len;
    char *b = make_head(2, 20000, &len);
    http_limits_t lim = {.max_header_bytes = len};
    assert_int_equal(http_parse_request(b, len, &req, hdrs, 8, NULL), (int)len);
    assert_int_equal(req.headers[2].value.len, 20000);
    assert_int_equal(http_parse_request(b, len, &req, hdrs, 8, &lim), (int)len);
    lim.max_header_bytes = len - 1;
    assert_int_equal(http_parse_request(b, len, &req, hdrs, 8, &lim), -431);
    /* -431 is known as soon as max_header_bytes bytes have arrived without the end of the head. */
    assert_int_equal(http_parse_request(b, len - 1, &req, hdrs, 8, &lim), -431);
    assert_int_equal(http_parse_request(b, len - 2, &req, hdrs, 8, &lim), HTTP_PARSE_AGAIN);
    free(b);
}

static void test_long_target(void **state) {
    enum { URL = 8000 };
    char *b = must_malloc(URL + 64);
    http_header_t hdrs[4];
    http_request_t req;
    memcpy(b, "GET /", 5);
    memset(b + 5, 'a', URL - 1); /* target of URL bytes */
    size_t n = 4 + URL;
    n += (size_t)sprintf(b + n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    http_limits_t lim = {.max_url_bytes = URL};
    assert_int_equal(http_parse_request(b, n, &req, hdrs, 4, &lim), (int)n);
    assert_int_equal(req.path.len, URL);
    lim.max_url_bytes = URL - 1;
    assert_int_equal(http_parse_request(b, n, &req, hdrs, 4, &lim), -414);
    assert_int_equal(http_parse_request(b, 4 + URL, &req, hdrs, 4, &lim), -414);
    assert_int_equal(http_parse_request(b, 3 + URL, &req, hdrs, 4, &lim), HTTP_PARSE_AGAIN);
    free(b);
}

static void test_find_header(void **state) {
    static const char in[] =
        "GET / HTTP/1.1\r\nHost: h\r\nX-Thing: 1\r\nx-thing: 2\r\nCookie: c\r\n\r\n";
    http_header_t hdrs[8];
    http_request_t req;
    int len = (int)sizeof(in) - 1;
    assert_int_equal(http_parse_request(in, (size_t)len, &req, hdrs, 8, NULL), len);
    const http_header_t *h = HTTP_FIND_HEADER(&req, "x-thing");
    assert_non_null(h);
    assert_true(str_eq(h->value, "1", 1));
    h = HTTP_FIND_HEADER(&req, "cookie");
    assert_non_null(h);
    assert_true(str_eq(h->value, "c", 1));
    assert_null(HTTP_FIND_HEADER(&req, "x-thin"));
    assert_null(HTTP_FIND_HEADER(&req, "content-length"));
}

static void test_method_name(void **state) {
    assert_string_equal(http_method_name(HTTP_METHOD_GET), "GET");
    assert_string_equal(http_method_name(HTTP_METHOD_HEAD), "HEAD");
    assert_string_equal(http_method_name(HTTP_METHOD_POST), "POST");
    assert_string_equal(http_method_name(HTTP_METHOD_PUT), "PUT");
    assert_string_equal(http_method_name(HTTP_METHOD_DELETE), "DELETE");
    assert_string_equal(http_method_name(HTTP_METHOD_OPTIONS), "OPTIONS");
    assert_string_equal(http_method_name(HTTP_METHOD_PATCH), "PATCH");
    assert_string_equal(http_method_name(HTTP_METHOD_TRACE), "TRACE");
    assert_string_equal(http_method_name(HTTP_METHOD_CONNECT), "CONNECT");
    assert_null(http_method_name(HTTP_METHOD_OTHER));
    assert_null(http_method_name((http_method_t)99));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_many_headers),
        cmocka_unit_test(test_long_value_and_head_limit),
        cmocka_unit_test(test_long_target),
        cmocka_unit_test(test_find_header),
        cmocka_unit_test(test_method_name),
    };
    printf("http parser: %zu table cases\n", sizeof(cases) / sizeof(cases[0]));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
