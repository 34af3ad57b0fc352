/*
 * config.h - weir's one YAML config file, as typed C structs.
 *
 * config_load() reads a YAML file (libyaml) into a struct weir_config in
 * which every key has a value: what the file says, or the default. Nothing
 * else in weir reads YAML or applies defaults. The reference for users,
 * every key with its type, default and meaning, is docs/config.md; keep the
 * two in step.
 *
 * What loading guarantees, so later code need not check again:
 *   - every enum is one of its values, every size and duration is in range,
 *     every address parsed, every name matches [a-z_][a-z0-9_]* (a safe
 *     folder name and SQL identifier) and is at most CONFIG_NAME_MAX bytes;
 *   - pipeline, model and dimension names are unique among all three (they
 *     share one namespace of SQL views); model inputs name pipelines or
 *     models that exist, and the models form no cycle;
 *   - no two listeners (pipelines' tcp sources, metrics) share an address,
 *     and no two Kafka pipelines read one topic in one consumer group;
 *   - every string is non-empty, valid UTF-8 text;
 *   - every path is absolute: a relative path in the file is resolved
 *     against the directory of the config file (for the embedded default,
 *     against the working directory at load time). Files are not opened:
 *     config_check_files() does that, for `weir check`;
 *   - `${VAR}` and `${VAR:-default}` in string values are expanded from
 *     the environment; an unset VAR without a default is an error.
 *
 * Errors name the file, the line and the key, and say what would be right:
 *   weir.yaml:12: pipelines[0].time_unit: 'seconds' is not one of s, ms, us, ns, rfc3339
 * Unknown keys are refused, with the nearest known key as a hint.
 *
 * Ownership: a loaded weir_config owns every string and array it points to
 * (all in one private arena); config_release() frees them together. The
 * structs are plain data: read them directly, don't modify them.
 *
 * Secrets: DSNs may carry passwords. Never log a DSN as is: pass it through
 * config_mask_dsn(). config_dump() masks them itself.
 */
#ifndef WEIR_CONFIG_CONFIG_H
#define WEIR_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"

struct sockaddr;

/* Longest pipeline, model or dimension name (PostgreSQL's identifier limit). */
#define CONFIG_NAME_MAX 63

/* Longest node id (it is part of every segment file name). */
#define CONFIG_NODE_MAX 64

/* A duration that is switched off ("off" in the file): no limit, keep
 * forever. Compare against it before doing arithmetic with a duration
 * that accepts "off" (time_max_ahead, time_max_age, retention.*). */
#define CONFIG_OFF INT64_C(-1)

/* Defaults that are not resource limits (those are in core/limits.h). */
#define CONFIG_DEFAULT_TCP_ADDR "127.0.0.1:7601"
#define CONFIG_DEFAULT_METRICS_ADDR "127.0.0.1:7690"
#define CONFIG_DEFAULT_DATA_DIR "./weir-data"
#define CONFIG_DEFAULT_TIME_FIELD "timestamp"
#define CONFIG_DEFAULT_KAFKA_GROUP "weir"

/* The schema of a pipeline without a schema file (pipeline.schema NULL):
 * any JSON object. Compile this text instead of reading a file. */
#define CONFIG_DEFAULT_SCHEMA "{\"type\":\"object\"}"

/* A listen or connect address: "host:port" or "[v6]:port". host is as
 * written (a name or a literal; brackets removed), never resolved here. */
struct config_addr {
    char host[256];
    uint16_t port; /* 0: let the kernel choose (listeners only) */
};

/* One entry of a client allow-list: address/prefix, IPv4 or IPv6. */
struct config_cidr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network bytes, masked to prefix */
    int prefix;        /* 0..32 or 0..128 */
};

enum config_time_unit {
    CONFIG_TIME_S = 0,
    CONFIG_TIME_MS,
    CONFIG_TIME_US,
    CONFIG_TIME_NS,
    CONFIG_TIME_RFC3339,
};

enum config_partition { CONFIG_PARTITION_HOUR = 0, CONFIG_PARTITION_DAY };
enum config_compaction { CONFIG_COMPACTION_AUTO = 0, CONFIG_COMPACTION_MANUAL };
enum config_fsync { CONFIG_FSYNC_GROUP = 0, CONFIG_FSYNC_ALWAYS, CONFIG_FSYNC_NEVER };
/* DERIVED: the dataset a transform writes (pipeline.transform): config
 * loading adds it after the pipelines, with no source of its own. */
enum config_source_kind { CONFIG_SOURCE_TCP = 0, CONFIG_SOURCE_KAFKA, CONFIG_SOURCE_DERIVED };
enum config_framing { CONFIG_FRAMING_NDJSON = 0 };
enum config_payload { CONFIG_PAYLOAD_JSON = 0, CONFIG_PAYLOAD_PROTOBUF };

enum config_output_kind {
    CONFIG_OUTPUT_LAKE = 0,
    CONFIG_OUTPUT_POSTGRES,
    CONFIG_OUTPUT_MYSQL,
    CONFIG_OUTPUT_PARQUET,
    CONFIG_OUTPUT_KAFKA,
};

/* Kafka micro-batch bounds: a batch ends at whichever comes first. */
struct config_batch {
    uint64_t max_records;
    uint64_t max_bytes;
    int64_t max_wait_ns;
};

struct config_kafka_source {
    char *brokers;          /* "host:port,host:port" as librdkafka wants it */
    char **topics;          /* ntopics >= 1 */
    size_t ntopics;
    char *group;            /* consumer group id */
    enum config_payload format;
    char *descriptor_set;   /* protobuf only: absolute path, else NULL */
    char *message;          /* protobuf only: full message type name, else NULL */
    struct config_batch batch;
    /* librdkafka properties (session.timeout.ms, security.protocol, ...),
     * "key=value" in file order; the keys weir sets itself are refused. */
    char **options;
    size_t noptions;
};

/* A Kafka producer target (a pipeline's sink or a model's output). */
struct config_kafka_sink {
    char *brokers;
    char *topic;
    char *key;              /* dotted field path for the message key; NULL: no key */
    /* librdkafka producer properties (security.protocol, sasl.*,
     * message.timeout.ms, ...), "key=value" in file order; the keys weir
     * sets itself for its guarantee are refused. */
    char **options;
    size_t noptions;
};

struct config_tls {
    char *cert;             /* absolute paths; all NULL when TLS is off */
    char *key;
    char *ca;               /* optional: verify client certificates against it */
    int64_t handshake_timeout_ns; /* a longer handshake is abandoned */
};

struct config_source {
    enum config_source_kind kind;
    struct config_addr tcp;               /* kind == TCP */
    struct config_kafka_source kafka;     /* kind == KAFKA */
    enum config_framing framing;
    struct config_cidr *allow;            /* tcp: allowed clients; nallow 0: all */
    size_t nallow;
    struct config_tls tls;                /* tcp: tls.cert != NULL when on */
    int64_t idle_timeout_ns;              /* tcp: close a silent connection; or CONFIG_OFF */
};

/* Durations, or CONFIG_OFF to keep forever. */
struct config_retention {
    int64_t raw_ns;
    int64_t parquet_ns;
    int64_t quarantine_ns;
};

struct config_pipeline {
    char *name;                 /* [a-z_][a-z0-9_]*: dataset, folder, view */
    int line;                   /* line of the entry in the file, for messages */
    struct config_source source;
    char *schema;               /* absolute path; NULL: CONFIG_DEFAULT_SCHEMA */
    int lax;                    /* pydantic-style coercion */
    int format_assert;          /* "format" is an assertion */
    char *time_field;           /* dotted path, e.g. "timestamp" or "meta.ts" */
    enum config_time_unit time_unit;
    enum config_partition partition;
    int64_t time_max_ahead_ns;  /* or CONFIG_OFF */
    int64_t time_max_age_ns;    /* or CONFIG_OFF */
    enum config_compaction compaction;
    enum config_fsync fsync;
    int64_t fsync_interval_ns;  /* group commit: at least this often */
    uint64_t fsync_bytes;       /* group commit: or after this many bytes */
    uint64_t segment_bytes;     /* a raw segment rolls at this size */
    uint64_t max_record;        /* this pipeline's limit (default limits.max_record) */
    struct config_retention retention;
    char *transform;            /* absolute path of a SQL file, or NULL */
    char *transform_name;       /* with transform: the derived dataset's name
                                   (transform.name, default <name>_transformed) */
    char *derived_from;         /* source DERIVED: the pipeline whose transform
                                   writes it; its schema is generated into
                                   <data_dir>/<name>/_schema.json */
    struct config_kafka_sink *sink_kafka; /* NULL: no sink */
};

struct config_output {
    enum config_output_kind kind;
    char *dsn;                  /* postgres, mysql: may hold a password, see config_mask_dsn */
    char *table;                /* postgres, mysql: table ("name" or "schema.name") */
    char *path;                 /* parquet: absolute folder path */
    struct config_kafka_sink kafka; /* kafka */
};

struct config_model {
    char *name;
    int line;
    char *sql;                  /* absolute path of the SELECT */
    char **inputs;              /* pipeline or model names, ninputs >= 1 */
    size_t ninputs;
    enum config_partition grain;
    struct config_output *outputs; /* noutputs >= 1 (default: lake) */
    size_t noutputs;
};

struct config_dimension {
    char *name;                 /* view name */
    int line;
    char *path;                 /* absolute path of a .csv, .tsv, .csv.gz, .tsv.gz or .parquet file */
};

struct config_limits {
    uint64_t max_record;
    int max_depth;
    int max_connections;
    uint64_t max_pending;
    int max_open_partitions;
};

struct weir_config {
    char *file;                 /* the file loaded, as given; "<default>" for the embedded one */
    char *dir;                  /* absolute directory paths were resolved against */
    char *data_dir;             /* absolute */
    char *node;                 /* [A-Za-z0-9_.-]+, segment-name node id */
    int workers;
    int64_t grace_ns;
    int64_t drain_timeout_ns;
    int metrics_enabled;
    struct config_addr metrics;
    enum log_level log_level;
    enum log_format log_format;
    struct config_limits limits;

    struct config_pipeline *pipelines; /* npipelines >= 1 */
    size_t npipelines;
    struct config_model *models;
    size_t nmodels;
    struct config_dimension *dimensions;
    size_t ndimensions;

    void *arena_;               /* private: owns all of the above */
};

/*
 * Load the config file at path into cfg (which need not be initialised).
 * path NULL loads the embedded default (one pipeline "default", TCP on
 * 127.0.0.1:7601, data in ./weir-data, any JSON object accepted).
 * Returns 0, or WEIR_ECONFIG (bad content), WEIR_ENOTFOUND / WEIR_EIO
 * (unreadable file), WEIR_ENOMEM, with err filled. On failure cfg holds
 * nothing to release (releasing it anyway is safe).
 */
int config_load(const char *path, struct weir_config *cfg, struct weir_errmsg *err);

/*
 * Load from memory: text (len bytes, need not be NUL-terminated), named
 * name in messages, relative paths resolved against base_dir (NULL: the
 * working directory). Used by config_load, the tests and the fuzzer.
 */
int config_load_string(const char *name, const char *text, size_t len,
                       const char *base_dir, struct weir_config *cfg,
                       struct weir_errmsg *err);

/* Free everything cfg owns and zero it. Safe on a zeroed or released cfg. */
void config_release(struct weir_config *cfg);

/* Look up by name; NULL if there is none. */
const struct config_pipeline *config_pipeline(const struct weir_config *cfg, const char *name);
const struct config_model *config_model(const struct weir_config *cfg, const char *name);
const struct config_dimension *config_dimension(const struct weir_config *cfg, const char *name);

/*
 * Check that the files the config names exist and can be read: schemas,
 * SQL files, dimension files, descriptor sets, TLS files; and that
 * data_dir, if it exists, is a directory. Returns 0 or WEIR_ECONFIG with
 * a message naming the key ("pipelines[0].schema: /x/y.json: No such
 * file or directory").
 */
int config_check_files(const struct weir_config *cfg, struct weir_errmsg *err);

/*
 * Write the effective config (every key, defaults filled in) to out as
 * YAML that config_load reads back to the same config, with DSN passwords
 * masked. Returns 0 or the buf error.
 */
int config_dump(const struct weir_config *cfg, struct buf *out);

/*
 * A size: a whole number and an optional unit, "4096", "4096B", "4KiB",
 * "4MiB", "1GiB", "1TiB" (powers of 1024) or "4kB", "4MB", "1GB", "1TB"
 * (powers of 1000); a space before the unit is allowed. "4M" and "4K" are
 * refused as ambiguous. Returns 0 or WEIR_EPARSE (also on overflow).
 */
int config_parse_size(const char *s, uint64_t *bytes);

/*
 * An address "host:port", "[v6addr]:port" (port 0..65535). ":port" and
 * "*:port" are refused: write 127.0.0.1:port for loopback, 0.0.0.0:port or
 * [::]:port for every interface, so nobody opens a port to the network by
 * leaving the host out. Returns 0 or WEIR_EPARSE.
 */
int config_parse_addr(const char *s, struct config_addr *addr);

/* Format bytes the way the config writes sizes: the largest binary unit
 * that divides it exactly ("4MiB", "1536KiB", "1000"). Returns the length. */
size_t config_format_size(uint64_t bytes, char *out, size_t cap);

/* Format a duration the way the config writes it: the largest unit that
 * divides it exactly ("5m", "1d", "1500ms"; "0s"; "off" for CONFIG_OFF). */
size_t config_format_duration(int64_t ns, char *out, size_t cap);

/* Format addr as "host:port" or "[v6]:port". Returns the length written. */
size_t config_format_addr(const struct config_addr *addr, char *out, size_t cap);

/* "10.0.0.0/8", "192.168.1.7" (/32), "fd00::/8", "::1" (/128).
 * Returns 0 or WEIR_EPARSE. */
int config_parse_cidr(const char *s, struct config_cidr *cidr);

/* 1 if the peer address sa (AF_INET or AF_INET6; v4-mapped v6 counts as
 * v4) is allowed by src's allow-list (an empty list allows everyone). */
int config_allow_peer(const struct config_source *src, const struct sockaddr *sa);

/*
 * Copy dsn to out (cap bytes, always NUL-terminated when cap > 0) with any
 * password replaced by "****": libpq/MariaDB key=value form
 * ("password=secret", "password='a b'", also pass= and pwd=) and URIs
 * ("postgresql://user:secret@host/db", "?password=secret"). Returns the
 * length the masked string needs (like snprintf), so a result >= cap
 * means it was truncated.
 */
size_t config_mask_dsn(const char *dsn, char *out, size_t cap);

/* Names of enum values as written in the file ("ms", "day", "group", ...). */
const char *config_time_unit_name(enum config_time_unit u);
const char *config_partition_name(enum config_partition p);
const char *config_output_kind_name(enum config_output_kind k);

#endif
