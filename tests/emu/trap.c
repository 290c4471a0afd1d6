/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The trap: the machine's seccomp filter, and the supervisor's dispatch of each
 * user notification to the emulated kernel (opens of emulated device nodes and of
 * /proc fdinfo, readlink of /proc fd links, ioctls on emulated files, kexec,
 * reboot, and resizes of preserved memfds). Everything not ours continues into the
 * real kernel untouched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "emu.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

/* ---- filter (runs in the machine child) ---- */

int trap_install_filter(void) {
        static const unsigned trapped[] = {
                __NR_open, __NR_openat, __NR_openat2, __NR_readlink, __NR_readlinkat,
                __NR_kexec_file_load, __NR_kexec_load, __NR_reboot, __NR_ftruncate, __NR_fallocate,
                __NR_pread64, __NR_pwrite64,
        };
        struct sock_filter f[64];
        unsigned n = 0, n_trapped = ELEMENTSOF(trapped);
        struct sock_fprog prog;
        int fd;

        /* [0..2] arch check */
        f[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
        f[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
        f[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        f[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        /* ioctl: jump to the type check at the end */
        f[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, (uint8_t) (n_trapped + 2), 0);
        n++;
        for (unsigned i = 0; i < n_trapped; i++) {
                /* match: jump to the NOTIFY after the ALLOW that follows the list */
                f[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, trapped[i],
                                                     (uint8_t) (n_trapped - i), 0);
                n++;
        }
        f[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        f[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
        /* ioctl: low 32 bits of args[1] (little endian), type byte 0xBA or ';' */
        f[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
        f[n++] = (struct sock_filter) BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff00);
        f[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xBA00, 2, 0);
        f[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x3B00, 1, 0);
        f[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        f[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);

        prog = (struct sock_fprog) { .len = (unsigned short) n, .filter = f };
        fd = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (fd < 0)
                return -errno;
        return fd;
}

/* ---- call helpers ---- */

int call_pidfd(struct call *c) {
        if (c->pidfd >= 0)
                return c->pidfd;
        c->pidfd = (int) syscall(SYS_pidfd_open, c->req->pid, PIDFD_THREAD);
        if (c->pidfd < 0)
                return -errno;
        /* The pid could have been recycled between RECV and pidfd_open. */
        if (!call_valid(c)) {
                c->pidfd = safe_close(c->pidfd);
                return -ESRCH;
        }
        return c->pidfd;
}

int call_getfd(struct call *c, int fd) {
        int p = call_pidfd(c), r;

        if (p < 0)
                return p;
        r = (int) syscall(SYS_pidfd_getfd, p, fd, 0);
        if (r < 0 && (errno == EMFILE || errno == ENFILE))
                log_error("out of file descriptors in the supervisor: the machine's call is misanswered");
        return r < 0 ? -errno : r;
}

int call_read(struct call *c, uint64_t addr, void *buf, size_t len) {
        struct iovec l = { .iov_base = buf, .iov_len = len };
        struct iovec r = { .iov_base = (void *) (uintptr_t) addr, .iov_len = len };

        if (len == 0)
                return 0;
        if (process_vm_readv(c->req->pid, &l, 1, &r, 1, 0) != (ssize_t) len)
                return -EFAULT;
        /* The pid may have been reused by another process: only trust the bytes if the
         * notification is still pending. */
        if (!call_valid(c))
                return -ESRCH;
        return 0;
}

int call_write(struct call *c, uint64_t addr, const void *buf, size_t len) {
        struct iovec l = { .iov_base = (void *) buf, .iov_len = len };
        struct iovec r = { .iov_base = (void *) (uintptr_t) addr, .iov_len = len };

        if (len == 0)
                return 0;
        if (process_vm_writev(c->req->pid, &l, 1, &r, 1, 0) != (ssize_t) len)
                return -EFAULT;
        return 0;
}

bool call_valid(struct call *c) {
        uint64_t id = c->req->id;
        return ioctl(emu.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static int addfd(struct call *c, int srcfd, bool cloexec, bool send) {
        struct seccomp_notif_addfd a = {
                .id = c->req->id,
                .flags = send ? SECCOMP_ADDFD_FLAG_SEND : 0,
                .srcfd = (uint32_t) srcfd,
                .newfd_flags = cloexec ? O_CLOEXEC : 0,
        };
        int r = ioctl(emu.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);

        if (r < 0)
                return -errno;
        if (send)
                c->answered = true;
        return r;
}

int call_addfd(struct call *c, int srcfd, bool cloexec) {
        return addfd(c, srcfd, cloexec, false);
}

int call_addfd_send(struct call *c, int srcfd, bool cloexec) {
        return addfd(c, srcfd, cloexec, true);
}

void call_reply(struct call *c, int64_t val) {
        struct seccomp_notif_resp *resp = c->resp;

        if (c->answered)
                return;
        resp->id = c->req->id;
        resp->flags = 0;
        resp->error = val < 0 ? (int32_t) val : 0;
        resp->val = val < 0 ? 0 : val;
        (void) ioctl(emu.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
        c->answered = true;
        if (opt.verbose)
                log_debug("  -> %s%lld", val < 0 ? "-" : "",
                          val < 0 ? (long long) -val : (long long) val);
}

void call_continue(struct call *c) {
        struct seccomp_notif_resp *resp = c->resp;

        if (c->answered)
                return;
        resp->id = c->req->id;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        resp->error = 0;
        resp->val = 0;
        (void) ioctl(emu.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
        c->answered = true;
}

int call_fd_room(struct call *c) {
        char p[64];
        struct rlimit rl;
        struct dirent *de;
        unsigned long n = 0;
        DIR *d;
        int copy;

        if (prlimit(c->req->pid, RLIMIT_NOFILE, NULL, &rl) < 0 || rl.rlim_cur > INT32_MAX)
                return 0;
        if (rl.rlim_cur == 0)
                return -EMFILE;
        /* Fast path: the highest allowed slot is free. */
        copy = call_getfd(c, (int) rl.rlim_cur - 1);
        if (copy < 0)
                return 0;
        close(copy);
        /* Rare: count the open fds below the limit. */
        snprintf(p, sizeof(p), "/proc/%u/fd", c->req->pid);
        d = opendir(p);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char *end;
                unsigned long v = strtoul(de->d_name, &end, 10);

                if (*end == 0 && end != de->d_name && v < rl.rlim_cur)
                        n++;
        }
        closedir(d);
        return n >= rl.rlim_cur ? -EMFILE : 0;
}

struct object *call_object(struct call *c, int fd) {
        _cleanup_close_ int copy = -EBADF;
        struct stat st;

        if (fd < 0)
                return NULL;
        copy = call_getfd(c, fd);
        if (copy < 0)
                return NULL;
        if (fstat(copy, &st) < 0 || !S_ISSOCK(st.st_mode))
                return NULL;
        return object_find(st.st_ino);
}

int call_install_object(struct call *c, struct object *o, bool cloexec) {
        int r = call_addfd(c, o->b_fd, cloexec);

        if (r >= 0)
                object_installed(o);
        return r;
}

int user_struct_in(struct call *c, uint64_t arg, void *kbuf, size_t ksize, uint32_t usize) {
        memset(kbuf, 0, ksize);
        if (call_read(c, arg, kbuf, MIN(ksize, (size_t) usize)) < 0)
                return -EFAULT;
        if (usize > ksize) {
                uint8_t tail[256];
                uint64_t off = ksize;

                while (off < usize) {
                        size_t k = MIN(sizeof(tail), (size_t) (usize - off));

                        if (call_read(c, arg + off, tail, k) < 0)
                                return -EFAULT;
                        for (size_t i = 0; i < k; i++)
                                if (tail[i])
                                        return -E2BIG;
                        off += k;
                }
        }
        return 0;
}

/* ---- paths ---- */

int call_read_string(struct call *c, uint64_t addr, char *buf, size_t size) {
        size_t got = 0;

        if (!addr)
                return -EFAULT;
        while (got < size - 1) {
                /* never read across a page boundary: the next page may be unmapped */
                size_t chunk = 4096 - ((addr + got) & 4095);
                struct iovec l, r;
                ssize_t k;

                chunk = MIN(chunk, size - 1 - got);
                l = (struct iovec) { .iov_base = buf + got, .iov_len = chunk };
                r = (struct iovec) { .iov_base = (void *) (uintptr_t) (addr + got), .iov_len = chunk };
                k = process_vm_readv(c->req->pid, &l, 1, &r, 1, 0);
                if (k <= 0)
                        return -EFAULT;
                if (memchr(buf + got, 0, (size_t) k))
                        return 0;
                got += (size_t) k;
        }
        buf[size - 1] = 0;
        return -ENAMETOOLONG;
}

/* Collapses "//", "/./" and "/../" textually. */
static void normalize_path(char *p) {
        char *out = p, *in = p;

        while (*in) {
                if (in[0] == '/' && in[1] == '/') {
                        in++;
                        continue;
                }
                if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || !in[2])) {
                        in += 2;
                        continue;
                }
                if (in[0] == '/' && in[1] == '.' && in[2] == '.' && (in[3] == '/' || !in[3])) {
                        in += 3;
                        while (out > p && *--out != '/')
                                ;
                        continue;
                }
                *out++ = *in++;
        }
        if (out == p)
                *out++ = '/';
        *out = 0;
}

static bool maybe_ours(const char *rel) {
        const char *last = strrchr(rel, '/');

        last = last ? last + 1 : rel;
        if (strcmp(last, "liveupdate") == 0 || strcmp(last, "iommu") == 0 || strncmp(last, "vfio", 4) == 0 ||
            strcmp(last, "cmdline") == 0 || strcmp(last, "boot_id") == 0)
                return true;
        return *last && strspn(last, "0123456789") == strlen(last);
}

/* Makes path absolute in the machine's view; false if it cannot be ours. */
static bool resolve_path(struct call *c, int dirfd, char *path, size_t size) {
        char link[64], base[4096];
        ssize_t n;

        if (path[0] != '/') {
                if (!maybe_ours(path))
                        return false;
                if (dirfd == AT_FDCWD)
                        snprintf(link, sizeof(link), "/proc/%u/cwd", c->req->pid);
                else
                        snprintf(link, sizeof(link), "/proc/%u/fd/%d", c->req->pid, dirfd);
                n = readlink(link, base, sizeof(base) - 1);
                if (n <= 0 || base[0] != '/')
                        return false;
                base[n] = 0;
                if ((size_t) n + 1 + strlen(path) + 1 > size)
                        return false;
                memmove(path + n + 1, path, strlen(path) + 1);
                memcpy(path, base, (size_t) n);
                path[n] = '/';
        }
        normalize_path(path);
        return true;
}

/*
 * Parses /proc/<self|thread-self|pid>[/task/<tid>]/<leaf>/<N>; on success fills the
 * machine-relative /proc prefix ("" for self) and the fd number.
 */
static bool parse_proc_fd(const char *path, const char *leaf, char *who, size_t who_size, int *fd) {
        char rest[4096], *p;
        const char *q;
        size_t l = strlen(leaf);
        char *end;
        long v;

        if (strncmp(path, "/proc/", 6) != 0)
                return false;
        q = path + 6;
        snprintf(rest, sizeof(rest), "%s", q);
        /* who = everything up to "/<leaf>/" */
        for (p = rest; (p = strchr(p, '/')); p++)
                if (strncmp(p + 1, leaf, l) == 0 && p[1 + l] == '/')
                        break;
        if (!p)
                return false;
        *p = 0;
        v = strtol(p + 2 + l, &end, 10);
        if (!p[2 + l] || *end || v < 0 || v > INT32_MAX)
                return false;
        if (strcmp(rest, "self") == 0 || strcmp(rest, "thread-self") == 0)
                who[0] = 0;
        else {
                char *t = rest;
                size_t dig = strspn(t, "0123456789");

                if (dig == 0)
                        return false;
                if (t[dig] && !(strncmp(t + dig, "/task/", 6) == 0 &&
                                strspn(t + dig + 6, "0123456789") == strlen(t + dig + 6) && t[dig + 6]))
                        return false;
                if (strncmp(rest, "self/task/", 10) == 0 || strncmp(rest, "thread-self", 11) == 0)
                        who[0] = 0;
                else {
                        if (strlen(rest) >= who_size)
                                return false;
                        memcpy(who, rest, strlen(rest) + 1);
                }
        }
        *fd = (int) v;
        return true;
}

/* The emulated object behind /proc/<who>/fd/<fd> of the machine. */
static struct object *proc_object(struct call *c, const char *who, int fd) {
        _cleanup_close_ int copy = -EBADF;
        char p[128];
        struct stat st;

        if (!who[0])
                return call_object(c, fd);
        snprintf(p, sizeof(p), "%s/fd/%d", who, fd);
        copy = openat(emu.proc_fd, p, O_PATH | O_CLOEXEC);
        if (copy < 0 || fstat(copy, &st) < 0 || !S_ISSOCK(st.st_mode))
                return NULL;
        return object_find(st.st_ino);
}

static int object_link_text(struct object *o, char *buf, size_t size) {
        switch (o->kind) {
        case OBJ_LUO_DEV:
                return snprintf(buf, size, "/dev/liveupdate");
        case OBJ_SESSION:
                return snprintf(buf, size, "anon_inode:[luo_session] %s", o->session ? o->session->name : "");
        case OBJ_VFIO:
                if (o->vfio->retrieved)
                        return snprintf(buf, size, "anon_inode:[vfio-device-liveupdate]");
                if (o->vfio->group)
                        return snprintf(buf, size, "anon_inode:[vfio-device]");
                return snprintf(buf, size, "/dev/vfio/devices/vfio%u", o->vfio->dev->index);
        case OBJ_IOMMUFD:
                return snprintf(buf, size, "/dev/iommu");
        case OBJ_VFIO_CONTAINER:
                return snprintf(buf, size, "/dev/vfio/vfio");
        case OBJ_VFIO_GROUP:
                return snprintf(buf, size, "/dev/vfio/%u", o->group_dev->index);
        }
        return -EINVAL;
}

static void handle_readlink(struct call *c, int dirfd, uint64_t path_addr, uint64_t buf, int64_t bufsiz) {
        char path[4096], who[64], text[256];
        struct object *o;
        int fd, len;

        if (call_read_string(c, path_addr, path, sizeof(path)) < 0)
                return call_continue(c);
        if (!resolve_path(c, dirfd, path, sizeof(path)))
                return call_continue(c);
        if (!parse_proc_fd(path, "fd", who, sizeof(who), &fd))
                return call_continue(c);
        o = proc_object(c, who, fd);
        if (!o)
                return call_continue(c);
        if ((int) bufsiz <= 0)
                return call_reply(c, -EINVAL);
        len = object_link_text(o, text, sizeof(text));
        if (len < 0)
                return call_continue(c);
        len = MIN(len, (int) bufsiz);
        if (!call_valid(c))
                return;
        if (call_write(c, buf, text, (size_t) len) < 0)
                return call_reply(c, -EFAULT);
        call_reply(c, len);
}

static void handle_fdinfo(struct call *c, const char *who, int fd, int flags) {
        _cleanup_close_ int real = -EBADF, mfd = -EBADF;
        char p[128], raw[4096], text[4096 + 256], *save = NULL;
        struct object *o;
        ssize_t n;
        size_t len;

        o = proc_object(c, who, fd);
        if (!o)
                return call_continue(c);
        if (who[0]) {
                snprintf(p, sizeof(p), "%s/fdinfo/%d", who, fd);
                real = openat(emu.proc_fd, p, O_RDONLY | O_CLOEXEC);
        } else {
                snprintf(p, sizeof(p), "/proc/%u/fdinfo/%d", c->req->pid, fd);
                real = open(p, O_RDONLY | O_CLOEXEC);
        }
        if (real < 0)
                return call_continue(c);
        n = read(real, raw, sizeof(raw) - 1);
        if (n < 0)
                return call_continue(c);
        raw[n] = 0;
        /* Keep the generic lines; drop the socket-specific ones (scm_fds, …). */
        len = 0;
        for (char *line = strtok_r(raw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                unsigned long fl;

                if (sscanf(line, "flags: %lo", &fl) == 1) {
                        /* open() of a device node adds O_LARGEFILE; anon inodes do not */
                        if (o->kind == OBJ_LUO_DEV || o->kind == OBJ_IOMMUFD ||
                            (o->kind == OBJ_VFIO && !o->vfio->retrieved))
                                fl |= 0100000;   /* the kernel's O_LARGEFILE (glibc defines it as 0 on x86-64) */
                        len += (size_t) snprintf(text + len, sizeof(text) - len, "flags:\t0%lo\n", fl);
                } else if (strncmp(line, "pos:", 4) == 0 || strncmp(line, "mnt_id:", 7) == 0 ||
                           strncmp(line, "ino:", 4) == 0)
                        len += (size_t) snprintf(text + len, sizeof(text) - len, "%s\n", line);
        }
        if (o->kind == OBJ_VFIO)
                len += (size_t) snprintf(text + len, sizeof(text) - len,
                                         "vfio-device-syspath: /sys/devices/pci0000:00/0000:00:01.0/%s\n",
                                         o->vfio->dev->bdf);
        mfd = memfd_create("fdinfo", MFD_CLOEXEC);
        if (mfd < 0 || write(mfd, text, len) != (ssize_t) len || lseek(mfd, 0, SEEK_SET) < 0)
                return call_reply(c, -ENOMEM);
        if (!call_valid(c))
                return;
        if (call_addfd_send(c, mfd, flags & O_CLOEXEC) < 0)
                call_reply(c, -EMFILE);
}

/*
 * The device node's permissions decide, as for any open() (spec §1.2: no capability
 * check of its own): mode bits of the node in the machine's /dev against the caller's
 * fsuid/fsgid/groups, bypassed by CAP_DAC_OVERRIDE. Only on the open path.
 */
static int check_node_access(struct call *c, const char *path, int flags) {
        char p[4200], buf[4096];
        unsigned uid[4] = {}, gid[4] = {};
        unsigned long long cap = 0;
        unsigned want = 0, bits;
        bool in_group = false;
        struct stat st;
        ssize_t n;
        int fd;

        snprintf(p, sizeof(p), "/proc/%u/root%s", c->req->pid, path);
        if (stat(p, &st) < 0)
                return -ENOENT;
        snprintf(p, sizeof(p), "/proc/%u/status", c->req->pid);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -ESRCH;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -ESRCH;
        buf[n] = 0;
        for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (sscanf(line, "Uid: %u %u %u %u", &uid[0], &uid[1], &uid[2], &uid[3]) == 4)
                        continue;
                if (sscanf(line, "Gid: %u %u %u %u", &gid[0], &gid[1], &gid[2], &gid[3]) == 4)
                        continue;
                if (sscanf(line, "CapEff: %llx", &cap) == 1)
                        continue;
                if (strncmp(line, "Groups:", 7) == 0) {
                        char *q = line + 7, *end;
                        for (;;) {
                                unsigned long g = strtoul(q, &end, 10);
                                if (end == q)
                                        break;
                                if (g == st.st_gid)
                                        in_group = true;
                                q = end;
                        }
                }
        }
        if (cap & (1ull << 1))          /* CAP_DAC_OVERRIDE */
                return 0;
        if ((flags & O_ACCMODE) != O_WRONLY)
                want |= 4;
        if ((flags & O_ACCMODE) != O_RDONLY)
                want |= 2;
        if (uid[3] == st.st_uid)
                bits = (st.st_mode >> 6) & 7;
        else if (gid[3] == st.st_gid || in_group)
                bits = (st.st_mode >> 3) & 7;
        else
                bits = st.st_mode & 7;
        return (bits & want) == want ? 0 : -EACCES;
}

/*
 * The emulated kernel's own text files: /proc/cmdline (this boot's command line) and
 * /proc/sys/kernel/random/boot_id (one random UUID per emulated boot). Answered here
 * rather than bind-mounted, so that every procfs of the machine shows them, also the
 * fresh one a unit with ProtectProc=/ProtectKernelTunables= gets. Read-only opens only;
 * anything else reaches the real file (and its permission checks).
 */
static bool handle_proc_text(struct call *c, const char *path, uint64_t flags) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int mfd = -EBADF;
        size_t len;

        if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_PATH | O_DIRECTORY | O_CREAT)))
                return false;
        if (strcmp(path, "/proc/cmdline") == 0) {
                if (asprintf(&text, "%s\n", emu.cmdline) < 0)
                        text = NULL;
        } else if (strcmp(path, "/proc/sys/kernel/random/boot_id") == 0) {
                if (asprintf(&text, "%s\n", emu.boot_id) < 0)
                        text = NULL;
        } else
                return false;
        if (!text) {
                call_reply(c, -ENOMEM);
                return true;
        }
        len = strlen(text);
        mfd = memfd_create(path[6] == 'c' ? "cmdline" : "boot_id", MFD_CLOEXEC);
        if (mfd < 0 || write(mfd, text, len) != (ssize_t) len || lseek(mfd, 0, SEEK_SET) < 0) {
                call_reply(c, -ENOMEM);
                return true;
        }
        if (!call_valid(c))
                return true;
        if (call_addfd_send(c, mfd, flags & O_CLOEXEC) < 0)
                call_reply(c, -EMFILE);
        return true;
}

static void handle_open(struct call *c, int dirfd, uint64_t path_addr, uint64_t flags) {
        char path[4096], who[64];
        unsigned idx;
        int fd, r, k;

        if (call_read_string(c, path_addr, path, sizeof(path)) < 0)
                return call_continue(c);
        if (!resolve_path(c, dirfd, path, sizeof(path)))
                return call_continue(c);
        if (opt.verbose)
                log_debug("open %s flags %#llx (pid %u)", path, (unsigned long long) flags, c->req->pid);

        if (strncmp(path, "/proc/", 6) == 0) {
                if (handle_proc_text(c, path, flags))
                        return;
                if (parse_proc_fd(path, "fdinfo", who, sizeof(who), &fd))
                        return handle_fdinfo(c, who, fd, (int) flags);
                return call_continue(c);
        }
        /* O_PATH, O_DIRECTORY and O_CREAT|O_EXCL never reach the driver's open: the real
         * node answers them (fd without I/O, ENOTDIR, EEXIST). */
        if (strncmp(path, "/dev/", 5) != 0 || (flags & (O_PATH | O_DIRECTORY)) ||
            (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
                return call_continue(c);

        if (strcmp(path, "/dev/liveupdate") == 0 || strcmp(path, "/dev/iommu") == 0 ||
            strncmp(path, "/dev/vfio/", 10) == 0) {
                /* open() reserves the fd before it looks at the path */
                r = call_fd_room(c);
                if (r < 0)
                        return call_reply(c, r);
                r = check_node_access(c, path, (int) flags);
                if (r == -ENOENT)
                        return call_continue(c);        /* no such node: the kernel answers */
                if (r < 0)
                        return call_reply(c, r);
        }
        if (strcmp(path, "/dev/liveupdate") == 0) {
                if (!emu.luo_enabled)
                        return call_continue(c);        /* no node: the kernel says ENOENT */
                r = luo_open_device(c, (int) flags);
        } else if (strcmp(path, "/dev/iommu") == 0)
                r = iommufd_open(c, (int) flags);
        else if (sscanf(path, "/dev/vfio/devices/vfio%u%n", &idx, &k) == 1 && path[k] == 0 &&
                 idx < opt.n_vfio)
                r = vfio_open_cdev(c, idx, (int) flags);
        else if (opt.n_vfio > 0 && strcmp(path, "/dev/vfio/vfio") == 0)
                r = vfio_container_open(c, (int) flags);
        else if (sscanf(path, "/dev/vfio/%u%n", &idx, &k) == 1 && path[k] == 0 && path[10] != '+' &&
                 path[10] != '-' && idx < opt.n_vfio)
                r = vfio_group_open(c, idx, (int) flags);
        else
                return call_continue(c);
        if (r < 0)
                call_reply(c, r);
}

static void handle_ioctl(struct call *c) {
        int fd = (int) c->req->data.args[0];
        unsigned cmd = (unsigned) c->req->data.args[1];
        uint64_t arg = c->req->data.args[2];
        struct object *o = call_object(c, fd);

        if (!o) {
                if (opt.verbose) {
                        char p[64], l[256] = "?";
                        ssize_t n;

                        snprintf(p, sizeof(p), "/proc/%u/fd/%d", c->req->pid, fd);
                        n = readlink(p, l, sizeof(l) - 1);
                        l[n > 0 ? n : 0] = 0;
                        log_debug("ioctl fd %d (%s) cmd %#x (pid %u): not an emulated file", fd, l, cmd, c->req->pid);
                }
                return call_continue(c);
        }
        if (opt.verbose)
                log_debug("ioctl fd %d cmd %#x kind %d (pid %u)", fd, cmd, (int) o->kind, c->req->pid);
        switch (o->kind) {
        case OBJ_LUO_DEV:
        case OBJ_SESSION:
                if (opt.abi == EMU_ABI_V4)
                        luo_v4_ioctl(c, o, cmd, arg);
                else
                        luo_upstream_ioctl(c, o, cmd, arg);
                break;
        case OBJ_VFIO:
                vfio_ioctl(c, o, cmd, arg);
                break;
        case OBJ_IOMMUFD:
                iommufd_ioctl(c, o, cmd, arg);
                break;
        case OBJ_VFIO_CONTAINER:
                vfio_container_ioctl(c, o, cmd, arg);
                break;
        case OBJ_VFIO_GROUP:
                vfio_group_ioctl(c, o, cmd, arg);
                break;
        }
}

static void handle_resize(struct call *c) {
        _cleanup_close_ int copy = -EBADF;
        struct stat st;

        copy = call_getfd(c, (int) c->req->data.args[0]);
        if (copy < 0 || fstat(copy, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 0)
                return call_continue(c);
        if (!pfile_memfd_is_preserved(st.st_dev, st.st_ino))
                return call_continue(c);
        /* ftruncate to the current size is no size change; every fallocate mode is */
        if (c->req->data.nr == __NR_ftruncate && (int64_t) c->req->data.args[1] == (int64_t) st.st_size)
                return call_continue(c);
        call_reply(c, -EPERM);
}

void trap_handle(int listener) {
        /* A close() that dropped the last reference has already released the file in
         * the kernel's view; settle those releases before answering anything else. */
        object_drain_releases();

        static struct seccomp_notif *req;
        static struct seccomp_notif_resp *resp;
        static struct seccomp_notif_sizes sizes;
        struct call c;

        if (!req) {
                if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
                        return;
                req = calloc(1, MAX(sizes.seccomp_notif, sizeof(*req)));
                resp = calloc(1, MAX(sizes.seccomp_notif_resp, sizeof(*resp)));
                if (!req || !resp)
                        abort();
        }
        memset(req, 0, MAX(sizes.seccomp_notif, sizeof(*req)));
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
                return;         /* the target died meanwhile (ENOENT) or EINTR */

        if (emu.machine_dying)
                return;         /* the caller dies with the machine; never answer */
        c = (struct call) { .req = req, .resp = resp, .pidfd = -EBADF };
        switch (req->data.nr) {
        case __NR_open:
                handle_open(&c, AT_FDCWD, req->data.args[0], req->data.args[1]);
                break;
        case __NR_openat:
                handle_open(&c, (int) req->data.args[0], req->data.args[1], req->data.args[2]);
                break;
        case __NR_openat2: {
                struct open_how how = {};

                if (req->data.args[3] < sizeof(how) ||
                    call_read(&c, req->data.args[2], &how, sizeof(how)) < 0)
                        call_continue(&c);
                else
                        handle_open(&c, (int) req->data.args[0], req->data.args[1], how.flags);
                break;
        }
        case __NR_ioctl:
                handle_ioctl(&c);
                break;
        case __NR_readlink:
                handle_readlink(&c, AT_FDCWD, req->data.args[0], req->data.args[1], (int64_t) req->data.args[2]);
                break;
        case __NR_readlinkat:
                handle_readlink(&c, (int) req->data.args[0], req->data.args[1], req->data.args[2],
                                (int64_t) req->data.args[3]);
                break;
        case __NR_kexec_file_load:
                kexec_file_load_call(&c);
                break;
        case __NR_kexec_load:
                /* The emulated kernel has CONFIG_KEXEC_FILE only. */
                call_reply(&c, -ENOSYS);
                break;
        case __NR_reboot:
                kexec_reboot_call(&c);
                break;
        case __NR_ftruncate:
        case __NR_fallocate:
                handle_resize(&c);
                break;
        case __NR_pread64:
        case __NR_pwrite64: {
                _cleanup_close_ int copy = call_getfd(&c, (int) req->data.args[0]);
                struct object *o = NULL;
                struct stat st;

                if (copy < 0 || fstat(copy, &st) < 0)
                        break;
                if (S_ISSOCK(st.st_mode))
                        o = object_find(st.st_ino);
                if (o && o->kind == OBJ_VFIO)
                        vfio_rw(&c, o->vfio, req->data.nr == __NR_pwrite64, req->data.args[1],
                                req->data.args[2], (int64_t) req->data.args[3]);
                else if (req->data.nr == __NR_pwrite64 && S_ISREG(st.st_mode) && st.st_nlink == 0 &&
                         req->data.args[2] > 0 &&
                         (int64_t) (req->data.args[3] + req->data.args[2]) > (int64_t) st.st_size &&
                         pfile_memfd_is_preserved(st.st_dev, st.st_ino))
                        call_reply(&c, -EPERM);         /* would grow a preserved memfd */
                break;
        }
        default:
                break;
        }
        if (!c.answered)
                call_continue(&c);
        safe_close(c.pidfd);
}
