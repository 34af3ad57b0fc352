/*
 * sink.c - a TCP receiver that reads and discards: the ceiling for the
 * ingest benchmark, and the other end of loadgen's self-test.
 *
 *   sink [--port P] [--port-file FILE] [--conns C] [--timeout S] [--hash]
 *
 * Listens on 127.0.0.1:P (P 0, the default, takes a free port; --port-file
 * receives its number once it listens), reads every connection to EOF and
 * closes it. It stops after C connections have closed (default 1), or after
 * --timeout seconds (default 120), and prints one JSON report: connections,
 * bytes, lines, and the time from the first byte to the last close. --hash
 * also sums 64-bit FNV-1a over every line (telemetry.h's checksum_all), so a
 * test can check that the bytes arrived unaltered; without it the sink only
 * counts newlines, which keeps it a ceiling.
 */
#include "telemetry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct peer {
    int fd;
    uint64_t h; /* FNV-1a of the line in progress */
};

struct totals {
    uint64_t bytes, lines, checksum;
    unsigned accepted, closed;
    double first_byte, last_close;
};

static void consume(struct totals *t, struct peer *p, const char *b, size_t n,
                    int hash)
{
    const char *end = b + n, *nl;

    while (b < end && (nl = memchr(b, '\n', (size_t)(end - b)))) {
        if (hash) {
            p->h = tel_hash64_update(p->h, b, (size_t)(nl - b));
            t->checksum += p->h;
            p->h = TEL_HASH64_INIT;
        }
        t->lines++;
        b = nl + 1;
    }
    if (hash && b < end)
        p->h = tel_hash64_update(p->h, b, (size_t)(end - b));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, 'f'},
        {"conns", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 'T'},
        {"hash", no_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static char buf[1 << 18];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t salen = sizeof sa;
    struct totals t = {0};
    struct epoll_event ev;
    const char *port_file = NULL;
    uint64_t port = 0, conns = 1;
    double timeout = 120, deadline;
    int c, li = 0, hash = 0, lfd = -1, ep = -1, rc = 1, one = 1;

    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p': bad = tel_parse_u64(optarg, 0, 65535, &port); break;
        case 'f': port_file = optarg; break;
        case 'c': bad = tel_parse_u64(optarg, 1, 100000, &conns); break;
        case 'T': bad = tel_parse_double(optarg, 0.001, 86400, &timeout); break;
        case 'x': hash = 1; break;
        case 'h':
            puts("usage: sink [--port P] [--port-file FILE] [--conns C] "
                 "[--timeout S] [--hash]");
            return 0;
        default: return 2;
        }
        if (bad) {
            fprintf(stderr, "sink: bad value '%s' for --%s\n", optarg,
                    opts[li].name);
            return 2;
        }
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 1024) ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen)) {
        perror("sink: listen on 127.0.0.1");
        goto out;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) {
        perror("sink: epoll");
        goto out;
    }
    if (port_file) {
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) ||
            rename(tmp, port_file)) {
            perror("sink: port file");
            goto out;
        }
    }
    deadline = tel_now() + timeout;
    while (t.closed < conns) {
        struct epoll_event evs[64];
        int n;

        if (tel_now() > deadline) {
            fprintf(stderr, "sink: timeout after %.0f s, %u of %llu "
                            "connection(s) closed\n",
                    timeout, t.closed, (unsigned long long)conns);
            break;
        }
        n = epoll_wait(ep, evs, 64, 50);
        for (int k = 0; k < n; k++) {
            struct peer *p = evs[k].data.ptr;
            if (!p) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL,
                                     SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                    p = malloc(sizeof *p);
                    ev.events = EPOLLIN;
                    ev.data.ptr = p;
                    if (!p || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
                        close(fd);
                        free(p);
                        continue;
                    }
                    p->fd = fd;
                    p->h = TEL_HASH64_INIT;
                    t.accepted++;
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(p->fd, buf, sizeof buf);
                if (r > 0) {
                    if (t.bytes == 0)
                        t.first_byte = tel_now();
                    t.bytes += (uint64_t)r;
                    consume(&t, p, buf, (size_t)r, hash);
                    continue;
                }
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                /* EOF or error: this connection is over. */
                close(p->fd);
                free(p);
                t.closed++;
                t.last_close = tel_now();
                break;
            }
        }
    }
    printf("{\"port\": %u, \"accepted\": %u, \"closed\": %u, \"bytes\": %llu, "
           "\"lines\": %llu, ",
           ntohs(sa.sin_port), t.accepted, t.closed, (unsigned long long)t.bytes,
           (unsigned long long)t.lines);
    if (hash)
        printf("\"checksum_all\": \"%016llx\", ", (unsigned long long)t.checksum);
    else
        printf("\"checksum_all\": null, ");
    printf("\"recv_s\": %.6f}\n", t.bytes ? t.last_close - t.first_byte : 0.0);
    rc = t.closed >= conns ? 0 : 1;
out:
    /* Connections still open at a timeout are left to exit(). */
    if (ep >= 0)
        close(ep);
    if (lfd >= 0)
        close(lfd);
    return rc;
}
