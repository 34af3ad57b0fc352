/*
 * test_tablelog.c - the table log: commit/snapshot round trips, --as-of,
 * conflicts, idempotent retries, two processes racing, disk faults at each
 * call of a commit, a crash at each syscall of a commit then recovery,
 * checkpoint speed over a long history, vacuum and its grace, corrupt
 * files reported by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/log.h"
#include "core/wtime.h"
#include "store/tablelog.h"

#include "tmpdir.h"

#define NS 1000000000LL
#define DAY (86400LL * NS)
#define T0 (INT64_C(1756807200) * NS) /* 2025-09-02T10:00Z */

static char *root;

static int setup_in(const char *base)
{
    root = tmpdir_make(base, "tl");
    if (!root)
        return -1;
    fsio_fault_reset();
    log_setup(LOG_ERROR, LOG_TEXT);
    return 0;
}

static int setup(void **state)
{
    return setup_in("/tmp");
}

/* Tests that create tens of thousands of files: creating one costs ~1 ms
 * on this VM's ext4 and ~6 us on tmpfs, and what they measure (the race,
 * the open time) does not depend on it. */
static int setup_shm(void **state)
{
    struct stat st;
    return setup_in(stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp");
}

static int teardown(void **state)
{
    fsio_fault_off();
    fsio_sys_set(NULL);
    wtime_set_now(0, 0);
    return tmpdir_remove(root);
}

static void put_file(const char *path, const void *data, size_t n)
{
    assert_int_equal(tmpdir_put(path, data, n), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void set_mtime(const char *path, int64_t ns)
{
    struct timespec ts[2] = {{ns / NS, ns % NS}, {ns / NS, ns % NS}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static const struct tl_column COLS[] = {
    {"time", "TIMESTAMP WITH TIME ZONE"},
    {"value", "DOUBLE"},
    {"tags", "STRUCT(site VARCHAR, \"odd \"\"name\" INTEGER)"},
};

#define PART10 "date=2025-09-02/hour=10"
#define PQ10 "parquet/" PART10 "/"
#define RAW10 "raw/" PART10 "/"

/* A file record for a part file under dataset "ds", created on disk. */
static struct tl_file make_file(const char *ds, const char *rel, size_t size)
{
    char *data = calloc(1, size + 1);
    memset(data, 'p', size);
    put_file(tmpdir_at("%s/%s", ds, rel), data, size);
    free(data);
    struct tl_file f = {.path = rel, .partition = PART10, .rows = size * 10,
                        .bytes = size, .min_time = T0 + 1,
                        .max_time = T0 + 3599 * NS + 999999999,
                        .columns = COLS, .ncolumns = 3};
    return f;
}

static struct tablelog *open_ds(const char *ds)
{
    struct tablelog *t;
    struct weir_errmsg e;
    int rc = tl_open(tmpdir_at("%s", ds), &t, &e);
    if (rc)
        fail_msg("%s", e.text);
    return t;
}

static uint64_t commit_ok(struct tablelog *t, const struct tl_commit *c)
{
    struct weir_errmsg e;
    uint64_t v = 0;
    int rc = tl_commit(t, c, &v, &e);
    if (rc)
        fail_msg("tl_commit: %s", e.text);
    return v;
}

/* ---- names -------------------------------------------------------------- */

static void test_names(void **state)
{
    char b[64];
    assert_int_equal(tl_part_file_name(42, 3, b, sizeof(b)), 35);
    assert_string_equal(b, "part-00000000000000000042-3.parquet");
    uint64_t v;
    unsigned n;
    assert_true(tl_part_name_parse(b, &v, &n));
    assert_int_equal(v, 42);
    assert_int_equal(n, 3);
    assert_false(tl_part_name_parse("part-0042-3.parquet", NULL, NULL));
    assert_false(tl_part_name_parse("part-00000000000000000042-03.parquet", NULL, NULL));
    assert_false(tl_part_name_parse("part-00000000000000000042-3.parquet.tmp.1.2",
                                    NULL, NULL));
    assert_int_equal(tl_part_file_name(42, 3, b, 10), 0);
    tl_commit_file_name(7, b, sizeof(b));
    assert_string_equal(b, "_log/00000000000000000007.json");
}

/* ---- round trips -------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_snapshot s;
    /* no _log yet: an empty table, and nothing was created */
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(s.version, 0);
    assert_int_equal(s.nfiles, 0);
    tl_snapshot_release(&s);
    assert_false(exists(tmpdir_at("ds/_log")));
    assert_int_equal(tl_snapshot(t, 1, &s, &e), WEIR_ENOTFOUND);
    assert_non_null(strstr(e.text, "does not exist"));

    struct tl_file add[2] = {
        make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 100),
        make_file("ds", PQ10 "part-00000000000000000001-1.parquet", 50),
    };
    add[1].ncolumns = 2;
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"), "{}\n", 3);
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000002.ndjson"), "{}\n", 3);
    const char *absorbed[] = {RAW10 "n1-0-0000000001.ndjson",
                              RAW10 "n1-0-0000000002.ndjson"};
    const char *app = "{\"model:hourly\":{\"" PART10 "\":\"done\"},"
                      "\"kafka:t\":[1,2,3]}";
    struct tl_commit c = {.operation = "compact", .add = add, .nadd = 2,
                          .absorbed = absorbed, .nabsorbed = 2, .app = app,
                          .app_len = strlen(app)};
    assert_int_equal(commit_ok(t, &c), 1);
    assert_true(exists(tmpdir_at("ds/_log/00000000000000000001.json")));

    /* another handle reads the same */
    struct tablelog *t2 = open_ds("ds");
    assert_int_equal(tl_snapshot(t2, 0, &s, &e), 0);
    assert_int_equal(s.version, 1);
    assert_int_equal(s.oldest, 1);
    assert_int_equal(s.nfiles, 2);
    assert_string_equal(s.files[0].path, add[0].path);
    assert_string_equal(s.files[0].partition, PART10);
    assert_int_equal(s.files[0].rows, 1000);
    assert_int_equal(s.files[0].bytes, 100);
    assert_int_equal(s.files[0].min_time, T0 + 1);
    assert_int_equal(s.files[0].max_time, T0 + 3599 * NS + 999999999);
    assert_int_equal(s.files[0].version, 1);
    assert_int_equal(s.files[0].ncolumns, 3);
    assert_string_equal(s.files[0].columns[2].type, COLS[2].type);
    assert_int_equal(s.files[1].ncolumns, 2);
    assert_non_null(tl_snapshot_file(&s, add[1].path));
    assert_null(tl_snapshot_file(&s, "parquet/x"));
    assert_int_equal(s.nabsorbed, 2);
    assert_true(tl_snapshot_absorbed(&s, "n1-0-0000000002.ndjson"));
    assert_true(tl_snapshot_absorbed(&s, tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson")));
    assert_false(tl_snapshot_absorbed(&s, "n1-0-0000000003.ndjson"));
    assert_int_equal(s.napp, 2);
    const struct tl_app *a = tl_snapshot_app(&s, "model:hourly");
    assert_non_null(a);
    assert_string_equal(a->json, "{\"" PART10 "\":\"done\"}");
    assert_string_equal(tl_snapshot_app(&s, "kafka:t")->json, "[1,2,3]");
    tl_snapshot_release(&s);

    /* optimize: merge both into one; the app key set to null goes away */
    struct tl_file merged = make_file("ds", PQ10 "part-00000000000000000002-0.parquet", 140);
    const char *rm[] = {add[0].path, add[1].path};
    const char *app2 = "{\"kafka:t\":null,\"model:daily\":true}";
    struct tl_commit c2 = {.operation = "optimize", .read_version = 1,
                           .add = &merged, .nadd = 1, .remove = rm, .nremove = 2,
                           .app = app2, .app_len = strlen(app2)};
    assert_int_equal(commit_ok(t2, &c2), 2);

    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(s.version, 2);
    assert_int_equal(s.nfiles, 1);
    assert_string_equal(s.files[0].path, merged.path);
    assert_int_equal(s.nremoved, 2);
    assert_int_equal(s.removed[0].version, 2);
    assert_int_equal(s.nabsorbed, 2);
    assert_null(tl_snapshot_app(&s, "kafka:t"));
    assert_string_equal(tl_snapshot_app(&s, "model:daily")->json, "true");
    assert_int_equal(tl_snapshot_app(&s, "model:hourly")->version, 1);
    tl_snapshot_release(&s);

    /* --as-of 1 */
    assert_int_equal(tl_snapshot(t, 1, &s, &e), 0);
    assert_int_equal(s.version, 1);
    assert_int_equal(s.nfiles, 2);
    assert_int_equal(s.nremoved, 0);
    assert_non_null(tl_snapshot_app(&s, "kafka:t"));
    tl_snapshot_release(&s);
    assert_int_equal(tl_snapshot(t, 3, &s, &e), WEIR_ENOTFOUND);
    assert_non_null(strstr(e.text, "version 3 does not exist, the latest is 2"));
    uint64_t v;
    assert_int_equal(tl_latest(t, &v, &e), 0);
    assert_int_equal(v, 2);
    tl_free(t);
    tl_free(t2);
    tl_free(NULL);
}

/* ---- conflicts and bad commits ------------------------------------------ */

static void test_conflicts(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_file f1 = make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 10);
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"), "{}\n", 3);
    const char *seg1[] = {RAW10 "n1-0-0000000001.ndjson"};
    struct tl_commit c = {.operation = "compact", .add = &f1, .nadd = 1,
                          .absorbed = seg1, .nabsorbed = 1};
    assert_int_equal(commit_ok(t, &c), 1);

    /* the same segment again, by another compactor */
    struct tl_file f2 = make_file("ds", PQ10 "part-00000000000000000002-0.parquet", 10);
    struct tl_commit c2 = {.operation = "compact", .add = &f2, .nadd = 1,
                           .absorbed = seg1, .nabsorbed = 1};
    assert_int_equal(tl_commit(t, &c2, NULL, &e), WEIR_ECONFLICT);
    assert_non_null(strstr(e.text, "absorbed by version 1"));
    /* a segment gone from disk (absorbed, deleted, forgotten elsewhere) */
    const char *seg9[] = {RAW10 "n1-0-0000000009.ndjson"};
    c2.absorbed = seg9;
    assert_int_equal(tl_commit(t, &c2, NULL, &e), WEIR_ECONFLICT);
    assert_non_null(strstr(e.text, "is gone"));
    /* two optimizes removing the same file: the second conflicts */
    const char *rm[] = {f1.path};
    struct tl_commit o1 = {.operation = "optimize", .add = &f2, .nadd = 1,
                           .remove = rm, .nremove = 1};
    assert_int_equal(commit_ok(t, &o1), 2);
    struct tl_file f3 = make_file("ds", PQ10 "part-00000000000000000003-0.parquet", 10);
    o1.add = &f3;
    assert_int_equal(tl_commit(t, &o1, NULL, &e), WEIR_ECONFLICT);
    assert_non_null(strstr(e.text, "no longer live"));
    /* adding a file that is already in the table */
    struct tl_commit a2 = {.operation = "compact", .add = &f2, .nadd = 1};
    assert_int_equal(tl_commit(t, &a2, NULL, &e), WEIR_ECONFLICT);
    /* strict: anything committed after read_version */
    const char *app = "{\"m\":1}";
    struct tl_commit m = {.operation = "model", .read_version = 1,
                          .flags = TL_COMMIT_STRICT, .app = app, .app_len = 7};
    assert_int_equal(tl_commit(t, &m, NULL, &e), WEIR_ECONFLICT);
    m.read_version = 2;
    assert_int_equal(commit_ok(t, &m), 3);

    /* malformed commits: the caller's bugs */
    struct tl_file bad = f3;
    const char *paths[] = {"parquet/../x/part-00000000000000000003-0.parquet",
                           "/abs/part-00000000000000000003-0.parquet",
                           "parquet/" PART10 "/other.parquet",
                           "parquet/date=2025-09-02/hour=11/part-00000000000000000003-0.parquet",
                           "parquet//" PART10 "/part-00000000000000000003-0.parquet",
                           "raw/" PART10 "/part-00000000000000000003-0.parquet"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        bad.path = paths[i];
        struct tl_commit b = {.operation = "compact", .add = &bad, .nadd = 1};
        assert_int_equal(tl_commit(t, &b, NULL, &e), WEIR_EINVAL);
    }
    bad = f3;
    bad.bytes = 11;        /* not the size on disk */
    struct tl_commit b = {.operation = "compact", .add = &bad, .nadd = 1};
    assert_int_equal(tl_commit(t, &b, NULL, &e), WEIR_EINVAL);
    assert_non_null(strstr(e.text, "has 10 bytes, the commit says 11"));
    bad.path = PQ10 "part-00000000000000000009-0.parquet"; /* missing */
    assert_int_equal(tl_commit(t, &b, NULL, &e), WEIR_EINVAL);
    struct tl_file twice[2] = {f3, f3};
    b.add = twice;
    b.nadd = 2;
    assert_int_equal(tl_commit(t, &b, NULL, &e), WEIR_EINVAL);
    const char *apps[] = {"[1]", "{\"a\":1,\"a\":2}", "{\"a\":", "{\"\":1}",
                          "{\"a\\\"b\":1}"};
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
        struct tl_commit x = {.operation = "model", .app = apps[i],
                              .app_len = strlen(apps[i])};
        assert_int_equal(tl_commit(t, &x, NULL, &e), WEIR_EINVAL);
    }
    struct tl_commit vac = {.operation = "vacuum"};
    assert_int_equal(tl_commit(t, &vac, NULL, &e), WEIR_EINVAL);
    struct tl_commit up = {.operation = "Compact"};
    assert_int_equal(tl_commit(t, &up, NULL, &e), WEIR_EINVAL);
    const char *active[] = {RAW10 "n1-0-0000000001.ndjson.open"};
    struct tl_commit ac = {.operation = "compact", .absorbed = active,
                           .nabsorbed = 1};
    assert_int_equal(tl_commit(t, &ac, NULL, &e), WEIR_EINVAL);
    uint64_t v;
    assert_int_equal(tl_latest(t, &v, &e), 0);
    assert_int_equal(v, 3);
    tl_free(t);
}

/* Event times at the ends of what int64 ns hold survive the text form;
 * times the text form cannot hold are refused at commit. */
static void test_time_bounds(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_snapshot s;
    int64_t lo = wtime_days_from_civil(1678, 1, 1) * DAY,
            hi = wtime_days_from_civil(2262, 1, 1) * DAY - 1;
    struct tl_file f = make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 1);
    f.min_time = lo;
    f.max_time = hi;
    struct tl_commit c = {.operation = "compact", .add = &f, .nadd = 1};
    assert_int_equal(commit_ok(t, &c), 1);
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(s.files[0].min_time, lo);
    assert_int_equal(s.files[0].max_time, hi);
    tl_snapshot_release(&s);
    struct tl_file g = make_file("ds", PQ10 "part-00000000000000000002-0.parquet", 1);
    g.min_time = INT64_MIN;
    struct tl_commit c2 = {.operation = "compact", .add = &g, .nadd = 1};
    assert_int_equal(tl_commit(t, &c2, NULL, &e), WEIR_EINVAL);
    g.min_time = 0;
    g.max_time = INT64_MAX;
    assert_int_equal(tl_commit(t, &c2, NULL, &e), WEIR_EINVAL);
    g.max_time = -1;   /* 1969-12-31T23:59:59.999999999Z */
    g.min_time = -NS;
    assert_int_equal(commit_ok(t, &c2), 2);
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(tl_snapshot_file(&s, g.path)->max_time, -1);
    assert_int_equal(tl_snapshot_file(&s, g.path)->min_time, -NS);
    tl_snapshot_release(&s);
    tl_free(t);
}

/* A caller that got an error of unknown outcome calls again with the same
 * txn and gets the version that did land. */
static void test_txn_idempotent(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct tl_file f = make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 10);
    struct tl_commit c = {.operation = "compact", .txn = "compact:n1:42",
                          .add = &f, .nadd = 1};
    assert_int_equal(commit_ok(t, &c), 1);
    struct tablelog *t2 = open_ds("ds");
    assert_int_equal(commit_ok(t2, &c), 1);
    assert_int_equal(commit_ok(t, &c), 1);
    assert_false(exists(tmpdir_at("ds/_log/00000000000000000002.json")));
    tl_free(t);
    tl_free(t2);
}

/* ---- two processes racing ----------------------------------------------- */

#define RACE_N 500

static int race_child(int id)
{
    struct tablelog *t;
    struct weir_errmsg e;
    if (tl_open(tmpdir_at("ds"), &t, &e))
        return 2;
    int won_contested = 0;
    for (int i = 0; i < RACE_N; i++) {
        char rel[256], txn[64];
        snprintf(rel, sizeof(rel), PQ10 "part-%020d-%d.parquet", i, id);
        if (tmpdir_put(tmpdir_at("ds/%s", rel), "x", 1))
            return 3;
        snprintf(txn, sizeof(txn), "race-%d-%d", id, i);
        struct tl_file f = {.path = rel, .partition = PART10, .rows = 1,
                            .bytes = 1, .min_time = T0, .max_time = T0};
        uint64_t base;
        if (tl_latest(t, &base, &e))
            return 6;
        struct tl_commit c = {.operation = "compact", .txn = txn,
                              .read_version = base, .add = &f, .nadd = 1};
        if (tl_commit(t, &c, NULL, &e)) {
            fprintf(stderr, "child %d: %s\n", id, e.text);
            return 4;
        }
        if (i == RACE_N / 2) {
            /* both try to absorb the same segment: one wins */
            const char *seg[] = {RAW10 "n1-0-0000000001.ndjson"};
            struct tl_commit s = {.operation = "compact", .absorbed = seg,
                                  .nabsorbed = 1};
            int rc = tl_commit(t, &s, NULL, &e);
            if (rc && rc != WEIR_ECONFLICT)
                return 5;
            won_contested = rc == 0;
        }
    }
    tl_free(t);
    return won_contested ? 10 : 11;
}

static void test_two_processes_race(void **state)
{
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"), "{}\n", 3);
    int64_t t0 = wtime_mono_ns();
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(race_child(i));
    }
    int wins = 0;
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        int code = WEXITSTATUS(status);
        assert_true(code == 10 || code == 11);
        wins += code == 10;
    }
    assert_int_equal(wins, 1);
    int64_t ms = (wtime_mono_ns() - t0) / 1000000;
    /* versions dense 1..1001, each commit once */
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_snapshot s;
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(s.version, 2 * RACE_N + 1);
    assert_int_equal(s.nfiles, 2 * RACE_N);
    assert_int_equal(s.nabsorbed, 1);
    tl_snapshot_release(&s);
    static char seen[2][RACE_N];
    memset(seen, 0, sizeof(seen));
    for (uint64_t v = 1; v <= 2 * RACE_N + 1; v++) {
        struct buf b = BUF_INIT(1 << 20);
        char name[64];
        tl_commit_file_name(v, name, sizeof(name));
        assert_int_equal(fsio_read_file(tmpdir_at("ds/%s", name), &b), 0);
        buf_puts(&b, "");
        const char *p = strstr(b.data, "\"txn\":\"race-");
        if (p) {
            int id, i;
            assert_int_equal(sscanf(p + 12, "%d-%d", &id, &i), 2);
            assert_int_equal(seen[id][i], 0);
            seen[id][i] = 1;
        }
        buf_release(&b);
    }
    for (int id = 0; id < 2; id++)
        for (int i = 0; i < RACE_N; i++)
            assert_int_equal(seen[id][i], 1);
    /* the checkpoints at 100..1000 exist and agree with the commits */
    assert_true(exists(tmpdir_at("ds/_log/00000000000000001000.checkpoint.json")));
    assert_int_equal(tl_snapshot(t, 999, &s, &e), 0);
    assert_int_equal(s.version, 999);
    tl_snapshot_release(&s);
    tl_free(t);
    print_message("race: 2 processes x %d commits (+1 contested) in %lld ms\n",
                  RACE_N, (long long)ms);
}

/* ---- disk faults at each call of a commit ------------------------------- */

static void fault_round(enum fsio_op op, int err)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    static int n_files;
    for (unsigned long n = 0;; n++) {
        char rel[256];
        uint64_t before, after, v = 0;
        assert_int_equal(tl_latest(t, &before, &e), 0);
        snprintf(rel, sizeof(rel), PQ10 "part-%020d-%d.parquet", 7, n_files++);
        struct tl_file f = make_file("ds", rel, 5);
        char txn[64];
        snprintf(txn, sizeof(txn), "fault-%d-%lu-%d", (int)op, n, err);
        struct tl_commit c = {.operation = "compact", .txn = txn,
                              .read_version = before, .add = &f, .nadd = 1};
        fsio_fault_reset();
        fsio_fault_set(op, n, err, 0);
        int rc = tl_commit(t, &c, &v, &e);
        int hit = fsio_fault_hits(op) > 0;
        fsio_fault_reset();
        if (!hit) {
            assert_int_equal(rc, 0);  /* past the last call of op */
            break;
        }
        assert_int_equal(tl_latest(t, &after, &e), 0);
        if (rc == 0) {
            /* a failure the commit gets past (the unlink of a leftover) */
            assert_int_equal(after, before + 1);
            continue;
        }
        if (v) {
            /* the name appeared but the directory fsync failed: visible,
             * and a retry with the txn returns it */
            assert_int_equal(after, before + 1);
            assert_int_equal(v, before + 1);
            assert_int_equal(commit_ok(t, &c), v);
        } else {
            /* nothing was committed, no temporary file is left */
            assert_int_equal(after, before);
            DIR *d = opendir(tmpdir_at("ds/_log"));
            if (d) {
                struct dirent *de;
                while ((de = readdir(d)) != NULL)
                    assert_false(fsio_is_tmp_name(de->d_name));
                closedir(d);
            }
            /* a retry succeeds */
            assert_int_equal(commit_ok(t, &c), before + 1);
        }
    }
    tl_free(t);
}

static void test_faults(void **state)
{
    static const enum fsio_op ops[] = {FSIO_OP_OPEN, FSIO_OP_WRITE,
                                       FSIO_OP_FSYNC, FSIO_OP_RENAME,
                                       FSIO_OP_LINK, FSIO_OP_STAT,
                                       FSIO_OP_READ, FSIO_OP_MKDIR,
                                       FSIO_OP_CLOSE};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        fault_round(ops[i], ENOSPC);
        fault_round(ops[i], EIO);
    }
    /* short writes then ENOSPC (a disk filling up) */
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    uint64_t before, after;
    assert_int_equal(tl_latest(t, &before, &e), 0);
    struct tl_file f = make_file("ds", PQ10 "part-00000000000000000099-0.parquet", 5);
    struct tl_commit c = {.operation = "compact", .add = &f, .nadd = 1};
    fsio_fault_set(FSIO_OP_WRITE, 0, ENOSPC, 20);
    assert_int_equal(tl_commit(t, &c, NULL, &e), WEIR_ENOSPC);
    fsio_fault_reset();
    assert_int_equal(tl_latest(t, &after, &e), 0);
    assert_int_equal(after, before);
    assert_int_equal(commit_ok(t, &c), before + 1);
    tl_free(t);
}

/* ---- a crash at each syscall of a commit, then recovery ----------------- */

static long crash_at, crash_calls;

static void tick(void)
{
    if (++crash_calls == crash_at)
        _exit(99);
}

static int c_open(const char *p, int f, mode_t m) { tick(); return open(p, f, m); }
static ssize_t c_write(int fd, const void *p, size_t n) { tick(); return write(fd, p, n); }
static ssize_t c_pwrite(int fd, const void *p, size_t n, off_t o) { tick(); return pwrite(fd, p, n, o); }
static int c_fsync(int fd) { tick(); return fsync(fd); }
static int c_rename(const char *a, const char *b) { tick(); return rename(a, b); }
static int c_renameat2(int fd1, const char *a, int fd2, const char *b, unsigned f)
{
    tick();
    return renameat2(fd1, a, fd2, b, f);
}
static int c_link(const char *a, const char *b) { tick(); return link(a, b); }
static int c_unlink(const char *p) { tick(); return unlink(p); }
static int c_mkdir(const char *p, mode_t m) { tick(); return mkdir(p, m); }

static int noop_fsync(int fd) { return 0; }

/* Build a table at version 99 fast (fsync is a no-op here: the speed of
 * the disk is not what these tests are about). */
static void build_history(const char *ds, uint64_t n, int files_every)
{
    struct fsio_sys sys = {0};
    sys.fsync = noop_fsync;
    sys.fdatasync = noop_fsync;
    fsio_sys_set(&sys);
    struct tablelog *t = open_ds(ds);
    for (uint64_t i = 1; i <= n; i++) {
        char app[64], rel[128];
        int len = snprintf(app, sizeof(app), "{\"kafka:t\":{\"offset\":%" PRIu64 "}}", i);
        struct tl_file f;
        struct tl_commit c = {.operation = "model", .app = app,
                              .app_len = (size_t)len};
        if (files_every && i % (uint64_t)files_every == 0) {
            snprintf(rel, sizeof(rel), PQ10 "part-%020" PRIu64 "-0.parquet", i);
            f = make_file(ds, rel, 1);
            c.operation = "compact";
            c.add = &f;
            c.nadd = 1;
        }
        struct weir_errmsg e;
        int rc = tl_commit(t, &c, NULL, &e);
        if (rc)
            fail_msg("history %" PRIu64 ": %s", i, e.text);
    }
    tl_free(t);
    fsio_sys_set(NULL);
}

static void crash_child(void)
{
    struct fsio_sys sys = {0};
    sys.open = c_open;
    sys.write = c_write;
    sys.pwrite = c_pwrite;
    sys.fsync = c_fsync;
    sys.fdatasync = c_fsync;
    sys.rename = c_rename;
    sys.renameat2 = c_renameat2;
    sys.link = c_link;
    sys.unlink = c_unlink;
    sys.mkdir = c_mkdir;
    fsio_sys_set(&sys);
    struct tablelog *t;
    struct weir_errmsg e;
    if (tl_open(tmpdir_at("ds"), &t, &e))
        _exit(2);
    char tmp[PATH_MAX], rel[PATH_MAX];
    uint64_t bytes;
    if (tl_tmp_file(t, PART10, tmp, sizeof(tmp), &e))
        _exit(3);
    int fd = open(tmp, O_WRONLY | O_TRUNC);   /* DuckDB writes it */
    if (fd < 0 || write(fd, "PAR1....PAR1", 12) != 12 || close(fd))
        _exit(4);
    if (tl_place_file(t, tmp, rel, sizeof(rel), &bytes, &e))
        _exit(5);
    const char *seg[] = {RAW10 "n1-0-0000000001.ndjson"};
    struct tl_file f = {.path = rel, .partition = PART10, .rows = 1,
                        .bytes = bytes, .min_time = T0, .max_time = T0};
    struct tl_commit c = {.operation = "compact", .add = &f, .nadd = 1,
                          .absorbed = seg, .nabsorbed = 1};
    if (tl_commit(t, &c, NULL, &e))
        _exit(6);
    /* the compactor deletes the absorbed segment after the commit */
    if (fsio_unlink(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson")))
        _exit(7);
    tl_free(t);
    _exit(0);
}

/* Every regular file under dir (relative names), to compare trees. */
static void list_tree(const char *dir, const char *rel, struct buf *out)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(p);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (de->d_type == DT_DIR)
            list_tree(dir, sub, out);
        else
            buf_appendf(out, "%s\n", sub);
    }
    closedir(d);
}

static void test_crash_each_syscall(void **state)
{
    /* the template: version 99, so the crashing commit is 100 and writes a
     * checkpoint, with a segment to absorb */
    build_history("tpl", 99, 0);
    put_file(tmpdir_at("tpl/" RAW10 "n1-0-0000000001.ndjson"), "{}\n", 3);
    int rounds = 0, landed = 0;
    for (crash_at = 1;; crash_at++) {
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof(cmd), "rm -rf %s/ds && cp -a %s/tpl %s/ds", root,
                 root, root);
        assert_int_equal(system(cmd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            crash_calls = 0;
            crash_child();
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        int code = WEXITSTATUS(status);
        if (code != 0 && code != 99)
            fail_msg("crash child at %ld exited %d", crash_at, code);
        rounds++;
        /* restart: recover with no other writer, then check */
        struct tablelog *t = open_ds("ds");
        struct weir_errmsg e;
        struct tl_recover_opts o = {0, 0};
        struct tl_recover_stats st = {0};
        if (tl_recover(t, &o, &st, &e))
            fail_msg("recover after crash at %ld: %s", crash_at, e.text);
        struct tl_snapshot s;
        assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
        int seg_on_disk = exists(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"));
        struct buf tree = BUF_INIT(1 << 20);
        list_tree(tmpdir_at("ds/parquet"), "", &tree);
        buf_puts(&tree, "");
        if (s.version == 100) {
            landed++;
            /* in Parquet, not in raw: counted once */
            assert_int_equal(s.nfiles, 1);
            assert_true(tl_snapshot_absorbed(&s, "n1-0-0000000001.ndjson"));
            assert_false(seg_on_disk);
            char want[PATH_MAX];
            snprintf(want, sizeof(want), "%s\n", s.files[0].path + 8);
            assert_string_equal(tree.data, want);
        } else {
            /* in raw, not in Parquet: counted once, no orphan left */
            assert_int_equal(s.version, 99);
            assert_int_equal(s.nfiles, 0);
            assert_true(seg_on_disk);
            assert_string_equal(tree.data, "");
        }
        buf_release(&tree);
        /* no temporary file anywhere in _log */
        DIR *d = opendir(tmpdir_at("ds/_log"));
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            assert_false(fsio_is_tmp_name(de->d_name));
        closedir(d);
        tl_snapshot_release(&s);
        /* the log still opens from scratch and commits go on */
        struct tl_commit c = {.operation = "model", .app = "{\"x\":1}",
                              .app_len = 7};
        uint64_t v = commit_ok(t, &c);
        assert_true(v == 100 || v == 101);
        tl_free(t);
        if (code == 0)
            break;
    }
    assert_true(landed >= 1);
    assert_true(rounds > landed);
    print_message("crash: %d rounds (one per syscall), %d landed\n", rounds,
                  landed);
}

/* ---- recovery ----------------------------------------------------------- */

static void test_recover_orphans(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_file f = make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 10);
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"), "{}\n", 3);
    const char *seg[] = {RAW10 "n1-0-0000000001.ndjson"};
    struct tl_commit c = {.operation = "compact", .add = &f, .nadd = 1,
                          .absorbed = seg, .nabsorbed = 1};
    assert_int_equal(commit_ok(t, &c), 1);
    int64_t old = wtime_now_ns() - 2 * TL_DEFAULT_ORPHAN_GRACE_NS;
    /* an orphan from a crash before the commit, old */
    put_file(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet"), "o", 1);
    set_mtime(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet"), old);
    /* a file another writer just placed: young, kept */
    put_file(tmpdir_at("ds/" PQ10 "part-00000000000000000002-1.parquet"), "y", 1);
    /* temporary files, old and young, in parquet/ and _log/ */
    put_file(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet.tmp.1.1"), "t", 1);
    set_mtime(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet.tmp.1.1"), old);
    put_file(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet.tmp.1.2"), "t", 1);
    put_file(tmpdir_at("ds/_log/00000000000000000002.json.tmp.5.5"), "{", 1);
    set_mtime(tmpdir_at("ds/_log/00000000000000000002.json.tmp.5.5"), old);
    /* a file weir did not make: never touched */
    put_file(tmpdir_at("ds/parquet/README"), "hi", 2);
    set_mtime(tmpdir_at("ds/parquet/README"), old);
    set_mtime(tmpdir_at("ds/" PQ10 "part-00000000000000000001-0.parquet"), old);

    struct tl_recover_stats st = {0};
    assert_int_equal(tl_recover(t, NULL, &st, &e), 0);
    assert_int_equal(st.orphans_removed, 1);
    assert_int_equal(st.tmp_removed, 2);
    assert_int_equal(st.absorbed_removed, 1);
    assert_int_equal(st.young_kept, 2);
    assert_int_equal(st.unknown_kept, 1);
    assert_false(exists(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet")));
    assert_true(exists(tmpdir_at("ds/" PQ10 "part-00000000000000000002-1.parquet")));
    assert_true(exists(tmpdir_at("ds/" PQ10 "part-00000000000000000001-0.parquet")));
    assert_false(exists(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson")));
    assert_true(exists(tmpdir_at("ds/parquet/README")));
    assert_true(exists(tmpdir_at("ds/" PQ10 "part-00000000000000000002-0.parquet.tmp.1.2")));
    /* absorbed grace: a segment absorbed just now stays for the grace */
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000002.ndjson"), "{}\n", 3);
    const char *seg2[] = {RAW10 "n1-0-0000000002.ndjson"};
    struct tl_commit c2 = {.operation = "compact", .absorbed = seg2,
                           .nabsorbed = 1};
    commit_ok(t, &c2);
    struct tl_recover_opts o = {TL_DEFAULT_ORPHAN_GRACE_NS, 60 * NS};
    assert_int_equal(tl_recover(t, &o, NULL, &e), 0);
    assert_true(exists(tmpdir_at("ds/" RAW10 "n1-0-0000000002.ndjson")));
    o.absorbed_grace_ns = 0;
    assert_int_equal(tl_recover(t, &o, NULL, &e), 0);
    assert_false(exists(tmpdir_at("ds/" RAW10 "n1-0-0000000002.ndjson")));
    tl_free(t);
}

static void test_tmp_and_place(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    char tmp[PATH_MAX], tmp2[PATH_MAX], rel[PATH_MAX], rel2[PATH_MAX];
    uint64_t bytes;
    assert_int_equal(tl_tmp_file(t, PART10, tmp, sizeof(tmp), &e), 0);
    assert_int_equal(tl_tmp_file(t, PART10, tmp2, sizeof(tmp2), &e), 0);
    assert_string_not_equal(tmp, tmp2);
    assert_true(exists(tmp));
    assert_non_null(strstr(tmp, "/ds/" PQ10 "part-00000000000000000001-0.parquet.tmp."));
    put_file(tmp, "abc", 3);
    put_file(tmp2, "de", 2);
    assert_int_equal(tl_place_file(t, tmp, rel, sizeof(rel), &bytes, &e), 0);
    assert_string_equal(rel, PQ10 "part-00000000000000000001-0.parquet");
    assert_int_equal(bytes, 3);
    assert_int_equal(tl_place_file(t, tmp2, rel2, sizeof(rel2), &bytes, &e), 0);
    assert_string_equal(rel2, PQ10 "part-00000000000000000001-1.parquet");
    assert_false(exists(tmp));
    assert_int_equal(tl_tmp_file(t, "date=2025-13-01", tmp, sizeof(tmp), &e),
                     WEIR_EINVAL);
    assert_int_equal(tl_place_file(t, "/etc/passwd", rel, sizeof(rel), NULL, &e),
                     WEIR_EINVAL);
    /* unpartitioned */
    assert_int_equal(tl_tmp_file(t, "", tmp, sizeof(tmp), &e), 0);
    assert_int_equal(tl_place_file(t, tmp, rel, sizeof(rel), &bytes, &e), 0);
    assert_string_equal(rel, "parquet/part-00000000000000000001-0.parquet");
    struct tl_file f = {.path = rel, .partition = "", .bytes = 0};
    struct tl_commit c = {.operation = "compact", .add = &f, .nadd = 1};
    assert_int_equal(commit_ok(t, &c), 1);
    tl_free(t);
}

/* ---- checkpoints -------------------------------------------------------- */

static void test_checkpoint_speed(void **state)
{
    const char *env = getenv("WEIR_TL_COMMITS");
    uint64_t n = env ? strtoull(env, NULL, 10) : 100000;
    int64_t t0 = wtime_mono_ns();
    build_history("ds", n, 1000);
    int64_t t1 = wtime_mono_ns();
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_snapshot s;
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    int64_t t2 = wtime_mono_ns();
    assert_int_equal(s.version, n);
    assert_int_equal(s.nfiles, n / 1000);
    char want[64];
    snprintf(want, sizeof(want), "{\"offset\":%" PRIu64 "}", n);
    assert_string_equal(tl_snapshot_app(&s, "kafka:t")->json, want);
    tl_snapshot_release(&s);
    /* an old version, from its own checkpoint */
    assert_int_equal(tl_snapshot(t, n / 2 + 7, &s, &e), 0);
    int64_t t3 = wtime_mono_ns();
    snprintf(want, sizeof(want), "{\"offset\":%" PRIu64 "}", n / 2 + 7);
    assert_string_equal(tl_snapshot_app(&s, "kafka:t")->json, want);
    tl_snapshot_release(&s);
    tl_free(t);
    double open_ms = (double)(t2 - t1) / 1e6, asof_ms = (double)(t3 - t2) / 1e6;
    print_message("checkpoints: %" PRIu64 " commits written in %.1f s; open + "
                  "latest snapshot %.2f ms; --as-of %.2f ms\n", n,
                  (double)(t1 - t0) / 1e9, open_ms, asof_ms);
    assert_true(open_ms < 200);
    /* without the hint, the directory listing finds the checkpoint */
    unlink(tmpdir_at("ds/_log/_last_checkpoint"));
    t = open_ds("ds");
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(s.version, n);
    tl_snapshot_release(&s);
    tl_free(t);
}

/* ---- vacuum ------------------------------------------------------------- */

static void test_vacuum(void **state)
{
    struct weir_errmsg e;
    struct tl_snapshot s;
    wtime_set_now(T0, 0);
    struct tablelog *t = open_ds("ds");
    struct tl_file a = make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 10);
    put_file(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"), "{}\n", 3);
    const char *seg[] = {RAW10 "n1-0-0000000001.ndjson"};
    struct tl_commit c1 = {.operation = "compact", .add = &a, .nadd = 1,
                           .absorbed = seg, .nabsorbed = 1};
    assert_int_equal(commit_ok(t, &c1), 1);
    unlink(tmpdir_at("ds/" RAW10 "n1-0-0000000001.ndjson"));  /* the compactor's */
    /* a handle that will sit idle through everything below */
    struct tablelog *idle = open_ds("ds");
    assert_int_equal(tl_snapshot(idle, 0, &s, &e), 0);
    tl_snapshot_release(&s);

    wtime_set_now(T0 + 1 * DAY, 0);
    struct tl_file b = make_file("ds", PQ10 "part-00000000000000000002-0.parquet", 10);
    const char *rm[] = {a.path};
    struct tl_commit c2 = {.operation = "optimize", .add = &b, .nadd = 1,
                           .remove = rm, .nremove = 1};
    assert_int_equal(commit_ok(t, &c2), 2);
    wtime_set_now(T0 + 2 * DAY, 0);
    struct tl_commit m = {.operation = "model", .app = "{\"a\":1}", .app_len = 7};
    assert_int_equal(commit_ok(t, &m), 3);

    /* within the retention: nothing goes, --as-of 1 works */
    wtime_set_now(T0 + 7 * DAY + NS, 0);
    struct tl_vacuum_stats vs = {0};
    assert_int_equal(tl_vacuum(t, 7 * DAY, &vs, &e), 0);   /* version 4 */
    assert_int_equal(vs.files_deleted, 0);
    assert_int_equal(vs.horizon, 1);
    /* the absorbed segment is gone from disk: forgotten */
    assert_int_equal(vs.absorbed_forgotten, 1);
    assert_true(exists(tmpdir_at("ds/%s", a.path)));
    assert_int_equal(tl_snapshot(t, 1, &s, &e), 0);
    tl_snapshot_release(&s);

    /* past it for versions 1 and 2: a's removal (version 2) is older than
     * the retention, so a goes, and versions before 2 are refused */
    wtime_set_now(T0 + 8 * DAY + NS, 0);
    memset(&vs, 0, sizeof(vs));
    assert_int_equal(tl_vacuum(t, 7 * DAY, &vs, &e), 0);
    assert_int_equal(vs.horizon, 2);
    assert_int_equal(vs.files_deleted, 1);
    assert_int_equal(vs.bytes_deleted, 10);
    assert_int_equal(vs.absorbed_forgotten, 0);
    assert_int_equal(vs.log_files_deleted, 1);
    assert_false(exists(tmpdir_at("ds/%s", a.path)));
    assert_true(exists(tmpdir_at("ds/%s", b.path)));
    assert_false(exists(tmpdir_at("ds/_log/00000000000000000001.json")));
    assert_true(exists(tmpdir_at("ds/_log/00000000000000000002.checkpoint.json")));
    assert_int_equal(tl_snapshot(t, 1, &s, &e), WEIR_ENOTFOUND);
    assert_non_null(strstr(e.text, "older than the oldest kept (2)"));
    assert_int_equal(tl_snapshot(t, 2, &s, &e), 0);
    assert_int_equal(s.nfiles, 1);
    assert_int_equal(s.nremoved, 1);   /* purged only at version 5 */
    tl_snapshot_release(&s);
    assert_int_equal(tl_snapshot(t, 0, &s, &e), 0);
    assert_int_equal(s.version, 5);
    assert_int_equal(s.oldest, 2);
    assert_int_equal(s.nremoved, 0);
    assert_int_equal(s.nabsorbed, 0);
    tl_snapshot_release(&s);
    /* a fresh open starts from the checkpoint */
    struct tablelog *t2 = open_ds("ds");
    assert_int_equal(tl_snapshot(t2, 0, &s, &e), 0);
    assert_int_equal(s.version, 5);
    tl_snapshot_release(&s);
    assert_int_equal(tl_snapshot(t2, 3, &s, &e), 0);
    tl_snapshot_release(&s);
    tl_free(t2);
    /* again: nothing more to do */
    memset(&vs, 0, sizeof(vs));
    assert_int_equal(tl_vacuum(t, 7 * DAY, &vs, &e), 0);
    assert_int_equal(vs.files_deleted + vs.log_files_deleted, 0);

    /* the idle handle (head at 1, whose successor commits are gone past
     * version 2) must not fork the history when it commits */
    for (int i = 0; i < 3; i++)
        commit_ok(t, &m);               /* 6, 7, 8 */
    wtime_set_now(T0 + 20 * DAY, 0);
    assert_int_equal(tl_vacuum(t, 7 * DAY, &vs, &e), 0);   /* vacuum = 9 */
    assert_false(exists(tmpdir_at("ds/_log/00000000000000000002.json")));
    assert_int_equal(commit_ok(idle, &m), 10);
    tl_free(idle);
    tl_free(t);
}

static void test_vacuum_crash(void **state)
{
    wtime_set_now(T0, 0);
    struct tablelog *t = open_ds("ds");
    struct tl_file a = make_file("ds", PQ10 "part-00000000000000000001-0.parquet", 10);
    struct tl_commit c1 = {.operation = "compact", .add = &a, .nadd = 1};
    commit_ok(t, &c1);
    const char *rm[] = {a.path};
    struct tl_commit c2 = {.operation = "gc", .remove = rm, .nremove = 1};
    commit_ok(t, &c2);
    tl_free(t);
    wtime_set_now(T0 + 30 * DAY, 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct tablelog *x;
        struct weir_errmsg e;
        tl_test_crash_at(TL_CRASH_IN_VACUUM);
        if (tl_open(tmpdir_at("ds"), &x, &e) || tl_vacuum(x, DAY, NULL, &e))
            _exit(2);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 99);
    /* committed, file not deleted: recovery sees an orphan */
    assert_true(exists(tmpdir_at("ds/%s", a.path)));
    t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_recover_stats st = {0};
    struct tl_recover_opts o = {0, 0};
    assert_int_equal(tl_recover(t, &o, &st, &e), 0);
    assert_int_equal(st.orphans_removed, 1);
    assert_false(exists(tmpdir_at("ds/%s", a.path)));
    struct tl_vacuum_stats vs = {0};
    assert_int_equal(tl_vacuum(t, DAY, &vs, &e), 0);
    assert_int_equal(vs.horizon, 2);
    tl_free(t);
}

/* ---- corrupt files ------------------------------------------------------ */

static void test_corrupt(void **state)
{
    struct tablelog *t = open_ds("ds");
    struct weir_errmsg e;
    struct tl_snapshot s;
    struct tl_commit m = {.operation = "model", .app = "{\"a\":1}", .app_len = 7};
    commit_ok(t, &m);
    tl_free(t);
    static const char *bad[] = {
        "garbage",
        "{\"format\":1,\"version\":2,\"timestamp\":\"2025-09-02T10:00:00Z\"",
        "{\"format\":1,\"version\":3,\"timestamp\":\"2025-09-02T10:00:00Z\","
        "\"operation\":\"x\"}",
        "{\"format\":2,\"version\":2,\"timestamp\":\"2025-09-02T10:00:00Z\","
        "\"operation\":\"x\"}",
        "{\"format\":1,\"version\":2,\"timestamp\":\"2025-09-02T10:00:00Z\","
        "\"operation\":\"x\",\"remove\":[\"parquet/a/part-00000000000000000001-0.parquet\"]}",
        "{\"format\":1,\"version\":2,\"timestamp\":\"yesterday\",\"operation\":\"x\"}",
        "{\"format\":1,\"version\":2,\"timestamp\":\"2025-09-02T10:00:00Z\","
        "\"operation\":\"x\",\"surprise\":1}",
        "{\"format\":1,\"version\":2,\"timestamp\":\"2025-09-02T10:00:00Z\","
        "\"operation\":\"x\",\"absorbed\":[\"raw/../../etc/x.ndjson\"]}",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_file(tmpdir_at("ds/_log/00000000000000000002.json"), bad[i], strlen(bad[i]));
        t = open_ds("ds");
        assert_int_equal(tl_snapshot(t, 0, &s, &e), WEIR_ECORRUPT);
        assert_non_null(strstr(e.text, "00000000000000000002.json"));
        /* a writer cannot go past it either */
        assert_int_equal(tl_commit(t, &m, NULL, &e), WEIR_ECORRUPT);
        tl_free(t);
    }
    /* version 1 alone is still readable with --as-of */
    t = open_ds("ds");
    unlink(tmpdir_at("ds/_log/00000000000000000002.json"));
    assert_int_equal(tl_snapshot(t, 1, &s, &e), 0);
    tl_snapshot_release(&s);
    tl_free(t);
    /* a corrupt checkpoint is named too, never skipped */
    build_history("ck", 100, 0);
    put_file(tmpdir_at("ck/_log/00000000000000000100.checkpoint.json"), "{\"format\":1}", 12);
    t = open_ds("ck");
    assert_int_equal(tl_snapshot(t, 0, &s, &e), WEIR_ECORRUPT);
    assert_non_null(strstr(e.text, "00000000000000000100.checkpoint.json"));
    tl_free(t);
    /* the parser entry point of the fuzzer */
    assert_int_equal(tl_parse_commit_text("x", "{}", 2, &e), WEIR_ECORRUPT);
    const char *ok = "{\"format\":1,\"version\":2,\"timestamp\":"
                     "\"2025-09-02T10:00:00.000000001Z\",\"operation\":\"x\"}";
    assert_int_equal(tl_parse_commit_text("x", ok, strlen(ok), &e), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_race, setup_shm, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_each_syscall, setup_shm, teardown),
        cmocka_unit_test_setup_teardown(test_recover_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_and_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_speed, setup_shm, teardown),
        cmocka_unit_test_setup_teardown(test_vacuum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vacuum_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
