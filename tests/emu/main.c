/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo-emu entry point: command line, preflight checks (root, seccomp user
 * notification), and the supervisor's single epoll loop that drives every boot of
 * the emulated machine.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu.h"

struct emu_options opt = {
        .abi = EMU_ABI_UPSTREAM,
        .n_vfio = 0,
};

struct emu_state emu = {
        .init_pidfd = -1,
        .listener = -1,
        .proc_fd = -1,
        .epoll_fd = -1,
        .obj_epoll_fd = -1,
        .v4_state = 1,          /* NORMAL */
};

#define DEFAULT_CMDLINE "BOOT_IMAGE=/boot/vmlinuz-luo-emu root=/dev/vda ro liveupdate=on kho=on"

static const char *const fail_names[_FAIL_MAX] = {
        [FAIL_OPEN] = "open",
        [FAIL_CREATE_SESSION] = "create-session",
        [FAIL_RETRIEVE_SESSION] = "retrieve-session",
        [FAIL_PRESERVE] = "preserve",
        [FAIL_RETRIEVE_FD] = "retrieve-fd",
        [FAIL_FINISH] = "finish",
        [FAIL_FREEZE] = "freeze",
};

void log_error(const char *fmt, ...) {
        va_list ap;
        int saved = errno;

        fputs("luo-emu: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        errno = saved;
}

void log_debug(const char *fmt, ...) {
        va_list ap;
        int saved = errno;

        if (!opt.verbose)
                return;
        fputs("luo-emu: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        errno = saved;
}

int fail_check(enum fail_point p) {
        if (opt.fail_errno[p] == 0 || opt.fail_count[p] == 0)
                return 0;
        /* Calls in other boots neither fail nor count. */
        if (opt.fail_boot[p] >= 0 && (unsigned) opt.fail_boot[p] != emu.boot)
                return 0;
        if (opt.fail_skip[p] > 0) {
                opt.fail_skip[p]--;
                return 0;
        }
        if (opt.fail_count[p] > 0)
                opt.fail_count[p]--;
        log_debug("injected failure at %s: %s", fail_names[p], strerror(opt.fail_errno[p]));
        return -opt.fail_errno[p];
}

static const struct {
        const char *name;
        int value;
} errno_names[] = {
        { "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EIO", EIO }, { "E2BIG", E2BIG },
        { "EBADF", EBADF }, { "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EACCES", EACCES },
        { "EFAULT", EFAULT }, { "EBUSY", EBUSY }, { "EEXIST", EEXIST }, { "ENODEV", ENODEV },
        { "EINVAL", EINVAL }, { "ENOSPC", ENOSPC }, { "ENOSYS", ENOSYS }, { "ENOTTY", ENOTTY },
        { "EOPNOTSUPP", EOPNOTSUPP }, { "ETIMEDOUT", ETIMEDOUT }, { "EMFILE", EMFILE },
        { "ENXIO", ENXIO }, { "EINTR", EINTR }, { "ENOEXEC", ENOEXEC },
};

static int parse_errno(const char *s) {
        char *end;
        long v;

        for (size_t i = 0; i < ELEMENTSOF(errno_names); i++)
                if (strcmp(s, errno_names[i].name) == 0)
                        return errno_names[i].value;
        v = strtol(s, &end, 10);
        if (*s && !*end && v > 0 && v < 4096)
                return (int) v;
        return -EINVAL;
}

static int parse_long(const char *s, long min, long *ret) {
        char *end;
        long n;

        errno = 0;
        n = strtol(s, &end, 10);
        if (!*s || *end || errno || n < min)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* WHAT:ERRNO[:COUNT[:SKIP]][@BOOT] */
static int parse_fail(const char *arg) {
        _cleanup_free_ char *copy = strdup(arg);
        char *what, *err, *count, *skip, *boot;
        long n_count = -1, n_skip = 0, n_boot = -1;
        int e;

        if (!copy)
                return -ENOMEM;
        what = copy;
        boot = strchr(what, '@');
        if (boot) {
                *boot++ = 0;
                if (parse_long(boot, 0, &n_boot) < 0 || n_boot > INT_MAX)
                        return -EINVAL;
        }
        err = strchr(what, ':');
        if (!err)
                return -EINVAL;
        *err++ = 0;
        count = strchr(err, ':');
        if (count) {
                *count++ = 0;
                skip = strchr(count, ':');
                if (skip) {
                        *skip++ = 0;
                        if (parse_long(skip, 0, &n_skip) < 0)
                                return -EINVAL;
                }
                if (parse_long(count, 1, &n_count) < 0)
                        return -EINVAL;
        }
        e = parse_errno(err);
        if (e < 0)
                return -EINVAL;
        for (int p = 0; p < _FAIL_MAX; p++) {
                if (strcmp(what, fail_names[p]) != 0)
                        continue;
                opt.fail_errno[p] = e;
                opt.fail_count[p] = n_count;
                opt.fail_skip[p] = n_skip;
                opt.fail_boot[p] = (int) n_boot;
                return 0;
        }
        return -EINVAL;
}

static void usage(FILE *f) {
        fputs("Usage: luo-emu [OPTIONS] -- COMMAND [ARGS...]\n"
              "Run COMMAND as the first process of an emulated machine whose kernel offers\n"
              "the Live Update Orchestrator, VFIO cdev devices, iommufd and kexec.\n\n"
              "  --abi=upstream|v4      LUO ABI of the emulated kernel (default upstream)\n"
              "  --kernel=7.1|7.2       which upstream kernel the upstream ABI behaves as\n"
              "                         (default 7.1; 7.2: SESSION_GET_NAME, no per-session\n"
              "                         file limit, no session count limit)\n"
              "  --vfio=N               emulate N vfio-pci devices /dev/vfio/devices/vfio0..N-1\n"
              "  --vfio-vf=I[,I...]     devices I are SR-IOV virtual functions (sysfs physfn)\n"
              "  --cmdline=STR          kernel command line of boot 0\n"
              "                         (default \"" DEFAULT_CMDLINE "\")\n"
              "  --fail=WHAT:ERRNO[:N[:SKIP]][@BOOT]\n"
              "                         inject ERRNO at WHAT (open, create-session,\n"
              "                         retrieve-session, preserve, retrieve-fd, finish, freeze),\n"
              "                         N times (default: always), after letting SKIP calls\n"
              "                         through, only in boot BOOT (default: any boot)\n"
              "  --bind-delay=MS        after a kexec, devices appear bound to vfio-pci only\n"
              "                         MS milliseconds after boot\n"
              "  --verbose              trace every trapped call to stderr\n"
              "  --help                 show this help\n", f);
}

static int parse_args(int argc, char **argv) {
        enum { ARG_ABI = 0x100, ARG_KERNEL, ARG_VFIO, ARG_VFIO_VF, ARG_CMDLINE, ARG_FAIL, ARG_BIND_DELAY, ARG_VERBOSE, ARG_HELP };
        static const struct option options[] = {
                { "abi", required_argument, NULL, ARG_ABI },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "vfio", required_argument, NULL, ARG_VFIO },
                { "vfio-vf", required_argument, NULL, ARG_VFIO_VF },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "fail", required_argument, NULL, ARG_FAIL },
                { "bind-delay", required_argument, NULL, ARG_BIND_DELAY },
                { "verbose", no_argument, NULL, ARG_VERBOSE },
                { "help", no_argument, NULL, ARG_HELP },
                {}
        };
        bool kernel_given = false;
        int c;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                char *end;
                long v;

                switch (c) {
                case ARG_ABI:
                        if (strcmp(optarg, "upstream") == 0)
                                opt.abi = EMU_ABI_UPSTREAM;
                        else if (strcmp(optarg, "v4") == 0)
                                opt.abi = EMU_ABI_V4;
                        else {
                                log_error("unknown --abi=%s (expected upstream or v4)", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_KERNEL:
                        if (strcmp(optarg, "7.1") == 0)
                                opt.kernel = EMU_KERNEL_7_1;
                        else if (strcmp(optarg, "7.2") == 0)
                                opt.kernel = EMU_KERNEL_7_2;
                        else {
                                log_error("unknown --kernel=%s (expected 7.1 or 7.2)", optarg);
                                return -EINVAL;
                        }
                        kernel_given = true;
                        break;
                case ARG_VFIO:
                        v = strtol(optarg, &end, 10);
                        if (!*optarg || *end || v < 0 || v > 255) {
                                log_error("bad --vfio=%s (expected 0..255)", optarg);
                                return -EINVAL;
                        }
                        opt.n_vfio = (unsigned) v;
                        break;
                case ARG_VFIO_VF:
                        for (char *p = optarg;;) {
                                v = strtol(p, &end, 10);
                                if (end == p || v < 0 || v > 255 || (*end && *end != ',')) {
                                        log_error("bad --vfio-vf=%s (expected device numbers 0..255, comma-separated)", optarg);
                                        return -EINVAL;
                                }
                                opt.vfio_vf[v / 8] |= (uint8_t) (1u << (v % 8));
                                if (!*end)
                                        break;
                                p = end + 1;
                        }
                        break;
                case ARG_CMDLINE:
                        opt.cmdline = optarg;
                        break;
                case ARG_FAIL:
                        if (parse_fail(optarg) < 0) {
                                log_error("bad --fail=%s (expected WHAT:ERRNO[:COUNT[:SKIP]][@BOOT])", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_BIND_DELAY:
                        v = strtol(optarg, &end, 10);
                        if (!*optarg || *end || v < 0 || v > 3600000) {
                                log_error("bad --bind-delay=%s", optarg);
                                return -EINVAL;
                        }
                        opt.bind_delay_ms = (unsigned) v;
                        break;
                case ARG_VERBOSE:
                        opt.verbose = true;
                        break;
                case ARG_HELP:
                        usage(stdout);
                        exit(0);
                default:
                        return -EINVAL;
                }
        }
        if (kernel_given && opt.abi == EMU_ABI_V4) {
                /* v4 is an out-of-tree ABI of its own: it has no 7.1/7.2 variants */
                log_error("--kernel= applies to --abi=upstream only");
                return -EINVAL;
        }
        if (optind >= argc) {
                log_error("no COMMAND given");
                return -EINVAL;
        }
        opt.argv = argv + optind;
        return 0;
}

static int check_privileges(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0) {
                log_error("must run as root: cannot read capabilities: %m");
                return -errno;
        }
        if (geteuid() != 0 || !(d[0].effective & (1u << CAP_SYS_ADMIN))) {
                log_error("must run as root: the emulator needs CAP_SYS_ADMIN (namespaces, mounts, "
                          "seccomp without no_new_privs) and CAP_SYS_PTRACE (pidfd_getfd)");
                return -EPERM;
        }
        return 0;
}

static int check_kernel(void) {
        uint32_t action = SECCOMP_RET_USER_NOTIF;
        int fd;

        if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0) {
                log_error("this kernel does not support seccomp user notification "
                          "(SECCOMP_RET_USER_NOTIF, Linux >= 5.0): %m");
                return -errno;
        }
        fd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        if (fd < 0) {
                log_error("this kernel lacks pidfd_open() (Linux >= 5.3): %m");
                return -errno;
        }
        if (syscall(SYS_pidfd_getfd, fd, 0, 0) < 0 && errno == ENOSYS) {
                log_error("this kernel lacks pidfd_getfd() (Linux >= 5.6): %m");
                close(fd);
                return -ENOSYS;
        }
        /* fd 0 may legitimately be closed; only ENOSYS matters. */
        close(fd);
        return 0;
}

struct rlimit machine_nofile;

/*
 * The supervisor holds a reference to every preserved file and an end of every
 * emulated file, thousands at scale: raise its own fd limit as far as root may. The
 * machine gets the limit luo-emu was started with.
 */
static void raise_fd_limit(void) {
        struct rlimit rl;
        unsigned long nr_open = 0;
        FILE *f;

        if (getrlimit(RLIMIT_NOFILE, &machine_nofile) < 0)
                return;
        rl = machine_nofile;
        f = fopen("/proc/sys/fs/nr_open", "re");
        if (f) {
                if (fscanf(f, "%lu", &nr_open) != 1)
                        nr_open = 0;
                fclose(f);
        }
        if (nr_open > rl.rlim_max)
                rl.rlim_max = nr_open;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                rl = machine_nofile;
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static int tag_listener, tag_init, tag_signal, tag_objects;
bool machine_kexec_pending;
int machine_exit_request = -1;

static int run(void) {
        sigset_t mask;
        _cleanup_close_ int sfd = -EBADF;
        struct epoll_event ev;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        sigdelset(&mask, SIGCHLD);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                return -errno;

        emu.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (emu.epoll_fd < 0)
                return -errno;
        emu.obj_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (emu.obj_epoll_fd < 0)
                return -errno;
        ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &tag_objects };
        if (epoll_ctl(emu.epoll_fd, EPOLL_CTL_ADD, emu.obj_epoll_fd, &ev) < 0)
                return -errno;
        ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &tag_signal };
        if (epoll_ctl(emu.epoll_fd, EPOLL_CTL_ADD, sfd, &ev) < 0)
                return -errno;

        for (;;) {
                int status;

                machine_kexec_pending = false;
                r = machine_boot();
                if (r < 0)
                        return r;
                ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &tag_listener };
                if (epoll_ctl(emu.epoll_fd, EPOLL_CTL_ADD, emu.listener, &ev) < 0)
                        return -errno;
                ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &tag_init };
                if (epoll_ctl(emu.epoll_fd, EPOLL_CTL_ADD, emu.init_pidfd, &ev) < 0)
                        return -errno;

                for (;;) {
                        struct epoll_event e;
                        int n = epoll_wait(emu.epoll_fd, &e, 1, -1);

                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (n == 0)
                                continue;
                        if (e.data.ptr == &tag_listener) {
                                if (e.events & (EPOLLHUP | EPOLLERR)) {
                                        /* No task uses the filter any more: the machine is gone. */
                                        epoll_ctl(emu.epoll_fd, EPOLL_CTL_DEL, emu.listener, NULL);
                                        continue;
                                }
                                trap_handle(emu.listener);
                        } else if (e.data.ptr == &tag_init) {
                                break;
                        } else if (e.data.ptr == &tag_signal) {
                                struct signalfd_siginfo si;

                                if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                                        log_debug("signal %u: shutting the machine down", si.ssi_signo);
                                        machine_exit_request = 128 + (int) si.ssi_signo;
                                        machine_kill();
                                }
                        } else if (e.data.ptr == &fakefs_bind_tag) {
                                fakefs_on_bind();
                        } else if (e.data.ptr == &fakefs_timer_tag) {
                                /* bind-delay timer (fakefs) */
                                fakefs_set_driver(UINT32_MAX, true);
                        } else if (e.data.ptr == &tag_objects)
                                object_drain_releases();
                }

                /* init is gone: reap it; the whole PID namespace died with it. */
                if (waitpid(emu.init_pid, &status, 0) < 0)
                        return -errno;
                epoll_ctl(emu.epoll_fd, EPOLL_CTL_DEL, emu.init_pidfd, NULL);
                emu.init_pidfd = safe_close(emu.init_pidfd);
                if (emu.listener >= 0) {
                        epoll_ctl(emu.epoll_fd, EPOLL_CTL_DEL, emu.listener, NULL);
                        emu.listener = safe_close(emu.listener);
                }
                emu.proc_fd = safe_close(emu.proc_fd);

                if (machine_exit_request >= 0)
                        return machine_exit_request;
                if (!machine_kexec_pending) {
                        object_drop_all();
                        if (WIFEXITED(status))
                                return WEXITSTATUS(status);
                        return 128 + WTERMSIG(status);
                }
                emu.boot++;
        }
}

int main(int argc, char **argv) {
        int r;

        if (parse_args(argc, argv) < 0) {
                usage(stderr);
                return 2;
        }
        if (check_privileges() < 0)
                return 1;
        if (check_kernel() < 0)
                return 1;

        raise_fd_limit();
        emu.cmdline = strdup(opt.cmdline ? opt.cmdline : DEFAULT_CMDLINE);
        if (!emu.cmdline)
                return 1;
        vfio_init();
        r = fakefs_setup();
        if (r < 0) {
                errno = -r;
                log_error("cannot set up the machine's file system: %m");
                return 1;
        }
        r = run();
        fakefs_cleanup();
        if (r < 0) {
                errno = -r;
                log_error("%m");
                return 1;
        }
        return r;
}
