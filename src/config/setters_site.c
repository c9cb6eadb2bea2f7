/* Setters of the SPEC §6 keys: sites ([site:NAME] and [server] as the one site), rewrite rules
 * and header rules. Like setters.c they see no file name: the loader prefixes their messages. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config_int.h"
#include "util/str.h"
#include "util/xalloc.h"

#define FIELD(obj, key, type) ((type *)(void *)((char *)(obj) + (key)->off))

/* Host names: letters, digits, '-', '_' and '.', or "*" alone, or "*." followed by a name. */
static bool valid_host(const char *h, size_t n) {
    if (n == 1 && h[0] == '*') return true;
    if (n >= 2 && h[0] == '*' && h[1] == '.') {
        h += 2;
        n -= 2;
    }
    if (n == 0 || n > 253 || h[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.') return false;
        if (c == '.' && i + 1 < n && h[i + 1] == '.') return false;
    }
    return true;
}

int cfg_set_hosts(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_site_t *site = obj;
    char **v = NULL;
    size_t n = 0, len;
    for (const char *p = value; (len = cfg_next_token(&p, ",")) > 0; p += len) {
        size_t hl = len;
        if (hl > 1 && p[hl - 1] == '.') hl--; /* "example.org." is "example.org" */
        if (!valid_host(p, hl)) {
            cfg_strv_free(v, n);
            return cfg_fail(ctx,
                            "'%.*s' is not a host name (a name, \"*.suffix\" or \"*\" alone)",
                            (int)len, p);
        }
        char *h = xstrndup(p, hl);
        for (char *c = h; *c; c++) *c = (char)tolower((unsigned char)*c);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i], h) != 0) continue;
            cfg_fail(ctx, "'%s' is listed twice", h);
            free(h);
            cfg_strv_free(v, n);
            return -1;
        }
        cfg_strv_push(&v, &n, h);
    }
    if (n == 0) return cfg_fail(ctx, "at least one host name (or \"*\") is required");
    cfg_strv_free(site->hosts.v, site->hosts.n);
    site->hosts.v = v;
    site->hosts.n = n;
    site->is_default = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], "*") == 0) site->is_default = true;
    return 0;
}

/* The same syntax and checks as [server] listen: the address goes through cfg_set_listen on a
 * scratch [server] holding the site's list. */
int cfg_set_site_listen(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_site_t *site = obj;
    cfg_server_t tmp = {.listen = site->listen, .n_listen = site->n_listen};
    int rc = cfg_set_listen(key, &tmp, value, ctx);
    site->listen = tmp.listen;
    site->n_listen = tmp.n_listen;
    return rc;
}

/* A URL path as a rule or page target: starts with '/', no white space or control characters,
 * no '#'; an optional "?query". Returns NULL when fine, else why. */
static const char *url_problem(const char *v, bool allow_query) {
    if (v[0] != '/') return "it must start with '/'";
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f) return "no spaces or control characters";
        if (c == '#') return "no '#'";
        if (c == '?' && !allow_query) return "no '?'";
    }
    return NULL;
}

/* Dot segments: "/a/../b" could leave root once an alias or a rule joins it. */
static bool has_dot_segment(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '/') continue;
        size_t j = i + 1;
        while (j < n && p[j] != '/') j++;
        size_t len = j - i - 1;
        if ((len == 1 && p[i + 1] == '.') || (len == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
            return true;
    }
    return false;
}

/* "A B": exactly two words; false otherwise. */
static bool two_words(const char *value, str_t *a, str_t *b) {
    const char *p = value;
    size_t alen = cfg_next_token(&p, "");
    *a = str_make(p, alen);
    const char *q = p + alen;
    size_t blen = cfg_next_token(&q, "");
    *b = str_make(q, blen);
    const char *r = q + blen;
    return alen && blen && cfg_next_token(&r, "") == 0;
}

int cfg_set_alias(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_aliases_t *list = FIELD(obj, key, cfg_aliases_t);
    str_t pw, dw;
    if (!two_words(value, &pw, &dw))
        return cfg_fail(ctx, "expected URL-PREFIX DIRECTORY (\"/media /srv/media\")");
    const char *prefix = pw.p, *dir = dw.p;
    size_t plen = pw.len, dlen = dw.len;
    char *pre = xstrndup(prefix, plen);
    const char *why = url_problem(pre, false);
    if (why == NULL && has_dot_segment(pre, plen)) why = "no '.' or '..' segments";
    while (plen > 1 && pre[plen - 1] == '/') pre[--plen] = '\0';
    if (why == NULL && plen == 1) why = "\"/\" is the root: set root instead";
    if (why) {
        cfg_fail(ctx, "'%s' is not a URL prefix: %s", pre, why);
        free(pre);
        return -1;
    }
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->v[i].prefix, pre) != 0) continue;
        char *first = cfg_where(ctx, list->v[i].line);
        cfg_fail(ctx, "the prefix %s is already given at %s", pre, first);
        free(first);
        free(pre);
        return -1;
    }
    char *d = xstrndup(dir, dlen);
    char *abs = cfg_path_resolve(ctx->dir, d);
    free(d);
    struct stat st;
    char *real = NULL;
    if (stat(abs, &st) < 0)
        cfg_fail(ctx, "'%s': %s", abs, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        cfg_fail(ctx, "'%s' is not a directory", abs);
    else if ((real = realpath(abs, NULL)) == NULL)
        cfg_fail(ctx, "'%s': %s", abs, strerror(errno));
    free(abs);
    if (real == NULL) {
        free(pre);
        return -1;
    }
    list->v = xrealloc(list->v, (list->n + 1) * sizeof(*list->v));
    list->v[list->n++] = (cfg_alias_t){.prefix = pre, .prefix_len = plen, .dir = real,
                                       .line = ctx->line};
    return 0;
}

/* fallback: a URL path with an optional query; "none" or empty: no fallback. */
int cfg_set_url(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    char **field = FIELD(obj, key, char *);
    if (*value == '\0' || strcmp(value, "none") == 0) {
        free(*field);
        *field = NULL;
        return 0;
    }
    const char *why = url_problem(value, true);
    const char *qm = strchr(value, '?');
    if (why == NULL && has_dot_segment(value, qm ? (size_t)(qm - value) : strlen(value)))
        why = "no '.' or '..' segments";
    if (why) return cfg_fail(ctx, "'%s' is not a URL path: %s", value, why);
    free(*field);
    *field = xstrdup(value);
    return 0;
}

int cfg_set_error_page(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_error_pages_t *list = FIELD(obj, key, cfg_error_pages_t);
    str_t sw, uw;
    if (!two_words(value, &sw, &uw))
        return cfg_fail(ctx, "expected STATUS URL (\"404 /errors/404.html\")");
    const char *status = sw.p, *url = uw.p;
    size_t slen = sw.len, ulen = uw.len;
    int code = 0;
    for (size_t i = 0; i < slen; i++) {
        if (!isdigit((unsigned char)status[i]) || slen != 3) {
            code = -1;
            break;
        }
        code = code * 10 + (status[i] - '0');
    }
    if (code < 400 || code > 599)
        return cfg_fail(ctx, "'%.*s' is not an error status (400 to 599)", (int)slen, status);
    char *u = xstrndup(url, ulen);
    const char *why = url_problem(u, true);
    const char *qm = strchr(u, '?');
    if (why == NULL && has_dot_segment(u, qm ? (size_t)(qm - u) : ulen))
        why = "no '.' or '..' segments";
    if (why) {
        cfg_fail(ctx, "'%s' is not a URL path: %s", u, why);
        free(u);
        return -1;
    }
    for (size_t i = 0; i < list->n; i++) {
        if (list->v[i].status != code) continue;
        char *first = cfg_where(ctx, list->v[i].line);
        cfg_fail(ctx, "a page for %d is already given at %s", code, first);
        free(first);
        free(u);
        return -1;
    }
    list->v = xrealloc(list->v, (list->n + 1) * sizeof(*list->v));
    list->v[list->n++] = (cfg_error_page_t){.status = code, .url = u, .line = ctx->line};
    return 0;
}

int cfg_set_deny(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_denies_t *list = FIELD(obj, key, cfg_denies_t);
    size_t len, added = 0;
    for (const char *p = value; (len = cfg_next_token(&p, "")) > 0; p += len) {
        char *pat = xstrndup(p, len);
        cfg_deny_kind_t kind = CFG_DENY_NAME;
        bool bad = false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)pat[i] < 0x20 || pat[i] == 0x7f) bad = true;
        if (pat[0] == '/') {
            kind = strpbrk(pat, "*?[") ? CFG_DENY_PATH_GLOB : CFG_DENY_PREFIX;
            size_t n = len; /* len still steps over the whole token */
            if (kind == CFG_DENY_PREFIX)
                while (n > 1 && pat[n - 1] == '/') pat[--n] = '\0';
            if (n == 1) bad = true; /* "/" would deny the whole site */
        } else if (strchr(pat, '/')) {
            bad = true;
        }
        if (bad) {
            cfg_fail(ctx,
                     "'%s' is neither a URL prefix (\"/.git/\"), a path pattern "
                     "(\"/uploads/*.php\") nor a file-name pattern (\"*.bak\")",
                     pat);
            free(pat);
            return -1;
        }
        list->v = xrealloc(list->v, (list->n + 1) * sizeof(*list->v));
        list->v[list->n++] = (cfg_deny_t){.pattern = pat, .kind = kind};
        added++;
    }
    if (added == 0) return cfg_fail(ctx, "at least one pattern is required");
    return 0;
}

/* site = NAME ...: checked against the [site:NAME] sections once the whole file is read. */
int cfg_set_sites(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_strv_t *field = FIELD(obj, key, cfg_strv_t);
    char **v = NULL;
    size_t n = 0, len;
    for (const char *p = value; (len = cfg_next_token(&p, ",")) > 0; p += len)
        cfg_strv_push(&v, &n, xstrndup(p, len));
    if (n == 0) {
        free(v);
        return cfg_fail(ctx, "at least one site name is required");
    }
    cfg_strv_free(field->v, field->n);
    field->v = v;
    field->n = n;
    return 0;
}

/* The literal text every match of an anchored pattern starts with: "^/wiki/(.*)$" gives
 * "/wiki/", "^/sitemap\\.xml$" gives "/sitemap.xml". NULL when the pattern is not simply anchored
 * (no '^', an alternation anywhere, inline options) or starts with no literal. A character
 * followed by a quantifier that allows zero of it is not part of the prefix. */
static char *literal_prefix(const char *pat, size_t *len) {
    *len = 0;
    if (pat[0] != '^' || strchr(pat, '|')) return NULL;
    char out[64];
    size_t n = 0;
    const char *p = pat + 1;
    while (*p && n < sizeof(out)) {
        char ch;
        const char *next;
        if (*p == '\\') {
            unsigned char e = (unsigned char)p[1];
            if (e == '\0' || (e < 0x80 && isalnum(e))) break; /* \d, \w, \1...: not literal */
            ch = (char)e;
            next = p + 2;
        } else if (strchr(".^$|?*+()[]{}", *p) || (unsigned char)*p >= 0x80) {
            break;
        } else {
            ch = *p;
            next = p + 1;
        }
        if (*next == '?' || *next == '*' || *next == '{') break; /* maybe zero of it */
        out[n++] = ch;
        p = next;
    }
    if (n == 0) return NULL;
    *len = n;
    return xstrndup(out, n);
}

/* match: compiled here, so that -t reports the expression's error at its line; JIT when the
 * library has it (the interpreter otherwise: same results). */
int cfg_set_regex(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_rewrite_t *rw = obj;
    if (*value == '\0') return cfg_fail(ctx, "a regular expression is required");
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err,
                                   &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        return cfg_fail(ctx, "'%s': %s at offset %zu", value, (const char *)msg, (size_t)off);
    }
    rw->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0; /* fails only without JIT support */
    if (rw->re) pcre2_code_free(rw->re);
    rw->re = re;
    free(rw->match);
    rw->match = xstrdup(value);
    free(rw->prefix);
    rw->prefix = literal_prefix(value, &rw->prefix_len);
    return 0;
}

int cfg_set_unless(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_rewrite_t *rw = obj;
    bool f = false, d = false;
    size_t len;
    for (const char *p = value; (len = cfg_next_token(&p, ","))> 0; p += len) {
        if (len == 4 && strncasecmp(p, "file", 4) == 0) f = true;
        else if (len == 9 && strncasecmp(p, "directory", 9) == 0) d = true;
        else return cfg_fail(ctx, "'%.*s': expected file, directory or both", (int)len, p);
    }
    rw->unless_file = f;
    rw->unless_dir = d;
    return 0;
}

/* to: a URL path (or, for a redirect, an absolute http(s) URL: checked once the section is
 * complete) with $0..$9; "$$" is a '$'. */
int cfg_set_rewrite_to(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_rewrite_t *rw = obj;
    if (*value == '\0') return cfg_fail(ctx, "a target URL is required");
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f) return cfg_fail(ctx, "'%s': no spaces or control characters", value);
        if (c == '$' && p[1] != '$' && !isdigit((unsigned char)p[1]))
            return cfg_fail(ctx, "'%s': '$' must be followed by a digit 0-9 (\"$$\" for '$')", value);
        if (c == '$') p++;
    }
    bool absolute = strncmp(value, "http://", 7) == 0 || strncmp(value, "https://", 8) == 0;
    if (value[0] != '/' && !absolute)
        return cfg_fail(ctx, "'%s' must start with '/' (or http:// or https:// for a redirect)",
                        value);
    free(rw->to);
    rw->to = xstrdup(value);
    return 0;
}

int cfg_set_redirect(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_rewrite_t *rw = obj;
    static const int ok[] = {0, 301, 302, 307, 308};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char t[8];
        snprintf(t, sizeof(t), "%d", ok[i]);
        if (strcmp(t, value) == 0 || (ok[i] == 0 && (strcasecmp(value, "false") == 0 ||
                                                      strcasecmp(value, "no") == 0))) {
            rw->redirect = ok[i];
            return 0;
        }
    }
    return cfg_fail(ctx, "'%s': expected 0 (rewrite), 301, 302, 307 or 308", value);
}

int cfg_set_headers_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_headers_t *h = obj;
    return cfg_parse_rule_path(value, ctx, &h->path, &h->path_is_prefix, &h->path_kind,
                               &h->path_n);
}

static bool is_tchar(unsigned char c) {
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* set = Name: value (a value may be empty). Hop-by-hop and framing fields are the server's. */
int cfg_set_header_set(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    cfg_headers_t *h = obj;
    const char *colon = strchr(value, ':');
    if (colon == NULL || colon == value)
        return cfg_fail(ctx, "expected 'Name: value' (\"Cache-Control: max-age=3600\")");
    size_t nlen = (size_t)(colon - value);
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)value[i]))
            return cfg_fail(ctx, "'%.*s' is not a header name", (int)nlen, value);
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           "keep-alive", "upgrade", "te", "trailer", "date",
                                           "content-range", NULL};
    for (size_t i = 0; reserved[i]; i++)
        if (strlen(reserved[i]) == nlen && strncasecmp(reserved[i], value, nlen) == 0)
            return cfg_fail(ctx, "%.*s is set by the server itself", (int)nlen, value);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    for (const char *p = v; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return cfg_fail(ctx, "the value has a control character");
    size_t vlen = strlen(v);
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
    h->set = xrealloc(h->set, (h->n_set + 1) * sizeof(*h->set));
    h->set[h->n_set++] = (cfg_header_set_t){.name = xstrndup(value, nlen),
                                            .value = xstrndup(v, vlen)};
    return 0;
}

/* compress = gzip br | off: the codings offered (bit 1 gzip, bit 2 br, as HTTP_ENC_MASK). */
int cfg_set_compress(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx) {
    unsigned mask = 0;
    size_t len;
    if (strcasecmp(value, "off") != 0 && strcasecmp(value, "none") != 0) {
        for (const char *p = value; (len = cfg_next_token(&p, ",")) > 0; p += len) {
            if (len == 4 && strncasecmp(p, "gzip", 4) == 0) mask |= 1u << 1;
            else if (len == 2 && strncasecmp(p, "br", 2) == 0) mask |= 1u << 2;
            else return cfg_fail(ctx, "'%.*s': expected gzip, br (or both), or off", (int)len, p);
        }
        if (mask == 0) return cfg_fail(ctx, "expected gzip, br (or both), or off");
    }
    *FIELD(obj, key, unsigned) = mask;
    return 0;
}
