/* SPDX-License-Identifier: BSD-2-Clause */
/* log.c - one write(2) per line so threads never interleave.
 *
 * The log file keeps one descriptor number for the life of the process:
 * a reopen dup2()s the new file onto it, which is atomic, so a worker in
 * the middle of write() never sees a closed or reused descriptor. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The logger is process-wide by nature (DESIGN.md): level and target are
 * atomics; file_path is touched by the main thread only. */
static atomic_int current_level = LOG_LVL_INFO;
static atomic_int current_target = LOG_TARGET_STDERR;
static int file_fd = -1;
static char *file_path;
static int syslog_open;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void
log_set_level(enum log_level lvl)
{
    atomic_store_explicit(&current_level, (int)lvl, memory_order_relaxed);
}

enum log_level
log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

int
log_level_from_name(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *
log_level_name(enum log_level lvl)
{
    return (unsigned)lvl < 4 ? level_names[lvl] : "?";
}

/* Opens path and puts it at file_fd, keeping that number if it exists. */
static int
log_open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

    if (fd < 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
        return -1;
    }
    if (file_fd < 0) {
        file_fd = fd;
        return 0;
    }
    if (dup3(fd, file_fd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot switch to log file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int
log_set_target(enum log_target target, const char *file, char *err, size_t errlen)
{
    if (target == LOG_TARGET_FILE) {
        char *copy = strdup(file);
        if (copy == NULL || log_open_file(file, err, errlen) != 0) {
            if (copy == NULL)
                snprintf(err, errlen, "out of memory");
            free(copy);
            return -1;
        }
        free(file_path);
        file_path = copy;
    }
    if (target == LOG_TARGET_SYSLOG && !syslog_open) {
        openlog("tlsterm", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        syslog_open = 1;
    }
    atomic_store(&current_target, (int)target);
    return 0;
}

int
log_reopen(char *err, size_t errlen)
{
    if (atomic_load(&current_target) != LOG_TARGET_FILE || file_path == NULL)
        return 0;
    return log_open_file(file_path, err, errlen) == 0 ? 1 : -1;
}

static void
log_write(int target, enum log_level lvl, const char *line, size_t n, size_t body)
{
    ssize_t w;

    if (target == LOG_TARGET_SYSLOG) {
        syslog(syslog_prio[lvl], "%.*s", (int)(n - body - 1), line + body);
        return;
    }
    w = write(target == LOG_TARGET_FILE ? file_fd : STDERR_FILENO, line, n);
    (void)w;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int saved_errno = errno;
    int target = atomic_load_explicit(&current_target, memory_order_relaxed);
    size_t body;

    if ((int)lvl > atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
                          (long)(tv.tv_usec / 1000), level_names[lvl]);
    body = n;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;   /* truncated: keep it one line */
    line[n++] = '\n';
    log_write(target, lvl, line, n, body);
    errno = saved_errno;
}
