/*
 * error.c - messages and names for the error table in error.h.
 */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const messages[] = {
    "success",
#define MSG_(name, msg) msg,
    WEIR_ERR_MAP(MSG_)
#undef MSG_
};

static const char *const names[] = {
    "OK",
#define NAME_(name, msg) "E" #name,
    WEIR_ERR_MAP(NAME_)
#undef NAME_
};

const char *weir_strerror(int code)
{
    if (code > 0 || -code >= WEIR_ERRIDX__LAST)
        return "unknown error";
    return messages[-code];
}

const char *weir_errname(int code)
{
    if (code > 0 || -code >= WEIR_ERRIDX__LAST)
        return "EUNKNOWN";
    return names[-code];
}

int weir_from_errno(int errnum)
{
    switch (errnum) {
    case 0: return WEIR_OK;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR: return WEIR_EAGAIN;
    case ENOMEM: return WEIR_ENOMEM;
    case ENOSPC:
    case EDQUOT: return WEIR_ENOSPC;
    case EINVAL: return WEIR_EINVAL;
    case ENOENT: return WEIR_ENOTFOUND;
    case EEXIST: return WEIR_EEXIST;
    case EPIPE:
    case ECONNRESET: return WEIR_ECLOSED;
    case ETIMEDOUT: return WEIR_ETIMEDOUT;
    case ENOSYS:
    case EOPNOTSUPP: return WEIR_EUNSUPPORTED;
    default: return WEIR_EIO;
    }
}

int errmsg_set(struct weir_errmsg *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}
