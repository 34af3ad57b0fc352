/*
 * lake_files.c - print what the table log of a dataset says, for the lake's
 * integration tests: `lake_files DATASET_DIR [live|absorbed|version]`.
 *
 *   live      the live Parquet files at the latest version, one per line
 *   absorbed  the absorbed raw segments, one per line
 *   version   the latest version
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "store/tablelog.h"

int main(int argc, char **argv)
{
    struct weir_errmsg e = {0};
    struct tablelog *t = NULL;
    struct tl_snapshot s = {0};
    const char *what = argc > 2 ? argv[2] : "live";
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: lake_files DATASET_DIR [live|absorbed|version]\n");
        return 2;
    }
    if ((rc = tl_open(argv[1], &t, &e)) || (rc = tl_snapshot(t, 0, &s, &e))) {
        fprintf(stderr, "lake_files: %s\n", e.text);
        tl_free(t);
        return 1;
    }
    if (strcmp(what, "version") == 0)
        printf("%llu\n", (unsigned long long)s.version);
    else if (strcmp(what, "absorbed") == 0)
        for (size_t i = 0; i < s.nabsorbed; i++)
            printf("%s\n", s.absorbed[i].path);
    else
        for (size_t i = 0; i < s.nfiles; i++)
            printf("%s\n", s.files[i].path);
    tl_snapshot_release(&s);
    tl_free(t);
    return 0;
}
