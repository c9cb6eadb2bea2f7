/* The PROXY protocol parser (src/http/proxy_proto.c) and X-Forwarded-For / -Proto from trusted
 * proxies (src/http/forwarded.c): headers as HAProxy writes them, every truncation of them, and
 * the malformed ones a listener must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "config/config.h"
#include "http/forwarded.h"
#include "http/proxy_proto.h"

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Every strict prefix of a valid header is PROXY_AGAIN; the whole is its length. */
static void check_prefixes(const void *h, size_t n) {
    proxy_hdr_t ph;
    for (size_t i = 0; i < n; i++) assert_int_equal(proxy_parse(h, i, &ph), PROXY_AGAIN);
    assert_int_equal(proxy_parse(h, n, &ph), (int)n);
}

static void v1_tcp4(void **state) {
    (void)state;
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
    size_t n = strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n");
    check_prefixes(h, n);
    proxy_hdr_t ph;
    assert_int_equal(proxy_parse(h, strlen(h), &ph), (int)n);
    assert_int_equal(ph.version, 1);
    assert_false(ph.local);
    assert_int_equal(ph.family, AF_INET);
    char text[64];
    inet_ntop(AF_INET, ph.src, text, sizeof(text));
    assert_string_equal(text, "192.0.2.7");
    inet_ntop(AF_INET, ph.dst, text, sizeof(text));
    assert_string_equal(text, "198.51.100.1");
    assert_int_equal(ph.src_port, 56324);
    assert_int_equal(ph.dst_port, 443);
}

static void v1_tcp6_and_unknown(void **state) {
    (void)state;
    const char *h = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
    proxy_hdr_t ph;
    assert_int_equal(proxy_parse(h, strlen(h), &ph), (int)strlen(h));
    assert_int_equal(ph.family, AF_INET6);
    char text[64];
    inet_ntop(AF_INET6, ph.src, text, sizeof(text));
    assert_string_equal(text, "2001:db8::1");
    assert_int_equal(ph.src_port, 65535);
    assert_int_equal(ph.dst_port, 0);
    const char *u = "PROXY UNKNOWN\r\n";
    assert_int_equal(proxy_parse(u, strlen(u), &ph), (int)strlen(u));
    assert_true(ph.local);
    const char *u2 = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_int_equal(proxy_parse(u2, strlen(u2), &ph), (int)strlen(u2));
    assert_true(ph.local);
}

static void v1_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",                           /* plain HTTP on a proxy listener */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n",   /* LF without CR */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",     /* a field missing */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 1\r\n", /* one too many */
        "PROXY TCP4 192.0.2.7  198.51.100.1 56324 443\r\n", /* two spaces */
        "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",      /* IPv6 under TCP4 */
        "PROXY TCP6 192.0.2.7 2001:db8::2 1 2\r\n",         /* IPv4 under TCP6 */
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",  /* port out of range */
        "PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n",   /* leading zero */
        "PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",
        "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
        "PROXY TCP4 192.0.2.777 198.51.100.1 1 2\r\n",
        "PROXY\r\n",
        "proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
        "PROXY TCP4 192.0.2.7\t198.51.100.1 1 2\r\n",
    };
    proxy_hdr_t ph;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = proxy_parse(bad[i], strlen(bad[i]), &ph);
        if (rc != PROXY_INVALID) fail_msg("accepted: %s", bad[i]);
    }
    /* No CRLF within 107 bytes: refused, not waited for. */
    char longline[200];
    memset(longline, '1', sizeof(longline));
    memcpy(longline, "PROXY UNKNOWN ", 14);
    assert_int_equal(proxy_parse(longline, PROXY_V1_MAX - 1, &ph), PROXY_AGAIN);
    assert_int_equal(proxy_parse(longline, PROXY_V1_MAX, &ph), PROXY_INVALID);
    /* A byte that cannot begin a header: refused at once. */
    assert_int_equal(proxy_parse("\x16\x03\x01", 1, &ph), PROXY_INVALID);
    assert_int_equal(proxy_parse("PRI", 3, &ph), PROXY_INVALID);
}

static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen) {
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    memcpy(out + 16, body, blen);
    return 16 + blen;
}

static void v2_tcp4_tcp6_local(void **state) {
    (void)state;
    uint8_t h[256], body[64] = {192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb};
    /* HAProxy's send-proxy-v2 with a TLV after the addresses (PP2_TYPE_UNIQUE_ID here). */
    memcpy(body + 12, "\x05\x00\x03" "abc", 6);
    size_t n = v2(h, 0x21, 0x11, body, 18);
    check_prefixes(h, n);
    proxy_hdr_t ph;
    assert_int_equal(proxy_parse(h, n, &ph), (int)n);
    assert_int_equal(ph.version, 2);
    assert_false(ph.local);
    assert_int_equal(ph.family, AF_INET);
    assert_memory_equal(ph.src, "\xc0\x00\x02\x07", 4);
    assert_int_equal(ph.src_port, 56324);
    assert_int_equal(ph.dst_port, 443);

    uint8_t b6[36] = {0};
    inet_pton(AF_INET6, "2001:db8::7", b6);
    inet_pton(AF_INET6, "2001:db8::1", b6 + 16);
    b6[32] = 0x30, b6[33] = 0x39, b6[34] = 0, b6[35] = 80;
    n = v2(h, 0x21, 0x21, b6, 36);
    check_prefixes(h, n);
    assert_int_equal(proxy_parse(h, n, &ph), (int)n);
    assert_int_equal(ph.family, AF_INET6);
    assert_memory_equal(ph.src, b6, 16);
    assert_int_equal(ph.src_port, 12345);

    /* LOCAL (a health check): the connection's own address stands. */
    n = v2(h, 0x20, 0x00, body, 0);
    assert_int_equal(proxy_parse(h, n, &ph), 16);
    assert_true(ph.local);
    /* PROXY over UNSPEC, UDP or unix: accepted, the addresses are not used. */
    n = v2(h, 0x21, 0x12, body, 12);
    assert_int_equal(proxy_parse(h, n, &ph), (int)n);
    assert_true(ph.local);
}

static void v2_malformed(void **state) {
    (void)state;
    uint8_t h[4096], body[64] = {0};
    proxy_hdr_t ph;
    size_t n = v2(h, 0x11, 0x11, body, 12); /* version 1 in a v2 header */
    assert_int_equal(proxy_parse(h, n, &ph), PROXY_INVALID);
    assert_int_equal(proxy_parse(h, 13, &ph), PROXY_INVALID); /* refused as soon as seen */
    n = v2(h, 0x22, 0x11, body, 12); /* command 2 */
    assert_int_equal(proxy_parse(h, n, &ph), PROXY_INVALID);
    n = v2(h, 0x21, 0x41, body, 12); /* family 4 */
    assert_int_equal(proxy_parse(h, n, &ph), PROXY_INVALID);
    n = v2(h, 0x21, 0x13, body, 12); /* transport 3 */
    assert_int_equal(proxy_parse(h, n, &ph), PROXY_INVALID);
    n = v2(h, 0x21, 0x11, body, 11); /* too short for IPv4 addresses */
    assert_int_equal(proxy_parse(h, n, &ph), PROXY_INVALID);
    n = v2(h, 0x21, 0x21, body, 35); /* too short for IPv6 addresses */
    assert_int_equal(proxy_parse(h, n, &ph), PROXY_INVALID);
    h[14] = (PROXY_V2_MAX_TLV + 1) >> 8; /* longer than we take */
    h[15] = (PROXY_V2_MAX_TLV + 1) & 0xff;
    assert_int_equal(proxy_parse(h, 16, &ph), PROXY_INVALID);
    memcpy(h, sig, 12);
    h[5] = 'X'; /* a broken signature */
    assert_int_equal(proxy_parse(h, 6, &ph), PROXY_INVALID);
}

/* ---- X-Forwarded-For ---- */

static cfg_cidr_t cidr(const char *text, int prefix) {
    cfg_cidr_t c = {.family = strchr(text, ':') ? AF_INET6 : AF_INET, .prefix = prefix};
    inet_pton(c.family, text, c.addr);
    return c;
}

typedef struct fwd {
    uint8_t family;
    uint8_t addr[16];
    bool https, changed;
    char text[64];
} fwd_t;

/* The client from `peer` with the given header lines ("Name: value"). */
static fwd_t forwarded(const char *peer, const char *const *lines, size_t n) {
    cfg_cidr_t trusted[] = {cidr("127.0.0.0", 8), cidr("10.0.0.0", 8), cidr("::1", 128)};
    http_header_t hs[8];
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(lines[i], ':');
        hs[i].name = str_make(lines[i], (size_t)(colon - lines[i]));
        const char *v = colon + 1;
        while (*v == ' ') v++;
        hs[i].value = str_make(v, strlen(v));
    }
    http_request_t h = {.headers = hs, .num_headers = n};
    fwd_t f = {.family = strchr(peer, ':') ? AF_INET6 : AF_INET};
    inet_pton(f.family, peer, f.addr);
    f.changed = http_forwarded_client(&h, trusted, 3, &f.family, f.addr, &f.https);
    inet_ntop(f.family, f.addr, f.text, sizeof(f.text));
    return f;
}

#define FWD(peer, ...)                                                                          \
    forwarded(peer, (const char *const[]){__VA_ARGS__},                                        \
              sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void xff(void **state) {
    (void)state;
    /* From a trusted peer: the last untrusted address. */
    fwd_t f = FWD("127.0.0.1", "X-Forwarded-For: 203.0.113.9, 10.1.2.3");
    assert_true(f.changed);
    assert_string_equal(f.text, "203.0.113.9");
    /* A client forging the left part gains nothing: the walk stops at the first untrusted one. */
    f = FWD("127.0.0.1", "X-Forwarded-For: 1.1.1.1, 198.51.100.4, 10.0.0.2");
    assert_string_equal(f.text, "198.51.100.4");
    /* From an untrusted peer: ignored, X-Forwarded-Proto too. */
    f = FWD("192.0.2.1", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https");
    assert_false(f.changed);
    assert_false(f.https);
    assert_string_equal(f.text, "192.0.2.1");
    /* Several fields are one list; ports and brackets go. */
    f = FWD("::1", "X-Forwarded-For: 203.0.113.9", "x-forwarded-for: [2001:db8::5]:4711, 10.0.0.1:80");
    assert_string_equal(f.text, "2001:db8::5");
    f = FWD("127.0.0.1", "X-Forwarded-For: 203.0.113.9:5000");
    assert_string_equal(f.text, "203.0.113.9");
    /* All trusted: the leftmost. */
    f = FWD("127.0.0.1", "X-Forwarded-For: 10.0.0.9, 127.0.0.2");
    assert_string_equal(f.text, "10.0.0.9");
    /* Garbage stops the walk where it is. */
    f = FWD("127.0.0.1", "X-Forwarded-For: 203.0.113.9, unknown, 10.0.0.3");
    assert_string_equal(f.text, "10.0.0.3");
    f = FWD("127.0.0.1", "X-Forwarded-For: nonsense");
    assert_false(f.changed);
    assert_string_equal(f.text, "127.0.0.1");
    /* An IPv4-mapped peer is its IPv4 address. */
    f = FWD("::ffff:127.0.0.1", "X-Forwarded-For: 203.0.113.9");
    assert_string_equal(f.text, "203.0.113.9");
    /* X-Forwarded-Proto: the nearest proxy's word. */
    f = FWD("127.0.0.1", "X-Forwarded-Proto: https");
    assert_true(f.https);
    assert_false(f.changed);
    f = FWD("127.0.0.1", "X-Forwarded-Proto: http, HTTPS ");
    assert_true(f.https);
    f = FWD("127.0.0.1", "X-Forwarded-Proto: https, http");
    assert_false(f.https);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1_tcp4),      cmocka_unit_test(v1_tcp6_and_unknown),
        cmocka_unit_test(v1_malformed), cmocka_unit_test(v2_tcp4_tcp6_local),
        cmocka_unit_test(v2_malformed), cmocka_unit_test(xff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
