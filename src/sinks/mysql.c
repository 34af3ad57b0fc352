/*
 * mysql.c - the MySQL/MariaDB sink: MariaDB Connector/C, one transaction
 * per partition, rows through LOAD DATA LOCAL INFILE served from memory
 * (or batched INSERTs through a server-side prepared statement). The only
 * file that includes mysql.h.
 *
 * A load:
 *   the table looked up in information_schema; CREATE TABLE IF NOT EXISTS
 *       when missing (MySQL commits DDL at once, so this happens before the
 *       transaction; IF NOT EXISTS makes two first loads safe); engine
 *       InnoDB and the columns checked (wh.h);
 *   START TRANSACTION; DELETE the partition's range (InnoDB's next-key
 *       locks on the weir_partition index make a concurrent load of the
 *       same range wait, then delete what the first one committed);
 *   LOAD DATA LOCAL INFILE with every row re-encoded (wh_put_row), or
 *       INSERT batches; the server's row count and warnings checked;
 *   COMMIT.
 *
 * Why warnings matter: with LOCAL the server cannot stop the client's
 * stream, so it downgrades data errors to warnings and carries on
 * (MySQL manual, LOAD DATA, "Duplicate-Key and Error Handling"). Values
 * are checked before they are sent, and any warning left fails the load.
 *
 * The local-infile handler never opens a file: it serves only the rows of
 * the load in progress, whatever name the server asks for, and refuses
 * when no load is in progress, so a hostile server cannot read files.
 */
#include "sinks/sink.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/log.h"
#include "sinks/csv.h"
#include "sinks/wh.h"

/* The rows of the LOAD DATA in progress, for the local-infile handler. */
struct infile {
    int active;
    struct csv_reader rd;
    const struct sink_rows *rows;
    struct buf out;             /* encoded rows not yet handed over */
    size_t pos;                 /* bytes of out already handed over */
    int eof;
    uint64_t nrows;
    int rc;                     /* first error, with its message in e */
    struct weir_errmsg e;
};

struct my_sink {
    struct sink base;
    MYSQL *conn;
    struct wh_mysql_dsn dsn;
    char masked[256];
    char table_text[600];       /* quoted, for messages */
    struct wh_table table;
    struct sink_options opt;
    int no_local_infile;        /* AUTO fell back to INSERT */
    struct infile inf;
};

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init(void)
{
    /* mysql_init() would do this itself, but not thread-safely. */
    mysql_library_init(0, NULL, NULL);
}

static int lost(unsigned err)
{
    return err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST ||
           err == CR_CONNECTION_ERROR || err == CR_CONN_HOST_ERROR;
}

static int fail(struct my_sink *s, const char *step, struct weir_errmsg *e)
{
    unsigned err = mysql_errno(s->conn);
    int code = lost(err) || (err >= 2000 && err < 3000) ? WEIR_ECLOSED : WEIR_ESQL;
    return errmsg_set(e, code, "mysql %s: table %s: %s: %s (error %u)", s->masked,
                      s->table_text, step, mysql_error(s->conn), err);
}

static int infile_init(void **ptr, const char *filename, void *userdata)
{
    (void)filename; /* never opened: see the top of this file */
    *ptr = userdata;
    return 0;
}

static int infile_read(void *ptr, char *dst, unsigned int cap)
{
    struct infile *inf = ptr;
    if (!inf->active) {
        inf->rc = errmsg_set(&inf->e, WEIR_EINVAL,
                             "the server asked for a local file outside a load; refused");
        return -1;
    }
    if (inf->rc)
        return -1;
    /* The library's buffer may be far larger than a chunk: hand over a
     * chunk at most, so out stays within its bound. */
    if (cap > WEIR_SINK_CHUNK)
        cap = WEIR_SINK_CHUNK;
    while (inf->out.len - inf->pos < cap && !inf->eof) {
        if (inf->pos > 0) {
            buf_consume(&inf->out, inf->pos);
            inf->pos = 0;
        }
        const struct csv_field *f;
        int rc = csv_reader_next(&inf->rd, &f, &inf->e);
        if (rc == 0) {
            inf->eof = 1;
            break;
        }
        if (rc == 1)
            rc = wh_put_row(WH_MYSQL, &inf->out, inf->rows->columns, inf->rows->ncolumns, f,
                            NULL, inf->rd.row, &inf->e);
        if (rc < 0) {
            inf->rc = rc;
            return -1;
        }
        inf->nrows++;
    }
    size_t n = inf->out.len - inf->pos;
    if (n > cap)
        n = cap;
    if (n)
        memcpy(dst, inf->out.data + inf->pos, n);
    inf->pos += n;
    return (int)n;
}

static void infile_end(void *ptr)
{
    (void)ptr;
}

static int infile_error(void *ptr, char *msg, unsigned int cap)
{
    struct infile *inf = ptr;
    snprintf(msg, cap, "%s", inf->rc ? inf->e.text : "local infile failed");
    return CR_UNKNOWN_ERROR;
}

static int connect_my(struct my_sink *s, struct weir_errmsg *e)
{
    pthread_once(&library_once, library_init);
    if (s->conn)
        mysql_close(s->conn);
    s->conn = mysql_init(NULL);
    if (!s->conn)
        return errmsg_set(e, WEIR_ENOMEM, "mysql %s: out of memory", s->masked);
    unsigned timeout = s->dsn.connect_timeout ? s->dsn.connect_timeout
                                              : WEIR_SINK_CONNECT_TIMEOUT_S;
    unsigned on = 1;
    my_bool yes = 1;
    mysql_options(s->conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (s->dsn.read_timeout)
        mysql_options(s->conn, MYSQL_OPT_READ_TIMEOUT, &s->dsn.read_timeout);
    if (s->dsn.write_timeout)
        mysql_options(s->conn, MYSQL_OPT_WRITE_TIMEOUT, &s->dsn.write_timeout);
    /* utf8mb4 always: wh.c's quoting and the values' checks assume it. */
    mysql_options(s->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(s->conn, MYSQL_OPT_LOCAL_INFILE, &on);
    if (s->dsn.ssl_ca)
        mysql_options(s->conn, MYSQL_OPT_SSL_CA, s->dsn.ssl_ca);
    if (s->dsn.ssl_cert)
        mysql_options(s->conn, MYSQL_OPT_SSL_CERT, s->dsn.ssl_cert);
    if (s->dsn.ssl_key)
        mysql_options(s->conn, MYSQL_OPT_SSL_KEY, s->dsn.ssl_key);
    if (s->dsn.ssl_mode && strcmp(s->dsn.ssl_mode, "disabled") != 0)
        mysql_options(s->conn, MYSQL_OPT_SSL_ENFORCE, &yes);
    if (s->dsn.ssl_mode && !strcmp(s->dsn.ssl_mode, "verify_identity"))
        mysql_options(s->conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
    mysql_set_local_infile_handler(s->conn, infile_init, infile_read, infile_end, infile_error,
                                   &s->inf);
    if (!mysql_real_connect(s->conn, s->dsn.host, s->dsn.user, s->dsn.password, s->dsn.db,
                            s->dsn.port, s->dsn.socket, 0))
        return errmsg_set(e, WEIR_ECLOSED, "mysql %s: cannot connect: %s (error %u)", s->masked,
                          mysql_error(s->conn), mysql_errno(s->conn));
    /* Strict: a value that does not fit is an error, not a silent 0 or a
     * cut string. Without NO_BACKSLASH_ESCAPES: wh_put_literal doubles
     * backslashes. UTC: DATETIME values are UTC, and TIMESTAMP columns
     * convert through the session zone. */
    if (mysql_query(s->conn, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,"
                             "NO_AUTO_VALUE_ON_ZERO', time_zone = '+00:00', autocommit = 1"))
        return fail(s, "setting up the session", e);
    return 0;
}

static void my_close(struct sink *base)
{
    struct my_sink *s = (struct my_sink *)base;
    if (!s)
        return;
    if (s->conn)
        mysql_close(s->conn);
    wh_mysql_dsn_release(&s->dsn);
    free(s);
}

static int my_open(const char *dsn, const char *table, const struct sink_options *opt,
                   struct sink **out, struct weir_errmsg *e)
{
    struct my_sink *s = calloc(1, sizeof *s);
    int rc;
    if (!s)
        return errmsg_set(e, WEIR_ENOMEM, "mysql: out of memory");
    s->base.ops = &sink_mysql_ops;
    s->opt = *opt;
    config_mask_dsn(dsn, s->masked, sizeof s->masked);
    rc = wh_mysql_dsn_parse(dsn, &s->dsn, e);
    if (rc)
        goto fail;
    rc = wh_table_parse(WH_MYSQL, table, &s->table, e);
    if (rc)
        goto fail;
    struct buf tb = BUF_INIT(sizeof s->table_text - 1);
    rc = wh_put_table(WH_MYSQL, &tb, &s->table);
    if (rc == 0)
        memcpy(s->table_text, tb.data, tb.len + 1);
    buf_release(&tb);
    if (rc) {
        rc = errmsg_set(e, WEIR_EINVAL, "mysql: table '%s' cannot be quoted", table);
        goto fail;
    }
    rc = connect_my(s, e);
    if (rc)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    my_close(&s->base);
    return rc;
}

/* The schema the table lives in, as a literal: its own or DATABASE(). */
static int put_schema(struct my_sink *s, struct buf *b)
{
    if (s->table.schema[0])
        return wh_put_literal(WH_MYSQL, b, s->table.schema, strlen(s->table.schema));
    return buf_puts(b, "DATABASE()");
}

/* Run a query and keep its result (NULL for none). */
static int query(struct my_sink *s, const char *sql, const char *step, MYSQL_RES **res,
                 struct weir_errmsg *e)
{
    if (mysql_query(s->conn, sql))
        return fail(s, step, e);
    if (res) {
        *res = mysql_store_result(s->conn);
        if (!*res && mysql_field_count(s->conn))
            return fail(s, step, e);
    }
    return 0;
}

/* The table's engine and columns; *exists 0 when there is no such table. */
static int describe(struct my_sink *s, struct buf *sql, int *exists, char *engine, size_t ecap,
                    MYSQL_RES **cols, struct weir_errmsg *e)
{
    MYSQL_RES *res = NULL;
    int rc;
    buf_reset(sql);
    rc = buf_puts(sql, "SELECT ENGINE, DATABASE() FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
    rc = rc ? rc : put_schema(s, sql);
    rc = rc ? rc : buf_puts(sql, " AND TABLE_NAME = ");
    rc = rc ? rc : wh_put_literal(WH_MYSQL, sql, s->table.name, strlen(s->table.name));
    if (rc)
        return errmsg_set(e, rc, "mysql: building a query: %s", weir_strerror(rc));
    rc = query(s, sql->data, "looking up the table", &res, e);
    if (rc)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    *exists = row != NULL;
    snprintf(engine, ecap, "%s", row && row[0] ? row[0] : "");
    mysql_free_result(res);
    if (!*exists) {
        if (!s->table.schema[0]) {
            rc = query(s, "SELECT DATABASE()", "looking up the database", &res, e);
            if (rc)
                return rc;
            row = mysql_fetch_row(res);
            int none = !row || !row[0];
            mysql_free_result(res);
            if (none)
                return errmsg_set(e, WEIR_ECONFIG,
                                  "mysql %s: table %s: no database: give db= in the DSN or "
                                  "write the table as db.name",
                                  s->masked, s->table_text);
        }
        return 0;
    }
    buf_reset(sql);
    rc = buf_puts(sql, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ");
    rc = rc ? rc : put_schema(s, sql);
    rc = rc ? rc : buf_puts(sql, " AND TABLE_NAME = ");
    rc = rc ? rc : wh_put_literal(WH_MYSQL, sql, s->table.name, strlen(s->table.name));
    rc = rc ? rc : buf_puts(sql, " ORDER BY ORDINAL_POSITION");
    if (rc)
        return errmsg_set(e, rc, "mysql: building a query: %s", weir_strerror(rc));
    return query(s, sql->data, "reading the table's columns", cols, e);
}

/* Create when missing, check engine and columns (outside the transaction). */
static int prepare_table(struct my_sink *s, const struct sink_rows *rows,
                         struct sink_load_stats *st, struct buf *sql, struct weir_errmsg *e)
{
    MYSQL_RES *cols = NULL;
    struct wh_existing_column *have = NULL;
    char engine[64];
    int exists, rc;
    rc = describe(s, sql, &exists, engine, sizeof engine, &cols, e);
    if (rc == WEIR_ECLOSED && lost(mysql_errno(s->conn))) {
        /* Nothing was changed yet: a server restarted since the last load
         * costs one reconnect, not a failed load. */
        log_info("mysql %s: connection lost, reconnecting", s->masked);
        rc = connect_my(s, e);
        if (rc == 0)
            rc = describe(s, sql, &exists, engine, sizeof engine, &cols, e);
    }
    if (rc)
        return rc;
    if (!exists) {
        if (s->opt.no_create)
            return errmsg_set(e, WEIR_ESCHEMA,
                              "mysql %s: table %s does not exist (and creating it is off)",
                              s->masked, s->table_text);
        buf_reset(sql);
        rc = wh_sql_create(WH_MYSQL, sql, &s->table, rows->columns, rows->ncolumns);
        if (rc)
            return errmsg_set(e, rc, "mysql: building CREATE TABLE: %s", weir_strerror(rc));
        rc = query(s, sql->data, "creating the table", NULL, e);
        if (rc == 0)
            rc = describe(s, sql, &exists, engine, sizeof engine, &cols, e);
        if (rc)
            return rc;
        st->created = 1;
    }
    if (strcasecmp(engine, "InnoDB") != 0) {
        rc = errmsg_set(e, WEIR_ESCHEMA,
                        "mysql %s: table %s uses the %s engine: a load must be one "
                        "transaction, so it needs InnoDB (ALTER TABLE ... ENGINE=InnoDB)",
                        s->masked, s->table_text, engine[0] ? engine : "unknown");
        goto done;
    }
    size_t nhave = cols ? (size_t)mysql_num_rows(cols) : 0;
    have = calloc(nhave ? nhave : 1, sizeof *have);
    if (!have) {
        rc = errmsg_set(e, WEIR_ENOMEM, "mysql: out of memory");
        goto done;
    }
    for (size_t i = 0; i < nhave; i++) {
        MYSQL_ROW row = mysql_fetch_row(cols);
        have[i].name = row && row[0] ? row[0] : "";
        have[i].type = row && row[1] ? row[1] : "";
    }
    char display[900];
    snprintf(display, sizeof display, "%s (mysql %s)", s->table_text, s->masked);
    rc = wh_match_columns(WH_MYSQL, display, rows->columns, rows->ncolumns, have, nhave, e);
done:
    free(have);
    if (cols)
        mysql_free_result(cols);
    return rc;
}

/* After a statement: fail on any warning or error it left (notes pass). */
static int check_warnings(struct my_sink *s, const char *step, struct weir_errmsg *e)
{
    if (mysql_warning_count(s->conn) == 0)
        return 0;
    MYSQL_RES *res = NULL;
    int rc = query(s, "SHOW WARNINGS", "reading warnings", &res, e);
    if (rc)
        return rc;
    MYSQL_ROW row;
    while (res && (row = mysql_fetch_row(res)) != NULL) {
        if (row[0] && strcmp(row[0], "Note") != 0) {
            rc = errmsg_set(e, WEIR_ESQL, "mysql %s: table %s: %s: %s %s: %s", s->masked,
                            s->table_text, step, row[0], row[1] ? row[1] : "",
                            row[2] ? row[2] : "");
            break;
        }
    }
    if (res)
        mysql_free_result(res);
    return rc;
}

static int load_data(struct my_sink *s, const struct sink_partition *part,
                     const struct sink_rows *rows, struct sink_load_stats *st, struct buf *sql,
                     int *refused, struct weir_errmsg *e)
{
    struct infile *inf = &s->inf;
    size_t max_row = s->opt.max_row_bytes ? s->opt.max_row_bytes : WEIR_SINK_MAX_ROW;
    int rc;
    *refused = 0;
    buf_reset(sql);
    rc = wh_sql_load_data(sql, &s->table, rows->columns, rows->ncolumns, part->start_ns);
    if (rc)
        return errmsg_set(e, rc, "mysql: building LOAD DATA: %s", weir_strerror(rc));
    memset(inf, 0, sizeof *inf);
    rc = csv_reader_init(&inf->rd, rows->ncolumns, max_row, rows->read, rows->ctx);
    if (rc)
        return errmsg_set(e, rc, "mysql: out of memory");
    buf_init(&inf->out, WEIR_SINK_CHUNK + 2 * max_row + 1024);
    inf->rows = rows;
    inf->active = 1;
    int failed = mysql_query(s->conn, sql->data);
    inf->active = 0;
    st->bytes = inf->rd.bytes;
    st->rows = inf->nrows;
    unsigned err = mysql_errno(s->conn);
    if (inf->rc) {
        /* Our own error (bad row, the row source): the server may have
         * taken the rows before it; the caller rolls them back. */
        rc = inf->rc;
        errmsg_set(e, rc, "mysql %s: table %s: %s", s->masked, s->table_text, inf->e.text);
    } else if (failed) {
        *refused = inf->rd.bytes == 0 && !inf->eof &&
                   (err == ER_NOT_ALLOWED_COMMAND || err == ER_LOAD_INFILE_CAPABILITY_DISABLED);
        rc = fail(s, "LOAD DATA LOCAL INFILE", e);
    } else if (mysql_affected_rows(s->conn) != inf->nrows) {
        rc = errmsg_set(e, WEIR_ESQL, "mysql %s: table %s: LOAD DATA took %llu rows, weir sent %llu (%s)",
                        s->masked, s->table_text,
                        (unsigned long long)mysql_affected_rows(s->conn),
                        (unsigned long long)inf->nrows, mysql_info(s->conn) ? mysql_info(s->conn) : "");
    } else {
        rc = check_warnings(s, "LOAD DATA", e);
    }
    csv_reader_release(&inf->rd);
    buf_release(&inf->out);
    return rc;
}

/* --- INSERT batches --------------------------------------------------------- */

struct batch {
    size_t nparams;             /* per row: columns + weir_partition */
    size_t cap_rows;
    size_t nrows;
    struct buf vals;            /* the values' text, back to back */
    size_t *off;                /* cap_rows * nparams offsets into vals */
    unsigned long *len;
    my_bool *null;
    MYSQL_BIND *bind;
};

static int run_batch(struct my_sink *s, const struct sink_rows *rows, struct batch *b,
                     MYSQL_STMT **full, struct buf *sql, struct weir_errmsg *e)
{
    MYSQL_STMT *stmt = b->nrows == b->cap_rows ? *full : NULL;
    int rc = 0;
    if (!stmt) {
        stmt = mysql_stmt_init(s->conn);
        buf_reset(sql);
        rc = wh_sql_insert(sql, &s->table, rows->columns, rows->ncolumns, b->nrows);
        if (rc)
            return errmsg_set(e, rc, "mysql: building INSERT: %s", weir_strerror(rc));
        if (!stmt || mysql_stmt_prepare(stmt, sql->data, sql->len)) {
            rc = fail(s, "preparing INSERT", e);
            if (stmt)
                mysql_stmt_close(stmt);
            return rc;
        }
        if (b->nrows == b->cap_rows)
            *full = stmt;
    }
    size_t np = b->nrows * b->nparams;
    for (size_t i = 0; i < np; i++) {
        MYSQL_BIND *bd = &b->bind[i];
        memset(bd, 0, sizeof *bd);
        bd->buffer_type = MYSQL_TYPE_STRING;
        bd->buffer = b->vals.data + b->off[i];
        bd->buffer_length = b->len[i];
        bd->length = &b->len[i];
        bd->is_null = &b->null[i];
    }
    if (mysql_stmt_bind_param(stmt, b->bind) || mysql_stmt_execute(stmt)) {
        unsigned err = mysql_stmt_errno(stmt);
        rc = errmsg_set(e, lost(err) || (err >= 2000 && err < 3000) ? WEIR_ECLOSED : WEIR_ESQL,
                        "mysql %s: table %s: INSERT: %s (error %u)", s->masked, s->table_text,
                        mysql_stmt_error(stmt), err);
    } else if (mysql_stmt_affected_rows(stmt) != b->nrows) {
        rc = errmsg_set(e, WEIR_ESQL, "mysql %s: table %s: INSERT took %llu rows, weir sent %zu",
                        s->masked, s->table_text,
                        (unsigned long long)mysql_stmt_affected_rows(stmt), b->nrows);
    } else {
        rc = check_warnings(s, "INSERT", e);
    }
    if (stmt != *full)
        mysql_stmt_close(stmt);
    b->nrows = 0;
    buf_reset(&b->vals);
    return rc;
}

static int insert_rows(struct my_sink *s, const struct sink_partition *part,
                       const struct sink_rows *rows, struct sink_load_stats *st, struct buf *sql,
                       struct weir_errmsg *e)
{
    size_t max_row = s->opt.max_row_bytes ? s->opt.max_row_bytes : WEIR_SINK_MAX_ROW;
    /* A statement carries at most 65535 parameters (the protocol's 16-bit
     * count) and, here, about 4 MiB of values: far under max_allowed_packet. */
    size_t nparams = rows->ncolumns + 1;
    size_t cap = s->opt.insert_batch_rows ? s->opt.insert_batch_rows : 1000;
    if (cap > 65535 / nparams)
        cap = 65535 / nparams;
    if (cap == 0)
        cap = 1;
    const size_t batch_bytes = 4u << 20;
    struct batch b = {.nparams = nparams, .cap_rows = cap};
    struct csv_reader rd;
    MYSQL_STMT *full = NULL;
    char partition[40];
    size_t plen = wh_format_partition(WH_MYSQL, part->start_ns, partition, sizeof partition);
    const struct csv_field *f;
    int rc = csv_reader_init(&rd, rows->ncolumns, max_row, rows->read, rows->ctx);
    if (rc)
        return errmsg_set(e, rc, "mysql: out of memory");
    buf_init(&b.vals, batch_bytes + 2 * max_row + 1024);
    b.off = calloc(cap * nparams, sizeof *b.off);
    b.len = calloc(cap * nparams, sizeof *b.len);
    b.null = calloc(cap * nparams, sizeof *b.null);
    b.bind = calloc(cap * nparams, sizeof *b.bind);
    if (!b.off || !b.len || !b.null || !b.bind) {
        rc = errmsg_set(e, WEIR_ENOMEM, "mysql: out of memory");
        goto done;
    }
    while ((rc = csv_reader_next(&rd, &f, e)) == 1) {
        size_t base = b.nrows * nparams;
        for (size_t i = 0; i <= rows->ncolumns; i++) {
            size_t at = b.vals.len;
            b.off[base + i] = at;
            b.null[base + i] = i < rows->ncolumns && f[i].null;
            if (i == rows->ncolumns)
                rc = buf_append(&b.vals, partition, plen);
            else if (!f[i].null)
                rc = wh_put_value(WH_MYSQL, &b.vals, &rows->columns[i], &f[i], rd.row, i + 1, e);
            if (rc) {
                if (rc == WEIR_ELIMIT || rc == WEIR_ENOMEM)
                    errmsg_set(e, rc, "row %llu: %s", (unsigned long long)rd.row,
                               weir_strerror(rc));
                goto done;
            }
            b.len[base + i] = b.vals.len - at;
        }
        b.nrows++;
        st->rows++;
        if (b.nrows == cap || b.vals.len >= batch_bytes) {
            rc = run_batch(s, rows, &b, &full, sql, e);
            if (rc)
                goto done;
        }
    }
    if (rc == 0 && b.nrows)
        rc = run_batch(s, rows, &b, &full, sql, e);
done:
    st->bytes = rd.bytes;
    if (rc < 0 && rc != WEIR_ECLOSED && rc != WEIR_ESQL && strncmp(e->text, "mysql", 5) != 0) {
        char msg[sizeof e->text];
        snprintf(msg, sizeof msg, "%s", e->text);
        errmsg_set(e, rc, "mysql %s: table %s: %s", s->masked, s->table_text, msg);
    }
    if (full)
        mysql_stmt_close(full);
    csv_reader_release(&rd);
    buf_release(&b.vals);
    free(b.off);
    free(b.len);
    free(b.null);
    free(b.bind);
    return rc;
}

static int my_load(struct sink *base, const struct sink_partition *part,
                   const struct sink_rows *rows, struct sink_load_stats *st,
                   struct weir_errmsg *e)
{
    struct my_sink *s = (struct my_sink *)base;
    struct buf sql = BUF_INIT(1u << 20);
    int rc, began = 0;
    if (!s->conn && (rc = connect_my(s, e)) != 0)
        goto done;
    rc = prepare_table(s, rows, st, &sql, e);
    if (rc)
        goto done;
    rc = query(s, "START TRANSACTION", "START TRANSACTION", NULL, e);
    if (rc)
        goto done;
    began = 1;
    buf_reset(&sql);
    rc = wh_sql_delete(WH_MYSQL, &sql, &s->table, part);
    if (rc) {
        rc = errmsg_set(e, rc, "mysql: building DELETE: %s", weir_strerror(rc));
        goto done;
    }
    rc = query(s, sql.data, "deleting the partition's old rows", NULL, e);
    if (rc)
        goto done;
    st->deleted = mysql_affected_rows(s->conn);
    int use_insert = s->opt.mysql_method == SINK_MYSQL_INSERT ||
                     (s->opt.mysql_method == SINK_MYSQL_AUTO && s->no_local_infile);
    if (!use_insert) {
        int refused;
        st->method = "load data";
        rc = load_data(s, part, rows, st, &sql, &refused, e);
        if (rc && refused && s->opt.mysql_method == SINK_MYSQL_AUTO) {
            /* Refused before a byte was read: the rows are untouched and
             * the transaction still open; INSERT them instead, from now on. */
            log_warn("mysql %s: the server refuses LOAD DATA LOCAL INFILE (%s); using INSERT",
                     s->masked, e->text);
            s->no_local_infile = 1;
            use_insert = 1;
            rc = 0;
        }
        if (rc)
            goto done;
    }
    if (use_insert) {
        st->method = "insert";
        rc = insert_rows(s, part, rows, st, &sql, e);
        if (rc)
            goto done;
    }
    rc = query(s, "COMMIT", "COMMIT", NULL, e);
    began = 0;
done:
    if (rc && began && s->conn && !lost(mysql_errno(s->conn)))
        mysql_query(s->conn, "ROLLBACK");
    if (rc && s->conn && lost(mysql_errno(s->conn))) {
        /* Reconnect at the start of the next load. */
        mysql_close(s->conn);
        s->conn = NULL;
    }
    buf_release(&sql);
    return rc;
}

const struct sink_ops sink_mysql_ops = {
    .name = "mysql",
    .open = my_open,
    .load_partition = my_load,
    .close = my_close,
};
