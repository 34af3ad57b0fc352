/*
 * sql.c - DuckDB through its C API; see sql.h.
 *
 * Values are read straight from DuckDB's vectors (the data chunk API) and
 * rendered here: the deprecated per-value accessors (duckdb_value_varchar)
 * re-look-up the chunk for every cell and cannot render nested types. Each
 * result keeps a small tree of its column types (struct ctype) built once,
 * so that rendering a cell never allocates a DuckDB logical type.
 *
 * Results are streamed (duckdb_pending_prepared_streaming): `weir query`
 * over a year of data printed as CSV must not hold it in memory. The
 * streaming entry point is marked deprecated in the 1.4 header but is the
 * only streaming one the C API has; weir pins DuckDB 1.4 (DESIGN.md).
 */
#include "sql/sql.h"

#include <duckdb.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wtime.h"
#include "sql/ndjson.h"
#include "sql/sql_priv.h"

const char *sql_engine_version(void)
{
    return duckdb_library_version();
}

struct sql_db {
    duckdb_database db;
    duckdb_connection con;
};

/* The type of a column, or of a child inside a nested column. */
struct ctype {
    duckdb_type id;
    int is_json;              /* VARCHAR with the JSON alias */
    uint8_t scale;            /* DECIMAL */
    duckdb_type internal;     /* DECIMAL and ENUM storage type */
    char **dict;              /* ENUM values */
    uint32_t ndict;
    idx_t array_size;         /* ARRAY */
    struct ctype *child;      /* LIST, ARRAY, MAP (the entry struct): 1;
                                 STRUCT, UNION: nchild */
    char **names;             /* STRUCT, UNION member names */
    size_t nchild;
};

struct sql_result {
    duckdb_result res;
    size_t ncols;
    char **names;
    struct ctype *types;
    duckdb_data_chunk chunk;
    duckdb_vector *vecs;
    idx_t chunk_rows, row;
    int started, done;
};

/* ---- errors ------------------------------------------------------------ */

static int code_of(duckdb_error_type t, const char *msg)
{
    switch (t) {
    case DUCKDB_ERROR_OUT_OF_MEMORY:
        return WEIR_ENOMEM;
    case DUCKDB_ERROR_IO:
        if (msg && strstr(msg, "No space left"))
            return WEIR_ENOSPC;
        return WEIR_EIO;
    default:
        return WEIR_ESQL;
    }
}

static int fail_result(duckdb_result *res, struct weir_errmsg *e)
{
    const char *msg = duckdb_result_error(res);
    return errmsg_set(e, code_of(duckdb_result_error_type(res), msg), "%s",
                      msg ? msg : "DuckDB error");
}

/* ---- open, close, exec --------------------------------------------------- */

static int set_cfg(duckdb_config cfg, const char *k, const char *v,
                   struct weir_errmsg *e)
{
    if (duckdb_set_config(cfg, k, v) == DuckDBError)
        return errmsg_set(e, WEIR_EINVAL, "DuckDB setting %s = '%s' refused", k, v);
    return 0;
}

int sql_open(const struct sql_opts *o, struct sql_db **out,
             struct weir_errmsg *e)
{
    static const struct sql_opts none;
    struct sql_db *db = NULL;
    duckdb_config cfg = NULL;
    char *why = NULL;
    char num[32];
    int rc;

    *out = NULL;
    if (!o)
        o = &none;
    if (duckdb_create_config(&cfg) == DuckDBError)
        return errmsg_set(e, WEIR_ENOMEM, "DuckDB: cannot create a config");
    /* Extensions come built in; never reach for the network. */
    if ((rc = set_cfg(cfg, "autoinstall_known_extensions", "false", e)) ||
        (rc = set_cfg(cfg, "autoload_known_extensions", "false", e)))
        goto fail;
    if (o->memory_limit && (rc = set_cfg(cfg, "memory_limit", o->memory_limit, e)))
        goto fail;
    if (o->threads > 0) {
        snprintf(num, sizeof num, "%d", o->threads);
        if ((rc = set_cfg(cfg, "threads", num, e)))
            goto fail;
    }
    if (o->temp_directory &&
        (rc = set_cfg(cfg, "temp_directory", o->temp_directory, e)))
        goto fail;
    db = calloc(1, sizeof *db);
    if (!db) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    if (duckdb_open_ext(NULL, &db->db, cfg, &why) == DuckDBError) {
        rc = errmsg_set(e, WEIR_ESQL, "DuckDB: cannot open a database: %s",
                        why ? why : "unknown error");
        goto fail;
    }
    if (duckdb_connect(db->db, &db->con) == DuckDBError) {
        rc = errmsg_set(e, WEIR_ESQL, "DuckDB: cannot connect");
        goto fail;
    }
    duckdb_destroy_config(&cfg);
    /* ICU is built in: without this a TIMESTAMPTZ would print in the
     * machine's zone, and the same query would differ between hosts. */
    if ((rc = sql_exec(db, "SET TimeZone = 'UTC'", e)))
        goto fail;
    if ((rc = sql_ndjson_register(db->con, e)))
        goto fail;
    *out = db;
    return 0;
fail:
    if (why)
        duckdb_free(why);
    if (cfg)
        duckdb_destroy_config(&cfg);
    sql_close(db);
    return rc;
}

void sql_close(struct sql_db *db)
{
    if (!db)
        return;
    if (db->con)
        duckdb_disconnect(&db->con);
    if (db->db)
        duckdb_close(&db->db);
    free(db);
}

duckdb_connection sql_db_connection(struct sql_db *db)
{
    return db->con;
}

void sql_interrupt(struct sql_db *db)
{
    if (db && db->con)
        duckdb_interrupt(db->con);
}

/* Run statement i of st; keep its result in *res when keep, else drop it. */
static int run_one(struct sql_db *db, duckdb_extracted_statements st, idx_t i,
                   int stream, duckdb_result *res, struct weir_errmsg *e)
{
    duckdb_prepared_statement p = NULL;
    duckdb_pending_result pend = NULL;
    int rc = 0;

    memset(res, 0, sizeof *res);
    if (duckdb_prepare_extracted_statement(db->con, st, i, &p) == DuckDBError) {
        const char *msg = duckdb_prepare_error(p);
        rc = errmsg_set(e, WEIR_ESQL, "%s", msg ? msg : "DuckDB: cannot prepare");
        goto out;
    }
    if (!stream) {
        if (duckdb_execute_prepared(p, res) == DuckDBError) {
            rc = fail_result(res, e);
            duckdb_destroy_result(res);
        }
        goto out;
    }
    if (duckdb_pending_prepared_streaming(p, &pend) == DuckDBError) {
        const char *msg = duckdb_pending_error(pend);
        rc = errmsg_set(e, WEIR_ESQL, "%s", msg ? msg : "DuckDB: cannot execute");
        goto out;
    }
    if (duckdb_execute_pending(pend, res) == DuckDBError) {
        rc = fail_result(res, e);
        duckdb_destroy_result(res);
    }
out:
    if (pend)
        duckdb_destroy_pending(&pend);
    duckdb_destroy_prepare(&p);
    return rc;
}

/* Run every statement of sql but the last; returns how many there are. */
static int run_all_but_last(struct sql_db *db, const char *sql,
                            duckdb_extracted_statements *st, idx_t *n,
                            struct weir_errmsg *e)
{
    *n = duckdb_extract_statements(db->con, sql, st);
    if (*n == 0) {
        const char *msg = duckdb_extract_statements_error(*st);
        return errmsg_set(e, WEIR_ESQL, "%s", msg ? msg : "no SQL statement");
    }
    for (idx_t i = 0; i + 1 < *n; i++) {
        duckdb_result res;
        int rc = run_one(db, *st, i, 0, &res, e);
        if (rc)
            return rc;
        duckdb_destroy_result(&res);
    }
    return 0;
}

int sql_exec(struct sql_db *db, const char *sql, struct weir_errmsg *e)
{
    duckdb_extracted_statements st = NULL;
    duckdb_result res;
    idx_t n;
    int rc = run_all_but_last(db, sql, &st, &n, e);
    if (rc == 0) {
        rc = run_one(db, st, n - 1, 0, &res, e);
        if (rc == 0)
            duckdb_destroy_result(&res);
    }
    duckdb_destroy_extracted(&st);
    return rc;
}

int sql_exec_params(struct sql_db *db, const char *sql,
                    const struct sql_param *params, size_t nparams,
                    struct weir_errmsg *e)
{
    duckdb_prepared_statement p = NULL;
    duckdb_result res;
    int rc = 0;

    memset(&res, 0, sizeof res);
    if (duckdb_prepare(db->con, sql, &p) == DuckDBError) {
        const char *msg = duckdb_prepare_error(p);
        rc = errmsg_set(e, WEIR_ESQL, "%s", msg ? msg : "DuckDB: cannot prepare");
        goto out;
    }
    for (size_t i = 0; i < nparams; i++) {
        idx_t idx = 0;
        /* A parameter the statement does not use is not an error: a model
         * need not refer to both $start and $end. */
        if (duckdb_bind_parameter_index(p, &idx, params[i].name) == DuckDBError)
            continue;
        duckdb_timestamp ts = {.micros = params[i].ts_ns / 1000};
        duckdb_value v = duckdb_create_timestamp_tz(ts);
        duckdb_state st = duckdb_bind_value(p, idx, v);
        duckdb_destroy_value(&v);
        if (st == DuckDBError) {
            rc = errmsg_set(e, WEIR_ESQL, "cannot bind $%s", params[i].name);
            goto out;
        }
    }
    if (duckdb_execute_prepared(p, &res) == DuckDBError)
        rc = fail_result(&res, e);
    duckdb_destroy_result(&res);
out:
    duckdb_destroy_prepare(&p);
    return rc;
}

/* ---- types ---------------------------------------------------------------- */

static void ctype_release(struct ctype *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->ndict; i++)
        duckdb_free(t->dict[i]);
    free(t->dict);
    size_t nc = t->nchild;
    for (size_t i = 0; i < nc; i++) {
        ctype_release(&t->child[i]);
        if (t->names)
            duckdb_free(t->names[i]);
    }
    free(t->child);
    free(t->names);
    memset(t, 0, sizeof *t);
}

static int ctype_build(duckdb_logical_type lt, struct ctype *t, int depth)
{
    memset(t, 0, sizeof *t);
    t->id = duckdb_get_type_id(lt);
    if (depth > 64)
        return WEIR_ELIMIT;
    char *alias = duckdb_logical_type_get_alias(lt);
    if (alias) {
        t->is_json = strcmp(alias, "JSON") == 0;
        duckdb_free(alias);
    }
    switch (t->id) {
    case DUCKDB_TYPE_DECIMAL:
        t->scale = duckdb_decimal_scale(lt);
        t->internal = duckdb_decimal_internal_type(lt);
        return 0;
    case DUCKDB_TYPE_ENUM:
        t->internal = duckdb_enum_internal_type(lt);
        t->ndict = duckdb_enum_dictionary_size(lt);
        t->dict = calloc(t->ndict ? t->ndict : 1, sizeof *t->dict);
        if (!t->dict) {
            t->ndict = 0;
            return WEIR_ENOMEM;
        }
        for (uint32_t i = 0; i < t->ndict; i++)
            t->dict[i] = duckdb_enum_dictionary_value(lt, i);
        return 0;
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_ARRAY:
    case DUCKDB_TYPE_MAP: {
        duckdb_logical_type c;
        if (t->id == DUCKDB_TYPE_ARRAY) {
            c = duckdb_array_type_child_type(lt);
            t->array_size = duckdb_array_type_array_size(lt);
        } else if (t->id == DUCKDB_TYPE_LIST) {
            c = duckdb_list_type_child_type(lt);
        } else {
            /* A MAP's vector is a LIST of STRUCT(key, value). */
            duckdb_logical_type kv[2] = {duckdb_map_type_key_type(lt),
                                         duckdb_map_type_value_type(lt)};
            const char *nm[2] = {"key", "value"};
            c = duckdb_create_struct_type(kv, nm, 2);
            duckdb_destroy_logical_type(&kv[0]);
            duckdb_destroy_logical_type(&kv[1]);
        }
        t->child = calloc(1, sizeof *t->child);
        if (!t->child) {
            duckdb_destroy_logical_type(&c);
            return WEIR_ENOMEM;
        }
        t->nchild = 1;
        int rc = ctype_build(c, &t->child[0], depth + 1);
        duckdb_destroy_logical_type(&c);
        return rc;
    }
    case DUCKDB_TYPE_STRUCT:
    case DUCKDB_TYPE_UNION: {
        int is_union = t->id == DUCKDB_TYPE_UNION;
        idx_t n = is_union ? duckdb_union_type_member_count(lt)
                           : duckdb_struct_type_child_count(lt);
        t->child = calloc(n ? n : 1, sizeof *t->child);
        t->names = calloc(n ? n : 1, sizeof *t->names);
        if (!t->child || !t->names)
            return WEIR_ENOMEM;
        t->nchild = n;
        for (idx_t i = 0; i < n; i++) {
            duckdb_logical_type c = is_union ? duckdb_union_type_member_type(lt, i)
                                             : duckdb_struct_type_child_type(lt, i);
            t->names[i] = is_union ? duckdb_union_type_member_name(lt, i)
                                   : duckdb_struct_type_child_name(lt, i);
            int rc = ctype_build(c, &t->child[i], depth + 1);
            duckdb_destroy_logical_type(&c);
            if (rc)
                return rc;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int type_is_numeric(duckdb_type id)
{
    switch (id) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_DECIMAL:
        return 1;
    default:
        return 0;
    }
}

/* ---- rendering ------------------------------------------------------------ */

enum { R_TEXT = 0, R_JSON = 1 };

static int valid(duckdb_vector v, idx_t row)
{
    uint64_t *m = duckdb_vector_get_validity(v);
    return !m || duckdb_validity_row_is_valid(m, row);
}

static const char *str_of(duckdb_string_t *s, uint32_t *len)
{
    *len = duckdb_string_t_length(*s);
    return duckdb_string_t_data(s);
}

/* 128-bit integers in decimal. */
static int put_u128(struct buf *b, unsigned __int128 u, int neg)
{
    char tmp[48];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    if (neg)
        tmp[--i] = '-';
    return buf_append(b, tmp + i, sizeof tmp - i);
}

static int put_i128(struct buf *b, __int128 v)
{
    unsigned __int128 u = v < 0 ? (unsigned __int128)0 - (unsigned __int128)v
                                : (unsigned __int128)v;
    return put_u128(b, u, v < 0);
}

static __int128 hugeint_of(const duckdb_hugeint *h)
{
    return (__int128)(((unsigned __int128)(uint64_t)h->upper << 64) | h->lower);
}

/* Scaled integer v / 10^scale. */
static int put_decimal(struct buf *b, __int128 v, unsigned scale)
{
    struct buf t = BUF_INIT(64);
    unsigned __int128 u = v < 0 ? (unsigned __int128)0 - (unsigned __int128)v
                                : (unsigned __int128)v;
    int rc = put_u128(&t, u, 0);
    if (rc)
        goto out;
    if (v < 0 && (rc = buf_putc(b, '-')))
        goto out;
    if (scale == 0) {
        rc = buf_append(b, t.data, t.len);
        goto out;
    }
    if (t.len <= scale) {
        if ((rc = buf_puts(b, "0.")))
            goto out;
        for (size_t i = t.len; i < scale; i++)
            if ((rc = buf_putc(b, '0')))
                goto out;
        rc = buf_append(b, t.data, t.len);
        goto out;
    }
    if ((rc = buf_append(b, t.data, t.len - scale)) || (rc = buf_putc(b, '.')))
        goto out;
    rc = buf_append(b, t.data + t.len - scale, scale);
out:
    buf_release(&t);
    return rc;
}

/* The shortest text that reads back as the same double (or float). */
static int put_double(struct buf *b, double d, int is_float, int mode)
{
    char tmp[40];
    if (isnan(d))
        return buf_puts(b, mode == R_JSON ? "\"nan\"" : "nan");
    if (isinf(d)) {
        if (mode == R_JSON)
            return buf_puts(b, d < 0 ? "\"-inf\"" : "\"inf\"");
        return buf_puts(b, d < 0 ? "-inf" : "inf");
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*g", p, d);
        double back = strtod(tmp, NULL);
        if (is_float ? (float)back == (float)d : back == d)
            break;
    }
    /* "2" -> "2.0", as DuckDB prints a double, so a reader sees the type. */
    if (!strpbrk(tmp, ".e"))
        return buf_appendf(b, "%s.0", tmp);
    return buf_puts(b, tmp);
}

static int put_frac(struct buf *b, int64_t frac, int digits)
{
    char tmp[16];
    if (frac == 0)
        return 0;
    snprintf(tmp, sizeof tmp, "%0*" PRId64, digits, frac);
    size_t n = strlen(tmp);
    while (n > 0 && tmp[n - 1] == '0')
        n--;
    return buf_putc(b, '.') ? WEIR_ENOMEM : buf_append(b, tmp, n);
}

static int put_date_days(struct buf *b, int64_t days)
{
    int y, m, d;
    wtime_civil_from_days(days, &y, &m, &d);
    return buf_appendf(b, "%04d-%02d-%02d", y, m, d);
}

static int put_time_of_day(struct buf *b, int64_t units, int64_t per_s,
                           int digits)
{
    int64_t s = units / per_s, frac = units % per_s;
    int rc = buf_appendf(b, "%02d:%02d:%02d", (int)(s / 3600),
                         (int)(s / 60 % 60), (int)(s % 60));
    return rc ? rc : put_frac(b, frac, digits);
}

/* A timestamp of units since the epoch (per_s units per second). */
static int put_timestamp(struct buf *b, int64_t v, int64_t per_s, int digits,
                         int tz)
{
    if (v == INT64_MAX)
        return buf_puts(b, "infinity");
    if (v == -INT64_MAX)
        return buf_puts(b, "-infinity");
    int64_t per_day = per_s * 86400;
    int64_t days = v / per_day, rem = v % per_day;
    if (rem < 0) {
        rem += per_day;
        days--;
    }
    int rc = put_date_days(b, days);
    if (!rc)
        rc = buf_putc(b, ' ');
    if (!rc)
        rc = put_time_of_day(b, rem, per_s, digits);
    if (!rc && tz)
        rc = buf_puts(b, "+00");
    return rc;
}

static int put_interval(struct buf *b, const duckdb_interval *iv)
{
    int rc = 0, any = 0;
    int32_t years = iv->months / 12, months = iv->months % 12;
    if (years)
        rc = buf_appendf(b, "%s%d year%s", any++ ? " " : "", years,
                         years == 1 || years == -1 ? "" : "s");
    if (!rc && months)
        rc = buf_appendf(b, "%s%d month%s", any++ ? " " : "", months,
                         months == 1 || months == -1 ? "" : "s");
    if (!rc && iv->days)
        rc = buf_appendf(b, "%s%d day%s", any++ ? " " : "", iv->days,
                         iv->days == 1 || iv->days == -1 ? "" : "s");
    if (!rc && (iv->micros || !any)) {
        int64_t us = iv->micros;
        if (any)
            rc = buf_putc(b, ' ');
        if (!rc && us < 0) {
            rc = buf_putc(b, '-');
            us = -us;
        }
        if (!rc)
            rc = put_time_of_day(b, us, 1000000, 6);
    }
    return rc;
}

static int put_uuid(struct buf *b, const duckdb_hugeint *h)
{
    /* DuckDB flips the top bit so that UUIDs sort as unsigned. */
    uint64_t hi = (uint64_t)h->upper ^ (UINT64_C(1) << 63), lo = h->lower;
    return buf_appendf(b, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
                          "-%012" PRIx64,
                       hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
                       lo & UINT64_C(0xffffffffffff));
}

static int put_blob(struct buf *b, const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int rc = (c >= 0x20 && c < 0x7f && c != '\\')
                     ? buf_putc(b, c)
                     : buf_appendf(b, "\\x%02X", c);
        if (rc)
            return rc;
    }
    return 0;
}

/* A scalar rendered as text into t, for quoting as JSON or printing. */
static int render(struct buf *b, const struct ctype *t, duckdb_vector v,
                  idx_t row, int mode, int depth);

static int render_quoted(struct buf *b, const struct ctype *t, duckdb_vector v,
                         idx_t row, int depth)
{
    struct buf tmp = BUF_INIT(b->max);
    int rc = render(&tmp, t, v, row, R_TEXT, depth);
    if (!rc)
        rc = buf_put_json_string(b, tmp.data ? tmp.data : "", tmp.len);
    buf_release(&tmp);
    return rc;
}

static uint64_t enum_index(const struct ctype *t, const void *data, idx_t row)
{
    switch (t->internal) {
    case DUCKDB_TYPE_UTINYINT:
        return ((const uint8_t *)data)[row];
    case DUCKDB_TYPE_USMALLINT:
        return ((const uint16_t *)data)[row];
    default:
        return ((const uint32_t *)data)[row];
    }
}

static int render_nested(struct buf *b, const struct ctype *t, duckdb_vector v,
                         idx_t row, int depth)
{
    int rc = 0;
    const void *data = duckdb_vector_get_data(v);
    switch (t->id) {
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_ARRAY: {
        duckdb_vector c;
        idx_t off, len;
        if (t->id == DUCKDB_TYPE_LIST) {
            const duckdb_list_entry *le = data;
            c = duckdb_list_vector_get_child(v);
            off = le[row].offset;
            len = le[row].length;
        } else {
            c = duckdb_array_vector_get_child(v);
            off = row * t->array_size;
            len = t->array_size;
        }
        if ((rc = buf_putc(b, '[')))
            return rc;
        for (idx_t i = 0; i < len && !rc; i++) {
            if (i)
                rc = buf_putc(b, ',');
            if (!rc)
                rc = render(b, &t->child[0], c, off + i, R_JSON, depth + 1);
        }
        return rc ? rc : buf_putc(b, ']');
    }
    case DUCKDB_TYPE_MAP: {
        const duckdb_list_entry *le = data;
        duckdb_vector c = duckdb_list_vector_get_child(v);
        duckdb_vector kv = duckdb_struct_vector_get_child(c, 0);
        duckdb_vector vv = duckdb_struct_vector_get_child(c, 1);
        const struct ctype *kt = &t->child[0].child[0], *vt = &t->child[0].child[1];
        if ((rc = buf_putc(b, '{')))
            return rc;
        for (idx_t i = 0; i < le[row].length && !rc; i++) {
            idx_t at = le[row].offset + i;
            if (i)
                rc = buf_putc(b, ',');
            if (!rc)
                rc = render_quoted(b, kt, kv, at, depth + 1);
            if (!rc)
                rc = buf_putc(b, ':');
            if (!rc)
                rc = render(b, vt, vv, at, R_JSON, depth + 1);
        }
        return rc ? rc : buf_putc(b, '}');
    }
    case DUCKDB_TYPE_STRUCT: {
        if ((rc = buf_putc(b, '{')))
            return rc;
        for (size_t i = 0; i < t->nchild && !rc; i++) {
            const char *nm = t->names[i] ? t->names[i] : "";
            if (i)
                rc = buf_putc(b, ',');
            if (!rc)
                rc = buf_put_json_string(b, nm, strlen(nm));
            if (!rc)
                rc = buf_putc(b, ':');
            if (!rc)
                rc = render(b, &t->child[i], duckdb_struct_vector_get_child(v, i),
                            row, R_JSON, depth + 1);
        }
        return rc ? rc : buf_putc(b, '}');
    }
    case DUCKDB_TYPE_UNION: {
        /* Child 0 of the vector is the tag, members follow. */
        duckdb_vector tag = duckdb_struct_vector_get_child(v, 0);
        uint8_t k = ((const uint8_t *)duckdb_vector_get_data(tag))[row];
        if (k >= t->nchild)
            return buf_puts(b, "null");
        return render(b, &t->child[k], duckdb_struct_vector_get_child(v, k + 1),
                      row, R_JSON, depth + 1);
    }
    default:
        return buf_puts(b, "null");
    }
}

static int render(struct buf *b, const struct ctype *t, duckdb_vector v,
                  idx_t row, int mode, int depth)
{
    const void *data = duckdb_vector_get_data(v);
    int json = mode == R_JSON;
    uint32_t len;
    const char *s;

    if (depth > 64)
        return WEIR_ELIMIT;
    if (!valid(v, row))
        return json ? buf_puts(b, "null") : 0;
    switch (t->id) {
    case DUCKDB_TYPE_BOOLEAN:
        return buf_puts(b, ((const bool *)data)[row] ? "true" : "false");
    case DUCKDB_TYPE_TINYINT:
        return buf_appendf(b, "%d", ((const int8_t *)data)[row]);
    case DUCKDB_TYPE_SMALLINT:
        return buf_appendf(b, "%d", ((const int16_t *)data)[row]);
    case DUCKDB_TYPE_INTEGER:
        return buf_appendf(b, "%" PRId32, ((const int32_t *)data)[row]);
    case DUCKDB_TYPE_BIGINT:
        return buf_appendf(b, "%" PRId64, ((const int64_t *)data)[row]);
    case DUCKDB_TYPE_UTINYINT:
        return buf_appendf(b, "%u", ((const uint8_t *)data)[row]);
    case DUCKDB_TYPE_USMALLINT:
        return buf_appendf(b, "%u", ((const uint16_t *)data)[row]);
    case DUCKDB_TYPE_UINTEGER:
        return buf_appendf(b, "%" PRIu32, ((const uint32_t *)data)[row]);
    case DUCKDB_TYPE_UBIGINT:
        return buf_appendf(b, "%" PRIu64, ((const uint64_t *)data)[row]);
    case DUCKDB_TYPE_HUGEINT:
        return put_i128(b, hugeint_of(&((const duckdb_hugeint *)data)[row]));
    case DUCKDB_TYPE_UHUGEINT: {
        const duckdb_uhugeint *u = &((const duckdb_uhugeint *)data)[row];
        return put_u128(b, ((unsigned __int128)u->upper << 64) | u->lower, 0);
    }
    case DUCKDB_TYPE_FLOAT:
        return put_double(b, ((const float *)data)[row], 1, mode);
    case DUCKDB_TYPE_DOUBLE:
        return put_double(b, ((const double *)data)[row], 0, mode);
    case DUCKDB_TYPE_DECIMAL: {
        __int128 x;
        switch (t->internal) {
        case DUCKDB_TYPE_SMALLINT:
            x = ((const int16_t *)data)[row];
            break;
        case DUCKDB_TYPE_INTEGER:
            x = ((const int32_t *)data)[row];
            break;
        case DUCKDB_TYPE_BIGINT:
            x = ((const int64_t *)data)[row];
            break;
        default:
            x = hugeint_of(&((const duckdb_hugeint *)data)[row]);
            break;
        }
        return put_decimal(b, x, t->scale);
    }
    case DUCKDB_TYPE_VARCHAR:
        s = str_of(&((duckdb_string_t *)data)[row], &len);
        if (json && !t->is_json)
            return buf_put_json_string(b, s, len);
        return buf_append(b, s, len);
    case DUCKDB_TYPE_ENUM: {
        uint64_t k = enum_index(t, data, row);
        s = k < t->ndict && t->dict[k] ? t->dict[k] : "";
        return json ? buf_put_json_string(b, s, strlen(s)) : buf_puts(b, s);
    }
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_ARRAY:
    case DUCKDB_TYPE_STRUCT:
    case DUCKDB_TYPE_MAP:
    case DUCKDB_TYPE_UNION:
        return render_nested(b, t, v, row, depth);
    default:
        break;
    }
    if (json)
        return render_quoted(b, t, v, row, depth);
    switch (t->id) {
    case DUCKDB_TYPE_BLOB:
        s = str_of(&((duckdb_string_t *)data)[row], &len);
        return put_blob(b, s, len);
    case DUCKDB_TYPE_DATE: {
        int32_t d = ((const int32_t *)data)[row];
        if (d == INT32_MAX)
            return buf_puts(b, "infinity");
        if (d == -INT32_MAX)
            return buf_puts(b, "-infinity");
        return put_date_days(b, d);
    }
    case DUCKDB_TYPE_TIME:
        return put_time_of_day(b, ((const int64_t *)data)[row], 1000000, 6);
    case DUCKDB_TYPE_TIME_NS:
        return put_time_of_day(b, ((const int64_t *)data)[row], 1000000000, 9);
    case DUCKDB_TYPE_TIME_TZ: {
        duckdb_time_tz_struct tz =
            duckdb_from_time_tz(((const duckdb_time_tz *)data)[row]);
        int64_t us = ((int64_t)tz.time.hour * 3600 + tz.time.min * 60 + tz.time.sec) *
                         1000000 + tz.time.micros;
        int off = tz.offset < 0 ? -tz.offset : tz.offset;
        int rc = put_time_of_day(b, us, 1000000, 6);
        if (!rc)
            rc = buf_appendf(b, "%c%02d", tz.offset < 0 ? '-' : '+', off / 3600);
        if (!rc && off % 3600)
            rc = buf_appendf(b, ":%02d", off / 60 % 60);
        return rc;
    }
    case DUCKDB_TYPE_TIMESTAMP:
        return put_timestamp(b, ((const int64_t *)data)[row], 1000000, 6, 0);
    case DUCKDB_TYPE_TIMESTAMP_TZ:
        return put_timestamp(b, ((const int64_t *)data)[row], 1000000, 6, 1);
    case DUCKDB_TYPE_TIMESTAMP_S:
        return put_timestamp(b, ((const int64_t *)data)[row], 1, 0, 0);
    case DUCKDB_TYPE_TIMESTAMP_MS:
        return put_timestamp(b, ((const int64_t *)data)[row], 1000, 3, 0);
    case DUCKDB_TYPE_TIMESTAMP_NS:
        return put_timestamp(b, ((const int64_t *)data)[row], 1000000000, 9, 0);
    case DUCKDB_TYPE_INTERVAL:
        return put_interval(b, &((const duckdb_interval *)data)[row]);
    case DUCKDB_TYPE_UUID:
        return put_uuid(b, &((const duckdb_hugeint *)data)[row]);
    default:
        /* BIT, BIGNUM: rare enough to ask for a cast instead. */
        return buf_appendf(b, "(type %d: cast to VARCHAR)", (int)t->id);
    }
}

/* ---- results ---------------------------------------------------------------- */

void sql_result_free(struct sql_result *r)
{
    if (!r)
        return;
    if (r->chunk)
        duckdb_destroy_data_chunk(&r->chunk);
    for (size_t i = 0; i < r->ncols; i++) {
        if (r->types)
            ctype_release(&r->types[i]);
        if (r->names)
            free(r->names[i]);
    }
    free(r->types);
    free(r->names);
    free(r->vecs);
    duckdb_destroy_result(&r->res);
    free(r);
}

int sql_query(struct sql_db *db, const char *sql, struct sql_result **out,
              struct weir_errmsg *e)
{
    duckdb_extracted_statements st = NULL;
    struct sql_result *r = NULL;
    idx_t n;
    int rc;

    *out = NULL;
    if ((rc = run_all_but_last(db, sql, &st, &n, e)))
        goto fail;
    r = calloc(1, sizeof *r);
    if (!r) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = run_one(db, st, n - 1, 1, &r->res, e))) {
        free(r);
        r = NULL;
        goto fail;
    }
    r->ncols = duckdb_column_count(&r->res);
    r->names = calloc(r->ncols ? r->ncols : 1, sizeof *r->names);
    r->types = calloc(r->ncols ? r->ncols : 1, sizeof *r->types);
    r->vecs = calloc(r->ncols ? r->ncols : 1, sizeof *r->vecs);
    if (!r->names || !r->types || !r->vecs) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        const char *nm = duckdb_column_name(&r->res, i);
        r->names[i] = strdup(nm ? nm : "");
        duckdb_logical_type lt = duckdb_column_logical_type(&r->res, i);
        int brc = ctype_build(lt, &r->types[i], 0);
        duckdb_destroy_logical_type(&lt);
        if (!r->names[i] || brc) {
            rc = errmsg_set(e, brc ? brc : WEIR_ENOMEM,
                            "cannot read the type of column %zu", i + 1);
            goto fail;
        }
    }
    duckdb_destroy_extracted(&st);
    *out = r;
    return 0;
fail:
    duckdb_destroy_extracted(&st);
    sql_result_free(r);
    return rc;
}

size_t sql_result_columns(const struct sql_result *r)
{
    return r->ncols;
}

const char *sql_result_name(const struct sql_result *r, size_t col)
{
    return col < r->ncols ? r->names[col] : NULL;
}

int sql_result_is_numeric(const struct sql_result *r, size_t col)
{
    return col < r->ncols && type_is_numeric(r->types[col].id);
}

int sql_result_next(struct sql_result *r, struct weir_errmsg *e)
{
    if (r->done)
        return 0;
    if (r->started && r->row + 1 < r->chunk_rows) {
        r->row++;
        return 1;
    }
    r->started = 1;
    for (;;) {
        if (r->chunk)
            duckdb_destroy_data_chunk(&r->chunk);
        r->chunk = duckdb_fetch_chunk(r->res);
        if (!r->chunk) {
            r->done = 1;
            const char *msg = duckdb_result_error(&r->res);
            if (msg && *msg)
                return errmsg_set(e, code_of(duckdb_result_error_type(&r->res), msg),
                                  "%s", msg);
            return 0;
        }
        r->chunk_rows = duckdb_data_chunk_get_size(r->chunk);
        if (r->chunk_rows == 0)
            continue;
        for (size_t i = 0; i < r->ncols; i++)
            r->vecs[i] = duckdb_data_chunk_get_vector(r->chunk, i);
        r->row = 0;
        return 1;
    }
}

static int has_row(const struct sql_result *r, size_t col)
{
    return r->chunk && !r->done && col < r->ncols && r->row < r->chunk_rows;
}

int sql_result_is_null(const struct sql_result *r, size_t col)
{
    return !has_row(r, col) || !valid(r->vecs[col], r->row);
}

int sql_result_text(const struct sql_result *r, size_t col, struct buf *out)
{
    if (!has_row(r, col))
        return WEIR_EINVAL;
    return render(out, &r->types[col], r->vecs[col], r->row, R_TEXT, 0);
}

int sql_result_json(const struct sql_result *r, size_t col, struct buf *out)
{
    if (!has_row(r, col))
        return WEIR_EINVAL;
    return render(out, &r->types[col], r->vecs[col], r->row, R_JSON, 0);
}

int sql_result_double(const struct sql_result *r, size_t col, double *v)
{
    if (!has_row(r, col) || !valid(r->vecs[col], r->row))
        return WEIR_EINVAL;
    const struct ctype *t = &r->types[col];
    const void *d = duckdb_vector_get_data(r->vecs[col]);
    idx_t i = r->row;
    switch (t->id) {
    case DUCKDB_TYPE_FLOAT:
        *v = ((const float *)d)[i];
        return 0;
    case DUCKDB_TYPE_DOUBLE:
        *v = ((const double *)d)[i];
        return 0;
    case DUCKDB_TYPE_UBIGINT:
        *v = (double)((const uint64_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_HUGEINT:
        *v = (double)hugeint_of(&((const duckdb_hugeint *)d)[i]);
        return 0;
    case DUCKDB_TYPE_DECIMAL: {
        struct buf tb = BUF_INIT(128);
        int rc = render(&tb, t, r->vecs[col], i, R_TEXT, 0);
        if (!rc)
            *v = strtod(tb.data, NULL);
        buf_release(&tb);
        return rc;
    }
    default: {
        int64_t x;
        int rc = sql_result_int64(r, col, &x);
        if (rc)
            return rc;
        *v = (double)x;
        return 0;
    }
    }
}

int sql_result_int64(const struct sql_result *r, size_t col, int64_t *v)
{
    if (!has_row(r, col) || !valid(r->vecs[col], r->row))
        return WEIR_EINVAL;
    const struct ctype *t = &r->types[col];
    const void *d = duckdb_vector_get_data(r->vecs[col]);
    idx_t i = r->row;
    switch (t->id) {
    case DUCKDB_TYPE_BOOLEAN:
        *v = ((const bool *)d)[i];
        return 0;
    case DUCKDB_TYPE_TINYINT:
        *v = ((const int8_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_SMALLINT:
        *v = ((const int16_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_DATE:
        *v = ((const int32_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS:
        *v = ((const int64_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_UTINYINT:
        *v = ((const uint8_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_USMALLINT:
        *v = ((const uint16_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_UINTEGER:
        *v = ((const uint32_t *)d)[i];
        return 0;
    case DUCKDB_TYPE_UBIGINT: {
        uint64_t u = ((const uint64_t *)d)[i];
        if (u > INT64_MAX)
            return WEIR_ELIMIT;
        *v = (int64_t)u;
        return 0;
    }
    case DUCKDB_TYPE_HUGEINT: {
        __int128 h = hugeint_of(&((const duckdb_hugeint *)d)[i]);
        if (h > INT64_MAX || h < INT64_MIN)
            return WEIR_ELIMIT;
        *v = (int64_t)h;
        return 0;
    }
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DECIMAL: {
        double x;
        int rc = sql_result_double(r, col, &x);
        if (rc)
            return rc;
        if (x != floor(x))
            return WEIR_EINVAL;
        if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
            return WEIR_ELIMIT;
        *v = (int64_t)x;
        return 0;
    }
    default:
        return WEIR_EINVAL;
    }
}

int sql_query_int64(struct sql_db *db, const char *sql, int64_t *v,
                    struct weir_errmsg *e)
{
    struct sql_result *r;
    int rc = sql_query(db, sql, &r, e);
    if (rc)
        return rc;
    rc = sql_result_next(r, e);
    if (rc == 0)
        rc = errmsg_set(e, WEIR_ENOTFOUND, "the query returned no row");
    else if (rc == 1) {
        rc = sql_result_columns(r) ? sql_result_int64(r, 0, v) : WEIR_EINVAL;
        if (rc)
            errmsg_set(e, rc, "the query's value is not an integer");
    }
    sql_result_free(r);
    return rc;
}

int sql_query_text(struct sql_db *db, const char *sql, struct buf *out,
                   struct weir_errmsg *e)
{
    struct sql_result *r;
    int rc = sql_query(db, sql, &r, e);
    if (rc)
        return rc;
    rc = sql_result_next(r, e);
    if (rc == 0)
        rc = errmsg_set(e, WEIR_ENOTFOUND, "the query returned no row");
    else if (rc == 1)
        rc = sql_result_columns(r) ? sql_result_text(r, 0, out) : WEIR_EINVAL;
    sql_result_free(r);
    return rc;
}

/* ---- output formats ------------------------------------------------------- */

int sql_format_parse(const char *s)
{
    if (strcmp(s, "table") == 0)
        return SQL_FORMAT_TABLE;
    if (strcmp(s, "csv") == 0)
        return SQL_FORMAT_CSV;
    if (strcmp(s, "json") == 0)
        return SQL_FORMAT_JSON;
    return -1;
}

/* Largest text of one value; a longer one fails the query (bounded memory). */
#define SQL_MAX_VALUE (256u << 20)

static int csv_field(struct buf *line, const char *s, size_t n, int is_null)
{
    if (is_null)
        return 0;
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote)
        return buf_append(line, s, n);
    int rc = buf_putc(line, '"');
    for (size_t i = 0; i < n && !rc; i++)
        rc = s[i] == '"' ? buf_puts(line, "\"\"") : buf_putc(line, s[i]);
    return rc ? rc : buf_putc(line, '"');
}

static int write_out(FILE *f, const struct buf *b, struct weir_errmsg *e)
{
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
        return errmsg_set(e, WEIR_EIO, "cannot write the result: %s", strerror(errno));
    return 0;
}

static int write_stream(struct sql_result *r, enum sql_format fmt, FILE *f,
                        uint64_t *rows, struct weir_errmsg *e)
{
    struct buf line = BUF_INIT(SIZE_MAX / 2), val = BUF_INIT(SQL_MAX_VALUE);
    int rc = 0;

    if (fmt == SQL_FORMAT_CSV) {
        for (size_t c = 0; c < r->ncols && !rc; c++) {
            if (c)
                rc = buf_putc(&line, ',');
            if (!rc)
                rc = csv_field(&line, r->names[c], strlen(r->names[c]), 0);
        }
        if (!rc)
            rc = buf_putc(&line, '\n');
        if (!rc)
            rc = write_out(f, &line, e);
    }
    while (rc == 0 && (rc = sql_result_next(r, e)) == 1) {
        rc = 0;
        buf_reset(&line);
        if (fmt == SQL_FORMAT_JSON)
            rc = buf_putc(&line, '{');
        for (size_t c = 0; c < r->ncols && !rc; c++) {
            if (c)
                rc = buf_putc(&line, ',');
            if (rc)
                break;
            if (fmt == SQL_FORMAT_JSON) {
                rc = buf_put_json_string(&line, r->names[c], strlen(r->names[c]));
                if (!rc)
                    rc = buf_putc(&line, ':');
                if (!rc)
                    rc = sql_result_json(r, c, &line);
                continue;
            }
            buf_reset(&val);
            rc = sql_result_text(r, c, &val);
            if (!rc)
                rc = csv_field(&line, val.data ? val.data : "", val.len,
                               sql_result_is_null(r, c));
        }
        if (!rc && fmt == SQL_FORMAT_JSON)
            rc = buf_putc(&line, '}');
        if (!rc)
            rc = buf_putc(&line, '\n');
        if (rc)
            rc = errmsg_set(e, rc, "a row is too large to print (%s)",
                            weir_strerror(rc));
        else
            rc = write_out(f, &line, e);
        if (!rc)
            (*rows)++;
    }
    buf_release(&line);
    buf_release(&val);
    return rc < 0 ? rc : 0;
}

/* Width of s on a terminal: code points (wide characters count as one). */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    return w;
}

/* Make a value printable on one line of a table. */
static int table_cell(struct buf *out, const char *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            rc = buf_puts(out, "\\n");
        else if (c == '\t')
            rc = buf_puts(out, "\\t");
        else if (c == '\r')
            rc = buf_puts(out, "\\r");
        else if (c < 0x20 || c == 0x7f)
            rc = buf_appendf(out, "\\x%02x", c);
        else
            rc = buf_putc(out, c);
    }
    return rc;
}

static int pad(struct buf *b, size_t n)
{
    int rc = 0;
    while (n-- && !rc)
        rc = buf_putc(b, ' ');
    return rc;
}

static int write_table(struct sql_result *r, FILE *f, uint64_t *rows,
                       struct weir_errmsg *e)
{
    /* Cells are kept as offsets into one buffer: cell k of row i is
     * cells.data[off[i * ncols + k] ..) with length len[...]. */
    struct buf cells = BUF_INIT(SIZE_MAX / 2), val = BUF_INIT(SQL_MAX_VALUE);
    struct buf out = BUF_INIT(SIZE_MAX / 2);
    size_t nc = r->ncols, cap = 0, n = 0;
    size_t *off = NULL, *len = NULL, *width = calloc(nc ? nc : 1, sizeof *width);
    int more = 0, rc = 0;

    if (!width)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    for (size_t c = 0; c < nc; c++)
        width[c] = text_width(r->names[c], strlen(r->names[c]));
    while ((rc = sql_result_next(r, e)) == 1) {
        rc = 0;
        if (n == SQL_TABLE_MAX_ROWS) {
            more = 1;
            break;
        }
        if ((n + 1) * nc > cap) {
            size_t ncap = cap ? cap * 2 : 64 * (nc ? nc : 1);
            size_t *o2 = realloc(off, ncap * sizeof *o2);
            if (o2)
                off = o2;
            size_t *l2 = o2 ? realloc(len, ncap * sizeof *l2) : NULL;
            if (!o2 || !l2) {
                rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
                break;
            }
            len = l2;
            cap = ncap;
        }
        for (size_t c = 0; c < nc && !rc; c++) {
            size_t at = cells.len;
            buf_reset(&val);
            if (sql_result_is_null(r, c)) {
                rc = buf_puts(&cells, "NULL");
            } else {
                rc = sql_result_text(r, c, &val);
                if (!rc)
                    rc = table_cell(&cells, val.data ? val.data : "", val.len);
            }
            off[n * nc + c] = at;
            len[n * nc + c] = cells.len - at;
            size_t w = text_width(cells.data ? cells.data + at : "", cells.len - at);
            if (w > width[c])
                width[c] = w;
        }
        if (rc) {
            rc = errmsg_set(e, rc, "the result is too large for a table: use "
                                   "--format csv or json");
            break;
        }
        n++;
    }
    if (rc < 0)
        goto out;
    rc = 0;
    for (size_t c = 0; c < nc && !rc; c++) {
        size_t w = text_width(r->names[c], strlen(r->names[c]));
        rc = buf_puts(&out, c ? " | " : " ");
        if (!rc)
            rc = buf_puts(&out, r->names[c]);
        if (!rc && c + 1 < nc)
            rc = pad(&out, width[c] - w);
    }
    if (!rc)
        rc = buf_putc(&out, '\n');
    for (size_t c = 0; c < nc && !rc; c++) {
        rc = buf_puts(&out, c ? "-+-" : "-");
        for (size_t k = 0; k < width[c] && !rc; k++)
            rc = buf_putc(&out, '-');
    }
    if (!rc)
        rc = buf_puts(&out, "-\n");
    for (size_t i = 0; i < n && !rc; i++) {
        for (size_t c = 0; c < nc && !rc; c++) {
            const char *s = cells.data + off[i * nc + c];
            size_t l = len[i * nc + c], w = text_width(s, l);
            int right = sql_result_is_numeric(r, c);
            rc = buf_puts(&out, c ? " | " : " ");
            if (!rc && right)
                rc = pad(&out, width[c] - w);
            if (!rc)
                rc = buf_append(&out, s, l);
            if (!rc && !right && c + 1 < nc)
                rc = pad(&out, width[c] - w);
        }
        if (!rc)
            rc = buf_putc(&out, '\n');
        if (!rc && out.len > (1u << 20)) {
            rc = write_out(f, &out, e);
            buf_reset(&out);
        }
    }
    if (!rc)
        rc = buf_appendf(&out, more ? "(first %zu rows shown; use --format csv or "
                                      "json, or LIMIT, for all)\n"
                                    : "(%zu row%s)\n",
                         n, n == 1 ? "" : "s");
    if (rc > 0)
        rc = 0;
    if (rc == 0)
        rc = write_out(f, &out, e);
    else if (rc != WEIR_EIO)
        rc = errmsg_set(e, rc, "cannot format the table: %s", weir_strerror(rc));
    *rows = n;
out:
    free(off);
    free(len);
    free(width);
    buf_release(&cells);
    buf_release(&val);
    buf_release(&out);
    return rc;
}

int sql_result_write(struct sql_result *r, enum sql_format fmt, FILE *f,
                     uint64_t *rows, struct weir_errmsg *e)
{
    uint64_t dummy = 0;
    int rc;
    if (!rows)
        rows = &dummy;
    *rows = 0;
    if (fmt == SQL_FORMAT_TABLE)
        rc = write_table(r, f, rows, e);
    else
        rc = write_stream(r, fmt, f, rows, e);
    if (rc == 0 && fflush(f) != 0)
        rc = errmsg_set(e, WEIR_EIO, "cannot write the result: %s", strerror(errno));
    return rc;
}

/* ---- quoting ---------------------------------------------------------------- */

static int quote(struct buf *b, const char *s, size_t n, char q)
{
    if (memchr(s, '\0', n))
        return WEIR_EINVAL;
    size_t start = b->len;
    int rc = buf_putc(b, q);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = buf_putc(b, s[i]);
        if (!rc && s[i] == q)
            rc = buf_putc(b, q);
    }
    if (!rc)
        rc = buf_putc(b, q);
    if (rc)
        buf_truncate(b, start);
    return rc;
}

int sql_quote_ident_n(struct buf *b, const char *s, size_t n)
{
    return quote(b, s, n, '"');
}

int sql_quote_ident(struct buf *b, const char *s)
{
    return quote(b, s, strlen(s), '"');
}

int sql_quote_string_n(struct buf *b, const char *s, size_t n)
{
    return quote(b, s, n, '\'');
}

int sql_quote_string(struct buf *b, const char *s)
{
    return quote(b, s, strlen(s), '\'');
}
