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

#include "config/config.h"
#include "ctl/proto.h"
#include "util/buf.h"

#define PROG "fcgihost ctl"
#define RESPONSE_MAX (64u << 20) /* a status of thousands of processes is well under 1 MiB */
#define PARSED_HELP (-1)         /* parse_args printed a help text: exit 0 */

typedef struct cli {
    const char *socket;      /* -s, or chosen by choose_socket */
    const char *conf;        /* -c */
    const char *from;        /* where the socket came from, for messages */
    cfg_t *cfg;              /* the file the socket was read from (owns `socket` then) */
    char from_buf[512];
    const char *words[CTL_ARGC_MAX];
    int nwords;
    int timeout_ms;
} cli_t;

/* The commands: arguments (-1: status, parsed on its own), synopsis, a line for the general
 * help, and what the command's own --help says. */
typedef struct cmd_info {
    const char *name;
    int nargs;
    const char *synopsis;
    const char *summary;
    const char *help;
} cmd_info_t;

static const cmd_info_t cmds[] = {
    {"status", -1, "status [APP] [--json]", "pools, processes, queue and counters (JSON for tools)",
     "Show the pools, their processes (pid, state, requests, age, memory), the queue, the\n"
     "counters and the current process limit, of every application or of APP only.\n"
     "  --json   one JSON document on one line, for tools (the document of the status page)\n"},
    {"recycle", 1, "recycle APP", "replace every process of APP gracefully",
     "Replace every process of APP gracefully: idle ones end at once, busy ones after their\n"
     "current request. A pool failed after rapid fails may start processes again at once.\n"},
    {"set", 3, "set APP KEY VALUE", "change a live setting (maxInstances, queueLength, ...)",
     "Change a setting of APP on the running server now, until the next reload. Live keys:\n"
     "maxInstances, queueLength, instanceMaxRequests, idleTimeout, activityTimeout,\n"
     "requestTimeout, stderrMode, signalBeforeTerminateSeconds.\n"},
    {"reload", 0, "reload", "re-read the configuration file (as SIGHUP)",
     "Re-read the configuration file (as SIGHUP) and wait for the result; a file with errors\n"
     "is not applied: the errors are printed and the exit status is 1.\n"},
    {"stop", 0, "stop", "stop the server gracefully (as SIGTERM)",
     "Stop the server gracefully (as SIGTERM): in-flight requests finish, then it exits.\n"},
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f, const char *default_conf) {
    fprintf(f, "usage: fcgihost ctl [-s SOCKET | -c FILE] COMMAND [ARGS...]\n"
               "Talk to a running fcgihost over its control socket.\n"
               "commands:\n");
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(f, "  %-22s  %s\n", cmds[i].synopsis, cmds[i].summary);
    fprintf(f,
            "  (fcgihost ctl COMMAND --help says more)\n"
            "options:\n"
            "  -s SOCKET   the control socket\n"
            "  -c FILE     the configuration file whose controlSocket is the socket\n"
            "  -h, --help  this help\n"
            "Without -s or -c the socket is $" CTL_SOCKET_ENV " when set, else the\n"
            "controlSocket of %s when that file exists and is readable,\n"
            "else " CTL_DEFAULT_SOCKET ".\n"
            "exit status:\n"
            "  0  success\n"
            "  1  the server refused or failed the command; or FILE has errors\n"
            "  2  usage error\n"
            "  3  cannot reach the server (no socket, refused, permission, timeout, no response)\n",
            default_conf);
}

static void usage_cmd(FILE *f, const cmd_info_t *cmd) {
    fprintf(f, "usage: fcgihost ctl [-s SOCKET | -c FILE] %s\n%s", cmd->synopsis, cmd->help);
}

/* ---- Command line ---- */

/* A usage error: what was wrong, then where help is (GNU style). `cmd` names the command whose
 * help fits, or NULL for the general one. */
static int usage_error(FILE *err, const cmd_info_t *cmd, const char *what, const char *arg) {
    fprintf(err, PROG ": %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
    fprintf(err, "Try '" PROG "%s%s --help' for more information.\n", cmd ? " " : "",
            cmd ? cmd->name : "");
    return CTL_EXIT_USAGE;
}

static bool is_help(const char *a) {
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* status [APP] [--json], in any order → "status", "status APP", "status '' json", ... */
static int parse_status(cli_t *c, const cmd_info_t *cmd, int n, char **args, FILE *err) {
    const char *app = NULL;
    bool json = false;
    for (int i = 0; i < n; i++) {
        if (strcmp(args[i], "--json") == 0) json = true;
        else if (args[i][0] == '-') return usage_error(err, cmd, "unknown status option", args[i]);
        else if (app) return usage_error(err, cmd, "status takes one APP at most, extra:", args[i]);
        else app = args[i];
    }
    if (app || json) c->words[c->nwords++] = app ? app : "";
    if (json) c->words[c->nwords++] = "json";
    return 0;
}

/* -s SOCKET, -sSOCKET, -c FILE, -cFILE: the value, or NULL when it is missing or empty. */
static const char *option_value(int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = a[2] ? a + 2 : *i + 1 < argc ? argv[++*i] : NULL;
    return v && v[0] ? v : NULL;
}

/* Parse the command and its arguments (argv[i..]). */
static int parse_command(cli_t *c, int argc, char **argv, int i, FILE *out, FILE *err) {
    if (i == argc) return usage_error(err, NULL, "no command given", NULL);
    const char *name = argv[i++];
    const cmd_info_t *cmd = NULL;
    for (size_t k = 0; k < N_CMDS && !cmd; k++)
        if (strcmp(cmds[k].name, name) == 0) cmd = &cmds[k];
    if (cmd == NULL) return usage_error(err, NULL, "unknown command", name);
    /* Every command takes --help (and -h), which no argument of any command can be. */
    for (int k = i; k < argc; k++)
        if (is_help(argv[k])) {
            usage_cmd(out, cmd);
            return PARSED_HELP;
        }
    int n = argc - i;
    c->words[c->nwords++] = cmd->name;
    if (cmd->nargs < 0) return parse_status(c, cmd, n, argv + i, err);
    if (n != cmd->nargs) {
        fprintf(err, PROG ": %s takes %d argument%s, not %d\n", cmd->name, cmd->nargs,
                cmd->nargs == 1 ? "" : "s", n);
        fprintf(err, "usage: fcgihost ctl [-s SOCKET | -c FILE] %s\n", cmd->synopsis);
        fprintf(err, "Try '" PROG " %s --help' for more information.\n", cmd->name);
        return CTL_EXIT_USAGE;
    }
    for (int j = 0; j < n; j++) c->words[c->nwords++] = argv[i + j];
    if (strcmp(cmd->name, "reload") == 0) c->timeout_ms = CTL_RELOAD_TIMEOUT_MS;
    return 0;
}

/* Fill c from argv (argv[0] = "ctl"). Returns 0, CTL_EXIT_USAGE, or PARSED_HELP after printing a
 * help text. */
static int parse_args(cli_t *c, int argc, char **argv, const char *default_conf, FILE *out,
                      FILE *err) {
    *c = (cli_t){.timeout_ms = CTL_TIMEOUT_MS};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (is_help(a)) {
            usage(out, default_conf);
            return PARSED_HELP;
        }
        if (strncmp(a, "-s", 2) == 0) {
            if ((c->socket = option_value(argc, argv, &i)) == NULL)
                return usage_error(err, NULL, "-s needs a socket path", NULL);
        } else if (strncmp(a, "-c", 2) == 0) {
            if ((c->conf = option_value(argc, argv, &i)) == NULL)
                return usage_error(err, NULL, "-c needs a configuration file", NULL);
        } else {
            return usage_error(err, NULL, "unknown option", a);
        }
    }
    if (c->socket && c->conf)
        return usage_error(err, NULL, "-s and -c both name the socket: give one of them", NULL);
    return parse_command(c, argc, argv, i, out, err);
}

/* ---- Which socket ---- */

/* The controlSocket of the configuration file `path`, loaded and checked as the server would.
 * On errors, prints them (file:line: message) and returns CTL_EXIT_FAILED. */
static int socket_from_file(cli_t *c, const char *path, FILE *err) {
    cfg_diag_t diag;
    cfg_diag_init(&diag);
    c->cfg = cfg_load(path, &diag);
    if (c->cfg == NULL) {
        for (size_t i = 0; i < diag.n; i++) fprintf(err, "%s\n", diag.msgs[i]);
        fprintf(err,
                PROG ": cannot take the control socket from %s: the file has errors "
                "(-s SOCKET names the socket without reading a file)\n",
                path);
    }
    cfg_diag_dispose(&diag);
    if (c->cfg == NULL) return CTL_EXIT_FAILED;
    c->socket = c->cfg->server.control_socket;
    return 0;
}

/* -s; else the controlSocket of -c FILE; else $FCGIHOST_CONTROL_SOCKET; else the controlSocket of
 * the default configuration file when it exists and is readable; else the default socket. */
static int choose_socket(cli_t *c, const char *default_conf, FILE *err) {
    if (c->socket) {
        c->from = "named by -s";
        return 0;
    }
    if (c->conf) {
        snprintf(c->from_buf, sizeof(c->from_buf), "the controlSocket of %s", c->conf);
        c->from = c->from_buf;
        return socket_from_file(c, c->conf, err);
    }
    const char *env = getenv(CTL_SOCKET_ENV);
    if (env && env[0]) {
        c->socket = env;
        c->from = "named by $" CTL_SOCKET_ENV;
        return 0;
    }
    if (default_conf && access(default_conf, R_OK) == 0) {
        snprintf(c->from_buf, sizeof(c->from_buf), "the controlSocket of %s", default_conf);
        c->from = c->from_buf;
        return socket_from_file(c, default_conf, err);
    }
    c->socket = CTL_DEFAULT_SOCKET;
    c->from = "the default";
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

static int unreachable(const cli_t *c, FILE *err, const char *what, int e) {
    fprintf(err, PROG ": %s %s: %s", what, c->socket, strerror(e));
    if (e == ENOENT || e == ECONNREFUSED)
        fprintf(err, " (is fcgihost running? this socket is %s; -s SOCKET or -c FILE name another)",
                c->from);
    else if (e == EACCES || e == EPERM)
        fputs(" (run as a user allowed to open the socket, e.g. root)", err);
    fputc('\n', err);
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
        status = unreachable(c, err, "cannot connect to", -fd);
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
        status = unreachable(c, err, "lost the connection to", -rc);
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

int ctl_client_run(int argc, char **argv, const char *default_conf, FILE *out, FILE *err) {
    cli_t c;
    int rc = parse_args(&c, argc, argv, default_conf, out, err);
    if (rc == 0) rc = choose_socket(&c, default_conf, err);
    if (rc == 0) rc = exchange(&c, out, err);
    else if (rc == PARSED_HELP) rc = CTL_EXIT_OK;
    if (c.cfg) cfg_free(c.cfg);
    fflush(out);
    fflush(err);
    return rc;
}

int ctl_client_main(int argc, char **argv, const char *default_conf) {
    int rc = ctl_client_run(argc, argv, default_conf, stdout, stderr);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(errno));
        if (rc == CTL_EXIT_OK) rc = CTL_EXIT_FAILED;
    }
    return rc;
}
