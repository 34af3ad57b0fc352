/*
 * fuzz_json.c - libFuzzer target for the JSON scanner (src/schema/json.c).
 *
 * Scans the input, then exercises every helper on every token and checks
 * the tape's invariants: next > index, a container's children tile its
 * subtree exactly, every token lies inside the input and inside its
 * parent, strings decode to valid UTF-8 of the counted length, numbers
 * compare equal to themselves, lookups find what they should. A document
 * that scans is valid UTF-8 as a whole, and its members re-scan alone.
 *
 *   make fuzz && build/fuzz/fuzz_json -max_total_time=600 fuzz/corpus/json
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json.h"

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t utf8_count(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

static void check_string(const struct json_doc *d, uint32_t i)
{
    const struct json_tok *t = &d->toks[i];
    const char *raw = json_tok_ptr(d, t);
    CHECK(t->len >= 2 && raw[0] == '"' && raw[t->len - 1] == '"');
    size_t cap = t->len;
    char *out = malloc(cap ? cap : 1);
    CHECK(out);
    size_t n = json_str_decode(d, t, out, cap);
    CHECK(n <= t->len - 2);
    CHECK(json_utf8_valid(out, n));
    CHECK(utf8_count(out, n) == t->count);
    CHECK(json_str_eq(d, t, out, n));
    CHECK(json_str_eq_tok(d, t, d, t));
    if (n > 0) {
        CHECK(!json_str_eq(d, t, out, n - 1));
        out[n - 1] ^= 1;
        CHECK(!json_str_eq(d, t, out, n));
        out[n - 1] ^= 1;
    }
    if (!(t->flags & JSON_F_ESCAPED)) {
        CHECK(n == t->len - 2 && memcmp(out, raw + 1, n) == 0);
        CHECK(!memchr(raw + 1, '\\', n));
    }
    int nonascii = 0;
    for (size_t k = 0; k < n; k++)
        nonascii |= (unsigned char)out[k] >= 0x80;
    CHECK(nonascii == !!(t->flags & JSON_F_NONASCII));
    /* A short buffer gets a prefix and the full length. */
    char small[3];
    CHECK(json_str_decode(d, t, small, sizeof small) == n);
    CHECK(memcmp(small, out, n < 3 ? n : 3) == 0);
    free(out);
}

static void check_number(const struct json_doc *d, uint32_t i)
{
    const struct json_tok *t = &d->toks[i];
    const char *raw = json_tok_ptr(d, t);
    CHECK(t->len >= 1);
    int frac = memchr(raw, '.', t->len) || memchr(raw, 'e', t->len) ||
               memchr(raw, 'E', t->len);
    CHECK(!!(t->flags & JSON_F_INTEGER) == !frac);
    CHECK(!!(t->flags & JSON_F_NEGATIVE) == (raw[0] == '-'));
    double v = json_num_double(d, t);
    CHECK(!isnan(v));
    CHECK(json_num_cmp(d, t, d, t) == 0);
    int64_t iv;
    if (json_num_int64(d, t, &iv)) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", (long long)iv);
        CHECK(json_num_cmp_text(raw, t->len, buf, (size_t)n) == 0);
        CHECK(json_num_multiple_text(raw, t->len, "1", 1) == 1);
        if (llabs(iv) < (1LL << 53))
            CHECK(v == (double)iv);
    } else if (isfinite(v) && fabs(v) < 1e15 && v == floor(v)) {
        /* Rounded to an integer but not one: must differ from it. */
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%.0f", v);
        CHECK(json_num_cmp_text(raw, t->len, buf, (size_t)n) != 0);
    }
    int m = json_num_multiple_text(raw, t->len, raw, t->len);
    CHECK(m != 0);
    int isint = json_num_is_integer(d, t);
    if (t->flags & JSON_F_INTEGER)
        CHECK(isint);
    if (json_num_int64(d, t, &iv))
        CHECK(isint);
    if (isint && isfinite(v))
        CHECK(v == floor(v));
}

static void check_object(const struct json_doc *d, uint32_t i)
{
    const struct json_tok *o = &d->toks[i];
    uint32_t k = i + 1;
    for (uint32_t m = 0; m < o->count && m < 64; m++) {
        const struct json_tok *kt = &d->toks[k];
        CHECK(kt->type == JSON_STRING);
        char key[64];
        size_t n = json_str_decode(d, kt, key, sizeof key);
        if (n <= sizeof key && !memchr(key, '.', n)) {
            int v = json_lookup(d, i, key, n);
            CHECK(v > (int)i && (uint32_t)v <= k + 1);
            CHECK(json_str_eq(d, &d->toks[v - 1], key, n));
        }
        k = d->toks[k + 1].next;
    }
    int dup = json_object_find_duplicate(d, i);
    CHECK(dup == -1 || ((uint32_t)dup > i && (uint32_t)dup < o->next));
    /* Against brute force: the first key equal to an earlier one. */
    if (o->count >= 2 && o->count <= 200) {
        int want = -1;
        uint32_t b = d->toks[i + 1 + 1].next;
        for (uint32_t m = 1; m < o->count && want < 0; m++) {
            uint32_t a = i + 1;
            for (uint32_t p = 0; p < m; p++) {
                if (json_str_eq_tok(d, &d->toks[a], d, &d->toks[b])) {
                    want = (int)b;
                    break;
                }
                a = d->toks[a + 1].next;
            }
            b = d->toks[b + 1].next;
        }
        CHECK(dup == want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct json_doc d, sub;
    static int ready;
    char msg[256];
    if (!ready) {
        json_doc_init(&d, 64);
        json_doc_init(&sub, 64);
        ready = 1;
    }
    const char *src = (const char *)data;
    enum json_error err = json_scan(&d, src, size);
    json_describe_error(&d, msg, sizeof msg);
    CHECK(strlen(msg) < sizeof msg);
    if (err != JSON_OK) {
        CHECK(d.err == err && d.ntoks == 0);
        CHECK(d.err_off <= size);
        return 0;
    }
    CHECK(d.ntoks >= 1 && d.ntoks <= size);
    CHECK(d.toks[0].next == d.ntoks);
    CHECK(json_utf8_valid(src, size));

    for (uint32_t i = 0; i < d.ntoks; i++) {
        const struct json_tok *t = &d.toks[i];
        CHECK(t->next > i && t->next <= d.ntoks);
        CHECK((size_t)t->off + t->len <= size && t->len > 0);
        CHECK(t->type <= JSON_OBJECT);
        /* Children tile [i+1, next) and lie inside the parent's bytes. */
        if (t->type == JSON_ARRAY || t->type == JSON_OBJECT) {
            uint32_t c = i + 1, items = 0;
            const char *p = json_tok_ptr(&d, t);
            CHECK(p[0] == (t->type == JSON_ARRAY ? '[' : '{'));
            CHECK(p[t->len - 1] == (t->type == JSON_ARRAY ? ']' : '}'));
            while (c < t->next) {
                const struct json_tok *ct = &d.toks[c];
                CHECK(ct->off > t->off &&
                      ct->off + ct->len < t->off + t->len);
                if (t->type == JSON_OBJECT) {
                    CHECK(ct->type == JSON_STRING && ct->next == c + 1);
                    c++;
                    ct = &d.toks[c];
                    CHECK(c < t->next);
                    CHECK(ct->off > d.toks[c - 1].off);
                }
                c = ct->next;
                items++;
            }
            CHECK(c == t->next && items == t->count);
        } else {
            CHECK(t->next == i + 1);
        }
        switch (t->type) {
        case JSON_STRING: check_string(&d, i); break;
        case JSON_NUMBER: check_number(&d, i); break;
        case JSON_OBJECT: check_object(&d, i); break;
        case JSON_NULL: CHECK(t->len == 4 && !memcmp(src + t->off, "null", 4)); break;
        case JSON_TRUE: CHECK(t->len == 4 && !memcmp(src + t->off, "true", 4)); break;
        case JSON_FALSE: CHECK(t->len == 5 && !memcmp(src + t->off, "false", 5)); break;
        default: break;
        }
        /* Small subtrees: equal to themselves; re-scanned alone they give
         * the same tape shape. */
        if (t->next - i <= 32) {
            CHECK(json_value_eq(&d, i, &d, i));
            CHECK(json_scan(&sub, src + t->off, t->len) == JSON_OK);
            CHECK(sub.ntoks == t->next - i);
            for (uint32_t k = 0; k < sub.ntoks; k++) {
                CHECK(sub.toks[k].type == d.toks[i + k].type);
                CHECK(sub.toks[k].next == d.toks[i + k].next - i);
                CHECK(sub.toks[k].count == d.toks[i + k].count);
                CHECK(sub.toks[k].off + t->off == d.toks[i + k].off);
            }
        }
    }
    (void)json_doc_find_duplicate(&d);
    return 0;
}
