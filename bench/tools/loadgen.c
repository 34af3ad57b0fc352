/*
 * loadgen.c - send the benchmark workload to a TCP listener on loopback.
 *
 *   loadgen --port P [--host 127.0.0.1] [--conns C] [--records N]
 *           [--invalid-frac F] [--hours H] [--seed S] [--str-values F]
 *           [--t0 T] [--rate R] [--manifest FILE] [--timeout S]
 *           [--drain-timeout S] [--no-drain]
 *
 * Every record is generated before the clock starts (telemetry.h: the same
 * records gen writes for the same options). Record i goes to connection
 * i % C, so each connection carries its share in order, and a consumer sees
 * the stream interleaved as many senders would make it. One thread drives
 * all connections with epoll and non-blocking sends: on loopback the kernel
 * copy, not the sender, is the limit (the research loadgen sent 240 MB into a
 * discard server in 0.05-0.2 s), so a thread per connection would buy
 * nothing.
 *
 * --rate R paces the whole stream to R records/s (the i-th record may leave
 * at i / R s), checked every millisecond. Without it the sockets are kept
 * full, so the receiver's reading speed sets the pace (TCP flow control).
 *
 * When a connection has sent everything it shuts down its write side and,
 * unless --no-drain, waits for the receiver to close (read to EOF): that is
 * the "drain" time. One JSON report goes to stdout: generation, connect,
 * sent-by (first byte to last byte handed to the kernel) and drain times.
 * Exit 0 when every byte was sent, 1 when a connection failed or --timeout
 * passed (default 120 s), 2 on usage errors. Only loopback addresses are
 * accepted: a benchmark here never sends anywhere else.
 */
#include "telemetry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 10000

static const char usage[] =
    "usage: loadgen --port P [options]\n"
    "  --host A           loopback address to connect to (default 127.0.0.1)\n"
    "  --port P           TCP port (required)\n"
    "  --conns C          connections, records spread round robin (default 1)\n"
    "  --records N        (default 2000000)\n"
    "  --invalid-frac F   (default 0.05)\n"
    "  --hours H          (default 3)\n"
    "  --seed S           (default 1)\n"
    "  --str-values F     (default 0)\n"
    "  --t0 T             (default 1756803600)\n"
    "  --rate R           records/s over all connections (default: unpaced)\n"
    "  --manifest FILE    write the expected counts and checksums (JSON)\n"
    "  --timeout S        give up sending after S seconds (default 120)\n"
    "  --drain-timeout S  wait at most S s for the receiver to close (default 30)\n"
    "  --no-drain         close after sending, without waiting for the receiver\n";

enum conn_state { CONN_SENDING, CONN_DRAINING, CONN_CLOSED };

struct conn {
    int fd;
    enum conn_state state;
    int want_out;   /* registered for EPOLLOUT */
    char *buf;      /* this connection's records, newline-terminated */
    size_t len, cap, off;
    uint64_t nrec;
    size_t *ends;   /* end offset of each record (only with --rate) */
};

struct run {
    struct conn *conns;
    unsigned nconns;
    int ep;
    double rate;
    int drain;
    double t_start;       /* after connecting, before the first send */
    double first_byte, last_byte, last_close;
    struct timespec first_byte_wall;
    unsigned sending, open, drained, errors;
    uint64_t bytes_sent;
};

static int host_is_loopback(const char *host, struct in_addr *addr)
{
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, addr) != 1)
        return 0;
    return (ntohl(addr->s_addr) >> 24) == 127;
}

static int conn_append(struct conn *c, const char *p, size_t n, int keep_ends)
{
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1 << 16;
        while (cap < c->len + n)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb)
            return -1;
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    if (keep_ends)
        c->ends[c->nrec] = c->len;
    c->nrec++;
    return 0;
}

/* Bytes connection ci may have sent by now: everything, or under --rate the
 * records among the first rate * elapsed of the stream that are its own. */
static size_t allowance(const struct run *r, unsigned ci, double now)
{
    const struct conn *c = &r->conns[ci];
    double total;
    uint64_t n;

    if (r->rate <= 0)
        return c->len;
    total = r->rate * (now - r->t_start);
    if (total < 1)
        return 0;
    n = (uint64_t)total;
    /* records ci, ci + C, ... below n */
    n = n > ci ? (n - ci + r->nconns - 1) / r->nconns : 0;
    if (n >= c->nrec)
        return c->len;
    return n ? c->ends[n - 1] : 0;
}

static void set_events(struct run *r, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct run *r, struct conn *c, int failed)
{
    if (c->state == CONN_SENDING)
        r->sending--;
    if (c->state != CONN_CLOSED) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
        r->open--;
    }
    c->state = CONN_CLOSED;
    if (failed)
        r->errors++;
}

static void conn_pump(struct run *r, unsigned ci, double now)
{
    struct conn *c = &r->conns[ci];
    size_t allowed = allowance(r, ci, now);

    while (c->off < allowed) {
        ssize_t w = send(c->fd, c->buf + c->off, allowed - c->off, MSG_NOSIGNAL);
        if (w > 0) {
            if (r->first_byte == 0) {
                r->first_byte = tel_now();
                clock_gettime(CLOCK_REALTIME, &r->first_byte_wall);
            }
            c->off += (size_t)w;
            r->bytes_sent += (uint64_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                set_events(r, c, EPOLLOUT);
                c->want_out = 1;
            }
            return;
        }
        fprintf(stderr, "loadgen: connection %u: send: %s\n", ci,
                strerror(errno));
        conn_close(r, c, 1);
        return;
    }
    if (c->off == c->len) {
        r->last_byte = tel_now();
        r->sending--;
        if (!r->drain) {
            c->state = CONN_DRAINING; /* so conn_close counts it right */
            conn_close(r, c, 0);
            return;
        }
        shutdown(c->fd, SHUT_WR);
        c->state = CONN_DRAINING;
        set_events(r, c, EPOLLIN);
        c->want_out = 0;
    } else if (c->want_out) {
        /* Paced out: the per-millisecond scan wakes it again. */
        set_events(r, c, 0);
        c->want_out = 0;
    }
}

static void conn_drain(struct run *r, struct conn *c)
{
    static char scratch[1 << 16];

    for (;;) {
        ssize_t n = read(c->fd, scratch, sizeof scratch);
        if (n > 0)
            continue; /* the receiver may answer; nobody reads it */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n == 0) {
            r->drained++;
            r->last_close = tel_now();
            conn_close(r, c, 0);
        } else {
            fprintf(stderr, "loadgen: after sending: %s\n", strerror(errno));
            conn_close(r, c, 1);
        }
        return;
    }
}

static int connect_all(struct run *r, const char *host,
                       const struct in_addr *addr, unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr = *addr};
    struct timeval tv = {.tv_sec = 5};

    for (unsigned i = 0; i < r->nconns; i++) {
        struct conn *c = &r->conns[i];
        struct epoll_event ev = {.events = 0, .data.ptr = c};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0) {
            perror("loadgen: socket");
            return -1;
        }
        c->fd = fd;
        r->open++;
        c->state = CONN_SENDING;
        r->sending++;
        /* A blocking connect, bounded: SO_SNDTIMEO applies to connect(). */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr, "loadgen: connect %s:%u (connection %u): %s\n",
                    host, port, i, strerror(errno));
            return -1;
        }
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
            epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            perror("loadgen: epoll");
            return -1;
        }
    }
    return 0;
}

static void report(const struct run *r, const struct tel_manifest *m,
                   const char *host, unsigned port, double gen_s,
                   double connect_s, int timed_out)
{
    double sent_by = r->last_byte > 0 ? r->last_byte - r->first_byte : -1;
    double drain = r->drained == r->nconns && r->drain
                       ? r->last_close - r->first_byte : -1;

    printf("{\"host\": \"%s\", \"port\": %u, \"conns\": %u, \"records\": %llu, "
           "\"valid\": %llu, \"invalid\": %llu, \"bytes\": %llu, "
           "\"bytes_sent\": %llu, \"rate\": %.17g,\n",
           host, port, r->nconns, (unsigned long long)m->records,
           (unsigned long long)m->valid, (unsigned long long)m->invalid,
           (unsigned long long)m->bytes, (unsigned long long)r->bytes_sent,
           r->rate);
    printf(" \"gen_s\": %.6f, \"connect_s\": %.6f, \"first_byte_unix\": %lld.%06ld, ",
           gen_s, connect_s, (long long)r->first_byte_wall.tv_sec,
           r->first_byte_wall.tv_nsec / 1000);
    if (sent_by >= 0)
        printf("\"sent_by_s\": %.6f, \"records_per_s_sent\": %.1f, ", sent_by,
               sent_by > 0 ? (double)m->records / sent_by : 0.0);
    else
        printf("\"sent_by_s\": null, \"records_per_s_sent\": null, ");
    if (drain >= 0)
        printf("\"drain_s\": %.6f, ", drain);
    else
        printf("\"drain_s\": null, ");
    printf("\"drained\": %u, \"errors\": %u, \"timed_out\": %s}\n", r->drained,
           r->errors, timed_out ? "true" : "false");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"records", required_argument, NULL, 'n'},
        {"invalid-frac", required_argument, NULL, 'f'},
        {"hours", required_argument, NULL, 'H'},
        {"seed", required_argument, NULL, 's'},
        {"str-values", required_argument, NULL, 'S'},
        {"t0", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"manifest", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 'T'},
        {"drain-timeout", required_argument, NULL, 'D'},
        {"no-drain", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct tel_config cfg;
    struct tel_gen g;
    struct tel_manifest m = {0};
    struct tel_record rec;
    struct run r = {.ep = -1, .drain = 1};
    struct in_addr addr;
    const char *host = "127.0.0.1", *manifest = NULL;
    double timeout = 120, drain_timeout = 30, t0, gen_s, connect_s, deadline;
    uint64_t u, port = 0, nconns = 1;
    char err[128];
    int c, li = 0, rc = 1, timed_out = 0;

    tel_config_default(&cfg);
    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        int bad = 0;
        switch (c) {
        case 'a': host = optarg; break;
        case 'p': bad = tel_parse_u64(optarg, 1, 65535, &port); break;
        case 'c': bad = tel_parse_u64(optarg, 1, MAX_CONNS, &nconns); break;
        case 'n': bad = tel_parse_u64(optarg, 0, UINT64_C(1) << 40, &cfg.records); break;
        case 'f': bad = tel_parse_double(optarg, 0, 1, &cfg.invalid_frac); break;
        case 'H':
            bad = tel_parse_u64(optarg, 1, 24 * 366, &u);
            cfg.hours = (unsigned)u;
            break;
        case 's': bad = tel_parse_u64(optarg, 0, UINT64_MAX, &cfg.seed); break;
        case 'S': bad = tel_parse_double(optarg, 0, 1, &cfg.str_values); break;
        case 't':
            bad = tel_parse_u64(optarg, 0, UINT64_C(1) << 40, &u);
            cfg.t0 = (int64_t)u;
            break;
        case 'r': bad = tel_parse_double(optarg, 0, 1e12, &r.rate); break;
        case 'm': manifest = optarg; break;
        case 'T': bad = tel_parse_double(optarg, 0.001, 86400, &timeout); break;
        case 'D': bad = tel_parse_double(optarg, 0, 86400, &drain_timeout); break;
        case 'N': r.drain = 0; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "loadgen: bad value '%s' for --%s\n", optarg,
                    opts[li].name);
            return 2;
        }
    }
    if (optind != argc || port == 0) {
        fprintf(stderr, "loadgen: %s\n%s",
                port ? "unexpected argument" : "--port is required", usage);
        return 2;
    }
    if (!host_is_loopback(host, &addr)) {
        fprintf(stderr, "loadgen: %s is not a loopback IPv4 address "
                        "(127.0.0.0/8): benchmarks only send on this machine\n",
                host);
        return 2;
    }
    if (tel_gen_init(&g, &cfg, err, sizeof err)) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    t0 = tel_now();
    r.nconns = (unsigned)nconns;
    r.conns = calloc(r.nconns, sizeof *r.conns);
    if (!r.conns || tel_manifest_init(&m, &cfg))
        goto oom;
    for (unsigned i = 0; i < r.nconns; i++) {
        r.conns[i].fd = -1;
        r.conns[i].state = CONN_CLOSED;
        if (r.rate > 0) {
            r.conns[i].ends = malloc((cfg.records / r.nconns + 1) * sizeof(size_t));
            if (!r.conns[i].ends)
                goto oom;
        }
    }
    for (uint64_t i = 0; i < cfg.records; i++) {
        tel_gen_record(&g, i, &rec);
        tel_manifest_add(&m, &rec);
        rec.line[rec.len] = '\n';
        if (conn_append(&r.conns[i % r.nconns], rec.line, rec.len + 1, r.rate > 0))
            goto oom;
    }
    if (manifest && tel_manifest_save(&m, manifest)) {
        perror("loadgen: manifest");
        goto out;
    }
    gen_s = tel_now() - t0;

    t0 = tel_now();
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.ep < 0) {
        perror("loadgen: epoll_create1");
        goto out;
    }
    if (connect_all(&r, host, &addr, (unsigned)port))
        goto out;
    connect_s = tel_now() - t0;

    r.t_start = tel_now();
    deadline = r.t_start + timeout;
    for (unsigned i = 0; i < r.nconns; i++)
        conn_pump(&r, i, r.t_start);
    while (r.open > 0) {
        struct epoll_event evs[256];
        double now = tel_now();
        int n;

        if (r.sending > 0 && now > deadline) {
            fprintf(stderr, "loadgen: timeout: %u connection(s) still sending "
                            "after %.0f s\n", r.sending, timeout);
            timed_out = 1;
            break;
        }
        if (r.sending == 0 && now > (r.last_byte > 0 ? r.last_byte : now) + drain_timeout) {
            fprintf(stderr, "loadgen: %u connection(s) not closed by the "
                            "receiver %.0f s after the last byte\n",
                    r.open, drain_timeout);
            break;
        }
        if (r.rate > 0 && r.sending > 0)
            for (unsigned i = 0; i < r.nconns; i++)
                if (r.conns[i].state == CONN_SENDING && !r.conns[i].want_out)
                    conn_pump(&r, i, now);
        n = epoll_wait(r.ep, evs, 256, r.rate > 0 && r.sending > 0 ? 1 : 20);
        if (n < 0 && errno != EINTR) {
            perror("loadgen: epoll_wait");
            break;
        }
        now = tel_now();
        for (int k = 0; k < n; k++) {
            struct conn *cn = evs[k].data.ptr;
            unsigned ci = (unsigned)(cn - r.conns);
            if (cn->state == CONN_SENDING)
                conn_pump(&r, ci, now);
            else if (cn->state == CONN_DRAINING)
                conn_drain(&r, cn);
        }
    }
    report(&r, &m, host, (unsigned)port, gen_s, connect_s, timed_out);
    rc = r.errors || timed_out || r.sending > 0 ? 1 : 0;
    goto out;

oom:
    fprintf(stderr, "loadgen: out of memory\n");
out:
    if (r.conns) {
        for (unsigned i = 0; i < r.nconns; i++) {
            if (r.conns[i].fd >= 0)
                close(r.conns[i].fd);
            free(r.conns[i].buf);
            free(r.conns[i].ends);
        }
        free(r.conns);
    }
    if (r.ep >= 0)
        close(r.ep);
    tel_manifest_release(&m);
    return rc;
}
