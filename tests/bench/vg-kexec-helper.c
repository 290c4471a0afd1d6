/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kexec system calls on behalf of a daemon running under valgrind (see vg-kexec-shim.c):
 *   vg-kexec-helper load KERNEL_FD INITRD_FD FLAGS CMDLINE     kexec_file_load(2)
 *   vg-kexec-helper reboot CMD                                 reboot(2) with the magic pair
 * Exits 0 on success, else with the call's errno.
 */
#include <errno.h>
#include <linux/reboot.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
        long r;

        if (argc == 6 && strcmp(argv[1], "load") == 0) {
                const char *cmdline = argv[5];
                unsigned long len = *cmdline ? strlen(cmdline) + 1 : 0;
                r = syscall(SYS_kexec_file_load, atoi(argv[2]), atoi(argv[3]), len, len ? cmdline : NULL,
                            strtoul(argv[4], NULL, 10));
        } else if (argc == 3 && strcmp(argv[1], "reboot") == 0)
                r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, (unsigned) strtoul(argv[2], NULL, 0), NULL);
        else
                return EINVAL;
        return r < 0 ? (errno ? errno : EIO) : 0;
}
