/* TLS sessions over memory (see tls.h). */
#include "http/tls.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "http/site.h"
#include "util/log.h"
#include "util/xalloc.h"

#define TICKET_ROTATE_S (12u * 3600u) /* a new ticket key every 12 h; the previous one decrypts */

http_tls_stats_t http_tls_stats;

struct http_tls {
    SSL *ssl;
    BIO *rbio;               /* ciphertext in (memory BIO) */
    buf_t out;               /* ciphertext out, filled by the output BIO */
    http_server_t *hs;
    unsigned listen_id;
    bool handshaken;
    char err[160];
};

/* ---- the output BIO: OpenSSL's records are appended to the session's buffer ---- */

static BIO_METHOD *out_method;

static int out_write(BIO *b, const char *data, size_t n, size_t *written) {
    http_tls_t *t = BIO_get_data(b);
    buf_append(&t->out, data, n);
    *written = n;
    return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int out_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *output_method(void) {
    if (out_method == NULL) {
        out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fcgihost output");
        if (out_method == NULL) abort();
        BIO_meth_set_write_ex(out_method, out_write);
        BIO_meth_set_ctrl(out_method, out_ctrl);
        BIO_meth_set_create(out_method, out_create);
    }
    return out_method;
}

/* ---- ticket keys, server-wide ---- */

typedef struct ticket_key {
    unsigned char name[16], aes[32], hmac[32];
    bool set;
} ticket_key_t;

static ticket_key_t keys[2]; /* [0] encrypts, [1] (the previous one) still decrypts */
static uint64_t keys_born;

static void new_key(ticket_key_t *k) {
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        abort(); /* no randomness: nothing about TLS can be trusted */
    k->set = true;
}

void http_tls_tick(uint64_t now_s) {
    if (!keys[0].set) {
        new_key(&keys[0]);
        keys_born = now_s;
        return;
    }
    if (now_s - keys_born < TICKET_ROTATE_S) return;
    keys[1] = keys[0];
    new_key(&keys[0]);
    keys_born = now_s;
    log_debug("TLS session ticket key rotated");
}

static int set_mac(EVP_MAC_CTX *hctx, unsigned char *key) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

static int ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
                     EVP_MAC_CTX *hctx, int enc) {
    if (!keys[0].set) http_tls_tick(0);
    if (enc) {
        ticket_key_t *k = &keys[0];
        memcpy(name, k->name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1) return -1;
        return set_mac(hctx, k->hmac) == 1 ? 1 : -1;
    }
    for (int i = 0; i < 2; i++) {
        ticket_key_t *k = &keys[i];
        if (!k->set || memcmp(name, k->name, 16) != 0) continue;
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1) return -1;
        if (set_mac(hctx, k->hmac) != 1) return -1;
        /* 2: valid, and issue a new ticket: always under TLS 1.3, whose clients use a ticket once
         * (RFC 8446 C.4) and, given none on a resumed connection, make a full handshake next
         * time; under TLS 1.2 when the ticket is under the previous key. */
        return i == 0 && SSL_version(s) != TLS1_3_VERSION ? 1 : 2;
    }
    return 0; /* unknown (expired) key: a full handshake */
}

/* ---- contexts ---- */

/* The SNI name picks the site, and with it the certificate. */
static int servername_cb(SSL *ssl, int *alert, void *arg) {
    (void)alert, (void)arg;
    http_tls_t *t = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (t == NULL || name == NULL || t->hs->gen == NULL) return SSL_TLSEXT_ERR_NOACK;
    const http_site_t *site = http_site_for(t->hs->gen->sites, str_make(name, strlen(name)), t->listen_id);
    if (site && site->tls_ctx && site->tls_ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, site->tls_ctx);
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: h2 when `http2` is on and the client offers it, else HTTP/1.1 (a client offering only
 * other protocols gets no ALPN answer, and HTTP/1.1). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg) {
    (void)arg;
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    const http_tls_t *t = SSL_get_app_data(ssl);
    bool h2 = t && t->hs->gen && t->hs->gen->cfg->server.http2;
    const unsigned char *ours = h2 ? both : both + 3;
    unsigned ours_len = h2 ? sizeof(both) - 1 : sizeof(both) - 4;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void openssl_reason(char *err, size_t errlen) {
    unsigned long e = ERR_peek_error(); /* the first: the root cause ("no start line") */
    if (e) ERR_error_string_n(e, err, errlen);
    else snprintf(err, errlen, "unknown error");
    ERR_clear_error();
}

http_tls_ctx_t *http_tls_ctx_new(const char *cert, const char *key, const char *ciphers, char *err,
                                 size_t errlen) {
    char why[200];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot create a TLS context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    /* No renegotiation (a client-initiated one is a denial of service), no compression (CRIME),
     * the server's cipher order: ECDHE before DHE, AES-GCM first (testssl.sh rates a server
     * without an order HIGH; a tlsCiphers list is then an order too, as nginx's
     * ssl_prefer_server_ciphers). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections keep no record buffers */
    SSL_CTX_set_dh_auto(ctx, 1);
    /* Mozilla's "intermediate" configuration (TLS 1.2 suites; 1.3's are OpenSSL's defaults). */
    static const char intermediate[] =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
    const char *list = strcmp(ciphers, "intermediate") == 0 ? intermediate : ciphers;
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
        SSL_CTX_set_cipher_list(ctx, list) != 1) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tlsCiphers '%s': %s", ciphers, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot load the certificate %s: %s", cert, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    const char *kf = key ? key : cert;
    if (SSL_CTX_use_PrivateKey_file(ctx, kf, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot load the private key %s: %s", kf, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "the private key %s does not match the certificate %s: %s", kf, cert, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    static const unsigned char sid_ctx[] = "fcgihost";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets resume sessions */
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    return ctx;
}

void http_tls_ctx_ref(http_tls_ctx_t *ctx) {
    SSL_CTX_up_ref(ctx);
}

void http_tls_ctx_unref(http_tls_ctx_t *ctx) {
    SSL_CTX_free(ctx);
}

/* ---- sessions ---- */

http_tls_t *http_tls_new(http_tls_ctx_t *ctx, http_server_t *hs, unsigned listen_id) {
    http_tls_t *t = xcalloc(1, sizeof(*t));
    t->hs = hs;
    t->listen_id = listen_id;
    buf_init(&t->out);
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(output_method());
    if (t->ssl == NULL || t->rbio == NULL || wbio == NULL) abort(); /* out of memory */
    BIO_set_mem_eof_return(t->rbio, -1); /* empty: "retry", not end of file */
    BIO_set_data(wbio, t);
    SSL_set_bio(t->ssl, t->rbio, wbio); /* the session owns both */
    SSL_set_app_data(t->ssl, t);
    SSL_set_accept_state(t->ssl);
    return t;
}

void http_tls_free(http_tls_t *t) {
    if (t == NULL) return;
    SSL_free(t->ssl);
    buf_dispose(&t->out);
    free(t);
}

void http_tls_feed(http_tls_t *t, const char *data, size_t n) {
    if (n && BIO_write(t->rbio, data, (int)n) != (int)n) abort(); /* memory BIOs grow */
}

static void handshake_done(http_tls_t *t) {
    t->handshaken = true;
    if (SSL_session_reused(t->ssl)) http_tls_stats.resumed++;
    else http_tls_stats.full++;
}

http_tls_rc_t http_tls_read(http_tls_t *t, char *out, size_t cap, size_t *got) {
    *got = 0;
    ERR_clear_error();
    int rc = SSL_read_ex(t->ssl, out, cap, got);
    if (!t->handshaken && SSL_is_init_finished(t->ssl)) handshake_done(t);
    if (rc == 1) return HTTP_TLS_OK;
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return HTTP_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN: return HTTP_TLS_EOF;
    default:
        openssl_reason(t->err, sizeof(t->err));
        if (!t->handshaken) http_tls_stats.failed++;
        return HTTP_TLS_ERR;
    }
}

bool http_tls_pending(const http_tls_t *t) {
    return SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0;
}

bool http_tls_write(http_tls_t *t, const uv_buf_t *bufs, unsigned n) {
    ERR_clear_error();
    /* Small pieces (a response head and its short body) go out as one record, not one each:
     * a record costs its header, tag and a cipher call whatever its size. */
    static char gather[16384];
    size_t total = 0;
    for (unsigned i = 0; i < n && total <= sizeof(gather); i++) total += bufs[i].len;
    if (n > 1 && total <= sizeof(gather)) {
        size_t at = 0, done;
        for (unsigned i = 0; i < n; i++) {
            if (bufs[i].len) memcpy(gather + at, bufs[i].base, bufs[i].len);
            at += bufs[i].len;
        }
        if (at && (SSL_write_ex(t->ssl, gather, at, &done) != 1 || done != at)) {
            openssl_reason(t->err, sizeof(t->err));
            return false;
        }
        return true;
    }
    for (unsigned i = 0; i < n; i++) {
        if (bufs[i].len == 0) continue;
        size_t done;
        if (SSL_write_ex(t->ssl, bufs[i].base, bufs[i].len, &done) != 1 || done != bufs[i].len) {
            openssl_reason(t->err, sizeof(t->err));
            return false;
        }
    }
    return true;
}

void http_tls_close_notify(http_tls_t *t) {
    if (t->handshaken) {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}

void http_tls_reserve(http_tls_t *t, size_t plaintext) {
    /* Records add at most 22 bytes (TLS 1.3: header, tag, type) per 16 KiB; TLS 1.2 a little
     * more: room for 64 per record, so that the output grows once, not by doubling. */
    buf_reserve(&t->out, plaintext + (plaintext / 16384 + 1) * 64);
}

buf_t http_tls_take_output(http_tls_t *t) {
    buf_t b = t->out;
    buf_init(&t->out);
    return b;
}

bool http_tls_handshaken(const http_tls_t *t) {
    return t->handshaken;
}

bool http_tls_alpn_h2(const http_tls_t *t) {
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (!t->handshaken) return false;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

const char *http_tls_version(const http_tls_t *t) {
    return SSL_get_version(t->ssl);
}

const char *http_tls_error(const http_tls_t *t) {
    return t->err[0] ? t->err : "unknown error";
}
