/*
 * test_sql.c - the DuckDB wrapper: open with limits, statements and their
 * errors, value rendering (scalars, dates, nested as JSON), the three
 * output formats, and quoting that keeps any string one literal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "sql/sql.h"

static struct sql_db *db_open(void)
{
    struct sql_opts o = {.memory_limit = "256MB", .threads = 1};
    struct weir_errmsg e = {0};
    struct sql_db *db = NULL;
    int rc = sql_open(&o, &db, &e);
    if (rc)
        fail_msg("sql_open: %s", e.text);
    return db;
}

/* Run sql and print its result in fmt into a string (caller frees). */
static char *run_fmt(struct sql_db *db, const char *sql, enum sql_format fmt)
{
    struct weir_errmsg e = {0};
    struct sql_result *r = NULL;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    int rc = sql_query(db, sql, &r, &e);
    if (rc)
        fail_msg("%s: %s", sql, e.text);
    rc = sql_result_write(r, fmt, f, NULL, &e);
    if (rc)
        fail_msg("%s: %s", sql, e.text);
    sql_result_free(r);
    fclose(f);
    return out;
}

static void check_fmt(struct sql_db *db, const char *sql, enum sql_format fmt,
                      const char *want)
{
    char *got = run_fmt(db, sql, fmt);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n--- want\n%s--- got\n%s---", sql, want, got);
    free(got);
}

static void test_open_and_version(void **state)
{
    struct weir_errmsg e = {0};
    struct sql_db *db = db_open();
    int64_t v = 0;
    assert_int_equal(sql_query_int64(db, "SELECT current_setting('threads')", &v, &e), 0);
    assert_int_equal(v, 1);
    struct buf b = BUF_INIT(1024);
    assert_int_equal(sql_query_text(db, "SELECT current_setting('TimeZone')", &b, &e), 0);
    assert_string_equal(b.data, "UTC");
    buf_release(&b);
    assert_non_null(strstr(sql_engine_version(), "1.4"));
    sql_close(db);
    sql_close(NULL);

    struct sql_opts bad = {.memory_limit = "lots"};
    struct sql_db *db2 = NULL;
    assert_int_not_equal(sql_open(&bad, &db2, &e), 0);
    assert_null(db2);
    assert_non_null(strstr(e.text, "memory_limit"));
}

static void test_errors(void **state)
{
    struct weir_errmsg e = {0};
    struct sql_db *db = db_open();
    assert_int_equal(sql_exec(db, "SELEKT 1", &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "syntax error"));
    assert_int_equal(sql_exec(db, "SELECT * FROM nope", &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "nope"));
    assert_int_equal(sql_exec(db, "", &e), WEIR_ESQL);
    /* An error during execution of a streamed result. */
    struct sql_result *r = NULL;
    int rc = sql_query(db, "SELECT CASE WHEN i < 5000 THEN i ELSE error('boom') END "
                           "FROM range(10000) t(i)", &r, &e);
    if (rc == 0) {
        while ((rc = sql_result_next(r, &e)) == 1)
            ;
        sql_result_free(r);
    }
    assert_true(rc < 0);
    assert_non_null(strstr(e.text, "boom"));
    /* Several statements: the last one's result. */
    int64_t v = 0;
    assert_int_equal(sql_query_int64(db, "CREATE TABLE t AS SELECT 41 AS x; "
                                         "SELECT x + 1 FROM t", &v, &e), 0);
    assert_int_equal(v, 42);
    assert_int_equal(sql_query_int64(db, "SELECT NULL", &v, &e), WEIR_EINVAL);
    assert_int_equal(sql_query_int64(db, "SELECT 1 WHERE false", &v, &e),
                     WEIR_ENOTFOUND);
    sql_close(db);
}

static void test_values(void **state)
{
    struct sql_db *db = db_open();
    check_fmt(db,
              "SELECT 1::TINYINT a, -2::BIGINT b, 2.0::DOUBLE c, 0.1::DOUBLE d, "
              "1.5::FLOAT e, 12.340::DECIMAL(10,3) f, -0.05::DECIMAL(4,2) g, "
              "170141183460469231731687303715884105727::HUGEINT h, true i, "
              "'x,y' j, '' k, NULL::VARCHAR l",
              SQL_FORMAT_CSV,
              "a,b,c,d,e,f,g,h,i,j,k,l\n"
              "1,-2,2.0,0.1,1.5,12.340,-0.05,"
              "170141183460469231731687303715884105727,true,\"x,y\",\"\",\n");
    check_fmt(db,
              "SELECT DATE '2025-09-02' a, TIMESTAMP '2025-09-02 10:00:00.123' b, "
              "TIMESTAMPTZ '2025-09-02 12:00:00+02' c, TIME '01:02:03' d, "
              "INTERVAL '1 day 2 hours' e, "
              "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID f, "
              "TIMESTAMP_NS '1969-12-31 23:59:59.5' g",
              SQL_FORMAT_CSV,
              "a,b,c,d,e,f,g\n"
              "2025-09-02,2025-09-02 10:00:00.123,2025-09-02 10:00:00+00,01:02:03,"
              "1 day 02:00:00,6ba7b810-9dad-11d1-80b4-00c04fd430c8,"
              "1969-12-31 23:59:59.5\n");
    check_fmt(db,
              "SELECT {'a': 1, 'b': [1.5, NULL], 'c': 'q\"'} s, [[1],[]] l, "
              "MAP {'k': 2} m, '{\"j\":[1]}'::JSON j, NULL::INT n, "
              "['x']::VARCHAR[1] arr",
              SQL_FORMAT_JSON,
              "{\"s\":{\"a\":1,\"b\":[1.5,null],\"c\":\"q\\\"\"},\"l\":[[1],[]],"
              "\"m\":{\"k\":2},\"j\":{\"j\":[1]},\"n\":null,\"arr\":[\"x\"]}\n");
    check_fmt(db, "SELECT DATE '2025-09-02' d, 'a\nb' s", SQL_FORMAT_JSON,
              "{\"d\":\"2025-09-02\",\"s\":\"a\\nb\"}\n");
    /* Nested values print as JSON in text formats too. */
    check_fmt(db, "SELECT {'a': [1,2]} s", SQL_FORMAT_CSV,
              "s\n\"{\"\"a\"\":[1,2]}\"\n");
    /* Reading numbers back. */
    struct weir_errmsg e = {0};
    struct sql_result *r = NULL;
    assert_int_equal(sql_query(db, "SELECT 7::UBIGINT, 2.5::DOUBLE, 3.0::DOUBLE, 'x', "
                                   "12.5::DECIMAL(5,1)", &r, &e), 0);
    assert_int_equal(sql_result_next(r, &e), 1);
    int64_t v;
    double d;
    assert_int_equal(sql_result_int64(r, 0, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(sql_result_int64(r, 1, &v), WEIR_EINVAL);
    assert_int_equal(sql_result_int64(r, 2, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(sql_result_int64(r, 3, &v), WEIR_EINVAL);
    assert_int_equal(sql_result_double(r, 4, &d), 0);
    assert_true(d == 12.5);
    assert_true(sql_result_is_numeric(r, 1));
    assert_false(sql_result_is_numeric(r, 3));
    assert_int_equal(sql_result_next(r, &e), 0);
    sql_result_free(r);
    sql_close(db);
}

static void test_formats(void **state)
{
    struct sql_db *db = db_open();
    check_fmt(db, "SELECT i AS n, 'v' || i AS name FROM range(3) t(i)",
              SQL_FORMAT_TABLE,
              " n | name\n"
              "---+------\n"
              " 0 | v0\n"
              " 1 | v1\n"
              " 2 | v2\n"
              "(3 rows)\n");
    check_fmt(db, "SELECT 1000 AS wide_number, NULL AS x, 'é\tz' AS t",
              SQL_FORMAT_TABLE,
              " wide_number | x    | t\n"
              "-------------+------+------\n"
              "        1000 | NULL | é\\tz\n"
              "(1 row)\n");
    check_fmt(db, "SELECT 1 AS a WHERE false", SQL_FORMAT_TABLE,
              " a\n---\n(0 rows)\n");
    check_fmt(db, "SELECT 1 AS a WHERE false", SQL_FORMAT_CSV, "a\n");
    check_fmt(db, "SELECT 1 AS a WHERE false", SQL_FORMAT_JSON, "");
    check_fmt(db, "SELECT 'a\"b' AS \"q,\"", SQL_FORMAT_CSV,
              "\"q,\"\n\"a\"\"b\"\n");
    /* A streamed result larger than a chunk keeps every row. */
    struct weir_errmsg e = {0};
    struct sql_result *r = NULL;
    uint64_t rows = 0;
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(sql_query(db, "SELECT i, i * 2 FROM range(100000) t(i)", &r, &e), 0);
    assert_int_equal(sql_result_write(r, SQL_FORMAT_CSV, f, &rows, &e), 0);
    assert_int_equal(rows, 100000);
    sql_result_free(r);
    fclose(f);
    assert_int_equal(sql_format_parse("table"), SQL_FORMAT_TABLE);
    assert_int_equal(sql_format_parse("csv"), SQL_FORMAT_CSV);
    assert_int_equal(sql_format_parse("json"), SQL_FORMAT_JSON);
    assert_int_equal(sql_format_parse("xml"), -1);
    sql_close(db);
}

static void test_quoting(void **state)
{
    struct sql_db *db = db_open();
    struct weir_errmsg e = {0};
    struct buf b = BUF_INIT(4096);
    const char *evil = "x'); DROP TABLE t; --\"";
    assert_int_equal(sql_exec(db, "CREATE TABLE t (v VARCHAR)", &e), 0);
    assert_int_equal(buf_puts(&b, "SELECT "), 0);
    assert_int_equal(sql_quote_string(&b, evil), 0);
    assert_int_equal(buf_puts(&b, " AS "), 0);
    assert_int_equal(sql_quote_ident(&b, evil), 0);
    struct buf out = BUF_INIT(4096);
    assert_int_equal(sql_query_text(db, b.data, &out, &e), 0);
    assert_string_equal(out.data, evil);
    char *csv = run_fmt(db, b.data, SQL_FORMAT_CSV);
    assert_non_null(strstr(csv, "DROP TABLE t; --"));
    free(csv);
    int64_t v = -1;
    assert_int_equal(sql_query_int64(db, "SELECT count(*) FROM t", &v, &e), 0);
    assert_int_equal(v, 0);
    buf_reset(&b);
    assert_int_equal(sql_quote_ident_n(&b, "a\0b", 3), WEIR_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(sql_quote_string(&b, "it's"), 0);
    assert_string_equal(b.data, "'it''s'");
    buf_reset(&b);
    assert_int_equal(sql_quote_ident(&b, "a\"b"), 0);
    assert_string_equal(b.data, "\"a\"\"b\"");
    buf_release(&b);
    buf_release(&out);
    sql_close(db);
}

/* ---- weir_read_ndjson --------------------------------------------------- */

static char nd_dir[256];

/* Write text to nd_dir/name (creating sub-directories); returns the path
 * in one of 4 static buffers, reused in turn. */
static const char *nd_file(const char *name, const char *text)
{
    static char paths[4][512];
    static int k;
    char *p = paths[k++ % 4];
    snprintf(p, 512, "%s/%s", nd_dir, name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", p);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void nd_dir_make(void)
{
    snprintf(nd_dir, sizeof nd_dir, "/tmp/weir-test-sql.XXXXXX");
    assert_non_null(mkdtemp(nd_dir));
}

static void nd_dir_remove(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", nd_dir);
    assert_int_equal(system(cmd), 0);
}

#define ND_COLS "{\"ts\":\"BIGINT\",\"v\":\"DOUBLE\",\"s\":\"VARCHAR\",\"ok\":\"BOOLEAN\"," \
    "\"raw\":\"JSON\",\"m\":{\"a\":\"BIGINT\",\"b\":[\"VARCHAR\"]},\"l\":[\"BIGINT\"]}"

static void test_read_ndjson(void **state)
{
    struct sql_db *db = db_open();
    struct weir_errmsg e = {0};
    char sql[4096];
    nd_dir_make();
    /* Every kind of value, nulls, missing fields, escapes, blank lines,
     * undeclared members (kept in _extra, as sent but for whitespace), a
     * last line without a newline. */
    char f[512];
    snprintf(f, sizeof f, "%s", nd_file("a.ndjson",
        "{\"ts\": 1, \"v\": 1.5, \"s\": \"a\\\"b\", \"ok\": true, \"raw\": {\"k\": [1, 2]}, "
        "\"m\": {\"a\": 7, \"b\": [\"x\", \"y\"], \"zz\": 1}, \"l\": [1, 2, 3], \"note\": \"n 1\"}\n"
        "\n"
        "   \n"
        "{\"ts\": 2.0, \"v\": 2, \"s\": \"\\u00e9\", \"ok\": false, \"raw\": \"n/a\", \"m\": null, "
        "\"l\": [], \"x\": {\"deep\" : [ 1 , {\"a\": \" spaced \"} ]}, \"y\": null}\n"
        "{\"t\\u0073\": 3, \"raw\": 1.50, \"l\": [null, 4]}\n"
        "{\"ts\": null}"));
    snprintf(sql, sizeof sql,
             "SELECT * FROM weir_read_ndjson(['%s'], columns = '%s', extra = '_extra') "
             "ORDER BY ts NULLS LAST", f, ND_COLS);
    check_fmt(db, sql, SQL_FORMAT_CSV,
              "ts,v,s,ok,raw,m,l,_extra\n"
              "1,1.5,\"a\"\"b\",true,\"{\"\"k\"\":[1,2]}\",\"{\"\"a\"\":7,\"\"b\"\":[\"\"x\"\",\"\"y\"\"]}\","
              "\"[1,2,3]\",\"{\"\"note\"\":\"\"n 1\"\"}\"\n"
              "2,2.0,é,false,\"\"\"n/a\"\"\",,[],\"{\"\"x\"\":{\"\"deep\"\":[1,{\"\"a\"\":\"\" spaced \"\"}]},"
              "\"\"y\"\":null}\"\n"
              "3,,,,1.50,,\"[null,4]\",\n"
              ",,,,,,,\n");
    snprintf(sql, sizeof sql,
             "DESCRIBE SELECT * FROM weir_read_ndjson(['%s'], columns = '%s', extra = '_extra')",
             f, ND_COLS);
    check_fmt(db, sql, SQL_FORMAT_CSV,
              "column_name,column_type,null,key,default,extra\n"
              "ts,BIGINT,YES,,,\nv,DOUBLE,YES,,,\ns,VARCHAR,YES,,,\nok,BOOLEAN,YES,,,\n"
              "raw,JSON,YES,,,\nm,\"STRUCT(a BIGINT, b VARCHAR[])\",YES,,,\nl,BIGINT[],YES,,,\n"
              "_extra,JSON,YES,,,\n");
    /* Projections: one column, _extra alone, no column at all. */
    snprintf(sql, sizeof sql,
             "SELECT count(*), count(_extra), sum(len(l)) FROM weir_read_ndjson(['%s'], "
             "columns = '%s', extra = '_extra')", f, ND_COLS);
    check_fmt(db, sql, SQL_FORMAT_CSV, "count_star(),count(_extra),sum(len(l))\n4,2,5\n");
    /* Without extra, undeclared members are dropped; with columns '{}'
     * _extra is the whole record. */
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], columns = '{\"ts\":\"BIGINT\"}') "
             "ORDER BY ts", f);
    check_fmt(db, sql, SQL_FORMAT_CSV, "ts\n1\n2\n3\n\n");
    snprintf(sql, sizeof sql, "SELECT _extra FROM weir_read_ndjson(['%s'], columns = '{}', "
             "extra = '_extra') WHERE _extra->>'$.ts' = '1'", f);
    char *got = run_fmt(db, sql, SQL_FORMAT_CSV);
    assert_non_null(strstr(got, "\"\"note\"\":\"\"n 1\"\"}"));
    free(got);

    /* Deeper than the scanner's default (validation may allow more). */
    {
        char deep[8000];
        size_t o = 0;
        for (int i = 0; i < 1000; i++)
            o += (size_t)snprintf(deep + o, sizeof deep - o, "{\"a\":");
        o += (size_t)snprintf(deep + o, sizeof deep - o, "1");
        for (int i = 0; i < 1000; i++)
            deep[o++] = '}';
        deep[o++] = '\n';
        deep[o] = '\0';
        snprintf(sql, sizeof sql, "SELECT len(_extra) FROM weir_read_ndjson(['%s'], "
                 "columns = '{}', extra = '_extra')", nd_file("deep.ndjson", deep));
        check_fmt(db, sql, SQL_FORMAT_CSV, "len(_extra)\n6001\n");
    }

    /* Hive partition columns from the path. */
    const char *h = nd_file("raw/date=2025-09-02/hour=07/n1-0-1.ndjson", "{\"ts\":5}\n");
    snprintf(sql, sizeof sql, "SELECT ts, date, hour FROM weir_read_ndjson(['%s'], "
             "columns = '{\"ts\":\"BIGINT\"}', hive = 'hour')", h);
    check_fmt(db, sql, SQL_FORMAT_CSV, "ts,date,hour\n5,2025-09-02,7\n");
    snprintf(sql, sizeof sql, "SELECT date FROM weir_read_ndjson(['%s'], "
             "columns = '{\"ts\":\"BIGINT\"}', hive = 'day')", h);
    check_fmt(db, sql, SQL_FORMAT_CSV, "date\n2025-09-02\n");
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], "
             "columns = '{\"ts\":\"BIGINT\"}', hive = 'hour')", f);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "date=YYYY-MM-DD"));

    /* Values that do not fit fail the query, naming file, line, field. */
    const char *bad = nd_file("bad.ndjson", "{\"ts\":1}\n\n{\"ts\":12345678901234567890}\n");
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], "
             "columns = '{\"ts\":\"BIGINT\"}')", bad);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, bad));
    assert_non_null(strstr(e.text, "line 3: field \"ts\": 12345678901234567890 is not a "
                                   "64-bit integer"));
    const char *bad2 = nd_file("bad2.ndjson", "{\"m\":{\"a\":\"x\"}}\n");
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], columns = '%s')",
             bad2, ND_COLS);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "line 1: field \"a\": \"x\" is not a 64-bit integer"));
    const char *bad3 = nd_file("bad3.ndjson", "{\"ts\":1}\n[1]\n");
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], columns = '%s')",
             bad3, ND_COLS);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "line 2: not a JSON object"));
    const char *bad4 = nd_file("bad4.ndjson", "{\"ts\":1,}\n");
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], columns = '%s')",
             bad4, ND_COLS);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "line 1: invalid JSON"));
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s/nope.ndjson'], "
             "columns = '%s')", nd_dir, ND_COLS);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "nope.ndjson"));
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], columns = '{\"a\":\"INT\"}')", f);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "unknown type"));
    snprintf(sql, sizeof sql, "SELECT * FROM weir_read_ndjson(['%s'], columns = '{\"ts\":\"BIGINT\"}', "
             "max_line = 10)", f);
    assert_int_equal(sql_exec(db, sql, &e), WEIR_ESQL);
    if (!strstr(e.text, "longer than 10 bytes"))
        fail_msg("%s", e.text);
    sql_close(db);
    nd_dir_remove();
}

/* Many records over several work units and chunks, two threads: the same
 * sums as DuckDB's own typed read_json of the same file. */
static void test_read_ndjson_parallel(void **state)
{
    struct sql_opts o = {.memory_limit = "512MB", .threads = 2};
    struct weir_errmsg e = {0};
    struct sql_db *db = NULL;
    char sql[2048];
    if (sql_open(&o, &db, &e))
        fail_msg("sql_open: %s", e.text);
    nd_dir_make();
    char path[300];
    snprintf(path, sizeof path, "%s/big.ndjson", nd_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    long n = 60000;
    for (long i = 0; i < n; i++) {
        fprintf(f, "{\"ts\": %ld, \"v\": %ld.25, \"s\": \"sensor-%ld\", ", i, i % 1000,
                i % 97);
        if (i % 11 == 0)
            fprintf(f, "\"m\": null, ");
        else
            fprintf(f, "\"m\": {\"a\": %ld, \"b\": [\"p\", \"q%ld\"]}, ", i * 3, i % 5);
        fprintf(f, "\"l\": [%ld, %ld]", i, -i);
        if (i % 7 == 0)
            fprintf(f, ", \"extra_%ld\": \"%0100ld\"", i % 3, i);
        fprintf(f, "}\n");
    }
    fclose(f);
    const char *agg = "count(*), sum(ts), sum(v), count(DISTINCT s), sum(m.a), "
                      "sum(len(m.b)), sum(l[1]), sum(l[2])";
    char *mine, *theirs;
    snprintf(sql, sizeof sql, "SELECT %s, count(_extra) FROM weir_read_ndjson(['%s'], "
             "columns = '%s', extra = '_extra')", agg, path, ND_COLS);
    mine = run_fmt(db, sql, SQL_FORMAT_CSV);
    snprintf(sql, sizeof sql, "SELECT %s, %ld FROM read_json('%s', format = 'newline_delimited', "
             "columns = {ts: 'BIGINT', v: 'DOUBLE', s: 'VARCHAR', "
             "m: 'STRUCT(a BIGINT, b VARCHAR[])', l: 'BIGINT[]'})",
             agg, (n + 6) / 7, path);
    theirs = run_fmt(db, sql, SQL_FORMAT_CSV);
    /* Same figures (the header differs only in the last column's name). */
    assert_string_equal(strchr(mine, '\n'), strchr(theirs, '\n'));
    free(mine);
    free(theirs);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM weir_read_ndjson(['%s', '%s'], "
             "columns = '{}', extra = '_extra') WHERE _extra->>'$.extra_1' IS NOT NULL",
             path, path);
    int64_t v = 0;
    assert_int_equal(sql_query_int64(db, sql, &v, &e), 0);
    long want = 0;
    for (long i = 0; i < n; i++)
        want += i % 7 == 0 && i % 3 == 1;
    assert_int_equal(v, 2 * want);
    sql_close(db);
    nd_dir_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_version),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_read_ndjson),
        cmocka_unit_test(test_read_ndjson_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
