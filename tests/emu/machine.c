/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The emulated machine: each boot is a fresh PID + mount namespace whose init is
 * COMMAND. The child sets up the machine's mounts, installs the seccomp filter and
 * hands the listener (and its /proc) to the supervisor before exec'ing COMMAND.
 * Killing init ends every process of the machine.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu.h"

static int send_fds(int sock, const int *fds, size_t n) {
        char cbuf[CMSG_SPACE(sizeof(int) * 4)] = {};
        char byte = 'L';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = cbuf, .msg_controllen = CMSG_SPACE(sizeof(int) * n),
        };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int recv_fds(int sock, int *fds, size_t n) {
        char cbuf[CMSG_SPACE(sizeof(int) * 4)] = {};
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = cbuf, .msg_controllen = CMSG_SPACE(sizeof(int) * n),
        };
        struct cmsghdr *cm;
        ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

        if (k < 0)
                return -errno;
        if (k == 0)
                return -ECHILD;         /* the child failed before sending */
        cm = CMSG_FIRSTHDR(&mh);
        if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int) * n))
                return -EBADMSG;
        memcpy(fds, CMSG_DATA(cm), sizeof(int) * n);
        return 0;
}

_noreturn_ static void child_fail(int r, const char *what) {
        errno = -r;
        log_error("machine setup failed: %s: %m", what);
        _exit(127);
}

_noreturn_ static void machine_child(int sock) {
        char boot[32];
        sigset_t all;
        int fds[2], r;

        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (machine_nofile.rlim_max > 0)
                (void) setrlimit(RLIMIT_NOFILE, &machine_nofile);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);

        r = fakefs_machine_mounts();
        if (r < 0)
                child_fail(r, "mounts");
        fds[1] = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[1] < 0)
                child_fail(-errno, "/proc");
        fds[0] = trap_install_filter();
        if (fds[0] < 0)
                child_fail(fds[0], "seccomp filter");
        r = send_fds(sock, fds, 2);
        if (r < 0)
                child_fail(r, "passing the listener");
        close(fds[0]);
        close(fds[1]);
        close(sock);

        snprintf(boot, sizeof(boot), "%u", emu.boot);
        if (setenv("LUO_EMU_BOOT", boot, 1) < 0)
                child_fail(-errno, "environment");
        /* which kernel the upstream ABI behaves as, for tests that check its rules */
        if (opt.abi == EMU_ABI_UPSTREAM && setenv("LUO_EMU_KERNEL", opt.kernel == EMU_KERNEL_7_2 ? "7.2" : "7.1", 1) < 0)
                child_fail(-errno, "environment");
        if (emu.boot > 0) {
                /* lets benchmarks end a path at the reboot call itself, not at the next boot */
                char t[32];
                snprintf(t, sizeof(t), "%" PRIu64, emu.reboot_call_us);
                if (setenv("LUO_EMU_REBOOT_US", t, 1) < 0)
                        child_fail(-errno, "environment");
        } else
                (void) unsetenv("LUO_EMU_REBOOT_US");
        execvp(opt.argv[0], opt.argv);
        log_error("cannot execute %s: %m", opt.argv[0]);
        _exit(errno == ENOENT ? 127 : 126);
}

/* Every boot is a new kernel: a new random (version 4) UUID for boot_id, as the kernel makes one. */
static int boot_id_new(char ret[static 37]) {
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -EIO;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
        return 0;
}

int machine_boot(void) {
        _cleanup_close_ int sp0 = -EBADF, sp1 = -EBADF;
        int sp[2], fds[2], r;
        pid_t pid;

        emu.machine_dying = false;
        emu.luo_enabled = cmdline_luo_enabled(emu.cmdline);
        emu.luo_dev_in_use = false;
        emu.kexec_loaded = false;
        emu.kexec_crash_loaded = false;
        free(emu.kexec_cmdline);
        emu.kexec_cmdline = NULL;
        r = boot_id_new(emu.boot_id);
        if (r < 0)
                return r;
        r = fakefs_boot();
        if (r < 0)
                return r;
        log_debug("boot %u: boot_id %s, cmdline \"%s\", LUO %s", emu.boot, emu.boot_id, emu.cmdline,
                  emu.luo_enabled ? "enabled" : "disabled");

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        sp0 = sp[0];
        sp1 = sp[1];

        fflush(NULL);
        pid = (pid_t) syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0);
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                sp0 = safe_close(sp0);
                machine_child(TAKE_FD(sp1));
        }
        sp1 = safe_close(sp1);
        emu.init_pid = pid;
        emu.init_pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (emu.init_pidfd < 0)
                return -errno;
        r = recv_fds(sp0, fds, 2);
        if (r < 0) {
                int status;
                /* The child already explained why. */
                waitpid(pid, &status, 0);
                return -ECHILD;
        }
        emu.listener = fds[0];
        emu.proc_fd = fds[1];

        /*
         * Ask for hand-off wake-ups between the trapped task and the supervisor (Linux
         * >= 6.6). On these 2-vCPU VMs a cross-CPU wake-up costs ~25 us per direction,
         * which would dominate every trapped call; an older kernel just says EINVAL.
         */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1ULL << 0)
#endif
        (void) ioctl(emu.listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
        return 0;
}

void machine_kill(void) {
        emu.machine_dying = true;
        if (emu.init_pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, emu.init_pidfd, SIGKILL, NULL, 0);
}
