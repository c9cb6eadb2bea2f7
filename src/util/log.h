/* The error log: one line per event, "TIME [level] message". Writes are synchronous and whole-line
 * (one write(2) per line) so lines from the server never interleave.
 *
 * When the target is stderr and stderr is the systemd journal (JOURNAL_STREAM, set by systemd,
 * names the device and inode of fd 2), each line starts with the syslog priority as
 * sd-daemon(3) describes: "<3>" error, "<4>" warn, "<6>" info, "<7>" debug; journald strips it
 * and files the line at that priority (journalctl -p err). A file, a terminal or a pipe of one's
 * own gets the plain format.
 *
 * Every message is escaped before it is written (SPEC §8: bytes from clients and applications
 * cannot forge lines): control bytes (below 0x20, and 0x7f), bytes that are not part of valid
 * UTF-8, and the C1 controls U+0080..U+009F are written as \xHH (upper-case hex). Valid UTF-8
 * text, backslashes included, is written as is. Callers may therefore pass a URL, a header or an
 * application's output straight to %s. */
#ifndef FCGIHOST_UTIL_LOG_H
#define FCGIHOST_UTIL_LOG_H
#include <stdbool.h>
#include <stddef.h>

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
} log_level_t;

/* Parse "error" / "warn" / "info" / "debug"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(log_level_t l);

void log_set_level(log_level_t l);
bool log_enabled(log_level_t l);

/* Target: a path, "-" for stderr, or "off". Returns 0 or a negative errno. The previous target is
 * closed only when the new one opened. */
int log_open(const char *target);
/* Reopen the current file target (SIGUSR1, after logrotate moved it). */
int log_reopen(void);
void log_close(void);

/* True when lines go to stderr and stderr is the journal (they carry "<N>" priorities). */
bool log_to_journal(void);
/* Whether JOURNAL_STREAM's value `env` ("DEV:INO", decimal) names the stream dev:ino. NULL, empty
 * or malformed values name none. */
bool log_journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino);

void log_msg(log_level_t l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Escape `len` bytes of `in` into `out` (at most `cap` bytes; an escape is never cut) as log_msg
 * does. Returns the bytes written; stops early when out is full. */
size_t log_escape(char *out, size_t cap, const char *in, size_t len);

/* Write a block of text as lines prefixed with `tag` (used for captured app output): split at
 * each LF, a CR before it dropped, every other byte escaped as above. */
void log_lines(log_level_t l, const char *tag, const char *text, unsigned long len);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { \
        if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
