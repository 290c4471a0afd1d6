/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The LUO v4 ABI (spec §3.3, the base of the VFIO RFC): sessions plus a global and
 * a per-session state machine, UNPRESERVE_FD, SESSION_GET_STATE and the event
 * ioctls. VFIO follows the RFC: any cdev fd is accepted and the freeze disables
 * interrupts itself instead of failing.
 */
#include <errno.h>
#include <string.h>

#include "emu.h"
#include "lu/liveupdate-v4.h"

struct v4_op {
        unsigned cmd;
        uint32_t size, min_size;
};

static const struct v4_op dev_ops[] = {
        { LUO_V4_IOCTL_GET_STATE, sizeof(struct luo_v4_get_state), sizeof(struct luo_v4_get_state) },
        { LUO_V4_IOCTL_SET_EVENT, sizeof(struct luo_v4_set_event), sizeof(struct luo_v4_set_event) },
        { LUO_V4_IOCTL_CREATE_SESSION, sizeof(struct luo_v4_create_session), sizeof(struct luo_v4_create_session) },
        { LUO_V4_IOCTL_RETRIEVE_SESSION, sizeof(struct luo_v4_retrieve_session),
          sizeof(struct luo_v4_retrieve_session) },
};

static const struct v4_op session_ops[] = {
        { LUO_V4_SESSION_PRESERVE_FD, sizeof(struct luo_v4_session_preserve_fd),
          sizeof(struct luo_v4_session_preserve_fd) },
        { LUO_V4_SESSION_UNPRESERVE_FD, sizeof(struct luo_v4_session_unpreserve_fd),
          sizeof(struct luo_v4_session_unpreserve_fd) },
        { LUO_V4_SESSION_RESTORE_FD, sizeof(struct luo_v4_session_restore_fd),
          sizeof(struct luo_v4_session_restore_fd) },
        { LUO_V4_SESSION_GET_STATE, sizeof(struct luo_v4_session_get_state),
          sizeof(struct luo_v4_session_get_state) },
        { LUO_V4_SESSION_SET_EVENT, sizeof(struct luo_v4_session_set_event),
          sizeof(struct luo_v4_session_set_event) },
};

static int dispatch(struct call *c, const struct v4_op *ops, size_t n, unsigned base, unsigned cmd,
                    uint64_t arg, void *buf, uint32_t *usize) {
        unsigned nr = cmd & 0xff;
        const struct v4_op *op;
        int r;

        if (nr < base || nr - base >= n)
                return -EINVAL;
        if (call_read(c, arg, usize, sizeof(*usize)) < 0)
                return -EFAULT;
        op = &ops[nr - base];
        if (op->cmd != cmd)
                return -ENOTTY;
        if (*usize < op->min_size)
                return -EINVAL;
        r = user_struct_in(c, arg, buf, op->size, *usize);
        if (r < 0)
                return r;
        return (int) (nr - base);
}


void luo_v4_boot(bool handed_over) {
        emu.v4_state = handed_over ? LUO_V4_STATE_UPDATED : LUO_V4_STATE_NORMAL;
}

static int global_event(uint32_t event) {
        struct session *s, *next;

        switch (event) {
        case LUO_V4_EVENT_PREPARE:
                if (emu.v4_state != LUO_V4_STATE_NORMAL)
                        return -EINVAL;
                for (s = luo_outgoing.head; s; s = s->next)
                        if (s->v4_state == LUO_V4_STATE_NORMAL)
                                s->v4_state = LUO_V4_STATE_PREPARED;
                emu.v4_state = LUO_V4_STATE_PREPARED;
                return 0;
        case LUO_V4_EVENT_CANCEL:
                if (emu.v4_state != LUO_V4_STATE_PREPARED && emu.v4_state != LUO_V4_STATE_FROZEN)
                        return -EINVAL;
                for (s = luo_outgoing.head; s; s = s->next)
                        s->v4_state = LUO_V4_STATE_NORMAL;
                emu.v4_state = LUO_V4_STATE_NORMAL;
                return 0;
        case LUO_V4_EVENT_FINISH:
                if (emu.v4_state != LUO_V4_STATE_UPDATED)
                        return -EINVAL;
                /* All or nothing: every retrieved session must be able to finish. */
                for (s = luo_incoming.head; s; s = s->next)
                        if (s->retrieved && !session_can_finish(s))
                                return -EBUSY;
                for (s = luo_incoming.head; s; s = next) {
                        next = s->next;
                        if (!s->retrieved) {
                                session_drop_incoming(s);       /* never claimed: released */
                                continue;
                        }
                        (void) session_finish(s);
                        s->v4_state = LUO_V4_STATE_NORMAL;
                }
                emu.v4_state = LUO_V4_STATE_NORMAL;
                return 0;
        default:
                return -EOPNOTSUPP;
        }
}

static void dev_ioctl(struct call *c, unsigned cmd, uint64_t arg) {
        union {
                struct luo_v4_get_state get;
                struct luo_v4_set_event ev;
                struct luo_v4_create_session create;
                struct luo_v4_retrieve_session retrieve;
        } a;
        char name[LUO_V4_RETRIEVE_NAME_LENGTH];
        struct session *s;
        uint32_t usize;
        int idx, r;

        idx = dispatch(c, dev_ops, ELEMENTSOF(dev_ops), 0, cmd, arg, &a, &usize);
        if (idx < 0)
                return call_reply(c, idx);
        switch (idx) {
        case 0:
                a.get.state = emu.v4_state;
                return call_reply(c, luo_respond(c, arg, &a, sizeof(a.get), usize));
        case 1:
                r = global_event(a.ev.event);
                if (r < 0)
                        return call_reply(c, r);
                return call_reply(c, luo_respond(c, arg, &a, sizeof(a.ev), usize));
        case 2:
                r = call_fd_room(c);
                if (r < 0)
                        return call_reply(c, r);
                memcpy(name, a.create.name, LUO_V4_SESSION_NAME_LENGTH);
                name[LUO_V4_SESSION_NAME_LENGTH - 1] = 0;
                r = fail_check(FAIL_CREATE_SESSION);
                if (r < 0)
                        return call_reply(c, r);
                if (emu.v4_state == LUO_V4_STATE_PREPARED || emu.v4_state == LUO_V4_STATE_FROZEN)
                        return call_reply(c, -EBUSY);
                if (luo_outgoing.count >= LUO_SESSIONS_MAX)
                        return call_reply(c, -ENOMEM);
                if (session_find(&luo_outgoing, name))
                        return call_reply(c, -EEXIST);
                s = session_new(name, false);
                if (!s)
                        return call_reply(c, -ENOMEM);
                r = luo_session_install(c, s, arg, &a, sizeof(a.create), usize, &a.create.fd);
                if (r < 0) {
                        session_unlink_free(s);
                        return call_reply(c, r);
                }
                return call_reply(c, 0);
        default:
                r = call_fd_room(c);
                if (r < 0)
                        return call_reply(c, r);
                r = fail_check(FAIL_RETRIEVE_SESSION);
                if (r < 0)
                        return call_reply(c, r);
                s = session_find(&luo_incoming, (const char *) a.retrieve.name);
                if (!s)
                        return call_reply(c, -ENOENT);
                if (s->retrieved)
                        return call_reply(c, -EINVAL);
                r = luo_session_install(c, s, arg, &a, sizeof(a.retrieve), usize, &a.retrieve.fd);
                if (r < 0)
                        return call_reply(c, r);
                s->retrieved = true;
                return call_reply(c, 0);
        }
}

static bool may_change_files(struct session *s) {
        return (emu.v4_state == LUO_V4_STATE_NORMAL || emu.v4_state == LUO_V4_STATE_UPDATED) &&
               s->v4_state == LUO_V4_STATE_NORMAL;
}

static int session_event(struct session *s, uint32_t event) {
        int r;

        switch (event) {
        case LUO_V4_EVENT_PREPARE:
                if (s->v4_state != LUO_V4_STATE_NORMAL)
                        return -EBUSY;
                s->v4_state = LUO_V4_STATE_PREPARED;
                return 0;
        case LUO_V4_EVENT_FREEZE:
                if (s->v4_state != LUO_V4_STATE_PREPARED)
                        return -EBUSY;
                r = fail_check(FAIL_FREEZE);
                if (r == 0)
                        r = session_freeze(s, true);
                if (r < 0) {
                        s->v4_state = LUO_V4_STATE_NORMAL;
                        return r;
                }
                s->v4_state = LUO_V4_STATE_FROZEN;
                return 0;
        case LUO_V4_EVENT_CANCEL:
                if (s->v4_state != LUO_V4_STATE_PREPARED && s->v4_state != LUO_V4_STATE_FROZEN)
                        return -EBUSY;
                s->v4_state = LUO_V4_STATE_NORMAL;
                return 0;
        case LUO_V4_EVENT_FINISH:
                if (s->v4_state != LUO_V4_STATE_UPDATED)
                        return -EBUSY;
                r = fail_check(FAIL_FINISH);
                if (r == 0)
                        r = session_finish(s);
                if (r < 0)
                        return r;
                s->v4_state = LUO_V4_STATE_NORMAL;
                return 0;
        default:
                return -EINVAL;
        }
}

static void session_ioctl(struct call *c, struct session *s, unsigned cmd, uint64_t arg) {
        union {
                struct luo_v4_session_preserve_fd preserve;
                struct luo_v4_session_unpreserve_fd unpreserve;
                struct luo_v4_session_restore_fd restore;
                struct luo_v4_session_get_state get;
                struct luo_v4_session_set_event ev;
        } a;
        uint32_t usize;
        int idx, r, lfd, fd;

        idx = dispatch(c, session_ops, ELEMENTSOF(session_ops), 0x40, cmd, arg, &a, &usize);
        if (idx < 0)
                return call_reply(c, idx);
        if (!s)
                return call_reply(c, -EINVAL);
        switch (idx) {
        case 0:
                if (!may_change_files(s))
                        return call_reply(c, -EBUSY);
                r = session_preserve_fd(c, s, a.preserve.fd, a.preserve.token);
                if (r < 0)
                        return call_reply(c, r);
                return call_reply(c, luo_respond(c, arg, &a, sizeof(a.preserve), usize));
        case 1:
                if (a.unpreserve.reserved)
                        return call_reply(c, -EOPNOTSUPP);
                if (!may_change_files(s))
                        return call_reply(c, -EBUSY);
                r = session_unpreserve_token(s, a.unpreserve.token);
                if (r < 0)
                        return call_reply(c, r);
                return call_reply(c, luo_respond(c, arg, &a, sizeof(a.unpreserve), usize));
        case 2:
                if (emu.v4_state != LUO_V4_STATE_UPDATED || s->v4_state != LUO_V4_STATE_UPDATED)
                        return call_reply(c, -EBUSY);
                r = call_fd_room(c);
                if (r < 0)
                        return call_reply(c, r);
                if (luo_respond(c, arg, &a, sizeof(a.restore), usize) < 0)
                        return call_reply(c, -EFAULT);
                r = session_retrieve_fd(c, s, a.restore.token, &lfd);
                if (r < 0)
                        return call_reply(c, r);
                if (!call_valid(c))
                        return;
                fd = call_addfd(c, lfd, true);
                if (fd < 0)
                        return call_reply(c, fd);
                a.restore.fd = fd;
                (void) luo_respond(c, arg, &a, sizeof(a.restore), usize);
                return call_reply(c, 0);
        case 3:
                /* The v4 header documents `incoming` as an input (text inherited from the
                 * per-fd GET_FD_STATE); the emulator reports the session's direction in
                 * it, which equals the input of any caller that passes it correctly. */
                a.get.incoming = s->incoming;
                a.get.state = s->v4_state;
                return call_reply(c, luo_respond(c, arg, &a, sizeof(a.get), usize));
        default:
                r = session_event(s, a.ev.event);
                if (r < 0)
                        return call_reply(c, r);
                return call_reply(c, luo_respond(c, arg, &a, sizeof(a.ev), usize));
        }
}

void luo_v4_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg) {
        if (o->kind == OBJ_LUO_DEV)
                dev_ioctl(c, cmd, arg);
        else
                session_ioctl(c, o->session, cmd, arg);
}

int luo_v4_freeze_all(void) {
        struct session *s;
        int r;

        if (!emu.luo_enabled)
                return 0;
        if (emu.v4_state != LUO_V4_STATE_PREPARED && emu.v4_state != LUO_V4_STATE_FROZEN) {
                /* Global NORMAL: nothing is handed over (like v1; unverified for v4). */
                for (s = luo_outgoing.head; s; s = s->next)
                        s->v4_state = LUO_V4_STATE_NORMAL;
                return 0;
        }
        r = fail_check(FAIL_FREEZE);
        if (r < 0)
                return r;
        for (s = luo_outgoing.head; s; s = s->next) {
                if (s->v4_state != LUO_V4_STATE_PREPARED)
                        continue;
                r = session_freeze(s, true);
                if (r < 0)
                        return r;
                s->v4_state = LUO_V4_STATE_FROZEN;
        }
        emu.v4_state = LUO_V4_STATE_FROZEN;
        return 0;
}
