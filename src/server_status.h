/* What the server tells about itself: the status snapshot (ctl/status.h) filled from the pools and
 * the server's counters, rendered for `fcgihost ctl status`, the status page (statusPath) and
 * Prometheus; the commands of the control socket; the counters kept per response. */
#ifndef FCGIHOST_SERVER_STATUS_H
#define FCGIHOST_SERVER_STATUS_H
#include <stdbool.h>

#include "ctl/proto.h"
#include "server.h"
#include "util/buf.h"

typedef struct request request_t;

/* Count one response (status code, duration in seconds) for the server and, when `app` names a
 * live pool, for that application. */
void server_note_response(server_t *s, const char *app, int status, double secs);

/* Render the status in `fmt`, for every pool or only `app`. Returns false (nothing appended) when
 * `app` is not a live pool. */
bool server_render_status(server_t *s, ctl_format_t fmt, const char *app, buf_t *out);

/* The status page: answers and returns true when the request is for statusPath (JSON, or
 * ?format=prometheus; 403 unless the client is in statusAllow; clients on unix-socket listeners
 * are local and allowed). */
bool server_status_page(request_t *r);

/* Run a control-socket command; appends the whole response (ctl/proto.h) to out. */
void server_ctl_command(server_t *s, const ctl_cmd_t *cmd, buf_t *out);

#endif
