/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Upstream session-based Live Update Orchestrator ABI (/dev/liveupdate).
 *
 * Written for lu-vfiod from the ABI facts in shared/spec/luo-abi.md §1 (Debian 12's
 * linux-libc-dev predates LUO). Every command is _IO(0xBA, nr); the argument is a
 * struct whose first __u32 is its size as compiled by the caller.
 *
 * The linux-mm extensions GET_NAME and RETRIEVE_INTO_FD are not upstream; they are
 * defined here so that they can be probed, never assumed.
 */
#ifndef LU_UAPI_LINUX_LIVEUPDATE_H
#define LU_UAPI_LINUX_LIVEUPDATE_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define LIVEUPDATE_IOCTL_TYPE            0xBA
#define LIVEUPDATE_SESSION_NAME_LENGTH   64   /* including the terminating NUL */

enum {
        LIVEUPDATE_CMD_CREATE_SESSION      = 0x00,
        LIVEUPDATE_CMD_RETRIEVE_SESSION    = 0x01,
        LIVEUPDATE_CMD_SESSION_PRESERVE_FD = 0x40,
        LIVEUPDATE_CMD_SESSION_RETRIEVE_FD = 0x41,
        LIVEUPDATE_CMD_SESSION_FINISH      = 0x42,
        LIVEUPDATE_CMD_SESSION_GET_NAME    = 0x43, /* linux-mm only */
        LIVEUPDATE_CMD_SESSION_RETRIEVE_INTO_FD = 0x44, /* linux-mm only; 0x44 differs elsewhere */
};

/* Both CREATE_SESSION and RETRIEVE_SESSION use this layout. */
struct liveupdate_ioctl_create_session {
        __u32 size;
        __s32 fd;                                    /* out: new session fd (O_CLOEXEC) */
        __u8  name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

struct liveupdate_ioctl_retrieve_session {
        __u32 size;
        __s32 fd;                                    /* out: retrieved session fd */
        __u8  name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

struct liveupdate_session_preserve_fd {
        __u32 size;
        __s32 fd;                                    /* in: file to preserve */
        __aligned_u64 token;                         /* in: caller-chosen, unique per session */
};

struct liveupdate_session_retrieve_fd {
        __u32 size;
        __s32 fd;                                    /* out: retrieved file */
        __aligned_u64 token;                         /* in */
};

struct liveupdate_session_finish {
        __u32 size;
        __u32 reserved;                              /* must be 0 */
};

struct liveupdate_session_get_name {
        __u32 size;
        __u32 reserved;                              /* must be 0 */
        __u8  name[LIVEUPDATE_SESSION_NAME_LENGTH];  /* out */
};

struct liveupdate_session_retrieve_into_fd {
        __u32 size;
        __s32 fd;                                    /* in: an open, empty tmpfs file */
        __aligned_u64 token;
};

#define LIVEUPDATE_IOCTL_CREATE_SESSION       _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_CREATE_SESSION)
#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION     _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_RETRIEVE_SESSION)
#define LIVEUPDATE_SESSION_PRESERVE_FD        _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_PRESERVE_FD)
#define LIVEUPDATE_SESSION_RETRIEVE_FD        _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_RETRIEVE_FD)
#define LIVEUPDATE_SESSION_FINISH             _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_FINISH)
#define LIVEUPDATE_SESSION_GET_NAME           _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_GET_NAME)
#define LIVEUPDATE_SESSION_RETRIEVE_INTO_FD   _IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_RETRIEVE_INTO_FD)

#endif
