/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-systemd: a STAND-IN (docs/reliability.md §6) for the parts of systemd's service
 * manager a Type=notify service with an fd store sees, for the tests that run without the
 * realstack machine's real systemd 252 (tests/realstack): the randomized soak (about a thousand
 * daemon kills per run, in the sanitizer build too) and, as the fd store of systemd >= 261
 * that carries fds through the kexec, ops-kexec-systemd:
 *
 *   fake-systemd --log=FILE [--watchdog-usec=N] [--fdstore-max=N] [--max-restarts=N]
 *                [--fdstore-preserve] -- CMD...
 *
 * Gives CMD a $NOTIFY_SOCKET, logs every notification line ("MSG READY=1", "MSG STATUS=…",
 * "MSG WATCHDOG=1"), keeps FDSTORE=1 fds by FDNAME (FDSTOREREMOVE=1 drops them), and when
 * CMD dies of a signal or exits non-zero (Restart=on-failure) starts it again with the
 * stored fds as LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID. A missed watchdog is logged and
 * answered with SIGABRT, as systemd does. SIGTERM/SIGINT are forwarded; the exit status
 * is CMD's last one (128+signal when killed). Log lines are flushed as written.
 * --fdstore-preserve is FileDescriptorStorePreserve=yes: when CMD has ended for good, the
 * stored fds stay open ("PRESERVE stored=N") until fake-systemd itself gets SIGTERM.
 * BARRIER=1 (sd_notify_barrier()) closes its fd once every earlier notification is handled.
 * $FAKE_SYSTEMD_REMOVE_DELAY_MS=N (tests only): handle each FDSTOREREMOVE=1 N ms late, as a
 * busy systemd may; the later notifications wait behind it, in order, as in systemd.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STORE_MAX 8192
#define FDS_PER_MSG 253

typedef struct Stored {
        int fd;
        char name[256];
} Stored;

static Stored store[STORE_MAX];
static size_t n_store;
static FILE *log_file;
static unsigned long long arg_watchdog_usec;
static size_t arg_fdstore_max = 1024;
static int arg_max_restarts = 3;
static bool arg_fdstore_preserve = false;
static char notify_path[108];
static unsigned arg_remove_delay_ms;

static void logln(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logln(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(log_file, fmt, ap);
        va_end(ap);
        fputc('\n', log_file);
        fflush(log_file);
}

static unsigned long long now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000;
}

static void store_remove(const char *name) {
        size_t j = 0, dropped = 0;
        for (size_t i = 0; i < n_store; i++) {
                if (strcmp(store[i].name, name) == 0) {
                        close(store[i].fd);
                        dropped++;
                } else
                        store[j++] = store[i];
        }
        n_store = j;
        logln("FDSTOREREMOVE name=%s dropped=%zu total=%zu", name, dropped, n_store);
}

static bool handle_message(int sock) {
        char buf[4096], cbuf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
        struct iovec iov = { buf, sizeof(buf) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        int fds[FDS_PER_MSG];
        size_t n_fds = 0;
        bool fdstore = false, remove = false, barrier = false;
        char fdname[256] = "stored";
        ssize_t n;

        bool watchdog = false;

        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return false;
        buf[n] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(fds + n_fds, CMSG_DATA(c), k * sizeof(int));
                        n_fds += k;
                }
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                logln("MSG %s", line);
                if (strcmp(line, "FDSTORE=1") == 0)
                        fdstore = true;
                else if (strcmp(line, "FDSTOREREMOVE=1") == 0)
                        remove = true;
                else if (strcmp(line, "BARRIER=1") == 0)
                        barrier = true;
                else if (strcmp(line, "WATCHDOG=1") == 0)
                        watchdog = true;
                else if (strncmp(line, "FDNAME=", 7) == 0)
                        snprintf(fdname, sizeof(fdname), "%s", line + 7);
        }
        if (remove) {
                /* A busy service manager: the stored fd stays open a while after the request. */
                if (arg_remove_delay_ms)
                        usleep(arg_remove_delay_ms * 1000);
                store_remove(fdname);
        }
        /* sd_notify_barrier(): everything before is handled; closing its fd says so */
        if (barrier && !fdstore) {
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                logln("BARRIER fds=%zu", n_fds);
                n_fds = 0;
        }
        for (size_t i = 0; i < n_fds; i++) {
                if (!fdstore || n_store >= arg_fdstore_max) {
                        logln("FDREFUSED name=%s", fdname);
                        close(fds[i]);
                        continue;
                }
                store[n_store].fd = fds[i];
                snprintf(store[n_store].name, sizeof(store[n_store].name), "%s", fdname);
                n_store++;
                logln("FDSTORE name=%s total=%zu", fdname, n_store);
        }
        return watchdog;
}

static pid_t start(char **argv, int generation) {
        pid_t pid = fork();

        if (pid < 0) {
                logln("FORK-FAILED %s", strerror(errno));
                exit(1);
        }
        if (pid > 0) {
                logln("START generation=%d pid=%d listen_fds=%zu", generation, (int) pid, n_store);
                return pid;
        }
        /* Child: stored fds become 3, 4, ... (via high copies so no slot is overwritten early). */
        {
                int high[STORE_MAX];
                char *names = calloc(n_store + 1, 256), env[64];
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                for (size_t i = 0; i < n_store; i++) {
                        high[i] = fcntl(store[i].fd, F_DUPFD_CLOEXEC, (int) (3 + n_store + 16));
                        if (high[i] < 0)
                                _exit(126);
                }
                for (size_t i = 0; i < n_store; i++) {
                        if (dup2(high[i], (int) (3 + i)) < 0)
                                _exit(126);
                        if (i)
                                strcat(names, ":");
                        strcat(names, store[i].name);
                }
                /* Everything else (notify socket, stored originals, high copies) is O_CLOEXEC. */
                if (n_store > 0) {
                        snprintf(env, sizeof(env), "%zu", n_store);
                        setenv("LISTEN_FDS", env, 1);
                        snprintf(env, sizeof(env), "%d", (int) getpid());
                        setenv("LISTEN_PID", env, 1);
                        setenv("LISTEN_FDNAMES", names, 1);
                } else {
                        unsetenv("LISTEN_FDS");
                        unsetenv("LISTEN_PID");
                        unsetenv("LISTEN_FDNAMES");
                }
                setenv("NOTIFY_SOCKET", notify_path, 1);
                if (arg_watchdog_usec) {
                        snprintf(env, sizeof(env), "%llu", arg_watchdog_usec);
                        setenv("WATCHDOG_USEC", env, 1);
                        snprintf(env, sizeof(env), "%d", (int) getpid());
                        setenv("WATCHDOG_PID", env, 1);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
}

int main(int argc, char **argv) {
        const char *log_path = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/fake-systemd-XXXXXX";
        sigset_t mask;
        int sock, sfd, argi, generation = 0, restarts = 0, status = 0;
        bool stopping = false, preserving = false;
        unsigned long long last_ping;
        pid_t child;

        for (argi = 1; argi < argc && strcmp(argv[argi], "--") != 0; argi++) {
                if (strncmp(argv[argi], "--log=", 6) == 0)
                        log_path = argv[argi] + 6;
                else if (strncmp(argv[argi], "--watchdog-usec=", 16) == 0)
                        arg_watchdog_usec = strtoull(argv[argi] + 16, NULL, 10);
                else if (strncmp(argv[argi], "--fdstore-max=", 14) == 0)
                        arg_fdstore_max = strtoul(argv[argi] + 14, NULL, 10);
                else if (strncmp(argv[argi], "--max-restarts=", 15) == 0)
                        arg_max_restarts = atoi(argv[argi] + 15);
                else if (strcmp(argv[argi], "--fdstore-preserve") == 0)
                        arg_fdstore_preserve = true;
                else {
                        fprintf(stderr, "fake-systemd: unknown option %s\n", argv[argi]);
                        return 2;
                }
        }
        if (argi + 1 >= argc || !log_path) {
                fprintf(stderr, "usage: fake-systemd --log=FILE [--watchdog-usec=N] [--fdstore-max=N] [--max-restarts=N] "
                        "[--fdstore-preserve] -- CMD...\n");
                return 2;
        }
        arg_remove_delay_ms = (unsigned) strtoul(getenv("FAKE_SYSTEMD_REMOVE_DELAY_MS") ?: "0", NULL, 10);
        if (arg_fdstore_max > STORE_MAX)
                arg_fdstore_max = STORE_MAX;
        log_file = fopen(log_path, "ae");
        if (!log_file || !mkdtemp(dir)) {
                perror("fake-systemd");
                return 1;
        }
        snprintf(notify_path, sizeof(notify_path), "%s/notify", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify_path);
        sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0 || bind(sock, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                perror("fake-systemd: notify socket");
                return 1;
        }
        {
                int one = 1, size = 8 << 20;
                (void) setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
                (void) setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);

        child = start(argv + argi + 1, generation);
        last_ping = now_usec();
        for (;;) {
                struct pollfd p[2] = { { sock, POLLIN, 0 }, { sfd, POLLIN, 0 } };
                int timeout = arg_watchdog_usec ? 50 : -1;

                if (poll(p, 2, timeout) < 0 && errno != EINTR)
                        break;
                if (p[0].revents & POLLIN) {
                        /* Drain before looking at the child: its last words come before its death. */
                        while (true) {
                                struct pollfd q = { sock, POLLIN, 0 };
                                if (poll(&q, 1, 0) <= 0)
                                        break;
                                char peek[16];
                                if (recv(sock, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT) < 0)
                                        break;
                                if (handle_message(sock))
                                        last_ping = now_usec();
                        }
                }
                if (arg_watchdog_usec && child > 0 && now_usec() - last_ping > arg_watchdog_usec) {
                        logln("WATCHDOG-TIMEOUT pid=%d", (int) child);
                        kill(child, SIGABRT);
                        last_ping = now_usec();
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) != sizeof(si))
                                continue;
                        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                                logln("STOP signal=%u", si.ssi_signo);
                                arg_max_restarts = 0;
                                stopping = true;
                                if (child > 0)
                                        kill(child, SIGTERM);
                                else if (preserving)
                                        break;   /* the preserved store goes with us */
                                continue;
                        }
                        for (;;) {
                                int st;
                                pid_t w = waitpid(-1, &st, WNOHANG);
                                if (w <= 0)
                                        break;
                                if (w != child)
                                        continue;
                                /* Pick up notifications sent right before the end. */
                                while (recv(sock, (char[1]) {}, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
                                        (void) handle_message(sock);
                                if (WIFSIGNALED(st)) {
                                        status = 128 + WTERMSIG(st);
                                        logln("KILLED pid=%d signal=%d", (int) w, WTERMSIG(st));
                                } else {
                                        status = WEXITSTATUS(st);
                                        logln("EXITED pid=%d status=%d", (int) w, status);
                                }
                                child = -1;
                                if (status != 0 && restarts < arg_max_restarts) {
                                        restarts++;
                                        generation++;
                                        child = start(argv + argi + 1, generation);
                                        last_ping = now_usec();
                                }
                        }
                        if (child < 0 && arg_fdstore_preserve && !stopping && n_store > 0) {
                                if (!preserving)
                                        logln("PRESERVE stored=%zu", n_store);
                                preserving = true;
                                continue;
                        }
                        if (child < 0) {
                                logln("END status=%d stored=%zu", status, n_store);
                                unlink(notify_path);
                                rmdir(dir);
                                return status;
                        }
                }
        }
        if (preserving) {
                logln("END status=%d stored=%zu", status, n_store);
                unlink(notify_path);
                rmdir(dir);
                return status;
        }
        return 1;
}
