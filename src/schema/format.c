/*
 * format.c - format assertions; see format.h. Each checker is a small
 * hand-written parser of the grammar in the RFC, ASCII only (a Bengali
 * digit is not a digit here).
 */
#include "schema/format.h"

#include <string.h>

#include "core/wtime.h"

static const char *const names[] = {
    [FMT_DATE_TIME] = "date-time", [FMT_DATE] = "date", [FMT_TIME] = "time",
    [FMT_UUID] = "uuid",           [FMT_IPV4] = "ipv4", [FMT_IPV6] = "ipv6",
    [FMT_EMAIL] = "email",
};

enum schema_format format_lookup(const char *name, size_t n)
{
    for (int f = FMT_DATE_TIME; f < FMT_UNKNOWN; f++)
        if (strlen(names[f]) == n && memcmp(names[f], name, n) == 0)
            return (enum schema_format)f;
    return FMT_UNKNOWN;
}

const char *format_name(enum schema_format f)
{
    if (f > FMT_NONE && f < FMT_UNKNOWN)
        return names[f];
    return "unknown";
}

static int isdigit_a(char c)
{
    return c >= '0' && c <= '9';
}

static int ishex(char c)
{
    return isdigit_a(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* n ASCII digits at s, as a number; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit_a(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* full-date = date-fullyear "-" date-month "-" date-mday (10 bytes). */
static int check_date(const char *s, size_t n)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1)
        return 0;
    /* Days in the month from the calendar module, not a table. */
    int ny = m == 12 ? y + 1 : y, nm = m == 12 ? 1 : m + 1;
    int64_t mdays = wtime_days_from_civil(ny, nm, 1) - wtime_days_from_civil(y, m, 1);
    return d <= mdays;
}

/* full-time = partial-time time-offset, with the leap second rule: :60 is
 * only valid when the time, moved to UTC, is 23:59:60. */
static int check_time(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':')
        return 0;
    int h = digits(s, 2), mi = digits(s + 3, 2), se = digits(s + 6, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
        return 0;
    size_t i = 8;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && isdigit_a(s[i]))
            i++;
        if (i == start)
            return 0;
    }
    if (i >= n)
        return 0;
    int off = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (n - i != 6 || s[i + 3] != ':')
            return 0;
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return 0;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return 0;
    }
    if (i != n)
        return 0;
    if (se == 60) {
        int utc = ((h * 60 + mi - off) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return 0;
    }
    return 1;
}

static int check_date_time(const char *s, size_t n)
{
    if (n < 20 || (s[10] != 'T' && s[10] != 't'))
        return 0;
    return check_date(s, 10) && check_time(s + 11, n - 11);
}

static int check_uuid(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!ishex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* dotted-quad, decimal octets 0..255 without leading zeros. */
static int check_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t start = i;
        int v = 0;
        while (i < n && isdigit_a(s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && s[start] == '0'))
            return 0;
    }
    return i == n;
}

static int check_ipv6(const char *s, size_t n)
{
    int groups = 0, gap = 0;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
        if (i == n)
            return 1;
    } else if (n >= 1 && s[0] == ':') {
        return 0;
    }
    while (i < n) {
        /* An embedded IPv4 address ends the text. */
        size_t j = i;
        while (j < n && s[j] != ':' && s[j] != '.')
            j++;
        if (j < n && s[j] == '.') {
            if (!check_ipv4(s + i, n - i))
                return 0;
            groups += 2;
            i = n;
            break;
        }
        size_t start = i;
        while (i < n && ishex(s[i]) && i - start < 4)
            i++;
        if (i == start || (i < n && s[i] != ':'))
            return 0;
        groups++;
        if (i == n)
            break;
        i++; /* ':' */
        if (i < n && s[i] == ':') {
            if (gap)
                return 0;
            gap = 1;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return 0; /* trailing single ':' */
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

static int is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isdigit_a((char)c))
        return 1;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int check_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != '.') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  isdigit_a(c) || c == '-'))
                return 0;
            i++;
        }
        size_t len = i - start;
        if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return 0;
        if (i < n) {
            i++;
            if (i == n)
                return 0; /* trailing dot */
        }
    }
    return 1;
}

static int check_email(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return 0;
    if (s[0] == '"') {
        /* quoted-string: printable ASCII, with backslash pairs. */
        i = 1;
        for (;;) {
            if (i >= n)
                return 0;
            unsigned char c = (unsigned char)s[i];
            if (c == '"')
                break;
            if (c == '\\') {
                if (i + 1 >= n || (unsigned char)s[i + 1] < 32 ||
                    (unsigned char)s[i + 1] > 126)
                    return 0;
                i += 2;
                continue;
            }
            if (c < 32 || c > 126)
                return 0;
            i++;
        }
        i++;
    } else {
        /* dot-atom: atoms of atext separated by single dots. */
        int need_atom = 1;
        while (i < n && s[i] != '@') {
            if (s[i] == '.') {
                if (need_atom)
                    return 0;
                need_atom = 1;
            } else if (is_atext((unsigned char)s[i])) {
                need_atom = 0;
            } else {
                return 0;
            }
            i++;
        }
        if (need_atom)
            return 0;
    }
    if (i >= n || s[i] != '@' || i > 64)
        return 0;
    const char *d = s + i + 1;
    size_t dn = n - i - 1;
    if (dn >= 2 && d[0] == '[' && d[dn - 1] == ']') {
        if (dn > 6 && memcmp(d + 1, "IPv6:", 5) == 0)
            return check_ipv6(d + 6, dn - 7);
        return check_ipv4(d + 1, dn - 2);
    }
    return check_hostname(d, dn);
}

int format_check(enum schema_format f, const char *s, size_t n)
{
    switch (f) {
    case FMT_DATE_TIME: return check_date_time(s, n);
    case FMT_DATE: return check_date(s, n);
    case FMT_TIME: return check_time(s, n);
    case FMT_UUID: return check_uuid(s, n);
    case FMT_IPV4: return check_ipv4(s, n);
    case FMT_IPV6: return check_ipv6(s, n);
    case FMT_EMAIL: return check_email(s, n);
    default: return 1;
    }
}
