/*
 * regex.c - PCRE2 behind the small interface of regex.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "schema/regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

/* Backtracking steps before a match gives up: generous for real patterns
 * (a million steps is a millisecond or so), fatal to catastrophic ones. */
#define REGEX_MATCH_LIMIT 1000000u
#define REGEX_DEPTH_LIMIT 10000u

struct regex {
    pcre2_code *code;
    int jit;
};

struct regex_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mc;
};

struct regex *regex_compile(const char *pat, size_t n, char *err, size_t errcap)
{
    struct regex *re = calloc(1, sizeof *re);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!re || !cc) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    int ecode;
    PCRE2_SIZE eoff;
    re->code = pcre2_compile((PCRE2_SPTR)pat, n,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX,
                             &ecode, &eoff, cc);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        snprintf(err, errcap, "%s at offset %zu", (const char *)msg, (size_t)eoff);
        goto fail;
    }
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    pcre2_compile_context_free(cc);
    return re;
fail:
    pcre2_compile_context_free(cc);
    regex_free(re);
    return NULL;
}

void regex_free(struct regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re);
}

struct regex_scratch *regex_scratch_new(void)
{
    struct regex_scratch *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->md = pcre2_match_data_create(1, NULL);
    m->mc = pcre2_match_context_create(NULL);
    if (!m->md || !m->mc) {
        regex_scratch_free(m);
        return NULL;
    }
    pcre2_set_match_limit(m->mc, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(m->mc, REGEX_DEPTH_LIMIT);
    return m;
}

void regex_scratch_free(struct regex_scratch *m)
{
    if (!m)
        return;
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mc);
    free(m);
}

int regex_search(const struct regex *re, struct regex_scratch *m,
                 const char *s, size_t n)
{
    int rc;
    /* The subject comes from the JSON scanner, which checked its UTF-8. */
    if (re->jit)
        rc = pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, 0,
                             PCRE2_NO_UTF_CHECK, m->md, m->mc);
    else
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK,
                         m->md, m->mc);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT)
        return WEIR_ELIMIT;
    return WEIR_EINVAL;
}
