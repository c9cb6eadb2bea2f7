/* Rewrite rules. See rewrite.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "http/rewrite.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"
#include "util/str.h"
#include "util/xalloc.h"

void rewrite_io_init(rewrite_io_t *io, unsigned *count, const char *path, size_t path_len,
                     const char *query, size_t query_len) {
    /* the buffers zeroed are empty (buf_init): nothing is allocated until a rule applies */
    *io = (rewrite_io_t){.count = count,
                         .in_path = path,
                         .in_path_len = path_len,
                         .in_query = query,
                         .in_query_len = query ? query_len : 0,
                         .has_query = query != NULL};
}

void rewrite_io_dispose(rewrite_io_t *io) {
    if (io->path.data) buf_dispose(&io->path); /* most requests: no rule applied, nothing to free */
    if (io->query.data) buf_dispose(&io->query);
    if (io->location.data) buf_dispose(&io->location);
}

/* Bytes kept as they are in a query string or a URL built from decoded text. */
static bool query_safe(unsigned char c) {
    return c > 0x20 && c < 0x7f && !strchr("\"#%&+?<>\\^`{|}", c);
}

static void append_escaped(buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (query_safe(c) || c == '/' ) {
            buf_append(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* Expand `to` with the groups of `subject`; a redirect escapes groups everywhere, a rewrite only
 * after the template's own '?'. */
static void expand(const char *to, const char *subject, const PCRE2_SIZE *ov, uint32_t n_pairs,
                   bool redirect, buf_t *out, size_t *qpos) {
    bool in_query = false;
    *qpos = SIZE_MAX;
    for (const char *p = to; *p; p++) {
        if (*p == '$' && p[1] == '$') {
            buf_append(out, "$", 1);
            p++;
        } else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            uint32_t g = (uint32_t)(p[1] - '0');
            p++;
            if (g >= n_pairs || ov[2 * g] == PCRE2_UNSET) continue;
            const char *s = subject + ov[2 * g];
            size_t n = ov[2 * g + 1] - ov[2 * g];
            if (redirect || in_query) append_escaped(out, s, n);
            else buf_append(out, s, n);
        } else {
            if (*p == '?' && !in_query) {
                in_query = true;
                *qpos = out->len;
            }
            buf_append(out, p, 1);
        }
    }
}

/* Replace io->path by the checked form of `p` (a decoded path): encode, then decode it the way a
 * client's path is, so the same rules apply. */
static int set_path(rewrite_io_t *io, const char *p, size_t n) {
    size_t cap = n * 3 + 1;
    char *enc = xmalloc(cap);
    size_t elen = http_path_encode(p, n, enc, cap);
    char *dec = xmalloc(elen + 1);
    size_t dlen;
    int rc = http_path_decode(enc, elen, dec, &dlen);
    free(enc);
    if (rc == 0) {
        io->path.len = 0;
        buf_append(&io->path, dec, dlen);
        buf_append(&io->path, "", 1);
        io->path.len--;
    }
    free(dec);
    return rc;
}

/* The query as it stands: a rule's, else the client's. */
static str_t cur_query(const rewrite_io_t *io) {
    if (io->query_set) return str_make(io->query.data, io->query.len);
    return str_make(io->in_query, io->in_query_len);
}

static void append_client_query(buf_t *b, const rewrite_io_t *io, bool have_q) {
    str_t q = cur_query(io);
    if (!io->has_query || q.len == 0) return;
    buf_append(b, have_q ? "&" : "?", 1);
    buf_append(b, q.p, q.len);
}

/* One match block for every call: the loop is single-threaded and a match's captures are used
 * before the next pattern runs. Ten pairs: $0..$9. */
static pcre2_match_data *match_data(void) {
    static pcre2_match_data *md;
    if (md == NULL && (md = pcre2_match_data_create(10, NULL)) == NULL) abort();
    return md;
}

rewrite_outcome_t rewrite_run(const cfg_t *cfg, const cfg_site_t *site, rewrite_io_t *io,
                              rewrite_probe_fn probe, void *arg) {
    rewrite_outcome_t out = REWRITE_NONE;
    buf_t res;
    buf_init(&res);
    /* The path the rules see: the client's (borrowed) until a rule rewrites it into io->path. */
    const char *cur = io->in_path;
    size_t cur_len = io->in_path_len;
    /* The path's UTF-8 is checked once, not by every pattern (PCRE2_NO_UTF_CHECK); a path that is
     * not UTF-8 matches no pattern, as PCRE2 would have it. */
    int utf = -1;
    for (size_t k = 0; k < site->n_rewrites; k++) {
        const cfg_rewrite_t *rw = &cfg->rewrites[site->rewrites[k]];
        if (rw->prefix && (cur_len < rw->prefix_len || cur[rw->prefix_len - 1] !=
                           rw->prefix[rw->prefix_len - 1] ||
                           memcmp(cur, rw->prefix, rw->prefix_len) != 0))
            continue; /* cannot match: the pattern does not run (its last byte compared first) */
        if (utf < 0) utf = utf8_valid((const unsigned char *)cur, cur_len);
        if (!utf) continue;
        pcre2_match_data *md = match_data();
        /* pcre2_jit_match: the JIT code without pcre2_match's argument checks (same results) */
        int rc = rw->jit ? pcre2_jit_match(rw->re, (PCRE2_SPTR)cur, cur_len, 0, PCRE2_NO_UTF_CHECK,
                                           md, NULL)
                         : pcre2_match(rw->re, (PCRE2_SPTR)cur, cur_len, 0, PCRE2_NO_UTF_CHECK, md,
                                       NULL);
        if (rc < 0) continue; /* no match (or a match limit hit: treated as no match) */
        if ((rw->unless_file || rw->unless_dir) && probe) {
            int is = probe(arg, cur);
            if ((rw->unless_file && (is & REWRITE_IS_FILE)) ||
                (rw->unless_dir && (is & REWRITE_IS_DIR)))
                continue;
        }
        if (++*io->count > REWRITE_MAX) {
            out = REWRITE_LOOP;
            break;
        }
        uint32_t pairs = rc == 0 ? pcre2_get_ovector_count(md) : (uint32_t)rc;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        res.len = 0;
        size_t qpos;
        expand(rw->to, cur, ov, pairs, rw->redirect != 0, &res, &qpos);
        if (rw->redirect) {
            io->location.len = 0;
            buf_append(&io->location, res.data, res.len);
            append_client_query(&io->location, io, qpos != SIZE_MAX);
            io->status = rw->redirect;
            out = REWRITE_REDIRECT;
            break;
        }
        size_t plen = qpos == SIZE_MAX ? res.len : qpos;
        if (qpos != SIZE_MAX) { /* the new query, then the client's */
            buf_t q;
            buf_init(&q);
            buf_append(&q, res.data + qpos + 1, res.len - qpos - 1);
            append_client_query(&q, io, true);
            io->query.len = 0;
            buf_append(&io->query, q.data ? q.data : "", q.len);
            io->query_set = true;
            io->has_query = true;
            buf_dispose(&q);
        }
        int prc = set_path(io, res.data, plen);
        if (prc < 0) {
            io->status = -prc;
            out = REWRITE_BAD;
            break;
        }
        cur = io->path.data;
        cur_len = io->path.len;
        out = REWRITE_DONE;
        utf = -1; /* a new path: checked again if a pattern runs on it */
        if (rw->last) break;
    }
    if (res.data) buf_dispose(&res);
    if (out == REWRITE_DONE) {
        if (!io->query_set && io->in_query_len)
            buf_append(&io->query, io->in_query, io->in_query_len);
        buf_append(&io->query, "", 1);
        io->query.len--;
    }
    return out;
}
