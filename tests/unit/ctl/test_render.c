/* Unit tests for src/ctl/render.c and the histogram of src/ctl/status.h: bucket edges, JSON string
 * escaping and a structural check of the whole document, the Prometheus exposition checked line by
 * line, the people's table and its human units. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/render.h"
#include "ctl/status.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Histogram ---- */

static void test_hist_edges(void **state) {
    static const struct {
        int line;
        double v;
        unsigned bucket;
    } cases[] = {
        {__LINE__, 0, 0},
        {__LINE__, 0.001, 0},
        {__LINE__, 0.005, 0},          /* a bound belongs to its own bucket (le) */
        {__LINE__, 5 * 0.001, 0},      /* 0.005000000000000001: still 5 ms */
        {__LINE__, 5 / 1000.0, 0},
        {__LINE__, 0.0050004, 0},      /* within half a microsecond of the bound */
        {__LINE__, 0.0050006, 1},
        {__LINE__, 0.0051, 1},
        {__LINE__, 0.01, 1},
        {__LINE__, 0.025, 2},
        {__LINE__, 0.05, 3},
        {__LINE__, 0.1, 4},
        {__LINE__, 0.1 + 0.2, 6},      /* 0.30000000000000004 */
        {__LINE__, 0.25, 5},
        {__LINE__, 0.5, 6},
        {__LINE__, 0.75, 7},
        {__LINE__, 1, 7},
        {__LINE__, 2.5, 8},
        {__LINE__, 5, 9},
        {__LINE__, 10, 10},
        {__LINE__, 10.000001, 11},
        {__LINE__, 10.001, 11},
        {__LINE__, 3600, 11},
        {__LINE__, -1, 0},             /* a clock that stepped back */
        {__LINE__, 1e300, 11},
    };
    for (size_t i = 0; i < N(cases); i++) {
        ctl_hist_t h = {0};
        ctl_hist_observe(&h, cases[i].v);
        if (h.count != 1) fail_msg("line %d: count %llu", cases[i].line, (unsigned long long)h.count);
        for (unsigned b = 0; b < CTL_HIST_BUCKETS; b++)
            if (h.buckets[b] != (b == cases[i].bucket))
                fail_msg("line %d: %.17g landed in bucket %u, want %u", cases[i].line, cases[i].v,
                         b, cases[i].bucket);
    }
}

static void test_hist_sum(void **state) {
    ctl_hist_t h = {0};
    ctl_hist_observe(&h, 0.5);
    ctl_hist_observe(&h, 1.25);
    ctl_hist_observe(&h, -3);       /* counts as 0 */
    ctl_hist_observe(&h, 0.0 / 0.0); /* NaN counts as 0 */
    assert_int_equal(h.count, 4);
    assert_true(h.sum == 1.75);
    assert_int_equal(h.buckets[0], 2);
    ctl_hist_observe(&h, 1e300);
    assert_true(h.sum == 1.75 + 1e9); /* capped: the sum stays finite */
    assert_int_equal(ctl_hist_bound_us(0), 5000);
    assert_int_equal(ctl_hist_bound_us(CTL_HIST_BUCKETS - 2), 10000000);
    assert_true(ctl_hist_bound_us(CTL_HIST_BUCKETS - 1) == UINT64_MAX);
}

static void test_status_class(void **state) {
    assert_int_equal(ctl_status_class(99), -1);
    assert_int_equal(ctl_status_class(100), 0);
    assert_int_equal(ctl_status_class(200), 1);
    assert_int_equal(ctl_status_class(304), 2);
    assert_int_equal(ctl_status_class(499), 3);
    assert_int_equal(ctl_status_class(503), 4);
    assert_int_equal(ctl_status_class(600), -1);
    assert_string_equal(ctl_class_name(4), "5xx");
    assert_int_equal(ctl_status_code_index(99), -1);
    assert_int_equal(ctl_status_code_index(100), 0);
    assert_int_equal(ctl_status_code_index(404), 304);
    assert_int_equal(ctl_status_code_index(599), CTL_CODE_COUNT - 1);
    assert_int_equal(ctl_status_code_index(600), -1);
    assert_int_equal(ctl_status_code_index(-200), -1);
    assert_string_equal(ctl_proc_state_name(CTL_PROC_DRAINING), "draining");
    assert_string_equal(ctl_recycle_name(CTL_RECYCLE_MAX_REQUESTS), "max_requests");
}

/* ---- JSON strings ---- */

static void test_json_string(void **state) {
    static const struct {
        int line;
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
#define J(in, want) {__LINE__, in, sizeof(in) - 1, want}
        J("", "\"\""),
        J("php", "\"php\""),
        J("a\"b\\c/d", "\"a\\\"b\\\\c/d\""),
        J("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\""),
        J("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\""),
        J("a\0b", "\"a\\u0000b\""),
        J("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""),
        J("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\""), /* U+FFFF, U+10FFFF */
        J("\xff", "\"\\ufffd\""),
        J("\x80", "\"\\ufffd\""),                         /* lone continuation byte */
        J("x\xc3", "\"x\\ufffd\""),                       /* truncated at the end */
        J("\xc3(", "\"\\ufffd(\""),                       /* bad continuation */
        J("\xc0\xaf", "\"\\ufffd\\ufffd\""),              /* overlong '/' */
        J("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""),   /* overlong, 3 bytes */
        J("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""),   /* UTF-16 surrogate */
        J("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""), /* above U+10FFFF */
        J("\xe2\x82\"", "\"\\ufffd\\ufffd\\\"\""),         /* cut short by a quote */
#undef J
    };
    for (size_t i = 0; i < N(cases); i++) {
        buf_t b;
        buf_init(&b);
        ctl_json_string(&b, cases[i].in, cases[i].len);
        if (b.len != strlen(cases[i].want) || memcmp(b.data, cases[i].want, b.len) != 0)
            fail_msg("line %d: got %s want %s", cases[i].line, b.data, cases[i].want);
        buf_dispose(&b);
    }
    buf_t b;
    buf_init(&b);
    ctl_json_string(&b, NULL, 0);
    assert_string_equal(b.data, "null");
    buf_dispose(&b);
}

/* ---- A sample snapshot ---- */

static const char *const crash_lines[] = {"PHP Fatal error:  Allowed memory size", "bad\x01" "byte"};
static const ctl_crash_t php_crash = {.pid = 1999, .age_s = 12,
                                      .how = "killed by signal 11 (Segmentation fault)",
                                      .signal = 11, .method = "GET", .uri = "/x.php?a=1",
                                      .request_ms = 200, .requests = 17,
                                      .stderr_lines = crash_lines, .n_stderr = 2};

static ctl_proc_status_t php_procs[] = {
    {.pid = 2001, .state = "busy", .requests = 1234, .age_s = 192, .idle_s = -1,
     .rss_bytes = 47395635, .cpu_known = true, .cpu_ms = 1250, .method = "POST",
     .uri = "/wp-admin/admin-ajax.php?a=\"b\"\n", .request_ms = 2500},
    {.pid = 2002, .state = "idle", .requests = 7, .age_s = 3700, .idle_s = 2, .rss_bytes = 0,
     .group = 2000},
};

static ctl_pool_status_t pools[2];
static ctl_status_t sample;

static void make_sample(void) {
    memset(pools, 0, sizeof(pools));
    memset(&sample, 0, sizeof(sample));
    ctl_server_status_t *s = &sample.server;
    s->version = "0.1.0";
    s->pid = 4242;
    s->uptime_s = 3600;
    s->start_time = 1700000000; /* 2023-11-14 22:13:20 UTC */
    s->reloads_ok = 2;
    s->reloads_failed = 1;
    s->connections = 5;
    s->requests[0] = 0;
    s->requests[1] = 1200;
    s->requests[2] = 30;
    s->requests[3] = 40;
    s->requests[4] = 5;
    static uint64_t codes[CTL_CODE_COUNT];
    memset(codes, 0, sizeof(codes));
    codes[200 - CTL_CODE_MIN] = 1100;
    codes[204 - CTL_CODE_MIN] = 100;
    codes[404 - CTL_CODE_MIN] = 40;
    codes[599 - CTL_CODE_MIN] = 5;
    s->codes = codes;
    ctl_hist_observe(&s->duration, 0.002);
    ctl_hist_observe(&s->duration, 0.003);
    ctl_hist_observe(&s->duration, 0.2);
    ctl_hist_observe(&s->duration, 30);

    ctl_pool_status_t *p = &pools[0];
    p->name = "php";
    p->limit = 12;
    p->auto_limit = true;
    p->min_instances = 2;
    p->max_concurrent_starts = 4;
    p->private_memory_limit = 64ull << 20;
    p->slow_request_seconds = 5;
    p->recycle_mode = "warm";
    p->warm_old = 3;
    p->slow_requests = 8;
    p->crashes = 3;
    p->last_crash = &php_crash;
    p->autotune_note = "raised 8 -> 12: requests waited";
    p->autotune_note_age_s = 30;
    p->procs[CTL_PROC_IDLE] = 3;
    p->procs[CTL_PROC_BUSY] = 9;
    p->queued = 0;
    p->queue_length = 1000;
    p->acquired = 4;
    p->queue_wait_ms_total = 1234;
    p->queue_full = 6;
    p->completed = 12345;
    p->requests[1] = 12000;
    p->requests[4] = 345;
    ctl_hist_observe(&p->duration, 0.04);
    ctl_hist_observe(&p->duration, 0.06);
    ctl_hist_observe(&p->duration, 0.5);
    p->spawns = 14;
    p->spawn_failures = 1;
    p->rapid_fails = 2;
    p->recycles[CTL_RECYCLE_MAX_REQUESTS] = 2;
    p->recycles[CTL_RECYCLE_IDLE] = 1;
    p->exits_unexpected = 3;
    p->stderr_lines = 17;
    p->procs_list = php_procs;
    p->n_procs = N(php_procs);

    p = &pools[1];
    p->name = "we\"ird\\app\n"; /* not a valid section name, but the renderers must cope */
    p->limit = 4;
    p->failed = true;
    p->failed_retry_s = 42;
    p->queue_length = 10;
    p->autotune_note = "ignored: not auto";

    sample.pools = pools;
    sample.n_pools = N(pools);
}

/* ---- JSON document ---- */

/* A strict RFC 8259 structure check: returns the position after one value, or NULL. */
static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_str(const char *p) {
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *json_num(const char *p) {
    const char *s = p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') {
        if (!(*++p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p > s ? p : NULL;
}

static const char *json_value(const char *p, int depth) {
    if (depth > 32) return NULL;
    p = json_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = json_str(json_ws(p));
                if (!p) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            p = json_value(p, depth + 1);
            if (!p) return NULL;
            p = json_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    if (*p == '"') return json_str(p);
    if (strncmp(p, "true", 4) == 0) return p + 4;
    if (strncmp(p, "false", 5) == 0) return p + 5;
    if (strncmp(p, "null", 4) == 0) return p + 4;
    return json_num(p);
}

static void assert_json(const char *doc) {
    const char *end = json_value(doc, 0);
    if (!end) fail_msg("invalid JSON: %s", doc);
    end = json_ws(end);
    if (*end) fail_msg("trailing bytes after the JSON document: %s", end);
}

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("missing: %s\n---- in:\n%s", needle, hay);
}

static void test_json_validator_rejects(void **state) {
    /* The checker itself must catch what a broken renderer would produce. */
    static const char *const bad[] = {"{\"a\":1,}", "{\"a\" 1}", "[1 2]", "\"a\nb\"", "01", "1.",
                                      "{\"a\":nan}", "\"\\x\"", "[1,]", "{\"a\":inf}"};
    for (size_t i = 0; i < N(bad); i++) {
        const char *end = json_value(bad[i], 0);
        if (end && *json_ws(end) == '\0') fail_msg("accepted bad JSON %s", bad[i]);
    }
}

static void test_json_document(void **state) {
    make_sample();
    buf_t b;
    buf_init(&b);
    ctl_render_json(&b, &sample, NULL);
    assert_json(b.data);
    assert_int_equal(b.data[b.len - 1], '\n');
    assert_null(memchr(b.data, '\n', b.len - 1)); /* one line */
    assert_contains(b.data,
                    "{\"server\":{\"version\":\"0.1.0\",\"pid\":4242,\"uptime_seconds\":3600,"
                    "\"start_time\":1700000000,\"reloads\":{\"ok\":2,\"failed\":1},"
                    "\"connections\":5,\"requests\":{\"total\":1275,\"1xx\":0,\"2xx\":1200,"
                    "\"3xx\":30,\"4xx\":40,\"5xx\":5},\"request_duration_seconds\":{\"buckets\":"
                    "{\"0.005\":2,\"0.01\":2,\"0.025\":2,\"0.05\":2,\"0.1\":2,\"0.25\":3,\"0.5\":3,"
                    "\"1\":3,\"2.5\":3,\"5\":3,\"10\":3,\"+Inf\":4},\"sum\":30.205,\"count\":4},"
                    "\"compression\":{\"responses\":0,\"bytes_in\":0,\"bytes_out\":0},"
                    "\"tls_handshakes\":{\"full\":0,\"resumed\":0,\"failed\":0},"
                    "\"http2\":{\"connections\":0,\"streams\":0}}");
    assert_contains(b.data,
                    "\"pools\":[{\"name\":\"php\",\"limit\":12,\"auto\":true,\"min_instances\":2,"
                    "\"max_concurrent_starts\":4,"
                    "\"private_memory_limit_bytes\":67108864,\"slow_request_seconds\":5,"
                    "\"recycle_mode\":\"warm\",\"warm_recycle_old\":3,\"prefork_children\":0,"
                    "\"autotune\":"
                    "{\"note\":\"raised 8 -> 12: requests waited\",\"seconds_ago\":30},"
                    "\"failed\":false,\"retry_in_seconds\":0,\"processes\":{\"total\":12,"
                    "\"starting\":0,\"idle\":3,\"busy\":9,\"draining\":0,\"stopping\":0},"
                    "\"queue\":{\"queued\":0,\"length\":1000,\"acquired\":4,\"wait_ms_total\":1234,"
                    "\"full\":6},\"requests\":{\"completed\":12345,\"total\":12345,\"1xx\":0,"
                    "\"2xx\":12000,\"3xx\":0,\"4xx\":0,\"5xx\":345},");
    assert_contains(b.data, "\"sum\":0.6,\"count\":3}");
    assert_contains(b.data,
                    "\"spawns\":14,\"spawn_failures\":1,\"rapid_fails\":2,\"recycles\":"
                    "{\"max_requests\":2,\"idle\":1,\"change\":0,\"kill\":0,\"manual\":0,\"memory\":0},"
                    "\"exits_unexpected\":3,\"stderr_lines\":17,\"slow_requests\":8,\"crashes\":3,\"last_crash\":"
                    "{\"pid\":1999,\"seconds_ago\":12,\"how\":\"killed by signal 11 (Segmentation "
                    "fault)\",\"signal\":11,\"exit_status\":null,\"request\":{\"method\":\"GET\","
                    "\"uri\":\"/x.php?a=1\",\"elapsed_seconds\":0.2},\"requests\":17,\"stderr\":"
                    "[\"PHP Fatal error:  Allowed memory size\",\"bad\\u0001byte\"]},"
                    "\"process_list\":["
                    "{\"pid\":2001,\"state\":\"busy\",\"requests\":1234,\"age_seconds\":192,"
                    "\"idle_seconds\":null,\"rss_bytes\":47395635,\"cpu_seconds\":1.25,"
                    "\"request\":{\"method\":\"POST\",\"uri\":"
                    "\"/wp-admin/admin-ajax.php?a=\\\"b\\\"\\n\",\"elapsed_seconds\":2.5},\"group\":null},"
                    "{\"pid\":2002,\"state\":\"idle\",\"requests\":7,\"age_seconds\":3700,"
                    "\"idle_seconds\":2,\"rss_bytes\":null,\"cpu_seconds\":null,"
                    "\"request\":null,\"group\":2000}]}");
    assert_contains(b.data, "{\"name\":\"we\\\"ird\\\\app\\n\",\"limit\":4,\"auto\":false,"
                            "\"min_instances\":0,\"max_concurrent_starts\":0,"
                            "\"private_memory_limit_bytes\":0,\"slow_request_seconds\":0,"
                            "\"recycle_mode\":\"warm\",\"warm_recycle_old\":0,\"prefork_children\":0,\"autotune\":{\"note\":\"ignored: not auto\",\"seconds_ago\":0},"
                            "\"failed\":true,\"retry_in_seconds\":42,");
    assert_contains(b.data, "\"slow_requests\":0,\"crashes\":0,\"last_crash\":null,\"process_list\":[]}]}\n");

    /* One pool: the same shape, only that pool. */
    b.len = 0;
    ctl_render_json(&b, &sample, ctl_status_find_pool(&sample, "php"));
    assert_json(b.data);
    assert_contains(b.data, "\"pools\":[{\"name\":\"php\"");
    assert_null(strstr(b.data, "ird"));

    /* No pools at all. */
    ctl_status_t empty = {.server = {.version = "x"}};
    b.len = 0;
    ctl_render_json(&b, &empty, NULL);
    assert_json(b.data);
    assert_contains(b.data, "\"pools\":[]}\n");
    buf_dispose(&b);
    assert_null(ctl_status_find_pool(&sample, "nope"));
}

/* ---- Prometheus ---- */

typedef struct family {
    char name[96];
    char type[16];
    unsigned samples;
} family_t;

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Check the exposition line by line: # HELP then # TYPE once per family, every sample inside its
 * family's block, names and counters as the conventions want, a number after each sample. Fills
 * fams (the families in order) and returns their count. */
static size_t check_exposition(const char *text, family_t *fams, size_t max) {
    size_t nf = 0;
    const char *line = text;
    int lineno = 0;
    while (*line) {
        const char *nl = strchr(line, '\n');
        if (!nl) fail_msg("the last line has no newline: %s", line);
        char l[512];
        size_t len = (size_t)(nl - line);
        assert_true(len < sizeof(l));
        memcpy(l, line, len);
        l[len] = '\0';
        line = nl + 1;
        lineno++;
        if (strncmp(l, "# HELP ", 7) == 0) {
            char name[96];
            assert_int_equal(sscanf(l + 7, "%95s", name), 1);
            for (size_t i = 0; i < nf; i++)
                if (strcmp(fams[i].name, name) == 0) fail_msg("line %d: second HELP for %s", lineno, name);
            if (strncmp(name, "fcgihost_", 9) != 0) fail_msg("line %d: %s", lineno, name);
            assert_true(nf < max);
            memset(&fams[nf], 0, sizeof(fams[nf]));
            strcpy(fams[nf].name, name);
            /* The TYPE line must follow at once. */
            char want[128];
            nl = strchr(line, '\n');
            assert_non_null(nl);
            snprintf(want, sizeof(want), "# TYPE %s ", name);
            if (strncmp(line, want, strlen(want)) != 0) fail_msg("line %d: no TYPE after HELP of %s", lineno, name);
            assert_int_equal(sscanf(line + strlen(want), "%15s", fams[nf].type), 1);
            assert_true(strcmp(fams[nf].type, "counter") == 0 || strcmp(fams[nf].type, "gauge") == 0 ||
                        strcmp(fams[nf].type, "histogram") == 0);
            if (strcmp(fams[nf].type, "counter") == 0 && !has_suffix(name, "_total"))
                fail_msg("counter %s does not end in _total", name);
            if (strcmp(fams[nf].type, "counter") != 0 && has_suffix(name, "_total"))
                fail_msg("%s %s ends in _total", fams[nf].type, name);
            nf++;
            line = nl + 1;
            lineno++;
            continue;
        }
        if (l[0] == '#') fail_msg("line %d: unexpected comment %s", lineno, l);
        if (nf == 0) fail_msg("line %d: sample before any HELP", lineno);
        family_t *f = &fams[nf - 1];
        size_t nlen = strcspn(l, "{ ");
        char name[128];
        assert_true(nlen < sizeof(name));
        memcpy(name, l, nlen);
        name[nlen] = '\0';
        bool ok = strcmp(name, f->name) == 0;
        if (strcmp(f->type, "histogram") == 0) {
            char b[160];
            ok = false;
            for (int k = 0; k < 3 && !ok; k++) {
                snprintf(b, sizeof(b), "%s%s", f->name, (const char *[]){"_bucket", "_sum", "_count"}[k]);
                ok = strcmp(name, b) == 0;
            }
        }
        if (!ok) fail_msg("line %d: sample %s outside its family %s", lineno, name, f->name);
        /* Labels: skip a quoted value with escapes, then one space and a number. */
        const char *p = l + nlen;
        if (*p == '{') {
            p++;
            while (*p != '}') {
                while ((*p >= 'a' && *p <= 'z') || *p == '_') p++;
                if (*p++ != '=' || *p++ != '"') fail_msg("line %d: bad label in %s", lineno, l);
                while (*p != '"') {
                    if (!*p) fail_msg("line %d: unterminated label value", lineno);
                    if (*p == '\\') {
                        p++;
                        if (*p != '\\' && *p != '"' && *p != 'n') fail_msg("line %d: bad escape", lineno);
                    }
                    p++;
                }
                p++;
                if (*p == ',') p++;
                else if (*p != '}') fail_msg("line %d: bad label list in %s", lineno, l);
            }
            p++;
        }
        if (*p++ != ' ') fail_msg("line %d: no value in %s", lineno, l);
        char *end;
        strtod(p, &end);
        if (end == p || *end) fail_msg("line %d: bad value '%s'", lineno, p);
        f->samples++;
    }
    return nf;
}

static void test_prometheus(void **state) {
    static const char *const families[] = {
        "fcgihost_build_info", "fcgihost_start_time_seconds", "fcgihost_uptime_seconds",
        "fcgihost_reloads_total", "fcgihost_connections", "fcgihost_http_requests_total",
        "fcgihost_http_responses_total", "fcgihost_http_request_duration_seconds",
        "fcgihost_compressed_responses_total", "fcgihost_compression_bytes_total",
        "fcgihost_tls_handshakes_total", "fcgihost_http2_connections_total", "fcgihost_http2_streams_total",
        "fcgihost_app_requests_total",
        "fcgihost_app_request_duration_seconds", "fcgihost_processes", "fcgihost_recycles_total",
        "fcgihost_fastcgi_requests_total", "fcgihost_instance_limit",
        "fcgihost_instance_limit_auto", "fcgihost_min_instances", "fcgihost_max_concurrent_starts",
        "fcgihost_prefork_children", "fcgihost_private_memory_limit_bytes",
        "fcgihost_queue_length", "fcgihost_queue_capacity",
        "fcgihost_queue_acquired_total", "fcgihost_queue_wait_seconds_total",
        "fcgihost_queue_full_total", "fcgihost_failed", "fcgihost_rapid_fails_total",
        "fcgihost_spawns_total", "fcgihost_spawn_failures_total",
        "fcgihost_exits_unexpected_total", "fcgihost_stderr_lines_total", "fcgihost_crashes_total", "fcgihost_slow_requests_total",
        "fcgihost_slow_request_seconds", "fcgihost_warm_recycle_old_processes",
    };
    make_sample();
    buf_t b;
    buf_init(&b);
    ctl_render_prometheus(&b, &sample);
    family_t fams[64];
    size_t nf = check_exposition(b.data, fams, N(fams));
    assert_int_equal(nf, N(families));
    for (size_t i = 0; i < N(families); i++) {
        size_t j = 0;
        while (j < nf && strcmp(fams[j].name, families[i]) != 0) j++;
        if (j == nf) fail_msg("family %s missing", families[i]);
        if (fams[j].samples == 0) fail_msg("family %s has no sample", families[i]);
    }

    static const char *const lines[] = {
        "# HELP fcgihost_http_requests_total HTTP responses sent, by status class.\n"
        "# TYPE fcgihost_http_requests_total counter\n"
        "fcgihost_http_requests_total{class=\"1xx\"} 0\n"
        "fcgihost_http_requests_total{class=\"2xx\"} 1200\n",
        /* by exact code: only the codes sent, in order */
        "fcgihost_http_requests_total{class=\"5xx\"} 5\n"
        "# HELP fcgihost_http_responses_total HTTP responses sent, by status code (100 to 599; "
        "codes not sent yet are absent).\n"
        "# TYPE fcgihost_http_responses_total counter\n"
        "fcgihost_http_responses_total{code=\"200\"} 1100\n"
        "fcgihost_http_responses_total{code=\"204\"} 100\n"
        "fcgihost_http_responses_total{code=\"404\"} 40\n"
        "fcgihost_http_responses_total{code=\"599\"} 5\n"
        "# HELP fcgihost_http_request_duration_seconds ",
        "fcgihost_build_info{version=\"0.1.0\"} 1\n",
        "\nfcgihost_start_time_seconds 1700000000\n",
        "\nfcgihost_uptime_seconds 3600\n",
        "\nfcgihost_reloads_total{result=\"ok\"} 2\nfcgihost_reloads_total{result=\"failed\"} 1\n",
        "\nfcgihost_connections 5\n",
        /* cumulative buckets, +Inf = count */
        "# TYPE fcgihost_http_request_duration_seconds histogram\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.005\"} 2\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.01\"} 2\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.025\"} 2\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.05\"} 2\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.1\"} 2\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.25\"} 3\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"0.5\"} 3\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"1\"} 3\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"2.5\"} 3\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"5\"} 3\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"10\"} 3\n"
        "fcgihost_http_request_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "fcgihost_http_request_duration_seconds_sum 30.205\n"
        "fcgihost_http_request_duration_seconds_count 4\n",
        "\nfcgihost_app_requests_total{app=\"php\",class=\"2xx\"} 12000\n",
        "\nfcgihost_app_requests_total{app=\"php\",class=\"5xx\"} 345\n",
        "\nfcgihost_app_request_duration_seconds_bucket{app=\"php\",le=\"0.025\"} 0\n"
        "fcgihost_app_request_duration_seconds_bucket{app=\"php\",le=\"0.05\"} 1\n"
        "fcgihost_app_request_duration_seconds_bucket{app=\"php\",le=\"0.1\"} 2\n",
        "\nfcgihost_app_request_duration_seconds_bucket{app=\"php\",le=\"+Inf\"} 3\n"
        "fcgihost_app_request_duration_seconds_sum{app=\"php\"} 0.6\n"
        "fcgihost_app_request_duration_seconds_count{app=\"php\"} 3\n",
        "\nfcgihost_app_request_duration_seconds_count{app=\"we\\\"ird\\\\app\\n\"} 0\n",
        "\nfcgihost_processes{app=\"php\",state=\"starting\"} 0\n"
        "fcgihost_processes{app=\"php\",state=\"idle\"} 3\n"
        "fcgihost_processes{app=\"php\",state=\"busy\"} 9\n"
        "fcgihost_processes{app=\"php\",state=\"draining\"} 0\n"
        "fcgihost_processes{app=\"php\",state=\"stopping\"} 0\n",
        "\nfcgihost_processes{app=\"we\\\"ird\\\\app\\n\",state=\"idle\"} 0\n",
        "\nfcgihost_recycles_total{app=\"php\",reason=\"max_requests\"} 2\n"
        "fcgihost_recycles_total{app=\"php\",reason=\"idle\"} 1\n"
        "fcgihost_recycles_total{app=\"php\",reason=\"change\"} 0\n"
        "fcgihost_recycles_total{app=\"php\",reason=\"kill\"} 0\n"
        "fcgihost_recycles_total{app=\"php\",reason=\"manual\"} 0\n",
        "\nfcgihost_fastcgi_requests_total{app=\"php\"} 12345\n",
        "\nfcgihost_instance_limit{app=\"php\"} 12\nfcgihost_instance_limit{app=\"we\\\"ird\\\\app\\n\"} 4\n",
        "\nfcgihost_instance_limit_auto{app=\"php\"} 1\nfcgihost_instance_limit_auto{app=\"we\\\"ird\\\\app\\n\"} 0\n",
        "\nfcgihost_queue_length{app=\"php\"} 0\n",
        "\nfcgihost_queue_capacity{app=\"php\"} 1000\n",
        "\nfcgihost_queue_acquired_total{app=\"php\"} 4\n",
        "\nfcgihost_queue_wait_seconds_total{app=\"php\"} 1.234\n",
        "\nfcgihost_queue_full_total{app=\"php\"} 6\n",
        "\nfcgihost_failed{app=\"php\"} 0\nfcgihost_failed{app=\"we\\\"ird\\\\app\\n\"} 1\n",
        "\nfcgihost_rapid_fails_total{app=\"php\"} 2\n",
        "\nfcgihost_spawns_total{app=\"php\"} 14\n",
        "\nfcgihost_spawn_failures_total{app=\"php\"} 1\n",
        "\nfcgihost_exits_unexpected_total{app=\"php\"} 3\n",
        "\nfcgihost_stderr_lines_total{app=\"php\"} 17\n",
    };
    for (size_t i = 0; i < N(lines); i++) assert_contains(b.data, lines[i]);

    /* Every histogram: cumulative (never decreasing) buckets ending with +Inf = _count. */
    const char *p = b.data;
    unsigned hists = 0;
    while ((p = strstr(p, "_bucket{")) != NULL) {
        uint64_t prev = 0, v = 0;
        for (;;) {
            const char *sp = strchr(p, ' ');
            v = strtoull(sp + 1, NULL, 10);
            assert_true(v >= prev);
            prev = v;
            bool inf = strstr(p, "le=\"+Inf\"") && strstr(p, "le=\"+Inf\"") < strchr(p, '\n');
            p = strchr(p, '\n') + 1;
            if (inf) break;
            p = strstr(p, "_bucket{");
            assert_non_null(p);
        }
        p = strstr(p, "_count");
        assert_non_null(p);
        assert_int_equal(strtoull(strchr(p, ' ') + 1, NULL, 10), v);
        hists++;
    }
    assert_int_equal(hists, 1 + N(pools));

    /* No pool: every family still has HELP and TYPE. */
    ctl_status_t empty = {.server = {.version = "x"}};
    b.len = 0;
    ctl_render_prometheus(&b, &empty);
    assert_int_equal(check_exposition(b.data, fams, N(fams)), N(families));
    buf_dispose(&b);
}

static void test_prom_label_value(void **state) {
    buf_t b;
    buf_init(&b);
    ctl_prom_label_value(&b, "a\\b\"c\nd\te");
    assert_string_equal(b.data, "a\\\\b\\\"c\\nd\te");
    b.len = 0;
    ctl_prom_label_value(&b, "");
    assert_int_equal(b.len, 0);
    buf_dispose(&b);
}

/* ---- Text ---- */

static void test_human_units(void **state) {
    static const struct {
        int line;
        uint64_t v;
        const char *want;
    } dur[] = {
        {__LINE__, 0, "0s"},        {__LINE__, 59, "59s"},       {__LINE__, 60, "1m00s"},
        {__LINE__, 192, "3m12s"},   {__LINE__, 3599, "59m59s"},  {__LINE__, 3600, "1h00m"},
        {__LINE__, 86399, "23h59m"}, {__LINE__, 86400, "1d00h"}, {__LINE__, 90061, "1d01h"},
    }, bytes[] = {
        {__LINE__, 0, "-"},
        {__LINE__, 1, "1B"},
        {__LINE__, 1023, "1023B"},
        {__LINE__, 1024, "1.0K"},
        {__LINE__, 1536, "1.5K"},
        {__LINE__, 47395635, "45.2M"},
        {__LINE__, 1073741823, "1.0G"}, /* not 1024.0M */
        {__LINE__, 5ull << 40, "5.0T"},
        {__LINE__, UINT64_MAX, "16.0E"},
    };
    char t[32];
    for (size_t i = 0; i < N(dur); i++) {
        ctl_human_duration(t, sizeof(t), dur[i].v);
        if (strcmp(t, dur[i].want) != 0) fail_msg("line %d: got %s want %s", dur[i].line, t, dur[i].want);
    }
    for (size_t i = 0; i < N(bytes); i++) {
        ctl_human_bytes(t, sizeof(t), bytes[i].v);
        if (strcmp(t, bytes[i].want) != 0) fail_msg("line %d: got %s want %s", bytes[i].line, t, bytes[i].want);
    }
    static const struct {
        int line;
        double v;
        const char *want;
    } secs[] = {
        {__LINE__, 0, "0us"},          {__LINE__, 0.0005, "500us"}, {__LINE__, 0.0123, "12.3ms"},
        {__LINE__, 1.25, "1.25s"},     {__LINE__, 75, "75.0s"},     {__LINE__, -1, "0us"},
    };
    for (size_t i = 0; i < N(secs); i++) {
        ctl_human_seconds(t, sizeof(t), secs[i].v);
        if (strcmp(t, secs[i].want) != 0) fail_msg("line %d: got %s want %s", secs[i].line, t, secs[i].want);
    }
}

static void test_text_table(void **state) {
    make_sample();
    buf_t b;
    buf_init(&b);
    ctl_render_text(&b, &sample, NULL);
    static const char *const cells[] = {
        "fcgihost 0.1.0  pid 4242  up 1h00m (since 2023-11-14 22:13:20 UTC)  reloads 2 ok, 1 failed\n",
        "connections 5  requests 1275 (1xx 0, 2xx 1200, 3xx 30, 4xx 40, 5xx 5)  mean 7.55s\n",
        ("\nphp  limit 12 (auto: raised 8 -> 12: requests waited, 30s ago)  min 2  processes 12 (idle 3, "
         "busy 9)  WARM RECYCLE (3 old left)  queue 0/1000  requests 12345\n"),
        "  responses  1xx 0  2xx 12000  3xx 0  4xx 0  5xx 345  mean 200.0ms\n",
        "  processes  spawns 14  spawn failures 1  rapid fails 2  unexpected exits 3  stderr lines 17  slow requests 8\n",
        "  recycles   3 (max_requests 2, idle 1)\n",
        "  queue      waits 4 (mean 308.5ms)  full (503) 6\n",
        "  last crash 12s ago (3 in all): pid 1999 killed by signal 11 (Segmentation fault) while "
        "serving GET /x.php?a=1 (200.0ms), after 17 requests\n"
        "    stderr: PHP Fatal error:  Allowed memory size\n"
        "    stderr: bad?byte\n",
        "  PID      STATE      REQUESTS  AGE     IDLE        RSS     CPU  REQUEST\n",
        /* control bytes of the URI become '?' */
        "  2001     busy           1234  3m12s   -         45.2M   1.25s  POST "
        "/wp-admin/admin-ajax.php?a=\"b\"? (2.50s)\n",
        "  2002     idle              7  1h01m   2s            -       -  -\n",
        /* not auto: the note is not shown; control bytes in the name become '?' */
        "\nwe\"ird\\app?  limit 4  FAILED (retry in 42s)  processes 0  queue 0/10  requests 0\n",
    };
    for (size_t i = 0; i < N(cells); i++) assert_contains(b.data, cells[i]);
    assert_null(strstr(b.data, "ignored"));

    /* status APP: only that pool, without the server block. */
    b.len = 0;
    ctl_render_text(&b, &sample, ctl_status_find_pool(&sample, "php"));
    assert_true(strncmp(b.data, "php  limit 12 (auto: ", 21) == 0);
    assert_null(strstr(b.data, "fcgihost 0.1.0"));
    assert_null(strstr(b.data, "ird"));
    assert_contains(b.data, "  2002     idle");

    /* Auto without a note yet; a control byte in a note. */
    pools[0].autotune_note = NULL;
    b.len = 0;
    ctl_render_text(&b, &sample, &pools[0]);
    assert_contains(b.data, "php  limit 12 (auto)  min 2  processes 12");
    pools[0].autotune_note = "x\x1b[2Jy";
    b.len = 0;
    ctl_render_text(&b, &sample, &pools[0]);
    assert_contains(b.data, "(auto: x?[2Jy, 30s ago)");

    ctl_status_t empty = {.server = {.version = "x"}};
    b.len = 0;
    ctl_render_text(&b, &empty, NULL);
    assert_contains(b.data, "no FastCGI applications configured");
    buf_dispose(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_edges),      cmocka_unit_test(test_hist_sum),
        cmocka_unit_test(test_status_class),    cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_json_validator_rejects), cmocka_unit_test(test_json_document),
        cmocka_unit_test(test_prometheus),      cmocka_unit_test(test_prom_label_value),
        cmocka_unit_test(test_human_units),     cmocka_unit_test(test_text_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
