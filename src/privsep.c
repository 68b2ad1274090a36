/* SPDX-License-Identifier: BSD-2-Clause */
/* privsep.c - the privileged file reader; see privsep.h. */
#include "autoconf.h"

#include "privsep.h"
