/* The spawn trampoline (see pool_child_main in pool.h). It runs in the freshly forked child as
 * `fcgihost __fcgihost_spawn <uid> <gid> <full_path> <argv...>`, before the application exists, so
 * it uses no libuv and nothing of the server: plain system calls, messages on stderr (the pool
 * captures them into the error log) and exit status 127 on failure. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "pool/pool.h"

#define CHILD_FAIL 127

/* "-1" (keep the identity) or a non-negative decimal id; false for anything else. */
static bool parse_id(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < -1) return false;
    *out = v;
    return true;
}

/* Kill this process when the server dies, even by SIGKILL (§4.1). The kernel forgets the setting
 * when the credentials change, so it is set again after the identity switch; the check afterwards
 * closes the window in which the server could have died before the setting took effect (the child
 * is then re-parented, to init or to a subreaper). */
static bool tie_to_parent(void) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        fprintf(stderr, "fcgihost: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return false;
    }
    if (getppid() == 1) {
        fprintf(stderr, "fcgihost: the server exited before the application started\n");
        return false;
    }
    return true;
}

/* Become uid/gid with the user's supplementary groups. Order matters: groups and gid need root,
 * which setuid gives up. */
static bool change_identity(long uid, long gid) {
    if (gid >= 0) {
        struct passwd *pw = uid >= 0 ? getpwuid((uid_t)uid) : NULL;
        gid_t g = (gid_t)gid;
        int r = pw ? initgroups(pw->pw_name, g) : setgroups(1, &g);
        if (r < 0) {
            fprintf(stderr, "fcgihost: cannot set the groups of uid %ld: %s\n", uid,
                    strerror(errno));
            return false;
        }
        if (setgid(g) < 0) {
            fprintf(stderr, "fcgihost: setgid(%ld): %s\n", gid, strerror(errno));
            return false;
        }
    }
    if (uid >= 0 && setuid((uid_t)uid) < 0) {
        fprintf(stderr, "fcgihost: setuid(%ld): %s\n", uid, strerror(errno));
        return false;
    }
    return true;
}

int pool_child_main(int argc, char **argv) {
    long uid, gid;
    /* argv: exe, POOL_SPAWN_ARG, uid, gid, full_path, the application's argv[0], ... */
    if (argc < 6 || !parse_id(argv[2], &uid) || !parse_id(argv[3], &gid)) {
        fprintf(stderr, "fcgihost: usage: fcgihost %s UID GID FULL_PATH ARGV0 [ARGS...]\n",
                POOL_SPAWN_ARG);
        return CHILD_FAIL;
    }
    if (!tie_to_parent()) return CHILD_FAIL;
    if (uid >= 0 || gid >= 0) {
        if (!change_identity(uid, gid) || !tie_to_parent()) return CHILD_FAIL;
    }
    execv(argv[4], argv + 5);
    fprintf(stderr, "fcgihost: cannot execute %s: %s\n", argv[4], strerror(errno));
    return CHILD_FAIL;
}
