/*
 * sinkload.c - load one partition from a weir CSV file into PostgreSQL or
 * MySQL through src/sinks/, for tests/integration/sinks_*.sh and
 * bench/load.
 *
 *   sinkload --kind postgres|mysql --dsn DSN --table T
 *            --columns 'name:type,name:type,...' --start T0 [--end T1]
 *            [--method auto|load|insert] [--batch N] [--no-create]
 *            [--stall-after BYTES --stall-file F] [--retry-file F]
 *            [--reload-file F] [FILE]
 *
 * Types as sink_type_parse reads them (bigint, double, decimal(18,3),
 * varchar, boolean, timestamp, timestamptz, date, json). T0 and T1 as
 * `weir run` reads times (RFC 3339, a date, 2025-09-02T10); --end defaults
 * to one hour after --start. FILE defaults to stdin.
 *
 * --stall-after N: after handing over N bytes of input, create the stall
 * file and wait (at most 60 s) until it is removed: the load is then in
 * the middle of its transaction, for a test to kill the server.
 * --retry-file F: when the load fails, wait (at most 120 s) for F to
 * exist, then load the same file again through the same sink (so its
 * reconnect is what is tested) and report that.
 * --reload-file F: the same after a load that succeeded (a server
 * restarted between two loads).
 *
 * Prints "rows=N deleted=N bytes=N created=0|1 method=M seconds=S" on
 * success. Exit 0 loaded, 1 refused (bad data, table mismatch), 2 usage,
 * 3 other failures (connection, server).
 */
#include "core/wtime.h"
#include "sinks/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct stall_source {
    struct sink_fd_source fd;
    uint64_t after;          /* 0: never */
    const char *file;
    int stalled;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int stall_read(void *ctx, const char **data, size_t *len, struct weir_errmsg *e)
{
    struct stall_source *src = ctx;
    if (src->after && !src->stalled && src->fd.bytes >= src->after) {
        src->stalled = 1;
        FILE *f = fopen(src->file, "w");
        if (f)
            fclose(f);
        for (int i = 0; i < 600 && access(src->file, F_OK) == 0; i++)
            sleep_ms(100);
    }
    return sink_fd_source_read(&src->fd, data, len, e);
}

static int parse_columns(char *spec, struct sink_column **out, size_t *n)
{
    size_t cap = 8, k = 0;
    struct sink_column *cols = calloc(cap, sizeof *cols);
    char *p = spec;
    while (cols && *p) {
        char *start = p;
        int depth = 0;
        while (*p && (*p != ',' || depth)) {
            depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
            p++;
        }
        if (*p)
            *p++ = '\0';
        char *colon = strchr(start, ':');
        if (!colon)
            goto bad;
        *colon = '\0';
        if (k == cap) {
            struct sink_column *bigger = realloc(cols, 2 * cap * sizeof *cols);
            if (!bigger)
                goto bad;
            cols = bigger;
            cap *= 2;
        }
        cols[k].name = start;
        if (sink_type_parse(colon + 1, &cols[k]) != 0) {
            fprintf(stderr, "sinkload: column %s: unknown type '%s'\n", start, colon + 1);
            goto bad;
        }
        k++;
    }
    *out = cols;
    *n = k;
    return cols && k ? 0 : -1;
bad:
    free(cols);
    return -1;
}

static int exit_code(int rc)
{
    return rc == WEIR_EPARSE || rc == WEIR_ESCHEMA || rc == WEIR_EINVAL ? 1 : 3;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'},
        {"dsn", required_argument, NULL, 'd'},
        {"table", required_argument, NULL, 't'},
        {"columns", required_argument, NULL, 'c'},
        {"start", required_argument, NULL, 's'},
        {"end", required_argument, NULL, 'e'},
        {"method", required_argument, NULL, 'm'},
        {"batch", required_argument, NULL, 'b'},
        {"no-create", no_argument, NULL, 'n'},
        {"stall-after", required_argument, NULL, 'A'},
        {"stall-file", required_argument, NULL, 'F'},
        {"retry-file", required_argument, NULL, 'R'},
        {"reload-file", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    const char *kind = NULL, *dsn = NULL, *table = NULL, *start = NULL, *end = NULL;
    const char *retry_file = NULL, *reload_file = NULL;
    char *columns = NULL;
    struct sink_options opt = {0};
    struct stall_source src = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': kind = optarg; break;
        case 'd': dsn = optarg; break;
        case 't': table = optarg; break;
        case 'c': columns = optarg; break;
        case 's': start = optarg; break;
        case 'e': end = optarg; break;
        case 'm':
            if (!strcmp(optarg, "auto"))
                opt.mysql_method = SINK_MYSQL_AUTO;
            else if (!strcmp(optarg, "load"))
                opt.mysql_method = SINK_MYSQL_LOAD_DATA;
            else if (!strcmp(optarg, "insert"))
                opt.mysql_method = SINK_MYSQL_INSERT;
            else
                goto usage;
            break;
        case 'b': opt.insert_batch_rows = strtoul(optarg, NULL, 10); break;
        case 'n': opt.no_create = 1; break;
        case 'A': src.after = strtoull(optarg, NULL, 10); break;
        case 'F': src.file = optarg; break;
        case 'R': retry_file = optarg; break;
        case 'L': reload_file = optarg; break;
        default: goto usage;
        }
    }
    if (!kind || !dsn || !table || !columns || !start || optind + 1 < argc ||
        (src.after && !src.file))
        goto usage;
    enum config_output_kind k;
    if (!strcmp(kind, "postgres"))
        k = CONFIG_OUTPUT_POSTGRES;
    else if (!strcmp(kind, "mysql"))
        k = CONFIG_OUTPUT_MYSQL;
    else
        goto usage;
    struct sink_partition part;
    if (wtime_parse_point(start, &part.start_ns) != 0 ||
        (end && wtime_parse_point(end, &part.end_ns) != 0)) {
        fprintf(stderr, "sinkload: bad --start or --end\n");
        return 2;
    }
    if (!end)
        part.end_ns = part.start_ns + WTIME_NS_PER_HOUR;
    struct sink_column *cols;
    size_t ncols;
    if (parse_columns(columns, &cols, &ncols) != 0) {
        fprintf(stderr, "sinkload: --columns: want name:type,name:type,...\n");
        return 2;
    }
    int fd = 0;
    if (optind < argc && (fd = open(argv[optind], O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "sinkload: %s: %s\n", argv[optind], strerror(errno));
        free(cols);
        return 2;
    }
    /* A server killed mid-load must be an error return, not a signal. */
    signal(SIGPIPE, SIG_IGN);

    struct weir_errmsg e = {0};
    struct sink *sink = NULL;
    int rc = sink_open(k, dsn, table, &opt, &sink, &e);
    if (rc) {
        fprintf(stderr, "sinkload: %s\n", e.text);
        free(cols);
        return exit_code(rc);
    }
    for (int attempt = 0;; attempt++) {
        sink_fd_source_init(&src.fd, fd);
        struct sink_rows rows = {cols, ncols, stall_read, &src};
        struct sink_load_stats st;
        int64_t t0 = wtime_mono_ns();
        rc = sink_load_partition(sink, &part, &rows, &st, &e);
        double secs = (double)(wtime_mono_ns() - t0) / 1e9;
        const char *again = NULL;
        if (rc == 0) {
            printf("rows=%llu deleted=%llu bytes=%llu created=%d method=%s seconds=%.3f\n",
                   (unsigned long long)st.rows, (unsigned long long)st.deleted,
                   (unsigned long long)st.bytes, st.created, st.method, secs);
            again = reload_file;
        } else {
            fprintf(stderr, "sinkload: load failed (%s): %s\n", weir_errname(rc), e.text);
            printf("failed=%s\n", weir_errname(rc));
            again = retry_file;
        }
        fflush(stdout);
        if (!again || attempt > 0 || fd == 0)
            break;
        for (int i = 0; i < 1200 && access(again, F_OK) != 0; i++)
            sleep_ms(100);
        if (lseek(fd, 0, SEEK_SET) != 0)
            break;
        src.after = 0;
    }
    sink_close(sink);
    if (fd > 0)
        close(fd);
    free(cols);
    return rc ? exit_code(rc) : 0;
usage:
    fprintf(stderr, "usage: sinkload --kind postgres|mysql --dsn DSN --table T --columns "
                    "'name:type,...' --start T [--end T] [--method auto|load|insert] "
                    "[--batch N] [--no-create] [--stall-after BYTES --stall-file F] "
                    "[--retry-file F] [--reload-file F] [FILE]\n");
    return 2;
}
