/* monitorChangesTo (SPEC §4.8): watch one file and report when it changes.
 *
 * The file is watched the ways files really change:
 *   - written in place (echo >>, an editor saving in place), or touched: inotify on the file itself
 *     (through symlinks: the watch is on the file the path resolves to);
 *   - replaced by rename (sed -i, vim, most editors, `ln -sfn` switching a symlink) and deleted then
 *     re-created: inotify on the directory that holds the name, and on the directory that holds the
 *     resolved file when a symlink points elsewhere;
 *   - anything inotify cannot see (a parent directory switched, network file systems, a directory
 *     that did not exist yet): monitor_check(), called from the pool's one-second tick, compares
 *     the file's identity and times with what was seen last.
 * What counts as a change is a different (device, inode, size, mtime, ctime) of the file the path
 * resolves to, so events about other files in the directory, or several events for one save, do
 * not recycle the pool twice. A burst of changes is reported once, at most 100 ms after its first
 * event (a save that truncates and then writes is one change, and the new processes read the
 * whole file).
 *
 * A missing file is a warning (at start: watching begins when it appears); its re-appearance is a
 * change. Deleting it alone recycles nothing (php-cgi would start without its php.ini).
 *
 * Lifetime: monitor_close() stops reporting at once and frees the monitor once its handles are
 * closed; the owner may go away right after calling it. */
#ifndef FCGIHOST_POOL_MONITOR_H
#define FCGIHOST_POOL_MONITOR_H
#include <uv.h>

typedef struct monitor monitor_t;

/* `what` describes the change for the log ("/etc/php.ini changed"). */
typedef void (*monitor_cb)(void *arg, const char *what);

/* Start watching `path` (absolute). `owner` prefixes log lines ("php"). Never fails: problems
 * (a missing file, an inotify limit) are logged and the one-second check takes over. */
monitor_t *monitor_new(uv_loop_t *loop, const char *path, const char *owner, monitor_cb cb,
                       void *arg);
const char *monitor_path(const monitor_t *m);
/* The periodic check (about once a second). */
void monitor_check(monitor_t *m);
void monitor_close(monitor_t *m);

#endif
