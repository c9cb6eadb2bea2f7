/* Unit tests for src/config: defaults, every key, every kind of error with its line number, long
 * lines, inline comments, scriptProcessor resolution, paths, listen, statusAllow, live settings.
 *
 * A temporary directory (mkdtemp) plays the configuration file's directory: it holds `www/` (the
 * document root), `app.sh` (an executable), `plain.txt` (not executable) and `sub/`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_int.h"
#include "util/log.h"
#include "util/xalloc.h"

static char tmpdir[PATH_MAX]; /* canonical */
static char www[PATH_MAX + 8];
static char app_sh[PATH_MAX + 8];

#define BASE "[server]\nroot = www\n" /* lines 1-2 of most test files */

/* ------------------------------------------------------------------------------------------ */
/* Fixture and helpers */

static void write_file(const char *path, const char *text, size_t len, mode_t mode) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *tmp_path(const char *name) {
    return xasprintf("%s/%s", tmpdir, name);
}

static int group_setup(void **state) {
    char templ[] = "/tmp/test_config.XXXXXX";
    if (mkdtemp(templ) == NULL || realpath(templ, tmpdir) == NULL) return -1;
    snprintf(www, sizeof(www), "%s/www", tmpdir);
    snprintf(app_sh, sizeof(app_sh), "%s/app.sh", tmpdir);
    if (mkdir(www, 0755) < 0) return -1;
    char *sub = tmp_path("sub");
    int rc = mkdir(sub, 0755);
    free(sub);
    if (rc < 0) return -1;
    write_file(app_sh, "#!/bin/sh\nexit 0\n", 17, 0755);
    char *plain = tmp_path("plain.txt");
    write_file(plain, "hello\n", 6, 0644);
    free(plain);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static int group_teardown(void **state) {
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static cfg_t *load(const char *text, cfg_diag_t *d) {
    return cfg_load_string(text, "t.conf", tmpdir, d);
}

static void print_diag(const cfg_diag_t *d) {
    for (size_t i = 0; i < d->n; i++) print_message("  diag: %s\n", d->msgs[i]);
}

static cfg_t *load_ok(const char *text) {
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg_t *cfg = load(text, &d);
    if (cfg == NULL || d.n) print_diag(&d);
    assert_non_null(cfg);
    assert_int_equal(d.n, 0);
    cfg_diag_dispose(&d);
    return cfg;
}

static bool diag_has(const cfg_diag_t *d, const char *msg) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->msgs[i], msg) == 0) return true;
    return false;
}

/* Loading `text` fails and `msg` is among the messages (exactly). */
static void expect_error(const char *text, const char *msg) {
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg_t *cfg = load(text, &d);
    if (cfg != NULL || !diag_has(&d, msg)) {
        print_message("expected: %s\n", msg);
        print_diag(&d);
    }
    assert_null(cfg);
    assert_true(diag_has(&d, msg));
    cfg_diag_dispose(&d);
}

/* Loading `text` fails with exactly the messages given (NULL-terminated), in that order. */
static void expect_errors(const char *text, ...) {
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg_t *cfg = load(text, &d);
    assert_null(cfg);
    va_list ap;
    va_start(ap, text);
    size_t i = 0;
    for (const char *m; (m = va_arg(ap, const char *)) != NULL; i++) {
        if (i >= d.n || strcmp(d.msgs[i], m) != 0) {
            print_message("expected #%zu: %s\n", i, m);
            print_diag(&d);
        }
        assert_true(i < d.n);
        assert_string_equal(d.msgs[i], m);
    }
    va_end(ap);
    if (i != d.n) print_diag(&d);
    assert_int_equal(d.n, i);
    cfg_diag_dispose(&d);
}

static char *repeat(char c, size_t n) {
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults */

static void test_server_defaults(void **state) {
    cfg_t *cfg = load_ok(BASE);
    const cfg_server_t *s = &cfg->server;
    char *file = tmp_path("t.conf");
    assert_string_equal(cfg->file, file);
    free(file);
    assert_string_equal(cfg->dir, tmpdir);
    assert_int_equal(s->n_listen, 1);
    assert_string_equal(s->listen[0].text, "127.0.0.1:8080");
    assert_int_equal(s->listen[0].kind, CFG_LISTEN_TCP4);
    assert_string_equal(s->listen[0].host, "127.0.0.1");
    assert_int_equal(s->listen[0].port, 8080);
    assert_null(s->listen[0].path);
    assert_int_equal(s->listen[0].line, 1);
    assert_string_equal(s->site.root, www);
    assert_int_equal(s->site.index.n, 2);
    assert_string_equal(s->site.index.v[0], "index.php");
    assert_string_equal(s->site.index.v[1], "index.html");
    assert_string_equal(s->site.access_log, "-");
    assert_string_equal(s->error_log, "-");
    assert_int_equal(s->log_level, LOG_LEVEL_INFO);
    assert_string_equal(s->control_socket, "/run/fcgihost/control.sock");
    assert_string_equal(s->runtime_dir, "/run/fcgihost");
    assert_string_equal(s->user, "www-data"); /* SPEC §2: drop to www-data as root */
    assert_int_equal(s->site.symlinks, CFG_SYMLINKS_INSIDE_ROOT);
    assert_string_equal(s->status_path, "/fcgihost-status");
    assert_int_equal(s->n_status_allow, 2);
    assert_int_equal(s->status_allow[0].family, AF_INET);
    assert_int_equal(s->status_allow[0].prefix, 8);
    assert_memory_equal(s->status_allow[0].addr, "\x7f\0\0\0", 4);
    assert_int_equal(s->status_allow[1].family, AF_INET6);
    assert_int_equal(s->status_allow[1].prefix, 128);
    assert_memory_equal(s->status_allow[1].addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
    assert_int_equal(s->max_url_bytes, 8192);
    assert_int_equal(s->max_header_bytes, 16384);
    assert_int_equal(s->site.max_body_bytes, 30000000);
    assert_int_equal(s->header_timeout, 30);
    assert_int_equal(s->body_timeout, 60);
    assert_int_equal(s->send_timeout, 60);
    assert_int_equal(s->keep_alive_timeout, 120);
    assert_int_equal(s->shutdown_timeout, 30);
    assert_string_equal(s->temp_dir, "/var/tmp");
    assert_int_equal(s->max_connections, 20000);
    assert_int_equal(s->max_connections_per_ip, 0);
    assert_int_equal(cfg->n_apps, 0);
    assert_int_equal(cfg->n_handlers, 0);
    cfg_free(cfg);
}

static void test_app_and_handler_defaults(void **state) {
    cfg_t *cfg = load_ok(BASE "[fastcgi:php]\nfullPath = /bin/sh\n"
                              "[handler:php]\npath = *.php\nscriptProcessor = php\n");
    assert_int_equal(cfg->n_apps, 1);
    const cfg_app_t *a = &cfg->apps[0];
    assert_string_equal(a->name, "php");
    assert_string_equal(a->full_path, "/bin/sh");
    assert_string_equal(a->arguments, "");
    assert_string_equal(a->argv[0], "/bin/sh");
    assert_null(a->argv[1]);
    assert_int_equal(a->n_env, 0);
    assert_int_equal(a->max_instances, 0);
    assert_int_equal(a->instance_max_requests, 10000);
    assert_int_equal(a->idle_timeout, 300);
    assert_int_equal(a->activity_timeout, 70);
    assert_int_equal(a->request_timeout, 90);
    assert_int_equal(a->queue_length, 1000);
    assert_int_equal(a->rapid_fails_per_minute, 10);
    assert_int_equal(a->protocol, CFG_PROTOCOL_UNIX);
    assert_false(a->flush_named_pipe);
    assert_null(a->monitor_changes_to);
    assert_int_equal(a->stderr_mode, CFG_STDERR_IGNORE_200);
    assert_int_equal(a->recycle_mode, CFG_RECYCLE_WARM);
    assert_int_equal(a->signal_before_terminate_seconds, 0);
    assert_false(a->response_headers_strict);
    assert_true(a->utf8_all);
    assert_int_equal(a->n_utf8_vars, 0);
    assert_null(a->user);
    assert_int_equal(a->line, 3);

    assert_int_equal(cfg->n_handlers, 1);
    const cfg_handler_t *h = &cfg->handlers[0];
    assert_string_equal(h->name, "php");
    assert_string_equal(h->path, "*.php");
    assert_false(h->path_is_prefix);
    assert_true(h->any_verb);
    assert_int_equal(h->n_verbs, 0);
    assert_string_equal(h->script_processor, "php");
    assert_int_equal(h->app_index, 0);
    assert_int_equal(h->resource_type, CFG_RESOURCE_FILE);
    assert_int_equal(h->response_buffer_limit, 4194304);
    assert_int_equal(h->line, 5);
    cfg_free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Every key */

static void test_server_all_keys(void **state) {
    cfg_t *cfg = load_ok("[server]\n"
                         "listen = 0.0.0.0:80\n"
                         "listen = [::1]:8443\n"
                         "listen = unix:/run/x.sock\n"
                         "root = www/\n"
                         "index = default.php  home.htm\tindex.html\n"
                         "accessLog = /var/log/fcgihost/access.log\n"
                         "errorLog = off\n"
                         "logLevel = debug\n"
                         "controlSocket = /tmp/ctl.sock\n"
                         "runtimeDir = /var/run/fh\n"
                         "user = www-data\n"
                         "symlinks = ifOwnerMatch\n"
                         "statusPath = /status\n"
                         "statusAllow = 10.1.2.3/8, 192.168.0.7 2001:db8::1/32\n"
                         "maxUrlBytes = 4096\n"
                         "maxHeaderBytes = 32k\n"
                         "maxBodyBytes = 2g\n"
                         "headerTimeout = 10\n"
                         "keepAliveTimeout = 5\n"
                         "shutdownTimeout = 0\n");
    const cfg_server_t *s = &cfg->server;
    assert_int_equal(s->n_listen, 3);
    assert_string_equal(s->listen[0].host, "0.0.0.0");
    assert_int_equal(s->listen[0].port, 80);
    assert_int_equal(s->listen[0].line, 2);
    assert_int_equal(s->listen[1].kind, CFG_LISTEN_TCP6);
    assert_string_equal(s->listen[1].host, "::1");
    assert_int_equal(s->listen[1].port, 8443);
    assert_string_equal(s->listen[1].text, "[::1]:8443");
    assert_int_equal(s->listen[2].kind, CFG_LISTEN_UNIX);
    assert_string_equal(s->listen[2].path, "/run/x.sock");
    assert_null(s->listen[2].host);
    assert_int_equal(s->listen[2].line, 4);
    assert_string_equal(s->site.root, www);
    assert_int_equal(s->site.index.n, 3);
    assert_string_equal(s->site.index.v[0], "default.php");
    assert_string_equal(s->site.index.v[1], "home.htm");
    assert_string_equal(s->site.index.v[2], "index.html");
    assert_string_equal(s->site.access_log, "/var/log/fcgihost/access.log");
    assert_string_equal(s->error_log, "off");
    assert_int_equal(s->log_level, LOG_LEVEL_DEBUG);
    assert_string_equal(s->control_socket, "/tmp/ctl.sock");
    assert_string_equal(s->runtime_dir, "/var/run/fh");
    assert_string_equal(s->user, "www-data");
    assert_int_equal(s->site.symlinks, CFG_SYMLINKS_IF_OWNER_MATCH);
    assert_string_equal(s->status_path, "/status");
    assert_int_equal(s->n_status_allow, 3);
    assert_int_equal(s->max_url_bytes, 4096);
    assert_int_equal(s->max_header_bytes, 32768);
    assert_int_equal(s->site.max_body_bytes, 2ull << 30);
    assert_int_equal(s->header_timeout, 10);
    assert_int_equal(s->keep_alive_timeout, 5);
    assert_int_equal(s->shutdown_timeout, 0);
    cfg_free(cfg);
}

static void test_app_all_keys(void **state) {
    cfg_t *cfg = load_ok(BASE "[fastcgi:php-8.2]\n"
                              "fullPath = /bin/sh\n"
                              "arguments = -c \"exec php-cgi\" x\n"
                              "env = PHP_FCGI_MAX_REQUESTS=500\n"
                              "env = EMPTY=\n"
                              "env = EQ=a=b\n"
                              "maxInstances = 8\n"
                              "instanceMaxRequests = 0\n"
                              "idleTimeout = 0\n"
                              "activityTimeout = 15\n"
                              "requestTimeout = 600\n"
                              "queueLength = 0\n"
                              "rapidFailsPerMinute = 3\n"
                              "protocol = tcp\n"
                              "flushNamedPipe = yes\n"
                              "monitorChangesTo = sub/php.ini\n"
                              "stderrMode = TerminateProcess\n"
                              "signalBeforeTerminateSeconds = 5\n"
                              "responseHeaders = strict\n"
                              "utf8ServerVariables = script_name, PATH_INFO REQUEST_URI\n"
                              "user = nobody\n");
    const cfg_app_t *a = cfg_find_app(cfg, "php-8.2");
    assert_non_null(a);
    assert_string_equal(a->arguments, "-c \"exec php-cgi\" x");
    assert_string_equal(a->argv[0], "/bin/sh");
    assert_string_equal(a->argv[1], "-c");
    assert_string_equal(a->argv[2], "exec php-cgi");
    assert_string_equal(a->argv[3], "x");
    assert_null(a->argv[4]);
    assert_int_equal(a->n_env, 3);
    assert_string_equal(a->env[0], "PHP_FCGI_MAX_REQUESTS=500");
    assert_string_equal(a->env[1], "EMPTY=");
    assert_string_equal(a->env[2], "EQ=a=b");
    assert_int_equal(a->max_instances, 8);
    assert_int_equal(a->instance_max_requests, 0);
    assert_int_equal(a->idle_timeout, 0);
    assert_int_equal(a->activity_timeout, 15);
    assert_int_equal(a->request_timeout, 600);
    assert_int_equal(a->queue_length, 0);
    assert_int_equal(a->rapid_fails_per_minute, 3);
    assert_int_equal(a->protocol, CFG_PROTOCOL_TCP);
    assert_true(a->flush_named_pipe);
    char *ini = tmp_path("sub/php.ini");
    assert_string_equal(a->monitor_changes_to, ini);
    free(ini);
    assert_int_equal(a->stderr_mode, CFG_STDERR_TERMINATE);
    assert_int_equal(a->signal_before_terminate_seconds, 5);
    assert_true(a->response_headers_strict);
    assert_false(a->utf8_all);
    assert_int_equal(a->n_utf8_vars, 3);
    assert_string_equal(a->utf8_vars[0], "SCRIPT_NAME");
    assert_string_equal(a->utf8_vars[1], "PATH_INFO");
    assert_string_equal(a->utf8_vars[2], "REQUEST_URI");
    assert_string_equal(a->user, "nobody");
    assert_null(cfg_find_app(cfg, "php"));
    cfg_free(cfg);
}

static void test_handler_all_keys(void **state) {
    cfg_t *cfg = load_ok(BASE "[fastcgi:app]\nfullPath = /bin/sh\n"
                              "[handler:api]\n"
                              "path = /api/\n"
                              "verb = get, Head,POST\n"
                              "scriptProcessor = app\n"
                              "resourceType = Unspecified\n"
                              "responseBufferLimit = 0\n"
                              "[handler:dirs]\npath = *\nscriptProcessor = app\n"
                              "resourceType = either\n"
                              "[handler:d]\npath = x\nscriptProcessor = app\n"
                              "resourceType = DIRECTORY\n");
    assert_int_equal(cfg->n_handlers, 3);
    const cfg_handler_t *h = &cfg->handlers[0];
    assert_string_equal(h->name, "api");
    assert_string_equal(h->path, "/api/");
    assert_true(h->path_is_prefix);
    assert_false(h->any_verb);
    assert_int_equal(h->n_verbs, 3);
    assert_string_equal(h->verbs[0], "GET");
    assert_string_equal(h->verbs[1], "HEAD");
    assert_string_equal(h->verbs[2], "POST");
    assert_int_equal(h->resource_type, CFG_RESOURCE_UNSPECIFIED);
    assert_int_equal(h->response_buffer_limit, 0);
    assert_string_equal(cfg->handlers[1].name, "dirs");
    assert_int_equal(cfg->handlers[1].resource_type, CFG_RESOURCE_EITHER);
    assert_int_equal(cfg->handlers[2].resource_type, CFG_RESOURCE_DIRECTORY);
    cfg_free(cfg);
}

/* The example of SPEC §2, comments and all (paths swapped for ones that exist here). */
static void test_spec_example(void **state) {
    cfg_t *cfg = load_ok(
        "[server]\n"
        "listen = 127.0.0.1:8080          ; repeatable; [::1]:8080 and unix:/path also accepted\n"
        "root = www                       ; required; relative paths are relative to the config\n"
        "index = index.php index.html\n"
        "accessLog = -                    ; file, \"-\" (stdout) or \"off\"; combined format\n"
        "errorLog = -\n"
        "logLevel = info\n"
        "controlSocket = /run/fcgihost/control.sock\n"
        "runtimeDir = /run/fcgihost       ; sockets of the FastCGI processes live here\n"
        "user = www-data                  ; example; when started as root: drop to it\n"
        "symlinks = insideRoot            ; insideRoot | ifOwnerMatch | follow\n"
        "statusPath = /fcgihost-status    ; JSON; ?format=prometheus for Prometheus text\n"
        "statusAllow = 127.0.0.0/8 ::1\n"
        "maxUrlBytes = 8192               ; 414 past this\n"
        "maxHeaderBytes = 16384           ; 431 past this\n"
        "maxBodyBytes = 30000000          ; 413 past this (IIS maxAllowedContentLength)\n"
        "headerTimeout = 30               ; 408 if the request head is not complete in time\n"
        "keepAliveTimeout = 120\n"
        "shutdownTimeout = 30\n"
        "\n"
        "[fastcgi:php]                    ; one FastCGI application = one process pool\n"
        "fullPath = /bin/sh               ; required (example value)\n"
        "arguments =\n"
        "env = PHP_FCGI_MAX_REQUESTS=10000   ; example; repeatable (IIS environmentVariables)\n"
        "maxInstances = 0                 ; 0 = automatic (4.2); N = at most N processes\n"
        "instanceMaxRequests = 10000      ; recycle a process after N requests\n"
        "idleTimeout = 300                ; end a process idle this many seconds\n"
        "activityTimeout = 70             ; 500 + kill if the app sends nothing\n"
        "requestTimeout = 90              ; 500 + kill if one request takes longer\n"
        "queueLength = 1000               ; requests waiting for a process; past it: 503\n"
        "rapidFailsPerMinute = 10         ; past it the pool is failed\n"
        "protocol = unix                  ; unix (IIS NamedPipe) | tcp (127.0.0.1, ephemeral)\n"
        "flushNamedPipe = false           ; accepted for IIS compatibility\n"
        "monitorChangesTo = /etc/php/8.2/cgi/php.ini   ; example; none by default\n"
        "stderrMode = ReturnStdErrIn500   ; ReturnStdErrIn500 | ReturnGeneric500 | ...\n"
        "signalBeforeTerminateSeconds = 0\n"
        "responseHeaders = relaxed        ; relaxed | strict (4.5)\n"
        "utf8ServerVariables = *          ; * | names separated by spaces or commas | empty\n"
        "user = www-data                  ; example; the pool's identity\n"
        "\n"
        "[handler:php]                    ; handler mappings are tried in file order\n"
        "path = *.php                     ; required: a file-name pattern, or a URL prefix\n"
        "verb = *                         ; or GET,HEAD,POST\n"
        "scriptProcessor = php            ; required: a [fastcgi:NAME]\n"
        "resourceType = File              ; File | Directory | Either | Unspecified\n"
        "responseBufferLimit = 4194304    ; bytes buffered before headers go out\n");
    assert_string_equal(cfg->server.listen[0].text, "127.0.0.1:8080");
    assert_string_equal(cfg->server.site.root, www);
    assert_string_equal(cfg->server.site.access_log, "-");
    assert_string_equal(cfg->server.user, "www-data");
    assert_string_equal(cfg->server.status_path, "/fcgihost-status");
    const cfg_app_t *a = &cfg->apps[0];
    assert_string_equal(a->full_path, "/bin/sh");
    assert_string_equal(a->env[0], "PHP_FCGI_MAX_REQUESTS=10000");
    assert_string_equal(a->monitor_changes_to, "/etc/php/8.2/cgi/php.ini");
    assert_true(a->utf8_all);
    assert_string_equal(cfg->handlers[0].path, "*.php");
    assert_string_equal(cfg->handlers[0].script_processor, "php");
    cfg_free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Syntax */

static void test_inline_comment_values(void **state) {
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg_t *cfg = load("[server]\nroot = www;x ; comment\n", &d);
    assert_null(cfg); /* "www;x" is the value, and it does not exist */
    cfg_diag_dispose(&d);

    cfg = load_ok("  [ server ]   ; trailing comment\n"
                  "\troot=www ; comment\n"
                  "    index = a;b.php   ; ';' without white space before it stays\n"
                  "[fastcgi : x ]\n"
                  "fullPath=/bin/sh\n"
                  "arguments = a\\b ; c\n"
                  "env = A=1;2\t; comment after a tab\n");
    assert_string_equal(cfg->server.site.root, www);
    assert_int_equal(cfg->server.site.index.n, 1);
    assert_string_equal(cfg->server.site.index.v[0], "a;b.php");
    assert_string_equal(cfg->apps[0].name, "x");
    assert_string_equal(cfg->apps[0].arguments, "a\\b");
    assert_string_equal(cfg->apps[0].argv[1], "a\\b");
    assert_string_equal(cfg->apps[0].env[0], "A=1;2");
    cfg_free(cfg);
}

static void test_crlf_bom_and_indentation(void **state) {
    cfg_t *cfg = load_ok("\xEF\xBB\xBF[server]\r\n"
                         "root = www\r\n"
                         "   listen = 127.0.0.1:81\r\n"
                         "        listen = 127.0.0.1:82\r\n" /* indented: not a continuation */
                         "logLevel = warn");                 /* no final newline */
    assert_int_equal(cfg->server.n_listen, 2);
    assert_int_equal(cfg->server.listen[1].port, 82);
    assert_int_equal(cfg->server.log_level, LOG_LEVEL_WARN);
    cfg_free(cfg);
}

static void test_case_insensitive_names(void **state) {
    cfg_t *cfg = load_ok("[SERVER]\nROOT = www\nlogLEVEL = Error\nSymLinks = FOLLOW\n"
                         "[FastCGI:Php]\nfullpath = /bin/sh\nPROTOCOL = NamedPipe\n"
                         "StdErrMode = returngeneric500\nFlushNamedPipe = ON\n"
                         "[Handler:h]\nPath = *\nscriptprocessor = Php\n");
    assert_int_equal(cfg->server.log_level, LOG_LEVEL_ERROR);
    assert_int_equal(cfg->server.site.symlinks, CFG_SYMLINKS_FOLLOW);
    assert_non_null(cfg_find_app(cfg, "Php"));
    assert_null(cfg_find_app(cfg, "php")); /* section names are case-sensitive */
    assert_int_equal(cfg->apps[0].protocol, CFG_PROTOCOL_UNIX);
    assert_int_equal(cfg->apps[0].stderr_mode, CFG_STDERR_GENERIC_500);
    assert_true(cfg->apps[0].flush_named_pipe);
    cfg_free(cfg);
    /* The same key in two spellings is still a duplicate. */
    expect_error(BASE "Root = www\n",
                 "t.conf:3: duplicate key 'root' in [server] (first given at line 2)");
}

static void test_long_lines(void **state) {
    size_t sizes[] = {150, 201, 300, 5000, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *val = repeat('v', sizes[i]);
        char *arg = repeat('a', sizes[i]);
        char *text = xasprintf(BASE "[fastcgi:a]\nfullPath = /bin/sh\nenv = LONG=%s  ; comment\n"
                                    "arguments = \"%s\" x\nmaxInstances = 3\n",
                               val, arg);
        cfg_t *cfg = load_ok(text);
        const cfg_app_t *a = &cfg->apps[0];
        assert_int_equal(strlen(a->env[0]), 5 + sizes[i]);
        assert_string_equal(a->env[0] + 5, val);
        assert_string_equal(a->argv[1], arg);
        assert_string_equal(a->argv[2], "x");
        assert_int_equal(a->max_instances, 3);
        cfg_free(cfg);
        free(text);
        free(arg);
        free(val);
    }
}

/* Line numbers stay right after long lines (delivered to inih in several pieces). */
static void test_line_numbers_after_long_lines(void **state) {
    char *val = repeat('v', 5000);
    char *text = xasprintf(BASE "[fastcgi:a]\nfullPath = /bin/sh\nenv = A=%s\nenv = B=%s\n"
                                "bogus = 1\n",
                           val, val);
    expect_errors(text, "t.conf:7: unknown key 'bogus' in [fastcgi:a]", NULL);
    free(text);
    free(val);
}

static void test_overlong_line(void **state) {
    char *val = repeat('v', 1024 * 1024 + 1);
    char *text = xasprintf(BASE "[fastcgi:a]\nfullPath = /bin/sh\nenv = A=%s\nfoo = 1\n", val);
    expect_errors(text, "t.conf:5: the line is longer than 1048576 bytes",
                  "t.conf:6: unknown key 'foo' in [fastcgi:a]", NULL);
    free(text);
    free(val);
}

/* ------------------------------------------------------------------------------------------ */
/* Errors */

static void test_error_unknown_key(void **state) {
    expect_errors(BASE "foo = 1\n[fastcgi:php]\nfullPath = /bin/sh\nmaxInstance = 2\n"
                       "[handler:h]\npath = *\nscriptProcessor = php\nfullPath = /bin/sh\n",
                  "t.conf:3: unknown key 'foo' in [server]",
                  "t.conf:6: unknown key 'maxInstance' in [fastcgi:php]",
                  "t.conf:10: unknown key 'fullPath' in [handler:h]", NULL);
}

static void test_error_bad_numbers(void **state) {
    const char *app = BASE "[fastcgi:a]\nfullPath = /bin/sh\n";
    struct {
        const char *line, *msg;
    } cases[] = {
        {"maxInstances = -3", "maxInstances: '-3' is not a whole number from 0 to 10000"},
        {"maxInstances = 10001", "maxInstances: '10001' is not a whole number from 0 to 10000"},
        {"maxInstances = 1e3", "maxInstances: '1e3' is not a whole number from 0 to 10000"},
        {"maxInstances = +5", "maxInstances: '+5' is not a whole number from 0 to 10000"},
        {"maxInstances =", "maxInstances: '' is not a whole number from 0 to 10000"},
        {"queueLength = 99999999999999999999999",
         "queueLength: '99999999999999999999999' is not a whole number from 0 to 10000000"},
        {"activityTimeout = 0", "activityTimeout: '0' is not a whole number from 1 to 86400"},
        {"requestTimeout = 604801",
         "requestTimeout: '604801' is not a whole number from 1 to 604800"},
        {"idleTimeout = 604801", "idleTimeout: '604801' is not a whole number from 0 to 604800"},
        {"instanceMaxRequests = 10000001",
         "instanceMaxRequests: '10000001' is not a whole number from 0 to 10000000"},
        {"rapidFailsPerMinute = x",
         "rapidFailsPerMinute: 'x' is not a whole number from 0 to 1000000"},
        {"signalBeforeTerminateSeconds = 3601",
         "signalBeforeTerminateSeconds: '3601' is not a whole number from 0 to 3600"},
        {"flushNamedPipe = maybe", "flushNamedPipe: 'maybe' is not a boolean (true or false)"},
        {"protocol = udp", "protocol: 'udp' is not one of unix, tcp"},
        {"stderrMode = Ignore",
         "stderrMode: 'Ignore' is not one of ReturnStdErrIn500, ReturnGeneric500, "
         "IgnoreAndReturn200, TerminateProcess"},
        {"responseHeaders = loose", "responseHeaders: 'loose' is not one of relaxed, strict"},
        {"preforkChildren = 257", "preforkChildren: '257' is not a whole number from 0 to 256"},
        /* SPEC 4.9b: a group of one is no group; the server sets PHP_FCGI_CHILDREN itself */
        {"preforkChildren = 1", "preforkChildren = 1: 0 (one process per socket) or at least 2 "
                                "(children per process)"},
        {"preforkChildren = 4\nenv = PHP_FCGI_CHILDREN=8",
         "preforkChildren and env PHP_FCGI_CHILDREN together: the server sets PHP_FCGI_CHILDREN "
         "to preforkChildren itself; remove it from env"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = xasprintf("%s%s\n", app, cases[i].line);
        char *msg = xasprintf("t.conf:5: %s", cases[i].msg);
        expect_errors(text, msg, NULL);
        free(msg);
        free(text);
    }
}

static void test_error_bad_server_values(void **state) {
    struct {
        const char *line, *msg;
    } cases[] = {
        {"logLevel = verbose", "logLevel: 'verbose' is not one of error, warn, info, debug"},
        {"symlinks = never", "symlinks: 'never' is not one of insideRoot, ifOwnerMatch, follow"},
        {"maxBodyBytes = 2t",
         "maxBodyBytes: '2t' is not a size from 0 to 1099511627776 bytes (a whole number, "
         "optionally followed by k, m or g)"},
        {"maxBodyBytes = 1025g",
         "maxBodyBytes: '1025g' is not a size from 0 to 1099511627776 bytes (a whole number, "
         "optionally followed by k, m or g)"},
        {"maxUrlBytes = 15",
         "maxUrlBytes: '15' is not a size from 16 to 1048576 bytes (a whole number, optionally "
         "followed by k, m or g)"},
        {"maxHeaderBytes = 18446744073709551615k",
         "maxHeaderBytes: '18446744073709551615k' is not a size from 256 to 16777216 bytes (a "
         "whole number, optionally followed by k, m or g)"},
        {"headerTimeout = 0", "headerTimeout: '0' is not a whole number from 1 to 3600"},
        {"keepAliveTimeout = 86401",
         "keepAliveTimeout: '86401' is not a whole number from 1 to 86400"},
        {"shutdownTimeout = -1", "shutdownTimeout: '-1' is not a whole number from 0 to 86400"},
        {"bodyTimeout = 0", "bodyTimeout: '0' is not a whole number from 1 to 86400"},
        {"sendTimeout = 1m", "sendTimeout: '1m' is not a whole number from 1 to 86400"},
        {"statusPath = status", "statusPath: 'status' is not a URL path (it must start with '/')"},
        {"statusPath = /a b", "statusPath: '/a b' is not a URL path (no spaces, '?' or '#')"},
        {"user = a b", "user: 'a b' is not a user name"},
        {"user = fhtest-no-such-user", "user: no such user 'fhtest-no-such-user'"},
        {"index = a/index.php", "index: 'a/index.php' is not a file name"},
        {"index = ..", "index: '..' is not a file name"},
        {"statusAllow = 10.0.0.0/33",
         "statusAllow: '10.0.0.0/33' is not an IPv4 or IPv6 address or CIDR range"},
        {"statusAllow = ::1 localhost",
         "statusAllow: 'localhost' is not an IPv4 or IPv6 address or CIDR range"},
        {"statusAllow = ::/129",
         "statusAllow: '::/129' is not an IPv4 or IPv6 address or CIDR range"},
        {"statusAllow = 1.2.3.4/",
         "statusAllow: '1.2.3.4/' is not an IPv4 or IPv6 address or CIDR range"},
        {"runtimeDir =", "runtimeDir: a path is required"},
        {"tempDir = /nonexistent-fcgihost-dir",
         "tempDir: '/nonexistent-fcgihost-dir': No such file or directory"},
        {"tempDir = /etc/passwd", "tempDir: '/etc/passwd' is not a directory"},
        {"maxConnections = 0", "maxConnections: '0' is not a whole number from 1 to 10000000"},
        {"maxConnectionsPerIp = x",
         "maxConnectionsPerIp: 'x' is not a whole number from 0 to 10000000"},
        {"accessLog =", "accessLog: a path is required"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = xasprintf(BASE "%s\n", cases[i].line);
        char *msg = xasprintf("t.conf:3: %s", cases[i].msg);
        expect_errors(text, msg, NULL);
        free(msg);
        free(text);
    }
    char *longsock = repeat('s', 120);
    char *text = xasprintf(BASE "controlSocket = /%s\n", longsock);
    char *msg = xasprintf("t.conf:3: controlSocket: '/%s' is too long for a unix socket path "
                          "(at most 107 bytes)",
                          longsock);
    expect_errors(text, msg, NULL);
    free(msg);
    free(text);
    free(longsock);
}

static void test_error_listen(void **state) {
    const char *bad[] = {"8080",           "localhost:8080",  "127.0.0.1",      "127.0.0.1:0",
                         "127.0.0.1:65536", "127.0.0.1:80x",  "::1:8080",       "[::1]8080",
                         "[::1]:",         "[127.0.0.1]:80", "1.2.3.4.5:80",   "",
                         "[::1:80",        "*:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *text = xasprintf(BASE "listen = %s\n", bad[i]);
        char *msg = xasprintf("t.conf:3: listen: '%s' is not an address: use a.b.c.d:PORT, "
                              "[IPv6]:PORT, *:PORT or unix:/path (PORT from 1 to 65535)",
                              bad[i]);
        expect_errors(text, msg, NULL);
        free(msg);
        free(text);
    }
    expect_errors(BASE "listen = unix:\n", "t.conf:3: listen: a path is required", NULL);
    expect_errors(BASE "listen = 127.0.0.1:80\nlisten = 127.0.0.1:81\nlisten = 127.0.0.1:80\n",
                  "t.conf:5: listen: '127.0.0.1:80' is already given at line 3", NULL);
    expect_errors(BASE "listen = [::1]:80\nlisten = [0::1]:80\n",
                  "t.conf:4: listen: '[0::1]:80' is already given at line 3", NULL);
    expect_errors(BASE "listen = unix:/a/s\nlisten = unix:/a/./s\n",
                  "t.conf:4: listen: 'unix:/a/./s' is already given at line 3", NULL);
    char *longsock = repeat('s', 110);
    char *text = xasprintf(BASE "listen = unix:%s\n", longsock);
    char *msg = xasprintf("t.conf:3: listen: '%s' is too long for a unix socket path (at most "
                          "107 bytes)",
                          longsock);
    expect_errors(text, msg, NULL);
    free(msg);
    free(text);
    free(longsock);
}

static void test_error_missing_required(void **state) {
    expect_errors("[server]\nindex = x\n", "t.conf:1: missing required key 'root' in [server]",
                  NULL);
    expect_errors(BASE "\n[fastcgi:a]\narguments = x\n[handler:h]\nverb = GET\n",
                  "t.conf:4: missing required key 'fullPath' in [fastcgi:a]",
                  "t.conf:6: missing required key 'path' in [handler:h]",
                  "t.conf:6: missing required key 'scriptProcessor' in [handler:h]", NULL);
    /* An empty section is still a section. */
    expect_errors(BASE "[fastcgi:a]\n", "t.conf:3: missing required key 'fullPath' in [fastcgi:a]",
                  NULL);
    expect_errors("", "t.conf:1: missing [server] section (root is required)", NULL);
    expect_errors("[fastcgi:a]\nfullPath = /bin/sh\n",
                  "t.conf:1: missing [server] section (root is required)", NULL);
}

static void test_error_duplicates(void **state) {
    expect_errors(BASE "index = a\nroot = www\nindex = b\n",
                  "t.conf:4: duplicate key 'root' in [server] (first given at line 2)",
                  "t.conf:5: duplicate key 'index' in [server] (first given at line 3)", NULL);
    expect_errors(BASE "[fastcgi:a]\nfullPath = /bin/sh\n[server]\nroot = www\n"
                       "[fastcgi:a]\nfullPath = /bin/sh\n[handler:h]\npath = *\n"
                       "scriptProcessor = a\n[handler:h]\npath = x\nscriptProcessor = a\n",
                  "t.conf:5: duplicate section [server] (first at line 1)",
                  "t.conf:7: duplicate section [fastcgi:a] (first at line 3)",
                  "t.conf:12: duplicate section [handler:h] (first at line 9)", NULL);
    /* A name used for an application and a handler is fine. */
    cfg_t *cfg = load_ok(BASE "[fastcgi:a]\nfullPath = /bin/sh\n[handler:a]\npath = *\n"
                              "scriptProcessor = a\n");
    cfg_free(cfg);
    expect_errors(BASE "[fastcgi:a]\nfullPath = /bin/sh\nenv = A=1\nenv = B=2\nenv = A=3\n",
                  "t.conf:7: env: A is already set in this section", NULL);
}

static void test_error_sections(void **state) {
    expect_errors(BASE "[foo]\nbar = 1\n[fastcgi]\nfullPath = /bin/sh\n[fastcgi: ]\n"
                       "[server:main]\n[handler:]\n[fastcgi:bad name]\n[fastcgi:.hidden]\n"
                       "[handler:PHP via FastCGI]\npath = *.php\nscriptProcessor = /bin/sh\n"
                       "[fastcgi:sh]\nfullPath = /bin/sh\n",
                  "t.conf:3: unknown section [foo]: expected [server], [fastcgi:NAME], "
                  "[handler:NAME], [site:NAME], [rewrite:NAME] or [headers:NAME]",
                  "t.conf:5: [fastcgi:NAME] needs a name", "t.conf:7: [fastcgi:NAME] needs a name",
                  "t.conf:8: [server] takes no name", "t.conf:9: [handler:NAME] needs a name",
                  "t.conf:10: 'bad name' is not a valid application name (up to 64 letters, "
                  "digits, '_', '.' and '-', not starting with '.' or '-')",
                  "t.conf:11: '.hidden' is not a valid application name (up to 64 letters, "
                  "digits, '_', '.' and '-', not starting with '.' or '-')",
                  NULL);
    char *name = repeat('n', 65);
    char *text = xasprintf(BASE "[fastcgi:%s]\nfullPath = /bin/sh\n", name);
    char *msg = xasprintf("t.conf:3: '%s' is not a valid application name (up to 64 letters, "
                          "digits, '_', '.' and '-', not starting with '.' or '-')",
                          name);
    expect_errors(text, msg, NULL);
    free(msg);
    free(text);
    free(name);
}

static void test_error_syntax(void **state) {
    expect_errors("root = www\n[server]\nroot = www\njust some words\n[fastcgi:a\n"
                  "fullPath = /bin/sh\n[handler:h] x\npath = *\n= value\nkey ; = value\n",
                  "t.conf:1: key 'root' is outside of any section",
                  "t.conf:4: syntax error: expected 'key = value', '[section]' or a comment",
                  "t.conf:5: syntax error: '[' without ']'",
                  "t.conf:7: syntax error: unexpected text after ']'",
                  "t.conf:9: syntax error: a key name is missing before '='",
                  "t.conf:10: syntax error: expected 'key = value', '[section]' or a comment",
                  NULL);
}

static void test_error_paths(void **state) {
    char *msg = xasprintf("t.conf:2: root: '%s/nope': No such file or directory", tmpdir);
    expect_errors("[server]\nroot = nope\n", msg, NULL);
    free(msg);
    msg = xasprintf("t.conf:2: root: '%s/plain.txt' is not a directory", tmpdir);
    expect_errors("[server]\nroot = plain.txt\n", msg, NULL);
    free(msg);
    expect_errors("[server]\nroot =\n", "t.conf:2: root: a path is required", NULL);

    msg = xasprintf("t.conf:4: fullPath: '%s/nope': No such file or directory", tmpdir);
    expect_errors(BASE "[fastcgi:a]\nfullPath = nope\n", msg, NULL);
    free(msg);
    msg = xasprintf("t.conf:4: fullPath: '%s/plain.txt' is not executable", tmpdir);
    expect_errors(BASE "[fastcgi:a]\nfullPath = plain.txt\n", msg, NULL);
    free(msg);
    msg = xasprintf("t.conf:4: fullPath: '%s/sub' is not a regular file", tmpdir);
    expect_errors(BASE "[fastcgi:a]\nfullPath = sub\n", msg, NULL);
    free(msg);
    expect_errors(BASE "[fastcgi:a]\nfullPath = \n", "t.conf:4: fullPath: a path is required",
                  NULL);
}

static void test_error_app_values(void **state) {
    const char *app = BASE "[fastcgi:a]\nfullPath = /bin/sh\n";
    struct {
        const char *line, *msg;
    } cases[] = {
        {"arguments = -c \"echo hi",
         "arguments: '-c \"echo hi' has a '\"' without its closing '\"'"},
        {"arguments = \"a\\\"", "arguments: '\"a\\\"' has a '\"' without its closing '\"'"},
        {"env = NOEQUALS",
         "env: 'NOEQUALS' is not NAME=VALUE with NAME made of letters, digits and '_'"},
        {"env = BAD-NAME=x",
         "env: 'BAD-NAME=x' is not NAME=VALUE with NAME made of letters, digits and '_'"},
        {"env = 1X=x", "env: '1X=x' is not NAME=VALUE with NAME made of letters, digits and '_'"},
        {"env = =x", "env: '=x' is not NAME=VALUE with NAME made of letters, digits and '_'"},
        {"env = _FCGI_X_PIPE_=/x", "env: _FCGI_X_PIPE_ is set by fcgihost itself"},
        {"utf8ServerVariables = * PATH_INFO",
         "utf8ServerVariables: '*' is not a server variable name (use * alone for all)"},
        {"utf8ServerVariables = PATH-INFO",
         "utf8ServerVariables: 'PATH-INFO' is not a server variable name (use * alone for all)"},
        {"user = a:b", "user: 'a:b' is not a user name"},
        {"user = 4294967290", "user: no user with uid 4294967290 in the passwd database"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = xasprintf("%s%s\n", app, cases[i].line);
        char *msg = xasprintf("t.conf:5: %s", cases[i].msg);
        expect_errors(text, msg, NULL);
        free(msg);
        free(text);
    }
}

static void test_error_handler_values(void **state) {
    const char *pre = BASE "[fastcgi:a]\nfullPath = /bin/sh\n[handler:h]\n";
    struct {
        const char *lines, *msg;
    } cases[] = {
        {"path = app/*.php\nscriptProcessor = a",
         "t.conf:6: path: 'app/*.php' is neither a file-name pattern (\"*.php\") nor a URL prefix "
         "(\"/app/\")"},
        {"path = *.p p\nscriptProcessor = a",
         "t.conf:6: path: '*.p p' is neither a file-name pattern (\"*.php\") nor a URL prefix "
         "(\"/app/\")"},
        {"path =\nscriptProcessor = a",
         "t.conf:6: path: a file-name pattern or a URL prefix is required"},
        {"path = *\nverb = G@T\nscriptProcessor = a",
         "t.conf:7: verb: 'G@T' is not a method name (use * alone for all)"},
        {"path = *\nverb = GET,*\nscriptProcessor = a",
         "t.conf:7: verb: '*' is not a method name (use * alone for all)"},
        {"path = *\nverb = ,\nscriptProcessor = a",
         "t.conf:7: verb: '*' or a list of methods such as GET,HEAD,POST is required"},
        {"path = *\nscriptProcessor =", "t.conf:7: scriptProcessor: a value is required"},
        {"path = *\nscriptProcessor = b",
         "t.conf:7: scriptProcessor: there is no [fastcgi:b] section"},
        {"path = *\nscriptProcessor = A",
         "t.conf:7: scriptProcessor: there is no [fastcgi:A] section"},
        {"path = *\nscriptProcessor = /bin/sh|-x",
         "t.conf:7: scriptProcessor: no [fastcgi:NAME] section has fullPath '/bin/sh' and "
         "arguments '-x'"},
        {"path = *\nscriptProcessor = /bin/bash",
         "t.conf:7: scriptProcessor: no [fastcgi:NAME] section has fullPath '/bin/bash' and "
         "arguments ''"},
        {"path = *\nresourceType = file\nresponseBufferLimit = 2g\nscriptProcessor = a",
         "t.conf:8: responseBufferLimit: '2g' is not a size from 0 to 1073741824 bytes (a whole "
         "number, optionally followed by k, m or g)"},
        {"path = *\nresourceType = Files\nscriptProcessor = a",
         "t.conf:7: resourceType: 'Files' is not one of File, Directory, Either, Unspecified"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = xasprintf("%s%s\n", pre, cases[i].lines);
        expect_errors(text, cases[i].msg, NULL);
        free(text);
    }
}

/* Every problem is reported, in line order, not only the first. */
static void test_all_errors_collected(void **state) {
    expect_errors("[handler:h]\npath = *\nscriptProcessor = missing\n"
                  "[server]\nroot = www\nmaxUrlBytes = big\nwhat = 1\n"
                  "[fastcgi:a]\nmaxInstances = -3\nidleTimeout = 1\nidleTimeout = 2\n",
                  "t.conf:3: scriptProcessor: there is no [fastcgi:missing] section",
                  "t.conf:6: maxUrlBytes: 'big' is not a size from 16 to 1048576 bytes (a whole "
                  "number, optionally followed by k, m or g)",
                  "t.conf:7: unknown key 'what' in [server]",
                  "t.conf:8: missing required key 'fullPath' in [fastcgi:a]",
                  "t.conf:9: maxInstances: '-3' is not a whole number from 0 to 10000",
                  "t.conf:11: duplicate key 'idleTimeout' in [fastcgi:a] (first given at line 10)",
                  NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Values */

static void test_script_processor_forms(void **state) {
    /* Forward references, by name and by "fullPath|arguments", in file order. */
    char *text = xasprintf("[handler:one]\npath = *.php\nscriptProcessor = second\n"
                           "[handler:two]\npath = /api/\nscriptProcessor = %s|-x  -y\n"
                           "[handler:three]\npath = *.sh\nscriptProcessor = ./app.sh\n"
                           "[handler:four]\npath = *\nscriptProcessor = /bin/sh | -c \"x\"\n"
                           BASE
                           "[fastcgi:first]\nfullPath = app.sh\n"
                           "[fastcgi:second]\nfullPath = %s\narguments = -x  -y\n"
                           "[fastcgi:third]\nfullPath = /bin/sh\narguments = -c \"x\"\n",
                           app_sh, app_sh);
    cfg_t *cfg = load_ok(text);
    free(text);
    assert_int_equal(cfg->n_handlers, 4);
    assert_string_equal(cfg->handlers[0].name, "one");
    assert_int_equal(cfg->handlers[0].app_index, 1);
    assert_string_equal(cfg->handlers[1].name, "two");
    assert_int_equal(cfg->handlers[1].app_index, 1);
    assert_int_equal(cfg->handlers[2].app_index, 0); /* "./app.sh" alone: empty arguments */
    assert_int_equal(cfg->handlers[3].app_index, 2);
    assert_string_equal(cfg->apps[0].full_path, app_sh);
    assert_string_equal(cfg->apps[1].argv[1], "-x");
    assert_string_equal(cfg->apps[1].argv[2], "-y");
    cfg_free(cfg);
    /* IIS matches the arguments exactly. */
    text = xasprintf(BASE "[fastcgi:a]\nfullPath = %s\narguments = -x -y\n"
                          "[handler:h]\npath = *\nscriptProcessor = %s|-x  -y\n",
                     app_sh, app_sh);
    char *msg = xasprintf("t.conf:8: scriptProcessor: no [fastcgi:NAME] section has fullPath "
                          "'%s' and arguments '-x  -y'",
                          app_sh);
    expect_errors(text, msg, NULL);
    free(msg);
    free(text);
    /* Two sections with the same command: "fullPath|arguments" is ambiguous, the name is not. */
    expect_errors(BASE "[fastcgi:a]\nfullPath = /bin/sh\n[fastcgi:b]\nfullPath = /bin/sh\n"
                       "[handler:h]\npath = *\nscriptProcessor = /bin/sh|\n"
                       "[handler:i]\npath = *\nscriptProcessor = b\n",
                  "t.conf:9: scriptProcessor: [fastcgi:a] and [fastcgi:b] both have fullPath "
                  "'/bin/sh' and arguments '': give the section's name instead",
                  NULL);
}

static void test_relative_paths(void **state) {
    cfg_t *cfg = load_ok("[server]\nroot = ./sub/../www/\nlisten = unix:sub/http.sock\n"
                         "accessLog = logs//access.log\nerrorLog = ./err.log\n"
                         "controlSocket = ctl.sock\nruntimeDir = run/\n"
                         "[fastcgi:a]\nfullPath = ./app.sh\nmonitorChangesTo = ../php.ini\n"
                         "[fastcgi:b]\nfullPath = /bin/sh\nmonitorChangesTo = none\n");
    const cfg_server_t *s = &cfg->server;
    char *expect;
    assert_string_equal(s->site.root, www); /* canonical */
    expect = tmp_path("sub/http.sock");
    assert_string_equal(s->listen[0].path, expect);
    assert_string_equal(s->listen[0].text, "unix:sub/http.sock");
    free(expect);
    expect = tmp_path("logs/access.log");
    assert_string_equal(s->site.access_log, expect);
    free(expect);
    expect = tmp_path("err.log");
    assert_string_equal(s->error_log, expect);
    free(expect);
    expect = tmp_path("ctl.sock");
    assert_string_equal(s->control_socket, expect);
    free(expect);
    expect = tmp_path("run");
    assert_string_equal(s->runtime_dir, expect);
    free(expect);
    assert_string_equal(cfg->apps[0].full_path, app_sh);
    assert_string_equal(cfg->apps[0].argv[0], app_sh);
    expect = tmp_path("../php.ini"); /* ".." is kept: symlinks make folding it unsafe */
    assert_string_equal(cfg->apps[0].monitor_changes_to, expect);
    free(expect);
    assert_null(cfg->apps[1].monitor_changes_to);
    cfg_free(cfg);

    /* The directory argument of cfg_load_string may itself be relative to the working dir. */
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir(tmpdir), 0);
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg = cfg_load_string("[server]\nroot = ../www\n", "x.conf", "sub", &d);
    assert_non_null(cfg);
    assert_string_equal(cfg->server.site.root, www);
    expect = tmp_path("sub");
    assert_string_equal(cfg->dir, expect);
    free(expect);
    cfg_free(cfg);
    cfg_diag_dispose(&d);
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
}

static void test_listen_forms(void **state) {
    cfg_t *cfg = load_ok(BASE "listen = *:80\nlisten = [::]:8080\nlisten = [0:0::1]:81\n"
                              "listen = 192.168.1.10:65535\n"
                              "listen = unix:/run/fcgihost/http.sock\n");
    const cfg_server_t *s = &cfg->server;
    assert_int_equal(s->n_listen, 5);
    assert_int_equal(s->listen[0].kind, CFG_LISTEN_TCP4);
    assert_string_equal(s->listen[0].host, "0.0.0.0");
    assert_string_equal(s->listen[0].text, "*:80");
    assert_int_equal(s->listen[1].kind, CFG_LISTEN_TCP6);
    assert_string_equal(s->listen[1].host, "::");
    assert_int_equal(s->listen[1].port, 8080);
    assert_string_equal(s->listen[2].host, "::1");
    assert_int_equal(s->listen[2].port, 81);
    assert_string_equal(s->listen[3].host, "192.168.1.10");
    assert_int_equal(s->listen[3].port, 65535);
    assert_int_equal(s->listen[4].kind, CFG_LISTEN_UNIX);
    assert_string_equal(s->listen[4].path, "/run/fcgihost/http.sock");
    assert_int_equal(s->listen[4].line, 7);
    cfg_free(cfg);
    /* Scoped IPv6 addresses are not accepted (inet_pton has no scope ids). */
    expect_error(BASE "listen = [fe80::1%eth0]:80\n",
                 "t.conf:3: listen: '[fe80::1%eth0]:80' is not an address: use a.b.c.d:PORT, "
                 "[IPv6]:PORT, *:PORT or unix:/path (PORT from 1 to 65535)");
    /* Options after the address: proxy. */
    cfg = load_ok(BASE "listen = 127.0.0.1:8080   proxy\nlisten = unix:/run/p.sock proxy\n"
                       "trustedProxies = 10.0.0.0/8, ::1\n");
    assert_string_equal(cfg->server.listen[0].text, "127.0.0.1:8080");
    assert_true(cfg->server.listen[0].proxy);
    assert_true(cfg->server.listen[1].proxy);
    assert_int_equal(cfg->server.n_trusted_proxies, 2);
    assert_int_equal(cfg->server.trusted_proxies[1].family, AF_INET6);
    cfg_free(cfg);
    expect_error(BASE "listen = 127.0.0.1:8080 proxy tsl\n",
                 "t.conf:3: listen: 'tsl' after the address of listen is not an option: use tls, "
                 "h2c or proxy");
    cfg = load_ok(BASE "listen = 127.0.0.1:8080 h2c\nlisten = 127.0.0.1:8443 tls\n"
                       "tlsCertificate = /etc/hostname\nhttp2 = off\nhttp2MaxStreams = 7\n");
    assert_true(cfg->server.listen[0].h2c && !cfg->server.listen[0].tls);
    assert_true(cfg->server.listen[1].tls && !cfg->server.listen[1].h2c);
    assert_false(cfg->server.http2);
    assert_int_equal(cfg->server.http2_max_streams, 7);
    cfg_free(cfg);
    expect_error(BASE "http2MaxStreams = 0\n",
                 "t.conf:3: http2MaxStreams: '0' is not a whole number from 1 to 10000");
    expect_error(BASE "listen = 127.0.0.1:8080 h2c\n[site:a]\nhosts = *\nroot = www\n"
                      "listen = 127.0.0.1:8080\n",
                 "t.conf:7: listen: 127.0.0.1:8080 is also given with the h2c option at line 3: "
                 "one address is one socket, give it the same options everywhere");
    expect_error(BASE "trustedProxies = 10.0.0.0/33\n",
                 "t.conf:3: trustedProxies: '10.0.0.0/33' is not an IPv4 or IPv6 address or CIDR "
                 "range");
    /* One address, one socket: its options agree wherever it is named. */
    expect_error("[server]\nlisten = 127.0.0.1:8080 proxy\n[site:a]\nhosts = *\nroot = /tmp\n"
                 "listen = 127.0.0.1:8080\n",
                 "t.conf:6: listen: 127.0.0.1:8080 is also given with the proxy option at line 2: "
                 "one address is one socket, give it the same options everywhere");
}

static void test_deny_forms(void **state) {
    cfg_t *cfg = load_ok(BASE "deny = /.git/ /wp-config.php  *.bak /up/*.php\ndeny = /cache//\n");
    const cfg_denies_t *d = &cfg->sites[0].deny;
    assert_int_equal(d->n, 5);
    assert_string_equal(d->v[0].pattern, "/.git");
    assert_int_equal(d->v[0].kind, CFG_DENY_PREFIX);
    assert_string_equal(d->v[1].pattern, "/wp-config.php");
    assert_int_equal(d->v[2].kind, CFG_DENY_NAME);
    assert_int_equal(d->v[3].kind, CFG_DENY_PATH_GLOB);
    assert_string_equal(d->v[4].pattern, "/cache");
    cfg_free(cfg);
    expect_error(BASE "deny = /.git/ /\n",
                 "t.conf:3: deny: '/' is neither a URL prefix (\"/.git/\"), a path pattern "
                 "(\"/uploads/*.php\") nor a file-name pattern (\"*.bak\")");
}

static void test_status_allow(void **state) {
    cfg_t *cfg = load_ok(BASE "statusAllow = 10.1.2.3/8, 192.168.0.7\t2001:db8::ff/32,::1/0 "
                              "0.0.0.0/0 172.16.255.255/12\n");
    const cfg_server_t *s = &cfg->server;
    assert_int_equal(s->n_status_allow, 6);
    assert_int_equal(s->status_allow[0].family, AF_INET);
    assert_int_equal(s->status_allow[0].prefix, 8);
    assert_memory_equal(s->status_allow[0].addr, "\x0a\0\0\0", 4); /* host bits cleared */
    assert_int_equal(s->status_allow[1].prefix, 32);
    assert_memory_equal(s->status_allow[1].addr, "\xc0\xa8\x00\x07", 4);
    assert_int_equal(s->status_allow[2].family, AF_INET6);
    assert_int_equal(s->status_allow[2].prefix, 32);
    assert_memory_equal(s->status_allow[2].addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_int_equal(s->status_allow[3].prefix, 0);
    assert_memory_equal(s->status_allow[3].addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_int_equal(s->status_allow[4].prefix, 0);
    assert_memory_equal(s->status_allow[5].addr, "\xac\x10\0\0", 4);
    assert_int_equal(s->status_allow[5].prefix, 12);
    cfg_free(cfg);
    cfg = load_ok(BASE "statusAllow =\nstatusPath = off\n");
    assert_int_equal(cfg->server.n_status_allow, 0);
    assert_null(cfg->server.status_allow);
    assert_string_equal(cfg->server.status_path, "");
    cfg_free(cfg);
}

static void test_arguments_split(void **state) {
    cfg_t *cfg = load_ok(BASE "[fastcgi:a]\nfullPath = /bin/sh\n"
                              "arguments = \t-d  \"a b\"\t\"\" x\"y z\"w "
                              "\"q\\\"uote\\\\\" c:\\dir \"\\n\"\n"
                              "[fastcgi:b]\nfullPath = /bin/sh\narguments =   \n");
    char **v = cfg->apps[0].argv;
    const char *expect[] = {"/bin/sh", "-d", "a b", "", "xy zw", "q\"uote\\", "c:\\dir", "\\n"};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        assert_string_equal(v[i], expect[i]);
    assert_null(v[sizeof(expect) / sizeof(expect[0])]);
    assert_string_equal(cfg->apps[1].argv[0], "/bin/sh");
    assert_null(cfg->apps[1].argv[1]);
    cfg_free(cfg);
}

static void test_sizes_and_booleans(void **state) {
    cfg_t *cfg = load_ok(BASE "maxUrlBytes = 1m\nmaxHeaderBytes = 64K\nmaxBodyBytes = 0\n"
                              "[fastcgi:a]\nfullPath = /bin/sh\nflushNamedPipe = 1\n"
                              "[fastcgi:b]\nfullPath = /bin/sh\nflushNamedPipe = On\n"
                              "[fastcgi:c]\nfullPath = /bin/sh\nflushNamedPipe = no\n"
                              "[fastcgi:d]\nfullPath = /bin/sh\nflushNamedPipe = TRUE\n"
                              "[handler:h]\npath = *\nscriptProcessor = a\n"
                              "responseBufferLimit = 1G\n");
    assert_int_equal(cfg->server.max_url_bytes, 1048576);
    assert_int_equal(cfg->server.max_header_bytes, 65536);
    assert_int_equal(cfg->server.site.max_body_bytes, 0);
    assert_true(cfg->apps[0].flush_named_pipe);
    assert_true(cfg->apps[1].flush_named_pipe);
    assert_false(cfg->apps[2].flush_named_pipe);
    assert_true(cfg->apps[3].flush_named_pipe);
    assert_int_equal(cfg->handlers[0].response_buffer_limit, 1073741824);
    cfg_free(cfg);
    expect_error(BASE "maxBodyBytes = 10 m\n",
                 "t.conf:3: maxBodyBytes: '10 m' is not a size from 0 to 1099511627776 bytes (a "
                 "whole number, optionally followed by k, m or g)");
    expect_error(BASE "maxBodyBytes = 10kb\n",
                 "t.conf:3: maxBodyBytes: '10kb' is not a size from 0 to 1099511627776 bytes (a "
                 "whole number, optionally followed by k, m or g)");
}

static void test_utf8_vars_and_user(void **state) {
    expect_error(BASE "user = none\n",
                 "t.conf:3: user: 'none' is not a user: when started as root the server drops to "
                 "www-data unless told otherwise; write user = root to keep root");
    cfg_t *cfg = load_ok(BASE
                              "[fastcgi:a]\nfullPath = /bin/sh\nutf8ServerVariables =\n"
                              "user = 33\n[fastcgi:b]\nfullPath = /bin/sh\n"
                              "utf8ServerVariables = ,path_info,,\n");
    assert_string_equal(cfg->server.user, "www-data"); /* the default, not looked up here */
    assert_false(cfg->apps[0].utf8_all);
    assert_int_equal(cfg->apps[0].n_utf8_vars, 0);
    assert_string_equal(cfg->apps[0].user, "33");
    assert_int_equal(cfg->apps[1].n_utf8_vars, 1);
    assert_string_equal(cfg->apps[1].utf8_vars[0], "PATH_INFO");
    cfg_free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* cfg_load from a file */

static void test_load_file(void **state) {
    char *path = tmp_path("sub/fcgihost.conf");
    const char *good = "[server]\nroot = ../www\nerrorLog = err.log\n";
    write_file(path, good, strlen(good), 0644);
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg_t *cfg = cfg_load(path, &d);
    assert_non_null(cfg);
    assert_int_equal(d.n, 0);
    assert_string_equal(cfg->file, path);
    char *dir = tmp_path("sub");
    assert_string_equal(cfg->dir, dir);
    char *log = tmp_path("sub/err.log");
    assert_string_equal(cfg->server.error_log, log);
    free(log);
    cfg_free(cfg);

    /* Relative to the working directory; messages use the name as given. */
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir(dir), 0);
    const char bad[] = "[server]\nroot = ../www\nx\0y = 1\nfoo = 2\n";
    write_file(path, bad, sizeof(bad) - 1, 0644);
    assert_null(cfg_load("fcgihost.conf", &d));
    assert_int_equal(d.n, 2);
    assert_string_equal(d.msgs[0], "fcgihost.conf:3: the line contains a NUL byte");
    assert_string_equal(d.msgs[1], "fcgihost.conf:4: unknown key 'foo' in [server]");
    cfg_diag_dispose(&d);
    assert_int_equal(chdir(cwd), 0);
    free(cwd);

    /* Messages are appended to what the diag already holds. */
    assert_null(cfg_load("/nonexistent/fcgihost.conf", &d));
    assert_null(cfg_load(dir, &d));
    assert_int_equal(d.n, 2);
    assert_string_equal(d.msgs[0],
                        "/nonexistent/fcgihost.conf: cannot open: No such file or directory");
    char *msg = xasprintf("%s: read error: Is a directory", dir);
    assert_string_equal(d.msgs[1], msg);
    free(msg);
    cfg_diag_dispose(&d);
    /* A NULL diag is allowed. */
    assert_null(cfg_load("/nonexistent/fcgihost.conf", NULL));
    assert_null(cfg_load_string("[server]\n", "x", tmpdir, NULL));
    free(dir);
    free(path);
}

/* ------------------------------------------------------------------------------------------ */
/* Live settings */

static void test_set_live(void **state) {
    cfg_t *cfg = load_ok(BASE "[fastcgi:a]\nfullPath = /bin/sh\n");
    cfg_app_t *a = cfg_find_app(cfg, "a");
    char err[256];
    struct {
        const char *key, *value;
        const unsigned *field;
        unsigned want;
    } ok[] = {
        {"maxInstances", "16", &a->max_instances, 16},
        {"queueLength", "5", &a->queue_length, 5},
        {"instanceMaxRequests", "0", &a->instance_max_requests, 0},
        {"idleTimeout", "60", &a->idle_timeout, 60},
        {"activityTimeout", "10", &a->activity_timeout, 10},
        {"requestTimeout", "20", &a->request_timeout, 20},
        {"signalBeforeTerminateSeconds", "3", &a->signal_before_terminate_seconds, 3},
        {"MAXINSTANCES", "17", &a->max_instances, 17},
        {"minInstances", "3", &a->min_instances, 3},
        {"maxConcurrentStarts", "2", &a->max_concurrent_starts, 2},
        {"privateMemoryLimit", "65536", &a->private_memory_limit, 65536},
        {"slowRequestSeconds", "2", &a->slow_request_seconds, 2},
        {"preforkChildren", "4", &a->prefork_children, 4},
        {"preforkChildren", "0", &a->prefork_children, 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cfg_app_set_live(a, ok[i].key, ok[i].value, err, sizeof(err)), 0);
        assert_int_equal(*ok[i].field, ok[i].want);
    }
    assert_int_equal(cfg_app_set_live(a, "stderrMode", "IgnoreAndReturn200", err, sizeof(err)), 0);
    assert_int_equal(a->stderr_mode, CFG_STDERR_IGNORE_200);
    assert_int_equal(cfg_app_set_live(a, "recycleMode", "immediate", err, sizeof(err)), 0);
    assert_int_equal(a->recycle_mode, CFG_RECYCLE_IMMEDIATE);
    assert_int_equal(cfg_app_set_live(a, "recycleMode", "lukewarm", err, sizeof(err)), -1);
    assert_string_equal(err, "recycleMode: 'lukewarm' is not one of warm, immediate");
    assert_int_equal(a->recycle_mode, CFG_RECYCLE_IMMEDIATE);

    assert_int_equal(cfg_app_set_live(a, "maxInstances", "-3", err, sizeof(err)), -1);
    assert_string_equal(err, "maxInstances: '-3' is not a whole number from 0 to 10000");
    assert_int_equal(a->max_instances, 17); /* unchanged */
    assert_int_equal(cfg_app_set_live(a, "stderrMode", "x", err, sizeof(err)), -1);
    assert_string_equal(err, "stderrMode: 'x' is not one of ReturnStdErrIn500, ReturnGeneric500, "
                             "IgnoreAndReturn200, TerminateProcess");
    assert_int_equal(a->stderr_mode, CFG_STDERR_IGNORE_200);
    assert_int_equal(cfg_app_set_live(a, "protocol", "tcp", err, sizeof(err)), -1);
    assert_string_equal(err, "protocol cannot be changed on a running server: edit the "
                             "configuration and reload");
    assert_int_equal(a->protocol, CFG_PROTOCOL_UNIX);
    assert_int_equal(cfg_app_set_live(a, "root", "/", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown key 'root'");
    /* minInstances at most a non-zero maxInstances, from either side; refused changes undone */
    assert_int_equal(cfg_app_set_live(a, "minInstances", "18", err, sizeof(err)), -1);
    assert_string_equal(err, "minInstances: '18' refused: minInstances (18) is above "
                             "maxInstances (17): at most maxInstances processes may run");
    assert_int_equal(a->min_instances, 3);
    assert_int_equal(cfg_app_set_live(a, "maxInstances", "2", err, sizeof(err)), -1);
    assert_int_equal(a->max_instances, 17);
    assert_int_equal(cfg_app_set_live(a, "maxInstances", "0", err, sizeof(err)), 0);
    assert_int_equal(cfg_app_set_live(a, "minInstances", "40", err, sizeof(err)), 0);
    assert_int_equal(cfg_app_set_live(a, "minInstances", "0", err, sizeof(err)), 0);
    assert_int_equal(cfg_app_set_live(a, "maxConcurrentStarts", "0", err, sizeof(err)), -1);
    assert_int_equal(a->max_concurrent_starts, 2);
    assert_int_equal(cfg_app_set_live(a, "maxInstances", "1", NULL, 0), 0);
    assert_int_equal(cfg_app_set_live(a, "nope", "1", NULL, 0), -1);
    char tiny[8];
    assert_int_equal(cfg_app_set_live(a, "nope", "1", tiny, sizeof(tiny)), -1);
    assert_string_equal(tiny, "unknown");
    cfg_free(cfg);
}

static void test_find_app_and_free_null(void **state) {
    cfg_t *cfg = load_ok(BASE "[fastcgi:a]\nfullPath = /bin/sh\n[fastcgi:b]\nfullPath = /bin/sh\n");
    assert_ptr_equal(cfg_find_app(cfg, "b"), &cfg->apps[1]);
    assert_null(cfg_find_app(cfg, "c"));
    assert_null(cfg_find_app(cfg, ""));
    cfg_free(cfg);
    cfg_free(NULL);
}

/* The table itself: exactly the SPEC §2 names, field sizes that match the setters, defaults
 * wherever a key is neither required nor repeatable. */
static void test_key_table(void **state) {
    static const char *const server[] = {
        "listen", "root", "index", "accessLog", "errorLog", "logLevel", "controlSocket",
        "runtimeDir", "user", "symlinks", "statusPath", "statusAllow", "trustedProxies", "maxUrlBytes",
        "maxHeaderBytes", "maxBodyBytes", "headerTimeout", "bodyTimeout", "sendTimeout",
        "keepAliveTimeout", "shutdownTimeout", "tempDir", "maxConnections", "maxConnectionsPerIp", "http2", "http2MaxStreams",
        "compress", "compressMinBytes", "tlsCertificate", "tlsKey", "tlsCiphers",
        "redirectToHttps", "hsts", "alias", "fallback", "errorPage", "deny"};
    static const char *const fastcgi[] = {
        "fullPath", "arguments", "env", "maxInstances", "instanceMaxRequests", "idleTimeout",
        "activityTimeout", "requestTimeout", "queueLength", "rapidFailsPerMinute", "protocol",
        "flushNamedPipe", "monitorChangesTo", "stderrMode", "signalBeforeTerminateSeconds",
        "responseHeaders", "utf8ServerVariables", "user", "minInstances", "maxConcurrentStarts",
        "privateMemoryLimit", "slowRequestSeconds", "recycleMode", "preforkChildren"};
    static const char *const handler[] = {"path", "verb", "scriptProcessor", "resourceType",
                                          "responseBufferLimit", "site"};
    static const char *const site[] = {"hosts", "listen", "root", "index", "symlinks",
                                       "maxBodyBytes", "accessLog", "compress",
                                       "compressMinBytes", "tlsCertificate", "tlsKey",
                                       "redirectToHttps", "hsts", "alias", "fallback",
                                       "errorPage", "deny"};
    static const char *const rewrite[] = {"match", "unless", "to", "redirect", "last", "site"};
    static const char *const headers[] = {"path", "set", "site"};
    /* No default on purpose: [server] root (required without sites), the site keys [server]
     * gives, and `site` (every site when absent). */
    static const char *const no_default[] = {"root",   "index",    "symlinks",
                                             "maxBodyBytes", "accessLog", "compress",
                                             "compressMinBytes", "site", "tlsCertificate",
                                             "tlsKey", "redirectToHttps", "hsts"};
    const struct {
        cfg_sect_kind_t kind;
        const char *const *names;
        size_t n;
    } sects[] = {{CFG_SECT_SERVER, server, sizeof(server) / sizeof(server[0])},
                 {CFG_SECT_FASTCGI, fastcgi, sizeof(fastcgi) / sizeof(fastcgi[0])},
                 {CFG_SECT_HANDLER, handler, sizeof(handler) / sizeof(handler[0])},
                 {CFG_SECT_SITE, site, sizeof(site) / sizeof(site[0])},
                 {CFG_SECT_REWRITE, rewrite, sizeof(rewrite) / sizeof(rewrite[0])},
                 {CFG_SECT_HEADERS, headers, sizeof(headers) / sizeof(headers[0])}};
    size_t total = 0;
    for (size_t s = 0; s < sizeof(sects) / sizeof(sects[0]); s++) {
        for (size_t i = 0; i < sects[s].n; i++) {
            const cfg_key_t *k = cfg_key_find(sects[s].kind, sects[s].names[i]);
            assert_non_null(k);
            assert_string_equal(k->name, sects[s].names[i]); /* the SPEC's spelling */
        }
        total += sects[s].n;
    }
    assert_int_equal(cfg_n_keys, total);
    for (size_t i = 0; i < cfg_n_keys; i++) {
        const cfg_key_t *k = &cfg_keys[i];
        assert_ptr_equal(cfg_key_find(k->sect, k->name), k); /* no two rows share a name */
        bool required = k->flags & CFG_KEY_REQUIRED, repeat = k->flags & CFG_KEY_REPEAT;
        bool exempt = false;
        for (size_t j = 0; j < sizeof(no_default) / sizeof(no_default[0]); j++)
            exempt = exempt || strcmp(k->name, no_default[j]) == 0;
        assert_true(required || repeat || exempt || k->def != NULL);
        assert_true(!required || k->def == NULL);
        if (k->set == cfg_set_uint) {
            assert_int_equal(k->size, sizeof(unsigned));
            assert_true(k->max <= UINT_MAX && k->min <= k->max);
        } else if (k->set == cfg_set_bytes) {
            assert_int_equal(k->size, sizeof(uint64_t));
        } else if (k->set == cfg_set_enum) {
            assert_non_null(k->names);
            assert_true(k->size == sizeof(int) || k->size == sizeof(bool));
        } else if (k->set == cfg_set_bool) {
            assert_int_equal(k->size, sizeof(bool));
        }
        if (k->flags & CFG_KEY_LIVE) assert_int_equal(k->sect, CFG_SECT_FASTCGI);
    }
    assert_null(cfg_key_find(CFG_SECT_SERVER, "fullPath"));
}

/* php-cgi as the application, when installed. */
static void test_php_cgi(void **state) {
    if (access("/usr/bin/php-cgi", X_OK) != 0) skip();
    cfg_t *cfg = load_ok(BASE "[fastcgi:php]\nfullPath = /usr/bin/php-cgi\n"
                              "arguments = -d \"display_errors=stderr\"\n"
                              "[handler:php]\npath = *.php\n"
                              "scriptProcessor = /usr/bin/php-cgi|-d \"display_errors=stderr\"\n");
    assert_string_equal(cfg->apps[0].argv[2], "display_errors=stderr");
    assert_int_equal(cfg->handlers[0].app_index, 0);
    cfg_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_defaults),
        cmocka_unit_test(test_app_and_handler_defaults),
        cmocka_unit_test(test_server_all_keys),
        cmocka_unit_test(test_app_all_keys),
        cmocka_unit_test(test_handler_all_keys),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_inline_comment_values),
        cmocka_unit_test(test_crlf_bom_and_indentation),
        cmocka_unit_test(test_case_insensitive_names),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_line_numbers_after_long_lines),
        cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_error_unknown_key),
        cmocka_unit_test(test_error_bad_numbers),
        cmocka_unit_test(test_error_bad_server_values),
        cmocka_unit_test(test_error_listen),
        cmocka_unit_test(test_error_missing_required),
        cmocka_unit_test(test_error_duplicates),
        cmocka_unit_test(test_error_sections),
        cmocka_unit_test(test_error_syntax),
        cmocka_unit_test(test_error_paths),
        cmocka_unit_test(test_error_app_values),
        cmocka_unit_test(test_error_handler_values),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_script_processor_forms),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_deny_forms), cmocka_unit_test(test_status_allow),
        cmocka_unit_test(test_arguments_split),
        cmocka_unit_test(test_sizes_and_booleans),
        cmocka_unit_test(test_utf8_vars_and_user),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_set_live),
        cmocka_unit_test(test_find_app_and_free_null),
        cmocka_unit_test(test_key_table),
        cmocka_unit_test(test_php_cgi),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
