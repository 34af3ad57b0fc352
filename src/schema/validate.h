/*
 * validate.h - check records against a compiled schema: weir's hot path.
 *
 * A struct validator belongs to one thread and is reused for every record:
 * it owns the JSON tape and the scratch memory the checks need, which grow
 * to the size of the largest record seen and are then reused, so checking
 * a record allocates nothing in the steady state. Many validators may share
 * one struct schema (it is read-only).
 *
 * For each record the validator scans the bytes once into a token tape
 * (json.h), refuses duplicate object keys, then walks the compiled schema
 * over the tape. Messages are written only for records that fail: the fast
 * walk only answers valid/invalid, and an invalid record is walked a second
 * time to find and describe the first failure.
 *
 * A verdict names the failing value with an RFC 6901 JSON pointer and says
 * what is wrong in a sentence, quoting values (cut to 60 characters):
 *
 *   path "/measurement/unit"  "\"Kelvin\" is not one of [\"Celcius\",\"Fahrenheit\"]"
 *   path ""                   "missing required property \"sensor_id\""
 *   path "/timestamp"         "expected integer, got string \"42\""
 *   path "/value"             "1e400 is greater than the maximum 100"
 *   path "/a"                 "duplicate key \"a\""
 *
 * Records that are not JSON get json_error = 1, the byte offset of the
 * problem and the scanner's description. The full list of messages is in
 * docs/schema.md.
 *
 * Stack: the walk recurses along the schema; its depth is bounded
 * (WEIR_MAX_SCHEMA_EVAL_DEPTH), and the worst case needs about 2.5 MB, so
 * threads that validate need a stack of at least 4 MB (glibc's default is
 * 8 MB).
 *
 * Lax mode (schema_opts.lax, docs/lax.md): where a value fails its type
 * and a pydantic-style coercion ("5.3" -> 5.3, "true" -> true, 1 -> true)
 * makes it pass, the record is accepted and validator_output() returns the
 * record rewritten with the coerced values; those bytes are what should be
 * stored.
 */
#ifndef WEIR_SCHEMA_VALIDATE_H
#define WEIR_SCHEMA_VALIDATE_H

#include <stddef.h>

#include "schema/json.h"
#include "schema/schema.h"

struct verdict {
    size_t offset;       /* byte offset of the problem for JSON errors */
    int json_error;      /* 1: the record is not (acceptable) JSON */
    char path[512];      /* RFC 6901 pointer of the failing value, "" = root */
    char message[512];
};

struct validator;

/* A validator for s (which must outlive it). NULL when out of memory. */
struct validator *validator_new(const struct schema *s);

/* Free (NULL is fine). */
void validator_free(struct validator *v);

/*
 * Check rec[0..len). Returns 1 valid, 0 invalid (vd filled; vd may be NULL
 * when the reason is not wanted), or a negative WEIR_E* code when the
 * validator itself failed (WEIR_ENOMEM). A record longer than
 * schema_opts.max_record is invalid without being scanned.
 */
int validator_check(struct validator *v, const char *rec, size_t len,
                    struct verdict *vd);

/*
 * The bytes to store for the last valid record: the input itself, or in
 * lax mode, when values were coerced, the rewritten record (owned by the
 * validator, valid until the next check).
 */
const char *validator_output(const struct validator *v, size_t *len);

/* The token tape of the last record (of the rewritten record when lax
 * mode rewrote it), e.g. to look up the event-time field. NULL before the
 * first check or after a JSON error. */
const struct json_doc *validator_doc(const struct validator *v);

/* Number of values coerced in the last record (lax mode), for metrics. */
unsigned validator_coerced(const struct validator *v);

#endif
