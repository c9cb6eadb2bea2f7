/* libFuzzer target for the PROXY protocol parser (src/http/proxy_proto.c) and X-Forwarded-For
 * (src/http/forwarded.c).
 *
 * Input: the first bytes of a connection on a `proxy` listener. Checks, besides "no crash":
 *   - a header of length n: every shorter prefix is PROXY_AGAIN, n never exceeds the input, a
 *     v1 header is at most 107 bytes and a v2 one at most 16 + PROXY_V2_MAX_TLV;
 *   - a prefix refused is never accepted once longer (a connection is closed only when no more
 *     bytes could make its header valid);
 *   - the same bytes read as an X-Forwarded-For value, from a trusted peer: the result is the
 *     peer or an address written in the value, of family AF_INET or AF_INET6.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"
#include "fuzz_check.h"
#include "http/forwarded.h"
#include "http/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proxy_hdr_t ph;
    int rc = proxy_parse(data, size, &ph);
    CHECK(rc == PROXY_AGAIN || rc == PROXY_INVALID || (rc > 0 && (size_t)rc <= size));
    if (rc > 0) {
        CHECK(ph.version == 1 || ph.version == 2);
        CHECK(ph.version == 2 || rc <= PROXY_V1_MAX);
        CHECK(ph.version == 1 || rc <= 16 + PROXY_V2_MAX_TLV);
        CHECK(ph.local || ph.family == AF_INET || ph.family == AF_INET6);
        for (int i = 0; i < rc; i++) CHECK(proxy_parse(data, (size_t)i, &ph) == PROXY_AGAIN);
    } else if (rc == PROXY_AGAIN) {
        for (size_t i = 0; i < size; i++) CHECK(proxy_parse(data, i, &ph) == PROXY_AGAIN);
    }

    cfg_cidr_t trusted[2] = {{.family = AF_INET, .prefix = 8}, {.family = AF_INET6, .prefix = 0}};
    trusted[0].addr[0] = 127;
    http_header_t hd = {.name = STR_LIT("X-Forwarded-For"), .value = str_make((const char *)data, size)};
    http_request_t h = {.headers = &hd, .num_headers = 1};
    uint8_t family = AF_INET, addr[16] = {127, 0, 0, 1};
    bool https = false;
    bool changed = http_forwarded_client(&h, trusted, 2, &family, addr, &https);
    CHECK(family == AF_INET || family == AF_INET6);
    if (!changed) CHECK(family == AF_INET && memcmp(addr, "\x7f\0\0\x01", 4) == 0);
    if (family == AF_INET) {
        static const uint8_t zero[12] = {0};
        CHECK(memcmp(addr + 4, zero, 12) == 0);
    }
    return 0;
}
