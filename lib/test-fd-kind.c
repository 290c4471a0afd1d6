/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for lib/fd-kind.c on the kinds of fd a normal process can make: memfds
 * (plain, sealed, hugetlb), O_TMPFILE shmem files, regular files linked and unlinked,
 * pipes, sockets, eventfds, /dev/null, directories, O_PATH fds and closed fds. VFIO/iommufd/LUO
 * kinds need the emulator and are covered by tests/conformance/lib.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-kind.h"
#include "macro.h"
#include "test-helpers.h"

static void expect_kind(int fd, FdKind kind, const char *what) {
        FdInfo info = { .kind = 12345, .has_pci = true };
        int r;

        r = fd_classify(fd, &info);
        if (r < 0) {
                fprintf(stderr, "fd_classify(%s) failed: %s\n", what, strerror(-r));
                test_failures++;
                return;
        }
        if (info.kind != kind) {
                fprintf(stderr, "fd_classify(%s) = %s, expected %s\n", what,
                        fd_kind_to_string(info.kind) ?: "?", fd_kind_to_string(kind));
                test_failures++;
        }
        if (info.has_pci || info.vfio_name[0]) {
                fprintf(stderr, "fd_classify(%s) claims a PCI device\n", what);
                test_failures++;
        }
}

static void test_memfd(void) {
        _cleanup_close_ int fd = -EBADF, sealed = -EBADF, huge = -EBADF, high = -EBADF;

        fd = memfd_create("test-memfd", MFD_CLOEXEC);
        TEST_ASSERT(fd >= 0);
        expect_kind(fd, FD_KIND_MEMFD, "empty memfd");
        TEST_ASSERT(ftruncate(fd, 1 << 20) == 0);
        expect_kind(fd, FD_KIND_MEMFD, "sized memfd");

        /* A memfd moved far up the table is still itself. */
        high = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
        TEST_ASSERT(high >= 1000);
        expect_kind(high, FD_KIND_MEMFD, "memfd dup'ed to fd >= 1000");

        sealed = memfd_create("test-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        TEST_ASSERT(sealed >= 0);
        TEST_ASSERT(fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
        expect_kind(sealed, FD_KIND_MEMFD, "sealed memfd");

        /* MFD_HUGETLB needs hugetlbfs support; creation works even with no pages reserved. */
        huge = memfd_create("test-huge", MFD_CLOEXEC | MFD_HUGETLB);
        if (huge >= 0)
                expect_kind(huge, FD_KIND_MEMFD_HUGETLB, "hugetlb memfd");
        else
                printf("# hugetlb memfd not available (%s), skipped\n", strerror(errno));
}

static void test_shmem_files(void) {
        char path[] = "/dev/shm/test-fd-kind-XXXXXX";
        _cleanup_close_ int tmp = -EBADF, linked = -EBADF;

        /* An O_TMPFILE on tmpfs is exactly what the kernel's memfd handler accepts. */
        tmp = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (tmp >= 0)
                expect_kind(tmp, FD_KIND_MEMFD, "O_TMPFILE on /dev/shm");
        else
                printf("# O_TMPFILE on /dev/shm not available (%s), skipped\n", strerror(errno));

        linked = mkostemp(path, O_CLOEXEC);
        if (linked < 0) {
                printf("# /dev/shm not writable (%s), skipped\n", strerror(errno));
                return;
        }
        /* While it has a name it is an ordinary file; once unlinked, LUO would take it. */
        expect_kind(linked, FD_KIND_OTHER, "linked tmpfs file");
        TEST_ASSERT(unlink(path) == 0);
        expect_kind(linked, FD_KIND_MEMFD, "unlinked tmpfs file");
}

static void test_regular_files(void) {
        char path[] = "/var/tmp/test-fd-kind-XXXXXX";
        _cleanup_close_ int fd = -EBADF, dir = -EBADF, null = -EBADF;

        fd = mkostemp(path, O_CLOEXEC);
        TEST_ASSERT(fd >= 0);
        if (fd >= 0) {
                expect_kind(fd, FD_KIND_OTHER, "regular file");
                TEST_ASSERT(unlink(path) == 0);
                /* Unlinked, but not shmem: still nothing LUO preserves (unless /var/tmp is tmpfs). */
                FdInfo info;
                TEST_ERRNO(fd_classify(fd, &info), 0);
                TEST_ASSERT(info.kind == FD_KIND_OTHER || info.kind == FD_KIND_MEMFD);
        }

        dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        TEST_ASSERT(dir >= 0);
        expect_kind(dir, FD_KIND_OTHER, "directory");

        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        TEST_ASSERT(null >= 0);
        expect_kind(null, FD_KIND_OTHER, "/dev/null");

        /* O_PATH names a file without opening it: whatever it names, it is an o-path fd. */
        {
                _cleanup_close_ int p = -EBADF, pm = -EBADF, m = -EBADF;
                char link[64];

                p = open("/dev/null", O_PATH | O_CLOEXEC);
                TEST_ASSERT(p >= 0);
                expect_kind(p, FD_KIND_O_PATH, "O_PATH /dev/null");
                m = memfd_create("test-opath", MFD_CLOEXEC);
                TEST_ASSERT(m >= 0);
                snprintf(link, sizeof(link), "/proc/self/fd/%d", m);
                pm = open(link, O_PATH | O_CLOEXEC);
                TEST_ASSERT(pm >= 0);
                expect_kind(pm, FD_KIND_O_PATH, "O_PATH of a memfd");
        }
}

static void test_pipes_sockets(void) {
        int p[2] = { -EBADF, -EBADF }, s[2] = { -EBADF, -EBADF };
        _cleanup_close_ int efd = -EBADF, inet = -EBADF;

        TEST_ASSERT(pipe2(p, O_CLOEXEC) == 0);
        expect_kind(p[0], FD_KIND_OTHER, "pipe read end");
        expect_kind(p[1], FD_KIND_OTHER, "pipe write end");

        TEST_ASSERT(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s) == 0);
        expect_kind(s[0], FD_KIND_OTHER, "unix socket");

        inet = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (inet >= 0)
                expect_kind(inet, FD_KIND_OTHER, "udp socket");

        efd = eventfd(0, EFD_CLOEXEC);
        TEST_ASSERT(efd >= 0);
        expect_kind(efd, FD_KIND_OTHER, "eventfd");

        safe_close(p[0]);
        safe_close(p[1]);
        safe_close(s[0]);
        safe_close(s[1]);
}

static void test_bad_fds(void) {
        FdInfo info = { .kind = FD_KIND_IOMMUFD };
        int fd;

        TEST_ERRNO(fd_classify(-1, &info), EBADF);
        TEST_ERRNO(fd_classify(-EBADF, &info), EBADF);
        TEST_ERRNO(fd_classify(0, NULL), EINVAL);

        fd = memfd_create("test-closed", MFD_CLOEXEC);
        TEST_ASSERT(fd >= 0);
        TEST_ASSERT(close(fd) == 0);
        TEST_ERRNO(fd_classify(fd, &info), EBADF);
        TEST_ERRNO(fd_classify(1 << 20, &info), EBADF);
        /* Failures leave the output untouched. */
        TEST_ASSERT(info.kind == FD_KIND_IOMMUFD);
}

static void test_strings(void) {
        for (int i = 0; i < _FD_KIND_MAX; i++) {
                const char *s = fd_kind_to_string((FdKind) i);
                TEST_ASSERT(s != NULL);
                for (int j = 0; s && j < i; j++)
                        TEST_ASSERT(strcmp(s, fd_kind_to_string((FdKind) j)) != 0);
        }
        TEST_STREQ(fd_kind_to_string(FD_KIND_MEMFD), "memfd");
        TEST_STREQ(fd_kind_to_string(FD_KIND_VFIO_CDEV), "vfio-cdev");
        TEST_STREQ(fd_kind_to_string(FD_KIND_O_PATH), "o-path");
        TEST_ASSERT(fd_kind_to_string(_FD_KIND_MAX) == NULL);
        TEST_ASSERT(fd_kind_to_string((FdKind) -1) == NULL);

        TEST_ASSERT(fd_kind_is_vfio_device(FD_KIND_VFIO_CDEV));
        TEST_ASSERT(fd_kind_is_vfio_device(FD_KIND_VFIO_RETRIEVED));
        TEST_ASSERT(fd_kind_is_vfio_device(FD_KIND_VFIO_GROUP_DEVICE));
        TEST_ASSERT(!fd_kind_is_vfio_device(FD_KIND_VFIO_GROUP));
        TEST_ASSERT(!fd_kind_is_vfio_device(FD_KIND_IOMMUFD));
        TEST_ASSERT(!fd_kind_is_vfio_device(FD_KIND_MEMFD));
        TEST_ASSERT(!fd_kind_is_vfio_device(FD_KIND_OTHER));
}

int main(void) {
        test_memfd();
        test_shmem_files();
        test_regular_files();
        test_pipes_sockets();
        test_bad_fds();
        test_strings();
        return test_result("test-fd-kind");
}
