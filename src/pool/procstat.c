/* /proc readers: see procstat.h. */
#include "pool/procstat.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read a small file whole into buf (NUL-terminated). */
static bool read_small(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0) {
            close(fd);
            return false;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return n > 0;
}

bool procstat_cpu(procstat_cpu_t *out) {
    char buf[512];
    if (!read_small("/proc/stat", buf, sizeof(buf))) return false;
    uint64_t v[8] = {0};
    int n = sscanf(buf, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                        " %" SCNu64 " %" SCNu64,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    if (n < 4) return false;
    /* user nice system idle iowait irq softirq steal */
    uint64_t idle = v[3] + v[4];
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += v[i];
    out->total = total;
    out->busy = total - idle;
    return true;
}

double procstat_cpu_busy(const procstat_cpu_t *before, const procstat_cpu_t *after) {
    if (after->total <= before->total || after->busy < before->busy) return -1;
    double f = (double)(after->busy - before->busy) / (double)(after->total - before->total);
    return f > 1 ? 1 : f;
}

bool procstat_mem(uint64_t *total, uint64_t *available) {
    char buf[4096];
    *total = *available = 0;
    if (!read_small("/proc/meminfo", buf, sizeof(buf))) return false;
    const char *t = strstr(buf, "MemTotal:");
    const char *a = strstr(buf, "MemAvailable:");
    uint64_t kt = 0, ka = 0;
    if (t) sscanf(t, "MemTotal: %" SCNu64, &kt);
    if (a) sscanf(a, "MemAvailable: %" SCNu64, &ka);
    *total = kt * 1024;
    *available = ka * 1024;
    return kt > 0 && ka > 0;
}

bool procstat_sched(pid_t pid, uint64_t *cpu_ns, uint64_t *runq_ns) {
    char path[64], buf[128];
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    if (!read_small(path, buf, sizeof(buf))) return false;
    return sscanf(buf, "%" SCNu64 " %" SCNu64, cpu_ns, runq_ns) == 2;
}

static uint64_t field_kb(const char *buf, const char *name) {
    const char *f = strstr(buf, name);
    uint64_t v = 0;
    if (f) sscanf(f + strlen(name), " %" SCNu64, &v);
    return v;
}

bool procstat_private(pid_t pid, uint64_t *private_bytes, uint64_t *rss) {
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    if (read_small(path, buf, sizeof(buf)) && strstr(buf, "Private_Dirty:")) {
        *rss = field_kb(buf, "\nRss:") * 1024;
        *private_bytes =
            (field_kb(buf, "\nPrivate_Clean:") + field_kb(buf, "\nPrivate_Dirty:")) * 1024;
        return true;
    }
    return procstat_rss(pid, rss, private_bytes);
}

bool procstat_rss(pid_t pid, uint64_t *rss, uint64_t *private_rss) {
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if (!read_small(path, buf, sizeof(buf))) return false;
    uint64_t size, resident, shared;
    if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64, &size, &resident, &shared) != 3)
        return false;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    *rss = resident * page;
    *private_rss = (resident > shared ? resident - shared : 0) * page;
    return true;
}

size_t procstat_children(pid_t pid, pid_t *out, size_t max) {
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
    if (pid <= 0 || !read_small(path, buf, sizeof(buf))) return 0;
    size_t n = 0;
    char *p = buf;
    while (n < max) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (v > 0) out[n++] = (pid_t)v;
        p = end;
    }
    return n;
}
