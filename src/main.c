/* fcgihost: argv → server_run() or a configuration check. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "ctl/client.h"
#include "http/tls.h"
#include "pool/pool.h"
#include "pool/privsep.h"
#include "server.h"
#include "server_user.h"

#define DEFAULT_CONF "/etc/fcgihost/fcgihost.conf"
#define PROG "fcgihost"

/* GNU conventions: --help writes to stdout and exits 0; a usage error says what was wrong on
 * stderr, points to --help, and exits 2. */
static void usage(FILE *out) {
    fprintf(out,
            "usage: fcgihost [-c FILE] [-t]\n"
            "       fcgihost ctl [-s SOCKET | -c FILE] COMMAND [ARGS...]\n"
            "Run the fcgihost web server in the foreground, or (ctl) talk to a running one.\n"
            "\n"
            "  -c FILE        the configuration file (default " DEFAULT_CONF ")\n"
            "  -t             check the configuration, print problems as file:line, exit 0 or 1\n"
            "  -h, --help     print this help and exit\n"
            "  -v, --version  print the version and exit\n"
            "\n"
            "Commands of ctl: status, recycle, set, reload, stop (fcgihost ctl --help).\n"
            "Signals: SIGHUP reloads, SIGTERM and SIGINT stop gracefully, SIGUSR1 reopens the logs.\n"
            "Exit status: 0 after a graceful stop or a valid -t check; 1 when the configuration\n"
            "has errors or the server cannot start; 2 on a usage error.\n");
}

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, PROG ": %s%s\nTry '" PROG " --help' for more information.\n", what, arg);
    return 2;
}

/* The option getopt_long refused: optopt for a short one; the word itself for a long one (when
 * optopt is 0, or the word is a "--" option such as "--help=x"). */
static const char *bad_option(char **argv, char *buf) {
    const char *word = argv[optind - 1];
    if (optopt == 0 || (strncmp(word, "--", 2) == 0 && word[2])) return word;
    buf[0] = '-';
    buf[1] = (char)optopt;
    buf[2] = '\0';
    return buf;
}

static int check_config(const char *path) {
    cfg_diag_t diag;
    cfg_diag_init(&diag);
    cfg_t *cfg = cfg_load(path, &diag);
    for (size_t i = 0; i < diag.n; i++) fprintf(stderr, "%s\n", diag.msgs[i]);
    cfg_diag_dispose(&diag);
    if (cfg == NULL) {
        fprintf(stderr, "fcgihost: configuration %s has errors\n", path);
        return 1;
    }
    int bad = server_user_check_as_root(cfg); /* users the server could not honour when started */
    for (size_t i = 0; i < cfg->n_sites; i++) { /* certificates and keys load, and match */
        const cfg_site_t *site = &cfg->sites[i];
        if (site->tls_certificate == NULL) continue;
        char err[512];
        http_tls_ctx_t *ctx = http_tls_ctx_new(site->tls_certificate, site->tls_key,
                                               cfg->server.tls_ciphers, err, sizeof(err));
        if (ctx == NULL) {
            fprintf(stderr, "%s:%d: site %s: %s\n", site->file, site->line, site->name, err);
            bad = 1;
        }
        http_tls_ctx_unref(ctx);
    }
    cfg_free(cfg);
    if (bad) {
        fprintf(stderr, "fcgihost: configuration %s has errors\n", path);
        return 1;
    }
    fprintf(stderr, "fcgihost: configuration %s is ok\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], POOL_SPAWN_ARG) == 0) return pool_child_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], PRIVSEP_HELPER_ARG) == 0) return privsep_helper_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_client_main(argc - 1, argv + 1, DEFAULT_CONF);
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *conf = DEFAULT_CONF;
    int test_only = 0, opt;
    char buf[3];
    opterr = 0; /* our own messages, named "fcgihost" rather than argv[0]'s full path */
    while ((opt = getopt_long(argc, argv, ":c:tvh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 't': test_only = 1; break;
        case 'v': printf(PROG " %s\n", FCGIHOST_VERSION); return fflush(stdout) == 0 ? 0 : 1;
        case 'h': usage(stdout); return fflush(stdout) == 0 ? 0 : 1;
        case ':': return usage_error("option needs an argument: ", bad_option(argv, buf));
        default: return usage_error("unknown option: ", bad_option(argv, buf));
        }
    }
    if (optind < argc) return usage_error("unexpected argument: ", argv[optind]);
    return test_only ? check_config(conf) : server_run(conf);
}
