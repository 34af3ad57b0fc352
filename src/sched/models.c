/*
 * models.c - running one partition of a SQL model and recording its state
 * (models.h has the protocol; docs/models.md the user's guide).
 *
 * The result of the model's SELECT is materialised once in a DuckDB temp
 * table, so every output (the lake file, each warehouse load) gets the same
 * rows even when the SQL is not deterministic, and the SELECT runs once.
 */
#include "sched/models.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "sinks/kafka_out.h"
#include "sinks/parquet_out.h"
#include "sinks/sink.h"
#include "sql/sql.h"
#include "store/lake.h"
#include "store/partition.h"
#include "store/segment.h"
#include "store/tablelog.h"

#define RESULT_TABLE "__weir_result"

/* Longest SQL built here (views over many files). */
#define MODEL_SQL_MAX (256u << 20)

int64_t model_backoff_ns(unsigned failures)
{
    int64_t s = WEIR_MODEL_RETRY_BASE_S;
    for (unsigned i = 1; i < failures && s < WEIR_MODEL_RETRY_MAX_S; i++)
        s *= 2;
    if (s > WEIR_MODEL_RETRY_MAX_S)
        s = WEIR_MODEL_RETRY_MAX_S;
    return s * WTIME_NS_PER_S;
}

int model_has_lake(const struct config_model *m)
{
    for (size_t i = 0; i < m->noutputs; i++)
        if (m->outputs[i].kind == CONFIG_OUTPUT_LAKE)
            return 1;
    return 0;
}

static enum part_grain grain_of(enum config_partition p)
{
    return p == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
}

static int dataset_dir(const struct weir_config *cfg, const char *name, char *out,
                       size_t cap, struct weir_errmsg *e)
{
    if ((size_t)snprintf(out, cap, "%s/%s", cfg->data_dir, name) >= cap)
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s: path too long", cfg->data_dir, name);
    return 0;
}

int model_check(const struct weir_config *cfg, const struct config_model *m,
                struct weir_errmsg *e)
{
    enum part_grain g = grain_of(m->grain);
    for (size_t i = 0; i < m->ninputs; i++) {
        const struct config_pipeline *p = config_pipeline(cfg, m->inputs[i]);
        const struct config_model *im = p ? NULL : config_model(cfg, m->inputs[i]);
        if (!p && !im)
            return errmsg_set(e, WEIR_ECONFIG, "model %s: input %s is neither a "
                              "pipeline nor a model", m->name, m->inputs[i]);
        if (im && !model_has_lake(im))
            return errmsg_set(e, WEIR_ECONFIG, "model %s reads model %s, which has no "
                              "lake output: add `- lake` to its outputs", m->name,
                              im->name);
        enum part_grain ig = grain_of(p ? p->partition : im->grain);
        if (g == PART_HOUR && ig == PART_DAY)
            return errmsg_set(e, WEIR_ECONFIG, "model %s: grain hour, but input %s is "
                              "partitioned by day: make the model's grain day",
                              m->name, m->inputs[i]);
    }
    return 0;
}

/* ---- digests and readiness -------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    h ^= 0xff;
    return h * 1099511628211ULL;
}

/* 1 if the file's partition lies in [start, end). */
static int file_in(const struct tl_file *f, int64_t start, int64_t end)
{
    enum part_grain g;
    int64_t s;
    if (!part_key_parse(f->partition, strlen(f->partition), &g, &s))
        return 0;
    return s >= start && s < end;
}

struct input_info {
    int settled;
    int has_data;
    uint64_t digest;
};

static int pipeline_input(const struct weir_config *cfg, const struct config_pipeline *p,
                          int64_t start, int64_t end, int64_t now,
                          struct input_info *in, struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    struct seg_list segs = {0};
    enum part_grain ig = grain_of(p->partition);
    int64_t istart = 0;
    int rc;

    memset(in, 0, sizeof *in);
    if ((rc = dataset_dir(cfg, p->name, dir, sizeof dir, e)))
        return rc;
    if ((rc = part_start(start, ig, &istart)))
        return errmsg_set(e, rc, "model input %s: bad partition", p->name);
    /* The input partitions [istart, end) must be closed. */
    int64_t last_end = istart;
    while (last_end < end)
        last_end += part_len_ns(ig);
    in->settled = now >= last_end + cfg->grace_ns;
    if ((rc = tl_open(dir, &tl, e)) || (rc = tl_snapshot(tl, 0, &s, e)))
        goto out;
    in->digest = 14695981039346656037ULL;
    for (size_t i = 0; i < s.nfiles; i++)
        if (file_in(&s.files[i], istart, last_end)) {
            in->has_data = 1;
            in->digest = fnv(in->digest, s.files[i].path);
        }
    if (in->settled) {
        if ((rc = seg_list(cfg->data_dir, p->name, "raw", &segs, e)))
            goto out;
        for (size_t i = 0; i < segs.n; i++) {
            const struct seg_entry *se = &segs.v[i];
            if (se->part_start >= istart && se->part_start < last_end &&
                !tl_snapshot_absorbed(&s, se->name)) {
                in->settled = 0;
                break;
            }
        }
    }
out:
    seg_list_release(&segs);
    tl_snapshot_release(&s);
    tl_free(tl);
    return rc;
}

/* Find "key": in json and return a pointer to the value, or NULL. The
 * texts parsed here are the ones state_json writes. */
static const char *json_member(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? p + strlen(pat) : NULL;
}

/* Copy the JSON string at p (pointing at its quote) into out, unescaped
 * (\uXXXX beyond ASCII becomes '?': only messages are stored that way). */
static void json_str(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return;
    if (!p || *p != '"') {
        out[0] = '\0';
        return;
    }
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                int k;
                for (k = 1; k <= 4 && isxdigit((unsigned char)p[k]); k++)
                    v = v * 16 + (unsigned)(isdigit((unsigned char)p[k])
                                                ? p[k] - '0'
                                                : (tolower((unsigned char)p[k]) - 'a' + 10));
                p += k - 1;
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            default: c = *p; break;
            }
        }
        if (n + 1 < cap)
            out[n++] = c;
    }
    out[n] = '\0';
}

static int64_t json_time(const char *p)
{
    char t[64];
    int64_t ns = 0;
    json_str(p, t, sizeof t);
    if (wtime_parse_rfc3339(t, strlen(t), &ns))
        return 0;
    return ns;
}

static uint64_t json_u64(const char *p)
{
    return p ? strtoull(p, NULL, 10) : 0;
}

static void state_parse(const char *key, const char *json, struct model_state *st)
{
    enum part_grain g;
    memset(st, 0, sizeof *st);
    snprintf(st->key, sizeof st->key, "%s", key);
    part_key_parse(key, strlen(key), &g, &st->start_ns);
    char status[16];
    json_str(json_member(json, "status"), status, sizeof status);
    st->ok = strcmp(status, "ok") == 0;
    st->at_ns = json_time(json_member(json, "at"));
    st->next_try_ns = json_time(json_member(json, "next_try"));
    st->rows = json_u64(json_member(json, "rows"));
    st->attempts = (unsigned)json_u64(json_member(json, "attempts"));
    json_str(json_member(json, "inputs"), st->inputs, sizeof st->inputs);
    json_str(json_member(json, "error"), st->error, sizeof st->error);
}

static int state_json(const struct model_state *st, struct buf *b)
{
    char at[64], next[64];
    wtime_format_rfc3339(st->at_ns, 9, at, sizeof at);
    wtime_format_rfc3339(st->next_try_ns, 9, next, sizeof next);
    int rc = buf_appendf(b, "{\"status\":\"%s\",\"at\":\"%s\",\"rows\":%" PRIu64
                            ",\"attempts\":%u,\"next_try\":\"%s\",\"inputs\":",
                         st->ok ? "ok" : "failed", at, st->rows, st->attempts, next);
    rc = rc ? rc : buf_put_json_string(b, st->inputs, strlen(st->inputs));
    rc = rc ? rc : buf_puts(b, ",\"error\":");
    rc = rc ? rc : buf_put_json_string(b, st->error, strlen(st->error));
    return rc ? rc : buf_putc(b, '}');
}

/* The state of partition key in snapshot s; 0 if there is none. */
static int state_get(const struct tl_snapshot *s, const char *key, struct model_state *st)
{
    char k[64];
    snprintf(k, sizeof k, MODEL_STATE_PREFIX "%s", key);
    const struct tl_app *a = tl_snapshot_app(s, k);
    if (!a)
        return 0;
    state_parse(key, a->json, st);
    return 1;
}

/* A model input's partition is settled when its last run is ok for the
 * inputs it has now, or when it never ran and never will (its own inputs
 * are settled and hold no data: an hour without telemetry). */
static int model_input(const struct weir_config *cfg, const struct config_model *im,
                       int64_t start, int64_t end, int64_t now, struct input_info *in,
                       struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    enum part_grain ig = grain_of(im->grain);
    int rc;

    memset(in, 0, sizeof *in);
    in->settled = 1;
    in->digest = 14695981039346656037ULL;
    if ((rc = dataset_dir(cfg, im->name, dir, sizeof dir, e)))
        return rc;
    if ((rc = tl_open(dir, &tl, e)) || (rc = tl_snapshot(tl, 0, &s, e)))
        goto out;
    for (int64_t p = start; p < end; p += part_len_ns(ig)) {
        char key[PART_KEY_MAX];
        struct model_state st;
        struct model_ready r;
        part_key_format(p, ig, key, sizeof key);
        if ((rc = model_partition_ready(cfg, im, p, now, &r, e)))
            goto out;
        if (state_get(&s, key, &st) ? !st.ok || strcmp(st.inputs, r.inputs) != 0
                                    : !r.settled || r.has_data)
            in->settled = 0;
    }
    for (size_t i = 0; i < s.nfiles; i++)
        if (file_in(&s.files[i], start, end)) {
            in->has_data = 1;
            in->digest = fnv(in->digest, s.files[i].path);
        }
out:
    tl_snapshot_release(&s);
    tl_free(tl);
    return rc;
}

int model_partition_ready(const struct weir_config *cfg, const struct config_model *m,
                          int64_t start_ns, int64_t now_ns, struct model_ready *r,
                          struct weir_errmsg *e)
{
    int64_t end = part_end(start_ns, grain_of(m->grain));
    size_t used = 0;
    int rc;

    memset(r, 0, sizeof *r);
    r->settled = 1;
    for (size_t i = 0; i < m->ninputs; i++) {
        struct input_info in;
        const struct config_pipeline *p = config_pipeline(cfg, m->inputs[i]);
        const struct config_model *im = p ? NULL : config_model(cfg, m->inputs[i]);
        if (p)
            rc = pipeline_input(cfg, p, start_ns, end, now_ns, &in, e);
        else if (im)
            rc = model_input(cfg, im, start_ns, end, now_ns, &in, e);
        else
            rc = errmsg_set(e, WEIR_ECONFIG, "model %s: unknown input %s", m->name,
                            m->inputs[i]);
        if (rc)
            return rc;
        r->settled &= in.settled;
        r->has_data |= in.has_data;
        int k = snprintf(r->inputs + used, sizeof r->inputs - used, "%s=%016" PRIx64 ";",
                         m->inputs[i], in.digest);
        if (k < 0 || (size_t)k >= sizeof r->inputs - used)
            return errmsg_set(e, WEIR_ELIMIT, "model %s: too many inputs", m->name);
        used += (size_t)k;
    }
    return 0;
}

/* ---- listing states and planning ------------------------------------------ */

static int open_model_log(const struct weir_config *cfg, const struct config_model *m,
                          struct tablelog **tl, struct tl_snapshot *s,
                          struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    int rc = dataset_dir(cfg, m->name, dir, sizeof dir, e);
    if (rc || (rc = tl_open(dir, tl, e)))
        return rc;
    return tl_snapshot(*tl, 0, s, e);
}

int model_states(const struct weir_config *cfg, const struct config_model *m,
                 struct model_state **v, size_t *n, struct weir_errmsg *e)
{
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    size_t plen = strlen(MODEL_STATE_PREFIX);
    int rc;

    *v = NULL;
    *n = 0;
    if ((rc = open_model_log(cfg, m, &tl, &s, e)))
        goto out;
    *v = calloc(s.napp ? s.napp : 1, sizeof **v);
    if (!*v) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    /* Keys sort as "run:date=..." and the keys' dates sort in time order. */
    for (size_t i = 0; i < s.napp; i++)
        if (strncmp(s.app[i].key, MODEL_STATE_PREFIX, plen) == 0)
            state_parse(s.app[i].key + plen, s.app[i].json, &(*v)[(*n)++]);
out:
    tl_snapshot_release(&s);
    tl_free(tl);
    return rc;
}

static int push_start(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == x)
            return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        int64_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return WEIR_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Partitions (of grain g) where the inputs have committed files. */
static int candidates(const struct weir_config *cfg, const struct config_model *m,
                      int64_t **v, size_t *n, size_t *cap, struct weir_errmsg *e)
{
    enum part_grain g = grain_of(m->grain);
    int rc = 0;
    for (size_t i = 0; i < m->ninputs && !rc; i++) {
        char dir[PATH_MAX];
        struct tablelog *tl = NULL;
        struct tl_snapshot s = {0};
        if ((rc = dataset_dir(cfg, m->inputs[i], dir, sizeof dir, e)))
            break;
        if (!(rc = tl_open(dir, &tl, e)) && !(rc = tl_snapshot(tl, 0, &s, e))) {
            for (size_t k = 0; k < s.nfiles && !rc; k++) {
                enum part_grain fg;
                int64_t fs, ms;
                if (!part_key_parse(s.files[k].partition, strlen(s.files[k].partition),
                                    &fg, &fs) || part_start(fs, g, &ms))
                    continue;
                if ((rc = push_start(v, n, cap, ms)))
                    rc = errmsg_set(e, rc, "out of memory");
            }
        }
        tl_snapshot_release(&s);
        tl_free(tl);
    }
    return rc;
}

int model_plan(const struct weir_config *cfg, const struct config_model *m,
               int64_t now_ns, int64_t **starts, size_t *n, struct weir_errmsg *e)
{
    int64_t *cand = NULL;
    size_t nc = 0, cap = 0, out = 0;
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    int rc;

    *starts = NULL;
    *n = 0;
    if ((rc = candidates(cfg, m, &cand, &nc, &cap, e)) ||
        (rc = open_model_log(cfg, m, &tl, &s, e)))
        goto out;
    if (nc)
        qsort(cand, nc, sizeof *cand, cmp_i64);
    for (size_t i = 0; i < nc; i++) {
        struct model_ready r;
        struct model_state st;
        char key[PART_KEY_MAX];
        if ((rc = model_partition_ready(cfg, m, cand[i], now_ns, &r, e)))
            goto out;
        if (!r.settled || !r.has_data)
            continue;
        part_key_format(cand[i], grain_of(m->grain), key, sizeof key);
        int have = state_get(&s, key, &st);
        int need = !have || strcmp(st.inputs, r.inputs) != 0 ||
                   (!st.ok && now_ns >= st.next_try_ns);
        if (need)
            cand[out++] = cand[i];
    }
    *starts = cand;
    *n = out;
    cand = NULL;
out:
    free(cand);
    tl_snapshot_release(&s);
    tl_free(tl);
    return rc;
}

/* ---- SQL views ---------------------------------------------------------------- */

static int hive_types(enum part_grain g, struct buf *b)
{
    return buf_puts(b, g == PART_HOUR ? ", hive_partitioning = true, hive_types = "
                                        "{'date': 'DATE', 'hour': 'INTEGER'}"
                                      : ", hive_partitioning = true, hive_types = "
                                        "{'date': 'DATE'}");
}

/* SELECT over the files of snapshot s in [start, end) (all when start ==
 * end == 0), or NULL-typed partition columns when there are none. */
static int files_sql(const char *dir, const struct tl_snapshot *s, enum part_grain g,
                     int64_t start, int64_t end, struct buf *b)
{
    size_t any = 0;
    int rc = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        if ((start == 0 && end == 0) || file_in(&s->files[i], start, end))
            any++;
    if (!any)
        return buf_puts(b, g == PART_HOUR
                               ? "SELECT CAST(NULL AS DATE) AS \"date\", "
                                 "CAST(NULL AS INTEGER) AS \"hour\" WHERE false"
                               : "SELECT CAST(NULL AS DATE) AS \"date\" WHERE false");
    rc = buf_puts(b, "SELECT * FROM read_parquet([");
    any = 0;
    for (size_t i = 0; i < s->nfiles && !rc; i++) {
        if (!((start == 0 && end == 0) || file_in(&s->files[i], start, end)))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, s->files[i].path);
        rc = any++ ? buf_puts(b, ", ") : 0;
        rc = rc ? rc : sql_quote_string(b, p);
    }
    rc = rc ? rc : buf_puts(b, "], union_by_name = true");
    rc = rc ? rc : hive_types(g, b);
    return rc ? rc : buf_putc(b, ')');
}

int model_lake_view_sql(const struct weir_config *cfg, const struct config_model *m,
                        struct buf *b, struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    int rc = dataset_dir(cfg, m->name, dir, sizeof dir, e);
    if (rc || (rc = open_model_log(cfg, m, &tl, &s, e)))
        goto out;
    if ((rc = files_sql(dir, &s, grain_of(m->grain), 0, 0, b)))
        rc = errmsg_set(e, rc, "model %s: the view is too large", m->name);
out:
    tl_snapshot_release(&s);
    tl_free(tl);
    return rc;
}

static int create_view(struct sql_db *db, const char *name, const char *select,
                       struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(MODEL_SQL_MAX);
    int rc = buf_puts(&q, "CREATE OR REPLACE TEMP VIEW ");
    rc = rc ? rc : sql_quote_ident(&q, name);
    rc = rc ? rc : buf_puts(&q, " AS ");
    rc = rc ? rc : buf_puts(&q, select);
    rc = rc ? errmsg_set(e, rc, "view %s: too large", name) : sql_exec(db, q.data, e);
    buf_release(&q);
    return rc;
}

int model_dimension_views(const struct weir_config *cfg, struct sql_db *db,
                          struct weir_errmsg *e)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->ndimensions && !rc; i++) {
        const struct config_dimension *d = &cfg->dimensions[i];
        struct buf q = BUF_INIT(1 << 20);
        size_t n = strlen(d->path);
        int parquet = n > 8 && strcasecmp(d->path + n - 8, ".parquet") == 0;
        int tsv = strstr(d->path, ".tsv") != NULL;
        rc = buf_puts(&q, parquet ? "SELECT * FROM read_parquet(" : "SELECT * FROM read_csv(");
        rc = rc ? rc : sql_quote_string(&q, d->path);
        if (!parquet)
            rc = rc ? rc : buf_puts(&q, tsv ? ", header = true, delim = '\t')"
                                            : ", header = true)");
        else
            rc = rc ? rc : buf_putc(&q, ')');
        if (!rc && (rc = create_view(db, d->name, q.data, e)))
            rc = errmsg_set(e, rc, "dimension %s (%s): %s", d->name, d->path, e->text);
        buf_release(&q);
    }
    return rc;
}

static int input_views(const struct weir_config *cfg, const struct config_model *m,
                       struct sql_db *db, int64_t start, int64_t end,
                       struct weir_errmsg *e)
{
    int rc = 0;
    for (size_t i = 0; i < m->ninputs && !rc; i++) {
        const struct config_pipeline *p = config_pipeline(cfg, m->inputs[i]);
        const struct config_model *im = p ? NULL : config_model(cfg, m->inputs[i]);
        char dir[PATH_MAX];
        struct tablelog *tl = NULL;
        struct tl_snapshot s = {0};
        struct lake_table *t = NULL;
        struct buf q = BUF_INIT(MODEL_SQL_MAX);
        enum part_grain ig = grain_of(p ? p->partition : im ? im->grain : m->grain);
        int64_t istart = start;
        part_start(start, ig, &istart);
        if ((rc = dataset_dir(cfg, m->inputs[i], dir, sizeof dir, e)) ||
            (rc = tl_open(dir, &tl, e)) || (rc = tl_snapshot(tl, 0, &s, e)))
            goto next;
        if (p) {
            /* Typed from the schema, so an input whose files lack a column
             * (older schema) still has it, NULL. */
            if ((rc = lake_table_new(cfg, p, NULL, &t, e)) ||
                (rc = lake_check_columns(t, &s, e)))
                goto next;
            rc = buf_puts(&q, "SELECT * FROM (");
            rc = rc ? rc : lake_sql_empty(t, LAKE_SQL_PARTCOLS, &q);
            rc = rc ? rc : buf_puts(&q, " UNION ALL BY NAME ");
        }
        rc = rc ? rc : files_sql(dir, &s, ig, istart, end, &q);
        if (p)
            rc = rc ? rc : buf_putc(&q, ')');
        if (rc) {
            rc = errmsg_set(e, rc, "input %s: the view is too large", m->inputs[i]);
            goto next;
        }
        rc = create_view(db, m->inputs[i], q.data, e);
    next:
        buf_release(&q);
        lake_table_free(t);
        tl_snapshot_release(&s);
        tl_free(tl);
    }
    return rc;
}

/* ---- one run ------------------------------------------------------------------ */

/* The model's SELECT as "CREATE TEMP TABLE result AS (...)": trailing
 * blanks and semicolons dropped, a newline before the ')' so a final
 * line comment cannot swallow it. */
static int result_sql(const char *path, struct buf *q, struct weir_errmsg *e)
{
    struct buf text = BUF_INIT(WEIR_MODEL_MAX_SQL);
    int rc = fsio_read_file(path, &text);
    if (rc) {
        rc = errmsg_set(e, rc, "%s: %s", path,
                        rc == WEIR_ELIMIT ? "too large" : weir_strerror(rc));
        goto out;
    }
    size_t n = text.len;
    while (n && (isspace((unsigned char)text.data[n - 1]) || text.data[n - 1] == ';'))
        n--;
    if (n == 0) {
        rc = errmsg_set(e, WEIR_ECONFIG, "%s: no SQL", path);
        goto out;
    }
    rc = buf_puts(q, "CREATE OR REPLACE TEMP TABLE " RESULT_TABLE " AS (\n");
    rc = rc ? rc : buf_append(q, text.data, n);
    rc = rc ? rc : buf_puts(q, "\n)");
    if (rc)
        rc = errmsg_set(e, rc, "%s: too large", path);
out:
    buf_release(&text);
    return rc;
}

struct rescols {
    char **names, **types;
    size_t n;
    struct sink_column *sc;
};

static void rescols_release(struct rescols *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->names[i]);
        free(c->types[i]);
    }
    free(c->names);
    free(c->types);
    free(c->sc);
    memset(c, 0, sizeof *c);
}

static int describe(struct sql_db *db, const char *from, struct rescols *c,
                    struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(MODEL_SQL_MAX);
    struct sql_result *res = NULL;
    int rc = buf_appendf(&q, "DESCRIBE SELECT * FROM %s", from);
    if (rc || (rc = sql_query(db, q.data, &res, e)))
        goto out;
    while ((rc = sql_result_next(res, e)) == 1) {
        struct buf n = BUF_INIT(1 << 16), t = BUF_INIT(1 << 16);
        char **nn = realloc(c->names, (c->n + 1) * sizeof *nn);
        if (nn)
            c->names = nn;
        char **nt = nn ? realloc(c->types, (c->n + 1) * sizeof *nt) : NULL;
        if (nt)
            c->types = nt;
        if (!nn || !nt || sql_result_text(res, 0, &n) || sql_result_text(res, 1, &t) ||
            buf_putc(&n, 0) || buf_putc(&t, 0)) {
            buf_release(&n);
            buf_release(&t);
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        c->names[c->n] = buf_detach(&n, NULL);
        c->types[c->n] = buf_detach(&t, NULL);
        c->n++;
    }
    if (rc > 0)
        rc = 0;
out:
    sql_result_free(res);
    buf_release(&q);
    return rc;
}

/* Write the result as one Parquet file of partition key; describe it in f. */
static int write_lake(struct tablelog *tl, struct sql_db *db, const char *key,
                      int64_t start, int64_t end, struct rescols *cols,
                      struct tl_file *f, struct tl_column **fcols, char *rel,
                      size_t relcap, struct weir_errmsg *e)
{
    char tmp[PATH_MAX];
    struct buf q = BUF_INIT(1 << 16);
    uint64_t bytes = 0;
    int64_t rows = 0;
    int rc;

    for (size_t i = 0; i < cols->n; i++)
        if (strcasecmp(cols->names[i], "date") == 0 || strcasecmp(cols->names[i], "hour") == 0)
            return errmsg_set(e, WEIR_ESCHEMA, "column %s: date and hour are the lake's "
                              "partition columns; rename it in the SELECT", cols->names[i]);
    if ((rc = tl_tmp_file(tl, key, tmp, sizeof tmp, e)))
        goto out;
    rc = buf_puts(&q, "COPY " RESULT_TABLE " TO ");
    rc = rc ? rc : sql_quote_string(&q, tmp);
    rc = rc ? rc : buf_puts(&q, " (FORMAT parquet, COMPRESSION zstd)");
    if (rc || (rc = sql_exec(db, q.data, e)) ||
        (rc = sql_query_int64(db, "SELECT count(*) FROM " RESULT_TABLE, &rows, e)) ||
        (rc = tl_place_file(tl, tmp, rel, relcap, &bytes, e)))
        goto out;
    *fcols = calloc(cols->n ? cols->n : 1, sizeof **fcols);
    if (!*fcols) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cols->n; i++) {
        (*fcols)[i].name = cols->names[i];
        (*fcols)[i].type = cols->types[i];
    }
    memset(f, 0, sizeof *f);
    f->path = rel;
    f->partition = key;
    f->rows = (uint64_t)rows;
    f->bytes = bytes;
    /* A model's rows belong to its partition: the bounds are the partition. */
    f->min_time = rows ? start : 0;
    f->max_time = rows ? end - 1 : 0;
    f->columns = *fcols;
    f->ncolumns = cols->n;
out:
    buf_release(&q);
    return rc;
}

static int sink_columns(const char *model, struct rescols *c, struct weir_errmsg *e)
{
    c->sc = calloc(c->n ? c->n : 1, sizeof *c->sc);
    if (!c->sc)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        c->sc[i].name = c->names[i];
        if (sink_type_parse(c->types[i], &c->sc[i]))
            return errmsg_set(e, WEIR_ESCHEMA, "model %s: column %s has type %s, which "
                              "a warehouse cannot load: cast it in the SELECT (to VARCHAR "
                              "or JSON, for instance)", model, c->names[i], c->types[i]);
    }
    return sink_check_columns(c->sc, c->n, e);
}

/* A `parquet: {path}` output (sinks/parquet_out.h): the result replaces
 * <path>/<partition key>/<model>.parquet. The error goes to e unless an
 * earlier output already failed (quiet); logged either way. */
static int parquet_output(const struct config_model *m, struct sql_db *db, int64_t start,
                          const struct config_output *o, struct weir_errmsg *e, int quiet)
{
    char key[PART_KEY_MAX];
    struct weir_errmsg pe = {0};
    if (!part_key_format(start, grain_of(m->grain), key, sizeof key))
        return errmsg_set(e, WEIR_EINVAL, "parquet output: not a partition start");
    int rc = parquet_out_write(db, RESULT_TABLE, o->path, key, m->name, NULL, &pe);
    if (rc) {
        log_error("model %s: parquet output: %s", m->name, pe.text);
        if (!quiet)
            errmsg_set(e, rc, "parquet output: %s", pe.text);
    }
    return rc;
}

static int load_outputs(const struct config_model *m, struct sql_db *db,
                        const char *csv_path, int64_t start, int64_t end,
                        struct rescols *cols, unsigned *loads, struct weir_errmsg *e)
{
    struct buf q = BUF_INIT(1 << 16);
    int rc = 0, wrote = 0, first = 0;

    for (size_t i = 0; i < m->noutputs; i++) {
        const struct config_output *o = &m->outputs[i];
        if (o->kind == CONFIG_OUTPUT_PARQUET) {
            int prc = parquet_output(m, db, start, o, e, first);
            first |= prc != 0;
            rc = rc ? rc : prc;
            continue;
        }
        if (o->kind != CONFIG_OUTPUT_POSTGRES && o->kind != CONFIG_OUTPUT_MYSQL)
            continue;
        if (!wrote) {
            if ((rc = sink_columns(m->name, cols, e)))
                goto out;
            /* DuckDB's CSV is weir CSV: NULL unquoted empty, "" for an
             * empty string, RFC 4180 quoting (docs/warehouse.md). */
            rc = buf_puts(&q, "COPY " RESULT_TABLE " TO ");
            rc = rc ? rc : sql_quote_string(&q, csv_path);
            rc = rc ? rc : buf_puts(&q, " (FORMAT csv, HEADER false)");
            if (rc || (rc = sql_exec(db, q.data, e)))
                goto out;
            wrote = 1;
        }
        struct sink *s = NULL;
        struct weir_errmsg se = {0};
        int fd = -1;
        int lrc = sink_open(o->kind, o->dsn, o->table, NULL, &s, &se);
        if (lrc == 0) {
            fd = open(csv_path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                lrc = errmsg_set(&se, weir_from_errno(errno), "%s: %s", csv_path,
                                 strerror(errno));
        }
        if (lrc == 0) {
            struct sink_fd_source src;
            sink_fd_source_init(&src, fd);
            struct sink_rows rows = {.columns = cols->sc, .ncolumns = cols->n,
                                     .read = sink_fd_source_read, .ctx = &src};
            struct sink_partition part = {.start_ns = start, .end_ns = end};
            struct sink_load_stats ls = {0};
            lrc = sink_load_partition(s, &part, &rows, &ls, &se);
            if (lrc == 0)
                (*loads)++;
        }
        if (fd >= 0)
            close(fd);
        sink_close(s);
        if (lrc) {
            log_error("model %s: %s output %s: %s", m->name,
                      o->kind == CONFIG_OUTPUT_POSTGRES ? "postgres" : "mysql", o->table,
                      se.text);
            if (!first) {
                first = 1;
                rc = errmsg_set(e, lrc, "%s output %s: %s",
                                o->kind == CONFIG_OUTPUT_POSTGRES ? "postgres" : "mysql",
                                o->table, se.text);
            }
        }
    }
out:
    buf_release(&q);
    return rc;
}

/*
 * Kafka outputs: the result as NDJSON (one object per row, DuckDB's JSON
 * types), each row a message (sinks/kafka_out.h). The run waits for every
 * delivery report; a failure fails the run, whose retry produces the whole
 * partition again: at least once per partition (docs/kafka.md).
 */
static int kafka_outputs(const struct config_model *m, struct sql_db *db,
                         const char *csv_path, const char *key, unsigned *loads,
                         struct weir_errmsg *e)
{
    char path[PATH_MAX];
    struct buf q = BUF_INIT(1 << 16);
    int rc = 0, wrote = 0;
    if ((size_t)snprintf(path, sizeof path, "%s.ndjson", csv_path) >= sizeof path)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", csv_path);
    for (size_t i = 0; i < m->noutputs && rc == 0; i++) {
        const struct config_output *o = &m->outputs[i];
        if (o->kind != CONFIG_OUTPUT_KAFKA)
            continue;
        if (!wrote) {
            rc = buf_puts(&q, "COPY " RESULT_TABLE " TO ");
            rc = rc ? rc : sql_quote_string(&q, path);
            rc = rc ? rc : buf_puts(&q, " (FORMAT json)");
            if (rc || (rc = sql_exec(db, q.data, e)))
                break;
            wrote = 1;
        }
        const char *const hdrs[] = {"weir_model", m->name, "weir_partition", key, NULL};
        uint64_t n = 0;
        struct weir_errmsg ke = {0};
        rc = kafka_produce_file(&o->kafka, path, hdrs,
                                (int64_t)(WEIR_KSINK_MESSAGE_TIMEOUT_MS + 5000) *
                                    WTIME_NS_PER_MS, &n, &ke);
        if (rc) {
            log_error("model %s: kafka output %s: %s", m->name, o->kafka.topic, ke.text);
            errmsg_set(e, rc, "kafka output %s: %s", o->kafka.topic, ke.text);
        } else {
            (*loads)++;
            log_debug("model %s, partition %s: %" PRIu64 " rows to kafka %s", m->name,
                      key, n, o->kafka.topic);
        }
    }
    if (wrote)
        unlink(path);
    buf_release(&q);
    return rc;
}

static int lock_model(const char *dir, const struct model_run_opts *o, int *fd,
                      struct weir_errmsg *e)
{
    char path[PATH_MAX];
    int rc;
    if ((rc = fsio_mkdir_p(dir, 0755)))
        return errmsg_set(e, rc, "%s: %s", dir, weir_strerror(rc));
    if ((size_t)snprintf(path, sizeof path, "%s/_run.lock", dir) >= sizeof path)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", dir);
    for (;;) {
        rc = fsio_lock_file(path, fd);
        if (rc != WEIR_ECONFLICT)
            break;
        if (!o->wait_lock || (o->stop && *o->stop))
            return errmsg_set(e, WEIR_EAGAIN, "%s: another run of this model is going on",
                              dir);
        usleep(100000);
    }
    return rc ? errmsg_set(e, rc, "%s: cannot take the lock", path) : 0;
}

/* Commit: add file f (may be NULL), remove the partition's other live
 * files, set the state. */
static int commit_run(struct tablelog *tl, const char *key, const struct tl_file *f,
                      const struct model_state *st, uint64_t *version,
                      struct weir_errmsg *e)
{
    struct tl_snapshot s = {0};
    struct buf app = BUF_INIT(1 << 20);
    const char **rm = NULL;
    size_t nrm = 0;
    int rc;

    for (int attempt = 0; attempt < 5; attempt++) {
        tl_snapshot_release(&s);
        free(rm);
        rm = NULL;
        nrm = 0;
        buf_reset(&app);
        if ((rc = tl_snapshot(tl, 0, &s, e)))
            goto out;
        rm = calloc(s.nfiles ? s.nfiles : 1, sizeof *rm);
        if (!rm) {
            rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        if (f)
            for (size_t i = 0; i < s.nfiles; i++)
                if (strcmp(s.files[i].partition, key) == 0)
                    rm[nrm++] = s.files[i].path;
        rc = buf_appendf(&app, "{\"" MODEL_STATE_PREFIX "%s\":", key);
        rc = rc ? rc : state_json(st, &app);
        rc = rc ? rc : buf_putc(&app, '}');
        if (rc) {
            rc = errmsg_set(e, rc, "the state is too large");
            goto out;
        }
        struct tl_commit c = {
            .operation = "model",
            .read_version = s.version,
            .add = f,
            .nadd = f ? 1 : 0,
            .remove = rm,
            .nremove = nrm,
            .app = app.data,
            .app_len = app.len,
        };
        rc = tl_commit(tl, &c, version, e);
        if (rc != WEIR_ECONFLICT)
            break;
    }
out:
    free(rm);
    buf_release(&app);
    tl_snapshot_release(&s);
    return rc;
}

int model_run_partition(const struct weir_config *cfg, const struct config_model *m,
                        int64_t start_ns, const struct model_run_opts *o,
                        struct model_run_result *res, struct weir_errmsg *e)
{
    static const struct model_run_opts defaults = {0};
    enum part_grain g = grain_of(m->grain);
    int64_t end = part_end(start_ns, g);
    char dir[PATH_MAX], key[PART_KEY_MAX], tmpdir[PATH_MAX], csv[PATH_MAX], rel[TL_PATH_MAX];
    struct tablelog *tl = NULL;
    struct tl_snapshot s = {0};
    struct sql_db *db = NULL;
    struct buf q = BUF_INIT(WEIR_MODEL_MAX_SQL + 4096);
    struct rescols cols = {0};
    struct tl_file f;
    struct tl_column *fcols = NULL;
    struct model_state st, prev;
    struct model_ready ready;
    struct weir_errmsg re = {0};
    int lock_fd = -1, have_file = 0, rc, run_rc = 0;

    if (!o)
        o = &defaults;
    memset(res, 0, sizeof *res);
    csv[0] = '\0';
    if (!part_key_format(start_ns, g, key, sizeof key))
        return errmsg_set(e, WEIR_EINVAL, "model %s: %" PRId64 " is not the start of "
                          "a partition", m->name, start_ns);
    if ((rc = model_check(cfg, m, e)) || (rc = dataset_dir(cfg, m->name, dir, sizeof dir, e)) ||
        (rc = lock_model(dir, o, &lock_fd, e)))
        goto out;
    if ((rc = tl_open(dir, &tl, e)))
        goto out;
    {
        struct tl_recover_opts ro = {.orphan_grace_ns = TL_DEFAULT_ORPHAN_GRACE_NS,
                                     .absorbed_grace_ns = 0};
        if ((rc = tl_recover(tl, &ro, NULL, e)) || (rc = tl_snapshot(tl, 0, &s, e)))
            goto out;
    }
    int64_t now = o->now_ns ? o->now_ns : wtime_now_ns();
    if ((rc = model_partition_ready(cfg, m, start_ns, now, &ready, e)))
        goto out;
    int had = state_get(&s, key, &prev);

    /* From here a failure is the run's outcome, recorded in the state. */
    if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s/_duckdb.tmp", dir) >= sizeof tmpdir ||
        (size_t)snprintf(csv, sizeof csv, "%s/_run.%ld.csv", dir, (long)getpid()) >=
            sizeof csv) {
        rc = errmsg_set(e, WEIR_ELIMIT, "%s: path too long", dir);
        goto out;
    }
    struct sql_opts so = {.memory_limit = o->memory_limit, .threads = o->threads,
                          .temp_directory = tmpdir};
    struct sql_param params[2] = {{"start", start_ns}, {"end", end}};
    if ((run_rc = sql_open(&so, &db, &re)) || (run_rc = model_dimension_views(cfg, db, &re)) ||
        (run_rc = input_views(cfg, m, db, start_ns, end, &re)) ||
        (run_rc = result_sql(m->sql, &q, &re)))
        goto record;
    if ((run_rc = sql_exec_params(db, q.data, params, 2, &re))) {
        char msg[sizeof re.text];
        snprintf(msg, sizeof msg, "%s", re.text);
        errmsg_set(&re, run_rc, "%s: %s", m->sql, msg);
        goto record;
    }
    if ((run_rc = describe(db, RESULT_TABLE, &cols, &re)))
        goto record;
    {
        int64_t rows = 0;
        if ((run_rc = sql_query_int64(db, "SELECT count(*) FROM " RESULT_TABLE, &rows, &re)))
            goto record;
        res->rows = (uint64_t)rows;
    }
    if (model_has_lake(m)) {
        if ((run_rc = write_lake(tl, db, key, start_ns, end, &cols, &f, &fcols, rel,
                                 sizeof rel, &re)))
            goto record;
        have_file = 1;
    }
    run_rc = load_outputs(m, db, csv, start_ns, end, &cols, &res->loads, &re);
    if (run_rc == 0)
        run_rc = kafka_outputs(m, db, csv, key, &res->loads, &re);

record:
    memset(&st, 0, sizeof st);
    st.ok = run_rc == 0;
    st.at_ns = wtime_now_ns();
    st.rows = res->rows;
    snprintf(st.inputs, sizeof st.inputs, "%s", ready.inputs);
    if (!st.ok) {
        st.attempts = (had && !prev.ok ? prev.attempts : 0) + 1;
        st.next_try_ns = now + model_backoff_ns(st.attempts);
        snprintf(st.error, sizeof st.error, "%s", re.text);
    }
    rc = commit_run(tl, key, have_file ? &f : NULL, &st, &res->version, e);
    if (rc == 0 && have_file)
        res->lake = 1;
    if (run_rc)
        rc = errmsg_set(e, run_rc, "model %s, partition %s: %s", m->name, key, re.text);
out:
    if (csv[0])
        unlink(csv);
    sql_close(db);
    free(fcols);
    rescols_release(&cols);
    buf_release(&q);
    tl_snapshot_release(&s);
    tl_free(tl);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
