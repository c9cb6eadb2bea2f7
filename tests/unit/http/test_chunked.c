/* Unit tests for src/http/chunked.c.
 *
 * Every table case is decoded in one call, split at every point into two pieces, split into three
 * pieces at every pair of points (short inputs), and fed byte by byte with empty calls in between.
 * Each piece is copied into a buffer of exactly its size. All ways must give the same decoded data,
 * the same result and the same bytes left over after the body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/chunked.h"

#define AGAIN HTTP_CHUNKED_AGAIN
#define ERROR HTTP_CHUNKED_ERROR

typedef struct ccase {
    int line;
    const char *in;
    size_t len;
    ssize_t ret;     /* AGAIN, ERROR, or the number of bytes after the body */
    const char *out; /* decoded data (for ERROR: decoded before the error) */
    size_t out_len;
} ccase_t;

#define C(s, r, o) {__LINE__, (s), sizeof(s) - 1, (r), (o), sizeof(o) - 1}
#define BODY "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

static const ccase_t cases[] = {
    /* --- well-formed bodies --- */
    C("5\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C(BODY, 0, "hello world"),
    C("0\r\n\r\n", 0, ""),
    C("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", 0, "abc"),
    C("a\r\n0123456789\r\nA\r\nABCDEFGHIJ\r\n0\r\n\r\n", 0, "0123456789ABCDEFGHIJ"),
    C("0005\r\nhello\r\n000\r\n\r\n", 0, "hello"),
    C("0000000000000005\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("7\r\n0\r\n\r\n\r\n\r\n0\r\n\r\n", 0, "0\r\n\r\n\r\n"), /* framing-like bytes inside data */
    C("5\nhello\n0\n\n", 0, "hello"),                          /* bare LF line ends */
    C("5\r\nhello\n0\r\n\n", 0, "hello"),
    C("3\r\n\0\xff\x80\r\n0\r\n\r\n", 0, "\0\xff\x80"),

    /* --- bytes after the body are left over, moved behind the data --- */
    C(BODY "GET / HTTP/1.1\r\n", 16, "hello world"),
    C("0\r\n\r\nX", 1, ""),
    C("0\r\n\r\n\r\n", 2, ""),
    C("5\r\nhello\r\n0\r\n\r\n0\r\n\r\n", 5, "hello"),

    /* --- incomplete --- */
    C("", AGAIN, ""),
    C("5", AGAIN, ""),
    C("5\r", AGAIN, ""),
    C("5\r\nhel", AGAIN, "hel"),
    C("5\r\nhello", AGAIN, "hello"),
    C("5\r\nhello\r", AGAIN, "hello"),
    C("5\r\nhello\r\n", AGAIN, "hello"),
    C("0\r\n", AGAIN, ""),
    C("0\r\n\r", AGAIN, ""),
    C("0\r\nX: 1\r\n", AGAIN, ""),
    C("7fffffffffffffff\r\nabc", AGAIN, "abc"),
    C("5;a=\"x", AGAIN, ""),

    /* --- chunk-size --- */
    C("\r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("5 5\r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("0x5\r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("+5\r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("-1\r\n", ERROR, ""),
    C(" 5\r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("\t5\r\n", ERROR, ""),
    C("5 \r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("5\t\r\n", ERROR, ""),
    C("g\r\n", ERROR, ""),
    C("5g\r\n", ERROR, ""),
    C(";a\r\n", ERROR, ""),
    C("00000000000000005\r\nhello\r\n0\r\n\r\n", ERROR, ""), /* 17 digits */
    C("8000000000000000\r\n", ERROR, ""),                   /* 2^63 */
    C("ffffffffffffffff\r\n", ERROR, ""),
    C("10000000000000000\r\n", ERROR, ""),
    C("5\rhello\r\n0\r\n\r\n", ERROR, ""),
    C("5\r\r\n", ERROR, ""),
    C("5\r\nhello\r\n6\r\n worl", AGAIN, "hello worl"),
    C("5\r\nhello\r\nx\r\n", ERROR, "hello"),

    /* --- chunk extensions: BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] --- */
    C("5;ext\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5 ;ext\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5\t; \text\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5;a=b\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5 ; a = b ; c ;d=\"\"\r\nhello\r\n0;last\r\n\r\n", 0, "hello"),
    C("5;a=\"q \\\"x\\\\ \\\t\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5;a;b;c=1;d\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", 0, "hello"),
    C("5;\r\nhello\r\n0\r\n\r\n", ERROR, ""),
    C("5; \r\n", ERROR, ""),
    C("5;;a\r\n", ERROR, ""),
    C("5;=b\r\n", ERROR, ""),
    C("5;a=\r\n", ERROR, ""),
    C("5;a= \r\n", ERROR, ""),
    C("5;a \r\n", ERROR, ""),
    C("5;a=b \r\n", ERROR, ""),
    C("5;a=\"x\" \r\n", ERROR, ""),
    C("5;a=b=c\r\n", ERROR, ""),
    C("5;a=b c\r\n", ERROR, ""),
    C("5;a b\r\n", ERROR, ""),
    C("5;a\"\r\n", ERROR, ""),
    C("5;a=\"x\"y\r\n", ERROR, ""),
    C("5;a=\"x\r\n\"\r\n", ERROR, ""),
    C("5;a=\"\x01\"\r\n", ERROR, ""),
    C("5;a=\"\\\x01\"\r\n", ERROR, ""),
    C("5;a=\"\x7f\"\r\n", ERROR, ""),
    C("5;a=(b)\r\n", ERROR, ""),
    C("5;a\rb\r\n", ERROR, ""),
    C("5;\xc3\xa9\r\n", ERROR, ""),

    /* --- CRLF after chunk data --- */
    C("5\r\nhelloX\r\n0\r\n\r\n", ERROR, "hello"),
    C("5\r\nhello\r0\r\n\r\n", ERROR, "hello"),
    C("5\r\nhello\r\r\n", ERROR, "hello"),
    C("5\r\nhello0\r\n\r\n", ERROR, "hello"),
    C("5\r\nhelloX0\r\n\r\n", ERROR, "hello"),
    C("5\r\nhello\rX0\r\n\r\n", ERROR, "hello"),
    C("5\r\nhello \r\n0\r\n\r\n", ERROR, "hello"),

    /* --- trailer section --- */
    C("0\r\nX-T: a\r\n\r\n", 0, ""),
    C("5\r\nhello\r\n0\r\nX-T: a\r\nY:\r\nZ:  b \t c \xff\r\n\r\nnext", 4, "hello"),
    C("0\nX: a\n\n", 0, ""),
    C("0\r\n X: a\r\n\r\n", ERROR, ""),
    C("0\r\n\tX: a\r\n\r\n", ERROR, ""),
    C("0\r\nX: a\r\n b\r\n\r\n", ERROR, ""),
    C("0\r\nX T: a\r\n\r\n", ERROR, ""),
    C("0\r\nX : a\r\n\r\n", ERROR, ""),
    C("0\r\n: a\r\n\r\n", ERROR, ""),
    C("0\r\nX\r\n\r\n", ERROR, ""),
    C("0\r\nX: \x01\r\n\r\n", ERROR, ""),
    C("0\r\nX: a\x7f\r\n\r\n", ERROR, ""),
    C("0\r\nX: a\rb\r\n\r\n", ERROR, ""),
    C("0\r\nX: a\r\n\rX", ERROR, ""),
    C("0\r\n\rX", ERROR, ""),
    C("0\r\nX(: a\r\n\r\n", ERROR, ""),
};

typedef struct run {
    ssize_t ret;
    char *out;
    size_t out_len;
    char *left; /* bytes after the body: what the last call left over plus the pieces never fed */
    size_t left_len;
} run_t;

/* Decode `in` fed as the pieces between the cut points bounds[0] = 0 < ... < bounds[n] = len. */
/* malloc that never returns NULL, so the compiler knows the pointer is valid. */
static void *must_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) abort();
    return p;
}

static void run_pieces(const ccase_t *c, const size_t *bounds, size_t n, bool empty_calls,
                       run_t *r) {
    http_chunked_t d;
    http_chunked_init(&d);
    r->ret = AGAIN;
    r->out = must_malloc(c->len + 1);
    r->left = must_malloc(c->len + 1);
    r->out_len = r->left_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t plen = bounds[i + 1] - bounds[i], got = plen;
        char *piece = must_malloc(plen);
        memcpy(piece, c->in + bounds[i], plen);
        if (empty_calls) {
            size_t zero = 0;
            if (http_chunked_decode(&d, piece, &zero) != AGAIN || zero != 0)
                fail_msg("line %d: empty call before piece %zu", c->line, i);
        }
        r->ret = http_chunked_decode(&d, piece, &got);
        if (got > plen) fail_msg("line %d: *len grew", c->line);
        memcpy(r->out + r->out_len, piece, got);
        r->out_len += got;
        if (r->ret >= 0) {
            if ((size_t)r->ret > plen - got) fail_msg("line %d: leftover too large", c->line);
            memcpy(r->left, piece + got, (size_t)r->ret);
            r->left_len = (size_t)r->ret + (c->len - bounds[i + 1]);
            memcpy(r->left + r->ret, c->in + bounds[i + 1], c->len - bounds[i + 1]);
            /* A finished decoder hands everything back. */
            size_t again = plen;
            if (http_chunked_decode(&d, piece, &again) != (ssize_t)plen || again != 0)
                fail_msg("line %d: call after the end", c->line);
        }
        if (r->ret == ERROR) {
            size_t again = plen;
            if (http_chunked_decode(&d, piece, &again) != ERROR)
                fail_msg("line %d: call after an error", c->line);
        }
        free(piece);
        if (r->ret != AGAIN) break;
    }
    if (d.total != r->out_len)
        fail_msg("line %d: total %llu, decoded %zu", c->line, (unsigned long long)d.total,
                 r->out_len);
}

static void check_run(const ccase_t *c, const char *how, run_t *r) {
    ssize_t want_left = c->ret >= 0 ? c->ret : 0;
    /* When the body ends the count left over depends on the split, the bytes left over do not. */
    bool ok = (c->ret < 0 ? r->ret == c->ret : r->ret >= 0) && r->out_len == c->out_len &&
              memcmp(r->out, c->out, c->out_len) == 0 &&
              r->left_len == (size_t)want_left &&
              memcmp(r->left, c->in + c->len - want_left, (size_t)want_left) == 0;
    if (!ok)
        fail_msg("line %d (%s): returned %zd with %zu bytes '%.*s', %zu left over; want %zd, '%s'",
                 c->line, how, r->ret, r->out_len, (int)r->out_len, r->out, r->left_len, c->ret,
                 c->out);
    free(r->out);
    free(r->left);
}

static void run_case(const ccase_t *c) {
    size_t len = c->len;
    size_t *b = must_malloc((len + 4) * sizeof(*b));
    run_t r;

    b[0] = 0, b[1] = len;
    run_pieces(c, b, 1, false, &r);
    check_run(c, "whole", &r);
    for (size_t i = 0; i <= len; i++) { /* two pieces, either possibly empty */
        b[0] = 0, b[1] = i, b[2] = len;
        run_pieces(c, b, 2, false, &r);
        check_run(c, "two pieces", &r);
    }
    if (len <= 80) {
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                b[0] = 0, b[1] = i, b[2] = j, b[3] = len;
                run_pieces(c, b, 3, false, &r);
                check_run(c, "three pieces", &r);
            }
    }
    for (size_t i = 0; i <= len; i++) b[i] = i;
    run_pieces(c, b, len, true, &r);
    check_run(c, "byte by byte", &r);
    free(b);
}

static void test_table(void **state) {
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) run_case(&cases[i]);
}

/* Decode a generated body in one call and byte by byte; both must give `want`. */
static void check_generated(const char *in, size_t len, ssize_t want, const char *out,
                            size_t out_len) {
    ccase_t c = {__LINE__, in, len, want, out, out_len};
    size_t *b = must_malloc((len + 1) * sizeof(*b));
    run_t r;
    b[0] = 0, b[1] = len;
    run_pieces(&c, b, 1, false, &r);
    check_run(&c, "whole", &r);
    for (size_t i = 0; i <= len; i++) b[i] = i;
    run_pieces(&c, b, len, false, &r);
    check_run(&c, "byte by byte", &r);
    for (size_t i = 0; i <= len; i += 997) { /* a sample of two-piece splits */
        size_t two[3] = {0, i, len};
        run_pieces(&c, two, 2, false, &r);
        check_run(&c, "two pieces", &r);
    }
    free(b);
}

static void test_size_line_limit(void **state) {
    char *in = must_malloc(HTTP_CHUNKED_MAX_LINE + 64);
    /* "1;aaa...": exactly HTTP_CHUNKED_MAX_LINE bytes before the CRLF is accepted. */
    memcpy(in, "1;", 2);
    memset(in + 2, 'a', HTTP_CHUNKED_MAX_LINE - 2);
    size_t n = HTTP_CHUNKED_MAX_LINE;
    n += (size_t)sprintf(in + n, "\r\nX\r\n0\r\n\r\n");
    check_generated(in, n, 0, "X", 1);
    /* One byte more is an error, detected before the line ends. */
    memset(in + 2, 'a', HTTP_CHUNKED_MAX_LINE - 1);
    check_generated(in, HTTP_CHUNKED_MAX_LINE + 1, ERROR, "", 0);
    free(in);
}

static void test_trailer_limit(void **state) {
    enum { MAX = HTTP_CHUNKED_MAX_TRAILER };
    char *in = must_malloc(MAX + 64);
    /* "0\r\n" then "X: vvv\r\n\r\n" = MAX trailer bytes, counting both line ends. */
    size_t n = (size_t)sprintf(in, "0\r\nX: ");
    memset(in + n, 'v', MAX - 7);
    n += MAX - 7;
    n += (size_t)sprintf(in + n, "\r\n\r\n");
    check_generated(in, n, 0, "", 0);
    n = (size_t)sprintf(in, "0\r\nX: ");
    memset(in + n, 'v', MAX - 6);
    n += MAX - 6;
    n += (size_t)sprintf(in + n, "\r\n\r\n");
    check_generated(in, n, ERROR, "", 0);
    free(in);
}

static void test_big_chunks(void **state) {
    enum { DATA = 100000 };
    char *in = must_malloc(DATA + 256), *out = must_malloc(DATA);
    size_t n = 0, o = 0;
    /* chunks of 1, 2, 4, ... bytes, then one of the rest */
    for (size_t sz = 1; o + sz <= DATA; sz *= 2) {
        n += (size_t)sprintf(in + n, "%zx;n=%zu\r\n", sz, sz);
        for (size_t i = 0; i < sz; i++, o++) in[n++] = out[o] = (char)('a' + (o * 7) % 26);
        in[n++] = '\r', in[n++] = '\n';
    }
    size_t rest = DATA - o;
    n += (size_t)sprintf(in + n, "%zX\r\n", rest);
    for (size_t i = 0; i < rest; i++, o++) in[n++] = out[o] = (char)(o & 0xff);
    n += (size_t)sprintf(in + n, "\r\n0\r\nT: x\r\n\r\nGET");
    check_generated(in, n, 3, out, DATA);
    free(in);
    free(out);
}

static void test_init_and_zeroed(void **state) {
    http_chunked_t a, b = {0};
    memset(&a, 0x5a, sizeof(a));
    http_chunked_init(&a);
    char x[] = "3\r\nabc\r\n0\r\n\r\n", y[] = "3\r\nabc\r\n0\r\n\r\n";
    size_t lx = sizeof(x) - 1, ly = sizeof(y) - 1;
    assert_int_equal(http_chunked_decode(&a, x, &lx), 0);
    assert_int_equal(http_chunked_decode(&b, y, &ly), 0);
    assert_int_equal(lx, 3);
    assert_int_equal(ly, 3);
    assert_memory_equal(x, "abc", 3);
    assert_int_equal(a.total, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_size_line_limit),
        cmocka_unit_test(test_trailer_limit),
        cmocka_unit_test(test_big_chunks),
        cmocka_unit_test(test_init_and_zeroed),
    };
    printf("http chunked: %zu table cases\n", sizeof(cases) / sizeof(cases[0]));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
