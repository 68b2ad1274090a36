/* SPDX-License-Identifier: BSD-2-Clause */
/* ticket_rotate.h - `tlsterm -k FILE` (ticket_rotate.c). */
#ifndef TLSTERM_TICKET_ROTATE_H
#define TLSTERM_TICKET_ROTATE_H

/* Creates FILE with three keys (in use, next, previous), or rotates it:
 * next into use, a new next, the old key in use kept as previous.
 * Returns the exit status. */
int ticket_rotate(const char *path);

#endif
