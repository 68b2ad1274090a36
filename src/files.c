/* SPDX-License-Identifier: BSD-2-Clause */
/* files.c - whole-file reads; see files.h. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "files.h"

/* Set once, before workers start (privsep_start), read by the control
 * thread that loads generations: DESIGN.md's process-wide state. */
static files_reader_fn *reader = files_read_direct;
static files_lister_fn *lister = files_list_direct;
static atomic_bool reader_gone;

void
files_set_reader(files_reader_fn *fn)
{
    reader = fn != NULL ? fn : files_read_direct;
}

files_reader_fn *
files_get_reader(void)
{
    return reader;
}

void
files_set_lister(files_lister_fn *fn)
{
    lister = fn != NULL ? fn : files_list_direct;
}

int
files_list(const char *dir, struct file_buf *out)
{
    out->data = NULL;
    out->len = 0;
    return lister(dir, out);
}

void
files_set_reader_gone(void)
{
    atomic_store(&reader_gone, true);
}

const char *
files_strerror(int err)
{
    if (err == EPIPE && atomic_load(&reader_gone))
        return "privileged reader is gone (restart tlsterm)";
    return strerror(err);
}

int
files_read(const char *path, struct file_buf *out)
{
    out->data = NULL;
    out->len = 0;
    return reader(path, out);
}

static int
read_all(int fd, size_t size, struct file_buf *out)
{
    size_t cap = size + 1, len = 0;
    unsigned char *buf = malloc(cap + 1);

    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;

            mbedtls_platform_zeroize(buf, len);
            free(buf);
            return -err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {           /* grew since fstat (or /proc-like) */
            unsigned char *bigger = cap * 2 > FILES_MAX_SIZE ? NULL : malloc(cap * 2 + 1);

            if (bigger == NULL) {
                mbedtls_platform_zeroize(buf, len);
                free(buf);
                return cap * 2 > FILES_MAX_SIZE ? -EFBIG : -ENOMEM;
            }
            memcpy(bigger, buf, len);
            mbedtls_platform_zeroize(buf, len);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    out->data = buf;
    out->len = len;
    return 0;
}

/* regular_only: the privileged reader must never block on a FIFO or a
 * device a renamed file could become, so it takes regular files only. */
static int
read_path(const char *path, struct file_buf *out, bool regular_only)
{
    struct stat st;
    int fd, rc;

    out->data = NULL;
    out->len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
    } else if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
    } else if (!S_ISREG(st.st_mode) &&
               (regular_only || (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)))) {
        rc = -EINVAL;
    } else if (st.st_size > (off_t)FILES_MAX_SIZE) {
        rc = -EFBIG;
    } else {
        /* O_NONBLOCK only kept a FIFO from blocking the open */
        (void)fcntl(fd, F_SETFL, 0);
        rc = read_all(fd, (size_t)st.st_size, out);
    }
    close(fd);
    return rc;
}

int
files_read_direct(const char *path, struct file_buf *out)
{
    return read_path(path, out, false);
}

int
files_read_regular(const char *path, struct file_buf *out)
{
    return read_path(path, out, true);
}

void
files_free(struct file_buf *b)
{
    if (b->data != NULL) {
        mbedtls_platform_zeroize(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}

size_t
files_parse_len(const struct file_buf *b)
{
    return b->len + (strstr((const char *)b->data, "-----BEGIN ") != NULL);
}

static int
names_append(struct file_buf *out, size_t *cap, const char *name)
{
    size_t n = strlen(name) + 1;

    if (out->len + n + 1 > *cap) {
        size_t want = (*cap + n + 1) * 2;
        unsigned char *p = want > FILES_MAX_SIZE ? NULL : realloc(out->data, want);

        if (p == NULL)
            return want > FILES_MAX_SIZE ? -EFBIG : -ENOMEM;
        out->data = p;
        *cap = want;
    }
    memcpy(out->data + out->len, name, n);
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

int
files_list_direct(const char *dir, struct file_buf *out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 0;
    int rc = 0;

    out->data = NULL;
    out->len = 0;
    if (d == NULL)
        return -errno;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = names_append(out, &cap, e->d_name);
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    if (rc != 0)
        files_free(out);
    return rc;
}
