/*
 * sql_priv.h - private to src/sql/: the DuckDB connection under a struct
 * sql_db, for the modules of src/sql/ that use DuckDB's C API directly
 * (ndjson.c registers a table function, xform.c moves Arrow batches).
 */
#ifndef WEIR_SQL_SQL_PRIV_H
#define WEIR_SQL_SQL_PRIV_H

#include <duckdb.h>

#include "sql/sql.h"

duckdb_connection sql_db_connection(struct sql_db *db);

#endif
