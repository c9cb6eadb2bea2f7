/* sd_notify(3) wrappers; see sdnotify.h. */
#include "util/sdnotify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* sd_notify() checks NOTIFY_SOCKET itself; checking first only spares fh_notify_status() the
 * formatting when nobody listens. */
static int notify_wanted(void) {
    const char *e = getenv("NOTIFY_SOCKET");
    return e != NULL && *e != '\0';
}

int fh_notify_ready(void) {
    return sd_notify(0, "READY=1");
}

int fh_notify_reloading(void) {
    if (!notify_wanted()) return 0;
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return sd_notify(0, "RELOADING=1");
    uint64_t usec = (uint64_t)ts.tv_sec * UINT64_C(1000000) + (uint64_t)ts.tv_nsec / 1000u;
    return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
}

int fh_notify_stopping(void) {
    return sd_notify(0, "STOPPING=1");
}

int fh_notify_status(const char *fmt, ...) {
    if (!notify_wanted()) return 0;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0) return 0;
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    return sd_notifyf(0, "STATUS=%s", text);
}
