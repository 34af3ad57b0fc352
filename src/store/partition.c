/*
 * partition.c - partition keys and intervals; see partition.h.
 */
#include "store/partition.h"
#include "core/error.h"
#include "core/wtime.h"

#include <stdio.h>
#include <string.h>

/* Days on either side of the epoch whose whole day still fits in int64 ns
 * (INT64_MAX / NS_PER_DAY is 106751.99): keys outside are refused. */
#define DAYS_LIMIT INT64_C(106750)

int64_t part_len_ns(enum part_grain g)
{
    return g == PART_DAY ? WTIME_NS_PER_DAY : WTIME_NS_PER_HOUR;
}

const char *part_grain_name(enum part_grain g)
{
    return g == PART_DAY ? "day" : "hour";
}

int part_grain_parse(const char *s)
{
    if (strcmp(s, "hour") == 0)
        return PART_HOUR;
    if (strcmp(s, "day") == 0)
        return PART_DAY;
    return -1;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

int part_start(int64_t ns, enum part_grain g, int64_t *start)
{
    int64_t lim = DAYS_LIMIT * WTIME_NS_PER_DAY;
    if (ns < -lim || ns >= lim)
        return WEIR_EINVAL;
    *start = ns - floor_mod(ns, part_len_ns(g));
    return 0;
}

int part_is_start(int64_t start, enum part_grain g)
{
    int64_t s;
    return part_start(start, g, &s) == 0 && s == start;
}

size_t part_key_format(int64_t start, enum part_grain g, char *out,
                       size_t cap)
{
    if (!part_is_start(start, g) || cap < PART_KEY_MAX) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    struct wtime_tm tm;
    wtime_split(start, &tm);
    int n;
    if (g == PART_DAY)
        n = snprintf(out, cap, "date=%04d-%02d-%02d", tm.year, tm.mon,
                     tm.mday);
    else
        n = snprintf(out, cap, "date=%04d-%02d-%02d/hour=%02d", tm.year,
                     tm.mon, tm.mday, tm.hour);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static int num(const char *s, size_t n, size_t at, int count, int *out)
{
    if (at + (size_t)count > n)
        return -1;
    int v = 0;
    for (int i = 0; i < count; i++) {
        char c = s[at + (size_t)i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

static int month_days(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

size_t part_key_parse(const char *s, size_t n, enum part_grain *g,
                      int64_t *start)
{
    int y, m, d, h;
    /* date=YYYY-MM-DD is 15 bytes */
    if (n < 15 || memcmp(s, "date=", 5) != 0 || num(s, n, 5, 4, &y) ||
        s[9] != '-' || num(s, n, 10, 2, &m) || s[12] != '-' ||
        num(s, n, 13, 2, &d))
        return 0;
    if (m < 1 || m > 12 || d < 1 || d > month_days(y, m))
        return 0;
    int64_t days = wtime_days_from_civil(y, m, d);
    if (days < -DAYS_LIMIT || days >= DAYS_LIMIT)
        return 0;
    size_t used = 15;
    enum part_grain grain = PART_DAY;
    int64_t t = days * WTIME_NS_PER_DAY;
    if (n >= 21 && memcmp(s + 15, "/hour=", 6) == 0) {
        if (num(s, n, 21, 2, &h) || h > 23)
            return 0;
        grain = PART_HOUR;
        t += h * WTIME_NS_PER_HOUR;
        used = 23;
    }
    if (used < n && s[used] != '/')
        return 0;
    *g = grain;
    *start = t;
    return used;
}

int part_key_from_path(const char *path, enum part_grain *g, int64_t *start)
{
    size_t n = strlen(path);
    int found = 0;
    /* Every component that starts with "date=" is a candidate; the last one
     * wins, so a data_dir that itself looks like a key does not confuse. */
    for (size_t i = 0; i < n; i++) {
        if ((i == 0 || path[i - 1] == '/') && path[i] == 'd') {
            enum part_grain gg;
            int64_t ss;
            if (part_key_parse(path + i, n - i, &gg, &ss)) {
                *g = gg;
                *start = ss;
                found = 1;
            }
        }
    }
    return found ? 0 : WEIR_ENOTFOUND;
}
