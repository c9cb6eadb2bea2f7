/* Unit tests for src/fastcgi/codec.c: encoders, name-value pairs, the PARAMS builder and the
 * resumable decoder. Every decoder input is also fed split at each point, in three pieces (short
 * inputs) and byte by byte, and must give the same transcript. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fastcgi/codec.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* ---- Helpers ---- */

/* A record as a test case describes it; raw bytes when raw != NULL. */
typedef struct rec {
    int type;
    int id;
    const char *content;
    size_t clen;
    int pad;
    int version;
    const char *raw;
    size_t rawlen;
} rec_t;

#define R(t, id, s, pad) {(t), (id), (s), sizeof(s) - 1, (pad), FCGI_VERSION_1, NULL, 0}
#define RV(v, t, id, s, pad) {(t), (id), (s), sizeof(s) - 1, (pad), (v), NULL, 0}
#define RAW(s) {0, 0, NULL, 0, 0, 0, (s), sizeof(s) - 1}
#define END_OK(id) R(FCGI_END_REQUEST, (id), "\0\0\0\0\0\0\0\0", 0)
#define MAX_RECS 8

static void build_input(const rec_t *recs, buf_t *out) {
    for (int i = 0; i < MAX_RECS; i++) {
        const rec_t *r = &recs[i];
        if (r->raw) {
            buf_append(out, r->raw, r->rawlen);
            continue;
        }
        if (r->content == NULL) break; /* end of the case's records */
        char h[8];
        fcgi_header_write(h, (uint8_t)r->type, (uint16_t)r->id, (uint16_t)r->clen, (uint8_t)r->pad);
        h[0] = (char)r->version;
        buf_append(out, h, 8);
        buf_append(out, r->content, r->clen);
        for (int k = 0; k < r->pad; k++) buf_append(out, "\xAA", 1);
    }
}

/* Renders decoder events as text: "O:hello|E:oops|END:0,0|ERR:-7". Adjacent spans of the same
 * stream merge, so the transcript does not depend on how the input was split. */
typedef struct run {
    buf_t out;
    int last;
    int err;
    size_t consumed;
} run_t;

static void run_init(run_t *r) {
    buf_init(&r->out);
    r->last = 0;
    r->err = 0;
    r->consumed = 0;
}

static void render(run_t *r, int rc, const fcgi_event_t *ev) {
    const char *sep = r->out.len ? "|" : "";
    if (rc == FCGI_EV_STDOUT || rc == FCGI_EV_STDERR) {
        if (r->last != rc) buf_printf(&r->out, "%s%s", sep, rc == FCGI_EV_STDOUT ? "O:" : "E:");
        buf_append(&r->out, ev->data.p, ev->data.len);
    } else if (rc == FCGI_EV_END_REQUEST) {
        buf_printf(&r->out, "%sEND:%u,%u", sep, ev->app_status, ev->protocol_status);
    } else if (rc == FCGI_EV_UNKNOWN_TYPE) {
        buf_printf(&r->out, "%sU:%u", sep, ev->unknown_type);
    } else if (rc == FCGI_EV_GET_VALUES_RESULT) {
        buf_printf(&r->out, "%sV:", sep);
        str_t rest = ev->data;
        fcgi_nv_t nv;
        while (fcgi_nv_next(&rest, &nv) > 0)
            buf_printf(&r->out, "%.*s=%.*s;", (int)nv.name.len, nv.name.p, (int)nv.value.len,
                       nv.value.p);
    } else if (rc < 0) {
        buf_printf(&r->out, "%sERR:%d", sep, rc);
    }
    if (rc != FCGI_EV_NEED_MORE) r->last = rc;
}

/* Feed one piece from a private heap copy, freed afterwards, so ASan catches a decoder that keeps
 * a pointer into an earlier piece. */
static void feed(fcgi_decoder_t *d, run_t *r, const char *piece, size_t n) {
    if (r->err) return;
    char *copy = xmalloc(n ? n : 1);
    if (n) memcpy(copy, piece, n);
    const char *p = copy;
    size_t left = n;
    for (;;) {
        size_t used = 12345;
        fcgi_event_t ev;
        memset(&ev, 0, sizeof(ev));
        int rc = fcgi_decoder_next(d, p, left, &used, &ev);
        assert_true(used <= left);
        r->consumed += used;
        if (rc > 0) assert_int_equal(ev.kind, rc);
        if (rc == FCGI_EV_STDOUT || rc == FCGI_EV_STDERR) {
            /* zero-copy: the span lies inside the bytes this call consumed */
            assert_true(ev.data.len > 0);
            assert_true(ev.data.p >= p && ev.data.p + ev.data.len <= p + used);
        }
        render(r, rc, &ev);
        p += used;
        left -= used;
        if (rc == FCGI_EV_NEED_MORE) {
            assert_int_equal(left, 0);
            break;
        }
        if (rc < 0) {
            r->err = rc;
            break;
        }
    }
    free(copy);
}

/* Decode `in` cut at the given offsets (sorted, within 0..len). */
static void decode_split(const char *in, size_t len, uint16_t id, const size_t *cuts, int ncuts,
                         run_t *r) {
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, id);
    run_init(r);
    size_t at = 0;
    for (int i = 0; i < ncuts; i++) {
        feed(&d, r, in + at, cuts[i] - at);
        at = cuts[i];
    }
    feed(&d, r, in + at, len - at);
    if (!r->err) assert_int_equal(d.offset, len);
}

static void expect_same(int line, const run_t *want, const run_t *got, const char *how) {
    if (want->out.len != got->out.len ||
        (got->out.len && memcmp(want->out.data, got->out.data, got->out.len) != 0))
        fail_msg("line %d (%s): transcript\n got: %.*s\nwant: %.*s", line, how, (int)got->out.len,
                 got->out.data, (int)want->out.len, want->out.data);
    if (want->err != got->err)
        fail_msg("line %d (%s): err %d, want %d", line, how, got->err, want->err);
}

/* One-shot decode, then every way of splitting it must give the same transcript. */
static void decode_all_ways(int line, const char *in, size_t len, uint16_t id, run_t *one) {
    decode_split(in, len, id, NULL, 0, one);
    run_t r;
    for (size_t i = 0; i <= len; i++) {
        decode_split(in, len, id, &i, 1, &r);
        expect_same(line, one, &r, "two pieces");
        buf_dispose(&r.out);
    }
    if (len <= 96) {
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                size_t cuts[2] = {i, j};
                decode_split(in, len, id, cuts, 2, &r);
                expect_same(line, one, &r, "three pieces");
                buf_dispose(&r.out);
            }
    }
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, id);
    run_init(&r);
    for (size_t i = 0; i < len; i++) feed(&d, &r, in + i, 1);
    expect_same(line, one, &r, "byte by byte");
    buf_dispose(&r.out);
}

/* ---- Decoder table ---- */

#define GVR_BODY "\x0e\x01" "FCGI_MAX_CONNS" "1" "\x0d\x01" "FCGI_MAX_REQS" "1"

typedef struct dec_case {
    int line;
    int id;
    rec_t recs[MAX_RECS];
    const char *want; /* transcript */
} dec_case_t;

static const dec_case_t dec_cases[] = {
    {__LINE__, 1, {R(FCGI_STDOUT, 1, "hello", 3), END_OK(1)}, "O:hello|END:0,0"},
    {__LINE__, 1, {R(FCGI_STDOUT, 1, "hello", 0), END_OK(1)}, "O:hello|END:0,0"},
    {__LINE__, 7,
     {R(FCGI_STDOUT, 7, "Content-type: text/html\r\n\r\n", 5), R(FCGI_STDOUT, 7, "<p>hi", 3),
      R(FCGI_STDOUT, 7, "", 0), END_OK(7)},
     "O:Content-type: text/html\r\n\r\n<p>hi|END:0,0"},
    {__LINE__, 1,
     {R(FCGI_STDOUT, 1, "a", 7), R(FCGI_STDERR, 1, "warn", 4), R(FCGI_STDOUT, 1, "b", 0),
      R(FCGI_STDERR, 1, "", 0), R(FCGI_STDOUT, 1, "", 0), END_OK(1)},
     "O:a|E:warn|O:b|END:0,0"},
    /* END_REQUEST fields and padding */
    {__LINE__, 0x1234,
     {R(FCGI_END_REQUEST, 0x1234, "\x01\x02\x03\x04\x03\x00\x00\x00", 6)}, "END:16909060,3"},
    {__LINE__, 65535, {R(FCGI_END_REQUEST, 65535, "\xff\xff\xff\xff\x01zzz", 255)},
     "END:4294967295,1"},
    {__LINE__, 1, {END_OK(1)}, "END:0,0"},
    /* management records between a request's records */
    {__LINE__, 1,
     {R(FCGI_STDOUT, 1, "x", 0), R(FCGI_GET_VALUES_RESULT, 0, GVR_BODY, 2), R(FCGI_STDOUT, 1, "y", 0),
      R(FCGI_UNKNOWN_TYPE, 0, "\x2a\0\0\0\0\0\0\0", 0), END_OK(1)},
     "O:x|V:FCGI_MAX_CONNS=1;FCGI_MAX_REQS=1;|O:y|U:42|END:0,0"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, GVR_BODY, 0)}, "V:FCGI_MAX_CONNS=1;FCGI_MAX_REQS=1;"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "", 0)}, "V:"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "\x01\x00" "A", 7)}, "V:A=;"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "\x80\x00\x00\x01\x80\x00\x00\x02" "Abc", 0)},
     "V:A=bc;"},
    /* incomplete input: no event, no error */
    {__LINE__, 1, {R(FCGI_STDOUT, 1, "abc", 0), RAW("\x01\x06\x00")}, "O:abc"},
    {__LINE__, 1, {RAW("\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00")}, ""},
    {__LINE__, 1, {RAW("\x01\x03\x00\x01\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\xAA")}, ""},
    /* errors */
    {__LINE__, 1, {RV(0, FCGI_STDOUT, 1, "x", 0)}, "ERR:-1"},
    {__LINE__, 1, {RV(2, FCGI_STDOUT, 1, "x", 0)}, "ERR:-1"},
    {__LINE__, 1, {R(FCGI_STDOUT, 1, "ok", 0), RV(2, FCGI_STDOUT, 1, "x", 0)}, "O:ok|ERR:-1"},
    {__LINE__, 1, {R(FCGI_BEGIN_REQUEST, 1, "\0\1\1\0\0\0\0\0", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(FCGI_ABORT_REQUEST, 1, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(FCGI_PARAMS, 1, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(FCGI_STDIN, 1, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(FCGI_DATA, 1, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(FCGI_GET_VALUES, 0, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(0, 1, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(12, 0, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(255, 1, "", 0)}, "ERR:-2"},
    {__LINE__, 1, {R(FCGI_STDOUT, 2, "x", 0)}, "ERR:-3"},
    {__LINE__, 1, {R(FCGI_STDOUT, 0, "x", 0)}, "ERR:-3"},
    {__LINE__, 1, {R(FCGI_STDERR, 0x0101, "x", 0)}, "ERR:-3"},
    {__LINE__, 1, {R(FCGI_END_REQUEST, 2, "\0\0\0\0\0\0\0\0", 0)}, "ERR:-3"},
    {__LINE__, 0, {R(FCGI_STDOUT, 0, "x", 0)}, "ERR:-3"},
    {__LINE__, 0, {END_OK(0)}, "ERR:-3"},
    {__LINE__, 1, {R(FCGI_GET_VALUES_RESULT, 1, "", 0)}, "ERR:-3"},
    {__LINE__, 1, {R(FCGI_UNKNOWN_TYPE, 1, "\x2a\0\0\0\0\0\0\0", 0)}, "ERR:-3"},
    {__LINE__, 1, {R(FCGI_END_REQUEST, 1, "", 0)}, "ERR:-4"},
    {__LINE__, 1, {R(FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0", 0)}, "ERR:-4"},
    {__LINE__, 1, {R(FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0\0", 0)}, "ERR:-4"},
    {__LINE__, 1, {R(FCGI_UNKNOWN_TYPE, 0, "\x2a", 7)}, "ERR:-4"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "\x05\x00" "AB", 0)}, "ERR:-6"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "\x01", 7)}, "ERR:-6"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "\x80\x00\x00", 0)}, "ERR:-6"},
    {__LINE__, 0, {R(FCGI_GET_VALUES_RESULT, 0, "\x01\x81\x00\x00" "A", 0)}, "ERR:-6"},
    {__LINE__, 1, {END_OK(1), R(FCGI_STDOUT, 1, "late", 0)}, "END:0,0|ERR:-7"},
    {__LINE__, 1, {END_OK(1), RAW("\x00")}, "END:0,0|ERR:-7"},
    {__LINE__, 1, {R(FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0", 3), END_OK(1)}, "END:0,0|ERR:-7"},
};

static void test_decoder_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(dec_cases) / sizeof(dec_cases[0]); i++) {
        const dec_case_t *c = &dec_cases[i];
        buf_t in;
        buf_init(&in);
        build_input(c->recs, &in);
        run_t one;
        decode_all_ways(c->line, in.data, in.len, (uint16_t)c->id, &one);
        buf_append(&one.out, "", 1);
        if (strcmp(one.out.data, c->want) != 0)
            fail_msg("line %d: transcript\n got: %s\nwant: %s", c->line, one.out.data, c->want);
        buf_dispose(&one.out);
        buf_dispose(&in);
    }
}

/* A GET_VALUES_RESULT longer than the decoder keeps is refused as soon as its header is read. */
static void test_decoder_values_too_large(void **state) {
    (void)state;
    char big[FCGI_DECODER_BODY_MAX + 1];
    memset(big, 'x', sizeof(big));
    buf_t in;
    buf_init(&in);
    fcgi_append_stream(&in, FCGI_GET_VALUES_RESULT, 0, big, FCGI_DECODER_BODY_MAX);
    run_t r;
    decode_all_ways(__LINE__, in.data, in.len, 0, &r);
    assert_int_equal(r.err, FCGI_EPAIR); /* right size, but 'x' pairs are malformed */
    buf_dispose(&r.out);
    in.len = 0;
    fcgi_append_stream(&in, FCGI_GET_VALUES_RESULT, 0, big, sizeof(big));
    decode_all_ways(__LINE__, in.data, 8, 0, &r);
    assert_int_equal(r.err, FCGI_ETOO_LARGE);
    buf_dispose(&r.out);
    buf_dispose(&in);
}

/* The END_REQUEST event leaves extra bytes unconsumed so the caller can see them. */
static void test_decoder_extra_after_end(void **state) {
    (void)state;
    const char in[] = "\x01\x03\x00\x01\x00\x08\x00\x00" "\0\0\0\0\0\0\0\0" "junk";
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, 1);
    fcgi_event_t ev;
    size_t used;
    assert_int_equal(fcgi_decoder_next(&d, in, sizeof(in) - 1, &used, &ev), FCGI_EV_END_REQUEST);
    assert_int_equal(used, 16);
    assert_int_equal(fcgi_decoder_next(&d, in, 0, &used, &ev), FCGI_EV_NEED_MORE);
    assert_int_equal(used, 0);
    assert_int_equal(fcgi_decoder_next(&d, in + 16, 4, &used, &ev), FCGI_ETRAILING);
    assert_int_equal(used, 0);
    /* sticky */
    assert_int_equal(fcgi_decoder_next(&d, in, 16, &used, &ev), FCGI_ETRAILING);
    assert_int_equal(used, 0);
    /* reset for the next request on the kept-alive connection */
    fcgi_decoder_reset(&d, 2);
    char next[16];
    fcgi_end_request_write(next, 2, 7, FCGI_REQUEST_COMPLETE);
    assert_int_equal(fcgi_decoder_next(&d, next, 16, &used, &ev), FCGI_EV_END_REQUEST);
    assert_int_equal(ev.app_status, 7);
    assert_int_equal(d.offset, 16);
}

/* Errors report the bytes consumed and leave the offset for the log line. */
static void test_decoder_error_position(void **state) {
    (void)state;
    buf_t in;
    buf_init(&in);
    fcgi_append_stream(&in, FCGI_STDOUT, 1, "abc", 3); /* 8 + 3 + 5 */
    fcgi_append_stream(&in, FCGI_STDIN, 1, "x", 1);
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, 1);
    fcgi_event_t ev;
    size_t used;
    assert_int_equal(fcgi_decoder_next(&d, in.data, in.len, &used, &ev), FCGI_EV_STDOUT);
    assert_int_equal(used, 11);
    assert_int_equal(fcgi_decoder_next(&d, in.data + 11, in.len - 11, &used, &ev), FCGI_ETYPE);
    assert_int_equal(used, 13);
    assert_int_equal(d.offset, 24);
    assert_string_equal(fcgi_strerror(FCGI_ETYPE), "record type not allowed from an application");
    assert_string_equal(fcgi_strerror(1), "unknown error");
    buf_dispose(&in);
}

/* GET_VALUES_RESULT is zero-copy when it arrives whole, copied when split. */
static void test_decoder_values_storage(void **state) {
    (void)state;
    buf_t in;
    buf_init(&in);
    fcgi_append_stream(&in, FCGI_GET_VALUES_RESULT, 0, GVR_BODY, sizeof(GVR_BODY) - 1);
    fcgi_decoder_t d;
    fcgi_event_t ev;
    size_t used, half = in.len / 2;
    fcgi_decoder_init(&d, 0);
    assert_int_equal(fcgi_decoder_next(&d, in.data, in.len, &used, &ev), FCGI_EV_GET_VALUES_RESULT);
    assert_ptr_equal(ev.data.p, in.data + 8);
    assert_int_equal(used, in.len);
    fcgi_decoder_init(&d, 0);
    assert_int_equal(fcgi_decoder_next(&d, in.data, half, &used, &ev), FCGI_EV_NEED_MORE);
    assert_int_equal(fcgi_decoder_next(&d, in.data + half, in.len - half, &used, &ev),
                     FCGI_EV_GET_VALUES_RESULT);
    assert_ptr_equal(ev.data.p, d.body);
    assert_int_equal(ev.data.len, sizeof(GVR_BODY) - 1);
    buf_dispose(&in);
}

/* ---- Encoders ---- */

static void test_fixed_records(void **state) {
    (void)state;
    char out[16];
    fcgi_begin_request_write(out, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    assert_memory_equal(out, "\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00", 16);
    fcgi_begin_request_write(out, 0xabcd, FCGI_FILTER, 0);
    assert_memory_equal(out, "\x01\x01\xab\xcd\x00\x08\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00", 16);
    fcgi_abort_request_write(out, 0x0102);
    assert_memory_equal(out, "\x01\x02\x01\x02\x00\x00\x00\x00", 8);
    fcgi_end_request_write(out, 3, 0x11223344, FCGI_OVERLOADED);
    assert_memory_equal(out, "\x01\x03\x00\x03\x00\x08\x00\x00\x11\x22\x33\x44\x02\x00\x00\x00", 16);
    fcgi_stdin_end_write(out, 9);
    assert_memory_equal(out, "\x01\x05\x00\x09\x00\x00\x00\x00", 8);

    buf_t b;
    buf_init(&b);
    fcgi_append_begin_request(&b, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    fcgi_append_abort_request(&b, 1);
    fcgi_append_stdin_end(&b, 1);
    fcgi_append_stream_end(&b, FCGI_PARAMS, 1);
    assert_int_equal(b.len, 16 + 8 + 8 + 8);
    assert_memory_equal(b.data + 16, "\x01\x02\x00\x01\x00\x00\x00\x00", 8);
    assert_memory_equal(b.data + 24, "\x01\x05\x00\x01\x00\x00\x00\x00", 8);
    assert_memory_equal(b.data + 32, "\x01\x04\x00\x01\x00\x00\x00\x00", 8);
    buf_dispose(&b);

    fcgi_header_t h;
    fcgi_header_write(out, FCGI_STDOUT, 0xfedc, 0xba98, 7);
    fcgi_header_decode(out, &h);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.type, FCGI_STDOUT);
    assert_int_equal(h.request_id, 0xfedc);
    assert_int_equal(h.content_len, 0xba98);
    assert_int_equal(h.padding_len, 7);
    assert_int_equal(out[7], 0);
}

static void test_record_header_padding(void **state) {
    (void)state;
    static const struct { int line; size_t len, pad; } cases[] = {
        {__LINE__, 0, 0}, {__LINE__, 1, 7}, {__LINE__, 7, 1}, {__LINE__, 8, 0}, {__LINE__, 9, 7},
        {__LINE__, 65527, 1}, {__LINE__, 65528, 0}, {__LINE__, 65529, 0}, {__LINE__, 65535, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[8];
        size_t pad = fcgi_record_header(out, FCGI_STDOUT, 1, cases[i].len);
        if (pad != cases[i].pad) fail_msg("line %d: pad %zu", cases[i].line, pad);
        fcgi_header_t h;
        fcgi_header_decode(out, &h);
        assert_int_equal(h.content_len, cases[i].len);
        assert_int_equal(h.padding_len, pad);
        assert_true(h.content_len + h.padding_len <= FCGI_MAX_CONTENT);
    }
}

/* Walk records of one stream type in `in`, checking the invariants of records we write, and
 * concatenate their content into *content. Returns the number of records (terminator included). */
static size_t walk_stream(const char *in, size_t len, int type, uint16_t id, buf_t *content,
                          bool *terminated) {
    size_t n = 0, pos = 0;
    *terminated = false;
    while (pos < len) {
        assert_true(len - pos >= 8);
        fcgi_header_t h;
        fcgi_header_decode(in + pos, &h);
        assert_int_equal(h.version, 1);
        assert_int_equal(h.type, type);
        assert_int_equal(h.request_id, id);
        assert_false(*terminated);
        assert_true(h.content_len <= FCGI_RECORD_DATA_MAX);
        assert_int_equal((h.content_len + h.padding_len) % 8, 0);
        assert_true(len - pos >= 8u + h.content_len + h.padding_len);
        buf_append(content, in + pos + 8, h.content_len);
        for (size_t k = 0; k < h.padding_len; k++) assert_int_equal(in[pos + 8 + h.content_len + k], 0);
        if (h.content_len == 0) *terminated = true;
        pos += 8u + h.content_len + h.padding_len;
        n++;
    }
    assert_int_equal(pos, len);
    return n;
}

/* fcgi_append_stream and the zero-copy header API produce the same bytes. */
static void test_stdin_zero_copy(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 7, 8, 9, 100, 65527, 65528, 65529, 65535, 65536, 131056, 200001};
    char *data = xmalloc(200001);
    for (size_t i = 0; i < 200001; i++) data[i] = (char)(i * 31 + 7);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t len = sizes[s];
        buf_t a, z, content;
        buf_init(&a);
        buf_init(&z);
        buf_init(&content);
        fcgi_append_stdin(&a, 5, data, len);
        fcgi_append_stdin_end(&a, 5);
        /* what a writev caller sends: header, the data in place, padding */
        size_t records = 0;
        for (size_t off = 0; off < len;) {
            size_t n = len - off < FCGI_RECORD_DATA_MAX ? len - off : FCGI_RECORD_DATA_MAX;
            char hdr[8];
            size_t pad = fcgi_stdin_header(hdr, 5, n);
            buf_append(&z, hdr, 8);
            buf_append(&z, data + off, n);
            buf_append(&z, fcgi_zero_padding, pad);
            off += n;
            records++;
        }
        char end[8];
        fcgi_stdin_end_write(end, 5);
        buf_append(&z, end, 8);
        assert_int_equal(a.len, z.len);
        assert_memory_equal(a.data, z.data, a.len);
        assert_int_equal(records, fcgi_stream_records(len));
        assert_int_equal(a.len, fcgi_stream_encoded_len(len) + 8);
        bool term;
        assert_int_equal(walk_stream(a.data, a.len, FCGI_STDIN, 5, &content, &term), records + 1);
        assert_true(term);
        assert_int_equal(content.len, len);
        assert_memory_equal(content.data, data, len);
        buf_dispose(&a);
        buf_dispose(&z);
        buf_dispose(&content);
    }
    assert_int_equal(fcgi_stream_records(0), 0);
    assert_int_equal(fcgi_stream_encoded_len(0), 0);
    buf_t b;
    buf_init(&b);
    fcgi_append_stdin(&b, 1, NULL, 0);
    assert_int_equal(b.len, 0);
    buf_dispose(&b);
    free(data);
}

/* ---- Name-value pairs ---- */

static void test_nv_lengths(void **state) {
    (void)state;
    static const size_t lens[] = {0, 1, 127, 128, 65535, 1 << 20};
    char *big = xmalloc((1 << 20) + 1);
    for (size_t i = 0; i < (1 << 20) + 1; i++) big[i] = (char)('a' + i % 26);
    char *out = xmalloc(2 * (1 << 20) + 16);
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 6; j++) {
            size_t nl = lens[i], vl = lens[j];
            size_t n = fcgi_nv_write(out, big, nl, big + 1, vl);
            assert_int_equal(n, fcgi_nv_len(nl, vl));
            size_t lb = (nl < 128 ? 1 : 4);
            assert_int_equal(n, lb + (vl < 128 ? 1 : 4) + nl + vl);
            if (nl >= 128) assert_true((unsigned char)out[0] & 0x80);
            if (nl < 128) assert_int_equal((unsigned char)out[0], nl);
            if (vl >= 128) assert_true((unsigned char)out[lb] & 0x80);
            str_t rest = str_make(out, n);
            fcgi_nv_t nv;
            assert_int_equal(fcgi_nv_next(&rest, &nv), 1);
            assert_int_equal(nv.name.len, nl);
            assert_int_equal(nv.value.len, vl);
            assert_memory_equal(nv.name.p, big, nl);
            assert_memory_equal(nv.value.p, big + 1, vl);
            assert_int_equal(rest.len, 0);
            assert_int_equal(fcgi_nv_next(&rest, &nv), 0);
            /* every truncation is refused and leaves rest unchanged */
            for (size_t cut = n > 300 ? n - 3 : 1; cut < n; cut++) {
                str_t t = str_make(out, cut);
                assert_int_equal(fcgi_nv_next(&t, &nv), FCGI_EPAIR);
                assert_ptr_equal(t.p, out);
                assert_int_equal(t.len, cut);
            }
        }
    assert_int_equal(fcgi_nv_write(out, big, (size_t)FCGI_NV_LEN_MAX + 1, big, 0), 0);
    assert_int_equal(fcgi_nv_write(out, big, 0, big, (size_t)FCGI_NV_LEN_MAX + 1), 0);
    free(out);
    free(big);
}

static void test_nv_decode_table(void **state) {
    (void)state;
    static const struct {
        int line;
        const char *in;
        size_t len;
        int rc;
        const char *name, *value;
    } cases[] = {
#define NV(in, rc, n, v) {__LINE__, in, sizeof(in) - 1, rc, n, v}
        NV("\x00\x00", 1, "", ""),
        NV("\x01\x02" "abc", 1, "a", "bc"),
        NV("\x80\x00\x00\x01\x01" "ab", 1, "a", "b"),   /* 4-byte form of a small length */
        NV("\x01\x80\x00\x00\x02" "abc", 1, "a", "bc"),
        NV("\x01\x02" "ab", FCGI_EPAIR, NULL, NULL),
        NV("\x01", FCGI_EPAIR, NULL, NULL),
        NV("\x80\x00\x00", FCGI_EPAIR, NULL, NULL),
        NV("\x01\x80\x00", FCGI_EPAIR, NULL, NULL),
        NV("\xff\xff\xff\xff\xff\xff\xff\xff", FCGI_EPAIR, NULL, NULL),
        NV("\x7f\x7f", FCGI_EPAIR, NULL, NULL),
#undef NV
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        str_t rest = str_make(cases[i].in, cases[i].len);
        fcgi_nv_t nv;
        int rc = fcgi_nv_next(&rest, &nv);
        if (rc != cases[i].rc) fail_msg("line %d: rc %d", cases[i].line, rc);
        if (rc != 1) continue;
        assert_true(str_eq(nv.name, cases[i].name, strlen(cases[i].name)));
        assert_true(str_eq(nv.value, cases[i].value, strlen(cases[i].value)));
    }
}

/* ---- PARAMS builder ---- */

typedef struct pair {
    size_t name_len, value_len;
} pair_t;

/* Build PARAMS for the given pair sizes and check: records are well formed, pairs that fit in a
 * record never straddle two (php decodes each record on its own), the stream decodes back. */
static void check_params(int line, const pair_t *pairs, size_t n, size_t expect_split) {
    size_t maxlen = 0;
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].name_len > maxlen) maxlen = pairs[i].name_len;
        if (pairs[i].value_len > maxlen) maxlen = pairs[i].value_len;
    }
    char *src = xmalloc(maxlen + 2);
    for (size_t i = 0; i < maxlen + 2; i++) src[i] = (char)(i * 7 + 3);
    buf_t out, content;
    buf_init(&out);
    buf_init(&content);
    buf_append(&out, "PREFIX", 6); /* the builder appends after existing bytes */
    fcgi_params_t p;
    fcgi_params_init(&p, &out, 0x0203);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fcgi_params_add(&p, src, pairs[i].name_len, src + 1, pairs[i].value_len), 0);
    fcgi_params_end(&p);
    if (p.split_pairs != expect_split) fail_msg("line %d: split_pairs %zu", line, p.split_pairs);
    assert_memory_equal(out.data, "PREFIX", 6);
    bool term;
    walk_stream(out.data + 6, out.len - 6, FCGI_PARAMS, 0x0203, &content, &term);
    assert_true(term);
    /* per record: whole pairs only, unless a pair is larger than a record */
    if (expect_split == 0) {
        size_t pos = 6, seen = 0;
        while (pos < out.len) {
            fcgi_header_t h;
            fcgi_header_decode(out.data + pos, &h);
            str_t rest = str_make(out.data + pos + 8, h.content_len);
            fcgi_nv_t nv;
            int rc;
            while ((rc = fcgi_nv_next(&rest, &nv)) > 0) seen++;
            if (rc < 0) fail_msg("line %d: a pair straddles records", line);
            pos += 8u + h.content_len + h.padding_len;
        }
        assert_int_equal(seen, n);
    }
    str_t rest = str_make(content.data, content.len);
    fcgi_nv_t nv;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fcgi_nv_next(&rest, &nv), 1);
        assert_int_equal(nv.name.len, pairs[i].name_len);
        assert_int_equal(nv.value.len, pairs[i].value_len);
        assert_memory_equal(nv.name.p, src, pairs[i].name_len);
        assert_memory_equal(nv.value.p, src + 1, pairs[i].value_len);
    }
    assert_int_equal(fcgi_nv_next(&rest, &nv), 0);
    buf_dispose(&out);
    buf_dispose(&content);
    free(src);
}

static void test_params_builder(void **state) {
    (void)state;
    static const pair_t small[] = {{15, 20}, {0, 0}, {127, 127}, {128, 128}, {11, 0}};
    check_params(__LINE__, small, 5, 0);
    check_params(__LINE__, small, 0, 0);
    /* many pairs crossing several record boundaries */
    pair_t many[3000];
    for (size_t i = 0; i < 3000; i++) many[i] = (pair_t){5 + i % 40, i % 200};
    check_params(__LINE__, many, 3000, 0);
    /* a pair that exactly fills a record, then more */
    static const pair_t exact[] = {{10, 65528 - 10 - 1 - 4}, {1, 1}, {65528 - 8 - 128, 128}};
    check_params(__LINE__, exact, 3, 0);
    /* too long for any record: split, and counted */
    static const pair_t huge[] = {{9, 9}, {14, 1 << 20}, {65535, 65535}, {3, 3}};
    check_params(__LINE__, huge, 4, 2);
    static const pair_t just_over[] = {{1, 65528 - 5 + 1}};
    check_params(__LINE__, just_over, 1, 1);

    buf_t out;
    buf_init(&out);
    fcgi_params_t p;
    fcgi_params_init(&p, &out, 1);
    assert_int_equal(fcgi_params_add(&p, NULL, (size_t)FCGI_NV_LEN_MAX + 1, NULL, 0), FCGI_ETOO_LARGE);
    assert_int_equal(fcgi_params_add(&p, "A", 1, NULL, (size_t)FCGI_NV_LEN_MAX + 1), FCGI_ETOO_LARGE);
    assert_int_equal(out.len, 0);
    assert_int_equal(FCGI_PARAMS_ADD_LIT(&p, "SCRIPT_NAME", "/x.php", 6), 0);
    fcgi_params_end(&p);
    static const char want[] = "\x01\x04\x00\x01\x00\x13\x05\x00" "\x0b\x06" "SCRIPT_NAME/x.php"
                               "\0\0\0\0\0" "\x01\x04\x00\x01\x00\x00\x00\x00";
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, sizeof(want) - 1);
    buf_dispose(&out);
}

static void test_get_values(void **state) {
    (void)state;
    buf_t b;
    buf_init(&b);
    const str_t names[] = {STR_LIT(FCGI_MAX_CONNS), STR_LIT(FCGI_MAX_REQS), STR_LIT(FCGI_MPXS_CONNS)};
    assert_int_equal(fcgi_append_get_values(&b, names, 3), 0);
    static const char want[] = "\x01\x09\x00\x00\x00\x30\x00\x00"
                               "\x0e\x00" "FCGI_MAX_CONNS" "\x0d\x00" "FCGI_MAX_REQS"
                               "\x0f\x00" "FCGI_MPXS_CONNS";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    /* too many names for one record */
    str_t *lots = xmalloc(70000 * sizeof(str_t));
    for (size_t i = 0; i < 70000; i++) lots[i] = STR_LIT("X");
    b.len = 0;
    assert_int_equal(fcgi_append_get_values(&b, lots, 70000), FCGI_ETOO_LARGE);
    assert_int_equal(b.len, 0);
    assert_int_equal(fcgi_append_get_values(&b, lots, 0), 0);
    assert_memory_equal(b.data, "\x01\x09\x00\x00\x00\x00\x00\x00", 8);
    free(lots);
    buf_dispose(&b);
}

/* ---- Round trips ---- */

/* Encode a response the way an application does, decode it every way. */
static void test_roundtrip_response(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 65528, 65535, 200000};
    char *data = xmalloc(200000);
    for (size_t i = 0; i < 200000; i++) data[i] = (char)(i % 251);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t len = sizes[s];
        buf_t in;
        buf_init(&in);
        fcgi_append_stream(&in, FCGI_STDOUT, 42, data, len);
        fcgi_append_stream(&in, FCGI_STDERR, 42, "oops\n", 5);
        fcgi_append_stream(&in, FCGI_STDOUT, 42, data, len / 2);
        fcgi_append_stream_end(&in, FCGI_STDOUT, 42);
        fcgi_end_request_write(buf_reserve(&in, 16), 42, 3, FCGI_REQUEST_COMPLETE);
        in.len += 16;
        buf_t want;
        buf_init(&want);
        if (len) buf_printf(&want, "O:");
        buf_append(&want, data, len);
        buf_printf(&want, "%sE:oops\n", len ? "|" : "");
        if (len / 2) buf_printf(&want, "|O:");
        buf_append(&want, data, len / 2);
        buf_printf(&want, "|END:3,0");

        run_t r;
        if (len <= 200) {
            decode_all_ways(__LINE__, in.data, in.len, 42, &r);
        } else {
            decode_split(in.data, in.len, 42, NULL, 0, &r);
            /* byte by byte, and a few odd piece sizes */
            static const size_t steps[] = {1, 3, 7, 8, 9, 4096, 65536};
            for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
                fcgi_decoder_t d;
                fcgi_decoder_init(&d, 42);
                run_t rs;
                run_init(&rs);
                for (size_t off = 0; off < in.len; off += steps[k])
                    feed(&d, &rs, in.data + off, in.len - off < steps[k] ? in.len - off : steps[k]);
                expect_same(__LINE__, &r, &rs, "steps");
                buf_dispose(&rs.out);
            }
        }
        assert_int_equal(r.err, 0);
        assert_int_equal(r.out.len, want.len);
        assert_memory_equal(r.out.data, want.data, want.len);
        buf_dispose(&r.out);
        buf_dispose(&want);
        buf_dispose(&in);
    }
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_records),
        cmocka_unit_test(test_record_header_padding),
        cmocka_unit_test(test_stdin_zero_copy),
        cmocka_unit_test(test_nv_lengths),
        cmocka_unit_test(test_nv_decode_table),
        cmocka_unit_test(test_params_builder),
        cmocka_unit_test(test_get_values),
        cmocka_unit_test(test_decoder_table),
        cmocka_unit_test(test_decoder_values_too_large),
        cmocka_unit_test(test_decoder_extra_after_end),
        cmocka_unit_test(test_decoder_error_position),
        cmocka_unit_test(test_decoder_values_storage),
        cmocka_unit_test(test_roundtrip_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
