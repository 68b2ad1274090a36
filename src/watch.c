/* SPDX-License-Identifier: BSD-2-Clause */
/* watch.c - reload when a certificate, key, CRL or ticket-key file
 * changes (watch.h).
 *
 * inotify watches the directory of every such file, as named in the
 * config and as its symlinks resolve: a file replaced by rename (certbot,
 * `tlsterm -k`), written in place, or reached through a swapped symlink
 * (Kubernetes updates a mounted Secret by renaming its "..data" link) all
 * show up there.  An event only starts the debounce timer; when it fires,
 * the files' identities (device, inode, size, mtime) are compared with
 * those taken before the running generation was loaded, so unrelated files
 * in the same directory (an editor's swap file) reload nothing, and a
 * renewal that writes the certificate and then the key is one reload. */
#include "autoconf.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "watch.h"

#define WATCH_MAX_FILES 4096
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
                    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int err;
};

struct watch {
    struct event_base *base;
    int fd;
    struct event *ev, *timer;
    uint64_t debounce_ms;
    char **files;
    size_t n_files;
    struct file_id *ids;            /* before the running generation loaded */
    watch_reload_fn *reload;
    void *arg;
    bool warned;
};

static void
file_identity(const char *path, struct file_id *id)
{
    struct stat st;

    memset(id, 0, sizeof(*id));
    if (stat(path, &st) != 0) {
        id->err = errno;
        return;
    }
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
}

static bool
same_id(const struct file_id *a, const struct file_id *b)
{
    return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void
add_file(struct watch *w, const char *path)
{
    if (path == NULL || w->n_files == WATCH_MAX_FILES)
        return;
    for (size_t i = 0; i < w->n_files; i++)
        if (strcmp(w->files[i], path) == 0)
            return;
    if ((w->files[w->n_files] = strdup(path)) != NULL)
        w->n_files++;
}

/* Every file the config names whose change should reload. */
static void
collect(struct watch *w, const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listener *l = &cfg->listeners[i];
        for (size_t j = 0; j < l->n_certs; j++) {
            add_file(w, l->certs[j].cert_file);
            add_file(w, l->certs[j].key_file);
            add_file(w, l->certs[j].key_passphrase_file);
        }
        add_file(w, l->client_auth.ca_file);
        add_file(w, l->client_auth.crl_file);
    }
    add_file(w, cfg->tls.tickets.key_file);
}

static void
watch_dir_of(struct watch *w, const char *path)
{
    char copy[PATH_MAX];

    snprintf(copy, sizeof(copy), "%s", path);
    if (inotify_add_watch(w->fd, dirname(copy), WATCH_MASK) < 0 && !w->warned) {
        log_warn("watch: cannot watch %s: %s; a change there needs a reload (SIGHUP)",
                 copy, strerror(errno));
        w->warned = true;
    }
}

/* A fresh inotify instance for cfg's files.  A file the old set had keeps
 * the identity taken before the load (watch_before_reload), so a change
 * made while it loaded still counts; a new one is taken as it is now. */
static int
watch_arm(struct watch *w, const struct config *cfg)
{
    char **old = w->files, real[PATH_MAX];
    struct file_id *old_ids = w->ids;
    size_t n_old = w->n_files;

    w->files = calloc(WATCH_MAX_FILES, sizeof(*w->files));
    w->ids = calloc(WATCH_MAX_FILES, sizeof(*w->ids));
    w->n_files = 0;
    if (w->files == NULL || w->ids == NULL) {
        free(w->files);
        free(w->ids);
        w->files = old, w->ids = old_ids, w->n_files = n_old;
        return -1;
    }
    collect(w, cfg);
    for (size_t i = 0; i < w->n_files; i++) {
        size_t j = 0;
        while (j < n_old && strcmp(old[j], w->files[i]) != 0)
            j++;
        if (j < n_old)
            w->ids[i] = old_ids[j];
        else
            file_identity(w->files[i], &w->ids[i]);
    }
    for (size_t j = 0; j < n_old; j++)
        free(old[j]);
    free(old);
    free(old_ids);
    if (w->ev != NULL) {
        event_free(w->ev);
        w->ev = NULL;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        log_warn("watch: inotify: %s; file changes need a reload (SIGHUP)", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < w->n_files; i++) {
        watch_dir_of(w, w->files[i]);
        if (realpath(w->files[i], real) != NULL && strcmp(real, w->files[i]) != 0)
            watch_dir_of(w, real);
    }
    return 0;
}

void
watch_before_reload(struct watch *w)
{
    for (size_t i = 0; w != NULL && i < w->n_files; i++)
        file_identity(w->files[i], &w->ids[i]);
}

static const char *
changed_file(const struct watch *w)
{
    struct file_id now;

    for (size_t i = 0; i < w->n_files; i++) {
        file_identity(w->files[i], &now);
        if (!same_id(&now, &w->ids[i]))
            return w->files[i];
    }
    return NULL;
}

static void
on_quiet(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    const char *f = changed_file(w);
    char name[PATH_MAX];

    (void)fd;
    (void)what;
    if (f == NULL) {
        log_debug("watch: a change in a watched directory, none in the configuration's files");
        return;
    }
    snprintf(name, sizeof(name), "%s", f);
    log_info("watch: %s changed; reloading", name);
    w->reload(w->arg);
}

static void
on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct timeval tv = { (time_t)(w->debounce_ms / 1000),
                          (suseconds_t)(w->debounce_ms % 1000) * 1000 };

    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    evtimer_add(w->timer, &tv);         /* restarts: the last event counts */
}

static int
watch_start_events(struct watch *w)
{
    w->ev = event_new(w->base, w->fd, EV_READ | EV_PERSIST, on_inotify, w);
    return w->ev != NULL ? event_add(w->ev, NULL) : -1;
}

struct watch *
watch_new(struct event_base *base, const struct config *cfg, watch_reload_fn *reload,
          void *arg)
{
    struct watch *w;

    if (!cfg->watch.enabled)
        return NULL;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return NULL;
    w->base = base;
    w->fd = -1;
    w->reload = reload;
    w->arg = arg;
    w->timer = evtimer_new(base, on_quiet, w);
    if (w->timer == NULL) {
        watch_free(w);
        return NULL;
    }
    watch_update(w, cfg);
    return w;
}

void
watch_update(struct watch *w, const struct config *cfg)
{
    if (w == NULL)
        return;
    w->debounce_ms = cfg->watch.debounce_ms;
    if (watch_arm(w, cfg) == 0 && watch_start_events(w) == 0)
        log_debug("watch: %zu file(s) watched for changes", w->n_files);
}

void
watch_free(struct watch *w)
{
    if (w == NULL)
        return;
    if (w->ev != NULL)
        event_free(w->ev);
    if (w->timer != NULL)
        event_free(w->timer);
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->n_files; i++)
        free(w->files[i]);
    free(w->files);
    free(w->ids);
    free(w);
}
