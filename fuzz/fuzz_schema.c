/*
 * fuzz_schema.c - libFuzzer target for the schema compiler and validator.
 *
 * Input: FLAGS SCHEMA \0 RECORD [\n RECORD ...]. The first byte picks the
 * options (bit 0 lax, bit 1 format assertion); the schema is compiled, and
 * each record is validated. Besides "no crash, no leak, no UB", it checks:
 * an invalid record always has a message and a pointer that is empty or
 * starts with '/'; a record valid in lax mode is stored as bytes that are
 * valid JSON and pass the same schema without coercions.
 *
 *   make fuzz && build/fuzz/fuzz_schema -max_total_time=600 fuzz/corpus/schema
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "schema/schema.h"
#include "schema/validate.h"

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_setup(LOG_ERROR, LOG_TEXT);
        quiet = 1;
    }
    if (size < 2)
        return 0;
    struct schema_opts o = {0};
    o.lax = data[0] & 1;
    o.format_assert = (data[0] >> 1) & 1;
    const char *text = (const char *)data + 1;
    size = size - 1;
    const char *nul = memchr(text, '\0', size);
    size_t slen = nul ? (size_t)(nul - text) : size;
    struct weir_errmsg err;
    struct schema *s = schema_compile(text, slen, NULL, &o, &err);
    if (!s) {
        CHECK(err.text[0] != '\0');
        return 0;
    }
    struct schema_opts strict_o = o;
    strict_o.lax = 0;
    struct schema *strict = o.lax ? schema_compile(text, slen, NULL, &strict_o, &err) : NULL;
    CHECK(!o.lax || strict);
    struct validator *v = validator_new(s);
    struct validator *sv = strict ? validator_new(strict) : NULL;
    CHECK(v);
    const char *p = nul ? nul + 1 : text + size, *end = text + size;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct verdict vd;
        int r = validator_check(v, p, n, &vd);
        CHECK(r == 0 || r == 1);
        if (r == 0) {
            CHECK(vd.message[0] != '\0');
            CHECK(vd.path[0] == '\0' || vd.path[0] == '/');
        } else if (sv) {
            size_t on;
            const char *out = validator_output(v, &on);
            char *copy = malloc(on + 1);
            CHECK(copy);
            memcpy(copy, out, on);
            struct verdict vd2;
            int r2 = validator_check(sv, copy, on, &vd2);
            if (r2 != 1)
                fprintf(stderr, "lax output %.*s fails strictly: %s %s\n", (int)on,
                        copy, vd2.path, vd2.message);
            CHECK(r2 == 1);
            free(copy);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    validator_free(v);
    validator_free(sv);
    schema_free(s);
    schema_free(strict);
    return 0;
}
