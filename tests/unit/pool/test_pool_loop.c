/* Loop-level tests of src/pool (pool.c, worker.c): a real uv loop, real processes, sockets and
 * signals, driven through the public API the FastCGI handler uses (pool_acquire, worker_stream,
 * pool_release, pool_stop).
 *
 * The FastCGI application is this test binary itself. The pool re-executes it through its spawn
 * trampoline (argv[1] = POOL_SPAWN_ARG, so main() calls pool_child_main as fcgihost's main does),
 * which execs the application: this binary again, with argv[1] = FAKE_ARG, and main() then runs
 * fake_main(), a minimal blocking FastCGI responder accepting on fd 0 (FCGI_LISTENSOCK_FILENO).
 *
 * The fake takes its behaviour from the application's `env` entries:
 *   FAKE_TRACE_DIR=DIR    on SIGTERM, create DIR/term.<pid> (then exit 0, unless FAKE_IGNORE_TERM)
 *   FAKE_IGNORE_TERM=1    SIGTERM is recorded and otherwise ignored (SIGKILL is needed)
 *   FAKE_EXIT_AFTER=N     after its N-th answer, close the connection and exit 0 (php-cgi's
 *                         PHP_FCGI_MAX_REQUESTS)
 * and from each request's STDIN:
 *   "hang"   send response headers and "partial", then never answer further
 *   "die"    exit with status 3 without answering
 *   other    answer "pid=P conn=C req=R body=B" (C: connections accepted, R: requests answered)
 *
 * Every test ends in env_finish(): pool_stop, wait for its done callback, close every handle,
 * uv_loop_close() == 0, and the runtime directory empty (no socket left behind). Waits are on
 * conditions with deadlines (WAIT_FOR), never sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>
#include <dirent.h>

#include "config/config.h"
#include "fastcgi/codec.h"
#include "pool/pool.h"
#include "util/log.h"

#define FAKE_ARG "__pool_loop_fake_fcgi"
#define FAKE_BODY_MAX 256
#define TICK_MS 20      /* the stand-in for the server's maintenance timer (pool_tick) */
#define WAIT_MS 10000   /* default deadline of a wait: generous, a pass takes milliseconds */

/* ======================================================================================== */
/* The fake FastCGI application (runs in the spawned processes)                              */
/* ======================================================================================== */

static char fake_term_path[PATH_MAX];
static volatile sig_atomic_t fake_ignore_term;

static void fake_on_term(int sig) {
    (void)sig;
    if (fake_term_path[0]) {
        int fd = open(fake_term_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
    }
    if (!fake_ignore_term) _exit(0);
}

static bool read_full(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_full(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Append one record (padded) to out; returns the new length. */
static size_t fake_record(char *out, size_t at, fcgi_type_t type, uint16_t id, const char *data,
                          size_t len) {
    size_t pad = fcgi_record_header(out + at, type, id, len);
    memcpy(out + at + FCGI_HEADER_LEN, data, len);
    memset(out + at + FCGI_HEADER_LEN + len, 0, pad);
    return at + FCGI_HEADER_LEN + len + pad;
}

/* Answer the request whose STDIN was `body`. Returns false when the connection broke. */
static bool fake_answer(int c, uint16_t id, const char *body, unsigned conns, unsigned served) {
    static const char head[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    char text[512], out[1024];
    size_t n = 0;
    if (strcmp(body, "die") == 0) _exit(3);
    if (strcmp(body, "hang") == 0) {
        snprintf(text, sizeof(text), "%spartial", head);
        n = fake_record(out, 0, FCGI_STDOUT, id, text, strlen(text));
        write_full(c, out, n);
        for (;;) pause();
    }
    snprintf(text, sizeof(text), "%spid=%ld conn=%u req=%u body=%s", head, (long)getpid(), conns,
             served, body);
    n = fake_record(out, n, FCGI_STDOUT, id, text, strlen(text));
    n = fake_record(out, n, FCGI_STDOUT, id, "", 0);
    fcgi_end_request_write(out + n, id, 0, FCGI_REQUEST_COMPLETE);
    n += FCGI_END_REQUEST_LEN;
    return write_full(c, out, n);
}

/* One connection: requests one after another while the server keeps it (FCGI_KEEP_CONN). */
static void fake_serve(int c, unsigned *conns, unsigned *served, unsigned exit_after) {
    static char content[FCGI_MAX_CONTENT + 255];
    char body[FAKE_BODY_MAX + 1];
    size_t body_len = 0;
    uint16_t id = 0;
    bool keep = false, counted = false;
    for (;;) {
        char h[FCGI_HEADER_LEN];
        fcgi_header_t hd;
        if (!read_full(c, h, sizeof(h))) return;
        fcgi_header_decode(h, &hd);
        if (!read_full(c, content, (size_t)hd.content_len + hd.padding_len)) return;
        if (hd.type == FCGI_GET_VALUES) { /* the pool's readiness probe (SPEC 4.9): answer it */
            char out[64];
            static const char pair[] = {15, 1, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_',
                                        'C', 'O', 'N', 'N', 'S', '0'};
            size_t n = fake_record(out, 0, FCGI_GET_VALUES_RESULT, 0, pair, sizeof(pair));
            if (!write_full(c, out, n)) return;
            continue;
        }
        if (hd.type == FCGI_BEGIN_REQUEST && hd.content_len >= 8) {
            if (!counted) ++*conns; /* connections that carried a request (not the probe) */
            counted = true;
            id = hd.request_id;
            keep = (content[2] & FCGI_KEEP_CONN) != 0;
            body_len = 0;
        } else if (hd.type == FCGI_STDIN && hd.content_len > 0) {
            size_t take = hd.content_len;
            if (take > FAKE_BODY_MAX - body_len) take = FAKE_BODY_MAX - body_len;
            memcpy(body + body_len, content, take);
            body_len += take;
        } else if (hd.type == FCGI_STDIN) { /* the empty record: the request is complete */
            body[body_len] = '\0';
            ++*served;
            if (!fake_answer(c, id, body, *conns, *served)) return;
            if (exit_after && *served >= exit_after) {
                close(c);
                /* php-cgi, too, closes first and then shuts its modules down: the server sees
                 * the end of the connection well before the exit (so a test can lease the
                 * process again after the release, before either is seen, without racing the
                 * exit). */
                struct timespec pause_ts = {0, 100 * 1000 * 1000};
                nanosleep(&pause_ts, NULL);
                _exit(0);
            }
            if (!keep) return;
        }
        /* PARAMS, GET_VALUES and the rest: nothing to do */
    }
}

static int fake_main(void) {
    const char *trace = getenv("FAKE_TRACE_DIR");
    const char *ignore = getenv("FAKE_IGNORE_TERM");
    const char *after = getenv("FAKE_EXIT_AFTER");
    unsigned exit_after = after ? (unsigned)atoi(after) : 0;
    fake_ignore_term = ignore && strcmp(ignore, "1") == 0;
    if (trace) snprintf(fake_term_path, sizeof(fake_term_path), "%s/term.%ld", trace, (long)getpid());
    struct sigaction sa = {.sa_handler = fake_on_term, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned conns = 0, served = 0;
    for (;;) {
        int c = accept(0, NULL, NULL);
        if (c < 0 && errno == EINTR) continue;
        if (c < 0) {
            fprintf(stderr, "fake: accept on fd 0: %s\n", strerror(errno));
            _exit(1);
        }
        fake_serve(c, &conns, &served, exit_after);
        close(c);
    }
}

/* ======================================================================================== */
/* The test side: an environment per test, and a client doing what the FastCGI handler does  */
/* ======================================================================================== */

typedef struct env {
    uv_loop_t loop;
    uv_timer_t tick;       /* keeps UV_RUN_ONCE from blocking forever; drives pool_tick */
    pool_t *pool;
    bool stopping;         /* pool_stop called: no more pool_tick */
    bool done;             /* the stop callback ran */
    uint64_t done_ms;
    cfg_app_t app;         /* the settings the next env_pool() uses */
    char *app_env[4];
    char *app_argv[3];
    char exe[PATH_MAX];
    char dir[64], run_dir[128], trace_dir[128], log_path[128];
    char trace_env[160];
} env_t;

static void on_tick(uv_timer_t *t) {
    env_t *e = t->data;
    if (e->pool && !e->stopping) pool_tick(e->pool, uv_now(&e->loop));
}

/* Run the loop until `cond` holds, failing the test at the deadline. */
#define WAIT_FOR_MS(e, cond, ms)                                                                 \
    do {                                                                                         \
        uv_update_time(&(e)->loop);                                                              \
        uint64_t deadline_ = uv_now(&(e)->loop) + (ms);                                          \
        while (!(cond)) {                                                                        \
            if (uv_now(&(e)->loop) >= deadline_)                                                 \
                fail_msg("line %d: no %s within %d ms", __LINE__, #cond, (int)(ms));             \
            uv_run(&(e)->loop, UV_RUN_ONCE);                                                     \
        }                                                                                        \
    } while (0)
#define WAIT_FOR(e, cond) WAIT_FOR_MS(e, cond, WAIT_MS)

static int env_setup(void **state) {
    env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    ssize_t n = readlink("/proc/self/exe", e->exe, sizeof(e->exe) - 1);
    assert_true(n > 0);
    snprintf(e->dir, sizeof(e->dir), "/tmp/fcgihost-poolloop-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->run_dir, sizeof(e->run_dir), "%s/run", e->dir);
    snprintf(e->trace_dir, sizeof(e->trace_dir), "%s/trace", e->dir);
    snprintf(e->log_path, sizeof(e->log_path), "%s/error.log", e->dir);
    snprintf(e->trace_env, sizeof(e->trace_env), "FAKE_TRACE_DIR=%s", e->trace_dir);
    assert_int_equal(mkdir(e->trace_dir, 0755), 0); /* run_dir: the pool makes it itself */
    assert_int_equal(log_open(e->log_path), 0);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->tick);
    e->tick.data = e;
    uv_timer_start(&e->tick, on_tick, TICK_MS, TICK_MS);

    e->app_argv[0] = e->exe;
    e->app_argv[1] = FAKE_ARG;
    e->app_env[0] = e->trace_env;
    e->app = (cfg_app_t){
        .name = "fake",
        .full_path = e->exe,
        .arguments = FAKE_ARG,
        .argv = e->app_argv,
        .env = e->app_env,
        .n_env = 1,
        .max_instances = 2,
        .queue_length = 10,
        .rapid_fails_per_minute = 10,
        .protocol = CFG_PROTOCOL_UNIX,
        .signal_before_terminate_seconds = 1,
        .activity_timeout = 30,
        .request_timeout = 90,
    };
    *state = e;
    return 0;
}


/* Remove the files of a directory (not recursive), then the directory; false if rmdir failed. */
static bool remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    return rmdir(dir) == 0;
}

static int env_teardown(void **state) {
    env_t *e = *state;
    log_close();
    remove_dir(e->trace_dir);
    remove_dir(e->run_dir);
    remove_dir(e->dir);
    free(e);
    return 0;
}

static void env_pool(env_t *e) {
    e->pool = pool_new(&e->loop, &e->app, e->run_dir, NULL);
    assert_non_null(e->pool);
}

static pool_stats_t stats(const env_t *e) {
    pool_stats_t s;
    pool_get_stats(e->pool, &s);
    return s;
}

static void on_pool_stopped(pool_t *p, void *arg) {
    env_t *e = arg;
    assert_ptr_equal(p, e->pool);
    assert_false(e->done); /* done runs once */
    e->done = true;
    e->done_ms = uv_now(&e->loop);
}

static void env_stop(env_t *e) {
    e->stopping = true;
    pool_stop(e->pool, on_pool_stopped, e);
}

/* Stop the pool (if the test did not), free it, close every handle; the loop must close. */
static void env_finish(env_t *e) {
    if (!e->stopping) env_stop(e);
    WAIT_FOR(e, e->done);
    pool_free(e->pool);
    e->pool = NULL;
    uv_close((uv_handle_t *)&e->tick, NULL);
    assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    /* every worker unlinked its socket when it was freed (tcp: the directory is never made) */
    DIR *d = opendir(e->run_dir);
    if (d == NULL && errno == ENOENT && e->app.protocol == CFG_PROTOCOL_TCP) return;
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            fail_msg("left in the runtime directory: %s", de->d_name);
    closedir(d);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0, n;
    char *s = malloc(cap);
    assert_non_null(s);
    while ((n = fread(s + len, 1, cap - 1 - len, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            s = realloc(s, cap *= 2);
            assert_non_null(s);
        }
    }
    fclose(f);
    s[len] = '\0';
    return s;
}

/* Does the error log have a line with the process's tag ("fake[PID]: ") followed by `text`? */
static bool log_has(const env_t *e, pid_t pid, const char *text) {
    char *log = slurp(e->log_path);
    char tag[64];
    snprintf(tag, sizeof(tag), "fake[%ld]: ", (long)pid);
    bool found = false;
    for (char *line = log; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *t = strstr(line, tag);
        found = t && strstr(t + strlen(tag), text) != NULL;
        line = nl ? nl + 1 : NULL;
    }
    free(log);
    return found;
}

static bool got_sigterm(const env_t *e, pid_t pid) {
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/term.%ld", e->trace_dir, (long)pid);
    return access(path, F_OK) == 0;
}

/* The process is gone (reaped: libuv waited for it). */
static bool process_gone(pid_t pid) {
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* One request as the FastCGI handler makes it: lease, BEGIN_REQUEST (KEEP_CONN) + empty PARAMS +
 * STDIN, read records with the codec's decoder until END_REQUEST or the end of the stream. */
typedef struct client {
    pool_waiter_t waiter;
    const char *body;      /* sent once leased; NULL: lease only (client_send later) */
    bool called;           /* the acquire callback ran */
    int status;            /* its status */
    worker_t *wk;          /* leased, until client_release */
    pid_t pid;
    uv_write_t wreq;
    char wbuf[FCGI_BEGIN_REQUEST_LEN + 3 * FCGI_HEADER_LEN + FAKE_BODY_MAX + 8];
    bool writing;
    int write_status;
    fcgi_decoder_t dec;
    char rbuf[4096];
    char out[2048];        /* STDOUT received */
    size_t out_len;
    bool got_output, ended, lost;
    int lost_err, proto_err;
} client_t;

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    client_t *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    client_t *c = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        c->lost = true;
        c->lost_err = (int)nread;
        worker_read_stop(c->wk);
        return;
    }
    const char *p = buf->base;
    size_t left = (size_t)nread;
    while (left > 0) {
        fcgi_event_t ev;
        size_t used = 0;
        int kind = fcgi_decoder_next(&c->dec, p, left, &used, &ev);
        p += used;
        left -= used;
        if (kind < 0) {
            c->proto_err = kind;
            worker_read_stop(c->wk);
            return;
        }
        if (kind == FCGI_EV_NEED_MORE) break;
        if (kind == FCGI_EV_STDOUT) {
            size_t room = sizeof(c->out) - 1 - c->out_len;
            size_t n = ev.data.len < room ? ev.data.len : room;
            memcpy(c->out + c->out_len, ev.data.p, n);
            c->out_len += n;
            c->out[c->out_len] = '\0';
            c->got_output = true;
        } else if (kind == FCGI_EV_END_REQUEST) {
            c->ended = true;
            worker_read_stop(c->wk);
            return;
        }
    }
}

static void client_written(uv_write_t *w, int status) {
    client_t *c = w->data;
    c->writing = false;
    c->write_status = status;
}

static void client_send(client_t *c, const char *body) {
    uv_stream_t *st = worker_stream(c->wk);
    st->data = c;
    fcgi_decoder_init(&c->dec, 1);
    size_t blen = strlen(body), n = 0;
    assert_true(blen <= FAKE_BODY_MAX);
    fcgi_begin_request_write(c->wbuf, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    n = FCGI_BEGIN_REQUEST_LEN;
    n += (size_t)fcgi_record_header(c->wbuf + n, FCGI_PARAMS, 1, 0) + FCGI_HEADER_LEN;
    if (blen) n = fake_record(c->wbuf, n, FCGI_STDIN, 1, body, blen);
    fcgi_stdin_end_write(c->wbuf + n, 1);
    n += FCGI_HEADER_LEN;
    assert_int_equal(worker_read_start(c->wk, client_alloc, client_read), 0);
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)n);
    c->wreq.data = c;
    c->writing = true;
    assert_int_equal(uv_write(&c->wreq, st, &b, 1, client_written), 0);
}

static void client_acquired(pool_waiter_t *w, worker_t *wk, int status) {
    client_t *c = w->data;
    assert_false(c->called); /* exactly once */
    c->called = true;
    c->status = status;
    if (status != 0) {
        assert_null(wk);
        return;
    }
    assert_non_null(wk);
    c->wk = wk;
    c->pid = worker_pid(wk);
    assert_true(c->pid > 0);
    if (c->body) client_send(c, c->body);
}

static void client_acquire(env_t *e, client_t *c, const char *body) {
    memset(c, 0, sizeof(*c));
    c->body = body;
    c->waiter.data = c;
    pool_acquire(e->pool, &c->waiter, client_acquired);
}

static void client_release(client_t *c, pool_release_t how) {
    assert_non_null(c->wk);
    worker_read_detach(c->wk);
    pool_release(c->wk, how);
    c->wk = NULL;
}

/* "pid=P conn=C req=R" from the answer; fails the test when it is not there. */
static void client_answer(const client_t *c, long *pid, unsigned *conn, unsigned *req) {
    const char *a = strstr(c->out, "pid=");
    if (a == NULL || sscanf(a, "pid=%ld conn=%u req=%u", pid, conn, req) != 3)
        fail_msg("no answer in: %s", c->out);
}

/* A whole request on a process of the pool, released OK; returns the process's pid. */
static pid_t one_request(env_t *e, client_t *c, const char *body, unsigned want_conn,
                         unsigned want_req) {
    client_acquire(e, c, body);
    WAIT_FOR(e, c->called && (c->status != 0 || c->ended || c->lost || c->proto_err));
    assert_int_equal(c->status, 0);
    assert_true(c->ended);
    assert_false(c->writing); /* the process read the request before it answered */
    assert_int_equal(c->write_status, 0);
    long pid;
    unsigned conn, req;
    client_answer(c, &pid, &conn, &req);
    assert_int_equal(pid, c->pid);
    if (want_conn) assert_int_equal(conn, want_conn);
    if (want_req) assert_int_equal(req, want_req);
    assert_int_equal(worker_requests(c->wk), want_req ? want_req - 1 : worker_requests(c->wk));
    client_release(c, POOL_RELEASE_OK);
    return c->pid;
}

/* ======================================================================================== */
/* Tests                                                                                      */
/* ======================================================================================== */

/* Processes start on demand, serve one request at a time, and are reused over their kept-alive
 * connection; waiters beyond maxInstances queue and get the next released process (§4.1). */
static void spawn_and_reuse(env_t *e) {
    env_pool(e);
    pool_stats_t s = stats(e);
    assert_int_equal(s.processes, 0); /* nothing before the first acquire */
    assert_int_equal(s.spawns, 0);

    client_t a, b;
    pid_t p1 = one_request(e, &a, "one", 1, 1);
    s = stats(e);
    assert_int_equal(s.spawns, 1);
    assert_int_equal(s.idle, 1);
    assert_int_equal(s.busy, 0);

    /* an idle process is leased at once, on the same connection (conn=1, req=2) */
    client_acquire(e, &b, NULL);
    assert_true(b.called);
    assert_int_equal(b.pid, p1);
    assert_int_equal(worker_requests(b.wk), 1);
    client_send(&b, "two");
    WAIT_FOR(e, b.ended || b.lost);
    long pid;
    unsigned conn, req;
    client_answer(&b, &pid, &conn, &req);
    assert_int_equal(pid, p1);
    assert_int_equal(conn, 1);
    assert_int_equal(req, 2);
    client_release(&b, POOL_RELEASE_OK);

    /* three at once with maxInstances = 2: the idle one, one new process, one waiter */
    client_t c[3];
    for (int i = 0; i < 3; i++) client_acquire(e, &c[i], "x");
    assert_true(c[0].called);
    assert_int_equal(c[0].pid, p1);
    WAIT_FOR(e, c[0].ended && c[1].ended);
    assert_false(c[2].called);
    assert_int_not_equal(c[1].pid, p1);
    s = stats(e);
    assert_int_equal(s.spawns, 2);
    assert_int_equal(s.queued, 1);
    assert_int_equal(s.busy, 2);
    client_release(&c[0], POOL_RELEASE_OK); /* the waiter gets this one, at once */
    assert_true(c[2].called);
    assert_int_equal(c[2].status, 0);
    assert_int_equal(c[2].pid, p1);
    WAIT_FOR(e, c[2].ended);
    client_release(&c[1], POOL_RELEASE_OK);
    client_release(&c[2], POOL_RELEASE_OK);
    s = stats(e);
    assert_int_equal(s.spawns, 2);
    assert_int_equal(s.processes, 2);
    assert_int_equal(s.requests, 5);
    assert_int_equal(s.rapid_fails, 0);
    assert_int_equal(s.exits_unexpected, 0);
    env_finish(e);
    assert_true(process_gone(p1) && process_gone(c[1].pid));
}

static void test_spawn_and_reuse_unix(void **state) {
    spawn_and_reuse(*state);
}

static void test_spawn_and_reuse_tcp(void **state) {
    env_t *e = *state;
    e->app.protocol = CFG_PROTOCOL_TCP;
    spawn_and_reuse(e);
}

/* A process that exits on its own between requests (php-cgi after PHP_FCGI_MAX_REQUESTS) is no
 * rapid fail, whether the pool notices while it is idle or a new request finds its connection
 * closed before any answer (released GONE, then the request goes to another process, §4.1 and
 * §4.11). */
static void test_exit_between_requests(void **state) {
    env_t *e = *state;
    e->app_env[e->app.n_env++] = "FAKE_EXIT_AFTER=1";
    e->app.max_instances = 1;
    env_pool(e);

    /* noticed while idle */
    client_t a, b, c, d;
    pid_t p1 = one_request(e, &a, "one", 1, 1);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0 && stats(e).idle == 0);
    pool_stats_t s = stats(e);
    assert_int_equal(s.exits_unexpected, 1);
    assert_int_equal(s.rapid_fails, 0);
    assert_true(log_has(e, p1, "exited with status 0 on its own after 1 requests"));

    /* found by the next request: lease it again before the loop can see the EOF */
    pid_t p2 = one_request(e, &b, "two", 1, 1);
    assert_int_not_equal(p2, p1);
    client_acquire(e, &c, "three");
    assert_true(c.called);
    assert_int_equal(c.pid, p2);
    WAIT_FOR(e, c.ended || c.lost);
    assert_true(c.lost);
    assert_false(c.got_output);
    client_release(&c, POOL_RELEASE_GONE);
    pid_t p3 = one_request(e, &d, "three again", 1, 1); /* the handler's retry */
    assert_int_not_equal(p3, p2);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0 && stats(e).idle == 0);
    s = stats(e);
    assert_int_equal(s.spawns, 3);
    assert_int_equal(s.rapid_fails, 0);
    assert_false(s.failed);
    env_finish(e);
}

/* Kill the process of a leased client that has received some output. */
static void start_hang_and_kill(env_t *e, client_t *c) {
    client_acquire(e, c, "hang");
    WAIT_FOR(e, c->got_output || c->lost || c->status != 0);
    assert_int_equal(c->status, 0);
    assert_false(c->lost);
    assert_int_equal(kill(c->pid, SIGKILL), 0);
}

/* SIGKILL mid-request is a rapid fail, whichever the pool learns first (the lessee's EOF or the
 * exit); so is a crash on a request before any answer; an exit between requests after serving
 * some is not (§4.6). */
static void test_killed_mid_request(void **state) {
    env_t *e = *state;
    e->app.max_instances = 1;
    env_pool(e);
    client_t a, b, c, d, f;

    /* the lessee sees the end of the stream and releases DEAD before the exit is reaped (or
     * after: either way one rapid fail) */
    start_hang_and_kill(e, &a);
    WAIT_FOR(e, a.lost);
    client_release(&a, POOL_RELEASE_DEAD);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0);
    pool_stats_t s = stats(e);
    assert_int_equal(s.rapid_fails, 1);
    assert_int_equal(s.exits_unexpected, 1);
    assert_true(log_has(e, a.pid, "killed by signal 9"));

    /* a process that has served a request, killed during the next one: the exit is reaped
     * while it is still leased; the fail is counted when the lessee releases DEAD */
    pid_t p2 = one_request(e, &b, "one", 1, 1);
    assert_int_not_equal(p2, a.pid);
    start_hang_and_kill(e, &c);
    assert_int_equal(c.pid, p2);
    WAIT_FOR(e, c.lost && stats(e).processes == 0);
    assert_int_equal(stats(e).rapid_fails, 1);
    client_release(&c, POOL_RELEASE_DEAD);
    assert_int_equal(stats(e).rapid_fails, 2);

    /* killed while idle after serving a request: not a rapid fail */
    pid_t p3 = one_request(e, &d, "one", 1, 1);
    assert_int_equal(kill(p3, SIGKILL), 0);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0 && stats(e).idle == 0);
    assert_int_equal(stats(e).rapid_fails, 2);
    assert_int_equal(stats(e).exits_unexpected, 3);

    /* crashed on a request before answering (released GONE, as the handler does, then exit 3) */
    pid_t p4 = one_request(e, &d, "one", 1, 1);
    client_acquire(e, &f, "die");
    assert_int_equal(f.pid, p4);
    WAIT_FOR(e, f.lost || f.ended);
    assert_true(f.lost);
    assert_false(f.got_output);
    client_release(&f, POOL_RELEASE_GONE);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0);
    assert_int_equal(stats(e).rapid_fails, 3);
    assert_true(log_has(e, p4, "exited with status 3"));
    assert_false(stats(e).failed); /* 3 <= rapidFailsPerMinute = 10 */
    env_finish(e);
}

/* More than rapidFailsPerMinute marks the pool failed: queued waiters and new acquires get
 * POOL_EFAILED at once, no spawn; pool_reset_failed (ctl recycle) starts processes again. */
static void test_rapid_fails_fail_the_pool(void **state) {
    env_t *e = *state;
    e->app.max_instances = 1;
    e->app.rapid_fails_per_minute = 1;
    env_pool(e);
    client_t a, b, q, x, y;

    start_hang_and_kill(e, &a);
    WAIT_FOR(e, a.lost);
    client_release(&a, POOL_RELEASE_DEAD);
    WAIT_FOR(e, stats(e).rapid_fails == 1);
    assert_false(stats(e).failed); /* 1 is not more than 1 */

    /* The second one fails the pool when b is released, its exit already reaped. A waiter that
     * arrives just before (a process starts for it, not yet connected) gets POOL_EFAILED. */
    start_hang_and_kill(e, &b);
    WAIT_FOR(e, b.lost && stats(e).processes == 0);
    assert_int_equal(stats(e).rapid_fails, 1); /* counted once the lease is back */
    client_acquire(e, &q, "queued");
    assert_false(q.called);
    assert_int_equal(stats(e).starting, 1);
    client_release(&b, POOL_RELEASE_DEAD);
    assert_true(q.called);
    assert_int_equal(q.status, POOL_EFAILED);
    pool_stats_t s = stats(e);
    assert_true(s.failed);
    assert_int_equal(s.rapid_fails, 2);
    uint64_t spawns = s.spawns;

    client_acquire(e, &x, "refused");
    assert_true(x.called); /* at once */
    assert_int_equal(x.status, POOL_EFAILED);
    assert_int_equal(stats(e).spawns, spawns);

    pool_reset_failed(e->pool);
    assert_false(stats(e).failed);
    one_request(e, &y, "again", 0, 1);
    env_finish(e);
}

/* instanceMaxRequests: the process is ended after that many requests, SIGTERM first (§4.4), and
 * the next request gets a new one. */
static void test_recycle_after_max_requests(void **state) {
    env_t *e = *state;
    e->app.instance_max_requests = 2;
    e->app.max_instances = 1;
    env_pool(e);
    client_t a, b, c;
    pid_t p1 = one_request(e, &a, "one", 1, 1);
    assert_int_equal(one_request(e, &b, "two", 1, 2), p1);
    assert_int_equal(stats(e).recycles_max_requests, 1);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0);
    assert_true(got_sigterm(e, p1));
    assert_true(log_has(e, p1, "exited with status 0, ended by the server (served 2 requests)"));
    pid_t p2 = one_request(e, &c, "three", 1, 1);
    assert_int_not_equal(p2, p1);
    pool_stats_t s = stats(e);
    assert_int_equal(s.spawns, 2);
    assert_int_equal(s.rapid_fails, 0);
    assert_int_equal(s.exits_unexpected, 0);
    env_finish(e);
}

/* idleTimeout: an idle process is ended (SIGTERM first) once it has been idle that long, not
 * before. */
static void test_idle_timeout(void **state) {
    env_t *e = *state;
    e->app.idle_timeout = 1;
    env_pool(e);
    client_t a;
    pid_t p1 = one_request(e, &a, "one", 1, 1);
    uint64_t idle_from = uv_now(&e->loop);
    WAIT_FOR_MS(e, stats(e).recycles_idle == 1, 5000);
    assert_true(uv_now(&e->loop) - idle_from >= 1000);
    WAIT_FOR(e, stats(e).processes == 0 && stats(e).stopping == 0);
    assert_true(got_sigterm(e, p1));
    assert_true(log_has(e, p1, "ended by the server (idle timeout)"));
    assert_int_equal(stats(e).rapid_fails, 0);
    env_finish(e);
}

/* pool_stop with busy processes, a queued waiter and a process still starting: the waiter and
 * new acquires get POOL_ESTOPPING, the busy processes finish their request, every process gets
 * SIGTERM, and done runs only once the last lease is back and every process is gone. */
static void test_stop_busy_queued_starting(void **state) {
    env_t *e = *state;
    e->app.max_instances = 3;
    e->app.queue_length = 1;
    env_pool(e);
    client_t a, b, c, q, x;
    client_acquire(e, &a, NULL);
    client_acquire(e, &b, NULL);
    WAIT_FOR(e, a.called && b.called);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    client_acquire(e, &c, NULL);             /* a third process starts for it */
    client_acquire(e, &q, NULL);             /* and this one waits in the queue */
    assert_int_equal(stats(e).starting, 1);
    assert_int_equal(stats(e).queued, 2);

    env_stop(e);
    assert_true(c.called && q.called);
    assert_int_equal(c.status, POOL_ESTOPPING);
    assert_int_equal(q.status, POOL_ESTOPPING);
    client_acquire(e, &x, "late");
    assert_true(x.called);
    assert_int_equal(x.status, POOL_ESTOPPING);

    /* the leased processes still answer their request */
    client_send(&a, "finishing");
    client_send(&b, "finishing");
    WAIT_FOR(e, a.ended && b.ended && stats(e).starting == 0 && stats(e).stopping == 0);
    assert_false(e->done);
    client_release(&a, POOL_RELEASE_OK);
    WAIT_FOR(e, got_sigterm(e, a.pid) && stats(e).processes == 1);
    assert_false(e->done); /* b is still leased */
    client_release(&b, POOL_RELEASE_OK);
    WAIT_FOR(e, e->done);
    assert_true(got_sigterm(e, b.pid));
    assert_true(process_gone(a.pid) && process_gone(b.pid));
    assert_true(log_has(e, a.pid, "exited with status 0, ended by the server (server stopping)"));
    env_finish(e);
}

/* signalBeforeTerminateSeconds: a process that ignores SIGTERM gets SIGKILL at the deadline, and
 * not before (§4.4). */
static void test_stop_sigterm_then_sigkill(void **state) {
    env_t *e = *state;
    e->app_env[e->app.n_env++] = "FAKE_IGNORE_TERM=1";
    e->app.signal_before_terminate_seconds = 1;
    env_pool(e);
    client_t a;
    pid_t p1 = one_request(e, &a, "one", 1, 1);
    uv_update_time(&e->loop);
    uint64_t stop_ms = uv_now(&e->loop);
    env_stop(e);
    WAIT_FOR(e, e->done);
    assert_true(got_sigterm(e, p1));                 /* SIGTERM first, */
    assert_true(e->done_ms - stop_ms >= 1000);       /* SIGKILL not before the grace */
    assert_true(process_gone(p1));
    assert_true(log_has(e, p1, "still running 1 s after SIGTERM: SIGKILL"));
    assert_true(log_has(e, p1, "killed by signal 9"));
    assert_int_equal(stats(e).rapid_fails, 0);
    env_finish(e);
}

/* signalBeforeTerminateSeconds = 0: SIGKILL at once, no SIGTERM. */
static void test_stop_sigkill_at_once(void **state) {
    env_t *e = *state;
    e->app.signal_before_terminate_seconds = 0;
    env_pool(e);
    client_t a;
    pid_t p1 = one_request(e, &a, "one", 1, 1);
    env_stop(e);
    WAIT_FOR(e, e->done);
    assert_false(got_sigterm(e, p1));
    assert_true(log_has(e, p1, "killed by signal 9"));
    env_finish(e);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], POOL_SPAWN_ARG) == 0) return pool_child_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], FAKE_ARG) == 0) return fake_main();
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_spawn_and_reuse_unix),   T(test_spawn_and_reuse_tcp),
        T(test_exit_between_requests),  T(test_killed_mid_request),
        T(test_rapid_fails_fail_the_pool), T(test_recycle_after_max_requests),
        T(test_idle_timeout),           T(test_stop_busy_queued_starting),
        T(test_stop_sigterm_then_sigkill), T(test_stop_sigkill_at_once),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
