/* `fcgihost ctl`: the command-line client of the control socket (SPEC §1).
 *
 *   fcgihost ctl [-s SOCKET] CMD ARGS...
 *     status [APP] [--json]    recycle APP    set APP KEY VALUE    reload    stop
 *
 * The socket is -s SOCKET, else $FCGIHOST_CONTROL_SOCKET when set and not empty, else
 * /run/fcgihost/control.sock (the default of [server] controlSocket). The client sends one request
 * line (ctl/proto.h), waits for the whole response (10 s; 60 s for reload, which may have to stop
 * processes), and prints it: on success the body to stdout (or, when there is no body, the
 * server's one-line message); on failure "fcgihost ctl: <message>" and the body (the reasons, e.g.
 * configuration errors as file:line) to stderr.
 *
 * Exit status, for scripts:
 *   0  success
 *   1  the server refused the command or failed to carry it out (response code 1 or 2):
 *      unknown app or key, bad value, a reload with configuration errors, an internal error
 *   2  usage error (nothing was sent)
 *   3  the server could not be reached: no socket, connection refused, permission denied, a
 *      timeout, the connection closed without a (well-formed) response
 *
 * Plain blocking POSIX code (with poll for the deadline): this is a CLI, not the server loop.
 */
#ifndef FCGIHOST_CTL_CLIENT_H
#define FCGIHOST_CTL_CLIENT_H
#include <stdio.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILED 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_UNREACHABLE 3

#define CTL_DEFAULT_SOCKET "/run/fcgihost/control.sock"
#define CTL_SOCKET_ENV "FCGIHOST_CONTROL_SOCKET"

#define CTL_TIMEOUT_MS 10000
#define CTL_RELOAD_TIMEOUT_MS 60000

/* The `ctl` subcommand. argv[0] is "ctl" (main passes argc - 1, argv + 1); returns the exit
 * status above. Writes to stdout and stderr. */
int ctl_client_main(int argc, char **argv);

/* The same, writing to `out` and `err` (for tests). */
int ctl_client_run(int argc, char **argv, FILE *out, FILE *err);

#endif
