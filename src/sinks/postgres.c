/*
 * postgres.c - the PostgreSQL sink: libpq, one transaction per partition,
 * rows through COPY ... FROM STDIN (FORMAT csv). The only file that
 * includes libpq-fe.h.
 *
 * A load, all inside BEGIN ... COMMIT:
 *   pg_advisory_xact_lock(hashtext('weir.load:' || table))  -- loads of one
 *       table take turns, so two loads of a partition cannot both delete
 *       and then both insert;
 *   to_regclass(table) -> CREATE TABLE + CREATE INDEX when missing
 *       (PostgreSQL's DDL is transactional: a failed first load leaves no
 *       table behind);
 *   the columns from pg_attribute, checked against the load's (wh.h);
 *   DELETE the partition's range; COPY the rows; the server's row count
 *   checked against ours; COMMIT.
 * Any failure ends in ROLLBACK, or in the server discarding the
 * transaction when the connection dies. docs/warehouse.md tells the user.
 */
#include "sinks/sink.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/log.h"
#include "sinks/csv.h"
#include "sinks/wh.h"

struct pg_sink {
    struct sink base;
    PGconn *conn;
    char *dsn;                  /* as given (may hold a password): for reconnects */
    char masked[256];           /* the DSN for messages */
    char table_text[600];       /* the table, quoted, for SQL parameters and messages */
    struct wh_table table;
    struct sink_options opt;
};

/* The server's message on one line, without "ERROR:  " or trailing blanks. */
static void tidy(const char *msg, char *out, size_t cap)
{
    size_t k = 0;
    if (!msg)
        msg = "";
    if (!strncmp(msg, "ERROR:  ", 8))
        msg += 8;
    for (; *msg && k + 1 < cap; msg++)
        out[k++] = *msg == '\n' || *msg == '\t' ? ' ' : *msg;
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
}

/* Fail a step: WEIR_ECLOSED when the connection is gone, else WEIR_ESQL. */
static int fail(struct pg_sink *s, PGresult *res, const char *step, struct weir_errmsg *e)
{
    char msg[700];
    tidy(res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn), msg, sizeof msg);
    if (!msg[0])
        tidy(PQerrorMessage(s->conn), msg, sizeof msg);
    int code = PQstatus(s->conn) == CONNECTION_OK ? WEIR_ESQL : WEIR_ECLOSED;
    return errmsg_set(e, code, "postgres %s: table %s: %s: %s", s->masked, s->table_text, step,
                      msg[0] ? msg : "failed");
}

static int connect_pg(struct pg_sink *s, struct weir_errmsg *e)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", WEIR_SINK_CONNECT_TIMEOUT_S);
    /* Keywords before dbname are defaults the DSN may override; the
     * client encoding after it is forced (identifier quoting in wh.c
     * relies on UTF-8). Keepalives notice a silently dead server. */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "dbname",
                          "client_encoding", NULL};
    const char *vals[] = {timeout, "weir", "30", "10", "3", s->dsn, "UTF8", NULL};
    /* libpq's own message for a malformed DSN quotes the text around the
     * mistake, which may be a password: check first, and say it in our
     * words. Nor is the DSN shown, even masked: masking finds passwords
     * in well-formed DSNs only ("password=two words" would show "words"). */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(s->dsn, &perr);
    if (!opts) {
        PQfreemem(perr);
        return errmsg_set(e, WEIR_ECONFIG,
                          "postgres: the DSN is not a libpq connection string (key=value "
                          "pairs, values with spaces in 'quotes', or a postgresql:// URI; "
                          "docs/warehouse.md)");
    }
    PQconninfoFree(opts);
    if (s->conn)
        PQfinish(s->conn);
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn)
        return errmsg_set(e, WEIR_ENOMEM, "postgres %s: out of memory", s->masked);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char msg[700];
        tidy(PQerrorMessage(s->conn), msg, sizeof msg);
        return errmsg_set(e, WEIR_ECLOSED, "postgres %s: cannot connect: %s", s->masked, msg);
    }
    /* Timestamps without an offset are UTC, as in MySQL and in weir. */
    PGresult *res = PQexec(s->conn, "SET TIME ZONE 'UTC'");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = fail(s, res, "SET TIME ZONE", e);
    PQclear(res);
    return rc;
}

static void pg_close(struct sink *base)
{
    struct pg_sink *s = (struct pg_sink *)base;
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    if (s->dsn) {
        explicit_bzero(s->dsn, strlen(s->dsn));
        free(s->dsn);
    }
    free(s);
}

static int pg_open(const char *dsn, const char *table, const struct sink_options *opt,
                   struct sink **out, struct weir_errmsg *e)
{
    struct pg_sink *s = calloc(1, sizeof *s);
    int rc;
    if (!s)
        return errmsg_set(e, WEIR_ENOMEM, "postgres: out of memory");
    s->base.ops = &sink_postgres_ops;
    s->opt = *opt;
    config_mask_dsn(dsn, s->masked, sizeof s->masked);
    rc = wh_table_parse(WH_POSTGRES, table, &s->table, e);
    if (rc)
        goto fail;
    struct buf tb = BUF_INIT(sizeof s->table_text - 1);
    rc = wh_put_table(WH_POSTGRES, &tb, &s->table);
    if (rc == 0)
        memcpy(s->table_text, tb.data, tb.len + 1);
    buf_release(&tb);
    if (rc) {
        rc = errmsg_set(e, WEIR_EINVAL, "postgres: table '%s' cannot be quoted", table);
        goto fail;
    }
    s->dsn = strdup(dsn);
    if (!s->dsn) {
        rc = errmsg_set(e, WEIR_ENOMEM, "postgres: out of memory");
        goto fail;
    }
    rc = connect_pg(s, e);
    if (rc)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    pg_close(&s->base);
    return rc;
}

/* Run a statement that returns no rows; *tuples gets its row count. */
static int exec_cmd(struct pg_sink *s, const char *sql, const char *step, uint64_t *tuples,
                    struct weir_errmsg *e)
{
    PGresult *res = PQexec(s->conn, sql);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = fail(s, res, step, e);
    else if (tuples)
        *tuples = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

/* One text parameter, rows expected. The caller PQclear()s *out. */
static int exec_query(struct pg_sink *s, const char *sql, const char *param, const char *step,
                      PGresult **out, struct weir_errmsg *e)
{
    const char *params[1] = {param};
    *out = PQexecParams(s->conn, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*out) == PGRES_TUPLES_OK)
        return 0;
    int rc = fail(s, *out, step, e);
    PQclear(*out);
    *out = NULL;
    return rc;
}

/* Lock, create when missing, check the columns. */
static int prepare_table(struct pg_sink *s, const struct sink_rows *rows,
                         struct sink_load_stats *st, struct buf *sql, struct weir_errmsg *e)
{
    PGresult *res = NULL;
    struct wh_existing_column *have = NULL;
    char lockkey[700];
    snprintf(lockkey, sizeof lockkey, "weir.load:%s", s->table_text);
    int rc = exec_query(s, "SELECT pg_advisory_xact_lock(hashtext($1))", lockkey,
                        "taking the load lock", &res, e);
    if (rc)
        return rc;
    PQclear(res);
    rc = exec_query(s, "SELECT to_regclass($1)::oid", s->table_text, "looking up the table",
                    &res, e);
    if (rc)
        return rc;
    int missing = PQntuples(res) != 1 || PQgetisnull(res, 0, 0);
    PQclear(res);
    res = NULL;
    if (missing) {
        if (s->opt.no_create)
            return errmsg_set(e, WEIR_ESCHEMA,
                              "postgres %s: table %s does not exist (and creating it is off)",
                              s->masked, s->table_text);
        buf_reset(sql);
        rc = wh_sql_create(WH_POSTGRES, sql, &s->table, rows->columns, rows->ncolumns);
        if (rc)
            return errmsg_set(e, rc, "postgres: building CREATE TABLE: %s", weir_strerror(rc));
        rc = exec_cmd(s, sql->data, "creating the table", NULL, e);
        if (rc)
            return rc;
        buf_reset(sql);
        rc = wh_sql_create_index(sql, &s->table);
        if (rc)
            return errmsg_set(e, rc, "postgres: building CREATE INDEX: %s", weir_strerror(rc));
        rc = exec_cmd(s, sql->data, "creating the weir_partition index", NULL, e);
        if (rc)
            return rc;
        st->created = 1;
    }
    rc = exec_query(s,
                    "SELECT a.attname, t.typname FROM pg_catalog.pg_attribute a"
                    " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
                    " WHERE a.attrelid = to_regclass($1) AND a.attnum > 0"
                    " AND NOT a.attisdropped ORDER BY a.attnum",
                    s->table_text, "reading the table's columns", &res, e);
    if (rc)
        return rc;
    size_t nhave = (size_t)PQntuples(res);
    have = calloc(nhave ? nhave : 1, sizeof *have);
    if (!have) {
        PQclear(res);
        return errmsg_set(e, WEIR_ENOMEM, "postgres: out of memory");
    }
    for (size_t i = 0; i < nhave; i++) {
        have[i].name = PQgetvalue(res, (int)i, 0);
        have[i].type = PQgetvalue(res, (int)i, 1);
    }
    char display[900];
    snprintf(display, sizeof display, "%s (postgres %s)", s->table_text, s->masked);
    rc = wh_match_columns(WH_POSTGRES, display, rows->columns, rows->ncolumns, have, nhave, e);
    free(have);
    PQclear(res);
    return rc;
}

/* Stream the rows into an open COPY. On a data error the COPY is aborted
 * (the server then fails it) and the error is returned. */
static int copy_rows(struct pg_sink *s, const struct sink_partition *part,
                     const struct sink_rows *rows, struct sink_load_stats *st,
                     struct weir_errmsg *e)
{
    struct csv_reader rd;
    size_t max_row = s->opt.max_row_bytes ? s->opt.max_row_bytes : WEIR_SINK_MAX_ROW;
    struct buf out = BUF_INIT(WEIR_SINK_CHUNK + 2 * max_row + 1024);
    char partition[40];
    const struct csv_field *f;
    int rc;
    wh_format_partition(WH_POSTGRES, part->start_ns, partition, sizeof partition);
    rc = csv_reader_init(&rd, rows->ncolumns, max_row, rows->read, rows->ctx);
    if (rc)
        return errmsg_set(e, rc, "postgres: out of memory");
    while ((rc = csv_reader_next(&rd, &f, e)) == 1) {
        rc = wh_put_row(WH_POSTGRES, &out, rows->columns, rows->ncolumns, f, partition, rd.row,
                        e);
        if (rc)
            break;
        st->rows++;
        if (out.len >= WEIR_SINK_CHUNK) {
            if (PQputCopyData(s->conn, out.data, (int)out.len) != 1) {
                rc = fail(s, NULL, "sending rows (COPY)", e);
                break;
            }
            buf_reset(&out);
        }
    }
    if (rc == 0 && out.len && PQputCopyData(s->conn, out.data, (int)out.len) != 1)
        rc = fail(s, NULL, "sending rows (COPY)", e);
    st->bytes = rd.bytes;
    csv_reader_release(&rd);
    buf_release(&out);
    if (rc) {
        /* Make the server fail the COPY; what it says is not news. */
        if (PQputCopyEnd(s->conn, "weir: load aborted") == 1) {
            PGresult *res;
            while ((res = PQgetResult(s->conn)) != NULL)
                PQclear(res);
        }
        return rc;
    }
    if (PQputCopyEnd(s->conn, NULL) != 1)
        return fail(s, NULL, "ending COPY", e);
    PGresult *res = PQgetResult(s->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = fail(s, res, "COPY", e);
    } else {
        uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
        if (n != st->rows)
            rc = errmsg_set(e, WEIR_ESQL,
                            "postgres %s: table %s: COPY took %llu rows, weir sent %llu",
                            s->masked, s->table_text, (unsigned long long)n,
                            (unsigned long long)st->rows);
    }
    PQclear(res);
    while ((res = PQgetResult(s->conn)) != NULL)
        PQclear(res);
    return rc;
}

static int pg_load(struct sink *base, const struct sink_partition *part,
                   const struct sink_rows *rows, struct sink_load_stats *st,
                   struct weir_errmsg *e)
{
    struct pg_sink *s = (struct pg_sink *)base;
    struct buf sql = BUF_INIT(1u << 20);
    int rc = 0, began = 0;
    st->method = "copy";
    if (PQstatus(s->conn) != CONNECTION_OK && (rc = connect_pg(s, e)) != 0)
        goto done;
    rc = exec_cmd(s, "BEGIN", "BEGIN", NULL, e);
    if (rc == WEIR_ECLOSED) {
        /* The server went away since the last load (a restart): nothing
         * was started, so connect again and begin once more. */
        log_info("postgres %s: connection lost, reconnecting", s->masked);
        rc = connect_pg(s, e);
        if (rc == 0)
            rc = exec_cmd(s, "BEGIN", "BEGIN", NULL, e);
    }
    if (rc)
        goto done;
    began = 1;
    rc = prepare_table(s, rows, st, &sql, e);
    if (rc)
        goto done;
    buf_reset(&sql);
    if ((rc = wh_sql_delete(WH_POSTGRES, &sql, &s->table, part)) != 0)
        goto built;
    rc = exec_cmd(s, sql.data, "deleting the partition's old rows", &st->deleted, e);
    if (rc)
        goto done;
    buf_reset(&sql);
    if ((rc = wh_sql_copy(&sql, &s->table, rows->columns, rows->ncolumns)) != 0)
        goto built;
    PGresult *copy = PQexec(s->conn, sql.data);
    if (PQresultStatus(copy) != PGRES_COPY_IN) {
        rc = fail(s, copy, "starting COPY", e);
        PQclear(copy);
        goto done;
    }
    PQclear(copy);
    rc = copy_rows(s, part, rows, st, e);
    if (rc)
        goto done;
    rc = exec_cmd(s, "COMMIT", "COMMIT", NULL, e);
    began = 0;
done:
    if (rc && began && PQstatus(s->conn) == CONNECTION_OK) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
    buf_release(&sql);
    return rc;
built:
    errmsg_set(e, rc, "postgres: building a statement: %s", weir_strerror(rc));
    goto done;
}

const struct sink_ops sink_postgres_ops = {
    .name = "postgres",
    .open = pg_open,
    .load_partition = pg_load,
    .close = pg_close,
};
