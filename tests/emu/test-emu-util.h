/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small raw-syscall helpers for the emulator's own smoke tests (tests/emu/test-emu-*.c),
 * which run as COMMAND under luo-emu and talk to the emulated kernel directly.
 */
#pragma once

#include <fcntl.h>
#include <linux/reboot.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "linux/liveupdate.h"

#ifndef _noreturn_
#define _noreturn_ __attribute__((noreturn))
#endif

/* A file that passes kexec_file_load's image probe: "HdrS" at 0x202. */
static inline int emu_test_kernel_image(void) {
        int fd = memfd_create("vmlinuz", MFD_CLOEXEC);
        char buf[0x400] = {};

        if (fd < 0)
                return -1;
        memcpy(buf + 0x202, "HdrS", 4);
        if (write(fd, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
                return -1;
        return fd;
}

static inline long emu_test_kexec_load(int kernel_fd, const char *cmdline) {
        return syscall(SYS_kexec_file_load, kernel_fd, -1, strlen(cmdline) + 1, cmdline, 4UL /* NO_INITRAMFS */);
}

static inline long emu_test_reboot_kexec(void) {
        return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
}

static inline int emu_test_readlink_fd(int fd, char *buf, size_t size) {
        char p[64];
        ssize_t n;

        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        n = readlink(p, buf, size - 1);
        if (n < 0)
                return -1;
        buf[n] = 0;
        return 0;
}

/* Upstream session ioctls, raw: -1 with errno on failure, like the syscalls they wrap. */

/* CREATE_SESSION or RETRIEVE_SESSION (@cmd) of @name: the session fd. */
static inline int emu_session_op(int luo, unsigned long cmd, const char *name) {
        struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };

        snprintf((char *) a.name, sizeof(a.name), "%s", name);
        if (ioctl(luo, cmd, &a) < 0)
                return -1;
        return a.fd;
}

static inline int emu_preserve(int s, int fd, uint64_t token) {
        struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };
        return ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &a);
}

static inline int emu_retrieve(int s, uint64_t token) {
        struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = token };

        if (ioctl(s, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0)
                return -1;
        return a.fd;
}

static inline int emu_finish(int s) {
        struct liveupdate_session_finish a = { .size = sizeof(a) };
        return ioctl(s, LIVEUPDATE_SESSION_FINISH, &a);
}
