/* Content codings. See encoding.h. */
#include "http/encoding.h"

#include <brotli/encode.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>

#include "util/xalloc.h"

#define CHUNK 16384

/* ---- Accept-Encoding ---- */

/* q-value: "1", "1.000", "0", "0.5" ... as thousandths; -1 when malformed. */
static int parse_q(str_t v) {
    if (v.len == 0 || v.len > 5) return -1;
    if (v.p[0] != '0' && v.p[0] != '1') return -1;
    int q = (v.p[0] - '0') * 1000;
    if (v.len == 1) return q;
    if (v.p[1] != '.') return -1;
    int scale = 100;
    for (size_t i = 2; i < v.len; i++, scale /= 10) {
        if (v.p[i] < '0' || v.p[i] > '9') return -1;
        q += (v.p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

static bool ieq(str_t a, const char *b) {
    size_t n = strlen(b);
    if (a.len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = a.p[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != b[i]) return false;
    }
    return true;
}

static str_t trim(str_t s) {
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) s.len--;
    return s;
}

http_encoding_t http_accept_encoding(str_t value, unsigned allowed) {
    int q_of[3] = {-1, -1, -1}; /* identity, gzip, br: -1 = not named */
    int q_star = -1;
    const char *p = value.p, *end = value.p + value.len;
    while (p && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        str_t item = trim(str_make(p, comma ? (size_t)(comma - p) : (size_t)(end - p)));
        p = comma ? comma + 1 : NULL;
        if (item.len == 0) continue;
        const char *semi = memchr(item.p, ';', item.len);
        str_t coding = trim(str_make(item.p, semi ? (size_t)(semi - item.p) : item.len));
        int q = 1000;
        while (semi) { /* parameters: only q matters */
            const char *rest = semi + 1;
            const char *next = memchr(rest, ';', (size_t)(item.p + item.len - rest));
            str_t param = trim(str_make(rest, next ? (size_t)(next - rest)
                                                   : (size_t)(item.p + item.len - rest)));
            if (param.len >= 1 && (param.p[0] == 'q' || param.p[0] == 'Q') &&
                (param.len == 1 || param.p[1] == '=' || param.p[1] == ' ' || param.p[1] == '\t')) {
                str_t v = trim(str_make(param.p + 1, param.len - 1));
                if (v.len == 0 || v.p[0] != '=') return HTTP_ENC_IDENTITY;
                q = parse_q(trim(str_make(v.p + 1, v.len - 1)));
                if (q < 0) return HTTP_ENC_IDENTITY;
            }
            semi = next;
        }
        if (ieq(coding, "gzip") || ieq(coding, "x-gzip")) q_of[HTTP_ENC_GZIP] = q;
        else if (ieq(coding, "br")) q_of[HTTP_ENC_BR] = q;
        else if (ieq(coding, "identity")) q_of[HTTP_ENC_IDENTITY] = q;
        else if (ieq(coding, "*")) q_star = q;
    }
    http_encoding_t best = HTTP_ENC_IDENTITY;
    int best_q = 0;
    static const http_encoding_t order[] = {HTTP_ENC_BR, HTTP_ENC_GZIP};
    for (size_t i = 0; i < 2; i++) {
        http_encoding_t e = order[i];
        if (!(allowed & HTTP_ENC_MASK(e))) continue;
        int q = q_of[e] >= 0 ? q_of[e] : q_star;
        if (q > best_q) {
            best = e;
            best_q = q;
        }
    }
    return best;
}

const char *http_encoding_name(http_encoding_t e) {
    switch (e) {
    case HTTP_ENC_GZIP: return "gzip";
    case HTTP_ENC_BR: return "br";
    default: return NULL;
    }
}

bool http_compressible_type(str_t ct) {
    const char *semi = memchr(ct.p, ';', ct.len);
    str_t t = trim(str_make(ct.p, semi ? (size_t)(semi - ct.p) : ct.len));
    char low[128];
    if (t.len == 0 || t.len >= sizeof(low)) return false;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.p[i];
        low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    low[t.len] = '\0';
    if (strncmp(low, "text/", 5) == 0) return true;
    static const char *const exact[] = {
        "application/json", "application/javascript", "application/x-javascript",
        "application/ecmascript", "application/xml", "application/xhtml+xml", "application/rss+xml",
        "application/atom+xml", "image/svg+xml", "application/manifest+json",
        "application/wasm", NULL};
    for (size_t i = 0; exact[i]; i++)
        if (strcmp(low, exact[i]) == 0) return true;
    size_t n = t.len;
    return (n > 5 && strcmp(low + n - 5, "+json") == 0) || (n > 4 && strcmp(low + n - 4, "+xml") == 0);
}

/* ---- compressors ---- */

struct http_compressor {
    http_encoding_t enc;
    bool finished;
    int level;
    z_stream z;
    BrotliEncoderState *br;
};

/* gzip streams are kept for reuse (deflateReset) instead of being set up and torn down per
 * response: zlib's state is some 256 KiB in five allocations, which malloc would otherwise map
 * and unmap for every coded response. Used on the event loop's thread only. */
#define GZIP_SPARE 8
static http_compressor_t *gzip_spare[GZIP_SPARE];
static unsigned n_gzip_spare;

http_compressor_t *http_compressor_new(http_encoding_t enc, int level) {
    if (enc == HTTP_ENC_IDENTITY) return NULL;
    if (enc == HTTP_ENC_GZIP && (level < 1 || level > 9)) level = 1;
    if (enc == HTTP_ENC_GZIP && n_gzip_spare) {
        for (unsigned i = n_gzip_spare; i-- > 0;) {
            http_compressor_t *c = gzip_spare[i];
            if (c->level != level || deflateReset(&c->z) != Z_OK) continue;
            gzip_spare[i] = gzip_spare[--n_gzip_spare];
            c->finished = false;
            return c;
        }
    }
    http_compressor_t *c = xcalloc(1, sizeof(*c));
    c->enc = enc;
    c->level = level;
    if (enc == HTTP_ENC_GZIP) {
        /* windowBits 15 + 16: a gzip wrapper; memLevel 8: zlib's default (as nginx) */
        if (deflateInit2(&c->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(c);
            return NULL;
        }
        return c;
    }
    c->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (c->br == NULL) {
        free(c);
        return NULL;
    }
    if (level < 0 || level > 11) level = 4;
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY, (uint32_t)level);
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN, 20); /* 1 MiB window: bounded memory */
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
    return c;
}

static int feed_gzip(http_compressor_t *c, const void *in, size_t n, http_compress_mode_t mode,
                     buf_t *out) {
    int flush = mode == HTTP_COMPRESS_FINISH ? Z_FINISH
              : mode == HTTP_COMPRESS_FLUSH  ? Z_SYNC_FLUSH
                                             : Z_NO_FLUSH;
    c->z.next_in = (Bytef *)(uintptr_t)in;
    c->z.avail_in = (uInt)n;
    buf_reserve(out, n / 2 + CHUNK); /* text codes to well under half: one allocation, no regrowth */
    for (;;) {
        char *dst = buf_reserve(out, CHUNK);
        c->z.next_out = (Bytef *)dst;
        c->z.avail_out = CHUNK;
        int rc = deflate(&c->z, flush);
        out->len += CHUNK - c->z.avail_out;
        if (rc == Z_STREAM_END) return 0;
        if (rc != Z_OK && rc != Z_BUF_ERROR) return -1;
        /* Done when the input is taken and deflate did not fill the chunk (nothing pending). */
        if (c->z.avail_in == 0 && c->z.avail_out != 0 && flush != Z_FINISH) return 0;
        if (rc == Z_BUF_ERROR && c->z.avail_in == 0 && flush == Z_NO_FLUSH) return 0;
    }
}

static int feed_br(http_compressor_t *c, const void *in, size_t n, http_compress_mode_t mode,
                   buf_t *out) {
    BrotliEncoderOperation op = mode == HTTP_COMPRESS_FINISH ? BROTLI_OPERATION_FINISH
                              : mode == HTTP_COMPRESS_FLUSH  ? BROTLI_OPERATION_FLUSH
                                                             : BROTLI_OPERATION_PROCESS;
    const uint8_t *next_in = in;
    size_t avail_in = n;
    for (;;) {
        size_t avail_out = CHUNK;
        uint8_t *next_out = (uint8_t *)buf_reserve(out, CHUNK);
        if (!BrotliEncoderCompressStream(c->br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return -1;
        out->len += CHUNK - avail_out;
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(c->br)) {
            if (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(c->br)) continue;
            return 0;
        }
    }
}

int http_compressor_feed(http_compressor_t *c, const void *in, size_t n, http_compress_mode_t mode,
                         buf_t *out) {
    if (c == NULL || c->finished) return -1;
    if (mode == HTTP_COMPRESS_FINISH) c->finished = true;
    return c->enc == HTTP_ENC_GZIP ? feed_gzip(c, in, n, mode, out) : feed_br(c, in, n, mode, out);
}

int http_compress_whole(http_encoding_t enc, const void *in, size_t n, buf_t *out) {
    if (enc == HTTP_ENC_GZIP) {
        static struct libdeflate_compressor *ld; /* the loop's thread only; kept for reuse */
        if (ld == NULL && (ld = libdeflate_alloc_compressor(1)) == NULL) return -1;
        size_t bound = libdeflate_gzip_compress_bound(ld, n);
        char *dst = buf_reserve(out, bound);
        size_t got = libdeflate_gzip_compress(ld, in, n, dst, bound);
        if (got == 0) return -1;
        out->len += got;
        return 0;
    }
    if (enc != HTTP_ENC_BR) return -1;
    size_t bound = BrotliEncoderMaxCompressedSize(n);
    if (bound == 0) bound = n + 1024; /* too large for the estimate: the streaming path's bound */
    size_t got = bound;
    char *dst = buf_reserve(out, bound);
    if (!BrotliEncoderCompress(4, 20, BROTLI_MODE_TEXT, n, in, &got, (uint8_t *)dst)) {
        http_compressor_t *c = http_compressor_new(HTTP_ENC_BR, -1);
        int rc = c ? http_compressor_feed(c, in, n, HTTP_COMPRESS_FINISH, out) : -1;
        http_compressor_free(c);
        return rc;
    }
    out->len += got;
    return 0;
}

void http_compressor_free(http_compressor_t *c) {
    if (c == NULL) return;
    if (c->enc == HTTP_ENC_GZIP && n_gzip_spare < GZIP_SPARE) {
        gzip_spare[n_gzip_spare++] = c;
        return;
    }
    if (c->enc == HTTP_ENC_GZIP) deflateEnd(&c->z);
    if (c->br) BrotliEncoderDestroyInstance(c->br);
    free(c);
}
