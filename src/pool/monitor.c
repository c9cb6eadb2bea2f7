/* monitorChangesTo: see monitor.h. */
#include "pool/monitor.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/xalloc.h"

#define MONITOR_COALESCE_MS 100

enum { W_FILE, W_DIR, W_REALDIR, W_COUNT };

typedef struct watch {
    uv_fs_event_t h;
    monitor_t *m;
    char *path;        /* what is watched now; NULL: not started */
    char *name;        /* for a directory: only events about this name count; NULL for the file */
} watch_t;

typedef struct file_sig {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
} file_sig_t;

struct monitor {
    uv_loop_t *loop;
    char *path, *dir, *base, *owner;
    monitor_cb cb;
    void *arg;
    watch_t w[W_COUNT];
    uv_timer_t timer;
    bool timer_armed, closing;
    unsigned open_handles;
    file_sig_t last;
    char what[PATH_MAX + 64];
    int last_watch_error;
};

static file_sig_t sig_of(const char *path) {
    file_sig_t s = {0};
    struct stat st;
    if (stat(path, &st) != 0) return s;
    s.exists = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtim = st.st_mtim;
    s.ctim = st.st_ctim;
    return s;
}

static bool sig_equal(const file_sig_t *a, const file_sig_t *b) {
    if (a->exists != b->exists) return false;
    if (!a->exists) return true;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
           a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* Split "/a/b/c" into "/a/b" and "c" ("/c" into "/" and "c"). */
static void split_path(const char *path, char **dir, char **base) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        *dir = xstrdup(".");
        *base = xstrdup(path);
        return;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    *dir = xstrndup(path, n);
    *base = xstrdup(slash + 1);
}

static void check_now(monitor_t *m);

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
    (void)events;
    watch_t *w = h->data;
    monitor_t *m = w->m;
    if (m->closing) return;
    if (status < 0) {
        log_warn("%s: watching %s: %s", m->owner, w->path ? w->path : "?", uv_strerror(status));
        return;
    }
    if (w->name && filename && strcmp(filename, w->name) != 0) return; /* another file */
    check_now(m);
}

/* Watch `path` (NULL: nothing), counting only events about `name` when it is given. A file watch
 * is always re-added: after a rename-over the same path names another inode. */
static void watch_set(monitor_t *m, watch_t *w, const char *path, const char *name, bool force) {
    if (!force && path && w->path && strcmp(path, w->path) == 0) return;
    if (w->path) {
        uv_fs_event_stop(&w->h);
        free(w->path);
        free(w->name);
        w->path = w->name = NULL;
    }
    if (path == NULL) return;
    int r = uv_fs_event_start(&w->h, on_fs_event, path, 0);
    if (r < 0) {
        /* ENOENT while a directory is missing is expected (the tick retries); anything else, such
         * as the inotify watch limit, is worth one line each time it changes. */
        if (r != UV_ENOENT && r != m->last_watch_error)
            log_warn("%s: cannot watch %s (%s): checking %s once a second instead", m->owner, path,
                     uv_strerror(r), m->path);
        m->last_watch_error = r;
        return;
    }
    w->path = xstrdup(path);
    w->name = name ? xstrdup(name) : NULL;
}

/* (Re)establish the watches for where the path leads now. */
static void arm(monitor_t *m) {
    char real[PATH_MAX];
    bool resolved = realpath(m->path, real) != NULL;
    watch_set(m, &m->w[W_FILE], resolved ? real : NULL, NULL, true);
    watch_set(m, &m->w[W_DIR], m->dir, m->base, false);
    char *rdir = NULL, *rbase = NULL;
    if (resolved) split_path(real, &rdir, &rbase);
    if (rdir && strcmp(rdir, m->dir) == 0 && strcmp(rbase, m->base) == 0) {
        free(rdir);
        free(rbase);
        rdir = rbase = NULL; /* no symlink in the way: the directory watch covers it */
    }
    watch_set(m, &m->w[W_REALDIR], rdir, rbase, false);
    free(rdir);
    free(rbase);
}

static void on_timer(uv_timer_t *t) {
    monitor_t *m = t->data;
    m->timer_armed = false;
    if (!m->closing) m->cb(m->arg, m->what);
}

static void check_now(monitor_t *m) {
    file_sig_t now = sig_of(m->path);
    if (sig_equal(&now, &m->last)) return;
    bool existed = m->last.exists;
    m->last = now;
    arm(m);
    if (!now.exists) {
        log_warn("%s: monitorChangesTo %s was removed: the pool is recycled when it is back",
                 m->owner, m->path);
        return;
    }
    if (m->timer_armed) return; /* this burst is reported once */
    snprintf(m->what, sizeof(m->what), "%s %s", m->path, existed ? "changed" : "appeared");
    m->timer_armed = true;
    uv_timer_start(&m->timer, on_timer, MONITOR_COALESCE_MS, 0);
}

monitor_t *monitor_new(uv_loop_t *loop, const char *path, const char *owner, monitor_cb cb,
                       void *arg) {
    monitor_t *m = xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->path = xstrdup(path);
    m->owner = xstrdup(owner);
    m->cb = cb;
    m->arg = arg;
    split_path(path, &m->dir, &m->base);
    for (int i = 0; i < W_COUNT; i++) {
        uv_fs_event_init(loop, &m->w[i].h);
        m->w[i].h.data = &m->w[i];
        m->w[i].m = m;
        m->open_handles++;
    }
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open_handles++;
    m->last = sig_of(path);
    arm(m);
    if (m->last.exists)
        log_info("%s: monitoring %s for changes (monitorChangesTo)", owner, path);
    else
        log_warn("%s: monitorChangesTo %s does not exist: watching for it to appear", owner, path);
    return m;
}

const char *monitor_path(const monitor_t *m) {
    return m->path;
}

void monitor_check(monitor_t *m) {
    if (m->closing) return;
    if (m->w[W_DIR].path == NULL) arm(m); /* a directory that was missing may exist now */
    check_now(m);
}

static void on_close(uv_handle_t *h) {
    monitor_t *m = h->type == UV_TIMER ? h->data : ((watch_t *)h->data)->m;
    if (--m->open_handles > 0) return;
    for (int i = 0; i < W_COUNT; i++) {
        free(m->w[i].path);
        free(m->w[i].name);
    }
    free(m->path);
    free(m->dir);
    free(m->base);
    free(m->owner);
    free(m);
}

void monitor_close(monitor_t *m) {
    if (m == NULL || m->closing) return;
    m->closing = true;
    for (int i = 0; i < W_COUNT; i++) uv_close((uv_handle_t *)&m->w[i].h, on_close);
    uv_close((uv_handle_t *)&m->timer, on_close);
}
