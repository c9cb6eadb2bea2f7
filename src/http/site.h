/* Sites at run time (SPEC §6): what a configuration generation's sites need beyond their
 * settings — open document roots and alias directories, access-log targets, the host-name table
 * that picks a request's site — and the access logs themselves.
 *
 * Ownership: an http_sites_t belongs to one generation (gen_t.sites); it is built when the
 * generation is (http_sites_open, before the generation is published) and freed by the owner's
 * release hook on the generation's last reference, so a request (which holds its generation)
 * may use its site, roots and log for as long as it lives. Access-log targets are shared by
 * every site and generation naming the same file (reference counted, listed in the server). */
#ifndef FCGIHOST_HTTP_SITE_H
#define FCGIHOST_HTTP_SITE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/http_server.h"
#include "util/buf.h"
#include "util/str.h"

/* A directory files are served from: the site root or an alias directory. */
typedef struct http_root {
    int fd;                  /* O_PATH descriptor */
    const char *real;        /* canonical path (borrowed from the configuration) */
    size_t real_len;
    cfg_symlinks_t symlinks;
} http_root_t;

/* One access-log target: a file, or stdout ("-"). Lines gather in buf and are written once per
 * loop iteration (http_logs_flush). */
typedef struct http_log {
    struct http_log *next;
    char *path;              /* "-" for stdout */
    int fd;
    buf_t buf;
    unsigned refs;
} http_log_t;

typedef struct http_site {
    const cfg_site_t *cfg;
    size_t index;            /* in cfg->sites */
    http_root_t root;
    http_root_t *aliases;    /* one per cfg->aliases entry */
    http_log_t *log;         /* NULL: accessLog = off */
    struct ssl_ctx_st *tls_ctx; /* its certificate's TLS context (a reference); NULL: none */
    int tls_port;            /* the port of a tls listener serving it (redirectToHttps); 0: none */
} http_site_t;

typedef struct http_sites http_sites_t;

/* Open the roots, alias directories and logs of cfg's sites and load their certificates. NULL on
 * failure, logged (a root that cannot be opened keeps a reload from applying). A certificate or
 * key that cannot be loaded while `prev` (the generation in use; NULL at start) has one for the
 * site of the same name keeps that one, logged with the file's name (SPEC §7). */
http_sites_t *http_sites_open(http_server_t *hs, const cfg_t *cfg, const http_sites_t *prev);

/* The TLS context a connection on listener listen_id starts with, before SNI: the default site's
 * of that listener, else the first site's with a certificate; NULL: none. */
struct ssl_ctx_st *http_sites_tls_ctx(const http_sites_t *ss, unsigned listen_id);
void http_sites_free(http_sites_t *ss);

/* The site for a request: by its Host (authority) among the sites reachable on the listener it
 * came in on; NULL when none (404). */
const http_site_t *http_site_for(const http_sites_t *ss, str_t host, unsigned listen_id);

/* A small stable number for a listen address text (the server's listeners carry it; the sites
 * use it to know which listeners are theirs). */
unsigned http_listen_id(http_server_t *hs, const char *text);

/* The log of requests that have no site (refused heads, unknown hosts): the default site's, else
 * the first site's. */
http_log_t *http_sites_fallback_log(const http_sites_t *ss);

/* The directory a URL path is served from (an alias directory when one's prefix covers it) and
 * the path's remainder under it ("/" when the path is the prefix itself). */
const http_root_t *http_site_map(const http_site_t *site, const char *path, const char **rest);

/* Access logs (all sites, all generations): write what is gathered, reopen after SIGUSR1,
 * close at exit. */
void http_logs_flush(http_server_t *hs);
void http_logs_reopen(http_server_t *hs);
void http_logs_close(http_server_t *hs);

#endif
