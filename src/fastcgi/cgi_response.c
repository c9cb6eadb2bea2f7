/* CGI response-header parser; see cgi_response.h for the accepted syntax in each mode. */
#include "fastcgi/cgi_response.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Character classes. NAME: RFC 9110 tchar. VALUE_CTL: a control character other than HTAB (strict
 * refuses it in a value). VALUE_BAD: CR or NUL, which no mode lets through (LF cannot occur: lines
 * are split at LF). */
enum { C_NAME = 1, C_VALUE_CTL = 2, C_VALUE_BAD = 4 };

#define CTL (C_VALUE_CTL)
#define BAD (C_VALUE_CTL | C_VALUE_BAD)
#define N (C_NAME)
static const unsigned char char_class[256] = {
    /* 0x00 */ BAD, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, 0, CTL, CTL, CTL, BAD, CTL, CTL,
    /* 0x10 */ CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL, CTL,
    /* 0x20  SP ! " # $ % & ' ( ) * + , - . / */
    0, N, 0, N, N, N, N, N, 0, 0, N, N, 0, N, N, 0,
    /* 0x30  0-9 : ; < = > ? */
    N, N, N, N, N, N, N, N, N, N, 0, 0, 0, 0, 0, 0,
    /* 0x40  @ A-O */
    0, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N,
    /* 0x50  P-Z [ \ ] ^ _ */
    N, N, N, N, N, N, N, N, N, N, N, 0, 0, 0, N, N,
    /* 0x60  ` a-o */
    N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N,
    /* 0x70  p-z { | } ~ DEL */
    N, N, N, N, N, N, N, N, N, N, N, 0, N, 0, N, CTL,
    /* 0x80..0xff: obs-text, allowed in values */
};
#undef CTL
#undef BAD
#undef N

typedef struct parser {
    bool strict;
    cgi_response_t *res;
    size_t max_headers;
    unsigned line_no;
    char *err;
    size_t errlen;
} parser_t;

static int fail(parser_t *ps, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser_t *ps, int code, const char *fmt, ...) {
    if (ps->err == NULL || ps->errlen == 0) return code;
    /* line 0: the block as a whole (too long), no line to point at */
    int n = ps->line_no ? snprintf(ps->err, ps->errlen, "line %u: ", ps->line_no) : 0;
    if (n >= 0 && (size_t)n < ps->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A byte as it appears in a message: 'x' when printable, else 0xNN. */
static const char *show_char(unsigned char c, char out[8]) {
    if (c >= 0x20 && c < 0x7f)
        snprintf(out, 8, "'%c'", c);
    else
        snprintf(out, 8, "0x%02x", c);
    return out;
}

/* Up to 32 bytes of s, non-printable bytes as \xNN, for messages. */
static const char *show_str(str_t s, char out[160]) {
    size_t o = 0;
    for (size_t i = 0; i < s.len && i < 32; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
    }
    if (s.len > 32) memcpy(out + o, "...", 3), o += 3;
    out[o] = '\0';
    return out;
}

/* Relaxed mode: forget the line, remember it for the caller's log. */
static int drop(parser_t *ps, str_t line) {
    if (ps->res->dropped++ == 0) {
        ps->res->first_dropped = line;
        ps->res->first_dropped_line = ps->line_no;
    }
    return 0;
}

static cgi_header_id_t header_id(str_t n) {
    switch (n.len) {
    case 2: return STR_IEQ(n, "te") ? CGI_H_HOP_BY_HOP : CGI_H_OTHER;
    case 4: return STR_IEQ(n, "date") ? CGI_H_DATE : CGI_H_OTHER;
    case 6: return STR_IEQ(n, "server") ? CGI_H_SERVER : CGI_H_OTHER;
    case 7:
        return STR_IEQ(n, "trailer") || STR_IEQ(n, "upgrade") ? CGI_H_HOP_BY_HOP : CGI_H_OTHER;
    case 8: return STR_IEQ(n, "location") ? CGI_H_LOCATION : CGI_H_OTHER;
    case 10:
        if (STR_IEQ(n, "connection")) return CGI_H_CONNECTION;
        return STR_IEQ(n, "keep-alive") ? CGI_H_KEEP_ALIVE : CGI_H_OTHER;
    case 12: return STR_IEQ(n, "content-type") ? CGI_H_CONTENT_TYPE : CGI_H_OTHER;
    case 14: return STR_IEQ(n, "content-length") ? CGI_H_CONTENT_LENGTH : CGI_H_OTHER;
    case 16: return STR_IEQ(n, "proxy-connection") ? CGI_H_HOP_BY_HOP : CGI_H_OTHER;
    case 17: return STR_IEQ(n, "transfer-encoding") ? CGI_H_TRANSFER_ENCODING : CGI_H_OTHER;
    default: return CGI_H_OTHER;
    }
}

/* Status value "NNN[ reason]" (already trimmed), from a Status: field or an HTTP/1.x line. */
static int parse_status(parser_t *ps, str_t line, str_t v) {
    cgi_response_t *res = ps->res;
    char shown[160];
    if (res->flags & CGI_F_STATUS) {
        if (ps->strict) return fail(ps, CGI_EINVALID, "more than one Status");
        return drop(ps, line);
    }
    const char *s = v.p;
    bool digits = v.len >= 3 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
                  s[2] >= '0' && s[2] <= '9';
    int status = digits ? (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0') : 0;
    if (!digits || status < 100 || status > 599 || (v.len > 3 && s[3] != ' ' && s[3] != '\t'))
        return fail(ps, CGI_EINVALID, "invalid status \"%s\"", show_str(v, shown));
    str_t reason = str_trim_ows(str_make(s + 3, v.len - 3));
    if (ps->strict && (reason.len == 0 || s[3] != ' '))
        return fail(ps, CGI_EINVALID, "Status must be \"NNN reason\", got \"%s\"",
                    show_str(v, shown));
    res->status = status;
    res->reason = reason;
    res->flags |= CGI_F_STATUS;
    return 0;
}

static int parse_content_length(parser_t *ps, str_t line, str_t v) {
    cgi_response_t *res = ps->res;
    char shown[160];
    int64_t n = 0;
    bool ok = v.len > 0 && v.len <= 18; /* 18 digits cannot overflow int64_t */
    for (size_t i = 0; ok && i < v.len; i++) {
        ok = v.p[i] >= '0' && v.p[i] <= '9';
        n = n * 10 + (v.p[i] - '0');
    }
    if (!ok) {
        if (ps->strict)
            return fail(ps, CGI_EINVALID, "invalid Content-Length \"%s\"", show_str(v, shown));
        return drop(ps, line);
    }
    if ((res->flags & CGI_F_CONTENT_LENGTH) && res->content_length != n) {
        if (ps->strict) return fail(ps, CGI_EINVALID, "conflicting Content-Length values");
        return drop(ps, line);
    }
    res->content_length = n;
    res->flags |= CGI_F_CONTENT_LENGTH;
    return 1; /* keep the line */
}

static int add_header(parser_t *ps, str_t line, str_t name, str_t value) {
    cgi_response_t *res = ps->res;
    cgi_header_id_t id = header_id(name);
    if (id == CGI_H_OTHER && name.len == 6 && STR_IEQ(name, "status"))
        return parse_status(ps, line, value);
    if (id == CGI_H_CONTENT_LENGTH) {
        int rc = parse_content_length(ps, line, value);
        if (rc <= 0) return rc;
    }
    if (res->num_headers == ps->max_headers)
        return fail(ps, CGI_ETOO_LARGE, "more than %zu header lines", ps->max_headers);
    res->headers[res->num_headers++] = (cgi_header_t){name, value, id};
    switch (id) {
    case CGI_H_CONTENT_TYPE:
        if (!(res->flags & CGI_F_CONTENT_TYPE)) res->content_type = value;
        res->flags |= CGI_F_CONTENT_TYPE;
        break;
    case CGI_H_LOCATION:
        if (value.len == 0 || (res->flags & CGI_F_LOCATION)) break;
        res->location = value;
        res->flags |= CGI_F_LOCATION;
        if (value.p[0] == '/' && (value.len == 1 || value.p[1] != '/'))
            res->flags |= CGI_F_LOCAL_REDIRECT;
        break;
    case CGI_H_TRANSFER_ENCODING: res->flags |= CGI_F_TRANSFER_ENCODING | CGI_F_HOP_BY_HOP; break;
    case CGI_H_CONNECTION: res->flags |= CGI_F_CONNECTION | CGI_F_HOP_BY_HOP; break;
    case CGI_H_KEEP_ALIVE:
    case CGI_H_HOP_BY_HOP: res->flags |= CGI_F_HOP_BY_HOP; break;
    default: break;
    }
    return 0;
}

/* Index of the first byte of s whose class has `mask`, or s.len. */
static size_t find_class(str_t s, unsigned char mask) {
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0;
    while (i < s.len && !(char_class[p[i]] & mask)) i++;
    return i;
}

/* "HTTP/1.x NNN [reason]" (relaxed, first line only). */
static bool is_status_line(str_t line) {
    return line.len > 9 && memcmp(line.p, "HTTP/1.", 7) == 0 && line.p[7] >= '0' &&
           line.p[7] <= '9' && (line.p[8] == ' ' || line.p[8] == '\t');
}

/* One header line, without its line end (never empty). */
static int parse_line(parser_t *ps, str_t line) {
    char c[8], shown[160];
    if (ps->line_no == 1 && line.len >= 5 && memcmp(line.p, "HTTP/", 5) == 0) {
        if (ps->strict) return fail(ps, CGI_EINVALID, "an HTTP status line is not a header");
        if (is_status_line(line)) {
            size_t bad = find_class(line, C_VALUE_BAD);
            if (bad < line.len) return drop(ps, line);
            ps->res->flags |= CGI_F_NPH_STATUS_LINE;
            return parse_status(ps, line, str_trim_ows(str_make(line.p + 9, line.len - 9)));
        }
    }
    const char *colon = memchr(line.p, ':', line.len);
    if (colon == NULL) {
        if (ps->strict) return fail(ps, CGI_EINVALID, "no colon in \"%s\"", show_str(line, shown));
        return drop(ps, line);
    }
    str_t name = str_make(line.p, (size_t)(colon - line.p));
    str_t raw = str_make(colon + 1, line.len - name.len - 1);
    if (!ps->strict) name = str_trim_ows(name);
    size_t bad = 0;
    while (bad < name.len && (char_class[(unsigned char)name.p[bad]] & C_NAME)) bad++;
    if (name.len == 0 || bad < name.len) {
        if (!ps->strict) return drop(ps, line);
        if (name.len == 0) return fail(ps, CGI_EINVALID, "header name is empty");
        return fail(ps, CGI_EINVALID, "header name contains %s",
                    show_char((unsigned char)name.p[bad], c));
    }
    if (ps->strict && raw.len > 0 && raw.p[0] != ' ' && raw.p[0] != '\t')
        return fail(ps, CGI_EINVALID, "no space after the colon of %.*s", (int)name.len, name.p);
    str_t value = str_trim_ows(raw);
    bad = find_class(value, ps->strict ? C_VALUE_CTL : C_VALUE_BAD);
    if (bad < value.len) {
        if (!ps->strict) return drop(ps, line);
        return fail(ps, CGI_EINVALID, "control character %s in the value of %.*s",
                    show_char((unsigned char)value.p[bad], c), (int)name.len, name.p);
    }
    return add_header(ps, line, name, value);
}

/* Length of the header block through its empty line, or 0 when buf[0..len) holds no empty line. */
static size_t find_block_end(const char *buf, size_t len) {
    if (len >= 1 && buf[0] == '\n') return 1;
    if (len >= 2 && buf[0] == '\r' && buf[1] == '\n') return 2;
    const char *p = buf, *end = buf + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (p < end && p[0] == '\n') return (size_t)(p + 1 - buf);
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') return (size_t)(p + 2 - buf);
    }
    return 0;
}

static void init_response(cgi_response_t *res, const char *buf, cgi_header_t *headers) {
    /* Empty slices point at buf rather than NULL, so memcmp-based helpers may take them. */
    str_t empty = str_make(buf, 0);
    *res = (cgi_response_t){.reason = empty, .content_type = empty, .location = empty,
                            .first_dropped = empty};
    res->content_length = -1;
    res->headers = headers;
}

int cgi_parse_response(const char *buf, size_t len, const cgi_parse_opts_t *opts,
                       cgi_response_t *res, cgi_header_t *headers, size_t max_headers, char *err,
                       size_t errlen) {
    parser_t ps = {opts->mode == CGI_MODE_STRICT, res, max_headers, 0, err, errlen};
    size_t max = opts->max_bytes ? opts->max_bytes : CGI_DEFAULT_MAX_BYTES;
    if (max > INT_MAX) max = INT_MAX;
    if (err && errlen) err[0] = '\0';
    size_t head_len = find_block_end(buf, len < max ? len : max);
    if (head_len == 0) {
        if (len < max) return CGI_AGAIN;
        return fail(&ps, CGI_ETOO_LARGE, "header block longer than %zu bytes", max);
    }
    init_response(res, buf, headers);
    for (size_t pos = 0;;) {
        const char *lf = memchr(buf + pos, '\n', head_len - pos);
        size_t n = (size_t)(lf - (buf + pos));
        bool cr = n > 0 && lf[-1] == '\r';
        str_t line = str_make(buf + pos, n - cr);
        ps.line_no++;
        if (ps.strict && !cr) return fail(&ps, CGI_EINVALID, "line ends with LF, not CRLF");
        if (line.len == 0) break;
        int rc = parse_line(&ps, line);
        if (rc < 0) return rc;
        pos += n + 1;
    }
    if (!(res->flags & CGI_F_STATUS)) res->status = (res->flags & CGI_F_LOCATION) ? 302 : 200;
    res->head_len = head_len;
    return (int)head_len;
}
