/* The key table: one row per configuration key of SPEC §2. Parsing, defaults, required keys,
 * repeatable keys and live `ctl set` are all driven by it.
 *
 * Reference (source for fcgihost.conf(5)). Key names are matched ASCII case-insensitively, as IIS
 * matches attribute names (`maxinstances` = `maxInstances`); enumerated values and booleans too.
 * Section kinds (server, fastcgi, handler) are case-insensitive; the NAME of a [fastcgi:NAME] or
 * [handler:NAME] section is case-sensitive. Whole numbers are plain decimal digits (no sign).
 * Sizes are whole numbers of bytes, optionally followed by k, m or g (KiB, MiB, GiB: 1k = 1024).
 * Booleans: true/yes/on/1 or false/no/off/0. Relative paths are relative to the directory of the
 * configuration file and are stored absolute. A ';' after white space starts a comment, also at
 * the end of a value, so a value cannot contain " ;". Lines may be up to 1 MiB long; there are no
 * continuation lines.
 *
 * [server] (exactly one)
 *   listen = 127.0.0.1:8080        repeatable. a.b.c.d:PORT, *:PORT (= 0.0.0.0:PORT),
 *                                  [IPv6]:PORT, unix:PATH (at most 107 bytes once absolute);
 *                                  PORT 1..65535; the same address twice is an error
 *   root = (required)              an existing directory; stored canonical (realpath)
 *   index = index.php index.html   file names separated by white space; empty: none
 *   accessLog = -                  a file, "-" (stdout) or "off"
 *   errorLog = -                   a file, "-" (stderr) or "off"
 *   logLevel = info                error | warn | info | debug  ("warning" = warn)
 *   controlSocket = /run/fcgihost/control.sock   a unix socket path (at most 107 bytes)
 *   runtimeDir = /run/fcgihost     the FastCGI processes' sockets live here
 *   user = www-data                user to drop to when started as root, after binding;
 *                                  root (written out) keeps root; "none" and empty are errors.
 *                                  www-data itself is looked up at start and by -t, not here
 *   symlinks = insideRoot          insideRoot | ifOwnerMatch | follow
 *   statusPath = /fcgihost-status  a URL path; "" or off: no status page
 *   statusAllow = 127.0.0.0/8 ::1  addresses or CIDR ranges, IPv4 or IPv6, separated by spaces
 *                                  or commas; host bits are cleared; empty: nobody
 *   maxUrlBytes = 8192             size, 16 .. 1m
 *   maxHeaderBytes = 16384         size, 256 .. 16m
 *   maxBodyBytes = 30000000        size, 0 .. 1099511627776 (1 TiB); 0: no request body at all
 *   headerTimeout = 30             seconds, 1 .. 3600
 *   bodyTimeout = 60               seconds, 1 .. 86400
 *   sendTimeout = 60               seconds, 1 .. 86400
 *   keepAliveTimeout = 120         seconds, 1 .. 86400
 *   shutdownTimeout = 30           seconds, 0 .. 86400; 0: do not wait for in-flight requests
 *   tempDir = /var/tmp             an existing directory; stored canonical (realpath)
 *   maxConnections = 20000         1 .. 10000000
 *   maxConnectionsPerIp = 0        0 .. 10000000; 0: no limit
 *   http2 = on                     boolean: ALPN offers h2 on tls listeners (SPEC §7)
 *   http2MaxStreams = 128          1 .. 10000: concurrent streams per HTTP/2 connection
 *
 * [fastcgi:NAME] (NAME: letters, digits, '_', '.', '-', starting with a letter, digit or '_',
 * at most 64 bytes: it is used in socket file names and ctl commands)
 *   fullPath = (required)          an existing executable regular file
 *   arguments =                    split into argv after fullPath: white space separates, double
 *                                  quotes group, \" and \\ inside quotes escape
 *   env = NAME=VALUE               repeatable; NAME letters, digits, '_' (not starting with a
 *                                  digit); VALUE may be empty; a NAME twice is an error;
 *                                  _FCGI_X_PIPE_ is reserved
 *   maxInstances = 0               LIVE. 0 .. 10000; 0: automatic (SPEC 4.2)
 *   minInstances = 0               LIVE. 0 .. 10000; processes started at start-up and kept
 *                                  (idleTimeout ends none below this count); at most
 *                                  maxInstances when that is not 0 (SPEC 4.9)
 *   maxConcurrentStarts = 4        LIVE. 1 .. 10000; processes of the pool starting at once
 *                                  (started, not yet answering FCGI_GET_VALUES) (SPEC 4.9)
 *   recycleMode = warm             LIVE. warm | immediate: a whole-pool recycle starts the
 *                                  replacements first (warm) or ends the processes first (SPEC 4.9)
 *   privateMemoryLimit = 0         LIVE. KiB, 0 .. 1073741824; 0: none. A process whose private
 *                                  memory passed it is recycled after its request (SPEC 4.10)
 *   preforkChildren = 0            LIVE. 0 or 2 .. 256; 0: one process per socket. N: each
 *                                  process gets PHP_FCGI_CHILDREN=N and forks N children that
 *                                  share its socket; the pool counts them as instances and moves
 *                                  in groups of N (SPEC 4.9b). A change recycles the pool
 *   slowRequestSeconds = 0         LIVE. seconds, 0 .. 86400; 0: off. A request slower than this
 *                                  is logged with its phases once it ends (SPEC 4.12)
 *   instanceMaxRequests = 10000    LIVE. 0 .. 10000000; 0: never recycle by count
 *   idleTimeout = 300              LIVE. seconds, 0 .. 604800; 0: never end idle processes
 *   activityTimeout = 70           LIVE. seconds, 1 .. 86400
 *   requestTimeout = 90            LIVE. seconds, 1 .. 604800
 *   queueLength = 1000             LIVE. 0 .. 10000000; 0: 503 when no process is free
 *   rapidFailsPerMinute = 10       0 .. 1000000 (more than this in a minute: the pool fails)
 *   protocol = unix                unix | tcp  (IIS names NamedPipe and Tcp accepted)
 *   flushNamedPipe = false         boolean; accepted for IIS compatibility, no effect
 *   monitorChangesTo = none        a file path; none: no monitoring
 *   stderrMode = IgnoreAndReturn200 LIVE. ReturnStdErrIn500 | ReturnGeneric500 |
 *                                  IgnoreAndReturn200 | TerminateProcess
 *   signalBeforeTerminateSeconds = 0   LIVE. seconds, 0 .. 3600
 *   responseHeaders = relaxed      relaxed | strict
 *   utf8ServerVariables = *        * | names separated by spaces or commas (upper-cased) | empty
 *   user = none                    the pool's identity; none: the server's user. Another user
 *                                  than the server's is started by the privileged helper when
 *                                  the server dropped root (SPEC §8)
 *
 * [handler:NAME] (NAME: any non-empty text without control characters; tried in file order)
 *   path = (required)              a file-name pattern ("*.php", "*", "index.php": no '/') or a
 *                                  URL prefix starting with '/' ("/app/")
 *   verb = *                       * or methods separated by commas (upper-cased)
 *   scriptProcessor = (required)   the NAME of a [fastcgi:NAME] section (anywhere in the file),
 *                                  or IIS's "fullPath|arguments" (or "fullPath" alone): the
 *                                  application with that fullPath and exactly those arguments
 *   resourceType = File            File | Directory | Either | Unspecified
 *   responseBufferLimit = 4194304  size, 0 .. 1g; 0: stream at once
 */
#include <stddef.h>

#include "config/config_int.h"
#include "util/log.h"

static const cfg_enum_name_t log_levels[] = {
    {"error", LOG_LEVEL_ERROR, false}, {"warn", LOG_LEVEL_WARN, false},
    {"warning", LOG_LEVEL_WARN, true}, {"info", LOG_LEVEL_INFO, false},
    {"debug", LOG_LEVEL_DEBUG, false}, {NULL, 0, false},
};

static const cfg_enum_name_t symlinks[] = {
    {"insideRoot", CFG_SYMLINKS_INSIDE_ROOT, false},
    {"ifOwnerMatch", CFG_SYMLINKS_IF_OWNER_MATCH, false},
    {"follow", CFG_SYMLINKS_FOLLOW, false},
    {NULL, 0, false},
};

static const cfg_enum_name_t protocols[] = {
    {"unix", CFG_PROTOCOL_UNIX, false},
    {"tcp", CFG_PROTOCOL_TCP, false},
    {"NamedPipe", CFG_PROTOCOL_UNIX, true},
    {NULL, 0, false},
};

static const cfg_enum_name_t stderr_modes[] = {
    {"ReturnStdErrIn500", CFG_STDERR_RETURN_IN_500, false},
    {"ReturnGeneric500", CFG_STDERR_GENERIC_500, false},
    {"IgnoreAndReturn200", CFG_STDERR_IGNORE_200, false},
    {"TerminateProcess", CFG_STDERR_TERMINATE, false},
    {NULL, 0, false},
};

static const cfg_enum_name_t recycle_modes[] = {
    {"warm", CFG_RECYCLE_WARM, false},
    {"immediate", CFG_RECYCLE_IMMEDIATE, false},
    {NULL, 0, false},
};

/* Stored in a bool: response_headers_strict. */
static const cfg_enum_name_t response_headers[] = {
    {"relaxed", 0, false},
    {"strict", 1, false},
    {NULL, 0, false},
};

static const cfg_enum_name_t resource_types[] = {
    {"File", CFG_RESOURCE_FILE, false},
    {"Directory", CFG_RESOURCE_DIRECTORY, false},
    {"Either", CFG_RESOURCE_EITHER, false},
    {"Unspecified", CFG_RESOURCE_UNSPECIFIED, false},
    {NULL, 0, false},
};

#define SRV(m) .sect = CFG_SECT_SERVER, .off = offsetof(cfg_server_t, m), \
               .size = sizeof(((cfg_server_t *)0)->m)
#define APP(m) .sect = CFG_SECT_FASTCGI, .off = offsetof(cfg_app_t, m), \
               .size = sizeof(((cfg_app_t *)0)->m)
#define HND(m) .sect = CFG_SECT_HANDLER, .off = offsetof(cfg_handler_t, m), \
               .size = sizeof(((cfg_handler_t *)0)->m)
/* Setters that fill several fields of their structure take the section kind only. */
#define SRV_ANY .sect = CFG_SECT_SERVER
#define APP_ANY .sect = CFG_SECT_FASTCGI
#define HND_ANY .sect = CFG_SECT_HANDLER
#define SITE(m) .sect = CFG_SECT_SITE, .off = offsetof(cfg_site_t, m), \
                .size = sizeof(((cfg_site_t *)0)->m)
#define SITE_ANY .sect = CFG_SECT_SITE
#define RW(m) .sect = CFG_SECT_REWRITE, .off = offsetof(cfg_rewrite_t, m), \
              .size = sizeof(((cfg_rewrite_t *)0)->m)
#define RW_ANY .sect = CFG_SECT_REWRITE
#define HDR(m) .sect = CFG_SECT_HEADERS, .off = offsetof(cfg_headers_t, m), \
               .size = sizeof(((cfg_headers_t *)0)->m)
#define HDR_ANY .sect = CFG_SECT_HEADERS

#define KEY(NAME, WHERE, SET, ...) {.name = NAME, WHERE, .set = SET, __VA_ARGS__}
#define RANGE(lo, hi) .min = (lo), .max = (hi)

#define M (1024ull * 1024ull)
#define G (1024ull * 1024ull * 1024ull)

const cfg_key_t cfg_keys[] = {
    /* [server] */
    KEY("listen", SRV_ANY, cfg_set_listen, .def = "127.0.0.1:8080", .flags = CFG_KEY_REPEAT),
    KEY("root", SRV(site.root), cfg_set_dir),
    KEY("index", SRV(site.index), cfg_set_index, .def = "index.php index.html"),
    KEY("accessLog", SRV(site.access_log), cfg_set_log_target, .def = "-"),
    KEY("errorLog", SRV(error_log), cfg_set_log_target, .def = "-"),
    KEY("logLevel", SRV(log_level), cfg_set_enum, .def = "info", .names = log_levels),
    KEY("controlSocket", SRV(control_socket), cfg_set_socket_path,
        .def = "/run/fcgihost/control.sock"),
    KEY("runtimeDir", SRV(runtime_dir), cfg_set_path, .def = "/run/fcgihost"),
    KEY("user", SRV(user), cfg_set_server_user, .def = "www-data"),
    KEY("symlinks", SRV(site.symlinks), cfg_set_enum, .def = "insideRoot", .names = symlinks),
    KEY("statusPath", SRV(status_path), cfg_set_url_path, .def = "/fcgihost-status"),
    KEY("statusAllow", SRV_ANY, cfg_set_status_allow, .def = "127.0.0.0/8 ::1"),
    KEY("trustedProxies", SRV_ANY, cfg_set_trusted_proxies, .def = ""),
    KEY("maxUrlBytes", SRV(max_url_bytes), cfg_set_bytes, .def = "8192", RANGE(16, M)),
    KEY("maxHeaderBytes", SRV(max_header_bytes), cfg_set_bytes, .def = "16384", RANGE(256, 16 * M)),
    KEY("maxBodyBytes", SRV(site.max_body_bytes), cfg_set_bytes, .def = "30000000",
        RANGE(0, 1024 * G)),
    KEY("headerTimeout", SRV(header_timeout), cfg_set_uint, .def = "30", RANGE(1, 3600)),
    KEY("bodyTimeout", SRV(body_timeout), cfg_set_uint, .def = "60", RANGE(1, 86400)),
    KEY("sendTimeout", SRV(send_timeout), cfg_set_uint, .def = "60", RANGE(1, 86400)),
    KEY("keepAliveTimeout", SRV(keep_alive_timeout), cfg_set_uint, .def = "120", RANGE(1, 86400)),
    KEY("shutdownTimeout", SRV(shutdown_timeout), cfg_set_uint, .def = "30", RANGE(0, 86400)),
    KEY("tempDir", SRV(temp_dir), cfg_set_dir, .def = "/var/tmp"),
    KEY("maxConnections", SRV(max_connections), cfg_set_uint, .def = "20000", RANGE(1, 10000000)),
    KEY("maxConnectionsPerIp", SRV(max_connections_per_ip), cfg_set_uint, .def = "0",
        RANGE(0, 10000000)),
    KEY("http2", SRV(http2), cfg_set_bool, .def = "on"),
    KEY("http2MaxStreams", SRV(http2_max_streams), cfg_set_uint, .def = "128", RANGE(1, 10000)),
    KEY("compress", SRV(site.compress), cfg_set_compress, .def = "gzip br"),
    KEY("compressMinBytes", SRV(site.compress_min_bytes), cfg_set_bytes, .def = "512",
        RANGE(0, G)),
    KEY("tlsCertificate", SRV(site.tls_certificate), cfg_set_path),
    KEY("tlsKey", SRV(site.tls_key), cfg_set_path),
    KEY("tlsCiphers", SRV(tls_ciphers), cfg_set_string, .def = "intermediate"),
    KEY("redirectToHttps", SRV(site.redirect_to_https), cfg_set_bool, .def = "false"),
    KEY("hsts", SRV(site.hsts), cfg_set_uint, .def = "0", RANGE(0, 315360000)),
    /* [server] as the one site (no [site:NAME]): SPEC §6 */
    KEY("alias", SRV(site.aliases), cfg_set_alias, .flags = CFG_KEY_REPEAT),
    KEY("fallback", SRV(site.fallback), cfg_set_url, .def = "none"),
    KEY("errorPage", SRV(site.error_pages), cfg_set_error_page, .flags = CFG_KEY_REPEAT),
    KEY("deny", SRV(site.deny), cfg_set_deny, .flags = CFG_KEY_REPEAT),

    /* [site:NAME]: keys not given come from [server] (config.c, finish_sites) */
    KEY("hosts", SITE_ANY, cfg_set_hosts, .flags = CFG_KEY_REQUIRED),
    KEY("listen", SITE_ANY, cfg_set_site_listen, .flags = CFG_KEY_REPEAT),
    KEY("root", SITE(root), cfg_set_dir, .flags = CFG_KEY_REQUIRED),
    KEY("index", SITE(index), cfg_set_index),
    KEY("symlinks", SITE(symlinks), cfg_set_enum, .names = symlinks),
    KEY("maxBodyBytes", SITE(max_body_bytes), cfg_set_bytes, RANGE(0, 1024 * G)),
    KEY("accessLog", SITE(access_log), cfg_set_log_target),
    KEY("compress", SITE(compress), cfg_set_compress),
    KEY("compressMinBytes", SITE(compress_min_bytes), cfg_set_bytes, RANGE(0, G)),
    KEY("tlsCertificate", SITE(tls_certificate), cfg_set_path),
    KEY("tlsKey", SITE(tls_key), cfg_set_path),
    KEY("redirectToHttps", SITE(redirect_to_https), cfg_set_bool),
    KEY("hsts", SITE(hsts), cfg_set_uint, RANGE(0, 315360000)),
    KEY("alias", SITE(aliases), cfg_set_alias, .flags = CFG_KEY_REPEAT),
    KEY("fallback", SITE(fallback), cfg_set_url, .def = "none"),
    KEY("errorPage", SITE(error_pages), cfg_set_error_page, .flags = CFG_KEY_REPEAT),
    KEY("deny", SITE(deny), cfg_set_deny, .flags = CFG_KEY_REPEAT),

    /* [rewrite:NAME] */
    KEY("match", RW_ANY, cfg_set_regex, .flags = CFG_KEY_REQUIRED),
    KEY("unless", RW_ANY, cfg_set_unless, .def = ""),
    KEY("to", RW_ANY, cfg_set_rewrite_to, .flags = CFG_KEY_REQUIRED),
    KEY("redirect", RW_ANY, cfg_set_redirect, .def = "0"),
    KEY("last", RW(last), cfg_set_bool, .def = "true"),
    KEY("site", RW(sites), cfg_set_sites),

    /* [headers:NAME] */
    KEY("path", HDR_ANY, cfg_set_headers_path, .flags = CFG_KEY_REQUIRED),
    KEY("set", HDR_ANY, cfg_set_header_set, .flags = CFG_KEY_REQUIRED | CFG_KEY_REPEAT),
    KEY("site", HDR(sites), cfg_set_sites),

    /* [fastcgi:NAME] */
    KEY("fullPath", APP(full_path), cfg_set_executable, .flags = CFG_KEY_REQUIRED),
    KEY("arguments", APP(arguments), cfg_set_arguments, .def = ""),
    KEY("env", APP_ANY, cfg_set_env, .flags = CFG_KEY_REPEAT),
    KEY("maxInstances", APP(max_instances), cfg_set_uint, .def = "0", RANGE(0, 10000),
        .flags = CFG_KEY_LIVE),
    KEY("minInstances", APP(min_instances), cfg_set_uint, .def = "0", RANGE(0, 10000),
        .flags = CFG_KEY_LIVE),
    KEY("maxConcurrentStarts", APP(max_concurrent_starts), cfg_set_uint, .def = "4",
        RANGE(1, 10000), .flags = CFG_KEY_LIVE),
    KEY("recycleMode", APP(recycle_mode), cfg_set_enum, .def = "warm", .names = recycle_modes,
        .flags = CFG_KEY_LIVE),
    KEY("privateMemoryLimit", APP(private_memory_limit), cfg_set_uint, .def = "0",
        RANGE(0, 1073741824), .flags = CFG_KEY_LIVE),
    KEY("preforkChildren", APP(prefork_children), cfg_set_uint, .def = "0", RANGE(0, 256),
        .flags = CFG_KEY_LIVE),
    KEY("slowRequestSeconds", APP(slow_request_seconds), cfg_set_uint, .def = "0",
        RANGE(0, 86400), .flags = CFG_KEY_LIVE),
    KEY("instanceMaxRequests", APP(instance_max_requests), cfg_set_uint, .def = "10000",
        RANGE(0, 10000000), .flags = CFG_KEY_LIVE),
    KEY("idleTimeout", APP(idle_timeout), cfg_set_uint, .def = "300", RANGE(0, 604800),
        .flags = CFG_KEY_LIVE),
    KEY("activityTimeout", APP(activity_timeout), cfg_set_uint, .def = "70", RANGE(1, 86400),
        .flags = CFG_KEY_LIVE),
    KEY("requestTimeout", APP(request_timeout), cfg_set_uint, .def = "90", RANGE(1, 604800),
        .flags = CFG_KEY_LIVE),
    KEY("queueLength", APP(queue_length), cfg_set_uint, .def = "1000", RANGE(0, 10000000),
        .flags = CFG_KEY_LIVE),
    KEY("rapidFailsPerMinute", APP(rapid_fails_per_minute), cfg_set_uint, .def = "10",
        RANGE(0, 1000000)),
    KEY("protocol", APP(protocol), cfg_set_enum, .def = "unix", .names = protocols),
    KEY("flushNamedPipe", APP(flush_named_pipe), cfg_set_bool, .def = "false"),
    KEY("monitorChangesTo", APP(monitor_changes_to), cfg_set_optional_path, .def = "none"),
    KEY("stderrMode", APP(stderr_mode), cfg_set_enum, .def = "IgnoreAndReturn200",
        .names = stderr_modes, .flags = CFG_KEY_LIVE),
    KEY("signalBeforeTerminateSeconds", APP(signal_before_terminate_seconds), cfg_set_uint,
        .def = "0", RANGE(0, 3600), .flags = CFG_KEY_LIVE),
    KEY("responseHeaders", APP(response_headers_strict), cfg_set_enum, .def = "relaxed",
        .names = response_headers),
    KEY("utf8ServerVariables", APP_ANY, cfg_set_utf8_vars, .def = "*"),
    KEY("user", APP(user), cfg_set_user, .def = "none"),

    /* [handler:NAME] */
    KEY("path", HND_ANY, cfg_set_handler_path, .flags = CFG_KEY_REQUIRED),
    KEY("verb", HND_ANY, cfg_set_verbs, .def = "*"),
    KEY("scriptProcessor", HND(script_processor), cfg_set_string, .flags = CFG_KEY_REQUIRED),
    KEY("resourceType", HND(resource_type), cfg_set_enum, .def = "File", .names = resource_types),
    KEY("responseBufferLimit", HND(response_buffer_limit), cfg_set_bytes, .def = "4194304",
        RANGE(0, G)),
    KEY("site", HND(sites), cfg_set_sites),
};

const size_t cfg_n_keys = sizeof(cfg_keys) / sizeof(cfg_keys[0]);

bool cfg_ascii_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y) return false;
    }
    return *a == *b;
}

const cfg_key_t *cfg_key_find(cfg_sect_kind_t sect, const char *name) {
    for (size_t i = 0; i < cfg_n_keys; i++)
        if (cfg_keys[i].sect == sect && cfg_ascii_ieq(cfg_keys[i].name, name)) return &cfg_keys[i];
    return NULL;
}
