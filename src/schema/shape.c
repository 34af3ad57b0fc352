/*
 * shape.c - the column shape of a compiled schema; see shape.h for the
 * rules, docs/lake.md for the lake types they become.
 *
 * The walk builds an "abstract value" (struct aval) per schema node: the
 * set of JSON types allowed, the declared properties with their own
 * abstract values, whether other properties may appear, and the items of
 * arrays. $ref/allOf narrow (aval_and), anyOf/oneOf widen (aval_or). Only
 * at the end is each abstract value turned into a kind (finish), so that
 * `{"type":"number"}` under allOf with `{"enum":[1,2]}` comes out as an
 * integer however the keywords were spread over the schema.
 *
 * The walk keeps the path of nodes it is inside: meeting a node again
 * (a recursive tree, or allOf: [{"$ref": "#"}]) stops there with "any",
 * which finishes as JSON. A step budget bounds the work on schemas with
 * many wide unions.
 */
#include "schema/shape.h"

#include <stdlib.h>
#include <string.h>

#include "schema/compiled.h"

/* Schema nodes visited for one shape at most; past it, values are JSON. */
#define SHAPE_MAX_STEPS 200000
/* Deepest nesting of schema nodes followed. */
#define SHAPE_MAX_DEPTH 256

struct aval;

struct aprop {
    char *name;
    size_t len;
    int required;
    struct aval *v;
};

struct aval {
    uint8_t types;          /* T_* allowed */
    int open;               /* undeclared properties may appear */
    struct aprop *props;
    size_t nprops, cap;
    struct aval *items;     /* NULL: any item */
};

struct walk {
    const struct snode *stack[SHAPE_MAX_DEPTH];
    size_t depth;
    unsigned long steps;
    int oom;
};

static void aval_free(struct aval *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nprops; i++) {
        free(a->props[i].name);
        aval_free(a->props[i].v);
    }
    free(a->props);
    aval_free(a->items);
    free(a);
}

static struct aval *aval_any(struct walk *w)
{
    struct aval *a = calloc(1, sizeof *a);
    if (!a) {
        w->oom = 1;
        return NULL;
    }
    a->types = T_ALL;
    a->open = 1;
    return a;
}

static struct aprop *find_prop(struct aval *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->nprops; i++)
        if (a->props[i].len == len && memcmp(a->props[i].name, name, len) == 0)
            return &a->props[i];
    return NULL;
}

/* Add a property (takes ownership of v; copies name). */
static struct aprop *add_prop(struct walk *w, struct aval *a, const char *name,
                              size_t len, int required, struct aval *v)
{
    if (a->nprops == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 8;
        struct aprop *p = realloc(a->props, ncap * sizeof *p);
        if (!p)
            goto oom;
        a->props = p;
        a->cap = ncap;
    }
    char *nm = malloc(len + 1);
    if (!nm)
        goto oom;
    memcpy(nm, name, len);
    nm[len] = '\0';
    struct aprop *p = &a->props[a->nprops++];
    p->name = nm;
    p->len = len;
    p->required = required;
    p->v = v;
    return p;
oom:
    w->oom = 1;
    aval_free(v);
    return NULL;
}

static struct aval *aval_and(struct walk *w, struct aval *a, struct aval *b);
static struct aval *aval_or(struct walk *w, struct aval *a, struct aval *b);

/* a AND b: both hold. Consumes both, returns the result (a, reused). */
static struct aval *aval_and(struct walk *w, struct aval *a, struct aval *b)
{
    if (!a || !b) {
        aval_free(a);
        aval_free(b);
        w->oom = 1;
        return NULL;
    }
    a->types &= b->types;
    a->open = a->open && b->open;
    for (size_t i = 0; i < b->nprops; i++) {
        struct aprop *q = &b->props[i];
        struct aprop *p = find_prop(a, q->name, q->len);
        if (p) {
            p->v = aval_and(w, p->v, q->v);
            p->required |= q->required;
        } else {
            add_prop(w, a, q->name, q->len, q->required, q->v);
        }
        q->v = NULL;
    }
    if (a->items && b->items)
        a->items = aval_and(w, a->items, b->items);
    else if (b->items)
        a->items = b->items;
    else
        aval_free(b->items);
    b->items = NULL;
    aval_free(b);
    return a;
}

/* Properties of a that b does not declare, when both may be objects. */
static void or_one_sided(struct walk *w, struct aval *a, const struct aval *b)
{
    for (size_t i = 0; i < a->nprops; i++) {
        struct aprop *p = &a->props[i];
        if (find_prop((struct aval *)b, p->name, p->len))
            continue;
        p->required = 0;
        if (b->open) {
            /* A record of b's kind may carry this key with any value. */
            aval_free(p->v);
            p->v = aval_any(w);
        }
    }
}

/* a OR b: one of them holds. Consumes both. */
static struct aval *aval_or(struct walk *w, struct aval *a, struct aval *b)
{
    if (!a || !b) {
        aval_free(a);
        aval_free(b);
        w->oom = 1;
        return NULL;
    }
    int ao = (a->types & T_OBJ) != 0, bo = (b->types & T_OBJ) != 0;
    int aa = (a->types & T_ARR) != 0, ba = (b->types & T_ARR) != 0;
    if (ao && bo) {
        or_one_sided(w, a, b);
        or_one_sided(w, b, a);
        for (size_t i = 0; i < b->nprops; i++) {
            struct aprop *q = &b->props[i];
            struct aprop *p = find_prop(a, q->name, q->len);
            if (p) {
                p->v = aval_or(w, p->v, q->v);
                p->required = p->required && q->required;
            } else {
                add_prop(w, a, q->name, q->len, 0, q->v);
            }
            q->v = NULL;
        }
        a->open = a->open || b->open;
    } else if (bo) {
        /* Only b's objects count: take its properties. */
        for (size_t i = 0; i < a->nprops; i++) {
            free(a->props[i].name);
            aval_free(a->props[i].v);
        }
        free(a->props);
        a->props = b->props;
        a->nprops = b->nprops;
        a->cap = b->cap;
        b->props = NULL;
        b->nprops = b->cap = 0;
        a->open = b->open;
    }
    if (aa && ba) {
        if (a->items && b->items) {
            a->items = aval_or(w, a->items, b->items);
        } else {
            aval_free(a->items);
            aval_free(b->items);
            a->items = NULL;
        }
        b->items = NULL;
    } else if (ba) {
        aval_free(a->items);
        a->items = b->items;
        b->items = NULL;
    }
    a->types |= b->types;
    aval_free(b);
    return a;
}

/* 1 if the integer d fits in int64 (a BIGINT column). */
static int fits_int64(const struct decnum *d)
{
    static const char lo[] = "-9223372036854775808", hi[] = "9223372036854775807";
    struct decnum l, h;
    return decnum_parse(&l, lo, sizeof lo - 1) == 0 &&
           decnum_parse(&h, hi, sizeof hi - 1) == 0 && decnum_cmp(d, &l) >= 0 &&
           decnum_cmp(d, &h) <= 0;
}

/* An enum or const integer outside int64 counts as a number, so the
 * column is DOUBLE and never refuses the value (a type check has its own
 * bound at ingest: schema_opts.int64_integers). */
static uint8_t const_types(const struct sconst *c)
{
    switch (c->type) {
    case JSON_NULL:
        return T_NULL;
    case JSON_FALSE:
    case JSON_TRUE:
        return T_BOOL;
    case JSON_NUMBER:
        return decnum_is_integer(&c->num) && fits_int64(&c->num) ? T_INT : T_NUM;
    case JSON_STRING:
        return T_STR;
    case JSON_ARRAY:
        return T_ARR;
    default:
        return T_OBJ;
    }
}

static int is_false(const struct snode *n)
{
    return n && (n->kw & K_FALSE);
}

static struct aval *derive(struct walk *w, const struct snode *n);

static struct aval *derive_inner(struct walk *w, const struct snode *n)
{
    struct aval *a = aval_any(w);
    if (!a)
        return NULL;
    if (n->kw & K_FALSE)
        a->types = 0;
    if (n->kw & K_TYPE)
        a->types &= n->types & T_ALL; /* not T_I64, a flag */
    if (n->kw & K_ENUM) {
        uint8_t t = 0;
        for (uint32_t i = 0; i < n->nenum; i++)
            t |= const_types(&n->enumv[i]);
        a->types &= t;
    }
    if (n->kw & K_CONST)
        a->types &= const_types(&n->constv);
    if (n->kw & K_OBJ) {
        for (uint32_t i = 0; i < n->nprops && !w->oom; i++) {
            const struct sprop *p = &n->props[i];
            struct aval *v = p->node ? derive(w, p->node) : aval_any(w);
            if (!v)
                break;
            struct aprop *have = find_prop(a, p->key, p->len);
            if (have) {
                have->v = aval_and(w, have->v, v);
                have->required |= p->req_bit != 0;
            } else {
                add_prop(w, a, p->key, p->len, p->req_bit != 0, v);
            }
        }
        for (uint32_t i = 0; i < n->nreq_extra && !w->oom; i++) {
            const struct sname *r = &n->req_extra[i];
            struct aprop *have = find_prop(a, r->s, r->len);
            if (have)
                have->required = 1;
            else
                add_prop(w, a, r->s, r->len, 1, aval_any(w));
        }
        int pats = (n->okw & O_PATS) != 0;
        if ((n->okw & O_ADDL) && is_false(n->addl) && !pats)
            a->open = 0;
        else if (!(n->okw & O_ADDL) && (n->okw & O_UNEVAL) &&
                 is_false(n->uneval_p) && !pats)
            a->open = 0;
    }
    if (n->kw & K_ARR) {
        struct aval *it = NULL;
        int any = 0;
        if (n->akw & A_ITEMS)
            it = derive(w, n->items);
        else if (n->akw & A_PREFIX)
            any = 1; /* items past the prefix are unconstrained */
        if (n->akw & A_PREFIX) {
            for (uint32_t i = 0; i < n->nprefix && !w->oom; i++) {
                struct aval *p = derive(w, n->prefix[i]);
                it = it ? aval_or(w, it, p) : p;
            }
        }
        if (any) {
            aval_free(it);
            it = NULL;
        }
        a->items = it;
    }
    if ((n->kw & K_REF) && n->ref)
        a = aval_and(w, a, derive(w, n->ref));
    if ((n->kw & K_DYNREF) && n->dynref)
        a = aval_and(w, a, derive(w, n->dynref));
    for (uint32_t i = 0; (n->kw & K_ALLOF) && i < n->nallof && a; i++)
        a = aval_and(w, a, derive(w, n->allof[i]));
    if ((n->kw & K_ANYOF) && n->nanyof && a) {
        struct aval *o = derive(w, n->anyof[0]);
        for (uint32_t i = 1; i < n->nanyof && o; i++)
            o = aval_or(w, o, derive(w, n->anyof[i]));
        a = aval_and(w, a, o);
    }
    if ((n->kw & K_ONEOF) && n->noneof && a) {
        struct aval *o = derive(w, n->oneof[0]);
        for (uint32_t i = 1; i < n->noneof && o; i++)
            o = aval_or(w, o, derive(w, n->oneof[i]));
        a = aval_and(w, a, o);
    }
    return a;
}

static struct aval *derive(struct walk *w, const struct snode *n)
{
    if (!n || w->oom)
        return w->oom ? NULL : aval_any(w);
    if (++w->steps > SHAPE_MAX_STEPS || w->depth == SHAPE_MAX_DEPTH)
        return aval_any(w);
    for (size_t i = 0; i < w->depth; i++)
        if (w->stack[i] == n)
            return aval_any(w); /* recursion: stop, as JSON */
    w->stack[w->depth++] = n;
    struct aval *a = derive_inner(w, n);
    w->depth--;
    return a;
}

/* ---- from abstract values to shapes ------------------------------------- */

static void shape_release(struct shape *sh)
{
    if (!sh)
        return;
    free(sh->name);
    for (size_t i = 0; i < sh->nfields; i++)
        shape_release(&sh->fields[i]);
    free(sh->fields);
    if (sh->items) {
        shape_release(sh->items);
        free(sh->items);
    }
}

void shape_free(struct shape *sh)
{
    shape_release(sh);
    free(sh);
}

static int finish(const struct aval *a, struct shape *out, int root)
{
    uint8_t t = a ? a->types : T_ALL;
    uint8_t m = t & (uint8_t)~T_NULL;

    out->nullable = (t & T_NULL) != 0;
    out->kind = SHAPE_JSON;
    if (!a)
        return 0;
    if (root || m == T_OBJ) {
        if (!root && a->nprops == 0)
            return 0; /* an object of unknown keys: JSON */
        out->kind = SHAPE_OBJECT;
        out->open = a->open;
        out->fields = calloc(a->nprops ? a->nprops : 1, sizeof *out->fields);
        if (!out->fields)
            return WEIR_ENOMEM;
        for (size_t i = 0; i < a->nprops; i++) {
            struct shape *f = &out->fields[i];
            out->nfields++;
            f->name = malloc(a->props[i].len + 1);
            if (!f->name)
                return WEIR_ENOMEM;
            memcpy(f->name, a->props[i].name, a->props[i].len + 1);
            f->name_len = a->props[i].len;
            int rc = finish(a->props[i].v, f, 0);
            if (rc)
                return rc;
            f->required = a->props[i].required;
            f->nullable |= !f->required;
        }
        return 0;
    }
    switch (m) {
    case T_INT:
        out->kind = SHAPE_INTEGER;
        return 0;
    case T_NUM:
    case T_NUM | T_INT:
        out->kind = SHAPE_NUMBER;
        return 0;
    case T_STR:
        out->kind = SHAPE_STRING;
        return 0;
    case T_BOOL:
        out->kind = SHAPE_BOOLEAN;
        return 0;
    case T_ARR:
        out->kind = SHAPE_ARRAY;
        out->items = calloc(1, sizeof *out->items);
        if (!out->items)
            return WEIR_ENOMEM;
        return finish(a->items, out->items, 0);
    default:
        return 0;
    }
}

int shape_of_schema(const struct schema *s, struct shape **out,
                    struct weir_errmsg *e)
{
    struct walk *w = calloc(1, sizeof *w);
    struct shape *sh = calloc(1, sizeof *sh);
    struct aval *a = NULL;
    int rc = WEIR_ENOMEM;

    *out = NULL;
    if (!w || !sh)
        goto fail;
    a = derive(w, s->root);
    if (!a || w->oom)
        goto fail;
    if ((rc = finish(a, sh, 1)))
        goto fail;
    sh->nullable = 0;
    aval_free(a);
    free(w);
    *out = sh;
    return 0;
fail:
    aval_free(a);
    free(w);
    shape_free(sh);
    return errmsg_set(e, rc ? rc : WEIR_ENOMEM, "out of memory while reading the schema's shape");
}

const char *shape_kind_name(enum shape_kind k)
{
    switch (k) {
    case SHAPE_INTEGER:
        return "integer";
    case SHAPE_NUMBER:
        return "number";
    case SHAPE_STRING:
        return "string";
    case SHAPE_BOOLEAN:
        return "boolean";
    case SHAPE_OBJECT:
        return "object";
    case SHAPE_ARRAY:
        return "array";
    default:
        return "json";
    }
}

int shape_add_field(struct shape *obj, const char *name, enum shape_kind kind)
{
    if (obj->kind != SHAPE_OBJECT)
        return WEIR_EINVAL;
    struct shape *v = realloc(obj->fields, (obj->nfields + 1) * sizeof *v);
    if (!v)
        return WEIR_ENOMEM;
    obj->fields = v;
    struct shape *f = &v[obj->nfields];
    memset(f, 0, sizeof *f);
    if (!(f->name = strdup(name)))
        return WEIR_ENOMEM;
    f->name_len = strlen(name);
    f->kind = kind;
    f->nullable = 1;
    obj->nfields++;
    return 0;
}

const struct shape *shape_field(const struct shape *sh, const char *name,
                                size_t len)
{
    if (!sh || sh->kind != SHAPE_OBJECT)
        return NULL;
    for (size_t i = 0; i < sh->nfields; i++)
        if (sh->fields[i].name_len == len &&
            memcmp(sh->fields[i].name, name, len) == 0)
            return &sh->fields[i];
    return NULL;
}
