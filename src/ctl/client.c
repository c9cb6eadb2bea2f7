/* `fcgihost ctl`: parse the command line, send one request over the control socket, print the
 * response (see client.h). */
#include "ctl/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/proto.h"
#include "util/buf.h"

#define PROG "fcgihost ctl"
#define RESPONSE_MAX (64u << 20) /* a status of thousands of processes is well under 1 MiB */

typedef struct cli {
    const char *socket;
    const char *words[CTL_ARGC_MAX];
    int nwords;
    int timeout_ms;
} cli_t;

static void usage(FILE *f) {
    fprintf(f,
            "usage: fcgihost ctl [-s SOCKET] COMMAND [ARGS...]\n"
            "commands:\n"
            "  status [APP] [--json]   pools, processes, queue and counters (JSON for tools)\n"
            "  recycle APP             replace every process of APP gracefully\n"
            "  set APP KEY VALUE       change a live setting (maxInstances, queueLength, ...)\n"
            "  reload                  re-read the configuration file (as SIGHUP)\n"
            "  stop                    stop the server gracefully (as SIGTERM)\n"
            "options:\n"
            "  -s SOCKET  the control socket (default: $" CTL_SOCKET_ENV ", else "
            CTL_DEFAULT_SOCKET ")\n"
            "  -h         this help\n"
            "exit status:\n"
            "  0  success\n"
            "  1  the server refused or failed the command\n"
            "  2  usage error\n"
            "  3  cannot reach the server (no socket, refused, permission, timeout, no response)\n");
}

/* ---- Command line ---- */

static int usage_error(FILE *err, const char *what, const char *arg) {
    fprintf(err, PROG ": %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
    usage(err);
    return CTL_EXIT_USAGE;
}

/* status [APP] [--json], in any order → "status", "status APP", "status '' json", ... */
static int parse_status(cli_t *c, int n, char **args, FILE *err) {
    const char *app = NULL;
    bool json = false;
    for (int i = 0; i < n; i++) {
        if (strcmp(args[i], "--json") == 0) json = true;
        else if (args[i][0] == '-') return usage_error(err, "unknown status option", args[i]);
        else if (app) return usage_error(err, "status takes one APP at most, extra:", args[i]);
        else app = args[i];
    }
    if (app || json) c->words[c->nwords++] = app ? app : "";
    if (json) c->words[c->nwords++] = "json";
    return 0;
}

/* Fill c from argv (argv[0] = "ctl"). Returns 0, CTL_EXIT_USAGE, or -1 after printing help. */
static int parse_args(cli_t *c, int argc, char **argv, FILE *out, FILE *err) {
    static const struct {
        const char *name;
        int nargs; /* -1: status, parsed on its own */
    } cmds[] = {{"status", -1}, {"recycle", 1}, {"set", 3}, {"reload", 0}, {"stop", 0}};
    const char *env = getenv(CTL_SOCKET_ENV);
    c->socket = env && env[0] ? env : CTL_DEFAULT_SOCKET;
    c->nwords = 0;
    c->timeout_ms = CTL_TIMEOUT_MS;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(out);
            return -1;
        }
        if (strncmp(a, "-s", 2) != 0) return usage_error(err, "unknown option", a);
        if (a[2]) {
            c->socket = a + 2;
        } else if (i + 1 < argc) {
            c->socket = argv[++i];
        } else {
            return usage_error(err, "-s needs a socket path", NULL);
        }
        if (c->socket[0] == '\0') return usage_error(err, "-s needs a socket path", NULL);
    }
    if (i == argc) return usage_error(err, "no command given", NULL);
    const char *cmd = argv[i++];
    int n = argc - i;
    size_t k = 0;
    while (k < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmds[k].name, cmd) != 0) k++;
    if (k == sizeof(cmds) / sizeof(cmds[0])) return usage_error(err, "unknown command", cmd);
    c->words[c->nwords++] = cmds[k].name;
    if (cmds[k].nargs < 0) return parse_status(c, n, argv + i, err);
    if (n != cmds[k].nargs) {
        fprintf(err, PROG ": %s takes %d argument%s, not %d\n", cmd, cmds[k].nargs,
                cmds[k].nargs == 1 ? "" : "s", n);
        usage(err);
        return CTL_EXIT_USAGE;
    }
    for (int j = 0; j < n; j++) c->words[c->nwords++] = argv[i + j];
    if (strcmp(cmd, "reload") == 0) c->timeout_ms = CTL_RELOAD_TIMEOUT_MS;
    return 0;
}

/* ---- Socket I/O with one deadline ---- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for `events` or the deadline passes. Returns 0 or -errno (-ETIMEDOUT). */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)(left > INT32_MAX ? INT32_MAX : left));
        if (rc > 0) return 0; /* readable, writable, or an error the next call will report */
        if (rc < 0 && errno != EINTR) return -errno;
    }
}

/* Connect to the Unix socket at path before the deadline. Returns an fd or -errno. */
static int connect_unix(const char *path, int64_t deadline) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) return fd;
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN) { /* the server's backlog is full: try again shortly */
            if (now_ms() + 50 >= deadline) e = ETIMEDOUT;
            else {
                nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000}, NULL);
                continue;
            }
        }
        if (e == EINPROGRESS) {
            socklen_t len = sizeof(e);
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0) e = -rc;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) e = errno;
            if (e == 0) return fd;
        }
        close(fd);
        return -e;
    }
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0) return rc;
        } else {
            return w < 0 ? -errno : -EPIPE;
        }
    }
    return 0;
}

/* Read until the server closes the connection. Returns 0 or -errno (what was read stays in b). */
static int recv_all(int fd, buf_t *b, int64_t deadline) {
    for (;;) {
        if (b->len >= RESPONSE_MAX) return -EMSGSIZE;
        char *w = buf_reserve(b, 65536);
        ssize_t r = recv(fd, w, 65536, 0);
        if (r > 0) {
            b->len += (size_t)r;
            b->data[b->len] = '\0';
        } else if (r == 0) {
            return 0;
        } else if (errno == EAGAIN || errno == EINTR) {
            int rc = wait_fd(fd, POLLIN, deadline);
            if (rc < 0) return rc;
        } else {
            return -errno;
        }
    }
}

/* ---- The exchange ---- */

static int unreachable(FILE *err, const char *what, const char *path, int e) {
    const char *hint = "";
    if (e == ENOENT || e == ECONNREFUSED)
        hint = " (is fcgihost running? -s or " CTL_SOCKET_ENV " name another socket)";
    else if (e == EACCES || e == EPERM)
        hint = " (run as a user allowed to open the socket, e.g. root)";
    fprintf(err, PROG ": %s %s: %s%s\n", what, path, strerror(e), hint);
    return CTL_EXIT_UNREACHABLE;
}

/* Print a complete response; returns the exit status. */
static int print_response(const cli_t *c, const buf_t *resp, FILE *out, FILE *err) {
    int code;
    str_t msg;
    if (resp->len == 0) {
        fprintf(err, PROG ": %s closed the connection without a response\n", c->socket);
        return CTL_EXIT_UNREACHABLE;
    }
    int rc = ctl_response_parse_head(resp->data, resp->len, &code, &msg);
    if (rc < 0) {
        fprintf(err, PROG ": malformed response from %s (%s)\n", c->socket,
                rc == CTL_AGAIN ? "no complete first line" : ctl_strerror(rc));
        return CTL_EXIT_UNREACHABLE;
    }
    const char *body = resp->data + rc;
    size_t body_len = resp->len - (size_t)rc;
    if (code == CTL_CODE_OK) {
        if (body_len) fwrite(body, 1, body_len, out);
        else if (msg.len) fprintf(out, "%.*s\n", (int)msg.len, msg.p);
        return CTL_EXIT_OK;
    }
    if (msg.len) fprintf(err, PROG ": %.*s\n", (int)msg.len, msg.p);
    else fprintf(err, PROG ": the server %s the command (code %d)\n",
                 code == CTL_CODE_REFUSED ? "refused" : "failed", code);
    if (body_len) {
        fwrite(body, 1, body_len, err);
        if (body[body_len - 1] != '\n') fputc('\n', err);
    }
    return CTL_EXIT_FAILED;
}

static int exchange(const cli_t *c, FILE *out, FILE *err) {
    buf_t req, resp;
    int status;
    buf_init(&req);
    buf_init(&resp);
    int rc = ctl_request_encode(&req, c->nwords, c->words);
    if (rc < 0) {
        fprintf(err, PROG ": cannot send this command: %s\n", ctl_strerror(rc));
        buf_dispose(&req);
        return CTL_EXIT_USAGE;
    }
    int64_t deadline = now_ms() + c->timeout_ms;
    int fd = connect_unix(c->socket, deadline);
    if (fd < 0) {
        status = unreachable(err, "cannot connect to", c->socket, -fd);
        goto done;
    }
    rc = send_all(fd, req.data, req.len, deadline);
    if (rc == 0) rc = recv_all(fd, &resp, deadline);
    close(fd);
    if (rc == -ETIMEDOUT) {
        fprintf(err, PROG ": no complete response from %s within %d s\n", c->socket,
                c->timeout_ms / 1000);
        status = CTL_EXIT_UNREACHABLE;
    } else if (rc < 0 && resp.len == 0) {
        status = unreachable(err, "lost the connection to", c->socket, -rc);
    } else {
        /* An error after part of the response: print what came, and when it claims success
         * say that it may be incomplete. */
        status = print_response(c, &resp, out, err);
        if (rc < 0 && status == CTL_EXIT_OK) {
            fprintf(err, PROG ": the response from %s may be cut short: %s\n", c->socket,
                    strerror(-rc));
            status = CTL_EXIT_UNREACHABLE;
        }
    }
done:
    buf_dispose(&req);
    buf_dispose(&resp);
    return status;
}

int ctl_client_run(int argc, char **argv, FILE *out, FILE *err) {
    cli_t c;
    int rc = parse_args(&c, argc, argv, out, err);
    if (rc < 0) return CTL_EXIT_OK; /* -h */
    if (rc > 0) return rc;
    rc = exchange(&c, out, err);
    fflush(out);
    fflush(err);
    return rc;
}

int ctl_client_main(int argc, char **argv) {
    int rc = ctl_client_run(argc, argv, stdout, stderr);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(errno));
        if (rc == CTL_EXIT_OK) rc = CTL_EXIT_FAILED;
    }
    return rc;
}
