/*
 * test_recover.c - start-up recovery: torn tails cut into quarantine, NUL
 * blocks, empty and other nodes' segments, temp files, failures midway,
 * and the node lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/log.h"
#include "core/wtime.h"
#include "store/quarantine.h"
#include "store/recover.h"
#include "store/segment.h"

#include "tmpdir.h"

#define H0 (INT64_C(1756807200) * WTIME_NS_PER_S) /* 2025-09-02T10:00Z */

static char *root;

static int setup(void **state)
{
    root = tmpdir_make(NULL, "rec");
    if (!root)
        return -1;
    fsio_fault_reset();
    return 0;
}

static int teardown(void **state)
{
    fsio_fault_off();
    return tmpdir_remove(root);
}

static void put_file(const char *path, const void *data, size_t n)
{
    assert_int_equal(tmpdir_put(path, data, n), 0);
}

/* A collecting on_torn. */
struct pieces {
    int n;
    char got[8][64];
    size_t len[8];
    uint64_t off[8];
    int fail;
};

static int collect(void *ctx, const char *path, uint64_t off, const void *b,
                   size_t n)
{
    struct pieces *p = ctx;
    if (p->fail)
        return p->fail;
    if (p->n < 8) {
        size_t k = n < 63 ? n : 63;
        memcpy(p->got[p->n], b, k);
        p->len[p->n] = n;
        p->off[p->n] = off;
    }
    p->n++;
    return 0;
}

#define RAW10 "p/raw/date=2025-09-02/hour=10/"

static void test_torn_tail_to_quarantine(void **state)
{
    /* a writer that crashed after its last flush */
    struct seg_config c = {.data_dir = root, .pipeline = "p", .kind = "raw",
                           .node = "n1"};
    struct seg_writer *w;
    assert_int_equal(seg_writer_new(&c, &w, NULL), 0);
    assert_int_equal(seg_append(w, H0, "r1", 2), 0);
    assert_int_equal(seg_append(w, H0, "r2", 2), 0);
    assert_int_equal(seg_append(w, H0, "r3", 2), 0);
    assert_int_equal(seg_flush(w), 0);
    seg_writer_free(w);
    const char *active = tmpdir_at(RAW10 "n1-0-0000000001.ndjson.open");
    FILE *f = fopen(active, "ab");
    fputs("{\"partial", f); /* the torn last line */
    fclose(f);
    /* another node's active segment, and temp files of both nodes */
    put_file(tmpdir_at(RAW10 "n2-0-0000000001.ndjson.open"), "x\ny", 3);
    put_file(tmpdir_at("p/raw/_seq/n1-0.tmp.123.4"), "7", 1);
    put_file(tmpdir_at("p/raw/_seq/n2-0.tmp.1.1"), "7", 1);
    /* a quarantine segment of ours, torn too */
    put_file(tmpdir_at("p/quarantine/date=2025-09-02/hour=09/n1-0-0000000005.ndjson.open"),
             "{\"a\":1}\n{\"b\"", 12);

    struct quar_writer *q;
    assert_int_equal(quar_writer_new(&c, &q, NULL), 0);
    struct recover_stats st = {0};
    struct weir_errmsg e;
    assert_int_equal(recover_pipeline(root, "p", "n1",
                                      recover_torn_to_quarantine, q, &st, &e),
                     0);
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);

    assert_int_equal(st.sealed, 2);
    assert_int_equal(st.removed, 0);
    assert_int_equal(st.torn, 2);
    assert_int_equal(st.torn_bytes, 9 + 4);
    assert_int_equal(st.kept_bytes, 9 + 8);
    assert_int_equal(st.tmp_removed, 1);
    assert_int_equal(st.other_nodes, 1);
    assert_int_equal(st.failed, 0);

    /* the records before the tear, sealed; the other node untouched */
    size_t n;
    char *t = tmpdir_get(tmpdir_at(RAW10 "n1-0-0000000001.ndjson"), &n);
    assert_string_equal(t, "r1\nr2\nr3\n");
    free(t);
    assert_int_equal(access(active, F_OK), -1);
    t = tmpdir_get(tmpdir_at(RAW10 "n2-0-0000000001.ndjson.open"), &n);
    assert_string_equal(t, "x\ny");
    free(t);
    assert_int_equal(access(tmpdir_at("p/raw/_seq/n1-0.tmp.123.4"), F_OK), -1);
    assert_int_equal(access(tmpdir_at("p/raw/_seq/n2-0.tmp.1.1"), F_OK), 0);
    assert_int_equal(access(tmpdir_at("p/raw/_seq/n1-0"), F_OK), 0);
    t = tmpdir_get(tmpdir_at("p/quarantine/date=2025-09-02/hour=09/n1-0-0000000005.ndjson"),
                 &n);
    assert_string_equal(t, "{\"a\":1}\n");
    free(t);

    /* the cut bytes, in quarantine with reason torn */
    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "quarantine", &l, NULL), 0);
    int torn = 0;
    for (size_t i = 0; i < l.n; i++) {
        assert_false(l.v[i].active);
        t = tmpdir_get(l.v[i].path, &n);
        for (char *line = t, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = '\0';
            if (!strstr(line, "\"reason\":\"torn\""))
                continue;
            torn++;
            assert_non_null(strstr(line, "\"peer\":null"));
            if (strstr(line, "\"raw\":\"{\\\"partial\"")) {
                assert_non_null(strstr(line, "n1-0-0000000001.ndjson.open at byte 9"));
            } else {
                assert_non_null(strstr(line, "\"raw\":\"{\\\"b\\\"\""));
                assert_non_null(strstr(line, "at byte 8"));
            }
        }
        free(t);
    }
    assert_int_equal(torn, 2);
    seg_list_release(&l);

    /* recovering again finds nothing to do */
    struct pieces pc = {0};
    memset(&st, 0, sizeof(st));
    assert_int_equal(recover_pipeline(root, "p", "n1", collect, &pc, &st, NULL), 0);
    assert_int_equal(st.sealed + st.removed + st.torn, 0);
    assert_int_equal(pc.n, 0);
}

static void test_nul_block_and_empty(void **state)
{
    static const char junk[] = "a\nb\n\0\0\0\0c\nd\n";
    put_file(tmpdir_at(RAW10 "n1-0-0000000007.ndjson.open"), junk, sizeof(junk) - 1);
    put_file(tmpdir_at(RAW10 "n1-0-0000000008.ndjson.open"), "", 0);
    put_file(tmpdir_at(RAW10 "n1-3-0000000009.ndjson.open"), "abc", 3);
    struct pieces pc = {0};
    struct recover_stats st = {0};
    assert_int_equal(recover_kind(root, "p", "raw", "n1", collect, &pc, &st, NULL), 0);
    assert_int_equal(st.sealed, 1);
    assert_int_equal(st.removed, 2);
    assert_int_equal(pc.n, 3);
    /* the first line holding a NUL and everything after it is cut */
    assert_int_equal(pc.len[0], 5);
    assert_memory_equal(pc.got[0], "\0\0\0\0c", 5);
    assert_int_equal(pc.off[0], 4);
    assert_int_equal(pc.len[1], 1);
    assert_memory_equal(pc.got[1], "d", 1);
    assert_int_equal(pc.len[2], 3);
    assert_memory_equal(pc.got[2], "abc", 3);
    size_t n;
    char *t = tmpdir_get(tmpdir_at(RAW10 "n1-0-0000000007.ndjson"), &n);
    assert_string_equal(t, "a\nb\n");
    free(t);
    assert_int_equal(access(tmpdir_at(RAW10 "n1-0-0000000008.ndjson.open"), F_OK), -1);
    assert_int_equal(access(tmpdir_at(RAW10 "n1-3-0000000009.ndjson.open"), F_OK), -1);
    assert_int_equal(access(tmpdir_at(RAW10 "n1-3-0000000009.ndjson"), F_OK), -1);
}

static void test_large_segment(void **state)
{
    /* lines across the 1 MiB scan chunks, then a torn tail */
    struct buf b = BUF_INIT(4u << 20);
    while (b.len < (3u << 20) / 2)
        buf_puts(&b, "{\"k\":\"0123456789012345678901234567890\"}\n");
    size_t kept = b.len;
    buf_puts(&b, "{\"k\":\"01");
    put_file(tmpdir_at(RAW10 "n1-0-0000000001.ndjson.open"), b.data, b.len);
    buf_release(&b);
    struct pieces pc = {0};
    struct recover_stats st = {0};
    assert_int_equal(recover_kind(root, "p", "raw", "n1", collect, &pc, &st, NULL), 0);
    assert_int_equal(pc.n, 1);
    assert_int_equal(pc.off[0], kept);
    assert_int_equal(st.kept_bytes, kept);
    struct stat sb;
    assert_int_equal(stat(tmpdir_at(RAW10 "n1-0-0000000001.ndjson"), &sb), 0);
    assert_int_equal((size_t)sb.st_size, kept);
}

static void test_failures_leave_it_active(void **state)
{
    const char *active = tmpdir_at(RAW10 "n1-0-0000000001.ndjson.open");
    put_file(active, "ok\ntorn", 7);
    /* on_torn fails: nothing is cut */
    struct pieces pc = {.fail = WEIR_ENOSPC};
    struct recover_stats st = {0};
    struct weir_errmsg e;
    assert_int_equal(recover_kind(root, "p", "raw", "n1", collect, &pc, &st, &e),
                     WEIR_ENOSPC);
    assert_non_null(strstr(e.text, "n1-0-0000000001.ndjson.open"));
    assert_int_equal(st.failed, 1);
    struct stat sb;
    assert_int_equal(stat(active, &sb), 0);
    assert_int_equal(sb.st_size, 7);
    /* the cut fails after the hand-over: the bytes come again next time
     * (a duplicate in quarantine, never a loss) */
    pc.fail = 0;
    fsio_fault_set(FSIO_OP_FTRUNCATE, 0, EIO, 0);
    memset(&st, 0, sizeof(st));
    assert_int_equal(recover_kind(root, "p", "raw", "n1", collect, &pc, &st, NULL),
                     WEIR_EIO);
    fsio_fault_clear(FSIO_OP_FTRUNCATE);
    assert_int_equal(pc.n, 1);
    fsio_fault_set(FSIO_OP_RENAME, 0, EIO, 0);
    assert_int_equal(recover_kind(root, "p", "raw", "n1", collect, &pc, &st, NULL),
                     WEIR_EIO);
    fsio_fault_clear(FSIO_OP_RENAME);
    assert_int_equal(pc.n, 2);
    assert_int_equal(stat(active, &sb), 0);
    assert_int_equal(sb.st_size, 3); /* cut, not sealed yet */
    memset(&st, 0, sizeof(st));
    assert_int_equal(recover_kind(root, "p", "raw", "n1", collect, &pc, &st, NULL), 0);
    assert_int_equal(pc.n, 2);
    assert_int_equal(st.sealed, 1);
    size_t n;
    char *t = tmpdir_get(tmpdir_at(RAW10 "n1-0-0000000001.ndjson"), &n);
    assert_string_equal(t, "ok\n");
    free(t);
    assert_int_equal(recover_kind(root, "p", "raw", "../n1", collect, &pc, &st, NULL),
                     WEIR_EINVAL);
}

/* ---- kill -9 at random instants ----------------------------------------- */

#define ROUNDS 24

/* The child: append records of round r forever, runs of 7 per hour over
 * two hours, sizes 30 B to 2.5 KB; with `always`, report each index once
 * seg_append returned 0 (counted as written). */
static void crash_child(const char *data, enum seg_sync sync, int round,
                        int ackfd)
{
    struct seg_config c = {
        .data_dir = data, .pipeline = "p", .kind = "raw", .node = "n1",
        .sync = sync, .segment_bytes = 64u << 10,
        .fsync_interval_ns = 5 * WTIME_NS_PER_MS,
    };
    struct seg_writer *w;
    if (seg_writer_new(&c, &w, NULL) != 0)
        _exit(3);
    static char pad[2600], rec[3000];
    memset(pad, 'x', sizeof(pad) - 1);
    for (int i = 0;; i++) {
        int64_t start = H0 + ((i / 7) % 2) * WTIME_NS_PER_HOUR;
        int n = snprintf(rec, sizeof(rec), "{\"r\":%d,\"i\":%d,\"pad\":\"%.*s\"}",
                         round, i, (i * 37) % 2500, pad);
        if (seg_append(w, start, rec, (size_t)n) != 0)
            _exit(4);
        if (sync == SEG_SYNC_ALWAYS && write(ackfd, &i, sizeof(i)) != sizeof(i))
            _exit(5);
        if ((i & 15) == 0)
            seg_tick(w, wtime_mono_ns());
    }
}

/* Parse one landed line; -1 if it is not a whole record of ours. */
static int parse_rec(const char *line, int *r, int *i)
{
    char *end;
    if (strncmp(line, "{\"r\":", 5) != 0)
        return -1;
    *r = (int)strtol(line + 5, &end, 10);
    if (strncmp(end, ",\"i\":", 5) != 0)
        return -1;
    *i = (int)strtol(end + 5, &end, 10);
    if (strncmp(end, ",\"pad\":\"", 8) != 0)
        return -1;
    end += 8;
    size_t x = strspn(end, "x");
    if (x != (size_t)((*i * 37) % 2500) || strcmp(end + x, "\"}") != 0)
        return -1;
    return 0;
}

static void test_kill9_rounds(void **state)
{
    int last_ack[ROUNDS], next[ROUNDS];
    enum seg_sync syncs[3] = {SEG_SYNC_ALWAYS, SEG_SYNC_GROUP, SEG_SYNC_NEVER};
    struct recover_stats total = {0};
    srand(12345);
    for (int round = 0; round < ROUNDS; round++) {
        enum seg_sync sync = syncs[round % 3];
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(root, sync, round, fds[1]);
        }
        close(fds[1]);
        usleep((useconds_t)(10000 + rand() % 100000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* not an early exit */
        last_ack[round] = -1;
        int v;
        while (read(fds[0], &v, sizeof(v)) == sizeof(v))
            last_ack[round] = v;
        close(fds[0]);

        /* restart: recovery, torn lines into quarantine */
        struct seg_config qc = {.data_dir = root, .pipeline = "p",
                                .node = "n1"};
        struct quar_writer *q;
        assert_int_equal(quar_writer_new(&qc, &q, NULL), 0);
        struct recover_stats st = {0};
        struct weir_errmsg e;
        if (recover_pipeline(root, "p", "n1", recover_torn_to_quarantine, q,
                             &st, &e) != 0)
            fail_msg("recovery: %s", e.text);
        assert_int_equal(seg_close_all(quar_seg(q)), 0);
        quar_writer_free(q);
        total.sealed += st.sealed;
        total.torn += st.torn;
    }

    /* every line whole; per round the indexes that landed are exactly
     * 0..k, each once, in order within an hour; k >= the last ack */
    for (int r = 0; r < ROUNDS; r++)
        next[r] = 0;
    int last_in_hour[ROUNDS][2];
    memset(last_in_hour, -1, sizeof(last_in_hour));
    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "raw", &l, NULL), 0);
    int seen[ROUNDS] = {0};
    for (size_t k = 0; k < l.n; k++) {
        assert_false(l.v[k].active);
        int hour = l.v[k].part_start != H0;
        size_t n;
        char *t = tmpdir_get(l.v[k].path, &n);
        assert_true(n == 0 || t[n - 1] == '\n');
        for (char *line = t, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = '\0';
            int r, i;
            if (parse_rec(line, &r, &i) != 0 || r < 0 || r >= ROUNDS)
                fail_msg("not a whole record: %.80s", line);
            assert_true(i > last_in_hour[r][hour]); /* in order, no dup */
            assert_true(((i / 7) % 2) == hour);
            last_in_hour[r][hour] = i;
            seen[r]++;
        }
        free(t);
    }
    seg_list_release(&l);
    for (int r = 0; r < ROUNDS; r++) {
        int k = last_in_hour[r][0] > last_in_hour[r][1] ? last_in_hour[r][0]
                                                         : last_in_hour[r][1];
        /* increasing per hour + count == max+1: exactly 0..k, no hole */
        assert_int_equal(seen[r], k + 1);
        if (getenv("WEIR_TEST_VERBOSE"))
            fprintf(stderr, "round %d %s: %d landed, last ack %d\n", r,
                    seg_sync_name(syncs[r % 3]), seen[r], last_ack[r]);
        if (syncs[r % 3] == SEG_SYNC_ALWAYS)
            assert_true(k >= last_ack[r]);
        (void)next;
    }
    if (getenv("WEIR_TEST_VERBOSE"))
        fprintf(stderr, "kill -9 rounds: %d, sealed %lu, torn %lu\n", ROUNDS,
                total.sealed, total.torn);
}

static void test_node_lock(void **state)
{
    int a, b, c;
    struct weir_errmsg e;
    char data[PATH_MAX];
    snprintf(data, sizeof(data), "%s/new/data", root);
    assert_int_equal(recover_lock_node(data, "n1", &a, &e), 0);
    assert_int_equal(recover_lock_node(data, "n1", &b, &e), WEIR_ECONFLICT);
    assert_non_null(strstr(e.text, "another weir process"));
    assert_int_equal(recover_lock_node(data, "n2", &c, &e), 0);
    assert_int_equal(recover_lock_node(data, "../x", &b, &e), WEIR_EINVAL);
    close(a);
    close(c);
    assert_int_equal(recover_lock_node(data, "n1", &b, &e), 0);
    close(b);
}

int main(void)
{
    log_setup(LOG_ERROR, LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_torn_tail_to_quarantine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_block_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_it_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_rounds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
