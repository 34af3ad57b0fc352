/*
 * json.h - the JSON scanner: RFC 8259 bytes to a flat token tape.
 *
 * One pass over the bytes of a document checks the whole grammar (numbers,
 * escapes, surrogate pairs, UTF-8, nothing but whitespace after the value,
 * bounded depth) and records each value as one token in a flat array, the
 * tape. There is no tree of allocated nodes: the tape lives in a struct
 * json_doc that is reused from record to record, so scanning allocates
 * nothing once the tape has grown to the size of the largest record.
 *
 * The validator (validate.h) walks the tape; a token's `next` field skips
 * its whole subtree, so a walker can look at a value several times (anyOf,
 * oneOf, if/then/else) without scanning the bytes again.
 *
 * Token layout, in document order:
 *
 *   value      token
 *   ---------  -----------------------------------------------------------
 *   scalar     one token
 *   array      one JSON_ARRAY token, then each element's tokens
 *   object     one JSON_OBJECT token, then for each member a JSON_STRING
 *              token for the key followed by the value's tokens
 *
 * Field      meaning
 * ---------  ---------------------------------------------------------------
 * type       enum json_type
 * flags      JSON_F_* below
 * off, len   the token's bytes in the input: a string includes its quotes,
 *            an array or object spans from its bracket to the closing one
 * next       index of the first token after this value (after the subtree)
 * count      arrays: elements; objects: members; strings: code points of
 *            the decoded value; numbers: 0
 *
 * Strings stay in the input as they were sent; json_str_* below decode
 * escapes where a comparison needs the decoded value.
 *
 * Duplicate object keys are kept (both members are on the tape, in order);
 * the scanner does not judge them. See docs/json.md for that rule and for
 * the i_ cases of JSONTestSuite.
 */
#ifndef WEIR_SCHEMA_JSON_H
#define WEIR_SCHEMA_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type {
    JSON_NULL = 0,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

/* Token flags. */
enum {
    JSON_F_ESCAPED = 1 << 0,  /* string: contains a backslash escape */
    JSON_F_INTEGER = 1 << 1,  /* number: no fraction and no exponent */
    JSON_F_NEGATIVE = 1 << 2, /* number: starts with '-' */
    JSON_F_NONASCII = 1 << 3, /* string: has bytes >= 0x80 (or \u escapes
                                 that decode to them) */
};

struct json_tok {
    uint8_t type;
    uint8_t flags;
    uint16_t reserved;
    uint32_t off;
    uint32_t len;
    uint32_t next;
    uint32_t count;
};

/* Why a document failed to scan. */
enum json_error {
    JSON_OK = 0,
    JSON_ERR_EMPTY,        /* no value (only whitespace) */
    JSON_ERR_SYNTAX,       /* unexpected byte; see expected */
    JSON_ERR_EOF,          /* input ended inside a value */
    JSON_ERR_UTF8,         /* invalid UTF-8 byte sequence */
    JSON_ERR_ESCAPE,       /* bad backslash escape */
    JSON_ERR_SURROGATE,    /* \uD800-\uDFFF not forming a valid pair */
    JSON_ERR_CONTROL,      /* unescaped control character in a string */
    JSON_ERR_NUMBER,       /* malformed number */
    JSON_ERR_DEPTH,        /* nesting deeper than the limit */
    JSON_ERR_TRAILING,     /* bytes after the value */
    JSON_ERR_TOO_LARGE,    /* input or token count over the limits */
    JSON_ERR_NOMEM,        /* could not grow the tape */
    JSON_ERR_BOM,          /* starts with a UTF-8 byte-order mark (added
                              after the first draft of this header) */
};

/* Largest input json_scan accepts: offsets on the tape are 32-bit. */
#define JSON_MAX_INPUT ((size_t)UINT32_MAX - 1)

/* A reusable scanner state and tape. */
struct json_doc {
    const char *src;         /* the input of the last scan (not owned) */
    size_t src_len;
    struct json_tok *toks;   /* the tape */
    uint32_t ntoks;
    uint32_t cap;            /* tokens allocated */
    uint32_t max_toks;       /* hard limit on tokens (0: derived from input) */
    uint32_t max_depth;      /* nesting limit (WEIR_DEFAULT_MAX_DEPTH) */
    /* On failure: */
    enum json_error err;
    size_t err_off;          /* byte offset where the problem was found */
    const char *expected;    /* what would have been valid there, or NULL */
};

/*
 * Walking the tape. For a container token at index c:
 *
 *   first element or first key:  c + 1
 *   the value after key k:       k + 1
 *   the item after item v:       d->toks[v].next
 *   end of the container:        d->toks[c].next
 *
 * so the members of an object are visited with
 *
 *   uint32_t k = obj + 1;
 *   for (uint32_t m = 0; m < d->toks[obj].count; m++) {
 *       uint32_t v = k + 1;      // k: the key (a JSON_STRING), v: its value
 *       ...
 *       k = d->toks[v].next;
 *   }
 *
 * and the elements of an array with v = arr + 1, v = d->toks[v].next.
 */

/* Prepare an empty doc with the given depth limit (0: the default). */
void json_doc_init(struct json_doc *d, uint32_t max_depth);

/* Free the tape. Safe on a zeroed or released doc. */
void json_doc_release(struct json_doc *d);

/*
 * Scan src[0..len) as one JSON text. A UTF-8 byte-order mark is rejected
 * (RFC 8259 8.1 says not to add one; senders that do are told so).
 * Returns JSON_OK and fills d->toks (token 0 is the root), or an error with
 * d->err_off and d->expected set and d->ntoks 0 (d->src still points at the
 * input, for json_describe_error). The tape refers into src: keep src alive
 * while using the tokens. src need not be NUL-terminated and is never read
 * past len.
 *
 * The tape grows by doubling and is kept for the next scan; a text of len
 * bytes never needs more than (len + 1) / 2 tokens. With max_toks set, a
 * text that needs more fails with JSON_ERR_TOO_LARGE. Not thread-safe per
 * doc: use one doc per thread.
 */
enum json_error json_scan(struct json_doc *d, const char *src, size_t len);

/* A sentence for err, e.g. "invalid UTF-8". */
const char *json_strerror(enum json_error err);

/* Write "invalid JSON at byte N: expected X, found 'c'" for the last error
 * of d into out (always NUL-terminated; truncated to cap). Byte offsets count
 * from 0, as err_off. Returns out. */
char *json_describe_error(const struct json_doc *d, char *out, size_t cap);

/*
 * Numbers. json_num_double parses the token as a double (ERANGE rounds to
 * +/-HUGE_VAL or 0, as strtod). json_num_int64 succeeds (returns 1) only for
 * a number that is an exact integer in int64 range, written with or without
 * fraction/exponent (1, 1.0 and 1e2 all count); otherwise 0.
 */
double json_num_double(const struct json_doc *d, const struct json_tok *t);
int json_num_int64(const struct json_doc *d, const struct json_tok *t,
                   int64_t *out);

/*
 * 1 if the number's value has no fractional part, however it is written
 * (1, 1.0, 1e2, 1e400, -0: yes; 1.5, 1e-1: no). This is JSON Schema's
 * "integer" type, which is about the value, not about int64 range; use
 * json_num_int64 where the value must also fit.
 */
int json_num_is_integer(const struct json_doc *d, const struct json_tok *t);

/*
 * Exact comparison of two numbers by decimal value (no rounding through
 * double: 0.1 < 0.10000000000000000001, 1 == 1.0 == 10e-1, -0 == 0).
 * Returns <0, 0 or >0. The tokens may come from different docs (an instance
 * against a schema's "maximum"). json_num_cmp_text takes the raw texts,
 * which must be valid JSON numbers (as any JSON_NUMBER token is), so a
 * compiled schema can keep a keyword's text instead of its document.
 * Exponents beyond +/-10^15 saturate (such numbers compare as equal to
 * each other when their digits agree), which no real bound reaches.
 */
int json_num_cmp(const struct json_doc *da, const struct json_tok *ta,
                 const struct json_doc *db, const struct json_tok *tb);
int json_num_cmp_text(const char *a, size_t an, const char *b, size_t bn);

/*
 * Exact multipleOf: 1 if the number a is an integer multiple of b (both
 * valid JSON number texts, b != 0; signs are ignored), 0 if not, -1 if
 * the question is too costly to answer exactly (more than 19 significant
 * digits on either side) or b is 0; the caller then falls back to doubles. 0.3 is a multiple of 0.1 here, unlike with fmod.
 */
int json_num_multiple_text(const char *a, size_t an, const char *b, size_t bn);

/*
 * Strings. The raw bytes between the quotes are src + t->off + 1, length
 * t->len - 2. When the token has no JSON_F_ESCAPED flag they are the value.
 *
 * json_str_decode writes the decoded UTF-8 value into out (at most cap
 * bytes; a decoded value is never longer than its raw form, so cap =
 * t->len is always enough) and returns its full length, which is more than
 * cap if it did not fit (as snprintf; no NUL is added, and the value may
 * hold NUL bytes from \u0000). 0 for a token that is not a string.
 * json_str_eq compares the decoded value to s[0..n) without allocating.
 * t->count (code points) is a cheap first test for both.
 */
size_t json_str_decode(const struct json_doc *d, const struct json_tok *t,
                       char *out, size_t cap);
int json_str_eq(const struct json_doc *d, const struct json_tok *t,
                const char *s, size_t n);

/* 1 if two string tokens (possibly of different docs) decode to the same
 * value ("\u0041" equals "A"), else 0. */
int json_str_eq_tok(const struct json_doc *da, const struct json_tok *ta,
                    const struct json_doc *db, const struct json_tok *tb);

/*
 * The value at a dotted path ("a.b.c") under the object token tok: the
 * index of its token, or -1 if a step is missing or not an object. Each
 * step takes the first member whose decoded key equals the segment (keys
 * containing '.' cannot be reached this way). Used to find a record's
 * event-time field.
 */
int json_lookup(const struct json_doc *d, uint32_t tok, const char *dotted,
                size_t n);

/*
 * JSON Schema equality of two values (for const, enum, uniqueItems):
 * numbers by exact value (1 == 1.0), strings decoded, arrays element-wise,
 * objects as unordered sets of (key, value) members, checked both ways so
 * duplicate keys cannot make unequal objects compare equal. The tokens may
 * come from different docs. Recursion is bounded by the docs' nesting, which json_scan bounded
 * by max_depth.
 */
int json_value_eq(const struct json_doc *da, uint32_t a,
                  const struct json_doc *db, uint32_t b);

/*
 * Duplicate keys. json_object_find_duplicate returns the index of the
 * first key token in object obj whose decoded key equals an earlier
 * member's, or -1 if all keys differ (or obj is not an object); nested
 * objects are not looked at. json_doc_find_duplicate does the same for
 * every object of the doc, in document order. weir rejects records with
 * duplicate keys (docs/json.md says why). Objects of up to 16 members are
 * compared pairwise; larger ones hash their keys into a temporary table
 * (the only allocation here; if it fails, pairwise again).
 */
int json_object_find_duplicate(const struct json_doc *d, uint32_t obj);
int json_doc_find_duplicate(const struct json_doc *d);

/* Raw bytes of any token. */
static inline const char *json_tok_ptr(const struct json_doc *d,
                                       const struct json_tok *t)
{
    return d->src + t->off;
}

/*
 * Copy p[0..n), a JSON text the scanner accepted, to out without the
 * whitespace outside strings; returns the bytes written (at most n). The
 * form the lake stores JSON columns in (docs/lake.md), shared by the
 * NDJSON reader and the Arrow batch builder so both give the same bytes.
 */
size_t json_minify(const char *p, size_t n, char *out);

/* Validate UTF-8 in p[0..n): 1 if valid (no overlongs, no surrogates, no
 * code point past U+10FFFF). Used by other modules for raw bytes. */
int json_utf8_valid(const char *p, size_t n);

#endif
