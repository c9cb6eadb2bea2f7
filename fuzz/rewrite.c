/* libFuzzer target for the rewrite engine (src/http/rewrite.c).
 *
 * Input: a request path as a client sends it; what http_path_decode accepts is run through a fixed
 * set of rules (captures into paths and query strings, a redirect, unless, last = false) with a
 * query string taken from the input's tail.
 *
 * Checks, besides "no crash":
 *   - fewer rules than REWRITE_MAX and a count starting at 0: never REWRITE_LOOP;
 *   - REWRITE_DONE: the path starts with '/', has no NUL and passes http_path_decode unchanged
 *     once re-encoded (a rewrite never produces what a client could not send), and the query has
 *     no byte below 0x21 or at 0x7f other than what the client's own query brought;
 *   - REWRITE_REDIRECT: the Location has no control character, space or byte >= 0x80 (no header
 *     splitting, whatever the path held);
 *   - REWRITE_BAD only with 400 or 403.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz_check.h"
#include "http/path.h"
#include "http/rewrite.h"

static const char rules[] =
    "[server]\nroot = /\n"
    "[rewrite:wiki]\nmatch = ^/wiki/(.*)$\nto = /index.php?title=$1\n"
    "[rewrite:go]\nmatch = ^/go/(.*)$\nto = https://example.org/$1\nredirect = 302\n"
    "[rewrite:swap]\nmatch = ^/(\\w+)/(\\d+)(/.*)?$\nto = /$2/$1$3\nlast = false\n"
    "[rewrite:front]\nmatch = ^/(.*)$\nunless = file directory\nto = /$1/x/../$1\nlast = false\n"
    "[rewrite:tail]\nmatch = ^(.*)/x/(.*)$\nto = /t$1?a=$2&$$\n";

static int probe(void *arg, const char *path) {
    (void)arg;
    return strlen(path) % 3 == 0 ? REWRITE_IS_FILE : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cfg_t *cfg;
    if (cfg == NULL) {
        cfg = cfg_load_string(rules, "fuzz.conf", "/", NULL);
        CHECK(cfg != NULL);
    }
    const uint8_t *qm = memchr(data, '?', size);
    size_t plen = qm ? (size_t)(qm - data) : size;
    char *path = malloc(plen + 1);
    size_t dlen;
    if (http_path_decode((const char *)data, plen, path, &dlen) != 0) {
        free(path);
        return 0;
    }
    path[dlen] = '\0';
    unsigned count = 0;
    rewrite_io_t io;
    rewrite_io_init(&io, &count, path, dlen, qm ? (const char *)qm + 1 : NULL,
                    qm ? size - plen - 1 : 0);
    rewrite_outcome_t out = rewrite_run(cfg, &cfg->sites[0], &io, probe, NULL);
    CHECK(out != REWRITE_LOOP);
    if (out == REWRITE_DONE) {
        CHECK(io.path.len > 0 && io.path.data[0] == '/');
        CHECK(memchr(io.path.data, '\0', io.path.len) == NULL);
        size_t cap = io.path.len * 3 + 1;
        char *enc = malloc(cap), *dec = malloc(cap);
        size_t elen = http_path_encode(io.path.data, io.path.len, enc, cap), d2;
        CHECK(http_path_decode(enc, elen, dec, &d2) == 0);
        CHECK(d2 == io.path.len && memcmp(dec, io.path.data, d2) == 0);
        free(enc);
        free(dec);
    } else if (out == REWRITE_REDIRECT) {
        CHECK(io.location.len > 0);
        size_t own = io.location.len - (qm ? size - plen - 1 : 0); /* the client's query follows */
        for (size_t i = 0; i < own; i++) {
            unsigned char c = (unsigned char)io.location.data[i];
            CHECK(c > 0x20 && c < 0x7f);
        }
    } else if (out == REWRITE_BAD) {
        CHECK(io.status == 400 || io.status == 403);
    }
    rewrite_io_dispose(&io);
    free(path);
    return 0;
}
