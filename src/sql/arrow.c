/*
 * arrow.c - validated records to Arrow columns; see arrow.h. The value
 * rules are weir_read_ndjson's (sql/ndjson.c), so that a batch built here
 * and the lake view read back from NDJSON or Parquet hold the same rows.
 *
 * Each column (and STRUCT field, and LIST item) is a small builder of the
 * three Arrow buffers: validity bitmap, values or offsets, string bytes.
 * Finishing a chunk moves the buffers into an ArrowArray whose release
 * frees them; the builder starts the next chunk with empty buffers.
 */
#include "sql/arrow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "store/lake.h"

/* Nesting of a column's type (the lake's own types are much shallower). */
#define ARROW_MAX_TYPE_DEPTH 64

enum akind { AK_BIGINT, AK_DOUBLE, AK_BOOLEAN, AK_VARCHAR, AK_JSON, AK_STRUCT,
             AK_LIST, AK_DATE, AK_HOUR };

struct acol {
    enum akind kind;
    char *name;                /* NUL-terminated; name_len bytes matter */
    size_t name_len;
    struct acol *kids;         /* STRUCT fields; LIST: one, the items */
    size_t nkids;
    /* the chunk being built */
    int64_t length, null_count;
    uint8_t *valid;            /* bitmap, valid_cap bytes */
    size_t valid_cap;
    uint8_t *data;             /* values, or string bytes */
    size_t data_len, data_cap;
    int64_t *offs;             /* strings and lists: length + 1 entries */
    size_t offs_cap;
};

struct arrow_builder {
    const struct lake_table *t;
    struct acol *cols;         /* typed columns, then _extra, date, hour */
    size_t ncols, ntyped, capcols;
    int extra, date, hour;     /* their indexes, or -1 */
    struct json_doc doc;
    struct buf scratch;        /* minified JSON, decoded strings, _extra */
    struct buf key;            /* a decoded member name */
    struct buf xbuf;           /* the record's _extra object */
    struct ArrowArray *done;   /* finished chunks of the batch */
    size_t ndone, capdone;
    uint64_t rows;
};

/* ---- release ---------------------------------------------------------------- */

struct apriv {
    void *bufs[3];
    const void *bufp[3];
    struct ArrowArray **kidp;
    struct ArrowArray *kids;
};

static void array_release_cb(struct ArrowArray *a)
{
    struct apriv *p = a->private_data;
    if (p) {
        for (int64_t i = 0; i < a->n_children; i++)
            if (p->kids[i].release)
                p->kids[i].release(&p->kids[i]);
        for (int i = 0; i < 3; i++)
            free(p->bufs[i]);
        free(p->kids);
        free(p->kidp);
        free(p);
    }
    a->release = NULL;
    a->private_data = NULL;
}

struct spriv {
    char *format, *name;
    struct ArrowSchema **kidp;
    struct ArrowSchema *kids;
};

static void schema_release_cb(struct ArrowSchema *s)
{
    struct spriv *p = s->private_data;
    if (p) {
        for (int64_t i = 0; i < s->n_children; i++)
            if (p->kids[i].release)
                p->kids[i].release(&p->kids[i]);
        free(p->format);
        free(p->name);
        free(p->kids);
        free(p->kidp);
        free(p);
    }
    s->release = NULL;
    s->private_data = NULL;
}

void arrow_schema_release(struct ArrowSchema *s)
{
    if (s && s->release)
        s->release(s);
}

void arrow_array_release(struct ArrowArray *a)
{
    if (a && a->release)
        a->release(a);
}

void arrow_batch_release(struct arrow_batch *b)
{
    if (!b)
        return;
    arrow_schema_release(&b->schema);
    for (size_t i = 0; i < b->narrays; i++)
        arrow_array_release(&b->arrays[i]);
    free(b->arrays);
    memset(b, 0, sizeof *b);
}

/* ---- columns ---------------------------------------------------------------- */

static void acol_release(struct acol *c)
{
    for (size_t i = 0; i < c->nkids; i++)
        acol_release(&c->kids[i]);
    free(c->kids);
    free(c->name);
    free(c->valid);
    free(c->data);
    free(c->offs);
    memset(c, 0, sizeof *c);
}

static int set_name(struct acol *c, const char *s, size_t n)
{
    if (!(c->name = malloc(n + 1)))
        return WEIR_ENOMEM;
    memcpy(c->name, s, n);
    c->name[n] = '\0';
    c->name_len = n;
    return 0;
}

/* The column structure of a json_transform-style type (lake_col.json_type). */
static int parse_type(const struct json_doc *d, uint32_t ti, struct acol *c, int depth)
{
    const struct json_tok *t = &d->toks[ti];
    if (depth > ARROW_MAX_TYPE_DEPTH)
        return WEIR_ELIMIT;
    if (t->type == JSON_STRING) {
        static const struct { const char *n; enum akind k; } names[] = {
            {"BIGINT", AK_BIGINT}, {"DOUBLE", AK_DOUBLE}, {"BOOLEAN", AK_BOOLEAN},
            {"VARCHAR", AK_VARCHAR}, {"JSON", AK_JSON},
        };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (json_str_eq(d, t, names[i].n, strlen(names[i].n))) {
                c->kind = names[i].k;
                return 0;
            }
        return WEIR_EINVAL;
    }
    if (t->type == JSON_ARRAY) {
        if (t->count != 1)
            return WEIR_EINVAL;
        c->kind = AK_LIST;
        if (!(c->kids = calloc(1, sizeof *c->kids)))
            return WEIR_ENOMEM;
        c->nkids = 1;
        int rc = set_name(c->kids, "l", 1);
        return rc ? rc : parse_type(d, ti + 1, c->kids, depth + 1);
    }
    if (t->type != JSON_OBJECT || t->count == 0)
        return WEIR_EINVAL;
    c->kind = AK_STRUCT;
    if (!(c->kids = calloc(t->count, sizeof *c->kids)))
        return WEIR_ENOMEM;
    c->nkids = t->count;
    uint32_t k = ti + 1;
    for (uint32_t m = 0; m < t->count; m++) {
        const struct json_tok *kt = &d->toks[k];
        char *nm = malloc(kt->len);
        if (!nm)
            return WEIR_ENOMEM;
        size_t n = json_str_decode(d, kt, nm, kt->len);
        int rc = set_name(&c->kids[m], nm, n);
        free(nm);
        if (rc || (rc = parse_type(d, k + 1, &c->kids[m], depth + 1)))
            return rc;
        k = d->toks[k + 1].next;
    }
    return 0;
}

/* Grow *p (of *cap bytes) to hold need bytes, zeroing the new room. */
static int grow(void *pp, size_t *cap, size_t need)
{
    uint8_t **p = pp;
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    uint8_t *x = realloc(*p, nc);
    if (!x)
        return WEIR_ENOMEM;
    memset(x + *cap, 0, nc - *cap);
    *p = x;
    *cap = nc;
    return 0;
}

static int has_offsets(const struct acol *c)
{
    return c->kind == AK_VARCHAR || c->kind == AK_JSON || c->kind == AK_LIST;
}

static size_t width(const struct acol *c)
{
    switch (c->kind) {
    case AK_BIGINT: case AK_DOUBLE: return 8;
    case AK_DATE: case AK_HOUR: return 4;
    default: return 0;
    }
}

/* Room for one more row, with the validity bit set to valid. */
static int begin_row(struct acol *c, int valid)
{
    int64_t row = c->length;
    int rc = grow(&c->valid, &c->valid_cap, (size_t)row / 8 + 1);
    if (!rc && has_offsets(c)) {
        size_t cap = c->offs_cap * sizeof *c->offs;
        rc = grow(&c->offs, &cap, ((size_t)row + 2) * sizeof *c->offs);
        c->offs_cap = cap / sizeof *c->offs;
    }
    if (!rc && width(c))
        rc = grow(&c->data, &c->data_cap, ((size_t)row + 1) * width(c));
    if (!rc && c->kind == AK_BOOLEAN)
        rc = grow(&c->data, &c->data_cap, (size_t)row / 8 + 1);
    if (rc)
        return rc;
    if (valid)
        c->valid[row / 8] |= (uint8_t)(1u << (row % 8));
    else
        c->null_count++;
    if (has_offsets(c))
        c->offs[row + 1] = c->offs[row];
    return 0;
}

static int append_null(struct acol *c)
{
    int rc = begin_row(c, 0);
    for (size_t i = 0; i < c->nkids && !rc && c->kind == AK_STRUCT; i++)
        rc = append_null(&c->kids[i]);
    if (!rc)
        c->length++;
    return rc;
}

static int append_bytes(struct acol *c, const char *p, size_t n)
{
    int rc = begin_row(c, 1);
    if (!rc)
        rc = grow(&c->data, &c->data_cap, c->data_len + n + 1);
    if (rc)
        return rc;
    memcpy(c->data + c->data_len, p, n);
    c->data_len += n;
    c->offs[c->length + 1] = (int64_t)c->data_len;
    c->length++;
    return 0;
}

/* Append the JSON text of token ti without whitespace outside strings
 * (json_minify, as ndjson.c's put_minified). */
static int put_minified(struct buf *b, const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    const char *p = d->src + t->off;
    if (t->type != JSON_ARRAY && t->type != JSON_OBJECT)
        return buf_append(b, p, t->len);
    int rc = buf_reserve(b, t->len);
    if (rc)
        return rc;
    b->len += json_minify(p, t->len, b->data + b->len);
    b->data[b->len] = '\0';
    return 0;
}

static int bad_value(struct weir_errmsg *e, const struct acol *c, const char *want,
                     const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    return errmsg_set(e, WEIR_EINVAL, "field \"%s\": %.*s%s is not %s",
                      c->name ? c->name : "?", (int)(t->len > 80 ? 80 : t->len),
                      d->src + t->off, t->len > 80 ? "..." : "", want);
}

/* The decoded name of key token kt, in b->key; *p and *n point at it. */
static int key_of(struct arrow_builder *b, const struct json_doc *d,
                  const struct json_tok *kt, const char **p, size_t *n)
{
    *p = d->src + kt->off + 1;
    *n = kt->len - 2;
    if (!(kt->flags & JSON_F_ESCAPED))
        return 0;
    buf_reset(&b->key);
    int rc = buf_reserve(&b->key, kt->len);
    if (rc)
        return rc;
    *n = json_str_decode(d, kt, b->key.data, kt->len);
    *p = b->key.data;
    return 0;
}

static int put_value(struct arrow_builder *b, struct acol *c, const struct json_doc *d,
                     uint32_t ti, int dry, struct weir_errmsg *e);

/* Field f of STRUCT c for key (p, n), or c->nkids. */
static size_t field_of(const struct acol *c, const char *p, size_t n)
{
    for (size_t f = 0; f < c->nkids; f++)
        if (c->kids[f].name_len == n && memcmp(c->kids[f].name, p, n) == 0)
            return f;
    return c->nkids;
}

static int put_struct(struct arrow_builder *b, struct acol *c, const struct json_doc *d,
                      uint32_t ti, int dry, struct weir_errmsg *e)
{
    uint8_t small[64], *seen = small;
    int rc = 0;
    if (!dry) {
        if (c->nkids > sizeof small && !(seen = calloc(c->nkids, 1)))
            return errmsg_set(e, WEIR_ENOMEM, "out of memory");
        memset(seen, 0, c->nkids > sizeof small ? c->nkids : sizeof small);
        rc = begin_row(c, 1);
    }
    uint32_t k = ti + 1;
    for (uint32_t m = 0; m < d->toks[ti].count && !rc; m++) {
        const char *kp;
        size_t kn;
        rc = key_of(b, d, &d->toks[k], &kp, &kn);
        size_t f = rc ? c->nkids : field_of(c, kp, kn);
        /* A key twice (never in a validated record): the first wins. */
        if (f < c->nkids && (dry || !seen[f])) {
            if (!dry)
                seen[f] = 1;
            rc = put_value(b, &c->kids[f], d, k + 1, dry, e);
        }
        k = d->toks[k + 1].next;
    }
    for (size_t f = 0; f < c->nkids && !rc && !dry; f++)
        if (!seen[f])
            rc = append_null(&c->kids[f]);
    if (!rc && !dry)
        c->length++;
    if (seen != small)
        free(seen);
    if (rc && !e->code)
        errmsg_set(e, rc, "out of memory");
    return rc;
}

static int put_list(struct arrow_builder *b, struct acol *c, const struct json_doc *d,
                    uint32_t ti, int dry, struct weir_errmsg *e)
{
    int rc = dry ? 0 : begin_row(c, 1);
    uint32_t v = ti + 1;
    for (uint32_t i = 0; i < d->toks[ti].count && !rc; i++) {
        rc = put_value(b, &c->kids[0], d, v, dry, e);
        v = d->toks[v].next;
    }
    if (!rc && !dry) {
        c->offs[c->length + 1] = c->kids[0].length;
        c->length++;
    }
    if (rc && !e->code)
        errmsg_set(e, rc, "out of memory");
    return rc;
}

static int put_value(struct arrow_builder *b, struct acol *c, const struct json_doc *d,
                     uint32_t ti, int dry, struct weir_errmsg *e)
{
    const struct json_tok *t = &d->toks[ti];
    int rc;
    if (t->type == JSON_NULL)
        return dry ? 0 : append_null(c);
    switch (c->kind) {
    case AK_BIGINT: {
        int64_t v;
        if (t->type == JSON_NUMBER && (t->flags & JSON_F_INTEGER) && t->len <= 18) {
            /* ndjson.c's fast path: a plain literal of at most 18
             * characters always fits. */
            const char *p = d->src + t->off, *end = p + t->len;
            int neg = *p == '-';
            uint64_t u = 0;
            for (p += neg; p < end; p++)
                u = u * 10 + (uint64_t)(*p - '0');
            v = neg ? -(int64_t)u : (int64_t)u;
        } else if (t->type != JSON_NUMBER || !json_num_int64(d, t, &v)) {
            return bad_value(e, c, "a 64-bit integer (BIGINT)", d, ti);
        }
        if (dry)
            return 0;
        if ((rc = begin_row(c, 1)))
            break;
        memcpy(c->data + (size_t)c->length * 8, &v, 8);
        c->length++;
        return 0;
    }
    case AK_DOUBLE: {
        if (t->type != JSON_NUMBER)
            return bad_value(e, c, "a number (DOUBLE)", d, ti);
        if (dry)
            return 0;
        double v = json_num_double(d, t);
        if ((rc = begin_row(c, 1)))
            break;
        memcpy(c->data + (size_t)c->length * 8, &v, 8);
        c->length++;
        return 0;
    }
    case AK_BOOLEAN:
        if (t->type != JSON_TRUE && t->type != JSON_FALSE)
            return bad_value(e, c, "a boolean", d, ti);
        if (dry)
            return 0;
        if ((rc = begin_row(c, 1)))
            break;
        if (t->type == JSON_TRUE)
            c->data[c->length / 8] |= (uint8_t)(1u << (c->length % 8));
        c->length++;
        return 0;
    case AK_VARCHAR:
        if (t->type == JSON_STRING) {
            if (dry)
                return 0;
            if (!(t->flags & JSON_F_ESCAPED)) {
                rc = append_bytes(c, d->src + t->off + 1, t->len - 2);
                break;
            }
            buf_reset(&b->scratch);
            if ((rc = buf_reserve(&b->scratch, t->len)))
                break;
            size_t n = json_str_decode(d, t, b->scratch.data, t->len);
            rc = append_bytes(c, b->scratch.data, n);
            break;
        }
        /* Another value where a string was declared: its JSON text. */
        /* fall through */
    case AK_JSON:
        if (dry)
            return 0;
        buf_reset(&b->scratch);
        rc = put_minified(&b->scratch, d, ti);
        rc = rc ? rc : append_bytes(c, b->scratch.data, b->scratch.len);
        break;
    case AK_STRUCT:
        if (t->type != JSON_OBJECT)
            return bad_value(e, c, "an object", d, ti);
        return put_struct(b, c, d, ti, dry, e);
    case AK_LIST:
        if (t->type != JSON_ARRAY)
            return bad_value(e, c, "an array", d, ti);
        return put_list(b, c, d, ti, dry, e);
    default:
        return errmsg_set(e, WEIR_EINVAL, "field \"%s\": no such type", c->name);
    }
    if (rc)
        return errmsg_set(e, rc, "field \"%s\": %s", c->name, weir_strerror(rc));
    return 0;
}

/* ---- the builder -------------------------------------------------------------- */

int arrow_builder_new(const struct lake_table *t, uint32_t max_depth,
                      struct arrow_builder **out, struct weir_errmsg *e)
{
    struct arrow_builder *b = calloc(1, sizeof *b);
    struct json_doc td;
    int rc = 0;
    json_doc_init(&td, 0);
    if (!b)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    b->t = t;
    b->extra = b->date = b->hour = -1;
    json_doc_init(&b->doc, max_depth);
    /* A record is at most max_record bytes; its values and _extra less. */
    buf_init(&b->scratch, (size_t)t->max_record + 64);
    buf_init(&b->key, (size_t)t->max_record + 64);
    buf_init(&b->xbuf, (size_t)t->max_record + 64);
    size_t n = t->ncols + 3;
    if (!(b->cols = calloc(n, sizeof *b->cols))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    b->capcols = n;
    for (size_t i = 0; i < t->ncols; i++) {
        struct acol *c = &b->cols[b->ncols++];
        const char *jt = t->cols[i].json_type;
        if ((rc = set_name(c, t->cols[i].name, strlen(t->cols[i].name)))) {
            errmsg_set(e, rc, "out of memory");
            goto fail;
        }
        if (json_scan(&td, jt, strlen(jt)) != JSON_OK ||
            (rc = parse_type(&td, 0, c, 0)) != 0) {
            rc = errmsg_set(e, rc == WEIR_ENOMEM ? rc : WEIR_EINVAL,
                            "%s: column %s: cannot build its Arrow type from %s",
                            t->name, t->cols[i].name, jt);
            goto fail;
        }
    }
    b->ntyped = b->ncols;
    static const struct { const char *name; enum akind k; } more[] = {
        {LAKE_EXTRA_COLUMN, AK_JSON}, {"date", AK_DATE}, {"hour", AK_HOUR},
    };
    for (size_t i = 0; i < 3; i++) {
        if ((i == 0 && !t->has_extra) || (i == 2 && t->grain != PART_HOUR))
            continue;
        struct acol *c = &b->cols[b->ncols];
        c->kind = more[i].k;
        if ((rc = set_name(c, more[i].name, strlen(more[i].name)))) {
            errmsg_set(e, rc, "out of memory");
            goto fail;
        }
        *(i == 0 ? &b->extra : i == 1 ? &b->date : &b->hour) = (int)b->ncols;
        b->ncols++;
    }
    json_doc_release(&td);
    *out = b;
    return 0;
fail:
    json_doc_release(&td);
    arrow_builder_free(b);
    return rc;
}

static void cols_reset(struct acol *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cols_reset(c[i].kids, c[i].nkids);
        free(c[i].valid);
        free(c[i].data);
        free(c[i].offs);
        c[i].valid = c[i].data = NULL;
        c[i].offs = NULL;
        c[i].valid_cap = c[i].data_cap = c[i].data_len = c[i].offs_cap = 0;
        c[i].length = c[i].null_count = 0;
    }
}

void arrow_builder_reset(struct arrow_builder *b)
{
    cols_reset(b->cols, b->ncols);
    for (size_t i = 0; i < b->ndone; i++)
        arrow_array_release(&b->done[i]);
    b->ndone = 0;
    b->rows = 0;
}

void arrow_builder_free(struct arrow_builder *b)
{
    if (!b)
        return;
    arrow_builder_reset(b);
    for (size_t i = 0; i < b->capcols && b->cols; i++)
        acol_release(&b->cols[i]);
    free(b->cols);
    free(b->done);
    json_doc_release(&b->doc);
    buf_release(&b->scratch);
    buf_release(&b->key);
    buf_release(&b->xbuf);
    free(b);
}

uint64_t arrow_builder_rows(const struct arrow_builder *b)
{
    return b->rows;
}

/* Move column c's buffers into array a (zeroed by the caller). */
static int take_array(struct acol *c, struct ArrowArray *a)
{
    struct apriv *p = calloc(1, sizeof *p);
    if (!p)
        return WEIR_ENOMEM;
    a->private_data = p;
    a->release = array_release_cb;
    if (c->nkids) {
        p->kids = calloc(c->nkids, sizeof *p->kids);
        p->kidp = calloc(c->nkids, sizeof *p->kidp);
        if (!p->kids || !p->kidp)
            return WEIR_ENOMEM;
        a->n_children = (int64_t)c->nkids;
        a->children = p->kidp;
        for (size_t i = 0; i < c->nkids; i++) {
            p->kidp[i] = &p->kids[i];
            int rc = take_array(&c->kids[i], &p->kids[i]);
            if (rc)
                return rc;
        }
    }
    /* Offsets of an empty chunk still have their one entry, and string
     * bytes a buffer, however empty. */
    if (has_offsets(c) && !c->offs) {
        size_t cap = 0;
        if (grow(&c->offs, &cap, sizeof *c->offs))
            return WEIR_ENOMEM;
        c->offs_cap = cap / sizeof *c->offs;
    }
    if ((c->kind == AK_VARCHAR || c->kind == AK_JSON || width(c) ||
         c->kind == AK_BOOLEAN) && !c->data &&
        grow(&c->data, &c->data_cap, 8))
        return WEIR_ENOMEM;
    a->length = c->length;
    a->null_count = c->null_count;
    p->bufs[0] = c->valid;
    int nb = 1;
    if (has_offsets(c))
        p->bufs[nb++] = c->offs;
    if (c->kind != AK_STRUCT && c->kind != AK_LIST)
        p->bufs[nb++] = c->data;
    else
        free(c->data);
    for (int i = 0; i < nb; i++)
        p->bufp[i] = p->bufs[i];
    if (c->null_count == 0)
        p->bufp[0] = NULL; /* allowed, and spares DuckDB a look */
    a->n_buffers = nb;
    a->buffers = p->bufp;
    c->valid = c->data = NULL;
    c->offs = NULL;
    c->valid_cap = c->data_cap = c->data_len = c->offs_cap = 0;
    c->length = c->null_count = 0;
    return 0;
}

/* Close the chunk being built into b->done. */
static int close_chunk(struct arrow_builder *b)
{
    if (b->ndone == b->capdone) {
        size_t nc = b->capdone ? b->capdone * 2 : 8;
        struct ArrowArray *x = realloc(b->done, nc * sizeof *x);
        if (!x)
            return WEIR_ENOMEM;
        b->done = x;
        b->capdone = nc;
    }
    struct acol root = {.kind = AK_STRUCT, .kids = b->cols, .nkids = b->ncols};
    root.length = b->ncols ? b->cols[0].length : 0;
    struct ArrowArray *a = &b->done[b->ndone];
    memset(a, 0, sizeof *a);
    b->ndone++;
    int rc = take_array(&root, a);
    /* The root's own validity is empty: every row is a row. */
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int arrow_builder_add(struct arrow_builder *b, const char *rec, size_t len,
                      int64_t part_start_ns, struct weir_errmsg *e)
{
    struct json_doc *d = &b->doc;
    if (json_scan(d, rec, len) != JSON_OK || d->toks[0].type != JSON_OBJECT) {
        char why[200];
        return errmsg_set(e, WEIR_EINVAL, "not a JSON object: %s",
                          d->ntoks ? "an array or scalar" : json_describe_error(d, why, sizeof why));
    }
    const struct json_tok *root = &d->toks[0];
    int rc = 0;
    /* Pass 1 checks every value, so that a refused record leaves no half row. */
    for (int dry = 1; dry >= 0 && !rc; dry--) {
        uint8_t small[256], *seen = small;
        if (!dry && b->ntyped > sizeof small && !(seen = calloc(b->ntyped, 1)))
            return errmsg_set(e, WEIR_ENOMEM, "out of memory");
        if (!dry)
            memset(seen, 0, b->ntyped > sizeof small ? b->ntyped : sizeof small);
        size_t nextra = 0;
        struct buf *extra = &b->xbuf;
        buf_reset(extra);
        uint32_t k = 1;
        for (uint32_t m = 0; m < root->count && !rc; m++) {
            const struct json_tok *kt = &d->toks[k];
            const char *kp;
            size_t kn;
            if ((rc = key_of(b, d, kt, &kp, &kn)))
                break;
            size_t f = b->ntyped;
            for (size_t j = 0; j < b->ntyped; j++)
                if (b->cols[j].name_len == kn && memcmp(b->cols[j].name, kp, kn) == 0) {
                    f = j;
                    break;
                }
            if (f < b->ntyped) {
                if (dry || !seen[f])
                    rc = put_value(b, &b->cols[f], d, k + 1, dry, e);
                if (!dry)
                    seen[f] = 1;
            } else if (!dry && b->extra >= 0) {
                /* "key":value as sent, without the whitespace. */
                rc = buf_putc(extra, nextra ? ',' : '{');
                rc = rc ? rc : buf_append(extra, d->src + kt->off, kt->len);
                rc = rc ? rc : buf_putc(extra, ':');
                rc = rc ? rc : put_minified(extra, d, k + 1);
                nextra++;
            }
            k = d->toks[k + 1].next;
        }
        for (size_t f = 0; f < b->ntyped && !rc && !dry; f++)
            if (!seen[f])
                rc = append_null(&b->cols[f]);
        if (!rc && !dry && b->extra >= 0) {
            if (nextra)
                rc = buf_putc(extra, '}');
            rc = rc ? rc : nextra ? append_bytes(&b->cols[b->extra], extra->data, extra->len)
                                  : append_null(&b->cols[b->extra]);
        }
        if (seen != small)
            free(seen);
    }
    if (!rc && b->date >= 0) {
        int32_t days = (int32_t)floor_div(part_start_ns, WTIME_NS_PER_S * 86400);
        struct acol *c = &b->cols[b->date];
        if (!(rc = begin_row(c, 1))) {
            memcpy(c->data + (size_t)c->length * 4, &days, 4);
            c->length++;
        }
    }
    if (!rc && b->hour >= 0) {
        int64_t h = floor_div(part_start_ns, WTIME_NS_PER_S * 3600) % 24;
        int32_t hour = (int32_t)(h < 0 ? h + 24 : h);
        struct acol *c = &b->cols[b->hour];
        if (!(rc = begin_row(c, 1))) {
            memcpy(c->data + (size_t)c->length * 4, &hour, 4);
            c->length++;
        }
    }
    if (rc) {
        /* Pass 2 cannot fail on a value (pass 1 checked them), only for
         * memory; the chunk is then unusable. */
        if (!e->code || e->code == WEIR_OK)
            errmsg_set(e, rc, "%s", weir_strerror(rc));
        if (rc != WEIR_EINVAL)
            arrow_builder_reset(b);
        return rc;
    }
    b->rows++;
    if (b->cols[0].length >= ARROW_CHUNK_ROWS && (rc = close_chunk(b)))
        return errmsg_set(e, rc, "out of memory");
    return 0;
}

/* ---- the schema ----------------------------------------------------------------- */

static const char *format_of(const struct acol *c)
{
    switch (c->kind) {
    case AK_BIGINT: return "l";
    case AK_DOUBLE: return "g";
    case AK_BOOLEAN: return "b";
    case AK_VARCHAR: case AK_JSON: return "U";
    case AK_STRUCT: return "+s";
    case AK_LIST: return "+L";
    case AK_DATE: return "tdD";
    case AK_HOUR: return "i";
    }
    return "n";
}

static int make_schema(const struct acol *c, const char *fmt, struct ArrowSchema *s)
{
    struct spriv *p = calloc(1, sizeof *p);
    if (!p)
        return WEIR_ENOMEM;
    s->private_data = p;
    s->release = schema_release_cb;
    p->format = strdup(fmt);
    p->name = malloc(c->name_len + 1);
    if (!p->format || !p->name)
        return WEIR_ENOMEM;
    memcpy(p->name, c->name ? c->name : "", c->name_len);
    p->name[c->name_len] = '\0';
    s->format = p->format;
    s->name = p->name;
    s->flags = ARROW_FLAG_NULLABLE;
    if (c->nkids) {
        p->kids = calloc(c->nkids, sizeof *p->kids);
        p->kidp = calloc(c->nkids, sizeof *p->kidp);
        if (!p->kids || !p->kidp)
            return WEIR_ENOMEM;
        s->n_children = (int64_t)c->nkids;
        s->children = p->kidp;
        for (size_t i = 0; i < c->nkids; i++) {
            p->kidp[i] = &p->kids[i];
            int rc = make_schema(&c->kids[i], format_of(&c->kids[i]), &p->kids[i]);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int arrow_builder_finish(struct arrow_builder *b, struct arrow_batch *out,
                         struct weir_errmsg *e)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    if (b->ndone == 0 || b->cols[0].length > 0 || b->ncols == 0)
        rc = close_chunk(b);
    struct acol root = {.kind = AK_STRUCT, .kids = b->cols, .nkids = b->ncols};
    if (!rc)
        rc = make_schema(&root, "+s", &out->schema);
    if (rc) {
        arrow_batch_release(out);
        arrow_builder_reset(b);
        return errmsg_set(e, rc, "out of memory");
    }
    out->schema.flags = 0;
    out->arrays = b->done;
    out->narrays = b->ndone;
    out->rows = b->rows;
    b->done = NULL;
    b->ndone = b->capdone = 0;
    b->rows = 0;
    return 0;
}
