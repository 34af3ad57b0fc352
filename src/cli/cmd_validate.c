/*
 * cmd_validate.c - `weir validate`: NDJSON files against a JSON Schema.
 *
 * The same framer (net/framing.h) and validator (schema/validate.h) as the
 * server, so a file that validates here lands the same way there. Input is
 * read in large chunks and framed without copying; only records that span
 * two chunks are copied, and none is ever held past max_record bytes, so a
 * 100 MB line costs max_record of memory and gets a verdict.
 */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/limits.h"
#include "net/framing.h"
#include "schema/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (4u << 20)

struct vstate {
    struct validator *v;
    FILE *errors;        /* --errors: JSON lines here, or NULL */
    FILE *valid_out;     /* --valid-out: stored form of valid records */
    const char *fname;   /* shown in error lines when several files */
    size_t max_record;
    uint64_t valid, invalid;
    struct buf line;     /* one error line being built */
};

static int parse_count(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static void report(struct vstate *st, uint64_t line, const char *path,
                   const char *msg)
{
    st->invalid++;
    if (!st->errors)
        return;
    struct buf *b = &st->line;
    buf_reset(b);
    int rc = buf_appendf(b, "{\"line\":%llu,", (unsigned long long)line);
    if (rc == 0 && st->fname) {
        rc = buf_puts(b, "\"file\":");
        if (rc == 0)
            rc = buf_put_json_string(b, st->fname, strlen(st->fname));
        if (rc == 0)
            rc = buf_putc(b, ',');
    }
    if (rc == 0)
        rc = buf_puts(b, "\"path\":");
    if (rc == 0)
        rc = buf_put_json_string(b, path, strlen(path));
    if (rc == 0)
        rc = buf_puts(b, ",\"error\":");
    if (rc == 0)
        rc = buf_put_json_string(b, msg, strlen(msg));
    if (rc == 0)
        rc = buf_puts(b, "}\n");
    if (rc == 0)
        fwrite(b->data, 1, b->len, st->errors);
}

static int check_one(struct vstate *st, const struct frame *fr)
{
    if (fr->flags & FRAME_TRUNCATED) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "record is longer than the maximum of %zu bytes (--max-record)",
                 st->max_record);
        report(st, fr->line, "", msg);
        return 0;
    }
    struct verdict vd;
    int rc = validator_check(st->v, fr->data, fr->len, &vd);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        report(st, fr->line, vd.path, vd.message);
        return 0;
    }
    st->valid++;
    if (st->valid_out) {
        size_t n;
        const char *out = validator_output(st->v, &n);
        fwrite(out, 1, n, st->valid_out);
        fputc('\n', st->valid_out);
    }
    return 0;
}

/* Validate one input; returns 0, or EXIT_USAGE / EXIT_RUNTIME. */
static int validate_fd(struct vstate *st, int fd, const char *name, char *chunk)
{
    struct framer fr;
    struct frame rec;
    int rc = 0, exit_code = 0;
    framer_init(&fr, st->max_record);
    for (;;) {
        ssize_t n = read(fd, chunk, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "weir validate: %s: %s\n", name, strerror(errno));
            exit_code = EXIT_RUNTIME;
            break;
        }
        if (n == 0) {
            if (framer_finish(&fr, &rec) > 0)
                rc = check_one(st, &rec);
            break;
        }
        framer_feed(&fr, chunk, (size_t)n);
        while (rc == 0 && (rc = framer_next(&fr, &rec)) > 0)
            rc = check_one(st, &rec);
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        fprintf(stderr, "weir validate: %s: %s\n", name, weir_strerror(rc));
        exit_code = EXIT_RUNTIME;
    }
    framer_release(&fr);
    return exit_code;
}

int cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"schema", required_argument, NULL, 's'},
        {"lax", no_argument, NULL, 'l'},
        {"errors", no_argument, NULL, 'e'},
        {"format-assert", no_argument, NULL, 'f'},
        {"int64", no_argument, NULL, 'i'},
        {"max-record", required_argument, NULL, 'm'},
        {"max-depth", required_argument, NULL, 'd'},
        {"valid-out", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *schema_path = NULL, *valid_path = NULL;
    struct schema_opts so = {0};
    int want_errors = 0, quiet = 0, c;
    uint64_t max_record = WEIR_DEFAULT_MAX_RECORD, max_depth = WEIR_DEFAULT_MAX_DEPTH;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:q", opts, NULL)) != -1) {
        switch (c) {
        case 's': schema_path = optarg; break;
        case 'l': so.lax = 1; break;
        case 'e': want_errors = 1; break;
        case 'f': so.format_assert = 1; break;
        case 'i': so.int64_integers = 1; break;
        case 'q': quiet = 1; break;
        case 'o': valid_path = optarg; break;
        case 'm':
            if (parse_count(optarg, UINT32_MAX, &max_record))
                return cli_usage_error("validate", "--max-record: '%s' is not a size in bytes", optarg);
            break;
        case 'd':
            if (parse_count(optarg, 1u << 24, &max_depth))
                return cli_usage_error("validate", "--max-depth: '%s' is not a depth", optarg);
            break;
        default:
            return cli_usage_error("validate", "unknown option");
        }
    }
    if (!schema_path)
        return cli_usage_error("validate", "a schema is required (-s SCHEMA)");
    so.max_depth = (uint32_t)max_depth;

    struct weir_errmsg err = {0};
    struct schema *schema = schema_load_file(schema_path, &so, &err);
    if (!schema) {
        fprintf(stderr, "weir validate: %s\n", err.text);
        return EXIT_USAGE;
    }
    int exit_code = EXIT_OK;
    char *chunk = malloc(CHUNK);
    struct vstate st = {0};
    st.v = validator_new(schema);
    st.max_record = (size_t)max_record;
    buf_init(&st.line, 64u << 10);
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    if (want_errors)
        st.errors = stdout;
    if (!chunk || !st.v) {
        fprintf(stderr, "weir validate: out of memory\n");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    if (valid_path && !(st.valid_out = fopen(valid_path, "w"))) {
        fprintf(stderr, "weir validate: %s: %s\n", valid_path, strerror(errno));
        exit_code = EXIT_USAGE;
        goto done;
    }
    int nfiles = argc - optind;
    if (nfiles == 0) {
        exit_code = validate_fd(&st, STDIN_FILENO, "stdin", chunk);
    }
    for (int i = optind; i < argc && exit_code == 0; i++) {
        const char *name = argv[i];
        int stdin_ = strcmp(name, "-") == 0;
        int fd = stdin_ ? STDIN_FILENO : open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "weir validate: %s: %s\n", name, strerror(errno));
            exit_code = EXIT_USAGE;
            break;
        }
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        st.fname = nfiles > 1 ? name : NULL;
        exit_code = validate_fd(&st, fd, stdin_ ? "stdin" : name, chunk);
        if (!stdin_)
            close(fd);
    }
done:
    fflush(stdout);
    if (st.valid_out && fclose(st.valid_out) != 0 && exit_code == 0) {
        fprintf(stderr, "weir validate: %s: %s\n", valid_path, strerror(errno));
        exit_code = EXIT_RUNTIME;
    }
    if (!quiet)
        fprintf(stderr, "%llu valid, %llu invalid\n",
                (unsigned long long)st.valid, (unsigned long long)st.invalid);
    if (exit_code == EXIT_OK && st.invalid)
        exit_code = EXIT_PROBLEMS;
    validator_free(st.v);
    schema_free(schema);
    buf_release(&st.line);
    free(chunk);
    return exit_code;
}
