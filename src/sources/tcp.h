/*
 * tcp.h - the TCP source: a listening socket on one worker's loop, its
 * connections, NDJSON framing, records handed to the worker's lander.
 *
 * Every worker has its own listening socket on the pipeline's address
 * (SO_REUSEPORT: the kernel spreads new connections over the workers, no
 * shared accept lock). A connection belongs to the worker that accepted it
 * for its whole life, so its records land in order in that worker's
 * segments. Clients outside the pipeline's `allow` list are closed at once
 * and counted as refused (before any TLS handshake: they cost no crypto).
 * With source.tls, every connection speaks TLS with the server's context
 * (one per pipeline, loaded at start by the server, shared by workers).
 */
#ifndef WEIR_SOURCES_TCP_H
#define WEIR_SOURCES_TCP_H

#include "config/config.h"
#include "core/error.h"
#include "net/conn.h"
#include "net/loop.h"
#include "sources/source.h"
#include "store/land.h"

/* A TCP source on loop l for pipeline p, taking ownership of listen_fd
 * (bound and listening), landing records in lander. limit is the
 * process-wide connection limit. */
int tcp_source_new(struct loop *l, const struct weir_config *cfg,
                   const struct config_pipeline *p, int listen_fd,
                   struct lander *lander, struct conn_limit *limit,
                   struct tls_ctx *tls, struct source **out, struct weir_errmsg *e);

#endif
