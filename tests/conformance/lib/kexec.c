/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kexec through lib/kexec.h, on the ABI named in argv[1], two boots: load, unload,
 * kexec_loaded, the refused reboot without an image, ENOEXEC/ENOENT, an initrd, and the
 * command line reaching the next boot (with the NUL counted, flags parsed the kernel's way).
 */
#include "lib-conf.h"

static void boot0(void) {
        char kernel[PATH_MAX], bad[PATH_MAX], initrd[PATH_MAX], next[4096];
        char *cmdline = NULL;
        Luo *l;

        l = conf_open();
        CHECK_NERRNO(kernel_cmdline_read(&cmdline), 0, "kernel_cmdline_read()");
        if (!cmdline)
                conf_bail("no command line");
        harness_check(kernel_cmdline_has_flag(cmdline, "liveupdate") && kernel_cmdline_has_flag(cmdline, "kho"),
                      "the emulated command line enables liveupdate and kho: \"%s\"", cmdline);
        harness_check(!kernel_cmdline_has_flag(cmdline, "lib_conf_marker"), "no marker on boot 0");

        CHECK_NERRNO(kexec_is_loaded(), 0, "kexec_is_loaded() -> 0 on a fresh boot");
        CHECK_NERRNO(kexec_unload_kernel(), 0, "kexec_unload_kernel() with nothing loaded -> 0");
        harness_carry();
        CHECK_NERRNO(kexec_reboot(), EINVAL, "kexec_reboot() with nothing loaded -> -EINVAL");

        conf_write_image(true, kernel, sizeof(kernel));
        conf_write_image(false, bad, sizeof(bad));
        CHECK_NERRNO(kexec_load_kernel(bad, NULL, cmdline), ENOEXEC, "a file that is not a kernel -> -ENOEXEC");
        CHECK_NERRNO(kexec_load_kernel("/nonexistent/bzImage", NULL, cmdline), ENOENT, "a missing kernel -> -ENOENT");
        CHECK_NERRNO(kexec_load_kernel(kernel, "/nonexistent/initrd", cmdline), ENOENT, "a missing initrd -> -ENOENT");

        CHECK_NERRNO(kexec_load_kernel(kernel, NULL, NULL), 0, "load with no initrd and no command line");
        harness_check(kexec_is_loaded() == 1, "kexec_is_loaded() -> 1");
        CHECK_NERRNO(kexec_unload_kernel(), 0, "kexec_unload_kernel()");
        CHECK_NERRNO(kexec_is_loaded(), 0, "kexec_is_loaded() -> 0 after unload");
        harness_carry();
        CHECK_NERRNO(kexec_reboot(), EINVAL, "kexec_reboot() after unload -> -EINVAL");

        /* Any readable file does as an initrd for the emulator; the real kernel checks nothing either. */
        conf_path(initrd, sizeof(initrd), "initrd");
        {
                int fd = open(initrd, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, "initrd", 6) != 6 || close(fd) < 0)
                        conf_bail("initrd");
        }
        snprintf(next, sizeof(next), "%s lib_conf_marker=1 liveupdate=off liveupdate liveupdate=on", cmdline);
        CHECK_NERRNO(kexec_load_kernel(kernel, initrd, next), 0, "load with an initrd and a new command line");
        harness_check(kexec_is_loaded() == 1, "kexec_is_loaded() -> 1");
        free(cmdline);

        harness_carry();
        (void) kexec_reboot();
        conf_bail("kexec_reboot() with a loaded image returned");
        (void) l;
}

static void boot1(void) {
        char *cmdline = NULL;

        CHECK_NERRNO(kernel_cmdline_read(&cmdline), 0, "boot 1: kernel_cmdline_read()");
        harness_check(cmdline && kernel_cmdline_has_flag(cmdline, "lib_conf_marker"),
                      "the command line given to kexec_load_kernel() is the new boot's: \"%s\"", cmdline ?: "");
        harness_check(cmdline && kernel_cmdline_has_flag(cmdline, "liveupdate"),
                      "liveupdate=off liveupdate liveupdate=on: the last valid one wins");
        {
                LuoState st;
                Luo *l = NULL;
                /* The emulated kernel read the same flags the same way: LUO is on. */
                CHECK_NERRNO(luo_open(NULL, &l), 0, "LUO is enabled on the new boot");
                if (l && luo_get_abi(l) == LUO_ABI_V4)
                        CHECK_NERRNO(luo_get_state(l, &st), 0, "v4: global state readable");
                luo_free(l);
        }
        harness_check(cmdline && strlen(cmdline) >= 14 &&
                      strcmp(cmdline + strlen(cmdline) - 14, " liveupdate=on") == 0,
                      "it ends exactly where it ended when it was loaded (length with the NUL)");
        CHECK_NERRNO(kexec_is_loaded(), 0, "nothing is loaded after the kexec");
        harness_carry();
        CHECK_NERRNO(kexec_reboot(), EINVAL, "kexec_reboot() -> -EINVAL again");
        free(cmdline);
}

int main(int argc, char **argv) {
        conf_init(argc, argv);
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
