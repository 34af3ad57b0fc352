/*
 * validate.c - the validator: a walk of the compiled schema (compiled.h)
 * over a record's token tape.
 *
 * Speed comes from doing little per record: no allocation (scratch memory
 * lives in the validator and is reused), property names matched by length
 * and memcmp against the raw bytes (escaped keys are decoded, rarely),
 * `required` as a bit mask filled while the members are visited once,
 * numbers compared as decimal text without strtod, and no message text at
 * all unless the record fails. A failing record is walked a second time in
 * "report" mode, which keeps a path stack and formats the first failure.
 *
 * Applicators that try subschemas (anyOf, oneOf, not, if, contains) run
 * them as trials: reporting is switched off inside, and lax coercions made
 * inside a failed trial are rolled back.
 *
 * unevaluatedProperties/unevaluatedItems: a node that has one passes a bit
 * set (one bit per member or item) down to everything that applies to the
 * same instance; properties, patternProperties, additionalProperties,
 * prefixItems, items and contains set the bits of what they evaluated;
 * successful branches of anyOf/oneOf/if merge theirs in. Nodes called with
 * no bit set (the usual case) do none of that work.
 */
#include "schema/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/limits.h"
#include "schema/compiled.h"
#include "schema/decimal.h"
#include "schema/format.h"
#include "schema/regex.h"

#define VALUE_QUOTE_MAX 60

/* A step of the path to the value being checked (report mode only). */
struct pseg {
    const struct json_doc *d;
    uint32_t tok;   /* key token, when is_key */
    uint32_t idx;   /* array index otherwise */
    int is_key;
};

/* A lax coercion: replace src[off..off+len) by lit[lit_off..+lit_len). */
struct rewrite {
    uint32_t off, len;
    uint32_t lit_off, lit_len;
};

struct chunk {
    uint64_t *p;
    size_t cap, used;
};

struct validator {
    const struct schema *s;
    struct json_doc doc;   /* the record */
    struct json_doc cdoc;  /* a coerced scalar (lax) */
    struct json_doc odoc;  /* the rewritten record (lax) */
    struct buf dec;        /* decoded strings for pattern and format */
    struct buf keyb;       /* a decoded key */
    struct buf eqb;        /* a decoded string for equality */
    struct buf ctext;      /* text of cdoc */
    struct buf lit;        /* coerced literals */
    struct buf out;        /* rewritten record */
    struct rewrite *rw;
    uint32_t nrw, caprw;
    struct regex_scratch *rx;
    struct chunk *sk;      /* bit sets and sort space */
    uint32_t nsk, capsk, skcur;
    uint64_t *dupfree;     /* objects (by token) known to have unique keys */
    uint32_t *scope;       /* dynamic scope: resource indices */
    uint32_t nscope;
    struct pseg *path;
    uint32_t npath, cappath;
    const char *out_ptr;
    size_t out_len;
    const struct json_doc *last;
    unsigned ncoerced;
};

struct vctx {
    struct validator *v;
    const struct schema *s;
    struct verdict *vd;
    int report;   /* describe the first failure in vd */
    int lax;      /* coercions allowed */
    int done;     /* vd holds a description */
    uint32_t depth;
    uint32_t max_depth;  /* copies of schema fields, one load fewer per node */
    int dynamic;
};

static int eval(struct vctx *c, const struct snode *n, const struct json_doc *d,
                uint32_t ti, uint64_t *ev);

/* ------------------------------------------------------------------ */
/* Scratch memory: chunks that never move, so pointers stay valid.     */

struct skmark {
    uint32_t chunk;
    size_t used;
};

static struct skmark sk_mark(const struct validator *v)
{
    struct skmark m = {v->skcur, v->skcur < v->nsk ? v->sk[v->skcur].used : 0};
    return m;
}

static void sk_release(struct validator *v, struct skmark m)
{
    v->skcur = m.chunk;
    if (m.chunk < v->nsk)
        v->sk[m.chunk].used = m.used;
}

static uint64_t *sk_alloc(struct validator *v, size_t words)
{
    for (;;) {
        if (v->skcur < v->nsk) {
            struct chunk *ch = &v->sk[v->skcur];
            if (ch->cap - ch->used >= words) {
                uint64_t *p = ch->p + ch->used;
                ch->used += words;
                memset(p, 0, words * sizeof *p);
                return p;
            }
            if (v->skcur + 1 < v->nsk) {
                v->skcur++;
                v->sk[v->skcur].used = 0;
                continue;
            }
        }
        /* A new chunk at the end (only while the scratch space grows). */
        if (v->nsk == v->capsk) {
            uint32_t nc = v->capsk ? v->capsk * 2 : 8;
            struct chunk *q = realloc(v->sk, nc * sizeof *q);
            if (!q)
                return NULL;
            v->sk = q;
            v->capsk = nc;
        }
        size_t cap = words > 8192 ? words : 8192;
        uint64_t *p = malloc(cap * sizeof *p);
        if (!p)
            return NULL;
        v->sk[v->nsk] = (struct chunk){p, cap, 0};
        v->skcur = v->nsk++;
    }
}

static inline void bit_set(uint64_t *b, uint32_t i)
{
    b[i >> 6] |= UINT64_C(1) << (i & 63);
}

static inline int bit_get(const uint64_t *b, uint32_t i)
{
    return (int)((b[i >> 6] >> (i & 63)) & 1);
}

static inline size_t bit_words(uint32_t n)
{
    return ((size_t)n + 63) / 64 + 1;
}

/* ------------------------------------------------------------------ */
/* Strings.                                                            */

/* The decoded bytes of string token t: the raw bytes when there is no
 * escape, else decoded into b. NULL when out of memory. */
static const char *str_bytes(struct buf *b, const struct json_doc *d,
                             const struct json_tok *t, size_t *n)
{
    if (!(t->flags & JSON_F_ESCAPED)) {
        *n = t->len - 2;
        return d->src + t->off + 1;
    }
    b->len = 0;
    if (buf_reserve(b, t->len))
        return NULL;
    *n = json_str_decode(d, t, b->data, t->len);
    return b->data;
}

/* Names and enum values are short: two overlapping word compares beat a
 * call to memcmp, which dominated the profile. Every load stays inside
 * a[0..n) and b[0..n). */
static inline int bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        if (n > 16)
            return memcmp(a, b, n) == 0;
        uint64_t x, y, x2, y2;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&x2, a + n - 8, 8);
        memcpy(&y2, b + n - 8, 8);
        return ((x ^ y) | (x2 ^ y2)) == 0;
    }
    if (n >= 4) {
        uint32_t x, y, x2, y2;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        memcpy(&x2, a + n - 4, 4);
        memcpy(&y2, b + n - 4, 4);
        return ((x ^ y) | (x2 ^ y2)) == 0;
    }
    if (n == 0)
        return 1;
    return a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1];
}

static inline int str_eq(const struct json_doc *d, const struct json_tok *t,
                         const char *s, size_t n)
{
    if (!(t->flags & JSON_F_ESCAPED))
        return t->len - 2 == n && bytes_eq(d->src + t->off + 1, s, n);
    return json_str_eq(d, t, s, n);
}

/* Two string tokens equal after decoding. */
static int tok_str_eq(struct validator *v, const struct json_doc *a,
                      const struct json_tok *ta, const struct json_doc *b,
                      const struct json_tok *tb)
{
    if (!(ta->flags & JSON_F_ESCAPED))
        return str_eq(b, tb, a->src + ta->off + 1, ta->len - 2);
    if (!(tb->flags & JSON_F_ESCAPED))
        return str_eq(a, ta, b->src + tb->off + 1, tb->len - 2);
    size_t n;
    const char *p = str_bytes(&v->eqb, a, ta, &n);
    if (!p)
        return -1;
    return json_str_eq(b, tb, p, n);
}

/* ------------------------------------------------------------------ */
/* Equality and hashing of JSON values (enum, const, uniqueItems).     */

static int num_of(const struct json_doc *d, const struct json_tok *t,
                  struct decnum *x)
{
    return decnum_parse(x, d->src + t->off, t->len);
}

static int json_eq(struct validator *v, const struct json_doc *a, uint32_t ia,
                   const struct json_doc *b, uint32_t ib)
{
    const struct json_tok *ta = &a->toks[ia], *tb = &b->toks[ib];
    if (ta->type != tb->type)
        return 0;
    switch (ta->type) {
    case JSON_NUMBER: {
        struct decnum x, y;
        if (num_of(a, ta, &x) || num_of(b, tb, &y))
            return 0;
        return decnum_cmp(&x, &y) == 0;
    }
    case JSON_STRING:
        return tok_str_eq(v, a, ta, b, tb);
    case JSON_ARRAY: {
        if (ta->count != tb->count)
            return 0;
        uint32_t i = ia + 1, j = ib + 1;
        for (uint32_t k = 0; k < ta->count; k++) {
            int r = json_eq(v, a, i, b, j);
            if (r <= 0)
                return r;
            i = a->toks[i].next;
            j = b->toks[j].next;
        }
        return 1;
    }
    case JSON_OBJECT: {
        if (ta->count != tb->count)
            return 0;
        uint32_t i = ia + 1;
        for (uint32_t k = 0; k < ta->count; k++) {
            uint32_t j = ib + 1, found = 0;
            for (uint32_t q = 0; q < tb->count; q++) {
                int r = tok_str_eq(v, a, &a->toks[i], b, &b->toks[j]);
                if (r < 0)
                    return r;
                if (r) {
                    r = json_eq(v, a, i + 1, b, j + 1);
                    if (r <= 0)
                        return r;
                    found = 1;
                    break;
                }
                j = b->toks[j + 1].next;
            }
            if (!found)
                return 0;
            i = a->toks[i + 1].next;
        }
        return 1;
    }
    default:
        return 1; /* null, true, false: the type says it all */
    }
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t bytes_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* A hash equal for json_eq-equal values. 0 with *err set on ENOMEM. */
static uint64_t json_hash(struct validator *v, const struct json_doc *d,
                          uint32_t i, int *err)
{
    const struct json_tok *t = &d->toks[i];
    uint64_t h = (uint64_t)t->type * 0x9e3779b97f4a7c15ull;
    switch (t->type) {
    case JSON_NUMBER: {
        struct decnum x;
        if (num_of(d, t, &x) == 0)
            h ^= decnum_hash(&x);
        break;
    }
    case JSON_STRING: {
        size_t n;
        const char *p = str_bytes(&v->eqb, d, t, &n);
        if (!p) {
            *err = 1;
            return 0;
        }
        h ^= bytes_hash(p, n);
        break;
    }
    case JSON_ARRAY: {
        uint32_t j = i + 1;
        for (uint32_t k = 0; k < t->count; k++) {
            h = mix(h + json_hash(v, d, j, err));
            j = d->toks[j].next;
        }
        break;
    }
    case JSON_OBJECT: {
        /* Member order does not matter: combine commutatively. */
        uint64_t acc = 0;
        uint32_t j = i + 1;
        for (uint32_t k = 0; k < t->count; k++) {
            uint64_t kh = json_hash(v, d, j, err);
            acc += mix(kh ^ mix(json_hash(v, d, j + 1, err) + 1));
            j = d->toks[j + 1].next;
        }
        h ^= mix(acc);
        break;
    }
    default:
        break;
    }
    return h;
}

/* Value ti of d equal to an enum/const entry. */
static int const_eq(struct validator *v, const struct json_doc *d, uint32_t ti,
                    const struct sconst *k)
{
    const struct json_tok *t = &d->toks[ti];
    if (t->type != k->type)
        return 0;
    switch (t->type) {
    case JSON_STRING:
        return str_eq(d, t, k->str, k->len);
    case JSON_NUMBER: {
        struct decnum x;
        return num_of(d, t, &x) == 0 && decnum_cmp(&x, &k->num) == 0;
    }
    case JSON_ARRAY:
    case JSON_OBJECT:
        return json_eq(v, d, ti, k->doc, k->tok);
    default:
        return 1;
    }
}

/* ------------------------------------------------------------------ */
/* Failures and their messages.                                        */

static void build_path(struct vctx *c, char *out, size_t cap)
{
    struct validator *v = c->v;
    size_t len = 0;
    out[0] = '\0';
    uint32_t np = v->npath < v->cappath ? v->npath : v->cappath;
    for (uint32_t i = 0; i < np; i++) {
        const struct pseg *p = &v->path[i];
        if (p->is_key) {
            size_t n;
            const char *s = str_bytes(&v->keyb, p->d, &p->d->toks[p->tok], &n);
            if (!s)
                s = "?", n = 1;
            schema_pointer_append(out, cap, &len, s, n);
        } else {
            char num[16];
            int k = snprintf(num, sizeof num, "%u", p->idx);
            schema_pointer_append(out, cap, &len, num, (size_t)k);
        }
    }
}

__attribute__((format(printf, 2, 3))) static int fail_(struct vctx *c,
                                                       const char *fmt, ...)
{
    build_path(c, c->vd->path, sizeof c->vd->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->vd->message, sizeof c->vd->message, fmt, ap);
    va_end(ap);
    c->done = 1;
    return 0;
}

/* Arguments (quoted values) are only computed when reporting. */
#define fail(c, ...) ((c)->report && !(c)->done ? fail_((c), __VA_ARGS__) : 0)

/* Quote value ti of d for a message, cut to VALUE_QUOTE_MAX bytes. */
static const char *quote(const struct json_doc *d, uint32_t ti, char *out,
                         size_t cap)
{
    const struct json_tok *t = &d->toks[ti];
    size_t lim = VALUE_QUOTE_MAX < cap - 8 ? VALUE_QUOTE_MAX : cap - 8;
    if (t->type == JSON_ARRAY || t->type == JSON_OBJECT) {
        schema_compact_text(d, ti, out, lim + 4);
        return out;
    }
    const char *p = d->src + t->off;
    size_t n = t->len;
    if (n <= lim) {
        memcpy(out, p, n);
        out[n] = '\0';
        return out;
    }
    size_t k = lim;
    while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
        k--;
    /* Do not end inside an escape: back up to before a backslash run. */
    size_t bs = 0;
    while (bs < k && p[k - 1 - bs] == '\\')
        bs++;
    if (bs & 1)
        k--;
    memcpy(out, p, k);
    size_t o = k;
    memcpy(out + o, "...", 3);
    o += 3;
    if (t->type == JSON_STRING)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* "<value> <what>" for a failing value: cold, kept out of the walk's
 * stack frames. */
__attribute__((noinline, cold)) static int fail_value(struct vctx *c,
                                                      const struct json_doc *d,
                                                      uint32_t ti, const char *what,
                                                      const char *text)
{
    char q[VALUE_QUOTE_MAX + 16];
    return fail(c, "%s %s%s", quote(d, ti, q, sizeof q), what, text);
}

static const char *type_word(const struct json_doc *d, const struct json_tok *t)
{
    static const char *const w[] = {"null", "boolean", "boolean", "number",
                                    "string", "array", "object"};
    (void)d;
    return t->type <= JSON_OBJECT ? w[t->type] : "value";
}

/* "got string \"42\"", "got array" */
static const char *got(const struct json_doc *d, uint32_t ti, char *out,
                       size_t cap)
{
    const struct json_tok *t = &d->toks[ti];
    if (t->type == JSON_ARRAY || t->type == JSON_OBJECT || t->type == JSON_NULL) {
        snprintf(out, cap, "%s", type_word(d, t));
        return out;
    }
    char q[VALUE_QUOTE_MAX + 16];
    snprintf(out, cap, "%s %s", type_word(d, t), quote(d, ti, q, sizeof q));
    return out;
}

/* "number or string" */
static const char *type_names(uint8_t mask, char *out, size_t cap)
{
    const char *names[7];
    int n = 0;
    if (mask & T_NULL)
        names[n++] = "null";
    if (mask & T_BOOL)
        names[n++] = "boolean";
    if (mask & T_NUM)
        names[n++] = "number";
    else if (mask & T_INT)
        names[n++] = "integer";
    if (mask & T_STR)
        names[n++] = "string";
    if (mask & T_ARR)
        names[n++] = "array";
    if (mask & T_OBJ)
        names[n++] = "object";
    size_t o = 0;
    out[0] = '\0';
    if (n == 0)
        snprintf(out, cap, "nothing");
    for (int i = 0; i < n && o < cap; i++) {
        const char *sep = i == 0 ? "" : (i == n - 1 ? " or " : ", ");
        int k = snprintf(out + o, cap - o, "%s%s", sep, names[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
    return out;
}

static int num_is_int(const struct json_doc *d, const struct json_tok *t);

static int fail_type(struct vctx *c, uint8_t types, const struct json_doc *d,
                     uint32_t ti)
{
    if (!c->report)
        return 0;
    const struct json_tok *t = &d->toks[ti];
    char want[96], g[VALUE_QUOTE_MAX + 40];
    /* An integer failing an integer-only check can only be out of range
     * (compiled.h, T_I64). */
    if (t->type == JSON_NUMBER && (types & T_I64) && !(types & T_NUM) &&
        num_is_int(d, t))
        return fail(c, "%s is outside the 64-bit integer range the lake stores",
                    quote(d, ti, g, sizeof g));
    return fail(c, "expected %s, got %s", type_names(types, want, sizeof want),
                got(d, ti, g, sizeof g));
}

/* ------------------------------------------------------------------ */
/* Path stack (report mode).                                           */

static inline void push_key(struct vctx *c, const struct json_doc *d, uint32_t k)
{
    struct validator *v = c->v;
    if (v->npath < v->cappath)
        v->path[v->npath] = (struct pseg){d, k, 0, 1};
    v->npath++;
}

static inline void push_idx(struct vctx *c, const struct json_doc *d,
                            uint32_t idx)
{
    struct validator *v = c->v;
    if (v->npath < v->cappath)
        v->path[v->npath] = (struct pseg){d, 0, idx, 0};
    v->npath++;
}

/* Leaf nodes that only check a type, the most common kind in generated
 * schemas, are answered without a call. */
static inline int leaf_ok(const struct snode *n, const struct json_doc *d,
                          uint32_t vi);

static inline __attribute__((always_inline)) int eval_key(struct vctx *c, const struct snode *n,
                           const struct json_doc *d, uint32_t vi, uint32_t ki,
                           uint64_t *ev)
{
    if (leaf_ok(n, d, vi))
        return 1;
    if (!c->report)
        return eval(c, n, d, vi, ev);
    push_key(c, d, ki);
    int r = eval(c, n, d, vi, ev);
    c->v->npath--;
    return r;
}

static inline __attribute__((always_inline)) int eval_idx(struct vctx *c, const struct snode *n,
                           const struct json_doc *d, uint32_t vi, uint32_t idx)
{
    if (leaf_ok(n, d, vi))
        return 1;
    if (!c->report)
        return eval(c, n, d, vi, NULL);
    push_idx(c, d, idx);
    int r = eval(c, n, d, vi, NULL);
    c->v->npath--;
    return r;
}

/* A trial: no reporting, lax coercions rolled back on failure. */
static int trial(struct vctx *c, const struct snode *n, const struct json_doc *d,
                 uint32_t ti, uint64_t *ev)
{
    int report = c->report;
    uint32_t nrw = c->v->nrw;
    c->report = 0;
    int r = eval(c, n, d, ti, ev);
    c->report = report;
    if (r == 0)
        c->v->nrw = nrw;
    return r;
}

/* ------------------------------------------------------------------ */
/* Types.                                                              */

static int num_is_int(const struct json_doc *d, const struct json_tok *t)
{
    if (t->flags & JSON_F_INTEGER)
        return 1;
    struct decnum x;
    return num_of(d, t, &x) == 0 && decnum_is_integer(&x);
}

/* The rest of type_ok for a number against integer-only types: integers
 * written with a fraction or an exponent (1.0, 1e2), and, under T_I64,
 * long ones, which must fit in int64 (compared exactly; a plain literal
 * of at most 18 characters always fits, |x| < 10^18). */
static __attribute__((noinline)) int int_ok_slow(uint8_t types, const struct json_doc *d,
                                                 const struct json_tok *t)
{
    static const char lo[] = "-9223372036854775808", hi[] = "9223372036854775807";
    struct decnum x, l, h;
    if (!num_is_int(d, t))
        return 0;
    if (!(types & T_I64))
        return 1;
    if (num_of(d, t, &x) || decnum_parse(&l, lo, sizeof lo - 1) ||
        decnum_parse(&h, hi, sizeof hi - 1))
        return 0;
    return decnum_cmp(&x, &l) >= 0 && decnum_cmp(&x, &h) <= 0;
}

static inline int type_ok(uint8_t types, const struct json_doc *d,
                          const struct json_tok *t)
{
    static const uint8_t bit[] = {T_NULL, T_BOOL, T_BOOL, 0, T_STR, T_ARR, T_OBJ};
    if (t->type != JSON_NUMBER)
        return (types & bit[t->type]) != 0;
    if (types & T_NUM)
        return 1;
    if (!(types & T_INT))
        return 0;
    if ((t->flags & JSON_F_INTEGER) && (t->len <= 18 || !(types & T_I64)))
        return 1;
    return int_ok_slow(types, d, t);
}

static inline int leaf_ok(const struct snode *n, const struct json_doc *d,
                          uint32_t vi)
{
    if (n->kw == 0)
        return 1;
    if (n->kw == K_TYPE)
        return type_ok(n->types, d, &d->toks[vi]);
    if (n->kw == (K_TYPE | K_ENUM) && n->enum_all_str && (n->types & T_STR)) {
        const struct json_tok *t = &d->toks[vi];
        if (t->type != JSON_STRING || (t->flags & JSON_F_ESCAPED))
            return 0;
        const char *p = d->src + t->off + 1;
        size_t len = t->len - 2;
        for (uint32_t i = 0; i < n->nenum; i++)
            if (n->enumv[i].len == len && bytes_eq(n->enumv[i].str, p, len))
                return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Lax coercions (docs/lax.md).                                        */

static int is_ws(const unsigned char *p, size_t n, size_t *len)
{
    /* Unicode White_Space, as Rust's str::trim (pydantic-core) strips. */
    if (n >= 1 && (p[0] == ' ' || (p[0] >= 0x09 && p[0] <= 0x0d))) {
        *len = 1;
        return 1;
    }
    if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) {
        *len = 2;
        return 1;
    }
    if (n >= 3) {
        unsigned cp = ((unsigned)(p[0] & 0x0F) << 12) |
                      ((unsigned)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        if ((p[0] & 0xF0) == 0xE0 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
             cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)) {
            *len = 3;
            return 1;
        }
    }
    return 0;
}

static void trim(const char **s, size_t *n)
{
    const unsigned char *p = (const unsigned char *)*s;
    size_t len = *n, k;
    while (len && is_ws(p, len, &k)) {
        p += k;
        len -= k;
    }
    /* From the end: try the 1-, 2- and 3-byte forms. */
    for (;;) {
        if (len >= 1 && is_ws(p + len - 1, 1, &k) && k == 1) {
            len -= 1;
        } else if (len >= 2 && is_ws(p + len - 2, 2, &k) && k == 2) {
            len -= 2;
        } else if (len >= 3 && is_ws(p + len - 3, 3, &k) && k == 3) {
            len -= 3;
        } else {
            break;
        }
    }
    *s = (const char *)p;
    *n = len;
}

static int ieq(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    if (n != k)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != w[i])
            return 0;
    }
    return 1;
}

/* The canonical JSON text for a lax number string, into out. want_int:
 * pydantic's int rules (no exponent; a fraction only of zeros). */
static size_t lax_number(const char *s, size_t n, int want_int, char *out,
                         size_t cap, struct buf *tmp)
{
    trim(&s, &n);
    if (n == 0)
        return 0;
    if (buf_reserve(tmp, n + 8))
        return 0;
    tmp->len = 0;
    size_t k = decnum_loose_to_json(s, n, tmp->data, n + 8);
    if (!k)
        return 0;
    if (want_int) {
        for (size_t i = 0; i < n; i++)
            if (s[i] == 'e' || s[i] == 'E')
                return 0;
    }
    struct decnum x;
    if (decnum_parse(&x, tmp->data, k))
        return 0;
    if (want_int && !decnum_is_integer(&x))
        return 0;
    return decnum_format(&x, out, cap);
}

/* The value ti failed n's type: try pydantic's lax coercions. 1 coerced
 * and n passes; 0 no (vd filled in report mode when the coerced value was
 * what failed); < 0 error. */
static int coerce(struct vctx *c, const struct snode *n, const struct json_doc *d,
                  uint32_t ti)
{
    struct validator *v = c->v;
    const struct json_tok *t = &d->toks[ti];
    uint8_t types = n->types;
    if (d != &v->doc)
        return 0;
    size_t cap = t->len + 64, k = 0;
    if (buf_reserve(&v->ctext, cap))
        return WEIR_ENOMEM;
    v->ctext.len = 0;
    char *lit = v->ctext.data;
    if (t->type == JSON_STRING) {
        size_t sn;
        const char *sp = str_bytes(&v->dec, d, t, &sn);
        if (!sp)
            return WEIR_ENOMEM;
        if (types & T_INT)
            k = lax_number(sp, sn, !(types & T_NUM), lit, cap, &v->eqb);
        if (!k && (types & T_BOOL)) {
            static const char *const yes[] = {"true", "1", "yes", "on", "t", "y"};
            static const char *const no[] = {"false", "0", "no", "off", "f", "n"};
            for (int i = 0; i < 6 && !k; i++) {
                if (ieq(sp, sn, yes[i]))
                    k = (size_t)snprintf(lit, cap, "true");
                else if (ieq(sp, sn, no[i]))
                    k = (size_t)snprintf(lit, cap, "false");
            }
        }
    } else if (t->type == JSON_NUMBER && (types & T_BOOL)) {
        struct decnum x;
        if (num_of(d, t, &x) == 0) {
            if (x.ndig == 0)
                k = (size_t)snprintf(lit, cap, "false");
            else if (!x.neg && x.ndig == 1 && x.exp == 1 && decnum_digit(&x, 0) == 1)
                k = (size_t)snprintf(lit, cap, "true");
        }
    } else if ((t->type == JSON_TRUE || t->type == JSON_FALSE) &&
               (types & T_INT)) {
        k = (size_t)snprintf(lit, cap, "%d", t->type == JSON_TRUE);
    }
    if (!k)
        return 0;
    enum json_error je = json_scan(&v->cdoc, lit, k);
    if (je == JSON_ERR_NOMEM)
        return WEIR_ENOMEM;
    if (je != JSON_OK)
        return 0;
    int lax = c->lax, report = c->report;
    c->lax = 0;
    c->report = 0;
    int r = eval(c, n, &v->cdoc, 0, NULL);
    c->lax = lax;
    c->report = report;
    if (r < 0)
        return r;
    if (r == 0) {
        if (report) {
            /* Say why the coerced value fails ("5 is less than ..."). */
            c->lax = 0;
            eval(c, n, &v->cdoc, 0, NULL);
            c->lax = lax;
        }
        return 0;
    }
    if (v->nrw == v->caprw) {
        uint32_t nc = v->caprw ? v->caprw * 2 : 16;
        struct rewrite *q = realloc(v->rw, nc * sizeof *q);
        if (!q)
            return WEIR_ENOMEM;
        v->rw = q;
        v->caprw = nc;
    }
    size_t at = v->lit.len;
    if (buf_append(&v->lit, lit, k))
        return WEIR_ENOMEM;
    v->rw[v->nrw++] = (struct rewrite){t->off, t->len, (uint32_t)at, (uint32_t)k};
    return 1;
}

/* ------------------------------------------------------------------ */
/* Objects.                                                            */

static int find_prop(struct vctx *c, const struct snode *n,
                     const struct json_doc *d, const struct json_tok *k,
                     uint32_t *hint, const struct sprop **out)
{
    const char *kp;
    size_t kn;
    if (k->flags & JSON_F_ESCAPED) {
        kp = str_bytes(&c->v->keyb, d, k, &kn);
        if (!kp)
            return WEIR_ENOMEM;
    } else {
        kp = d->src + k->off + 1;
        kn = k->len - 2;
    }
    *out = NULL;
    if (n->ptab) {
        uint32_t h = schema_hash(kp, kn) & n->ptab_mask;
        while (n->ptab[h]) {
            const struct sprop *p = &n->props[n->ptab[h] - 1];
            if (p->len == kn && bytes_eq(p->key, kp, kn)) {
                *out = p;
                return 0;
            }
            h = (h + 1) & n->ptab_mask;
        }
        return 0;
    }
    /* Records usually list members in schema order: try the next one
     * first. */
    uint32_t h = *hint;
    if (h < n->nprops && n->props[h].len == kn &&
        bytes_eq(n->props[h].key, kp, kn)) {
        *hint = h + 1;
        *out = &n->props[h];
        return 0;
    }
    for (uint32_t i = 0; i < n->nprops; i++)
        if (n->props[i].len == kn && bytes_eq(n->props[i].key, kp, kn)) {
            *hint = i + 1;
            *out = &n->props[i];
            return 0;
        }
    return 0;
}

static int has_member(const struct json_doc *d, uint32_t ti, const char *s,
                      size_t n)
{
    const struct json_tok *t = &d->toks[ti];
    uint32_t i = ti + 1;
    for (uint32_t m = 0; m < t->count; m++) {
        if (str_eq(d, &d->toks[i], s, n))
            return 1;
        i = d->toks[i + 1].next;
    }
    return 0;
}

static int fail_member(struct vctx *c, const struct json_doc *d, uint32_t ki,
                       const char *why)
{
    if (!c->report)
        return 0;
    char q[VALUE_QUOTE_MAX + 16];
    push_key(c, d, ki);
    fail(c, "property %s is not allowed%s", quote(d, ki, q, sizeof q), why);
    c->v->npath--;
    return 0;
}

/* propertyNames: judge the key as a string instance, and say which. */
__attribute__((noinline)) static int check_propname(struct vctx *c,
                                                    const struct snode *n,
                                                    const struct json_doc *d,
                                                    uint32_t ki)
{
    int report = c->report;
    struct verdict *keep = c->vd, tmp;
    if (report) {
        memset(&tmp, 0, sizeof tmp);
        c->vd = &tmp;
    }
    int lax = c->lax;
    c->lax = 0;
    int r = eval(c, n->propnames, d, ki, NULL);
    c->lax = lax;
    c->vd = keep;
    if (r != 0 || !report)
        return r;
    char qk[VALUE_QUOTE_MAX + 16];
    c->done = 0;
    return fail(c, "property name %s is not valid: %s", quote(d, ki, qk, sizeof qk),
                tmp.message[0] ? tmp.message : "rejected by propertyNames");
}

static int eval_object(struct vctx *c, const struct snode *n,
                       const struct json_doc *d, uint32_t ti, uint64_t *ev)
{
    const struct json_tok *t = &d->toks[ti];
    uint32_t okw = n->okw;
    int r;
    if ((okw & O_MINPROPS) && t->count < n->minprops)
        return fail(c, "object has %u propert%s, fewer than minProperties %llu",
                    t->count, t->count == 1 ? "y" : "ies",
                    (unsigned long long)n->minprops);
    if ((okw & O_MAXPROPS) && t->count > n->maxprops)
        return fail(c, "object has %u properties, more than maxProperties %llu",
                    t->count, (unsigned long long)n->maxprops);
    uint64_t seen = 0, pseen = 0;
    uint32_t hint = 0;
    uint32_t i = ti + 1;
    int covered = 1;
    uint32_t count = t->count;
    if (okw & (O_PROPS | O_REQUIRED | O_PATS | O_ADDL | O_PROPNAMES)) {
        for (uint32_t m = 0; m < count; m++) {
            const struct json_tok *k = &d->toks[i];
            uint32_t vi = i + 1;
            uint32_t next = d->toks[vi].next;
            int matched = 0;
            if (okw & (O_PROPS | O_REQUIRED)) {
                const struct sprop *p;
                if ((r = find_prop(c, n, d, k, &hint, &p)) < 0)
                    return r;
                if (p) {
                    /* Duplicate keys among the schema's names are seen
                     * here for free (see validator_check). */
                    uint32_t pi = (uint32_t)(p - n->props);
                    if (pi < 64) {
                        uint64_t b = UINT64_C(1) << pi;
                        if (pseen & b)
                            return 0; /* duplicate: reported by find_duplicate */
                        pseen |= b;
                    } else {
                        covered = 0;
                    }
                    seen |= p->req_bit;
                    if (p->node) {
                        matched = 1;
                        if (p->node->kw & K_FALSE)
                            return fail_member(c, d, i, "");
                        if ((r = eval_key(c, p->node, d, vi, i, NULL)) <= 0)
                            return r;
                    }
                } else {
                    covered = 0;
                }
            } else {
                covered = 0;
            }
            if (okw & O_PATS) {
                for (uint32_t q = 0; q < n->npats; q++) {
                    size_t kn;
                    const char *kp = str_bytes(&c->v->keyb, d, k, &kn);
                    if (!kp)
                        return WEIR_ENOMEM;
                    r = regex_search(n->pats[q].re, c->v->rx, kp, kn);
                    if (r < 0) {
                        char qk[VALUE_QUOTE_MAX + 16];
                        push_key(c, d, i);
                        fail(c, "matching property name %s against \"%s\" took too long",
                             quote(d, i, qk, sizeof qk), n->pats[q].src);
                        c->v->npath--;
                        return 0;
                    }
                    if (r) {
                        matched = 1;
                        if (n->pats[q].node->kw & K_FALSE)
                            return fail_member(c, d, i, "");
                        if ((r = eval_key(c, n->pats[q].node, d, vi, i, NULL)) <= 0)
                            return r;
                    }
                }
            }
            if (!matched && (okw & O_ADDL)) {
                if (n->addl->kw & K_FALSE)
                    return fail_member(c, d, i, "");
                if ((r = eval_key(c, n->addl, d, vi, i, NULL)) <= 0)
                    return r;
                matched = 1;
            }
            if (matched && ev)
                bit_set(ev, m);
            if ((okw & O_PROPNAMES) && (r = check_propname(c, n, d, i)) <= 0)
                return r;
            i = next;
        }
        if (covered && c->v->dupfree)
            bit_set(c->v->dupfree, ti);
    }
    if ((okw & O_REQUIRED) && ((seen & n->req_mask) != n->req_mask || n->nreq_extra)) {
        for (uint32_t q = 0; q < n->nprops; q++)
            if (n->props[q].req_bit && !(seen & n->props[q].req_bit))
                return fail(c, "missing required property \"%.*s\"",
                            (int)n->props[q].len, n->props[q].key);
        for (uint32_t q = 0; q < n->nreq_extra; q++)
            if (!has_member(d, ti, n->req_extra[q].s, n->req_extra[q].len))
                return fail(c, "missing required property \"%.*s\"",
                            (int)n->req_extra[q].len, n->req_extra[q].s);
    }
    if (okw & O_DEPREQ) {
        for (uint32_t q = 0; q < n->ndepreq; q++) {
            const struct sdepreq *dr = &n->depreq[q];
            if (!has_member(d, ti, dr->key.s, dr->key.len))
                continue;
            for (uint32_t e = 0; e < dr->n; e++)
                if (!has_member(d, ti, dr->names[e].s, dr->names[e].len))
                    return fail(c, "property \"%.*s\" requires property \"%.*s\"",
                                (int)dr->key.len, dr->key.s,
                                (int)dr->names[e].len, dr->names[e].s);
        }
    }
    if (okw & O_DEPSCH) {
        for (uint32_t q = 0; q < n->ndepsch; q++) {
            const struct sdepsch *ds = &n->depsch[q];
            if (!has_member(d, ti, ds->key.s, ds->key.len))
                continue;
            if ((r = eval(c, ds->node, d, ti, ev)) <= 0)
                return r;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Arrays.                                                             */

struct hitem {
    uint64_t h;
    uint32_t tok, idx;
};

static int hitem_cmp(const void *a, const void *b)
{
    const struct hitem *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* 1 all distinct, 0 with *a, *b the first equal pair, < 0 error. */
static int check_unique(struct vctx *c, const struct json_doc *d, uint32_t ti,
                        uint32_t *a, uint32_t *b)
{
    struct validator *v = c->v;
    const struct json_tok *t = &d->toks[ti];
    if (t->count < 2)
        return 1;
    if (t->count <= 32) {
        uint32_t i = ti + 1;
        for (uint32_t x = 0; x < t->count; x++) {
            uint32_t j = d->toks[i].next;
            for (uint32_t y = x + 1; y < t->count; y++) {
                int r = json_eq(v, d, i, d, j);
                if (r < 0)
                    return WEIR_ENOMEM;
                if (r) {
                    *a = x;
                    *b = y;
                    return 0;
                }
                j = d->toks[j].next;
            }
            i = d->toks[i].next;
        }
        return 1;
    }
    /* Large arrays: sort by hash, compare only equal hashes. */
    struct skmark mark = sk_mark(v);
    size_t words = ((size_t)t->count * sizeof(struct hitem) + 7) / 8;
    struct hitem *hs = (struct hitem *)sk_alloc(v, words);
    if (!hs)
        return WEIR_ENOMEM;
    uint32_t i = ti + 1;
    int err = 0;
    for (uint32_t x = 0; x < t->count; x++) {
        hs[x] = (struct hitem){json_hash(v, d, i, &err), i, x};
        i = d->toks[i].next;
    }
    if (err) {
        sk_release(v, mark);
        return WEIR_ENOMEM;
    }
    qsort(hs, t->count, sizeof *hs, hitem_cmp);
    int result = 1;
    uint32_t best_a = UINT32_MAX, best_b = UINT32_MAX;
    for (uint32_t x = 0; x < t->count; x++) {
        for (uint32_t y = x + 1; y < t->count && hs[y].h == hs[x].h; y++) {
            int r = json_eq(v, d, hs[x].tok, d, hs[y].tok);
            if (r < 0) {
                sk_release(v, mark);
                return WEIR_ENOMEM;
            }
            if (r && (hs[y].idx < best_b ||
                      (hs[y].idx == best_b && hs[x].idx < best_a))) {
                best_a = hs[x].idx < hs[y].idx ? hs[x].idx : hs[y].idx;
                best_b = hs[x].idx < hs[y].idx ? hs[y].idx : hs[x].idx;
                result = 0;
            }
        }
    }
    sk_release(v, mark);
    *a = best_a;
    *b = best_b;
    return result;
}

__attribute__((noinline)) static int eval_array(struct vctx *c, const struct snode *n,
                      const struct json_doc *d, uint32_t ti, uint64_t *ev)
{
    const struct json_tok *t = &d->toks[ti];
    uint32_t akw = n->akw;
    int r;
    if ((akw & A_MINITEMS) && t->count < n->minitems)
        return fail(c, "array has %u item%s, fewer than minItems %llu", t->count,
                    t->count == 1 ? "" : "s", (unsigned long long)n->minitems);
    if ((akw & A_MAXITEMS) && t->count > n->maxitems)
        return fail(c, "array has %u items, more than maxItems %llu", t->count,
                    (unsigned long long)n->maxitems);
    if (akw & (A_PREFIX | A_ITEMS)) {
        uint32_t i = ti + 1;
        for (uint32_t x = 0; x < t->count; x++, i = d->toks[i].next) {
            const struct snode *sn = x < n->nprefix ? n->prefix[x] : n->items;
            if (!sn)
                break;
            if (sn->kw & K_FALSE) {
                if (!c->report)
                    return 0;
                push_idx(c, d, x);
                fail(c, "array has %u items, at most %u allowed", t->count, x);
                c->v->npath--;
                return 0;
            }
            if ((r = eval_idx(c, sn, d, i, x)) <= 0)
                return r;
            if (ev)
                bit_set(ev, x);
        }
    }
    if (akw & A_CONTAINS) {
        uint64_t hits = 0;
        uint32_t i = ti + 1;
        for (uint32_t x = 0; x < t->count; x++, i = d->toks[i].next) {
            r = trial(c, n->contains, d, i, NULL);
            if (r < 0)
                return r;
            if (r) {
                hits++;
                if (ev)
                    bit_set(ev, x);
                else if (!n->has_maxcontains && hits >= n->mincontains)
                    break;
            }
        }
        if (hits < n->mincontains) {
            if (n->mincontains == 1)
                return fail(c, "no item of the array matches \"contains\"");
            return fail(c, "%llu item%s of the array match%s \"contains\", fewer than minContains %llu",
                        (unsigned long long)hits, hits == 1 ? "" : "s",
                        hits == 1 ? "es" : "", (unsigned long long)n->mincontains);
        }
        if (n->has_maxcontains && hits > n->maxcontains)
            return fail(c, "%llu items of the array match \"contains\", more than maxContains %llu",
                        (unsigned long long)hits, (unsigned long long)n->maxcontains);
    }
    if (akw & A_UNIQUE) {
        uint32_t a, b;
        r = check_unique(c, d, ti, &a, &b);
        if (r < 0)
            return r;
        if (r == 0)
            return fail(c, "array items %u and %u are equal (uniqueItems)", a, b);
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Strings and numbers.                                                */

__attribute__((noinline)) static int eval_string(struct vctx *c, const struct snode *n,
                       const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    char q[VALUE_QUOTE_MAX + 16];
    if ((n->skw & S_MINLEN) && t->count < n->minlen)
        return fail(c, "%s is shorter than minLength %llu (%u character%s)",
                    quote(d, ti, q, sizeof q), (unsigned long long)n->minlen,
                    t->count, t->count == 1 ? "" : "s");
    if ((n->skw & S_MAXLEN) && t->count > n->maxlen)
        return fail(c, "%s is longer than maxLength %llu (%u characters)",
                    quote(d, ti, q, sizeof q), (unsigned long long)n->maxlen,
                    t->count);
    if (n->skw & (S_PATTERN | S_FORMAT)) {
        size_t sn;
        const char *sp = str_bytes(&c->v->dec, d, t, &sn);
        if (!sp)
            return WEIR_ENOMEM;
        if (n->skw & S_PATTERN) {
            int r = regex_search(n->pattern, c->v->rx, sp, sn);
            if (r < 0)
                return fail(c, "matching %s against the pattern \"%s\" took too long",
                            quote(d, ti, q, sizeof q), n->pattern_src);
            if (!r)
                return fail(c, "%s does not match the pattern \"%s\"",
                            quote(d, ti, q, sizeof q), n->pattern_src);
        }
        if ((n->skw & S_FORMAT) && !format_check(n->format, sp, sn))
            return fail(c, "%s is not a valid %s", quote(d, ti, q, sizeof q),
                        format_name(n->format));
    }
    return 1;
}

__attribute__((noinline)) static int eval_number(struct vctx *c, const struct snode *n,
                       const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    struct decnum x;
    char q[VALUE_QUOTE_MAX + 16];
    if (num_of(d, t, &x))
        return 1;
    uint32_t k = n->nkw;
#define LIM(l) (int)(l).len, (l).text
    if ((k & N_MIN) && decnum_cmp(&x, &n->min.d) < 0)
        return fail(c, "%s is less than the minimum %.*s", quote(d, ti, q, sizeof q),
                    LIM(n->min));
    if ((k & N_MAX) && decnum_cmp(&x, &n->max.d) > 0)
        return fail(c, "%s is greater than the maximum %.*s",
                    quote(d, ti, q, sizeof q), LIM(n->max));
    if ((k & N_XMIN) && decnum_cmp(&x, &n->xmin.d) <= 0)
        return fail(c, "%s is not greater than the exclusive minimum %.*s",
                    quote(d, ti, q, sizeof q), LIM(n->xmin));
    if ((k & N_XMAX) && decnum_cmp(&x, &n->xmax.d) >= 0)
        return fail(c, "%s is not less than the exclusive maximum %.*s",
                    quote(d, ti, q, sizeof q), LIM(n->xmax));
    if ((k & N_MULT) && !decnum_is_multiple(&x, &n->mult.d))
        return fail(c, "%s is not a multiple of %.*s", quote(d, ti, q, sizeof q),
                    LIM(n->mult));
#undef LIM
    return 1;
}

/* ------------------------------------------------------------------ */
/* In-place applicators.                                               */

/* Every branch failed: explain. */
static int report_branches(struct vctx *c, struct snode *const *bs, uint32_t nb,
                           const struct json_doc *d, uint32_t ti,
                           const char *kwname)
{
    if (!c->report || c->done)
        return 0;
    const struct json_tok *t = &d->toks[ti];
    uint32_t cand = 0, which = 0, typed = 0;
    uint8_t mask = 0;
    for (uint32_t i = 0; i < nb; i++) {
        const struct snode *b = bs[i];
        if (b->kw & K_TYPE) {
            typed++;
            mask |= b->types;
            if (!type_ok(b->types, d, t))
                continue;
        } else if (b->kw & K_FALSE) {
            continue;
        }
        cand++;
        which = i;
    }
    if (cand == 1) {
        /* One branch was meant for this type: its error is the useful one. */
        int r = eval(c, bs[which], d, ti, NULL);
        if (r != 1 || c->done)
            return r < 0 ? r : 0;
    }
    if (cand == 0 && typed == nb)
        return fail_type(c, mask, d, ti);
    /* Several candidates: list each branch's first problem. */
    char msg[sizeof c->vd->message];
    size_t o = (size_t)snprintf(msg, sizeof msg, "value matches none of the %u %s schemas:",
                                nb, kwname);
    struct verdict *keep = c->vd, tmp;
    for (uint32_t i = 0; i < nb && o < sizeof msg; i++) {
        memset(&tmp, 0, sizeof tmp);
        c->vd = &tmp;
        c->done = 0;
        uint32_t np = c->v->npath;
        int r = eval(c, bs[i], d, ti, NULL);
        c->v->npath = np;
        c->vd = keep;
        if (r < 0)
            return r;
        int k = snprintf(msg + o, sizeof msg - o, "%s [%u] %s%s%s", i ? ";" : "", i,
                         tmp.path, tmp.path[0] ? ": " : "",
                         tmp.message[0] ? tmp.message : "fails");
        if (k < 0)
            break;
        o += (size_t)k;
    }
    c->done = 0;
    return fail(c, "%s", msg);
}

static int eval_anyof(struct vctx *c, const struct snode *n,
                      const struct json_doc *d, uint32_t ti, uint64_t *ev)
{
    struct validator *v = c->v;
    int lax = c->lax;
    const struct json_tok *t = &d->toks[ti];
    /* Lax mode: a branch that passes as sent beats one that needs a
     * coercion (pydantic's "smart" unions). */
    for (int pass = lax ? 0 : 1; pass < 2; pass++) {
        c->lax = pass == 1 ? lax : 0;
        int any = 0;
        for (uint32_t i = 0; i < n->nanyof; i++) {
            struct skmark mark = sk_mark(v);
            uint64_t *tmp = NULL;
            if (ev && !(tmp = sk_alloc(v, bit_words(t->count)))) {
                c->lax = lax;
                return WEIR_ENOMEM;
            }
            int r = trial(c, n->anyof[i], d, ti, tmp);
            if (r < 0) {
                c->lax = lax;
                return r;
            }
            if (r) {
                any = 1;
                if (tmp)
                    for (size_t w = 0; w < bit_words(t->count); w++)
                        ev[w] |= tmp[w];
            }
            sk_release(v, mark);
            if (r && !ev)
                break;
        }
        if (any) {
            c->lax = lax;
            return 1;
        }
    }
    c->lax = lax;
    return report_branches(c, n->anyof, n->nanyof, d, ti, "anyOf");
}

static int eval_oneof(struct vctx *c, const struct snode *n,
                      const struct json_doc *d, uint32_t ti, uint64_t *ev)
{
    struct validator *v = c->v;
    int lax = c->lax;
    const struct json_tok *t = &d->toks[ti];
    uint32_t first = 0, second = 0, hits = 0;
    struct skmark mark = sk_mark(v);
    uint64_t *keep = NULL;
    for (int pass = lax ? 0 : 1; pass < 2 && hits == 0; pass++) {
        c->lax = pass == 1 ? lax : 0;
        for (uint32_t i = 0; i < n->noneof; i++) {
            uint64_t *tmp = NULL;
            if (ev && !(tmp = sk_alloc(v, bit_words(t->count)))) {
                c->lax = lax;
                sk_release(v, mark);
                return WEIR_ENOMEM;
            }
            uint32_t nrw = v->nrw;
            int r = trial(c, n->oneof[i], d, ti, tmp);
            if (r < 0) {
                c->lax = lax;
                sk_release(v, mark);
                return r;
            }
            if (r) {
                if (hits == 0) {
                    first = i;
                    keep = tmp;
                } else if (hits == 1) {
                    second = i;
                }
                hits++;
                if (hits > 1)
                    v->nrw = nrw;
            }
        }
    }
    c->lax = lax;
    if (hits == 1) {
        if (ev && keep)
            for (size_t w = 0; w < bit_words(t->count); w++)
                ev[w] |= keep[w];
        sk_release(v, mark);
        return 1;
    }
    sk_release(v, mark);
    if (hits > 1)
        return fail(c, "value matches more than one of the oneOf schemas (%u and %u)",
                    first, second);
    return report_branches(c, n->oneof, n->noneof, d, ti, "oneOf");
}

static const struct snode *dyn_target(struct vctx *c, const struct snode *n)
{
    if (!n->dyn_name)
        return n->dynref;
    const struct schema *s = c->s;
    struct validator *v = c->v;
    for (uint32_t i = 0; i < v->nscope; i++) {
        const struct sresource *r = &s->res[v->scope[i]];
        for (uint32_t k = 0; k < r->nanchors; k++)
            if (r->anchors[k].len == n->dyn_len &&
                memcmp(r->anchors[k].name, n->dyn_name, n->dyn_len) == 0)
                return r->anchors[k].node;
    }
    return n->dynref;
}

__attribute__((noinline)) static int eval_inplace(struct vctx *c, const struct snode *n,
                        const struct json_doc *d, uint32_t ti, uint64_t *ev)
{
    uint32_t kw = n->kw;
    int r;
    if ((kw & K_REF) && (r = eval(c, n->ref, d, ti, ev)) <= 0)
        return r;
    if ((kw & K_DYNREF) && (r = eval(c, dyn_target(c, n), d, ti, ev)) <= 0)
        return r;
    if (kw & K_ALLOF)
        for (uint32_t i = 0; i < n->nallof; i++)
            if ((r = eval(c, n->allof[i], d, ti, ev)) <= 0)
                return r;
    if ((kw & K_ANYOF) && (r = eval_anyof(c, n, d, ti, ev)) <= 0)
        return r;
    if ((kw & K_ONEOF) && (r = eval_oneof(c, n, d, ti, ev)) <= 0)
        return r;
    if (kw & K_NOT) {
        int lax = c->lax;
        c->lax = 0;
        r = trial(c, n->not_, d, ti, NULL);
        c->lax = lax;
        if (r < 0)
            return r;
        if (r) {
            char q[VALUE_QUOTE_MAX + 16];
            return fail(c, "%s must not match the \"not\" schema", quote(d, ti, q, sizeof q));
        }
    }
    if (kw & K_IF) {
        struct validator *v = c->v;
        struct skmark mark = sk_mark(v);
        uint64_t *tmp = NULL;
        const struct json_tok *t = &d->toks[ti];
        if (ev && !(tmp = sk_alloc(v, bit_words(t->count))))
            return WEIR_ENOMEM;
        int lax = c->lax;
        c->lax = 0;
        r = trial(c, n->if_, d, ti, tmp);
        c->lax = lax;
        if (r < 0) {
            sk_release(v, mark);
            return r;
        }
        if (r && tmp)
            for (size_t w = 0; w < bit_words(t->count); w++)
                ev[w] |= tmp[w];
        sk_release(v, mark);
        const struct snode *branch = r ? n->then_ : n->else_;
        if (branch && (r = eval(c, branch, d, ti, ev)) <= 0)
            return r;
    }
    return 1;
}

/* unevaluatedProperties / unevaluatedItems over what mine left unmarked. */
static int eval_uneval(struct vctx *c, const struct snode *n,
                       const struct json_doc *d, uint32_t ti, uint64_t *mine)
{
    const struct json_tok *t = &d->toks[ti];
    int r;
    uint32_t i = ti + 1;
    if (t->type == JSON_OBJECT) {
        for (uint32_t m = 0; m < t->count; m++, i = d->toks[i + 1].next) {
            if (bit_get(mine, m))
                continue;
            if (n->uneval_p->kw & K_FALSE)
                return fail_member(c, d, i, " (unevaluatedProperties)");
            if ((r = eval_key(c, n->uneval_p, d, i + 1, i, NULL)) <= 0)
                return r;
            bit_set(mine, m);
        }
    } else {
        for (uint32_t x = 0; x < t->count; x++, i = d->toks[i].next) {
            if (bit_get(mine, x))
                continue;
            if (n->uneval_i->kw & K_FALSE) {
                if (!c->report)
                    return 0;
                push_idx(c, d, x);
                fail(c, "item %u is not allowed (unevaluatedItems)", x);
                c->v->npath--;
                return 0;
            }
            if ((r = eval_idx(c, n->uneval_i, d, i, x)) <= 0)
                return r;
            bit_set(mine, x);
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* The walk.                                                           */

static int eval_body(struct vctx *c, const struct snode *n,
                     const struct json_doc *d, uint32_t ti, uint64_t *ev)
{
    const struct json_tok *t = &d->toks[ti];
    uint32_t kw = n->kw;
    int r;
    if ((kw & K_TYPE) && !type_ok(n->types, d, t)) {
        if (c->lax) {
            r = coerce(c, n, d, ti);
            if (r != 0)
                return r;
            if (c->done)
                return 0;
        }
        return fail_type(c, n->types, d, ti);
    }
    if ((kw & K_CONST) && !const_eq(c->v, d, ti, &n->constv))
        return c->report ? fail_value(c, d, ti, "is not the constant ", n->const_text) : 0;
    if (kw & K_ENUM) {
        uint32_t i = 0;
        if (t->type == JSON_STRING) {
            for (; i < n->nenum; i++)
                if (n->enumv[i].type == JSON_STRING &&
                    str_eq(d, t, n->enumv[i].str, n->enumv[i].len))
                    break;
        } else if (!n->enum_all_str) {
            for (; i < n->nenum; i++) {
                r = const_eq(c->v, d, ti, &n->enumv[i]);
                if (r < 0)
                    return WEIR_ENOMEM;
                if (r)
                    break;
            }
        } else {
            i = n->nenum;
        }
        if (i == n->nenum)
            return c->report ? fail_value(c, d, ti, "is not one of ", n->enum_text) : 0;
    }
    /* unevaluated*: collect what everything else evaluated. */
    struct skmark mark;
    uint64_t *mine = ev;
    int own = 0;
    if ((kw & K_UNEVAL) && ((t->type == JSON_OBJECT && n->uneval_p) ||
                            (t->type == JSON_ARRAY && n->uneval_i))) {
        mark = sk_mark(c->v);
        mine = sk_alloc(c->v, bit_words(t->count));
        if (!mine)
            return WEIR_ENOMEM;
        own = 1;
    }
    switch (t->type) {
    case JSON_OBJECT:
        if ((kw & K_OBJ) && (r = eval_object(c, n, d, ti, mine)) <= 0)
            goto out;
        break;
    case JSON_ARRAY:
        if ((kw & K_ARR) && (r = eval_array(c, n, d, ti, mine)) <= 0)
            goto out;
        break;
    case JSON_STRING:
        if ((kw & K_STR) && (r = eval_string(c, n, d, ti)) <= 0)
            return r;
        break;
    case JSON_NUMBER:
        if ((kw & K_NUM) && (r = eval_number(c, n, d, ti)) <= 0)
            return r;
        break;
    default:
        break;
    }
    if ((kw & K_INPLACE) && (r = eval_inplace(c, n, d, ti, mine)) <= 0)
        goto out;
    r = 1;
    if (own) {
        r = eval_uneval(c, n, d, ti, mine);
        if (r == 1 && ev)
            for (size_t w = 0; w < bit_words(t->count); w++)
                ev[w] |= mine[w];
    }
out:
    if (own)
        sk_release(c->v, mark);
    return r;
}

static int eval(struct vctx *c, const struct snode *n, const struct json_doc *d,
                uint32_t ti, uint64_t *ev)
{
    if (n->kw == 0)
        return 1;
    if (n->kw & K_FALSE)
        return fail(c, "no value is allowed here (the schema is false)");
    if (++c->depth > c->max_depth) {
        c->depth--;
        return fail(c, "schema evaluation deeper than %u steps (a $ref loop?)",
                    c->s->max_eval_depth);
    }
    struct validator *v = c->v;
    int pushed = 0;
    if (c->dynamic && (v->nscope == 0 || v->scope[v->nscope - 1] != n->res)) {
        v->scope[v->nscope++] = n->res;
        pushed = 1;
    }
    int r = eval_body(c, n, d, ti, ev);
    if (pushed)
        v->nscope--;
    c->depth--;
    return r;
}

/* ------------------------------------------------------------------ */
/* Duplicate keys.                                                     */

struct kitem {
    uint64_t h;
    uint32_t tok, pad;
};

static int kitem_cmp(const void *a, const void *b)
{
    const struct kitem *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->tok < y->tok ? -1 : (x->tok > y->tok);
}

/* 1 no duplicates, 0 with *dup the later key token, < 0 error. Objects
 * marked in skip (may be NULL) are known to be fine. */
static int find_duplicate(struct validator *v, const struct json_doc *d,
                          const uint64_t *skip, uint32_t *dup)
{
    for (uint32_t ti = 0; ti < d->ntoks; ti++) {
        const struct json_tok *t = &d->toks[ti];
        if (t->type != JSON_OBJECT || t->count < 2 || (skip && bit_get(skip, ti)))
            continue;
        uint32_t best = UINT32_MAX;
        if (t->count <= 16) {
            uint32_t i = ti + 1;
            for (uint32_t x = 0; x < t->count; x++) {
                const struct json_tok *ki = &d->toks[i];
                uint32_t j = d->toks[i + 1].next;
                for (uint32_t y = x + 1; y < t->count; y++) {
                    const struct json_tok *kj = &d->toks[j];
                    int r = 0;
                    if (!((ki->flags | kj->flags) & JSON_F_ESCAPED)) {
                        const char *a = d->src + ki->off, *b = d->src + kj->off;
                        /* Raw tokens include quotes: compare the first and
                         * last bytes of the names before the rest. */
                        uint32_t kl = ki->len;
                        r = kl == kj->len &&
                            (kl <= 2 || (a[1] == b[1] && a[kl - 2] == b[kl - 2] &&
                                         (kl <= 4 || bytes_eq(a + 2, b + 2, kl - 4))));
                    } else {
                        r = tok_str_eq(v, d, ki, d, kj);
                        if (r < 0)
                            return WEIR_ENOMEM;
                    }
                    if (r && j < best)
                        best = j;
                    j = d->toks[j + 1].next;
                }
                i = d->toks[i + 1].next;
            }
        } else {
            struct skmark mark = sk_mark(v);
            size_t words = ((size_t)t->count * sizeof(struct kitem) + 7) / 8;
            struct kitem *ks = (struct kitem *)sk_alloc(v, words);
            if (!ks)
                return WEIR_ENOMEM;
            uint32_t i = ti + 1;
            for (uint32_t x = 0; x < t->count; x++) {
                size_t n;
                const char *p = str_bytes(&v->eqb, d, &d->toks[i], &n);
                if (!p) {
                    sk_release(v, mark);
                    return WEIR_ENOMEM;
                }
                ks[x] = (struct kitem){bytes_hash(p, n), i, 0};
                i = d->toks[i + 1].next;
            }
            qsort(ks, t->count, sizeof *ks, kitem_cmp);
            for (uint32_t x = 0; x + 1 < t->count; x++)
                for (uint32_t y = x + 1; y < t->count && ks[y].h == ks[x].h; y++) {
                    int r = tok_str_eq(v, d, &d->toks[ks[x].tok], d, &d->toks[ks[y].tok]);
                    if (r < 0) {
                        sk_release(v, mark);
                        return WEIR_ENOMEM;
                    }
                    uint32_t later = ks[x].tok > ks[y].tok ? ks[x].tok : ks[y].tok;
                    if (r && later < best)
                        best = later;
                }
            sk_release(v, mark);
        }
        if (best != UINT32_MAX) {
            *dup = best;
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Lax output.                                                         */

static int rw_cmp(const void *a, const void *b)
{
    const struct rewrite *x = a, *y = b;
    return x->off < y->off ? -1 : (x->off > y->off);
}

static int apply_rewrites(struct validator *v, const char *rec, size_t len)
{
    qsort(v->rw, v->nrw, sizeof *v->rw, rw_cmp);
    buf_reset(&v->out);
    size_t pos = 0;
    for (uint32_t i = 0; i < v->nrw; i++) {
        const struct rewrite *w = &v->rw[i];
        if (w->off < pos)
            continue; /* the same value coerced twice */
        if (buf_append(&v->out, rec + pos, w->off - pos) ||
            buf_append(&v->out, v->lit.data + w->lit_off, w->lit_len))
            return WEIR_ENOMEM;
        pos = (size_t)w->off + w->len;
    }
    if (buf_append(&v->out, rec + pos, len - pos))
        return WEIR_ENOMEM;
    return 0;
}

/* ------------------------------------------------------------------ */

struct validator *validator_new(const struct schema *s)
{
    struct validator *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->s = s;
    size_t maxrec = s->opts.max_record;
    json_doc_init(&v->doc, s->opts.max_depth);
    json_doc_init(&v->cdoc, 4);
    json_doc_init(&v->odoc, s->opts.max_depth);
    buf_init(&v->dec, maxrec + 16);
    buf_init(&v->keyb, maxrec + 16);
    buf_init(&v->eqb, maxrec + 16);
    buf_init(&v->ctext, maxrec + 80);
    buf_init(&v->lit, 4 * maxrec + 64);
    buf_init(&v->out, 4 * maxrec + 64);
    v->rx = regex_scratch_new();
    v->cappath = s->max_eval_depth + 8;
    v->path = calloc(v->cappath, sizeof *v->path);
    v->scope = calloc(s->max_eval_depth + 8, sizeof *v->scope);
    if (!v->rx || !v->path || !v->scope) {
        validator_free(v);
        return NULL;
    }
    return v;
}

void validator_free(struct validator *v)
{
    if (!v)
        return;
    json_doc_release(&v->doc);
    json_doc_release(&v->cdoc);
    json_doc_release(&v->odoc);
    buf_release(&v->dec);
    buf_release(&v->keyb);
    buf_release(&v->eqb);
    buf_release(&v->ctext);
    buf_release(&v->lit);
    buf_release(&v->out);
    free(v->rw);
    regex_scratch_free(v->rx);
    for (uint32_t i = 0; i < v->nsk; i++)
        free(v->sk[i].p);
    free(v->sk);
    free(v->path);
    free(v->scope);
    free(v);
}

static int walk(struct vctx *c, const struct json_doc *d, int report, int lax,
                int track_dups)
{
    struct validator *v = c->v;
    c->report = report;
    c->lax = lax;
    c->done = 0;
    c->depth = 0;
    v->nscope = 0;
    v->npath = 0;
    v->skcur = 0;
    if (v->nsk)
        v->sk[0].used = 0;
    v->nrw = 0;
    buf_reset(&v->lit);
    v->dupfree = NULL;
    if (track_dups && !(v->dupfree = sk_alloc(v, bit_words(d->ntoks))))
        return WEIR_ENOMEM;
    return eval(c, c->s->root, d, 0, NULL);
}

static int report(struct vctx *c, const struct json_doc *d, int lax)
{
    int r = walk(c, d, 1, lax, 0);
    if (r < 0)
        return r;
    if (!c->done) {
        /* The quiet walk and the report walk disagree: a bug, but the
         * record still gets a verdict. */
        snprintf(c->vd->message, sizeof c->vd->message,
                 "record does not match the schema");
    }
    return 0;
}

int validator_check(struct validator *v, const char *rec, size_t len,
                    struct verdict *vd)
{
    struct verdict dummy;
    const struct schema *s = v->s;
    if (!vd)
        vd = &dummy;
    vd->offset = 0;
    vd->json_error = 0;
    vd->path[0] = '\0';
    vd->message[0] = '\0';
    v->out_ptr = rec;
    v->out_len = len;
    v->last = NULL;
    v->ncoerced = 0;
    if (len > s->opts.max_record) {
        vd->json_error = 1;
        vd->offset = s->opts.max_record;
        snprintf(vd->message, sizeof vd->message,
                 "record is %zu bytes, longer than the limit of %zu bytes "
                 "(limits.max_record)", len, s->opts.max_record);
        return 0;
    }
    enum json_error je = json_scan(&v->doc, rec, len);
    if (je == JSON_ERR_NOMEM)
        return WEIR_ENOMEM;
    if (je != JSON_OK) {
        vd->json_error = 1;
        vd->offset = v->doc.err_off;
        json_describe_error(&v->doc, vd->message, sizeof vd->message);
        return 0;
    }
    v->last = &v->doc;
    /*
     * Duplicate keys: the quick walk notices them among the names the
     * schema lists and marks the objects whose keys it has all seen as
     * checked; find_duplicate then looks only at the others. A record that
     * fails for any reason gets the full check before its verdict, so a
     * duplicate is always reported as such.
     */
    struct vctx c = {v, s, vd, 0, 0, 0, 0, s->max_eval_depth, s->has_dynref};
    int r = walk(&c, &v->doc, 0, 0, 1);
    if (r < 0)
        return r;
    uint32_t dup;
    int u = find_duplicate(v, &v->doc, r == 1 ? v->dupfree : NULL, &dup);
    v->dupfree = NULL;
    if (u < 0)
        return u;
    if (u == 0) {
        char q[VALUE_QUOTE_MAX + 16];
        schema_pointer_of(&v->doc, dup, vd->path, sizeof vd->path);
        snprintf(vd->message, sizeof vd->message, "duplicate key %s",
                 quote(&v->doc, dup, q, sizeof q));
        vd->offset = v->doc.toks[dup].off;
        return 0;
    }
    if (r == 1)
        return 1;
    if (!s->opts.lax)
        return report(&c, &v->doc, 0);
    r = walk(&c, &v->doc, 0, 1, 0);
    if (r < 0)
        return r;
    if (r == 0)
        return report(&c, &v->doc, 1);
    /* Valid with coercions: store the rewritten record, which must pass
     * the schema as it is. */
    uint32_t ncoerced = v->nrw;
    if ((r = apply_rewrites(v, rec, len)) < 0)
        return r;
    je = json_scan(&v->odoc, v->out.data, v->out.len);
    if (je == JSON_ERR_NOMEM)
        return WEIR_ENOMEM;
    if (je != JSON_OK) {
        snprintf(vd->message, sizeof vd->message, "lax rewrite produced invalid JSON");
        return 0;
    }
    v->last = &v->odoc;
    r = walk(&c, &v->odoc, 0, 0, 0);
    if (r < 0)
        return r;
    if (r == 0)
        return report(&c, &v->odoc, 0);
    v->out_ptr = v->out.data;
    v->out_len = v->out.len;
    v->ncoerced = ncoerced;
    return 1;
}

const char *validator_output(const struct validator *v, size_t *len)
{
    *len = v->out_len;
    return v->out_ptr;
}

const struct json_doc *validator_doc(const struct validator *v)
{
    return v->last;
}

unsigned validator_coerced(const struct validator *v)
{
    return v->ncoerced;
}
