/*
 * sql.c - DuckDB through its C API; see sql.h.
 */
#include "sql/sql.h"

#include <duckdb.h>

const char *sql_engine_version(void)
{
    return duckdb_library_version();
}
