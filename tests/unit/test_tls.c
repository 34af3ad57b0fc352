/*
 * test_tls.c - net/tls.h and TLS connections in net/conn.h.
 *
 * Certificates are made with the openssl command line in a scratch folder
 * (skipped with a message when it is missing). A connection set on a loop
 * driven by hand serves one end of a socketpair; a client thread speaks
 * TLS on the other end with tls.h's client side:
 *   - records arrive whole and in order while the server pauses (from the
 *     loop and from inside on_record) and resumes; the client sends in batches
 *     and waits for each to arrive before the next, so bytes stuck in
 *     OpenSSL's buffers (which epoll cannot see) would hang the test
 *     instead of being flushed by the end of the stream;
 *   - a TLS record that arrives in small pieces (a slow link) does not
 *     make the loop spin while it waits for the rest: OpenSSL then holds
 *     bytes (SSL_has_pending) that are no record yet;
 *   - a client that sends nothing is closed after handshake_ms;
 *   - a plain-text client fails the handshake; both are counted;
 *   - bad files make tls_ctx_new_server fail with the file named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/log.h"
#include "core/wtime.h"
#include "net/conn.h"
#include "net/loop.h"
#include "net/tls.h"
#include "tmpdir.h"

static char dir[512];
static int have_certs;

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int setup_certs(void **state)
{
    char *d = tmpdir_make(NULL, "tls");
    if (!d)
        return -1;
    snprintf(dir, sizeof dir, "%s", d);
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    have_certs =
        sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
           "-subj /CN=t-ca >/dev/null 2>&1", dir, ec) == 0 &&
        sh("cd %s && openssl req %s -keyout server.key -out server.csr -subj /CN=127.0.0.1 "
           ">/dev/null 2>&1", dir, ec) == 0 &&
        sh("cd %s && printf 'subjectAltName=IP:127.0.0.1\\n' >san && openssl x509 -req "
           "-in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
           "-extfile san >/dev/null 2>&1", dir) == 0 &&
        sh("cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
           "-out other.key >/dev/null 2>&1", dir) == 0;
    if (!have_certs)
        fprintf(stderr, "skipped: the openssl command could not make certificates\n");
    return 0;
}

static int teardown_certs(void **state)
{
    tmpdir_remove(dir);
    return 0;
}

static char *at(const char *name)
{
    static char paths[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(paths[k], sizeof paths[k], "%s/%s", dir, name);
    return paths[k];
}

/* --- the server side ------------------------------------------------------ */

struct srv {
    atomic_ulong records;
    unsigned long next;       /* expected sequence number */
    int out_of_order;
    enum conn_close_reason reason;
    int closed;
};

static void on_record(struct conn *c, const struct frame *f)
{
    struct srv *sv = conn_set_user(c->set);
    unsigned long seq = strtoul(f->data + 5, NULL, 10); /* {"s":N,...} */
    if (seq != sv->next)
        sv->out_of_order++;
    sv->next = seq + 1;
    /* Backpressure from inside a record, as the TCP source does: the
     * rest of the chunk still arrives, OpenSSL may keep more. */
    if (atomic_fetch_add(&sv->records, 1) % 97 == 0)
        conn_set_pause_all(c->set);
}

static void on_close(struct conn *c, enum conn_close_reason why)
{
    struct srv *sv = conn_set_user(c->set);
    sv->reason = why;
    sv->closed = 1;
}

static const struct conn_ops ops = {.on_record = on_record, .on_close = on_close};

/* --- the client thread ---------------------------------------------------- */

#define BATCHES 40
#define PER_BATCH 2500

struct cli {
    int fd;
    struct tls_ctx *ctx;
    struct srv *sv;
    int rc;                   /* 0 ok, else the step that failed */
};

static int write_all(struct tls *t, const char *p, size_t n)
{
    while (n > 0) {
        int want;
        ssize_t w = tls_write(t, p, n, &want);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *client(void *arg)
{
    struct cli *cl = arg;
    struct tls *t = NULL;
    int want;
    char line[256];
    static char batch[PER_BATCH * 200];
    unsigned seed = 7;
    cl->rc = 1;
    if (tls_new(cl->ctx, cl->fd, "127.0.0.1", &t) != 0 || tls_handshake(t, &want) != 0)
        goto out;
    cl->rc = 2;
    for (int b = 0; b < BATCHES; b++) {
        size_t len = 0;
        for (int i = 0; i < PER_BATCH; i++) {
            int n = snprintf(line, sizeof line, "{\"s\":%d,\"pad\":\"%.*s\"}\n",
                             b * PER_BATCH + i, (int)(rand_r(&seed) % 120),
                             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            memcpy(batch + len, line, (size_t)n);
            len += (size_t)n;
        }
        /* Random write sizes: many small TLS records and some large. */
        for (size_t off = 0; off < len;) {
            size_t n = 1 + rand_r(&seed) % 20000;
            if (n > len - off)
                n = len - off;
            if (write_all(t, batch + off, n) != 0)
                goto out;
            off += n;
        }
        /* Wait until the server has every record of the batch: bytes
         * stuck in OpenSSL's buffer would stop us here. */
        int64_t end = wtime_mono_ns() + 5 * WTIME_NS_PER_S;
        while (atomic_load(&cl->sv->records) < (unsigned long)(b + 1) * PER_BATCH) {
            if (wtime_mono_ns() > end) {
                cl->rc = 3;
                goto out;
            }
            usleep(200);
        }
    }
    tls_close(t);
    shutdown(cl->fd, SHUT_WR);
    char junk[512];
    while (read(cl->fd, junk, sizeof junk) > 0)
        ;
    cl->rc = 0;
out:
    tls_free(t);
    return NULL;
}

/* Run l until the set is empty or ms pass, pausing and resuming the set
 * every few iterations when flap is set (and resuming what on_record
 * paused). */
static void drive(struct loop *l, struct conn_set *s, int64_t ms, int flap)
{
    int64_t end = wtime_mono_ns() + ms * WTIME_NS_PER_MS;
    for (int i = 0; conn_set_count(s) > 0 && wtime_mono_ns() < end; i++) {
        if (flap && i % 3 == 0)
            conn_set_pause_all(s);
        else
            conn_set_resume_all(s);
        assert_true(loop_run_once(l, 5) >= 0);
    }
}

static struct conn_set *server_set(struct loop *l, struct srv *sv, struct tls_ctx *ctx,
                                   int64_t handshake_ms)
{
    struct weir_errmsg e;
    struct conn_config cfg = {.ops = &ops, .user = sv, .tls = ctx,
                              .handshake_ms = handshake_ms, .name = "tls"};
    struct conn_set *s = conn_set_new(l, &cfg, &e);
    assert_non_null(s);
    return s;
}

static void test_records_through_pauses(void **state)
{
    if (!have_certs)
        skip();
    struct weir_errmsg e;
    struct tls_ctx *sctx = NULL, *cctx = NULL;
    assert_int_equal(tls_ctx_new_server(at("server.pem"), at("server.key"), NULL, "t",
                                        &sctx, &e), 0);
    assert_int_equal(tls_ctx_new_client(at("ca.pem"), NULL, NULL, 0, &cctx, &e), 0);
    struct loop *l = loop_new(&e);
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    struct conn_set *s = server_set(l, &sv, sctx, 0);
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    struct cli cl = {.fd = fds[1], .ctx = cctx, .sv = &sv, .rc = -1};
    /* The client's end blocks. */
    int fl = fcntl(fds[1], F_GETFL);
    fcntl(fds[1], F_SETFL, fl & ~O_NONBLOCK);
    assert_int_equal(conn_set_add(s, fds[0], "pair:tls", NULL), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client, &cl), 0);
    drive(l, s, 30000, 1);
    pthread_join(th, NULL);
    assert_int_equal(cl.rc, 0);
    assert_int_equal(atomic_load(&sv.records), BATCHES * PER_BATCH);
    assert_int_equal(sv.out_of_order, 0);
    assert_true(sv.closed);
    assert_int_equal(sv.reason, CONN_EOF);
    struct conn_stats st;
    conn_set_stats(s, &st);
    assert_int_equal(st.tls_handshakes, 1);
    assert_int_equal(st.tls_failures, 0);
    close(fds[1]);
    conn_set_free(s);
    loop_free(l);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

/* Copy between a and b both ways, a -> b in 64-byte pieces 1 ms apart,
 * until a's side ends; then half-close b and pass b's answers back until
 * b ends. A slow link. */
struct trickle {
    int a, b;
};

static void *trickle(void *arg)
{
    struct trickle *t = arg;
    char buf[4096];
    int a_open = 1;
    for (;;) {
        struct pollfd p[2] = {{t->a, a_open ? POLLIN : 0, 0}, {t->b, POLLIN, 0}};
        if (poll(p, 2, 5000) <= 0)
            break;
        if (p[0].revents) {
            ssize_t n = read(t->a, buf, 64);
            if (n <= 0) {
                a_open = 0;
                shutdown(t->b, SHUT_WR);
            } else {
                for (ssize_t off = 0; off < n;) {
                    ssize_t w = write(t->b, buf + off, (size_t)(n - off));
                    if (w <= 0)
                        return NULL;
                    off += w;
                }
                usleep(1000);
            }
        }
        if (p[1].revents) {
            ssize_t n = read(t->b, buf, sizeof buf);
            if (n <= 0) {
                shutdown(t->a, SHUT_WR);
                break;
            }
            if (write(t->a, buf, (size_t)n) != n)
                break;
        }
    }
    return NULL;
}

struct slow_cli {
    int fd;
    struct tls_ctx *ctx;
    int rc;
};

static void *slow_client(void *arg)
{
    struct slow_cli *cl = arg;
    struct tls *t = NULL;
    int want;
    static char recs[40 * 400];
    size_t len = 0;
    cl->rc = 1;
    if (tls_new(cl->ctx, cl->fd, "127.0.0.1", &t) != 0 || tls_handshake(t, &want) != 0)
        goto out;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(recs + len, sizeof recs - len, "{\"s\":%d,\"pad\":\"%0300d\"}\n",
                                i, i);
    /* One write: one TLS record of about 13 KB, arriving 64 bytes at a time. */
    cl->rc = 2;
    if (write_all(t, recs, len) != 0)
        goto out;
    tls_close(t);
    shutdown(cl->fd, SHUT_WR);
    char junk[512];
    while (read(cl->fd, junk, sizeof junk) > 0)
        ;
    cl->rc = 0;
out:
    tls_free(t);
    return NULL;
}

static void test_slow_link_does_not_spin(void **state)
{
    if (!have_certs)
        skip();
    struct weir_errmsg e;
    struct tls_ctx *sctx = NULL, *cctx = NULL;
    assert_int_equal(tls_ctx_new_server(at("server.pem"), at("server.key"), NULL, "t",
                                        &sctx, &e), 0);
    assert_int_equal(tls_ctx_new_client(at("ca.pem"), NULL, NULL, 0, &cctx, &e), 0);
    struct loop *l = loop_new(&e);
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    struct conn_set *s = server_set(l, &sv, sctx, 0);
    int ca[2], sb[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, ca), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sb), 0);
    fcntl(sb[0], F_SETFL, fcntl(sb[0], F_GETFL) | O_NONBLOCK);
    assert_int_equal(conn_set_add(s, sb[0], "pair:slow", NULL), 0);
    struct trickle tr = {ca[1], sb[1]};
    struct slow_cli cl = {.fd = ca[0], .ctx = cctx, .rc = -1};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, trickle, &tr), 0);
    assert_int_equal(pthread_create(&t2, NULL, slow_client, &cl), 0);
    long callbacks = 0;
    int64_t end = wtime_mono_ns() + 20 * WTIME_NS_PER_S;
    while (conn_set_count(s) > 0 && wtime_mono_ns() < end) {
        conn_set_resume_all(s); /* on_record pauses now and then */
        int n = loop_run_once(l, 50);
        assert_true(n >= 0);
        callbacks += n;
    }
    pthread_join(t2, NULL);
    pthread_join(t1, NULL);
    assert_int_equal(cl.rc, 0);
    assert_int_equal(atomic_load(&sv.records), 40);
    assert_int_equal(sv.reason, CONN_EOF);
    /* About one callback per 64-byte piece (some 250): a loop that redid
     * reads of an incomplete record ran one per iteration, without
     * waiting, tens of thousands of times. */
    print_message("%ld callbacks for about 250 pieces\n", callbacks);
    assert_true(callbacks < 2500);
    close(ca[0]);
    close(ca[1]);
    close(sb[1]);
    conn_set_free(s);
    loop_free(l);
    tls_ctx_free(sctx);
    tls_ctx_free(cctx);
}

static void test_handshake_timeout_and_plain_client(void **state)
{
    if (!have_certs)
        skip();
    struct weir_errmsg e;
    struct tls_ctx *sctx = NULL;
    assert_int_equal(tls_ctx_new_server(at("server.pem"), at("server.key"), at("ca.pem"),
                                        "t", &sctx, &e), 0);
    struct loop *l = loop_new(&e);
    static struct srv sv;
    memset(&sv, 0, sizeof sv);
    struct conn_set *s = server_set(l, &sv, sctx, 150);

    /* Silent: closed after about 150 ms. */
    int a[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    assert_int_equal(conn_set_add(s, a[0], "pair:silent", NULL), 0);
    int64_t t0 = wtime_mono_ns();
    drive(l, s, 3000, 0);
    int64_t took = (wtime_mono_ns() - t0) / WTIME_NS_PER_MS;
    assert_int_equal(conn_set_count(s), 0);
    assert_true(took >= 140 && took < 1500);
    assert_int_equal(sv.reason, CONN_TLS);

    /* Plain text: fails at its first bytes, long before the timeout. */
    int b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    assert_int_equal(write(b[1], "{\"s\":0}\n", 8), 8);
    assert_int_equal(conn_set_add(s, b[0], "pair:plain", NULL), 0);
    t0 = wtime_mono_ns();
    drive(l, s, 3000, 0);
    assert_int_equal(conn_set_count(s), 0);
    assert_true((wtime_mono_ns() - t0) / WTIME_NS_PER_MS < 140);
    assert_int_equal(sv.reason, CONN_TLS);
    assert_int_equal(atomic_load(&sv.records), 0);

    struct conn_stats st;
    conn_set_stats(s, &st);
    assert_int_equal(st.tls_failures, 2);
    assert_int_equal(st.tls_timeouts, 1);
    assert_int_equal(st.tls_handshakes, 0);
    close(a[1]);
    close(b[1]);
    conn_set_free(s);
    loop_free(l);
    tls_ctx_free(sctx);
}

static void test_bad_files(void **state)
{
    if (!have_certs)
        skip();
    struct weir_errmsg e = {0};
    struct tls_ctx *c = NULL;
    char want[1200];

    assert_int_equal(tls_ctx_new_server(at("server.pem"), at("other.key"), NULL, "p: tls",
                                        &c, &e), WEIR_ECONFIG);
    assert_null(c);
    snprintf(want, sizeof want, "p: tls.key: %s: does not match the certificate %s",
             at("other.key"), at("server.pem"));
    assert_string_equal(e.text, want);

    assert_int_equal(tls_ctx_new_server(at("nope.pem"), at("server.key"), NULL, "p: tls",
                                        &c, &e), WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "p: tls.cert: "));
    assert_non_null(strstr(e.text, "nope.pem: No such file or directory"));

    assert_int_equal(tls_ctx_new_server(at("server.key"), at("server.key"), NULL, "p: tls",
                                        &c, &e), WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "cannot load the certificate"));

    assert_int_equal(tls_ctx_new_server(at("server.pem"), at("server.key"), at("san"),
                                        "p: tls", &c, &e), WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "p: tls.ca: "));
    assert_non_null(strstr(e.text, "cannot load the CA certificates"));

    assert_int_equal(tls_ctx_new_client(NULL, at("server.pem"), at("other.key"), 0, &c, &e),
                     WEIR_ECONFIG);
    assert_non_null(strstr(e.text, "does not match the certificate"));
    tls_ctx_free(NULL);
    tls_free(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_setup_from_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_records_through_pauses),
        cmocka_unit_test(test_slow_link_does_not_spin),
        cmocka_unit_test(test_handshake_timeout_and_plain_client),
    };
    int rc = cmocka_run_group_tests(tests, setup_certs, teardown_certs);
    tls_global_cleanup();
    return rc;
}
