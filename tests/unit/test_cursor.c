/*
 * test_cursor.c - the Kafka sink's delivery cursor (store/cursor.h): stems
 * of segment names, the file format and its refusals, the union over
 * nodes that compaction reads; and seg_durable_len (store/segment.h), the
 * durable length a writer publishes for the sink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsio.h"
#include "core/wtime.h"
#include "store/cursor.h"
#include "store/partition.h"
#include "store/segment.h"

#include "tmpdir.h"

/* 2025-09-02T10:00:00Z */
#define H0 (INT64_C(1756807200) * WTIME_NS_PER_S)

static char *root;

static int setup(void **state)
{
    return (root = tmpdir_make(NULL, "cur")) ? 0 : -1;
}

static int teardown(void **state)
{
    return tmpdir_remove(root);
}

static void test_stem(void **state)
{
    char s[CURSOR_STEM_MAX];
    assert_int_equal(cursor_stem("edge-a-0-0000000042.ndjson", s, sizeof s), 0);
    assert_string_equal(s, "edge-a-0-0000000042");
    assert_int_equal(cursor_stem("n.x-3-0000000001.ndjson.open", s, sizeof s), 0);
    assert_string_equal(s, "n.x-3-0000000001");
    assert_int_equal(cursor_stem("n-0-1.parquet", s, sizeof s), WEIR_EINVAL);
    assert_int_equal(cursor_stem("junk.ndjson", s, sizeof s), WEIR_EINVAL);
    assert_int_equal(cursor_stem("n-0-0000000001.ndjson", s, 4), WEIR_EINVAL);
}

static void test_roundtrip(void **state)
{
    struct sink_cursor c = {0}, r = {0};
    struct weir_errmsg e = {0};
    uint64_t off;
    assert_int_equal(cursor_load(root, "p", "a", &r, &e), 0); /* missing: empty */
    assert_int_equal(r.n, 0);
    assert_int_equal(cursor_add(&c, "a-1-0000000002", 7), 0);
    assert_int_equal(cursor_add(&c, "a-0-0000000009", UINT64_MAX), 0);
    assert_int_equal(cursor_add(&c, "bad stem", 1), WEIR_EINVAL);
    assert_int_equal(cursor_save(root, "p", "a", &c, &e), 0);
    assert_int_equal(cursor_load(root, "p", "a", &r, &e), 0);
    assert_int_equal(r.n, 2);
    assert_true(cursor_get(&r, "a-0-0000000009", &off));
    assert_true(off == UINT64_MAX);
    assert_true(cursor_get(&r, "a-1-0000000002", &off));
    assert_int_equal(off, 7);
    assert_false(cursor_get(&r, "a-1-0000000003", &off));
    cursor_release(&c);
    cursor_release(&r);
}

static void put(const char *name, const char *text)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/q/_sink", root);
    assert_int_equal(fsio_mkdir_p(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(fsio_write_file_atomic(path, text, strlen(text), 0644), 0);
}

static void test_refusals(void **state)
{
    static const char *const bad[] = {
        "",                                   /* no magic */
        "weir-cursor 2\n",                    /* another version */
        "weir-cursor 1\nx-0-1 12",            /* no final newline */
        "weir-cursor 1\nx-0-1\n",             /* no offset */
        "weir-cursor 1\nx-0-1 -3\n",          /* not a number */
        "weir-cursor 1\nx-0-1 99999999999999999999999\n", /* overflow */
        "weir-cursor 1\n 5\n",                /* no stem */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sink_cursor c = {0};
        struct weir_errmsg e = {0};
        put("x.cursor", bad[i]);
        assert_int_equal(cursor_load(root, "q", "x", &c, &e), WEIR_ECORRUPT);
        assert_non_null(strstr(e.text, "x.cursor"));
        cursor_release(&c);
    }
}

static void test_all_nodes(void **state)
{
    struct sink_cursor c = {0};
    struct weir_errmsg e = {0};
    char x[300];
    snprintf(x, sizeof x, "%s/q/_sink/x.cursor", root);
    unlink(x); /* test_refusals' */
    put("a.cursor", "weir-cursor 1\na-0-0000000001 100\na-0-0000000002 40\n");
    put("b.cursor", "weir-cursor 1\nb-1-0000000001 10\n");
    put("b.cursor.tmp.1.2", "weir-cursor 1\nb-1-0000000005 10\n"); /* ignored */
    assert_int_equal(cursor_load_all(root, "q", &c, &e), 0);
    assert_int_equal(c.n, 3);
    assert_true(cursor_delivered(&c, "a-0-0000000001.ndjson", 100));
    assert_true(cursor_delivered(&c, "a-0-0000000001.ndjson", 99));
    assert_false(cursor_delivered(&c, "a-0-0000000002.ndjson", 41));
    assert_true(cursor_delivered(&c, "b-1-0000000001.ndjson", 10));
    assert_false(cursor_delivered(&c, "b-1-0000000005.ndjson", 1));
    assert_false(cursor_delivered(&c, "c-0-0000000001.ndjson", 1)); /* no cursor */
    cursor_release(&c);
    /* No _sink folder at all: nothing is delivered. */
    assert_int_equal(cursor_load_all(root, "none", &c, &e), 0);
    assert_int_equal(c.n, 0);
    cursor_release(&c);
}

static void test_durable_len(void **state)
{
    struct seg_config sc = {
        .data_dir = root, .pipeline = "d", .kind = "raw", .node = "n",
        .thread = 0, .grain = PART_HOUR, .sync = SEG_SYNC_GROUP,
    };
    struct seg_writer *w = NULL;
    struct weir_errmsg e = {0};
    uint64_t len = 0, seq_next;
    struct seg_mark m[4];
    assert_int_equal(seg_writer_new(&sc, &w, &e), 0);
    assert_int_equal(seg_append(w, H0, "{\"a\":1}", 7), 0);
    /* Taken, not fsynced: nothing published yet. */
    assert_int_equal(seg_marks(w, m, 4, &seq_next), 0);
    assert_int_equal(seg_flush(w), 0);
    assert_int_equal(seg_marks(w, m, 4, &seq_next), 1);
    assert_int_equal(seg_durable_len(w, m[0].seq, &len), 1);
    assert_int_equal(len, 8);
    assert_int_equal(seg_append(w, H0, "{\"a\":22}", 8), 0);
    assert_int_equal(seg_durable_len(w, m[0].seq, &len), 1);
    assert_int_equal(len, 8); /* the second record is not durable yet */
    assert_int_equal(seg_flush(w), 0);
    assert_int_equal(seg_durable_len(w, m[0].seq, &len), 1);
    assert_int_equal(len, 17);
    assert_int_equal(seg_durable_len(w, m[0].seq + 1, &len), 0);
    /* Sealed: no longer published (the sealed file is durable whole). */
    assert_int_equal(seg_close_all(w), 0);
    assert_int_equal(seg_durable_len(w, m[0].seq, &len), 0);
    seg_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stem),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_all_nodes),
        cmocka_unit_test(test_durable_len),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
