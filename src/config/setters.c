/* Typed setters: each parses one value of the configuration file (or of `ctl set`) and stores it
 * into the section object. They never see a file name or a line number: the loader adds the
 * "file:line: key: " prefix to the message a setter leaves in ctx->err.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config_int.h"
#include "util/buf.h"
#include "util/identity.h"
#include "util/xalloc.h"

/* Enum fields are stored through an int lvalue (or a bool for two-valued settings). */
_Static_assert(sizeof(cfg_symlinks_t) == sizeof(int), "enum size");
_Static_assert(sizeof(cfg_protocol_t) == sizeof(int), "enum size");
_Static_assert(sizeof(cfg_stderr_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(cfg_recycle_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(cfg_resource_type_t) == sizeof(int), "enum size");

#define FIELD(obj, key, type) ((type *)(void *)((char *)(obj) + (key)->off))

/* Longest unix socket path bind(2) takes. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* The setters' message (config_int.h). */
#define fail cfg_fail

void cfg_strv_free(char **v, size_t n) {
    if (v == NULL) return;
    for (size_t i = 0; i < n && v[i] != NULL; i++) free(v[i]);
    free(v);
}

static void strv_push(char ***v, size_t *n, char *s) {
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = s;
}

static void replace_string(char **field, char *s) {
    free(*field);
    *field = s;
}

static bool is_space(char c) {
    return isspace((unsigned char)c) != 0;
}

/* The next token of `*p` separated by any of `seps` (white space is always a separator). Returns
 * its length (0 at the end) and leaves *p on the token. */
static size_t next_token(const char **p, const char *seps) {
    while (**p && (is_space(**p) || strchr(seps, **p))) (*p)++;
    size_t n = 0;
    while ((*p)[n] && !is_space((*p)[n]) && !strchr(seps, (*p)[n])) n++;
    return n;
}

/* For the other setter files (config_int.h). */
int cfg_fail(cfg_setctx_t *ctx, const char *fmt, ...) {
    if (ctx->err && ctx->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, ctx->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

size_t cfg_next_token(const char **p, const char *seps) {
    return next_token(p, seps);
}

void cfg_strv_push(char ***v, size_t *n, char *s) {
    strv_push(v, n, s);
}

char *cfg_where(const cfg_setctx_t *ctx, int pos) {
    if (ctx->where) return ctx->where(ctx->where_arg, pos);
    return xasprintf("line %d", pos);
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers, booleans, enums */

/* Decimal digits only (no sign, no white space), at most UINT64_MAX. Returns the first byte after
 * the digits, or NULL when there are none or on overflow. */
static const char *parse_digits(const char *s, uint64_t *out) {
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return NULL;
        v = v * 10 + d;
    }
    if (p == s) return NULL;
    *out = v;
    return p;
}

int cfg_set_uint(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    uint64_t v;
    const char *end = parse_digits(value, &v);
    if (end == NULL || *end != '\0' || v < key->min || v > key->max)
        return fail(ctx, "'%s' is not a whole number from %" PRIu64 " to %" PRIu64, value, key->min,
                    key->max);
    *FIELD(obj, key, unsigned) = (unsigned)v;
    return 0;
}

/* A byte count: a whole number, optionally followed by k, m or g (binary multiples, any case). */
int cfg_set_bytes(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    uint64_t v, mult = 1;
    const char *end = parse_digits(value, &v);
    if (end != NULL && end[0] != '\0' && end[1] == '\0') {
        switch (*end) {
        case 'k': case 'K': mult = UINT64_C(1) << 10; end++; break;
        case 'm': case 'M': mult = UINT64_C(1) << 20; end++; break;
        case 'g': case 'G': mult = UINT64_C(1) << 30; end++; break;
        default: break;
        }
    }
    if (end == NULL || *end != '\0' || v > UINT64_MAX / mult || v * mult < key->min ||
        v * mult > key->max)
        return fail(ctx,
                    "'%s' is not a size from %" PRIu64 " to %" PRIu64
                    " bytes (a whole number, optionally followed by k, m or g)",
                    value, key->min, key->max);
    *FIELD(obj, key, uint64_t) = v * mult;
    return 0;
}

int cfg_set_bool(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (cfg_ascii_ieq(value, yes[i])) {
            *FIELD(obj, key, bool) = true;
            return 0;
        }
        if (cfg_ascii_ieq(value, no[i])) {
            *FIELD(obj, key, bool) = false;
            return 0;
        }
    }
    return fail(ctx, "'%s' is not a boolean (true or false)", value);
}

int cfg_set_enum(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    for (const cfg_enum_name_t *e = key->names; e->name; e++) {
        if (!cfg_ascii_ieq(value, e->name)) continue;
        if (key->size == sizeof(bool))
            *FIELD(obj, key, bool) = e->value != 0;
        else
            *FIELD(obj, key, int) = e->value;
        return 0;
    }
    buf_t b;
    buf_init(&b);
    for (const cfg_enum_name_t *e = key->names; e->name; e++)
        if (!e->alias) buf_printf(&b, "%s%s", b.len ? ", " : "", e->name);
    fail(ctx, "'%s' is not one of %s", value, b.data);
    buf_dispose(&b);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Strings and paths */

int cfg_set_string(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (*value == '\0') return fail(ctx, "a value is required");
    replace_string(FIELD(obj, key, char *), xstrdup(value));
    return 0;
}

char *cfg_path_resolve(const char *dir, const char *p) {
    buf_t in, out;
    buf_init(&in);
    buf_init(&out);
    if (p[0] != '/' && dir != NULL) buf_append_str(&in, dir);
    buf_append(&in, "/", 1);
    buf_append(&in, p, strlen(p) + 1);
    for (const char *s = in.data; *s;) {
        while (*s == '/') s++;
        size_t n = strcspn(s, "/");
        if (n > 0 && !(n == 1 && s[0] == '.')) {
            buf_append(&out, "/", 1);
            buf_append(&out, s, n);
        }
        s += n;
    }
    if (out.len == 0) buf_append(&out, "/", 1);
    buf_append(&out, "", 1);
    buf_dispose(&in);
    return out.data;
}

static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static int check_path_text(const char *value, cfg_setctx_t *ctx) {
    if (*value == '\0') return fail(ctx, "a path is required");
    if (has_control(value)) return fail(ctx, "the path contains a control character");
    return 0;
}

int cfg_set_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (check_path_text(value, ctx) < 0) return -1;
    replace_string(FIELD(obj, key, char *), cfg_path_resolve(ctx->dir, value));
    return 0;
}

int cfg_set_socket_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (check_path_text(value, ctx) < 0) return -1;
    char *p = cfg_path_resolve(ctx->dir, value);
    if (strlen(p) > SUN_PATH_MAX) {
        free(p);
        return fail(ctx, "'%s' is too long for a unix socket path (at most %zu bytes)", value,
                    (size_t)SUN_PATH_MAX);
    }
    replace_string(FIELD(obj, key, char *), p);
    return 0;
}

/* A path, or "none" (or nothing) for no path at all: NULL. */
int cfg_set_optional_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (*value == '\0' || cfg_ascii_ieq(value, "none")) {
        replace_string(FIELD(obj, key, char *), NULL);
        return 0;
    }
    return cfg_set_path(key, obj, value, ctx);
}

/* A log file, or "-" (standard output/error) or "off", both kept as written. */
int cfg_set_log_target(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (strcmp(value, "-") == 0 || strcmp(value, "off") == 0) {
        replace_string(FIELD(obj, key, char *), xstrdup(value));
        return 0;
    }
    return cfg_set_path(key, obj, value, ctx);
}

/* A user name or numeric uid; "none" (or nothing) stores NULL: no change of identity. The user
 * must exist (as fullPath must): an unknown user is reported at its line by -t, at start and at
 * reload, whoever runs the check, rather than when the first process is spawned. */
int cfg_set_user(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (*value == '\0' || cfg_ascii_ieq(value, "none")) {
        replace_string(FIELD(obj, key, char *), NULL);
        return 0;
    }
    for (const char *p = value; *p; p++)
        if (is_space(*p) || *p == ':' || *p == '/' || (unsigned char)*p < 0x20)
            return fail(ctx, "'%s' is not a user name", value);
    identity_t id;
    char err[256];
    if (identity_lookup(value, &id, err, sizeof(err)) < 0) return fail(ctx, "%s", err);
    identity_dispose(&id);
    replace_string(FIELD(obj, key, char *), xstrdup(value));
    return 0;
}

/* [server] user: a user, as above, but not "none" or empty: the server drops to www-data by
 * default when started as root (SPEC §8), and keeping root must be written out as `user = root`.
 * The default user is not looked up here but at start and by -t (server_user.h), so that a file
 * without the key loads where no www-data exists (a server that is not root never needs it). */
int cfg_set_server_user(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (*value == '\0' || cfg_ascii_ieq(value, "none"))
        return fail(ctx, "'%s' is not a user: when started as root the server drops to " CFG_SERVER_USER_DEFAULT
                    " unless told otherwise; write user = root to keep root", value);
    if (strcmp(value, CFG_SERVER_USER_DEFAULT) == 0) {
        replace_string(FIELD(obj, key, char *), xstrdup(value));
        return 0;
    }
    return cfg_set_user(key, obj, value, ctx);
}

/* A URL path starting with '/', or "" / "off" to disable (stored as ""). */
int cfg_set_url_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (*value == '\0' || strcmp(value, "off") == 0) {
        replace_string(FIELD(obj, key, char *), xstrdup(""));
        return 0;
    }
    if (value[0] != '/') return fail(ctx, "'%s' is not a URL path (it must start with '/')", value);
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
            return fail(ctx, "'%s' is not a URL path (no spaces, '?' or '#')", value);
    replace_string(FIELD(obj, key, char *), xstrdup(value));
    return 0;
}

/* An existing directory (root, tempDir), stored canonical (realpath) so that "is this file
 * inside root" checks can compare resolved paths with it. */
int cfg_set_dir(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (check_path_text(value, ctx) < 0) return -1;
    char *p = cfg_path_resolve(ctx->dir, value);
    struct stat st;
    int rc = -1;
    if (stat(p, &st) < 0)
        fail(ctx, "'%s': %s", p, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        fail(ctx, "'%s' is not a directory", p);
    else {
        char *real = realpath(p, NULL);
        if (real == NULL)
            fail(ctx, "'%s': %s", p, strerror(errno));
        else {
            replace_string(FIELD(obj, key, char *), xstrdup(real));
            free(real);
            rc = 0;
        }
    }
    free(p);
    return rc;
}

/* fullPath: an existing executable regular file. The resolved path is stored even when the check
 * fails, so that handlers naming the application by "fullPath|arguments" still find it and the
 * user sees one error, not two. */
int cfg_set_executable(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (check_path_text(value, ctx) < 0) return -1;
    char *p = cfg_path_resolve(ctx->dir, value);
    replace_string(FIELD(obj, key, char *), p);
    struct stat st;
    if (stat(p, &st) < 0) return fail(ctx, "'%s': %s", p, strerror(errno));
    if (!S_ISREG(st.st_mode)) return fail(ctx, "'%s' is not a regular file", p);
    if (access(p, X_OK) < 0) return fail(ctx, "'%s' is not executable", p);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses */

/* A port: 1..65535 as plain digits. */
static int parse_port(const char *s) {
    uint64_t v;
    const char *end = parse_digits(s, &v);
    if (end == NULL || *end != '\0' || v < 1 || v > 65535) return -1;
    return (int)v;
}

/* Fill l->host/port/kind from "a.b.c.d:port", "*:port" or "[v6]:port". Returns 0 or -1. */
static int parse_tcp_listen(const char *value, cfg_listen_t *l) {
    char host[INET6_ADDRSTRLEN + 8];
    const char *colon;
    size_t hlen;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (close == NULL || close[1] != ':') return -1;
        hlen = (size_t)(close - value - 1);
        colon = close + 1;
        value++;
        l->kind = CFG_LISTEN_TCP6;
    } else {
        colon = strrchr(value, ':');
        if (colon == NULL) return -1;
        hlen = (size_t)(colon - value);
        l->kind = CFG_LISTEN_TCP4;
    }
    if (hlen >= sizeof(host)) return -1;
    memcpy(host, value, hlen);
    host[hlen] = '\0';
    if (l->kind == CFG_LISTEN_TCP4 && strcmp(host, "*") == 0) strcpy(host, "0.0.0.0");
    unsigned char addr[16];
    int af = l->kind == CFG_LISTEN_TCP6 ? AF_INET6 : AF_INET;
    if (inet_pton(af, host, addr) != 1) return -1;
    if ((l->port = parse_port(colon + 1)) < 0) return -1;
    char canon[INET6_ADDRSTRLEN];
    inet_ntop(af, addr, canon, sizeof(canon));
    l->host = xstrdup(canon);
    return 0;
}

static bool same_listen(const cfg_listen_t *a, const cfg_listen_t *b) {
    if (a->kind != b->kind) return false;
    if (a->kind == CFG_LISTEN_UNIX) return strcmp(a->path, b->path) == 0;
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void listen_dispose(cfg_listen_t *l) {
    free(l->text);
    free(l->host);
    free(l->path);
}

void cfg_listen_dispose(cfg_listen_t *l) {
    listen_dispose(l);
}

/* Append the address `value` (owned from here on) with the options in *lp. */
static int listen_address(cfg_server_t *srv, char *value, const cfg_listen_t *lp, cfg_setctx_t *ctx) {
    cfg_listen_t l = *lp;
    l.text = value; /* the address alone: it names the listener across sites and reloads */
    if (strncmp(value, "unix:", 5) == 0) {
        l.kind = CFG_LISTEN_UNIX;
        if (check_path_text(value + 5, ctx) < 0) {
            listen_dispose(&l);
            return -1;
        }
        l.path = cfg_path_resolve(ctx->dir, value + 5);
        if (strlen(l.path) > SUN_PATH_MAX) {
            fail(ctx, "'%s' is too long for a unix socket path (at most %zu bytes)", value + 5,
                 (size_t)SUN_PATH_MAX);
            listen_dispose(&l);
            return -1;
        }
    } else if (parse_tcp_listen(value, &l) < 0) {
        fail(ctx,
             "'%s' is not an address: use a.b.c.d:PORT, [IPv6]:PORT, *:PORT or unix:/path "
             "(PORT from 1 to 65535)",
             value);
        listen_dispose(&l);
        return -1;
    }
    for (size_t i = 0; i < srv->n_listen; i++) {
        if (!same_listen(&srv->listen[i], &l)) continue;
        char *first = cfg_where(ctx, srv->listen[i].line);
        fail(ctx, "'%s' is already given at %s", value, first);
        free(first);
        listen_dispose(&l);
        return -1;
    }
    srv->listen = xrealloc(srv->listen, (srv->n_listen + 1) * sizeof(*srv->listen));
    srv->listen[srv->n_listen++] = l;
    return 0;
}

/* listen (repeatable): appends one address to cfg_server_t.listen. */
int cfg_set_listen(const cfg_key_t *key, void *obj, const char *whole, cfg_setctx_t *ctx) {
    cfg_server_t *srv = obj;
    cfg_listen_t l = {.line = ctx->line};
    /* The address, then options: `tls` (SPEC §7), `h2c` (HTTP/2 with prior knowledge besides
     * HTTP/1.1, in clear text), `proxy` (the PROXY protocol starts every connection). */
    size_t alen = strcspn(whole, " \t");
    char *value = xstrndup(whole, alen);
    for (const char *p = whole + alen; *p;) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, " \t");
        if (n == 0) break;
        if (n == 5 && memcmp(p, "proxy", 5) == 0) {
            l.proxy = true;
        } else if (n == 3 && memcmp(p, "tls", 3) == 0) {
            l.tls = true;
        } else if (n == 3 && memcmp(p, "h2c", 3) == 0) {
            l.h2c = true;
        } else {
            fail(ctx, "'%.*s' after the address of listen is not an option: use tls, h2c or proxy",
                 (int)n, p);
            free(value);
            return -1;
        }
        p += n;
    }
    return listen_address(srv, value, &l, ctx);
}

/* One statusAllow entry: "addr" or "addr/prefix", IPv4 or IPv6; host bits are cleared. */
static int parse_cidr(const char *s, size_t n, cfg_cidr_t *c) {
    char text[INET6_ADDRSTRLEN + 8];
    if (n >= sizeof(text)) return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    char *slash = strchr(text, '/');
    if (slash) *slash = '\0';
    memset(c, 0, sizeof(*c));
    c->family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(c->family, text, c->addr) != 1) return -1;
    int bits = c->family == AF_INET6 ? 128 : 32;
    c->prefix = bits;
    if (slash) {
        uint64_t v;
        const char *end = parse_digits(slash + 1, &v);
        if (end == NULL || *end != '\0' || v > (uint64_t)bits) return -1;
        c->prefix = (int)v;
    }
    for (int i = c->prefix; i < bits; i++) c->addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    return 0;
}

/* CIDRs or single addresses separated by spaces or commas into *out (replacing it); empty: none. */
static int set_cidrs(const char *value, cfg_setctx_t *ctx, cfg_cidr_t **out, size_t *n_out) {
    cfg_cidr_t *v = NULL;
    size_t n = 0, len;
    for (const char *p = value; (len = next_token(&p, ",")) > 0; p += len) {
        cfg_cidr_t c;
        if (parse_cidr(p, len, &c) < 0) {
            free(v);
            return fail(ctx, "'%.*s' is not an IPv4 or IPv6 address or CIDR range", (int)len, p);
        }
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = c;
    }
    free(*out);
    *out = v;
    *n_out = n;
    return 0;
}

/* statusAllow: who may read the status page; empty: nobody. */
int cfg_set_status_allow(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_server_t *srv = obj;
    return set_cidrs(value, ctx, &srv->status_allow, &srv->n_status_allow);
}

/* trustedProxies: peers whose X-Forwarded-For and X-Forwarded-Proto are believed; empty: none. */
int cfg_set_trusted_proxies(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_server_t *srv = obj;
    return set_cidrs(value, ctx, &srv->trusted_proxies, &srv->n_trusted_proxies);
}

/* ------------------------------------------------------------------------------------------ */
/* Lists of names */

/* index: file names separated by white space; may be empty (no index files). */
int cfg_set_index(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_strv_t *field = FIELD(obj, key, cfg_strv_t);
    char **v = NULL;
    size_t n = 0, len;
    for (const char *p = value; (len = next_token(&p, "")) > 0; p += len) {
        bool dots = (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.');
        if (memchr(p, '/', len) || dots) {
            cfg_strv_free(v, n);
            return fail(ctx, "'%.*s' is not a file name", (int)len, p);
        }
        strv_push(&v, &n, xstrndup(p, len));
    }
    cfg_strv_free(field->v, field->n);
    field->v = v;
    field->n = n;
    return 0;
}

static bool is_env_name(const char *s, size_t n) {
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
    return true;
}

/* env (repeatable): "NAME=VALUE" appended to cfg_app_t.env; the value may be empty. */
int cfg_set_env(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_app_t *app = obj;
    const char *eq = strchr(value, '=');
    size_t n = eq ? (size_t)(eq - value) : strlen(value);
    if (eq == NULL || !is_env_name(value, n))
        return fail(ctx, "'%s' is not NAME=VALUE with NAME made of letters, digits and '_'", value);
    if (n == 13 && memcmp(value, "_FCGI_X_PIPE_", 13) == 0)
        return fail(ctx, "_FCGI_X_PIPE_ is set by fcgihost itself");
    for (size_t i = 0; i < app->n_env; i++)
        if (strncmp(app->env[i], value, n + 1) == 0)
            return fail(ctx, "%.*s is already set in this section", (int)n, value);
    strv_push(&app->env, &app->n_env, xstrdup(value));
    return 0;
}

/* utf8ServerVariables: "*", or variable names separated by spaces or commas (stored upper-case),
 * or nothing at all: no variable carries UTF-8. */
int cfg_set_utf8_vars(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_app_t *app = obj;
    if (strcmp(value, "*") == 0) {
        cfg_strv_free(app->utf8_vars, app->n_utf8_vars);
        app->utf8_vars = NULL;
        app->n_utf8_vars = 0;
        app->utf8_all = true;
        return 0;
    }
    char **v = NULL;
    size_t n = 0, len;
    for (const char *p = value; (len = next_token(&p, ",")) > 0; p += len) {
        if (!is_env_name(p, len)) {
            cfg_strv_free(v, n);
            return fail(ctx, "'%.*s' is not a server variable name (use * alone for all)",
                        (int)len, p);
        }
        char *name = xstrndup(p, len);
        for (char *c = name; *c; c++) *c = (char)toupper((unsigned char)*c);
        strv_push(&v, &n, name);
    }
    cfg_strv_free(app->utf8_vars, app->n_utf8_vars);
    app->utf8_vars = v;
    app->n_utf8_vars = n;
    app->utf8_all = false;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* arguments */

int cfg_split_arguments(const char *text, const char *first, char ***argv) {
    char **v = NULL;
    size_t n = 0;
    buf_t w;
    buf_init(&w);
    if (first) strv_push(&v, &n, xstrdup(first));
    for (const char *p = text;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') break;
        bool quoted = false;
        w.len = 0;
        for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (quoted && p[0] == '\\' && (p[1] == '"' || p[1] == '\\'))
                buf_append(&w, ++p, 1);
            else
                buf_append(&w, p, 1);
        }
        if (quoted) {
            buf_dispose(&w);
            cfg_strv_free(v, n);
            return -1;
        }
        strv_push(&v, &n, xstrndup(w.len ? w.data : "", w.len));
    }
    buf_dispose(&w);
    if (argv == NULL) {
        cfg_strv_free(v, n);
        return 0;
    }
    strv_push(&v, &n, NULL);
    *argv = v;
    return 0;
}

/* arguments: kept as written; argv is built once fullPath is known (the loader does that). */
int cfg_set_arguments(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    if (cfg_split_arguments(value, NULL, NULL) < 0)
        return fail(ctx, "'%s' has a '\"' without its closing '\"'", value);
    replace_string(FIELD(obj, key, char *), xstrdup(value));
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Handler mappings */

/* path: a URL prefix starting with '/', or a file-name pattern ("*.php", "*", "index.php"). */
cfg_path_kind_t cfg_path_kind(const char *path, size_t *n) {
    size_t len = strlen(path);
    if (path[0] == '/') {
        while (len > 1 && path[len - 1] == '/') len--; /* "/app/" and "/app" mean the same mount */
        *n = len;
        return CFG_PATH_PREFIX;
    }
    *n = len;
    if (strcmp(path, "*") == 0) return CFG_PATH_ANY;
    if (path[0] == '*' && !strpbrk(path + 1, "*?[\\")) {
        *n = len - 1;
        return CFG_PATH_SUFFIX;
    }
    return CFG_PATH_GLOB;
}

int cfg_parse_rule_path(const char *value, cfg_setctx_t *ctx, char **path, bool *prefix,
                        cfg_path_kind_t *kind, size_t *n) {
    if (*value == '\0') return fail(ctx, "a file-name pattern or a URL prefix is required");
    bool pfx = value[0] == '/';
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || (!pfx && *p == '/'))
            return fail(ctx,
                        "'%s' is neither a file-name pattern (\"*.php\") nor a URL prefix "
                        "(\"/app/\")",
                        value);
    replace_string(path, xstrdup(value));
    *prefix = pfx;
    *kind = cfg_path_kind(value, n);
    return 0;
}

int cfg_set_handler_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_handler_t *h = obj;
    return cfg_parse_rule_path(value, ctx, &h->path, &h->path_is_prefix, &h->path_kind,
                               &h->path_n);
}

/* An HTTP method token (RFC 9110 tchar). */
static bool is_token(const char *s, size_t n) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i])) return false;
    return n > 0;
}

/* verb: "*" or comma-separated methods, stored upper-case. */
int cfg_set_verbs(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_handler_t *h = obj;
    char **v = NULL;
    size_t n = 0, len;
    bool any = strcmp(value, "*") == 0;
    for (const char *p = value; !any && (len = next_token(&p, ",")) > 0; p += len) {
        if (!is_token(p, len) || (len == 1 && *p == '*')) {
            cfg_strv_free(v, n);
            return fail(ctx, "'%.*s' is not a method name (use * alone for all)", (int)len, p);
        }
        char *m = xstrndup(p, len);
        for (char *c = m; *c; c++) *c = (char)toupper((unsigned char)*c);
        strv_push(&v, &n, m);
    }
    if (!any && n == 0)
        return fail(ctx, "'*' or a list of methods such as GET,HEAD,POST is required");
    cfg_strv_free(h->verbs, h->n_verbs);
    h->verbs = v;
    h->n_verbs = n;
    h->any_verb = any;
    return 0;
}
