/* libFuzzer target for the control protocol (src/ctl/proto.c): the request-line parser that the
 * server runs on bytes from its control socket, the command check, and the response-head parser
 * that `fcgihost ctl` runs on what the server answers.
 *
 * Input: one control byte, then the bytes. They are parsed in one call and again split into pieces
 * (sizes from a PRNG seeded with the control byte); both parses must agree on the result and on
 * every word (the parser promises that splitting does not matter). A complete line goes through
 * ctl_cmd_parse; a request re-encoded from the words parses back to the same words. The response
 * parser must consume at most the input and report a code within 0..999. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/proto.h"
#include "fuzz_check.h"

/* Feed until the parser stops asking for more; returns the last result. */
static int parse(ctl_req_parser_t *p, const uint8_t *data, size_t n, uint8_t ctl, int split) {
    ctl_req_parser_init(p);
    uint32_t seed = 0x9e3779b9u ^ ((uint32_t)ctl * 0x85ebca6bu);
    size_t pos = 0;
    int rc = CTL_AGAIN;
    while (pos < n) {
        size_t len = split ? 1 + fuzz_next_random(&seed) % (1u + (ctl & 63u)) : n - pos;
        if (len > n - pos) len = n - pos;
        char *piece = malloc(len);
        CHECK(piece);
        memcpy(piece, data + pos, len);
        rc = ctl_req_parse(p, piece, len);
        free(piece);
        if (rc == CTL_AGAIN) {
            pos += len;
            continue;
        }
        break;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    data++;
    size--;

    static ctl_req_parser_t whole, split;
    int a = parse(&whole, data, size, ctl, 0);
    int b = parse(&split, data, size, ctl, 1);
    CHECK((a < 0) == (b < 0));
    if (a < 0) {
        CHECK(a == b);
    } else {
        CHECK(whole.argc == split.argc);
        CHECK(whole.argc >= 1 && whole.argc <= CTL_ARGC_MAX);
        for (int i = 0; i < whole.argc; i++) CHECK(strcmp(whole.argv[i], split.argv[i]) == 0);
        CHECK(whole.argv[whole.argc] == NULL);

        ctl_cmd_t cmd;
        char err[256];
        if (ctl_cmd_parse(whole.argc, whole.argv, &cmd, err, sizeof(err)) != 0)
            CHECK(memchr(err, '\0', sizeof(err)) != NULL);

        /* words -> line -> words */
        buf_t line;
        buf_init(&line);
        int e = ctl_request_encode(&line, whole.argc, (const char *const *)whole.argv);
        if (e == 0) {
            ctl_req_parser_t again;
            ctl_req_parser_init(&again);
            int r = ctl_req_parse(&again, line.data, line.len);
            CHECK(r == (int)line.len);
            CHECK(again.argc == whole.argc);
            for (int i = 0; i < whole.argc; i++) CHECK(strcmp(again.argv[i], whole.argv[i]) == 0);
        }
        buf_dispose(&line);
    }

    int code = -1;
    str_t msg;
    int r = ctl_response_parse_head((const char *)data, size, &code, &msg);
    if (r >= 0) {
        CHECK((size_t)r <= size && r > 0);
        CHECK(code >= 0 && code <= 999);
        CHECK(msg.len <= (size_t)r);
    }
    return 0;
}
