/*
 * framing.c - NDJSON framer; see framing.h for the rules and
 * docs/network.md for why they are what they are.
 *
 * The state between feeds is small: the start of an unfinished line
 * (partial, at most max + 1 bytes: the extra byte is a '\r' whose fate
 * depends on the next byte), whether the rest of an over-long line is being
 * skipped, and the line number. Everything else is a pointer into the
 * caller's bytes.
 */
#include "net/framing.h"
#include "core/error.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

void framer_init(struct framer *f, size_t max_record)
{
    assert(max_record >= 1 && max_record < SIZE_MAX - 1);
    memset(f, 0, sizeof *f);
    f->max = max_record;
    buf_init(&f->partial, max_record + 1);
    f->line = 1;
}

void framer_release(struct framer *f)
{
    buf_release(&f->partial);
    f->in = f->in_end = NULL;
    f->reset_partial = 0;
}

void framer_feed(struct framer *f, const void *data, size_t len)
{
    assert(f->in == f->in_end);
    f->in = data;
    f->in_end = f->in + len;
}

static int emit(struct framer *f, struct frame *out, const char *p, size_t n,
                unsigned flags, uint64_t line)
{
    out->data = p;
    out->len = n;
    out->flags = flags;
    out->line = line;
    f->records++;
    if (flags & FRAME_TRUNCATED)
        f->truncated++;
    return 1;
}

/*
 * The line that starts with partial and continues with seg[0..n) is known
 * to be longer than max: yield its first max bytes. Only the bytes up to
 * max are copied, and none when the line starts inside this feed.
 */
static int emit_truncated(struct framer *f, struct frame *out,
                          const char *seg, size_t n, uint64_t line)
{
    size_t have = f->partial.len;
    if (have == 0) {
        assert(n >= f->max);
        return emit(f, out, seg, f->max, FRAME_TRUNCATED, line);
    }
    if (have < f->max) {
        assert(n >= f->max - have);
        int rc = buf_append(&f->partial, seg, f->max - have);
        if (rc)
            return rc;
    }
    f->reset_partial = 1;
    return emit(f, out, f->partial.data, f->max, FRAME_TRUNCATED, line);
}

/* A whole line: partial + seg[0..n), the '\n' excluded. */
static int end_line(struct framer *f, struct frame *out, const char *seg,
                    size_t n, uint64_t line)
{
    size_t have = f->partial.len, total = have + n;
    char last = n ? seg[n - 1] : have ? f->partial.data[have - 1] : '\0';
    size_t len = total - (last == '\r');

    if (len == 0) {
        buf_reset(&f->partial);
        return 0;
    }
    if (len > f->max)
        return emit_truncated(f, out, seg, n, line);
    if (have == 0)
        return emit(f, out, seg, len, 0, line);
    /* total <= max + 1 = partial's limit, so this cannot hit WEIR_ELIMIT. */
    int rc = buf_append(&f->partial, seg, n);
    if (rc)
        return rc;
    f->reset_partial = 1;
    return emit(f, out, f->partial.data, len, 0, line);
}

int framer_next(struct framer *f, struct frame *out)
{
    if (f->reset_partial) {
        buf_reset(&f->partial);
        f->reset_partial = 0;
    }
    while (f->in != f->in_end) {
        size_t avail = (size_t)(f->in_end - f->in);
        const char *seg = f->in;
        const char *nl = memchr(seg, '\n', avail);

        if (f->skipping) {
            if (!nl) {
                f->in = f->in_end;
                return 0;
            }
            f->in = nl + 1;
            f->skipping = 0;
            f->line++;
            continue;
        }
        if (nl) {
            f->in = nl + 1;
            int rc = end_line(f, out, seg, (size_t)(nl - seg), f->line++);
            if (rc)
                return rc;
            continue;
        }

        /* No newline in the rest of this feed: the line goes on. */
        size_t total = f->partial.len + avail;
        f->in = f->in_end;
        if (total > f->max + 1 || (total == f->max + 1 && seg[avail - 1] != '\r')) {
            f->skipping = 1;
            return emit_truncated(f, out, seg, avail, f->line);
        }
        int rc = buf_append(&f->partial, seg, avail);
        return rc ? rc : 0;
    }
    return 0;
}

int framer_finish(struct framer *f, struct frame *out)
{
    assert(f->in == f->in_end);
    if (f->reset_partial) {
        buf_reset(&f->partial);
        f->reset_partial = 0;
    }
    if (f->finished)
        return 0;
    f->finished = 1;
    size_t have = f->partial.len;
    if (f->skipping || have == 0)
        return 0;
    size_t len = have - (f->partial.data[have - 1] == '\r');
    if (len == 0)
        return 0;
    assert(len <= f->max);
    f->reset_partial = 1;
    return emit(f, out, f->partial.data, len, FRAME_AT_EOF, f->line);
}
