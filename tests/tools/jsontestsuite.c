/*
 * jsontestsuite.c - run JSONTestSuite's test_parsing files through json_scan.
 *
 *   jsontestsuite DIR
 *
 * DIR is JSONTestSuite/test_parsing. Every y_ file must scan, every n_ file
 * must fail; each counts as one test. i_ files (the RFC leaves them to the
 * parser) are not counted: the tool prints what weir does with each, the
 * table docs/json.md keeps. The last line is "N passed, N failed"; the
 * exit status is 1 if anything failed. tests/integration/
 * json_conformance.sh runs it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    if (!f)
        return NULL;
    do {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: jsontestsuite DIR\n");
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        fprintf(stderr, "jsontestsuite: cannot open %s\n", argv[1]);
        return 2;
    }
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' || !strstr(e->d_name, ".json"))
            continue;
        if (nnames == cap) {
            cap = cap ? cap * 2 : 512;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                return 2;
            names = nn;
        }
        names[nnames] = strdup(e->d_name);
        if (!names[nnames])
            return 2;
        nnames++;
    }
    closedir(dir);
    qsort(names, nnames, sizeof *names, by_name);

    struct json_doc d;
    json_doc_init(&d, 0);
    int pass = 0, fail = 0, i_acc = 0, i_rej = 0;
    for (size_t k = 0; k < nnames; k++) {
        char path[4096], msg[512];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", argv[1], names[k]);
        char *data = slurp(path, &len);
        if (!data) {
            printf("FAIL %s: cannot read\n", names[k]);
            fail++;
            continue;
        }
        enum json_error err = json_scan(&d, data, len);
        json_describe_error(&d, msg, sizeof msg);
        switch (names[k][0]) {
        case 'y':
            if (err == JSON_OK) {
                pass++;
            } else {
                fail++;
                printf("FAIL %s: rejected: %s\n", names[k], msg);
            }
            break;
        case 'n':
            if (err != JSON_OK) {
                pass++;
            } else {
                fail++;
                printf("FAIL %s: accepted\n", names[k]);
            }
            break;
        default:
            if (err == JSON_OK) {
                i_acc++;
                printf("i    %-50s accepted\n", names[k]);
            } else {
                i_rej++;
                printf("i    %-50s rejected: %s\n", names[k], msg);
            }
        }
        free(data);
    }
    json_doc_release(&d);
    for (size_t k = 0; k < nnames; k++)
        free(names[k]);
    free(names);
    printf("i_ files: %d accepted, %d rejected (not counted)\n", i_acc, i_rej);
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
