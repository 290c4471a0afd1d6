/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VFIO PCI cdev preservation (spec §4.1-§4.3), upstream session ABI, two emulated
 * devices (luo-emu --vfio=2), two boots.
 *
 * Boot 0: both cdevs open, bound to iommufd and attached; distinct PCI addresses;
 * preserve both; with MSI-X enabled on one, reboot() fails with EINVAL and the machine
 * and the session carry on; with interrupts disabled the kexec happens.
 * Boot 1: opening a preserved device's cdev -> EBUSY; RETRIEVE_FD gives a device fd
 * that refuses everything but BIND_IOMMUFD (EINVAL, vfio_main.c access_granted) until
 * it is bound; FINISH -> EBUSY until every device is retrieved and bound, then 0.
 */
#include <sys/eventfd.h>

#include "luo-raw.h"

/*
 * Enable one vector of IRQ @index on @d (if the device has it) and expect reboot() to
 * be refused with EINVAL, then disable it again. @d must be the first preserved file,
 * so that no other device was frozen before the refusal.
 */
static void check_irq_blocks_reboot(int d, unsigned index, const char *what) {
        struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = index };
        char msg[96];
        int efd;

        if (ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, &irq) < 0 || irq.count == 0) {
                snprintf(msg, sizeof(msg), "device has no %s interrupt", what);
                harness_skip(msg);
                return;
        }
        efd = eventfd(0, EFD_CLOEXEC);
        if (efd < 0)
                raw_bail("eventfd");
        CHECK_ERRNO(raw_vfio_irqs(d, index, efd), 0, "SET_IRQS: enable %s", what);
        CHECK_ERRNO(raw_reboot(), EINVAL, "reboot(KEXEC) with %s enabled -> EINVAL", what);
        CHECK_ERRNO(raw_vfio_irqs(d, index, -1), 0, "SET_IRQS: disable %s", what);
        close(efd);
}

static void boot0(void) {
        struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
        int dev, s, mem, d0, d1, iommufd, efd, m, m2;
        uint32_t devid0 = 0, devid1 = 0, ioas = 0;
        long long a0, a1;

        d0 = raw_vfio_open(0);
        CHECK_ERRNO(d0, 0, "open /dev/vfio/devices/vfio0");
        d1 = raw_vfio_open(1);
        CHECK_ERRNO(d1, 0, "open /dev/vfio/devices/vfio1");
        if (d0 < 0 || d1 < 0)
                raw_bail("no VFIO devices (run with --vfio=2)");

        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(iommufd, 0, "open /dev/iommu");
        if (iommufd < 0)
                raw_bail("no iommufd");
        CHECK_ERRNO(ioctl(d0, VFIO_DEVICE_GET_INFO, &(struct lu_vfio_device_info){ .argsz = 24 }), EINVAL,
                    "an unbound cdev refuses GET_INFO -> EINVAL");
        CHECK_ERRNO(raw_vfio_bind(d0, iommufd, &devid0), 0, "BIND_IOMMUFD vfio0");
        CHECK_ERRNO(raw_vfio_bind(d0, iommufd, NULL), EINVAL, "binding twice -> EINVAL");
        CHECK_ERRNO(raw_vfio_bind(d1, iommufd, &devid1), 0, "BIND_IOMMUFD vfio1");
        CHECK_ERRNO(raw_ioas_alloc(iommufd, &ioas), 0, "IOMMU_IOAS_ALLOC");
        CHECK_ERRNO(raw_vfio_attach(d0, ioas), 0, "ATTACH_IOMMUFD_PT vfio0");
        CHECK_ERRNO(raw_vfio_attach(d1, ioas), 0, "ATTACH_IOMMUFD_PT vfio1");

        a0 = raw_vfio_pci_addr(d0, devid0);
        a1 = raw_vfio_pci_addr(d1, devid1);
        harness_check(a0 >= 0 && a1 >= 0, "PCI addresses found (fdinfo, sysfs or hot-reset info): %llx %llx", a0, a1);
        harness_check(a0 >= 0 && a1 >= 0 && a0 != a1, "the two devices have distinct PCI addresses");
        raw_note_set("pci0", a0);

        dev = raw_open_dev();
        /*
         * vf-mem is created first, so it is frozen before vf at every reboot attempt:
         * the refused attempts freeze and unfreeze its memfd, and the position that
         * arrives must be the one at the final, successful attempt.
         */
        mem = raw_create(dev, "vf-mem");
        m = raw_memfd("vf-mem", "position");
        if (mem < 0 || raw_preserve(mem, m, 1) < 0)
                raw_bail("session vf-mem");
        s = raw_create(dev, "vf");
        if (dev < 0 || s < 0)
                raw_bail("session vf");
        CHECK_ERRNO(raw_preserve(s, d0, 100), 0, "PRESERVE_FD of a bound VFIO cdev");
        CHECK_ERRNO(raw_preserve(s, d1, 101), 0, "PRESERVE_FD of the second cdev");

        /* MSI-X on: the VFIO freeze refuses, reboot() returns its EINVAL. */
        CHECK_ERRNO(ioctl(d0, VFIO_DEVICE_GET_IRQ_INFO, &irq), 0, "GET_IRQ_INFO MSI-X");
        harness_check(irq.count >= 1, "the device has MSI-X vectors (%u)", irq.count);
        efd = eventfd(0, EFD_CLOEXEC);
        if (efd < 0)
                raw_bail("eventfd");
        CHECK_ERRNO(raw_vfio_irqs(d0, VFIO_PCI_MSIX_IRQ_INDEX, efd), 0, "SET_IRQS: enable MSI-X vector 0 on vfio0");
        CHECK_ERRNO(raw_kexec_load(true), 0, "kexec_file_load");
        lseek(m, 3, SEEK_SET);
        CHECK_ERRNO(raw_reboot(), EINVAL, "reboot(KEXEC) with MSI-X enabled -> EINVAL");
        harness_check(true, "the machine keeps running after the refused reboot");
        CHECK_ERRNO(ftruncate(m, 1), EPERM, "the memfd of the earlier session is still preserved");
        CHECK_ERRNO(pwrite(m, "P", 1, 0), 0, "... and writable again (unfrozen)");

        /* The session is intact: still outgoing, still holding both tokens. */
        m2 = raw_memfd("vf-m", "vfio session");
        CHECK_ERRNO(raw_preserve(s, m2, 100), EEXIST, "the session still holds token 100");
        CHECK_ERRNO(raw_preserve(s, m2, 101), EEXIST, "... and token 101");
        CHECK_ERRNO(raw_preserve(s, m2, 103), 0, "... and accepts more files");
        close(m2);
        CHECK_ERRNO(raw_retrieve(dev, "vf"), ENOENT, "the session was not handed over (not incoming)");

        CHECK_ERRNO(raw_vfio_irqs(d0, VFIO_PCI_MSIX_IRQ_INDEX, -1), 0, "SET_IRQS: disable MSI-X on vfio0");

        /* The check is on whichever of INTx/MSI/MSI-X is active. */
        check_irq_blocks_reboot(d0, VFIO_PCI_MSI_IRQ_INDEX, "MSI");
        check_irq_blocks_reboot(d0, VFIO_PCI_INTX_IRQ_INDEX, "INTx");

        lseek(m, 5, SEEK_SET);

        /* ERR/REQ eventfds are not device interrupts and do not block the freeze. */
        {
                struct vfio_irq_info err = { .argsz = sizeof(err), .index = VFIO_PCI_ERR_IRQ_INDEX };
                int eefd = eventfd(0, EFD_CLOEXEC);

                if (ioctl(d0, VFIO_DEVICE_GET_IRQ_INFO, &err) == 0 && err.count > 0 &&
                    raw_vfio_irqs(d0, VFIO_PCI_ERR_IRQ_INDEX, eefd) == 0) {
                        raw_note_set("err-irq", 1);
                        CHECK_ERRNO(raw_kexec_load(true), 0, "kexec_file_load again");
                        /* d0, d1, iommufd and the session stay open across the call. */
                        CHECK_ERRNO(raw_reboot(), 0, "reboot(KEXEC) with only the ERR eventfd set is not refused");
                        /* Still here: the rule failed; take ERR down and go on to test the rest. */
                        raw_note_set("err-irq", 0);
                        (void) raw_vfio_irqs(d0, VFIO_PCI_ERR_IRQ_INDEX, -1);
                } else
                        harness_skip("device has no ERR interrupt");
        }

        CHECK_ERRNO(raw_kexec_load(true), 0, "kexec_file_load again");
        (void) raw_reboot();
        raw_bail("reboot(KEXEC) with interrupts disabled returned");
}

static void boot1(void) {
        struct lu_vfio_device_info info = { .argsz = sizeof(info) };
        struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
        int dev, s, r0, r1, iommufd, m;
        uint32_t devid0 = 0, devid1 = 0;
        long long a0;
        char c;

        if (raw_note_get("err-irq", 0))
                harness_check(true, "reboot(KEXEC) with only the ERR eventfd set is not refused");
        CHECK_ERRNO(raw_vfio_open(0), EBUSY, "open /dev/vfio/devices/vfio0 of a preserved device -> EBUSY");

        dev = raw_open_dev();
        s = raw_retrieve(dev, "vf-mem");
        m = s >= 0 ? raw_retrieve_fd(s, 1) : -1;
        harness_check(m >= 0 && raw_memfd_is(m, "Position"), "vf-mem's memfd arrived with the write made between attempts");
        harness_check(m >= 0 && lseek(m, 0, SEEK_CUR) == 5,
                      "its position is the one at the successful reboot, not at a refused one (%lld)",
                      m >= 0 ? (long long) lseek(m, 0, SEEK_CUR) : -1LL);
        CHECK_ERRNO(raw_finish(s), 0, "FINISH vf-mem");
        close(m);
        close(s);
        CHECK_ERRNO(raw_vfio_open(1), EBUSY, "open /dev/vfio/devices/vfio1 of a preserved device -> EBUSY");

        s = raw_retrieve(dev, "vf");
        CHECK_ERRNO(s, 0, "RETRIEVE_SESSION vf");
        if (s < 0)
                raw_bail("no session");
        m = raw_retrieve_fd(s, 103);
        harness_check(m >= 0 && raw_memfd_is(m, "vfio session"), "the memfd added after the refused reboot arrived");
        close(m);

        CHECK_ERRNO(raw_finish(s), EBUSY, "FINISH before the devices are retrieved -> EBUSY");

        r0 = raw_retrieve_fd(s, 100);
        CHECK_ERRNO(r0, 0, "RETRIEVE_FD vfio0");
        if (r0 < 0)
                raw_bail("no device");
        harness_check(raw_is_cloexec(r0), "retrieved device fd is O_CLOEXEC");

        CHECK_ERRNO(ioctl(r0, VFIO_DEVICE_GET_INFO, &info), EINVAL, "unbound retrieved device: GET_INFO -> EINVAL");
        CHECK_ERRNO(ioctl(r0, VFIO_DEVICE_GET_IRQ_INFO, &irq), EINVAL, "unbound retrieved device: GET_IRQ_INFO -> EINVAL");
        CHECK_ERRNO(ioctl(r0, VFIO_DEVICE_RESET), EINVAL, "unbound retrieved device: RESET -> EINVAL");
        CHECK_ERRNO(raw_vfio_attach(r0, 1), EINVAL, "unbound retrieved device: ATTACH_IOMMUFD_PT -> EINVAL");
        CHECK_ERRNO(pread(r0, &c, 1, 0), EINVAL, "unbound retrieved device: read -> EINVAL");
        CHECK_ERRNO(raw_finish(s), EBUSY, "FINISH while vfio0 is retrieved but not bound -> EBUSY");

        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(iommufd, 0, "open /dev/iommu");
        CHECK_ERRNO(raw_vfio_bind(r0, iommufd, &devid0), 0, "BIND_IOMMUFD the retrieved vfio0");
        CHECK_ERRNO(ioctl(r0, VFIO_DEVICE_GET_INFO, &info), 0, "bound: GET_INFO works");
        harness_check(info.flags & VFIO_DEVICE_FLAGS_PCI, "it is a PCI device");
        a0 = raw_vfio_pci_addr(r0, devid0);
        harness_check(a0 >= 0 && a0 == raw_note_get("pci0", -2), "same PCI address as before the kexec (%llx)", a0);

        CHECK_ERRNO(raw_finish(s), EBUSY, "FINISH while vfio1 is not retrieved -> EBUSY");
        r1 = raw_retrieve_fd(s, 101);
        CHECK_ERRNO(r1, 0, "RETRIEVE_FD vfio1");
        CHECK_ERRNO(raw_finish(s), EBUSY, "FINISH while vfio1 is retrieved but not bound -> EBUSY");
        CHECK_ERRNO(raw_vfio_bind(r1, iommufd, &devid1), 0, "BIND_IOMMUFD the retrieved vfio1");
        CHECK_ERRNO(raw_finish(s), 0, "FINISH once every device is retrieved and bound -> 0");
        CHECK_ERRNO(ioctl(r0, VFIO_DEVICE_GET_INFO, &info), 0, "the device fd works after FINISH");
}

int main(void) {
        raw_init();
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
