/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PCI devices in sysfs (pci-sysfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "pci-addr.h"
#include "pci-sysfs.h"

static int device_path(const char *sysfs, const char *bdf, const char *leaf, char *buf, size_t size) {
        PciAddr a;
        int n;

        /* a BDF from outside never becomes a path of its choosing */
        if (!sysfs || !bdf || pci_addr_parse(bdf, &a) < 0)
                return -EINVAL;
        n = snprintf(buf, size, "%s/bus/pci/devices/%s%s%s", sysfs, bdf, leaf ? "/" : "", leaf ?: "");
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* The device's leaf path in @buf, once its directory is known to exist (-ENOENT: no such device;
 * a missing leaf is the caller's to interpret). */
static int device_leaf(const char *sysfs, const char *bdf, const char *leaf, char *buf, size_t size) {
        struct stat st;
        int r;

        r = device_path(sysfs, bdf, NULL, buf, size);
        if (r < 0)
                return r;
        if (stat(buf, &st) < 0)
                return -errno;
        return device_path(sysfs, bdf, leaf, buf, size);
}

static int write_text(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        size_t len = strlen(text);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = write(fd, text, len);
        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : -EIO;
}

int pci_is_virtfn(const char *sysfs, const char *bdf) {
        char path[PATH_MAX];
        struct stat st;
        int r;

        r = device_leaf(sysfs, bdf, "physfn", path, sizeof(path));
        if (r < 0)
                return r;
        if (lstat(path, &st) == 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

int pci_driver_name(const char *sysfs, const char *bdf, char *buf, size_t size) {
        char path[PATH_MAX], target[PATH_MAX];
        const char *base;
        ssize_t n;
        int r;

        if (!buf || size == 0)
                return -EINVAL;
        buf[0] = '\0';
        r = device_leaf(sysfs, bdf, "driver", path, sizeof(path));
        if (r < 0)
                return r;
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return errno == ENOENT ? 0 : -errno;
        target[n] = '\0';
        base = strrchr(target, '/');
        base = base ? base + 1 : target;
        if (strlen(base) >= size)
                return -ENAMETOOLONG;
        memcpy(buf, base, strlen(base) + 1);
        return 1;
}

int pci_bind_vfio_pci(const char *sysfs, const char *bdf) {
        char path[PATH_MAX], driver[64];
        int r;

        r = pci_driver_name(sysfs, bdf, driver, sizeof(driver));
        if (r < 0)
                return r;
        if (r > 0)
                return strcmp(driver, "vfio-pci") == 0 ? 0 : -EBUSY;
        r = device_path(sysfs, bdf, "driver_override", path, sizeof(path));
        if (r < 0)
                return r;
        r = write_text(path, "vfio-pci\n");
        if (r < 0)
                return r;
        if (snprintf(path, sizeof(path), "%s/bus/pci/drivers/vfio-pci/bind", sysfs) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        if (access(path, F_OK) < 0)
                return errno == ENOENT ? -ENODEV : -errno;
        r = write_text(path, bdf);
        /* a concurrent bind (udev, the bind-delay of a test machine) got there first */
        if (r == -EBUSY || r == -EEXIST)
                return pci_driver_name(sysfs, bdf, driver, sizeof(driver)) > 0 && strcmp(driver, "vfio-pci") == 0 ? 0 : r;
        return r;
}
