/* Rewrite rules (SPEC §6, IIS URL Rewrite inbound rules): run a site's [rewrite:NAME] rules over
 * a decoded path and its query string. PURE: the file checks of `unless` go through a callback.
 *
 * Substitution: $0..$9 are the match's groups (a group that did not take part is empty), "$$" is
 * a '$'. The first '?' written in `to` itself splits the result into a path and a query string.
 * Groups land in the path as they are (the path is decoded text); in the query string, and in a
 * redirect's Location, the bytes that would change its meaning (space, '"', '#', '%', '&', '+',
 * '?', controls, non-ASCII...) are percent-encoded, as nginx escapes captures in arguments. The
 * client's query string, when not empty, is appended after '&' (or after '?' when `to` has none).
 * A rewritten path goes through the same checks as a client's (http_path_decode): a "." or ".."
 * segment is refused (400), a segment starting with '.' too (403). */
#ifndef FCGIHOST_HTTP_REWRITE_H
#define FCGIHOST_HTTP_REWRITE_H
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "util/buf.h"

#define REWRITE_MAX 10 /* rewrites and internal re-routings of one request, in all */

typedef enum rewrite_outcome {
    REWRITE_NONE,       /* no rule changed anything */
    REWRITE_DONE,       /* path and/or query changed */
    REWRITE_REDIRECT,   /* answer `status` with `location` */
    REWRITE_LOOP,       /* more than REWRITE_MAX rewrites: 500 */
    REWRITE_BAD,        /* the result is not a safe path: `status` (400 or 403) */
} rewrite_outcome_t;

/* What `unless` asks about a path: bit 1 an existing file, bit 2 an existing directory. */
#define REWRITE_IS_FILE 1
#define REWRITE_IS_DIR 2
typedef int (*rewrite_probe_fn)(void *arg, const char *path);

typedef struct rewrite_io {
    const char *in_path; /* in: the decoded path (NUL-terminated), borrowed: copied only when a
                          * rule applies, so that a request no rule changes costs no allocation */
    size_t in_path_len;
    const char *in_query; /* in: the client's query string (borrowed), when has_query */
    size_t in_query_len;
    bool has_query;      /* in/out */
    buf_t path;          /* out, REWRITE_DONE: the new decoded path (NUL-terminated) */
    buf_t query;         /* out, REWRITE_DONE: the query string (NUL-terminated; empty = none) */
    bool query_set;      /* a rule has set the query (else it is the client's) */
    unsigned *count;     /* in/out: rewrites so far for the request */
    int status;          /* REWRITE_REDIRECT: 301/302/307/308; REWRITE_BAD: 400/403 */
    buf_t location;      /* REWRITE_REDIRECT: the Location value */
} rewrite_io_t;

/* `path` and `query` are borrowed for the life of `io`; `query` NULL when the request has none. */
void rewrite_io_init(rewrite_io_t *io, unsigned *count, const char *path, size_t path_len,
                     const char *query, size_t query_len);
void rewrite_io_dispose(rewrite_io_t *io);

rewrite_outcome_t rewrite_run(const cfg_t *cfg, const cfg_site_t *site, rewrite_io_t *io,
                              rewrite_probe_fn probe, void *arg);

#endif
