/* The typed configuration model of SPEC §2 and its loader.
 *
 * A cfg_t is one immutable generation of the configuration: built whole by cfg_load(), validated,
 * then handed to the server. A reload builds a new cfg_t and swaps; nothing mutates a loaded one
 * except live `set` of the settings marked LIVE below, which writes into the current generation.
 * Every string in the model is owned by the cfg_t and freed by cfg_free().
 */
#ifndef FCGIHOST_CONFIG_CONFIG_H
#define FCGIHOST_CONFIG_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cfg_listen_kind {
    CFG_LISTEN_TCP4,
    CFG_LISTEN_TCP6,
    CFG_LISTEN_UNIX,
} cfg_listen_kind_t;

typedef struct cfg_listen {
    char *text;              /* the address as written: "127.0.0.1:8080", "[::1]:8080", "unix:/path" */
    cfg_listen_kind_t kind;
    char *host;              /* TCP: numeric address without brackets ("127.0.0.1", "::1", "0.0.0.0") */
    int port;                /* TCP: 1..65535 */
    char *path;              /* unix: the socket path (absolute after load) */
    int line;                /* its line; the [server] header's line for the default */
    bool proxy;              /* `proxy`: every connection starts with a PROXY protocol header */
    bool tls;                /* `tls`: TLS 1.2/1.3 (SPEC §7) */
    bool h2c;                /* `h2c`: HTTP/2 with prior knowledge in clear text (SPEC §7) */
} cfg_listen_t;

typedef enum cfg_symlinks {
    CFG_SYMLINKS_INSIDE_ROOT,
    CFG_SYMLINKS_IF_OWNER_MATCH,
    CFG_SYMLINKS_FOLLOW,
} cfg_symlinks_t;

/* An address range of statusAllow or trustedProxies: family AF_INET or AF_INET6, network bytes, prefix length. */
typedef struct cfg_cidr {
    int family;
    unsigned char addr[16];
    int prefix;
} cfg_cidr_t;

/* [server] user when the key is absent (SPEC §2, §8). */
#define CFG_SERVER_USER_DEFAULT "www-data"

/* A list of strings (index files, host names). */
typedef struct cfg_strv {
    char **v;
    size_t n;
} cfg_strv_t;

/* alias = URL-PREFIX DIRECTORY (IIS virtual directory): the URL prefix (starting with '/', no
 * trailing '/') maps to the directory (canonical). */
typedef struct cfg_alias {
    char *prefix;
    size_t prefix_len;
    char *dir;
    int line;
} cfg_alias_t;

typedef struct cfg_aliases {
    cfg_alias_t *v;
    size_t n;
} cfg_aliases_t;

/* errorPage = STATUS URL. */
typedef struct cfg_error_page {
    int status;              /* 400..599 */
    char *url;               /* a URL path, with an optional "?query" */
    int line;
} cfg_error_page_t;

typedef struct cfg_error_pages {
    cfg_error_page_t *v;
    size_t n;
} cfg_error_pages_t;

typedef enum cfg_deny_kind {
    CFG_DENY_PREFIX,         /* "/.git/": a URL prefix on segment boundaries */
    CFG_DENY_PATH_GLOB,      /* "/uploads/ *.php" (no space): fnmatch ('*' crosses '/') on the path and each
                                of its prefixes that end at a segment boundary */
    CFG_DENY_NAME,           /* "*.bak": a file-name pattern against each segment */
} cfg_deny_kind_t;

typedef struct cfg_deny {
    char *pattern;           /* as written; CFG_DENY_PREFIX without its trailing '/' */
    cfg_deny_kind_t kind;
} cfg_deny_t;

typedef struct cfg_denies {
    cfg_deny_t *v;
    size_t n;
} cfg_denies_t;

/* One site (SPEC §6): [site:NAME], or [server] itself when there is no [site:NAME]. The keys a
 * site does not give are taken from [server] (index, symlinks, maxBodyBytes, accessLog). */
typedef struct cfg_site {
    char *name;              /* "NAME" of [site:NAME]; "default" for [server] as the one site */
    cfg_strv_t hosts;        /* lower-case, without a trailing dot; "*" and "*.suffix" forms */
    bool is_default;         /* hosts has "*" */
    cfg_listen_t *listen;    /* the site's own extra addresses */
    size_t n_listen;
    char *root;              /* canonical directory */
    cfg_strv_t index;
    cfg_symlinks_t symlinks;
    uint64_t max_body_bytes;
    char *access_log;        /* path, "-" or "off" */
    cfg_aliases_t aliases;
    char *fallback;          /* NULL: none; else a URL path with an optional "?query" */
    cfg_error_pages_t error_pages;
    cfg_denies_t deny;
    unsigned compress;       /* codings offered (bit 1 gzip, bit 2 br: HTTP_ENC_MASK); 0 = off */
    uint64_t compress_min_bytes;
    char *tls_certificate;   /* PEM, full chain; NULL: none (SPEC §7) */
    char *tls_key;           /* PEM private key; NULL: the certificate file holds it */
    bool redirect_to_https;  /* plain-HTTP requests get 301 to https:// */
    unsigned hsts;           /* Strict-Transport-Security max-age on TLS answers; 0: none */
    /* Filled after loading: the rules that apply to this site, as indexes in file order. */
    size_t *handlers, n_handlers;
    size_t *rewrites, n_rewrites;
    size_t *headers, n_headers;
    const char *file;        /* the file of its section header (borrowed from cfg_t) */
    int line;
} cfg_site_t;

typedef struct cfg_server {
    cfg_listen_t *listen;    /* at least one; the default is 127.0.0.1:8080 when none is given */
    size_t n_listen;
    cfg_site_t site;         /* root, index, symlinks, maxBodyBytes, accessLog as given in [server]
                                (the sites' defaults), and alias/fallback/errorPage/deny when
                                [server] is the one site; root is canonical, or NULL when not
                                given (sites exist) */
    char *error_log;         /* path, "-" or "off" */
    int log_level;           /* a log_level_t */
    char *control_socket;
    char *runtime_dir;
    char *temp_dir;          /* request bodies held on disk go here (canonical, like root) */
    char *user;              /* CFG_SERVER_USER_DEFAULT unless set; "root" keeps root */
    char *status_path;       /* "" disables ("statusPath = off" or empty) */
    cfg_cidr_t *status_allow;
    size_t n_status_allow;
    char *tls_ciphers;       /* OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites: the defaults) */
    cfg_cidr_t *trusted_proxies;  /* whose X-Forwarded-For / -Proto count (SPEC §6) */
    size_t n_trusted_proxies;
    uint64_t max_url_bytes;
    uint64_t max_header_bytes;
    unsigned header_timeout;     /* seconds */
    unsigned body_timeout;       /* seconds: longest pause between two reads of a request body */
    unsigned send_timeout;       /* seconds: longest a client may take no byte of a response */
    unsigned keep_alive_timeout; /* seconds */
    unsigned shutdown_timeout;   /* seconds */
    unsigned max_connections;    /* past it accepting pauses (clients wait in the backlog) */
    unsigned max_connections_per_ip; /* past it a client's new connections are closed; 0 = none */
    bool http2;                  /* ALPN offers h2 on tls listeners (SPEC §7) */
    unsigned http2_max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS */
} cfg_server_t;

typedef enum cfg_protocol {
    CFG_PROTOCOL_UNIX,
    CFG_PROTOCOL_TCP,
} cfg_protocol_t;

typedef enum cfg_stderr_mode {
    CFG_STDERR_RETURN_IN_500,   /* ReturnStdErrIn500 */
    CFG_STDERR_GENERIC_500,     /* ReturnGeneric500 */
    CFG_STDERR_IGNORE_200,      /* IgnoreAndReturn200 */
    CFG_STDERR_TERMINATE,       /* TerminateProcess */
} cfg_stderr_mode_t;

typedef enum cfg_recycle_mode {
    CFG_RECYCLE_WARM,           /* replacements start first, old processes serve until ready */
    CFG_RECYCLE_IMMEDIATE,      /* IIS 7.5: old processes end, new ones start on demand */
} cfg_recycle_mode_t;

/* One [fastcgi:NAME] section: one FastCGI application, one process pool. */
typedef struct cfg_app {
    char *name;
    char *full_path;             /* absolute path of the program */
    char *arguments;             /* as written (may be "") */
    char **argv;                 /* argv[0] = full_path, then `arguments` split on white space
                                    (double quotes group), NULL-terminated */
    char **env;                  /* "NAME=value" entries in file order */
    size_t n_env;
    unsigned max_instances;      /* LIVE; 0 = automatic (§4.2) */
    unsigned min_instances;      /* LIVE; processes kept started, even when idle (§4.9) */
    unsigned max_concurrent_starts; /* LIVE; processes of the pool starting at once (§4.9) */
    cfg_recycle_mode_t recycle_mode; /* LIVE; how a whole-pool recycle replaces processes (§4.9) */
    unsigned private_memory_limit;  /* LIVE; KiB; 0 = none: recycle a bigger process (§4.10) */
    unsigned slow_request_seconds;  /* LIVE; log a request slower than this, 0 = off (§4.12) */
    unsigned prefork_children;   /* LIVE; 0, or N >= 2: each process forks N children sharing its
                                    socket (PHP_FCGI_CHILDREN=N), counted as N instances (§4.9b) */
    unsigned instance_max_requests; /* LIVE; 0 = never recycle by count */
    unsigned idle_timeout;       /* LIVE; seconds; 0 = never end an idle process */
    unsigned activity_timeout;   /* LIVE; seconds */
    unsigned request_timeout;    /* LIVE; seconds */
    unsigned queue_length;       /* LIVE; 0 = no waiting: 503 when no process is free */
    unsigned rapid_fails_per_minute;
    cfg_protocol_t protocol;
    bool flush_named_pipe;
    char *monitor_changes_to;    /* NULL = none; absolute after load */
    cfg_stderr_mode_t stderr_mode;   /* LIVE */
    unsigned signal_before_terminate_seconds; /* LIVE */
    bool response_headers_strict;    /* responseHeaders = strict */
    bool utf8_all;               /* utf8ServerVariables = * */
    char **utf8_vars;            /* the listed names when not utf8_all */
    size_t n_utf8_vars;
    char *user;                  /* NULL = the server's identity */
    const char *file;            /* the file of the section header (borrowed from cfg_t) */
    int line;                    /* line of the section header */
} cfg_app_t;

typedef enum cfg_resource_type {
    CFG_RESOURCE_FILE,
    CFG_RESOURCE_DIRECTORY,
    CFG_RESOURCE_EITHER,
    CFG_RESOURCE_UNSPECIFIED,
} cfg_resource_type_t;

/* A handler's or header rule's path, classified once at load so that a request compares bytes
 * (http/router.c): "*" (every path), a URL prefix ("/app/"), "*" and a literal ("*.php": a segment
 * ending with it), or another file-name pattern (fnmatch against each segment). */
typedef enum { CFG_PATH_GLOB, CFG_PATH_ANY, CFG_PATH_PREFIX, CFG_PATH_SUFFIX } cfg_path_kind_t;

/* The kind of a path as written; *n: for a prefix, its length without trailing slashes (at least
 * 1); for "*literal", the literal's length. */
cfg_path_kind_t cfg_path_kind(const char *path, size_t *n);

/* Verb bits for the common methods; a handler's `verb` list becomes a mask plus extra names. */
#define CFG_VERB_ALL 0xffffffffu

/* One [handler:NAME] section: a handler mapping. Handlers are kept in file order. */
typedef struct cfg_handler {
    char *name;
    char *path;                  /* as written: "*.php", "/app/", "*" ... */
    bool path_is_prefix;         /* path starts with '/': a URL prefix; else a file-name pattern */
    cfg_path_kind_t path_kind;   /* cfg_path_kind(path, &path_n) */
    size_t path_n;
    bool any_verb;               /* verb = * */
    char **verbs;                /* upper-case method names when not any_verb */
    size_t n_verbs;
    char *script_processor;      /* as written: a [fastcgi:NAME] name, or "fullPath|arguments" */
    size_t app_index;            /* index into cfg_t.apps of the resolved application */
    cfg_resource_type_t resource_type;
    uint64_t response_buffer_limit;
    cfg_strv_t sites;            /* site = NAME ...: only these sites; empty: every site */
    int line;
} cfg_handler_t;

/* One [rewrite:NAME] section (IIS URL Rewrite inbound rule). */
typedef struct cfg_rewrite {
    char *name;
    char *match;                 /* the PCRE2 pattern as written */
    void *re;                    /* pcre2_code *, compiled (with JIT when available) at load */
    bool jit;                    /* re has JIT code: matched through pcre2_jit_match */
    char *prefix;                /* a literal every match starts with ("/wiki/" for ^/wiki/(.*)),
                                    compared before the pattern runs; NULL when none is known */
    size_t prefix_len;
    bool unless_file, unless_dir;
    char *to;                    /* with $0..$9 */
    int redirect;                /* 0, 301, 302, 307 or 308 */
    bool last;
    cfg_strv_t sites;
    int line;
} cfg_rewrite_t;

/* set = Name: value of a [headers:NAME] section. */
typedef struct cfg_header_set {
    char *name;
    char *value;
} cfg_header_set_t;

/* One [headers:NAME] section. */
typedef struct cfg_headers {
    char *name;
    char *path;                  /* as a handler's path */
    bool path_is_prefix;
    cfg_path_kind_t path_kind;
    size_t path_n;
    cfg_header_set_t *set;
    size_t n_set;
    cfg_strv_t sites;
    int line;
} cfg_headers_t;

typedef struct cfg {
    char *file;                  /* absolute path of the file loaded */
    char *dir;                   /* its directory: relative paths are resolved against it */
    cfg_server_t server;
    cfg_app_t *apps;
    size_t n_apps;
    cfg_handler_t *handlers;
    size_t n_handlers;
    cfg_site_t *sites;           /* at least one: [server] itself when there is no [site:NAME] */
    size_t n_sites;
    bool explicit_sites;         /* the sites come from [site:NAME] sections */
    cfg_rewrite_t *rewrites;
    size_t n_rewrites;
    cfg_headers_t *headers;
    size_t n_headers;
    char **files;                /* every file read (the main one first, then includes) */
    size_t n_files;
} cfg_t;

/* Diagnostics collected by the loader: each a full "file:line: message" line (a problem with the
 * whole file, such as "cannot open", is "file: message"), sorted by line within one load. `file` is the path as
 * the caller gave it. The strings are owned by the cfg_diag_t. */
typedef struct cfg_diag {
    char **msgs;
    size_t n;
} cfg_diag_t;

void cfg_diag_init(cfg_diag_t *d);
void cfg_diag_dispose(cfg_diag_t *d);

/* Load and validate `path`. Returns the new configuration, or NULL when there was any error; every
 * problem found (not just the first) is appended to `diag` as "file:line: message". */
cfg_t *cfg_load(const char *path, cfg_diag_t *diag);
/* Same, from a string (`name` is used in messages; relative paths resolve against `dir`; a NULL
 * or relative `dir` is taken from the working directory; cfg->file becomes dir/name).
 * For both: `diag` may be NULL. Not thread-safe: inih is configured through globals. */
cfg_t *cfg_load_string(const char *text, const char *name, const char *dir, cfg_diag_t *diag);
void cfg_free(cfg_t *cfg);

/* The rules between an application's keys (minInstances <= maxInstances when maxInstances is not
 * 0; preforkChildren 0 or >= 2, and not with env PHP_FCGI_CHILDREN). Returns false when they hold;
 * else true, the key to blame first in *key (static; key may be NULL) and the whole message, with
 * the values, in msg. */
bool cfg_app_check(const cfg_app_t *app, const char **key, char *msg, size_t len);

/* Find an application by name; NULL if none. */
cfg_app_t *cfg_find_app(const cfg_t *cfg, const char *name);

/* Live settings (ctl set): parse and apply KEY VALUE to `app`. Keys use the config file's names
 * (the keys marked LIVE above: maxInstances, minInstances, queueLength, instanceMaxRequests,
 * idleTimeout, activityTimeout, requestTimeout, stderrMode, signalBeforeTerminateSeconds, ...).
 * A value that would break a rule between keys (minInstances above a non-zero maxInstances) is
 * refused and `app` is left as it was. Returns 0, or -1 with a message in err. */
int cfg_app_set_live(cfg_app_t *app, const char *key, const char *value, char *err, size_t errlen);

#endif
