#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static char *log_path; /* NULL when the target is stderr or off */
static bool log_off;
static log_level_t log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    if (strcmp(s, "warning") == 0) return LOG_LEVEL_WARN;
    return -1;
}

const char *log_level_name(log_level_t l) {
    return level_names[l];
}

void log_set_level(log_level_t l) {
    log_level = l;
}

bool log_enabled(log_level_t l) {
    return !log_off && l <= log_level;
}

static int open_target(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int log_open(const char *target) {
    if (strcmp(target, "off") == 0) {
        log_close();
        log_off = true;
        return 0;
    }
    if (strcmp(target, "-") == 0) {
        log_close();
        return 0;
    }
    int fd = open_target(target);
    if (fd < 0) return fd;
    log_close();
    log_fd = fd;
    log_path = strdup(target);
    return 0;
}

int log_reopen(void) {
    if (log_path == NULL) return 0;
    int fd = open_target(log_path);
    if (fd < 0) return fd;
    dup2(fd, log_fd);
    close(fd);
    return 0;
}

void log_close(void) {
    if (log_fd > 2) close(log_fd);
    log_fd = 2;
    free(log_path);
    log_path = NULL;
    log_off = false;
}

static size_t format_prefix(char *out, size_t cap, log_level_t l) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + n, cap - n, ".%03ldZ [%s] ", ts.tv_nsec / 1000000, level_names[l]);
    return n + (m > 0 ? (size_t)m : 0);
}

static void write_all(const char *p, size_t n) {
    while (n) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

void log_msg(log_level_t l, const char *fmt, ...) {
    if (!log_enabled(l)) return;
    char line[4096];
    size_t n = format_prefix(line, sizeof(line), l);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2) n = sizeof(line) - 2;
    line[n++] = '\n';
    write_all(line, n);
}

void log_lines(log_level_t l, const char *tag, const char *text, unsigned long len) {
    if (!log_enabled(l)) return;
    while (len) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        size_t shown = n;
        if (shown && text[shown - 1] == '\r') shown--;
        if (shown) log_msg(l, "%s%.*s", tag, (int)(shown > 3000 ? 3000 : shown), text);
        text += nl ? n + 1 : n;
        len -= nl ? n + 1 : n;
    }
}
