/*
 * cmd_status.c - `weir status`: what a running server counts, and what
 * lies on disk.
 *
 * The live part comes from the server's /status JSON (the metrics address
 * of the config); two samples half a second apart give the current rates.
 * The disk part lists each pipeline's segments, so it works with the
 * server stopped too.
 */
#include "cli/cli.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/wtime.h"
#include "sched/models.h"
#include "schema/json.h"
#include "store/compact.h"
#include "store/segment.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* GET path from host:port into body; 0 or -1 (message in err). */
static int http_get(const struct config_addr *a, const char *path, struct buf *body,
                    char *err, size_t errcap)
{
    char port[16];
    snprintf(port, sizeof port, "%u", a->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    const char *host = a->host[0] ? a->host : "127.0.0.1";
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        snprintf(err, errcap, "cannot resolve %.100s", host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {2, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errcap, "no server answers on %.100s:%s (%.60s)", host, port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (write(fd, req, (size_t)n) != n) {
        snprintf(err, errcap, "cannot send the request: %s", strerror(errno));
        close(fd);
        return -1;
    }
    char chunk[8192];
    ssize_t r;
    buf_reset(body);
    while ((r = read(fd, chunk, sizeof chunk)) > 0)
        if (buf_append(body, chunk, (size_t)r) != 0)
            break;
    close(fd);
    char *hdr_end = body->data ? strstr(body->data, "\r\n\r\n") : NULL;
    if (!hdr_end || strncmp(body->data, "HTTP/1.0 200", 12) != 0) {
        snprintf(err, errcap, "unexpected answer from the server");
        return -1;
    }
    buf_consume(body, (size_t)(hdr_end + 4 - body->data));
    return 0;
}

/* Number at "a.b" under token tok of doc, 0 if absent. */
static double num_at(const struct json_doc *d, int tok, const char *path)
{
    int i = json_lookup(d, (uint32_t)tok, path, strlen(path));
    if (i < 0 || d->toks[i].type != JSON_NUMBER)
        return 0;
    return json_num_double(d, &d->toks[i]);
}

/* Pipeline object for name in /status doc, or -1. */
static int find_pipeline(const struct json_doc *d, const char *name)
{
    int arr = json_lookup(d, 0, "pipelines", 9);
    if (arr < 0 || d->toks[arr].type != JSON_ARRAY)
        return -1;
    uint32_t i = (uint32_t)arr + 1;
    for (uint32_t k = 0; k < d->toks[arr].count; k++) {
        int nm = json_lookup(d, i, "name", 4);
        if (nm >= 0 && json_str_eq(d, &d->toks[nm], name, strlen(name)))
            return (int)i;
        i = d->toks[i].next;
    }
    return -1;
}

/* A Kafka pipeline's consumer: counters, and lag per partition. */
static void kafka_part(const struct json_doc *d, int p)
{
    int k = json_lookup(d, (uint32_t)p, "kafka", 5);
    if (k < 0 || d->toks[k].type != JSON_OBJECT)
        return;
    printf("  %-12s %.0f messages in %.0f batches, %.0f duplicates skipped, "
           "%.0f commits (%.0f failed)\n", "kafka", num_at(d, k, "messages_total"),
           num_at(d, k, "batches_total"), num_at(d, k, "duplicates_skipped_total"),
           num_at(d, k, "commits_total"), num_at(d, k, "commit_errors_total"));
    printf("  %-12s %.0f partitions assigned, %.0f messages behind", "lag",
           num_at(d, k, "partitions_assigned"), num_at(d, k, "lag_total"));
    int arr = json_lookup(d, (uint32_t)k, "lag", 3);
    if (arr >= 0 && d->toks[arr].type == JSON_ARRAY && d->toks[arr].count) {
        uint32_t v = (uint32_t)arr + 1;
        printf(":");
        for (uint32_t i = 0; i < d->toks[arr].count; i++, v = d->toks[v].next) {
            char topic[256];
            int t = json_lookup(d, v, "topic", 5);
            topic[0] = 0;
            if (t >= 0) {
                size_t n = json_str_decode(d, &d->toks[t], topic, sizeof topic - 1);
                topic[n < sizeof topic ? n : sizeof topic - 1] = 0;
            }
            if (i == 8) {
                printf(" ...");
                break;
            }
            double lag = num_at(d, (int)v, "lag");
            if (lag < 0)
                printf(" %s/%.0f ?", topic, num_at(d, (int)v, "partition"));
            else
                printf(" %s/%.0f %.0f", topic, num_at(d, (int)v, "partition"), lag);
        }
    }
    printf("\n");
}

/* Per model: partitions run, failing ones with their error and next try. */
static void model_part(const struct weir_config *cfg, const struct config_model *m)
{
    struct model_state *v = NULL;
    size_t n = 0, failed = 0;
    struct weir_errmsg e = {0};
    printf("\nmodel %s\n", m->name);
    if (model_states(cfg, m, &v, &n, &e) != 0) {
        printf("  %-12s %s\n", "state", e.text);
        return;
    }
    for (size_t i = 0; i < n; i++)
        failed += !v[i].ok;
    printf("  %-12s %zu partitions run, %zu ok, %zu failing\n", "runs", n, n - failed,
           failed);
    for (size_t i = 0, shown = 0; i < n && shown < 5; i++) {
        if (v[i].ok)
            continue;
        char next[40];
        wtime_format_rfc3339(v[i].next_try_ns, 0, next, sizeof next);
        printf("  %-12s %s: %u attempts, next try %s: %.200s\n", shown++ ? "" : "failing",
               v[i].key, v[i].attempts, next, v[i].error);
    }
    free(v);
}

static void human_bytes(double b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4)
        b /= 1024, i++;
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void disk_part(const struct weir_config *cfg, const char *pipeline,
                      const char *kind)
{
    struct seg_list l = {0};
    struct weir_errmsg e = {0};
    if (seg_list(cfg->data_dir, pipeline, kind, &l, &e) != 0) {
        printf("  %-12s %s\n", kind, e.text);
        return;
    }
    size_t parts = 0, active = 0;
    uint64_t bytes = 0;
    int64_t last = INT64_MIN, oldest = INT64_MAX, newest = INT64_MIN;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].part_start != last)
            parts++, last = l.v[i].part_start;
        active += l.v[i].active;
        bytes += l.v[i].size;
        if (l.v[i].part_start < oldest)
            oldest = l.v[i].part_start;
        if (l.v[i].part_start > newest)
            newest = l.v[i].part_start;
    }
    char hb[32];
    human_bytes((double)bytes, hb, sizeof hb);
    printf("  %-12s %zu partitions, %zu segments (%zu sealed, %zu being written), %s",
           kind, parts, l.n, l.n - active, active, hb);
    if (l.n) {
        char a[40], b[40];
        wtime_format_rfc3339(oldest, 0, a, sizeof a);
        wtime_format_rfc3339(newest, 0, b, sizeof b);
        printf(", %.13s .. %.13s", a, b);
    }
    printf("\n");
    seg_list_release(&l);
}

/* Partitions the compactor could not compact (store/compact.h). */
static void compaction_part(const struct weir_config *cfg, const struct config_pipeline *p)
{
    struct compact_failure *f = NULL;
    size_t n = 0;
    struct weir_errmsg e = {0};
    if (compact_failures_read(cfg, p, &f, &n, &e) != 0) {
        printf("  %-12s %s\n", "compaction", e.text);
        return;
    }
    if (n)
        printf("  %-12s %zu partition%s failing, kept raw until fixed:\n", "compaction",
               n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        char since[40];
        wtime_format_rfc3339(f[i].since_ns, 0, since, sizeof since);
        printf("    %s since %s: %s\n", f[i].partition, since, f[i].reason);
    }
    free(f);
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int json_out = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 'j')
            json_out = 1;
        else
            return cli_usage_error("status", "unknown option");
    }
    struct weir_config cfg;
    if (cli_load_config("status", path, &cfg) != 0)
        return EXIT_USAGE;
    struct buf b1 = BUF_INIT(64u << 20), b2 = BUF_INIT(64u << 20);
    struct json_doc d1, d2;
    json_doc_init(&d1, 0);
    json_doc_init(&d2, 0);
    char err[256] = "metrics are off in the config";
    int live = cfg.metrics_enabled && http_get(&cfg.metrics, "/status", &b1, err, sizeof err) == 0;
    if (live && json_out) {
        fwrite(b1.data, 1, b1.len, stdout);
        goto out;
    }
    int64_t t1 = wtime_mono_ns();
    if (live) {
        usleep(500 * 1000);
        live = http_get(&cfg.metrics, "/status", &b2, err, sizeof err) == 0 &&
               json_scan(&d1, b1.data, b1.len) == JSON_OK &&
               json_scan(&d2, b2.data, b2.len) == JSON_OK;
    }
    double dt = (double)(wtime_mono_ns() - t1) / 1e9;
    if (live) {
        int s = json_lookup(&d2, 0, "started_at", 10), n = json_lookup(&d2, 0, "node", 4);
        char started[64] = "?", node[128] = "?";
        if (s >= 0)
            started[json_str_decode(&d2, &d2.toks[s], started, sizeof started - 1)] = 0;
        if (n >= 0)
            node[json_str_decode(&d2, &d2.toks[n], node, sizeof node - 1)] = 0;
        printf("server: running on node %s since %s\n", node, started);
    } else {
        printf("server: not reachable: %s\n", err);
    }
    for (size_t i = 0; i < cfg.npipelines; i++) {
        const char *name = cfg.pipelines[i].name;
        printf("\npipeline %s\n", name);
        int p1 = live ? find_pipeline(&d1, name) : -1;
        int p2 = live ? find_pipeline(&d2, name) : -1;
        if (p2 >= 0) {
            double rec = num_at(&d2, p2, "records_total");
            double rate = p1 >= 0 ? (rec - num_at(&d1, p1, "records_total")) / dt : 0;
            double brate = p1 >= 0 ? (num_at(&d2, p2, "received_bytes_total") -
                                      num_at(&d1, p1, "received_bytes_total")) / dt : 0;
            char hb[32], hr[32], hp[32];
            human_bytes(num_at(&d2, p2, "received_bytes_total"), hb, sizeof hb);
            human_bytes(brate, hr, sizeof hr);
            human_bytes(num_at(&d2, p2, "pending_bytes"), hp, sizeof hp);
            printf("  %-12s %.0f (%s), now %.0f records/s (%s/s)\n", "records", rec, hb,
                   rate, hr);
            printf("  %-12s %.0f valid, %.0f quarantined, %.0f late, %.0f coerced\n",
                   "verdicts", num_at(&d2, p2, "valid_records_total"),
                   num_at(&d2, p2, "quarantined_records_total"),
                   num_at(&d2, p2, "late_records_total"),
                   num_at(&d2, p2, "coerced_records_total"));
            int q = json_lookup(&d2, (uint32_t)p2, "quarantined_by_reason", 21);
            if (q >= 0 && d2.toks[q].type == JSON_OBJECT) {
                printf("  %-12s", "quarantine");
                uint32_t k = (uint32_t)q + 1;
                for (uint32_t m = 0; m < d2.toks[q].count; m++) {
                    char key[64];
                    key[json_str_decode(&d2, &d2.toks[k], key, sizeof key - 1)] = 0;
                    uint32_t v = d2.toks[k].next;
                    printf(" %s %.0f", key, json_num_double(&d2, &d2.toks[v]));
                    k = d2.toks[v].next;
                }
                printf("\n");
            }
            printf("  %-12s %.0f open, %.0f accepted, %.0f refused, %.0f closed idle\n",
                   "connections", num_at(&d2, p2, "connections"),
                   num_at(&d2, p2, "connections_accepted_total"),
                   num_at(&d2, p2, "connections_refused_total"),
                   num_at(&d2, p2, "idle_closed_total"));
            if (cfg.pipelines[i].source.tls.cert)
                printf("  %-12s %.0f handshakes, %.0f failed (%.0f timed out)\n", "tls",
                       num_at(&d2, p2, "tls_handshakes_total"),
                       num_at(&d2, p2, "tls_failures_total"),
                       num_at(&d2, p2, "tls_handshake_timeouts_total"));
            printf("  %-12s %.1f s not reading, %s not yet durable, %.0f write errors\n",
                   "backpressure", num_at(&d2, p2, "backpressure_seconds"), hp,
                   num_at(&d2, p2, "write_errors_total"));
            kafka_part(&d2, p2);
            int sk = json_lookup(&d2, (uint32_t)p2, "sink", 4);
            if (sk >= 0 && d2.toks[sk].type == JSON_OBJECT)
                printf("  %-12s %.0f delivered, %.0f not yet (lag), %.0f failed, "
                       "%.0f produced again\n", "kafka sink",
                       num_at(&d2, p2, "sink.delivered_total"),
                       num_at(&d2, p2, "sink.lag_records"),
                       num_at(&d2, p2, "sink.failed_total"),
                       num_at(&d2, p2, "sink.retried_total"));
        }
        disk_part(&cfg, name, "raw");
        disk_part(&cfg, name, "quarantine");
        compaction_part(&cfg, &cfg.pipelines[i]);
    }
    for (size_t i = 0; i < cfg.nmodels; i++)
        model_part(&cfg, &cfg.models[i]);
out:
    json_doc_release(&d1);
    json_doc_release(&d2);
    buf_release(&b1);
    buf_release(&b2);
    int metrics = cfg.metrics_enabled;
    config_release(&cfg);
    return live || !metrics ? EXIT_OK : EXIT_RUNTIME;
}
