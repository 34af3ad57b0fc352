/*
 * sql.h - weir's window onto DuckDB. This module (src/sql/) is the only
 * place that includes duckdb.h; everything else talks SQL through here.
 */
#ifndef WEIR_SQL_SQL_H
#define WEIR_SQL_SQL_H

/* The linked DuckDB library version, e.g. "v1.4.4". */
const char *sql_engine_version(void);

#endif
