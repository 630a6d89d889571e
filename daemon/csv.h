/* A small, bounded RFC 4180 CSV reader for imports: comma-separated
 * fields, optionally in double quotes ("" inside quotes is one quote; a
 * quoted field may hold commas and line breaks), records ended by CRLF, LF
 * or a lone CR, a UTF-8 byte order mark at the start skipped. Limits: at
 * most CSV_MAX_COLS fields per record, CSV_MAX_FIELD bytes per field and
 * CSV_MAX_LINE bytes per record; a NUL byte is refused. Errors name the
 * line. Cells are returned as they are (no trimming, no UTF-8 check). */
#ifndef GH_CSV_H
#define GH_CSV_H

#include <stdio.h>

#include "err.h"

#define CSV_MAX_COLS 64
#define CSV_MAX_FIELD 4096
#define CSV_MAX_LINE 65536

typedef struct csv_reader csv_reader_t;

/* Reads from F (not closed by csv_close). NULL when out of memory. */
csv_reader_t *csv_open(FILE *f);
/* Next record: 1 with *FIELDS (NFIELDS NUL-terminated strings, valid
 * until the next call or csv_close), 0 at the end of the input, -1 with
 * *err (400 "malformed", message "line N: ...") on a syntax error, a limit
 * exceeded or a read error; after an error the reader stays failed. An
 * empty line is a record of one empty field. */
int csv_next(csv_reader_t *r, char ***fields, int *nfields, gh_err_t *err);
/* Line (1-based) on which the last record returned started. */
long csv_line(const csv_reader_t *r);
void csv_close(csv_reader_t *r);

#endif
