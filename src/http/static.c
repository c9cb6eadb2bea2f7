/* Static files. See static.h.
 *
 * Resolution is done with openat2(RESOLVE_BENEATH) against an O_PATH descriptor of the root, so
 * "is this inside root?" is answered by the kernel in the same call that opens the file. Results
 * are cached for one second per path (open descriptor, metadata, formatted validators and, for small
 * files, the bytes), so a hot small file costs one writev per request. Large bodies are sent with
 * sendfile(2) on the libuv threadpool (our own uv_queue_work: libuv 1.44's uv_fs_sendfile falls back
 * to a read/write emulation that blocks a pool thread in poll() on a slow socket); when the socket is full we wait for it to become writable
 * with a uv_poll on a duplicate of its descriptor (the dup also keeps the socket alive while a
 * threadpool sendfile may still be using it).
 *
 * Descriptors (SPEC §8: caches must not hold the last ones): a file kept in memory keeps no
 * descriptor; the others are bounded (an eighth of RLIMIT_NOFILE, at most 1024), dropped by the
 * maintenance tick once past their second, and all released when an open fails with EMFILE. */
#include "http/static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "http/encoding.h"
#include "http/mime.h"
#include "http/path.h"
#include "http/request.h"
#include "http/http_server.h"
#include "http/site.h"
#include "util/log.h"
#include "util/xalloc.h"

#define CACHE_TTL_MS 1000u
#define CACHE_MAX_ENTRIES 4096u
#define CACHE_MAX_INLINE (64u * 1024u)           /* files up to this are kept in memory */
#define CACHE_MAX_DATA (64u * 1024u * 1024u)     /* total bytes kept in memory */
#define SENDFILE_CHUNK (4u * 1024u * 1024u)
#define COPY_CHUNK (256u * 1024u)   /* over TLS: read on the threadpool, encrypted on the loop */

typedef struct file_entry {
    struct file_entry *hnext;
    char *key;
    size_t keylen;
    unsigned refs;      /* the table's reference counts as one while in_table */
    bool in_table;
    uint64_t checked;   /* loop ms when resolved */
    static_kind_t kind;
    int fd;
    int64_t size;
    time_t mtime;
    const char *ctype;  /* borrowed from the mime table */
    char etag[48];
    char lastmod[40];
    char *data;         /* the whole file when small */
    char *coded[3];     /* data coded (index: http_encoding_t), made on the first request that
                           takes the coding and kept with the entry: coded once, not per request */
    uint32_t coded_len[3];
} file_entry_t;

struct file_cache {
    file_entry_t **buckets;
    size_t nbuckets;
    size_t n;
    uint64_t data_bytes;
    size_t n_fds;       /* descriptors held by entries in the table */
    size_t max_fds;
};

file_cache_t *file_cache_new(void) {
    file_cache_t *fc = xcalloc(1, sizeof(*fc));
    fc->nbuckets = 1024;
    fc->buckets = xcalloc(fc->nbuckets, sizeof(file_entry_t *));
    struct rlimit rl;
    rlim_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 8 : 128;
    fc->max_fds = lim < 8 ? 8 : lim > 1024 ? 1024 : (size_t)lim;
    return fc;
}

static void entry_unref(file_entry_t *e) {
    if (--e->refs > 0) return;
    if (e->fd >= 0) close(e->fd);
    free(e->data);
    free(e->coded[HTTP_ENC_GZIP]);
    free(e->coded[HTTP_ENC_BR]);
    free(e->key);
    free(e);
}

static void table_remove(file_cache_t *fc, file_entry_t **link) {
    file_entry_t *e = *link;
    *link = e->hnext;
    e->in_table = false;
    fc->n--;
    if (e->data) fc->data_bytes -= (uint64_t)e->size; /* counted while in the table only */
    fc->data_bytes -= (uint64_t)e->coded_len[HTTP_ENC_GZIP] + e->coded_len[HTTP_ENC_BR];
    if (e->fd >= 0) fc->n_fds--;
    entry_unref(e);
}

void file_cache_clear(file_cache_t *fc) {
    for (size_t i = 0; i < fc->nbuckets; i++)
        while (fc->buckets[i]) table_remove(fc, &fc->buckets[i]);
}

void file_cache_sweep(file_cache_t *fc, uint64_t now) {
    for (size_t i = 0; i < fc->nbuckets; i++) {
        for (file_entry_t **link = &fc->buckets[i]; *link;) {
            if (now - (*link)->checked >= CACHE_TTL_MS) table_remove(fc, link);
            else link = &(*link)->hnext;
        }
    }
}

void file_cache_free(file_cache_t *fc) {
    if (fc == NULL) return;
    file_cache_clear(fc);
    free(fc->buckets);
    free(fc);
}

static uint64_t hash_key(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* ---- resolution under root ---- */

static int open_beneath(int dirfd, const char *rel) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
}

static bool path_inside(const char *real, const char *root) {
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0) return true;
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* symlinks = ifOwnerMatch: every link on the way must have the same owner as its target. */
static bool links_owner_match(const char *full) {
    char prefix[PATH_MAX];
    size_t n = strlen(full);
    if (n >= sizeof(prefix)) return false;
    for (size_t i = 1; i <= n; i++) {
        if (full[i] != '/' && full[i] != '\0') continue;
        memcpy(prefix, full, i);
        prefix[i] = '\0';
        struct stat lst, st;
        if (lstat(prefix, &lst) != 0) return true; /* missing: the open will say so */
        if (!S_ISLNK(lst.st_mode)) continue;
        if (stat(prefix, &st) != 0 || st.st_uid != lst.st_uid) return false;
    }
    return true;
}

/* Open `rel` (relative to the directory `root`, "." for itself) following the symlink rule.
 * Returns an fd, or -ENOENT / -EACCES (refused) / another negative errno. */
static int open_under_root(const http_root_t *root, const char *rel) {
    cfg_symlinks_t mode = root->symlinks;
    if (mode == CFG_SYMLINKS_FOLLOW) {
        int fd = openat(root->fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        return fd < 0 ? -errno : fd;
    }
    int fd = open_beneath(root->fd, rel);
    if (fd != -EXDEV && fd != -ELOOP) return fd;
    /* A link left the root as the kernel sees it (absolute links always do): allow it only if
     * the real path is still inside root (insideRoot) or its owner matches (ifOwnerMatch). */
    char full[PATH_MAX], real[PATH_MAX];
    if (snprintf(full, sizeof(full), "%s/%s", root->real, rel) >= (int)sizeof(full)) return -EACCES;
    if (realpath(full, real) == NULL) return errno == ENOENT ? -ENOENT : -EACCES;
    if (mode == CFG_SYMLINKS_INSIDE_ROOT && !path_inside(real, root->real)) return -EACCES;
    if (mode == CFG_SYMLINKS_IF_OWNER_MATCH && !links_owner_match(full)) return -EACCES;
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

static void fill_entry(http_server_t *s, file_entry_t *e, int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        e->kind = STATIC_FORBIDDEN;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        e->kind = STATIC_DIR;
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        e->kind = STATIC_OTHER;
        return;
    }
    e->kind = STATIC_FILE;
    e->fd = fd;
    e->size = st.st_size;
    e->mtime = st.st_mtime;
    e->ctype = mime_lookup(s->mime, e->key, e->keylen);
    snprintf(e->etag, sizeof(e->etag), "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st.st_mtime,
             (uint64_t)st.st_size);
    struct tm tm;
    gmtime_r(&e->mtime, &tm);
    strftime(e->lastmod, sizeof(e->lastmod), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (st.st_size <= (off_t)CACHE_MAX_INLINE && s->files->data_bytes + (uint64_t)st.st_size <= CACHE_MAX_DATA) {
        char *data = xmalloc((size_t)st.st_size + 1);
        ssize_t got = pread(fd, data, (size_t)st.st_size, 0);
        if (got == st.st_size) {
            e->data = data;
            s->files->data_bytes += (uint64_t)st.st_size;
            close(fd); /* served from memory: no descriptor kept */
            e->fd = -1;
        } else {
            free(data);
        }
    }
}

/* Cache keys name the file system object and the rule it was opened under: the symlink mode,
 * the directory's canonical path and the path under it ("i/srv/www/a.css"). */
static size_t make_key(char *out, size_t cap, const http_root_t *root, const char *rest) {
    static const char modes[] = {'i', 'o', 'f'};
    const char *dir = strcmp(root->real, "/") ? root->real : "";
    size_t dl = strlen(dir), rl = strlen(rest);
    if (1 + dl + rl >= cap) return 0;
    out[0] = modes[root->symlinks];
    memcpy(out + 1, dir, dl);
    memcpy(out + 1 + dl, rest, rl + 1);
    return 1 + dl + rl;
}

static file_entry_t *resolve(http_server_t *s, const http_root_t *root, const char *rest,
                             const char *key, size_t len) {
    file_entry_t *e = xcalloc(1, sizeof(*e));
    e->key = xstrndup(key, len);
    e->keylen = len;
    e->fd = -1;
    e->refs = 1;
    e->checked = uv_now(s->loop);
    const char *rel = rest[1] ? rest + 1 : ".";
    int fd = open_under_root(root, rel);
    if (fd == -EMFILE || fd == -ENFILE) {
        /* Out of descriptors: give back the cache's, then try once more. */
        file_cache_clear(s->files);
        fd = open_under_root(root, rel);
        if (fd < 0) {
            log_warn("cannot open %s/%s: %s", root->real, rel, strerror(-fd));
            e->checked = 0; /* an answer for this request only, not cached */
        }
    }
    if (fd >= 0) fill_entry(s, e, fd);
    else if (fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG) e->kind = STATIC_MISSING;
    else if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) e->kind = STATIC_UNAVAILABLE;
    else e->kind = STATIC_FORBIDDEN;
    return e;
}

/* Look up (or resolve and insert) a URL path of a site; returns a reference the caller must
 * release. */
static file_entry_t *cache_get(http_server_t *s, const http_site_t *site, const char *path) {
    const char *rest;
    const http_root_t *root = http_site_map(site, path, &rest);
    char key[PATH_MAX + 8];
    size_t len = make_key(key, sizeof(key), root, rest);
    if (len == 0) { /* longer than any path the kernel takes */
        file_entry_t *e = xcalloc(1, sizeof(*e));
        e->key = xstrdup("");
        e->fd = -1;
        e->refs = 1;
        e->kind = STATIC_MISSING;
        return e;
    }
    file_cache_t *fc = s->files;
    uint64_t now = uv_now(s->loop);
    file_entry_t **link = &fc->buckets[hash_key(key, len) & (fc->nbuckets - 1)];
    for (; *link; link = &(*link)->hnext) {
        file_entry_t *e = *link;
        if (e->keylen != len || memcmp(e->key, key, len) != 0) continue;
        if (now - e->checked < CACHE_TTL_MS) {
            e->refs++;
            return e;
        }
        table_remove(fc, link);
        break;
    }
    file_entry_t *e = resolve(s, root, rest, key, len);
    if (e->checked == 0) return e; /* not to be kept */
    if (fc->n >= CACHE_MAX_ENTRIES) file_cache_clear(fc);
    if (e->fd >= 0 && fc->n_fds >= fc->max_fds) {
        file_cache_sweep(fc, now);
        if (fc->n_fds >= fc->max_fds) file_cache_clear(fc);
    }
    if (e->fd >= 0) fc->n_fds++;
    size_t b = hash_key(key, len) & (fc->nbuckets - 1);
    e->hnext = fc->buckets[b];
    fc->buckets[b] = e;
    e->in_table = true;
    e->refs++; /* the table's */
    fc->n++;
    return e;
}

static_kind_t static_probe(http_server_t *s, const http_site_t *site, const char *path) {
    file_entry_t *e = cache_get(s, site, path);
    static_kind_t k = e->kind;
    entry_unref(e);
    return k;
}

/* ---- conditional requests and ranges ---- */

static bool etag_matches(str_t list, const char *etag) {
    size_t elen = strlen(etag);
    str_t item;
    while (str_next_list_item(&list, &item)) {
        if (STR_EQ(item, "*")) return true;
        if (item.len > 2 && item.p[0] == 'W' && item.p[1] == '/') item = str_make(item.p + 2, item.len - 2);
        if (item.len == elen && memcmp(item.p, etag, elen) == 0) return true;
    }
    return false;
}

static bool parse_http_date(str_t v, time_t *out) {
    char tmp[64];
    if (v.len >= sizeof(tmp)) return false;
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = '\0';
    struct tm tm = {0};
    const char *end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0') return false;
    *out = timegm(&tm);
    return true;
}

static bool not_modified(const request_t *r, const file_entry_t *e) {
    if (r->error_page) return false; /* an error page is the answer to another request */
    const http_header_t *inm = HTTP_FIND_HEADER(&r->http, "if-none-match");
    if (inm) return etag_matches(inm->value, e->etag);
    const http_header_t *ims = HTTP_FIND_HEADER(&r->http, "if-modified-since");
    time_t t;
    return ims && parse_http_date(ims->value, &t) && e->mtime <= t;
}

static bool parse_u64(const char *p, const char *end, int64_t *out) {
    if (p == end || end - p > 18) return false;
    int64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* Returns 0 no range (serve whole), 1 range in *from..*to, -1 unsatisfiable (416). */
static int parse_range(const request_t *r, const file_entry_t *e, int64_t *from, int64_t *to) {
    const http_header_t *h = HTTP_FIND_HEADER(&r->http, "range");
    if (h == NULL || r->http.method_id != HTTP_METHOD_GET || r->error_page) return 0;
    const http_header_t *ifr = HTTP_FIND_HEADER(&r->http, "if-range");
    if (ifr) {
        time_t t;
        bool ok = ifr->value.len && ifr->value.p[0] == '"'
                      ? str_eq(ifr->value, e->etag, strlen(e->etag))
                      : parse_http_date(ifr->value, &t) && t == e->mtime;
        if (!ok) return 0;
    }
    str_t v = h->value;
    if (v.len < 7 || !str_ieq(str_make(v.p, 6), "bytes=", 6)) return 0;
    const char *p = v.p + 6, *end = v.p + v.len;
    if (memchr(p, ',', (size_t)(end - p))) return 0; /* several ranges: send the whole file */
    const char *dash = memchr(p, '-', (size_t)(end - p));
    if (dash == NULL) return 0;
    int64_t a, b;
    if (dash == p) {
        if (!parse_u64(dash + 1, end, &b)) return 0;
        if (b == 0 || e->size == 0) return -1;
        *from = b >= e->size ? 0 : e->size - b;
        *to = e->size - 1;
        return 1;
    }
    if (!parse_u64(p, dash, &a)) return 0;
    if (dash + 1 == end) b = e->size - 1;
    else if (!parse_u64(dash + 1, end, &b) || b < a) return 0;
    if (a >= e->size) return -1;
    *from = a;
    *to = b < e->size ? b : e->size - 1;
    return 1;
}

/* ---- sending ---- */

/* A large body in flight. Exactly one of these is pending at any time, and its callback frees
 * the job if the request was abandoned meanwhile: the header write, a threadpool sendfile, or a
 * writable poll (which abandonment can stop directly). */
typedef struct sendfile_job {
    request_t *r;       /* NULL once the request was abandoned */
    file_entry_t *e;    /* a reference */
    int sock;           /* dup of the client socket; -1 when copying (TLS, HTTP/2, coded) */
    char *copy;         /* copying: the chunk read on the threadpool, then encrypted, framed or
                           coded by resp_write; the next read starts once it was taken (reading
                           ahead into a second buffer was measured slower over TLS: 600 against
                           840 MB/s, the working set no longer fits the caches) */
    unsigned writes;    /* our writes whose callbacks have not come (the head, chunks) */
    bool whole;         /* one coded chunk: the response is sent after the read, in one piece */
    int64_t off, end;
    uv_work_t work;
    ssize_t res;        /* result of the last sendfile: bytes, or a negative UV_E* code */
    uv_poll_t poll;
    bool poll_init;
    bool busy;          /* a threadpool sendfile is running */
} sendfile_job_t;

static void job_step(sendfile_job_t *j);

/* Chunk buffers are kept for the next copy instead of being mapped and unmapped by malloc for
 * every response (256 KiB is past its mmap threshold). At most CHUNK_SPARE are kept. */
#define CHUNK_SPARE 16
static char *chunk_spare[CHUNK_SPARE];
static unsigned n_chunk_spare;

static char *chunk_get(void) {
    return n_chunk_spare ? chunk_spare[--n_chunk_spare] : xmalloc(COPY_CHUNK);
}

static void chunk_put(char *p) {
    if (p == NULL) return;
    if (n_chunk_spare < CHUNK_SPARE) chunk_spare[n_chunk_spare++] = p;
    else free(p);
}

static void job_release(sendfile_job_t *j) {
    if (j->sock >= 0) close(j->sock);
    entry_unref(j->e);
    chunk_put(j->copy);
    free(j);
}

static void on_poll_closed(uv_handle_t *h) {
    job_release(h->data);
}

static void job_free(sendfile_job_t *j) {
    if (j->poll_init) {
        uv_close((uv_handle_t *)&j->poll, on_poll_closed);
        return;
    }
    job_release(j);
}

/* Freed once the request let go of it and no callback of ours is to come (a read on the
 * threadpool, a write): the last of them frees it. */
static void job_maybe_free(sendfile_job_t *j) {
    if (j->r == NULL && !j->busy && j->writes == 0) job_free(j);
}

static void job_fail(sendfile_job_t *j, int err) {
    request_t *r = j->r;
    j->r = NULL;
    if (r) {
        r->hctx = NULL;
        req_abort(r);
    }
    job_maybe_free(j);
}

static void on_writable(uv_poll_t *p, int status, int events) {
    sendfile_job_t *j = p->data;
    uv_poll_stop(p);
    if (j->r == NULL) {
        job_free(j);
        return;
    }
    if (status < 0) job_fail(j, status);
    else job_step(j);
}

/* Threadpool side: one non-blocking sendfile (the socket is O_NONBLOCK, so a full socket gives
 * EAGAIN at once instead of holding the thread). */
static void do_sendfile(uv_work_t *w) {
    sendfile_job_t *j = w->data;
    off_t off = (off_t)j->off;
    int64_t left = j->end - j->off;
    if (j->copy) { /* copying: the loop encrypts, frames or codes what the thread reads */
        size_t n = left > COPY_CHUNK ? COPY_CHUNK : (size_t)left;
        ssize_t r = pread(j->e->fd, j->copy, n, off);
        j->res = r > 0 ? r : r == 0 ? UV_EIO /* the file shrank under us */ : -errno;
        return;
    }
    size_t n = left > SENDFILE_CHUNK ? SENDFILE_CHUNK : (size_t)left;
    ssize_t r = sendfile(j->sock, j->e->fd, &off, n);
    j->res = r < 0 ? (errno == EAGAIN ? UV_EAGAIN : -errno) : r;
}

static void on_written(request_t *r, void *ctx, int status);

/* The response is complete: the request is let go of, the job freed once nothing is pending. */
static void job_done(sendfile_job_t *j) {
    request_t *r = j->r;
    r->hctx = NULL;
    j->r = NULL;
    job_maybe_free(j);
    resp_finish(r);
}

/* The end once every byte is read (or sent) and taken, else the next read or sendfile once the
 * last chunk was taken. */
static void job_continue(sendfile_job_t *j) {
    if (j->r == NULL) {
        job_maybe_free(j);
        return;
    }
    if (j->off >= j->end && !j->busy && j->writes == 0) {
        job_done(j);
        return;
    }
    if (!j->busy && j->writes == 0 && j->off < j->end) job_step(j);
}

static void on_sendfile(uv_work_t *w, int status) {
    sendfile_job_t *j = w->data;
    ssize_t res = status == UV_ECANCELED ? UV_ECANCELED : j->res;
    j->busy = false;
    if (j->r == NULL) {
        job_maybe_free(j);
        return;
    }
    if (j->whole && res > 0) {
        if (res != j->end - j->off) { /* the file changed under us: nothing was answered yet */
            request_t *r = j->r;
            r->hctx = NULL;
            j->r = NULL;
            job_maybe_free(j);
            resp_error(r, 500, "the file changed while it was read");
            return;
        }
        j->off += res;
        uv_buf_t b = uv_buf_init(j->copy, (unsigned)res);
        j->writes += 2; /* as below: the callback may run within the call */
        resp_send(j->r, res, &b, 1, on_written, j);
        j->writes--;
        job_continue(j);
        return;
    }
    if (j->copy && res > 0) {
        j->off += res;
        uv_buf_t b = uv_buf_init(j->copy, (unsigned)res);
        j->writes += 2; /* the chunk's, and ours across the call: its callback may run in it */
        resp_write(j->r, &b, 1, on_written, j);
        j->writes--;
        job_continue(j);
        return;
    }
    if (res > 0) {
        j->off += res;
        j->r->resp_body_bytes += (uint64_t)res;
    }
    if (j->off >= j->end) {
        job_done(j);
        return;
    }
    if (res == UV_EAGAIN || res > 0) {
        if (!j->poll_init) {
            if (uv_poll_init(j->r->loop, &j->poll, j->sock) != 0) {
                job_fail(j, UV_EIO);
                return;
            }
            j->poll.data = j;
            j->poll_init = true;
        }
        if (res == UV_EAGAIN) uv_poll_start(&j->poll, UV_WRITABLE, on_writable);
        else job_step(j);
        return;
    }
    job_fail(j, (int)res);
}

/* The head, or a chunk (copying: over TLS encrypted and written), was taken: the next read or
 * sendfile, or the end once everything is. */
static void on_written(request_t *r, void *ctx, int status) {
    sendfile_job_t *j = ctx;
    j->writes--;
    if (j->r == NULL) {
        job_maybe_free(j);
        return;
    }
    if (status < 0 || req_client_gone(r)) {
        job_fail(j, status);
        return;
    }
    job_continue(j);
}

static void job_step(sendfile_job_t *j) {
    j->busy = true;
    if (uv_queue_work(j->r->loop, &j->work, do_sendfile, on_sendfile) != 0) {
        j->busy = false;
        job_fail(j, UV_EIO);
    }
}


static void static_abort(request_t *r) {
    sendfile_job_t *j = r->hctx;
    if (j == NULL) return;
    r->hctx = NULL;
    j->r = NULL;
    /* A waiting poll has no callback to come: free now. Otherwise the pending callback frees. */
    if (j->poll_init && uv_is_active((uv_handle_t *)&j->poll)) {
        uv_poll_stop(&j->poll);
        job_free(j);
        return;
    }
    if (j->busy) uv_cancel((uv_req_t *)&j->work); /* if not started yet: on_sendfile comes anyway */
    job_maybe_free(j); /* else the last pending callback frees it */
}

static const request_handler_t static_handler = {
    .name = "static",
    .on_abort = static_abort,
};

static void on_inline_written(request_t *r, void *ctx, int status) {
    entry_unref(ctx);
}

static void send_body(request_t *r, file_entry_t *e, int64_t from, int64_t len) {
    /* Coded on the fly: files kept in memory (up to 64 KiB) at once; larger ones as they are read
     * on the threadpool, in chunks (not sendfile) — unless a precompressed sibling was chosen
     * (no_compress is set then) or the client takes no coding. */
    bool coded = e->data == NULL && len == e->size && !r->no_compress; /* serve_file decided */
    if (e->data == NULL) r->no_compress = !coded;
    if (e->data || r->head_only || len == 0) {
        e->refs++;
        uv_buf_t b = uv_buf_init(e->data ? e->data + from : NULL, (unsigned)len);
        resp_send(r, len, &b, e->data ? 1 : 0, on_inline_written, e); /* HEAD of a large file: no bytes */
        resp_finish(r);
        return;
    }
    int sock = -1; /* over TLS and HTTP/2, or coded, the file is read on the threadpool */
    if (r->tls_version == NULL && !r->http2 && !coded && (sock = req_socket_dup(r)) < 0) {
        resp_error(r, 500, NULL);
        return;
    }
    sendfile_job_t *j = xcalloc(1, sizeof(*j));
    if (sock < 0) j->copy = chunk_get();
    /* Coded, and the whole file is one chunk: read first, then answered at once (coded in one go,
     * with its coded length) instead of a head and a coded stream. */
    j->whole = coded && len <= COPY_CHUNK;
    j->r = r;
    j->e = e;
    e->refs++;
    j->sock = sock;
    j->off = from;
    j->end = from + len;
    j->work.data = j;
    r->hctx = j;
    r->handler = &static_handler;
    if (j->whole) {
        job_step(j);
        return;
    }
    j->writes = 1; /* the head's */
    resp_send_headers_cb(r, len, on_written, j);
}

/* A precompressed sibling (SPEC §7): FILE.br or FILE.gz, a regular file not older than FILE,
 * sent as is with Content-Encoding for a client that takes its coding. Not for ranges. Returns
 * the sibling's entry (a reference) or NULL; *enc its coding. *varies: the URL's answers depend on
 * Accept-Encoding (a sibling exists, or the file is coded on the fly), so they carry Vary. */
static file_entry_t *precompressed(request_t *r, const file_entry_t *e, http_encoding_t *enc, bool *varies) {
    const cfg_site_t *site = r->site->cfg;
    *enc = HTTP_ENC_IDENTITY;
    *varies = false;
    if (!site->compress || r->error_page || HTTP_FIND_HEADER(&r->http, "range")) return NULL;
    if (!http_compressible_type(str_make(e->ctype, strlen(e->ctype)))) return NULL;
    const http_header_t *ae = HTTP_FIND_HEADER(&r->http, "accept-encoding");
    /* A file in memory is coded on the fly anyway (its Vary comes with the answer): without
     * Accept-Encoding there is nothing to look for. */
    if (ae == NULL && e->data) return NULL;
    static const struct { http_encoding_t enc; const char *ext; } sib[] = {
        {HTTP_ENC_BR, ".br"}, {HTTP_ENC_GZIP, ".gz"}};
    file_entry_t *found[2] = {NULL, NULL};
    unsigned have = 0;
    for (size_t i = 0; i < 2; i++) {
        if (!(site->compress & HTTP_ENC_MASK(sib[i].enc))) continue;
        char *p = xasprintf("%s%s", r->path, sib[i].ext);
        file_entry_t *f = cache_get(r->srv, r->site, p);
        free(p);
        if (f->kind == STATIC_FILE && f->mtime >= e->mtime) {
            found[i] = f;
            have |= HTTP_ENC_MASK(sib[i].enc);
        } else {
            entry_unref(f);
        }
    }
    *varies = have != 0;
    *enc = have && ae ? http_accept_encoding(ae->value, have) : HTTP_ENC_IDENTITY;
    file_entry_t *pick = NULL;
    for (size_t i = 0; i < 2; i++) {
        if (found[i] && sib[i].enc == *enc) pick = found[i];
        else if (found[i]) entry_unref(found[i]);
    }
    return pick;
}

static void send_body(request_t *r, file_entry_t *e, int64_t from, int64_t len);

/* The file in memory coded with enc, made once and kept with its cache entry (counted in the
 * cache's memory); NULL when it cannot be kept (the entry left the table, memory is full, the
 * coder failed): the answer is then coded as it goes out. */
static const char *entry_coded(http_server_t *s, file_entry_t *e, http_encoding_t enc, size_t *len) {
    if (e->coded[enc]) {
        *len = e->coded_len[enc];
        return e->coded[enc];
    }
    if (!e->in_table || s->files->data_bytes + (uint64_t)e->size > CACHE_MAX_DATA) return NULL;
    buf_t out;
    buf_init(&out);
    int rc = http_compress_whole(enc, e->data, (size_t)e->size, &out);
    if (rc < 0 || out.len == 0 || out.len > UINT32_MAX) {
        buf_dispose(&out);
        return NULL;
    }
    e->coded[enc] = out.data;
    e->coded_len[enc] = (uint32_t)out.len;
    s->files->data_bytes += out.len;
    *len = out.len;
    return out.data;
}

/* The head of a 200 whose body is already coded (a precompressed sibling, a kept coded copy):
 * the original's type, a weak ETag, Vary. */
static void coded_head(request_t *r, const char *ctype, http_encoding_t enc, const char *lastmod,
                       const char *etag) {
    resp_start(r, 200);
    resp_header_str(r, "Content-Type", ctype);
    resp_header_str(r, "Content-Encoding", http_encoding_name(enc));
    resp_header_str(r, "Vary", "Accept-Encoding");
    resp_header_str(r, "Last-Modified", lastmod);
    resp_header_str(r, "ETag", etag);
}

/* 200 from the entry's coded copy: as a precompressed sibling is sent (weak ETag, Vary). */
static void serve_coded(request_t *r, file_entry_t *e, http_encoding_t enc, const char *coded,
                        size_t len) {
    char etag[56];
    snprintf(etag, sizeof(etag), "W/%s", e->etag);
    r->no_compress = true;
    if (r->srv) {
        r->srv->compressed++;
        r->srv->compress_in += (uint64_t)e->size;
        r->srv->compress_out += len;
    }
    coded_head(r, e->ctype, enc, e->lastmod, etag);
    e->refs++;
    uv_buf_t b = uv_buf_init((char *)coded, (unsigned)len);
    resp_send(r, (int64_t)len, &b, 1, on_inline_written, e);
    resp_finish(r);
}

static void serve_file(request_t *r, file_entry_t *e) {
    if (r->http.method_id != HTTP_METHOD_GET && r->http.method_id != HTTP_METHOD_HEAD) {
        resp_error(r, 405, NULL);
        return;
    }
    http_encoding_t enc = HTTP_ENC_IDENTITY;
    bool varies = false;
    file_entry_t *pre = r->site ? precompressed(r, e, &enc, &varies) : NULL;
    if (pre) { /* the sibling's bytes, validators and length; the original's type */
        char etag[56];
        snprintf(etag, sizeof(etag), "W/%s", pre->etag);
        r->no_compress = true;
        if (not_modified(r, pre)) {
            resp_start(r, 304);
            resp_header_str(r, "ETag", etag);
            resp_header_str(r, "Vary", "Accept-Encoding");
            resp_send_headers(r, -1);
            resp_finish(r);
        } else {
            coded_head(r, e->ctype, enc, pre->lastmod, etag);
            send_body(r, pre, 0, pre->size);
        }
        entry_unref(pre);
        return;
    }
    /* Coded on the fly: its 304 carries the validator and Vary of the coded 200 (RFC 9110
     * §15.4.5), so that a cache can freshen what it holds. */
    bool on_the_fly = !HTTP_FIND_HEADER(&r->http, "range") &&
                      resp_codable(r, str_make(e->ctype, strlen(e->ctype)), e->size);
    if (not_modified(r, e)) {
        char etag[56];
        snprintf(etag, sizeof(etag), "W/%s", e->etag);
        bool weak = on_the_fly && resp_client_coding(r) != HTTP_ENC_IDENTITY;
        resp_start(r, 304);
        resp_header_str(r, "ETag", weak ? etag : e->etag);
        resp_header_str(r, "Last-Modified", e->lastmod);
        if (varies || on_the_fly) resp_header_str(r, "Vary", "Accept-Encoding");
        resp_send_headers(r, -1);
        resp_finish(r);
        return;
    }
    int64_t from = 0, to = e->size - 1;
    int range = parse_range(r, e, &from, &to);
    if (range < 0) {
        char cr[64];
        int n = snprintf(cr, sizeof(cr), "bytes */%" PRId64, e->size);
        resp_start(r, 416);
        resp_header(r, "Content-Range", cr, (size_t)n);
        resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
        resp_send_headers(r, 27);
        resp_write_copy(r, "416 Range Not Satisfiable\n\n", 27);
        resp_finish(r);
        return;
    }
    /* Decided once here: the answer is coded (cached copy, in one go, or as read), or it goes
     * out as it is and response.c need not look again (no_compress). */
    http_encoding_t want = on_the_fly && !range ? resp_client_coding(r) : HTTP_ENC_IDENTITY;
    if (!range && e->data && want != HTTP_ENC_IDENTITY) {
        size_t clen;
        const char *coded = want != HTTP_ENC_IDENTITY ? entry_coded(r->srv, e, want, &clen) : NULL;
        if (coded) {
            serve_coded(r, e, want, coded, clen);
            return;
        }
    }
    resp_start(r, range ? 206 : 200);
    resp_header_str(r, "Content-Type", e->ctype);
    /* Sent as is to this client, though its answers vary (siblings, or coded for others); a
     * coded answer gets its Vary when coded (response.c). */
    if (!range && (varies || on_the_fly) && want == HTTP_ENC_IDENTITY)
        resp_header_str(r, "Vary", "Accept-Encoding");
    if (want == HTTP_ENC_IDENTITY) r->no_compress = true;
    resp_header_str(r, "Last-Modified", e->lastmod);
    resp_header_str(r, "ETag", e->etag);
    resp_header_str(r, "Accept-Ranges", "bytes");
    if (range) {
        char cr[80];
        int n = snprintf(cr, sizeof(cr), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to, e->size);
        resp_header(r, "Content-Range", cr, (size_t)n);
    }
    send_body(r, e, from, e->size ? to - from + 1 : 0);
}

static void redirect_to_slash(request_t *r) {
    buf_t loc;
    buf_init(&loc);
    char *enc = xmalloc(r->path_len * 3 + 2);
    http_path_encode(r->path, r->path_len, enc, r->path_len * 3 + 2);
    buf_append_str(&loc, enc);
    buf_append(&loc, "/", 1);
    free(enc);
    if (r->has_query) {
        buf_append(&loc, "?", 1);
        buf_append(&loc, r->query.p, r->query.len);
    }
    resp_start(r, 301);
    resp_header(r, "Location", loc.data, loc.len);
    resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
    resp_send_headers(r, 22);
    resp_write_copy(r, "301 Moved Permanently\n", 22);
    resp_finish(r);
    buf_dispose(&loc);
}

void static_serve(request_t *r) {
    http_server_t *s = r->srv;
    file_entry_t *e = cache_get(s, r->site, r->path);
    switch (e->kind) {
    case STATIC_MISSING: resp_error(r, 404, NULL); break;
    case STATIC_UNAVAILABLE: /* a moment of shortage is no answer about the file */
        resp_start(r, 503);
        resp_header_str(r, "Retry-After", "1");
        resp_header_str(r, "Content-Type", "text/plain; charset=utf-8");
        resp_send_headers(r, 49);
        resp_write_copy(r, "503 Service Unavailable: out of file descriptors\n", 49);
        resp_finish(r);
        break;
    case STATIC_FORBIDDEN:
    case STATIC_OTHER: resp_error(r, 403, NULL); break;
    case STATIC_DIR:
        if (r->http.method_id != HTTP_METHOD_GET && r->http.method_id != HTTP_METHOD_HEAD)
            resp_error(r, 405, NULL);
        else if (r->path[r->path_len - 1] != '/')
            redirect_to_slash(r);
        else /* dispatch already looked for its index files */
            resp_error(r, 403, "directory listing is not allowed");
        break;
    case STATIC_FILE: serve_file(r, e); break;
    }
    entry_unref(e);
}
