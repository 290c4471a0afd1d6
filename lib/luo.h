/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Access to the Live Update Orchestrator: opening /dev/liveupdate, detecting which
 * kernel ABI answers (spec §3.4), and one API for sessions and files over the upstream
 * session ABI and the LUO v4 ABI the VFIO live update RFC tree was built on.
 *
 * Every function returns 0 (or a non-negative value) on success and a negative errno
 * on failure; the kernel's errno is passed through unchanged so callers can tell
 * EEXIST from ENOSPC from EBUSY. Nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define LUO_DEVICE_PATH      "/dev/liveupdate"
#define LUO_NAME_MAX         63   /* upstream: 64 bytes with NUL */
#define LUO_V4_NAME_MAX      55   /* v4 CREATE_SESSION: 56 bytes with NUL */
#define LUO_FILES_PER_SESSION 128 /* upstream limit with 4 KiB pages (ENOSPC beyond) */

typedef enum LuoAbi {
        LUO_ABI_UNKNOWN = 0,
        LUO_ABI_UPSTREAM,     /* session ABI (torvalds, linux-mm) */
        LUO_ABI_V4,           /* 2025-09 v4 series: sessions + global/session state machines */
        LUO_ABI_V1,           /* soleen "v1" global state machine: detected, not supported */
        LUO_ABI_G1,           /* googleprodkernel SET_EVENT ABI: detected, not supported */
        _LUO_ABI_MAX,
} LuoAbi;

/* v4 global and per-session states (same numbering as the kernel's). */
typedef enum LuoState {
        LUO_STATE_UNDEFINED = 0,
        LUO_STATE_NORMAL    = 1,
        LUO_STATE_PREPARED  = 2,
        LUO_STATE_FROZEN    = 3,
        LUO_STATE_UPDATED   = 4,
} LuoState;

typedef struct Luo Luo;

/*
 * luo_open() - open the LUO device and detect its ABI.
 * @path: device node, NULL for /dev/liveupdate.
 * @ret:  on success, a new handle owning the device fd.
 *
 * Returns 0, or: -ENOENT no LUO in this kernel (config, liveupdate=on or KHO missing);
 * -EBUSY another process owns the device; -EIO the incoming live update state could not
 * be deserialised (sticky for this boot); -EACCES permission (v1 without CAP_SYS_ADMIN);
 * -EPROTONOSUPPORT the device answers an ABI this library does not drive (v1, G1) —
 * in that case *ret is still NULL; -ENOTTY @path is not a LUO device at all (every
 * probe answered ENOTTY, e.g. /dev/null or a regular file). Errors of open() itself
 * (-EISDIR, -ENXIO, ...) are passed through.
 */
int luo_open(const char *path, Luo **ret);

/* luo_open_fd() - like luo_open() on an fd the caller already opened (takes ownership on success). */
int luo_open_fd(int fd, Luo **ret);

/* luo_free() - close the device fd. Session fds are separate and stay valid. Returns NULL. */
Luo *luo_free(Luo *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Luo *, luo_free);

/*
 * luo_detect_abi() - side-effect-free ABI probe (spec §3.4) on an open device fd.
 * Never issues 0xBA04-0xBA07. -ENOTTY if the fd answers none of the LUO numbers.
 */
int luo_detect_abi(int device_fd, LuoAbi *ret);

LuoAbi luo_get_abi(const Luo *l);
int luo_get_fd(const Luo *l);
const char *luo_abi_to_string(LuoAbi abi);        /* "upstream", "v4", "v1", "g1", "unknown" */
int luo_abi_from_string(const char *s, LuoAbi *ret);
const char *luo_state_to_string(LuoState s);      /* "normal", "prepared", ... */

/* Longest session name accepted by this ABI for CREATE_SESSION (63 upstream, 55 v4). */
size_t luo_session_name_max(const Luo *l);

/*
 * luo_session_create() - create an outgoing session.
 * Names are validated here before the kernel sees them: non-empty, at most
 * luo_session_name_max() bytes, printable ASCII without '/', else -EINVAL.
 * Kernel errors: -EEXIST name in use, -ENOMEM too many sessions, -EMFILE.
 * On success *ret_fd is the new O_CLOEXEC session fd.
 */
int luo_session_create(Luo *l, const char *name, int *ret_fd);

/*
 * luo_session_retrieve() - retrieve an incoming session after a live update.
 * -ENOENT no such incoming session (also on a cold boot), -EINVAL already retrieved
 * or finished; -EBADMSG where the kernel has GET_NAME and names the session it handed over
 * differently (the fd is closed: never expected of a correct kernel).
 */
int luo_session_retrieve(Luo *l, const char *name, int *ret_fd);

/*
 * luo_session_files_max() - how many files one session takes, as far as can be told without
 * side effects: LUO_FILES_PER_SESSION on the v4 ABI and on an upstream kernel without
 * SESSION_GET_NAME (Linux 7.1), 0 (no limit) where GET_NAME answered (7.2, which removed the
 * limit). Known once a session was created or retrieved; before that the limit is assumed. A
 * kernel may still refuse a file with -ENOSPC: preserving must handle it either way.
 */
unsigned luo_session_files_max(const Luo *l);


/*
 * luo_session_preserve_fd() - hand @fd to the kernel for preservation under @token.
 * The kernel takes its own reference; the caller may close @fd afterwards.
 * -EEXIST token used in this session, -ENOSPC session full, -EBADF bad fd, -ENOENT no
 * handler for this kind of file, -EBUSY file preserved elsewhere (or v4 state), -ENOMEM.
 */
int luo_session_preserve_fd(Luo *l, int session_fd, int fd, uint64_t token);

/*
 * luo_session_unpreserve_fd() - v4 only: drop one preserved file.
 * Upstream has no such ioctl (close the session instead): -EOPNOTSUPP.
 */
int luo_session_unpreserve_fd(Luo *l, int session_fd, uint64_t token);

/*
 * luo_session_retrieve_fd() - get a preserved file back (RETRIEVE_FD / v4 RESTORE_FD).
 * -ENOENT unknown token; a handler error (e.g. -ENODEV for a VFIO device that is gone)
 * is sticky: every later call for that token fails the same way.
 */
int luo_session_retrieve_fd(Luo *l, int session_fd, uint64_t token, int *ret_fd);

/*
 * luo_session_finish() - release an incoming session's files to their new owners.
 * -EBUSY while a file cannot finish yet (a VFIO device not retrieved and bound);
 * nothing is released then, call again later. v4: session FINISH event.
 */
int luo_session_finish(Luo *l, int session_fd);

/*
 * luo_session_get_name() - the session's name from the kernel (SESSION_GET_NAME: mainline
 * since Linux 7.2, earlier in the linux-mm tree); -EOPNOTSUPP where the kernel lacks it (7.1,
 * v4). The answer is remembered; luo_session_create() asks once, on the first session.
 */
int luo_session_get_name(Luo *l, int session_fd, char ret_name[static 64]);

/* luo_session_get_state() - v4 only (-EOPNOTSUPP upstream): state and incoming flag. */
int luo_session_get_state(Luo *l, int session_fd, LuoState *ret_state, bool *ret_incoming);

/* luo_session_set_event() - v4 only: per-session PREPARE/FREEZE/FINISH/CANCEL (0..3). */
int luo_session_set_event(Luo *l, int session_fd, unsigned event);

/* luo_get_state() - v4 global state; upstream has no global state machine: -EOPNOTSUPP. */
int luo_get_state(Luo *l, LuoState *ret);

/*
 * Global events. Upstream has none (the reboot syscall is the trigger), so these are
 * successful no-ops there; on v4 they send the kernel's PREPARE/CANCEL/FINISH event.
 */
int luo_prepare(Luo *l);
int luo_cancel(Luo *l);
int luo_finish(Luo *l);
