/*
 * cmd_version.c - `weir version`.
 */
#include "cli/cli.h"
#include "core/version.h"
#include "sql/sql.h"

int cmd_version(int argc, char **argv)
{
    if (argc > 1)
        return cli_usage_error("version", "takes no arguments");
    printf("weir %s\nduckdb %s\n", WEIR_VERSION, sql_engine_version());
    return EXIT_OK;
}
