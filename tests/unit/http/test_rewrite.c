/* Rewrite rules (src/http/rewrite.c): substitution, query strings, unless, last, redirects, the
 * loop limit and the safety checks of rewritten paths, on configurations loaded from text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "http/rewrite.h"

static cfg_t *load(const char *rules) {
    char *text = NULL;
    if (asprintf(&text, "[server]\nroot = /tmp\n%s", rules) < 0) abort();
    cfg_diag_t d;
    cfg_diag_init(&d);
    cfg_t *cfg = cfg_load_string(text, "t.conf", "/tmp", &d);
    for (size_t i = 0; i < d.n; i++) fprintf(stderr, "%s\n", d.msgs[i]);
    cfg_diag_dispose(&d);
    free(text);
    assert_non_null(cfg);
    return cfg;
}

/* Paths that exist for `unless`: /file.txt is a file, /dir a directory. */
static int probe(void *arg, const char *path) {
    (void)arg;
    if (strcmp(path, "/file.txt") == 0) return REWRITE_IS_FILE;
    if (strcmp(path, "/dir") == 0) return REWRITE_IS_DIR;
    return 0;
}

typedef struct result {
    rewrite_outcome_t out;
    char path[256], query[256], location[256];
    bool has_query;
    int status;
    unsigned count;
} result_t;

static result_t run(const cfg_t *cfg, const char *path, const char *query, unsigned count) {
    result_t res = {.count = count};
    rewrite_io_t io;
    rewrite_io_init(&io, &res.count, path, strlen(path), query, query ? strlen(query) : 0);
    res.out = rewrite_run(cfg, &cfg->sites[0], &io, probe, NULL);
    if (res.out == REWRITE_DONE) {
        snprintf(res.path, sizeof(res.path), "%.*s", (int)io.path.len, io.path.data);
        snprintf(res.query, sizeof(res.query), "%.*s", (int)io.query.len, io.query.data);
    } else { /* untouched: the request keeps its own */
        assert_int_equal(io.path.len, 0);
        snprintf(res.path, sizeof(res.path), "%s", path);
        snprintf(res.query, sizeof(res.query), "%s", query ? query : "");
    }
    snprintf(res.location, sizeof(res.location), "%.*s", (int)io.location.len,
             io.location.data ? io.location.data : "");
    res.has_query = io.has_query;
    res.status = io.status;
    rewrite_io_dispose(&io);
    return res;
}

static void test_captures_and_query(void **state) {
    cfg_t *cfg = load("[rewrite:wiki]\nmatch = ^/wiki/(.*)$\nto = /index.php?title=$1\n");
    result_t r = run(cfg, "/wiki/Main_Page", NULL, 0);
    assert_int_equal(r.out, REWRITE_DONE);
    assert_string_equal(r.path, "/index.php");
    assert_string_equal(r.query, "title=Main_Page");
    assert_int_equal(r.count, 1);
    /* The client's query string follows after '&'; captures are escaped in the query. */
    r = run(cfg, "/wiki/A&B C+D", "action=edit", 0);
    assert_string_equal(r.query, "title=A%26B%20C%2BD&action=edit");
    /* No match: nothing changes. */
    r = run(cfg, "/other", "x=1", 0);
    assert_int_equal(r.out, REWRITE_NONE);
    assert_string_equal(r.path, "/other");
    assert_string_equal(r.query, "x=1");
    cfg_free(cfg);
}

static void test_path_groups_and_dollar(void **state) {
    cfg_t *cfg = load("[rewrite:a]\nmatch = ^/(\\w+)/(\\d+)(/x)?$\nto = /$2/$1$3/$$9\n");
    result_t r = run(cfg, "/post/42", "a=b", 0);
    assert_int_equal(r.out, REWRITE_DONE);
    assert_string_equal(r.path, "/42/post/$9"); /* $3 did not take part: empty */
    assert_string_equal(r.query, "a=b");        /* kept when `to` has no query */
    cfg_free(cfg);
}

static void test_unless_and_last(void **state) {
    cfg_t *cfg = load("[rewrite:front]\nmatch = ^/(.*)$\nunless = file directory\n"
                      "to = /index.php\nlast = false\n"
                      "[rewrite:second]\nmatch = ^/index\\.php$\nto = /main.php\n");
    result_t r = run(cfg, "/file.txt", NULL, 0);
    assert_int_equal(r.out, REWRITE_NONE);
    r = run(cfg, "/dir", NULL, 0);
    assert_int_equal(r.out, REWRITE_NONE);
    r = run(cfg, "/pretty/url", NULL, 0);
    assert_int_equal(r.out, REWRITE_DONE);
    assert_string_equal(r.path, "/main.php"); /* the second rule saw the first one's result */
    assert_int_equal(r.count, 2);
    cfg_free(cfg);
    cfg = load("[rewrite:front]\nmatch = ^/(.*)$\nto = /index.php\n"
               "[rewrite:second]\nmatch = ^/index\\.php$\nto = /main.php\n");
    r = run(cfg, "/x", NULL, 0);
    assert_string_equal(r.path, "/index.php"); /* last = true by default */
    cfg_free(cfg);
}

static void test_redirect(void **state) {
    cfg_t *cfg = load("[rewrite:r]\nmatch = ^/old/(.*)$\nto = https://example.org/new/$1\n"
                      "redirect = 308\n");
    result_t r = run(cfg, "/old/a b", "q=1", 0);
    assert_int_equal(r.out, REWRITE_REDIRECT);
    assert_int_equal(r.status, 308);
    assert_string_equal(r.location, "https://example.org/new/a%20b?q=1");
    cfg_free(cfg);
}

static void test_loop_and_unsafe(void **state) {
    cfg_t *cfg = load("[rewrite:a]\nmatch = ^/(.*)$\nto = /$1\n");
    result_t r = run(cfg, "/x", NULL, REWRITE_MAX);
    assert_int_equal(r.out, REWRITE_LOOP);
    cfg_free(cfg);
    cfg = load("[rewrite:a]\nmatch = ^/go/(.*)$\nto = /base/$1\n");
    r = run(cfg, "/go/../../etc/passwd", NULL, 0);
    assert_int_equal(r.out, REWRITE_BAD);
    assert_int_equal(r.status, 400);
    r = run(cfg, "/go/.env", NULL, 0);
    assert_int_equal(r.out, REWRITE_BAD);
    assert_int_equal(r.status, 403);
    cfg_free(cfg);
}

static void test_sites(void **state) {
    char *text = NULL;
    if (asprintf(&text, "[server]\n[site:a]\nhosts = a.test\nroot = /tmp\n[site:b]\nhosts = *\n"
                        "root = /tmp\n[rewrite:onlyb]\nmatch = ^/x$\nto = /y\nsite = b\n") < 0)
        abort();
    cfg_t *cfg = cfg_load_string(text, "t.conf", "/tmp", NULL);
    free(text);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_sites, 2);
    assert_int_equal(cfg->sites[0].n_rewrites, 0);
    assert_int_equal(cfg->sites[1].n_rewrites, 1);
    assert_true(cfg->sites[1].is_default);
    cfg_free(cfg);
}

/* The literal prefix checked before a pattern runs never changes what matches: optional last
 * characters, escapes, classes and alternations; and a path that is not UTF-8 matches nothing. */
static void test_prefix_shortcut(void **state) {
    cfg_t *cfg = load("[rewrite:feed]\nmatch = ^/feed/?$\nto = /feed.php\n");
    assert_string_equal(cfg->rewrites[0].prefix, "/feed");
    assert_string_equal(run(cfg, "/feed", NULL, 0).path, "/feed.php");
    assert_string_equal(run(cfg, "/feed/", NULL, 0).path, "/feed.php");
    assert_int_equal(run(cfg, "/fee", NULL, 0).out, REWRITE_NONE);
    assert_int_equal(run(cfg, "/feedx", NULL, 0).out, REWRITE_NONE);
    cfg_free(cfg);
    cfg = load("[rewrite:s]\nmatch = ^/sitemap\\.xml$\nto = /s.php\n");
    assert_string_equal(cfg->rewrites[0].prefix, "/sitemap.xml");
    assert_int_equal(run(cfg, "/sitemap.xml", NULL, 0).out, REWRITE_DONE);
    assert_int_equal(run(cfg, "/sitemapXxml", NULL, 0).out, REWRITE_NONE);
    cfg_free(cfg);
    cfg = load("[rewrite:a]\nmatch = ^/a/b|^/c\nto = /x\n[rewrite:d]\nmatch = ^/(\\d+)\nto = /n\n"
               "[rewrite:e]\nmatch = ^/x{2}y\nto = /e\n[rewrite:f]\nmatch = /tail$\nto = /t\n");
    assert_null(cfg->rewrites[0].prefix);     /* an alternation */
    assert_string_equal(cfg->rewrites[1].prefix, "/");
    assert_string_equal(cfg->rewrites[2].prefix, "/");   /* x{2}: not a literal "x" */
    assert_null(cfg->rewrites[3].prefix);     /* not anchored */
    assert_string_equal(run(cfg, "/c", NULL, 0).path, "/x");
    assert_string_equal(run(cfg, "/xxy", NULL, 0).path, "/e");
    assert_string_equal(run(cfg, "/q/tail", NULL, 0).path, "/t");
    assert_int_equal(run(cfg, "/q/\xff/tail", NULL, 0).out, REWRITE_NONE); /* not UTF-8 */
    assert_string_equal(run(cfg, "/q/\xc3\xa9/tail", NULL, 0).path, "/t");
    cfg_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_and_query), cmocka_unit_test(test_path_groups_and_dollar),
        cmocka_unit_test(test_unless_and_last),    cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_loop_and_unsafe),    cmocka_unit_test(test_sites),
        cmocka_unit_test(test_prefix_shortcut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
