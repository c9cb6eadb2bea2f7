/* Choosing what answers a request (SPEC §6): the site's rewrite rules, deny patterns, index files,
 * the handler mappings in file order, static files, the fallback and the error pages. */
#ifndef FCGIHOST_HTTP_DISPATCH_H
#define FCGIHOST_HTTP_DISPATCH_H
#include <stdbool.h>
#include <stdint.h>

typedef struct request request_t;
typedef struct http_server http_server_t;

/* Decode and check the path, then hand the request to its handler. Always answers. */
void dispatch_request(request_t *r);

/* resp_error's hook: when the request's site has an errorPage for `status` and nothing was sent
 * yet, the request is routed again to that page from the deferred pass (after the caller's stack
 * unwound) and true is returned: the caller treats the request as finished. */
bool dispatch_error_page(request_t *r, int status);

/* The deferred pass's part: route the requests dispatch_error_page queued. */
void dispatch_run_deferred(http_server_t *s);

/* Bit k: the site's header rule k (at most 64) applies to r->path. */
uint64_t dispatch_header_rules(const request_t *r);

#endif
