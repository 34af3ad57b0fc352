/*
 * decimal.h - exact arithmetic on JSON number literals, without converting
 * them to binary floating point.
 *
 * JSON numbers are decimal text of any length. The validator compares them
 * with schema limits (minimum, maximum, ...), tests multipleOf, and checks
 * equality for enum, const and uniqueItems. Doing that on doubles gets the
 * edge cases wrong (1e400 is infinity, 0.1 * 3 != 0.3, 2^53 + 1 == 2^53), so
 * these functions work on the literal itself: a number is read as
 *
 *     value = (-1)^neg * 0.D1 D2 ... Dn * 10^exp
 *
 * where D1..Dn are the significant digits (no leading or trailing zeros) as
 * they sit in the text, possibly interrupted by the '.'. Nothing is copied
 * and nothing is allocated; parsing is one pass over a handful of bytes.
 * Exponents are saturated at +/-2^60, which only matters for literals such as
 * 1e99999999999999999999 (still ordered correctly against any sane limit).
 */
#ifndef WEIR_SCHEMA_DECIMAL_H
#define WEIR_SCHEMA_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

struct decnum {
    const char *dig;   /* first significant digit, NULL for zero */
    const char *dot;   /* the '.' when it lies inside the digit run, else NULL */
    uint32_t ndig;     /* significant digits, 0 for zero */
    int neg;           /* 1 for negative non-zero values (-0 is zero) */
    int64_t exp;       /* see above */
};

/* Read a JSON number literal p[0..n) (the scanner has checked its grammar).
 * Returns 0, or -1 when p is not a number literal. */
int decnum_parse(struct decnum *d, const char *p, size_t n);

/*
 * Lax input (docs/lax.md): rewrite Python float() syntax - optional '+',
 * leading zeros, a bare leading or trailing '.', single '_' between digits,
 * 'e' or 'E' exponent; no inf/nan, no surrounding space - into a JSON
 * number literal in out. Returns its length, or 0 when p is not such a
 * number or cap is too small (cap >= n + 2 always suffices).
 */
size_t decnum_loose_to_json(const char *p, size_t n, char *out, size_t cap);

/* -1, 0, 1 as a <, =, > b (mathematically: 1.0 == 1 == 10e-1). */
int decnum_cmp(const struct decnum *a, const struct decnum *b);

/* 1 if d is a mathematical integer. */
int decnum_is_integer(const struct decnum *d);

/* 1 if a is an integer multiple of m (m > 0). Exact when m has at most 18
 * significant digits, otherwise decided in double precision. */
int decnum_is_multiple(const struct decnum *a, const struct decnum *m);

/* Digit i (0-based) of the significant digits, as 0..9. */
static inline int decnum_digit(const struct decnum *d, uint32_t i)
{
    const char *q = d->dig + i;
    if (d->dot && q >= d->dot)
        q++;
    return *q - '0';
}

/* A hash that is equal for equal values (1, 1.0, 10e-1). */
uint64_t decnum_hash(const struct decnum *d);

/*
 * Write d as a canonical JSON number: integers as plain digits when they
 * have at most 40 of them ("100", "-3"), others as digits with a '.' or
 * an exponent ("5.3", "1.5e-7", "1e400"). Returns the length, or 0 when
 * cap (at least 64 is plenty for integers, ndig + 32 in general) is too
 * small.
 */
size_t decnum_format(const struct decnum *d, char *out, size_t cap);

/* Nearest double (strtod semantics, +/-HUGE_VAL on overflow). */
double decnum_to_double(const struct decnum *d);

#endif
