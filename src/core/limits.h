/*
 * limits.h - every limit weir enforces, with the reason for its default.
 *
 * Like SQLite's sqliteLimit.h: one place to read what bounds memory and
 * work. Each can be overridden from the config (the key is named beside
 * it) or on the command line of the tools that take it.
 */
#ifndef WEIR_CORE_LIMITS_H
#define WEIR_CORE_LIMITS_H

/* Largest record (one line) accepted, in bytes. Telemetry records are a few
 * hundred bytes; 1 MiB leaves room for batched arrays while bounding the
 * per-connection buffer. Longer records are quarantined, truncated to this
 * size, with the reason. Config: limits.max_record. */
#define WEIR_DEFAULT_MAX_RECORD (1u << 20)

/* Deepest JSON nesting the scanner accepts. Real records nest a handful of
 * levels; the bound keeps the scanner's stack and the validator's recursion
 * small and turns "[[[[..." attacks into a verdict. Config: limits.max_depth. */
#define WEIR_DEFAULT_MAX_DEPTH 256

/* Schema evaluation steps nested inside each other for one record: the
 * instance depth (at most max_depth) times the $ref/allOf/anyOf hops per
 * level, which are one to three in real schemas. A schema whose $refs loop
 * without consuming the instance (`{"$ref": "#"}` under allOf) hits it and
 * the record gets a verdict instead of a stack overflow. The deepest walk
 * needs about 2.5 MB of stack (0.6 MB for valid records). Config: none. */
#define WEIR_MAX_SCHEMA_EVAL_DEPTH 1024

/* Largest schema document, in bytes. Config: none (schemas are trusted
 * files, the bound only guards against pointing at the wrong file). */
#define WEIR_MAX_SCHEMA_BYTES (64u << 20)

/* Connections accepted at once, over all listeners. Each costs one read
 * buffer (below) at most. Config: limits.max_connections. */
#define WEIR_DEFAULT_MAX_CONNECTIONS 4096

/* Pending connections the kernel queues per listening socket before
 * accept (capped by net.core.somaxconn). A thousand senders reconnecting
 * at once after a network blip must not be refused while the loop catches
 * up. Config: none. */
#define WEIR_LISTEN_BACKLOG 4096

/* Bytes read from a socket per read call, into one buffer per worker loop
 * (not per connection: 1,000 idle connections cost no read buffers). A
 * connection's own buffer holds only a record spanning reads, and grows
 * up to max_record + 1. */
#define WEIR_READ_CHUNK (64u << 10)

/* Group commit: fsync at least this often (ms) or after this many bytes. */
#define WEIR_DEFAULT_FSYNC_MS 100
#define WEIR_DEFAULT_FSYNC_BYTES (4u << 20)

/* A raw segment rolls over to a new file at this size. */
#define WEIR_DEFAULT_SEGMENT_BYTES (256u << 20)

/* Hours (partitions) a writer keeps open at once. Each costs a file
 * descriptor and a small buffer; records for further hours wait
 * (backpressure) until the oldest closes. Config: limits.max_open_partitions. */
#define WEIR_DEFAULT_MAX_OPEN_PARTITIONS 64

/* Bytes a worker may hold waiting for the disk before it stops reading its
 * sockets (backpressure). Config: limits.max_pending. */
#define WEIR_DEFAULT_MAX_PENDING (16u << 20)

/* Seconds a shutdown keeps reading connected senders before closing. */
#define WEIR_DEFAULT_DRAIN_MS 5000

/* Longest TLS handshake (ms). A real one takes a few round trips; a client
 * that connects and never finishes would otherwise hold a connection slot
 * and a TLS session for as long as it likes, before any allow-list-passing
 * certificate was seen. 10 s covers slow links and small devices.
 * Config: source.tls.handshake_timeout. */
#define WEIR_DEFAULT_TLS_HANDSHAKE_MS 10000

/* A TCP connection that sent nothing for this long is closed (its partial
 * last line is quarantined as truncated). TCP keepalive already finds dead
 * peers within about 2 minutes; this finds live but silent ones (a hung
 * sender process) and gives back their slot and buffer. It must exceed the
 * slowest sender's reporting interval, or that sender is disconnected on
 * every report: meters report every 15 minutes, many devices hourly, and
 * some legacy devices reconnect badly or not at all, hence 2 hours and not
 * minutes. Config: source.idle_timeout (off: never). */
#define WEIR_DEFAULT_IDLE_TIMEOUT_MS (2 * 3600 * 1000LL)

/* Seconds after an hour's end before it is closed (late records welcome). */
#define WEIR_DEFAULT_GRACE_S 300

/* Largest config file, in bytes. Config files are trusted; the bound only
 * guards against pointing -c at the wrong file. Config: none. */
#define WEIR_MAX_CONFIG_BYTES (1u << 20)

/* Deepest YAML nesting in a config (the real one nests 6 levels). Bounds
 * the loader's work on a mistaken or hostile file. Config: none. */
#define WEIR_MAX_CONFIG_DEPTH 32

/* Most pipelines, models or dimensions in one config. Each pipeline costs
 * a listener or a consumer; checks across them are quadratic. Config: none. */
#define WEIR_MAX_CONFIG_ENTRIES 1024

/* Kafka micro-batches end at whichever bound comes first. 10,000 records or
 * 4 MiB amortise the fsync and the offset commit; 500 ms bounds latency on
 * a quiet topic. A batch is held in memory, so bytes stays well under
 * max_pending. Config: pipelines[].source.kafka.batch.*. */
#define WEIR_DEFAULT_KAFKA_BATCH_RECORDS 10000
#define WEIR_DEFAULT_KAFKA_BATCH_BYTES (4u << 20)
#define WEIR_DEFAULT_KAFKA_BATCH_WAIT_MS 500

/* Table log (store/tablelog.h). A commit lists the files of one compaction
 * or optimize (a few hundred at most, ~300 bytes each): 64 MiB is far past
 * any real one and bounds what a reader allocates for a damaged file. A
 * checkpoint holds the whole state: 1 GiB is ~3 million live files.
 * Config: none. */
#define WEIR_TL_MAX_COMMIT_BYTES (64u << 20)
#define WEIR_TL_MAX_CHECKPOINT_BYTES (1u << 30)

/* Unreferenced Parquet and temp files younger than this survive recovery:
 * a writer may be between its last write and its commit. An hour covers a
 * DuckDB COPY that computes for a long time before its first write, and
 * costs only disk for an hour after a crash. Config: none (tl_recover). */
#define WEIR_DEFAULT_ORPHAN_GRACE_S 3600

/* Files removed from a table stay on disk, and old versions readable with
 * --as-of, this long (Delta's default for deleted files). Config: per
 * pipeline retention. */
#define WEIR_DEFAULT_VACUUM_RETENTION_S (7 * 86400)

/* Rows per Parquet row group written by compaction. DuckDB reads row
 * groups in parallel and skips them by their min/max; 122,880 (its
 * default) keeps a one-hour file of a few million rows splittable across
 * cores, and small telemetry rows compress as well as in larger groups
 * (1 M rows: 6.9 MB either way). Config: none. */
#define WEIR_PARQUET_ROW_GROUP_ROWS 122880

/* serve's background compactor shares the machine with ingest: one DuckDB
 * thread, bounded memory (a COPY streams; 1 GB leaves DuckDB room for wide
 * rows and sorts a partition never needs). It looks for closed hours every
 * minute (and when kicked), and runs retention hourly. Config: none. */
#define WEIR_COMPACTOR_THREADS 1
#define WEIR_COMPACTOR_MEMORY_LIMIT "1GB"
#define WEIR_COMPACTOR_INTERVAL_S 60
#define WEIR_COMPACTOR_GC_INTERVAL_S 3600
/* A partition whose data DuckDB refused is tried again by the background
 * compactor after 1 min, then 2, 4, ... at most 1 h, and at once when its
 * segments change (a fix by requeue, new records): the data is the same
 * until then, so trying at every kick only fills the log. */
#define WEIR_COMPACT_BACKOFF_MIN_S 60
#define WEIR_COMPACT_BACKOFF_MAX_S 3600

/* SQL models (sched/models.h): the longest model SQL file; a failed
 * partition is retried after 60 s, doubling per failure up to an hour, so
 * a warehouse that is down for a day costs 24 tries, not thousands. The
 * scheduler looks for partitions to run every 30 s (and when kicked), and
 * its DuckDB gets the compactor's limits. Config: none. */
#define WEIR_MODEL_MAX_SQL (1u << 20)
#define WEIR_MODEL_RETRY_BASE_S 60
#define WEIR_MODEL_RETRY_MAX_S 3600
#define WEIR_SCHED_INTERVAL_S 30

/* Rows `weir query --format table` keeps to align columns; csv and json
 * stream any number. Longest SQL text weir query reads. Config: none. */
#define WEIR_QUERY_TABLE_MAX_ROWS 100000
#define WEIR_QUERY_MAX_SQL (16u << 20)

/* Warehouse loads (src/sinks/). One decoded row of a load is held in
 * memory at a time; 16 MiB is far past any aggregate row and bounds a
 * runaway quoted field (a missing closing '"' would otherwise swallow the
 * whole input). Config: none (sink_options.max_row_bytes in code). */
#define WEIR_SINK_MAX_ROW (16u << 20)

/* Columns a load may have: PostgreSQL's own table limit. Config: none. */
#define WEIR_SINK_MAX_COLUMNS 1600

/* Bytes of re-encoded rows sent to the server at a time (one COPY data
 * message, one LOAD DATA packet batch). 256 KiB amortises the calls while
 * staying far under any server's packet limit. Config: none. */
#define WEIR_SINK_CHUNK (256u << 10)

/* Seconds to wait for a warehouse connection when the DSN sets no
 * connect_timeout: a scheduler retries later rather than hang. */
#define WEIR_SINK_CONNECT_TIMEOUT_S 10

/* Pipeline transforms (sql/xform.h). Each transform has its own DuckDB
 * with one thread (it runs on the worker that lands the batch) and a
 * memory limit that holds a micro-batch (batch.max_bytes, 16 MiB by
 * default, is a few times that as columns) with room for joins; the SQL
 * text is as long as a model's. An output row is one record of the
 * derived dataset: the longest one a pipeline may allow. Config: none. */
#define WEIR_XFORM_MEMORY "512MB"
#define WEIR_XFORM_SQL_MAX (1u << 20)
#define WEIR_XFORM_ROW_MAX (UINT64_C(1) << 30)

/* Kafka sink (sinks/kafka_out.h). In flight at most 20,000 messages or
 * 16 MiB (librdkafka copies each): a few batches per partition keep the
 * broker busy, and the memory stays bounded whatever the backlog. A
 * message not confirmed within 10 s (librdkafka retries inside that)
 * counts as failed and is produced again after a backoff of 1 s doubling
 * to 30 s: an outage shows in the counters within seconds instead of
 * librdkafka's 5 minutes, and costs one try per backoff. The cursor is
 * saved at most every 200 ms: the window of records a crash can send
 * twice. The segments are listed every 100 ms, so a record reaches the
 * topic within the fsync interval plus ~0.1 s. Shutdown waits at most
 * 10 s for reports. Config: none. */
#define WEIR_KSINK_WINDOW_MESSAGES 20000
#define WEIR_KSINK_WINDOW_BYTES (16u << 20)
#define WEIR_KSINK_MESSAGE_TIMEOUT_MS 10000
#define WEIR_KSINK_BACKOFF_MIN_MS 1000
#define WEIR_KSINK_BACKOFF_MAX_MS 30000
#define WEIR_KSINK_SAVE_MS 200
#define WEIR_KSINK_SCAN_MS 100
#define WEIR_KSINK_STOP_WAIT_S 10

#endif
