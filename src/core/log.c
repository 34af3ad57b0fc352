/*
 * log.c - stderr logging; see log.h.
 *
 * Each line is formatted into a stack buffer and written with one write(2)
 * so lines from several threads never interleave.
 */
#include "core/log.h"
#include "core/buf.h"
#include "core/wtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level cur_level = LOG_INFO;
static enum log_format cur_format = LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
    cur_level = level;
    cur_format = format;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return LOG_JSON;
    return -1;
}

void log_setup_from_env(void)
{
    const char *l = getenv("WEIR_LOG"), *f = getenv("WEIR_LOG_FORMAT");
    int v;
    if (l && (v = log_level_parse(l)) >= 0)
        cur_level = (enum log_level)v;
    if (f && (v = log_format_parse(f)) >= 0)
        cur_format = (enum log_format)v;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > cur_level)
        return;
    char msg[2048], ts[40], line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wtime_format_rfc3339(wtime_now_ns(), 3, ts, sizeof ts);
    int n;
    if (cur_format == LOG_JSON) {
        struct buf b = BUF_INIT(sizeof line - 1);
        if (buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
                        level_names[level]) == 0 &&
            buf_put_json_string(&b, msg, strlen(msg)) == 0 &&
            buf_puts(&b, "}\n") == 0) {
            n = (int)b.len;
            memcpy(line, b.data, b.len);
        } else {
            n = snprintf(line, sizeof line, "{\"level\":\"error\",\"msg\":\"log line too long\"}\n");
        }
        buf_release(&b);
    } else {
        n = snprintf(line, sizeof line, "%s %-5s %s\n", ts, level_names[level], msg);
        if (n >= (int)sizeof line)
            n = (int)sizeof line - 1, line[n - 1] = '\n';
    }
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
}
