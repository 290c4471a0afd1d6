/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark of the LUO kernel emulator itself: what a trapped ioctl costs compared
 * with an untrapped one, and what one emulated kexec cycle costs.
 *
 *   luo-emu [--abi=v4] --vfio=1 -- bench-emu ioctl [ITERATIONS] [upstream|v4]
 *   luo-emu -- bench-emu reboot [CYCLES] STATEFILE
 *   bench-emu floor [ITERATIONS]      (outside the emulator)
 *
 * "floor" is the least any seccomp-notification emulator can cost here: a child traps
 * getppid() and a parent answers at once, with the same hand-off wake-up luo-emu uses.
 *
 * Both ratios are measured in the same run on the same machine, so they stay
 * meaningful on a loaded 2-core box where absolute numbers wander.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "linux/liveupdate.h"
#include "lu/liveupdate-v4.h"
#include "lu/vfio-cdev.h"

#define ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int die(const char *what) {
        fprintf(stderr, "bench-emu: %s: %s\n", what, strerror(errno));
        exit(1);
}

/* Runs @fn @n times and returns the mean cost in nanoseconds. */
#define TIME_LOOP(n, body) ({                                   \
                uint64_t _t0 = now_ns();                        \
                for (long _i = 0; _i < (n); _i++) { body; }     \
                (double) (now_ns() - _t0) / (double) (n);       \
        })

static int bench_ioctl(long n, bool v4) {
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        if (luo < 0)
                die("open /dev/liveupdate");

        /* The two ABIs number CREATE_SESSION differently and v4's name field is shorter. */
        unsigned long create_cmd = v4 ? LUO_V4_IOCTL_CREATE_SESSION : LIVEUPDATE_IOCTL_CREATE_SESSION;
        struct liveupdate_ioctl_create_session cs = { .size = v4 ? sizeof(struct luo_v4_create_session) : sizeof cs };
        strcpy((char *) cs.name, "bench");
        if (ioctl(luo, create_cmd, &cs) < 0)
                die("CREATE_SESSION");

        /* A fresh cdev refuses everything but BIND_IOMMUFD, so bind it first. */
        int vfio = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
        if (vfio < 0)
                die("open /dev/vfio/devices/vfio0");
        int iommu = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (iommu < 0)
                die("open /dev/iommu");
        struct vfio_device_bind_iommufd bind = { .argsz = sizeof bind, .iommufd = iommu };
        if (ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0)
                die("VFIO_DEVICE_BIND_IOMMUFD");

        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe");

        /* Untrapped baselines: an ioctl the filter lets through, and a plain syscall. */
        int avail;
        double base_ioctl = TIME_LOOP(n, if (ioctl(p[0], FIONREAD, &avail) < 0) die("FIONREAD"));
        double base_sys = TIME_LOOP(n, syscall(SYS_getppid));

        /* Trapped: a duplicate session name (argument read, table lookup, errno reply). */
        double dup_session = TIME_LOOP(n, {
                if (ioctl(luo, create_cmd, &cs) == 0 || errno != EEXIST)
                        die("duplicate CREATE_SESSION should fail with EEXIST");
        });

        /* Trapped on a VFIO device: fd identification, argument read and write-back. */
        struct lu_vfio_device_info info;
        double get_info = TIME_LOOP(n, {
                info = (struct lu_vfio_device_info) { .argsz = sizeof info };
                if (ioctl(vfio, VFIO_DEVICE_GET_INFO, &info) < 0)
                        die("VFIO_DEVICE_GET_INFO");
        });

        /* Trapped on a session fd: preserving an fd that is not a memfd is refused (ENOENT). */
        struct liveupdate_session_preserve_fd pf = { .size = sizeof pf, .fd = p[0], .token = 1 };
        unsigned long preserve_cmd = v4 ? LUO_V4_SESSION_PRESERVE_FD : LIVEUPDATE_SESSION_PRESERVE_FD;
        double finish = TIME_LOOP(n, {
                if (ioctl(cs.fd, preserve_cmd, &pf) == 0 || errno != ENOENT)
                        die("PRESERVE_FD of a pipe should fail with ENOENT");
        });

        printf("iterations %ld\n", n);
        printf("untrapped_ioctl_ns %.0f\n", base_ioctl);
        printf("untrapped_syscall_ns %.0f\n", base_sys);
        printf("trapped_create_session_eexist_ns %.0f\n", dup_session);
        printf("trapped_vfio_get_info_ns %.0f\n", get_info);
        printf("trapped_session_preserve_enoent_ns %.0f\n", finish);
        printf("ratio_trapped_vs_untrapped_ioctl %.1f\n", get_info / base_ioctl);
        return 0;
}

static void write_kernel_image(const char *path) {
        char img[4096] = { 0 };
        memcpy(img + 0x202, "HdrS", 4);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, img, sizeof img) != (ssize_t) sizeof img || close(fd) < 0)
                die("write kernel image");
}

static int bench_reboot(long cycles, const char *state) {
        const char *b = getenv("LUO_EMU_BOOT");
        long boot = b ? atol(b) : 0;
        uint64_t t = now_ns(), t0 = t;

        if (boot == 0) {
                FILE *f = fopen(state, "we");
                if (!f || fprintf(f, "%" PRIu64 "\n", t) < 0 || fclose(f) != 0)
                        die("write state");
        } else {
                FILE *f = fopen(state, "re");
                if (!f || fscanf(f, "%" SCNu64, &t0) != 1)
                        die("read state");
                fclose(f);
        }

        if (boot >= cycles) {
                printf("cycles %ld\n", cycles);
                printf("reboot_cycle_us %.0f\n", (double) (t - t0) / 1000.0 / (double) cycles);
                return 0;
        }

        /* One session with one memfd per cycle, so the freeze/handover path is exercised. */
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        if (luo < 0)
                die("open /dev/liveupdate");
        struct liveupdate_ioctl_create_session cs = { .size = sizeof cs };
        snprintf((char *) cs.name, sizeof cs.name, "cycle-%ld", boot);
        if (ioctl(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs) < 0)
                die("CREATE_SESSION");
        int m = memfd_create("bench", MFD_CLOEXEC);
        if (m < 0 || ftruncate(m, 4096) < 0)
                die("memfd");
        struct liveupdate_session_preserve_fd pf = { .size = sizeof pf, .fd = m, .token = 1 };
        if (ioctl(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf) < 0)
                die("PRESERVE_FD");

        char img[256];
        snprintf(img, sizeof img, "%s.img", state);
        write_kernel_image(img);
        int k = open(img, O_RDONLY | O_CLOEXEC);
        const char cmdline[] = "liveupdate=on kho=on";
        if (k < 0 || syscall(SYS_kexec_file_load, k, -1, sizeof cmdline, cmdline, 4 /* NO_INITRAMFS */) < 0)
                die("kexec_file_load");
        syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
        die("reboot returned");
        return 1;
}

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif

static int bench_floor(long n) {
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTS(filter), .filter = filter };
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe");
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                int l = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
                if (l < 0 || write(p[1], &l, sizeof l) != sizeof l)
                        _exit(1);
                /* Wait until the parent holds the listener, then measure. */
                syscall(SYS_getppid);
                double t = TIME_LOOP(n, syscall(SYS_getppid));
                printf("iterations %ld\n", n);
                printf("bare_notify_roundtrip_ns %.0f\n", t);
                fflush(stdout);
                _exit(0);
        }
        int child_listener;
        if (read(p[0], &child_listener, sizeof child_listener) != sizeof child_listener)
                die("read listener");
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        int l = pidfd < 0 ? -1 : (int) syscall(SYS_pidfd_getfd, pidfd, child_listener, 0);
        if (l < 0)
                die("pidfd_getfd");
        (void) ioctl(l, SECCOMP_IOCTL_NOTIF_SET_FLAGS, 1ULL);
        for (;;) {
                struct seccomp_notif req = {};
                if (ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
                        break;   /* the child exited */
                struct seccomp_notif_resp resp = { .id = req.id, .val = 1 };
                (void) ioctl(l, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("floor child");
        return 0;
}

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && strcmp(argv[1], "ioctl") == 0)
                return bench_ioctl(argc > 2 ? atol(argv[2]) : 20000, argc > 3 && strcmp(argv[3], "v4") == 0);
        if (argc >= 2 && strcmp(argv[1], "floor") == 0)
                return bench_floor(argc > 2 ? atol(argv[2]) : 20000);
        if (argc >= 4 && strcmp(argv[1], "reboot") == 0)
                return bench_reboot(atol(argv[2]), argv[3]);
        fprintf(stderr, "usage: bench-emu floor [N] | bench-emu ioctl [N] [upstream|v4] | bench-emu reboot CYCLES STATEFILE\n");
        return 2;
}
