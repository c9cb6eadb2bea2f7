/* File-name extension -> media type, from /etc/mime.types text with a built-in fallback. PURE. */
#ifndef FCGIHOST_HTTP_MIME_H
#define FCGIHOST_HTTP_MIME_H
#include <stddef.h>

typedef struct mime_table mime_table_t;

/* Build a table from mime.types text (may be NULL: built-in types only). The built-in types
 * are always present; the text's entries override them. */
mime_table_t *mime_table_new(const char *text, size_t len);
void mime_table_free(mime_table_t *t);

/* Media type for a file name (by its last extension, case-insensitive);
 * "application/octet-stream" when unknown. The string lives as long as the table. */
const char *mime_lookup(const mime_table_t *t, const char *name, size_t len);

#endif
