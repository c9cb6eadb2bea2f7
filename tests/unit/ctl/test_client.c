/* Unit tests for src/ctl/client.c (`fcgihost ctl`): argument checks, and whole exchanges with a
 * fake server (a forked child on a Unix socket in a temporary directory) for each exit status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/client.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char dir[64];
static char sock_path[128];
static char req_path[128];
static char conf_path[128];    /* a configuration file a test may write */
static char default_conf[128]; /* what the client takes for /etc/fcgihost/fcgihost.conf */

static int setup(void **state) {
    snprintf(dir, sizeof(dir), "/tmp/fcgihost-ctl-test-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
    snprintf(req_path, sizeof(req_path), "%s/request", dir);
    snprintf(conf_path, sizeof(conf_path), "%s/test.conf", dir);
    snprintf(default_conf, sizeof(default_conf), "%s/default.conf", dir);
    unsetenv(CTL_SOCKET_ENV);
    return 0;
}

static int teardown(void **state) {
    unlink(sock_path);
    unlink(req_path);
    unlink(conf_path);
    unlink(default_conf);
    rmdir(dir);
    unsetenv(CTL_SOCKET_ENV);
    return 0;
}

/* ---- Running the client ---- */

typedef struct run {
    int rc;
    char *out, *err;
    size_t out_len, err_len;
} run_t;

static void run_client(run_t *r, int argc, const char *const *argv) {
    FILE *out = open_memstream(&r->out, &r->out_len);
    FILE *err = open_memstream(&r->err, &r->err_len);
    assert_non_null(out);
    assert_non_null(err);
    char *args[32];
    assert_true(argc < (int)N(args));
    for (int i = 0; i < argc; i++) args[i] = (char *)argv[i];
    args[argc] = NULL;
    r->rc = ctl_client_run(argc, args, default_conf, out, err);
    fclose(out);
    fclose(err);
}

static void run_free(run_t *r) {
    free(r->out);
    free(r->err);
}

#define RUN(r, ...)                                                   \
    do {                                                              \
        const char *const argv_[] = {"ctl", __VA_ARGS__};             \
        run_client((r), (int)N(argv_), argv_);                        \
    } while (0)

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("missing: %s\n---- in:\n%s", needle, hay);
}

/* ---- A fake server ---- */

typedef enum fake_mode {
    FAKE_ANSWER, /* read the request line, write `response`, close */
    FAKE_CLOSE,  /* read the request line, close without a word */
} fake_mode_t;

/* Listen on sock_path and fork a child that serves one connection; the request line it read goes
 * to req_path. */
static pid_t fake_start(fake_mode_t mode, const char *response) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    unlink(sock_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(l);
        return pid;
    }
    alarm(20); /* never outlive a broken test */
    int c = accept(l, NULL, NULL);
    if (c < 0) _exit(10);
    char req[8192];
    size_t n = 0;
    while (n < sizeof(req) && (n == 0 || req[n - 1] != '\n')) {
        ssize_t r = read(c, req + n, sizeof(req) - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    int fd = open(req_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, req, n) != (ssize_t)n) _exit(11);
    close(fd);
    if (mode == FAKE_ANSWER) {
        size_t len = strlen(response), off = 0;
        while (off < len) {
            ssize_t w = write(c, response + off, len - off);
            if (w <= 0) _exit(12);
            off += (size_t)w;
        }
    }
    close(c);
    _exit(0);
}

static void fake_wait(pid_t pid) {
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void assert_request(const char *want) {
    char got[8192];
    FILE *f = fopen(req_path, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof(got) - 1, f);
    fclose(f);
    got[n] = '\0';
    assert_string_equal(got, want);
}

/* ---- Usage ---- */

static void test_usage_errors(void **state) {
    static const struct {
        int line;
        int argc;
        const char *argv[8];
        const char *msg;
    } cases[] = {
        {__LINE__, 1, {"ctl"}, "no command given"},
        {__LINE__, 2, {"ctl", "frob"}, "unknown command frob"},
        {__LINE__, 2, {"ctl", "recycle"}, "recycle takes 1 argument, not 0"},
        {__LINE__, 4, {"ctl", "recycle", "a", "b"}, "recycle takes 1 argument, not 2"},
        {__LINE__, 4, {"ctl", "set", "php", "maxInstances"}, "set takes 3 arguments, not 2"},
        {__LINE__, 3, {"ctl", "reload", "now"}, "reload takes 0 arguments, not 1"},
        {__LINE__, 3, {"ctl", "stop", "-f"}, "stop takes 0 arguments"},
        {__LINE__, 4, {"ctl", "status", "a", "b"}, "one APP at most"},
        {__LINE__, 3, {"ctl", "status", "--xml"}, "unknown status option --xml"},
        {__LINE__, 3, {"ctl", "-x", "status"}, "unknown option -x"},
        {__LINE__, 2, {"ctl", "-s"}, "-s needs a socket path"},
        {__LINE__, 4, {"ctl", "-s", "", "stop"}, "-s needs a socket path"},
        {__LINE__, 5, {"ctl", "set", "php", "k", "a\tb"}, "cannot send this command: TAB"},
        {__LINE__, 2, {"ctl", "-c"}, "-c needs a configuration file"},
        {__LINE__, 5, {"ctl", "-s", "/x", "-c", "/y"}, "-s and -c both name the socket"},
        {__LINE__, 4, {"ctl", "-c/y", "-s/x", "stop"}, "-s and -c both name the socket"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        run_t r;
        run_client(&r, cases[i].argc, cases[i].argv);
        if (r.rc != CTL_EXIT_USAGE) fail_msg("line %d: exit %d: %s", cases[i].line, r.rc, r.err);
        if (!strstr(r.err, cases[i].msg)) fail_msg("line %d: stderr: %s", cases[i].line, r.err);
        bool syntax = !strstr(cases[i].msg, "cannot send"); /* a TAB in a word is no syntax */
        if (syntax && (!strstr(r.err, "Try 'fcgihost ctl") || !strstr(r.err, " --help' for more")))
            fail_msg("line %d: no pointer to --help: %s", cases[i].line, r.err);
        if (r.out_len) fail_msg("line %d: wrote to stdout: %s", cases[i].line, r.out);
        run_free(&r);
    }
}

static void test_help(void **state) {
    run_t r;
    RUN(&r, "-h");
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_contains(r.out, "usage: fcgihost ctl [-s SOCKET | -c FILE] COMMAND");
    assert_contains(r.out, "status [APP] [--json]");
    assert_contains(r.out, "exit status:\n  0  success\n  1  ");
    assert_contains(r.out, "  3  cannot reach the server");
    assert_contains(r.out, CTL_DEFAULT_SOCKET);
    assert_contains(r.out, default_conf);
    assert_int_equal(r.err_len, 0);
    run_free(&r);

    RUN(&r, "-s", "/nonexistent", "--help", "stop");
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_contains(r.out, "usage: fcgihost ctl");
    run_free(&r);

    /* Every command has its own help, wherever --help or -h stands among its arguments; nothing
     * is sent (no server listens on the socket named). */
    static const struct {
        int line;
        int argc;
        const char *argv[6];
        const char *want;
    } cases[] = {
        {__LINE__, 3, {"ctl", "status", "--help"}, "] status [APP] [--json]\n"},
        {__LINE__, 4, {"ctl", "status", "php", "-h"}, "  --json   one JSON document"},
        {__LINE__, 3, {"ctl", "recycle", "--help"}, "] recycle APP\nReplace every process"},
        {__LINE__, 5, {"ctl", "set", "php", "--help", "x"}, "] set APP KEY VALUE\n"},
        {__LINE__, 3, {"ctl", "reload", "-h"}, "] reload\nRe-read the configuration"},
        {__LINE__, 5, {"ctl", "-s", "/nonexistent", "stop", "--help"}, "] stop\nStop the server"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        run_client(&r, cases[i].argc, cases[i].argv);
        if (r.rc != CTL_EXIT_OK) fail_msg("line %d: exit %d: %s", cases[i].line, r.rc, r.err);
        if (!strstr(r.out, cases[i].want)) fail_msg("line %d: stdout: %s", cases[i].line, r.out);
        if (r.err_len) fail_msg("line %d: stderr: %s", cases[i].line, r.err);
        run_free(&r);
    }
}

/* ---- Unreachable ---- */

static void test_no_socket(void **state) {
    run_t r;
    RUN(&r, "-s", sock_path, "status");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    char want[256];
    snprintf(want, sizeof(want), "fcgihost ctl: cannot connect to %s: %s", sock_path,
             strerror(ENOENT));
    assert_contains(r.err, want);
    run_free(&r);

    /* The default socket, when neither -s nor the environment names one. */
    RUN(&r, "status");
    assert_true(r.rc == CTL_EXIT_UNREACHABLE || r.rc == CTL_EXIT_OK || r.rc == CTL_EXIT_FAILED);
    if (r.rc == CTL_EXIT_UNREACHABLE) assert_contains(r.err, CTL_DEFAULT_SOCKET);
    run_free(&r);

    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    RUN(&r, "-s", longp, "stop");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, strerror(ENAMETOOLONG));
    run_free(&r);
}

static void test_refused(void **state) {
    /* A socket file nobody listens on: ECONNREFUSED. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(l);
    run_t r;
    RUN(&r, "-s", sock_path, "reload");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, sock_path);
    assert_contains(r.err, strerror(ECONNREFUSED));
    run_free(&r);
    unlink(sock_path);
}

static void test_closed_without_response(void **state) {
    pid_t pid = fake_start(FAKE_CLOSE, NULL);
    run_t r;
    RUN(&r, "-s", sock_path, "stop");
    fake_wait(pid);
    assert_request("stop\n");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, "closed the connection without a response");
    assert_contains(r.err, sock_path);
    run_free(&r);
}

static void test_malformed_response(void **state) {
    pid_t pid = fake_start(FAKE_ANSWER, "HTTP/1.1 400 Bad Request\r\n\r\n");
    run_t r;
    RUN(&r, "-s", sock_path, "status");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, "malformed response");
    run_free(&r);

    pid = fake_start(FAKE_ANSWER, "0 ok"); /* no LF before the end */
    RUN(&r, "-s", sock_path, "status");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, "no complete first line");
    run_free(&r);
}

/* ---- Answers ---- */

static void test_status_json(void **state) {
    pid_t pid = fake_start(FAKE_ANSWER, "0 ok\n{\"server\":{},\"pools\":[]}\n");
    run_t r;
    RUN(&r, "-s", sock_path, "status", "--json");
    fake_wait(pid);
    assert_request("status\t\tjson\n");
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_string_equal(r.out, "{\"server\":{},\"pools\":[]}\n");
    assert_int_equal(r.err_len, 0);
    run_free(&r);

    static const struct {
        int line;
        int argc;
        const char *argv[6];
        const char *req;
    } cases[] = {
        {__LINE__, 1, {"status"}, "status\n"},
        {__LINE__, 2, {"status", "php"}, "status\tphp\n"},
        {__LINE__, 3, {"status", "--json", "php"}, "status\tphp\tjson\n"},
        {__LINE__, 3, {"status", "php", "--json"}, "status\tphp\tjson\n"},
        {__LINE__, 2, {"recycle", "php"}, "recycle\tphp\n"},
        {__LINE__, 4, {"set", "php", "maxInstances", "2"}, "set\tphp\tmaxInstances\t2\n"},
        {__LINE__, 4, {"set", "php", "arguments", ""}, "set\tphp\targuments\t\n"},
        {__LINE__, 4, {"set", "php", "x", "-1"}, "set\tphp\tx\t-1\n"},
        {__LINE__, 1, {"reload"}, "reload\n"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        const char *argv[10] = {"ctl", "-s", sock_path};
        for (int k = 0; k < cases[i].argc; k++) argv[3 + k] = cases[i].argv[k];
        pid = fake_start(FAKE_ANSWER, "0 ok\nbody\n");
        run_client(&r, 3 + cases[i].argc, argv);
        fake_wait(pid);
        if (r.rc != CTL_EXIT_OK) fail_msg("line %d: exit %d: %s", cases[i].line, r.rc, r.err);
        assert_request(cases[i].req);
        assert_string_equal(r.out, "body\n");
        run_free(&r);
    }
}

static void test_message_without_body(void **state) {
    pid_t pid = fake_start(FAKE_ANSWER, "0 recycling 3 processes of php\n");
    run_t r;
    RUN(&r, "-s", sock_path, "recycle", "php");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_string_equal(r.out, "recycling 3 processes of php\n");
    run_free(&r);
}

static void test_server_refuses(void **state) {
    pid_t pid = fake_start(FAKE_ANSWER,
                           "1 reload failed: 2 errors, the running configuration is kept\n"
                           "/etc/fcgihost/fcgihost.conf:3: unknown key \"lisen\"\n"
                           "/etc/fcgihost/fcgihost.conf:9: maxInstances: not a number");
    run_t r;
    RUN(&r, "-s", sock_path, "reload");
    fake_wait(pid);
    assert_request("reload\n");
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    assert_int_equal(r.out_len, 0);
    assert_string_equal(r.err,
                        "fcgihost ctl: reload failed: 2 errors, the running configuration is kept\n"
                        "/etc/fcgihost/fcgihost.conf:3: unknown key \"lisen\"\n"
                        "/etc/fcgihost/fcgihost.conf:9: maxInstances: not a number\n");
    run_free(&r);

    pid = fake_start(FAKE_ANSWER, "1 unknown app \"nope\"\n");
    RUN(&r, "-s", sock_path, "status", "nope");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    assert_string_equal(r.err, "fcgihost ctl: unknown app \"nope\"\n");
    run_free(&r);

    pid = fake_start(FAKE_ANSWER, "2 internal error\n");
    RUN(&r, "-s", sock_path, "recycle", "php");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    assert_string_equal(r.err, "fcgihost ctl: internal error\n");
    run_free(&r);

    pid = fake_start(FAKE_ANSWER, "1\n");
    RUN(&r, "-s", sock_path, "recycle", "php");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    assert_string_equal(r.err, "fcgihost ctl: the server refused the command (code 1)\n");
    run_free(&r);
}

static void test_socket_choice(void **state) {
    /* The environment names the socket when -s does not. */
    setenv(CTL_SOCKET_ENV, sock_path, 1);
    pid_t pid = fake_start(FAKE_ANSWER, "0 stopping\n");
    run_t r;
    RUN(&r, "stop");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_string_equal(r.out, "stopping\n");
    run_free(&r);

    /* -s wins over the environment; -sPATH works too. */
    setenv(CTL_SOCKET_ENV, "/nonexistent/fcgihost.sock", 1);
    char opt[160];
    snprintf(opt, sizeof(opt), "-s%s", sock_path);
    pid = fake_start(FAKE_ANSWER, "0 stopping\n");
    RUN(&r, opt, "stop");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_OK);
    run_free(&r);

    RUN(&r, "stop");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, "/nonexistent/fcgihost.sock");
    run_free(&r);

    /* An empty variable counts as unset. (status: harmless should a real server listen.) */
    setenv(CTL_SOCKET_ENV, "", 1);
    RUN(&r, "status");
    if (r.rc == CTL_EXIT_UNREACHABLE) assert_contains(r.err, CTL_DEFAULT_SOCKET);
    run_free(&r);
    unsetenv(CTL_SOCKET_ENV);
}

/* ---- The socket from a configuration file ---- */

static void write_file(const char *path, const char *fmt, ...) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
}

static void test_socket_from_config(void **state) {
    /* -c FILE: the file's controlSocket. */
    write_file(conf_path, "[server]\nroot = %s\ncontrolSocket = %s\n", dir, sock_path);
    pid_t pid = fake_start(FAKE_ANSWER, "0 stopping\n");
    run_t r;
    RUN(&r, "-c", conf_path, "stop");
    fake_wait(pid);
    assert_request("stop\n");
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_string_equal(r.out, "stopping\n");
    run_free(&r);

    /* -c wins over the environment; the message says where the socket came from. */
    unlink(sock_path);
    setenv(CTL_SOCKET_ENV, "/nonexistent/env.sock", 1);
    char opt[160];
    snprintf(opt, sizeof(opt), "-c%s", conf_path);
    RUN(&r, opt, "status");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    char want[512];
    snprintf(want, sizeof(want), "cannot connect to %s: %s", sock_path, strerror(ENOENT));
    assert_contains(r.err, want);
    snprintf(want, sizeof(want), "this socket is the controlSocket of %s", conf_path);
    assert_contains(r.err, want);
    run_free(&r);
    unsetenv(CTL_SOCKET_ENV);

    /* The file is checked as the server would: its errors, file:line, and exit 1. */
    write_file(conf_path, "[server]\nroot = %s\ncontrolSocket = %s\nlisen = x\n", dir,
               sock_path);
    RUN(&r, "-c", conf_path, "stop");
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    snprintf(want, sizeof(want), "%s:4: ", conf_path);
    assert_contains(r.err, want);
    assert_contains(r.err, "lisen");
    assert_contains(r.err, "cannot take the control socket from");
    assert_int_equal(r.out_len, 0);
    run_free(&r);

    RUN(&r, "-c", "/nonexistent/fcgihost.conf", "stop");
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    assert_contains(r.err, "/nonexistent/fcgihost.conf: cannot open");
    run_free(&r);
}

static void test_socket_from_default_config(void **state) {
    /* No default file: the default socket (status: harmless should a real server listen). */
    run_t r;
    RUN(&r, "status");
    if (r.rc == CTL_EXIT_UNREACHABLE) {
        assert_contains(r.err, CTL_DEFAULT_SOCKET);
        assert_contains(r.err, "this socket is the default");
    }
    run_free(&r);

    /* A readable default file: its controlSocket. */
    write_file(default_conf, "[server]\nroot = %s\ncontrolSocket = %s\n", dir, sock_path);
    pid_t pid = fake_start(FAKE_ANSWER, "0 stopping\n");
    RUN(&r, "stop");
    fake_wait(pid);
    assert_int_equal(r.rc, CTL_EXIT_OK);
    assert_string_equal(r.out, "stopping\n");
    run_free(&r);

    /* The environment wins over the default file; -s over both. */
    setenv(CTL_SOCKET_ENV, "/nonexistent/env.sock", 1);
    RUN(&r, "stop");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, "/nonexistent/env.sock");
    run_free(&r);
    unsetenv(CTL_SOCKET_ENV);
    RUN(&r, "-s", "/nonexistent/s.sock", "stop");
    assert_int_equal(r.rc, CTL_EXIT_UNREACHABLE);
    assert_contains(r.err, "/nonexistent/s.sock");
    run_free(&r);

    /* A default file with errors is reported, not guessed around. */
    write_file(default_conf, "[server]\ncontrolSocket = %s\n", sock_path); /* no root */
    RUN(&r, "stop");
    assert_int_equal(r.rc, CTL_EXIT_FAILED);
    assert_contains(r.err, default_conf);
    assert_contains(r.err, "root");
    run_free(&r);

    /* An unreadable one (mode 0, and not root: root reads anything) counts as absent. */
    if (geteuid() != 0) {
        assert_int_equal(chmod(default_conf, 0), 0);
        RUN(&r, "status");
        if (r.rc == CTL_EXIT_UNREACHABLE) assert_contains(r.err, CTL_DEFAULT_SOCKET);
        run_free(&r);
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_from_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_from_default_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_without_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_without_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_choice, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
