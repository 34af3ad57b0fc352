/*
 * cursor.c - a sink's delivery cursor per node, on disk; see cursor.h and
 * docs/kafka.md.
 */
#include "store/cursor.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "store/segment.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_MAGIC "weir-cursor 1"
#define CURSOR_EXT ".cursor"

/* A line per segment still in raw: a few MiB is hundreds of thousands. */
#define CURSOR_FILE_MAX (64u << 20)

void cursor_release(struct sink_cursor *c)
{
    free(c->v);
    memset(c, 0, sizeof *c);
}

int cursor_stem(const char *name, char *stem, size_t cap)
{
    struct seg_name sn;
    if (seg_name_parse(name, &sn) != 0)
        return WEIR_EINVAL;
    /* seg_name_parse took one of the two suffixes off the end. */
    size_t n = strlen(name) - (sn.active ? strlen(".ndjson.open") : strlen(".ndjson"));
    if (n == 0 || n >= cap)
        return WEIR_EINVAL;
    memcpy(stem, name, n);
    stem[n] = '\0';
    return 0;
}

int cursor_add(struct sink_cursor *c, const char *stem, uint64_t off)
{
    size_t n = strlen(stem);
    if (n == 0 || n >= CURSOR_STEM_MAX || strpbrk(stem, " \n"))
        return WEIR_EINVAL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct cursor_entry *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return WEIR_ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    memcpy(c->v[c->n].stem, stem, n + 1);
    c->v[c->n++].off = off;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cursor_entry *)a)->stem,
                  ((const struct cursor_entry *)b)->stem);
}

void cursor_sort(struct sink_cursor *c)
{
    if (c->n > 1)
        qsort(c->v, c->n, sizeof *c->v, entry_cmp);
}

int cursor_get(const struct sink_cursor *c, const char *stem, uint64_t *off)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(c->v[mid].stem, stem);
        if (d == 0) {
            *off = c->v[mid].off;
            return 1;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int sink_dir(const char *data_dir, const char *pipeline, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s/_sink", data_dir, pipeline);
    return n < 0 || (size_t)n >= cap ? WEIR_ELIMIT : 0;
}

static int file_path(const char *data_dir, const char *pipeline, const char *node,
                     char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s/_sink/%s" CURSOR_EXT, data_dir, pipeline, node);
    return n < 0 || (size_t)n >= cap ? WEIR_ELIMIT : 0;
}

/* Parse a file's text into c (appending). */
static int parse(const char *path, const char *p, size_t len, struct sink_cursor *c,
                 struct weir_errmsg *e)
{
    size_t ml = strlen(CURSOR_MAGIC);
    if (len < ml + 1 || memcmp(p, CURSOR_MAGIC, ml) != 0 || p[ml] != '\n')
        return errmsg_set(e, WEIR_ECORRUPT, "%s: not a weir sink cursor (no \"%s\" "
                          "line)", path, CURSOR_MAGIC);
    size_t i = ml + 1;
    unsigned line = 2;
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        if (!nl)
            return errmsg_set(e, WEIR_ECORRUPT, "%s:%u: the last line has no newline",
                              path, line);
        size_t end = (size_t)(nl - p);
        const char *sp = memchr(p + i, ' ', end - i);
        char stem[CURSOR_STEM_MAX];
        size_t sl = sp ? (size_t)(sp - (p + i)) : 0;
        uint64_t off = 0;
        size_t k = sp ? (size_t)(sp - p) + 1 : end;
        int ok = sp && sl > 0 && sl < sizeof stem && k < end && end - k <= 20;
        for (size_t j = k; ok && j < end; j++) {
            uint64_t d = (uint64_t)(p[j] - '0');
            if (p[j] < '0' || p[j] > '9' || off > (UINT64_MAX - d) / 10)
                ok = 0;
            else
                off = off * 10 + d;
        }
        if (ok) {
            memcpy(stem, p + i, sl);
            stem[sl] = '\0';
            ok = cursor_add(c, stem, off) == 0;
        }
        if (!ok)
            return errmsg_set(e, WEIR_ECORRUPT, "%s:%u: expected \"STEM OFFSET\"",
                              path, line);
        i = end + 1;
        line++;
    }
    return 0;
}

static int load_path(const char *path, struct sink_cursor *c, struct weir_errmsg *e)
{
    struct buf b = BUF_INIT(CURSOR_FILE_MAX);
    int rc = fsio_read_file(path, &b);
    if (rc == WEIR_ENOTFOUND) {
        rc = 0;
    } else if (rc) {
        rc = errmsg_set(e, rc, "%s: cannot read: %s", path, weir_strerror(rc));
    } else {
        rc = parse(path, b.data ? b.data : "", b.len, c, e);
    }
    buf_release(&b);
    return rc;
}

int cursor_load(const char *data_dir, const char *pipeline, const char *node,
                struct sink_cursor *c, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (file_path(data_dir, pipeline, node, path, sizeof path))
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s: path too long", data_dir, pipeline);
    int rc = load_path(path, c, e);
    cursor_sort(c);
    return rc;
}

int cursor_save(const char *data_dir, const char *pipeline, const char *node,
                const struct sink_cursor *c, struct weir_errmsg *e)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (sink_dir(data_dir, pipeline, dir, sizeof dir) ||
        file_path(data_dir, pipeline, node, path, sizeof path))
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s: path too long", data_dir, pipeline);
    struct buf b = BUF_INIT(CURSOR_FILE_MAX);
    int rc = buf_puts(&b, CURSOR_MAGIC "\n");
    for (size_t i = 0; i < c->n && rc == 0; i++)
        rc = buf_appendf(&b, "%s %" PRIu64 "\n", c->v[i].stem, c->v[i].off);
    if (rc) {
        buf_release(&b);
        return errmsg_set(e, rc, "%s: too many segments to write", path);
    }
    if ((rc = fsio_mkdir_p(dir, 0755)) == 0)
        rc = fsio_write_file_atomic(path, b.data, b.len, 0644);
    buf_release(&b);
    if (rc)
        return errmsg_set(e, rc, "%s: cannot write: %s (%s)", path, weir_strerror(rc),
                          strerror(errno));
    return 0;
}

int cursor_load_all(const char *data_dir, const char *pipeline, struct sink_cursor *c,
                    struct weir_errmsg *e)
{
    char dir[PATH_MAX];
    if (sink_dir(data_dir, pipeline, dir, sizeof dir))
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s: path too long", data_dir, pipeline);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : errmsg_set(e, weir_from_errno(errno),
                                                "%s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    size_t el = strlen(CURSOR_EXT);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n <= el || strcmp(de->d_name + n - el, CURSOR_EXT) != 0 ||
            de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path)
            continue;
        rc = load_path(path, c, e);
    }
    closedir(d);
    cursor_sort(c);
    return rc;
}

int cursor_delivered(const struct sink_cursor *c, const char *name, uint64_t size)
{
    char stem[CURSOR_STEM_MAX];
    uint64_t off;
    if (cursor_stem(name, stem, sizeof stem) != 0)
        return 0;
    return cursor_get(c, stem, &off) && off >= size;
}
