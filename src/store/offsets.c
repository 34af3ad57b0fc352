/*
 * offsets.c - checkpoints of upstream offsets beside the segments that hold
 * them, and the rollback to them; see offsets.h and docs/kafka.md.
 */
#include "store/offsets.h"
#include "core/fsio.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A checkpoint holds a line per partition and per open segment: a few
 * hundred KiB covers thousands of partitions. */
#define OFFSETS_FILE_MAX (16u << 20)

static const char *const kind_names[2] = {"raw", "quarantine"};

void offsets_init(struct offsets *o, unsigned thread)
{
    memset(o, 0, sizeof *o);
    o->thread = thread;
}

void offsets_release(struct offsets *o)
{
    for (size_t i = 0; i < o->npos; i++)
        free(o->pos[i].topic);
    free(o->pos);
    free(o->marks[0]);
    free(o->marks[1]);
    memset(o, 0, sizeof *o);
}

static int topic_valid(const char *t, size_t n)
{
    if (n == 0 || n > OFFSETS_TOPIC_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static struct offsets_pos *find_pos(const struct offsets *o, const char *topic,
                                    int32_t partition)
{
    for (size_t i = 0; i < o->npos; i++)
        if (o->pos[i].partition == partition && strcmp(o->pos[i].topic, topic) == 0)
            return &o->pos[i];
    return NULL;
}

int offsets_set(struct offsets *o, const char *topic, int32_t partition,
                int64_t next)
{
    if (!topic_valid(topic, strlen(topic)) || partition < 0 || next < 0)
        return WEIR_EINVAL;
    struct offsets_pos *p = find_pos(o, topic, partition);
    if (p) {
        p->next = next;
        return 0;
    }
    if (o->npos == o->cappos) {
        size_t cap = o->cappos ? o->cappos * 2 : 16;
        struct offsets_pos *v = realloc(o->pos, cap * sizeof *v);
        if (!v)
            return WEIR_ENOMEM;
        o->pos = v;
        o->cappos = cap;
    }
    char *t = strdup(topic);
    if (!t)
        return WEIR_ENOMEM;
    o->pos[o->npos++] = (struct offsets_pos){t, partition, next};
    return 0;
}

int64_t offsets_get(const struct offsets *o, const char *topic, int32_t partition)
{
    const struct offsets_pos *p = find_pos(o, topic, partition);
    return p ? p->next : -1;
}

static int capture_one(struct offsets *o, int k, const struct seg_writer *w)
{
    uint64_t next;
    size_t n = seg_marks(w, o->marks[k], o->capmarks[k], &next);
    if (n > o->capmarks[k]) {
        struct seg_mark *v = realloc(o->marks[k], n * sizeof *v);
        if (!v)
            return WEIR_ENOMEM;
        o->marks[k] = v;
        o->capmarks[k] = n;
        n = seg_marks(w, o->marks[k], o->capmarks[k], &next);
    }
    o->nmarks[k] = n;
    o->seq_next[k] = next;
    return 0;
}

int offsets_capture(struct offsets *o, const struct seg_writer *raw,
                    const struct seg_writer *quar)
{
    int rc = capture_one(o, OFFSETS_RAW, raw);
    return rc ? rc : capture_one(o, OFFSETS_QUARANTINE, quar);
}

/* ---- text --------------------------------------------------------------- */

int offsets_format(const struct offsets *o, const char *node, struct buf *out)
{
    int rc = buf_appendf(out, "weir offsets 1\nnode %s\nthread %u\n", node, o->thread);
    if (o->retired && !rc)
        rc = buf_puts(out, "retired\n");
    for (int k = 0; k < 2 && !rc && !o->retired; k++)
        rc = buf_appendf(out, "seq %s %" PRIu64 "\n", kind_names[k], o->seq_next[k]);
    for (int k = 0; k < 2 && !o->retired; k++)
        for (size_t i = 0; i < o->nmarks[k] && !rc; i++)
            rc = buf_appendf(out, "mark %s %" PRIu64 " %" PRIu64 "\n", kind_names[k],
                             o->marks[k][i].seq, o->marks[k][i].len);
    for (size_t i = 0; i < o->npos && !rc; i++)
        rc = buf_appendf(out, "pos %s %" PRId32 " %" PRId64 "\n", o->pos[i].topic,
                         o->pos[i].partition, o->pos[i].next);
    return rc ? rc : buf_puts(out, "end\n");
}

/* Split line[0..n) at spaces into at most max words. */
static int split(const char *line, size_t n, const char **w, size_t *wl, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n) {
        if (line[i] == ' ') {
            i++;
            continue;
        }
        if (k == max)
            return -1;
        size_t s = i;
        while (i < n && line[i] != ' ')
            i++;
        w[k] = line + s;
        wl[k] = i - s;
        k++;
    }
    return k;
}

static int word_is(const char *w, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(w, s, n) == 0;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int kind_of(const char *w, size_t n)
{
    for (int k = 0; k < 2; k++)
        if (word_is(w, n, kind_names[k]))
            return k;
    return -1;
}

static int push_mark(struct offsets *o, int k, uint64_t seq, uint64_t len)
{
    if (o->nmarks[k] == o->capmarks[k]) {
        size_t cap = o->capmarks[k] ? o->capmarks[k] * 2 : 8;
        struct seg_mark *v = realloc(o->marks[k], cap * sizeof *v);
        if (!v)
            return WEIR_ENOMEM;
        o->marks[k] = v;
        o->capmarks[k] = cap;
    }
    o->marks[k][o->nmarks[k]++] = (struct seg_mark){seq, len};
    return 0;
}

int offsets_parse(const char *text, size_t len, struct offsets *o, char *why,
                  size_t cap)
{
    size_t at = 0;
    unsigned lineno = 0;
    int seen_end = 0, seen_seq = 0;
    while (at < len) {
        const char *nl = memchr(text + at, '\n', len - at);
        if (!nl) {
            snprintf(why, cap, "line %u has no newline (the file is cut)", lineno + 1);
            return WEIR_ECORRUPT;
        }
        const char *line = text + at;
        size_t n = (size_t)(nl - line);
        at += n + 1;
        lineno++;
        if (seen_end) {
            snprintf(why, cap, "line %u: text after \"end\"", lineno);
            return WEIR_ECORRUPT;
        }
        const char *w[5];
        size_t wl[5];
        int nw = split(line, n, w, wl, 5);
        uint64_t a, b;
        int k;
        if (lineno == 1) {
            if (nw != 3 || !word_is(w[0], wl[0], "weir") ||
                !word_is(w[1], wl[1], "offsets") || !word_is(w[2], wl[2], "1")) {
                snprintf(why, cap, "not a weir offsets checkpoint (version 1)");
                return WEIR_ECORRUPT;
            }
        } else if (nw == 1 && word_is(w[0], wl[0], "end")) {
            seen_end = 1;
        } else if (nw == 1 && word_is(w[0], wl[0], "retired")) {
            o->retired = 1;
        } else if (nw == 2 && word_is(w[0], wl[0], "node")) {
            /* informative: the file name says whose it is */
        } else if (nw == 2 && word_is(w[0], wl[0], "thread") &&
                   parse_u64(w[1], wl[1], &a) == 0 && a <= UINT32_MAX) {
            o->thread = (unsigned)a;
        } else if (nw == 3 && word_is(w[0], wl[0], "seq") &&
                   (k = kind_of(w[1], wl[1])) >= 0 && parse_u64(w[2], wl[2], &a) == 0) {
            o->seq_next[k] = a;
            seen_seq |= 1 << k;
        } else if (nw == 4 && word_is(w[0], wl[0], "mark") &&
                   (k = kind_of(w[1], wl[1])) >= 0 && parse_u64(w[2], wl[2], &a) == 0 &&
                   parse_u64(w[3], wl[3], &b) == 0) {
            if (push_mark(o, k, a, b) != 0)
                return WEIR_ENOMEM;
        } else if (nw == 4 && word_is(w[0], wl[0], "pos") && topic_valid(w[1], wl[1]) &&
                   parse_u64(w[2], wl[2], &a) == 0 && a <= INT32_MAX &&
                   parse_u64(w[3], wl[3], &b) == 0 && b <= INT64_MAX) {
            char topic[OFFSETS_TOPIC_MAX + 1];
            memcpy(topic, w[1], wl[1]);
            topic[wl[1]] = '\0';
            int rc = offsets_set(o, topic, (int32_t)a, (int64_t)b);
            if (rc)
                return rc;
        } else {
            snprintf(why, cap, "line %u: \"%.*s\" is not a checkpoint line", lineno,
                     (int)(n > 80 ? 80 : n), line);
            return WEIR_ECORRUPT;
        }
    }
    if (!seen_end) {
        snprintf(why, cap, "no \"end\" line (the file is cut)");
        return WEIR_ECORRUPT;
    }
    /* Without them a rollback would take every file for a new one. */
    if (o->retired && (seen_seq || o->nmarks[0] || o->nmarks[1])) {
        snprintf(why, cap, "\"retired\" with seq or mark lines");
        return WEIR_ECORRUPT;
    }
    if (!o->retired && seen_seq != 3) {
        snprintf(why, cap, "no \"seq raw\" and \"seq quarantine\" lines");
        return WEIR_ECORRUPT;
    }
    return 0;
}

/* ---- files -------------------------------------------------------------- */

static int dir_path(char *out, size_t cap, const char *data_dir, const char *pipeline)
{
    int n = snprintf(out, cap, "%s/%s/_offsets", data_dir, pipeline);
    return n < 0 || (size_t)n >= cap ? WEIR_ELIMIT : 0;
}

static int file_path(char *out, size_t cap, const char *data_dir, const char *pipeline,
                     const char *node, unsigned thread)
{
    int n = snprintf(out, cap, "%s/%s/_offsets/%s-%u", data_dir, pipeline, node, thread);
    return n < 0 || (size_t)n >= cap ? WEIR_ELIMIT : 0;
}

int offsets_write(const char *data_dir, const char *pipeline, const char *node,
                  const struct offsets *o, struct weir_errmsg *e)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (dir_path(dir, sizeof dir, data_dir, pipeline) ||
        file_path(path, sizeof path, data_dir, pipeline, node, o->thread))
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s/_offsets: path too long", data_dir,
                          pipeline);
    struct buf b = BUF_INIT(OFFSETS_FILE_MAX);
    int rc = offsets_format(o, node, &b);
    if (rc) {
        buf_release(&b);
        return errmsg_set(e, rc, "%s: checkpoint too large: %s", path, weir_strerror(rc));
    }
    struct stat st;
    if (fsio_stat(dir, &st) != 0 && (rc = fsio_mkdir_p(dir, 0755)) != 0) {
        buf_release(&b);
        return errmsg_set(e, rc, "%s: cannot create: %s", dir, strerror(errno));
    }
    rc = fsio_write_file_atomic(path, b.data, b.len, 0644);
    buf_release(&b);
    if (rc)
        return errmsg_set(e, rc, "%s: cannot write: %s (%s)", path, weir_strerror(rc),
                          strerror(errno));
    return 0;
}

static int load_path(const char *path, struct offsets *o, struct weir_errmsg *e)
{
    struct buf b = BUF_INIT(OFFSETS_FILE_MAX);
    int rc = fsio_read_file(path, &b);
    if (rc == WEIR_ENOTFOUND) {
        buf_release(&b);
        return rc;
    }
    if (rc) {
        buf_release(&b);
        return errmsg_set(e, rc, "%s: cannot read: %s", path, weir_strerror(rc));
    }
    char why[160];
    rc = offsets_parse(b.data ? b.data : "", b.len, o, why, sizeof why);
    buf_release(&b);
    if (rc)
        return errmsg_set(e, rc, "%s: %s; it tells which Kafka offsets the lake "
                          "holds, so weir will not guess: restore it or remove it "
                          "knowing records may be read twice", path,
                          rc == WEIR_ECORRUPT ? why : weir_strerror(rc));
    return 0;
}

int offsets_load(const char *data_dir, const char *pipeline, const char *node,
                 unsigned thread, struct offsets *o, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (file_path(path, sizeof path, data_dir, pipeline, node, thread))
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s/_offsets: path too long", data_dir,
                          pipeline);
    int rc = load_path(path, o, e);
    if (rc == 0)
        o->thread = thread;
    return rc;
}

/* 1 if name is "<something>-<digits>" (not a temp file); *thread, and the
 * length of the node part. */
static int ckpt_name(const char *name, size_t *node_len, unsigned *thread)
{
    if (name[0] == '.' || fsio_is_tmp_name(name))
        return 0;
    const char *dash = strrchr(name, '-');
    uint64_t t;
    if (!dash || dash == name || parse_u64(dash + 1, strlen(dash + 1), &t) != 0 ||
        t > UINT32_MAX)
        return 0;
    *node_len = (size_t)(dash - name);
    *thread = (unsigned)t;
    return 1;
}

/* Call fn for each checkpoint file of the pipeline (of node, when not
 * NULL). A missing directory has none. */
static int each_checkpoint(const char *data_dir, const char *pipeline, const char *node,
                           int (*fn)(void *ctx, const char *path, unsigned thread,
                                     struct weir_errmsg *e),
                           void *ctx, struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    if (dir_path(dir, sizeof dir, data_dir, pipeline))
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s/_offsets: path too long", data_dir,
                          pipeline);
    DIR *d = fsio_opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return errmsg_set(e, weir_from_errno(errno), "%s: %s", dir, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t nl;
        unsigned thread;
        if (!ckpt_name(de->d_name, &nl, &thread))
            continue;
        if (node && (strlen(node) != nl || memcmp(de->d_name, node, nl) != 0))
            continue;
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        rc = fn(ctx, path, thread, e);
    }
    closedir(d);
    return rc;
}

static int max_one(void *ctx, const char *path, unsigned thread, struct weir_errmsg *e)
{
    struct offsets *out = ctx;
    struct offsets one;
    offsets_init(&one, thread);
    int rc = load_path(path, &one, e);
    if (rc == WEIR_ENOTFOUND) /* removed while listing */
        rc = 0;
    for (size_t i = 0; i < one.npos && rc == 0; i++) {
        const struct offsets_pos *p = &one.pos[i];
        if (offsets_get(out, p->topic, p->partition) < p->next)
            rc = offsets_set(out, p->topic, p->partition, p->next);
    }
    offsets_release(&one);
    return rc;
}

int offsets_load_max(const char *data_dir, const char *pipeline, struct offsets *o,
                     struct weir_errmsg *e)
{
    return each_checkpoint(data_dir, pipeline, NULL, max_one, o, e);
}

/* ---- rollback ----------------------------------------------------------- */

struct rb_ctx {
    const char *data_dir, *pipeline, *node;
    struct offsets_rollback_stats *st;
};

static const struct seg_mark *find_mark(const struct offsets *o, int k, uint64_t seq)
{
    for (size_t i = 0; i < o->nmarks[k]; i++)
        if (o->marks[k][i].seq == seq)
            return &o->marks[k][i];
    return NULL;
}

static int cut_file(const char *path, uint64_t len, struct weir_errmsg *e)
{
    int fd = fsio_open(path, O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return errmsg_set(e, weir_from_errno(errno), "%s: cannot open to cut: %s", path,
                          strerror(errno));
    int rc = 0;
    if (fsio_ftruncate(fd, (off_t)len) != 0)
        rc = weir_from_errno(errno);
    else
        rc = fsio_fsync(fd);
    int saved = errno;
    fsio_close(fd);
    if (rc)
        return errmsg_set(e, rc, "%s: cannot cut back to %" PRIu64 " bytes: %s", path, len,
                          strerror(saved));
    return 0;
}

static int rollback_kind(struct rb_ctx *c, const struct offsets *o, int k,
                         struct weir_errmsg *e)
{
    struct seg_list l = {0};
    int rc = seg_list(c->data_dir, c->pipeline, kind_names[k], &l, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const struct seg_entry *s = &l.v[i];
        if (s->sn.thread != o->thread || !seg_name_is_node(s->name, c->node))
            continue;
        if (s->sn.seq >= o->seq_next[k]) {
            if (fsio_unlink(s->path) != 0 && errno != ENOENT) {
                rc = errmsg_set(e, weir_from_errno(errno), "%s: cannot remove: %s",
                                s->path, strerror(errno));
                break;
            }
            if ((rc = fsio_fsync_parent(s->path)) != 0) {
                errmsg_set(e, rc, "%s: cannot fsync its directory: %s", s->path,
                           strerror(errno));
                break;
            }
            c->st->files_removed++;
            c->st->bytes_dropped += s->size;
            continue;
        }
        const struct seg_mark *m = find_mark(o, k, s->sn.seq);
        if (!m || s->size == m->len)
            continue;
        if (s->size < m->len) {
            c->st->files_short++;
            log_warn("%s: %" PRIu64 " bytes, shorter than the %" PRIu64 " its checkpoint "
                     "recorded: records written without fsync were lost (fsync: never "
                     "and a power loss?)", s->path, s->size, m->len);
            continue;
        }
        if ((rc = cut_file(s->path, m->len, e)) != 0)
            break;
        c->st->files_cut++;
        c->st->bytes_dropped += s->size - m->len;
    }
    seg_list_release(&l);
    return rc;
}

static int rollback_one(void *ctx, const char *path, unsigned thread,
                        struct weir_errmsg *e)
{
    struct rb_ctx *c = ctx;
    struct offsets o;
    offsets_init(&o, thread);
    int rc = load_path(path, &o, e);
    if (rc == WEIR_ENOTFOUND)
        rc = 0;
    else if (rc == 0 && !o.retired) {
        o.thread = thread;
        c->st->checkpoints++;
        rc = rollback_kind(c, &o, OFFSETS_RAW, e);
        if (rc == 0)
            rc = rollback_kind(c, &o, OFFSETS_QUARANTINE, e);
    }
    offsets_release(&o);
    return rc;
}

int offsets_rollback(const char *data_dir, const char *pipeline, const char *node,
                     struct offsets_rollback_stats *st, struct weir_errmsg *e)
{
    struct rb_ctx c = {data_dir, pipeline, node, st};
    return each_checkpoint(data_dir, pipeline, node, rollback_one, &c, e);
}

struct retire_ctx {
    const char *data_dir, *pipeline, *node;
    long keep;
    unsigned long *n;
};

static int retire_one(void *ctx, const char *path, unsigned thread, struct weir_errmsg *e)
{
    struct retire_ctx *c = ctx;
    if (c->keep >= 0 && (unsigned long)c->keep == thread)
        return 0;
    struct offsets o;
    offsets_init(&o, thread);
    int rc = load_path(path, &o, e);
    if (rc == WEIR_ENOTFOUND) {
        rc = 0;
    } else if (rc == 0 && !o.retired) {
        o.thread = thread;
        o.retired = 1;
        o.nmarks[0] = o.nmarks[1] = 0;
        rc = offsets_write(c->data_dir, c->pipeline, c->node, &o, e);
        if (rc == 0)
            (*c->n)++;
    }
    offsets_release(&o);
    return rc;
}

int offsets_retire(const char *data_dir, const char *pipeline, const char *node,
                   long keep, unsigned long *n, struct weir_errmsg *e)
{
    struct retire_ctx c = {data_dir, pipeline, node, keep, n};
    return each_checkpoint(data_dir, pipeline, node, retire_one, &c, e);
}

/* ---- what compaction may absorb ----------------------------------------- */

struct settle_ctx {
    struct offsets_settle *out;
};

static int settle_one(void *ctx, const char *path, unsigned thread, struct weir_errmsg *e)
{
    struct offsets_settle *out = ((struct settle_ctx *)ctx)->out;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    size_t node_len;
    unsigned t;
    if (!ckpt_name(name, &node_len, &t))
        return 0;
    struct offsets o;
    offsets_init(&o, thread);
    int rc = load_path(path, &o, e);
    if (rc == WEIR_ENOTFOUND || (rc == 0 && o.retired)) {
        offsets_release(&o);
        return 0;
    }
    if (rc) {
        offsets_release(&o);
        return rc;
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 4;
        struct offsets_settle_ckpt *v = realloc(out->v, cap * sizeof *v);
        if (!v) {
            offsets_release(&o);
            return errmsg_set(e, WEIR_ENOMEM, "out of memory");
        }
        out->v = v;
        out->cap = cap;
    }
    struct offsets_settle_ckpt *c = &out->v[out->n];
    memset(c, 0, sizeof *c);
    c->node = strndup(name, node_len);
    if (!c->node) {
        offsets_release(&o);
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    }
    c->thread = thread;
    c->seq_next = o.seq_next[OFFSETS_RAW];
    c->marks = o.marks[OFFSETS_RAW]; /* taken over */
    c->nmarks = o.nmarks[OFFSETS_RAW];
    o.marks[OFFSETS_RAW] = NULL;
    out->n++;
    offsets_release(&o);
    return 0;
}

int offsets_settle_load(const char *data_dir, const char *pipeline,
                        struct offsets_settle *out, struct weir_errmsg *e)
{
    struct settle_ctx c = {out};
    memset(out, 0, sizeof *out);
    return each_checkpoint(data_dir, pipeline, NULL, settle_one, &c, e);
}

int offsets_settled(const struct offsets_settle *s, const char *seg_name, uint64_t size)
{
    struct seg_name sn;
    if (seg_name_parse(seg_name, &sn) != 0)
        return 1;
    for (size_t i = 0; i < s->n; i++) {
        const struct offsets_settle_ckpt *c = &s->v[i];
        if (c->thread != sn.thread || strlen(c->node) != sn.node_len ||
            memcmp(c->node, seg_name, sn.node_len) != 0)
            continue;
        if (sn.seq >= c->seq_next)
            return 0; /* opened after the checkpoint */
        for (size_t k = 0; k < c->nmarks; k++)
            if (c->marks[k].seq == sn.seq)
                return size <= c->marks[k].len;
        return 1; /* sealed before the checkpoint */
    }
    return 1; /* no Kafka checkpoint covers it */
}

void offsets_settle_release(struct offsets_settle *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].node);
        free(s->v[i].marks);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}
