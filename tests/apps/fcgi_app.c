/*
 * fcgi_app — a FastCGI responder for fcgihost's tests and benchmarks.
 *
 * It accepts on fd 0 (FCGI_LISTENSOCK_FILENO) like any application a web server launches,
 * and QUERY_STRING picks what it does; parameters combine (?sleep=200&status=404):
 *
 *   (none), echo=env   200 text/plain: every param as NAME=VALUE (sorted), then pid=, fd0=,
 *                      process_fcgi_x_pipe= (the process's own _FCGI_X_PIPE_),
 *                      requests= (served by this process, this one included), stdin_bytes=,
 *                      stdin_sum= (64-bit FNV-1a of the body, hex)
 *   echo=body          the request body back, application/octet-stream
 *   sleep=MS           sleep before answering          hang=1   never answer, read nothing
 *   mark=TEXT          "fcgi_app <pid> mark TEXT" on fd 2 (the server's log) as the request starts,
 *                      so a test can wait for a request to be inside its process
 *   stderr=TEXT        TEXT (URL-decoded) on FCGI_STDERR; stderr_when=before|between|after
 *   crash=1            abort() before answering          crash=exit  _exit(3) before answering
 *   leak=N[k|m|g]      N bytes allocated, written and never freed: the process grows by N bytes
 *                      of private memory on each such request
 *   crash=after_headers  write the headers, flush, _exit(1)
 *   exit_after=N       exit(0) after this process has fully answered N requests
 *   status=NNN         "Status: NNN Reason"             ctype=TYPE  Content-Type override
 *   rawheaders=NAME    a canned odd header block (see raw_blocks[]) and a small body (or big=)
 *   big=N[k|m|g]       N pattern bytes written in 64 KiB chunks, flushed as they go
 *
 * Environment: FCGI_APP_FAIL_AT_START=1 exit(1) at once; FCGI_APP_START_DELAY_MS delays the
 * start; FCGI_APP_TRACE_START=1 writes "fcgi_app <pid> start-begin <ns>" before that delay and
 * "fcgi_app <pid> start-end <ns>" after it (CLOCK_MONOTONIC, comparable between processes), just
 * before the accept loop; FCGI_APP_LOG_SIGTERM=1 logs SIGTERM on fd 2; FCGI_APP_TERM_DELAY_MS keeps serving that
 * long after SIGTERM, then exit(0); without a delay SIGTERM means exit(0) at once, in any state.
 * "fcgi_app <pid> started _FCGI_X_PIPE_=<value>" goes to fd 2 at start.
 *
 * Uses fcgiapp.h (not fcgi_stdio.h) so that stdout/stderr records are controlled precisely.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcgiapp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define FCGI_LISTENSOCK_FILENO 0 /* from the FastCGI specification; fastcgi.h is not installed */

/* The request's options, decoded from QUERY_STRING. Strings point into `storage`. */
typedef struct {
    char storage[8192];
    const char *echo, *mark, *stderr_text, *stderr_when, *crash, *status, *rawheaders, *ctype;
    long sleep_ms, exit_after;
    int hang;
    unsigned long long big, leak;
    int has_big;
} opts_t;

static unsigned long served;
static int term_log;     /* FCGI_APP_LOG_SIGTERM=1 */
static long term_delay;  /* FCGI_APP_TERM_DELAY_MS */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long long mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long env_long(const char *name) {
    const char *v = getenv(name);
    return v ? atol(v) : 0;
}

static void on_alarm(int sig) {
    (void)sig;
    _exit(0);
}

/* SIGTERM: log it, then exit now or after the grace delay while the main loop keeps serving.
 * Only async-signal-safe calls here; the message is formatted in main(). */
static char term_msg[64];
static void on_sigterm(int sig) {
    (void)sig;
    if (term_log && write(2, term_msg, strlen(term_msg)) < 0) {
    }
    if (term_delay <= 0)
        _exit(0);
    struct itimerval it = {{0, 0}, {term_delay / 1000, (term_delay % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* libfcgi's FCGX_FPrintF has its own printf that knows neither %zu nor %llx: format here. */
__attribute__((format(printf, 2, 3))) static void put_fmt(FCGX_Stream *out, const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        FCGX_PutStr(line, n < (int)sizeof line ? n : (int)sizeof line - 1, out);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' in place; returns the new length. */
static size_t url_decode(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static unsigned long long parse_size(const char *v) {
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    switch (*end) {
    case 'k': case 'K': return n << 10;
    case 'm': case 'M': return n << 20;
    case 'g': case 'G': return n << 30;
    default: return n;
    }
}

static void parse_query(const char *qs, opts_t *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->storage, sizeof o->storage, "%s", qs ? qs : "");
    char *save = NULL;
    for (char *kv = strtok_r(o->storage, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');
        if (v)
            *v++ = '\0';
        else
            v = kv + strlen(kv);
        url_decode(v);
        if (!strcmp(kv, "echo")) o->echo = v;
        else if (!strcmp(kv, "sleep")) o->sleep_ms = atol(v);
        else if (!strcmp(kv, "mark")) o->mark = v;
        else if (!strcmp(kv, "hang")) o->hang = atoi(v);
        else if (!strcmp(kv, "stderr")) o->stderr_text = v;
        else if (!strcmp(kv, "stderr_when")) o->stderr_when = v;
        else if (!strcmp(kv, "crash")) o->crash = v;
        else if (!strcmp(kv, "exit_after")) o->exit_after = atol(v);
        else if (!strcmp(kv, "status")) o->status = v;
        else if (!strcmp(kv, "rawheaders")) o->rawheaders = v;
        else if (!strcmp(kv, "ctype")) o->ctype = v;
        else if (!strcmp(kv, "big")) o->big = parse_size(v), o->has_big = 1;
        else if (!strcmp(kv, "leak")) o->leak = parse_size(v);
    }
}

static const char *reason(int code) {
    static const struct { int code; const char *text; } tab[] = {
        {200, "OK"}, {201, "Created"}, {204, "No Content"}, {301, "Moved Permanently"},
        {302, "Found"}, {304, "Not Modified"}, {400, "Bad Request"}, {403, "Forbidden"},
        {404, "Not Found"}, {500, "Internal Server Error"}, {502, "Bad Gateway"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].code == code)
            return tab[i].text;
    return "Whatever";
}

/* Canned header blocks for the responseHeaders tests; lengths are explicit because of "nul". */
#define RAW(name, text) {name, text, sizeof(text) - 1}
static const struct { const char *name, *text; size_t len; } raw_blocks[] = {
    RAW("nospace", "Content-Type:text/plain\r\nX-Test:nospace\r\n\r\n"),
    RAW("lfonly", "Content-Type: text/plain\nX-Test: lfonly\n\n"),
    RAW("mixed", "Status: 200 OK\nContent-Type: text/plain\r\nX-Test: mixed\n\r\n"),
    RAW("statusnoreason", "Status: 404\r\nContent-Type: text/plain\r\n\r\n"),
    RAW("httpline", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"),
    RAW("nocolon", "Content-Type: text/plain\r\nThis line has no colon\r\nX-Test: nocolon\r\n\r\n"),
    RAW("badname", "Content-Type: text/plain\r\nBad Name: x\r\n\r\n"),
    RAW("crinvalue", "Content-Type: text/plain\r\nX-Test: a\rb\r\n\r\n"),
    RAW("nul", "Content-Type: text/plain\r\nX-Test: a\0b\r\n\r\n"),
    RAW("spaces", "Content-Type:   text/plain  \r\nX-Test: \t spaces \t\r\n\r\n"),
    RAW("spacebeforecolon", "Content-Type: text/plain\r\nX-Test : spacebeforecolon\r\n\r\n"),
    RAW("location", "Location: /elsewhere\r\n\r\n"),
    RAW("cl5", "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n"),       /* with big=: more than it says */
    RAW("cl1m", "Content-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"), /* then a short body */
    RAW("status101", "Status: 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
    RAW("status103", "Status: 103 Early Hints\r\n\r\n"),
};

/* Reads the whole FCGI_STDIN; keeps it only when `keep` (echo=body). */
typedef struct {
    char *data;
    size_t len, cap;
    uint64_t sum;
} body_t;

static void read_body(FCGX_Stream *in, body_t *b, int keep) {
    char chunk[CHUNK];
    int n;
    b->sum = 0xcbf29ce484222325ULL;
    while ((n = FCGX_GetStr(chunk, sizeof chunk, in)) > 0) {
        for (int i = 0; i < n; i++)
            b->sum = (b->sum ^ (unsigned char)chunk[i]) * 0x100000001b3ULL;
        if (keep) {
            if (b->len + (size_t)n > b->cap) {
                b->cap = (b->len + (size_t)n) * 2;
                b->data = realloc(b->data, b->cap);
                if (!b->data)
                    abort();
            }
            memcpy(b->data + b->len, chunk, (size_t)n);
        }
        b->len += (size_t)n;
    }
}

static void describe_fd0(char *out, size_t outlen) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN];
    if (getsockname(0, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(out, outlen, "none(%s)", strerror(errno));
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        int named = sl > offsetof(struct sockaddr_un, sun_path);
        snprintf(out, outlen, "unix:%s", named ? un->sun_path : "");
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        snprintf(out, outlen, "tcp:%s:%u", addr, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        snprintf(out, outlen, "tcp:[%s]:%u", addr, ntohs(in6->sin6_port));
    } else {
        snprintf(out, outlen, "family%d", ss.ss_family);
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void write_env_body(FCGX_Request *req, const body_t *b) {
    size_t n = 0;
    while (req->envp[n])
        n++;
    char **sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted)
        abort();
    memcpy(sorted, req->envp, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    for (size_t i = 0; i < n; i++) {
        FCGX_PutS(sorted[i], req->out);
        FCGX_PutChar('\n', req->out);
    }
    free(sorted);
    char fd0[256];
    describe_fd0(fd0, sizeof fd0);
    const char *pipe = getenv("_FCGI_X_PIPE_");
    put_fmt(req->out, "pid=%ld\nfd0=%s\nprocess_fcgi_x_pipe=%s\nrequests=%lu\nstdin_bytes=%zu\nstdin_sum=%016llx\n",
                 (long)getpid(), fd0, pipe ? pipe : "(unset)", served, b->len, (unsigned long long)b->sum);
}

static void write_headers(FCGX_Request *req, const opts_t *o, const char *ctype) {
    if (o->rawheaders) {
        for (size_t i = 0; i < sizeof raw_blocks / sizeof raw_blocks[0]; i++) {
            if (!strcmp(raw_blocks[i].name, o->rawheaders)) {
                FCGX_PutStr(raw_blocks[i].text, (int)raw_blocks[i].len, req->out);
                return;
            }
        }
        put_fmt(req->out, "Status: 500 Unknown Raw Block\r\n");
    } else if (o->status) {
        put_fmt(req->out, "Status: %s %s\r\n", o->status, reason(atoi(o->status)));
    }
    put_fmt(req->out, "Content-Type: %s\r\n\r\n", o->ctype ? o->ctype : ctype);
}

static void write_big(FCGX_Stream *out, unsigned long long n) {
    static char pattern[CHUNK];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = "0123456789abcdef"[i % 16];
    while (n > 0) {
        int len = n < sizeof pattern ? (int)n : (int)sizeof pattern;
        if (FCGX_PutStr(pattern, len, out) < 0 || FCGX_FFlush(out) < 0)
            return; /* the server went away; nothing left to do for this request */
        n -= (unsigned long long)len;
    }
}

static void emit_stderr(FCGX_Request *req, const opts_t *o, const char *when) {
    const char *w = o->stderr_when ? o->stderr_when : "before";
    if (o->stderr_text && !strcmp(w, when)) {
        FCGX_PutS(o->stderr_text, req->err);
        FCGX_FFlush(req->err);
    }
}

static void handle(FCGX_Request *req) {
    opts_t o;
    body_t b = {0};
    parse_query(FCGX_GetParam("QUERY_STRING", req->envp), &o);
    if (o.mark)
        dprintf(2, "fcgi_app %d mark %s\n", (int)getpid(), o.mark);
    if (o.hang)
        for (;;)
            pause();
    int echo_body = o.echo && !strcmp(o.echo, "body");
    read_body(req->in, &b, echo_body);
    if (o.sleep_ms > 0)
        sleep_ms(o.sleep_ms);
    if (o.crash && !strcmp(o.crash, "1"))
        abort();
    if (o.crash && !strcmp(o.crash, "exit"))
        _exit(3);
    if (o.leak) { /* kept for the life of the process, on purpose */
        char *p = malloc(o.leak);
        if (p) memset(p, 0x5a, o.leak);
    }

    emit_stderr(req, &o, "before");
    const char *ctype = echo_body || o.has_big ? "application/octet-stream" : "text/plain";
    write_headers(req, &o, ctype);
    FCGX_FFlush(req->out);
    if (o.crash && !strcmp(o.crash, "after_headers"))
        _exit(1);
    emit_stderr(req, &o, "between");
    if (o.has_big)
        write_big(req->out, o.big);
    else if (o.rawheaders)
        put_fmt(req->out, "rawheaders=%s\n", o.rawheaders);
    else if (echo_body)
        FCGX_PutStr(b.data ? b.data : "", (int)b.len, req->out);
    else
        write_env_body(req, &b);
    FCGX_FFlush(req->out);
    emit_stderr(req, &o, "after");
    free(b.data);
    FCGX_Finish_r(req);
    if (o.exit_after > 0 && served >= (unsigned long)o.exit_after)
        exit(0);
}

int main(void) {
    const char *pipe_name = getenv("_FCGI_X_PIPE_");
    fprintf(stderr, "fcgi_app %ld started _FCGI_X_PIPE_=%s\n", (long)getpid(),
            pipe_name ? pipe_name : "(unset)");
    if (env_long("FCGI_APP_FAIL_AT_START") == 1) {
        fprintf(stderr, "fcgi_app %ld failing at start (FCGI_APP_FAIL_AT_START=1)\n",
                (long)getpid());
        exit(1);
    }
    int trace = env_long("FCGI_APP_TRACE_START") == 1;
    if (trace)
        fprintf(stderr, "fcgi_app %ld start-begin %lld\n", (long)getpid(), mono_ns());
    if (env_long("FCGI_APP_START_DELAY_MS") > 0)
        sleep_ms(env_long("FCGI_APP_START_DELAY_MS"));
    if (trace)
        fprintf(stderr, "fcgi_app %ld start-end %lld\n", (long)getpid(), mono_ns());

    FCGX_Request req;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, FCGI_LISTENSOCK_FILENO, 0) != 0) {
        fprintf(stderr, "fcgi_app %ld: FCGX_Init failed\n", (long)getpid());
        return 1;
    }
    /* After FCGX_Init, which catches SIGTERM only to make the accept loop return: ours ends the
     * process in any state (hang=1 included), as php-cgi does, unless a delay is asked for. */
    term_log = env_long("FCGI_APP_LOG_SIGTERM") == 1;
    term_delay = env_long("FCGI_APP_TERM_DELAY_MS");
    snprintf(term_msg, sizeof term_msg, "fcgi_app %ld got SIGTERM\n", (long)getpid());
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);

    while (FCGX_Accept_r(&req) >= 0) {
        served++;
        handle(&req);
    }
    return 0;
}
