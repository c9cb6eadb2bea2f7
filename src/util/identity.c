/* Unix identities: lookups and the one-way switch. See identity.h. */
#include "util/identity.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xalloc.h"

#define PW_BUF_START 4096
#define PW_BUF_MAX (1024 * 1024)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A decimal number that fits uid_t (and is not (uid_t)-1, which means "no change" to setuid). */
static bool parse_uid(const char *s, uid_t *out) {
    if (*s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v >= (uid_t)-1) return false;
    *out = (uid_t)v;
    return true;
}

/* getpwnam_r / getpwuid_r with a buffer grown on ERANGE. Returns 0 (found), 1 (no such entry) or
 * a positive errno; *buf is the caller's to free in every case. */
static int get_pw(const char *name, uid_t uid, struct passwd *pw, char **buf) {
    size_t len = PW_BUF_START;
    for (;;) {
        *buf = xrealloc(*buf, len);
        struct passwd *res = NULL;
        int rc = name ? getpwnam_r(name, pw, *buf, len, &res) : getpwuid_r(uid, pw, *buf, len, &res);
        if (rc == ERANGE && len < PW_BUF_MAX) {
            len *= 2;
            continue;
        }
        if (rc == 0 && res == NULL) return 1;
        /* Some NSS modules report "not found" as ENOENT or ESRCH instead of a NULL result. */
        if (rc == ENOENT || rc == ESRCH) return 1;
        return rc;
    }
}

/* The user's groups as initgroups(3) would set them. */
static int get_groups(identity_t *id, char *err, size_t errlen) {
    int n = 16;
    for (int tries = 0; tries < 8; tries++) {
        id->groups = xrealloc(id->groups, (size_t)n * sizeof(gid_t));
        int want = n;
        if (getgrouplist(id->name, id->gid, id->groups, &want) >= 0) {
            id->n_groups = (size_t)want;
            return 0;
        }
        /* Too small: `want` now holds the size needed (glibc); grow at least twofold anyway. */
        n = want > n ? want : 2 * n;
    }
    return fail(err, errlen, "cannot list the groups of user '%s'", id->name);
}

int identity_lookup(const char *user, identity_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    struct passwd pw;
    char *buf = NULL;
    int rc = get_pw(user, 0, &pw, &buf);
    uid_t uid;
    if (rc == 1 && parse_uid(user, &uid)) {
        rc = get_pw(NULL, uid, &pw, &buf);
        if (rc == 1) {
            free(buf);
            return fail(err, errlen, "no user with uid %s in the passwd database", user);
        }
    }
    if (rc != 0) {
        free(buf);
        if (rc == 1) return fail(err, errlen, "no such user '%s'", user);
        return fail(err, errlen, "cannot look up user '%s': %s", user, strerror(rc));
    }
    out->name = xstrdup(pw.pw_name);
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    free(buf);
    if (get_groups(out, err, errlen) < 0) {
        identity_dispose(out);
        return -1;
    }
    return 0;
}

void identity_dispose(identity_t *id) {
    free(id->name);
    free(id->groups);
    memset(id, 0, sizeof(*id));
}

/* After the switch, nothing of the old identity may be left: real, effective and saved ids. */
static int verify(uid_t uid, gid_t gid, char *err, size_t errlen) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        return fail(err, errlen, "cannot read the process's ids: %s", strerror(errno));
    if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
        return fail(err, errlen, "ids after the switch are uid %u/%u/%u gid %u/%u/%u, not %u/%u",
                    (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg,
                    (unsigned)sg, (unsigned)uid, (unsigned)gid);
    if (uid != 0 && setuid(0) == 0)
        return fail(err, errlen, "setuid(0) succeeded after switching to uid %u", (unsigned)uid);
    return 0;
}

int identity_become(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, char *err,
                    size_t errlen) {
    if (setgroups(n_groups, groups) < 0)
        return fail(err, errlen, "setgroups (%zu groups): %s", n_groups, strerror(errno));
    if (setgid(gid) < 0) return fail(err, errlen, "setgid(%u): %s", (unsigned)gid, strerror(errno));
    if (setuid(uid) < 0) return fail(err, errlen, "setuid(%u): %s", (unsigned)uid, strerror(errno));
    return verify(uid, gid, err, errlen);
}

int identity_switch(const identity_t *id, char *err, size_t errlen) {
    return identity_become(id->uid, id->gid, id->groups, id->n_groups, err, errlen);
}

char *identity_format_groups(const identity_t *id) {
    size_t cap = 16 + 12 * id->n_groups, len;
    char *s = xmalloc(cap);
    len = (size_t)snprintf(s, cap, "%u", (unsigned)id->gid);
    for (size_t i = 0; i < id->n_groups; i++) {
        if (id->groups[i] == id->gid) continue;
        len += (size_t)snprintf(s + len, cap - len, ",%u", (unsigned)id->groups[i]);
    }
    return s;
}

bool identity_parse_groups(const char *text, gid_t *gid, gid_t **groups, size_t *n_groups) {
    size_t n = 1;
    for (const char *c = text; *c; c++) n += *c == ',';
    gid_t *g = xmalloc(n * sizeof(gid_t));
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = (*p >= '0' && *p <= '9') ? strtoull(p, &end, 10) : ULLONG_MAX;
        if (end == NULL || errno || v >= (gid_t)-1 || (*end != ',' && *end != '\0')) {
            free(g);
            return false;
        }
        g[i] = (gid_t)v;
        p = end + 1;
    }
    *gid = g[0];
    *groups = g;
    *n_groups = n;
    return true;
}

int identity_give_fd(int fd, uid_t uid, gid_t gid, mode_t mode) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    /* Only what differs, and the mode first: while the caller still owns the file it needs no
     * CAP_FOWNER to change the mode (a systemd unit's bounding set may lack it). */
    if (mode != (mode_t)-1 && (st.st_mode & 07777) != mode && fchmod(fd, mode) < 0) return -errno;
    if ((st.st_uid != uid || (gid != (gid_t)-1 && st.st_gid != gid)) && fchown(fd, uid, gid) < 0)
        return -errno;
    return 0;
}
