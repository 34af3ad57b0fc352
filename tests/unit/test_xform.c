/*
 * test_xform.c - the Arrow builder (sql/arrow.h) against weir_read_ndjson
 * on the same records (types and values, NULLs, nested STRUCT and LIST,
 * JSON columns, _extra, an empty batch), and the transform runner
 * (sql/xform.h): output rows, D's schema, errors at start and at run time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "schema/schema.h"
#include "sql/arrow.h"
#include "sql/sql.h"
#include "sql/xform.h"
#include "store/lake.h"

static char root[64];
static char seg[256];
static struct sql_db *db;

/* 2025-09-02T10:00:00Z */
#define H10_NS (1756807200LL * 1000000000LL)

static const char *schema_text =
    "{\"type\":\"object\",\"properties\":{"
    "\"ts\":{\"type\":\"integer\"},"
    "\"id\":{\"type\":\"integer\"},"
    "\"v\":{\"type\":\"number\"},"
    "\"s\":{\"type\":\"string\"},"
    "\"ok\":{\"type\":\"boolean\"},"
    "\"m\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
    "\"b\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
    "\"xs\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":"
    "{\"k\":{\"type\":\"string\"},\"n\":{\"type\":\"number\"}}}},"
    "\"any\":{}"
    "},\"required\":[\"ts\",\"id\"]}";

static const char *records[] = {
    "{\"ts\":1756807200,\"id\":1,\"v\":1.5,\"s\":\"a\",\"ok\":true,\"m\":{\"a\":1,\"b\":[\"x\",\"y\"]},"
    "\"xs\":[{\"k\":\"p\",\"n\":2},{\"k\":\"q\"}],\"any\":{\"z\": [1, 2.50]},\"extra1\":\"e\"}",
    "{\"ts\":1756807201,\"id\":2,\"v\":null,\"s\":\"esc\\\"aped \\u00e9\\n\",\"ok\":false}",
    "{\"id\":3,\"ts\":1756807202,\"m\":null,\"xs\":[],\"any\":\"text\",\"n\":{\"deep\":[1, {\"a\":null}]}}",
    "{\"ts\":1756807203,\"id\":4,\"v\":-2,\"m\":{\"b\":[]},\"xs\":[null,{\"n\":1e3}],\"any\":12345678901234567890}",
    "{\"ts\":1756807204,\"id\":5,\"s\":\"\",\"any\":null,\"m\":{\"a\":null,\"b\":null}}",
};
#define NREC (sizeof records / sizeof records[0])

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    return remove(p);
}

static int setup(void **state)
{
    struct weir_errmsg e = {0};
    snprintf(root, sizeof root, "/tmp/weir-test-xform-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/p/raw/date=2025-09-02/hour=10", root);
    if (system(cmd) != 0)
        return -1;
    snprintf(seg, sizeof seg, "%s/p/raw/date=2025-09-02/hour=10/n-0-0000000001.ndjson", root);
    FILE *f = fopen(seg, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < NREC; i++)
        fprintf(f, "%s\n", records[i]);
    fclose(f);
    struct sql_opts so = {.threads = 1, .memory_limit = "256MB"};
    if (sql_open(&so, &db, &e) != 0)
        return -1;
    log_setup(LOG_ERROR, LOG_TEXT);
    return 0;
}

static int teardown(void **state)
{
    sql_close(db);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static struct lake_table *table(const char *text, enum part_grain g)
{
    struct weir_errmsg e = {0};
    struct schema *s = schema_compile(text, strlen(text), NULL, NULL, &e);
    assert_non_null(s);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/p", root);
    struct lake_table *t = NULL;
    assert_int_equal(lake_table_from_schema("p", dir, g, s, "ts", LAKE_TIME_S, &t, &e), 0);
    t->max_record = 1 << 20;
    schema_free(s);
    return t;
}

struct lines {
    char *v[64];
    size_t n;
};

static int collect(void *ctx, const char *rec, size_t len)
{
    struct lines *l = ctx;
    assert_true(l->n < 64);
    l->v[l->n++] = strndup(rec, len);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static void build(struct lake_table *t, size_t n, struct arrow_batch *out)
{
    struct weir_errmsg e = {0};
    struct arrow_builder *b = NULL;
    assert_int_equal(arrow_builder_new(t, 0, &b, &e), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(arrow_builder_add(b, records[i], strlen(records[i]), H10_NS, &e), 0);
    assert_int_equal(arrow_builder_rows(b), n);
    assert_int_equal(arrow_builder_finish(b, out, &e), 0);
    assert_int_equal(out->rows, n);
    arrow_builder_free(b);
}

/* The rows of the lake view over the segment, as the runner prints them
 * for `SELECT CAST(to_json(b) AS VARCHAR) AS j, ts FROM batch b`. */
static void ndjson_rows(struct lake_table *t, struct lines *out)
{
    struct weir_errmsg e = {0};
    struct buf q = BUF_INIT(1 << 20);
    const char *paths[] = {seg};
    assert_int_equal(buf_puts(&q, "SELECT CAST(to_json(struct_pack(j := CAST(to_json(b) AS "
                                  "VARCHAR), ts := b.ts)) AS VARCHAR) FROM ("), 0);
    assert_int_equal(lake_sql_raw(t, paths, 1, LAKE_SQL_PARTCOLS, &q), 0);
    assert_int_equal(buf_puts(&q, ") b"), 0);
    struct sql_result *r = NULL;
    assert_int_equal(sql_query(db, q.data, &r, &e), 0);
    while (sql_result_next(r, &e) == 1) {
        struct buf v = BUF_INIT(1 << 20);
        assert_int_equal(sql_result_text(r, 0, &v), 0);
        out->v[out->n++] = buf_detach(&v, NULL);
        buf_release(&v);
    }
    sql_result_free(r);
    buf_release(&q);
}

static void test_arrow_equals_ndjson(void **state)
{
    struct weir_errmsg e = {0};
    for (int g = 0; g < 2; g++) {
        struct lake_table *t = table(schema_text, g ? PART_DAY : PART_HOUR);
        struct xform *x = NULL;
        assert_int_equal(xform_new(t, "SELECT CAST(to_json(b) AS VARCHAR) AS j, ts FROM batch b;\n",
                                   "ts", 0, "test", &x, &e), 0);
        /* Types: DESCRIBE of the lake view, column by column. */
        struct xform *d = NULL;
        assert_int_equal(xform_new(t, "SELECT * FROM batch", "ts", 0, "test", &d, &e), 0);
        size_t nc;
        const struct xform_col *cols = xform_columns(d, &nc);
        struct buf q = BUF_INIT(1 << 20);
        const char *paths[] = {seg};
        assert_int_equal(buf_puts(&q, "SELECT column_name, column_type FROM (DESCRIBE ("), 0);
        assert_int_equal(lake_sql_raw(t, paths, 1, LAKE_SQL_PARTCOLS, &q), 0);
        assert_int_equal(buf_puts(&q, "))"), 0);
        struct sql_result *r = NULL;
        assert_int_equal(sql_query(db, q.data, &r, &e), 0);
        size_t i = 0;
        while (sql_result_next(r, &e) == 1) {
            struct buf n = BUF_INIT(1 << 20), ty = BUF_INIT(1 << 20);
            assert_int_equal(sql_result_text(r, 0, &n), 0);
            assert_int_equal(sql_result_text(r, 1, &ty), 0);
            assert_true(i < nc);
            assert_string_equal(cols[i].name, n.data);
            assert_string_equal(cols[i].type, ty.data);
            buf_release(&n);
            buf_release(&ty);
            i++;
        }
        assert_int_equal(i, nc);
        assert_int_equal(nc, t->ncols + 1 + 1 + (g ? 0 : 1));
        sql_result_free(r);
        buf_release(&q);

        /* Values: every row, every column, through to_json. */
        struct arrow_batch batch;
        build(t, NREC, &batch);
        struct lines got = {0}, want = {0};
        uint64_t rows = 0;
        assert_int_equal(xform_run(x, &batch, collect, &got, &rows, &e), 0);
        assert_int_equal(rows, NREC);
        arrow_batch_release(&batch);
        ndjson_rows(t, &want);
        assert_int_equal(got.n, want.n);
        qsort(got.v, got.n, sizeof got.v[0], cmp_str);
        qsort(want.v, want.n, sizeof want.v[0], cmp_str);
        for (size_t k = 0; k < got.n; k++)
            assert_string_equal(got.v[k], want.v[k]);
        lines_free(&got);
        lines_free(&want);
        xform_free(x);
        xform_free(d);
        lake_table_free(t);
    }
}

static void test_empty_and_many(void **state)
{
    struct weir_errmsg e = {0};
    struct lake_table *t = table(schema_text, PART_HOUR);
    struct xform *x = NULL;
    assert_int_equal(xform_new(t, "SELECT ts, count(*) OVER () AS n FROM batch", "ts", 0,
                               "test", &x, &e), 0);
    struct arrow_batch b;
    build(t, 0, &b);
    assert_int_equal(b.narrays, 1);
    struct lines got = {0};
    assert_int_equal(xform_run(x, &b, collect, &got, NULL, &e), 0);
    assert_int_equal(got.n, 0);
    arrow_batch_release(&b);

    /* Several chunks: 5000 rows, 3 arrays; a self-join reads batch twice. */
    xform_free(x);
    assert_int_equal(xform_new(t, "SELECT max(a.ts) AS ts, count(*) AS n FROM batch a "
                               "JOIN batch b2 ON a.id = b2.id", "ts", 0, "test", &x, &e), 0);
    struct arrow_builder *ab = NULL;
    assert_int_equal(arrow_builder_new(t, 0, &ab, &e), 0);
    char rec[128];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(rec, sizeof rec, "{\"ts\":%d,\"id\":%d,\"s\":\"r%d\"}",
                         1756807200 + i, i, i);
        assert_int_equal(arrow_builder_add(ab, rec, (size_t)n, H10_NS, &e), 0);
    }
    /* A record that does not fit leaves nothing behind. */
    assert_int_equal(arrow_builder_add(ab, "{\"ts\":1,\"id\":\"x\"}", 17, H10_NS, &e),
                     WEIR_EINVAL);
    assert_non_null(strstr(e.text, "\"id\""));
    assert_int_equal(arrow_builder_finish(ab, &b, &e), 0);
    assert_int_equal(b.narrays, 3);
    assert_int_equal(b.rows, 5000);
    assert_int_equal(xform_run(x, &b, collect, &got, NULL, &e), 0);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.v[0], "{\"ts\":1756812199,\"n\":5000}");
    lines_free(&got);
    arrow_batch_release(&b);
    /* The builder is reusable after a finish. */
    assert_int_equal(arrow_builder_add(ab, records[0], strlen(records[0]), H10_NS, &e), 0);
    assert_int_equal(arrow_builder_rows(ab), 1);
    arrow_builder_free(ab);
    xform_free(x);
    lake_table_free(t);
}

static void test_runner_rows_and_schema(void **state)
{
    struct weir_errmsg e = {0};
    struct lake_table *t = table(schema_text, PART_HOUR);
    struct xform *x = NULL;
    /* filter, derive, enrich; date and hour are left out, _extra spread */
    assert_int_equal(xform_new(t,
        "SELECT ts, id, v * 2 AS v2, upper(s) AS s, m.a AS a, len(xs) AS nx, "
        "{'k': s, 'l': [id, id]} AS st, date, hour, _extra FROM batch WHERE id <> 3 ORDER BY id",
        "ts", 0, "test", &x, &e), 0);
    struct arrow_batch b;
    build(t, NREC, &b);
    struct lines got = {0};
    assert_int_equal(xform_run(x, &b, collect, &got, NULL, &e), 0);
    arrow_batch_release(&b);
    assert_int_equal(got.n, 4);
    assert_string_equal(got.v[0], "{\"ts\":1756807200,\"id\":1,\"v2\":3.0,\"s\":\"A\",\"a\":1,"
                                  "\"nx\":2,\"st\":{\"k\":\"a\",\"l\":[1,1]},\"extra1\":\"e\"}");
    assert_string_equal(got.v[1], "{\"ts\":1756807201,\"id\":2,\"v2\":null,"
                                  "\"s\":\"ESC\\\"APED \u00C9\\n\",\"a\":null,\"nx\":null,"
                                  "\"st\":{\"k\":\"esc\\\"aped \u00E9\\n\",\"l\":[2,2]}}");
    lines_free(&got);

    /* D's schema: the lake types of the output, nullable, open for _extra. */
    struct buf s = BUF_INIT(1 << 20);
    assert_int_equal(xform_schema(x, &s), 0);
    struct schema *sc = schema_compile(s.data, s.len, NULL, NULL, &e);
    assert_non_null(sc);
    struct lake_table *d = NULL;
    assert_int_equal(lake_table_from_schema("d", "/nowhere/d", PART_HOUR, sc, "ts",
                                            LAKE_TIME_S, &d, &e), 0);
    const char *want[][2] = {{"ts", "BIGINT"}, {"id", "BIGINT"}, {"v2", "DOUBLE"},
                             {"s", "VARCHAR"}, {"a", "BIGINT"}, {"nx", "BIGINT"},
                             {"st", "STRUCT(\"k\" VARCHAR, \"l\" BIGINT[])"}};
    assert_int_equal(d->ncols, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(d->cols[i].name, want[i][0]);
        assert_string_equal(d->cols[i].type, want[i][1]);
    }
    assert_true(d->has_extra);
    lake_table_free(d);
    schema_free(sc);
    buf_release(&s);
    xform_free(x);

    /* Closed without _extra. */
    assert_int_equal(xform_new(t, "SELECT ts FROM batch", "ts", 0, "test", &x, &e), 0);
    s = (struct buf)BUF_INIT(1 << 20);
    assert_int_equal(xform_schema(x, &s), 0);
    assert_non_null(strstr(s.data, "\"additionalProperties\":false}"));
    buf_release(&s);
    xform_free(x);
    lake_table_free(t);
}

static void test_errors(void **state)
{
    struct weir_errmsg e = {0};
    struct lake_table *t = table(schema_text, PART_HOUR);
    struct xform *x = NULL;
    assert_int_equal(xform_new(t, "SELECT id FROM batch", "ts", 0, "T", &x, &e),
                     WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "\"ts\""));
    assert_null(x);
    assert_int_equal(xform_new(t, "SELEC ts FROM batch", "ts", 0, "T", &x, &e), WEIR_ESQL);
    assert_int_equal(xform_new(t, "SELECT ts FROM nosuch", "ts", 0, "T", &x, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "nosuch"));
    /* rfc3339 wants a string */
    assert_int_equal(xform_new(t, "SELECT ts FROM batch", "ts", 1, "T", &x, &e), WEIR_ECONFIG);
    assert_int_equal(xform_new(t, "", "ts", 0, "T", &x, &e), WEIR_ECONFIG);

    /* At run time: a cast that fails on one value fails the batch. */
    assert_int_equal(xform_new(t, "SELECT ts, CAST(s AS INTEGER) AS n FROM batch", "ts", 0,
                               "T", &x, &e), 0);
    struct arrow_batch b;
    build(t, NREC, &b);
    struct lines got = {0};
    assert_int_equal(xform_run(x, &b, collect, &got, NULL, &e), WEIR_ESQL);
    assert_non_null(strstr(e.text, "T: "));
    arrow_batch_release(&b);
    lines_free(&got);
    /* and the next batch runs */
    build(t, 0, &b);
    assert_int_equal(xform_run(x, &b, collect, &got, NULL, &e), 0);
    arrow_batch_release(&b);
    lines_free(&got);
    xform_free(x);
    lake_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arrow_equals_ndjson),
        cmocka_unit_test(test_empty_and_many),
        cmocka_unit_test(test_runner_rows_and_schema),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
