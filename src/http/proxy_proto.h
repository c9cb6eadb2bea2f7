/* The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's send-proxy and send-proxy-v2
 * write it at the start of a connection (haproxy's doc/proxy-protocol.txt): the address of the
 * client the proxy accepted, before any byte of HTTP. PURE: bytes in, a struct out.
 *
 * A listener marked `proxy` (SPEC §6) expects one at the start of every connection; a connection
 * whose first bytes are not a valid header is closed. */
#ifndef FCGIHOST_HTTP_PROXY_PROTO_H
#define FCGIHOST_HTTP_PROXY_PROTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX 107          /* the longest v1 line, CRLF included (the protocol's limit) */
#define PROXY_V2_MAX_TLV 2048     /* v2: the longest address block + TLVs we take */

typedef struct proxy_hdr {
    int version;                  /* 1 or 2 */
    bool local;                   /* v1 UNKNOWN, v2 LOCAL, or an address family other than TCP
                                     over IPv4/IPv6: the connection's own addresses stand */
    uint8_t family;               /* AF_INET / AF_INET6 when !local */
    uint8_t src[16], dst[16];     /* network order; IPv4 in the first 4 bytes */
    uint16_t src_port, dst_port;  /* host order */
} proxy_hdr_t;

#define PROXY_AGAIN 0             /* a valid start so far: more bytes needed */
#define PROXY_INVALID (-1)        /* not a PROXY header, or a malformed one */

/* Parse the header at the start of buf[0..len). Returns its length in bytes (> 0; what follows is
 * the proxied stream), PROXY_AGAIN, or PROXY_INVALID. Bytes that cannot begin a header are
 * refused at once, not after more input. */
int proxy_parse(const void *buf, size_t len, proxy_hdr_t *out);

#endif
