/*
 * validbench.c - how fast the whole validate path runs (scan, duplicate
 * check, schema walk) on one core.
 *
 *   validbench -s SCHEMA [-l] [-i] [-r ROUNDS] FILE.ndjson
 *   validbench -s SCHEMA [-l] [-i] [-r ROUNDS] -g N
 *
 * Reads FILE into memory, then validates it line by line ROUNDS times
 * (default: as many as fit in about 3 seconds) with one validator, and
 * prints records/s and MB/s of the best round, plus how many records were
 * valid. Rounds are timed in thread CPU time, so a busy machine (other
 * processes taking the core) does not halve the figure; the same loop with
 * json_scan alone is timed too, to show what the schema walk adds.
 * -g N validates N generated telemetry records (the seed's TelemetryData,
 * as examples/telemetry.schema.json describes) instead of a file, so the
 * figure in docs/schema.md can be reproduced without data.
 * -l turns on lax mode; -i the int64 bound on integers (schema_opts.int64_integers,
 * as `weir serve` validates). Not a test: a figure for docs/schema.md and for
 * bench/ scripts that put it beside a peer (ajv).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/wtime.h"
#include "schema/json.h"
#include "schema/schema.h"
#include "schema/validate.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One pass over the lines; returns CPU seconds. */
static double pass(struct validator *v, struct json_doc *scan_only,
                   const char *data, size_t len, long *records, long *valid)
{
    double t0 = cpu_now();
    const char *p = data, *end = data + len;
    *records = *valid = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            if (scan_only) {
                *valid += json_scan(scan_only, p, n) == JSON_OK;
            } else {
                struct verdict vd;
                *valid += validator_check(v, p, n, &vd) == 1;
            }
            (*records)++;
        }
        p += n + 1;
    }
    return cpu_now() - t0;
}

/* n records like the seed's telemetry, values varying as sensors do. */
static char *generate(long n, size_t *len)
{
    size_t cap = (size_t)n * 128 + 1, o = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        int tenths = (int)(x % 600) - 200;
        o += (size_t)snprintf(b + o, cap - o,
                              "{\"timestamp\":%ld,\"sensor_id\":%ld,\"measurement\":"
                              "{\"kind\":\"Temperature\",\"value\":%s%d.%d,\"unit\":\"%s\"}}\n",
                              1756803600L + i, 10001L + i % 500, tenths < 0 ? "-" : "",
                              abs(tenths) / 10, abs(tenths) % 10,
                              (x >> 32) & 1 ? "Celcius" : "Fahrenheit");
    }
    *len = o;
    return b;
}

int main(int argc, char **argv)
{
    const char *schema_path = NULL;
    int c, lax = 0, i64 = 0;
    long rounds = 0, gen = 0;
    while ((c = getopt(argc, argv, "s:lir:g:")) != -1) {
        switch (c) {
        case 's': schema_path = optarg; break;
        case 'l': lax = 1; break;
        case 'i': i64 = 1; break;
        case 'r': rounds = strtol(optarg, NULL, 10); break;
        case 'g': gen = strtol(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (!schema_path || (gen <= 0 && optind + 1 != argc))
        goto usage;
    struct schema_opts o = {0};
    o.lax = lax;
    o.int64_integers = i64;
    struct weir_errmsg err;
    struct schema *s = schema_load_file(schema_path, &o, &err);
    if (!s) {
        fprintf(stderr, "validbench: %s\n", err.text);
        return 2;
    }
    size_t len;
    char *data = gen > 0 ? generate(gen, &len) : slurp(argv[optind], &len);
    if (!data) {
        fprintf(stderr, "validbench: cannot read %s\n", gen > 0 ? "generated data" : argv[optind]);
        schema_free(s);
        return 2;
    }
    struct validator *v = validator_new(s);
    struct json_doc scan;
    json_doc_init(&scan, 0);
    double best = 1e300, best_scan = 1e300;
    long records = 0, valid = 0, scanned, ok;
    int64_t start_all = wtime_mono_ns();
    for (long r = 0; rounds ? r < rounds : (r < 3 || wtime_mono_ns() - start_all < 3 * WTIME_NS_PER_S); r++) {
        double sec = pass(v, NULL, data, len, &records, &valid);
        if (sec < best)
            best = sec;
        sec = pass(v, &scan, data, len, &scanned, &ok);
        if (sec < best_scan)
            best_scan = sec;
    }
    printf("%ld records (%ld valid), %.1f MB: %.2f M records/s, %.0f MB/s, %.0f ns/record "
           "(best round, one core, CPU time%s)\n",
           records, valid, (double)len / 1e6, (double)records / best / 1e6,
           (double)len / best / 1e6, best / (double)records * 1e9, lax ? ", lax" : "");
    printf("json_scan alone: %.2f M records/s, %.0f ns/record; the schema walk adds %.0f ns/record\n",
           (double)records / best_scan / 1e6, best_scan / (double)records * 1e9,
           (best - best_scan) / (double)records * 1e9);
    json_doc_release(&scan);
    validator_free(v);
    schema_free(s);
    free(data);
    return 0;
usage:
    fprintf(stderr, "usage: validbench -s SCHEMA [-l] [-i] [-r ROUNDS] FILE.ndjson | -g N\n");
    return 2;
}
