/*
 * requeue.c - re-validate quarantined records, move the valid ones to raw,
 * one sealed quarantine segment at a time, through a staging folder and a
 * journal; see requeue.h and docs/storage.md ("Requeue").
 *
 * Journal format (<data_dir>/<pipeline>/_requeue/<source name>.journal),
 * one item per line, paths relative to <data_dir>/<pipeline>:
 *
 *   line                                   meaning
 *   -------------------------------------  -----------------------------------
 *   weir-requeue-journal 1                 format and version
 *   source <rel path>                      the quarantine segment replaced
 *   out <staged name> <rel path> <n> <b>   an output: its file in _requeue/,
 *                                          its final path, records, bytes
 *   requeued <n>                           records that went to raw
 *   end                                    the journal is whole
 */
#include "store/requeue.h"
#include "core/buf.h"
#include "core/fsio.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "schema/protobuf.h"
#include "schema/validate.h"
#include "store/kmeta.h"
#include "store/lake.h"
#include "store/land.h"
#include "store/partition.h"
#include "store/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STAGE_DIR "_requeue"
#define JOURNAL_EXT ".journal"
#define JOURNAL_MAGIC "weir-requeue-journal 1"

/* Reading a segment: bytes per read call. */
#define READ_CHUNK (1u << 20)

/* An output's buffer is written out past this size ... */
#define OUT_FLUSH (256u << 10)
/* ... and every buffer when all of them together hold this much. */
#define OUT_BUFFERED_MAX (8u << 20)
/* Output files kept open at once; the others are reopened to append. */
#define OUT_OPEN_MAX 32

/* ---- testing: die at a named step, for the crash tests ------------------ */

#ifdef WEIR_TESTING
/* WEIR_REQUEUE_CRASH_AT=step[:n]: SIGKILL at the n-th (default first)
 * time the protocol reaches step: staged, journal, renamed, source. */
static void crash_point(const char *step)
{
    static unsigned long seen;
    const char *env = getenv("WEIR_REQUEUE_CRASH_AT");
    size_t n = strlen(step);
    if (!env || strncmp(env, step, n) != 0 || (env[n] && env[n] != ':'))
        return;
    unsigned long want = env[n] == ':' ? strtoul(env + n + 1, NULL, 10) : 1;
    if (++seen >= want)
        raise(SIGKILL);
}
#else
#define crash_point(step) ((void)0)
#endif

/* ---- small helpers ------------------------------------------------------ */

uint64_t requeue_total(const uint64_t v[QUAR__COUNT])
{
    uint64_t t = 0;
    for (int i = 0; i < QUAR__COUNT; i++)
        t += v[i];
    return t;
}

static int path_fmt(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int path_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return WEIR_ELIMIT;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (standard alphabet, padded), as buf_put_base64 writes it.
 * Returns the decoded length or -1. out needs 3 * (n / 4) bytes. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0;
        int v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_val(c)) < 0) {
                return -1;
            }
        }
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
                     (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return (long)o;
}

/* ---- the lock, the staging folder --------------------------------------- */

static int take_lock(const char *data_dir, const char *pipeline, int *fd,
                     struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (path_fmt(path, sizeof(path), "%s/_requeue-%s.lock", data_dir, pipeline))
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", data_dir);
    int rc = fsio_lock_file(path, fd);
    if (rc == WEIR_ECONFLICT)
        return errmsg_set(e, rc,
                          "%s: another weir requeue of pipeline %s is running "
                          "(or weir serve, starting, finishes one); wait for "
                          "it to end",
                          path, pipeline);
    if (rc)
        return errmsg_set(e, rc, "%s: %s", path, strerror(errno));
    return 0;
}

/* A relative path of a journal: "<kind>/<partition key>/<segment name>"
 * with kind raw or quarantine, a strict key and a segment name, so that a
 * damaged journal can never make us rename or remove anything else. */
static int rel_path_ok(const char *rel)
{
    const char *slash = strchr(rel, '/');
    if (!slash)
        return 0;
    size_t kl = (size_t)(slash - rel);
    if (!((kl == 3 && memcmp(rel, "raw", 3) == 0) ||
          (kl == 10 && memcmp(rel, "quarantine", 10) == 0)))
        return 0;
    const char *key = slash + 1;
    const char *name = strrchr(key, '/');
    if (!name)
        return 0;
    enum part_grain g;
    int64_t start;
    size_t keylen = (size_t)(name - key);
    if (part_key_parse(key, keylen, &g, &start) != keylen)
        return 0;
    struct seg_name sn;
    return fsio_name_valid(name + 1) && seg_name_parse(name + 1, &sn) == 0 &&
           !sn.active;
}

/* ---- finishing a journal ------------------------------------------------ */

struct journal_out {
    char stage[160];
    char rel[256];
    uint64_t records, bytes;
};

struct journal {
    char source[256];
    struct journal_out *outs;
    size_t nouts;
    uint64_t requeued;
};

static void journal_release(struct journal *j)
{
    free(j->outs);
    memset(j, 0, sizeof(*j));
}

/* Copy s into out[cap] if it fits; 0 or -1. */
static int copy_str(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return -1;
    memcpy(out, s, n + 1);
    return 0;
}

/* Parse "out <stage> <rel> <records> <bytes>" (the part after "out "). */
static int parse_out(char *line, struct journal_out *o)
{
    char *f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = line;
        char *sp = strchr(line, ' ');
        if ((i < 3) != (sp != NULL))
            return -1;
        if (sp) {
            *sp = '\0';
            line = sp + 1;
        }
    }
    uint64_t v[2];
    for (int i = 0; i < 2; i++) {
        const char *d = f[2 + i];
        if (!*d || strlen(d) > 19)
            return -1;
        v[i] = 0;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            v[i] = v[i] * 10 + (uint64_t)(*d - '0');
        }
    }
    if (copy_str(o->stage, sizeof(o->stage), f[0]) ||
        copy_str(o->rel, sizeof(o->rel), f[1]) || !fsio_name_valid(o->stage) ||
        ends_with(o->stage, JOURNAL_EXT) || !rel_path_ok(o->rel))
        return -1;
    o->records = v[0];
    o->bytes = v[1];
    return 0;
}

/* Parse the text of a journal (modified in place); 0, WEIR_ECORRUPT or
 * WEIR_ENOMEM. */
static int journal_parse(char *text, size_t len, struct journal *j)
{
    memset(j, 0, sizeof(*j));
    int have_source = 0, have_end = 0, first = 1;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || have_end)
            return WEIR_ECORRUPT;
        *nl = '\0';
        char *line = p;
        p = nl + 1;
        if (first) {
            if (strcmp(line, JOURNAL_MAGIC) != 0)
                return WEIR_ECORRUPT;
            first = 0;
        } else if (strncmp(line, "source ", 7) == 0) {
            if (have_source || copy_str(j->source, sizeof(j->source), line + 7) ||
                strncmp(j->source, "quarantine/", 11) != 0 ||
                !rel_path_ok(j->source))
                return WEIR_ECORRUPT;
            have_source = 1;
        } else if (strncmp(line, "out ", 4) == 0) {
            struct journal_out o;
            if (parse_out(line + 4, &o) != 0)
                return WEIR_ECORRUPT;
            struct journal_out *v = realloc(j->outs, (j->nouts + 1) * sizeof(*v));
            if (!v)
                return WEIR_ENOMEM;
            j->outs = v;
            j->outs[j->nouts++] = o;
        } else if (strncmp(line, "requeued ", 9) == 0) {
            char *d = line + 9;
            j->requeued = 0;
            if (!*d || strlen(d) > 19)
                return WEIR_ECORRUPT;
            for (; *d; d++) {
                if (*d < '0' || *d > '9')
                    return WEIR_ECORRUPT;
                j->requeued = j->requeued * 10 + (uint64_t)(*d - '0');
            }
        } else if (strcmp(line, "end") == 0) {
            have_end = 1;
        } else {
            return WEIR_ECORRUPT;
        }
    }
    return have_source && have_end ? 0 : WEIR_ECORRUPT;
}

/* Move one staged output to its final name. An output whose staged file
 * is gone was moved before (and may have been compacted away since). */
static int place_output(const char *pipe_dir, const char *stage_dir,
                        const struct journal_out *o, struct weir_errmsg *e)
{
    char stage[PATH_MAX], final[PATH_MAX], dir[PATH_MAX];
    if (path_fmt(stage, sizeof(stage), "%s/%s", stage_dir, o->stage) ||
        path_fmt(final, sizeof(final), "%s/%s", pipe_dir, o->rel))
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", pipe_dir);
    struct stat st;
    if (fsio_stat(stage, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return errmsg_set(e, weir_from_errno(errno), "requeue: %s: %s", stage,
                          strerror(errno));
    }
    if ((uint64_t)st.st_size != o->bytes)
        return errmsg_set(e, WEIR_ECORRUPT,
                          "requeue: %s holds %" PRIu64 " bytes, its journal "
                          "says %" PRIu64 "; was the staging folder changed "
                          "by hand?",
                          stage, (uint64_t)st.st_size, o->bytes);
    memcpy(dir, final, strlen(final) + 1);
    *strrchr(dir, '/') = '\0';
    int rc = fsio_mkdir_p(dir, 0755);
    if (rc)
        return errmsg_set(e, rc, "requeue: %s: cannot create: %s", dir,
                          strerror(errno));
    rc = fsio_rename_excl(stage, final);
    if (rc == WEIR_EEXIST) {
        /* The link() fallback of an earlier attempt linked, then stopped
         * before its unlink: the same file under both names. */
        struct stat fs;
        if (fsio_stat(final, &fs) == 0 && fs.st_dev == st.st_dev &&
            fs.st_ino == st.st_ino) {
            if (fsio_unlink(stage) != 0 && errno != ENOENT)
                return errmsg_set(e, weir_from_errno(errno), "requeue: %s: %s",
                                  stage, strerror(errno));
            return 0;
        }
        return errmsg_set(e, WEIR_ECORRUPT,
                          "requeue: %s exists already and is not the staged "
                          "%s; nothing was replaced",
                          final, stage);
    }
    if (rc)
        return errmsg_set(e, rc, "requeue: rename %s to %s: %s", stage, final,
                          strerror(errno));
    return 0;
}

/* Step 3 of the protocol for the journal at jpath. Idempotent: every step
 * may have been done already by an interrupted earlier attempt. */
static int journal_finish(const char *pipe_dir, const char *stage_dir,
                          const char *jpath, uint64_t *requeued,
                          struct weir_errmsg *e)
{
    struct buf b = BUF_INIT(64u << 20);
    struct journal j = {0};
    char path[PATH_MAX], prev[PATH_MAX] = "";
    int rc = fsio_read_file(jpath, &b);
    if (rc) {
        errmsg_set(e, rc, "requeue: %s: %s", jpath, strerror(errno));
        goto done;
    }
    if ((rc = journal_parse(b.data ? b.data : "", b.len, &j)) != 0) {
        errmsg_set(e, rc,
                   "requeue: %s: not a journal weir wrote (%s); move it away "
                   "after checking the files it names",
                   jpath, weir_strerror(rc));
        goto done;
    }
    for (size_t i = 0; i < j.nouts; i++) {
        if ((rc = place_output(pipe_dir, stage_dir, &j.outs[i], e)) != 0)
            goto done;
        crash_point("renamed");
    }
    /* The renames are durable once each target directory is fsynced. */
    for (size_t i = 0; i < j.nouts; i++) {
        if ((rc = path_fmt(path, sizeof(path), "%s/%s", pipe_dir,
                           j.outs[i].rel)) != 0) {
            errmsg_set(e, rc, "%s: path too long", pipe_dir);
            goto done;
        }
        *strrchr(path, '/') = '\0';
        if (strcmp(path, prev) == 0)
            continue;
        /* A directory that is not there holds no output of ours any more
         * (it was placed, then compacted away with its directory). */
        if ((rc = fsio_fsync_dir(path)) != 0 && errno != ENOENT) {
            errmsg_set(e, rc, "requeue: fsync %s: %s", path, strerror(errno));
            goto done;
        }
        rc = 0;
        memcpy(prev, path, strlen(path) + 1);
    }
    if ((rc = path_fmt(path, sizeof(path), "%s/%s", pipe_dir, j.source)) != 0) {
        errmsg_set(e, rc, "%s: path too long", pipe_dir);
        goto done;
    }
    if (fsio_unlink(path) != 0 && errno != ENOENT) {
        rc = weir_from_errno(errno);
        errmsg_set(e, rc, "requeue: remove %s: %s", path, strerror(errno));
        goto done;
    }
    if ((rc = fsio_fsync_parent(path)) != 0) {
        errmsg_set(e, rc, "requeue: fsync the directory of %s: %s", path,
                   strerror(errno));
        goto done;
    }
    crash_point("source");
    if (fsio_unlink(jpath) != 0 && errno != ENOENT) {
        rc = weir_from_errno(errno);
        errmsg_set(e, rc, "requeue: remove %s: %s", jpath, strerror(errno));
        goto done;
    }
    if ((rc = fsio_fsync_dir(stage_dir)) != 0) {
        errmsg_set(e, rc, "requeue: fsync %s: %s", stage_dir, strerror(errno));
        goto done;
    }
    if (requeued)
        *requeued = j.requeued;
done:
    journal_release(&j);
    buf_release(&b);
    return rc;
}

/* ---- recovery: finish journals, drop staging leftovers ------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The names in dir (not starting with '.'), sorted; a missing dir is empty. */
static int list_names(const char *dir, char ***out, size_t *n)
{
    char **v = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    DIR *d = fsio_opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : weir_from_errno(errno);
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = realloc(v, nc * sizeof(*nv));
            if (!nv) {
                rc = WEIR_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[*n] = strdup(de->d_name)))
            rc = WEIR_ENOMEM;
        else
            (*n)++;
    }
    closedir(d);
    if (rc) {
        names_free(v, *n);
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(v, *n, sizeof(*v), cmp_str);
    *out = v;
    return 0;
}

/* Requeue's own temporary files in <kind>/_seq/ (counter updates cut short:
 * "<node>-1000000.tmp.<pid>.<n>"); recovery leaves them to us. */
static int remove_seq_tmp(const char *pipe_dir, struct weir_errmsg *e)
{
    static const char *const kinds[2] = {"raw", "quarantine"};
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "-%u.tmp.", SEG_THREAD_REQUEUE);
    for (int k = 0; k < 2; k++) {
        char dir[PATH_MAX], path[PATH_MAX];
        if (path_fmt(dir, sizeof(dir), "%s/%s/_seq", pipe_dir, kinds[k]))
            return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", pipe_dir);
        char **names;
        size_t n;
        int rc = list_names(dir, &names, &n);
        if (rc)
            return errmsg_set(e, rc, "requeue: %s: %s", dir, strerror(errno));
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (!strstr(names[i], suffix) || !fsio_is_tmp_name(names[i]) ||
                path_fmt(path, sizeof(path), "%s/%s", dir, names[i]))
                continue;
            if (fsio_unlink(path) != 0 && errno != ENOENT)
                rc = errmsg_set(e, weir_from_errno(errno), "requeue: %s: %s",
                                path, strerror(errno));
        }
        names_free(names, n);
        if (rc)
            return rc;
    }
    return 0;
}

/* Under the lock: finish every journal, then remove every other file of
 * the staging folder (outputs of a run that died before its journal).
 * Dry run: only count the journals. */
static int recover_locked(const char *pipe_dir, const char *stage_dir, int dry,
                          struct requeue_counts *c, struct weir_errmsg *e)
{
    char **names;
    size_t n;
    char path[PATH_MAX];
    int rc = list_names(stage_dir, &names, &n);
    if (rc)
        return errmsg_set(e, rc, "requeue: %s: %s", stage_dir, strerror(errno));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!ends_with(names[i], JOURNAL_EXT))
            continue;
        if (dry) {
            c->pending++;
            continue;
        }
        uint64_t moved = 0;
        if ((rc = path_fmt(path, sizeof(path), "%s/%s", stage_dir, names[i]))) {
            errmsg_set(e, rc, "%s: path too long", stage_dir);
            break;
        }
        if ((rc = journal_finish(pipe_dir, stage_dir, path, &moved, e)) != 0)
            break;
        c->finished++;
        c->finished_records += moved;
        log_info("requeue: finished an interrupted requeue (%s): %" PRIu64
                 " records moved to raw",
                 names[i], moved);
    }
    int any = 0;
    for (size_t i = 0; rc == 0 && !dry && i < n; i++) {
        if (ends_with(names[i], JOURNAL_EXT) ||
            path_fmt(path, sizeof(path), "%s/%s", stage_dir, names[i]))
            continue;
        if (fsio_unlink(path) == 0) {
            c->discarded++;
            any = 1;
        } else if (errno != ENOENT) {
            rc = errmsg_set(e, weir_from_errno(errno), "requeue: remove %s: %s",
                            path, strerror(errno));
        }
    }
    names_free(names, n);
    if (rc == 0 && any && (rc = fsio_fsync_dir(stage_dir)) != 0)
        errmsg_set(e, rc, "requeue: fsync %s: %s", stage_dir, strerror(errno));
    if (rc == 0 && !dry)
        rc = remove_seq_tmp(pipe_dir, e);
    return rc;
}

static int dirs_of(const char *data_dir, const char *pipeline, char *pipe_dir,
                   char *stage_dir, struct weir_errmsg *e)
{
    if (!fsio_name_valid(pipeline))
        return errmsg_set(e, WEIR_EINVAL, "requeue: invalid pipeline name '%s'",
                          pipeline ? pipeline : "");
    if (path_fmt(pipe_dir, PATH_MAX, "%s/%s", data_dir, pipeline) ||
        path_fmt(stage_dir, PATH_MAX, "%s/%s", pipe_dir, STAGE_DIR))
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", data_dir);
    return 0;
}

int requeue_recover(const char *data_dir, const char *pipeline,
                    struct requeue_counts *c, struct weir_errmsg *e)
{
    char pipe_dir[PATH_MAX], stage_dir[PATH_MAX];
    int rc = dirs_of(data_dir, pipeline, pipe_dir, stage_dir, e);
    if (rc)
        return rc;
    struct stat st;
    if (fsio_stat(stage_dir, &st) != 0 && errno == ENOENT)
        return 0; /* requeue never ran here */
    int fd;
    rc = take_lock(data_dir, pipeline, &fd, e);
    if (rc == WEIR_ECONFLICT) {
        log_info("%s: a weir requeue is running; it finishes its own work",
                 pipeline);
        return 0;
    }
    if (rc)
        return rc;
    rc = recover_locked(pipe_dir, stage_dir, 0, c, e);
    fsio_close(fd);
    return rc;
}

/* ---- one run ------------------------------------------------------------ */

/* One output segment being staged. */
struct out {
    int quar;             /* 1: the quarantine segment, 0: a raw one */
    int64_t part;         /* its partition */
    char stage[160];      /* its name in the staging folder */
    char rel[256];        /* its final path, relative to the pipeline dir */
    int fd;               /* -1: not open now */
    int created;
    struct buf buf;       /* bytes not written yet */
    uint64_t records, bytes;
};

struct rq {
    const struct weir_config *cfg;
    const struct config_pipeline *p;
    const struct requeue_opts *o;
    struct validator *v;
    struct json_doc doc;
    enum part_grain grain;
    size_t line_max;      /* longest quarantine line we read */
    size_t qline_max;     /* longest line the server's writer takes */
    char pipe_dir[PATH_MAX];
    char stage_dir[PATH_MAX];
    uint64_t seq_next[2], seq_end[2]; /* reserved names, [raw, quarantine] */
    struct out *outs;
    size_t nouts, cap;
    size_t *map;          /* raw outputs by partition: index + 1, 0 free */
    size_t map_cap;
    size_t nopen, buffered;
    struct buf rd;        /* the segment being read */
    struct buf raw;       /* a record's decoded bytes */
    struct buf qline;     /* a rewritten quarantine line */
    struct buf s_peer, s_path, s_error;
    char *chunk;          /* READ_CHUNK bytes for copying */
    struct protobuf *pb;  /* a protobuf pipeline: records are decoded ... */
    struct protobuf_decoder *pbd;
    struct buf pbjson;    /* ... into this first, as its Kafka source does */
    int kafka;            /* a Kafka pipeline: valid records get kmeta's members */
    struct buf splice;    /* a record with them */
    struct quar_kafka origin; /* the record's, for the members (qrec_origin) */
    char topic[KMETA_TOPIC_MAX + 1];
    struct buf key;       /* origin.key's bytes */
    char prefix[KMETA_PREFIX_MAX];
};

/* ---- outputs ---- */

static int out_stage_path(const struct rq *r, const struct out *o, char *path)
{
    return path_fmt(path, PATH_MAX, "%s/%s", r->stage_dir, o->stage);
}

static int out_write(struct rq *r, struct out *o, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    if (o->buf.len == 0)
        return 0;
    if (out_stage_path(r, o, path))
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", r->stage_dir);
    if (o->fd < 0) {
        int flags = O_WRONLY | O_CLOEXEC |
                    (o->created ? O_APPEND : O_CREAT | O_EXCL);
        o->fd = fsio_open(path, flags, 0644);
        if (o->fd < 0)
            return errmsg_set(e, weir_from_errno(errno), "requeue: create %s: %s",
                              path, strerror(errno));
        o->created = 1;
        r->nopen++;
    }
    int rc = fsio_write_all(o->fd, o->buf.data, o->buf.len, NULL);
    if (rc)
        return errmsg_set(e, rc, "requeue: write %s: %s", path, strerror(errno));
    r->buffered -= o->buf.len;
    if (o->buf.cap > OUT_FLUSH * 2)
        buf_release(&o->buf);
    else
        buf_reset(&o->buf);
    if (r->nopen > OUT_OPEN_MAX) {
        fsio_close(o->fd);
        o->fd = -1;
        r->nopen--;
    }
    return 0;
}

static int out_flush_all(struct rq *r, struct weir_errmsg *e)
{
    for (size_t i = 0; i < r->nouts; i++) {
        int rc = out_write(r, &r->outs[i], e);
        if (rc)
            return rc;
    }
    return 0;
}

/* Append len bytes (whole lines when nl is 0, else one line that gets its
 * newline here) holding nrec records. */
static int out_append(struct rq *r, struct out *o, const void *data, size_t len,
                      int nl, uint64_t nrec, struct weir_errmsg *e)
{
    int rc;
    if (o->buf.len && o->buf.len + len + 1 > OUT_FLUSH &&
        (rc = out_write(r, o, e)) != 0)
        return rc;
    if ((rc = buf_append(&o->buf, data, len)) != 0 ||
        (nl && (rc = buf_putc(&o->buf, '\n')) != 0))
        return errmsg_set(e, rc, "requeue: %s", weir_strerror(rc));
    size_t n = len + (nl ? 1 : 0);
    o->bytes += n;
    o->records += nrec;
    r->buffered += n;
    if (o->buf.len >= OUT_FLUSH)
        return out_write(r, o, e);
    if (r->buffered >= OUT_BUFFERED_MAX)
        return out_flush_all(r, e);
    return 0;
}

/* Write out, fsync and close every output. */
static int out_finish_all(struct rq *r, struct weir_errmsg *e)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < r->nouts; i++) {
        struct out *o = &r->outs[i];
        int rc = out_write(r, o, e);
        if (rc)
            return rc;
        if (out_stage_path(r, o, path))
            return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", r->stage_dir);
        if (o->fd < 0) {
            if ((o->fd = fsio_open(path, O_WRONLY | O_CLOEXEC, 0)) < 0)
                return errmsg_set(e, weir_from_errno(errno), "requeue: %s: %s",
                                  path, strerror(errno));
            r->nopen++;
        }
        if ((rc = fsio_fsync(o->fd)) != 0)
            return errmsg_set(e, rc, "requeue: fsync %s: %s", path,
                              strerror(errno));
        int bad = fsio_close(o->fd) != 0;
        o->fd = -1;
        r->nopen--;
        if (bad)
            return errmsg_set(e, WEIR_EIO, "requeue: close %s: %s", path,
                              strerror(errno));
    }
    return 0;
}

/* Forget the outputs of a segment; unlink their staged files when the
 * segment was not committed (best effort: a later run removes leftovers). */
static void outs_reset(struct rq *r, int unlink_staged)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < r->nouts; i++) {
        struct out *o = &r->outs[i];
        if (o->fd >= 0) {
            fsio_close(o->fd);
            r->nopen--;
        }
        if (unlink_staged && o->created && out_stage_path(r, o, path) == 0)
            fsio_unlink(path);
        buf_release(&o->buf);
    }
    r->nouts = 0;
    r->buffered = 0;
    if (r->map)
        memset(r->map, 0, r->map_cap * sizeof(*r->map));
}

/* A fresh name for an output of kind quar in partition part. */
static int out_name(struct rq *r, struct out *o, struct weir_errmsg *e)
{
    int k = o->quar;
    const char *kind = k ? "quarantine" : "raw";
    char key[PART_KEY_MAX], name[128], final[PATH_MAX];
    part_key_format(o->part, k ? PART_HOUR : r->grain, key, sizeof(key));
    for (int tries = 0;; tries++) {
        if (r->seq_next[k] >= r->seq_end[k]) {
            struct seg_config sc = {
                .data_dir = r->cfg->data_dir, .pipeline = r->p->name,
                .kind = kind, .node = r->cfg->node,
                .thread = SEG_THREAD_REQUEUE,
            };
            uint64_t first;
            int rc = seg_seq_reserve(&sc, SEG_SEQ_BLOCK, &first, e);
            if (rc)
                return rc;
            r->seq_next[k] = first;
            r->seq_end[k] = first + SEG_SEQ_BLOCK;
        }
        uint64_t seq = r->seq_next[k]++;
        struct stat st;
        if (path_fmt(name, sizeof(name), "%s-%u-%010" PRIu64 ".ndjson",
                     r->cfg->node, SEG_THREAD_REQUEUE, seq) ||
            path_fmt(o->rel, sizeof(o->rel), "%s/%s/%s", kind, key, name) ||
            path_fmt(o->stage, sizeof(o->stage), "%s.%s", kind, name) ||
            path_fmt(final, sizeof(final), "%s/%s", r->pipe_dir, o->rel))
            return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", r->pipe_dir);
        /* Only a lost counter file makes names collide: skip past them. */
        if (fsio_stat(final, &st) != 0 || tries > 100000)
            return 0;
    }
}

static struct out *out_new(struct rq *r, int quar, int64_t part,
                           struct weir_errmsg *e)
{
    if (r->nouts == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        struct out *v = realloc(r->outs, nc * sizeof(*v));
        if (!v) {
            errmsg_set(e, WEIR_ENOMEM, "out of memory");
            return NULL;
        }
        r->outs = v;
        r->cap = nc;
    }
    struct out *o = &r->outs[r->nouts];
    memset(o, 0, sizeof(*o));
    o->quar = quar;
    o->part = part;
    o->fd = -1;
    buf_init(&o->buf, r->line_max + (64u << 10));
    if (out_name(r, o, e) != 0) {
        buf_release(&o->buf);
        return NULL;
    }
    r->nouts++;
    return o;
}

static size_t map_slot(int64_t part, size_t cap)
{
    uint64_t h = (uint64_t)part * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (cap - 1);
}

/* The raw output of partition part, created on first use. */
static struct out *raw_out(struct rq *r, int64_t part, struct weir_errmsg *e)
{
    if (r->map_cap && r->nouts * 2 < r->map_cap) {
        for (size_t i = map_slot(part, r->map_cap);; i = (i + 1) & (r->map_cap - 1)) {
            if (!r->map[i])
                break;
            struct out *o = &r->outs[r->map[i] - 1];
            if (!o->quar && o->part == part)
                return o;
        }
    } else {
        size_t nc = r->map_cap ? r->map_cap * 2 : 64;
        size_t *m = calloc(nc, sizeof(*m));
        if (!m) {
            errmsg_set(e, WEIR_ENOMEM, "out of memory");
            return NULL;
        }
        free(r->map);
        r->map = m;
        r->map_cap = nc;
        for (size_t k = 0; k < r->nouts; k++) {
            size_t i = map_slot(r->outs[k].part, nc);
            while (m[i])
                i = (i + 1) & (nc - 1);
            if (!r->outs[k].quar)
                m[i] = k + 1;
        }
        return raw_out(r, part, e);
    }
    struct out *o = out_new(r, 0, part, e);
    if (!o)
        return NULL;
    size_t i = map_slot(part, r->map_cap);
    while (r->map[i])
        i = (i + 1) & (r->map_cap - 1);
    r->map[i] = r->nouts;
    return o;
}

/* ---- reading a quarantine line ---- */

struct qrec {
    int reason;
    int64_t received_at;
    int truncated;
    int t_peer, t_path, t_error, t_raw, t_b64; /* token indices, -1: absent */
    int t_kafka;          /* the "kafka" object; -1: absent (or not an object) */
};

/* Parse one quarantine line into q (the doc keeps its tokens); 0 or -1
 * when it is not a quarantine record. */
static int qrec_parse(struct rq *r, const char *line, size_t len, struct qrec *q)
{
    struct json_doc *d = &r->doc;
    memset(q, 0, sizeof(*q));
    q->reason = -1;
    q->t_peer = q->t_path = q->t_error = q->t_raw = q->t_b64 = q->t_kafka = -1;
    if (json_scan(d, line, len) != JSON_OK || d->toks[0].type != JSON_OBJECT)
        return -1;
    int have_time = 0;
    uint32_t k = 1;
    for (uint32_t m = 0; m < d->toks[0].count; m++) {
        const struct json_tok *kt = &d->toks[k], *vt = &d->toks[k + 1];
        int v = (int)(k + 1);
        int str = vt->type == JSON_STRING;
        int strnull = str || vt->type == JSON_NULL;
#define KEY(s) json_str_eq(d, kt, s, sizeof(s) - 1)
        if (KEY("received_at")) {
            char tmp[64];
            if (!str || vt->len - 2 >= sizeof(tmp))
                return -1;
            size_t n = json_str_decode(d, vt, tmp, sizeof(tmp));
            if (wtime_parse_rfc3339(tmp, n, &q->received_at) != 0)
                return -1;
            have_time = 1;
        } else if (KEY("reason")) {
            char tmp[32];
            if (!str || vt->len - 2 >= sizeof(tmp))
                return -1;
            size_t n = json_str_decode(d, vt, tmp, sizeof(tmp) - 1);
            tmp[n] = '\0';
            if ((q->reason = quar_reason_parse(tmp)) < 0)
                return -1;
        } else if (KEY("peer")) {
            if (!strnull)
                return -1;
            q->t_peer = v;
        } else if (KEY("path")) {
            if (!strnull)
                return -1;
            q->t_path = v;
        } else if (KEY("error")) {
            if (!strnull)
                return -1;
            q->t_error = v;
        } else if (KEY("raw")) {
            if (!str)
                return -1;
            q->t_raw = v;
        } else if (KEY("raw_b64")) {
            if (!str || (vt->flags & JSON_F_ESCAPED))
                return -1;
            q->t_b64 = v;
        } else if (KEY("truncated")) {
            q->truncated = vt->type == JSON_TRUE;
        } else if (KEY("kafka")) {
            /* Not an object (edited by hand): the peer says it, less well. */
            q->t_kafka = vt->type == JSON_OBJECT ? v : -1;
        }
#undef KEY
        k = vt->next;
    }
    if (!have_time || q->reason < 0 || (q->t_raw < 0) == (q->t_b64 < 0))
        return -1;
    return 0;
}

/* The decoded string of token t into b (NUL-terminated); NULL for null or
 * an absent field. *n gets its length. */
static const char *tok_text(struct rq *r, struct buf *b, int t, size_t *n)
{
    *n = 0;
    if (t < 0 || r->doc.toks[t].type != JSON_STRING)
        return NULL;
    const struct json_tok *tok = &r->doc.toks[t];
    buf_reset(b);
    if (buf_reserve(b, tok->len) != 0)
        return NULL;
    *n = json_str_decode(&r->doc, tok, b->data, tok->len);
    b->len = *n;
    b->data[*n] = '\0';
    return b->data;
}

/* The record's original bytes into r->raw; 0 or -1. */
static int qrec_raw(struct rq *r, const struct qrec *q)
{
    buf_reset(&r->raw);
    if (q->t_raw >= 0) {
        const struct json_tok *t = &r->doc.toks[q->t_raw];
        if (buf_reserve(&r->raw, t->len) != 0)
            return -1;
        r->raw.len = json_str_decode(&r->doc, t, r->raw.data, t->len);
        return 0;
    }
    const struct json_tok *t = &r->doc.toks[q->t_b64];
    size_t n = t->len - 2;
    if (buf_reserve(&r->raw, n / 4 * 3 + 1) != 0)
        return -1;
    long got = b64_decode(json_tok_ptr(&r->doc, t) + 1, n,
                          (unsigned char *)r->raw.data);
    if (got < 0)
        return -1;
    r->raw.len = (size_t)got;
    return 0;
}

/* ---- where a Kafka record came from ---- */

/* The decoded string token t as a topic into r->topic; 0 or -1. */
static int topic_copy(struct rq *r, const struct json_tok *t)
{
    if (t->type != JSON_STRING || t->len - 2 > KMETA_TOPIC_MAX)
        return -1;
    size_t n = json_str_decode(&r->doc, t, r->topic, KMETA_TOPIC_MAX);
    r->topic[n] = '\0';
    return n && strlen(r->topic) == n ? 0 : -1;
}

/* The line's "kafka" object into r->origin: 0, or -1 if it is not one
 * weir writes. */
static int origin_field(struct rq *r, int t_obj)
{
    const struct json_doc *d = &r->doc;
    struct quar_kafka *o = &r->origin;
    int have_topic = 0, have_part = 0, have_off = 0;
    int64_t v;
    memset(o, 0, sizeof(*o));
    o->timestamp_ms = -1;
    uint32_t k = (uint32_t)t_obj + 1;
    for (uint32_t m = 0; m < d->toks[t_obj].count; m++) {
        const struct json_tok *kt = &d->toks[k], *vt = &d->toks[k + 1];
#define KEY(s) json_str_eq(d, kt, s, sizeof(s) - 1)
#define INT(lo, hi) (vt->type == JSON_NUMBER && json_num_int64(d, vt, &v) && \
                     v >= (lo) && v <= (hi))
        if (KEY("topic")) {
            if (topic_copy(r, vt) != 0)
                return -1;
            o->topic = r->topic;
            have_topic = 1;
        } else if (KEY("partition")) {
            if (!INT(0, INT32_MAX))
                return -1;
            o->partition = (int32_t)v;
            have_part = 1;
        } else if (KEY("offset")) {
            if (!INT(0, INT64_MAX))
                return -1;
            o->offset = v;
            have_off = 1;
        } else if (KEY("timestamp")) {
            if (!INT(0, INT64_MAX))
                return -1;
            o->timestamp_ms = v;
        } else if (KEY("key") || KEY("key_b64")) {
            int b64 = KEY("key_b64");
            if (vt->type != JSON_STRING || o->key ||
                (b64 && (vt->flags & JSON_F_ESCAPED)))
                return -1;
            buf_reset(&r->key);
            if (buf_reserve(&r->key, vt->len) != 0)
                return -1;
            if (b64) {
                long got = b64_decode(json_tok_ptr(d, vt) + 1, vt->len - 2,
                                      (unsigned char *)r->key.data);
                if (got < 0)
                    return -1;
                r->key.len = (size_t)got;
            } else {
                r->key.len = json_str_decode(d, vt, r->key.data, vt->len);
            }
            o->key = r->key.data;
            o->key_len = r->key.len;
        }
#undef INT
#undef KEY
        k = vt->next;
    }
    return have_topic && have_part && have_off ? 0 : -1;
}

/* Digits s[*i..) as a number up to max: 0 and *v, or -1. */
static int peer_num(const char *s, size_t n, size_t *i, int64_t max, int64_t *v)
{
    size_t start = *i;
    *v = 0;
    for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
        int dg = s[*i] - '0';
        if (*v > (max - dg) / 10)
            return -1;
        *v = *v * 10 + dg;
    }
    return *i > start ? 0 : -1;
}

/*
 * A peer "TOPIC/PARTITION@OFFSET[ ts=MS][ key=K|key_b64=B][...]" (its
 * format: kmeta.h) into r->origin, for lines written before "kafka"
 * existed: 0, or -1 if it is not one. A key cut at KMETA_PEER_KEY_MAX
 * bytes is left out (NULL in its column, never a wrong key), and so is an
 * empty key, which the peer does not show.
 */
static int origin_peer(struct rq *r, const char *s, size_t n)
{
    struct quar_kafka *o = &r->origin;
    int64_t v;
    size_t i = 0;
    memset(o, 0, sizeof(*o));
    o->timestamp_ms = -1;
    /* Kafka topics are [a-zA-Z0-9._-]: never '/', '@' or a space. */
    while (i < n && i < KMETA_TOPIC_MAX && s[i] != '/' && s[i] != '@' && s[i] > ' ')
        i++;
    if (i == 0 || i >= n || s[i] != '/')
        return -1;
    memcpy(r->topic, s, i);
    r->topic[i++] = '\0';
    o->topic = r->topic;
    if (peer_num(s, n, &i, INT32_MAX, &v) != 0 || i >= n || s[i++] != '@')
        return -1;
    o->partition = (int32_t)v;
    if (peer_num(s, n, &i, INT64_MAX, &o->offset) != 0)
        return -1;
    if (n - i > 4 && memcmp(s + i, " ts=", 4) == 0) {
        i += 4;
        if (peer_num(s, n, &i, INT64_MAX, &o->timestamp_ms) != 0)
            return -1;
    }
    if (i == n)
        return 0;
    int b64 = n - i > 9 && memcmp(s + i, " key_b64=", 9) == 0;
    if (!b64 && !(n - i > 5 && memcmp(s + i, " key=", 5) == 0))
        return -1;
    const char *key = s + i + (b64 ? 9 : 5);
    size_t len = n - i - (b64 ? 9 : 5);
    /* Only a cut key is longer than KMETA_PEER_KEY_MAX (key=) or ends in
     * "..." (key_b64=, which never has a '.'); a key of its own that ends
     * in "..." is at most KMETA_PEER_KEY_MAX long. */
    if (b64 ? len >= 3 && memcmp(key + len - 3, "...", 3) == 0
            : len > KMETA_PEER_KEY_MAX)
        return 0;
    buf_reset(&r->key);
    if (buf_reserve(&r->key, len + 1) != 0)
        return -1;
    if (b64) {
        long got = b64_decode(key, len, (unsigned char *)r->key.data);
        if (got <= 0)
            return -1;
        r->key.len = (size_t)got;
    } else {
        memcpy(r->key.data, key, len);
        r->key.len = len;
    }
    o->key = r->key.data;
    o->key_len = r->key.len;
    return 0;
}

/* Where q's record came from, if r is a Kafka pipeline and the line says
 * it (its "kafka", else its peer); NULL if not. */
static const struct quar_kafka *qrec_origin(struct rq *r, const struct qrec *q)
{
    if (!r->kafka)
        return NULL;
    if (q->t_kafka >= 0 && origin_field(r, q->t_kafka) == 0)
        return &r->origin;
    const struct json_tok *t = q->t_peer >= 0 ? &r->doc.toks[q->t_peer] : NULL;
    if (!t || t->type != JSON_STRING || (t->flags & JSON_F_ESCAPED))
        return NULL; /* the peers of Kafka records have nothing to escape */
    return origin_peer(r, json_tok_ptr(&r->doc, t) + 1, t->len - 2) == 0 ? &r->origin
                                                                          : NULL;
}

/* land_meta's members for r->origin: the same bytes its source writes. */
static int origin_members(void *ctx, struct buf *b)
{
    struct rq *r = ctx;
    const struct quar_kafka *o = &r->origin;
    size_t n = kmeta_prefix(r->prefix, sizeof(r->prefix), o->topic, o->partition);
    if (n == 0)
        return WEIR_ELIMIT;
    return kmeta_format(b, r->prefix, n, o->offset, o->key, o->key_len, o->timestamp_ms);
}

/* ---- judging a record, as land_record would have at its arrival ---- */

struct judgment {
    int valid;
    int64_t part;         /* valid: the raw partition */
    const char *out;      /* valid: the bytes to store */
    size_t outlen;
    enum quar_reason reason;
    int json_error;
    char path[512];
    char msg[512];
};

static int judge(struct rq *r, const char *rec, size_t len, int64_t received_at,
                 const struct quar_kafka *origin, struct judgment *j)
{
    const struct config_pipeline *p = r->p;
    struct verdict vd;
    memset(j, 0, sizeof(*j));
    j->reason = QUAR_INVALID;
    if (r->pbd) {
        struct weir_errmsg pe;
        if (protobuf_decode(r->pbd, rec, len, &r->pbjson, &pe) != 0) {
            /* The verdict its Kafka source gives (sources/kafka.c). */
            size_t n = strnlen(pe.text, sizeof(j->msg) - 1);
            memcpy(j->msg, pe.text, n);
            j->msg[n] = '\0';
            return 0;
        }
        rec = r->pbjson.data;
        len = r->pbjson.len;
    }
    int ok = validator_check(r->v, rec, len, &vd);
    if (ok < 0)
        return ok;
    if (ok == 0) {
        j->json_error = vd.json_error;
        snprintf(j->path, sizeof(j->path), "%s", vd.path);
        snprintf(j->msg, sizeof(j->msg), "%s", vd.message);
        return 0;
    }
    int64_t ts;
    int reason = land_event_time(p, validator_doc(r->v), &ts, j->msg,
                                 sizeof(j->msg));
    if (reason) {
        j->reason = (enum quar_reason)reason;
        return 0;
    }
    int64_t start;
    if ((p->time_max_ahead_ns != CONFIG_OFF &&
         ts > received_at + p->time_max_ahead_ns) ||
        (p->time_max_age_ns != CONFIG_OFF &&
         ts < received_at - p->time_max_age_ns) ||
        part_start(ts, r->grain, &start) != 0) {
        char when[40];
        wtime_format_rfc3339(ts, 0, when, sizeof(when));
        j->reason = QUAR_TIME_OUT_OF_RANGE;
        snprintf(j->msg, sizeof(j->msg),
                 "event time %s is outside the accepted window "
                 "(time_max_ahead / time_max_age)",
                 when);
        return 0;
    }
    j->out = validator_output(r->v, &j->outlen);
    if (r->kafka && validator_doc(r->v)->toks[0].type == JSON_OBJECT) {
        /* What land_record_meta does for a Kafka source, with the same
         * verdicts; without an origin the record lands without members
         * (its columns NULL), as before the origin was kept. */
        const struct json_doc *d = validator_doc(r->v);
        const char *dup = land_meta_clash(d, kmeta_names);
        if (dup) {
            snprintf(j->path, sizeof(j->path), "/%s", dup);
            snprintf(j->msg, sizeof(j->msg), "\"%s\" is a member weir adds to the "
                     "records of this pipeline; the record may not carry it", dup);
            return 0;
        }
        struct land_meta lm = {.members = origin_members, .ctx = r,
                               .names = kmeta_names};
        if (origin) {
            if (land_meta_splice(&r->splice, d, j->out, j->outlen, &lm) != 0) {
                j->reason = QUAR_TOO_LARGE;
                snprintf(j->msg, sizeof(j->msg), "the record with the members weir "
                         "adds is longer than the lander can hold");
                return 0;
            }
            j->out = r->splice.data;
            j->outlen = r->splice.len;
        }
    }
    if (memchr(j->out, '\n', j->outlen)) {
        /* JSON allows a line break between tokens; a segment line cannot
         * hold one. The framer never lets one through, so this is a
         * quarantine file edited by hand. */
        snprintf(j->msg, sizeof(j->msg),
                 "the record contains a line break, which a segment line "
                 "cannot hold");
        return 0;
    }
    j->valid = 1;
    j->part = start;
    return 1;
}

/* 1 if the new verdict says what the line says already. */
static int same_verdict(struct rq *r, const struct qrec *q,
                        const struct judgment *j)
{
    /* "truncated" and "torn" say where the bytes came from, which a JSON
     * error found again says less well. */
    if ((q->reason == QUAR_TRUNCATED || q->reason == QUAR_TORN) && j->json_error)
        return 1;
    if (q->reason != (int)j->reason)
        return 0;
    size_t n;
    const char *path = tok_text(r, &r->s_path, q->t_path, &n);
    if (!path || n != strlen(j->path) || memcmp(path, j->path, n) != 0)
        return 0;
    const char *err = tok_text(r, &r->s_error, q->t_error, &n);
    return err && n == strlen(j->msg) && memcmp(err, j->msg, n) == 0;
}

/* The line for q with the verdict of j into r->qline; 0, or -1 if it does
 * not fit the writer's limit (the line is then kept as it was). */
static int format_line(struct rq *r, const struct qrec *q,
                       const struct judgment *j)
{
    size_t n;
    /* The line keeps its "kafka", whatever the pipeline's source is now
     * (it may be Kafka again later); an origin made from the peer is not
     * written: the peer stays as it is. */
    const struct quar_kafka *kafka = NULL;
    if (q->t_kafka >= 0 && origin_field(r, q->t_kafka) == 0)
        kafka = &r->origin;
    struct quar_record qr = {
        .received_at_ns = q->received_at,
        .peer = tok_text(r, &r->s_peer, q->t_peer, &n),
        .reason = j->reason,
        .path = j->path,
        .error = j->msg,
        .raw = r->raw.data ? r->raw.data : "",
        .raw_len = r->raw.len,
        .binary = r->pbd != NULL,
        .kafka = kafka,
    };
    buf_reset(&r->qline);
    return quar_format(&r->qline, r->p->name, &qr) == 0 ? 0 : -1;
}

/* ---- one segment ---- */

struct reader {
    int fd;
    struct buf *b;
    size_t pos;        /* next unread byte of b */
    uint64_t off;      /* file offset of b->data[0] */
    int eof;
};

/* The next line (without its '\n'): 1, 0 at the end, or an error
 * (WEIR_ELIMIT: a line longer than b->max). */
static int reader_next(struct reader *rd, const char **line, size_t *len,
                       uint64_t *off)
{
    for (;;) {
        size_t avail = rd->b->len - rd->pos;
        const char *start = rd->b->data ? rd->b->data + rd->pos : "";
        const char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl || (rd->eof && avail)) {
            *line = start;
            *len = nl ? (size_t)(nl - start) : avail;
            *off = rd->off + rd->pos;
            rd->pos += *len + (nl ? 1 : 0);
            return 1;
        }
        if (rd->eof)
            return 0;
        if (rd->pos) {
            buf_consume(rd->b, rd->pos);
            rd->off += rd->pos;
            rd->pos = 0;
        }
        size_t room = rd->b->max - rd->b->len;
        if (room == 0)
            return WEIR_ELIMIT;
        size_t want = room < READ_CHUNK ? room : READ_CHUNK;
        if (buf_reserve(rd->b, want) != 0)
            return WEIR_ENOMEM;
        ssize_t got = fsio_read(rd->fd, rd->b->data + rd->b->len, want);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return weir_from_errno(errno);
        }
        if (got == 0)
            rd->eof = 1;
        rd->b->len += (size_t)got;
    }
}

/* Copy bytes [0, end) of the source (whole lines that stay as they are)
 * into the quarantine output, which holds nrec records then. */
static int copy_prefix(struct rq *r, struct out *o, int fd, uint64_t end,
                       uint64_t nrec, const char *src, struct weir_errmsg *e)
{
    for (uint64_t at = 0; at < end;) {
        size_t n = end - at < READ_CHUNK ? (size_t)(end - at) : READ_CHUNK;
        size_t got;
        int rc = fsio_pread_all(fd, r->chunk, n, (off_t)at, &got);
        if (rc == 0 && got < n)
            rc = WEIR_ECORRUPT; /* a sealed segment shrank */
        if (rc)
            return errmsg_set(e, rc, "requeue: read %s: %s", src,
                              weir_strerror(rc));
        if ((rc = out_append(r, o, r->chunk, n, 0, 0, e)) != 0)
            return rc;
        at += n;
    }
    o->records += nrec;
    return 0;
}

/* Per-segment counts, added to the run's once the segment is done. */
static void counts_add(struct requeue_counts *c, const struct requeue_counts *s)
{
    for (int i = 0; i < QUAR__COUNT; i++) {
        c->requeued[i] += s->requeued[i];
        c->stay[i] += s->stay[i];
        c->reverdict[i] += s->reverdict[i];
    }
    c->cut += s->cut;
    c->unreadable += s->unreadable;
    c->skipped += s->skipped;
    c->segments += s->segments;
    c->rewritten += s->rewritten;
    c->raw_segments += s->raw_segments;
}

static int in_filter(const struct requeue_opts *o, const struct qrec *q)
{
    if (o->reasons && !(o->reasons & (1u << q->reason)))
        return 0;
    return !o->range || (q->received_at >= o->from_ns && q->received_at < o->to_ns);
}

/* Build the journal of a segment's outputs. */
static int journal_text(struct rq *r, const char *source_rel, uint64_t requeued,
                        struct buf *j)
{
    int rc = buf_appendf(j, "%s\nsource %s\n", JOURNAL_MAGIC, source_rel);
    for (size_t i = 0; rc == 0 && i < r->nouts; i++)
        rc = buf_appendf(j, "out %s %s %" PRIu64 " %" PRIu64 "\n",
                         r->outs[i].stage, r->outs[i].rel, r->outs[i].records,
                         r->outs[i].bytes);
    if (rc == 0)
        rc = buf_appendf(j, "requeued %" PRIu64 "\nend\n", requeued);
    return rc;
}

enum action { KEEP, MOVE, REWRITE };

/* What to do with one quarantine line: KEEP it as it is, MOVE it to raw
 * (j says where and what), or REWRITE it with the new verdict (in
 * r->qline); counted in sc. Negative: the validator failed (no memory). */
static int decide(struct rq *r, const char *line, size_t len,
                  struct requeue_counts *sc, struct judgment *j)
{
    struct qrec q;
    if (qrec_parse(r, line, len, &q) != 0) {
        sc->unreadable++;
        return KEEP;
    }
    if (!in_filter(r->o, &q)) {
        sc->skipped++;
        return KEEP;
    }
    if (q.truncated || q.reason == QUAR_TOO_LARGE) {
        sc->stay[q.reason]++;
        sc->cut++;
        return KEEP;
    }
    if (qrec_raw(r, &q) != 0) {
        sc->unreadable++;
        return KEEP;
    }
    int ok = judge(r, r->raw.data ? r->raw.data : "", r->raw.len,
                   q.received_at, qrec_origin(r, &q), j);
    if (ok < 0)
        return ok;
    if (ok) {
        sc->requeued[q.reason]++;
        return MOVE;
    }
    sc->stay[q.reason]++;
    if (same_verdict(r, &q, j) || format_line(r, &q, j) != 0 ||
        (r->qline.len == len && memcmp(r->qline.data, line, len) == 0))
        return KEEP;
    sc->reverdict[q.reason]++;
    return REWRITE;
}

/* Stage, journal and finish one sealed quarantine segment. */
static int do_segment(struct rq *r, const struct seg_entry *s,
                      struct requeue_counts *c, struct weir_errmsg *e)
{
    struct requeue_counts sc = {0};
    struct reader rd = {.fd = -1, .b = &r->rd};
    size_t stay = SIZE_MAX; /* index of the quarantine output (raw_out may
                               move r->outs, so no pointer) */
    char key[PART_KEY_MAX], source_rel[256], jpath[PATH_MAX];
    int changed = 0, committed = 0, rc = 0;
    uint64_t lines = 0;
    e->code = 0;
    e->text[0] = '\0';
    part_key_format(s->part_start, s->grain, key, sizeof(key));
    if (path_fmt(source_rel, sizeof(source_rel), "quarantine/%s/%s", key,
                 s->name) ||
        path_fmt(jpath, sizeof(jpath), "%s/%s%s", r->stage_dir, s->name,
                 JOURNAL_EXT))
        return errmsg_set(e, WEIR_ELIMIT, "%s: path too long", s->path);
    struct stat st;
    if (fsio_stat(jpath, &st) == 0) {
        /* Its fate is decided: a dry run counted the journal as pending
         * already; a real run finished every journal at its start, so
         * this one appeared since (it cannot, we hold the lock): finish
         * it rather than judge the segment again. */
        if (r->o->dry_run)
            return 0;
        uint64_t moved = 0;
        if ((rc = journal_finish(r->pipe_dir, r->stage_dir, jpath, &moved, e)))
            return rc;
        c->finished++;
        c->finished_records += moved;
        return 0;
    }
    rd.fd = fsio_open(s->path, O_RDONLY | O_CLOEXEC, 0);
    if (rd.fd < 0) {
        if (errno == ENOENT)
            return 0; /* removed meanwhile (retention) */
        return errmsg_set(e, weir_from_errno(errno), "requeue: open %s: %s",
                          s->path, strerror(errno));
    }
    buf_reset(&r->rd);
    sc.segments = 1;
    const char *line = NULL;
    size_t len = 0;
    uint64_t off = 0;
    while ((rc = reader_next(&rd, &line, &len, &off)) == 1) {
        struct judgment j;
        int act = decide(r, line, len, &sc, &j);
        lines++;
        if (act < 0) {
            rc = errmsg_set(e, act, "requeue: validating: %s",
                            weir_strerror(act));
            break;
        }
        if (act != KEEP && !changed) {
            changed = 1;
            /* Everything before the first change stays as it is. */
            if (!r->o->dry_run && off > 0) {
                if (!out_new(r, 1, s->part_start, e)) {
                    rc = e->code ? e->code : WEIR_ENOMEM;
                    break;
                }
                stay = r->nouts - 1;
                if ((rc = copy_prefix(r, &r->outs[stay], rd.fd, off, lines - 1,
                                      s->path, e)) != 0)
                    break;
            }
        }
        if (!changed || r->o->dry_run)
            continue;
        if (act == MOVE) {
            struct out *o = raw_out(r, j.part, e);
            if (!o) {
                rc = e->code ? e->code : WEIR_ENOMEM;
                break;
            }
            if ((rc = out_append(r, o, j.out, j.outlen, 1, 1, e)) != 0)
                break;
            continue;
        }
        if (stay == SIZE_MAX) {
            if (!out_new(r, 1, s->part_start, e)) {
                rc = e->code ? e->code : WEIR_ENOMEM;
                break;
            }
            stay = r->nouts - 1;
        }
        if (act == REWRITE)
            rc = out_append(r, &r->outs[stay], r->qline.data, r->qline.len, 1,
                            1, e);
        else
            rc = out_append(r, &r->outs[stay], line, len, 1, 1, e);
        if (rc)
            break;
    }
    if (rc == WEIR_ELIMIT && !e->text[0])
        errmsg_set(e, rc, "requeue: %s: a line longer than %zu bytes; not a "
                          "quarantine segment weir wrote?",
                   s->path, r->line_max);
    else if (rc < 0 && !e->text[0])
        errmsg_set(e, rc, "requeue: read %s: %s", s->path, weir_strerror(rc));
    if (rc < 0)
        goto fail;
    rc = 0;
    if (!changed || r->o->dry_run) {
        sc.rewritten = changed;
        goto done;
    }
    sc.rewritten = 1;
    for (size_t i = 0; i < r->nouts; i++)
        sc.raw_segments += !r->outs[i].quar;
    if ((rc = out_finish_all(r, e)) != 0)
        goto fail;
    if ((rc = fsio_fsync_dir(r->stage_dir)) != 0) {
        errmsg_set(e, rc, "requeue: fsync %s: %s", r->stage_dir, strerror(errno));
        goto fail;
    }
    crash_point("staged");
    struct buf jt = BUF_INIT(64u << 20);
    rc = journal_text(r, source_rel, requeue_total(sc.requeued), &jt);
    if (rc == 0 && (rc = fsio_publish_excl(jpath, jt.data, jt.len, 0644)) != 0) {
        errmsg_set(e, rc, "requeue: publish %s: %s", jpath, strerror(errno));
        /* The journal may be in place with only its directory's fsync
         * failed: then the staged files are its outputs now. Unless it
         * surely is not there, leave them for the next run to decide. */
        committed = fsio_stat(jpath, &st) == 0 || errno != ENOENT;
    }
    buf_release(&jt);
    if (rc)
        goto fail;
    committed = 1;
    crash_point("journal");
    outs_reset(r, 0);
    fsio_close(rd.fd);
    rd.fd = -1;
    counts_add(c, &sc);
    return journal_finish(r->pipe_dir, r->stage_dir, jpath, NULL, e);
fail:
    if (!e->text[0])
        errmsg_set(e, rc, "requeue: %s: %s", s->path, weir_strerror(rc));
done:
    outs_reset(r, !committed);
    if (rd.fd >= 0)
        fsio_close(rd.fd);
    if (rc == 0)
        counts_add(c, &sc);
    return rc;
}

/* ---- the run ------------------------------------------------------------ */

static void rq_release(struct rq *r)
{
    outs_reset(r, 1);
    free(r->outs);
    free(r->map);
    validator_free(r->v);
    json_doc_release(&r->doc);
    buf_release(&r->rd);
    buf_release(&r->raw);
    buf_release(&r->qline);
    buf_release(&r->s_peer);
    buf_release(&r->s_path);
    buf_release(&r->s_error);
    free(r->chunk);
    protobuf_decoder_free(r->pbd);
    protobuf_free(r->pb);
    buf_release(&r->pbjson);
    buf_release(&r->splice);
    buf_release(&r->key);
}

/* Does segment s hold records of [from, to)? Quarantine partitions are by
 * arrival, as received_at, so the hour says. */
static int in_range(const struct requeue_opts *o, const struct seg_entry *s)
{
    return !o->range || (part_end(s->part_start, s->grain) > o->from_ns &&
                         s->part_start < o->to_ns);
}

int requeue_run(const struct weir_config *cfg, const struct config_pipeline *p,
                const struct schema *schema, const struct requeue_opts *o,
                struct requeue_counts *c, struct weir_errmsg *e)
{
    struct weir_errmsg local;
    struct rq r;
    struct seg_list l = {0};
    int lock_fd = -1, rc;
    if (!e)
        e = &local;
    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    r.p = p;
    r.o = o;
    r.grain = p->partition == CONFIG_PARTITION_DAY ? PART_DAY : PART_HOUR;
    if ((rc = dirs_of(cfg->data_dir, p->name, r.pipe_dir, r.stage_dir, e)))
        return rc;
    struct stat st;
    if (fsio_stat(cfg->data_dir, &st) != 0 && errno == ENOENT)
        return 0; /* nothing was ever stored: nothing to requeue */
    if ((rc = take_lock(cfg->data_dir, p->name, &lock_fd, e)) != 0)
        return rc;
    if (!o->dry_run && (rc = fsio_mkdir_p(r.stage_dir, 0755)) != 0) {
        errmsg_set(e, rc, "requeue: %s: cannot create: %s", r.stage_dir,
                   strerror(errno));
        goto done;
    }
    if ((rc = recover_locked(r.pipe_dir, r.stage_dir, o->dry_run, c, e)) != 0)
        goto done;

    size_t max_pending = cfg->limits.max_pending ? (size_t)cfg->limits.max_pending
                                                 : WEIR_DEFAULT_MAX_PENDING;
    r.qline_max = max_pending - 1;
    r.line_max = (max_pending > WEIR_DEFAULT_MAX_PENDING
                      ? max_pending
                      : WEIR_DEFAULT_MAX_PENDING) + READ_CHUNK;
    buf_init(&r.rd, r.line_max);
    buf_init(&r.raw, r.line_max);
    buf_init(&r.qline, r.qline_max);
    buf_init(&r.s_peer, r.line_max);
    buf_init(&r.s_path, r.line_max);
    buf_init(&r.s_error, r.line_max);
    json_doc_init(&r.doc, 8);
    r.v = validator_new(schema);
    r.chunk = malloc(READ_CHUNK);
    if (!r.v || !r.chunk) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = lake_load_protobuf(cfg, p, &r.pb, e)) != 0)
        goto done;
    buf_init(&r.pbjson, p->max_record ? p->max_record
                        : cfg->limits.max_record ? cfg->limits.max_record
                                                 : WEIR_DEFAULT_MAX_RECORD);
    r.kafka = p->source.kind == CONFIG_SOURCE_KAFKA;
    /* The lander's bound for a record with its members (land.c). */
    buf_init(&r.splice, r.pbjson.max * 8 + 64 * 1024);
    buf_init(&r.key, r.line_max);
    if (r.pb && !(r.pbd = protobuf_decoder_new(r.pb))) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = seg_list(cfg->data_dir, p->name, "quarantine", &l, e)) != 0)
        goto done;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].active) {
            c->active++;
            continue;
        }
        if (!in_range(o, &l.v[i]))
            continue;
        if ((rc = do_segment(&r, &l.v[i], c, e)) != 0)
            break;
    }
done:
    seg_list_release(&l);
    rq_release(&r);
    if (lock_fd >= 0)
        fsio_close(lock_fd);
    return rc;
}
