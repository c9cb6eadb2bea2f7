/* libFuzzer target for http_path_decode (src/http/path.c).
 *
 * Input: the raw request path, fed as is (no terminating NUL, so an over-read past len is an ASan
 * report; the output buffer is exactly len + 1 bytes, as the contract allows, so an over-write is
 * one too).
 *
 * Checks, besides "no crash":
 *   - the result is one of 0, -400, -403, and matches a second, deliberately naive implementation
 *     written from the contract in path.h: percent-decode everything, split on '/', look at the
 *     segments, check UTF-8 (same verdict; for 0 and -403 the same decoded bytes);
 *   - when a path is decoded (0 or -403): *outlen <= len, out is NUL-terminated at *outlen, starts
 *     with '/', has no NUL, no "//", is valid UTF-8, and no segment is "." or ".."; with 0 no
 *     segment starts with '.', with -403 one does;
 *   - idempotence: the decoded path re-encoded with http_path_encode decodes to itself with the
 *     same verdict, and a decoded path without '%' decodes to itself as is.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http/path.h"

static int hexdigit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The reference: the contract of path.h read literally, in separate passes. Writes the expected
 * decoded path to out (room for len + 1) when the verdict is 0 or -403. */
static int reference_decode(const uint8_t *in, size_t len, char *out, size_t *outlen) {
    if (len == 0 || in[0] != '/') return -400;
    /* pass 1: percent-decoding; a bad escape or a NUL (raw or %00) is a 400 */
    uint8_t *raw = malloc(len + 1);
    CHECK(raw != NULL);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i];
        if (c == '%') {
            if (len - i < 3 || hexdigit(in[i + 1]) < 0 || hexdigit(in[i + 2]) < 0) {
                free(raw);
                return -400;
            }
            c = (uint8_t)(hexdigit(in[i + 1]) * 16 + hexdigit(in[i + 2]));
            i += 2;
        }
        if (c == 0) {
            free(raw);
            return -400;
        }
        raw[n++] = c;
    }
    /* pass 2: segments between slashes (empty ones are merged runs of '/') */
    bool bad = false, dotfile = false;
    size_t o = 0;
    out[o++] = '/';
    for (size_t i = 1; i <= n;) {
        size_t j = i;
        while (j < n && raw[j] != '/') j++;
        size_t sl = j - i;
        if (sl > 0) {
            if (raw[i] == '.') {
                if (sl == 1 || (sl == 2 && raw[i + 1] == '.')) bad = true;
                else dotfile = true;
            }
            if (out[o - 1] != '/') out[o++] = '/';
            memcpy(out + o, raw + i, sl);
            o += sl;
        }
        if (j < n && out[o - 1] != '/') out[o++] = '/'; /* a separator: kept even when trailing */
        i = j + 1;
    }
    out[o] = '\0';
    *outlen = o;
    bool utf8 = utf8_valid((const unsigned char *)out, o);
    free(raw);
    if (bad || !utf8) return -400;
    return dotfile ? -403 : 0;
}

/* The properties of a decoded path, whatever produced it. */
static void check_decoded(const char *out, size_t n, int rc) {
    CHECK(n >= 1 && out[0] == '/');
    CHECK(out[n] == '\0');
    CHECK(memchr(out, '\0', n) == NULL);
    CHECK(utf8_valid((const unsigned char *)out, n));
    bool dot_segment = false;
    for (size_t i = 0; i < n; i++) {
        if (out[i] != '/') continue;
        CHECK(i + 1 >= n || out[i + 1] != '/'); /* no "//" */
        if (i + 1 < n && out[i + 1] == '.') {
            dot_segment = true;
            size_t e = i + 2;
            CHECK(!(e >= n || out[e] == '/'));                                      /* "/." */
            CHECK(!(out[e] == '.' && (e + 1 >= n || out[e + 1] == '/')));          /* "/.." */
        }
    }
    CHECK(rc == 0 ? !dot_segment : dot_segment);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size copies, so that ASan sees any access past either buffer */
    char *in = malloc(size ? size : 1);
    char *out = malloc(size + 1);
    char *want = malloc(size + 1);
    CHECK(in && out && want);
    memcpy(in, data, size);
    size_t outlen = (size_t)-1, want_len = (size_t)-1;
    int rc = http_path_decode(in, size, out, &outlen);
    int want_rc = reference_decode(data, size, want, &want_len);
    CHECK(rc == 0 || rc == -400 || rc == -403);
    CHECK(rc == want_rc);
    if (rc != -400) {
        CHECK(outlen <= size);
        CHECK(outlen == want_len && memcmp(out, want, outlen) == 0);
        check_decoded(out, outlen, rc);

        /* encode, decode again: the same path and verdict */
        size_t cap = 3 * outlen + 1;
        char *enc = malloc(cap);
        CHECK(enc != NULL);
        size_t elen = http_path_encode(out, outlen, enc, cap);
        CHECK(elen < cap && enc[elen] == '\0');
        char *again = malloc(elen + 1);
        CHECK(again != NULL);
        size_t again_len = (size_t)-1;
        CHECK(http_path_decode(enc, elen, again, &again_len) == rc);
        CHECK(again_len == outlen && memcmp(again, out, outlen) == 0);
        /* a decoded path without '%' is its own decoding */
        if (memchr(out, '%', outlen) == NULL) {
            again_len = (size_t)-1;
            CHECK(http_path_decode(out, outlen, again, &again_len) == rc);
            CHECK(again_len == outlen && memcmp(again, out, outlen) == 0);
        }
        free(again);
        free(enc);
    }
    free(in);
    free(out);
    free(want);
    return 0;
}
