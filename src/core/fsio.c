/*
 * fsio.c - durable file I/O through a replaceable syscall table; see fsio.h
 * and docs/storage.md.
 */
#include "core/fsio.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* ---- the table ---------------------------------------------------------- */

static int sys_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int sys_renameat2(int fromdir, const char *from, int todir,
                         const char *to, unsigned flags)
{
    return renameat2(fromdir, from, todir, to, flags);
}

static DIR *sys_opendir(const char *path)
{
    return opendir(path);
}

/* A macro, not a const object, so that both tables can be initialised
 * with it in standard C. */
#define REAL_SYS                                                             \
    {                                                                        \
        .open = sys_open, .close = close, .read = read, .pread = pread,      \
        .write = write, .pwrite = pwrite, .fsync = fsync,                    \
        .fdatasync = fdatasync, .ftruncate = ftruncate, .fstat = fstat,      \
        .stat = stat, .rename = rename, .renameat2 = sys_renameat2,          \
        .link = link, .unlink = unlink, .mkdir = mkdir, .rmdir = rmdir,      \
        .opendir = sys_opendir,                                              \
    }

static const struct fsio_sys real_sys = REAL_SYS;
static struct fsio_sys sys = REAL_SYS;

void fsio_sys_get(struct fsio_sys *out)
{
    *out = sys;
}

void fsio_sys_set(const struct fsio_sys *s)
{
    if (!s) {
        sys = real_sys;
        return;
    }
    sys = *s;
#define DEFAULT_(f) if (!sys.f) sys.f = real_sys.f;
    DEFAULT_(open) DEFAULT_(close) DEFAULT_(read) DEFAULT_(pread)
    DEFAULT_(write) DEFAULT_(pwrite) DEFAULT_(fsync) DEFAULT_(fdatasync)
    DEFAULT_(ftruncate) DEFAULT_(fstat) DEFAULT_(stat) DEFAULT_(rename)
    DEFAULT_(renameat2) DEFAULT_(link) DEFAULT_(unlink) DEFAULT_(mkdir)
    DEFAULT_(rmdir) DEFAULT_(opendir)
#undef DEFAULT_
}

/* ---- fault injection ---------------------------------------------------- */

struct fault_state {
    struct fsio_fault f;
    int armed;
    unsigned long calls;  /* since reset */
    unsigned long start;  /* calls when armed */
    unsigned long hits;
};

/* Read on every wrapped call; relaxed is enough (tests arm before use). */
static _Atomic int fault_on;
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fault_state faults[FSIO_OP__COUNT];

static const char *const op_names[FSIO_OP__COUNT] = {
    "open", "close", "read", "write", "pwrite", "fsync", "fdatasync",
    "ftruncate", "stat", "rename", "link", "unlink", "mkdir", "rmdir",
    "opendir",
};

const char *fsio_op_name(enum fsio_op op)
{
    return (unsigned)op < FSIO_OP__COUNT ? op_names[op] : "?";
}

/* Count a call of op and decide its fate: 0 to go ahead (with *n perhaps
 * shortened), or the errno it must fail with. */
static int fault_check(enum fsio_op op, size_t *n)
{
    int err = 0;
    pthread_mutex_lock(&fault_mu);
    struct fault_state *s = &faults[op];
    s->calls++;
    unsigned long since = s->calls - s->start;
    if (s->armed && since > s->f.after) {
        unsigned long k = since - s->f.after; /* 1 for the first failure */
        if (s->f.times && k > s->f.times) {
            s->armed = 0;
        } else {
            s->hits++;
            if (n && s->f.short_bytes && (!s->f.err || k == 1)) {
                if (*n > s->f.short_bytes)
                    *n = s->f.short_bytes;
            } else {
                err = s->f.err;
            }
        }
    }
    pthread_mutex_unlock(&fault_mu);
    return err;
}

#define FAULT(op, np)                                                        \
    (atomic_load_explicit(&fault_on, memory_order_relaxed)                   \
         ? fault_check((op), (np))                                           \
         : 0)

void fsio_fault_arm(enum fsio_op op, const struct fsio_fault *f)
{
    if ((unsigned)op >= FSIO_OP__COUNT)
        return;
    pthread_mutex_lock(&fault_mu);
    faults[op].f = *f;
    faults[op].armed = 1;
    faults[op].start = faults[op].calls;
    pthread_mutex_unlock(&fault_mu);
    atomic_store(&fault_on, 1);
}

void fsio_fault_set(enum fsio_op op, unsigned long after_n_calls, int err,
                    size_t short_bytes)
{
    struct fsio_fault f = { after_n_calls, 0, err, short_bytes };
    fsio_fault_arm(op, &f);
}

void fsio_fault_clear(enum fsio_op op)
{
    if ((unsigned)op >= FSIO_OP__COUNT)
        return;
    pthread_mutex_lock(&fault_mu);
    faults[op].armed = 0;
    pthread_mutex_unlock(&fault_mu);
}

void fsio_fault_reset(void)
{
    pthread_mutex_lock(&fault_mu);
    memset(faults, 0, sizeof(faults));
    pthread_mutex_unlock(&fault_mu);
    atomic_store(&fault_on, 1);
}

void fsio_fault_off(void)
{
    atomic_store(&fault_on, 0);
    pthread_mutex_lock(&fault_mu);
    memset(faults, 0, sizeof(faults));
    pthread_mutex_unlock(&fault_mu);
}

unsigned long fsio_fault_calls(enum fsio_op op)
{
    if ((unsigned)op >= FSIO_OP__COUNT)
        return 0;
    pthread_mutex_lock(&fault_mu);
    unsigned long v = faults[op].calls;
    pthread_mutex_unlock(&fault_mu);
    return v;
}

unsigned long fsio_fault_hits(enum fsio_op op)
{
    if ((unsigned)op >= FSIO_OP__COUNT)
        return 0;
    pthread_mutex_lock(&fault_mu);
    unsigned long v = faults[op].hits;
    pthread_mutex_unlock(&fault_mu);
    return v;
}

/* ---- wrappers ----------------------------------------------------------- */

#define FAIL_IF_FAULT(op, np, failval)                                       \
    do {                                                                     \
        int fe_ = FAULT((op), (np));                                         \
        if (fe_) {                                                           \
            errno = fe_;                                                     \
            return (failval);                                                \
        }                                                                    \
    } while (0)

int fsio_open(const char *path, int flags, mode_t mode)
{
    FAIL_IF_FAULT(FSIO_OP_OPEN, NULL, -1);
    return sys.open(path, flags, mode);
}

int fsio_close(int fd)
{
    int fe = FAULT(FSIO_OP_CLOSE, NULL);
    int rc = sys.close(fd);
    if (fe) {
        errno = fe;
        return -1;
    }
    return rc;
}

ssize_t fsio_read(int fd, void *p, size_t n)
{
    FAIL_IF_FAULT(FSIO_OP_READ, NULL, -1);
    return sys.read(fd, p, n);
}

ssize_t fsio_pread(int fd, void *p, size_t n, off_t off)
{
    FAIL_IF_FAULT(FSIO_OP_READ, NULL, -1);
    return sys.pread(fd, p, n, off);
}

ssize_t fsio_write(int fd, const void *p, size_t n)
{
    FAIL_IF_FAULT(FSIO_OP_WRITE, &n, -1);
    return sys.write(fd, p, n);
}

ssize_t fsio_pwrite(int fd, const void *p, size_t n, off_t off)
{
    FAIL_IF_FAULT(FSIO_OP_PWRITE, &n, -1);
    return sys.pwrite(fd, p, n, off);
}

int fsio_ftruncate(int fd, off_t len)
{
    FAIL_IF_FAULT(FSIO_OP_FTRUNCATE, NULL, -1);
    return sys.ftruncate(fd, len);
}

int fsio_fstat(int fd, struct stat *st)
{
    FAIL_IF_FAULT(FSIO_OP_STAT, NULL, -1);
    return sys.fstat(fd, st);
}

int fsio_stat(const char *path, struct stat *st)
{
    FAIL_IF_FAULT(FSIO_OP_STAT, NULL, -1);
    return sys.stat(path, st);
}

int fsio_rename(const char *from, const char *to)
{
    FAIL_IF_FAULT(FSIO_OP_RENAME, NULL, -1);
    return sys.rename(from, to);
}

int fsio_link(const char *from, const char *to)
{
    FAIL_IF_FAULT(FSIO_OP_LINK, NULL, -1);
    return sys.link(from, to);
}

int fsio_unlink(const char *path)
{
    FAIL_IF_FAULT(FSIO_OP_UNLINK, NULL, -1);
    return sys.unlink(path);
}

int fsio_mkdir(const char *path, mode_t mode)
{
    FAIL_IF_FAULT(FSIO_OP_MKDIR, NULL, -1);
    return sys.mkdir(path, mode);
}

int fsio_rmdir(const char *path)
{
    FAIL_IF_FAULT(FSIO_OP_RMDIR, NULL, -1);
    return sys.rmdir(path);
}

DIR *fsio_opendir(const char *path)
{
    FAIL_IF_FAULT(FSIO_OP_OPENDIR, NULL, NULL);
    return sys.opendir(path);
}

/* ---- helpers ------------------------------------------------------------ */

/* A write failure as a weir code: the disk being full is the one the
 * callers treat differently (backpressure and retry), the rest is EIO. */
static int write_error(int errnum)
{
    return (errnum == ENOSPC || errnum == EDQUOT) ? WEIR_ENOSPC : WEIR_EIO;
}

int fsio_write_all(int fd, const void *p, size_t n, size_t *done)
{
    const char *c = p;
    size_t off = 0;
    int rc = 0;
    while (off < n) {
        ssize_t w = fsio_write(fd, c + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = write_error(errno);
            break;
        }
        if (w == 0) { /* not expected from a regular file; do not spin */
            errno = EIO;
            rc = WEIR_EIO;
            break;
        }
        off += (size_t)w;
    }
    if (done)
        *done = off;
    return rc;
}

int fsio_pwrite_all(int fd, const void *p, size_t n, off_t off, size_t *done)
{
    const char *c = p;
    size_t at = 0;
    int rc = 0;
    while (at < n) {
        ssize_t w = fsio_pwrite(fd, c + at, n - at, off + (off_t)at);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = write_error(errno);
            break;
        }
        if (w == 0) {
            errno = EIO;
            rc = WEIR_EIO;
            break;
        }
        at += (size_t)w;
    }
    if (done)
        *done = at;
    return rc;
}

int fsio_pread_all(int fd, void *p, size_t n, off_t off, size_t *got)
{
    char *c = p;
    size_t at = 0;
    int rc = 0;
    while (at < n) {
        ssize_t r = fsio_pread(fd, c + at, n - at, off + (off_t)at);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = weir_from_errno(errno);
            break;
        }
        if (r == 0)
            break;
        at += (size_t)r;
    }
    if (got)
        *got = at;
    return rc;
}

int fsio_read_file(const char *path, struct buf *out)
{
    int fd = fsio_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return weir_from_errno(errno);
    int rc;
    struct stat st;
    if (fsio_fstat(fd, &st) != 0) {
        rc = weir_from_errno(errno);
        goto done;
    }
    if ((uint64_t)st.st_size > out->max) {
        rc = WEIR_ELIMIT;
        goto done;
    }
    rc = 0;
    for (;;) {
        char chunk[4096];
        ssize_t r = fsio_read(fd, chunk, sizeof(chunk));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = weir_from_errno(errno);
            break;
        }
        if (r == 0)
            break;
        if ((rc = buf_append(out, chunk, (size_t)r)) != 0)
            break;
    }
done:;
    int saved = errno;
    fsio_close(fd);
    errno = saved;
    return rc;
}

int fsio_fsync(int fd)
{
    for (;;) {
        int fe = FAULT(FSIO_OP_FSYNC, NULL);
        if (!fe && sys.fsync(fd) == 0)
            return 0;
        if (fe)
            errno = fe;
        if (errno != EINTR)
            return write_error(errno);
    }
}

int fsio_fdatasync(int fd)
{
    for (;;) {
        int fe = FAULT(FSIO_OP_FDATASYNC, NULL);
        if (!fe && sys.fdatasync(fd) == 0)
            return 0;
        if (fe)
            errno = fe;
        if (errno != EINTR)
            return write_error(errno);
    }
}

int fsio_fsync_dir(const char *path)
{
    int fd = fsio_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return weir_from_errno(errno);
    int rc = fsio_fsync(fd);
    if (rc && errno == EINVAL)
        rc = 0;
    int saved = errno;
    fsio_close(fd);
    errno = saved;
    return rc;
}

/* The directory part of path into out: "a/b/c" -> "a/b", "c" -> ".",
 * "/c" -> "/". */
static int parent_of(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n == 0) {
        out[0] = '.';
        out[1] = '\0';
        return 0;
    }
    if (n >= cap)
        return WEIR_ELIMIT;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

int fsio_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    int rc = parent_of(path, dir, sizeof(dir));
    return rc ? rc : fsio_fsync_dir(dir);
}

static int exists_as_dir(const char *path)
{
    struct stat st;
    if (fsio_stat(path, &st) != 0)
        return weir_from_errno(errno);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return WEIR_EEXIST;
    }
    return 0;
}

static int mkdir_rec(char *path, size_t len, mode_t mode, int depth)
{
    if (fsio_mkdir(path, mode) == 0)
        return fsio_fsync_parent(path);
    if (errno == EEXIST)
        return exists_as_dir(path);
    if (errno != ENOENT || depth > 128)
        return weir_from_errno(errno);
    size_t p = len;
    while (p > 0 && path[p - 1] != '/')
        p--;
    while (p > 1 && path[p - 1] == '/')
        p--;
    if (p == 0 || (p == 1 && path[0] == '/'))
        return WEIR_ENOTFOUND; /* "." or "/" is missing: nothing to create */
    char saved = path[p];
    path[p] = '\0';
    int rc = mkdir_rec(path, p, mode, depth + 1);
    path[p] = saved;
    if (rc)
        return rc;
    if (fsio_mkdir(path, mode) == 0)
        return fsio_fsync_parent(path);
    if (errno == EEXIST) /* created by someone else meanwhile */
        return exists_as_dir(path);
    return weir_from_errno(errno);
}

int fsio_mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0)
        return WEIR_EINVAL;
    if (n >= sizeof(tmp))
        return WEIR_ELIMIT;
    memcpy(tmp, path, n + 1);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    return mkdir_rec(tmp, n, mode, 0);
}

static _Atomic unsigned long tmp_counter;

/* Write data to a fresh temp file beside path and fsync it; its name is
 * left in tmp. */
static int write_tmp(const char *path, const void *data, size_t len,
                     mode_t mode, char *tmp, size_t cap)
{
    int fd = -1;
    for (int tries = 0; fd < 0; tries++) {
        unsigned long k = atomic_fetch_add(&tmp_counter, 1);
        int w = snprintf(tmp, cap, "%s.tmp.%ld.%lu", path, (long)getpid(), k);
        if (w < 0 || (size_t)w >= cap)
            return WEIR_ELIMIT;
        fd = fsio_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        /* Another machine on shared storage may have our pid: next name. */
        if (fd < 0 && (errno != EEXIST || tries > 100))
            return weir_from_errno(errno);
    }
    int rc = fsio_write_all(fd, data, len, NULL);
    if (!rc)
        rc = fsio_fsync(fd);
    int saved = errno;
    if (fsio_close(fd) != 0 && !rc) {
        rc = WEIR_EIO;
        saved = errno;
    }
    if (rc)
        fsio_unlink(tmp);
    errno = saved;
    return rc;
}

int fsio_write_file_atomic(const char *path, const void *data, size_t len,
                           mode_t mode)
{
    char tmp[PATH_MAX];
    int rc = write_tmp(path, data, len, mode, tmp, sizeof(tmp));
    if (rc)
        return rc;
    if (fsio_rename(tmp, path) != 0) {
        int saved = errno;
        rc = weir_from_errno(saved);
        fsio_unlink(tmp);
        errno = saved;
        return rc;
    }
    return fsio_fsync_parent(path);
}

int fsio_publish_excl(const char *path, const void *data, size_t len,
                      mode_t mode)
{
    char tmp[PATH_MAX];
    int rc = write_tmp(path, data, len, mode, tmp, sizeof(tmp));
    if (rc)
        return rc;
    rc = fsio_rename_excl(tmp, path);
    if (rc) {
        int saved = errno;
        fsio_unlink(tmp);
        errno = saved;
        return rc;
    }
    return fsio_fsync_parent(path);
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return fsio_stat(a, &sa) == 0 && fsio_stat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int fsio_rename_excl(const char *from, const char *to)
{
    int fe = FAULT(FSIO_OP_RENAME, NULL);
    if (!fe && sys.renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (fe)
        errno = fe;
    if (errno == EEXIST)
        return WEIR_EEXIST;
    /* Filesystems without RENAME_NOREPLACE (NFS, older kernels): link()
     * also refuses an existing name and is atomic there. */
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return weir_from_errno(errno);
    if (fsio_link(from, to) != 0) {
        if (errno != EEXIST)
            return weir_from_errno(errno);
        /* An earlier attempt linked but failed to unlink: finish it. */
        if (!same_file(from, to)) {
            errno = EEXIST;
            return WEIR_EEXIST;
        }
    }
    if (fsio_unlink(from) != 0)
        return weir_from_errno(errno);
    return 0;
}

int fsio_lock_file(const char *path, int *fd)
{
    *fd = -1;
    int f = fsio_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return weir_from_errno(errno);
    while (flock(f, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        int saved = errno;
        fsio_close(f);
        errno = saved;
        return saved == EWOULDBLOCK ? WEIR_ECONFLICT : weir_from_errno(saved);
    }
    *fd = f;
    return 0;
}

int fsio_name_valid(const char *name)
{
    size_t n = 0;
    if (!name || name[0] == '.' || name[0] == '-')
        return 0;
    for (; name[n]; n++) {
        unsigned char c = (unsigned char)name[n];
        if (n >= 128)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

/* Digits then end or sep; returns the position after them or NULL. */
static const char *skip_digits(const char *s, char sep)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    return (p > s && *p == sep) ? p : NULL;
}

int fsio_is_tmp_name(const char *name)
{
    /* The last ".tmp." must be followed by exactly "<pid>.<n>". */
    const char *t = NULL;
    for (const char *p = strstr(name, ".tmp."); p; p = strstr(p + 1, ".tmp."))
        t = p;
    if (!t || t == name)
        return 0;
    const char *p = skip_digits(t + 5, '.');
    return p && skip_digits(p + 1, '\0') != NULL;
}
