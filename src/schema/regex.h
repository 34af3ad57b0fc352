/*
 * regex.h - the schema's `pattern` and `patternProperties` regular
 * expressions, on PCRE2 (the only file that includes pcre2.h is regex.c).
 *
 * JSON Schema says patterns are ECMA-262 regular expressions. PCRE2 is
 * close; regex.c sets the options that make it closer: UTF mode, '$' only
 * at the very end (no match before a final newline), \uHHHH and \u{H...}
 * escapes, \d and \w ASCII-only as in JavaScript without the u flag.
 * Differences that remain are listed in docs/schema.md.
 *
 * A compiled struct regex is immutable and may be shared by threads; each
 * thread matches with its own struct regex_scratch (PCRE2 match data),
 * created once, so matching allocates nothing. Patterns are JIT-compiled
 * when the platform supports it. A match that backtracks past a fixed work
 * limit fails with WEIR_ELIMIT rather than running for minutes.
 */
#ifndef WEIR_SCHEMA_REGEX_H
#define WEIR_SCHEMA_REGEX_H

#include <stddef.h>

struct regex;
struct regex_scratch;

/* Compile pat[0..n) (UTF-8). On failure returns NULL and writes PCRE2's
 * reason and offset into err (NUL-terminated). */
struct regex *regex_compile(const char *pat, size_t n, char *err, size_t errcap);
void regex_free(struct regex *re);

struct regex_scratch *regex_scratch_new(void);
void regex_scratch_free(struct regex_scratch *m);

/* Search s[0..n) (valid UTF-8) for the pattern anywhere (JSON Schema
 * patterns are not anchored). 1 found, 0 not found, WEIR_ELIMIT when the
 * backtracking limit hit, WEIR_EINVAL on other PCRE2 failures. */
int regex_search(const struct regex *re, struct regex_scratch *m,
                 const char *s, size_t n);

#endif
