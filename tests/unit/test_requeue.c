/*
 * test_requeue.c - weir requeue's protocol: what is requeued and what stays
 * (per reason, lax and strict), untouched segments, dry run, filters, runs
 * that change nothing, a large quarantine, and interruption at every step:
 * an I/O error at each call of each file operation (fsio_fault_set), a
 * "crash" after each single file operation (a syscall table that stops
 * working), and a real SIGKILL at each step of the protocol (forked child,
 * WEIR_REQUEUE_CRASH_AT). After each, recovery and a second run must leave
 * exactly the expected records, each once, in raw and quarantine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "schema/schema.h"
#include "schema/validate.h"
#include "store/quarantine.h"
#include "store/recover.h"
#include "store/requeue.h"
#include "store/segment.h"

#include "tmpdir.h"

#define S_ INT64_C(1000000000)
#define H10 (INT64_C(1756807200) * S_) /* 2025-09-02T10:00Z */
#define H11 (H10 + 3600 * S_)

static char *root;
static char data[128];

static int setup(void **state)
{
    root = tmpdir_make(NULL, "rq");
    if (!root)
        return -1;
    snprintf(data, sizeof(data), "%s/data", root);
    fsio_fault_off();
    log_setup(LOG_ERROR, LOG_TEXT);
    return 0;
}

static int teardown(void **state)
{
    fsio_fault_off();
    fsio_sys_set(NULL);
    unsetenv("WEIR_REQUEUE_CRASH_AT");
    return tmpdir_remove(root);
}

/* ---- config and schemas ------------------------------------------------- */

static const char SCHEMA[] =
    "{\"type\":\"object\",\"required\":[\"v\"],"
    "\"properties\":{\"ts\":{\"type\":\"integer\"},\"v\":{\"type\":\"number\"}}}";

struct env {
    struct weir_config cfg;
    const struct config_pipeline *p;
    struct schema *schema;
};

static void env_init(struct env *v, int lax, const char *extra)
{
    char path[PATH_MAX], yaml[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/s.json", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(SCHEMA, f);
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "data_dir: %s\nnode: n1\nmetrics: off\npipelines:\n"
             "  - name: p\n    schema: %s\n    time_field: ts\n"
             "    lax: %s\n%s",
             data, path, lax ? "true" : "false", extra ? extra : "");
    struct weir_errmsg e = {0};
    int rc = config_load_string("t.yaml", yaml, strlen(yaml), root, &v->cfg, &e);
    if (rc)
        fail_msg("config: %s", e.text);
    v->p = config_pipeline(&v->cfg, "p");
    assert_non_null(v->p);
    struct schema_opts so = {.lax = lax};
    v->schema = schema_load_file(path, &so, &e);
    assert_non_null(v->schema);
}

static void env_release(struct env *v)
{
    schema_free(v->schema);
    config_release(&v->cfg);
}

static int run(struct env *v, const struct requeue_opts *o,
               struct requeue_counts *c)
{
    struct requeue_opts none = {0};
    struct weir_errmsg e = {0};
    memset(c, 0, sizeof(*c));
    return requeue_run(&v->cfg, v->p, v->schema, o ? o : &none, c, &e);
}

/* ---- the quarantine we start from --------------------------------------- */

/* Records by id. kind: what requeue must do with it under the lax schema
 * (and under the strict one). */
enum fate { MOVE, STAY, ACTIVE, UNREADABLE };

struct rec {
    int id;
    enum fate lax, strict;
};

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    static char b[8][512];
    static int k;
    k = (k + 1) % 8;
    va_list ap;
    va_start(ap, f);
    vsnprintf(b[k], sizeof(b[k]), f, ap);
    va_end(ap);
    return b[k];
}

/* The verdict the strict schema gives raw, as the server would write it. */
static void strict_verdict(const char *raw, size_t n, char *path, char *msg)
{
    struct schema_opts so = {0};
    struct weir_errmsg e;
    struct schema *s = schema_compile(SCHEMA, strlen(SCHEMA), NULL, &so, &e);
    assert_non_null(s);
    struct validator *v = validator_new(s);
    struct verdict vd;
    assert_int_equal(validator_check(v, raw, n, &vd), 0);
    snprintf(path, 512, "%s", vd.path);
    snprintf(msg, 512, "%s", vd.message);
    validator_free(v);
    schema_free(s);
}

static void quar(struct quar_writer *q, int64_t at, enum quar_reason r,
                 const char *raw, size_t n, const char *path, const char *err,
                 int truncated)
{
    char vp[512], vm[512];
    if (r == QUAR_INVALID && !path) {
        strict_verdict(raw, n, vp, vm);
        path = vp;
        err = vm;
    }
    struct quar_record qr = {
        .received_at_ns = at, .peer = "127.0.0.1:5555", .reason = r,
        .path = path, .error = err, .raw = raw, .raw_len = n,
        .truncated = truncated, .size = truncated ? 9999999 : 0,
    };
    assert_true(seg_taken(quar_append(q, &qr)));
}

static struct quar_writer *qwriter_of(const char *node, unsigned thread)
{
    struct seg_config c = {.data_dir = data, .pipeline = "p",
                           .kind = "quarantine", .node = node,
                           .thread = thread};
    struct quar_writer *q;
    assert_int_equal(quar_writer_new(&c, &q, NULL), 0);
    return q;
}

static struct quar_writer *qwriter(unsigned thread)
{
    return qwriter_of("n1", thread);
}

static void put_file(const char *path, const char *text)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(fsio_mkdir_p(dir, 0755), 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get_file(const char *path, size_t *n)
{
    struct buf b = BUF_INIT(256u << 20);
    if (fsio_read_file(path, &b) != 0)
        return NULL;
    buf_puts(&b, "");
    return buf_detach(&b, n);
}

#define QDIR10 "p/quarantine/date=2025-09-02/hour=10/"
#define QDIR11 "p/quarantine/date=2025-09-02/hour=11/"

/* The raw text of record id, as it was sent. */
static const char *raw_of(int id)
{
    int64_t s10 = H10 / S_, s11 = H11 / S_;
    switch (id) {
    case 1: return fmt("{\"ts\":%" PRId64 ",\"v\":\"1.5\",\"id\":1}", s10 - 7195);
    case 2: return fmt("{\"ts\":%" PRId64 ",\"id\":2}", s10);
    case 3: return fmt("{\"ts\":%" PRId64 ",\"v\":\"2\",\"id\":3}", s10 - 3600);
    case 4: return "{\"id\":4,";
    case 5: return "{\"ts\":1,\"v\":1,\"id\":5";
    case 6: return fmt("{\"ts\":%" PRId64 ",\"v\":6,\"id\":6}", s10);
    case 7: return "{\"ts\":17";
    case 8: return "{\"v\":8,\"id\":8}";
    case 9: return "\xff\xfe";
    case 10: return fmt("{\"ts\":%" PRId64 ",\"v\":\"10\",\"id\":10}", s10 + 1);
    case 12: return fmt("{\"ts\":%" PRId64 ",\"v\":\"12\",\"id\":12}", s11);
    case 13: return fmt("{\"ts\":%" PRId64 ",\"v\":13,\"id\":13}", s11 - 40 * 86400);
    case 14: return fmt("{\"ts\":%" PRId64 ",\"v\":\"14\",\"id\":14}", s11);
    case 15: return "{\"ts\":2,\"v\":2,\"id\":15";
    case 16: return fmt("{\"ts\":%" PRId64 ",\"id\":16}", s10);
    case 17: return fmt("{\"ts\":%" PRId64 ",\"v\":\"x\",\"id\":17}", s10);
    }
    return NULL;
}

static const struct rec RECS[] = {
    {1, MOVE, STAY},   {2, STAY, STAY},   {3, MOVE, STAY},
    {4, STAY, STAY},   {5, STAY, STAY},   {6, MOVE, MOVE},
    {7, STAY, STAY},   {8, STAY, STAY},   {9, STAY, STAY},
    {10, MOVE, STAY},  {11, UNREADABLE, UNREADABLE},
    {12, MOVE, STAY},  {13, STAY, STAY},  {14, ACTIVE, ACTIVE},
    {15, STAY, STAY},  {16, STAY, STAY},  {17, STAY, STAY},
};
#define NRECS (sizeof(RECS) / sizeof(RECS[0]))

#define GARBAGE "not a quarantine line"
static char seg_e[PATH_MAX]; /* a segment in which nothing changes (lax) */

static void populate(void)
{
    const char *r;
    char when[40];
    /* A: hour 10, thread 0 */
    struct quar_writer *q = qwriter(0);
    r = raw_of(1); quar(q, H10 + 1000, QUAR_INVALID, r, strlen(r), NULL, NULL, 0);
    r = raw_of(2); quar(q, H10 + 2000, QUAR_INVALID, r, strlen(r), NULL, NULL, 0);
    r = raw_of(3); quar(q, H10 + 3000, QUAR_INVALID, r, strlen(r), NULL, NULL, 0);
    r = raw_of(4);
    quar(q, H10 + 4000, QUAR_TRUNCATED, r, strlen(r), "",
         "invalid JSON at byte 8: the input ended inside a value (the "
         "connection closed in the middle of this record)", 0);
    r = raw_of(5);
    quar(q, H10 + 5000, QUAR_TOO_LARGE, r, strlen(r), "",
         "record longer than max_record (1048576 bytes)", 1);
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);
    /* B: hour 10, thread 1 */
    q = qwriter(1);
    r = raw_of(6);
    quar(q, H10 + 6000, QUAR_TORN, r, strlen(r), NULL, "torn line cut at recovery", 0);
    r = raw_of(7);
    quar(q, H10 + 7000, QUAR_TORN, r, strlen(r), NULL, "torn line cut at recovery", 0);
    r = raw_of(8);
    quar(q, H10 + 8000, QUAR_TIME_MISSING, r, strlen(r), "",
         "missing time field \"ts\"", 0);
    r = raw_of(9); quar(q, H10 + 9000, QUAR_INVALID, r, strlen(r), NULL, NULL, 0);
    r = raw_of(17);
    quar(q, H10 + 9500, QUAR_INVALID, r, strlen(r), "/v", "a stale verdict", 0);
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);
    /* E: hour 10, thread 0 again: nothing in it can change under lax */
    q = qwriter(0);
    r = raw_of(15);
    quar(q, H10 + 15000, QUAR_TOO_LARGE, r, strlen(r), "",
         "record longer than max_record (1048576 bytes)", 1);
    r = raw_of(16); quar(q, H10 + 16000, QUAR_INVALID, r, strlen(r), NULL, NULL, 0);
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);
    /* the second writer of thread 0 starts past the block the first one
     * reserved */
    snprintf(seg_e, sizeof(seg_e), "%s/" QDIR10 "n1-0-%010d.ndjson", data,
             SEG_SEQ_BLOCK + 1);
    assert_int_equal(access(seg_e, F_OK), 0);
    /* C: hour 11, written by hand: a base64 record, a line that is no
     * quarantine record, and two formatted ones */
    struct buf b = BUF_INIT(1 << 20);
    char vp[512], vm[512];
    r = raw_of(10);
    strict_verdict(r, strlen(r), vp, vm);
    buf_puts(&b, "{\"received_at\":\"2025-09-02T11:00:00.100Z\",\"peer\":null,"
                 "\"pipeline\":\"p\",\"reason\":\"invalid\",\"path\":");
    buf_put_json_string(&b, vp, strlen(vp));
    buf_puts(&b, ",\"error\":");
    buf_put_json_string(&b, vm, strlen(vm));
    buf_puts(&b, ",\"raw_b64\":\"");
    buf_put_base64(&b, r, strlen(r));
    buf_puts(&b, "\"}\n" GARBAGE "\n");
    struct quar_record qr = {.received_at_ns = H11 + 12000, .reason = QUAR_INVALID};
    r = raw_of(12);
    strict_verdict(r, strlen(r), vp, vm);
    qr.path = vp;
    qr.error = vm;
    qr.raw = r;
    qr.raw_len = strlen(r);
    assert_int_equal(quar_format(&b, "p", &qr), 0);
    buf_putc(&b, '\n');
    r = raw_of(13);
    wtime_format_rfc3339(H11 - 40 * 86400 * S_, 0, when, sizeof(when));
    qr.received_at_ns = H11 + 13000;
    qr.reason = QUAR_TIME_OUT_OF_RANGE;
    qr.path = "";
    qr.error = fmt("event time %s is outside the accepted window "
                   "(time_max_ahead / time_max_age)", when);
    qr.raw = r;
    qr.raw_len = strlen(r);
    assert_int_equal(quar_format(&b, "p", &qr), 0);
    buf_putc(&b, '\n');
    put_file(fmt("%s/" QDIR11 "n1-5-0000000001.ndjson", data), b.data);
    buf_release(&b);
    /* D: hour 11, still being written by a running server (of another
     * node, so that the recovery of n1 in some tests leaves it alone) */
    q = qwriter_of("n2", 0);
    r = raw_of(14); quar(q, H11 + 14000, QUAR_INVALID, r, strlen(r), NULL, NULL, 0);
    assert_int_equal(seg_flush(quar_seg(q)), 0);
    quar_writer_free(q); /* not sealed */
}

/* ---- reading back what is on disk --------------------------------------- */

/* "id" of a record's text, 0 if none. */
static int id_of(const char *s, size_t n)
{
    for (size_t i = 0; i + 5 < n; i++)
        if (memcmp(s + i, "\"id\":", 5) == 0)
            return (int)strtol(s + i + 5, NULL, 10);
    return 0;
}

struct seen {
    int raw[32];   /* times in a sealed raw segment */
    int quar[32];  /* times in a quarantine segment (sealed or not) */
    int active[32];
    int garbage;
    int bad_partition;
    int bad_bytes;
};

static size_t b64dec(const char *s, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        acc = acc << 6 | (unsigned)(strchr(a, s[i]) - a);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits);
        }
    }
    return o;
}

/* The expected stored form of a requeued record (lax coercion). */
static void expected_stored(int id, char *out, size_t cap)
{
    struct schema_opts so = {.lax = 1};
    struct weir_errmsg e;
    struct schema *s = schema_compile(SCHEMA, strlen(SCHEMA), NULL, &so, &e);
    struct validator *v = validator_new(s);
    const char *r = raw_of(id);
    assert_int_equal(validator_check(v, r, strlen(r), NULL), 1);
    size_t n;
    const char *o = validator_output(v, &n);
    snprintf(out, cap, "%.*s", (int)n, o);
    validator_free(v);
    schema_free(s);
}

static void scan(struct seen *sn, int check_bytes)
{
    memset(sn, 0, sizeof(*sn));
    struct seg_list l;
    struct json_doc d;
    json_doc_init(&d, 0);
    assert_int_equal(seg_list(data, "p", "raw", &l, NULL), 0);
    for (size_t i = 0; i < l.n; i++) {
        size_t n;
        char *t = get_file(l.v[i].path, &n);
        assert_non_null(t);
        for (char *line = t, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            int id = id_of(line, (size_t)(nl - line));
            if (id <= 0 || id >= 32)
                fail_msg("%s: %.*s", l.v[i].path, (int)(nl - line), line);
            if (l.v[i].active)
                continue;
            sn->raw[id]++;
            /* in the partition of its event time */
            long long ts = strtoll(strstr(line, "\"ts\":") + 5, NULL, 10);
            int64_t start;
            part_start(ts * S_, PART_HOUR, &start);
            if (start != l.v[i].part_start)
                sn->bad_partition++;
            if (check_bytes) {
                char want[256];
                expected_stored(id, want, sizeof(want));
                if (strlen(want) != (size_t)(nl - line) ||
                    memcmp(want, line, strlen(want)) != 0)
                    sn->bad_bytes++;
            }
        }
        free(t);
    }
    seg_list_release(&l);
    assert_int_equal(seg_list(data, "p", "quarantine", &l, NULL), 0);
    for (size_t i = 0; i < l.n; i++) {
        size_t n;
        char *t = get_file(l.v[i].path, &n);
        assert_non_null(t);
        for (char *line = t, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            size_t len = (size_t)(nl - line);
            if (len == strlen(GARBAGE) && memcmp(line, GARBAGE, len) == 0) {
                sn->garbage++;
                continue;
            }
            assert_int_equal(json_scan(&d, line, len), JSON_OK);
            int k = json_lookup(&d, 0, "raw", 3);
            char raw[4096];
            size_t rn;
            if (k >= 0) {
                rn = json_str_decode(&d, &d.toks[k], raw, sizeof(raw));
            } else {
                k = json_lookup(&d, 0, "raw_b64", 7);
                assert_true(k >= 0);
                rn = b64dec(line + d.toks[k].off + 1, d.toks[k].len - 2, raw);
            }
            int id = id_of(raw, rn);
            if (id == 0 && rn == 2 && memcmp(raw, "\xff\xfe", 2) == 0)
                id = 9;
            if (id == 0 && rn == 8 && memcmp(raw, "{\"ts\":17", 8) == 0)
                id = 7;
            assert_true(id > 0 && id < 32);
            /* the bytes are exactly those received */
            assert_int_equal(rn, strlen(raw_of(id)));
            assert_memory_equal(raw, raw_of(id), rn);
            if (l.v[i].active)
                sn->active[id]++;
            else
                sn->quar[id]++;
        }
        free(t);
    }
    seg_list_release(&l);
    json_doc_release(&d);
}

/* Everything exactly once where it belongs after requeue (lax: 1). */
static void check_final(int lax)
{
    struct seen sn;
    scan(&sn, lax);
    for (size_t i = 0; i < NRECS; i++) {
        int id = RECS[i].id;
        enum fate f = lax ? RECS[i].lax : RECS[i].strict;
        if (f == UNREADABLE) {
            assert_int_equal(sn.garbage, 1);
            continue;
        }
        if (sn.raw[id] != (f == MOVE) || sn.quar[id] != (f == STAY) ||
            sn.active[id] != (f == ACTIVE))
            fail_msg("record %d: raw %d, quarantine %d, active %d", id,
                     sn.raw[id], sn.quar[id], sn.active[id]);
    }
    assert_int_equal(sn.bad_partition, 0);
    assert_int_equal(sn.bad_bytes, 0);
}

/* Nothing lost, nothing twice (between a crash and the next run, a record
 * may be in raw or in quarantine, never both nor neither). */
static void check_once(void)
{
    struct seen sn;
    scan(&sn, 0);
    for (size_t i = 0; i < NRECS; i++) {
        int id = RECS[i].id;
        if (RECS[i].lax == UNREADABLE) {
            assert_int_equal(sn.garbage, 1);
            continue;
        }
        int total = sn.raw[id] + sn.quar[id] + sn.active[id];
        if (total != 1 || (RECS[i].lax != MOVE && sn.raw[id]))
            fail_msg("record %d: raw %d, quarantine %d, active %d", id,
                     sn.raw[id], sn.quar[id], sn.active[id]);
    }
    assert_int_equal(sn.bad_partition, 0);
}

/* No staging file, no journal, no temp file of requeue's left. */
static void check_clean(void)
{
    DIR *d = opendir(fmt("%s/p/_requeue", data));
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                fail_msg("left in _requeue: %s", de->d_name);
        closedir(d);
    }
    const char *seqs[2] = {"raw", "quarantine"};
    for (int k = 0; k < 2; k++) {
        d = opendir(fmt("%s/p/%s/_seq", data, seqs[k]));
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (strstr(de->d_name, ".tmp."))
                fail_msg("left in _seq: %s", de->d_name);
        closedir(d);
    }
}

/* Every file under data with its content, except lock files: to show that
 * a run changed nothing. */
static struct buf *snap_out;
static int snap_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag != FTW_F || strstr(p, ".lock"))
        return 0;
    size_t n;
    char *t = get_file(p, &n);
    buf_appendf(snap_out, "%s\n%zu\n", p, n);
    buf_append(snap_out, t, n);
    free(t);
    return 0;
}

static char *snapshot(void)
{
    struct buf b = BUF_INIT(64u << 20);
    snap_out = &b;
    nftw(data, snap_cb, 16, FTW_PHYS);
    /* nftw's order is readdir's: sort the entries (one per line pair) by
     * building them in sorted order is overkill; readdir order is stable
     * for an unchanged directory, which is what is compared. */
    return buf_detach(&b, NULL);
}

/* ---- the tests ---------------------------------------------------------- */

static void expect_lax_counts(const struct requeue_counts *c)
{
    assert_int_equal(c->requeued[QUAR_INVALID], 4);  /* 1 3 10 12 */
    assert_int_equal(c->stay[QUAR_INVALID], 4);      /* 2 9 16 17 */
    assert_int_equal(c->requeued[QUAR_TORN], 1);     /* 6 */
    assert_int_equal(c->stay[QUAR_TORN], 1);         /* 7 */
    assert_int_equal(c->stay[QUAR_TRUNCATED], 1);    /* 4 */
    assert_int_equal(c->stay[QUAR_TOO_LARGE], 2);    /* 5 15 */
    assert_int_equal(c->stay[QUAR_TIME_MISSING], 1); /* 8 */
    assert_int_equal(c->stay[QUAR_TIME_OUT_OF_RANGE], 1); /* 13 */
    assert_int_equal(requeue_total(c->requeued), 5);
    assert_int_equal(c->cut, 2);
    assert_int_equal(c->unreadable, 1);
    assert_int_equal(c->reverdict[QUAR_INVALID], 1); /* 17 */
    assert_int_equal(requeue_total(c->reverdict), 1);
    assert_int_equal(c->segments, 4);
    assert_int_equal(c->rewritten, 3);  /* A, B, C; not E */
    assert_int_equal(c->raw_segments, 4 + 1); /* A: 08, 09; B: 10; C: 10, 11 */
    assert_int_equal(c->active, 1);
}

static void test_lax_requeue(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    populate();
    assert_int_equal(run(&v, NULL, &c), 0);
    expect_lax_counts(&c);
    check_final(1);
    check_clean();
    /* E, where nothing could change, is the same file */
    assert_int_equal(access(seg_e, F_OK), 0);
    /* the outputs carry requeue's thread number */
    struct seg_list l;
    assert_int_equal(seg_list(data, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 5);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.v[i].sn.thread, SEG_THREAD_REQUEUE);
        assert_false(l.v[i].active);
    }
    seg_list_release(&l);
    /* the record with a stale verdict has its new one */
    size_t n;
    char *t = NULL;
    assert_int_equal(seg_list(data, "p", "quarantine", &l, NULL), 0);
    int found = 0;
    for (size_t i = 0; i < l.n; i++) {
        t = get_file(l.v[i].path, &n);
        if (strstr(t, "\\\"id\\\":17")) {
            assert_null(strstr(t, "a stale verdict"));
            assert_non_null(strstr(t, "\"path\":\"/v\""));
            found = 1;
        }
        free(t);
    }
    seg_list_release(&l);
    assert_true(found);

    /* Again: nothing changes, nothing is requeued. */
    char *before = snapshot();
    assert_int_equal(run(&v, NULL, &c), 0);
    char *after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(requeue_total(c.requeued), 0);
    assert_int_equal(requeue_total(c.reverdict), 0);
    assert_int_equal(c.rewritten, 0);
    assert_int_equal(requeue_total(c.stay), 10);
    env_release(&v);
}

static void test_strict_requeue(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 0, NULL);
    populate();
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(requeue_total(c.requeued), 1); /* 6, valid as it was */
    assert_int_equal(c.requeued[QUAR_TORN], 1);
    assert_int_equal(requeue_total(c.reverdict), 1); /* 17 */
    check_final(0);
    check_clean();
    char *before = snapshot();
    assert_int_equal(run(&v, NULL, &c), 0);
    char *after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(requeue_total(c.requeued) + requeue_total(c.reverdict), 0);
    env_release(&v);
}

static void test_dry_run(void **state)
{
    struct env v;
    struct requeue_counts c, real;
    struct requeue_opts o = {.dry_run = 1};
    env_init(&v, 1, NULL);
    populate();
    char *before = snapshot();
    assert_int_equal(run(&v, &o, &c), 0);
    char *after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(access(fmt("%s/p/_requeue", data), F_OK), -1);
    assert_int_equal(run(&v, NULL, &real), 0);
    assert_memory_equal(c.requeued, real.requeued, sizeof(c.requeued));
    assert_memory_equal(c.stay, real.stay, sizeof(c.stay));
    assert_memory_equal(c.reverdict, real.reverdict, sizeof(c.reverdict));
    assert_int_equal(c.rewritten, real.rewritten);
    assert_int_equal(c.raw_segments, 0);
    env_release(&v);
}

static void test_filters(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    populate();
    /* only torn records */
    struct requeue_opts o = {.reasons = 1u << QUAR_TORN};
    assert_int_equal(run(&v, &o, &c), 0);
    assert_int_equal(requeue_total(c.requeued), 1);
    assert_int_equal(c.requeued[QUAR_TORN], 1);
    assert_int_equal(requeue_total(c.stay), 1);
    assert_int_equal(c.skipped, 13); /* 16 lines read, 1 unreadable, 2 torn */
    struct seen sn;
    scan(&sn, 0);
    assert_int_equal(sn.raw[6], 1);
    assert_int_equal(sn.raw[1] + sn.raw[3] + sn.raw[10] + sn.raw[12], 0);
    /* then only what arrived during hour 11: 10 and 12 */
    struct requeue_opts o2 = {.range = 1, .from_ns = H11, .to_ns = H11 + 3600 * S_};
    assert_int_equal(run(&v, &o2, &c), 0);
    assert_int_equal(requeue_total(c.requeued), 2);
    assert_int_equal(c.segments, 1);
    scan(&sn, 0);
    assert_int_equal(sn.raw[10] + sn.raw[12], 2);
    assert_int_equal(sn.raw[1] + sn.raw[3], 0);
    /* then the rest */
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(requeue_total(c.requeued), 2);
    check_final(1);
    check_clean();
    env_release(&v);
}

static void test_day_partitions(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, "    partition: day\n");
    populate();
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(requeue_total(c.requeued), 5);
    assert_int_equal(c.raw_segments, 3); /* A, B, C: one day each */
    struct seg_list l;
    assert_int_equal(seg_list(data, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 3);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(l.v[i].grain, PART_DAY);
    seg_list_release(&l);
    env_release(&v);
}

/* ---- interruption ------------------------------------------------------- */

/* The interruption tests kill the process, not the machine: the page cache
 * survives, so fsync decides nothing there and only costs time (hundreds
 * of runs). They run with fsync as a no-op. */
static int nop_sync(int fd) { return 0; }

static void fast_disk(void)
{
    struct fsio_sys t = {0};
    t.fsync = nop_sync;
    t.fdatasync = nop_sync;
    fsio_sys_set(&t);
}

static void fresh(void)
{
    assert_int_equal(tmpdir_remove(data), 0);
    populate();
}

/* After an interrupted run: what serve's start-up does, then a full run,
 * then one that changes nothing. */
static void finish_and_check(struct env *v)
{
    struct requeue_counts c = {0};
    struct weir_errmsg e = {0};
    if (requeue_recover(data, "p", &c, &e) != 0)
        fail_msg("recover: %s", e.text);
    check_once();
    if (run(v, NULL, &c) != 0)
        fail_msg("second run failed");
    check_final(1);
    check_clean();
    assert_int_equal(run(v, NULL, &c), 0);
    assert_int_equal(requeue_total(c.requeued) + requeue_total(c.reverdict), 0);
    assert_int_equal(c.rewritten, 0);
}

static void test_fault_every_call(void **state)
{
    static const enum fsio_op ops[] = {
        FSIO_OP_OPEN, FSIO_OP_READ, FSIO_OP_WRITE, FSIO_OP_FSYNC,
        FSIO_OP_RENAME, FSIO_OP_UNLINK, FSIO_OP_MKDIR, FSIO_OP_STAT,
        FSIO_OP_OPENDIR, FSIO_OP_CLOSE,
    };
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    fast_disk();
    unsigned long total = 0, failed = 0;
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        fresh();
        fsio_fault_reset();
        assert_int_equal(run(&v, NULL, &c), 0);
        unsigned long calls = fsio_fault_calls(ops[k]);
        fsio_fault_off();
        for (unsigned long i = 0; i < calls; i++) {
            fresh();
            fsio_fault_set(ops[k], i, ops[k] == FSIO_OP_WRITE ? ENOSPC : EIO, 0);
            int rc = run(&v, NULL, &c);
            int hit = fsio_fault_hits(ops[k]) > 0;
            fsio_fault_off();
            total++;
            failed += rc != 0;
            /* Some failures are rightly survived: a stat only hides a
             * file for a moment (the lister skips it, a name is taken as
             * free), a close after the fsync changes nothing, and a
             * missing counter file's fallback scan may come up empty (the
             * names are checked one by one anyway). */
            if (hit && rc == 0 && ops[k] != FSIO_OP_CLOSE &&
                ops[k] != FSIO_OP_STAT && ops[k] != FSIO_OP_OPENDIR)
                fail_msg("%s call %lu failed and the run said 0",
                         fsio_op_name(ops[k]), i);
            finish_and_check(&v);
        }
    }
    print_message("%lu faults injected, %lu runs stopped by them\n", total,
                  failed);
    assert_true(failed > 50);
    env_release(&v);
}

/* A disk that stops working after `budget` operations: what a kill -9 (or
 * a power cut with everything fsynced) leaves, at every point. */
static long budget = -1;
static struct fsio_sys real;

static long refused; /* operations refused, closes and stats aside */

#define DIE_OR(call)                                                         \
    do {                                                                     \
        if (budget == 0) {                                                   \
            refused++;                                                       \
            errno = EIO;                                                     \
            return -1;                                                       \
        }                                                                    \
        if (budget > 0)                                                      \
            budget--;                                                        \
        return call;                                                         \
    } while (0)

static int c_open(const char *p, int f, mode_t m) { DIE_OR(real.open(p, f, m)); }
static ssize_t c_read(int fd, void *p, size_t n) { DIE_OR(real.read(fd, p, n)); }
static ssize_t c_pread(int fd, void *p, size_t n, off_t o) { DIE_OR(real.pread(fd, p, n, o)); }
static ssize_t c_write(int fd, const void *p, size_t n) { DIE_OR(real.write(fd, p, n)); }
static ssize_t c_pwrite(int fd, const void *p, size_t n, off_t o) { DIE_OR(real.pwrite(fd, p, n, o)); }
static int c_fsync(int fd) { DIE_OR(nop_sync(fd)); }
static int c_fdatasync(int fd) { DIE_OR(nop_sync(fd)); }
static int c_ftruncate(int fd, off_t n) { DIE_OR(real.ftruncate(fd, n)); }
/* A failed stat may legitimately be taken as "not there" (the lister
 * skips a file that vanished), and a failed close of a file that needs
 * nothing more (read, or already fsynced) changes nothing: neither has to
 * stop the run. */
#define DIE_QUIETLY_OR(call)                                                 \
    do {                                                                     \
        if (budget == 0) {                                                   \
            errno = EIO;                                                     \
            return -1;                                                       \
        }                                                                    \
        if (budget > 0)                                                      \
            budget--;                                                        \
        return call;                                                         \
    } while (0)
static int c_close(int fd)
{
    real.close(fd); /* the descriptor is gone whatever close says */
    DIE_QUIETLY_OR(0);
}
static int c_fstat(int fd, struct stat *s) { DIE_QUIETLY_OR(real.fstat(fd, s)); }
static int c_stat(const char *p, struct stat *s) { DIE_QUIETLY_OR(real.stat(p, s)); }
static int c_rename(const char *a, const char *b) { DIE_OR(real.rename(a, b)); }
static int c_renameat2(int fa, const char *a, int fb, const char *b, unsigned f) { DIE_OR(real.renameat2(fa, a, fb, b, f)); }
static int c_link(const char *a, const char *b) { DIE_OR(real.link(a, b)); }
static int c_unlink(const char *p) { DIE_OR(real.unlink(p)); }
static int c_mkdir(const char *p, mode_t m) { DIE_OR(real.mkdir(p, m)); }
static int c_rmdir(const char *p) { DIE_OR(real.rmdir(p)); }
static DIR *c_opendir(const char *p)
{
    if (budget == 0) {
        errno = EIO;
        return NULL;
    }
    if (budget > 0)
        budget--;
    return real.opendir(p);
}

static void test_crash_after_every_operation(void **state)
{
    static const struct fsio_sys crashing = {
        c_open, c_close, c_read, c_pread, c_write, c_pwrite, c_fsync,
        c_fdatasync, c_ftruncate, c_fstat, c_stat, c_rename, c_renameat2,
        c_link, c_unlink, c_mkdir, c_rmdir, c_opendir,
    };
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    fast_disk();
    fsio_sys_get(&real);
    /* how many operations a whole run takes */
    fresh();
    budget = LONG_MAX;
    fsio_sys_set(&crashing);
    assert_int_equal(run(&v, NULL, &c), 0);
    fast_disk();
    long ops = LONG_MAX - budget;
    budget = -1;
    assert_true(ops > 50);
    for (long k = 0; k <= ops; k++) {
        fresh();
        budget = k;
        refused = 0;
        fsio_sys_set(&crashing);
        int rc = run(&v, NULL, &c);
        fast_disk();
        budget = -1;
        if (refused && rc == 0)
            fail_msg("the run survived a dead disk after %ld operations", k);
        finish_and_check(&v);
    }
    print_message("crashed after each of %ld operations\n", ops);
    env_release(&v);
}

/* A real SIGKILL at each step of the protocol, in a child process. */
static void test_sigkill_at_each_step(void **state)
{
    static const char *const steps[] = {
        "staged", "staged:2", "journal", "journal:3", "renamed", "renamed:2",
        "renamed:4", "source", "source:3",
    };
    struct env v;
    env_init(&v, 1, NULL);
    fast_disk();
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        fresh();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct requeue_counts c;
            setenv("WEIR_REQUEUE_CRASH_AT", steps[k], 1);
            run(&v, NULL, &c);
            _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("step %s: the child was not killed there", steps[k]);
        if (k % 2 == 0) {
            finish_and_check(&v);
            continue;
        }
        /* the server's start-up finishes it too */
        struct seg_config sc = {.data_dir = data, .pipeline = "p",
                                .kind = "quarantine", .node = "n1",
                                .thread = 0, .sync = SEG_SYNC_ALWAYS};
        struct quar_writer *q;
        assert_int_equal(quar_writer_new(&sc, &q, NULL), 0);
        struct recover_stats st = {0};
        struct weir_errmsg e;
        int rc = recover_pipeline(data, "p", "n1", recover_torn_to_quarantine,
                                  q, &st, &e);
        if (rc)
            fail_msg("recover_pipeline: %s", e.text);
        assert_int_equal(seg_close_all(quar_seg(q)), 0);
        quar_writer_free(q);
        if (strncmp(steps[k], "staged", 6) == 0)
            assert_true(st.requeue_discarded > 0);
        else
            assert_int_equal(st.requeue_finished, 1);
        check_once();
        check_clean();
        finish_and_check(&v);
    }
    env_release(&v);
}

/* A dry run after an interrupted run: the journal is reported, its
 * segment is not judged again, nothing changes. */
static void test_dry_run_pending(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    fast_disk();
    populate();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("WEIR_REQUEUE_CRASH_AT", "journal", 1);
        run(&v, NULL, &c);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    char *before = snapshot();
    struct requeue_opts o = {.dry_run = 1};
    assert_int_equal(run(&v, &o, &c), 0);
    char *after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(c.pending, 1);
    assert_int_equal(c.segments, 3);          /* A has its journal */
    assert_int_equal(requeue_total(c.requeued), 3); /* 6 10 12, not 1 3 */
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.finished_records, 2);
    assert_int_equal(requeue_total(c.requeued), 3);
    check_final(1);
    check_clean();
    env_release(&v);
}

static void test_lock(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    populate();
    int fd;
    assert_int_equal(fsio_lock_file(fmt("%s/_requeue-p.lock", data), &fd), 0);
    struct weir_errmsg e = {0};
    struct requeue_opts o = {0};
    memset(&c, 0, sizeof(c));
    assert_int_equal(requeue_run(&v.cfg, v.p, v.schema, &o, &c, &e),
                     WEIR_ECONFLICT);
    assert_non_null(strstr(e.text, "another weir requeue"));
    /* recovery leaves a running requeue's files alone */
    put_file(fmt("%s/p/_requeue/raw.n1-1000000-0000000001.ndjson", data), "x\n");
    assert_int_equal(requeue_recover(data, "p", &c, &e), 0);
    assert_int_equal(access(fmt("%s/p/_requeue/raw.n1-1000000-0000000001.ndjson",
                                data), F_OK), 0);
    close(fd);
    /* once free, the leftover goes */
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(c.discarded, 1);
    check_final(1);
    check_clean();
    env_release(&v);
}

static void test_recovery_keeps_requeue_tmp(void **state)
{
    /* serve's recovery removes its node's temp files in _seq, but not the
     * counter updates of a requeue that runs beside it */
    put_file(fmt("%s/p/raw/_seq/n1-0.tmp.12.3", data), "5");
    put_file(fmt("%s/p/raw/_seq/n1-1000000.tmp.12.4", data), "5");
    struct recover_stats st = {0};
    assert_int_equal(recover_kind(data, "p", "raw", "n1", NULL, NULL, &st, NULL), 0);
    assert_int_equal(st.tmp_removed, 1);
    assert_int_equal(access(fmt("%s/p/raw/_seq/n1-0.tmp.12.3", data), F_OK), -1);
    assert_int_equal(access(fmt("%s/p/raw/_seq/n1-1000000.tmp.12.4", data), F_OK), 0);
    /* requeue removes its own */
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(access(fmt("%s/p/raw/_seq/n1-1000000.tmp.12.4", data), F_OK), -1);
    env_release(&v);
}

static void test_bad_journal(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, NULL);
    populate();
    static const char *const bad[] = {
        "nonsense\n",
        "weir-requeue-journal 1\nsource quarantine/date=2025-09-02/hour=10/"
        "n1-0-0000000001.ndjson\nrequeued 1\n", /* no end */
        "weir-requeue-journal 1\nsource quarantine/date=2025-09-02/hour=10/"
        "../../raw/x.ndjson\nend\n",
        "weir-requeue-journal 1\nsource quarantine/date=2025-09-02/hour=10/"
        "n1-0-0000000001.ndjson\nout raw.x ../../etc/passwd 1 1\nend\n",
        "weir-requeue-journal 1\nsource raw/date=2025-09-02/hour=10/"
        "n1-0-0000000001.ndjson\nend\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *j = fmt("%s/p/_requeue/x.ndjson.journal", data);
        put_file(j, bad[i]);
        char *before = snapshot();
        struct weir_errmsg e = {0};
        struct requeue_opts o = {0};
        memset(&c, 0, sizeof(c));
        assert_int_equal(requeue_run(&v.cfg, v.p, v.schema, &o, &c, &e),
                         WEIR_ECORRUPT);
        assert_non_null(strstr(e.text, "not a journal weir wrote"));
        char *after = snapshot();
        assert_string_equal(before, after);
        free(before);
        free(after);
        /* serve still starts: its recovery tells and goes on */
        struct recover_stats st = {0};
        assert_int_equal(recover_pipeline(data, "p", "n1", NULL, NULL, &st, &e), 0);
        assert_int_equal(st.requeue_finished, 0);
        assert_int_equal(access(j, F_OK), 0);
        unlink(j);
    }
    /* A journal whose outputs were all placed and whose source is gone
     * already finishes as a no-op. */
    put_file(fmt("%s/p/_requeue/y.ndjson.journal", data),
             "weir-requeue-journal 1\nsource quarantine/date=2025-09-02/"
             "hour=10/n1-9-0000000001.ndjson\nout raw.n1-1000000-0000000099"
             ".ndjson raw/date=2025-09-02/hour=10/n1-1000000-0000000099.ndjson"
             " 1 10\nrequeued 1\nend\n");
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.finished_records, 1);
    check_final(1);
    check_clean();
    env_release(&v);
}

/* Many records over many hours: output buffers flushed and files reopened
 * (more partitions than open outputs), the partition map grown, lines
 * across read chunks; then a crash in the middle and the rest. */
static void test_large(void **state)
{
    struct env v;
    struct requeue_counts c;
    env_init(&v, 1, "    time_max_age: off\n");
    fast_disk();
    enum { N = 30000, HOURS = 90 };
    struct quar_writer *q = qwriter(0);
    char raw[256];
    for (int i = 0; i < N; i++) {
        int64_t ts = H10 / S_ - (int64_t)(i % HOURS) * 3600 - 1;
        int n = snprintf(raw, sizeof(raw),
                         "{\"ts\":%" PRId64 ",\"v\":\"%d.25\",\"id\":%d,"
                         "\"pad\":\"%0*d\"}",
                         ts, i, i, 40 + i % 60, 0);
        if (i % 7 == 0) /* stays: no v */
            n = snprintf(raw, sizeof(raw), "{\"ts\":%" PRId64 ",\"id\":%d}", ts, i);
        quar(q, H10 + (int64_t)i * 1000, QUAR_INVALID, raw, (size_t)n,
             "/v", "old", 0);
        if (i == N / 2)
            assert_int_equal(seg_close_all(quar_seg(q)), 0); /* 2 segments */
    }
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);
    int stays = (N + 6) / 7;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("WEIR_REQUEUE_CRASH_AT", "renamed:40", 1);
        run(&v, NULL, &c);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(c.finished, 1);
    /* both segments: the first finished from its journal, the second now */
    assert_int_equal(c.finished_records + requeue_total(c.requeued), N - stays);
    assert_int_equal(requeue_total(c.stay), (uint64_t)stays);
    check_clean();

    /* every moved record once, in its hour */
    static unsigned char seen[N];
    memset(seen, 0, sizeof(seen));
    struct seg_list l;
    assert_int_equal(seg_list(data, "p", "raw", &l, NULL), 0);
    size_t lines = 0;
    for (size_t i = 0; i < l.n; i++) {
        size_t n;
        char *t = get_file(l.v[i].path, &n);
        for (char *line = t, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            int id = id_of(line, (size_t)(nl - line));
            assert_true(id >= 0 && id < N && id % 7 != 0);
            seen[id]++;
            long long ts = strtoll(strstr(line, "\"ts\":") + 5, NULL, 10);
            int64_t start;
            part_start(ts * S_, PART_HOUR, &start);
            assert_true(start == l.v[i].part_start);
            assert_non_null(strstr(line, ".25,")); /* coerced */
            lines++;
        }
        free(t);
    }
    seg_list_release(&l);
    assert_int_equal(lines, N - stays);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i % 7 != 0);
    env_release(&v);
}

/* ---- Kafka pipelines: the metadata members --------------------------- */

/* Every line of the pipeline's segments of kind, concatenated. */
static char *all_lines(const char *kind)
{
    struct seg_list l;
    struct buf all = BUF_INIT(1u << 20);
    assert_int_equal(seg_list(data, "p", kind, &l, NULL), 0);
    for (size_t i = 0; i < l.n; i++) {
        size_t n;
        char *t = get_file(l.v[i].path, &n);
        assert_non_null(t);
        assert_int_equal(buf_append(&all, t, n), 0);
        free(t);
    }
    seg_list_release(&l);
    buf_puts(&all, "");
    return buf_detach(&all, NULL);
}

static void kquar(struct quar_writer *q, int id, const char *extra, const char *peer,
                  const struct quar_kafka *k)
{
    /* No "v": SCHEMA refuses it, KSCHEMA takes it. */
    const char *raw = fmt("{\"ts\":%" PRId64 ",\"id\":%d%s}", H10 / S_, id, extra);
    char vp[512], vm[512];
    strict_verdict(raw, strlen(raw), vp, vm);
    struct quar_record qr = {
        .received_at_ns = H10 + id, .peer = peer, .reason = QUAR_INVALID,
        .path = vp, .error = vm, .raw = raw, .raw_len = strlen(raw), .kafka = k,
    };
    assert_true(seg_taken(quar_append(q, &qr)));
}

/* The stored line of record id is the record with exactly these members. */
static void assert_line(const char *all, int id, const char *members)
{
    char want[1024];
    snprintf(want, sizeof(want), "{\"ts\":%" PRId64 ",\"id\":%d%s}\n",
             H10 / S_, id, members);
    if (!strstr(all, want))
        fail_msg("no line\n%s\nin\n%s", want, all);
}

static void test_kafka_members(void **state)
{
    (void)state;
    static const char KSCHEMA[] =
        "{\"type\":\"object\",\"properties\":{\"ts\":{\"type\":\"integer\"},"
        "\"v\":{\"type\":\"number\"}}}";
    struct env v;
    env_init(&v, 0, "    source:\n      kafka: {brokers: \"127.0.0.1:1\", topic: m, "
                    "group: g}\n");
    char key300[301], peer[600];
    memset(key300, 'K', 300);
    key300[300] = '\0';
    struct quar_writer *q = qwriter(0);
    /* 1: "kafka" is exact, whatever the peer says */
    struct quar_kafka k = {.topic = "m", .partition = 2, .offset = 7, .key = key300,
                           .key_len = 300, .timestamp_ms = 1756803600123};
    snprintf(peer, sizeof(peer), "m/2@7 ts=1756803600123 key=%.256s...", key300);
    kquar(q, 1, "", peer, &k);
    /* 2: no "kafka": the peer, a key that ends in "..." of its own */
    kquar(q, 2, "", "m/0@5 ts=12 key=abc...", NULL);
    /* 3: the peer cut the key: no key member */
    kquar(q, 3, "", peer, NULL);
    /* 4: base64, no timestamp */
    kquar(q, 4, "", "m/1@3 key_b64=a//+", NULL);
    /* 5: base64 cut */
    kquar(q, 5, "", "m/1@4 key_b64=a//+...", NULL);
    /* 6: not a Kafka peer: no members */
    kquar(q, 6, "", "127.0.0.1:5555", NULL);
    /* 7: a key member of the record's own: stays, as the server judges */
    kquar(q, 7, ",\"_kafka_key\":\"own\"", "m/0@9", NULL);
    /* 8: a key that is valid UTF-8 but not printable (peer: base64) */
    kquar(q, 8, "", "m/0@10 key_b64=emUgw6k=", NULL);
    /* 9: "kafka" without a key, an empty key */
    k.key = "";
    k.key_len = 0;
    k.offset = 11;
    k.timestamp_ms = -1;
    kquar(q, 9, "", "m/2@11", &k);
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);

    /* The schema fixed: v is optional now. */
    schema_free(v.schema);
    struct schema_opts so = {0};
    struct weir_errmsg e;
    v.schema = schema_compile(KSCHEMA, strlen(KSCHEMA), NULL, &so, &e);
    assert_non_null(v.schema);
    struct requeue_counts c;
    assert_int_equal(run(&v, NULL, &c), 0);
    assert_int_equal(requeue_total(c.requeued), 8);
    assert_int_equal(requeue_total(c.stay), 1);
    char *all = all_lines("raw");
    char want[1024];
    snprintf(want, sizeof(want),
             ",\"_kafka_topic\":\"m\",\"_kafka_partition\":2,\"_kafka_offset\":7,"
             "\"_kafka_key\":\"%s\",\"_kafka_timestamp\":1756803600123", key300);
    assert_line(all, 1, want);
    assert_line(all, 2, ",\"_kafka_topic\":\"m\",\"_kafka_partition\":0,"
                        "\"_kafka_offset\":5,\"_kafka_key\":\"abc...\","
                        "\"_kafka_timestamp\":12");
    assert_line(all, 3, ",\"_kafka_topic\":\"m\",\"_kafka_partition\":2,"
                        "\"_kafka_offset\":7,\"_kafka_timestamp\":1756803600123");
    assert_line(all, 4, ",\"_kafka_topic\":\"m\",\"_kafka_partition\":1,"
                        "\"_kafka_offset\":3,\"_kafka_key_b64\":\"a//+\"");
    assert_line(all, 5, ",\"_kafka_topic\":\"m\",\"_kafka_partition\":1,"
                        "\"_kafka_offset\":4");
    assert_line(all, 6, "");
    assert_line(all, 8, ",\"_kafka_topic\":\"m\",\"_kafka_partition\":0,"
                        "\"_kafka_offset\":10,\"_kafka_key\":\"ze \xc3\xa9\"");
    assert_line(all, 9, ",\"_kafka_topic\":\"m\",\"_kafka_partition\":2,"
                        "\"_kafka_offset\":11,\"_kafka_key\":\"\"");
    free(all);
    all = all_lines("quarantine");
    assert_non_null(strstr(all, "\"reason\":\"invalid\",\"path\":\"/_kafka_key\""));
    assert_non_null(strstr(all, "\\\"id\\\":7,"));
    free(all);
    env_release(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lax_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_day_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_keeps_requeue_tmp, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_at_each_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fault_every_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_every_operation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_members, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
