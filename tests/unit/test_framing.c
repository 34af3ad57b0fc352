/*
 * test_framing.c - the NDJSON framer against a reference splitter, at every
 * split position and under random chunkings, plus the rules one by one.
 *
 * The reference (ref_split) states the rules of framing.h in the most
 * direct way, on the whole input at once; the framer must yield exactly the
 * same records however the input is cut into feeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/framing.h"

#define MAXREC 64

struct rec {
    char *data;
    size_t len;
    unsigned flags;
    uint64_t line;
};

struct recs {
    struct rec v[4096];
    size_t n;
};

static void recs_add(struct recs *r, const char *p, size_t n, unsigned flags,
                     uint64_t line)
{
    assert_true(r->n < 4096);
    struct rec *x = &r->v[r->n++];
    x->data = malloc(n ? n : 1);
    assert_non_null(x->data);
    memcpy(x->data, p, n);
    x->len = n;
    x->flags = flags;
    x->line = line;
}

static void recs_clear(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].data);
    r->n = 0;
}

static void ref_split(const char *in, size_t n, size_t max, struct recs *out)
{
    size_t start = 0;
    uint64_t line = 1;
    for (size_t i = 0; i <= n; i++) {
        int eof = (i == n);
        if (!eof && in[i] != '\n')
            continue;
        size_t len = i - start;
        if (len && in[start + len - 1] == '\r')
            len--;
        if (len > max)
            recs_add(out, in + start, max, FRAME_TRUNCATED, line);
        else if (len)
            recs_add(out, in + start, len, eof ? FRAME_AT_EOF : 0, line);
        start = i + 1;
        line++;
    }
}

/* Run the framer over in, cut at the given chunk ends (ascending, last = n). */
static void run_framer(const char *in, size_t n, size_t max, const size_t *cuts,
                       size_t ncuts, struct recs *out)
{
    struct framer f;
    struct frame fr;
    framer_init(&f, max);
    size_t pos = 0;
    for (size_t c = 0; c < ncuts; c++) {
        /* Each chunk in its own allocation so ASan sees any overread. */
        size_t len = cuts[c] - pos;
        char *chunk = malloc(len ? len : 1);
        assert_non_null(chunk);
        memcpy(chunk, in + pos, len);
        framer_feed(&f, chunk, len);
        int rc;
        while ((rc = framer_next(&f, &fr)) > 0)
            recs_add(out, fr.data, fr.len, fr.flags, fr.line);
        assert_int_equal(rc, 0);
        free(chunk);
        pos = cuts[c];
    }
    if (framer_finish(&f, &fr) > 0)
        recs_add(out, fr.data, fr.len, fr.flags, fr.line);
    assert_int_equal(framer_finish(&f, &fr), 0);
    assert_true(f.partial.cap <= max + 2);
    framer_release(&f);
}

static void assert_same(const struct recs *a, const struct recs *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->v[i].len, b->v[i].len);
        assert_memory_equal(a->v[i].data, b->v[i].data, a->v[i].len);
        assert_int_equal(a->v[i].flags, b->v[i].flags);
        assert_int_equal(a->v[i].line, b->v[i].line);
    }
}

static struct recs want, got;

static void check_cuts(const char *in, size_t n, size_t max, const size_t *cuts,
                       size_t ncuts)
{
    recs_clear(&want);
    recs_clear(&got);
    ref_split(in, n, max, &want);
    run_framer(in, n, max, cuts, ncuts, &got);
    assert_same(&want, &got);
}

static const char sample[] =
    "{\"a\":1}\n"
    "\r\n"
    "\n"
    "{\"b\":\"x\\n\"}\r\n"
    "0123456789abcdef0123456789\n" /* over-long at max 16 */
    "\x00nul\x00inside\n"
    "0123456789abcdef\r\n"         /* exactly max with CRLF */
    "0123456789abcdef\rX\n"        /* max + CR + more: over-long */
    "\r\r\n"
    "{\"last\":true}";             /* no newline at EOF */

static void test_every_split(void **state)
{
    size_t n = sizeof sample - 1;
    for (size_t max = 1; max <= 20; max++) {
        size_t one[1] = {n};
        check_cuts(sample, n, max, one, 1);
        for (size_t i = 0; i <= n; i++) {
            size_t cuts[2] = {i, n};
            check_cuts(sample, n, max, cuts, 2);
        }
    }
    /* Every pair of cut positions at the interesting limit. */
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {
            size_t cuts[3] = {i, j, n};
            check_cuts(sample, n, 16, cuts, 3);
        }
    /* Byte by byte. */
    size_t *cuts = malloc(n * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    check_cuts(sample, n, 16, cuts, n);
    free(cuts);
}

static void test_random_chunkings(void **state)
{
    static const char alphabet[] = "ab{}\r\n\n\0x";
    char in[600];
    size_t cuts[600];
    srand(12345);
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)rand() % sizeof in;
        for (size_t i = 0; i < n; i++)
            in[i] = alphabet[rand() % (int)(sizeof alphabet - 1)];
        if (round % 3 == 0) /* long runs without newlines */
            for (size_t i = 0; i < n; i++)
                if (in[i] == '\n' && rand() % 8)
                    in[i] = 'z';
        size_t max = 1 + (size_t)rand() % 40, ncuts = 0, pos = 0;
        while (pos < n) {
            pos += 1 + (size_t)rand() % (1 + (size_t)rand() % 50);
            if (pos > n)
                pos = n;
            cuts[ncuts++] = pos;
        }
        if (ncuts == 0)
            cuts[ncuts++] = 0;
        check_cuts(in, n, max, cuts, ncuts);
    }
}

static int next_rec(struct framer *f, struct frame *fr)
{
    int rc = framer_next(f, fr);
    assert_true(rc >= 0);
    return rc;
}

static void test_rules(void **state)
{
    struct framer f;
    struct frame fr;
    framer_init(&f, 8);

    /* Zero copy for a record inside one feed. */
    static const char a[] = "\r\n\nabc\r\nde";
    framer_feed(&f, a, sizeof a - 1);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_ptr_equal(fr.data, a + 3);
    assert_int_equal(fr.len, 3);
    assert_int_equal(fr.line, 3);
    assert_int_equal(fr.flags, 0);
    assert_int_equal(next_rec(&f, &fr), 0);
    assert_int_equal(framer_pending(&f), 2);

    /* Spanning: copied, CR stripped, line number kept. */
    framer_feed(&f, "f\r", 2);
    assert_int_equal(next_rec(&f, &fr), 0);
    framer_feed(&f, "\n", 1);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(fr.len, 3);
    assert_memory_equal(fr.data, "def", 3);
    assert_int_equal(fr.line, 4);

    /* Over-long: yielded once, before its newline, then skipped. */
    framer_feed(&f, "0123456", 7);
    assert_int_equal(next_rec(&f, &fr), 0);
    framer_feed(&f, "789ab", 5);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(fr.flags, FRAME_TRUNCATED);
    assert_int_equal(fr.len, 8);
    assert_memory_equal(fr.data, "01234567", 8);
    assert_int_equal(fr.line, 5);
    for (int i = 0; i < 1000; i++) { /* a sender that never sends '\n' */
        framer_feed(&f, "zzzzzzzzzzzzzzzz", 16);
        assert_int_equal(next_rec(&f, &fr), 0);
    }
    assert_int_equal(framer_pending(&f), 0);
    framer_feed(&f, "zz\nok\n", 6);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(fr.len, 2);
    assert_int_equal(fr.line, 6);
    assert_int_equal(next_rec(&f, &fr), 0);
    assert_int_equal(f.records, 4);
    assert_int_equal(f.truncated, 1);

    /* Exactly max, then a CR held back until the next byte decides. */
    framer_feed(&f, "12345678\r", 9);
    assert_int_equal(next_rec(&f, &fr), 0);
    framer_feed(&f, "\n", 1);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(fr.flags, 0);
    assert_int_equal(fr.len, 8);

    /* NUL bytes pass through; EOF without newline. */
    framer_feed(&f, "x\0y\n{\"z\"", 8);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(fr.len, 3);
    assert_memory_equal(fr.data, "x\0y", 3);
    assert_int_equal(next_rec(&f, &fr), 0);
    assert_int_equal(framer_finish(&f, &fr), 1);
    assert_int_equal(fr.flags, FRAME_AT_EOF);
    assert_int_equal(fr.len, 4);
    assert_memory_equal(fr.data, "{\"z\"", 4);
    assert_int_equal(fr.line, 9);
    assert_int_equal(framer_finish(&f, &fr), 0);
    framer_release(&f);
    framer_release(&f);

    /* EOF: a lone CR, or inside the skipped tail, yields nothing. */
    framer_init(&f, 4);
    framer_feed(&f, "a\n\r", 3);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(next_rec(&f, &fr), 0);
    assert_int_equal(framer_finish(&f, &fr), 0);
    framer_release(&f);
    framer_init(&f, 4);
    framer_feed(&f, "abcdefg", 7);
    assert_int_equal(next_rec(&f, &fr), 1);
    assert_int_equal(fr.flags, FRAME_TRUNCATED);
    assert_int_equal(framer_finish(&f, &fr), 0);
    framer_release(&f);
}

static void test_memory_bound(void **state)
{
    /* 4 MiB without a newline through a 1 KiB limit, in odd pieces. */
    struct framer f;
    struct frame fr;
    framer_init(&f, 1024);
    static char junk[3001];
    memset(junk, 'j', sizeof junk);
    size_t yielded = 0;
    for (int i = 0; i < 1400; i++) {
        framer_feed(&f, junk, (size_t)(1 + i % 3000));
        while (next_rec(&f, &fr) > 0)
            yielded++;
        assert_true(f.partial.cap <= 1026);
    }
    assert_int_equal(yielded, 1);
    framer_release(&f);
}

static int teardown(void **state)
{
    recs_clear(&want);
    recs_clear(&got);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test_teardown(test_every_split, teardown),
        cmocka_unit_test_teardown(test_random_chunkings, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
