/*
 * schema.c - the schema compiler: JSON Schema text to struct snode graph.
 *
 * Loading runs in three steps:
 *
 *   1. register: walk each document along the keywords that hold
 *      subschemas (never into enum, const or unknown keywords, where an
 *      "$id" is just data), computing every subschema's base URI and
 *      recording the resources ($id), anchors ($anchor, $dynamicAnchor);
 *   2. compile: from the root, turn each schema object into a node, once
 *      (a memo per token makes $ref cycles terminate); $ref targets found
 *      in documents not yet loaded are loaded and registered on demand;
 *   3. link: replace nodes that are nothing but a $ref by their target,
 *      fold anyOf lists of bare types into a type mask (pydantic writes
 *      `anyOf: [{type: number}, {type: string}]` for `float | str`).
 *
 * The keyword rules (supported, refused, ignored) are in docs/schema.md.
 */
#include "schema/schema.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "schema/compiled.h"
#include "schema/format.h"

/* ------------------------------------------------------------------ */
/* Arena: every node and array of a schema, freed at once.             */

struct ablock {
    struct ablock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct ablock *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        struct ablock *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void arena_free(struct arena *a)
{
    if (!a)
        return;
    while (a->head) {
        struct ablock *b = a->head;
        a->head = b->next;
        free(b);
    }
    free(a);
}

/* ------------------------------------------------------------------ */
/* Documents and the registry of URIs.                                 */

#define NONE UINT32_MAX

struct sdoc {
    struct sdoc *next;
    const char *uri;          /* where it was loaded from */
    char *text;
    size_t len;
    struct json_doc jd;
    const char **base_of;     /* per token: base URI, NULL if not a schema */
    uint32_t *res_of;         /* per token: resource index */
    struct snode **node_of;   /* per token: compiled node */
};

struct reg_res {
    const char *uri;
    struct sdoc *doc;
    uint32_t tok;
    uint32_t res;
};

struct reg_anchor {
    const char *uri;          /* base URI of the resource */
    const char *name;
    struct sdoc *doc;
    uint32_t tok;
    uint32_t res;
    int dynamic;
};

/* A resolved reference. */
struct target {
    struct sdoc *doc;
    uint32_t tok;
    const char *base;         /* base URI if the token was not registered */
    uint32_t res;
};

struct cc {
    struct schema *s;
    struct arena *a;
    struct weir_errmsg *err;
    struct reg_res *rr;
    uint32_t nrr, caprr;
    struct reg_anchor *ra;
    uint32_t nra, capra;
    char root_dir[PATH_MAX];  /* directory of the root file, "" if none */
    const char *root_id_dir;  /* $id of the root up to its last '/' */
    struct buf unknown;       /* unknown keywords seen, for one warning */
    uint32_t ndocs;
    uint32_t nnodes;
};

/* errmsg for a place in a schema document. */
__attribute__((format(printf, 4, 5))) static int
fail_at(struct cc *c, const struct sdoc *doc, uint32_t tok, const char *fmt, ...)
{
    char where[512], msg[700];
    schema_pointer_of(&doc->jd, tok, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* "unsupported keyword: X" stays at the front so tools can match it. */
    return errmsg_set(c->err, WEIR_ESCHEMA, "%s (at %s#%s)", msg, doc->uri,
                      where);
}

static int oom(struct cc *c)
{
    return errmsg_set(c->err, WEIR_ENOMEM, "out of memory compiling schema");
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint32_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return WEIR_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers over the token tape.                                  */

static const struct json_tok *tk(const struct sdoc *d, uint32_t t)
{
    return &d->jd.toks[t];
}

/* Decode string token t into the arena. */
static const char *str_dup(struct cc *c, const struct sdoc *d, uint32_t t,
                           uint32_t *len)
{
    const struct json_tok *x = tk(d, t);
    char *p = arena_alloc(c->a, x->len + 1);
    if (!p)
        return NULL;
    size_t n = json_str_decode(&d->jd, x, p, x->len);
    p[n] = '\0';
    if (len)
        *len = (uint32_t)n;
    return p;
}

/* Value token of member key of object t, or NONE. */
static uint32_t member(const struct sdoc *d, uint32_t t, const char *key)
{
    const struct json_tok *o = tk(d, t);
    if (o->type != JSON_OBJECT)
        return NONE;
    uint32_t i = t + 1;
    size_t kl = strlen(key);
    for (uint32_t m = 0; m < o->count; m++) {
        if (json_str_eq(&d->jd, tk(d, i), key, kl))
            return i + 1;
        i = tk(d, i + 1)->next;
    }
    return NONE;
}

char *schema_compact_text(const struct json_doc *d, uint32_t t, char *out,
                          size_t cap)
{
    const struct json_tok *x = &d->toks[t];
    const char *p = d->src + x->off;
    size_t o = 0;
    int instr = 0, esc = 0;
    if (cap == 0)
        return out;
    for (uint32_t i = 0; i < x->len; i++) {
        char ch = p[i];
        if (!instr && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'))
            continue;
        if (instr) {
            if (esc)
                esc = 0;
            else if (ch == '\\')
                esc = 1;
            else if (ch == '"')
                instr = 0;
        } else if (ch == '"') {
            instr = 1;
        }
        if (o + 1 >= cap) {
            /* Cut on a UTF-8 boundary and say so. */
            size_t keep = cap > 4 ? cap - 4 : 0;
            while (keep > 0 && ((unsigned char)out[keep] & 0xC0) == 0x80)
                keep--;
            o = keep;
            if (cap > 4) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    return out;
}

void schema_pointer_append(char *out, size_t cap, size_t *len, const char *s,
                           size_t n)
{
    size_t o = *len;
    if (o + 1 < cap)
        out[o++] = '/';
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '~' || s[i] == '/') {
            if (o + 2 >= cap)
                break;
            out[o++] = '~';
            out[o++] = s[i] == '~' ? '0' : '1';
        } else {
            out[o++] = s[i];
        }
    }
    if (cap)
        out[o < cap ? o : cap - 1] = '\0';
    *len = o;
}

char *schema_pointer_of(const struct json_doc *d, uint32_t t, char *out,
                        size_t cap)
{
    size_t len = 0;
    char key[256];
    if (cap)
        out[0] = '\0';
    uint32_t cur = 0;
    while (cur != t && cur < d->ntoks) {
        const struct json_tok *x = &d->toks[cur];
        uint32_t i = cur + 1, found = NONE;
        if (x->type == JSON_OBJECT) {
            for (uint32_t m = 0; m < x->count; m++) {
                uint32_t end = d->toks[i + 1].next;
                if (t >= i && t < end) {
                    const struct json_tok *k = &d->toks[i];
                    /* A very long key is cut: the pointer is for a
                     * message here, not an address. */
                    size_t kn = json_str_decode(d, k, key, sizeof key);
                    if (kn > sizeof key)
                        kn = sizeof key;
                    schema_pointer_append(out, cap, &len, key, kn);
                    found = t == i ? t : i + 1;
                    break;
                }
                i = end;
            }
        } else if (x->type == JSON_ARRAY) {
            for (uint32_t m = 0; m < x->count; m++) {
                uint32_t end = d->toks[i].next;
                if (t >= i && t < end) {
                    char num[24];
                    int k = snprintf(num, sizeof num, "%u", m);
                    schema_pointer_append(out, cap, &len, num, (size_t)k);
                    found = i;
                    break;
                }
                i = end;
            }
        }
        if (found == NONE)
            break;
        cur = found;
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* URIs (RFC 3986 section 5.2: reference resolution).                  */

struct uri {
    const char *s;
    size_t scheme, auth_off, auth_len, path_off, path_len, q_off, q_len,
        f_off, f_len;
    int has_scheme, has_auth, has_q, has_f;
};

static void uri_parse(const char *s, struct uri *u)
{
    memset(u, 0, sizeof *u);
    u->s = s;
    size_t n = strlen(s), i = 0;
    if (n && ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')) {
        size_t j = 1;
        while (j < n && (((s[j] | 32) >= 'a' && (s[j] | 32) <= 'z') ||
                         (s[j] >= '0' && s[j] <= '9') || s[j] == '+' ||
                         s[j] == '-' || s[j] == '.'))
            j++;
        if (j < n && s[j] == ':') {
            u->has_scheme = 1;
            u->scheme = j;
            i = j + 1;
        }
    }
    if (i + 1 < n + 1 && s[i] == '/' && s[i + 1] == '/') {
        u->has_auth = 1;
        i += 2;
        u->auth_off = i;
        while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
            i++;
        u->auth_len = i - u->auth_off;
    }
    u->path_off = i;
    while (i < n && s[i] != '?' && s[i] != '#')
        i++;
    u->path_len = i - u->path_off;
    if (i < n && s[i] == '?') {
        u->has_q = 1;
        u->q_off = ++i;
        while (i < n && s[i] != '#')
            i++;
        u->q_len = i - u->q_off;
    }
    if (i < n && s[i] == '#') {
        u->has_f = 1;
        u->f_off = i + 1;
        u->f_len = n - i - 1;
    }
}

/* RFC 3986 5.2.4, on p[0..n) into out. */
static int remove_dots(struct buf *out, const char *p, size_t n)
{
    size_t start = out->len;
    size_t i = 0;
    while (i < n) {
        if (n - i >= 3 && memcmp(p + i, "../", 3) == 0) {
            i += 3;
        } else if (n - i >= 2 && memcmp(p + i, "./", 2) == 0) {
            i += 2;
        } else if (n - i >= 3 && memcmp(p + i, "/./", 3) == 0) {
            i += 2;
        } else if (n - i == 2 && memcmp(p + i, "/.", 2) == 0) {
            i += 1;
            if (buf_putc(out, '/'))
                return WEIR_ENOMEM;
            i = n;
        } else if (n - i >= 4 && memcmp(p + i, "/../", 4) == 0) {
            i += 3;
            while (out->len > start && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > start)
                out->len--;
        } else if (n - i == 3 && memcmp(p + i, "/..", 3) == 0) {
            i = n;
            while (out->len > start && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > start)
                out->len--;
            if (buf_putc(out, '/'))
                return WEIR_ENOMEM;
        } else if ((n - i == 1 && p[i] == '.') ||
                   (n - i == 2 && memcmp(p + i, "..", 2) == 0)) {
            i = n;
        } else {
            size_t j = i;
            if (p[j] == '/')
                j++;
            while (j < n && p[j] != '/')
                j++;
            if (buf_append(out, p + i, j - i))
                return WEIR_ENOMEM;
            i = j;
        }
    }
    if (out->data)
        out->data[out->len] = '\0';
    return 0;
}

/* Resolve ref against base (RFC 3986 5.2.2) into the arena. */
static const char *uri_resolve(struct cc *c, const char *base, const char *ref)
{
    struct uri b, r;
    uri_parse(base, &b);
    uri_parse(ref, &r);
    struct buf o = BUF_INIT(1 << 20), tmp = BUF_INIT(1 << 20);
    int rc = 0;
#define APP(p, n) rc |= buf_append(&o, (p), (n))
    if (r.has_scheme) {
        APP(r.s, r.scheme + 1);
        if (r.has_auth) {
            APP("//", 2);
            APP(r.s + r.auth_off, r.auth_len);
        }
        rc |= remove_dots(&o, r.s + r.path_off, r.path_len);
        if (r.has_q) {
            APP("?", 1);
            APP(r.s + r.q_off, r.q_len);
        }
    } else {
        if (b.has_scheme)
            APP(b.s, b.scheme + 1);
        if (r.has_auth) {
            APP("//", 2);
            APP(r.s + r.auth_off, r.auth_len);
            rc |= remove_dots(&o, r.s + r.path_off, r.path_len);
            if (r.has_q) {
                APP("?", 1);
                APP(r.s + r.q_off, r.q_len);
            }
        } else {
            if (b.has_auth) {
                APP("//", 2);
                APP(b.s + b.auth_off, b.auth_len);
            }
            if (r.path_len == 0) {
                APP(b.s + b.path_off, b.path_len);
                if (r.has_q) {
                    APP("?", 1);
                    APP(r.s + r.q_off, r.q_len);
                } else if (b.has_q) {
                    APP("?", 1);
                    APP(b.s + b.q_off, b.q_len);
                }
            } else {
                if (r.s[r.path_off] == '/') {
                    rc |= remove_dots(&o, r.s + r.path_off, r.path_len);
                } else {
                    /* merge: base path up to its last '/', then ref path */
                    if (b.has_auth && b.path_len == 0) {
                        rc |= buf_putc(&tmp, '/');
                    } else {
                        size_t k = b.path_len;
                        while (k > 0 && b.s[b.path_off + k - 1] != '/')
                            k--;
                        rc |= buf_append(&tmp, b.s + b.path_off, k);
                    }
                    rc |= buf_append(&tmp, r.s + r.path_off, r.path_len);
                    rc |= remove_dots(&o, tmp.data ? tmp.data : "", tmp.len);
                }
                if (r.has_q) {
                    APP("?", 1);
                    APP(r.s + r.q_off, r.q_len);
                }
            }
        }
    }
    if (r.has_f) {
        APP("#", 1);
        APP(r.s + r.f_off, r.f_len);
    }
#undef APP
    const char *res = NULL;
    if (!rc)
        res = arena_strndup(c->a, o.data ? o.data : "", o.len);
    buf_release(&o);
    buf_release(&tmp);
    return res;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 32) >= 'a' && (ch | 32) <= 'f')
        return (ch | 32) - 'a' + 10;
    return -1;
}

/* Split "uri#frag" into the arena: *nofrag and the percent-decoded *frag
 * ("" when there is none). */
static int uri_split(struct cc *c, const char *u, const char **nofrag,
                     const char **frag, size_t *fraglen)
{
    const char *h = strchr(u, '#');
    size_t n = h ? (size_t)(h - u) : strlen(u);
    *nofrag = arena_strndup(c->a, u, n);
    const char *f = h ? h + 1 : "";
    size_t fl = strlen(f);
    char *out = arena_alloc(c->a, fl + 1);
    if (!*nofrag || !out)
        return WEIR_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < fl; i++) {
        int hi, lo;
        if (f[i] == '%' && i + 2 < fl &&
            (hi = hexval(f[i + 1])) >= 0 && (lo = hexval(f[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = f[i];
        }
    }
    out[o] = '\0';
    *frag = out;
    *fraglen = o;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Keywords.                                                           */

enum kwid {
    KW_UNKNOWN = 0,
    /* annotations and core keywords with nothing to check */
    KW_ANNOTATION,
    KW_SCHEMA, KW_ID, KW_ANCHOR, KW_DYNANCHOR, KW_DEFS, KW_CONTENTSCHEMA,
    /* validation */
    KW_TYPE, KW_ENUM, KW_CONST,
    KW_PROPERTIES, KW_REQUIRED, KW_ADDLPROPS, KW_PATPROPS, KW_PROPNAMES,
    KW_MINPROPS, KW_MAXPROPS, KW_DEPREQ, KW_DEPSCH, KW_UNEVALPROPS,
    KW_ITEMS, KW_PREFIXITEMS, KW_CONTAINS, KW_MINCONTAINS, KW_MAXCONTAINS,
    KW_MINITEMS, KW_MAXITEMS, KW_UNIQUE, KW_UNEVALITEMS,
    KW_MINLEN, KW_MAXLEN, KW_PATTERN, KW_FORMAT,
    KW_MIN, KW_MAX, KW_XMIN, KW_XMAX, KW_MULT,
    KW_ALLOF, KW_ANYOF, KW_ONEOF, KW_NOT, KW_IF, KW_THEN, KW_ELSE,
    KW_REF, KW_DYNREF, KW_VOCABULARY,
    /* known, refused */
    KW_UNSUPPORTED,
};

static const struct {
    const char *name;
    enum kwid id;
    const char *hint; /* for refused keywords */
} keywords[] = {
    {"title", KW_ANNOTATION, NULL},
    {"description", KW_ANNOTATION, NULL},
    {"default", KW_ANNOTATION, NULL},
    {"examples", KW_ANNOTATION, NULL},
    {"deprecated", KW_ANNOTATION, NULL},
    {"readOnly", KW_ANNOTATION, NULL},
    {"writeOnly", KW_ANNOTATION, NULL},
    {"$comment", KW_ANNOTATION, NULL},
    {"contentMediaType", KW_ANNOTATION, NULL},
    {"contentEncoding", KW_ANNOTATION, NULL},
    {"contentSchema", KW_CONTENTSCHEMA, NULL},
    {"$schema", KW_SCHEMA, NULL},
    {"$id", KW_ID, NULL},
    {"$anchor", KW_ANCHOR, NULL},
    {"$dynamicAnchor", KW_DYNANCHOR, NULL},
    {"$defs", KW_DEFS, NULL},
    {"definitions", KW_DEFS, NULL},
    {"type", KW_TYPE, NULL},
    {"enum", KW_ENUM, NULL},
    {"const", KW_CONST, NULL},
    {"properties", KW_PROPERTIES, NULL},
    {"required", KW_REQUIRED, NULL},
    {"additionalProperties", KW_ADDLPROPS, NULL},
    {"patternProperties", KW_PATPROPS, NULL},
    {"propertyNames", KW_PROPNAMES, NULL},
    {"minProperties", KW_MINPROPS, NULL},
    {"maxProperties", KW_MAXPROPS, NULL},
    {"dependentRequired", KW_DEPREQ, NULL},
    {"dependentSchemas", KW_DEPSCH, NULL},
    {"unevaluatedProperties", KW_UNEVALPROPS, NULL},
    {"items", KW_ITEMS, NULL},
    {"prefixItems", KW_PREFIXITEMS, NULL},
    {"contains", KW_CONTAINS, NULL},
    {"minContains", KW_MINCONTAINS, NULL},
    {"maxContains", KW_MAXCONTAINS, NULL},
    {"minItems", KW_MINITEMS, NULL},
    {"maxItems", KW_MAXITEMS, NULL},
    {"uniqueItems", KW_UNIQUE, NULL},
    {"unevaluatedItems", KW_UNEVALITEMS, NULL},
    {"minLength", KW_MINLEN, NULL},
    {"maxLength", KW_MAXLEN, NULL},
    {"pattern", KW_PATTERN, NULL},
    {"format", KW_FORMAT, NULL},
    {"minimum", KW_MIN, NULL},
    {"maximum", KW_MAX, NULL},
    {"exclusiveMinimum", KW_XMIN, NULL},
    {"exclusiveMaximum", KW_XMAX, NULL},
    {"multipleOf", KW_MULT, NULL},
    {"allOf", KW_ALLOF, NULL},
    {"anyOf", KW_ANYOF, NULL},
    {"oneOf", KW_ONEOF, NULL},
    {"not", KW_NOT, NULL},
    {"if", KW_IF, NULL},
    {"then", KW_THEN, NULL},
    {"else", KW_ELSE, NULL},
    {"$ref", KW_REF, NULL},
    {"$dynamicRef", KW_DYNREF, NULL},
    {"$vocabulary", KW_VOCABULARY, NULL},
    {"$recursiveRef", KW_UNSUPPORTED,
     "draft 2019-09; use $dynamicRef"},
    {"$recursiveAnchor", KW_UNSUPPORTED,
     "draft 2019-09; use $dynamicAnchor"},
    {"dependencies", KW_UNSUPPORTED,
     "draft 7; use dependentRequired or dependentSchemas"},
    {"additionalItems", KW_UNSUPPORTED,
     "draft 2019-09; use prefixItems and items"},
};

static enum kwid keyword_lookup(const char *k, size_t n, const char **hint)
{
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i].name) == n && memcmp(keywords[i].name, k, n) == 0) {
            *hint = keywords[i].hint;
            return keywords[i].id;
        }
    return KW_UNKNOWN;
}

/* Kinds of keyword values, for the register walk. */
static int holds_schema_map(enum kwid id)
{
    return id == KW_PROPERTIES || id == KW_PATPROPS || id == KW_DEFS ||
           id == KW_DEPSCH;
}

static int holds_schema(enum kwid id)
{
    return id == KW_ADDLPROPS || id == KW_PROPNAMES || id == KW_ITEMS ||
           id == KW_CONTAINS || id == KW_NOT || id == KW_IF ||
           id == KW_THEN || id == KW_ELSE || id == KW_UNEVALPROPS ||
           id == KW_UNEVALITEMS || id == KW_CONTENTSCHEMA;
}

static int holds_schema_list(enum kwid id)
{
    return id == KW_PREFIXITEMS || id == KW_ALLOF || id == KW_ANYOF ||
           id == KW_ONEOF;
}

/* ------------------------------------------------------------------ */
/* Step 1: register resources and anchors.                             */

static int add_resource(struct cc *c, const char *uri, struct sdoc *d,
                        uint32_t tok, uint32_t res)
{
    for (uint32_t i = 0; i < c->nrr; i++)
        if (strcmp(c->rr[i].uri, uri) == 0)
            return 0; /* first one wins */
    if (grow((void **)&c->rr, &c->caprr, c->nrr + 1, sizeof *c->rr))
        return oom(c);
    c->rr[c->nrr++] = (struct reg_res){uri, d, tok, res};
    return 0;
}

static uint32_t new_res(struct cc *c, const char *uri)
{
    struct schema *s = c->s;
    if (grow((void **)&s->res, &s->capres, s->nres + 1, sizeof *s->res))
        return NONE;
    memset(&s->res[s->nres], 0, sizeof s->res[0]);
    s->res[s->nres].uri = uri;
    return s->nres++;
}

static int valid_anchor(const char *s, size_t n)
{
    if (n == 0 || !(((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (!(((ch | 32) >= 'a' && (ch | 32) <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

static int reg_walk(struct cc *c, struct sdoc *d, uint32_t t, const char *base,
                    uint32_t res, int is_root)
{
    const struct json_tok *x = tk(d, t);
    if (x->type != JSON_OBJECT) {
        d->base_of[t] = base;
        d->res_of[t] = res;
        return 0;
    }
    uint32_t v = member(d, t, "$id");
    if (v != NONE && tk(d, v)->type == JSON_STRING) {
        const char *id = str_dup(c, d, v, NULL);
        if (!id)
            return oom(c);
        const char *abs = uri_resolve(c, base, id);
        if (!abs)
            return oom(c);
        const char *h = strchr(abs, '#');
        if (h && h[1] != '\0')
            return fail_at(c, d, v, "$id must not contain a fragment: \"%s\"", id);
        if (h)
            abs = arena_strndup(c->a, abs, (size_t)(h - abs));
        if (is_root && strcmp(abs, base) != 0) {
            /* The document is known by its retrieval URI too. */
            res = new_res(c, abs);
            if (res == NONE || add_resource(c, base, d, t, res))
                return oom(c);
        } else {
            res = new_res(c, abs);
            if (res == NONE)
                return oom(c);
        }
        base = abs;
        if (add_resource(c, base, d, t, res))
            return WEIR_ENOMEM;
    } else if (is_root) {
        res = new_res(c, base);
        if (res == NONE || add_resource(c, base, d, t, res))
            return oom(c);
    }
    d->base_of[t] = base;
    d->res_of[t] = res;

    const char *anames[2] = {"$anchor", "$dynamicAnchor"};
    for (int k = 0; k < 2; k++) {
        uint32_t av = member(d, t, anames[k]);
        if (av == NONE)
            continue;
        if (tk(d, av)->type != JSON_STRING)
            return fail_at(c, d, av, "%s must be a string", anames[k]);
        uint32_t len;
        const char *name = str_dup(c, d, av, &len);
        if (!name)
            return oom(c);
        if (!valid_anchor(name, len))
            return fail_at(c, d, av, "%s \"%s\" is not a valid anchor name",
                           anames[k], name);
        if (grow((void **)&c->ra, &c->capra, c->nra + 1, sizeof *c->ra))
            return oom(c);
        c->ra[c->nra++] = (struct reg_anchor){base, name, d, t, res, k};
    }

    uint32_t i = t + 1;
    for (uint32_t m = 0; m < x->count; m++) {
        const struct json_tok *key = tk(d, i);
        uint32_t val = i + 1;
        const char *hint;
        enum kwid id = keyword_lookup(d->jd.src + key->off + 1, key->len - 2, &hint);
        const struct json_tok *vt = tk(d, val);
        int rc = 0;
        if (holds_schema_map(id) && vt->type == JSON_OBJECT) {
            uint32_t j = val + 1;
            for (uint32_t e = 0; e < vt->count && !rc; e++) {
                rc = reg_walk(c, d, j + 1, base, res, 0);
                j = tk(d, j + 1)->next;
            }
        } else if (holds_schema(id)) {
            if (vt->type == JSON_OBJECT || vt->type == JSON_TRUE ||
                vt->type == JSON_FALSE)
                rc = reg_walk(c, d, val, base, res, 0);
        } else if (holds_schema_list(id) && vt->type == JSON_ARRAY) {
            uint32_t j = val + 1;
            for (uint32_t e = 0; e < vt->count && !rc; e++) {
                rc = reg_walk(c, d, j, base, res, 0);
                j = tk(d, j)->next;
            }
        }
        if (rc)
            return rc;
        i = vt->next;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Loading documents.                                                  */

static struct sdoc *doc_add(struct cc *c, const char *text, size_t len,
                            const char *uri)
{
    struct sdoc *d = calloc(1, sizeof *d);
    if (!d) {
        oom(c);
        return NULL;
    }
    d->next = c->s->docs;
    c->s->docs = d;
    d->uri = arena_strndup(c->a, uri, strlen(uri));
    d->text = malloc(len + 1);
    if (!d->uri || !d->text) {
        oom(c);
        return NULL;
    }
    memcpy(d->text, text, len);
    d->text[len] = '\0';
    d->len = len;
    /* Schemas nest deeper than records (the metaschema, generated
     * schemas), and are trusted files. */
    json_doc_init(&d->jd, 1024);
    enum json_error je = json_scan(&d->jd, d->text, len);
    if (je != JSON_OK) {
        char why[256];
        json_describe_error(&d->jd, why, sizeof why);
        errmsg_set(c->err, WEIR_ESCHEMA, "%s: not valid JSON: %s", uri, why);
        return NULL;
    }
    /* {"type": "string", "type": "integer"}: which one did the author
     * mean? Refuse rather than guess. */
    int dup = json_doc_find_duplicate(&d->jd);
    if (dup >= 0) {
        char where[512], name[128];
        schema_pointer_of(&d->jd, (uint32_t)dup, where, sizeof where);
        schema_compact_text(&d->jd, (uint32_t)dup, name, sizeof name);
        errmsg_set(c->err, WEIR_ESCHEMA, "%s: duplicate key %s (at #%s)", uri,
                   name, where);
        return NULL;
    }
    uint32_t n = d->jd.ntoks;
    d->base_of = calloc(n, sizeof *d->base_of);
    d->res_of = malloc(n * sizeof *d->res_of);
    d->node_of = calloc(n, sizeof *d->node_of);
    if (!d->base_of || !d->res_of || !d->node_of) {
        oom(c);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        d->res_of[i] = NONE;
    const struct json_tok *r = tk(d, 0);
    if (r->type != JSON_OBJECT && r->type != JSON_TRUE && r->type != JSON_FALSE) {
        errmsg_set(c->err, WEIR_ESCHEMA,
                   "%s: a schema must be a JSON object or a boolean", uri);
        return NULL;
    }
    c->ndocs++;
    if (reg_walk(c, d, 0, d->uri, NONE, 1))
        return NULL;
    return d;
}

static void doc_free(struct sdoc *d)
{
    json_doc_release(&d->jd);
    free(d->text);
    free(d->base_of);
    free(d->res_of);
    free(d->node_of);
    free(d);
}

static int read_file(const char *path, char **text, size_t *len,
                     struct weir_errmsg *err)
{
#ifdef WEIR_FUZZING
    /* A fuzzed schema must not open files ({"$ref": "file:///dev/stdin"}). */
    return errmsg_set(err, WEIR_ENOTFOUND, "%s: no files while fuzzing", path);
#endif
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return errmsg_set(err, WEIR_EINVAL, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errmsg_set(err, weir_from_errno(errno), "%s: %s", path,
                          strerror(errno));
    struct buf b = BUF_INIT(WEIR_MAX_SCHEMA_BYTES);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        rc = buf_append(&b, chunk, n);
        if (rc)
            break;
    }
    if (!rc && ferror(f))
        rc = WEIR_EIO;
    fclose(f);
    if (rc) {
        buf_release(&b);
        if (rc == WEIR_ELIMIT)
            return errmsg_set(err, rc, "%s: larger than %u bytes, not a schema?",
                              path, WEIR_MAX_SCHEMA_BYTES);
        return errmsg_set(err, rc, "%s: %s", path, weir_strerror(rc));
    }
    *text = buf_detach(&b, len);
    if (!*text)
        return errmsg_set(err, WEIR_ENOMEM, "%s: out of memory", path);
    return 0;
}

/* Load the document for uri (no fragment), from the hook, a file:// URI or
 * the directory of the root schema. */
static struct sdoc *load_remote(struct cc *c, const char *uri)
{
    char path[PATH_MAX];
    int have = 0;
    const struct schema_opts *o = &c->s->opts;
    if (o->resolve && o->resolve(o->resolve_ctx, uri, path, sizeof path) == 0)
        have = 1;
    if (!have && strncmp(uri, "file://", 7) == 0) {
        /* file:///abs/path: percent-decode the path. */
        const char *p = uri + 7;
        size_t k = 0;
        for (; *p && k + 1 < sizeof path; p++) {
            if (p[0] == '%' && p[1] && p[2]) {
                char hex[3] = {p[1], p[2], 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (*end == '\0') {
                    path[k++] = (char)v;
                    p += 2;
                    continue;
                }
            }
            path[k++] = *p;
        }
        path[k] = '\0';
        have = 1;
    }
    if (!have && c->root_id_dir && c->root_dir[0] &&
        strncmp(uri, c->root_id_dir, strlen(c->root_id_dir)) == 0) {
        const char *rest = uri + strlen(c->root_id_dir);
        if (!strstr(rest, "..") &&
            snprintf(path, sizeof path, "%s/%s", c->root_dir, rest) < (int)sizeof path)
            have = 1;
    }
    if (!have) {
        errmsg_set(c->err, WEIR_ESCHEMA,
                   "cannot resolve $ref to %s: no such document loaded, and "
                   "weir does not fetch URLs (put the file beside the schema, "
                   "or give it an $id)", uri);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    struct weir_errmsg e2;
    if (read_file(path, &text, &len, &e2)) {
        errmsg_set(c->err, WEIR_ESCHEMA, "cannot resolve $ref to %s: %s", uri,
                   e2.text);
        return NULL;
    }
    struct sdoc *d = doc_add(c, text, len, uri);
    free(text);
    return d;
}

static struct reg_res *find_res(struct cc *c, const char *uri)
{
    for (uint32_t i = 0; i < c->nrr; i++)
        if (strcmp(c->rr[i].uri, uri) == 0)
            return &c->rr[i];
    return NULL;
}

/* Walk the JSON pointer p (decoded fragment, starting with '/') from token
 * t of d. Returns the token or NONE. */
static uint32_t pointer_walk(struct cc *c, const struct sdoc *d, uint32_t t,
                             const char *p, size_t n)
{
    size_t i = 0;
    char seg[1024];
    while (i < n) {
        if (p[i] != '/')
            return NONE;
        i++;
        size_t sl = 0;
        while (i < n && p[i] != '/') {
            char ch = p[i++];
            if (ch == '~' && i < n && (p[i] == '0' || p[i] == '1'))
                ch = p[i++] == '0' ? '~' : '/';
            if (sl + 1 >= sizeof seg)
                return NONE;
            seg[sl++] = ch;
        }
        const struct json_tok *x = tk(d, t);
        if (x->type == JSON_OBJECT) {
            uint32_t j = t + 1, found = NONE;
            for (uint32_t m = 0; m < x->count; m++) {
                if (json_str_eq(&d->jd, tk(d, j), seg, sl)) {
                    found = j + 1;
                    break;
                }
                j = tk(d, j + 1)->next;
            }
            if (found == NONE)
                return NONE;
            t = found;
        } else if (x->type == JSON_ARRAY) {
            if (sl == 0 || sl > 9 || (sl > 1 && seg[0] == '0'))
                return NONE;
            uint32_t idx = 0;
            for (size_t k = 0; k < sl; k++) {
                if (seg[k] < '0' || seg[k] > '9')
                    return NONE;
                idx = idx * 10 + (uint32_t)(seg[k] - '0');
            }
            if (idx >= x->count)
                return NONE;
            uint32_t j = t + 1;
            for (uint32_t m = 0; m < idx; m++)
                j = tk(d, j)->next;
            t = j;
        } else {
            return NONE;
        }
    }
    (void)c;
    return t;
}

/* Resolve reference ref (as written) against base. */
static int resolve_ref(struct cc *c, const struct sdoc *from, uint32_t at,
                       const char *base, const char *ref, struct target *out,
                       const char **fragment)
{
    const char *abs = uri_resolve(c, base, ref);
    const char *nofrag, *frag;
    size_t fl;
    if (!abs || uri_split(c, abs, &nofrag, &frag, &fl))
        return oom(c);
    struct reg_res *r = find_res(c, nofrag);
    if (!r) {
        if (!load_remote(c, nofrag)) {
            char msg[sizeof c->err->text];
            snprintf(msg, sizeof msg, "%s", c->err->text);
            return fail_at(c, from, at, "%s", msg);
        }
        r = find_res(c, nofrag);
        if (!r)
            return fail_at(c, from, at, "$ref \"%s\": %s has no schema", ref, nofrag);
    }
    *fragment = frag;
    out->doc = r->doc;
    out->base = r->uri;
    out->res = r->res;
    if (fl == 0) {
        out->tok = r->tok;
    } else if (frag[0] == '/') {
        out->tok = pointer_walk(c, r->doc, r->tok, frag, fl);
        if (out->tok == NONE)
            return fail_at(c, from, at, "$ref \"%s\": no such location in %s",
                           ref, nofrag);
    } else {
        out->tok = NONE;
        for (uint32_t i = 0; i < c->nra; i++)
            if (strcmp(c->ra[i].uri, nofrag) == 0 && strcmp(c->ra[i].name, frag) == 0) {
                out->doc = c->ra[i].doc;
                out->tok = c->ra[i].tok;
                out->res = c->ra[i].res;
                break;
            }
        if (out->tok == NONE)
            return fail_at(c, from, at, "$ref \"%s\": no anchor \"%s\" in %s",
                           ref, frag, nofrag);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Step 2: compile.                                                    */

static struct snode *compile_node(struct cc *c, struct sdoc *d, uint32_t t,
                                  const char *base, uint32_t res);

static int want_type(struct cc *c, struct sdoc *d, uint32_t v, int type,
                     const char *kw, const char *what)
{
    int ty = tk(d, v)->type;
    if (ty == type || (type == JSON_TRUE && ty == JSON_FALSE))
        return 0;
    return fail_at(c, d, v, "%s must be %s", kw, what);
}

static int is_schema_tok(const struct sdoc *d, uint32_t v)
{
    int ty = tk(d, v)->type;
    return ty == JSON_OBJECT || ty == JSON_TRUE || ty == JSON_FALSE;
}

static struct snode *sub(struct cc *c, struct sdoc *d, uint32_t v,
                         const char *base, uint32_t res, const char *kw)
{
    if (!is_schema_tok(d, v)) {
        fail_at(c, d, v, "%s must be a schema (an object or a boolean)", kw);
        return NULL;
    }
    return compile_node(c, d, v, base, res);
}

static int sub_list(struct cc *c, struct sdoc *d, uint32_t v, const char *base,
                    uint32_t res, const char *kw, struct snode ***out,
                    uint32_t *n)
{
    const struct json_tok *x = tk(d, v);
    if (x->type != JSON_ARRAY || x->count == 0)
        return fail_at(c, d, v, "%s must be a non-empty array of schemas", kw);
    *out = arena_alloc(c->a, x->count * sizeof **out);
    if (!*out)
        return oom(c);
    uint32_t j = v + 1;
    for (uint32_t i = 0; i < x->count; i++) {
        (*out)[i] = sub(c, d, j, base, res, kw);
        if (!(*out)[i])
            return WEIR_ESCHEMA;
        j = tk(d, j)->next;
    }
    *n = x->count;
    return 0;
}

static int number_of(struct cc *c, struct sdoc *d, uint32_t v, const char *kw,
                     struct slimit *out)
{
    const struct json_tok *x = tk(d, v);
    if (x->type != JSON_NUMBER)
        return fail_at(c, d, v, "%s must be a number", kw);
    out->text = d->jd.src + x->off;
    out->len = x->len;
    if (decnum_parse(&out->d, out->text, out->len))
        return fail_at(c, d, v, "%s: bad number", kw);
    return 0;
}

static int count_of(struct cc *c, struct sdoc *d, uint32_t v, const char *kw,
                    uint64_t *out)
{
    struct slimit l;
    if (number_of(c, d, v, kw, &l))
        return WEIR_ESCHEMA;
    if (l.d.neg || !decnum_is_integer(&l.d))
        return fail_at(c, d, v, "%s must be a non-negative integer", kw);
    uint64_t n = 0;
    if (l.d.ndig && l.d.exp > 19) {
        n = UINT64_MAX;
    } else {
        for (int64_t i = 0; i < l.d.exp; i++) {
            uint64_t dg = (uint64_t)i < l.d.ndig ? (uint64_t)decnum_digit(&l.d, (uint32_t)i) : 0;
            if (n > (UINT64_MAX - dg) / 10) {
                n = UINT64_MAX;
                break;
            }
            n = n * 10 + dg;
        }
    }
    *out = n;
    return 0;
}

static int const_of(struct cc *c, struct sdoc *d, uint32_t v, struct sconst *k)
{
    const struct json_tok *x = tk(d, v);
    k->type = x->type;
    k->doc = &d->jd;
    k->tok = v;
    if (x->type == JSON_STRING) {
        k->str = str_dup(c, d, v, &k->len);
        if (!k->str)
            return oom(c);
    } else if (x->type == JSON_NUMBER) {
        decnum_parse(&k->num, d->jd.src + x->off, x->len);
    }
    return 0;
}

static const char *compact_dup(struct cc *c, struct sdoc *d, uint32_t v)
{
    char tmp[240];
    schema_compact_text(&d->jd, v, tmp, sizeof tmp);
    return arena_strndup(c->a, tmp, strlen(tmp));
}

/* properties + required into n->props and the required bit mask. */
static int build_props(struct cc *c, struct sdoc *d, struct snode *n,
                       uint32_t tprops, uint32_t treq, const char *base,
                       uint32_t res)
{
    uint32_t np = tprops != NONE ? tk(d, tprops)->count : 0;
    uint32_t nr = treq != NONE ? tk(d, treq)->count : 0;
    n->props = arena_alloc(c->a, (np + nr + 1) * sizeof *n->props);
    if (!n->props)
        return oom(c);
    if (tprops != NONE) {
        uint32_t j = tprops + 1;
        for (uint32_t i = 0; i < np; i++) {
            struct sprop *p = &n->props[n->nprops];
            p->key = str_dup(c, d, j, &p->len);
            if (!p->key)
                return oom(c);
            p->node = sub(c, d, j + 1, base, res, "a value of properties");
            if (!p->node)
                return WEIR_ESCHEMA;
            n->nprops++;
            j = tk(d, j + 1)->next;
        }
    }
    if (treq != NONE) {
        uint32_t j = treq + 1;
        uint32_t k = 0;
        for (uint32_t i = 0; i < nr; i++, j = tk(d, j)->next) {
            if (tk(d, j)->type != JSON_STRING)
                return fail_at(c, d, j, "required must be an array of strings");
            uint32_t len;
            const char *name = str_dup(c, d, j, &len);
            if (!name)
                return oom(c);
            struct sprop *p = NULL;
            for (uint32_t q = 0; q < n->nprops; q++)
                if (n->props[q].len == len && memcmp(n->props[q].key, name, len) == 0)
                    p = &n->props[q];
            if (p && p->req_bit)
                continue; /* listed twice */
            if (k >= 64) {
                /* Rare: checked by name after the member loop. */
                if (!n->req_extra) {
                    n->req_extra = arena_alloc(c->a, nr * sizeof *n->req_extra);
                    if (!n->req_extra)
                        return oom(c);
                }
                n->req_extra[n->nreq_extra++] = (struct sname){name, len};
                continue;
            }
            if (!p) {
                p = &n->props[n->nprops++];
                p->key = name;
                p->len = len;
            }
            p->req_bit = UINT64_C(1) << k++;
            n->req_mask |= p->req_bit;
        }
        n->okw |= O_REQUIRED;
    }
    if (n->nprops > 8) {
        uint32_t size = 16;
        while (size < n->nprops * 2)
            size *= 2;
        n->ptab = arena_alloc(c->a, size * sizeof *n->ptab);
        if (!n->ptab)
            return oom(c);
        n->ptab_mask = size - 1;
        for (uint32_t i = 0; i < n->nprops; i++) {
            uint32_t h = schema_hash(n->props[i].key, n->props[i].len) & n->ptab_mask;
            while (n->ptab[h])
                h = (h + 1) & n->ptab_mask;
            n->ptab[h] = i + 1;
        }
    }
    return 0;
}

/* $vocabulary (in a metaschema): fine when it lists only vocabularies weir
 * implements, so the standard metaschema itself loads. */
static int check_vocabulary(struct cc *c, struct sdoc *d, uint32_t v)
{
    static const char *const known[] = {
        "https://json-schema.org/draft/2020-12/vocab/core",
        "https://json-schema.org/draft/2020-12/vocab/applicator",
        "https://json-schema.org/draft/2020-12/vocab/unevaluated",
        "https://json-schema.org/draft/2020-12/vocab/validation",
        "https://json-schema.org/draft/2020-12/vocab/meta-data",
        "https://json-schema.org/draft/2020-12/vocab/format-annotation",
        "https://json-schema.org/draft/2020-12/vocab/content",
    };
    const struct json_tok *x = tk(d, v);
    if (x->type != JSON_OBJECT)
        return fail_at(c, d, v, "$vocabulary must be an object");
    uint32_t j = v + 1;
    for (uint32_t m = 0; m < x->count; m++, j = tk(d, j + 1)->next) {
        int ok = 0;
        for (size_t q = 0; q < sizeof known / sizeof known[0]; q++)
            if (json_str_eq(&d->jd, tk(d, j), known[q], strlen(known[q])))
                ok = 1;
        if (!ok) {
            char name[200];
            schema_compact_text(&d->jd, j, name, sizeof name);
            return fail_at(c, d, j, "unsupported keyword: $vocabulary (vocabulary "
                                    "%s; weir implements the standard 2020-12 "
                                    "vocabularies, with format as annotation)",
                           name);
        }
    }
    return 0;
}

static const char *dialects[] = {
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2020-12/schema#",
};

static struct snode *compile_node(struct cc *c, struct sdoc *d, uint32_t t,
                                  const char *base, uint32_t res)
{
    const struct json_tok *x = tk(d, t);
    if (x->type == JSON_TRUE)
        return &c->s->true_node;
    if (x->type == JSON_FALSE)
        return &c->s->false_node;
    if (x->type != JSON_OBJECT) {
        fail_at(c, d, t, "a schema must be an object or a boolean");
        return NULL;
    }
    if (d->node_of[t])
        return d->node_of[t];
    struct snode *n = arena_alloc(c->a, sizeof *n);
    if (!n) {
        oom(c);
        return NULL;
    }
    d->node_of[t] = n;
    n->next_all = c->s->all;
    c->s->all = n;
    c->nnodes++;
    if (d->base_of[t])
        base = d->base_of[t];
    else if (member(d, t, "$id") != NONE) {
        /* Reached only through a pointer into a non-schema location. */
        uint32_t v = member(d, t, "$id");
        if (tk(d, v)->type == JSON_STRING) {
            const char *id = str_dup(c, d, v, NULL);
            if (id)
                base = uri_resolve(c, base, id);
        }
    }
    if (d->res_of[t] != NONE)
        res = d->res_of[t];
    n->res = res;

    uint32_t tprops = NONE, treq = NONE, tif = NONE, tthen = NONE, telse = NONE;
    uint32_t i = t + 1;
    for (uint32_t m = 0; m < x->count; m++, i = tk(d, i + 1)->next) {
        const struct json_tok *key = tk(d, i);
        uint32_t v = i + 1;
        const char *kraw = d->jd.src + key->off + 1;
        size_t klen = key->len - 2;
        const char *hint = NULL;
        enum kwid id = (key->flags & JSON_F_ESCAPED) ? KW_UNKNOWN
                                                     : keyword_lookup(kraw, klen, &hint);
        const char *kw = NULL;
        for (size_t q = 0; q < sizeof keywords / sizeof keywords[0]; q++)
            if (keywords[q].id == id && strlen(keywords[q].name) == klen &&
                memcmp(keywords[q].name, kraw, klen) == 0)
                kw = keywords[q].name;
        switch (id) {
        case KW_UNKNOWN: {
            char name[128];
            size_t nl = json_str_decode(&d->jd, key, name, sizeof name - 1);
            /* json_str_decode returns the full length, even when cut. */
            if (nl > sizeof name - 1)
                nl = sizeof name - 1;
            name[nl] = '\0';
            if (c->unknown.len < 1000 && !strstr(c->unknown.data ? c->unknown.data : "", name)) {
                if (c->unknown.len)
                    buf_puts(&c->unknown, ", ");
                buf_puts(&c->unknown, name);
            }
            break;
        }
        case KW_UNSUPPORTED:
            fail_at(c, d, v, "unsupported keyword: %s (%s)", kw, hint);
            return NULL;
        case KW_ANNOTATION:
        case KW_ID:
        case KW_ANCHOR:
        case KW_DYNANCHOR:
            break; /* handled by the register walk */
        case KW_VOCABULARY:
            if (check_vocabulary(c, d, v))
                return NULL;
            break;
        case KW_CONTENTSCHEMA:
            if (!is_schema_tok(d, v)) {
                fail_at(c, d, v, "contentSchema must be a schema");
                return NULL;
            }
            break; /* an annotation: not applied */
        case KW_SCHEMA: {
            int ok = 0;
            for (size_t q = 0; q < sizeof dialects / sizeof dialects[0]; q++)
                if (tk(d, v)->type == JSON_STRING &&
                    json_str_eq(&d->jd, tk(d, v), dialects[q], strlen(dialects[q])))
                    ok = 1;
            if (!ok) {
                char val[200];
                schema_compact_text(&d->jd, v, val, sizeof val);
                fail_at(c, d, v,
                        "unsupported keyword: $schema %s (weir implements "
                        "JSON Schema draft 2020-12 only, without custom "
                        "metaschemas)", val);
                return NULL;
            }
            break;
        }
        case KW_DEFS:
            if (tk(d, v)->type != JSON_OBJECT) {
                fail_at(c, d, v, "%s must be an object of schemas", kw);
                return NULL;
            } else {
                /* Checked even when unused: a refused keyword in $defs
                 * should fail the load, not wait for a $ref. */
                uint32_t j = v + 1;
                for (uint32_t e = 0; e < tk(d, v)->count; e++) {
                    if (!sub(c, d, j + 1, base, res, kw))
                        return NULL;
                    j = tk(d, j + 1)->next;
                }
            }
            break;
        case KW_TYPE: {
            const struct json_tok *vt = tk(d, v);
            uint32_t cnt = vt->type == JSON_ARRAY ? vt->count : 1;
            uint32_t j = vt->type == JSON_ARRAY ? v + 1 : v;
            uint8_t mask = 0;
            static const struct {
                const char *n;
                uint8_t b;
            } tn[] = {{"null", T_NULL},   {"boolean", T_BOOL},
                      {"integer", T_INT}, {"number", T_NUM | T_INT},
                      {"string", T_STR},  {"array", T_ARR},
                      {"object", T_OBJ}};
            for (uint32_t e = 0; e < cnt; e++, j = tk(d, j)->next) {
                int found = 0;
                for (size_t q = 0; q < 7 && tk(d, j)->type == JSON_STRING; q++)
                    if (json_str_eq(&d->jd, tk(d, j), tn[q].n, strlen(tn[q].n))) {
                        mask |= tn[q].b;
                        found = 1;
                    }
                if (!found) {
                    fail_at(c, d, j, "type must be one of null, boolean, integer, "
                                     "number, string, array, object (or a list)");
                    return NULL;
                }
            }
            n->kw |= K_TYPE;
            n->types = mask;
            break;
        }
        case KW_ENUM: {
            const struct json_tok *vt = tk(d, v);
            if (vt->type != JSON_ARRAY) {
                fail_at(c, d, v, "enum must be an array");
                return NULL;
            }
            n->enumv = arena_alloc(c->a, (vt->count + 1) * sizeof *n->enumv);
            if (!n->enumv) {
                oom(c);
                return NULL;
            }
            n->enum_all_str = 1;
            uint32_t j = v + 1;
            for (uint32_t e = 0; e < vt->count; e++, j = tk(d, j)->next) {
                if (const_of(c, d, j, &n->enumv[e]))
                    return NULL;
                if (tk(d, j)->type != JSON_STRING)
                    n->enum_all_str = 0;
            }
            n->nenum = vt->count;
            n->enum_text = compact_dup(c, d, v);
            n->kw |= K_ENUM;
            break;
        }
        case KW_CONST:
            if (const_of(c, d, v, &n->constv))
                return NULL;
            n->const_text = compact_dup(c, d, v);
            n->kw |= K_CONST;
            break;
        case KW_PROPERTIES:
            if (tk(d, v)->type != JSON_OBJECT) {
                fail_at(c, d, v, "properties must be an object of schemas");
                return NULL;
            }
            tprops = v;
            n->okw |= O_PROPS;
            break;
        case KW_REQUIRED:
            if (want_type(c, d, v, JSON_ARRAY, kw, "an array of strings"))
                return NULL;
            treq = v;
            break;
        case KW_ADDLPROPS:
            if (!(n->addl = sub(c, d, v, base, res, kw)))
                return NULL;
            n->okw |= O_ADDL;
            break;
        case KW_PATPROPS: {
            const struct json_tok *vt = tk(d, v);
            if (vt->type != JSON_OBJECT) {
                fail_at(c, d, v, "patternProperties must be an object of schemas");
                return NULL;
            }
            n->pats = arena_alloc(c->a, (vt->count + 1) * sizeof *n->pats);
            if (!n->pats) {
                oom(c);
                return NULL;
            }
            uint32_t j = v + 1;
            for (uint32_t e = 0; e < vt->count; e++, j = tk(d, j + 1)->next) {
                struct spattern *p = &n->pats[n->npats++];
                p->src = str_dup(c, d, j, &p->len);
                if (!p->src) {
                    oom(c);
                    return NULL;
                }
                char why[300];
                p->re = regex_compile(p->src, p->len, why, sizeof why);
                if (!p->re) {
                    n->npats--;
                    fail_at(c, d, j, "patternProperties: bad regular expression \"%s\": %s",
                            p->src, why);
                    return NULL;
                }
                if (!(p->node = sub(c, d, j + 1, base, res, kw)))
                    return NULL;
            }
            n->okw |= O_PATS;
            break;
        }
        case KW_PROPNAMES:
            if (!(n->propnames = sub(c, d, v, base, res, kw)))
                return NULL;
            n->okw |= O_PROPNAMES;
            break;
        case KW_MINPROPS:
            if (count_of(c, d, v, kw, &n->minprops))
                return NULL;
            n->okw |= O_MINPROPS;
            break;
        case KW_MAXPROPS:
            if (count_of(c, d, v, kw, &n->maxprops))
                return NULL;
            n->okw |= O_MAXPROPS;
            break;
        case KW_DEPREQ: {
            const struct json_tok *vt = tk(d, v);
            if (vt->type != JSON_OBJECT) {
                fail_at(c, d, v, "dependentRequired must be an object of arrays");
                return NULL;
            }
            n->depreq = arena_alloc(c->a, (vt->count + 1) * sizeof *n->depreq);
            if (!n->depreq) {
                oom(c);
                return NULL;
            }
            uint32_t j = v + 1;
            for (uint32_t e = 0; e < vt->count; e++, j = tk(d, j + 1)->next) {
                struct sdepreq *r = &n->depreq[n->ndepreq++];
                r->key.s = str_dup(c, d, j, &r->key.len);
                const struct json_tok *arr = tk(d, j + 1);
                if (arr->type != JSON_ARRAY) {
                    fail_at(c, d, j + 1, "dependentRequired values must be arrays of strings");
                    return NULL;
                }
                r->names = arena_alloc(c->a, (arr->count + 1) * sizeof *r->names);
                if (!r->key.s || !r->names) {
                    oom(c);
                    return NULL;
                }
                uint32_t q = j + 2;
                for (uint32_t e2 = 0; e2 < arr->count; e2++, q = tk(d, q)->next) {
                    if (tk(d, q)->type != JSON_STRING) {
                        fail_at(c, d, q, "dependentRequired values must be arrays of strings");
                        return NULL;
                    }
                    r->names[r->n].s = str_dup(c, d, q, &r->names[r->n].len);
                    r->n++;
                }
            }
            n->okw |= O_DEPREQ;
            break;
        }
        case KW_DEPSCH: {
            const struct json_tok *vt = tk(d, v);
            if (vt->type != JSON_OBJECT) {
                fail_at(c, d, v, "dependentSchemas must be an object of schemas");
                return NULL;
            }
            n->depsch = arena_alloc(c->a, (vt->count + 1) * sizeof *n->depsch);
            if (!n->depsch) {
                oom(c);
                return NULL;
            }
            uint32_t j = v + 1;
            for (uint32_t e = 0; e < vt->count; e++, j = tk(d, j + 1)->next) {
                struct sdepsch *r = &n->depsch[n->ndepsch++];
                r->key.s = str_dup(c, d, j, &r->key.len);
                if (!r->key.s || !(r->node = sub(c, d, j + 1, base, res, kw)))
                    return NULL;
            }
            n->okw |= O_DEPSCH;
            break;
        }
        case KW_UNEVALPROPS:
            if (!(n->uneval_p = sub(c, d, v, base, res, kw)))
                return NULL;
            n->okw |= O_UNEVAL;
            n->kw |= K_UNEVAL;
            c->s->has_uneval = 1;
            break;
        case KW_ITEMS:
            if (tk(d, v)->type == JSON_ARRAY) {
                fail_at(c, d, v, "unsupported keyword: items (array form, draft "
                                 "2019-09 and earlier; use prefixItems)");
                return NULL;
            }
            if (!(n->items = sub(c, d, v, base, res, kw)))
                return NULL;
            n->akw |= A_ITEMS;
            break;
        case KW_PREFIXITEMS:
            if (sub_list(c, d, v, base, res, kw, &n->prefix, &n->nprefix))
                return NULL;
            n->akw |= A_PREFIX;
            break;
        case KW_CONTAINS:
            if (!(n->contains = sub(c, d, v, base, res, kw)))
                return NULL;
            n->akw |= A_CONTAINS;
            break;
        case KW_MINCONTAINS:
            if (count_of(c, d, v, kw, &n->mincontains))
                return NULL;
            break;
        case KW_MAXCONTAINS:
            if (count_of(c, d, v, kw, &n->maxcontains))
                return NULL;
            n->has_maxcontains = 1;
            break;
        case KW_MINITEMS:
            if (count_of(c, d, v, kw, &n->minitems))
                return NULL;
            n->akw |= A_MINITEMS;
            break;
        case KW_MAXITEMS:
            if (count_of(c, d, v, kw, &n->maxitems))
                return NULL;
            n->akw |= A_MAXITEMS;
            break;
        case KW_UNIQUE:
            if (want_type(c, d, v, JSON_TRUE, kw, "a boolean"))
                return NULL;
            if (tk(d, v)->type == JSON_TRUE)
                n->akw |= A_UNIQUE;
            break;
        case KW_UNEVALITEMS:
            if (!(n->uneval_i = sub(c, d, v, base, res, kw)))
                return NULL;
            n->akw |= A_UNEVAL;
            n->kw |= K_UNEVAL;
            c->s->has_uneval = 1;
            break;
        case KW_MINLEN:
            if (count_of(c, d, v, kw, &n->minlen))
                return NULL;
            n->skw |= S_MINLEN;
            break;
        case KW_MAXLEN:
            if (count_of(c, d, v, kw, &n->maxlen))
                return NULL;
            n->skw |= S_MAXLEN;
            break;
        case KW_PATTERN: {
            if (want_type(c, d, v, JSON_STRING, kw, "a string"))
                return NULL;
            n->pattern_src = str_dup(c, d, v, &n->pattern_len);
            if (!n->pattern_src) {
                oom(c);
                return NULL;
            }
            char why[300];
            n->pattern = regex_compile(n->pattern_src, n->pattern_len, why, sizeof why);
            if (!n->pattern) {
                fail_at(c, d, v, "pattern: bad regular expression \"%s\": %s",
                        n->pattern_src, why);
                return NULL;
            }
            n->skw |= S_PATTERN;
            break;
        }
        case KW_FORMAT: {
            if (want_type(c, d, v, JSON_STRING, kw, "a string"))
                return NULL;
            if (!c->s->opts.format_assert)
                break;
            uint32_t len;
            const char *f = str_dup(c, d, v, &len);
            if (!f) {
                oom(c);
                return NULL;
            }
            enum schema_format fm = format_lookup(f, len);
            if (fm == FMT_UNKNOWN) {
                fail_at(c, d, v, "unsupported format: %s (weir asserts date-time, "
                                 "date, time, uuid, ipv4, ipv6, email)", f);
                return NULL;
            }
            n->format = (uint8_t)fm;
            n->skw |= S_FORMAT;
            break;
        }
        case KW_MIN:
            if (number_of(c, d, v, kw, &n->min))
                return NULL;
            n->nkw |= N_MIN;
            break;
        case KW_MAX:
            if (number_of(c, d, v, kw, &n->max))
                return NULL;
            n->nkw |= N_MAX;
            break;
        case KW_XMIN:
            if (number_of(c, d, v, kw, &n->xmin))
                return NULL;
            n->nkw |= N_XMIN;
            break;
        case KW_XMAX:
            if (number_of(c, d, v, kw, &n->xmax))
                return NULL;
            n->nkw |= N_XMAX;
            break;
        case KW_MULT:
            if (number_of(c, d, v, kw, &n->mult))
                return NULL;
            if (n->mult.d.neg || n->mult.d.ndig == 0) {
                fail_at(c, d, v, "multipleOf must be greater than 0");
                return NULL;
            }
            n->nkw |= N_MULT;
            break;
        case KW_ALLOF:
            if (sub_list(c, d, v, base, res, kw, &n->allof, &n->nallof))
                return NULL;
            n->kw |= K_ALLOF;
            break;
        case KW_ANYOF:
            if (sub_list(c, d, v, base, res, kw, &n->anyof, &n->nanyof))
                return NULL;
            n->kw |= K_ANYOF;
            break;
        case KW_ONEOF:
            if (sub_list(c, d, v, base, res, kw, &n->oneof, &n->noneof))
                return NULL;
            n->kw |= K_ONEOF;
            break;
        case KW_NOT:
            if (!(n->not_ = sub(c, d, v, base, res, kw)))
                return NULL;
            n->kw |= K_NOT;
            break;
        case KW_IF:
            tif = v;
            break;
        case KW_THEN:
            tthen = v;
            break;
        case KW_ELSE:
            telse = v;
            break;
        case KW_REF:
        case KW_DYNREF: {
            if (want_type(c, d, v, JSON_STRING, kw, "a string"))
                return NULL;
            const char *ref = str_dup(c, d, v, NULL);
            struct target tg = {0};
            const char *frag = "";
            if (!ref || resolve_ref(c, d, v, base, ref, &tg, &frag))
                return NULL;
            if (!is_schema_tok(tg.doc, tg.tok)) {
                fail_at(c, d, v, "%s \"%s\" does not point to a schema", kw, ref);
                return NULL;
            }
            struct snode *target = compile_node(c, tg.doc, tg.tok, tg.base, tg.res);
            if (!target)
                return NULL;
            if (id == KW_REF) {
                n->ref = target;
                n->kw |= K_REF;
            } else {
                n->dynref = target;
                n->kw |= K_DYNREF;
                /* Dynamic only when the fragment names a $dynamicAnchor
                 * of the initial target (2020-12 section 8.2.3.2). */
                if (frag[0] && frag[0] != '/') {
                    uint32_t av = member(tg.doc, tg.tok, "$dynamicAnchor");
                    if (av != NONE && json_str_eq(&tg.doc->jd, tk(tg.doc, av), frag,
                                                  strlen(frag))) {
                        n->dyn_name = frag;
                        n->dyn_len = (uint32_t)strlen(frag);
                        c->s->has_dynref = 1;
                    }
                }
            }
            break;
        }
        }
    }
    if ((tprops != NONE || treq != NONE) &&
        build_props(c, d, n, tprops, treq, base, res))
        return NULL;
    if (tif != NONE) {
        if (!(n->if_ = sub(c, d, tif, base, res, "if")))
            return NULL;
        if (tthen != NONE && !(n->then_ = sub(c, d, tthen, base, res, "then")))
            return NULL;
        if (telse != NONE && !(n->else_ = sub(c, d, telse, base, res, "else")))
            return NULL;
        n->kw |= K_IF;
    } else {
        /* then/else without if do nothing, but must still be schemas. */
        if (tthen != NONE && !sub(c, d, tthen, base, res, "then"))
            return NULL;
        if (telse != NONE && !sub(c, d, telse, base, res, "else"))
            return NULL;
    }
    if (n->akw & A_CONTAINS) {
        if (member(d, t, "minContains") == NONE)
            n->mincontains = 1;
    }
    if (n->okw)
        n->kw |= K_OBJ;
    if (n->akw)
        n->kw |= K_ARR;
    if (n->skw)
        n->kw |= K_STR;
    if (n->nkw)
        n->kw |= K_NUM;
    return n;
}

/* ------------------------------------------------------------------ */
/* Step 3: link.                                                       */

static int is_pure_ref(const struct snode *n)
{
    return n->kw == K_REF;
}

/* Follow pure-$ref nodes to the node that does the work. */
static struct snode *unalias(struct cc *c, struct snode *n, int *loop)
{
    uint32_t hops = 0;
    while (n && is_pure_ref(n)) {
        n = n->ref;
        if (++hops > c->nnodes + 1) {
            *loop = 1;
            return n;
        }
    }
    return n;
}

static int link_nodes(struct cc *c, int alias)
{
    struct schema *s = c->s;
    int loop = 0;
#define FIX(p) ((p) = unalias(c, (p), &loop))
    if (!alias)
        goto fold;
    FIX(s->root);
    for (struct snode *n = s->all; n; n = n->next_all) {
        for (uint32_t i = 0; i < n->nprops; i++)
            FIX(n->props[i].node);
        for (uint32_t i = 0; i < n->npats; i++)
            FIX(n->pats[i].node);
        FIX(n->addl);
        FIX(n->propnames);
        FIX(n->uneval_p);
        for (uint32_t i = 0; i < n->ndepsch; i++)
            FIX(n->depsch[i].node);
        for (uint32_t i = 0; i < n->nprefix; i++)
            FIX(n->prefix[i]);
        FIX(n->items);
        FIX(n->contains);
        FIX(n->uneval_i);
        for (uint32_t i = 0; i < n->nallof; i++)
            FIX(n->allof[i]);
        for (uint32_t i = 0; i < n->nanyof; i++)
            FIX(n->anyof[i]);
        for (uint32_t i = 0; i < n->noneof; i++)
            FIX(n->oneof[i]);
        FIX(n->not_);
        FIX(n->if_);
        FIX(n->then_);
        FIX(n->else_);
        if (!is_pure_ref(n))
            FIX(n->ref);
        FIX(n->dynref);
    }
    for (uint32_t r = 0; r < s->nres; r++)
        for (uint32_t i = 0; i < s->res[r].nanchors; i++)
            FIX(s->res[r].anchors[i].node);
#undef FIX
    if (loop)
        return errmsg_set(c->err, WEIR_ESCHEMA,
                          "%s: a $ref refers to itself without checking anything "
                          "(an endless loop)", s->docs ? c->s->docs->uri : "schema");
fold:
    /* anyOf of bare types (pydantic's `float | str`) is a type set. */
    for (struct snode *n = s->all; n; n = n->next_all) {
        if (!(n->kw & K_ANYOF))
            continue;
        uint8_t mask = 0;
        uint32_t i;
        for (i = 0; i < n->nanyof; i++) {
            const struct snode *b = n->anyof[i];
            if (b->kw != K_TYPE)
                break;
            mask |= b->types;
        }
        if (i < n->nanyof)
            continue;
        n->types = (n->kw & K_TYPE) ? (uint8_t)(n->types & mask) : mask;
        n->kw = (n->kw | K_TYPE) & ~(uint32_t)K_ANYOF;
        n->nanyof = 0;
    }
    return 0;
}

/* With int64_integers: every type check that allows integers but not
 * numbers also wants them to fit in int64 (compiled.h, T_I64). Done after
 * the anyOf fold, so pydantic's `int | None` (anyOf of bare types) is
 * covered, and `integer | number` (a number) is not. */
static void mark_int64(struct schema *s)
{
    for (struct snode *n = s->all; n; n = n->next_all)
        if ((n->kw & K_TYPE) && (n->types & T_INT) && !(n->types & T_NUM))
            n->types |= T_I64;
}

/* Compile every $dynamicAnchor subschema and attach it to its resource. */
static int compile_dynamic_anchors(struct cc *c)
{
    struct schema *s = c->s;
    for (uint32_t i = 0; i < c->nra; i++) {
        struct reg_anchor *a = &c->ra[i];
        if (!a->dynamic)
            continue;
        struct snode *n = compile_node(c, a->doc, a->tok, a->uri, a->res);
        if (!n)
            return WEIR_ESCHEMA;
        struct sresource *r = &s->res[a->res];
        if (grow((void **)&r->anchors, &r->capanchors, r->nanchors + 1,
                 sizeof *r->anchors))
            return oom(c);
        r->anchors[r->nanchors++] = (struct sdynanchor){a->name,
                                                        (uint32_t)strlen(a->name), n};
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static struct schema *compile_root(const char *text, size_t len,
                                   const char *uri, const char *dir,
                                   const struct schema_opts *o,
                                   struct weir_errmsg *err)
{
    struct weir_errmsg dummy;
    if (!err)
        err = &dummy;
    struct schema *s = calloc(1, sizeof *s);
    struct cc c;
    memset(&c, 0, sizeof c);
    if (!s) {
        errmsg_set(err, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    s->arena = calloc(1, sizeof *s->arena);
    if (!s->arena) {
        free(s);
        errmsg_set(err, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    if (o)
        s->opts = *o;
    if (!s->opts.max_depth)
        s->opts.max_depth = WEIR_DEFAULT_MAX_DEPTH;
    if (!s->opts.max_record)
        s->opts.max_record = WEIR_DEFAULT_MAX_RECORD;
    s->max_eval_depth = WEIR_MAX_SCHEMA_EVAL_DEPTH;
    s->true_node.res = 0;
    s->false_node.kw = K_FALSE;
    c.s = s;
    c.a = s->arena;
    c.err = err;
    buf_init(&c.unknown, 4096);
    if (dir)
        snprintf(c.root_dir, sizeof c.root_dir, "%s", dir);

    struct sdoc *d = doc_add(&c, text, len, uri);
    if (!d)
        goto fail;
    /* A root $id such as https://example.com/s/t.json: its directory
     * stands for the schema file's directory. */
    uint32_t idv = member(d, 0, "$id");
    if (idv != NONE && d->base_of[0] && strcmp(d->base_of[0], d->uri) != 0) {
        const char *id = d->base_of[0];
        const char *slash = strrchr(id, '/');
        if (slash)
            c.root_id_dir = arena_strndup(c.a, id, (size_t)(slash - id + 1));
    }
    s->root = compile_node(&c, d, 0, d->uri, d->res_of[0]);
    if (!s->root)
        goto fail;
    if (compile_dynamic_anchors(&c))
        goto fail;
    if (link_nodes(&c, !s->has_dynref))
        goto fail;
    if (s->opts.int64_integers)
        mark_int64(s);
    if (c.unknown.len)
        log_warn("schema %s: unknown keywords ignored: %s", uri, c.unknown.data);
    buf_release(&c.unknown);
    free(c.rr);
    free(c.ra);
    return s;
fail:
    buf_release(&c.unknown);
    free(c.rr);
    free(c.ra);
    schema_free(s);
    return NULL;
}

struct schema *schema_compile(const char *text, size_t len,
                              const char *base_dir,
                              const struct schema_opts *o,
                              struct weir_errmsg *err)
{
    char uri[PATH_MAX + 16], abs[PATH_MAX];
    const char *dir = NULL;
    if (base_dir && realpath(base_dir, abs)) {
        snprintf(uri, sizeof uri, "file://%s%s", abs,
                 abs[strlen(abs) - 1] == '/' ? "" : "/");
        dir = abs;
    } else {
        snprintf(uri, sizeof uri, "weir:schema");
    }
    return compile_root(text, len, uri, dir, o, err);
}

struct schema *schema_load_file(const char *path, const struct schema_opts *o,
                                struct weir_errmsg *err)
{
    struct weir_errmsg dummy;
    if (!err)
        err = &dummy;
    char abs[PATH_MAX], dir[PATH_MAX], uri[PATH_MAX + 16];
    if (!realpath(path, abs)) {
        errmsg_set(err, weir_from_errno(errno), "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    if (read_file(abs, &text, &len, err))
        return NULL;
    snprintf(dir, sizeof dir, "%s", abs);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
    snprintf(uri, sizeof uri, "file://%s", abs);
    struct schema *s = compile_root(text, len, uri, dir, o, err);
    free(text);
    return s;
}

void schema_free(struct schema *s)
{
    if (!s)
        return;
    for (struct snode *n = s->all; n; n = n->next_all) {
        regex_free(n->pattern);
        for (uint32_t i = 0; i < n->npats; i++)
            regex_free(n->pats[i].re);
    }
    while (s->docs) {
        struct sdoc *d = s->docs;
        s->docs = d->next;
        doc_free(d);
    }
    for (uint32_t r = 0; r < s->nres; r++)
        free(s->res[r].anchors);
    free(s->res);
    arena_free(s->arena);
    free(s);
}

const struct schema_opts *schema_opts_of(const struct schema *s)
{
    return &s->opts;
}
