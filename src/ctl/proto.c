/* The control protocol's codecs (see proto.h). */
#include "ctl/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ctl_strerror(int err) {
    switch (err) {
    case CTL_AGAIN: return "incomplete line";
    case CTL_ETOOLONG: return "line too long";
    case CTL_ENUL: return "NUL byte in line";
    case CTL_EEMPTY: return "empty command";
    case CTL_ETOOMANY: return "too many words";
    case CTL_EBADCHAR: return "TAB, CR or LF inside a word";
    case CTL_EBADHEAD: return "malformed response line";
    default: return "unknown error";
    }
}

/* ---- Requests ---- */

int ctl_request_encode(buf_t *out, int argc, const char *const *argv) {
    if (argc < 1 || argv[0][0] == '\0') return CTL_EEMPTY;
    if (argc > CTL_ARGC_MAX) return CTL_ETOOMANY;
    size_t total = 0;
    for (int i = 0; i < argc; i++) {
        if (strpbrk(argv[i], "\t\r\n")) return CTL_EBADCHAR;
        total += strlen(argv[i]) + 1; /* the TAB after it, or the final LF */
    }
    if (total > CTL_LINE_MAX) return CTL_ETOOLONG;
    for (int i = 0; i < argc; i++) {
        buf_append_str(out, argv[i]);
        buf_append(out, i + 1 < argc ? "\t" : "\n", 1);
    }
    return 0;
}

void ctl_req_parser_init(ctl_req_parser_t *p) {
    p->argc = 0;
    p->argv[0] = NULL;
    p->len = 0;
    p->err = 0;
    p->done = false;
}

/* Split the complete line (LF excluded, NUL-terminated in place) into words. */
static int split_words(ctl_req_parser_t *p) {
    char *s = p->line;
    size_t len = p->len;
    if (len && s[len - 1] == '\r') len--;
    s[len] = '\0';
    if (len == 0 || s[0] == '\t') return CTL_EEMPTY;
    p->argc = 0;
    for (;;) {
        if (p->argc == CTL_ARGC_MAX) return CTL_ETOOMANY;
        p->argv[p->argc++] = s;
        char *tab = strchr(s, '\t');
        if (!tab) break;
        *tab = '\0';
        s = tab + 1;
    }
    p->argv[p->argc] = NULL;
    return 0;
}

int ctl_req_parse(ctl_req_parser_t *p, const char *data, size_t n) {
    if (p->err) return p->err;
    if (p->done) ctl_req_parser_init(p);
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            int rc = split_words(p);
            if (rc < 0) return p->err = rc;
            p->done = true;
            return (int)(i + 1);
        }
        if (c == '\0') return p->err = CTL_ENUL;
        /* The line with its LF must fit CTL_LINE_MAX: keep one byte for the LF (and the NUL
         * that split_words writes in its place). */
        if (p->len == CTL_LINE_MAX - 1) return p->err = CTL_ETOOLONG;
        p->line[p->len++] = c;
    }
    return CTL_AGAIN;
}

/* ---- Commands ---- */

static const struct {
    const char *name;
    ctl_cmd_kind_t kind;
    int min_args, max_args; /* words after the command */
    const char *usage;
} commands[] = {
    {"status", CTL_CMD_STATUS, 0, 2, "status [APP [text|json|prometheus]]"},
    {"recycle", CTL_CMD_RECYCLE, 1, 1, "recycle APP"},
    {"set", CTL_CMD_SET, 3, 3, "set APP KEY VALUE"},
    {"reload", CTL_CMD_RELOAD, 0, 0, "reload"},
    {"stop", CTL_CMD_STOP, 0, 0, "stop"},
};

int ctl_cmd_parse(int argc, char *const *argv, ctl_cmd_t *cmd, char *err, size_t errlen) {
    memset(cmd, 0, sizeof(*cmd));
    if (argc < 1) {
        snprintf(err, errlen, "empty command");
        return -1;
    }
    size_t i = 0, n = sizeof(commands) / sizeof(commands[0]);
    while (i < n && strcmp(commands[i].name, argv[0]) != 0) i++;
    if (i == n) {
        snprintf(err, errlen, "unknown command \"%.64s\" (status, recycle, set, reload, stop)",
                 argv[0]);
        return -1;
    }
    int nargs = argc - 1;
    if (nargs < commands[i].min_args || nargs > commands[i].max_args) {
        snprintf(err, errlen, "usage: %s", commands[i].usage);
        return -1;
    }
    cmd->kind = commands[i].kind;
    if (nargs >= 1) {
        if (argv[1][0] != '\0') {
            cmd->app = argv[1];
        } else if (cmd->kind != CTL_CMD_STATUS) { /* only status takes "" for every pool */
            snprintf(err, errlen, "usage: %s (APP is empty)", commands[i].usage);
            return -1;
        }
    }
    if (cmd->kind == CTL_CMD_SET) {
        cmd->key = argv[2];
        cmd->value = argv[3];
    }
    if (cmd->kind == CTL_CMD_STATUS && nargs == 2) {
        const char *f = argv[2];
        if (strcmp(f, "text") == 0 || f[0] == '\0') cmd->format = CTL_FORMAT_TEXT;
        else if (strcmp(f, "json") == 0) cmd->format = CTL_FORMAT_JSON;
        else if (strcmp(f, "prometheus") == 0) cmd->format = CTL_FORMAT_PROMETHEUS;
        else {
            snprintf(err, errlen, "unknown status format \"%.32s\" (text, json, prometheus)", f);
            return -1;
        }
    }
    return 0;
}

/* ---- Responses ---- */

void ctl_response_head(buf_t *out, int code, const char *fmt, ...) {
    char msg[CTL_LINE_MAX - 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) msg[0] = '\0';
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    if (code < 0 || code > 999) code = CTL_CODE_INTERNAL;
    buf_printf(out, "%d %s\n", code, msg);
}

int ctl_response_parse_head(const char *data, size_t n, int *code, str_t *msg) {
    const char *lf = memchr(data, '\n', n < CTL_LINE_MAX ? n : CTL_LINE_MAX);
    size_t i = 0;
    int c = 0;
    /* Reject a bad start at once, without waiting for the LF. */
    while (i < n && i < 3 && data[i] >= '0' && data[i] <= '9') c = c * 10 + (data[i++] - '0');
    if (i < n && (i == 0 || (data[i] != ' ' && data[i] != '\n' && data[i] != '\r')))
        return CTL_EBADHEAD;
    if (!lf) return n >= CTL_LINE_MAX ? CTL_ETOOLONG : CTL_AGAIN;
    size_t end = (size_t)(lf - data);
    if (end > i && data[end - 1] == '\r') end--;
    if (i < end && data[i] != ' ') return CTL_EBADHEAD; /* "0\r" followed by more than LF */
    size_t start = i < end ? i + 1 : end;
    if (memchr(data + start, '\0', end - start)) return CTL_EBADHEAD;
    *code = c;
    *msg = str_make(data + start, end - start);
    return (int)(lf - data + 1);
}
