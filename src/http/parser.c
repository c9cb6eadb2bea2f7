/* Strict HTTP/1.x request-head parser (RFC 9112 §2-§6, RFC 9110 for field semantics).
 *
 * The parse always starts again from buf[0]: there is no state kept between calls, so a longer
 * prefix of the same bytes can only turn HTTP_PARSE_AGAIN into a result, never change a result.
 * Every check is made at the earliest byte that decides it, scanning strictly left to right, and
 * running out of input is reported through a single value (`more`) that is HTTP_PARSE_AGAIN, or
 * -431 once the head can no longer fit in max_header_bytes. That ordering is what makes the result
 * independent of how the input arrived: the first failing byte position decides, and the same
 * position is reached whatever the prefix, as long as the prefix reaches it.
 *
 * Field semantics (Host, Content-Length, Transfer-Encoding, Connection, Expect) are checked when
 * the field's line is complete; the Host-required rule when the head is complete.
 */
#include "http/parser.h"

#include <limits.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_EMPTY_LINES 4                       /* CRLFs tolerated before the request line */
#define CONTENT_LENGTH_MAX ((int64_t)1 << 62)   /* larger values are -400 */

/* Character classes, one table lookup per byte in the scanning loops. */
enum {
    C_TCHAR = 1,   /* token character (RFC 9110 §5.6.2) */
    C_REGNAME = 2, /* reg-name character: unreserved / sub-delims / '%' (RFC 3986 §3.2.2) */
    C_CTL = 4,     /* 0x00-0x1F and 0x7F: never valid in a field value, except HTAB */
};

static const unsigned char char_class[256] = {
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 00 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 10 */
    0, 3, 0, 1, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 0, /* 20  !"#$%&'()*+,-./ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 2, 0, 2, 0, 0, /* 30 0123456789:;<=>? */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 40 @ABCDEFGHIJKLMNO */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 1, 3, /* 50 PQRSTUVWXYZ[\]^_ */
    1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 60 `abcdefghijklmno */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 1, 0, 3, 4, /* 70 pqrstuvwxyz{|}~  */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 80 obs-text: allowed in values */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* a0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* b0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* c0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* d0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* e0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* f0 */
};

#define IS(c, cls) (char_class[(unsigned char)(c)] & (cls))
#define IS_DIGIT(c) ((unsigned)((unsigned char)(c) - '0') < 10u)
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* The input window: `end` is clipped to max_header_bytes, and `more` is what reaching it means. */
typedef struct cursor {
    const char *p;
    const char *end;
    int more; /* HTTP_PARSE_AGAIN, or -431 when the window is clipped by the head limit */
} cursor_t;

/* What the field lines have told us so far. */
typedef struct head_state {
    bool host_seen;
    bool content_length_seen;
    bool te_seen;
    bool conn_close;
    bool conn_keep_alive;
    bool absolute_form;
    str_t authority; /* from an absolute-form target */
} head_state_t;

static const char *const method_names[] = {
    [HTTP_METHOD_GET] = "GET",         [HTTP_METHOD_HEAD] = "HEAD",
    [HTTP_METHOD_POST] = "POST",       [HTTP_METHOD_PUT] = "PUT",
    [HTTP_METHOD_DELETE] = "DELETE",   [HTTP_METHOD_OPTIONS] = "OPTIONS",
    [HTTP_METHOD_PATCH] = "PATCH",     [HTTP_METHOD_TRACE] = "TRACE",
    [HTTP_METHOD_CONNECT] = "CONNECT",
};

const char *http_method_name(http_method_t m) {
    if ((unsigned)m >= sizeof(method_names) / sizeof(method_names[0])) return NULL;
    return method_names[m];
}

/* Methods are case-sensitive (RFC 9110 §9.1). */
static http_method_t method_id(str_t m) {
    switch (m.len) {
    case 3:
        if (memcmp(m.p, "GET", 3) == 0) return HTTP_METHOD_GET;
        if (memcmp(m.p, "PUT", 3) == 0) return HTTP_METHOD_PUT;
        break;
    case 4:
        if (memcmp(m.p, "POST", 4) == 0) return HTTP_METHOD_POST;
        if (memcmp(m.p, "HEAD", 4) == 0) return HTTP_METHOD_HEAD;
        break;
    case 5:
        if (memcmp(m.p, "PATCH", 5) == 0) return HTTP_METHOD_PATCH;
        if (memcmp(m.p, "TRACE", 5) == 0) return HTTP_METHOD_TRACE;
        break;
    case 6:
        if (memcmp(m.p, "DELETE", 6) == 0) return HTTP_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(m.p, "OPTIONS", 7) == 0) return HTTP_METHOD_OPTIONS;
        if (memcmp(m.p, "CONNECT", 7) == 0) return HTTP_METHOD_CONNECT;
        break;
    }
    return HTTP_METHOD_OTHER;
}

/* First byte in [p, end) that is not VCHAR (0x21-0x7E), or end. Used for the request-target. */
static inline const char *find_non_vchar(const char *p, const char *end) {
#ifdef __SSE2__
    const __m128i lo = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Signed compare: bytes >= 0x80 are negative, so they count as "< 0x21" too. */
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpeq_epi8(v, del));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && (unsigned)((unsigned char)*p - 0x21) < 0x5eu) p++;
    return p;
}

/* First control byte (0x00-0x1F, 0x7F) in [p, end), or end. Used for field values. */
static inline const char *find_ctl(const char *p, const char *end) {
#ifdef __SSE2__
    const __m128i us = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Unsigned v <= 0x1F is min(v, 0x1F) == v. */
        __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, us), v), _mm_cmpeq_epi8(v, del));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && !IS(*p, C_CTL)) p++;
    return p;
}

/* c->p points at CR or LF: step over CRLF or a bare LF. A CR followed by anything else is -400. */
static inline int eat_eol(cursor_t *c) {
    if (*c->p == '\n') {
        c->p++;
        return 0;
    }
    if (c->p + 1 == c->end) return c->more;
    if (c->p[1] != '\n') return -400;
    c->p += 2;
    return 0;
}

static int skip_empty_lines(cursor_t *c) {
    for (int n = 0;; n++) {
        if (c->p == c->end) return c->more;
        if (*c->p != '\r' && *c->p != '\n') return 0;
        if (n == MAX_EMPTY_LINES) return -400;
        int rc = eat_eol(c);
        if (rc != 0) return rc;
    }
}

/* host = IP-literal / IPv4address / reg-name, then [ ":" port ] (RFC 3986 §3.2.2-3.2.3).
 * An empty host is rejected: every http(s) authority has one, and so must our Host field. */
static bool valid_authority(str_t a) {
    const char *p = a.p, *e = a.p + a.len;
    const char *s;
    if (p == e) return false;
    if (*p == '[') {
        /* IPv6address / IPvFuture: checked loosely as a non-empty run of reg-name chars and ':' */
        for (s = ++p; p < e && (IS(*p, C_REGNAME) || *p == ':'); p++) {
        }
        if (p == s || p == e || *p != ']') return false;
        p++;
    } else {
        for (s = p; p < e && IS(*p, C_REGNAME); p++) {
        }
        if (p == s) return false;
    }
    if (p == e) return true;
    if (*p++ != ':' || e - p > 5) return false;
    for (; p < e; p++)
        if (!IS_DIGIT(*p)) return false;
    return true;
}

static void split_query(http_request_t *req, const char *p, size_t n) {
    const char *q = memchr(p, '?', n);
    if (q == NULL) {
        req->path = str_make(p, n);
        return;
    }
    req->path = str_make(p, (size_t)(q - p));
    req->query = str_make(q + 1, n - (size_t)(q - p) - 1);
    req->has_query = true;
}

static bool prefix_ieq(const char *p, size_t n, const char *lower, size_t len) {
    return n >= len && str_ieq(str_make(p, len), lower, len);
}

/* Classify the complete request-target (already known to be 1*VCHAR) and split path and query. */
static int parse_target(http_request_t *req, head_state_t *st) {
    const char *t = req->target.p;
    size_t n = req->target.len, skip;

    if (t[0] == '/') { /* origin-form */
        split_query(req, t, n);
        return 0;
    }
    if (t[0] == '*') { /* asterisk-form: only "*", only for OPTIONS */
        if (n != 1 || req->method_id != HTTP_METHOD_OPTIONS) return -400;
        req->path = req->target;
        return 0;
    }
    /* absolute-form; anything else (authority-form included) is refused. */
    if (prefix_ieq(t, n, "http://", 7))
        skip = 7;
    else if (prefix_ieq(t, n, "https://", 8))
        skip = 8;
    else
        return -400;
    const char *a = t + skip, *e = t + n, *p = a;
    while (p < e && *p != '/' && *p != '?') p++;
    st->authority = str_make(a, (size_t)(p - a));
    st->absolute_form = true;
    if (!valid_authority(st->authority)) return -400;
    split_query(req, p, (size_t)(e - p));
    /* An empty path means "/" (RFC 9110 §4.2.3). To keep every slice inside the caller's buffer,
     * it is then the second '/' of "://". */
    if (req->path.len == 0) req->path = str_make(a - 1, 1);
    return 0;
}

/* method SP request-target SP HTTP-version CRLF (RFC 9112 §3), with single spaces only. */
static int parse_request_line(cursor_t *c, http_request_t *req, head_state_t *st, size_t max_url) {
    const char *p = c->p, *end = c->end;

    const char *m = p;
    while (p < end && IS(*p, C_TCHAR)) p++;
    if (p == end) return c->more;
    if (*p != ' ' || p == m) return -400;
    req->method = str_make(m, (size_t)(p - m));
    req->method_id = method_id(req->method);

    const char *t = ++p, *stop = end;
    bool url_clipped = false;
    if (max_url != 0 && (size_t)(end - t) > max_url) {
        stop = t + max_url + 1; /* max_url + 1 target bytes prove -414 */
        url_clipped = true;
    }
    p = find_non_vchar(t, stop);
    if (p == stop) return url_clipped ? -414 : c->more;
    if (*p != ' ' || p == t) return -400;
    req->target = str_make(t, (size_t)(p - t));
    p++;

    /* "HTTP/" DIGIT "." DIGIT, compared byte by byte so that any prefix of it needs more. */
    static const char version[] = "HTTP/d.d";
    int major = 0, minor = 0;
    for (size_t i = 0; i < sizeof(version) - 1; i++, p++) {
        if (p == end) return c->more;
        if (version[i] != 'd') {
            if (*p != version[i]) return -400;
        } else if (!IS_DIGIT(*p)) {
            return -400;
        } else if (i == 5) {
            major = *p - '0';
        } else {
            minor = *p - '0';
        }
    }
    if (p == end) return c->more;
    if (*p != '\r' && *p != '\n') return -400;
    c->p = p;
    int rc = eat_eol(c);
    if (rc != 0) return rc;
    if (major != 1 || minor > 1) return -505;
    req->minor_version = minor;
    return parse_target(req, st);
}

/* 1#( 1*DIGIT ) whose elements are all equal (RFC 9110 §8.6). */
static int parse_content_length(str_t v, int64_t *out) {
    const char *p = v.p, *e = v.p + v.len;
    int64_t first = -1;
    for (;;) {
        const char *s = p;
        int64_t n = 0;
        for (; p < e && IS_DIGIT(*p); p++) {
            int d = *p - '0';
            if (n > (CONTENT_LENGTH_MAX - d) / 10) return -400;
            n = n * 10 + d;
        }
        if (p == s || (first >= 0 && n != first)) return -400;
        first = n;
        while (p < e && IS_OWS(*p)) p++;
        if (p == e) break;
        if (*p++ != ',') return -400;
        while (p < e && IS_OWS(*p)) p++;
    }
    *out = first;
    return 0;
}

/* Transfer-Encoding = #transfer-coding. Only "chunked", once, is supported; the elements are
 * checked left to right and the first failure decides (-501 unknown coding, -400 malformed). */
static int parse_transfer_encoding(str_t v, http_request_t *req) {
    str_t rest = v, item;
    int codings = 0;
    while (str_next_list_item(&rest, &item)) {
        size_t n = 0;
        while (n < item.len && IS(item.p[n], C_TCHAR)) n++;
        str_t name = str_make(item.p, n), params = str_trim_ows(str_make(item.p + n, item.len - n));
        if (n == 0 || (params.len != 0 && params.p[0] != ';')) return -400;
        if (!STR_IEQ(name, "chunked")) return -501;
        if (params.len != 0 || req->chunked) return -400; /* chunked takes no parameters */
        req->chunked = true;
        codings++;
    }
    return codings == 0 ? -400 : 0;
}

/* Field semantics, applied as soon as the field line is complete. */
static int on_field(const http_header_t *h, http_request_t *req, head_state_t *st) {
    str_t name = h->name, v = h->value;
    switch (name.len) {
    case 4:
        if (!STR_IEQ(name, "host")) break;
        if (st->host_seen || !valid_authority(v)) return -400;
        st->host_seen = true;
        req->host = v;
        break;
    case 6:
        if (!STR_IEQ(name, "expect")) break;
        if (!STR_IEQ(v, "100-continue")) return -417;
        /* A 100-continue expectation in an HTTP/1.0 request is ignored (RFC 9110 §10.1.1). */
        req->expect_continue = req->minor_version == 1;
        break;
    case 10: {
        if (!STR_IEQ(name, "connection")) break;
        str_t rest = v, item;
        while (str_next_list_item(&rest, &item)) {
            if (STR_IEQ(item, "close")) st->conn_close = true;
            else if (STR_IEQ(item, "keep-alive")) st->conn_keep_alive = true;
        }
        break;
    }
    case 14: {
        if (!STR_IEQ(name, "content-length")) break;
        int64_t n;
        if (parse_content_length(v, &n) != 0) return -400;
        if (st->te_seen || (st->content_length_seen && n != req->content_length)) return -400;
        st->content_length_seen = true;
        req->content_length = n;
        break;
    }
    case 17:
        if (!STR_IEQ(name, "transfer-encoding")) break;
        if (req->minor_version == 0 || st->content_length_seen) return -400;
        st->te_seen = true;
        return parse_transfer_encoding(v, req);
    }
    return 0;
}

/* *( field-name ":" OWS field-value OWS CRLF ) CRLF (RFC 9112 §5). */
static int parse_fields(cursor_t *c, http_request_t *req, http_header_t *headers,
                        size_t max_headers, head_state_t *st) {
    const char *end = c->end;
    for (;;) {
        const char *p = c->p;
        if (p == end) return c->more;
        if (*p == '\r' || *p == '\n') return eat_eol(c); /* the empty line ending the head */
        /* obs-fold, or white space between the start line and the first field (RFC 9112 §2.2) */
        if (IS_OWS(*p)) return -400;
        if (req->num_headers == max_headers) return -431;

        const char *name = p;
        while (p < end && IS(*p, C_TCHAR)) p++;
        if (p == end) return c->more;
        if (*p != ':' || p == name) return -400;
        size_t name_len = (size_t)(p - name);

        p++;
        while (p < end && IS_OWS(*p)) p++;
        const char *value = p;
        for (;;) {
            p = find_ctl(p, end);
            if (p == end) return c->more;
            if (*p != '\t') break;
            p++;
        }
        if (*p != '\r' && *p != '\n') return -400;
        const char *vend = p;
        while (vend > value && IS_OWS(vend[-1])) vend--;

        c->p = p;
        int rc = eat_eol(c);
        if (rc != 0) return rc;
        http_header_t *h = &headers[req->num_headers++];
        h->name = str_make(name, name_len);
        h->value = str_make(value, (size_t)(vend - value));
        rc = on_field(h, req, st);
        if (rc != 0) return rc;
    }
}

int http_parse_request(const char *buf, size_t len, http_request_t *req, http_header_t *headers,
                       size_t max_headers, const http_limits_t *limits) {
    size_t max_head = limits && limits->max_header_bytes ? limits->max_header_bytes : INT_MAX;
    size_t max_url = limits ? limits->max_url_bytes : 0;
    if (max_head > INT_MAX) max_head = INT_MAX; /* the head length must fit the return value */

    *req = (http_request_t){.headers = headers, .content_length = -1};
    head_state_t st = {0};
    cursor_t c = {.p = buf, .end = buf + len, .more = HTTP_PARSE_AGAIN};
    if (len >= max_head) {
        /* A head that has not ended within max_head bytes is too long, whatever follows. */
        c.end = buf + max_head;
        c.more = -431;
    }

    int rc = skip_empty_lines(&c);
    if (rc == 0) rc = parse_request_line(&c, req, &st, max_url);
    if (rc == 0) rc = parse_fields(&c, req, headers, max_headers, &st);
    if (rc != 0) return rc;

    if (req->minor_version == 1 && !st.host_seen) return -400;
    if (st.absolute_form) req->host = st.authority; /* RFC 9112 §3.2.2 */
    req->keep_alive = !st.conn_close && (req->minor_version == 1 || st.conn_keep_alive);
    req->head_len = (size_t)(c.p - buf);
    return (int)req->head_len;
}

const http_header_t *http_find_header(const http_request_t *req, const char *lower_name,
                                      size_t len) {
    for (size_t i = 0; i < req->num_headers; i++)
        if (str_ieq(req->headers[i].name, lower_name, len)) return &req->headers[i];
    return NULL;
}
