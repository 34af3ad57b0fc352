/*
 * kmeta.h - the Kafka metadata members: what weir adds to every valid
 * record of a Kafka pipeline, and the lake columns they become.
 *
 * After validation (so that additionalProperties: false schemas still
 * accept the records) the lander splices these top-level members before
 * the record object's closing brace (land_record_meta, land.h):
 *
 *   member              JSON     lake column  when
 *   ------------------  -------  -----------  ------------------------------
 *   _kafka_topic        string   VARCHAR      always
 *   _kafka_partition    integer  BIGINT       always
 *   _kafka_offset       integer  BIGINT       always
 *   _kafka_key          string   VARCHAR      the key is valid UTF-8
 *   _kafka_key_b64      string   VARCHAR      the key is not valid UTF-8
 *                                             (standard base64)
 *   _kafka_timestamp    integer  BIGINT       the message has a timestamp
 *                                             (ms since the epoch)
 *
 * An absent member is NULL in its column, never in `_extra`. A record
 * whose root is not an object (a schema that allows that) gets no
 * members. A record that carries one of these names itself is
 * quarantined (duplicate keys would make the stored line ambiguous), and
 * a schema that declares one is refused at start (kmeta_declared).
 * docs/kafka.md, "Metadata columns".
 */
#ifndef WEIR_STORE_KMETA_H
#define WEIR_STORE_KMETA_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct shape;

/*
 * A quarantined Kafka record's peer (sources/kafka.c writes it, requeue
 * reads it back from lines that have no "kafka" field, store/requeue.h):
 *
 *   TOPIC/PARTITION@OFFSET[ ts=MS][ key=KEY | key_b64=BASE64][...]
 *
 * key= when the key is printable ASCII (0x21-0x7e), key_b64= otherwise,
 * neither without a key or with an empty one; only the first
 * KMETA_PEER_KEY_MAX bytes of the key, then "..." when it was longer.
 */
#define KMETA_PEER_KEY_MAX 256

/* The member names, in the order they are written; NULL-terminated. */
extern const char *const kmeta_names[];

/* The longest topic name Kafka allows. */
#define KMETA_TOPIC_MAX 249

/* Room for kmeta_prefix's output (a topic of at most KMETA_TOPIC_MAX
 * characters, each escaped at worst as \u00XX). */
#define KMETA_PREFIX_MAX (KMETA_TOPIC_MAX * 6 + 96)

/*
 * Write `"_kafka_topic":"T","_kafka_partition":P,"_kafka_offset":` to
 * out (cap bytes, not NUL-terminated): the part that is the same for
 * every message of a partition, made once per partition. Returns its
 * length, or 0 when it does not fit.
 */
size_t kmeta_prefix(char *out, size_t cap, const char *topic, int32_t partition);

/*
 * Append a message's members to b: prefix (kmeta_prefix), the offset, and
 * the key and timestamp members when there are (key NULL: no key member,
 * an empty key is ""; ts_ms < 0: no timestamp). WEIR_ELIMIT when b's bound is too
 * small (b is then as before).
 */
int kmeta_format(struct buf *b, const char *prefix, size_t prefix_len, int64_t offset,
                 const void *key, size_t key_len, int64_t ts_ms);

/* The bytes kmeta_format can append for a key of key_len bytes at most. */
size_t kmeta_max_len(size_t key_len);

/*
 * Add the metadata columns to the root shape of a Kafka pipeline's table
 * (every one nullable), after the schema's own properties.
 */
int kmeta_add_columns(struct shape *root);

/* The first metadata name that root declares as a property (compared
 * ignoring ASCII case, as DuckDB names are), or NULL. */
const char *kmeta_declared(const struct shape *root);

#endif
