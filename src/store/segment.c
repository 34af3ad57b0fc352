/*
 * segment.c - segment writers and the segment lister; see segment.h and
 * docs/storage.md.
 *
 * State of one open partition (struct part), in file offsets:
 *
 *   0 ........... file_len ............ file_len+written ...... +buf.len
 *   | durable records | written, not fsynced | taken, not written yet |
 *                     \________________ buf (in memory) _____________/
 *
 * Everything after file_len is still in buf, so any failure can cut the
 * file back to file_len (or file_len+written) and write again from memory.
 * With the never policy bytes leave buf as soon as they are written
 * (file_len then means "written"), since nothing is promised about them.
 */
#include "store/segment.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A partition buffer bigger than this is freed after its bytes became
 * durable, so a burst into one hour does not pin memory for every hour. */
#define KEEP_BUF_CAP (256u << 10)

#define SEALED_EXT ".ndjson"
#define ACTIVE_EXT ".ndjson.open"

struct part {
    int64_t start;
    char key[PART_KEY_MAX];
    int fd;               /* -1: no file yet */
    char *path;           /* the active file's path, once opened */
    uint64_t seq;         /* of the file, once opened */
    uint64_t file_len;
    size_t written;
    struct buf buf;
    uint64_t buf_records;
    int want_seal;
    int renamed;          /* sealed name in place, dir fsync still due */
};

struct stats_atomic {
    _Atomic uint64_t records, bytes, records_durable, fsyncs, write_errors,
        segments_opened, segments_sealed, pending;
};

struct seg_writer {
    struct seg_config cfg;   /* strings point into the copies below */
    char *data_dir, *pipeline, *kind, *node;
    char *kind_dir;          /* <data_dir>/<pipeline>/<kind> */
    char *seq_path;          /* <kind_dir>/_seq/<node>-<thread> */
    struct part *parts;      /* cfg.max_open_partitions slots */
    unsigned nparts;
    unsigned last;           /* index of the last partition used */
    int64_t last_now;        /* the latest now given to seg_tick */
    int64_t pending_since;   /* last_now when pending became non-zero */
    int64_t last_retry;
    int err;                 /* sticky error, 0 when healthy */
    int64_t dirty_start;     /* the partition that took the last record */
    int dirty;
    uint64_t seq_next, seq_end;
    struct stats_atomic st;
    /* The durable length of each open file, for readers in other threads
     * (seg_durable_len): updated once per fsync (never: per write), so
     * the lock is never on the per-record path. */
    pthread_mutex_t pub_mu;
    struct seg_mark *pub;    /* cfg.max_open_partitions slots */
    unsigned npub;
};

/* Set (len != UINT64_MAX) or remove the published length of seq. */
static void publish(struct seg_writer *w, uint64_t seq, uint64_t len)
{
    pthread_mutex_lock(&w->pub_mu);
    unsigned i = 0;
    while (i < w->npub && w->pub[i].seq != seq)
        i++;
    if (len == UINT64_MAX) {
        if (i < w->npub)
            w->pub[i] = w->pub[--w->npub];
    } else if (i < w->npub) {
        w->pub[i].len = len;
    } else if (w->npub < w->cfg.max_open_partitions) {
        w->pub[w->npub].seq = seq;
        w->pub[w->npub++].len = len;
    }
    pthread_mutex_unlock(&w->pub_mu);
}

/* Single writer thread, readers elsewhere: relaxed load+store, no locked
 * instruction on the hot path. */
#define STAT_ADD(w, f, n)                                                    \
    atomic_store_explicit(                                                   \
        &(w)->st.f,                                                          \
        atomic_load_explicit(&(w)->st.f, memory_order_relaxed) + (n),        \
        memory_order_relaxed)
#define STAT_GET(w, f) atomic_load_explicit(&(w)->st.f, memory_order_relaxed)

static size_t pending(const struct seg_writer *w)
{
    return (size_t)STAT_GET(w, pending);
}

static void pending_sub(struct seg_writer *w, size_t n)
{
    STAT_ADD(w, pending, -(uint64_t)n);
}

const char *seg_sync_name(enum seg_sync s)
{
    switch (s) {
    case SEG_SYNC_ALWAYS: return "always";
    case SEG_SYNC_NEVER: return "never";
    default: return "group";
    }
}

int seg_sync_parse(const char *s)
{
    if (strcmp(s, "group") == 0)
        return SEG_SYNC_GROUP;
    if (strcmp(s, "always") == 0)
        return SEG_SYNC_ALWAYS;
    if (strcmp(s, "never") == 0)
        return SEG_SYNC_NEVER;
    return -1;
}

/* ---- names -------------------------------------------------------------- */

static int parse_u64(const char *s, size_t n, size_t maxdigits, uint64_t *out)
{
    if (n == 0 || n > maxdigits)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int seg_name_parse(const char *name, struct seg_name *out)
{
    size_t n = strlen(name);
    struct seg_name sn = {0};
    if (ends_with(name, n, ACTIVE_EXT)) {
        sn.active = 1;
        n -= strlen(ACTIVE_EXT);
    } else if (ends_with(name, n, SEALED_EXT)) {
        n -= strlen(SEALED_EXT);
    } else {
        return WEIR_EINVAL;
    }
    /* <node>-<thread>-<seq>: split from the right, nodes may hold '-'. */
    size_t d2 = n;
    while (d2 > 0 && name[d2 - 1] != '-')
        d2--;
    if (d2 < 2)
        return WEIR_EINVAL;
    size_t d1 = d2 - 1;
    while (d1 > 0 && name[d1 - 1] != '-')
        d1--;
    if (d1 < 2)
        return WEIR_EINVAL;
    uint64_t thread;
    if (parse_u64(name + d2, n - d2, 20, &sn.seq) ||
        parse_u64(name + d1, d2 - 1 - d1, 9, &thread))
        return WEIR_EINVAL;
    sn.thread = (unsigned)thread;
    sn.node_len = d1 - 1;
    if (name[0] == '.' || name[0] == '-')
        return WEIR_EINVAL;
    *out = sn;
    return 0;
}

int seg_name_is_node(const char *name, const char *node)
{
    struct seg_name sn;
    return seg_name_parse(name, &sn) == 0 && sn.node_len == strlen(node) &&
           memcmp(name, node, sn.node_len) == 0;
}

/* ---- path helpers ------------------------------------------------------- */

static char *join(const char *a, const char *b, const char *c)
{
    struct buf p = BUF_INIT(PATH_MAX - 1);
    int rc = buf_puts(&p, a);
    if (!rc && b)
        rc = buf_appendf(&p, "/%s", b);
    if (!rc && c)
        rc = buf_appendf(&p, "/%s", c);
    if (rc) {
        buf_release(&p);
        return NULL;
    }
    return buf_detach(&p, NULL);
}

/* ---- the seq counter ---------------------------------------------------- */

/* The highest seq of this node and thread among existing files, for when
 * the counter file is missing (a restored backup, a deleted _seq). */
static uint64_t scan_max_seq(struct seg_writer *w)
{
    struct seg_list l = {0};
    uint64_t max = 0;
    if (seg_list(w->data_dir, w->pipeline, w->kind, &l, NULL) != 0)
        return 0;
    for (size_t i = 0; i < l.n; i++) {
        const struct seg_entry *s = &l.v[i];
        if (s->sn.thread == w->cfg.thread && seg_name_is_node(s->name, w->node) &&
            s->sn.seq > max)
            max = s->sn.seq;
    }
    seg_list_release(&l);
    return max;
}

static int seq_load(struct seg_writer *w, struct weir_errmsg *e)
{
    struct buf b = BUF_INIT(64);
    int rc = fsio_read_file(w->seq_path, &b);
    if (rc == WEIR_ENOTFOUND) {
        buf_release(&b);
        w->seq_next = w->seq_end = scan_max_seq(w) + 1;
        return 0;
    }
    if (rc) {
        buf_release(&b);
        return errmsg_set(e, rc, "%s: %s", w->seq_path, strerror(errno));
    }
    uint64_t v = 0;
    size_t n = b.len;
    while (n > 0 && (b.data[n - 1] == '\n'))
        n--;
    rc = parse_u64(b.data ? b.data : "", n, 20, &v);
    buf_release(&b);
    if (rc || v == 0)
        return errmsg_set(e, WEIR_ECORRUPT,
                          "%s: not a segment counter (one decimal number); "
                          "remove it and weir rebuilds it from the segments",
                          w->seq_path);
    w->seq_next = w->seq_end = v;
    return 0;
}

static int seq_take(struct seg_writer *w, uint64_t *seq)
{
    if (w->seq_next >= w->seq_end) {
        uint64_t end = w->seq_next + SEG_SEQ_BLOCK;
        char txt[32];
        int n = snprintf(txt, sizeof(txt), "%" PRIu64 "\n", end);
        int rc = fsio_write_file_atomic(w->seq_path, txt, (size_t)n, 0644);
        if (rc)
            return rc;
        w->seq_end = end;
    }
    *seq = w->seq_next++;
    return 0;
}

/* ---- writer life -------------------------------------------------------- */

int seg_seq_reserve(const struct seg_config *cfg, uint64_t n, uint64_t *first,
                    struct weir_errmsg *e)
{
    struct seg_writer *w;
    int rc = seg_writer_new(cfg, &w, e);
    if (rc)
        return rc;
    uint64_t end = w->seq_next + n;
    char txt[32];
    int len = snprintf(txt, sizeof(txt), "%" PRIu64 "\n", end);
    rc = fsio_write_file_atomic(w->seq_path, txt, (size_t)len, 0644);
    if (rc)
        errmsg_set(e, rc, "%s: %s (%s)", w->seq_path, weir_strerror(rc),
                   strerror(errno));
    else
        *first = w->seq_next;
    seg_writer_free(w);
    return rc;
}

static void apply_defaults(struct seg_config *c)
{
    if (c->fsync_interval_ns <= 0)
        c->fsync_interval_ns = WEIR_DEFAULT_FSYNC_MS * WTIME_NS_PER_MS;
    if (!c->fsync_bytes)
        c->fsync_bytes = WEIR_DEFAULT_FSYNC_BYTES;
    if (!c->segment_bytes)
        c->segment_bytes = WEIR_DEFAULT_SEGMENT_BYTES;
    if (!c->max_open_partitions)
        c->max_open_partitions = WEIR_DEFAULT_MAX_OPEN_PARTITIONS;
    if (!c->max_pending)
        c->max_pending = WEIR_DEFAULT_MAX_PENDING;
}

int seg_writer_new(const struct seg_config *cfg, struct seg_writer **out,
                   struct weir_errmsg *e)
{
    *out = NULL;
    if (!cfg->data_dir || !*cfg->data_dir)
        return errmsg_set(e, WEIR_EINVAL, "segment writer: no data_dir");
    if (!fsio_name_valid(cfg->pipeline) || !fsio_name_valid(cfg->kind) ||
        !fsio_name_valid(cfg->node))
        return errmsg_set(e, WEIR_EINVAL,
                          "segment writer: pipeline '%s', kind '%s' and node "
                          "'%s' must be 1-128 of [A-Za-z0-9._-], not "
                          "starting with '.' or '-'",
                          cfg->pipeline ? cfg->pipeline : "",
                          cfg->kind ? cfg->kind : "",
                          cfg->node ? cfg->node : "");
    int rc = WEIR_ENOMEM;
    struct seg_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return errmsg_set(e, rc, "out of memory");
    w->cfg = *cfg;
    apply_defaults(&w->cfg);
    w->data_dir = strdup(cfg->data_dir);
    w->pipeline = strdup(cfg->pipeline);
    w->kind = strdup(cfg->kind);
    w->node = strdup(cfg->node);
    w->parts = calloc(w->cfg.max_open_partitions, sizeof(*w->parts));
    w->pub = calloc(w->cfg.max_open_partitions, sizeof(*w->pub));
    pthread_mutex_init(&w->pub_mu, NULL);
    if (!w->data_dir || !w->pipeline || !w->kind || !w->node || !w->parts || !w->pub)
        goto fail;
    w->cfg.data_dir = w->data_dir;
    w->cfg.pipeline = w->pipeline;
    w->cfg.kind = w->kind;
    w->cfg.node = w->node;
    w->kind_dir = join(w->data_dir, w->pipeline, w->kind);
    char *seq_dir = w->kind_dir ? join(w->kind_dir, "_seq", NULL) : NULL;
    char leaf[200];
    snprintf(leaf, sizeof(leaf), "%s-%u", w->node, w->cfg.thread);
    w->seq_path = seq_dir ? join(seq_dir, leaf, NULL) : NULL;
    if (!w->seq_path) {
        free(seq_dir);
        rc = WEIR_ELIMIT;
        errmsg_set(e, rc, "%s/%s/%s: path too long", w->data_dir,
                   w->pipeline, w->kind);
        goto fail_msg;
    }
    rc = fsio_mkdir_p(seq_dir, 0755);
    if (rc) {
        errmsg_set(e, rc, "%s: cannot create: %s", seq_dir, strerror(errno));
        free(seq_dir);
        goto fail_msg;
    }
    free(seq_dir);
    if ((rc = seq_load(w, e)) != 0)
        goto fail_msg;
    *out = w;
    return 0;
fail:
    errmsg_set(e, rc, "segment writer: %s", weir_strerror(rc));
fail_msg:
    seg_writer_free(w);
    return rc;
}

static void part_release(struct part *p)
{
    if (p->fd >= 0)
        fsio_close(p->fd);
    free(p->path);
    buf_release(&p->buf);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
}

void seg_writer_free(struct seg_writer *w)
{
    if (!w)
        return;
    for (unsigned i = 0; w->parts && i < w->nparts; i++)
        part_release(&w->parts[i]);
    free(w->parts);
    free(w->pub);
    pthread_mutex_destroy(&w->pub_mu);
    free(w->kind_dir);
    free(w->seq_path);
    free(w->data_dir);
    free(w->pipeline);
    free(w->kind);
    free(w->node);
    free(w);
}

/* ---- the write path ----------------------------------------------------- */

static void set_err(struct seg_writer *w, int rc, const char *what,
                    const char *path)
{
    STAT_ADD(w, write_errors, 1);
    if (!w->err)
        log_warn("%s: %s failed: %s (%s); records stay in memory, retrying",
                 path ? path : w->kind_dir, what, weir_strerror(rc),
                 strerror(errno));
    w->err = rc;
}

/* The open partition for start. One whose file already has its sealed
 * name (only the directory fsync failed) is not open for appends any more:
 * a sealed file never changes. */
static struct part *find_part(struct seg_writer *w, int64_t start)
{
    if (w->last < w->nparts && w->parts[w->last].start == start &&
        !w->parts[w->last].renamed)
        return &w->parts[w->last];
    for (unsigned i = 0; i < w->nparts; i++)
        if (w->parts[i].start == start && !w->parts[i].renamed) {
            w->last = i;
            return &w->parts[i];
        }
    return NULL;
}

static void drop_part(struct seg_writer *w, struct part *p)
{
    if (p->path)
        publish(w, p->seq, UINT64_MAX);
    pending_sub(w, p->buf.len);
    part_release(p);
    unsigned i = (unsigned)(p - w->parts);
    if (i != w->nparts - 1) {
        *p = w->parts[w->nparts - 1];
        memset(&w->parts[w->nparts - 1], 0, sizeof(*p));
        w->parts[w->nparts - 1].fd = -1;
    }
    w->nparts--;
    w->last = 0;
}

/* The seq in a segment path this writer made. */
static uint64_t seq_of(const char *path)
{
    struct seg_name sn = {0};
    const char *slash = strrchr(path, '/');
    seg_name_parse(slash ? slash + 1 : path, &sn);
    return sn.seq;
}

static int open_segment(struct seg_writer *w, struct part *p)
{
    char dir[PATH_MAX], path[PATH_MAX], sealed[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s/%s", w->kind_dir, p->key);
    if (n < 0 || (size_t)n + 64 >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        set_err(w, WEIR_ELIMIT, "create", dir);
        return WEIR_ELIMIT;
    }
    int rc = fsio_mkdir_p(dir, 0755);
    if (rc) {
        set_err(w, rc, "mkdir", dir);
        return rc;
    }
    int fd = -1;
    for (int tries = 0; fd < 0; tries++) {
        uint64_t seq;
        if ((rc = seq_take(w, &seq)) != 0) {
            set_err(w, rc, "write", w->seq_path);
            return rc;
        }
        n = snprintf(sealed, sizeof(sealed), "%s/%s-%u-%010" PRIu64 SEALED_EXT,
                     dir, w->node, w->cfg.thread, seq);
        if (n < 0 || (size_t)n + 5 >= sizeof(sealed)) {
            errno = ENAMETOOLONG;
            set_err(w, WEIR_ELIMIT, "create", dir);
            return WEIR_ELIMIT;
        }
        memcpy(path, sealed, (size_t)n);
        memcpy(path + n, ".open", 6);
        struct stat st;
        /* Only a lost counter file makes names collide: skip past them. */
        if (fsio_stat(sealed, &st) == 0 && tries < 100000)
            continue;
        fd = fsio_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && (errno != EEXIST || tries >= 100000)) {
            rc = weir_from_errno(errno);
            set_err(w, rc, "create", path);
            return rc;
        }
    }
    /* The new name must be durable before any record in it is called so. */
    if ((rc = fsio_fsync_dir(dir)) != 0) {
        set_err(w, rc, "fsync", dir);
        fsio_close(fd);
        fsio_unlink(path);
        return rc;
    }
    p->path = strdup(path);
    if (!p->path) {
        fsio_close(fd);
        fsio_unlink(path);
        set_err(w, WEIR_ENOMEM, "create", path);
        return WEIR_ENOMEM;
    }
    p->fd = fd;
    p->file_len = 0;
    p->written = 0;
    p->seq = seq_of(path);
    STAT_ADD(w, segments_opened, 1);
    return 0;
}

/* The bytes of buf now count as in the file for good. */
static void commit_buf(struct seg_writer *w, struct part *p)
{
    p->file_len += p->buf.len;
    if (p->buf.len)
        publish(w, p->seq, p->file_len);
    pending_sub(w, p->buf.len);
    STAT_ADD(w, records_durable, p->buf_records);
    p->buf_records = 0;
    p->written = 0;
    if (p->buf.cap > KEEP_BUF_CAP)
        buf_release(&p->buf);
    else
        buf_reset(&p->buf);
}

/* Write what buf holds beyond written. */
static int write_part(struct seg_writer *w, struct part *p)
{
    int rc;
    if (p->buf.len == p->written)
        return 0;
    if (p->fd < 0 && (rc = open_segment(w, p)) != 0)
        return rc;
    size_t done = 0;
    off_t at = (off_t)(p->file_len + p->written);
    rc = fsio_pwrite_all(p->fd, p->buf.data + p->written,
                         p->buf.len - p->written, at, &done);
    if (rc) {
        int saved = errno;
        /* Leave no partial record behind; if this fails too, the retry
         * writes the same bytes at the same offset anyway. */
        if (done)
            fsio_ftruncate(p->fd, at);
        errno = saved;
        set_err(w, rc, "write", p->path);
        return rc;
    }
    p->written = p->buf.len;
    if (w->cfg.sync == SEG_SYNC_NEVER)
        commit_buf(w, p);
    return 0;
}

/* Write and fdatasync (force: also under the never policy). */
static int sync_part(struct seg_writer *w, struct part *p, int force)
{
    int rc = write_part(w, p);
    if (rc)
        return rc;
    if (p->fd < 0 || (w->cfg.sync == SEG_SYNC_NEVER && !force))
        return 0;
    if (p->buf.len == 0 && w->cfg.sync != SEG_SYNC_NEVER)
        return 0;
    if ((rc = fsio_fdatasync(p->fd)) != 0) {
        int saved = errno;
        /* After a failed fsync the kernel may have dropped the dirty pages
         * (Linux marks them clean): what was written since the last good
         * fsync is unknown, so cut it and write it again from memory. */
        fsio_ftruncate(p->fd, (off_t)p->file_len);
        p->written = 0;
        errno = saved;
        set_err(w, rc, "fsync", p->path);
        return rc;
    }
    STAT_ADD(w, fsyncs, 1);
    commit_buf(w, p);
    return 0;
}

/* Flush, fsync, rename to the sealed name, fsync the directory; drops the
 * partition on success. */
static int seal_part(struct seg_writer *w, struct part *p)
{
    int rc;
    p->want_seal = 1;
    if (p->fd < 0 && p->buf.len == 0) {
        drop_part(w, p);
        return 0;
    }
    if (!p->renamed && (rc = sync_part(w, p, 1)) != 0)
        return rc;
    if (p->file_len == 0) { /* every write failed then nothing was left */
        if (fsio_unlink(p->path) != 0 && errno != ENOENT) {
            rc = weir_from_errno(errno);
            set_err(w, rc, "unlink", p->path);
            return rc;
        }
        fsio_fsync_parent(p->path);
        drop_part(w, p);
        return 0;
    }
    char sealed[PATH_MAX];
    size_t n = strlen(p->path) - 5; /* drop ".open" */
    memcpy(sealed, p->path, n);
    sealed[n] = '\0';
    if (!p->renamed) {
        if ((rc = fsio_rename_excl(p->path, sealed)) != 0) {
            set_err(w, rc, "rename", p->path);
            return rc;
        }
        p->renamed = 1;
    }
    if ((rc = fsio_fsync_parent(sealed)) != 0) {
        set_err(w, rc, "fsync", sealed);
        return rc;
    }
    STAT_ADD(w, segments_sealed, 1);
    drop_part(w, p);
    return 0;
}

static unsigned oldest_part(const struct seg_writer *w)
{
    unsigned best = 0;
    for (unsigned i = 1; i < w->nparts; i++)
        if (w->parts[i].start < w->parts[best].start)
            best = i;
    return best;
}

/* Write out (never) or make durable (group, always) every partition. */
static int sync_all(struct seg_writer *w, int force)
{
    for (unsigned i = 0; i < w->nparts; i++) {
        int rc = sync_part(w, &w->parts[i], force);
        if (rc)
            return rc;
    }
    return 0;
}

static struct part *add_part(struct seg_writer *w, int64_t start, int *rc)
{
    if (w->nparts == w->cfg.max_open_partitions) {
        /* Full: seal the partition with the oldest event time, the one
         * most likely to be closed anyway (late data for it reopens a new
         * segment). While the disk fails, seals cannot be done: wait. */
        if (w->err) {
            *rc = WEIR_EAGAIN;
            return NULL;
        }
        if (seal_part(w, &w->parts[oldest_part(w)]) != 0) {
            *rc = WEIR_EAGAIN;
            return NULL;
        }
    }
    struct part *p = &w->parts[w->nparts];
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    p->start = start;
    part_key_format(start, w->cfg.grain, p->key, sizeof(p->key));
    buf_init(&p->buf, w->cfg.max_pending);
    w->last = w->nparts++;
    return p;
}

int seg_append(struct seg_writer *w, int64_t part_start_ns, const void *rec,
               size_t len)
{
    int rc = 0;
    if (!part_is_start(part_start_ns, w->cfg.grain) ||
        len >= w->cfg.max_pending || (len && memchr(rec, '\n', len)))
        return WEIR_EINVAL;
    /* Write order follows append order across partitions, so that after
     * a process crash what a connection sent that landed is a prefix of
     * it, without holes, also across an hour boundary: before the first
     * record for another partition, hand the previous one's bytes to the
     * OS. Only the partition taking records ever holds unwritten bytes;
     * with one hour being written this costs nothing. */
    if (w->dirty && w->dirty_start != part_start_ns && !w->err) {
        struct part *q = find_part(w, w->dirty_start);
        if (q)
            write_part(w, q); /* a failure sets w->err, reported below */
        w->dirty = 0;
    }
    struct part *p = find_part(w, part_start_ns);
    if (!p && !(p = add_part(w, part_start_ns, &rc)))
        return rc;
    if (pending(w) + len + 1 > w->cfg.max_pending) {
        if (!w->err)
            sync_all(w, 0);
        if (pending(w) + len + 1 > w->cfg.max_pending)
            return WEIR_EAGAIN;
    }
    if ((rc = buf_reserve(&p->buf, len + 1)) != 0)
        return rc == WEIR_ELIMIT ? WEIR_EAGAIN : rc;
    buf_append(&p->buf, rec, len);
    buf_putc(&p->buf, '\n');
    p->buf_records++;
    if (pending(w) == 0)
        w->pending_since = w->last_now;
    STAT_ADD(w, pending, len + 1);
    STAT_ADD(w, records, 1);
    STAT_ADD(w, bytes, len + 1);
    w->dirty = 1;
    w->dirty_start = part_start_ns;
    if (w->err)
        return w->err;
    if (p->file_len + p->buf.len >= w->cfg.segment_bytes)
        return seal_part(w, p);
    switch (w->cfg.sync) {
    case SEG_SYNC_ALWAYS:
        return sync_part(w, p, 0);
    case SEG_SYNC_GROUP:
        if (pending(w) >= w->cfg.fsync_bytes)
            return sync_all(w, 0);
        break;
    case SEG_SYNC_NEVER:
        break;
    }
    /* Below the fsync threshold, hand full chunks to the OS meanwhile. */
    if (p->buf.len - p->written >= SEG_WRITE_CHUNK)
        return write_part(w, p);
    return 0;
}

static int flush(struct seg_writer *w, int force)
{
    int rc = 0;
    /* Seals first: sealing drops the partition, so walk from the end. */
    for (unsigned i = w->nparts; rc == 0 && i-- > 0;)
        if (w->parts[i].want_seal)
            rc = seal_part(w, &w->parts[i]);
    if (rc == 0)
        rc = sync_all(w, force);
    if (rc == 0 && w->err) {
        log_info("%s: writing works again, nothing was lost", w->kind_dir);
        w->err = 0;
    }
    return rc;
}

int seg_flush(struct seg_writer *w)
{
    return flush(w, 0);
}

int seg_sync(struct seg_writer *w)
{
    return flush(w, 1);
}

int seg_tick(struct seg_writer *w, int64_t now_ns)
{
    w->last_now = now_ns;
    if (w->err) {
        if (now_ns - w->last_retry < w->cfg.fsync_interval_ns)
            return w->err;
        w->last_retry = now_ns;
        return seg_flush(w);
    }
    if (pending(w) == 0) {
        for (unsigned i = 0; i < w->nparts; i++)
            if (w->parts[i].want_seal)
                return seg_flush(w);
        return 0;
    }
    if (now_ns - w->pending_since >= w->cfg.fsync_interval_ns) {
        int rc = seg_flush(w);
        w->last_retry = now_ns;
        return rc;
    }
    return 0;
}

int seg_seal_before(struct seg_writer *w, int64_t cutoff_ns)
{
    int any = 0;
    for (unsigned i = 0; i < w->nparts; i++)
        if (part_end(w->parts[i].start, w->cfg.grain) <= cutoff_ns) {
            w->parts[i].want_seal = 1;
            any = 1;
        }
    if (!any)
        return 0;
    if (w->err)
        return w->err;
    return seg_flush(w);
}

int seg_close_all(struct seg_writer *w)
{
    for (unsigned i = 0; i < w->nparts; i++)
        w->parts[i].want_seal = 1;
    return seg_flush(w);
}

size_t seg_pending(const struct seg_writer *w)
{
    return pending(w);
}

int seg_error(const struct seg_writer *w)
{
    return w->err;
}

size_t seg_max_len(const struct seg_writer *w)
{
    return w->cfg.max_pending - 1;
}

unsigned seg_open_partitions(const struct seg_writer *w)
{
    return w->nparts;
}

void seg_stats(const struct seg_writer *w, struct seg_stats *out)
{
    out->records = STAT_GET(w, records);
    out->bytes = STAT_GET(w, bytes);
    out->records_durable = STAT_GET(w, records_durable);
    out->fsyncs = STAT_GET(w, fsyncs);
    out->write_errors = STAT_GET(w, write_errors);
    out->segments_opened = STAT_GET(w, segments_opened);
    out->segments_sealed = STAT_GET(w, segments_sealed);
    out->pending = STAT_GET(w, pending);
}

size_t seg_marks(const struct seg_writer *w, struct seg_mark *out, size_t cap,
                 uint64_t *seq_next)
{
    size_t n = 0;
    for (unsigned i = 0; i < w->nparts; i++) {
        const struct part *p = &w->parts[i];
        struct seg_name sn;
        const char *slash;
        if (!p->path || !(slash = strrchr(p->path, '/')) ||
            seg_name_parse(slash + 1, &sn) != 0)
            continue;
        if (n < cap) {
            out[n].seq = sn.seq;
            out[n].len = p->file_len + p->written;
        }
        n++;
    }
    *seq_next = w->seq_next;
    return n;
}

int seg_durable_len(struct seg_writer *w, uint64_t seq, uint64_t *len)
{
    int found = 0;
    pthread_mutex_lock(&w->pub_mu);
    for (unsigned i = 0; i < w->npub; i++)
        if (w->pub[i].seq == seq) {
            *len = w->pub[i].len;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&w->pub_mu);
    return found;
}

/* ---- the lister --------------------------------------------------------- */

static int list_push(struct seg_list *l, const char *dir, const char *name,
                     enum part_grain g, int64_t start)
{
    struct seg_name sn;
    if (seg_name_parse(name, &sn) != 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct seg_entry *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return WEIR_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *path = join(dir, name, NULL);
    if (!path)
        return WEIR_ENOMEM;
    struct stat st;
    if (fsio_stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(path); /* gone meanwhile (sealed, absorbed): skip */
        return 0;
    }
    struct seg_entry *s = &l->v[l->n++];
    s->path = path;
    s->name = path + strlen(path) - strlen(name);
    s->grain = g;
    s->part_start = start;
    s->active = sn.active;
    s->size = (uint64_t)st.st_size;
    s->sn = sn;
    return 0;
}

/* List the segments in dir, whose partition key is rel (NULL at the top,
 * where no files are listed), and descend into directories whose relative
 * path is a whole key: date=... and date=.../hour=... */
static int list_dir(struct seg_list *l, const char *dir, const char *rel,
                    enum part_grain g, int64_t start, int depth)
{
    DIR *d = fsio_opendir(dir);
    if (!d)
        return (errno == ENOENT || errno == ENOTDIR) ? 0 : weir_from_errno(errno);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.' || name[0] == '_')
            continue;
        char sub[PART_KEY_MAX + 8];
        int n = rel ? snprintf(sub, sizeof(sub), "%s/%s", rel, name)
                    : snprintf(sub, sizeof(sub), "%s", name);
        enum part_grain sg;
        int64_t ss;
        if (n > 0 && (size_t)n < sizeof(sub) && depth < 2 &&
            part_key_parse(sub, (size_t)n, &sg, &ss) == (size_t)n) {
            char *child = join(dir, name, NULL);
            rc = child ? list_dir(l, child, sub, sg, ss, depth + 1)
                       : WEIR_ENOMEM;
            free(child);
        } else if (rel) {
            rc = list_push(l, dir, name, g, start);
        }
    }
    closedir(d);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct seg_entry *x = a, *y = b;
    if (x->part_start != y->part_start)
        return x->part_start < y->part_start ? -1 : 1;
    if (x->grain != y->grain)
        return x->grain < y->grain ? -1 : 1;
    size_t nx = x->sn.node_len, ny = y->sn.node_len;
    int c = memcmp(x->name, y->name, nx < ny ? nx : ny);
    if (c || nx != ny)
        return c ? c : (nx < ny ? -1 : 1);
    if (x->sn.thread != y->sn.thread)
        return x->sn.thread < y->sn.thread ? -1 : 1;
    if (x->sn.seq != y->sn.seq)
        return x->sn.seq < y->sn.seq ? -1 : 1;
    return x->active - y->active; /* sealed first */
}

static int same_segment(const struct seg_entry *x, const struct seg_entry *y)
{
    return x->part_start == y->part_start && x->grain == y->grain &&
           x->sn.node_len == y->sn.node_len && x->sn.thread == y->sn.thread &&
           x->sn.seq == y->sn.seq &&
           memcmp(x->name, y->name, x->sn.node_len) == 0;
}

int seg_list(const char *data_dir, const char *pipeline, const char *kind,
             struct seg_list *out, struct weir_errmsg *e)
{
    memset(out, 0, sizeof(*out));
    if (!fsio_name_valid(pipeline) || !fsio_name_valid(kind))
        return errmsg_set(e, WEIR_EINVAL, "invalid pipeline or kind name");
    char *dir = join(data_dir, pipeline, kind);
    if (!dir)
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", data_dir);
    int rc = list_dir(out, dir, NULL, PART_HOUR, 0, 0);
    if (rc) {
        errmsg_set(e, rc, "%s: cannot list: %s", dir, strerror(errno));
        free(dir);
        seg_list_release(out);
        return rc;
    }
    free(dir);
    if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), entry_cmp);
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (k > 0 && same_segment(&out->v[k - 1], &out->v[i])) {
            free(out->v[i].path); /* the active twin of a sealed one */
            continue;
        }
        out->v[k++] = out->v[i];
    }
    out->n = k;
    return 0;
}

void seg_list_release(struct seg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int seg_complete_len_fd(int fd, uint64_t size, uint64_t *len)
{
    char chunk[64 << 10];
    uint64_t end = size;
    while (end > 0) {
        size_t n = end < sizeof(chunk) ? (size_t)end : sizeof(chunk);
        size_t got;
        int rc = fsio_pread_all(fd, chunk, n, (off_t)(end - n), &got);
        if (rc)
            return rc;
        if (got < n) { /* the file shrank under us: look below its end */
            end = end - n + got;
            if (got == 0)
                continue;
            n = got;
        }
        for (size_t i = n; i > 0; i--)
            if (chunk[i - 1] == '\n') {
                *len = end - n + i;
                return 0;
            }
        end -= n;
    }
    *len = 0;
    return 0;
}

int seg_complete_len(const char *path, uint64_t *len)
{
    int fd = fsio_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return weir_from_errno(errno);
    struct stat st;
    int rc = fsio_fstat(fd, &st) == 0
                 ? seg_complete_len_fd(fd, (uint64_t)st.st_size, len)
                 : weir_from_errno(errno);
    fsio_close(fd);
    return rc;
}
