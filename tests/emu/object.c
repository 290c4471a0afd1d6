/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Emulated kernel objects. Each is a socketpair: the machine holds end B, the
 * supervisor end A. The kernel counts every reference to B (dups, forks, fds in
 * flight), so a hang-up on A is exactly the emulated file's release.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu.h"

#define OBJ_BUCKETS 4096

static struct object *buckets[OBJ_BUCKETS];

static size_t bucket_of(ino_t ino) {
        return (size_t) (ino * 0x9E3779B97F4A7C15ull >> 32) % OBJ_BUCKETS;
}

struct object *object_new(enum obj_kind kind) {
        struct object *o;
        struct epoll_event ev;
        struct stat st;
        int sp[2];

        o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                free(o);
                return NULL;
        }
        o->kind = kind;
        o->a_fd = sp[0];
        o->b_fd = sp[1];
        if (fstat(o->b_fd, &st) < 0)
                goto fail;
        o->b_ino = st.st_ino;
        ev = (struct epoll_event) { .events = EPOLLRDHUP, .data.ptr = o };
        if (epoll_ctl(emu.obj_epoll_fd, EPOLL_CTL_ADD, o->a_fd, &ev) < 0)
                goto fail;
        o->hnext = buckets[bucket_of(o->b_ino)];
        buckets[bucket_of(o->b_ino)] = o;
        return o;
fail:
        close(sp[0]);
        close(sp[1]);
        free(o);
        return NULL;
}

void object_installed(struct object *o) {
        o->b_fd = safe_close(o->b_fd);
}

struct object *object_find(ino_t ino) {
        for (struct object *o = buckets[bucket_of(ino)]; o; o = o->hnext)
                if (o->b_ino == ino)
                        return o;
        return NULL;
}

void object_free(struct object *o) {
        struct object **p;

        if (!o)
                return;
        for (p = &buckets[bucket_of(o->b_ino)]; *p; p = &(*p)->hnext)
                if (*p == o) {
                        *p = o->hnext;
                        break;
                }
        epoll_ctl(emu.obj_epoll_fd, EPOLL_CTL_DEL, o->a_fd, NULL);
        safe_close(o->a_fd);
        safe_close(o->b_fd);
        free(o);
}

void object_release(struct object *o) {
        log_debug("release of object kind %d ino %lu", (int) o->kind, (unsigned long) o->b_ino);
        switch (o->kind) {
        case OBJ_LUO_DEV:
                emu.luo_dev_in_use = false;
                break;
        case OBJ_SESSION:
                if (o->session) {
                        o->session->obj = NULL;
                        luo_release_session(o->session);
                }
                break;
        case OBJ_VFIO:
                vfio_file_release(o->vfio);
                break;
        case OBJ_IOMMUFD:
                iommufd_release(o->iommufd);
                break;
        case OBJ_VFIO_CONTAINER:
                vfio_container_put(o->container);
                break;
        case OBJ_VFIO_GROUP:
                vfio_group_release(o->group_dev);
                break;
        }
        object_free(o);
}

/* The machine is gone (kexec or end): forget every object without release semantics. */
void object_drop_all(void) {
        for (size_t b = 0; b < OBJ_BUCKETS; b++)
                while (buckets[b]) {
                        struct object *o = buckets[b];

                        switch (o->kind) {
                        case OBJ_SESSION:
                                if (o->session)
                                        o->session->obj = NULL;
                                break;
                        case OBJ_VFIO:
                                if (o->vfio->ictx)
                                        iommufd_put(o->vfio->ictx);
                                safe_close(o->vfio->group_ref);
                                free(o->vfio);
                                break;
                        case OBJ_VFIO_CONTAINER:
                                vfio_container_put(o->container);
                                break;
                        case OBJ_IOMMUFD:
                                iommufd_put(o->iommufd);
                                break;
                        default:
                                break;
                        }
                        object_free(o);
                }
        emu.luo_dev_in_use = false;
}

void object_drain_releases(void) {
        for (;;) {
                struct epoll_event e;
                int n = epoll_wait(emu.obj_epoll_fd, &e, 1, 0);

                if (n <= 0)
                        return;
                object_release(e.data.ptr);
        }
}
