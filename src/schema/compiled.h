/*
 * compiled.h - the compiled form of a schema, shared by the compiler
 * (schema.c) and the validator (validate.c). Not a public interface: other
 * modules use schema.h and validate.h.
 *
 * A schema document becomes a graph of struct snode, one per schema object
 * (boolean schemas are two shared nodes). Each node keeps only what the
 * validator needs, already converted: type sets as bit masks, property names
 * as raw bytes with their lengths (most record keys have no escapes, so a
 * key is found with a length check and a memcmp), `required` as a bit per
 * property, numbers as struct decnum (exact), strings of enum/const decoded,
 * regular expressions compiled. $ref and $dynamicRef are resolved to node
 * pointers at load time (cycles are fine: nodes are created before their
 * children are compiled).
 *
 * The `kw` field says which groups of keywords a node has, so the
 * validator's walk is a few flag tests for the common case and never looks
 * at keywords that cannot apply to the instance's type.
 *
 * All nodes and their arrays live in the schema's arena and are freed
 * together by schema_free(). The schema documents (text and token tape)
 * stay alive too: enum/const values that are arrays or objects are compared
 * against their tokens, and messages quote schema text.
 */
#ifndef WEIR_SCHEMA_COMPILED_H
#define WEIR_SCHEMA_COMPILED_H

#include <stddef.h>
#include <stdint.h>

#include "schema/decimal.h"
#include "schema/json.h"
#include "schema/regex.h"
#include "schema/schema.h"

/* Instance type bits. T_NUM implies T_INT (the compiler sets both), so
 * "number" intersected with "integer" is "integer". T_I64 is not a type:
 * with schema_opts.int64_integers the compiler adds it to every node that
 * allows integers but not numbers, and the type check then also wants the
 * integer to fit in int64 (the lake stores integers as BIGINT); a flag
 * bit in the mask keeps that check inside type_ok, on the leaf fast path,
 * instead of adding implicit minimum/maximum keywords (a call per value). */
enum {
    T_NULL = 1 << 0,
    T_BOOL = 1 << 1,
    T_INT = 1 << 2,
    T_NUM = 1 << 3,
    T_STR = 1 << 4,
    T_ARR = 1 << 5,
    T_OBJ = 1 << 6,
    T_ALL = 0x7f,
    T_I64 = 1 << 7,
};

/* Keyword groups present on a node (snode.kw). */
enum {
    K_FALSE = 1u << 0,     /* the false schema */
    K_TYPE = 1u << 1,
    K_ENUM = 1u << 2,
    K_CONST = 1u << 3,
    K_OBJ = 1u << 4,       /* any object keyword */
    K_ARR = 1u << 5,       /* any array keyword */
    K_STR = 1u << 6,       /* minLength, maxLength, pattern, asserted format */
    K_NUM = 1u << 7,       /* minimum ... multipleOf */
    K_REF = 1u << 8,
    K_DYNREF = 1u << 9,
    K_ALLOF = 1u << 10,
    K_ANYOF = 1u << 11,
    K_ONEOF = 1u << 12,
    K_NOT = 1u << 13,
    K_IF = 1u << 14,
    K_UNEVAL = 1u << 15,   /* unevaluatedProperties or unevaluatedItems */
    K_INPLACE = K_REF | K_DYNREF | K_ALLOF | K_ANYOF | K_ONEOF | K_NOT | K_IF,
};

/* Object keyword presence (snode.okw). */
enum {
    O_PROPS = 1u << 0,
    O_PATS = 1u << 1,
    O_ADDL = 1u << 2,
    O_PROPNAMES = 1u << 3,
    O_REQUIRED = 1u << 4,
    O_MINPROPS = 1u << 5,
    O_MAXPROPS = 1u << 6,
    O_DEPREQ = 1u << 7,
    O_DEPSCH = 1u << 8,
    O_UNEVAL = 1u << 9,
};

/* Array keyword presence (snode.akw). */
enum {
    A_PREFIX = 1u << 0,
    A_ITEMS = 1u << 1,
    A_CONTAINS = 1u << 2,
    A_MINITEMS = 1u << 3,
    A_MAXITEMS = 1u << 4,
    A_UNIQUE = 1u << 5,
    A_UNEVAL = 1u << 6,
};

/* String and number keyword presence (snode.skw, snode.nkw). */
enum {
    S_MINLEN = 1u << 0,
    S_MAXLEN = 1u << 1,
    S_PATTERN = 1u << 2,
    S_FORMAT = 1u << 3,
    N_MIN = 1u << 0,
    N_MAX = 1u << 1,
    N_XMIN = 1u << 2,
    N_XMAX = 1u << 3,
    N_MULT = 1u << 4,
};

struct snode;

/* A name from the schema (property, required, dependentRequired), decoded. */
struct sname {
    const char *s;
    uint32_t len;
};

/* One entry of `properties` (node may be NULL: a name that is only
 * required). req_bit is 1 << k for the k-th required name, or 0. */
struct sprop {
    const char *key;
    uint32_t len;
    uint64_t req_bit;
    struct snode *node;
};

struct spattern {
    struct regex *re;
    const char *src; /* decoded pattern text, for messages */
    uint32_t len;
    struct snode *node;
};

/* A value of enum or const. Strings are kept decoded; other values are
 * compared against their tokens in the schema document. */
struct sconst {
    uint8_t type;                /* enum json_type */
    const char *str;             /* decoded string */
    uint32_t len;
    struct decnum num;           /* for numbers */
    const struct json_doc *doc;  /* for arrays and objects */
    uint32_t tok;
};

struct sdepreq {
    struct sname key;
    struct sname *names;
    uint32_t n;
};

struct sdepsch {
    struct sname key;
    struct snode *node;
};

/* A numeric limit: exact value and its text as the schema wrote it. */
struct slimit {
    struct decnum d;
    const char *text;
    uint32_t len;
};

/* A $dynamicAnchor of a schema resource. */
struct sdynanchor {
    const char *name;
    uint32_t len;
    struct snode *node;
};

/* A schema resource (the root of a document or a subschema with $id): the
 * unit of the dynamic scope of $dynamicRef. */
struct sresource {
    const char *uri;
    struct sdynanchor *anchors;
    uint32_t nanchors, capanchors;
};

struct snode {
    uint32_t kw;                  /* K_* */
    uint16_t okw, akw;            /* O_*, A_* */
    uint8_t skw, nkw;             /* S_*, N_* */
    uint8_t types;                /* T_* when K_TYPE */
    uint8_t format;               /* enum schema_format (S_FORMAT) */
    uint32_t res;                 /* index of its resource in schema.res */

    /* object */
    struct sprop *props;
    uint32_t nprops;
    uint32_t ptab_mask;           /* hash table over props when > 8 */
    uint32_t *ptab;               /* slot -> prop index + 1, 0 empty */
    uint64_t req_mask;            /* all req_bits of props */
    struct sname *req_extra;      /* required names past the 64th */
    uint32_t nreq_extra;
    uint32_t npats;
    struct spattern *pats;
    struct snode *addl, *propnames, *uneval_p;
    struct sdepreq *depreq;
    uint32_t ndepreq, ndepsch;
    struct sdepsch *depsch;
    uint64_t minprops, maxprops;

    /* array */
    struct snode **prefix;
    uint32_t nprefix;
    struct snode *items, *contains, *uneval_i;
    uint64_t minitems, maxitems, mincontains, maxcontains;
    int has_maxcontains;

    /* string */
    uint64_t minlen, maxlen;
    struct regex *pattern;
    const char *pattern_src;
    uint32_t pattern_len;

    /* number */
    struct slimit min, max, xmin, xmax, mult;

    /* any */
    struct sconst *enumv;
    uint32_t nenum;
    int enum_all_str;             /* every enum value is a string */
    const char *enum_text;        /* compact JSON of the enum, for messages */
    struct sconst constv;
    const char *const_text;
    struct snode **allof, **anyof, **oneof;
    uint32_t nallof, nanyof, noneof;
    struct snode *not_, *if_, *then_, *else_;
    struct snode *ref;
    struct snode *dynref;         /* static target of $dynamicRef */
    const char *dyn_name;         /* anchor name when the ref is dynamic */
    uint32_t dyn_len;

    /* housekeeping for the compiler */
    struct snode *next_all;       /* list of every node */
};

struct sdoc;

struct schema {
    struct snode *root;
    struct snode true_node, false_node;
    struct schema_opts opts;
    struct sdoc *docs;            /* loaded documents (kept for enum values) */
    struct sresource *res;
    uint32_t nres, capres;
    int has_dynref;               /* some node has a dynamic $dynamicRef */
    int has_uneval;
    uint32_t max_eval_depth;
    struct arena *arena;
    struct snode *all;            /* every compiled node */
};

/* The hash of property names in snode.ptab (FNV-1a). */
static inline uint32_t schema_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Compact text of token t of d (whitespace outside strings removed), at
 * most cap - 1 bytes, "..." appended when cut. Returns out. */
char *schema_compact_text(const struct json_doc *d, uint32_t t, char *out,
                          size_t cap);

/* The RFC 6901 pointer of token t in d ("" for the root), written into
 * out (cut at cap - 1). For a key token, the pointer of its member. */
char *schema_pointer_of(const struct json_doc *d, uint32_t t, char *out,
                        size_t cap);

/* Append one pointer segment ("/" + escaped name) to out[*len..cap). */
void schema_pointer_append(char *out, size_t cap, size_t *len, const char *s,
                           size_t n);

#endif
