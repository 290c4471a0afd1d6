/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Raw-syscall helpers shared by the conformance programs in this directory. They talk
 * to /dev/liveupdate, session fds, VFIO cdevs and kexec with plain ioctl()/syscall()
 * and the numbers of shared/spec/luo-abi.md, never through lib/, so that the suite
 * checks the kernel rules (and the emulator answering them) independently of our own
 * access layer. Every helper returns what the syscall returned, errno intact.
 *
 * Data a program needs on a later boot (inode numbers, PCI addresses) goes to a
 * "notes" file next to the harness state file, the way a real program would keep it
 * across a kexec: on disk, or in a preserved memfd.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kexec.h>
#include <linux/reboot.h>

#include "harness.h"
#include "linux/liveupdate.h"
#include "lu/iommufd.h"
#include "lu/vfio-cdev.h"

#define LUO_DEV "/dev/liveupdate"

static inline void raw_notes_path(char *buf, size_t n, const char *suffix) {
        snprintf(buf, n, "%s.%s", harness_state_path(), suffix);
}

/* harness_init() plus: skip cleanly outside the emulator, forget notes of an earlier run. */
static inline void raw_init(void) {
        char p[PATH_MAX];

        if (harness_boot() < 0) {
                printf("1..0 # SKIP LUO_EMU_BOOT not set: run under tests/emu/luo-emu\n");
                exit(0);
        }
        harness_init();
        if (harness_boot() == 0) {
                raw_notes_path(p, sizeof(p), "notes");
                (void) unlink(p);
        }
}

/* Stop the program with a TAP bail-out: the rest of the checks would only cascade. */
__attribute__((noreturn, format(printf, 1, 2)))
static inline void raw_bail(const char *fmt, ...) {
        va_list ap;
        printf("Bail out! ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf(" (%s)\n", strerror(errno));
        exit(1);
}

static inline void raw_note_set(const char *key, long long value) {
        char p[PATH_MAX];
        FILE *f;

        raw_notes_path(p, sizeof(p), "notes");
        f = fopen(p, "ae");
        if (!f || fprintf(f, "%s %lld\n", key, value) < 0 || fclose(f) != 0)
                raw_bail("cannot write %s", p);
}

/* The last value written for @key, or @def. */
static inline long long raw_note_get(const char *key, long long def) {
        char p[PATH_MAX], k[128];
        long long v, r = def;
        FILE *f;

        raw_notes_path(p, sizeof(p), "notes");
        f = fopen(p, "re");
        if (!f)
                return def;
        while (fscanf(f, "%127s %lld", k, &v) == 2)
                if (strcmp(k, key) == 0)
                        r = v;
        fclose(f);
        return r;
}

/*
 * Poll @pred for up to two seconds. Only for rules the kernel applies synchronously but
 * luo-emu may apply a little later (it learns of an exited process's closed fds
 * asynchronously): the strict check comes first (as a TODO when it fails), this one
 * then asserts that the rule holds at all.
 */
#define RAW_ASYNC_TODO "luo-emu applies the release of an exited process's fds asynchronously (waitpid() returned first)"
static inline bool raw_eventually(bool (*pred)(void *), void *data) {
        for (int i = 0; i < 200; i++) {
                if (pred(data))
                        return true;
                usleep(10 * 1000);
        }
        return false;
}

/* ---- /dev/liveupdate and sessions (upstream ABI, spec §1) ---- */

static inline int raw_open_dev(void) {
        return open(LUO_DEV, O_RDWR | O_CLOEXEC);
}

static inline void raw_set_name(__u8 *dst, size_t n, const char *name) {
        size_t len = strlen(name);

        memset(dst, 0, n);
        memcpy(dst, name, len < n ? len : n);
}

/* CREATE_SESSION; returns the session fd or -1. */
static inline int raw_create(int dev, const char *name) {
        struct liveupdate_ioctl_create_session a = { .size = sizeof(a), .fd = -1 };

        raw_set_name(a.name, sizeof(a.name), name);
        if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a) < 0)
                return -1;
        return a.fd;
}

static inline int raw_retrieve(int dev, const char *name) {
        struct liveupdate_ioctl_retrieve_session a = { .size = sizeof(a), .fd = -1 };

        raw_set_name(a.name, sizeof(a.name), name);
        if (ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a) < 0)
                return -1;
        return a.fd;
}

static inline int raw_preserve(int session, int fd, uint64_t token) {
        struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };

        return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &a);
}

static inline int raw_retrieve_fd(int session, uint64_t token) {
        struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .fd = -1, .token = token };

        if (ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0)
                return -1;
        return a.fd;
}

static inline int raw_finish(int session) {
        struct liveupdate_session_finish a = { .size = sizeof(a) };

        return ioctl(session, LIVEUPDATE_SESSION_FINISH, &a);
}

/* ---- memfds ---- */

/* A memfd holding @text (without NUL), file position left at the end. */
static inline int raw_memfd(const char *name, const char *text) {
        int fd = memfd_create(name, MFD_CLOEXEC);
        size_t n = strlen(text);

        if (fd < 0)
                raw_bail("memfd_create");
        if (n > 0 && write(fd, text, n) != (ssize_t) n)
                raw_bail("write memfd");
        return fd;
}

/* True if @fd holds exactly @text from offset 0 (position untouched). */
static inline bool raw_memfd_is(int fd, const char *text) {
        char buf[4096];
        size_t n = strlen(text);
        struct stat st;
        ssize_t r;

        if (fstat(fd, &st) < 0 || (size_t) st.st_size != n || n > sizeof(buf))
                return false;
        r = pread(fd, buf, sizeof(buf), 0);
        return r == (ssize_t) n && memcmp(buf, text, n) == 0;
}

static inline bool raw_is_cloexec(int fd) {
        int f = fcntl(fd, F_GETFD);
        return f >= 0 && (f & FD_CLOEXEC);
}

/* ---- kexec ---- */

/*
 * Write a fake kernel image: luo-emu, like the kernel's bzImage loader, looks for the
 * "HdrS" setup-header magic at offset 0x202. @valid false writes a file without it.
 */
static inline int raw_write_image(bool valid, char *path, size_t n) {
        char img[1024] = {};
        int fd;

        raw_notes_path(path, n, valid ? "bzImage" : "not-a-kernel");
        if (valid)
                memcpy(img + 0x202, "HdrS", 4);
        else
                memcpy(img, "#!/bin/sh\necho not a kernel\n", 28);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        if (write(fd, img, sizeof(img)) != (ssize_t) sizeof(img)) {
                close(fd);
                return -1;
        }
        return close(fd);
}

/*
 * The command line the next kernel gets for @cmdline. On a real kernel (the
 * real-kernel suite's QEMU machine, tests/real-kernel) LUO_RAW_CMDLINE_PREFIX holds what
 * that machine needs on every boot (console, its init's scenario); it comes first.
 */
static inline void raw_next_cmdline(char *buf, size_t n, const char *cmdline) {
        const char *prefix = getenv("LUO_RAW_CMDLINE_PREFIX");

        if (prefix && *prefix)
                snprintf(buf, n, "%s %s", prefix, cmdline);
        else
                snprintf(buf, n, "%s", cmdline);
}

/*
 * kexec_file_load() of the fake image (or of a non-kernel) with @cmdline for the next
 * boot. On a real kernel, LUO_RAW_KERNEL (and LUO_RAW_INITRD, if set) name the real
 * image to load instead of the fake one.
 */
static inline long raw_kexec_load_cmdline(bool valid, const char *cmdline) {
        const char *real = getenv("LUO_RAW_KERNEL"), *initrd = getenv("LUO_RAW_INITRD");
        char path[PATH_MAX], next[1024];
        int fd, ifd = -1;
        long r;

        if (valid && real && *real)
                snprintf(path, sizeof(path), "%s", real);
        else if (raw_write_image(valid, path, sizeof(path)) < 0)
                raw_bail("cannot write kernel image");
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                raw_bail("open %s", path);
        if (valid && real && *real && initrd && *initrd) {
                ifd = open(initrd, O_RDONLY | O_CLOEXEC);
                if (ifd < 0)
                        raw_bail("open %s", initrd);
        }
        raw_next_cmdline(next, sizeof(next), cmdline);
        r = syscall(SYS_kexec_file_load, fd, ifd, strlen(next) + 1, next,
                    ifd >= 0 ? 0UL : (unsigned long) KEXEC_FILE_NO_INITRAMFS);
        int saved = errno;
        close(fd);
        if (ifd >= 0)
                close(ifd);
        errno = saved;
        return r;
}

/* The same with a command line that keeps LUO enabled on the next boot (spec §1.1). */
static inline long raw_kexec_load(bool valid) {
        return raw_kexec_load_cmdline(valid, "liveupdate=on kho=on");
}

static inline long raw_kexec_unload(void) {
        return syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long) KEXEC_FILE_UNLOAD);
}

/*
 * reboot(LINUX_REBOOT_CMD_KEXEC) after saving the TAP counts. Returns only if the
 * reboot failed (-1, errno set); the caller's open session fds stay open across the
 * call, as in the kernel selftests.
 */
static inline long raw_reboot(void) {
        harness_carry();
        return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                       LINUX_REBOOT_CMD_KEXEC, NULL);
}

/* Load the fake kernel and kexec into it; never returns. */
__attribute__((noreturn))
static inline void raw_kexec_or_bail(void) {
        if (raw_kexec_load(true) < 0)
                raw_bail("kexec_file_load of the fake image failed");
        (void) raw_reboot();
        raw_bail("reboot(LINUX_REBOOT_CMD_KEXEC) returned");
}

/* ---- VFIO cdevs and iommufd (spec §4) ---- */

static inline int raw_vfio_open(unsigned n) {
        char p[64];

        snprintf(p, sizeof(p), "/dev/vfio/devices/vfio%u", n);
        return open(p, O_RDWR | O_CLOEXEC);
}

/* BIND_IOMMUFD; returns the ioctl result, *devid on success. */
static inline int raw_vfio_bind(int dev, int iommufd, uint32_t *devid) {
        struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
        int r = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);

        if (r >= 0 && devid)
                *devid = b.out_devid;
        return r;
}

static inline int raw_ioas_alloc(int iommufd, uint32_t *id) {
        struct iommu_ioas_alloc a = { .size = sizeof(a) };
        int r = ioctl(iommufd, IOMMU_IOAS_ALLOC, &a);

        if (r >= 0)
                *id = a.out_ioas_id;
        return r;
}

static inline int raw_vfio_attach(int dev, uint32_t pt) {
        struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = pt };

        return ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

/* Open /dev/iommu, bind @dev, attach it to a fresh IOAS. Returns the iommufd or bails. */
static inline int raw_vfio_setup(int dev, int iommufd) {
        uint32_t devid, ioas;

        if (iommufd < 0)
                iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (iommufd < 0)
                raw_bail("open /dev/iommu");
        if (raw_vfio_bind(dev, iommufd, &devid) < 0)
                raw_bail("VFIO_DEVICE_BIND_IOMMUFD");
        if (raw_ioas_alloc(iommufd, &ioas) < 0)
                raw_bail("IOMMU_IOAS_ALLOC");
        if (raw_vfio_attach(dev, ioas) < 0)
                raw_bail("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
        return iommufd;
}

/* SET_IRQS: @efd >= 0 enables one vector of @index with that eventfd; -1 disables it. */
static inline int raw_vfio_irqs(int dev, unsigned index, int efd) {
        /* struct vfio_irq_set with room for one eventfd in data[] (offset 20) */
        struct {
                uint32_t argsz, flags, index, start, count;
                int32_t fd;
        } a = { .argsz = 20, .index = index };

        _Static_assert(sizeof(struct vfio_irq_set) == 20, "vfio_irq_set header");
        if (efd >= 0) {
                a.argsz = sizeof(a);
                a.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
                a.count = 1;
                a.fd = efd;
        } else
                a.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
        return ioctl(dev, VFIO_DEVICE_SET_IRQS, &a);
}

/* Parse the last "DDDD:BB:DD.F" component of @s into a packed domain<<16|bus<<8|devfn. */
static inline long long raw_pci_from_string(const char *s) {
        long long best = -1;

        for (const char *p = s; *p; p++) {
                unsigned d, b, dev, fn;
                int n = 0;

                if ((p == s || p[-1] == '/' || p[-1] == ' ') &&
                    sscanf(p, "%x:%2x:%2x.%1u%n", &d, &b, &dev, &fn, &n) == 4 && n >= 12 &&
                    dev < 32 && fn < 8)
                        best = ((long long) d << 16) | (b << 8) | (dev << 3) | fn;
        }
        return best;
}

/*
 * The PCI address of a VFIO device fd by the means spec §4.2 lists: the fdinfo
 * "vfio-device-syspath:" line, the sysfs path of the cdev's st_rdev, or (bound
 * devices) the hot-reset info entry whose devid is ours. -1 if none answers.
 */
static inline long long raw_vfio_pci_addr(int dev, int64_t devid) {
        char p[PATH_MAX], line[PATH_MAX + 64], link[PATH_MAX];
        struct stat st;
        ssize_t n;
        FILE *f;

        snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", dev);
        f = fopen(p, "re");
        if (f) {
                long long r = -1;
                while (fgets(line, sizeof(line), f))
                        if (strncmp(line, "vfio-device-syspath:", 20) == 0)
                                r = raw_pci_from_string(line + 20);
                fclose(f);
                if (r >= 0)
                        return r;
        }

        if (fstat(dev, &st) >= 0 && S_ISCHR(st.st_mode)) {
                snprintf(p, sizeof(p), "/sys/dev/char/%u:%u", major(st.st_rdev), minor(st.st_rdev));
                n = readlink(p, link, sizeof(link) - 1);
                if (n > 0) {
                        char *v;
                        link[n] = 0;
                        v = strstr(link, "/vfio-dev/");
                        if (v) {
                                *v = 0;
                                long long r = raw_pci_from_string(link);
                                if (r >= 0)
                                        return r;
                        }
                }
        }

        if (devid >= 0) {
                struct {
                        uint32_t argsz, flags, count;
                        struct lu_vfio_pci_dependent_device d[16];
                } hr = { .argsz = sizeof(hr) };

                if (ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, &hr) >= 0 &&
                    (hr.flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID))
                        for (uint32_t i = 0; i < hr.count && i < 16; i++)
                                if (hr.d[i].devid == (uint32_t) devid)
                                        return ((long long) hr.d[i].segment << 16) |
                                               (hr.d[i].bus << 8) | hr.d[i].devfn;
        }
        return -1;
}
