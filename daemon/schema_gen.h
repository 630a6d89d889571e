/* Migrations compiled in from schema/ (see tools/embed-schema.sh). */
#ifndef GH_SCHEMA_GEN_H
#define GH_SCHEMA_GEN_H
struct gh_schema {
	const char *name;
	const char *sql;
};
extern const struct gh_schema gh_schema[];
extern const int gh_schema_count;
#endif
