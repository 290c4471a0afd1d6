/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The legacy VFIO path: the container /dev/vfio/vfio and one IOMMU group
 * /dev/vfio/<i> per emulated device (group i holds device i). It exists so that
 * group-obtained device fds can be told apart by the LUO rules (no handler: ENOENT;
 * BIND_IOMMUFD: EINVAL) and so that the group and cdev paths exclude each other
 * as in vfio_main.c/group.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu.h"
#include "lu/vfio-cdev.h"

struct vfio_container {
        int refs;
        unsigned n_groups;
        uint32_t iommu_type;            /* 0 until VFIO_SET_IOMMU */
};

static struct vfio_container *container_get(struct vfio_container *k) {
        if (k)
                k->refs++;
        return k;
}

void vfio_container_put(struct vfio_container *k) {
        if (k && --k->refs == 0)
                free(k);
}

int vfio_container_open(struct call *c, int flags) {
        struct vfio_container *k = calloc(1, sizeof(*k));
        struct object *o;
        int r;

        if (!k)
                return -ENOMEM;
        k->refs = 1;
        o = object_new(OBJ_VFIO_CONTAINER);
        if (!o) {
                free(k);
                return -ENOMEM;
        }
        o->container = k;
        r = call_addfd_send(c, o->b_fd, flags & O_CLOEXEC);
        if (r < 0) {
                object_free(o);
                free(k);
                return r;
        }
        object_installed(o);
        return 0;
}

int vfio_group_open(struct call *c, unsigned index, int flags) {
        struct vfio_dev *d = &vfio_devs[index];
        struct object *o;
        int r;

        if (!d->driver_bound)
                return -ENOENT;
        /* single opener; and not while the device is open through its cdev */
        if (d->group_opened || d->bound)
                return -EBUSY;
        o = object_new(OBJ_VFIO_GROUP);
        if (!o)
                return -ENOMEM;
        o->group_dev = d;
        r = call_addfd_send(c, o->b_fd, flags & O_CLOEXEC);
        if (r < 0) {
                object_free(o);
                return r;
        }
        object_installed(o);
        d->group_opened = true;
        return 0;
}

static void group_detach(struct vfio_dev *d) {
        struct vfio_container *k = d->group_container;

        if (!k)
                return;
        if (k->n_groups > 0 && --k->n_groups == 0)
                k->iommu_type = 0;      /* the last group takes the IOMMU model with it */
        d->group_container = NULL;
        vfio_container_put(k);
}

/* Device fds hold their group file, so this runs only once they are all closed. */
void vfio_group_release(struct vfio_dev *d) {
        group_detach(d);
        d->group_opened = false;
}

static int group_get_device_fd(struct call *c, struct object *go, uint64_t arg) {
        struct vfio_dev *d = go->group_dev;
        char name[256];
        struct vfio_file *f;
        struct object *o;
        int r;

        if (call_read_string(c, arg, name, sizeof(name)) < 0)
                return -EFAULT;
        if (!d->group_container || !d->group_container->iommu_type)
                return -EINVAL;         /* no container or no IOMMU model yet */
        if (strcmp(name, d->bdf) != 0)
                return -ENODEV;
        if (d->incoming_busy)
                return -EBUSY;          /* preserved by the previous kernel (spec §4.1) */
        f = vfio_file_new(d, false);
        if (!f)
                return -ENOMEM;
        f->group = true;
        f->access = true;               /* the group path opens the device right away */
        f->group_ref = call_getfd(c, (int) c->req->data.args[0]);
        o = object_new(OBJ_VFIO);
        if (!o) {
                safe_close(f->group_ref);
                free(f);
                return -ENOMEM;
        }
        o->vfio = f;
        f->obj = o;
        r = call_addfd_send(c, o->b_fd, true);
        if (r < 0) {
                object_free(o);
                safe_close(f->group_ref);
                free(f);
                return r;
        }
        object_installed(o);
        d->group_files++;
        return 0;
}

void vfio_group_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg) {
        struct vfio_dev *d = o->group_dev;
        struct vfio_group_status st;
        struct object *ko;
        struct stat sb;
        int32_t fd;
        int copy, r;

        switch (cmd) {
        case VFIO_GROUP_GET_STATUS:
                if (call_read(c, arg, &st, sizeof(st)) < 0)
                        return call_reply(c, -EFAULT);
                if (st.argsz < sizeof(st))
                        return call_reply(c, -EINVAL);
                st.flags = VFIO_GROUP_FLAGS_VIABLE | (d->group_container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
                return call_reply(c, call_write(c, arg, &st, sizeof(st)));
        case VFIO_GROUP_SET_CONTAINER:
                if (call_read(c, arg, &fd, sizeof(fd)) < 0)
                        return call_reply(c, -EFAULT);
                if (fd < 0)
                        return call_reply(c, -EINVAL);
                copy = call_getfd(c, fd);
                if (copy < 0)
                        return call_reply(c, -EBADF);
                r = fstat(copy, &sb);
                close(copy);
                ko = r == 0 && S_ISSOCK(sb.st_mode) ? object_find(sb.st_ino) : NULL;
                if (!ko || ko->kind != OBJ_VFIO_CONTAINER)
                        return call_reply(c, -EBADFD);
                if (d->group_container)
                        return call_reply(c, -EINVAL);
                d->group_container = container_get(ko->container);
                ko->container->n_groups++;
                return call_reply(c, 0);
        case VFIO_GROUP_UNSET_CONTAINER:
                if (!d->group_container)
                        return call_reply(c, -EINVAL);
                if (d->group_files > 0)
                        return call_reply(c, -EBUSY);
                group_detach(d);
                return call_reply(c, 0);
        case VFIO_GROUP_GET_DEVICE_FD:
                r = group_get_device_fd(c, o, arg);
                if (r < 0)
                        call_reply(c, r);
                return;
        default:
                return call_reply(c, -ENOTTY);
        }
}

void vfio_container_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg) {
        struct vfio_container *k = o->container;

        switch (cmd) {
        case VFIO_GET_API_VERSION:
                return call_reply(c, VFIO_API_VERSION);
        case VFIO_CHECK_EXTENSION:
                return call_reply(c, arg == VFIO_TYPE1_IOMMU || arg == VFIO_TYPE1v2_IOMMU);
        case VFIO_SET_IOMMU:
                if (k->n_groups == 0 || k->iommu_type)
                        return call_reply(c, -EINVAL);
                if (arg != VFIO_TYPE1_IOMMU && arg != VFIO_TYPE1v2_IOMMU)
                        return call_reply(c, -ENODEV);
                k->iommu_type = (uint32_t) arg;
                return call_reply(c, 0);
        case VFIO_IOMMU_MAP_DMA:
        case VFIO_IOMMU_UNMAP_DMA:
                /* accepted, nothing is mapped (like the emulated iommufd) */
                return call_reply(c, k->iommu_type ? 0 : -EINVAL);
        default:
                return call_reply(c, -ENOTTY);
        }
}
