/*
 * ndjson.c - weir_read_ndjson, a DuckDB table function that reads NDJSON
 * files into typed columns with weir's own JSON scanner (schema/json.h);
 * sql.h describes its SQL interface, docs/lake.md why it exists.
 *
 * Why not DuckDB's read_json: the lake keeps a record's undeclared
 * properties in an `_extra` JSON column, and read_json cannot produce
 * "the rest of the object". The SQL way (read_json_objects, then
 * json_transform for the columns and json_merge_patch for the rest)
 * parses every record three times, and json_transform turns a value it
 * cannot convert into NULL without a word. Here each line is scanned once
 * (weir's scanner checks the whole grammar and UTF-8 at about 16 M
 * telemetry records/s on one core), its members are routed to their
 * columns, and the members no column takes are copied, as text, into
 * `_extra`. A value that does not fit its column (12345678901234567890
 * for a BIGINT, a string for a STRUCT) fails the query with the file, the
 * line, the column and the value: nothing is ever dropped quietly.
 *
 * Parallelism: the files are cut into work units of about NDJSON_UNIT
 * bytes that end at a newline; DuckDB's threads take units in turn, each
 * reads its unit with one pread and fills 2048-row chunks. Row order is
 * not kept across units (compaction does not need it).
 *
 * Values, as the lake's columns want them (docs/lake.md, "Columns"):
 *
 *   column type  JSON value               stored
 *   -----------  -----------------------  -----------------------------------
 *   BIGINT       integer in int64         the integer (1.0 and 1e2 count)
 *   DOUBLE       number                   the nearest double
 *   VARCHAR      string / other scalar    decoded string / its JSON text
 *   BOOLEAN      true, false              the boolean
 *   JSON         anything                 its JSON text, whitespace removed
 *   STRUCT(...)  object                   declared fields; others ignored
 *   T[]          array                    each item as T
 *   any          null, or missing         NULL
 */
#include "sql/ndjson.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/wtime.h"
#include "schema/json.h"

/* Work unit size: big enough that one pread is cheap per byte, small
 * enough that an hour of segments (100+ MB) keeps every thread busy. */
#define NDJSON_UNIT (4u << 20)

/* How far past a cut point a newline is looked for, per read. */
#define NDJSON_PROBE (64u << 10)

/* Nesting of the column structure (the records' own depth is bounded by
 * the scanner, at NDJSON_MAX_RECORD_DEPTH). */
#define NDJSON_MAX_TYPE_DEPTH 64
#define NDJSON_MAX_RECORD_DEPTH (1u << 16)

enum nkind { NK_BIGINT, NK_DOUBLE, NK_VARCHAR, NK_BOOLEAN, NK_JSON, NK_STRUCT,
             NK_LIST, NK_EXTRA, NK_DATE, NK_HOUR };

/* One column, or a STRUCT field, or a LIST's items (read-only once bound:
 * shared by every thread). */
struct ncol {
    enum nkind kind;
    char *name;
    size_t name_len;
    struct ncol *kids;   /* STRUCT: its fields; LIST: one, the items */
    size_t nkids;
};

struct nfile {
    char *path;
    int32_t date;        /* hive: days since 1970-01-01 */
    int32_t hour;
};

struct nunit {
    size_t file;
    uint64_t off, len;
};

struct nbind {
    struct ncol *cols;   /* typed columns, then _extra, date, hour */
    size_t ncols, ntyped;
    int extra;           /* index of the _extra column, or -1 */
    struct nfile *files;
    size_t nfiles;
    uint64_t max_line;   /* 0: no limit */
};

struct nglobal {
    struct nunit *units;
    size_t nunits;
    atomic_size_t next;
};

/* Per-thread view of one vector of a column tree, refreshed per chunk. */
struct nslot {
    duckdb_vector vec;
    void *data;
    uint64_t *valid;     /* NULL until the first NULL of the chunk */
    idx_t size, cap;     /* LIST: entries used and reserved in the child */
    struct nslot *kids;
};

/* A growable text buffer (JSON values being minified, _extra). */
struct tbuf {
    char *p;
    size_t len, cap;
};

struct nlocal {
    char *buf;           /* the current unit */
    size_t cap;
    size_t pos, end;
    size_t unit;         /* index, valid while end > 0 */
    uint64_t line0;      /* lines before the unit, counted on error only */
    struct json_doc doc;
    idx_t *proj;         /* output column k is bind column proj[k] */
    size_t nproj;
    struct nslot *slots; /* by output column k */
    struct tbuf val;     /* a value's text being built */
    struct tbuf extra;   /* the record's _extra being built */
    char key[256];       /* a decoded escaped key */
    char err[1024];
};

/* ---- the column structure ------------------------------------------------- */

static void ncol_release(struct ncol *c)
{
    for (size_t i = 0; i < c->nkids; i++)
        ncol_release(&c->kids[i]);
    free(c->kids);
    free(c->name);
}

static void nbind_free(void *p)
{
    struct nbind *b = p;
    if (!b)
        return;
    for (size_t i = 0; i < b->ncols; i++)
        ncol_release(&b->cols[i]);
    free(b->cols);
    for (size_t i = 0; i < b->nfiles; i++)
        free(b->files[i].path);
    free(b->files);
    free(b);
}

static int set_name(struct ncol *c, const char *s, size_t n)
{
    c->name = malloc(n + 1);
    if (!c->name)
        return -1;
    memcpy(c->name, s, n);
    c->name[n] = '\0';
    c->name_len = n;
    return 0;
}

/* Build c from the structure token ti of d ("BIGINT", {...}, [...]). */
static int parse_type(const struct json_doc *d, uint32_t ti, struct ncol *c, int depth,
                      char *err, size_t cap)
{
    static const struct { const char *n; enum nkind k; } names[] = {
        {"BIGINT", NK_BIGINT}, {"DOUBLE", NK_DOUBLE}, {"VARCHAR", NK_VARCHAR},
        {"BOOLEAN", NK_BOOLEAN}, {"JSON", NK_JSON},
    };
    const struct json_tok *t = &d->toks[ti];
    if (depth > NDJSON_MAX_TYPE_DEPTH) {
        snprintf(err, cap, "columns: nested too deep");
        return -1;
    }
    if (t->type == JSON_STRING) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (json_str_eq(d, t, names[i].n, strlen(names[i].n))) {
                c->kind = names[i].k;
                return 0;
            }
        snprintf(err, cap, "columns: unknown type %.*s (BIGINT, DOUBLE, VARCHAR, "
                 "BOOLEAN, JSON, {...} or [...])", (int)(t->len > 40 ? 40 : t->len),
                 d->src + t->off);
        return -1;
    }
    if (t->type == JSON_ARRAY && t->count == 1) {
        c->kind = NK_LIST;
        c->kids = calloc(1, sizeof *c->kids);
        if (!c->kids)
            goto oom;
        c->nkids = 1;
        return parse_type(d, ti + 1, &c->kids[0], depth + 1, err, cap);
    }
    if (t->type == JSON_OBJECT && t->count > 0) {
        c->kind = NK_STRUCT;
        c->kids = calloc(t->count, sizeof *c->kids);
        if (!c->kids)
            goto oom;
        uint32_t k = ti + 1;
        for (uint32_t m = 0; m < t->count; m++, c->nkids++) {
            const struct json_tok *kt = &d->toks[k];
            char *nm = malloc(kt->len);
            if (!nm)
                goto oom;
            size_t n = json_str_decode(d, kt, nm, kt->len);
            int rc = set_name(&c->kids[m], nm, n);
            free(nm);
            if (rc)
                goto oom;
            if (parse_type(d, k + 1, &c->kids[m], depth + 1, err, cap))
                return -1;
            k = d->toks[k + 1].next;
        }
        return 0;
    }
    snprintf(err, cap, "columns: a type is a name, an object of fields or a one-item "
             "array");
    return -1;
oom:
    snprintf(err, cap, "out of memory");
    return -1;
}

static duckdb_logical_type logical_type(const struct ncol *c)
{
    duckdb_logical_type t = NULL;
    switch (c->kind) {
    case NK_BIGINT:
        return duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    case NK_DOUBLE:
        return duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
    case NK_VARCHAR:
        return duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    case NK_BOOLEAN:
        return duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
    case NK_DATE:
        return duckdb_create_logical_type(DUCKDB_TYPE_DATE);
    case NK_HOUR:
        return duckdb_create_logical_type(DUCKDB_TYPE_INTEGER);
    case NK_JSON:
    case NK_EXTRA:
        /* DuckDB's JSON type is VARCHAR under that alias; Parquet files
         * written from it say JSON too. */
        t = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
        duckdb_logical_type_set_alias(t, "JSON");
        return t;
    case NK_LIST: {
        duckdb_logical_type it = logical_type(&c->kids[0]);
        t = duckdb_create_list_type(it);
        duckdb_destroy_logical_type(&it);
        return t;
    }
    case NK_STRUCT: {
        duckdb_logical_type *kt = calloc(c->nkids, sizeof *kt);
        const char **kn = calloc(c->nkids, sizeof *kn);
        if (kt && kn) {
            for (size_t i = 0; i < c->nkids; i++) {
                kt[i] = logical_type(&c->kids[i]);
                kn[i] = c->kids[i].name;
            }
            t = duckdb_create_struct_type(kt, kn, c->nkids);
            for (size_t i = 0; i < c->nkids; i++)
                duckdb_destroy_logical_type(&kt[i]);
        }
        free(kt);
        free(kn);
        return t;
    }
    }
    return NULL;
}

/* ---- hive partition values from a path ------------------------------------ */

/* The value of the last path component "<key>=..." (up to the next '/'). */
static const char *hive_value(const char *path, const char *key, size_t *n)
{
    const char *found = NULL;
    size_t kl = strlen(key);
    for (const char *p = path; (p = strstr(p, key)) != NULL; p++)
        if ((p == path || p[-1] == '/') && p[kl] == '=')
            found = p + kl + 1;
    if (!found)
        return NULL;
    const char *end = strchr(found, '/');
    *n = end ? (size_t)(end - found) : strlen(found);
    return found;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    if (n == 0 || n > 4)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int hive_parse(struct nfile *f, int want_hour, char *err, size_t cap)
{
    size_t n = 0;
    int y, m, d, h = 0;
    const char *v = hive_value(f->path, "date", &n);
    if (!v || n != 10 || v[4] != '-' || v[7] != '-' || digits(v, 4, &y) ||
        digits(v + 5, 2, &m) || digits(v + 8, 2, &d) || m < 1 || m > 12 || d < 1 ||
        d > 31)
        goto bad;
    f->date = (int32_t)wtime_days_from_civil(y, m, d);
    if (want_hour) {
        v = hive_value(f->path, "hour", &n);
        if (!v || digits(v, n, &h) || h > 23)
            goto bad;
    }
    f->hour = h;
    return 0;
bad:
    snprintf(err, cap, "%s: not under date=YYYY-MM-DD%s directories", f->path,
             want_hour ? "/hour=HH" : "");
    return -1;
}

/* ---- bind ------------------------------------------------------------------ */

static struct ncol *add_col(struct nbind *b, enum nkind k, const char *name)
{
    struct ncol *c = &b->cols[b->ncols];
    memset(c, 0, sizeof *c);
    c->kind = k;
    if (set_name(c, name, strlen(name)))
        return NULL;
    b->ncols++;
    return c;
}

static void nd_bind(duckdb_bind_info info)
{
    char err[512] = "out of memory";
    struct nbind *b = calloc(1, sizeof *b);
    struct json_doc d;
    duckdb_value files = duckdb_bind_get_parameter(info, 0);
    duckdb_value v_cols = duckdb_bind_get_named_parameter(info, "columns");
    duckdb_value v_extra = duckdb_bind_get_named_parameter(info, "extra");
    duckdb_value v_hive = duckdb_bind_get_named_parameter(info, "hive");
    duckdb_value v_max = duckdb_bind_get_named_parameter(info, "max_line");
    char *cols = v_cols ? duckdb_get_varchar(v_cols) : NULL;
    char *extra = v_extra ? duckdb_get_varchar(v_extra) : NULL;
    char *hive = v_hive ? duckdb_get_varchar(v_hive) : NULL;

    json_doc_init(&d, NDJSON_MAX_TYPE_DEPTH);
    if (!b)
        goto fail;
    b->extra = -1;
    if (v_max)
        b->max_line = (uint64_t)duckdb_get_int64(v_max);
    int want_date = 0, want_hour = 0;
    if (hive && *hive) {
        want_date = 1;
        want_hour = strcmp(hive, "hour") == 0;
        if (!want_hour && strcmp(hive, "day") != 0) {
            snprintf(err, sizeof err, "hive: 'hour', 'day' or '' (none)");
            goto fail;
        }
    }
    const char *structure = cols && *cols ? cols : "{}";
    if (json_scan(&d, structure, strlen(structure)) != JSON_OK ||
        d.toks[0].type != JSON_OBJECT) {
        snprintf(err, sizeof err, "columns: a JSON object of column types");
        goto fail;
    }
    size_t ntyped = d.toks[0].count;
    b->cols = calloc(ntyped + 3, sizeof *b->cols);
    if (!b->cols)
        goto fail;
    uint32_t k = 1;
    for (uint32_t m = 0; m < ntyped; m++) {
        const struct json_tok *kt = &d.toks[k];
        struct ncol *c = &b->cols[b->ncols];
        char *nm = malloc(kt->len);
        if (!nm)
            goto fail;
        size_t n = json_str_decode(&d, kt, nm, kt->len);
        int rc = set_name(c, nm, n);
        free(nm);
        b->ncols++;
        if (rc || parse_type(&d, k + 1, c, 0, err, sizeof err))
            goto fail;
        k = d.toks[k + 1].next;
    }
    b->ntyped = b->ncols;
    if (extra && *extra) {
        b->extra = (int)b->ncols;
        if (!add_col(b, NK_EXTRA, extra))
            goto fail;
    }
    if (want_date && !add_col(b, NK_DATE, "date"))
        goto fail;
    if (want_hour && !add_col(b, NK_HOUR, "hour"))
        goto fail;
    if (b->ncols == 0) {
        snprintf(err, sizeof err, "no columns: give columns or extra");
        goto fail;
    }

    idx_t nf = files ? duckdb_get_list_size(files) : 0;
    b->files = calloc(nf ? nf : 1, sizeof *b->files);
    if (!b->files)
        goto fail;
    uint64_t bytes = 0;
    for (idx_t i = 0; i < nf; i++) {
        duckdb_value fv = duckdb_get_list_child(files, i);
        char *p = fv ? duckdb_get_varchar(fv) : NULL;
        duckdb_destroy_value(&fv);
        if (!p)
            goto fail;
        b->files[b->nfiles].path = strdup(p);
        duckdb_free(p);
        if (!b->files[b->nfiles].path)
            goto fail;
        b->nfiles++;
        struct stat st;
        if (stat(b->files[i].path, &st) == 0)
            bytes += (uint64_t)st.st_size;
        if (want_date && hive_parse(&b->files[i], want_hour, err, sizeof err))
            goto fail;
    }
    for (size_t i = 0; i < b->ncols; i++) {
        duckdb_logical_type t = logical_type(&b->cols[i]);
        if (!t)
            goto fail;
        duckdb_bind_add_result_column(info, b->cols[i].name, t);
        duckdb_destroy_logical_type(&t);
    }
    /* About 100 bytes a record: the planner only needs the magnitude. */
    duckdb_bind_set_cardinality(info, (idx_t)(bytes / 100), false);
    duckdb_bind_set_bind_data(info, b, nbind_free);
    b = NULL;
    goto out;
fail:
    duckdb_bind_set_error(info, err);
out:
    nbind_free(b);
    json_doc_release(&d);
    duckdb_free(cols);
    duckdb_free(extra);
    duckdb_free(hive);
    duckdb_destroy_value(&files);
    duckdb_destroy_value(&v_cols);
    duckdb_destroy_value(&v_extra);
    duckdb_destroy_value(&v_hive);
    duckdb_destroy_value(&v_max);
}

/* ---- init: cut the files into units ------------------------------------ */

static void nglobal_free(void *p)
{
    struct nglobal *g = p;
    if (!g)
        return;
    free(g->units);
    free(g);
}

static int add_unit(struct nglobal *g, size_t *cap, size_t file, uint64_t off,
                    uint64_t len)
{
    if (g->nunits == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct nunit *u = realloc(g->units, nc * sizeof *u);
        if (!u)
            return -1;
        g->units = u;
        *cap = nc;
    }
    g->units[g->nunits++] = (struct nunit){file, off, len};
    return 0;
}

/* The offset just past the first newline at or after from (size: none). */
static int next_line(int fd, uint64_t from, uint64_t size, uint64_t max_line,
                     uint64_t *out)
{
    char probe[NDJSON_PROBE];
    uint64_t at = from;
    while (at < size) {
        ssize_t r = pread(fd, probe, sizeof probe, (off_t)at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        const char *nl = memchr(probe, '\n', (size_t)r);
        if (nl) {
            *out = at + (uint64_t)(nl - probe) + 1;
            return 0;
        }
        at += (uint64_t)r;
        if (max_line && at - from > max_line) {
            errno = EFBIG;
            return -1;
        }
    }
    *out = size;
    return 0;
}

static void nd_init(duckdb_init_info info)
{
    const struct nbind *b = duckdb_init_get_bind_data(info);
    struct nglobal *g = calloc(1, sizeof *g);
    char err[PATH_MAX + 128] = "out of memory";
    size_t cap = 0;

    if (!g)
        goto fail;
    atomic_init(&g->next, 0);
    for (size_t i = 0; i < b->nfiles; i++) {
        const char *path = b->files[i].path;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        uint64_t size = (uint64_t)st.st_size, off = 0;
        while (off < size) {
            uint64_t cut = size;
            if (size - off > NDJSON_UNIT &&
                next_line(fd, off + NDJSON_UNIT - 1, size, b->max_line, &cut) != 0) {
                snprintf(err, sizeof err, "%s: %s", path,
                         errno == EFBIG ? "a line is longer than the limit"
                                        : strerror(errno));
                close(fd);
                goto fail;
            }
            if (add_unit(g, &cap, i, off, cut - off)) {
                close(fd);
                goto fail;
            }
            off = cut;
        }
        close(fd);
    }
    duckdb_init_set_max_threads(info, g->nunits ? g->nunits : 1);
    duckdb_init_set_init_data(info, g, nglobal_free);
    return;
fail:
    nglobal_free(g);
    duckdb_init_set_error(info, err);
}

static void slots_release(struct nslot *s, const struct ncol *c)
{
    if (!s)
        return;
    for (size_t i = 0; c && i < c->nkids; i++)
        slots_release(&s->kids[i], &c->kids[i]);
    free(s->kids);
}

static int slots_alloc(struct nslot *s, const struct ncol *c)
{
    memset(s, 0, sizeof *s);
    if (!c->nkids)
        return 0;
    s->kids = calloc(c->nkids, sizeof *s->kids);
    if (!s->kids)
        return -1;
    for (size_t i = 0; i < c->nkids; i++)
        if (slots_alloc(&s->kids[i], &c->kids[i]))
            return -1;
    return 0;
}

struct nlocal_box {
    struct nlocal l;
    const struct nbind *b;
};

static void nlocal_free(void *p)
{
    struct nlocal_box *x = p;
    if (!x)
        return;
    for (size_t k = 0; x->l.slots && k < x->l.nproj; k++) {
        idx_t ci = x->l.proj[k];
        slots_release(&x->l.slots[k], ci < x->b->ncols ? &x->b->cols[ci] : NULL);
    }
    free(x->l.slots);
    free(x->l.proj);
    free(x->l.buf);
    free(x->l.val.p);
    free(x->l.extra.p);
    json_doc_release(&x->l.doc);
    free(x);
}

static void nd_local_init(duckdb_init_info info)
{
    const struct nbind *b = duckdb_init_get_bind_data(info);
    struct nlocal_box *x = calloc(1, sizeof *x);
    if (!x)
        goto fail;
    struct nlocal *l = &x->l;
    x->b = b;
    /* Records passed validation under the pipeline's own depth limit
     * (up to 4096): the reader must not refuse them, and depth costs it
     * nothing (values are copied as text; recursion follows the column
     * structure, NDJSON_MAX_TYPE_DEPTH deep at most). */
    json_doc_init(&l->doc, NDJSON_MAX_RECORD_DEPTH);
    l->nproj = duckdb_init_get_column_count(info);
    l->proj = calloc(l->nproj ? l->nproj : 1, sizeof *l->proj);
    l->slots = calloc(l->nproj ? l->nproj : 1, sizeof *l->slots);
    if (!l->proj || !l->slots)
        goto fail;
    for (size_t k = 0; k < l->nproj; k++) {
        l->proj[k] = duckdb_init_get_column_index(info, k);
        if (l->proj[k] < b->ncols && slots_alloc(&l->slots[k], &b->cols[l->proj[k]]))
            goto fail;
    }
    duckdb_init_set_init_data(info, x, nlocal_free);
    return;
fail:
    nlocal_free(x);
    duckdb_init_set_error(info, "out of memory");
}

/* ---- writing values ------------------------------------------------------ */

/* Point the slots of column c at the vectors of this chunk. */
static void slot_bind(struct nslot *s, const struct ncol *c, duckdb_vector v)
{
    s->vec = v;
    s->data = duckdb_vector_get_data(v);
    s->valid = NULL;
    if (c->kind == NK_STRUCT) {
        for (size_t i = 0; i < c->nkids; i++)
            slot_bind(&s->kids[i], &c->kids[i], duckdb_struct_vector_get_child(v, i));
    } else if (c->kind == NK_LIST) {
        s->size = duckdb_list_vector_get_size(v);
        s->cap = s->size;
        slot_bind(&s->kids[0], &c->kids[0], duckdb_list_vector_get_child(v));
    }
}

static void set_null(struct nslot *s, const struct ncol *c, idx_t row)
{
    if (!s->valid) {
        duckdb_vector_ensure_validity_writable(s->vec);
        s->valid = duckdb_vector_get_validity(s->vec);
    }
    duckdb_validity_set_row_invalid(s->valid, row);
    if (c->kind == NK_STRUCT) {
        for (size_t i = 0; i < c->nkids; i++)
            set_null(&s->kids[i], &c->kids[i], row);
    } else if (c->kind == NK_LIST) {
        duckdb_list_entry *e = s->data;
        e[row].offset = s->size;
        e[row].length = 0;
    }
}

static int tb_reserve(struct tbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + more)
        nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p)
        return -1;
    b->p = p;
    b->cap = nc;
    return 0;
}

/* Append the JSON text of token ti without whitespace outside strings
 * (json_minify). */
static int put_minified(struct tbuf *b, const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    const char *p = d->src + t->off;
    if (tb_reserve(b, t->len))
        return -1;
    char *o = b->p + b->len;
    if (t->type != JSON_ARRAY && t->type != JSON_OBJECT) {
        memcpy(o, p, t->len);
        b->len += t->len;
        return 0;
    }
    b->len += json_minify(p, t->len, o);
    return 0;
}

static void put_text(struct nslot *s, idx_t row, const char *p, size_t n)
{
    duckdb_vector_assign_string_element_len(s->vec, row, p, n);
}

static int oom(struct nlocal *l)
{
    snprintf(l->err, sizeof l->err, "out of memory");
    return -1;
}

static int bad_value(struct nlocal *l, const struct ncol *c, const char *want,
                     const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    snprintf(l->err, sizeof l->err, "field \"%s\": %.*s%s is not %s", c->name ? c->name : "?",
             (int)(t->len > 80 ? 80 : t->len), d->src + t->off, t->len > 80 ? "..." : "",
             want);
    return -1;
}

static int write_value(struct nlocal *l, struct nslot *s, const struct ncol *c, idx_t row,
                       const struct json_doc *d, uint32_t ti);

/* The fields of object ti into the STRUCT slot s at row; missing ones NULL. */
static int write_struct(struct nlocal *l, struct nslot *s, const struct ncol *c, idx_t row,
                        const struct json_doc *d, uint32_t ti)
{
    uint64_t seen_small = 0, *seen = &seen_small;
    uint64_t *big = NULL;
    int rc = 0;
    if (c->nkids > 64) {
        big = calloc((c->nkids + 63) / 64, sizeof *big);
        if (!big)
            return oom(l);
        seen = big;
    }
    uint32_t k = ti + 1;
    size_t hint = 0;
    for (uint32_t m = 0; m < d->toks[ti].count && !rc; m++) {
        const struct json_tok *kt = &d->toks[k];
        const char *kp = d->src + kt->off + 1;
        size_t kn = kt->len - 2;
        if (kt->flags & JSON_F_ESCAPED) {
            kn = json_str_decode(d, kt, l->key, sizeof l->key);
            kp = l->key;
        }
        size_t f = c->nkids;
        if (kn <= sizeof l->key) {
            for (size_t j = 0; j < c->nkids; j++) {
                size_t x = hint + j < c->nkids ? hint + j : hint + j - c->nkids;
                if (c->kids[x].name_len == kn && memcmp(c->kids[x].name, kp, kn) == 0) {
                    f = x;
                    break;
                }
            }
        }
        if (f < c->nkids) {
            seen[f / 64] |= UINT64_C(1) << (f % 64);
            rc = write_value(l, &s->kids[f], &c->kids[f], row, d, k + 1);
            hint = f + 1 < c->nkids ? f + 1 : 0;
        }
        k = d->toks[k + 1].next;
    }
    for (size_t f = 0; f < c->nkids && !rc; f++)
        if (!(seen[f / 64] & (UINT64_C(1) << (f % 64))))
            set_null(&s->kids[f], &c->kids[f], row);
    free(big);
    return rc;
}

static int write_list(struct nlocal *l, struct nslot *s, const struct ncol *c, idx_t row,
                      const struct json_doc *d, uint32_t ti)
{
    uint32_t n = d->toks[ti].count;
    idx_t base = s->size;
    if (base + n > s->cap) {
        idx_t want = s->cap * 2 > base + n ? s->cap * 2 : base + n;
        if (want < 64)
            want = 64;
        if (duckdb_list_vector_reserve(s->vec, want) == DuckDBError)
            return oom(l);
        /* Reserving may move the child's buffers: look them up again. */
        slot_bind(&s->kids[0], &c->kids[0], duckdb_list_vector_get_child(s->vec));
        s->cap = want;
    }
    duckdb_list_entry *e = s->data;
    e[row].offset = base;
    e[row].length = n;
    uint32_t v = ti + 1;
    for (uint32_t i = 0; i < n; i++) {
        if (write_value(l, &s->kids[0], &c->kids[0], base + i, d, v))
            return -1;
        v = d->toks[v].next;
    }
    s->size = base + n;
    if (duckdb_list_vector_set_size(s->vec, s->size) == DuckDBError)
        return oom(l);
    return 0;
}

static int write_value(struct nlocal *l, struct nslot *s, const struct ncol *c, idx_t row,
                       const struct json_doc *d, uint32_t ti)
{
    const struct json_tok *t = &d->toks[ti];
    if (t->type == JSON_NULL) {
        set_null(s, c, row);
        return 0;
    }
    switch (c->kind) {
    case NK_BIGINT: {
        int64_t v;
        if (t->type == JSON_NUMBER && (t->flags & JSON_F_INTEGER) && t->len <= 18) {
            /* The common case, without the general parser: a plain
             * literal of at most 18 characters always fits. */
            const char *p = d->src + t->off, *end = p + t->len;
            int neg = *p == '-';
            uint64_t u = 0;
            for (p += neg; p < end; p++)
                u = u * 10 + (uint64_t)(*p - '0');
            v = neg ? -(int64_t)u : (int64_t)u;
        } else if (t->type != JSON_NUMBER || !json_num_int64(d, t, &v)) {
            return bad_value(l, c, "a 64-bit integer (BIGINT)", d, ti);
        }
        ((int64_t *)s->data)[row] = v;
        return 0;
    }
    case NK_DOUBLE:
        if (t->type != JSON_NUMBER)
            return bad_value(l, c, "a number (DOUBLE)", d, ti);
        ((double *)s->data)[row] = json_num_double(d, t);
        return 0;
    case NK_BOOLEAN:
        if (t->type != JSON_TRUE && t->type != JSON_FALSE)
            return bad_value(l, c, "a boolean", d, ti);
        ((bool *)s->data)[row] = t->type == JSON_TRUE;
        return 0;
    case NK_VARCHAR:
        if (t->type == JSON_STRING) {
            if (!(t->flags & JSON_F_ESCAPED)) {
                put_text(s, row, d->src + t->off + 1, t->len - 2);
                return 0;
            }
            l->val.len = 0;
            if (tb_reserve(&l->val, t->len))
                return oom(l);
            size_t n = json_str_decode(d, t, l->val.p, t->len);
            put_text(s, row, l->val.p, n);
            return 0;
        }
        /* Another value where a string was declared (an older schema):
         * its JSON text, as DuckDB's cast would give. */
        /* fall through */
    case NK_JSON:
        if (t->type != JSON_ARRAY && t->type != JSON_OBJECT) {
            put_text(s, row, d->src + t->off, t->len);
            return 0;
        }
        l->val.len = 0;
        if (put_minified(&l->val, d, ti))
            return oom(l);
        put_text(s, row, l->val.p, l->val.len);
        return 0;
    case NK_STRUCT:
        if (t->type != JSON_OBJECT)
            return bad_value(l, c, "an object", d, ti);
        return write_struct(l, s, c, row, d, ti);
    case NK_LIST:
        if (t->type != JSON_ARRAY)
            return bad_value(l, c, "an array", d, ti);
        return write_list(l, s, c, row, d, ti);
    default:
        snprintf(l->err, sizeof l->err, "field \"%s\": no such type", c->name);
        return -1;
    }
}

/* ---- the scan ------------------------------------------------------------- */

/* Take the next unit into l->buf: 1 taken, 0 none left, -1 error. */
static int next_unit(struct nlocal *l, const struct nbind *b, struct nglobal *g)
{
    size_t u = atomic_fetch_add(&g->next, 1);
    if (u >= g->nunits)
        return 0;
    const struct nunit *un = &g->units[u];
    const char *path = b->files[un->file].path;
    if (un->len > l->cap) {
        char *p = realloc(l->buf, un->len);
        if (!p) {
            snprintf(l->err, sizeof l->err, "%s: out of memory for %llu bytes", path,
                     (unsigned long long)un->len);
            return -1;
        }
        l->buf = p;
        l->cap = un->len;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t got = 0;
    while (fd >= 0 && got < un->len) {
        ssize_t r = pread(fd, l->buf + got, un->len - got, (off_t)(un->off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (uint64_t)r;
    }
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (got < un->len) {
        snprintf(l->err, sizeof l->err, "%s: %s", path,
                 fd < 0 || saved ? strerror(saved) : "the file shrank while being read");
        return -1;
    }
    l->unit = u;
    l->pos = 0;
    l->end = un->len;
    return 1;
}

/* Line number (from 1) of byte pos of the current unit, for messages. */
static uint64_t line_of(const struct nlocal *l, const struct nbind *b,
                        const struct nglobal *g, size_t pos)
{
    const struct nunit *un = &g->units[l->unit];
    uint64_t n = 1;
    int fd = open(b->files[un->file].path, O_RDONLY | O_CLOEXEC);
    char blk[1 << 16];
    uint64_t at = 0;
    while (fd >= 0 && at < un->off) {
        size_t want = un->off - at < sizeof blk ? (size_t)(un->off - at) : sizeof blk;
        ssize_t r = pread(fd, blk, want, (off_t)at);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            n += blk[i] == '\n';
        at += (uint64_t)r;
    }
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < pos; i++)
        n += l->buf[i] == '\n';
    return n;
}

static void fail_line(duckdb_function_info info, struct nlocal *l, const struct nbind *b,
                      const struct nglobal *g, size_t pos)
{
    char msg[PATH_MAX + sizeof l->err + 64];
    snprintf(msg, sizeof msg, "weir_read_ndjson: file \"%s\", line %llu: %s",
             b->files[g->units[l->unit].file].path,
             (unsigned long long)line_of(l, b, g, pos), l->err);
    duckdb_function_set_error(info, msg);
}

/* Route the members of record object d to the projected columns of row,
 * the rest into _extra when it is projected. */
static int write_record(struct nlocal *l, const struct nbind *b, const struct nglobal *g,
                        const int *slot_of, int extra_slot, idx_t row,
                        const struct json_doc *d)
{
    const struct json_tok *root = &d->toks[0];
    uint64_t seen_small[4] = {0}, *seen = seen_small, *big = NULL;
    int rc = 0, any_extra = 0;
    if (b->ntyped > 256) {
        big = calloc((b->ntyped + 63) / 64, sizeof *big);
        if (!big)
            return oom(l);
        seen = big;
    }
    struct tbuf *xb = &l->extra;
    if (extra_slot >= 0) {
        xb->len = 0;
        if (tb_reserve(xb, 1))
            goto oom;
        xb->p[xb->len++] = '{';
    }
    uint32_t k = 1;
    size_t hint = 0;
    for (uint32_t m = 0; m < root->count && !rc; m++) {
        const struct json_tok *kt = &d->toks[k];
        const char *kp = d->src + kt->off + 1;
        size_t kn = kt->len - 2;
        if (kt->flags & JSON_F_ESCAPED) {
            kn = json_str_decode(d, kt, l->key, sizeof l->key);
            kp = l->key;
        }
        size_t f = b->ntyped;
        if (kn <= sizeof l->key) {
            for (size_t j = 0; j < b->ntyped; j++) {
                size_t x = hint + j < b->ntyped ? hint + j : hint + j - b->ntyped;
                if (b->cols[x].name_len == kn && memcmp(b->cols[x].name, kp, kn) == 0) {
                    f = x;
                    break;
                }
            }
        }
        if (f < b->ntyped) {
            seen[f / 64] |= UINT64_C(1) << (f % 64);
            hint = f + 1 < b->ntyped ? f + 1 : 0;
            if (slot_of[f] >= 0)
                rc = write_value(l, &l->slots[slot_of[f]], &b->cols[f], row, d, k + 1);
        } else if (extra_slot >= 0) {
            /* "key":value, as sent, without the whitespace. */
            if (tb_reserve(xb, kt->len + 2))
                goto oom;
            if (any_extra)
                xb->p[xb->len++] = ',';
            memcpy(xb->p + xb->len, d->src + kt->off, kt->len);
            xb->len += kt->len;
            xb->p[xb->len++] = ':';
            if (put_minified(xb, d, k + 1))
                goto oom;
            any_extra = 1;
        }
        k = d->toks[k + 1].next;
    }
    if (rc)
        goto out;
    for (size_t f = 0; f < b->ntyped; f++)
        if (slot_of[f] >= 0 && !(seen[f / 64] & (UINT64_C(1) << (f % 64))))
            set_null(&l->slots[slot_of[f]], &b->cols[f], row);
    if (extra_slot >= 0) {
        if (any_extra) {
            if (tb_reserve(xb, 1))
                goto oom;
            xb->p[xb->len++] = '}';
            put_text(&l->slots[extra_slot], row, xb->p, xb->len);
        } else {
            set_null(&l->slots[extra_slot], &b->cols[b->extra], row);
        }
    }
    goto out;
oom:
    snprintf(l->err, sizeof l->err, "out of memory");
    rc = -1;
out:
    free(big);
    return rc;
}

static void nd_function(duckdb_function_info info, duckdb_data_chunk out)
{
    const struct nbind *b = duckdb_function_get_bind_data(info);
    struct nglobal *g = duckdb_function_get_init_data(info);
    struct nlocal_box *x = duckdb_function_get_local_init_data(info);
    struct nlocal *l = &x->l;
    idx_t max = duckdb_vector_size(), row = 0;
    int slot_of_small[64], *slot_of = slot_of_small, extra_slot = -1;
    int date_slot = -1, hour_slot = -1;

    if (b->ntyped > 64) {
        slot_of = malloc(b->ntyped * sizeof *slot_of);
        if (!slot_of) {
            duckdb_function_set_error(info, "weir_read_ndjson: out of memory");
            return;
        }
    }
    for (size_t f = 0; f < b->ntyped; f++)
        slot_of[f] = -1;
    for (size_t k = 0; k < l->nproj; k++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(out, k);
        idx_t ci = l->proj[k];
        if (ci >= b->ncols) {
            /* Not a column of ours (a row id DuckDB asked for): NULL. */
            duckdb_vector_ensure_validity_writable(v);
            l->slots[k].vec = v;
            l->slots[k].valid = duckdb_vector_get_validity(v);
            continue;
        }
        slot_bind(&l->slots[k], &b->cols[ci], v);
        if (ci < b->ntyped)
            slot_of[ci] = (int)k;
        else if ((int)ci == b->extra)
            extra_slot = (int)k;
        else if (b->cols[ci].kind == NK_DATE)
            date_slot = (int)k;
        else
            hour_slot = (int)k;
    }
    while (row < max) {
        if (l->pos >= l->end) {
            int r = next_unit(l, b, g);
            if (r < 0) {
                char msg[sizeof l->err + 32];
                snprintf(msg, sizeof msg, "weir_read_ndjson: %s", l->err);
                duckdb_function_set_error(info, msg);
                row = 0;
                goto out;
            }
            if (r == 0)
                break;
        }
        const char *p = l->buf + l->pos;
        const char *nl = memchr(p, '\n', l->end - l->pos);
        size_t n = nl ? (size_t)(nl - p) : l->end - l->pos;
        size_t at = l->pos;
        l->pos += n + (nl ? 1 : 0);
        if (b->max_line && n > b->max_line) {
            snprintf(l->err, sizeof l->err, "the line is longer than %llu bytes",
                     (unsigned long long)b->max_line);
            fail_line(info, l, b, g, at);
            row = 0;
            goto out;
        }
        enum json_error je = json_scan(&l->doc, p, n);
        if (je == JSON_ERR_EMPTY)
            continue; /* blank lines are not records */
        if (je != JSON_OK || l->doc.toks[0].type != JSON_OBJECT) {
            if (je != JSON_OK)
                json_describe_error(&l->doc, l->err, sizeof l->err);
            else
                snprintf(l->err, sizeof l->err, "not a JSON object");
            fail_line(info, l, b, g, at);
            row = 0;
            goto out;
        }
        if (write_record(l, b, g, slot_of, extra_slot, row, &l->doc)) {
            fail_line(info, l, b, g, at);
            row = 0;
            goto out;
        }
        const struct nfile *f = &b->files[g->units[l->unit].file];
        if (date_slot >= 0)
            ((int32_t *)l->slots[date_slot].data)[row] = f->date;
        if (hour_slot >= 0)
            ((int32_t *)l->slots[hour_slot].data)[row] = f->hour;
        for (size_t k = 0; k < l->nproj; k++)
            if (l->proj[k] >= b->ncols)
                duckdb_validity_set_row_invalid(l->slots[k].valid, row);
        row++;
    }
out:
    duckdb_data_chunk_set_size(out, row);
    if (slot_of != slot_of_small)
        free(slot_of);
}

int sql_ndjson_register(duckdb_connection con, struct weir_errmsg *e)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_logical_type vc = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type list = duckdb_create_list_type(vc);
    duckdb_logical_type big = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    int rc = 0;

    duckdb_table_function_set_name(f, "weir_read_ndjson");
    duckdb_table_function_add_parameter(f, list);
    duckdb_table_function_add_named_parameter(f, "columns", vc);
    duckdb_table_function_add_named_parameter(f, "extra", vc);
    duckdb_table_function_add_named_parameter(f, "hive", vc);
    duckdb_table_function_add_named_parameter(f, "max_line", big);
    duckdb_table_function_set_bind(f, nd_bind);
    duckdb_table_function_set_init(f, nd_init);
    duckdb_table_function_set_local_init(f, nd_local_init);
    duckdb_table_function_set_function(f, nd_function);
    duckdb_table_function_supports_projection_pushdown(f, true);
    if (duckdb_register_table_function(con, f) == DuckDBError)
        rc = errmsg_set(e, WEIR_ESQL, "DuckDB: cannot register weir_read_ndjson");
    duckdb_destroy_table_function(&f);
    duckdb_destroy_logical_type(&vc);
    duckdb_destroy_logical_type(&list);
    duckdb_destroy_logical_type(&big);
    return rc;
}
