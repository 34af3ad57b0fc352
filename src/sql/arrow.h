/*
 * arrow.h - a micro-batch of validated records as columns in the Arrow C
 * Data Interface (https://arrow.apache.org/docs/format/CDataInterface.html),
 * the form DuckDB's C API reads a batch in (sql/xform.h runs a pipeline's
 * transform over it).
 *
 * The columns are exactly those of the pipeline's lake table (store/lake.h:
 * the one definition of a dataset's columns), with the values weir_read_ndjson
 * (sql/ndjson.c) gives the same records, so the relation a transform reads
 * as `batch` is the same whether it was built here from a stream or read
 * back from the dataset's Parquet by `weir replay`:
 *
 *   lake column   Arrow format             value
 *   ------------  -----------------------  ----------------------------------
 *   BIGINT        l   int64                the integer (1.0 and 1e2 count)
 *   DOUBLE        g   float64              the nearest double
 *   BOOLEAN       b   bit-packed           true / false
 *   VARCHAR       U   large utf8           the decoded string (another
 *                                          scalar: its JSON text)
 *   JSON, _extra  U   large utf8           the value's JSON text, whitespace
 *                                          removed (the runner casts it back
 *                                          to JSON)
 *   STRUCT(...)   +s  struct               declared fields; others ignored
 *   T[]           +L  large list           each item as T
 *   date          tdD date32               the record's partition
 *   hour          i   int32                (hourly pipelines)
 *   any           null or missing          a null (validity bit 0)
 *
 * A record whose value does not fit its column (a string for a BIGINT)
 * is refused with the field named, as weir_read_ndjson refuses it; a
 * validated record never is.
 *
 * Memory: each finished array owns its buffers (malloc'd; its release
 * callback frees them, whoever holds it), so DuckDB may keep one after the
 * builder is gone. The builder keeps its JSON tape and text scratch across
 * batches; a batch is cut into arrays of at most ARROW_CHUNK_ROWS rows
 * (DuckDB's vector size: one array becomes one DataChunk), and the rows a
 * builder holds are bounded by the caller (the Kafka batch bounds).
 *
 * Threading: a builder belongs to one thread.
 */
#ifndef WEIR_SQL_ARROW_H
#define WEIR_SQL_ARROW_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* ---- the Arrow C Data Interface (the spec's own definitions) ------------- */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

/* Rows per array: DuckDB's STANDARD_VECTOR_SIZE. */
#define ARROW_CHUNK_ROWS 2048

struct lake_table;

/*
 * A batch: arrays[0..narrays), each a struct array (one child per column)
 * of at most ARROW_CHUNK_ROWS rows, all with the layout of schema. There is
 * always at least one array (of length 0 for an empty batch), so a reader
 * learns the types even of an empty batch. Owns everything it points to.
 */
struct arrow_batch {
    struct ArrowSchema schema;
    struct ArrowArray *arrays;
    size_t narrays;
    uint64_t rows;
};

/* Release what is left of the batch: the schema and every array whose
 * release is not NULL (a consumer that took an array sets it to NULL, as
 * the spec says). Safe on a zeroed or released batch. */
void arrow_batch_release(struct arrow_batch *b);

/* Release the schema (and its children) or the array (and its children)
 * if it is not released yet: r->release(r) when set. */
void arrow_schema_release(struct ArrowSchema *s);
void arrow_array_release(struct ArrowArray *a);

struct arrow_builder;

/*
 * A builder for the columns of t (borrowed: it must outlive the builder):
 * t's typed columns in order, then _extra when t has it, then `date` and,
 * for an hourly table, `hour`. max_depth bounds the records' nesting as
 * the scanner's depth limit (0: the default).
 */
int arrow_builder_new(const struct lake_table *t, uint32_t max_depth,
                      struct arrow_builder **out, struct weir_errmsg *e);

/* Free the builder and the rows it holds (NULL-safe). */
void arrow_builder_free(struct arrow_builder *b);

/*
 * Add one record, a JSON object as landed (rec[0..len)), of the partition
 * starting at part_start_ns (its date and hour). WEIR_EINVAL with the
 * field named when it is not an object or a value does not fit its
 * column: nothing of it is added. WEIR_ENOMEM.
 */
int arrow_builder_add(struct arrow_builder *b, const char *rec, size_t len,
                      int64_t part_start_ns, struct weir_errmsg *e);

/* Rows added since the last finish. */
uint64_t arrow_builder_rows(const struct arrow_builder *b);

/* Move the rows added since the last finish into *out (which the caller
 * releases with arrow_batch_release); the builder is empty again. */
int arrow_builder_finish(struct arrow_builder *b, struct arrow_batch *out,
                         struct weir_errmsg *e);

/* Forget the rows added since the last finish. */
void arrow_builder_reset(struct arrow_builder *b);

#endif
