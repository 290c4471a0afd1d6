/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The reboot trigger (spec §1.1): kexec_file_load() and reboot(LINUX_REBOOT_CMD_KEXEC),
 * upstream ABI, two boots. reboot() without a loaded image -> EINVAL and the machine
 * keeps running with its sessions; a non-kernel -> ENOEXEC; KEXEC_FILE_UNLOAD then
 * reboot -> EINVAL; a loaded image + reboot -> the next boot, where nothing is loaded.
 * A third boot with a command line lacking liveupdate=on has no LUO (open -> ENOENT).
 *
 * Kernel reading (kernel/kexec_core.c kernel_kexec()): the "no image" check (EINVAL)
 * comes before liveupdate_reboot(), so a refused reboot freezes nothing.
 */
#include "luo-raw.h"

#define NO_LUO_CMDLINE "console=ttyS0 kho=on"

static void boot0(void) {
        int dev, s, m;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");
        s = raw_create(dev, "kx");
        m = raw_memfd("kx-1", "kexec");
        if (s < 0 || raw_preserve(s, m, 1) < 0)
                raw_bail("session kx");

        CHECK_ERRNO(raw_reboot(), EINVAL, "reboot(KEXEC) with no kernel loaded -> EINVAL");
        harness_check(true, "the machine keeps running after the refused reboot");
        CHECK_ERRNO(ftruncate(m, 1), EPERM, "the memfd is still preserved (size frozen)");
        close(m);
        m = raw_memfd("kx-2", "second");
        CHECK_ERRNO(raw_preserve(s, m, 2), 0, "the session still accepts files");
        CHECK_ERRNO(raw_preserve(s, m, 1), EEXIST, "and still holds token 1");
        close(m);

        CHECK_ERRNO(raw_kexec_load(false), ENOEXEC, "kexec_file_load of a file that is not a kernel -> ENOEXEC");
        CHECK_ERRNO(raw_reboot(), EINVAL, "reboot(KEXEC) after the failed load -> EINVAL");

        CHECK_ERRNO(raw_kexec_load(true), 0, "kexec_file_load of an image with the bzImage \"HdrS\" magic");
        CHECK_ERRNO(raw_kexec_unload(), 0, "KEXEC_FILE_UNLOAD");
        CHECK_ERRNO(raw_reboot(), EINVAL, "reboot(KEXEC) after KEXEC_FILE_UNLOAD -> EINVAL");
        CHECK_ERRNO(raw_kexec_unload(), 0, "KEXEC_FILE_UNLOAD with nothing loaded -> 0");
        CHECK_ERRNO(syscall(SYS_kexec_file_load, 999, -1, 1UL, "", (unsigned long) KEXEC_FILE_NO_INITRAMFS), EBADF,
                    "kexec_file_load of a closed fd -> EBADF");

        CHECK_ERRNO(raw_kexec_load(true), 0, "kexec_file_load again");
        raw_note_set("kexec-called", 1);
        (void) raw_reboot();
        raw_bail("reboot(LINUX_REBOOT_CMD_KEXEC) with a loaded kernel returned");
}

static void boot1(void) {
        int dev, s, r;
        const char *b = getenv("LUO_EMU_BOOT");

        harness_check(b && strcmp(b, "1") == 0, "the program runs again with LUO_EMU_BOOT=1");
        harness_check(raw_note_get("kexec-called", 0) == 1, "after the kexec with a loaded kernel");

        dev = raw_open_dev();
        s = raw_retrieve(dev, "kx");
        CHECK_ERRNO(s, 0, "the session survived the refused reboots and the kexec");
        r = s >= 0 ? raw_retrieve_fd(s, 1) : -1;
        harness_check(r >= 0 && raw_memfd_is(r, "kexec"), "token 1 holds its data");
        if (r >= 0)
                close(r);
        r = s >= 0 ? raw_retrieve_fd(s, 2) : -1;
        harness_check(r >= 0 && raw_memfd_is(r, "second"), "token 2, added after a refused reboot, too");
        if (r >= 0)
                close(r);
        CHECK_ERRNO(raw_finish(s), 0, "FINISH kx");

        CHECK_ERRNO(raw_reboot(), EINVAL, "no kernel is loaded after a kexec: reboot(KEXEC) -> EINVAL");

        /* The next kernel gets the command line we pass; without liveupdate=on, no LUO. */
        CHECK_ERRNO(raw_kexec_load_cmdline(true, NO_LUO_CMDLINE), 0, "kexec_file_load with a command line without liveupdate=on");
        (void) raw_reboot();
        raw_bail("reboot(LINUX_REBOOT_CMD_KEXEC) with a loaded kernel returned");
}

static void boot2(void) {
        char buf[1024] = "", want[1024];
        FILE *f = fopen("/proc/cmdline", "re");

        if (f) {
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = 0;
                fclose(f);
        }
        buf[strcspn(buf, "\n")] = 0;
        raw_next_cmdline(want, sizeof(want), NO_LUO_CMDLINE);
        harness_check(strcmp(buf, want) == 0, "/proc/cmdline is the command line given to kexec_file_load (%s)", buf);
        CHECK_ERRNO(raw_open_dev(), ENOENT, "LUO disabled by the command line: open(/dev/liveupdate) -> ENOENT");
}

int main(void) {
        raw_init();
        if (harness_boot() == 0)
                boot0();
        if (harness_boot() == 1)
                boot1();
        boot2();
        return harness_done();
}
