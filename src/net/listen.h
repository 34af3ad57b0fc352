/*
 * listen.h - network addresses ("host:port") and listening sockets.
 *
 * Addresses are written as in the config and on the command line:
 * "127.0.0.1:7601", "0.0.0.0:7601", "[::1]:7601", "[::]:7601" or
 * "localhost:7601". A name is resolved once, when parsed, to its first
 * IPv4 address, or its first IPv6 address if it has no IPv4 one. Port 0 asks the kernel for a free port (tests use it; the bound
 * port is reported back).
 *
 * weir serve gives each worker loop its own listening socket on the same
 * address (SO_REUSEPORT): the kernel spreads new connections over them, so
 * no accept lock or shared queue exists between threads. Because
 * SO_REUSEPORT would also let a second weir started by mistake share the
 * port silently, listen_open_group first checks that nobody listens there
 * (see docs/network.md, "Listeners").
 */
#ifndef WEIR_NET_LISTEN_H
#define WEIR_NET_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/error.h"

/* Room for "[v6-address%scope]:65535". */
#define NET_ADDR_TEXT 96

struct net_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[NET_ADDR_TEXT]; /* canonical form, e.g. "[::1]:7601" */
};

/* Parse "host:port" into a. Errors (WEIR_EINVAL, or WEIR_ENOTFOUND for a
 * name that does not resolve) fill e with a sentence naming s. */
int net_addr_parse(struct net_addr *a, const char *s, struct weir_errmsg *e);

/* Fill a from a socket address (an accepted peer, a bound socket). */
void net_addr_from(struct net_addr *a, const struct sockaddr *sa, socklen_t len);

/* The port of a, in host order. */
int net_addr_port(const struct net_addr *a);

/* Format sa as "127.0.0.1:51234" or "[::1]:51234" into out (always
 * NUL-terminated when cap > 0). */
void net_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t cap);

/*
 * Open a non-blocking, close-on-exec socket listening on a, with
 * SO_REUSEADDR (restart while old connections sit in TIME_WAIT) and
 * SO_REUSEPORT. IPv6 sockets are IPV6_V6ONLY, so "[::]:7601" means IPv6
 * only and "0.0.0.0:7601" can be opened beside it. backlog <= 0 means
 * WEIR_LISTEN_BACKLOG. On success *fd is the socket and bound (if not
 * NULL) the address actually bound (port 0 resolved). On failure e says
 * "127.0.0.1:7601: address already in use" or similar.
 */
int listen_open(const struct net_addr *a, int backlog, int *fd,
                struct net_addr *bound, struct weir_errmsg *e);

/*
 * Open n listening sockets on one address, one per worker loop: fds[0..n)
 * all on the same port (port 0: the port the first one got). First checks
 * that the address is free, so that a second weir on the same port fails
 * with "address already in use" instead of sharing the connections. On
 * failure no socket is left open.
 */
int listen_open_group(const struct net_addr *a, int n, int backlog, int *fds,
                      struct net_addr *bound, struct weir_errmsg *e);

#endif
