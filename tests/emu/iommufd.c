/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Emulated iommufd behind /dev/iommu: enough object model (IOAS, HWPT, device
 * ids) for VFIO cdev binding and attaching, with the kernel's size-prefixed
 * dispatcher. Mappings are validated and accepted, nothing is mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emu.h"
#include "lu/iommufd.h"

enum { IOBJ_IOAS = 1, IOBJ_HWPT, IOBJ_DEVICE };

struct iobj {
        uint32_t id;
        int type;
        uint32_t users;
        uint32_t ioas;          /* HWPT: parent IOAS (auto domain) */
};

struct iommufd {
        int refs;
        uint32_t next_id;
        uint64_t next_iova;
        struct iobj *objs;
        size_t n, alloc;
};

struct iommufd *iommufd_get(struct iommufd *i) {
        if (i)
                i->refs++;
        return i;
}

void iommufd_put(struct iommufd *i) {
        if (!i || --i->refs > 0)
                return;
        free(i->objs);
        free(i);
}

void iommufd_release(struct iommufd *i) {
        iommufd_put(i);
}

static struct iobj *iobj_find(struct iommufd *i, uint32_t id) {
        for (size_t k = 0; k < i->n; k++)
                if (i->objs[k].id == id)
                        return &i->objs[k];
        return NULL;
}

static struct iobj *iobj_new(struct iommufd *i, int type) {
        if (i->n == i->alloc) {
                size_t n = i->alloc ? i->alloc * 2 : 8;
                struct iobj *o = realloc(i->objs, n * sizeof(*o));
                if (!o)
                        return NULL;
                i->objs = o;
                i->alloc = n;
        }
        i->objs[i->n] = (struct iobj) { .id = i->next_id++, .type = type };
        return &i->objs[i->n++];
}

static void iobj_remove(struct iommufd *i, struct iobj *o) {
        size_t k = (size_t) (o - i->objs);
        memmove(&i->objs[k], &i->objs[k + 1], (i->n - k - 1) * sizeof(*o));
        i->n--;
}

uint32_t iommufd_new_devid(struct iommufd *i) {
        struct iobj *o = iobj_new(i, IOBJ_DEVICE);
        return o ? o->id : 0;
}

int iommufd_attach(struct iommufd *i, uint32_t pt_id) {
        struct iobj *o;

        if (!i)
                return -EINVAL;
        o = iobj_find(i, pt_id);
        if (!o || (o->type != IOBJ_IOAS && o->type != IOBJ_HWPT))
                return -ENOENT;
        if (o->type == IOBJ_HWPT) {
                o->users++;
                return (int) o->id;
        }
        /* Attaching to an IOAS allocates an automatic HWPT, whose id is reported back. */
        o->users++;
        o = iobj_new(i, IOBJ_HWPT);
        if (!o)
                return -ENOMEM;
        o->ioas = pt_id;
        o->users = 1;
        return (int) o->id;
}

void iommufd_detach(struct iommufd *i, uint32_t hwpt_id) {
        struct iobj *o;
        uint32_t ioas;

        if (!i || !(o = iobj_find(i, hwpt_id)))
                return;
        if (o->users > 0)
                o->users--;
        if (o->users == 0 && o->ioas) {
                ioas = o->ioas;
                iobj_remove(i, o);
                o = iobj_find(i, ioas);
                if (o && o->users > 0)
                        o->users--;
        }
}

int iommufd_open(struct call *c, int flags) {
        struct iommufd *i = calloc(1, sizeof(*i));
        struct object *o;
        int r;

        if (!i)
                return -ENOMEM;
        i->refs = 1;
        i->next_id = 1;
        i->next_iova = 1ull << 32;
        o = object_new(OBJ_IOMMUFD);
        if (!o) {
                free(i);
                return -ENOMEM;
        }
        o->iommufd = i;
        r = call_addfd_send(c, o->b_fd, flags & O_CLOEXEC);
        if (r < 0) {
                object_free(o);
                free(i);
                return r;
        }
        object_installed(o);
        return 0;
}

struct iommufd_op {
        unsigned cmd;
        uint32_t size, min_size;
};

static const struct iommufd_op ops[] = {
        [IOMMUFD_CMD_DESTROY - IOMMUFD_CMD_BASE] = { IOMMU_DESTROY, sizeof(struct iommu_destroy), 8 },
        [IOMMUFD_CMD_IOAS_ALLOC - IOMMUFD_CMD_BASE] = { IOMMU_IOAS_ALLOC, sizeof(struct iommu_ioas_alloc), 12 },
        [IOMMUFD_CMD_IOAS_MAP - IOMMUFD_CMD_BASE] = { IOMMU_IOAS_MAP, sizeof(struct iommu_ioas_map), 40 },
        [IOMMUFD_CMD_IOAS_UNMAP - IOMMUFD_CMD_BASE] = { IOMMU_IOAS_UNMAP, sizeof(struct iommu_ioas_unmap), 24 },
        [IOMMUFD_CMD_HWPT_ALLOC - IOMMUFD_CMD_BASE] = { IOMMU_HWPT_ALLOC, sizeof(struct iommu_hwpt_alloc), 24 },
        [IOMMUFD_CMD_IOAS_MAP_FILE - IOMMUFD_CMD_BASE] = { IOMMU_IOAS_MAP_FILE, sizeof(struct iommu_ioas_map_file), 40 },
        [0x95 - IOMMUFD_CMD_BASE] = {},
};

static int ioas_map(struct iommufd *i, uint32_t flags, uint32_t ioas_id, uint64_t length, __u64 *iova) {
        struct iobj *o;

        if (flags & ~(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))
                return -EOPNOTSUPP;
        o = iobj_find(i, ioas_id);
        if (!o || o->type != IOBJ_IOAS)
                return -ENOENT;
        if (length == 0 || !(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
                return -EINVAL;
        if (!(flags & IOMMU_IOAS_MAP_FIXED_IOVA)) {
                *iova = i->next_iova;
                i->next_iova += (length + 0xfffffull) & ~0xfffffull;
        }
        return 0;
}

void iommufd_ioctl(struct call *c, struct object *obj, unsigned cmd, uint64_t arg) {
        struct iommufd *i = obj->iommufd;
        union {
                struct iommu_destroy destroy;
                struct iommu_ioas_alloc alloc;
                struct iommu_ioas_map map;
                struct iommu_ioas_unmap unmap;
                struct iommu_hwpt_alloc hwpt;
                struct iommu_ioas_map_file map_file;
                uint8_t raw[64];
        } a;
        unsigned nr = cmd & 0xff;
        const struct iommufd_op *op;
        uint32_t usize;
        struct iobj *o;
        int r;

        if (nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= ELEMENTSOF(ops))
                return call_reply(c, -ENOTTY);  /* VFIO compat ioctls: not emulated */
        if (call_read(c, arg, &usize, sizeof(usize)) < 0)
                return call_reply(c, -EFAULT);
        op = &ops[nr - IOMMUFD_CMD_BASE];
        if (op->cmd == 0)
                return call_reply(c, -ENOTTY);  /* real command, not emulated */
        if (op->cmd != cmd)
                return call_reply(c, -ENOTTY);
        if (usize < op->min_size)
                return call_reply(c, -EINVAL);
        r = user_struct_in(c, arg, &a, op->size, usize);
        if (r < 0)
                return call_reply(c, r);

        switch (nr) {
        case IOMMUFD_CMD_DESTROY:
                o = iobj_find(i, a.destroy.id);
                if (!o || o->type == IOBJ_DEVICE)
                        return call_reply(c, -ENOENT);
                if (o->users > 0)
                        return call_reply(c, -EBUSY);
                iobj_remove(i, o);
                return call_reply(c, 0);
        case IOMMUFD_CMD_IOAS_ALLOC:
                if (a.alloc.flags)
                        return call_reply(c, -EOPNOTSUPP);
                o = iobj_new(i, IOBJ_IOAS);
                if (!o)
                        return call_reply(c, -ENOMEM);
                a.alloc.out_ioas_id = o->id;
                break;
        case IOMMUFD_CMD_IOAS_MAP:
                if (a.map.__reserved)
                        return call_reply(c, -EOPNOTSUPP);
                r = ioas_map(i, a.map.flags, a.map.ioas_id, a.map.length, &a.map.iova);
                if (r < 0)
                        return call_reply(c, r);
                break;
        case IOMMUFD_CMD_IOAS_MAP_FILE: {
                int copy = call_getfd(c, a.map_file.fd);

                if (copy < 0)
                        return call_reply(c, -EBADF);
                close(copy);
                r = ioas_map(i, a.map_file.flags, a.map_file.ioas_id, a.map_file.length, &a.map_file.iova);
                if (r < 0)
                        return call_reply(c, r);
                break;
        }
        case IOMMUFD_CMD_IOAS_UNMAP:
                o = iobj_find(i, a.unmap.ioas_id);
                if (!o || o->type != IOBJ_IOAS)
                        return call_reply(c, -ENOENT);
                break;
        case IOMMUFD_CMD_HWPT_ALLOC:
                if (a.hwpt.flags || a.hwpt.__reserved || a.hwpt.data_type)
                        return call_reply(c, -EOPNOTSUPP);
                o = iobj_find(i, a.hwpt.dev_id);
                if (!o || o->type != IOBJ_DEVICE)
                        return call_reply(c, -ENOENT);
                o = iobj_find(i, a.hwpt.pt_id);
                if (!o || o->type != IOBJ_IOAS)
                        return call_reply(c, -ENOENT);
                o = iobj_new(i, IOBJ_HWPT);
                if (!o)
                        return call_reply(c, -ENOMEM);
                a.hwpt.out_hwpt_id = o->id;
                break;
        }
        if (call_write(c, arg, &a, MIN(op->size, usize)) < 0)
                return call_reply(c, -EFAULT);
        call_reply(c, 0);
}
