/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd ioctls lu-vfiod and its emulator use. Debian 12's linux-libc-dev has no
 * <linux/iommufd.h> at all, so this is our own, written from the upstream ABI facts
 * (type ';', command base 0x80, size-prefixed structs). Guarded so that a system
 * header included first wins.
 */
#ifndef LU_UAPI_IOMMUFD_H
#define LU_UAPI_IOMMUFD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE            (';')

enum {
        IOMMUFD_CMD_BASE          = 0x80,
        IOMMUFD_CMD_DESTROY       = IOMMUFD_CMD_BASE,
        IOMMUFD_CMD_IOAS_ALLOC    = 0x81,
        IOMMUFD_CMD_IOAS_MAP      = 0x85,
        IOMMUFD_CMD_IOAS_UNMAP    = 0x86,
        IOMMUFD_CMD_HWPT_ALLOC    = 0x89,
        IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f,
};

struct iommu_destroy {
        __u32 size;
        __u32 id;
};
#define IOMMU_DESTROY           _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

struct iommu_ioas_alloc {
        __u32 size;
        __u32 flags;                     /* must be 0 */
        __u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC        _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

enum iommufd_ioas_map_flags {
        IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
        IOMMU_IOAS_MAP_WRITEABLE  = 1 << 1,
        IOMMU_IOAS_MAP_READABLE   = 1 << 2,
};

struct iommu_ioas_map {
        __u32 size;
        __u32 flags;
        __u32 ioas_id;
        __u32 __reserved;
        __aligned_u64 user_va;
        __aligned_u64 length;
        __aligned_u64 iova;
};
#define IOMMU_IOAS_MAP          _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

struct iommu_ioas_unmap {
        __u32 size;
        __u32 ioas_id;
        __aligned_u64 iova;
        __aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP        _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

struct iommu_hwpt_alloc {
        __u32 size;
        __u32 flags;
        __u32 dev_id;
        __u32 pt_id;
        __u32 out_hwpt_id;
        __u32 __reserved;
        __u32 data_type;
        __u32 data_len;
        __aligned_u64 data_uptr;
        __u32 fault_id;
        __u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC        _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

struct iommu_ioas_map_file {
        __u32 size;
        __u32 flags;
        __u32 ioas_id;
        __s32 fd;
        __aligned_u64 start;
        __aligned_u64 length;
        __aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE     _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE)
#endif

#endif
