/*
 * server.h - `weir serve`: the whole loop of one config in one process.
 *
 * server_run recovers what a crash left (recover.h), starts one worker
 * thread per configured worker, each with its own event loop, sources and
 * landers (no lock shared on the record path), serves /metrics, /health and
 * /status on the main thread, and on SIGTERM or SIGINT shuts down cleanly:
 * stop accepting, read what connected senders already sent (up to
 * drain_timeout), flush, fsync, seal, log the counters, return 0. A
 * second SIGTERM/SIGINT changes nothing (it is logged); SIGHUP is logged
 * and ignored (there is no config reload).
 *
 * docs/ingest.md describes the path of a record; docs/operations.md the
 * signals, metrics and exit codes.
 */
#ifndef WEIR_SCHED_SERVER_H
#define WEIR_SCHED_SERVER_H

#include "config/config.h"
#include "core/error.h"

/* Run the server for cfg until a signal stops it. Returns an exit code:
 * 0 clean shutdown, 2 configuration problem found at start (a schema that
 * does not load, an address in use), 3 runtime failure. */
int server_run(const struct weir_config *cfg);

#endif
