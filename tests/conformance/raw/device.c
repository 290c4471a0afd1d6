/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /dev/liveupdate as a device (spec §1.2, §3.4), upstream ABI: exclusive open, what a
 * dup or a close does to it, session fds being O_CLOEXEC and outliving the device fd,
 * and the side-effect-free ABI detection probes answering "session ABI".
 * One boot.
 */
#include <signal.h>
#include <sys/wait.h>

#include "luo-raw.h"

/* Run open(/dev/liveupdate) in a child process; returns its errno (0 = opened). */
static int open_in_child(void) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                raw_bail("fork");
        if (pid == 0) {
                int fd = raw_open_dev();
                _exit(fd >= 0 ? 0 : errno);
        }
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                raw_bail("waitpid");
        return WEXITSTATUS(status);
}

static bool child_can_open(void *unused) {
        return open_in_child() == 0;
}

/* The exclusivity is per device, not per process; an inherited fd shares the open file. */
static void check_processes(void) {
        int a, st;
        pid_t pid;

        a = raw_open_dev();
        if (a < 0)
                raw_bail("open /dev/liveupdate");
        st = open_in_child();
        harness_check(st == EBUSY, "another process's open while we hold it -> EBUSY (%s)", strerror(st));

        /* A child inherits our open file; after we close ours, the child's keeps it busy. */
        pid = fork();
        if (pid < 0)
                raw_bail("fork");
        if (pid == 0) {
                pause();
                _exit(0);
        }
        close(a);
        CHECK_ERRNO(raw_open_dev(), EBUSY, "a child holding the inherited fd keeps the device busy");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        st = open_in_child();
        if (st != 0) {
                harness_todo(RAW_ASYNC_TODO);
                harness_check(false, "once the child is reaped, another process can open it (%s)", strerror(st));
                harness_check(raw_eventually(child_can_open, NULL), "... a moment later");
        } else
                harness_check(true, "once the child is reaped, another process can open it");
}

static void check_exclusive(void) {
        int a, b, d;

        a = raw_open_dev();
        CHECK_ERRNO(a, 0, "first open of /dev/liveupdate");
        if (a < 0)
                raw_bail("cannot open /dev/liveupdate");
        CHECK_ERRNO(raw_open_dev(), EBUSY, "second open while the first is open -> EBUSY");
        CHECK_ERRNO(open(LUO_DEV, O_RDONLY | O_CLOEXEC), EBUSY, "second open O_RDONLY -> EBUSY too");

        close(a);
        b = raw_open_dev();
        CHECK_ERRNO(b, 0, "open works again after the owner closed it");

        /* The in-use flag is cleared on release of the open file, not on close() of one fd. */
        d = dup(b);
        if (d < 0)
                raw_bail("dup");
        close(b);
        CHECK_ERRNO(raw_open_dev(), EBUSY, "a dup kept alive keeps the device busy");
        close(d);
        a = raw_open_dev();
        CHECK_ERRNO(a, 0, "open works after the last dup is closed");
        close(a);
}

static void check_session_fds(void) {
        int dev, s, again, m;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        s = raw_create(dev, "dev-session");
        CHECK_ERRNO(s, 0, "CREATE_SESSION");
        harness_check(s >= 0 && raw_is_cloexec(s), "session fd is O_CLOEXEC");
        {
                char p[64], link[256] = "";
                ssize_t n;

                snprintf(p, sizeof(p), "/proc/self/fd/%d", s);
                n = readlink(p, link, sizeof(link) - 1);
                if (n > 0)
                        link[n] = 0;
                harness_check(strcmp(link, "anon_inode:[luo_session] dev-session") == 0,
                              "session fd links to \"anon_inode:[luo_session] <name>\" (%s)", link);
        }

        /* Closing /dev/liveupdate only clears the in-use flag; the session stays. */
        close(dev);
        m = raw_memfd("dev-m", "x");
        CHECK_ERRNO(raw_preserve(s, m, 1), 0, "session fd still works after /dev/liveupdate was closed");
        close(m);

        dev = raw_open_dev();
        CHECK_ERRNO(dev, 0, "reopen /dev/liveupdate while a session fd is held");
        CHECK_ERRNO(raw_create(dev, "dev-session"), EEXIST, "the session (and its name) is still alive");

        /* Closing the session fd before a reboot makes the session disappear. */
        close(s);
        again = raw_create(dev, "dev-session");
        CHECK_ERRNO(again, 0, "after the session fd is closed its name can be created again");
        close(again);
        close(dev);
}

/*
 * spec §3.4: the probe order a daemon uses must answer "session ABI" here. The
 * upstream dispatcher answers an nr outside its table (0x03 on /dev/liveupdate, 0x43
 * on a session) with EINVAL before even reading the argument, and a short size with
 * EINVAL.
 */
static void check_probes(void) {
        uint8_t buf[72] = {};
        uint32_t u = 0;
        int dev, s;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        CHECK_ERRNO(ioctl(dev, 0x8004BA03, &u), EINVAL, "probe v1 GET_STATE 0x8004BA03 -> EINVAL");

        memset(buf, 0, sizeof(buf));
        *(uint32_t *) buf = 8;
        CHECK_ERRNO(ioctl(dev, 0xBA00, buf), EINVAL, "probe v4 GET_STATE 0xBA00 {size=8} -> EINVAL (size < 72)");

        memset(buf, 0, sizeof(buf));
        *(uint32_t *) buf = 8;
        CHECK_ERRNO(ioctl(dev, 0xBA03, buf), EINVAL, "probe G1 GET_STATE 0xBA03 {size=8} -> EINVAL (nr out of range)");

        /* The probes had no side effect: the device still answers normally. */
        s = raw_create(dev, "dev-probe");
        CHECK_ERRNO(s, 0, "CREATE_SESSION after the probes");

        memset(buf, 0, sizeof(buf));
        *(uint32_t *) buf = 72;
        if (harness_kernel_7_2()) {
                /* spec §8.1: GET_NAME is mainline in 7.2, on sessions of either direction */
                CHECK_ERRNO(ioctl(s, 0xBA43, buf), 0, "7.2: GET_NAME 0xBA43 on an outgoing session");
                harness_check(strcmp((const char *) buf + 8, "dev-probe") == 0, "7.2: ... names it (\"%.64s\")",
                              (const char *) buf + 8);
                memset(buf, 0, sizeof(buf));
                *(uint32_t *) buf = 72;
                ((uint32_t *) buf)[1] = 1;
                CHECK_ERRNO(ioctl(s, 0xBA43, buf), EINVAL, "7.2: GET_NAME with reserved != 0 -> EINVAL");
                memset(buf, 0, sizeof(buf));
                *(uint32_t *) buf = 8;
                CHECK_ERRNO(ioctl(s, 0xBA43, buf), EINVAL, "7.2: GET_NAME with size 8 (< 72) -> EINVAL");
                *(uint32_t *) buf = 72;
        } else
                CHECK_ERRNO(ioctl(s, 0xBA43, buf), EINVAL, "7.1: GET_NAME 0xBA43 on a session -> EINVAL (nr out of range)");
        CHECK_ERRNO(ioctl(s, 0xBA44, buf), EINVAL, "0xBA44 on a session -> EINVAL (nr out of range)");

        close(s);
        close(dev);
}

int main(void) {
        raw_init();
        check_exclusive();
        check_processes();
        check_session_fds();
        check_probes();
        return harness_done();
}
