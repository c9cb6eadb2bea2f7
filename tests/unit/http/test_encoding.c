/* Content codings (src/http/encoding.c): Accept-Encoding negotiation, compressible types, and
 * gzip/brotli streams that decode (zlib, brotli's decoder) to the bytes fed, flushes included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <brotli/decode.h>
#include <zlib.h>

#include "http/encoding.h"

#define ALL (HTTP_ENC_MASK(HTTP_ENC_GZIP) | HTTP_ENC_MASK(HTTP_ENC_BR))

static http_encoding_t ae(const char *v, unsigned allowed) {
    return http_accept_encoding(str_make(v, strlen(v)), allowed);
}

static void test_accept_encoding(void **state) {
    assert_int_equal(ae("gzip, deflate, br", ALL), HTTP_ENC_BR);
    assert_int_equal(ae("gzip, deflate, br", HTTP_ENC_MASK(HTTP_ENC_GZIP)), HTTP_ENC_GZIP);
    assert_int_equal(ae("gzip", ALL), HTTP_ENC_GZIP);
    assert_int_equal(ae("GZIP", ALL), HTTP_ENC_GZIP);
    assert_int_equal(ae("x-gzip", ALL), HTTP_ENC_GZIP);
    assert_int_equal(ae("br;q=0.5, gzip;q=0.8", ALL), HTTP_ENC_GZIP);
    assert_int_equal(ae("br;q=0, gzip;q=0", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("*", ALL), HTTP_ENC_BR);
    assert_int_equal(ae("*;q=0.1, br;q=0", ALL), HTTP_ENC_GZIP);
    assert_int_equal(ae("identity", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("deflate", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("gzip;q=1.000", ALL), HTTP_ENC_GZIP);
    assert_int_equal(ae(" gzip ; q=0.001 ,br ;q=0.002", ALL), HTTP_ENC_BR);
    /* malformed q-values: no compression rather than a guess */
    assert_int_equal(ae("gzip;q=2", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("gzip;q=0.5x", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("gzip;q", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae(",,,", ALL), HTTP_ENC_IDENTITY);
    assert_int_equal(ae("br", 0), HTTP_ENC_IDENTITY);
}

static bool ct(const char *v) {
    return http_compressible_type(str_make(v, strlen(v)));
}

static void test_compressible(void **state) {
    assert_true(ct("text/html; charset=utf-8"));
    assert_true(ct("Text/CSS"));
    assert_true(ct("application/json"));
    assert_true(ct("application/ld+json"));
    assert_true(ct("image/svg+xml"));
    assert_true(ct("application/javascript;charset=utf-8"));
    assert_false(ct("image/png"));
    assert_false(ct("application/octet-stream"));
    assert_false(ct("application/gzip"));
    assert_false(ct(""));
}

static void gunzip(const buf_t *in, buf_t *out) {
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    int rc;
    do {
        char *dst = buf_reserve(out, 65536);
        z.next_out = (Bytef *)dst;
        z.avail_out = 65536;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len += 65536 - z.avail_out;
        assert_true(rc == Z_OK || rc == Z_STREAM_END);
    } while (rc != Z_STREAM_END);
    inflateEnd(&z);
}

static void unbrotli(const buf_t *in, buf_t *out) {
    BrotliDecoderState *d = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    const uint8_t *next_in = (const uint8_t *)in->data;
    size_t avail_in = in->len;
    BrotliDecoderResult rc;
    do {
        size_t avail_out = 65536;
        uint8_t *next_out = (uint8_t *)buf_reserve(out, 65536);
        rc = BrotliDecoderDecompressStream(d, &avail_in, &next_in, &avail_out, &next_out, NULL);
        out->len += 65536 - avail_out;
        assert_true(rc != BROTLI_DECODER_RESULT_ERROR);
        assert_true(rc != BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT);
    } while (rc != BROTLI_DECODER_RESULT_SUCCESS);
    BrotliDecoderDestroyInstance(d);
}

/* A page-like text of n bytes (compressible, not trivially). */
static char *text(size_t n) {
    char *t = malloc(n);
    uint32_t x = 12345;
    static const char *const words[] = {"<p>", "fcgihost ", "serves ", "PHP ", "pages ", "</p>\n",
                                        "quickly ", "and ", "streams ", "them "};
    for (size_t i = 0; i < n;) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 10];
        for (size_t k = 0; w[k] && i < n; k++) t[i++] = w[k];
    }
    return t;
}

static void round_trip(http_encoding_t enc, size_t n, size_t piece, bool flush_each) {
    char *src = text(n);
    http_compressor_t *c = http_compressor_new(enc, -1);
    assert_non_null(c);
    buf_t z, plain;
    buf_init(&z);
    buf_init(&plain);
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        size_t before = z.len;
        assert_int_equal(http_compressor_feed(c, src + off, k,
                                              flush_each ? HTTP_COMPRESS_FLUSH : HTTP_COMPRESS_MORE, &z),
                         0);
        if (flush_each) assert_true(z.len > before); /* a flush always brings the bytes out */
    }
    assert_int_equal(http_compressor_feed(c, NULL, 0, HTTP_COMPRESS_FINISH, &z), 0);
    assert_int_equal(http_compressor_feed(c, "x", 1, HTTP_COMPRESS_MORE, &z), -1);
    http_compressor_free(c);
    if (enc == HTTP_ENC_GZIP) gunzip(&z, &plain);
    else unbrotli(&z, &plain);
    assert_int_equal(plain.len, n);
    assert_memory_equal(plain.data, src, n);
    if (n >= 100000 && !flush_each) assert_true(z.len * 3 < n); /* it did compress */
    buf_dispose(&z);
    buf_dispose(&plain);
    free(src);
}

static void test_gzip(void **state) {
    round_trip(HTTP_ENC_GZIP, 0, 1, false);
    round_trip(HTTP_ENC_GZIP, 102400, 102400, false);
    round_trip(HTTP_ENC_GZIP, 300000, 4096, false);
    round_trip(HTTP_ENC_GZIP, 50000, 777, true);
}

static void test_brotli(void **state) {
    round_trip(HTTP_ENC_BR, 0, 1, false);
    round_trip(HTTP_ENC_BR, 102400, 102400, false);
    round_trip(HTTP_ENC_BR, 300000, 4096, false);
    round_trip(HTTP_ENC_BR, 50000, 777, true);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding), cmocka_unit_test(test_compressible),
        cmocka_unit_test(test_gzip),            cmocka_unit_test(test_brotli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
