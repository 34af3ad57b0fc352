/*
 * tmpdir.c - scratch folders and file helpers for the unit tests
 * (tmpdir.h).
 */
#define _XOPEN_SOURCE 700
#include "tmpdir.h"

#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/fsio.h"

static char root[PATH_MAX];

char *tmpdir_make(const char *base, const char *tag)
{
    snprintf(root, sizeof root, "%s/weir-test-%s-XXXXXX", base ? base : "/tmp", tag);
    return mkdtemp(root);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

int tmpdir_remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0; /* nothing to remove */
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

char *tmpdir_at(const char *fmt, ...)
{
    static char p[8][PATH_MAX];
    static int k;
    k = (k + 1) % 8;
    int n = snprintf(p[k], sizeof p[k], "%s/", root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p[k] + n, sizeof p[k] - (size_t)n, fmt, ap);
    va_end(ap);
    return p[k];
}

int tmpdir_put(const char *path, const void *data, size_t n)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (fsio_mkdir_p(dir, 0755) != 0)
            return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

char *tmpdir_get(const char *path, size_t *n)
{
    struct buf b = BUF_INIT(256u << 20);
    if (fsio_read_file(path, &b) != 0 || buf_puts(&b, "") != 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, n);
}
