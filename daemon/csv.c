/* Bounded RFC 4180 CSV reader (see csv.h). One record at a time into a
 * fixed buffer: a record can never grow past CSV_MAX_LINE bytes. */
#include "csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct csv_reader {
	FILE *f;
	long line;     /* physical line of the next byte, 1-based */
	long rec_line; /* line the last record started on */
	int started;   /* byte order mark checked */
	int failed;    /* an error was reported: stay failed */
	int push[4];   /* pushed-back bytes (LIFO) */
	int npush;
	char *buf;     /* the record's fields, each NUL-terminated */
	size_t len;
	char *fields[CSV_MAX_COLS];
};

enum { S_START, S_UNQUOTED, S_QUOTED, S_QUOTE_SEEN };

/* content <= CSV_MAX_LINE bytes, plus one NUL per field */
#define BUF_SIZE (CSV_MAX_LINE + CSV_MAX_COLS + 1)

csv_reader_t *csv_open(FILE *f)
{
	csv_reader_t *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->buf = malloc(BUF_SIZE);
	if (!r->buf) {
		free(r);
		return NULL;
	}
	r->f = f;
	r->line = 1;
	return r;
}

void csv_close(csv_reader_t *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

long csv_line(const csv_reader_t *r) { return r->rec_line; }

static int rd(csv_reader_t *r)
{
	if (r->npush)
		return r->push[--r->npush];
	return getc(r->f);
}

static void unrd(csv_reader_t *r, int c)
{
	if (r->npush < (int)(sizeof r->push / sizeof r->push[0]))
		r->push[r->npush++] = c;
}

/* EF BB BF at the very start is a byte order mark, not data. */
static void skip_bom(csv_reader_t *r)
{
	int c1 = rd(r);
	if (c1 != 0xEF) {
		unrd(r, c1);
		return;
	}
	int c2 = rd(r);
	if (c2 != 0xBB) {
		unrd(r, c2);
		unrd(r, c1);
		return;
	}
	int c3 = rd(r);
	if (c3 != 0xBF) {
		unrd(r, c3);
		unrd(r, c2);
		unrd(r, c1);
	}
}

static int fail(csv_reader_t *r, gh_err_t *err, long line, const char *what)
{
	r->failed = 1;
	return gh_err(err, 400, "malformed", "", "line %ld: %s", line, what);
}

/* After a CR: a following LF belongs to the same line break. */
static void eat_lf(csv_reader_t *r)
{
	int c = rd(r);
	if (c != '\n')
		unrd(r, c);
}

int csv_next(csv_reader_t *r, char ***fields, int *nfields, gh_err_t *err)
{
	if (r->failed)
		return gh_err(err, 400, "malformed", "", "line %ld: the file could not be read further",
			      r->line);
	if (!r->started) {
		skip_bom(r);
		r->started = 1;
	}
	int state = S_START, n = 0;
	size_t raw = 0, fstart = 0;
	long qline = 0;
	r->len = 0;
	r->rec_line = r->line;
	for (;;) {
		int c = rd(r);
		if (c == EOF) {
			if (ferror(r->f)) {
				char msg[128];
				snprintf(msg, sizeof msg, "read error: %s", strerror(errno));
				return fail(r, err, r->line, msg);
			}
			if (state == S_QUOTED)
				return fail(r, err, qline,
					    "a quoted field is not closed (a closing \" is missing)");
			if (state == S_START && n == 0 && raw == 0)
				return 0;
			break; /* last record without a line break */
		}
		if (c == '\0')
			return fail(r, err, r->line, "the file contains a NUL byte (not a text file?)");
		int eol = 0;
		switch (state) {
		case S_START:
		case S_UNQUOTED:
		case S_QUOTE_SEEN:
			if (c == '"' && state == S_START) {
				state = S_QUOTED;
				qline = r->line;
				raw++;
				continue;
			}
			if (c == '"' && state == S_QUOTE_SEEN) {
				state = S_QUOTED; /* "" inside quotes: one quote */
				break;
			}
			if (c == '"')
				return fail(r, err, r->line,
					    "a \" inside an unquoted field (quote the whole field and "
					    "write the quote twice)");
			if (c == ',' || c == '\n' || c == '\r') {
				if (c == '\r')
					eat_lf(r);
				eol = c != ',';
				goto end_field;
			}
			if (state == S_QUOTE_SEEN)
				return fail(r, err, r->line,
					    "unexpected text after a closing quote (write a \" inside "
					    "quotes twice)");
			state = S_UNQUOTED;
			break;
		case S_QUOTED:
			if (c == '"') {
				state = S_QUOTE_SEEN;
				raw++;
				continue;
			}
			if (c == '\n')
				r->line++;
			else if (c == '\r') {
				int c2 = rd(r);
				unrd(r, c2);
				if (c2 != '\n')
					r->line++; /* a lone CR is a line break too */
			}
			break;
		}
		/* C is content of the current field */
		if (++raw > CSV_MAX_LINE) {
			char msg[96];
			snprintf(msg, sizeof msg, "the line is longer than %d bytes", CSV_MAX_LINE);
			return fail(r, err, r->rec_line, msg);
		}
		if (r->len - fstart >= CSV_MAX_FIELD) {
			char msg[96];
			snprintf(msg, sizeof msg, "column %d is longer than %d bytes", n + 1,
				 CSV_MAX_FIELD);
			return fail(r, err, r->rec_line, msg);
		}
		r->buf[r->len++] = (char)c;
		continue;
	end_field:
		r->buf[r->len++] = '\0';
		r->fields[n++] = r->buf + fstart;
		fstart = r->len;
		if (eol) {
			r->line++;
			*fields = r->fields;
			*nfields = n;
			return 1;
		}
		raw++; /* the comma */
		if (raw > CSV_MAX_LINE) {
			char msg[96];
			snprintf(msg, sizeof msg, "the line is longer than %d bytes", CSV_MAX_LINE);
			return fail(r, err, r->rec_line, msg);
		}
		if (n == CSV_MAX_COLS) {
			char msg[96];
			snprintf(msg, sizeof msg, "more than %d columns", CSV_MAX_COLS);
			return fail(r, err, r->rec_line, msg);
		}
		state = S_START;
	}
	/* end of input ends the last field and record */
	r->buf[r->len++] = '\0';
	r->fields[n++] = r->buf + fstart;
	*fields = r->fields;
	*nfields = n;
	return 1;
}
