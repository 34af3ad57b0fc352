/*
 * jsonbench.c - throughput of json_scan on NDJSON telemetry records.
 *
 *   jsonbench [-t] [-d] [-m MB] [-r REPS] [-w FILE] [FILE]
 *
 * Without FILE, generates MB megabytes (default 100) of records like
 *   {"timestamp":1756803600,"sensor_id":10001,"measurement":
 *    {"kind":"Temperature","value":5.3,"unit":"Celcius"}}
 * or, with -t, log-like records with a 200-500 byte text field, in memory (-w also writes them to FILE, for other tools to read the same
 * bytes). The lines are split once; then each repetition scans every line
 * with one reused json_doc, and the best repetition is reported in MB/s
 * of input (newlines excluded) and ns per record. -d also runs
 * json_doc_find_duplicate on each record (the validator's duplicate-key
 * check), to show what it adds. docs/json.md has the
 * figures. Build with `make build/release/tools/jsonbench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema/json.h"

struct line {
    size_t off, len;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Log-like records: mostly one long ASCII string. */
static char *generate_text(size_t target, size_t *len)
{
    static const char *words[] = {"alpha", "pressure", "valve", "overheat",
                                  "threshold", "exceeded", "restart",
                                  "pump", "line", "sensor", "the", "on"};
    char *buf = malloc(target + 4096);
    size_t n = 0;
    if (!buf)
        return NULL;
    for (long k = 0; n < target; k++) {
        n += (size_t)snprintf(buf + n, target + 4096 - n,
                              "{\"ts\":%ld,\"host\":\"plc-%03ld\",\"msg\":\"",
                              1756803600 + k, k % 500);
        int words_n = 30 + (int)(rng() % 50);
        for (int w = 0; w < words_n; w++)
            n += (size_t)snprintf(buf + n, target + 4096 - n, "%s%s",
                                  w ? " " : "", words[rng() % 12]);
        n += (size_t)snprintf(buf + n, target + 4096 - n,
                              "\",\"tags\":[\"a\",\"b\"]}\n");
    }
    *len = n;
    return buf;
}

static char *generate(size_t target, size_t *len)
{
    static const char *kinds[] = {"Temperature", "Humidity", "Pressure"};
    static const char *units[] = {"Celcius", "Percent", "hPa"};
    char *buf = malloc(target + 256);
    size_t n = 0;
    long ts = 1756803600;
    if (!buf)
        return NULL;
    while (n < target) {
        int k = (int)(rng() % 3);
        int v = (int)(rng() % 2000) - 500;
        n += (size_t)snprintf(
            buf + n, target + 256 - n,
            "{\"timestamp\":%ld,\"sensor_id\":%u,\"measurement\":{\"kind\":"
            "\"%s\",\"value\":%s%d.%d,\"unit\":\"%s\"}}\n",
            ts + (long)(n / 4096), 10001 + rng() % 999, kinds[k],
            v < 0 ? "-" : "", abs(v) / 10, abs(v) % 10, units[k]);
    }
    *len = n;
    return buf;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long sz;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)sz + 1)) &&
        fread(buf, 1, (size_t)sz, f) == (size_t)sz) {
        *len = (size_t)sz;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t mb = 100, len = 0, nlines = 0, bytes = 0;
    int reps = 5, opt, text = 0, dups = 0;
    const char *out = NULL;
    while ((opt = getopt(argc, argv, "tdm:r:w:")) != -1) {
        switch (opt) {
        case 't': text = 1; break;
        case 'd': dups = 1; break;
        case 'm': mb = strtoul(optarg, NULL, 10); break;
        case 'r': reps = (int)strtol(optarg, NULL, 10); break;
        case 'w': out = optarg; break;
        default:
            fprintf(stderr, "usage: jsonbench [-t] [-d] [-m MB] [-r REPS] [-w FILE] "
                            "[FILE]\n");
            return 2;
        }
    }
    if (mb == 0 || mb > 4096 || reps < 1) {
        fprintf(stderr, "jsonbench: -m takes 1-4096, -r at least 1\n");
        return 2;
    }
    char *data = optind < argc ? slurp(argv[optind], &len)
                 : text          ? generate_text(mb << 20, &len)
                                 : generate(mb << 20, &len);
    if (!data) {
        fprintf(stderr, "jsonbench: cannot read or generate input\n");
        return 1;
    }
    if (out) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "jsonbench: cannot write %s\n", out);
            return 1;
        }
    }
    struct line *lines = malloc((len / 2 + 1) * sizeof *lines);
    if (!lines)
        return 1;
    for (size_t p = 0; p < len;) {
        const char *nl = memchr(data + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - data) : len;
        if (e > p) {
            lines[nlines].off = p;
            lines[nlines].len = e - p;
            bytes += e - p;
            nlines++;
        }
        p = e + 1;
    }

    struct json_doc d;
    json_doc_init(&d, 0);
    double best = 1e30;
    size_t bad = 0, toks = 0;
    for (int r = 0; r < reps; r++) {
        bad = toks = 0;
        double t0 = now();
        for (size_t i = 0; i < nlines; i++) {
            if (json_scan(&d, data + lines[i].off, lines[i].len) != JSON_OK)
                bad++;
            else if (dups && json_doc_find_duplicate(&d) >= 0)
                bad++;
            toks += d.ntoks;
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("%zu records, %.1f MB, %.1f bytes/record, %.1f tokens/record, "
           "%zu invalid\n",
           nlines, (double)bytes / 1e6, (double)bytes / (double)nlines,
           (double)toks / (double)nlines, bad);
    printf("json_scan%s: %.0f MB/s, %.1f ns/record, %.2f M records/s "
           "(best of %d)\n",
           dups ? " + json_doc_find_duplicate" : "",
           (double)bytes / best / 1e6, best * 1e9 / (double)nlines,
           (double)nlines / best / 1e6, reps);
    json_doc_release(&d);
    free(lines);
    free(data);
    return 0;
}
