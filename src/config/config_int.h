/* Internal to src/config: the declarative key table and the typed setters that the file loader and
 * live `ctl set` share. Nothing outside src/config includes this header.
 */
#ifndef FCGIHOST_CONFIG_CONFIG_INT_H
#define FCGIHOST_CONFIG_CONFIG_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* Longest line accepted in a configuration file, without its line ending. */
#define CFG_MAX_LINE (1024 * 1024)

typedef enum cfg_sect_kind {
    CFG_SECT_SERVER,
    CFG_SECT_FASTCGI,
    CFG_SECT_HANDLER,
    CFG_SECT_SITE,
    CFG_SECT_REWRITE,
    CFG_SECT_HEADERS,
} cfg_sect_kind_t;

enum {
    CFG_KEY_REQUIRED = 1u << 0, /* no default: missing is an error at the section header's line */
    CFG_KEY_REPEAT = 1u << 1,   /* may be given several times; each line adds an entry */
    CFG_KEY_LIVE = 1u << 2,     /* may be changed on a running server by cfg_app_set_live() */
};

/* One accepted spelling of an enumerated value. Aliases are accepted but not listed in messages. */
typedef struct cfg_enum_name {
    const char *name;
    int value;
    bool alias;
} cfg_enum_name_t;

/* What a setter needs besides the value: where relative paths start and where to put a message. */
typedef struct cfg_setctx {
    const char *dir; /* borrowed; the configuration file's directory (NULL for live settings) */
    int line;        /* the value's line (0 for live settings): repeatable entries record it */
    char *err;       /* the message on failure, without "file:line: key: " */
    size_t errlen;
    /* "file:line" of a position recorded by an earlier setter (a heap string); NULL: "line N" */
    char *(*where)(void *arg, int pos);
    void *where_arg;
} cfg_setctx_t;

typedef struct cfg_key cfg_key_t;

/* Parse `value` and store it into the section object `obj` (a cfg_server_t, cfg_app_t or
 * cfg_handler_t) at the field described by `key`. Returns 0, or -1 with a message in ctx->err.
 * Scalar setters leave the field untouched on failure (live settings rely on that). */
typedef int (*cfg_set_fn)(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);

/* One row of the key table. */
struct cfg_key {
    const char *name;   /* as documented in SPEC §2; matched ASCII case-insensitively */
    cfg_sect_kind_t sect;
    unsigned flags;     /* CFG_KEY_* */
    cfg_set_fn set;
    size_t off;         /* offset of the field in the section object (scalar setters) */
    size_t size;        /* its size: enum setters store an int or a bool accordingly */
    uint64_t min, max;  /* numeric bounds, inclusive */
    const cfg_enum_name_t *names; /* enum setters: the accepted values, ended by a NULL name */
    const char *def;    /* default, parsed by `set` like a value from the file; NULL: none */
};

extern const cfg_key_t cfg_keys[];
extern const size_t cfg_n_keys;

/* The row for `name` in a section of kind `sect`, or NULL. */
const cfg_key_t *cfg_key_find(cfg_sect_kind_t sect, const char *name);
/* ASCII case-insensitive string equality (locale-independent). */
bool cfg_ascii_ieq(const char *a, const char *b);

/* Typed setters (setters.c). The generic ones use key->off/size/min/max/names; the others know
 * the structure they fill. */
int cfg_set_uint(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_bytes(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_bool(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_enum(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_string(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_socket_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_optional_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_log_target(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_user(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_server_user(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_url_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_dir(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_executable(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_listen(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_index(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_status_allow(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_trusted_proxies(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_arguments(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_env(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_utf8_vars(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_handler_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_verbs(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);

/* Site, rewrite and header keys (setters_site.c). */
int cfg_set_hosts(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_site_listen(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_alias(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_url(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_error_page(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_deny(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_sites(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_regex(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_unless(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_rewrite_to(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_redirect(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_headers_path(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_compress(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);
int cfg_set_header_set(const cfg_key_t *key, void *obj, const char *value, cfg_setctx_t *ctx);

/* Shared by the setter files: the message, tokens, vectors, "file:line" of an earlier position. */
int cfg_fail(cfg_setctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t cfg_next_token(const char **p, const char *seps);
void cfg_strv_push(char ***v, size_t *n, char *s);
char *cfg_where(const cfg_setctx_t *ctx, int pos);
/* A handler's or header rule's path: a file-name pattern or a URL prefix. */
int cfg_parse_rule_path(const char *value, cfg_setctx_t *ctx, char **path, bool *prefix,
                        cfg_path_kind_t *kind, size_t *n);
/* Free what a site owns (not the site itself). */
void cfg_site_dispose(cfg_site_t *s);
void cfg_listen_dispose(cfg_listen_t *l);

/* `p` made absolute against `dir` (when relative) and tidied: no "//", no "." segments, no
 * trailing slash except for "/" itself; ".." segments are kept (symlinks make removing them
 * unsafe). Returns a heap string. */
char *cfg_path_resolve(const char *dir, const char *p);

/* Split an `arguments` value into words: white space (spaces, tabs) separates words, double quotes
 * group, and inside quotes a backslash escapes '"' and '\' (other backslashes are literal, so
 * Windows-style and regex arguments survive). On success returns 0 and, if argv is not NULL,
 * stores a NULL-terminated heap vector of `first` followed by the words (`first` may be NULL:
 * then only the words). Returns -1 on an unterminated quote. */
int cfg_split_arguments(const char *text, const char *first, char ***argv);

/* Free a vector of n heap strings and the vector itself (n = SIZE_MAX: NULL-terminated). */
void cfg_strv_free(char **v, size_t n);

#endif
