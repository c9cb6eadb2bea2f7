/* Sites at run time. See site.h. */
#include "http/site.h"
#include "http/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Which sites a listener reaches: every site, or the ones whose own `listen` names it. */
typedef struct listen_scope {
    unsigned id;
    size_t *sites;
    size_t n;
} listen_scope_t;

typedef struct host_slot {
    const char *name;        /* lower case; NULL: empty */
    size_t len;
    size_t site;
} host_slot_t;

typedef struct wildcard {
    const char *suffix;      /* ".example.org" */
    size_t len;
    size_t site;
} wildcard_t;

struct http_sites {
    http_server_t *hs;
    http_site_t *v;
    size_t n;
    host_slot_t *exact;      /* open addressing, power-of-two size */
    size_t exact_mask;
    wildcard_t *wild;        /* longest suffix first */
    size_t n_wild;
    long default_site;       /* index, -1: none */
    listen_scope_t *scopes;  /* site-only listeners */
    size_t n_scopes;
};

/* ---- access-log targets ---- */

static http_log_t *log_get(http_server_t *hs, const char *target) {
    if (target == NULL || strcmp(target, "off") == 0) return NULL;
    for (http_log_t *l = hs->logs; l; l = l->next) {
        if (strcmp(l->path, target) == 0) {
            l->refs++;
            return l;
        }
    }
    int fd = 1;
    if (strcmp(target, "-") != 0) {
        fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            log_error("cannot open access log %s: %s", target, strerror(errno));
            return NULL;
        }
    }
    http_log_t *l = xcalloc(1, sizeof(*l));
    l->path = xstrdup(target);
    l->fd = fd;
    l->refs = 1;
    buf_init(&l->buf);
    l->next = hs->logs;
    hs->logs = l;
    return l;
}

static void log_write(http_log_t *l) {
    size_t off = 0;
    while (off < l->buf.len && l->fd >= 0) {
        ssize_t w = write(l->fd, l->buf.data + off, l->buf.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    l->buf.len = 0;
}

static void log_put(http_server_t *hs, http_log_t *l) {
    if (l == NULL || --l->refs > 0) return;
    log_write(l);
    for (http_log_t **pl = &hs->logs; *pl; pl = &(*pl)->next) {
        if (*pl != l) continue;
        *pl = l->next;
        break;
    }
    if (l->fd > 2) close(l->fd);
    buf_dispose(&l->buf);
    free(l->path);
    free(l);
}

void http_logs_flush(http_server_t *hs) {
    for (http_log_t *l = hs->logs; l; l = l->next)
        if (l->buf.len) log_write(l);
}

void http_logs_reopen(http_server_t *hs) {
    for (http_log_t *l = hs->logs; l; l = l->next) {
        log_write(l);
        if (l->fd <= 2) continue;
        int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            log_error("cannot reopen access log %s: %s", l->path, strerror(errno));
            continue;
        }
        dup2(fd, l->fd);
        close(fd);
    }
}

void http_logs_close(http_server_t *hs) {
    http_logs_flush(hs);
}

/* ---- listeners ---- */

unsigned http_listen_id(http_server_t *hs, const char *text) {
    for (size_t i = 0; i < hs->n_listen_texts; i++)
        if (strcmp(hs->listen_texts[i], text) == 0) return (unsigned)i;
    hs->listen_texts = xrealloc(hs->listen_texts, (hs->n_listen_texts + 1) * sizeof(char *));
    hs->listen_texts[hs->n_listen_texts] = xstrdup(text);
    return (unsigned)hs->n_listen_texts++;
}

static bool server_listens(const cfg_t *cfg, const char *text) {
    for (size_t i = 0; i < cfg->server.n_listen; i++)
        if (strcmp(cfg->server.listen[i].text, text) == 0) return true;
    return false;
}

static void add_scope(http_sites_t *ss, unsigned id, size_t site) {
    listen_scope_t *sc = NULL;
    for (size_t i = 0; i < ss->n_scopes && !sc; i++)
        if (ss->scopes[i].id == id) sc = &ss->scopes[i];
    if (sc == NULL) {
        ss->scopes = xrealloc(ss->scopes, (ss->n_scopes + 1) * sizeof(*ss->scopes));
        sc = &ss->scopes[ss->n_scopes++];
        *sc = (listen_scope_t){.id = id};
    }
    sc->sites = xrealloc(sc->sites, (sc->n + 1) * sizeof(size_t));
    sc->sites[sc->n++] = site;
}

/* ---- host names ---- */

static uint64_t hash_host(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        h = (h ^ c) * 1099511628211ull;
    }
    return h;
}

static void exact_insert(http_sites_t *ss, const char *name, size_t site) {
    size_t len = strlen(name);
    size_t i = hash_host(name, len) & ss->exact_mask;
    while (ss->exact[i].name) i = (i + 1) & ss->exact_mask;
    ss->exact[i] = (host_slot_t){.name = name, .len = len, .site = site};
}

static long exact_find(const http_sites_t *ss, const char *name, size_t len) {
    size_t i = hash_host(name, len) & ss->exact_mask;
    for (; ss->exact[i].name; i = (i + 1) & ss->exact_mask)
        if (ss->exact[i].len == len && strncasecmp(ss->exact[i].name, name, len) == 0)
            return (long)ss->exact[i].site;
    return -1;
}

static int wild_cmp(const void *a, const void *b) {
    const wildcard_t *x = a, *y = b;
    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

/* ---- opening ---- */

static int root_open(http_root_t *r, const char *dir, cfg_symlinks_t symlinks) {
    r->fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0) {
        log_error("cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    r->real = dir; /* canonical since the configuration was loaded */
    r->real_len = strlen(dir);
    r->symlinks = symlinks;
    return 0;
}

static void site_close(http_server_t *hs, http_site_t *s) {
    if (s->root.fd >= 0) close(s->root.fd);
    for (size_t i = 0; s->aliases && i < s->cfg->aliases.n; i++)
        if (s->aliases[i].fd >= 0) close(s->aliases[i].fd);
    free(s->aliases);
    log_put(hs, s->log);
    if (s->tls_ctx) http_tls_ctx_unref(s->tls_ctx);
}

void http_sites_free(http_sites_t *ss) {
    if (ss == NULL) return;
    for (size_t i = 0; i < ss->n; i++) site_close(ss->hs, &ss->v[i]);
    free(ss->v);
    free(ss->exact);
    free(ss->wild);
    for (size_t i = 0; i < ss->n_scopes; i++) free(ss->scopes[i].sites);
    free(ss->scopes);
    free(ss);
}

/* The certificate of site i: loaded, shared with an earlier site of the same files, or kept from
 * the previous generation when the files fail. False when the site has none it needs. */
static bool site_tls(http_sites_t *ss, size_t i, const cfg_t *cfg, const http_sites_t *prev) {
    http_site_t *s = &ss->v[i];
    const cfg_site_t *c = s->cfg;
    for (size_t l = 0; l < cfg->server.n_listen && !s->tls_port; l++)
        if (cfg->server.listen[l].tls) s->tls_port = cfg->server.listen[l].port;
    for (size_t l = 0; l < c->n_listen && !s->tls_port; l++)
        if (c->listen[l].tls) s->tls_port = c->listen[l].port;
    if (c->tls_certificate == NULL) return true;
    for (size_t j = 0; j < i; j++) {
        const cfg_site_t *o = ss->v[j].cfg;
        if (ss->v[j].tls_ctx && o->tls_certificate && strcmp(o->tls_certificate, c->tls_certificate) == 0 &&
            ((o->tls_key == NULL && c->tls_key == NULL) ||
             (o->tls_key && c->tls_key && strcmp(o->tls_key, c->tls_key) == 0))) {
            s->tls_ctx = ss->v[j].tls_ctx;
            http_tls_ctx_ref(s->tls_ctx);
            return true;
        }
    }
    char err[512];
    s->tls_ctx = http_tls_ctx_new(c->tls_certificate, c->tls_key, cfg->server.tls_ciphers, err, sizeof(err));
    if (s->tls_ctx) return true;
    for (size_t j = 0; prev && j < prev->n; j++) {
        if (prev->v[j].tls_ctx == NULL || strcmp(prev->v[j].cfg->name, c->name) != 0) continue;
        s->tls_ctx = prev->v[j].tls_ctx;
        http_tls_ctx_ref(s->tls_ctx);
        log_error("site %s: %s; keeping the certificate loaded before", c->name, err);
        return true;
    }
    log_error("site %s: %s", c->name, err);
    return false;
}

struct ssl_ctx_st *http_sites_tls_ctx(const http_sites_t *ss, unsigned listen_id) {
    const http_site_t *d = http_site_for(ss, STR_NULL, listen_id);
    if (d && d->tls_ctx) return d->tls_ctx;
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i].tls_ctx) return ss->v[i].tls_ctx;
    return NULL;
}

http_sites_t *http_sites_open(http_server_t *hs, const cfg_t *cfg, const http_sites_t *prev) {
    http_sites_t *ss = xcalloc(1, sizeof(*ss));
    ss->hs = hs;
    ss->n = cfg->n_sites;
    ss->v = xcalloc(ss->n, sizeof(*ss->v));
    ss->default_site = -1;
    size_t n_exact = 0;
    bool ok = true;
    for (size_t i = 0; i < ss->n; i++) {
        http_site_t *s = &ss->v[i];
        const cfg_site_t *c = &cfg->sites[i];
        s->cfg = c;
        s->index = i;
        s->root.fd = -1;
        s->aliases = xcalloc(c->aliases.n ? c->aliases.n : 1, sizeof(*s->aliases));
        for (size_t a = 0; a < c->aliases.n; a++) s->aliases[a].fd = -1;
        if (root_open(&s->root, c->root, c->symlinks) < 0) ok = false;
        for (size_t a = 0; a < c->aliases.n; a++)
            if (root_open(&s->aliases[a], c->aliases.v[a].dir, c->symlinks) < 0) ok = false;
        s->log = log_get(hs, c->access_log);
        if (!site_tls(ss, i, cfg, prev)) ok = false;
        for (size_t h = 0; h < c->hosts.n; h++) {
            const char *name = c->hosts.v[h];
            if (strcmp(name, "*") == 0) {
                ss->default_site = (long)i;
            } else if (name[0] == '*') {
                ss->wild = xrealloc(ss->wild, (ss->n_wild + 1) * sizeof(*ss->wild));
                ss->wild[ss->n_wild++] = (wildcard_t){.suffix = name + 1, .len = strlen(name + 1),
                                                      .site = i};
            } else {
                n_exact++;
            }
        }
        for (size_t l = 0; l < c->n_listen; l++)
            if (!server_listens(cfg, c->listen[l].text))
                add_scope(ss, http_listen_id(hs, c->listen[l].text), i);
    }
    size_t cap = 8;
    while (cap < n_exact * 2) cap <<= 1;
    ss->exact = xcalloc(cap, sizeof(*ss->exact));
    ss->exact_mask = cap - 1;
    for (size_t i = 0; i < ss->n; i++)
        for (size_t h = 0; h < cfg->sites[i].hosts.n; h++)
            if (cfg->sites[i].hosts.v[h][0] != '*') exact_insert(ss, cfg->sites[i].hosts.v[h], i);
    if (ss->n_wild > 1) qsort(ss->wild, ss->n_wild, sizeof(*ss->wild), wild_cmp);
    if (!ok) {
        http_sites_free(ss);
        return NULL;
    }
    return ss;
}

/* ---- lookups ---- */

static bool in_scope(const listen_scope_t *sc, size_t site) {
    if (sc == NULL) return true;
    for (size_t i = 0; i < sc->n; i++)
        if (sc->sites[i] == site) return true;
    return false;
}

const http_site_t *http_site_for(const http_sites_t *ss, str_t host, unsigned listen_id) {
    const listen_scope_t *sc = NULL;
    for (size_t i = 0; i < ss->n_scopes && !sc; i++)
        if (ss->scopes[i].id == listen_id) sc = &ss->scopes[i];
    if (ss->n == 1 && in_scope(sc, 0) && ss->v[0].cfg->is_default) return &ss->v[0];
    /* The name without port ("[v6]:port" keeps its brackets) and without a trailing dot. */
    size_t len = host.len;
    if (len && host.p[0] != '[') {
        const char *colon = memchr(host.p, ':', len);
        if (colon) len = (size_t)(colon - host.p);
    } else if (len) {
        const char *rb = memchr(host.p, ']', len);
        if (rb) len = (size_t)(rb - host.p) + 1;
    }
    if (len > 1 && host.p[len - 1] == '.') len--;
    if (len) {
        long i = exact_find(ss, host.p, len);
        if (i >= 0 && in_scope(sc, (size_t)i)) return &ss->v[i];
        for (size_t w = 0; w < ss->n_wild; w++) {
            const wildcard_t *wc = &ss->wild[w];
            if (len > wc->len && strncasecmp(host.p + len - wc->len, wc->suffix, wc->len) == 0 &&
                in_scope(sc, wc->site))
                return &ss->v[wc->site];
        }
    }
    if (ss->default_site >= 0 && in_scope(sc, (size_t)ss->default_site))
        return &ss->v[ss->default_site];
    return NULL;
}

const http_root_t *http_site_map(const http_site_t *site, const char *path, const char **rest) {
    const cfg_aliases_t *al = &site->cfg->aliases;
    size_t best = 0;
    long found = -1;
    for (size_t i = 0; i < al->n; i++) {
        size_t n = al->v[i].prefix_len;
        if (n <= best || strncmp(path, al->v[i].prefix, n) != 0) continue;
        if (path[n] != '/' && path[n] != '\0') continue; /* "/media" does not cover "/mediax" */
        best = n;
        found = (long)i;
    }
    if (found < 0) {
        *rest = path;
        return &site->root;
    }
    *rest = path[best] ? path + best : "/";
    return &site->aliases[found];
}

http_log_t *http_sites_fallback_log(const http_sites_t *ss) {
    if (ss == NULL || ss->n == 0) return NULL;
    return ss->v[ss->default_site >= 0 ? ss->default_site : 0].log;
}
