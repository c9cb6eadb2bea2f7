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
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <glob.h>
#include <pcre2.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One input on the include stack: the main file or string, an included file, or the list of
 * files a glob matched (each opened in turn above it). */
typedef struct frame {
    FILE *fp;           /* a file, or NULL */
    const char *text;   /* the main string (cfg_load_string), or NULL */
    size_t text_len, text_pos;
    char **paths;       /* a glob's files still to read (paths[next..n)) */
    size_t n_paths, next_path;
    size_t file;        /* index into cfg->files (files only) */
    char *dir;          /* its directory: includes and relative paths start here */
    int line;           /* lines read from it so far */
    dev_t dev;          /* for cycle detection */
    ino_t ino;
    int include_pos;    /* the include line's position (included files) */
} frame_t;

#define MAX_INCLUDE_DEPTH 16
#define MAX_FILES 1000

/* Where a position (a line number counted over every file read, in reading order) is. */
typedef struct pos_loc {
    size_t file;
    int line;
} pos_loc_t;

typedef struct loader {
    cfg_t *cfg;
    const char *name; /* borrowed: the main file's name as the caller gave it */
    diag_item_t *items;
    size_t n_items;
    section_t *sects;
    size_t n_sects;
    long cur;    /* index into sects, or CUR_NONE / CUR_SKIP */
    long server; /* index into sects of [server], or -1 */
    /* Input: the include stack. `line` holds the current line, always ending in '\n'. */
    frame_t stack[MAX_INCLUDE_DEPTH + 2];
    size_t depth;
    char **names; /* per file (as cfg->files): the name shown in messages */
    pos_loc_t *locs; /* per position */
    size_t n_locs;
    char *line;
    size_t line_len, line_cap, line_pos;
    int lineno;  /* the current position */
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
    if (line > 0 && (size_t)line < ld->n_locs) {
        const pos_loc_t *l = &ld->locs[line];
        it.msg = xasprintf("%s:%d: %s", ld->names[l->file], l->line, msg);
    } else if (line > 0) { /* a line past the end (an empty file's line 1) */
        it.msg = xasprintf("%s:%d: %s", ld->name, line, msg);
    } else {
        it.msg = xasprintf("%s: %s", ld->name, msg);
    }
    free(msg);
    ld->items = xrealloc(ld->items, (ld->n_items + 1) * sizeof(*ld->items));
    ld->items[ld->n_items++] = it;
}

/* "file:line" of a position (a heap string). */
static char *loader_where(loader_t *ld, int pos) {
    if (pos > 0 && (size_t)pos < ld->n_locs) {
        const pos_loc_t *l = &ld->locs[pos];
        if ((size_t)ld->lineno < ld->n_locs && ld->locs[ld->lineno].file == l->file)
            return xasprintf("line %d", l->line); /* in the same file */
        return xasprintf("%s:%d", ld->names[l->file], l->line);
    }
    return xasprintf("%s", ld->name);
}

static char *where_cb(void *arg, int pos) {
    return loader_where(arg, pos);
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
    case CFG_SECT_SITE: return &ld->cfg->sites[sec->index];
    case CFG_SECT_REWRITE: return &ld->cfg->rewrites[sec->index];
    case CFG_SECT_HEADERS: return &ld->cfg->headers[sec->index];
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
        char *first = loader_where(ld, ld->sects[ld->server].line);
        error_at(ld, ld->lineno, "duplicate section [server] (first at %s)", first);
        free(first);
    } else {
        ld->server = ld->cur = add_section(ld, CFG_SECT_SERVER, 0, xstrdup("[server]"));
    }
}

static const char *sect_kind_name(cfg_sect_kind_t kind) {
    switch (kind) {
    case CFG_SECT_SERVER: return "server";
    case CFG_SECT_FASTCGI: return "fastcgi";
    case CFG_SECT_HANDLER: return "handler";
    case CFG_SECT_SITE: return "site";
    case CFG_SECT_REWRITE: return "rewrite";
    case CFG_SECT_HEADERS: return "headers";
    }
    return "?";
}

/* The file the current line comes from (index into cfg->files). */
static size_t cur_file(const loader_t *ld) {
    return ld->locs[ld->lineno].file;
}

/* A new named section: checks the name, then appends a zeroed object. Application and site
 * names follow the same rule (they appear in file names, metrics and `site =` lists). */
static void open_named(loader_t *ld, cfg_sect_kind_t kind, str_t name) {
    const char *kname = sect_kind_name(kind);
    const char *what = kind == CFG_SECT_FASTCGI ? "application" : kname;
    bool plain = kind == CFG_SECT_FASTCGI || kind == CFG_SECT_SITE;
    if (name.len == 0) {
        error_at(ld, ld->lineno, "[%s:NAME] needs a name", kname);
        return;
    }
    if (plain ? !valid_app_name(name) : !valid_handler_name(name)) {
        error_at(ld, ld->lineno,
                 plain ? "'%.*s' is not a valid %s name (up to 64 letters, digits, '_', "
                         "'.' and '-', not starting with '.' or '-')"
                       : "'%.*s' is not a valid %s name (no control characters)",
                 (int)name.len, name.p, what);
        return;
    }
    char *title = xasprintf("[%s:%.*s]", kname, (int)name.len, name.p);
    for (size_t i = 0; i < ld->n_sects; i++) {
        if (strcmp(ld->sects[i].title, title) != 0) continue;
        char *first = loader_where(ld, ld->sects[i].line);
        error_at(ld, ld->lineno, "duplicate section %s (first at %s)", title, first);
        free(first);
        free(title);
        return;
    }
    cfg_t *cfg = ld->cfg;
    size_t index = 0;
    char *nm = xstrndup(name.p, name.len);
    const char *file = cfg->files[cur_file(ld)];
    int line = ld->locs[ld->lineno].line;
    switch (kind) {
    case CFG_SECT_FASTCGI:
        index = cfg->n_apps++;
        cfg->apps = xrealloc(cfg->apps, cfg->n_apps * sizeof(*cfg->apps));
        cfg->apps[index] = (cfg_app_t){.name = nm, .file = file, .line = line};
        break;
    case CFG_SECT_HANDLER:
        index = cfg->n_handlers++;
        cfg->handlers = xrealloc(cfg->handlers, cfg->n_handlers * sizeof(*cfg->handlers));
        cfg->handlers[index] = (cfg_handler_t){.name = nm, .line = line};
        break;
    case CFG_SECT_SITE:
        index = cfg->n_sites++;
        cfg->sites = xrealloc(cfg->sites, cfg->n_sites * sizeof(*cfg->sites));
        cfg->sites[index] = (cfg_site_t){.name = nm, .file = file, .line = line};
        break;
    case CFG_SECT_REWRITE:
        index = cfg->n_rewrites++;
        cfg->rewrites = xrealloc(cfg->rewrites, cfg->n_rewrites * sizeof(*cfg->rewrites));
        cfg->rewrites[index] = (cfg_rewrite_t){.name = nm, .line = line};
        break;
    case CFG_SECT_HEADERS:
        index = cfg->n_headers++;
        cfg->headers = xrealloc(cfg->headers, cfg->n_headers * sizeof(*cfg->headers));
        cfg->headers[index] = (cfg_headers_t){.name = nm, .line = line};
        break;
    case CFG_SECT_SERVER:
        free(nm);
        return;
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
    else if (STR_IEQ(kind, "site"))
        open_named(ld, CFG_SECT_SITE, name);
    else if (STR_IEQ(kind, "rewrite"))
        open_named(ld, CFG_SECT_REWRITE, name);
    else if (STR_IEQ(kind, "headers"))
        open_named(ld, CFG_SECT_HEADERS, name);
    else
        error_at(ld, ld->lineno,
                 "unknown section [%.*s]: expected [server], [fastcgi:NAME], [handler:NAME], "
                 "[site:NAME], [rewrite:NAME] or [headers:NAME]",
                 (int)inner.len, inner.p);
}

/* ------------------------------------------------------------------------------------------ */
/* Keys */

/* Run the key's setter on the section's object; a failure becomes "file:line: key: message". */
static void apply(loader_t *ld, const section_t *sec, const cfg_key_t *key, const char *value,
                  int line) {
    char msg[1024];
    cfg_setctx_t ctx = {.dir = ld->depth ? ld->stack[ld->depth - 1].dir : ld->cfg->dir,
                        .line = line, .err = msg, .errlen = sizeof(msg),
                        .where = where_cb, .where_arg = ld};
    msg[0] = '\0';
    if (key->set(key, section_object(ld, sec), value, &ctx) < 0)
        error_at(ld, line, "%s: %s", key->name, msg);
}

static void include(loader_t *ld, const char *value);

/* inih's handler: one "name = value" line (the line the reader delivered last). */
static int on_key(void *user, const char *section, const char *name, const char *value) {
    loader_t *ld = user;
    (void)section; /* sections are tracked by the reader */
    if (*name == '\0') {
        error_at(ld, ld->lineno, "syntax error: a key name is missing before '='");
        return 1;
    }
    if (cfg_ascii_ieq(name, "include")) {
        include(ld, value);
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
        char *first = loader_where(ld, sec->seen[row]);
        error_at(ld, ld->lineno, "duplicate key '%s' in %s (first given at %s)", key->name,
                 sec->title, first);
        free(first);
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

static size_t add_file(loader_t *ld, const char *abs, const char *shown) {
    cfg_t *cfg = ld->cfg;
    cfg->files = xrealloc(cfg->files, (cfg->n_files + 1) * sizeof(*cfg->files));
    cfg->files[cfg->n_files] = xstrdup(abs);
    ld->names = xrealloc(ld->names, (cfg->n_files + 1) * sizeof(*ld->names));
    ld->names[cfg->n_files] = xstrdup(shown);
    return cfg->n_files++;
}

static void frame_close(frame_t *f) {
    if (f->fp) fclose(f->fp);
    cfg_strv_free(f->paths, f->n_paths);
    free(f->dir);
    memset(f, 0, sizeof(*f));
}

static char *parent_dir(const char *file);

/* Open `path` (absolute) as a new file frame, for the include at position `pos`. */
static void push_file(loader_t *ld, const char *path, int pos) {
    if (ld->depth >= MAX_INCLUDE_DEPTH + 1) {
        error_at(ld, pos, "include: more than %d levels of nested includes", MAX_INCLUDE_DEPTH);
        return;
    }
    if (ld->cfg->n_files >= MAX_FILES) {
        error_at(ld, pos, "include: more than %d files", MAX_FILES);
        return;
    }
    FILE *fp = fopen(path, "re");
    if (fp == NULL) {
        error_at(ld, pos, "include: cannot open %s: %s", path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        error_at(ld, pos, "include: %s is not a regular file", path);
        fclose(fp);
        return;
    }
    for (size_t i = 0; i < ld->depth; i++) {
        const frame_t *f = &ld->stack[i];
        if ((f->fp || f->text) && f->dev == st.st_dev && f->ino == st.st_ino) {
            error_at(ld, pos, "include: %s includes itself (a cycle)", path);
            fclose(fp);
            return;
        }
    }
    frame_t *f = &ld->stack[ld->depth++];
    *f = (frame_t){.fp = fp, .dir = parent_dir(path), .dev = st.st_dev, .ino = st.st_ino,
                   .include_pos = pos};
    f->file = add_file(ld, path, path);
}

static bool has_glob(const char *s) {
    return strpbrk(s, "*?[") != NULL;
}

/* include = PATTERN: the files it names, in sorted order, read as if written here. A pattern
 * with wildcards may match nothing (a conf.d directory may be empty); a plain path must exist. */
static void include(loader_t *ld, const char *value) {
    int pos = ld->lineno;
    if (*value == '\0') {
        error_at(ld, pos, "include: a file name or a pattern is required");
        return;
    }
    const char *dir = ld->stack[ld->depth - 1].dir;
    char *pattern = cfg_path_resolve(dir, value);
    if (!has_glob(pattern)) {
        push_file(ld, pattern, pos);
        free(pattern);
        return;
    }
    glob_t g;
    int rc = glob(pattern, GLOB_ERR, NULL, &g); /* sorted by the C library's collation */
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        free(pattern);
        if (rc == 0) globfree(&g);
        return;
    }
    if (rc != 0) {
        error_at(ld, pos, "include: cannot read the files of %s", pattern);
        free(pattern);
        return;
    }
    free(pattern);
    if (ld->depth >= MAX_INCLUDE_DEPTH + 1) {
        error_at(ld, pos, "include: more than %d levels of nested includes", MAX_INCLUDE_DEPTH);
        globfree(&g);
        return;
    }
    frame_t *f = &ld->stack[ld->depth++];
    *f = (frame_t){.dir = xstrdup(dir), .include_pos = pos};
    for (size_t i = 0; i < g.gl_pathc; i++) {
        /* Directories and other non-files in a conf.d are skipped, as run-parts does. */
        struct stat st;
        if (stat(g.gl_pathv[i], &st) == 0 && !S_ISREG(st.st_mode)) continue;
        cfg_strv_push(&f->paths, &f->n_paths, xstrdup(g.gl_pathv[i]));
    }
    globfree(&g);
}

/* The next raw line of the top frame, with its '\n' if it has one; at a frame's end it moves to
 * the frame below. False at the end of the main input (or on a read error). */
static bool read_raw_line(loader_t *ld) {
    while (ld->depth > 0) {
        frame_t *f = &ld->stack[ld->depth - 1];
        if (f->paths) { /* a glob's list: open the next file above it */
            if (f->next_path < f->n_paths) {
                size_t i = f->next_path++;
                push_file(ld, f->paths[i], f->include_pos);
                continue;
            }
        } else if (f->fp) {
            errno = 0;
            ssize_t n = getline(&ld->line, &ld->line_cap, f->fp);
            if (n >= 0) {
                ld->line_len = (size_t)n;
                f->line++;
                return true;
            }
            if (ferror(f->fp)) {
                ld->read_errno = errno ? errno : EIO;
                if (ld->depth == 1) return false;
                error_at(ld, f->include_pos, "include: read error in %s: %s",
                         ld->cfg->files[f->file], strerror(ld->read_errno));
                ld->read_errno = 0;
            }
        } else if (f->text && f->text_pos < f->text_len) {
            const char *s = f->text + f->text_pos;
            const char *nl = memchr(s, '\n', f->text_len - f->text_pos);
            size_t n = nl ? (size_t)(nl - s) + 1 : f->text_len - f->text_pos;
            reserve_line(ld, n + 1);
            memcpy(ld->line, s, n);
            ld->line_len = n;
            f->text_pos += n;
            f->line++;
            return true;
        }
        if (ld->depth == 1) return false; /* the main input stays for loader_dispose */
        frame_close(f);
        ld->depth--;
    }
    return false;
}

/* A new position for the line just read. */
static void record_pos(loader_t *ld) {
    frame_t *f = &ld->stack[ld->depth - 1];
    ld->lineno = (int)ld->n_locs;
    ld->locs = xrealloc(ld->locs, (ld->n_locs + 1) * sizeof(*ld->locs));
    ld->locs[ld->n_locs++] = (pos_loc_t){.file = f->file, .line = f->line};
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
    record_pos(ld);
    ld->line_pos = 0;
    reserve_line(ld, ld->line_len + 2);
    if (ld->line_len == 0 || ld->line[ld->line_len - 1] != '\n') ld->line[ld->line_len++] = '\n';
    ld->line[ld->line_len] = '\0';
    if (ld->stack[ld->depth - 1].line == 1 && ld->line_len >= 3 &&
        memcmp(ld->line, "\xEF\xBB\xBF", 3) == 0) {
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

/* ---- sites (SPEC §6) ---- */

static int seen_at(const section_t *sec, const char *key) {
    const cfg_key_t *k = cfg_key_find(sec->kind, key);
    return k ? sec->seen[k - cfg_keys] : 0;
}

static void strv_copy(cfg_strv_t *dst, const cfg_strv_t *src) {
    dst->v = xcalloc(src->n ? src->n : 1, sizeof(char *));
    dst->n = src->n;
    for (size_t i = 0; i < src->n; i++) dst->v[i] = xstrdup(src->v[i]);
}

static bool strv_has(const cfg_strv_t *v, const char *s) {
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], s) == 0) return true;
    return false;
}

static void push_index(size_t **v, size_t *n, size_t i) {
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = i;
}

static const section_t *find_section(const loader_t *ld, cfg_sect_kind_t kind, size_t index) {
    for (size_t i = 0; i < ld->n_sects; i++)
        if (ld->sects[i].kind == kind && ld->sects[i].index == index) return &ld->sects[i];
    return NULL;
}

/* `site = NAME ...` of one rule: every name must be a site; adds the rule to each site's list. */
static void attach_rule(loader_t *ld, cfg_sect_kind_t kind, size_t index, const cfg_strv_t *names) {
    cfg_t *cfg = ld->cfg;
    const section_t *sec = find_section(ld, kind, index);
    for (size_t i = 0; i < names->n; i++) {
        bool found = false;
        for (size_t k = 0; k < cfg->n_sites && !found; k++)
            found = strcmp(cfg->sites[k].name, names->v[i]) == 0;
        if (!found && sec)
            error_at(ld, seen_at(sec, "site"), "site: there is no [site:%s] section",
                     names->v[i]);
    }
    for (size_t k = 0; k < cfg->n_sites; k++) {
        cfg_site_t *site = &cfg->sites[k];
        if (names->n && !strv_has(names, site->name)) continue;
        switch (kind) {
        case CFG_SECT_HANDLER: push_index(&site->handlers, &site->n_handlers, index); break;
        case CFG_SECT_REWRITE: push_index(&site->rewrites, &site->n_rewrites, index); break;
        case CFG_SECT_HEADERS: push_index(&site->headers, &site->n_headers, index); break;
        default: break;
        }
    }
}

/* One listening socket serves every site that names its address: its options must agree. */
static void check_listen_options(loader_t *ld) {
    cfg_t *cfg = ld->cfg;
    size_t n = cfg->server.n_listen;
    for (size_t k = 0; k < cfg->n_sites; k++) n += cfg->sites[k].n_listen;
    const cfg_listen_t **all = xcalloc(n ? n : 1, sizeof(*all));
    size_t m = 0;
    for (size_t i = 0; i < cfg->server.n_listen; i++) all[m++] = &cfg->server.listen[i];
    for (size_t k = 0; k < cfg->n_sites; k++)
        for (size_t i = 0; i < cfg->sites[k].n_listen; i++) all[m++] = &cfg->sites[k].listen[i];
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(all[i]->text, all[j]->text) != 0) continue;
            const char *opt = all[i]->proxy != all[j]->proxy ? "proxy"
                              : all[i]->tls != all[j]->tls   ? "tls"
                              : all[i]->h2c != all[j]->h2c   ? "h2c"
                                                             : NULL;
            if (opt == NULL) continue;
            bool with = strcmp(opt, "proxy") == 0 ? all[j]->proxy
                        : strcmp(opt, "tls") == 0 ? all[j]->tls
                                                  : all[j]->h2c;
            char *first = loader_where(ld, all[j]->line);
            error_at(ld, all[i]->line,
                     "listen: %s is also given %s the %s option at %s: one address is one "
                     "socket, give it the same options everywhere",
                     all[i]->text, with ? "with" : "without", opt, first);
            free(first);
            break;
        }
    }
    free(all);
    /* A TLS listener needs a certificate for every site it serves (SPEC §7). */
    for (size_t k = 0; k < cfg->n_sites; k++) {
        const cfg_site_t *site = &cfg->sites[k];
        if (site->tls_certificate) continue;
        const cfg_listen_t *tls = NULL;
        for (size_t i = 0; i < cfg->server.n_listen && !tls; i++)
            if (cfg->server.listen[i].tls) tls = &cfg->server.listen[i];
        for (size_t i = 0; i < site->n_listen && !tls; i++)
            if (site->listen[i].tls) tls = &site->listen[i];
        if (tls == NULL) continue;
        if (cfg->explicit_sites)
            error_at(ld, tls->line,
                     "listen: %s is a tls listener and [site:%s] has no tlsCertificate (give one "
                     "in the site, or in [server] for every site)",
                     tls->text, site->name);
        else
            error_at(ld, tls->line, "listen: %s is a tls listener and there is no tlsCertificate",
                     tls->text);
    }
}

static void finish_sites(loader_t *ld) {
    cfg_t *cfg = ld->cfg;
    const section_t *srv = ld->server >= 0 ? &ld->sects[ld->server] : NULL;
    cfg_site_t *base = &cfg->server.site;
    cfg->explicit_sites = cfg->n_sites > 0;
    if (!cfg->explicit_sites) {
        /* [server] is the one site: its site keys move over. */
        if (srv && base->root == NULL && !seen_at(srv, "root"))
            error_at(ld, srv->line, "missing required key 'root' in [server]");
        cfg->sites = xcalloc(1, sizeof(cfg_site_t));
        cfg->n_sites = 1;
        cfg_site_t *one = &cfg->sites[0];
        *one = *base;
        memset(base, 0, sizeof(*base));
        one->name = xstrdup("default");
        cfg_strv_push(&one->hosts.v, &one->hosts.n, xstrdup("*"));
        one->is_default = true;
        one->file = cfg->files[0];
        one->line = srv ? ld->locs[srv->line].line : 0;
        /* [server]'s own values stay the defaults the status page shows. */
        base->root = one->root ? xstrdup(one->root) : NULL;
        strv_copy(&base->index, &one->index);
        base->symlinks = one->symlinks;
        base->max_body_bytes = one->max_body_bytes;
        base->compress = one->compress;
        base->compress_min_bytes = one->compress_min_bytes;
        base->access_log = one->access_log ? xstrdup(one->access_log) : NULL;
        base->tls_certificate = one->tls_certificate ? xstrdup(one->tls_certificate) : NULL;
        base->tls_key = one->tls_key ? xstrdup(one->tls_key) : NULL;
        base->redirect_to_https = one->redirect_to_https;
        base->hsts = one->hsts;
    } else {
        static const char *const one_site_keys[] = {"alias", "fallback", "errorPage", "deny"};
        for (size_t i = 0; srv && i < sizeof(one_site_keys) / sizeof(one_site_keys[0]); i++) {
            int at = seen_at(srv, one_site_keys[i]);
            if (at)
                error_at(ld, at,
                         "%s in [server] applies only when there is no [site:NAME]: put it in "
                         "the sites",
                         one_site_keys[i]);
        }
        for (size_t k = 0; k < cfg->n_sites; k++) {
            cfg_site_t *site = &cfg->sites[k];
            const section_t *sec = find_section(ld, CFG_SECT_SITE, k);
            if (sec == NULL) continue;
            if (!seen_at(sec, "index")) strv_copy(&site->index, &base->index);
            if (!seen_at(sec, "symlinks")) site->symlinks = base->symlinks;
            if (!seen_at(sec, "maxBodyBytes")) site->max_body_bytes = base->max_body_bytes;
            if (!seen_at(sec, "compress")) site->compress = base->compress;
            if (!seen_at(sec, "compressMinBytes"))
                site->compress_min_bytes = base->compress_min_bytes;
            if (!seen_at(sec, "accessLog"))
                site->access_log = base->access_log ? xstrdup(base->access_log) : NULL;
            if (!seen_at(sec, "tlsCertificate")) {
                site->tls_certificate = base->tls_certificate ? xstrdup(base->tls_certificate) : NULL;
                if (!seen_at(sec, "tlsKey"))
                    site->tls_key = base->tls_key ? xstrdup(base->tls_key) : NULL;
            }
            if (!seen_at(sec, "redirectToHttps")) site->redirect_to_https = base->redirect_to_https;
            if (!seen_at(sec, "hsts")) site->hsts = base->hsts;
            /* A host name belongs to one site; one site at most is the default. */
            for (size_t h = 0; h < site->hosts.n; h++) {
                for (size_t j = 0; j < k; j++) {
                    if (!strv_has(&cfg->sites[j].hosts, site->hosts.v[h])) continue;
                    if (strcmp(site->hosts.v[h], "*") == 0)
                        error_at(ld, seen_at(sec, "hosts"),
                                 "hosts: [site:%s] is already the default site (\"*\"): only "
                                 "one site may be",
                                 cfg->sites[j].name);
                    else
                        error_at(ld, seen_at(sec, "hosts"),
                                 "hosts: %s is already a host of [site:%s]", site->hosts.v[h],
                                 cfg->sites[j].name);
                }
            }
        }
    }
    check_listen_options(ld);
    for (size_t i = 0; i < cfg->n_handlers; i++)
        attach_rule(ld, CFG_SECT_HANDLER, i, &cfg->handlers[i].sites);
    for (size_t i = 0; i < cfg->n_rewrites; i++) {
        cfg_rewrite_t *rw = &cfg->rewrites[i];
        const section_t *sec = find_section(ld, CFG_SECT_REWRITE, i);
        if (rw->to && rw->to[0] != '/' && rw->redirect == 0 && sec)
            error_at(ld, seen_at(sec, "to"),
                     "to: '%s' is an absolute URL: only a redirect (redirect = 301, 302, 307 or "
                     "308) may leave the site",
                     rw->to);
        attach_rule(ld, CFG_SECT_REWRITE, i, &rw->sites);
    }
    for (size_t i = 0; i < cfg->n_headers; i++)
        attach_rule(ld, CFG_SECT_HEADERS, i, &cfg->headers[i].sites);
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
    for (size_t i = 0; i < ld->n_sects; i++) {
        const section_t *sec = &ld->sects[i];
        const char *key = NULL;
        char rule[256];
        if (sec->kind != CFG_SECT_FASTCGI) continue;
        const cfg_app_t *app = &cfg->apps[sec->index];
        if (!cfg_app_check(app, &key, rule, sizeof(rule))) continue;
        int at = seen_at(sec, key);
        error_at(ld, at ? at : sec->line, "%s", rule);
    }
    size_t sp_row = (size_t)(cfg_key_find(CFG_SECT_HANDLER, "scriptProcessor") - cfg_keys);
    for (size_t i = 0; i < ld->n_sects; i++)
        if (ld->sects[i].kind == CFG_SECT_HANDLER) resolve_handler(ld, &ld->sects[i], sp_row);
    finish_sites(ld);
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
    while (ld->depth > 0) frame_close(&ld->stack[--ld->depth]);
    cfg_strv_free(ld->names, ld->cfg ? ld->cfg->n_files : 0);
    free(ld->locs);
}

/* Parse the main input set up in ld->stack[0]. Takes ownership of `file` and `dir`. */
static cfg_t *load(loader_t *ld, char *file, char *dir, cfg_diag_t *diag) {
    ld->cfg = xcalloc(1, sizeof(cfg_t));
    ld->cfg->file = file;
    ld->cfg->dir = dir;
    ld->cur = CUR_NONE;
    ld->server = -1;
    ld->depth = 1;
    ld->stack[0].dir = xstrdup(dir);
    ld->stack[0].file = add_file(ld, file, ld->name);
    struct stat st;
    if (ld->stack[0].fp && fstat(fileno(ld->stack[0].fp), &st) == 0) {
        ld->stack[0].dev = st.st_dev;
        ld->stack[0].ino = st.st_ino;
    }
    ld->locs = xcalloc(1, sizeof(*ld->locs)); /* position 0: the whole main file */
    ld->n_locs = 1;
    setup_inih();
    int rc = ini_parse_stream(ini_read, ld, on_key, ld);
    if (rc == -2) {
        fputs("fcgihost: out of memory parsing the configuration\n", stderr);
        abort();
    }
    if (ld->read_errno) /* the rest would be noise about a file we could not read whole */
        error_at(ld, 0, "read error: %s", strerror(ld->read_errno));
    else if (rc > 0 && ld->n_items == 0) /* inih found something the reader did not: unlikely */
        error_at(ld, 0, "syntax error");
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
    loader_t ld = {.name = path};
    ld.stack[0].fp = fp; /* closed by loader_dispose */
    return load(&ld, file, parent_dir(file), diag);
}

cfg_t *cfg_load_string(const char *text, const char *name, const char *dir, cfg_diag_t *diag) {
    char *abs_dir = absolute_dir(dir);
    loader_t ld = {.name = name};
    ld.stack[0].text = text;
    ld.stack[0].text_len = strlen(text);
    return load(&ld, cfg_path_resolve(abs_dir, name), abs_dir, diag);
}

/* ------------------------------------------------------------------------------------------ */
/* Freeing, lookup, live settings */

void cfg_site_dispose(cfg_site_t *s) {
    free(s->name);
    free(s->tls_certificate);
    free(s->tls_key);
    cfg_strv_free(s->hosts.v, s->hosts.n);
    for (size_t i = 0; i < s->n_listen; i++) cfg_listen_dispose(&s->listen[i]);
    free(s->listen);
    free(s->root);
    cfg_strv_free(s->index.v, s->index.n);
    free(s->access_log);
    for (size_t i = 0; i < s->aliases.n; i++) {
        free(s->aliases.v[i].prefix);
        free(s->aliases.v[i].dir);
    }
    free(s->aliases.v);
    free(s->fallback);
    for (size_t i = 0; i < s->error_pages.n; i++) free(s->error_pages.v[i].url);
    free(s->error_pages.v);
    for (size_t i = 0; i < s->deny.n; i++) free(s->deny.v[i].pattern);
    free(s->deny.v);
    free(s->handlers);
    free(s->rewrites);
    free(s->headers);
}

static void free_server(cfg_server_t *s) {
    for (size_t i = 0; i < s->n_listen; i++) cfg_listen_dispose(&s->listen[i]);
    free(s->listen);
    cfg_site_dispose(&s->site);
    free(s->error_log);
    free(s->control_socket);
    free(s->runtime_dir);
    free(s->temp_dir);
    free(s->user);
    free(s->status_path);
    free(s->status_allow);
    free(s->trusted_proxies);
    free(s->tls_ciphers);
}

static void free_rewrite(cfg_rewrite_t *rw) {
    free(rw->name);
    free(rw->match);
    free(rw->prefix);
    if (rw->re) pcre2_code_free(rw->re);
    free(rw->to);
    cfg_strv_free(rw->sites.v, rw->sites.n);
}

static void free_headers(cfg_headers_t *h) {
    free(h->name);
    free(h->path);
    for (size_t i = 0; i < h->n_set; i++) {
        free(h->set[i].name);
        free(h->set[i].value);
    }
    free(h->set);
    cfg_strv_free(h->sites.v, h->sites.n);
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
    cfg_strv_free(h->sites.v, h->sites.n);
}

void cfg_free(cfg_t *cfg) {
    if (cfg == NULL) return;
    free_server(&cfg->server);
    for (size_t i = 0; i < cfg->n_apps; i++) free_app(&cfg->apps[i]);
    free(cfg->apps);
    for (size_t i = 0; i < cfg->n_handlers; i++) free_handler(&cfg->handlers[i]);
    free(cfg->handlers);
    for (size_t i = 0; i < cfg->n_sites; i++) cfg_site_dispose(&cfg->sites[i]);
    free(cfg->sites);
    for (size_t i = 0; i < cfg->n_rewrites; i++) free_rewrite(&cfg->rewrites[i]);
    free(cfg->rewrites);
    for (size_t i = 0; i < cfg->n_headers; i++) free_headers(&cfg->headers[i]);
    free(cfg->headers);
    cfg_strv_free(cfg->files, cfg->n_files);
    free(cfg->file);
    free(cfg->dir);
    free(cfg);
}

cfg_app_t *cfg_find_app(const cfg_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_apps; i++)
        if (strcmp(cfg->apps[i].name, name) == 0) return &cfg->apps[i];
    return NULL;
}

/* Does `env` set NAME (any value)? */
static bool env_sets(const cfg_app_t *app, const char *name) {
    size_t len = strlen(name);
    for (size_t i = 0; i < app->n_env; i++)
        if (strncmp(app->env[i], name, len) == 0 && app->env[i][len] == '=') return true;
    return false;
}

bool cfg_app_check(const cfg_app_t *app, const char **key, char *msg, size_t len) {
    const char *k = NULL;
    if (app->max_instances && app->min_instances > app->max_instances) {
        k = "minInstances";
        snprintf(msg, len,
                 "minInstances (%u) is above maxInstances (%u): at most maxInstances processes "
                 "may run", app->min_instances, app->max_instances);
    } else if (app->prefork_children == 1) {
        k = "preforkChildren";
        snprintf(msg, len, "preforkChildren = 1: 0 (one process per socket) or at least 2 "
                           "(children per process)");
    } else if (app->prefork_children >= 2 && env_sets(app, "PHP_FCGI_CHILDREN")) {
        k = "preforkChildren";
        snprintf(msg, len, "preforkChildren and env PHP_FCGI_CHILDREN together: the server sets "
                           "PHP_FCGI_CHILDREN to preforkChildren itself; remove it from env");
    }
    if (key) *key = k;
    return k != NULL;
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
        unsigned char old[16];
        memcpy(old, (char *)app + k->off, k->size < sizeof(old) ? k->size : sizeof(old));
        if (k->set(k, app, value, &ctx) != 0) {
            snprintf(msg, sizeof(msg), "%s: %s", k->name, why);
        } else if (cfg_app_check(app, NULL, why, sizeof(why))) {
            snprintf(msg, sizeof(msg), "%s: '%s' refused: %s", k->name, value, why);
            /* live keys are scalars: putting the old bytes back undoes the change */
            memcpy((char *)app + k->off, old, k->size < sizeof(old) ? k->size : sizeof(old));
        } else {
            return 0;
        }
    }
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return -1;
}
