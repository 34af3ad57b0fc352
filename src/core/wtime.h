/*
 * wtime.h - the one time module: clocks, UTC calendar, RFC 3339, durations.
 *
 * Everything is in nanoseconds since the Unix epoch, UTC, as int64_t
 * (good until the year 2262). The calendar arithmetic is Howard Hinnant's
 * days-from-civil, so nothing here depends on the C library's time zone
 * state (no gmtime, no localtime, no TZ).
 *
 * The wall clock can be overridden for tests (wtime_set_now, or the
 * environment variable WEIR_FAKE_NOW holding RFC 3339 or seconds) so that
 * hours close without waiting.
 */
#ifndef WEIR_CORE_WTIME_H
#define WEIR_CORE_WTIME_H

#include <stddef.h>
#include <stdint.h>

#define WTIME_NS_PER_S INT64_C(1000000000)
#define WTIME_NS_PER_MS INT64_C(1000000)
#define WTIME_NS_PER_HOUR (INT64_C(3600) * WTIME_NS_PER_S)
#define WTIME_NS_PER_DAY (INT64_C(86400) * WTIME_NS_PER_S)

/* Years a parsed time may have: int64 ns spans 1677-09-21 .. 2262-04-11. */
#define WTIME_MIN_YEAR 1678
#define WTIME_MAX_YEAR 2261

struct wtime_tm {
    int year;  /* e.g. 2025 */
    int mon;   /* 1..12 */
    int mday;  /* 1..31 */
    int hour, min, sec;
    long nsec;
};

/* Wall clock (or the fake one), ns since the epoch. */
int64_t wtime_now_ns(void);

/* Monotonic clock, ns, for measuring intervals. */
int64_t wtime_mono_ns(void);

/* Fix the wall clock at ns (0: back to the real clock). Offset mode: when
 * advancing is 1 the fake clock moves on with the real one from ns. */
void wtime_set_now(int64_t ns, int advancing);

/* Split ns into a UTC calendar date and time, and back. */
void wtime_split(int64_t ns, struct wtime_tm *tm);
int64_t wtime_join(const struct wtime_tm *tm);

/* Days since 1970-01-01 for a civil date, and back (proleptic Gregorian). */
int64_t wtime_days_from_civil(int y, int m, int d);
void wtime_civil_from_days(int64_t z, int *y, int *m, int *d);

/*
 * Parse an RFC 3339 timestamp ("2025-09-02T10:00:00Z",
 * "2025-09-02T12:00:00.123+02:00"; 't', 'z' and a space for 'T' accepted)
 * into ns. Returns 0 or WEIR_EPARSE. Leap second 60 is accepted and folded
 * into the next second. Years outside WTIME_MIN_YEAR..WTIME_MAX_YEAR are
 * refused (they do not fit in int64 ns).
 */
int wtime_parse_rfc3339(const char *s, size_t n, int64_t *ns);

/* A point in time for the CLI: RFC 3339, or a date "2025-09-02" (midnight
 * UTC), or "2025-09-02T10" (that hour). */
int wtime_parse_point(const char *s, int64_t *ns);

/* Format ns as "2025-09-02T10:00:00Z" with frac digits (0..9) of fraction.
 * Returns the length written (always NUL-terminated when cap > 0). */
size_t wtime_format_rfc3339(int64_t ns, int frac, char *out, size_t cap);

/*
 * Durations: a number and a unit, "100ms", "5s", "5m", "2h", "1d", "1w",
 * or a bare number of seconds. Returns 0 or WEIR_EPARSE.
 */
int wtime_parse_duration(const char *s, int64_t *ns);

#endif
