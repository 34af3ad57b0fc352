/*
 * regex.c - PCRE2 behind the small interface of regex.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "schema/regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ECMA-262 property escapes use the long names and aliases of
 * PropertyValueAliases.txt; PCRE2 10.42 knows the short general category
 * names and the script names. */
static const struct {
    const char *ecma, *pcre;
} gc_names[] = {
    {"Letter", "L"}, {"Cased_Letter", "L&"}, {"LC", "L&"},
    {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"}, {"Mark", "M"}, {"Combining_Mark", "M"},
    {"Nonspacing_Mark", "Mn"}, {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"}, {"Number", "N"}, {"Decimal_Number", "Nd"},
    {"digit", "Nd"}, {"Letter_Number", "Nl"}, {"Other_Number", "No"},
    {"Punctuation", "P"}, {"punct", "P"}, {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"}, {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"},
    {"Symbol", "S"}, {"Math_Symbol", "Sm"}, {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"}, {"Other_Symbol", "So"}, {"Separator", "Z"},
    {"Space_Separator", "Zs"}, {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"}, {"Other", "C"}, {"Control", "Cc"},
    {"cntrl", "Cc"}, {"Format", "Cf"}, {"Surrogate", "Cs"},
    {"Private_Use", "Co"}, {"Unassigned", "Cn"},
};

/* ECMA-262 \s: WhiteSpace and LineTerminator, Unicode-wide. */
#define ECMA_SPACE                                                           \
    " \\t\\n\\x0B\\f\\r\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029"         \
    "\\u202f\\u205f\\u3000\\ufeff"

/* Room translate() needs for a pattern of n bytes. */
static size_t translated_cap(const char *pat, size_t n)
{
    size_t bs = 0;
    for (size_t i = 0; i < n; i++)
        bs += pat[i] == '\\';
    return n + bs * (sizeof ECMA_SPACE + 8) + 8;
}

/* Copy pat into out, rewriting what PCRE2 reads differently from ECMA-262:
 * \p{Long_Name} / \p{gc=X} / \p{sc=X} to PCRE2 spellings, \s and \S to the
 * Unicode whitespace set (PCRE2 without UCP makes them ASCII, and UCP would
 * also widen \d and \w, which ECMA-262 keeps ASCII). Returns the length. */
static size_t translate(const char *pat, size_t n, char *out)
{
    size_t o = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        if (pat[i] != '\\' || i + 1 >= n) {
            if (pat[i] == '[')
                in_class = 1;
            else if (pat[i] == ']')
                in_class = 0;
            out[o++] = pat[i];
            continue;
        }
        char e = pat[i + 1];
        if (e == 's' || (e == 'S' && !in_class)) {
            const char *open = in_class ? "" : (e == 's' ? "[" : "[^");
            const char *close = in_class ? "" : "]";
            size_t k = strlen(open);
            memcpy(out + o, open, k);
            o += k;
            memcpy(out + o, ECMA_SPACE, sizeof ECMA_SPACE - 1);
            o += sizeof ECMA_SPACE - 1;
            k = strlen(close);
            memcpy(out + o, close, k);
            o += k;
            i++;
            continue;
        }
        const char *close = (e == 'p' || e == 'P') && i + 2 < n && pat[i + 2] == '{'
                                ? memchr(pat + i + 3, '}', n - i - 3)
                                : NULL;
        if (!close) {
            out[o++] = pat[i];
            out[o++] = pat[++i];
            continue;
        }
        const char *name = pat + i + 3;
        size_t nl = (size_t)(close - name);
        const char *eq = memchr(name, '=', nl);
        if (eq) {
            /* General_Category=X, gc=X, Script=X, sc=X, scx=X: keep X. */
            nl -= (size_t)(eq + 1 - name);
            name = eq + 1;
        }
        const char *mapped = NULL;
        for (size_t k = 0; k < sizeof gc_names / sizeof gc_names[0]; k++)
            if (strlen(gc_names[k].ecma) == nl && memcmp(gc_names[k].ecma, name, nl) == 0)
                mapped = gc_names[k].pcre;
        out[o++] = '\\';
        out[o++] = e;
        out[o++] = '{';
        if (mapped) {
            memcpy(out + o, mapped, strlen(mapped));
            o += strlen(mapped);
        } else {
            memcpy(out + o, name, nl);
            o += nl;
        }
        out[o++] = '}';
        i = (size_t)(close - pat);
    }
    out[o] = '\0';
    return o;
}

struct regex *regex_compile(const char *pat, size_t n, char *err, size_t errcap)
{
    struct regex *re = calloc(1, sizeof *re);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    char *tr = malloc(translated_cap(pat, n));
    if (!re || !cc || !tr) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    int ecode;
    PCRE2_SIZE eoff;
    size_t tn = translate(pat, n, tr);
    re->code = pcre2_compile((PCRE2_SPTR)tr, tn,
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
    free(tr);
    return re;
fail:
    free(tr);
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
