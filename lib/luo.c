/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Live Update Orchestrator device: opening it, finding out which ABI the running
 * kernel speaks, and sessions/files over the upstream and the v4 ABI.
 *
 * The same ioctl numbers mean different things in different ABIs (0xBA41 retrieves a
 * file upstream but unpreserves one on v4), so every call is chosen from the ABI that
 * was detected once at open time; nothing is ever tried "just in case".
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "linux/liveupdate.h"
#include "lu/liveupdate-v4.h"
#include "luo.h"

struct Luo {
        int fd;
        LuoAbi abi;
        int get_name;   /* GET_NAME support: -1 not probed yet, 0 absent, 1 present */
};

/* The largest struct any probe could be read as (spec §3.4). */
#define LUO_PROBE_SIZE 72

static int luo_ioctl(int fd, unsigned long cmd, void *arg) {
        if (ioctl(fd, cmd, arg) < 0)
                return negative_errno();
        return 0;
}

/* Issues one probe with a zeroed buffer whose leading size field is @size; returns 0 or -errno. */
static int probe(int fd, unsigned long cmd, uint32_t size, uint32_t *ret_second) {
        _Alignas(8) uint8_t buf[LUO_PROBE_SIZE] = {};
        uint32_t second;
        int r;

        memcpy(buf, &size, sizeof(size));
        r = luo_ioctl(fd, cmd, buf);
        if (r >= 0 && ret_second) {
                memcpy(&second, buf + sizeof(uint32_t), sizeof(second));
                *ret_second = second;
        }
        return r;
}

int luo_detect_abi(int device_fd, LuoAbi *ret) {
        uint32_t state = 0;
        int r3, r4, r;

        if (!ret)
                return -EINVAL;
        if (device_fd < 0)
                return -EBADF;

        /* Step 2: v1's GET_STATE carries size and direction bits that nothing else uses. */
        r = probe(device_fd, LUO_V1_IOCTL_GET_STATE, sizeof(uint32_t), NULL);
        if (r >= 0) {
                *ret = LUO_ABI_V1;
                return 0;
        }
        if (r == -EBADF || r == -EFAULT)
                return r;

        /* Step 3: v4 GET_STATE; upstream CREATE_SESSION and G1 FD_PRESERVE reject size 8. */
        r3 = probe(device_fd, LUO_V4_IOCTL_GET_STATE, sizeof(struct luo_v4_get_state), &state);
        if (r3 >= 0 && state >= LUO_STATE_NORMAL && state <= LUO_STATE_UPDATED) {
                *ret = LUO_ABI_V4;
                return 0;
        }

        /* Step 4: G1 GET_STATE; upstream has no nr 3, v4 RETRIEVE_SESSION rejects size 8. */
        r4 = probe(device_fd, LUO_G1_IOCTL_GET_STATE, sizeof(struct luo_v4_get_state), NULL);
        if (r4 >= 0) {
                *ret = LUO_ABI_G1;
                return 0;
        }

        /*
         * Step 5: the session ABI answers both probes with EINVAL (size check, table
         * dispatcher). A device that knows none of these numbers answers ENOTTY to all:
         * that is not LUO, and claiming "upstream" for it would only defer the error.
         */
        if (r3 == -EINVAL || r4 == -EINVAL) {
                *ret = LUO_ABI_UPSTREAM;
                return 0;
        }
        if (r4 != -ENOTTY)
                return r4;
        return r3 < 0 ? r3 : -ENOTTY;
}

int luo_open_fd(int fd, Luo **ret) {
        LuoAbi abi;
        Luo *l;
        int r;

        if (!ret)
                return -EINVAL;
        *ret = NULL;
        if (fd < 0)
                return -EBADF;

        r = luo_detect_abi(fd, &abi);
        if (r < 0)
                return r;
        if (abi != LUO_ABI_UPSTREAM && abi != LUO_ABI_V4)
                return -EPROTONOSUPPORT;

        l = malloc(sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (Luo) {
                .fd = fd,
                .abi = abi,
                .get_name = abi == LUO_ABI_UPSTREAM ? -1 : 0,
        };
        *ret = l;
        return 0;
}

int luo_open(const char *path, Luo **ret) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!ret)
                return -EINVAL;
        *ret = NULL;

        fd = open(path ?: LUO_DEVICE_PATH, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();

        r = luo_open_fd(fd, ret);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        return 0;
}

Luo *luo_free(Luo *l) {
        if (!l)
                return NULL;
        safe_close(l->fd);
        free(l);
        return NULL;
}

LuoAbi luo_get_abi(const Luo *l) {
        return l ? l->abi : LUO_ABI_UNKNOWN;
}

int luo_get_fd(const Luo *l) {
        return l ? l->fd : -EINVAL;
}

static const char *const abi_table[_LUO_ABI_MAX] = {
        [LUO_ABI_UNKNOWN]  = "unknown",
        [LUO_ABI_UPSTREAM] = "upstream",
        [LUO_ABI_V4]       = "v4",
        [LUO_ABI_V1]       = "v1",
        [LUO_ABI_G1]       = "g1",
};

const char *luo_abi_to_string(LuoAbi abi) {
        if ((unsigned) abi >= _LUO_ABI_MAX)
                return NULL;
        return abi_table[abi];
}

int luo_abi_from_string(const char *s, LuoAbi *ret) {
        if (!s || !ret)
                return -EINVAL;
        for (unsigned i = 0; i < _LUO_ABI_MAX; i++)
                if (strcmp(s, abi_table[i]) == 0) {
                        *ret = (LuoAbi) i;
                        return 0;
                }
        return -EINVAL;
}

const char *luo_state_to_string(LuoState s) {
        static const char *const table[] = {
                [LUO_STATE_UNDEFINED] = "undefined",
                [LUO_STATE_NORMAL]    = "normal",
                [LUO_STATE_PREPARED]  = "prepared",
                [LUO_STATE_FROZEN]    = "frozen",
                [LUO_STATE_UPDATED]   = "updated",
        };

        if ((unsigned) s >= ELEMENTSOF(table))
                return NULL;
        return table[s];
}

size_t luo_session_name_max(const Luo *l) {
        if (!l)
                return 0;
        return l->abi == LUO_ABI_V4 ? LUO_V4_NAME_MAX : LUO_NAME_MAX;
}

/* Common argument checks: a usable handle and, where given, a plausible session fd. */
static int check_handle(const Luo *l) {
        if (!l)
                return -EINVAL;
        if (l->abi != LUO_ABI_UPSTREAM && l->abi != LUO_ABI_V4)
                return -EOPNOTSUPP;
        return 0;
}

static int check_session(const Luo *l, int session_fd) {
        int r = check_handle(l);
        if (r < 0)
                return r;
        return session_fd < 0 ? -EBADF : 0;
}

/*
 * Names the kernel would take but later tools could not show or put in a path (control
 * characters, '/', non-ASCII) are refused here, so every session name is printable.
 */
static int name_validate(const char *name, size_t max, bool strict) {
        size_t n;

        if (!name)
                return -EINVAL;
        n = strnlen(name, max + 1);
        if (n == 0 || n > max)
                return -EINVAL;
        if (strict)
                for (size_t i = 0; i < n; i++)
                        if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '/')
                                return -EINVAL;
        return 0;
}

/* A kernel that reports success must also hand out an fd; anything else is a broken kernel. */
static int take_returned_fd(int fd, int *ret_fd) {
        if (fd < 0)
                return -EIO;
        *ret_fd = fd;
        return 0;
}

/*
 * CREATE_SESSION and RETRIEVE_SESSION of both ABIs take {size, fd, name[]}; only the name's
 * length and the numbers differ. One buffer with the longest name serves all four, with
 * .size saying which struct the kernel gets.
 */
struct session_name_arg {
        uint32_t size;
        int32_t fd;
        uint8_t name[LIVEUPDATE_SESSION_NAME_LENGTH];
};
#define SAME_PREFIX(t) \
        _Static_assert(offsetof(t, fd) == offsetof(struct session_name_arg, fd) && \
                       offsetof(t, name) == offsetof(struct session_name_arg, name) && \
                       sizeof(((t *) 0)->name) <= LIVEUPDATE_SESSION_NAME_LENGTH, #t)
SAME_PREFIX(struct liveupdate_ioctl_create_session);
SAME_PREFIX(struct liveupdate_ioctl_retrieve_session);
SAME_PREFIX(struct luo_v4_create_session);
SAME_PREFIX(struct luo_v4_retrieve_session);

static int session_name_call(Luo *l, bool create, const char *name, int *ret_fd) {
        struct session_name_arg a = { .fd = -1 };
        unsigned long cmd;
        int r;

        if (l->abi == LUO_ABI_V4) {
                cmd = create ? LUO_V4_IOCTL_CREATE_SESSION : LUO_V4_IOCTL_RETRIEVE_SESSION;
                a.size = create ? sizeof(struct luo_v4_create_session) : sizeof(struct luo_v4_retrieve_session);
        } else {
                cmd = create ? LIVEUPDATE_IOCTL_CREATE_SESSION : LIVEUPDATE_IOCTL_RETRIEVE_SESSION;
                a.size = create ? sizeof(struct liveupdate_ioctl_create_session) : sizeof(struct liveupdate_ioctl_retrieve_session);
        }
        memcpy(a.name, name, strlen(name));   /* validated shorter than the ABI's field */
        r = luo_ioctl(l->fd, cmd, &a);
        return r < 0 ? r : take_returned_fd(a.fd, ret_fd);
}

/*
 * The first session fd tells whether the kernel has GET_NAME (Linux 7.2, spec §8.1): a read of
 * the session's name, which changes nothing in the kernel. Its answer also stands for the
 * kernel's limits (luo_session_files_max()).
 */
static void probe_get_name(Luo *l, int session_fd) {
        char name[LUO_NAME_MAX + 1];

        if (l->abi == LUO_ABI_UPSTREAM && l->get_name < 0)
                (void) luo_session_get_name(l, session_fd, name);
}

int luo_session_create(Luo *l, const char *name, int *ret_fd) {
        int r;

        r = check_handle(l);
        if (r < 0)
                return r;
        if (!ret_fd)
                return -EINVAL;
        r = name_validate(name, luo_session_name_max(l), true);
        if (r < 0)
                return r;
        r = session_name_call(l, true, name, ret_fd);
        if (r >= 0)
                probe_get_name(l, *ret_fd);
        return r;
}

int luo_session_retrieve(Luo *l, const char *name, int *ret_fd) {
        int r;

        r = check_handle(l);
        if (r < 0)
                return r;
        if (!ret_fd)
                return -EINVAL;
        /* Only the length is checked: a session another tool named may be retrieved. */
        r = name_validate(name, LUO_NAME_MAX, false);
        if (r < 0)
                return r;
        r = session_name_call(l, false, name, ret_fd);
        if (r < 0)
                return r;
        /* Where the kernel can say, make sure it handed over the session asked for. */
        if (l->abi == LUO_ABI_UPSTREAM && l->get_name != 0) {
                char got[LUO_NAME_MAX + 1];
                if (luo_session_get_name(l, *ret_fd, got) == 0 && strcmp(got, name) != 0) {
                        *ret_fd = safe_close(*ret_fd);
                        return -EBADMSG;
                }
        }
        return r;
}

unsigned luo_session_files_max(const Luo *l) {
        /* GET_NAME came with 7.2, which has no per-session limit; a kernel with GET_NAME and
         * the limit still answers ENOSPC, which callers handle anyway. */
        if (l && l->abi == LUO_ABI_UPSTREAM && l->get_name == 1)
                return 0;
        return LUO_FILES_PER_SESSION;
}

int luo_session_preserve_fd(Luo *l, int session_fd, int fd, uint64_t token) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;
        if (fd < 0)
                return -EBADF;

        /* Same layout in both ABIs, different command number. */
        if (l->abi == LUO_ABI_V4) {
                struct luo_v4_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };
                return luo_ioctl(session_fd, LUO_V4_SESSION_PRESERVE_FD, &a);
        }

        struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };
        return luo_ioctl(session_fd, LIVEUPDATE_SESSION_PRESERVE_FD, &a);
}

int luo_session_unpreserve_fd(Luo *l, int session_fd, uint64_t token) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;
        if (l->abi != LUO_ABI_V4)
                return -EOPNOTSUPP;

        struct luo_v4_session_unpreserve_fd a = { .size = sizeof(a), .token = token };
        return luo_ioctl(session_fd, LUO_V4_SESSION_UNPRESERVE_FD, &a);
}

int luo_session_retrieve_fd(Luo *l, int session_fd, uint64_t token, int *ret_fd) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;
        if (!ret_fd)
                return -EINVAL;

        if (l->abi == LUO_ABI_V4) {
                struct luo_v4_session_restore_fd a = { .size = sizeof(a), .fd = -1, .token = token };

                r = luo_ioctl(session_fd, LUO_V4_SESSION_RESTORE_FD, &a);
                return r < 0 ? r : take_returned_fd(a.fd, ret_fd);
        }

        struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .fd = -1, .token = token };

        r = luo_ioctl(session_fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &a);
        return r < 0 ? r : take_returned_fd(a.fd, ret_fd);
}

int luo_session_finish(Luo *l, int session_fd) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;

        if (l->abi == LUO_ABI_V4) {
                struct luo_v4_session_set_event a = { .size = sizeof(a), .event = LUO_V4_EVENT_FINISH };
                return luo_ioctl(session_fd, LUO_V4_SESSION_SET_EVENT, &a);
        }

        struct liveupdate_session_finish a = { .size = sizeof(a) };
        return luo_ioctl(session_fd, LIVEUPDATE_SESSION_FINISH, &a);
}

int luo_session_get_name(Luo *l, int session_fd, char ret_name[static 64]) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;
        if (!ret_name)
                return -EINVAL;
        /* On v4, 0xBA43 is SESSION_GET_STATE: never send GET_NAME there. */
        if (l->abi != LUO_ABI_UPSTREAM || l->get_name == 0)
                return -EOPNOTSUPP;

        struct liveupdate_session_get_name a = { .size = sizeof(a) };

        r = luo_ioctl(session_fd, LIVEUPDATE_SESSION_GET_NAME, &a);
        if (r == -EINVAL) {
                /* Upstream's dispatcher says EINVAL for a number it does not know (spec §1.3). */
                l->get_name = 0;
                return -EOPNOTSUPP;
        }
        if (r < 0)
                return r;
        l->get_name = 1;

        memcpy(ret_name, a.name, sizeof(a.name));
        ret_name[sizeof(a.name) - 1] = '\0';
        return 0;
}

int luo_session_get_state(Luo *l, int session_fd, LuoState *ret_state, bool *ret_incoming) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;
        if (!ret_state)
                return -EINVAL;
        if (l->abi != LUO_ABI_V4)
                return -EOPNOTSUPP;

        struct luo_v4_session_get_state a = { .size = sizeof(a) };

        r = luo_ioctl(session_fd, LUO_V4_SESSION_GET_STATE, &a);
        if (r < 0)
                return r;
        *ret_state = (LuoState) a.state;
        if (ret_incoming)
                *ret_incoming = a.incoming != 0;
        return 0;
}

int luo_session_set_event(Luo *l, int session_fd, unsigned event) {
        int r;

        r = check_session(l, session_fd);
        if (r < 0)
                return r;
        if (event > LUO_V4_EVENT_CANCEL)
                return -EINVAL;
        if (l->abi != LUO_ABI_V4)
                return -EOPNOTSUPP;

        struct luo_v4_session_set_event a = { .size = sizeof(a), .event = event };
        return luo_ioctl(session_fd, LUO_V4_SESSION_SET_EVENT, &a);
}

int luo_get_state(Luo *l, LuoState *ret) {
        int r;

        r = check_handle(l);
        if (r < 0)
                return r;
        if (!ret)
                return -EINVAL;
        if (l->abi != LUO_ABI_V4)
                return -EOPNOTSUPP;

        struct luo_v4_get_state a = { .size = sizeof(a) };

        r = luo_ioctl(l->fd, LUO_V4_IOCTL_GET_STATE, &a);
        if (r < 0)
                return r;
        *ret = (LuoState) a.state;
        return 0;
}

static int luo_send_event(Luo *l, uint32_t event) {
        int r;

        r = check_handle(l);
        if (r < 0)
                return r;
        /* Upstream has no global state machine: reboot() itself freezes the sessions. */
        if (l->abi != LUO_ABI_V4)
                return 0;

        struct luo_v4_set_event a = { .size = sizeof(a), .event = event };
        return luo_ioctl(l->fd, LUO_V4_IOCTL_SET_EVENT, &a);
}

int luo_prepare(Luo *l) {
        return luo_send_event(l, LUO_V4_EVENT_PREPARE);
}

int luo_cancel(Luo *l) {
        return luo_send_event(l, LUO_V4_EVENT_CANCEL);
}

int luo_finish(Luo *l) {
        return luo_send_event(l, LUO_V4_EVENT_FINISH);
}
