/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What kind of file is this fd? LUO only preserves some kinds, and the kernel answers
 * everything else with a bare ENOENT, so callers classify first to give a useful error.
 *
 * Kernel objects are recognised by their /proc/self/fd link target rather than by
 * fstat(): anon-inode files all look alike to fstat(), and the emulator backs its
 * objects with sockets. memfds are recognised by what the LUO memfd handler checks:
 * a shmem (tmpfs) file with no links.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/magic.h>

#include "fd-kind.h"
#include "macro.h"
#include "vfio-dev.h"

#define VFIO_CDEV_PREFIX     "/dev/vfio/devices/"
#define VFIO_SYSPATH_FIELD   "vfio-device-syspath:"

static const char *const fd_kind_table[_FD_KIND_MAX] = {
        [FD_KIND_OTHER]             = "other",
        [FD_KIND_MEMFD]             = "memfd",
        [FD_KIND_MEMFD_HUGETLB]     = "memfd-hugetlb",
        [FD_KIND_VFIO_CDEV]         = "vfio-cdev",
        [FD_KIND_VFIO_RETRIEVED]    = "vfio-retrieved",
        [FD_KIND_VFIO_GROUP_DEVICE] = "vfio-group-device",
        [FD_KIND_VFIO_GROUP]        = "vfio-group",
        [FD_KIND_IOMMUFD]           = "iommufd",
        [FD_KIND_LUO_SESSION]       = "luo-session",
        [FD_KIND_O_PATH]            = "o-path",
};

const char *fd_kind_to_string(FdKind k) {
        if ((unsigned) k >= _FD_KIND_MAX)
                return NULL;
        return fd_kind_table[k];
}

bool fd_kind_is_vfio_device(FdKind k) {
        return k == FD_KIND_VFIO_CDEV || k == FD_KIND_VFIO_RETRIEVED || k == FD_KIND_VFIO_GROUP_DEVICE;
}

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* A minor number: 1 to 10 decimal digits. */
static bool all_digits(const char *s) {
        if (!*s || strlen(s) > 10)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* The "vfio-device-syspath:" line of fdinfo (Linux >= 6.18 and the emulator). */
static int pci_from_fdinfo(int fd, PciAddr *ret) {
        char path[64], line[PATH_MAX + 64];
        FILE *f;
        int r = -ENOENT;

        (void) snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();

        while (fgets(line, sizeof(line), f)) {
                char *v;

                if (!startswith(line, VFIO_SYSPATH_FIELD))
                        continue;
                v = line + strlen(VFIO_SYSPATH_FIELD);
                v += strspn(v, " \t");
                v[strcspn(v, "\r\n")] = '\0';
                r = pci_addr_from_path(v, ret);
                break;
        }

        fclose(f);
        return r;
}

static int pci_from_link(const char *link, PciAddr *ret) {
        char target[PATH_MAX];
        ssize_t n;

        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return negative_errno();
        target[n] = '\0';
        return pci_addr_from_path(target, ret);
}

/* Older kernels: the cdev's sysfs node sits under the PCI device. */
static int pci_from_cdev_sysfs(int fd, const char *vfio_name, PciAddr *ret) {
        char link[PATH_MAX];
        struct stat st;

        (void) snprintf(link, sizeof(link), "/sys/class/vfio-dev/%s/device", vfio_name);
        if (pci_from_link(link, ret) >= 0)
                return 0;

        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode))
                return -ENOENT;
        (void) snprintf(link, sizeof(link), "/sys/dev/char/%u:%u",
                        major(st.st_rdev), minor(st.st_rdev));
        return pci_from_link(link, ret);
}

static FdKind kind_from_link(const char *target) {
        if (startswith(target, "anon_inode:[luo_session]"))
                return FD_KIND_LUO_SESSION;
        if (startswith(target, VFIO_CDEV_PREFIX "vfio") &&
            all_digits(target + strlen(VFIO_CDEV_PREFIX "vfio")))
                return FD_KIND_VFIO_CDEV;
        if (streq(target, "anon_inode:[vfio-device-liveupdate]"))
                return FD_KIND_VFIO_RETRIEVED;
        if (streq(target, "anon_inode:[vfio-device]"))
                return FD_KIND_VFIO_GROUP_DEVICE;
        if (streq(target, "/dev/vfio/vfio") ||
            (startswith(target, "/dev/vfio/") && all_digits(target + strlen("/dev/vfio/"))) ||
            (startswith(target, "/dev/vfio/noiommu-") && all_digits(target + strlen("/dev/vfio/noiommu-"))))
                return FD_KIND_VFIO_GROUP;
        if (streq(target, "/dev/iommu"))
                return FD_KIND_IOMMUFD;
        return FD_KIND_OTHER;
}

/* A memfd as LUO sees it: a regular shmem file that has no name in any directory. */
static int kind_from_inode(int fd, FdKind *ret) {
        struct statfs sfs;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_nlink != 0) {
                *ret = FD_KIND_OTHER;
                return 0;
        }
        if (fstatfs(fd, &sfs) < 0)
                return negative_errno();
        if ((unsigned long) sfs.f_type == (unsigned long) TMPFS_MAGIC)
                *ret = FD_KIND_MEMFD;
        else if ((unsigned long) sfs.f_type == (unsigned long) HUGETLBFS_MAGIC)
                *ret = FD_KIND_MEMFD_HUGETLB;
        else
                *ret = FD_KIND_OTHER;
        return 0;
}

int fd_classify(int fd, FdInfo *ret) {
        char link[64], target[PATH_MAX];
        FdInfo info = { .kind = FD_KIND_OTHER };
        ssize_t n;
        int r, fl;

        if (!ret)
                return -EINVAL;
        if (fd < 0)
                return -EBADF;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return negative_errno();
        /* An O_PATH fd links to the file it names (a cdev, a memfd), yet no ioctl or
         * LUO handler works on it: the kernel would answer a bare ENOENT. */
        if (fl & O_PATH) {
                *ret = (FdInfo) { .kind = FD_KIND_O_PATH };
                return 0;
        }

        (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                /* Closed between the fcntl() and here: report it the same way. */
                return errno == ENOENT ? -EBADF : negative_errno();
        target[n] = '\0';

        info.kind = kind_from_link(target);
        if (info.kind == FD_KIND_OTHER) {
                r = kind_from_inode(fd, &info.kind);
                if (r < 0)
                        return r;
        }

        if (info.kind == FD_KIND_VFIO_CDEV) {
                const char *name = target + strlen(VFIO_CDEV_PREFIX);
                /* kind_from_link() accepted at most 10 digits, so this always fits. */
                memcpy(info.vfio_name, name, MIN(strlen(name), sizeof(info.vfio_name) - 1));
        }

        if (fd_kind_is_vfio_device(info.kind)) {
                /* The address is best effort: the kind alone is still a valid answer. */
                r = pci_from_fdinfo(fd, &info.pci);
                if (r < 0 && info.kind == FD_KIND_VFIO_CDEV)
                        r = pci_from_cdev_sysfs(fd, info.vfio_name, &info.pci);
                info.has_pci = r >= 0;
                if (!info.has_pci)
                        info.pci = (PciAddr) {};
        }

        if (info.kind == FD_KIND_VFIO_CDEV) {
                struct lu_vfio_device_info di;
                /* Every ioctl but BIND_IOMMUFD is EINVAL on a cdev that is not bound yet. */
                info.vfio_unbound = vfio_device_get_info(fd, &di) == -EINVAL;
        }

        *ret = info;
        return 0;
}
