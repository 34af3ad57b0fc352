/*
 * test_shape.c - the column shape of compiled schemas: pydantic exports
 * ($defs, Optional as anyOf with null, enums, float | str), the schema-less
 * default, closed objects, recursion, allOf narrowing, unions of objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "schema/schema.h"
#include "schema/shape.h"

/* A compact rendering of a shape: name:kind[?][{fields}|<items>], '!' for
 * open objects, '?' for nullable. */
static void render(struct buf *b, const struct shape *s)
{
    if (s->name)
        buf_appendf(b, "%s:", s->name);
    buf_puts(b, shape_kind_name(s->kind));
    if (s->nullable)
        buf_putc(b, '?');
    if (s->kind == SHAPE_OBJECT) {
        buf_puts(b, s->open ? "!{" : "{");
        for (size_t i = 0; i < s->nfields; i++) {
            if (i)
                buf_putc(b, ',');
            render(b, &s->fields[i]);
        }
        buf_putc(b, '}');
    } else if (s->kind == SHAPE_ARRAY) {
        buf_putc(b, '<');
        render(b, s->items);
        buf_putc(b, '>');
    }
}

static void check(const char *schema, const char *want)
{
    struct weir_errmsg e = {0};
    struct schema *s = schema_compile(schema, strlen(schema), NULL, NULL, &e);
    if (!s)
        fail_msg("compile %s: %s", schema, e.text);
    struct shape *sh = NULL;
    assert_int_equal(shape_of_schema(s, &sh, &e), 0);
    struct buf b = BUF_INIT(1 << 20);
    render(&b, sh);
    if (strcmp(b.data, want) != 0) {
        printf("schema %s\n want %s\n  got %s\n", schema, want, b.data);
        fail();
    }
    buf_release(&b);
    shape_free(sh);
    schema_free(s);
}

static void test_scalars(void **state)
{
    check("{\"type\":\"object\",\"properties\":{"
          "\"i\":{\"type\":\"integer\"},\"n\":{\"type\":\"number\"},"
          "\"s\":{\"type\":\"string\",\"format\":\"date-time\"},"
          "\"b\":{\"type\":\"boolean\"},\"z\":{\"type\":[\"string\",\"null\"]},"
          "\"any\":{},\"two\":{\"type\":[\"number\",\"string\"]},"
          "\"nul\":{\"type\":\"null\"}},"
          "\"required\":[\"i\",\"z\"]}",
          "object!{i:integer,n:number?,s:string?,b:boolean?,z:string?,any:json?,"
          "two:json?,nul:json?}");
}

static void test_default_and_closed(void **state)
{
    check("{\"type\":\"object\"}", "object!{}");
    check("true", "object!{}");
    check("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
          "\"additionalProperties\":false,\"required\":[\"a\"]}",
          "object{a:integer}");
    check("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
          "\"additionalProperties\":false,\"patternProperties\":{\"^x\":{}}}",
          "object!{a:integer?}");
    check("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
          "object!{}");
}

static void test_pydantic(void **state)
{
    /* What pydantic v2 exports for:
     *   class Unit(StrEnum): C = "C"; F = "F"
     *   class Measurement(BaseModel): value: float; unit: Unit
     *   class Reading(BaseModel):
     *       timestamp: int; sensor_id: str; measurement: Measurement
     *       location: Optional[Measurement] = None; tags: list[str] = []
     *       raw: float | str; level: Literal[1, 2, 3] */
    check("{\"$defs\":{"
          "\"Unit\":{\"enum\":[\"C\",\"F\"],\"title\":\"Unit\",\"type\":\"string\"},"
          "\"Measurement\":{\"properties\":{\"value\":{\"title\":\"Value\",\"type\":\"number\"},"
          "\"unit\":{\"$ref\":\"#/$defs/Unit\"}},\"required\":[\"value\",\"unit\"],"
          "\"title\":\"Measurement\",\"type\":\"object\"}},"
          "\"properties\":{\"timestamp\":{\"title\":\"Timestamp\",\"type\":\"integer\"},"
          "\"sensor_id\":{\"title\":\"Sensor Id\",\"type\":\"string\"},"
          "\"measurement\":{\"$ref\":\"#/$defs/Measurement\"},"
          "\"location\":{\"anyOf\":[{\"$ref\":\"#/$defs/Measurement\"},{\"type\":\"null\"}],"
          "\"default\":null},"
          "\"tags\":{\"default\":[],\"items\":{\"type\":\"string\"},\"title\":\"Tags\","
          "\"type\":\"array\"},"
          "\"raw\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],\"title\":\"Raw\"},"
          "\"level\":{\"enum\":[1,2,3],\"title\":\"Level\",\"type\":\"integer\"}},"
          "\"required\":[\"timestamp\",\"sensor_id\",\"measurement\",\"raw\",\"level\"],"
          "\"title\":\"Reading\",\"type\":\"object\"}",
          "object!{timestamp:integer,sensor_id:string,"
          "measurement:object!{value:number,unit:string},"
          "location:object?!{value:number,unit:string},"
          "tags:array?<string>,raw:json,level:integer}");
}

static void test_recursion_and_merges(void **state)
{
    /* A tree: the repeated node is JSON. */
    check("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
          "\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\","
          "\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"
          "\"type\":\"object\",\"properties\":{\"root\":{\"$ref\":\"#/$defs/node\"}}}",
          "object!{root:object?!{v:integer?,kids:array?<json?>}}");
    /* allOf narrows: number and an integer enum make an integer. */
    check("{\"type\":\"object\",\"properties\":{\"x\":{\"allOf\":["
          "{\"type\":\"number\"},{\"enum\":[1,2]}]},"
          "\"y\":{\"enum\":[1.5,2]},\"w\":{\"enum\":[\"a\",1]},"
          "\"c\":{\"const\":\"k\"}}}",
          "object!{x:integer?,y:number?,w:json?,c:string?}");
    /* An enum integer outside int64 would not fit BIGINT: a number. */
    check("{\"type\":\"object\",\"properties\":{\"b\":{\"enum\":[1,12345678901234567890]},"
          "\"k\":{\"const\":-9223372036854775808}}}",
          "object!{b:number?,k:integer?}");
    /* A union of two open objects: shared fields typed, the others JSON. */
    check("{\"type\":\"object\",\"properties\":{\"u\":{\"oneOf\":["
          "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"a\"},"
          "\"a\":{\"type\":\"integer\"}},\"required\":[\"kind\",\"a\"]},"
          "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"b\"},"
          "\"b\":{\"type\":\"string\"}},\"required\":[\"kind\"],"
          "\"additionalProperties\":false}]}}}",
          "object!{u:object?!{kind:string,a:integer?,b:json?}}");
    /* Tuples: the items' union. */
    check("{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"array\","
          "\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"number\"}],"
          "\"items\":false},\"f\":{\"type\":\"array\"}}}",
          "object!{t:array?<number>,f:array?<json?>}");
    /* Integer or number is a number; a loop through allOf stops. */
    check("{\"type\":\"object\",\"properties\":{\"n\":{\"anyOf\":["
          "{\"type\":\"integer\"},{\"type\":\"number\"},{\"type\":\"null\"}]}},"
          "\"allOf\":[{\"$ref\":\"#\"}]}",
          "object!{n:number?}");
}

static void test_lookup(void **state)
{
    const char *txt = "{\"properties\":{\"a\":{\"type\":\"integer\"}}}";
    struct weir_errmsg e = {0};
    struct schema *s = schema_compile(txt, strlen(txt), NULL, NULL, &e);
    assert_non_null(s);
    struct shape *sh = NULL;
    assert_int_equal(shape_of_schema(s, &sh, &e), 0);
    assert_int_equal(sh->kind, SHAPE_OBJECT);
    assert_non_null(shape_field(sh, "a", 1));
    assert_null(shape_field(sh, "b", 1));
    assert_string_equal(shape_kind_name(SHAPE_ARRAY), "array");
    shape_free(sh);
    shape_free(NULL);
    schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_default_and_closed),
        cmocka_unit_test(test_pydantic),
        cmocka_unit_test(test_recursion_and_merges),
        cmocka_unit_test(test_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
