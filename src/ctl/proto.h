/* The control protocol spoken over controlSocket by `fcgihost ctl` and the server. PURE.
 *
 * Request: ONE line, the command's words separated by TAB and ended by LF, at most CTL_LINE_MAX
 * bytes with the LF. Words may be empty (`set php arguments ""` is "set\tphp\targuments\t\n")
 * but cannot contain TAB, CR, LF or NUL; a CR right before the LF is dropped (typed by hand
 * through `socat - UNIX-CONNECT:...` with crlf). The commands (ctl_cmd_parse checks them):
 *
 *   status [APP [FORMAT]]    APP empty or absent = every pool; FORMAT text (default) | json |
 *                            prometheus. "status\t\tjson" = every pool as JSON.
 *   recycle APP
 *   set APP KEY VALUE
 *   reload
 *   stop
 *
 * Response: a first line "<code> <one-line message>\n", then an optional body (the status
 * output, or the configuration errors of a failed reload, one per line); the server closes the
 * connection at its end, which is how the client knows the body is complete. Codes:
 *   0  ok
 *   1  the server refused the request: unknown command, unknown app, unknown key, bad value,
 *      reload failed with configuration errors (in the body)
 *   2  internal error
 *
 * Parsers follow the tree's convention: bytes consumed (> 0), CTL_AGAIN (need more input), or a
 * negative CTL_E* error.
 */
#ifndef FCGIHOST_CTL_PROTO_H
#define FCGIHOST_CTL_PROTO_H
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/str.h"

#define CTL_LINE_MAX 4096 /* a request or response first line, LF included */
#define CTL_ARGC_MAX 16   /* words in a request */

#define CTL_AGAIN (-1)    /* no LF yet: feed more bytes */
#define CTL_ETOOLONG (-2) /* no LF within CTL_LINE_MAX bytes */
#define CTL_ENUL (-3)     /* a NUL byte in the line */
#define CTL_EEMPTY (-4)   /* an empty line, or an empty command word */
#define CTL_ETOOMANY (-5) /* more than CTL_ARGC_MAX words */
#define CTL_EBADCHAR (-6) /* encoder: a word holds TAB, CR or LF */
#define CTL_EBADHEAD (-7) /* response: the first line is not "<code> <message>" */

/* A static description of a CTL_E* code ("line too long", ...). */
const char *ctl_strerror(int err);

/* Response codes. */
#define CTL_CODE_OK 0
#define CTL_CODE_REFUSED 1
#define CTL_CODE_INTERNAL 2

/* ---- Requests ---- */

/* Append the request line for argv[0..argc) (argv[0] = the command) to out. Returns 0, or
 * CTL_EEMPTY (argc < 1 or an empty command), CTL_ETOOMANY, CTL_EBADCHAR, CTL_ETOOLONG; on error
 * out is unchanged. */
int ctl_request_encode(buf_t *out, int argc, const char *const *argv);

/* An incremental request-line parser. Embed it and ctl_req_parser_init() it. */
typedef struct ctl_req_parser {
    int argc;                      /* valid after a complete line */
    char *argv[CTL_ARGC_MAX + 1];  /* point into line; argv[argc] = NULL */
    /* private: */
    char line[CTL_LINE_MAX];
    size_t len;
    int err;  /* sticky error */
    bool done;
} ctl_req_parser_t;

void ctl_req_parser_init(ctl_req_parser_t *p);

/* Feed bytes. Returns:
 *   > 0        the line is complete: that many bytes of `data` were consumed (the LF included);
 *              argc/argv hold the words, valid until the next call or init
 *   CTL_AGAIN  every byte was consumed, no LF yet
 *   < 0        CTL_ETOOLONG, CTL_ENUL, CTL_EEMPTY, CTL_ETOOMANY; sticky (every later call returns
 *              it until ctl_req_parser_init)
 * A call after a complete line starts a new one. The result does not depend on how the input is
 * split across calls. */
int ctl_req_parse(ctl_req_parser_t *p, const char *data, size_t n);

/* ---- Commands ---- */

typedef enum ctl_cmd_kind {
    CTL_CMD_STATUS,
    CTL_CMD_RECYCLE,
    CTL_CMD_SET,
    CTL_CMD_RELOAD,
    CTL_CMD_STOP,
} ctl_cmd_kind_t;

typedef enum ctl_format {
    CTL_FORMAT_TEXT,
    CTL_FORMAT_JSON,
    CTL_FORMAT_PROMETHEUS,
} ctl_format_t;

typedef struct ctl_cmd {
    ctl_cmd_kind_t kind;
    const char *app;    /* borrowed from argv: status (NULL = all), recycle, set */
    const char *key;    /* set */
    const char *value;  /* set (may be "") */
    ctl_format_t format; /* status */
} ctl_cmd_t;

/* Check a parsed request: the command name and its argument count (not whether APP or KEY exist:
 * the server knows). Returns 0, or -1 with a one-line reason in err (answer code 1 with it). */
int ctl_cmd_parse(int argc, char *const *argv, ctl_cmd_t *cmd, char *err, size_t errlen);

/* ---- Responses ---- */

/* Append "<code> <message>\n" to out, the message printf-formatted; CR, LF, TAB and other control
 * bytes in it become spaces so that it stays one line, and it is cut to fit CTL_LINE_MAX. */
void ctl_response_head(buf_t *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse a response's first line from data[0..n). Returns the bytes of the line (LF included) with
 * *code (0..999) and *msg (borrowed from data, without the CR/LF; may be empty) set, CTL_AGAIN
 * (no LF yet), CTL_ETOOLONG or CTL_EBADHEAD. Accepted: 1 to 3 digits, then LF or a space and the
 * message. */
int ctl_response_parse_head(const char *data, size_t n, int *code, str_t *msg);

#endif
