#include "logcsv.h"

#include <string.h>

void csv_cell(FILE *f, const char *v)
{
	if (!v)
		return;
	int formula = v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@';
	if (!strpbrk(v, ",\"\r\n") && !formula) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	if (formula)
		fputc('\'', f);
	for (const char *c = v; *c; c++) {
		if (*c == '"')
			fputc('"', f);
		fputc(*c, f);
	}
	fputc('"', f);
}

long csv_rows(sqlite3_stmt *q, FILE *f)
{
	int ncol = sqlite3_column_count(q);
	for (int c = 0; c < ncol; c++)
		fprintf(f, "%s%s", c ? "," : "", sqlite3_column_name(q, c));
	fputs("\r\n", f);
	long n = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		for (int c = 0; c < ncol; c++) {
			if (c)
				fputc(',', f);
			csv_cell(f, (const char *)sqlite3_column_text(q, c));
		}
		fputs("\r\n", f);
		n++;
	}
	return rc == SQLITE_DONE ? n : -1;
}

const char *log_table(const char *name)
{
	static const char *const t[][2] = { { "door", "door_logs" },	   { "calls", "call_logs" },
					    { "alarms", "alarm_logs" },	   { "audit", "audit_logs" },
					    { "detections", "detection_logs" } };
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(name, t[i][0]))
			return t[i][1];
	return NULL;
}
