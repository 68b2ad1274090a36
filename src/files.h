/* SPDX-License-Identifier: BSD-2-Clause */
/* files.h - whole-file reads of everything the config names.
 *
 * The config, certificates, keys, passphrase files, client CA and CRL,
 * and the ticket key file are read only through files_read(), so that
 * once tlsterm runs unprivileged they can come from the privileged
 * reader (privsep.c) instead of open(2). */
#ifndef TLSTERM_FILES_H
#define TLSTERM_FILES_H

#include <stddef.h>

struct file_buf {
    unsigned char *data;    /* len bytes plus a NUL, so PEM parsers can use it */
    size_t len;
};

/* A file larger than this is refused: nothing tlsterm reads is this big. */
#define FILES_MAX_SIZE (16u << 20)

/* One reader for the whole process: direct reads until privsep_start()
 * installs the privileged one.  Returns 0, or -errno (-EISDIR for a
 * directory, -EFBIG past FILES_MAX_SIZE). */
typedef int files_reader_fn(const char *path, struct file_buf *out);
void files_set_reader(files_reader_fn *fn);
int files_read(const char *path, struct file_buf *out);
/* The direct read, for the privileged reader itself. */
int files_read_direct(const char *path, struct file_buf *out);
/* The same for regular files only (-EINVAL for a FIFO or a device). */
int files_read_regular(const char *path, struct file_buf *out);
/* The reader from files_set_reader() (files_read_direct by default). */
files_reader_fn *files_get_reader(void);

/* The names in a directory (certificates: {dir: ...}), each followed by
 * a NUL, in out (data NULL when there are none), "." and ".." left out,
 * in no particular order.  Returns 0 or -errno.  Swapped like the reader,
 * so a root-only directory can be listed after the privilege drop. */
typedef int files_lister_fn(const char *dir, struct file_buf *out);
void files_set_lister(files_lister_fn *fn);
int files_list(const char *dir, struct file_buf *out);
int files_list_direct(const char *dir, struct file_buf *out);

/* strerror(err) for what files_read() and files_list() return (as err
 * = -rc): says so when the privileged reader is gone. */
const char *files_strerror(int err);
/* Set by the privileged reader's client when the reader exited: reads
 * then fail with -EPIPE, which files_strerror() words. */
void files_set_reader_gone(void);
/* Zeroizes (keys pass through here) and frees. */
void files_free(struct file_buf *b);
/* The length mbedTLS's *_parse() wants: PEM counts its NUL, DER not. */
size_t files_parse_len(const struct file_buf *b);

#endif
