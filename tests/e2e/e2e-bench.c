/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark of lu-vfiod's share of the blackout, run as luo-emu's COMMAND:
 *
 *   e2e-bench daemon|bare|floor N_VMS FDS_PER_VM LU_VFIOD
 *
 * "daemon": N VMMs (one process each, with the client library) hand FDS_PER_VM memfds
 * to lu-vfiod; prepare; then commit while they acknowledge every freeze event. After the
 * emulated kexec N restarted VMM processes wait for the socket-activated daemon, reclaim
 * every item of their VM, check it and report the VM restored, until the daemon is idle.
 * "bare": the same kernel calls without a daemon: N sessions with FDS_PER_VM memfds, a
 * state memfd in a state session, kexec; then (after exec'ing itself again, as the
 * daemon is exec'ed) retrieve and finish everything.
 * "floor": bare plus the least IPC with one process per VM (see floor_spawn()).
 *
 * Measured with CLOCK_REALTIME across the reboot (the emulator keeps the host clock):
 *   freeze path  = commit request (bare: start of the freeze work) -> first instruction
 *                  of the next boot's program
 *   restore path = next boot's program start -> everything retrieved/reclaimed and finished
 *                  (daemon: the last VM's "restored" answered, which comes after its FINISH;
 *                  the daemon is then checked to be idle)
 * Prints one line "BENCH mode=... vms=... fds=... freeze_ms=... restore_ms=... rss_kib=...".
 * It also gives the CPU time (user + system, exact run time rather than ticks) used inside the
 * restore window: cpu_custodian_ms (lu-vfiod from its fork; bare/floor: this program from its
 * exec), cpu_vmms_ms (all VM processes, each from its wait for the restore to its end),
 * vmm_faults (their minor page faults, per VM) and, in daemon mode, cpu_bench_ms (this process).
 * Work directory: $E2E_DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kexec.h"
#include "lu-client.h"
#include "luo.h"

static const char *mode, *daemon_bin, *dir;
static unsigned n_vms, n_fds;
static int boot;
static char vmm_sock[300], ctl_sock[300], tfile[300];

static void die(const char *what, int r) {
        printf("BENCH FAILED: %s: %s\n", what, strerror(r < 0 ? -r : r));
        fflush(stdout);
        exit(1);
}

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* What this process used so far, from one getrusage(): CPU time, user + system, in µs (Linux
 * scales the two so that their sum is the scheduler's exact run time, not whole ticks), and
 * minor page faults (a forked process faults in every code page it runs for the first time). */
typedef struct Usage {
        uint64_t cpu_us, faults;
} Usage;

static Usage usage_self(void) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return (Usage) {};
        return (Usage) {
                .cpu_us = (uint64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                          (uint64_t) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec),
                .faults = (uint64_t) ru.ru_minflt,
        };
}

static Usage usage_since(Usage u0) {
        Usage u = usage_self();
        return (Usage) { .cpu_us = u.cpu_us - u0.cpu_us, .faults = u.faults - u0.faults };
}

static void save_u64(const char *name, uint64_t v) {
        char p[400];
        FILE *f;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        f = fopen(p, "we");
        if (!f)
                die("save", -errno);
        fprintf(f, "%llu\n", (unsigned long long) v);
        fclose(f);
}

static uint64_t load_u64(const char *name) {
        char p[400];
        unsigned long long v = 0;
        FILE *f;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        f = fopen(p, "re");
        if (!f || fscanf(f, "%llu", &v) != 1)
                die("load", -EIO);
        fclose(f);
        return v;
}

static int memfd_small(unsigned i) {
        int fd = memfd_create("bench", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, 65536) < 0 || pwrite(fd, &i, sizeof(i), 0) != sizeof(i))
                die("memfd", -errno);
        return fd;
}

static void write_kernel(char *path, size_t size) {
        static char image[4096];
        int fd;
        memcpy(image + 0x202, "HdrS", 4);
        snprintf(path, size, "%s/vmlinuz-bench", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, image, sizeof(image)) != (ssize_t) sizeof(image))
                die("kernel", -errno);
        close(fd);
}

/* ------------------------------------------------------------------ floor */

/*
 * "floor" = bare + the least IPC any custodian needs: one process per VM, one datagram to
 * each and one back at freeze, and after the kexec each VM's fds handed to its process in
 * one SCM_RIGHTS message, with one datagram back before its session is finished. No JSON,
 * no registry, no connect: the daemon's overhead above this is its own.
 */
static int *floor_socks;   /* parent's end per VM */

/* Fork one process per VM, each with a SEQPACKET socketpair; @after says which boot's work it does. */
static void floor_spawn(bool after) {
        floor_socks = calloc(n_vms, sizeof(int));
        if (!floor_socks)
                die("calloc", -ENOMEM);
        for (unsigned v = 0; v < n_vms; v++) {
                int sp[2];
                pid_t pid;

                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                        die("socketpair", -errno);
                pid = fork();
                if (pid < 0)
                        die("fork", -errno);
                if (pid == 0) {
                        char b;
                        close(sp[0]);
                        if (!after)
                                for (;;) {   /* answer every event until the kexec */
                                        if (recv(sp[1], &b, 1, 0) != 1)
                                                _exit(1);
                                        if (send(sp[1], "a", 1, MSG_NOSIGNAL) != 1)
                                                _exit(1);
                                }
                        {
                                char cbuf[CMSG_SPACE(sizeof(int) * 253)], done[1 + sizeof(Usage)] = "r";
                                struct iovec iov = { .iov_base = &b, .iov_len = 1 };
                                Usage u0 = usage_self(), used;
                                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                                struct cmsghdr *cm;
                                unsigned k = 0;

                                if (recvmsg(sp[1], &mh, MSG_CMSG_CLOEXEC) != 1 || !(cm = CMSG_FIRSTHDR(&mh)))
                                        _exit(1);
                                k = (unsigned) ((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                                for (unsigned j = 0; j < k; j++) {
                                        int fd;
                                        unsigned *got;
                                        memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
                                        got = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
                                        if (got == MAP_FAILED || *got != j)
                                                _exit(1);
                                        munmap(got, 4096);
                                        close(fd);
                                }
                                /* its CPU time from the wait for its fds on, as the daemon mode's VMMs report theirs */
                                used = usage_since(u0);
                                memcpy(done + 1, &used, sizeof(used));
                                if (k != n_fds || send(sp[1], done, sizeof(done), MSG_NOSIGNAL) != (ssize_t) sizeof(done))
                                        _exit(1);
                                _exit(0);
                        }
                }
                close(sp[1]);
                floor_socks[v] = sp[0];
        }
}

/* One datagram to every VM process, then one back from each. */
static void floor_round_trip(void) {
        char b;
        for (unsigned v = 0; v < n_vms; v++)
                if (send(floor_socks[v], "e", 1, MSG_NOSIGNAL) != 1)
                        die("floor send", -errno);
        for (unsigned v = 0; v < n_vms; v++)
                if (recv(floor_socks[v], &b, 1, 0) != 1)
                        die("floor ack", -EPIPE);
}

static void floor_send_fds(unsigned v, const int *fds, unsigned k) {
        char cbuf[CMSG_SPACE(sizeof(int) * 253)] = {};
        struct iovec iov = { .iov_base = (void *) "f", .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(sizeof(int) * k) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * k);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * k);
        if (sendmsg(floor_socks[v], &mh, MSG_NOSIGNAL) != 1)
                die("floor sendmsg", -errno);
}

/* ------------------------------------------------------------------ bare */

/* commit request (bare: start of the freeze work) -> entry of the reboot(KEXEC) call */
static double to_reboot_call_ms(void) {
        const char *e = getenv("LUO_EMU_REBOOT_US");
        return e ? (double) (strtoull(e, NULL, 10) - load_u64("t_freeze")) / 1000.0 : -1.0;
}

static char **self_argv;

/* Exec this program again, carrying the clock and the floor processes' sockets in the environment. */
static void restart_self(uint64_t t0) {
        char t[32], c[32], *list = NULL;
        size_t n = 0;

        snprintf(t, sizeof(t), "%llu", (unsigned long long) t0);
        snprintf(c, sizeof(c), "%llu", (unsigned long long) usage_self().cpu_us);   /* CPU time survives the exec */
        if (setenv("E2E_BENCH_T0", t, 1) < 0 || setenv("E2E_BENCH_CPU0", c, 1) < 0)
                die("setenv", -errno);
        if (floor_socks) {
                list = calloc(n_vms, 12);
                if (!list)
                        die("calloc", -ENOMEM);
                for (unsigned v = 0; v < n_vms; v++) {
                        if (fcntl(floor_socks[v], F_SETFD, 0) < 0)
                                die("fcntl", -errno);
                        n += (size_t) sprintf(list + n, "%s%d", v ? "," : "", floor_socks[v]);
                }
                if (setenv("E2E_BENCH_FLOOR_FDS", list, 1) < 0)
                        die("setenv", -errno);
        }
        execv(self_argv[0], self_argv);
        die("exec self", -errno);
}

static void floor_socks_from_env(void) {
        const char *p = getenv("E2E_BENCH_FLOOR_FDS");

        floor_socks = calloc(n_vms, sizeof(int));
        if (!floor_socks || !p)
                die("floor sockets", -EINVAL);
        for (unsigned v = 0; v < n_vms; v++) {
                char *end;
                floor_socks[v] = (int) strtol(p, &end, 10);
                p = *end == ',' ? end + 1 : end;
        }
}

static void bare(bool ipc) {
        uint64_t t0, cpu0 = 0;
        Luo *l = NULL;
        char name[64];
        int r;

        if (boot > 0 && getenv("E2E_BENCH_T0")) {
                /* second half of restart_self() */
                t0 = strtoull(getenv("E2E_BENCH_T0"), NULL, 10);
                cpu0 = getenv("E2E_BENCH_CPU0") ? strtoull(getenv("E2E_BENCH_CPU0"), NULL, 10) : 0;
                if (ipc)
                        floor_socks_from_env();
        } else {
                if (ipc)
                        floor_spawn(boot > 0);   /* before the clock starts, like the daemon mode's VMMs */
                t0 = now_us();
                if (boot > 0)
                        restart_self(t0);   /* the daemon's restore path includes its exec: so does this one */
        }
        r = luo_open(NULL, &l);
        if (r < 0)
                die("luo_open", r);
        if (boot == 0) {
                char kernel[400];
                int sfd, mfd;
                int *sessions = calloc(n_vms, sizeof(int));

                for (unsigned v = 0; v < n_vms; v++) {
                        snprintf(name, sizeof(name), "bare:%u", v);
                        r = luo_session_create(l, name, &sessions[v]);
                        if (r < 0)
                                die("create session", r);
                        for (unsigned i = 0; i < n_fds; i++) {
                                int fd = memfd_small(i);
                                r = luo_session_preserve_fd(l, sessions[v], fd, i + 1);
                                if (r < 0)
                                        die("preserve", r);
                                close(fd);
                        }
                }
                write_kernel(kernel, sizeof(kernel));
                r = kexec_load_kernel(kernel, NULL, "liveupdate=on kho=on");
                if (r < 0)
                        die("kexec load", r);
                /* like the daemon: the state memfd is preserved at prepare, rewritten at freeze */
                r = luo_session_create(l, "bare:state", &sfd);
                if (r < 0)
                        die("state session", r);
                mfd = memfd_small(0);
                r = luo_session_preserve_fd(l, sfd, mfd, 1);
                if (r < 0)
                        die("state preserve", r);
                if (luo_get_abi(l) == LUO_ABI_V4 && (r = luo_prepare(l)) < 0)
                        die("prepare", r);
                if (ipc)
                        floor_round_trip();   /* prepare */
                /* freeze path: the state record, sync, reboot */
                save_u64("t_freeze", now_us());
                if (ipc)
                        floor_round_trip();   /* freeze */
                if (pwrite(mfd, "state", 5, 0) != 5)
                        die("state write", -errno);
                sync();
                r = kexec_reboot();
                die("reboot returned", r);
        }
        {
                uint64_t tb = t0, te, cpu_vms = 0, faults_vms = 0;
                int sfd, fd, fds[253];
                int *sessions = calloc(n_vms, sizeof(int));

                if (!sessions)
                        die("calloc", -ENOMEM);

                r = luo_session_retrieve(l, "bare:state", &sfd);
                if (r >= 0) {
                        if (luo_session_retrieve_fd(l, sfd, 1, &fd) >= 0)
                                close(fd);
                }
                for (unsigned v = 0; v < n_vms; v++) {
                        int s;
                        snprintf(name, sizeof(name), "bare:%u", v);
                        r = luo_session_retrieve(l, name, &s);
                        if (r < 0)
                                die("retrieve session", r);
                        for (unsigned i = 0; i < n_fds; i++) {
                                r = luo_session_retrieve_fd(l, s, i + 1, &fd);
                                if (r < 0)
                                        die("retrieve fd", r);
                                if (ipc)
                                        fds[i] = fd;
                                else
                                        close(fd);
                        }
                        if (ipc) {
                                floor_send_fds(v, fds, n_fds);
                                for (unsigned i = 0; i < n_fds; i++)
                                        close(fds[i]);
                                sessions[v] = s;
                                continue;   /* finished once its process has them */
                        }
                        r = luo_session_finish(l, s);
                        if (r < 0)
                                die("finish", r);
                        close(s);
                }
                for (unsigned v = 0; ipc && v < n_vms; v++) {
                        char b[1 + sizeof(Usage)];
                        Usage used;
                        if (recv(floor_socks[v], b, sizeof(b), 0) != (ssize_t) sizeof(b) || b[0] != 'r')
                                die("a VM process failed", -EIO);
                        memcpy(&used, b + 1, sizeof(used));
                        cpu_vms += used.cpu_us;
                        faults_vms += used.faults;
                        r = luo_session_finish(l, sessions[v]);
                        if (r < 0)
                                die("finish", r);
                        close(sessions[v]);
                }
                if (sfd >= 0) {
                        (void) luo_session_finish(l, sfd);
                        close(sfd);
                }
                if (luo_get_abi(l) == LUO_ABI_V4)
                        (void) luo_finish(l);
                te = now_us();
                printf("BENCH mode=%s abi=%s vms=%u fds=%u freeze_ms=%.2f restore_ms=%.2f rss_kib=0 to_reboot_call_ms=%.2f "
                       "cpu_custodian_ms=%.2f cpu_vmms_ms=%.2f vmm_faults=%.1f\n",
                       ipc ? "floor" : "bare", luo_abi_to_string(luo_get_abi(l)), n_vms, n_fds,
                       (double) (load_u64("t_boot") - load_u64("t_freeze")) / 1000.0, (double) (te - tb) / 1000.0,
                       to_reboot_call_ms(), (double) (usage_self().cpu_us - cpu0) / 1000.0, (double) cpu_vms / 1000.0,
                       ipc ? (double) faults_vms / n_vms : 0.0);
        }
        luo_free(l);
}

/* ------------------------------------------------------------------ daemon */

static pid_t daemon_pid = -1;

static int connect_sock(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (strlen(path) >= sizeof(sa.sun_path))
                die("socket path too long", -ENAMETOOLONG);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* The VMM socket, bound here and passed like lu-vfiod.socket does: VMMs can connect before the daemon runs. */
static int listen_vmm(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);   /* inherited by the daemon: no CLOEXEC */

        memcpy(sa.sun_path, vmm_sock, strlen(vmm_sock) + 1);
        (void) unlink(vmm_sock);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0)
                die("listen on the VMM socket", -errno);
        return fd;
}

/* Socket-activated like the unit: the listening socket is fd 3, named "vmm". */
/*
 * E2E_BENCH_FDSTORE=1: the daemon gets a $NOTIFY_SOCKET, as under systemd with the shipped
 * unit's FileDescriptorStoreMax (it then keeps every session and item fd in the fd store).
 * A STAND-IN for the service manager: a child that receives every notification and keeps the
 * fds it carries, so that the daemon's side of the fd store (and a receiver's recvmsg) is in
 * the figures; systemd's own handling of each FDSTORE=1 message is not.
 */
static pid_t notify_sink_pid;
static void notify_sink_start(void) {
        static char path[300];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (!getenv("E2E_BENCH_FDSTORE") || strcmp(getenv("E2E_BENCH_FDSTORE"), "1") != 0)
                return;
        {
                /* sd_notify() takes an absolute path only */
                char *abs = realpath(dir, NULL);
                if (!abs)
                        die("realpath", -errno);
                snprintf(path, sizeof(path), "%s/notify.sock", abs);
                free(abs);
        }
        if (strlen(path) >= sizeof(sa.sun_path))
                die("notify socket path", -ENAMETOOLONG);
        strcpy(sa.sun_path, path);
        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("notify socket", -errno);
        {
                int big = 4 * 1024 * 1024;
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
        }
        notify_sink_pid = fork();
        if (notify_sink_pid < 0)
                die("fork", -errno);
        if (notify_sink_pid == 0) {
                for (;;) {
                        char buf[4096], cbuf[CMSG_SPACE(sizeof(int) * 16)];
                        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
                        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                        if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) < 0 && errno != EINTR)
                                _exit(1);
                        /* the fds stay open: a store holds what it is given */
                }
        }
        close(fd);
        setenv("NOTIFY_SOCKET", path, 1);
}

static void start_daemon(int listen_fd) {
        char a1[400], a2[400], a3[400], a4[400];
        char *argv[] = { (char *) daemon_bin, a1, a2, a3, a4, NULL };

        snprintf(a1, sizeof(a1), "--vmm-socket=%s", vmm_sock);
        snprintf(a2, sizeof(a2), "--control-socket=%s", ctl_sock);
        snprintf(a3, sizeof(a3), "--state-dir=%s/state", dir);
        snprintf(a4, sizeof(a4), "--config=%s/bench.conf", dir);
        daemon_pid = fork();
        if (daemon_pid == 0) {
                char pid[32];
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0 && !getenv("BENCH_VERBOSE"))
                        dup2(null, STDERR_FILENO);   /* keep the log quiet: we time it */
                if (dup2(listen_fd, 3) < 0)
                        _exit(127);
                snprintf(pid, sizeof(pid), "%d", (int) getpid());
                setenv("LISTEN_PID", pid, 1);
                setenv("LISTEN_FDS", "1", 1);
                setenv("LISTEN_FDNAMES", "vmm", 1);
                execv(argv[0], argv);
                _exit(127);
        }
        close(listen_fd);
        /* 60 s: the daemon may run under valgrind (tests/bench/run-instructions.sh) */
        for (uint64_t end = now_us() + 60 * 1000000ULL; now_us() < end;) {
                int fd = connect_sock(ctl_sock);
                if (fd >= 0) {
                        close(fd);
                        return;
                }
                usleep(100);
        }
        die("daemon did not start", -ETIMEDOUT);
}

static json_object *ctl_call(int fd, const char *req) {
        static char buf[1 << 20];
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
                return NULL;
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
                json_object *o;
                if (n <= 0)
                        return NULL;
                buf[n] = 0;
                o = json_tokener_parse(buf);
                if (o && !json_object_object_get_ex(o, "event", NULL))
                        return o;
                json_object_put(o);
        }
}

static long daemon_rss_kib(void) {
        char p[64], line[256];
        long kib = -1;
        FILE *f;
        snprintf(p, sizeof(p), "/proc/%d/status", (int) daemon_pid);
        f = fopen(p, "re");
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

/* The daemon's CPU time since its fork, in ns: the scheduler's run time of each of its threads. */
static uint64_t daemon_cpu_ns(void) {
        char p[64];
        uint64_t sum = 0;
        DIR *d;
        struct dirent *de;

        snprintf(p, sizeof(p), "/proc/%d/task", (int) daemon_pid);
        d = opendir(p);
        if (!d)
                die("daemon tasks", -errno);
        while ((de = readdir(d))) {
                char sp[400];
                unsigned long long ns;
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(sp, sizeof(sp), "%s/%s/schedstat", p, de->d_name);
                f = fopen(sp, "re");
                if (!f || fscanf(f, "%llu", &ns) != 1)
                        die("daemon schedstat", -EIO);
                fclose(f);
                sum += ns;
        }
        closedir(d);
        return sum;
}

/* @n bytes "r" from @fd; an "x" means a VMM failed (it said why). */
static void read_bytes(int fd, unsigned n, const char *what) {
        char b[256];
        while (n > 0) {
                ssize_t k = read(fd, b, n < sizeof(b) ? n : sizeof(b));
                if (k <= 0 || memchr(b, 'x', (size_t) k))
                        die(what, k < 0 ? -errno : -EPIPE);
                n -= (unsigned) k;
        }
}

/* Boot 0's VMM @v: hand over its memfds, say so on @ready, then acknowledge every event until the kexec. */
static _Noreturn void vmm_before(unsigned v, int ready) {
        LuClient *c = NULL;
        char vm[32], label[32];
        int r;

        /* a failing VMM says so on @ready, or the parent would wait for it forever */
#define vmm_die(what, err) do { (void) !write(ready, "x", 1); die(what, err); } while (0)

        snprintf(vm, sizeof(vm), "bench-%u", v);
        r = lu_client_connect(vmm_sock, vm, &c);
        if (r < 0)
                vmm_die("connect", r);
        for (unsigned i = 0; i < n_fds; i++) {
                int fd = memfd_small(i);
                snprintf(label, sizeof(label), "ram%u", i);
                r = lu_client_preserve(c, label, fd, NULL);
                if (r < 0)
                        vmm_die(lu_client_last_error(c), r);
                close(fd);
        }
        if (write(ready, "r", 1) != 1)
                vmm_die("ready", -errno);
        for (;;) {
                LuEvent ev;
                r = lu_client_next_event(c, -1, &ev);
                if (r < 0)
                        die("event", r);
                if (ev.type == LU_EVENT_PREPARE || ev.type == LU_EVENT_FREEZE)
                        (void) lu_client_ack(c, &ev, true, NULL);
        }
}
#undef vmm_die

/* Boot 1's restarted VMM @v: once @go closes, reclaim everything, check it, report restored; time in @done. */
static _Noreturn void vmm_after(unsigned v, int go, int fin, uint64_t *done) {
        LuClient *c = NULL;
        char vm[32], b;
        Usage u0 = usage_self(), used;   /* from the wait on, as the floor's processes count */
        int r;

        if (read(go, &b, 1) != 0)
                die("go", -EPROTO);
        snprintf(vm, sizeof(vm), "bench-%u", v);
        /* The items come with the hello reply (protocol version 2): the reclaims below ask nothing. */
        r = lu_client_connect_reclaim(vmm_sock, vm, &c);
        if (r < 0)
                die("reconnect", r);
        /* All of a VM's items in one round trip per LU_CLIENT_RECLAIM_MAX labels (none with fds from hello). */
        for (unsigned i0 = 0; i0 < n_fds; i0 += LU_CLIENT_RECLAIM_MAX) {
                char names[LU_CLIENT_RECLAIM_MAX][16];
                const char *labels[LU_CLIENT_RECLAIM_MAX];
                int fds[LU_CLIENT_RECLAIM_MAX];
                unsigned k = n_fds - i0 < LU_CLIENT_RECLAIM_MAX ? n_fds - i0 : LU_CLIENT_RECLAIM_MAX;

                for (unsigned j = 0; j < k; j++) {
                        snprintf(names[j], sizeof(names[j]), "ram%u", i0 + j);
                        labels[j] = names[j];
                }
                r = lu_client_reclaim_many(c, labels, k, fds, NULL);
                if (r < 0)
                        die("reclaim", r);
                for (unsigned j = 0; j < k; j++) {
                        /* mapped, not pread(): luo-emu traps every pread64, bare mode reads nothing */
                        unsigned *got = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fds[j], 0);
                        if (got == MAP_FAILED || *got != i0 + j)
                                die("reclaimed memfd has wrong contents", -EBADMSG);
                        munmap(got, 4096);
                        close(fds[j]);
                }
        }
        r = lu_client_restored(c);
        if (r < 0)
                die("restored", r);
        done[v] = now_us();
        lu_client_free(c);
        used = usage_since(u0);
        done[n_vms + v] = used.cpu_us;
        done[2 * n_vms + v] = used.faults;
        if (write(fin, "r", 1) != 1)
                _exit(1);
        _exit(0);
}

static void daemon_mode(void) {
        int ctl, pipefd[2];

        notify_sink_start();   /* before any clock starts: it resolves a path (trapped readlinks) */

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                die("pipe", -errno);
        if (boot == 0) {
                char kernel[400], req[600];

                start_daemon(listen_vmm());
                ctl = connect_sock(ctl_sock);
                /* one process per VMM, as on a host, so that acknowledgements overlap */
                for (unsigned v = 0; v < n_vms; v++) {
                        pid_t pid = fork();
                        if (pid < 0)
                                die("fork", -errno);
                        if (pid == 0) {
                                close(pipefd[0]);
                                vmm_before(v, pipefd[1]);
                        }
                }
                close(pipefd[1]);
                read_bytes(pipefd[0], n_vms, "VMMs ready");
                save_u64("rss", (uint64_t) daemon_rss_kib());
                write_kernel(kernel, sizeof(kernel));
                snprintf(req, sizeof(req), "{\"id\":1,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
                {
                        json_object *o = ctl_call(ctl, req);   /* answered once every VMM acknowledged */
                        if (!o || !json_object_object_get_ex(o, "result", NULL))
                                die(o ? json_object_to_json_string(o) : "prepare", -EINVAL);
                        json_object_put(o);
                }
                save_u64("t_freeze", now_us());
                if (send(ctl, "{\"id\":2,\"method\":\"commit\"}", strlen("{\"id\":2,\"method\":\"commit\"}"), MSG_NOSIGNAL) < 0)
                        die("commit", -errno);
                for (;;)
                        pause();   /* the kexec ends this boot */
        }
        {
                uint64_t tb, te = 0, *done, cpu0, cpu_bench, cpu_vms = 0, faults_vms = 0;
                json_object *o;
                long rss;
                uint64_t cpu_daemon_ns;
                int lfd = listen_vmm(), fin[2];

                /* per VM: when it was restored, then (at n_vms + v) the CPU time its process used
                 * and (at 2 * n_vms + v) its minor page faults */
                done = mmap(NULL, 3 * n_vms * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (done == MAP_FAILED)
                        die("mmap", -errno);
                /* Each VMM says "r" on @fin once its VM is restored; they are reaped only after the
                 * measurement, since the floor's processes are not reaped inside theirs either. */
                if (pipe2(fin, O_CLOEXEC) < 0)
                        die("pipe", -errno);
                /* The restarted VMMs exist before the daemon (like VMs started by their own units) and
                 * connect as soon as it is started; the socket queues them until it accepts. */
                for (unsigned v = 0; v < n_vms; v++) {
                        pid_t pid = fork();
                        if (pid < 0)
                                die("fork", -errno);
                        if (pid == 0) {
                                close(pipefd[1]);
                                close(fin[0]);
                                vmm_after(v, pipefd[0], fin[1], done);
                        }
                }
                close(pipefd[0]);
                close(fin[1]);   /* EOF on fin[0] before n "r"s: a VMM failed */
                tb = now_us();
                cpu0 = usage_self().cpu_us;
                save_u64("t_restore", tb);
                close(pipefd[1]);   /* go */
                start_daemon(lfd);
                ctl = connect_sock(ctl_sock);
                read_bytes(fin[0], n_vms, "a VMM failed");
                cpu_bench = usage_self().cpu_us - cpu0;
                for (unsigned v = 0; v < n_vms; v++) {
                        te = done[v] > te ? done[v] : te;
                        cpu_vms += done[n_vms + v];
                        faults_vms += done[2 * n_vms + v];
                }
                /* The daemon finished the last session before answering the last "restored". */
                for (;;) {
                        o = ctl_call(ctl, "{\"id\":3,\"method\":\"status\"}");
                        if (o && strcmp(json_object_get_string(json_object_object_get(
                                        json_object_object_get(o, "result"), "state")) ?: "", "idle") == 0)
                                break;
                        json_object_put(o);
                        usleep(200);
                }
                json_object_put(o);
                rss = daemon_rss_kib();
                cpu_daemon_ns = daemon_cpu_ns();
                for (unsigned v = 0; v < n_vms; v++) {   /* the VMMs, not the daemon */
                        int st;
                        pid_t pid = waitpid(-1, &st, 0);
                        if (pid == daemon_pid || pid == notify_sink_pid)
                                die("the daemon or the fd store stand-in exited", -EIO);
                        if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                                die("a VMM failed", -EIO);
                }
                /* the daemon's own view: commit -> registry write (incl. VMM acks), and its restore */
                o = ctl_call(ctl, "{\"id\":4,\"method\":\"timeline\"}");
                {
                        json_object *t = json_object_object_get(json_object_object_get(o, "result"), "timeline");
                        json_object *f = json_object_object_get(t, "freeze_ms"), *x = json_object_object_get(t, "restore_ms");
                        /* the whole timeline, for finding where the time goes */
                        if (getenv("LU_BENCH_TIMELINE"))
                                fprintf(stderr, "%s\n", json_object_to_json_string_ext(t, JSON_C_TO_STRING_PRETTY));
                        printf("BENCH mode=daemon abi=%s vms=%u fds=%u freeze_ms=%.2f restore_ms=%.2f rss_kib=%ld rss_after_kib=%ld "
                               "daemon_freeze_ms=%.2f daemon_restore_ms=%.2f to_reboot_call_ms=%.2f "
                               "cpu_custodian_ms=%.2f cpu_vmms_ms=%.2f vmm_faults=%.1f cpu_bench_ms=%.2f\n",
                               json_object_get_string(json_object_object_get(t, "abi")) ?: "?", n_vms, n_fds,
                               (double) (load_u64("t_boot") - load_u64("t_freeze")) / 1000.0,
                               (double) (te - tb) / 1000.0, (long) load_u64("rss"), rss,
                               f ? json_object_get_double(f) : -1.0, x ? json_object_get_double(x) : -1.0,
                               to_reboot_call_ms(), (double) cpu_daemon_ns / 1e6, (double) cpu_vms / 1000.0,
                               (double) faults_vms / n_vms, (double) cpu_bench / 1000.0);
                }
                json_object_put(o);
                kill(daemon_pid, SIGTERM);
                waitpid(daemon_pid, NULL, 0);
                if (notify_sink_pid > 0) {
                        kill(notify_sink_pid, SIGKILL);
                        waitpid(notify_sink_pid, NULL, 0);
                }
        }
}

int main(int argc, char **argv) {
        const char *b = getenv("LUO_EMU_BOOT");
        struct rlimit rl;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 5 || !b || !(dir = getenv("E2E_DIR"))) {
                fprintf(stderr, "usage (under luo-emu, E2E_DIR set): e2e-bench daemon|bare|floor N_VMS FDS_PER_VM LU_VFIOD\n");
                return 2;
        }
        boot = atoi(b);
        self_argv = argv;
        if (boot == 1 && !getenv("E2E_BENCH_T0"))
                save_u64("t_boot", now_us());
        mode = argv[1];
        n_vms = (unsigned) atoi(argv[2]);
        n_fds = (unsigned) atoi(argv[3]);
        daemon_bin = argv[4];
        if (n_vms < 1 || n_vms > 1024 || n_fds < 1 || n_fds > 253)
                return 2;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        snprintf(vmm_sock, sizeof(vmm_sock), "%s/vmm.sock", dir);
        snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", dir);
        snprintf(tfile, sizeof(tfile), "%s/t", dir);
        if (boot == 0) {
                char cmd[700], p[400];
                FILE *f;
                snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
                if (system(cmd) != 0)
                        die("mkdir", -EIO);
                snprintf(p, sizeof(p), "%s/bench.conf", dir);
                f = fopen(p, "we");
                if (!f)
                        die("conf", -errno);
                fputs("[Limits]\nMaxConnections=4096\nMaxConnectionsPerUser=4096\n"
                      "[Update]\nCheckCommandLine=no\n", f);
                fclose(f);
        }
        if (strcmp(mode, "bare") == 0 || strcmp(mode, "floor") == 0)
                bare(strcmp(mode, "floor") == 0);
        else
                daemon_mode();
        return 0;
}
