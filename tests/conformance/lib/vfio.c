/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VFIO devices through lib/ (fd-kind.h, vfio-dev.h, luo.h), on the ABI named in argv[1],
 * luo-emu --vfio=2, two boots.
 *
 * Boot 0: every emulated kind classifies right, with PCI addresses for the device fds;
 * bind + attach; MSI-X and REQ on; preserve the device; upstream: reboot() is refused
 * while the interrupts are on; vfio_device_disable_irqs() switches off exactly the two
 * indexes; then the same reboot goes through.
 * Boot 1: the retrieved device classifies as vfio-retrieved with the same address;
 * FINISH is busy until it is bound again.
 */
#include <sys/eventfd.h>

#include "lib-conf.h"

static void check_kind(int fd, FdKind kind, const char *what, FdInfo *ret) {
        FdInfo info = {};
        int r = fd_classify(fd, &info);

        harness_check(r == 0 && info.kind == kind, "fd_classify(%s) -> %s (got %s, r=%d)", what,
                      fd_kind_to_string(kind), fd_kind_to_string(info.kind), r);
        if (ret)
                *ret = info;
}

/* The address sysfs gives for vfioN, independently of fd_classify(). */
static bool sysfs_pci(unsigned n, PciAddr *ret) {
        char link[64], target[PATH_MAX];
        ssize_t k;

        snprintf(link, sizeof(link), "/sys/class/vfio-dev/vfio%u/device", n);
        k = readlink(link, target, sizeof(target) - 1);
        if (k < 0)
                return false;
        target[k] = '\0';
        return pci_addr_from_path(target, ret) == 0;
}

static void boot0(void) {
        char a0s[PCI_ADDR_STRING_MAX], a1s[PCI_ADDR_STRING_MAX];
        struct lu_vfio_device_info dinfo;
        struct vfio_irq_info irq;
        int d0, d1, iommufd, s = -1, r, g;
        int efd[2] = { -1, -1 }, reqfd;
        uint32_t devid = 0, ioas = 0, pt = 0;
        FdInfo i0, i1;
        PciAddr sys0;
        Luo *l;

        l = conf_open();
        harness_check(luo_get_abi(l) == conf_abi, "%s ABI", luo_abi_to_string(conf_abi));

        d0 = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
        d1 = open("/dev/vfio/devices/vfio1", O_RDWR | O_CLOEXEC);
        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (d0 < 0 || d1 < 0 || iommufd < 0)
                conf_bail("emulated devices missing (run with --vfio=2): %s", strerror(errno));

        check_kind(d0, FD_KIND_VFIO_CDEV, "/dev/vfio/devices/vfio0", &i0);
        check_kind(d1, FD_KIND_VFIO_CDEV, "/dev/vfio/devices/vfio1", &i1);
        harness_check(strcmp(i0.vfio_name, "vfio0") == 0 && strcmp(i1.vfio_name, "vfio1") == 0,
                      "cdev names: %s %s", i0.vfio_name, i1.vfio_name);
        harness_check(i0.has_pci && i1.has_pci, "both cdevs have a PCI address: %s %s",
                      pci_addr_to_string(&i0.pci, a0s), pci_addr_to_string(&i1.pci, a1s));
        harness_check(!pci_addr_equal(&i0.pci, &i1.pci), "and the addresses differ");
        harness_check(sysfs_pci(0, &sys0) && pci_addr_equal(&sys0, &i0.pci),
                      "vfio0's address matches /sys/class/vfio-dev/vfio0/device");
        conf_note_set("pci0", a0s);
        check_kind(iommufd, FD_KIND_IOMMUFD, "/dev/iommu", NULL);
        check_kind(luo_get_fd(l), FD_KIND_OTHER, "/dev/liveupdate", NULL);

        /* Group and container nodes exist only if the emulator offers them. */
        g = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (g >= 0) {
                check_kind(g, FD_KIND_VFIO_GROUP, "/dev/vfio/vfio", NULL);
                close(g);
        } else
                printf("# /dev/vfio/vfio not emulated (%s)\n", strerror(errno));

        r = vfio_device_disable_irqs(d0);
        harness_check(r == 0, "disable_irqs on an unbound cdev: nothing to switch off (%d)", r);
        CHECK_NERRNO(vfio_device_bind_iommufd(d0, iommufd, &devid), 0, "vfio_device_bind_iommufd(vfio0)");
        CHECK_NERRNO(vfio_device_bind_iommufd(d0, iommufd, NULL), EINVAL, "binding twice -> -EINVAL");
        CHECK_NERRNO(iommufd_ioas_alloc(iommufd, &ioas), 0, "iommufd_ioas_alloc()");
        CHECK_NERRNO(vfio_device_attach_pt(d0, ioas, &pt), 0, "vfio_device_attach_pt(vfio0, ioas %u) -> pt %u", ioas, pt);
        CHECK_NERRNO(vfio_device_get_info(d0, &dinfo), 0, "vfio_device_get_info()");
        harness_check((dinfo.flags & VFIO_DEVICE_FLAGS_PCI) && dinfo.num_irqs >= 3,
                      "a PCI device with %u interrupt indexes", dinfo.num_irqs);
        CHECK_NERRNO(vfio_device_get_irq_info(d0, VFIO_PCI_MSIX_IRQ_INDEX, &irq), 0, "vfio_device_get_irq_info(MSI-X)");
        harness_check(irq.count >= 2, "at least two MSI-X vectors (%u)", irq.count);

        r = vfio_device_disable_irqs(d0);
        harness_check(r == 0, "disable_irqs with nothing enabled -> 0 indexes (%d)", r);

        efd[0] = eventfd(0, EFD_CLOEXEC);
        efd[1] = eventfd(0, EFD_CLOEXEC);
        reqfd = eventfd(0, EFD_CLOEXEC);
        CHECK_NERRNO(vfio_device_set_irqs_eventfd(d0, VFIO_PCI_MSIX_IRQ_INDEX, efd, 2), 0, "enable two MSI-X vectors");
        r = vfio_device_set_irqs_eventfd(d0, VFIO_PCI_MSI_IRQ_INDEX, efd, 1);
        CHECK_NERRNO(r, EINVAL, "MSI while MSI-X is active -> -EINVAL");
        r = dinfo.num_irqs > VFIO_PCI_REQ_IRQ_INDEX ?
                vfio_device_set_irqs_eventfd(d0, VFIO_PCI_REQ_IRQ_INDEX, &reqfd, 1) : -ENOENT;
        bool req_on = r == 0;
        if (!req_on)
                printf("# REQ eventfd not available (%s)\n", strerror(-r));

        CHECK_NERRNO(luo_session_create(l, "lib-vfio", &s), 0, "create session lib-vfio");
        CHECK_NERRNO(luo_session_preserve_fd(l, s, d0, 100), 0, "preserve the bound vfio0 cdev");

        {
                char path[PATH_MAX];
                char *cmdline = NULL;
                if (kernel_cmdline_read(&cmdline) < 0)
                        conf_bail("cmdline");
                CHECK_NERRNO(kexec_load_kernel(conf_write_image(true, path, sizeof(path)), NULL, cmdline), 0,
                             "kexec_load_kernel()");
                free(cmdline);
        }
        /*
         * Upstream (D1/D2 VFIO handler): the freeze refuses a device with interrupts on.
         * The v4 RFC (R1) switched them off inside the kernel's freeze instead (spec
         * §4.1), and luo-emu --abi=v4 does the same, so there the reboot would succeed.
         */
        if (conf_abi == LUO_ABI_UPSTREAM) {
                harness_carry();
                CHECK_NERRNO(kexec_reboot(), EINVAL, "kexec_reboot() with MSI-X on -> -EINVAL (freeze refused)");
        }

        r = vfio_device_disable_irqs(d0);
        harness_check(r >= 1 + (int) req_on, "vfio_device_disable_irqs() switched off MSI-X%s (%d)",
                      req_on ? " and REQ" : "", r);
        harness_check(r == 1 + (int) req_on, "vfio_device_disable_irqs() switched off %d indexes (expected %d)",
                      r, 1 + (int) req_on);
        r = vfio_device_disable_irqs(d0);
        harness_check(r == 0, "a second call finds nothing left on (%d)", r);
        r = vfio_device_disable_irqs(d1);
        harness_check(r == 0, "the other (unbound) device has nothing on (%d)", r);

        conf_kexec(l);
}

static void boot1(void) {
        char a0s[PCI_ADDR_STRING_MAX], note[64];
        int s = -1, d = -1, iommufd, r;
        PciAddr want;
        FdInfo info;
        Luo *l;

        l = conf_open();
        CHECK_NERRNO(luo_session_retrieve(l, "lib-vfio", &s), 0, "retrieve session lib-vfio");
        if (s < 0)
                conf_bail("session lost");
        CHECK_NERRNO(luo_session_finish(l, s), EBUSY, "FINISH before the device is retrieved -> -EBUSY");
        CHECK_NERRNO(luo_session_retrieve_fd(l, s, 100, &d), 0, "retrieve the device (token 100)");
        if (d < 0)
                conf_bail("device lost");
        check_kind(d, FD_KIND_VFIO_RETRIEVED, "retrieved device", &info);
        harness_check(info.has_pci && pci_addr_parse(conf_note_get("pci0", note, sizeof(note)), &want) == 0 &&
                      pci_addr_equal(&info.pci, &want),
                      "its PCI address is the one vfio0 had before the kexec (%s, was %s)",
                      pci_addr_to_string(&info.pci, a0s), note);
        r = luo_session_finish(l, s);
        harness_check(r == -EBUSY, "FINISH while the device is not bound -> -EBUSY (%d)", r);
        bool finished = r >= 0;
        r = vfio_device_disable_irqs(d);
        harness_check(r == 0, "disable_irqs on the unbound retrieved fd -> 0 (%d)", r);

        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK_NERRNO(vfio_device_bind_iommufd(d, iommufd, NULL), 0, "bind the retrieved device to a new iommufd");
        if (!finished)
                CHECK_NERRNO(luo_session_finish(l, s), 0, "FINISH once it is bound");
        if (conf_abi == LUO_ABI_V4)
                CHECK_NERRNO(luo_finish(l), 0, "v4: global FINISH");
        luo_free(l);
}

int main(int argc, char **argv) {
        conf_init(argc, argv);
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
