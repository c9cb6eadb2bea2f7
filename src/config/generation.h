/* A configuration generation: one loaded configuration and the process pools its applications
 * run in. PURE (no libuv).
 *
 * Requests and FastCGI exchanges hold a reference on the generation they started with, so a
 * reload never changes the rules under a request in flight. A generation is never written to
 * once built: live changes (`ctl set`) go to the pools' own settings.
 *
 * The generation holds a reference on each pool it names; those references belong to its owner
 * (the server), which takes them when it builds the generation and gives them back from the
 * release hook that runs on the last gen_unref, before the generation is freed. */
#ifndef FCGIHOST_CONFIG_GENERATION_H
#define FCGIHOST_CONFIG_GENERATION_H
#include "config/config.h"

typedef struct pool pool_t;
typedef struct gen gen_t;

struct gen {
    cfg_t *cfg;                /* owned */
    pool_t **pools;            /* the pool of cfg->apps[i]; owned array, references per the owner */
    struct http_sites *sites;  /* the sites' open roots and logs (src/http/site.h); built and freed
                                  by the owner (freed from the release hook) */
    unsigned refs;
    void (*release)(gen_t *g, void *arg); /* the last reference is going: drop the pools' */
    void *release_arg;
};

/* A generation for cfg (taken over) with one reference and an array for its pools. */
gen_t *gen_new(cfg_t *cfg, void (*release)(gen_t *g, void *arg), void *release_arg);
gen_t *gen_ref(gen_t *g);
/* Drop a reference; the last one runs the release hook, then frees cfg and the generation. */
void gen_unref(gen_t *g);

#endif
