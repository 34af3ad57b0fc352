/*
 * test_config.c - the config loader: defaults, every key, each error
 * message (with its line), ${ENV} expansion, the value syntaxes, the dump
 * round trip and the file checks.
 *
 * Error cases live in data/config/bad/ (one .yaml each): the first line is
 * "# error: " and the exact message expected, with FILE for the file name.
 * Adding a case is adding a file. Tests run from tests/ (tests/run.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/limits.h"
#include "core/wtime.h"

#define DATA "data/config"

static char cwd[PATH_MAX];

static int setup(void **state)
{
    assert_non_null(getcwd(cwd, sizeof cwd));
    unsetenv("WEIR_TEST_UNSET_VAR");
    return 0;
}

/* Load YAML text named "weir.yaml" from base /base; fail the test on error. */
static void load_ok(const char *yaml, struct weir_config *cfg)
{
    struct weir_errmsg err = {0};
    int rc = config_load_string("weir.yaml", yaml, strlen(yaml), "/base", cfg, &err);
    if (rc)
        fail_msg("unexpected error: %s", err.text);
}

static const char *load_err(const char *yaml, struct weir_errmsg *err)
{
    struct weir_config cfg;
    int rc = config_load_string("weir.yaml", yaml, strlen(yaml), "/base", &cfg, err);
    assert_int_equal(rc, WEIR_ECONFIG);
    assert_null(cfg.pipelines);
    config_release(&cfg);
    return err->text;
}

static void test_defaults(void **state)
{
    struct weir_config cfg;
    struct weir_errmsg err = {0};
    char want[PATH_MAX + 32];
    assert_int_equal(config_load(NULL, &cfg, &err), 0);
    assert_string_equal(cfg.file, "<default>");
    snprintf(want, sizeof want, "%s/weir-data", cwd);
    assert_string_equal(cfg.data_dir, want);
    assert_true(cfg.node[0] != '\0');
    assert_true(cfg.workers >= 1);
    assert_true(cfg.grace_ns == 300 * WTIME_NS_PER_S);
    assert_true(cfg.drain_timeout_ns == 5 * WTIME_NS_PER_S);
    assert_true(cfg.metrics_enabled);
    assert_string_equal(cfg.metrics.host, "127.0.0.1");
    assert_int_equal(cfg.metrics.port, 7690);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.log_format, LOG_TEXT);
    assert_int_equal(cfg.limits.max_record, WEIR_DEFAULT_MAX_RECORD);
    assert_int_equal(cfg.limits.max_depth, WEIR_DEFAULT_MAX_DEPTH);
    assert_int_equal(cfg.limits.max_connections, WEIR_DEFAULT_MAX_CONNECTIONS);
    assert_int_equal(cfg.limits.max_pending, WEIR_DEFAULT_MAX_PENDING);
    assert_int_equal(cfg.limits.max_open_partitions, WEIR_DEFAULT_MAX_OPEN_PARTITIONS);

    assert_int_equal(cfg.npipelines, 1);
    const struct config_pipeline *p = config_pipeline(&cfg, "default");
    assert_ptr_equal(p, &cfg.pipelines[0]);
    assert_int_equal(p->source.kind, CONFIG_SOURCE_TCP);
    assert_string_equal(p->source.tcp.host, "127.0.0.1");
    assert_int_equal(p->source.tcp.port, 7601);
    assert_int_equal(p->source.framing, CONFIG_FRAMING_NDJSON);
    assert_int_equal(p->source.nallow, 0);
    assert_null(p->source.tls.cert);
    assert_null(p->schema); /* any JSON object */
    assert_false(p->lax);
    assert_false(p->format_assert);
    assert_string_equal(p->time_field, "timestamp");
    assert_int_equal(p->time_unit, CONFIG_TIME_S);
    assert_int_equal(p->partition, CONFIG_PARTITION_HOUR);
    assert_true(p->time_max_ahead_ns == WTIME_NS_PER_DAY);
    assert_true(p->time_max_age_ns == 30 * WTIME_NS_PER_DAY);
    assert_int_equal(p->compaction, CONFIG_COMPACTION_AUTO);
    assert_int_equal(p->fsync, CONFIG_FSYNC_GROUP);
    assert_true(p->fsync_interval_ns == 100 * WTIME_NS_PER_MS);
    assert_int_equal(p->fsync_bytes, 4u << 20);
    assert_int_equal(p->segment_bytes, 256u << 20);
    assert_int_equal(p->max_record, WEIR_DEFAULT_MAX_RECORD);
    assert_true(p->retention.raw_ns == CONFIG_OFF);
    assert_true(p->retention.parquet_ns == CONFIG_OFF);
    assert_true(p->retention.quarantine_ns == CONFIG_OFF);
    assert_null(p->transform);
    assert_null(p->sink_kafka);
    assert_int_equal(cfg.nmodels, 0);
    assert_int_equal(cfg.ndimensions, 0);
    assert_null(config_pipeline(&cfg, "nope"));
    assert_null(config_model(&cfg, "default"));
    config_release(&cfg);
    config_release(&cfg); /* twice is safe */
}

/* An empty file, or one with only comments, is the defaults. A file
 * without "pipelines" gets the default pipeline. */
static void test_empty_and_partial(void **state)
{
    struct weir_config cfg;
    load_ok("", &cfg);
    assert_int_equal(cfg.npipelines, 1);
    assert_string_equal(cfg.data_dir, "/base/weir-data");
    config_release(&cfg);
    load_ok("# nothing\n", &cfg);
    assert_string_equal(cfg.pipelines[0].name, "default");
    config_release(&cfg);
    load_ok("data_dir: /var/lib/weir\ngrace: 1m\n", &cfg);
    assert_string_equal(cfg.data_dir, "/var/lib/weir");
    assert_true(cfg.grace_ns == 60 * WTIME_NS_PER_S);
    assert_string_equal(cfg.pipelines[0].name, "default");
    config_release(&cfg);
    /* A null value means the default, as an absent key does. */
    load_ok("data_dir:\nlimits:\npipelines:\n  - name: a\n    schema: ~\n", &cfg);
    assert_string_equal(cfg.data_dir, "/base/weir-data");
    assert_null(cfg.pipelines[0].schema);
    config_release(&cfg);
}

static void test_every_key(void **state)
{
    struct weir_config cfg;
    struct weir_errmsg err = {0};
    char dir[PATH_MAX + 64], want[PATH_MAX + 128];
    int rc = config_load(DATA "/full.yaml", &cfg, &err);
    if (rc)
        fail_msg("%s", err.text);
    snprintf(dir, sizeof dir, "%s/" DATA, cwd);
    assert_string_equal(cfg.file, DATA "/full.yaml");
    assert_string_equal(cfg.dir, dir);
    snprintf(want, sizeof want, "%s/lake", dir);
    assert_string_equal(cfg.data_dir, want);
    assert_string_equal(cfg.node, "edge-7.plant_a");
    assert_int_equal(cfg.workers, 3);
    assert_true(cfg.grace_ns == 600 * WTIME_NS_PER_S);
    assert_true(cfg.drain_timeout_ns == 2 * WTIME_NS_PER_S);
    assert_string_equal(cfg.metrics.host, "::1");
    assert_int_equal(cfg.metrics.port, 9100);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(cfg.log_format, LOG_JSON);
    assert_int_equal(cfg.limits.max_record, 2u << 20);
    assert_int_equal(cfg.limits.max_depth, 64);
    assert_int_equal(cfg.limits.max_connections, 100);
    assert_int_equal(cfg.limits.max_pending, 32000000);
    assert_int_equal(cfg.limits.max_open_partitions, 8);

    assert_int_equal(cfg.npipelines, 3);
    const struct config_pipeline *p = &cfg.pipelines[0];
    assert_string_equal(p->name, "telemetry");
    assert_int_equal(p->line, 19);
    assert_int_equal(p->source.kind, CONFIG_SOURCE_TCP);
    assert_string_equal(p->source.tcp.host, "0.0.0.0");
    assert_int_equal(p->source.tcp.port, 7700);
    assert_int_equal(p->source.nallow, 3);
    assert_int_equal(p->source.allow[0].family, AF_INET);
    assert_int_equal(p->source.allow[0].prefix, 8);
    assert_int_equal(p->source.allow[1].prefix, 32);
    assert_int_equal(p->source.allow[2].family, AF_INET6);
    snprintf(want, sizeof want, "%s/tls/server.pem", dir);
    assert_string_equal(p->source.tls.cert, want);
    snprintf(want, sizeof want, "%s/tls/server.key", dir);
    assert_string_equal(p->source.tls.key, want);
    assert_string_equal(p->source.tls.ca, "/etc/weir/ca.pem");
    snprintf(want, sizeof want, "%s/schemas/telemetry.schema.json", dir);
    assert_string_equal(p->schema, want);
    assert_true(p->lax);
    assert_true(p->format_assert);
    assert_string_equal(p->time_field, "meta.ts");
    assert_int_equal(p->time_unit, CONFIG_TIME_MS);
    assert_int_equal(p->partition, CONFIG_PARTITION_DAY);
    assert_true(p->time_max_ahead_ns == 2 * WTIME_NS_PER_HOUR);
    assert_true(p->time_max_age_ns == CONFIG_OFF);
    assert_int_equal(p->compaction, CONFIG_COMPACTION_MANUAL);
    assert_int_equal(p->fsync, CONFIG_FSYNC_ALWAYS);
    assert_true(p->fsync_interval_ns == 50 * WTIME_NS_PER_MS);
    assert_int_equal(p->fsync_bytes, 1u << 20);
    assert_int_equal(p->segment_bytes, 64u << 20);
    assert_int_equal(p->max_record, 512u << 10);
    assert_true(p->retention.raw_ns == 7 * WTIME_NS_PER_DAY);
    assert_true(p->retention.parquet_ns == 365 * WTIME_NS_PER_DAY);
    assert_true(p->retention.quarantine_ns == 30 * WTIME_NS_PER_DAY);
    assert_null(p->transform);
    assert_non_null(p->sink_kafka);
    assert_string_equal(p->sink_kafka->brokers, "k1:9092,k2:9092");
    assert_string_equal(p->sink_kafka->topic, "central");
    assert_string_equal(p->sink_kafka->key, "sensor_id");
    assert_int_equal(p->sink_kafka->noptions, 2);
    assert_string_equal(p->sink_kafka->options[0], "message.timeout.ms=60000");
    assert_string_equal(p->sink_kafka->options[1], "sasl.password=hush");

    p = &cfg.pipelines[1];
    assert_string_equal(p->name, "plant_kafka");
    assert_int_equal(p->source.kind, CONFIG_SOURCE_KAFKA);
    const struct config_kafka_source *k = &p->source.kafka;
    assert_string_equal(k->brokers, "127.0.0.1:9092,PLAINTEXT://k3:9093");
    assert_int_equal(k->ntopics, 2);
    assert_string_equal(k->topics[0], "telemetry");
    assert_string_equal(k->topics[1], "telemetry.v2");
    assert_string_equal(k->group, "edge");
    assert_int_equal(k->format, CONFIG_PAYLOAD_PROTOBUF);
    snprintf(want, sizeof want, "%s/proto/telemetry.desc", dir);
    assert_string_equal(k->descriptor_set, want);
    assert_string_equal(k->message, "plant.v1.Reading");
    assert_int_equal(k->batch.max_records, 500);
    assert_int_equal(k->batch.max_bytes, 1000000);
    assert_true(k->batch.max_wait_ns == 2 * WTIME_NS_PER_S);
    assert_int_equal(k->noptions, 3);
    assert_string_equal(k->options[0], "session.timeout.ms=10000");
    assert_string_equal(k->options[1], "security.protocol=sasl_plaintext");
    assert_string_equal(k->options[2], "sasl.password=s3cret");
    assert_int_equal(p->time_unit, CONFIG_TIME_RFC3339);
    assert_int_equal(p->fsync, CONFIG_FSYNC_NEVER);
    snprintf(want, sizeof want, "%s/sql/clean.sql", dir);
    assert_string_equal(p->transform, want);
    assert_string_equal(p->transform_name, "clean");
    /* The transform's dataset: a pipeline of its own, after the others. */
    const struct config_pipeline *dp = &cfg.pipelines[2];
    assert_string_equal(dp->name, "clean");
    assert_int_equal(dp->source.kind, CONFIG_SOURCE_DERIVED);
    assert_string_equal(dp->derived_from, "plant_kafka");
    assert_null(dp->transform);
    assert_int_equal(dp->time_unit, CONFIG_TIME_RFC3339);
    assert_int_equal(dp->fsync, CONFIG_FSYNC_NEVER);
    snprintf(want, sizeof want, "%s/clean/_schema.json", cfg.data_dir);
    assert_string_equal(dp->schema, want);
    assert_int_equal(p->max_record, 2u << 20); /* from limits.max_record */

    assert_int_equal(cfg.ndimensions, 2);
    const struct config_dimension *d = config_dimension(&cfg, "sensors");
    assert_non_null(d);
    snprintf(want, sizeof want, "%s/dims/sensors.csv", dir);
    assert_string_equal(d->path, want);
    assert_string_equal(config_dimension(&cfg, "sites")->path, "/srv/dims/sites.parquet");

    assert_int_equal(cfg.nmodels, 2);
    const struct config_model *m = config_model(&cfg, "hourly_temperature");
    assert_non_null(m);
    snprintf(want, sizeof want, "%s/models/hourly.sql", dir);
    assert_string_equal(m->sql, want);
    assert_int_equal(m->ninputs, 2);
    assert_string_equal(m->inputs[1], "plant_kafka");
    assert_int_equal(m->grain, CONFIG_PARTITION_HOUR);
    assert_int_equal(m->noutputs, 5);
    assert_int_equal(m->outputs[0].kind, CONFIG_OUTPUT_LAKE);
    assert_int_equal(m->outputs[1].kind, CONFIG_OUTPUT_POSTGRES);
    assert_string_equal(m->outputs[1].dsn, "host=127.0.0.1 dbname=wh user=weir password=s3cret");
    assert_string_equal(m->outputs[1].table, "wh.hourly");
    assert_int_equal(m->outputs[2].kind, CONFIG_OUTPUT_MYSQL);
    assert_string_equal(m->outputs[2].table, "hourly_temperature"); /* default: model name */
    assert_int_equal(m->outputs[3].kind, CONFIG_OUTPUT_PARQUET);
    snprintf(want, sizeof want, "%s/export/hourly", dir);
    assert_string_equal(m->outputs[3].path, want);
    assert_int_equal(m->outputs[4].kind, CONFIG_OUTPUT_KAFKA);
    assert_string_equal(m->outputs[4].kafka.topic, "hourly");
    assert_null(m->outputs[4].kafka.key);
    m = config_model(&cfg, "daily_temperature");
    assert_int_equal(m->grain, CONFIG_PARTITION_DAY);
    assert_int_equal(m->ninputs, 1);
    assert_string_equal(m->inputs[0], "hourly_temperature");
    assert_int_equal(m->noutputs, 1); /* default: lake */
    assert_int_equal(m->outputs[0].kind, CONFIG_OUTPUT_LAKE);
    config_release(&cfg);
}

/* Every file in data/config/bad/ must fail with the message on its first
 * line. */
static void test_error_messages(void **state)
{
    DIR *dir = opendir(DATA "/bad");
    struct dirent *de;
    int n = 0, bad = 0;
    assert_non_null(dir);
    setenv("WEIR_TEST_UNIT", "seconds", 1);
    while ((de = readdir(dir))) {
        char path[512], line[1024], want[1600];
        if (!strstr(de->d_name, ".yaml"))
            continue;
        snprintf(path, sizeof path, DATA "/bad/%s", de->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        assert_true(strncmp(line, "# error: FILE", 13) == 0);
        snprintf(want, sizeof want, "%s%s", path, line + 13);

        struct weir_config cfg;
        struct weir_errmsg err = {0};
        int rc = config_load(path, &cfg, &err);
        if (rc != WEIR_ECONFIG || strcmp(err.text, want) != 0) {
            print_error("%s:\n  want: %s\n  got:  %s (rc %d)\n", de->d_name, want, err.text, rc);
            bad++;
        }
        config_release(&cfg);
        n++;
    }
    closedir(dir);
    unsetenv("WEIR_TEST_UNIT");
    assert_true(n >= 60);
    assert_int_equal(bad, 0);
}

static void test_env_expansion(void **state)
{
    struct weir_config cfg;
    struct weir_errmsg err;
    setenv("WEIR_TEST_PW", "s3cret", 1);
    setenv("WEIR_TEST_EMPTY", "", 1);
    setenv("WEIR_TEST_PORT", "7999", 1);
    setenv("WEIR_TEST_DIR", "/data/weir", 1);
    load_ok("data_dir: ${WEIR_TEST_DIR}/lake\n"
            "pipelines:\n"
            "  - name: t\n"
            "    source: {tcp: \"127.0.0.1:${WEIR_TEST_PORT}\"}\n"
            "models:\n"
            "  - name: m\n"
            "    sql: m.sql\n"
            "    inputs: [t]\n"
            "    outputs:\n"
            "      - postgres: {dsn: \"user=w password=${WEIR_TEST_PW} x=${WEIR_TEST_UNSET_VAR:-d1}"
            " y=${WEIR_TEST_EMPTY:-d2} z=${WEIR_TEST_EMPTY} cost=$5 lit=$${HOME}\"}\n",
            &cfg);
    assert_string_equal(cfg.data_dir, "/data/weir/lake");
    assert_int_equal(cfg.pipelines[0].source.tcp.port, 7999);
    assert_string_equal(cfg.models[0].outputs[0].dsn,
                        "user=w password=s3cret x=d1 y=d2 z= cost=$5 lit=${HOME}");
    /* The dump masks the password and keeps the literal ${ literal. */
    struct buf b = BUF_INIT(1 << 20);
    assert_int_equal(config_dump(&cfg, &b), 0);
    assert_null(strstr(b.data, "s3cret"));
    assert_non_null(strstr(b.data, "password=****"));
    assert_non_null(strstr(b.data, "lit=$${HOME}"));
    buf_release(&b);
    config_release(&cfg);

    /* Expansion never reaches keys, and an unset variable names itself. */
    load_err("data_dir: ${WEIR_TEST_UNSET_VAR}\n", &err);
    assert_string_equal(err.text, "weir.yaml:1: data_dir: environment variable "
                        "WEIR_TEST_UNSET_VAR is not set (set it, or give a default: "
                        "${WEIR_TEST_UNSET_VAR:-default})");
    load_err("data_dir: \"${WEIR_TEST_UNSET_VAR:-x\"\n", &err);
    assert_string_equal(err.text, "weir.yaml:1: data_dir: '${WEIR_TEST_UNSET_VAR:-' has no "
                        "closing '}'");
    /* A secret that makes a value wrong is not shown in the message. */
    setenv("WEIR_TEST_PW", "hunter2", 1);
    load_err("grace: ${WEIR_TEST_PW}\n", &err);
    assert_null(strstr(err.text, "hunter2"));
    assert_non_null(strstr(err.text, "'${WEIR_TEST_PW}' (expanded)"));
    unsetenv("WEIR_TEST_PW");
    unsetenv("WEIR_TEST_EMPTY");
    unsetenv("WEIR_TEST_PORT");
    unsetenv("WEIR_TEST_DIR");
}

static void test_paths(void **state)
{
    struct weir_config cfg;
    load_ok("data_dir: ./a/./b//c/\n"
            "pipelines:\n"
            "  - name: t\n"
            "    schema: ../schemas/t.json\n"
            "    source: {kafka: {brokers: 127.0.0.1:9092, topic: t}}\n"
            "    transform: /abs/./x.sql\n", &cfg);
    assert_string_equal(cfg.data_dir, "/base/a/b/c");
    assert_string_equal(cfg.pipelines[0].schema, "/base/../schemas/t.json");
    assert_string_equal(cfg.pipelines[0].transform, "/abs/x.sql");
    assert_string_equal(cfg.pipelines[1].name, "t_transformed");
    config_release(&cfg);

    /* Relative base: against the working directory. */
    struct weir_errmsg err;
    char want[PATH_MAX + 64];
    const char *y = "data_dir: d\n";
    assert_int_equal(config_load_string("x.yaml", y, strlen(y), "rel/dir", &cfg, &err), 0);
    snprintf(want, sizeof want, "%s/rel/dir/d", cwd);
    assert_string_equal(cfg.data_dir, want);
    config_release(&cfg);
    assert_int_equal(config_load_string(NULL, y, strlen(y), NULL, &cfg, &err), 0);
    snprintf(want, sizeof want, "%s/d", cwd);
    assert_string_equal(cfg.data_dir, want);
    assert_string_equal(cfg.file, "<config>");
    config_release(&cfg);
}

static void test_values_misc(void **state)
{
    struct weir_config cfg;
    load_ok("workers: auto\nmetrics: off\nnode: n1\n"
            "pipelines:\n"
            "  - name: _a1\n"
            "    source: {tcp: \"[::]:0\", allow: 10.1.2.3/16}\n"
            "    time_max_ahead: 0\n"
            "    retention: {raw: off}\n"
            "  - name: b\n"
            "    source: {tcp: \"127.0.0.1:0\"}\n" /* port 0 never clashes */
            "    time_unit: ns\n",
            &cfg);
    assert_true(cfg.workers >= 1);
    assert_false(cfg.metrics_enabled);
    assert_string_equal(cfg.node, "n1");
    const struct config_pipeline *p = &cfg.pipelines[0];
    assert_string_equal(p->source.tcp.host, "::");
    assert_int_equal(p->source.tcp.port, 0);
    assert_int_equal(p->source.nallow, 1);
    assert_int_equal(p->source.allow[0].prefix, 16);
    assert_int_equal(p->source.allow[0].addr[2], 0); /* masked */
    assert_true(p->time_max_ahead_ns == 0);
    assert_int_equal(cfg.pipelines[1].time_unit, CONFIG_TIME_NS);
    config_release(&cfg);

    struct weir_errmsg err;
    /* A name at the length limit passes, one more fails. */
    char y[256];
    snprintf(y, sizeof y, "pipelines:\n  - name: %.*s\n", CONFIG_NAME_MAX,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    load_ok(y, &cfg);
    config_release(&cfg);
    snprintf(y, sizeof y, "pipelines:\n  - name: %.*s\n", CONFIG_NAME_MAX + 1,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_non_null(strstr(load_err(y, &err), "is longer than 63 characters"));
    assert_non_null(strstr(load_err("data_dir: \"a\\0b\"\n", &err), "contains a NUL"));
    assert_non_null(strstr(load_err("data_dir: \"\"\n", &err), "data_dir: must not be empty"));
    /* Text only: a lone surrogate from an escape (libyaml refuses it), or
     * bytes from the environment that are not UTF-8, are refused. */
    assert_string_equal(load_err("data_dir: \"\\uD800\"\n", &err),
                        "weir.yaml:1: YAML: found invalid Unicode character escape code "
                        "while parsing a quoted scalar");
    setenv("WEIR_TEST_BYTES", "\xff\xfe", 1);
    assert_string_equal(load_err("data_dir: ${WEIR_TEST_BYTES}\n", &err),
                        "weir.yaml:1: data_dir: is not valid UTF-8 text after ${} expansion");
    unsetenv("WEIR_TEST_BYTES");
    /* Characters YAML would not read back verbatim survive the dump. */
    load_ok("data_dir: \"/a\\Nb\\x80c\\Ld\\uFEFFe\\t\\x01\u00e9\U0001F600\"\n", &cfg);
    struct buf b = BUF_INIT(1 << 20);
    assert_int_equal(config_dump(&cfg, &b), 0);
    assert_non_null(strstr(b.data, "data_dir: \"/a\\x85b\\x80c\\u2028d\\ufeffe\\x09\\x01\u00e9\U0001F600\"\n"));
    struct weir_config again;
    assert_int_equal(config_load_string("d.yaml", b.data, b.len, "/", &again, &err), 0);
    assert_string_equal(again.data_dir, cfg.data_dir);
    config_release(&again);
    config_release(&cfg);
    buf_release(&b);
}

static void test_transform(void **state)
{
    struct weir_errmsg err;
    struct weir_config cfg;
    const char *kafka = "    source: {kafka: {brokers: 127.0.0.1:9092, topic: t}}\n";
    char y[1024];
    /* only Kafka pipelines */
    assert_non_null(strstr(load_err("pipelines:\n  - name: a\n    transform: x.sql\n", &err),
                           "reads TCP"));
    /* the derived name is taken */
    snprintf(y, sizeof y, "pipelines:\n  - name: a\n%s    transform: {sql: x.sql, name: b}\n"
             "  - name: b\n", kafka);
    assert_non_null(strstr(load_err(y, &err), "'b' is already the name of"));
    snprintf(y, sizeof y, "pipelines:\n  - name: a\n%s    transform: x.sql\n"
             "dimensions:\n  a_transformed: d.csv\n", kafka);
    assert_non_null(strstr(load_err(y, &err), "already the name of pipeline 'a_transformed'"));
    snprintf(y, sizeof y, "pipelines:\n  - name: a\n%s    transform: {name: b}\n", kafka);
    assert_non_null(strstr(load_err(y, &err), "missing key 'sql'"));
    /* a model may read the derived dataset */
    snprintf(y, sizeof y, "pipelines:\n  - name: a\n%s    transform: {sql: x.sql, name: b}\n"
             "models:\n  - name: m\n    sql: m.sql\n    inputs: [b]\n", kafka);
    load_ok(y, &cfg);
    assert_int_equal(cfg.npipelines, 2);
    assert_string_equal(cfg.pipelines[1].name, "b");
    assert_string_equal(cfg.models[0].inputs[0], "b");
    config_release(&cfg);
}

static void test_tls_and_idle(void **state)
{
    struct weir_config cfg;
    struct weir_errmsg err;
    load_ok("pipelines:\n"
            "  - name: a\n"
            "    source: {tcp: \"127.0.0.1:0\", tls: {cert: c.pem, key: k.pem}}\n"
            "  - name: b\n"
            "    source:\n"
            "      tcp: \"127.0.0.1:0\"\n"
            "      idle_timeout: off\n"
            "      tls: {cert: c.pem, key: k.pem, ca: ca.pem, handshake_timeout: 500ms}\n",
            &cfg);
    const struct config_pipeline *a = &cfg.pipelines[0], *b = &cfg.pipelines[1];
    assert_true(a->source.idle_timeout_ns == WEIR_DEFAULT_IDLE_TIMEOUT_MS * WTIME_NS_PER_MS);
    assert_true(a->source.tls.handshake_timeout_ns ==
                WEIR_DEFAULT_TLS_HANDSHAKE_MS * WTIME_NS_PER_MS);
    assert_string_equal(a->source.tls.cert, "/base/c.pem");
    assert_null(a->source.tls.ca);
    assert_true(b->source.idle_timeout_ns == CONFIG_OFF);
    assert_true(b->source.tls.handshake_timeout_ns == 500 * WTIME_NS_PER_MS);
    assert_string_equal(b->source.tls.ca, "/base/ca.pem");
    /* The dump reads back to the same values. */
    struct buf out = BUF_INIT(1u << 20);
    struct weir_config again;
    assert_int_equal(config_dump(&cfg, &out), 0);
    assert_int_equal(config_load_string("dump", out.data, out.len, "/base", &again, &err), 0);
    assert_true(again.pipelines[1].source.idle_timeout_ns == CONFIG_OFF);
    assert_true(again.pipelines[1].source.tls.handshake_timeout_ns == 500 * WTIME_NS_PER_MS);
    assert_true(again.pipelines[0].source.idle_timeout_ns == a->source.idle_timeout_ns);
    config_release(&again);
    buf_release(&out);
    config_release(&cfg);

    assert_non_null(strstr(load_err("pipelines:\n  - name: a\n"
                                    "    source: {tcp: \"127.0.0.1:0\", idle_timeout: 10ms}\n",
                                    &err), "is out of range: 1s to"));
    assert_non_null(strstr(load_err("pipelines:\n  - name: a\n"
                                    "    source: {tcp: \"127.0.0.1:0\", tls: {cert: c, key: k, "
                                    "handshake_timeout: off}}\n", &err),
                           "handshake_timeout"));
    assert_non_null(strstr(load_err("pipelines:\n  - name: a\n"
                                    "    source: {kafka: {brokers: \"127.0.0.1:9092\", topic: t}, "
                                    "idle_timeout: 1m}\n", &err),
                           "idle_timeout applies to tcp sources"));
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0}, {"4096", 4096}, {"4096B", 4096}, {"4KiB", 4096}, {"4 KiB", 4096},
        {"4MiB", 4u << 20}, {"1GiB", 1u << 30}, {"2TiB", UINT64_C(2) << 40},
        {"4kB", 4000}, {"4KB", 4000}, {"4MB", 4000000}, {"1GB", 1000000000},
        {"1TB", UINT64_C(1000000000000)}, {"16383PiB", 0},
    };
    static const char *const bad[] = {"", "x", "-1", "4M", "4K", "4 ", " 4", "4  MiB",
                                      "4mib", "1.5GiB", "99999999999999999999",
                                      "17179869184GiB", "4MiBs", "MiB"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        if (ok[i].v == 0 && strcmp(ok[i].s, "0") != 0) {
            assert_int_equal(config_parse_size(ok[i].s, &v), WEIR_EPARSE); /* PiB unknown */
            continue;
        }
        assert_int_equal(config_parse_size(ok[i].s, &v), 0);
        assert_true(v == ok[i].v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v;
        if (config_parse_size(bad[i], &v) != WEIR_EPARSE)
            fail_msg("'%s' parsed", bad[i]);
    }
    char t[32];
    config_format_size(4u << 20, t, sizeof t);
    assert_string_equal(t, "4MiB");
    config_format_size(1536u << 10, t, sizeof t);
    assert_string_equal(t, "1536KiB");
    config_format_size(1000, t, sizeof t);
    assert_string_equal(t, "1000");
    config_format_size(0, t, sizeof t);
    assert_string_equal(t, "0");
    config_format_duration(CONFIG_OFF, t, sizeof t);
    assert_string_equal(t, "off");
    config_format_duration(0, t, sizeof t);
    assert_string_equal(t, "0s");
    config_format_duration(90 * WTIME_NS_PER_S, t, sizeof t);
    assert_string_equal(t, "90s");
    config_format_duration(1500 * WTIME_NS_PER_MS, t, sizeof t);
    assert_string_equal(t, "1500ms");
    config_format_duration(7 * WTIME_NS_PER_DAY, t, sizeof t);
    assert_string_equal(t, "7d");
    config_format_duration(1001, t, sizeof t);
    assert_string_equal(t, "1001ns");
}

static void test_parse_addr(void **state)
{
    struct config_addr a;
    char t[300];
    assert_int_equal(config_parse_addr("127.0.0.1:7601", &a), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 7601);
    assert_int_equal(config_parse_addr("[::1]:80", &a), 0);
    assert_string_equal(a.host, "::1");
    config_format_addr(&a, t, sizeof t);
    assert_string_equal(t, "[::1]:80");
    assert_int_equal(config_parse_addr("plant-1.example:65535", &a), 0);
    assert_int_equal(a.port, 65535);
    assert_int_equal(config_parse_addr("0.0.0.0:0", &a), 0);
    static const char *const bad[] = {
        ":7601", "*:7601", "7601", "host", "host:", "host:65536", "host:-1", "host:+1",
        "host:80x", "::1:80", "[::1]80", "[]:80", "[nothost]:80", "[::1]:", "a b:80",
        "host:123456", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_addr(bad[i], &a) != WEIR_EPARSE)
            fail_msg("'%s' parsed", bad[i]);
}

static void test_cidr_allow(void **state)
{
    struct config_cidr c[3];
    struct config_source src = {0};
    struct sockaddr_in in = {0};
    struct sockaddr_in6 in6 = {0};
    assert_int_equal(config_parse_cidr("10.0.0.0/8", &c[0]), 0);
    assert_int_equal(config_parse_cidr("192.168.1.7", &c[1]), 0);
    assert_int_equal(config_parse_cidr("fd00::/8", &c[2]), 0);
    src.allow = c;
    src.nallow = 3;
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "10.200.3.4", &in.sin_addr);
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.1.7", &in.sin_addr);
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.1.8", &in.sin_addr);
    assert_false(config_allow_peer(&src, (struct sockaddr *)&in));
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "fd12::1", &in6.sin6_addr);
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    assert_false(config_allow_peer(&src, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "::ffff:10.1.1.1", &in6.sin6_addr); /* v4-mapped */
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in6));
    src.nallow = 0; /* empty list: everyone */
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in6));
    assert_int_equal(config_parse_cidr("10.0.0.0/12", &c[0]), 0);
    src.nallow = 1;
    inet_pton(AF_INET, "10.15.255.255", &in.sin_addr);
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in));
    inet_pton(AF_INET, "10.16.0.0", &in.sin_addr);
    assert_false(config_allow_peer(&src, (struct sockaddr *)&in));
    assert_int_equal(config_parse_cidr("0.0.0.0/0", &c[0]), 0);
    assert_true(config_allow_peer(&src, (struct sockaddr *)&in));
    static const char *const bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129",
                                      "10.0.0/8", "host/8", "10.0.0.0/8x", "10.0.0.0/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_cidr(bad[i], &c[0]) != WEIR_EPARSE)
            fail_msg("'%s' parsed", bad[i]);
}

static void test_mask_dsn(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"host=x user=weir password=s3cret dbname=wh", "host=x user=weir password=**** dbname=wh"},
        {"password='a b\\' c' host=x", "password=**** host=x"},
        {"password='a b'tail host=x", "password=**** host=x"},
        {"password=**** host=x", "password=**** host=x"},
        {"host=x PASSWORD = secret", "host=x PASSWORD = ****"},
        {"Server=x;Uid=u;Pwd=secret;Database=d", "Server=x;Uid=u;Pwd=****;Database=d"},
        {"host=x passfile=/p", "host=x passfile=/p"},
        {"postgresql://weir:s3cret@127.0.0.1:5432/wh", "postgresql://weir:****@127.0.0.1:5432/wh"},
        {"postgres://weir@h/db?sslmode=require&password=s3cret",
         "postgres://weir@h/db?sslmode=require&password=****"},
        {"mysql://u:p@ss:w@h/db", "mysql://u:****@h/db"},
        {"mysql://h/db", "mysql://h/db"},
        {"", ""},
        {"host=x", "host=x"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = config_mask_dsn(cases[i].in, out, sizeof out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(cases[i].out));
    }
    /* Truncation: snprintf-like. */
    char small[8];
    size_t n = config_mask_dsn("password=abc host=x", small, sizeof small);
    assert_int_equal(n, strlen("password=**** host=x"));
    assert_string_equal(small, "passwor");
    assert_int_equal(config_mask_dsn("password=abc", NULL, 0), 13);
}

/* The dump reads back to the same config (so it is the whole truth). */
static void roundtrip(const char *path)
{
    struct weir_config a, b;
    struct weir_errmsg err = {0};
    struct buf d1 = BUF_INIT(1 << 20), d2 = BUF_INIT(1 << 20);
    if (config_load(path, &a, &err))
        fail_msg("%s", err.text);
    assert_int_equal(config_dump(&a, &d1), 0);
    if (config_load_string(path, d1.data, d1.len, "/elsewhere", &b, &err))
        fail_msg("dump does not load: %s\n%s", err.text, d1.data);
    assert_int_equal(config_dump(&b, &d2), 0);
    assert_string_equal(d1.data, d2.data);
    assert_int_equal(a.npipelines, b.npipelines);
    assert_int_equal(a.nmodels, b.nmodels);
    assert_int_equal(a.workers, b.workers);
    buf_release(&d1);
    buf_release(&d2);
    config_release(&a);
    config_release(&b);
}

static void test_dump_roundtrip(void **state)
{
    roundtrip(DATA "/full.yaml");
    roundtrip("../examples/weir.yaml");
    struct weir_config cfg;
    struct weir_errmsg err;
    struct buf d = BUF_INIT(1 << 20);
    assert_int_equal(config_load(DATA "/full.yaml", &cfg, &err), 0);
    assert_int_equal(config_dump(&cfg, &d), 0);
    assert_null(strstr(d.data, "s3cret"));
    assert_non_null(strstr(d.data, "metrics: \"[::1]:9100\"\n"));
    assert_non_null(strstr(d.data, "allow: [\"10.0.0.0/8\", \"192.168.1.7/32\", \"fd00::/8\"]\n"));
    assert_non_null(strstr(d.data, "    time_max_age: off\n"));
    assert_non_null(strstr(d.data, "          session.timeout.ms: \"10000\"\n"));
    assert_non_null(strstr(d.data, "          sasl.password: \"***\"\n"));
    buf_release(&d);
    config_release(&cfg);
}

static void test_example(void **state)
{
    struct weir_config cfg;
    struct weir_errmsg err = {0};
    setenv("WEIR_PG_PASSWORD", "pgpw", 1);
    if (config_load("../examples/weir.yaml", &cfg, &err))
        fail_msg("%s", err.text);
    unsetenv("WEIR_PG_PASSWORD");
    assert_int_equal(cfg.npipelines, 2);
    assert_int_equal(cfg.pipelines[1].source.kind, CONFIG_SOURCE_KAFKA);
    assert_non_null(strstr(cfg.pipelines[0].schema, "/examples/telemetry.schema.json"));
    const struct config_model *m = config_model(&cfg, "hourly_temperature");
    assert_non_null(m);
    assert_int_equal(m->noutputs, 3);
    assert_int_equal(m->outputs[1].kind, CONFIG_OUTPUT_POSTGRES);
    assert_non_null(strstr(m->outputs[1].dsn, "password=pgpw"));
    assert_non_null(strstr(m->outputs[2].dsn, "password=weir")); /* the default */
    assert_non_null(config_dimension(&cfg, "sensors"));
    config_release(&cfg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_check_files(void **state)
{
    char dir[] = "/tmp/weir-config-test.XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/weir.yaml", dir);
    write_file(path, "pipelines:\n"
                     "  - name: t\n"
                     "    schema: t.json\n"
                     "dimensions:\n"
                     "  s: s.csv\n"
                     "models:\n"
                     "  - name: m\n"
                     "    sql: m.sql\n"
                     "    inputs: [t]\n");
    struct weir_config cfg;
    struct weir_errmsg err;
    char want[512];
    assert_int_equal(config_load(path, &cfg, &err), 0);
    assert_int_equal(config_check_files(&cfg, &err), WEIR_ECONFIG);
    snprintf(want, sizeof want, "%s:2: pipelines[0].schema: %s/t.json: No such file or directory",
             path, dir);
    assert_string_equal(err.text, want);
    snprintf(path, sizeof path, "%s/t.json", dir);
    write_file(path, "{}");
    assert_int_equal(config_check_files(&cfg, &err), WEIR_ECONFIG);
    assert_non_null(strstr(err.text, ":5: dimensions.s: "));
    snprintf(path, sizeof path, "%s/s.csv", dir);
    write_file(path, "a\n1\n");
    assert_int_equal(config_check_files(&cfg, &err), WEIR_ECONFIG);
    assert_non_null(strstr(err.text, ":7: models[0].sql: "));
    snprintf(path, sizeof path, "%s/m.sql", dir);
    mkdir(path, 0700); /* a directory where a file should be */
    assert_int_equal(config_check_files(&cfg, &err), WEIR_ECONFIG);
    assert_non_null(strstr(err.text, "m.sql: not a regular file"));
    rmdir(path);
    write_file(path, "select 1");
    assert_int_equal(config_check_files(&cfg, &err), 0);
    /* data_dir may be missing (created on demand) but not a file. */
    snprintf(path, sizeof path, "%s/weir-data", dir);
    write_file(path, "x");
    assert_int_equal(config_check_files(&cfg, &err), WEIR_ECONFIG);
    assert_non_null(strstr(err.text, "data_dir: "));
    assert_non_null(strstr(err.text, "exists and is not a directory"));
    config_release(&cfg);

    const char *names[] = {"weir-data", "t.json", "s.csv", "m.sql", "weir.yaml"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_load_file_errors(void **state)
{
    struct weir_config cfg;
    struct weir_errmsg err;
    assert_int_equal(config_load(DATA "/does-not-exist.yaml", &cfg, &err), WEIR_ENOTFOUND);
    assert_string_equal(err.text, DATA "/does-not-exist.yaml: No such file or directory");
    assert_int_equal(config_load(DATA, &cfg, &err), WEIR_ECONFIG);
    assert_string_equal(err.text, DATA ": not a regular file");
    config_release(&cfg);
    /* Larger than the bound. */
    size_t n = WEIR_MAX_CONFIG_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    assert_int_equal(config_load_string("big.yaml", big, n, "/", &cfg, &err), WEIR_ECONFIG);
    assert_non_null(strstr(err.text, "big.yaml: larger than"));
    free(big);
    /* Not UTF-8. */
    assert_int_equal(config_load_string("bin.yaml", "a: \xff\xfe\n", 7, "/", &cfg, &err),
                     WEIR_ECONFIG);
    assert_non_null(strstr(err.text, "bin.yaml:1: YAML: invalid"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_and_partial),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_values_misc),
        cmocka_unit_test(test_transform),
        cmocka_unit_test(test_tls_and_idle),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_cidr_allow),
        cmocka_unit_test(test_mask_dsn),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_check_files),
        cmocka_unit_test(test_load_file_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
