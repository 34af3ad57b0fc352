/*
 * format.h - the string formats weir can assert: date-time, date, time
 * (RFC 3339), uuid (RFC 4122 text form), ipv4, ipv6 (RFC 2673 / 4291 text
 * forms, no zone ids), email (RFC 5321 Mailbox, ASCII).
 *
 * By default `format` is an annotation only (as JSON Schema 2020-12 says);
 * schema_opts.format_assert turns these checks on. Which formats exist and
 * how strict each one is: docs/schema.md.
 */
#ifndef WEIR_SCHEMA_FORMAT_H
#define WEIR_SCHEMA_FORMAT_H

#include <stddef.h>

enum schema_format {
    FMT_NONE = 0,
    FMT_DATE_TIME,
    FMT_DATE,
    FMT_TIME,
    FMT_UUID,
    FMT_IPV4,
    FMT_IPV6,
    FMT_EMAIL,
    FMT_UNKNOWN,
};

/* The format called name[0..n), or FMT_UNKNOWN. */
enum schema_format format_lookup(const char *name, size_t n);

/* "date-time" ... */
const char *format_name(enum schema_format f);

/* 1 if s[0..n) (UTF-8) is a valid f, else 0. FMT_NONE and FMT_UNKNOWN
 * accept everything. */
int format_check(enum schema_format f, const char *s, size_t n);

#endif
