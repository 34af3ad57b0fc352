/*
 * schemasuite.c - run JSON-Schema-Test-Suite files through the schema
 * compiler and validator.
 *
 *   schemasuite [-v] [-f] [-r REMOTES] [-m METASCHEMA_DIR] FILE|DIR...
 *
 * Each file is a list of {description, schema, tests: [{data, valid}]};
 * each test case counts as one. For a DIR, the *.json files directly in it
 * are run (not optional/). A schema that weir refuses with "unsupported
 * keyword: X" (or "unsupported format: X") is a feature weir does not
 * implement on purpose: its cases are counted as skipped, not failed, and
 * the file's line says "skipped (unsupported: X)".
 *
 *   -r REMOTES   the suite's remotes/ directory: http://localhost:1234/X is
 *                read from REMOTES/X (refRemote and friends)
 *   -m DIR       the 2020-12 metaschema as JSON files (metaschema.json and
 *                vocabularies/NAME), for the tests that $ref the metaschema
 *   -f           format assertion on (for optional/format/)
 *   -v           print every failing case
 *
 * Prints "FILE: N passed, N failed[, N skipped (unsupported: X)]" per file,
 * then "N passed, N failed" (exit 1 if anything failed).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "schema/json.h"
#include "schema/schema.h"
#include "schema/validate.h"

struct maps {
    const char *remotes;
    const char *meta;
};

static int resolve(void *ctx, const char *uri, char *path, size_t cap)
{
    const struct maps *m = ctx;
    static const char lh[] = "http://localhost:1234/";
    static const char ms[] = "https://json-schema.org/draft/2020-12/schema";
    static const char mv[] = "https://json-schema.org/draft/2020-12/meta/";
    int k = -1;
    if (m->remotes && strncmp(uri, lh, sizeof lh - 1) == 0)
        k = snprintf(path, cap, "%s/%s", m->remotes, uri + sizeof lh - 1);
    else if (m->meta && strcmp(uri, ms) == 0)
        k = snprintf(path, cap, "%s/metaschema.json", m->meta);
    else if (m->meta && strncmp(uri, mv, sizeof mv - 1) == 0)
        k = snprintf(path, cap, "%s/vocabularies/%s", m->meta, uri + sizeof mv - 1);
    return k > 0 && (size_t)k < cap ? 0 : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
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

static int verbose, format_assert;
static struct maps maps;
static long total_pass, total_fail, total_skip;

static uint32_t member(const struct json_doc *d, uint32_t obj, const char *key)
{
    uint32_t k = obj + 1;
    for (uint32_t m = 0; m < d->toks[obj].count; m++) {
        if (json_str_eq(d, &d->toks[k], key, strlen(key)))
            return k + 1;
        k = d->toks[k + 1].next;
    }
    return UINT32_MAX;
}

static void tok_text(const struct json_doc *d, uint32_t t, char *out, size_t cap)
{
    const struct json_tok *x = &d->toks[t];
    size_t n = x->len < cap - 1 ? x->len : cap - 1;
    memcpy(out, d->src + x->off, n);
    out[n] = '\0';
}

static int run_file(const char *path)
{
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "schemasuite: cannot read %s\n", path);
        return -1;
    }
    struct json_doc d;
    json_doc_init(&d, 0);
    if (json_scan(&d, text, len) != JSON_OK || d.toks[0].type != JSON_ARRAY) {
        fprintf(stderr, "schemasuite: %s: not a test file\n", path);
        free(text);
        json_doc_release(&d);
        return -1;
    }
    long pass = 0, fail = 0, skip = 0;
    char skipped_kw[256] = "";
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    uint32_t g = 1;
    for (uint32_t gi = 0; gi < d.toks[0].count; gi++, g = d.toks[g].next) {
        uint32_t ts = member(&d, g, "schema"), tt = member(&d, g, "tests");
        uint32_t td = member(&d, g, "description");
        if (ts == UINT32_MAX || tt == UINT32_MAX)
            continue;
        char desc[200];
        tok_text(&d, td, desc, sizeof desc);
        struct schema_opts o = {0};
        o.format_assert = format_assert;
        o.resolve = resolve;
        o.resolve_ctx = &maps;
        struct weir_errmsg err = {0};
        const struct json_tok *st = &d.toks[ts];
        struct schema *s = schema_compile(d.src + st->off, st->len, NULL, &o, &err);
        uint32_t ntests = d.toks[tt].count;
        if (!s) {
            const char *u = strstr(err.text, "unsupported ");
            if (!u && !maps.meta &&
                strstr(err.text, "cannot resolve $ref to https://json-schema.org/"))
                u = "unsupported : metaschema-not-available";
            if (u) {
                const char *w = strchr(u, ':');
                char kw[64] = "?";
                if (w) {
                    w += 2;
                    size_t k = 0;
                    while (w[k] && w[k] != ' ' && k + 1 < sizeof kw)
                        k++;
                    memcpy(kw, w, k);
                    kw[k] = '\0';
                }
                size_t used = strlen(skipped_kw);
                if (!strstr(skipped_kw, kw))
                    snprintf(skipped_kw + used, sizeof skipped_kw - used, "%s%s",
                             used ? ", " : "", kw);
                skip += ntests;
                if (verbose)
                    printf("  SKIP %s: %s: %s\n", base, desc, err.text);
            } else {
                fail += ntests;
                printf("  FAIL %s: %s: schema refused: %s\n", base, desc, err.text);
            }
            continue;
        }
        struct validator *v = validator_new(s);
        uint32_t t = tt + 1;
        for (uint32_t k = 0; k < ntests; k++, t = d.toks[t].next) {
            uint32_t tdata = member(&d, t, "data"), tvalid = member(&d, t, "valid");
            uint32_t tdesc = member(&d, t, "description");
            int want = d.toks[tvalid].type == JSON_TRUE;
            struct verdict vd;
            const struct json_tok *dt = &d.toks[tdata];
            int got = validator_check(v, d.src + dt->off, dt->len, &vd);
            if (got == want) {
                pass++;
            } else {
                fail++;
                if (verbose) {
                    char cd[200], data[300];
                    tok_text(&d, tdesc, cd, sizeof cd);
                    tok_text(&d, tdata, data, sizeof data);
                    printf("  FAIL %s: %s / %s: data %s: expected %s, got %d (%s: %s)\n",
                           base, desc, cd, data, want ? "valid" : "invalid", got,
                           vd.path, vd.message);
                }
            }
        }
        validator_free(v);
        schema_free(s);
    }
    if (skip && !pass && !fail)
        printf("%s: skipped (unsupported: %s)\n", base, skipped_kw);
    else if (skip)
        printf("%s: %ld passed, %ld failed, %ld skipped (unsupported: %s)\n", base,
               pass, fail, skip, skipped_kw);
    else
        printf("%s: %ld passed, %ld failed\n", base, pass, fail);
    total_pass += pass;
    total_fail += fail;
    total_skip += skip;
    json_doc_release(&d);
    free(text);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    char *names[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < 1024) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        run_file(path);
        free(names[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "vfr:m:")) != -1) {
        switch (c) {
        case 'v': verbose = 1; break;
        case 'f': format_assert = 1; break;
        case 'r': maps.remotes = optarg; break;
        case 'm': maps.meta = optarg; break;
        default:
            fprintf(stderr, "usage: schemasuite [-v] [-f] [-r REMOTES] [-m META] FILE|DIR...\n");
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: schemasuite [-v] [-f] [-r REMOTES] [-m META] FILE|DIR...\n");
        return 2;
    }
    /* Unknown-keyword warnings are expected here; keep the output short. */
    log_setup(verbose ? LOG_WARN : LOG_ERROR, LOG_TEXT);
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            run_dir(argv[i]);
        else
            run_file(argv[i]);
    }
    if (total_skip)
        printf("skipped %ld cases of unsupported features\n", total_skip);
    printf("%ld passed, %ld failed\n", total_pass, total_fail);
    return total_fail ? 1 : 0;
}
