#include "util/str.h"

bool str_ieq(str_t a, const char *lower, size_t lowerlen) {
    if (a.len != lowerlen) return false;
    for (size_t i = 0; i < lowerlen; i++)
        if (ascii_lower(a.p[i]) != lower[i]) return false;
    return true;
}

str_t str_trim_ows(str_t s) {
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) s.len--;
    return s;
}

bool str_next_list_item(str_t *rest, str_t *item) {
    while (rest->len) {
        const char *comma = memchr(rest->p, ',', rest->len);
        size_t n = comma ? (size_t)(comma - rest->p) : rest->len;
        *item = str_trim_ows(str_make(rest->p, n));
        rest->p += comma ? n + 1 : n;
        rest->len -= comma ? n + 1 : n;
        if (item->len) return true;
    }
    return false;
}
