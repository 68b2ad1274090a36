/* SPDX-License-Identifier: BSD-2-Clause */
/* privs.c - privilege drop. */
#include "autoconf.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"

/* capset(2) directly: libcap would be a dependency for one call. */
static int
keep_net_bind_service(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    data[0].effective = data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
    return (int)syscall(SYS_capset, &hdr, data);
}

static int
fail(const char *step, const struct config *cfg)
{
    log_error("cannot drop privileges to user %s group %u: %s: %s",
              cfg->run_as.user, (unsigned)cfg->run_as.gid, step, strerror(errno));
    return -1;
}

int
privs_drop(const struct config *cfg)
{
    uid_t uid = cfg->run_as.uid;
    gid_t gid = cfg->run_as.gid;
    int keep;

    if (cfg->run_as.user == NULL)
        return 0;
    if (getuid() == uid && geteuid() == uid && getgid() == gid)
        return 0;                       /* already there (e.g. systemd User=) */
    keep = prctl(PR_CAPBSET_READ, CAP_NET_BIND_SERVICE, 0, 0, 0) == 1 &&
           prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0;
    if (setgroups(1, &gid) != 0)
        return fail("setgroups", cfg);
    if (setgid(gid) != 0)
        return fail("setgid", cfg);
    if (setuid(uid) != 0)
        return fail("setuid", cfg);
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        return fail("root could be regained after setuid", cfg);
    }
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    /* KEEPCAPS kept the whole permitted set through setuid: it must be cut
     * down to CAP_NET_BIND_SERVICE, or the process could become root again. */
    if (keep && keep_net_bind_service() != 0)
        return fail("capset", cfg);
    log_info("running as user %s (uid %u) group %u%s", cfg->run_as.user, (unsigned)uid,
             (unsigned)gid, keep ? ", keeping CAP_NET_BIND_SERVICE for reloads" : "");
    return 0;
}
