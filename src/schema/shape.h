/*
 * shape.h - the column shape of a compiled schema: what the lake stores.
 *
 * The lake types its columns from the pipeline's schema, never from
 * DuckDB's guessing (which differs from hour to hour). shape_of_schema
 * walks the compiled schema (compiled.h) and answers, for the record and
 * every property below it, "what kind of value can be here?":
 *
 *   kind     when the schema allows (besides null)         lake type (docs/lake.md)
 *   -------  --------------------------------------------  -----------------------
 *   INTEGER  integers only                                 BIGINT
 *   NUMBER   numbers (integers included)                   DOUBLE
 *   STRING   strings only (any format)                     VARCHAR
 *   BOOLEAN  true/false only                               BOOLEAN
 *   OBJECT   objects only, with declared properties        STRUCT(...)
 *   ARRAY    arrays only                                   LIST of the items' kind
 *   JSON     anything else: no type, several types         JSON (the value's text)
 *            (number|string), objects without properties
 *
 * How the schema is read:
 *   - `type`, `enum` and `const` narrow the types (an enum of strings is a
 *     STRING, of integers an INTEGER, of mixed values JSON);
 *   - $ref, $dynamicRef (its static target) and allOf are merged in: their
 *     types intersect, their properties add up;
 *   - anyOf/oneOf branches are unioned: types add up (integer|number is a
 *     NUMBER, a `null` branch makes the value nullable), properties of all
 *     branches are kept, a property only some branches declare is nullable,
 *     and JSON if another branch allows any extra property there;
 *   - `not`, `if`/`then`/`else`, and value constraints (minimum, pattern,
 *     ...) do not change the shape;
 *   - a recursive schema (a tree whose nodes $ref themselves) becomes JSON
 *     at the point where it would repeat.
 *
 * The root is always an OBJECT (records are objects), possibly without
 * fields: the schema-less default {"type":"object"} has none, and `open`.
 * `open` says whether undeclared properties may appear: the object has no
 * `additionalProperties: false` (or has patternProperties). The lake keeps
 * a record's undeclared top-level properties in its `_extra` column.
 */
#ifndef WEIR_SCHEMA_SHAPE_H
#define WEIR_SCHEMA_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct schema;

enum shape_kind {
    SHAPE_JSON = 0,
    SHAPE_INTEGER,
    SHAPE_NUMBER,
    SHAPE_STRING,
    SHAPE_BOOLEAN,
    SHAPE_OBJECT,
    SHAPE_ARRAY,
};

struct shape {
    enum shape_kind kind;
    char *name;            /* property name (decoded, NUL-terminated; may hold
                              any UTF-8); NULL for the root and array items */
    size_t name_len;       /* bytes of name (a name may contain "\u0000") */
    int required;          /* listed in the parent's `required` */
    int nullable;          /* null allowed, or the property may be absent */
    int open;              /* OBJECT: undeclared properties may appear */
    struct shape *fields;  /* OBJECT: declared properties, in schema order */
    size_t nfields;
    struct shape *items;   /* ARRAY: the shape of every element */
};

/* Build the shape of schema s. *out is freed with shape_free. Fails only
 * for lack of memory. */
int shape_of_schema(const struct schema *s, struct shape **out,
                    struct weir_errmsg *e);

/* Add a nullable, not required field called name (copied) of a scalar
 * kind to an OBJECT shape, after its fields: a column that a source adds
 * to every record (store/kmeta.h). The shape's field pointers move. */
int shape_add_field(struct shape *obj, const char *name, enum shape_kind kind);

/* Free a shape tree (NULL-safe). */
void shape_free(struct shape *sh);

/* "integer", "number", "string", "boolean", "object", "array", "json". */
const char *shape_kind_name(enum shape_kind k);

/* The field called name (exact bytes) of an OBJECT shape, or NULL. */
const struct shape *shape_field(const struct shape *sh, const char *name,
                                size_t len);

#endif
