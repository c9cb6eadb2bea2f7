/* The configuration loader: reads the INI file with inih, tracks sections and line numbers itself,
 * feeds every key through the key table (keys.c), applies defaults, checks required keys,
 * resolves handlers to applications and collects every problem as "file:line: message".
 *
 * inih is driven through ini_parse_stream() with our own reader. The reader sees each raw line
 * before inih does, so it (a) counts lines (inih's handler gets no line number), (b) handles the
 * "[section]" headers itself (inih truncates section names to 49 bytes and does not report empty
 * sections or header lines) and passes inih an empty line instead, and (c) catches lines inih
 * would reject (no '=', NUL bytes, overlong lines) so that every error is reported, not only the
 * first. inih still splits "key = value", trims white space and removes inline ';' comments.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_int.h"
#include "util/str.h"
#include "util/xalloc.h"

enum {
    CUR_NONE = -1, /* before the first section header */
    CUR_SKIP = -2, /* inside a section that was rejected: its keys are ignored */
};

#define APP_NAME_MAX 64

typedef struct diag_item {
    int line; /* 0: about the whole file */
    size_t seq;
    char *msg;
} diag_item_t;

typedef struct section {
    cfg_sect_kind_t kind;
    size_t index; /* into cfg->apps or cfg->handlers (0 for [server]) */
    int line;     /* of the header */
    char *title;  /* "[server]", "[fastcgi:php]": for messages and duplicate checks */
    int *seen;    /* per row of cfg_keys: the line where the key was first given, 0 if not */
} section_t;

typedef struct loader {
    cfg_t *cfg;
    const char *name; /* borrowed: the file name shown in messages */
    diag_item_t *items;
    size_t n_items;
    section_t *sects;
    size_t n_sects;
    long cur;    /* index into sects, or CUR_NONE / CUR_SKIP */
    long server; /* index into sects of [server], or -1 */
    /* Input: a FILE or a string. `line` holds the current line, always ending in '\n'. */
    FILE *fp;
    const char *text;
    size_t text_len, text_pos;
    char *line;
    size_t line_len, line_cap, line_pos;
    int lineno;
    int read_errno;
} loader_t;

/* ------------------------------------------------------------------------------------------ */
/* Diagnostics */

void cfg_diag_init(cfg_diag_t *d) {
    d->msgs = NULL;
    d->n = 0;
}

void cfg_diag_dispose(cfg_diag_t *d) {
    cfg_strv_free(d->msgs, d->n);
    cfg_diag_init(d);
}

static void diag_push(cfg_diag_t *d, char *msg) {
    d->msgs = xrealloc(d->msgs, (d->n + 1) * sizeof(*d->msgs));
    d->msgs[d->n++] = msg;
}

static void error_at(loader_t *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_at(loader_t *ld, int line, const char *fmt, ...) {
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0) abort();
    diag_item_t it = {.line = line, .seq = ld->n_items};
    it.msg = line > 0 ? xasprintf("%s:%d: %s", ld->name, line, msg)
                      : xasprintf("%s: %s", ld->name, msg);
    free(msg);
    ld->items = xrealloc(ld->items, (ld->n_items + 1) * sizeof(*ld->items));
    ld->items[ld->n_items++] = it;
}

static int item_cmp(const void *a, const void *b) {
    const diag_item_t *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hand the collected messages to the caller, in line order. */
static void flush_items(loader_t *ld, cfg_diag_t *diag) {
    if (ld->n_items > 1) qsort(ld->items, ld->n_items, sizeof(*ld->items), item_cmp);
    for (size_t i = 0; i < ld->n_items; i++) {
        if (diag)
            diag_push(diag, ld->items[i].msg);
        else
            free(ld->items[i].msg);
    }
    free(ld->items);
    ld->items = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Sections */

static void *section_object(loader_t *ld, const section_t *sec) {
    switch (sec->kind) {
    case CFG_SECT_SERVER: return &ld->cfg->server;
    case CFG_SECT_FASTCGI: return &ld->cfg->apps[sec->index];
    case CFG_SECT_HANDLER: return &ld->cfg->handlers[sec->index];
    }
    return NULL;
}

static long add_section(loader_t *ld, cfg_sect_kind_t kind, size_t index, char *title) {
    ld->sects = xrealloc(ld->sects, (ld->n_sects + 1) * sizeof(*ld->sects));
    section_t *s = &ld->sects[ld->n_sects];
    s->kind = kind;
    s->index = index;
    s->line = ld->lineno;
    s->title = title;
    s->seen = xcalloc(cfg_n_keys, sizeof(int));
    return (long)ld->n_sects++;
}

/* Application names end up in socket file names, metrics and ctl commands: keep them plain. */
static bool valid_app_name(str_t n) {
    if (n.len > APP_NAME_MAX || !(isalnum((unsigned char)n.p[0]) || n.p[0] == '_')) return false;
    for (size_t i = 0; i < n.len; i++)
        if (!isalnum((unsigned char)n.p[i]) && !strchr("_.-", n.p[i])) return false;
    return true;
}

static bool valid_handler_name(str_t n) {
    for (size_t i = 0; i < n.len; i++)
        if ((unsigned char)n.p[i] < 0x20 || n.p[i] == 0x7f) return false;
    return true;
}

static void open_server(loader_t *ld, bool named) {
    if (named) {
        error_at(ld, ld->lineno, "[server] takes no name");
    } else if (ld->server >= 0) {
        error_at(ld, ld->lineno, "duplicate section [server] (first at line %d)",
                 ld->sects[ld->server].line);
    } else {
        ld->server = ld->cur = add_section(ld, CFG_SECT_SERVER, 0, xstrdup("[server]"));
    }
}

/* A new [fastcgi:NAME] or [handler:NAME]: checks the name, then appends a zeroed object. */
static void open_named(loader_t *ld, cfg_sect_kind_t kind, str_t name) {
    const char *kname = kind == CFG_SECT_FASTCGI ? "fastcgi" : "handler";
    if (name.len == 0) {
        error_at(ld, ld->lineno, "[%s:NAME] needs a name", kname);
        return;
    }
    if (kind == CFG_SECT_FASTCGI ? !valid_app_name(name) : !valid_handler_name(name)) {
        error_at(ld, ld->lineno,
                 kind == CFG_SECT_FASTCGI
                     ? "'%.*s' is not a valid application name (up to 64 letters, digits, '_', "
                       "'.' and '-', not starting with '.' or '-')"
                     : "'%.*s' is not a valid handler name (no control characters)",
                 (int)name.len, name.p);
        return;
    }
    char *title = xasprintf("[%s:%.*s]", kname, (int)name.len, name.p);
    for (size_t i = 0; i < ld->n_sects; i++) {
        if (strcmp(ld->sects[i].title, title) != 0) continue;
        error_at(ld, ld->lineno, "duplicate section %s (first at line %d)", title,
                 ld->sects[i].line);
        free(title);
        return;
    }
    cfg_t *cfg = ld->cfg;
    size_t index;
    if (kind == CFG_SECT_FASTCGI) {
        index = cfg->n_apps++;
        cfg->apps = xrealloc(cfg->apps, cfg->n_apps * sizeof(*cfg->apps));
        cfg->apps[index] = (cfg_app_t){.name = xstrndup(name.p, name.len), .line = ld->lineno};
    } else {
        index = cfg->n_handlers++;
        cfg->handlers = xrealloc(cfg->handlers, cfg->n_handlers * sizeof(*cfg->handlers));
        cfg->handlers[index] =
            (cfg_handler_t){.name = xstrndup(name.p, name.len), .line = ld->lineno};
    }
    ld->cur = add_section(ld, kind, index, title);
}

/* A "[...]" line; `s` points at the '['. Until a valid header opens a section, keys are ignored. */
static void section_header(loader_t *ld, const char *s) {
    ld->cur = CUR_SKIP;
    const char *close = strchr(s, ']');
    if (close == NULL) {
        error_at(ld, ld->lineno, "syntax error: '[' without ']'");
        return;
    }
    const char *rest = close + 1;
    while (isspace((unsigned char)*rest)) rest++;
    if (*rest != '\0' && *rest != ';' && *rest != '#') {
        error_at(ld, ld->lineno, "syntax error: unexpected text after ']'");
        return;
    }
    str_t inner = str_trim_ows(str_make(s + 1, (size_t)(close - s - 1)));
    const char *colon = memchr(inner.p, ':', inner.len);
    str_t kind = inner, name = STR_NULL;
    if (colon) {
        kind = str_trim_ows(str_make(inner.p, (size_t)(colon - inner.p)));
        name = str_trim_ows(str_make(colon + 1, inner.len - (size_t)(colon + 1 - inner.p)));
    }
    if (STR_IEQ(kind, "server"))
        open_server(ld, colon != NULL);
    else if (STR_IEQ(kind, "fastcgi"))
        open_named(ld, CFG_SECT_FASTCGI, name);
    else if (STR_IEQ(kind, "handler"))
        open_named(ld, CFG_SECT_HANDLER, name);
    else
        error_at(ld, ld->lineno,
                 "unknown section [%.*s]: expected [server], [fastcgi:NAME] or [handler:NAME]",
                 (int)inner.len, inner.p);
}

/* ------------------------------------------------------------------------------------------ */
/* Keys */

/* Run the key's setter on the section's object; a failure becomes "file:line: key: message". */
static void apply(loader_t *ld, const section_t *sec, const cfg_key_t *key, const char *value,
                  int line) {
    char msg[1024];
    cfg_setctx_t ctx = {.dir = ld->cfg->dir, .line = line, .err = msg, .errlen = sizeof(msg)};
    msg[0] = '\0';
    if (key->set(key, section_object(ld, sec), value, &ctx) < 0)
        error_at(ld, line, "%s: %s", key->name, msg);
}

/* inih's handler: one "name = value" line (the line the reader delivered last). */
static int on_key(void *user, const char *section, const char *name, const char *value) {
    loader_t *ld = user;
    (void)section; /* sections are tracked by the reader */
    if (*name == '\0') {
        error_at(ld, ld->lineno, "syntax error: a key name is missing before '='");
        return 1;
    }
    if (ld->cur == CUR_SKIP) return 1;
    if (ld->cur == CUR_NONE) {
        error_at(ld, ld->lineno, "key '%s' is outside of any section", name);
        return 1;
    }
    section_t *sec = &ld->sects[ld->cur];
    const cfg_key_t *key = cfg_key_find(sec->kind, name);
    if (key == NULL) {
        error_at(ld, ld->lineno, "unknown key '%s' in %s", name, sec->title);
        return 1;
    }
    size_t row = (size_t)(key - cfg_keys);
    if (sec->seen[row] && !(key->flags & CFG_KEY_REPEAT)) {
        error_at(ld, ld->lineno, "duplicate key '%s' in %s (first given at line %d)", key->name,
                 sec->title, sec->seen[row]);
        return 1;
    }
    if (sec->seen[row] == 0) sec->seen[row] = ld->lineno;
    apply(ld, sec, key, value, ld->lineno);
    return 1; /* errors are collected here, never reported through inih */
}

/* ------------------------------------------------------------------------------------------ */
/* The reader */

static void reserve_line(loader_t *ld, size_t n) {
    if (ld->line_cap >= n) return;
    ld->line = xrealloc(ld->line, n);
    ld->line_cap = n;
}

/* The next raw line, with its '\n' if it has one. False at the end (or on a read error). */
static bool read_raw_line(loader_t *ld) {
    if (ld->fp) {
        errno = 0;
        ssize_t n = getline(&ld->line, &ld->line_cap, ld->fp);
        if (n < 0) {
            if (ferror(ld->fp)) ld->read_errno = errno ? errno : EIO;
            return false;
        }
        ld->line_len = (size_t)n;
        return true;
    }
    if (ld->text_pos >= ld->text_len) return false;
    const char *s = ld->text + ld->text_pos;
    const char *nl = memchr(s, '\n', ld->text_len - ld->text_pos);
    size_t n = nl ? (size_t)(nl - s) + 1 : ld->text_len - ld->text_pos;
    reserve_line(ld, n + 1);
    memcpy(ld->line, s, n);
    ld->line_len = n;
    ld->text_pos += n;
    return true;
}

static void blank_line(loader_t *ld) {
    strcpy(ld->line, "\n");
    ld->line_len = 1;
}

/* inih's rule for a key line: a '=' or ':' before any inline comment (';' after white space). */
static bool has_separator(const char *s) {
    bool was_space = false;
    for (; *s; s++) {
        if (*s == '=' || *s == ':') return true;
        if (was_space && *s == ';') return false;
        was_space = isspace((unsigned char)*s) != 0;
    }
    return false;
}

/* Look at a complete line before inih does; lines inih must not see become empty lines. */
static void examine_line(loader_t *ld) {
    size_t len = ld->line_len - 1; /* without the '\n' */
    if (memchr(ld->line, '\0', len)) {
        error_at(ld, ld->lineno, "the line contains a NUL byte");
        blank_line(ld);
        return;
    }
    if (len > CFG_MAX_LINE) {
        error_at(ld, ld->lineno, "the line is longer than %d bytes", CFG_MAX_LINE);
        blank_line(ld);
        return;
    }
    const char *s = ld->line;
    while (isspace((unsigned char)*s)) s++;
    if (*s == '\0' || *s == ';' || *s == '#') return;
    if (*s == '[') {
        section_header(ld, s);
        blank_line(ld);
    } else if (!has_separator(s)) {
        error_at(ld, ld->lineno, "syntax error: expected 'key = value', '[section]' or a comment");
        blank_line(ld);
    }
}

static bool next_line(loader_t *ld) {
    if (!read_raw_line(ld)) return false;
    ld->lineno++;
    ld->line_pos = 0;
    reserve_line(ld, ld->line_len + 2);
    if (ld->line_len == 0 || ld->line[ld->line_len - 1] != '\n') ld->line[ld->line_len++] = '\n';
    ld->line[ld->line_len] = '\0';
    if (ld->lineno == 1 && ld->line_len >= 3 && memcmp(ld->line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(ld->line, ld->line + 3, ld->line_len - 2);
        ld->line_len -= 3;
    }
    examine_line(ld);
    return true;
}

/* The ini_reader (fgets-like): delivers the current line, in pieces when inih's buffer is still
 * smaller than the line (inih then grows it and asks for the rest). */
static char *ini_read(char *str, int num, void *stream) {
    loader_t *ld = stream;
    if (num < 2) return NULL;
    if (ld->line_pos >= ld->line_len && !next_line(ld)) return NULL;
    size_t n = ld->line_len - ld->line_pos;
    if (n > (size_t)num - 1) n = (size_t)num - 1;
    memcpy(str, ld->line + ld->line_pos, n);
    str[n] = '\0';
    ld->line_pos += n;
    return str;
}

/* inih's behaviour is set through globals (Debian's build makes these run-time settings). */
static void setup_inih(void) {
    static char start_comments[] = ";#";
    static char inline_comments[] = ";";
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_initial_alloc = 256;
    ini_max_line = CFG_MAX_LINE + 3; /* the line, "\r\n" and NUL: the reader's lines always fit */
    ini_allow_multiline = false;     /* an indented line is a line, not a continuation */
    ini_allow_bom = true;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = inline_comments;
    ini_start_comment_prefixes = start_comments;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
}

/* ------------------------------------------------------------------------------------------ */
/* After the whole file: defaults, required keys, argv, handlers → applications */

static void complete_section(loader_t *ld, const section_t *sec) {
    for (size_t row = 0; row < cfg_n_keys; row++) {
        const cfg_key_t *key = &cfg_keys[row];
        if (key->sect != sec->kind || sec->seen[row]) continue;
        if (key->flags & CFG_KEY_REQUIRED)
            error_at(ld, sec->line, "missing required key '%s' in %s", key->name, sec->title);
        else if (key->def)
            apply(ld, sec, key, key->def, sec->line);
    }
}

/* IIS's scriptProcessor="fullPath|arguments": the application with exactly that pair. IIS keys
 * its applications by that pair; here two named sections may share it, and then naming one of
 * them is required. Returns the index, or -1 with an error reported at `line`. */
static long find_app_by_command(loader_t *ld, const char *sp, int line) {
    const char *bar = strchr(sp, '|');
    str_t path = str_trim_ows(str_make(sp, bar ? (size_t)(bar - sp) : strlen(sp)));
    str_t args = bar ? str_trim_ows(str_make(bar + 1, strlen(bar + 1))) : STR_LIT("");
    char *p = xstrndup(path.p, path.len);
    char *full = cfg_path_resolve(ld->cfg->dir, p);
    long found = -1, second = -1;
    for (size_t i = 0; i < ld->cfg->n_apps && second < 0; i++) {
        const cfg_app_t *app = &ld->cfg->apps[i];
        const char *a = app->arguments ? app->arguments : "";
        if (!app->full_path || strcmp(app->full_path, full) != 0 || !str_eq(args, a, strlen(a)))
            continue;
        if (found < 0)
            found = (long)i;
        else
            second = (long)i;
    }
    if (found < 0)
        error_at(ld, line,
                 "scriptProcessor: no [fastcgi:NAME] section has fullPath '%s' and "
                 "arguments '%.*s'",
                 full, (int)args.len, args.p);
    else if (second >= 0)
        error_at(ld, line,
                 "scriptProcessor: [fastcgi:%s] and [fastcgi:%s] both have fullPath '%s' and "
                 "arguments '%.*s': give the section's name instead",
                 ld->cfg->apps[found].name, ld->cfg->apps[second].name, full, (int)args.len,
                 args.p);
    free(full);
    free(p);
    return second >= 0 ? -1 : found;
}

static void resolve_handler(loader_t *ld, const section_t *sec, size_t sp_row) {
    cfg_handler_t *h = &ld->cfg->handlers[sec->index];
    const char *sp = h->script_processor;
    if (sp == NULL) return; /* missing or invalid: already reported */
    int line = sec->seen[sp_row];
    cfg_app_t *app = cfg_find_app(ld->cfg, sp);
    long i;
    if (app)
        h->app_index = (size_t)(app - ld->cfg->apps);
    else if (!strchr(sp, '|') && !strchr(sp, '/'))
        error_at(ld, line, "scriptProcessor: there is no [fastcgi:%s] section", sp);
    else if ((i = find_app_by_command(ld, sp, line)) >= 0)
        h->app_index = (size_t)i;
}

static void finish(loader_t *ld) {
    cfg_t *cfg = ld->cfg;
    if (ld->server < 0)
        error_at(ld, 1, "missing [server] section (root is required)");
    for (size_t i = 0; i < ld->n_sects; i++) complete_section(ld, &ld->sects[i]);
    for (size_t i = 0; i < cfg->n_apps; i++) {
        cfg_app_t *app = &cfg->apps[i];
        if (app->full_path == NULL) continue;
        /* Cannot fail: an `arguments` value that does not split was rejected at its line. */
        (void)cfg_split_arguments(app->arguments ? app->arguments : "", app->full_path,
                                  &app->argv);
    }
    size_t sp_row = (size_t)(cfg_key_find(CFG_SECT_HANDLER, "scriptProcessor") - cfg_keys);
    for (size_t i = 0; i < ld->n_sects; i++)
        if (ld->sects[i].kind == CFG_SECT_HANDLER) resolve_handler(ld, &ld->sects[i], sp_row);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading */

static void loader_dispose(loader_t *ld) {
    for (size_t i = 0; i < ld->n_sects; i++) {
        free(ld->sects[i].title);
        free(ld->sects[i].seen);
    }
    free(ld->sects);
    free(ld->line);
    free(ld->items);
}

/* Parse the input set up in `ld`. Takes ownership of `file` and `dir`. */
static cfg_t *load(loader_t *ld, char *file, char *dir, cfg_diag_t *diag) {
    ld->cfg = xcalloc(1, sizeof(cfg_t));
    ld->cfg->file = file;
    ld->cfg->dir = dir;
    ld->cur = CUR_NONE;
    ld->server = -1;
    setup_inih();
    int rc = ini_parse_stream(ini_read, ld, on_key, ld);
    if (rc == -2) {
        fputs("fcgihost: out of memory parsing the configuration\n", stderr);
        abort();
    }
    if (ld->read_errno) /* the rest would be noise about a file we could not read whole */
        error_at(ld, 0, "read error: %s", strerror(ld->read_errno));
    else if (rc > 0 && ld->n_items == 0) /* inih found something the reader did not: unlikely */
        error_at(ld, rc, "syntax error");
    if (!ld->read_errno) finish(ld);
    bool failed = ld->n_items > 0;
    flush_items(ld, diag);
    loader_dispose(ld);
    if (!failed) return ld->cfg;
    cfg_free(ld->cfg);
    return NULL;
}

static char *absolute_dir(const char *dir) {
    char *cwd = getcwd(NULL, 0);
    char *abs = cfg_path_resolve(cwd ? cwd : "/", dir ? dir : ".");
    free(cwd);
    return abs;
}

static char *parent_dir(const char *file) {
    const char *slash = strrchr(file, '/');
    if (slash == NULL || slash == file) return xstrdup("/");
    return xstrndup(file, (size_t)(slash - file));
}

cfg_t *cfg_load(const char *path, cfg_diag_t *diag) {
    FILE *fp = fopen(path, "re");
    if (fp == NULL) {
        if (diag) diag_push(diag, xasprintf("%s: cannot open: %s", path, strerror(errno)));
        return NULL;
    }
    char *cwd = absolute_dir(NULL);
    char *file = cfg_path_resolve(cwd, path);
    free(cwd);
    loader_t ld = {.name = path, .fp = fp};
    cfg_t *cfg = load(&ld, file, parent_dir(file), diag);
    fclose(fp);
    return cfg;
}

cfg_t *cfg_load_string(const char *text, const char *name, const char *dir, cfg_diag_t *diag) {
    char *abs_dir = absolute_dir(dir);
    loader_t ld = {.name = name, .text = text, .text_len = strlen(text)};
    return load(&ld, cfg_path_resolve(abs_dir, name), abs_dir, diag);
}

/* ------------------------------------------------------------------------------------------ */
/* Freeing, lookup, live settings */

static void free_server(cfg_server_t *s) {
    for (size_t i = 0; i < s->n_listen; i++) {
        free(s->listen[i].text);
        free(s->listen[i].host);
        free(s->listen[i].path);
    }
    free(s->listen);
    free(s->root);
    cfg_strv_free(s->index, s->n_index);
    free(s->access_log);
    free(s->error_log);
    free(s->control_socket);
    free(s->runtime_dir);
    free(s->temp_dir);
    free(s->user);
    free(s->status_path);
    free(s->status_allow);
}

static void free_app(cfg_app_t *a) {
    free(a->name);
    free(a->full_path);
    free(a->arguments);
    cfg_strv_free(a->argv, SIZE_MAX);
    cfg_strv_free(a->env, a->n_env);
    free(a->monitor_changes_to);
    cfg_strv_free(a->utf8_vars, a->n_utf8_vars);
    free(a->user);
}

static void free_handler(cfg_handler_t *h) {
    free(h->name);
    free(h->path);
    cfg_strv_free(h->verbs, h->n_verbs);
    free(h->script_processor);
}

void cfg_free(cfg_t *cfg) {
    if (cfg == NULL) return;
    free_server(&cfg->server);
    for (size_t i = 0; i < cfg->n_apps; i++) free_app(&cfg->apps[i]);
    free(cfg->apps);
    for (size_t i = 0; i < cfg->n_handlers; i++) free_handler(&cfg->handlers[i]);
    free(cfg->handlers);
    free(cfg->file);
    free(cfg->dir);
    free(cfg);
}

cfg_app_t *cfg_find_app(const cfg_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (strcmp(cfg->apps[i].name, name) == 0) return &cfg->apps[i];
    return NULL;
}

int cfg_app_set_live(cfg_app_t *app, const char *key, const char *value, char *err, size_t errlen) {
    char msg[512];
    const cfg_key_t *k = cfg_key_find(CFG_SECT_FASTCGI, key);
    if (k == NULL) {
        snprintf(msg, sizeof(msg), "unknown key '%s'", key);
    } else if (!(k->flags & CFG_KEY_LIVE)) {
        snprintf(msg, sizeof(msg),
                 "%s cannot be changed on a running server: edit the configuration and reload",
                 k->name);
    } else {
        char why[400];
        cfg_setctx_t ctx = {.dir = NULL, .line = 0, .err = why, .errlen = sizeof(why)};
        if (k->set(k, app, value, &ctx) == 0) return 0;
        snprintf(msg, sizeof(msg), "%s: %s", k->name, why);
    }
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return -1;
}
