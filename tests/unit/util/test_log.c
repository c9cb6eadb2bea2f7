/* Unit tests for log_escape (src/util/log.c): what may reach an error-log line (SPEC §8). Tables
 * carry __LINE__; the integration test (test_51_privsep.py) checks whole lines in the log file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/log.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_escape(void **state) {
    static const struct {
        int line;
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {__LINE__, S("plain text: /a/b?c=d \\ \"q\""), "plain text: /a/b?c=d \\ \"q\""},
        {__LINE__, S("x\n[error] forged"), "x\\x0A[error] forged"},
        {__LINE__, S("a\rb\tc\x1b[2J\x7f"), "a\\x0Db\\x09c\\x1B[2J\\x7F"},
        {__LINE__, S("nul\0after"), "nul\\x00after"},
        {__LINE__, S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {__LINE__, S("\xc2\x85nel \xc2\x9f \xc2\xa0"), "\\xC2\\x85nel \\xC2\\x9F \xc2\xa0"}, /* C1 */
        {__LINE__, S("\xc0\xaf \xe0\x80\xaf"), "\\xC0\\xAF \\xE0\\x80\\xAF"},   /* overlong */
        {__LINE__, S("\xed\xa0\x80"), "\\xED\\xA0\\x80"},                    /* surrogate */
        {__LINE__, S("\xf4\x90\x80\x80 \xf5"), "\\xF4\\x90\\x80\\x80 \\xF5"}, /* > U+10FFFF */
        {__LINE__, S("cut \xe2\x82"), "cut \\xE2\\x82"},                     /* truncated */
        {__LINE__, S("\xff\xfe"), "\\xFF\\xFE"},
        {__LINE__, S(""), ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        size_t n = log_escape(out, sizeof(out), cases[i].in, cases[i].len);
        out[n] = '\0';
        if (strcmp(out, cases[i].want) != 0) {
            print_message("line %d: got '%s' want '%s'\n", cases[i].line, out, cases[i].want);
            fail();
        }
    }
}

/* A full buffer stops before an escape or a character that does not fit: never half of one. */
static void test_escape_bounded(void **state) {
    char out[8];
    memset(out, '#', sizeof(out));
    assert_int_equal(log_escape(out, 5, S("ab\ncd")), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(log_escape(out, 6, S("ab\ncd")), 6);
    assert_memory_equal(out, "ab\\x0A", 6);
    assert_int_equal(log_escape(out, 3, S("a\xc3\xa9")), 3);
    memset(out, '#', sizeof(out));
    assert_int_equal(log_escape(out, 2, S("a\xc3\xa9")), 1);
    assert_int_equal(out[2], '#'); /* nothing written past cap */
}

/* JOURNAL_STREAM is "DEV:INO" in decimal (systemd.exec(5)); anything else names no stream. */
static void test_journal_stream(void **state) {
    static const struct {
        int line;
        const char *env;
        unsigned long long dev, ino;
        bool want;
    } cases[] = {
        {__LINE__, "8:1234", 8, 1234, true},
        {__LINE__, "0:0", 0, 0, true},
        {__LINE__, "18446744073709551615:18446744073709551615", 18446744073709551615ull,
         18446744073709551615ull, true},
        {__LINE__, "8:1234", 8, 1235, false},
        {__LINE__, "9:1234", 8, 1234, false},
        {__LINE__, NULL, 0, 0, false},
        {__LINE__, "", 0, 0, false},
        {__LINE__, ":", 0, 0, false},
        {__LINE__, "8:", 8, 0, false},
        {__LINE__, ":1234", 0, 1234, false},
        {__LINE__, "8:1234 ", 8, 1234, false},
        {__LINE__, " 8:1234", 8, 1234, false},
        {__LINE__, "8:1234:5", 8, 1234, false},
        {__LINE__, "-8:1234", 8, 1234, false},
        {__LINE__, "+8:1234", 8, 1234, false},
        {__LINE__, "0x8:1234", 8, 1234, false},
        {__LINE__, "18446744073709551616:1", 0, 1, false}, /* 2^64 */
        {__LINE__, "99999999999999999999:1", 0, 1, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (log_journal_stream_matches(cases[i].env, cases[i].dev, cases[i].ino) != cases[i].want)
            fail_msg("line %d: '%s' vs %llu:%llu", cases[i].line,
                     cases[i].env ? cases[i].env : "(null)", cases[i].dev, cases[i].ino);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_bounded),
        cmocka_unit_test(test_journal_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
