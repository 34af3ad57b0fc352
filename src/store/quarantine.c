/*
 * quarantine.c - rejected records as JSON lines in hour segments by arrival
 * time; see quarantine.h and docs/storage.md.
 */
#include "store/quarantine.h"
#include "core/wtime.h"
#include "schema/json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[QUAR__COUNT] = {
    "invalid", "too_large", "truncated", "time_missing", "time_unparsable",
    "time_out_of_range", "torn",
};

const char *quar_reason_name(enum quar_reason r)
{
    return (unsigned)r < QUAR__COUNT ? reason_names[r] : "invalid";
}

int quar_reason_parse(const char *s)
{
    for (int i = 0; i < QUAR__COUNT; i++)
        if (strcmp(s, reason_names[i]) == 0)
            return i;
    return -1;
}

/* Length of the valid UTF-8 sequence at p[0..n), 0 if there is none
 * (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). Only for
 * the short text fields, which are repaired sequence by sequence; whole
 * raw records are checked by the scanner's json_utf8_valid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* A string we did not check (a peer address, a message that may quote
 * input): as a JSON string, cut at QUAR_TEXT_MAX bytes, invalid UTF-8
 * replaced by U+FFFD, so the line is valid JSON whatever it holds. */
static int put_text(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        return buf_puts(b, "null");
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int cut = n > QUAR_TEXT_MAX;
    if (cut)
        n = QUAR_TEXT_MAX;
    int rc = buf_putc(b, '"');
    for (size_t i = 0; rc == 0 && i < n;) {
        unsigned char c = p[i];
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            rc = buf_puts(b, "\\ufffd");
            i++;
        } else if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = buf_append(b, esc, 6);
            i++;
        } else {
            rc = buf_append(b, p + i, k);
            i += k;
        }
    }
    if (rc == 0 && cut)
        rc = buf_puts(b, "...");
    if (rc == 0)
        rc = buf_putc(b, '"');
    return rc;
}

/* ,"kafka":{...} for k; WEIR_ELIMIT when out's bound is too small. */
static int put_kafka(struct buf *b, const struct quar_kafka *k)
{
    int rc = buf_puts(b, ",\"kafka\":{\"topic\":");
    if (!rc)
        rc = put_text(b, k->topic);
    if (!rc)
        rc = buf_appendf(b, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64,
                         k->partition, k->offset);
    if (!rc && k->key) {
        const char *key = k->key_len ? k->key : "";
        if (json_utf8_valid(key, k->key_len)) {
            rc = buf_puts(b, ",\"key\":");
            if (!rc)
                rc = buf_put_json_string(b, key, k->key_len);
        } else {
            rc = buf_puts(b, ",\"key_b64\":\"");
            if (!rc)
                rc = buf_put_base64(b, key, k->key_len);
            if (!rc)
                rc = buf_putc(b, '"');
        }
    }
    if (!rc && k->timestamp_ms >= 0)
        rc = buf_appendf(b, ",\"timestamp\":%" PRId64, k->timestamp_ms);
    if (!rc)
        rc = buf_putc(b, '}');
    return rc;
}

int quar_format(struct buf *out, const char *pipeline,
                const struct quar_record *r)
{
    size_t start = out->len;
    char when[40];
    wtime_format_rfc3339(r->received_at_ns, 3, when, sizeof(when));
    int rc = buf_appendf(out, "{\"received_at\":\"%s\",\"peer\":", when);
    if (!rc)
        rc = put_text(out, r->peer);
    if (!rc)
        rc = buf_puts(out, ",\"pipeline\":");
    if (!rc)
        rc = put_text(out, pipeline);
    if (!rc)
        rc = buf_appendf(out, ",\"reason\":\"%s\",\"path\":",
                         quar_reason_name(r->reason));
    if (!rc)
        rc = put_text(out, r->path);
    if (!rc)
        rc = buf_puts(out, ",\"error\":");
    if (!rc)
        rc = put_text(out, r->error);
    size_t before_raw = out->len;
    const char *raw = r->raw ? r->raw : "";
    if (!rc && !r->binary && json_utf8_valid(raw, r->raw_len)) {
        rc = buf_puts(out, ",\"raw\":");
        if (!rc)
            rc = buf_put_json_string(out, raw, r->raw_len);
        if (rc == WEIR_ELIMIT) {
            /* Escaping can grow control bytes 6x; base64 only 4/3. */
            buf_truncate(out, before_raw);
            rc = 1;
        }
    } else if (!rc) {
        rc = 1;
    }
    if (rc == 1) {
        rc = buf_puts(out, ",\"raw_b64\":\"");
        if (!rc)
            rc = buf_put_base64(out, raw, r->raw_len);
        if (!rc)
            rc = buf_putc(out, '"');
    }
    if (!rc && r->truncated)
        rc = buf_puts(out, ",\"truncated\":true");
    /* A source that cuts a record as soon as it passes max_record (TCP)
     * never learns its full size: no "size" then, rather than a wrong 0. */
    if (!rc && r->truncated && r->size)
        rc = buf_appendf(out, ",\"size\":%" PRIu64, r->size);
    if (!rc && r->kafka) {
        /* Only a key near max_record can make it too long: the peer still
         * says where the record came from (with the key cut), so the line
         * goes without "kafka" rather than not at all. */
        size_t before_kafka = out->len;
        if ((rc = put_kafka(out, r->kafka)) == WEIR_ELIMIT) {
            buf_truncate(out, before_kafka);
            rc = 0;
        }
    }
    if (!rc)
        rc = buf_putc(out, '}');
    if (rc)
        buf_truncate(out, start);
    return rc;
}

struct quar_writer {
    struct seg_writer *seg;
    char *pipeline;
    struct buf line;
};

int quar_writer_new(const struct seg_config *cfg, struct quar_writer **out,
                    struct weir_errmsg *e)
{
    *out = NULL;
    struct seg_config c = *cfg;
    c.kind = "quarantine";
    c.grain = PART_HOUR;
    struct quar_writer *q = calloc(1, sizeof(*q));
    if (!q || !(q->pipeline = strdup(cfg->pipeline ? cfg->pipeline : ""))) {
        free(q);
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    }
    int rc = seg_writer_new(&c, &q->seg, e);
    if (rc) {
        quar_writer_free(q);
        return rc;
    }
    buf_init(&q->line, 0);
    *out = q;
    return 0;
}

void quar_writer_free(struct quar_writer *q)
{
    if (!q)
        return;
    seg_writer_free(q->seg);
    buf_release(&q->line);
    free(q->pipeline);
    free(q);
}

struct seg_writer *quar_seg(struct quar_writer *q)
{
    return q->seg;
}

int quar_append(struct quar_writer *q, const struct quar_record *r)
{
    int64_t start;
    if (part_start(r->received_at_ns, PART_HOUR, &start) != 0)
        return WEIR_EINVAL;
    buf_reset(&q->line);
    /* The line must fit the writer's buffer with its newline; a record of
     * max_record bytes always does with the defaults (16 MiB). */
    q->line.max = seg_max_len(q->seg);
    int rc = quar_format(&q->line, q->pipeline, r);
    if (rc)
        return rc == WEIR_ELIMIT ? WEIR_EINVAL : rc;
    rc = seg_append(q->seg, start, q->line.data, q->line.len);
    /* Do not keep a huge line buffer for every later small record. */
    if (q->line.cap > (256u << 10))
        buf_release(&q->line);
    return rc;
}
