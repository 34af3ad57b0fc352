/*
 * validbench.c - how fast the whole validate path runs (scan, duplicate
 * check, schema walk) on one core.
 *
 *   validbench -s SCHEMA [-l] [-r ROUNDS] FILE.ndjson
 *
 * Reads FILE into memory, then validates it line by line ROUNDS times
 * (default: as many as fit in about 3 seconds) with one validator, and
 * prints records/s and MB/s of the best round, plus how many records were
 * valid. -l turns on lax mode. Not a test: a figure for docs/schema.md and
 * for bench/ scripts that put it beside a peer (ajv).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/wtime.h"
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

int main(int argc, char **argv)
{
    const char *schema_path = NULL;
    int c, lax = 0;
    long rounds = 0;
    while ((c = getopt(argc, argv, "s:lr:")) != -1) {
        switch (c) {
        case 's': schema_path = optarg; break;
        case 'l': lax = 1; break;
        case 'r': rounds = strtol(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (!schema_path || optind + 1 != argc)
        goto usage;
    struct schema_opts o = {0};
    o.lax = lax;
    struct weir_errmsg err;
    struct schema *s = schema_load_file(schema_path, &o, &err);
    if (!s) {
        fprintf(stderr, "validbench: %s\n", err.text);
        return 2;
    }
    size_t len;
    char *data = slurp(argv[optind], &len);
    if (!data) {
        fprintf(stderr, "validbench: cannot read %s\n", argv[optind]);
        schema_free(s);
        return 2;
    }
    struct validator *v = validator_new(s);
    double best = 1e300;
    long records = 0, valid = 0;
    int64_t start_all = wtime_mono_ns();
    for (long r = 0; rounds ? r < rounds : (r < 3 || wtime_mono_ns() - start_all < 3 * WTIME_NS_PER_S); r++) {
        records = valid = 0;
        int64_t t0 = wtime_mono_ns();
        const char *p = data, *end = data + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n) {
                struct verdict vd;
                valid += validator_check(v, p, n, &vd) == 1;
                records++;
            }
            p += n + 1;
        }
        double sec = (double)(wtime_mono_ns() - t0) / 1e9;
        if (sec < best)
            best = sec;
    }
    printf("%ld records (%ld valid), %.1f MB: %.2f M records/s, %.0f MB/s (best round, one core%s)\n",
           records, valid, (double)len / 1e6, (double)records / best / 1e6,
           (double)len / best / 1e6, lax ? ", lax" : "");
    validator_free(v);
    schema_free(s);
    free(data);
    return 0;
usage:
    fprintf(stderr, "usage: validbench -s SCHEMA [-l] [-r ROUNDS] FILE.ndjson\n");
    return 2;
}
