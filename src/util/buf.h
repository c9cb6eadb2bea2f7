/* A growable byte buffer. The bytes between `data` and `data + len` are owned by the buffer, and
 * data[len] is always a NUL (once data is allocated), so text can be used as a C string. */
#ifndef FCGIHOST_UTIL_BUF_H
#define FCGIHOST_UTIL_BUF_H
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_dispose(buf_t *b);
/* Make room for `extra` more bytes past len (plus the NUL); returns the write position. */
char *buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes, moving the rest to the front. */
void buf_consume(buf_t *b, size_t n);

#endif
