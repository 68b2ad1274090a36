/* SPDX-License-Identifier: BSD-2-Clause */
/* privsep.c - the privileged file reader; see privsep.h. */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"

#define REQ_MAX (1 + 4096)
#define STR2(x) #x
#define STR(x) STR2(x)
#define PRIVSEP_TIMEOUT_TEXT STR(PRIVSEP_TIMEOUT_S) " s"

/* ---- the reader's allow-list ------------------------------------------ */

struct names {
    char **v;
    size_t n;
};

struct reader {
    const char *config_path;
    uid_t uid;                  /* the daemon's identity after the drop */
    gid_t gid;
    bool config_unsafe;         /* the daemon could rewrite the config */
    struct names files;         /* named by the config */
    struct names dirs;          /* certificates: {dir: ...}: listed, and their files read */
    struct names seen_dirs;     /* listed while the reader parses the config */
    const struct file_buf *pinned;  /* the config bytes being parsed */
};

/* The reader is single-threaded; these let the files.c hooks, which take
 * no context, reach its state while it parses the config. */
static struct reader *parsing;

static void
names_free(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int
names_add(struct names *l, const char *s)
{
    char **v;

    if (s == NULL)
        return 0;
    v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    l->v = v;
    if ((v[l->n] = strdup(s)) == NULL)
        return -1;
    l->n++;
    return 0;
}

static bool
names_has(const struct names *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && memcmp(l->v[i], s, len) == 0)
            return true;
    return false;
}

static int
names_from_listener(struct names *l, const struct config_listener *li)
{
    int rc = 0;

    for (size_t i = 0; i < li->n_certs; i++) {
        rc |= names_add(l, li->certs[i].cert_file);
        rc |= names_add(l, li->certs[i].key_file);
        rc |= names_add(l, li->certs[i].key_passphrase_file);
    }
    rc |= names_add(l, li->client_auth.ca_file);
    rc |= names_add(l, li->client_auth.crl_file);
    return rc;
}

static int
names_from_config(struct names *l, const struct config *cfg)
{
    int rc = names_add(l, cfg->tls.tickets.key_file);

    for (size_t i = 0; i < cfg->n_listeners; i++)
        rc |= names_from_listener(l, &cfg->listeners[i]);
    return rc;
}

/* While the reader parses the config: the config path gives the bytes it
 * is about to send (not a second read that could differ), and every
 * directory the parse lists is recorded. */
static int
pinned_read(const char *path, struct file_buf *out)
{
    if (parsing != NULL && strcmp(path, parsing->config_path) == 0) {
        out->data = malloc(parsing->pinned->len + 1);
        if (out->data == NULL)
            return -ENOMEM;
        memcpy(out->data, parsing->pinned->data, parsing->pinned->len + 1);
        out->len = parsing->pinned->len;
        return 0;
    }
    return files_read_regular(path, out);
}

static int
recording_list(const char *dir, struct file_buf *out)
{
    if (parsing != NULL && names_add(&parsing->seen_dirs, dir) != 0)
        return -ENOMEM;
    return files_list_direct(dir, out);
}

/* A config with errors still names its directories (so the daemon's own
 * parse gets to list them and report the real problem); its files stay
 * those of the last good config. */
static void
reader_learn(struct reader *r, const struct file_buf *text)
{
    struct config_errors errs = { 0 };
    struct names files = { 0 };
    struct config *cfg;

    r->pinned = text;
    parsing = r;
    files_set_reader(pinned_read);
    files_set_lister(recording_list);
    cfg = config_load(r->config_path, &errs);
    files_set_reader(files_read_direct);
    files_set_lister(files_list_direct);
    parsing = NULL;
    config_errors_free(&errs);
    if (cfg != NULL && names_from_config(&files, cfg) == 0) {
        names_free(&r->files);
        r->files = files;
    } else {
        names_free(&files);
        for (size_t i = 0; i < r->dirs.n; i++)
            names_add(&r->seen_dirs, r->dirs.v[i]);
    }
    config_free(cfg);
    names_free(&r->dirs);
    r->dirs = r->seen_dirs;
    r->seen_dirs = (struct names){ 0 };
}

/* ---- paths the daemon could redirect ------------------------------------
 * A directory the daemon's user can write lets it swap a named file for a
 * symlink to any file, which the reader would then hand over.  Such paths
 * are not the reader's to read: it answers EXDEV and the daemon reads
 * them itself, with its own rights (what it could read anyway). */

static bool
dir_unsafe(const struct reader *r, const char *dir)
{
    struct stat st;

    if (stat(dir, &st) != 0)
        return false;               /* the read itself reports what is missing */
    if (st.st_uid == r->uid)
        return true;
    if ((st.st_mode & S_IWGRP) && st.st_gid == r->gid)
        return true;
    return (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX);
}

/* Every directory above path: the one holding the name and each above. */
static bool
ancestors_unsafe(const struct reader *r, const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    char *slash;

    if (len >= sizeof(buf))
        return true;
    memcpy(buf, path, len + 1);
    while ((slash = strrchr(buf, '/')) != NULL) {
        *slash = '\0';
        if (dir_unsafe(r, slash == buf ? "/" : buf))
            return true;
        if (slash == buf)
            break;
    }
    return false;
}

/* The path as named and as resolved (a symlink elsewhere); a directory
 * to list must also not be writable itself. */
static bool
path_unsafe(const struct reader *r, const char *path, bool is_dir)
{
    char real[PATH_MAX];

    if ((is_dir && dir_unsafe(r, path)) || ancestors_unsafe(r, path))
        return true;
    if (realpath(path, real) == NULL)
        return false;
    return (is_dir && dir_unsafe(r, real)) || ancestors_unsafe(r, real);
}

/* ---- the reader's requests -------------------------------------------- */

static bool
path_clean(const char *p)
{
    size_t n = strlen(p);

    return p[0] == '/' && strstr(p, "/../") == NULL &&
           !(n >= 3 && strcmp(p + n - 3, "/..") == 0);
}

/* A file directly in a named directory; path_clean() ruled out "..". */
static bool
in_named_dir(const struct reader *r, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = (size_t)(slash - path);

    if (slash[1] == '\0' || strcmp(slash + 1, ".") == 0)
        return false;
    return names_has(&r->dirs, path, dlen) || (dlen == 0 && names_has(&r->dirs, "/", 1));
}

static bool
allowed(const struct reader *r, char op, const char *path)
{
    if (!path_clean(path))
        return false;
    if (op == 'L')
        return names_has(&r->dirs, path, strlen(path));
    return names_has(&r->files, path, strlen(path)) || in_named_dir(r, path);
}

static int
send_reply(int fd, int err, const struct file_buf *b)
{
    struct privsep_hdr h = { err, err == 0 ? (uint32_t)b->len : 0 };

    if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
        return -1;
    for (size_t off = 0; off < h.len; off += PRIVSEP_CHUNK) {
        size_t n = h.len - off < PRIVSEP_CHUNK ? h.len - off : PRIVSEP_CHUNK;
        if (send(fd, b->data + off, n, MSG_NOSIGNAL) != (ssize_t)n)
            return -1;
    }
    return 0;
}

/* A config the daemon's user could rewrite could name any file: then the
 * reader serves nothing, and tlsterm reads every file itself. */
static int
config_request(struct reader *r, struct file_buf *out)
{
    bool unsafe = path_unsafe(r, r->config_path, false);
    int rc;

    if (unsafe != r->config_unsafe && unsafe)
        log_warn("privileged reader: %s is in a directory user %u can write, so it could "
                 "name any file: tlsterm reads the files it names itself", r->config_path,
                 (unsigned)r->uid);
    r->config_unsafe = unsafe;
    if (unsafe)
        return -EXDEV;
    rc = files_read_regular(r->config_path, out);
    if (rc == 0)
        reader_learn(r, out);
    return rc;
}

static int
handle(struct reader *r, char op, const char *path, struct file_buf *out)
{
    if (op == 'R' && strcmp(path, r->config_path) == 0)
        return config_request(r, out);
    if ((op != 'R' && op != 'L') || !allowed(r, op, path)) {
        log_warn("privileged reader: refused %s: not named in %s", path, r->config_path);
        return -EACCES;
    }
    if (r->config_unsafe || path_unsafe(r, path, op == 'L')) {
        log_debug("privileged reader: %s is in a directory user %u can write: "
                  "tlsterm reads it itself", path, (unsigned)r->uid);
        return -EXDEV;
    }
    return op == 'R' ? files_read_regular(path, out) : files_list_direct(path, out);
}

/* One request; a malformed one gets EINVAL, never a stall or a crash. */
static int
serve_one(struct reader *r, int fd)
{
    char req[REQ_MAX + 1];
    struct iovec iov = { req, REQ_MAX };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct file_buf out = { 0 };
    ssize_t n = recvmsg(fd, &m, 0);
    int rc;

    if (n == 0)
        return 1;
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    req[n] = '\0';
    if ((m.msg_flags & MSG_TRUNC) || n < 2 || memchr(req, '\0', (size_t)n) != NULL)
        rc = -EINVAL;
    else
        rc = handle(r, req[0], req + 1, &out);
    n = send_reply(fd, -rc, &out);
    files_free(&out);
    return n == 0 ? 0 : -1;
}

int
privsep_serve(int fd, const char *config_path, uid_t uid, gid_t gid)
{
    struct reader r = { .config_path = config_path, .uid = uid, .gid = gid };
    int rc;

    while ((rc = serve_one(&r, fd)) == 0)
        continue;
    names_free(&r.files);
    names_free(&r.dirs);
    return rc > 0 ? 0 : -1;
}

/* ---- the reader's sandbox ---------------------------------------------- */

/* Only fd (made 3) and stderr stay open; close_range() may be filtered
 * (seccomp) or missing, so a loop backs it up. */
static int
close_all_but(int fd)
{
    long max = sysconf(_SC_OPEN_MAX);

    if (fd != 3) {
        if (dup2(fd, 3) != 3)
            return -1;
        close(fd);
    }
    close(0);
    close(1);
    if (syscall(SYS_close_range, 4u, ~0u, 0u) == 0)
        return 0;
    for (long i = 4; i < (max > 0 && max < 1048576 ? max : 65536); i++)
        close((int)i);
    return 0;
}

/* Without CAP_SETPCAP (systemd's CapabilityBoundingSet) the bounding set
 * cannot shrink; no_new_privs still keeps exec from regaining anything. */
static void
clear_bounding_set(void)
{
    for (int cap = 0; cap < 64; cap++) {
        int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (in < 0)
            break;                  /* past the kernel's last capability */
        if (in == 1 && cap != CAP_DAC_READ_SEARCH &&
            prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            log_warn("privileged reader: cannot clear the capability bounding set: %s "
                     "(no CAP_SETPCAP?)", strerror(errno));
            return;
        }
    }
}

static int
keep_dac_read_search(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    uint32_t keep;

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    keep = data[0].permitted & (1u << CAP_DAC_READ_SEARCH);
    memset(data, 0, sizeof(data));
    data[0].effective = data[0].permitted = keep;
    return (int)syscall(SYS_capset, &hdr, data);
}

static int
sandbox(int fd, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        return -1;
    /* the daemon's stop ends the reader, by EOF on the socket */
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    if (close_all_but(fd) != 0)
        return -1;
    clear_bounding_set();
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (keep_dac_read_search() != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    /* no core file with key bytes in it */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* the capset may clear it on some kernels; set again, then check */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        return -1;
    return 0;
}

static void __attribute__((noreturn))
reader_main(int fd, pid_t parent, const char *config_path, uid_t uid, gid_t gid)
{
    char ok = 'K';

    if (sandbox(fd, parent) != 0) {
        log_error("privileged reader: cannot set itself up: %s", strerror(errno));
        _exit(1);
    }
    if (send(3, &ok, 1, MSG_NOSIGNAL) != 1)
        _exit(1);
    /* _exit: no atexit handlers or sanitizer leak check of the daemon's heap */
    _exit(privsep_serve(3, config_path, uid, gid) == 0 ? 0 : 1);
}

/* ---- the daemon's side ------------------------------------------------- */

/* Reloads run on the control thread, but nothing stops another thread
 * from reading a file one day: one request at a time on the socket. */
static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static int client_fd = -1;
static pid_t reader_pid = -1;

void
privsep_client_init(int fd)
{
    struct timeval tv = { PRIVSEP_TIMEOUT_S, 0 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    client_fd = fd;
}

pid_t
privsep_pid(void)
{
    return reader_pid;
}

/* A reply cut short leaves the stream out of step: the reader is given up
 * for good, and every later read fails with -EPIPE. */
static int
client_gone(const char *why)
{
    int status;

    log_error("privileged reader is gone (%s); files cannot be read until tlsterm is "
              "restarted", why);
    close(client_fd);
    client_fd = -1;
    files_set_reader_gone();
    if (reader_pid > 0 && waitpid(reader_pid, &status, WNOHANG) == reader_pid)
        reader_pid = -1;
    return -EPIPE;
}

static ssize_t
recv_some(void *buf, size_t len)
{
    ssize_t n;

    do
        n = recv(client_fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

static const char *
recv_failure(ssize_t n)
{
    if (n == 0)
        return "it exited";
    if (n > 0)
        return "short reply";
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return "no answer within " PRIVSEP_TIMEOUT_TEXT;
    return strerror(errno);
}

static int
client_recv(struct file_buf *out)
{
    struct privsep_hdr h;
    ssize_t n = recv_some(&h, sizeof(h));

    if (n != (ssize_t)sizeof(h))
        return client_gone(recv_failure(n));
    if (h.err != 0)
        return h.err > 0 ? -h.err : -EIO;
    if (h.len > FILES_MAX_SIZE || (out->data = malloc((size_t)h.len + 1)) == NULL)
        return h.len > FILES_MAX_SIZE ? client_gone("oversized reply") : -ENOMEM;
    for (out->len = 0; out->len < h.len; out->len += (size_t)n) {
        n = recv_some(out->data + out->len, h.len - out->len);
        if (n <= 0) {
            files_free(out);
            return client_gone(recv_failure(n));
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

static int
client_call(char op, const char *path, struct file_buf *out)
{
    char req[REQ_MAX];
    size_t len = strlen(path);
    int rc;

    out->data = NULL;
    out->len = 0;
    if (len == 0 || len >= REQ_MAX - 1)
        return -ENAMETOOLONG;
    req[0] = op;
    memcpy(req + 1, path, len);
    pthread_mutex_lock(&client_lock);
    if (client_fd < 0)
        rc = -EPIPE;
    else if (send(client_fd, req, len + 1, MSG_NOSIGNAL) != (ssize_t)(len + 1))
        rc = client_gone(errno == EPIPE || errno == ECONNRESET ? "it exited"
                         : strerror(errno));
    else
        rc = client_recv(out);
    pthread_mutex_unlock(&client_lock);
    return rc;
}

/* EXDEV: a path the daemon could have redirected; it reads it itself. */
int
privsep_read(const char *path, struct file_buf *out)
{
    int rc = client_call('R', path, out);

    return rc == -EXDEV ? files_read_direct(path, out) : rc;
}

int
privsep_list(const char *dir, struct file_buf *out)
{
    int rc = client_call('L', dir, out);

    return rc == -EXDEV ? files_list_direct(dir, out) : rc;
}

bool
privsep_needed(const struct config *cfg)
{
    return cfg->run_as.user != NULL && geteuid() == 0 &&
           !(getuid() == cfg->run_as.uid && getgid() == cfg->run_as.gid);
}

static int
wait_ready(int fd)
{
    char ok = 0;
    ssize_t n;

    do
        n = recv(fd, &ok, 1, 0);
    while (n < 0 && errno == EINTR);
    return n == 1 && ok == 'K' ? 0 : -1;
}

int
privsep_start(const char *config_path, uid_t uid, gid_t gid, void (*child_cleanup)(void *),
              void *arg)
{
    int sv[2];
    pid_t parent = getpid(), pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("cannot start the privileged reader: socketpair: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        if (child_cleanup != NULL)
            child_cleanup(arg);
        reader_main(sv[1], parent, config_path, uid, gid);
    }
    close(sv[1]);
    if (pid < 0) {
        log_error("cannot start the privileged reader: fork: %s", strerror(errno));
        close(sv[0]);
        return -1;
    }
    reader_pid = pid;
    privsep_client_init(sv[0]);
    if (wait_ready(sv[0]) != 0) {
        log_error("cannot start the privileged reader (pid %d): it exited", (int)pid);
        privsep_stop();
        return -1;
    }
    files_set_reader(privsep_read);
    files_set_lister(privsep_list);
    log_info("privileged reader started (pid %d): reads the files %s names", (int)pid,
             config_path);
    return 0;
}

/* The reader exits at once on EOF; a wait for it is bounded all the same
 * (a read stuck on a dead NFS server), and PR_SET_PDEATHSIG ends it when
 * tlsterm exits. */
void
privsep_stop(void)
{
    struct timespec tick = { 0, 10 * 1000 * 1000 };

    if (client_fd >= 0)
        close(client_fd);
    client_fd = -1;
    for (int i = 0; reader_pid > 0 && i < 200; i++) {
        if (waitpid(reader_pid, NULL, WNOHANG) != 0)
            reader_pid = -1;
        else
            nanosleep(&tick, NULL);
    }
    if (reader_pid > 0)
        log_warn("privileged reader (pid %d) has not exited; it ends with tlsterm",
                 (int)reader_pid);
    reader_pid = -1;
    files_set_reader(files_read_direct);
    files_set_lister(files_list_direct);
}
