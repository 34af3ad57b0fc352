/*
 * listen.c - parse "host:port", open listening sockets; see listen.h.
 */
#include "net/listen.h"
#include "core/limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void net_addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN + 32];
    if (cap == 0)
        return;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        if (in6->sin6_scope_id) {
            size_t n = strlen(host);
            snprintf(host + n, sizeof host - n, "%%%u", (unsigned)in6->sin6_scope_id);
        }
        snprintf(out, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, cap, "(address family %d)", sa->sa_family);
    }
}

void net_addr_from(struct net_addr *a, const struct sockaddr *sa, socklen_t len)
{
    memset(a, 0, sizeof *a);
    if (len > sizeof a->sa)
        len = sizeof a->sa;
    memcpy(&a->sa, sa, len);
    a->len = len;
    net_addr_format((const struct sockaddr *)&a->sa, a->len, a->text, sizeof a->text);
}

int net_addr_port(const struct net_addr *a)
{
    if (a->sa.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
    if (a->sa.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
    return -1;
}

static int parse_port(const char *p, int *port)
{
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int net_addr_parse(struct net_addr *a, const char *s, struct weir_errmsg *e)
{
    char host[256];
    const char *port_str;
    int port;

    memset(a, 0, sizeof *a);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return errmsg_set(e, WEIR_EINVAL,
                              "%s: expected [IPv6-address]:port, e.g. [::1]:7601", s);
        size_t n = (size_t)(close - s - 1);
        if (n == 0 || n >= sizeof host)
            return errmsg_set(e, WEIR_EINVAL, "%s: bad IPv6 address", s);
        memcpy(host, s + 1, n);
        host[n] = '\0';
        port_str = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return errmsg_set(e, WEIR_EINVAL,
                              "%s: expected host:port, e.g. 127.0.0.1:7601", s);
        size_t n = (size_t)(colon - s);
        if (memchr(s, ':', n))
            return errmsg_set(e, WEIR_EINVAL,
                              "%s: an IPv6 address needs brackets, e.g. [::1]:7601", s);
        if (n == 0)
            return errmsg_set(e, WEIR_EINVAL,
                              "%s: missing host (127.0.0.1 for this machine only, "
                              "0.0.0.0 for every interface)", s);
        if (n >= sizeof host)
            return errmsg_set(e, WEIR_EINVAL, "%s: host name too long", s);
        memcpy(host, s, n);
        host[n] = '\0';
        port_str = colon + 1;
    }
    if (parse_port(port_str, &port))
        return errmsg_set(e, WEIR_EINVAL, "%s: bad port '%s' (0 to 65535)", s, port_str);

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = s[0] == '[' ? AI_NUMERICHOST : 0;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return errmsg_set(e, WEIR_ENOTFOUND, "%s: cannot resolve '%s': %s", s, host,
                          rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    /* A name takes its first IPv4 address if it has one: "localhost"
     * often lists ::1 first, while listeners default to 127.0.0.1. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *r = res; r; r = r->ai_next)
        if (r->ai_family == AF_INET) {
            pick = r;
            break;
        }
    if (pick->ai_addrlen > sizeof a->sa) {
        freeaddrinfo(res);
        return errmsg_set(e, WEIR_EINVAL, "%s: unsupported address", s);
    }
    memcpy(&a->sa, pick->ai_addr, pick->ai_addrlen);
    a->len = pick->ai_addrlen;
    freeaddrinfo(res);
    if (a->sa.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)port);
    else if (a->sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)port);
    else
        return errmsg_set(e, WEIR_EINVAL, "%s: not an IPv4 or IPv6 address", s);
    net_addr_format((const struct sockaddr *)&a->sa, a->len, a->text, sizeof a->text);
    return 0;
}

/* The sentence for a failed bind or listen, naming the address. */
static int bind_error(struct weir_errmsg *e, const struct net_addr *a, const char *what,
                      int err)
{
    switch (err) {
    case EADDRINUSE:
        return errmsg_set(e, WEIR_EEXIST, "%s: address already in use", a->text);
    case EADDRNOTAVAIL:
        return errmsg_set(e, WEIR_EINVAL,
                          "%s: address not available (no interface has this address)",
                          a->text);
    case EACCES:
        return errmsg_set(e, WEIR_EINVAL,
                          "%s: permission denied (ports below 1024 need privileges)",
                          a->text);
    default:
        return errmsg_set(e, weir_from_errno(err), "%s: %s: %s", a->text, what,
                          strerror(err));
    }
}

static int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v);
}

/* A bound, not yet listening socket, with the options we always want. */
static int open_bound(const struct net_addr *a, int reuseport, int *out,
                      struct weir_errmsg *e)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return bind_error(e, a, "socket", errno);
    int err = 0;
    const char *what = "setsockopt";
    if (set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) == -1 ||
        (reuseport && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) == -1) ||
        (a->sa.ss_family == AF_INET6 && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) == -1))
        err = errno;
    else if (bind(fd, (const struct sockaddr *)&a->sa, a->len) == -1)
        err = errno, what = "bind";
    if (err) {
        close(fd);
        return bind_error(e, a, what, err);
    }
    *out = fd;
    return 0;
}

int listen_open(const struct net_addr *a, int backlog, int *fd, struct net_addr *bound,
                struct weir_errmsg *e)
{
    int s = -1, rc = open_bound(a, 1, &s, e);
    if (rc)
        return rc;
    if (listen(s, backlog > 0 ? backlog : WEIR_LISTEN_BACKLOG) == -1) {
        rc = bind_error(e, a, "listen", errno);
        goto fail;
    }
    if (bound) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(s, (struct sockaddr *)&ss, &len) == -1) {
            rc = bind_error(e, a, "getsockname", errno);
            goto fail;
        }
        net_addr_from(bound, (struct sockaddr *)&ss, len);
    }
    *fd = s;
    return 0;
fail:
    close(s);
    return rc;
}

int listen_open_group(const struct net_addr *a, int n, int backlog, int *fds,
                      struct net_addr *bound, struct weir_errmsg *e)
{
    struct net_addr first;
    int rc, opened = 0;

    if (n < 1)
        return errmsg_set(e, WEIR_EINVAL, "%s: no listener asked for", a->text);
    if (net_addr_port(a) != 0) {
        /* Without SO_REUSEPORT this bind fails if anyone listens here,
         * with or without that option. The window between this check and
         * the real binds is a few microseconds. */
        int probe;
        rc = open_bound(a, 0, &probe, e);
        if (rc)
            return rc;
        close(probe);
    }
    rc = listen_open(a, backlog, &fds[0], &first, e);
    if (rc)
        return rc;
    opened = 1;
    for (; opened < n; opened++) {
        rc = listen_open(&first, backlog, &fds[opened], NULL, e);
        if (rc)
            goto fail;
    }
    if (bound)
        *bound = first;
    return 0;
fail:
    while (opened-- > 0) {
        close(fds[opened]);
        fds[opened] = -1;
    }
    return rc;
}
