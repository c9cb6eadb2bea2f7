/* Choosing what answers a request: the handler mappings in file order, else static files. */
#ifndef FCGIHOST_HTTP_DISPATCH_H
#define FCGIHOST_HTTP_DISPATCH_H

typedef struct request request_t;

/* Decode and check the path, then hand the request to its handler. Always answers. */
void dispatch_request(request_t *r);

#endif
