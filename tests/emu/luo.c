/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LUO sessions and preserved files, shared by the upstream and v4 ABIs: the file
 * handlers (memfd, VFIO cdev), the rules every ioctl applies in the kernel's order,
 * freeze at reboot, and the hand-over of preserved state to the next boot.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "emu.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

struct session_list luo_outgoing, luo_incoming;

static void list_append(struct session_list *l, struct session *s) {
        s->prev = l->tail;
        s->next = NULL;
        if (l->tail)
                l->tail->next = s;
        else
                l->head = s;
        l->tail = s;
        l->count++;
}

static void list_remove(struct session_list *l, struct session *s) {
        if (s->prev)
                s->prev->next = s->next;
        else
                l->head = s->next;
        if (s->next)
                s->next->prev = s->prev;
        else
                l->tail = s->prev;
        s->prev = s->next = NULL;
        l->count--;
}

struct session *session_new(const char *name, bool incoming) {
        struct session *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->incoming = incoming;
        s->v4_state = incoming ? 4 /* UPDATED */ : 1 /* NORMAL */;
        list_append(incoming ? &luo_incoming : &luo_outgoing, s);
        return s;
}

void session_unpreserve_all(struct session *s) {
        /* Reverse order, like the kernel. */
        while (s->n_files > 0) {
                struct pfile *pf = &s->files[--s->n_files];
                safe_close(pf->fd);
        }
}

void session_unlink_free(struct session *s) {
        if (!s)
                return;
        session_unpreserve_all(s);
        list_remove(s->incoming ? &luo_incoming : &luo_outgoing, s);
        if (s->obj)
                s->obj->session = NULL;
        free(s->files);
        free(s);
}

struct session *session_find(struct session_list *l, const char *name) {
        for (struct session *s = l->head; s; s = s->next)
                if (strncmp(s->name, name, sizeof(s->name)) == 0)
                        return s;
        return NULL;
}

static struct pfile *session_token(struct session *s, uint64_t token) {
        for (size_t i = 0; i < s->n_files; i++)
                if (s->files[i].token == token)
                        return &s->files[i];
        return NULL;
}

static bool same_file(int a, int b) {
        pid_t me = getpid();
        return syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0;
}

/* Is this open file already held by LUO (preserved, or retrieved and not finished)? */
static bool file_registered(int fd, dev_t dev, ino_t ino) {
        struct session_list *lists[] = { &luo_outgoing, &luo_incoming };

        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (struct session *s = lists[l]->head; s; s = s->next)
                        for (size_t i = 0; i < s->n_files; i++) {
                                struct pfile *pf = &s->files[i];
                                if (pf->fd >= 0 && pf->st_ino == ino && pf->st_dev == dev && same_file(pf->fd, fd))
                                        return true;
                        }
        return false;
}

bool pfile_memfd_is_preserved(dev_t dev, ino_t ino) {
        struct session_list *lists[] = { &luo_outgoing, &luo_incoming };

        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (struct session *s = lists[l]->head; s; s = s->next)
                        for (size_t i = 0; i < s->n_files; i++) {
                                struct pfile *pf = &s->files[i];
                                if (pf->kind == PF_MEMFD && !pf->incoming && pf->fd >= 0 &&
                                    pf->st_ino == ino && pf->st_dev == dev)
                                        return true;
                        }
        return false;
}

int session_preserve_fd(struct call *c, struct session *s, int fd, uint64_t token) {
        _cleanup_close_ int copy = -EBADF;
        struct pfile pf = { .token = token, .fd = -EBADF };
        struct stat st;
        int r;

        if (session_token(s, token))
                return -EEXIST;
        if (luo_has_limits() && s->n_files >= LUO_FILES_MAX)
                return -ENOSPC;
        if (fd < 0)
                return -EBADF;
        copy = call_getfd(c, fd);
        if (copy < 0)
                return copy;
        if (fstat(copy, &st) < 0)
                return -errno;

        /* can_preserve of each handler */
        if (S_ISSOCK(st.st_mode)) {
                struct object *o = object_find(st.st_ino);

                if (!o || o->kind != OBJ_VFIO || o->vfio->group)
                        return -ENOENT;         /* only cdev files have a handler */
                /* Upstream series (D2): only a cdev whose device is bound to an iommufd. */
                if (opt.abi == EMU_ABI_UPSTREAM && !o->vfio->dev->bound)
                        return -ENOENT;
                pf.kind = PF_VFIO;
                pf.dev_index = o->vfio->dev->index;
        } else if (S_ISREG(st.st_mode)) {
                struct statfs sf;

                if (fstatfs(copy, &sf) < 0)
                        return -errno;
                if ((unsigned long) sf.f_type != TMPFS_MAGIC || st.st_nlink != 0)
                        return -ENOENT;
                pf.kind = PF_MEMFD;
        } else
                return -ENOENT;
        pf.st_dev = st.st_dev;
        pf.st_ino = st.st_ino;

        if (file_registered(copy, st.st_dev, st.st_ino))
                return -EBUSY;
        r = fail_check(FAIL_PRESERVE);
        if (r < 0)
                return r;
        if (s->n_files == s->n_alloc) {
                size_t n = s->n_alloc ? s->n_alloc * 2 : 8;
                struct pfile *f = realloc(s->files, n * sizeof(*f));

                if (!f)
                        return -ENOMEM;
                s->files = f;
                s->n_alloc = n;
        }
        /* memfd_pin_folios() allocates every page up to i_size: holes are filled */
        if (pf.kind == PF_MEMFD && st.st_size > 0)
                (void) fallocate(copy, 0, 0, st.st_size);
        pf.fd = TAKE_FD(copy);
        s->files[s->n_files++] = pf;
        log_debug("preserved %s token %#llx in session \"%s\"", pf.kind == PF_MEMFD ? "memfd" : "vfio",
                  (unsigned long long) token, s->name);
        return 0;
}

int session_unpreserve_token(struct session *s, uint64_t token) {
        struct pfile *pf = session_token(s, token);
        size_t i;

        if (!pf)
                return -ENOENT;
        i = (size_t) (pf - s->files);
        safe_close(pf->fd);
        memmove(&s->files[i], &s->files[i + 1], (s->n_files - i - 1) * sizeof(*pf));
        s->n_files--;
        return 0;
}

static int copy_range(int src, int dst, off_t start, off_t end) {
        while (start < end) {
                loff_t in = start, out = start;
                ssize_t k = copy_file_range(src, &in, dst, &out, (size_t) (end - start), 0);

                if (k < 0) {
                        char buf[65536];
                        ssize_t n = pread(src, buf, (size_t) MIN((off_t) sizeof(buf), end - start), start);

                        if (n <= 0 || pwrite(dst, buf, (size_t) n, start) != n)
                                return -EIO;
                        k = n;
                } else if (k == 0)
                        return -EIO;
                start += k;
        }
        return 0;
}

/*
 * memfd handler retrieve: a new memfd with the old one's contents, size, position and
 * seals. Linux 7.1.8 (mm/memfd_luo.c memfd_luo_retrieve()) records the seals at preserve
 * and adds them to the new file, which is made with MFD_ALLOW_SEALING: a memfd made
 * without it comes back with F_SEAL_SEAL, as it went.
 */
static int memfd_retrieve(struct pfile *pf) {
        _cleanup_close_ int nfd = -EBADF;
        struct stat st;
        off_t off = 0;
        int r, seals;

        if (fstat(pf->fd, &st) < 0)
                return -EIO;
        seals = fcntl(pf->fd, F_GET_SEALS);
        if (seals < 0)
                return -EIO;
        nfd = memfd_create("", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (nfd < 0)
                return -ENOMEM;
        if (ftruncate(nfd, st.st_size) < 0)
                return -ENOMEM;
        while (off < st.st_size) {
                off_t data = lseek(pf->fd, off, SEEK_DATA), hole;

                if (data < 0)
                        break;
                hole = lseek(pf->fd, data, SEEK_HOLE);
                if (hole < 0)
                        hole = st.st_size;
                r = copy_range(pf->fd, nfd, data, hole);
                if (r < 0)
                        return r;
                off = hole;
        }
        if (lseek(nfd, pf->pos, SEEK_SET) < 0)
                return -EIO;
        if (seals && fcntl(nfd, F_ADD_SEALS, seals) < 0)
                return -EIO;
        if (fstat(nfd, &st) < 0)
                return -EIO;
        safe_close(pf->fd);
        pf->fd = TAKE_FD(nfd);
        pf->st_dev = st.st_dev;
        pf->st_ino = st.st_ino;
        return 0;
}

static int vfio_retrieve(struct pfile *pf) {
        struct vfio_file *f;
        struct object *o;

        /* vfio_find_device(): no vfio device at that address (yet: --bind-delay) */
        if (pf->dev_index >= opt.n_vfio || !vfio_devs[pf->dev_index].driver_bound)
                return -ENODEV;
        f = vfio_file_new(&vfio_devs[pf->dev_index], true);
        if (!f)
                return -ENOMEM;
        o = object_new(OBJ_VFIO);
        if (!o) {
                free(f);
                return -ENOMEM;
        }
        o->vfio = f;
        f->obj = o;
        /* LUO keeps its own reference until FINISH. */
        pf->fd = fcntl(o->b_fd, F_DUPFD_CLOEXEC, 3);
        if (pf->fd < 0) {
                object_free(o);
                free(f);
                return -ENOMEM;
        }
        object_installed(o);
        {
                struct stat st;
                if (fstat(pf->fd, &st) == 0)
                        pf->st_dev = st.st_dev;
        }
        pf->st_ino = o->b_ino;
        return 0;
}

/* Returns LUO's fd for the retrieved file (not a copy) or -errno. */
int session_retrieve_fd(struct call *c, struct session *s, uint64_t token, int *ret_fd) {
        struct pfile *pf;
        int r;

        (void) c;
        if (s->n_files == 0)
                return -ENOENT;
        pf = session_token(s, token);
        if (!pf)
                return -ENOENT;
        if (pf->retrieve_status < 0)
                return pf->retrieve_status;
        if (pf->retrieve_status > 0) {
                *ret_fd = pf->fd;
                return 0;
        }
        /* A file preserved in this boot has nothing to restore yet (unverified in upstream). */
        if (!pf->incoming)
                return -EINVAL;
        r = fail_check(FAIL_RETRIEVE_FD);
        if (r == 0)
                r = pf->kind == PF_MEMFD ? memfd_retrieve(pf) : vfio_retrieve(pf);
        if (r < 0) {
                pf->retrieve_status = r;        /* sticky */
                return r;
        }
        pf->retrieve_status = 1;
        *ret_fd = pf->fd;
        return 0;
}

static bool pfile_can_finish(struct pfile *pf) {
        if (pf->kind != PF_VFIO)
                return true;
        if (pf->retrieve_status <= 0)
                return false;
        /* D1/D2: the handed-over state must have been consumed by a bind. */
        return pf->dev_index < opt.n_vfio && !vfio_devs[pf->dev_index].incoming_state;
}

bool session_can_finish(struct session *s) {
        for (size_t i = 0; i < s->n_files; i++)
                if (!pfile_can_finish(&s->files[i]))
                        return false;
        return true;
}

/* Drops an incoming session that was never retrieved, with what it still pins. */
void session_drop_incoming(struct session *s) {
        for (size_t i = 0; i < s->n_files; i++) {
                struct pfile *pf = &s->files[i];

                if (pf->kind == PF_VFIO && pf->dev_index < opt.n_vfio)
                        vfio_devs[pf->dev_index].incoming_busy = vfio_devs[pf->dev_index].incoming_state = false;
        }
        session_unlink_free(s);
}

int session_finish(struct session *s) {
        if (s->n_files == 0)
                return 0;
        if (!session_can_finish(s))
                return -EBUSY;
        while (s->n_files > 0) {
                struct pfile *pf = &s->files[--s->n_files];

                if (pf->kind == PF_VFIO && pf->incoming && pf->dev_index < opt.n_vfio)
                        vfio_devs[pf->dev_index].incoming_busy = false;
                safe_close(pf->fd);
        }
        return 0;
}

void luo_release_session(struct session *s) {
        if (s->retrieved) {
                int r = session_finish(s);

                if (r < 0) {
                        /* Like the kernel: the file goes, the session and its files stay held. */
                        log_debug("implicit finish of session \"%s\" failed: %s", s->name, strerror(-r));
                        return;
                }
        }
        log_debug("session \"%s\" released", s->name);
        session_unlink_free(s);
}

int session_freeze(struct session *s, bool disable_irqs) {
        for (size_t i = 0; i < s->n_files; i++) {
                struct pfile *pf = &s->files[i];

                if (pf->kind == PF_MEMFD) {
                        off_t pos = lseek(pf->fd, 0, SEEK_CUR);
                        pf->pos = pos < 0 ? 0 : pos;
                } else if (pf->dev_index < opt.n_vfio) {
                        struct vfio_dev *d = &vfio_devs[pf->dev_index];

                        if (d->irq_type != IRQ_NONE) {
                                if (!disable_irqs) {
                                        log_debug("freeze of %s refused: interrupts enabled", d->bdf);
                                        return -EINVAL;
                                }
                                vfio_irqs_off(d);
                        }
                }
        }
        return 0;
}

int luo_freeze_all(void) {
        int r;

        if (!emu.luo_enabled)
                return 0;
        r = fail_check(FAIL_FREEZE);
        if (r < 0)
                return r;
        for (struct session *s = luo_outgoing.head; s; s = s->next) {
                r = session_freeze(s, false);
                if (r < 0)
                        return r;       /* unfreeze is a no-op for the emulated handlers */
        }
        return 0;
}

void luo_handover(bool next_enabled) {
        struct session *s, *next;

        /* Incoming sessions are never carried forward. */
        while (luo_incoming.head)
                session_unlink_free(luo_incoming.head);
        for (unsigned i = 0; i < opt.n_vfio; i++)
                vfio_devs[i].incoming_busy = vfio_devs[i].incoming_state = false;

        for (s = luo_outgoing.head; s; s = next) {
                next = s->next;
                if (!next_enabled || !emu.luo_enabled ||
                    (opt.abi == EMU_ABI_V4 && s->v4_state != 3 /* FROZEN */)) {
                        session_unlink_free(s);
                        continue;
                }
                list_remove(&luo_outgoing, s);
                if (s->obj)
                        s->obj->session = NULL;
                s->obj = NULL;
                s->incoming = true;
                s->retrieved = false;
                s->v4_state = 4;        /* UPDATED */
                for (size_t i = 0; i < s->n_files; i++) {
                        struct pfile *pf = &s->files[i];

                        pf->incoming = true;
                        pf->retrieve_status = 0;
                        if (pf->kind == PF_VFIO) {
                                pf->fd = safe_close(pf->fd);
                                if (pf->dev_index < opt.n_vfio)
                                        vfio_devs[pf->dev_index].incoming_busy =
                                                vfio_devs[pf->dev_index].incoming_state = true;
                        }
                }
                list_append(&luo_incoming, s);
                log_debug("session \"%s\" handed over with %zu file(s)", s->name, s->n_files);
        }
}

int luo_open_device(struct call *c, int flags) {
        struct object *o;
        int r;

        if (emu.luo_dev_in_use)
                return -EBUSY;
        r = fail_check(FAIL_OPEN);
        if (r < 0)
                return r;
        o = object_new(OBJ_LUO_DEV);
        if (!o)
                return -ENOMEM;
        if (!call_valid(c)) {
                object_free(o);
                return -ESRCH;
        }
        r = call_addfd_send(c, o->b_fd, flags & O_CLOEXEC);
        if (r < 0) {
                object_free(o);
                return r;
        }
        object_installed(o);
        emu.luo_dev_in_use = true;
        return 0;
}

/* Output goes back for min(user size, kernel size) bytes. */
int luo_respond(struct call *c, uint64_t arg, const void *buf, uint32_t ksize, uint32_t usize) {
        return call_write(c, arg, buf, MIN(ksize, usize));
}

int luo_session_install(struct call *c, struct session *s, uint64_t arg, void *buf, uint32_t ksize,
                        uint32_t usize, int32_t *fd_field) {
        struct object *o;
        int fd;

        /* Make sure the answer can be written before the fd exists in the caller. */
        if (luo_respond(c, arg, buf, ksize, usize) < 0)
                return -EFAULT;
        o = object_new(OBJ_SESSION);
        if (!o)
                return -ENOMEM;
        o->session = s;
        if (!call_valid(c)) {
                object_free(o);
                return -ESRCH;
        }
        fd = call_install_object(c, o, true);
        if (fd < 0) {
                object_free(o);
                return fd;
        }
        s->obj = o;
        *fd_field = fd;
        (void) luo_respond(c, arg, buf, ksize, usize);
        return 0;
}
