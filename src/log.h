/* SPDX-License-Identifier: BSD-2-Clause */
/* log.h - leveled, line-atomic logging to stderr, syslog or a file. */
#ifndef TLSTERM_LOG_H
#define TLSTERM_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_target { LOG_TARGET_STDERR = 0, LOG_TARGET_SYSLOG, LOG_TARGET_FILE };
/* log.format: key=value text, or one JSON object per line. */
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* Level, format and target may change while workers log (reload): each
 * is read atomically once per line. */
void log_set_level(enum log_level lvl);
/* json: one object per line, {"ts":..,"level":..} then one member per
 * leading key=value field of the message (integers as numbers, quoted
 * values unquoted) and "msg" for any text after them. */
void log_set_format(enum log_format fmt);
enum log_level log_get_level(void);
int log_level_from_name(const char *name, enum log_level *out);
const char *log_level_name(enum log_level lvl);

/* Main thread only.  Opens the file (O_APPEND) or syslog before switching,
 * so on failure nothing changes and err says why. */
int log_set_target(enum log_target target, const char *file, char *err, size_t errlen);
/* SIGUSR1: reopen the log file by name after rotation.  Lines being
 * written meanwhile go to the old or the new file, never nowhere.
 * Returns 1 when reopened, 0 for other targets, -1 with err on failure. */
int log_reopen(char *err, size_t errlen);

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
