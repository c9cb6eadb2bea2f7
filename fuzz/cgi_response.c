/* libFuzzer target for src/fastcgi/cgi_response.c.
 *
 * Input: byte 0 picks the limits (header array size, max_bytes), byte 1 a prefix length, the rest
 * is what the application wrote to FCGI_STDOUT. Both modes run on it. Checked, else abort:
 *   - no CR, LF or NUL in any returned name, value or reason; names are non-empty tokens; every
 *     slice lies inside the header block; status in 100..599;
 *   - strict accepts => relaxed accepts with the same status, reason and headers;
 *   - a prefix gives AGAIN before the block is complete and the same answer after. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastcgi/cgi_response.h"
#include "fuzz_check.h"


#define MAX_HEADERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_slice(str_t s, const char *block, size_t head_len) {
    if (s.len == 0) return;
    CHECK(s.p >= block && s.p + s.len <= block + head_len);
    CHECK(memchr(s.p, '\r', s.len) == NULL);
    CHECK(memchr(s.p, '\n', s.len) == NULL);
    CHECK(memchr(s.p, '\0', s.len) == NULL);
}

static void check_result(const cgi_response_t *res, const char *in, int rc) {
    size_t head_len = (size_t)rc;
    CHECK(res->head_len == head_len);
    CHECK(res->status >= 100 && res->status <= 599);
    check_slice(res->reason, in, head_len);
    check_slice(res->content_type, in, head_len);
    check_slice(res->location, in, head_len);
    for (size_t i = 0; i < res->num_headers; i++) {
        str_t n = res->headers[i].name;
        CHECK(n.len > 0);
        check_slice(n, in, head_len);
        for (size_t k = 0; k < n.len; k++) CHECK(is_tchar((unsigned char)n.p[k]));
        check_slice(res->headers[i].value, in, head_len);
    }
    if (!(res->flags & CGI_F_STATUS))
        CHECK(res->status == ((res->flags & CGI_F_LOCATION) ? 302 : 200));
    CHECK((res->content_length >= 0) == !!(res->flags & CGI_F_CONTENT_LENGTH));
}

static bool same_result(const cgi_response_t *a, const cgi_response_t *b) {
    if (a->status != b->status || a->reason.len != b->reason.len || a->flags != b->flags ||
        a->content_length != b->content_length || a->num_headers != b->num_headers ||
        a->head_len != b->head_len)
        return false;
    if (a->reason.len && memcmp(a->reason.p, b->reason.p, a->reason.len) != 0) return false;
    for (size_t i = 0; i < a->num_headers; i++) {
        const cgi_header_t *x = &a->headers[i], *y = &b->headers[i];
        if (x->name.p != y->name.p || x->name.len != y->name.len || x->value.p != y->value.p ||
            x->value.len != y->value.len || x->id != y->id)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t max_headers = (data[0] & 0x0f) + 1 + ((data[0] & 0x10) ? MAX_HEADERS - 17 : 0);
    size_t max_bytes = (data[0] & 0x20) ? 64 + data[1] : 0;
    size_t len = size - 2;
    /* an exact-size heap copy, so ASan sees any read past the end */
    char *in = malloc(len ? len : 1);
    CHECK(in != NULL);
    if (len) memcpy(in, data + 2, len);

    cgi_header_t sh[MAX_HEADERS], rh[MAX_HEADERS], ph[MAX_HEADERS];
    cgi_response_t sres, rres, pres;
    char serr[256], rerr[256], perr[256];
    cgi_parse_opts_t strict = {CGI_MODE_STRICT, max_bytes}, relaxed = {CGI_MODE_RELAXED, max_bytes};
    int src = cgi_parse_response(in, len, &strict, &sres, sh, max_headers, serr, sizeof(serr));
    int rrc = cgi_parse_response(in, len, &relaxed, &rres, rh, max_headers, rerr, sizeof(rerr));
    CHECK(src > 0 || src == CGI_AGAIN || src == CGI_EINVALID || src == CGI_ETOO_LARGE);
    CHECK(rrc > 0 || rrc == CGI_AGAIN || rrc == CGI_EINVALID || rrc == CGI_ETOO_LARGE);
    if (src < 0 && src != CGI_AGAIN) CHECK(serr[0] != '\0');
    if (rrc < 0 && rrc != CGI_AGAIN) CHECK(rerr[0] != '\0');
    if (src > 0) check_result(&sres, in, src);
    if (rrc > 0) check_result(&rres, in, rrc);
    if (src > 0) {
        CHECK(rrc == src);
        CHECK(same_result(&sres, &rres));
        CHECK(rres.dropped == 0);
    }
    /* both modes agree on where the block ends, or on its absence */
    CHECK((src == CGI_AGAIN) == (rrc == CGI_AGAIN));

    /* a prefix, as the caller's buffer looked one read earlier */
    size_t k = len ? data[1] % (len + 1) : 0;
    const cgi_parse_opts_t *modes[2] = {&strict, &relaxed};
    int full[2] = {src, rrc};
    cgi_response_t *fres[2] = {&sres, &rres};
    for (int m = 0; m < 2; m++) {
        int prc = cgi_parse_response(in, k, modes[m], &pres, ph, max_headers, perr, sizeof(perr));
        if (prc == CGI_AGAIN) {
            CHECK(full[m] < 0 || (size_t)full[m] > k);
            continue;
        }
        CHECK(prc == full[m]);
        if (prc > 0) CHECK(same_result(&pres, fres[m]));
    }
    free(in);
    return 0;
}
