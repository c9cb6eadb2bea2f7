/* The privileged spawn helper: a root process that starts FastCGI processes for the unprivileged
 * server, and nothing else. See privsep.h for what it does and why.
 *
 * It uses no libuv and nothing of the server: one poll(2) loop over its request socket (fd 3),
 * a signalfd for SIGCHLD and, when events are waiting to go out, its event socket (fd 4). It owns
 * every process it forks, so it reaps them itself with waitpid(). Its own problems go to stderr
 * (the server's) prefixed "fcgihost helper:", and to the server as FAILED answers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "pool/pool.h"
#include "pool/privsep.h"
#include "util/identity.h"
#include "util/xalloc.h"

#define HELPER_REAP_MS 2000   /* at the end: how long SIGKILLed children may take to be reaped */
#define ENV_CHILDREN "PHP_FCGI_CHILDREN="
#define ENV_PIPE "_FCGI_X_PIPE_="

typedef struct helper {
    const char *conf;
    char *exe;
    cfg_t *cfg;
    int sigfd;
    pid_t *kids;              /* live children */
    size_t n_kids, cap_kids;
    privsep_hdr_t *events;    /* EXITED messages not yet sent */
    size_t n_events, cap_events;
    char *msg;                /* PRIVSEP_MSG_MAX bytes */
} helper_t;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(line)) n = sizeof(line) - 1;
    dprintf(2, "fcgihost helper: %.*s\n", n, line);
}

/* ---- Answers and events ---- */

static void answer(const privsep_hdr_t *h, const char *text) {
    char buf[sizeof(*h) + 1024];
    memcpy(buf, h, sizeof(*h));
    size_t n = sizeof(*h);
    if (text) {
        size_t t = strnlen(text, 1023);
        memcpy(buf + n, text, t);
        buf[n + t] = '\0';
        n += t + 1;
    }
    while (send(PRIVSEP_REQ_FD, buf, n, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
}

static void fail(uint32_t seq, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(uint32_t seq, int err, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    privsep_hdr_t h = {.type = PRIVSEP_MSG_FAILED, .seq = seq, .a = err};
    answer(&h, text);
}

/* Events go out without blocking: a server busy elsewhere must not stall the helper (it would
 * then stall the server's next spawn). What the socket does not take waits in a queue. */
static void flush_events(helper_t *hp) {
    size_t i = 0;
    for (; i < hp->n_events; i++) {
        ssize_t w = send(PRIVSEP_EVENT_FD, &hp->events[i], sizeof(hp->events[i]),
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            i--;
            continue;
        }
        if (w < 0) break; /* EAGAIN: later; another error: the server is gone, EOF follows */
    }
    memmove(hp->events, hp->events + i, (hp->n_events - i) * sizeof(*hp->events));
    hp->n_events -= i;
}

static void queue_exit(helper_t *hp, pid_t pid, int wstatus) {
    if (hp->n_events == hp->cap_events) {
        hp->cap_events = hp->cap_events ? 2 * hp->cap_events : 16;
        hp->events = xrealloc(hp->events, hp->cap_events * sizeof(*hp->events));
    }
    privsep_hdr_t *e = &hp->events[hp->n_events++];
    *e = (privsep_hdr_t){.type = PRIVSEP_MSG_EXITED, .pid = pid};
    if (WIFEXITED(wstatus)) e->a = WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) e->b = WTERMSIG(wstatus);
}

/* ---- Children ---- */

static ssize_t kid_index(const helper_t *hp, pid_t pid) {
    for (size_t i = 0; i < hp->n_kids; i++)
        if (hp->kids[i] == pid) return (ssize_t)i;
    return -1;
}

static void add_kid(helper_t *hp, pid_t pid) {
    if (hp->n_kids == hp->cap_kids) {
        hp->cap_kids = hp->cap_kids ? 2 * hp->cap_kids : 16;
        hp->kids = xrealloc(hp->kids, hp->cap_kids * sizeof(*hp->kids));
    }
    hp->kids[hp->n_kids++] = pid;
}

/* Reap every child that has exited. What the process forked and left in its group goes with it,
 * as in the server's direct path (worker.c, sweep_group): the group id cannot have been reused,
 * the leader was reaped only now. */
static void reap(helper_t *hp, bool report) {
    for (;;) {
        int ws;
        pid_t pid = waitpid(-1, &ws, WNOHANG);
        if (pid <= 0) return;
        if (!WIFEXITED(ws) && !WIFSIGNALED(ws)) continue;
        kill(-pid, SIGKILL);
        ssize_t i = kid_index(hp, pid);
        if (i >= 0) hp->kids[i] = hp->kids[--hp->n_kids];
        if (report) queue_exit(hp, pid, ws);
    }
}

static void drain_sigfd(helper_t *hp) {
    struct signalfd_siginfo si;
    while (read(hp->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {}
}

/* ---- Checking a spawn request against the configuration file ---- */

static bool str_eq0(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

static bool in_list(char **list, size_t n, const char *s) {
    for (size_t i = 0; list && i < n; i++)
        if (strcmp(list[i], s) == 0) return true;
    return false;
}

static bool env_allowed(const cfg_app_t *app, const char *e) {
    extern char **environ;
    if (strncmp(e, ENV_PIPE, strlen(ENV_PIPE)) == 0) return true;
    if (strncmp(e, ENV_CHILDREN, strlen(ENV_CHILDREN)) == 0) {
        const char *v = e + strlen(ENV_CHILDREN);
        if (*v == '\0') return false;
        for (; *v; v++)
            if (*v < '0' || *v > '9') return false;
        return true;
    }
    /* preforkChildren (SPEC 4.9b): the two entries the server adds for a group (worker.c's
     * build_env), only for an application that has it in the file */
    if (app->prefork_children >= 2 &&
        (strcmp(e, "PHP_FCGI_MAX_REQUESTS=0") == 0 || strcmp(e, POOL_PDEATHSIG_ENV "=TERM") == 0))
        return true;
    if (in_list(app->env, app->n_env, e)) return true;
    for (char **x = environ; x && *x; x++)
        if (strcmp(*x, e) == 0) return true;
    return false;
}

typedef struct spawn_req {
    uint32_t seq;
    const char *app, *full_path, *user;
    char **argv, **env;
    int fds[3];
} spawn_req_t;

/* NULL when the request matches an application of cfg that runs as another user; else why not. */
static const char *mismatch(const cfg_t *cfg, const spawn_req_t *r, const cfg_app_t **out) {
    const cfg_app_t *app = cfg ? cfg_find_app(cfg, r->app) : NULL;
    if (app == NULL) return "no such application in the configuration file";
    if (!str_eq0(app->full_path, r->full_path)) return "fullPath differs from the configuration file";
    if (!str_eq0(app->user, r->user)) return "user differs from the configuration file";
    size_t i = 0;
    for (; app->argv && app->argv[i] && r->argv[i]; i++)
        if (strcmp(app->argv[i], r->argv[i]) != 0) break;
    bool same = app->argv && app->argv[i] == NULL && r->argv[i] == NULL;
    if (!same) return "arguments differ from the configuration file";
    for (char **e = r->env; *e; e++)
        if (!env_allowed(app, *e)) return "an environment entry is not the server's or the application's";
    *out = app;
    return NULL;
}

/* The configuration file may have changed since the helper read it (a reload that added or
 * changed an application): read it again once before refusing. */
static const cfg_app_t *check(helper_t *hp, const spawn_req_t *r) {
    const cfg_app_t *app = NULL;
    const char *why = mismatch(hp->cfg, r, &app);
    if (why == NULL) return app;
    cfg_diag_t diag;
    cfg_diag_init(&diag);
    cfg_t *fresh = cfg_load(hp->conf, &diag);
    cfg_diag_dispose(&diag);
    if (fresh) {
        cfg_free(hp->cfg);
        hp->cfg = fresh;
        why = mismatch(hp->cfg, r, &app);
        if (why == NULL) return app;
    }
    fail(r->seq, EPERM, "refused to start [fastcgi:%s]: %s%s", r->app, why,
         fresh ? "" : " (and the file cannot be read again)");
    return NULL;
}

/* ---- Spawning ---- */

/* In the forked child: the descriptors onto 0, 1, 2, the signal state of a fresh process, a
 * session of its own (the server signals the group), then the trampoline. Never returns. */
static void child(helper_t *hp, char **argv, char **env, const int fds[3]) {
    int fd[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = fds[i];
        if (fd[i] < 3) fd[i] = fcntl(fd[i], F_DUPFD_CLOEXEC, 3);
    }
    for (int i = 0; i < 3; i++)
        if (fd[i] < 0 || dup2(fd[i], i) < 0) _exit(127);
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    execve(hp->exe, argv, env);
    dprintf(2, "fcgihost helper: cannot execute %s: %s\n", hp->exe, strerror(errno));
    _exit(127);
}

static void spawn(helper_t *hp, const spawn_req_t *r) {
    const cfg_app_t *app = check(hp, r);
    if (app == NULL) return;
    identity_t id;
    char err[256];
    if (identity_lookup(app->user, &id, err, sizeof(err)) < 0) {
        fail(r->seq, ENOENT, "[fastcgi:%s]: %s", r->app, err);
        return;
    }
    char uid[24];
    snprintf(uid, sizeof(uid), "%u", (unsigned)id.uid);
    char *groups = identity_format_groups(&id);
    identity_dispose(&id);
    size_t n = 0;
    while (r->argv[n]) n++;
    char **argv = xcalloc(n + 6, sizeof(char *));
    argv[0] = hp->exe;
    argv[1] = POOL_SPAWN_ARG;
    argv[2] = uid;
    argv[3] = groups;
    argv[4] = (char *)r->full_path;
    memcpy(argv + 5, r->argv, n * sizeof(char *));
    pid_t pid = fork();
    if (pid == 0) child(hp, argv, r->env, r->fds);
    int e = errno;
    free(argv);
    free(groups);
    if (pid < 0) {
        fail(r->seq, e, "[fastcgi:%s]: fork: %s", r->app, strerror(e));
        return;
    }
    add_kid(hp, pid);
    privsep_hdr_t h = {.type = PRIVSEP_MSG_SPAWNED, .seq = r->seq, .pid = pid};
    answer(&h, NULL);
}

/* ---- Requests ---- */

/* The strings after the header: exactly `want` NUL-terminated ones filling the message. */
static char **split(char *p, size_t len, size_t want) {
    char **v = xcalloc(want + 1, sizeof(char *));
    size_t k = 0;
    char *end = p + len;
    while (p < end && k < want) {
        char *z = memchr(p, '\0', (size_t)(end - p));
        if (z == NULL) break;
        v[k++] = p;
        p = z + 1;
    }
    if (k != want || p != end) {
        free(v);
        return NULL;
    }
    return v;
}

static void on_spawn(helper_t *hp, const privsep_hdr_t *h, char *body, size_t len, const int *fds,
                     size_t n_fds) {
    spawn_req_t r = {.seq = h->seq};
    char **s = NULL;
    if (n_fds != 3 || h->n_argv < 1 || h->n_argv > 4096 || h->n_env > 65536 ||
        (s = split(body, len, 3 + (size_t)h->n_argv + h->n_env)) == NULL) {
        fail(h->seq, EINVAL, "malformed spawn request");
        free(s);
        return;
    }
    r.app = s[0];
    r.full_path = s[1];
    r.user = s[2];
    /* argv and env are NULL-terminated views into s: argv ends where env begins. */
    char **argv = xcalloc(h->n_argv + 1, sizeof(char *));
    memcpy(argv, s + 3, h->n_argv * sizeof(char *));
    r.argv = argv;
    r.env = s + 3 + h->n_argv;
    memcpy(r.fds, fds, sizeof(r.fds));
    spawn(hp, &r);
    free(argv);
    free(s);
}

static void on_kill(helper_t *hp, const privsep_hdr_t *h) {
    /* Only a live child of ours: a pid that is not (any more) ours may belong to anyone. */
    if (h->pid <= 0 || kid_index(hp, h->pid) < 0 || h->a <= 0 || h->a >= NSIG) return;
    if (kill(-h->pid, h->a) < 0) kill(h->pid, h->a);
}

/* One request. Returns false at end of file or on an error of the socket: the server is gone. */
static bool read_request(helper_t *hp) {
    union {
        char buf[CMSG_SPACE(sizeof(int) * 3)];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = hp->msg, .iov_len = PRIVSEP_MSG_MAX};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                        .msg_controllen = sizeof(cm.buf)};
    ssize_t n = recvmsg(PRIVSEP_REQ_FD, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    int fds[3];
    size_t n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *p = (int *)(void *)CMSG_DATA(c);
        for (size_t i = 0; i < k; i++) {
            if (n_fds < 3) fds[n_fds++] = p[i];
            else close(p[i]);
        }
    }
    privsep_hdr_t h;
    if ((size_t)n >= sizeof(h) && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        memcpy(&h, hp->msg, sizeof(h));
        if (h.type == PRIVSEP_MSG_SPAWN)
            on_spawn(hp, &h, hp->msg + sizeof(h), (size_t)n - sizeof(h), fds, n_fds);
        else if (h.type == PRIVSEP_MSG_KILL)
            on_kill(hp, &h);
    }
    for (size_t i = 0; i < n_fds; i++) close(fds[i]);
    return true;
}

/* ---- Start and end ---- */

static int setup(helper_t *hp, int argc, char **argv) {
    long server = argc == 4 ? strtol(argv[3], NULL, 10) : 0;
    if (argc != 4 || server <= 1) {
        say("usage: fcgihost %s CONF SERVER_PID (started by fcgihost itself)", PRIVSEP_HELPER_ARG);
        return -1;
    }
    /* Tied to the server: if it dies, even by SIGKILL, so does the helper (and, through their own
     * PR_SET_PDEATHSIG, the processes it started). The parent check closes the race in which the
     * server died before the setting took effect. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t)server) {
        say("the server is gone");
        return -1;
    }
    for (int fd = PRIVSEP_REQ_FD; fd <= PRIVSEP_EVENT_FD; fd++) {
        int t;
        socklen_t tl = sizeof(t);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &tl) < 0 || t != SOCK_SEQPACKET ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
            say("descriptor %d is not the server's socket", fd);
            return -1;
        }
    }
    int ign[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE, SIGQUIT};
    for (size_t i = 0; i < sizeof(ign) / sizeof(ign[0]); i++) signal(ign[i], SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    hp->sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    hp->exe = realpath("/proc/self/exe", NULL);
    hp->conf = argv[2];
    hp->msg = xmalloc(PRIVSEP_MSG_MAX);
    if (hp->sigfd < 0 || hp->exe == NULL) {
        say("cannot set up: %s", strerror(errno));
        return -1;
    }
    cfg_diag_t diag;
    cfg_diag_init(&diag);
    hp->cfg = cfg_load(hp->conf, &diag);
    privsep_hdr_t h = {.type = hp->cfg ? PRIVSEP_MSG_READY : PRIVSEP_MSG_FAILED, .a = EINVAL};
    answer(&h, hp->cfg ? NULL : diag.n ? diag.msgs[0] : "the configuration file has errors");
    cfg_diag_dispose(&diag);
    return hp->cfg ? 0 : -1;
}

/* The server is gone or stopped: nothing may outlive it. */
static void finish(helper_t *hp) {
    for (size_t i = 0; i < hp->n_kids; i++) {
        if (kill(-hp->kids[i], SIGKILL) < 0) kill(hp->kids[i], SIGKILL);
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (hp->n_kids) {
        reap(hp, false);
        if (hp->n_kids == 0) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= HELPER_REAP_MS) break; /* stuck in the kernel: they go with us (PDEATHSIG) */
        struct pollfd p = {.fd = hp->sigfd, .events = POLLIN};
        poll(&p, 1, (int)(HELPER_REAP_MS - ms));
        drain_sigfd(hp);
    }
}

int privsep_helper_main(int argc, char **argv) {
    helper_t h = {.sigfd = -1}, *hp = &h;
    int rc = setup(hp, argc, argv) == 0 ? 0 : 1;
    while (rc == 0) {
        struct pollfd p[3] = {
            {.fd = PRIVSEP_REQ_FD, .events = POLLIN},
            {.fd = hp->sigfd, .events = POLLIN},
            {.fd = PRIVSEP_EVENT_FD, .events = hp->n_events ? POLLOUT : 0},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            say("poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents) {
            drain_sigfd(hp);
            reap(hp, true);
        }
        if (hp->n_events) flush_events(hp);
        if (p[0].revents && !read_request(hp)) break; /* the server closed its end */
        if (p[2].revents & (POLLERR | POLLHUP)) break;
    }
    finish(hp);
    if (hp->cfg) cfg_free(hp->cfg);
    if (hp->sigfd >= 0) close(hp->sigfd);
    free(hp->kids);
    free(hp->events);
    free(hp->msg);
    free(hp->exe);
    return rc;
}
