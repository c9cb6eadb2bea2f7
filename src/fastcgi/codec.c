/* FastCGI record codec; see codec.h for the protocol notes and the decoder's contract. */
#include "fastcgi/codec.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

const char fcgi_zero_padding[8] = {0};

const char *fcgi_strerror(int err) {
    switch (err) {
    case FCGI_EVERSION: return "unsupported FastCGI version";
    case FCGI_ETYPE: return "record type not allowed from an application";
    case FCGI_EREQUEST_ID: return "unexpected request id";
    case FCGI_ELENGTH: return "wrong content length for the record type";
    case FCGI_ETOO_LARGE: return "record too large";
    case FCGI_EPAIR: return "malformed name-value pair";
    case FCGI_ETRAILING: return "data after END_REQUEST";
    default: return "unknown error";
    }
}

/* ---- Header ---- */

void fcgi_header_decode(const char *p, fcgi_header_t *h) {
    const uint8_t *u = (const uint8_t *)p;
    h->version = u[0];
    h->type = u[1];
    h->request_id = (uint16_t)(u[2] << 8 | u[3]);
    h->content_len = (uint16_t)(u[4] << 8 | u[5]);
    h->padding_len = u[6];
}

void fcgi_header_write(char *out, uint8_t type, uint16_t request_id, uint16_t content_len,
                       uint8_t padding_len) {
    uint8_t *u = (uint8_t *)out;
    u[0] = FCGI_VERSION_1;
    u[1] = type;
    u[2] = (uint8_t)(request_id >> 8);
    u[3] = (uint8_t)request_id;
    u[4] = (uint8_t)(content_len >> 8);
    u[5] = (uint8_t)content_len;
    u[6] = padding_len;
    u[7] = 0;
}

size_t fcgi_record_header(char *out, fcgi_type_t type, uint16_t request_id, size_t content_len) {
    assert(content_len <= FCGI_MAX_CONTENT);
    size_t pad = fcgi_padding_for(content_len);
    /* php refuses content + padding > 0xffff; such a record goes out unpadded. */
    if (content_len + pad > FCGI_MAX_CONTENT) pad = 0;
    fcgi_header_write(out, (uint8_t)type, request_id, (uint16_t)content_len, (uint8_t)pad);
    return pad;
}

/* ---- Fixed records ---- */

void fcgi_begin_request_write(char *out, uint16_t request_id, uint16_t role, uint8_t flags) {
    fcgi_header_write(out, FCGI_BEGIN_REQUEST, request_id, 8, 0);
    uint8_t *body = (uint8_t *)out + FCGI_HEADER_LEN;
    memset(body, 0, 8);
    body[0] = (uint8_t)(role >> 8);
    body[1] = (uint8_t)role;
    body[2] = flags;
}

void fcgi_abort_request_write(char *out, uint16_t request_id) {
    fcgi_header_write(out, FCGI_ABORT_REQUEST, request_id, 0, 0);
}

void fcgi_end_request_write(char *out, uint16_t request_id, uint32_t app_status,
                            uint8_t protocol_status) {
    fcgi_header_write(out, FCGI_END_REQUEST, request_id, 8, 0);
    uint8_t *body = (uint8_t *)out + FCGI_HEADER_LEN;
    memset(body, 0, 8);
    body[0] = (uint8_t)(app_status >> 24);
    body[1] = (uint8_t)(app_status >> 16);
    body[2] = (uint8_t)(app_status >> 8);
    body[3] = (uint8_t)app_status;
    body[4] = protocol_status;
}

/* ---- Streams ---- */

size_t fcgi_stdin_header(char *out, uint16_t request_id, size_t len) {
    assert(len >= 1 && len <= FCGI_RECORD_DATA_MAX);
    return fcgi_record_header(out, FCGI_STDIN, request_id, len);
}

void fcgi_stdin_end_write(char *out, uint16_t request_id) {
    fcgi_header_write(out, FCGI_STDIN, request_id, 0, 0);
}

size_t fcgi_stream_records(size_t len) {
    return len / FCGI_RECORD_DATA_MAX + (len % FCGI_RECORD_DATA_MAX != 0);
}

size_t fcgi_stream_encoded_len(size_t len) {
    size_t full = len / FCGI_RECORD_DATA_MAX, rest = len % FCGI_RECORD_DATA_MAX;
    size_t n = full * (FCGI_HEADER_LEN + FCGI_RECORD_DATA_MAX);
    if (rest) n += FCGI_HEADER_LEN + rest + fcgi_padding_for(rest);
    return n;
}

void fcgi_append_begin_request(buf_t *b, uint16_t request_id, uint16_t role, uint8_t flags) {
    fcgi_begin_request_write(buf_reserve(b, FCGI_BEGIN_REQUEST_LEN), request_id, role, flags);
    b->len += FCGI_BEGIN_REQUEST_LEN;
}

void fcgi_append_abort_request(buf_t *b, uint16_t request_id) {
    fcgi_abort_request_write(buf_reserve(b, FCGI_ABORT_REQUEST_LEN), request_id);
    b->len += FCGI_ABORT_REQUEST_LEN;
}

void fcgi_append_stream(buf_t *b, fcgi_type_t type, uint16_t request_id, const char *data,
                        size_t len) {
    if (len == 0) return;
    char *w = buf_reserve(b, fcgi_stream_encoded_len(len));
    while (len > 0) {
        size_t n = len < FCGI_RECORD_DATA_MAX ? len : FCGI_RECORD_DATA_MAX;
        size_t pad = fcgi_record_header(w, type, request_id, n);
        memcpy(w + FCGI_HEADER_LEN, data, n);
        memset(w + FCGI_HEADER_LEN + n, 0, pad);
        w += FCGI_HEADER_LEN + n + pad;
        data += n;
        len -= n;
    }
    b->len = (size_t)(w - b->data);
}

void fcgi_append_stream_end(buf_t *b, fcgi_type_t type, uint16_t request_id) {
    fcgi_header_write(buf_reserve(b, FCGI_HEADER_LEN), (uint8_t)type, request_id, 0, 0);
    b->len += FCGI_HEADER_LEN;
}

int fcgi_append_get_values(buf_t *b, const str_t *names, size_t count) {
    size_t clen = 0;
    for (size_t i = 0; i < count; i++) {
        if (names[i].len > FCGI_NV_LEN_MAX) return FCGI_ETOO_LARGE;
        clen += fcgi_nv_len(names[i].len, 0);
        if (clen > FCGI_RECORD_DATA_MAX) return FCGI_ETOO_LARGE;
    }
    char *w = buf_reserve(b, FCGI_HEADER_LEN + clen + 7);
    size_t pad = fcgi_record_header(w, FCGI_GET_VALUES, FCGI_NULL_REQUEST_ID, clen);
    char *p = w + FCGI_HEADER_LEN;
    for (size_t i = 0; i < count; i++) p += fcgi_nv_write(p, names[i].p, names[i].len, NULL, 0);
    memset(p, 0, pad);
    b->len += FCGI_HEADER_LEN + clen + pad;
    return 0;
}

/* ---- Name-value pairs ---- */

static uint8_t *nv_put_len(uint8_t *w, size_t len) {
    if (len < 128) {
        *w++ = (uint8_t)len;
        return w;
    }
    w[0] = (uint8_t)(len >> 24) | 0x80;
    w[1] = (uint8_t)(len >> 16);
    w[2] = (uint8_t)(len >> 8);
    w[3] = (uint8_t)len;
    return w + 4;
}

/* Encode the two lengths of a pair into out (2..8 bytes); returns the count. */
static size_t nv_put_lens(char *out, size_t name_len, size_t value_len) {
    uint8_t *w = nv_put_len((uint8_t *)out, name_len);
    w = nv_put_len(w, value_len);
    return (size_t)(w - (uint8_t *)out);
}

size_t fcgi_nv_write(char *out, const char *name, size_t name_len, const char *value,
                     size_t value_len) {
    if (name_len > FCGI_NV_LEN_MAX || value_len > FCGI_NV_LEN_MAX) return 0;
    size_t n = nv_put_lens(out, name_len, value_len);
    if (name_len) memcpy(out + n, name, name_len);
    if (value_len) memcpy(out + n + name_len, value, value_len);
    return n + name_len + value_len;
}

/* Read one length at p[*pos]; false when the input ends inside it. */
static bool nv_get_len(const uint8_t *p, size_t avail, size_t *pos, size_t *out) {
    if (*pos >= avail) return false;
    const uint8_t *q = p + *pos;
    if (q[0] < 128) {
        *out = q[0];
        *pos += 1;
        return true;
    }
    if (avail - *pos < 4) return false;
    *out = (size_t)(q[0] & 0x7f) << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3];
    *pos += 4;
    return true;
}

int fcgi_nv_next(str_t *rest, fcgi_nv_t *nv) {
    size_t avail = rest->len, pos = 0, name_len, value_len;
    if (avail == 0) return 0;
    const uint8_t *p = (const uint8_t *)rest->p;
    if (!nv_get_len(p, avail, &pos, &name_len) || !nv_get_len(p, avail, &pos, &value_len))
        return FCGI_EPAIR;
    if (name_len > avail - pos || value_len > avail - pos - name_len) return FCGI_EPAIR;
    nv->name = str_make(rest->p + pos, name_len);
    nv->value = str_make(rest->p + pos + name_len, value_len);
    pos += name_len + value_len;
    rest->p += pos;
    rest->len -= pos;
    return 1;
}

/* ---- PARAMS builder ---- */

void fcgi_params_init(fcgi_params_t *p, buf_t *out, uint16_t request_id) {
    p->out = out;
    p->request_id = request_id;
    p->rec_start = SIZE_MAX;
    p->split_pairs = 0;
}

/* Content bytes the open record can still take (0 when none is open). */
static size_t params_space(const fcgi_params_t *p) {
    if (p->rec_start == SIZE_MAX) return 0;
    return FCGI_RECORD_DATA_MAX - (p->out->len - p->rec_start - FCGI_HEADER_LEN);
}

static void params_open(fcgi_params_t *p) {
    buf_reserve(p->out, FCGI_HEADER_LEN);
    p->rec_start = p->out->len;
    p->out->len += FCGI_HEADER_LEN; /* the header is written when the record is closed */
}

static void params_close(fcgi_params_t *p) {
    if (p->rec_start == SIZE_MAX) return;
    size_t clen = p->out->len - p->rec_start - FCGI_HEADER_LEN;
    size_t pad = fcgi_record_header(p->out->data + p->rec_start, FCGI_PARAMS, p->request_id, clen);
    buf_append(p->out, fcgi_zero_padding, pad);
    p->rec_start = SIZE_MAX;
}

/* Append stream bytes, opening a new record whenever the open one is full. */
static void params_write(fcgi_params_t *p, const char *data, size_t n) {
    while (n > 0) {
        size_t space = params_space(p);
        if (space == 0) {
            params_close(p);
            params_open(p);
            space = FCGI_RECORD_DATA_MAX;
        }
        size_t k = n < space ? n : space;
        buf_append(p->out, data, k);
        data += k;
        n -= k;
    }
}

int fcgi_params_add(fcgi_params_t *p, const char *name, size_t name_len, const char *value,
                    size_t value_len) {
    if (name_len > FCGI_NV_LEN_MAX || value_len > FCGI_NV_LEN_MAX) return FCGI_ETOO_LARGE;
    size_t total = fcgi_nv_len(name_len, value_len);
    if (total > params_space(p)) {
        /* Keep the pair whole in a fresh record when it fits in one (see codec.h). */
        params_close(p);
        if (total <= FCGI_RECORD_DATA_MAX)
            params_open(p);
        else
            p->split_pairs++;
    }
    buf_reserve(p->out, total + (total / FCGI_RECORD_DATA_MAX + 1) * 16);
    char lens[8];
    params_write(p, lens, nv_put_lens(lens, name_len, value_len));
    params_write(p, name, name_len);
    params_write(p, value, value_len);
    return 0;
}

void fcgi_params_end(fcgi_params_t *p) {
    params_close(p);
    fcgi_append_stream_end(p->out, FCGI_PARAMS, p->request_id);
}

/* ---- Decoder ---- */

enum {
    S_HEADER = 0, /* collecting a header (hdr_have bytes in hdr[]) */
    S_STREAM,     /* inside STDOUT/STDERR content: `remaining` bytes to hand out */
    S_BODY,       /* collecting a small content into body[] */
    S_PADDING,    /* skipping `padding` bytes, then reporting `pending` if set */
    S_DONE,       /* END_REQUEST reported */
    S_ERROR,      /* `error` is sticky */
};

void fcgi_decoder_init(fcgi_decoder_t *d, uint16_t request_id) {
    d->offset = 0;
    d->request_id = request_id;
    d->state = S_HEADER;
    d->type = 0;
    d->padding = 0;
    d->hdr_have = 0;
    d->pending = FCGI_EV_NEED_MORE;
    d->error = 0;
    d->remaining = 0;
    d->body_have = 0;
}

/* Validate a complete header and set up the state for its content. */
static int begin_record(fcgi_decoder_t *d, const char *raw) {
    fcgi_header_t h;
    fcgi_header_decode(raw, &h);
    if (h.version != FCGI_VERSION_1) return FCGI_EVERSION;
    bool app_record = true;
    switch (h.type) {
    case FCGI_STDOUT:
    case FCGI_STDERR: d->pending = FCGI_EV_NEED_MORE; break;
    case FCGI_END_REQUEST: d->pending = FCGI_EV_END_REQUEST; break;
    case FCGI_GET_VALUES_RESULT:
        d->pending = FCGI_EV_GET_VALUES_RESULT;
        app_record = false;
        break;
    case FCGI_UNKNOWN_TYPE:
        d->pending = FCGI_EV_UNKNOWN_TYPE;
        app_record = false;
        break;
    default: return FCGI_ETYPE;
    }
    if (app_record ? (d->request_id == 0 || h.request_id != d->request_id) : h.request_id != 0)
        return FCGI_EREQUEST_ID;
    if ((h.type == FCGI_END_REQUEST || h.type == FCGI_UNKNOWN_TYPE) && h.content_len != 8)
        return FCGI_ELENGTH;
    if (h.type == FCGI_GET_VALUES_RESULT && h.content_len > FCGI_DECODER_BODY_MAX)
        return FCGI_ETOO_LARGE;
    d->type = h.type;
    d->remaining = h.content_len;
    d->padding = h.padding_len;
    d->body_have = 0;
    if (d->pending == FCGI_EV_NEED_MORE)
        d->state = h.content_len ? S_STREAM : S_PADDING;
    else
        d->state = S_BODY;
    return 0;
}

/* Report the pending event of a record whose content (body[0..len)) and padding are complete. */
static int emit_body(fcgi_decoder_t *d, const char *body, size_t len, fcgi_event_t *ev) {
    const uint8_t *u = (const uint8_t *)body;
    int kind = d->pending;
    *ev = (fcgi_event_t){0};
    d->pending = FCGI_EV_NEED_MORE;
    d->state = S_HEADER;
    switch (kind) {
    case FCGI_EV_END_REQUEST:
        ev->app_status = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
        ev->protocol_status = u[4];
        d->state = S_DONE;
        break;
    case FCGI_EV_UNKNOWN_TYPE: ev->unknown_type = u[0]; break;
    case FCGI_EV_GET_VALUES_RESULT: {
        ev->data = str_make(body, len);
        str_t rest = ev->data;
        fcgi_nv_t nv;
        int rc;
        while ((rc = fcgi_nv_next(&rest, &nv)) > 0) {}
        if (rc < 0) return rc;
        break;
    }
    default: assert(0 && "no pending event");
    }
    ev->kind = (fcgi_event_kind_t)kind;
    return kind;
}

int fcgi_decoder_next(fcgi_decoder_t *d, const char *buf, size_t len, size_t *consumed,
                      fcgi_event_t *ev) {
    *consumed = 0;
    if (d->state == S_ERROR) return d->error;
    if (len == 0) return FCGI_EV_NEED_MORE; /* every event is reported with its last byte */
    const char *p = buf, *end = buf + len;
    int rc;
    for (;;) {
        size_t avail = (size_t)(end - p), n;
        switch (d->state) {
        case S_HEADER: {
            const char *raw = p;
            if (d->hdr_have == 0 && avail >= FCGI_HEADER_LEN) {
                p += FCGI_HEADER_LEN; /* fast path: the whole header is in this piece */
            } else {
                n = FCGI_HEADER_LEN - d->hdr_have;
                if (n > avail) n = avail;
                if (n) memcpy(d->hdr + d->hdr_have, p, n);
                p += n;
                d->hdr_have = (uint8_t)(d->hdr_have + n);
                if (d->hdr_have < FCGI_HEADER_LEN) goto need_more;
                d->hdr_have = 0;
                raw = d->hdr;
            }
            if ((rc = begin_record(d, raw)) < 0) goto fail;
            if (d->state == S_BODY && (size_t)(end - p) >= d->remaining + d->padding) {
                /* Whole content and padding here: report without copying. */
                const char *body = p;
                p += d->remaining + d->padding;
                if ((rc = emit_body(d, body, d->remaining, ev)) < 0) goto fail;
                goto out;
            }
            break;
        }
        case S_STREAM:
            if (avail == 0) goto need_more;
            n = avail < d->remaining ? avail : d->remaining;
            ev->data = str_make(p, n);
            ev->kind = d->type == FCGI_STDOUT ? FCGI_EV_STDOUT : FCGI_EV_STDERR;
            p += n;
            d->remaining -= (uint32_t)n;
            if (d->remaining == 0) d->state = S_PADDING;
            rc = ev->kind;
            goto out;
        case S_BODY:
            n = avail < d->remaining ? avail : d->remaining;
            if (n) memcpy(d->body + d->body_have, p, n);
            p += n;
            d->body_have += (uint32_t)n;
            d->remaining -= (uint32_t)n;
            if (d->remaining) goto need_more;
            d->state = S_PADDING;
            break;
        case S_PADDING:
            n = avail < d->padding ? avail : d->padding;
            p += n;
            d->padding = (uint8_t)(d->padding - n);
            if (d->padding) goto need_more;
            if (d->pending != FCGI_EV_NEED_MORE) {
                if ((rc = emit_body(d, d->body, d->body_have, ev)) < 0) goto fail;
                goto out;
            }
            d->state = S_HEADER;
            break;
        case S_DONE:
            if (avail == 0) goto need_more;
            rc = FCGI_ETRAILING;
            goto fail;
        default: assert(0 && "bad decoder state"); return FCGI_ETYPE;
        }
    }
need_more:
    rc = FCGI_EV_NEED_MORE;
out:
    *consumed = (size_t)(p - buf);
    d->offset += *consumed;
    return rc;
fail:
    d->state = S_ERROR;
    d->error = rc;
    *consumed = (size_t)(p - buf);
    d->offset += *consumed;
    return rc;
}
