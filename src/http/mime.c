#include "http/mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/xalloc.h"

/* Open addressing on the lower-cased extension. The types themselves are interned once each. */
typedef struct mime_entry {
    char *ext;        /* owned, lower case; NULL = empty slot */
    const char *type; /* points into `types` */
} mime_entry_t;

struct mime_table {
    mime_entry_t *slots;
    size_t cap, used;
    char **types; /* owned media type strings */
    size_t n_types;
};

static const char *const builtin[][2] = {
    {"html", "text/html"}, {"htm", "text/html"}, {"txt", "text/plain"}, {"css", "text/css"},
    {"js", "text/javascript"}, {"mjs", "text/javascript"}, {"json", "application/json"},
    {"xml", "application/xml"}, {"svg", "image/svg+xml"}, {"png", "image/png"},
    {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"},
    {"ico", "image/vnd.microsoft.icon"}, {"avif", "image/avif"}, {"pdf", "application/pdf"},
    {"zip", "application/zip"}, {"gz", "application/gzip"}, {"wasm", "application/wasm"},
    {"woff", "font/woff"}, {"woff2", "font/woff2"}, {"ttf", "font/ttf"}, {"mp4", "video/mp4"},
    {"webm", "video/webm"}, {"mp3", "audio/mpeg"}, {"ogg", "audio/ogg"}, {"csv", "text/csv"},
    {"md", "text/markdown"}, {"map", "application/json"},
};

static uint32_t hash_ext(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)ascii_lower(s[i])) * 16777619u;
    return h;
}

static const char *intern(mime_table_t *t, const char *type, size_t n) {
    for (size_t i = t->n_types; i-- > 0;)
        if (strlen(t->types[i]) == n && memcmp(t->types[i], type, n) == 0) return t->types[i];
    t->types = xrealloc(t->types, (t->n_types + 1) * sizeof(char *));
    return t->types[t->n_types++] = xstrndup(type, n);
}

static void grow(mime_table_t *t);

static void put(mime_table_t *t, const char *ext, size_t n, const char *type) {
    if ((t->used + 1) * 2 > t->cap) grow(t);
    size_t i = hash_ext(ext, n) & (t->cap - 1);
    for (;; i = (i + 1) & (t->cap - 1)) {
        mime_entry_t *e = &t->slots[i];
        if (e->ext == NULL) {
            e->ext = xstrndup(ext, n);
            for (size_t k = 0; k < n; k++) e->ext[k] = ascii_lower(e->ext[k]);
            e->type = type;
            t->used++;
            return;
        }
        if (strlen(e->ext) == n && str_ieq(str_make(ext, n), e->ext, n)) {
            e->type = type;
            return;
        }
    }
}

static void grow(mime_table_t *t) {
    mime_entry_t *old = t->slots;
    size_t oldcap = t->cap;
    t->cap = oldcap ? oldcap * 2 : 64;
    t->slots = xcalloc(t->cap, sizeof(*t->slots));
    t->used = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].ext == NULL) continue;
        put(t, old[i].ext, strlen(old[i].ext), old[i].type);
        free(old[i].ext);
    }
    free(old);
}

/* One line of mime.types: "type ext ext ...", '#' starts a comment. */
static void parse_line(mime_table_t *t, const char *p, const char *end) {
    const char *hash = memchr(p, '#', (size_t)(end - p));
    if (hash) end = hash;
    const char *w = p;
    while (w < end && (*w == ' ' || *w == '\t')) w++;
    const char *tw = w;
    while (w < end && *w != ' ' && *w != '\t') w++;
    size_t tlen = (size_t)(w - tw);
    if (tlen == 0 || memchr(tw, '/', tlen) == NULL) return;
    const char *type = NULL;
    for (;;) {
        while (w < end && (*w == ' ' || *w == '\t')) w++;
        const char *ew = w;
        while (w < end && *w != ' ' && *w != '\t') w++;
        if (w == ew) break;
        if (type == NULL) type = intern(t, tw, tlen);
        put(t, ew, (size_t)(w - ew), type);
    }
}

mime_table_t *mime_table_new(const char *text, size_t len) {
    mime_table_t *t = xcalloc(1, sizeof(*t));
    grow(t);
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        put(t, builtin[i][0], strlen(builtin[i][0]), intern(t, builtin[i][1], strlen(builtin[i][1])));
    const char *p = text, *end = text ? text + len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        parse_line(t, p, le);
        p = nl ? nl + 1 : end;
    }
    /* Debian's mime.types says application/javascript for .js; browsers and RFC 9239 want this. */
    put(t, "js", 2, intern(t, "text/javascript", 15));
    return t;
}

void mime_table_free(mime_table_t *t) {
    if (t == NULL) return;
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i].ext);
    for (size_t i = 0; i < t->n_types; i++) free(t->types[i]);
    free(t->slots);
    free(t->types);
    free(t);
}

const char *mime_lookup(const mime_table_t *t, const char *name, size_t len) {
    const char *dot = NULL;
    for (size_t i = len; i-- > 0;) {
        if (name[i] == '.') {
            dot = name + i;
            break;
        }
        if (name[i] == '/') break;
    }
    if (dot && (size_t)(name + len - dot - 1) > 0) {
        const char *ext = dot + 1;
        size_t n = (size_t)(name + len - ext);
        size_t i = hash_ext(ext, n) & (t->cap - 1);
        for (; t->slots[i].ext; i = (i + 1) & (t->cap - 1))
            if (strlen(t->slots[i].ext) == n && str_ieq(str_make(ext, n), t->slots[i].ext, n))
                return t->slots[i].type;
    }
    return "application/octet-stream";
}
