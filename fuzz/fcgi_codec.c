/* libFuzzer target for src/fastcgi/codec.c.
 *
 * Input: byte 0 picks the expected request id, bytes 1..4 the piece sizes of a split feed, the rest
 * is the application -> server byte stream. The stream is decoded in one piece, in the pieces the
 * header bytes describe, and byte by byte; the three transcripts (events, with adjacent spans of a
 * stream merged) must be identical, or the target aborts. The same bytes are then read as
 * name-value pairs, re-encoded through the PARAMS builder and decoded back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastcgi/codec.h"
#include "util/buf.h"
#include "fuzz_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct transcript {
    buf_t out;
    int last;
    int err;
    uint64_t offset;
} transcript_t;

static void record(transcript_t *t, int rc, const fcgi_event_t *ev) {
    char tag[64];
    if (rc == FCGI_EV_STDOUT || rc == FCGI_EV_STDERR) {
        if (t->last != rc) {
            tag[0] = (char)0xff;
            tag[1] = (char)rc;
            buf_append(&t->out, tag, 2);
        }
        buf_append(&t->out, ev->data.p, ev->data.len);
    } else if (rc > 0) {
        int n = snprintf(tag, sizeof(tag), "\xff%d:%u:%u:%u:%zu", rc,
                         rc == FCGI_EV_END_REQUEST ? ev->app_status : 0,
                         rc == FCGI_EV_END_REQUEST ? ev->protocol_status : 0,
                         rc == FCGI_EV_UNKNOWN_TYPE ? ev->unknown_type : 0,
                         rc == FCGI_EV_GET_VALUES_RESULT ? ev->data.len : 0);
        if (rc != FCGI_EV_END_REQUEST) CHECK(ev->app_status == 0 && ev->protocol_status == 0);
        buf_append(&t->out, tag, (size_t)n);
        if (rc == FCGI_EV_GET_VALUES_RESULT) {
            buf_append(&t->out, ev->data.p, ev->data.len);
            str_t rest = ev->data;
            fcgi_nv_t nv;
            int r;
            while ((r = fcgi_nv_next(&rest, &nv)) > 0) {}
            CHECK(r == 0); /* the decoder validated the pairs */
        }
    }
    if (rc != FCGI_EV_NEED_MORE) t->last = rc;
}

static void feed(fcgi_decoder_t *d, transcript_t *t, const char *piece, size_t len) {
    while (!t->err) {
        fcgi_event_t ev;
        size_t used = (size_t)-1;
        int rc = fcgi_decoder_next(d, piece, len, &used, &ev);
        CHECK(used <= len);
        if (rc == FCGI_EV_STDOUT || rc == FCGI_EV_STDERR) {
            CHECK(ev.data.len > 0);
            CHECK(ev.data.p >= piece && ev.data.p + ev.data.len <= piece + used);
        }
        if (rc > 0) CHECK((int)ev.kind == rc);
        record(t, rc, &ev);
        piece += used;
        len -= used;
        if (rc == FCGI_EV_NEED_MORE) {
            CHECK(len == 0);
            return;
        }
        if (rc < 0) {
            CHECK(rc >= FCGI_ETRAILING);
            t->err = rc;
            /* sticky */
            CHECK(fcgi_decoder_next(d, piece, len, &used, &ev) == rc && used == 0);
        }
    }
}

/* sizes == NULL: one piece; else cycle through the 4 piece sizes (0 means 1 byte). Pieces are heap
 * copies, freed right after, so a decoder that keeps pointers into old pieces is caught by ASan;
 * single bytes go through one reused stack byte instead (cheaper), where a stale pointer would read
 * a later byte and break the transcript. */
static void decode(const char *in, size_t len, uint16_t id, const uint8_t *sizes, transcript_t *t) {
    fcgi_decoder_t d;
    fcgi_decoder_init(&d, id);
    buf_init(&t->out);
    t->last = 0;
    t->err = 0;
    size_t at = 0;
    for (int i = 0; at < len || i == 0; i++) {
        size_t n = sizes ? (size_t)(sizes[i % 4] % 19) + 1 : len - at;
        if (n > len - at) n = len - at;
        if (n == 1) {
            static char one;
            one = in[at];
            feed(&d, t, &one, 1);
            one = (char)0xEE;
        } else {
            char *copy = malloc(n ? n : 1);
            CHECK(copy != NULL);
            if (n) memcpy(copy, in + at, n);
            feed(&d, t, copy, n);
            free(copy);
        }
        at += n;
    }
    t->offset = d.offset;
    CHECK(t->err || d.offset == len);
}

static void same(const transcript_t *a, const transcript_t *b) {
    CHECK(a->err == b->err);
    CHECK(a->out.len == b->out.len);
    CHECK(a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0);
    CHECK(a->offset == b->offset);
}

/* Pairs read from the input go through the PARAMS builder and must come back unchanged. */
static void params_roundtrip(const char *in, size_t len) {
    str_t rest = str_make(in, len);
    fcgi_nv_t pairs[64];
    size_t n = 0;
    int rc;
    while (n < 64 && (rc = fcgi_nv_next(&rest, &pairs[n])) > 0) {
        CHECK(pairs[n].name.p >= in && pairs[n].value.p + pairs[n].value.len <= in + len);
        n++;
    }
    buf_t out, content;
    buf_init(&out);
    buf_init(&content);
    fcgi_params_t p;
    fcgi_params_init(&p, &out, 1);
    for (size_t i = 0; i < n; i++)
        CHECK(fcgi_params_add(&p, pairs[i].name.p, pairs[i].name.len, pairs[i].value.p,
                              pairs[i].value.len) == 0);
    fcgi_params_end(&p);
    for (size_t pos = 0; pos < out.len;) {
        fcgi_header_t h;
        CHECK(out.len - pos >= FCGI_HEADER_LEN);
        fcgi_header_decode(out.data + pos, &h);
        CHECK(h.type == FCGI_PARAMS && h.request_id == 1 && h.content_len <= FCGI_RECORD_DATA_MAX);
        CHECK((h.content_len + h.padding_len) % 8 == 0);
        buf_append(&content, out.data + pos + FCGI_HEADER_LEN, h.content_len);
        pos += FCGI_HEADER_LEN + h.content_len + h.padding_len;
    }
    rest = str_make(content.data, content.len);
    for (size_t i = 0; i < n; i++) {
        fcgi_nv_t nv;
        CHECK(fcgi_nv_next(&rest, &nv) == 1);
        CHECK(nv.name.len == pairs[i].name.len && nv.value.len == pairs[i].value.len);
        CHECK(nv.name.len == 0 || memcmp(nv.name.p, pairs[i].name.p, nv.name.len) == 0);
        CHECK(nv.value.len == 0 || memcmp(nv.value.p, pairs[i].value.p, nv.value.len) == 0);
    }
    CHECK(rest.len == 0);
    buf_dispose(&out);
    buf_dispose(&content);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    static const uint16_t ids[4] = {0, 1, 2, 0x0101};
    uint16_t id = ids[data[0] & 3];
    const uint8_t *sizes = data + 1;
    const char *in = (const char *)data + 5;
    size_t len = size - 5;

    transcript_t one, split, bytes;
    decode(in, len, id, NULL, &one);
    decode(in, len, id, sizes, &split);
    static const uint8_t ones[4] = {0, 0, 0, 0};
    decode(in, len, id, ones, &bytes);
    same(&one, &split);
    same(&one, &bytes);
    buf_dispose(&one.out);
    buf_dispose(&split.out);
    buf_dispose(&bytes.out);

    params_roundtrip(in, len);
    return 0;
}
