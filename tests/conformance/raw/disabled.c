/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A kernel booted without liveupdate=on (spec §1.1): LUO stays disabled and does not
 * register its misc device at all, so /dev/liveupdate does not exist and open() fails
 * with ENOENT. Run as `luo-emu --cmdline="<no liveupdate=on>" -- disabled`. One boot.
 */
#include "luo-raw.h"

int main(void) {
        char buf[512] = "";
        FILE *f;

        raw_init();
        f = fopen("/proc/cmdline", "re");
        if (!f || !fgets(buf, sizeof(buf), f))
                raw_bail("read /proc/cmdline");
        fclose(f);
        harness_check(!strstr(buf, "liveupdate=on"), "this boot's command line lacks liveupdate=on (%.*s)",
                      (int) strcspn(buf, "\n"), buf);
        CHECK_ERRNO(access(LUO_DEV, F_OK), ENOENT, "no /dev/liveupdate node");
        CHECK_ERRNO(raw_open_dev(), ENOENT, "open(/dev/liveupdate) -> ENOENT");
        return harness_done();
}
