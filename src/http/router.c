#include "http/router.h"

#include <fnmatch.h>
#include <string.h>

static bool verb_allowed(const cfg_handler_t *h, str_t method) {
    if (h->any_verb) return true;
    for (size_t i = 0; i < h->n_verbs; i++)
        if (str_eq(method, h->verbs[i], strlen(h->verbs[i]))) return true;
    return false;
}

/* A URL prefix of n bytes (trailing slashes already dropped): "/app" and everything below it. */
static bool match_prefix(const char *prefix, size_t n, const char *path, size_t len,
                         size_t *script_len) {
    if (n == 1) { /* "/" mounts everything: the script is empty, PATH_INFO the whole path */
        *script_len = 0;
        return true;
    }
    if (len < n || memcmp(path, prefix, n) != 0) return false;
    if (len > n && path[n] != '/') return false; /* "/application" is not under "/app" */
    *script_len = n;
    return true;
}

/* ASCII case-insensitive equality of n bytes, from the last: a suffix such as ".css" against
 * ".txt" fails on its first comparison (no call, no locale). */
static bool suffix_eq(const char *s, const char *suffix, size_t n) {
    while (n--)
        if (ascii_lower(s[n]) != ascii_lower(suffix[n])) return false;
    return true;
}

/* "*.php", "*.css": the first segment that ends with the literal suffix (n bytes) and is longer
 * than nothing; compared without fnmatch (the common case, run for every request and rule). */
static bool match_suffix(const char *suffix, size_t n, const char *path, size_t len,
                         size_t *script_len) {
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        size_t seg = i - start;
        if (seg > 0 && seg < 256 && seg >= n && suffix_eq(path + i - n, suffix, n)) {
            *script_len = i;
            return true;
        }
        start = i + 1;
    }
    return false;
}

/* Any other file-name pattern: fnmatch against each segment from the left. */
static bool match_glob(const char *pattern, const char *path, size_t len, size_t *script_len) {
    char seg[256];
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        size_t n = i - start;
        if (n > 0 && n < sizeof(seg)) {
            memcpy(seg, path + start, n);
            seg[n] = '\0';
            if (fnmatch(pattern, seg, FNM_CASEFOLD) == 0) {
                *script_len = i;
                return true;
            }
        }
        start = i + 1;
    }
    return false;
}

bool router_rule_matches(const char *pattern, cfg_path_kind_t kind, size_t n, const char *path,
                         size_t len, size_t *script_len) {
    switch (kind) {
    case CFG_PATH_ANY: *script_len = len; return true;
    case CFG_PATH_PREFIX: return match_prefix(pattern, n, path, len, script_len);
    case CFG_PATH_SUFFIX: return match_suffix(pattern + 1, n, path, len, script_len);
    case CFG_PATH_GLOB: break;
    }
    return match_glob(pattern, path, len, script_len);
}

bool router_path_matches(const char *pattern, const char *path, size_t len, size_t *script_len) {
    size_t n;
    cfg_path_kind_t kind = cfg_path_kind(pattern, &n);
    return router_rule_matches(pattern, kind, n, path, len, script_len);
}

static bool path_matches(const cfg_handler_t *h, const char *path, size_t len, size_t *script_len) {
    return router_rule_matches(h->path, h->path_kind, h->path_n, path, len, script_len);
}

int router_match(const cfg_t *cfg, const cfg_site_t *site, const char *path, size_t len,
                 str_t method, size_t *script_len) {
    for (size_t k = 0; k < site->n_handlers; k++) {
        size_t i = site->handlers[k];
        const cfg_handler_t *h = &cfg->handlers[i];
        if (verb_allowed(h, method) && path_matches(h, path, len, script_len)) return (int)i;
    }
    return -1;
}

static void allow_add(buf_t *allow, const char *verb) {
    size_t n = strlen(verb);
    for (size_t at = 0; at < allow->len;) { /* already listed? */
        const char *comma = memchr(allow->data + at, ',', allow->len - at);
        size_t end = comma ? (size_t)(comma - allow->data) : allow->len;
        if (end - at == n && memcmp(allow->data + at, verb, n) == 0) return;
        at = end + 2;
    }
    if (allow->len) buf_append(allow, ", ", 2);
    buf_append(allow, verb, n);
}

bool router_allow(const cfg_t *cfg, const cfg_site_t *site, const char *path, size_t len,
                  buf_t *allow) {
    bool any = false;
    size_t script_len;
    for (size_t k = 0; k < site->n_handlers; k++) {
        const cfg_handler_t *h = &cfg->handlers[site->handlers[k]];
        if (!path_matches(h, path, len, &script_len)) continue;
        any = true;
        if (h->any_verb) continue; /* cannot happen when router_match found nothing */
        for (size_t v = 0; v < h->n_verbs; v++) allow_add(allow, h->verbs[v]);
    }
    return any;
}
