/*
 * gen.c - write the benchmark workload as an NDJSON file.
 *
 *   gen --records N --invalid-frac F --hours H --seed S [--str-values F]
 *       [--t0 T] [--manifest FILE] > file.ndjson
 *
 * The records are those of telemetry.h (record i is the same in gen and in
 * loadgen for the same options); --manifest writes what a consumer must find:
 * counts, invalid records per kind, valid records, bytes and checksums per
 * hour.
 */
#include "telemetry.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: gen [options] > file.ndjson\n"
    "  --records N        records to write (default 2000000)\n"
    "  --invalid-frac F   chance a record is invalid, 0..1 (default 0.05)\n"
    "  --hours H          timestamps spread over H hours (default 3)\n"
    "  --seed S           (default 1)\n"
    "  --str-values F     chance a valid value is a JSON string (default 0)\n"
    "  --t0 T             first timestamp, a whole hour (default 1756803600)\n"
    "  --manifest FILE    write the expected counts and checksums (JSON)\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"records", required_argument, NULL, 'n'},
        {"invalid-frac", required_argument, NULL, 'f'},
        {"hours", required_argument, NULL, 'H'},
        {"seed", required_argument, NULL, 's'},
        {"str-values", required_argument, NULL, 'S'},
        {"t0", required_argument, NULL, 't'},
        {"manifest", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct tel_config cfg;
    struct tel_gen g;
    struct tel_manifest m = {0};
    struct tel_record r;
    const char *manifest = NULL;
    static char obuf[1 << 20];
    char err[128];
    uint64_t u;
    int c, li = 0, rc = 2;

    tel_config_default(&cfg);
    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        switch (c) {
        case 'n':
            if (tel_parse_u64(optarg, 0, UINT64_C(1) << 40, &cfg.records))
                goto bad;
            break;
        case 'f':
            if (tel_parse_double(optarg, 0, 1, &cfg.invalid_frac))
                goto bad;
            break;
        case 'H':
            if (tel_parse_u64(optarg, 1, 24 * 366, &u))
                goto bad;
            cfg.hours = (unsigned)u;
            break;
        case 's':
            if (tel_parse_u64(optarg, 0, UINT64_MAX, &cfg.seed))
                goto bad;
            break;
        case 'S':
            if (tel_parse_double(optarg, 0, 1, &cfg.str_values))
                goto bad;
            break;
        case 't':
            if (tel_parse_u64(optarg, 0, UINT64_C(1) << 40, &u))
                goto bad;
            cfg.t0 = (int64_t)u;
            break;
        case 'm':
            manifest = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "gen: unexpected argument '%s'\n%s", argv[optind],
                usage);
        return 2;
    }
    if (tel_gen_init(&g, &cfg, err, sizeof err)) {
        fprintf(stderr, "gen: %s\n", err);
        return 2;
    }
    if (isatty(STDOUT_FILENO)) {
        fprintf(stderr, "gen: stdout is a terminal; redirect it to a file\n");
        return 2;
    }
    if (tel_manifest_init(&m, &cfg)) {
        fprintf(stderr, "gen: out of memory\n");
        return 3;
    }
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    for (uint64_t i = 0; i < cfg.records; i++) {
        tel_gen_record(&g, i, &r);
        r.line[r.len] = '\n'; /* TEL_LINE_MAX leaves room: no kind fills it */
        fwrite(r.line, 1, r.len + 1, stdout);
        tel_manifest_add(&m, &r);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("gen: write");
        rc = 3;
        goto out;
    }
    if (manifest && tel_manifest_save(&m, manifest)) {
        perror("gen: manifest");
        rc = 3;
        goto out;
    }
    fprintf(stderr, "gen: %llu records (%llu valid, %llu invalid), %llu bytes\n",
            (unsigned long long)m.records, (unsigned long long)m.valid,
            (unsigned long long)m.invalid, (unsigned long long)m.bytes);
    rc = 0;
out:
    tel_manifest_release(&m);
    return rc;

bad:
    fprintf(stderr, "gen: bad value '%s' for --%s\n%s", optarg,
            opts[li].name, usage);
    return 2;
}
