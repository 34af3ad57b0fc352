/*
 * cmd_send.c - `weir send HOST:PORT [FILE...]`: stream records to a listener.
 *
 * The tool users replay files with, and the tests' and benchmarks' load
 * generator, so it is built to be fast and exact:
 *
 *   - One connection, no rate: a regular file goes out with sendfile(2)
 *     (no copy through user space), anything else (a pipe, a terminal)
 *     with 1 MiB reads and writes.
 *   - --conns N or --rate R: lines are cut out of 1 MiB reads and dealt
 *     round robin, whole, over N connections, each with its own output
 *     buffer flushed in large writes; each connection's lines keep their
 *     file order. A line is never split between connections, however long.
 *
 * A file whose last byte is not '\n' is followed by one, so its last
 * record is not glued to the next file's first. At the end every
 * connection is half-closed (SHUT_WR) and we wait, with a timeout, for the
 * server to close its side: a server that closes after reading to EOF has
 * read everything, so exit 0 means every byte reached it. Exit 3, with the
 * address and the cause, on any connection error.
 *
 * --tls: each connection does a TLS handshake first (verifying the
 * server against --ca or the system's CAs, unless --insecure; a client
 * certificate with --cert/--key) and the bytes go through SSL_write from
 * a buffer: sendfile cannot encrypt. At the end a close_notify precedes
 * the half-close.
 */
#include "cli/cli.h"
#include "core/wtime.h"
#include "net/listen.h"
#include "net/tls.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IN_CHUNK (1u << 20)
/* Output buffer per connection: large writes, but bounded in total. */
#define OUT_MAX (256u << 10)
#define OUT_MIN (16u << 10)
#define OUT_TOTAL (64u << 20)
#define MAX_CONNS 10000

struct out {
    int fd;
    struct tls *tls;     /* --tls: the session on fd */
    char *buf;
    size_t len;
    int open; /* server has not closed yet (final wait) */
};

struct sender {
    const char *addr;    /* canonical text, for messages */
    struct out *outs;
    int n;
    size_t cap;          /* bytes per output buffer */
    int cur;             /* connection receiving the current line */
    int mid_line;        /* the current line has started */
    double rate;         /* lines per second, 0: unlimited */
    uint64_t rate_every; /* check the rate every this many lines */
    uint64_t lines, bytes;
    int64_t t0;
    char *chunk;         /* input buffer, IN_CHUNK bytes */
    struct tls_ctx *tls; /* --tls, else NULL */
    char host[256];      /* the host as given, for certificate checks */
};

/* With TLS 1.3 a server checks the client's certificate after the
 * client's handshake has finished: its refusal shows up later, as a
 * reset or an alert while sending. */
#define TLS_REFUSED_HINT                                                       \
    "the server may have refused this client: a missing or untrusted --cert " \
    "is refused only after the handshake with TLS 1.3; the server's log says why"

static int fail_conn(const struct sender *s, int err, const char *doing)
{
    const char *why;
    switch (err) {
    case ECONNREFUSED: why = "connection refused (is a listener running there?)"; break;
    case ECONNRESET: why = "connection reset by the server"; break;
    case EPIPE: why = "the server closed the connection"; break;
    case ETIMEDOUT: why = "timed out"; break;
    default: why = strerror(err); break;
    }
    if (s->bytes)
        fprintf(stderr, "weir send: %s: %s %s (after %llu bytes)\n", s->addr, doing, why,
                (unsigned long long)s->bytes);
    else
        fprintf(stderr, "weir send: %s: %s %s\n", s->addr, doing, why);
    return EXIT_RUNTIME;
}

static int write_all(struct sender *s, struct out *o, const char *p, size_t n)
{
    while (n > 0 && o->tls) {
        int want;
        ssize_t w = tls_write(o->tls, p, n, &want);
        if (w < 0) {
            fprintf(stderr, "weir send: %s: sending: TLS: %s (after %llu bytes; %s)\n",
                    s->addr, tls_error(o->tls), (unsigned long long)s->bytes,
                    TLS_REFUSED_HINT);
            return EXIT_RUNTIME;
        }
        p += w;
        n -= (size_t)w;
        s->bytes += (uint64_t)w;
    }
    while (n > 0) {
        ssize_t w = send(o->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail_conn(s, errno, "sending:");
        }
        p += w;
        n -= (size_t)w;
        s->bytes += (uint64_t)w;
    }
    return 0;
}

static int out_flush(struct sender *s, struct out *o)
{
    int rc = write_all(s, o, o->buf, o->len);
    o->len = 0;
    return rc;
}

static int flush_all(struct sender *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->outs[i].len) {
            int rc = out_flush(s, &s->outs[i]);
            if (rc)
                return rc;
        }
    return 0;
}

/* Queue p[0..n) on connection o, writing when its buffer is full. */
static int out_put(struct sender *s, struct out *o, const char *p, size_t n)
{
    if (o->len + n > s->cap) {
        int rc = out_flush(s, o);
        if (rc)
            return rc;
        if (n >= s->cap)
            return write_all(s, o, p, n);
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / WTIME_NS_PER_S, ns % WTIME_NS_PER_S};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* A line ended: move to the next connection, and keep to the rate. */
static int line_done(struct sender *s)
{
    s->lines++;
    s->mid_line = 0;
    s->cur = (s->cur + 1) % s->n;
    if (s->rate <= 0 || s->lines % s->rate_every)
        return 0;
    int64_t due = s->t0 + (int64_t)((double)s->lines / s->rate * 1e9);
    int64_t now = wtime_mono_ns();
    if (due > now) {
        /* What is ready goes out before we wait, so the receiver sees
         * the rate, not bursts of buffered lines. */
        int rc = flush_all(s);
        if (rc)
            return rc;
        sleep_ns(due - wtime_mono_ns());
    }
    return 0;
}

/* Deal the lines of data[0..n) over the connections. */
static int deal(struct sender *s, const char *data, size_t n)
{
    const char *p = data, *end = data + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        int rc = out_put(s, &s->outs[s->cur], p, (size_t)(stop - p));
        if (rc)
            return rc;
        p = stop;
        if (nl) {
            rc = line_done(s);
            if (rc)
                return rc;
        } else {
            s->mid_line = 1;
        }
    }
    return 0;
}

/* Lines of a file by reading it (any kind of file); *last gets its last byte. */
static int send_read(struct sender *s, int fd, const char *name, int dealing, int *last)
{
    char *chunk = s->chunk;
    for (;;) {
        ssize_t n = read(fd, chunk, IN_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "weir send: %s: %s\n", name, strerror(errno));
            return EXIT_RUNTIME;
        }
        if (n == 0)
            return 0;
        *last = (unsigned char)chunk[n - 1];
        int rc;
        if (dealing) {
            rc = deal(s, chunk, (size_t)n);
        } else {
            for (const char *p = chunk; (p = memchr(p, '\n', (size_t)(chunk + n - p))); p++)
                s->lines++;
            rc = write_all(s, &s->outs[0], chunk, (size_t)n);
        }
        if (rc)
            return rc;
    }
}

/* A regular file on the one connection: sendfile, no copy. */
static int send_file(struct sender *s, int fd, const char *name, off_t size, int count,
                     int *last)
{
    off_t off = lseek(fd, 0, SEEK_CUR);
    if (off < 0)
        off = 0;
    if (off >= size)
        return 0;
    char c;
    if (pread(fd, &c, 1, size - 1) == 1)
        *last = (unsigned char)c;
    if (count) { /* only for the summary line of -v */
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            const char *p = (const char *)m + off, *end = (const char *)m + size;
            while ((p = memchr(p, '\n', (size_t)(end - p))))
                s->lines++, p++;
            munmap(m, (size_t)size);
        }
    }
    while (off < size) {
        size_t want = (size_t)(size - off) < (1u << 30) ? (size_t)(size - off) : (1u << 30);
        ssize_t w = sendfile(s->outs[0].fd, fd, &off, want);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL || errno == ENOSYS) /* fs without sendfile */
                return send_read(s, fd, name, 0, last);
            if (errno == EIO) {
                fprintf(stderr, "weir send: %s: %s\n", name, strerror(errno));
                return EXIT_RUNTIME;
            }
            return fail_conn(s, errno, "sending:");
        }
        if (w == 0)
            break; /* the file shrank under us */
        s->bytes += (uint64_t)w;
    }
    return 0;
}

static int send_input(struct sender *s, int fd, const char *name, int verbose)
{
    struct stat st;
    int last = '\n', rc;
    int dealing = s->n > 1 || s->rate > 0;
    if (!dealing && !s->tls && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        rc = send_file(s, fd, name, st.st_size, verbose, &last);
    else
        rc = send_read(s, fd, name, dealing, &last);
    if (rc)
        return rc;
    if (last == '\n')
        return 0;
    /* Close the file's last line so the next file starts a record. */
    if (!dealing) {
        s->lines++;
        return write_all(s, &s->outs[0], "\n", 1);
    }
    rc = out_put(s, &s->outs[s->cur], "\n", 1);
    return rc ? rc : line_done(s);
}

/* The TLS handshake on o, a blocking socket, by the deadline. */
static int handshake(struct sender *s, struct out *o, int64_t deadline)
{
    int64_t left_us = (deadline - wtime_mono_ns()) / 1000;
    struct timeval tv = {left_us > 0 ? left_us / 1000000 : 0,
                         left_us > 0 ? left_us % 1000000 : 1};
    setsockopt(o->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(o->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (tls_new(s->tls, o->fd, s->host, &o->tls) != 0) {
        fprintf(stderr, "weir send: out of memory\n");
        return EXIT_RUNTIME;
    }
    int want, rc = tls_handshake(o->tls, &want);
    if (rc) {
        fprintf(stderr, "weir send: %s: TLS handshake: %s\n", s->addr,
                rc == WEIR_EAGAIN ? "timed out" : tls_error(o->tls));
        return EXIT_RUNTIME;
    }
    /* Writes may block for as long as the server applies backpressure. */
    struct timeval none = {0, 0};
    setsockopt(o->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    setsockopt(o->fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    return 0;
}

static int connect_one(struct sender *s, const struct net_addr *a, int64_t deadline,
                       int *out)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_conn(s, errno, "socket:");
    if (connect(fd, (const struct sockaddr *)&a->sa, a->len) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return fail_conn(s, err, "connecting:");
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int64_t left = (deadline - wtime_mono_ns()) / WTIME_NS_PER_MS;
    int n;
    while ((n = poll(&p, 1, left > 0 ? (int)(left < INT32_MAX ? left : INT32_MAX) : 0)) < 0 &&
           errno == EINTR)
        ;
    int err = 0;
    socklen_t len = sizeof err;
    if (n == 0)
        err = ETIMEDOUT;
    else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        close(fd);
        return fail_conn(s, err, "connecting:");
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *out = fd;
    return 0;
}

/* Half-close every connection and wait until the server closes each. */
static int finish(struct sender *s, int64_t timeout_ns)
{
    int rc = flush_all(s);
    if (rc)
        return rc;
    for (int i = 0; i < s->n; i++) {
        tls_close(s->outs[i].tls);
        /* With TLS, a server that refused us may already have reset the
         * connection: the read below tells why, if the alert arrived. */
        if (shutdown(s->outs[i].fd, SHUT_WR) < 0 && !s->outs[i].tls)
            return fail_conn(s, errno, "closing:");
        s->outs[i].open = 1;
    }
    int64_t deadline = wtime_mono_ns() + timeout_ns;
    assert(s->n >= 1 && s->n <= MAX_CONNS);
    struct pollfd *p = calloc((size_t)(unsigned)s->n, sizeof *p);
    int *idx = calloc((size_t)(unsigned)s->n, sizeof *idx);
    if (!p || !idx) {
        free(p);
        free(idx);
        fprintf(stderr, "weir send: out of memory\n");
        return EXIT_RUNTIME;
    }
    int open = s->n;
    while (open > 0) {
        int k = 0;
        for (int i = 0; i < s->n; i++)
            if (s->outs[i].open) {
                idx[k] = i;
                p[k].fd = s->outs[i].fd, p[k].events = POLLIN, p[k++].revents = 0;
            }
        int64_t left = (deadline - wtime_mono_ns()) / WTIME_NS_PER_MS;
        int n = left > 0 ? poll(p, (nfds_t)k, (int)(left < INT32_MAX ? left : INT32_MAX)) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "weir send: %s: the server did not close %d of %d connection(s) "
                    "within the timeout after the last byte (all %llu bytes were sent)\n",
                    s->addr, open, s->n, (unsigned long long)s->bytes);
            rc = EXIT_RUNTIME;
            break;
        }
        for (int j = 0; j < k; j++) {
            if (!p[j].revents)
                continue;
            struct out *o = &s->outs[idx[j]];
            char junk[4096];
            int want;
            /* Replies are ignored; with TLS they are read through it, so
             * an alert (a refused client certificate) is reported. */
            ssize_t r = o->tls ? tls_read(o->tls, junk, sizeof junk, &want)
                               : read(p[j].fd, junk, sizeof junk);
            if ((r < 0 && !o->tls && errno == EINTR) || r == WEIR_EAGAIN || r > 0)
                continue;
            o->open = 0;
            open--;
            if (r < 0 && !rc && o->tls) {
                fprintf(stderr, "weir send: %s: the server ended the TLS connection: %s "
                        "(all %llu bytes were sent, not all may have been read; %s)\n",
                        s->addr, tls_error(o->tls), (unsigned long long)s->bytes,
                        TLS_REFUSED_HINT);
                rc = EXIT_RUNTIME;
            } else if (r < 0 && !rc) {
                rc = fail_conn(s, errno, "waiting for the server to close:");
            }
        }
        if (rc)
            break;
    }
    free(p);
    free(idx);
    return rc;
}

static const struct option options[] = {
    {"conns", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'r'},
    {"timeout", required_argument, NULL, 't'},
    {"verbose", no_argument, NULL, 'v'},
    {"tls", no_argument, NULL, 'T'},
    {"ca", required_argument, NULL, 'A'},
    {"cert", required_argument, NULL, 'C'},
    {"key", required_argument, NULL, 'K'},
    {"insecure", no_argument, NULL, 'I'},
    {NULL, 0, NULL, 0},
};

/* The host part of "host:port" or "[v6]:port", for certificate checks. */
static void host_of(const char *addr, char *out, size_t cap)
{
    const char *start = addr, *end = strrchr(addr, ':');
    if (addr[0] == '[') {
        start = addr + 1;
        end = strchr(addr, ']');
    }
    size_t n = end && end > start ? (size_t)(end - start) : strlen(start);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

int cmd_send(int argc, char **argv)
{
    struct sender s = {0};
    int64_t timeout_ns = 30 * WTIME_NS_PER_S;
    int verbose = 0, rc = EXIT_RUNTIME, c, use_tls = 0, insecure = 0;
    const char *ca = NULL, *cert = NULL, *key = NULL;
    int *ins = NULL, nins = 0;
    char *end;

    s.n = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:r:t:v", options, NULL)) != -1) {
        switch (c) {
        case 'n': {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > MAX_CONNS)
                return cli_usage_error("send", "--conns: expected 1 to %d, got '%s'",
                                       MAX_CONNS, optarg);
            s.n = (int)v;
            break;
        }
        case 'r':
            errno = 0;
            s.rate = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(s.rate > 0) || s.rate > 1e9)
                return cli_usage_error("send", "--rate: expected records per second > 0, "
                                       "got '%s'", optarg);
            break;
        case 't':
            if (wtime_parse_duration(optarg, &timeout_ns) != 0 || timeout_ns <= 0)
                return cli_usage_error("send", "--timeout: expected a duration such as "
                                       "30 or 30s or 2m, got '%s'", optarg);
            break;
        case 'v':
            verbose = 1;
            break;
        case 'T': use_tls = 1; break;
        case 'A': ca = optarg; break;
        case 'C': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'I': insecure = 1; break;
        default:
            return cli_usage_error("send", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("send", "missing HOST:PORT");
    if ((ca || cert || key || insecure) && !use_tls)
        return cli_usage_error("send", "--ca, --cert, --key and --insecure need --tls");
    if (!cert != !key)
        return cli_usage_error("send", "--cert and --key go together");
    struct net_addr addr;
    struct weir_errmsg e;
    host_of(argv[optind], s.host, sizeof s.host);
    if (net_addr_parse(&addr, argv[optind++], &e) != 0)
        return cli_usage_error("send", "%s", e.text);
    s.addr = addr.text;
    if (use_tls && tls_ctx_new_client(ca, cert, key, insecure, &s.tls, &e) != 0) {
        fprintf(stderr, "weir send: %s\n", e.text);
        return EXIT_USAGE;
    }

    /* Every input is opened before anything is sent: a typo in the third
     * file name must not leave the first two half-delivered. */
    int nfiles = argc - optind;
    ins = calloc((size_t)(nfiles ? nfiles : 1), sizeof *ins);
    s.outs = calloc((size_t)s.n, sizeof *s.outs);
    s.chunk = malloc(IN_CHUNK);
    if (!ins || !s.outs || !s.chunk)
        goto nomem;
    for (int i = 0; i < s.n; i++)
        s.outs[i].fd = -1;
    if (nfiles == 0) {
        ins[nins++] = STDIN_FILENO;
    }
    for (int i = 0; i < nfiles; i++) {
        const char *name = argv[optind + i];
        int fd = strcmp(name, "-") == 0 ? STDIN_FILENO : open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "weir send: %s: %s\n", name, strerror(errno));
            goto done;
        }
        ins[nins++] = fd;
    }

    signal(SIGPIPE, SIG_IGN);
    if (s.n > 1 || s.rate > 0) {
        s.cap = OUT_TOTAL / (size_t)s.n;
        s.cap = s.cap > OUT_MAX ? OUT_MAX : s.cap < OUT_MIN ? OUT_MIN : s.cap;
        for (int i = 0; i < s.n; i++)
            if (!(s.outs[i].buf = malloc(s.cap)))
                goto nomem;
        s.rate_every = s.rate > 100 ? (uint64_t)(s.rate / 100) : 1;
    }
    int64_t deadline = wtime_mono_ns() + timeout_ns;
    for (int i = 0; i < s.n; i++)
        if ((rc = connect_one(&s, &addr, deadline, &s.outs[i].fd)) != 0 ||
            (s.tls && (rc = handshake(&s, &s.outs[i], deadline)) != 0))
            goto done;

    s.t0 = wtime_mono_ns();
    for (int i = 0; i < nins; i++) {
        const char *name = nfiles ? argv[optind + i] : "-";
        if ((rc = send_input(&s, ins[i], strcmp(name, "-") ? name : "stdin", verbose)) != 0)
            goto done;
    }
    rc = finish(&s, timeout_ns);
    if (rc == 0 && verbose) {
        double secs = (double)(wtime_mono_ns() - s.t0) / 1e9;
        fprintf(stderr, "weir send: %llu lines, %llu bytes to %s over %d connection(s) "
                "in %.3f s (%.0f lines/s, %.1f MB/s)\n",
                (unsigned long long)s.lines, (unsigned long long)s.bytes, s.addr, s.n, secs,
                secs > 0 ? (double)s.lines / secs : 0.0,
                secs > 0 ? (double)s.bytes / secs / 1e6 : 0.0);
    }
    goto done;
nomem:
    fprintf(stderr, "weir send: out of memory\n");
    rc = EXIT_RUNTIME;
done:
    for (int i = 0; i < nins; i++)
        if (ins[i] != STDIN_FILENO)
            close(ins[i]);
    if (s.outs)
        for (int i = 0; i < s.n; i++) {
            tls_free(s.outs[i].tls);
            if (s.outs[i].fd >= 0)
                close(s.outs[i].fd);
            free(s.outs[i].buf);
        }
    free(s.outs);
    if (s.tls) {
        tls_ctx_free(s.tls);
        tls_global_cleanup();
    }
    free(s.chunk);
    free(ins);
    return rc;
}
