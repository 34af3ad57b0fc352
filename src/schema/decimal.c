/*
 * decimal.c - exact comparisons of JSON number literals; see decimal.h.
 */
#include "schema/decimal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXP_SAT (INT64_C(1) << 60)

static int isdig(char c)
{
    return c >= '0' && c <= '9';
}

int decnum_parse(struct decnum *d, const char *p, size_t n)
{
    size_t i = 0;
    memset(d, 0, sizeof *d);
    if (i < n && p[i] == '-') {
        d->neg = 1;
        i++;
    }
    const char *ip = p + i;
    size_t il = 0;
    while (i < n && isdig(p[i])) {
        i++;
        il++;
    }
    const char *dotp = NULL, *fp = p + i;
    size_t fl = 0;
    if (i < n && p[i] == '.') {
        dotp = p + i;
        i++;
        fp = p + i;
        while (i < n && isdig(p[i])) {
            i++;
            fl++;
        }
    }
    if (il == 0 && fl == 0)
        return -1;
    int64_t e10 = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        if (i >= n || !isdig(p[i]))
            return -1;
        while (i < n && isdig(p[i])) {
            if (e10 < EXP_SAT / 10)
                e10 = e10 * 10 + (p[i] - '0');
            else
                e10 = EXP_SAT;
            i++;
        }
        if (eneg)
            e10 = -e10;
    }
    if (i != n)
        return -1;

    /* First and last significant digits. */
    const char *first = NULL, *last = NULL;
    int64_t exp = 0;
    for (size_t k = 0; k < il; k++)
        if (ip[k] != '0') {
            first = ip + k;
            exp = (int64_t)(il - k);
            break;
        }
    if (!first)
        for (size_t k = 0; k < fl; k++)
            if (fp[k] != '0') {
                first = fp + k;
                exp = -(int64_t)k;
                break;
            }
    if (!first) {
        d->neg = 0;
        return 0;
    }
    for (size_t k = fl; k > 0; k--)
        if (fp[k - 1] != '0') {
            last = fp + k - 1;
            break;
        }
    if (!last)
        for (size_t k = il; k > 0; k--)
            if (ip[k - 1] != '0') {
                last = ip + k - 1;
                break;
            }
    d->dig = first;
    d->dot = (dotp && first < dotp && last > dotp) ? dotp : NULL;
    d->ndig = (uint32_t)(last - first + 1 - (d->dot ? 1 : 0));
    exp += e10;
    if (exp > EXP_SAT)
        exp = EXP_SAT;
    if (exp < -EXP_SAT)
        exp = -EXP_SAT;
    d->exp = exp;
    return 0;
}

static int cmp_mag(const struct decnum *a, const struct decnum *b)
{
    if (a->exp != b->exp)
        return a->exp < b->exp ? -1 : 1;
    uint32_t n = a->ndig < b->ndig ? a->ndig : b->ndig;
    for (uint32_t i = 0; i < n; i++) {
        int x = decnum_digit(a, i), y = decnum_digit(b, i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    /* The trailing digits are non-zero, so more digits is larger. */
    if (a->ndig != b->ndig)
        return a->ndig < b->ndig ? -1 : 1;
    return 0;
}

int decnum_cmp(const struct decnum *a, const struct decnum *b)
{
    int sa = a->ndig == 0 ? 0 : (a->neg ? -1 : 1);
    int sb = b->ndig == 0 ? 0 : (b->neg ? -1 : 1);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    int m = cmp_mag(a, b);
    return sa < 0 ? -m : m;
}

int decnum_is_integer(const struct decnum *d)
{
    return d->ndig == 0 || d->exp >= (int64_t)d->ndig;
}

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    return (uint64_t)(((unsigned __int128)a * b) % m);
}

static uint64_t powmod10(int64_t e, uint64_t m)
{
    uint64_t r = 1 % m, base = 10 % m;
    while (e > 0) {
        if (e & 1)
            r = mulmod(r, base, m);
        base = mulmod(base, base, m);
        e >>= 1;
    }
    return r;
}

int decnum_is_multiple(const struct decnum *a, const struct decnum *m)
{
    if (a->ndig == 0)
        return 1;
    if (m->ndig == 0)
        return 0;
    if (m->ndig > 18) {
        double q = decnum_to_double(a) / decnum_to_double(m);
        return isfinite(q) && q == floor(q);
    }
    uint64_t dm = 0;
    for (uint32_t i = 0; i < m->ndig; i++)
        dm = dm * 10 + (uint64_t)decnum_digit(m, i);
    /* a = Da * 10^sa, m = Dm * 10^sm, with Da and Dm not divisible by 10. */
    int64_t sa = a->exp - (int64_t)a->ndig;
    int64_t sm = m->exp - (int64_t)m->ndig;
    if (sa < sm)
        return 0; /* would need 10 | Da */
    uint64_t r = 0;
    for (uint32_t i = 0; i < a->ndig; i++)
        r = (uint64_t)(((unsigned __int128)r * 10 + (uint64_t)decnum_digit(a, i)) % dm);
    r = mulmod(r, powmod10(sa - sm, dm), dm);
    return r == 0;
}

uint64_t decnum_hash(const struct decnum *d)
{
    uint64_t h = 1469598103934665603ull;
    h = (h ^ (uint64_t)d->neg) * 1099511628211ull;
    h = (h ^ (uint64_t)d->exp) * 1099511628211ull;
    for (uint32_t i = 0; i < d->ndig; i++)
        h = (h ^ (uint64_t)decnum_digit(d, i)) * 1099511628211ull;
    return h;
}

size_t decnum_format(const struct decnum *d, char *out, size_t cap)
{
    size_t o = 0;
#define PUT(c)                                                               \
    do {                                                                     \
        if (o + 1 >= cap)                                                    \
            return 0;                                                        \
        out[o++] = (c);                                                      \
    } while (0)
    if (d->ndig == 0) {
        PUT('0');
        out[o] = '\0';
        return o;
    }
    if (d->neg)
        PUT('-');
    int64_t e = d->exp;
    uint32_t n = d->ndig;
    if (e >= (int64_t)n && e <= 40) {
        for (uint32_t i = 0; i < n; i++)
            PUT((char)('0' + decnum_digit(d, i)));
        for (int64_t i = n; i < e; i++)
            PUT('0');
    } else if (e > 0 && e < (int64_t)n) {
        for (uint32_t i = 0; i < n; i++) {
            if ((int64_t)i == e)
                PUT('.');
            PUT((char)('0' + decnum_digit(d, i)));
        }
    } else if (e <= 0 && e > -6) {
        PUT('0');
        PUT('.');
        for (int64_t i = 0; i < -e; i++)
            PUT('0');
        for (uint32_t i = 0; i < n; i++)
            PUT((char)('0' + decnum_digit(d, i)));
    } else {
        PUT((char)('0' + decnum_digit(d, 0)));
        if (n > 1) {
            PUT('.');
            for (uint32_t i = 1; i < n; i++)
                PUT((char)('0' + decnum_digit(d, i)));
        }
        char eb[32];
        int k = snprintf(eb, sizeof eb, "e%lld", (long long)(e - 1));
        for (int i = 0; i < k; i++)
            PUT(eb[i]);
    }
    out[o] = '\0';
    return o;
#undef PUT
}

double decnum_to_double(const struct decnum *d)
{
    if (d->ndig == 0)
        return 0.0;
    /* 40 significant digits decide a double; more cannot change it except
     * in a last-bit tie, which is irrelevant where this is used. */
    char b[80];
    size_t o = 0;
    if (d->neg)
        b[o++] = '-';
    b[o++] = '0';
    b[o++] = '.';
    uint32_t n = d->ndig < 40 ? d->ndig : 40;
    for (uint32_t i = 0; i < n; i++)
        b[o++] = (char)('0' + decnum_digit(d, i));
    int64_t e = d->exp;
    if (e > 100000)
        e = 100000;
    if (e < -100000)
        e = -100000;
    snprintf(b + o, sizeof b - o, "e%lld", (long long)e);
    return strtod(b, NULL);
}

size_t decnum_loose_to_json(const char *p, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
#define PUT(c)                                                               \
    do {                                                                     \
        if (o + 1 >= cap)                                                    \
            return 0;                                                        \
        out[o++] = (c);                                                      \
    } while (0)
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        if (p[i] == '-')
            PUT('-');
        i++;
    }
    /* digitpart: digit (["_"] digit)*, copied without '_'. Returns the
     * number of digits, or -1 on a misplaced '_'. */
#define DIGITPART(keep_zeros, ndig)                                          \
    do {                                                                     \
        ndig = 0;                                                            \
        while (i < n && (isdig(p[i]) || p[i] == '_')) {                      \
            if (p[i] == '_') {                                               \
                if (ndig == 0 || i + 1 >= n || !isdig(p[i + 1]))             \
                    return 0;                                                \
                i++;                                                         \
                continue;                                                    \
            }                                                                \
            if (keep_zeros || p[i] != '0' || lead_done) {                    \
                PUT(p[i]);                                                   \
                lead_done = 1;                                               \
            }                                                                \
            ndig++;                                                          \
            i++;                                                             \
        }                                                                    \
    } while (0)
    int lead_done = 0;
    size_t nint, nfrac = 0;
    size_t int_start = o;
    DIGITPART(0, nint);
    if (o == int_start && nint > 0)
        PUT('0'); /* all zeros */
    if (nint == 0)
        PUT('0'); /* ".5" */
    if (i < n && p[i] == '.') {
        i++;
        size_t dot_at = o;
        PUT('.');
        lead_done = 1;
        DIGITPART(1, nfrac);
        if (nfrac == 0)
            o = dot_at; /* "1." */
    }
    if (nint == 0 && nfrac == 0)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        PUT('e');
        if (i < n && (p[i] == '+' || p[i] == '-'))
            PUT(p[i++]);
        size_t nexp;
        lead_done = 1;
        DIGITPART(1, nexp);
        if (nexp == 0)
            return 0;
    }
    if (i != n)
        return 0;
    out[o] = '\0';
    return o;
#undef DIGITPART
#undef PUT
}
