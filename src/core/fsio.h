/*
 * fsio.h - every file operation that must survive a crash goes through here.
 *
 * Two layers, as in SQLite's os_unix.c:
 *
 *  1. A table of syscalls (struct fsio_sys). The fsio_open(), fsio_write(),
 *     ... wrappers call through it, so a test can replace one entry (a disk
 *     that fails on the third fsync) and the code under test cannot tell.
 *     The wrappers are POSIX style: they return what the syscall returns and
 *     leave errno set. On top of the table sits a fault injector
 *     (fsio_fault_*) that fails the Nth call of an operation with an errno or
 *     makes it short; when no fault is armed it costs one predictable branch.
 *
 *  2. Helpers that do the durable patterns right once (they return 0 or a
 *     negative WEIR_E* code and leave errno set for a message):
 *     - fsio_write_all / fsio_pwrite_all: loop over short writes and EINTR;
 *     - fsio_fsync / fsio_fdatasync: retry EINTR;
 *     - fsio_fsync_dir: make a directory's entries (creates, renames) durable;
 *     - fsio_mkdir_p: create each missing level and fsync its parent;
 *     - fsio_write_file_atomic: temp name, write, fsync, rename, fsync dir;
 *     - fsio_publish_excl: the same, but the final name must not exist
 *       (renameat2(RENAME_NOREPLACE), or link() where that is unsupported):
 *       the table log publishes commits with it, a loser gets WEIR_EEXIST;
 *     - fsio_rename_excl: rename that never replaces an existing file.
 *
 * Temporary files are named "<final name>.tmp.<pid>.<n>" beside the final
 * file, so a recovery can recognise (fsio_is_tmp_name) and remove leftovers
 * of its own node. See docs/storage.md.
 *
 * Thread safety: the wrappers and helpers are safe from any thread. The
 * syscall table and the fault injector are set up by tests before threads
 * start (the injector itself is locked, so concurrent calls are counted
 * correctly, but arming it while other threads run is a test's own business).
 */
#ifndef WEIR_CORE_FSIO_H
#define WEIR_CORE_FSIO_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/buf.h"

/* ---- the syscall table ------------------------------------------------- */

struct fsio_sys {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*read)(int fd, void *p, size_t n);
    ssize_t (*pread)(int fd, void *p, size_t n, off_t off);
    ssize_t (*write)(int fd, const void *p, size_t n);
    ssize_t (*pwrite)(int fd, const void *p, size_t n, off_t off);
    int (*fsync)(int fd);
    int (*fdatasync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*fstat)(int fd, struct stat *st);
    int (*stat)(const char *path, struct stat *st);
    int (*rename)(const char *from, const char *to);
    int (*renameat2)(int fromdir, const char *from, int todir, const char *to,
                     unsigned flags);
    int (*link)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    int (*rmdir)(const char *path);
    DIR *(*opendir)(const char *path);
};

/* Copy the table in use into out. */
void fsio_sys_get(struct fsio_sys *out);

/* Replace the table (entries left NULL get the real syscall); NULL restores
 * the real syscalls. Call before other threads use fsio. */
void fsio_sys_set(const struct fsio_sys *s);

/* ---- wrappers: POSIX style, through the table and the fault injector --- */

int fsio_open(const char *path, int flags, mode_t mode);
int fsio_close(int fd);  /* the fd is released even when this fails */
ssize_t fsio_read(int fd, void *p, size_t n);
ssize_t fsio_pread(int fd, void *p, size_t n, off_t off);
ssize_t fsio_write(int fd, const void *p, size_t n);
ssize_t fsio_pwrite(int fd, const void *p, size_t n, off_t off);
int fsio_ftruncate(int fd, off_t len);
int fsio_fstat(int fd, struct stat *st);
int fsio_stat(const char *path, struct stat *st);
int fsio_rename(const char *from, const char *to);
int fsio_link(const char *from, const char *to);
int fsio_unlink(const char *path);
int fsio_mkdir(const char *path, mode_t mode);
int fsio_rmdir(const char *path);
DIR *fsio_opendir(const char *path);  /* readdir/closedir are used directly */

/* ---- helpers: 0 or a negative WEIR_E* code, errno left set ------------- */

/* Write all n bytes, looping over short writes and EINTR. On failure *done
 * (if not NULL) holds how many bytes did reach the file, so the caller can
 * cut them off again. WEIR_ENOSPC for ENOSPC/EDQUOT, WEIR_EIO otherwise. */
int fsio_write_all(int fd, const void *p, size_t n, size_t *done);
int fsio_pwrite_all(int fd, const void *p, size_t n, off_t off, size_t *done);

/* Read until n bytes or end of file; *got says how many. */
int fsio_pread_all(int fd, void *p, size_t n, off_t off, size_t *got);

/* Read a whole (small) file into out, which must be empty; WEIR_ELIMIT if
 * it is larger than out->max, WEIR_ENOTFOUND if it does not exist. */
int fsio_read_file(const char *path, struct buf *out);

int fsio_fsync(int fd);
int fsio_fdatasync(int fd);

/* fsync the directory at path (filesystems that cannot fsync a directory,
 * EINVAL, count as success: there is nothing more to be done there). */
int fsio_fsync_dir(const char *path);

/* fsync the directory that holds path ("a/b/c" -> "a/b", "c" -> "."). */
int fsio_fsync_parent(const char *path);

/* mkdir -p, creating each missing level with mode and fsyncing the parent
 * of each level it created. An existing non-directory is WEIR_EEXIST. */
int fsio_mkdir_p(const char *path, mode_t mode);

/* Replace (or create) path with data, atomically: after a crash path holds
 * either the old or the new content, never a mix or nothing. */
int fsio_write_file_atomic(const char *path, const void *data, size_t len,
                           mode_t mode);

/* Create path with data only if it does not exist yet: WEIR_EEXIST if it
 * does (the temp file is removed, nothing changes). The content is durable
 * and complete the moment the name appears. */
int fsio_publish_excl(const char *path, const void *data, size_t len,
                      mode_t mode);

/* Rename from to to unless to exists (WEIR_EEXIST, nothing changes). Does
 * not fsync the directory: the caller does, once for several renames. */
int fsio_rename_excl(const char *from, const char *to);

/* Take an exclusive advisory lock (flock) on path, creating it; the lock
 * lives as long as *fd is open. WEIR_ECONFLICT if another process holds
 * it. Used so that two processes never act as the same node. */
int fsio_lock_file(const char *path, int *fd);

/* 1 if name is safe as one path component built into a path: 1..128 bytes
 * of [A-Za-z0-9._-], not starting with '.' or '-'. Anything from a config or
 * a peer must pass this before it becomes part of a path. */
int fsio_name_valid(const char *name);

/* 1 if name is a temporary file name of fsio: "<name>.tmp.<pid>.<n>". */
int fsio_is_tmp_name(const char *name);

/* ---- fault injection (for tests; compiled in every build) -------------- */

enum fsio_op {
    FSIO_OP_OPEN = 0,
    FSIO_OP_CLOSE,
    FSIO_OP_READ,      /* read and pread */
    FSIO_OP_WRITE,     /* write */
    FSIO_OP_PWRITE,    /* pwrite */
    FSIO_OP_FSYNC,     /* fsync, including directory fsyncs */
    FSIO_OP_FDATASYNC,
    FSIO_OP_FTRUNCATE,
    FSIO_OP_STAT,      /* stat and fstat */
    FSIO_OP_RENAME,    /* rename and renameat2 */
    FSIO_OP_LINK,
    FSIO_OP_UNLINK,
    FSIO_OP_MKDIR,
    FSIO_OP_RMDIR,
    FSIO_OP_OPENDIR,
    FSIO_OP__COUNT
};

/* "write", "fsync", ... for messages. */
const char *fsio_op_name(enum fsio_op op);

struct fsio_fault {
    unsigned long after;   /* calls of op that succeed first (from arming) */
    unsigned long times;   /* calls that then fail; 0: until cleared */
    int err;               /* errno of a failing call (EIO, ENOSPC, EINTR) */
    size_t short_bytes;    /* write/pwrite: see below */
};

/*
 * Arm a fault for op: after f->after more calls, the next f->times calls
 * (all, when 0) fail with errno f->err and do nothing. For write and pwrite
 * with short_bytes > 0: if err is 0 each failing call is instead a short
 * write of at most short_bytes bytes; if err is set, the first failing call
 * writes short_bytes bytes and returns that count (a disk filling up), and
 * the following ones fail with err.
 */
void fsio_fault_arm(enum fsio_op op, const struct fsio_fault *f);

/* Shorthand: fail every call of op after after_n_calls, until cleared. */
void fsio_fault_set(enum fsio_op op, unsigned long after_n_calls, int err,
                    size_t short_bytes);

/* Disarm op (its call count goes on). */
void fsio_fault_clear(enum fsio_op op);

/* Disarm everything, zero the counts, and start counting calls. */
void fsio_fault_reset(void);

/* Disarm everything and stop counting: back to the one-branch fast path. */
void fsio_fault_off(void);

/* Calls of op since fsio_fault_reset (counted only while the injector is
 * on: after fsio_fault_reset or with a fault armed), and faults fired. */
unsigned long fsio_fault_calls(enum fsio_op op);
unsigned long fsio_fault_hits(enum fsio_op op);

#endif
