/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pci-sysfs.c against a sysfs made in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pci-sysfs.h"
#include "test-helpers.h"

static char root[64];

static void mk(const char *rel) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        TEST_ASSERT(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void put(const char *rel, const char *text) {
        char p[256];
        FILE *f;
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        f = fopen(p, "we");
        TEST_ASSERT(f != NULL);
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

static void get(const char *rel, char *buf, size_t size) {
        char p[256];
        FILE *f;
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        buf[0] = '\0';
        f = fopen(p, "re");
        if (f) {
                if (!fgets(buf, (int) size, f))
                        buf[0] = '\0';
                fclose(f);
        }
}

int main(void) {
        char buf[64], p[256], q[256];

        snprintf(root, sizeof(root), "/tmp/test-pci-sysfs-XXXXXX");
        TEST_ASSERT(mkdtemp(root) != NULL);
        mk("bus");
        mk("bus/pci");
        mk("bus/pci/devices");
        mk("bus/pci/drivers");
        mk("bus/pci/drivers/nvme");
        mk("bus/pci/devices/0000:01:00.0");     /* a PF, unbound */
        mk("bus/pci/devices/0000:01:00.1");     /* a VF of it */
        mk("bus/pci/devices/0000:02:00.0");     /* bound to nvme */
        snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:01:00.1/physfn", root);
        TEST_ASSERT(symlink("../0000:01:00.0", p) == 0);
        snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:02:00.0/driver", root);
        TEST_ASSERT(symlink("../../drivers/nvme", p) == 0);
        put("bus/pci/devices/0000:01:00.0/driver_override", "(null)\n");

        TEST_ERRNO(pci_is_virtfn(root, "0000:01:00.0"), 0);
        TEST_ASSERT(pci_is_virtfn(root, "0000:01:00.1") == 1);
        TEST_ERRNO(pci_is_virtfn(root, "0000:09:00.0"), ENOENT);
        TEST_ERRNO(pci_is_virtfn(root, "../../etc"), EINVAL);
        TEST_ERRNO(pci_is_virtfn(root, NULL), EINVAL);

        TEST_ERRNO(pci_driver_name(root, "0000:01:00.0", buf, sizeof(buf)), 0);
        TEST_STREQ(buf, "");
        TEST_ASSERT(pci_driver_name(root, "0000:02:00.0", buf, sizeof(buf)) == 1);
        TEST_STREQ(buf, "nvme");
        TEST_ERRNO(pci_driver_name(root, "0000:02:00.0", buf, 3), ENAMETOOLONG);

        /* bound to another driver: never taken from it */
        TEST_ERRNO(pci_bind_vfio_pci(root, "0000:02:00.0"), EBUSY);
        /* no vfio-pci driver: ENODEV, after the override is set */
        TEST_ERRNO(pci_bind_vfio_pci(root, "0000:01:00.0"), ENODEV);
        get("bus/pci/devices/0000:01:00.0/driver_override", buf, sizeof(buf));
        TEST_STREQ(buf, "vfio-pci\n");
        /* with vfio-pci: the BDF written to its bind file */
        mk("bus/pci/drivers/vfio-pci");
        put("bus/pci/drivers/vfio-pci/bind", "");
        TEST_ERRNO(pci_bind_vfio_pci(root, "0000:01:00.0"), 0);
        get("bus/pci/drivers/vfio-pci/bind", buf, sizeof(buf));
        TEST_STREQ(buf, "0000:01:00.0");
        /* already bound to vfio-pci: nothing to write */
        snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:01:00.0/driver", root);
        TEST_ASSERT(symlink("../../drivers/vfio-pci", p) == 0);
        put("bus/pci/drivers/vfio-pci/bind", "");
        TEST_ERRNO(pci_bind_vfio_pci(root, "0000:01:00.0"), 0);
        get("bus/pci/drivers/vfio-pci/bind", buf, sizeof(buf));
        TEST_STREQ(buf, "");
        TEST_ERRNO(pci_bind_vfio_pci(root, "0000:09:00.0"), ENOENT);

        snprintf(q, sizeof(q), "rm -rf '%s'", root);
        TEST_ASSERT(system(q) == 0);
        return test_result("test-pci-sysfs");
}
