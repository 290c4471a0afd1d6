/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The emulated machine's view of the file system: a private /dev with the
 * emulated device nodes and fake sysfs entries for the VFIO devices and kexec.
 * (/proc/cmdline and boot_id are answered by the trap, trap.c, so that a service
 * with a procfs of its own sees them too.) The supervisor keeps the backing files
 * in a private temp dir (removed at exit) so that it can update them while the
 * machine runs; the machine child mounts them in its own mount namespace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "emu.h"

#define VFIO_CDEV_MAJOR  511
#define VFIO_GROUP_MAJOR 510
#define VFIO_MINOR       196
#define MISC_MAJOR       10
#define LIVEUPDATE_MINOR 117
#define IOMMU_MINOR      118
#define PCI_PARENT       "/sys/devices/pci0000:00/0000:00:01.0"

static char *tmp;
static int timer_fd = -1;
static int bind_fd = -1;                /* inotify on drivers/vfio-pci/bind */
static bool bind_watched;
int fakefs_timer_tag;
int fakefs_bind_tag;

const char *fakefs_tmp(void) {
        return tmp;
}

static char *tpath(const char *fmt, ...) _printf_(1, 2);
static char *tpath(const char *fmt, ...) {
        static char buf[4][512];
        static unsigned n;
        char *b = buf[n++ % 4];
        va_list ap;
        int k = snprintf(b, 512, "%s/", tmp);

        va_start(ap, fmt);
        vsnprintf(b + k, 512 - (size_t) k, fmt, ap);
        va_end(ap);
        return b;
}

static int write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        size_t len = strlen(text);

        if (fd < 0)
                return -errno;
        /* Rewrite in place: the machine sees this inode through a bind mount. */
        if (ftruncate(fd, 0) < 0)
                return -errno;
        if (pwrite(fd, text, len, 0) != (ssize_t) len)
                return -EIO;
        return 0;
}

static int mkdir_p(const char *path) {
        char buf[512];

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

void fakefs_set_kexec_loaded(bool loaded) {
        if (tmp)
                (void) write_file(tpath("kexec_loaded"), loaded ? "1\n" : "0\n");
}

static void set_driver_one(unsigned i, bool bound) {
        const char *bdf = vfio_devs[i].bdf;

        vfio_devs[i].driver_bound = bound;
        unlink(tpath("pcidev/%s/driver", bdf));
        unlink(tpath("buspci/drivers/vfio-pci/%s", bdf));
        if (!bound)
                return;
        char target[128];
        snprintf(target, sizeof(target), "../../../../devices/pci0000:00/0000:00:01.0/%s", bdf);
        if (symlink("../../../../bus/pci/drivers/vfio-pci", tpath("pcidev/%s/driver", bdf)) < 0 ||
            symlink(target, tpath("buspci/drivers/vfio-pci/%s", bdf)) < 0)
                log_error("cannot create sysfs driver link for %s: %m", bdf);
}

/* index UINT32_MAX: all devices (the bind-delay timer fired: as a udev rule would, with the override). */
void fakefs_set_driver(unsigned index, bool bound) {
        if (index == UINT32_MAX) {
                for (unsigned i = 0; i < opt.n_vfio; i++) {
                        if (bound)
                                (void) write_file(tpath("pcidev/%s/driver_override", vfio_devs[i].bdf), "vfio-pci\n");
                        set_driver_one(i, bound);
                }
                if (timer_fd >= 0) {
                        epoll_ctl(emu.epoll_fd, EPOLL_CTL_DEL, timer_fd, NULL);
                        timer_fd = safe_close(timer_fd);
                }
                log_debug("bind delay over: devices bound to vfio-pci");
                return;
        }
        set_driver_one(index, bound);
}

int fakefs_setup(void) {
        char tmpl[] = "/tmp/luo-emu.XXXXXX";
        int r;

        if (!mkdtemp(tmpl))
                return -errno;
        tmp = strdup(tmpl);
        if (!tmp)
                return -ENOMEM;
        if (mkdir(tpath("newdev"), 0755) < 0 || mkdir(tpath("vfiodev"), 0755) < 0 ||
            mkdir(tpath("iommugroups"), 0755) < 0 ||
            mkdir(tpath("pcidev"), 0755) < 0 || mkdir(tpath("buspci"), 0755) < 0)
                return -errno;
        r = mkdir_p(tpath("buspci/devices"));
        if (r < 0)
                return r;
        r = mkdir_p(tpath("buspci/drivers/vfio-pci"));
        if (r < 0)
                return r;
        r = write_file(tpath("buspci/drivers_autoprobe"), "1\n");
        if (r < 0)
                return r;
        /* vfio-pci's bind file: a write binds the named device if its driver_override says
         * vfio-pci (vfio-pci has no id table), as userspace binds a preserved device after the
         * kexec (the PCI preservation series leaves that to userspace) */
        r = write_file(tpath("buspci/drivers/vfio-pci/bind"), "");
        if (r < 0)
                return r;
        bind_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (bind_fd < 0 || inotify_add_watch(bind_fd, tpath("buspci/drivers/vfio-pci/bind"), IN_CLOSE_WRITE) < 0)
                return -errno;
        fakefs_set_kexec_loaded(false);

        for (unsigned i = 0; i < opt.n_vfio; i++) {
                const char *bdf = vfio_devs[i].bdf;
                char target[160];

                r = mkdir_p(tpath("pcidev/%s/vfio-dev/vfio%u", bdf, i));
                if (r < 0)
                        return r;
                snprintf(target, sizeof(target), "%u:%u\n", VFIO_CDEV_MAJOR, i);
                if ((r = write_file(tpath("pcidev/%s/vfio-dev/vfio%u/dev", bdf, i), target)) < 0 ||
                    (r = write_file(tpath("pcidev/%s/vendor", bdf), "0x1b36\n")) < 0 ||
                    (r = write_file(tpath("pcidev/%s/device", bdf), "0x0010\n")) < 0 ||
                    (r = write_file(tpath("pcidev/%s/class", bdf), "0x010802\n")) < 0 ||
                    (r = write_file(tpath("pcidev/%s/driver_override", bdf), "vfio-pci\n")) < 0)
                        return r;
                /* device -> the BDF directory, as seen from vfio-dev/vfioN/ */
                snprintf(target, sizeof(target), "../../../%s", bdf);
                if (symlink(target, tpath("pcidev/%s/vfio-dev/vfio%u/device", bdf, i)) < 0)
                        return -errno;
                snprintf(target, sizeof(target), "../../devices/pci0000:00/0000:00:01.0/%s/vfio-dev/vfio%u", bdf, i);
                if (symlink(target, tpath("vfiodev/vfio%u", i)) < 0)
                        return -errno;
                /* IOMMU group i = { device i } */
                r = mkdir_p(tpath("iommugroups/%u/devices", i));
                if (r < 0)
                        return r;
                snprintf(target, sizeof(target), "../../../../devices/pci0000:00/0000:00:01.0/%s", bdf);
                if (symlink(target, tpath("iommugroups/%u/devices/%s", i, bdf)) < 0)
                        return -errno;
                snprintf(target, sizeof(target), "../../../../kernel/iommu_groups/%u", i);
                if (symlink(target, tpath("pcidev/%s/iommu_group", bdf)) < 0)
                        return -errno;
                snprintf(target, sizeof(target), "../../../devices/pci0000:00/0000:00:01.0/%s", bdf);
                if (symlink(target, tpath("buspci/devices/%s", bdf)) < 0)
                        return -errno;
                /* a VF: physfn names its physical function (here the upstream bridge stands in) */
                if ((opt.vfio_vf[i / 8] & (1u << (i % 8))) && symlink("..", tpath("pcidev/%s/physfn", bdf)) < 0)
                        return -errno;
                set_driver_one(i, true);
        }
        return 0;
}

void fakefs_on_bind(void) {
        char ev[4096], buf[64] = "", override[64] = "";
        FILE *f;

        while (read(bind_fd, ev, sizeof(ev)) > 0)
                ;
        f = fopen(tpath("buspci/drivers/vfio-pci/bind"), "re");
        if (f) {
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = '\0';
                fclose(f);
        }
        (void) truncate(tpath("buspci/drivers/vfio-pci/bind"), 0);
        buf[strcspn(buf, "\n")] = '\0';
        for (unsigned i = 0; i < opt.n_vfio; i++) {
                if (strcmp(vfio_devs[i].bdf, buf) != 0)
                        continue;
                f = fopen(tpath("pcidev/%s/driver_override", buf), "re");
                if (f) {
                        if (!fgets(override, sizeof(override), f))
                                override[0] = '\0';
                        fclose(f);
                }
                if (strcmp(override, "vfio-pci\n") != 0) {
                        log_debug("bind of %s to vfio-pci ignored: driver_override is not vfio-pci", buf);
                        return;
                }
                if (!vfio_devs[i].driver_bound) {
                        log_debug("%s bound to vfio-pci on request", buf);
                        set_driver_one(i, true);
                }
                return;
        }
        log_debug("bind of unknown device \"%s\" to vfio-pci ignored", buf);
}

int fakefs_boot(void) {
        fakefs_set_kexec_loaded(false);

        if (bind_fd >= 0 && !bind_watched) {
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fakefs_bind_tag };
                if (epoll_ctl(emu.epoll_fd, EPOLL_CTL_ADD, bind_fd, &ev) < 0)
                        return -errno;
                bind_watched = true;
        }

        if (timer_fd >= 0) {
                epoll_ctl(emu.epoll_fd, EPOLL_CTL_DEL, timer_fd, NULL);
                timer_fd = safe_close(timer_fd);
        }
        if (emu.boot > 0 && opt.bind_delay_ms > 0 && opt.n_vfio > 0) {
                struct itimerspec its = {
                        .it_value.tv_sec = opt.bind_delay_ms / 1000,
                        .it_value.tv_nsec = (long) (opt.bind_delay_ms % 1000) * 1000000L,
                };
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &fakefs_timer_tag };

                /* a new kernel: no driver, and no override until userspace sets one */
                for (unsigned i = 0; i < opt.n_vfio; i++) {
                        (void) write_file(tpath("pcidev/%s/driver_override", vfio_devs[i].bdf), "(null)\n");
                        set_driver_one(i, false);
                }
                timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                if (timer_fd < 0)
                        return -errno;
                if (timerfd_settime(timer_fd, 0, &its, NULL) < 0 ||
                    epoll_ctl(emu.epoll_fd, EPOLL_CTL_ADD, timer_fd, &ev) < 0)
                        return -errno;
        } else
                for (unsigned i = 0; i < opt.n_vfio; i++)
                        set_driver_one(i, true);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st; (void) ftw;
        if (flag == FTW_DP)
                rmdir(path);
        else
                unlink(path);
        return 0;
}

void fakefs_cleanup(void) {
        if (!tmp)
                return;
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(tmp);
        tmp = NULL;
}

/* ---- in the machine child, before exec ---- */

static char *shadowed[16];
static size_t n_shadowed;

/*
 * Replaces a real directory by a tmpfs that shows the same entries (bind mounts and
 * symlinks of the originals), so that entries can be added to it. Used for sysfs
 * directories that need an emulated entry the host does not have.
 */
static int shadow_dir(const char *dir) {
        _cleanup_close_ int dfd = -EBADF;
        DIR *d;
        struct dirent *de;
        int fd;

        for (size_t i = 0; i < n_shadowed; i++)
                if (strcmp(shadowed[i], dir) == 0)
                        return 0;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755") < 0)
                return -errno;
        fd = dup(dfd);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char src[512], dst[1024], link[512];
                ssize_t n;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(src, sizeof(src), "/proc/self/fd/%d/%s", dfd, de->d_name);
                snprintf(dst, sizeof(dst), "%s/%s", dir, de->d_name);
                switch (de->d_type) {
                case DT_LNK:
                        n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
                        if (n < 0)
                                continue;
                        link[n] = 0;
                        (void) symlink(link, dst);
                        break;
                case DT_DIR:
                        if (mkdir(dst, 0755) < 0 || mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                                continue;
                        break;
                default:
                        fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        if (fd < 0)
                                continue;
                        close(fd);
                        (void) mount(src, dst, NULL, MS_BIND, NULL);
                        break;
                }
        }
        closedir(d);
        if (n_shadowed < ELEMENTSOF(shadowed))
                shadowed[n_shadowed++] = strdup(dir);
        return 0;
}

/* Makes dir exist, shadowing its nearest existing ancestor so that it can be created. */
static int ensure_dir(const char *dir) {
        char parent[512], *slash;
        int r;

        if (access(dir, F_OK) == 0)
                return 0;
        snprintf(parent, sizeof(parent), "%s", dir);
        slash = strrchr(parent, '/');
        if (!slash || slash == parent)
                return -ENOENT;
        *slash = 0;
        r = ensure_dir(parent);
        if (r < 0)
                return r;
        r = shadow_dir(parent);
        if (r < 0)
                return r;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Bind src over target, creating target (through shadowed ancestors) if needed. */
static int mount_over(const char *src, const char *target, bool dir) {
        struct stat st;
        int r;

        if (lstat(target, &st) < 0) {
                char parent[512], *slash;

                snprintf(parent, sizeof(parent), "%s", target);
                slash = strrchr(parent, '/');
                if (!slash || slash == parent)
                        return -ENOENT;
                *slash = 0;
                r = ensure_dir(parent);
                if (r < 0)
                        return r;
                r = shadow_dir(parent);
                if (r < 0)
                        return r;
                if (dir) {
                        if (mkdir(target, 0755) < 0)
                                return -errno;
                } else {
                        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        if (fd < 0)
                                return -errno;
                        close(fd);
                }
        }
        if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        return 0;
}

static int dev_bind(const char *name, bool dir) {
        char src[64], dst[512];
        struct stat st;

        snprintf(src, sizeof(src), "/dev/%s", name);
        if (stat(src, &st) < 0)
                return 0;       /* the host lacks it; so does the machine */
        snprintf(dst, sizeof(dst), "%s/newdev/%s", tmp, name);
        if (dir) {
                if (mkdir(dst, 0755) < 0)
                        return -errno;
        } else {
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -errno;
                close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        return 0;
}

int fakefs_machine_mounts(void) {
        static const char *const devs[] = { "null", "zero", "full", "random", "urandom", "tty", "ptmx" };
        static const char *const links[][2] = {
                { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
                { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
        };
        char p[512];
        int r;

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return -errno;

        /* /dev */
        if (mount("tmpfs", tpath("newdev"), "tmpfs", MS_NOSUID, "mode=0755") < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(devs); i++)
                if ((r = dev_bind(devs[i], false)) < 0)
                        return r;
        if ((r = dev_bind("pts", true)) < 0)
                return r;
        snprintf(p, sizeof(p), "%s/newdev/shm", tmp);
        if (mkdir(p, 01777) < 0 || mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(p, sizeof(p), "%s/newdev/%s", tmp, links[i][0]);
                if (symlink(links[i][1], p) < 0)
                        return -errno;
        }
        if (emu.luo_enabled) {
                snprintf(p, sizeof(p), "%s/newdev/liveupdate", tmp);
                if (mknod(p, S_IFCHR | 0600, makedev(MISC_MAJOR, LIVEUPDATE_MINOR)) < 0 || chmod(p, 0600) < 0)
                        return -errno;
        }
        snprintf(p, sizeof(p), "%s/newdev/iommu", tmp);
        if (mknod(p, S_IFCHR | 0660, makedev(MISC_MAJOR, IOMMU_MINOR)) < 0 || chmod(p, 0660) < 0)
                return -errno;
        if (opt.n_vfio > 0) {
                snprintf(p, sizeof(p), "%s/newdev/vfio/devices", tmp);
                if ((r = mkdir_p(p)) < 0)
                        return r;
                for (unsigned i = 0; i < opt.n_vfio; i++) {
                        snprintf(p, sizeof(p), "%s/newdev/vfio/devices/vfio%u", tmp, i);
                        if (mknod(p, S_IFCHR | 0600, makedev(VFIO_CDEV_MAJOR, i)) < 0)
                                return -errno;
                        snprintf(p, sizeof(p), "%s/newdev/vfio/%u", tmp, i);
                        if (mknod(p, S_IFCHR | 0600, makedev(VFIO_GROUP_MAJOR, i)) < 0)
                                return -errno;
                }
                snprintf(p, sizeof(p), "%s/newdev/vfio/vfio", tmp);
                if (mknod(p, S_IFCHR | 0666, makedev(MISC_MAJOR, VFIO_MINOR)) < 0 || chmod(p, 0666) < 0)
                        return -errno;
        }
        if (mount(tpath("newdev"), "/dev", NULL, MS_MOVE, NULL) < 0)
                return -errno;

        /* sysfs */
        if ((r = mount_over(tpath("kexec_loaded"), "/sys/kernel/kexec_loaded", false)) < 0)
                return r;
        if ((r = mount_over(tpath("vfiodev"), "/sys/class/vfio-dev", true)) < 0)
                return r;
        if ((r = mount_over(tpath("buspci"), "/sys/bus/pci", true)) < 0)
                return r;
        if ((r = mount_over(tpath("pcidev"), PCI_PARENT, true)) < 0)
                return r;
        if (opt.n_vfio > 0 && (r = mount_over(tpath("iommugroups"), "/sys/kernel/iommu_groups", true)) < 0)
                return r;
        /* stat() of a cdev node gives 511:N; /sys/dev/char/511:N leads to the device */
        if (opt.n_vfio > 0 && access("/sys/dev/char", F_OK) == 0) {
                if ((r = shadow_dir("/sys/dev/char")) < 0)
                        return r;
                for (unsigned i = 0; i < opt.n_vfio; i++) {
                        char link[128], target[160];

                        snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", VFIO_CDEV_MAJOR, i);
                        snprintf(target, sizeof(target), "../../devices/pci0000:00/0000:00:01.0/%s/vfio-dev/vfio%u",
                                 vfio_devs[i].bdf, i);
                        if (symlink(target, link) < 0)
                                return -errno;
                }
        }
        return 0;
}
