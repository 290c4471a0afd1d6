/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo-emu smoke test for fault injection and LUO enablement across three boots:
 * an injected PRESERVE failure, a sticky injected RETRIEVE_FD failure, an injected
 * freeze failure that keeps the machine running, and a kexec into a command line
 * without liveupdate=on (no /dev/liveupdate, everything preserved is lost).
 * Run as: luo-emu --fail=preserve:ENOMEM:1 --fail=retrieve-fd:ENODEV:1
 *                 --fail=freeze:EAGAIN:1 -- test-emu-fail
 * and, for failures scoped to a boot and to the Nth call, as:
 *         luo-emu --fail=create-session:ENOMEM:1:2@0 --fail=open:EIO:1@1 -- test-emu-fail scoped
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "linux/liveupdate.h"
#include "test-emu-util.h"

_noreturn_ static void kexec_into(const char *cmdline) {
        int k = emu_test_kernel_image();

        CHECK_ERRNO(emu_test_kexec_load(k, cmdline), 0, "kexec_file_load(\"%s\")", cmdline);
        harness_carry();
        emu_test_reboot_kexec();
        printf("Bail out! reboot(KEXEC) returned: %m\n");
        exit(1);
}

/* --fail=create-session:ENOMEM:1:2@0 --fail=open:EIO:1@1 */
static int scoped(void) {
        int luo, s;

        switch (harness_boot()) {
        case 0:
                luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
                CHECK_ERRNO(luo, 0, "open in boot 0 is not hit by a failure scoped to boot 1");
                CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "s0"), 0, "first CREATE_SESSION skipped");
                CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "s1"), 0, "second CREATE_SESSION skipped");
                CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "s2"), ENOMEM, "third CREATE_SESSION fails");
                s = emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "s3");
                CHECK_ERRNO(s, 0, "fourth succeeds: one failure only");
                CHECK_ERRNO(emu_preserve(s, memfd_create("k", MFD_CLOEXEC), 1), 0, "preserve into it");
                kexec_into("root=/dev/vda liveupdate=on kho=on");
        case 1:
                CHECK_ERRNO(open("/dev/liveupdate", O_RDWR | O_CLOEXEC), EIO, "open after the kexec fails (scoped to boot 1)");
                luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
                CHECK_ERRNO(luo, 0, "second open succeeds");
                s = emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "s3");
                CHECK_ERRNO(s, 0, "the session came across");
                CHECK_ERRNO(emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "n0"), 0,
                            "CREATE_SESSION in boot 1 is not hit by a failure scoped to boot 0");
                return harness_done();
        default:
                printf("Bail out! not run under luo-emu (LUO_EMU_BOOT unset)\n");
                return 1;
        }
}

int main(int argc, char **argv) {
        int luo, s, m;

        harness_init();
        if (argc > 1 && strcmp(argv[1], "scoped") == 0)
                return scoped();
        switch (harness_boot()) {
        case 0:
                luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
                s = emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "fail");
                m = memfd_create("m", MFD_CLOEXEC);
                CHECK_ERRNO(emu_preserve(s, m, 1), ENOMEM, "injected PRESERVE failure");
                CHECK_ERRNO(emu_preserve(s, m, 1), 0, "the injection was for one call only");
                CHECK_ERRNO(emu_preserve(s, memfd_create("n", MFD_CLOEXEC), 2), 0, "preserve a second memfd");
                m = emu_test_kernel_image();
                CHECK_ERRNO(emu_test_kexec_load(m, "root=/dev/vda liveupdate=on kho=on"), 0, "kexec_file_load");
                CHECK_ERRNO(emu_test_reboot_kexec(), EAGAIN, "injected freeze failure is reboot()'s result");
                kexec_into("root=/dev/vda liveupdate=on kho=on");
        case 1:
                luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
                s = emu_session_op(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "fail");
                CHECK_ERRNO(s, 0, "retrieve session");
                CHECK_ERRNO(emu_retrieve(s, 1), ENODEV, "injected RETRIEVE_FD failure");
                CHECK_ERRNO(emu_retrieve(s, 1), ENODEV, "the failure is sticky");
                CHECK_ERRNO(emu_retrieve(s, 2), 0, "another token retrieves");
                /* Keep the session open: it stays pinned and is dropped at the next kexec. */
                s = emu_session_op(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "lost");
                CHECK_ERRNO(emu_preserve(s, memfd_create("o", MFD_CLOEXEC), 1), 0, "preserve for a boot without LUO");
                kexec_into("root=/dev/vda kho=on");
        case 2:
                CHECK_ERRNO(open("/dev/liveupdate", O_RDWR | O_CLOEXEC), ENOENT,
                            "no liveupdate=on: no /dev/liveupdate");
                return harness_done();
        default:
                printf("Bail out! not run under luo-emu (LUO_EMU_BOOT unset)\n");
                return 1;
        }
}
