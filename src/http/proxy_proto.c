/* The PROXY protocol v1 and v2 (see proxy_proto.h). */
#include "http/proxy_proto.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Is buf[0..len) the start of `want` (as far as it goes)? */
static bool starts(const uint8_t *buf, size_t len, const void *want, size_t wlen) {
    return memcmp(buf, want, len < wlen ? len : wlen) == 0;
}

/* The next space-delimited field of a v1 line: [*p, end) up to a single space or the end. */
static bool v1_field(const char **p, const char *end, char *out, size_t outlen, bool last) {
    const char *s = *p;
    const char *e = last ? end : memchr(s, ' ', (size_t)(end - s));
    if (e == NULL || e == s || (size_t)(e - s) >= outlen) return false;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    *p = last ? e : e + 1;
    return true;
}

/* A v1 port: 0..65535 in decimal, no sign, no leading zero. */
static bool v1_port(const char *s, uint16_t *port) {
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return false;
    *port = (uint16_t)v;
    return true;
}

static int parse_v1(const uint8_t *buf, size_t len, proxy_hdr_t *out) {
    static const char prefix[] = "PROXY ";
    if (!starts(buf, len, prefix, 6)) return PROXY_INVALID;
    size_t lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    const uint8_t *lf = memchr(buf, '\n', lim);
    if (lf == NULL) return len >= PROXY_V1_MAX ? PROXY_INVALID : PROXY_AGAIN;
    size_t n = (size_t)(lf - buf) + 1; /* the line's length with CRLF */
    if (n < 8 || buf[n - 2] != '\r') return PROXY_INVALID;
    const char *p = (const char *)buf + 6, *end = (const char *)buf + n - 2;
    for (const char *q = p; q < end; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) return PROXY_INVALID;
    memset(out, 0, sizeof(*out));
    out->version = 1;
    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (end - p == 7 || p[7] == ' ')) {
        out->local = true; /* the rest of the line is to be ignored */
        return (int)n;
    }
    char proto[8], src[48], dst[48], sport[8], dport[8];
    if (!v1_field(&p, end, proto, sizeof(proto), false)) return PROXY_INVALID;
    int af;
    if (strcmp(proto, "TCP4") == 0) af = AF_INET;
    else if (strcmp(proto, "TCP6") == 0) af = AF_INET6;
    else return PROXY_INVALID;
    if (!v1_field(&p, end, src, sizeof(src), false) || !v1_field(&p, end, dst, sizeof(dst), false) ||
        !v1_field(&p, end, sport, sizeof(sport), false) || !v1_field(&p, end, dport, sizeof(dport), true))
        return PROXY_INVALID;
    if (inet_pton(af, src, out->src) != 1 || inet_pton(af, dst, out->dst) != 1) return PROXY_INVALID;
    if (!v1_port(sport, &out->src_port) || !v1_port(dport, &out->dst_port)) return PROXY_INVALID;
    out->family = (uint8_t)af;
    return (int)n;
}

static uint16_t be16(const uint8_t *p) {
    return (uint16_t)(p[0] << 8 | p[1]);
}

static int parse_v2(const uint8_t *buf, size_t len, proxy_hdr_t *out) {
    if (!starts(buf, len, v2_sig, sizeof(v2_sig))) return PROXY_INVALID;
    if (len >= 13 && (buf[12] >> 4 != 2 || (buf[12] & 0x0f) > 1)) return PROXY_INVALID;
    if (len >= 14 && ((buf[13] >> 4) > 3 || (buf[13] & 0x0f) > 2)) return PROXY_INVALID;
    if (len < 16) return PROXY_AGAIN;
    size_t plen = be16(buf + 14);
    if (plen > PROXY_V2_MAX_TLV) return PROXY_INVALID;
    if (len < 16 + plen) return PROXY_AGAIN;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    const uint8_t *a = buf + 16;
    bool proxy = (buf[12] & 0x0f) == 1;
    if (proxy && buf[13] == 0x11) { /* TCP over IPv4 */
        if (plen < 12) return PROXY_INVALID;
        out->family = AF_INET;
        memcpy(out->src, a, 4);
        memcpy(out->dst, a + 4, 4);
        out->src_port = be16(a + 8);
        out->dst_port = be16(a + 10);
    } else if (proxy && buf[13] == 0x21) { /* TCP over IPv6 */
        if (plen < 36) return PROXY_INVALID;
        out->family = AF_INET6;
        memcpy(out->src, a, 16);
        memcpy(out->dst, a + 16, 16);
        out->src_port = be16(a + 32);
        out->dst_port = be16(a + 34);
    } else {
        out->local = true; /* LOCAL (the proxy's own health check), UNSPEC, UDP or unix */
    }
    return (int)(16 + plen);
}

int proxy_parse(const void *data, size_t len, proxy_hdr_t *out) {
    const uint8_t *buf = data;
    if (len == 0) return PROXY_AGAIN;
    if (buf[0] == 'P') return parse_v1(buf, len, out);
    if (buf[0] == 0x0D) return parse_v2(buf, len, out);
    return PROXY_INVALID;
}
