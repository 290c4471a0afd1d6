/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for lib/vfio-dev.c. Argument checks run against real non-VFIO fds. For
 * vfio_device_disable_irqs() this program defines its own ioctl(), which the static
 * library binds to, modelling vfio-pci's SET_IRQS rules (drivers/vfio/pci/
 * vfio_pci_intrs.c): "trigger, no data, count 0" switches off the active one of
 * INTx/MSI/MSI-X and a set ERR/REQ eventfd; every other index answers EINVAL, and ERR
 * on a conventional PCI device ENOTTY.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lu/iommufd.h"
#include "macro.h"
#include "test-helpers.h"
#include "vfio-dev.h"

#define NONE 5   /* no INTx/MSI/MSI-X type active */

static struct {
        int fd;
        bool pcie;               /* ERR index exists */
        bool pci;                /* VFIO_DEVICE_FLAGS_PCI */
        uint32_t num_irqs;
        uint32_t irq_count[5];   /* vectors per index as GET_IRQ_INFO reports them */
        int active;              /* 0..2 or NONE */
        bool err_set, req_set;
        bool unbound;            /* every ioctl but BIND answers EINVAL */
        unsigned set_irqs_calls;
} dev;

static int fail(int e) {
        errno = e;
        return -1;
}

static int fake_set_irqs(struct vfio_irq_set *s) {
        bool disable = s->flags == (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER) && s->count == 0;

        dev.set_irqs_calls++;
        if (s->argsz < sizeof(*s) || s->index >= dev.num_irqs)
                return fail(EINVAL);
        /* vfio_set_irqs_validate_and_prepare(): an index with no vectors takes nothing. */
        if (s->start >= dev.irq_count[s->index])
                return fail(EINVAL);

        switch (s->index) {
        case VFIO_PCI_INTX_IRQ_INDEX:
        case VFIO_PCI_MSI_IRQ_INDEX:
        case VFIO_PCI_MSIX_IRQ_INDEX:
                if (disable) {
                        if (dev.active != (int) s->index)
                                return fail(EINVAL);
                        dev.active = NONE;
                        return 0;
                }
                if (s->flags & VFIO_IRQ_SET_DATA_EVENTFD) {
                        if (dev.active != NONE && dev.active != (int) s->index)
                                return fail(EINVAL);
                        dev.active = (int) s->index;
                        return 0;
                }
                return fail(EINVAL);
        case VFIO_PCI_ERR_IRQ_INDEX:
                if (!dev.pcie)
                        return fail(ENOTTY);
                if (disable && dev.err_set) {
                        dev.err_set = false;
                        return 0;
                }
                return fail(EINVAL);
        case VFIO_PCI_REQ_IRQ_INDEX:
                if (disable && dev.req_set) {
                        dev.req_set = false;
                        return 0;
                }
                return fail(EINVAL);
        }
        return fail(EINVAL);
}

int ioctl(int fd, unsigned long cmd, ...) {
        va_list ap;
        void *arg;

        va_start(ap, cmd);
        arg = va_arg(ap, void *);
        va_end(ap);

        if (fd != dev.fd)
                return (int) syscall(SYS_ioctl, fd, cmd, arg);

        if (dev.unbound)
                return fail(EINVAL);
        if (cmd == VFIO_DEVICE_GET_INFO) {
                struct lu_vfio_device_info *i = arg;
                if (i->argsz < 16)
                        return fail(EINVAL);
                i->flags = dev.pci ? VFIO_DEVICE_FLAGS_PCI : 0;
                i->num_regions = 9;
                i->num_irqs = dev.num_irqs;
                return 0;
        }
        if (cmd == VFIO_DEVICE_GET_IRQ_INFO) {
                struct vfio_irq_info *i = arg;
                if (i->argsz < sizeof(*i) || i->index >= dev.num_irqs)
                        return fail(EINVAL);
                if (i->index == VFIO_PCI_ERR_IRQ_INDEX && !dev.pcie)
                        return fail(EINVAL);
                i->flags = VFIO_IRQ_INFO_EVENTFD;
                i->count = dev.irq_count[i->index];
                return 0;
        }
        if (cmd == VFIO_DEVICE_SET_IRQS)
                return fake_set_irqs(arg);
        return fail(ENOTTY);
}

static void dev_reset(int fd) {
        dev = (typeof(dev)) {
                .fd = fd,
                .pcie = true,
                .pci = true,
                .num_irqs = 5,
                .irq_count = { 1, 1, 16, 1, 1 },
                .active = NONE,
        };
}

static void test_disable_irqs(void) {
        _cleanup_close_ int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        int efd[4] = { -1, -1, -1, -1 };

        TEST_ASSERT(fd >= 0);

        /* Nothing on: nothing switched off, and that is not an error. */
        dev_reset(fd);
        TEST_ERRNO(vfio_device_disable_irqs(fd), 0);

        /* MSI-X active plus ERR and REQ eventfds: three indexes off, MSI-X really off. */
        dev_reset(fd);
        TEST_ERRNO(vfio_device_set_irqs_eventfd(fd, VFIO_PCI_MSIX_IRQ_INDEX, efd, 4), 0);
        TEST_ASSERT(dev.active == VFIO_PCI_MSIX_IRQ_INDEX);
        dev.err_set = dev.req_set = true;
        TEST_ASSERT(vfio_device_disable_irqs(fd) == 3);
        TEST_ASSERT(dev.active == NONE && !dev.err_set && !dev.req_set);
        /* A second pass finds nothing left. */
        TEST_ASSERT(vfio_device_disable_irqs(fd) == 0);

        /* INTx only. */
        dev_reset(fd);
        dev.active = VFIO_PCI_INTX_IRQ_INDEX;
        TEST_ASSERT(vfio_device_disable_irqs(fd) == 1);
        TEST_ASSERT(dev.active == NONE);

        /* MSI on a conventional PCI device (ERR answers ENOTTY there) without INTx pin. */
        dev_reset(fd);
        dev.pcie = false;
        dev.irq_count[VFIO_PCI_INTX_IRQ_INDEX] = 0;
        dev.active = VFIO_PCI_MSI_IRQ_INDEX;
        dev.req_set = true;
        TEST_ASSERT(vfio_device_disable_irqs(fd) == 2);
        TEST_ASSERT(dev.active == NONE && !dev.req_set);

        /* A device reporting fewer indexes (no REQ) is walked only as far as it goes. */
        dev_reset(fd);
        dev.num_irqs = 3;
        dev.active = VFIO_PCI_MSIX_IRQ_INDEX;
        dev.set_irqs_calls = 0;
        TEST_ASSERT(vfio_device_disable_irqs(fd) == 1);
        TEST_ASSERT(dev.set_irqs_calls <= 3);

        /* An unbound cdev refuses GET_INFO with EINVAL: it has nothing enabled. */
        dev_reset(fd);
        dev.unbound = true;
        TEST_ERRNO(vfio_device_disable_irqs(fd), 0);

        /* Not a PCI device: index numbers mean something else, refuse. */
        dev_reset(fd);
        dev.pci = false;
        TEST_ERRNO(vfio_device_disable_irqs(fd), EOPNOTSUPP);

        dev.fd = -1;
}

static void test_arguments(void) {
        _cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        struct lu_vfio_device_info info;
        struct vfio_irq_info irq;
        int efd[2] = { -1, -1 }, bad[2] = { 3, -7 };
        uint32_t id;

        dev.fd = -1;
        TEST_ASSERT(null >= 0);

        TEST_ERRNO(vfio_device_get_info(-1, &info), EBADF);
        TEST_ERRNO(vfio_device_get_info(null, NULL), EINVAL);
        TEST_ERRNO(vfio_device_get_info(null, &info), ENOTTY);

        TEST_ERRNO(vfio_device_get_irq_info(-1, 0, &irq), EBADF);
        TEST_ERRNO(vfio_device_get_irq_info(null, 0, NULL), EINVAL);
        TEST_ERRNO(vfio_device_get_irq_info(null, 0, &irq), ENOTTY);

        TEST_ERRNO(vfio_device_set_irqs_eventfd(-1, 2, efd, 2), EBADF);
        TEST_ERRNO(vfio_device_set_irqs_eventfd(null, 2, NULL, 2), EINVAL);
        TEST_ERRNO(vfio_device_set_irqs_eventfd(null, 2, efd, 0), EINVAL);
        TEST_ERRNO(vfio_device_set_irqs_eventfd(null, 2, efd, 4096), EINVAL);
        TEST_ERRNO(vfio_device_set_irqs_eventfd(null, 2, bad, 2), EBADF);
        TEST_ERRNO(vfio_device_set_irqs_eventfd(null, 2, efd, 2), ENOTTY);

        TEST_ERRNO(vfio_device_disable_irqs(-1), EBADF);
        TEST_ERRNO(vfio_device_disable_irqs(null), ENOTTY);

        TEST_ERRNO(vfio_device_bind_iommufd(-1, null, &id), EBADF);
        TEST_ERRNO(vfio_device_bind_iommufd(null, -1, &id), EBADF);
        TEST_ERRNO(vfio_device_bind_iommufd(null, null, NULL), ENOTTY);

        TEST_ERRNO(vfio_device_attach_pt(-1, 1, &id), EBADF);
        TEST_ERRNO(vfio_device_attach_pt(null, 1, NULL), ENOTTY);

        TEST_ERRNO(iommufd_ioas_alloc(-1, &id), EBADF);
        TEST_ERRNO(iommufd_ioas_alloc(null, NULL), EINVAL);
        TEST_ERRNO(iommufd_ioas_alloc(null, &id), ENOTTY);
}

int main(void) {
        dev.fd = -1;
        test_arguments();
        test_disable_irqs();
        return test_result("test-vfio-dev");
}
