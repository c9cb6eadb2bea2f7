/* systemd readiness notification (sd_notify(3)) for `Type=notify` units (contrib/fcgihost.service).
 *
 * Thin wrappers over libsystemd's sd_notify(). Each one is a no-op returning 0 when the server
 * was not started by systemd (NOTIFY_SOCKET unset), so callers need no "are we under systemd"
 * test. They return what sd_notify() returns: > 0 sent, 0 nobody listening, < 0 a negative errno
 * (worth a log line at most: a failed notification never stops the server).
 *
 * Only the main process may notify (the unit says NotifyAccess=main): FastCGI processes inherit
 * NOTIFY_SOCKET through the server's environment, and systemd ignores what they send.
 */
#ifndef FCGIHOST_UTIL_SDNOTIFY_H
#define FCGIHOST_UTIL_SDNOTIFY_H

/* READY=1: start-up is complete (listeners bound, privileges dropped), or a reload has ended,
 * whether it succeeded or kept the running configuration. */
int fh_notify_ready(void);

/* RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now>: a reload has begun. systemd 253+ needs the
 * timestamp for Type=notify-reload; older versions ignore it. Follow with fh_notify_ready(). */
int fh_notify_reloading(void);

/* STOPPING=1: a graceful stop has begun (SIGTERM, SIGINT, `ctl stop`). */
int fh_notify_stopping(void);

/* STATUS=<text>: one line for `systemctl status`. The text is cut at 255 bytes and control
 * characters (a newline would start another assignment) become spaces. */
int fh_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
