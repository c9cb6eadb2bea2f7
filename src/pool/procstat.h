/* Reading /proc for the autotuner and `ctl status`: what the machine's CPUs and memory are doing
 * and what each FastCGI process uses. Small synchronous reads of in-memory files (a few per
 * process every two seconds, for pools with maxInstances = 0 only). Every function reports
 * "unknown" (false, or 0) rather than failing: /proc may be missing or restricted. */
#ifndef FCGIHOST_POOL_PROCSTAT_H
#define FCGIHOST_POOL_PROCSTAT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The first line of /proc/stat: all CPUs' time in clock ticks. */
typedef struct procstat_cpu {
    uint64_t busy, total;
} procstat_cpu_t;
bool procstat_cpu(procstat_cpu_t *out);
/* The busy fraction of all CPUs between two readings, 0..1; -1 when unknown. */
double procstat_cpu_busy(const procstat_cpu_t *before, const procstat_cpu_t *after);

/* MemTotal and MemAvailable from /proc/meminfo, bytes (0 when unknown). */
bool procstat_mem(uint64_t *total, uint64_t *available);

/* /proc/PID/schedstat: nanoseconds on a CPU and runnable waiting for one. */
bool procstat_sched(pid_t pid, uint64_t *cpu_ns, uint64_t *runq_ns);

/* /proc/PID/statm: resident memory and its private (anonymous) part, bytes. The private part is
 * what another process of the same program adds to the machine's memory use. */
bool procstat_rss(pid_t pid, uint64_t *rss, uint64_t *private_rss);

/* A process's private memory: Private_Clean + Private_Dirty of /proc/PID/smaps_rollup (what would
 * be freed if it ended: its pages no other process maps), and its Rss, bytes. Where smaps_rollup
 * cannot be read (a kernel before 4.14; a process of another user, which an unprivileged server
 * may not inspect) the anonymous part of statm stands in for the private memory. */
bool procstat_private(pid_t pid, uint64_t *private_bytes, uint64_t *rss);

/* The children of process PID (its main thread's, /proc/PID/task/PID/children: the processes it
 * forked, as php-cgi's master forks its workers), at most `max` of them, into out. Returns how
 * many; 0 when none or unknown (the file needs a kernel with CONFIG_PROC_CHILDREN). */
size_t procstat_children(pid_t pid, pid_t *out, size_t max);

#endif
