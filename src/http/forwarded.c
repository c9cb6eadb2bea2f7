/* X-Forwarded-For and X-Forwarded-Proto from trusted proxies (see forwarded.h). */
#include "http/forwarded.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool cidr_match(const cfg_cidr_t *c, int family, const uint8_t *addr) {
    if (c->family != family) return false;
    int bits = c->prefix;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
        if ((addr[i] & mask) != (c->addr[i] & mask)) return false;
    }
    return true;
}

bool http_cidrs_contain(const cfg_cidr_t *ranges, size_t n, int family, const uint8_t *addr) {
    if (family == AF_INET6 && memcmp(addr, v4_mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&ranges[i], family, addr)) return true;
    return false;
}

static bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

/* One list element, OWS trimmed: "192.0.2.1", "192.0.2.1:5000", "2001:db8::1" or
 * "[2001:db8::1]:5000" (ports dropped). False when it is not an address. */
static bool parse_element(const char *p, size_t n, uint8_t *family, uint8_t addr[16]) {
    while (n && is_ows(*p)) p++, n--;
    while (n && is_ows(p[n - 1])) n--;
    char text[64];
    if (n == 0 || n >= sizeof(text)) return false;
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        if (rb == NULL) return false;
        n = (size_t)(rb - p - 1);
        p++;
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - p)) == NULL)
            n = (size_t)(colon - p); /* a.b.c.d:port */
    }
    memcpy(text, p, n);
    text[n] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, addr) == 1) {
        *family = AF_INET6;
        if (memcmp(addr, v4_mapped, 12) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        }
        return true;
    }
    return false;
}

static bool name_is(const http_header_t *hd, const char *lower) {
    return str_ieq(hd->name, lower, strlen(lower));
}

bool http_forwarded_client(const http_request_t *h, const cfg_cidr_t *trusted, size_t n,
                           uint8_t *family, uint8_t addr[16], bool *https) {
    if (n == 0 || (*family != AF_INET && *family != AF_INET6)) return false;
    if (!http_cidrs_contain(trusted, n, *family, addr)) return false;
    /* The nearest proxy's word on the scheme: the last element of the last field. */
    for (size_t i = h->num_headers; i-- > 0;) {
        const http_header_t *hd = &h->headers[i];
        if (!name_is(hd, "x-forwarded-proto")) continue;
        const char *v = hd->value.p, *comma = v;
        size_t len = hd->value.len;
        for (size_t k = 0; k < len; k++)
            if (v[k] == ',') comma = v + k + 1;
        size_t m = len - (size_t)(comma - v);
        while (m && is_ows(*comma)) comma++, m--;
        while (m && is_ows(comma[m - 1])) m--;
        str_t last = str_make(comma, m);
        *https = str_ieq(last, "https", 5);
        break;
    }
    bool changed = false;
    for (size_t i = h->num_headers; i-- > 0;) {
        const http_header_t *hd = &h->headers[i];
        if (!name_is(hd, "x-forwarded-for")) continue;
        const char *v = hd->value.p;
        size_t end = hd->value.len;
        for (;;) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',') start--;
            uint8_t f, a[16];
            if (end > start || start > 0) {
                if (!parse_element(v + start, end - start, &f, a)) return changed;
                *family = f;
                memcpy(addr, a, 16);
                changed = true;
                if (!http_cidrs_contain(trusted, n, f, a)) return true;
            }
            if (start == 0) break;
            end = start - 1;
        }
    }
    return changed;
}
