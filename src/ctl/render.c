/* Status renderers: JSON, the people's table and Prometheus text (see render.h and status.h for
 * the formats). Everything here appends to a buf_t; nothing reads a clock or a file, so a snapshot
 * always renders to the same bytes. */
#include "ctl/render.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- Numbers ---- */

/* whole.frac with `digits` decimals and no trailing zeros: (2, 500000, 6) → "2.5", (1, 0, 3) → "1". */
static void fmt_fixed(char *out, size_t size, uint64_t whole, uint64_t frac, int digits) {
    int n = snprintf(out, size, "%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
    if (n <= 0 || (size_t)n >= size) return;
    while (out[n - 1] == '0') out[--n] = '\0';
    if (out[n - 1] == '.') out[n - 1] = '\0';
}

/* A bucket bound in microseconds as the shortest decimal of seconds: 5000 → "0.005", 10^6 → "1",
 * 2500000 → "2.5"; UINT64_MAX → "+Inf". */
static void fmt_bound(char *out, size_t size, uint64_t us) {
    if (us == UINT64_MAX) snprintf(out, size, "+Inf");
    else fmt_fixed(out, size, us / 1000000, us % 1000000, 6);
}

/* A non-negative decimal with at most six decimals and no trailing zeros ("1.5", "0", "12.000001").
 * Not-a-number and infinities, which neither JSON nor our consumers want, print as 0. */
static void fmt_decimal(char *out, size_t size, double v) {
    if (!isfinite(v)) v = 0;
    int n = snprintf(out, size, "%.6f", v);
    if (n <= 0 || (size_t)n >= size) return;
    if (!strchr(out, '.')) return;
    while (out[n - 1] == '0') out[--n] = '\0';
    if (out[n - 1] == '.') out[--n] = '\0';
    if (strcmp(out, "-0") == 0) snprintf(out, size, "0");
}

/* Milliseconds as seconds, exactly: 1234 → "1.234", 2000 → "2". */
static void fmt_ms_as_seconds(char *out, size_t size, uint64_t ms) {
    fmt_fixed(out, size, ms / 1000, ms % 1000, 3);
}

static uint64_t sum_classes(const uint64_t c[CTL_CLASS_COUNT]) {
    uint64_t t = 0;
    for (unsigned i = 0; i < CTL_CLASS_COUNT; i++) t += c[i];
    return t;
}

static unsigned sum_procs(const unsigned p[CTL_PROC_STATE_COUNT]) {
    unsigned t = 0;
    for (unsigned i = 0; i < CTL_PROC_STATE_COUNT; i++) t += p[i];
    return t;
}

/* ---- JSON ---- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one:
 * RFC 3629, no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
    return len;
}

void ctl_json_string(buf_t *out, const char *s, size_t n) {
    if (s == NULL) {
        buf_append_str(out, "null");
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* p[run..i) is a stretch copied as it is */
    buf_append(out, "\"", 1);
    while (i < n) {
        unsigned c = p[i];
        const char *esc = NULL;
        char tmp[8];
        size_t len = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80 && (len = utf8_seq_len(p + i, n - i)) == 0) {
            esc = "\\ufffd";
            len = 1;
        }
        if (esc) {
            buf_append(out, p + run, i - run);
            buf_append_str(out, esc);
            run = i + len;
        }
        i += len;
    }
    buf_append(out, p + run, n - run);
    buf_append(out, "\"", 1);
}

static void json_str(buf_t *out, const char *s) {
    ctl_json_string(out, s, s ? strlen(s) : 0);
}

static void json_hist(buf_t *out, const ctl_hist_t *h) {
    char b[48];
    uint64_t cum = 0;
    buf_append_str(out, "{\"buckets\":{");
    for (unsigned i = 0; i < CTL_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        fmt_bound(b, sizeof(b), ctl_hist_bound_us(i));
        buf_printf(out, "%s\"%s\":%" PRIu64, i ? "," : "", b, cum);
    }
    fmt_decimal(b, sizeof(b), h->sum);
    buf_printf(out, "},\"sum\":%s,\"count\":%" PRIu64 "}", b, h->count);
}

static void json_classes(buf_t *out, const uint64_t c[CTL_CLASS_COUNT]) {
    buf_printf(out, "\"total\":%" PRIu64, sum_classes(c));
    for (unsigned i = 0; i < CTL_CLASS_COUNT; i++)
        buf_printf(out, ",\"%s\":%" PRIu64, ctl_class_name(i), c[i]);
}

static void json_server(buf_t *out, const ctl_server_status_t *s) {
    buf_append_str(out, "\"server\":{\"version\":");
    json_str(out, s->version ? s->version : "");
    buf_printf(out,
               ",\"pid\":%jd,\"uptime_seconds\":%" PRIu64 ",\"start_time\":%" PRId64
               ",\"reloads\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 "},\"connections\":%" PRIu64
               ",\"requests\":{",
               (intmax_t)s->pid, s->uptime_s, s->start_time, s->reloads_ok, s->reloads_failed,
               s->connections);
    json_classes(out, s->requests);
    buf_append_str(out, "},\"request_duration_seconds\":");
    json_hist(out, &s->duration);
    buf_printf(out,
               ",\"compression\":{\"responses\":%" PRIu64 ",\"bytes_in\":%" PRIu64
               ",\"bytes_out\":%" PRIu64 "},\"tls_handshakes\":{\"full\":%" PRIu64
               ",\"resumed\":%" PRIu64 ",\"failed\":%" PRIu64 "},\"http2\":{\"connections\":%" PRIu64
               ",\"streams\":%" PRIu64 "}}",
               s->compressed, s->compress_in_bytes, s->compress_out_bytes, s->tls_full,
               s->tls_resumed, s->tls_failed, s->h2_connections, s->h2_streams);
}

static void json_proc(buf_t *out, const ctl_proc_status_t *pr) {
    buf_printf(out, "{\"pid\":%jd,\"state\":", (intmax_t)pr->pid);
    json_str(out, pr->state ? pr->state : "unknown");
    buf_printf(out, ",\"requests\":%" PRIu64 ",\"age_seconds\":%" PRIu64 ",\"idle_seconds\":",
               pr->requests, pr->age_s);
    if (pr->idle_s >= 0) buf_printf(out, "%" PRId64, pr->idle_s);
    else buf_append_str(out, "null");
    if (pr->rss_bytes) buf_printf(out, ",\"rss_bytes\":%" PRIu64, pr->rss_bytes);
    else buf_append_str(out, ",\"rss_bytes\":null");
    char b[48];
    if (pr->cpu_known) {
        fmt_ms_as_seconds(b, sizeof(b), pr->cpu_ms);
        buf_printf(out, ",\"cpu_seconds\":%s", b);
    } else {
        buf_append_str(out, ",\"cpu_seconds\":null");
    }
    if (pr->method) {
        buf_append_str(out, ",\"request\":{\"method\":");
        json_str(out, pr->method);
        buf_append_str(out, ",\"uri\":");
        json_str(out, pr->uri ? pr->uri : "");
        fmt_ms_as_seconds(b, sizeof(b), pr->request_ms);
        buf_printf(out, ",\"elapsed_seconds\":%s}", b);
    } else {
        buf_append_str(out, ",\"request\":null");
    }
    if (pr->group) buf_printf(out, ",\"group\":%jd}", (intmax_t)pr->group);
    else buf_append_str(out, ",\"group\":null}");
}

static void json_crash(buf_t *out, const ctl_crash_t *c) {
    char b[48];
    if (c == NULL) {
        buf_append_str(out, "null");
        return;
    }
    buf_printf(out, "{\"pid\":%jd,\"seconds_ago\":%" PRIu64 ",\"how\":", (intmax_t)c->pid,
               c->age_s);
    json_str(out, c->how ? c->how : "");
    if (c->signal) buf_printf(out, ",\"signal\":%d,\"exit_status\":null", c->signal);
    else buf_printf(out, ",\"signal\":null,\"exit_status\":%" PRId64, c->exit_status);
    if (c->method) {
        buf_append_str(out, ",\"request\":{\"method\":");
        json_str(out, c->method);
        buf_append_str(out, ",\"uri\":");
        json_str(out, c->uri ? c->uri : "");
        fmt_ms_as_seconds(b, sizeof(b), c->request_ms);
        buf_printf(out, ",\"elapsed_seconds\":%s}", b);
    } else {
        buf_append_str(out, ",\"request\":null");
    }
    buf_printf(out, ",\"requests\":%" PRIu64 ",\"stderr\":[", c->requests);
    for (size_t i = 0; i < c->n_stderr; i++) {
        if (i) buf_append(out, ",", 1);
        json_str(out, c->stderr_lines[i]);
    }
    buf_append_str(out, "]}");
}

static void json_pool(buf_t *out, const ctl_pool_status_t *p) {
    buf_append_str(out, "{\"name\":");
    json_str(out, p->name ? p->name : "");
    buf_printf(out,
               ",\"limit\":%u,\"auto\":%s,\"min_instances\":%u,\"max_concurrent_starts\":%u"
               ",\"private_memory_limit_bytes\":%" PRIu64 ",\"slow_request_seconds\":%u"
               ",\"recycle_mode\":\"%s\",\"warm_recycle_old\":%u,\"prefork_children\":%u"
               ",\"autotune\":",
               p->limit, p->auto_limit ? "true" : "false", p->min_instances,
               p->max_concurrent_starts, p->private_memory_limit, p->slow_request_seconds,
               p->recycle_mode ? p->recycle_mode : "warm", p->warm_old, p->prefork_children);
    if (p->autotune_note) {
        buf_append_str(out, "{\"note\":");
        json_str(out, p->autotune_note);
        buf_printf(out, ",\"seconds_ago\":%" PRIu64 "}", p->autotune_note_age_s);
    } else {
        buf_append_str(out, "null");
    }
    buf_printf(out, ",\"failed\":%s,\"retry_in_seconds\":%" PRIu64 ",\"processes\":{\"total\":%u",
               p->failed ? "true" : "false", p->failed ? p->failed_retry_s : 0,
               sum_procs(p->procs));
    for (unsigned i = 0; i < CTL_PROC_STATE_COUNT; i++)
        buf_printf(out, ",\"%s\":%u", ctl_proc_state_name(i), p->procs[i]);
    buf_printf(out,
               "},\"queue\":{\"queued\":%u,\"length\":%u,\"acquired\":%" PRIu64
               ",\"wait_ms_total\":%" PRIu64 ",\"full\":%" PRIu64 "}"
               ",\"requests\":{\"completed\":%" PRIu64 ",",
               p->queued, p->queue_length, p->acquired, p->queue_wait_ms_total, p->queue_full,
               p->completed);
    json_classes(out, p->requests);
    buf_append_str(out, "},\"request_duration_seconds\":");
    json_hist(out, &p->duration);
    buf_printf(out,
               ",\"spawns\":%" PRIu64 ",\"spawn_failures\":%" PRIu64 ",\"rapid_fails\":%" PRIu64
               ",\"recycles\":{",
               p->spawns, p->spawn_failures, p->rapid_fails);
    for (unsigned i = 0; i < CTL_RECYCLE_COUNT; i++)
        buf_printf(out, "%s\"%s\":%" PRIu64, i ? "," : "", ctl_recycle_name(i), p->recycles[i]);
    buf_printf(out,
               "},\"exits_unexpected\":%" PRIu64 ",\"stderr_lines\":%" PRIu64
               ",\"slow_requests\":%" PRIu64 ",\"crashes\":%" PRIu64 ",\"last_crash\":",
               p->exits_unexpected, p->stderr_lines, p->slow_requests, p->crashes);
    json_crash(out, p->last_crash);
    buf_append_str(out, ",\"process_list\":[");
    for (size_t i = 0; i < p->n_procs; i++) {
        if (i) buf_append(out, ",", 1);
        json_proc(out, &p->procs_list[i]);
    }
    buf_append_str(out, "]}");
}

void ctl_render_json(buf_t *out, const ctl_status_t *st, const ctl_pool_status_t *only) {
    buf_append(out, "{", 1);
    json_server(out, &st->server);
    buf_append_str(out, ",\"pools\":[");
    bool first = true;
    for (size_t i = 0; i < st->n_pools; i++) {
        if (only && only != &st->pools[i]) continue;
        if (!first) buf_append(out, ",", 1);
        first = false;
        json_pool(out, &st->pools[i]);
    }
    buf_append_str(out, "]}\n");
}

/* ---- Text ---- */

void ctl_human_duration(char *out, size_t size, uint64_t s) {
    if (s < 60) snprintf(out, size, "%" PRIu64 "s", s);
    else if (s < 3600) snprintf(out, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400) snprintf(out, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
    else snprintf(out, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

void ctl_human_bytes(char *out, size_t size, uint64_t b) {
    static const char units[] = "KMGTPE";
    if (b == 0) {
        snprintf(out, size, "-");
        return;
    }
    if (b < 1024) {
        snprintf(out, size, "%" PRIu64 "B", b);
        return;
    }
    double v = (double)b / 1024;
    unsigned u = 0;
    /* Switch units before the value would print as 1024.0. */
    while (v >= 1023.95 && u + 1 < sizeof(units) - 1) {
        v /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f%c", v, units[u]);
}

void ctl_human_seconds(char *out, size_t size, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    if (s < 0.001) snprintf(out, size, "%.0fus", s * 1e6);
    else if (s < 1) snprintf(out, size, "%.1fms", s * 1e3);
    else if (s < 10) snprintf(out, size, "%.2fs", s);
    else snprintf(out, size, "%.1fs", s);
}

/* Append s with control bytes (and DEL) replaced by '?': names and notes go to a terminal. */
static void text_safe(buf_t *out, const char *s) {
    if (s == NULL) return;
    size_t start = out->len;
    buf_append_str(out, s);
    for (size_t i = start; i < out->len; i++)
        if ((unsigned char)out->data[i] < 0x20 || out->data[i] == 0x7f) out->data[i] = '?';
}

static void text_mean(buf_t *out, const ctl_hist_t *h) {
    char t[32];
    if (h->count == 0) return;
    ctl_human_seconds(t, sizeof(t), h->sum / (double)h->count);
    buf_printf(out, "  mean %s", t);
}

static void text_server(buf_t *out, const ctl_server_status_t *s) {
    char up[32], since[64] = "";
    struct tm tm;
    time_t t = (time_t)s->start_time;
    ctl_human_duration(up, sizeof(up), s->uptime_s);
    if (s->start_time > 0 && gmtime_r(&t, &tm))
        strftime(since, sizeof(since), " (since %Y-%m-%d %H:%M:%S UTC)", &tm);
    buf_append_str(out, "fcgihost ");
    text_safe(out, s->version ? s->version : "?");
    buf_printf(out, "  pid %jd  up %s%s  reloads %" PRIu64 " ok, %" PRIu64 " failed\n",
               (intmax_t)s->pid, up, since, s->reloads_ok, s->reloads_failed);
    buf_printf(out, "connections %" PRIu64 "  requests %" PRIu64, s->connections,
               sum_classes(s->requests));
    for (unsigned i = 0; i < CTL_CLASS_COUNT; i++)
        buf_printf(out, "%s%s %" PRIu64, i ? ", " : " (", ctl_class_name(i), s->requests[i]);
    buf_append(out, ")", 1);
    text_mean(out, &s->duration);
    buf_append(out, "\n", 1);
}

/* "php  limit 12 (auto: raised 8 -> 12: requests waited, 30s ago)  processes 12 (idle 3, busy 9)
 *  queue 0/1000  requests 12345" */
static void text_pool_summary(buf_t *out, const ctl_pool_status_t *p) {
    char t[32];
    text_safe(out, p->name ? p->name : "?");
    buf_printf(out, "  limit %u", p->limit);
    if (p->auto_limit && p->autotune_note) {
        ctl_human_duration(t, sizeof(t), p->autotune_note_age_s);
        buf_append_str(out, " (auto: ");
        text_safe(out, p->autotune_note);
        buf_printf(out, ", %s ago)", t);
    } else if (p->auto_limit) {
        buf_append_str(out, " (auto)");
    }
    if (p->min_instances) buf_printf(out, "  min %u", p->min_instances);
    if (p->failed) {
        ctl_human_duration(t, sizeof(t), p->failed_retry_s);
        buf_printf(out, "  FAILED (retry in %s)", t);
    }
    buf_printf(out, "  processes %u", sum_procs(p->procs));
    bool any = false;
    for (unsigned i = 0; i < CTL_PROC_STATE_COUNT; i++) {
        if (p->procs[i] == 0) continue;
        buf_printf(out, "%s%s %u", any ? ", " : " (", ctl_proc_state_name(i), p->procs[i]);
        any = true;
    }
    if (any) buf_append(out, ")", 1);
    if (p->warm_old) buf_printf(out, "  WARM RECYCLE (%u old left)", p->warm_old);
    buf_printf(out, "  queue %u/%u  requests %" PRIu64 "\n", p->queued, p->queue_length,
               p->completed);
}

static void text_pool_counters(buf_t *out, const ctl_pool_status_t *p) {
    char t[32];
    buf_append_str(out, "  responses");
    for (unsigned i = 0; i < CTL_CLASS_COUNT; i++)
        buf_printf(out, "  %s %" PRIu64, ctl_class_name(i), p->requests[i]);
    text_mean(out, &p->duration);
    buf_append(out, "\n", 1);
    buf_printf(out,
               "  processes  spawns %" PRIu64 "  spawn failures %" PRIu64 "  rapid fails %" PRIu64
               "  unexpected exits %" PRIu64 "  stderr lines %" PRIu64,
               p->spawns, p->spawn_failures, p->rapid_fails, p->exits_unexpected, p->stderr_lines);
    if (p->slow_request_seconds || p->slow_requests)
        buf_printf(out, "  slow requests %" PRIu64, p->slow_requests);
    buf_append(out, "\n", 1);
    uint64_t total = 0;
    for (unsigned i = 0; i < CTL_RECYCLE_COUNT; i++) total += p->recycles[i];
    buf_printf(out, "  recycles   %" PRIu64, total);
    bool any = false;
    for (unsigned i = 0; i < CTL_RECYCLE_COUNT; i++) {
        if (p->recycles[i] == 0) continue;
        buf_printf(out, "%s%s %" PRIu64, any ? ", " : " (", ctl_recycle_name(i), p->recycles[i]);
        any = true;
    }
    if (any) buf_append(out, ")", 1);
    buf_printf(out, "\n  queue      waits %" PRIu64, p->acquired);
    if (p->acquired) {
        ctl_human_seconds(t, sizeof(t), (double)p->queue_wait_ms_total / 1000 / (double)p->acquired);
        buf_printf(out, " (mean %s)", t);
    }
    buf_printf(out, "  full (503) %" PRIu64 "\n", p->queue_full);
}

/* "  last crash 12s ago: pid 2345 killed by signal 11 (Segmentation fault) while serving GET /x
 *  (0.20s), after 17 requests" and its stderr lines. */
static void text_crash(buf_t *out, const ctl_pool_status_t *p) {
    const ctl_crash_t *c = p->last_crash;
    if (c == NULL) return;
    char t[32];
    size_t start = out->len;
    ctl_human_duration(t, sizeof(t), c->age_s);
    buf_printf(out, "  last crash %s ago (%" PRIu64 " in all): pid %jd %s", t, p->crashes,
               (intmax_t)c->pid, c->how ? c->how : "?");
    if (c->method) {
        ctl_human_seconds(t, sizeof(t), (double)c->request_ms / 1000);
        buf_printf(out, " while serving %s %s (%s)", c->method, c->uri ? c->uri : "", t);
    } else {
        buf_append_str(out, " between requests");
    }
    buf_printf(out, ", after %" PRIu64 " requests\n", c->requests);
    for (size_t i = 0; i < c->n_stderr; i++)
        buf_printf(out, "    stderr: %s\n", c->stderr_lines[i]);
    for (size_t j = start; j < out->len; j++) /* borrowed text from the application */
        if (((unsigned char)out->data[j] < 0x20 && out->data[j] != '\n') || out->data[j] == 0x7f)
            out->data[j] = '?';
}

#define PROC_ROW "  %-8s %-9s %9s  %-7s %-7s %7s %7s  %s\n"
#define PROC_URI_SHOWN 60 /* the table cuts a longer URI (the JSON has it whole) */
#define PROC_ROW_REQUEST 160

/* "GET /x.php?a=1 (2.50s)" or "-". */
static void text_request(char *out, size_t size, const ctl_proc_status_t *pr) {
    if (pr->method == NULL) {
        snprintf(out, size, "-");
        return;
    }
    char t[32];
    const char *uri = pr->uri ? pr->uri : "";
    int n = (int)strlen(uri);
    ctl_human_seconds(t, sizeof(t), (double)pr->request_ms / 1000);
    if (n > PROC_URI_SHOWN)
        snprintf(out, size, "%s %.*s... (%s)", pr->method, PROC_URI_SHOWN - 3, uri, t);
    else
        snprintf(out, size, "%s %s (%s)", pr->method, uri, t);
}

static void text_procs(buf_t *out, const ctl_pool_status_t *p) {
    if (p->n_procs == 0) return;
    buf_printf(out, PROC_ROW, "PID", "STATE", "REQUESTS", "AGE", "IDLE", "RSS", "CPU",
               "REQUEST");
    for (size_t i = 0; i < p->n_procs; i++) {
        const ctl_proc_status_t *pr = &p->procs_list[i];
        char pid[24], req[24], age[32], idle[32] = "-", rss[32], cpu[32] = "-";
        char cur[PROC_ROW_REQUEST];
        snprintf(pid, sizeof(pid), "%jd", (intmax_t)pr->pid);
        snprintf(req, sizeof(req), "%" PRIu64, pr->requests);
        ctl_human_duration(age, sizeof(age), pr->age_s);
        if (pr->idle_s >= 0) ctl_human_duration(idle, sizeof(idle), (uint64_t)pr->idle_s);
        ctl_human_bytes(rss, sizeof(rss), pr->rss_bytes);
        if (pr->cpu_known) ctl_human_seconds(cpu, sizeof(cpu), (double)pr->cpu_ms / 1000);
        text_request(cur, sizeof(cur), pr);
        size_t start = out->len;
        buf_printf(out, PROC_ROW, pid, pr->state ? pr->state : "?", req, age, idle, rss, cpu, cur);
        for (size_t j = start; j < out->len - 1; j++) /* state, method and URI are borrowed */
            if ((unsigned char)out->data[j] < 0x20 || out->data[j] == 0x7f) out->data[j] = '?';
    }
}

void ctl_render_text(buf_t *out, const ctl_status_t *st, const ctl_pool_status_t *only) {
    if (!only) text_server(out, &st->server);
    for (size_t i = 0; i < st->n_pools; i++) {
        const ctl_pool_status_t *p = &st->pools[i];
        if (only && only != p) continue;
        if (!only) buf_append(out, "\n", 1);
        text_pool_summary(out, p);
        text_pool_counters(out, p);
        text_crash(out, p);
        text_procs(out, p);
    }
    if (!only && st->n_pools == 0) buf_append_str(out, "\nno FastCGI applications configured\n");
}

/* ---- Prometheus ---- */

void ctl_prom_label_value(buf_t *out, const char *s) {
    size_t run = 0, i = 0;
    for (; s[i]; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        buf_append(out, s + run, i - run);
        buf_append_str(out, esc);
        run = i + 1;
    }
    buf_append(out, s + run, i - run);
}

static void prom_family(buf_t *out, const char *name, const char *type, const char *help) {
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{app="NAME"[,extra]} value: `extra` is a preformatted label (its value already escaped). */
static void prom_app_sample(buf_t *out, const char *name, const ctl_pool_status_t *p,
                            const char *extra, uint64_t value) {
    buf_printf(out, "%s{app=\"", name);
    ctl_prom_label_value(out, p->name ? p->name : "");
    buf_printf(out, "\"%s%s} %" PRIu64 "\n", extra ? "," : "", extra ? extra : "", value);
}

/* The _bucket, _sum and _count samples of one histogram. `app` NULL: no labels. */
static void prom_hist(buf_t *out, const char *name, const char *app, const ctl_hist_t *h) {
    buf_t lab;
    char b[48];
    uint64_t cum = 0;
    buf_init(&lab);
    if (app) {
        buf_append_str(&lab, "app=\"");
        ctl_prom_label_value(&lab, app);
        buf_append_str(&lab, "\"");
    }
    const char *l = lab.len ? lab.data : "";
    for (unsigned i = 0; i < CTL_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        fmt_bound(b, sizeof(b), ctl_hist_bound_us(i));
        buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, l, app ? "," : "", b, cum);
    }
    fmt_decimal(b, sizeof(b), h->sum);
    buf_printf(out, "%s_sum%s%s%s %s\n", name, app ? "{" : "", l, app ? "}" : "", b);
    buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", name, app ? "{" : "", l, app ? "}" : "",
               h->count);
    buf_dispose(&lab);
}

static void prom_server(buf_t *out, const ctl_server_status_t *s) {
    prom_family(out, "fcgihost_build_info", "gauge", "fcgihost's version, as a label; always 1.");
    buf_append_str(out, "fcgihost_build_info{version=\"");
    ctl_prom_label_value(out, s->version ? s->version : "");
    buf_append_str(out, "\"} 1\n");
    prom_family(out, "fcgihost_start_time_seconds", "gauge",
                "Unix time the server started, in seconds.");
    buf_printf(out, "fcgihost_start_time_seconds %" PRId64 "\n", s->start_time);
    prom_family(out, "fcgihost_uptime_seconds", "gauge", "Seconds since the server started.");
    buf_printf(out, "fcgihost_uptime_seconds %" PRIu64 "\n", s->uptime_s);
    prom_family(out, "fcgihost_reloads_total", "counter",
                "Configuration reloads, by result (a failed reload keeps the running one).");
    buf_printf(out, "fcgihost_reloads_total{result=\"ok\"} %" PRIu64 "\n", s->reloads_ok);
    buf_printf(out, "fcgihost_reloads_total{result=\"failed\"} %" PRIu64 "\n", s->reloads_failed);
    prom_family(out, "fcgihost_connections", "gauge", "HTTP connections open now.");
    buf_printf(out, "fcgihost_connections %" PRIu64 "\n", s->connections);
    prom_family(out, "fcgihost_http_requests_total", "counter",
                "HTTP responses sent, by status class.");
    for (unsigned i = 0; i < CTL_CLASS_COUNT; i++)
        buf_printf(out, "fcgihost_http_requests_total{class=\"%s\"} %" PRIu64 "\n",
                   ctl_class_name(i), s->requests[i]);
    /* Only the codes sent so far: at most CTL_CODE_COUNT series, usually a handful. */
    prom_family(out, "fcgihost_http_responses_total", "counter",
                "HTTP responses sent, by status code (100 to 599; codes not sent yet are absent).");
    for (unsigned i = 0; s->codes && i < CTL_CODE_COUNT; i++)
        if (s->codes[i])
            buf_printf(out, "fcgihost_http_responses_total{code=\"%u\"} %" PRIu64 "\n",
                       CTL_CODE_MIN + i, s->codes[i]);
    prom_family(out, "fcgihost_http_request_duration_seconds", "histogram",
                "Time from the request head to the end of the response, in seconds.");
    prom_hist(out, "fcgihost_http_request_duration_seconds", NULL, &s->duration);
    prom_family(out, "fcgihost_compressed_responses_total", "counter",
                "Responses coded on the fly (gzip or br).");
    buf_printf(out, "fcgihost_compressed_responses_total %" PRIu64 "\n", s->compressed);
    prom_family(out, "fcgihost_compression_bytes_total", "counter",
                "Body bytes of coded responses, before (in) and after (out) coding.");
    buf_printf(out, "fcgihost_compression_bytes_total{direction=\"in\"} %" PRIu64 "\n",
               s->compress_in_bytes);
    buf_printf(out, "fcgihost_compression_bytes_total{direction=\"out\"} %" PRIu64 "\n",
               s->compress_out_bytes);
    prom_family(out, "fcgihost_tls_handshakes_total", "counter",
                "TLS handshakes: full, resumed (session tickets) and failed.");
    buf_printf(out, "fcgihost_tls_handshakes_total{result=\"full\"} %" PRIu64 "\n", s->tls_full);
    buf_printf(out, "fcgihost_tls_handshakes_total{result=\"resumed\"} %" PRIu64 "\n",
               s->tls_resumed);
    buf_printf(out, "fcgihost_tls_handshakes_total{result=\"failed\"} %" PRIu64 "\n",
               s->tls_failed);
    prom_family(out, "fcgihost_http2_connections_total", "counter", "HTTP/2 connections accepted.");
    buf_printf(out, "fcgihost_http2_connections_total %" PRIu64 "\n", s->h2_connections);
    prom_family(out, "fcgihost_http2_streams_total", "counter", "HTTP/2 streams that carried a request.");
    buf_printf(out, "fcgihost_http2_streams_total %" PRIu64 "\n", s->h2_streams);
}

/* The per-application families that hold one number per pool, in output order. */
typedef struct prom_simple {
    const char *name, *type, *help;
    uint64_t (*get)(const ctl_pool_status_t *p);
} prom_simple_t;

#define GETTER(field) \
    static uint64_t get_##field(const ctl_pool_status_t *p) { \
        return (uint64_t)p->field; \
    }
GETTER(completed)
GETTER(limit)
GETTER(auto_limit)
GETTER(min_instances)
GETTER(max_concurrent_starts)
GETTER(private_memory_limit)
GETTER(queued)
GETTER(queue_length)
GETTER(acquired)
GETTER(queue_full)
GETTER(failed)
GETTER(rapid_fails)
GETTER(spawns)
GETTER(spawn_failures)
GETTER(exits_unexpected)
GETTER(stderr_lines)
GETTER(crashes)
GETTER(slow_requests)
GETTER(slow_request_seconds)
GETTER(warm_old)
GETTER(prefork_children)
#undef GETTER

static const prom_simple_t prom_simple[] = {
    {"fcgihost_fastcgi_requests_total", "counter",
     "FastCGI requests the application's processes ended, completed or not.", get_completed},
    {"fcgihost_instance_limit", "gauge", "The effective maxInstances now.", get_limit},
    {"fcgihost_instance_limit_auto", "gauge",
     "1 when maxInstances = 0 and the limit is tuned automatically.", get_auto_limit},
    {"fcgihost_min_instances", "gauge", "The minInstances setting: processes kept started.",
     get_min_instances},
    {"fcgihost_max_concurrent_starts", "gauge",
     "The maxConcurrentStarts setting: processes that may be starting at once.",
     get_max_concurrent_starts},
    {"fcgihost_prefork_children", "gauge",
     "The preforkChildren setting: children per process; 0: one process per socket.",
     get_prefork_children},
    {"fcgihost_private_memory_limit_bytes", "gauge",
     "The privateMemoryLimit setting in bytes; 0: none.", get_private_memory_limit},
    {"fcgihost_queue_length", "gauge", "Requests waiting for a process now.", get_queued},
    {"fcgihost_queue_capacity", "gauge", "The queueLength setting.", get_queue_length},
    {"fcgihost_queue_acquired_total", "counter", "Queued requests that got a process.",
     get_acquired},
    /* fcgihost_queue_wait_seconds_total follows, written by prom_queue_wait (milliseconds). */
    {"fcgihost_queue_full_total", "counter", "Requests answered 503 because the queue was full.",
     get_queue_full},
    {"fcgihost_failed", "gauge", "1 while the application is failed after rapid fails.",
     get_failed},
    {"fcgihost_rapid_fails_total", "counter",
     "Processes that exited before their first request or during one.", get_rapid_fails},
    {"fcgihost_spawns_total", "counter", "Processes started.", get_spawns},
    {"fcgihost_spawn_failures_total", "counter", "Process starts that failed.",
     get_spawn_failures},
    {"fcgihost_exits_unexpected_total", "counter", "Processes that exited without being asked to.",
     get_exits_unexpected},
    {"fcgihost_stderr_lines_total", "counter", "Lines the processes wrote to stderr.",
     get_stderr_lines},
    {"fcgihost_crashes_total", "counter",
     "Processes that died by a signal or with a non-zero status without being asked to.",
     get_crashes},
    {"fcgihost_slow_requests_total", "counter",
     "Requests slower than slowRequestSeconds (each logged with its phases).", get_slow_requests},
    {"fcgihost_slow_request_seconds", "gauge", "The slowRequestSeconds setting; 0: off.",
     get_slow_request_seconds},
    {"fcgihost_warm_recycle_old_processes", "gauge",
     "Old processes of a running warm recycle, still serving or draining; 0: none runs.",
     get_warm_old},
};

static void prom_queue_wait(buf_t *out, const ctl_status_t *st) {
    char b[48];
    prom_family(out, "fcgihost_queue_wait_seconds_total", "counter",
                "Seconds queued requests waited for a process, summed.");
    for (size_t i = 0; i < st->n_pools; i++) {
        const ctl_pool_status_t *p = &st->pools[i];
        fmt_ms_as_seconds(b, sizeof(b), p->queue_wait_ms_total);
        buf_append_str(out, "fcgihost_queue_wait_seconds_total{app=\"");
        ctl_prom_label_value(out, p->name ? p->name : "");
        buf_printf(out, "\"} %s\n", b);
    }
}

static void prom_pools(buf_t *out, const ctl_status_t *st) {
    char lab[64];
    prom_family(out, "fcgihost_app_requests_total", "counter",
                "HTTP responses to requests mapped to the application, by status class.");
    for (size_t i = 0; i < st->n_pools; i++)
        for (unsigned c = 0; c < CTL_CLASS_COUNT; c++) {
            snprintf(lab, sizeof(lab), "class=\"%s\"", ctl_class_name(c));
            prom_app_sample(out, "fcgihost_app_requests_total", &st->pools[i], lab,
                            st->pools[i].requests[c]);
        }
    prom_family(out, "fcgihost_app_request_duration_seconds", "histogram",
                "Duration of the requests mapped to the application, in seconds.");
    for (size_t i = 0; i < st->n_pools; i++)
        prom_hist(out, "fcgihost_app_request_duration_seconds",
                  st->pools[i].name ? st->pools[i].name : "", &st->pools[i].duration);
    prom_family(out, "fcgihost_processes", "gauge", "Live processes by state.");
    for (size_t i = 0; i < st->n_pools; i++)
        for (unsigned s = 0; s < CTL_PROC_STATE_COUNT; s++) {
            snprintf(lab, sizeof(lab), "state=\"%s\"", ctl_proc_state_name(s));
            prom_app_sample(out, "fcgihost_processes", &st->pools[i], lab, st->pools[i].procs[s]);
        }
    prom_family(out, "fcgihost_recycles_total", "counter", "Processes the server ended, by reason.");
    for (size_t i = 0; i < st->n_pools; i++)
        for (unsigned r = 0; r < CTL_RECYCLE_COUNT; r++) {
            snprintf(lab, sizeof(lab), "reason=\"%s\"", ctl_recycle_name(r));
            prom_app_sample(out, "fcgihost_recycles_total", &st->pools[i], lab,
                            st->pools[i].recycles[r]);
        }
    for (size_t m = 0; m < sizeof(prom_simple) / sizeof(prom_simple[0]); m++) {
        const prom_simple_t *ps = &prom_simple[m];
        prom_family(out, ps->name, ps->type, ps->help);
        for (size_t i = 0; i < st->n_pools; i++)
            prom_app_sample(out, ps->name, &st->pools[i], NULL, ps->get(&st->pools[i]));
        if (strcmp(ps->name, "fcgihost_queue_acquired_total") == 0) prom_queue_wait(out, st);
    }
}

void ctl_render_prometheus(buf_t *out, const ctl_status_t *st) {
    prom_server(out, &st->server);
    prom_pools(out, st);
}
