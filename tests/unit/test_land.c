/*
 * test_land.c - the lander: event time in every unit, the verdict of each
 * kind of record and where it lands, the counters, and a failing disk
 * (records kept, parked in order, written once the disk is back).
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

#include "config/config.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "schema/schema.h"
#include "store/kmeta.h"
#include "store/land.h"
#include "store/quarantine.h"
#include "store/segment.h"

#include "tmpdir.h"

#define H0 (INT64_C(1756807200) * WTIME_NS_PER_S) /* 2025-09-02T10:00Z */
#define NOW (H0 + 30 * 60 * WTIME_NS_PER_S)       /* 10:30 */

static char *root;

static int setup(void **state)
{
    root = tmpdir_make(NULL, "land");
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

/* A config with one pipeline "t": keys of the pipeline in pkeys (YAML,
 * indented 4), top-level keys in top. */
static void load(struct weir_config *cfg, const char *top, const char *pkeys)
{
    char text[4096];
    struct weir_errmsg e = {0};
    snprintf(text, sizeof(text),
             "data_dir: %s\nnode: n1\nmetrics: off\n%s\n"
             "pipelines:\n  - name: t\n    time_field: ts\n%s\n",
             root, top, pkeys);
    int rc = config_load_string("test.yaml", text, strlen(text), root, cfg, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.text);
    assert_int_equal(rc, 0);
}

/* ---- event time ------------------------------------------------------- */

struct tcase {
    const char *unit;
    const char *field;
    const char *rec;
    int want;           /* 0 or a QUAR_ reason */
    int64_t ns;
};

static void test_event_time(void **state)
{
    static const struct tcase cases[] = {
        {"s", "ts", "{\"ts\":1756807200}", 0, H0},
        {"s", "ts", "{\"ts\":1756807200.5}", 0, H0 + WTIME_NS_PER_S / 2},
        {"s", "ts", "{\"ts\":-1}", 0, -WTIME_NS_PER_S},
        {"s", "ts", "{\"ts\":0}", 0, 0},
        {"ms", "ts", "{\"ts\":1756807200123}", 0, H0 + 123 * WTIME_NS_PER_MS},
        {"us", "ts", "{\"ts\":1756807200000001}", 0, H0 + 1000},
        {"ns", "ts", "{\"ts\":1756807200000000007}", 0, H0 + 7},
        {"rfc3339", "ts", "{\"ts\":\"2025-09-02T10:00:00Z\"}", 0, H0},
        {"rfc3339", "ts", "{\"ts\":\"2025-09-02T12:00:00.5+02:00\"}", 0,
         H0 + WTIME_NS_PER_S / 2},
        {"rfc3339", "ts", "{\"ts\":\"2025-09-02T10:00:00\\u005a\"}", 0, H0},
        {"s", "meta.ts", "{\"a\":1,\"meta\":{\"x\":[1],\"ts\":1756807200}}", 0, H0},
        /* missing */
        {"s", "ts", "{\"t\":1756807200}", QUAR_TIME_MISSING, 0},
        {"s", "ts", "[1756807200]", QUAR_TIME_MISSING, 0},
        {"s", "ts", "1756807200", QUAR_TIME_MISSING, 0},
        {"s", "meta.ts", "{\"meta\":1756807200}", QUAR_TIME_MISSING, 0},
        /* not a time in the unit */
        {"s", "ts", "{\"ts\":\"1756807200\"}", QUAR_TIME_UNPARSABLE, 0},
        {"s", "ts", "{\"ts\":null}", QUAR_TIME_UNPARSABLE, 0},
        {"s", "ts", "{\"ts\":true}", QUAR_TIME_UNPARSABLE, 0},
        {"s", "ts", "{\"ts\":1e300}", QUAR_TIME_UNPARSABLE, 0},
        {"s", "ts", "{\"ts\":-1e300}", QUAR_TIME_UNPARSABLE, 0},
        {"ms", "ts", "{\"ts\":9223372036854775807}", QUAR_TIME_UNPARSABLE, 0},
        {"rfc3339", "ts", "{\"ts\":1756807200}", QUAR_TIME_UNPARSABLE, 0},
        {"rfc3339", "ts", "{\"ts\":\"yesterday\"}", QUAR_TIME_UNPARSABLE, 0},
        {"rfc3339", "ts", "{\"ts\":\"\"}", QUAR_TIME_UNPARSABLE, 0},
        {"rfc3339", "ts",
         "{\"ts\":\"2025-09-02T10:00:00.000000000000000000000000000000000000000000000000000000000Z\"}",
         QUAR_TIME_UNPARSABLE, 0},
    };
    struct json_doc d;
    json_doc_init(&d, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tcase *c = &cases[i];
        struct weir_config cfg;
        char keys[256];
        snprintf(keys, sizeof(keys), "    time_unit: %s\n    time_field: %s", c->unit,
                 c->field);
        /* time_field given twice would be an error: build it without the
         * default line. */
        char text[1024];
        struct weir_errmsg e = {0};
        snprintf(text, sizeof(text),
                 "data_dir: %s\nmetrics: off\npipelines:\n  - name: t\n%s\n", root, keys);
        assert_int_equal(config_load_string("t.yaml", text, strlen(text), root, &cfg, &e), 0);
        assert_int_equal(json_scan(&d, c->rec, strlen(c->rec)), JSON_OK);
        int64_t ns = -42;
        char why[256] = "";
        int rc = land_event_time(&cfg.pipelines[0], &d, &ns, why, sizeof(why));
        if (rc != c->want || (rc == 0 && ns != c->ns))
            fprintf(stderr, "case %zu (%s, %s): rc %d ns %lld (%s)\n", i, c->unit,
                    c->rec, rc, (long long)ns, why);
        assert_int_equal(rc, c->want);
        if (rc == 0)
            assert_true(ns == c->ns);
        else
            assert_true(strstr(why, c->field) != NULL); /* names the field */
        config_release(&cfg);
    }
    json_doc_release(&d);
}

/* ---- where records land --------------------------------------------------- */

/* Every line of every segment of kind, concatenated, in list order. */
static char *all_lines(const char *kind, int64_t part, size_t *nseg)
{
    struct seg_list l;
    assert_int_equal(seg_list(root, "t", kind, &l, NULL), 0);
    struct buf b = BUF_INIT(1 << 26);
    buf_puts(&b, "");
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (part != INT64_MIN && l.v[i].part_start != part)
            continue;
        n++;
        struct buf f = BUF_INIT(1 << 26);
        assert_int_equal(fsio_read_file(l.v[i].path, &f), 0);
        buf_append(&b, f.data ? f.data : "", f.len);
        buf_release(&f);
    }
    seg_list_release(&l);
    if (nseg)
        *nseg = n;
    return buf_detach(&b, NULL);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static struct lander *lander(const struct weir_config *cfg, struct schema **sch)
{
    struct weir_errmsg e = {0};
    *sch = schema_compile(CONFIG_DEFAULT_SCHEMA, strlen(CONFIG_DEFAULT_SCHEMA), NULL,
                          NULL, &e);
    assert_non_null(*sch);
    struct lander *l = NULL;
    int rc = land_new(cfg, &cfg->pipelines[0], *sch, 0, &l, &e);
    if (rc)
        fprintf(stderr, "land_new: %s\n", e.text);
    assert_int_equal(rc, 0);
    return l;
}

#define REC(l, s, flags) land_record((l), (s), strlen(s), (flags), "127.0.0.1:9", NOW)

static void test_verdicts(void **state)
{
    struct weir_config cfg;
    struct schema *sch;
    load(&cfg, "", "    max_record: 64B");
    struct lander *l = lander(&cfg, &sch);
    char big[65];
    memset(big, 'x', 64);
    big[64] = 0;
    assert_int_equal(REC(l, "{\"ts\":1756807200,\"v\":1}", 0), 0);       /* 10:00 */
    assert_int_equal(REC(l, "{\"ts\":1756807199,\"v\":2}", 0), 0);       /* 09:59, late */
    assert_int_equal(REC(l, "{\"ts\":1756807201,\"v\":3}", LAND_AT_EOF), 0); /* whole */
    assert_int_equal(REC(l, "{\"ts\":17568", LAND_AT_EOF), 0);          /* cut */
    assert_int_equal(REC(l, "{\"ts\":17568", 0), 0);                    /* not JSON */
    assert_int_equal(REC(l, "[1,2]", 0), 0);                            /* not object */
    assert_int_equal(land_record(l, big, 64, LAND_TRUNCATED, NULL, NOW), 0);
    assert_int_equal(REC(l, "{\"v\":1}", 0), 0);
    assert_int_equal(REC(l, "{\"ts\":\"soon\"}", 0), 0);
    assert_int_equal(REC(l, "{\"ts\":1756980000}", 0), 0);              /* +2 days */
    assert_int_equal(REC(l, "{\"ts\":1754000000}", 0), 0);              /* -32 days */
    assert_int_equal(land_pressure(l), 0);

    struct land_counts c;
    land_counts(l, &c);
    assert_int_equal(c.records, 11);
    assert_int_equal(c.valid, 3);
    assert_int_equal(c.late, 1);
    assert_int_equal(c.rejected[QUAR_TRUNCATED], 1);
    assert_int_equal(c.rejected[QUAR_INVALID], 2);
    assert_int_equal(c.rejected[QUAR_TOO_LARGE], 1);
    assert_int_equal(c.rejected[QUAR_TIME_MISSING], 1);
    assert_int_equal(c.rejected[QUAR_TIME_UNPARSABLE], 1);
    assert_int_equal(c.rejected[QUAR_TIME_OUT_OF_RANGE], 2);
    assert_int_equal(c.rejected_total, 8);
    assert_int_equal(c.overflow, 0);
    assert_int_equal(c.open_partitions, 0); /* copied at the first tick */
    assert_int_equal(land_tick(l, NOW, 0), 0);
    land_counts(l, &c);
    assert_int_equal(c.open_partitions, 2);

    assert_int_equal(land_close(l), 0);
    land_counts(l, &c);
    assert_int_equal(c.durable, 3);
    assert_int_equal(c.pending, 0);
    assert_int_equal(land_unwritten(l), 0);

    char *h10 = all_lines("raw", H0, NULL);
    char *h09 = all_lines("raw", H0 - WTIME_NS_PER_HOUR, NULL);
    assert_string_equal(h10, "{\"ts\":1756807200,\"v\":1}\n{\"ts\":1756807201,\"v\":3}\n");
    assert_string_equal(h09, "{\"ts\":1756807199,\"v\":2}\n");
    char *q = all_lines("quarantine", H0, NULL);
    assert_int_equal(count(q, "\n"), 8);
    assert_int_equal(count(q, "\"reason\":\"truncated\""), 1);
    assert_int_equal(count(q, "the connection closed in the middle"), 1);
    assert_int_equal(count(q, "\"reason\":\"too_large\""), 1);
    assert_int_equal(count(q, "\"truncated\":true"), 1);
    assert_int_equal(count(q, "\"size\""), 0); /* unknown: not written */
    assert_int_equal(count(q, "\"reason\":\"time_out_of_range\""), 2);
    assert_int_equal(count(q, "\"peer\":\"127.0.0.1:9\""), 7);
    assert_int_equal(count(q, "\"peer\":null"), 1);
    free(h10);
    free(h09);
    free(q);
    land_free(l);
    schema_free(sch);
    config_release(&cfg);
}

/* Decoded payloads (Protobuf): quarantine keeps the bytes that arrived,
 * as raw_b64, for the record it refuses and only for that one. */
static void test_decoded_and_rejected(void **state)
{
    struct weir_config cfg;
    struct schema *sch;
    load(&cfg, "", "");
    struct lander *l = lander(&cfg, &sch);
    land_quarantine_bytes(l, "\x08\x01", 2);
    assert_int_equal(REC(l, "{\"ts\":1756807200,\"v\":1}", 0), 0); /* valid: JSON */
    land_quarantine_bytes(l, "AB", 2);
    assert_int_equal(REC(l, "{\"v\":2}", 0), 0);                     /* no ts: "AB" */
    assert_int_equal(REC(l, "{\"v\":3}", 0), 0);                     /* itself */
    assert_int_equal(land_reject(l, QUAR_INVALID, "", "at byte 1: truncated varint",
                                 "\x0a\x05" "ab", 4, LAND_BINARY, "t/0@1", NOW), 0);
    struct land_counts c;
    land_counts(l, &c);
    assert_int_equal(c.records, 4);
    assert_int_equal(c.valid, 1);
    assert_int_equal(c.rejected[QUAR_TIME_MISSING], 2);
    assert_int_equal(c.rejected[QUAR_INVALID], 1);
    assert_int_equal(land_close(l), 0);
    char *raw = all_lines("raw", H0, NULL);
    assert_string_equal(raw, "{\"ts\":1756807200,\"v\":1}\n");
    char *q = all_lines("quarantine", H0, NULL);
    assert_int_equal(count(q, "\"raw_b64\":\"QUI=\""), 1);            /* "AB" */
    assert_int_equal(count(q, "\"raw\":\"{\\\"v\\\":3}\""), 1);
    assert_int_equal(count(q, "\"peer\":\"t/0@1\",\"pipeline\":\"t\",\"reason\":\"invalid\","
                              "\"path\":\"\",\"error\":\"at byte 1: truncated varint\","
                              "\"raw_b64\":\"CgVhYg==\""), 1);
    free(raw);
    free(q);
    land_free(l);
    schema_free(sch);
    config_release(&cfg);
}

/* ---- a failing disk ------------------------------------------------------- */

static void test_disk_full_keeps_order(void **state)
{
    struct weir_config cfg;
    struct schema *sch;
    load(&cfg, "limits: {max_pending: 64KiB, max_record: 1KiB}", "    fsync: always");
    struct lander *l = lander(&cfg, &sch);
    enum { N = 3000 };
    char rec[128];
    /* The disk is full from the first write on. */
    fsio_fault_set(FSIO_OP_PWRITE, 0, ENOSPC, 0);
    int errors = 0;
    for (int i = 0; i < N; i++) {
        if (i % 10 == 9)
            snprintf(rec, sizeof(rec), "{\"bad\":%d", i); /* quarantined */
        else
            snprintf(rec, sizeof(rec), "{\"ts\":%d,\"s\":%d}",
                     1756807200 + (i % 7) * 3600, i);
        int rc = land_record(l, rec, strlen(rec), 0, NULL, NOW);
        assert_true(rc == 0 || rc == WEIR_ENOSPC || rc == WEIR_EAGAIN);
        /* fsync: always: a source syncs after each read (here: each
         * record), which meets the full disk. */
        int rs = land_read_end(l);
        assert_true(rs == 0 || rs == WEIR_ENOSPC || rs == WEIR_EAGAIN);
        errors += rc != 0 || rs != 0;
        assert_int_equal(land_pressure(l), 1);
    }
    assert_true(errors > 0);
    struct land_counts c;
    land_counts(l, &c);
    assert_int_equal(c.overflow, 0);
    assert_true(land_unwritten(l) > (64u << 10)); /* some were parked */
    int64_t mono = 0;
    assert_true(land_tick(l, NOW, mono += WTIME_NS_PER_S) != 0);
    assert_int_equal(land_pressure(l), 1);

    /* Space is back: a few ticks write everything, in order. */
    fsio_fault_clear(FSIO_OP_PWRITE);
    int ticks = 0;
    while (land_tick(l, NOW, mono += WTIME_NS_PER_S) != 0 || land_pressure(l))
        assert_true(++ticks < 50);
    /* The source's next read ends with a sync that now succeeds. */
    assert_int_equal(land_read_end(l), 0);
    assert_int_equal(land_unwritten(l), 0);
    assert_int_equal(land_close(l), 0);
    land_counts(l, &c);
    assert_int_equal(c.valid, N - N / 10);
    assert_int_equal(c.durable, N - N / 10);
    assert_int_equal(c.rejected[QUAR_INVALID], N / 10);
    assert_true(c.write_errors > 0);

    /* Per hour the records are there once each, in the order given. */
    for (int h = 0; h < 7; h++) {
        char *text = all_lines("raw", H0 + h * WTIME_NS_PER_HOUR, NULL);
        const char *p = text;
        for (int i = h; i < N; i += 7) {
            if (i % 10 == 9)
                continue;
            snprintf(rec, sizeof(rec), "{\"ts\":%d,\"s\":%d}\n", 1756807200 + h * 3600, i);
            assert_true(strncmp(p, rec, strlen(rec)) == 0);
            p += strlen(rec);
        }
        assert_int_equal(*p, '\0');
        free(text);
    }
    char *q = all_lines("quarantine", INT64_MIN, NULL);
    assert_int_equal(count(q, "\n"), N / 10);
    const char *p = q;
    for (int i = 9; i < N; i += 10) {
        snprintf(rec, sizeof(rec), "\"raw\":\"{\\\"bad\\\":%d\"", i);
        p = strstr(p, rec);
        assert_non_null(p);
    }
    free(q);
    land_free(l);
    schema_free(sch);
    config_release(&cfg);
}

/* ---- a source's members (Kafka metadata) ------------------------------- */

static void test_meta_format(void **state)
{
    char pre[KMETA_PREFIX_MAX];
    size_t pn = kmeta_prefix(pre, sizeof pre, "t.1", 3);
    assert_int_equal(pn, strlen("\"_kafka_topic\":\"t.1\",\"_kafka_partition\":3,"
                                "\"_kafka_offset\":"));
    struct buf b = BUF_INIT(kmeta_max_len(16));
    assert_int_equal(kmeta_format(&b, pre, pn, 42, "k-\xc3\xa9\"", 5, 1700000000123), 0);
    assert_string_equal(b.data, "\"_kafka_topic\":\"t.1\",\"_kafka_partition\":3,"
                                "\"_kafka_offset\":42,\"_kafka_key\":\"k-\xc3\xa9\\\"\","
                                "\"_kafka_timestamp\":1700000000123");
    buf_reset(&b);
    assert_int_equal(kmeta_format(&b, pre, pn, 0, "k\001\xff", 3, -1), 0);
    assert_string_equal(b.data, "\"_kafka_topic\":\"t.1\",\"_kafka_partition\":3,"
                                "\"_kafka_offset\":0,\"_kafka_key_b64\":\"awH/\"");
    buf_reset(&b);
    assert_int_equal(kmeta_format(&b, pre, pn, 7, NULL, 0, -1), 0);
    assert_int_equal(count(b.data, "_kafka_key"), 0);
    for (int64_t v = 1; v > 0 && v < INT64_MAX / 7; v = v * 7 + 3) {
        char want[64];
        buf_reset(&b);
        assert_int_equal(kmeta_format(&b, "", 0, v, NULL, 0, -1), 0);
        snprintf(want, sizeof want, "%lld", (long long)v);
        assert_string_equal(b.data, want);
    }
    buf_reset(&b);
    assert_int_equal(kmeta_format(&b, "", 0, INT64_MIN, NULL, 0, 9), 0);
    assert_string_equal(b.data, "-9223372036854775808,\"_kafka_timestamp\":9");
    buf_reset(&b);
    assert_int_equal(kmeta_format(&b, pre, pn, 7, "", 0, -1), 0);
    assert_int_equal(count(b.data, "\"_kafka_key\":\"\""), 1);
    buf_release(&b);
    struct buf small = BUF_INIT(8);
    assert_int_equal(kmeta_format(&small, pre, pn, 7, NULL, 0, -1), WEIR_ELIMIT);
    assert_int_equal(small.len, 0);
    buf_release(&small);
}

static int test_members(void *ctx, struct buf *b)
{
    return buf_puts(b, "\"_m_a\":1,\"_m_b\":\"x\"");
}

static const char *test_peer(void *ctx)
{
    return "lazy-peer";
}

static const struct quar_kafka *test_origin(void *ctx)
{
    static const struct quar_kafka k = {.topic = "t", .partition = 1, .offset = 9,
                                        .key = "k", .key_len = 1, .timestamp_ms = -1};
    return &k;
}

static void test_meta_splice(void **state)
{
    static const char closed[] =
        "{\"type\":\"object\",\"additionalProperties\":false,"
        "\"properties\":{\"ts\":{\"type\":\"integer\"},\"v\":{}}}";
    static const char *const names[] = {"_m_a", "_m_b", NULL};
    struct weir_config cfg;
    struct weir_errmsg e = {0};
    load(&cfg, "", "    max_record: 256B");
    struct schema *sch = schema_compile(closed, strlen(closed), NULL, NULL, &e);
    assert_non_null(sch);
    struct lander *l = NULL;
    assert_int_equal(land_new(&cfg, &cfg.pipelines[0], sch, 0, &l, &e), 0);
    struct land_meta m = {test_members, test_peer, NULL, names, NULL};
#define RECM(s) land_record_meta(l, (s), strlen(s), 0, NULL, NOW, &m)
    assert_int_equal(RECM("{\"ts\":1756807200,\"v\":1}"), 0);
    assert_int_equal(RECM("{ \"ts\" : 1756807201 , \"v\" : { \"a\" : [ ] } }  "), 0);
    assert_int_equal(RECM("{\"ts\":1756807202,\"v\":\"}\"}"), 0);
    assert_int_equal(REC(l, "{\"ts\":1756807203}", 0), 0);       /* no meta */
    assert_int_equal(RECM("{\"ts\":1756807204,\"w\":1}"), 0);  /* invalid: as sent */
    assert_int_equal(land_close(l), 0);
    land_free(l);
    schema_free(sch);

    /* An open schema: a record may not carry the names itself (even
     * escaped); a root that is not an object gets nothing. */
    static const char open[] = "{\"type\":[\"object\",\"array\"]}";
    sch = schema_compile(open, strlen(open), NULL, NULL, &e);
    assert_non_null(sch);
    assert_int_equal(land_new(&cfg, &cfg.pipelines[0], sch, 0, &l, &e), 0);
    m.origin = test_origin; /* written with every quarantined record from now */
    assert_int_equal(RECM("{}"), 0); /* time missing: quarantined as sent */
    assert_int_equal(RECM("{\"ts\":1756807205,\"_m_b\":2}"), 0);
    assert_int_equal(RECM("{\"ts\":1756807206,\"\\u005fm_a\":2}"), 0);
    assert_int_equal(RECM("{\"ts\":1756807207,\"_m_c\":2}"), 0);
    assert_int_equal(land_reject_meta(l, QUAR_INVALID, "", "undecodable", "\x01", 1,
                                      LAND_BINARY, NULL, NOW, &m), 0);
    struct land_counts c;
    land_counts(l, &c);
    assert_int_equal(c.valid, 1);
    assert_int_equal(c.rejected[QUAR_INVALID], 3);
    assert_int_equal(c.rejected[QUAR_TIME_MISSING], 1);
    assert_int_equal(land_close(l), 0);

    char *raw = all_lines("raw", H0, NULL);
    assert_string_equal(raw,
        "{\"ts\":1756807200,\"v\":1,\"_m_a\":1,\"_m_b\":\"x\"}\n"
        "{ \"ts\" : 1756807201 , \"v\" : { \"a\" : [ ] } ,\"_m_a\":1,\"_m_b\":\"x\"}  \n"
        "{\"ts\":1756807202,\"v\":\"}\",\"_m_a\":1,\"_m_b\":\"x\"}\n"
        "{\"ts\":1756807203}\n"
        "{\"ts\":1756807207,\"_m_c\":2,\"_m_a\":1,\"_m_b\":\"x\"}\n");
    char *q = all_lines("quarantine", H0, NULL);
    assert_int_equal(count(q, "\"path\":\"/_m_b\""), 1);
    assert_int_equal(count(q, "\"path\":\"/_m_a\""), 1);
    assert_int_equal(count(q, "\"peer\":\"lazy-peer\""), 5); /* every quarantined one */
    assert_int_equal(count(q, ",\"kafka\":{\"topic\":\"t\",\"partition\":1,"
                              "\"offset\":9,\"key\":\"k\"}}\n"), 4);
    assert_int_equal(count(q, "_m_a\\\":1"), 0); /* stored as sent */
    assert_int_equal(count(q, "\"raw\":\"{\\\"ts\\\":1756807204,\\\"w\\\":1}\""), 1);
    free(raw);
    free(q);
    land_free(l);
    schema_free(sch);

    /* Lax mode rewrites the record: the members go into the rewritten one. */
    static const char typed[] =
        "{\"type\":\"object\",\"properties\":{\"ts\":{\"type\":\"integer\"},"
        "\"v\":{\"type\":\"integer\"}}}";
    struct schema_opts so = {.lax = 1};
    sch = schema_compile(typed, strlen(typed), NULL, &so, &e);
    assert_non_null(sch);
    assert_int_equal(land_new(&cfg, &cfg.pipelines[0], sch, 0, &l, &e), 0);
    assert_int_equal(RECM("{\"ts\":1756807208,\"v\":\"5\"}"), 0);
    land_counts(l, &c);
    assert_int_equal(c.coerced, 1);
    assert_int_equal(land_close(l), 0);
    raw = all_lines("raw", H0, NULL);
    assert_int_equal(count(raw, "\"v\":5,\"_m_a\":1,\"_m_b\":\"x\"}\n"), 1);
    free(raw);
    land_free(l);
    schema_free(sch);
    config_release(&cfg);
#undef RECM
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_event_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoded_and_rejected, setup, teardown),
        cmocka_unit_test(test_meta_format),
        cmocka_unit_test_setup_teardown(test_meta_splice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_keeps_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
