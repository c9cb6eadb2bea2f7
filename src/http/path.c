#include "http/path.h"

#include <string.h>

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool utf8_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0) lo = 0xA0;      /* overlong */
            else if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0) lo = 0x90;      /* overlong */
            else if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
        } else {
            return false; /* continuation byte, C0/C1 overlong lead, or F5..FF */
        }
        if (i + n >= len) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += n + 1;
    }
    return true;
}

/* Check the segment out[start..end) just completed. */
static int check_segment(const char *seg, size_t n) {
    if (n == 0 || seg[0] != '.') return 0;
    if (n == 1 || (n == 2 && seg[1] == '.')) return -400;
    return -403;
}

int http_path_decode(const char *in, size_t len, char *out, size_t *outlen) {
    size_t o = 0, seg = 0;
    int verdict = 0;
    if (len == 0 || in[0] != '/') return -400;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= len) return -400;
            if ((h = hexval((unsigned char)in[i + 1])) < 0 || (l = hexval((unsigned char)in[i + 2])) < 0)
                return -400;
            c = (unsigned char)(h << 4 | l);
            i += 2;
        }
        if (c == '\0') return -400;
        if (c == '/') {
            int v = check_segment(out + seg, o - seg);
            if (v == -400) return -400;
            if (v) verdict = v;
            if (o > 0 && out[o - 1] == '/') continue; /* merge slashes */
            out[o++] = '/';
            seg = o;
            continue;
        }
        out[o++] = (char)c;
    }
    int v = check_segment(out + seg, o - seg);
    if (v == -400) return -400;
    if (v) verdict = v;
    out[o] = '\0';
    *outlen = o;
    if (!utf8_valid((const unsigned char *)out, o)) return -400;
    return verdict;
}

size_t http_path_encode(const char *in, size_t len, char *out, size_t outcap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("-._~/!$&'()*+,;=:@", c) != NULL;
        if (c == 0) plain = false;
        if (plain) {
            if (o + 1 >= outcap) break;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outcap) break;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (outcap) out[o < outcap ? o : outcap - 1] = '\0';
    return o;
}
