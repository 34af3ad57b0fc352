/*
 * test_compact.c - compaction in process: the lake's columns and SQL, the
 * type compatibility rule of schema evolution, and the disk failing
 * (ENOSPC, EIO through fsio) at every call point of a compaction: after
 * each failure a reader sees exactly the records written, the raw data of
 * uncommitted partitions is intact, and the next run finishes the job with
 * no orphan file left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/schema.h"
#include "sql/sql.h"
#include "store/compact.h"
#include "store/cursor.h"
#include "store/lake.h"
#include "store/tablelog.h"

#include "tmpdir.h"

static char *root;
static char data[128];
static char dataset[160];
static struct weir_config cfg;
static struct sql_db *db;

/* 2025-09-02T00:00:00Z */
#define H0 1756771200LL
#define HOURS 2
#define PER_SEG 50

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* HOURS hours, one segment each, PER_SEG records; returns sum(sensor). */
static long long make_raw(void)
{
    long long sum = 0;
    char dir[256], path[320], line[256];
    for (int h = 0; h < HOURS; h++) {
        snprintf(dir, sizeof dir, "%s/raw/date=2025-09-02/hour=%02d", dataset, h);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
        assert_int_equal(system(cmd), 0);
        snprintf(path, sizeof path, "%s/n1-0-%010d.ndjson", dir, h + 1);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < PER_SEG; i++) {
            int sensor = h * 1000 + i;
            snprintf(line, sizeof line,
                     "{\"ts\":%lld,\"sensor\":%d,\"v\":%d.25,\"m\":{\"a\":%d}%s}\n",
                     H0 + h * 3600 + i, sensor, i, i,
                     i % 7 ? "" : ",\"note\":\"x\"");
            fputs(line, f);
            sum += sensor;
        }
        fclose(f);
    }
    return sum;
}

static int setup(void **state)
{
    struct weir_errmsg e = {0};
    char text[1024];
    root = tmpdir_make(NULL, "compact");
    if (!root)
        return -1;
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(dataset, sizeof dataset, "%s/tel", data);
    char schema[128];
    snprintf(schema, sizeof schema, "%s/tel.schema.json", root);
    write_file(schema, "{\"type\":\"object\",\"properties\":{\"ts\":{\"type\":\"integer\"},"
                       "\"sensor\":{\"type\":\"integer\"},\"v\":{\"type\":\"number\"},"
                       "\"m\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
                       "\"integer\"}}}},\"required\":[\"ts\",\"sensor\"]}");
    snprintf(text, sizeof text,
             "data_dir: %s\npipelines:\n  - name: tel\n    schema: tel.schema.json\n"
             "    time_field: ts\n    time_unit: s\n", data);
    if (config_load_string("test.yaml", text, strlen(text), root, &cfg, &e) != 0) {
        fprintf(stderr, "config: %s\n", e.text);
        return -1;
    }
    struct sql_opts so = {.threads = 1, .memory_limit = "512MB"};
    if (sql_open(&so, &db, &e) != 0)
        return -1;
    log_setup(LOG_ERROR, LOG_TEXT);
    return 0;
}

static int teardown(void **state)
{
    fsio_fault_off();
    sql_close(db);
    config_release(&cfg);
    tmpdir_remove(root);
    return 0;
}

/* count(*) and sum(sensor) through a reader's view. */
static void totals(long long *count, long long *sum)
{
    struct weir_errmsg e = {0};
    struct lake_table *t = NULL;
    struct lake_view v;
    struct buf q = BUF_INIT(1 << 24);
    int64_t x = -1;
    assert_int_equal(lake_table_new(&cfg, &cfg.pipelines[0], NULL, &t, &e), 0);
    if (lake_view_open(t, 0, &v, &e) != 0)
        fail_msg("view: %s", e.text);
    assert_int_equal(buf_puts(&q, "CREATE OR REPLACE TEMP VIEW tel AS "), 0);
    assert_int_equal(lake_view_sql(t, &v, &q), 0);
    if (sql_exec(db, q.data, &e) != 0)
        fail_msg("%s: %s", q.data, e.text);
    assert_int_equal(sql_query_int64(db, "SELECT count(*) FROM tel", &x, &e), 0);
    *count = x;
    assert_int_equal(sql_query_int64(db, "SELECT coalesce(sum(sensor), 0) FROM tel", &x, &e), 0);
    *sum = x;
    lake_view_release(&v);
    lake_table_free(t);
    buf_release(&q);
}

/* Parquet files on disk that the log does not reference, and temp files. */
static int strays(void)
{
    struct weir_errmsg e = {0};
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    char cmd[512], line[1024];
    int n = 0;
    assert_int_equal(tl_open(dataset, &tl, &e), 0);
    assert_int_equal(tl_snapshot(tl, 0, &s, &e), 0);
    snprintf(cmd, sizeof cmd, "cd %s && find parquet -type f 2>/dev/null", dataset);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        if (!tl_snapshot_file(&s, line)) {
            fprintf(stderr, "stray: %s\n", line);
            n++;
        }
    }
    pclose(p);
    for (size_t i = 0; i < s.nabsorbed; i++) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dataset, s.absorbed[i].path);
        if (stat(path, &st) == 0) {
            fprintf(stderr, "absorbed still there: %s\n", path);
            n++;
        }
    }
    tl_snapshot_release(&s);
    tl_free(tl);
    return n;
}

static void test_columns_and_types(void **state)
{
    struct weir_errmsg e = {0};
    struct lake_table *t = NULL;
    assert_int_equal(lake_table_new(&cfg, &cfg.pipelines[0], NULL, &t, &e), 0);
    assert_int_equal(t->ncols, 4);
    assert_string_equal(t->cols[0].name, "ts");
    assert_string_equal(t->cols[0].type, "BIGINT");
    assert_string_equal(t->cols[2].type, "DOUBLE");
    assert_string_equal(t->cols[3].type, "STRUCT(\"a\" BIGINT)");
    assert_string_equal(t->cols[3].json_type, "{\"a\":\"BIGINT\"}");
    assert_true(t->has_extra);
    assert_non_null(t->time_expr);
    assert_true(t->time_exact);
    struct buf b = BUF_INIT(1 << 20);
    assert_int_equal(lake_sql_empty(t, LAKE_SQL_PARTCOLS, &b), 0);
    assert_non_null(strstr(b.data, "CAST(NULL AS INTEGER) AS \"hour\""));
    lake_table_free(t);
    buf_release(&b);

    /* Names that cannot be columns go to _extra; a nested object whose
     * fields collide but for case becomes JSON. */
    const char *txt = "{\"type\":\"object\",\"additionalProperties\":false,"
                      "\"properties\":{\"a\":{\"type\":\"integer\"},\"date\":{\"type\":"
                      "\"string\"},\"A\":{\"type\":\"integer\"},\"n\":{\"type\":\"object\","
                      "\"properties\":{\"x\":{\"type\":\"integer\"},\"X\":{}}},"
                      "\"ok\":{\"type\":\"boolean\"}}}";
    struct schema *s = schema_compile(txt, strlen(txt), NULL, NULL, &e);
    assert_non_null(s);
    assert_int_equal(lake_table_from_schema("x", "/nowhere/x", PART_HOUR, s, "n.x",
                                            LAKE_TIME_MS, &t, &e), 0);
    assert_int_equal(t->ncols, 2);
    assert_string_equal(t->cols[0].name, "n");
    assert_string_equal(t->cols[0].type, "JSON");
    assert_string_equal(t->cols[1].name, "ok");
    assert_true(t->has_extra);
    assert_non_null(strstr(t->time_expr, "json_extract_string(\"n\", '$.\"x\"')"));
    assert_false(t->time_exact);
    lake_table_free(t);
    schema_free(s);
}

static void test_type_compat(void **state)
{
    assert_true(lake_types_compatible("BIGINT", "BIGINT"));
    assert_false(lake_types_compatible("BIGINT", "VARCHAR"));
    assert_false(lake_types_compatible("BIGINT", "DOUBLE"));
    assert_true(lake_types_compatible("STRUCT(a BIGINT)", "STRUCT(\"a\" BIGINT, \"b\" VARCHAR)"));
    assert_true(lake_types_compatible("STRUCT(a BIGINT, \"b c\" JSON)", "STRUCT(\"a\" BIGINT)"));
    assert_false(lake_types_compatible("STRUCT(a BIGINT)", "STRUCT(a VARCHAR)"));
    assert_true(lake_types_compatible("STRUCT(a BIGINT[])[]", "STRUCT(a BIGINT[], z BOOLEAN)[]"));
    assert_false(lake_types_compatible("BIGINT[]", "BIGINT"));
    assert_false(lake_types_compatible("STRUCT(a BIGINT)", "JSON"));
    assert_true(lake_types_compatible("TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"));
    assert_true(lake_types_compatible("DECIMAL(18,3)", "DECIMAL(18,3)"));
}

static void test_compact_and_read(void **state)
{
    struct weir_errmsg e = {0};
    struct compact_opts o = {.all = 1, .grace_ns = -1, .orphan_grace_ns = 0};
    struct compact_stats st = {0};
    long long want = make_raw(), n, sum;
    totals(&n, &sum);
    assert_int_equal(n, HOURS * PER_SEG);
    assert_int_equal(sum, want);
    if (compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e) != 0)
        fail_msg("compact: %s", e.text);
    assert_int_equal(st.partitions, HOURS);
    assert_int_equal(st.rows, HOURS * PER_SEG);
    totals(&n, &sum);
    assert_int_equal(n, HOURS * PER_SEG);
    assert_int_equal(sum, want);
    assert_int_equal(strays(), 0);
    /* Nothing left to do. */
    memset(&st, 0, sizeof st);
    assert_int_equal(compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e), 0);
    assert_int_equal(st.partitions, 0);
    tmpdir_remove(dataset);
}

static void fault_sweep(enum fsio_op op, int err)
{
    struct weir_errmsg e = {0};
    struct compact_opts o = {.all = 1, .grace_ns = -1, .orphan_grace_ns = 0};
    unsigned failures = 0, runs = 0;
    for (unsigned long after = 0; after < 400; after++) {
        struct compact_stats st = {0};
        tmpdir_remove(dataset);
        long long want = make_raw(), n, sum;
        fsio_fault_reset();
        fsio_fault_set(op, after, err, 0);
        int rc = compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e);
        unsigned long hits = fsio_fault_hits(op);
        fsio_fault_off();
        runs++;
        if (rc) {
            failures++;
            assert_true(hits > 0);
        }
        /* Whatever failed, a reader sees each record once. */
        totals(&n, &sum);
        if (n != HOURS * PER_SEG || sum != want)
            fail_msg("%s after %lu (%s): %lld rows, sum %lld (want %d, %lld); rc %d %s",
                     fsio_op_name(op), after, strerror(err), n, sum, HOURS * PER_SEG,
                     want, rc, rc ? e.text : "");
        /* And the next run finishes the work, cleanly. */
        memset(&st, 0, sizeof st);
        if (compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e) != 0)
            fail_msg("%s after %lu: the next run failed: %s", fsio_op_name(op), after,
                     e.text);
        totals(&n, &sum);
        assert_int_equal(n, HOURS * PER_SEG);
        assert_int_equal(sum, want);
        if (strays() != 0)
            fail_msg("%s after %lu: files left behind", fsio_op_name(op), after);
        if (hits == 0)
            break; /* past the last call point */
    }
    print_message("  %-10s %-6s: %u runs, %u failed as injected\n", fsio_op_name(op),
                  err == ENOSPC ? "ENOSPC" : "EIO", runs, failures);
    tmpdir_remove(dataset);
}

static void test_faults(void **state)
{
    static const enum fsio_op ops[] = {
        FSIO_OP_OPEN, FSIO_OP_WRITE, FSIO_OP_PWRITE, FSIO_OP_FSYNC, FSIO_OP_FDATASYNC,
        FSIO_OP_RENAME, FSIO_OP_LINK, FSIO_OP_UNLINK, FSIO_OP_MKDIR, FSIO_OP_OPENDIR,
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        fault_sweep(ops[i], i % 2 ? EIO : ENOSPC);
    fault_sweep(FSIO_OP_FSYNC, ENOSPC);
    fault_sweep(FSIO_OP_WRITE, ENOSPC);
}

static void test_compactor_thread(void **state)
{
    struct weir_errmsg e = {0};
    struct compactor *c = NULL;
    struct tablelog *tl = NULL;
    long long want = make_raw(), n, sum;
    uint64_t v = 0;
    assert_int_equal(compactor_start(&cfg, NULL, &c, &e), 0);
    compactor_kick(c);
    assert_int_equal(tl_open(dataset, &tl, &e), 0);
    for (int i = 0; i < 600 && v < HOURS; i++) {
        usleep(20000);
        assert_int_equal(tl_latest(tl, &v, &e), 0);
    }
    compactor_stop(c);
    compactor_stop(NULL);
    tl_free(tl);
    assert_int_equal(v, HOURS);
    totals(&n, &sum);
    assert_int_equal(n, HOURS * PER_SEG);
    assert_int_equal(sum, want);
    /* Stopping while idle is prompt. */
    assert_int_equal(compactor_start(&cfg, NULL, &c, &e), 0);
    compactor_stop(c);
    tmpdir_remove(dataset);
}

/* The background compactor's backoff: a partition DuckDB refuses is not
 * read again at every round, but after its delay, or at once when its
 * segments change; the other partitions compact meanwhile. */
static void test_backoff(void **state)
{
    struct weir_errmsg e = {0};
    struct compact_opts o = {.all = 1, .grace_ns = -1, .orphan_grace_ns = 0};
    struct compact_stats st = {0};
    struct compact_backoff *b = compact_backoff_new();
    int64_t t0 = (H0 + 10 * 3600) * 1000000000LL, min = WEIR_COMPACT_BACKOFF_MIN_S * 1000000000LL;
    assert_non_null(b);

    /* The table alone: delays double up to the maximum; other segments
     * (another fingerprint) may be tried at once; success forgets. */
    assert_false(compact_backoff_wait(b, "tel", "k", 1, t0));
    assert_int_equal(compact_backoff_failed(b, "tel", "k", 1, t0), 0);
    assert_true(compact_backoff_wait(b, "tel", "k", 1, t0 + min - 1));
    assert_false(compact_backoff_wait(b, "tel", "k", 1, t0 + min));
    assert_false(compact_backoff_wait(b, "tel", "k", 2, t0));
    assert_false(compact_backoff_wait(b, "other", "k", 1, t0));
    assert_int_equal(compact_backoff_failed(b, "tel", "k", 1, t0 + min), 0);
    assert_true(compact_backoff_wait(b, "tel", "k", 1, t0 + 3 * min - 1));
    assert_false(compact_backoff_wait(b, "tel", "k", 1, t0 + 3 * min));
    for (int i = 0; i < 20; i++)
        assert_int_equal(compact_backoff_failed(b, "tel", "k", 1, t0), 0);
    assert_true(compact_backoff_wait(b, "tel", "k", 1,
                                     t0 + WEIR_COMPACT_BACKOFF_MAX_S * 1000000000LL - 1));
    assert_false(compact_backoff_wait(b, "tel", "k", 1,
                                      t0 + WEIR_COMPACT_BACKOFF_MAX_S * 1000000000LL));
    compact_backoff_done(b, "tel", "k");
    assert_false(compact_backoff_wait(b, "tel", "k", 1, t0));

    /* Through compact_pipeline: hour 0 holds a sensor DuckDB cannot take
     * as BIGINT. */
    make_raw();
    char bad[320];
    snprintf(bad, sizeof bad, "%s/raw/date=2025-09-02/hour=00/n1-0-%010d.ndjson", dataset, 1);
    FILE *f = fopen(bad, "a");
    assert_non_null(f);
    fprintf(f, "{\"ts\":%lld,\"sensor\":\"not a number\"}\n", H0 + 5);
    fclose(f);
    o.backoff = b;
    wtime_set_now(t0, 0);
    assert_int_equal(compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e), WEIR_ESQL);
    assert_int_equal(st.partitions_failed, 1);
    assert_int_equal(st.partitions, HOURS - 1);
    /* Again at once: skipped, no error, its failure still on record. */
    memset(&st, 0, sizeof st);
    assert_int_equal(compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e), 0);
    assert_int_equal(st.partitions_failed, 0);
    assert_int_equal(st.partitions_deferred, 1);
    struct compact_failure *fl = NULL;
    size_t nf = 0;
    assert_int_equal(compact_failures_read(&cfg, &cfg.pipelines[0], &fl, &nf, &e), 0);
    assert_int_equal(nf, 1);
    free(fl);
    /* After the delay: tried (and refused) again. */
    memset(&st, 0, sizeof st);
    wtime_set_now(t0 + min, 0);
    assert_int_equal(compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e), WEIR_ESQL);
    assert_int_equal(st.partitions_failed, 1);
    /* A fix (the bad line gone: other segments) is tried at once. */
    f = fopen(bad, "r+");
    assert_non_null(f);
    char line[256];
    long keep = 0;
    for (int i = 0; i < PER_SEG && fgets(line, sizeof line, f); i++)
        keep = ftell(f);
    fclose(f);
    assert_int_equal(truncate(bad, keep), 0);
    memset(&st, 0, sizeof st);
    assert_int_equal(compact_pipeline(&cfg, &cfg.pipelines[0], &o, &st, &e), 0);
    assert_int_equal(st.partitions, 1);
    assert_int_equal(st.partitions_deferred, 0);
    assert_false(compact_backoff_wait(b, "tel", "date=2025-09-02/hour=00", 0, t0));
    wtime_set_now(0, 0);
    compact_backoff_free(b);
    compact_backoff_free(NULL);
    tmpdir_remove(dataset);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* A pipeline with a Kafka sink: compaction and retention take only the
 * segments its cursor says are delivered whole (store/cursor.h). */
static void test_sink_keeps_undelivered(void **state)
{
    struct weir_errmsg e = {0};
    struct weir_config scfg;
    char text[1024], seg[2][320];
    snprintf(text, sizeof text,
             "data_dir: %s\npipelines:\n  - name: tel\n    schema: tel.schema.json\n"
             "    time_field: ts\n    time_unit: s\n    retention: {raw: 1h}\n"
             "    sink: {kafka: {brokers: \"127.0.0.1:1\", topic: x}}\n", data);
    if (config_load_string("sink.yaml", text, strlen(text), root, &scfg, &e) != 0)
        fail_msg("config: %s", e.text);
    tmpdir_remove(dataset);
    make_raw();
    for (int h = 0; h < 2; h++)
        snprintf(seg[h], sizeof seg[h], "%s/raw/date=2025-09-02/hour=%02d/n1-0-%010d.ndjson",
                 dataset, h, h + 1);
    /* Hour 0 delivered whole, hour 1 but for its last byte. */
    struct sink_cursor c = {0};
    assert_int_equal(cursor_add(&c, "n1-0-0000000001", file_size(seg[0])), 0);
    assert_int_equal(cursor_add(&c, "n1-0-0000000002", file_size(seg[1]) - 1), 0);
    assert_int_equal(cursor_save(data, "tel", "n1", &c, &e), 0);
    struct compact_opts o = {.all = 1, .grace_ns = -1, .orphan_grace_ns = 0};
    struct compact_stats st = {0};
    if (compact_pipeline(&scfg, &scfg.pipelines[0], &o, &st, &e) != 0)
        fail_msg("compact: %s", e.text);
    assert_int_equal(st.partitions, 1);
    assert_int_equal(access(seg[0], F_OK), -1);
    assert_int_equal(access(seg[1], F_OK), 0);
    /* Retention (a year later): the undelivered segment stays. */
    struct compact_opts g = {.now_ns = (H0 + 366LL * 86400) * 1000000000LL,
                             .grace_ns = -1, .orphan_grace_ns = 0};
    struct gc_stats gs = {0};
    if (compact_gc(&scfg, &scfg.pipelines[0], &g, &gs, &e) != 0)
        fail_msg("gc: %s", e.text);
    assert_int_equal(gs.raw_deleted, 0);
    assert_int_equal(access(seg[1], F_OK), 0);
    /* Delivered: retention takes it. */
    c.v[1].off = file_size(seg[1]);
    assert_int_equal(cursor_save(data, "tel", "n1", &c, &e), 0);
    memset(&gs, 0, sizeof gs);
    assert_int_equal(compact_gc(&scfg, &scfg.pipelines[0], &g, &gs, &e), 0);
    assert_int_equal(gs.raw_deleted, 1);
    cursor_release(&c);
    config_release(&scfg);
    tmpdir_remove(dataset);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_and_types),
        cmocka_unit_test(test_type_compat),
        cmocka_unit_test(test_compact_and_read),
        cmocka_unit_test(test_sink_keeps_undelivered),
        cmocka_unit_test(test_compactor_thread),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
