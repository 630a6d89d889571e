/* Logs as CSV (RFC 4180, CRLF), the same for the API's export and the
 * CLI's `export logs`: a header of column names, one row per log; a cell
 * starting with = + - @ is quoted with a leading ' so a spreadsheet shows it
 * as text instead of running it as a formula. */
#ifndef GH_LOGCSV_H
#define GH_LOGCSV_H

#include <sqlite3.h>
#include <stdio.h>

/* One cell (NULL: empty). */
void csv_cell(FILE *f, const char *v);
/* Steps Q to its end: the header, then every row. Returns the rows written,
 * -1 if a step failed. */
long csv_rows(sqlite3_stmt *q, FILE *f);

/* The log tables by their API names (door, calls, alarms, audit,
 * detections); NULL for another name. */
const char *log_table(const char *name);

#endif
