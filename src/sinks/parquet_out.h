/*
 * parquet_out.h - a model's `parquet: {path}` output: each partition run's
 * result as one Parquet file in a Hive-style folder outside the lake,
 * replaced atomically by a re-run.
 *
 * Layout (docs/models.md, "Outputs"):
 *
 *   <path>/date=YYYY-MM-DD/hour=HH/<model>.parquet   hourly models
 *   <path>/date=YYYY-MM-DD/<model>.parquet           daily models
 *
 * so DuckDB's read_parquet of the glob <path>/date=X/hour=X/<model>.parquet
 * (X a star; no hour level for a day model) with hive_partitioning reads
 * every partition with its date and hour columns. Several models may
 * share a path: the file name is the model's.
 *
 * A write: DuckDB COPY to a temporary name in the same folder
 * ("<model>.parquet.tmp.<pid>.<n>", not matched by *.parquet), fsync the
 * file, rename it over <model>.parquet, fsync the folder. A reader sees
 * the old file or the new one, never a part; a crash leaves at most a
 * temporary file, which the next write of that model in that folder
 * removes. An empty result still writes a file (its columns).
 */
#ifndef WEIR_SINKS_PARQUET_OUT_H
#define WEIR_SINKS_PARQUET_OUT_H

#include <stdint.h>

#include "core/error.h"

struct sql_db;

/*
 * Write table `table` of db (a name weir made: pasted as is) as
 * <dir>/<key>/<model>.parquet, where key is the partition key
 * (part_key_format: "date=2025-09-02/hour=10"). Creates the folders.
 * *bytes gets the file's size (may be NULL). 0, or an error naming the
 * file (DuckDB's, or the disk's); then the old file, if any, is intact.
 */
int parquet_out_write(struct sql_db *db, const char *table, const char *dir,
                      const char *key, const char *model, uint64_t *bytes,
                      struct weir_errmsg *e);

#endif
