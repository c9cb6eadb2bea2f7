/* CHECK for fuzz targets: an invariant that fails aborts, so libFuzzer records the input. */
#ifndef FCGIHOST_FUZZ_CHECK_H
#define FCGIHOST_FUZZ_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#endif
