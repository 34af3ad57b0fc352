/*
 * kmeta.c - the Kafka metadata members and columns; see kmeta.h and
 * docs/kafka.md.
 *
 * kmeta_format runs for every message, so it writes with plain copies into
 * a buffer that has grown once (no allocation per record): the part that
 * depends only on the partition is made once (kmeta_prefix).
 */
#include "store/kmeta.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "schema/json.h"
#include "schema/shape.h"

const char *const kmeta_names[] = {
    "_kafka_topic", "_kafka_partition", "_kafka_offset",
    "_kafka_key", "_kafka_key_b64", "_kafka_timestamp", NULL,
};

static const enum shape_kind kinds[] = {
    SHAPE_STRING, SHAPE_INTEGER, SHAPE_INTEGER, SHAPE_STRING, SHAPE_STRING,
    SHAPE_INTEGER,
};

size_t kmeta_prefix(char *out, size_t cap, const char *topic, int32_t partition)
{
    struct buf b = BUF_INIT(cap);
    int rc = buf_puts(&b, "\"_kafka_topic\":");
    rc = rc ? rc : buf_put_json_string(&b, topic, strlen(topic));
    rc = rc ? rc : buf_appendf(&b, ",\"_kafka_partition\":%ld,\"_kafka_offset\":",
                               (long)partition);
    size_t n = rc ? 0 : b.len;
    if (n)
        memcpy(out, b.data, n);
    buf_release(&b);
    return n;
}

/* Decimal digits two at a time: an offset and a millisecond timestamp
 * per record, where a digit-by-digit loop showed in profiles. */
static size_t put_i64(char *out, int64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536"
        "37383940414243444546474849505152535455565758596061626364656667686970717273"
        "7475767778798081828384858687888990919293949596979899";
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = pairs[d + 1];
        *--p = pairs[d];
    }
    if (u >= 10) {
        *--p = pairs[u * 2 + 1];
        *--p = pairs[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(out, p, n);
    return n;
}

size_t kmeta_max_len(size_t key_len)
{
    /* Escaped UTF-8 is at most 6 bytes a byte (\u00XX), base64 4 per 3. */
    return KMETA_PREFIX_MAX + 24 + 20 + key_len * 6 + 2 + 24 + 20;
}

int kmeta_format(struct buf *b, const char *prefix, size_t prefix_len, int64_t offset,
                 const void *key, size_t key_len, int64_t ts_ms)
{
    size_t start = b->len;
    int rc = buf_reserve(b, prefix_len + 24);
    if (rc)
        return rc;
    memcpy(b->data + b->len, prefix, prefix_len);
    b->len += prefix_len;
    b->len += put_i64(b->data + b->len, offset);
    if (key) {
        if (json_utf8_valid(key, key_len)) {
            rc = buf_puts(b, ",\"_kafka_key\":");
            rc = rc ? rc : buf_put_json_string(b, key, key_len);
        } else {
            rc = buf_puts(b, ",\"_kafka_key_b64\":\"");
            rc = rc ? rc : buf_put_base64(b, key, key_len);
            rc = rc ? rc : buf_putc(b, '"');
        }
    }
    if (!rc && ts_ms >= 0) {
        static const char m[] = ",\"_kafka_timestamp\":";
        rc = buf_reserve(b, sizeof m + 24);
        if (!rc) {
            memcpy(b->data + b->len, m, sizeof m - 1);
            b->len += sizeof m - 1;
            b->len += put_i64(b->data + b->len, ts_ms);
        }
    }
    if (rc)
        buf_truncate(b, start);
    else
        b->data[b->len] = '\0'; /* as buf's own appenders keep it */
    return rc;
}

int kmeta_add_columns(struct shape *root)
{
    for (size_t i = 0; kmeta_names[i]; i++) {
        int rc = shape_add_field(root, kmeta_names[i], kinds[i]);
        if (rc)
            return rc;
    }
    return 0;
}

const char *kmeta_declared(const struct shape *root)
{
    for (size_t i = 0; i < root->nfields; i++) {
        const struct shape *f = &root->fields[i];
        for (size_t k = 0; kmeta_names[k]; k++) {
            size_t n = strlen(kmeta_names[k]);
            if (f->name_len != n)
                continue;
            size_t j = 0;
            for (; j < n; j++) {
                unsigned char c = (unsigned char)f->name[j];
                if (c >= 'A' && c <= 'Z')
                    c = (unsigned char)(c - 'A' + 'a');
                if (c != (unsigned char)kmeta_names[k][j])
                    break;
            }
            if (j == n)
                return kmeta_names[k];
        }
    }
    return NULL;
}
