/*
 * test_json.c - the JSON scanner: grammar, tape layout, error offsets and
 * messages, numbers, strings, lookup, duplicate keys and limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "schema/json.h"

static struct json_doc doc;

static int setup(void **state)
{
    json_doc_init(&doc, 0);
    return 0;
}

static int teardown(void **state)
{
    json_doc_release(&doc);
    return 0;
}

static enum json_error scan(const char *s)
{
    return json_scan(&doc, s, strlen(s));
}

static enum json_error scan_n(const char *s, size_t n)
{
    return json_scan(&doc, s, n);
}

/* Scan s, expect err at off, and (if msg) the described message. */
static void expect_fail(const char *s, size_t n, enum json_error err,
                        size_t off, const char *msg)
{
    char out[512];
    enum json_error got = scan_n(s, n);
    if (got != err || doc.err_off != off ||
        (msg && strcmp(json_describe_error(&doc, out, sizeof out), msg))) {
        print_error("input %s: got %d at %zu (%s), want %d at %zu (%s)\n", s,
                    got, doc.err_off, json_describe_error(&doc, out, sizeof out),
                    err, off, msg ? msg : "-");
        fail();
    }
    assert_int_equal(doc.err, err);
}

#define FAILS(s, err, off, msg) expect_fail(s, sizeof(s) - 1, err, off, msg)

static void test_valid(void **state)
{
    static const char *ok[] = {
        "0", "-0", "1", "-1", "123", "1.5", "-1.5e10", "1E+2", "1e-2",
        "0.0", "0e0", "true", "false", "null", "\"\"", "\"abc\"",
        "[]", "{}", "[1,2,3]", "{\"a\":1}", " \t\r\n[ 1 , { \"a\" : [ ] } ] \n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\ud83d\\ude00\"",
        "\"\\u0000\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "\"\xef\xbf\xbf\"", "\"\xf4\x8f\xbf\xbf\"", "[[[[[]]]]]",
        "{\"a\":{\"b\":{\"c\":null}}}", "\"\x7f\"",
        "[1,\"a\",true,false,null,{},[],-0.0e-0]",
    };
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        if (scan(ok[k]) != JSON_OK) {
            char out[256];
            print_error("rejected %s: %s\n", ok[k],
                        json_describe_error(&doc, out, sizeof out));
            fail();
        }
    }
}

static void test_invalid(void **state)
{
    static const char *bad[] = {
        "", " ", "[", "]", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}",
        "{\"a\":1,}", "{,}", "{1:1}", "{'a':1}", "'a'", "01", "-01", "1.",
        ".1", "-", "+1", "1e", "1e+", "--1", "0x1", "1.e1", "NaN",
        "Infinity", "-Infinity", "tru", "truee", "nul", "True", "[1 2]",
        "{\"a\":1 \"b\":2}", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"",
        "\"\t\"", "\"\n\"", "\"\x1f\"", "\"\x80\"", "\"\xc0\xaf\"",
        "\"\xc1\xbf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xf0\x80\x80\xaf\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"",
        "\"\xff\"", "\"\xc3\"", "\"\xe2\x82\"", "[1]]", "[1] x", "1 1",
        "{}{}", "\"a\"\"b\"", "[\"a\":1]", "{\"a\",1}", "/*c*/1", "[1,,2]",
        "\xef\xbb\xbf{}", "\"\xe2\x82", "[1e999999999999999999999999x]",
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        if (scan(bad[k]) == JSON_OK) {
            print_error("accepted %s\n", bad[k]);
            fail();
        }
        assert_int_equal(doc.ntoks, 0);
    }
}

static void test_nul(void **state)
{
    FAILS("\"a\0b\"", JSON_ERR_CONTROL, 2,
          "invalid JSON at byte 2: expected no NUL byte (write it as "
          "\\u0000), found a NUL byte (0x00)");
    FAILS("[1,\0]", JSON_ERR_SYNTAX, 3,
          "invalid JSON at byte 3: expected a value, found a NUL byte (0x00)");
    FAILS("{}\0", JSON_ERR_TRAILING, 2,
          "invalid JSON at byte 2: expected nothing but whitespace after the "
          "value, found a NUL byte (0x00)");
    FAILS("\0", JSON_ERR_SYNTAX, 0, NULL);
}

static void test_error_offsets(void **state)
{
    FAILS("{\"a\":1,\"b\":2,\"c\"}", JSON_ERR_SYNTAX, 16,
          "invalid JSON at byte 16: expected ':' after object key, found '}'");
    FAILS("{\"a\":1 \"b\":2}", JSON_ERR_SYNTAX, 7,
          "invalid JSON at byte 7: expected ',' or '}' after object member, "
          "found '\"'");
    FAILS("[1,2 3]", JSON_ERR_SYNTAX, 5,
          "invalid JSON at byte 5: expected ',' or ']' after array element, "
          "found '3'");
    FAILS("[1,]", JSON_ERR_SYNTAX, 3,
          "invalid JSON at byte 3: expected a value, found ']'");
    FAILS("{\"a\":1,}", JSON_ERR_SYNTAX, 7,
          "invalid JSON at byte 7: expected '\"' to begin an object key after "
          "',', found '}'");
    FAILS("{1:2}", JSON_ERR_SYNTAX, 1,
          "invalid JSON at byte 1: expected '\"' to begin an object key, or "
          "'}', found '1'");
    FAILS("[1", JSON_ERR_EOF, 2,
          "invalid JSON at byte 2: expected ',' or ']' after array element, "
          "found end of input");
    FAILS("\"abc", JSON_ERR_EOF, 4,
          "invalid JSON at byte 4: expected '\"' to close the string, found "
          "end of input");
    FAILS("", JSON_ERR_EMPTY, 0, "invalid JSON: empty, no value");
    FAILS("  \n", JSON_ERR_EMPTY, 3, NULL);
    FAILS("01", JSON_ERR_NUMBER, 1, NULL);
    FAILS("1.x", JSON_ERR_NUMBER, 2,
          "invalid JSON at byte 2: expected a digit after '.', found 'x'");
    FAILS("[-]", JSON_ERR_NUMBER, 2, NULL);
    FAILS("1e", JSON_ERR_EOF, 2, NULL);
    FAILS("[1e+]", JSON_ERR_NUMBER, 4,
          "invalid JSON at byte 4: expected a digit in the exponent, found ']'");
    FAILS("[tru]", JSON_ERR_SYNTAX, 4,
          "invalid JSON at byte 4: expected the literal true, found ']'");
    FAILS("nul", JSON_ERR_EOF, 3, NULL);
    FAILS("falsy", JSON_ERR_SYNTAX, 4, NULL);
    FAILS("\"\\x\"", JSON_ERR_ESCAPE, 2,
          "invalid JSON at byte 2: expected an escape character: one of \" \\ "
          "/ b f n r t u, found 'x'");
    FAILS("\"\\u12g4\"", JSON_ERR_ESCAPE, 5, NULL);
    FAILS("\"ab\\udc00\"", JSON_ERR_SURROGATE, 3, NULL);
    FAILS("\"\\ud800\\u0041\"", JSON_ERR_SURROGATE, 7, NULL);
    FAILS("\"\\ud800\"", JSON_ERR_SURROGATE, 7, NULL);
    FAILS("\"a\tb\"", JSON_ERR_CONTROL, 2,
          "invalid JSON at byte 2: expected a control character escaped as "
          "\\n, \\t or \\u00XX, found a tab (0x09)");
    FAILS("\"ab\xed\xa0\x80\"", JSON_ERR_UTF8, 3,
          "invalid JSON at byte 3: expected valid UTF-8 (this encodes a "
          "surrogate, U+D800-U+DFFF), found byte 0xED");
    FAILS("\"\xc0\x80\"", JSON_ERR_UTF8, 1, NULL);
    FAILS("\"\xf4\x90\x80\x80\"", JSON_ERR_UTF8, 1, NULL);
    FAILS("[1] 2", JSON_ERR_TRAILING, 4, NULL);
    FAILS("\xef\xbb\xbf[]", JSON_ERR_BOM, 0,
          "invalid JSON at byte 0: starts with a UTF-8 byte order mark (EF BB "
          "BF), which RFC 8259 section 8.1 forbids; send the JSON without it");
    FAILS("\xff\xfe[\0]\0", JSON_ERR_SYNTAX, 0,
          "invalid JSON at byte 0: expected UTF-8 JSON, not UTF-16 (this "
          "starts with a UTF-16 byte order mark), found byte 0xFF");
    /* A string long enough for the eight-byte loop, error in the tail. */
    FAILS("\"0123456789abcdef\x01\"", JSON_ERR_CONTROL, 17, NULL);
    FAILS("\"0123456789abcdefgh\x80\"", JSON_ERR_UTF8, 19, NULL);
    /* A success clears the last error. */
    assert_int_equal(scan("1"), JSON_OK);
    assert_int_equal(doc.err, JSON_OK);
    assert_null(doc.expected);
}

static void test_tape(void **state)
{
    const char *s = "{\"a\":[1,{\"b\":null}],\"c\\n\":\"x\\u00e9\",\"d\":true}";
    assert_int_equal(scan(s), JSON_OK);
    /* 0 {  1 "a"  2 [  3 1  4 {  5 "b"  6 null  7 "c\n"  8 "x\u00e9"
     * 9 "d"  10 true */
    assert_int_equal(doc.ntoks, 11);
    struct json_tok *t = doc.toks;
    assert_int_equal(t[0].type, JSON_OBJECT);
    assert_int_equal(t[0].count, 3);
    assert_int_equal(t[0].next, 11);
    assert_int_equal(t[0].off, 0);
    assert_int_equal(t[0].len, strlen(s));
    assert_int_equal(t[1].type, JSON_STRING);
    assert_int_equal(t[1].off, 1);
    assert_int_equal(t[1].len, 3);
    assert_int_equal(t[1].count, 1);
    assert_int_equal(t[2].type, JSON_ARRAY);
    assert_int_equal(t[2].count, 2);
    assert_int_equal(t[2].next, 7);
    assert_int_equal(t[2].len, 14);
    assert_int_equal(t[3].type, JSON_NUMBER);
    assert_int_equal(t[3].flags, JSON_F_INTEGER);
    assert_int_equal(t[3].next, 4);
    assert_int_equal(t[4].type, JSON_OBJECT);
    assert_int_equal(t[4].count, 1);
    assert_int_equal(t[4].next, 7);
    assert_int_equal(t[6].type, JSON_NULL);
    assert_int_equal(t[7].flags, JSON_F_ESCAPED);
    assert_int_equal(t[7].count, 2);
    assert_int_equal(t[8].flags, JSON_F_ESCAPED | JSON_F_NONASCII);
    assert_int_equal(t[8].count, 2);
    assert_int_equal(t[10].type, JSON_TRUE);
    assert_int_equal(t[10].next, 11);

    assert_int_equal(scan("[-1.5e3,\"\xf0\x9f\x98\x80\xc3\xa9z\"]"), JSON_OK);
    assert_int_equal(doc.toks[1].flags, JSON_F_NEGATIVE);
    assert_int_equal(doc.toks[1].len, 6);
    assert_int_equal(doc.toks[2].flags, JSON_F_NONASCII);
    assert_int_equal(doc.toks[2].count, 3);
    assert_int_equal(scan(" [ ] "), JSON_OK);
    assert_int_equal(doc.toks[0].off, 1);
    assert_int_equal(doc.toks[0].len, 3);
    assert_int_equal(doc.toks[0].count, 0);
}

/* Every string length around the 16-byte unrolled prefix and the vector
 * blocks, with a special byte at every position, at the very end of the
 * input (no byte after the token to lean on). */
static void test_string_boundaries(void **state)
{
    char buf[80];
    for (size_t n = 0; n <= 70; n++) {
        buf[0] = '"';
        memset(buf + 1, 'a', n);
        buf[n + 1] = '"';
        assert_int_equal(scan_n(buf, n + 2), JSON_OK);
        assert_int_equal(doc.toks[0].count, n);
        assert_int_equal(doc.toks[0].len, n + 2);
        /* Unterminated. */
        assert_int_equal(scan_n(buf, n + 1), JSON_ERR_EOF);
        assert_int_equal(doc.err_off, n + 1);
        for (size_t p = 1; p <= n; p++) {
            buf[p] = '\x01';
            assert_int_equal(scan_n(buf, n + 2), JSON_ERR_CONTROL);
            assert_int_equal(doc.err_off, p);
            buf[p] = '\x80';
            assert_int_equal(scan_n(buf, n + 2), JSON_ERR_UTF8);
            assert_int_equal(doc.err_off, p);
            buf[p] = '"';
            assert_int_equal(scan_n(buf, n + 2), JSON_ERR_TRAILING);
            assert_int_equal(doc.err_off, p + 1);
            buf[p] = '\\';
            assert_int_equal(scan_n(buf, n + 2), p == n ? JSON_ERR_EOF
                                                        : JSON_ERR_ESCAPE);
            if (p < n) {
                buf[p + 1] = 'n';
                assert_int_equal(scan_n(buf, n + 2), JSON_OK);
                assert_int_equal(doc.toks[0].count, n - 1);
                assert_int_equal(doc.toks[0].flags, JSON_F_ESCAPED);
                buf[p] = '\xc3';
                buf[p + 1] = '\xa9';
                assert_int_equal(scan_n(buf, n + 2), JSON_OK);
                assert_int_equal(doc.toks[0].count, n - 1);
                assert_int_equal(doc.toks[0].flags, JSON_F_NONASCII);
                buf[p + 1] = 'a';
            }
            buf[p] = 'a';
        }
    }
    /* Numbers of every length, ending the input or followed by ']'. */
    for (size_t n = 1; n <= 40; n++) {
        buf[0] = '[';
        memset(buf + 1, '7', n);
        buf[n + 1] = ']';
        assert_int_equal(scan_n(buf + 1, n), JSON_OK);
        assert_int_equal(doc.toks[0].len, n);
        assert_int_equal(scan_n(buf, n + 2), JSON_OK);
        assert_int_equal(doc.toks[1].len, n);
        buf[n] = 'x';
        assert_int_equal(scan_n(buf, n + 2), JSON_ERR_SYNTAX);
        assert_int_equal(doc.err_off, n);
    }
}

static int64_t as_int(const char *s, int *ok)
{
    int64_t v = 42;
    assert_int_equal(scan(s), JSON_OK);
    *ok = json_num_int64(&doc, &doc.toks[0], &v);
    return v;
}

static void test_int64(void **state)
{
    static const struct {
        const char *s;
        int ok;
        int64_t v;
    } cases[] = {
        {"1", 1, 1}, {"1.0", 1, 1}, {"1e2", 1, 100}, {"-0", 1, 0},
        {"0.0e5", 1, 0}, {"0e999999999999999999999", 1, 0},
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0}, {"-9223372036854775809", 0, 0},
        {"1e400", 0, 0}, {"1.5", 0, 0}, {"1e-1", 0, 0}, {"15e-1", 0, 0},
        {"150e-1", 1, 15}, {"0.00012e4", 0, 0}, {"0.00012e5", 1, 12},
        {"922337203685477580.7e1", 1, INT64_MAX}, {"1e18", 1, 1000000000000000000},
        {"1e19", 0, 0}, {"10000000000000000000", 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int ok;
        int64_t v = as_int(cases[k].s, &ok);
        if (ok != cases[k].ok || (ok && v != cases[k].v)) {
            print_error("%s: ok=%d v=%lld\n", cases[k].s, ok, (long long)v);
            fail();
        }
    }
    assert_int_equal(scan("\"1\""), JSON_OK);
    int64_t v;
    assert_int_equal(json_num_int64(&doc, &doc.toks[0], &v), 0);
}

static void test_is_integer(void **state)
{
    static const char *yes[] = {"1", "-0", "1.0", "1e2", "1e400", "0.0e-5",
                                "150e-1", "123.4500e2", "-1.5E1"};
    static const char *no[] = {"1.5", "1e-1", "0.1", "123.4501e2", "1e-400",
                               "-1.05E1"};
    for (size_t k = 0; k < sizeof yes / sizeof *yes; k++) {
        assert_int_equal(scan(yes[k]), JSON_OK);
        if (!json_num_is_integer(&doc, &doc.toks[0])) {
            print_error("%s\n", yes[k]);
            fail();
        }
    }
    for (size_t k = 0; k < sizeof no / sizeof *no; k++) {
        assert_int_equal(scan(no[k]), JSON_OK);
        if (json_num_is_integer(&doc, &doc.toks[0])) {
            print_error("%s\n", no[k]);
            fail();
        }
    }
    assert_int_equal(scan("\"1\""), JSON_OK);
    assert_false(json_num_is_integer(&doc, &doc.toks[0]));
}

static void test_double(void **state)
{
    static const struct {
        const char *s;
        double v;
    } cases[] = {
        {"5.3", 5.3}, {"-0.1", -0.1}, {"1756803600", 1756803600.0},
        {"1e2", 100.0}, {"1.7976931348623157e308", 1.7976931348623157e308},
        {"4.9e-324", 4.9e-324}, {"0.30000000000000004", 0.30000000000000004},
        {"123456789012345678901234567890", 123456789012345678901234567890.0},
        {"9007199254740993", 9007199254740993.0},
        {"0.000000000000000000000000001", 1e-27},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        assert_int_equal(scan(cases[k].s), JSON_OK);
        double v = json_num_double(&doc, &doc.toks[0]);
        if (v != cases[k].v) {
            print_error("%s: %.17g\n", cases[k].s, v);
            fail();
        }
    }
    assert_int_equal(scan("1e400"), JSON_OK);
    assert_true(isinf(json_num_double(&doc, &doc.toks[0])));
    assert_int_equal(scan("-1e400"), JSON_OK);
    assert_true(json_num_double(&doc, &doc.toks[0]) == -HUGE_VAL);
    assert_int_equal(scan("1e-400"), JSON_OK);
    assert_true(json_num_double(&doc, &doc.toks[0]) == 0.0);
    assert_int_equal(scan("-0"), JSON_OK);
    assert_true(signbit(json_num_double(&doc, &doc.toks[0])));
    /* The token is not NUL-terminated: the next bytes must not count. */
    assert_int_equal(scan("[1.5,2]"), JSON_OK);
    assert_true(json_num_double(&doc, &doc.toks[1]) == 1.5);
    assert_int_equal(scan_n("12345", 3), JSON_OK);
    assert_true(json_num_double(&doc, &doc.toks[0]) == 123.0);
}

static int cmp(const char *a, const char *b)
{
    return json_num_cmp_text(a, strlen(a), b, strlen(b));
}

static void test_num_cmp(void **state)
{
    assert_int_equal(cmp("1", "1.0"), 0);
    assert_int_equal(cmp("1", "10e-1"), 0);
    assert_int_equal(cmp("100", "1e2"), 0);
    assert_int_equal(cmp("-0", "0"), 0);
    assert_int_equal(cmp("0.0", "-0e10"), 0);
    assert_true(cmp("0.1", "0.10000000000000000001") < 0);
    assert_true(cmp("0.10000000000000000001", "0.1") > 0);
    assert_true(cmp("-0.1", "-0.10000000000000000001") > 0);
    assert_true(cmp("-1", "0") < 0);
    assert_true(cmp("0", "-1") > 0);
    assert_true(cmp("0", "1e-400") < 0);
    assert_true(cmp("1e400", "1e399") > 0);
    assert_true(cmp("99", "100") < 0);
    assert_true(cmp("0.099", "0.1") < 0);
    assert_true(cmp("12.5", "12.45") > 0);
    assert_true(cmp("-12.5", "-12.45") < 0);
    assert_true(cmp("123", "1234e-1") < 0);
    assert_int_equal(cmp("12", "12.000"), 0);

    assert_int_equal(scan("[1.0, 1, 2]"), JSON_OK);
    struct json_doc other;
    json_doc_init(&other, 0);
    assert_int_equal(json_scan(&other, "1e0", 3), JSON_OK);
    assert_int_equal(json_num_cmp(&doc, &doc.toks[1], &other, &other.toks[0]), 0);
    assert_true(json_num_cmp(&doc, &doc.toks[3], &other, &other.toks[0]) > 0);
    json_doc_release(&other);
}

static int mult(const char *a, const char *b)
{
    return json_num_multiple_text(a, strlen(a), b, strlen(b));
}

static void test_multiple(void **state)
{
    assert_int_equal(mult("0.3", "0.1"), 1);
    assert_int_equal(mult("0.35", "0.1"), 0);
    assert_int_equal(mult("10", "2.5"), 1);
    assert_int_equal(mult("7", "2"), 0);
    assert_int_equal(mult("0", "7"), 1);
    assert_int_equal(mult("-21", "7"), 1);
    assert_int_equal(mult("1e30", "3"), 0);
    assert_int_equal(mult("3e30", "3"), 1);
    assert_int_equal(mult("1e300", "1e-300"), 1);
    assert_int_equal(mult("1e-300", "1e300"), 0);
    assert_int_equal(mult("19.99", "0.01"), 1);
    assert_int_equal(mult("1", "0"), -1);
    assert_int_equal(mult("-9223372036854775808", "1"), 1);
    assert_int_equal(mult("9999999999999999999", "3"), 1);
    assert_int_equal(mult("9999999999999999998", "3"), 0);
    assert_int_equal(mult("1.23456789012345678912", "1"), -1);
}

static void test_strings(void **state)
{
    char out[64];
    assert_int_equal(scan("[\"plain\",\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\","
                          "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\",\"\\u0000x\"]"),
                     JSON_OK);
    struct json_tok *t = doc.toks;
    assert_int_equal(json_str_decode(&doc, &t[1], out, sizeof out), 5);
    assert_memory_equal(out, "plain", 5);
    assert_true(json_str_eq(&doc, &t[1], "plain", 5));
    assert_false(json_str_eq(&doc, &t[1], "plai", 4));
    assert_false(json_str_eq(&doc, &t[1], "plainx", 6));
    assert_int_equal(json_str_decode(&doc, &t[2], out, sizeof out), 11);
    assert_memory_equal(out, "a\"b\\c/\b\f\n\r\t", 11);
    assert_true(json_str_eq(&doc, &t[2], "a\"b\\c/\b\f\n\r\t", 11));
    assert_false(json_str_eq(&doc, &t[2], "a\"b\\c/\b\f\n\r", 10));
    const char *want = "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    assert_int_equal(json_str_decode(&doc, &t[3], out, sizeof out), 10);
    assert_memory_equal(out, want, 10);
    assert_true(json_str_eq(&doc, &t[3], want, 10));
    assert_int_equal(t[3].count, 4);
    assert_int_equal(json_str_decode(&doc, &t[4], out, sizeof out), 2);
    assert_memory_equal(out, "\0x", 2);
    assert_true(json_str_eq(&doc, &t[4], "\0x", 2));
    /* Truncation: writes cap bytes, returns the full length. */
    memset(out, '#', sizeof out);
    assert_int_equal(json_str_decode(&doc, &t[3], out, 3), 10);
    assert_memory_equal(out, "A\xc3\xa9#", 4);
    /* Non-strings. */
    assert_false(json_str_eq(&doc, &t[0], "", 0));

    struct json_doc other;
    json_doc_init(&other, 0);
    const char *o = "[\"A\xc3\xa9\\u20ac\xf0\x9f\x98\x80\",\"plain\",\"pl\\u0061in\"]";
    assert_int_equal(json_scan(&other, o, strlen(o)), JSON_OK);
    assert_true(json_str_eq_tok(&doc, &t[3], &other, &other.toks[1]));
    assert_true(json_str_eq_tok(&other, &other.toks[1], &doc, &t[3]));
    assert_true(json_str_eq_tok(&doc, &t[1], &other, &other.toks[2]));
    assert_true(json_str_eq_tok(&other, &other.toks[3], &doc, &t[1]));
    assert_true(json_str_eq_tok(&other, &other.toks[3], &other, &other.toks[2]));
    assert_false(json_str_eq_tok(&doc, &t[2], &other, &other.toks[2]));
    json_doc_release(&other);

    assert_true(json_utf8_valid("", 0));
    assert_true(json_utf8_valid("abc\xc3\xa9\xf4\x8f\xbf\xbf", 9));
    assert_false(json_utf8_valid("abcdefghijk\xc0\xaf", 13));
    assert_false(json_utf8_valid("\xed\xbf\xbf", 3));
    assert_false(json_utf8_valid("\xe2\x82", 2));
}

static void test_lookup(void **state)
{
    const char *s = "{\"timestamp\":1756803600,\"sensor_id\":10001,"
                    "\"measurement\":{\"kind\":\"T\",\"value\":5.3,"
                    "\"inner\":{\"t\":7}},\"arr\":[1],"
                    "\"esc\\u0061ped\":1,\"dup\":1,\"dup\":2,\"\":{\"\":3}}";
    assert_int_equal(scan(s), JSON_OK);
    int i = json_lookup(&doc, 0, "timestamp", 9);
    assert_true(i > 0);
    int64_t v;
    assert_true(json_num_int64(&doc, &doc.toks[i], &v));
    assert_true(v == 1756803600);
    i = json_lookup(&doc, 0, "measurement.value", 17);
    assert_true(i > 0);
    assert_true(json_num_double(&doc, &doc.toks[i]) == 5.3);
    i = json_lookup(&doc, 0, "measurement.inner.t", 19);
    assert_true(i > 0);
    assert_true(json_num_int64(&doc, &doc.toks[i], &v) && v == 7);
    i = json_lookup(&doc, 0, "escaped", 7);
    assert_true(i > 0);
    i = json_lookup(&doc, 0, "dup", 3);
    assert_true(json_num_int64(&doc, &doc.toks[i], &v) && v == 1);
    i = json_lookup(&doc, 0, ".", 1);
    assert_true(json_num_int64(&doc, &doc.toks[i], &v) && v == 3);
    assert_int_equal(json_lookup(&doc, 0, "measurement.nope", 16), -1);
    assert_int_equal(json_lookup(&doc, 0, "timestamp.x", 11), -1);
    assert_int_equal(json_lookup(&doc, 0, "arr.0", 5), -1);
    assert_int_equal(json_lookup(&doc, 0, "measurement.", 12), -1);
    assert_int_equal(json_lookup(&doc, 0, "times", 5), -1);
    assert_int_equal(json_lookup(&doc, 999, "x", 1), -1);
    assert_int_equal(scan("[1]"), JSON_OK);
    assert_int_equal(json_lookup(&doc, 0, "x", 1), -1);
}

static void test_duplicates(void **state)
{
    assert_int_equal(scan("{\"a\":1,\"b\":{\"a\":1},\"c\":2}"), JSON_OK);
    assert_int_equal(json_object_find_duplicate(&doc, 0), -1);
    assert_int_equal(json_doc_find_duplicate(&doc), -1);
    assert_int_equal(scan("{\"a\":1,\"b\":2,\"a\":3}"), JSON_OK);
    assert_int_equal(json_object_find_duplicate(&doc, 0), 5);
    assert_int_equal(scan("{\"a\":1,\"b\":2,\"\\u0061\":3}"), JSON_OK);
    assert_int_equal(json_object_find_duplicate(&doc, 0), 5);
    assert_int_equal(scan("{\"x\":{\"q\":1,\"q\":2}}"), JSON_OK);
    assert_int_equal(json_object_find_duplicate(&doc, 0), -1);
    assert_int_equal(json_doc_find_duplicate(&doc), 5);
    assert_int_equal(json_object_find_duplicate(&doc, 1), -1); /* a key */

    /* Large objects go through the hash table. */
    char big[8192];
    size_t n = 0;
    big[n++] = '{';
    for (int k = 0; k < 200; k++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"k%d\":%d",
                              k ? "," : "", k, k);
    big[n++] = '}';
    assert_int_equal(scan_n(big, n), JSON_OK);
    assert_int_equal(json_object_find_duplicate(&doc, 0), -1);
    n--;
    n += (size_t)snprintf(big + n, sizeof big - n, ",\"k\\u00317\":1}");
    assert_int_equal(scan_n(big, n), JSON_OK);
    assert_int_equal(json_object_find_duplicate(&doc, 0), 401);
}

static void test_value_eq(void **state)
{
    struct json_doc b;
    json_doc_init(&b, 0);
    const char *a_src = "[{\"a\":[1,2.0,{\"x\":null}],\"b\":\"s\"},1,\"\\u0041\"]";
    const char *b_src = "[{\"b\":\"s\",\"a\":[1.0,2,{\"x\":null}]},1e0,\"A\"]";
    assert_int_equal(scan(a_src), JSON_OK);
    assert_int_equal(json_scan(&b, b_src, strlen(b_src)), JSON_OK);
    assert_true(json_value_eq(&doc, 0, &b, 0));
    const char *c_src = "[{\"b\":\"s\",\"a\":[1.0,2,{\"x\":false}]},1e0,\"A\"]";
    assert_int_equal(json_scan(&b, c_src, strlen(c_src)), JSON_OK);
    assert_false(json_value_eq(&doc, 0, &b, 0));
    assert_int_equal(scan("{\"a\":1,\"a\":1}"), JSON_OK);
    assert_int_equal(json_scan(&b, "{\"a\":1,\"b\":1}", 13), JSON_OK);
    assert_false(json_value_eq(&doc, 0, &b, 0));
    assert_false(json_value_eq(&b, 0, &doc, 0));
    assert_int_equal(json_scan(&b, "[]", 2), JSON_OK);
    assert_false(json_value_eq(&doc, 0, &b, 0));
    /* Found by fuzz_json: duplicate keys, compared with itself. */
    assert_int_equal(scan("{\"a\":1,\"a\":2,\"\\u0061\":3}"), JSON_OK);
    assert_true(json_value_eq(&doc, 0, &doc, 0));
    assert_int_equal(json_scan(&b, "{\"a\":3,\"a\":1,\"a\":2}", 19), JSON_OK);
    assert_true(json_value_eq(&doc, 0, &b, 0));
    json_doc_release(&b);
}

/* A document of n copies of open, then n of close. */
static char *nested(size_t n, char open, char close, size_t *len)
{
    char *s = malloc(2 * n);
    assert_non_null(s);
    memset(s, open, n);
    memset(s + n, close, n);
    *len = 2 * n;
    return s;
}

static void test_limits(void **state)
{
    size_t len;
    char *s = nested(1000000, '[', ']', &len);
    assert_int_equal(json_scan(&doc, s, len), JSON_ERR_DEPTH);
    assert_int_equal(doc.err_off, WEIR_DEFAULT_MAX_DEPTH);
    assert_int_equal(json_scan(&doc, s, 1000000), JSON_ERR_DEPTH);
    free(s);
    s = nested(WEIR_DEFAULT_MAX_DEPTH, '[', ']', &len);
    assert_int_equal(json_scan(&doc, s, len), JSON_OK);
    assert_int_equal(doc.ntoks, WEIR_DEFAULT_MAX_DEPTH);
    assert_int_equal(doc.toks[0].next, WEIR_DEFAULT_MAX_DEPTH);
    assert_int_equal(doc.toks[WEIR_DEFAULT_MAX_DEPTH - 1].count, 0);
    free(s);
    s = nested(WEIR_DEFAULT_MAX_DEPTH + 1, '[', ']', &len);
    assert_int_equal(json_scan(&doc, s, len), JSON_ERR_DEPTH);
    char out[200];
    json_describe_error(&doc, out, sizeof out);
    assert_string_equal(out, "invalid JSON at byte 256: nesting deeper than "
                             "256 levels");
    free(s);

    /* A deeper limit is honoured, and no recursion: 100000 levels. */
    struct json_doc deep;
    json_doc_init(&deep, 200000);
    s = nested(100000, '[', ']', &len);
    assert_int_equal(json_scan(&deep, s, len), JSON_OK);
    assert_int_equal(deep.toks[0].next, 100000);
    assert_int_equal(deep.toks[99998].count, 1);
    free(s);
    json_doc_release(&deep);

    /* A 10 MB string. */
    len = 10u << 20;
    s = malloc(len);
    assert_non_null(s);
    memset(s, 'x', len);
    s[0] = '"';
    s[len - 1] = '"';
    for (size_t k = 1000; k + 2 < len; k += 100000)
        memcpy(s + k, "\xc3\xa9", 2);
    assert_int_equal(json_scan(&doc, s, len), JSON_OK);
    assert_int_equal(doc.toks[0].len, len);
    assert_int_equal(doc.toks[0].flags, JSON_F_NONASCII);
    assert_int_equal(doc.toks[0].count, len - 2 - 105);
    free(s);

    /* A number with 10,000 digits. */
    len = 10000;
    s = malloc(len);
    assert_non_null(s);
    memset(s, '7', len);
    assert_int_equal(json_scan(&doc, s, len), JSON_OK);
    assert_int_equal(doc.toks[0].len, 10000);
    assert_true(isinf(json_num_double(&doc, &doc.toks[0])));
    int64_t v;
    assert_int_equal(json_num_int64(&doc, &doc.toks[0], &v), 0);
    s[1] = '.';
    assert_int_equal(json_scan(&doc, s, len), JSON_OK);
    assert_true(fabs(json_num_double(&doc, &doc.toks[0]) - 7.7777) < 0.001);
    assert_int_equal(json_num_cmp_text(s, len, "7.8", 3), -1);
    free(s);

    /* max_toks. */
    doc.max_toks = 3;
    assert_int_equal(scan("[1,2]"), JSON_OK);
    assert_int_equal(scan("[1,2,3]"), JSON_ERR_TOO_LARGE);
    assert_int_equal(doc.err_off, 5);
    doc.max_toks = 0;
    assert_int_equal(scan("[1,2,3]"), JSON_OK);
}

static void test_reuse(void **state)
{
    /* The tape grows once, then records reuse it. */
    char big[4096];
    size_t n = 0;
    big[n++] = '[';
    for (int k = 0; k < 500; k++) {
        big[n++] = k ? ',' : '1';
        if (k)
            big[n++] = '1';
    }
    big[n++] = ']';
    assert_int_equal(scan_n(big, n), JSON_OK);
    assert_int_equal(doc.ntoks, 501);
    struct json_tok *tape = doc.toks;
    uint32_t cap = doc.cap;
    assert_int_equal(scan("{\"a\":1}"), JSON_OK);
    assert_int_equal(scan_n(big, n), JSON_OK);
    assert_ptr_equal(doc.toks, tape);
    assert_int_equal(doc.cap, cap);
    json_doc_release(&doc);
    json_doc_release(&doc);
    struct json_doc z;
    memset(&z, 0, sizeof z);
    assert_int_equal(json_scan(&z, "[[1]]", 5), JSON_OK); /* zeroed doc */
    json_doc_release(&z);
}

static void test_strerror(void **state)
{
    for (int e = JSON_OK; e <= JSON_ERR_BOM; e++)
        assert_non_null(json_strerror((enum json_error)e));
    assert_string_equal(json_strerror(JSON_ERR_UTF8), "invalid UTF-8");
    char tiny[8];
    assert_int_equal(scan("[1,]"), JSON_ERR_SYNTAX);
    json_describe_error(&doc, tiny, sizeof tiny);
    assert_string_equal(tiny, "invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_boundaries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_integer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double, setup, teardown),
        cmocka_unit_test_setup_teardown(test_num_cmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_eq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strerror, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
