/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Emulated vfio-pci devices behind /dev/vfio/devices/vfioN: the cdev open rules,
 * BIND_IOMMUFD / ATTACH_IOMMUFD_PT, device and IRQ info, and SET_IRQS with the
 * validation and INTx/MSI/MSI-X state machine of drivers/vfio (one active type,
 * enable with eventfds, disable with DATA_NONE|ACTION_TRIGGER and count 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu.h"
#include "lu/vfio-cdev.h"

struct vfio_dev *vfio_devs;

/* IRQ counts per index: INTx, MSI, MSI-X, ERR, REQ */
static const unsigned irq_counts[5] = { 1, 4, 16, 1, 1 };

void vfio_init(void) {
        vfio_devs = calloc(opt.n_vfio ? opt.n_vfio : 1, sizeof(*vfio_devs));
        if (!vfio_devs)
                abort();
        for (unsigned i = 0; i < opt.n_vfio; i++) {
                struct vfio_dev *d = &vfio_devs[i];

                d->index = i;
                d->bus = (uint8_t) (i + 1);
                d->devfn = 0;
                snprintf(d->bdf, sizeof(d->bdf), "0000:%02x:00.0", d->bus);
                d->irq_type = IRQ_NONE;
                d->driver_bound = true;
        }
}

void vfio_boot_reset(void) {
        for (unsigned i = 0; i < opt.n_vfio; i++) {
                struct vfio_dev *d = &vfio_devs[i];

                d->bound = NULL;
                d->irq_type = IRQ_NONE;
                d->irq_count = 0;
                d->err_trigger = d->req_trigger = false;
                d->group_opened = false;
                d->group_files = 0;
                vfio_container_put(d->group_container);
                d->group_container = NULL;
        }
}

/* Switches off the active INTx/MSI/MSI-X type (ERR/REQ eventfds are separate). */
void vfio_irqs_off(struct vfio_dev *d) {
        d->irq_type = IRQ_NONE;
        d->irq_count = 0;
}

struct vfio_file *vfio_file_new(struct vfio_dev *d, bool retrieved) {
        struct vfio_file *f = calloc(1, sizeof(*f));

        if (!f)
                return NULL;
        f->dev = d;
        f->retrieved = retrieved;
        f->group_ref = -EBADF;
        return f;
}

int vfio_open_cdev(struct call *c, unsigned index, int flags) {
        struct vfio_dev *d = &vfio_devs[index];
        struct vfio_file *f;
        struct object *o;
        int r;

        if (!d->driver_bound)
                return -ENOENT;         /* no vfio-pci driver yet: no cdev */
        if (d->incoming_busy)
                return -EBUSY;          /* preserved by the previous kernel: RETRIEVE_FD only */
        f = vfio_file_new(d, false);
        if (!f)
                return -ENOMEM;
        o = object_new(OBJ_VFIO);
        if (!o) {
                free(f);
                return -ENOMEM;
        }
        o->vfio = f;
        f->obj = o;
        if (!call_valid(c)) {
                object_free(o);
                free(f);
                return -ESRCH;
        }
        r = call_addfd_send(c, o->b_fd, flags & O_CLOEXEC);
        if (r < 0) {
                object_free(o);
                free(f);
                return r;
        }
        object_installed(o);
        return 0;
}

static void file_unbind(struct vfio_file *f) {
        struct vfio_dev *d = f->dev;

        if (!f->access)
                return;
        if (d->bound == f) {
                /* closing the device disables everything, ERR/REQ included */
                vfio_irqs_off(d);
                d->err_trigger = d->req_trigger = false;
                d->bound = NULL;
        }
        if (f->pt_id)
                iommufd_detach(f->ictx, f->pt_id);
        f->pt_id = 0;
        iommufd_put(f->ictx);
        f->ictx = NULL;
        f->access = false;
}

void vfio_file_release(struct vfio_file *f) {
        if (!f)
                return;
        if (f->group) {
                struct vfio_dev *d = f->dev;

                /* the last device fd closes the device: everything goes off */
                if (d->group_files > 0 && --d->group_files == 0 && !d->bound) {
                        vfio_irqs_off(d);
                        d->err_trigger = d->req_trigger = false;
                }
                safe_close(f->group_ref);       /* may release the group in turn */
        }
        file_unbind(f);
        free(f);
}

/* Validates an eventfd number of the caller: 0, -EBADF or -EINVAL. */
static int check_eventfd(struct call *c, int32_t fd) {
        _cleanup_close_ int copy = -EBADF;
        char p[64], link[64];
        ssize_t n;

        copy = call_getfd(c, fd);
        if (copy < 0)
                return -EBADF;
        snprintf(p, sizeof(p), "/proc/self/fd/%d", copy);
        n = readlink(p, link, sizeof(link) - 1);
        if (n < 0)
                return -EBADF;
        link[n] = 0;
        return strcmp(link, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

static int check_eventfds(struct call *c, const int32_t *fds, unsigned count) {
        for (unsigned i = 0; i < count; i++)
                if (fds[i] >= 0) {
                        int r = check_eventfd(c, fds[i]);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int set_intx_trigger(struct call *c, struct vfio_dev *d, uint32_t flags, uint32_t start,
                            uint32_t count, const void *data) {
        if (d->irq_type == IRQ_INTX && count == 0 && (flags & VFIO_IRQ_SET_DATA_NONE)) {
                vfio_irqs_off(d);
                return 0;
        }
        if (!(d->irq_type == IRQ_INTX || d->irq_type == IRQ_NONE) || start != 0 || count != 1)
                return -EINVAL;
        if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
                int r = check_eventfds(c, data, 1);
                if (r < 0)
                        return r;
                d->irq_type = IRQ_INTX;
                d->irq_count = 1;
                return 0;
        }
        if (d->irq_type != IRQ_INTX)
                return -EINVAL;
        return 0;       /* loopback trigger */
}

static int set_msi_trigger(struct call *c, struct vfio_dev *d, int index, uint32_t flags, uint32_t start,
                           uint32_t count, const void *data) {
        if (d->irq_type == index && count == 0 && (flags & VFIO_IRQ_SET_DATA_NONE)) {
                vfio_irqs_off(d);
                return 0;
        }
        if (!(d->irq_type == index || d->irq_type == IRQ_NONE))
                return -EINVAL;
        if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
                int r;

                if (d->irq_type == index) {
                        if (start >= d->irq_count || start + count > d->irq_count)
                                return -EINVAL;
                        return check_eventfds(c, data, count);
                }
                if (start + count == 0)
                        return -EINVAL;
                r = check_eventfds(c, data, count);
                if (r < 0)
                        return r;
                d->irq_type = index;
                d->irq_count = start + count;
                return 0;
        }
        if (d->irq_type != index)
                return -EINVAL;
        return 0;
}

static int set_single_trigger(struct call *c, bool *trigger, uint32_t flags, uint32_t count, const void *data) {
        if (flags & VFIO_IRQ_SET_DATA_NONE) {
                /* loopback signal or teardown; only with an eventfd set */
                if (!*trigger)
                        return -EINVAL;
                if (count == 0)
                        *trigger = false;
                return 0;
        }
        if (flags & VFIO_IRQ_SET_DATA_BOOL)
                return count ? 0 : -EINVAL;
        if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
                int32_t fd;
                int r;

                if (!count)
                        return -EINVAL;
                memcpy(&fd, data, sizeof(fd));
                if (fd == -1)
                        *trigger = false;
                else if (fd >= 0) {
                        r = check_eventfd(c, fd);
                        if (r < 0)
                                return r;
                        *trigger = true;
                }
                return 0;
        }
        return -EINVAL;
}

static int ioctl_set_irqs(struct call *c, struct vfio_dev *d, uint64_t arg) {
        struct vfio_irq_set hdr;
        uint8_t data[4 * 64] = {};
        size_t size;
        unsigned max;

        if (call_read(c, arg, &hdr, offsetof(struct vfio_irq_set, data)) < 0)
                return -EFAULT;
        max = hdr.index < 5 ? irq_counts[hdr.index] : 0;
        if (hdr.argsz < offsetof(struct vfio_irq_set, data) || hdr.index >= 5 ||
            hdr.count >= UINT32_MAX - hdr.start ||
            (hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)))
                return -EINVAL;
        if (hdr.start >= max || hdr.start + hdr.count > max)
                return -EINVAL;
        switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
        case VFIO_IRQ_SET_DATA_NONE:
                size = 0;
                break;
        case VFIO_IRQ_SET_DATA_BOOL:
                size = 1;
                break;
        case VFIO_IRQ_SET_DATA_EVENTFD:
                size = 4;
                break;
        default:
                return -EINVAL;
        }
        if (size) {
                if (hdr.argsz - offsetof(struct vfio_irq_set, data) < hdr.count * size)
                        return -EINVAL;
                if (hdr.count * size > sizeof(data))
                        return -EINVAL;
                if (call_read(c, arg + offsetof(struct vfio_irq_set, data), data, hdr.count * size) < 0)
                        return -EFAULT;
        }

        switch (hdr.index) {
        case IRQ_INTX:
                switch (hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) {
                case VFIO_IRQ_SET_ACTION_MASK:
                case VFIO_IRQ_SET_ACTION_UNMASK:
                        if (d->irq_type != IRQ_INTX || hdr.start != 0 || hdr.count != 1)
                                return -EINVAL;
                        return 0;
                case VFIO_IRQ_SET_ACTION_TRIGGER:
                        return set_intx_trigger(c, d, hdr.flags, hdr.start, hdr.count, data);
                }
                break;
        case IRQ_MSI:
        case IRQ_MSIX:
                if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) == VFIO_IRQ_SET_ACTION_TRIGGER)
                        return set_msi_trigger(c, d, (int) hdr.index, hdr.flags, hdr.start, hdr.count, data);
                break;
        case IRQ_ERR:
        case IRQ_REQ:
                if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) == VFIO_IRQ_SET_ACTION_TRIGGER)
                        return set_single_trigger(c, hdr.index == IRQ_ERR ? &d->err_trigger : &d->req_trigger,
                                                  hdr.flags, hdr.count, data);
                break;
        }
        return -ENOTTY;
}

static int ioctl_bind(struct call *c, struct vfio_file *f, uint64_t arg) {
        struct vfio_device_bind_iommufd b;
        struct vfio_dev *d = f->dev;
        _cleanup_close_ int copy = -EBADF;
        struct object *io;
        struct stat st;

        if (call_read(c, arg, &b, offsetof(struct vfio_device_bind_iommufd, token_uuid_ptr)) < 0)
                return -EFAULT;
        if (b.argsz < offsetof(struct vfio_device_bind_iommufd, token_uuid_ptr) ||
            (b.flags & ~VFIO_DEVICE_BIND_FLAG_TOKEN))
                return -EINVAL;
        if (f->group)
                return -EINVAL;         /* BIND_IOMMUFD is for cdev fds only */
        if (d->group_opened)
                return -EBUSY;          /* vfio_device_block_group() */
        if (f->access)
                return -EINVAL;         /* one file binds once */
        if ((b.flags & VFIO_DEVICE_BIND_FLAG_TOKEN) && b.argsz < sizeof(b))
                return -EINVAL;
        copy = call_getfd(c, b.iommufd);
        if (copy < 0)
                return -EBADF;
        if (fstat(copy, &st) < 0 || !S_ISSOCK(st.st_mode) || !(io = object_find(st.st_ino)) ||
            io->kind != OBJ_IOMMUFD)
                return -EBADFD;
        if (d->bound)
                return -EINVAL;         /* the cdev path opens a device once */
        b.out_devid = iommufd_new_devid(io->iommufd);
        if (call_write(c, arg + offsetof(struct vfio_device_bind_iommufd, out_devid), &b.out_devid,
                       sizeof(b.out_devid)) < 0)
                return -EFAULT;
        f->access = true;
        f->ictx = iommufd_get(io->iommufd);
        d->bound = f;
        d->devid = b.out_devid;
        /* Binding consumes the state handed over by the previous kernel. */
        d->incoming_state = false;
        log_debug("%s bound to iommufd (devid %u)", d->bdf, b.out_devid);
        return 0;
}

static int ioctl_attach(struct call *c, struct vfio_file *f, uint64_t arg) {
        struct vfio_device_attach_iommufd_pt a;
        int r;

        if (call_read(c, arg, &a, offsetof(struct vfio_device_attach_iommufd_pt, pasid)) < 0)
                return -EFAULT;
        if (a.argsz < offsetof(struct vfio_device_attach_iommufd_pt, pasid) || (a.flags & ~VFIO_DEVICE_ATTACH_PASID))
                return -EINVAL;
        if (a.flags & VFIO_DEVICE_ATTACH_PASID)
                return -EOPNOTSUPP;
        r = iommufd_attach(f->ictx, a.pt_id);
        if (r < 0)
                return r;
        if (f->pt_id)
                iommufd_detach(f->ictx, f->pt_id);
        f->pt_id = (uint32_t) r;
        a.pt_id = (uint32_t) r;
        if (call_write(c, arg + offsetof(struct vfio_device_attach_iommufd_pt, pt_id), &a.pt_id, sizeof(a.pt_id)) < 0)
                return -EFAULT;
        return 0;
}

static int ioctl_detach(struct call *c, struct vfio_file *f, uint64_t arg) {
        struct vfio_device_detach_iommufd_pt a;

        if (call_read(c, arg, &a, offsetof(struct vfio_device_detach_iommufd_pt, pasid)) < 0)
                return -EFAULT;
        if (a.argsz < offsetof(struct vfio_device_detach_iommufd_pt, pasid) || (a.flags & ~VFIO_DEVICE_ATTACH_PASID))
                return -EINVAL;
        if (a.flags & VFIO_DEVICE_ATTACH_PASID)
                return -EOPNOTSUPP;
        if (f->pt_id)
                iommufd_detach(f->ictx, f->pt_id);
        f->pt_id = 0;
        return 0;
}

static int ioctl_get_info(struct call *c, uint64_t arg) {
        struct lu_vfio_device_info info;

        if (call_read(c, arg, &info, 16) < 0)
                return -EFAULT;
        if (info.argsz < 16)
                return -EINVAL;
        info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
        info.num_regions = VFIO_PCI_NUM_REGIONS + 0;
        info.num_irqs = VFIO_PCI_NUM_IRQS;
        return call_write(c, arg, &info, 16);
}

static int ioctl_get_irq_info(struct call *c, uint64_t arg) {
        struct vfio_irq_info info;

        if (call_read(c, arg, &info, sizeof(info)) < 0)
                return -EFAULT;
        if (info.argsz < sizeof(info) || info.index >= VFIO_PCI_NUM_IRQS)
                return -EINVAL;
        info.flags = VFIO_IRQ_INFO_EVENTFD;
        info.count = irq_counts[info.index];
        if (info.index == VFIO_PCI_INTX_IRQ_INDEX)
                info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
        else if (info.index != VFIO_PCI_MSIX_IRQ_INDEX)
                info.flags |= VFIO_IRQ_INFO_NORESIZE;   /* MSI-X: dynamic allocation supported */
        return call_write(c, arg, &info, sizeof(info));
}

static int ioctl_get_region_info(struct call *c, uint64_t arg) {
        struct vfio_region_info info;

        if (call_read(c, arg, &info, offsetof(struct vfio_region_info, offset) + 8) < 0)
                return -EFAULT;
        if (info.argsz < offsetof(struct vfio_region_info, offset) + 8 || info.index >= VFIO_PCI_NUM_REGIONS)
                return -EINVAL;
        info.offset = (uint64_t) info.index << 40;
        info.cap_offset = 0;
        switch (info.index) {
        case VFIO_PCI_BAR0_REGION_INDEX:
                info.size = 0x4000;
                info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
                break;
        case VFIO_PCI_CONFIG_REGION_INDEX:
                info.size = 4096;
                info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
                break;
        default:
                info.size = 0;
                info.flags = 0;
                break;
        }
        return call_write(c, arg, &info, offsetof(struct vfio_region_info, offset) + 8);
}

static int ioctl_hot_reset_info(struct call *c, struct vfio_file *f, uint64_t arg) {
        struct vfio_pci_hot_reset_info hdr;
        struct lu_vfio_pci_dependent_device dev;

        if (call_read(c, arg, &hdr, sizeof(hdr)) < 0)
                return -EFAULT;
        if (hdr.argsz < sizeof(hdr))
                return -EINVAL;
        hdr.flags = VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
        hdr.count = 1;
        if (hdr.argsz < sizeof(hdr) + sizeof(dev)) {
                if (call_write(c, arg, &hdr, sizeof(hdr)) < 0)
                        return -EFAULT;
                return -ENOSPC;
        }
        dev = (struct lu_vfio_pci_dependent_device) {
                .devid = f->dev->devid, .segment = 0, .bus = f->dev->bus, .devfn = f->dev->devfn,
        };
        if (call_write(c, arg, &hdr, sizeof(hdr)) < 0 || call_write(c, arg + sizeof(hdr), &dev, sizeof(dev)) < 0)
                return -EFAULT;
        return 0;
}

void vfio_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg) {
        struct vfio_file *f = o->vfio;
        int r;

        if (cmd == VFIO_DEVICE_BIND_IOMMUFD)
                return call_reply(c, ioctl_bind(c, f, arg));
        /* Nothing but BIND until access is granted. */
        if (!f->access)
                return call_reply(c, -EINVAL);

        switch (cmd) {
        case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
                /* cdev-only ioctls; a group device fd hands them to vfio-pci: ENOTTY */
                r = f->group ? -ENOTTY : ioctl_attach(c, f, arg);
                break;
        case VFIO_DEVICE_DETACH_IOMMUFD_PT:
                r = f->group ? -ENOTTY : ioctl_detach(c, f, arg);
                break;
        case VFIO_DEVICE_GET_INFO:
                r = ioctl_get_info(c, arg);
                break;
        case VFIO_DEVICE_GET_IRQ_INFO:
                r = ioctl_get_irq_info(c, arg);
                break;
        case VFIO_DEVICE_GET_REGION_INFO:
                r = ioctl_get_region_info(c, arg);
                break;
        case VFIO_DEVICE_SET_IRQS:
                r = ioctl_set_irqs(c, f->dev, arg);
                break;
        case VFIO_DEVICE_RESET:
                r = 0;
                break;
        case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
                r = ioctl_hot_reset_info(c, f, arg);
                break;
        default:
                r = -ENOTTY;
                break;
        }
        call_reply(c, r);
}

/* Region access through pread/pwrite at VFIO_PCI_INDEX_TO_OFFSET(index) + offset. */
void vfio_rw(struct call *c, struct vfio_file *f, bool write, uint64_t buf, uint64_t count, int64_t pos) {
        uint64_t index = (uint64_t) pos >> 40, off = (uint64_t) pos & ((1ull << 40) - 1), size;
        uint8_t data[4096];

        if (!f->access)
                return call_reply(c, -EINVAL);
        if (pos < 0)
                return call_reply(c, -EINVAL);
        if (index == VFIO_PCI_BAR0_REGION_INDEX)
                size = 0x4000;
        else if (index == VFIO_PCI_CONFIG_REGION_INDEX)
                size = 4096;
        else
                return call_reply(c, -EINVAL);
        if (off >= size)
                return call_reply(c, -EINVAL);
        count = MIN(count, size - off);
        count = MIN(count, (uint64_t) sizeof(data));
        if (write)
                return call_reply(c, (int64_t) count);  /* writes are accepted and dropped */
        memset(data, 0, sizeof(data));
        if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
                /* vendor 0x1b36, device 0x0010, class 0x010802 (NVMe) */
                static const uint8_t hdr[12] = { 0x36, 0x1b, 0x10, 0x00, 0, 0, 0x10, 0, 0, 0x02, 0x08, 0x01 };
                for (uint64_t i = 0; i < count; i++)
                        if (off + i < sizeof(hdr))
                                data[i] = hdr[off + i];
        }
        if (call_write(c, buf, data, (size_t) count) < 0)
                return call_reply(c, -EFAULT);
        call_reply(c, (int64_t) count);
}
