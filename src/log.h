/* log.h - leveled, line-atomic logging to stderr. */
#ifndef TLSTERM_LOG_H
#define TLSTERM_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set once at start-up, before worker threads exist; read-only afterwards. */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
int log_level_from_name(const char *name, enum log_level *out);
const char *log_level_name(enum log_level lvl);

/* One call writes one whole line with a single write(2), so lines from
 * different threads never interleave. */
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_enabled(lvl) ((lvl) <= log_get_level())

#endif
