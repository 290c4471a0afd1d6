/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PRESERVE_FD rules (spec §1.6, §1.7, §1.8, §1.9), upstream ABI, over two boots:
 * which files are accepted, token uniqueness per session, the 128-file limit, one
 * file in two sessions, the caller closing its copy, and closing a session before
 * the reboot unpreserving its files.
 *
 * Order of checks in the kernel (luo_file.c luo_preserve_file()): token in use ->
 * EEXIST, session full -> ENOSPC, fget -> EBADF, no handler -> ENOENT; so every check
 * below has exactly one thing wrong.
 */
#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/magic.h>

#include "luo-raw.h"

static void check_kinds(int s) {
        char path[PATH_MAX];
        int fd, p[2];

        CHECK_ERRNO(raw_preserve(s, 9999, 100), EBADF, "PRESERVE_FD of a closed fd number -> EBADF");
        CHECK_ERRNO(raw_preserve(s, -1, 100), EBADF, "PRESERVE_FD of fd -1 -> EBADF");

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(raw_preserve(s, fd, 100), ENOENT, "PRESERVE_FD of /dev/null -> ENOENT");
        close(fd);

        if (pipe2(p, O_CLOEXEC) < 0)
                raw_bail("pipe");
        CHECK_ERRNO(raw_preserve(s, p[0], 100), ENOENT, "PRESERVE_FD of a pipe -> ENOENT");
        close(p[0]);
        close(p[1]);

        raw_notes_path(path, sizeof(path), "regular");
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, "x", 1) != 1)
                raw_bail("regular file");
        CHECK_ERRNO(raw_preserve(s, fd, 100), ENOENT, "PRESERVE_FD of a regular file -> ENOENT");
        close(fd);
        unlink(path);

        CHECK_ERRNO(raw_preserve(s, s, 100), ENOENT, "PRESERVE_FD of a session fd -> ENOENT");

        /* MFD_HUGETLB memfds are not shmem: no handler. Creation needs hugetlbfs support. */
        fd = memfd_create("p-huge", MFD_CLOEXEC | MFD_HUGETLB);
        if (fd >= 0) {
                CHECK_ERRNO(raw_preserve(s, fd, 100), ENOENT, "PRESERVE_FD of an MFD_HUGETLB memfd -> ENOENT");
                close(fd);
        } else
                harness_skip("MFD_HUGETLB memfd_create failed on this host");
}

/*
 * The memfd handler accepts any shmem file with no link (spec §1.9): a linked tmpfs
 * file is refused, the same file once unlinked is accepted. Needs a tmpfs /dev/shm.
 */
static void check_tmpfs(int s) {
        struct statfs sf;
        char path[] = "/dev/shm/luo-conf-XXXXXX";
        int fd;

        if (statfs("/dev/shm", &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
                harness_skip("no tmpfs on /dev/shm");
                return;
        }
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                raw_bail("mkostemp %s", path);
        CHECK_ERRNO(raw_preserve(s, fd, 200), ENOENT, "PRESERVE_FD of a linked tmpfs file -> ENOENT");
        unlink(path);
        CHECK_ERRNO(raw_preserve(s, fd, 200), 0, "the same tmpfs file once unlinked (i_nlink 0) is accepted");
        raw_note_set("tmpfs", 1);
        close(fd);
}

/* 128 files per session with 4 KiB pages (spec §1.8), ENOSPC for the 129th. */
static void check_full(int dev) {
        int s = raw_create(dev, "p-full"), ok = 0, m;

        if (s < 0)
                raw_bail("create p-full");
        for (int i = 0; i < 128; i++) {
                m = raw_memfd("p-full", "f");
                if (raw_preserve(s, m, 1000 + i) == 0)
                        ok++;
                close(m);
        }
        harness_check(ok == 128, "128 memfds can be preserved in one session (got %d)", ok);
        m = raw_memfd("p-full", "f");
        if (harness_kernel_7_2()) {
                /* spec §8.4: 7.2 removed the per-session file limit */
                CHECK_ERRNO(raw_preserve(s, m, 2000), 0, "7.2: the 129th file is preserved (no per-session limit)");
                close(m);
                ok = 0;
                for (int i = 0; i < 71; i++) {
                        m = raw_memfd("p-full", "f");
                        if (raw_preserve(s, m, 3000 + i) == 0)
                                ok++;
                        close(m);
                }
                harness_check(ok == 71, "7.2: ... and 200 in all (got %d more)", ok);
                m = raw_memfd("p-full", "f");
                CHECK_ERRNO(raw_preserve(s, m, 1000), EEXIST, "a used token -> EEXIST");
        } else {
                CHECK_ERRNO(raw_preserve(s, m, 2000), ENOSPC, "the 129th file -> ENOSPC");
                CHECK_ERRNO(raw_preserve(s, m, 1000), EEXIST, "a used token in a full session -> EEXIST (checked first)");
        }
        close(m);
        close(s);   /* unpreserves all 128; p-full must not exist after the reboot */
}

/*
 * A session lives as long as any process holds its fd (spec §1.7), like the selftests'
 * child that keeps the session fds over the kexec. p-kept is held only by a child
 * when the reboot happens; p-lost's only holder exits before it.
 */
static bool can_truncate(void *fd) {
        return ftruncate(*(int *) fd, 1) == 0;
}

static void check_holders(int dev) {
        int kept = raw_create(dev, "p-kept"), lost = raw_create(dev, "p-lost"), m, status;
        pid_t keeper, quitter;

        m = raw_memfd("p-kept", "kept");
        if (kept < 0 || lost < 0 || raw_preserve(kept, m, 1) < 0)
                raw_bail("p-kept/p-lost");
        close(m);
        m = raw_memfd("p-lost", "lost");
        CHECK_ERRNO(raw_preserve(lost, m, 1), 0, "preserve into p-lost");

        keeper = fork();
        if (keeper < 0)
                raw_bail("fork");
        if (keeper == 0) {
                close(lost);
                pause();
                _exit(0);
        }
        quitter = fork();
        if (quitter < 0)
                raw_bail("fork");
        if (quitter == 0) {
                close(kept);
                _exit(0);
        }
        close(kept);
        close(lost);
        if (waitpid(quitter, &status, 0) != quitter)
                raw_bail("waitpid");
        /* p-lost is gone now (the kernel closes an exiting task's files before it can be reaped). */
        if (!can_truncate(&m)) {
                harness_todo(RAW_ASYNC_TODO);
                harness_check(false, "the last holder of p-lost exited: its memfd is unpreserved when waitpid() returns");
                harness_check(raw_eventually(can_truncate, &m), "... and a moment later");
        } else
                harness_check(true, "the last holder of p-lost exited: its memfd is unpreserved when waitpid() returns");
        CHECK_ERRNO(raw_create(dev, "p-kept"), EEXIST, "p-kept lives on in the child");
        close(m);
}

static void boot0(void) {
        int dev, one, two, closed, m1, m2, m3, other;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");
        one = raw_create(dev, "p-one");
        two = raw_create(dev, "p-two");
        if (one < 0 || two < 0)
                raw_bail("create sessions");

        m1 = raw_memfd("p-m1", "one");
        m2 = raw_memfd("p-m2", "two");
        CHECK_ERRNO(raw_preserve(one, m1, 1), 0, "PRESERVE_FD of a memfd");
        CHECK_ERRNO(raw_preserve(one, m2, 1), EEXIST, "another memfd under the same token -> EEXIST");
        CHECK_ERRNO(raw_preserve(two, m2, 1), 0, "the same token in another session is fine");
        CHECK_ERRNO(raw_preserve(two, m1, 7), EBUSY, "a memfd already preserved in another session -> EBUSY");

        check_kinds(one);
        check_tmpfs(two);
        check_full(dev);
        other = raw_memfd("p-other", "other");
        CHECK_ERRNO(raw_preserve(one, other, 2), 0, "a full session elsewhere does not limit this one");
        close(other);

        /* LUO holds its own reference: the caller may close its copies. */
        CHECK_ERRNO(close(m1), 0, "close the caller's copy of a preserved memfd");
        close(m2);

        /* Closing a session before the reboot unpreserves its files. */
        closed = raw_create(dev, "p-closed");
        m3 = raw_memfd("p-m3", "three");
        CHECK_ERRNO(raw_preserve(closed, m3, 3), 0, "preserve a memfd in p-closed");
        CHECK_ERRNO(raw_preserve(two, m3, 33), EBUSY, "while p-closed holds it, another session gets EBUSY");
        CHECK_ERRNO(ftruncate(m3, 4096), EPERM, "while preserved, its size is frozen (EPERM)");
        CHECK_ERRNO(close(closed), 0, "close p-closed before the reboot");
        CHECK_ERRNO(ftruncate(m3, 4096), 0, "after the close the memfd is unpreserved: ftruncate works again");
        if (ftruncate(m3, 5) < 0)
                raw_bail("ftruncate back");
        CHECK_ERRNO(raw_preserve(two, m3, 33), 0, "... and it can be preserved in another session");
        close(m3);

        check_holders(dev);
        raw_note_set("boot0-done", 1);
        raw_kexec_or_bail();
}

static void expect_file(int s, uint64_t token, const char *text, const char *what) {
        int fd = raw_retrieve_fd(s, token);

        CHECK_ERRNO(fd, 0, "RETRIEVE_FD %s", what);
        harness_check(fd >= 0 && raw_memfd_is(fd, text), "%s holds \"%s\"", what, text);
        if (fd >= 0)
                close(fd);
}

static void boot1(void) {
        int dev, one, two;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        one = raw_retrieve(dev, "p-one");
        CHECK_ERRNO(one, 0, "RETRIEVE_SESSION p-one");
        two = raw_retrieve(dev, "p-two");
        CHECK_ERRNO(two, 0, "RETRIEVE_SESSION p-two");
        if (one < 0 || two < 0)
                raw_bail("sessions missing");

        expect_file(one, 1, "one", "p-one token 1 (caller closed its copy)");
        expect_file(one, 2, "other", "p-one token 2");
        expect_file(two, 33, "three", "p-two token 33 (re-preserved after p-closed was closed; retrieved out of order)");
        expect_file(two, 1, "two", "p-two token 1");
        if (raw_note_get("tmpfs", 0))
                expect_file(two, 200, "", "p-two token 200 (the unlinked tmpfs file)");
        CHECK_ERRNO(raw_retrieve_fd(one, 7), ENOENT, "the rejected preserves left no token behind");
        CHECK_ERRNO(raw_retrieve_fd(two, 7), ENOENT, "... in either session");

        CHECK_ERRNO(raw_retrieve(dev, "p-closed"), ENOENT, "a session closed before the reboot -> ENOENT after it");
        CHECK_ERRNO(raw_retrieve(dev, "p-full"), ENOENT, "p-full (closed) -> ENOENT");

        {
                int kept = raw_retrieve(dev, "p-kept");
                CHECK_ERRNO(kept, 0, "p-kept, held only by a child at the reboot, was handed over");
                if (kept >= 0)
                        expect_file(kept, 1, "kept", "p-kept token 1");
                CHECK_ERRNO(raw_retrieve(dev, "p-lost"), ENOENT, "p-lost, whose holders all exited, -> ENOENT");
        }

        CHECK_ERRNO(raw_finish(one), 0, "FINISH p-one");
        CHECK_ERRNO(raw_finish(two), 0, "FINISH p-two");
}

int main(void) {
        raw_init();
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
