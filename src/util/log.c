#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static char *log_path; /* NULL when the target is stderr or off */
static bool log_off;
static log_level_t log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* sd-daemon(3)'s SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG, by log_level_t. */
static const char *const journal_prefixes[] = {"<3>", "<4>", "<6>", "<7>"};

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

/* A decimal number of at most 20 digits ending at *p == end (':' or '\0'). */
static bool parse_u64(const char **p, char end, unsigned long long *out) {
    const char *s = *p;
    unsigned long long v = 0;
    size_t n = 0;
    for (; *s >= '0' && *s <= '9' && n < 20; s++, n++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (ULLONG_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (n == 0 || *s != end) return false;
    *out = v;
    *p = s + 1;
    return true;
}

bool log_journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino) {
    unsigned long long d, i;
    if (env == NULL || !parse_u64(&env, ':', &d) || !parse_u64(&env, '\0', &i)) return false;
    return d == dev && i == ino;
}

static bool stderr_journal;
static pthread_once_t stderr_checked = PTHREAD_ONCE_INIT;

/* systemd connects a service's stderr to the journal and says so in JOURNAL_STREAM (the device
 * and inode of that stream); a stderr that is something else now (a redirection in a script, a
 * terminal) does not match it. Checked once: fd 2 is never replaced. */
static void check_stderr(void) {
    struct stat st;
    stderr_journal = fstat(STDERR_FILENO, &st) == 0 &&
                     log_journal_stream_matches(getenv("JOURNAL_STREAM"),
                                                (unsigned long long)st.st_dev,
                                                (unsigned long long)st.st_ino);
}

bool log_to_journal(void) {
    if (log_fd != STDERR_FILENO || log_off) return false;
    pthread_once(&stderr_checked, check_stderr);
    return stderr_journal;
}

static size_t format_prefix(char *out, size_t cap, log_level_t l) {
    size_t j = 0;
    if (log_to_journal()) {
        memcpy(out, journal_prefixes[l], 3);
        j = 3;
    }
    out += j;
    cap -= j;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + n, cap - n, ".%03ldZ [%s] ", ts.tv_nsec / 1000000, level_names[l]);
    return j + n + (m > 0 ? (size_t)m : 0);
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

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0: overlong forms,
 * surrogates, code points past U+10FFFF and the C1 controls U+0080..U+009F (which some terminals
 * and viewers act on, U+0085 as a line break) do not count as valid. */
static size_t utf8_ok(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (len == 0 || c > 0xf4 || len > n) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0) return 0;
    return len;
}

size_t log_escape(char *out, size_t cap, const char *in, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t u = p[i] >= 0x80 ? utf8_ok(p + i, len - i) : 0;
        if (u) {
            if (o + u > cap) break;
            memcpy(out + o, p + i, u);
            o += u;
            i += u;
        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            if (o + 4 > cap) break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
            i++;
        } else {
            if (o + 1 > cap) break;
            out[o++] = (char)p[i++];
        }
    }
    return o;
}

/* The whole message is escaped (log_escape): a URL, a header or an application's output that
 * reaches a log line cannot start a line of its own or send control sequences to a terminal
 * (SPEC §8). The server's own messages are plain text, which passes unchanged. */
void log_msg(log_level_t l, const char *fmt, ...) {
    if (!log_enabled(l)) return;
    char text[4096], line[4096 + 64];
    size_t n = format_prefix(line, 64, l);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    size_t tn = (size_t)m < sizeof(text) ? (size_t)m : sizeof(text) - 1;
    n += log_escape(line + n, sizeof(line) - n - 1, text, tn);
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
