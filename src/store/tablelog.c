/*
 * tablelog.c - the table log: JSON commits published by exclusive create,
 * a state rebuilt from the newest checkpoint plus the commits after it,
 * conflict checks, recovery and vacuum. tablelog.h is the API, and
 * docs/tablelog.md the file formats and the rules.
 *
 * The in-memory state is four keyed tables (live files by path, tombstones
 * by path, absorbed segments by file name, app entries by key). Each item
 * is one allocation holding its strings, so a table of 100,000 files costs
 * 100,000 mallocs, not a million. A struct tablelog keeps the state of the
 * latest version it has read (the head) and moves it forward by reading
 * the commits that appeared since, so a writer that commits in a loop reads
 * each commit once.
 */
#include "store/tablelog.h"

#include "core/buf.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "store/partition.h"
#include "store/segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_VERSION 1
#define MAX_COMMIT_BYTES WEIR_TL_MAX_COMMIT_BYTES
#define MAX_CHECKPOINT_BYTES WEIR_TL_MAX_CHECKPOINT_BYTES
#define MAX_NAME 128          /* operation, txn, column names are shorter */
#define MAX_APP_KEY 256
#define MAX_TYPE 4096         /* a DuckDB type: STRUCTs nest */

#ifdef WEIR_TESTING
static int crash_step = -1;   /* -1: not read from the environment yet */

void tl_test_crash_at(int step)
{
    crash_step = step;
}

static void crash_point(int step)
{
    if (crash_step < 0) {
        const char *s = getenv("WEIR_TL_CRASH_AT");
        crash_step = s ? (int)strtol(s, NULL, 10) : 0;
    }
    if (crash_step == step)
        _exit(99);
}
#else
#define crash_point(step) ((void)0)
#endif

/* ---- a keyed table ------------------------------------------------------ */

/*
 * Items are heap structs whose first member is their key (const char *).
 * The index is open addressing with linear probing and backward-shift
 * deletion, so there are no tombstone slots to age.
 */
struct item {
    const char *key;
};

struct table {
    struct item **v;
    size_t n, cap;
    size_t *slots;     /* index + 1 into v; 0: empty */
    size_t nslots;     /* power of two */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static void table_release(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static size_t *table_slot(const struct table *t, const char *key)
{
    if (!t->nslots)
        return NULL;
    size_t mask = t->nslots - 1;
    for (size_t i = hash_str(key) & mask;; i = (i + 1) & mask) {
        if (!t->slots[i] || strcmp(t->v[t->slots[i] - 1]->key, key) == 0)
            return &t->slots[i];
    }
}

static void *table_get(const struct table *t, const char *key)
{
    size_t *s = table_slot(t, key);
    return s && *s ? t->v[*s - 1] : NULL;
}

static int table_rehash(struct table *t, size_t nslots)
{
    size_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return WEIR_ENOMEM;
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    for (size_t i = 0; i < t->n; i++)
        *table_slot(t, t->v[i]->key) = i + 1;
    return 0;
}

/* Insert it (its key must not be present); takes ownership on success. */
static int table_put(struct table *t, struct item *it)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct item **v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return WEIR_ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->nslots) {
        int rc = table_rehash(t, t->nslots ? t->nslots * 2 : 32);
        if (rc)
            return rc;
    }
    size_t *s = table_slot(t, it->key);
    t->v[t->n++] = it;
    *s = t->n;
    return 0;
}

/* Remove key's item and return it (the caller frees it), or NULL. */
static void *table_take(struct table *t, const char *key)
{
    size_t *s = table_slot(t, key);
    if (!s || !*s)
        return NULL;
    size_t idx = *s - 1, mask = t->nslots - 1;
    struct item *it = t->v[idx];
    /* Backward-shift deletion: pull later members of the run into the
     * hole when their home slot allows it. */
    size_t hole = (size_t)(s - t->slots);
    for (size_t j = (hole + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t home = hash_str(t->v[t->slots[j] - 1]->key) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = 0;
    /* Keep v dense: move the last item into idx. */
    t->n--;
    if (idx != t->n) {
        t->v[idx] = t->v[t->n];
        *table_slot(t, t->v[idx]->key) = idx + 1;
    }
    return it;
}

/* ---- state items (one allocation each) ---------------------------------- */

struct file_item {
    const char *key;          /* == f.path */
    struct tl_file f;
};

struct tomb_item {
    const char *key;          /* path */
    uint64_t version;
    int64_t timestamp;
};

struct abs_item {
    const char *key;          /* the file name (inside path) */
    const char *path;
    uint64_t version;
    int64_t timestamp;
};

struct app_item {
    const char *key;
    const char *json;
    size_t len;
    uint64_t version;
};

/* Bump allocation inside one malloc'd block. */
struct packer {
    char *p, *end;
};

static const char *pack_str(struct packer *k, const char *s, size_t n)
{
    char *d = k->p;
    memcpy(d, s, n);
    d[n] = '\0';
    k->p += n + 1;
    return d;
}

static struct file_item *file_item_new(const struct tl_file *f, uint64_t version)
{
    size_t need = sizeof(struct file_item) +
                  f->ncolumns * sizeof(struct tl_column) +
                  strlen(f->path) + strlen(f->partition) + 2;
    for (size_t i = 0; i < f->ncolumns; i++)
        need += strlen(f->columns[i].name) + strlen(f->columns[i].type) + 2;
    struct file_item *it = malloc(need);
    if (!it)
        return NULL;
    struct tl_column *cols = (struct tl_column *)(it + 1);
    struct packer k = {(char *)(cols + f->ncolumns), (char *)it + need};
    it->f = *f;
    it->f.version = version;
    it->f.path = pack_str(&k, f->path, strlen(f->path));
    it->f.partition = pack_str(&k, f->partition, strlen(f->partition));
    for (size_t i = 0; i < f->ncolumns; i++) {
        cols[i].name = pack_str(&k, f->columns[i].name,
                                strlen(f->columns[i].name));
        cols[i].type = pack_str(&k, f->columns[i].type,
                                strlen(f->columns[i].type));
    }
    it->f.columns = f->ncolumns ? cols : NULL;
    it->key = it->f.path;
    return it;
}

static struct tomb_item *tomb_item_new(const char *path, uint64_t version,
                                       int64_t ts)
{
    size_t n = strlen(path);
    struct tomb_item *it = malloc(sizeof(*it) + n + 1);
    if (!it)
        return NULL;
    struct packer k = {(char *)(it + 1), NULL};
    it->key = pack_str(&k, path, n);
    it->version = version;
    it->timestamp = ts;
    return it;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static struct abs_item *abs_item_new(const char *path, uint64_t version,
                                     int64_t ts)
{
    size_t n = strlen(path);
    struct abs_item *it = malloc(sizeof(*it) + n + 1);
    if (!it)
        return NULL;
    struct packer k = {(char *)(it + 1), NULL};
    it->path = pack_str(&k, path, n);
    it->key = base_name(it->path);
    it->version = version;
    it->timestamp = ts;
    return it;
}

static struct app_item *app_item_new(const char *key, const char *json,
                                     size_t len, uint64_t version)
{
    size_t kn = strlen(key);
    struct app_item *it = malloc(sizeof(*it) + kn + len + 2);
    if (!it)
        return NULL;
    struct packer k = {(char *)(it + 1), NULL};
    it->key = pack_str(&k, key, kn);
    it->json = pack_str(&k, json, len);
    it->len = len;
    it->version = version;
    return it;
}

/* ---- the state at one version ------------------------------------------- */

struct state {
    uint64_t version;
    int64_t timestamp;
    uint64_t oldest;       /* the horizon of the last vacuum, 0: none */
    struct table files, tombs, absorbed, app;
};

static void state_release(struct state *s)
{
    table_release(&s->files);
    table_release(&s->tombs);
    table_release(&s->absorbed);
    table_release(&s->app);
    memset(s, 0, sizeof(*s));
}

static int state_clone(const struct state *from, struct state *to)
{
    memset(to, 0, sizeof(*to));
    to->version = from->version;
    to->timestamp = from->timestamp;
    to->oldest = from->oldest;
    for (size_t i = 0; i < from->files.n; i++) {
        const struct file_item *f = (const void *)from->files.v[i];
        struct file_item *c = file_item_new(&f->f, f->f.version);
        if (!c || table_put(&to->files, (struct item *)c)) {
            free(c);
            goto nomem;
        }
    }
    for (size_t i = 0; i < from->tombs.n; i++) {
        const struct tomb_item *o = (const void *)from->tombs.v[i];
        struct tomb_item *c = tomb_item_new(o->key, o->version, o->timestamp);
        if (!c || table_put(&to->tombs, (struct item *)c)) {
            free(c);
            goto nomem;
        }
    }
    for (size_t i = 0; i < from->absorbed.n; i++) {
        const struct abs_item *o = (const void *)from->absorbed.v[i];
        struct abs_item *c = abs_item_new(o->path, o->version, o->timestamp);
        if (!c || table_put(&to->absorbed, (struct item *)c)) {
            free(c);
            goto nomem;
        }
    }
    for (size_t i = 0; i < from->app.n; i++) {
        const struct app_item *o = (const void *)from->app.v[i];
        struct app_item *c = app_item_new(o->key, o->json, o->len, o->version);
        if (!c || table_put(&to->app, (struct item *)c)) {
            free(c);
            goto nomem;
        }
    }
    return 0;
nomem:
    state_release(to);
    return WEIR_ENOMEM;
}

/* ---- names and paths ---------------------------------------------------- */

size_t tl_part_file_name(uint64_t version, unsigned n, char *out, size_t cap)
{
    int w = snprintf(out, cap, "part-%020" PRIu64 "-%u.parquet", version, n);
    return w < 0 || (size_t)w >= cap ? 0 : (size_t)w;
}

/* Parse exactly `digits` decimal digits (or, digits == 0, 1..10 of them
 * without a leading zero unless alone) at *p. */
static int parse_digits(const char **p, int digits, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int n = 0;
    while (*s >= '0' && *s <= '9') {
        if (n == 20 || (digits && n == digits))
            break;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
        s++;
        n++;
    }
    if (n == 0 || (digits && n != digits))
        return 0;
    if (!digits && (n > 10 || (n > 1 && (*p)[0] == '0')))
        return 0;
    *p = s;
    *out = v;
    return 1;
}

int tl_part_name_parse(const char *name, uint64_t *version, unsigned *n)
{
    const char *p = name;
    uint64_t v, k;
    if (strncmp(p, "part-", 5) != 0)
        return 0;
    p += 5;
    if (!parse_digits(&p, TL_VERSION_DIGITS, &v) || *p++ != '-' ||
        !parse_digits(&p, 0, &k) || k > UINT_MAX || strcmp(p, ".parquet") != 0)
        return 0;
    if (version)
        *version = v;
    if (n)
        *n = (unsigned)k;
    return 1;
}

size_t tl_commit_file_name(uint64_t version, char *out, size_t cap)
{
    int w = snprintf(out, cap, "_log/%020" PRIu64 ".json", version);
    return w < 0 || (size_t)w >= cap ? 0 : (size_t)w;
}

/* "<version>.json" -> 1 and *v; "<version>.checkpoint.json" -> 2. */
static int log_name_parse(const char *name, uint64_t *v)
{
    const char *p = name;
    if (!parse_digits(&p, TL_VERSION_DIGITS, v))
        return 0;
    if (strcmp(p, ".json") == 0)
        return 1;
    if (strcmp(p, ".checkpoint.json") == 0)
        return 2;
    return 0;
}

static int path_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
           c == '=';
}

/* A relative path of components of [A-Za-z0-9._=-], none starting with '.'
 * (no ".." and no hidden or temporary names), under top ("parquet/"). */
static int rel_path_ok(const char *p, const char *top)
{
    size_t n = strlen(p), tn = strlen(top);
    if (n == 0 || n > TL_PATH_MAX || strncmp(p, top, tn) != 0 || n == tn)
        return 0;
    int start = 1;
    for (const char *s = p; *s; s++) {
        if (*s == '/') {
            if (start)
                return 0;
            start = 1;
            continue;
        }
        if (!path_char_ok(*s) || (start && *s == '.'))
            return 0;
        start = 0;
    }
    return !start;
}

static int partition_ok(const char *key)
{
    enum part_grain g;
    int64_t st;
    size_t n = strlen(key);
    return n == 0 || part_key_parse(key, n, &g, &st) == n;
}

/* The path of an added file must be parquet/<partition>/<part name>. */
static int add_path_ok(const struct tl_file *f)
{
    if (!f->path || !f->partition || !rel_path_ok(f->path, "parquet/") ||
        !partition_ok(f->partition))
        return 0;
    const char *dir = f->path + 8, *name = base_name(f->path);
    size_t pn = strlen(f->partition);
    if (pn == 0)
        return name == dir && tl_part_name_parse(name, NULL, NULL);
    return strncmp(dir, f->partition, pn) == 0 && dir + pn + 1 == name &&
           tl_part_name_parse(name, NULL, NULL);
}

static int absorbed_path_ok(const char *p)
{
    struct seg_name sn;
    return p && rel_path_ok(p, "raw/") &&
           seg_name_parse(base_name(p), &sn) == 0 && !sn.active;
}

static int word_ok(const char *s, size_t max, int lower_only)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= max)
            return 0;
        if (lower_only ? !((c >= 'a' && c <= 'z') || c == '_')
                       : (c < 0x21 || c > 0x7e || c == '"' || c == '\\'))
            return 0;
    }
    return n > 0;
}

static int full_path(const struct tablelog *t, const char *rel, char *out,
                     size_t cap);

/* ---- the handle --------------------------------------------------------- */

struct tablelog {
    char *dir;                /* dataset directory */
    char *log_dir;            /* dir/_log */
    struct state head;        /* the latest version read */
    int head_valid;
    int log_dir_ok;           /* _log/ was there or made */
    struct json_doc doc;      /* reused by every parse */
    struct buf io;            /* file contents being parsed */
    /* While refreshing for tl_commit: a txn to look for in new commits. */
    const char *watch_txn;
    uint64_t watch_found;
};

const char *tl_dir(const struct tablelog *t)
{
    return t->dir;
}

static int full_path(const struct tablelog *t, const char *rel, char *out,
                     size_t cap)
{
    int w = snprintf(out, cap, "%s/%s", t->dir, rel);
    return w < 0 || (size_t)w >= cap ? WEIR_ELIMIT : 0;
}

static int log_path(const struct tablelog *t, uint64_t v, int checkpoint,
                    char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s/%020" PRIu64 "%s", t->log_dir, v,
                     checkpoint ? ".checkpoint.json" : ".json");
    return w < 0 || (size_t)w >= cap ? WEIR_ELIMIT : 0;
}

int tl_open(const char *dataset_dir, struct tablelog **out,
            struct weir_errmsg *e)
{
    *out = NULL;
    size_t n = strlen(dataset_dir);
    while (n > 1 && dataset_dir[n - 1] == '/')
        n--;
    if (n == 0 || n + 64 > PATH_MAX)
        return errmsg_set(e, WEIR_EINVAL, "table log: bad dataset directory '%s'",
                          dataset_dir);
    struct tablelog *t = calloc(1, sizeof(*t));
    if (!t)
        return errmsg_set(e, WEIR_ENOMEM, "table log: out of memory");
    t->dir = strndup(dataset_dir, n);
    t->log_dir = malloc(n + 6);
    if (!t->dir || !t->log_dir) {
        tl_free(t);
        return errmsg_set(e, WEIR_ENOMEM, "table log: out of memory");
    }
    snprintf(t->log_dir, n + 6, "%s/_log", t->dir);
    json_doc_init(&t->doc, 64);
    buf_init(&t->io, MAX_CHECKPOINT_BYTES);
    *out = t;
    return 0;
}

void tl_free(struct tablelog *t)
{
    if (!t)
        return;
    state_release(&t->head);
    json_doc_release(&t->doc);
    buf_release(&t->io);
    free(t->dir);
    free(t->log_dir);
    free(t);
}

/* ---- parsing ------------------------------------------------------------ */

/*
 * A parsed commit or checkpoint. Strings are decoded into one scratch
 * buffer that lives as long as the parse (struct parse); the state copies
 * what it keeps.
 */
struct papp {
    const char *key;
    const char *json;    /* verbatim value text (NUL-terminated copy) */
    size_t len;
    uint64_t version;    /* checkpoints */
};

struct ptomb {
    const char *path;
    uint64_t version;
    int64_t timestamp;
};

struct parsed {
    int checkpoint;
    uint64_t version;
    int64_t timestamp;
    const char *operation;
    uint64_t read_version;
    const char *txn;
    uint64_t horizon;            /* commits of vacuum; checkpoints: oldest */
    struct tl_file *add;         /* checkpoints: the live files */
    size_t nadd;
    const char **remove;
    size_t nremove;
    const char **absorbed;
    size_t nabsorbed;
    struct ptomb *absorbed_cp;   /* checkpoints: absorbed with versions */
    size_t nabsorbed_cp;
    const char **purge;
    size_t npurge;
    const char **forget;
    size_t nforget;
    struct ptomb *tombs;         /* checkpoints: removed */
    size_t ntombs;
    struct papp *app;
    size_t napp;
};

/* Scratch memory of one parse: a list of blocks freed together. */
struct scratch {
    void **blocks;
    size_t n, cap;
};

static void *scratch_alloc(struct scratch *s, size_t n)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void **b = realloc(s->blocks, cap * sizeof(*b));
        if (!b)
            return NULL;
        s->blocks = b;
        s->cap = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p)
        s->blocks[s->n++] = p;
    return p;
}

static void scratch_release(struct scratch *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->blocks[i]);
    free(s->blocks);
    memset(s, 0, sizeof(*s));
}

struct pctx {
    const char *name;            /* file name for messages */
    struct json_doc *d;
    struct scratch *sc;
    struct weir_errmsg *e;
};

__attribute__((format(printf, 2, 3)))
static int corrupt(struct pctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return errmsg_set(c->e, WEIR_ECORRUPT, "table log: %s: %s", c->name, msg);
}

static const struct json_tok *tok(struct pctx *c, uint32_t i)
{
    return &c->d->toks[i];
}

/* Decode string token i into scratch memory: no NUL inside, <= max bytes. */
static int get_str(struct pctx *c, uint32_t i, const char *what, size_t max,
                   const char **out)
{
    const struct json_tok *t = tok(c, i);
    if (t->type != JSON_STRING)
        return corrupt(c, "%s: expected a string", what);
    char *s = scratch_alloc(c->sc, t->len);
    if (!s)
        return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
    size_t n = json_str_decode(c->d, t, s, t->len);
    if (n >= t->len || memchr(s, '\0', n) || n > max)
        return corrupt(c, "%s: bad or too long string", what);
    s[n] = '\0';
    *out = s;
    return 0;
}

static int get_u64(struct pctx *c, uint32_t i, const char *what, uint64_t *out)
{
    const struct json_tok *t = tok(c, i);
    int64_t v;
    if (t->type != JSON_NUMBER || !(t->flags & JSON_F_INTEGER) ||
        !json_num_int64(c->d, t, &v) || v < 0)
        return corrupt(c, "%s: expected a non-negative integer", what);
    *out = (uint64_t)v;
    return 0;
}

/* ns since the epoch fit int64 from 1677-09-21 to 2262-04-11; the log
 * takes whole years inside that (wtime_parse_rfc3339 does not check). */
static int year_ok(const char *s, size_t n)
{
    if (n < 5 || s[4] != '-')
        return 0;
    int y = 0;
    for (int k = 0; k < 4; k++) {
        if (s[k] < '0' || s[k] > '9')
            return 0;
        y = y * 10 + (s[k] - '0');
    }
    return y >= 1678 && y <= 2261;
}

static int get_time(struct pctx *c, uint32_t i, const char *what, int64_t *out)
{
    const struct json_tok *t = tok(c, i);
    if (t->type != JSON_STRING || (t->flags & JSON_F_ESCAPED) ||
        !year_ok(json_tok_ptr(c->d, t) + 1, t->len - 2) ||
        wtime_parse_rfc3339(json_tok_ptr(c->d, t) + 1, t->len - 2, out) != 0)
        return corrupt(c, "%s: expected an RFC 3339 time", what);
    return 0;
}

static int key_is(struct pctx *c, uint32_t k, const char *s)
{
    return json_str_eq(c->d, tok(c, k), s, strlen(s));
}

/* Allocate an array of n elements of size sz in scratch. */
static void *get_array_mem(struct pctx *c, size_t n, size_t sz)
{
    return scratch_alloc(c->sc, n * sz);
}

static int get_str_array(struct pctx *c, uint32_t a, const char *what,
                         int (*ok)(const char *), const char ***out, size_t *n)
{
    if (tok(c, a)->type != JSON_ARRAY)
        return corrupt(c, "%s: expected an array", what);
    size_t cnt = tok(c, a)->count;
    const char **v = get_array_mem(c, cnt, sizeof(*v));
    if (!v)
        return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
    uint32_t x = a + 1;
    for (size_t i = 0; i < cnt; i++, x = tok(c, x)->next) {
        int rc = get_str(c, x, what, TL_PATH_MAX, &v[i]);
        if (rc)
            return rc;
        if (ok && !ok(v[i]))
            return corrupt(c, "%s: bad path \"%s\"", what, v[i]);
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int parquet_path_ok(const char *p)
{
    return rel_path_ok(p, "parquet/");
}

static int parse_file(struct pctx *c, uint32_t o, int checkpoint,
                      struct tl_file *f)
{
    if (tok(c, o)->type != JSON_OBJECT)
        return corrupt(c, "file: expected an object");
    memset(f, 0, sizeof(*f));
    unsigned seen = 0;
    uint32_t k = o + 1;
    int rc = 0;
    for (uint32_t m = 0; m < tok(c, o)->count && !rc; m++, k = tok(c, k + 1)->next) {
        uint32_t v = k + 1;
        unsigned bit;
        if (key_is(c, k, "path")) {
            bit = 1;
            rc = get_str(c, v, "file path", TL_PATH_MAX, &f->path);
        } else if (key_is(c, k, "partition")) {
            bit = 2;
            rc = get_str(c, v, "file partition", PART_KEY_MAX, &f->partition);
        } else if (key_is(c, k, "rows")) {
            bit = 4;
            rc = get_u64(c, v, "file rows", &f->rows);
        } else if (key_is(c, k, "bytes")) {
            bit = 8;
            rc = get_u64(c, v, "file bytes", &f->bytes);
        } else if (key_is(c, k, "min_time")) {
            bit = 16;
            rc = get_time(c, v, "file min_time", &f->min_time);
        } else if (key_is(c, k, "max_time")) {
            bit = 32;
            rc = get_time(c, v, "file max_time", &f->max_time);
        } else if (key_is(c, k, "columns")) {
            bit = 64;
            if (tok(c, v)->type != JSON_ARRAY)
                return corrupt(c, "file columns: expected an array");
            size_t n = tok(c, v)->count;
            struct tl_column *cols = get_array_mem(c, n, sizeof(*cols));
            if (!cols)
                return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
            uint32_t x = v + 1;
            for (size_t i = 0; i < n && !rc; i++, x = tok(c, x)->next) {
                if (tok(c, x)->type != JSON_OBJECT || tok(c, x)->count != 2 ||
                    !key_is(c, x + 1, "name") ||
                    !key_is(c, tok(c, x + 2)->next, "type"))
                    return corrupt(c, "file columns: expected {\"name\":...,\"type\":...}");
                rc = get_str(c, x + 2, "column name", MAX_TYPE, &cols[i].name);
                if (!rc)
                    rc = get_str(c, tok(c, x + 2)->next + 1, "column type",
                                 MAX_TYPE, &cols[i].type);
            }
            f->columns = cols;
            f->ncolumns = n;
        } else if (checkpoint && key_is(c, k, "version")) {
            bit = 128;
            rc = get_u64(c, v, "file version", &f->version);
        } else {
            return corrupt(c, "file: unknown member %.*s", (int)tok(c, k)->len,
                           json_tok_ptr(c->d, tok(c, k)));
        }
        if (seen & bit)
            return corrupt(c, "file: a member twice");
        seen |= bit;
    }
    if (rc)
        return rc;
    if (seen != (checkpoint ? 255u : 127u))
        return corrupt(c, "file: a member is missing (path, partition, rows, "
                          "bytes, min_time, max_time, columns%s)",
                       checkpoint ? ", version" : "");
    if (!add_path_ok(f))
        return corrupt(c, "file: bad path \"%s\" for partition \"%s\"", f->path,
                       f->partition);
    return 0;
}

static int parse_files(struct pctx *c, uint32_t a, int checkpoint,
                       struct tl_file **out, size_t *n)
{
    if (tok(c, a)->type != JSON_ARRAY)
        return corrupt(c, "files: expected an array");
    size_t cnt = tok(c, a)->count;
    struct tl_file *v = get_array_mem(c, cnt, sizeof(*v));
    if (!v)
        return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
    uint32_t x = a + 1;
    for (size_t i = 0; i < cnt; i++, x = tok(c, x)->next) {
        int rc = parse_file(c, x, checkpoint, &v[i]);
        if (rc)
            return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* checkpoint "removed": [{"path","version","timestamp"}], "absorbed":
 * [{"path","version","timestamp"}] */
static int parse_ptombs(struct pctx *c, uint32_t a, const char *what,
                        int (*ok)(const char *), struct ptomb **out, size_t *n)
{
    if (tok(c, a)->type != JSON_ARRAY)
        return corrupt(c, "%s: expected an array", what);
    size_t cnt = tok(c, a)->count;
    struct ptomb *v = get_array_mem(c, cnt, sizeof(*v));
    if (!v)
        return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
    uint32_t x = a + 1;
    for (size_t i = 0; i < cnt; i++, x = tok(c, x)->next) {
        if (tok(c, x)->type != JSON_OBJECT || tok(c, x)->count != 3)
            return corrupt(c, "%s: expected {\"path\",\"version\",\"timestamp\"}",
                           what);
        uint32_t k1 = x + 1, k2 = tok(c, k1 + 1)->next, k3 = tok(c, k2 + 1)->next;
        if (!key_is(c, k1, "path") || !key_is(c, k2, "version") ||
            !key_is(c, k3, "timestamp"))
            return corrupt(c, "%s: expected {\"path\",\"version\",\"timestamp\"}",
                           what);
        int rc = get_str(c, k1 + 1, what, TL_PATH_MAX, &v[i].path);
        if (!rc)
            rc = get_u64(c, k2 + 1, what, &v[i].version);
        if (!rc)
            rc = get_time(c, k3 + 1, what, &v[i].timestamp);
        if (rc)
            return rc;
        if (!ok(v[i].path))
            return corrupt(c, "%s: bad path \"%s\"", what, v[i].path);
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int app_key_ok(const char *k)
{
    return word_ok(k, MAX_APP_KEY, 0);
}

/* An app object: commits {"key": value}, checkpoints {"key": {"version": v,
 * "value": value}}. Values are kept as their text. */
static int parse_app(struct pctx *c, uint32_t o, int checkpoint,
                     struct papp **out, size_t *n)
{
    if (tok(c, o)->type != JSON_OBJECT)
        return corrupt(c, "app: expected an object");
    if (json_object_find_duplicate(c->d, o) >= 0)
        return corrupt(c, "app: a key twice");
    size_t cnt = tok(c, o)->count;
    struct papp *v = get_array_mem(c, cnt, sizeof(*v));
    if (!v)
        return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
    uint32_t k = o + 1;
    for (size_t i = 0; i < cnt; i++, k = tok(c, k + 1)->next) {
        int rc = get_str(c, k, "app key", MAX_APP_KEY, &v[i].key);
        if (rc)
            return rc;
        if (!app_key_ok(v[i].key))
            return corrupt(c, "app: bad key \"%s\"", v[i].key);
        uint32_t val = k + 1;
        if (checkpoint) {
            if (tok(c, val)->type != JSON_OBJECT || tok(c, val)->count != 2 ||
                !key_is(c, val + 1, "version") ||
                !key_is(c, tok(c, val + 2)->next, "value"))
                return corrupt(c, "app: expected {\"version\":...,\"value\":...}");
            if ((rc = get_u64(c, val + 2, "app version", &v[i].version)))
                return rc;
            val = tok(c, val + 2)->next + 1;
        }
        const struct json_tok *t = tok(c, val);
        char *s = scratch_alloc(c->sc, (size_t)t->len + 1);
        if (!s)
            return errmsg_set(c->e, WEIR_ENOMEM, "table log: out of memory");
        memcpy(s, json_tok_ptr(c->d, t), t->len);
        v[i].json = s;
        v[i].len = t->len;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int absorbed_ok_fn(const char *p)
{
    return absorbed_path_ok(p);
}

/*
 * Parse a commit (checkpoint = 0) or checkpoint file's text. Every member is
 * known and checked; an unknown one is corruption (a newer format says so
 * in "format" first).
 */
static int parse_text(struct pctx *c, const char *text, size_t len,
                      int checkpoint, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    p->checkpoint = checkpoint;
    enum json_error je = json_scan(c->d, text, len);
    if (je != JSON_OK) {
        char why[256];
        json_describe_error(c->d, why, sizeof(why));
        return corrupt(c, "%s", why);
    }
    if (tok(c, 0)->type != JSON_OBJECT)
        return corrupt(c, "expected a JSON object");
    if (json_object_find_duplicate(c->d, 0) >= 0)
        return corrupt(c, "a member appears twice");
    enum { F_FORMAT = 1, F_VERSION = 2, F_TS = 4, F_OP = 8 };
    unsigned seen = 0;
    uint32_t k = 1;
    int rc = 0;
    for (uint32_t m = 0; m < tok(c, 0)->count && !rc; m++, k = tok(c, k + 1)->next) {
        uint32_t v = k + 1;
        if (key_is(c, k, "format")) {
            uint64_t f;
            seen |= F_FORMAT;
            if ((rc = get_u64(c, v, "format", &f)))
                break;
            if (f != FORMAT_VERSION)
                return errmsg_set(c->e, WEIR_ECORRUPT,
                                  "table log: %s: format %" PRIu64 " is not %d: "
                                  "written by another version of weir?",
                                  c->name, f, FORMAT_VERSION);
        } else if (key_is(c, k, "version")) {
            seen |= F_VERSION;
            rc = get_u64(c, v, "version", &p->version);
        } else if (key_is(c, k, "timestamp")) {
            seen |= F_TS;
            rc = get_time(c, v, "timestamp", &p->timestamp);
        } else if (!checkpoint && key_is(c, k, "operation")) {
            seen |= F_OP;
            rc = get_str(c, v, "operation", 32, &p->operation);
            if (!rc && !word_ok(p->operation, 32, 1))
                return corrupt(c, "operation: bad name \"%s\"", p->operation);
        } else if (!checkpoint && key_is(c, k, "read_version")) {
            rc = get_u64(c, v, "read_version", &p->read_version);
        } else if (!checkpoint && key_is(c, k, "txn")) {
            rc = get_str(c, v, "txn", MAX_NAME, &p->txn);
            if (!rc && !word_ok(p->txn, MAX_NAME, 0))
                return corrupt(c, "txn: bad value");
        } else if (key_is(c, k, checkpoint ? "oldest" : "horizon")) {
            rc = get_u64(c, v, "horizon", &p->horizon);
        } else if (key_is(c, k, checkpoint ? "files" : "add")) {
            rc = parse_files(c, v, checkpoint, &p->add, &p->nadd);
        } else if (!checkpoint && key_is(c, k, "remove")) {
            rc = get_str_array(c, v, "remove", parquet_path_ok, &p->remove,
                               &p->nremove);
        } else if (!checkpoint && key_is(c, k, "absorbed")) {
            rc = get_str_array(c, v, "absorbed", absorbed_ok_fn, &p->absorbed,
                               &p->nabsorbed);
        } else if (checkpoint && key_is(c, k, "absorbed")) {
            rc = parse_ptombs(c, v, "absorbed", absorbed_ok_fn, &p->absorbed_cp,
                              &p->nabsorbed_cp);
        } else if (!checkpoint && key_is(c, k, "purge")) {
            rc = get_str_array(c, v, "purge", parquet_path_ok, &p->purge,
                               &p->npurge);
        } else if (!checkpoint && key_is(c, k, "forget")) {
            rc = get_str_array(c, v, "forget", absorbed_ok_fn, &p->forget,
                               &p->nforget);
        } else if (checkpoint && key_is(c, k, "removed")) {
            rc = parse_ptombs(c, v, "removed", parquet_path_ok, &p->tombs,
                              &p->ntombs);
        } else if (key_is(c, k, "app")) {
            rc = parse_app(c, v, checkpoint, &p->app, &p->napp);
        } else {
            return corrupt(c, "unknown member %.*s", (int)tok(c, k)->len,
                           json_tok_ptr(c->d, tok(c, k)));
        }
    }
    if (rc)
        return rc;
    unsigned need = F_FORMAT | F_VERSION | F_TS | (checkpoint ? 0 : F_OP);
    if ((seen & need) != need)
        return corrupt(c, "a member is missing (format, version, timestamp%s)",
                       checkpoint ? "" : ", operation");
    if (!checkpoint && p->version == 0)
        return corrupt(c, "version 0 is not a commit");
    return 0;
}

/* ---- applying a commit to the state ------------------------------------- */

static int nomem(struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_ENOMEM, "table log: out of memory");
}

/*
 * Apply a parsed commit. A published commit was checked against the state
 * it landed on, so anything that does not apply means the log is corrupt.
 * On failure s is half-applied: the caller drops it.
 */
static int state_apply(struct state *s, const struct parsed *p,
                       const char *name, struct weir_errmsg *e)
{
    if (p->version != s->version + 1)
        return errmsg_set(e, WEIR_ECORRUPT,
                          "table log: %s: says version %" PRIu64
                          ", expected %" PRIu64, name, p->version, s->version + 1);
    for (size_t i = 0; i < p->nremove; i++) {
        struct item *it = table_take(&s->files, p->remove[i]);
        if (!it)
            return errmsg_set(e, WEIR_ECORRUPT,
                              "table log: %s: removes %s, which is not live",
                              name, p->remove[i]);
        free(it);
        struct tomb_item *tb = tomb_item_new(p->remove[i], p->version,
                                             p->timestamp);
        if (!tb || table_put(&s->tombs, (struct item *)tb)) {
            free(tb);
            return nomem(e);
        }
    }
    for (size_t i = 0; i < p->nadd; i++) {
        if (table_get(&s->files, p->add[i].path) ||
            table_get(&s->tombs, p->add[i].path))
            return errmsg_set(e, WEIR_ECORRUPT,
                              "table log: %s: adds %s, which was added before",
                              name, p->add[i].path);
        struct file_item *f = file_item_new(&p->add[i], p->version);
        if (!f || table_put(&s->files, (struct item *)f)) {
            free(f);
            return nomem(e);
        }
    }
    for (size_t i = 0; i < p->nabsorbed; i++) {
        if (table_get(&s->absorbed, base_name(p->absorbed[i])))
            return errmsg_set(e, WEIR_ECORRUPT,
                              "table log: %s: absorbs %s a second time", name,
                              p->absorbed[i]);
        struct abs_item *a = abs_item_new(p->absorbed[i], p->version,
                                          p->timestamp);
        if (!a || table_put(&s->absorbed, (struct item *)a)) {
            free(a);
            return nomem(e);
        }
    }
    for (size_t i = 0; i < p->npurge; i++) {
        struct item *it = table_take(&s->tombs, p->purge[i]);
        if (!it)
            return errmsg_set(e, WEIR_ECORRUPT,
                              "table log: %s: purges %s, which is not removed",
                              name, p->purge[i]);
        free(it);
    }
    for (size_t i = 0; i < p->nforget; i++) {
        struct item *it = table_take(&s->absorbed, base_name(p->forget[i]));
        if (!it)
            return errmsg_set(e, WEIR_ECORRUPT,
                              "table log: %s: forgets %s, which is not absorbed",
                              name, p->forget[i]);
        free(it);
    }
    for (size_t i = 0; i < p->napp; i++) {
        free(table_take(&s->app, p->app[i].key));
        if (p->app[i].len == 4 && memcmp(p->app[i].json, "null", 4) == 0)
            continue;
        struct app_item *a = app_item_new(p->app[i].key, p->app[i].json,
                                          p->app[i].len, p->version);
        if (!a || table_put(&s->app, (struct item *)a)) {
            free(a);
            return nomem(e);
        }
    }
    if (p->horizon > s->oldest)
        s->oldest = p->horizon;
    s->version = p->version;
    s->timestamp = p->timestamp;
    return 0;
}

/* Build a state from a parsed checkpoint. */
static int state_from_checkpoint(struct state *s, const struct parsed *p,
                                 const char *name, struct weir_errmsg *e)
{
    memset(s, 0, sizeof(*s));
    s->version = p->version;
    s->timestamp = p->timestamp;
    s->oldest = p->horizon;
    for (size_t i = 0; i < p->nadd; i++) {
        if (table_get(&s->files, p->add[i].path))
            goto dup;
        struct file_item *f = file_item_new(&p->add[i], p->add[i].version);
        if (!f || table_put(&s->files, (struct item *)f)) {
            free(f);
            goto oom;
        }
    }
    for (size_t i = 0; i < p->ntombs; i++) {
        if (table_get(&s->tombs, p->tombs[i].path) ||
            table_get(&s->files, p->tombs[i].path))
            goto dup;
        struct tomb_item *t = tomb_item_new(p->tombs[i].path, p->tombs[i].version,
                                            p->tombs[i].timestamp);
        if (!t || table_put(&s->tombs, (struct item *)t)) {
            free(t);
            goto oom;
        }
    }
    for (size_t i = 0; i < p->nabsorbed_cp; i++) {
        const struct ptomb *pa = &p->absorbed_cp[i];
        if (table_get(&s->absorbed, base_name(pa->path)))
            goto dup;
        struct abs_item *a = abs_item_new(pa->path, pa->version, pa->timestamp);
        if (!a || table_put(&s->absorbed, (struct item *)a)) {
            free(a);
            goto oom;
        }
    }
    for (size_t i = 0; i < p->napp; i++) {
        struct app_item *a = app_item_new(p->app[i].key, p->app[i].json,
                                          p->app[i].len, p->app[i].version);
        if (!a || table_put(&s->app, (struct item *)a)) {
            free(a);
            goto oom;
        }
    }
    return 0;
dup:
    state_release(s);
    return errmsg_set(e, WEIR_ECORRUPT, "table log: %s: an entry appears twice",
                      name);
oom:
    state_release(s);
    return nomem(e);
}

/* ---- reading the log ---------------------------------------------------- */

/* Read a log file into t->io. WEIR_ENOTFOUND if it does not exist. */
static int read_log_file(struct tablelog *t, const char *path, size_t max,
                         struct weir_errmsg *e)
{
    buf_reset(&t->io);
    t->io.max = max;
    int rc = fsio_read_file(path, &t->io);
    if (rc == WEIR_ENOTFOUND)
        return rc;
    if (rc == WEIR_ELIMIT)
        return errmsg_set(e, WEIR_ECORRUPT,
                          "table log: %s is larger than %zu bytes", path, max);
    if (rc)
        return errmsg_set(e, rc, "table log: cannot read %s: %s", path,
                          strerror(errno));
    return 0;
}

/* Read and parse the commit of version v into *p (scratch in sc).
 * WEIR_ENOTFOUND when the file does not exist. */
static int load_commit(struct tablelog *t, uint64_t v, struct scratch *sc,
                       struct parsed *p, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (log_path(t, v, 0, path, sizeof(path)))
        return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
    int rc = read_log_file(t, path, MAX_COMMIT_BYTES, e);
    if (rc)
        return rc;
    struct pctx c = {path, &t->doc, sc, e};
    rc = parse_text(&c, t->io.data ? t->io.data : "", t->io.len, 0, p);
    if (!rc && p->version != v)
        rc = errmsg_set(e, WEIR_ECORRUPT,
                        "table log: %s says version %" PRIu64, path, p->version);
    return rc;
}

static int apply_commit(struct tablelog *t, struct state *s, uint64_t v,
                        struct weir_errmsg *e)
{
    struct scratch sc = {0};
    struct parsed p;
    int rc = load_commit(t, v, &sc, &p, e);
    if (!rc) {
        char name[TL_VERSION_DIGITS + 8];
        snprintf(name, sizeof(name), "%020" PRIu64 ".json", v);
        rc = state_apply(s, &p, name, e);
        if (!rc && t->watch_txn && p.txn && strcmp(p.txn, t->watch_txn) == 0)
            t->watch_found = v;
    }
    scratch_release(&sc);
    return rc;
}

static int load_checkpoint(struct tablelog *t, uint64_t v, struct state *s,
                           struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (log_path(t, v, 1, path, sizeof(path)))
        return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
    int rc = read_log_file(t, path, MAX_CHECKPOINT_BYTES, e);
    if (rc)
        return rc;
    struct scratch sc = {0};
    struct parsed p;
    struct pctx c = {path, &t->doc, &sc, e};
    rc = parse_text(&c, t->io.data ? t->io.data : "", t->io.len, 1, &p);
    if (!rc && p.version != v)
        rc = errmsg_set(e, WEIR_ECORRUPT,
                        "table log: %s says version %" PRIu64, path, p.version);
    if (!rc)
        rc = state_from_checkpoint(s, &p, path, e);
    scratch_release(&sc);
    /* A checkpoint is read once per open; give back its buffer. */
    if (t->io.cap > (1u << 20))
        buf_release(&t->io);
    return rc;
}

/* The version in _last_checkpoint, 0 if there is none or it is unreadable
 * (it is only a hint: listing the directory finds the truth). */
static uint64_t read_hint(struct tablelog *t)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/_last_checkpoint", t->log_dir);
    struct buf b = BUF_INIT(256);
    uint64_t v = 0;
    if (fsio_read_file(path, &b) == 0 && b.len > 11 &&
        strncmp(b.data, "{\"version\":", 11) == 0) {
        const char *p = b.data + 11;
        uint64_t x;
        const char *q = p;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q - p <= 20 && q > p && parse_digits(&p, (int)(q - p), &x) &&
            *p == '}')
            v = x;
    }
    buf_release(&b);
    return v;
}

static int write_hint(struct tablelog *t, uint64_t v)
{
    if (read_hint(t) >= v)
        return 0;
    char path[PATH_MAX], text[64];
    snprintf(path, sizeof(path), "%s/_last_checkpoint", t->log_dir);
    int n = snprintf(text, sizeof(text), "{\"version\":%" PRIu64 "}\n", v);
    return fsio_write_file_atomic(path, text, (size_t)n, 0644);
}

/* Versions in _log: the newest checkpoint <= below (0: none), and the
 * smallest commit version present (0: none). ENOTFOUND-safe. */
static int list_log(struct tablelog *t, uint64_t below, uint64_t *ckpt,
                    uint64_t *first_commit, struct weir_errmsg *e)
{
    *ckpt = 0;
    if (first_commit)
        *first_commit = 0;
    DIR *d = fsio_opendir(t->log_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return errmsg_set(e, weir_from_errno(errno),
                          "table log: cannot list %s: %s", t->log_dir,
                          strerror(errno));
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t v;
        int kind = log_name_parse(de->d_name, &v);
        if (kind == 2 && v <= below && v > *ckpt)
            *ckpt = v;
        if (kind == 1 && first_commit && (!*first_commit || v < *first_commit))
            *first_commit = v;
    }
    closedir(d);
    return 0;
}

/*
 * 1 if the log may really end at version h: the commit file of h exists.
 * Vacuum deletes old commits in ascending order, so if commit h + 1 had
 * existed and been deleted, commit h was deleted before it; seeing h + 1
 * missing and then h present means h + 1 was never written. A reader that
 * started from an old checkpoint while a vacuum runs finds out here.
 */
static int log_end_ok(struct tablelog *t, uint64_t h)
{
    char path[PATH_MAX];
    struct stat st;
    if (h == 0)
        return read_hint(t) == 0;   /* an empty log has no checkpoint */
    return log_path(t, h, 0, path, sizeof(path)) == 0 &&
           (fsio_stat(path, &st) == 0 || errno != ENOENT);
}

/* Build the state of version target (0: the latest) into *s: from the
 * newest checkpoint at or below it, then the commits after. */
static int state_build(struct tablelog *t, uint64_t target, struct state *s,
                       struct weir_errmsg *e)
{
    memset(s, 0, sizeof(*s));
    uint64_t limit = target ? target : UINT64_MAX;
    for (int attempt = 0; attempt < 4; attempt++) {
        uint64_t base = attempt == 0 ? read_hint(t) : 0;
        int rc;
        if (attempt == 0 && base > limit) {
            /* --as-of an old version: checkpoints are at multiples of the
             * interval, try the one below before listing the directory. */
            char path[PATH_MAX];
            struct stat st;
            base = limit / TL_CHECKPOINT_INTERVAL * TL_CHECKPOINT_INTERVAL;
            if (base && (log_path(t, base, 1, path, sizeof(path)) ||
                         fsio_stat(path, &st) != 0))
                attempt++;
        }
        if (attempt > 0 && (rc = list_log(t, limit, &base, NULL, e)))
            return rc;
        if (base) {
            rc = load_checkpoint(t, base, s, e);
            if (rc == WEIR_ENOTFOUND)
                continue;      /* vacuumed meanwhile, or a stale hint: list */
            if (rc)
                return rc;
        }
        while (s->version < limit) {
            rc = apply_commit(t, s, s->version + 1, e);
            if (rc == WEIR_ENOTFOUND)
                break;
            if (rc) {
                state_release(s);
                return rc;
            }
        }
        if (s->version == 0 && !base) {
            /* No checkpoint and no commit 1: empty, or vacuumed away? */
            uint64_t ck, first;
            if ((rc = list_log(t, UINT64_MAX, &ck, &first, e)))
                return rc;
            if (first > 1 || ck) {
                state_release(s);
                if (attempt < 3)
                    continue;
                return errmsg_set(e, WEIR_ECORRUPT,
                                  "table log: %s starts at version %" PRIu64
                                  " and has no checkpoint to start from",
                                  t->log_dir, first);
            }
        } else if (s->version < limit && !log_end_ok(t, s->version)) {
            state_release(s);  /* a vacuum deleted what we were reading */
            continue;
        }
        if (target && s->version < target) {
            uint64_t latest = s->version;
            state_release(s);
            return errmsg_set(e, WEIR_ENOTFOUND,
                              "table log: version %" PRIu64
                              " does not exist, the latest is %" PRIu64,
                              target, latest);
        }
        return 0;
    }
    return errmsg_set(e, WEIR_ENOTFOUND,
                      "table log: %s: the log keeps changing under the reader "
                      "(a vacuum running?); try again", t->log_dir);
}

/* Bring t->head to the latest version. */
static int head_refresh(struct tablelog *t, struct weir_errmsg *e)
{
    int rc;
    for (int round = 0; round < 3; round++) {
        if (!t->head_valid) {
            if ((rc = state_build(t, 0, &t->head, e)))
                return rc;
            t->head_valid = 1;
            return 0;
        }
        for (;;) {
            rc = apply_commit(t, &t->head, t->head.version + 1, e);
            if (rc == WEIR_ENOTFOUND)
                break;
            if (rc) {
                state_release(&t->head);
                t->head_valid = 0;
                return rc;
            }
        }
        /* The next commit may be missing because a vacuum deleted it (we
         * were idle longer than the retention): start again from the
         * newest checkpoint. */
        if (log_end_ok(t, t->head.version))
            return 0;
        state_release(&t->head);
        t->head_valid = 0;
    }
    return errmsg_set(e, WEIR_ECORRUPT,
                      "table log: %s: cannot find the end of the log",
                      t->log_dir);
}

int tl_latest(struct tablelog *t, uint64_t *version, struct weir_errmsg *e)
{
    int rc = head_refresh(t, e);
    *version = rc ? 0 : t->head.version;
    return rc;
}

/* ---- snapshots ---------------------------------------------------------- */

struct snapmem {
    struct state st;
    struct tl_file *files;
    struct tl_tombstone *removed;
    struct tl_absorbed *absorbed;
    struct tl_app *app;
};

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct tl_file *)a)->path,
                  ((const struct tl_file *)b)->path);
}

static int cmp_tomb(const void *a, const void *b)
{
    return strcmp(((const struct tl_tombstone *)a)->path,
                  ((const struct tl_tombstone *)b)->path);
}

static int cmp_abs(const void *a, const void *b)
{
    return strcmp(((const struct tl_absorbed *)a)->name,
                  ((const struct tl_absorbed *)b)->name);
}

static int cmp_app(const void *a, const void *b)
{
    return strcmp(((const struct tl_app *)a)->key,
                  ((const struct tl_app *)b)->key);
}

/* Take ownership of the state st (moved) into out. */
static int snapshot_fill(struct state *st, struct tl_snapshot *out,
                         struct weir_errmsg *e)
{
    struct snapmem *m = calloc(1, sizeof(*m));
    if (!m) {
        state_release(st);
        return nomem(e);
    }
    m->st = *st;
    memset(st, 0, sizeof(*st));
    out->priv = m;
    size_t nf = m->st.files.n, nt = m->st.tombs.n, na = m->st.absorbed.n,
           np = m->st.app.n;
    m->files = calloc(nf ? nf : 1, sizeof(*m->files));
    m->removed = calloc(nt ? nt : 1, sizeof(*m->removed));
    m->absorbed = calloc(na ? na : 1, sizeof(*m->absorbed));
    m->app = calloc(np ? np : 1, sizeof(*m->app));
    if (!m->files || !m->removed || !m->absorbed || !m->app)
        return nomem(e);
    for (size_t i = 0; i < nf; i++)
        m->files[i] = ((struct file_item *)(void *)m->st.files.v[i])->f;
    for (size_t i = 0; i < nt; i++) {
        const struct tomb_item *it = (const void *)m->st.tombs.v[i];
        m->removed[i] = (struct tl_tombstone){it->key, it->version,
                                              it->timestamp};
    }
    for (size_t i = 0; i < na; i++) {
        const struct abs_item *it = (const void *)m->st.absorbed.v[i];
        m->absorbed[i] = (struct tl_absorbed){it->path, it->key, it->version,
                                              it->timestamp};
    }
    for (size_t i = 0; i < np; i++) {
        const struct app_item *it = (const void *)m->st.app.v[i];
        m->app[i] = (struct tl_app){it->key, it->json, it->len, it->version};
    }
    qsort(m->files, nf, sizeof(*m->files), cmp_file);
    qsort(m->removed, nt, sizeof(*m->removed), cmp_tomb);
    qsort(m->absorbed, na, sizeof(*m->absorbed), cmp_abs);
    qsort(m->app, np, sizeof(*m->app), cmp_app);
    out->version = m->st.version;
    out->timestamp = m->st.timestamp;
    out->files = m->files;
    out->nfiles = nf;
    out->removed = m->removed;
    out->nremoved = nt;
    out->absorbed = m->absorbed;
    out->nabsorbed = na;
    out->app = m->app;
    out->napp = np;
    return 0;
}

int tl_snapshot(struct tablelog *t, uint64_t version, struct tl_snapshot *out,
                struct weir_errmsg *e)
{
    memset(out, 0, sizeof(*out));
    int rc = head_refresh(t, e);
    if (rc)
        return rc;
    uint64_t oldest = t->head.oldest ? t->head.oldest : 1;
    if (version > t->head.version)
        return errmsg_set(e, WEIR_ENOTFOUND,
                          "table log: version %" PRIu64
                          " does not exist, the latest is %" PRIu64,
                          version, t->head.version);
    if (version && version < oldest)
        return errmsg_set(e, WEIR_ENOTFOUND,
                          "table log: version %" PRIu64
                          " is older than the oldest kept (%" PRIu64
                          "): vacuum deleted its files", version, oldest);
    struct state st;
    if (version == 0 || version == t->head.version)
        rc = state_clone(&t->head, &st);
    else
        rc = state_build(t, version, &st, e);
    if (rc == WEIR_ENOMEM)
        return nomem(e);
    if (rc)
        return rc;
    rc = snapshot_fill(&st, out, e);
    if (rc) {
        tl_snapshot_release(out);
        return rc;
    }
    out->oldest = t->head.version ? oldest : 0;
    return 0;
}

void tl_snapshot_release(struct tl_snapshot *s)
{
    struct snapmem *m = s->priv;
    if (m) {
        state_release(&m->st);
        free(m->files);
        free(m->removed);
        free(m->absorbed);
        free(m->app);
        free(m);
    }
    memset(s, 0, sizeof(*s));
}

int tl_snapshot_absorbed(const struct tl_snapshot *s, const char *name_or_path)
{
    const char *name = base_name(name_or_path);
    size_t lo = 0, hi = s->nabsorbed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->absorbed[mid].name, name);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

const struct tl_file *tl_snapshot_file(const struct tl_snapshot *s,
                                       const char *path)
{
    size_t lo = 0, hi = s->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->files[mid].path, path);
        if (c == 0)
            return &s->files[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct tl_app *tl_snapshot_app(const struct tl_snapshot *s,
                                     const char *key)
{
    size_t lo = 0, hi = s->napp;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->app[mid].key, key);
        if (c == 0)
            return &s->app[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- writing commits ---------------------------------------------------- */

static int put_time(struct buf *b, int64_t ns)
{
    char ts[64];
    wtime_format_rfc3339(ns, 9, ts, sizeof(ts));
    return buf_appendf(b, "\"%s\"", ts);
}

static int put_file(struct buf *b, const struct tl_file *f, int with_version)
{
    int rc = buf_puts(b, "{\"path\":");
    rc = rc ? rc : buf_put_json_string(b, f->path, strlen(f->path));
    rc = rc ? rc : buf_puts(b, ",\"partition\":");
    rc = rc ? rc : buf_put_json_string(b, f->partition, strlen(f->partition));
    rc = rc ? rc : buf_appendf(b, ",\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64
                               ",\"min_time\":", f->rows, f->bytes);
    rc = rc ? rc : put_time(b, f->min_time);
    rc = rc ? rc : buf_puts(b, ",\"max_time\":");
    rc = rc ? rc : put_time(b, f->max_time);
    if (with_version)
        rc = rc ? rc : buf_appendf(b, ",\"version\":%" PRIu64, f->version);
    rc = rc ? rc : buf_puts(b, ",\"columns\":[");
    for (size_t i = 0; i < f->ncolumns && !rc; i++) {
        rc = buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        rc = rc ? rc : buf_put_json_string(b, f->columns[i].name,
                                           strlen(f->columns[i].name));
        rc = rc ? rc : buf_puts(b, ",\"type\":");
        rc = rc ? rc : buf_put_json_string(b, f->columns[i].type,
                                           strlen(f->columns[i].type));
        rc = rc ? rc : buf_putc(b, '}');
    }
    return rc ? rc : buf_puts(b, "]}");
}

static int put_str_array(struct buf *b, const char *key,
                         const char *const *v, size_t n)
{
    if (!n)
        return 0;
    int rc = buf_appendf(b, ",\n\"%s\":[", key);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = i ? buf_putc(b, ',') : 0;
        rc = rc ? rc : buf_put_json_string(b, v[i], strlen(v[i]));
    }
    return rc ? rc : buf_putc(b, ']');
}

/* A commit plus what only vacuum writes. */
struct xcommit {
    const struct tl_commit *c;
    uint64_t horizon;
    const char *const *purge;
    size_t npurge;
    const char *const *forget;
    size_t nforget;
};

static int commit_text(struct buf *b, const struct xcommit *x, uint64_t v,
                       int64_t ts, const char *txn)
{
    const struct tl_commit *c = x->c;
    int rc = buf_appendf(b, "{\"format\":%d,\"version\":%" PRIu64
                         ",\"timestamp\":", FORMAT_VERSION, v);
    rc = rc ? rc : put_time(b, ts);
    rc = rc ? rc : buf_appendf(b, ",\"operation\":\"%s\",\"read_version\":%" PRIu64,
                               c->operation, c->read_version);
    if (txn) {
        rc = rc ? rc : buf_puts(b, ",\"txn\":");
        rc = rc ? rc : buf_put_json_string(b, txn, strlen(txn));
    }
    if (x->horizon)
        rc = rc ? rc : buf_appendf(b, ",\"horizon\":%" PRIu64, x->horizon);
    if (c->nadd) {
        rc = rc ? rc : buf_puts(b, ",\n\"add\":[");
        for (size_t i = 0; i < c->nadd && !rc; i++) {
            rc = buf_puts(b, i ? ",\n" : "\n");
            rc = rc ? rc : put_file(b, &c->add[i], 0);
        }
        rc = rc ? rc : buf_putc(b, ']');
    }
    rc = rc ? rc : put_str_array(b, "remove", c->remove, c->nremove);
    rc = rc ? rc : put_str_array(b, "absorbed", c->absorbed, c->nabsorbed);
    rc = rc ? rc : put_str_array(b, "purge", x->purge, x->npurge);
    rc = rc ? rc : put_str_array(b, "forget", x->forget, x->nforget);
    if (c->app) {
        rc = rc ? rc : buf_puts(b, ",\n\"app\":");
        rc = rc ? rc : buf_append(b, c->app, c->app_len);
    }
    return rc ? rc : buf_puts(b, "}\n");
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if the n strings (any order) hold a duplicate; key picks what counts. */
static int has_dup(const char *const *v, size_t n, int by_base)
{
    if (n < 2)
        return 0;
    const char **s = malloc(n * sizeof(*s));
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        s[i] = by_base ? base_name(v[i]) : v[i];
    qsort(s, n, sizeof(*s), cmp_strp);
    int dup = 0;
    for (size_t i = 1; i < n && !dup; i++)
        dup = strcmp(s[i - 1], s[i]) == 0;
    free(s);
    return dup;
}

/* Shape checks that need no state: WEIR_EINVAL for a caller's bug. */
static int commit_check_shape(const struct xcommit *x, int internal,
                              struct weir_errmsg *e)
{
    const struct tl_commit *c = x->c;
    if (!word_ok(c->operation, 32, 1) ||
        (!internal && strcmp(c->operation, "vacuum") == 0))
        return errmsg_set(e, WEIR_EINVAL, "table log: bad operation name '%s'",
                          c->operation ? c->operation : "(null)");
    if (c->read_version > INT64_MAX)
        return errmsg_set(e, WEIR_EINVAL, "table log: bad read_version");
    if (c->txn && !word_ok(c->txn, MAX_NAME, 0))
        return errmsg_set(e, WEIR_EINVAL, "table log: bad txn");
    for (size_t i = 0; i < c->nadd; i++) {
        const struct tl_file *f = &c->add[i];
        if (!add_path_ok(f))
            return errmsg_set(e, WEIR_EINVAL,
                              "table log: add: bad path '%s' for partition '%s' "
                              "(want parquet/<partition>/part-<v>-<n>.parquet)",
                              f->path ? f->path : "(null)",
                              f->partition ? f->partition : "(null)");
        if (f->min_time > f->max_time)
            return errmsg_set(e, WEIR_EINVAL,
                              "table log: add %s: min_time after max_time", f->path);
        int64_t lo = wtime_days_from_civil(1678, 1, 1) * 86400 * 1000000000LL,
                hi = wtime_days_from_civil(2262, 1, 1) * 86400 * 1000000000LL;
        if (f->min_time < lo || f->max_time >= hi || f->rows > INT64_MAX ||
            f->bytes > INT64_MAX)
            return errmsg_set(e, WEIR_EINVAL,
                              "table log: add %s: times must lie in years "
                              "1678..2261, counts below 2^63", f->path);
        for (size_t j = 0; j < f->ncolumns; j++) {
            const struct tl_column *col = &f->columns[j];
            if (!col->name || !col->type || !*col->type ||
                strlen(col->name) > MAX_TYPE || strlen(col->type) > MAX_TYPE ||
                !json_utf8_valid(col->name, strlen(col->name)) ||
                !json_utf8_valid(col->type, strlen(col->type)))
                return errmsg_set(e, WEIR_EINVAL,
                                  "table log: add %s: bad column %zu", f->path, j);
        }
    }
    for (size_t i = 0; i < c->nremove; i++)
        if (!c->remove[i] || !parquet_path_ok(c->remove[i]))
            return errmsg_set(e, WEIR_EINVAL, "table log: remove: bad path '%s'",
                              c->remove[i] ? c->remove[i] : "(null)");
    for (size_t i = 0; i < c->nabsorbed; i++)
        if (!absorbed_path_ok(c->absorbed[i]))
            return errmsg_set(e, WEIR_EINVAL,
                              "table log: absorbed: '%s' is not raw/<partition>/"
                              "<sealed segment name>",
                              c->absorbed[i] ? c->absorbed[i] : "(null)");
    /* Duplicates inside the commit. */
    const char **paths = malloc((c->nadd + c->nremove + 1) * sizeof(*paths));
    if (!paths)
        return nomem(e);
    for (size_t i = 0; i < c->nadd; i++)
        paths[i] = c->add[i].path;
    for (size_t i = 0; i < c->nremove; i++)
        paths[c->nadd + i] = c->remove[i];
    int dup = has_dup(paths, c->nadd + c->nremove, 0);
    free(paths);
    if (dup || has_dup(c->absorbed, c->nabsorbed, 1))
        return errmsg_set(e, WEIR_EINVAL, "table log: a path appears twice in "
                                          "the commit");
    if (c->app) {
        struct json_doc d;
        json_doc_init(&d, 64);
        int ok = json_scan(&d, c->app, c->app_len) == JSON_OK &&
                 d.toks[0].type == JSON_OBJECT &&
                 json_object_find_duplicate(&d, 0) < 0 &&
                 memchr(c->app, '\0', c->app_len) == NULL;
        if (ok) {
            uint32_t k = 1;
            char key[MAX_APP_KEY + 1];
            for (uint32_t m = 0; m < d.toks[0].count && ok; m++) {
                size_t n = json_str_decode(&d, &d.toks[k], key, MAX_APP_KEY);
                if (n > MAX_APP_KEY) {
                    ok = 0;
                    break;
                }
                key[n] = '\0';
                ok = strlen(key) == n && app_key_ok(key);
                k = d.toks[k + 1].next;
            }
        }
        json_doc_release(&d);
        if (!ok)
            return errmsg_set(e, WEIR_EINVAL,
                              "table log: app: not one JSON object with keys of "
                              "printable ASCII (no '\"' or '\\\\', <= %d bytes)",
                              MAX_APP_KEY);
    }
    return 0;
}

/* Checks against the head: WEIR_ECONFLICT if c no longer applies. */
static int commit_check_state(struct tablelog *t, const struct xcommit *x,
                              struct weir_errmsg *e)
{
    const struct tl_commit *c = x->c;
    const struct state *s = &t->head;
    if ((c->flags & TL_COMMIT_STRICT) && s->version != c->read_version)
        return errmsg_set(e, WEIR_ECONFLICT,
                          "table log: version %" PRIu64 " was committed after "
                          "version %" PRIu64 " that this %s was based on",
                          s->version, c->read_version, c->operation);
    for (size_t i = 0; i < c->nremove; i++)
        if (!table_get(&s->files, c->remove[i]))
            return errmsg_set(e, WEIR_ECONFLICT,
                              "table log: %s is no longer live at version %"
                              PRIu64 " (removed by another commit)",
                              c->remove[i], s->version);
    for (size_t i = 0; i < c->nadd; i++)
        if (table_get(&s->files, c->add[i].path) ||
            table_get(&s->tombs, c->add[i].path))
            return errmsg_set(e, WEIR_ECONFLICT,
                              "table log: %s is already in the table",
                              c->add[i].path);
    for (size_t i = 0; i < c->nabsorbed; i++) {
        const struct abs_item *a = table_get(&s->absorbed,
                                             base_name(c->absorbed[i]));
        if (a)
            return errmsg_set(e, WEIR_ECONFLICT,
                              "table log: segment %s was absorbed by version %"
                              PRIu64, c->absorbed[i], a->version);
    }
    for (size_t i = 0; i < x->npurge; i++)
        if (!table_get(&s->tombs, x->purge[i]))
            return errmsg_set(e, WEIR_ECONFLICT,
                              "table log: %s was purged already", x->purge[i]);
    for (size_t i = 0; i < x->nforget; i++)
        if (!table_get(&s->absorbed, base_name(x->forget[i])))
            return errmsg_set(e, WEIR_ECONFLICT,
                              "table log: %s was forgotten already",
                              x->forget[i]);
    return 0;
}

/* Absorbed segments must still be on disk: one that is gone was absorbed
 * and deleted (perhaps also forgotten by a vacuum). Checked after the head
 * refresh: a segment never comes back once deleted. */
static int commit_check_disk(struct tablelog *t, const struct xcommit *x,
                             struct weir_errmsg *e)
{
    const struct tl_commit *c = x->c;
    char path[PATH_MAX];
    struct stat st;
    for (size_t i = 0; i < c->nabsorbed; i++) {
        if (full_path(t, c->absorbed[i], path, sizeof(path)))
            return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
        if (fsio_stat(path, &st) != 0) {
            if (errno == ENOENT)
                return errmsg_set(e, WEIR_ECONFLICT,
                                  "table log: segment %s is gone (absorbed by "
                                  "another compaction)", c->absorbed[i]);
            return errmsg_set(e, weir_from_errno(errno),
                              "table log: cannot stat %s: %s", path,
                              strerror(errno));
        }
    }
    return 0;
}

/* Added files: present with the size said; then their mtime is set to now,
 * so tl_recover's grace counts from the commit, not from the write. */
static int commit_check_adds(struct tablelog *t, const struct tl_commit *c,
                             int touch, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    struct stat st;
    for (size_t i = 0; i < c->nadd; i++) {
        if (full_path(t, c->add[i].path, path, sizeof(path)))
            return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
        if (fsio_stat(path, &st) != 0)
            return errmsg_set(e, errno == ENOENT ? WEIR_EINVAL
                                                 : weir_from_errno(errno),
                              "table log: added file %s: %s", path,
                              strerror(errno));
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != c->add[i].bytes)
            return errmsg_set(e, WEIR_EINVAL,
                              "table log: added file %s has %lld bytes, the "
                              "commit says %" PRIu64, path,
                              (long long)st.st_size, c->add[i].bytes);
        /* The clock of the grace (wtime, fakeable in tests), not the
         * kernel's own "now". */
        int64_t now = wtime_now_ns();
        struct timespec ts[2] = {{now / 1000000000LL, now % 1000000000LL},
                                 {now / 1000000000LL, now % 1000000000LL}};
        if (touch && utimensat(AT_FDCWD, path, ts, 0) != 0)
            return errmsg_set(e, weir_from_errno(errno),
                              "table log: cannot touch %s: %s", path,
                              strerror(errno));
    }
    return 0;
}

/* Scan commits (from, to] for txn; the version, or 0. Missing files (a
 * vacuum) end the scan quietly. */
static uint64_t find_txn(struct tablelog *t, uint64_t from, uint64_t to,
                         const char *txn)
{
    for (uint64_t v = from + 1; v <= to; v++) {
        struct scratch sc = {0};
        struct parsed p;
        struct weir_errmsg e2;
        int rc = load_commit(t, v, &sc, &p, &e2);
        int hit = !rc && p.txn && strcmp(p.txn, txn) == 0;
        scratch_release(&sc);
        if (hit)
            return v;
        if (rc == WEIR_ENOTFOUND)
            continue;
    }
    return 0;
}

static void make_txn(char *out, size_t cap)
{
    unsigned char r[12];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* Unique enough without the entropy pool: pid, time, address. */
        uint64_t x = (uint64_t)wtime_now_ns() ^ ((uint64_t)getpid() << 40) ^
                     (uint64_t)(uintptr_t)out;
        memcpy(r, &x, 8);
        memset(r + 8, 0, 4);
    }
    size_t o = 0;
    for (size_t i = 0; i < sizeof(r) && o + 3 <= cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", r[i]);
}

/*
 * fsio_publish_excl, spelled out so that the caller knows which step
 * failed: *visible is set once the final name is ours (the rename
 * succeeded, or a link() fallback linked but could not unlink the temp
 * name), whatever happens after. Returns 0, WEIR_EEXIST (someone else has
 * the name, nothing changed) or the error.
 */
static int publish(const char *path, const void *data, size_t len,
                   int *visible)
{
    static _Atomic unsigned long counter;
    char tmp[PATH_MAX];
    int fd = -1, rc;
    *visible = 0;
    for (int tries = 0; fd < 0; tries++) {
        int w = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%lu", path,
                         (long)getpid(), counter++);
        if (w < 0 || (size_t)w >= sizeof(tmp))
            return WEIR_ELIMIT;
        fd = fsio_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && (errno != EEXIST || tries > 100))
            return weir_from_errno(errno);
    }
    rc = fsio_write_all(fd, data, len, NULL);
    if (!rc)
        rc = fsio_fsync(fd);
    int saved = errno;
    if (fsio_close(fd) != 0 && !rc) {
        rc = WEIR_EIO;
        saved = errno;
    }
    if (!rc) {
        rc = fsio_rename_excl(tmp, path);
        saved = errno;
        if (rc == 0) {
            *visible = 1;
        } else if (rc != WEIR_EEXIST) {
            struct stat a, b;
            if (fsio_stat(tmp, &a) == 0 && fsio_stat(path, &b) == 0 &&
                a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                *visible = 1;   /* linked; only the unlink of tmp failed */
        }
    }
    if (rc)
        fsio_unlink(tmp);
    if (*visible) {
        rc = fsio_fsync_parent(path);
        saved = errno;
    }
    errno = saved;
    return rc;
}

static int write_checkpoint(struct tablelog *t, const struct state *s,
                            struct weir_errmsg *e);

static int do_commit(struct tablelog *t, const struct xcommit *x, int internal,
                     uint64_t *version_out, struct weir_errmsg *e)
{
    const struct tl_commit *c = x->c;
    if (version_out)
        *version_out = 0;
    int rc = commit_check_shape(x, internal, e);
    if (rc)
        return rc;
    if ((rc = commit_check_adds(t, c, 0, e)))
        return rc;
    if (!t->log_dir_ok && (rc = fsio_mkdir_p(t->log_dir, 0755)))
        return errmsg_set(e, rc, "table log: cannot create %s: %s", t->log_dir,
                          strerror(errno));
    t->log_dir_ok = 1;
    char txn[MAX_NAME + 1];
    if (c->txn)
        snprintf(txn, sizeof(txn), "%s", c->txn);
    else
        make_txn(txn, sizeof(txn));

    struct buf text = BUF_INIT(MAX_COMMIT_BYTES);
    char path[PATH_MAX];
    t->watch_txn = c->txn;
    t->watch_found = 0;
    uint64_t v = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt == TL_MAX_COMMIT_ATTEMPTS) {
            rc = errmsg_set(e, WEIR_EAGAIN,
                            "table log: lost the race for a version %d times",
                            attempt);
            goto out;
        }
        if ((rc = head_refresh(t, e)))
            goto out;
        if (c->txn && attempt == 0 && c->read_version < t->head.version)
            t->watch_found = find_txn(t, c->read_version, t->head.version,
                                      c->txn);
        if (t->watch_found) {
            /* Published by an earlier call whose outcome was unknown. */
            if (version_out)
                *version_out = t->watch_found;
            rc = 0;
            goto out;
        }
        if ((rc = commit_check_state(t, x, e)) ||
            (rc = commit_check_disk(t, x, e)))
            goto out;
        v = t->head.version + 1;
        if (log_path(t, v, 0, path, sizeof(path))) {
            rc = errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
            goto out;
        }
        /* head_refresh checked that the log really ends at v - 1 (a
         * vacuum had not deleted commits after our head), so publishing v
         * cannot fork the history. */
        if ((rc = commit_check_adds(t, c, 1, e)))
            goto out;
        int64_t ts = wtime_now_ns();
        if (ts < t->head.timestamp)
            ts = t->head.timestamp;   /* keep timestamps monotonic */
        buf_reset(&text);
        if ((rc = commit_text(&text, x, v, ts, txn))) {
            rc = errmsg_set(e, rc, "table log: the commit is larger than %u "
                                   "bytes", (unsigned)MAX_COMMIT_BYTES);
            goto out;
        }
        crash_point(TL_CRASH_BEFORE_WRITE);
        int visible;
        rc = publish(path, text.data, text.len, &visible);
        if (rc == WEIR_EEXIST)
            continue;              /* lost the race: next number */
        if (rc && !visible) {
            rc = errmsg_set(e, rc, "table log: cannot write %s: %s (nothing "
                                   "was committed)", path, strerror(errno));
            goto out;
        }
        if (rc) {
            /* The name is ours and visible; its durability is what failed
             * (the directory fsync). Once more, then tell the caller. */
            if (fsio_fsync_dir(t->log_dir) != 0) {
                if (version_out)
                    *version_out = v;
                rc = errmsg_set(e, rc, "table log: version %" PRIu64
                                " is visible but its directory fsync failed "
                                "(%s); delete nothing, call again", v,
                                strerror(errno));
                goto out;
            }
            rc = 0;
        }
        break;
    }
    crash_point(TL_CRASH_AFTER_PUBLISH);
    if (version_out)
        *version_out = v;
    /* Move the head onto our own commit, parsed back as any reader will
     * (the head is at v - 1: it was refreshed just before). */
    t->watch_txn = NULL;
    {
        struct scratch sc = {0};
        struct parsed p;
        struct weir_errmsg e2;
        struct pctx pc = {path, &t->doc, &sc, &e2};
        if (parse_text(&pc, text.data, text.len, 0, &p) ||
            state_apply(&t->head, &p, path, &e2)) {
            log_warn("table log: committed version %" PRIu64 " but cannot "
                     "read it back: %s", v, e2.text);
            state_release(&t->head);
            t->head_valid = 0;
        }
        scratch_release(&sc);
    }
    if (v % TL_CHECKPOINT_INTERVAL == 0 && t->head_valid) {
        crash_point(TL_CRASH_BEFORE_CHECKPOINT);
        struct state at;
        struct weir_errmsg e2;
        int crc = t->head.version == v ? 0 : state_build(t, v, &at, &e2);
        if (!crc) {
            crc = write_checkpoint(t, t->head.version == v ? &t->head : &at, &e2);
            if (t->head.version != v)
                state_release(&at);
        }
        if (crc)
            log_warn("%s", e2.text);
    }
out:
    t->watch_txn = NULL;
    buf_release(&text);
    return rc;
}

int tl_commit(struct tablelog *t, const struct tl_commit *c,
              uint64_t *version_out, struct weir_errmsg *e)
{
    struct xcommit x = {c, 0, NULL, 0, NULL, 0};
    return do_commit(t, &x, 0, version_out, e);
}

/* ---- checkpoints -------------------------------------------------------- */

static int cmp_item_key(const void *a, const void *b)
{
    return strcmp((*(const struct item *const *)a)->key,
                  (*(const struct item *const *)b)->key);
}

/* The table's items sorted by key (a copy of the pointer array). */
static struct item **sorted_items(const struct table *tb)
{
    struct item **v = malloc((tb->n ? tb->n : 1) * sizeof(*v));
    if (v && tb->n) {
        memcpy(v, tb->v, tb->n * sizeof(*v));
        qsort(v, tb->n, sizeof(*v), cmp_item_key);
    }
    return v;
}

static int checkpoint_text(struct buf *b, const struct state *s)
{
    struct item **files = sorted_items(&s->files),
                **tombs = sorted_items(&s->tombs),
                **abs = sorted_items(&s->absorbed),
                **app = sorted_items(&s->app);
    int rc = WEIR_ENOMEM;
    if (!files || !tombs || !abs || !app)
        goto out;
    rc = buf_appendf(b, "{\"format\":%d,\"version\":%" PRIu64 ",\"timestamp\":",
                     FORMAT_VERSION, s->version);
    rc = rc ? rc : put_time(b, s->timestamp);
    rc = rc ? rc : buf_appendf(b, ",\"oldest\":%" PRIu64 ",\n\"files\":[",
                               s->oldest);
    for (size_t i = 0; i < s->files.n && !rc; i++) {
        rc = buf_puts(b, i ? ",\n" : "\n");
        rc = rc ? rc : put_file(b, &((struct file_item *)(void *)files[i])->f, 1);
    }
    rc = rc ? rc : buf_puts(b, "],\n\"removed\":[");
    for (size_t i = 0; i < s->tombs.n && !rc; i++) {
        const struct tomb_item *it = (const void *)tombs[i];
        rc = buf_puts(b, i ? ",\n{\"path\":" : "\n{\"path\":");
        rc = rc ? rc : buf_put_json_string(b, it->key, strlen(it->key));
        rc = rc ? rc : buf_appendf(b, ",\"version\":%" PRIu64 ",\"timestamp\":",
                                   it->version);
        rc = rc ? rc : put_time(b, it->timestamp);
        rc = rc ? rc : buf_putc(b, '}');
    }
    rc = rc ? rc : buf_puts(b, "],\n\"absorbed\":[");
    for (size_t i = 0; i < s->absorbed.n && !rc; i++) {
        const struct abs_item *it = (const void *)abs[i];
        rc = buf_puts(b, i ? ",\n{\"path\":" : "\n{\"path\":");
        rc = rc ? rc : buf_put_json_string(b, it->path, strlen(it->path));
        rc = rc ? rc : buf_appendf(b, ",\"version\":%" PRIu64 ",\"timestamp\":",
                                   it->version);
        rc = rc ? rc : put_time(b, it->timestamp);
        rc = rc ? rc : buf_putc(b, '}');
    }
    rc = rc ? rc : buf_puts(b, "],\n\"app\":{");
    for (size_t i = 0; i < s->app.n && !rc; i++) {
        const struct app_item *it = (const void *)app[i];
        rc = buf_puts(b, i ? ",\n" : "\n");
        rc = rc ? rc : buf_put_json_string(b, it->key, strlen(it->key));
        rc = rc ? rc : buf_appendf(b, ":{\"version\":%" PRIu64 ",\"value\":",
                                   it->version);
        rc = rc ? rc : buf_append(b, it->json, it->len);
        rc = rc ? rc : buf_putc(b, '}');
    }
    rc = rc ? rc : buf_puts(b, "}}\n");
out:
    free(files);
    free(tombs);
    free(abs);
    free(app);
    return rc;
}

static int write_checkpoint(struct tablelog *t, const struct state *s,
                            struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (s->version == 0)
        return 0;
    if (log_path(t, s->version, 1, path, sizeof(path)))
        return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
    struct buf b = BUF_INIT(MAX_CHECKPOINT_BYTES);
    int rc = checkpoint_text(&b, s);
    if (rc) {
        buf_release(&b);
        return errmsg_set(e, rc, "table log: checkpoint %" PRIu64 ": %s",
                          s->version, rc == WEIR_ELIMIT
                              ? "the state is larger than the checkpoint limit"
                              : weir_strerror(rc));
    }
    rc = fsio_write_file_atomic(path, b.data, b.len, 0644);
    buf_release(&b);
    if (rc)
        return errmsg_set(e, rc, "table log: cannot write checkpoint %s: %s",
                          path, strerror(errno));
    if ((rc = write_hint(t, s->version)))
        return errmsg_set(e, rc, "table log: cannot write %s/_last_checkpoint: %s",
                          t->log_dir, strerror(errno));
    return 0;
}

int tl_checkpoint(struct tablelog *t, struct weir_errmsg *e)
{
    int rc = head_refresh(t, e);
    if (rc)
        return rc;
    return write_checkpoint(t, &t->head, e);
}

/* ---- Parquet file names for writers ------------------------------------- */

int tl_tmp_file(struct tablelog *t, const char *partition, char *out,
                size_t cap, struct weir_errmsg *e)
{
    if (!partition || !partition_ok(partition))
        return errmsg_set(e, WEIR_EINVAL, "table log: bad partition key '%s'",
                          partition ? partition : "(null)");
    uint64_t v;
    int rc = tl_latest(t, &v, e);
    if (rc)
        return rc;
    char dir[PATH_MAX];
    int w = snprintf(dir, sizeof(dir), "%s/parquet%s%s", t->dir,
                     *partition ? "/" : "", partition);
    if (w < 0 || (size_t)w >= sizeof(dir))
        return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
    if ((rc = fsio_mkdir_p(dir, 0755)))
        return errmsg_set(e, rc, "table log: cannot create %s: %s", dir,
                          strerror(errno));
    static _Atomic unsigned long counter;
    for (int tries = 0; tries < 1000; tries++) {
        w = snprintf(out, cap, "%s/part-%020" PRIu64 "-0.parquet.tmp.%ld.%lu",
                     dir, v + 1, (long)getpid(), counter++);
        if (w < 0 || (size_t)w >= cap)
            return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
        int fd = fsio_open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            fsio_close(fd);
            return 0;
        }
        if (errno != EEXIST)
            return errmsg_set(e, weir_from_errno(errno),
                              "table log: cannot create %s: %s", out,
                              strerror(errno));
    }
    return errmsg_set(e, WEIR_EEXIST, "table log: no free temporary name in %s",
                      dir);
}

int tl_place_file(struct tablelog *t, const char *tmp_path, char *rel_out,
                  size_t cap, uint64_t *bytes, struct weir_errmsg *e)
{
    size_t dn = strlen(t->dir);
    const char *slash = strrchr(tmp_path, '/');
    if (strncmp(tmp_path, t->dir, dn) != 0 ||
        strncmp(tmp_path + dn, "/parquet/", 9) != 0 || !slash ||
        !fsio_is_tmp_name(slash + 1))
        return errmsg_set(e, WEIR_EINVAL,
                          "table log: %s is not a temporary file from tl_tmp_file",
                          tmp_path);
    size_t reldir_len = (size_t)(slash - (tmp_path + dn + 1)); /* "parquet/.." */
    int fd = fsio_open(tmp_path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return errmsg_set(e, weir_from_errno(errno), "table log: cannot open %s: %s",
                          tmp_path, strerror(errno));
    struct stat st;
    int rc = fsio_fstat(fd, &st) != 0 ? weir_from_errno(errno) : 0;
    if (!rc)
        rc = fsio_fsync(fd);
    int err = errno;
    fsio_close(fd);
    if (rc)
        return errmsg_set(e, rc, "table log: cannot fsync %s: %s", tmp_path,
                          strerror(err));
    uint64_t v;
    if ((rc = tl_latest(t, &v, e)))
        return rc;
    char final[PATH_MAX], name[64];
    for (unsigned n = 0;; n++) {
        if (n > 100000)
            return errmsg_set(e, WEIR_EEXIST, "table log: no free part name");
        tl_part_file_name(v + 1, n, name, sizeof(name));
        int w = snprintf(final, sizeof(final), "%.*s/%s",
                         (int)(slash - tmp_path), tmp_path, name);
        if (w < 0 || (size_t)w >= sizeof(final))
            return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
        rc = fsio_rename_excl(tmp_path, final);
        if (rc != WEIR_EEXIST)
            break;
    }
    if (rc)
        return errmsg_set(e, rc, "table log: cannot rename %s: %s", tmp_path,
                          strerror(errno));
    if ((rc = fsio_fsync_parent(final)))
        return errmsg_set(e, rc, "table log: cannot fsync the directory of %s: %s",
                          final, strerror(errno));
    int w = snprintf(rel_out, cap, "%.*s/%s", (int)reldir_len, tmp_path + dn + 1,
                     name);
    if (w < 0 || (size_t)w >= cap)
        return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
    if (bytes)
        *bytes = (uint64_t)st.st_size;
    return 0;
}

/* ---- recovery ----------------------------------------------------------- */

struct found {
    char *rel;        /* relative to the dataset directory */
    int64_t mtime;
    int kind;         /* 0 part file, 1 temporary, 2 other */
};

struct found_list {
    struct found *v;
    size_t n, cap;
};

static void found_release(struct found_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].rel);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int found_add(struct found_list *l, const char *rel, int64_t mtime,
                     int kind)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct found *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return WEIR_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].rel = strdup(rel);
    if (!l->v[l->n].rel)
        return WEIR_ENOMEM;
    l->v[l->n].mtime = mtime;
    l->v[l->n].kind = kind;
    l->n++;
    return 0;
}

/* Walk dir (relative rel) up to depth levels, collecting files. */
static int walk(const char *root, const char *rel, int depth,
                struct found_list *l, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    int w = snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (w < 0 || (size_t)w >= sizeof(path))
        return 0;
    DIR *d = fsio_opendir(path);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return errmsg_set(e, weir_from_errno(errno), "table log: cannot list %s: %s",
                          path, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX], full[PATH_MAX];
        w = snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name);
        if (w < 0 || (size_t)w >= sizeof(sub))
            continue;
        w = snprintf(full, sizeof(full), "%s/%s", root, sub);
        if (w < 0 || (size_t)w >= sizeof(full))
            continue;
        struct stat st;
        if (fsio_stat(full, &st) != 0)
            continue;   /* gone meanwhile */
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0)
                rc = walk(root, sub, depth - 1, l, e);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        int kind = tl_part_name_parse(de->d_name, NULL, NULL) ? 0
                   : fsio_is_tmp_name(de->d_name)             ? 1
                                                              : 2;
        int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        if (found_add(l, sub, mt, kind))
            rc = nomem(e);
    }
    closedir(d);
    return rc;
}

static void note_fail(int *first, int rc, struct weir_errmsg *e,
                      const char *path, unsigned long *failed)
{
    (*failed)++;
    if (!*first) {
        *first = rc;
        errmsg_set(e, rc, "table log: cannot remove %s: %s", path, strerror(errno));
    }
}

int tl_recover(struct tablelog *t, const struct tl_recover_opts *opts,
               struct tl_recover_stats *st, struct weir_errmsg *e)
{
    struct tl_recover_opts o = {TL_DEFAULT_ORPHAN_GRACE_NS, 0};
    struct tl_recover_stats dummy;
    if (opts)
        o = *opts;
    if (!st) {
        memset(&dummy, 0, sizeof(dummy));
        st = &dummy;
    }
    struct found_list fl = {0};
    /* List first, read the log after: a file committed in between is then
     * seen as referenced. */
    int rc = walk(t->dir, "parquet", 8, &fl, e);
    if (!rc)
        rc = walk(t->dir, "_log", 0, &fl, e);
    if (!rc)
        rc = head_refresh(t, e);
    if (rc) {
        found_release(&fl);
        return rc;
    }
    int64_t now = wtime_now_ns();
    int first = 0;
    char path[PATH_MAX];
    for (size_t i = 0; i < fl.n; i++) {
        const struct found *f = &fl.v[i];
        int is_log = strncmp(f->rel, "_log/", 5) == 0;
        if (f->kind == 2 || (is_log && f->kind == 0)) {
            if (!is_log)
                st->unknown_kept++;
            continue;
        }
        if (f->kind == 0 && (table_get(&t->head.files, f->rel) ||
                             table_get(&t->head.tombs, f->rel)))
            continue;
        if (now - f->mtime < o.orphan_grace_ns) {
            st->young_kept++;
            continue;
        }
        if (full_path(t, f->rel, path, sizeof(path)))
            continue;
        if (fsio_unlink(path) != 0 && errno != ENOENT) {
            note_fail(&first, weir_from_errno(errno), e, path, &st->failed);
            continue;
        }
        if (f->kind == 0) {
            st->orphans_removed++;
            log_info("table log: removed orphan %s (in no commit)", path);
        } else {
            st->tmp_removed++;
        }
    }
    found_release(&fl);
    /* Absorbed segments still on disk: their records are in Parquet. */
    for (size_t i = 0; i < t->head.absorbed.n; i++) {
        const struct abs_item *a = (const void *)t->head.absorbed.v[i];
        if (now - a->timestamp < o.absorbed_grace_ns)
            continue;
        if (full_path(t, a->path, path, sizeof(path)))
            continue;
        if (fsio_unlink(path) == 0)
            st->absorbed_removed++;
        else if (errno != ENOENT)
            note_fail(&first, weir_from_errno(errno), e, path, &st->failed);
    }
    /* A checkpoint the last writer did not get to write. */
    if (t->head.version >= TL_CHECKPOINT_INTERVAL &&
        read_hint(t) + TL_CHECKPOINT_INTERVAL <= t->head.version) {
        struct weir_errmsg e2;
        uint64_t ck;
        if (list_log(t, UINT64_MAX, &ck, NULL, &e2) == 0 && ck > read_hint(t))
            write_hint(t, ck);   /* a writer died between the two */
        if (ck + TL_CHECKPOINT_INTERVAL <= t->head.version) {
            if (write_checkpoint(t, &t->head, &e2) == 0)
                st->checkpoint_written = 1;
            else
                log_warn("%s", e2.text);
        }
    }
    return first;
}

/* ---- vacuum ------------------------------------------------------------- */

static int cmp_u64_asc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* The commit time of version v, or WEIR_ENOTFOUND. */
static int commit_time(struct tablelog *t, uint64_t v, int64_t *ts,
                       struct weir_errmsg *e)
{
    struct scratch sc = {0};
    struct parsed p;
    int rc = load_commit(t, v, &sc, &p, e);
    if (!rc)
        *ts = p.timestamp;
    scratch_release(&sc);
    return rc;
}

int tl_vacuum(struct tablelog *t, int64_t retention_ns,
              struct tl_vacuum_stats *st, struct weir_errmsg *e)
{
    struct tl_vacuum_stats dummy;
    if (!st) {
        memset(&dummy, 0, sizeof(dummy));
        st = &dummy;
    }
    if (retention_ns < 0)
        retention_ns = TL_DEFAULT_RETENTION_NS;
    int rc = head_refresh(t, e);
    if (rc)
        return rc;
    int64_t cutoff = wtime_now_ns() - retention_ns;
    uint64_t lo = t->head.oldest ? t->head.oldest : 1, hi = t->head.version;
    uint64_t horizon = 0;   /* newest version committed before cutoff */
    int64_t ts;
    /* Timestamps rise with versions: binary search the log. */
    while (lo <= hi && hi > 0) {
        uint64_t mid = lo + (hi - lo) / 2;
        rc = commit_time(t, mid, &ts, e);
        if (rc == WEIR_ENOTFOUND) {   /* below a checkpoint, deleted */
            lo = mid + 1;
            continue;
        }
        if (rc)
            return rc;
        if (ts < cutoff) {
            horizon = mid;
            lo = mid + 1;
        } else {
            if (mid == 0)
                break;
            hi = mid - 1;
        }
    }
    const char **purge = NULL, **forget = NULL;
    size_t npurge = 0, nforget = 0;
    if (horizon < t->head.oldest)
        horizon = t->head.oldest;
    if (horizon > 0) {
        /* The horizon needs a checkpoint to start from once the commits
         * before it are gone. */
        char ck[PATH_MAX];
        struct stat sb;
        if (log_path(t, horizon, 1, ck, sizeof(ck)))
            return errmsg_set(e, WEIR_ELIMIT, "table log: path too long");
        if (horizon > 1 && horizon > t->head.oldest && fsio_stat(ck, &sb) != 0) {
            struct state at;
            if ((rc = state_build(t, horizon, &at, e)))
                return rc;
            rc = write_checkpoint(t, &at, e);
            state_release(&at);
            if (rc)
                return rc;
        }
        purge = malloc((t->head.tombs.n + 1) * sizeof(*purge));
        forget = malloc((t->head.absorbed.n + 1) * sizeof(*forget));
        if (!purge || !forget) {
            rc = nomem(e);
            goto out;
        }
        for (size_t i = 0; i < t->head.tombs.n; i++) {
            const struct tomb_item *tb = (const void *)t->head.tombs.v[i];
            if (tb->version <= horizon)
                purge[npurge++] = tb->key;
        }
        char path[PATH_MAX];
        for (size_t i = 0; i < t->head.absorbed.n; i++) {
            const struct abs_item *a = (const void *)t->head.absorbed.v[i];
            if (a->version <= horizon && !full_path(t, a->path, path, sizeof(path)) &&
                fsio_stat(path, &sb) != 0 && errno == ENOENT)
                forget[nforget++] = a->path;
        }
        if (horizon <= t->head.oldest && !npurge && !nforget)
            goto clean_log;     /* nothing new to record */
        struct tl_commit c = {.operation = "vacuum",
                              .read_version = t->head.version};
        struct xcommit x = {&c, horizon > t->head.oldest ? horizon : 0,
                            purge, npurge, forget, nforget};
        /* purge/forget point into the head, which the commit moves: copy. */
        char **copies = malloc((npurge + nforget + 1) * sizeof(*copies));
        if (!copies) {
            rc = nomem(e);
            goto out;
        }
        size_t ncopies = 0;
        for (size_t i = 0; i < npurge; i++)
            purge[i] = copies[ncopies++] = strdup(purge[i]);
        for (size_t i = 0; i < nforget; i++)
            forget[i] = copies[ncopies++] = strdup(forget[i]);
        int bad = 0;
        for (size_t i = 0; i < ncopies; i++)
            bad |= copies[i] == NULL;
        uint64_t v = 0;
        rc = bad ? nomem(e) : do_commit(t, &x, 1, &v, e);
        if (!rc) {
            crash_point(TL_CRASH_IN_VACUUM);
            st->absorbed_forgotten += nforget;
            for (size_t i = 0; i < npurge; i++) {
                if (full_path(t, purge[i], path, sizeof(path)))
                    continue;
                if (fsio_stat(path, &sb) == 0 && fsio_unlink(path) == 0) {
                    st->files_deleted++;
                    st->bytes_deleted += (uint64_t)sb.st_size;
                }
            }
        }
        for (size_t i = 0; i < ncopies; i++)
            free(copies[i]);
        free(copies);
        if (rc)
            goto out;
    }
clean_log:;
    /* Log files before the horizon (also those a crashed vacuum left). */
    uint64_t oldest = t->head.oldest;
    st->horizon = oldest ? oldest : (t->head.version ? 1 : 0);
    if (oldest > 1) {
        if ((rc = write_hint(t, oldest))) {
            rc = errmsg_set(e, rc, "table log: cannot write the checkpoint hint: %s",
                            strerror(errno));
            goto out;
        }
        DIR *d = fsio_opendir(t->log_dir);
        if (!d) {
            rc = errmsg_set(e, weir_from_errno(errno), "table log: cannot list %s: %s",
                            t->log_dir, strerror(errno));
            goto out;
        }
        struct dirent *de;
        /* Entries are version << 1 | (1 for a checkpoint): versions stay
         * far below 2^63. */
        uint64_t *old = NULL;
        size_t nold = 0, capold = 0;
        while ((de = readdir(d)) != NULL) {
            uint64_t v;
            int kind = log_name_parse(de->d_name, &v);
            if (!kind || v >= oldest || v > (UINT64_MAX >> 1))
                continue;
            if (nold == capold) {
                size_t cap = capold ? capold * 2 : 64;
                uint64_t *no = realloc(old, cap * sizeof(*old));
                if (!no)
                    break;
                old = no;
                capold = cap;
            }
            old[nold++] = v << 1 | (kind == 2);
        }
        closedir(d);
        /* Oldest first: log_end_ok relies on it (a commit is deleted only
         * after every commit before it). */
        if (nold)
            qsort(old, nold, sizeof(*old), cmp_u64_asc);
        char path[PATH_MAX];
        for (size_t i = 0; i < nold; i++) {
            if (log_path(t, old[i] >> 1, (int)(old[i] & 1), path, sizeof(path)) == 0 &&
                fsio_unlink(path) == 0)
                st->log_files_deleted++;
        }
        free(old);
        fsio_fsync_dir(t->log_dir);
    }
out:
    free(purge);
    free(forget);
    return rc;
}

/* ---- the parsers, for the fuzzer ---------------------------------------- */

/* Serialize a parsed commit again (the app object rebuilt from its
 * members' verbatim texts). */
static int parsed_commit_text(const struct parsed *p, struct buf *out)
{
    struct buf app = BUF_INIT(MAX_COMMIT_BYTES);
    int rc = 0;
    if (p->app) {
        rc = buf_putc(&app, '{');
        for (size_t i = 0; i < p->napp && !rc; i++) {
            rc = i ? buf_putc(&app, ',') : 0;
            rc = rc ? rc : buf_put_json_string(&app, p->app[i].key,
                                               strlen(p->app[i].key));
            rc = rc ? rc : buf_putc(&app, ':');
            rc = rc ? rc : buf_append(&app, p->app[i].json, p->app[i].len);
        }
        rc = rc ? rc : buf_putc(&app, '}');
    }
    struct tl_commit c = {.operation = p->operation,
                          .read_version = p->read_version,
                          .add = p->add, .nadd = p->nadd,
                          .remove = p->remove, .nremove = p->nremove,
                          .absorbed = p->absorbed, .nabsorbed = p->nabsorbed,
                          .app = p->app ? app.data : NULL, .app_len = app.len};
    struct xcommit x = {&c, p->horizon, p->purge, p->npurge, p->forget,
                        p->nforget};
    rc = rc ? rc : commit_text(out, &x, p->version, p->timestamp, p->txn);
    buf_release(&app);
    return rc;
}

/*
 * Parse text; if it parses, serialize it, parse that and serialize again:
 * the two serializations must be identical (abort() otherwise, which is
 * what the fuzzer looks for). A checkpoint goes through the state (where
 * duplicates are caught) and out again.
 */
static int parse_roundtrip(const char *name, const char *text, size_t len,
                           int checkpoint, struct weir_errmsg *e)
{
    struct json_doc d;
    struct scratch sc = {0};
    struct parsed p;
    struct buf t1 = BUF_INIT(MAX_CHECKPOINT_BYTES),
               t2 = BUF_INIT(MAX_CHECKPOINT_BYTES);
    json_doc_init(&d, 64);
    struct pctx c = {name, &d, &sc, e};
    int rc = parse_text(&c, text, len, checkpoint, &p);
    for (int round = 0; !rc && round < 2; round++) {
        struct buf *out = round ? &t2 : &t1;
        if (checkpoint) {
            struct state st;
            rc = state_from_checkpoint(&st, &p, name, e);
            if (rc)
                break;
            rc = checkpoint_text(out, &st);
            state_release(&st);
        } else {
            rc = parsed_commit_text(&p, out);
        }
        if (rc) {
            rc = errmsg_set(e, rc, "table log: %s: too large to write back",
                            name);
            break;
        }
        if (round == 0) {
            scratch_release(&sc);
            struct weir_errmsg e2;
            c.e = &e2;
            if (parse_text(&c, t1.data, t1.len, checkpoint, &p) != 0) {
                fprintf(stderr, "table log: does not parse back: %s\n%s\n",
                        e2.text, t1.data);
                abort();
            }
        }
    }
    if (!rc && (t1.len != t2.len || memcmp(t1.data, t2.data, t1.len) != 0)) {
        fprintf(stderr, "table log: round trip differs:\n%s\n%s\n", t1.data,
                t2.data);
        abort();
    }
    buf_release(&t1);
    buf_release(&t2);
    scratch_release(&sc);
    json_doc_release(&d);
    return rc;
}

int tl_parse_commit_text(const char *name, const char *text, size_t len,
                         struct weir_errmsg *e)
{
    return parse_roundtrip(name, text, len, 0, e);
}

int tl_parse_checkpoint_text(const char *name, const char *text, size_t len,
                             struct weir_errmsg *e)
{
    return parse_roundtrip(name, text, len, 1, e);
}
