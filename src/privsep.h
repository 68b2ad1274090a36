/* SPDX-License-Identifier: BSD-2-Clause */
/* privsep.h - the privileged file reader (issue 14, section 1).
 *
 * As OpenBSD's relayd and httpd do: before the privilege drop tlsterm
 * forks a small reader that stays uid 0 with CAP_DAC_READ_SEARCH alone
 * (bounding set too), no_new_privs, no descriptor but its socket and
 * stderr.  The daemon asks it for files over a SOCK_SEQPACKET
 * socketpair; it reads only the config file and the files the config
 * names (certificates, keys, passphrase files, client CA and CRL, ticket
 * key file, certificate directories and the files in them), and it learns
 * that list by parsing the config itself each time the daemon reads it.
 *
 * Wire format.  Request: one datagram, an op byte ('R' read a file, 'L'
 * list a directory) and the path, no NUL.  Reply: a header datagram
 * (struct privsep_hdr) and then len bytes in datagrams of at most
 * PRIVSEP_CHUNK.  err EXDEV: a path the daemon's user could redirect
 * (a directory on the way it can write); the daemon reads it itself. */
#ifndef TLSTERM_PRIVSEP_H
#define TLSTERM_PRIVSEP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "files.h"

#define PRIVSEP_CHUNK (64u * 1024)
/* How long the daemon waits for one reply before it gives the reader up. */
#define PRIVSEP_TIMEOUT_S 30

struct privsep_hdr {
    int32_t err;                /* 0, or the errno of the failed read */
    uint32_t len;               /* bytes that follow */
};

/* Whether this start needs the reader: started as root with a "user:"
 * to switch to (privs_drop() would change identity). */
bool privsep_needed(const struct config *cfg);

/* uid and gid are the daemon's after the drop: a file in a directory they
 * can write (the daemon could swap it for a symlink to any file) is
 * answered with EXDEV, and the daemon reads it itself.
 * Forks the reader, waits until it has shed its privileges, and installs
 * it with files_set_reader() and files_set_lister().  In the child,
 * child_cleanup(arg) first frees what the daemon loaded (the reader needs
 * none of it); the child never returns.  0, or -1 with the reason logged. */
int privsep_start(const char *config_path, uid_t uid, gid_t gid, void (*child_cleanup)(void *),
                  void *arg);
/* Closes the daemon's end (the reader exits on EOF) and reaps it. */
void privsep_stop(void);
pid_t privsep_pid(void);

/* The reader's loop on fd until EOF (0) or a socket error (-1); the
 * allow-list starts empty, so the config is asked for first.  Exported
 * for tests, which run it in a forked child without the sandbox. */
int privsep_serve(int fd, const char *config_path, uid_t uid, gid_t gid);

/* The daemon's side on fd (privsep_start() calls it; tests may). */
void privsep_client_init(int fd);
int privsep_read(const char *path, struct file_buf *out);
int privsep_list(const char *dir, struct file_buf *out);

#endif
