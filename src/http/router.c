#include "http/router.h"

#include <fnmatch.h>
#include <string.h>

static bool verb_allowed(const cfg_handler_t *h, str_t method) {
    if (h->any_verb) return true;
    for (size_t i = 0; i < h->n_verbs; i++)
        if (str_eq(method, h->verbs[i], strlen(h->verbs[i]))) return true;
    return false;
}

static bool match_prefix(const char *prefix, const char *path, size_t len, size_t *script_len) {
    size_t n = strlen(prefix);
    while (n > 1 && prefix[n - 1] == '/') n--; /* "/app/" and "/app" mean the same mount */
    if (n == 1) { /* "/" mounts everything: the script is empty, PATH_INFO the whole path */
        *script_len = 0;
        return true;
    }
    if (len < n || memcmp(path, prefix, n) != 0) return false;
    if (len > n && path[n] != '/') return false; /* "/application" is not under "/app" */
    *script_len = n;
    return true;
}

static bool match_segments(const char *pattern, const char *path, size_t len, size_t *script_len) {
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

int router_match(const cfg_t *cfg, const char *path, size_t len, str_t method, size_t *script_len) {
    for (size_t i = 0; i < cfg->n_handlers; i++) {
        const cfg_handler_t *h = &cfg->handlers[i];
        if (!verb_allowed(h, method)) continue;
        bool hit;
        if (strcmp(h->path, "*") == 0) {
            *script_len = len;
            hit = true;
        } else if (h->path_is_prefix) {
            hit = match_prefix(h->path, path, len, script_len);
        } else {
            hit = match_segments(h->path, path, len, script_len);
        }
        if (hit) return (int)i;
    }
    return -1;
}
