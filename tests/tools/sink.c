/*
 * sink.c - a test listener built on net/: counts records, optionally keeps
 * them, and shuts down like weir serve (stop accepting, drain, close).
 *
 *   sink [options] HOST:PORT
 *     --threads N      loops, each with its own SO_REUSEPORT listener (1)
 *     --port-file F    write the bound port to F once listening (port 0)
 *     --out F          append every record to F, one per line
 *     --tag            prefix each record in --out with "CONN LINE " (the
 *                      connection's accept number, the record's line)
 *     --max-record N   framer limit (default WEIR_DEFAULT_MAX_RECORD)
 *     --max-conns N    connection limit (default none)
 *     --drain-ms N     drain time at shutdown (default 5000)
 *     --delay-us N     sleep this long per record: a slow consumer
 *     --no-accept      listen but never accept (a server that never closes)
 *
 * SIGTERM or SIGINT starts the shutdown; the summary goes to stdout:
 *   records=N bytes=N conns=N truncated=N at_eof=N refused=N closed_eof=N
 */
#include "core/limits.h"
#include "core/log.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/loop.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64

static FILE *out;
static int tag;
static long delay_us;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong next_conn, at_eof, closed_eof;

struct worker {
    struct loop *loop;
    struct conn_set *set;
    pthread_t thread;
    int64_t drain_ms;
};

static void on_open(struct conn *c)
{
    c->user = (void *)(uintptr_t)atomic_fetch_add(&next_conn, 1);
}

static void on_record(struct conn *c, const struct frame *fr)
{
    if (fr->flags & FRAME_AT_EOF)
        atomic_fetch_add(&at_eof, 1);
    if (out) {
        pthread_mutex_lock(&out_lock);
        if (tag)
            fprintf(out, "%llu %llu ", (unsigned long long)(uintptr_t)c->user,
                    (unsigned long long)fr->line);
        fwrite(fr->data, 1, fr->len, out);
        fputc('\n', out);
        pthread_mutex_unlock(&out_lock);
    }
    if (delay_us)
        usleep((useconds_t)delay_us);
}

static void on_close(struct conn *c, enum conn_close_reason why)
{
    if (why == CONN_EOF)
        atomic_fetch_add(&closed_eof, 1);
}

static const struct conn_ops ops = {
    .on_open = on_open, .on_record = on_record, .on_close = on_close};

static void drained(struct loop *l, void *data)
{
    loop_stop(l);
}

static void begin_shutdown(struct loop *l, void *data)
{
    struct worker *w = data;
    conn_set_shutdown(w->set, w->drain_ms, drained, w);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    int rc = loop_run(w->loop);
    if (rc)
        log_error("sink: loop: %s", weir_strerror(rc));
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 'T'},
        {"port-file", required_argument, NULL, 'p'},
        {"out", required_argument, NULL, 'o'},
        {"tag", no_argument, NULL, 'g'},
        {"max-record", required_argument, NULL, 'm'},
        {"max-conns", required_argument, NULL, 'c'},
        {"drain-ms", required_argument, NULL, 'd'},
        {"delay-us", required_argument, NULL, 'u'},
        {"no-accept", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int nthreads = 1, c, no_accept = 0;
    const char *port_file = NULL;
    size_t max_record = 0;
    unsigned max_conns = 0;
    int64_t drain_ms = WEIR_DEFAULT_DRAIN_MS;
    static struct worker workers[MAX_THREADS];
    static struct conn_limit limit;

    log_setup_from_env();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'T': nthreads = (int)strtol(optarg, NULL, 10); break;
        case 'p': port_file = optarg; break;
        case 'o':
            out = fopen(optarg, "w");
            if (!out) {
                perror(optarg);
                return 2;
            }
            break;
        case 'g': tag = 1; break;
        case 'm': max_record = (size_t)strtoull(optarg, NULL, 10); break;
        case 'c': max_conns = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': drain_ms = strtoll(optarg, NULL, 10); break;
        case 'u': delay_us = strtol(optarg, NULL, 10); break;
        case 'N': no_accept = 1; break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "usage: sink [options] HOST:PORT\n");
        return 2;
    }

    /* The signals are taken by sigwait below, never by a loop thread. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct weir_errmsg e;
    struct net_addr a, bound;
    int fds[MAX_THREADS];
    if (net_addr_parse(&a, argv[optind], &e) ||
        listen_open_group(&a, nthreads, 0, fds, &bound, &e)) {
        fprintf(stderr, "sink: %s\n", e.text);
        return 3;
    }
    conn_limit_init(&limit, max_conns);
    struct conn_config cfg = {.ops = &ops, .max_record = max_record, .limit = &limit,
                              .name = "sink"};
    for (int i = 0; i < nthreads; i++) {
        struct worker *w = &workers[i];
        w->drain_ms = drain_ms;
        w->loop = loop_new(&e);
        if (!w->loop || !(w->set = conn_set_new(w->loop, &cfg, &e)) ||
            conn_set_listen(w->set, fds[i]) != 0) {
            fprintf(stderr, "sink: %s\n", e.text);
            return 3;
        }
    }
    if (!no_accept)
        for (int i = 0; i < nthreads; i++)
            pthread_create(&workers[i].thread, NULL, run, &workers[i]);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", net_addr_port(&bound)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            perror(port_file);
            return 3;
        }
    }
    log_info("sink: listening on %s with %d loop(s)", bound.text, nthreads);

    int sig;
    sigwait(&sigs, &sig);
    if (no_accept) {
        for (int i = 0; i < nthreads; i++) {
            conn_set_free(workers[i].set);
            loop_free(workers[i].loop);
        }
        printf("records=0\n");
        return 0;
    }
    for (int i = 0; i < nthreads; i++)
        loop_post(workers[i].loop, begin_shutdown, &workers[i]);

    struct conn_stats t = {0};
    for (int i = 0; i < nthreads; i++) {
        pthread_join(workers[i].thread, NULL);
        struct conn_stats s;
        conn_set_stats(workers[i].set, &s);
        t.records += s.records;
        t.bytes += s.bytes;
        t.accepted += s.accepted;
        t.truncated += s.truncated;
        t.refused += s.refused;
        conn_set_free(workers[i].set);
        loop_free(workers[i].loop);
    }
    if (out)
        fclose(out);
    printf("records=%llu bytes=%llu conns=%llu truncated=%llu at_eof=%llu refused=%llu "
           "closed_eof=%llu\n",
           (unsigned long long)t.records, (unsigned long long)t.bytes,
           (unsigned long long)t.accepted, (unsigned long long)t.truncated,
           (unsigned long long)atomic_load(&at_eof), (unsigned long long)t.refused,
           (unsigned long long)atomic_load(&closed_eof));
    return 0;
}
