/*
 * protobuf.h - Protobuf payloads: a message type read from a descriptor set,
 * binary messages of that type decoded into one line of JSON, and the JSON
 * Schema of what the decoder writes.
 *
 * The descriptor set is the file `protoc --descriptor_set_out=FILE
 * --include_imports x.proto` writes (a google.protobuf.FileDescriptorSet).
 * weir reads it with its own wire-format reader: no generated code, no
 * libprotobuf. docs/kafka.md ("Protobuf payloads") has the mapping table;
 * in short, a message becomes a JSON object whose members are named after
 * the proto fields (not lowerCamelCase json_name: the lake's columns keep
 * the names of the .proto):
 *
 *   proto                               JSON                     lake column
 *   ----------------------------------  -----------------------  ------------
 *   int32 sint32 sfixed32 uint32        number                   BIGINT
 *   fixed32 int64 sint64 sfixed64
 *   uint64 fixed64                      number (not a string)    BIGINT
 *   double float                        number; NaN/Inf: null    DOUBLE
 *   bool                                true / false             BOOLEAN
 *   string (must be valid UTF-8)        string                   VARCHAR
 *   bytes                               string, base64           VARCHAR
 *   enum                                the value's name (a      VARCHAR
 *                                       number not in the enum:
 *                                       the number, which the
 *                                       derived schema refuses)
 *   message                             object                   STRUCT
 *   repeated T                          array (packed or not)    T[]
 *   map<K, V>                           object, keys as strings  JSON
 *   google.protobuf.Timestamp           RFC 3339 string, UTC     VARCHAR
 *   google.protobuf.Duration            number of seconds        DOUBLE
 *   google.protobuf.*Value (wrappers)   the wrapped value        as the value
 *
 * Presence: a field with explicit presence (a message, a proto3
 * `optional`, a oneof member, any proto2 singular field) is in the JSON only
 * when it was on the wire; a proto3 singular scalar without presence is
 * always there, with its default (0, "", false, the enum's first name)
 * when absent, because proto3 cannot tell "absent" from "default" anyway.
 * Repeated fields and maps are always there ([] and {} when empty). The
 * derived schema lists exactly the always-there fields as `required`.
 *
 * On the wire: unknown fields are skipped; the last value of a singular
 * field wins and occurrences of a singular message are merged, as the
 * Protobuf specification says; the last member of a oneof wins; a map key
 * seen twice keeps its last value. Refused, with the byte offset: truncated
 * varints and lengths past the end, a wire type that does not fit the
 * field, groups (wire types 3 and 4), strings that are not UTF-8,
 * Timestamps out of 0001..9999, nesting deeper than max_depth, JSON longer
 * than the output buffer's maximum.
 *
 * Refused at load: groups in the message type (or any type it uses), a
 * type name the set does not hold (made without --include_imports?).
 * Extensions are ignored (skipped as unknown fields).
 *
 * Threading: a struct protobuf is immutable once loaded, shared by any
 * number of threads; each thread decodes with its own protobuf_decoder.
 */
#ifndef WEIR_SCHEMA_PROTOBUF_H
#define WEIR_SCHEMA_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

struct schema;
struct schema_opts;

/* Largest descriptor set file read, in bytes (real ones are KBs; the
 * whole of googleapis is a few MB). */
#define PROTOBUF_MAX_SET_BYTES (64u << 20)

struct protobuf;

/*
 * Read the descriptor set at path and pick message type `message` (its
 * full name, "plant.v1.Reading"; a leading dot is allowed). max_depth
 * bounds the nesting of decoded JSON (objects and arrays, the root object
 * counts 1); 0: WEIR_DEFAULT_MAX_DEPTH. On failure *out is NULL and e says
 * what: the file cannot be read, is not a descriptor set, the type is not
 * in it (the message lists those that are), or it uses what weir does not
 * support.
 */
int protobuf_load(const char *path, const char *message, uint32_t max_depth,
                  struct protobuf **out, struct weir_errmsg *e);

/* The same from the bytes of a descriptor set; `what` names them in
 * messages (a path). */
int protobuf_load_mem(const void *data, size_t len, const char *what,
                      const char *message, uint32_t max_depth,
                      struct protobuf **out, struct weir_errmsg *e);

/* NULL-safe. No decoder may use pb any more. */
void protobuf_free(struct protobuf *pb);

/* The full name of the chosen message type (no leading dot). */
const char *protobuf_message_name(const struct protobuf *pb);

/*
 * Append the JSON Schema (draft 2020-12) of what protobuf_decode writes for
 * pb's message type: one line, objects with additionalProperties false,
 * `required` as said above. A message type that contains itself (a tree)
 * is {"type": "object"} where it would repeat.
 */
int protobuf_json_schema(const struct protobuf *pb, struct buf *out);

/* protobuf_json_schema compiled with o: what a protobuf pipeline without
 * its own schema validates with. NULL on failure (e says why). */
struct schema *protobuf_schema(const struct protobuf *pb,
                               const struct schema_opts *o,
                               struct weir_errmsg *e);

/* Scratch memory for decoding, one per thread. */
struct protobuf_decoder;

/* A decoder of pb's messages (pb outlives it); NULL when out of memory. */
struct protobuf_decoder *protobuf_decoder_new(const struct protobuf *pb);

/* NULL-safe. */
void protobuf_decoder_free(struct protobuf_decoder *d);

/*
 * Decode the binary message data[0..len) into out (reset first): one line
 * of JSON, no newline. 0, or WEIR_EPARSE for a malformed message,
 * WEIR_ELIMIT when too deep or out->max is reached, WEIR_ENOMEM; then e
 * says what and at which byte offset of data ("at byte 17: field
 * reading.temp (3): truncated varint"), and out holds nothing useful.
 * Memory: out->max, plus scratch that grows with the number of fields
 * on the wire (48 bytes per field: at most 24 times len), kept for the
 * next call up to 3 MB.
 */
int protobuf_decode(struct protobuf_decoder *d, const void *data, size_t len,
                    struct buf *out, struct weir_errmsg *e);

#endif
