/* Who the server and its FastCGI processes run as. The rules are in server_user.h. */
#include "server_user.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "pool/privsep.h"
#include "util/identity.h"
#include "util/log.h"
#include "util/xalloc.h"

#define RUNTIME_DIR_MODE 0750
#define PRIVILEGED_PORTS 1024

/* ---- checks ---- */

int server_user_check(const cfg_t *cfg, uid_t runs_as, const char *how, server_user_report_fn report,
                      void *arg) {
    if (runs_as == 0) return 0; /* root can become anyone */
    int bad = 0;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const cfg_app_t *app = &cfg->apps[i];
        if (app->user == NULL) continue;
        identity_t id;
        char err[256];
        char *msg = NULL;
        if (identity_lookup(app->user, &id, err, sizeof(err)) < 0) {
            msg = xasprintf("%s:%d: [fastcgi:%s] user: %s", cfg->file, app->line, app->name, err);
        } else {
            if (id.uid != runs_as)
                msg = xasprintf("%s:%d: [fastcgi:%s] user = %s refused: %s, and only root can start "
                                "processes as another user (%s is uid %u)",
                                cfg->file, app->line, app->name, app->user, how, id.name,
                                (unsigned)id.uid);
            identity_dispose(&id);
        }
        if (msg) {
            report(msg, arg);
            free(msg);
            bad++;
        }
    }
    return bad;
}

static void log_report(const char *msg, void *arg) {
    log_error("%s", msg);
}

const char *server_user_name(const cfg_t *cfg) {
    return cfg->server.user ? cfg->server.user : CFG_SERVER_USER_DEFAULT;
}

/* Look up the [server] user (the default when unset); the message names the default as such. */
static int lookup_server_user(const cfg_t *cfg, identity_t *id, char *err, size_t errlen) {
    char why[256];
    if (identity_lookup(server_user_name(cfg), id, why, sizeof(why)) == 0) return 0;
    if (strcmp(server_user_name(cfg), CFG_SERVER_USER_DEFAULT) != 0)
        snprintf(err, errlen, "[server] user: %s", why);
    else
        snprintf(err, errlen, "[server] user: %s: fcgihost drops to it when started as root (it is "
                 "the default); create that user, or set [server] user (root keeps root)", why);
    return -1;
}

int server_user_check_as_root(const cfg_t *cfg) {
    /* Applications of other users are started by the privileged helper when the server drops, so
     * as root only the server's own user can be a problem (an explicit one was seen by the loader;
     * the default is looked up here). */
    identity_t id;
    char err[512];
    if (lookup_server_user(cfg, &id, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", cfg->file, err);
        return 1;
    }
    identity_dispose(&id);
    return 0;
}

/* Applications running as root while the server stays root: said once per application, when it
 * appears (old == NULL at start) or loses its user at a reload. */
static void warn_root_apps(const cfg_t *cfg, const cfg_t *old) {
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const cfg_app_t *app = &cfg->apps[i];
        if (app->user) continue;
        const cfg_app_t *was = old ? cfg_find_app(old, app->name) : NULL;
        if (was && was->user == NULL) continue;
        log_warn("[fastcgi:%s] runs as root: set its user, or [server] user to drop privileges",
                 app->name);
    }
}

/* ---- files handed to the server's user ---- */

/* runtimeDir: made if missing, then the server user's, mode 0750 (see server_user.h). The checks
 * and changes go through one descriptor opened without following a symlink. */
static int prepare_runtime_dir(const char *dir, const identity_t *id) {
    char *tmp = xstrdup(dir);
    for (char *s = tmp + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(tmp, c ? 0755 : RUNTIME_DIR_MODE) < 0 && errno != EEXIST) {
            log_error("runtimeDir: cannot create %s: %s", tmp, strerror(errno));
            free(tmp);
            return -1;
        }
        *s = c;
        if (c == '\0') break;
    }
    free(tmp);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;
    struct stat st;
    const char *why = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) why = strerror(errno);
    else if (st.st_mode & S_IWOTH) why = "it is writable by every user: give fcgihost a directory of its own";
    else if (st.st_uid != 0 && st.st_uid != id->uid) why = "it belongs to another user";
    else if ((rc = identity_give_fd(fd, id->uid, id->gid,
                                    st.st_uid == id->uid ? (mode_t)-1 : RUNTIME_DIR_MODE)) < 0)
        why = strerror(-rc); /* already the user's: its owner chose the mode */
    if (fd >= 0) close(fd);
    if (why) {
        log_error("runtimeDir %s cannot be handed to %s: %s", dir, id->name, why);
        return -1;
    }
    return 0;
}

/* A log file opened as root: make it the server user's so that it can be reopened after the drop.
 * Only a plain file with one link, belonging to root or already to the user, is changed: a symlink
 * or a hard link planted where the log goes must not make the server give away another file. */
static void hand_log_file(const char *what, const char *path, const identity_t *id) {
    if (strcmp(path, "-") == 0 || strcmp(path, "off") == 0) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), rc;
    struct stat st;
    const char *why = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) why = strerror(errno);
    else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) why = "not a plain file";
    else if (st.st_uid != 0 && st.st_uid != id->uid) why = "it belongs to another user";
    else if ((rc = identity_give_fd(fd, id->uid, (gid_t)-1, (mode_t)-1)) < 0) why = strerror(-rc);
    if (fd >= 0) close(fd);
    if (why)
        log_warn("%s %s stays as it is (%s): after the drop to %s, reopening it may fail", what, path,
                 why, id->name);
}

/* ---- stale sockets ---- */

/* "<app>-<pid>-<seq>.sock", the name pool/worker.c gives a process's socket. */
static bool is_process_socket_name(const char *name) {
    size_t n = strlen(name);
    if (n < 10 || strcmp(name + n - 5, ".sock") != 0) return false;
    const char *p = name + n - 5;
    for (int field = 0; field < 2; field++) { /* <seq>, then <pid>, each preceded by '-' */
        const char *end = p;
        while (p > name && p[-1] >= '0' && p[-1] <= '9') p--;
        if (p == end || p == name || p[-1] != '-') return false;
        p--;
    }
    return p > name;
}

/* Nothing accepts on the socket file `path` any more (connect is refused). A live socket, or one
 * that cannot be tried, is not stale. */
static bool socket_stale(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) return false;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool stale = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

void server_user_remove_stale_sockets(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) return; /* not made yet: nothing left behind */
    unsigned removed = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        struct stat st;
        if (!is_process_socket_name(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        if (socket_stale(path) && unlinkat(dirfd(d), e->d_name, 0) == 0) removed++;
        free(path);
    }
    closedir(d);
    if (removed)
        log_info("runtimeDir %s: removed %u stale socket(s) left by an fcgihost that did not stop "
                 "cleanly", dir, removed);
}

/* ---- start and reload ---- */

static int drop(const cfg_t *cfg, const identity_t *id) {
    if (prepare_runtime_dir(cfg->server.runtime_dir, id) < 0) return -1;
    hand_log_file("errorLog", cfg->server.error_log, id);
    for (size_t i = 0; i < cfg->n_sites; i++)
        hand_log_file("accessLog", cfg->sites[i].access_log, id);
    char err[256];
    if (identity_switch(id, err, sizeof(err)) < 0) {
        log_error("cannot drop privileges to %s: %s", id->name, err);
        return -1;
    }
    log_info("dropped privileges to %s (uid %u, gid %u, %zu group(s))", id->name, (unsigned)id->uid,
             (unsigned)id->gid, id->n_groups);
    return 0;
}

/* Whether an application of cfg runs as another user than `uid` (an unknown user counts: its
 * spawns will say why they fail). */
static bool needs_other_user(const cfg_t *cfg, uid_t uid) {
    for (size_t i = 0; i < cfg->n_apps; i++) {
        if (cfg->apps[i].user == NULL) continue;
        identity_t id;
        char err[256];
        if (identity_lookup(cfg->apps[i].user, &id, err, sizeof(err)) < 0) return true;
        bool other = id.uid != uid;
        identity_dispose(&id);
        if (other) return true;
    }
    return false;
}

/* Applications that run as root through the helper ([fastcgi:X] user = root, the server dropped):
 * allowed, since root wrote it, but said. */
static void warn_helper_root_apps(const cfg_t *cfg) {
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const cfg_app_t *app = &cfg->apps[i];
        identity_t id;
        char err[256];
        if (app->user == NULL || identity_lookup(app->user, &id, err, sizeof(err)) < 0) continue;
        if (id.uid == 0)
            log_warn("[fastcgi:%s] runs as root (user = %s): the privileged helper starts it",
                     app->name, app->user);
        identity_dispose(&id);
    }
}

static bool started_as_root;

/* Not started as root: nothing to drop, and every application must run as this user. */
static int start_unprivileged(const cfg_t *cfg, uid_t euid) {
    identity_t id;
    char err[256];
    const char *user = server_user_name(cfg);
    if (identity_lookup(user, &id, err, sizeof(err)) == 0) {
        /* The default is not worth a warning: running unprivileged is what it is for. */
        if (id.uid != euid)
            log_msg(strcmp(user, CFG_SERVER_USER_DEFAULT) == 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
                    "[server] user = %s ignored: fcgihost was not started as root (it runs as uid "
                    "%u): there are no privileges to drop", user, (unsigned)euid);
        identity_dispose(&id);
    }
    char *how = xasprintf("the server runs as uid %u, not as root", (unsigned)euid);
    int bad = server_user_check(cfg, euid, how, log_report, NULL);
    free(how);
    return bad ? -1 : 0;
}

int server_user_start(const cfg_t *cfg, uv_loop_t *loop, const char *exe, const char *conf_path) {
    uid_t euid = geteuid();
    started_as_root = euid == 0;
    server_user_remove_stale_sockets(cfg->server.runtime_dir);
    if (euid != 0) return start_unprivileged(cfg, euid);
    identity_t id;
    char err[512];
    if (lookup_server_user(cfg, &id, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    int rc = 0;
    if (id.uid == 0) {
        log_info("running as root ([server] user = %s): the process that parses HTTP keeps every "
                 "privilege", id.name);
        warn_root_apps(cfg, NULL);
    } else {
        /* The helper must be forked while the server is still root; it stays root. */
        if (needs_other_user(cfg, id.uid) &&
            privsep_start(loop, exe, conf_path, err, sizeof(err)) < 0) {
            log_error("cannot start the privileged spawn helper: %s", err);
            rc = -1;
        }
        if (rc == 0) rc = drop(cfg, &id);
        if (rc == 0) warn_helper_root_apps(cfg);
        else privsep_stop();
    }
    identity_dispose(&id);
    return rc;
}

int server_user_reload(const cfg_t *cfg, const cfg_t *old) {
    uid_t euid = geteuid();
    identity_t id;
    char err[512];
    if (lookup_server_user(cfg, &id, err, sizeof(err)) == 0) {
        bool changed = strcmp(server_user_name(old), server_user_name(cfg)) != 0;
        if (euid == 0 && id.uid != 0 && changed)
            log_warn("[server] user = %s takes effect at the next start: the server stays root until "
                     "then", id.name);
        else if (euid != 0 && started_as_root && id.uid != euid && changed)
            log_warn("[server] user = %s not applied: the server runs as uid %u (a change of user "
                     "needs a restart as root)", id.name, (unsigned)euid);
        identity_dispose(&id);
    }
    if (euid == 0) {
        warn_root_apps(cfg, old);
        return 0;
    }
    /* Not root any more (dropped at start) or never. The helper, when one runs, starts the
     * processes of the other users (and checks each against the file itself). */
    if (privsep_active()) return 0;
    char uid_text[24], *how;
    snprintf(uid_text, sizeof(uid_text), "%u", (unsigned)euid);
    if (identity_lookup(uid_text, &id, err, sizeof(err)) == 0) {
        how = xasprintf("the server runs as %s (uid %u), not as root%s", id.name, (unsigned)euid,
                        started_as_root ? ", and no privileged spawn helper runs (no application "
                                          "needed another user at start: a restart starts one)"
                                        : "");
        identity_dispose(&id);
    } else {
        how = xasprintf("the server runs as uid %u, not as root", (unsigned)euid);
    }
    int bad = server_user_check(cfg, euid, how, log_report, NULL);
    free(how);
    return bad ? -1 : 0;
}

const char *server_user_listen_hint(const cfg_listen_t *cl, int uv_err) {
    if (uv_err != UV_EACCES || cl->kind == CFG_LISTEN_UNIX || cl->port >= PRIVILEGED_PORTS ||
        geteuid() == 0)
        return "";
    return " (a port below 1024 needs root: the server no longer runs as root, so it can listen "
           "there only from a restart)";
}
