/*
 * scheduler.c - the thread that runs SQL models as their inputs are
 * committed (scheduler.h; docs/models.md, "Scheduling").
 */
#include "sched/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "sched/models.h"
#include "store/partition.h"

struct scheduler {
    const struct weir_config *cfg;
    unsigned interval_s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    volatile int stop;
    int kicked;
    struct sched_stats stats;
};

int sched_order(const struct weir_config *cfg, size_t *order, struct weir_errmsg *e)
{
    size_t n = cfg->nmodels, done = 0;
    char *placed = calloc(n ? n : 1, 1);
    if (!placed)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    /* Kahn's algorithm, by repeated passes: configs hold a handful of
     * models, and the order is stable (config order among equals). */
    while (done < n) {
        int progress = 0;
        for (size_t i = 0; i < n; i++) {
            if (placed[i])
                continue;
            int ready = 1;
            for (size_t k = 0; k < cfg->models[i].ninputs && ready; k++)
                for (size_t j = 0; j < n; j++)
                    if (!placed[j] && j != i &&
                        strcmp(cfg->models[j].name, cfg->models[i].inputs[k]) == 0)
                        ready = 0;
            if (ready) {
                placed[i] = 1;
                order[done++] = i;
                progress = 1;
            }
        }
        if (!progress) {
            free(placed);
            return errmsg_set(e, WEIR_ECONFIG, "the models' inputs form a cycle");
        }
    }
    free(placed);
    return 0;
}

int sched_round(const struct weir_config *cfg, const volatile int *stop,
                struct sched_stats *st, struct weir_errmsg *e)
{
    size_t *order = calloc(cfg->nmodels ? cfg->nmodels : 1, sizeof *order);
    int rc;
    if (!order)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    if ((rc = sched_order(cfg, order, e)))
        goto out;
    for (size_t i = 0; i < cfg->nmodels && !(stop && *stop); i++) {
        const struct config_model *m = &cfg->models[order[i]];
        struct weir_errmsg me = {0};
        int64_t *starts = NULL;
        size_t n = 0;
        /* The clock is read per model, so a model sees the runs of the
         * models before it in this round. */
        int64_t now = wtime_now_ns();
        if (model_check(cfg, m, &me) || model_plan(cfg, m, now, &starts, &n, &me)) {
            log_error("model %s: %s", m->name, me.text);
            continue;
        }
        struct model_run_opts o = {.now_ns = now, .wait_lock = 0, .stop = stop,
                                   .memory_limit = WEIR_COMPACTOR_MEMORY_LIMIT,
                                   .threads = WEIR_COMPACTOR_THREADS};
        for (size_t k = 0; k < n && !(stop && *stop); k++) {
            struct model_run_result res;
            char key[PART_KEY_MAX];
            part_key_format(starts[k], m->grain == CONFIG_PARTITION_DAY ? PART_DAY
                                                                       : PART_HOUR,
                            key, sizeof key);
            int r = model_run_partition(cfg, m, starts[k], &o, &res, &me);
            if (r == WEIR_EAGAIN) {
                log_info("model %s: another run is going on; next round", m->name);
                break;
            }
            if (r) {
                log_error("%s", me.text);
                if (st)
                    st->runs_failed++;
            } else {
                log_info("model %s: partition %s: %llu rows, %u loads", m->name, key,
                         (unsigned long long)res.rows, res.loads);
                if (st)
                    st->runs_ok++;
            }
        }
        free(starts);
    }
    if (st)
        st->rounds++;
out:
    free(order);
    return rc;
}

static void *sched_main(void *arg)
{
    struct scheduler *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct sched_stats st = {0};
        struct weir_errmsg e = {0};
        pthread_mutex_unlock(&s->mu);
        if (sched_round(s->cfg, &s->stop, &st, &e))
            log_error("scheduler: %s", e.text);
        pthread_mutex_lock(&s->mu);
        s->stats.rounds += st.rounds;
        s->stats.runs_ok += st.runs_ok;
        s->stats.runs_failed += st.runs_failed;
        if (s->stop)
            break;
        if (!s->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += s->interval_s;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        s->kicked = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int sched_start(const struct weir_config *cfg, unsigned interval_s,
                struct scheduler **out, struct weir_errmsg *e)
{
    *out = NULL;
    if (cfg->nmodels == 0)
        return 0;
    struct scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->interval_s = interval_s ? interval_s : WEIR_SCHED_INTERVAL_S;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int err = pthread_create(&s->thread, NULL, sched_main, s);
    if (err) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return errmsg_set(e, weir_from_errno(err), "cannot start the scheduler: %s",
                          strerror(err));
    }
    *out = s;
    return 0;
}

void sched_kick(struct scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->kicked = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sched_get_stats(struct scheduler *s, struct sched_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    *st = s->stats;
    pthread_mutex_unlock(&s->mu);
}

void sched_stop(struct scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
