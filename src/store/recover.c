/*
 * recover.c - cut torn tails, seal what a crash left active; see recover.h
 * and docs/storage.md ("Recovery").
 */
#include "store/recover.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "store/quarantine.h"
#include "store/requeue.h"
#include "store/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_CHUNK (1u << 20)
#define PIECE_MAX WEIR_DEFAULT_MAX_RECORD

/* Where the good part of the file at fd ends: after the last '\n' that
 * precedes any NUL byte. */
static int find_cut(int fd, uint64_t size, char *chunk, uint64_t *cut)
{
    uint64_t off = 0;
    *cut = 0;
    while (off < size) {
        size_t n = size - off < SCAN_CHUNK ? (size_t)(size - off) : SCAN_CHUNK;
        size_t got;
        int rc = fsio_pread_all(fd, chunk, n, (off_t)off, &got);
        if (rc)
            return rc;
        if (got == 0)
            break;
        const char *z = memchr(chunk, '\0', got);
        size_t lim = z ? (size_t)(z - chunk) : got;
        const char *nl = lim ? memrchr(chunk, '\n', lim) : NULL;
        if (nl)
            *cut = off + (uint64_t)(nl - chunk) + 1;
        if (z)
            break;
        off += got;
    }
    return 0;
}

/* Hand [from, size) to on_torn, one line (or PIECE_MAX bytes) at a time. */
static int hand_over(int fd, const char *path, uint64_t from, uint64_t size,
                     char *chunk, recover_torn_fn on_torn, void *ctx,
                     struct recover_stats *st)
{
    uint64_t off = from;
    while (off < size) {
        size_t n = size - off < PIECE_MAX ? (size_t)(size - off) : PIECE_MAX;
        size_t got;
        int rc = fsio_pread_all(fd, chunk, n, (off_t)off, &got);
        if (rc)
            return rc;
        if (got == 0)
            break;
        const char *nl = memchr(chunk, '\n', got);
        size_t len = nl ? (size_t)(nl - chunk) : got;
        if (len > 0) {
            if ((rc = on_torn(ctx, path, off, chunk, len)) != 0)
                return rc;
            st->torn++;
            st->torn_bytes += len;
        }
        off += nl ? len + 1 : got;
    }
    return 0;
}

static int recover_one(const char *path, recover_torn_fn on_torn, void *ctx,
                       struct recover_stats *st, struct weir_errmsg *e)
{
    int rc;
    const char *what = "open";
    char *chunk = malloc(SCAN_CHUNK > PIECE_MAX ? SCAN_CHUNK : PIECE_MAX);
    if (!chunk)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    int fd = fsio_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        rc = weir_from_errno(errno);
        goto fail;
    }
    struct stat sb;
    what = "stat";
    if (fsio_fstat(fd, &sb) != 0) {
        rc = weir_from_errno(errno);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size, cut;
    what = "read";
    if ((rc = find_cut(fd, size, chunk, &cut)) != 0)
        goto fail;
    if (cut < size) {
        what = "quarantine the torn tail of";
        if ((rc = hand_over(fd, path, cut, size, chunk, on_torn, ctx, st)))
            goto fail;
        what = "truncate";
        if (fsio_ftruncate(fd, (off_t)cut) != 0) {
            rc = weir_from_errno(errno);
            goto fail;
        }
    }
    /* Also when nothing was cut: a crashed process's writes are in the page
     * cache, not necessarily on disk. */
    what = "fsync";
    if ((rc = fsio_fsync(fd)) != 0)
        goto fail;
    fsio_close(fd);
    fd = -1;
    if (cut == 0) {
        what = "remove";
        if (fsio_unlink(path) != 0) {
            rc = weir_from_errno(errno);
            goto fail;
        }
        st->removed++;
    } else {
        char sealed[PATH_MAX];
        size_t n = strlen(path) - 5; /* drop ".open" */
        memcpy(sealed, path, n);
        sealed[n] = '\0';
        what = "seal";
        if ((rc = fsio_rename_excl(path, sealed)) != 0)
            goto fail;
        st->sealed++;
        st->kept_bytes += cut;
    }
    what = "fsync the directory of";
    if ((rc = fsio_fsync_parent(path)) != 0)
        goto fail;
    free(chunk);
    return 0;
fail:
    errmsg_set(e, rc, "recovery: %s %s: %s (%s)", what, path,
               weir_strerror(rc), strerror(errno));
    if (fd >= 0)
        fsio_close(fd);
    free(chunk);
    st->failed++;
    return rc;
}

/* Remove node's temp files (fsio_write_file_atomic leftovers) in dir. */
static int remove_tmp(const char *dir, const char *node,
                      struct recover_stats *st, struct weir_errmsg *e)
{
    DIR *d = fsio_opendir(dir);
    if (!d)
        return errno == ENOENT ? 0
                               : errmsg_set(e, weir_from_errno(errno),
                                            "%s: %s", dir, strerror(errno));
    size_t nl = strlen(node);
    int rc = 0, any = 0;
    struct dirent *de;
    /* weir requeue updates its counter (<node>-SEG_THREAD_REQUEUE) while
     * the server runs, and removes its own leftovers (requeue.h). */
    char rq[32];
    int rql = snprintf(rq, sizeof(rq), "-%u.tmp.", SEG_THREAD_REQUEUE);
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strncmp(name, node, nl) != 0 || name[nl] != '-' ||
            !fsio_is_tmp_name(name) ||
            strncmp(name + nl, rq, (size_t)rql) == 0)
            continue;
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        if (fsio_unlink(path) == 0) {
            st->tmp_removed++;
            any = 1;
        } else if (errno != ENOENT && !rc) {
            rc = errmsg_set(e, weir_from_errno(errno), "%s: %s", path,
                            strerror(errno));
        }
    }
    closedir(d);
    if (any)
        fsio_fsync_dir(dir);
    return rc;
}

/* The active segments of node in one kind; others counted in st. */
static int collect(const char *data_dir, const char *pipeline,
                   const char *kind, const char *node, struct seg_list *out,
                   struct recover_stats *st, struct weir_errmsg *e)
{
    int rc = seg_list(data_dir, pipeline, kind, out, e);
    if (rc)
        return rc;
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        struct seg_entry *s = &out->v[i];
        if (s->active && seg_name_is_node(s->name, node)) {
            out->v[k++] = *s;
            continue;
        }
        if (s->active)
            st->other_nodes++;
        free(s->path);
    }
    out->n = k;
    return 0;
}

static int recover_lists(const char *data_dir, const char *pipeline,
                         const char *const *kinds, size_t nkinds,
                         const char *node, recover_torn_fn on_torn, void *ctx,
                         struct recover_stats *st, struct weir_errmsg *e)
{
    struct seg_list lists[2] = {{0}};
    int first = 0;
    if (!fsio_name_valid(node))
        return errmsg_set(e, WEIR_EINVAL, "recovery: invalid node name '%s'",
                          node ? node : "");
    /* List everything before touching anything: on_torn writes new
     * segments into quarantine/, which must not be recovered themselves. */
    for (size_t k = 0; k < nkinds; k++) {
        int rc = collect(data_dir, pipeline, kinds[k], node, &lists[k], st, e);
        if (rc) {
            for (size_t j = 0; j < k; j++)
                seg_list_release(&lists[j]);
            return rc;
        }
    }
    struct weir_errmsg local;
    for (size_t k = 0; k < nkinds; k++) {
        for (size_t i = 0; i < lists[k].n; i++) {
            int rc = recover_one(lists[k].v[i].path, on_torn, ctx, st, &local);
            if (rc && !first) {
                first = rc;
                if (e)
                    *e = local;
            }
        }
        seg_list_release(&lists[k]);
        char sub[PATH_MAX];
        int n = snprintf(sub, sizeof(sub), "%s/%s/%s/_seq", data_dir,
                         pipeline, kinds[k]);
        if (n > 0 && (size_t)n < sizeof(sub)) {
            int rc = remove_tmp(sub, node, st, &local);
            if (rc && !first) {
                first = rc;
                if (e)
                    *e = local;
            }
        }
    }
    return first;
}

int recover_kind(const char *data_dir, const char *pipeline, const char *kind,
                 const char *node, recover_torn_fn on_torn, void *ctx,
                 struct recover_stats *st, struct weir_errmsg *e)
{
    const char *kinds[1] = {kind};
    return recover_lists(data_dir, pipeline, kinds, 1, node, on_torn, ctx, st,
                         e);
}

int recover_pipeline(const char *data_dir, const char *pipeline,
                     const char *node, recover_torn_fn on_torn, void *ctx,
                     struct recover_stats *st, struct weir_errmsg *e)
{
    const char *kinds[2] = {"raw", "quarantine"};
    int rc = recover_lists(data_dir, pipeline, kinds, 2, node, on_torn, ctx,
                           st, e);
    /* Ingest does not depend on requeue's leftovers: a failure here (a
     * damaged journal, a disk error) is told, not a reason not to start;
     * weir requeue reports it again with the fix. */
    struct requeue_counts rq = {0};
    struct weir_errmsg local = {0};
    if (requeue_recover(data_dir, pipeline, &rq, &local) != 0)
        log_warn("%s: %s (weir requeue %s says more)", pipeline, local.text,
                 pipeline);
    st->requeue_finished += rq.finished;
    st->requeue_discarded += rq.discarded;
    return rc;
}

int recover_torn_to_quarantine(void *ctx, const char *seg_path,
                               uint64_t offset, const void *bytes, size_t len)
{
    struct quar_writer *q = ctx;
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof(msg),
             "torn line cut at recovery from %s at byte %" PRIu64, seg_path,
             offset);
    struct quar_record r = {
        .received_at_ns = wtime_now_ns(),
        .reason = QUAR_TORN,
        .error = msg,
        .raw = bytes,
        .raw_len = len,
    };
    int rc = quar_append(q, &r);
    if (rc == WEIR_EAGAIN) { /* buffer full: make room, once */
        if ((rc = seg_sync(quar_seg(q))) != 0)
            return rc;
        rc = quar_append(q, &r);
    }
    if (!seg_taken(rc))
        return rc;
    return seg_sync(quar_seg(q));
}

int recover_lock_node(const char *data_dir, const char *node, int *fd,
                      struct weir_errmsg *e)
{
    *fd = -1;
    if (!fsio_name_valid(node))
        return errmsg_set(e, WEIR_EINVAL, "invalid node name '%s'",
                          node ? node : "");
    int rc = fsio_mkdir_p(data_dir, 0755);
    if (rc)
        return errmsg_set(e, rc, "%s: cannot create: %s", data_dir,
                          strerror(errno));
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/_node-%s.lock", data_dir, node);
    if (n < 0 || (size_t)n >= sizeof(path))
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", data_dir);
    rc = fsio_lock_file(path, fd);
    if (rc == WEIR_ECONFLICT)
        return errmsg_set(e, rc,
                          "%s: another weir process runs as node '%s' on this "
                          "data_dir; stop it or give this one another node name",
                          path, node);
    if (rc)
        return errmsg_set(e, rc, "%s: %s", path, strerror(errno));
    return 0;
}
