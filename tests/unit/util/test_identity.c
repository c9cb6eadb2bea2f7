/* Unit tests for src/util/identity.c: the trampoline's group argument (tables carrying __LINE__)
 * and lookups of users every system has (root). Switching identity needs root and a throw-away
 * process: tests/integration/test_50_identity.py covers it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/identity.h"

static void test_parse_groups(void **state) {
    static const struct {
        int line;
        const char *text;
        bool ok;
        size_t n;
        gid_t want[4];
    } cases[] = {
        {__LINE__, "33", true, 1, {33}},
        {__LINE__, "0", true, 1, {0}},
        {__LINE__, "100,4,27", true, 3, {100, 4, 27}},
        {__LINE__, "4294967294", true, 1, {4294967294u}},
        {__LINE__, "4294967295", false, 0, {0}}, /* (gid_t)-1 means "no change" to setgid */
        {__LINE__, "", false, 0, {0}},
        {__LINE__, "-1", false, 0, {0}},
        {__LINE__, "1,", false, 0, {0}},
        {__LINE__, ",1", false, 0, {0}},
        {__LINE__, "1,,2", false, 0, {0}},
        {__LINE__, "1 ,2", false, 0, {0}},
        {__LINE__, "+1", false, 0, {0}},
        {__LINE__, "12a", false, 0, {0}},
        {__LINE__, "99999999999999999999", false, 0, {0}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gid_t gid = 12345, *groups = NULL;
        size_t n = 0;
        bool ok = identity_parse_groups(cases[i].text, &gid, &groups, &n);
        if (ok != cases[i].ok) fail_msg("line %d: '%s': ok=%d", cases[i].line, cases[i].text, ok);
        if (!ok) continue;
        if (n != cases[i].n || gid != cases[i].want[0])
            fail_msg("line %d: n=%zu gid=%u", cases[i].line, n, (unsigned)gid);
        for (size_t k = 0; k < n; k++)
            if (groups[k] != cases[i].want[k]) fail_msg("line %d: group %zu", cases[i].line, k);
        free(groups);
    }
}

static void test_format_round_trip(void **state) {
    gid_t groups[] = {27, 1000, 4, 1000};
    identity_t id = {.gid = 1000, .groups = groups, .n_groups = 4};
    char *s = identity_format_groups(&id);
    assert_string_equal(s, "1000,27,4"); /* primary first, not repeated */
    gid_t gid, *back;
    size_t n;
    assert_true(identity_parse_groups(s, &gid, &back, &n));
    assert_int_equal(gid, 1000);
    assert_int_equal(n, 3);
    free(back);
    free(s);
}

static void test_lookup_root(void **state) {
    const char *names[] = {"root", "0"};
    for (size_t i = 0; i < 2; i++) {
        identity_t id;
        char err[256] = "";
        assert_int_equal(identity_lookup(names[i], &id, err, sizeof(err)), 0);
        assert_string_equal(id.name, "root");
        assert_int_equal(id.uid, 0);
        assert_int_equal(id.gid, 0);
        assert_true(id.n_groups >= 1);
        bool has_primary = false;
        for (size_t k = 0; k < id.n_groups; k++) has_primary |= id.groups[k] == 0;
        assert_true(has_primary);
        identity_dispose(&id);
    }
}

static void test_lookup_unknown(void **state) {
    identity_t id;
    char err[256];
    assert_int_equal(identity_lookup("fhtest-no-such-user", &id, err, sizeof(err)), -1);
    assert_string_equal(err, "no such user 'fhtest-no-such-user'");
    assert_null(id.name);
    assert_int_equal(identity_lookup("4294967290", &id, err, sizeof(err)), -1);
    assert_string_equal(err, "no user with uid 4294967290 in the passwd database");
    assert_int_equal(identity_lookup("4294967295", &id, err, sizeof(err)), -1);
    assert_string_equal(err, "no such user '4294967295'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_groups),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_lookup_root),
        cmocka_unit_test(test_lookup_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
