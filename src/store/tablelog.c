/*
 * tablelog.c - the table log (see tablelog.h, docs/tablelog.md).
 *
 * Stub bodies: the API is fixed, the implementation follows.
 */
#include "store/tablelog.h"

#include <stdio.h>
#include <string.h>

int tl_open(const char *dataset_dir, struct tablelog **out,
            struct weir_errmsg *e)
{
    *out = NULL;
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

void tl_free(struct tablelog *t) { (void)t; }

const char *tl_dir(const struct tablelog *t) { (void)t; return ""; }

int tl_snapshot(struct tablelog *t, uint64_t version, struct tl_snapshot *out,
                struct weir_errmsg *e)
{
    memset(out, 0, sizeof(*out));
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

void tl_snapshot_release(struct tl_snapshot *s) { memset(s, 0, sizeof(*s)); }

int tl_snapshot_absorbed(const struct tl_snapshot *s, const char *name_or_path)
{
    return 0;
}

const struct tl_file *tl_snapshot_file(const struct tl_snapshot *s,
                                       const char *path)
{
    return NULL;
}

const struct tl_app *tl_snapshot_app(const struct tl_snapshot *s,
                                     const char *key)
{
    return NULL;
}

int tl_latest(struct tablelog *t, uint64_t *version, struct weir_errmsg *e)
{
    *version = 0;
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

int tl_commit(struct tablelog *t, const struct tl_commit *c,
              uint64_t *version_out, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

int tl_checkpoint(struct tablelog *t, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

int tl_recover(struct tablelog *t, const struct tl_recover_opts *opts,
               struct tl_recover_stats *st, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

int tl_vacuum(struct tablelog *t, int64_t retention_ns,
              struct tl_vacuum_stats *st, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

size_t tl_part_file_name(uint64_t version, unsigned n, char *out, size_t cap)
{
    int w = snprintf(out, cap, "part-%020llu-%u.parquet",
                     (unsigned long long)version, n);
    return w < 0 || (size_t)w >= cap ? 0 : (size_t)w;
}

int tl_part_name_parse(const char *name, uint64_t *version, unsigned *n)
{
    return 0;
}

size_t tl_commit_file_name(uint64_t version, char *out, size_t cap)
{
    int w = snprintf(out, cap, "_log/%020llu.json", (unsigned long long)version);
    return w < 0 || (size_t)w >= cap ? 0 : (size_t)w;
}

int tl_tmp_file(struct tablelog *t, const char *partition, char *out,
                size_t cap, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

int tl_place_file(struct tablelog *t, const char *tmp_path, char *rel_out,
                  size_t cap, uint64_t *bytes, struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}

int tl_parse_commit_text(const char *name, const char *text, size_t len,
                         struct weir_errmsg *e)
{
    return errmsg_set(e, WEIR_EUNSUPPORTED, "table log: not implemented yet");
}
