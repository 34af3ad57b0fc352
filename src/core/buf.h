/*
 * buf.h - a growable byte buffer with a hard maximum.
 *
 * The one buffer type for I/O and for building strings (git's strbuf, curl's
 * dynbuf). It grows on demand but never past the maximum given at init: an
 * append that would exceed it fails with WEIR_ELIMIT and leaves the buffer as
 * it was, so peer input can never make memory grow without bound.
 *
 * data is always NUL-terminated after a successful append (the NUL is not
 * counted in len), so buf->data can be passed where a C string is wanted.
 * A buf set up by buf_init owns its memory; buf_release frees it and leaves
 * an empty buf that may be reused.
 */
#ifndef WEIR_CORE_BUF_H
#define WEIR_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes in use */
    size_t cap;   /* bytes allocated (data[len] is always in bounds) */
    size_t max;   /* hard limit on len */
};

#define BUF_INIT(max_) { NULL, 0, 0, (max_) }

/* Start an empty buffer that will never hold more than max bytes. */
void buf_init(struct buf *b, size_t max);

/* Free the memory; b is empty afterwards. Safe on a zeroed or released buf. */
void buf_release(struct buf *b);

/* Make room for extra more bytes. WEIR_ELIMIT past max, WEIR_ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);

int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, int c);
int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vappendf(struct buf *b, const char *fmt, va_list ap);

/* Append s as a JSON string literal (quotes and escapes included). s must
 * be valid UTF-8; control characters are escaped as \u00XX. */
int buf_put_json_string(struct buf *b, const char *s, size_t n);

/* Append the standard base64 encoding of p. */
int buf_put_base64(struct buf *b, const void *p, size_t n);

/* Forget the contents, keep the memory. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Drop the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Set len to n (n <= len). */
void buf_truncate(struct buf *b, size_t n);

/* Give the memory to the caller (to free()) and leave b empty; returns an
 * empty allocated string when b was never used, NULL when out of memory. */
char *buf_detach(struct buf *b, size_t *len);

#endif
