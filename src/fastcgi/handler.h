/* The FastCGI request handler: one HTTP request served by one FastCGI process of a pool.
 * It joins http/ (the request and response API) and pool/ (the processes). */
#ifndef FCGIHOST_FASTCGI_HANDLER_H
#define FCGIHOST_FASTCGI_HANDLER_H
#include <stddef.h>

typedef struct request request_t;

/* Serve r through handler mapping `handler_index` of r's configuration generation. The script is
 * r->path[0..script_len) and PATH_INFO the rest. Checks resourceType first (404/403 without
 * contacting the application). Always answers. */
void fcgi_serve(request_t *r, size_t handler_index, size_t script_len);

#endif
