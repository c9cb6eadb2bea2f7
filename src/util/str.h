/* Borrowed byte slices (pointer + length) into someone else's buffer, and small helpers. */
#ifndef FCGIHOST_UTIL_STR_H
#define FCGIHOST_UTIL_STR_H
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct str {
    const char *p; /* borrowed */
    size_t len;
} str_t;

#define STR_NULL ((str_t){NULL, 0})
#define STR_LIT(s) ((str_t){(s), sizeof(s) - 1})

static inline str_t str_make(const char *p, size_t len) {
    return (str_t){p, len};
}

static inline bool str_eq(str_t a, const char *lit, size_t litlen) {
    return a.len == litlen && (litlen == 0 || memcmp(a.p, lit, litlen) == 0); /* p may be NULL */
}

/* ASCII case-insensitive comparison against a lower-case literal. */
bool str_ieq(str_t a, const char *lower, size_t lowerlen);
#define STR_IEQ(a, lit) str_ieq((a), (lit), sizeof(lit) - 1)
#define STR_EQ(a, lit) str_eq((a), (lit), sizeof(lit) - 1)

/* Trim spaces and horizontal tabs from both ends. */
str_t str_trim_ows(str_t s);

/* Split the next comma-separated element off *rest (trimmed); false when none is left. */
bool str_next_list_item(str_t *rest, str_t *item);

static inline char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

#endif
