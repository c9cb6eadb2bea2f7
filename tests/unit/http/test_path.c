/* Path decoding and safety rules (http/path.c) and handler mappings (http/router.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "http/path.h"
#include "http/router.h"

typedef struct {
    int line;
    const char *in;
    int rc;
    const char *out; /* expected decoded path when rc >= 0 */
} path_case_t;

static const path_case_t path_cases[] = {
    {__LINE__, "/", 0, "/"},
    {__LINE__, "/a/b.txt", 0, "/a/b.txt"},
    {__LINE__, "/a%20b", 0, "/a b"},
    {__LINE__, "//a///b", 0, "/a/b"},
    {__LINE__, "/donn%C3%A9es/%C3%A9.php", 0, "/donn\xc3\xa9" "es/\xc3\xa9.php"},
    {__LINE__, "/a/", 0, "/a/"},
    {__LINE__, "/..", -400, NULL},
    {__LINE__, "/../etc/passwd", -400, NULL},
    {__LINE__, "/a/./b", -400, NULL},
    {__LINE__, "/%2e%2e/etc/passwd", -400, NULL},
    {__LINE__, "/%2E%2e%2fetc%2fpasswd", -400, NULL},
    {__LINE__, "/..%2fetc/passwd", -400, NULL},
    {__LINE__, "/%c0%ae%c0%ae/etc/passwd", -400, NULL},  /* overlong '.' */
    {__LINE__, "/%e0%80%ae", -400, NULL},                 /* overlong, 3 bytes */
    {__LINE__, "/%ed%a0%80", -400, NULL},                 /* surrogate */
    {__LINE__, "/%f4%90%80%80", -400, NULL},              /* > U+10FFFF */
    {__LINE__, "/%ff", -400, NULL},
    {__LINE__, "/a%00.html", -400, NULL},
    {__LINE__, "/a%", -400, NULL},
    {__LINE__, "/a%2", -400, NULL},
    {__LINE__, "/a%zz", -400, NULL},
    {__LINE__, "a/b", -400, NULL},
    {__LINE__, "", -400, NULL},
    {__LINE__, "/.git/config", -403, NULL},
    {__LINE__, "/dir/.env", -403, NULL},
    {__LINE__, "/.hidden", -403, NULL},
    {__LINE__, "/%2ehtaccess", -403, NULL},
    {__LINE__, "/a.b/c.d", 0, "/a.b/c.d"},
};

static void test_path_decode(void **state) {
    for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const path_case_t *c = &path_cases[i];
        size_t len = strlen(c->in), outlen = 0;
        char *out = malloc(len + 1);
        int rc = http_path_decode(c->in, len, out, &outlen);
        if (rc != c->rc) fail_msg("line %d: %s: rc %d, want %d", c->line, c->in, rc, c->rc);
        if (c->out && (outlen != strlen(c->out) || memcmp(out, c->out, outlen) != 0))
            fail_msg("line %d: %s: decoded to %.*s", c->line, c->in, (int)outlen, out);
        free(out);
    }
}

static void test_utf8(void **state) {
    assert_true(utf8_valid((const unsigned char *)"", 0));
    assert_true(utf8_valid((const unsigned char *)"\xe2\x82\xac\xf0\x9f\x98\x80", 7));
    assert_false(utf8_valid((const unsigned char *)"\xe2\x82", 2)); /* truncated */
    assert_false(utf8_valid((const unsigned char *)"\x80", 1));
    assert_false(utf8_valid((const unsigned char *)"\xc1\xbf", 2));
}

static void test_path_encode(void **state) {
    char out[64];
    http_path_encode("/a b/\xc3\xa9?#", 9, out, sizeof(out));
    assert_string_equal(out, "/a%20b/%C3%A9%3F%23");
}

/* A configuration with the given handlers (path, verbs or NULL for *). */
static cfg_t *make_cfg(const char *const *paths, const char *const *verbs, size_t n) {
    cfg_t *cfg = calloc(1, sizeof(*cfg));
    cfg->handlers = calloc(n, sizeof(cfg_handler_t));
    cfg->n_handlers = n;
    cfg->sites = calloc(1, sizeof(cfg_site_t)); /* one site that every handler applies to */
    cfg->n_sites = 1;
    cfg->sites[0].handlers = calloc(n, sizeof(size_t));
    cfg->sites[0].n_handlers = n;
    for (size_t i = 0; i < n; i++) {
        cfg->sites[0].handlers[i] = i;
        cfg_handler_t *h = &cfg->handlers[i];
        h->path = (char *)paths[i];
        h->path_is_prefix = paths[i][0] == '/';
        h->path_kind = cfg_path_kind(paths[i], &h->path_n);
        h->any_verb = verbs[i] == NULL;
        if (verbs[i]) {
            h->verbs = calloc(1, sizeof(char *));
            h->verbs[0] = (char *)verbs[i];
            h->n_verbs = 1;
        }
    }
    return cfg;
}

static void free_cfg(cfg_t *cfg) {
    for (size_t i = 0; i < cfg->n_handlers; i++) free(cfg->handlers[i].verbs);
    free(cfg->handlers);
    free(cfg->sites[0].handlers);
    free(cfg->sites);
    free(cfg);
}

typedef struct {
    int line;
    const char *path;
    const char *method;
    int handler;
    size_t script_len;
} route_case_t;

static void test_router(void **state) {
    static const char *const paths[] = {"*.php", "/api/", "index.cgi", "*"};
    static const char *const verbs[] = {NULL, NULL, "POST", "DELETE"};
    cfg_t *cfg = make_cfg(paths, verbs, 4);
    static const route_case_t cases[] = {
        {__LINE__, "/index.php", "GET", 0, 10},
        {__LINE__, "/a/b.php/x/y", "GET", 0, 8},
        {__LINE__, "/upload/x.jpg/y.php", "GET", 0, 19},  /* never x.jpg */
        {__LINE__, "/X.PHP", "GET", 0, 6},                /* case-insensitive, as IIS */
        {__LINE__, "/x.pHp", "GET", 0, 6},
        {__LINE__, "/x.qhp", "GET", -1, 0},
        {__LINE__, "/x.php", "POST", 0, 6},
        {__LINE__, "/php", "GET", -1, 0},                 /* shorter than the suffix */
        {__LINE__, "/a.php.txt", "GET", -1, 0},
        {__LINE__, "/api", "GET", 1, 4},
        {__LINE__, "/api/users/7", "GET", 1, 4},
        {__LINE__, "/apix", "GET", -1, 0},
        {__LINE__, "/d/index.cgi", "GET", -1, 0},         /* verb not listed: falls through */
        {__LINE__, "/d/index.cgi/p", "POST", 2, 12},
        {__LINE__, "/any/thing", "DELETE", 3, 10},
        {__LINE__, "/static.txt", "GET", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const route_case_t *c = &cases[i];
        size_t sl = 0;
        int h = router_match(cfg, &cfg->sites[0], c->path, strlen(c->path), str_make(c->method, strlen(c->method)), &sl);
        if (h != c->handler || (h >= 0 && sl != c->script_len))
            fail_msg("line %d: %s %s: handler %d script_len %zu", c->line, c->method, c->path, h, sl);
    }
    free_cfg(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_decode),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_path_encode),
        cmocka_unit_test(test_router),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
