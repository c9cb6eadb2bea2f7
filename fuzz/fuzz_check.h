/* For fuzz targets: CHECK, an invariant that fails aborts, so libFuzzer records the input; and a
 * small PRNG for splitting inputs into pieces reproducibly. */
#ifndef FCGIHOST_FUZZ_CHECK_H
#define FCGIHOST_FUZZ_CHECK_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static inline uint32_t fuzz_next_random(uint32_t *s) {
    uint32_t x = *s; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

#endif
