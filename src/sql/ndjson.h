/*
 * ndjson.h - the weir_read_ndjson table function (ndjson.c), private to
 * src/sql/: sql_open registers it on every connection. Its SQL interface
 * is described for everyone in sql.h.
 */
#ifndef WEIR_SQL_NDJSON_H
#define WEIR_SQL_NDJSON_H

#include <duckdb.h>

#include "core/error.h"

/* Register weir_read_ndjson on con; WEIR_ESQL when DuckDB refuses. */
int sql_ndjson_register(duckdb_connection con, struct weir_errmsg *e);

#endif
