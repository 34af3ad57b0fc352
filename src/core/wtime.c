/*
 * wtime.c - clocks and UTC calendar arithmetic; see wtime.h.
 */
#include "core/wtime.h"
#include "core/error.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic int64_t fake_base;     /* 0: real clock */
static _Atomic int64_t fake_mono0;    /* mono time when set (advancing) */
static _Atomic int fake_advancing;
static _Atomic int env_checked;

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * WTIME_NS_PER_S + ts.tv_nsec;
}

int64_t wtime_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

void wtime_set_now(int64_t ns, int advancing)
{
    atomic_store(&fake_mono0, wtime_mono_ns());
    atomic_store(&fake_advancing, advancing);
    atomic_store(&fake_base, ns);
    atomic_store(&env_checked, 1);
}

static void check_env(void)
{
    if (atomic_exchange(&env_checked, 1))
        return;
    const char *v = getenv("WEIR_FAKE_NOW");
    if (!v || !*v)
        return;
    int64_t ns;
    char *end;
    long long secs = strtoll(v, &end, 10);
    if (*end == '\0' && end != v)
        ns = (int64_t)secs * WTIME_NS_PER_S;
    else if (wtime_parse_rfc3339(v, strlen(v), &ns) != 0)
        return;
    atomic_store(&fake_mono0, wtime_mono_ns());
    atomic_store(&fake_advancing, 1);
    atomic_store(&fake_base, ns);
}

int64_t wtime_now_ns(void)
{
    check_env();
    int64_t base = atomic_load(&fake_base);
    if (!base)
        return clock_ns(CLOCK_REALTIME);
    if (atomic_load(&fake_advancing))
        return base + (wtime_mono_ns() - atomic_load(&fake_mono0));
    return base;
}

/* Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms". */
int64_t wtime_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void wtime_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (mm <= 2));
    *m = mm;
    *d = dd;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void wtime_split(int64_t ns, struct wtime_tm *tm)
{
    int64_t days = floor_div(ns, WTIME_NS_PER_DAY);
    int64_t rem = ns - days * WTIME_NS_PER_DAY;
    wtime_civil_from_days(days, &tm->year, &tm->mon, &tm->mday);
    int64_t secs = rem / WTIME_NS_PER_S;
    tm->nsec = (long)(rem % WTIME_NS_PER_S);
    tm->hour = (int)(secs / 3600);
    tm->min = (int)(secs / 60 % 60);
    tm->sec = (int)(secs % 60);
}

int64_t wtime_join(const struct wtime_tm *tm)
{
    int64_t days = wtime_days_from_civil(tm->year, tm->mon, tm->mday);
    return days * WTIME_NS_PER_DAY +
           ((int64_t)tm->hour * 3600 + tm->min * 60 + tm->sec) * WTIME_NS_PER_S +
           tm->nsec;
}

static int digits(const char *s, size_t n, size_t at, int count, int *out)
{
    if (at + (size_t)count > n)
        return -1;
    int v = 0;
    for (int i = 0; i < count; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int wtime_parse_rfc3339(const char *s, size_t n, int64_t *ns)
{
    struct wtime_tm tm = {0};
    if (digits(s, n, 0, 4, &tm.year) || n < 10 || s[4] != '-' ||
        digits(s, n, 5, 2, &tm.mon) || s[7] != '-' || digits(s, n, 8, 2, &tm.mday))
        return WEIR_EPARSE;
    if (tm.mon < 1 || tm.mon > 12 || tm.mday < 1 ||
        tm.mday > days_in_month(tm.year, tm.mon))
        return WEIR_EPARSE;
    /* int64 ns covers 1677-09-21 .. 2262-04-11; stay well inside it. */
    if (tm.year < WTIME_MIN_YEAR || tm.year > WTIME_MAX_YEAR)
        return WEIR_EPARSE;
    if (n < 19 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, n, 11, 2, &tm.hour) || s[13] != ':' ||
        digits(s, n, 14, 2, &tm.min) || s[16] != ':' || digits(s, n, 17, 2, &tm.sec))
        return WEIR_EPARSE;
    if (tm.hour > 23 || tm.min > 59 || tm.sec > 60)
        return WEIR_EPARSE;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        long frac = 0;
        int nd = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (nd < 9) {
                frac = frac * 10 + (s[i] - '0');
                nd++;
            }
            i++;
        }
        if (i == start)
            return WEIR_EPARSE;
        while (nd++ < 9)
            frac *= 10;
        tm.nsec = frac;
    }
    int64_t offset = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return WEIR_EPARSE;
        offset = ((int64_t)oh * 3600 + om * 60) * WTIME_NS_PER_S;
        if (s[i] == '-')
            offset = -offset;
        i += 6;
    } else {
        return WEIR_EPARSE;
    }
    if (i != n)
        return WEIR_EPARSE;
    /* A leap second or an offset can carry the instant out of the years
     * allowed; the result must format back to a time that parses. */
    int64_t v = wtime_join(&tm) - offset;
    if (v < wtime_days_from_civil(WTIME_MIN_YEAR, 1, 1) * WTIME_NS_PER_DAY ||
        v >= wtime_days_from_civil(WTIME_MAX_YEAR + 1, 1, 1) * WTIME_NS_PER_DAY)
        return WEIR_EPARSE;
    *ns = v;
    return 0;
}

int wtime_parse_point(const char *s, int64_t *ns)
{
    size_t n = strlen(s);
    struct wtime_tm tm = {0};
    if (n == 10 && !digits(s, n, 0, 4, &tm.year) && s[4] == '-' &&
        !digits(s, n, 5, 2, &tm.mon) && s[7] == '-' && !digits(s, n, 8, 2, &tm.mday)) {
        if (tm.mon < 1 || tm.mon > 12 || tm.mday < 1 ||
            tm.mday > days_in_month(tm.year, tm.mon) ||
            tm.year < WTIME_MIN_YEAR || tm.year > WTIME_MAX_YEAR)
            return WEIR_EPARSE;
        *ns = wtime_join(&tm);
        return 0;
    }
    if (n == 13 && (s[10] == 'T' || s[10] == ' ')) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.13s:00:00Z", s);
        return wtime_parse_rfc3339(tmp, strlen(tmp), ns);
    }
    return wtime_parse_rfc3339(s, n, ns);
}

size_t wtime_format_rfc3339(int64_t ns, int frac, char *out, size_t cap)
{
    struct wtime_tm tm;
    wtime_split(ns, &tm);
    int n;
    if (frac <= 0) {
        n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.year, tm.mon,
                     tm.mday, tm.hour, tm.min, tm.sec);
    } else {
        if (frac > 9)
            frac = 9;
        long f = tm.nsec;
        for (int i = frac; i < 9; i++)
            f /= 10;
        n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%0*ldZ", tm.year,
                     tm.mon, tm.mday, tm.hour, tm.min, tm.sec, frac, f);
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : (cap ? cap - 1 : 0);
}

int wtime_parse_duration(const char *s, int64_t *ns)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return WEIR_EPARSE;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (v < 0 || end == p)
        return WEIR_EPARSE;
    while (isspace((unsigned char)*end))
        end++;
    int64_t unit;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = WTIME_NS_PER_S;
    else if (strcmp(end, "ms") == 0)
        unit = WTIME_NS_PER_MS;
    else if (strcmp(end, "us") == 0)
        unit = 1000;
    else if (strcmp(end, "ns") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        unit = 60 * WTIME_NS_PER_S;
    else if (strcmp(end, "h") == 0)
        unit = WTIME_NS_PER_HOUR;
    else if (strcmp(end, "d") == 0)
        unit = WTIME_NS_PER_DAY;
    else if (strcmp(end, "w") == 0)
        unit = 7 * WTIME_NS_PER_DAY;
    else
        return WEIR_EPARSE;
    if (v > INT64_MAX / unit)
        return WEIR_EPARSE;
    *ns = (int64_t)v * unit;
    return 0;
}
