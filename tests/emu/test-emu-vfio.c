/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo-emu smoke test: a VFIO cdev through a live update with the upstream ABI and
 * the rules of spec §4.1 — preserve needs a bound cdev, the freeze refuses while
 * MSI-X is on (the machine keeps running), the retrieved anon-inode file acts like
 * a fresh cdev, FINISH waits for the bind, and the cdev node is busy until then.
 * Run as: luo-emu --vfio=2 -- test-emu-vfio
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "linux/liveupdate.h"
#include "lu/iommufd.h"
#include "lu/vfio-cdev.h"
#include "test-emu-util.h"

static int bind(int dev, int iommufd) {
        struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
        return ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);
}

static int set_irqs(int dev, uint32_t flags, uint32_t index, uint32_t count, const int32_t *fds) {
        union {
                struct vfio_irq_set hdr;
                uint8_t raw[sizeof(struct vfio_irq_set) + 4 * sizeof(int32_t)];
        } s = { .hdr = { .argsz = (uint32_t) (sizeof(s.hdr) + count * 4), .flags = flags, .index = index,
                         .count = count } };

        if (count)
                memcpy(s.raw + sizeof(s.hdr), fds, count * 4);
        return ioctl(dev, VFIO_DEVICE_SET_IRQS, &s);
}

/* The legacy group path: its device fds are not preservable and cannot bind. */
static void group_path(int luo_session) {
        struct lu_vfio_device_info info = { .argsz = sizeof(info) };
        struct vfio_group_status st = { .argsz = sizeof(st) };
        char link[256];
        int k, g, gd, d;
        int32_t kfd;

        k = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(k, 0, "open the container /dev/vfio/vfio");
        harness_check(ioctl(k, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "VFIO_GET_API_VERSION");
        harness_check(ioctl(k, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1, "type1v2 IOMMU supported");
        g = open("/dev/vfio/1", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(g, 0, "open group 1 (vfio1's)");
        CHECK_ERRNO(open("/dev/vfio/1", O_RDWR | O_CLOEXEC), EBUSY, "a group has one opener");
        CHECK_ERRNO(ioctl(g, VFIO_GROUP_GET_STATUS, &st), 0, "GROUP_GET_STATUS");
        harness_check(st.flags == VFIO_GROUP_FLAGS_VIABLE, "viable, no container yet");
        CHECK_ERRNO(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:02:00.0"), EINVAL, "GET_DEVICE_FD without a container");
        kfd = k;
        CHECK_ERRNO(ioctl(g, VFIO_GROUP_SET_CONTAINER, &kfd), 0, "SET_CONTAINER");
        CHECK_ERRNO(ioctl(k, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU");
        CHECK_ERRNO(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:09:00.0"), ENODEV, "GET_DEVICE_FD of a foreign device");
        gd = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:02:00.0");
        CHECK_ERRNO(gd, 0, "GET_DEVICE_FD");
        CHECK_ERRNO(emu_test_readlink_fd(gd, link, sizeof(link)), 0, "readlink group device fd");
        harness_check(strcmp(link, "anon_inode:[vfio-device]") == 0, "group device fd is [vfio-device] (%s)", link);
        CHECK_ERRNO(ioctl(gd, VFIO_DEVICE_GET_INFO, &info), 0, "group device fd works without BIND");
        CHECK_ERRNO(bind(gd, k), EINVAL, "BIND_IOMMUFD on a group device fd is EINVAL");
        CHECK_ERRNO(emu_preserve(luo_session, gd, 77), ENOENT, "a group device fd is not preservable (ENOENT)");
        CHECK_ERRNO(emu_preserve(luo_session, g, 78), ENOENT, "nor is the group fd");
        d = open("/dev/vfio/devices/vfio1", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(bind(d, k), EBUSY, "the cdev cannot bind while the group is open");
        close(d);
        CHECK_ERRNO(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EBUSY, "UNSET_CONTAINER with a device fd open");
        close(gd);
        close(g);
        close(k);
}

static void boot0(void) {
        struct lu_vfio_device_info info = { .argsz = sizeof(info) };
        struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
        struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
        struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
        char link[256], text[1024] = {};
        int luo, s, d0, d1, io, m, k, r;
        int32_t efd[2];

        d0 = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(d0, 0, "open vfio0 cdev");
        CHECK_ERRNO(emu_test_readlink_fd(d0, link, sizeof(link)), 0, "readlink vfio0");
        harness_check(strcmp(link, "/dev/vfio/devices/vfio0") == 0, "vfio0 links to its node (%s)", link);
        snprintf(link, sizeof(link), "/proc/self/fdinfo/%d", d0);
        k = open(link, O_RDONLY | O_CLOEXEC);
        r = k >= 0 ? (int) read(k, text, sizeof(text) - 1) : -1;
        harness_check(r > 0 && strstr(text, "vfio-device-syspath: /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0\n"),
                      "fdinfo names the device's sysfs path");
        close(k);
        CHECK_ERRNO(ioctl(d0, VFIO_DEVICE_GET_INFO, &info), EINVAL, "GET_INFO before BIND is EINVAL");

        luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        s = emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "emu-vfio");
        CHECK_ERRNO(s, 0, "create session");
        CHECK_ERRNO(emu_preserve(s, d0, 1), ENOENT, "an unbound cdev is not preservable (ENOENT)");
        group_path(s);

        io = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(io, 0, "open /dev/iommu");
        d1 = open("/dev/vfio/devices/vfio1", O_RDWR | O_CLOEXEC);
        m = memfd_create("x", MFD_CLOEXEC);
        CHECK_ERRNO(bind(d1, m), EBADFD, "BIND to a non-iommufd fd is EBADFD");
        CHECK_ERRNO(bind(d0, io), 0, "BIND_IOMMUFD");
        CHECK_ERRNO(bind(d0, io), EINVAL, "second BIND is EINVAL");
        CHECK_ERRNO(ioctl(io, IOMMU_IOAS_ALLOC, &ioas), 0, "IOAS_ALLOC");
        at.pt_id = ioas.out_ioas_id;
        CHECK_ERRNO(ioctl(d0, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at), 0, "ATTACH_IOMMUFD_PT");
        harness_check(at.pt_id != ioas.out_ioas_id, "attach reports the HWPT id (%u)", at.pt_id);
        CHECK_ERRNO(ioctl(d0, VFIO_DEVICE_GET_INFO, &info), 0, "GET_INFO");
        harness_check(info.flags == (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET) && info.num_regions == 9 &&
                      info.num_irqs == 5, "PCI device, 9 regions, 5 irq indexes");
        CHECK_ERRNO(ioctl(d0, VFIO_DEVICE_GET_IRQ_INFO, &irq), 0, "GET_IRQ_INFO(MSI-X)");
        harness_check(irq.count == 16 && (irq.flags & VFIO_IRQ_INFO_EVENTFD), "16 MSI-X vectors");

        efd[0] = eventfd(0, EFD_CLOEXEC);
        efd[1] = eventfd(0, EFD_CLOEXEC);
        CHECK_ERRNO(set_irqs(d0, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 2, efd),
                    0, "enable two MSI-X vectors");
        CHECK_ERRNO(set_irqs(d0, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 1, efd),
                    EINVAL, "MSI while MSI-X is active is EINVAL");
        CHECK_ERRNO(set_irqs(d0, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, NULL),
                    EINVAL, "disabling INTx that is not active is EINVAL");
        CHECK_ERRNO(set_irqs(d0, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 1, &m),
                    EINVAL, "a non-eventfd is EINVAL");
        CHECK_ERRNO(emu_preserve(s, d0, 1), 0, "preserve the bound cdev");

        k = emu_test_kernel_image();
        CHECK_ERRNO(emu_test_kexec_load(k, "root=/dev/vda liveupdate=on kho=on"), 0, "kexec_file_load");
        CHECK_ERRNO(emu_test_reboot_kexec(), EINVAL, "reboot(KEXEC) with MSI-X on is EINVAL");
        harness_check(1, "the machine keeps running after the refused kexec");
        CHECK_ERRNO(set_irqs(d0, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, NULL),
                    0, "disable MSI-X");
        close(d0);      /* LUO's reference keeps the device file alive */
        harness_carry();
        emu_test_reboot_kexec();
        printf("Bail out! reboot(KEXEC) returned: %m\n");
        exit(1);
}

static void boot1(void) {
        struct lu_vfio_device_info info = { .argsz = sizeof(info) };
        char link[256], drv[256];
        int luo, s, d, d1, io;
        ssize_t n;

        CHECK_ERRNO(open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC), EBUSY, "preserved device's cdev is EBUSY");
        d1 = open("/dev/vfio/devices/vfio1", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(d1, 0, "a device that was not preserved opens");
        n = readlink("/sys/bus/pci/devices/0000:01:00.0/driver", drv, sizeof(drv) - 1);
        drv[n > 0 ? n : 0] = 0;
        harness_check(n > 0 && strstr(drv, "/vfio-pci") != NULL, "device bound to vfio-pci in sysfs (%s)", drv);

        luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        s = emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "emu-vfio");
        CHECK_ERRNO(s, 0, "retrieve session");
        CHECK_ERRNO(emu_finish(s), EBUSY, "FINISH before the device is retrieved is EBUSY");
        d = emu_retrieve(s, 1);
        CHECK_ERRNO(d, 0, "retrieve the device");
        CHECK_ERRNO(emu_test_readlink_fd(d, link, sizeof(link)), 0, "readlink retrieved device");
        harness_check(strcmp(link, "anon_inode:[vfio-device-liveupdate]") == 0, "anon inode (%s)", link);
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_GET_INFO, &info), EINVAL, "retrieved device refuses GET_INFO until bound");
        CHECK_ERRNO(emu_finish(s), EBUSY, "FINISH before BIND is EBUSY");
        io = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(bind(d, io), 0, "BIND the retrieved device");
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_GET_INFO, &info), 0, "GET_INFO after BIND");
        CHECK_ERRNO(emu_finish(s), 0, "FINISH after BIND");
        d1 = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(d1, 0, "after FINISH the cdev opens again");
        CHECK_ERRNO(bind(d1, io), EINVAL, "but cannot bind while the retrieved file holds the device");
}

int main(void) {
        harness_init();
        if (harness_boot() == 0)
                boot0();
        else if (harness_boot() == 1)
                boot1();
        else {
                printf("Bail out! not run under luo-emu (LUO_EMU_BOOT unset)\n");
                return 1;
        }
        return harness_done();
}
