/*
 * test_protobuf.c - Protobuf payloads (schema/protobuf.h): descriptor sets
 * made by protoc from tests/data/protobuf/ at test time, messages
 * encoded by `protoc --encode` from text format (real binary payloads), and
 * hand-made bytes for what protoc never writes (unpacked elements of a
 * packed field, two oneof members, split messages, malformed input).
 * Without protoc the tests print "skipped" and pass.
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
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "schema/protobuf.h"
#include "schema/schema.h"
#include "schema/shape.h"
#include "schema/validate.h"

#include "tmpdir.h"

static char *tmp;               /* this run's scratch folder */
static char protos[PATH_MAX];   /* tests/data/protobuf */
static char plant[PATH_MAX + 32], legacy[PATH_MAX + 32];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void slurp(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;
    assert_non_null(f);
    buf_reset(b);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(buf_append(b, chunk, n), 0);
    fclose(f);
}

/* The binary of `text` (protobuf text format) as a message of type. */
static void encode(const char *type, const char *text, struct buf *out)
{
    char in[PATH_MAX + 16];
    snprintf(in, sizeof in, "%s/in.txt", tmp);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (sh("protoc -I '%s' --encode=%s '%s/plant.proto' <'%s' >'%s/out.bin'", protos, type,
           protos, in, tmp) != 0)
        fail_msg("protoc --encode=%s refused: %s", type, text);
    char bin[PATH_MAX + 16];
    snprintf(bin, sizeof bin, "%s/out.bin", tmp);
    slurp(bin, out);
}

static struct protobuf *load(const char *desc, const char *type)
{
    struct protobuf *pb = NULL;
    struct weir_errmsg e = {0};
    if (protobuf_load(desc, type, 0, &pb, &e) != 0)
        fail_msg("load %s: %s", type, e.text);
    return pb;
}

/* Decode bytes as a message of type; compare with want (NULL: expect a
 * failure whose message contains err_part). */
static void check_bytes(const char *type, const void *p, size_t n, const char *want,
                        const char *err_part)
{
    struct protobuf *pb = load(plant, type);
    struct protobuf_decoder *d = protobuf_decoder_new(pb);
    struct buf out = BUF_INIT(1u << 20);
    struct weir_errmsg e = {0};
    int rc = protobuf_decode(d, p, n, &out, &e);
    if (want && (rc != 0 || strcmp(out.data, want) != 0))
        fail_msg("%s:\n got %s (%s)\nwant %s", type, rc ? "error" : out.data,
                 rc ? e.text : "", want);
    if (!want && (rc == 0 || !strstr(e.text, err_part)))
        fail_msg("%s: want an error with \"%s\", got %s", type, err_part,
                 rc ? e.text : out.data);
    buf_release(&out);
    protobuf_decoder_free(d);
    protobuf_free(pb);
}

static void check_text(const char *type, const char *text, const char *want)
{
    struct buf bin = BUF_INIT(1u << 20);
    encode(type, text, &bin);
    check_bytes(type, bin.data ? bin.data : "", bin.len, want, NULL);
    buf_release(&bin);
}

#define DEFAULTS_LOC "\"site\":\"\",\"line\":0"

static void test_every_scalar(void **state)
{
    (void)state;
    check_text("plant.v1.Scalars",
               "f_double: 1e300 f_float: 0.1 f_int64: -9223372036854775808 "
               "f_uint64: 18446744073709551615 f_int32: -2147483648 "
               "f_fixed64: 12345678901234 f_fixed32: 4294967295 f_bool: true "
               "f_string: \"h\\303\\251llo \\\"q\\\"\\n\" f_bytes: \"\\000\\001\\377\" "
               "f_uint32: 4294967295 f_enum: STATUS_OK f_sfixed32: -5 "
               "f_sfixed64: -6 f_sint32: -7 f_sint64: -8",
               "{\"f_double\":1e+300,\"f_float\":0.1,\"f_int64\":-9223372036854775808,"
               "\"f_uint64\":18446744073709551615,\"f_int32\":-2147483648,"
               "\"f_fixed64\":12345678901234,\"f_fixed32\":4294967295,\"f_bool\":true,"
               "\"f_string\":\"h\xc3\xa9llo \\\"q\\\"\\n\",\"f_bytes\":\"AAH/\","
               "\"f_uint32\":4294967295,\"f_enum\":\"STATUS_OK\",\"f_sfixed32\":-5,"
               "\"f_sfixed64\":-6,\"f_sint32\":-7,\"f_sint64\":-8}");
    /* Extremes of the zigzag types, and doubles that need 17 digits. */
    check_text("plant.v1.Scalars",
               "f_sint32: -2147483648 f_sint64: -9223372036854775808 f_double: 0.3 "
               "f_float: 3.4028235e38 f_int64: 9223372036854775807",
               "{\"f_double\":0.3,\"f_float\":3.4028235e+38,"
               "\"f_int64\":9223372036854775807,\"f_uint64\":0,\"f_int32\":0,"
               "\"f_fixed64\":0,\"f_fixed32\":0,\"f_bool\":false,\"f_string\":\"\","
               "\"f_bytes\":\"\",\"f_uint32\":0,\"f_enum\":\"STATUS_UNSPECIFIED\","
               "\"f_sfixed32\":0,\"f_sfixed64\":0,\"f_sint32\":-2147483648,"
               "\"f_sint64\":-9223372036854775808}");
    check_text("plant.v1.Scalars", "f_double: 0.1 f_float: -0",
               "{\"f_double\":0.1,\"f_float\":-0,\"f_int64\":0,\"f_uint64\":0,"
               "\"f_int32\":0,\"f_fixed64\":0,\"f_fixed32\":0,\"f_bool\":false,"
               "\"f_string\":\"\",\"f_bytes\":\"\",\"f_uint32\":0,"
               "\"f_enum\":\"STATUS_UNSPECIFIED\",\"f_sfixed32\":0,\"f_sfixed64\":0,"
               "\"f_sint32\":0,\"f_sint64\":0}");
    /* NaN and infinities have no JSON number: null. */
    check_text("plant.v1.Location", "point { x: nan y: -inf }",
               "{" DEFAULTS_LOC ",\"point\":{\"x\":null,\"y\":null}}");
}

static void test_negative_int32_is_ten_bytes(void **state)
{
    (void)state;
    struct buf bin = BUF_INIT(1024);
    encode("plant.v1.Location", "line: -3", &bin);
    /* tag 0x10, then -3 sign-extended to 64 bits: 10 bytes. */
    assert_int_equal(bin.len, 11);
    assert_int_equal((unsigned char)bin.data[0], 0x10);
    assert_int_equal((unsigned char)bin.data[10], 0x01);
    check_bytes("plant.v1.Location", bin.data, bin.len, "{\"site\":\"\",\"line\":-3}", NULL);
    /* A varint with an 11th byte is refused. */
    const char eleven[] = "\x10\xfd\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
    check_bytes("plant.v1.Location", eleven, sizeof eleven - 1, NULL,
                "at byte 1: message plant.v1.Location: varint longer than 10 bytes");
    buf_release(&bin);
}

static void test_defaults_and_presence(void **state)
{
    (void)state;
    /* proto3: scalars without presence are always there; messages,
     * oneof members and `optional` only when sent; repeated and maps
     * always. */
    check_bytes("plant.v1.Reading", "", 0,
                "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
                "\"samples\":[],\"flags\":[],\"tags\":[],\"counters\":{},\"places\":{},"
                "\"history\":[],\"seq\":0}",
                NULL);
    check_text("plant.v1.Reading", "battery: 0 celsius: 0",
               "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
               "\"samples\":[],\"flags\":[],\"tags\":[],\"counters\":{},\"places\":{},"
               "\"celsius\":0,\"battery\":0,\"history\":[],\"seq\":0}");
    /* proto2: every singular field has presence. */
    struct protobuf *pb = load(legacy, "legacy.Old");
    struct protobuf_decoder *d = protobuf_decoder_new(pb);
    struct buf out = BUF_INIT(4096);
    struct weir_errmsg e = {0};
    assert_int_equal(protobuf_decode(d, "\x08\x05\x18\x01\x18\x02", 6, &out, &e), 0);
    assert_string_equal(out.data, "{\"a\":5,\"c\":[1,2]}");
    struct buf js = BUF_INIT(1 << 16);
    assert_int_equal(protobuf_json_schema(pb, &js), 0);
    assert_non_null(strstr(js.data, "\"required\":[\"c\"]"));
    buf_release(&js);
    buf_release(&out);
    protobuf_decoder_free(d);
    protobuf_free(pb);
}

static void test_repeated_packed_and_not(void **state)
{
    (void)state;
    check_text("plant.v1.Reading", "samples: [1, -2, 300] flags: [4, 5] tags: \"a\" tags: \"b\"",
               "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
               "\"samples\":[1,-2,300],\"flags\":[4,5],\"tags\":[\"a\",\"b\"],"
               "\"counters\":{},\"places\":{},\"history\":[],\"seq\":0}");
    /* samples (6) unpacked, flags (7) packed, runs split by other fields:
     * every form a parser must take. */
    const char b[] = "\x30\x01"          /* samples 1 */
                     "\x3a\x02\x04\x05"  /* flags packed [4,5] */
                     "\x98\x01\x2a"      /* seq 42 */
                     "\x32\x02\x02\x03"  /* samples packed [2,3] */
                     "\x38\x06";         /* flags 6 */
    check_bytes("plant.v1.Reading", b, sizeof b - 1,
                "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
                "\"samples\":[1,2,3],\"flags\":[4,5,6],\"tags\":[],\"counters\":{},"
                "\"places\":{},\"history\":[],\"seq\":42}",
                NULL);
    /* A packed run cut inside a value. */
    const char cut[] = "\x32\x02\x80\x80";
    check_bytes("plant.v1.Reading", cut, sizeof cut - 1, NULL,
                "at byte 2: field plant.v1.Reading.samples (6): truncated varint in a packed array");
}

static void test_nested_maps_oneof(void **state)
{
    (void)state;
    check_text("plant.v1.Reading",
               "location { site: \"north\" point { x: 1.5 } } "
               "history { site: \"h1\" } history { line: 2 } "
               "counters { key: \"x\" value: 9000000000 } counters { key: \"a\" value: -1 } "
               "places { key: -7 value { site: \"p\" } } places { key: 3 value {} } "
               "text: \"hello\"",
               "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
               "\"location\":{\"site\":\"north\",\"line\":0,\"point\":{\"x\":1.5,\"y\":0}},"
               "\"samples\":[],\"flags\":[],\"tags\":[],"
               "\"counters\":{\"a\":-1,\"x\":9000000000},"
               "\"places\":{\"-7\":{\"site\":\"p\",\"line\":0},\"3\":{" DEFAULTS_LOC "}},"
               "\"text\":\"hello\","
               "\"history\":[{\"site\":\"h1\",\"line\":0},{\"site\":\"\",\"line\":2}],"
               "\"seq\":0}");
    /* Concatenated messages merge: the last oneof member wins, a singular
     * message is merged, a map key seen twice keeps its last value. */
    struct buf a = BUF_INIT(4096), b = BUF_INIT(4096);
    encode("plant.v1.Reading",
           "celsius: 1.5 location { site: \"a\" } counters { key: \"k\" value: 1 }", &a);
    encode("plant.v1.Reading",
           "text: \"t\" location { line: 5 } counters { key: \"k\" value: 2 }", &b);
    assert_int_equal(buf_append(&a, b.data, b.len), 0);
    check_bytes("plant.v1.Reading", a.data, a.len,
                "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
                "\"location\":{\"site\":\"a\",\"line\":5},\"samples\":[],\"flags\":[],"
                "\"tags\":[],\"counters\":{\"k\":2},\"places\":{},\"text\":\"t\","
                "\"history\":[],\"seq\":0}",
                NULL);
    encode("plant.v1.Reading", "where { site: \"w\" }", &b);
    encode("plant.v1.Reading", "text: \"t\"", &a);
    assert_int_equal(buf_append(&a, b.data, b.len), 0);
    check_bytes("plant.v1.Reading", a.data, a.len,
                "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
                "\"samples\":[],\"flags\":[],\"tags\":[],\"counters\":{},\"places\":{},"
                "\"where\":{\"site\":\"w\",\"line\":0},\"history\":[],\"seq\":0}",
                NULL);
    /* A map entry without key or value: the defaults. */
    check_bytes("plant.v1.Reading", "\x4a\x00\x52\x00", 4,
                "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_UNSPECIFIED\","
                "\"samples\":[],\"flags\":[],\"tags\":[],\"counters\":{\"\":0},"
                "\"places\":{\"0\":{" DEFAULTS_LOC "}},\"history\":[],\"seq\":0}",
                NULL);
    buf_release(&a);
    buf_release(&b);
}

static void test_enums(void **state)
{
    (void)state;
    check_text("plant.v1.Reading", "status: STATUS_FAULT",
               "{\"sensor\":\"\",\"value\":0,\"status\":\"STATUS_FAULT\",\"samples\":[],"
               "\"flags\":[],\"tags\":[],\"counters\":{},\"places\":{},\"history\":[],"
               "\"seq\":0}");
    /* A number the enum does not name: the number (the schema refuses it). */
    check_bytes("plant.v1.Reading", "\x20\x09", 2,
                "{\"sensor\":\"\",\"value\":0,\"status\":9,\"samples\":[],"
                "\"flags\":[],\"tags\":[],\"counters\":{},\"places\":{},\"history\":[],"
                "\"seq\":0}",
                NULL);
}

static void test_well_known_types(void **state)
{
    (void)state;
#define REST "\"samples\":[],\"flags\":[],\"tags\":[],\"counters\":{},\"places\":{}"
#define HEAD "{\"sensor\":\"\","
    check_text("plant.v1.Reading",
               "ts { seconds: 1756807200 nanos: 5000 } uptime { seconds: -1 nanos: -500000000 } "
               "pressure { value: 1013.25 }",
               HEAD "\"ts\":\"2025-09-02T10:00:00.000005Z\",\"value\":0,"
               "\"status\":\"STATUS_UNSPECIFIED\"," REST ",\"uptime\":-1.5,"
               "\"pressure\":1013.25,\"history\":[],\"seq\":0}");
    check_text("plant.v1.Reading", "ts { seconds: -1 nanos: 1 } uptime {} pressure {}",
               HEAD "\"ts\":\"1969-12-31T23:59:59.000000001Z\",\"value\":0,"
               "\"status\":\"STATUS_UNSPECIFIED\"," REST ",\"uptime\":0,"
               "\"pressure\":0,\"history\":[],\"seq\":0}");
    check_text("plant.v1.Reading", "ts { seconds: 253402300799 nanos: 120000000 }",
               HEAD "\"ts\":\"9999-12-31T23:59:59.120Z\",\"value\":0,"
               "\"status\":\"STATUS_UNSPECIFIED\"," REST ",\"history\":[],\"seq\":0}");
    check_text("plant.v1.Reading", "ts { seconds: -62135596800 }",
               HEAD "\"ts\":\"0001-01-01T00:00:00Z\",\"value\":0,"
               "\"status\":\"STATUS_UNSPECIFIED\"," REST ",\"history\":[],\"seq\":0}");
    struct buf b = BUF_INIT(4096);
    encode("plant.v1.Reading", "ts { seconds: 253402300800 }", &b);
    check_bytes("plant.v1.Reading", b.data, b.len, NULL,
                "at byte 0: message google.protobuf.Timestamp: a Timestamp out of range");
    encode("plant.v1.Reading", "ts { nanos: -1 }", &b);
    check_bytes("plant.v1.Reading", b.data, b.len, NULL, "out of range");
    encode("plant.v1.Reading", "uptime { seconds: 1 nanos: -1 }", &b);
    check_bytes("plant.v1.Reading", b.data, b.len, NULL, "a Duration out of range");
    buf_release(&b);
#undef REST
#undef HEAD
}

static void test_unknown_fields_skipped(void **state)
{
    (void)state;
    struct buf b = BUF_INIT(4096);
    encode("plant.v1.Location", "site: \"s\" line: 2", &b);
    /* Fields 99 (varint), 100 (LEN), 101 (fixed32), 102 (fixed64) in front. */
    const char unknown[] = "\x98\x06\x96\x01"
                           "\xa2\x06\x03xyz"
                           "\xad\x06\x01\x02\x03\x04"
                           "\xb1\x06\x01\x02\x03\x04\x05\x06\x07\x08";
    struct buf all = BUF_INIT(4096);
    assert_int_equal(buf_append(&all, unknown, sizeof unknown - 1), 0);
    assert_int_equal(buf_append(&all, b.data, b.len), 0);
    check_bytes("plant.v1.Location", all.data, all.len, "{\"site\":\"s\",\"line\":2}", NULL);
    buf_release(&b);
    buf_release(&all);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        const char *err;
    } cases[] = {
        {"\x0a\x05" "ab", 4, "at byte 1: message plant.v1.Location: length past the end"},
        {"\x10", 1, "at byte 1: message plant.v1.Location: truncated varint"},
        {"\x10\x80", 2, "at byte 1: message plant.v1.Location: truncated varint"},
        {"\x0a", 1, "at byte 1: message plant.v1.Location: truncated length"},
        {"\x08\x01", 2, "at byte 0: field plant.v1.Location.site (1): wire type 0, expected 2"},
        {"\x15\x01\x02\x03\x04", 5, "field plant.v1.Location.line (2): wire type 5, expected 0"},
        {"\x0b\x0c", 2, "at byte 0: message plant.v1.Location: groups (wire types 3 and 4)"},
        {"\x9b\x06", 2, "groups (wire types 3 and 4) are not supported"},
        {"\x00\x01", 2, "at byte 0: message plant.v1.Location: field number 0"},
        {"\x0e", 1, "invalid wire type 6 or 7"},
        {"\x0a\x02\xc3\x28", 4, "at byte 2: field plant.v1.Location.site (1): a string that is not valid UTF-8"},
        {"\x0a\x03\xed\xa0\x80", 5, "not valid UTF-8"},
        {"\x1a\x03\x09\x01\x02", 5, "at byte 3: message plant.v1.Location.Point: truncated 64-bit value"},
        {"\x80", 1, "truncated tag"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_bytes("plant.v1.Location", cases[i].bytes, cases[i].len, NULL, cases[i].err);
}

static void test_depth_and_size_limits(void **state)
{
    (void)state;
    /* A chain of Nodes 300 deep: refused at max_depth, never a crash. */
    struct buf b = BUF_INIT(1 << 20), t = BUF_INIT(1 << 20);
    for (int i = 0; i < 300; i++)
        buf_puts(&t, "children { ");
    for (int i = 0; i < 300; i++)
        buf_puts(&t, "} ");
    encode("plant.v1.Node", t.data, &b);
    check_bytes("plant.v1.Node", b.data, b.len, NULL, "nesting deeper than max_depth (256)");
    struct protobuf *pb = NULL;
    struct weir_errmsg e = {0};
    assert_int_equal(protobuf_load(plant, "plant.v1.Node", 8, &pb, &e), 0);
    struct protobuf_decoder *d = protobuf_decoder_new(pb);
    struct buf out = BUF_INIT(1 << 20);
    encode("plant.v1.Node", "children { children { children { name: \"x\" } } }", &b);
    assert_int_equal(protobuf_decode(d, b.data, b.len, &out, &e), 0);
    assert_string_equal(out.data, "{\"name\":\"\",\"children\":[{\"name\":\"\",\"children\":"
                                  "[{\"name\":\"\",\"children\":[{\"name\":\"x\","
                                  "\"children\":[]}]}]}]}");
    encode("plant.v1.Node", "children { children { children { children { name: \"x\" } } } }",
           &b);
    assert_int_equal(protobuf_decode(d, b.data, b.len, &out, &e), WEIR_ELIMIT);
    assert_non_null(strstr(e.text, "nesting deeper than max_depth (8)"));
    assert_int_equal(out.len, 0);
    /* The output's bound. */
    struct buf small = BUF_INIT(20);
    encode("plant.v1.Node", "name: \"a long name, longer than twenty bytes\"", &b);
    assert_int_equal(protobuf_decode(d, b.data, b.len, &small, &e), WEIR_ELIMIT);
    assert_string_equal(e.text, "the decoded JSON is longer than 20 bytes");
    buf_release(&small);
    buf_release(&out);
    buf_release(&b);
    buf_release(&t);
    protobuf_decoder_free(d);
    protobuf_free(pb);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct protobuf *pb = NULL;
    struct weir_errmsg e = {0};
    char path[PATH_MAX + 32];
    assert_int_equal(protobuf_load("/nonexistent/x.desc", "a.B", 0, &pb, &e), WEIR_ENOTFOUND);
    assert_string_equal(e.text, "descriptor set /nonexistent/x.desc: No such file or directory");
    assert_null(pb);
    snprintf(path, sizeof path, "%s/plant.proto", protos);
    assert_int_equal(protobuf_load(path, "a.B", 0, &pb, &e), WEIR_EPARSE);
    assert_non_null(strstr(e.text, "not a Protobuf descriptor set"));
    assert_non_null(strstr(e.text, "protoc --descriptor_set_out=FILE --include_imports"));
    assert_int_equal(protobuf_load(plant, "plant.v1.Nope", 0, &pb, &e), WEIR_ENOTFOUND);
    assert_non_null(strstr(e.text, "no message type \"plant.v1.Nope\" in the descriptor set; "
                                   "it has: google.protobuf.BoolValue, "));
    assert_non_null(strstr(e.text, "plant.v1.Reading"));
    assert_int_equal(protobuf_load(plant, ".plant.v1.Reading", 0, &pb, &e), 0);
    assert_string_equal(protobuf_message_name(pb), "plant.v1.Reading");
    protobuf_free(pb);
    assert_int_equal(protobuf_load(plant, "google.protobuf.Timestamp", 0, &pb, &e),
                     WEIR_EUNSUPPORTED);
    assert_int_equal(protobuf_load(legacy, "legacy.WithGroup", 0, &pb, &e), WEIR_EUNSUPPORTED);
    assert_non_null(strstr(e.text, "legacy.WithGroup.g is a group (proto2)"));
    /* Made without --include_imports: the Timestamp is not there. */
    snprintf(path, sizeof path, "%s/noimports.desc", tmp);
    assert_int_equal(sh("protoc -I '%s' --descriptor_set_out='%s' '%s/plant.proto'", protos,
                        path, protos), 0);
    assert_int_equal(protobuf_load(path, "plant.v1.Reading", 0, &pb, &e), WEIR_ENOTFOUND);
    assert_non_null(strstr(e.text, "plant.v1.Reading.ts has type .google.protobuf.Timestamp, "
                                   "which the descriptor set does not hold (make it with "
                                   "protoc --include_imports)"));
    /* Not needed by the type asked for: fine. */
    assert_int_equal(protobuf_load(path, "plant.v1.Location", 0, &pb, &e), 0);
    protobuf_free(pb);
    assert_int_equal(protobuf_load_mem("", 0, "empty", "a.B", 0, &pb, &e), WEIR_EPARSE);
    assert_non_null(strstr(e.text, "empty: not a Protobuf descriptor set (at byte 0: it holds no file)"));
}

/* The derived schema: compiles, validates what the decoder writes, and its
 * shape is the columns the docs promise. */
static void test_derived_schema(void **state)
{
    (void)state;
    struct protobuf *pb = load(plant, "plant.v1.Reading");
    struct weir_errmsg e = {0};
    struct schema_opts so = {.int64_integers = 1};
    struct schema *s = protobuf_schema(pb, &so, &e);
    if (!s)
        fail_msg("schema: %s", e.text);
    struct validator *v = validator_new(s);
    struct protobuf_decoder *d = protobuf_decoder_new(pb);
    struct buf bin = BUF_INIT(1 << 16), out = BUF_INIT(1 << 20);
    struct verdict vd;
    encode("plant.v1.Reading",
           "sensor: \"s\" ts { seconds: 1 } value: 2 status: STATUS_OK "
           "location { point { x: 1 } } samples: 1 tags: \"t\" counters { key: \"k\" value: 1 } "
           "places { key: 1 value { line: 1 } } where { site: \"w\" } battery: 3 "
           "uptime { seconds: 2 } pressure { value: nan } history {} "
           "scalars { f_uint64: 9223372036854775807 f_bytes: \"x\" } seq: 1",
           &bin);
    assert_int_equal(protobuf_decode(d, bin.data, bin.len, &out, &e), 0);
    if (validator_check(v, out.data, out.len, &vd) != 1)
        fail_msg("%s: %s %s", out.data, vd.path, vd.message);
    /* A uint64 past int64 does not fit BIGINT: the validator says so. */
    encode("plant.v1.Reading", "scalars { f_uint64: 9223372036854775808 }", &bin);
    assert_int_equal(protobuf_decode(d, bin.data, bin.len, &out, &e), 0);
    assert_int_equal(validator_check(v, out.data, out.len, &vd), 0);
    assert_string_equal(vd.path, "/scalars/f_uint64");
    /* An enum number without a name is refused. */
    assert_int_equal(protobuf_decode(d, "\x20\x09", 2, &out, &e), 0);
    assert_int_equal(validator_check(v, out.data, out.len, &vd), 0);
    assert_string_equal(vd.path, "/status");

    struct shape *sh_ = NULL;
    assert_int_equal(shape_of_schema(s, &sh_, &e), 0);
    static const struct {
        const char *name;
        enum shape_kind kind;
        int nullable;
    } cols[] = {
        {"sensor", SHAPE_STRING, 0}, {"ts", SHAPE_STRING, 1}, {"value", SHAPE_NUMBER, 1},
        {"status", SHAPE_STRING, 0}, {"location", SHAPE_OBJECT, 1},
        {"samples", SHAPE_ARRAY, 0}, {"counters", SHAPE_JSON, 0},
        {"places", SHAPE_JSON, 0}, {"celsius", SHAPE_NUMBER, 1},
        {"where", SHAPE_OBJECT, 1}, {"battery", SHAPE_INTEGER, 1},
        {"uptime", SHAPE_NUMBER, 1}, {"pressure", SHAPE_NUMBER, 1},
        {"history", SHAPE_ARRAY, 0}, {"scalars", SHAPE_OBJECT, 1},
        {"seq", SHAPE_INTEGER, 0},
    };
    assert_int_equal(sh_->open, 0);
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        const struct shape *f = shape_field(sh_, cols[i].name, strlen(cols[i].name));
        if (!f || f->kind != cols[i].kind || f->nullable != cols[i].nullable)
            fail_msg("column %s: kind %s nullable %d", cols[i].name,
                     f ? shape_kind_name(f->kind) : "(none)", f ? f->nullable : -1);
    }
    const struct shape *h = shape_field(sh_, "history", 7);
    assert_int_equal(h->items->kind, SHAPE_OBJECT);
    shape_free(sh_);
    validator_free(v);
    schema_free(s);
    protobuf_decoder_free(d);
    protobuf_free(pb);

    /* A tree: where Node repeats, any object. */
    pb = load(plant, "plant.v1.Node");
    buf_reset(&out);
    assert_int_equal(protobuf_json_schema(pb, &out), 0);
    assert_string_equal(out.data,
                        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                        "\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                        "\"name\":{\"type\":\"string\"},\"children\":{\"type\":\"array\","
                        "\"items\":{\"type\":\"object\"}}},\"required\":[\"name\",\"children\"]}");
    protobuf_free(pb);
    buf_release(&bin);
    buf_release(&out);
}

/* Random damage to a real message: an error or a JSON text, never a crash
 * (ASan checks the reads); every output the decoder accepts is JSON the
 * validator scans. */
static void test_damaged_messages(void **state)
{
    (void)state;
    struct protobuf *pb = load(plant, "plant.v1.Reading");
    struct protobuf_decoder *d = protobuf_decoder_new(pb);
    struct schema *any = schema_compile("{}", 2, NULL, NULL, NULL);
    struct validator *v = validator_new(any);
    struct buf bin = BUF_INIT(1 << 16), out = BUF_INIT(1 << 20), m = BUF_INIT(1 << 16);
    struct weir_errmsg e;
    struct verdict vd;
    encode("plant.v1.Reading",
           "sensor: \"s\" ts { seconds: 1 nanos: 2 } location { site: \"n\" point { x: 1 } } "
           "samples: [1, 2, 3] flags: [4] counters { key: \"k\" value: 1 } "
           "places { key: 1 value { line: 1 } } text: \"t\" uptime { seconds: 2 } "
           "history { site: \"h\" } scalars { f_float: 1 f_sint64: -1 f_bytes: \"x\" }",
           &bin);
    unsigned seed = 12345;
    int ok = 0;
    for (int i = 0; i < 20000; i++) {
        buf_reset(&m);
        buf_append(&m, bin.data, bin.len);
        int edits = 1 + (int)(rand_r(&seed) % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t)rand_r(&seed) % m.len;
            switch (rand_r(&seed) % 3) {
            case 0: m.data[at] = (char)rand_r(&seed); break;
            case 1: buf_truncate(&m, at); break;
            default: m.data[at] ^= (char)(1 << (rand_r(&seed) % 8)); break;
            }
            if (m.len == 0)
                break;
        }
        if (protobuf_decode(d, m.data ? m.data : "", m.len, &out, &e) == 0) {
            ok++;
            if (validator_check(v, out.data, out.len, &vd) != 1)
                fail_msg("not JSON: %s (%s)", out.data, vd.message);
        } else {
            assert_non_null(strstr(e.text, "at byte "));
        }
    }
    print_message("%d of 20000 damaged messages still decode\n", ok);
    validator_free(v);
    schema_free(any);
    buf_release(&bin);
    buf_release(&out);
    buf_release(&m);
    protobuf_decoder_free(d);
    protobuf_free(pb);
}

int main(void)
{
    if (system("protoc --version >/dev/null 2>&1") != 0) {
        printf("skipped: protoc not installed (Debian: protobuf-compiler)\n");
        return 0;
    }
    const char *root = getenv("WEIR_ROOT");
    if (root)
        snprintf(protos, sizeof protos, "%s/tests/data/protobuf", root);
    else
        snprintf(protos, sizeof protos, "tests/data/protobuf");
    if (!(tmp = tmpdir_make(NULL, "protobuf"))) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(plant, sizeof plant, "%s/plant.desc", tmp);
    snprintf(legacy, sizeof legacy, "%s/legacy.desc", tmp);
    if (sh("protoc -I '%s' --descriptor_set_out='%s' --include_imports '%s/plant.proto'",
           protos, plant, protos) != 0 ||
        sh("protoc -I '%s' --descriptor_set_out='%s' '%s/legacy.proto'", protos, legacy,
           protos) != 0) {
        fprintf(stderr, "protoc cannot compile %s/*.proto\n", protos);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_scalar),
        cmocka_unit_test(test_negative_int32_is_ten_bytes),
        cmocka_unit_test(test_defaults_and_presence),
        cmocka_unit_test(test_repeated_packed_and_not),
        cmocka_unit_test(test_nested_maps_oneof),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_well_known_types),
        cmocka_unit_test(test_unknown_fields_skipped),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_depth_and_size_limits),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_derived_schema),
        cmocka_unit_test(test_damaged_messages),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tmpdir_remove(tmp);
    return rc;
}
