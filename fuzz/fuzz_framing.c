/*
 * fuzz_framing.c - the NDJSON framer under random input and random read
 * boundaries, checked against a reference splitter.
 *
 * Input layout: byte 0 picks max_record (1..64, or 1 MiB for 0xff, so
 * both the truncating and the plain paths are hot), bytes 1..4 seed the
 * chunk sizes, the rest is the stream. The reference splits the whole
 * stream at once by the rules of net/framing.h; the framer must yield the
 * same records (bytes, flags, line numbers), keep its buffer within
 * max_record + 1, and never read outside what it was fed (ASan: each chunk
 * is its own allocation).
 */
#include "net/framing.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ref {
    size_t off, len;
    unsigned flags;
    uint64_t line;
};

static size_t ref_split(const uint8_t *in, size_t n, size_t max, struct ref *out)
{
    size_t start = 0, k = 0;
    uint64_t line = 1;
    for (size_t i = 0; i <= n; i++) {
        int eof = i == n;
        if (!eof && in[i] != '\n')
            continue;
        size_t len = i - start;
        if (len && in[start + len - 1] == '\r')
            len--;
        if (len > max)
            out[k++] = (struct ref){start, max, FRAME_TRUNCATED, line};
        else if (len)
            out[k++] = (struct ref){start, len, eof ? FRAME_AT_EOF : 0u, line};
        start = i + 1;
        line++;
    }
    return k;
}

static uint32_t rng;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void check(const struct ref *want, size_t nwant, size_t *k, const uint8_t *in,
                  const struct frame *fr)
{
    if (*k >= nwant)
        abort(); /* more records than the reference */
    const struct ref *r = &want[(*k)++];
    if (fr->len != r->len || fr->flags != r->flags || fr->line != r->line ||
        memcmp(fr->data, in + r->off, r->len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    size_t max = data[0] == 0xff ? (1u << 20) : 1 + data[0] % 64;
    rng = ((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 |
           data[4]) | 1u;
    const uint8_t *in = data + 5;
    size_t n = size - 5;

    struct ref *want = malloc((n + 1) * sizeof *want);
    if (!want)
        return 0;
    size_t nwant = ref_split(in, n, max, want), k = 0;

    struct framer f;
    struct frame fr;
    framer_init(&f, max);
    size_t pos = 0;
    while (pos < n) {
        /* Mostly small chunks, sometimes large ones. */
        size_t len = next_rand() % 4 == 0 ? 1 + next_rand() % 4096 : 1 + next_rand() % 16;
        if (len > n - pos)
            len = n - pos;
        uint8_t *chunk = malloc(len);
        if (!chunk)
            abort();
        memcpy(chunk, in + pos, len);
        framer_feed(&f, chunk, len);
        int rc;
        while ((rc = framer_next(&f, &fr)) > 0)
            check(want, nwant, &k, in, &fr);
        if (rc < 0)
            abort();
        if (f.partial.len > max + 1)
            abort();
        free(chunk);
        pos += len;
    }
    if (framer_finish(&f, &fr) > 0)
        check(want, nwant, &k, in, &fr);
    if (k != nwant || framer_finish(&f, &fr) != 0)
        abort();
    framer_release(&f);
    free(want);
    return 0;
}
