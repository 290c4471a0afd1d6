/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LD_PRELOAD shim for counting the daemon's instructions under valgrind
 * (tests/bench/run-instructions.sh), never for production.
 *
 * Debian 12's valgrind (3.19) knows neither kexec_file_load(2) nor reboot(2) on amd64: it
 * fails them with ENOSYS before the kernel (here luo-emu) sees them. The shim overrides
 * libc's syscall() and hands those two calls to a helper process that runs natively
 * (valgrind does not follow exec without --trace-children=yes): the loaded image and the
 * reboot belong to the machine, not to a process, so the effect is the same. The
 * measured paths end where the daemon calls kexec_reboot() (callgrind --dump-before), so
 * the shim's own instructions (fork, exec, wait) are counted only at prepare.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

long syscall(long nr, ...);

/* reboot_cmd >= 0: reboot(2) with that command; else kexec_file_load(2) with the rest */
static long run_helper(long reboot_cmd, long kernel_fd, long initrd_fd, unsigned long cmdline_len,
                       const char *cmdline, unsigned long flags) {
        const char *helper = getenv("VG_KEXEC_HELPER");
        char a1[24], a2[24], a3[24];
        int status;
        pid_t pid;

        if (!helper) {
                errno = ENOSYS;
                return -1;
        }
        snprintf(a1, sizeof(a1), "%ld", kernel_fd);
        snprintf(a2, sizeof(a2), "%ld", initrd_fd);
        snprintf(a3, sizeof(a3), "%lu", flags);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                /* The image fds are O_CLOEXEC in the daemon: the child passes copies as fds 3 and 4.
                 * Everything else is closed and the fd limit raised to the hard one, since the
                 * native program starts with the limit valgrind gave its client (ld.so failed
                 * with EMFILE otherwise). */
                struct rlimit rl;
                int k = kernel_fd >= 0 ? fcntl((int) kernel_fd, F_DUPFD, 100) : -1;   /* out of the way of 3 and 4 */
                int i = initrd_fd >= 0 ? fcntl((int) initrd_fd, F_DUPFD, 100) : -1;
                if ((kernel_fd >= 0 && (k < 0 || dup2(k, 3) < 0)) || (initrd_fd >= 0 && (i < 0 || dup2(i, 4) < 0)))
                        _exit(127);
                for (int fd = 5; fd < 65536; fd++)
                        (void) close(fd);
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                        rl.rlim_cur = rl.rlim_max;
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
                (void) unsetenv("LD_PRELOAD");   /* the helper's own call must reach the kernel */
                snprintf(a1, sizeof(a1), "%d", kernel_fd >= 0 ? 3 : -1);
                snprintf(a2, sizeof(a2), "%d", initrd_fd >= 0 ? 4 : -1);
                if (reboot_cmd >= 0) {
                        snprintf(a1, sizeof(a1), "%ld", reboot_cmd);
                        execl(helper, helper, "reboot", a1, (char *) NULL);
                } else
                        execl(helper, helper, "load", a1, a2, a3, cmdline_len > 0 ? cmdline : "", (char *) NULL);
                fprintf(stderr, "vg-kexec-shim: cannot run %s: %m\n", helper);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
                errno = EIO;
                return -1;
        }
        if (WEXITSTATUS(status) != 0) {
                errno = WEXITSTATUS(status);   /* the helper exits with the call's errno */
                return -1;
        }
        return 0;
}

long syscall(long nr, ...) {
        static long (*real)(long, ...);
        long a[6];
        va_list ap;

        va_start(ap, nr);
        for (int i = 0; i < 6; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (nr == SYS_kexec_file_load)
                /* the fds were passed as int: the upper halves of those registers are undefined */
                return run_helper(-1, (int) a[0], (int) a[1], (unsigned long) a[2], (const char *) a[3], (unsigned long) a[4]);
        if (nr == SYS_reboot)
                return run_helper((unsigned) a[2], -1, -1, 0, NULL, 0);
        if (!real)
                real = (long (*)(long, ...)) dlsym(RTLD_NEXT, "syscall");
        return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
