/*
 * kafka_mock.c - a Kafka cluster for tests and benchmarks, and a small
 * producer and offsets reader to go with it.
 *
 * librdkafka ships a mock cluster (rdkafka_mock.h): a real implementation
 * of the Kafka protocol (produce, fetch, metadata, consumer groups with
 * join/sync/heartbeat/session timeouts, offset commits) listening on
 * 127.0.0.1 sockets inside the process that creates it. This tool creates
 * one and keeps it up, so other processes (weir serve, kcat, the producer
 * mode below) talk to it over real sockets:
 *
 *   kafka_mock [--brokers N] [--topic NAME[:PARTITIONS]]... [--time-limit S]
 *              [--port-file FILE]
 *       prints the bootstrap list ("127.0.0.1:PORT[,...]") on stdout (and
 *       into FILE), then runs until SIGTERM/SIGINT or S seconds (default
 *       900: never unbounded).
 *
 *   kafka_mock produce BOOTSTRAP TOPIC [--partition N | --spread N] [--key K]
 *              [--nul | --each-file] [--rate N] [FILE...]
 *       one message per line of the FILEs (or stdin); empty lines are
 *       skipped; --nul: records are separated by NUL bytes instead, so a
 *       message may hold newlines. --partition: all to partition N;
 *       --spread N: message i to partition i % N (default: librdkafka's
 *       partitioner, which sticks to one partition for a while without a
 *       key). --rate: at most N messages a second. --each-file: each FILE
 *       is exactly one message, all its bytes (binary payloads such as
 *       Protobuf; an empty file is an empty message).
 *       Prints "N produced" on stderr; exit 1 if a delivery failed.
 *
 *   kafka_mock offsets BOOTSTRAP TOPIC [--group G]
 *       one line per partition: "PARTITION LOW HIGH COMMITTED" (committed
 *       is -1 when the group has none).
 *
 *   kafka_mock consume BOOTSTRAP TOPIC [--from-beginning] [--count N]
 *              [--timeout S] [--header NAME]
 *       prints each message of every partition as "KEY<TAB>VALUE" (an
 *       empty KEY when it has none; with --header, a third column: that
 *       header's value, "-" when absent), without a consumer group.
 *       Starts at the end of each partition, or at its beginning; stops
 *       after N messages, or once S seconds (default 5) pass without one.
 *       Prints "N consumed" on stderr.
 *
 * While the cluster runs, SIGUSR1 takes all its brokers down (connections
 * closed, new ones refused: an outage) and SIGUSR2 brings them back.
 *
 * The mock keeps at most 5 MB of (compressed) batches per partition and
 * drops older ones beyond that, so the producer compresses (lz4) and
 * tests that hold many records spread them over partitions.
 */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop, want_down, want_up;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_usr(int sig)
{
    if (sig == SIGUSR1)
        want_down = 1;
    else
        want_up = 1;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: kafka_mock [--brokers N] [--topic NAME[:PARTITIONS]]... "
            "[--time-limit S] [--port-file FILE]\n"
            "       kafka_mock produce BOOTSTRAP TOPIC [--partition N | --spread N] "
            "[--key K] [--nul | --each-file] [--rate N] [FILE...]\n"
            "       kafka_mock offsets BOOTSTRAP TOPIC [--group G]\n"
            "       kafka_mock consume BOOTSTRAP TOPIC [--from-beginning] [--count N] "
            "[--timeout S] [--header NAME]\n");
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_mock: %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

/* ---- the cluster -------------------------------------------------------- */

static int run_cluster(int argc, char **argv)
{
    long brokers = 1, limit = 900;
    const char *port_file = NULL;
    const char *topics[64];
    int ntopics = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage();
        if (strcmp(a, "--brokers") == 0) {
            if (parse_long(argv[++i], 1, 16, &brokers))
                return usage();
        } else if (strcmp(a, "--time-limit") == 0) {
            if (parse_long(argv[++i], 1, 86400, &limit))
                return usage();
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = argv[++i];
        } else if (strcmp(a, "--topic") == 0 && ntopics < 64) {
            topics[ntopics++] = argv[++i];
        } else {
            return usage();
        }
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "log_level", "3");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        char name[256];
        long parts = 1;
        const char *colon = strchr(topics[i], ':');
        size_t n = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
        if (n == 0 || n >= sizeof name || (colon && parse_long(colon + 1, 1, 1000, &parts))) {
            fprintf(stderr, "kafka_mock: bad --topic %s (NAME[:PARTITIONS])\n", topics[i]);
            return 2;
        }
        memcpy(name, topics[i], n);
        name[n] = '\0';
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, (int)parts, 1);
        if (e) {
            fprintf(stderr, "kafka_mock: topic %s: %s\n", name, rd_kafka_err2str(e));
            return 1;
        }
    }
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    printf("%s\n", boot);
    fflush(stdout);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", boot) < 0 || fclose(f) != 0 || rename(tmp, port_file)) {
            fprintf(stderr, "kafka_mock: cannot write %s\n", port_file);
            return 1;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGUSR1, on_usr);
    signal(SIGUSR2, on_usr);
    double end = now_s() + (double)limit;
    while (!stop && now_s() < end) {
        if (want_down) {
            want_down = 0;
            rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_down(mc, -1);
            fprintf(stderr, "kafka_mock: brokers down%s%s\n", e ? ": " : "",
                    e ? rd_kafka_err2str(e) : "");
        }
        if (want_up) {
            want_up = 0;
            rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_up(mc, -1);
            fprintf(stderr, "kafka_mock: brokers up%s%s\n", e ? ": " : "",
                    e ? rd_kafka_err2str(e) : "");
        }
        usleep(50 * 1000);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}

/* ---- produce ------------------------------------------------------------ */

static long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ < 5)
            fprintf(stderr, "kafka_mock: delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

struct producer {
    rd_kafka_t *rk;
    const char *topic;
    long partition;
    long spread;            /* > 0: partition = message number % spread */
    const char *key;
    long rate;
    long sent;
    double t0;
};

static int produce_one(struct producer *p, const char *data, size_t len)
{
    if (p->rate > 0) {
        double due = p->t0 + (double)p->sent / (double)p->rate;
        double now = now_s();
        if (due > now)
            usleep((useconds_t)((due - now) * 1e6));
    }
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(p->topic),
            RD_KAFKA_V_PARTITION(p->spread > 0       ? (int32_t)(p->sent % p->spread)
                                 : p->partition >= 0 ? (int32_t)p->partition
                                                     : RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)data, len),
            RD_KAFKA_V_KEY((void *)p->key, p->key ? strlen(p->key) : 0),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 10);
            continue;
        }
        if (e) {
            fprintf(stderr, "kafka_mock: produce: %s\n", rd_kafka_err2str(e));
            return -1;
        }
        p->sent++;
        rd_kafka_poll(p->rk, 0);
        return 0;
    }
}

static int produce_stream(struct producer *p, FILE *f, int sep)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!stop && (n = getdelim(&line, &cap, sep, f)) >= 0) {
        if (n > 0 && line[n - 1] == sep)
            n--;
        if (sep == '\n' && n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        if ((rc = produce_one(p, line, (size_t)n)) != 0)
            break;
    }
    free(line);
    return rc;
}

/* The whole of f as one message. */
static int produce_file(struct producer *p, FILE *f)
{
    char *data = NULL;
    size_t len = 0, cap = 0, n;
    int rc = 0;
    do {
        if (len == cap) {
            char *v = realloc(data, cap = cap ? cap * 2 : 65536);
            if (!v) {
                free(data);
                return -1;
            }
            data = v;
        }
        n = fread(data + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    if (ferror(f))
        rc = -1;
    else
        rc = produce_one(p, data, len);
    free(data);
    return rc;
}

static int run_produce(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    struct producer p = {.topic = argv[2], .partition = -1};
    int sep = '\n', nfiles = 0, each_file = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files)
        return 1;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--nul") == 0) {
            sep = '\0';
        } else if (strcmp(a, "--each-file") == 0) {
            each_file = 1;
        } else if (strcmp(a, "--partition") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 0, 100000, &p.partition))
                return usage();
        } else if (strcmp(a, "--spread") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 1, 100000, &p.spread))
                return usage();
        } else if (strcmp(a, "--rate") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 1, 100000000, &p.rate))
                return usage();
        } else if (strcmp(a, "--key") == 0 && i + 1 < argc) {
            p.key = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage();
        } else {
            files[nfiles++] = argv[i];
        }
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", argv[1]) ||
        conf_set(conf, "linger.ms", "20") ||
        conf_set(conf, "compression.type", "lz4") ||
        conf_set(conf, "batch.num.messages", "10000") ||
        conf_set(conf, "queue.buffering.max.kbytes", "65536") ||
        conf_set(conf, "log_level", "3"))
        return 2;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p.rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    p.t0 = now_s();
    int rc = 0;
    if (nfiles == 0) {
        rc = produce_stream(&p, stdin, sep);
    } else {
        for (int i = 0; i < nfiles && rc == 0; i++) {
            FILE *f = strcmp(files[i], "-") == 0 ? stdin : fopen(files[i], "r");
            if (!f) {
                fprintf(stderr, "kafka_mock: %s: %s\n", files[i], strerror(errno));
                rc = -1;
                break;
            }
            rc = each_file ? produce_file(&p, f) : produce_stream(&p, f, sep);
            if (f != stdin)
                fclose(f);
        }
    }
    free(files);
    rd_kafka_flush(p.rk, 120 * 1000);
    if (rd_kafka_outq_len(p.rk) > 0) {
        fprintf(stderr, "kafka_mock: %d messages not delivered\n", rd_kafka_outq_len(p.rk));
        rc = -1;
    }
    rd_kafka_destroy(p.rk);
    fprintf(stderr, "%ld produced\n", delivered);
    return rc || failed ? 1 : 0;
}

/* ---- offsets ------------------------------------------------------------ */

static int run_offsets(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *topic = argv[2], *group = "weir";
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            group = argv[++i];
        else
            return usage();
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", argv[1]) || conf_set(conf, "group.id", group) ||
        conf_set(conf, "log_level", "3"))
        return 2;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int rc = 0;
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (e) {
        fprintf(stderr, "kafka_mock: metadata for %s: %s\n", topic, rd_kafka_err2str(e));
        rc = 1;
    } else {
        int np = md->topics[0].partition_cnt;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
        for (int i = 0; i < np; i++)
            rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id);
        e = rd_kafka_committed(rk, l, 10000);
        for (int i = 0; i < np && !e; i++) {
            int64_t lo = -1, hi = -1;
            rd_kafka_query_watermark_offsets(rk, topic, l->elems[i].partition, &lo, &hi, 10000);
            printf("%" PRId32 " %" PRId64 " %" PRId64 " %" PRId64 "\n", l->elems[i].partition,
                   lo, hi, l->elems[i].offset < 0 ? (int64_t)-1 : l->elems[i].offset);
        }
        if (e) {
            fprintf(stderr, "kafka_mock: committed offsets: %s\n", rd_kafka_err2str(e));
            rc = 1;
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- consume ------------------------------------------------------------ */

static int run_consume(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *topic = argv[2], *header = NULL;
    long count = -1, timeout = 5;
    int from_beginning = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--from-beginning") == 0)
            from_beginning = 1;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 0, 1000000000, &count))
                return usage();
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 1, 3600, &timeout))
                return usage();
        } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc)
            header = argv[++i];
        else
            return usage();
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", argv[1]) || conf_set(conf, "group.id", "kafka_mock") ||
        conf_set(conf, "enable.auto.commit", "false") || conf_set(conf, "log_level", "3"))
        return 2;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (e) {
        fprintf(stderr, "kafka_mock: metadata for %s: %s\n", topic, rd_kafka_err2str(e));
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 1;
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    long n = 0;
    double last = now_s();
    while (!stop && (count < 0 || n < count) && now_s() - last < (double)timeout) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "kafka_mock: consume: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        fwrite(m->key ? m->key : "", 1, m->key ? m->key_len : 0, stdout);
        putchar('\t');
        fwrite(m->payload ? m->payload : "", 1, m->payload ? m->len : 0, stdout);
        if (header) {
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t vn = 0;
            putchar('\t');
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(h, header, &v, &vn) == RD_KAFKA_RESP_ERR_NO_ERROR)
                fwrite(v ? v : "", 1, vn, stdout);
            else
                putchar('-');
        }
        putchar('\n');
        rd_kafka_message_destroy(m);
        n++;
        last = now_s();
    }
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr, "%ld consumed\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "consume") == 0)
        return run_consume(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "produce") == 0)
        return run_produce(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "offsets") == 0)
        return run_offsets(argc - 1, argv + 1);
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return usage();
    return run_cluster(argc, argv);
}
