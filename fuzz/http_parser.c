/* libFuzzer target for http_parse_request.
 *
 * The input is a raw request. It is parsed under two configurations (no limits; small limits), and
 * for each one the result is checked against the parser's invariants and against the parse of its
 * prefixes, each copied into a buffer of exactly that size:
 *   - a complete head of length n: every shorter prefix gives AGAIN, every longer one gives n and
 *     identical fields;
 *   - an error: every prefix gives AGAIN or that same error, and never AGAIN after an error;
 *   - AGAIN: every prefix gives AGAIN.
 * Any violation aborts, so the fuzzer reports it as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"
#include "fuzz_check.h"

#define MAX_HDRS 64
#define ALL_PREFIXES_UP_TO 256 /* longer inputs check a sample of prefixes */

typedef struct config {
    size_t max_headers;
    http_limits_t limits;
} config_t;

static const config_t configs[] = {
    {MAX_HDRS, {0, 0}},
    {4, {24, 160}},
};

typedef struct result {
    int ret;
    char *buf;
    size_t len;
    http_request_t req;
    http_header_t hdrs[MAX_HDRS];
} result_t;


static const char tchars[] = "!#$%&'*+-.^_`|~";

static int is_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c != 0 && strchr(tchars, c) != NULL);
}

static void parse(const uint8_t *data, size_t len, const config_t *cfg, result_t *r) {
    r->buf = malloc(len ? len : 1);
    CHECK(r->buf != NULL);
    if (len) memcpy(r->buf, data, len);
    r->len = len;
    r->ret = http_parse_request(r->buf, len, &r->req, r->hdrs, cfg->max_headers, &cfg->limits);
}

static int inside(str_t s, const result_t *r) {
    return s.p >= r->buf && s.p + s.len <= r->buf + r->ret;
}

/* Offset of a slice in its buffer, -1 for STR_NULL; a slice outside the head fails. */
static long off(str_t s, const result_t *r) {
    if (s.p == NULL) return -1;
    CHECK(inside(s, r));
    return (long)(s.p - r->buf);
}

static void check_request(const result_t *r, const config_t *cfg) {
    const http_request_t *q = &r->req;
    CHECK(r->ret > 0 && (size_t)r->ret <= r->len && q->head_len == (size_t)r->ret);
    CHECK(r->buf[r->ret - 1] == '\n');
    if (cfg->limits.max_header_bytes) CHECK((size_t)r->ret <= cfg->limits.max_header_bytes);

    CHECK(q->method.len > 0 && inside(q->method, r));
    for (size_t i = 0; i < q->method.len; i++) CHECK(is_tchar((unsigned char)q->method.p[i]));
    CHECK(q->target.len > 0 && inside(q->target, r));
    CHECK(q->target.p == q->method.p + q->method.len + 1);
    if (cfg->limits.max_url_bytes) CHECK(q->target.len <= cfg->limits.max_url_bytes);
    for (size_t i = 0; i < q->target.len; i++)
        CHECK((unsigned char)q->target.p[i] > 0x20 && (unsigned char)q->target.p[i] < 0x7f);

    const char *t_end = q->target.p + q->target.len;
    CHECK(q->path.len > 0 && q->path.p >= q->target.p && q->path.p + q->path.len <= t_end);
    CHECK(q->path.p[0] == '/' || (q->path.len == 1 && q->path.p[0] == '*'));
    CHECK(memchr(q->path.p, '?', q->path.len) == NULL);
    if (q->has_query) {
        CHECK(inside(q->query, r) && q->query.p[-1] == '?' && q->query.p + q->query.len == t_end);
    } else {
        CHECK(q->query.p == NULL && q->query.len == 0);
    }
    if (q->target.p[0] == '*') CHECK(q->target.len == 1 && q->method_id == HTTP_METHOD_OPTIONS);
    if (q->method_id != HTTP_METHOD_OTHER)
        CHECK(str_eq(q->method, http_method_name(q->method_id),
                     strlen(http_method_name(q->method_id))));

    CHECK(q->minor_version == 0 || q->minor_version == 1);
    CHECK(q->headers == r->hdrs && q->num_headers <= cfg->max_headers);
    for (size_t i = 0; i < q->num_headers; i++) {
        str_t n = q->headers[i].name, v = q->headers[i].value;
        CHECK(n.len > 0 && inside(n, r) && inside(v, r) && v.p > n.p + n.len);
        CHECK(n.p[n.len] == ':');
        for (size_t j = 0; j < n.len; j++) CHECK(is_tchar((unsigned char)n.p[j]));
        if (v.len) {
            CHECK(v.p[0] != ' ' && v.p[0] != '\t');
            CHECK(v.p[v.len - 1] != ' ' && v.p[v.len - 1] != '\t');
        }
        for (size_t j = 0; j < v.len; j++) {
            unsigned char c = (unsigned char)v.p[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }
    CHECK(q->content_length >= -1 && q->content_length <= ((int64_t)1 << 62));
    if (q->chunked) CHECK(q->content_length == -1 && q->minor_version == 1);
    if (q->minor_version == 1) CHECK(q->host.p != NULL && q->host.len > 0);
    const http_header_t *host = HTTP_FIND_HEADER(q, "host");
    if (host && q->target.p[0] == '/')
        CHECK(q->host.p == host->value.p && q->host.len == host->value.len);
    if (q->expect_continue) CHECK(q->minor_version == 1 && HTTP_FIND_HEADER(q, "expect") != NULL);
    if (!q->keep_alive && q->minor_version == 1) CHECK(HTTP_FIND_HEADER(q, "connection") != NULL);
    if (q->keep_alive && q->minor_version == 0) CHECK(HTTP_FIND_HEADER(q, "connection") != NULL);
}

static void check_same(const result_t *a, const result_t *b) {
    const http_request_t *x = &a->req, *y = &b->req;
#define SAME(f) CHECK(off(x->f, a) == off(y->f, b) && x->f.len == y->f.len)
    SAME(method);
    SAME(target);
    SAME(path);
    SAME(query);
    SAME(host);
    CHECK(x->method_id == y->method_id && x->has_query == y->has_query);
    CHECK(x->minor_version == y->minor_version && x->num_headers == y->num_headers);
    CHECK(x->content_length == y->content_length && x->chunked == y->chunked);
    CHECK(x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue);
    CHECK(x->head_len == y->head_len);
    for (size_t i = 0; i < x->num_headers; i++) {
        SAME(headers[i].name);
        SAME(headers[i].value);
    }
#undef SAME
}

static void check_prefix(const uint8_t *data, size_t k, const config_t *cfg, const result_t *full,
                         size_t *first_err) {
    result_t pre;
    parse(data, k, cfg, &pre);
    if (full->ret > 0 && k >= (size_t)full->ret) {
        CHECK(pre.ret == full->ret);
        check_same(&pre, full);
    } else if (pre.ret != HTTP_PARSE_AGAIN) {
        CHECK(full->ret < 0 && pre.ret == full->ret); /* never an error for a valid prefix */
        if (*first_err == SIZE_MAX) *first_err = k;
    } else {
        CHECK(*first_err == SIZE_MAX); /* an error, once proven, stays */
    }
    free(pre.buf);
}

static void run(const uint8_t *data, size_t size, const config_t *cfg) {
    result_t full;
    parse(data, size, cfg, &full);
    int rc = full.ret;
    CHECK(rc > 0 || rc == HTTP_PARSE_AGAIN || rc == -400 || rc == -414 || rc == -417 ||
          rc == -431 || rc == -501 || rc == -505);
    if (rc == -414) CHECK(cfg->limits.max_url_bytes != 0);
    if (rc > 0) check_request(&full, cfg);

    /* Prefixes in increasing length: all of them for short inputs, else a sample that includes
     * the last 64 and the one just short of the head. */
    size_t first_err = SIZE_MAX, step = size <= ALL_PREFIXES_UP_TO ? 1 : size / 64 + 1;
    for (size_t k = 0; k < size; k++)
        if (k % step == 0 || k + 64 >= size || (rc > 0 && k + 1 == (size_t)rc))
            check_prefix(data, k, cfg, &full, &first_err);
    free(full.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) run(data, size, &configs[i]);
    return 0;
}
