/*
 * cursor.h - how far a pipeline's sink has delivered each raw segment,
 * kept beside the segments so that a restart resumes there and so that
 * compaction and retention never delete a segment the sink still needs.
 *
 * One file per node (a node's sink delivers the segments its own node
 * wrote), replaced atomically (core/fsio.h) each time it changes:
 *
 *   <data_dir>/<pipeline>/_sink/<node>.cursor
 *
 *   line            meaning
 *   --------------  ----------------------------------------------------
 *   weir-cursor 1   format and version
 *   STEM OFFSET     segment STEM (its file name without ".ndjson" or
 *                   ".ndjson.open": "<node>-<thread>-<seq>", unique for
 *                   ever) is delivered up to byte OFFSET: every record
 *                   that ends before it was confirmed by the broker
 *
 * A segment without a line is delivered up to byte 0. Lines are kept for
 * segments that still exist, fully delivered ones included (so that a
 * restart does not send them again), and dropped once the segment is gone.
 * The sink (sinks/kafka_out.h) is the only writer; readers (compaction,
 * retention, `weir status`) may read at any time and see the old or the
 * new file, never a mix. docs/kafka.md has the guarantee built on it.
 */
#ifndef WEIR_STORE_CURSOR_H
#define WEIR_STORE_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Longest segment stem: node (CONFIG_NODE_MAX) + thread + seq. */
#define CURSOR_STEM_MAX 128

struct cursor_entry {
    char stem[CURSOR_STEM_MAX];
    uint64_t off;
};

/* A set of entries, sorted by stem once cursor_sort was called. */
struct sink_cursor {
    struct cursor_entry *v;
    size_t n, cap;
};

/* Free the entries; the struct is empty and reusable after. */
void cursor_release(struct sink_cursor *c);

/* The stem of a segment file name (no directory): "<node>-<thread>-<seq>".
 * 0, or WEIR_EINVAL if name is not a segment name or too long. */
int cursor_stem(const char *name, char *stem, size_t cap);

/* Append an entry (call cursor_sort before cursor_get). */
int cursor_add(struct sink_cursor *c, const char *stem, uint64_t off);
void cursor_sort(struct sink_cursor *c);

/* The offset of stem (sorted c): 1 and *off, or 0 if it has no entry. */
int cursor_get(const struct sink_cursor *c, const char *stem, uint64_t *off);

/* Read node's file into c (which must be empty), sorted; a missing file
 * is an empty cursor. 0, or an error naming the file (a corrupt file is
 * WEIR_ECORRUPT: the sink refuses to guess, docs/kafka.md says how to
 * repair). */
int cursor_load(const char *data_dir, const char *pipeline, const char *node,
                struct sink_cursor *c, struct weir_errmsg *e);

/* Replace node's file with c, atomically (creates _sink/). */
int cursor_save(const char *data_dir, const char *pipeline, const char *node,
                const struct sink_cursor *c, struct weir_errmsg *e);

/* Every node's file of the pipeline into c (empty), sorted: for
 * compaction and retention, which see the segments of all nodes. */
int cursor_load_all(const char *data_dir, const char *pipeline,
                    struct sink_cursor *c, struct weir_errmsg *e);

/* 1 if the segment file name (sealed, of size bytes) is delivered whole
 * according to c (from cursor_load_all), else 0. */
int cursor_delivered(const struct sink_cursor *c, const char *name, uint64_t size);

#endif
