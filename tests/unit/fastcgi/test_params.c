/* The CGI/1.1 variable builder (fastcgi/params.c), including utf8ServerVariables (SPEC §4.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fastcgi/codec.h"
#include "fastcgi/params.h"

/* Decode the PARAMS stream of `out` (after BEGIN_REQUEST) and find `name`; NULL if absent. */
static char found[4096];
static const char *param(const buf_t *out, const char *name) {
    size_t off = FCGI_HEADER_LEN + 8; /* BEGIN_REQUEST record */
    static char stream[1 << 16];
    size_t slen = 0;
    while (off + FCGI_HEADER_LEN <= out->len) {
        fcgi_header_t h;
        fcgi_header_decode(out->data + off, &h);
        off += FCGI_HEADER_LEN;
        if (h.type == FCGI_PARAMS && h.content_len) {
            memcpy(stream + slen, out->data + off, h.content_len);
            slen += h.content_len;
        }
        off += h.content_len + h.padding_len;
    }
    str_t rest = str_make(stream, slen);
    fcgi_nv_t nv;
    while (fcgi_nv_next(&rest, &nv) > 0) {
        if (nv.name.len == strlen(name) && memcmp(nv.name.p, name, nv.name.len) == 0) {
            snprintf(found, sizeof(found), "%.*s", (int)nv.value.len, nv.value.p);
            return found;
        }
    }
    return NULL;
}

#define S(lit) STR_LIT(lit)

static cgi_vars_t base(void) {
    static http_header_t hdrs[] = {
        {STR_LIT("Host"), STR_LIT("example.org:8080")},
        {STR_LIT("X-Thing"), STR_LIT("a")},
        {STR_LIT("x-thing"), STR_LIT("b")},
        {STR_LIT("Proxy"), STR_LIT("http://evil")},
        {STR_LIT("X_Under"), STR_LIT("spoof")},
        {STR_LIT("Content-Type"), STR_LIT("text/plain")},
        {STR_LIT("Cookie"), STR_LIT("a=1")},
        {STR_LIT("Cookie"), STR_LIT("b=2")},
        {STR_LIT("X-Bin"), STR_LIT("caf\xc3\xa9")},
    };
    cgi_vars_t v = {
        .method = S("POST"), .request_uri = S("/a.php/p?q=1"), .query = S("q=1"),
        .script_name = S("/a.php"), .path_info = S("/p"), .document_uri = S("/a.php/p"),
        .document_root = S("/srv/www"), .script_filename = S("/srv/www/a.php"),
        .server_addr = S("127.0.0.1"), .server_port = S("8080"), .server_name = S("example.org"),
        .remote_addr = S("127.0.0.2"), .remote_port = S("5555"), .minor_version = 1,
        .content_length = 12, .headers = hdrs, .n_headers = sizeof(hdrs) / sizeof(hdrs[0]),
        .utf8_all = true,
    };
    return v;
}

static void test_variables(void **state) {
    cgi_vars_t v = base();
    buf_t out;
    buf_init(&out);
    char err[64];
    assert_int_equal(cgi_params_build(&v, &out, err, sizeof(err)), 0);
    assert_string_equal(param(&out, "REQUEST_METHOD"), "POST");
    assert_string_equal(param(&out, "SCRIPT_NAME"), "/a.php");
    assert_string_equal(param(&out, "PATH_INFO"), "/p");
    assert_string_equal(param(&out, "PATH_TRANSLATED"), "/srv/www/p");
    assert_string_equal(param(&out, "SCRIPT_FILENAME"), "/srv/www/a.php");
    assert_string_equal(param(&out, "CONTENT_LENGTH"), "12");
    assert_string_equal(param(&out, "CONTENT_TYPE"), "text/plain");
    assert_string_equal(param(&out, "HTTP_HOST"), "example.org:8080");
    assert_string_equal(param(&out, "HTTP_X_THING"), "a, b");
    assert_string_equal(param(&out, "HTTP_COOKIE"), "a=1; b=2");
    assert_string_equal(param(&out, "REDIRECT_STATUS"), "200");
    assert_string_equal(param(&out, "SERVER_PROTOCOL"), "HTTP/1.1");
    assert_string_equal(param(&out, "HTTP_X_BIN"), "caf\xc3\xa9");
    assert_null(param(&out, "HTTP_PROXY"));
    assert_null(param(&out, "HTTP_X_UNDER"));
    assert_null(param(&out, "HTTP_CONTENT_TYPE"));
    assert_null(param(&out, "HTTPS"));
    buf_dispose(&out);
}

static void test_no_path_info_no_path_translated(void **state) {
    cgi_vars_t v = base();
    v.path_info = S("");
    buf_t out;
    buf_init(&out);
    char err[64];
    assert_int_equal(cgi_params_build(&v, &out, err, sizeof(err)), 0);
    assert_string_equal(param(&out, "PATH_INFO"), "");
    assert_null(param(&out, "PATH_TRANSLATED"));
    buf_dispose(&out);
}

static void test_utf8_listed_invalid_is_400(void **state) {
    cgi_vars_t v = base();
    v.script_name = S("/\xc0\xae.php"); /* overlong */
    buf_t out;
    buf_init(&out);
    char err[64];
    assert_int_equal(cgi_params_build(&v, &out, err, sizeof(err)), -400);
    assert_non_null(strstr(err, "SCRIPT_NAME"));
    buf_dispose(&out);
}

static void test_not_listed_is_percent_escaped(void **state) {
    cgi_vars_t v = base();
    char *const only[] = {"PATH_INFO"};
    v.utf8_all = false;
    v.utf8_vars = only;
    v.n_utf8_vars = 1;
    v.script_name = S("/donn\xc3\xa9" "es/\xc3\xa9.php");
    v.path_info = S("/\xc3\xa9");
    buf_t out;
    buf_init(&out);
    char err[64];
    assert_int_equal(cgi_params_build(&v, &out, err, sizeof(err)), 0);
    assert_string_equal(param(&out, "SCRIPT_NAME"), "/donn%C3%A9es/%C3%A9.php");
    assert_string_equal(param(&out, "PATH_INFO"), "/\xc3\xa9");
    assert_string_equal(param(&out, "HTTP_X_BIN"), "caf%C3%A9");
    /* an invalid byte in a non-listed variable is escaped, not refused */
    buf_dispose(&out);
    buf_init(&out);
    v.script_name = S("/\xc0\xae.php");
    assert_int_equal(cgi_params_build(&v, &out, err, sizeof(err)), 0);
    assert_string_equal(param(&out, "SCRIPT_NAME"), "/%C0%AE.php");
    buf_dispose(&out);
}

static void test_empty_list_means_all_ascii(void **state) {
    cgi_vars_t v = base();
    v.utf8_all = false;
    v.n_utf8_vars = 0;
    buf_t out;
    buf_init(&out);
    char err[64];
    assert_int_equal(cgi_params_build(&v, &out, err, sizeof(err)), 0);
    assert_string_equal(param(&out, "HTTP_X_BIN"), "caf%C3%A9");
    buf_dispose(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_no_path_info_no_path_translated),
        cmocka_unit_test(test_utf8_listed_invalid_is_400),
        cmocka_unit_test(test_not_listed_is_percent_escaped),
        cmocka_unit_test(test_empty_list_means_all_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
