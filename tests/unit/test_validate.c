/*
 * test_validate.c - the validator: every keyword, the verdicts (JSON
 * pointer + message) a person reads, lax coercions and the stored output,
 * bad input (huge lines, deep nesting, bad UTF-8, NUL, long numbers,
 * duplicate keys, BOM), and the golden files in tests/data/golden/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "schema/schema.h"
#include "schema/validate.h"

/* Compile schema, check rec; compare validity, path and message (NULL:
 * don't care). */
static void check_opts(const char *schema, const char *rec, int want,
                       const char *path, const char *msg,
                       const struct schema_opts *o)
{
    struct weir_errmsg err;
    struct schema *s = schema_compile(schema, strlen(schema), NULL, o, &err);
    if (!s)
        fail_msg("schema %s refused: %s", schema, err.text);
    struct validator *v = validator_new(s);
    assert_non_null(v);
    struct verdict vd;
    int got = validator_check(v, rec, strlen(rec), &vd);
    if (got != want || (path && strcmp(vd.path, path)) ||
        (msg && strcmp(vd.message, msg))) {
        print_error("schema %s\nrecord %s\n got %d path \"%s\" message \"%s\"\n"
                    "want %d path \"%s\" message \"%s\"\n",
                    schema, rec, got, vd.path, vd.message, want,
                    path ? path : "*", msg ? msg : "*");
        validator_free(v);
        schema_free(s);
        fail();
    }
    validator_free(v);
    schema_free(s);
}

static void check(const char *schema, const char *rec, int want,
                  const char *path, const char *msg)
{
    check_opts(schema, rec, want, path, msg, NULL);
}

static void ok(const char *schema, const char *rec)
{
    check(schema, rec, 1, NULL, NULL);
}

static void bad(const char *schema, const char *rec, const char *path,
                const char *msg)
{
    check(schema, rec, 0, path, msg);
}

/* Lax: rec must be valid and stored as out (NULL: as sent), or invalid
 * with msg when out is "!". */
static void lax(const char *schema, const char *rec, const char *out)
{
    struct schema_opts o = {0};
    o.lax = 1;
    struct weir_errmsg err;
    struct schema *s = schema_compile(schema, strlen(schema), NULL, &o, &err);
    if (!s)
        fail_msg("schema refused: %s", err.text);
    struct validator *v = validator_new(s);
    struct verdict vd;
    int got = validator_check(v, rec, strlen(rec), &vd);
    size_t n;
    const char *p = validator_output(v, &n);
    const char *want = out ? out : rec;
    int want_valid = !(out && strcmp(out, "!") == 0);
    if (got != want_valid || (want_valid && (n != strlen(want) || memcmp(p, want, n)))) {
        print_error("lax %s on %s: got %d \"%.*s\" (%s %s), want %s\n", schema, rec,
                    got, (int)n, p, vd.path, vd.message, want);
        validator_free(v);
        schema_free(s);
        fail();
    }
    validator_free(v);
    schema_free(s);
}

static const char *telemetry_schema(void)
{
    static char buf[8192];
    FILE *f = fopen("../examples/telemetry.schema.json", "rb");
    if (!f)
        f = fopen("examples/telemetry.schema.json", "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_telemetry(void **state)
{
    const char *s = telemetry_schema();
    const char *good = "{\"timestamp\":1756803600,\"sensor_id\":10001,\"measurement\":"
                       "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Celcius\"}}";
    ok(s, good);
    ok(s, "{\"timestamp\":1756803600,\"sensor_id\":10001,\"measurement\":"
          "{\"kind\":\"Temperature\",\"value\":\"5.3\",\"unit\":\"Fahrenheit\"}}");
    /* Members in any order, extra members allowed. */
    ok(s, "{\"measurement\":{\"unit\":\"Celcius\",\"value\":1,\"kind\":\"Temperature\"},"
          "\"sensor_id\":1,\"timestamp\":2,\"extra\":[1,2]}");
    bad(s, "{\"timestamp\":1756803600,\"sensor_id\":10001,\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Kelvin\"}}",
        "/measurement/unit", "\"Kelvin\" is not one of [\"Celcius\",\"Fahrenheit\"]");
    bad(s, "{\"timestamp\":1756803600,\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Celcius\"}}",
        "", "missing required property \"sensor_id\"");
    bad(s, "{\"timestamp\":\"42\",\"sensor_id\":10001,\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Celcius\"}}",
        "/timestamp", "expected integer, got string \"42\"");
    bad(s, "{\"timestamp\":1.5,\"sensor_id\":10001,\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Celcius\"}}",
        "/timestamp", "expected integer, got number 1.5");
    /* 5.0 is an integer in JSON Schema. */
    ok(s, "{\"timestamp\":5.0,\"sensor_id\":1e3,\"measurement\":"
          "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Celcius\"}}");
    bad(s, "{\"timestamp\":1,\"sensor_id\":1,\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":[5.3],\"unit\":\"Celcius\"}}",
        "/measurement/value", "expected number or string, got array");
    bad(s, "{\"timestamp\":1,\"sensor_id\":1,\"measurement\":{\"kind\":\"Temperature\","
           "\"value\":null,\"unit\":\"Celcius\"}}",
        "/measurement/value", "expected number or string, got null");
    bad(s, "{\"timestamp\":1,\"sensor_id\":1,\"measurement\":\"hot\"}", "/measurement",
        "expected object, got string \"hot\"");
    bad(s, "[]", "", "expected object, got array");
    bad(s, "{\"timestamp\":1,\"timestamp\":2,\"sensor_id\":1,\"measurement\":{}}",
        "/timestamp", "duplicate key \"timestamp\"");
}

static void test_types(void **state)
{
    ok("{\"type\":\"null\"}", "null");
    bad("{\"type\":\"null\"}", "false", "", "expected null, got boolean false");
    ok("{\"type\":\"boolean\"}", "true");
    ok("{\"type\":\"integer\"}", "-0");
    ok("{\"type\":\"integer\"}", "1e2");
    ok("{\"type\":\"integer\"}", "100000000000000000000000000000000");
    bad("{\"type\":\"integer\"}", "1.000001", "", "expected integer, got number 1.000001");
    ok("{\"type\":\"number\"}", "1e400");
    ok("{\"type\":[\"string\",\"null\"]}", "null");
    bad("{\"type\":[\"string\",\"null\",\"integer\"]}", "{}", "",
        "expected null, integer or string, got object");
    /* Long values are cut to 60 characters and marked. */
    check("{\"type\":\"integer\"}",
          "\"0123456789012345678901234567890123456789012345678901234567890123456789\"", 0, "",
          "expected integer, got string \"01234567890123456789012345678901234567890123456789012345678...\"");
    ok("true", "{\"anything\":[1,2,3]}");
    bad("false", "1", "", "no value is allowed here (the schema is false)");
    ok("{}", "\"x\"");
}

static void test_numbers(void **state)
{
    bad("{\"maximum\":100}", "1e400", "", "1e400 is greater than the maximum 100");
    bad("{\"minimum\":0}", "-5", "", "-5 is less than the minimum 0");
    ok("{\"minimum\":0}", "-0");
    bad("{\"exclusiveMaximum\":100}", "100", "",
        "100 is not less than the exclusive maximum 100");
    bad("{\"exclusiveMinimum\":1.5}", "1.50", "",
        "1.50 is not greater than the exclusive minimum 1.5");
    ok("{\"maximum\":9007199254740993}", "9007199254740992");
    bad("{\"maximum\":9007199254740992}", "9007199254740993", "", NULL);
    ok("{\"multipleOf\":0.01}", "19.99");
    ok("{\"multipleOf\":0.1}", "0.3");
    bad("{\"multipleOf\":2}", "7", "", "7 is not a multiple of 2");
    bad("{\"multipleOf\":0.123456789}", "1e308", "", NULL);
    ok("{\"multipleOf\":1e-300}", "1e-200");
    ok("{\"maximum\":1}", "\"strings are not numbers\"");
    /* 10,000 digits. */
    char big[10040];
    memset(big, '9', 10000);
    big[10000] = '\0';
    bad("{\"maximum\":1e9999}", big, "", NULL);
    ok("{\"type\":\"integer\",\"minimum\":1e9998}", big);
}

static void test_strings(void **state)
{
    ok("{\"minLength\":2}", "\"\\u00e9\\u00e9\"");
    bad("{\"minLength\":3}", "\"\xc3\xa9\xc3\xa9\"", "",
        "\"\xc3\xa9\xc3\xa9\" is shorter than minLength 3 (2 characters)");
    bad("{\"maxLength\":1}", "\"ab\"", "", "\"ab\" is longer than maxLength 1 (2 characters)");
    ok("{\"pattern\":\"^[0-9]+$\"}", "\"123\"");
    bad("{\"pattern\":\"^[0-9]+$\"}", "\"12a\"", "",
        "\"12a\" does not match the pattern \"^[0-9]+$\"");
    /* '$' does not match before a final newline (ECMA-262). */
    bad("{\"pattern\":\"^a$\"}", "\"a\\n\"", "", NULL);
    ok("{\"pattern\":\"^\\\\p{Letter}+$\"}", "\"\xc3\xa9t\xc3\xa9\"");
    ok("{\"pattern\":\"^\\\\s$\"}", "\"\\u00a0\"");
    bad("{\"pattern\":\"^\\\\d$\"}", "\"\xd9\xa3\"", "", NULL); /* Arabic-Indic 3 */
    ok("{\"pattern\":\"caf\"}", "\"\\u0063afe\""); /* escaped subject */
    /* Catastrophic backtracking ends with a verdict. */
    char rec[200];
    memset(rec, 'a', sizeof rec);
    rec[0] = '"';
    rec[sizeof rec - 3] = 'b';
    rec[sizeof rec - 2] = '"';
    rec[sizeof rec - 1] = '\0';
    check("{\"pattern\":\"^(a+)+$\"}", rec, 0, "", NULL);
    /* format: annotation by default, asserted when asked. */
    ok("{\"format\":\"date\"}", "\"2025-13-45\"");
    struct schema_opts o = {0};
    o.format_assert = 1;
    check_opts("{\"format\":\"date\"}", "\"2025-13-45\"", 0, "",
               "\"2025-13-45\" is not a valid date", &o);
    check_opts("{\"format\":\"date-time\"}", "\"2025-09-02T10:00:00Z\"", 1, NULL, NULL, &o);
    check_opts("{\"format\":\"date-time\"}", "\"2024-02-30T10:00:00Z\"", 0, NULL, NULL, &o);
    check_opts("{\"format\":\"uuid\"}", "\"2eb8aa08-aa98-11ea-b4aa-73b441d16380\"", 1, NULL, NULL, &o);
    check_opts("{\"format\":\"ipv4\"}", "\"192.168.0.256\"", 0, NULL, NULL, &o);
    check_opts("{\"format\":\"ipv6\"}", "\"::ffff:192.168.0.1\"", 1, NULL, NULL, &o);
    check_opts("{\"format\":\"email\"}", "\"joe.bloggs@example.com\"", 1, NULL, NULL, &o);
    check_opts("{\"format\":\"time\"}", "\"23:59:60Z\"", 1, NULL, NULL, &o);
    check_opts("{\"format\":\"time\"}", "\"12:00:00\"", 0, NULL, NULL, &o);
    check_opts("{\"format\":\"email\"}", "42", 1, NULL, NULL, &o);
}

static void test_enum_const(void **state)
{
    ok("{\"enum\":[1,\"a\",null,[1,{\"x\":true}]]}", "1.0");
    ok("{\"enum\":[1,\"a\",null,[1,{\"x\":true}]]}", "[1,{\"x\":true}]");
    ok("{\"enum\":[\"a\\u0062\"]}", "\"\\u0061b\"");
    bad("{\"enum\":[1,2]}", "true", "", "true is not one of [1,2]");
    bad("{\"enum\":[false]}", "0", "", NULL);
    ok("{\"const\":{\"a\":[1,2],\"b\":null}}", "{\"b\":null,\"a\":[1,2.0]}");
    bad("{\"const\":\"x\"}", "\"y\"", "", "\"y\" is not the constant \"x\"");
    bad("{\"properties\":{\"a\":{\"enum\":[\"p\",\"q\"]}}}", "{\"a\":\"r\"}", "/a",
        "\"r\" is not one of [\"p\",\"q\"]");
}

static void test_objects(void **state)
{
    const char *s = "{\"properties\":{\"a\":{\"type\":\"integer\"},\"b/c~d\":{\"type\":\"string\"}},"
                    "\"additionalProperties\":false}";
    ok(s, "{\"a\":1,\"b/c~d\":\"x\"}");
    bad(s, "{\"a\":1,\"b/c~d\":2}", "/b~1c~0d", "expected string, got number 2");
    bad(s, "{\"a\":1,\"zz\":2}", "/zz", "property \"zz\" is not allowed");
    /* Escaped keys are decoded before matching. */
    bad(s, "{\"\\u0061\":\"x\"}", "/a", "expected integer, got string \"x\"");
    ok("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":{\"type\":\"integer\"}}",
       "{\"x-a\":\"s\",\"n\":3}");
    bad("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":{\"type\":\"integer\"}}",
        "{\"x-a\":1}", "/x-a", "expected string, got number 1");
    bad("{\"propertyNames\":{\"maxLength\":3}}", "{\"abcd\":1}", "",
        "property name \"abcd\" is not valid: \"abcd\" is longer than maxLength 3 (4 characters)");
    bad("{\"minProperties\":2}", "{\"a\":1}", "",
        "object has 1 property, fewer than minProperties 2");
    bad("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "",
        "object has 2 properties, more than maxProperties 1");
    bad("{\"dependentRequired\":{\"a\":[\"b\"]}}", "{\"a\":1}", "",
        "property \"a\" requires property \"b\"");
    ok("{\"dependentRequired\":{\"a\":[\"b\"]}}", "{\"c\":1}");
    bad("{\"dependentSchemas\":{\"a\":{\"required\":[\"b\"]}}}", "{\"a\":1}", "",
        "missing required property \"b\"");
    bad("{\"required\":[\"x\"],\"properties\":{\"y\":{}}}", "{\"y\":1}", "",
        "missing required property \"x\"");
    /* Many properties: the hash table path, and more than 64 required. */
    char schema[16384], rec[16384];
    size_t o = (size_t)snprintf(schema, sizeof schema, "{\"properties\":{");
    for (int i = 0; i < 80; i++)
        o += (size_t)snprintf(schema + o, sizeof schema - o, "%s\"p%d\":{\"type\":\"integer\"}",
                              i ? "," : "", i);
    o += (size_t)snprintf(schema + o, sizeof schema - o, "},\"required\":[");
    for (int i = 0; i < 80; i++)
        o += (size_t)snprintf(schema + o, sizeof schema - o, "%s\"p%d\"", i ? "," : "", i);
    snprintf(schema + o, sizeof schema - o, "]}");
    o = (size_t)snprintf(rec, sizeof rec, "{");
    for (int i = 79; i >= 0; i--)
        o += (size_t)snprintf(rec + o, sizeof rec - o, "%s\"p%d\":%d", i != 79 ? "," : "", i, i);
    snprintf(rec + o, sizeof rec - o, "}");
    ok(schema, rec);
    /* Drop p75 (beyond the 64-bit mask) and p3. */
    char *p = strstr(rec, "\"p75\":75,");
    memmove(p, p + 9, strlen(p + 9) + 1);
    bad(schema, rec, "", "missing required property \"p75\"");
    p = strstr(rec, "\"p3\":3,");
    memmove(p, p + 7, strlen(p + 7) + 1);
    bad(schema, rec, "", "missing required property \"p3\"");
}

static void test_arrays(void **state)
{
    const char *s = "{\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}],"
                    "\"items\":{\"type\":\"boolean\"}}";
    ok(s, "[1,\"a\",true,false]");
    bad(s, "[1,\"a\",true,3]", "/3", "expected boolean, got number 3");
    bad("{\"prefixItems\":[{}],\"items\":false}", "[1,2]", "/1",
        "array has 2 items, at most 1 allowed");
    bad("{\"minItems\":2}", "[1]", "", "array has 1 item, fewer than minItems 2");
    bad("{\"maxItems\":1}", "[1,2]", "", "array has 2 items, more than maxItems 1");
    bad("{\"uniqueItems\":true}", "[1,{\"a\":1},2,{\"a\":1.0}]", "",
        "array items 1 and 3 are equal (uniqueItems)");
    ok("{\"uniqueItems\":true}", "[1,true,\"1\",[1],{\"1\":1}]");
    /* A large array goes through the hash path. */
    char rec[8192];
    size_t o = (size_t)snprintf(rec, sizeof rec, "[");
    for (int i = 0; i < 500; i++)
        o += (size_t)snprintf(rec + o, sizeof rec - o, "%s%d", i ? "," : "", i);
    snprintf(rec + o, sizeof rec - o, "]");
    ok("{\"uniqueItems\":true}", rec);
    snprintf(rec + o, sizeof rec - o, ",17.0]");
    bad("{\"uniqueItems\":true}", rec, "", "array items 17 and 500 are equal (uniqueItems)");
    bad("{\"contains\":{\"type\":\"string\"}}", "[1,2]", "",
        "no item of the array matches \"contains\"");
    bad("{\"contains\":{\"type\":\"string\"},\"minContains\":2}", "[1,\"a\"]", "",
        "1 item of the array matches \"contains\", fewer than minContains 2");
    bad("{\"contains\":{\"type\":\"string\"},\"maxContains\":1}", "[\"b\",\"a\"]", "",
        "2 items of the array match \"contains\", more than maxContains 1");
    ok("{\"contains\":{\"type\":\"string\"},\"minContains\":0}", "[]");
}

static void test_applicators(void **state)
{
    /* anyOf: the one branch meant for the type explains. */
    bad("{\"anyOf\":[{\"type\":\"integer\",\"minimum\":5},{\"type\":\"string\"}]}", "3", "",
        "3 is less than the minimum 5");
    bad("{\"anyOf\":[{\"required\":[\"a\"]},{\"required\":[\"b\"]}]}", "{}", "",
        "value matches none of the 2 anyOf schemas: [0] missing required property \"a\"; "
        "[1] missing required property \"b\"");
    bad("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "3", "",
        "value matches more than one of the oneOf schemas (0 and 1)");
    ok("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "3");
    bad("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "[]", "",
        "expected integer or string, got array");
    bad("{\"allOf\":[{\"type\":\"integer\"},{\"maximum\":2}]}", "3", "",
        "3 is greater than the maximum 2");
    bad("{\"not\":{\"type\":\"string\"}}", "\"s\"", "",
        "\"s\" must not match the \"not\" schema");
    const char *ite = "{\"if\":{\"properties\":{\"kind\":{\"const\":\"a\"}}},"
                      "\"then\":{\"required\":[\"x\"]},\"else\":{\"required\":[\"y\"]}}";
    bad(ite, "{\"kind\":\"a\"}", "", "missing required property \"x\"");
    bad(ite, "{\"kind\":\"b\"}", "", "missing required property \"y\"");
    ok(ite, "{\"kind\":\"b\",\"y\":1}");
    /* $ref and $defs, pointer escapes, anchors. */
    const char *refs = "{\"$defs\":{\"a/b\":{\"type\":\"integer\"},\"n\":{\"$anchor\":\"nn\","
                       "\"type\":\"null\"}},\"properties\":{\"x\":{\"$ref\":\"#/$defs/a~1b\"},"
                       "\"y\":{\"$ref\":\"#nn\"}}}";
    ok(refs, "{\"x\":1,\"y\":null}");
    bad(refs, "{\"x\":1,\"y\":2}", "/y", "expected null, got number 2");
    /* Recursion through $ref. */
    const char *tree = "{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
                       "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}}}";
    ok(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3}]}]}");
    bad(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":\"3\"}]}]}", "/kids/0/kids/0/v",
        "expected integer, got string \"3\"");
    /* unevaluatedProperties sees through allOf. */
    const char *ue = "{\"allOf\":[{\"properties\":{\"a\":{}}}],\"properties\":{\"b\":{}},"
                     "\"unevaluatedProperties\":false}";
    ok(ue, "{\"a\":1,\"b\":2}");
    bad(ue, "{\"a\":1,\"c\":2}", "/c", "property \"c\" is not allowed (unevaluatedProperties)");
    bad("{\"prefixItems\":[{}],\"unevaluatedItems\":false}", "[1,2]", "/1",
        "item 1 is not allowed (unevaluatedItems)");
    /* A $ref loop that never moves through the instance gets a verdict. */
    bad("{\"$defs\":{\"a\":{\"allOf\":[{\"$ref\":\"#/$defs/a\"}]}},\"$ref\":\"#/$defs/a\"}",
        "1", "", NULL);
}

static void test_lax(void **state)
{
    const char *s = telemetry_schema();
    /* Numbers in strings where integers are wanted; "5.3" stays a string
     * where the schema takes float | str. */
    lax(s, "{\"timestamp\":\"1756803600\",\"sensor_id\":\" 42 \",\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":\"5.3\",\"unit\":\"Celcius\"}}",
        "{\"timestamp\":1756803600,\"sensor_id\":42,\"measurement\":"
        "{\"kind\":\"Temperature\",\"value\":\"5.3\",\"unit\":\"Celcius\"}}");
    lax(s, "{\"timestamp\":1,\"sensor_id\":2,\"measurement\":"
           "{\"kind\":\"Temperature\",\"value\":5.3,\"unit\":\"Celcius\"}}", NULL);
    lax(s, "{\"timestamp\":\"x\",\"sensor_id\":2,\"measurement\":{}}", "!");
    lax("{\"type\":\"integer\"}", "\"42.0\"", "42");
    lax("{\"type\":\"integer\"}", "\"1_000\"", "1000");
    lax("{\"type\":\"integer\"}", "\"+0042\"", "42");
    lax("{\"type\":\"integer\"}", "\"\\u00a07\\t\"", "7");
    lax("{\"type\":\"integer\"}", "\"42.5\"", "!");
    lax("{\"type\":\"integer\"}", "\"1e2\"", "!");
    lax("{\"type\":\"integer\"}", "\"0x1A\"", "!");
    lax("{\"type\":\"integer\"}", "\"\"", "!");
    lax("{\"type\":\"integer\"}", "true", "1");
    lax("{\"type\":\"integer\"}", "5.0", NULL); /* already an integer */
    lax("{\"type\":\"integer\"}", "5.5", "!");
    lax("{\"type\":\"number\"}", "\"5.3\"", "5.3");
    lax("{\"type\":\"number\"}", "\" -.5e+3 \"", "-500");
    lax("{\"type\":\"number\"}", "\"1.\"", "1");
    lax("{\"type\":\"number\"}", "\"1e400\"", "1e400");
    lax("{\"type\":\"number\"}", "\"inf\"", "!");
    lax("{\"type\":\"number\"}", "\"nan\"", "!");
    lax("{\"type\":\"number\"}", "false", "0");
    lax("{\"type\":\"boolean\"}", "\"TRUE\"", "true");
    lax("{\"type\":\"boolean\"}", "\"off\"", "false");
    lax("{\"type\":\"boolean\"}", "\"y\"", "true");
    lax("{\"type\":\"boolean\"}", "\"false \"", "!");
    lax("{\"type\":\"boolean\"}", "1", "true");
    lax("{\"type\":\"boolean\"}", "0.0", "false");
    lax("{\"type\":\"boolean\"}", "2", "!");
    /* pydantic 2 does not turn numbers into strings. */
    lax("{\"type\":\"string\"}", "5", "!");
    /* The coerced value must pass the rest of the schema. */
    lax("{\"type\":\"integer\",\"minimum\":10}", "\"5\"", "!");
    lax("{\"type\":\"integer\",\"minimum\":10}", "\"50\"", "50");
    /* A union keeps the value that fits as sent. */
    lax("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "\"42\"", NULL);
    lax("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}", "\"42\"", "42");
    lax("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "[\"1\", 2, \"3\"]",
        "[1, 2, 3]");
    /* The verdict of a value that the coercion does not save. */
    struct schema_opts o = {0};
    o.lax = 1;
    check_opts("{\"type\":\"integer\",\"minimum\":10}", "\"5\"", 0, "",
               "5 is less than the minimum 10", &o);
    check_opts("{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "{\"a\":\"abc\"}", 0, "/a",
               "expected integer, got string \"abc\"", &o);
    /* The tape of the stored record is the rewritten one. */
    struct weir_errmsg err;
    struct schema *sc = schema_compile(s, strlen(s), NULL, &o, &err);
    struct validator *v = validator_new(sc);
    const char *rec = "{\"timestamp\":\"1756803600\",\"sensor_id\":2,\"measurement\":"
                      "{\"kind\":\"Temperature\",\"value\":1,\"unit\":\"Celcius\"}}";
    assert_int_equal(validator_check(v, rec, strlen(rec), NULL), 1);
    assert_int_equal(validator_coerced(v), 1);
    const struct json_doc *d = validator_doc(v);
    int t = json_lookup(d, 0, "timestamp", 9);
    assert_true(t > 0);
    assert_int_equal(d->toks[t].type, JSON_NUMBER);
    validator_free(v);
    schema_free(sc);
}

static void test_bad_input(void **state)
{
    const char *s = telemetry_schema();
    struct weir_errmsg err;
    struct schema_opts o = {0};
    o.max_record = 200u << 20;
    struct schema *sc = schema_compile(s, strlen(s), NULL, &o, &err);
    struct validator *v = validator_new(sc);
    struct verdict vd;
    /* A 100 MB line: one long string value. */
    size_t n = 100u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big, "{\"timestamp\":\"", 14);
    memcpy(big + n - 2, "\"}", 2);
    assert_int_equal(validator_check(v, big, n, &vd), 0);
    assert_string_equal(vd.path, "/timestamp");
    assert_int_equal(vd.json_error, 0);
    /* Over the default record limit: a verdict without scanning. */
    struct schema *s2 = schema_compile(s, strlen(s), NULL, NULL, &err);
    struct validator *v2 = validator_new(s2);
    assert_int_equal(validator_check(v2, big, n, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    assert_non_null(strstr(vd.message, "longer than the limit"));
    /* 1,000,000 nested '['. */
    memset(big, '[', 1000000);
    assert_int_equal(validator_check(v, big, 1000000, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    free(big);
    /* Invalid UTF-8, NUL bytes, a BOM. */
    assert_int_equal(validator_check(v, "{\"a\":\"\xff\"}", 9, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    assert_int_equal(validator_check(v, "{\"a\":\"\0\"}", 9, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    assert_int_equal(validator_check(v, "{}\0", 3, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    assert_int_equal(validator_check(v, "\xef\xbb\xbf{}", 5, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    assert_int_equal(vd.offset, 0);
    assert_int_equal(validator_check(v, "{\"a\":1,}", 8, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    assert_int_equal(vd.offset, 7);
    assert_int_equal(validator_check(v, "", 0, &vd), 0);
    assert_int_equal(vd.json_error, 1);
    /* Duplicate keys, nested and escaped, and in a big object. */
    const char *dup = "{\"timestamp\":1,\"sensor_id\":1,\"measurement\":{\"kind\":1,\"k\\u0069nd\":2}}";
    assert_int_equal(validator_check(v, dup, strlen(dup), &vd), 0);
    assert_string_equal(vd.path, "/measurement/kind");
    assert_string_equal(vd.message, "duplicate key \"k\\u0069nd\"");
    /* A repeated name the schema lists, and one it does not. */
    bad("{\"properties\":{\"a\":{}}}", "{\"a\":1,\"x\":1,\"a\":2}", "/a", "duplicate key \"a\"");
    bad("{\"properties\":{\"a\":{}}}", "{\"a\":1,\"x\":1,\"x\":2}", "/x", "duplicate key \"x\"");
    bad("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":1,\"a\":2}", "/a",
        "duplicate key \"a\"");
    bad("{\"items\":{\"properties\":{\"a\":{}}}}", "[{\"a\":1},{\"\":1,\"\":2}]", "/1/",
        "duplicate key \"\"");
    char rec[4096];
    size_t o2 = (size_t)snprintf(rec, sizeof rec, "{");
    for (int i = 0; i < 100; i++)
        o2 += (size_t)snprintf(rec + o2, sizeof rec - o2, "\"k%d\":%d,", i, i);
    snprintf(rec + o2, sizeof rec - o2, "\"k42\":0}");
    assert_int_equal(validator_check(v, rec, strlen(rec), &vd), 0);
    assert_string_equal(vd.message, "duplicate key \"k42\"");
    /* Numbers with 10,000 digits. */
    char num[10100];
    o2 = (size_t)snprintf(num, sizeof num, "{\"timestamp\":");
    memset(num + o2, '7', 10000);
    o2 += 10000;
    snprintf(num + o2, sizeof num - o2, ",\"sensor_id\":1e99999,\"measurement\":"
             "{\"kind\":\"Temperature\",\"value\":1,\"unit\":\"Celcius\"}}");
    assert_int_equal(validator_check(v, num, strlen(num), &vd), 1);
    validator_free(v);
    validator_free(v2);
    schema_free(sc);
    schema_free(s2);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* The deepest walks (a $ref loop through anyOf, reported) fit in a 4 MB
 * thread stack, as validate.h promises. */
static void *deep_walk(void *arg)
{
    const char *schema = "{\"$defs\":{\"a\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},"
                         "{\"type\":\"null\"}]}},\"$ref\":\"#/$defs/a\"}";
    struct weir_errmsg err;
    struct schema *s = schema_compile(schema, strlen(schema), NULL, NULL, &err);
    struct validator *v = s ? validator_new(s) : NULL;
    struct verdict vd;
    int r = v ? validator_check(v, "1", 1, &vd) : -1;
    validator_free(v);
    schema_free(s);
    *(int *)arg = r;
    return NULL;
}

static void test_stack(void **state)
{
    pthread_attr_t a;
    pthread_t t;
    int r = -2;
    pthread_attr_init(&a);
    /* ASan's redzones make frames several times larger. */
    pthread_attr_setstacksize(&a, UNDER_ASAN ? 32u << 20 : 4u << 20);
    assert_int_equal(pthread_create(&t, &a, deep_walk, &r), 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&a);
    assert_int_equal(r, 0);
}

static void test_reuse(void **state)
{
    /* One validator, many records, alternating valid and invalid. */
    const char *s = telemetry_schema();
    struct weir_errmsg err;
    struct schema *sc = schema_compile(s, strlen(s), NULL, NULL, &err);
    struct validator *v = validator_new(sc);
    struct verdict vd;
    const char *good = "{\"timestamp\":1,\"sensor_id\":2,\"measurement\":"
                       "{\"kind\":\"Temperature\",\"value\":1,\"unit\":\"Celcius\"}}";
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(validator_check(v, good, strlen(good), &vd), 1);
        assert_int_equal(validator_check(v, "{}", 2, &vd), 0);
        assert_int_equal(validator_check(v, "{", 1, &vd), 0);
    }
    size_t n;
    assert_int_equal(validator_check(v, good, strlen(good), NULL), 1);
    assert_ptr_equal(validator_output(v, &n), good);
    assert_int_equal(n, strlen(good));
    validator_free(v);
    validator_free(NULL);
    schema_free(sc);
}

/*
 * Golden cases (tests/data/golden/NAME/): schema.json, input.ndjson, an
 * optional `options` file (words: lax, format_assert) and `expected`, one
 * line per input line:
 *
 *   valid                        stored as sent
 *   valid<TAB>BYTES              lax mode stored BYTES instead
 *   invalid<TAB>PATH<TAB>MESSAGE
 *   json<TAB>OFFSET<TAB>MESSAGE  not JSON
 *
 * WEIR_GOLDEN_UPDATE=1 rewrites the expected files (review the diff).
 */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = NULL;
    size_t n = 0, cap = 0, r;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            b = realloc(b, cap + 1);
            assert_non_null(b);
        }
        r = fread(b + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    b[n] = '\0';
    *len = n;
    return b;
}

static void golden_case(const char *dir, int update, int *cases)
{
    char path[1024];
    size_t len;
    struct schema_opts o = {0};
    snprintf(path, sizeof path, "%s/options", dir);
    char *opts = read_all(path, &len);
    if (opts) {
        o.lax = strstr(opts, "lax") != NULL;
        o.format_assert = strstr(opts, "format_assert") != NULL;
        free(opts);
    }
    snprintf(path, sizeof path, "%s/schema.json", dir);
    struct weir_errmsg err;
    struct schema *s = schema_load_file(path, &o, &err);
    if (!s)
        fail_msg("%s: %s", path, err.text);
    struct validator *v = validator_new(s);
    snprintf(path, sizeof path, "%s/input.ndjson", dir);
    char *in = read_all(path, &len);
    assert_non_null(in);
    snprintf(path, sizeof path, "%s/expected", dir);
    size_t elen = 0;
    char *exp = update ? NULL : read_all(path, &elen);
    if (!update && !exp)
        fail_msg("%s missing (WEIR_GOLDEN_UPDATE=1 creates it)", path);
    FILE *out = update ? fopen(path, "wb") : NULL;
    char *p = in, *end = in + len, *e = exp;
    int line = 0, bad = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        struct verdict vd;
        int r = validator_check(v, p, n, &vd);
        char got[2048];
        if (r == 1) {
            size_t on;
            const char *op = validator_output(v, &on);
            if (op == p)
                snprintf(got, sizeof got, "valid");
            else
                snprintf(got, sizeof got, "valid\t%.*s", (int)on, op);
        } else if (vd.json_error) {
            snprintf(got, sizeof got, "json\t%zu\t%s", vd.offset, vd.message);
        } else {
            snprintf(got, sizeof got, "invalid\t%s\t%s", vd.path, vd.message);
        }
        if (out) {
            fprintf(out, "%s\n", got);
        } else {
            char *enl = e ? strchr(e, '\n') : NULL;
            size_t el = enl ? (size_t)(enl - e) : (e ? strlen(e) : 0);
            if (!e || el != strlen(got) || memcmp(e, got, el)) {
                print_error("%s line %d:\n got  %s\n want %.*s\n", dir, line, got,
                            (int)el, e ? e : "");
                bad++;
            }
            e = enl ? enl + 1 : NULL;
        }
        p += n + 1;
    }
    if (out)
        fclose(out);
    free(in);
    free(exp);
    validator_free(v);
    schema_free(s);
    (*cases)++;
    assert_int_equal(bad, 0);
}

static void test_golden(void **state)
{
    const char *root = "data/golden";
    DIR *dp = opendir(root);
    if (!dp) {
        root = "tests/data/golden";
        dp = opendir(root);
    }
    assert_non_null(dp);
    const char *u = getenv("WEIR_GOLDEN_UPDATE");
    int update = u && strcmp(u, "1") == 0, cases = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, de->d_name);
        golden_case(dir, update, &cases);
    }
    closedir(dp);
    assert_true(cases >= 4);
}

/* schema_opts.int64_integers: what `weir serve` checks so that every
 * stored integer fits the lake's BIGINT columns. */
static void i64(const char *schema, const char *rec, int want, const char *path,
                const char *msg)
{
    struct schema_opts o = {0};
    o.int64_integers = 1;
    check_opts(schema, rec, want, path, msg, &o);
}

static void test_int64(void **state)
{
    (void)state;
    const char *in = "{\"type\":\"integer\"}";
    const char *big = "12345678901234567890 is outside the 64-bit integer range "
                      "the lake stores";
    /* Off (weir validate's default): JSON Schema integers are unbounded. */
    ok(in, "12345678901234567890");
    ok(in, "1e30");
    i64(in, "12345678901234567890", 0, "", big);
    i64(in, "9223372036854775807", 1, NULL, NULL);
    i64(in, "-9223372036854775808", 1, NULL, NULL);
    i64(in, "9223372036854775808", 0, "",
        "9223372036854775808 is outside the 64-bit integer range the lake stores");
    i64(in, "-9223372036854775809", 0, "", NULL);
    i64(in, "999999999999999999", 1, NULL, NULL);   /* 18 digits: the fast path */
    i64(in, "-999999999999999999", 1, NULL, NULL);
    i64(in, "1e18", 1, NULL, NULL);                 /* exponent: compared exactly */
    i64(in, "1e19", 0, "", "1e19 is outside the 64-bit integer range the lake stores");
    i64(in, "5.0", 1, NULL, NULL);
    i64(in, "-0", 1, NULL, NULL);
    i64(in, "00000000000000000000001", 0, NULL, NULL); /* not JSON at all */
    i64(in, "5.5", 0, "", "expected integer, got number 5.5");
    i64(in, "\"5\"", 0, "", "expected integer, got string \"5\"");
    /* Numbers allowed too: a DOUBLE column, no bound. */
    i64("{\"type\":\"number\"}", "1e30", 1, NULL, NULL);
    i64("{\"type\":[\"integer\",\"number\"]}", "12345678901234567890", 1, NULL, NULL);
    i64("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}",
        "12345678901234567890", 1, NULL, NULL);
    /* Where pydantic puts integers: nested, Optional, unions, allOf. */
    i64("{\"properties\":{\"m\":{\"properties\":{\"id\":{\"type\":\"integer\"}}}}}",
        "{\"m\":{\"id\":12345678901234567890}}", 0, "/m/id", big);
    i64("{\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}}}",
        "{\"a\":12345678901234567890}", 0, "/a", big);
    i64("{\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}}}",
        "{\"a\":null}", 1, NULL, NULL);
    i64("{\"type\":[\"integer\",\"string\"]}", "12345678901234567890", 0, "", big);
    i64("{\"allOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}",
        "12345678901234567890", 0, "", big);
    i64("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "[1,2,12345678901234567890]",
        0, "/2", big);
    i64("{\"oneOf\":[{\"type\":\"integer\",\"minimum\":0},{\"type\":\"string\"}]}",
        "12345678901234567890", 0, "", big);
    /* Lax: a string coerced to an integer is bounded the same way. */
    struct schema_opts o = {0};
    o.int64_integers = 1;
    o.lax = 1;
    check_opts(in, "\"12345678901234567890\"", 0, "", big, &o);
    check_opts(in, "\"123\"", 1, NULL, NULL, &o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_telemetry),   cmocka_unit_test(test_types),
        cmocka_unit_test(test_numbers),     cmocka_unit_test(test_strings),
        cmocka_unit_test(test_enum_const),  cmocka_unit_test(test_objects),
        cmocka_unit_test(test_arrays),      cmocka_unit_test(test_applicators),
        cmocka_unit_test(test_lax),         cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_reuse),       cmocka_unit_test(test_stack),
        cmocka_unit_test(test_golden),      cmocka_unit_test(test_int64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
