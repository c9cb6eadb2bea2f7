/* Incremental chunked-body decoder (RFC 9112 §7.1), one byte-driven state machine for the framing
 * and a memmove for the chunk data.
 *
 * Every transition depends only on the current state and the current byte, and all progress
 * (state, remaining chunk bytes, line and trailer counters) lives in http_chunked_t, so the decoded
 * output and the result are the same however the body is split into pieces.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-val = token / quoted-string
 */
#include "http/chunked.h"

#include <string.h>

#define MAX_SIZE_DIGITS 16

enum {
    ST_SIZE = 0,      /* chunk-size digits; must be 0 so that a zeroed decoder is ready */
    ST_SIZE_BWS,      /* BWS after the size or an extension value: only ';' may follow */
    ST_EXT_NAME_PRE,  /* after ';': BWS, then the extension name */
    ST_EXT_NAME,      /* in the extension name */
    ST_EXT_NAME_BWS,  /* BWS after the name: '=' or ';' must follow */
    ST_EXT_VAL_PRE,   /* after '=': BWS, then a token or a quoted-string */
    ST_EXT_VAL_TOKEN, /* in a token value */
    ST_EXT_QUOTED,    /* in a quoted-string value */
    ST_EXT_QUOTED_ESC,/* after a backslash in a quoted-string */
    ST_EXT_VAL_END,   /* after the closing quote */
    ST_SIZE_LF,       /* CR seen at the end of the size line */
    ST_DATA,          /* chunk data, `remaining` bytes to go */
    ST_DATA_EOL,      /* CRLF after the chunk data */
    ST_DATA_LF,       /* CR seen after the chunk data */
    ST_TRAILER_START, /* start of a trailer line (or of the final empty line) */
    ST_TRAILER_NAME,
    ST_TRAILER_VALUE,
    ST_TRAILER_LF,    /* CR seen at the end of a trailer field */
    ST_END_LF,        /* CR seen on the final empty line */
    ST_DONE,
    ST_ERROR,
};

enum {
    C_TCHAR = 1,  /* token character */
    C_QDTEXT = 2, /* HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
    C_FIELD = 4,  /* field-value byte: HTAB / SP / VCHAR / obs-text */
};

static const unsigned char char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    6, 7, 4, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 20  !"#$%&'()*+,-./ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 30 0123456789:;<=>? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 40 @ABCDEFGHIJKLMNO */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 4, 6, 7, 7, /* 50 PQRSTUVWXYZ[\]^_ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 60 `abcdefghijklmno */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 70 pqrstuvwxyz{|}~  */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 80 obs-text */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 90 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* a0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* b0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* c0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* d0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* e0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* f0 */
};

#define IS(c, cls) (char_class[(unsigned char)(c)] & (cls))
#define IS_BWS(c) ((c) == ' ' || (c) == '\t')

static int hex_value(unsigned char c) {
    if ((unsigned)(c - '0') < 10u) return c - '0';
    c |= 0x20;
    if ((unsigned)(c - 'a') < 6u) return c - 'a' + 10;
    return -1;
}

void http_chunked_init(http_chunked_t *d) {
    memset(d, 0, sizeof(*d));
}

/* A size line has ended (at its LF): on to the chunk data, or to the trailer after the last one. */
static int size_line_done(http_chunked_t *d) {
    d->line_len = 0;
    return d->remaining != 0 ? ST_DATA : ST_TRAILER_START;
}

/* The byte after a complete token or quoted extension value (or after the size). */
static int after_value(http_chunked_t *d, char ch) {
    if (ch == ';') return ST_EXT_NAME_PRE;
    if (IS_BWS(ch)) return ST_SIZE_BWS;
    if (ch == '\r') return ST_SIZE_LF;
    if (ch == '\n') return size_line_done(d);
    return ST_ERROR;
}

/* One byte of the size line or of the trailer; returns the next state. */
static int step(http_chunked_t *d, int state, char ch) {
    int v;
    switch (state) {
    case ST_SIZE:
        if ((v = hex_value((unsigned char)ch)) >= 0) {
            /* line_len counts the digits so far: the whole line is digits up to here. */
            if (d->line_len > MAX_SIZE_DIGITS) return ST_ERROR;
            if (d->remaining > ((uint64_t)INT64_MAX - (uint64_t)v) >> 4) return ST_ERROR;
            d->remaining = d->remaining << 4 | (uint64_t)v;
            return ST_SIZE;
        }
        /* A digit must precede; line_len has counted this byte unless it ends the line. */
        if (d->line_len == (ch == '\r' || ch == '\n' ? 0u : 1u)) return ST_ERROR;
        return after_value(d, ch);
    case ST_SIZE_BWS:
        return IS_BWS(ch) ? ST_SIZE_BWS : ch == ';' ? ST_EXT_NAME_PRE : ST_ERROR;
    case ST_EXT_NAME_PRE:
        return IS_BWS(ch) ? ST_EXT_NAME_PRE : IS(ch, C_TCHAR) ? ST_EXT_NAME : ST_ERROR;
    case ST_EXT_NAME:
        if (IS(ch, C_TCHAR)) return ST_EXT_NAME;
        if (ch == '=') return ST_EXT_VAL_PRE;
        if (IS_BWS(ch)) return ST_EXT_NAME_BWS;
        return after_value(d, ch);
    case ST_EXT_NAME_BWS:
        return IS_BWS(ch) ? ST_EXT_NAME_BWS
               : ch == '=' ? ST_EXT_VAL_PRE
               : ch == ';' ? ST_EXT_NAME_PRE
                           : ST_ERROR;
    case ST_EXT_VAL_PRE:
        return IS_BWS(ch) ? ST_EXT_VAL_PRE
               : ch == '"' ? ST_EXT_QUOTED
               : IS(ch, C_TCHAR) ? ST_EXT_VAL_TOKEN
                                 : ST_ERROR;
    case ST_EXT_VAL_TOKEN:
        return IS(ch, C_TCHAR) ? ST_EXT_VAL_TOKEN : after_value(d, ch);
    case ST_EXT_QUOTED:
        return ch == '"' ? ST_EXT_VAL_END
               : ch == '\\' ? ST_EXT_QUOTED_ESC
               : IS(ch, C_QDTEXT) ? ST_EXT_QUOTED
                                  : ST_ERROR;
    case ST_EXT_QUOTED_ESC: /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return IS(ch, C_FIELD) ? ST_EXT_QUOTED : ST_ERROR;
    case ST_EXT_VAL_END:
        return after_value(d, ch);
    case ST_SIZE_LF:
        return ch == '\n' ? size_line_done(d) : ST_ERROR;
    case ST_DATA_EOL:
        if (ch == '\r') return ST_DATA_LF;
        return ch == '\n' ? ST_SIZE : ST_ERROR;
    case ST_DATA_LF:
        return ch == '\n' ? ST_SIZE : ST_ERROR;
    case ST_TRAILER_START:
        if (ch == '\r') return ST_END_LF;
        if (ch == '\n') return ST_DONE;
        /* A leading SP/HTAB would be obs-fold; ':' an empty name. */
        return IS(ch, C_TCHAR) ? ST_TRAILER_NAME : ST_ERROR;
    case ST_TRAILER_NAME:
        return IS(ch, C_TCHAR) ? ST_TRAILER_NAME : ch == ':' ? ST_TRAILER_VALUE : ST_ERROR;
    case ST_TRAILER_VALUE:
        if (IS(ch, C_FIELD)) return ST_TRAILER_VALUE;
        if (ch == '\r') return ST_TRAILER_LF;
        return ch == '\n' ? ST_TRAILER_START : ST_ERROR;
    case ST_TRAILER_LF:
        return ch == '\n' ? ST_TRAILER_START : ST_ERROR;
    case ST_END_LF:
        return ch == '\n' ? ST_DONE : ST_ERROR;
    }
    return ST_ERROR;
}

ssize_t http_chunked_decode(http_chunked_t *d, char *buf, size_t *len) {
    const char *p = buf, *end = buf + *len;
    char *dst = buf;
    int state = d->state;

    if (state == ST_DONE) { /* everything after the body is left over */
        *len = 0;
        return (ssize_t)(end - p);
    }
    while (p < end && state != ST_ERROR && state != ST_DONE) {
        if (state == ST_DATA) {
            size_t avail = (size_t)(end - p);
            size_t n = d->remaining < avail ? (size_t)d->remaining : avail;
            memmove(dst, p, n);
            dst += n;
            p += n;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0) state = ST_DATA_EOL;
            continue;
        }
        char ch = *p++;
        if (state >= ST_TRAILER_START) {
            if (++d->trailer_len > HTTP_CHUNKED_MAX_TRAILER) {
                state = ST_ERROR;
                break;
            }
        } else if (state <= ST_SIZE_LF && ch != '\r' && ch != '\n' &&
                   ++d->line_len > HTTP_CHUNKED_MAX_LINE) {
            state = ST_ERROR;
            break;
        }
        state = step(d, state, ch);
    }
    d->state = state;
    *len = (size_t)(dst - buf);
    if (state == ST_ERROR) return HTTP_CHUNKED_ERROR;
    if (state != ST_DONE) return HTTP_CHUNKED_AGAIN;
    size_t left = (size_t)(end - p);
    memmove(dst, p, left);
    return (ssize_t)left;
}
