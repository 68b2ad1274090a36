/* SPDX-License-Identifier: BSD-2-Clause */
/* ticket_rotate.c - `tlsterm -k FILE`: rotate a shared ticket key file.
 *
 * The file (tls_ticket.h) is read as: line 1 encrypts, every line
 * decrypts.  A fleet keeps three keys, in use / next / previous, and a
 * rotation shifts them: the next key goes into use, a new random key
 * becomes next, and the key that was in use stays as previous.  An
 * instance that already has the new file encrypts with a key every
 * instance still on the old file decrypts (it was "next" there), and it
 * still decrypts what they encrypt (it keeps it as "previous"), so the
 * new file may reach the instances in any order, and each may reload at
 * its own time, without a failed resumption: only two rotations within
 * one propagation break that. */
#include "autoconf.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "ticket_rotate.h"

#define KEY_RAW 48                      /* 16-byte name + 32-byte AES key */
#define KEY_B64 65                      /* 64 characters and a NUL */

struct keyset {
    char line[3][KEY_B64];              /* in use, next, previous */
};

static int
random_key(char *out)
{
    unsigned char raw[KEY_RAW];
    size_t n = 0;
    int rc = -1;

    if (getrandom(raw, sizeof(raw), 0) == (ssize_t)sizeof(raw) &&
        mbedtls_base64_encode((unsigned char *)out, KEY_B64, &n, raw, sizeof(raw)) == 0)
        rc = 0;
    mbedtls_platform_zeroize(raw, sizeof(raw));
    return rc;
}

static bool
valid_key(const char *s)
{
    unsigned char raw[64];
    size_t n = 0;
    bool ok = strlen(s) < KEY_B64 &&
              mbedtls_base64_decode(raw, sizeof(raw), &n, (const unsigned char *)s,
                                    strlen(s)) == 0 && n == KEY_RAW;

    mbedtls_platform_zeroize(raw, sizeof(raw));
    return ok;
}

/* The keys of an existing file, in file order; -1 with a message. */
static int
read_keys(const char *path, char keys[][KEY_B64], size_t max, size_t *n)
{
    char buf[256];
    int lineno = 0;
    FILE *f = fopen(path, "r");

    *n = 0;
    if (f == NULL)
        return errno == ENOENT ? 0 : (fprintf(stderr, "tlsterm: %s: %s\n", path,
                                              strerror(errno)), -1);
    while (fgets(buf, sizeof(buf), f) != NULL) {
        lineno++;
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] == '\0' || buf[0] == '#')
            continue;
        if (!valid_key(buf) || *n == max) {
            fprintf(stderr, "tlsterm: %s line %d: %s\n", path, lineno, *n == max ?
                    "more keys than a ticket key file holds" :
                    "not a ticket key (base64 of 48 bytes); the file is left as it is");
            fclose(f);
            return -1;
        }
        snprintf(keys[(*n)++], KEY_B64, "%s", buf);
    }
    fclose(f);
    mbedtls_platform_zeroize(buf, sizeof(buf));
    return 0;
}

/* Written beside the file and renamed over it, so a reader (an instance
 * reloading, inotify) sees the old file or the new one, never half. */
static int
write_keys(const char *path, const struct keyset *k, const struct stat *old)
{
    char tmp[4096], *dir_copy = strdup(path);
    int fd, dfd, rc = -1;
    FILE *f;

    if (dir_copy == NULL || snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >=
        (int)sizeof(tmp)) {
        free(dir_copy);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
              old != NULL ? old->st_mode & 07777 : 0600);
    /* the instances' user must still read it: same owner and mode */
    if (fd >= 0 && old != NULL && (fchown(fd, old->st_uid, old->st_gid) != 0 ||
                                   fchmod(fd, old->st_mode & 07777) != 0)) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && (f = fdopen(fd, "w")) != NULL) {
        fprintf(f, "# tlsterm session-ticket keys (tlsterm.yaml(5), tls.tickets.key_file).\n"
                   "# Line 1 is in use, line 2 next, line 3 previous: rotate with\n"
                   "# `tlsterm -k %s`, then copy to every instance.\n", path);
        for (int i = 0; i < 3; i++)
            fprintf(f, "%s\n", k->line[i]);
        rc = fflush(f) == 0 && fsync(fd) == 0 ? 0 : -1;
        rc |= fclose(f);
    } else if (fd >= 0) {
        close(fd);
    }
    if (rc == 0)
        rc = rename(tmp, path);
    if (rc != 0) {
        fprintf(stderr, "tlsterm: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
    } else if ((dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(dfd);                     /* the rename survives a crash */
        close(dfd);
    }
    free(dir_copy);
    return rc;
}

int
ticket_rotate(const char *path)
{
    char old[9][KEY_B64];
    struct keyset k;
    struct stat st;
    bool existed = stat(path, &st) == 0;
    size_t n;
    int rc;

    if (read_keys(path, old, 9, &n) != 0)
        return 1;
    if (n == 0) {               /* a new file: three fresh keys */
        rc = random_key(k.line[0]) | random_key(k.line[1]) | random_key(k.line[2]);
    } else {
        rc = n >= 2 ? 0 : random_key(k.line[0]);
        if (n >= 2)
            snprintf(k.line[0], KEY_B64, "%s", old[1]);
        rc |= random_key(k.line[1]);
        snprintf(k.line[2], KEY_B64, "%s", old[0]);
    }
    mbedtls_platform_zeroize(old, sizeof(old));
    if (rc != 0) {
        fprintf(stderr, "tlsterm: no random bytes for a new key\n");
        return 1;
    }
    rc = write_keys(path, &k, existed ? &st : NULL);
    mbedtls_platform_zeroize(&k, sizeof(k));
    if (rc != 0)
        return 1;
    printf("%s: %s; reload every instance (SIGHUP), or let them see the file change\n",
           path, n == 0 ? "created with three new keys" : "rotated: the next key is now in use");
    return 0;
}
