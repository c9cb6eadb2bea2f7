/* The control socket (SPEC §1, [server] controlSocket): a unix stream socket, mode 0600, on which
 * `fcgihost ctl` sends one request line and reads one response (ctl/proto.h); the server closes
 * the connection after the response. Commands run on the loop through the callback.
 *
 * SPEC §8: whatever the file's mode, each client's credentials (SO_PEERCRED) are checked: only
 * root and the server's own effective uid are served. Anyone else gets CTL_CODE_REFUSED
 * "permission denied: uid N may not control this server (...)" as the answer to its request, and
 * a warning is logged; the callback never runs for it. */
#ifndef FCGIHOST_CTL_LISTENER_H
#define FCGIHOST_CTL_LISTENER_H
#include <uv.h>

#include "ctl/proto.h"
#include "util/buf.h"

typedef struct ctl_listener ctl_listener_t;

/* Run `cmd` and append the whole response (head line and body) to `out`. */
typedef void (*ctl_command_cb)(void *arg, const ctl_cmd_t *cmd, buf_t *out);

/* Create the socket at `path` (its directory is created, 0755, when missing). A stale socket
 * file (nothing accepts on it) is replaced; a live one is an error (another server uses it).
 * Returns NULL with *err set (a negative UV_E* code, or UV_EADDRINUSE for a live socket). */
ctl_listener_t *ctl_listener_open(uv_loop_t *loop, const char *path, ctl_command_cb cb, void *arg,
                                  int *err);
const char *ctl_listener_path(const ctl_listener_t *l);
/* Stop accepting and remove the socket file. Connections being answered finish on their own; the
 * callback is not called again. Frees `l` once its handles are closed. */
void ctl_listener_close(ctl_listener_t *l);

#endif
