/*
 * sink.c - the warehouse sinks' front door: picks the backend, checks what
 * every backend would otherwise check, and the ready-made row sources.
 */
#include "sinks/sink.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/limits.h"
#include "schema/json.h"

/* Partitions are whole hours or days; whole seconds keep the partition
 * literals (wh.h) free of fractions. */
#define WEIR_SINK_PARTITION_ALIGN_NS INT64_C(1000000000)

int sink_open(enum config_output_kind kind, const char *dsn, const char *table,
              const struct sink_options *opt, struct sink **out, struct weir_errmsg *e)
{
    static const struct sink_options defaults;
    *out = NULL;
    if (!opt)
        opt = &defaults;
    switch (kind) {
    case CONFIG_OUTPUT_POSTGRES:
        return sink_postgres_ops.open(dsn, table, opt, out, e);
    case CONFIG_OUTPUT_MYSQL:
        return sink_mysql_ops.open(dsn, table, opt, out, e);
    default:
        return errmsg_set(e, WEIR_EUNSUPPORTED, "%s: not a warehouse sink",
                          config_output_kind_name(kind));
    }
}

int sink_load_partition(struct sink *s, const struct sink_partition *part,
                        const struct sink_rows *rows, struct sink_load_stats *stats,
                        struct weir_errmsg *e)
{
    struct sink_load_stats dummy;
    if (!stats)
        stats = &dummy;
    memset(stats, 0, sizeof *stats);
    if (part->start_ns >= part->end_ns || part->start_ns % WEIR_SINK_PARTITION_ALIGN_NS ||
        part->end_ns % WEIR_SINK_PARTITION_ALIGN_NS)
        return errmsg_set(e, WEIR_EINVAL,
                          "partition [%lld, %lld): want start < end, both on whole seconds",
                          (long long)part->start_ns, (long long)part->end_ns);
    int rc = sink_check_columns(rows->columns, rows->ncolumns, e);
    if (rc)
        return rc;
    return s->ops->load_partition(s, part, rows, stats, e);
}

void sink_close(struct sink *s)
{
    if (s)
        s->ops->close(s);
}

const char *sink_type_name(enum sink_type t)
{
    switch (t) {
    case SINK_BIGINT: return "bigint";
    case SINK_DOUBLE: return "double";
    case SINK_DECIMAL: return "decimal";
    case SINK_VARCHAR: return "varchar";
    case SINK_BOOLEAN: return "boolean";
    case SINK_TIMESTAMP: return "timestamp";
    case SINK_TIMESTAMPTZ: return "timestamptz";
    case SINK_DATE: return "date";
    case SINK_JSON: return "json";
    }
    return "?";
}

static int parse_int(const char *s, size_t n, int *out)
{
    int v = 0;
    if (n == 0 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int sink_type_parse(const char *s, struct sink_column *col)
{
    static const struct {
        const char *name;
        enum sink_type type;
    } names[] = {
        {"bigint", SINK_BIGINT},     {"int8", SINK_BIGINT},
        {"integer", SINK_BIGINT},    {"int", SINK_BIGINT},
        {"int4", SINK_BIGINT},       {"smallint", SINK_BIGINT},
        {"tinyint", SINK_BIGINT},    {"uinteger", SINK_BIGINT},
        {"usmallint", SINK_BIGINT},  {"utinyint", SINK_BIGINT},
        {"double", SINK_DOUBLE},     {"float8", SINK_DOUBLE},
        {"double precision", SINK_DOUBLE},
        {"float", SINK_DOUBLE},      {"real", SINK_DOUBLE},
        {"float4", SINK_DOUBLE},
        {"varchar", SINK_VARCHAR},   {"text", SINK_VARCHAR},
        {"boolean", SINK_BOOLEAN},   {"bool", SINK_BOOLEAN},
        {"timestamp", SINK_TIMESTAMP},
        {"timestamptz", SINK_TIMESTAMPTZ},
        {"timestamp with time zone", SINK_TIMESTAMPTZ},
        {"date", SINK_DATE},         {"json", SINK_JSON},
    };
    col->precision = col->scale = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) {
            col->type = names[i].type;
            return 0;
        }
    size_t n = strlen(s);
    /* Integers past int64 (DuckDB's HUGEINT, UBIGINT) stay exact as
     * decimals; plain decimal is DuckDB's default width. */
    if (!strcasecmp(s, "decimal") || !strcasecmp(s, "numeric") || !strcasecmp(s, "hugeint") ||
        !strcasecmp(s, "ubigint")) {
        col->type = SINK_DECIMAL;
        col->precision = !strcasecmp(s, "ubigint") ? 20 : 38;
        return 0;
    }
    /* decimal(P,S) / numeric(P,S) */
    const char *lp = strchr(s, '(');
    if (!lp || s[n - 1] != ')' ||
        !((lp - s == 7 && !strncasecmp(s, "decimal", 7)) ||
          (lp - s == 7 && !strncasecmp(s, "numeric", 7))))
        return WEIR_EPARSE;
    const char *comma = strchr(lp, ',');
    if (!comma)
        return WEIR_EPARSE;
    int p, sc;
    if (!parse_int(lp + 1, (size_t)(comma - lp - 1), &p) ||
        !parse_int(comma + 1, (size_t)(s + n - 1 - comma - 1), &sc))
        return WEIR_EPARSE;
    col->type = SINK_DECIMAL;
    col->precision = p;
    col->scale = sc;
    return 0;
}

int sink_check_columns(const struct sink_column *cols, size_t n, struct weir_errmsg *e)
{
    if (n == 0 || n > WEIR_SINK_MAX_COLUMNS)
        return errmsg_set(e, WEIR_EINVAL, "a load needs 1 to %d columns, not %zu",
                          WEIR_SINK_MAX_COLUMNS, n);
    for (size_t i = 0; i < n; i++) {
        const char *name = cols[i].name;
        size_t len = name ? strlen(name) : 0;
        if (len == 0 || len > 63 || !json_utf8_valid(name, len))
            return errmsg_set(e, WEIR_EINVAL,
                              "column %zu: a name must be 1 to 63 bytes of UTF-8", i + 1);
        if (!strcasecmp(name, SINK_PARTITION_COLUMN))
            return errmsg_set(e, WEIR_EINVAL,
                              "column %zu: '%s' is the column weir adds itself (the "
                              "partition start); rename it in the SELECT",
                              i + 1, name);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(name, cols[j].name))
                return errmsg_set(e, WEIR_EINVAL,
                                  "columns %zu and %zu are both named '%s' (MySQL "
                                  "compares names without case)",
                                  j + 1, i + 1, name);
        if ((unsigned)cols[i].type > SINK_JSON)
            return errmsg_set(e, WEIR_EINVAL, "column %s: unknown type %d", name,
                              (int)cols[i].type);
        if (cols[i].type == SINK_DECIMAL &&
            (cols[i].precision < 1 || cols[i].precision > 38 || cols[i].scale < 0 ||
             cols[i].scale > cols[i].precision || cols[i].scale > 30))
            return errmsg_set(e, WEIR_EINVAL,
                              "column %s: decimal(%d,%d): want precision 1 to 38 and scale "
                              "0 to 30, at most the precision",
                              name, cols[i].precision, cols[i].scale);
    }
    return 0;
}

void sink_fd_source_init(struct sink_fd_source *src, int fd)
{
    src->fd = fd;
    src->bytes = 0;
}

int sink_fd_source_read(void *ctx, const char **data, size_t *len, struct weir_errmsg *e)
{
    struct sink_fd_source *src = ctx;
    for (;;) {
        ssize_t n = read(src->fd, src->chunk, sizeof src->chunk);
        if (n >= 0) {
            *data = src->chunk;
            *len = (size_t)n;
            src->bytes += (uint64_t)n;
            return 0;
        }
        if (errno != EINTR)
            return errmsg_set(e, weir_from_errno(errno), "reading rows: %s", strerror(errno));
    }
}

void sink_mem_source_init(struct sink_mem_source *src, const char *data, size_t len)
{
    src->data = data;
    src->len = len;
    src->done = 0;
}

int sink_mem_source_read(void *ctx, const char **data, size_t *len, struct weir_errmsg *e)
{
    struct sink_mem_source *src = ctx;
    (void)e;
    *data = src->data;
    *len = src->done ? 0 : src->len;
    src->done = 1;
    return 0;
}
