/*
 * offsets.h - which offsets of an upstream log (Kafka topic partitions) a
 * lander's segments hold, kept durably beside them, and the rollback that
 * makes the segments agree with it again after a crash.
 *
 * A source that acknowledges upstream only what is durable (the Kafka
 * source, sources/kafka.h) lands a micro-batch, makes it durable
 * (land_sync), then writes a checkpoint: for every topic partition it has
 * read, the next offset to land ("every offset below is in the lake"),
 * and for its lander's raw and quarantine writers, the length of every
 * segment file they have open (seg_marks) and the first seq a later file
 * will get. Only then does it commit the offsets to Kafka.
 *
 * After a crash the segments may hold records of a batch that never got
 * its checkpoint (a kill -9 leaves in the page cache whatever was written).
 * offsets_rollback(), at start-up and before segment recovery, cuts each
 * of this node's files back to the length its checkpoint gives, and
 * removes the files opened after it; the source then restarts each
 * partition at the checkpoint's offset (or the offset committed to Kafka,
 * if that is higher), so every record is in the lake exactly once.
 *
 * One checkpoint file per (node, worker thread) of a pipeline, replaced
 * atomically (fsio_write_file_atomic) after every batch:
 *
 *   <data_dir>/<pipeline>/_offsets/<node>-<thread>
 *
 *   line                          meaning
 *   ----------------------------  ------------------------------------------
 *   weir offsets 1                format and version
 *   node NODE                     the node that wrote it (= the file name's)
 *   thread N                      its worker thread (= the file name's)
 *   seq raw N                     raw/ segments of (node, thread) with a seq
 *   seq quarantine N              >= N were opened after the checkpoint
 *   mark raw SEQ LEN              segment SEQ of (node, thread) held LEN bytes
 *   mark quarantine SEQ LEN       (any partition directory; one line each)
 *   pos TOPIC PARTITION NEXT      offsets below NEXT are in the lake
 *   retired                       (instead of seq and mark lines) the
 *                                 positions stand, nothing is rolled back
 *   end                           the file is complete
 *
 * Positions are facts about the lake, so a checkpoint keeps the positions
 * of partitions its node no longer reads, and a node that takes over a
 * partition starts at the highest position any node's checkpoint gives
 * (offsets_load_max): on a shared data_dir, the lake stays exactly-once
 * when partitions move between weirs. docs/kafka.md states the guarantee.
 */
#ifndef WEIR_STORE_OFFSETS_H
#define WEIR_STORE_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "store/segment.h"

/* Longest topic name Kafka allows. */
#define OFFSETS_TOPIC_MAX 249

enum offsets_kind { OFFSETS_RAW = 0, OFFSETS_QUARANTINE = 1 };

struct offsets_pos {
    char *topic;          /* owned */
    int32_t partition;
    int64_t next;         /* >= 0 */
};

/* A checkpoint in memory. */
struct offsets {
    unsigned thread;
    int retired;                   /* positions only: rolls nothing back */
    uint64_t seq_next[2];          /* by enum offsets_kind */
    struct seg_mark *marks[2];
    size_t nmarks[2], capmarks[2];
    struct offsets_pos *pos;
    size_t npos, cappos;
};

void offsets_init(struct offsets *o, unsigned thread);
void offsets_release(struct offsets *o);

/* Set the position of (topic, partition) to next (>= 0). 0, WEIR_EINVAL
 * for a topic that is not a Kafka topic name, or WEIR_ENOMEM. */
int offsets_set(struct offsets *o, const char *topic, int32_t partition,
                int64_t next);

/* The position of (topic, partition), or -1 if o has none. */
int64_t offsets_get(const struct offsets *o, const char *topic,
                    int32_t partition);

/* Take the marks of raw and quar (seg_marks) into o, replacing those it
 * had. Call right after a successful land_sync. 0 or WEIR_ENOMEM. */
int offsets_capture(struct offsets *o, const struct seg_writer *raw,
                    const struct seg_writer *quar);

/* The text of the checkpoint (the table above), and back. offsets_parse
 * fills an initialised o (adding positions); WEIR_ECORRUPT with a reason
 * in why when text is not a complete checkpoint. */
int offsets_format(const struct offsets *o, const char *node, struct buf *out);
int offsets_parse(const char *text, size_t len, struct offsets *o, char *why,
                  size_t cap);

/* Replace this node's checkpoint for o->thread, atomically and durably. */
int offsets_write(const char *data_dir, const char *pipeline, const char *node,
                  const struct offsets *o, struct weir_errmsg *e);

/* Read the checkpoint of (node, thread) into an initialised o:
 * WEIR_ENOTFOUND if there is none. */
int offsets_load(const char *data_dir, const char *pipeline, const char *node,
                 unsigned thread, struct offsets *o, struct weir_errmsg *e);

/* Positions only: for every (topic, partition), the highest position in
 * any checkpoint of the pipeline, every node and thread, into o. A
 * missing _offsets/ is no checkpoint at all (0). A checkpoint that cannot
 * be read is an error: starting lower than it says would land records
 * twice. */
int offsets_load_max(const char *data_dir, const char *pipeline,
                     struct offsets *o, struct weir_errmsg *e);

struct offsets_rollback_stats {
    unsigned long checkpoints;     /* checkpoint files of this node applied */
    unsigned long files_cut;       /* segments cut back to their mark */
    unsigned long files_removed;   /* segments opened after the checkpoint */
    uint64_t bytes_dropped;        /* their bytes: records to be read again */
    unsigned long files_short;     /* segments shorter than their mark (fsync
                                      never and a power loss): logged */
};

/*
 * Make this node's segments of the pipeline agree with its checkpoints:
 * for each checkpoint file of node (any thread), cut every raw and
 * quarantine segment of (node, thread) that is longer than its mark back
 * to the mark (and fsync it), and remove those whose seq is >= the
 * checkpoint's seq_next. Other nodes' files are never touched. Run it at
 * start-up, holding the node lock, before recover_pipeline (the bytes it
 * cuts are whole records read again from Kafka, not torn ones for
 * quarantine). Adds to *st. 0, or the first error (e names the file).
 */
int offsets_rollback(const char *data_dir, const char *pipeline,
                     const char *node, struct offsets_rollback_stats *st,
                     struct weir_errmsg *e);

/*
 * Retire this node's checkpoints of the pipeline, except the one of thread
 * `keep` (-1: all of them): they keep their positions but roll nothing
 * back any more (offsets_rollback skips them). A checkpoint can only tell
 * which bytes of its (node, thread)'s segments were acknowledged while a
 * Kafka source was the one writing them; once another writer may add to
 * those segments (the pipeline's source became TCP, the consumer moved to
 * another worker), rolling them back would remove that writer's records.
 * Adds the number retired to *n.
 */
int offsets_retire(const char *data_dir, const char *pipeline, const char *node,
                   long keep, unsigned long *n, struct weir_errmsg *e);

/*
 * What compaction may absorb. A raw segment of (node, thread) is settled
 * when that pair's checkpoint acknowledges every byte of it: its seq is
 * below the checkpoint's seq_next and it is either not marked (it was
 * sealed before the checkpoint) or marked with at least its size. A
 * segment no live checkpoint covers (TCP pipelines, retired checkpoints)
 * is settled. An unsettled segment may still be cut by a rollback, so it
 * must not be absorbed yet: the next checkpoint (the next batch) settles
 * it. Checkpoints only move forward, so a settled segment stays settled,
 * and a checkpoint read a moment ago errs on the safe side.
 */
struct offsets_settle_ckpt {
    char *node;
    unsigned thread;
    uint64_t seq_next;
    struct seg_mark *marks;
    size_t nmarks;
};
struct offsets_settle {
    struct offsets_settle_ckpt *v;
    size_t n, cap;
};

/* Read the pipeline's live checkpoints (every node) into out. An
 * unreadable checkpoint is an error (absorb nothing rather than guess). */
int offsets_settle_load(const char *data_dir, const char *pipeline,
                        struct offsets_settle *out, struct weir_errmsg *e);

/* 1 if the raw segment named seg_name (a file name), size bytes long, is
 * settled; 0 if a rollback could still cut it. */
int offsets_settled(const struct offsets_settle *s, const char *seg_name, uint64_t size);

void offsets_settle_release(struct offsets_settle *s);

#endif
