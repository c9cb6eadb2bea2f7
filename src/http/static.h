/* Static files: safe resolution under root, a small revalidating cache of open files (small ones
 * kept in memory), conditional requests, single ranges, and sendfile for large bodies. */
#ifndef FCGIHOST_HTTP_STATIC_H
#define FCGIHOST_HTTP_STATIC_H
#include <stdbool.h>
#include <stdint.h>

typedef struct request request_t;
#include "http/http_server.h"

typedef struct file_cache file_cache_t;

file_cache_t *file_cache_new(void);
/* Drop every entry (after a reload changed root or symlink rules). */
void file_cache_clear(file_cache_t *fc);
/* Drop the entries past their time (maintenance tick): their descriptors are closed unless a
 * response in flight still uses them. */
void file_cache_sweep(file_cache_t *fc, uint64_t now);
void file_cache_free(file_cache_t *fc);

/* Serve r->path from the site's document root (or alias directory). Answers every case itself (404, 403, 301, 405, ...). */
void static_serve(request_t *r);

/* Result of resolving a decoded URL path under root. */
typedef enum static_kind {
    STATIC_MISSING,   /* no such file (404) */
    STATIC_FORBIDDEN, /* exists but refused: outside root via a link, permissions (403) */
    STATIC_FILE,      /* a regular file */
    STATIC_DIR,       /* a directory */
    STATIC_OTHER,     /* a device, socket, fifo (403) */
    STATIC_UNAVAILABLE, /* cannot be opened now: out of descriptors or memory (503, never cached) */
} static_kind_t;

/* Classify `path` (decoded, absolute URL path) under the site's root (or the alias directory
 * covering it) with its symlink rules, without opening it for the response. Used by handler
 * mappings (resourceType, PATH_INFO), index files, rewrite conditions and fallback. */
struct http_site;
static_kind_t static_probe(http_server_t *s, const struct http_site *site, const char *path);

#endif
