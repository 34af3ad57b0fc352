/*
 * xform.c - the transform runner; see xform.h and docs/kafka.md.
 *
 * The batch reaches the SQL as a table function, weir_batch(), whose
 * extra info is the struct xform: bind declares the columns of the batch
 * being run (names from its Arrow schema, types from the DataChunks
 * DuckDB made of its arrays), and each scan hands out those chunks'
 * vectors by reference. A CTE named batch casts them to the lake types of
 * the input pipeline, so the user's SQL sees P's columns whatever the
 * Arrow form was (large_utf8 for JSON, Parquet's own struct layout).
 *
 * Why a table function and not a temporary table: no copy of the batch,
 * and no DDL per batch. Why not duckdb_arrow_scan: it is deprecated in
 * 1.4 and scans a stream once, while a transform may read batch twice (a
 * self-join, a subquery over the batch).
 */
#include "sql/xform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "sql/sql_priv.h"
#include "store/lake.h"

struct xform {
    const struct lake_table *in;
    char *sql;                 /* the user's SELECT, trailing ';' removed */
    char *what;
    struct sql_db *db;
    /* the output, learnt on the empty batch */
    struct xform_col *cols;
    size_t ncols;
    struct buf schema;         /* D's JSON Schema */
    int extra;                 /* the output has a JSON _extra column */
    struct buf select;         /* the outer SELECT producing JSON lines */
    /* the batch being run (weir_batch's state) */
    duckdb_data_chunk *chunks;
    size_t nchunks;
    duckdb_logical_type *types;
    char **names;
    size_t nnames;
};

/* ---- weir_batch() --------------------------------------------------------- */

static void wb_bind(duckdb_bind_info info)
{
    struct xform *x = duckdb_bind_get_extra_info(info);
    if (!x->types) {
        duckdb_bind_set_error(info, "weir_batch: no batch is being run");
        return;
    }
    for (size_t i = 0; i < x->nnames; i++)
        duckdb_bind_add_result_column(info, x->names[i], x->types[i]);
}

static void wb_init(duckdb_init_info info)
{
    size_t *pos = malloc(sizeof *pos);
    if (!pos) {
        duckdb_init_set_error(info, "out of memory");
        return;
    }
    *pos = 0;
    duckdb_init_set_init_data(info, pos, free);
    duckdb_init_set_max_threads(info, 1);
}

static void wb_function(duckdb_function_info info, duckdb_data_chunk out)
{
    struct xform *x = duckdb_function_get_extra_info(info);
    size_t *pos = duckdb_function_get_init_data(info);
    if (*pos >= x->nchunks) {
        duckdb_data_chunk_set_size(out, 0);
        return;
    }
    duckdb_data_chunk c = x->chunks[(*pos)++];
    for (size_t i = 0; i < x->nnames; i++)
        duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(out, i),
                                       duckdb_data_chunk_get_vector(c, i));
    duckdb_data_chunk_set_size(out, duckdb_data_chunk_get_size(c));
}

static int register_batch(struct xform *x, struct weir_errmsg *e)
{
    duckdb_table_function f = duckdb_create_table_function();
    duckdb_table_function_set_name(f, "weir_batch");
    duckdb_table_function_set_extra_info(f, x, NULL);
    duckdb_table_function_set_bind(f, wb_bind);
    duckdb_table_function_set_init(f, wb_init);
    duckdb_table_function_set_function(f, wb_function);
    int rc = 0;
    if (duckdb_register_table_function(sql_db_connection(x->db), f) == DuckDBError)
        rc = errmsg_set(e, WEIR_ESQL, "DuckDB: cannot register weir_batch");
    duckdb_destroy_table_function(&f);
    return rc;
}

/* Drop the batch being run. */
static void batch_clear(struct xform *x)
{
    for (size_t i = 0; i < x->nchunks; i++)
        duckdb_destroy_data_chunk(&x->chunks[i]);
    free(x->chunks);
    for (size_t i = 0; x->types && i < x->nnames; i++)
        duckdb_destroy_logical_type(&x->types[i]);
    free(x->types);
    for (size_t i = 0; x->names && i < x->nnames; i++)
        free(x->names[i]);
    free(x->names);
    x->chunks = NULL;
    x->types = NULL;
    x->names = NULL;
    x->nchunks = x->nnames = 0;
}

static int duck_error(struct weir_errmsg *e, duckdb_error_data err, const char *what,
                      const char *step)
{
    int rc = errmsg_set(e, WEIR_ESQL, "%s: %s: %s", what, step,
                        duckdb_error_data_message(err));
    duckdb_destroy_error_data(&err);
    return rc;
}

/* Make batch the one weir_batch() returns; its arrays move into DuckDB. */
static int batch_set(struct xform *x, struct arrow_batch *b, struct weir_errmsg *e)
{
    duckdb_connection con = sql_db_connection(x->db);
    duckdb_arrow_converted_schema conv = NULL;
    int rc = 0;
    batch_clear(x);
    duckdb_error_data err = duckdb_schema_from_arrow(con, &b->schema, &conv);
    if (err && duckdb_error_data_has_error(err)) {
        rc = duck_error(e, err, x->what, "reading the batch's Arrow schema");
        goto out;
    }
    if (err)
        duckdb_destroy_error_data(&err);
    size_t n = (size_t)b->schema.n_children;
    if (!(x->chunks = calloc(b->narrays ? b->narrays : 1, sizeof *x->chunks)) ||
        !(x->names = calloc(n ? n : 1, sizeof *x->names)) ||
        !(x->types = calloc(n ? n : 1, sizeof *x->types))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    x->nnames = n;
    for (size_t i = 0; i < n; i++)
        if (!(x->names[i] = strdup(b->schema.children[i]->name))) {
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
    for (size_t i = 0; i < b->narrays; i++) {
        if (!b->arrays[i].release)
            continue;
        duckdb_data_chunk ch = NULL;
        err = duckdb_data_chunk_from_arrow(con, &b->arrays[i], conv, &ch);
        if (err && duckdb_error_data_has_error(err)) {
            rc = duck_error(e, err, x->what, "reading the batch's Arrow arrays");
            goto out;
        }
        if (err)
            duckdb_destroy_error_data(&err);
        /* DuckDB took the array's buffers (the chunk holds them now). */
        b->arrays[i].release = NULL;
        x->chunks[x->nchunks++] = ch;
    }
    if (x->nchunks == 0) {
        rc = errmsg_set(e, WEIR_EINVAL, "%s: a batch without its (empty) array", x->what);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        x->types[i] = duckdb_vector_get_column_type(
            duckdb_data_chunk_get_vector(x->chunks[0], i));
out:
    if (conv)
        duckdb_destroy_arrow_converted_schema(&conv);
    if (rc)
        batch_clear(x);
    return rc;
}

/* ---- SQL text ---------------------------------------------------------------- */

static int batch_has(const struct xform *x, const char *name)
{
    for (size_t i = 0; i < x->nnames; i++)
        if (strcmp(x->names[i], name) == 0)
            return 1;
    return 0;
}

static int cast_col(struct buf *b, const struct xform *x, const char *name,
                    const char *type, int *first)
{
    int rc = buf_puts(b, *first ? "" : ", ");
    *first = 0;
    if (batch_has(x, name)) {
        rc = rc ? rc : buf_puts(b, "CAST(");
        rc = rc ? rc : sql_quote_ident(b, name);
    } else {
        rc = rc ? rc : buf_puts(b, "CAST(NULL");
    }
    rc = rc ? rc : buf_appendf(b, " AS %s) AS ", type);
    return rc ? rc : sql_quote_ident(b, name);
}

/* "WITH batch AS (SELECT <P's lake columns, cast> FROM weir_batch()) " */
static int put_batch_cte(struct buf *b, const struct xform *x)
{
    const struct lake_table *t = x->in;
    int first = 1;
    int rc = buf_puts(b, "WITH batch AS (SELECT ");
    for (size_t i = 0; i < t->ncols && !rc; i++)
        rc = cast_col(b, x, t->cols[i].name, t->cols[i].type, &first);
    if (!rc && t->has_extra)
        rc = cast_col(b, x, LAKE_EXTRA_COLUMN, "JSON", &first);
    rc = rc ? rc : cast_col(b, x, "date", "DATE", &first);
    if (!rc && t->grain == PART_HOUR)
        rc = cast_col(b, x, "hour", "INTEGER", &first);
    return rc ? rc : buf_puts(b, " FROM weir_batch()) ");
}

static int skipped_col(const char *name)
{
    return strcmp(name, "date") == 0 || strcmp(name, "hour") == 0;
}

/* The outer SELECT: the row's JSON (without date, hour, _extra), then
 * _extra as text when the output has it. */
static int build_select(struct xform *x)
{
    struct buf *b = &x->select;
    buf_reset(b);
    int rc = buf_puts(b, "SELECT CAST(to_json(struct_pack(");
    int first = 1;
    for (size_t i = 0; i < x->ncols && !rc; i++) {
        const char *n = x->cols[i].name;
        if (skipped_col(n) || (x->extra && strcmp(n, LAKE_EXTRA_COLUMN) == 0))
            continue;
        rc = buf_puts(b, first ? "" : ", ");
        first = 0;
        rc = rc ? rc : sql_quote_ident(b, n);
        rc = rc ? rc : buf_puts(b, " := _weir_out.");
        rc = rc ? rc : sql_quote_ident(b, n);
    }
    rc = rc ? rc : buf_puts(b, ")) AS VARCHAR)");
    if (!rc && x->extra) {
        rc = buf_puts(b, ", CAST(_weir_out.");
        rc = rc ? rc : sql_quote_ident(b, LAKE_EXTRA_COLUMN);
        rc = rc ? rc : buf_puts(b, " AS VARCHAR)");
    }
    rc = rc ? rc : buf_puts(b, " FROM (");
    rc = rc ? rc : buf_puts(b, x->sql);
    return rc ? rc : buf_puts(b, "\n) AS _weir_out");
}

/* ---- D's schema from the output types ----------------------------------------- */

static int put_type_schema(struct buf *b, duckdb_logical_type lt, int depth)
{
    if (depth > 64)
        return buf_puts(b, "{}");
    duckdb_type id = duckdb_get_type_id(lt);
    char *alias = duckdb_logical_type_get_alias(lt);
    int is_json = alias && strcmp(alias, "JSON") == 0;
    if (alias)
        duckdb_free(alias);
    if (is_json)
        return buf_puts(b, "{}");
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
        return buf_puts(b, "{\"type\":[\"boolean\",\"null\"]}");
    case DUCKDB_TYPE_TINYINT: case DUCKDB_TYPE_SMALLINT: case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT: case DUCKDB_TYPE_UTINYINT: case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
        return buf_puts(b, "{\"type\":[\"integer\",\"null\"]}");
    case DUCKDB_TYPE_UBIGINT: case DUCKDB_TYPE_HUGEINT: case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_FLOAT: case DUCKDB_TYPE_DOUBLE: case DUCKDB_TYPE_DECIMAL:
    case DUCKDB_TYPE_BIGNUM:
        /* Past int64 or with a fraction: the lake's DOUBLE. */
        return buf_puts(b, "{\"type\":[\"number\",\"null\"]}");
    case DUCKDB_TYPE_VARCHAR: case DUCKDB_TYPE_DATE: case DUCKDB_TYPE_TIME:
    case DUCKDB_TYPE_TIMESTAMP: case DUCKDB_TYPE_TIMESTAMP_S: case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: case DUCKDB_TYPE_TIMESTAMP_TZ: case DUCKDB_TYPE_TIME_TZ:
    case DUCKDB_TYPE_TIME_NS: case DUCKDB_TYPE_INTERVAL: case DUCKDB_TYPE_UUID:
    case DUCKDB_TYPE_ENUM: case DUCKDB_TYPE_BLOB: case DUCKDB_TYPE_BIT:
        /* to_json writes them as strings. */
        return buf_puts(b, "{\"type\":[\"string\",\"null\"]}");
    case DUCKDB_TYPE_LIST: case DUCKDB_TYPE_ARRAY: {
        duckdb_logical_type ct = id == DUCKDB_TYPE_LIST ? duckdb_list_type_child_type(lt)
                                                        : duckdb_array_type_child_type(lt);
        int rc = buf_puts(b, "{\"type\":[\"array\",\"null\"],\"items\":");
        rc = rc ? rc : put_type_schema(b, ct, depth + 1);
        duckdb_destroy_logical_type(&ct);
        return rc ? rc : buf_putc(b, '}');
    }
    case DUCKDB_TYPE_STRUCT: {
        idx_t n = duckdb_struct_type_child_count(lt);
        int rc = buf_puts(b, "{\"type\":[\"object\",\"null\"],\"properties\":{");
        for (idx_t i = 0; i < n && !rc; i++) {
            char *name = duckdb_struct_type_child_name(lt, i);
            duckdb_logical_type ct = duckdb_struct_type_child_type(lt, i);
            rc = buf_puts(b, i ? "," : "");
            rc = rc ? rc : buf_put_json_string(b, name, strlen(name));
            rc = rc ? rc : buf_putc(b, ':');
            rc = rc ? rc : put_type_schema(b, ct, depth + 1);
            duckdb_free(name);
            duckdb_destroy_logical_type(&ct);
        }
        return rc ? rc : buf_puts(b, "},\"additionalProperties\":false}");
    }
    case DUCKDB_TYPE_MAP:
        return buf_puts(b, "{\"type\":[\"object\",\"null\"]}");
    default:
        return buf_puts(b, "{}");
    }
}

static int is_numeric(duckdb_type id)
{
    switch (id) {
    case DUCKDB_TYPE_TINYINT: case DUCKDB_TYPE_SMALLINT: case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT: case DUCKDB_TYPE_UTINYINT: case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER: case DUCKDB_TYPE_UBIGINT: case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT: case DUCKDB_TYPE_FLOAT: case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_DECIMAL:
        return 1;
    default:
        return 0;
    }
}

/* Learn the output on the batch now set (the empty one): columns, types,
 * D's schema; check the time field. */
static int learn_output(struct xform *x, const char *time_field, int time_text,
                        struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(WEIR_XFORM_SQL_MAX * 2 + (1u << 20));
    duckdb_result res;
    int have_res = 0, rc;
    rc = put_batch_cte(&q, x);
    rc = rc ? rc : buf_puts(&q, "SELECT * FROM (");
    rc = rc ? rc : buf_puts(&q, x->sql);
    rc = rc ? rc : buf_puts(&q, "\n) AS _weir_out");
    if (rc) {
        rc = errmsg_set(e, rc, "%s: the SQL is too large", x->what);
        goto out;
    }
    have_res = 1;
    if (duckdb_query(sql_db_connection(x->db), q.data, &res) == DuckDBError) {
        rc = errmsg_set(e, WEIR_ESQL, "%s: %s", x->what, duckdb_result_error(&res));
        goto out;
    }
    size_t n = (size_t)duckdb_column_count(&res);
    if (!(x->cols = calloc(n ? n : 1, sizeof *x->cols))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    size_t tlen = strcspn(time_field, ".");
    int time_found = 0, kept = 0;
    rc = buf_puts(&x->schema, "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                              "\"type\":\"object\",\"properties\":{");
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name = duckdb_column_name(&res, i);
        duckdb_logical_type lt = duckdb_column_logical_type(&res, i);
        duckdb_type id = duckdb_get_type_id(lt);
        char *alias = duckdb_logical_type_get_alias(lt);
        int is_json = alias && strcmp(alias, "JSON") == 0;
        if (alias)
            duckdb_free(alias);
        for (size_t j = 0; j < i; j++)
            if (strcmp(x->cols[j].name, name) == 0) {
                rc = errmsg_set(e, WEIR_ECONFIG, "%s: two output columns are named "
                                "\"%s\": name them apart (AS ...)", x->what, name);
                break;
            }
        if (!rc && !(x->cols[i].name = strdup(name)))
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        x->ncols = i + 1;
        if (!rc && strcmp(name, LAKE_EXTRA_COLUMN) == 0 && is_json) {
            x->extra = 1;
        } else if (!rc && !skipped_col(name)) {
            rc = buf_puts(&x->schema, kept++ ? "," : "");
            rc = rc ? rc : buf_put_json_string(&x->schema, name, strlen(name));
            rc = rc ? rc : buf_putc(&x->schema, ':');
            rc = rc ? rc : put_type_schema(&x->schema, lt, 0);
            if (!rc && strlen(name) == tlen && strncmp(name, time_field, tlen) == 0) {
                time_found = 1;
                int nested = time_field[tlen] == '.';
                int ok = nested ? (id == DUCKDB_TYPE_STRUCT || is_json)
                         : time_text ? (id == DUCKDB_TYPE_VARCHAR && !is_json)
                                     : is_numeric(id);
                if (!ok)
                    rc = errmsg_set(e, WEIR_ECONFIG, "%s: the event-time field \"%s\" "
                                    "comes out as a column of another type than its "
                                    "time_unit reads (%s): keep it as the input has it%s",
                                    x->what, time_field,
                                    nested ? "an object" : time_text ? "a string" : "a number",
                                    time_text ? ", or format it: strftime(ts, "
                                    "'%Y-%m-%dT%H:%M:%S.%fZ')" : "");
            }
        }
        duckdb_destroy_logical_type(&lt);
    }
    rc = rc ? rc : buf_puts(&x->schema, "}");
    if (!rc && !x->extra)
        rc = buf_puts(&x->schema, ",\"additionalProperties\":false");
    rc = rc ? rc : buf_puts(&x->schema, "}");
    if (!rc && !time_found)
        rc = errmsg_set(e, WEIR_ECONFIG, "%s: the output has no column \"%.*s\", the "
                        "event-time field (time_field) the derived dataset is "
                        "partitioned by: select it", x->what, (int)tlen, time_field);
    if (rc && !e->code)
        errmsg_set(e, rc, "%s: %s", x->what, weir_strerror(rc));
    if (rc)
        goto out;
    /* DuckDB's type texts, for messages and `weir status`. */
    duckdb_destroy_result(&res);
    have_res = 0;
    struct sql_result *d = NULL;
    buf_reset(&q);
    rc = put_batch_cte(&q, x);
    rc = rc ? rc : buf_puts(&q, "SELECT column_name, column_type FROM (DESCRIBE (");
    rc = rc ? rc : buf_puts(&q, x->sql);
    rc = rc ? rc : buf_puts(&q, "\n))");
    if (!rc && sql_query(x->db, q.data, &d, e) == 0) {
        size_t i = 0;
        while (i < x->ncols && sql_result_next(d, e) == 1) {
            struct buf t = BUF_INIT(1 << 20);
            if (sql_result_text(d, 1, &t) == 0)
                x->cols[i].type = buf_detach(&t, NULL);
            buf_release(&t);
            i++;
        }
    }
    sql_result_free(d);
    memset(e, 0, sizeof *e);
    rc = 0;
    for (size_t i = 0; i < x->ncols; i++)
        if (!x->cols[i].type && !(x->cols[i].type = strdup("?")))
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
out:
    if (have_res)
        duckdb_destroy_result(&res);
    buf_release(&q);
    return rc;
}

/* ---- the transform ---------------------------------------------------------------- */

int xform_read_sql(const char *path, char **out, struct weir_errmsg *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errmsg_set(e, weir_from_errno(errno), "%s: %s", path, strerror(errno));
    struct buf b = BUF_INIT(WEIR_XFORM_SQL_MAX);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = WEIR_EIO;
    fclose(f);
    if (rc) {
        buf_release(&b);
        return errmsg_set(e, rc, "%s: %s", path,
                          rc == WEIR_ELIMIT ? "larger than the limit for a transform's SQL"
                                            : weir_strerror(rc));
    }
    *out = buf_detach(&b, NULL);
    buf_release(&b);
    return *out ? 0 : errmsg_set(e, WEIR_ENOMEM, "out of memory");
}

void xform_free(struct xform *x)
{
    if (!x)
        return;
    batch_clear(x);
    sql_close(x->db);
    for (size_t i = 0; i < x->ncols; i++) {
        free(x->cols[i].name);
        free(x->cols[i].type);
    }
    free(x->cols);
    buf_release(&x->schema);
    buf_release(&x->select);
    free(x->sql);
    free(x->what);
    free(x);
}

int xform_new(const struct lake_table *in, const char *sql, const char *time_field,
              int time_text, const char *what, struct xform **out,
              struct weir_errmsg *e)
{
    struct xform *x = calloc(1, sizeof *x);
    struct arrow_builder *ab = NULL;
    struct arrow_batch empty = {0};
    int rc;
    *out = NULL;
    if (!x)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    x->in = in;
    buf_init(&x->schema, 16u << 20);
    buf_init(&x->select, WEIR_XFORM_SQL_MAX * 2 + (1u << 20));
    size_t n = strlen(sql);
    while (n && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\n' ||
                 sql[n - 1] == '\t' || sql[n - 1] == '\r'))
        n--;
    if (!(x->what = strdup(what)) || !(x->sql = strndup(sql, n))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    if (n == 0) {
        rc = errmsg_set(e, WEIR_ECONFIG, "%s: empty: write a SELECT ... FROM batch", what);
        goto fail;
    }
    struct sql_opts so = {.memory_limit = WEIR_XFORM_MEMORY, .threads = 1};
    if ((rc = sql_open(&so, &x->db, e)) || (rc = register_batch(x, e)))
        goto fail;
    /* The empty batch: the types without a record. */
    if ((rc = arrow_builder_new(in, 0, &ab, e)) ||
        (rc = arrow_builder_finish(ab, &empty, e)) || (rc = batch_set(x, &empty, e)) ||
        (rc = learn_output(x, time_field, time_text, e)))
        goto fail;
    if ((rc = build_select(x))) {
        rc = errmsg_set(e, rc, "%s: the SQL is too large", what);
        goto fail;
    }
    batch_clear(x);
    arrow_batch_release(&empty);
    arrow_builder_free(ab);
    *out = x;
    return 0;
fail:
    arrow_batch_release(&empty);
    arrow_builder_free(ab);
    xform_free(x);
    return rc;
}

const struct xform_col *xform_columns(const struct xform *x, size_t *n)
{
    *n = x->ncols;
    return x->cols;
}

int xform_schema(const struct xform *x, struct buf *out)
{
    return buf_append(out, x->schema.data, x->schema.len);
}

/* The record of a result row: the JSON of the columns, with _extra's
 * members spread in. */
static int row_text(struct xform *x, struct sql_result *r, struct buf *line,
                    struct buf *extra)
{
    buf_reset(line);
    int rc = sql_result_text(r, 0, line);
    if (rc || !x->extra || sql_result_is_null(r, 1))
        return rc;
    buf_reset(extra);
    if ((rc = sql_result_text(r, 1, extra)))
        return rc;
    if (extra->len > 2 && extra->data[0] == '{' && line->len >= 2) {
        buf_truncate(line, line->len - 1);
        rc = buf_putc(line, ',');
        rc = rc ? rc : buf_append(line, extra->data + 1, extra->len - 1);
    } else if (extra->len > 0 && extra->data[0] != '{' && line->len >= 2) {
        /* Not an object: kept whole under its name (D's _extra has it). */
        buf_truncate(line, line->len - 1);
        rc = buf_puts(line, ",\"_extra\":");
        rc = rc ? rc : buf_append(line, extra->data, extra->len);
        rc = rc ? rc : buf_putc(line, '}');
    }
    return rc;
}

int xform_run(struct xform *x, struct arrow_batch *batch, xform_row_fn *fn, void *ctx,
              uint64_t *rows, struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(WEIR_XFORM_SQL_MAX * 4 + (1u << 20));
    struct buf line = BUF_INIT((size_t)WEIR_XFORM_ROW_MAX);
    struct buf extra = BUF_INIT((size_t)WEIR_XFORM_ROW_MAX);
    struct sql_result *r = NULL;
    uint64_t n = 0;
    int rc;
    if ((rc = batch_set(x, batch, e)))
        goto out;
    rc = put_batch_cte(&q, x);
    rc = rc ? rc : buf_append(&q, x->select.data, x->select.len);
    if (rc) {
        rc = errmsg_set(e, rc, "%s: the SQL is too large", x->what);
        goto out;
    }
    rc = sql_query(x->db, q.data, &r, e);
    while (rc == 0 && (rc = sql_result_next(r, e)) == 1) {
        if ((rc = row_text(x, r, &line, &extra))) {
            rc = errmsg_set(e, rc, "%s: an output row is larger than %llu bytes", x->what,
                            (unsigned long long)WEIR_XFORM_ROW_MAX);
            goto out;
        }
        n++;
        if ((rc = fn(ctx, line.data, line.len)))
            goto out;
    }
    if (rc < 0) {
        char msg[sizeof e->text];
        snprintf(msg, sizeof msg, "%s", e->text);
        errmsg_set(e, rc, "%s: %s", x->what, msg);
    }
out:
    sql_result_free(r);
    batch_clear(x);
    for (size_t i = 0; i < batch->narrays; i++)
        arrow_array_release(&batch->arrays[i]);
    buf_release(&q);
    buf_release(&line);
    buf_release(&extra);
    if (rows)
        *rows = n;
    return rc < 0 ? rc : 0;
}

/* ---- from another database: replay ------------------------------------------ */

/* Run the arrays collected in b (schema borrowed from *schema). */
static int run_arrays(struct xform *x, struct ArrowSchema *schema, struct arrow_batch *b,
                      xform_row_fn *fn, void *ctx, uint64_t *out, struct weir_errmsg *e)
{
    uint64_t n = 0;
    b->schema = *schema;
    int rc = xform_run(x, b, fn, ctx, &n, e);
    *out += n;
    b->schema.release = NULL; /* the caller's, still */
    for (size_t i = 0; i < b->narrays; i++)
        arrow_array_release(&b->arrays[i]);
    b->narrays = 0;
    b->rows = 0;
    return rc;
}

int xform_run_select(struct xform *x, struct sql_db *db, const char *select,
                     uint64_t batch_rows, xform_row_fn *fn, void *ctx,
                     uint64_t *rows_in, uint64_t *rows_out, struct weir_errmsg *e)
{
    duckdb_connection con = sql_db_connection(db);
    duckdb_result res;
    duckdb_arrow_options opts = NULL;
    struct ArrowSchema schema = {0};
    struct arrow_batch b = {0};
    duckdb_logical_type *types = NULL;
    const char **names = NULL;
    size_t cap = 0;
    uint64_t in = 0, out = 0;
    int rc = 0, have_res = 0;
    /* Streamed: a partition is read a batch at a time, never whole. */
    duckdb_prepared_statement ps = NULL;
    duckdb_pending_result pend = NULL;
    if (duckdb_prepare(con, select, &ps) == DuckDBError) {
        const char *m = duckdb_prepare_error(ps);
        rc = errmsg_set(e, WEIR_ESQL, "%s", m ? m : "DuckDB: cannot prepare");
    } else if (duckdb_pending_prepared_streaming(ps, &pend) == DuckDBError) {
        const char *m = duckdb_pending_error(pend);
        rc = errmsg_set(e, WEIR_ESQL, "%s", m ? m : "DuckDB: cannot execute");
    } else if (duckdb_execute_pending(pend, &res) == DuckDBError) {
        rc = errmsg_set(e, WEIR_ESQL, "%s", duckdb_result_error(&res));
        duckdb_destroy_result(&res);
    } else {
        have_res = 1;
    }
    if (pend)
        duckdb_destroy_pending(&pend);
    duckdb_destroy_prepare(&ps);
    if (rc)
        goto out;
    idx_t nc = duckdb_column_count(&res);
    duckdb_connection_get_arrow_options(con, &opts);
    types = calloc(nc ? nc : 1, sizeof *types);
    names = calloc(nc ? nc : 1, sizeof *names);
    if (!types || !names) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    for (idx_t i = 0; i < nc; i++) {
        types[i] = duckdb_column_logical_type(&res, i);
        names[i] = duckdb_column_name(&res, i);
    }
    duckdb_error_data err = duckdb_to_arrow_schema(opts, types, names, nc, &schema);
    if (err && duckdb_error_data_has_error(err)) {
        rc = duck_error(e, err, x->what, "the Arrow schema of the rows read");
        goto out;
    }
    if (err)
        duckdb_destroy_error_data(&err);
    for (;;) {
        duckdb_data_chunk ch = duckdb_fetch_chunk(res);
        if (!ch)
            break;
        idx_t rows = duckdb_data_chunk_get_size(ch);
        if (rows == 0) {
            duckdb_destroy_data_chunk(&ch);
            break;
        }
        if (b.narrays == cap) {
            size_t nc2 = cap ? cap * 2 : 16;
            struct ArrowArray *v = realloc(b.arrays, nc2 * sizeof *v);
            if (!v) {
                duckdb_destroy_data_chunk(&ch);
                rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
                goto out;
            }
            b.arrays = v;
            cap = nc2;
        }
        struct ArrowArray *a = &b.arrays[b.narrays];
        memset(a, 0, sizeof *a);
        err = duckdb_data_chunk_to_arrow(opts, ch, a);
        duckdb_destroy_data_chunk(&ch);
        if (err && duckdb_error_data_has_error(err)) {
            rc = duck_error(e, err, x->what, "the rows read as Arrow");
            goto out;
        }
        if (err)
            duckdb_destroy_error_data(&err);
        b.narrays++;
        b.rows += rows;
        in += rows;
        if (b.rows >= batch_rows &&
            (rc = run_arrays(x, &schema, &b, fn, ctx, &out, e)) != 0)
            goto out;
    }
    /* A failure while reading surfaces as the end of the chunks. */
    const char *why = duckdb_result_error(&res);
    if (why && *why) {
        rc = errmsg_set(e, WEIR_ESQL, "%s", why);
        goto out;
    }
    if (b.narrays)
        rc = run_arrays(x, &schema, &b, fn, ctx, &out, e);
out:
    for (size_t i = 0; i < b.narrays; i++)
        arrow_array_release(&b.arrays[i]);
    free(b.arrays);
    arrow_schema_release(&schema);
    for (idx_t i = 0; types && i < (have_res ? duckdb_column_count(&res) : 0); i++)
        duckdb_destroy_logical_type(&types[i]);
    free(types);
    free(names);
    if (opts)
        duckdb_destroy_arrow_options(&opts);
    if (have_res)
        duckdb_destroy_result(&res);
    if (rows_in)
        *rows_in = in;
    if (rows_out)
        *rows_out = out;
    return rc;
}
