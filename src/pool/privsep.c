/* The server's side of the privileged spawn helper (see privsep.h): start it, ask it to spawn and
 * signal, and turn its exit reports into exit callbacks.
 *
 * Two socket pairs: requests and their answers go over the first, synchronously (a spawn blocks
 * the loop for one round trip, as uv_spawn's fork and exec do); the helper's exit reports come
 * over the second, which the loop watches with a uv_poll_t. Keeping them apart means a spawn never
 * has to set aside exit reports that arrive while it waits, and a report is always handled from
 * the loop, never from inside a spawn. */
#include "pool/privsep.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

#define ANSWER_TIMEOUT_MS 10000 /* the helper answers in a fork's time; this is for a wedged one */

static struct {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_poll_t poll;
    int req_fd, event_fd;     /* -1 when closed */
    pid_t pid;
    uint32_t seq;
    privsep_proc_t *procs;    /* registered, waiting for their exit report */
    bool proc_open, poll_open, up, stopping;
} ps = {.req_fd = -1, .event_fd = -1};

static void unregister(privsep_proc_t *hp) {
    if (hp->prev) hp->prev->next = hp->next;
    else ps.procs = hp->next;
    if (hp->next) hp->next->prev = hp->prev;
    hp->prev = hp->next = NULL;
}

static void on_closed(uv_handle_t *h) {}

/* The helper is gone: so are the processes it started (their PR_SET_PDEATHSIG). Report them as
 * killed so that their owners clean up as for any other death. */
static void helper_gone(const char *why) {
    if (!ps.up) return;
    ps.up = false;
    if (!ps.stopping) log_error("the privileged spawn helper is gone (%s): processes of other users "
                                "cannot be started until fcgihost is restarted", why);
    if (ps.poll_open) {
        ps.poll_open = false;
        uv_close((uv_handle_t *)&ps.poll, on_closed);
    }
    if (ps.req_fd >= 0) close(ps.req_fd);
    if (ps.event_fd >= 0) close(ps.event_fd);
    ps.req_fd = ps.event_fd = -1;
    while (ps.procs) {
        privsep_proc_t *hp = ps.procs;
        unregister(hp);
        hp->exit_cb(hp, 0, SIGKILL);
    }
}

static void on_event(uv_poll_t *h, int status, int events) {
    for (;;) {
        privsep_hdr_t e;
        ssize_t n = recv(ps.event_fd, &e, sizeof(e), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            helper_gone(n == 0 ? "end of file" : strerror(errno));
            return;
        }
        if (n != (ssize_t)sizeof(e) || e.type != PRIVSEP_MSG_EXITED) continue;
        for (privsep_proc_t *hp = ps.procs; hp; hp = hp->next) {
            if (hp->pid != e.pid) continue;
            unregister(hp);
            hp->exit_cb(hp, e.a, e.b);
            break;
        }
        if (!ps.up) return; /* an exit callback may have stopped everything */
    }
}

static void on_helper_exit(uv_process_t *p, int64_t status, int term_signal) {
    if (!ps.stopping) {
        if (term_signal) log_error("the privileged spawn helper was killed by signal %d", term_signal);
        else log_error("the privileged spawn helper exited with status %lld", (long long)status);
    }
    helper_gone("it exited");
    ps.proc_open = false;
    uv_close((uv_handle_t *)p, on_closed);
}

/* One answer to request `seq` (older answers, to requests given up on, are skipped). Returns the
 * message length, or -1 with err filled. */
static ssize_t await_answer(uint32_t seq, char *buf, size_t cap, char *err, size_t errlen) {
    for (;;) {
        struct pollfd p = {.fd = ps.req_fd, .events = POLLIN};
        int r = poll(&p, 1, ANSWER_TIMEOUT_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            snprintf(err, errlen, "the privileged spawn helper did not answer within %d s",
                     ANSWER_TIMEOUT_MS / 1000);
            return -1;
        }
        ssize_t n = r < 0 ? -1 : recv(ps.req_fd, buf, cap - 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(err, errlen, "the privileged spawn helper is gone");
            return -1;
        }
        if ((size_t)n < sizeof(privsep_hdr_t)) continue;
        privsep_hdr_t h;
        memcpy(&h, buf, sizeof(h));
        if (h.seq != seq) {
            /* The answer to a spawn given up on: its process must not run unmanaged. */
            if (h.type == PRIVSEP_MSG_SPAWNED) {
                privsep_hdr_t k = {.type = PRIVSEP_MSG_KILL, .pid = h.pid, .a = SIGKILL};
                send(ps.req_fd, &k, sizeof(k), MSG_NOSIGNAL);
            }
            continue;
        }
        buf[n] = '\0';
        return n;
    }
}

/* The text of a FAILED answer (or a default). */
static void failed_text(const char *buf, size_t n, char *err, size_t errlen) {
    const char *t = n > sizeof(privsep_hdr_t) ? buf + sizeof(privsep_hdr_t) : "refused";
    snprintf(err, errlen, "%s", t);
}

int privsep_start(uv_loop_t *loop, const char *exe, const char *conf_path, char *err,
                  size_t errlen) {
    int req[2], ev[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, req) < 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev) < 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        close(req[0]);
        close(req[1]);
        return -1;
    }
    int bufsize = PRIVSEP_MSG_MAX + 4096;
    setsockopt(req[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    setsockopt(req[1], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    char *args[] = {(char *)exe, PRIVSEP_HELPER_ARG, (char *)conf_path, pid, NULL};
    uv_stdio_container_t stdio[5] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_INHERIT_FD, .data.fd = req[1]},
        {.flags = UV_INHERIT_FD, .data.fd = ev[1]},
    };
    uv_process_options_t opt = {
        .exit_cb = on_helper_exit, .file = exe, .args = args, .stdio_count = 5, .stdio = stdio,
    };
    ps.loop = loop;
    ps.proc_open = true;
    int r = uv_spawn(loop, &ps.proc, &opt);
    close(req[1]);
    close(ev[1]);
    ps.req_fd = req[0];
    ps.event_fd = ev[0];
    if (r < 0) {
        snprintf(err, errlen, "cannot start the privileged spawn helper %s: %s", exe, uv_strerror(r));
        ps.proc_open = false;
        uv_close((uv_handle_t *)&ps.proc, on_closed);
        close(ps.req_fd);
        close(ps.event_fd);
        ps.req_fd = ps.event_fd = -1;
        return -1;
    }
    ps.pid = ps.proc.pid;
    char buf[2048];
    ssize_t n = await_answer(0, buf, sizeof(buf), err, errlen);
    privsep_hdr_t h = {0};
    if (n >= (ssize_t)sizeof(h)) memcpy(&h, buf, sizeof(h));
    if (n >= 0 && h.type != PRIVSEP_MSG_READY) failed_text(buf, (size_t)n, err, errlen);
    ps.up = true; /* from here on, helper_gone() and privsep_stop() clean up */
    if (n < 0 || h.type != PRIVSEP_MSG_READY) {
        ps.stopping = true;
        helper_gone("it did not start");
        return -1;
    }
    uv_poll_init(loop, &ps.poll, ps.event_fd);
    ps.poll_open = true;
    uv_poll_start(&ps.poll, UV_READABLE | UV_DISCONNECT, on_event);
    log_info("privileged spawn helper started (pid %ld): it starts the processes of the "
             "applications that run as other users", (long)ps.pid);
    return 0;
}

bool privsep_active(void) {
    return ps.up;
}

static void push_str(buf_t *b, const char *s) {
    buf_append(b, s, strlen(s) + 1);
}

int privsep_spawn(privsep_proc_t *hp, const privsep_spawn_req_t *req, privsep_exit_cb exit_cb,
                  char *err, size_t errlen) {
    if (!ps.up) {
        snprintf(err, errlen, "the privileged spawn helper is not running");
        return UV_EPERM;
    }
    privsep_hdr_t h = {.type = PRIVSEP_MSG_SPAWN, .seq = ++ps.seq};
    if (h.seq == 0) h.seq = ps.seq = 1; /* 0 is the start-up answer's */
    buf_t b;
    buf_init(&b);
    buf_append(&b, &h, sizeof(h));
    push_str(&b, req->app);
    push_str(&b, req->full_path);
    push_str(&b, req->user);
    for (char **a = req->argv; *a; a++, h.n_argv++) push_str(&b, *a);
    for (char **e = req->env; *e; e++, h.n_env++) push_str(&b, *e);
    memcpy(b.data, &h, sizeof(h));
    if (b.len > PRIVSEP_MSG_MAX) {
        buf_dispose(&b);
        snprintf(err, errlen, "the request (arguments and environment) is larger than %d bytes",
                 PRIVSEP_MSG_MAX);
        return UV_E2BIG;
    }
    union {
        char buf[CMSG_SPACE(sizeof(int) * 3)];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof(cm));
    struct iovec iov = {.iov_base = b.data, .iov_len = b.len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                        .msg_controllen = sizeof(cm.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * 3);
    memcpy(CMSG_DATA(c), req->fds, sizeof(int) * 3);
    ssize_t w;
    while ((w = sendmsg(ps.req_fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
    int e = errno;
    buf_dispose(&b);
    if (w < 0) {
        snprintf(err, errlen, "cannot reach the privileged spawn helper: %s", strerror(e));
        return uv_translate_sys_error(e);
    }
    char ans[2048];
    ssize_t n = await_answer(h.seq, ans, sizeof(ans), err, errlen);
    if (n < 0) return UV_EIO;
    privsep_hdr_t a;
    memcpy(&a, ans, sizeof(a));
    if (a.type != PRIVSEP_MSG_SPAWNED || a.pid <= 0) {
        failed_text(ans, (size_t)n, err, errlen);
        return a.type == PRIVSEP_MSG_FAILED && a.a > 0 ? uv_translate_sys_error(a.a) : UV_EIO;
    }
    hp->pid = a.pid;
    hp->exit_cb = exit_cb;
    hp->prev = NULL;
    hp->next = ps.procs;
    if (ps.procs) ps.procs->prev = hp;
    ps.procs = hp;
    return 0;
}

int privsep_kill(privsep_proc_t *hp, int sig) {
    if (!ps.up) return UV_ESRCH;
    privsep_hdr_t k = {.type = PRIVSEP_MSG_KILL, .pid = hp->pid, .a = sig};
    ssize_t w;
    while ((w = send(ps.req_fd, &k, sizeof(k), MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
    return w < 0 ? uv_translate_sys_error(errno) : 0;
}

void privsep_stop(void) {
    if (ps.stopping && !ps.up) return;
    ps.stopping = true;
    helper_gone("the server stops"); /* EOF on its socket: it ends what is left and exits */
}
