/*
 * partition.h - event time to partition (hour or day) and back.
 *
 * A partition is a half-open interval of event time [start, end), UTC, one
 * hour or one day long. Its key is the Hive-style relative path that DuckDB,
 * Spark and Polars read back as columns:
 *
 *   grain  key                          interval
 *   -----  ---------------------------  -----------------------------------
 *   hour   date=2025-09-02/hour=10      [2025-09-02T10:00Z, 2025-09-02T11:00Z)
 *   day    date=2025-09-02              [2025-09-02T00:00Z, 2025-09-03T00:00Z)
 *
 * Keys are built from integers only, so a key can never contain "..", a
 * '/' beyond the one shown, or anything a sender chose: it is safe to paste
 * into a path. Parsing is strict (exact digits, a real calendar date, hour
 * 00..23) so a stray directory is never taken for a partition.
 */
#ifndef WEIR_STORE_PARTITION_H
#define WEIR_STORE_PARTITION_H

#include <stddef.h>
#include <stdint.h>

enum part_grain { PART_HOUR = 0, PART_DAY = 1 };

/* Longest key plus NUL ("date=YYYY-MM-DD/hour=HH"). */
#define PART_KEY_MAX 32

/* Length of one partition in ns. */
int64_t part_len_ns(enum part_grain g);

/* "hour" / "day", and back (-1 if neither). */
const char *part_grain_name(enum part_grain g);
int part_grain_parse(const char *s);

/*
 * The start of the partition holding event time ns (floor, also for times
 * before 1970). WEIR_EINVAL for times so close to the ends of int64 that the
 * partition's end would not be representable; 0 otherwise.
 */
int part_start(int64_t ns, enum part_grain g, int64_t *start);

/* The exclusive end of the partition that starts at start. */
static inline int64_t part_end(int64_t start, enum part_grain g)
{
    return start + part_len_ns(g);
}

/* 1 if start is the start of a partition of grain g. */
int part_is_start(int64_t start, enum part_grain g);

/* Write the key of the partition starting at start into out (cap >=
 * PART_KEY_MAX). Returns the key's length, or 0 if start is not a partition
 * start of grain g. */
size_t part_key_format(int64_t start, enum part_grain g, char *out,
                       size_t cap);

/*
 * Parse a key at the start of s[0..n): "date=YYYY-MM-DD" optionally followed
 * by "/hour=HH". On success sets *g, *start and returns the number of bytes
 * consumed; 0 if s does not start with a valid key. What follows the key
 * (if anything) must be '/' or the end, else 0.
 */
size_t part_key_parse(const char *s, size_t n, enum part_grain *g,
                      int64_t *start);

/* Find the partition key in a path ("/data/p/raw/date=.../hour=10/x.ndjson"):
 * the last path component sequence that parses as a key. 0 on success,
 * WEIR_ENOTFOUND when there is none. */
int part_key_from_path(const char *path, enum part_grain *g, int64_t *start);

#endif
