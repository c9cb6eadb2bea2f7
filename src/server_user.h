/* Who the server and its FastCGI processes run as (SPEC §2: [server] user, [fastcgi:NAME] user;
 * SPEC §8).
 *
 * The rules, checked at start, at every reload and by `fcgihost -t`:
 *
 * - Started as root, [server] user = U (www-data when the key is absent): after binding every
 *   listener (and the control socket) and opening the log files, the server becomes U for good
 *   (setgroups, setgid, setuid; it checks that setuid(0) then fails). Only `user = root` (or 0),
 *   written out, keeps root. A missing default user is an error that names the default.
 * - Privilege separation: when, at that start, some application has a `user` other than U, the
 *   server first starts the privileged spawn helper (pool/privsep.h), which stays root, never
 *   reads network input, and starts the processes of those applications (as root too, for
 *   `user = root`, which is said once). Applications without a user, or with U, are spawned
 *   directly by the server and run as U.
 * - Started as root with user = root: the server stays root and starts each application as its
 *   own `user` itself; an application without one runs as root, which is logged as a warning once
 *   per application (at start, or at the reload that adds it or removes its user).
 * - Not started as root with [server] user set: nothing to drop. A warning when U is not the user
 *   the server runs as; the server goes on (as nginx and php-fpm do: it is already unprivileged).
 * - A server that is not root and has no helper (never root, or no application needed another
 *   user at start) cannot start processes as another user: an application whose `user` is not the
 *   server's own user is REFUSED (start fails, a reload is rejected and the running configuration
 *   kept), with a file:line message naming the application. Running it as the server's user
 *   instead would silently put it in the identity that was meant to be kept apart from it.
 * - Unknown users are configuration errors at their line (the config loader resolves them).
 *
 * Files, when the server drops to U:
 * - runtimeDir is created if missing (parents 0755) and made U's, U's primary group, mode 0750
 *   (one that already belongs to U keeps its mode): the server, as U, creates and removes the
 *   processes' sockets and its spooled request bodies there. Nobody else needs to enter it: an
 *   application gets its listening socket as fd 0, already open (from the helper too), and
 *   `fcgihost ctl` is for root. A world-writable runtimeDir (such as /tmp) or one of another user
 *   is refused. Without a drop the pool makes a missing runtimeDir 0755, owned by whoever runs
 *   the server.
 * - Sockets left in runtimeDir by an fcgihost that was killed (nothing listens on them) are
 *   removed at start, whoever the server runs as.
 * - Each process socket is created by the server, so it belongs to the server's user, mode 0600:
 *   only the server connects to it (applications of other users cannot reach each other's).
 * - The error log and access log files are opened as root, then handed to U (owner only, through
 *   the open descriptor) so that SIGUSR1 and a reload can reopen them after the drop; their
 *   directory must let U in (search permission), and creating new log files in a directory only
 *   root may write fails after the drop (rotate with logrotate's `create` or `copytruncate`).
 * - The control socket: bound before the drop, mode 0600, owner root; the server keeps accepting
 *   on the open socket and, as its directory (runtimeDir by default) is U's, removes it at stop.
 *   Each client's credentials are checked too (ctl/listener.h): root and U only.
 *
 * After the drop a reload cannot bind a port below 1024 or change the user: the listener is
 * logged as an error (the others are kept) and the user change as a warning (it needs a restart).
 */
#ifndef FCGIHOST_SERVER_USER_H
#define FCGIHOST_SERVER_USER_H
#include <stdbool.h>
#include <sys/types.h>

#include <uv.h>

#include "config/config.h"

/* The [server] user in effect: the configured one (CFG_SERVER_USER_DEFAULT unless set). */
const char *server_user_name(const cfg_t *cfg);

/* Receives one "file:line: message" problem of server_user_check(). */
typedef void (*server_user_report_fn)(const char *msg, void *arg);

/* The configuration problems of cfg's users for a server that ends up running as `runs_as` (its
 * uid after any drop): every application whose `user` cannot be honoured by such a server.
 * `how` says why the server is that user, for the messages ("it drops to www-data",
 * "it runs as uid 1000, not root"). Returns the number of problems (each given to report). */
int server_user_check(const cfg_t *cfg, uid_t runs_as, const char *how, server_user_report_fn report,
                      void *arg);

/* For `fcgihost -t`: check cfg as if started as root (the production case). Problems are printed
 * on stderr; returns the number of problems. */
int server_user_check_as_root(const cfg_t *cfg);

/* At start, after every listener, the control socket and the log files are open: apply the rules
 * above (stale sockets, checks, the privileged helper, runtimeDir, log files, the drop, the "runs
 * as root" warnings). `loop`, `exe` (the fcgihost binary) and `conf_path` are for the helper.
 * Logs what it does. Returns 0, or -1 (logged) when the server must not start: an application
 * refused, the helper or runtimeDir unusable, or the drop failed (the server never goes on as root
 * when it was told to drop). */
int server_user_start(const cfg_t *cfg, uv_loop_t *loop, const char *exe, const char *conf_path);

/* Remove the process sockets (<app>-<pid>-<seq>.sock) in `dir` that nothing listens on: leftovers
 * of an fcgihost that was killed. Logs how many. */
void server_user_remove_stale_sockets(const char *dir);

/* At reload, before the new generation is used: the same checks against the identity the server
 * has now, warnings for a changed [server] user and for new applications that run as root.
 * Returns 0, or -1 (logged) to reject the new configuration. */
int server_user_reload(const cfg_t *cfg, const cfg_t *old);

/* A hint to append to "cannot listen on X: <error>" (or ""): a port below 1024 after the drop. */
const char *server_user_listen_hint(const cfg_listen_t *cl, int uv_err);

#endif
