/* Request paths: percent-decoding and the safety rules for mapping a URL path onto the file system.
 * PURE. */
#ifndef FCGIHOST_HTTP_PATH_H
#define FCGIHOST_HTTP_PATH_H
#include <stdbool.h>
#include <stddef.h>

/* Decode the percent-encoded path `in` (the request target's path, without the query) into `out`,
 * which must have room for len + 1 bytes; *outlen receives the decoded length (out is
 * NUL-terminated). Runs of '/' are merged into one. Returns:
 *    0     a safe absolute path,
 *   -400   a bad %-escape, a NUL byte (raw or %00), invalid UTF-8 (overlong forms included, so
 *          %C0%AE is no '.'), a path not starting with '/', or a "." or ".." segment (a traversal
 *          attempt: clients normalise these away, so the raw form is never legitimate),
 *   -403   a segment starting with '.' (dot-files such as /.git/config or /.env).
 * A %2F decodes to '/', so it separates segments like a literal slash and is checked the same way. */
int http_path_decode(const char *in, size_t len, char *out, size_t *outlen);

/* True if buf[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF). */
bool utf8_valid(const unsigned char *buf, size_t len);

/* Percent-encode the bytes that are not unreserved or '/' (for Location headers built from paths). */
size_t http_path_encode(const char *in, size_t len, char *out, size_t outcap);

#endif
