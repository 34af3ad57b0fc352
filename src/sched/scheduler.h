/*
 * scheduler.h - runs SQL models by data dependency inside `weir serve`: a
 * thread that every WEIR_SCHED_INTERVAL_S (and when kicked: a compaction
 * committed, an hour closed) asks each model which partitions need a run
 * (sched/models.h: inputs committed and changed since the last successful
 * run, or a failed run whose backoff has passed) and runs them, models in
 * dependency order (a model after the models it reads, so one round
 * carries new data all the way down). Failures are recorded in the model's
 * state with their next try (60 s doubling to an hour); `weir models`
 * shows them. A partition of a model never runs twice at once: runs take
 * the model's lock (<data_dir>/<model>/_run.lock), which a concurrent
 * `weir run` also takes; the scheduler skips a model whose lock is held
 * and comes back next round. The state lives in data_dir, so a restart
 * neither repeats (the inputs' digests match) nor skips (a partition
 * without an ok state for its current inputs still needs a run) work.
 *
 * The clock is wtime_now_ns(), so WEIR_FAKE_NOW closes hours in tests.
 */
#ifndef WEIR_SCHED_SCHEDULER_H
#define WEIR_SCHED_SCHEDULER_H

#include <stdint.h>

#include "core/error.h"

struct weir_config;
struct scheduler;

/* What the scheduler has done since it started (for status and tests). */
struct sched_stats {
    uint64_t rounds;
    uint64_t runs_ok;
    uint64_t runs_failed;
};

/*
 * Order the models of cfg so that each comes after the models it reads:
 * order[0..cfg->nmodels) gets model indexes. WEIR_ECONFIG on a cycle (the
 * config loader refuses those already).
 */
int sched_order(const struct weir_config *cfg, size_t *order, struct weir_errmsg *e);

/*
 * One round now, in the calling thread (what the thread does each time;
 * `weir run` without a model could use it, tests do). *stop (may be NULL)
 * ends it between partitions. Adds to *st (may be NULL). Errors are
 * logged, not returned, except a bad config.
 */
int sched_round(const struct weir_config *cfg, const volatile int *stop,
                struct sched_stats *st, struct weir_errmsg *e);

/* Start the thread (none is started when cfg has no models: *out NULL,
 * 0). cfg must outlive the scheduler. interval_s 0: WEIR_SCHED_INTERVAL_S. */
int sched_start(const struct weir_config *cfg, unsigned interval_s,
                struct scheduler **out, struct weir_errmsg *e);

/* Look now. Any thread; NULL-safe. */
void sched_kick(struct scheduler *s);

/* Copy the counters. NULL-safe (zeros). */
void sched_get_stats(struct scheduler *s, struct sched_stats *st);

/* Finish the partition being run, stop the thread, free (NULL-safe). */
void sched_stop(struct scheduler *s);

#endif
