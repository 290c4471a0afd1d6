/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small raw-syscall helpers for the emulator's own smoke tests (tests/emu/test-emu-*.c),
 * which run as COMMAND under luo-emu and talk to the emulated kernel directly.
 */
#pragma once

#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"

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
