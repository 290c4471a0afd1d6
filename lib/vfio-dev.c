/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VFIO device fd helpers for the live update path: information queries, interrupt
 * setup, binding to iommufd, and switching every interrupt off before the freeze.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lu/iommufd.h"
#include "macro.h"
#include "vfio-dev.h"

/* MSI-X allows at most 2048 vectors; more is a caller bug, not a kernel question. */
#define VFIO_IRQS_MAX 2048

static int vfio_ioctl(int fd, unsigned long cmd, void *arg) {
        if (ioctl(fd, cmd, arg) < 0)
                return negative_errno();
        return 0;
}

int vfio_device_get_info(int fd, struct lu_vfio_device_info *ret) {
        struct lu_vfio_device_info info = { .argsz = sizeof(info) };
        int r;

        if (fd < 0)
                return -EBADF;
        if (!ret)
                return -EINVAL;

        r = vfio_ioctl(fd, VFIO_DEVICE_GET_INFO, &info);
        if (r < 0)
                return r;
        *ret = info;
        return 0;
}

int vfio_device_get_irq_info(int fd, uint32_t index, struct vfio_irq_info *ret) {
        struct vfio_irq_info info = { .argsz = sizeof(info), .index = index };
        int r;

        if (fd < 0)
                return -EBADF;
        if (!ret)
                return -EINVAL;

        r = vfio_ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &info);
        if (r < 0)
                return r;
        *ret = info;
        return 0;
}

int vfio_device_set_irqs_eventfd(int fd, uint32_t index, const int *eventfds, uint32_t n) {
        _cleanup_free_ struct vfio_irq_set *set = NULL;
        size_t sz;

        if (fd < 0)
                return -EBADF;
        if (!eventfds || n == 0 || n > VFIO_IRQS_MAX)
                return -EINVAL;
        for (uint32_t i = 0; i < n; i++)
                if (eventfds[i] < -1)
                        return -EBADF;

        sz = sizeof(*set) + (size_t) n * sizeof(int32_t);
        set = calloc(1, sz);
        if (!set)
                return -ENOMEM;
        *set = (struct vfio_irq_set) {
                .argsz = (uint32_t) sz,
                .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                .index = index,
                .start = 0,
                .count = n,
        };
        for (uint32_t i = 0; i < n; i++) {
                int32_t e = eventfds[i];
                memcpy(set->data + i * sizeof(int32_t), &e, sizeof(e));
        }

        return vfio_ioctl(fd, VFIO_DEVICE_SET_IRQS, set);
}

static int vfio_device_disable_index(int fd, uint32_t index) {
        struct vfio_irq_set set = {
                .argsz = sizeof(set),
                .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                .index = index,
                .start = 0,
                .count = 0,
        };

        return vfio_ioctl(fd, VFIO_DEVICE_SET_IRQS, &set);
}

/*
 * vfio-pci accepts "trigger, no data, count 0" only for the interrupt type that is
 * active (at most one of INTx/MSI/MSI-X) and for ERR/REQ while an eventfd is set;
 * for every other index it says EINVAL (and ENOTTY for ERR on a non-PCIe device).
 * Those answers mean "nothing to switch off here". Asking GET_IRQ_INFO first keeps
 * indexes the device does not have from ever reaching SET_IRQS.
 */
int vfio_device_disable_irqs(int fd) {
        struct lu_vfio_device_info info;
        uint32_t num_irqs;
        int r, n = 0;

        if (fd < 0)
                return -EBADF;

        r = vfio_device_get_info(fd, &info);
        if (r == -EINVAL)
                /* A cdev that is not bound to an iommufd refuses everything with EINVAL
                 * (vfio_main.c); it cannot have an interrupt enabled either. */
                return 0;
        if (r < 0)
                return r;
        if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
                /* Index meanings differ for platform/ccw devices. */
                return -EOPNOTSUPP;

        num_irqs = MIN(info.num_irqs, (uint32_t) VFIO_PCI_NUM_IRQS);
        for (uint32_t index = 0; index < num_irqs; index++) {
                struct vfio_irq_info irq;

                r = vfio_device_get_irq_info(fd, index, &irq);
                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        return r;
                if (irq.count == 0)
                        continue;

                r = vfio_device_disable_index(fd, index);
                if (r == -EINVAL || r == -ENOTTY)
                        continue;
                if (r < 0)
                        return r;
                n++;
        }

        return n;
}

int vfio_device_bind_iommufd(int fd, int iommufd, uint32_t *ret_devid) {
        struct vfio_device_bind_iommufd bind = {
                .argsz = sizeof(bind),
                .iommufd = iommufd,
        };
        int r;

        if (fd < 0 || iommufd < 0)
                return -EBADF;

        r = vfio_ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
        if (r < 0)
                return r;
        if (ret_devid)
                *ret_devid = bind.out_devid;
        return 0;
}

int vfio_device_attach_pt(int fd, uint32_t pt_id, uint32_t *ret_pt_id) {
        struct vfio_device_attach_iommufd_pt attach = {
                .argsz = sizeof(attach),
                .pt_id = pt_id,
        };
        int r;

        if (fd < 0)
                return -EBADF;

        r = vfio_ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
        if (r < 0)
                return r;
        if (ret_pt_id)
                *ret_pt_id = attach.pt_id;
        return 0;
}

int iommufd_ioas_alloc(int iommufd, uint32_t *ret_ioas_id) {
        struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
        int r;

        if (iommufd < 0)
                return -EBADF;
        if (!ret_ioas_id)
                return -EINVAL;

        r = vfio_ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc);
        if (r < 0)
                return r;
        *ret_ioas_id = alloc.out_ioas_id;
        return 0;
}
