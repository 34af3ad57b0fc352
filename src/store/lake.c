/*
 * lake.c - columns from the schema, the SQL that reads the lake, the
 * schema evolution check and a reader's pinned view; see lake.h and
 * docs/lake.md, docs/query.md.
 *
 * Raw NDJSON is read with weir_read_ndjson (sql.h): weir's scanner
 * parses each line once into the typed columns, and the members no
 * column takes into _extra. DuckDB's SQL way needed three parses per
 * record for _extra (read_json_objects, json_transform for the columns,
 * json_merge_patch for the rest: about 2x the typed read), and its
 * json_transform turned a value it could not convert into NULL silently;
 * read_json alone cannot give "the rest of the object" at all. Records
 * that passed validation convert exactly: the schema's types are the
 * columns' types (integers bounded to int64 at ingest, schema.h).
 */
#include "store/lake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/protobuf.h"
#include "schema/schema.h"
#include "schema/shape.h"
#include "sql/sql.h"
#include "store/kmeta.h"
#include "store/segment.h"

/* Largest SQL text the builders make (a view over 100,000 files is about
 * 15 MB of paths). */
#define LAKE_SQL_MAX (256u << 20)

/* ---- types from shapes ---------------------------------------------------- */

static int ascii_casecmp_n(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 1;
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 1;
    }
    return 0;
}

/* 1 if the name can be a column or STRUCT field: not empty, no NUL, and
 * not equal (but for ASCII case: DuckDB's names are case-insensitive) to
 * a sibling before or after it. */
static int field_ok(const struct shape *obj, size_t i)
{
    const struct shape *f = &obj->fields[i];
    if (f->name_len == 0 || memchr(f->name, '\0', f->name_len))
        return 0;
    for (size_t k = 0; k < obj->nfields; k++)
        if (k != i && ascii_casecmp_n(f->name, f->name_len, obj->fields[k].name,
                                      obj->fields[k].name_len) == 0)
            return 0;
    return 1;
}

/* An OBJECT shape becomes a STRUCT when it has fields and all can be
 * STRUCT fields; else JSON. */
static int struct_ok(const struct shape *s)
{
    if (s->kind != SHAPE_OBJECT || s->nfields == 0)
        return 0;
    for (size_t i = 0; i < s->nfields; i++)
        if (!field_ok(s, i))
            return 0;
    return 1;
}

/* DuckDB type text (json 0) or json_transform structure (json 1). */
static int type_text(struct buf *b, const struct shape *s, int json)
{
    int rc;
    switch (s->kind) {
    case SHAPE_INTEGER:
        return buf_puts(b, json ? "\"BIGINT\"" : "BIGINT");
    case SHAPE_NUMBER:
        return buf_puts(b, json ? "\"DOUBLE\"" : "DOUBLE");
    case SHAPE_STRING:
        return buf_puts(b, json ? "\"VARCHAR\"" : "VARCHAR");
    case SHAPE_BOOLEAN:
        return buf_puts(b, json ? "\"BOOLEAN\"" : "BOOLEAN");
    case SHAPE_ARRAY:
        if (json) {
            if ((rc = buf_putc(b, '[')) || (rc = type_text(b, s->items, 1)))
                return rc;
            return buf_putc(b, ']');
        }
        if ((rc = type_text(b, s->items, 0)))
            return rc;
        return buf_puts(b, "[]");
    case SHAPE_OBJECT:
        if (!struct_ok(s))
            break;
        if ((rc = buf_puts(b, json ? "{" : "STRUCT(")))
            return rc;
        for (size_t i = 0; i < s->nfields; i++) {
            const struct shape *f = &s->fields[i];
            if (i && (rc = buf_puts(b, json ? "," : ", ")))
                return rc;
            rc = json ? buf_put_json_string(b, f->name, f->name_len)
                      : sql_quote_ident_n(b, f->name, f->name_len);
            if (rc || (rc = buf_putc(b, json ? ':' : ' ')) ||
                (rc = type_text(b, f, json)))
                return rc;
        }
        return buf_putc(b, json ? '}' : ')');
    default:
        break;
    }
    return buf_puts(b, json ? "\"JSON\"" : "JSON");
}

/* 1 if root field i of t cannot be a column of its own. */
static int reserved_name(const struct shape *f, enum part_grain g)
{
    static const char *const names[] = {"date", "hour", LAKE_EXTRA_COLUMN};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (k == 1 && g != PART_HOUR)
            continue;
        if (ascii_casecmp_n(f->name, f->name_len, names[k], strlen(names[k])) == 0)
            return 1;
    }
    return 0;
}

static int build_columns(struct lake_table *t)
{
    const struct shape *root = t->shape;
    int diverted = 0;
    t->cols = calloc(root->nfields ? root->nfields : 1, sizeof *t->cols);
    if (!t->cols)
        return WEIR_ENOMEM;
    for (size_t i = 0; i < root->nfields; i++) {
        const struct shape *f = &root->fields[i];
        if (!field_ok(root, i) || reserved_name(f, t->grain)) {
            diverted = 1;
            continue;
        }
        struct lake_col *c = &t->cols[t->ncols++];
        struct buf ty = BUF_INIT(LAKE_SQL_MAX), js = BUF_INIT(LAKE_SQL_MAX);
        c->shape = f;
        c->name = strdup(f->name);
        int rc = type_text(&ty, f, 0);
        if (!rc)
            rc = type_text(&js, f, 1);
        c->type = rc ? NULL : buf_detach(&ty, NULL);
        c->json_type = rc ? NULL : buf_detach(&js, NULL);
        buf_release(&ty);
        buf_release(&js);
        if (!c->name || !c->type || !c->json_type)
            return rc ? rc : WEIR_ENOMEM;
    }
    t->has_extra = root->open || diverted || t->ncols == 0;
    return 0;
}

/* ---- the event time of a row, for the files' time bounds ---------------- */

static const int64_t unit_factor[] = {1000000000, 1000000, 1000, 1, 0};

static int time_expr(struct lake_table *t, const char *field,
                     enum lake_time_unit unit)
{
    struct buf b = BUF_INIT(64 << 10), path = BUF_INIT(64 << 10);
    const struct shape *sh = t->shape;
    const char *p = field;
    int json = 0, rc = 0, top = 1;
    enum shape_kind kind = SHAPE_JSON;

    if (!field || !*field)
        return 0;
    /* Walk the dotted path through columns and STRUCT fields; the rest,
     * if any, is a JSON path into a JSON column or _extra. */
    while (*p && !rc) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || memchr(p, '"', n) || memchr(p, '\\', n) || memchr(p, '\'', n))
            goto none;
        if (!json) {
            const struct shape *f = shape_field(sh, p, n);
            int is_col = 0;
            if (f && top) {
                for (size_t i = 0; i < t->ncols; i++)
                    is_col |= t->cols[i].shape == f;
            } else if (f) {
                is_col = sh->kind == SHAPE_OBJECT && struct_ok(sh);
            }
            if (f && is_col) {
                if (!top)
                    rc = buf_putc(&b, '.');
                if (!rc)
                    rc = sql_quote_ident_n(&b, p, n);
                sh = f;
                kind = f->kind;
                if (f->kind == SHAPE_JSON || (f->kind == SHAPE_OBJECT && !struct_ok(f)))
                    json = 1; /* a JSON value: the rest is a JSON path */
                top = 0;
                p += n + (dot ? 1 : 0);
                if (!dot)
                    break;
                continue;
            }
            if (!top || !t->has_extra)
                goto none; /* not stored, or not where the path says */
            rc = sql_quote_ident(&b, LAKE_EXTRA_COLUMN);
            json = 1;
        }
        if (!rc)
            rc = buf_appendf(&path, ".\"%.*s\"", (int)n, p);
        top = 0;
        p += n + (dot ? 1 : 0);
        if (!dot)
            break;
    }
    if (rc)
        goto out;
    struct buf x = BUF_INIT(64 << 10);
    if (json) {
        rc = buf_puts(&x, "json_extract_string(");
        if (!rc)
            rc = buf_append(&x, b.data, b.len);
        if (!rc)
            rc = buf_puts(&x, ", ");
        if (!rc) {
            struct buf jp = BUF_INIT(64 << 10);
            rc = buf_putc(&jp, '$');
            if (!rc && path.len)
                rc = buf_append(&jp, path.data, path.len);
            if (!rc)
                rc = sql_quote_string(&x, jp.data);
            buf_release(&jp);
        }
        if (!rc)
            rc = buf_putc(&x, ')');
        kind = SHAPE_STRING;
    } else {
        rc = buf_append(&x, b.data, b.len);
    }
    buf_reset(&b);
    if (!rc) {
        if (unit == LAKE_TIME_RFC3339)
            rc = buf_appendf(&b, "epoch_ns(TRY_CAST(%s AS TIMESTAMPTZ))", x.data);
        else if (kind == SHAPE_INTEGER)
            rc = buf_appendf(&b, "TRY_CAST(CAST(%s AS HUGEINT) * %lld AS BIGINT)",
                             x.data, (long long)unit_factor[unit]);
        else
            rc = buf_appendf(&b, "TRY_CAST(round(TRY_CAST(%s AS DOUBLE) * %lld) AS BIGINT)",
                             x.data, (long long)unit_factor[unit]);
    }
    buf_release(&x);
    if (!rc) {
        t->time_expr = buf_detach(&b, NULL);
        t->time_exact = unit != LAKE_TIME_RFC3339 && kind == SHAPE_INTEGER;
    }
    goto out;
none:
    rc = 0;
out:
    buf_release(&b);
    buf_release(&path);
    return rc;
}

/* ---- the table ------------------------------------------------------------ */

void lake_table_free(struct lake_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++) {
        free(t->cols[i].name);
        free(t->cols[i].type);
        free(t->cols[i].json_type);
    }
    free(t->cols);
    shape_free(t->shape);
    free(t->name);
    free(t->dir);
    free(t->time_expr);
    free(t);
}

/* The table; kafka: the pipeline reads Kafka, its records carry the
 * metadata members (store/kmeta.h), which become columns of their own. */
static int table_new(const char *name, const char *dir, enum part_grain grain,
                     const struct schema *s, const char *time_field,
                     enum lake_time_unit unit, int kafka, struct lake_table **out,
                     struct weir_errmsg *e)
{
    struct lake_table *t = calloc(1, sizeof *t);
    int rc = WEIR_ENOMEM;

    *out = NULL;
    if (!t)
        goto fail;
    t->grain = grain;
    t->max_record = WEIR_DEFAULT_MAX_RECORD;
    t->name = strdup(name);
    t->dir = strdup(dir);
    if (!t->name || !t->dir)
        goto fail;
    if ((rc = shape_of_schema(s, &t->shape, e)))
        goto fail;
    if (kafka) {
        const char *dup = kmeta_declared(t->shape);
        if (dup) {
            lake_table_free(t);
            return errmsg_set(e, WEIR_ESCHEMA, "pipeline %s: the schema declares "
                              "\"%s\", a member weir adds to every record of a Kafka "
                              "pipeline (docs/kafka.md, \"Metadata columns\"): rename "
                              "the property", name, dup);
        }
        if ((rc = kmeta_add_columns(t->shape)))
            goto fail;
    }
    if ((rc = build_columns(t)) || (rc = time_expr(t, time_field, unit)))
        goto fail;
    *out = t;
    return 0;
fail:
    lake_table_free(t);
    return errmsg_set(e, rc ? rc : WEIR_ENOMEM, "pipeline %s: cannot map the schema "
                      "to columns: %s", name, weir_strerror(rc ? rc : WEIR_ENOMEM));
}

int lake_table_from_schema(const char *name, const char *dir,
                           enum part_grain grain, const struct schema *s,
                           const char *time_field, enum lake_time_unit unit,
                           struct lake_table **out, struct weir_errmsg *e)
{
    return table_new(name, dir, grain, s, time_field, unit, 0, out, e);
}

struct schema *lake_load_schema(const struct weir_config *cfg,
                                const struct config_pipeline *p,
                                struct weir_errmsg *e)
{
    struct schema_opts so = {
        .lax = p->lax,
        .format_assert = p->format_assert,
        .int64_integers = 1, /* as serve validates (schema.h) */
        .max_depth = (uint32_t)cfg->limits.max_depth,
        .max_record = p->max_record ? p->max_record : cfg->limits.max_record,
    };
    struct weir_errmsg se = {0};
    struct protobuf *pb = NULL;
    struct schema *s = NULL;
    if (p->schema) {
        s = schema_load_file(p->schema, &so, &se);
    } else if (lake_load_protobuf(cfg, p, &pb, e) != 0) {
        return NULL;
    } else if (pb) {
        /* The columns are what the decoder writes (schema/protobuf.h). */
        s = protobuf_schema(pb, &so, &se);
        protobuf_free(pb);
    } else {
        s = schema_compile(CONFIG_DEFAULT_SCHEMA, strlen(CONFIG_DEFAULT_SCHEMA), NULL,
                           &so, &se);
    }
    if (!s)
        errmsg_set(e, WEIR_ESCHEMA, "pipeline %s: %s", p->name, se.text);
    return s;
}

int lake_load_protobuf(const struct weir_config *cfg, const struct config_pipeline *p,
                       struct protobuf **out, struct weir_errmsg *e)
{
    *out = NULL;
    if (p->source.kind != CONFIG_SOURCE_KAFKA ||
        p->source.kafka.format != CONFIG_PAYLOAD_PROTOBUF)
        return 0;
    struct weir_errmsg pe = {0};
    int rc = protobuf_load(p->source.kafka.descriptor_set, p->source.kafka.message,
                           (uint32_t)cfg->limits.max_depth, out, &pe);
    if (rc)
        return errmsg_set(e, rc, "pipeline %s: source.kafka: %s", p->name, pe.text);
    return 0;
}

int lake_table_new(const struct weir_config *cfg, const struct config_pipeline *p,
                   const struct schema *given, struct lake_table **out,
                   struct weir_errmsg *e)
{
    static const enum lake_time_unit units[] = {
        [CONFIG_TIME_S] = LAKE_TIME_S, [CONFIG_TIME_MS] = LAKE_TIME_MS,
        [CONFIG_TIME_US] = LAKE_TIME_US, [CONFIG_TIME_NS] = LAKE_TIME_NS,
        [CONFIG_TIME_RFC3339] = LAKE_TIME_RFC3339,
    };
    char dir[PATH_MAX];
    *out = NULL;
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", cfg->data_dir, p->name) >= sizeof dir)
        return errmsg_set(e, WEIR_ELIMIT, "pipeline %s: data_dir path too long", p->name);
    struct schema *loaded = given ? NULL : lake_load_schema(cfg, p, e);
    if (!given && !loaded)
        return WEIR_ESCHEMA;
    int rc = table_new(p->name, dir,
                       p->partition == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR,
                       given ? given : loaded, p->time_field, units[p->time_unit],
                       p->source.kind == CONFIG_SOURCE_KAFKA, out, e);
    schema_free(loaded);
    if (rc == 0) {
        uint64_t mr = p->max_record ? p->max_record : cfg->limits.max_record;
        (*out)->max_record = mr ? mr : WEIR_DEFAULT_MAX_RECORD;
    }
    return rc;
}

/* ---- SQL builders --------------------------------------------------------- */

int lake_sql_path_list(struct buf *b, const char *const *paths, size_t n)
{
    int rc = buf_putc(b, '[');
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = buf_puts(b, ", ");
        if (!rc)
            rc = sql_quote_string(b, paths[i]);
    }
    return rc ? rc : buf_putc(b, ']');
}

static int hive_opts(const struct lake_table *t, unsigned flags, struct buf *b)
{
    if (!(flags & LAKE_SQL_PARTCOLS))
        return buf_puts(b, ", hive_partitioning = false");
    return buf_puts(b, t->grain == PART_HOUR
                           ? ", hive_partitioning = true, hive_types = "
                             "{'date': 'DATE', 'hour': 'INTEGER'}"
                           : ", hive_partitioning = true, hive_types = {'date': 'DATE'}");
}

/* DuckDB refuses lines longer than maximum_object_size (16 MB default). */
static uint64_t max_object(const struct lake_table *t)
{
    uint64_t m = t->max_record + 2;
    if (m < (16u << 20))
        m = 16u << 20;
    if (m > UINT32_MAX)
        m = UINT32_MAX;
    return m;
}

int lake_sql_raw(const struct lake_table *t, const char *const *paths, size_t n,
                 unsigned flags, struct buf *b)
{
    /* One pass of weir's scanner per line (sql.h, weir_read_ndjson): the
     * typed columns, and _extra from the members no column takes. */
    struct buf st = BUF_INIT(LAKE_SQL_MAX);
    int rc = buf_putc(&st, '{');
    for (size_t i = 0; i < t->ncols && !rc; i++) {
        const struct lake_col *c = &t->cols[i];
        if (i)
            rc = buf_putc(&st, ',');
        rc = rc ? rc : buf_put_json_string(&st, c->name, strlen(c->name));
        rc = rc ? rc : buf_putc(&st, ':');
        rc = rc ? rc : buf_puts(&st, c->json_type);
    }
    rc = rc ? rc : buf_putc(&st, '}');
    rc = rc ? rc : buf_puts(b, "SELECT * FROM weir_read_ndjson(");
    rc = rc ? rc : lake_sql_path_list(b, paths, n);
    rc = rc ? rc : buf_puts(b, ", columns = ");
    rc = rc ? rc : sql_quote_string(b, st.data);
    if (!rc && t->has_extra) {
        rc = buf_puts(b, ", extra = ");
        rc = rc ? rc : sql_quote_string(b, LAKE_EXTRA_COLUMN);
    }
    if (!rc && (flags & LAKE_SQL_PARTCOLS))
        rc = buf_puts(b, t->grain == PART_HOUR ? ", hive = 'hour'" : ", hive = 'day'");
    rc = rc ? rc : buf_appendf(b, ", max_line = %llu)", (unsigned long long)max_object(t));
    buf_release(&st);
    return rc;
}

int lake_sql_parquet(const struct lake_table *t, const char *const *paths,
                     size_t n, unsigned flags, struct buf *b)
{
    int rc = buf_puts(b, "SELECT * FROM read_parquet(");
    rc = rc ? rc : lake_sql_path_list(b, paths, n);
    rc = rc ? rc : buf_puts(b, ", union_by_name = true");
    rc = rc ? rc : hive_opts(t, flags, b);
    return rc ? rc : buf_putc(b, ')');
}

int lake_sql_empty(const struct lake_table *t, unsigned flags, struct buf *b)
{
    int rc = buf_puts(b, "SELECT ");
    int any = 0;
    for (size_t i = 0; i < t->ncols && !rc; i++, any = 1) {
        if (i)
            rc = buf_puts(b, ", ");
        rc = rc ? rc : buf_appendf(b, "CAST(NULL AS %s) AS ", t->cols[i].type);
        rc = rc ? rc : sql_quote_ident(b, t->cols[i].name);
    }
    if (!rc && t->has_extra) {
        rc = buf_puts(b, any ? ", CAST(NULL AS JSON) AS " : "CAST(NULL AS JSON) AS ");
        rc = rc ? rc : sql_quote_ident(b, LAKE_EXTRA_COLUMN);
        any = 1;
    }
    if (!rc && (flags & LAKE_SQL_PARTCOLS)) {
        rc = buf_puts(b, any ? ", " : "");
        rc = rc ? rc : buf_puts(b, "CAST(NULL AS DATE) AS \"date\"");
        if (!rc && t->grain == PART_HOUR)
            rc = buf_puts(b, ", CAST(NULL AS INTEGER) AS \"hour\"");
        any = 1;
    }
    if (!rc && !any)
        rc = buf_puts(b, "NULL AS \"_\"");
    return rc ? rc : buf_puts(b, " WHERE false");
}

/* ---- schema evolution ---------------------------------------------------- */

/* A parsed DuckDB type text: a scalar name, a LIST of one child, or a
 * STRUCT of named children. */
struct ptype {
    int kind; /* 0 scalar, 1 list, 2 struct */
    char name[128];
    struct ptype *kids;
    char (*knames)[256];
    size_t nkids;
};

static void ptype_release(struct ptype *p)
{
    for (size_t i = 0; i < p->nkids; i++)
        ptype_release(&p->kids[i]);
    free(p->kids);
    free(p->knames);
    memset(p, 0, sizeof *p);
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ')
        s++;
    return s;
}

static const char *parse_type(const char *s, struct ptype *out, int depth);

static const char *parse_ident(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (*s == '"') {
        s++;
        for (;;) {
            if (!*s)
                return NULL;
            if (*s == '"') {
                if (s[1] != '"')
                    break;
                s++;
            }
            if (n + 1 < cap)
                out[n++] = *s;
            s++;
        }
        out[n] = '\0';
        return s + 1;
    }
    while (*s && *s != ' ' && *s != ',' && *s != ')' && *s != '(') {
        if (n + 1 < cap)
            out[n++] = *s;
        s++;
    }
    out[n] = '\0';
    return n ? s : NULL;
}

static const char *parse_type(const char *s, struct ptype *out, int depth)
{
    memset(out, 0, sizeof *out);
    if (depth > 64)
        return NULL;
    s = skip_ws(s);
    if (strncmp(s, "STRUCT(", 7) == 0) {
        out->kind = 2;
        s += 7;
        for (;;) {
            s = skip_ws(s);
            if (*s == ')') {
                s++;
                break;
            }
            struct ptype *k = realloc(out->kids, (out->nkids + 1) * sizeof *k);
            if (!k)
                return NULL;
            out->kids = k;
            char (*kn)[256] = realloc(out->knames, (out->nkids + 1) * sizeof *kn);
            if (!kn)
                return NULL;
            out->knames = kn;
            memset(&out->kids[out->nkids], 0, sizeof *k);
            out->nkids++;
            s = parse_ident(s, out->knames[out->nkids - 1], sizeof *kn);
            if (!s)
                return NULL;
            s = parse_type(s, &out->kids[out->nkids - 1], depth + 1);
            if (!s)
                return NULL;
            s = skip_ws(s);
            if (*s == ',')
                s++;
            else if (*s != ')')
                return NULL;
        }
    } else {
        /* A scalar name, perhaps with spaces ("TIMESTAMP WITH TIME ZONE")
         * or a parameter list ("DECIMAL(18,3)"). */
        size_t n = 0;
        int par = 0;
        while (*s && (par || (*s != ',' && *s != ')' && *s != '['))) {
            if (*s == '(')
                par++;
            else if (*s == ')')
                par--;
            if (n + 1 < sizeof out->name)
                out->name[n++] = *s;
            s++;
        }
        while (n && out->name[n - 1] == ' ')
            n--;
        out->name[n] = '\0';
        if (!n)
            return NULL;
    }
    while (s[0] == '[' && s[1] == ']') {
        struct ptype *inner = malloc(sizeof *inner);
        if (!inner)
            return NULL;
        *inner = *out;
        memset(out, 0, sizeof *out);
        out->kind = 1;
        out->kids = inner;
        out->nkids = 1;
        s += 2;
    }
    return s;
}

static int ptype_compat(const struct ptype *o, const struct ptype *n)
{
    if (o->kind != n->kind)
        return 0;
    if (o->kind == 0)
        return ascii_casecmp_n(o->name, strlen(o->name), n->name, strlen(n->name)) == 0;
    if (o->kind == 1)
        return ptype_compat(&o->kids[0], &n->kids[0]);
    for (size_t i = 0; i < o->nkids; i++)
        for (size_t k = 0; k < n->nkids; k++)
            if (ascii_casecmp_n(o->knames[i], strlen(o->knames[i]), n->knames[k],
                                strlen(n->knames[k])) == 0 &&
                !ptype_compat(&o->kids[i], &n->kids[k]))
                return 0;
    return 1;
}

int lake_types_compatible(const char *old, const char *new_)
{
    struct ptype a, b;
    const char *ea = parse_type(old, &a, 0), *eb = parse_type(new_, &b, 0);
    int ok = ea && eb && !*skip_ws(ea) && !*skip_ws(eb) && ptype_compat(&a, &b);
    if (!ea || !eb)
        ok = strcmp(old, new_) == 0;
    ptype_release(&a);
    ptype_release(&b);
    return ok;
}

int lake_check_columns(const struct lake_table *t, const struct tl_snapshot *s,
                       struct weir_errmsg *e)
{
    for (size_t f = 0; f < s->nfiles; f++) {
        const struct tl_file *tf = &s->files[f];
        for (size_t k = 0; k < tf->ncolumns; k++) {
            const struct tl_column *oc = &tf->columns[k];
            const char *now = NULL;
            for (size_t i = 0; i < t->ncols && !now; i++)
                if (ascii_casecmp_n(oc->name, strlen(oc->name), t->cols[i].name,
                                    strlen(t->cols[i].name)) == 0)
                    now = t->cols[i].type;
            if (!now && t->has_extra &&
                ascii_casecmp_n(oc->name, strlen(oc->name), LAKE_EXTRA_COLUMN,
                                strlen(LAKE_EXTRA_COLUMN)) == 0)
                now = "JSON";
            if (!now || lake_types_compatible(oc->type, now))
                continue;
            return errmsg_set(e, WEIR_ESCHEMA,
                              "pipeline %s: the schema changes column \"%s\" from %s "
                              "to %s, but %s (version %llu) holds it as %s: old data "
                              "would not be readable with the new type. Keep the "
                              "type, or add a new field under another name",
                              t->name, oc->name, oc->type, now, tf->path,
                              (unsigned long long)tf->version, oc->type);
        }
    }
    return 0;
}

/* ---- a reader's view ------------------------------------------------------- */

static int rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= sizeof sub) {
            rc = -1;
            continue;
        }
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rc |= rm_tree(sub);
        else if (unlink(sub) != 0 && errno != ENOENT)
            rc = -1;
    }
    closedir(d);
    if (rmdir(path) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return WEIR_ENOMEM;
    *v = nv;
    nv[*n] = strdup(s);
    if (!nv[*n])
        return WEIR_ENOMEM;
    (*n)++;
    return 0;
}

void lake_view_release(struct lake_view *v)
{
    if (!v)
        return;
    free_list(v->parquet, v->nparquet);
    free_list(v->raw, v->nraw);
    if (v->pin_dir) {
        if (rm_tree(v->pin_dir) != 0)
            log_warn("cannot remove %s: %s (weir gc removes it)", v->pin_dir,
                     strerror(errno));
        free(v->pin_dir);
    }
    if (v->lock_fd > 0)
        close(v->lock_fd);
    tl_snapshot_release(&v->snap);
    memset(v, 0, sizeof *v);
}

/* Make the private directory; *links says whether hard links can work. */
static int make_pin_dir(const struct lake_table *t, struct lake_view *v,
                        int *links, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    *links = 1;
    if ((size_t)snprintf(path, sizeof path, "%s/_query", t->dir) >= sizeof path)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", t->dir);
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        snprintf(path, sizeof path, "%s/_query/q%ld-XXXXXX", t->dir, (long)getpid());
        if (mkdtemp(path))
            goto made;
    }
    *links = 0;
    snprintf(path, sizeof path, "%s/weir-query-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(path))
        return errmsg_set(e, weir_from_errno(errno), "cannot create a directory for "
                          "the query's files in %s/_query or %s: %s", t->dir,
                          tmp && *tmp ? tmp : "/tmp", strerror(errno));
made:
    v->pin_dir = strdup(path);
    if (!v->pin_dir)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s/.lock", path);
    v->lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (v->lock_fd < 0 || flock(v->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errmsg_set(e, weir_from_errno(errno), "%s: %s", lock, strerror(errno));
    return 0;
}

static int copy_range(int in, const char *dst, uint64_t len)
{
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return -1;
    uint64_t done = 0;
    int rc = 0;
    while (done < len) {
        loff_t off_in = (loff_t)done;
        ssize_t k = copy_file_range(in, &off_in, out, NULL, (size_t)(len - done), 0);
        if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                      errno == EOPNOTSUPP)) {
            char tmp[1 << 16];
            size_t want = len - done < sizeof tmp ? (size_t)(len - done) : sizeof tmp;
            k = pread(in, tmp, want, (off_t)done);
            if (k > 0 && write(out, tmp, (size_t)k) != k)
                k = -1;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = -1;
            if (k == 0)
                errno = EIO; /* the file shrank under us */
            break;
        }
        done += (uint64_t)k;
    }
    int saved = errno;
    close(out);
    errno = saved;
    return rc;
}

/* mkdir -p for the private directory: nothing there needs to survive a
 * crash, so no fsync (fsio_mkdir_p's would cost one per partition). */
static int mkdir_pins(const char *dir)
{
    char p[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        p[i] = c;
    }
    return 0;
}

/* Pin one segment into the view: 0, WEIR_EAGAIN (it vanished: absorbed
 * meanwhile, start over), or an error. */
static int pin_segment(struct lake_view *v, const struct seg_entry *s, int links,
                       struct weir_errmsg *e)
{
    char key[PART_KEY_MAX], dir[PATH_MAX], dst[PATH_MAX], sealed[PATH_MAX];
    size_t nlen = strlen(s->name);
    int fd = -1, rc = 0;

    if (!part_key_format(s->part_start, s->grain, key, sizeof key))
        return errmsg_set(e, WEIR_EINVAL, "%s: not in a partition", s->path);
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", v->pin_dir, key) >= sizeof dir)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", v->pin_dir);
    if (mkdir_pins(dir) != 0)
        return errmsg_set(e, weir_from_errno(errno), "%s: %s", dir, strerror(errno));
    if (s->active)
        nlen -= strlen(".open");
    if ((size_t)snprintf(dst, sizeof dst, "%s/%.*s", dir, (int)nlen, s->name) >= sizeof dst)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", dir);

    const char *src = s->path;
    if (s->active) {
        fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            /* Sealed since the listing: the same bytes under the final name. */
            size_t pl = strlen(src) - strlen(".open");
            snprintf(sealed, sizeof sealed, "%.*s", (int)pl, src);
            src = sealed;
        } else if (fd < 0) {
            return errmsg_set(e, weir_from_errno(errno), "%s: %s", src, strerror(errno));
        }
    }
    if (fd < 0) {
        if (links && link(src, dst) == 0)
            goto pinned;
        if (errno == ENOENT)
            return WEIR_EAGAIN;
        fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return errno == ENOENT ? WEIR_EAGAIN
                                   : errmsg_set(e, weir_from_errno(errno), "%s: %s", src,
                                                strerror(errno));
    }
    struct stat st;
    uint64_t len = 0;
    if (fstat(fd, &st) != 0 || seg_complete_len_fd(fd, (uint64_t)st.st_size, &len) != 0) {
        rc = errmsg_set(e, WEIR_EIO, "%s: cannot read: %s", src, strerror(errno));
        goto out;
    }
    if (len == 0)
        goto out; /* nothing complete yet */
    if (copy_range(fd, dst, len) != 0) {
        rc = errmsg_set(e, weir_from_errno(errno), "cannot copy %s to %s: %s", src,
                        dst, strerror(errno));
        goto out;
    }
    v->raw_bytes += len;
    rc = push(&v->raw, &v->nraw, dst);
    goto out;
pinned:
    if (stat(dst, &st) == 0) {
        if (st.st_size == 0)
            goto out;
        v->raw_bytes += (uint64_t)st.st_size;
    }
    rc = push(&v->raw, &v->nraw, dst);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The identity of a listed segment: partition and name without ".open". */
static int same_listing(const struct seg_list *a, const struct seg_list *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct seg_entry *x = &a->v[i], *y = &b->v[i];
        size_t xl = strlen(x->name) - (x->active ? 5 : 0);
        size_t yl = strlen(y->name) - (y->active ? 5 : 0);
        if (x->part_start != y->part_start || xl != yl ||
            memcmp(x->name, y->name, xl) != 0)
            return 0;
    }
    return 1;
}

/* List raw segments until two listings in a row agree (at most 8 tries). */
static int stable_list(const struct lake_table *t, struct seg_list *out,
                       struct weir_errmsg *e)
{
    char data_dir[PATH_MAX];
    const char *slash = strrchr(t->dir, '/');
    if (!slash)
        return errmsg_set(e, WEIR_EINVAL, "%s: not a dataset path", t->dir);
    snprintf(data_dir, sizeof data_dir, "%.*s", (int)(slash - t->dir), t->dir);
    struct seg_list prev = {0};
    int rc = seg_list(data_dir, t->name, "raw", &prev, e);
    for (int i = 0; i < 8 && rc == 0; i++) {
        struct seg_list cur = {0};
        if ((rc = seg_list(data_dir, t->name, "raw", &cur, e))) {
            seg_list_release(&cur);
            break;
        }
        int same = same_listing(&prev, &cur);
        seg_list_release(&prev);
        prev = cur;
        if (same)
            break;
    }
    if (rc)
        seg_list_release(&prev);
    else
        *out = prev;
    return rc;
}

static int view_try(const struct lake_table *t, struct tablelog *tl,
                    struct lake_view *v, int links, struct weir_errmsg *e)
{
    struct seg_list segs = {0};
    char path[PATH_MAX];
    int rc;

    if ((rc = tl_snapshot(tl, 0, &v->snap, e)))
        return rc;
    v->version = v->snap.version;
    if ((rc = stable_list(t, &segs, e)))
        goto out;
    for (size_t i = 0; i < segs.n && !rc; i++) {
        const struct seg_entry *s = &segs.v[i];
        if (!s->active && tl_snapshot_absorbed(&v->snap, s->name))
            continue;
        rc = pin_segment(v, s, links, e);
    }
    if (rc)
        goto out;
    uint64_t latest = 0;
    if ((rc = tl_latest(tl, &latest, e)))
        goto out;
    if (latest != v->version) {
        rc = WEIR_EAGAIN;
        goto out;
    }
    for (size_t i = 0; i < v->snap.nfiles && !rc; i++) {
        if ((size_t)snprintf(path, sizeof path, "%s/%s", t->dir,
                             v->snap.files[i].path) >= sizeof path)
            rc = errmsg_set(e, WEIR_ELIMIT, "%s: path too long", t->dir);
        else
            rc = push(&v->parquet, &v->nparquet, path);
    }
out:
    seg_list_release(&segs);
    return rc;
}

int lake_view_open(const struct lake_table *t, uint64_t as_of,
                   struct lake_view *v, struct weir_errmsg *e)
{
    struct tablelog *tl = NULL;
    char path[PATH_MAX];
    int links = 0, rc;

    memset(v, 0, sizeof *v);
    v->lock_fd = -1;
    if ((rc = tl_open(t->dir, &tl, e)))
        return rc;
    if (as_of) {
        v->as_of = 1;
        if ((rc = tl_snapshot(tl, as_of, &v->snap, e)))
            goto out;
        v->version = v->snap.version;
        for (size_t i = 0; i < v->snap.nfiles && !rc; i++) {
            if ((size_t)snprintf(path, sizeof path, "%s/%s", t->dir,
                                 v->snap.files[i].path) >= sizeof path)
                rc = errmsg_set(e, WEIR_ELIMIT, "%s: path too long", t->dir);
            else
                rc = push(&v->parquet, &v->nparquet, path);
        }
        goto out;
    }
    if ((rc = make_pin_dir(t, v, &links, e)))
        goto out;
    for (unsigned k = 0;; k++) {
        rc = view_try(t, tl, v, links, e);
        if (rc != WEIR_EAGAIN)
            break;
        if (k + 1 >= LAKE_VIEW_MAX_TRIES) {
            rc = errmsg_set(e, WEIR_EAGAIN, "%s: commits kept landing while the "
                            "query pinned its files (%u tries); try again", t->name, k + 1);
            break;
        }
        /* Start over with an empty private directory. */
        v->retries++;
        free_list(v->raw, v->nraw);
        free_list(v->parquet, v->nparquet);
        v->raw = v->parquet = NULL;
        v->nraw = v->nparquet = 0;
        v->raw_bytes = 0;
        tl_snapshot_release(&v->snap);
        DIR *d = opendir(v->pin_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            if ((size_t)snprintf(path, sizeof path, "%s/%s", v->pin_dir,
                                 de->d_name) < sizeof path)
                rm_tree(path);
        }
        if (d)
            closedir(d);
        usleep(1000u << (k < 6 ? k : 6));
    }
out:
    tl_free(tl);
    return rc;
}

int lake_view_sql(const struct lake_table *t, const struct lake_view *v,
                  struct buf *b)
{
    int rc = buf_puts(b, "SELECT * FROM (");
    rc = rc ? rc : lake_sql_empty(t, LAKE_SQL_PARTCOLS, b);
    if (!rc && v->nraw) {
        rc = buf_puts(b, " UNION ALL BY NAME ");
        rc = rc ? rc : lake_sql_raw(t, (const char *const *)v->raw, v->nraw,
                                    LAKE_SQL_PARTCOLS, b);
    }
    if (!rc && v->nparquet) {
        rc = buf_puts(b, " UNION ALL BY NAME ");
        rc = rc ? rc : lake_sql_parquet(t, (const char *const *)v->parquet, v->nparquet,
                                        LAKE_SQL_PARTCOLS, b);
    }
    return rc ? rc : buf_putc(b, ')');
}

int lake_query_dirs_clean(const char *dataset_dir, int64_t min_age_ns,
                          unsigned *n, struct weir_errmsg *e)
{
    char path[PATH_MAX], sub[PATH_MAX];
    unsigned removed = 0;
    int rc = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/_query", dataset_dir) >= sizeof path)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", dataset_dir);
    DIR *d = opendir(path);
    if (!d) {
        if (n)
            *n = 0;
        return errno == ENOENT ? 0 : errmsg_set(e, weir_from_errno(errno), "%s: %s",
                                                 path, strerror(errno));
    }
    int64_t now = wtime_now_ns();
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] != 'q')
            continue;
        struct stat st;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= sizeof sub)
            continue;
        if (lstat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        int64_t mt = (int64_t)st.st_mtim.tv_sec * WTIME_NS_PER_S + st.st_mtim.tv_nsec;
        if (now - mt < min_age_ns)
            continue;
        char lock[PATH_MAX + 8];
        snprintf(lock, sizeof lock, "%s/.lock", sub);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd); /* held: a query is running */
            continue;
        }
        if (rm_tree(sub) == 0)
            removed++;
        else if (!rc)
            rc = errmsg_set(e, weir_from_errno(errno), "cannot remove %s: %s", sub,
                            strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    if (n)
        *n = removed;
    return rc;
}
