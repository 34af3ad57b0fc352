/*
 * test_segment.c - partitions, segment writers (append, roll, seal, names,
 * durability policies, disk failures at every write and fsync point) and
 * the segment lister.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/log.h"
#include "core/wtime.h"
#include "store/partition.h"
#include "store/segment.h"

#include "tmpdir.h"

#define MS WTIME_NS_PER_MS
#define HOUR WTIME_NS_PER_HOUR
/* 2025-09-02T10:00:00Z */
#define H0 (INT64_C(1756807200) * WTIME_NS_PER_S)

static char *root;

static int setup(void **state)
{
    root = tmpdir_make(NULL, "seg");
    if (!root)
        return -1;
    fsio_fault_reset();
    return 0;
}

static int teardown(void **state)
{
    fsio_fault_off();
    fsio_sys_set(NULL);
    return tmpdir_remove(root);
}

static void cfg_init(struct seg_config *c, const char *data_dir)
{
    memset(c, 0, sizeof(*c));
    c->data_dir = data_dir;
    c->pipeline = "p";
    c->kind = "raw";
    c->node = "n1";
    c->thread = 0;
    c->grain = PART_HOUR;
    c->sync = SEG_SYNC_GROUP;
}

static struct seg_writer *writer(const struct seg_config *c)
{
    struct seg_writer *w = NULL;
    struct weir_errmsg e;
    int rc = seg_writer_new(c, &w, &e);
    if (rc)
        fprintf(stderr, "seg_writer_new: %s\n", e.text);
    assert_int_equal(rc, 0);
    return w;
}

static void append_ok(struct seg_writer *w, int64_t start, const char *s)
{
    assert_int_equal(seg_append(w, start, s, strlen(s)), 0);
}

/* The contents of every segment of a partition, in order, concatenated. */
static char *partition_text(const char *data_dir, int64_t start, int *nseg)
{
    struct seg_list l;
    assert_int_equal(seg_list(data_dir, "p", "raw", &l, NULL), 0);
    struct buf b = BUF_INIT(1 << 24);
    buf_puts(&b, "");
    int n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].part_start != start)
            continue;
        n++;
        struct buf f = BUF_INIT(1 << 24);
        assert_int_equal(fsio_read_file(l.v[i].path, &f), 0);
        buf_append(&b, f.data ? f.data : "", f.len);
        buf_release(&f);
    }
    seg_list_release(&l);
    if (nseg)
        *nseg = n;
    return buf_detach(&b, NULL);
}

/* No file of the pipeline holds a partial line. */
static void assert_no_torn(const char *data_dir)
{
    struct seg_list l;
    assert_int_equal(seg_list(data_dir, "p", "raw", &l, NULL), 0);
    for (size_t i = 0; i < l.n; i++) {
        uint64_t len;
        assert_int_equal(seg_complete_len(l.v[i].path, &len), 0);
        if (len != l.v[i].size)
            fprintf(stderr, "torn: %s (%llu of %llu)\n", l.v[i].path,
                    (unsigned long long)len, (unsigned long long)l.v[i].size);
        assert_true(len == l.v[i].size);
    }
    seg_list_release(&l);
}

static int count_active(const char *data_dir)
{
    struct seg_list l;
    assert_int_equal(seg_list(data_dir, "p", "raw", &l, NULL), 0);
    int n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += l.v[i].active;
    seg_list_release(&l);
    return n;
}

/* ---- partitions --------------------------------------------------------- */

static void test_partition_keys(void **state)
{
    char k[PART_KEY_MAX];
    int64_t s;
    enum part_grain g;
    assert_int_equal(part_start(H0 + 59 * 60 * WTIME_NS_PER_S + 1, PART_HOUR, &s), 0);
    assert_true(s == H0);
    assert_int_equal(part_key_format(s, PART_HOUR, k, sizeof(k)), 23);
    assert_string_equal(k, "date=2025-09-02/hour=10");
    assert_true(part_end(s, PART_HOUR) == H0 + HOUR);
    assert_int_equal(part_start(H0 + 5, PART_DAY, &s), 0);
    assert_int_equal(part_key_format(s, PART_DAY, k, sizeof(k)), 15);
    assert_string_equal(k, "date=2025-09-02");
    assert_int_equal(part_key_format(H0 + 1, PART_HOUR, k, sizeof(k)), 0);

    /* before 1970: floor, not truncation toward zero */
    assert_int_equal(part_start(-1, PART_HOUR, &s), 0);
    part_key_format(s, PART_HOUR, k, sizeof(k));
    assert_string_equal(k, "date=1969-12-31/hour=23");
    assert_int_equal(part_start(INT64_MAX, PART_HOUR, &s), WEIR_EINVAL);
    assert_int_equal(part_start(INT64_MIN, PART_DAY, &s), WEIR_EINVAL);

    /* round trip, including leap days */
    int64_t t0 = INT64_C(951782400) * WTIME_NS_PER_S; /* 2000-02-29 */
    for (int i = 0; i < 24 * 3; i++) {
        int64_t st = t0 + i * HOUR;
        size_t n = part_key_format(st, PART_HOUR, k, sizeof(k));
        assert_int_equal(part_key_parse(k, n, &g, &s), n);
        assert_int_equal(g, PART_HOUR);
        assert_true(s == st);
    }
    const char *bad[] = {
        "date=2025-02-29", "date=2025-13-01", "date=2025-09-02/hour=24",
        "date=2025-9-02", "date=2025-09-02x", "date=2025-09-02/hour=1",
        "Date=2025-09-02", "date=../../etc", "date=2025-09-0a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(part_key_parse(bad[i], strlen(bad[i]), &g, &s), 0);
    assert_int_equal(part_key_parse("date=2025-09-02/x", 17, &g, &s), 15);
    assert_int_equal(g, PART_DAY);

    assert_int_equal(
        part_key_from_path("/d/date=2020-01-01/p/raw/date=2025-09-02/hour=10/"
                           "n1-0-0000000001.ndjson", &g, &s), 0);
    assert_true(s == H0 && g == PART_HOUR);
    assert_int_equal(part_key_from_path("/d/p/raw/x", &g, &s), WEIR_ENOTFOUND);
    assert_int_equal(part_grain_parse("day"), PART_DAY);
    assert_int_equal(part_grain_parse("week"), -1);
}

static void test_segment_names(void **state)
{
    struct seg_name sn;
    const char *n = "plant-01-3-0000000042.ndjson.open";
    assert_int_equal(seg_name_parse(n, &sn), 0);
    assert_int_equal(sn.node_len, 8);
    assert_int_equal(sn.thread, 3);
    assert_int_equal(sn.seq, 42);
    assert_int_equal(sn.active, 1);
    assert_true(seg_name_is_node(n, "plant-01"));
    assert_false(seg_name_is_node(n, "plant"));
    assert_false(seg_name_is_node(n, "plant-01-3"));
    assert_int_equal(seg_name_parse("a-1-2.ndjson", &sn), 0);
    assert_int_equal(sn.active, 0);
    const char *bad[] = {"a-1.ndjson", "-1-2.ndjson", "a-x-2.ndjson",
                         "a-1-2.json", "a-1-2.ndjson.tmp.1.2", "a-1-.ndjson",
                         ".a-1-2.ndjson"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(seg_name_parse(bad[i], &sn), WEIR_EINVAL);
}

/* ---- writer ------------------------------------------------------------- */

static void test_append_seal(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    struct seg_writer *w = writer(&c);
    append_ok(w, H0, "{\"a\":1}");
    append_ok(w, H0, "{\"a\":2}");
    append_ok(w, H0 + HOUR, "{\"b\":1}");
    append_ok(w, H0, "");
    assert_int_equal(seg_append(w, H0 + 1, "x", 1), WEIR_EINVAL);
    assert_int_equal(seg_append(w, H0, "x\ny", 3), WEIR_EINVAL);
    assert_int_equal(seg_open_partitions(w), 2);
    assert_int_equal(seg_flush(w), 0);
    assert_int_equal(count_active(root), 2);
    char *t = partition_text(root, H0, NULL);
    assert_string_equal(t, "{\"a\":1}\n{\"a\":2}\n\n");
    free(t);
    assert_int_equal(seg_close_all(w), 0);
    assert_int_equal(count_active(root), 0);
    struct seg_stats st;
    seg_stats(w, &st);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.records_durable, 4);
    assert_int_equal(st.segments_sealed, 2);
    assert_int_equal(st.pending, 0);
    seg_writer_free(w);

    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 2);
    char want[PATH_MAX];
    snprintf(want, sizeof(want),
             "%s/p/raw/date=2025-09-02/hour=10/n1-0-0000000001.ndjson", root);
    assert_string_equal(l.v[0].path, want);
    assert_string_equal(l.v[1].name, "n1-0-0000000002.ndjson");
    assert_true(l.v[1].part_start == H0 + HOUR);
    assert_int_equal(l.v[1].size, 8);
    seg_list_release(&l);
    seg_writer_free(NULL);
}

static void test_names_unique_across_restarts(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    struct buf want = BUF_INIT(4096);
    buf_puts(&want, "");
    for (int r = 0; r < 5; r++) {
        struct seg_writer *w = writer(&c);
        char rec[32];
        snprintf(rec, sizeof(rec), "r%d", r);
        append_ok(w, H0, rec);
        buf_appendf(&want, "%s\n", rec);
        assert_int_equal(seg_close_all(w), 0);
        seg_writer_free(w);
    }
    /* a crash: flushed but never sealed, then a restart without recovery */
    struct seg_writer *w = writer(&c);
    append_ok(w, H0, "crashed");
    assert_int_equal(seg_flush(w), 0);
    seg_writer_free(w);
    buf_puts(&want, "crashed\n");
    /* the counter file lost: names still never collide */
    char seq[PATH_MAX];
    snprintf(seq, sizeof(seq), "%s/p/raw/_seq/n1-0", root);
    assert_int_equal(unlink(seq), 0);
    w = writer(&c);
    append_ok(w, H0, "after");
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);
    buf_puts(&want, "after\n");
    /* another thread's counter is its own */
    c.thread = 1;
    w = writer(&c);
    append_ok(w, H0, "t1");
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);

    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 8);
    for (size_t i = 1; i < l.n; i++)
        assert_true(strcmp(l.v[i - 1].name, l.v[i].name) < 0);
    assert_int_equal(l.v[5].active, 1);  /* the crashed one, untouched */
    assert_int_equal(l.v[7].sn.thread, 1);
    seg_list_release(&l);
    int nseg;
    char *t = partition_text(root, H0, &nseg);
    assert_int_equal(nseg, 8);
    buf_puts(&want, "t1\n");
    assert_string_equal(t, want.data);
    free(t);
    buf_release(&want);

    /* a damaged counter is refused with a message, not silently reset */
    FILE *f = fopen(seq, "w");
    fputs("garbage\n", f);
    fclose(f);
    struct weir_errmsg e;
    c.thread = 0;
    assert_int_equal(seg_writer_new(&c, &w, &e), WEIR_ECORRUPT);
    assert_non_null(strstr(e.text, "_seq/n1-0"));
}

static void test_roll(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.segment_bytes = 100;
    struct seg_writer *w = writer(&c);
    struct buf want = BUF_INIT(1024);
    for (int i = 0; i < 12; i++) {
        char rec[32];
        snprintf(rec, sizeof(rec), "record-%02d-abcdefghi", i); /* 19 + \n */
        append_ok(w, H0, rec);
        buf_appendf(&want, "%s\n", rec);
    }
    assert_int_equal(count_active(root), 0); /* the last 2 are in memory */
    assert_int_equal(seg_flush(w), 0);
    assert_int_equal(count_active(root), 1);
    assert_int_equal(seg_close_all(w), 0);
    struct seg_stats st;
    seg_stats(w, &st);
    assert_int_equal(st.segments_sealed, 3);
    seg_writer_free(w);
    int nseg;
    char *t = partition_text(root, H0, &nseg);
    assert_int_equal(nseg, 3);
    assert_string_equal(t, want.data);
    free(t);
    buf_release(&want);
    struct seg_list l;
    seg_list(root, "p", "raw", &l, NULL);
    assert_int_equal(l.v[0].size, 100);
    assert_int_equal(l.v[1].size, 100);
    assert_int_equal(l.v[2].size, 40);
    seg_list_release(&l);
}

static void test_group_commit(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.fsync_interval_ns = 100 * MS;
    c.fsync_bytes = 1000;
    struct seg_writer *w = writer(&c);
    struct seg_stats st;
    int64_t t0 = 1000 * MS;
    assert_int_equal(seg_tick(w, t0), 0);
    for (int i = 0; i < 5; i++)
        append_ok(w, H0, "123456789");
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 0);
    assert_int_equal(st.pending, 50);
    assert_int_equal(seg_pending(w), 50);
    assert_int_equal(seg_tick(w, t0 + 50 * MS), 0);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 0);
    assert_int_equal(seg_tick(w, t0 + 100 * MS), 0);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 1);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.records_durable, 5);
    assert_int_equal(seg_tick(w, t0 + 300 * MS), 0);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 1); /* nothing pending, no fsync */
    /* two partitions pending: one fdatasync each at the interval */
    append_ok(w, H0, "a");
    append_ok(w, H0 + HOUR, "b");
    assert_int_equal(seg_tick(w, t0 + 399 * MS), 0);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 1);
    assert_int_equal(seg_tick(w, t0 + 400 * MS), 0);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 3);
    /* the byte threshold fsyncs inside append, without a tick */
    char rec[100];
    memset(rec, 'x', 99);
    rec[99] = '\0';
    for (int i = 0; i < 9; i++)
        append_ok(w, H0, rec);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 3);
    assert_int_equal(st.pending, 900);
    append_ok(w, H0, rec);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 4);
    assert_int_equal(st.pending, 0);
    assert_int_equal(fsio_fault_calls(FSIO_OP_FDATASYNC), 4);
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);
}

static void test_always_and_never(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.sync = SEG_SYNC_ALWAYS;
    struct seg_writer *w = writer(&c);
    struct seg_stats st;
    for (int i = 0; i < 10; i++) {
        append_ok(w, H0, "durable");
        assert_int_equal(seg_pending(w), 0);
    }
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 10);
    assert_int_equal(st.records_durable, 10);
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);

    char dir2[PATH_MAX];
    snprintf(dir2, sizeof(dir2), "%s/never", root);
    cfg_init(&c, dir2);
    c.sync = SEG_SYNC_NEVER;
    c.fsync_interval_ns = 100 * MS;
    w = writer(&c);
    assert_int_equal(seg_tick(w, 0), 0);
    for (int i = 0; i < 10; i++)
        append_ok(w, H0, "lazy");
    assert_int_equal(seg_pending(w), 50);
    assert_int_equal(seg_tick(w, 100 * MS), 0);
    assert_int_equal(seg_pending(w), 0); /* handed to the OS ... */
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 0);      /* ... never fsynced */
    char *t = partition_text(dir2, H0, NULL);
    assert_int_equal(strlen(t), 50);
    free(t);
    assert_int_equal(seg_close_all(w), 0);
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 1);      /* sealing always fsyncs */
    seg_writer_free(w);
    assert_string_equal(seg_sync_name(SEG_SYNC_NEVER), "never");
    assert_int_equal(seg_sync_parse("always"), SEG_SYNC_ALWAYS);
    assert_int_equal(seg_sync_parse("sometimes"), -1);
}

static void test_open_partitions_and_seal_before(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.max_open_partitions = 2;
    struct seg_writer *w = writer(&c);
    append_ok(w, H0 + HOUR, "h1");
    append_ok(w, H0, "h0");
    append_ok(w, H0 + 2 * HOUR, "h2"); /* full: the oldest (H0) is sealed */
    assert_int_equal(seg_open_partitions(w), 2);
    struct seg_list l;
    seg_list(root, "p", "raw", &l, NULL);
    assert_int_equal(l.n, 2);
    assert_true(l.v[0].part_start == H0 && !l.v[0].active);
    /* H1 was handed to the OS when records moved on to another hour */
    assert_true(l.v[1].part_start == H0 + HOUR && l.v[1].active);
    seg_list_release(&l);
    append_ok(w, H0, "late"); /* reopens H0 in a new segment, seals H1 */
    assert_int_equal(seg_flush(w), 0);
    int n;
    char *t = partition_text(root, H0, &n);
    assert_string_equal(t, "h0\nlate\n");
    assert_int_equal(n, 2);
    free(t);
    /* hour close: everything that ended by the cutoff */
    assert_int_equal(seg_seal_before(w, H0 + HOUR), 0);
    assert_int_equal(seg_open_partitions(w), 1);
    assert_int_equal(count_active(root), 1);
    assert_int_equal(seg_seal_before(w, H0 + 3 * HOUR - 1), 0);
    assert_int_equal(seg_open_partitions(w), 1);
    assert_int_equal(seg_close_all(w), 0);
    assert_int_equal(count_active(root), 0);
    seg_writer_free(w);
}

static void test_day_grain_and_lister(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.grain = PART_DAY;
    struct seg_writer *w = writer(&c);
    int64_t d0;
    part_start(H0, PART_DAY, &d0);
    append_ok(w, d0, "day");
    assert_int_equal(seg_append(w, H0, "x", 1), WEIR_EINVAL); /* an hour start */
    assert_int_equal(seg_flush(w), 0);
    /* noise the lister must skip */
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/p/raw/date=2025-09-02/junk.txt", root);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(p, sizeof(p), "%s/p/raw/date=2025-09-02/n1-0-1.ndjson.tmp.1.2", root);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(p, sizeof(p), "%s/p/raw/date=2025-13-01", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/p/raw/date=2025-13-01/n1-0-9.ndjson", root);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(p, sizeof(p), "%s/p/raw/n1-0-8.ndjson", root);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    /* an hour directory beside day files, another node's active segment */
    snprintf(p, sizeof(p), "%s/p/raw/date=2025-09-02/hour=07", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/p/raw/date=2025-09-02/hour=07/n2-4-7.ndjson.open",
             root);
    FILE *f = fopen(p, "w");
    fputs("{\"x\":1}\n{\"x\":2}\n{\"x\"", f);
    fclose(f);

    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.v[0].grain, PART_DAY);
    assert_true(l.v[0].part_start == d0);
    assert_int_equal(l.v[0].active, 1);
    assert_int_equal(l.v[1].grain, PART_HOUR);
    assert_true(l.v[1].part_start == d0 + 7 * HOUR);
    assert_int_equal(l.v[1].sn.thread, 4);
    uint64_t len;
    assert_int_equal(seg_complete_len(l.v[1].path, &len), 0);
    assert_int_equal(len, 16); /* up to the last complete line */
    assert_int_equal(l.v[1].size, 20);
    seg_list_release(&l);
    assert_int_equal(seg_list(root, "p", "quarantine", &l, NULL), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(seg_list(root, "..", "raw", &l, NULL), WEIR_EINVAL);
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);

    /* complete length over a chunk boundary and for a file without '\n' */
    snprintf(p, sizeof(p), "%s/big", root);
    f = fopen(p, "w");
    fputc('\n', f);
    for (int i = 0; i < 100000; i++)
        fputc('z', f);
    fclose(f);
    assert_int_equal(seg_complete_len(p, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(truncate(p, 0), 0);
    assert_int_equal(seg_complete_len(p, &len), 0);
    assert_int_equal(len, 0);
}

static void test_paths_stay_inside(void **state)
{
    struct seg_config c;
    struct seg_writer *w;
    struct weir_errmsg e;
    const char *bad[] = {"..", ".", "../x", "a/b", "", "/abs", ".hidden"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg_init(&c, root);
        c.pipeline = bad[i];
        assert_int_equal(seg_writer_new(&c, &w, &e), WEIR_EINVAL);
        cfg_init(&c, root);
        c.node = bad[i];
        assert_int_equal(seg_writer_new(&c, &w, &e), WEIR_EINVAL);
        cfg_init(&c, root);
        c.kind = bad[i];
        assert_int_equal(seg_writer_new(&c, &w, &e), WEIR_EINVAL);
    }
    /* whatever the event time, files land under data_dir/p/raw/date=... */
    char data[PATH_MAX];
    snprintf(data, sizeof(data), "%s/d", root);
    cfg_init(&c, data);
    w = writer(&c);
    int64_t times[] = {INT64_C(-5000000000000000000), -1, 0, H0,
                       INT64_C(9000000000000000000)};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t s;
        assert_int_equal(part_start(times[i], PART_HOUR, &s), 0);
        append_ok(w, s, "t");
    }
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);
    struct seg_list l;
    assert_int_equal(seg_list(data, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 5);
    char prefix[PATH_MAX], rdata[PATH_MAX];
    assert_non_null(realpath(data, rdata));
    int n = snprintf(prefix, sizeof(prefix), "%s/p/raw/date=", rdata);
    for (size_t i = 0; i < l.n; i++) {
        char real[PATH_MAX];
        assert_non_null(realpath(l.v[i].path, real));
        assert_memory_equal(real, prefix, (size_t)n);
        assert_null(strstr(real + n, ".."));
    }
    seg_list_release(&l);
    /* nothing was created beside data_dir */
    struct stat sb;
    assert_int_equal(stat(root, &sb), 0);
    char other[PATH_MAX];
    snprintf(other, sizeof(other), "%s/p", root);
    assert_int_equal(stat(other, &sb), -1);
}

/* ---- disk failures ------------------------------------------------------ */

#define NREC 60

struct fault_case {
    enum fsio_op op;
    int err;
    size_t short_bytes;
};

/* Write NREC records over two hours with ticks and an hour close, with
 * fault f armed after `after` calls (f NULL: no fault). Each time the
 * writer reports a failure: no file may hold a partial line; then the fault
 * clears, seg_flush must succeed and the run goes on (re-appending a record
 * that was not taken). In the end both hours hold every record once, in
 * order. Returns the calls of f->op made (for the clean run). */
static unsigned long run_with_fault(enum seg_sync sync,
                                    const struct fault_case *f,
                                    unsigned long after, int *failures)
{
    static int run;
    char data[PATH_MAX];
    snprintf(data, sizeof(data), "%s/run%d", root, run++);
    struct seg_config c;
    cfg_init(&c, data);
    c.sync = sync;
    c.segment_bytes = 300;
    c.fsync_bytes = 200;
    c.max_pending = 2048;
    c.fsync_interval_ns = 100 * MS;
    struct seg_writer *w = writer(&c);
    fsio_fault_reset();
    if (f)
        fsio_fault_set(f->op, after, f->err, f->short_bytes);
    struct buf want0 = BUF_INIT(1 << 20), want1 = BUF_INIT(1 << 20);
    int64_t now = 0;
    *failures = 0;
    for (int i = 0; i <= NREC; i++) {
        int rc;
        char rec[64];
        int64_t start = (i % 3 == 0) ? H0 + HOUR : H0;
        snprintf(rec, sizeof(rec), "{\"i\":%d,\"pad\":\"abcdefghijkl\"}", i);
        if (i == NREC) {
            rc = seg_close_all(w);
        } else if (i % 7 == 6) {
            now += 60 * MS;
            rc = (i == 34) ? seg_seal_before(w, H0 + HOUR) : seg_tick(w, now);
        } else {
            rc = seg_append(w, start, rec, strlen(rec));
        }
        if (rc) {
            (*failures)++;
            assert_true(rc == WEIR_ENOSPC || rc == WEIR_EIO ||
                        rc == WEIR_EAGAIN);
            if (f)
                fsio_fault_clear(f->op);
            assert_no_torn(data);
            if (i == NREC) {
                rc = seg_close_all(w);
            } else {
                assert_int_equal(seg_flush(w), 0);
                if (i % 7 != 6 && !seg_taken(rc))
                    rc = seg_append(w, start, rec, strlen(rec));
                else
                    rc = 0;
            }
            assert_int_equal(rc, 0);
        }
        if (i < NREC && i % 7 != 6) {
            struct buf *b = start == H0 ? &want0 : &want1;
            buf_puts(b, rec);
            buf_putc(b, '\n');
        }
    }
    unsigned long calls = f ? fsio_fault_calls(f->op) : 0;
    fsio_fault_clear(f ? f->op : FSIO_OP_OPEN);
    assert_int_equal(count_active(data), 0);
    struct seg_stats st;
    seg_stats(w, &st);
    assert_int_equal(st.records, st.records_durable);
    assert_int_equal(st.pending, 0);
    seg_writer_free(w);
    char *t0 = partition_text(data, H0, NULL);
    char *t1 = partition_text(data, H0 + HOUR, NULL);
    assert_string_equal(t0, want0.data);
    assert_string_equal(t1, want1.data);
    free(t0);
    free(t1);
    buf_release(&want0);
    buf_release(&want1);
    /* no temp file of the counter left behind */
    char seqdir[PATH_MAX];
    assert_true(snprintf(seqdir, sizeof(seqdir), "%s/p/raw/_seq", data) > 0);
    DIR *d = opendir(seqdir);
    struct dirent *de;
    while ((de = readdir(d)))
        assert_false(fsio_is_tmp_name(de->d_name));
    closedir(d);
    return calls;
}

static int fake_sync(int fd)
{
    return 0;
}

/* The sweeps test the logic around each call, not the disk: real fsyncs
 * would make the thousands of runs take minutes. The injector counts and
 * fails calls before the table, so it sees every one. */
static void sweep(enum seg_sync sync, const struct fault_case *cases,
                  size_t ncases)
{
    struct fsio_sys sys;
    fsio_sys_get(&sys);
    sys.fsync = fake_sync;
    sys.fdatasync = fake_sync;
    fsio_sys_set(&sys);
    for (size_t k = 0; k < ncases; k++) {
        int failures;
        unsigned long n = run_with_fault(sync, &cases[k], ULONG_MAX / 2,
                                         &failures);
        assert_int_equal(failures, 0);
        /* Long runs of calls repeat the same pattern (always: one pwrite
         * and one fdatasync per record): every other point is enough. */
        unsigned long stride = n > 30 ? 2 : 1, failed_runs = 0, runs = 0;
        for (unsigned long after = 0; after < n; after += stride) {
            run_with_fault(sync, &cases[k], after, &failures);
            failed_runs += failures > 0;
            runs++;
        }
        /* every call point of the op was hit and reported */
        if (getenv("WEIR_TEST_VERBOSE") || failed_runs != runs)
            fprintf(stderr, "%s %s: %lu of %lu faults reported (%lu calls)\n",
                    seg_sync_name(sync), fsio_op_name(cases[k].op),
                    failed_runs, runs, n);
        assert_true(n > 0);
        assert_int_equal(failed_runs, runs);
    }
    fsio_sys_set(NULL);
}

static const struct fault_case write_cases[] = {
    {FSIO_OP_PWRITE, ENOSPC, 0},
    {FSIO_OP_PWRITE, ENOSPC, 5},   /* part of the bytes fit, then full */
    {FSIO_OP_PWRITE, EIO, 0},
    {FSIO_OP_FDATASYNC, EIO, 0},
    {FSIO_OP_FDATASYNC, ENOSPC, 0},
    {FSIO_OP_OPEN, ENOSPC, 0},     /* segment and counter files */
    {FSIO_OP_MKDIR, ENOSPC, 0},
    {FSIO_OP_FSYNC, EIO, 0},       /* directories and the counter */
    {FSIO_OP_RENAME, EIO, 0},      /* seal and counter */
    {FSIO_OP_WRITE, ENOSPC, 0},    /* the counter file */
};

static void test_faults_group(void **state)
{
    sweep(SEG_SYNC_GROUP, write_cases, sizeof(write_cases) / sizeof(write_cases[0]));
}

static void test_faults_always(void **state)
{
    sweep(SEG_SYNC_ALWAYS, write_cases, sizeof(write_cases) / sizeof(write_cases[0]));
}

static void test_faults_never(void **state)
{
    sweep(SEG_SYNC_NEVER, write_cases, 3);
}

/* A partial write whose cleanup (ftruncate) fails too: the garbage is
 * overwritten by the retry, since it rewrites the same bytes in place. */
static void test_fault_truncate_fails(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.sync = SEG_SYNC_ALWAYS;
    struct seg_writer *w = writer(&c);
    append_ok(w, H0, "first-record");
    fsio_fault_set(FSIO_OP_PWRITE, 0, ENOSPC, 4);
    fsio_fault_set(FSIO_OP_FTRUNCATE, 0, EIO, 0);
    assert_int_equal(seg_append(w, H0, "second-record", 13), WEIR_ENOSPC);
    assert_int_equal(seg_error(w), WEIR_ENOSPC);
    fsio_fault_clear(FSIO_OP_PWRITE);
    fsio_fault_clear(FSIO_OP_FTRUNCATE);
    char *t = partition_text(root, H0, NULL);
    assert_string_equal(t, "first-record\nseco"); /* until the retry */
    free(t);
    /* a tick before the interval does not retry, one after does */
    assert_int_equal(seg_tick(w, 1), WEIR_ENOSPC);
    assert_int_equal(seg_tick(w, 200 * MS), 0);
    assert_int_equal(seg_error(w), 0);
    t = partition_text(root, H0, NULL);
    assert_string_equal(t, "first-record\nsecond-record\n");
    free(t);
    /* fsync failure: the file is cut back to what was durable */
    fsio_fault_set(FSIO_OP_FDATASYNC, 0, EIO, 0);
    assert_int_equal(seg_append(w, H0, "third", 5), WEIR_EIO);
    t = partition_text(root, H0, NULL);
    assert_string_equal(t, "first-record\nsecond-record\n");
    free(t);
    assert_int_equal(seg_flush(w), WEIR_EIO); /* still failing */
    fsio_fault_clear(FSIO_OP_FDATASYNC);
    assert_int_equal(seg_close_all(w), 0);
    t = partition_text(root, H0, NULL);
    assert_string_equal(t, "first-record\nsecond-record\nthird\n");
    free(t);
    seg_writer_free(w);
}

/* The seal's rename happened but its directory fsync failed: the sealed
 * file must not take more records; they go to a new segment. */
static void test_sealed_stays_sealed(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    struct seg_writer *w = writer(&c);
    append_ok(w, H0, "a");
    assert_int_equal(seg_flush(w), 0);
    fsio_fault_set(FSIO_OP_FSYNC, 0, EIO, 0);
    assert_int_equal(seg_seal_before(w, H0 + HOUR), WEIR_EIO);
    fsio_fault_clear(FSIO_OP_FSYNC);
    assert_int_equal(seg_append(w, H0, "b", 1), WEIR_EIO); /* taken */
    assert_int_equal(seg_flush(w), 0);
    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_false(l.v[0].active);
    assert_int_equal(l.v[0].size, 2);
    assert_true(l.v[1].active);
    assert_int_equal(l.v[1].size, 2);
    seg_list_release(&l);
    assert_int_equal(seg_close_all(w), 0);
    char *t = partition_text(root, H0, NULL);
    assert_string_equal(t, "a\nb\n");
    free(t);
    seg_writer_free(w);
}

/* Bytes reach the OS in the order records were appended, across hours,
 * so a process crash can only lose a suffix of what was sent. */
static void test_write_order_across_hours(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    struct seg_writer *w = writer(&c);
    append_ok(w, H0, "a1");
    append_ok(w, H0, "a2");
    char *t = partition_text(root, H0, NULL);
    assert_string_equal(t, ""); /* one hour: buffered as usual */
    free(t);
    append_ok(w, H0 + HOUR, "b1");
    t = partition_text(root, H0, NULL);
    assert_string_equal(t, "a1\na2\n"); /* written before b1 was taken */
    free(t);
    append_ok(w, H0, "a3");
    t = partition_text(root, H0 + HOUR, NULL);
    assert_string_equal(t, "b1\n");
    free(t);
    struct seg_stats st;
    seg_stats(w, &st);
    assert_int_equal(st.fsyncs, 0); /* written, not fsynced */
    assert_int_equal(seg_close_all(w), 0);
    seg_writer_free(w);
}

/* A full disk that stays full: the buffer fills to max_pending, then
 * records are refused (not taken) and memory stays bounded. */
static void test_backpressure_bound(void **state)
{
    struct seg_config c;
    cfg_init(&c, root);
    c.max_pending = 100;
    c.fsync_bytes = 50;
    struct seg_writer *w = writer(&c);
    fsio_fault_set(FSIO_OP_PWRITE, 0, ENOSPC, 0);
    int taken = 0, rc = 0;
    for (int i = 0; i < 50; i++) {
        rc = seg_append(w, H0, "0123456789", 10);
        if (!seg_taken(rc))
            break;
        taken++;
    }
    assert_int_equal(rc, WEIR_EAGAIN);
    assert_int_equal(taken, 9);
    assert_true(seg_pending(w) <= 100);
    assert_int_equal(seg_append(w, H0, "0123456789", 10), WEIR_EAGAIN);
    assert_int_equal(seg_flush(w), WEIR_ENOSPC);
    fsio_fault_clear(FSIO_OP_PWRITE);
    assert_int_equal(seg_flush(w), 0);
    assert_int_equal(seg_pending(w), 0);
    append_ok(w, H0, "0123456789");
    assert_int_equal(seg_close_all(w), 0);
    struct seg_stats st;
    seg_stats(w, &st);
    assert_int_equal(st.records, 10);
    assert_int_equal(st.records_durable, 10);
    assert_true(st.write_errors >= 2);
    seg_writer_free(w);
    /* a record longer than max_pending can never be taken */
    w = writer(&c);
    char big[200];
    memset(big, 'b', sizeof(big));
    assert_int_equal(seg_append(w, H0, big, sizeof(big)), WEIR_EINVAL);
    seg_writer_free(w);
}

int main(void)
{
    log_setup(LOG_ERROR, LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_keys),
        cmocka_unit_test(test_segment_names),
        cmocka_unit_test_setup_teardown(test_append_seal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_unique_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_always_and_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_partitions_and_seal_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_day_grain_and_lister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths_stay_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_truncate_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_stays_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_order_across_hours, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
