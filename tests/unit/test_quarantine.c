/*
 * test_quarantine.c - the quarantine line format (parsed back as JSON with
 * a small independent parser) and the quarantine writer's layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fsio.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "store/quarantine.h"
#include "store/segment.h"

#include "tmpdir.h"

#define H0 (INT64_C(1756807200) * WTIME_NS_PER_S) /* 2025-09-02T10:00Z */

/* ---- a small strict parser for flat JSON objects ------------------------ */

struct jval {
    char key[32];
    char type;        /* 's' string, 'n' number, 't' true, 'f' false, '0' null */
    char *s;          /* decoded string (malloc), may hold NULs */
    size_t slen;
    double num;
};

struct jobj {
    struct jval v[16];
    int n;
};

static void put_utf8(struct buf *b, unsigned cp)
{
    char o[4];
    if (cp < 0x80) {
        o[0] = (char)cp;
        buf_append(b, o, 1);
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 63));
        buf_append(b, o, 2);
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63));
        buf_append(b, o, 3);
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 63));
        o[2] = (char)(0x80 | ((cp >> 6) & 63));
        o[3] = (char)(0x80 | (cp & 63));
        buf_append(b, o, 4);
    }
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* Parse a JSON string at *p; raw control bytes are refused as JSON does. */
static int jstring(const char **p, struct buf *out)
{
    const char *s = *p;
    if (*s++ != '"')
        return -1;
    for (;;) {
        unsigned char c = (unsigned char)*s;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            buf_append(out, s++, 1);
            continue;
        }
        s++;
        switch (*s++) {
        case '"': buf_putc(out, '"'); break;
        case '\\': buf_putc(out, '\\'); break;
        case '/': buf_putc(out, '/'); break;
        case 'b': buf_putc(out, '\b'); break;
        case 'f': buf_putc(out, '\f'); break;
        case 'n': buf_putc(out, '\n'); break;
        case 'r': buf_putc(out, '\r'); break;
        case 't': buf_putc(out, '\t'); break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(s, &cp))
                return -1;
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return -1;
            }
            put_utf8(out, cp);
            break;
        }
        default:
            return -1;
        }
    }
    *p = s + 1;
    return 0;
}

static int jparse(const char *s, struct jobj *o)
{
    memset(o, 0, sizeof(*o));
    if (*s++ != '{')
        return -1;
    if (*s == '}')
        return s[1] ? -1 : 0;
    for (;;) {
        if (o->n == 16)
            return -1;
        struct jval *v = &o->v[o->n++];
        struct buf k = BUF_INIT(31);
        if (jstring(&s, &k) || *s++ != ':') {
            buf_release(&k);
            return -1;
        }
        memcpy(v->key, k.data ? k.data : "", k.len + 1);
        buf_release(&k);
        if (*s == '"') {
            struct buf b = BUF_INIT(1 << 26);
            buf_puts(&b, "");
            if (jstring(&s, &b)) {
                buf_release(&b);
                return -1;
            }
            v->type = 's';
            v->s = buf_detach(&b, &v->slen);
        } else if (strncmp(s, "true", 4) == 0) {
            v->type = 't';
            s += 4;
        } else if (strncmp(s, "false", 5) == 0) {
            v->type = 'f';
            s += 5;
        } else if (strncmp(s, "null", 4) == 0) {
            v->type = '0';
            s += 4;
        } else {
            char *end;
            v->num = strtod(s, &end);
            if (end == s)
                return -1;
            v->type = 'n';
            s = end;
        }
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '}' && s[1] == '\0')
            return 0;
        return -1;
    }
}

static void jfree(struct jobj *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->v[i].s);
}

static const struct jval *jget(const struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->v[i].key, key) == 0)
            return &o->v[i];
    return NULL;
}

static size_t b64dec(const char *s, size_t n, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *p = strchr(t, s[i]);
        assert_non_null(p);
        acc = (acc << 6) | (unsigned)(p - t);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return o;
}

/* Format r, parse it back, check the fields every line has. */
static void roundtrip(const struct quar_record *r, struct jobj *o)
{
    struct buf line = BUF_INIT(1 << 26);
    assert_int_equal(quar_format(&line, "telemetry", r), 0);
    assert_null(memchr(line.data, '\n', line.len));
    if (jparse(line.data, o) != 0)
        fail_msg("not JSON: %s", line.data);
    buf_release(&line);
    const char *always[] = {"received_at", "peer", "pipeline", "reason",
                            "path", "error"};
    for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
        assert_non_null(jget(o, always[i]));
    assert_true((jget(o, "raw") != NULL) != (jget(o, "raw_b64") != NULL));
    assert_string_equal(jget(o, "pipeline")->s, "telemetry");
    assert_string_equal(jget(o, "reason")->s, quar_reason_name(r->reason));
}

/* The original bytes, from raw or raw_b64. */
static void assert_raw(const struct jobj *o, const void *raw, size_t n)
{
    const struct jval *v = jget(o, "raw");
    if (v) {
        assert_int_equal(v->slen, n);
        assert_memory_equal(v->s, raw, n);
        return;
    }
    v = jget(o, "raw_b64");
    char *dec = malloc(v->slen + 1);
    assert_int_equal(b64dec(v->s, v->slen, dec), n);
    assert_memory_equal(dec, raw, n);
    free(dec);
}

/* ---- tests -------------------------------------------------------------- */

static void test_reasons(void **state)
{
    const char *names[] = {"invalid", "too_large", "truncated", "time_missing",
                           "time_unparsable", "time_out_of_range", "torn"};
    for (int i = 0; i < QUAR__COUNT; i++) {
        assert_string_equal(quar_reason_name((enum quar_reason)i), names[i]);
        assert_int_equal(quar_reason_parse(names[i]), i);
    }
    assert_int_equal(quar_reason_parse("bogus"), -1);
}

static void test_valid_utf8_raw(void **state)
{
    static const char raw[] =
        "{\"t\":\"21.5\xc2\xb0" "C\",\"q\":\"a\\\"b\",\"x\":\"\t\x01\x7f\","
        "\"e\":\"\xf0\x9f\x98\x80\"}\0tail";
    struct quar_record r = {
        .received_at_ns = H0 + 123 * WTIME_NS_PER_MS,
        .peer = "127.0.0.1:5555",
        .reason = QUAR_INVALID,
        .path = "/measurement/unit",
        .error = "expected one of \"C\", \"F\"",
        .raw = raw,
        .raw_len = sizeof(raw) - 1,
    };
    struct jobj o;
    roundtrip(&r, &o);
    assert_string_equal(jget(&o, "received_at")->s, "2025-09-02T10:00:00.123Z");
    assert_string_equal(jget(&o, "peer")->s, "127.0.0.1:5555");
    assert_string_equal(jget(&o, "path")->s, "/measurement/unit");
    assert_string_equal(jget(&o, "error")->s, "expected one of \"C\", \"F\"");
    assert_non_null(jget(&o, "raw"));
    assert_raw(&o, raw, sizeof(raw) - 1);
    assert_null(jget(&o, "truncated"));
    assert_null(jget(&o, "size"));
    jfree(&o);
}

static void test_invalid_utf8_raw(void **state)
{
    const char *cases[] = {
        "\xff\xfe abc",   /* never valid */
        "\xc0\xaf",       /* overlong '/' */
        "\xed\xa0\x80",   /* a surrogate */
        "ok \xe2\x82",    /* cut inside a sequence */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct quar_record r = {
            .received_at_ns = H0,
            .reason = QUAR_INVALID,
            .raw = cases[i],
            .raw_len = strlen(cases[i]),
        };
        struct jobj o;
        roundtrip(&r, &o);
        assert_non_null(jget(&o, "raw_b64"));
        assert_raw(&o, cases[i], strlen(cases[i]));
        /* absent strings are null */
        assert_int_equal(jget(&o, "peer")->type, '0');
        assert_int_equal(jget(&o, "path")->type, '0');
        assert_int_equal(jget(&o, "error")->type, '0');
        jfree(&o);
    }
}

static void test_truncated_and_text_limits(void **state)
{
    char err[10000];
    memset(err, 'e', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    memcpy(err, "bad \xff byte", 10);
    struct quar_record r = {
        .received_at_ns = H0,
        .peer = "10.0.0.1:1",
        .reason = QUAR_TOO_LARGE,
        .path = "",
        .error = err,
        .raw = "{\"a\":\"xxxx",
        .raw_len = 10,
        .truncated = 1,
        .size = 2000000,
    };
    struct jobj o;
    roundtrip(&r, &o);
    assert_int_equal(jget(&o, "truncated")->type, 't');
    assert_true(jget(&o, "size")->num == 2000000);
    assert_string_equal(jget(&o, "path")->s, "");
    const struct jval *e = jget(&o, "error");
    assert_memory_equal(e->s, "bad \xef\xbf\xbd byte", 12); /* U+FFFD */
    assert_true(e->slen <= QUAR_TEXT_MAX + 8);
    assert_string_equal(e->s + e->slen - 3, "...");
    jfree(&o);
}

static char *root;

static int setup(void **state)
{
    root = tmpdir_make(NULL, "quar");
    return root ? 0 : -1;
}

static int teardown(void **state)
{
    return tmpdir_remove(root);
}

static void test_writer_layout(void **state)
{
    struct seg_config c = {
        .data_dir = root, .pipeline = "p", .kind = "raw", .node = "n1",
        .thread = 2, .grain = PART_DAY,
    };
    struct quar_writer *q;
    struct weir_errmsg e;
    assert_int_equal(quar_writer_new(&c, &q, &e), 0);
    int64_t when[] = {H0 + 5 * 60 * WTIME_NS_PER_S, H0 + 1800 * WTIME_NS_PER_S,
                      H0 + WTIME_NS_PER_HOUR + 1};
    for (int i = 0; i < 3; i++) {
        char raw[32];
        snprintf(raw, sizeof(raw), "{\"i\":%d", i);
        struct quar_record r = {
            .received_at_ns = when[i],
            .peer = "127.0.0.1:4000",
            .reason = QUAR_TRUNCATED,
            .error = "connection closed mid-record",
            .raw = raw,
            .raw_len = strlen(raw),
        };
        assert_int_equal(quar_append(q, &r), 0);
    }
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);
    quar_writer_free(NULL);

    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "quarantine", &l, NULL), 0);
    assert_int_equal(l.n, 2);
    char want[PATH_MAX];
    int n = snprintf(want, sizeof(want),
                     "%s/p/quarantine/date=2025-09-02/hour=10/n1-2-", root);
    assert_memory_equal(l.v[0].path, want, (size_t)n);
    assert_true(seg_name_is_node(l.v[0].name, "n1"));
    assert_int_equal(l.v[0].sn.thread, 2);
    assert_false(l.v[0].active);
    assert_int_equal(l.v[1].grain, PART_HOUR); /* hour, whatever cfg said */
    int lines = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct buf b = BUF_INIT(1 << 20);
        assert_int_equal(fsio_read_file(l.v[i].path, &b), 0);
        for (char *line = b.data, *nl; (nl = strchr(line, '\n'));
             line = nl + 1) {
            *nl = '\0';
            struct jobj o;
            assert_int_equal(jparse(line, &o), 0);
            assert_string_equal(jget(&o, "reason")->s, "truncated");
            assert_string_equal(jget(&o, "peer")->s, "127.0.0.1:4000");
            jfree(&o);
            lines++;
        }
        buf_release(&b);
    }
    assert_int_equal(lines, 3);
    seg_list_release(&l);
    assert_int_equal(seg_list(root, "p", "raw", &l, NULL), 0);
    assert_int_equal(l.n, 0);
    seg_list_release(&l);
}

/* Control bytes grow 6x when escaped: past the writer's limit the line
 * falls back to base64, which grows only 4/3. */
static void test_large_raw_falls_back(void **state)
{
    struct seg_config c = {
        .data_dir = root, .pipeline = "p", .kind = "quarantine", .node = "n1",
        .max_pending = 2u << 20,
    };
    struct quar_writer *q;
    assert_int_equal(quar_writer_new(&c, &q, NULL), 0);
    size_t n = 512u << 10;
    char *raw = malloc(n);
    memset(raw, 1, n);
    struct quar_record r = {
        .received_at_ns = H0, .reason = QUAR_TOO_LARGE, .raw = raw,
        .raw_len = n, .truncated = 1, .size = 5u << 20,
    };
    assert_int_equal(quar_append(q, &r), 0);
    assert_int_equal(seg_close_all(quar_seg(q)), 0);
    quar_writer_free(q);
    struct seg_list l;
    assert_int_equal(seg_list(root, "p", "quarantine", &l, NULL), 0);
    assert_int_equal(l.n, 1);
    struct buf b = BUF_INIT(4u << 20);
    assert_int_equal(fsio_read_file(l.v[0].path, &b), 0);
    assert_true(b.len < (1u << 20));
    b.data[b.len - 1] = '\0'; /* the newline */
    struct jobj o;
    assert_int_equal(jparse(b.data, &o), 0);
    assert_raw(&o, raw, n);
    assert_non_null(jget(&o, "raw_b64"));
    jfree(&o);
    buf_release(&b);
    seg_list_release(&l);
    free(raw);
}

/* The line is one JSON object (the flat parser above takes no "kafka"). */
static void assert_json(const char *s, size_t n)
{
    struct json_doc d;
    json_doc_init(&d, 8);
    if (json_scan(&d, s, n) != JSON_OK || d.toks[0].type != JSON_OBJECT)
        fail_msg("not a JSON object: %s", s);
    json_doc_release(&d);
}

/* The line's end for a record with origin k. */
static void assert_kafka_tail(const struct quar_kafka *k, const char *tail)
{
    struct quar_record r = {
        .received_at_ns = H0, .peer = "m/3@1234", .reason = QUAR_INVALID,
        .raw = "{}", .raw_len = 2, .kafka = k,
    };
    struct buf line = BUF_INIT(1u << 20);
    assert_int_equal(quar_format(&line, "p", &r), 0);
    size_t n = strlen(tail);
    assert_true(line.len > n);
    if (memcmp(line.data + line.len - n, tail, n) != 0)
        fail_msg("line %s does not end in %s", line.data, tail);
    assert_json(line.data, line.len);
    buf_release(&line);
}

static void test_kafka_origin(void **state)
{
    struct quar_kafka k = {
        .topic = "m", .partition = 3, .offset = 1234, .key = "a\"b\xc3\xa9",
        .key_len = 5, .timestamp_ms = INT64_C(1756803600123),
    };
    assert_kafka_tail(&k, ",\"raw\":\"{}\",\"kafka\":{\"topic\":\"m\",\"partition\":3,"
                          "\"offset\":1234,\"key\":\"a\\\"b\xc3\xa9\","
                          "\"timestamp\":1756803600123}}");
    k.key = "k\377\376";
    k.key_len = 3;
    k.timestamp_ms = -1;
    assert_kafka_tail(&k, ",\"kafka\":{\"topic\":\"m\",\"partition\":3,\"offset\":1234,"
                          "\"key_b64\":\"a//+\"}}");
    k.key = "";
    k.key_len = 0;
    assert_kafka_tail(&k, "\"offset\":1234,\"key\":\"\"}}");
    k.key = NULL;
    assert_kafka_tail(&k, "\"offset\":1234}}");

    /* A key that does not fit the line's bound: the line without "kafka"
     * (its peer still says where the record came from). */
    size_t n = 8192;
    char *key = malloc(n);
    memset(key, 'K', n);
    k.key = key;
    k.key_len = n;
    struct quar_record r = {
        .received_at_ns = H0, .peer = "m/3@1234 key=KKK...", .reason = QUAR_INVALID,
        .raw = "{}", .raw_len = 2, .kafka = &k,
    };
    struct buf line = BUF_INIT(4096);
    assert_int_equal(quar_format(&line, "p", &r), 0);
    assert_null(strstr(line.data, "\"kafka\""));
    assert_int_equal(line.data[line.len - 1], '}');
    assert_json(line.data, line.len);
    buf_release(&line);
    line = (struct buf)BUF_INIT(64u << 10);
    assert_int_equal(quar_format(&line, "p", &r), 0);
    assert_non_null(strstr(line.data, "\"kafka\""));
    buf_release(&line);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_valid_utf8_raw),
        cmocka_unit_test(test_invalid_utf8_raw),
        cmocka_unit_test(test_truncated_and_text_limits),
        cmocka_unit_test_setup_teardown(test_writer_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_raw_falls_back, setup, teardown),
        cmocka_unit_test(test_kafka_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
