#include "config/generation.h"

#include <stdlib.h>

#include "util/xalloc.h"

gen_t *gen_new(cfg_t *cfg, void (*release)(gen_t *g, void *arg), void *release_arg) {
    gen_t *g = xcalloc(1, sizeof(*g));
    g->cfg = cfg;
    g->pools = xcalloc(cfg->n_apps ? cfg->n_apps : 1, sizeof(pool_t *));
    g->refs = 1;
    g->release = release;
    g->release_arg = release_arg;
    return g;
}

gen_t *gen_ref(gen_t *g) {
    g->refs++;
    return g;
}

void gen_unref(gen_t *g) {
    if (--g->refs > 0) return;
    if (g->release) g->release(g, g->release_arg);
    cfg_free(g->cfg);
    free(g->pools);
    free(g);
}
