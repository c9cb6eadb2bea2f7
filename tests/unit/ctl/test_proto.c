/* Unit tests for src/ctl/proto.c: the request line (encoder and incremental parser, every input fed
 * whole, split at each point and byte by byte), the command check and the response first line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/proto.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAXW 20
#define ALL 0x7fffffff /* expected return: the whole input is the line */

/* ---- Request parser ---- */

typedef struct rcase {
    int line;
    const char *in;
    size_t len;
    int ret; /* bytes consumed, ALL, or a CTL_E* / CTL_AGAIN */
    const char *words[MAXW];
    int argc;
} rcase_t;

#define R(s, r, ...) \
    {.line = __LINE__, .in = (s), .len = sizeof(s) - 1, \
     .ret = (r) == ALL ? (int)sizeof(s) - 1 : (r), .words = {__VA_ARGS__}}

static const rcase_t rcases[] = {
    R("status\n", ALL, "status"),
    R("status\tphp\tjson\n", ALL, "status", "php", "json"),
    R("status\t\tjson\n", ALL, "status", "", "json"),
    R("set\tphp\tmaxInstances\t2\n", ALL, "set", "php", "maxInstances", "2"),
    R("set\tphp\targuments\t\n", ALL, "set", "php", "arguments", ""),
    R("recycle\tphp\n", ALL, "recycle", "php"),
    R("reload\r\n", ALL, "reload"),          /* a CR before the LF is dropped */
    R("stop\nstatus\n", 5, "stop"),        /* one line at a time */
    R("set\tphp\tk\tv\rw\n", ALL, "set", "php", "k", "v\rw"),
    R("set\tphp\tk\tcaf\xc3\xa9 \xff\n", ALL, "set", "php", "k", "caf\xc3\xa9 \xff"),
    R("a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to\tp\n", ALL, "a", "b", "c", "d", "e", "f", "g",
      "h", "i", "j", "k", "l", "m", "n", "o", "p"),
    R("a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to\tp\tq\n", CTL_ETOOMANY),
    R("status", CTL_AGAIN),
    R("", CTL_AGAIN),
    R("\n", CTL_EEMPTY),
    R("\r\n", CTL_EEMPTY),
    R("\tphp\n", CTL_EEMPTY),
    R("sta\0tus\n", CTL_ENUL),
    R("\0", CTL_ENUL),
    R("status\0", CTL_ENUL),
};

static void check_result(const rcase_t *c, const ctl_req_parser_t *p, int ret, const char *how) {
    if (ret != c->ret) fail_msg("line %d (%s): got %d want %d", c->line, how, ret, c->ret);
    if (ret <= 0) return;
    int argc = 0;
    while (argc < MAXW && c->words[argc]) argc++;
    if (p->argc != argc) fail_msg("line %d (%s): argc %d want %d", c->line, how, p->argc, argc);
    for (int i = 0; i < argc; i++)
        if (strcmp(p->argv[i], c->words[i]) != 0)
            fail_msg("line %d (%s): argv[%d] '%s' want '%s'", c->line, how, i, p->argv[i], c->words[i]);
    if (p->argv[argc] != NULL) fail_msg("line %d: argv not NULL-terminated", c->line);
}

/* Feed a[0..split) then the rest; returns the result in terms of the whole input. */
static int feed_split(ctl_req_parser_t *p, const char *in, size_t len, size_t split) {
    ctl_req_parser_init(p);
    int r = ctl_req_parse(p, in, split);
    if (r != CTL_AGAIN) return r;
    r = ctl_req_parse(p, in + split, len - split);
    return r > 0 ? r + (int)split : r;
}

static void test_request_parse(void **state) {
    ctl_req_parser_t p;
    for (size_t i = 0; i < N(rcases); i++) {
        const rcase_t *c = &rcases[i];
        /* In one piece, from a buffer of exactly its size. */
        char *copy = malloc(c->len ? c->len : 1);
        memcpy(copy, c->in, c->len);
        ctl_req_parser_init(&p);
        check_result(c, &p, ctl_req_parse(&p, copy, c->len), "whole");
        /* Split at each point. */
        for (size_t s = 0; s <= c->len; s++) {
            char how[32];
            snprintf(how, sizeof(how), "split at %zu", s);
            check_result(c, &p, feed_split(&p, copy, c->len, s), how);
        }
        /* Byte by byte: AGAIN until the end of the line or the error. */
        ctl_req_parser_init(&p);
        int r = CTL_AGAIN;
        size_t k = 0;
        for (; k < c->len && r == CTL_AGAIN; k++) r = ctl_req_parse(&p, copy + k, 1);
        if (r == 1) r = (int)k;
        check_result(c, &p, r, "byte by byte");
        free(copy);
    }
}

static void test_request_too_long(void **state) {
    ctl_req_parser_t p;
    char *line = malloc(CTL_LINE_MAX + 100);
    /* CTL_LINE_MAX with the LF: accepted. */
    memset(line, 'a', CTL_LINE_MAX + 100);
    line[CTL_LINE_MAX - 1] = '\n';
    ctl_req_parser_init(&p);
    assert_int_equal(ctl_req_parse(&p, line, CTL_LINE_MAX), CTL_LINE_MAX);
    assert_int_equal(p.argc, 1);
    assert_int_equal(strlen(p.argv[0]), CTL_LINE_MAX - 1);
    /* One more byte: too long, in one piece and byte by byte. */
    line[CTL_LINE_MAX - 1] = 'a';
    line[CTL_LINE_MAX] = '\n';
    ctl_req_parser_init(&p);
    assert_int_equal(ctl_req_parse(&p, line, CTL_LINE_MAX + 1), CTL_ETOOLONG);
    ctl_req_parser_init(&p);
    int r = CTL_AGAIN;
    size_t k = 0;
    for (; r == CTL_AGAIN; k++) r = ctl_req_parse(&p, line + k, 1);
    assert_int_equal(r, CTL_ETOOLONG);
    assert_int_equal(k, CTL_LINE_MAX); /* known at the byte that leaves no room for the LF */
    /* Without any LF: known without waiting for one. */
    memset(line, 'a', CTL_LINE_MAX + 100);
    ctl_req_parser_init(&p);
    assert_int_equal(ctl_req_parse(&p, line, CTL_LINE_MAX + 100), CTL_ETOOLONG);
    /* Sticky. */
    assert_int_equal(ctl_req_parse(&p, "stop\n", 5), CTL_ETOOLONG);
    ctl_req_parser_init(&p);
    assert_int_equal(ctl_req_parse(&p, "stop\n", 5), 5);
    free(line);
}

static void test_request_sequence(void **state) {
    ctl_req_parser_t p;
    const char *in = "stop\nreload\n";
    ctl_req_parser_init(&p);
    assert_int_equal(ctl_req_parse(&p, in, strlen(in)), 5);
    assert_string_equal(p.argv[0], "stop");
    /* The next call starts a new line. */
    assert_int_equal(ctl_req_parse(&p, in + 5, strlen(in) - 5), 7);
    assert_int_equal(p.argc, 1);
    assert_string_equal(p.argv[0], "reload");
    /* An error is sticky. */
    assert_int_equal(ctl_req_parse(&p, "a\0b\n", 4), CTL_ENUL);
    assert_int_equal(ctl_req_parse(&p, "stop\n", 5), CTL_ENUL);
}

/* ---- Request encoder ---- */

static void test_request_encode(void **state) {
    static const struct {
        int line;
        int argc;
        const char *argv[20];
        int ret;
        const char *want;
    } cases[] = {
        {__LINE__, 1, {"status"}, 0, "status\n"},
        {__LINE__, 3, {"status", "", "json"}, 0, "status\t\tjson\n"},
        {__LINE__, 4, {"set", "php", "arguments", ""}, 0, "set\tphp\targuments\t\n"},
        {__LINE__, 2, {"recycle", "php"}, 0, "recycle\tphp\n"},
        {__LINE__, 0, {NULL}, CTL_EEMPTY, NULL},
        {__LINE__, 1, {""}, CTL_EEMPTY, NULL},
        {__LINE__, 4, {"set", "php", "k", "a\tb"}, CTL_EBADCHAR, NULL},
        {__LINE__, 4, {"set", "php", "k", "a\nb"}, CTL_EBADCHAR, NULL},
        {__LINE__, 4, {"set", "php", "k", "a\rb"}, CTL_EBADCHAR, NULL},
        {__LINE__, 17, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
                        "p", "q"}, CTL_ETOOMANY, NULL},
    };
    for (size_t i = 0; i < N(cases); i++) {
        buf_t b;
        buf_init(&b);
        buf_append_str(&b, "x");
        int r = ctl_request_encode(&b, cases[i].argc, cases[i].argv);
        if (r != cases[i].ret) fail_msg("line %d: got %d want %d", cases[i].line, r, cases[i].ret);
        if (r == 0 && strcmp(b.data + 1, cases[i].want) != 0)
            fail_msg("line %d: got '%s'", cases[i].line, b.data + 1);
        if (r < 0 && b.len != 1) fail_msg("line %d: output changed on error", cases[i].line);
        if (r == 0) { /* round trip */
            ctl_req_parser_t p;
            ctl_req_parser_init(&p);
            assert_int_equal(ctl_req_parse(&p, b.data + 1, b.len - 1), (int)b.len - 1);
            assert_int_equal(p.argc, cases[i].argc);
            for (int k = 0; k < p.argc; k++) assert_string_equal(p.argv[k], cases[i].argv[k]);
        }
        buf_dispose(&b);
    }
    /* Length: a word of CTL_LINE_MAX - 1 bytes fits with its LF, one more does not. */
    char *w = malloc(CTL_LINE_MAX + 1);
    memset(w, 'a', CTL_LINE_MAX);
    w[CTL_LINE_MAX - 1] = '\0';
    const char *argv[1] = {w};
    buf_t b;
    buf_init(&b);
    assert_int_equal(ctl_request_encode(&b, 1, argv), 0);
    assert_int_equal(b.len, CTL_LINE_MAX);
    w[CTL_LINE_MAX - 1] = 'a';
    w[CTL_LINE_MAX] = '\0';
    b.len = 0;
    assert_int_equal(ctl_request_encode(&b, 1, argv), CTL_ETOOLONG);
    assert_int_equal(b.len, 0);
    buf_dispose(&b);
    free(w);
}

/* ---- Commands ---- */

static void test_cmd_parse(void **state) {
    static const struct {
        int line;
        const char *req; /* a request line without its LF */
        int ret;
        ctl_cmd_kind_t kind;
        const char *app, *key, *value;
        ctl_format_t format;
        const char *err; /* a part of the message */
    } cases[] = {
        {__LINE__, "status", 0, CTL_CMD_STATUS, NULL, NULL, NULL, CTL_FORMAT_TEXT, NULL},
        {__LINE__, "status\tphp", 0, CTL_CMD_STATUS, "php", NULL, NULL, CTL_FORMAT_TEXT, NULL},
        {__LINE__, "status\t\tjson", 0, CTL_CMD_STATUS, NULL, NULL, NULL, CTL_FORMAT_JSON, NULL},
        {__LINE__, "status\tphp\tjson", 0, CTL_CMD_STATUS, "php", NULL, NULL, CTL_FORMAT_JSON, NULL},
        {__LINE__, "status\t\tprometheus", 0, CTL_CMD_STATUS, NULL, NULL, NULL,
         CTL_FORMAT_PROMETHEUS, NULL},
        {__LINE__, "status\tphp\ttext", 0, CTL_CMD_STATUS, "php", NULL, NULL, CTL_FORMAT_TEXT, NULL},
        {__LINE__, "status\tphp\t", 0, CTL_CMD_STATUS, "php", NULL, NULL, CTL_FORMAT_TEXT, NULL},
        {__LINE__, "status\tphp\txml", -1, 0, NULL, NULL, NULL, 0, "unknown status format \"xml\""},
        {__LINE__, "status\ta\tjson\tc", -1, 0, NULL, NULL, NULL, 0, "usage: status"},
        {__LINE__, "recycle\tphp", 0, CTL_CMD_RECYCLE, "php", NULL, NULL, 0, NULL},
        {__LINE__, "recycle", -1, 0, NULL, NULL, NULL, 0, "usage: recycle APP"},
        {__LINE__, "recycle\t", -1, 0, NULL, NULL, NULL, 0, "APP is empty"},
        {__LINE__, "set\tphp\tmaxInstances\t2", 0, CTL_CMD_SET, "php", "maxInstances", "2", 0, NULL},
        {__LINE__, "set\tphp\targuments\t", 0, CTL_CMD_SET, "php", "arguments", "", 0, NULL},
        {__LINE__, "set\tphp\tmaxInstances", -1, 0, NULL, NULL, NULL, 0, "usage: set APP KEY VALUE"},
        {__LINE__, "reload", 0, CTL_CMD_RELOAD, NULL, NULL, NULL, 0, NULL},
        {__LINE__, "reload\tnow", -1, 0, NULL, NULL, NULL, 0, "usage: reload"},
        {__LINE__, "stop", 0, CTL_CMD_STOP, NULL, NULL, NULL, 0, NULL},
        {__LINE__, "STOP", -1, 0, NULL, NULL, NULL, 0, "unknown command \"STOP\""},
        {__LINE__, "frob\tx", -1, 0, NULL, NULL, NULL, 0, "unknown command \"frob\""},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char line[256];
        snprintf(line, sizeof(line), "%s\n", cases[i].req);
        ctl_req_parser_t p;
        ctl_req_parser_init(&p);
        assert_int_equal(ctl_req_parse(&p, line, strlen(line)), (int)strlen(line));
        ctl_cmd_t cmd;
        char err[128] = "";
        int r = ctl_cmd_parse(p.argc, p.argv, &cmd, err, sizeof(err));
        if (r != cases[i].ret) fail_msg("line %d: got %d (%s)", cases[i].line, r, err);
        if (r < 0) {
            if (!strstr(err, cases[i].err)) fail_msg("line %d: message '%s'", cases[i].line, err);
            continue;
        }
        if (cmd.kind != cases[i].kind) fail_msg("line %d: kind %d", cases[i].line, cmd.kind);
#define SAME(a, b) ((a) == NULL ? (b) == NULL : (b) != NULL && strcmp((a), (b)) == 0)
        if (!SAME(cases[i].app, cmd.app)) fail_msg("line %d: app %s", cases[i].line, cmd.app);
        if (!SAME(cases[i].key, cmd.key)) fail_msg("line %d: key %s", cases[i].line, cmd.key);
        if (!SAME(cases[i].value, cmd.value)) fail_msg("line %d: value %s", cases[i].line, cmd.value);
        if (cmd.format != cases[i].format) fail_msg("line %d: format %d", cases[i].line, cmd.format);
    }
    ctl_cmd_t cmd;
    char err[64];
    assert_int_equal(ctl_cmd_parse(0, NULL, &cmd, err, sizeof(err)), -1);
}

/* ---- Responses ---- */

static void test_response_head(void **state) {
    static const struct {
        int line;
        const char *in;
        size_t len;
        int ret, code;
        const char *msg;
    } cases[] = {
#define H(s, r, c, m) {__LINE__, s, sizeof(s) - 1, r, c, m}
        H("0 ok\n", 5, 0, "ok"),
        H("0 ok\nbody\nmore", 5, 0, "ok"),
        H("1 unknown app \"x\"\n", 18, 1, "unknown app \"x\""),
        H("2 internal error: out of sockets\n", 33, 2, "internal error: out of sockets"),
        H("0\n", 2, 0, ""),
        H("0 \n", 3, 0, ""),
        H("0 ok\r\n", 6, 0, "ok"),
        H("0\r\n", 3, 0, ""),
        H("12 x\n", 5, 12, "x"),
        H("999 x\n", 6, 999, "x"),
        H("1 two  spaces \n", 15, 1, "two  spaces "),
        H("", CTL_AGAIN, 0, NULL),
        H("0", CTL_AGAIN, 0, NULL),
        H("0 o", CTL_AGAIN, 0, NULL),
        H("x ok\n", CTL_EBADHEAD, 0, NULL),
        H(" 0 ok\n", CTL_EBADHEAD, 0, NULL),
        H("0ok\n", CTL_EBADHEAD, 0, NULL),
        H("-1 no\n", CTL_EBADHEAD, 0, NULL),
        H("1000 x\n", CTL_EBADHEAD, 0, NULL),
        H("0\rx\n", CTL_EBADHEAD, 0, NULL),
        H("0 a\0b\n", CTL_EBADHEAD, 0, NULL),
        H("HTTP/1.1 200 OK\r\n", CTL_EBADHEAD, 0, NULL),
#undef H
    };
    for (size_t i = 0; i < N(cases); i++) {
        int code = -1;
        str_t msg = STR_NULL;
        char *copy = malloc(cases[i].len ? cases[i].len : 1);
        memcpy(copy, cases[i].in, cases[i].len);
        int r = ctl_response_parse_head(copy, cases[i].len, &code, &msg);
        if (r != cases[i].ret) fail_msg("line %d: got %d want %d", cases[i].line, r, cases[i].ret);
        if (r > 0) {
            if (code != cases[i].code) fail_msg("line %d: code %d", cases[i].line, code);
            if (!str_eq(msg, cases[i].msg, strlen(cases[i].msg)))
                fail_msg("line %d: msg '%.*s'", cases[i].line, (int)msg.len, msg.p);
        }
        /* Every shorter prefix: AGAIN, or the same error (never a different answer). */
        size_t upto = r > 0 ? (size_t)r : cases[i].len;
        for (size_t k = 0; k < upto; k++) {
            int rk = ctl_response_parse_head(copy, k, &code, &msg);
            if (rk != CTL_AGAIN && rk != cases[i].ret)
                fail_msg("line %d: prefix %zu gives %d", cases[i].line, k, rk);
        }
        free(copy);
    }
}

static void test_response_too_long(void **state) {
    char *s = malloc(CTL_LINE_MAX + 10);
    int code;
    str_t msg;
    memset(s, 'a', CTL_LINE_MAX + 10);
    s[0] = '0';
    s[1] = ' ';
    s[CTL_LINE_MAX - 1] = '\n';
    assert_int_equal(ctl_response_parse_head(s, CTL_LINE_MAX + 10, &code, &msg), CTL_LINE_MAX);
    assert_int_equal(msg.len, CTL_LINE_MAX - 3);
    s[CTL_LINE_MAX - 1] = 'a';
    s[CTL_LINE_MAX] = '\n';
    assert_int_equal(ctl_response_parse_head(s, CTL_LINE_MAX + 10, &code, &msg), CTL_ETOOLONG);
    assert_int_equal(ctl_response_parse_head(s, CTL_LINE_MAX, &code, &msg), CTL_ETOOLONG);
    assert_int_equal(ctl_response_parse_head(s, CTL_LINE_MAX - 1, &code, &msg), CTL_AGAIN);
    free(s);
}

static void test_response_encode(void **state) {
    buf_t b;
    int code;
    str_t msg;
    buf_init(&b);
    ctl_response_head(&b, CTL_CODE_REFUSED, "unknown app \"%s\"", "a\nb\tc\r");
    assert_string_equal(b.data, "1 unknown app \"a b c \"\n");
    assert_int_equal(ctl_response_parse_head(b.data, b.len, &code, &msg), (int)b.len);
    assert_int_equal(code, 1);
    b.len = 0;
    ctl_response_head(&b, CTL_CODE_OK, "%s", "");
    assert_string_equal(b.data, "0 \n");
    /* A huge message is cut to keep the line within CTL_LINE_MAX. */
    char *big = malloc(3 * CTL_LINE_MAX);
    memset(big, 'x', 3 * CTL_LINE_MAX - 1);
    big[3 * CTL_LINE_MAX - 1] = '\0';
    b.len = 0;
    ctl_response_head(&b, CTL_CODE_INTERNAL, "%s", big);
    assert_true(b.len <= CTL_LINE_MAX);
    assert_true(ctl_response_parse_head(b.data, b.len, &code, &msg) == (int)b.len);
    assert_int_equal(code, 2);
    free(big);
    buf_dispose(&b);
    assert_string_equal(ctl_strerror(CTL_ETOOLONG), "line too long");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_parse),   cmocka_unit_test(test_request_too_long),
        cmocka_unit_test(test_request_sequence), cmocka_unit_test(test_request_encode),
        cmocka_unit_test(test_cmd_parse),       cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_response_too_long), cmocka_unit_test(test_response_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
