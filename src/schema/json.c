/*
 * json.c - the JSON scanner: one pass from bytes to the token tape.
 *
 * The scanner is a loop with an explicit state (goto labels) rather than a
 * recursive descent: open containers are chained through the `next` field
 * of their own tokens (which holds the parent's index until the container
 * closes and `next` gets its real value), so nesting costs no memory beyond
 * the tape and a depth counter, and a million '[' is just a depth error.
 *
 * The hot paths are the string body (sixteen byte tests, then SSE2 blocks
 * looking for '"', '\\', control bytes and bytes >= 0x80 at once) and the
 * dispatch on the first byte of a value; everything unusual (escapes,
 * UTF-8, errors) is out of line so the loop keeps its state in registers.
 * Numbers are only checked against the grammar here; json_num_* parse
 * them when asked. Grammar, error offsets, the i_ cases of JSONTestSuite
 * and the measurements behind these choices are in docs/json.md.
 */
#include "schema/json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

#define NONE UINT32_MAX
#define TAPE_MIN 64

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define INLINE static inline __attribute__((always_inline))
#define COLD __attribute__((cold, noinline))
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define INLINE static inline
#define COLD
#endif

/* JSON_NO_SSE2 forces the portable paths (for testing them on x86-64). */
#if defined(__SSE2__) && !defined(JSON_NO_SSE2)
#include <emmintrin.h>
#define HAVE_SSE2 1
#else
#define HAVE_SSE2 0
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR 1
#else
#define SWAR 0
#endif

/* ---- byte classes --------------------------------------------------- */

/* What a value starting with this byte is. */
enum { V_BAD = 0, V_OBJ, V_ARR, V_STR, V_NUM, V_TRUE, V_FALSE, V_NULL };

static const uint8_t value_class[256] = {
    ['{'] = V_OBJ, ['['] = V_ARR, ['"'] = V_STR, ['-'] = V_NUM,
    ['0'] = V_NUM, ['1'] = V_NUM, ['2'] = V_NUM, ['3'] = V_NUM,
    ['4'] = V_NUM, ['5'] = V_NUM, ['6'] = V_NUM, ['7'] = V_NUM,
    ['8'] = V_NUM, ['9'] = V_NUM, ['t'] = V_TRUE, ['f'] = V_FALSE,
    ['n'] = V_NULL,
};

/* Bytes a string body may hold as they are: printable ASCII except '"'
 * and '\\'. Everything else needs a closer look. */
static const uint8_t str_plain[256] = {
    [0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,
};

static const uint8_t is_ws[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

/* Hex digit value + 1; 0 for other bytes. */
static const uint8_t hexval1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
    ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
    ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};
#define HEXVAL(c) (hexval1[(unsigned char)(c)] - 1)

#define IS_DIGIT(c) ((unsigned)(c) - '0' < 10u)

#if SWAR
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

INLINE uint64_t load8(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

#if !HAVE_SSE2
/* High bit set in each byte lane that is '"', '\\', < 0x20 or >= 0x80.
 * Borrows start only in lanes that are hits and only flag lanes above
 * them, so the lowest set bit is exact, which is all the caller uses.
 * (x - 0x20) | x has the high bit for b < 0x20 and b >= 0x80; q - 1 for an
 * ASCII lane has it only if q is 0; non-ASCII lanes are hits anyway. */
INLINE uint64_t str_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"');
    uint64_t b = x ^ (ONES * '\\');
    return ((x - ONES * 0x20) | x | (q - ONES) | (b - ONES)) & HIGHS;
}
#endif
#endif

#if HAVE_SSE2
/* 0xFF in each lane that is '"', '\\', < 0x20 or >= 0x80 (a signed compare
 * puts bytes >= 0x80 below 0x20). */
INLINE __m128i str_special16(__m128i x)
{
    return _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                     _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                        _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
}

#endif

/* ---- UTF-8 ---------------------------------------------------------- */

/* Length (2-4) of the valid multi-byte sequence at s[i], or 0. Table 3-7
 * of the Unicode standard: no overlongs, no surrogates, nothing past
 * U+10FFFF, no truncated sequence. */
INLINE size_t utf8_seq(const unsigned char *s, size_t i, size_t len)
{
    unsigned c = s[i], c1, lo = 0x80, hi = 0xBF;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return i + 1 < len && (s[i + 1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (i + 2 >= len)
            return 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        c1 = s[i + 1];
        if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (i + 3 >= len)
            return 0;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        c1 = s[i + 1];
        if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80 ||
            (s[i + 3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* Why the sequence at s[i] is not valid UTF-8, as an "expected" text. */
COLD static const char *utf8_why(const unsigned char *s, size_t i, size_t len)
{
    unsigned c = s[i];
    unsigned c1 = i + 1 < len ? s[i + 1] : 0;
    if (c >= 0x80 && c < 0xC0)
        return "a UTF-8 lead byte (this is a continuation byte with none)";
    if (c == 0xC0 || c == 0xC1)
        return "valid UTF-8 (0xC0 and 0xC1 only start overlong encodings)";
    if (c >= 0xF5)
        return "valid UTF-8 (bytes 0xF5-0xFF never occur in UTF-8)";
    if (c == 0xE0 && c1 >= 0x80 && c1 < 0xA0)
        return "valid UTF-8 (this is an overlong encoding)";
    if (c == 0xF0 && c1 >= 0x80 && c1 < 0x90)
        return "valid UTF-8 (this is an overlong encoding)";
    if (c == 0xED && c1 >= 0xA0 && c1 < 0xC0)
        return "valid UTF-8 (this encodes a surrogate, U+D800-U+DFFF)";
    if (c == 0xF4 && c1 >= 0x90 && c1 < 0xC0)
        return "valid UTF-8 (this encodes a code point past U+10FFFF)";
    return "a UTF-8 continuation byte (0x80-0xBF) after this lead byte";
}

size_t json_minify(const char *p, size_t n, char *out)
{
    size_t o = 0;
    int in_str = 0;
    /* The grammar was checked: only strings (and their escapes) need care. */
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (in_str) {
            out[o++] = ch;
            if (ch == '\\' && i + 1 < n)
                out[o++] = p[++i];
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            out[o++] = ch;
            in_str = 1;
        } else if (ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') {
            out[o++] = ch;
        }
    }
    return o;
}

int json_utf8_valid(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
#if SWAR
        while (i + 8 <= n && (load8(s + i) & HIGHS) == 0)
            i += 8;
        if (i >= n)
            break;
#endif
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s, i, n);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* ---- the tape ------------------------------------------------------- */

void json_doc_init(struct json_doc *d, uint32_t max_depth)
{
    memset(d, 0, sizeof *d);
    d->max_depth = max_depth ? max_depth : WEIR_DEFAULT_MAX_DEPTH;
}

void json_doc_release(struct json_doc *d)
{
    free(d->toks);
    d->toks = NULL;
    d->cap = 0;
    d->ntoks = 0;
}

/* The most tokens a scan of len bytes may put on d's tape. Every value
 * takes at least one byte, so without max_toks len + 1 is never reached:
 * that bound only guards the arithmetic. */
static uint32_t tape_limit(const struct json_doc *d, size_t len)
{
    return d->max_toks ? d->max_toks : (uint32_t)len + 1;
}

/* Double the tape, up to tape_limit tokens. */
COLD static enum json_error tape_grow(struct json_doc *d, size_t len)
{
    uint32_t limit = tape_limit(d, len);
    if (d->cap >= limit)
        return JSON_ERR_TOO_LARGE;
    uint64_t ncap = d->cap ? (uint64_t)d->cap * 2 : TAPE_MIN;
    if (ncap > limit)
        ncap = limit;
    struct json_tok *t = realloc(d->toks, (size_t)ncap * sizeof *t);
    if (!t)
        return JSON_ERR_NOMEM;
    d->toks = t;
    d->cap = (uint32_t)ncap;
    return JSON_OK;
}

/* ---- strings -------------------------------------------------------- */

/* Where and why a scan failed. */
struct scan_fail {
    size_t off;
    const char *expected;
    enum json_error err;
};

/* Record a failure. Returns 0, the "failed" value of the helpers below
 * that return an index (a valid index after a token is never 0). */
static size_t fail_at(struct scan_fail *f, enum json_error err, size_t off,
                      const char *expected)
{
    f->err = err;
    f->off = off;
    f->expected = expected;
    return 0;
}

/* Four hex digits at s[i]: the value, or -1 with f set. */
static int hex4(const unsigned char *s, size_t i, size_t len,
                struct scan_fail *f)
{
    int v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = i + k < len ? HEXVAL(s[i + k]) : -1;
        if (h < 0) {
            fail_at(f, i + k < len ? JSON_ERR_ESCAPE : JSON_ERR_EOF, i + k,
                    "a hex digit in \\u escape");
            return -1;
        }
        v = v << 4 | h;
    }
    return v;
}

/*
 * The escape whose backslash is at s[i]: the index just past it, or 0 with
 * f set. *nonascii is set if it decodes to U+0080 or above.
 */
static size_t scan_escape(const unsigned char *s, size_t len, size_t i,
                          int *nonascii, struct scan_fail *f)
{
    static const char low[] = "a low surrogate \\uDC00-\\uDFFF after a high one";
    if (i + 1 >= len)
        return fail_at(f, JSON_ERR_EOF, i + 1, "an escape character after '\\'");
    switch (s[i + 1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        return i + 2;
    case 'u':
        break;
    default:
        return fail_at(f, JSON_ERR_ESCAPE, i + 1,
                       "an escape character: one of \" \\ / b f n r t u");
    }
    int cp = hex4(s, i + 2, len, f);
    if (cp < 0)
        return 0;
    if (cp < 0xD800 || cp > 0xDFFF) {
        *nonascii |= cp >= 0x80;
        return i + 6;
    }
    if (cp >= 0xDC00)
        return fail_at(f, JSON_ERR_SURROGATE, i,
                       "a high surrogate \\uD800-\\uDBFF before a low one");
    if (i + 6 >= len)
        return fail_at(f, JSON_ERR_EOF, i + 6, low);
    if (s[i + 6] != '\\')
        return fail_at(f, JSON_ERR_SURROGATE, i + 6, low);
    if (i + 7 >= len)
        return fail_at(f, JSON_ERR_EOF, i + 7, low);
    if (s[i + 7] != 'u')
        return fail_at(f, JSON_ERR_SURROGATE, i + 6, low);
    int lo = hex4(s, i + 8, len, f);
    if (lo < 0)
        return 0;
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail_at(f, JSON_ERR_SURROGATE, i + 6, low);
    *nonascii = 1;
    return i + 12;
}

/* The first byte at or after s[i] that is '"', '\\', a control byte or
 * >= 0x80, or len. Most keys and values are short: sixteen unrolled byte
 * tests find their end sooner than vector compares would (measured: 2.1
 * against 1.6 GB/s on telemetry records), and vectors take over for long
 * text (7 GB/s, against 3 with bytes only). */
INLINE size_t str_skip_plain(const unsigned char *s, size_t i, size_t len)
{
    if (UNLIKELY(len - i < 16)) {
        while (i < len && str_plain[s[i]])
            i++;
        return i;
    }
#define PLAIN_AT(k)                                                          \
    if (!str_plain[s[i + k]])                                                \
        return i + k;
    PLAIN_AT(0) PLAIN_AT(1) PLAIN_AT(2) PLAIN_AT(3)
    PLAIN_AT(4) PLAIN_AT(5) PLAIN_AT(6) PLAIN_AT(7)
    PLAIN_AT(8) PLAIN_AT(9) PLAIN_AT(10) PLAIN_AT(11)
    PLAIN_AT(12) PLAIN_AT(13) PLAIN_AT(14) PLAIN_AT(15)
#undef PLAIN_AT
    i += 16;
#if HAVE_SSE2
    while (i + 16 <= len) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        unsigned mask = (unsigned)_mm_movemask_epi8(str_special16(x));
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#elif SWAR
    while (i + 8 <= len) {
        uint64_t m = str_special(load8(s + i));
        if (m)
            return i + ((size_t)__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    while (i < len && str_plain[s[i]])
        i++;
    return i;
}

/* How a string ended. Returned by value so that nothing of the scan loop
 * has its address taken. */
struct str_end {
    size_t end;     /* index just past the closing quote; 0 on failure */
    uint32_t count; /* code points of the decoded value */
    uint32_t flags; /* JSON_F_ESCAPED, JSON_F_NONASCII */
};

/*
 * The rest of a string that is not plain ASCII: open is the index of its
 * opening quote, s[i] the first byte that is not plain (not the closing
 * quote). Out of line: the scan loop only inlines the plain case.
 */
static struct str_end scan_string_rest(const unsigned char *s, size_t len,
                                       size_t open, size_t i,
                                       struct scan_fail *f)
{
    struct str_end r = {0, 0, 0};
    size_t start = open + 1;
    uint32_t cps = 0, flags = 0;
    for (;;) {
        if (i >= len) {
            fail_at(f, JSON_ERR_EOF, len, "'\"' to close the string");
            return r;
        }
        unsigned c = s[i];
        if (c == '"')
            break;
        cps += (uint32_t)(i - start);
        if (c == '\\') {
            int nonascii = 0;
            i = scan_escape(s, len, i, &nonascii, f);
            if (!i)
                return r;
            flags |= JSON_F_ESCAPED | (nonascii ? JSON_F_NONASCII : 0);
            cps++;
        } else if (c >= 0x80) {
            /* A run of multi-byte characters (text in most scripts). */
            do {
                size_t k = utf8_seq(s, i, len);
                if (UNLIKELY(!k)) {
                    fail_at(f, JSON_ERR_UTF8, i, utf8_why(s, i, len));
                    return r;
                }
                cps++;
                i += k;
            } while (i < len && s[i] >= 0x80);
            flags |= JSON_F_NONASCII;
        } else {
            fail_at(f, JSON_ERR_CONTROL, i,
                    c ? "a control character escaped as \\n, \\t or \\u00XX"
                      : "no NUL byte (write it as \\u0000)");
            return r;
        }
        start = i;
        i = str_skip_plain(s, i, len);
    }
    r.end = i + 1;
    r.count = cps + (uint32_t)(i - start);
    r.flags = flags;
    return r;
}

/* ---- numbers -------------------------------------------------------- */

/* Index of the first byte at or after s[i] that is not a digit. A byte
 * loop: numbers are short (ids, timestamps, readings), and for them it
 * measured faster than SSE2 or SWAR digit tests. */
INLINE size_t skip_digits(const unsigned char *s, size_t i, size_t len)
{
    while (i < len && IS_DIGIT(s[i]))
        i++;
    return i;
}

/* The number starting at s[i]: grammar only. Returns the index just past
 * it, or 0 with f set; *pflags gets JSON_F_INTEGER and JSON_F_NEGATIVE. */
INLINE size_t scan_number(const unsigned char *s, size_t len, size_t i,
                          unsigned *pflags, struct scan_fail *f)
{
    unsigned flags = JSON_F_INTEGER;
    if (s[i] == '-') {
        flags |= JSON_F_NEGATIVE;
        i++;
        if (UNLIKELY(i >= len || !IS_DIGIT(s[i])))
            return fail_at(f, i >= len ? JSON_ERR_EOF : JSON_ERR_NUMBER, i,
                           "a digit after '-'");
    }
    if (s[i] == '0') {
        i++;
        if (UNLIKELY(i < len && IS_DIGIT(s[i])))
            return fail_at(f, JSON_ERR_NUMBER, i,
                           "'.', 'e' or the end of the number after a "
                           "leading 0 (no leading zeros)");
    } else {
        i = skip_digits(s, i + 1, len);
    }
    if (i < len && s[i] == '.') {
        flags = flags & ~(unsigned)JSON_F_INTEGER;
        i++;
        if (UNLIKELY(i >= len || !IS_DIGIT(s[i])))
            return fail_at(f, i >= len ? JSON_ERR_EOF : JSON_ERR_NUMBER, i,
                           "a digit after '.'");
        i = skip_digits(s, i + 1, len);
    }
    if (i < len && (s[i] | 0x20) == 'e') {
        flags = flags & ~(unsigned)JSON_F_INTEGER;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (UNLIKELY(i >= len || !IS_DIGIT(s[i])))
            return fail_at(f, i >= len ? JSON_ERR_EOF : JSON_ERR_NUMBER, i,
                           "a digit in the exponent");
        i = skip_digits(s, i + 1, len);
    }
    *pflags = flags;
    return i;
}

/* ---- the scanner ---------------------------------------------------- */

/* The literal word (true, false, null) at s[i]: 1 if it is there, else 0
 * with f at the first wrong byte. */
static int scan_literal(const unsigned char *s, size_t len, size_t i,
                        const char *word, size_t n, struct scan_fail *f)
{
    if (LIKELY(i + n <= len && memcmp(s + i, word, n) == 0))
        return 1;
    size_t k = 0;
    while (i + k < len && k < n && s[i + k] == (unsigned char)word[k])
        k++;
    fail_at(f, i + k >= len ? JSON_ERR_EOF : JSON_ERR_SYNTAX, i + k,
            word[0] == 't' ? "the literal true"
            : word[0] == 'f' ? "the literal false" : "the literal null");
    return 0;
}

/* Store a token field by field. (gcc turns a struct assignment, and even
 * these stores, into vector shuffles that cost more than they save; the
 * scan function is compiled without SLP vectorization for that reason.) */
INLINE void tok_store(struct json_tok *t, unsigned type, unsigned flags,
                      uint32_t off, uint32_t len, uint32_t next,
                      uint32_t count)
{
    t->type = (uint8_t)type;
    t->flags = (uint8_t)flags;
    t->reserved = 0;
    t->off = off;
    t->len = len;
    t->next = next;
    t->count = count;
}

#define SKIP_WS()                                                            \
    do {                                                                     \
        while (i < len && is_ws[s[i]])                                       \
            i++;                                                             \
    } while (0)

#define FAIL(e_, off_, exp_)                                                 \
    do {                                                                     \
        fail_at(&f, (e_), (off_), (exp_));                                   \
        goto fail;                                                           \
    } while (0)

/* Append a complete token. A container's next holds its parent's index
 * until it closes (the chain of open containers). */
#define EMIT(type_, flags_, off_, len_, next_, count_)                       \
    do {                                                                     \
        if (UNLIKELY(n == cap)) {                                            \
            enum json_error gerr_ = tape_grow(d, len);                       \
            if (gerr_)                                                       \
                FAIL(gerr_, (off_), NULL);                                   \
            toks = d->toks;                                                  \
            cap = d->cap;                                                    \
        }                                                                    \
        tok_store(&toks[n], (type_), (flags_), (uint32_t)(off_),             \
                  (uint32_t)(len_), (next_), (count_));                      \
        n++;                                                                 \
    } while (0)

/* The string whose opening quote is at s[i], as a token; i ends just past
 * it. The plain ASCII case is inline, the rest out of line. */
#define STRING_TOKEN()                                                       \
    do {                                                                     \
        size_t open_ = i;                                                    \
        i = str_skip_plain(s, i + 1, len);                                   \
        if (LIKELY(i < len && s[i] == '"')) {                                \
            i++;                                                             \
            EMIT(JSON_STRING, 0, open_, i - open_, n + 1,                    \
                 (uint32_t)(i - open_ - 2));                                 \
        } else {                                                             \
            struct str_end r_ = scan_string_rest(s, len, open_, i, &f);      \
            if (UNLIKELY(!r_.end))                                           \
                goto fail;                                                   \
            i = r_.end;                                                      \
            EMIT(JSON_STRING, r_.flags, open_, i - open_, n + 1, r_.count);  \
        }                                                                    \
    } while (0)

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
enum json_error json_scan(struct json_doc *d, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    struct json_tok *toks = d->toks, *t;
    /* cur: the innermost open container (NONE at the top level); cnt: its
     * member count, kept out of memory until a child container opens or
     * it closes; room: how many more levels may open. Few live variables
     * matter: the loop must keep them all in registers. */
    uint32_t n = 0, cap = d->cap, cur = NONE, cnt = 0;
    uint32_t room = d->max_depth ? d->max_depth : WEIR_DEFAULT_MAX_DEPTH;
    uint32_t limit;
    size_t i = 0, start;
    unsigned nf;
    struct scan_fail f = {0, NULL, JSON_OK};

    d->src = src;
    d->src_len = len;
    if (len > JSON_MAX_INPUT)
        FAIL(JSON_ERR_TOO_LARGE, 0, NULL);
    limit = tape_limit(d, len);
    if (cap > limit)
        cap = limit; /* a tape grown by an earlier scan must not lift it */
    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        FAIL(JSON_ERR_BOM, 0, NULL);

value:
    if (UNLIKELY(i >= len || s[i] <= ' ')) {
        SKIP_WS();
        if (i >= len) {
            if (n == 0)
                FAIL(JSON_ERR_EMPTY, i, "a JSON value");
            FAIL(JSON_ERR_EOF, i, "a value");
        }
    }
    switch (value_class[s[i]]) {
    case V_STR:
        STRING_TOKEN();
        goto after_value;
    case V_NUM:
        start = i;
        i = scan_number(s, len, i, &nf, &f);
        if (UNLIKELY(!i))
            goto fail;
        EMIT(JSON_NUMBER, nf, start, i - start, n + 1, 0);
        goto after_value;
    case V_OBJ:
        if (UNLIKELY(room-- == 0))
            FAIL(JSON_ERR_DEPTH, i, NULL);
        if (cur != NONE)
            toks[cur].count = cnt;
        EMIT(JSON_OBJECT, 0, i, 0, cur, 0);
        cur = n - 1;
        cnt = 0;
        i++;
        if (UNLIKELY(i < len && s[i] <= ' '))
            SKIP_WS();
        if (LIKELY(i < len && s[i] == '"'))
            goto key;
        if (i < len && s[i] == '}')
            goto close;
        FAIL(i >= len ? JSON_ERR_EOF : JSON_ERR_SYNTAX, i,
             "'\"' to begin an object key, or '}'");
    case V_ARR:
        if (UNLIKELY(room-- == 0))
            FAIL(JSON_ERR_DEPTH, i, NULL);
        if (cur != NONE)
            toks[cur].count = cnt;
        EMIT(JSON_ARRAY, 0, i, 0, cur, 0);
        cur = n - 1;
        cnt = 1;
        i++;
        if (UNLIKELY(i < len && s[i] <= ' '))
            SKIP_WS();
        if (i < len && s[i] == ']') {
            cnt = 0;
            goto close;
        }
        goto value;
    case V_TRUE:
        if (UNLIKELY(!scan_literal(s, len, i, "true", 4, &f)))
            goto fail;
        EMIT(JSON_TRUE, 0, i, 4, n + 1, 0);
        i += 4;
        goto after_value;
    case V_FALSE:
        if (UNLIKELY(!scan_literal(s, len, i, "false", 5, &f)))
            goto fail;
        EMIT(JSON_FALSE, 0, i, 5, n + 1, 0);
        i += 5;
        goto after_value;
    case V_NULL:
        if (UNLIKELY(!scan_literal(s, len, i, "null", 4, &f)))
            goto fail;
        EMIT(JSON_NULL, 0, i, 4, n + 1, 0);
        i += 4;
        goto after_value;
    default:
        if (i == 0 && len >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) ||
                                   (s[0] == 0xFE && s[1] == 0xFF)))
            FAIL(JSON_ERR_SYNTAX, 0, "UTF-8 JSON, not UTF-16 (this starts "
                                     "with a UTF-16 byte order mark)");
        FAIL(JSON_ERR_SYNTAX, i, "a value");
    }

key:
    /* s[i] is the '"' of a key in object cur. */
    cnt++;
    STRING_TOKEN();
    if (UNLIKELY(i >= len || s[i] != ':')) {
        SKIP_WS();
        if (UNLIKELY(i >= len || s[i] != ':'))
            FAIL(i >= len ? JSON_ERR_EOF : JSON_ERR_SYNTAX, i,
                 "':' after object key");
    }
    i++;
    goto value;

after_value:
    if (UNLIKELY(cur == NONE))
        goto done;
    if (UNLIKELY(i >= len || s[i] <= ' ')) {
        SKIP_WS();
        if (UNLIKELY(i >= len))
            FAIL(JSON_ERR_EOF, i, toks[cur].type == JSON_OBJECT
                                      ? "',' or '}' after object member"
                                      : "',' or ']' after array element");
    }
    if (toks[cur].type == JSON_OBJECT) {
        if (LIKELY(s[i] == ',')) {
            i++;
            if (UNLIKELY(i >= len || s[i] != '"')) {
                SKIP_WS();
                if (UNLIKELY(i >= len || s[i] != '"'))
                    FAIL(i >= len ? JSON_ERR_EOF : JSON_ERR_SYNTAX, i,
                         "'\"' to begin an object key after ','");
            }
            goto key;
        }
        if (LIKELY(s[i] == '}'))
            goto close;
        FAIL(JSON_ERR_SYNTAX, i, "',' or '}' after object member");
    }
    if (LIKELY(s[i] == ',')) {
        i++;
        cnt++;
        goto value;
    }
    if (LIKELY(s[i] == ']'))
        goto close;
    FAIL(JSON_ERR_SYNTAX, i, "',' or ']' after array element");

close:
    /* s[i] closes container cur. */
    t = &toks[cur];
    cur = t->next;
    t->next = n;
    t->len = (uint32_t)(i + 1 - t->off);
    t->count = cnt;
    room++;
    i++;
    if (cur != NONE)
        cnt = toks[cur].count;
    goto after_value;

done:
    if (UNLIKELY(i < len)) {
        SKIP_WS();
        if (i < len)
            FAIL(JSON_ERR_TRAILING, i,
                 "nothing but whitespace after the value");
    }
    d->ntoks = n;
    d->err = JSON_OK;
    d->err_off = 0;
    d->expected = NULL;
    return JSON_OK;

fail:
    d->ntoks = 0;
    d->err = f.err;
    d->err_off = f.off;
    d->expected = f.expected;
    return f.err;
}

/* ---- errors --------------------------------------------------------- */

const char *json_strerror(enum json_error err)
{
    switch (err) {
    case JSON_OK: return "valid JSON";
    case JSON_ERR_EMPTY: return "no JSON value (empty or only whitespace)";
    case JSON_ERR_SYNTAX: return "unexpected character";
    case JSON_ERR_EOF: return "input ended inside a value";
    case JSON_ERR_UTF8: return "invalid UTF-8";
    case JSON_ERR_ESCAPE: return "invalid backslash escape";
    case JSON_ERR_SURROGATE: return "unpaired UTF-16 surrogate escape";
    case JSON_ERR_CONTROL: return "unescaped control character in a string";
    case JSON_ERR_NUMBER: return "malformed number";
    case JSON_ERR_DEPTH: return "nesting too deep";
    case JSON_ERR_TRAILING: return "unexpected data after the JSON value";
    case JSON_ERR_TOO_LARGE: return "JSON document too large";
    case JSON_ERR_NOMEM: return "out of memory for the JSON token tape";
    case JSON_ERR_BOM: return "starts with a UTF-8 byte order mark";
    }
    return "unknown JSON error";
}

/* "'x'", "end of input", "byte 0x00 (NUL)" ... for the byte at off. */
static void describe_found(const struct json_doc *d, char *out, size_t cap)
{
    if (!d->src || d->err_off >= d->src_len) {
        snprintf(out, cap, "end of input");
        return;
    }
    unsigned c = (unsigned char)d->src[d->err_off];
    if (c > 0x20 && c < 0x7f)
        snprintf(out, cap, "'%c'", c);
    else if (c == ' ')
        snprintf(out, cap, "a space");
    else if (c == '\n')
        snprintf(out, cap, "a newline (0x0A)");
    else if (c == '\t')
        snprintf(out, cap, "a tab (0x09)");
    else if (c == 0)
        snprintf(out, cap, "a NUL byte (0x00)");
    else
        snprintf(out, cap, "byte 0x%02X", c);
}

char *json_describe_error(const struct json_doc *d, char *out, size_t cap)
{
    char found[32];
    if (!cap)
        return out;
    switch (d->err) {
    case JSON_OK:
        snprintf(out, cap, "valid JSON");
        return out;
    case JSON_ERR_EMPTY:
        snprintf(out, cap, "invalid JSON: empty, no value");
        return out;
    case JSON_ERR_BOM:
        snprintf(out, cap,
                 "invalid JSON at byte 0: starts with a UTF-8 byte order mark "
                 "(EF BB BF), which RFC 8259 section 8.1 forbids; send the "
                 "JSON without it");
        return out;
    case JSON_ERR_TOO_LARGE:
        snprintf(out, cap, "invalid JSON: %s (limit: %s)",
                 json_strerror(d->err),
                 d->src_len > JSON_MAX_INPUT ? "4 GiB of input"
                                             : "max_toks tokens");
        return out;
    case JSON_ERR_NOMEM:
        snprintf(out, cap, "JSON scan failed: %s", json_strerror(d->err));
        return out;
    case JSON_ERR_DEPTH:
        snprintf(out, cap,
                 "invalid JSON at byte %zu: nesting deeper than %u levels",
                 d->err_off,
                 d->max_depth ? d->max_depth : WEIR_DEFAULT_MAX_DEPTH);
        return out;
    default:
        break;
    }
    describe_found(d, found, sizeof found);
    if (d->expected)
        snprintf(out, cap, "invalid JSON at byte %zu: expected %s, found %s",
                 d->err_off, d->expected, found);
    else
        snprintf(out, cap, "invalid JSON at byte %zu: %s, found %s",
                 d->err_off, json_strerror(d->err), found);
    return out;
}

/* ---- numbers after the scan ----------------------------------------- */

/* A valid number's text split into its parts. */
struct num_parts {
    int neg;
    const unsigned char *p;
    size_t ib, ie;   /* integer digits p[ib..ie) */
    size_t fb, fe;   /* fraction digits p[fb..fe) (empty if none) */
    int64_t exp;     /* exponent, saturated at +/-EXP_SAT */
};

#define EXP_SAT INT64_C(1000000000000000) /* 10^15 */

static void num_split(const char *text, size_t n, struct num_parts *np)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    np->p = p;
    np->neg = n > 0 && p[0] == '-';
    i = (size_t)np->neg;
    np->ib = i;
    while (i < n && IS_DIGIT(p[i]))
        i++;
    np->ie = i;
    np->fb = np->fe = i;
    if (i < n && p[i] == '.') {
        np->fb = ++i;
        while (i < n && IS_DIGIT(p[i]))
            i++;
        np->fe = i;
    }
    np->exp = 0;
    if (i < n && (p[i] | 0x20) == 'e') {
        int eneg = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        int64_t e = 0;
        for (; i < n && IS_DIGIT(p[i]); i++) {
            e = e * 10 + (p[i] - '0');
            if (e > EXP_SAT)
                e = EXP_SAT;
        }
        np->exp = eneg ? -e : e;
    }
}

/* Digit k of the mantissa (integer digits then fraction digits). */
static inline int num_digit(const struct num_parts *np, size_t k)
{
    size_t il = np->ie - np->ib;
    return k < il ? np->p[np->ib + k] - '0' : np->p[np->fb + k - il] - '0';
}

/*
 * Normalized form: significant digits are mantissa digits [first, last]
 * (no leading or trailing zeros), value = 0.D x 10^point. Returns 0 for a
 * zero value.
 */
static int num_norm(const struct num_parts *np, size_t *first, size_t *last,
                    int64_t *point)
{
    size_t il = np->ie - np->ib, nd = il + (np->fe - np->fb), k;
    for (k = 0; k < nd && num_digit(np, k) == 0; k++)
        ;
    if (k == nd)
        return 0;
    *first = k;
    *point = (int64_t)il - (int64_t)k + np->exp;
    for (k = nd; num_digit(np, k - 1) == 0; k--)
        ;
    *last = k - 1;
    return 1;
}

static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_make(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* strtod on a copy (the token is not NUL-terminated), in the C locale so
 * that a process locale with a decimal comma cannot change the value. */
static double num_strtod(const char *p, size_t n)
{
    char small[128], *buf = small;
    double v;
    if (n >= sizeof small) {
        buf = malloc(n + 1);
        if (!buf)
            return NAN;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    pthread_once(&c_locale_once, c_locale_make);
    if (c_locale)
        v = strtod_l(buf, NULL, c_locale);
    else
        v = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return v;
}

double json_num_double(const struct json_doc *d, const struct json_tok *t)
{
    const unsigned char *p = (const unsigned char *)d->src + t->off;
    size_t n = t->len, i = 0;
    uint64_t m = 0;
    int nd = 0, neg = 0;
    int64_t e = 0;

    if (t->type != JSON_NUMBER)
        return NAN;
    /* Clinger's fast path: a mantissa below 2^53 times or divided by an
     * exact power of ten up to 10^22 rounds once, hence correctly. */
    if (p[0] == '-') {
        neg = 1;
        i++;
    }
    for (; i < n && IS_DIGIT(p[i]); i++) {
        if (nd || p[i] != '0')
            nd++;
        m = m * 10 + (uint64_t)(p[i] - '0');
        if (nd > 19)
            goto slow;
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n && IS_DIGIT(p[i]); i++) {
            if (nd || p[i] != '0')
                nd++;
            m = m * 10 + (uint64_t)(p[i] - '0');
            e--;
            if (nd > 19)
                goto slow;
        }
    }
    if (i < n)
        goto slow; /* exponent: rare in telemetry, let strtod do it */
    if (m > (UINT64_C(1) << 53) || e < -22)
        goto slow;
    double v = e ? (double)m / pow10_exact[-e] : (double)m;
    return neg ? -v : v;
slow:
    return num_strtod((const char *)p, n);
}

int json_num_int64(const struct json_doc *d, const struct json_tok *t,
                   int64_t *out)
{
    struct num_parts np;
    size_t first, last;
    int64_t point;
    if (t->type != JSON_NUMBER)
        return 0;
    num_split(d->src + t->off, t->len, &np);
    if (!num_norm(&np, &first, &last, &point)) {
        *out = 0;
        return 1;
    }
    /* value = D x 10^(point - ndigits(D)); an integer iff that exponent is
     * not negative (D ends in a nonzero digit). */
    int64_t sd = (int64_t)(last - first + 1);
    if (point < sd || point > 19)
        return 0;
    uint64_t v = 0;
    for (size_t k = first; k <= last; k++)
        v = v * 10 + (uint64_t)num_digit(&np, k);
    for (int64_t k = sd; k < point; k++)
        v *= 10; /* at most 19 digits: below 2^64 */
    if (np.neg) {
        if (v > (UINT64_C(1) << 63))
            return 0;
        *out = v == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)v;
    }
    return 1;
}

int json_num_is_integer(const struct json_doc *d, const struct json_tok *t)
{
    struct num_parts np;
    size_t first, last;
    int64_t point;
    if (t->type != JSON_NUMBER)
        return 0;
    if (t->flags & JSON_F_INTEGER)
        return 1;
    num_split(d->src + t->off, t->len, &np);
    if (!num_norm(&np, &first, &last, &point))
        return 1;
    return point >= (int64_t)(last - first + 1);
}

int json_num_cmp_text(const char *a, size_t an, const char *b, size_t bn)
{
    struct num_parts pa, pb;
    size_t fa = 0, la = 0, fb = 0, lb = 0;
    int64_t xa = 0, xb = 0;
    num_split(a, an, &pa);
    num_split(b, bn, &pb);
    int za = !num_norm(&pa, &fa, &la, &xa);
    int zb = !num_norm(&pb, &fb, &lb, &xb);
    int sa = za ? 0 : pa.neg ? -1 : 1;
    int sb = zb ? 0 : pb.neg ? -1 : 1;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    /* Same sign: compare magnitudes, then flip for negatives. */
    int mag = 0;
    if (xa != xb) {
        mag = xa < xb ? -1 : 1;
    } else {
        size_t ka = fa, kb = fb;
        for (; ka <= la && kb <= lb; ka++, kb++) {
            int da = num_digit(&pa, ka), db = num_digit(&pb, kb);
            if (da != db) {
                mag = da < db ? -1 : 1;
                break;
            }
        }
        if (!mag && (ka <= la || kb <= lb))
            mag = ka <= la ? 1 : -1;
    }
    return sa < 0 ? -mag : mag;
}

int json_num_cmp(const struct json_doc *da, const struct json_tok *ta,
                 const struct json_doc *db, const struct json_tok *tb)
{
    return json_num_cmp_text(da->src + ta->off, ta->len, db->src + tb->off,
                             tb->len);
}

/* (a * b) mod m without overflow for a, b < m < 2^64. */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    return (uint64_t)((unsigned __int128)a * b % m);
}

int json_num_multiple_text(const char *a, size_t an, const char *b, size_t bn)
{
    struct num_parts pa, pb;
    size_t fa = 0, la = 0, fb = 0, lb = 0;
    int64_t xa = 0, xb = 0;
    num_split(a, an, &pa);
    num_split(b, bn, &pb);
    if (!num_norm(&pb, &fb, &lb, &xb))
        return -1;
    if (!num_norm(&pa, &fa, &la, &xa))
        return 1;
    if (la - fa + 1 > 19 || lb - fb + 1 > 19)
        return -1;
    /* a = A x 10^ea and b = B x 10^eb with A, B integers free of trailing
     * zeros. If ea < eb, a/b = A / (B x 10^(eb-ea)) needs A divisible by
     * 10, which it is not. Otherwise test A x 10^(ea-eb) mod B. */
    uint64_t A = 0, B = 0;
    for (size_t k = fa; k <= la; k++)
        A = A * 10 + (uint64_t)num_digit(&pa, k);
    for (size_t k = fb; k <= lb; k++)
        B = B * 10 + (uint64_t)num_digit(&pb, k);
    int64_t ea = xa - (int64_t)(la - fa + 1), eb = xb - (int64_t)(lb - fb + 1);
    if (ea < eb)
        return 0;
    uint64_t r = A % B, p = 1 % B, base = 10 % B;
    for (int64_t k = ea - eb; k > 0; k >>= 1) {
        if (k & 1)
            p = mulmod(p, base, B);
        base = mulmod(base, base, B);
    }
    return mulmod(r, p, B) == 0;
}

/* ---- strings after the scan ----------------------------------------- */

/* Decode the escape at p[i] (after the backslash is p[i+1]) into out;
 * returns the number of bytes written (1-4) and advances *pi. The scanner
 * has checked it. */
static size_t decode_escape(const unsigned char *p, size_t *pi,
                            unsigned char out[4])
{
    size_t i = *pi;
    unsigned cp;
    switch (p[i + 1]) {
    case 'b': out[0] = '\b'; *pi = i + 2; return 1;
    case 'f': out[0] = '\f'; *pi = i + 2; return 1;
    case 'n': out[0] = '\n'; *pi = i + 2; return 1;
    case 'r': out[0] = '\r'; *pi = i + 2; return 1;
    case 't': out[0] = '\t'; *pi = i + 2; return 1;
    case 'u': break;
    default: out[0] = p[i + 1]; *pi = i + 2; return 1;
    }
    cp = (unsigned)(HEXVAL(p[i + 2]) << 12 | HEXVAL(p[i + 3]) << 8 |
                    HEXVAL(p[i + 4]) << 4 | HEXVAL(p[i + 5]));
    *pi = i + 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo = (unsigned)(HEXVAL(p[i + 8]) << 12 |
                                 HEXVAL(p[i + 9]) << 8 |
                                 HEXVAL(p[i + 10]) << 4 | HEXVAL(p[i + 11]));
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *pi = i + 12;
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A cursor over a string token's decoded bytes, a run at a time: either a
 * stretch of raw bytes with no escape, or one decoded escape. */
struct str_cur {
    const unsigned char *p;
    size_t i, end;
    unsigned char esc[4];
};

static void str_cur_init(struct str_cur *c, const struct json_doc *d,
                         const struct json_tok *t)
{
    c->p = (const unsigned char *)d->src + t->off;
    c->i = 1;
    c->end = t->len - 1;
}

/* The next run (*run, its length), or 0 at the end. */
static size_t str_cur_next(struct str_cur *c, int escaped,
                           const unsigned char **run)
{
    if (c->i >= c->end)
        return 0;
    if (c->p[c->i] == '\\') {
        *run = c->esc;
        return decode_escape(c->p, &c->i, c->esc);
    }
    size_t start = c->i;
    const unsigned char *bs =
        escaped ? memchr(c->p + start, '\\', c->end - start) : NULL;
    c->i = bs ? (size_t)(bs - c->p) : c->end;
    *run = c->p + start;
    return c->i - start;
}

size_t json_str_decode(const struct json_doc *d, const struct json_tok *t,
                       char *out, size_t cap)
{
    struct str_cur c;
    const unsigned char *run;
    size_t k, total = 0;
    if (t->type != JSON_STRING)
        return 0;
    str_cur_init(&c, d, t);
    int escaped = t->flags & JSON_F_ESCAPED;
    while ((k = str_cur_next(&c, escaped, &run)) > 0) {
        if (total < cap)
            memcpy(out + total, run, k < cap - total ? k : cap - total);
        total += k;
    }
    return total;
}

int json_str_eq(const struct json_doc *d, const struct json_tok *t,
                const char *s, size_t n)
{
    struct str_cur c;
    const unsigned char *run;
    size_t k, pos = 0;
    if (t->type != JSON_STRING)
        return 0;
    if (!(t->flags & JSON_F_ESCAPED))
        return t->len - 2 == n && memcmp(d->src + t->off + 1, s, n) == 0;
    if (t->count > n)
        return 0; /* more code points than bytes */
    str_cur_init(&c, d, t);
    while ((k = str_cur_next(&c, 1, &run)) > 0) {
        if (k > n - pos || memcmp(s + pos, run, k) != 0)
            return 0;
        pos += k;
    }
    return pos == n;
}

int json_str_eq_tok(const struct json_doc *da, const struct json_tok *ta,
                    const struct json_doc *db, const struct json_tok *tb)
{
    struct str_cur ca, cb;
    const unsigned char *ra = NULL, *rb = NULL;
    size_t na = 0, nb = 0;
    if (ta->type != JSON_STRING || tb->type != JSON_STRING)
        return 0;
    if (ta->count != tb->count)
        return 0; /* code point counts differ */
    if (!(ta->flags & JSON_F_ESCAPED))
        return json_str_eq(db, tb, da->src + ta->off + 1, ta->len - 2);
    if (!(tb->flags & JSON_F_ESCAPED))
        return json_str_eq(da, ta, db->src + tb->off + 1, tb->len - 2);
    str_cur_init(&ca, da, ta);
    str_cur_init(&cb, db, tb);
    for (;;) {
        if (!na)
            na = str_cur_next(&ca, 1, &ra);
        if (!nb)
            nb = str_cur_next(&cb, 1, &rb);
        if (!na || !nb)
            return na == nb;
        size_t k = na < nb ? na : nb;
        if (memcmp(ra, rb, k) != 0)
            return 0;
        ra += k;
        rb += k;
        na -= k;
        nb -= k;
        /* A run of an escape lives in the cursor's esc[]: it must be used
         * up before the cursor moves, which the min() above ensures. */
    }
}

/* ---- walking the tape ----------------------------------------------- */

int json_lookup(const struct json_doc *d, uint32_t tok, const char *dotted,
                size_t n)
{
    size_t pos = 0;
    if (tok >= d->ntoks)
        return -1;
    for (;;) {
        const char *dot = memchr(dotted + pos, '.', n - pos);
        size_t seg_end = dot ? (size_t)(dot - dotted) : n;
        const struct json_tok *o = &d->toks[tok];
        if (o->type != JSON_OBJECT)
            return -1;
        uint32_t k = tok + 1, found = NONE;
        for (uint32_t m = 0; m < o->count; m++) {
            if (json_str_eq(d, &d->toks[k], dotted + pos, seg_end - pos)) {
                found = k + 1;
                break;
            }
            k = d->toks[k + 1].next;
        }
        if (found == NONE)
            return -1;
        if (seg_end == n)
            return (int)found;
        tok = found;
        pos = seg_end + 1;
    }
}

/* 1 if every member of object a has a member of object b with an equal
 * key and an equal value. */
static int members_in(const struct json_doc *da, uint32_t a,
                      const struct json_doc *db, uint32_t b)
{
    uint32_t x = a + 1;
    for (uint32_t k = 0; k < da->toks[a].count; k++) {
        uint32_t y = b + 1, m;
        for (m = 0; m < db->toks[b].count; m++) {
            if (json_str_eq_tok(da, &da->toks[x], db, &db->toks[y]) &&
                json_value_eq(da, x + 1, db, y + 1))
                break;
            y = db->toks[y + 1].next;
        }
        if (m == db->toks[b].count)
            return 0;
        x = da->toks[x + 1].next;
    }
    return 1;
}

int json_value_eq(const struct json_doc *da, uint32_t a,
                  const struct json_doc *db, uint32_t b)
{
    const struct json_tok *ta = &da->toks[a], *tb = &db->toks[b];
    if (ta->type != tb->type)
        return 0;
    switch (ta->type) {
    case JSON_NULL: case JSON_TRUE: case JSON_FALSE:
        return 1;
    case JSON_NUMBER:
        return json_num_cmp(da, ta, db, tb) == 0;
    case JSON_STRING:
        return json_str_eq_tok(da, ta, db, tb);
    case JSON_ARRAY: {
        if (ta->count != tb->count)
            return 0;
        uint32_t x = a + 1, y = b + 1;
        for (uint32_t k = 0; k < ta->count; k++) {
            if (!json_value_eq(da, x, db, y))
                return 0;
            x = da->toks[x].next;
            y = db->toks[y].next;
        }
        return 1;
    }
    case JSON_OBJECT:
        /* Members as a set of (key, value) pairs, checked both ways so
         * that duplicate keys cannot make unequal objects match. */
        return ta->count == tb->count && members_in(da, a, db, b) &&
               members_in(db, b, da, a);
    }
    return 0;
}

/* FNV-1a of a key's decoded bytes. */
static uint64_t key_hash(const struct json_doc *d, const struct json_tok *t)
{
    struct str_cur c;
    const unsigned char *run;
    size_t k;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    str_cur_init(&c, d, t);
    while ((k = str_cur_next(&c, t->flags & JSON_F_ESCAPED, &run)) > 0)
        for (size_t j = 0; j < k; j++)
            h = (h ^ run[j]) * UINT64_C(0x100000001b3);
    return h;
}

/* Two keys of one doc equal once decoded. Without escapes the raw bytes
 * are the values: compare lengths and first bytes before calling memcmp,
 * which settles nearly every pair of distinct keys. */
static inline int keys_equal(const struct json_doc *d, const struct json_tok *a,
                             const struct json_tok *b)
{
    if (!((a->flags | b->flags) & JSON_F_ESCAPED))
        return a->len == b->len &&
               (a->len == 2 || d->src[a->off + 1] == d->src[b->off + 1]) &&
               memcmp(d->src + a->off + 1, d->src + b->off + 1, a->len - 2) == 0;
    return json_str_eq_tok(d, a, d, b);
}

int json_object_find_duplicate(const struct json_doc *d, uint32_t obj)
{
    const struct json_tok *o;
    if (obj >= d->ntoks || (o = &d->toks[obj])->type != JSON_OBJECT ||
        o->count < 2)
        return -1;
    if (o->count > 16) {
        /* Open addressing over key token indexes, load <= 1/2. */
        size_t size = 64;
        while (size < (size_t)o->count * 2)
            size *= 2;
        uint32_t *tab = malloc(size * sizeof *tab);
        if (tab) {
            int dup = -1;
            memset(tab, 0xff, size * sizeof *tab);
            uint32_t k = obj + 1;
            for (uint32_t m = 0; m < o->count && dup < 0; m++) {
                size_t h = (size_t)key_hash(d, &d->toks[k]) & (size - 1);
                for (; tab[h] != NONE; h = (h + 1) & (size - 1)) {
                    if (keys_equal(d, &d->toks[tab[h]], &d->toks[k])) {
                        dup = (int)k;
                        break;
                    }
                }
                tab[h] = k;
                k = d->toks[k + 1].next;
            }
            free(tab);
            return dup;
        }
    }
    uint32_t k = d->toks[obj + 2].next;
    for (uint32_t m = 1; m < o->count; m++) {
        const struct json_tok *kt = &d->toks[k];
        uint32_t j = obj + 1;
        for (uint32_t p = 0; p < m; p++) {
            if (keys_equal(d, &d->toks[j], kt))
                return (int)k;
            j = d->toks[j + 1].next;
        }
        k = d->toks[k + 1].next;
    }
    return -1;
}

int json_doc_find_duplicate(const struct json_doc *d)
{
    for (uint32_t i = 0; i < d->ntoks; i++) {
        if (d->toks[i].type == JSON_OBJECT && d->toks[i].count > 1) {
            int dup = json_object_find_duplicate(d, i);
            if (dup >= 0)
                return dup;
        }
    }
    return -1;
}
