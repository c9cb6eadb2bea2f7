/* tls_connect: new TLS 1.3 connections per second against one HTTPS server (bench/tls.sh).
 *
 *   tls_connect [-c CONNS] [-d SECONDS] [-r] [-p PATH] [-s SNI] HOST PORT
 *
 * CONNS clients in one thread (epoll), each in a loop for SECONDS: TCP connect, TLS 1.3
 * handshake, "GET PATH" with Connection: close, read the whole answer (Content-Length), send
 * close_notify, close, start again. -r: each client offers the session ticket it received on
 * its previous connection (TLS 1.3 PSK with (EC)DHE, as a browser coming back), so every
 * connection after a client's first one is a resumption if the server accepts the ticket;
 * without -r every handshake is a full one (certificate and signature). The certificate chain
 * is not verified (the anchors' is self-signed); the handshake's signature always is (TLS 1.3).
 *
 * Prints one line:
 *   conns/s N hs_p50_ms X hs_p99_ms X p99_ms X done N resumed N errors N client_cpu_pct N
 * hs_*: from connect() to the end of the handshake; p99_ms: connect() to the last byte of the
 * answer; client_cpu_pct: this process's CPU time over the wall time (100 = one core busy, so
 * the client, not the server, may be the bottleneck). Exit 1 when nothing completed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, HANDSHAKE, WRITING, READING };

struct client {
    int fd;
    SSL *ssl;
    enum state st;
    double t0, t_hs;
    SSL_SESSION *sess; /* the ticket of the previous connection (-r) */
    char head[8192];
    size_t head_len;   /* bytes of head[] used (until the blank line is found) */
    long long body_left; /* -1: head not complete yet */
    unsigned events;
};

struct samples {
    double *v;
    size_t n, cap;
};

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static int ep, resume;
static char request[1024];
static size_t request_len;
static const char *sni;
static unsigned long done, resumed, errors;
static struct samples hs_lat, total_lat;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add(struct samples *s, double x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        double *v = realloc(s->v, cap * sizeof(*v));
        if (!v) return; /* keep what we have: the percentiles are then of fewer samples */
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p) {
    if (s->n == 0) return 0;
    qsort(s->v, s->n, sizeof(*s->v), cmp);
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static void report_error(const char *what) {
    int saved = errno;
    errors++;
    if (errors <= 5) { /* the first few say what went wrong; the count says how often */
        unsigned long e = ERR_get_error();
        char buf[256];
        if (e)
            ERR_error_string_n(e, buf, sizeof(buf));
        else
            snprintf(buf, sizeof(buf), "%s", saved ? strerror(saved) : "connection closed");
        fprintf(stderr, "tls_connect: %s: %s\n", what, buf);
    }
    ERR_clear_error();
}

static int new_session(SSL *ssl, SSL_SESSION *sess) {
    struct client *c = SSL_get_app_data(ssl);
    if (!resume || !c) return 0;
    if (c->sess) SSL_SESSION_free(c->sess);
    c->sess = sess; /* returning 1 keeps the reference */
    return 1;
}

static void want(struct client *c, unsigned events) {
    if (events == c->events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void finish(struct client *c) {
    if (c->ssl) {
        /* close_notify after a complete answer; its reply is not awaited */
        if (SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

static int start(struct client *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        report_error("socket");
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t0 = now();
    c->head_len = 0;
    c->body_left = -1;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
        report_error("connect");
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_app_data(c->ssl, c);
    if (sni) SSL_set_tlsext_host_name(c->ssl, sni);
    if (resume && c->sess) SSL_set_session(c->ssl, c->sess);
    SSL_set_connect_state(c->ssl);
    c->st = CONNECTING;
    c->events = EPOLLOUT;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

/* Parse what arrived of the answer; returns 1 when it is complete. */
static int consume(struct client *c, const char *p, size_t n) {
    if (c->body_left < 0) {
        size_t room = sizeof(c->head) - 1 - c->head_len, k = n < room ? n : room;
        memcpy(c->head + c->head_len, p, k);
        c->head_len += k;
        c->head[c->head_len] = '\0';
        char *end = strstr(c->head, "\r\n\r\n");
        if (!end) return 0;
        size_t head = (size_t)(end + 4 - c->head);
        if (strncmp(c->head, "HTTP/1.1 200", 12) != 0) return -1;
        char *cl = strcasestr(c->head, "\r\ncontent-length:");
        if (!cl || cl > end) return -1;
        long long len = atoll(cl + 17);
        /* Body bytes already here: those of this read past the head. */
        size_t before = c->head_len - k; /* head bytes we had before this read */
        long long have = (long long)(before + n) - (long long)head;
        c->body_left = len - have;
    } else {
        c->body_left -= (long long)n;
    }
    return c->body_left <= 0;
}

static void step(struct client *c) {
    char buf[16384];
    for (;;) {
        int r, e;
        switch (c->st) {
        case CONNECTING: {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                errno = err;
                report_error("connect");
                goto fail;
            }
            c->st = HANDSHAKE;
            break;
        }
        case HANDSHAKE:
            r = SSL_connect(c->ssl);
            if (r == 1) {
                c->t_hs = now();
                if (SSL_session_reused(c->ssl)) resumed++;
                c->st = WRITING;
                break;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { want(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { want(c, EPOLLOUT); return; }
            report_error("handshake");
            goto fail;
        case WRITING:
            r = SSL_write(c->ssl, request, (int)request_len);
            if (r > 0) {
                c->st = READING;
                break;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { want(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { want(c, EPOLLOUT); return; }
            report_error("write");
            goto fail;
        case READING:
            errno = 0;
            r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r > 0) {
                int k = consume(c, buf, (size_t)r);
                if (k < 0) {
                    report_error("answer is not 200 with a Content-Length");
                    goto fail;
                }
                if (k == 1) {
                    double t = now();
                    add(&hs_lat, c->t_hs - c->t0);
                    add(&total_lat, t - c->t0);
                    done++;
                    finish(c);
                    start(c); /* on failure fd stays -1 and the main loop tries again */
                    return;
                }
                break;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { want(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { want(c, EPOLLOUT); return; }
            report_error("read (closed before the whole answer)");
            goto fail;
        }
    }
fail:
    finish(c);
    start(c);
}

int main(int argc, char **argv) {
    int conns = 16, secs = 5, opt;
    const char *path = "/1k.txt";
    while ((opt = getopt(argc, argv, "c:d:rp:s:")) != -1) {
        switch (opt) {
        case 'c': conns = atoi(optarg); break;
        case 'd': secs = atoi(optarg); break;
        case 'r': resume = 1; break;
        case 'p': path = optarg; break;
        case 's': sni = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-c CONNS] [-d SECONDS] [-r] [-p PATH] [-s SNI] HOST PORT\n",
                    argv[0]);
            return 2;
        }
    }
    if (argc - optind != 2 || conns < 1 || secs < 1) {
        fprintf(stderr, "usage: %s [-c CONNS] [-d SECONDS] [-r] [-p PATH] [-s SNI] HOST PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
    if (inet_pton(AF_INET, argv[optind], &addr.sin_addr) != 1) {
        fprintf(stderr, "tls_connect: %s is not an IPv4 address\n", argv[optind]);
        return 2;
    }
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n",
                                   path, argv[optind], argv[optind + 1]);

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct client *cl = calloc((size_t)conns, sizeof(*cl));
    if (!cl || ep < 0) return 1;
    for (int i = 0; i < conns; i++) {
        cl[i].fd = -1;
        start(&cl[i]);
    }
    double t_start = now(), t_end = t_start + secs;
    struct epoll_event evs[256];
    while (now() < t_end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) step(evs[i].data.ptr);
        for (int i = 0; i < conns; i++) /* a client whose socket() failed tries again */
            if (cl[i].fd < 0) start(&cl[i]);
    }
    double wall = now() - t_start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    for (int i = 0; i < conns; i++) {
        finish(&cl[i]);
        if (cl[i].sess) SSL_SESSION_free(cl[i].sess);
    }
    printf("conns/s %.0f hs_p50_ms %.2f hs_p99_ms %.2f p99_ms %.2f done %lu resumed %lu errors %lu "
           "client_cpu_pct %.0f\n",
           (double)done / wall, pct(&hs_lat, 0.50) * 1e3, pct(&hs_lat, 0.99) * 1e3,
           pct(&total_lat, 0.99) * 1e3, done, resumed, errors, 100 * cpu / wall);
    free(hs_lat.v);
    free(total_lat.v);
    free(cl);
    SSL_CTX_free(ctx);
    close(ep);
    return done ? 0 : 1;
}
