/* Privilege separation (SPEC §8): the privileged spawn helper and the server's side of it.
 *
 * When fcgihost is started as root and drops to [server] user U, the process that parses HTTP runs
 * as U and can no longer start a FastCGI process as another user. If, at start, some application
 * has a `user` other than U, the server first starts a helper, `fcgihost __fcgihost_helper`, that
 * stays root and does only this:
 *
 *   - it reads two SOCK_SEQPACKET sockets shared with the server and nothing else: never a network
 *     socket, never a request byte;
 *   - on a spawn request (application name, fullPath, user, argv, environment, and three
 *     descriptors passed with SCM_RIGHTS: the process's listening socket and the write ends of
 *     its stdout and stderr pipes) it checks the request against the configuration file it reads
 *     itself (the request must name an application of that file with the same fullPath, argv and
 *     user; every environment entry must be the server's own, one of the application's `env`, or
 *     _FCGI_X_PIPE_ / PHP_FCGI_CHILDREN), so that a compromised server process cannot make it run
 *     anything as anyone; then it forks and execs the spawn trampoline (pool_child_main) exactly
 *     as the server would have, and answers with the pid;
 *   - it signals only its own live children (a "kill" request names a pid it spawned);
 *   - it reaps its children and reports each exit ("pid exited with status/signal") to the
 *     server on the event socket: the server is not their parent, so it cannot waitpid() them;
 *   - it ends when the server does: PR_SET_PDEATHSIG(SIGKILL) ties it to the server, and end of
 *     file on its socket (the server exited or stopped) makes it SIGKILL its children, reap them
 *     and exit. Its children carry PR_SET_PDEATHSIG(SIGKILL) tied to the helper (the trampoline
 *     sets it), so no FastCGI process outlives fcgihost, even after a SIGKILL of the server.
 *
 * The helper is started with uv_spawn (so the server reaps it through exit_cb like any other
 * child) before the privilege drop, and re-executes the binary: it shares no memory, no libuv
 * state and no descriptor with the server beyond its two sockets. It ignores SIGINT, SIGTERM,
 * SIGHUP and SIGUSR1: the server decides when processes end (a Ctrl-C on the terminal must not
 * kill the other users' processes under their in-flight requests).
 *
 * Spawns of applications that run as the server's own user keep the direct path (uv_spawn of the
 * trampoline from the server), as does everything when the server is not root or nothing needs
 * another user: then no helper runs at all. */
#ifndef FCGIHOST_POOL_PRIVSEP_H
#define FCGIHOST_POOL_PRIVSEP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define PRIVSEP_HELPER_ARG "__fcgihost_helper"

typedef struct privsep_proc privsep_proc_t;

/* A process started by the helper has exited: the same values as uv_process_t's exit_cb
 * (exit_status when it exited, term_signal when a signal ended it). */
typedef void (*privsep_exit_cb)(privsep_proc_t *hp, int64_t exit_status, int term_signal);

/* A process the helper started, embedded in its owner (the worker). Registered from a
 * successful privsep_spawn() until exit_cb has run. */
struct privsep_proc {
    pid_t pid;
    void *data;                      /* the owner's */
    /* private: */
    privsep_exit_cb exit_cb;
    privsep_proc_t *prev, *next;
};

/* A spawn request. Strings are borrowed for the duration of the call. */
typedef struct privsep_spawn_req {
    const char *app;                 /* the [fastcgi:NAME] */
    const char *full_path;
    const char *user;                /* the application's `user`, as configured */
    char **argv;                     /* NULL-terminated: the application's argv (argv[0] first) */
    char **env;                      /* NULL-terminated NAME=VALUE entries */
    int fds[3];                      /* listening socket (fd 0), stdout and stderr write ends */
} privsep_spawn_req_t;

/* Start the helper (before the privilege drop: it must be root). `exe` is the fcgihost binary,
 * `conf_path` the configuration file the helper reads. Waits (bounded) until the helper has read
 * the configuration. Returns 0, or -1 with a one-line reason in err. */
int privsep_start(uv_loop_t *loop, const char *exe, const char *conf_path, char *err, size_t errlen);
/* Whether a helper is running (started and not gone). */
bool privsep_active(void);
/* Ask the helper to start a process. Blocks the loop until the answer (as uv_spawn's fork and
 * exec do, bounded by a timeout). Returns 0 with hp->pid set and hp registered (exit_cb runs once
 * the helper reports the exit), or a negative UV_E* code with the reason in err. The caller keeps
 * and closes its descriptors in req->fds. */
int privsep_spawn(privsep_proc_t *hp, const privsep_spawn_req_t *req, privsep_exit_cb exit_cb,
                  char *err, size_t errlen);
/* Signal a registered process's group (and the process if that fails). Returns 0 or UV_ESRCH
 * when the helper is gone (the process went with it). */
int privsep_kill(privsep_proc_t *hp, int sig);
/* At the end of the server's stop: close the sockets (the helper ends its remaining children and
 * exits) and let the loop reap it. Idempotent. */
void privsep_stop(void);

/* The helper's main(): `fcgihost __fcgihost_helper CONF SERVER_PID`, with its request socket on
 * fd 3 and its event socket on fd 4. main() calls it first thing when argv[1] is
 * PRIVSEP_HELPER_ARG. Returns the exit status. */
int privsep_helper_main(int argc, char **argv);

/* ---- The wire format, shared by both sides (one message per SOCK_SEQPACKET datagram) ---- */

#define PRIVSEP_MSG_MAX (256 * 1024)
#define PRIVSEP_REQ_FD 3
#define PRIVSEP_EVENT_FD 4

typedef enum privsep_msg_type {
    PRIVSEP_MSG_READY = 1,   /* helper → server, request socket: configuration read (or FAILED) */
    PRIVSEP_MSG_SPAWN,       /* server → helper: strings app, full_path, user, argv..., env...;
                                n_argv and n_env say how many; three descriptors */
    PRIVSEP_MSG_SPAWNED,     /* helper → server: pid */
    PRIVSEP_MSG_FAILED,      /* helper → server: a = errno; one string: why */
    PRIVSEP_MSG_KILL,        /* server → helper: pid, a = signal (no answer) */
    PRIVSEP_MSG_EXITED,      /* helper → server, event socket: pid, a = exit status, b = signal */
} privsep_msg_type_t;

typedef struct privsep_hdr {
    uint32_t type;
    uint32_t seq;            /* SPAWN and its answer: matches an answer to its request */
    int32_t pid;
    int32_t a, b;
    uint32_t n_argv, n_env;
} privsep_hdr_t;

#endif
