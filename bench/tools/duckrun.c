/*
 * duckrun.c - plain DuckDB, the peer of bench/compact and bench/query: run
 * SQL through libduckdb's C API (the same library weir links) in an
 * in-memory database, time it, print the last statement's rows.
 *
 *   duckrun [-t THREADS] [-m MEMORY_LIMIT] [-s SETUP_SQL] SQL
 *
 * -t and -m set DuckDB's threads and memory_limit (defaults: DuckDB's);
 * -s runs SETUP_SQL first, untimed (e.g. CREATE VIEW ...). SQL may hold
 * several statements separated by ';'. The rows of the last statement go
 * to stdout, tab-separated (NULL as an empty field); one JSON line on
 * stderr gives the wall time of SQL alone, from before it is parsed to
 * after the last row is printed, and DuckDB's version:
 *
 *   {"wall_s": 0.812345, "rows": 3, "duckdb": "v1.4.4"}
 *
 * Exit 0, or 1 with DuckDB's message on stderr. Not a weir component: it
 * exists so that the benchmarks compare weir with DuckDB alone, in the
 * same process model (one process, one database) and on the same library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <duckdb.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(duckdb_connection con, const char *sql, duckdb_result *res)
{
    if (duckdb_query(con, sql, res) == DuckDBError) {
        fprintf(stderr, "duckrun: %s\n", duckdb_result_error(res));
        duckdb_destroy_result(res);
        return -1;
    }
    return 0;
}

/* Print every row of res, tab-separated. The deprecated value API is the
 * simplest way to render any type as text, and its cost is the same for
 * every peer (results here are a few rows). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static unsigned long long print_rows(duckdb_result *res)
{
    idx_t cols = duckdb_column_count(res), rows = duckdb_row_count(res);
    for (idx_t r = 0; r < rows; r++) {
        for (idx_t c = 0; c < cols; c++) {
            char *v = duckdb_value_varchar(res, c, r);
            printf("%s%s", c ? "\t" : "", v ? v : "");
            duckdb_free(v);
        }
        putchar('\n');
    }
    return (unsigned long long)rows;
}

int main(int argc, char **argv)
{
    const char *threads = NULL, *memory = NULL, *setup = NULL;
    int c, rc = 1;
    while ((c = getopt(argc, argv, "t:m:s:")) != -1) {
        switch (c) {
        case 't': threads = optarg; break;
        case 'm': memory = optarg; break;
        case 's': setup = optarg; break;
        default: goto usage;
        }
    }
    if (optind + 1 != argc)
        goto usage;

    duckdb_database db = NULL;
    duckdb_connection con = NULL;
    duckdb_config cfg = NULL;
    char *err = NULL;
    if (duckdb_create_config(&cfg) == DuckDBError ||
        (threads && duckdb_set_config(cfg, "threads", threads) == DuckDBError) ||
        (memory && duckdb_set_config(cfg, "memory_limit", memory) == DuckDBError)) {
        fprintf(stderr, "duckrun: bad -t or -m\n");
        goto out;
    }
    if (duckdb_open_ext(NULL, &db, cfg, &err) == DuckDBError ||
        duckdb_connect(db, &con) == DuckDBError) {
        fprintf(stderr, "duckrun: cannot open DuckDB: %s\n", err ? err : "?");
        goto out;
    }
    duckdb_result res;
    if (setup) {
        if (run(con, setup, &res))
            goto out;
        duckdb_destroy_result(&res);
    }
    double t0 = now_s();
    if (run(con, argv[optind], &res))
        goto out;
    unsigned long long rows = print_rows(&res);
    fflush(stdout);
    double t1 = now_s();
    duckdb_destroy_result(&res);
    fprintf(stderr, "{\"wall_s\": %.6f, \"rows\": %llu, \"duckdb\": \"%s\"}\n", t1 - t0,
            rows, duckdb_library_version());
    rc = 0;
out:
    if (err)
        duckdb_free(err);
    duckdb_disconnect(&con);
    duckdb_close(&db);
    duckdb_destroy_config(&cfg);
    return rc;
usage:
    fprintf(stderr, "usage: duckrun [-t THREADS] [-m MEMORY_LIMIT] [-s SETUP_SQL] SQL\n");
    return 2;
}
