/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The systemd fd store and LISTEN_FDS, see fdstore.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "macro.h"

#include "system/fdstore.h"

static bool fdname_char_ok(char c) {
        return c >= ' ' && c <= '~' && c != ':';
}

/* Copy @s into @buf at @*pos with ':' -> '/'; a '/' or an unprintable byte in @s is refused. */
static int put_encoded(char *buf, size_t size, size_t *pos, const char *s) {
        for (; *s; s++) {
                char c = *s == ':' ? '/' : *s;
                if (*s == '/' || !fdname_char_ok(c))
                        return -EINVAL;
                if (*pos + 1 >= size)
                        return -ENAMETOOLONG;
                buf[(*pos)++] = c;
        }
        buf[*pos] = 0;
        return 0;
}

static int put_plain(char *buf, size_t size, size_t *pos, const char *s) {
        size_t n = strlen(s);
        if (*pos + n >= size)
                return -ENAMETOOLONG;
        memcpy(buf + *pos, s, n + 1);
        *pos += n;
        return 0;
}

int fdstore_name_session(const char *session, char *buf, size_t size) {
        size_t pos = 0;
        int r;

        if (!session || !session[0])
                return -EINVAL;
        r = put_plain(buf, MIN(size, (size_t) FDSTORE_NAME_MAX + 1), &pos, "ses/");
        if (r < 0)
                return r;
        return put_encoded(buf, MIN(size, (size_t) FDSTORE_NAME_MAX + 1), &pos, session);
}

int fdstore_name_item(const char *vm, const char *label, char *buf, size_t size) {
        size_t pos = 0, lim = MIN(size, (size_t) FDSTORE_NAME_MAX + 1);
        int r;

        if (!vm || !vm[0] || !label || !label[0] || strchr(vm, ':'))
                return -EINVAL;
        r = put_plain(buf, lim, &pos, "item/");
        if (r >= 0)
                r = put_encoded(buf, lim, &pos, vm);
        if (r >= 0)
                r = put_plain(buf, lim, &pos, "/");
        if (r >= 0)
                r = put_encoded(buf, lim, &pos, label);
        return r;
}

static int copy_decoded(const char *s, size_t n, char *out, size_t size) {
        if (n == 0 || n >= size)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                out[i] = s[i] == '/' ? ':' : s[i];
        out[n] = 0;
        return 0;
}

int fdstore_name_parse(const char *fdname, const char **ret_kind, char *a, size_t a_size, char *b, size_t b_size) {
        if (strcmp(fdname, FDSTORE_STATE) == 0) {
                *ret_kind = "state";
                return 0;
        }
        if (strncmp(fdname, "ses/", 4) == 0) {
                *ret_kind = "ses";
                return copy_decoded(fdname + 4, strlen(fdname + 4), a, a_size);
        }
        if (strncmp(fdname, "item/", 5) == 0) {
                const char *vm = fdname + 5, *slash = strchr(vm, '/');
                int r;
                if (!slash)
                        return -EINVAL;
                *ret_kind = "item";
                r = copy_decoded(vm, (size_t) (slash - vm), a, a_size);
                if (r < 0)
                        return r;
                return copy_decoded(slash + 1, strlen(slash + 1), b, b_size);
        }
        return -EINVAL;
}

bool fdstore_enabled(void) {
        const char *e = getenv("NOTIFY_SOCKET");
        return e && e[0];
}

int fdstore_push(const char *fdname, int fd) {
        char msg[32 + FDSTORE_NAME_MAX];
        int r;

        if (!fdstore_enabled())
                return 0;
        if (snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", fdname) >= (int) sizeof(msg))
                return -ENAMETOOLONG;
        r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
        if (r < 0)
                return r;
        return r == 0 ? -ENOTCONN : 0;
}

int fdstore_remove(const char *fdname) {
        char msg[32 + FDSTORE_NAME_MAX];
        int r;

        if (!fdstore_enabled())
                return 0;
        if (snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", fdname) >= (int) sizeof(msg))
                return -ENAMETOOLONG;
        r = sd_notify(false, msg);
        if (r < 0)
                return r;
        return r == 0 ? -ENOTCONN : 0;
}

int fdstore_barrier(uint64_t timeout_usec) {
        if (!fdstore_enabled())
                return 0;
        return sd_notify_barrier(false, timeout_usec);
}

int listen_fds_take(ListenFds *ret) {
        char **names = NULL;
        int n;

        *ret = (ListenFds) {};
        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                free(names);
                return n;
        }
        ret->fds = calloc((size_t) n, sizeof(int));
        if (!ret->fds) {
                for (int i = 0; i < n; i++) {
                        (void) close(SD_LISTEN_FDS_START + i);
                        free(names ? names[i] : NULL);
                }
                free(names);
                return -ENOMEM;
        }
        ret->n = (size_t) n;
        ret->names = names;
        for (int i = 0; i < n; i++) {
                ret->fds[i] = SD_LISTEN_FDS_START + i;
                (void) fcntl(ret->fds[i], F_SETFD, FD_CLOEXEC);
        }
        return n;
}

int listen_fds_pop(ListenFds *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (l->fds[i] >= 0 && l->names && l->names[i] && strcmp(l->names[i], name) == 0)
                        return TAKE_FD(l->fds[i]);
        return -ENOENT;
}

size_t listen_fds_done(ListenFds *l) {
        size_t closed = 0;

        for (size_t i = 0; i < l->n; i++) {
                if (l->fds[i] >= 0) {
                        (void) close(l->fds[i]);
                        closed++;
                }
                if (l->names)
                        free(l->names[i]);
        }
        free(l->names);
        free(l->fds);
        *l = (ListenFds) {};
        return closed;
}
