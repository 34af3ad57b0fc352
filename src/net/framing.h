/*
 * framing.h - split a byte stream into NDJSON records, across reads.
 *
 * A connection's bytes arrive in arbitrary pieces; the framer turns them
 * into records, one per line, under these rules (docs/network.md has the
 * full statement, fuzz/fuzz_framing.c checks them against a reference):
 *
 *   - A line ends at '\n'. The record is the line without the '\n' and
 *     without one '\r' just before it ("\r\n" senders).
 *   - Empty lines (also "\r\n" alone) are skipped, but they are counted:
 *     record line numbers count every line from 1, as `weir validate` does.
 *   - A line longer than max_record bytes is yielded once, as its first
 *     max_record bytes with FRAME_TRUNCATED, as soon as the framer knows it
 *     is too long (it does not wait for the newline, which may never come);
 *     the rest of the line is skipped and framing resumes after the next
 *     '\n'. A truncated record never carries FRAME_AT_EOF.
 *   - At end of input, a last line without '\n' is yielded with
 *     FRAME_AT_EOF (it may be a record cut by a disconnect: the caller
 *     validates it and quarantines it as truncated if it is not valid).
 *   - Every other byte, NUL included, is passed through untouched.
 *
 * Zero copy: a record that lies wholly inside the bytes given to
 * framer_feed() is returned as a pointer into them. Only a record that
 * spans two feeds is copied, into the framer's own buffer, which never
 * holds more than max_record + 1 bytes. So memory per connection is bounded
 * by the limit, whatever the peer sends.
 *
 * Use:
 *
 *     framer_feed(&fr, chunk, n);
 *     while ((rc = framer_next(&fr, &rec)) > 0)
 *         handle(rec.data, rec.len, rec.flags, rec.line);
 *     if (rc < 0) ... out of memory ...
 *     ...
 *     at EOF: if (framer_finish(&fr, &rec) > 0) handle(...)
 *
 * The framer does no I/O and no locking; one framer belongs to one stream.
 */
#ifndef WEIR_NET_FRAMING_H
#define WEIR_NET_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Flags of a yielded record. */
#define FRAME_TRUNCATED 0x1u /* longer than max_record; data is its prefix */
#define FRAME_AT_EOF 0x2u    /* last line of the stream, no '\n' seen */

/* One record. data is valid until the next framer_feed / framer_next /
 * framer_finish / framer_release call on the same framer, and until the
 * caller reuses the memory it fed. data is not NUL-terminated. */
struct frame {
    const char *data;
    size_t len;
    unsigned flags;   /* FRAME_* */
    uint64_t line;    /* 1-based line number of the record in the stream */
};

struct framer {
    size_t max;          /* max_record */
    struct buf partial;  /* start of a line that spans feeds (<= max + 1) */
    const char *in;      /* unread part of the current feed */
    const char *in_end;
    uint64_t line;       /* number of the line being read (1-based) */
    uint64_t records;    /* records yielded */
    uint64_t truncated;  /* of which truncated */
    int skipping;        /* discarding the tail of an over-long line */
    int reset_partial;   /* partial was yielded: empty it on the next call */
    int finished;        /* framer_finish was called */
};

/* Start a framer for one stream. max_record must be >= 1. */
void framer_init(struct framer *f, size_t max_record);

/* Free the framer's memory. Safe on a zeroed or released framer. */
void framer_release(struct framer *f);

/* Give the framer the next bytes of the stream. Call only when the bytes
 * of the previous feed are all consumed (framer_next returned 0). The
 * memory must stay valid and unchanged until then. */
void framer_feed(struct framer *f, const void *data, size_t len);

/* The next complete record from what was fed: 1 and *out filled, 0 when
 * the fed bytes are used up (the start of an unfinished line is kept),
 * WEIR_ENOMEM if the spanning buffer could not grow (the stream cannot
 * continue). */
int framer_next(struct framer *f, struct frame *out);

/* End of stream: 1 and *out filled (FRAME_AT_EOF) if a last line without
 * newline remains, else 0. Call after framer_next returned 0; later calls
 * return 0. */
int framer_finish(struct framer *f, struct frame *out);

/* Bytes held for a line that spans feeds (0 at a line boundary). Also
 * tells whether the peer is in the middle of a record. */
static inline size_t framer_pending(const struct framer *f)
{
    return f->reset_partial ? 0 : f->partial.len;
}

#endif
