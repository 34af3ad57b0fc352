/*
 * schema.h - load and compile a JSON Schema (draft 2020-12).
 *
 * A schema file is read once, checked, and compiled into a compact form
 * that validators (validate.h) walk for every record. The struct schema is
 * immutable after loading, so one schema can serve any number of threads,
 * each with its own struct validator.
 *
 * What is supported (every keyword of draft 2020-12), what is refused, and
 * how unknown keywords are treated: docs/schema.md. In short:
 *
 *   - a keyword weir knows but does not implement (the 2019-09
 *     $recursiveRef/$recursiveAnchor, draft-07 `dependencies`,
 *     `additionalItems`, array-form `items`) makes loading fail with
 *     "unsupported keyword: X (...)": a schema is never half applied;
 *   - so do a $schema other than the 2020-12 dialect and a $vocabulary
 *     naming anything but the standard 2020-12 vocabularies;
 *   - duplicate keys in a schema document are an error;
 *   - an unknown keyword (a vendor extension, a typo) is ignored, as the
 *     specification says, and listed once in a log_warn() line;
 *   - `format` is an annotation unless opts.format_assert is set; then an
 *     unknown format name is refused ("unsupported format: X").
 *
 * $ref and $dynamicRef are resolved at load time: inside the document
 * (JSON pointers, $anchor, $dynamicAnchor, embedded $id resources), and to
 * other files. A reference to another document is resolved against the
 * current base URI ($id, else the file's own file:// URI), then looked up:
 *   1. in documents already loaded (by URI or $id);
 *   2. through opts.resolve, when set (the hook maps a URI to a local path);
 *   3. file:// URIs: that file (so "unit.json" next to the schema works);
 *   4. when the root schema has an $id such as https://example.com/s/t.json,
 *      URIs under https://example.com/s/ map to the schema file's directory.
 * Nothing is ever fetched over the network.
 */
#ifndef WEIR_SCHEMA_SCHEMA_H
#define WEIR_SCHEMA_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/*
 * Map uri (absolute, without fragment) to a local file: write the path
 * into path (cap bytes, NUL-terminated) and return 0, or return nonzero
 * when the hook does not know the URI.
 */
typedef int (*schema_resolve_fn)(void *ctx, const char *uri, char *path,
                                 size_t cap);

/* Options; a zeroed struct (or NULL) means strict, format as annotation,
 * the default limits and no resolver hook. */
struct schema_opts {
    int lax;              /* pydantic-style coercions, docs/lax.md */
    int format_assert;    /* `format` fails invalid strings (else annotation) */
    /* A value checked against "type": "integer" (number not allowed too)
     * must also fit in int64: the lake stores integers as BIGINT, and one
     * record it cannot convert would block its hour's compaction. Off for
     * a plain JSON Schema validator (integers are unbounded there). */
    int int64_integers;
    uint32_t max_depth;   /* record nesting limit; 0: WEIR_DEFAULT_MAX_DEPTH */
    size_t max_record;    /* longest record; 0: WEIR_DEFAULT_MAX_RECORD */
    schema_resolve_fn resolve; /* optional, for remote $refs */
    void *resolve_ctx;
};

struct schema;

/*
 * Read and compile the schema in the file at path. $refs to other files
 * are resolved relative to it. o may be NULL (all defaults). On failure
 * returns NULL and fills err with a sentence naming the file, the place in
 * the schema (a JSON pointer) and the problem.
 */
struct schema *schema_load_file(const char *path, const struct schema_opts *o,
                                struct weir_errmsg *err);

/*
 * Compile a schema from text[0..len). base_dir is where relative file
 * $refs are looked for (NULL: none can be resolved).
 */
struct schema *schema_compile(const char *text, size_t len,
                              const char *base_dir,
                              const struct schema_opts *o,
                              struct weir_errmsg *err);

/* Free a schema (NULL is fine). No validator may use it any more. */
void schema_free(struct schema *s);

/* The options the schema was compiled with (defaults filled in). */
const struct schema_opts *schema_opts_of(const struct schema *s);

#endif
