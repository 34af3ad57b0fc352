/*
 * metrics.c - render a server snapshot; see metrics.h.
 */
#include "obs/metrics.h"
#include "core/wtime.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct counter {
    const char *name;
    const char *help;
    size_t off;                  /* offset in struct pipeline_snapshot */
    int is_gauge;
};

#define PS(f) offsetof(struct pipeline_snapshot, f)
static const struct counter counters[] = {
    {"weir_records_total", "Records received (valid and invalid).", PS(land.records), 0},
    {"weir_received_bytes_total", "Bytes of records received.", PS(land.bytes), 0},
    {"weir_valid_records_total", "Records validated and filed in raw segments.", PS(land.valid), 0},
    {"weir_durable_records_total", "Valid records fsynced in raw segments (fsync never: written to the OS).", PS(land.durable), 0},
    {"weir_valid_bytes_total", "Bytes filed in raw segments.", PS(land.valid_bytes), 0},
    {"weir_coerced_records_total", "Valid records after lax coercion.", PS(land.coerced), 0},
    {"weir_late_records_total", "Valid records for a partition already closed.", PS(land.late), 0},
    {"weir_quarantined_records_total", "Records sent to quarantine (all reasons).", PS(land.rejected_total), 0},
    {"weir_write_errors_total", "Disk write failures (retried, nothing dropped).", PS(land.write_errors), 0},
    {"weir_overflow_records_total", "Records that found the write queue full (should stay 0).", PS(land.overflow), 0},
    {"weir_pending_bytes", "Bytes taken but not yet durable.", PS(land.pending), 1},
    {"weir_connections", "Open connections.", PS(conns_active), 1},
    {"weir_connections_accepted_total", "Connections accepted.", PS(conns_accepted), 0},
    {"weir_connections_refused_total", "Connections refused (limits, allow-list).", PS(conns_refused), 0},
    {"weir_read_bytes_total", "Bytes read from sources.", PS(bytes_read), 0},
    {"weir_tls_handshakes_total", "TLS handshakes completed.", PS(tls_handshakes), 0},
    {"weir_tls_failures_total", "TLS handshakes failed or timed out (plain-TCP clients, bad or missing client certificates).", PS(tls_failures), 0},
    {"weir_tls_handshake_timeouts_total", "TLS handshakes not completed within source.tls.handshake_timeout (also in failures).", PS(tls_timeouts), 0},
    {"weir_idle_closed_total", "Connections closed by source.idle_timeout.", PS(idle_closed), 0},
};

/* Kafka pipelines only; the /status JSON has them under "kafka", without
 * the "weir_kafka_" prefix. */
static const struct counter kafka_counters[] = {
    {"weir_kafka_messages_total", "Kafka messages landed (valid and quarantined).", PS(ks.messages), 0},
    {"weir_kafka_bytes_total", "Bytes of Kafka message payloads landed.", PS(ks.bytes), 0},
    {"weir_kafka_batches_total", "Micro-batches made durable and checkpointed.", PS(ks.batches), 0},
    {"weir_kafka_duplicates_skipped_total", "Redelivered messages not landed again (already in the lake).", PS(ks.duplicates_skipped), 0},
    {"weir_kafka_commits_total", "Offset commits to Kafka that succeeded.", PS(ks.commits), 0},
    {"weir_kafka_commit_errors_total", "Offset commits to Kafka that failed (retried with the next batch).", PS(ks.commit_errors), 0},
    {"weir_kafka_partitions_assigned", "Partitions this consumer owns now.", PS(ks.assigned), 1},
};
#undef PS

/* The Kafka sink's, for pipelines that have one (sinks/kafka_out.h). */
#define SK(f) offsetof(struct pipeline_snapshot, sink.f)
static const struct counter sink_counters[] = {
    {"weir_sink_produced_total", "Messages handed to the Kafka producer (retries included).", SK(produced), 0},
    {"weir_sink_delivered_total", "Records confirmed by the Kafka broker.", SK(delivered), 0},
    {"weir_sink_failed_total", "Delivery reports with an error (the record is produced again).", SK(failed), 0},
    {"weir_sink_retried_total", "Records produced again after a failed delivery.", SK(retried), 0},
    {"weir_sink_delivered_bytes_total", "Bytes of records confirmed by the broker.", SK(bytes), 0},
    {"weir_sink_lag_records", "Records landed (durable) and not yet delivered.", SK(lag), 1},
};
#undef SK

/* A pipeline's transform (sources/transform.h); /status has them under
 * "transform", without the "weir_transform_" prefix. */
#define XS(f) offsetof(struct pipeline_snapshot, xs.f)
static const struct counter transform_counters[] = {
    {"weir_transform_batches_total", "Micro-batches the transform ran on.", XS(batches), 0},
    {"weir_transform_records_total", "Records of the pipeline fed to the transform.", XS(records), 0},
    {"weir_transform_rows_total", "Rows the transform landed in its dataset.", XS(rows), 0},
    {"weir_transform_errors_total", "Batches the SQL failed on (their rows are not in the dataset: weir replay).", XS(errors), 0},
    {"weir_transform_skipped_total", "Records landed again after a restart and not fed again (their rows are in the dataset).", XS(skipped), 0},
};
#undef XS
#define NCOUNTERS(a) (sizeof(a) / sizeof((a)[0]))

void metrics_snapshot_release(struct server_snapshot *s)
{
    for (size_t i = 0; i < s->npipelines; i++) {
        free(s->pipelines[i].lag);
        s->pipelines[i].lag = NULL;
        s->pipelines[i].nlag = 0;
    }
}

static uint64_t field(const struct pipeline_snapshot *p, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)p + off, sizeof v);
    return v;
}

static int kafka_prometheus(const struct server_snapshot *s, struct buf *out)
{
    int rc = 0, any = 0;
    for (size_t i = 0; i < s->npipelines; i++)
        any |= s->pipelines[i].kafka;
    if (!any)
        return 0;
    for (size_t c = 0; c < NCOUNTERS(kafka_counters) && rc == 0; c++) {
        const struct counter *k = &kafka_counters[c];
        rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", k->name, k->help,
                         k->name, k->is_gauge ? "gauge" : "counter");
        for (size_t i = 0; i < s->npipelines && rc == 0; i++)
            if (s->pipelines[i].kafka)
                rc = buf_appendf(out, "%s{pipeline=\"%s\"} %llu\n", k->name,
                                 s->pipelines[i].name,
                                 (unsigned long long)field(&s->pipelines[i], k->off));
    }
    if (rc == 0)
        rc = buf_puts(out, "# HELP weir_kafka_consumer_lag Messages in the partition "
                           "after the next offset to land (high watermark - next "
                           "offset), per partition owned.\n"
                           "# TYPE weir_kafka_consumer_lag gauge\n");
    for (size_t i = 0; i < s->npipelines && rc == 0; i++) {
        const struct pipeline_snapshot *p = &s->pipelines[i];
        for (size_t j = 0; j < p->nlag && rc == 0; j++)
            if (p->lag[j].lag >= 0)
                rc = buf_appendf(out, "weir_kafka_consumer_lag{pipeline=\"%s\","
                                      "topic=\"%s\",partition=\"%ld\"} %lld\n",
                                 p->name, p->lag[j].topic, (long)p->lag[j].partition,
                                 (long long)p->lag[j].lag);
    }
    return rc;
}

static int kafka_json(const struct pipeline_snapshot *p, struct buf *out)
{
    int rc = buf_puts(out, ",\"kafka\":{");
    for (size_t c = 0; c < NCOUNTERS(kafka_counters) && rc == 0; c++)
        rc = buf_appendf(out, "\"%s\":%llu,", kafka_counters[c].name + 11,
                         (unsigned long long)field(p, kafka_counters[c].off));
    int64_t total = 0;
    for (size_t j = 0; j < p->nlag; j++)
        total += p->lag[j].lag > 0 ? p->lag[j].lag : 0;
    rc = rc ? rc : buf_appendf(out, "\"lag_total\":%lld,\"lag\":[", (long long)total);
    for (size_t j = 0; j < p->nlag && rc == 0; j++) {
        const struct kafka_lag *g = &p->lag[j];
        rc = buf_appendf(out, "%s{\"topic\":", j ? "," : "");
        rc = rc ? rc : buf_put_json_string(out, g->topic, strlen(g->topic));
        rc = rc ? rc : buf_appendf(out, ",\"partition\":%ld,\"next_offset\":%lld,"
                                        "\"high_watermark\":%lld,\"lag\":%lld}",
                                   (long)g->partition, (long long)g->next,
                                   (long long)g->high, (long long)g->lag);
    }
    return rc ? rc : buf_puts(out, "]}");
}

int metrics_prometheus(const struct server_snapshot *s, struct buf *out)
{
    int rc = 0;
    for (size_t c = 0; c < sizeof counters / sizeof counters[0] && rc == 0; c++) {
        const struct counter *k = &counters[c];
        rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", k->name, k->help,
                         k->name, k->is_gauge ? "gauge" : "counter");
        for (size_t i = 0; i < s->npipelines && rc == 0; i++)
            rc = buf_appendf(out, "%s{pipeline=\"%s\"} %llu\n", k->name,
                             s->pipelines[i].name,
                             (unsigned long long)field(&s->pipelines[i], k->off));
    }
    if (rc == 0)
        rc = buf_appendf(out, "# HELP weir_quarantined_by_reason_total Records "
                              "quarantined, by reason.\n"
                              "# TYPE weir_quarantined_by_reason_total counter\n");
    for (size_t i = 0; i < s->npipelines && rc == 0; i++)
        for (int r = 0; r < QUAR__COUNT && rc == 0; r++)
            rc = buf_appendf(out, "weir_quarantined_by_reason_total{pipeline=\"%s\","
                                  "reason=\"%s\"} %llu\n",
                             s->pipelines[i].name, quar_reason_name((enum quar_reason)r),
                             (unsigned long long)s->pipelines[i].land.rejected[r]);
    if (rc == 0)
        rc = buf_appendf(out, "# HELP weir_backpressure_seconds_total Time sources "
                              "spent not reading because writing fell behind.\n"
                              "# TYPE weir_backpressure_seconds_total counter\n");
    for (size_t i = 0; i < s->npipelines && rc == 0; i++)
        rc = buf_appendf(out, "weir_backpressure_seconds_total{pipeline=\"%s\"} %.3f\n",
                         s->pipelines[i].name,
                         (double)s->pipelines[i].backpressure_ns / 1e9);
    for (size_t c = 0; c < sizeof sink_counters / sizeof sink_counters[0] && rc == 0; c++) {
        const struct counter *k = &sink_counters[c];
        int any = 0;
        for (size_t i = 0; i < s->npipelines && rc == 0; i++) {
            if (!s->pipelines[i].has_sink)
                continue;
            if (!any++)
                rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", k->name, k->help,
                                 k->name, k->is_gauge ? "gauge" : "counter");
            if (rc == 0)
                rc = buf_appendf(out, "%s{pipeline=\"%s\"} %llu\n", k->name,
                                 s->pipelines[i].name,
                                 (unsigned long long)field(&s->pipelines[i], k->off));
        }
    }
    for (size_t c = 0; c < NCOUNTERS(transform_counters) && rc == 0; c++) {
        const struct counter *k = &transform_counters[c];
        int any = 0;
        for (size_t i = 0; i < s->npipelines && rc == 0; i++) {
            if (!s->pipelines[i].has_transform)
                continue;
            if (!any++)
                rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s counter\n", k->name, k->help,
                                 k->name);
            if (rc == 0)
                rc = buf_appendf(out, "%s{pipeline=\"%s\"} %llu\n", k->name,
                                 s->pipelines[i].name,
                                 (unsigned long long)field(&s->pipelines[i], k->off));
        }
    }
    if (rc == 0)
        rc = kafka_prometheus(s, out);
    if (rc == 0)
        rc = buf_appendf(out, "# HELP weir_uptime_seconds Seconds since start.\n"
                              "# TYPE weir_uptime_seconds gauge\nweir_uptime_seconds %.3f\n",
                         (double)(s->now_ns - s->started_ns) / 1e9);
    return rc;
}

int metrics_status_json(const struct server_snapshot *s, struct buf *out)
{
    char started[40], now[40];
    wtime_format_rfc3339(s->started_ns, 3, started, sizeof started);
    wtime_format_rfc3339(s->now_ns, 3, now, sizeof now);
    int rc = buf_appendf(out, "{\"node\":\"%s\",\"version\":\"%s\",\"started_at\":\"%s\","
                              "\"now\":\"%s\",\"draining\":%s,\"pipelines\":[",
                         s->node, s->version, started, now, s->draining ? "true" : "false");
    for (size_t i = 0; i < s->npipelines && rc == 0; i++) {
        const struct pipeline_snapshot *p = &s->pipelines[i];
        rc = buf_appendf(out, "%s{\"name\":\"%s\",\"source\":", i ? "," : "", p->name);
        if (rc == 0)
            rc = buf_put_json_string(out, p->source, strlen(p->source));
        if (rc == 0)
            rc = buf_putc(out, ',');
        for (size_t c = 0; c < sizeof counters / sizeof counters[0] && rc == 0; c++)
            rc = buf_appendf(out, "\"%s\":%llu,", counters[c].name + 5,
                             (unsigned long long)field(p, counters[c].off));
        if (rc == 0)
            rc = buf_appendf(out, "\"backpressure_seconds\":%.3f,\"open_partitions\":%u,"
                                  "\"quarantined_by_reason\":{",
                             (double)p->backpressure_ns / 1e9, p->land.open_partitions);
        for (int r = 0; r < QUAR__COUNT && rc == 0; r++)
            rc = buf_appendf(out, "%s\"%s\":%llu", r ? "," : "",
                             quar_reason_name((enum quar_reason)r),
                             (unsigned long long)p->land.rejected[r]);
        if (rc == 0)
            rc = buf_putc(out, '}');
        if (rc == 0 && p->has_sink) {
            rc = buf_puts(out, ",\"sink\":{");
            for (size_t c = 0; c < sizeof sink_counters / sizeof sink_counters[0] && rc == 0;
                 c++)
                rc = buf_appendf(out, "%s\"%s\":%llu", c ? "," : "",
                                 sink_counters[c].name + 10,
                                 (unsigned long long)field(p, sink_counters[c].off));
            if (rc == 0)
                rc = buf_putc(out, '}');
        }
        if (rc == 0 && p->has_transform) {
            rc = buf_puts(out, ",\"transform\":{");
            for (size_t c = 0; c < NCOUNTERS(transform_counters) && rc == 0; c++)
                rc = buf_appendf(out, "%s\"%s\":%llu", c ? "," : "",
                                 transform_counters[c].name + 15,
                                 (unsigned long long)field(p, transform_counters[c].off));
            if (rc == 0)
                rc = buf_putc(out, '}');
        }
        if (rc == 0 && p->kafka)
            rc = kafka_json(p, out);
        if (rc == 0)
            rc = buf_putc(out, '}');
    }
    if (rc == 0)
        rc = buf_puts(out, "]}\n");
    return rc;
}
