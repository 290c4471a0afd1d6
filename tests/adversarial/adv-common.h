/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Raw-protocol helpers for drivers that run as luo-emu's COMMAND (pid 1): spawn and reap,
 * SOCK_SEQPACKET messages with SCM_RIGHTS, replies, the control socket, the daemon's
 * settled fd count, values kept across the kexec, the clean exit. Shared by the drivers of
 * tests/adversarial (adv-driver.c, crash-driver.c), tests/faults and tests/e2e;
 * header-only so that a driver needs no extra link step (a driver need not use every helper).
 *
 * The including file sets adv_name (scenario) and adv_boot before using say()/CHECK(), and
 * may set adv_prefix (the log line tag), adv_show_progress and daemon_extra_arg.
 */
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ELEMS(x) (sizeof(x) / sizeof((x)[0]))

/* Each driver uses a different subset of these helpers (not popped: helpers may be added at the end). */
#pragma GCC diagnostic ignored "-Wunused-function"

static const char *adv_name = "?", *adv_prefix = "adv";
static int adv_boot;
static bool adv_show_progress;         /* log the detail of progress events skipped by recv_reply() */
static const char *daemon_extra_arg;   /* one more argument for the daemon, or NULL */
static int failures;
static pid_t daemon_pid = -1;
static pid_t daemon_fds_pid = -1;      /* whose fds count_open_fds() counts, if not daemon_pid's (a wrapper) */
/* Leave out sd-event's timerfds: one per clock, made at the first timer and kept for good. */
static bool fds_skip_timerfd;
static char vmm_sock[256], ctl_sock[256], state_dir[256], conf_path[256];
static const char *daemon_bin, *work_dir;

static void say(const char *fmt, ...) {
        va_list ap;
        printf("%s[%s boot %d]: ", adv_prefix, adv_name, adv_boot);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

#define CHECK(cond, ...) do { if (cond) say("ok: " __VA_ARGS__); else { say("FAIL: " __VA_ARGS__); failures++; } } while (0)

static void bail(const char *fmt, ...) {
        va_list ap;
        printf("%s[%s boot %d]: BAIL: ", adv_prefix, adv_name, adv_boot);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        if (daemon_pid > 0)
                kill(daemon_pid, SIGTERM);
        exit(1);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static pid_t spawn(char *const argv[]) {
        pid_t pid = fork();
        if (pid < 0)
                bail("fork: %m");
        if (pid == 0) {
                execv(argv[0], argv);
                fprintf(stderr, "exec %s: %m\n", argv[0]);
                _exit(127);
        }
        return pid;
}

/* As pid 1 we reap everything; statuses of children nobody asked about yet are kept here. */
static struct { pid_t pid; int status; } reaped[1024];
static size_t n_reaped;

/* Wait for @pid up to @timeout seconds; reaps other children meanwhile. Exit status, -1 on timeout. */
static int wait_pid(pid_t pid, double timeout) {
        double end = now_s() + timeout;
        for (;;) {
                int st;
                pid_t p;

                for (size_t i = 0; i < n_reaped; i++)
                        if (reaped[i].pid == pid) {
                                st = reaped[i].status;
                                reaped[i] = reaped[--n_reaped];
                                return st;
                        }
                p = waitpid(-1, &st, WNOHANG);
                if (p > 0) {
                        st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                        if (p == pid)
                                return st;
                        if (n_reaped < ELEMS(reaped))
                                reaped[n_reaped++] = (typeof(reaped[0])) { p, st };
                        continue;
                }
                if (now_s() > end)
                        return -1;
                usleep(2000);
        }
}

static int connect_sock(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        int fd;

        if (len >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, len + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* One datagram; up to 253 (SCM_MAX_FD) fds. */
static int send_fds_flags(int fd, const char *msg, size_t len, const int *fds, size_t n_fds, int flags) {
        static char cbuf[CMSG_SPACE(sizeof(int) * 253)];
        struct iovec iov = { .iov_base = (void *) msg, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds > 253)
                return -EINVAL;
        if (n_fds > 0) {
                struct cmsghdr *cm;
                memset(cbuf, 0, sizeof(cbuf));
                mh.msg_control = cbuf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        return sendmsg(fd, &mh, MSG_NOSIGNAL | flags) < 0 ? -errno : 0;
}

static int send_fds(int fd, const char *msg, size_t len, const int *fds, size_t n_fds) {
        return send_fds_flags(fd, msg, len, fds, n_fds, 0);
}

static int send_str(int fd, const char *msg) {
        return send_fds(fd, msg, strlen(msg), NULL, 0);
}

/* Next message within @timeout seconds, events included; NULL on timeout/EOF/unparsable. Fds closed. */
static json_object *recv_any(int fd, double timeout) {
        static char buf[128 * 1024];
        char cbuf[CMSG_SPACE(sizeof(int) * 16)];
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, (int) (timeout * 1000)) <= 0)
                return NULL;
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return NULL;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_type == SCM_RIGHTS)
                        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                                int x;
                                memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                                close(x);
                        }
        buf[n] = 0;
        return json_tokener_parse(buf);
}

/*
 * Next non-event message (a reply), within @timeout seconds; NULL on timeout/EOF. Its fds
 * (up to 16) go to @ret_fds (*ret_n of them; @ret_fds NULL: closed).
 */
static json_object *recv_reply_fds(int fd, double timeout, int *ret_fds, size_t *ret_n) {
        double end = now_s() + timeout;
        static char buf[128 * 1024];

        if (ret_n)
                *ret_n = 0;
        for (;;) {
                char cbuf[CMSG_SPACE(sizeof(int) * 16)];
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int left = (int) ((end - now_s()) * 1000), rfds[16];
                size_t n_rfds = 0;
                json_object *o;
                ssize_t n;

                if (left <= 0 || poll(&p, 1, left) <= 0)
                        return NULL;
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n <= 0)
                        return NULL;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_type == SCM_RIGHTS)
                                for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int) && n_rfds < 16; i++)
                                        memcpy(&rfds[n_rfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                buf[n] = 0;
                o = json_tokener_parse(buf);
                if (o && json_object_object_get_ex(o, "event", NULL)) {
                        json_object *d = json_object_object_get(o, "detail");
                        if (d && adv_show_progress)
                                say("  progress: %s", json_object_get_string(d));
                        json_object_put(o);
                        o = NULL;
                }
                if (!o) {
                        for (size_t i = 0; i < n_rfds; i++)
                                close(rfds[i]);
                        continue;
                }
                for (size_t i = 0; i < n_rfds; i++)
                        if (ret_fds)
                                ret_fds[i] = rfds[i];
                        else
                                close(rfds[i]);
                if (ret_n)
                        *ret_n = ret_fds ? n_rfds : 0;
                return o;
        }
}

/* The same, for at most one fd: *ret_fd gets the first (-1 if none); extra ones are closed. */
static json_object *recv_reply(int fd, double timeout, int *ret_fd) {
        int fds[16];
        size_t n = 0;
        json_object *o = recv_reply_fds(fd, timeout, fds, &n);

        for (size_t i = ret_fd ? 1 : 0; i < n; i++)
                close(fds[i]);
        if (ret_fd)
                *ret_fd = n > 0 ? fds[0] : -1;
        return o;
}

static const char *err_code(json_object *reply) {
        json_object *e, *c;
        if (reply && json_object_object_get_ex(reply, "error", &e) && json_object_object_get_ex(e, "code", &c))
                return json_object_get_string(c);
        return NULL;
}

static json_object *result_of(json_object *reply) {
        return reply ? json_object_object_get(reply, "result") : NULL;
}

static json_object *request(int fd, const char *json, const int *fds, size_t n_fds, double timeout) {
        if (send_fds(fd, json, strlen(json), fds, n_fds) < 0)
                return NULL;
        return recv_reply(fd, timeout, NULL);
}

/* Send @msg (@len 0: strlen) with @fds, expect error @code. */
static void expect_error(int fd, const char *msg, size_t len, const int *fds, size_t n_fds, const char *code, const char *what) {
        json_object *r;

        if (len == 0)
                len = strlen(msg);
        if (send_fds(fd, msg, len, fds, n_fds) < 0) {
                CHECK(false, "%s: send failed: %m", what);
                return;
        }
        r = recv_reply(fd, 5, NULL);
        CHECK(err_code(r) && strcmp(err_code(r), code) == 0, "%s -> %s (%s)", what, code,
              r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
}

static void expect_result(int fd, const char *msg, size_t len, const int *fds, size_t n_fds, const char *what) {
        json_object *r;

        if (len == 0)
                len = strlen(msg);
        if (send_fds(fd, msg, len, fds, n_fds) < 0) {
                CHECK(false, "%s: send failed: %m", what);
                return;
        }
        r = recv_reply(fd, 5, NULL);
        CHECK(result_of(r) != NULL, "%s -> result (%s)", what, r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
}

static int ctl_fd = -1;

static json_object *ctl(const char *json, double timeout) {
        if (ctl_fd < 0) {
                ctl_fd = connect_sock(ctl_sock);
                if (ctl_fd < 0)
                        bail("cannot connect to the control socket: %s", strerror(-ctl_fd));
        }
        return request(ctl_fd, json, NULL, 0, timeout);
}

static const char *status_state(void) {
        static char state[32];
        json_object *r = ctl("{\"id\":1,\"method\":\"status\"}", 5), *s;
        snprintf(state, sizeof(state), "%s",
                 r && json_object_object_get_ex(result_of(r), "state", &s) ? json_object_get_string(s) : "?");
        json_object_put(r);
        return state;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                bail("write %s: %m", path);
}

/* Until the daemon answers on its control socket; bail at @end (now_s() clock), naming @who. */
static void wait_ctl_socket(double end, const char *who) {
        for (;;) {
                int fd = connect_sock(ctl_sock);
                if (fd >= 0) {
                        close(fd);
                        return;
                }
                if (now_s() > end)
                        bail("%s did not come up", who);
                usleep(5000);
        }
}

static void start_daemon(void) {
        char a1[400], a2[400], a3[400], a4[400];
        char *argv[] = { (char *) daemon_bin, a1, a2, a3, a4, (char *) daemon_extra_arg, NULL };
        double end = now_s() + 10;

        snprintf(a1, sizeof(a1), "--vmm-socket=%s", vmm_sock);
        snprintf(a2, sizeof(a2), "--control-socket=%s", ctl_sock);
        snprintf(a3, sizeof(a3), "--state-dir=%s", state_dir);
        snprintf(a4, sizeof(a4), "--config=%s", conf_path);
        daemon_pid = spawn(argv);
        wait_ctl_socket(end, "daemon");
        if (ctl_fd >= 0)
                close(ctl_fd);
        ctl_fd = -1;
}

static int vmm_conn(const char *vm) {
        char hello[200];
        json_object *r;
        int fd = connect_sock(vmm_sock);

        if (fd < 0)
                bail("connect: %s", strerror(-fd));
        snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
        r = request(fd, hello, NULL, 0, 5);
        if (!result_of(r))
                bail("hello %s: %s", vm, r ? json_object_to_json_string(r) : "none");
        json_object_put(r);
        return fd;
}

static int count_open_fds(void) {
        pid_t pid = daemon_fds_pid > 0 ? daemon_fds_pid : daemon_pid;
        char path[64];
        int n = 0;
        for (int i = 0; i < 4096; i++) {
                char target[512];
                ssize_t l;
                snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) pid, i);
                l = readlink(path, target, sizeof(target) - 1);
                if (l < 0)
                        continue;
                target[l] = 0;
                /* nor the registry mirror while it is rewritten (a temporary file, then an fsync of the directory) */
                if (state_dir[0] && strncmp(target, state_dir, strlen(state_dir)) == 0)
                        continue;
                n += !(fds_skip_timerfd && strcmp(target, "anon_inode:[timerfd]") == 0);
        }
        return n;
}

/* The daemon's fd count once it stops changing (closed connections are released asynchronously). */
static int count_open_fds_settled(void) {
        int prev = count_open_fds(), same = 0;
        for (int i = 0; i < 150 && same < 2; i++) {
                usleep(20000);
                int n = count_open_fds();
                same = n == prev ? same + 1 : 0;
                prev = n;
        }
        return prev;
}

/* Log what the daemon's fds are, for a failed count. */
static void say_open_fds(void) {
        pid_t pid = daemon_fds_pid > 0 ? daemon_fds_pid : daemon_pid;
        char path[64], target[256];
        for (int i = 0; i < 4096; i++) {
                ssize_t n;
                snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) pid, i);
                n = readlink(path, target, sizeof(target) - 1);
                if (n < 0)
                        continue;
                target[n] = 0;
                say("  daemon fd %d -> %s", i, target);
        }
}

/* The daemon's settled fd count must be @want; returns whether it is. */
static bool expect_fds(int want, const char *what) {
        int n = count_open_fds_settled();
        /* a loaded machine may be slow to release a connection: only a lasting difference counts */
        for (double end = now_s() + 5; n != want && now_s() < end;)
                n = count_open_fds_settled();
        CHECK(n == want, "%s: daemon holds %d fds (expected %d)", what, n, want);
        if (n != want)
                say_open_fds();
        return n == want;
}

static void write_kernel(char *path, size_t size) {
        static char image[4096];
        memcpy(image + 0x202, "HdrS", 4);   /* the bzImage magic the kexec loader checks */
        snprintf(path, size, "%s/vmlinuz-next", work_dir);
        write_text(path, "");
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, image, sizeof(image)) != (ssize_t) sizeof(image))
                bail("write kernel: %m");
        close(fd);
}

/* Small integers that must survive the emulated kexec: files in the work directory. */
static void save_int(const char *name, int v) {
        char p[400], t[32];
        snprintf(p, sizeof(p), "%s/%s", work_dir, name);
        snprintf(t, sizeof(t), "%d\n", v);
        write_text(p, t);
}

/* -1 if @name was never saved. */
static int load_int(const char *name) {
        char p[400];
        int v = -1;
        FILE *f;
        snprintf(p, sizeof(p), "%s/%s", work_dir, name);
        f = fopen(p, "re");
        if (!f || fscanf(f, "%d", &v) != 1)
                v = -1;
        if (f)
                fclose(f);
        return v;
}

/* End of a driver: a running daemon must exit 0 on SIGTERM (under ASan: LeakSanitizer found no leak). */
static int finish_run(void) {
        if (daemon_pid > 0) {
                int st;
                kill(daemon_pid, SIGTERM);
                st = wait_pid(daemon_pid, 60);   /* the leak check takes a while */
                CHECK(st == 0, "daemon exited cleanly on SIGTERM (status %d)", st);
                daemon_pid = -1;
        }
        say("%s", failures ? "FAILED" : "PASSED");
        return failures ? 1 : 0;
}

/* ---- the daemon under tests/ops/fake-systemd (the fd store), or on its own ---------------- */

static const char *fake_bin;           /* fake-systemd */
static bool use_store;                 /* daemon_start(): under fake_bin, restarted by it with the stored fds */
static int fake_max_restarts = 3;
static char fake_log[400];
static int generation;                 /* of the daemon under fake-systemd, 0 at daemon_start() */

/* The daemon pid fake-systemd logged for @gen, or -1. */
static pid_t logged_pid(int gen) {
        char line[512];
        pid_t pid = -1;
        FILE *f = fopen(fake_log, "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                int g, p;
                if (sscanf(line, "START generation=%d pid=%d", &g, &p) == 2 && g == gen)
                        pid = p;
        }
        fclose(f);
        return pid;
}

/* What fake-systemd holds in its fd store now, after the start of @gen; -1 if unknown. */
static int store_total(int gen) {
        char line[512], start[64];
        int total = -1;
        FILE *f = fopen(fake_log, "re");

        if (!f)
                return -1;
        snprintf(start, sizeof(start), "START generation=%d ", gen);
        while (fgets(line, sizeof(line), f)) {
                const char *t;
                if (strncmp(line, start, strlen(start)) == 0 && (t = strstr(line, "listen_fds=")))
                        total = atoi(t + 11);
                else if (total >= 0 && (t = strstr(line, " total=")))
                        total = atoi(t + 7);
        }
        fclose(f);
        return total;
}

/* Wait until the daemon of @gen listens on the control socket. */
static void wait_daemon_up(int gen) {
        double end = now_s() + 20;
        char who[64];

        if (use_store)
                while ((daemon_fds_pid = logged_pid(gen)) <= 0) {
                        if (now_s() > end)
                                bail("fake-systemd did not start generation %d", gen);
                        usleep(5000);
                }
        snprintf(who, sizeof(who), "daemon (generation %d)", gen);
        wait_ctl_socket(end, who);
        if (ctl_fd >= 0)
                close(ctl_fd);
        ctl_fd = -1;
}

/* Start the daemon: with use_store under fake-systemd (log fake-systemd-<boot>.log), else start_daemon(). */
static void daemon_start(void) {
        char a1[400], a2[400], a3[400], a4[400], alog[450], amax[64];
        char *argv[] = { (char *) fake_bin, alog, amax, (char *) "--",
                         (char *) daemon_bin, a1, a2, a3, a4, (char *) daemon_extra_arg, NULL };

        if (!use_store) {
                start_daemon();
                return;
        }
        snprintf(fake_log, sizeof(fake_log), "%s/fake-systemd-%d.log", work_dir, adv_boot);
        snprintf(alog, sizeof(alog), "--log=%s", fake_log);
        snprintf(amax, sizeof(amax), "--max-restarts=%d", fake_max_restarts);
        snprintf(a1, sizeof(a1), "--vmm-socket=%s", vmm_sock);
        snprintf(a2, sizeof(a2), "--control-socket=%s", ctl_sock);
        snprintf(a3, sizeof(a3), "--state-dir=%s", state_dir);
        snprintf(a4, sizeof(a4), "--config=%s", conf_path);
        generation = 0;
        daemon_pid = spawn(argv);    /* fake-systemd: forwards SIGTERM, exits with the daemon's status */
        wait_daemon_up(0);
}
