/* Renderers of a status snapshot (ctl/status.h): JSON for tools, a text table for people, and the
 * Prometheus text exposition format. PURE: they only append to a buf_t.
 *
 * ---- Prometheus metrics (statusPath?format=prometheus) ----
 *
 * Text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8). Every
 * family has one # HELP and one # TYPE line, even when it has no sample (no pool configured).
 * Names are stable once released (SPEC §5). Label values escape backslash, double quote and
 * newline. Per-application series carry app="NAME" (the [fastcgi:NAME] section) and exist for
 * every label value listed, zeros included, so that rate() works from the first scrape.
 *
 * Server:
 *   fcgihost_build_info{version}                       gauge      always 1
 *   fcgihost_start_time_seconds                        gauge      Unix time the server started
 *   fcgihost_uptime_seconds                            gauge
 *   fcgihost_reloads_total{result="ok"|"failed"}       counter    configuration reloads
 *   fcgihost_connections                               gauge      HTTP connections open now
 *   fcgihost_http_requests_total{class="1xx".."5xx"}   counter    responses sent, all requests
 *   fcgihost_http_request_duration_seconds             histogram  all requests, head to last byte
 * Per application (label app):
 *   fcgihost_app_requests_total{app,class}             counter    responses to requests mapped
 *                                                                 to the application
 *   fcgihost_app_request_duration_seconds{app}         histogram  the same requests' durations
 *   fcgihost_fastcgi_requests_total{app}               counter    FastCGI requests its processes
 *                                                                 ended (completed or not)
 *   fcgihost_instance_limit{app}                       gauge      effective maxInstances now
 *   fcgihost_instance_limit_auto{app}                  gauge      1 when maxInstances = 0
 *   fcgihost_min_instances{app}                        gauge      the minInstances setting
 *   fcgihost_max_concurrent_starts{app}                gauge      the maxConcurrentStarts setting
 *   fcgihost_prefork_children{app}                     gauge      the preforkChildren setting
 *   fcgihost_private_memory_limit_bytes{app}           gauge      privateMemoryLimit; 0: none
 *   fcgihost_processes{app,state}                      gauge      state: starting idle busy
 *                                                                 draining stopping
 *   fcgihost_queue_length{app}                         gauge      requests waiting now
 *   fcgihost_queue_capacity{app}                       gauge      the queueLength setting
 *   fcgihost_queue_acquired_total{app}                 counter    waiters that got a process
 *   fcgihost_queue_wait_seconds_total{app}             counter    their summed waits
 *   fcgihost_queue_full_total{app}                     counter    503s: queue full
 *   fcgihost_failed{app}                               gauge      1 while failed (rapid fails)
 *   fcgihost_rapid_fails_total{app}                    counter
 *   fcgihost_spawns_total{app}                         counter    processes started
 *   fcgihost_spawn_failures_total{app}                 counter    starts that failed
 *   fcgihost_recycles_total{app,reason}                counter    reason: max_requests idle
 *                                                                 change kill manual memory
 *   fcgihost_exits_unexpected_total{app}               counter    exits the server did not ask for
 *   fcgihost_stderr_lines_total{app}                   counter    lines written to stderr
 *   fcgihost_crashes_total{app}                        counter    deaths by a signal or a
 *                                                                 non-zero status, unasked
 *   fcgihost_slow_requests_total{app}                  counter    slower than slowRequestSeconds
 *   fcgihost_slow_request_seconds{app}                 gauge      the slowRequestSeconds setting
 * Histograms have buckets le="0.005" "0.01" "0.025" "0.05" "0.1" "0.25" "0.5" "1" "2.5" "5" "10"
 * "+Inf" (cumulative; +Inf equals _count), then _sum (seconds) and _count.
 */
#ifndef FCGIHOST_CTL_RENDER_H
#define FCGIHOST_CTL_RENDER_H
#include <stddef.h>
#include <stdint.h>

#include "ctl/status.h"
#include "util/buf.h"

/* The JSON document described in status.h, one line ending with a newline. `only` (borrowed, one
 * of st->pools, e.g. from ctl_status_find_pool) restricts "pools" to that pool; NULL = all. */
void ctl_render_json(buf_t *out, const ctl_status_t *st, const ctl_pool_status_t *only);

/* The table of `fcgihost ctl status`: the server facts, then each pool (its summary line, counter
 * lines and process table). With `only` just that pool, without the server facts. Control bytes
 * in names and notes are shown as '?', so a hostile string cannot drive the terminal. */
void ctl_render_text(buf_t *out, const ctl_status_t *st, const ctl_pool_status_t *only);

/* The Prometheus text exposition of every metric listed above. */
void ctl_render_prometheus(buf_t *out, const ctl_status_t *st);

/* Append s[0..n) as a quoted JSON string, escaped as status.h describes; s = NULL appends null. */
void ctl_json_string(buf_t *out, const char *s, size_t n);

/* Append s as a Prometheus label value (without the quotes): \ → \\, " → \", newline → \n. */
void ctl_prom_label_value(buf_t *out, const char *s);

/* Human units for the table, NUL-terminated into out (at least 16 bytes; truncated otherwise):
 *   ctl_human_duration: 45s, 3m12s, 2h03m, 4d05h
 *   ctl_human_bytes:    512B, 12.0K, 45.2M, 1.5G (powers of 1024); 0 → "-" (unknown)
 *   ctl_human_seconds:  a short duration: 850us, 12.3ms, 1.25s, 75.0s */
void ctl_human_duration(char *out, size_t size, uint64_t seconds);
void ctl_human_bytes(char *out, size_t size, uint64_t bytes);
void ctl_human_seconds(char *out, size_t size, double seconds);

#endif
