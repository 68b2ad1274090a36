/* SPDX-License-Identifier: BSD-2-Clause */
/* log.c - one write(2) per line so threads never interleave.
 *
 * The log file keeps one descriptor number for the life of the process:
 * a reopen dup2()s the new file onto it, which is atomic, so a worker in
 * the middle of write() never sees a closed or reused descriptor. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
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
static atomic_int current_format = LOG_FORMAT_TEXT;
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

void
log_set_format(enum log_format fmt)
{
    atomic_store_explicit(&current_format, (int)fmt, memory_order_relaxed);
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

/* ---- json ----------------------------------------------------------- */

/* A JSON line being built.  An append that does not fit sets full and
 * writes nothing; room for the closing '"', '}' and newline is always
 * kept, so a cut line is still one valid object. */
struct jbuf {
    char *p;
    size_t len, cap;
    bool full, in_str;
};

#define JB_CLOSING 3

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (b->full || b->len + n + JB_CLOSING > b->cap) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none:
 * JSON text must be UTF-8 (RFC 8259, 8.1). */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t want = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

    if (s[0] >= 0xf5 || want == 0 || want > n)
        return 0;
    for (size_t i = 1; i < want; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return want;
}

/* The bytes of s as the inside of a JSON string: '"' and '\' escaped,
 * control bytes and bytes that are not UTF-8 as \u00XX.  unquote: s is a
 * quoted log value, whose backslash escapes are undone first. */
static void
jb_escape(struct jbuf *b, const char *s, size_t n, bool unquote)
{
    for (size_t i = 0; i < n && !b->full; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t u;
        char esc[8];

        if (unquote && c == '\\' && i + 1 < n)
            c = (unsigned char)s[++i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jb_put(b, esc, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            jb_put(b, (const char *)&c, 1);
        } else if (c >= 0x80 && (u = utf8_len((const unsigned char *)s + i, n - i)) != 0) {
            jb_put(b, s + i, u);
            i += u - 1;
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jb_put(b, esc, 6);
        }
    }
}

/* ,"key":"value" or ,"key":123 -- the opening is one append, so a cut
 * never leaves a key without a value. */
static void
jb_member(struct jbuf *b, const char *key, size_t klen, const char *val, size_t vlen,
          bool quoted, bool number)
{
    char head[80];
    int n = snprintf(head, sizeof(head), ",\"%.*s\":%s%.*s", (int)klen, key,
                     number ? "" : "\"", number ? (int)vlen : 0, val);

    if (n < 0 || (size_t)n >= sizeof(head)) {
        b->full = true;
        return;
    }
    jb_put(b, head, (size_t)n);
    if (number || b->full)
        return;
    b->in_str = true;
    jb_escape(b, val, vlen, quoted);
    if (!b->full) {
        jb_put(b, "\"", 1);
        b->in_str = false;
    }
}

/* An integer as the text gives it: optional '-', no leading zeros, and
 * small enough for every JSON reader (below 2^53). */
static bool
log_is_int(const char *v, size_t n)
{
    size_t i = v[0] == '-';

    if (n == i || n - i > 15 || (v[i] == '0' && n - i > 1))
        return false;
    for (; i < n; i++)
        if (!isdigit((unsigned char)v[i]))
            return false;
    return true;
}

struct kv {
    const char *key, *val;
    size_t klen, vlen;
    bool quoted;
};

/* One key=value field at *pp: key of [A-Za-z0-9_], '=', then a "quoted"
 * value (backslash escapes) or the text up to the next space.  Moves *pp
 * past it and one space; false when the text there is not a field. */
static bool
log_field(const char **pp, struct kv *f)
{
    const char *p = *pp;

    f->key = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    if (p == f->key || *p != '=')
        return false;
    f->klen = (size_t)(p - f->key);
    f->quoted = *++p == '"';
    f->val = p + f->quoted;
    if (f->quoted) {
        for (p++; *p != '\0' && *p != '"'; p++)
            if (*p == '\\' && p[1] != '\0')
                p++;
        if (*p != '"')
            return false;
        f->vlen = (size_t)(p++ - f->val);
    } else {
        p += strcspn(p, " ");
        f->vlen = (size_t)(p - f->val);
    }
    if (*p != '\0' && *p != ' ')
        return false;
    *pp = p + (*p == ' ');
    return true;
}

/* The leading key=value fields become members; what follows them is
 * "msg".  "listener=x: text" reads as listener "x" and msg "text". */
static void
log_json_body(struct jbuf *b, const char *body)
{
    struct kv f;

    while (log_field(&body, &f)) {
        const char *next = body;
        struct kv peek;

        if (*body != '\0' && !log_field(&next, &peek) && !f.quoted && f.vlen > 1 &&
            f.val[f.vlen - 1] == ':')
            f.vlen--;
        jb_member(b, f.key, f.klen, f.val, f.vlen, f.quoted,
                  !f.quoted && log_is_int(f.val, f.vlen));
    }
    if (*body != '\0')
        jb_member(b, "msg", 3, body, strlen(body), false, false);
}

/* {"ts":"...","level":"info",...}\n into out; returns its length. */
static size_t
log_json(char *out, size_t cap, const char *ts, enum log_level lvl, const char *body)
{
    struct jbuf b = { out, 0, cap, false, false };
    char head[96];
    int n = snprintf(head, sizeof(head), "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                     level_names[lvl]);

    jb_put(&b, head, (size_t)n);
    log_json_body(&b, body);
    b.full = false;                 /* the closing bytes were kept free */
    if (b.in_str)
        jb_put(&b, "\"", 1);
    b.cap += JB_CLOSING;
    jb_put(&b, "}\n", 2);
    return b.len;
}

/* ---- output ----------------------------------------------------------- */

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

/* "2026-12-05T13:28:44.123Z": UTC, milliseconds. */
static void
log_stamp(char *out, size_t len)
{
    struct timeval tv;
    struct tm tm;
    size_t n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    char body[2048], ts[40], line[4096];
    va_list ap;
    int saved_errno = errno;
    int target = atomic_load_explicit(&current_target, memory_order_relaxed);
    size_t n, start = 0;
    int m;

    if ((int)lvl > atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    log_stamp(ts, sizeof(ts));
    va_start(ap, fmt);
    m = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (m < 0)
        body[0] = '\0';
    if (atomic_load_explicit(&current_format, memory_order_relaxed) == LOG_FORMAT_JSON) {
        n = log_json(line, sizeof(line), ts, lvl, body);
    } else {
        /* body is under half of line: the whole text line fits */
        start = (size_t)snprintf(line, sizeof(line), "%s %s ", ts, level_names[lvl]);
        n = start + (size_t)snprintf(line + start, sizeof(line) - start, "%s", body);
        line[n++] = '\n';
    }
    log_write(target, lvl, line, n, start);
    errno = saved_errno;
}
