/* SPDX-License-Identifier: BSD-2-Clause */
/* files.c - whole-file reads; see files.h. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "files.h"

/* Set once, before workers start (privsep_start), read by the control
 * thread that loads generations: DESIGN.md's process-wide state. */
static files_reader_fn *reader = files_read_direct;

void
files_set_reader(files_reader_fn *fn)
{
    reader = fn != NULL ? fn : files_read_direct;
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

int
files_read_direct(const char *path, struct file_buf *out)
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
    } else if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
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
