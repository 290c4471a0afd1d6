/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Classification of file descriptors handed to lu-vfiod, done before the kernel is
 * touched so that a wrong kind of fd gets a clear error instead of a bare ENOENT.
 *
 * Works only on fds in the calling process's own table (it reads /proc/self/fd and
 * /proc/self/fdinfo). The checks are those a real kernel answers: readlink of
 * /proc/self/fd/N, fstat, F_GET_SEALS, statfs, the "vfio-device-syspath:" fdinfo line
 * (Linux >= 6.18) and, for cdevs, sysfs and VFIO_DEVICE_GET_INFO (which an unbound cdev
 * refuses with EINVAL).
 */
#pragma once

#include <stdbool.h>

#include "pci-addr.h"

typedef enum FdKind {
        FD_KIND_OTHER = 0,        /* nothing LUO can preserve */
        FD_KIND_MEMFD,            /* shmem file with no link: preservable by upstream LUO */
        FD_KIND_MEMFD_HUGETLB,    /* hugetlbfs memfd: not preservable (kernel says ENOENT) */
        FD_KIND_VFIO_CDEV,        /* /dev/vfio/devices/vfioN: preservable VFIO device */
        FD_KIND_VFIO_RETRIEVED,   /* anon-inode VFIO device fd returned by RETRIEVE_FD */
        FD_KIND_VFIO_GROUP_DEVICE,/* device fd from VFIO_GROUP_GET_DEVICE_FD: not preservable */
        FD_KIND_VFIO_GROUP,       /* /dev/vfio/N group or /dev/vfio/vfio container: not preservable */
        FD_KIND_IOMMUFD,          /* /dev/iommu */
        FD_KIND_LUO_SESSION,      /* a LUO session fd */
        FD_KIND_O_PATH,           /* opened with O_PATH: names a file but cannot be preserved */
        _FD_KIND_MAX,
} FdKind;

typedef struct FdInfo {
        FdKind kind;
        bool has_pci;             /* pci is valid (VFIO device kinds, when it could be found) */
        PciAddr pci;
        char vfio_name[32];       /* "vfio3" for cdevs, else empty */
        bool vfio_unbound;        /* a cdev not bound to an iommufd yet (its ioctls answer EINVAL) */
} FdInfo;

/*
 * fd_classify() - find out what @fd is.
 * Returns 0 with @ret filled (kind FD_KIND_OTHER for anything unrecognised, FD_KIND_O_PATH
 * for any O_PATH fd, whatever it names), -EBADF
 * if @fd is not open, other negative errno if /proc could not be read.
 */
int fd_classify(int fd, FdInfo *ret);

/* fd_kind_to_string() - stable lower-case name ("memfd", "vfio-cdev", ...), used in protocols and logs. */
const char *fd_kind_to_string(FdKind k);

/* fd_kind_is_vfio_device() - true for the three VFIO device-fd kinds. */
bool fd_kind_is_vfio_device(FdKind k);
