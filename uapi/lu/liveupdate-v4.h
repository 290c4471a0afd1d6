/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LUO v4 ABI (patch series of 2025-09-29), the base of the VFIO live update RFC tree.
 *
 * Sessions plus a global and a per-session state machine. Written for lu-vfiod from
 * shared/spec/luo-abi.md §3.3. Prefixed LUO_V4_/luo_v4_ because the same command
 * numbers mean different things in the upstream ABI (uapi/linux/liveupdate.h).
 *
 * Note the header inconsistency that the v4 series really had: CREATE_SESSION uses a
 * 56-byte name (64-byte struct), RETRIEVE_SESSION a 64-byte name (72-byte struct).
 */
#ifndef LU_UAPI_LIVEUPDATE_V4_H
#define LU_UAPI_LIVEUPDATE_V4_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define LUO_V4_IOCTL_TYPE                0xBA
#define LUO_V4_SESSION_NAME_LENGTH       56   /* CREATE_SESSION, including the NUL */
#define LUO_V4_RETRIEVE_NAME_LENGTH      64   /* RETRIEVE_SESSION, including the NUL */

enum luo_v4_state {
        LUO_V4_STATE_UNDEFINED = 0,
        LUO_V4_STATE_NORMAL    = 1,
        LUO_V4_STATE_PREPARED  = 2,
        LUO_V4_STATE_FROZEN    = 3,
        LUO_V4_STATE_UPDATED   = 4,
};

enum luo_v4_event {
        LUO_V4_EVENT_PREPARE = 0,
        LUO_V4_EVENT_FREEZE  = 1,
        LUO_V4_EVENT_FINISH  = 2,
        LUO_V4_EVENT_CANCEL  = 3,
};

struct luo_v4_get_state {
        __u32 size;
        __u32 state;                      /* out: enum luo_v4_state */
};

struct luo_v4_set_event {
        __u32 size;
        __u32 event;                      /* enum luo_v4_event */
};

struct luo_v4_create_session {
        __u32 size;
        __s32 fd;                         /* out */
        __u8  name[LUO_V4_SESSION_NAME_LENGTH];
};

struct luo_v4_retrieve_session {
        __u32 size;
        __s32 fd;                         /* out */
        __u8  name[LUO_V4_RETRIEVE_NAME_LENGTH];
};

struct luo_v4_session_preserve_fd {
        __u32 size;
        __s32 fd;
        __aligned_u64 token;
};

struct luo_v4_session_unpreserve_fd {
        __u32 size;
        __u32 reserved;                   /* must be 0, else EOPNOTSUPP */
        __aligned_u64 token;
};

struct luo_v4_session_restore_fd {
        __u32 size;
        __s32 fd;                         /* out */
        __aligned_u64 token;
};

struct luo_v4_session_get_state {
        __u32 size;
        __u8  incoming;
        __u8  reserved[3];
        __u32 state;                      /* out: enum luo_v4_state */
};

struct luo_v4_session_set_event {
        __u32 size;
        __u32 event;                      /* enum luo_v4_event */
};

#define LUO_V4_IOCTL_GET_STATE              _IO(LUO_V4_IOCTL_TYPE, 0x00)
#define LUO_V4_IOCTL_SET_EVENT              _IO(LUO_V4_IOCTL_TYPE, 0x01)
#define LUO_V4_IOCTL_CREATE_SESSION         _IO(LUO_V4_IOCTL_TYPE, 0x02)
#define LUO_V4_IOCTL_RETRIEVE_SESSION       _IO(LUO_V4_IOCTL_TYPE, 0x03)
#define LUO_V4_SESSION_PRESERVE_FD          _IO(LUO_V4_IOCTL_TYPE, 0x40)
#define LUO_V4_SESSION_UNPRESERVE_FD        _IO(LUO_V4_IOCTL_TYPE, 0x41)
#define LUO_V4_SESSION_RESTORE_FD           _IO(LUO_V4_IOCTL_TYPE, 0x42)
#define LUO_V4_SESSION_GET_STATE            _IO(LUO_V4_IOCTL_TYPE, 0x43)
#define LUO_V4_SESSION_SET_EVENT            _IO(LUO_V4_IOCTL_TYPE, 0x44)

/* Older ABIs, only ever issued as side-effect-free probes (spec §3.4). */
#define LUO_V1_IOCTL_GET_STATE              _IOR(LUO_V4_IOCTL_TYPE, 0x03, __u32)   /* 0x8004BA03 */
#define LUO_G1_IOCTL_GET_STATE              _IO(LUO_V4_IOCTL_TYPE, 0x03)           /* 0xBA03, {size=8} */

#endif
