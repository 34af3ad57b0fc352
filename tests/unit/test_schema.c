/*
 * test_schema.c - the schema compiler: what it accepts (the pydantic
 * export unchanged, every supported keyword, the standard metaschema
 * vocabulary), what it refuses and how it says so, $ref resolution to
 * files and through $id, and the helpers under it (decimal arithmetic,
 * formats, ECMA-262 pattern translation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/decimal.h"
#include "schema/format.h"
#include "schema/regex.h"
#include "schema/schema.h"
#include "schema/validate.h"

static struct schema *compile(const char *text, const struct schema_opts *o,
                              struct weir_errmsg *err)
{
    return schema_compile(text, strlen(text), NULL, o, err);
}

static void accepts(const char *text)
{
    struct weir_errmsg err;
    struct schema *s = compile(text, NULL, &err);
    if (!s)
        fail_msg("schema %s refused: %s", text, err.text);
    schema_free(s);
}

static void test_pydantic(void **state)
{
    struct weir_errmsg err;
    struct schema *s = schema_load_file("../examples/telemetry.schema.json", NULL, &err);
    if (!s)
        s = schema_load_file("examples/telemetry.schema.json", NULL, &err);
    if (!s)
        fail_msg("%s", err.text);
    assert_int_equal(schema_opts_of(s)->max_depth, 256);
    schema_free(s);
}

static void test_accepted(void **state)
{
    /* Every supported keyword at once, and every annotation. */
    accepts("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
            "\"$id\":\"https://example.com/s\",\"$anchor\":\"top\",\"$dynamicAnchor\":\"d\","
            "\"$comment\":\"c\",\"title\":\"t\",\"description\":\"d\",\"default\":{},"
            "\"examples\":[1],\"deprecated\":false,\"readOnly\":true,\"writeOnly\":false,"
            "\"contentMediaType\":\"application/json\",\"contentEncoding\":\"base64\","
            "\"contentSchema\":{\"type\":\"object\"},"
            "\"type\":[\"object\",\"array\",\"string\",\"number\",\"integer\",\"boolean\",\"null\"],"
            "\"enum\":[1,\"a\",null,[],{}],\"const\":1,"
            "\"properties\":{\"a\":true},\"required\":[\"a\"],\"additionalProperties\":false,"
            "\"patternProperties\":{\"^x\":{}},\"propertyNames\":{\"maxLength\":9},"
            "\"minProperties\":0,\"maxProperties\":9,\"dependentRequired\":{\"a\":[\"b\"]},"
            "\"dependentSchemas\":{\"a\":{}},\"unevaluatedProperties\":false,"
            "\"items\":true,\"prefixItems\":[true],\"contains\":{},\"minContains\":0,"
            "\"maxContains\":3,\"minItems\":0,\"maxItems\":5,\"uniqueItems\":true,"
            "\"unevaluatedItems\":false,\"minLength\":0,\"maxLength\":5,\"pattern\":\"^a\","
            "\"format\":\"date\",\"minimum\":0,\"maximum\":9,\"exclusiveMinimum\":-1,"
            "\"exclusiveMaximum\":10,\"multipleOf\":0.5,\"allOf\":[{}],\"anyOf\":[{}],"
            "\"oneOf\":[{}],\"not\":false,\"if\":{},\"then\":{},\"else\":{},"
            "\"$defs\":{\"x\":{\"$dynamicAnchor\":\"d\"}},\"definitions\":{\"y\":{}},"
            "\"$ref\":\"#/$defs/x\",\"$dynamicRef\":\"#d\"}");
    /* The standard vocabularies (as in the metaschema). */
    accepts("{\"$vocabulary\":{\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
            "\"https://json-schema.org/draft/2020-12/vocab/validation\":true}}");
    accepts("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema#\"}");
    /* Unknown keywords are ignored (with a warning in the log). */
    accepts("{\"x-unit\":\"C\",\"nullable\":true,\"properties\":{\"a\":{\"foo\":1}}}");
    /* then/else without if, minContains without contains: no effect. */
    accepts("{\"then\":false,\"else\":false,\"minContains\":5}");
}

static void test_schema_errors(void **state)
{
    struct weir_errmsg err;
    static const struct {
        const char *schema, *msg;
    } cases[] = {
        {"{\"dependencies\":{}}", "unsupported keyword: dependencies"},
        {"{\"properties\":{\"a\":{\"$recursiveRef\":\"#\"}}}", "unsupported keyword: $recursiveRef"},
        {"{\"additionalItems\":false}", "unsupported keyword: additionalItems"},
        {"{\"items\":[{}]}", "unsupported keyword: items"},
        {"{\"$schema\":\"http://json-schema.org/draft-07/schema#\"}", "unsupported keyword: $schema"},
        {"{\"$defs\":{\"x\":{\"dependencies\":{}}}}", "unsupported keyword: dependencies"},
        {"{\"type\":\"float\"}", "type must be one of"},
        {"{\"minimum\":\"5\"}", "minimum must be a number"},
        {"{\"minLength\":-1}", "minLength must be a non-negative integer"},
        {"{\"pattern\":\"(\"}", "pattern: bad regular expression"},
        {"{\"$ref\":\"#/$defs/missing\"}", "$ref \"#/$defs/missing\": no such location"},
        {"{\"$ref\":\"other.json\"}", "cannot resolve $ref"},
        {"{\"$ref\":\"#\"}", "endless loop"},
        {"[]", "a schema must be a JSON object or a boolean"},
        {"{\"type\":", "not valid JSON"},
        {"{\"multipleOf\":0}", "multipleOf must be greater than 0"},
        {"{\"allOf\":[]}", "allOf must be a non-empty array of schemas"},
        {"{\"type\":\"string\",\"type\":\"integer\"}", "duplicate key \"type\""},
        {"{\"$vocabulary\":{\"https://example.com/vocab/x\":true}}",
         "unsupported keyword: $vocabulary"},
        {"{\"$id\":\"https://example.com/a#frag\"}", "$id must not contain a fragment"},
        {"{\"$anchor\":\"1bad\"}", "is not a valid anchor name"},
        {"{\"$ref\":\"#nope\"}", "no anchor \"nope\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct schema *s = schema_compile(cases[i].schema, strlen(cases[i].schema), NULL,
                                          NULL, &err);
        if (s || !strstr(err.text, cases[i].msg)) {
            print_error("schema %s: got %s, want error containing %s\n", cases[i].schema,
                        s ? "success" : err.text, cases[i].msg);
            schema_free(s);
            fail();
        }
        assert_int_equal(err.code, WEIR_ESCHEMA);
    }
    /* Unknown keywords are ignored (and logged); format_assert refuses an
     * unknown format. */
    const char *t1 = "{\"x-vendor\":1,\"format\":\"hostname\"}";
    struct schema *s = schema_compile(t1, strlen(t1), NULL, NULL, &err);
    if (!s)
        fail_msg("%s", err.text);
    assert_non_null(s);
    schema_free(s);
    struct schema_opts o = {0};
    o.format_assert = 1;
    const char *t2 = "{\"format\":\"hostname\"}";
    s = schema_compile(t2, strlen(t2), NULL, &o, &err);
    assert_null(s);
    assert_non_null(strstr(err.text, "unsupported format: hostname"));
    schema_free(NULL);
}


static void test_files(void **state)
{
    char dir[] = "/tmp/weir-schema-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    /* unit.json beside main.json, reached by relative $ref, and through
     * the root's $id. */
    snprintf(path, sizeof path, "%s/unit.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"enum\":[\"C\",\"F\"]}", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/main.json", dir);
    f = fopen(path, "w");
    fputs("{\"$id\":\"https://example.com/schemas/main.json\",\"properties\":{"
          "\"u\":{\"$ref\":\"unit.json\"}}}", f);
    fclose(f);
    struct weir_errmsg err;
    struct schema *s = schema_load_file(path, NULL, &err);
    if (!s)
        fail_msg("%s", err.text);
    struct validator *v = validator_new(s);
    struct verdict vd;
    assert_int_equal(validator_check(v, "{\"u\":\"C\"}", 9, &vd), 1);
    assert_int_equal(validator_check(v, "{\"u\":\"K\"}", 9, &vd), 0);
    assert_string_equal(vd.path, "/u");
    validator_free(v);
    schema_free(s);
    snprintf(path, sizeof path, "%s/plain.json", dir);
    f = fopen(path, "w");
    fputs("{\"properties\":{\"u\":{\"$ref\":\"unit.json\"}}}", f);
    fclose(f);
    s = schema_load_file(path, NULL, &err);
    assert_non_null(s);
    schema_free(s);
    /* schema_compile with a base_dir. */
    const char *txt = "{\"$ref\":\"./unit.json\"}";
    s = schema_compile(txt, strlen(txt), dir, NULL, &err);
    assert_non_null(s);
    schema_free(s);
    snprintf(path, sizeof path, "%s/missing.json", dir);
    assert_null(schema_load_file(path, NULL, &err));
    assert_non_null(strstr(err.text, "missing.json"));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}


static void dn(const char *s, struct decnum *d)
{
    assert_int_equal(decnum_parse(d, s, strlen(s)), 0);
}

static void test_decimal(void **state)
{
    struct decnum a, b;
    dn("1", &a), dn("1.0", &b);
    assert_int_equal(decnum_cmp(&a, &b), 0);
    dn("10e-1", &b);
    assert_int_equal(decnum_cmp(&a, &b), 0);
    dn("0.1", &a), dn("0.10000000000000000001", &b);
    assert_int_equal(decnum_cmp(&a, &b), -1);
    dn("-0", &a), dn("0.0e5", &b);
    assert_int_equal(decnum_cmp(&a, &b), 0);
    dn("-2", &a), dn("-10", &b);
    assert_int_equal(decnum_cmp(&a, &b), 1);
    dn("1e99999999999999999999", &a), dn("1e400", &b);
    assert_int_equal(decnum_cmp(&a, &b), 1);
    dn("120.50", &a);
    assert_int_equal(a.ndig, 4);
    assert_int_equal(a.exp, 3);
    assert_false(decnum_is_integer(&a));
    dn("1.55e1", &a);
    assert_false(decnum_is_integer(&a));
    dn("1.5e1", &a);
    assert_true(decnum_is_integer(&a));
    dn("1.5e3", &a);
    assert_true(decnum_is_integer(&a));
    dn("0.3", &a), dn("0.1", &b);
    assert_true(decnum_is_multiple(&a, &b));
    dn("0.0075", &a), dn("0.0001", &b);
    assert_true(decnum_is_multiple(&a, &b));
    dn("4.5", &a), dn("1.5", &b);
    assert_true(decnum_is_multiple(&a, &b));
    dn("35", &a);
    assert_false(decnum_is_multiple(&a, &b));
    char out[64];
    static const char *const fmt[][2] = {
        {"5.30", "5.3"}, {"1e2", "100"}, {"-0.000001", "-0.000001"}, {"1e-9", "1e-9"}, {"0.0001", "0.0001"},
        {"1e400", "1e400"}, {"123.456e1", "1234.56"}, {"-0", "0"}, {"1.5e-7", "1.5e-7"},
    };
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        dn(fmt[i][0], &a);
        assert_true(decnum_format(&a, out, sizeof out) > 0);
        assert_string_equal(out, fmt[i][1]);
    }
    static const char *const loose[][2] = {
        {"+42", "42"}, {"0042", "42"}, {"1_000", "1000"}, {".5", "0.5"}, {"1.", "1"},
        {"-1.5E+3", "-1.5e+3"}, {"1__0", ""}, {"_1", ""}, {"1_", ""}, {"", ""},
        {"inf", ""}, {"1e", ""}, {"0x10", ""}, {"000", "0"},
    };
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        size_t k = decnum_loose_to_json(loose[i][0], strlen(loose[i][0]), out, sizeof out);
        out[k] = '\0';
        if (strcmp(out, loose[i][1]))
            fail_msg("loose %s: got %s want %s", loose[i][0], out, loose[i][1]);
    }
}

static void test_formats(void **state)
{
    static const struct {
        enum schema_format f;
        const char *s;
        int ok;
    } cases[] = {
        {FMT_DATE_TIME, "2025-09-02T10:00:00Z", 1},
        {FMT_DATE_TIME, "2025-09-02t10:00:00.123+02:00", 1},
        {FMT_DATE_TIME, "2025-09-02 10:00:00Z", 0},
        {FMT_DATE_TIME, "1998-12-31T23:59:60Z", 1},
        {FMT_DATE_TIME, "1998-12-31T23:58:60Z", 0},
        {FMT_DATE, "2024-02-29", 1},
        {FMT_DATE, "2023-02-29", 0},
        {FMT_DATE, "2025-9-02", 0},
        {FMT_TIME, "08:30:06-08:00", 1},
        {FMT_TIME, "08:30:06", 0},
        {FMT_UUID, "2EB8AA08-AA98-11EA-B4AA-73B441D16380", 1},
        {FMT_UUID, "2eb8aa08aa9811eab4aa73b441d16380", 0},
        {FMT_IPV4, "127.0.0.1", 1},
        {FMT_IPV4, "127.0.0.01", 0},
        {FMT_IPV6, "1:2:3:4:5:6:7:8", 1},
        {FMT_IPV6, "1::2::3", 0},
        {FMT_IPV6, "fe80::a%eth1", 0},
        {FMT_EMAIL, "\"joe bloggs\"@example.com", 1},
        {FMT_EMAIL, "joe..bloggs@example.com", 0},
        {FMT_EMAIL, "joe@[IPv6:::1]", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (format_check(cases[i].f, cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("%s %s: want %d", format_name(cases[i].f), cases[i].s, cases[i].ok);
    assert_int_equal(format_lookup("date-time", 9), FMT_DATE_TIME);
    assert_int_equal(format_lookup("hostname", 8), FMT_UNKNOWN);
}

static void test_regex(void **state)
{
    static const struct {
        const char *pat, *s;
        int match;
    } cases[] = {
        {"^\\p{Letter}+$", "\xc3\xa9t\xc3\xa9", 1},
        {"^\\p{Lu}", "a", 0},
        {"^\\p{digit}+$", "\xd9\xa3", 1},
        {"^\\P{Letter}$", "1", 1},
        {"^\\p{Script=Greek}$", "\xce\xb1", 1},
        {"^\\s$", "\xe2\x80\x83", 1},         /* EM SPACE */
        {"^\\S$", "\xef\xbb\xbf", 0},         /* BOM is whitespace */
        {"^[\\s]$", "\xc2\xa0", 1},
        {"^\\d$", "\xd9\xa3", 0},             /* \d stays ASCII */
        {"^\\w$", "\xc3\xa9", 0},             /* \w stays ASCII */
        {"^\\u0041$", "A", 1},
        {"\\\\s", "\\s", 1},                  /* an escaped backslash */
        {"^a$", "a\n", 0},
        {"[a-z]{3}", "xxabcxx", 1},           /* not anchored */
    };
    struct regex_scratch *m = regex_scratch_new();
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct regex *re = regex_compile(cases[i].pat, strlen(cases[i].pat), err, sizeof err);
        if (!re)
            fail_msg("%s: %s", cases[i].pat, err);
        int r = regex_search(re, m, cases[i].s, strlen(cases[i].s));
        regex_free(re);
        if (r != cases[i].match)
            fail_msg("%s on %s: got %d", cases[i].pat, cases[i].s, r);
    }
    assert_null(regex_compile("(", 1, err, sizeof err));
    assert_non_null(strstr(err, "offset"));
    regex_scratch_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pydantic),      cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_schema_errors), cmocka_unit_test(test_files),
        cmocka_unit_test(test_decimal),       cmocka_unit_test(test_formats),
        cmocka_unit_test(test_regex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
