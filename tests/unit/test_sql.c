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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_version),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_quoting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
