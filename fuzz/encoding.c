/* libFuzzer target for src/http/encoding.c.
 *
 * Input: used three ways — as an Accept-Encoding value, as a Content-Type value, and as a body
 * compressed in pieces (their sizes and the flushes drawn from the input) with gzip and brotli.
 * Checks: the chosen coding is one of those allowed (identity always possible); the compressed
 * streams decode, with zlib and brotli's decoder, to exactly the input. */
#include <brotli/decode.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_check.h"
#include "http/encoding.h"

static void decode_check(http_encoding_t enc, const buf_t *z, const uint8_t *data, size_t size) {
    buf_t out;
    buf_init(&out);
    if (enc == HTTP_ENC_GZIP) {
        z_stream s = {0};
        CHECK(inflateInit2(&s, 15 + 16) == Z_OK);
        s.next_in = (Bytef *)z->data;
        s.avail_in = (uInt)z->len;
        int rc;
        do {
            char *dst = buf_reserve(&out, 65536);
            s.next_out = (Bytef *)dst;
            s.avail_out = 65536;
            rc = inflate(&s, Z_NO_FLUSH);
            out.len += 65536 - s.avail_out;
            CHECK(rc == Z_OK || rc == Z_STREAM_END);
        } while (rc != Z_STREAM_END);
        CHECK(s.avail_in == 0);
        inflateEnd(&s);
    } else {
        BrotliDecoderState *d = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        const uint8_t *in = (const uint8_t *)z->data;
        size_t avail = z->len;
        BrotliDecoderResult rc;
        do {
            size_t ao = 65536;
            uint8_t *o = (uint8_t *)buf_reserve(&out, 65536);
            rc = BrotliDecoderDecompressStream(d, &avail, &in, &ao, &o, NULL);
            out.len += 65536 - ao;
            CHECK(rc != BROTLI_DECODER_RESULT_ERROR && rc != BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT);
        } while (rc != BROTLI_DECODER_RESULT_SUCCESS);
        CHECK(avail == 0);
        BrotliDecoderDestroyInstance(d);
    }
    CHECK(out.len == size);
    CHECK(size == 0 || memcmp(out.data, data, size) == 0);
    buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    str_t v = str_make((const char *)data, size);
    for (unsigned allowed = 0; allowed < 8; allowed += 2) {
        http_encoding_t e = http_accept_encoding(v, allowed);
        CHECK(e == HTTP_ENC_IDENTITY || (allowed & HTTP_ENC_MASK(e)));
    }
    (void)http_compressible_type(v);
    static const http_encoding_t encs[] = {HTTP_ENC_GZIP, HTTP_ENC_BR};
    for (size_t k = 0; k < 2; k++) {
        http_compressor_t *c = http_compressor_new(encs[k], k == 0 ? 1 + (int)(size % 9) : (int)(size % 12));
        CHECK(c != NULL);
        buf_t z;
        buf_init(&z);
        uint32_t seed = (uint32_t)size * 2654435761u + 1u;
        for (size_t off = 0; off < size;) {
            size_t piece = 1 + fuzz_next_random(&seed) % 4096;
            if (piece > size - off) piece = size - off;
            http_compress_mode_t mode = fuzz_next_random(&seed) % 4 == 0 ? HTTP_COMPRESS_FLUSH
                                                                          : HTTP_COMPRESS_MORE;
            CHECK(http_compressor_feed(c, data + off, piece, mode, &z) == 0);
            off += piece;
        }
        CHECK(http_compressor_feed(c, NULL, 0, HTTP_COMPRESS_FINISH, &z) == 0);
        http_compressor_free(c);
        decode_check(encs[k], &z, data, size);
        buf_dispose(&z);
    }
    return 0;
}
