/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo_open()'s distinct results, one boot per run (spec §1.2, §3.4 step 1):
 *   open ok    -> the ABI named in argv[1], a second opener gets -EBUSY, and after
 *                 luo_free() the device can be opened again;
 *   enoent     -> LUO is off on this command line: the node is absent, -ENOENT;
 *   eio        -> the incoming state could not be deserialised: -EIO, every time.
 * Usage: conf-lib-open upstream|v4 ok|enoent|eio
 */
#include "lib-conf.h"

int main(int argc, char **argv) {
        const char *mode = argc > 2 ? argv[2] : "ok";
        Luo *l = NULL, *l2 = (Luo *) 1;
        int r;

        conf_init(argc, argv);

        if (strcmp(mode, "enoent") == 0) {
                char *cmdline = NULL;

                CHECK_NERRNO(kernel_cmdline_read(&cmdline), 0, "kernel_cmdline_read()");
                harness_check(cmdline && !kernel_cmdline_has_flag(cmdline, "liveupdate"),
                              "liveupdate is not enabled on \"%s\"", cmdline ?: "");
                free(cmdline);
                CHECK_NERRNO(luo_open(NULL, &l), ENOENT, "luo_open() without LUO -> -ENOENT");
                harness_check(l == NULL, "no handle");
                return harness_done();
        }

        if (strcmp(mode, "eio") == 0) {
                CHECK_NERRNO(luo_open(NULL, &l), EIO, "luo_open() with broken incoming state -> -EIO");
                harness_check(l == NULL, "no handle");
                CHECK_NERRNO(luo_open(NULL, &l), EIO, "and again: the failure is sticky");
                return harness_done();
        }

        r = luo_open(NULL, &l);
        CHECK_NERRNO(r, 0, "luo_open()");
        if (r < 0)
                return harness_done();
        harness_check(luo_get_abi(l) == conf_abi, "ABI %s detected (%s)", luo_abi_to_string(conf_abi),
                      luo_abi_to_string(luo_get_abi(l)));
        CHECK_NERRNO(luo_open(NULL, &l2), EBUSY, "a second luo_open() -> -EBUSY");
        harness_check(l2 == NULL, "no second handle");
        l = luo_free(l);
        CHECK_NERRNO(luo_open(NULL, &l), 0, "after luo_free() the device opens again");
        l = luo_free(l);
        return harness_done();
}
