/* The spawn trampoline (see pool_child_main in pool.h). It runs in the freshly forked child as
 * `fcgihost __fcgihost_spawn <uid> <gid>[,<group>...] <full_path> <argv...>`, before the
 * application exists, so it uses no libuv and nothing of the server: plain system calls, messages
 * on stderr (the pool captures them into the error log) and exit status 127 on failure.
 *
 * The server resolves the application's `user` (name, primary group, supplementary groups) before
 * the fork and passes plain numbers, so the child makes no NSS lookup and sets exactly the groups
 * the server saw. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "pool/pool.h"
#include "util/identity.h"

#define CHILD_FAIL 127

/* "-1" (keep the identity) or a non-negative decimal uid; false for anything else. */
static bool parse_uid(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < -1 || (v >= 0 && (uid_t)v == (uid_t)-1)) return false;
    *out = v;
    return true;
}

/* Kill this process when the server dies, even by SIGKILL (§4.1), with `sig` (SIGKILL, or
 * SIGTERM for a prefork group's master, see POOL_PDEATHSIG_ENV). The kernel clears the setting
 * whenever the credentials change (setgid and setuid both do, see commit_creds), so it is set
 * again after the identity switch. The parent check afterwards closes the window in which the
 * server could have died before the setting took effect: the child has then been re-parented, to
 * init or to a subreaper, and must not start an application nobody manages. */
static bool tie_to_parent(pid_t *parent, int sig) {
    if (prctl(PR_SET_PDEATHSIG, sig) < 0) {
        fprintf(stderr, "fcgihost: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return false;
    }
    pid_t now = getppid();
    if (*parent == 0) *parent = now;
    if (now == 1 || now != *parent) {
        fprintf(stderr, "fcgihost: the server exited before the application started\n");
        return false;
    }
    return true;
}

int pool_child_main(int argc, char **argv) {
    long uid;
    gid_t gid = 0, *groups = NULL;
    size_t n_groups = 0;
    /* argv: exe, POOL_SPAWN_ARG, uid, gid[,groups], full_path, the application's argv[0], ... */
    bool keep = argc >= 6 && strcmp(argv[3], "-1") == 0;
    if (argc < 6 || !parse_uid(argv[2], &uid) || (keep != (uid < 0)) ||
        (!keep && !identity_parse_groups(argv[3], &gid, &groups, &n_groups))) {
        fprintf(stderr, "fcgihost: usage: fcgihost %s UID|-1 GID[,GROUP...]|-1 FULL_PATH ARGV0 [ARGS...]\n",
                POOL_SPAWN_ARG);
        return CHILD_FAIL;
    }
    /* A prefork group's master (POOL_PDEATHSIG_ENV) gets SIGTERM: it ends its children. */
    const char *ds = getenv(POOL_PDEATHSIG_ENV);
    int sig = ds && strcmp(ds, "TERM") == 0 ? SIGTERM : SIGKILL;
    unsetenv(POOL_PDEATHSIG_ENV);
    pid_t parent = 0;
    if (!tie_to_parent(&parent, sig)) return CHILD_FAIL;
    if (uid >= 0) {
        /* Groups, then gid, then uid: the first two need the root that setuid gives up. */
        char err[256];
        int r = identity_become((uid_t)uid, gid, groups, n_groups, err, sizeof(err));
        free(groups);
        if (r < 0) {
            fprintf(stderr, "fcgihost: cannot run as uid %ld: %s\n", uid, err);
            return CHILD_FAIL;
        }
        if (!tie_to_parent(&parent, sig)) return CHILD_FAIL;
    }
    execv(argv[4], argv + 5);
    fprintf(stderr, "fcgihost: cannot execute %s: %s\n", argv[4], strerror(errno));
    return CHILD_FAIL;
}
