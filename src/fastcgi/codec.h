/* FastCGI 1.0 record codec: encoders for the server -> application direction and a resumable,
 * zero-copy decoder for the application -> server direction.
 *
 * PURE: bytes in, structs out. No I/O, no libuv; the decoder never allocates. The encoders that
 * take a buf_t grow it through xmalloc (out of memory aborts), the others write into a caller's
 * array whose required size is stated next to them.
 *
 * Record layout (FastCGI specification §3.3): an 8-byte header
 *     version, type, requestIdB1, requestIdB0, contentLengthB1, contentLengthB0, paddingLength,
 *     reserved
 * followed by contentLength bytes of content and paddingLength bytes of padding.
 *
 * Record sizes. Every record this module writes is padded so that content + padding is a multiple
 * of 8, and content + padding never exceeds 65535: php-cgi and php-fpm (main/fastcgi.c) refuse a
 * record whose content length plus padding length is larger than 0xffff. Streams are therefore cut
 * into records of at most FCGI_RECORD_DATA_MAX (65528 = 0xfff8) content bytes, the size php itself
 * uses for its own large writes.
 */
#ifndef FCGIHOST_FASTCGI_CODEC_H
#define FCGIHOST_FASTCGI_CODEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/str.h"

/* ---- Protocol constants (FastCGI specification, appendix A) ---- */

#define FCGI_VERSION_1 1
#define FCGI_HEADER_LEN 8
#define FCGI_MAX_CONTENT 65535 /* the largest contentLength a header can carry */
#define FCGI_NULL_REQUEST_ID 0 /* management records (GET_VALUES, UNKNOWN_TYPE, ...) */

/* Largest content this module puts into one record: a multiple of 8, so a padded record still has
 * content + padding <= 65535 (see the file comment). */
#define FCGI_RECORD_DATA_MAX 65528

/* Largest length a name-value pair may declare: 31 bits (the top bit selects the 4-byte form). */
#define FCGI_NV_LEN_MAX 0x7fffffffu

typedef enum fcgi_type {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_DATA = 8,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
    FCGI_MAXTYPE = FCGI_UNKNOWN_TYPE,
} fcgi_type_t;

/* FCGI_BEGIN_REQUEST roles and flags */
#define FCGI_RESPONDER 1
#define FCGI_AUTHORIZER 2
#define FCGI_FILTER 3
#define FCGI_KEEP_CONN 1

/* FCGI_END_REQUEST protocolStatus values */
#define FCGI_REQUEST_COMPLETE 0
#define FCGI_CANT_MPX_CONN 1
#define FCGI_OVERLOADED 2
#define FCGI_UNKNOWN_ROLE 3

/* Variable names for FCGI_GET_VALUES / FCGI_GET_VALUES_RESULT */
#define FCGI_MAX_CONNS "FCGI_MAX_CONNS"
#define FCGI_MAX_REQS "FCGI_MAX_REQS"
#define FCGI_MPXS_CONNS "FCGI_MPXS_CONNS"

/* Byte sizes of the fixed records this module writes (header + 8-byte body). */
#define FCGI_BEGIN_REQUEST_LEN 16
#define FCGI_END_REQUEST_LEN 16
#define FCGI_ABORT_REQUEST_LEN 8

/* ---- Error codes (negative; shared by the encoders, the pair decoder and the decoder) ---- */

#define FCGI_EVERSION (-1)    /* record version is not FCGI_VERSION_1 */
#define FCGI_ETYPE (-2)       /* a record type an application must not send (BEGIN_REQUEST,
                                 ABORT_REQUEST, PARAMS, STDIN, DATA, GET_VALUES, or > 11) */
#define FCGI_EREQUEST_ID (-3) /* request id differs from the expected one, or a management record
                                 (GET_VALUES_RESULT, UNKNOWN_TYPE) has a non-zero id */
#define FCGI_ELENGTH (-4)     /* END_REQUEST or UNKNOWN_TYPE content length is not 8 */
#define FCGI_ETOO_LARGE (-5)  /* GET_VALUES_RESULT longer than FCGI_DECODER_BODY_MAX, or an
                                 encoder input that cannot fit (pair length > 2^31-1, GET_VALUES
                                 names longer than one record) */
#define FCGI_EPAIR (-6)       /* malformed name-value pairs (a length runs past the end) */
#define FCGI_ETRAILING (-7)   /* bytes after END_REQUEST; the decoder must be reset first */

/* A short English description of an FCGI_E* code ("unknown error" otherwise). */
const char *fcgi_strerror(int err);

/* ---- Record header ---- */

typedef struct fcgi_header {
    uint8_t version;
    uint8_t type;
    uint16_t request_id;
    uint16_t content_len;
    uint8_t padding_len;
} fcgi_header_t;

/* Decode the 8 bytes at p (no validation). */
void fcgi_header_decode(const char *p, fcgi_header_t *h);

/* Write an 8-byte header with exactly the given fields (reserved byte 0). */
void fcgi_header_write(char *out, uint8_t type, uint16_t request_id, uint16_t content_len,
                       uint8_t padding_len);

/* Padding that brings `content_len` to a multiple of 8 (0..7). */
static inline size_t fcgi_padding_for(size_t content_len) {
    return (8 - (content_len & 7)) & 7;
}

/* Eight zero bytes, the source of padding for callers that writev header + data + padding. */
extern const char fcgi_zero_padding[8];

/* Write the header of a record carrying `content_len` (<= FCGI_MAX_CONTENT) bytes, padded to a
 * multiple of 8 only when content + padding stays <= 65535. Returns the padding length; the caller
 * sends that many bytes (e.g. from fcgi_zero_padding) after the content. */
size_t fcgi_record_header(char *out, fcgi_type_t type, uint16_t request_id, size_t content_len);

/* ---- Fixed records, into a caller array ---- */

/* BEGIN_REQUEST: header + {roleB1, roleB0, flags, reserved[5]}. Writes FCGI_BEGIN_REQUEST_LEN
 * bytes, e.g. fcgi_begin_request_write(out, id, FCGI_RESPONDER, FCGI_KEEP_CONN). */
void fcgi_begin_request_write(char *out, uint16_t request_id, uint16_t role, uint8_t flags);

/* ABORT_REQUEST (no content). Writes FCGI_ABORT_REQUEST_LEN bytes. */
void fcgi_abort_request_write(char *out, uint16_t request_id);

/* END_REQUEST: header + {appStatusB3..B0, protocolStatus, reserved[3]}. Writes
 * FCGI_END_REQUEST_LEN bytes. The server never sends this; tests and the test app do. */
void fcgi_end_request_write(char *out, uint16_t request_id, uint32_t app_status,
                            uint8_t protocol_status);

/* ---- Stream records for zero-copy writers ----
 *
 * To send `len` bytes of STDIN without copying them, cut the data into chunks of at most
 * FCGI_RECORD_DATA_MAX bytes and, for each chunk, writev
 *     { hdr (8 bytes), chunk, fcgi_zero_padding (pad bytes) }
 * where pad = fcgi_stdin_header(hdr, id, chunk_len). End the stream with the 8 bytes of
 * fcgi_stdin_end_write(). */

/* Header for a STDIN record of `len` bytes, 1 <= len <= FCGI_RECORD_DATA_MAX (asserted).
 * Returns the padding length 0..7. */
size_t fcgi_stdin_header(char *out, uint16_t request_id, size_t len);

/* The empty STDIN record that ends the request body (8 bytes). */
void fcgi_stdin_end_write(char *out, uint16_t request_id);

/* Number of records fcgi_append_stream() needs for `len` bytes (0 for 0), and the exact number of
 * bytes it appends, so callers can size buffers or iovec arrays. */
size_t fcgi_stream_records(size_t len);
size_t fcgi_stream_encoded_len(size_t len);

/* ---- Appending to a buf_t ---- */

void fcgi_append_begin_request(buf_t *b, uint16_t request_id, uint16_t role, uint8_t flags);
void fcgi_append_abort_request(buf_t *b, uint16_t request_id);

/* Append `len` bytes of stream `type` (STDIN, PARAMS, STDOUT, STDERR, DATA) as padded records of at
 * most FCGI_RECORD_DATA_MAX bytes each. Appends nothing when len == 0: the empty record that ends a
 * stream is fcgi_append_stream_end(). */
void fcgi_append_stream(buf_t *b, fcgi_type_t type, uint16_t request_id, const char *data,
                        size_t len);
void fcgi_append_stream_end(buf_t *b, fcgi_type_t type, uint16_t request_id);
#define fcgi_append_stdin(b, id, data, len) fcgi_append_stream((b), FCGI_STDIN, (id), (data), (len))
#define fcgi_append_stdin_end(b, id) fcgi_append_stream_end((b), FCGI_STDIN, (id))

/* GET_VALUES (request id 0) asking for the given variable names, all in one record.
 * Returns 0, or FCGI_ETOO_LARGE (nothing appended) when the pairs exceed FCGI_RECORD_DATA_MAX. */
int fcgi_append_get_values(buf_t *b, const str_t *names, size_t count);

/* ---- Name-value pairs (specification §3.4) ---- */

/* Bytes the pair takes encoded: 1 or 4 bytes per length, then name and value. */
static inline size_t fcgi_nv_len(size_t name_len, size_t value_len) {
    return (name_len < 128 ? 1 : 4) + (value_len < 128 ? 1 : 4) + name_len + value_len;
}

/* Write the encoded pair to out (fcgi_nv_len() bytes). Returns the bytes written, or 0 when a
 * length exceeds FCGI_NV_LEN_MAX (nothing written). Lengths < 128 use the 1-byte form. */
size_t fcgi_nv_write(char *out, const char *name, size_t name_len, const char *value,
                     size_t value_len);

typedef struct fcgi_nv {
    str_t name;  /* borrowed from the decoded input */
    str_t value; /* borrowed from the decoded input */
} fcgi_nv_t;

/* Decode the next pair from *rest and advance *rest past it. Returns 1 with *nv filled, 0 when
 * *rest is empty, or FCGI_EPAIR when *rest holds a truncated pair (then *rest is unchanged).
 * Both the 1-byte and the 4-byte length forms are accepted for any length. */
int fcgi_nv_next(str_t *rest, fcgi_nv_t *nv);

/* ---- PARAMS stream builder ----
 *
 * Appends pairs to `out` as PARAMS records. A pair that fits in one record is never split across
 * two: php's main/fastcgi.c decodes each PARAMS record on its own and rejects a pair that crosses a
 * record boundary. A pair longer than FCGI_RECORD_DATA_MAX cannot be sent any other way, so it is
 * cut across records as the specification's stream semantics allow (libfcgi reassembles it, php
 * fails the request); `split_pairs` counts those so the caller can refuse or log.
 *
 *     fcgi_params_t p;
 *     fcgi_params_init(&p, &out, id);
 *     fcgi_params_add(&p, "SCRIPT_FILENAME", 15, path, path_len);
 *     ...
 *     fcgi_params_end(&p);   closes the open record and appends the empty PARAMS record
 */
typedef struct fcgi_params {
    buf_t *out; /* borrowed */
    uint16_t request_id;
    size_t rec_start; /* offset in out of the open record's header; SIZE_MAX when none is open */
    size_t split_pairs;
} fcgi_params_t;

void fcgi_params_init(fcgi_params_t *p, buf_t *out, uint16_t request_id);
/* Returns 0, or FCGI_ETOO_LARGE (nothing appended) when a length exceeds FCGI_NV_LEN_MAX. */
int fcgi_params_add(fcgi_params_t *p, const char *name, size_t name_len, const char *value,
                    size_t value_len);
#define FCGI_PARAMS_ADD_LIT(p, lit, value, value_len) \
    fcgi_params_add((p), (lit), sizeof(lit) - 1, (value), (value_len))
/* Close the open record (if any) and append the empty PARAMS record. */
void fcgi_params_end(fcgi_params_t *p);

/* ---- Decoder: application -> server ----
 *
 * A resumable record reader in the style of nginx's: feed it the bytes read from the application's
 * connection in pieces of any size; each call returns at most one event.
 *
 *     fcgi_decoder_init(&d, request_id);
 *     on each read of (buf, len):
 *         while (len > 0) {            (also call once more with len 0 is harmless: NEED_MORE)
 *             rc = fcgi_decoder_next(&d, buf, len, &used, &ev);
 *             buf += used; len -= used;
 *             if (rc == FCGI_EV_NEED_MORE) break;            used == len: everything was taken
 *             if (rc < 0) -> protocol error, close the connection (502)
 *             handle ev; after FCGI_EV_END_REQUEST, len > 0 means the app sent extra bytes
 *         }
 *
 * Events and their data:
 *   FCGI_EV_STDOUT, FCGI_EV_STDERR  ev->data: a non-empty span of the record's content. It points
 *       into `buf` (zero-copy), so content split across reads, or across records, comes out as
 *       several spans; concatenating them gives the stream. Empty STDOUT/STDERR records (the stream
 *       terminators) produce no event.
 *   FCGI_EV_END_REQUEST  ev->app_status, ev->protocol_status. Reported after the record's padding
 *       has been consumed too, so the decoder stops exactly at the end of the record; it then
 *       refuses further bytes (FCGI_ETRAILING) until fcgi_decoder_reset().
 *   FCGI_EV_GET_VALUES_RESULT  ev->data: the whole content, well-formed name-value pairs
 *       (iterate with fcgi_nv_next). It points into `buf` when the record arrived in one piece,
 *       else into the decoder's own buffer.
 *   FCGI_EV_UNKNOWN_TYPE  ev->unknown_type: the management type the application did not know.
 *
 * Lifetime: ev->data is borrowed and valid while `buf` is and until the next call on the decoder,
 * whichever ends first. Between calls the decoder holds no pointer into any earlier piece: it
 * keeps partial headers and small bodies in its own arrays, so the caller may reuse its read
 * buffer as soon as the events of a piece are handled.
 *
 * Validation, in this order, when a header is complete: version 1 (FCGI_EVERSION); a type an
 * application may send (FCGI_ETYPE); request id == the expected id for STDOUT/STDERR/END_REQUEST
 * (an expected id of 0 accepts none of them) and 0 for GET_VALUES_RESULT/UNKNOWN_TYPE
 * (FCGI_EREQUEST_ID); content length 8 for END_REQUEST and UNKNOWN_TYPE (FCGI_ELENGTH);
 * GET_VALUES_RESULT at most FCGI_DECODER_BODY_MAX (FCGI_ETOO_LARGE) and, once complete and its
 * padding skipped, well-formed pairs (FCGI_EPAIR). Bytes after END_REQUEST: FCGI_ETRAILING, with
 * none of them consumed. Errors are sticky: every later call returns the same code and consumes
 * nothing. d->offset then counts the bytes consumed up to the point of detection (through the
 * offending header, or through the malformed record), for the log line.
 *
 * Results never depend on how the input is split, except that a STDOUT/STDERR record may come out
 * in more spans.
 */
#define FCGI_DECODER_BODY_MAX 1024

typedef enum fcgi_event_kind {
    FCGI_EV_NEED_MORE = 0, /* all of buf consumed, no event: feed more bytes */
    FCGI_EV_STDOUT = 1,
    FCGI_EV_STDERR = 2,
    FCGI_EV_END_REQUEST = 3,
    FCGI_EV_GET_VALUES_RESULT = 4,
    FCGI_EV_UNKNOWN_TYPE = 5,
} fcgi_event_kind_t;

/* Only the fields of the returned kind are set; STDOUT/STDERR events leave the others as they were
 * (the hot path writes two fields), the other kinds zero the rest. */
typedef struct fcgi_event {
    fcgi_event_kind_t kind; /* same as the return value */
    str_t data;             /* STDOUT, STDERR, GET_VALUES_RESULT; borrowed (see above) */
    uint32_t app_status;     /* END_REQUEST */
    uint8_t protocol_status; /* END_REQUEST: FCGI_REQUEST_COMPLETE, ... (not validated) */
    uint8_t unknown_type;    /* UNKNOWN_TYPE */
} fcgi_event_t;

typedef struct fcgi_decoder {
    uint64_t offset;     /* bytes consumed since init/reset (for log messages) */
    uint16_t request_id; /* expected id */
    uint8_t state;
    uint8_t type;        /* current record's type */
    uint8_t padding;     /* padding bytes still to skip */
    uint8_t hdr_have;    /* header bytes collected in hdr[] */
    uint8_t pending;     /* event to report once the padding is skipped (fcgi_event_kind_t) */
    int error;           /* sticky error, 0 when none */
    uint32_t remaining;  /* content bytes still to read in the current record */
    uint32_t body_have;  /* content bytes collected in body[] */
    char hdr[FCGI_HEADER_LEN];
    char body[FCGI_DECODER_BODY_MAX];
} fcgi_decoder_t;

/* Start decoding the responses to request `request_id` (1..65535, or 0 for a connection that only
 * exchanges management records). */
void fcgi_decoder_init(fcgi_decoder_t *d, uint16_t request_id);
/* Same, for the next request on a kept-alive connection; clears a sticky error as well. */
#define fcgi_decoder_reset fcgi_decoder_init

/* Consume bytes from buf[0..len) up to and including the next event. Sets *consumed (always; on
 * error, the bytes taken up to the point of detection) and fills *ev when an event is returned.
 * Returns an fcgi_event_kind_t (> 0), FCGI_EV_NEED_MORE (0, then *consumed == len), or an FCGI_E*
 * error (< 0). */
int fcgi_decoder_next(fcgi_decoder_t *d, const char *buf, size_t len, size_t *consumed,
                      fcgi_event_t *ev);

#endif
