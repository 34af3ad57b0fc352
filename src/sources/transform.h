/*
 * transform.h - a pipeline's SQL transform (pipeline.transform) wired to
 * the data path: compiled at start (its derived dataset's schema written
 * where every command finds it), fed by the Kafka source's micro-batches,
 * and its output landed, exactly once, in the derived dataset D.
 * docs/kafka.md, "Transforms and replay", is the user's view; sql/xform.h
 * is the runner (the same one `weir replay` uses).
 *
 * The stream, per micro-batch of pipeline P, on P's worker:
 *
 *   every valid record landed in P   -> the tap adds it to an Arrow batch
 *   batch end, before land_sync      -> the transform runs over the batch;
 *                                       each output row is landed in D
 *                                       (validated by D's schema: a bad row
 *                                       goes to D's quarantine, never lost)
 *   land_sync(P), land_sync(D)       -> both durable
 *   checkpoint D, then checkpoint P  -> (store/offsets.h) D's checkpoint
 *                                       carries the batch's positions too
 *   commit offsets to Kafka
 *
 * Exactly once for D: after a crash, P and D are each cut back to their own
 * checkpoint (kafka_recover). D's is written first, so it is at most one
 * batch ahead of P's: the records of that batch are read again from Kafka
 * and landed in P again, but the tap skips every record below D's
 * position for its partition (transform_stream_tap), so D does not get
 * their rows twice. Records that were landed but never reached either
 * checkpoint are in neither, and are read again for both.
 *
 * A transform that fails on a batch at run time (DuckDB refuses a value:
 * a cast, a division by zero) loses nothing: the batch's records are in P
 * already. The failure is logged with the hours the batch touched,
 * counted (transform_errors), and D goes on with the next batch; `weir
 * replay P --from --to` rebuilds D for those hours once they are compacted.
 */
#ifndef WEIR_SOURCES_TRANSFORM_H
#define WEIR_SOURCES_TRANSFORM_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "store/land.h"
#include "store/offsets.h"

struct schema;
struct lake_table;
struct xform;

/* A compiled transform with the table it reads. */
struct transform_prep {
    const struct config_pipeline *p;   /* the pipeline with the transform */
    const struct config_pipeline *d;   /* its derived dataset */
    struct lake_table *in;             /* P's lake table */
    struct xform *x;
};

/*
 * Compile the transform of pipeline p (p->transform set): read its SQL,
 * build P's lake table from schema s (NULL: load P's schema), compile it
 * over that table, and write D's schema to d->schema (atomically, and only
 * when it changed). Errors name the pipeline and the SQL file.
 */
int transform_prepare(const struct weir_config *cfg, const struct config_pipeline *p,
                      const struct schema *s, struct transform_prep **out,
                      struct weir_errmsg *e);

void transform_prep_free(struct transform_prep *tp);

/* Counters of a transform (any thread). */
struct transform_stats {
    uint64_t batches;      /* batches run */
    uint64_t records;      /* records of P fed to it */
    uint64_t rows;         /* rows landed in D */
    uint64_t errors;       /* batches the SQL failed on (rows not in D) */
    uint64_t skipped;      /* records not fed again after a restart */
};

struct transform_stream;

/*
 * The stream side, on worker `thread`, taking prep (freed with the
 * stream, also on failure): taps p_lander, lands in d_lander (the lander
 * of D on the same worker). Writes D's first checkpoint of this run and
 * retires those of D's other workers (as kafka_source_new does for P).
 */
int transform_stream_new(const struct weir_config *cfg, struct transform_prep *prep,
                         struct lander *p_lander, struct lander *d_lander,
                         unsigned thread, struct transform_stream **out,
                         struct weir_errmsg *e);

void transform_stream_free(struct transform_stream *ts);

/* Whether the next record landed in P belongs to the batch (the source
 * calls it before each land_record with the record's position). */
void transform_stream_tap(struct transform_stream *ts, int on);

/* D's position for (topic, partition): offsets below it have their rows in
 * D already (the highest of D's checkpoints), or -1. Reloaded by
 * transform_stream_reload at each assignment. */
int64_t transform_stream_position(const struct transform_stream *ts, const char *topic,
                                  int32_t partition);
int transform_stream_reload(struct transform_stream *ts, struct weir_errmsg *e);

/* Run the transform over the batch collected since the last call and land
 * its rows in D; the batch is empty again. Once per batch: a retried
 * finish_batch does not run it twice. Never fails (see above). */
void transform_stream_run(struct transform_stream *ts, int64_t now_ns);

/* land_sync of D's lander. */
int transform_stream_sync(struct transform_stream *ts);

/* Write D's checkpoint: D's writers' marks and the positions of pos (P's
 * checkpoint being written). */
int transform_stream_checkpoint(struct transform_stream *ts, const struct offsets *pos,
                                struct weir_errmsg *e);

void transform_stream_counts(const struct transform_stream *ts, struct transform_stats *out);

/*
 * Start-up, holding the node lock, right after P's own rollback: cut D's
 * segments of this node back to D's checkpoints (the second half of
 * kafka_recover for a pipeline with a transform).
 */
int transform_recover(const struct weir_config *cfg, const struct config_pipeline *p,
                      struct weir_errmsg *e);

#endif
