/* The CGI/1.1 variables (RFC 3875 §4.1, plus what PHP expects) of one request, encoded as FastCGI
 * PARAMS. PURE: everything comes in through cgi_vars_t. */
#ifndef FCGIHOST_FASTCGI_PARAMS_H
#define FCGIHOST_FASTCGI_PARAMS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fastcgi/codec.h"
#include "http/parser.h"
#include "util/str.h"

typedef struct cgi_vars {
    uint16_t request_id;     /* FastCGI request id of BEGIN_REQUEST and PARAMS; 0 means 1 */
    str_t method;
    str_t request_uri;      /* the request-target as sent (path and query) */
    str_t query;            /* without '?'; empty when none */
    str_t script_name;      /* decoded */
    str_t path_info;        /* decoded; empty when none */
    str_t document_uri;     /* decoded path of the request */
    str_t document_root;
    str_t script_filename;  /* document_root + script_name */
    str_t server_addr, server_port, server_name;
    str_t remote_addr, remote_port;
    int minor_version;      /* HTTP/1.x */
    bool http2;             /* HTTP/2: SERVER_PROTOCOL is HTTP/2.0 */
    int64_t content_length; /* -1: none */
    const http_header_t *headers;
    size_t n_headers;
    bool https;
    const char *ssl_protocol; /* "TLSv1.3"... over TLS (SSL_PROTOCOL); NULL: none */
    /* utf8ServerVariables (§4.7): listed variables carry UTF-8 (invalid: the request is refused),
     * the others ASCII with bytes >= 0x80 written as %XX. */
    bool utf8_all;
    char *const *utf8_vars;
    size_t n_utf8_vars;
} cgi_vars_t;

/* Append BEGIN_REQUEST(RESPONDER, KEEP_CONN) and the PARAMS stream (with its empty terminator) for
 * request id 1 to `out`. Returns 0, or -400 when a variable listed in utf8ServerVariables is not
 * valid UTF-8 (err names it). Headers named Proxy (HTTP_PROXY, httpoxy) and header names containing
 * '_' (they could impersonate a '-' header as both map to the same variable) are not passed. */
int cgi_params_build(const cgi_vars_t *v, buf_t *out, char *err, size_t errlen);

#endif
