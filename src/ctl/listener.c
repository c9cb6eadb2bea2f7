/* The control socket: see listener.h. */
#include "ctl/listener.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

#define CTL_READ_TIMEOUT_MS 10000 /* a client has this long to send its request line */

typedef struct ctl_conn ctl_conn_t;

struct ctl_listener {
    uv_pipe_t pipe;
    ctl_conn_t *conns;       /* open connections: they forget the listener when it closes */
    char *path;
    ctl_command_cb cb;
    void *arg;
    bool closing;
};

struct ctl_conn {
    uv_pipe_t pipe;
    ctl_conn_t *prev, *next;
    uv_timer_t timer;
    uv_write_t wr;
    ctl_listener_t *l;       /* NULL once the listener is closing */
    ctl_req_parser_t parser;
    buf_t out;
    char rbuf[1024];
    int open_handles;
    bool answered;
    bool refused;            /* the peer may not use the socket (see peer_allowed) */
    uid_t uid;               /* the peer's, from SO_PEERCRED */
};

static void conn_unlink(ctl_conn_t *c) {
    if (c->l == NULL) return;
    if (c->prev) c->prev->next = c->next;
    else c->l->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->l = NULL;
}

static void conn_closed(uv_handle_t *h) {
    ctl_conn_t *c = h->data;
    if (--c->open_handles > 0) return;
    conn_unlink(c);
    buf_dispose(&c->out);
    free(c);
}

static void conn_close(ctl_conn_t *c) {
    if (!uv_is_closing((uv_handle_t *)&c->pipe)) uv_close((uv_handle_t *)&c->pipe, conn_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_written(uv_write_t *w, int status) {
    (void)status;
    conn_close(w->data);
}

static void respond(ctl_conn_t *c) {
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_timer_stop(&c->timer);
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) conn_close(c);
}

/* The refusal is the answer to whatever the client sends (once it has sent its request, so
 * that closing the connection does not discard unread bytes, which would reset it). */
static void refuse(ctl_conn_t *c) {
    ctl_response_head(&c->out, CTL_CODE_REFUSED,
                      "permission denied: uid %u may not control this server (only root and "
                      "uid %u may)", (unsigned)c->uid, (unsigned)geteuid());
    respond(c);
}

static void handle_line(ctl_conn_t *c) {
    ctl_cmd_t cmd;
    char err[256];
    if (c->refused) {
        refuse(c);
        return;
    }
    if (ctl_cmd_parse(c->parser.argc, c->parser.argv, &cmd, err, sizeof(err)) != 0) {
        ctl_response_head(&c->out, CTL_CODE_REFUSED, "%s", err);
    } else if (c->l == NULL || c->l->closing) {
        ctl_response_head(&c->out, CTL_CODE_REFUSED, "the server is stopping");
    } else {
        ctl_listener_t *l = c->l;
        l->cb(l->arg, &cmd, &c->out);
    }
    respond(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    ctl_conn_t *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    ctl_conn_t *c = s->data;
    if (c->answered) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    int rc = ctl_req_parse(&c->parser, buf->base, (size_t)nread);
    if (rc == CTL_AGAIN) return;
    if (rc < 0 && c->refused) {
        refuse(c);
        return;
    }
    if (rc < 0) {
        ctl_response_head(&c->out, CTL_CODE_REFUSED, "bad request: %s", ctl_strerror(rc));
        respond(c);
        return;
    }
    handle_line(c);
}

static void on_timeout(uv_timer_t *t) {
    ctl_conn_t *c = t->data;
    if (!c->answered) conn_close(c);
}

/* SPEC §8: only root and the server's own user are served, whatever the socket file's mode (a
 * chmod, a directory of the wrong owner, a socket created by hand). The kernel fills SO_PEERCRED
 * at connect time: the client cannot choose it. */
static void check_peer(ctl_listener_t *l, ctl_conn_t *c) {
    struct ucred cr;
    socklen_t len = sizeof(cr);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr)) {
        c->refused = true;
        c->uid = (uid_t)-1;
        log_warn("control socket %s: refused a client whose credentials cannot be read", l->path);
        return;
    }
    c->uid = cr.uid;
    if (cr.uid == 0 || cr.uid == geteuid()) return;
    c->refused = true;
    log_warn("control socket %s: refused a client running as uid %u (pid %ld): only root and uid %u "
             "may control the server", l->path, (unsigned)cr.uid, (long)cr.pid, (unsigned)geteuid());
}

static void on_connection(uv_stream_t *server, int status) {
    ctl_listener_t *l = server->data;
    if (status < 0) {
        log_warn("control socket %s: %s", l->path, uv_strerror(status));
        return;
    }
    ctl_conn_t *c = xcalloc(1, sizeof(*c));
    c->l = l;
    c->next = l->conns;
    if (l->conns) l->conns->prev = c;
    l->conns = c;
    buf_init(&c->out);
    ctl_req_parser_init(&c->parser);
    uv_pipe_init(server->loop, &c->pipe, 0);
    uv_timer_init(server->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    check_peer(l, c);
    uv_timer_start(&c->timer, on_timeout, CTL_READ_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Is something accepting on the socket file at `path`? */
static bool socket_live(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return live;
}

static int make_parent(const char *path) {
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/') continue;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) rc = -errno;
            *p = '/';
        }
        if (rc == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST) rc = -errno;
    }
    free(dir);
    return rc;
}

static void listener_closed(uv_handle_t *h) {
    ctl_listener_t *l = h->data;
    free(l->path);
    free(l);
}

ctl_listener_t *ctl_listener_open(uv_loop_t *loop, const char *path, ctl_command_cb cb, void *arg,
                                  int *err) {
    *err = make_parent(path);
    if (*err) return NULL;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = UV_EEXIST; /* never remove something that is not a socket */
            return NULL;
        }
        if (socket_live(path)) {
            *err = UV_EADDRINUSE;
            return NULL;
        }
        unlink(path);
    }
    ctl_listener_t *l = xcalloc(1, sizeof(*l));
    l->path = xstrdup(path);
    l->cb = cb;
    l->arg = arg;
    uv_pipe_init(loop, &l->pipe, 0);
    l->pipe.data = l;
    mode_t old = umask(0177); /* the socket file is created 0600 */
    int rc = uv_pipe_bind(&l->pipe, path);
    umask(old);
    if (rc == 0) rc = chmod(path, 0600) == 0 ? 0 : -errno;
    if (rc == 0) rc = uv_listen((uv_stream_t *)&l->pipe, 16, on_connection);
    if (rc != 0) {
        *err = rc;
        unlink(path);
        uv_close((uv_handle_t *)&l->pipe, listener_closed);
        return NULL;
    }
    return l;
}

const char *ctl_listener_path(const ctl_listener_t *l) {
    return l->path;
}

void ctl_listener_close(ctl_listener_t *l) {
    if (l == NULL || l->closing) return;
    l->closing = true;
    while (l->conns) conn_unlink(l->conns);
    unlink(l->path);
    uv_close((uv_handle_t *)&l->pipe, listener_closed);
}
