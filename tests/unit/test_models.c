/*
 * test_models.c - the parts of src/sched/ that need no data: the order in
 * which models run, the retry backoff, a partition with no input data,
 * and the scheduler thread's start, kick and stop. The runs themselves are
 * tested end to end in tests/integration/models_*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/limits.h"
#include "core/wtime.h"
#include "sched/models.h"
#include "sched/scheduler.h"

#define CFG \
    "data_dir: %s\n" \
    "metrics: off\n" \
    "pipelines:\n" \
    "  - name: tel\n" \
    "    source: {tcp: 127.0.0.1:0}\n" \
    "models:\n" \
    "  - name: c\n    sql: %s\n    inputs: [b, a]\n    grain: day\n    outputs: [lake]\n" \
    "  - name: b\n    sql: %s\n    inputs: [a]\n    outputs: [lake]\n" \
    "  - name: a\n    sql: %s\n    inputs: [tel]\n    outputs: [lake]\n"

struct fixture {
    char dir[64];
    char sql[128];
    struct weir_config cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct weir_errmsg e = {0};
    char text[2048];
    snprintf(f->dir, sizeof f->dir, "/tmp/weir-models-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sql, sizeof f->sql, "%s/m.sql", f->dir);
    FILE *fp = fopen(f->sql, "w");
    assert_non_null(fp);
    fputs("SELECT count(*) AS n FROM tel\n", fp);
    fclose(fp);
    int n = snprintf(text, sizeof text, CFG, f->dir, f->sql, f->sql, f->sql);
    assert_int_equal(config_load_string("t.yaml", text, (size_t)n, f->dir, &f->cfg, &e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    config_release(&f->cfg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_order(void **state)
{
    struct fixture *f = *state;
    struct weir_errmsg e = {0};
    size_t order[3];
    assert_int_equal(sched_order(&f->cfg, order, &e), 0);
    /* a before b before c, whatever the config's order. */
    assert_string_equal(f->cfg.models[order[0]].name, "a");
    assert_string_equal(f->cfg.models[order[1]].name, "b");
    assert_string_equal(f->cfg.models[order[2]].name, "c");
}

static void test_backoff(void **state)
{
    (void)state;
    int64_t s = WTIME_NS_PER_S;
    assert_int_equal(model_backoff_ns(1), WEIR_MODEL_RETRY_BASE_S * s);
    assert_int_equal(model_backoff_ns(2), 2 * WEIR_MODEL_RETRY_BASE_S * s);
    assert_int_equal(model_backoff_ns(3), 4 * WEIR_MODEL_RETRY_BASE_S * s);
    assert_int_equal(model_backoff_ns(100), WEIR_MODEL_RETRY_MAX_S * s);
}

static void test_check(void **state)
{
    struct fixture *f = *state;
    struct weir_errmsg e = {0};
    /* b is hourly and reads a (hourly): fine; c (day) reads hourly ones: fine. */
    for (size_t i = 0; i < f->cfg.nmodels; i++)
        assert_int_equal(model_check(&f->cfg, &f->cfg.models[i], &e), 0);
}

static void test_no_data(void **state)
{
    struct fixture *f = *state;
    struct weir_errmsg e = {0};
    const struct config_model *a = config_model(&f->cfg, "a");
    struct model_ready r;
    int64_t *starts = NULL;
    size_t n = 99;
    int64_t t0 = INT64_C(1756800000) * WTIME_NS_PER_S; /* 2025-09-02T08:00Z */
    /* Hour open: not settled; closed: settled but no data; nothing planned. */
    assert_int_equal(model_partition_ready(&f->cfg, a, t0, t0 + 1, &r, &e), 0);
    assert_int_equal(r.settled, 0);
    assert_int_equal(model_partition_ready(&f->cfg, a, t0, t0 + 86400 * WTIME_NS_PER_S,
                                           &r, &e), 0);
    assert_int_equal(r.settled, 1);
    assert_int_equal(r.has_data, 0);
    assert_int_equal(model_plan(&f->cfg, a, t0 + 86400 * WTIME_NS_PER_S, &starts, &n, &e), 0);
    assert_int_equal(n, 0);
    free(starts);
    /* A run of an empty hour records an ok state with 0 rows. */
    struct model_run_result res;
    struct model_run_opts o = {.now_ns = t0 + 86400 * WTIME_NS_PER_S, .wait_lock = 1};
    assert_int_equal(model_run_partition(&f->cfg, a, t0, &o, &res, &e), 0);
    assert_int_equal(res.rows, 1); /* count(*) of nothing is one row */
    assert_int_equal(res.lake, 1);
    struct model_state *v = NULL;
    assert_int_equal(model_states(&f->cfg, a, &v, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].ok, 1);
    assert_int_equal(v[0].start_ns, t0);
    free(v);
    /* Not the start of a partition. */
    assert_int_equal(model_run_partition(&f->cfg, a, t0 + 1, &o, &res, &e), WEIR_EINVAL);
}

static void test_thread(void **state)
{
    struct fixture *f = *state;
    struct weir_errmsg e = {0};
    struct scheduler *s = NULL;
    struct sched_stats st;
    assert_int_equal(sched_start(&f->cfg, 3600, &s, &e), 0);
    assert_non_null(s);
    for (int i = 0; i < 200; i++) {
        sched_get_stats(s, &st);
        if (st.rounds >= 1)
            break;
        usleep(10000);
    }
    sched_kick(s);
    for (int i = 0; i < 200; i++) {
        sched_get_stats(s, &st);
        if (st.rounds >= 2)
            break;
        usleep(10000);
    }
    assert_true(st.rounds >= 2);
    assert_int_equal(st.runs_failed, 0);
    sched_stop(s);
    sched_stop(NULL);
    sched_kick(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
