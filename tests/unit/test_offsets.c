/*
 * test_offsets.c - Kafka offset checkpoints (store/offsets.h): the text
 * format and its refusals, capture from real segment writers, the maximum
 * over several nodes' checkpoints, and the rollback that cuts segments
 * back to a checkpoint after a crash, and retired checkpoints (positions
 * only). Also seg_marks underneath.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/wtime.h"
#include "store/offsets.h"
#include "store/partition.h"
#include "store/segment.h"

#include "tmpdir.h"

/* 2025-09-02T10:00:00Z */
#define H0 (INT64_C(1756807200) * WTIME_NS_PER_S)
#define HOUR WTIME_NS_PER_HOUR

static char *root;

static int setup(void **state)
{
    root = tmpdir_make(NULL, "off");
    return root ? 0 : -1;
}

static int teardown(void **state)
{
    return tmpdir_remove(root);
}

static struct seg_writer *writer(const char *kind, const char *node, unsigned thread,
                                 uint64_t segment_bytes)
{
    struct seg_config c = {
        .data_dir = root, .pipeline = "p", .kind = kind, .node = node,
        .thread = thread, .grain = PART_HOUR, .sync = SEG_SYNC_GROUP,
        .segment_bytes = segment_bytes,
    };
    struct seg_writer *w = NULL;
    struct weir_errmsg e;
    assert_int_equal(seg_writer_new(&c, &w, &e), 0);
    return w;
}

static void append(struct seg_writer *w, int64_t start, const char *rec)
{
    assert_int_equal(seg_append(w, start, rec, strlen(rec)), 0);
}

/* Every raw line of the pipeline, in file order, joined by '|'. */
static void lines(const char *kind, char *out, size_t cap)
{
    struct seg_list l = {0};
    struct weir_errmsg e;
    assert_int_equal(seg_list(root, "p", kind, &l, &e), 0);
    out[0] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct buf b = BUF_INIT(1 << 20);
        assert_int_equal(fsio_read_file(l.v[i].path, &b), 0);
        for (size_t j = 0; j < b.len; j++) {
            char c = b.data[j] == '\n' ? '|' : b.data[j];
            if (n + 1 < cap)
                out[n++] = c;
        }
        buf_release(&b);
    }
    out[n] = '\0';
    seg_list_release(&l);
}

/* How many raw segments of the pipeline are settled (offsets_settled). */
static int settled_count(void)
{
    struct seg_list l = {0};
    struct offsets_settle st;
    struct weir_errmsg e;
    assert_int_equal(seg_list(root, "p", "raw", &l, &e), 0);
    assert_int_equal(offsets_settle_load(root, "p", &st, &e), 0);
    int n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += offsets_settled(&st, l.v[i].name, l.v[i].size);
    offsets_settle_release(&st);
    seg_list_release(&l);
    return n;
}

static void test_format_parse(void **state)
{
    struct offsets o, back;
    offsets_init(&o, 3);
    assert_int_equal(offsets_set(&o, "telemetry", 0, 100), 0);
    assert_int_equal(offsets_set(&o, "telemetry.v2", 7, 5), 0);
    assert_int_equal(offsets_set(&o, "telemetry", 0, 120), 0);
    assert_int_equal(offsets_set(&o, "bad topic", 0, 1), WEIR_EINVAL);
    assert_int_equal(offsets_set(&o, "t", -1, 1), WEIR_EINVAL);
    o.seq_next[OFFSETS_RAW] = 12;
    o.seq_next[OFFSETS_QUARANTINE] = 4;
    struct buf b = BUF_INIT(1 << 16);
    assert_int_equal(offsets_format(&o, "plant-a", &b), 0);
    assert_string_equal(b.data ? b.data : "",
                        "weir offsets 1\nnode plant-a\nthread 3\nseq raw 12\n"
                        "seq quarantine 4\npos telemetry 0 120\npos telemetry.v2 7 5\nend\n");
    offsets_init(&back, 0);
    char why[160];
    assert_int_equal(offsets_parse(b.data, b.len, &back, why, sizeof why), 0);
    assert_int_equal(back.thread, 3);
    assert_int_equal(back.seq_next[OFFSETS_RAW], 12);
    assert_int_equal(offsets_get(&back, "telemetry", 0), 120);
    assert_int_equal(offsets_get(&back, "telemetry.v2", 7), 5);
    assert_int_equal(offsets_get(&back, "telemetry", 1), -1);
    offsets_release(&back);

    /* Refused: cut files, missing seq lines, junk, other versions. */
    static const char *const bad[] = {
        "weir offsets 1\nseq raw 1\nseq quarantine 1\n",              /* no end */
        "weir offsets 1\nseq raw 1\nseq quarantine 1\nend",           /* no newline */
        "weir offsets 1\nseq raw 1\nend\n",                           /* no seq quarantine */
        "weir offsets 2\nseq raw 1\nseq quarantine 1\nend\n",
        "weir offsets 1\nseq raw 1\nseq quarantine 1\npos t x 1\nend\n",
        "weir offsets 1\nseq raw 1\nseq quarantine 1\npos t/x 1 1\nend\n",
        "weir offsets 1\nseq raw 1\nseq quarantine 1\nmark raw 1\nend\n",
        "weir offsets 1\nseq raw 1\nseq quarantine 1\nend\npos t 1 1\n",
        "weir offsets 1\nseq raw 99999999999999999999\nseq quarantine 1\nend\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        offsets_init(&back, 0);
        assert_int_equal(offsets_parse(bad[i], strlen(bad[i]), &back, why, sizeof why),
                         WEIR_ECORRUPT);
        offsets_release(&back);
    }
    buf_release(&b);
    offsets_release(&o);
}

static void test_write_load_max(void **state)
{
    struct weir_errmsg e;
    struct offsets a, b, max;
    offsets_init(&a, 0);
    offsets_init(&b, 1);
    offsets_init(&max, 0);
    /* No checkpoints at all: nothing, no error. */
    assert_int_equal(offsets_load_max(root, "p", &max, &e), 0);
    assert_int_equal(max.npos, 0);
    assert_int_equal(offsets_load(root, "p", "n1", 0, &a, &e), WEIR_ENOTFOUND);

    a.seq_next[0] = a.seq_next[1] = 1;
    b.seq_next[0] = b.seq_next[1] = 1;
    offsets_set(&a, "t", 0, 100);
    offsets_set(&a, "t", 1, 50);
    offsets_set(&b, "t", 1, 70);
    offsets_set(&b, "u", 0, 9);
    assert_int_equal(offsets_write(root, "p", "n1", &a, &e), 0);
    assert_int_equal(offsets_write(root, "p", "n-2", &b, &e), 0);
    assert_int_equal(offsets_load_max(root, "p", &max, &e), 0);
    assert_int_equal(offsets_get(&max, "t", 0), 100);
    assert_int_equal(offsets_get(&max, "t", 1), 70);
    assert_int_equal(offsets_get(&max, "u", 0), 9);

    struct offsets back;
    offsets_init(&back, 9);
    assert_int_equal(offsets_load(root, "p", "n-2", 1, &back, &e), 0);
    assert_int_equal(back.thread, 1);
    assert_int_equal(offsets_get(&back, "t", 1), 70);
    offsets_release(&back);

    /* A damaged checkpoint is an error, never a guess. */
    char path[256];
    snprintf(path, sizeof path, "%s/p/_offsets/n1-0", root);
    FILE *f = fopen(path, "w");
    fputs("weir offsets 1\nseq raw 1\n", f);
    fclose(f);
    offsets_release(&max);
    offsets_init(&max, 0);
    assert_int_equal(offsets_load_max(root, "p", &max, &e), WEIR_ECORRUPT);
    assert_non_null(strstr(e.text, "n1-0"));
    offsets_release(&a);
    offsets_release(&b);
    offsets_release(&max);
}

static void test_marks_and_rollback(void **state)
{
    struct weir_errmsg e;
    struct seg_writer *raw = writer("raw", "n1", 0, 0);
    struct seg_writer *quar = writer("quarantine", "n1", 0, 0);
    struct seg_writer *other = writer("raw", "n2", 0, 0); /* another node */
    struct seg_writer *other_thread = writer("raw", "n1", 1, 0);

    /* Batch 1, checkpointed. */
    append(raw, H0, "{\"a\":1}");
    append(raw, H0 + HOUR, "{\"a\":2}");
    append(quar, H0, "{\"q\":1}");
    assert_int_equal(seg_flush(raw), 0);
    assert_int_equal(seg_flush(quar), 0);
    struct offsets ck;
    offsets_init(&ck, 0);
    assert_int_equal(offsets_capture(&ck, raw, quar), 0);
    assert_int_equal(ck.nmarks[OFFSETS_RAW], 2);
    assert_int_equal(ck.nmarks[OFFSETS_QUARANTINE], 1);
    assert_int_equal(ck.marks[OFFSETS_RAW][0].len, 8);
    offsets_set(&ck, "t", 0, 3);
    assert_int_equal(offsets_write(root, "p", "n1", &ck, &e), 0);

    /* Batch 2 lands, part of it in a new hour and a sealed one, and the
     * process dies before its checkpoint. */
    append(raw, H0, "{\"a\":3}");
    append(raw, H0 + 2 * HOUR, "{\"a\":4}");
    append(quar, H0, "{\"q\":2}");
    assert_int_equal(seg_seal_before(raw, H0 + HOUR), 0); /* seals hour H0 */
    assert_int_equal(seg_flush(raw), 0);
    assert_int_equal(seg_flush(quar), 0);
    append(other, H0, "{\"other\":1}");
    append(other_thread, H0, "{\"thread1\":1}");
    assert_int_equal(seg_flush(other), 0);
    assert_int_equal(seg_flush(other_thread), 0);
    seg_writer_free(raw);
    seg_writer_free(quar);
    seg_writer_free(other);
    seg_writer_free(other_thread);

    char got[512];
    lines("raw", got, sizeof got);
    assert_non_null(strstr(got, "{\"a\":3}"));
    assert_non_null(strstr(got, "{\"a\":4}"));

    /* Compaction must not absorb what the rollback will cut. */
    /* Of n1-0: hour H0 grew past its mark and H0+2h is new: unsettled;
     * H0+1h is as marked. n1-1 and n2 have no checkpoint of their own. */
    assert_int_equal(settled_count(), 3);

    struct offsets_rollback_stats st = {0};
    assert_int_equal(offsets_rollback(root, "p", "n1", &st, &e), 0);
    assert_int_equal(settled_count(), 4); /* H0 cut: settled; H0+2h gone */
    assert_int_equal(st.checkpoints, 1);
    assert_int_equal(st.files_cut, 2);     /* raw hour H0 (sealed), quarantine */
    assert_int_equal(st.files_removed, 1); /* raw hour H0+2h, opened after */
    assert_int_equal(st.bytes_dropped, 24);
    lines("raw", got, sizeof got);
    assert_string_equal(got, "{\"a\":1}|{\"thread1\":1}|{\"other\":1}|{\"a\":2}|");
    lines("quarantine", got, sizeof got);
    assert_string_equal(got, "{\"q\":1}|");

    /* Idempotent. */
    memset(&st, 0, sizeof st);
    assert_int_equal(offsets_rollback(root, "p", "n1", &st, &e), 0);
    assert_int_equal(st.files_cut + st.files_removed, 0);

    /* A new writer after the rollback starts at or past seq_next: its files
     * are never taken for the crashed batch's. */
    raw = writer("raw", "n1", 0, 0);
    append(raw, H0, "{\"a\":5}");
    assert_int_equal(seg_flush(raw), 0);
    struct seg_mark m;
    uint64_t next;
    assert_int_equal(seg_marks(raw, &m, 1, &next), 1);
    assert_true(m.seq >= ck.seq_next[OFFSETS_RAW]);
    assert_int_equal(m.len, 8);
    assert_int_equal(seg_close_all(raw), 0);
    seg_writer_free(raw);
    offsets_release(&ck);
}

static void test_rollback_without_checkpoint(void **state)
{
    struct weir_errmsg e;
    struct seg_writer *raw = writer("raw", "n1", 0, 0);
    append(raw, H0, "{\"a\":1}");
    assert_int_equal(seg_close_all(raw), 0);
    seg_writer_free(raw);
    struct offsets_rollback_stats st = {0};
    assert_int_equal(offsets_rollback(root, "p", "n1", &st, &e), 0);
    assert_int_equal(st.checkpoints, 0);
    char got[128];
    lines("raw", got, sizeof got);
    assert_string_equal(got, "{\"a\":1}|");
}

/* A pipeline that stops reading Kafka, or a consumer that moves to another
 * worker: the old checkpoint keeps its positions and cuts nothing. */
static void test_retire(void **state)
{
    struct weir_errmsg e;
    struct offsets ck;
    offsets_init(&ck, 0);
    ck.seq_next[0] = ck.seq_next[1] = 1; /* every later file looks "new" */
    offsets_set(&ck, "t", 0, 42);
    assert_int_equal(offsets_write(root, "p", "n1", &ck, &e), 0);
    offsets_release(&ck);
    offsets_init(&ck, 1);
    ck.seq_next[0] = ck.seq_next[1] = 1;
    offsets_set(&ck, "t", 1, 7);
    assert_int_equal(offsets_write(root, "p", "n1", &ck, &e), 0);
    offsets_release(&ck);

    /* TCP records land in (n1, 0) afterwards. */
    struct seg_writer *raw = writer("raw", "n1", 0, 0);
    append(raw, H0, "{\"tcp\":1}");
    assert_int_equal(seg_close_all(raw), 0);
    seg_writer_free(raw);

    unsigned long n = 0;
    assert_int_equal(offsets_retire(root, "p", "n1", 1, &n, &e), 0);
    assert_int_equal(n, 1); /* thread 0 only */
    struct offsets_rollback_stats st = {0};
    assert_int_equal(offsets_rollback(root, "p", "n1", &st, &e), 0);
    assert_int_equal(st.checkpoints, 1); /* thread 1's, which has no files */
    assert_int_equal(st.files_removed, 0);
    char got[128];
    lines("raw", got, sizeof got);
    assert_string_equal(got, "{\"tcp\":1}|");

    struct offsets max;
    offsets_init(&max, 0);
    assert_int_equal(offsets_load_max(root, "p", &max, &e), 0);
    assert_int_equal(offsets_get(&max, "t", 0), 42);
    assert_int_equal(offsets_get(&max, "t", 1), 7);
    offsets_release(&max);

    struct buf b = BUF_INIT(4096);
    char path[256];
    snprintf(path, sizeof path, "%s/p/_offsets/n1-0", root);
    assert_int_equal(fsio_read_file(path, &b), 0);
    assert_non_null(strstr(b.data, "\nretired\n"));
    assert_null(strstr(b.data, "\nseq "));
    buf_release(&b);

    /* Retiring all, and again: nothing left to retire. */
    n = 0;
    assert_int_equal(offsets_retire(root, "p", "n1", -1, &n, &e), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(offsets_retire(root, "p", "n1", -1, &n, &e), 0);
    assert_int_equal(n, 0);

    char why[160];
    const char *bad = "weir offsets 1\nretired\nseq raw 1\nend\n";
    offsets_init(&ck, 0);
    assert_int_equal(offsets_parse(bad, strlen(bad), &ck, why, sizeof why), WEIR_ECORRUPT);
    offsets_release(&ck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_load_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marks_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_without_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
