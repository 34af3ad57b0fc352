/*
 * parquet_out.c - a model's Parquet output folder; see parquet_out.h and
 * docs/models.md.
 *
 * DuckDB writes the temporary file itself (COPY), so the fsync that
 * fsio's own atomic writes do on their descriptor is done here by opening
 * the file again: fsync applies to the file, whichever descriptor wrote it.
 */
#include "sinks/parquet_out.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fsio.h"
#include "sql/sql.h"

static _Atomic unsigned long tmp_counter;

/* Remove "<model>.parquet.tmp.*" left in folder by a crashed write. The
 * model's run lock (sched/models.c) means no other write of it is going
 * on from this machine. */
static void remove_stale(const char *folder, const char *final_name)
{
    DIR *d = opendir(folder);
    if (!d)
        return;
    size_t n = strlen(final_name);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, final_name, n) != 0 || strncmp(de->d_name + n, ".tmp.", 5) ||
            !fsio_is_tmp_name(de->d_name))
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", folder, de->d_name) < sizeof path)
            fsio_unlink(path);
    }
    closedir(d);
}

static int fsync_path(const char *path, uint64_t *bytes)
{
    int fd = fsio_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return weir_from_errno(errno);
    struct stat st;
    int rc = fsio_fsync(fd);
    if (!rc && fsio_fstat(fd, &st) != 0)
        rc = weir_from_errno(errno);
    if (!rc && bytes)
        *bytes = (uint64_t)st.st_size;
    if (fsio_close(fd) != 0 && !rc)
        rc = WEIR_EIO;
    return rc;
}

int parquet_out_write(struct sql_db *db, const char *table, const char *dir,
                      const char *key, const char *model, uint64_t *bytes,
                      struct weir_errmsg *e)
{
    char folder[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX], name[256];
    struct buf q = BUF_INIT(1 << 16);
    int rc, made = 0;

    if ((size_t)snprintf(name, sizeof name, "%s.parquet", model) >= sizeof name ||
        (size_t)snprintf(folder, sizeof folder, "%s/%s", dir, key) >= sizeof folder ||
        (size_t)snprintf(final, sizeof final, "%s/%s", folder, name) >= sizeof final ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lu", final, (long)getpid(),
                         atomic_fetch_add(&tmp_counter, 1)) >= sizeof tmp)
        return errmsg_set(e, WEIR_ELIMIT, "%s/%s: path too long", dir, key);
    if ((rc = fsio_mkdir_p(folder, 0755))) {
        rc = errmsg_set(e, rc, "%s: cannot create the folder: %s", folder,
                        weir_strerror(rc));
        goto out;
    }
    remove_stale(folder, name);
    rc = buf_puts(&q, "COPY ");
    rc = rc ? rc : buf_puts(&q, table);
    rc = rc ? rc : buf_puts(&q, " TO ");
    rc = rc ? rc : sql_quote_string(&q, tmp);
    rc = rc ? rc : buf_puts(&q, " (FORMAT parquet, COMPRESSION zstd)");
    if (rc) {
        rc = errmsg_set(e, rc, "%s: %s", final, weir_strerror(rc));
        goto out;
    }
    made = 1;
    if ((rc = sql_exec(db, q.data, e))) {
        char msg[sizeof e->text];
        snprintf(msg, sizeof msg, "%s", e->text);
        rc = errmsg_set(e, rc, "%s: %s", final, msg);
        goto out;
    }
    if (!(rc = fsync_path(tmp, bytes)) && fsio_rename(tmp, final) != 0)
        rc = weir_from_errno(errno);
    if (rc) {
        rc = errmsg_set(e, rc, "%s: %s", final, weir_strerror(rc));
        goto out;
    }
    made = 0;
    if ((rc = fsio_fsync_dir(folder)))
        rc = errmsg_set(e, rc, "%s: fsync: %s", folder, weir_strerror(rc));
out:
    if (made)
        fsio_unlink(tmp);
    buf_release(&q);
    return rc;
}
