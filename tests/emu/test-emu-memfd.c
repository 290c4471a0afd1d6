/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo-emu smoke test: a two-boot memfd round trip through the upstream session ABI,
 * with the rules a user can see on the way (exclusive open, token/handler/busy
 * errnos, frozen size, kexec image checks, retrieval semantics, FINISH, close).
 * Run as: luo-emu -- test-emu-memfd
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include "linux/liveupdate.h"
#include "test-emu-util.h"

#define BIG (2u << 20)

static void boot0(void) {
        char link[256], buf[16];
        int luo, luo2, s, m, k, r;

        luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(luo, 0, "open /dev/liveupdate");
        luo2 = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(luo2, EBUSY, "second open is EBUSY");
        CHECK_ERRNO(emu_test_readlink_fd(luo, link, sizeof(link)), 0, "readlink of the device fd");
        harness_check(strcmp(link, "/dev/liveupdate") == 0, "device fd links to /dev/liveupdate (%s)", link);

        s = emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "emu-memfd");
        CHECK_ERRNO(s, 0, "create session");
        CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "emu-memfd"), EEXIST, "duplicate name is EEXIST");
        CHECK_ERRNO(emu_test_readlink_fd(s, link, sizeof(link)), 0, "readlink of the session fd");
        harness_check(strcmp(link, "anon_inode:[luo_session] emu-memfd") == 0, "session link (%s)", link);
        harness_check((fcntl(s, F_GETFD) & FD_CLOEXEC) != 0, "session fd is O_CLOEXEC");

        m = memfd_create("payload", MFD_CLOEXEC);
        CHECK_ERRNO(m, 0, "memfd_create");
        r = (int) write(m, "hello", 5);
        harness_check(r == 5, "write payload");
        r = (int) pwrite(m, "far", 3, BIG - 3);
        harness_check(r == 3, "write sparse tail");
        lseek(m, 3, SEEK_SET);

        CHECK_ERRNO(emu_preserve(s, m, 42), 0, "preserve memfd");
        CHECK_ERRNO(emu_preserve(s, m, 42), EEXIST, "same token is EEXIST");
        CHECK_ERRNO(emu_preserve(s, m, 43), EBUSY, "same file twice is EBUSY");
        k = open("/dev/null", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(emu_preserve(s, k, 44), ENOENT, "/dev/null is ENOENT");
        close(k);
        CHECK_ERRNO(emu_preserve(s, 999, 45), EBADF, "bad fd is EBADF");
        CHECK_ERRNO(ftruncate(m, 10), EPERM, "ftruncate of a preserved memfd is EPERM");
        CHECK_ERRNO(fallocate(m, 0, 0, BIG * 2), EPERM, "fallocate of a preserved memfd is EPERM");
        lseek(m, 5, SEEK_SET);          /* position at freeze time is what crosses */
        close(m);                       /* LUO keeps its own reference */

        CHECK_ERRNO(emu_test_reboot_kexec(), EINVAL, "reboot(KEXEC) without an image is EINVAL");
        k = memfd_create("notakernel", MFD_CLOEXEC);
        r = (int) write(k, "nope", 4);
        (void) r;
        CHECK_ERRNO(emu_test_kexec_load(k, "x"), ENOEXEC, "kexec_file_load of a non-kernel is ENOEXEC");
        close(k);
        k = emu_test_kernel_image();
        CHECK_ERRNO(syscall(SYS_kexec_file_load, k, -1, 3, "abc", 4UL), EINVAL, "unterminated cmdline is EINVAL");
        CHECK_ERRNO(emu_test_kexec_load(k, "root=/dev/vda liveupdate=on kho=on stage=2"), 0, "kexec_file_load");
        k = open("/sys/kernel/kexec_loaded", O_RDONLY | O_CLOEXEC);
        memset(buf, 0, sizeof(buf));
        r = (int) read(k, buf, sizeof(buf) - 1);
        harness_check(r == 2 && buf[0] == '1', "/sys/kernel/kexec_loaded reads 1");
        close(k);

        harness_check(getenv("LUO_EMU_REBOOT_US") == NULL, "no LUO_EMU_REBOOT_US on the first boot");
        harness_carry();
        emu_test_reboot_kexec();
        printf("Bail out! reboot(KEXEC) returned: %m\n");
        exit(1);
}

static void boot1(void) {
        char link[256], buf[64], cmdline[256] = {};
        struct stat st;
        int luo, s, m, m2, k, r;

        k = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
        r = (int) read(k, cmdline, sizeof(cmdline) - 1);
        close(k);
        cmdline[strcspn(cmdline, "\n")] = 0;
        harness_check(r > 0 && strstr(cmdline, "stage=2") != NULL, "new boot has the loaded cmdline (%s)", cmdline);

        {
                const char *e = getenv("LUO_EMU_REBOOT_US");
                struct timespec ts;
                uint64_t t, now;

                clock_gettime(CLOCK_REALTIME, &ts);
                now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
                t = e ? strtoull(e, NULL, 10) : 0;
                harness_check(t > 0 && t <= now && now - t < 60000000, "LUO_EMU_REBOOT_US is the time of the reboot call (%s, %llu us ago)",
                              e ? e : "unset", (unsigned long long) (now - t));
        }
        luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(luo, 0, "open /dev/liveupdate after kexec");
        CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "nope"), ENOENT, "unknown session is ENOENT");
        s = emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "emu-memfd");
        CHECK_ERRNO(s, 0, "retrieve session");
        CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "emu-memfd"), EINVAL, "second retrieve is EINVAL");
        CHECK_ERRNO(emu_retrieve(s, 7), ENOENT, "unknown token is ENOENT");

        m = emu_retrieve(s, 42);
        CHECK_ERRNO(m, 0, "retrieve memfd");
        harness_check((fcntl(m, F_GETFD) & FD_CLOEXEC) != 0, "retrieved fd is O_CLOEXEC");
        r = fstat(m, &st);
        harness_check(r == 0 && st.st_size == BIG, "size preserved (%lld)", (long long) st.st_size);
        harness_check(lseek(m, 0, SEEK_CUR) == 5, "file position preserved");
        memset(buf, 0, sizeof(buf));
        harness_check(pread(m, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0, "contents preserved");
        harness_check(pread(m, buf, 3, BIG - 3) == 3 && memcmp(buf, "far", 3) == 0, "sparse tail preserved");
        CHECK_ERRNO(emu_test_readlink_fd(m, link, sizeof(link)), 0, "readlink retrieved memfd");
        harness_check(strncmp(link, "/memfd:", 7) == 0, "retrieved file is a memfd (%s)", link);
        CHECK_ERRNO(ftruncate(m, 4096), 0, "retrieved memfd is not frozen");
        m2 = emu_retrieve(s, 42);
        CHECK_ERRNO(m2, 0, "second retrieve of the same token");
        lseek(m, 100, SEEK_SET);
        harness_check(m2 != m && lseek(m2, 0, SEEK_CUR) == 100, "same open file description");

        CHECK_ERRNO(emu_finish(s), 0, "FINISH");
        CHECK_ERRNO(emu_finish(s), 0, "repeated FINISH is 0");
        CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "emu-memfd"), EINVAL, "retrieve of an open finished session is EINVAL");
        close(s);
        CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "emu-memfd"), ENOENT, "after close the session is gone");
        close(m);
        close(m2);
        close(luo);
}

int main(void) {
        harness_init();
        if (harness_boot() == 0)
                boot0();
        else if (harness_boot() == 1)
                boot1();
        else {
                printf("Bail out! not run under luo-emu (LUO_EMU_BOOT unset)\n");
                return 1;
        }
        return harness_done();
}
