/*
 * error.h - the one error enum of weir, generated from one table.
 *
 * Every function that can fail returns 0 (WEIR_OK) on success or one of the
 * negative codes below. WEIR_EAGAIN is not a failure: it means "would block,
 * call again". A record that fails validation is not an error at all: the
 * validator returns a verdict (see schema/validate.h).
 *
 * Where a caller needs to show a person what went wrong, functions take a
 * struct weir_errmsg and fill it with a sentence that names the thing and
 * the fix (file and line of a config key, peer address, JSON pointer).
 */
#ifndef WEIR_CORE_ERROR_H
#define WEIR_CORE_ERROR_H

#include <stddef.h>

/* name, message. Codes are assigned in order: -1, -2, ... */
#define WEIR_ERR_MAP(X)                                                      \
    X(AGAIN, "resource temporarily unavailable, call again")                 \
    X(NOMEM, "out of memory")                                                \
    X(IO, "input/output error")                                              \
    X(NOSPC, "no space left on device")                                      \
    X(LIMIT, "a configured limit was exceeded")                              \
    X(INVAL, "invalid argument")                                             \
    X(PARSE, "malformed input")                                              \
    X(NOTFOUND, "not found")                                                 \
    X(EXIST, "already exists")                                               \
    X(UNSUPPORTED, "not supported")                                          \
    X(CONFIG, "configuration error")                                         \
    X(SCHEMA, "schema error")                                                \
    X(SQL, "SQL error")                                                      \
    X(CLOSED, "connection closed")                                           \
    X(TIMEDOUT, "timed out")                                                 \
    X(CONFLICT, "conflicting concurrent change")                             \
    X(CORRUPT, "data on disk is corrupt")

enum weir_err_index {
    WEIR_ERRIDX__FIRST = 0,
#define WEIR_ERR_IDX_(name, msg) WEIR_ERRIDX_##name,
    WEIR_ERR_MAP(WEIR_ERR_IDX_)
#undef WEIR_ERR_IDX_
    WEIR_ERRIDX__LAST
};

enum weir_err {
    WEIR_OK = 0,
#define WEIR_ERR_CODE_(name, msg) WEIR_E##name = -WEIR_ERRIDX_##name,
    WEIR_ERR_MAP(WEIR_ERR_CODE_)
#undef WEIR_ERR_CODE_
};

/* The message for code (a static string; "unknown error" for others). */
const char *weir_strerror(int code);

/* The short name of code, e.g. "ENOSPC" for WEIR_ENOSPC. */
const char *weir_errname(int code);

/* Map an errno value to the closest weir code (ENOSPC -> WEIR_ENOSPC ...). */
int weir_from_errno(int errnum);

/*
 * A code plus a sentence for a person. Functions that take one fill it
 * only on failure; text is always NUL-terminated.
 */
struct weir_errmsg {
    int code;
    char text[1024];
};

/* Set e (if not NULL) from a printf format and return code, so a failing
 * path can read: return errmsg_set(e, WEIR_ECONFIG, "%s:%d: ...", ...); */
int errmsg_set(struct weir_errmsg *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
