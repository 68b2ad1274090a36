/* SPDX-License-Identifier: BSD-2-Clause */
/* privsep.h - the privileged file reader (issue 14, section 1). */
#ifndef TLSTERM_PRIVSEP_H
#define TLSTERM_PRIVSEP_H

#endif
