/*
 * http.h - a very small HTTP/1.0 server for /metrics, /health and /status.
 *
 * It serves GET requests on an event loop (net/loop.h): one request per
 * connection, the response is built whole by a handler and written, then
 * the connection is closed. Requests are bounded (8 KiB of headers, 5 s to
 * send them), connections too (64 at once); anything else gets 400/404/405.
 * It is for operators and scrapers on a trusted network, bound to
 * 127.0.0.1 by default: no TLS, no keep-alive, no request bodies.
 */
#ifndef WEIR_OBS_HTTP_H
#define WEIR_OBS_HTTP_H

#include "core/buf.h"
#include "core/error.h"
#include "net/loop.h"

/* Build the response body for path (query string removed) into body and
 * set *content_type; return the status code (200, 404, 503, ...). */
typedef int http_handler_fn(void *ctx, const char *path, struct buf *body,
                            const char **content_type);

struct http_server;

/* Listen on fd (a bound, listening, non-blocking socket; the server takes
 * ownership) and serve requests on loop l with handler. */
int http_server_new(struct loop *l, int fd, http_handler_fn *handler, void *ctx,
                    struct http_server **out, struct weir_errmsg *e);

/* Close the listener and every connection. NULL-safe. */
void http_server_free(struct http_server *h);

#endif
