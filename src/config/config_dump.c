/*
 * config_dump.c - the effective config as YAML, and the check that the
 * files a config names are there (both for `weir check`).
 *
 * The dump is meant to be read back: config_load of it gives the same
 * config (paths are already absolute, strings are double-quoted with
 * "${" written as "$${"), except that DSN passwords are masked. The unit
 * tests hold it to that.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Decode one UTF-8 sequence (the loader only lets valid UTF-8 in). */
static unsigned utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned cp = s[0];
    int n = cp < 0x80 ? 0 : cp < 0xe0 ? 1 : cp < 0xf0 ? 2 : 3;
    if (n)
        cp &= 0x3fu >> n;
    for (int i = 1; i <= n && s[i]; i++)
        cp = (cp << 6) | (s[i] & 0x3f);
    *p = s + 1;
    for (int i = 1; i <= n && **p; i++)
        (*p)++;
    return cp;
}

/* Code points libyaml reads back exactly inside double quotes. Others are
 * escaped: controls, C1 (U+0085 would be folded into a space as a line
 * break), U+2028/U+2029 (line breaks too), the BOM and non-characters. */
static int yaml_verbatim(unsigned cp)
{
    if (cp >= 0x20 && cp <= 0x7e)
        return 1;
    if (cp >= 0xa0 && cp <= 0xd7ff)
        return cp != 0x2028 && cp != 0x2029;
    if (cp >= 0xe000 && cp <= 0xfffd)
        return cp != 0xfeff;
    return cp >= 0x10000 && cp <= 0x10ffff;
}

/* A YAML double-quoted string that the loader reads back to s. */
static int put_str(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = buf_putc(b, '"');
    while (*p && !rc) {
        const unsigned char *start = p;
        unsigned cp = utf8_next(&p);
        if (cp == '"' || cp == '\\')
            rc = buf_appendf(b, "\\%c", (char)cp);
        else if (cp == '$' && *p == '{')
            rc = buf_puts(b, "$$"); /* "${" would be expanded on reading */
        else if (yaml_verbatim(cp))
            rc = buf_append(b, start, (size_t)(p - start));
        else if (cp <= 0xff)
            rc = buf_appendf(b, "\\x%02x", cp);
        else
            rc = buf_appendf(b, "\\u%04x", cp);
    }
    return rc ? rc : buf_putc(b, '"');
}

static int put_kv_str(struct buf *b, int indent, const char *key, const char *val)
{
    int rc = buf_appendf(b, "%*s%s: ", indent, "", key);
    if (!rc)
        rc = val ? put_str(b, val) : buf_puts(b, "null");
    return rc ? rc : buf_putc(b, '\n');
}

static int put_kv_size(struct buf *b, int indent, const char *key, uint64_t v)
{
    char t[32];
    config_format_size(v, t, sizeof t);
    return buf_appendf(b, "%*s%s: %s\n", indent, "", key, t);
}

static int put_kv_dur(struct buf *b, int indent, const char *key, int64_t v)
{
    char t[32];
    config_format_duration(v, t, sizeof t);
    return buf_appendf(b, "%*s%s: %s\n", indent, "", key, t);
}

static int put_kv_addr(struct buf *b, int indent, const char *key, const struct config_addr *a)
{
    char t[300];
    config_format_addr(a, t, sizeof t);
    return put_kv_str(b, indent, key, t);
}

/* A librdkafka option "key=value"; values of keys that name a password or
 * a secret (sasl.password, ssl.key.password, ...) are masked. */
static int put_option(struct buf *b, int indent, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)kl, kv);
    int secret = strstr(key, "password") || strstr(key, "secret");
    int rc = buf_appendf(b, "%*s%s: ", indent, "", key);
    rc = rc ? rc : put_str(b, secret ? "***" : eq ? eq + 1 : "");
    return rc ? rc : buf_puts(b, "\n");
}

static int put_kafka_sink(struct buf *b, int indent, const struct config_kafka_sink *k)
{
    int rc = put_kv_str(b, indent, "brokers", k->brokers);
    if (!rc)
        rc = put_kv_str(b, indent, "topic", k->topic);
    if (!rc && k->key)
        rc = put_kv_str(b, indent, "key", k->key);
    if (!rc && k->noptions)
        rc = buf_appendf(b, "%*soptions:\n", indent, "");
    for (size_t i = 0; i < k->noptions && !rc; i++)
        rc = put_option(b, indent + 2, k->options[i]);
    return rc;
}

static int put_cidr(struct buf *b, const struct config_cidr *c)
{
    char t[INET6_ADDRSTRLEN];
    if (!inet_ntop(c->family, c->addr, t, sizeof t))
        return WEIR_EINVAL;
    return buf_appendf(b, "\"%s/%d\"", t, c->prefix);
}

static int put_source(struct buf *b, const struct config_source *s)
{
    int rc = buf_puts(b, "    source:\n");
    if (s->kind == CONFIG_SOURCE_KAFKA) {
        const struct config_kafka_source *k = &s->kafka;
        rc = rc ? rc : buf_puts(b, "      kafka:\n");
        rc = rc ? rc : put_kv_str(b, 8, "brokers", k->brokers);
        rc = rc ? rc : buf_puts(b, "        topic: [");
        for (size_t i = 0; i < k->ntopics && !rc; i++) {
            rc = i ? buf_puts(b, ", ") : 0;
            rc = rc ? rc : put_str(b, k->topics[i]);
        }
        rc = rc ? rc : buf_puts(b, "]\n");
        rc = rc ? rc : put_kv_str(b, 8, "group", k->group);
        rc = rc ? rc : buf_appendf(b, "        format: %s\n",
                                   k->format == CONFIG_PAYLOAD_PROTOBUF ? "protobuf" : "json");
        if (k->format == CONFIG_PAYLOAD_PROTOBUF) {
            rc = rc ? rc : put_kv_str(b, 8, "descriptor_set", k->descriptor_set);
            rc = rc ? rc : put_kv_str(b, 8, "message", k->message);
        }
        rc = rc ? rc : buf_appendf(b, "        batch:\n          max_records: %llu\n",
                                   (unsigned long long)k->batch.max_records);
        rc = rc ? rc : put_kv_size(b, 10, "max_bytes", k->batch.max_bytes);
        rc = rc ? rc : put_kv_dur(b, 10, "max_wait", k->batch.max_wait_ns);
        if (k->noptions)
            rc = rc ? rc : buf_puts(b, "        options:\n");
        for (size_t i = 0; i < k->noptions && !rc; i++)
            rc = put_option(b, 10, k->options[i]);
    } else {
        rc = rc ? rc : put_kv_addr(b, 6, "tcp", &s->tcp);
        rc = rc ? rc : put_kv_dur(b, 6, "idle_timeout", s->idle_timeout_ns);
    }
    rc = rc ? rc : buf_puts(b, "      framing: ndjson\n");
    if (s->nallow) {
        rc = rc ? rc : buf_puts(b, "      allow: [");
        for (size_t i = 0; i < s->nallow && !rc; i++) {
            rc = i ? buf_puts(b, ", ") : 0;
            rc = rc ? rc : put_cidr(b, &s->allow[i]);
        }
        rc = rc ? rc : buf_puts(b, "]\n");
    }
    if (s->tls.cert) {
        rc = rc ? rc : buf_puts(b, "      tls:\n");
        rc = rc ? rc : put_kv_str(b, 8, "cert", s->tls.cert);
        rc = rc ? rc : put_kv_str(b, 8, "key", s->tls.key);
        if (s->tls.ca)
            rc = rc ? rc : put_kv_str(b, 8, "ca", s->tls.ca);
        rc = rc ? rc : put_kv_dur(b, 8, "handshake_timeout", s->tls.handshake_timeout_ns);
    }
    return rc;
}

static const char *fsync_name(enum config_fsync f)
{
    return f == CONFIG_FSYNC_ALWAYS ? "always" : f == CONFIG_FSYNC_NEVER ? "never" : "group";
}

static int put_pipeline(struct buf *b, const struct config_pipeline *p)
{
    int rc = buf_appendf(b, "  - name: %s\n", p->name);
    rc = rc ? rc : put_source(b, &p->source);
    rc = rc ? rc : put_kv_str(b, 4, "schema", p->schema);
    rc = rc ? rc : buf_appendf(b, "    lax: %s\n    format_assert: %s\n",
                               p->lax ? "true" : "false", p->format_assert ? "true" : "false");
    rc = rc ? rc : put_kv_str(b, 4, "time_field", p->time_field);
    rc = rc ? rc : buf_appendf(b, "    time_unit: %s\n    partition: %s\n",
                               config_time_unit_name(p->time_unit),
                               config_partition_name(p->partition));
    rc = rc ? rc : put_kv_dur(b, 4, "time_max_ahead", p->time_max_ahead_ns);
    rc = rc ? rc : put_kv_dur(b, 4, "time_max_age", p->time_max_age_ns);
    rc = rc ? rc : buf_appendf(b, "    compaction: %s\n    fsync: %s\n",
                               p->compaction == CONFIG_COMPACTION_MANUAL ? "manual" : "auto",
                               fsync_name(p->fsync));
    rc = rc ? rc : put_kv_dur(b, 4, "fsync_interval", p->fsync_interval_ns);
    rc = rc ? rc : put_kv_size(b, 4, "fsync_bytes", p->fsync_bytes);
    rc = rc ? rc : put_kv_size(b, 4, "segment_bytes", p->segment_bytes);
    rc = rc ? rc : put_kv_size(b, 4, "max_record", p->max_record);
    rc = rc ? rc : buf_puts(b, "    retention:\n");
    rc = rc ? rc : put_kv_dur(b, 6, "raw", p->retention.raw_ns);
    rc = rc ? rc : put_kv_dur(b, 6, "parquet", p->retention.parquet_ns);
    rc = rc ? rc : put_kv_dur(b, 6, "quarantine", p->retention.quarantine_ns);
    if (p->transform) {
        rc = rc ? rc : buf_puts(b, "    transform:\n");
        rc = rc ? rc : put_kv_str(b, 6, "sql", p->transform);
        rc = rc ? rc : put_kv_str(b, 6, "name", p->transform_name);
    } else {
        rc = rc ? rc : buf_puts(b, "    transform: null\n");
    }
    if (p->sink_kafka) {
        rc = rc ? rc : buf_puts(b, "    sink:\n      kafka:\n");
        rc = rc ? rc : put_kafka_sink(b, 8, p->sink_kafka);
    } else {
        rc = rc ? rc : buf_puts(b, "    sink: null\n");
    }
    return rc;
}

static int put_output(struct buf *b, const struct config_output *o)
{
    char masked[4096];
    int rc = 0;
    switch (o->kind) {
    case CONFIG_OUTPUT_LAKE:
        return buf_puts(b, "      - lake\n");
    case CONFIG_OUTPUT_POSTGRES:
    case CONFIG_OUTPUT_MYSQL:
        config_mask_dsn(o->dsn, masked, sizeof masked);
        rc = buf_appendf(b, "      - %s:\n", config_output_kind_name(o->kind));
        rc = rc ? rc : put_kv_str(b, 10, "dsn", masked);
        return rc ? rc : put_kv_str(b, 10, "table", o->table);
    case CONFIG_OUTPUT_PARQUET:
        rc = buf_puts(b, "      - parquet:\n");
        return rc ? rc : put_kv_str(b, 10, "path", o->path);
    case CONFIG_OUTPUT_KAFKA:
        rc = buf_puts(b, "      - kafka:\n");
        return rc ? rc : put_kafka_sink(b, 10, &o->kafka);
    }
    return WEIR_EINVAL;
}

static int put_model(struct buf *b, const struct config_model *m)
{
    int rc = buf_appendf(b, "  - name: %s\n", m->name);
    rc = rc ? rc : put_kv_str(b, 4, "sql", m->sql);
    rc = rc ? rc : buf_puts(b, "    inputs: [");
    for (size_t i = 0; i < m->ninputs && !rc; i++)
        rc = buf_appendf(b, "%s%s", i ? ", " : "", m->inputs[i]);
    rc = rc ? rc : buf_appendf(b, "]\n    grain: %s\n    outputs:\n",
                               config_partition_name(m->grain));
    for (size_t i = 0; i < m->noutputs && !rc; i++)
        rc = put_output(b, &m->outputs[i]);
    return rc;
}

int config_dump(const struct weir_config *cfg, struct buf *out)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const struct config_limits *l = &cfg->limits;
    int rc = buf_appendf(out, "# effective config of %s: defaults filled in, "
                         "passwords masked\n", cfg->file);
    rc = rc ? rc : put_kv_str(out, 0, "data_dir", cfg->data_dir);
    rc = rc ? rc : put_kv_str(out, 0, "node", cfg->node);
    rc = rc ? rc : buf_appendf(out, "workers: %d\n", cfg->workers);
    rc = rc ? rc : put_kv_dur(out, 0, "grace", cfg->grace_ns);
    rc = rc ? rc : put_kv_dur(out, 0, "drain_timeout", cfg->drain_timeout_ns);
    if (cfg->metrics_enabled)
        rc = rc ? rc : put_kv_addr(out, 0, "metrics", &cfg->metrics);
    else
        rc = rc ? rc : buf_puts(out, "metrics: off\n");
    rc = rc ? rc : buf_appendf(out, "log:\n  level: %s\n  format: %s\n",
                               levels[cfg->log_level], cfg->log_format == LOG_JSON ? "json" : "text");
    rc = rc ? rc : buf_puts(out, "limits:\n");
    rc = rc ? rc : put_kv_size(out, 2, "max_record", l->max_record);
    rc = rc ? rc : buf_appendf(out, "  max_depth: %d\n  max_connections: %d\n",
                               l->max_depth, l->max_connections);
    rc = rc ? rc : put_kv_size(out, 2, "max_pending", l->max_pending);
    rc = rc ? rc : buf_appendf(out, "  max_open_partitions: %d\n", l->max_open_partitions);
    rc = rc ? rc : buf_puts(out, "pipelines:\n");
    for (size_t i = 0; i < cfg->npipelines && !rc; i++) {
        /* A transform's dataset is made by loading (config.h), not written. */
        if (cfg->pipelines[i].source.kind == CONFIG_SOURCE_DERIVED)
            continue;
        rc = put_pipeline(out, &cfg->pipelines[i]);
    }
    rc = rc ? rc : buf_puts(out, cfg->ndimensions ? "dimensions:\n" : "dimensions: {}\n");
    for (size_t i = 0; i < cfg->ndimensions && !rc; i++)
        rc = put_kv_str(out, 2, cfg->dimensions[i].name, cfg->dimensions[i].path);
    rc = rc ? rc : buf_puts(out, cfg->nmodels ? "models:\n" : "models: []\n");
    for (size_t i = 0; i < cfg->nmodels && !rc; i++)
        rc = put_model(out, &cfg->models[i]);
    return rc;
}

/* ---- files ---- */

static int file_error(const struct weir_config *cfg, int line, const char *key,
                      const char *path, const char *why, struct weir_errmsg *err)
{
    if (line > 0)
        return errmsg_set(err, WEIR_ECONFIG, "%s:%d: %s: %s: %s", cfg->file, line, key, path, why);
    return errmsg_set(err, WEIR_ECONFIG, "%s: %s: %s: %s", cfg->file, key, path, why);
}

/* path must be a readable regular file (want_dir 0) or, if it exists, a
 * directory (want_dir 1). */
static int check_path(const struct weir_config *cfg, int line, const char *key,
                      const char *path, int want_dir, struct weir_errmsg *err)
{
    struct stat st;
    if (!path)
        return 0;
    if (stat(path, &st) != 0) {
        if (want_dir && errno == ENOENT)
            return 0; /* created when first needed */
        return file_error(cfg, line, key, path, strerror(errno), err);
    }
    if (want_dir && !S_ISDIR(st.st_mode))
        return file_error(cfg, line, key, path, "exists and is not a directory", err);
    if (!want_dir && !S_ISREG(st.st_mode))
        return file_error(cfg, line, key, path, "not a regular file", err);
    if (access(path, want_dir ? (R_OK | W_OK | X_OK) : R_OK) != 0)
        return file_error(cfg, line, key, path, strerror(errno), err);
    return 0;
}

int config_check_files(const struct weir_config *cfg, struct weir_errmsg *err)
{
    char key[128];
    int rc = check_path(cfg, 0, "data_dir", cfg->data_dir, 1, err);
    for (size_t i = 0; i < cfg->npipelines && !rc; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        const struct {
            const char *name, *path;
        } files[] = {
            /* A derived dataset's schema is written by serve and replay. */
            {"schema", p->source.kind == CONFIG_SOURCE_DERIVED ? NULL : p->schema},
            {"transform", p->transform},
            {"source.kafka.descriptor_set",
             p->source.kind == CONFIG_SOURCE_KAFKA ? p->source.kafka.descriptor_set : NULL},
            {"source.tls.cert", p->source.tls.cert},
            {"source.tls.key", p->source.tls.key},
            {"source.tls.ca", p->source.tls.ca},
        };
        for (size_t f = 0; f < sizeof files / sizeof files[0] && !rc; f++) {
            snprintf(key, sizeof key, "pipelines[%zu].%s", i, files[f].name);
            rc = check_path(cfg, p->line, key, files[f].path, 0, err);
        }
    }
    for (size_t i = 0; i < cfg->ndimensions && !rc; i++) {
        snprintf(key, sizeof key, "dimensions.%s", cfg->dimensions[i].name);
        rc = check_path(cfg, cfg->dimensions[i].line, key, cfg->dimensions[i].path, 0, err);
    }
    for (size_t i = 0; i < cfg->nmodels && !rc; i++) {
        const struct config_model *m = &cfg->models[i];
        snprintf(key, sizeof key, "models[%zu].sql", i);
        rc = check_path(cfg, m->line, key, m->sql, 0, err);
        for (size_t o = 0; o < m->noutputs && !rc; o++) {
            if (m->outputs[o].kind != CONFIG_OUTPUT_PARQUET)
                continue;
            snprintf(key, sizeof key, "models[%zu].outputs[%zu].parquet.path", i, o);
            rc = check_path(cfg, m->line, key, m->outputs[o].path, 1, err);
        }
    }
    return rc;
}
