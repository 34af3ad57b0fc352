/*
 * log.h - logging to stderr, as text or one JSON object per line.
 *
 * Levels: error, warn, info, debug. The format and the level are process
 * wide (set once at start-up from the config or WEIR_LOG / WEIR_LOG_FORMAT).
 * Lines carry a UTC timestamp; secrets must never be passed in.
 */
#ifndef WEIR_CORE_LOG_H
#define WEIR_CORE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_TEXT = 0, LOG_JSON };

void log_setup(enum log_level level, enum log_format format);

/* Parse "error|warn|info|debug" / "text|json"; -1 if unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);

/* Read WEIR_LOG and WEIR_LOG_FORMAT from the environment, if set. */
void log_setup_from_env(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
