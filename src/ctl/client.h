/* `fcgihost ctl`: the command-line client of the control socket (SPEC §1).
 *
 *   fcgihost ctl [-s SOCKET | -c FILE] CMD ARGS...
 *     status [APP] [--json]    recycle APP    set APP KEY VALUE    reload    stop
 *   fcgihost ctl --help, fcgihost ctl CMD --help (or -h): help on stdout, exit 0
 *
 * The socket is -s SOCKET; else the controlSocket of the configuration file FILE (-c), loaded and
 * checked with cfg_load (a file with errors: they are printed, exit 1); else
 * $FCGIHOST_CONTROL_SOCKET when set and not empty; else the controlSocket of the default
 * configuration file when that file exists and is readable (loaded as with -c); else
 * /run/fcgihost/control.sock (the default of [server] controlSocket). -s and -c together are a
 * usage error. The client sends one request line (ctl/proto.h), waits for the whole response
 * (10 s; 60 s for reload, which may have to stop processes), and prints it: on success the body to
 * stdout (or, when there is no body, the server's one-line message); on failure
 * "fcgihost ctl: <message>" and the body (the reasons, e.g. configuration errors as file:line) to
 * stderr. A usage error is one line saying what is wrong and "Try 'fcgihost ctl --help'".
 *
 * Exit status, for scripts:
 *   0  success (and --help)
 *   1  the server refused the command or failed to carry it out (response code 1 or 2):
 *      unknown app or key, bad value, a reload with configuration errors, an internal error;
 *      or the configuration file the socket was to come from has errors (nothing was sent)
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

/* The `ctl` subcommand. argv[0] is "ctl" (main passes argc - 1, argv + 1); `default_conf` is the
 * configuration file the server reads without -c (/etc/fcgihost/fcgihost.conf). Returns the exit
 * status above. Writes to stdout and stderr. */
int ctl_client_main(int argc, char **argv, const char *default_conf);

/* The same, writing to `out` and `err` (for tests, which also name their own default file). */
int ctl_client_run(int argc, char **argv, const char *default_conf, FILE *out, FILE *err);

#endif
