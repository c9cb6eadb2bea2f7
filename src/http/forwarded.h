/* Behind a proxy or load balancer (SPEC §6): the client's address from X-Forwarded-For and the
 * scheme from X-Forwarded-Proto, believed only from trustedProxies. PURE: a parsed request and
 * address ranges in, an address out. */
#ifndef FCGIHOST_HTTP_FORWARDED_H
#define FCGIHOST_HTTP_FORWARDED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/parser.h"

/* Is the address (family AF_INET or AF_INET6, network order; an IPv4-mapped IPv6 address counts
 * as its IPv4 one) inside one of the ranges? */
bool http_cidrs_contain(const cfg_cidr_t *ranges, size_t n, int family, const uint8_t *addr);

/* When the peer (*family, addr) is trusted: walks X-Forwarded-For from its right end (all fields
 * of that name, in order, as one list), past trusted addresses, and puts the first untrusted one
 * (or the leftmost, when all are trusted) in *family/addr; an element that is not an address
 * stops the walk where it is. Sets *https when the nearest X-Forwarded-Proto says https.
 * Returns true when the address changed. */
bool http_forwarded_client(const http_request_t *h, const cfg_cidr_t *trusted, size_t n,
                           uint8_t *family, uint8_t addr[16], bool *https);

#endif
