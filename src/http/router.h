/* Handler mappings (SPEC §2 [handler:NAME]): which mapping takes a request. PURE. */
#ifndef FCGIHOST_HTTP_ROUTER_H
#define FCGIHOST_HTTP_ROUTER_H
#include <stddef.h>

#include "config/config.h"
#include "util/buf.h"
#include "util/str.h"

/* Find the first handler (in file order) of the site whose verb list has `method` and whose path matches the
 * decoded URL path. Returns its index, or -1. *script_len receives the length of the path prefix
 * that names the script (SCRIPT_NAME); the rest is PATH_INFO:
 *   - a file-name pattern ("*.php", "index.php"; no '/') is matched, case-insensitively as IIS does,
 *     against each path segment from the left; the first matching segment ends the script, so
 *     /upload/x.jpg/y.php is the script "/upload/x.jpg/y.php" and never "/upload/x.jpg";
 *   - "*" matches every path, the script is the whole path;
 *   - a URL prefix ("/app/" or "/app") matches "/app" and everything below it; the script is the
 *     prefix without its trailing slash and the rest is PATH_INFO. */
int router_match(const cfg_t *cfg, const cfg_site_t *site, const char *path, size_t len,
                 str_t method, size_t *script_len);
/* The same path rule for one pattern classified at load (handlers, header rules: their path,
 * path_kind and path_n). */
bool router_rule_matches(const char *pattern, cfg_path_kind_t kind, size_t n, const char *path,
                         size_t len, size_t *script_len);
/* The same for a pattern classified now (a deny name pattern). */
bool router_path_matches(const char *pattern, const char *path, size_t len, size_t *script_len);

/* When router_match found nothing: does any handler's path match, whatever its verbs? Then the
 * file is a script and must never be served as a static file (SPEC §6 Verbs): the answer is 405
 * and `allow` receives the verbs those handlers accept ("GET, HEAD, POST"). */
bool router_allow(const cfg_t *cfg, const cfg_site_t *site, const char *path, size_t len,
                  buf_t *allow);

#endif
