/*
 * linesum.c - count the lines of files and sum their FNV-1a hashes, as the
 * manifest does (telemetry.h), so a peer's hourly output can be checked
 * against it without a Python loop over every byte.
 *
 *   linesum [FILE...]        (no FILE, or "-": standard input)
 *
 * Prints one line per file: "LINES BYTES CHECKSUM PATH", where CHECKSUM is
 * the sum mod 2^64 of tel_hash64 over each line without its newline (16 hex
 * digits, as in the manifest) and BYTES counts every byte, newlines
 * included. A last line without a newline counts as a line (and shows in
 * BYTES one short of LINES newlines). Exit 0, or 1 when a file could not be
 * read (its line says "error").
 */
#include "telemetry.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

struct sum {
    uint64_t lines, bytes, checksum;
};

static int sum_fd(int fd, struct sum *s)
{
    static char buf[1 << 20];
    uint64_t h = TEL_HASH64_INIT;
    int partial = 0; /* bytes of an unfinished line are in h */

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        const char *b = buf, *end, *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        end = buf + n;
        s->bytes += (uint64_t)n;
        while (b < end && (nl = memchr(b, '\n', (size_t)(end - b)))) {
            h = tel_hash64_update(h, b, (size_t)(nl - b));
            s->checksum += h;
            s->lines++;
            h = TEL_HASH64_INIT;
            partial = 0;
            b = nl + 1;
        }
        if (b < end) {
            h = tel_hash64_update(h, b, (size_t)(end - b));
            partial = 1;
        }
    }
    if (partial) {
        s->checksum += h;
        s->lines++;
    }
    return 0;
}

static int sum_one(const char *path)
{
    struct sum s = {0};
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? -1 : sum_fd(fd, &s);

    if (fd > 0)
        close(fd);
    if (rc) {
        printf("error %s %s\n", strerror(errno), path);
        return 1;
    }
    printf("%llu %llu %016llx %s\n", (unsigned long long)s.lines,
           (unsigned long long)s.bytes, (unsigned long long)s.checksum, path);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 0;

    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        puts("usage: linesum [FILE...]   prints LINES BYTES CHECKSUM PATH per file");
        return 0;
    }
    if (argc < 2)
        return sum_one("-");
    for (int i = 1; i < argc; i++)
        rc |= sum_one(argv[i]);
    return rc;
}
