/* Unix identities: resolve a `user` setting to uid, primary gid and supplementary groups, and
 * become that identity for good (the server's privilege drop, the spawn trampoline's switch).
 *
 * No libuv, no server knowledge, no logging: failures come back as -1 with a one-line message in
 * the caller's `err` buffer (which names the user), and the caller decides whether to log or print.
 * The lookups go through NSS (getpwnam_r, getgrouplist), so they may read files or ask a directory
 * service: callers resolve once per start, reload or spawn, never per request. */
#ifndef FCGIHOST_UTIL_IDENTITY_H
#define FCGIHOST_UTIL_IDENTITY_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct identity {
    char *name;      /* the name in the passwd database (also when looked up by number) */
    uid_t uid;
    gid_t gid;       /* primary group (passwd's) */
    gid_t *groups;   /* every group of the user as initgroups(3) would set them: the primary group
                        and the groups of the group database that list the user */
    size_t n_groups;
} identity_t;

/* Resolve `user`: a user name, or a decimal uid when no user has that name (as chown(1) does).
 * The user must exist in the passwd database: a bare uid has no primary group to run with.
 * Returns 0 and fills `out` (identity_dispose() it), or -1 with a message such as
 * "no such user 'bob'" in err. */
int identity_lookup(const char *user, identity_t *out, char *err, size_t errlen);
void identity_dispose(identity_t *id);

/* Become uid/gid with exactly `groups` as supplementary groups, for good: setgroups, setgid,
 * setuid, in that order (the first two need the privileges the last one gives up). setuid from
 * root sets the real, effective and saved uid alike, so nothing can switch back. Afterwards it
 * checks that every uid and gid is the new one and, when the new uid is not 0, that setuid(0)
 * fails; a process that could regain root after a "drop" must not go on (-1 then).
 * Needs root (CAP_SETUID and CAP_SETGID). Returns 0, or -1 with a message in err. */
int identity_become(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, char *err,
                    size_t errlen);
/* identity_become() with a looked-up identity. */
int identity_switch(const identity_t *id, char *err, size_t errlen);

/* The spawn trampoline's group argument: "GID,G1,G2..." (the primary group first, then the
 * supplementary groups that differ from it). Returns a heap string (free it). */
char *identity_format_groups(const identity_t *id);
/* Parse that text: the primary group into *gid and every listed group (the primary one included)
 * into `groups`, a heap array (free it) of *n_groups entries. False on malformed text. */
bool identity_parse_groups(const char *text, gid_t *gid, gid_t **groups, size_t *n_groups);

/* Make `fd` (an open file or directory) belong to uid/gid (gid (gid_t)-1: keep the group) with
 * `mode` (-1: keep it), changing only what differs: the mode first, then the owner. Working on the
 * open descriptor (not a path) means a symlink planted in between cannot redirect the change.
 * Returns 0 or a negative errno. */
int identity_give_fd(int fd, uid_t uid, gid_t gid, mode_t mode);

#endif
