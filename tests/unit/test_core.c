/*
 * test_core.c - buffers, errors and the time module.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/wtime.h"

static void test_buf_limit(void **state)
{
    struct buf b = BUF_INIT(8);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    assert_int_equal(buf_putc(&b, '9'), WEIR_ELIMIT);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    buf_consume(&b, 3);
    assert_string_equal(b.data, "45678");
    assert_int_equal(buf_appendf(&b, "%d", 123), 0);
    assert_string_equal(b.data, "45678123");
    assert_int_equal(buf_appendf(&b, "%d", 4), WEIR_ELIMIT);
    buf_release(&b);
    buf_release(&b); /* twice is safe */
}

static void test_buf_json_string(void **state)
{
    struct buf b = BUF_INIT(1024);
    assert_int_equal(buf_put_json_string(&b, "a\"b\\c\n\x01", 7), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    buf_reset(&b);
    assert_int_equal(buf_put_base64(&b, "hello", 5), 0);
    assert_string_equal(b.data, "aGVsbG8=");
    buf_reset(&b);
    assert_int_equal(buf_put_base64(&b, "hell", 4), 0);
    assert_string_equal(b.data, "aGVsbA==");
    buf_release(&b);
}

static void test_errors(void **state)
{
    assert_string_equal(weir_errname(WEIR_ENOSPC), "ENOSPC");
    assert_string_equal(weir_strerror(WEIR_ENOSPC), "no space left on device");
    assert_string_equal(weir_strerror(1234), "unknown error");
    assert_int_equal(weir_from_errno(28 /* ENOSPC */), WEIR_ENOSPC);
    struct weir_errmsg e;
    assert_int_equal(errmsg_set(&e, WEIR_ECONFIG, "%s:%d", "f", 3), WEIR_ECONFIG);
    assert_string_equal(e.text, "f:3");
}

static void test_time_roundtrip(void **state)
{
    int64_t ns;
    assert_int_equal(wtime_parse_rfc3339("2025-09-02T09:00:00Z", 20, &ns), 0);
    assert_true(ns == INT64_C(1756803600) * WTIME_NS_PER_S);
    char out[64];
    wtime_format_rfc3339(ns + 123456789, 3, out, sizeof out);
    assert_string_equal(out, "2025-09-02T09:00:00.123Z");
    assert_int_equal(wtime_parse_rfc3339("2025-09-02T11:00:00+02:00", 25, &ns), 0);
    assert_true(ns == INT64_C(1756803600) * WTIME_NS_PER_S);
    assert_int_equal(wtime_parse_rfc3339("2025-02-29T00:00:00Z", 20, &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_rfc3339("2024-02-29T00:00:00Z", 20, &ns), 0);
    assert_int_equal(wtime_parse_rfc3339("2025-09-02T09:00:00", 19, &ns), WEIR_EPARSE);
    /* Years whose ns would overflow int64 are refused, not wrapped. */
    assert_int_equal(wtime_parse_rfc3339("9999-12-31T23:59:59Z", 20, &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_rfc3339("0001-01-01T00:00:00Z", 20, &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_point("9999-12-31", &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_rfc3339("2261-12-31T23:59:59Z", 20, &ns), 0);
    /* ... also when a leap second or an offset carries it over the edge
     * (found by fuzz_tablelog: the time must format back to a parsable one). */
    assert_int_equal(wtime_parse_rfc3339("2261-12-31T23:59:60.5Z", 22, &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_rfc3339("2261-12-31T23:00:00-05:00", 25, &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_rfc3339("1678-01-01T00:00:00+01:00", 25, &ns), WEIR_EPARSE);
    /* Before the epoch splits correctly too. */
    struct wtime_tm tm;
    wtime_split(-1, &tm);
    assert_int_equal(tm.year, 1969);
    assert_int_equal(tm.hour, 23);
    assert_int_equal(wtime_parse_point("2025-09-02", &ns), 0);
    assert_true(ns == INT64_C(1756771200) * WTIME_NS_PER_S);
}

static void test_durations(void **state)
{
    int64_t ns;
    assert_int_equal(wtime_parse_duration("100ms", &ns), 0);
    assert_true(ns == 100 * WTIME_NS_PER_MS);
    assert_int_equal(wtime_parse_duration("30d", &ns), 0);
    assert_true(ns == 30 * WTIME_NS_PER_DAY);
    assert_int_equal(wtime_parse_duration("5", &ns), 0);
    assert_true(ns == 5 * WTIME_NS_PER_S);
    assert_int_equal(wtime_parse_duration("5 parsecs", &ns), WEIR_EPARSE);
    assert_int_equal(wtime_parse_duration("-5s", &ns), WEIR_EPARSE);
}

static void test_fake_clock(void **state)
{
    wtime_set_now(42 * WTIME_NS_PER_S, 0);
    assert_true(wtime_now_ns() == 42 * WTIME_NS_PER_S);
    wtime_set_now(0, 0);
    assert_true(wtime_now_ns() > INT64_C(1700000000) * WTIME_NS_PER_S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_buf_json_string),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_time_roundtrip),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_fake_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
