/* fcgihost: argv → server_run() or a configuration check. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "ctl/client.h"
#include "pool/pool.h"
#include "pool/privsep.h"
#include "server.h"
#include "server_user.h"

#define DEFAULT_CONF "/etc/fcgihost/fcgihost.conf"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fcgihost [-c FILE] [-t]\n"
            "       fcgihost ctl [-s SOCKET] status [APP] [--json] | recycle APP |\n"
            "                    set APP KEY VALUE | reload | stop   (fcgihost ctl -h)\n"
            "  -c FILE  configuration file (default " DEFAULT_CONF ")\n"
            "  -t       check the configuration, print problems as file:line, exit 0 or 1\n"
            "  -v       print the version\n");
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
    if (argc > 1 && strcmp(argv[1], "ctl") == 0) return ctl_client_main(argc - 1, argv + 1);
    const char *conf = DEFAULT_CONF;
    int test_only = 0, opt;
    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 't': test_only = 1; break;
        case 'v': printf("fcgihost %s\n", FCGIHOST_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    return test_only ? check_config(conf) : server_run(conf);
}
