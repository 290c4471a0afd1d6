/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The upstream session ABI (spec §1): the table-driven, size-prefixed ioctl
 * dispatchers of /dev/liveupdate and of session files, with the kernel's check
 * order (nr range → EINVAL, size read → EFAULT, cmd mismatch → ENOTTY, a session
 * ioctl of the wrong direction → EINVAL, short size → EINVAL, non-zero tail → E2BIG).
 *
 * Direction (Linux 7.1.8 luo_session.c, luo_ioctl_type_valid()): PRESERVE_FD only on an
 * outgoing session, RETRIEVE_FD and FINISH only on an incoming (retrieved) one.
 *
 * --kernel=7.2 (spec §8): SESSION_GET_NAME (0x43) exists, on sessions of either direction
 * (non-zero reserved → EINVAL); the 128-files-per-session and session-count limits are gone.
 * Under 7.1 0x43 is past the table: EINVAL, as any unknown number.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emu.h"
#include "linux/liveupdate.h"

enum { DIR_ANY, DIR_OUTGOING, DIR_INCOMING };

struct luo_op {
        unsigned cmd;
        uint32_t size, min_size;
        int dir;
};

static const struct luo_op dev_ops[] = {
        { LIVEUPDATE_IOCTL_CREATE_SESSION, sizeof(struct liveupdate_ioctl_create_session),
          sizeof(struct liveupdate_ioctl_create_session) },
        { LIVEUPDATE_IOCTL_RETRIEVE_SESSION, sizeof(struct liveupdate_ioctl_retrieve_session),
          sizeof(struct liveupdate_ioctl_retrieve_session) },
};

static const struct luo_op session_ops[] = {
        { LIVEUPDATE_SESSION_PRESERVE_FD, sizeof(struct liveupdate_session_preserve_fd),
          sizeof(struct liveupdate_session_preserve_fd), DIR_OUTGOING },
        { LIVEUPDATE_SESSION_RETRIEVE_FD, sizeof(struct liveupdate_session_retrieve_fd),
          sizeof(struct liveupdate_session_retrieve_fd), DIR_INCOMING },
        { LIVEUPDATE_SESSION_FINISH, sizeof(struct liveupdate_session_finish),
          sizeof(struct liveupdate_session_finish), DIR_INCOMING },
        /* 7.2 only: the dispatcher sees one entry less under 7.1 (session_ops_n()) */
        { LIVEUPDATE_SESSION_GET_NAME, sizeof(struct liveupdate_session_get_name),
          sizeof(struct liveupdate_session_get_name), DIR_ANY },
};

static size_t session_ops_n(void) {
        return opt.kernel == EMU_KERNEL_7_2 ? ELEMENTSOF(session_ops) : ELEMENTSOF(session_ops) - 1;
}

/*
 * Common front half of the dispatchers; returns the op index or -errno. @retrieved:
 * whether the session is an incoming one (ignored for ops of DIR_ANY).
 */
static int luo_dispatch(struct call *c, const struct luo_op *ops, size_t n, unsigned base,
                        unsigned cmd, uint64_t arg, void *buf, uint32_t *usize, bool retrieved) {
        unsigned nr = cmd & 0xff;
        const struct luo_op *op;
        int r;

        if (nr < base || nr - base >= n)
                return -EINVAL;
        if (call_read(c, arg, usize, sizeof(*usize)) < 0)
                return -EFAULT;
        op = &ops[nr - base];
        if (op->cmd != cmd)
                return -ENOTTY;
        if ((op->dir == DIR_OUTGOING && retrieved) || (op->dir == DIR_INCOMING && !retrieved))
                return -EINVAL;
        if (*usize < op->min_size)
                return -EINVAL;
        r = user_struct_in(c, arg, buf, op->size, *usize);
        if (r < 0)
                return r;
        return (int) (nr - base);
}


static void dev_ioctl(struct call *c, unsigned cmd, uint64_t arg) {
        struct liveupdate_ioctl_create_session a;
        char name[LIVEUPDATE_SESSION_NAME_LENGTH];
        struct session *s;
        uint32_t usize;
        int r, idx;

        idx = luo_dispatch(c, dev_ops, ELEMENTSOF(dev_ops), 0, cmd, arg, &a, &usize, false);
        if (idx < 0)
                return call_reply(c, idx);
        /* The fd is reserved before anything else (luo_core.c): EMFILE comes first. */
        r = call_fd_room(c);
        if (r < 0)
                return call_reply(c, r);
        memcpy(name, a.name, sizeof(name));
        name[sizeof(name) - 1] = 0;

        if (idx == 0) {
                /* luo_session_create() (7.1.8): an empty name, or none that ends within
                 * the 64 bytes, is EINVAL (checked before the session limit and duplicates). */
                size_t len = strnlen((const char *) a.name, sizeof(a.name));
                if (len == 0 || len >= sizeof(a.name))
                        return call_reply(c, -EINVAL);
                r = fail_check(FAIL_CREATE_SESSION);
                if (r < 0)
                        return call_reply(c, r);
                if (luo_has_limits() && luo_outgoing.count >= LUO_SESSIONS_MAX)
                        return call_reply(c, -ENOMEM);
                if (session_find(&luo_outgoing, name))
                        return call_reply(c, -EEXIST);
                s = session_new(name, false);
                if (!s)
                        return call_reply(c, -ENOMEM);
                r = luo_session_install(c, s, arg, &a, sizeof(a), usize, &a.fd);
                if (r < 0) {
                        session_unlink_free(s);
                        return call_reply(c, r);
                }
                log_debug("created session \"%s\"", s->name);
                return call_reply(c, 0);
        }

        r = fail_check(FAIL_RETRIEVE_SESSION);
        if (r < 0)
                return call_reply(c, r);
        /* Unlike create, retrieve compares the caller's 64 bytes as they are. */
        s = session_find(&luo_incoming, (const char *) a.name);
        if (!s)
                return call_reply(c, -ENOENT);
        if (s->retrieved)
                return call_reply(c, -EINVAL);
        r = luo_session_install(c, s, arg, &a, sizeof(a), usize, &a.fd);
        if (r < 0)
                return call_reply(c, r);
        s->retrieved = true;
        log_debug("retrieved session \"%s\"", s->name);
        call_reply(c, 0);
}

static void session_ioctl(struct call *c, struct session *s, unsigned cmd, uint64_t arg) {
        union {
                struct liveupdate_session_preserve_fd preserve;
                struct liveupdate_session_retrieve_fd retrieve;
                struct liveupdate_session_finish finish;
                struct liveupdate_session_get_name get_name;
        } a;
        uint32_t usize;
        int r, idx, lfd, fd;

        idx = luo_dispatch(c, session_ops, session_ops_n(), 0x40, cmd, arg, &a, &usize, s && s->retrieved);
        if (idx < 0)
                return call_reply(c, idx);
        if (!s)
                return call_reply(c, -EINVAL);

        switch (idx) {
        case 0:
                r = session_preserve_fd(c, s, a.preserve.fd, a.preserve.token);
                if (r < 0)
                        return call_reply(c, r);
                if (luo_respond(c, arg, &a, sizeof(a.preserve), usize) < 0)
                        return call_reply(c, -EFAULT);
                return call_reply(c, 0);
        case 1:
                r = call_fd_room(c);
                if (r < 0)
                        return call_reply(c, r);
                /* The answer must be writable before the fd is created. */
                if (luo_respond(c, arg, &a, sizeof(a.retrieve), usize) < 0)
                        return call_reply(c, -EFAULT);
                r = session_retrieve_fd(c, s, a.retrieve.token, &lfd);
                if (r < 0)
                        return call_reply(c, r);
                if (!call_valid(c))
                        return;
                fd = call_addfd(c, lfd, true);
                if (fd < 0)
                        return call_reply(c, fd);
                a.retrieve.fd = fd;
                (void) luo_respond(c, arg, &a, sizeof(a.retrieve), usize);
                return call_reply(c, 0);
        case 3:
                if (a.get_name.reserved != 0)
                        return call_reply(c, -EINVAL);
                memset(a.get_name.name, 0, sizeof(a.get_name.name));
                snprintf((char *) a.get_name.name, sizeof(a.get_name.name), "%s", s->name);
                if (luo_respond(c, arg, &a, sizeof(a.get_name), usize) < 0)
                        return call_reply(c, -EFAULT);
                return call_reply(c, 0);
        default:
                r = fail_check(FAIL_FINISH);
                if (r == 0)
                        r = session_finish(s);
                if (r < 0)
                        return call_reply(c, r);
                if (luo_respond(c, arg, &a, sizeof(a.finish), usize) < 0)
                        return call_reply(c, -EFAULT);
                log_debug("finished session \"%s\"", s->name);
                return call_reply(c, 0);
        }
}

void luo_upstream_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg) {
        if (o->kind == OBJ_LUO_DEV)
                dev_ioctl(c, cmd, arg);
        else
                session_ioctl(c, o->session, cmd, arg);
}
