/*
 * tmpdir.h - scratch folders for the unit tests: one made in a test's
 * setup, removed with everything under it in its teardown, and the small
 * file helpers the store tests all need (a path under it, put a file,
 * read a file back).
 *
 * Linked into every test binary (every tests/unit file not named test_).
 */
#ifndef WEIR_TESTS_TMPDIR_H
#define WEIR_TESTS_TMPDIR_H

#include <stddef.h>

/*
 * Make BASE/weir-test-TAG-XXXXXX (base NULL: /tmp) and return its path, or
 * NULL. The path is static storage, valid until the next tmpdir_make.
 */
char *tmpdir_make(const char *base, const char *tag);

/* Remove path and everything under it (no symlink is followed); a path
 * that does not exist is already removed. 0 or -1. */
int tmpdir_remove(const char *path);

/* The path of the last tmpdir_make followed by "/" and the formatted
 * rest; 8 rotating static buffers, so a few may be live at once. */
__attribute__((format(printf, 1, 2)))
char *tmpdir_at(const char *fmt, ...);

/* Write n bytes to path, making its parent folders. 0 or -1. */
int tmpdir_put(const char *path, const void *data, size_t n);

/* The whole file, NUL-terminated, malloc'd (free it); its length in *n
 * when n is not NULL. NULL when it cannot be read. */
char *tmpdir_get(const char *path, size_t *n);

#endif
