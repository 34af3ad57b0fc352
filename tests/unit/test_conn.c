/*
 * test_conn.c - addresses, listeners and connections over real sockets on
 * 127.0.0.1 (port 0): 1,000 concurrent senders counted exactly across two
 * SO_REUSEPORT loops, the connection limit, pause/resume stopping the
 * sender, shutdown with a drain, records cut by the end of a connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/wtime.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/loop.h"

/* --- addresses and listeners ---------------------------------------------- */

static void test_addr_parse(void **state)
{
    struct net_addr a;
    struct weir_errmsg e;
    assert_int_equal(net_addr_parse(&a, "127.0.0.1:7601", &e), 0);
    assert_string_equal(a.text, "127.0.0.1:7601");
    assert_int_equal(net_addr_port(&a), 7601);
    assert_int_equal(net_addr_parse(&a, "0.0.0.0:0", &e), 0);
    assert_string_equal(a.text, "0.0.0.0:0");
    assert_int_equal(net_addr_parse(&a, "[::1]:65535", &e), 0);
    assert_string_equal(a.text, "[::1]:65535");
    assert_int_equal(net_addr_parse(&a, "localhost:80", &e), 0);
    assert_string_equal(a.text, "127.0.0.1:80");

    static const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                                "127.0.0.1:-1", "127.0.0.1:7a", ":7601", "::1:7601",
                                "[::1]7601", "[::1", "[]:1", "[nothost]:1",
                                "256.1.1.1:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e.text[0] = '\0';
        assert_true(net_addr_parse(&a, bad[i], &e) < 0);
        /* The message names what was given. */
        assert_non_null(strstr(e.text, bad[i]));
    }
    assert_non_null(strstr((net_addr_parse(&a, "::1:7601", &e), e.text), "brackets"));
}

static void test_listen(void **state)
{
    struct net_addr a, bound, again;
    struct weir_errmsg e;
    int fd, fds[3], other[2];
    assert_int_equal(net_addr_parse(&a, "127.0.0.1:0", &e), 0);
    assert_int_equal(listen_open(&a, 0, &fd, &bound, &e), 0);
    assert_true(net_addr_port(&bound) > 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);

    /* A group shares one port; a second group there is refused, by name. */
    assert_int_equal(listen_open_group(&a, 3, 0, fds, &bound, &e), 0);
    assert_true(net_addr_port(&bound) > 0);
    for (int i = 0; i < 3; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&ss, &len), 0);
        net_addr_from(&again, (struct sockaddr *)&ss, len);
        assert_string_equal(again.text, bound.text);
    }
    assert_int_equal(listen_open_group(&bound, 2, 0, other, NULL, &e), WEIR_EEXIST);
    char want[128];
    snprintf(want, sizeof want, "%s: address already in use", bound.text);
    assert_string_equal(e.text, want);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    /* Free again once closed (SO_REUSEADDR: no TIME_WAIT trouble). */
    assert_int_equal(listen_open_group(&bound, 2, 0, other, NULL, &e), 0);
    close(other[0]);
    close(other[1]);
}

/* --- a test server: N loops, each on its own thread ----------------------- */

#define MAXLOOPS 2
#define MAXCLIENTS 1000

struct srv {
    int nloops;
    struct loop *loops[MAXLOOPS];
    struct conn_set *sets[MAXLOOPS];
    pthread_t threads[MAXLOOPS];
    struct net_addr addr;
    struct conn_limit limit;
    /* Per client id (written only by the loop that owns that connection). */
    int got[MAXCLIENTS];
    int out_of_order;
    /* Any loop. */
    atomic_int records, eof_closes, other_closes, at_eof, truncated, done;
    /* Last record content and close reason, for single-connection tests. */
    char last[256];
    size_t last_len;
    unsigned last_flags;
    enum conn_close_reason last_reason;
    struct conn *only; /* the last connection opened */
    int pause_first, close_on_bye;
};

static void srv_on_open(struct conn *c)
{
    struct srv *sv = conn_set_user(c->set);
    c->user = (void *)(intptr_t)-1;
    sv->only = c;
}

static void srv_on_record(struct conn *c, const struct frame *fr)
{
    struct srv *sv = conn_set_user(c->set);
    int id, seq;
    atomic_fetch_add(&sv->records, 1);
    if (fr->flags & FRAME_AT_EOF)
        atomic_fetch_add(&sv->at_eof, 1);
    if (fr->flags & FRAME_TRUNCATED)
        atomic_fetch_add(&sv->truncated, 1);
    sv->last_len = fr->len < sizeof sv->last ? fr->len : sizeof sv->last;
    memcpy(sv->last, fr->data, sv->last_len);
    sv->last_flags = fr->flags;
    if (sv->pause_first && c->records == 1)
        conn_pause(c);
    if (sv->close_on_bye && fr->len == 3 && memcmp(fr->data, "bye", 3) == 0)
        conn_close(c);
    /* Records "{"c":ID,"r":SEQ}" come in order per connection. */
    char tmp[64];
    if (fr->len >= sizeof tmp)
        return;
    memcpy(tmp, fr->data, fr->len);
    tmp[fr->len] = '\0';
    if (sscanf(tmp, "{\"c\":%d,\"r\":%d}", &id, &seq) != 2 || id < 0 || id >= MAXCLIENTS)
        return;
    if (seq != sv->got[id])
        sv->out_of_order++;
    sv->got[id]++;
}

static void srv_on_close(struct conn *c, enum conn_close_reason why)
{
    struct srv *sv = conn_set_user(c->set);
    sv->last_reason = why;
    if (why == CONN_EOF)
        atomic_fetch_add(&sv->eof_closes, 1);
    else
        atomic_fetch_add(&sv->other_closes, 1);
    if (sv->only == c)
        sv->only = NULL;
}

static const struct conn_ops srv_ops = {
    .on_open = srv_on_open, .on_record = srv_on_record, .on_close = srv_on_close};

static void *srv_thread(void *arg)
{
    loop_run(arg);
    return NULL;
}

static void srv_start(struct srv *sv, int nloops, unsigned max_conns, size_t max_record)
{
    struct weir_errmsg e;
    struct net_addr a;
    int fds[MAXLOOPS];
    sv->nloops = nloops;
    conn_limit_init(&sv->limit, max_conns);
    assert_int_equal(net_addr_parse(&a, "127.0.0.1:0", &e), 0);
    assert_int_equal(listen_open_group(&a, nloops, 0, fds, &sv->addr, &e), 0);
    struct conn_config cfg = {.ops = &srv_ops, .user = sv, .max_record = max_record,
                              .limit = &sv->limit, .name = "test"};
    for (int i = 0; i < nloops; i++) {
        sv->loops[i] = loop_new(&e);
        assert_non_null(sv->loops[i]);
        sv->sets[i] = conn_set_new(sv->loops[i], &cfg, &e);
        assert_non_null(sv->sets[i]);
        assert_int_equal(conn_set_listen(sv->sets[i], fds[i]), 0);
    }
    for (int i = 0; i < nloops; i++)
        assert_int_equal(pthread_create(&sv->threads[i], NULL, srv_thread, sv->loops[i]), 0);
}

static void srv_stop(struct srv *sv)
{
    for (int i = 0; i < sv->nloops; i++) {
        loop_stop(sv->loops[i]);
        pthread_join(sv->threads[i], NULL);
    }
    for (int i = 0; i < sv->nloops; i++) {
        conn_set_free(sv->sets[i]);
        loop_free(sv->loops[i]);
    }
}

static void srv_totals(struct srv *sv, struct conn_stats *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < sv->nloops; i++) {
        struct conn_stats s;
        conn_set_stats(sv->sets[i], &s);
        t->accepted += s.accepted;
        t->refused += s.refused;
        t->closed += s.closed;
        t->active += s.active;
        t->bytes += s.bytes;
        t->records += s.records;
        t->truncated += s.truncated;
        t->paused_ns += s.paused_ns;
    }
}

/* Wait (up to 10 s) until *v reaches want. */
static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
        usleep(1000);
    assert_int_equal(atomic_load(v), want);
}

static int client_connect(const struct net_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)&a->sa, a->len), 0);
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Read until the server closes; returns the bytes read (should be 0). */
static size_t wait_closed(int fd)
{
    char b[64];
    size_t total = 0;
    struct pollfd p = {fd, POLLIN, 0};
    for (;;) {
        assert_int_equal(poll(&p, 1, 10000), 1);
        ssize_t n = read(fd, b, sizeof b);
        if (n <= 0)
            return total;
        total += (size_t)n;
    }
}

/* --- 1,000 concurrent connections --------------------------------------- */

#define NRECS 25

static void test_thousand_connections(void **state)
{
    static struct srv sv;
    static int fds[MAXCLIENTS];
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * MAXCLIENTS + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * MAXCLIENTS + 64)
            skip();
    }
    memset(&sv, 0, sizeof sv);
    srv_start(&sv, 2, 4096, 0);

    /* All connected at once before anyone sends. */
    for (int i = 0; i < MAXCLIENTS; i++)
        fds[i] = client_connect(&sv.addr);
    char buf[NRECS * 40];
    size_t total_bytes = 0;
    for (int i = 0; i < MAXCLIENTS; i++) {
        size_t n = 0;
        for (int r = 0; r < NRECS; r++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"c\":%d,\"r\":%d}%s", i, r,
                                  r % 3 ? "\n" : "\r\n");
        /* Cut in two writes at a per-client position, so records span reads. */
        size_t cut = (size_t)(i * 7) % n;
        write_all(fds[i], buf, cut);
        total_bytes += n;
        if (i % 2)
            write_all(fds[i], buf + cut, n - cut);
        else
            fds[i] = -fds[i] - 1; /* second half later */
    }
    for (int i = 0; i < MAXCLIENTS; i += 2) {
        int fd = -fds[i] - 1;
        fds[i] = fd;
        size_t n = 0;
        for (int r = 0; r < NRECS; r++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"c\":%d,\"r\":%d}%s", i, r,
                                  r % 3 ? "\n" : "\r\n");
        size_t cut = (size_t)(i * 7) % n;
        write_all(fd, buf + cut, n - cut);
    }
    for (int i = 0; i < MAXCLIENTS; i++)
        shutdown(fds[i], SHUT_WR);
    for (int i = 0; i < MAXCLIENTS; i++) {
        assert_int_equal(wait_closed(fds[i]), 0);
        close(fds[i]);
    }
    wait_for(&sv.eof_closes, MAXCLIENTS);
    struct conn_stats t, s0, s1;
    srv_totals(&sv, &t);
    conn_set_stats(sv.sets[0], &s0);
    conn_set_stats(sv.sets[1], &s1);
    srv_stop(&sv);

    assert_int_equal(atomic_load(&sv.records), MAXCLIENTS * NRECS);
    assert_int_equal(sv.out_of_order, 0);
    for (int i = 0; i < MAXCLIENTS; i++)
        assert_int_equal(sv.got[i], NRECS);
    assert_int_equal(atomic_load(&sv.other_closes), 0);
    assert_int_equal(atomic_load(&sv.at_eof), 0);
    assert_int_equal(t.accepted, MAXCLIENTS);
    assert_int_equal(t.closed, MAXCLIENTS);
    assert_int_equal(t.active, 0);
    assert_int_equal(t.records, MAXCLIENTS * NRECS);
    assert_int_equal(t.bytes, total_bytes);
    assert_int_equal(atomic_load(&sv.limit.active), 0);
    /* The kernel spread them over both loops (SO_REUSEPORT). */
    assert_true(s0.accepted > 100 && s1.accepted > 100);
    assert_int_equal(s0.accepted + s1.accepted, MAXCLIENTS);
}

/* --- the connection limit ---------------------------------------------- */

static void test_limit(void **state)
{
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    srv_start(&sv, 1, 5, 0);
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = client_connect(&sv.addr);
    /* The 3 over the limit are accepted and closed at once. */
    int closed = 0;
    for (int i = 0; i < 8; i++) {
        struct pollfd p = {fds[i], POLLIN, 0};
        if (poll(&p, 1, i < 5 ? 50 : 2000) == 1 && read(fds[i], &(char){0}, 1) <= 0)
            closed++;
    }
    assert_int_equal(closed, 3);
    struct conn_stats t;
    srv_totals(&sv, &t);
    assert_int_equal(t.refused, 3);
    assert_int_equal(t.accepted, 5);
    /* A slot freed is a slot available. */
    close(fds[0]);
    wait_for(&sv.eof_closes, 1);
    int again = client_connect(&sv.addr);
    write_all(again, "x\n", 2);
    wait_for(&sv.records, 1);
    for (int i = 1; i < 8; i++)
        close(fds[i]);
    close(again);
    wait_for(&sv.eof_closes, 6);
    srv_stop(&sv);
    assert_int_equal(atomic_load(&sv.limit.active), 0);
}

/* --- pause / resume ----------------------------------------------------- */

static void post_resume(struct loop *l, void *data)
{
    struct srv *sv = data;
    if (sv->only)
        conn_resume(sv->only);
}

static void post_pause_all(struct loop *l, void *data)
{
    conn_set_pause_all(((struct srv *)data)->sets[0]);
}

static void post_resume_all(struct loop *l, void *data)
{
    conn_set_resume_all(((struct srv *)data)->sets[0]);
}

static uint64_t srv_bytes(struct srv *sv)
{
    struct conn_stats t;
    srv_totals(sv, &t);
    return t.bytes;
}

/* Write a stream of copies of rec (non-blocking) until the socket says
 * EAGAIN. *sent counts the bytes of the stream written so far, so a record
 * cut by a short write is continued by the next call. */
static void fill_until_blocked(int fd, const char *rec, size_t len, uint64_t *sent)
{
    static char block[1 << 16];
    size_t per = sizeof block / len;
    for (size_t i = 0; i < per; i++)
        memcpy(block + i * len, rec, len);
    uint64_t start = *sent;
    for (;;) {
        size_t off = (size_t)(*sent % len);
        ssize_t w = write(fd, block + off, per * len - off);
        if (w < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        *sent += (uint64_t)w;
        assert_true(*sent - start < (256u << 20)); /* it must block long before */
    }
}

static void test_pause_resume(void **state)
{
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    sv.pause_first = 1;
    srv_start(&sv, 1, 0, 0);
    int fd = client_connect(&sv.addr);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    static const char rec[] = "{\"c\":0,\"r\":0,\"pad\":\"................................\"}\n";
    size_t len = sizeof rec - 1;
    uint64_t sent = 0;

    write_all(fd, rec, len);
    wait_for(&sv.records, 1); /* the first record paused the connection */
    fill_until_blocked(fd, rec, len, &sent);
    /* The server is not reading: its count stands still. */
    uint64_t b1 = srv_bytes(&sv);
    usleep(100000);
    assert_true(srv_bytes(&sv) == b1);
    assert_true(b1 <= len + 65536);

    /* Resume from another thread; the blocked sender moves again. */
    assert_int_equal(loop_post(sv.loops[0], post_resume, &sv), 0);
    int blocked = 1;
    for (int i = 0; i < 5000 && blocked; i++) {
        struct pollfd p = {fd, POLLOUT, 0};
        blocked = poll(&p, 1, 1) != 1;
    }
    assert_false(blocked);

    /* The whole set paused: the same, and the time is counted. */
    assert_int_equal(loop_post(sv.loops[0], post_pause_all, &sv), 0);
    usleep(20000);
    fill_until_blocked(fd, rec, len, &sent);
    b1 = srv_bytes(&sv);
    usleep(100000);
    assert_true(srv_bytes(&sv) == b1);
    assert_int_equal(loop_post(sv.loops[0], post_resume_all, &sv), 0);

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (sent % len) /* finish the record a short write cut */
        write_all(fd, rec + sent % len, len - sent % len), sent += len - sent % len;
    shutdown(fd, SHUT_WR);
    assert_int_equal(wait_closed(fd), 0);
    close(fd);
    wait_for(&sv.eof_closes, 1);
    struct conn_stats t;
    srv_totals(&sv, &t);
    srv_stop(&sv);
    assert_int_equal(atomic_load(&sv.records), (int)(sent / len + 1));
    assert_true(t.bytes == sent + len);
    assert_true(t.paused_ns >= 100 * (uint64_t)WTIME_NS_PER_MS);
}

/* --- shutdown, drain, cut records, local close, over-long ----------------- */

static void on_done(struct loop *l, void *data)
{
    atomic_fetch_add(&((struct srv *)data)->done, 1);
}

static void post_shutdown_200(struct loop *l, void *data)
{
    struct srv *sv = data;
    conn_set_shutdown(sv->sets[0], 200, on_done, sv);
}

static void test_shutdown_drain(void **state)
{
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    srv_start(&sv, 1, 0, 0);
    int a = client_connect(&sv.addr), b = client_connect(&sv.addr);
    write_all(a, "one\ntwo\npart", 12);
    write_all(b, "x\n", 2);
    wait_for(&sv.records, 3);
    int64_t t0 = wtime_mono_ns();
    assert_int_equal(loop_post(sv.loops[0], post_shutdown_200, &sv), 0);
    usleep(50000);
    /* Not accepting any more. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sv.addr.sa, sv.addr.len), -1);
    close(fd);
    /* Still reading the connected: a closes within the drain time. */
    write_all(a, "ial\nlast", 8);
    shutdown(a, SHUT_WR);
    assert_int_equal(wait_closed(a), 0);
    wait_for(&sv.records, 5);
    assert_int_equal(sv.last_flags, FRAME_AT_EOF);
    assert_int_equal(sv.last_len, 4);
    assert_memory_equal(sv.last, "last", 4);
    /* b holds on with half a record: cut at the drain time, delivered. */
    write_all(b, "unfinished", 10);
    wait_for(&sv.done, 1);
    assert_true(wtime_mono_ns() - t0 >= 190 * WTIME_NS_PER_MS);
    assert_int_equal(atomic_load(&sv.records), 6);
    assert_memory_equal(sv.last, "unfinished", 10);
    assert_int_equal(sv.last_flags, FRAME_AT_EOF);
    assert_int_equal(sv.last_reason, CONN_SHUTDOWN);
    assert_int_equal(wait_closed(b), 0);
    close(a);
    close(b);
    srv_stop(&sv);
}

static void post_shutdown_long(struct loop *l, void *data)
{
    struct srv *sv = data;
    conn_set_shutdown(sv->sets[0], 60000, on_done, sv);
}

static void test_close_and_truncate(void **state)
{
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    sv.close_on_bye = 1;
    srv_start(&sv, 1, 0, 16);
    int fd = client_connect(&sv.addr);
    /* Over-long: delivered once, truncated; then local close on "bye". */
    write_all(fd, "0123456789abcdefXYZ\nok\nbye\nnever\n", 33);
    assert_int_equal(wait_closed(fd), 0);
    close(fd);
    wait_for(&sv.other_closes, 1);
    assert_int_equal(sv.last_reason, CONN_LOCAL);
    assert_int_equal(atomic_load(&sv.records), 3);
    assert_int_equal(atomic_load(&sv.truncated), 1);

    /* A sender that disconnects mid-record: the fragment arrives, at EOF. */
    fd = client_connect(&sv.addr);
    write_all(fd, "{\"cut\":", 7);
    close(fd);
    wait_for(&sv.eof_closes, 1);
    assert_int_equal(atomic_load(&sv.records), 4);
    assert_int_equal(sv.last_flags, FRAME_AT_EOF);
    assert_memory_equal(sv.last, "{\"cut\":", 7);

    /* A drain with nobody connected ends at once; done runs once. */
    int64_t t0 = wtime_mono_ns();
    assert_int_equal(loop_post(sv.loops[0], post_shutdown_long, &sv), 0);
    assert_int_equal(loop_post(sv.loops[0], post_shutdown_long, &sv), 0);
    wait_for(&sv.done, 1);
    assert_true(wtime_mono_ns() - t0 < 5000 * WTIME_NS_PER_MS);
    usleep(20000);
    assert_int_equal(atomic_load(&sv.done), 1);
    srv_stop(&sv);
}


/* --- a set driven by hand, without threads, on a pipe ---------------------- */

static void test_adopted_pipe(void **state)
{
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    struct weir_errmsg e;
    conn_limit_init(&sv.limit, 1);
    struct loop *l = loop_new(&e);
    assert_non_null(l);
    struct conn_config cfg = {.ops = &srv_ops, .user = &sv, .limit = &sv.limit};
    struct conn_set *s = conn_set_new(l, &cfg, &e);
    assert_non_null(s);
    int p[2], q[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    struct conn *c = NULL;
    assert_int_equal(conn_set_add(s, p[0], "pipe:test", &c), 0);
    assert_non_null(c);
    assert_string_equal(c->peer, "pipe:test");
    /* The limit of 1 is taken: a second one is refused (and closed). */
    assert_int_equal(conn_set_add(s, q[0], "pipe:two", NULL), WEIR_ELIMIT);
    assert_int_equal(fcntl(q[0], F_GETFD), -1);
    close(q[1]);
    static const char in[] = "{\"c\":0,\"r\":0}\n{\"c\":0,\"r\":1}\ntail";
    write_all(p[1], in, sizeof in - 1);
    close(p[1]);
    for (int i = 0; i < 10 && conn_set_count(s) > 0; i++)
        assert_true(loop_run_once(l, 100) >= 0);
    assert_int_equal(conn_set_count(s), 0);
    assert_int_equal(atomic_load(&sv.records), 3);
    assert_int_equal(sv.got[0], 2);
    assert_int_equal(atomic_load(&sv.at_eof), 1);
    assert_int_equal(sv.last_reason, CONN_EOF);
    assert_int_equal(atomic_load(&sv.limit.active), 0);
    conn_set_free(s);
    loop_free(l);
}

/* --- idle timeout: a silent connection ends, its partial line delivered -- */

static void run_until_closed(struct loop *l, struct conn_set *s, int64_t max_ms)
{
    int64_t end = wtime_mono_ns() + max_ms * WTIME_NS_PER_MS;
    while (conn_set_count(s) > 0 && wtime_mono_ns() < end)
        assert_true(loop_run_once(l, 20) >= 0);
}

static void test_idle_timeout(void **state)
{
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    struct weir_errmsg e;
    conn_limit_init(&sv.limit, 0);
    struct loop *l = loop_new(&e);
    assert_non_null(l);
    struct conn_config cfg = {.ops = &srv_ops, .user = &sv, .limit = &sv.limit,
                              .idle_ms = 150};
    struct conn_set *s = conn_set_new(l, &cfg, &e);
    assert_non_null(s);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(conn_set_add(s, p[0], "pipe:idle", NULL), 0);
    static const char in[] = "{\"c\":0,\"r\":0}\n{\"cut\":";
    write_all(p[1], in, sizeof in - 1);

    /* Paused (backpressure), a connection is not idle: it is not read. */
    for (int i = 0; i < 3; i++)
        assert_true(loop_run_once(l, 10) >= 0);
    conn_set_pause_all(s);
    int64_t t0 = wtime_mono_ns();
    while (wtime_mono_ns() - t0 < 400 * WTIME_NS_PER_MS)
        assert_true(loop_run_once(l, 20) >= 0);
    assert_int_equal(conn_set_count(s), 1);

    /* Resumed, it gets the full timeout again, then ends. */
    t0 = wtime_mono_ns();
    conn_set_resume_all(s);
    run_until_closed(l, s, 2000);
    int64_t took = (wtime_mono_ns() - t0) / WTIME_NS_PER_MS;
    assert_int_equal(conn_set_count(s), 0);
    assert_true(took >= 140 && took < 1000);
    assert_int_equal(sv.last_reason, CONN_IDLE);
    assert_int_equal(atomic_load(&sv.records), 2);
    assert_int_equal(sv.last_flags, FRAME_AT_EOF);
    assert_memory_equal(sv.last, "{\"cut\":", 7);
    struct conn_stats st;
    conn_set_stats(s, &st);
    assert_int_equal(st.idle_closed, 1);
    assert_string_equal(conn_close_reason_name(CONN_IDLE), "idle");
    close(p[1]);
    conn_set_free(s);
    loop_free(l);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_shutdown_drain),
        cmocka_unit_test(test_close_and_truncate),
        cmocka_unit_test(test_adopted_pipe),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_thousand_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
