/* libFuzzer target for http_chunked_decode.
 *
 * Input: one control byte, then the body bytes. The body is decoded in one call, and again split
 * into pieces whose sizes come from a small PRNG seeded with the control byte (bits 0-2: the
 * largest piece is 2^n bytes; bit 3: an empty call before every piece; bits 4-7: the seed). Each
 * piece is copied into a buffer of exactly its size. Both decodes must agree on the result, the
 * decoded bytes and the bytes left over after the body; any difference aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"
#include "fuzz_check.h"


typedef struct outcome {
    ssize_t ret;     /* AGAIN, ERROR, or >= 0 when the body ended */
    uint8_t *out;    /* decoded data */
    size_t out_len;
    uint8_t *left;   /* bytes after the body: left over by the last call, then those never fed */
    size_t left_len;
} outcome_t;

static void decode(const uint8_t *body, size_t n, uint8_t ctl, bool split, outcome_t *o) {
    http_chunked_t d;
    http_chunked_init(&d);
    uint32_t seed = 0x9e3779b9u ^ ((uint32_t)(ctl >> 4) * 0x85ebca6bu);
    size_t max_piece = (size_t)1 << (ctl & 7);
    o->out = malloc(n + 1);
    o->left = malloc(n + 1);
    CHECK(o->out && o->left);
    o->out_len = o->left_len = 0;
    o->ret = HTTP_CHUNKED_AGAIN;

    size_t pos = 0;
    do {
        size_t plen = split ? 1 + fuzz_next_random(&seed) % max_piece : n;
        if (plen > n - pos) plen = n - pos;
        uint8_t *piece = malloc(plen ? plen : 1);
        CHECK(piece != NULL);
        if (plen) memcpy(piece, body + pos, plen);
        if (split && (ctl & 8)) {
            size_t zero = 0;
            CHECK(http_chunked_decode(&d, (char *)piece, &zero) == HTTP_CHUNKED_AGAIN && zero == 0);
        }
        size_t got = plen;
        o->ret = http_chunked_decode(&d, (char *)piece, &got);
        CHECK(got <= plen);
        memcpy(o->out + o->out_len, piece, got);
        o->out_len += got;
        pos += plen;
        if (o->ret >= 0) {
            CHECK((size_t)o->ret <= plen - got);
            memcpy(o->left, piece + got, (size_t)o->ret);
            memcpy(o->left + o->ret, body + pos, n - pos);
            o->left_len = (size_t)o->ret + n - pos;
        } else {
            CHECK(o->ret == HTTP_CHUNKED_AGAIN || o->ret == HTTP_CHUNKED_ERROR);
        }
        free(piece);
    } while (o->ret == HTTP_CHUNKED_AGAIN && pos < n);
    CHECK(d.total == o->out_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    outcome_t whole, pieces;
    decode(data + 1, size - 1, data[0], false, &whole);
    decode(data + 1, size - 1, data[0], true, &pieces);
    CHECK((whole.ret < 0 ? pieces.ret == whole.ret : pieces.ret >= 0));
    CHECK(whole.out_len == pieces.out_len && memcmp(whole.out, pieces.out, whole.out_len) == 0);
    CHECK(whole.left_len == pieces.left_len);
    CHECK(memcmp(whole.left, pieces.left, whole.left_len) == 0);
    CHECK(whole.out_len + whole.left_len <= size - 1);
    free(whole.out);
    free(whole.left);
    free(pieces.out);
    free(pieces.left);
    return 0;
}
