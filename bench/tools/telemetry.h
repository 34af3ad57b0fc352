/*
 * telemetry.h - deterministic telemetry records for weir's benchmarks.
 *
 * Every benchmark in bench/ feeds the same workload to weir and to its peers:
 * NDJSON telemetry in the shape of the seed model (shared/seeds/001_*.txt),
 *
 *   {"timestamp": 1756803600, "sensor_id": 10001, "measurement":
 *    {"kind": "Temperature", "value": 5.3, "unit": "Celcius"}}
 *
 * (one line, json.dumps spacing, about 121 bytes with the newline), with a
 * fraction of invalid records in 15 kinds (enum tel_kind). The research runs
 * the peers were measured with (shared/research/peers-measured-here.md) used
 * the same shape: 5 % invalid, 15 kinds in equal shares, timestamps over 3
 * hours from 1756803600, seed 1.
 *
 * Record i depends only on (config, i): a splitmix64 stream is seeded from
 * the seed and the index, so a load generator can hand records to many
 * connections in any order and still send exactly what `gen` writes, and the
 * generator needs no libc rand(). Timestamps rise with i, spread evenly over
 * the hours, so the hour of record i is known without parsing it.
 *
 * The generator also knows each record's verdict under the seed model in
 * strict mode (the pydantic 2 JSON Schema export, see
 * bench/validate/telemetry.schema.json): every invalid kind is invalid for a
 * correct validator, and every valid record is valid. A manifest
 * (struct tel_manifest) sums what was generated: counts, invalid records per
 * kind, and per hour the valid records, their bytes and an order-independent
 * checksum (the sum mod 2^64 of tel_hash64 over each valid line without its
 * newline), so a consumer that writes the valid records to hourly files can
 * be checked without keeping the stream.
 */
#ifndef WEIR_BENCH_TELEMETRY_H
#define WEIR_BENCH_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A record's line is shorter than this, so line[len] is free for a newline;
 * the longest kind is about 160 bytes. */
#define TEL_LINE_MAX 256

/* 2025-09-02 09:00:00 UTC, the start hour of the research runs. */
#define TEL_T0_DEFAULT 1756803600

/* Sensor ids are 10001 .. 10000 + TEL_SENSORS. */
#define TEL_SENSORS 1000

enum tel_kind {
    TEL_VALID = 0,
    TEL_UNIT_KELVIN,       /* "unit": "Kelvin" (not in the enum) */
    TEL_KIND_WRONG,        /* "kind": "Humidity" */
    TEL_NO_SENSOR_ID,      /* required field missing */
    TEL_NO_MEASUREMENT,    /* required object missing */
    TEL_TIMESTAMP_STRING,  /* "timestamp": "1756803600" (strict: no coercion) */
    TEL_SENSOR_ID_FLOAT,   /* "sensor_id": 10001.5 */
    TEL_VALUE_NULL,        /* "value": null */
    TEL_VALUE_OBJECT,      /* "value": {} */
    TEL_VALUE_ARRAY,       /* "value": [47.71] */
    TEL_TRUNCATED,         /* a valid line cut short */
    TEL_GARBAGE,           /* printable ASCII that is not JSON */
    TEL_TRAILING_COMMA,    /* "unit": "Celcius",}} */
    TEL_BAD_UTF8,          /* "value": "21.5<invalid UTF-8>" (valid bar the bytes) */
    TEL_EXTRA_BRACE,       /* a valid line with one more "}" */
    TEL_EMPTY_OBJECT,      /* {} */
    TEL_KIND_COUNT
};

#define TEL_INVALID_KINDS (TEL_KIND_COUNT - 1)

/* What to generate. Zero is not a usable config: start from
 * tel_config_default(). */
struct tel_config {
    uint64_t records;    /* how many */
    double invalid_frac; /* 0..1: chance that a record is invalid */
    double str_values;   /* 0..1: chance that a valid record's value is a
                          * JSON string (valid under value: float | str) */
    unsigned hours;      /* timestamps spread over this many hours (>= 1) */
    uint64_t seed;
    int64_t t0;          /* first timestamp (s since 1970); a whole hour */
};

/* The research workload: 2,000,000 records, 5 % invalid, no string values,
 * 3 hours from TEL_T0_DEFAULT, seed 1. */
void tel_config_default(struct tel_config *cfg);

/* A generator: the config plus thresholds computed once. Read-only after
 * tel_gen_init, so threads may share one. */
struct tel_gen {
    struct tel_config cfg;
    uint64_t invalid_below; /* a 53-bit draw below this: invalid */
    uint64_t str_below;     /* a 53-bit draw below this: string value */
};

/* One generated record. line is not NUL-terminated: use len. */
struct tel_record {
    uint64_t index;
    int64_t timestamp; /* the event time the record carries (or would) */
    unsigned hour;     /* (timestamp - t0) / 3600, < cfg.hours */
    enum tel_kind kind;
    size_t len;
    char line[TEL_LINE_MAX];
};

/* Check cfg and set up g. Returns 0, or -1 with a message in err (which may
 * be NULL) when a field is out of range. */
int tel_gen_init(struct tel_gen *g, const struct tel_config *cfg, char *err,
                 size_t errlen);

/* Write record i (0 <= i < cfg.records; larger i work too and continue the
 * time line) into r. */
void tel_gen_record(const struct tel_gen *g, uint64_t i, struct tel_record *r);

/* A short name for kind ("valid", "unit_kelvin", ...), for manifests. */
const char *tel_kind_name(enum tel_kind kind);

/* 64-bit FNV-1a of n bytes. tel_hash64_update continues a hash over more
 * bytes (start from TEL_HASH64_INIT), for data that arrives in pieces. */
#define TEL_HASH64_INIT UINT64_C(0xcbf29ce484222325)
uint64_t tel_hash64_update(uint64_t h, const void *p, size_t n);
uint64_t tel_hash64(const void *p, size_t n);

/* What one hour holds of the valid records. */
struct tel_hour {
    uint64_t valid;
    uint64_t bytes;    /* the lines plus their newlines */
    uint64_t checksum; /* sum of tel_hash64(line) mod 2^64 */
};

/* Totals over generated records, filled by tel_manifest_add. */
struct tel_manifest {
    struct tel_config cfg;
    uint64_t records, valid, invalid;
    uint64_t bytes;        /* every line plus its newline */
    uint64_t checksum_all; /* sum of tel_hash64 over every line */
    uint64_t by_kind[TEL_KIND_COUNT];
    struct tel_hour *hours; /* cfg.hours entries, owned */
};

/* Returns 0, or -1 when out of memory. */
int tel_manifest_init(struct tel_manifest *m, const struct tel_config *cfg);
void tel_manifest_add(struct tel_manifest *m, const struct tel_record *r);
/* Write m as one JSON document (checksums as 16 hex digits in strings,
 * because JSON readers lose 64-bit integers). Returns 0, or -1 on a write
 * error. */
int tel_manifest_write(const struct tel_manifest *m, FILE *f);
/* Write it to path (written to path.tmp, then renamed). Returns 0 or -1. */
int tel_manifest_save(const struct tel_manifest *m, const char *path);
void tel_manifest_release(struct tel_manifest *m);

/* Option parsing shared by the tools: strict, whole-string conversions.
 * Each returns 0, or -1 when s is not a number in [min, max]. */
int tel_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int tel_parse_double(const char *s, double min, double max, double *out);

/* Seconds on CLOCK_MONOTONIC. */
double tel_now(void);

#endif
