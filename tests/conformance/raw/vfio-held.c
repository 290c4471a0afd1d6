/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A retrieved session whose implicit FINISH fails on close (spec §1.6, §1.7), upstream
 * ABI, one VFIO device (luo-emu --vfio=1), three boots.
 *
 * Boot 1 retrieves the device but never binds it, then closes the session: the close
 * itself succeeds, the implicit FINISH fails (the VFIO can_finish is false), so the
 * session and its device stay held: RETRIEVE_SESSION -> EINVAL (upstream; the linux-mm
 * refcount variant would re-allow it) and the cdev stays EBUSY. The next kexec drops
 * the held session: on boot 2 it is gone and the device is free again.
 *
 * Kernel reading (luo_session.c luo_session_release()): on a failed finish the release
 * returns early, leaving the session in the incoming list with retrieved = true.
 */
#include "luo-raw.h"

static void boot0(void) {
        int dev, s, d0;

        d0 = raw_vfio_open(0);
        if (d0 < 0)
                raw_bail("no VFIO device (run with --vfio=1)");
        (void) raw_vfio_setup(d0, -1);
        dev = raw_open_dev();
        s = raw_create(dev, "held");
        if (dev < 0 || s < 0)
                raw_bail("session held");
        CHECK_ERRNO(raw_preserve(s, d0, 1), 0, "PRESERVE_FD of a bound VFIO cdev");
        raw_kexec_or_bail();
}

static void boot1(void) {
        int dev, s, r;

        dev = raw_open_dev();
        s = raw_retrieve(dev, "held");
        CHECK_ERRNO(s, 0, "RETRIEVE_SESSION held");
        if (s < 0)
                raw_bail("no session");
        r = raw_retrieve_fd(s, 1);
        CHECK_ERRNO(r, 0, "RETRIEVE_FD of the device (left unbound)");
        CHECK_ERRNO(raw_finish(s), EBUSY, "FINISH with the device unbound -> EBUSY");
        CHECK_ERRNO(close(s), 0, "close of the session succeeds although its implicit FINISH cannot");
        CHECK_ERRNO(raw_retrieve(dev, "held"), EINVAL, "the session is held: RETRIEVE_SESSION -> EINVAL");
        CHECK_ERRNO(raw_vfio_open(0), EBUSY, "the device is held: open of its cdev -> EBUSY");
        if (r >= 0)
                close(r);
        CHECK_ERRNO(raw_retrieve(dev, "held"), EINVAL, "still held after the device fd is closed");
        raw_kexec_or_bail();
}

static void boot2(void) {
        int dev, d0;

        dev = raw_open_dev();
        CHECK_ERRNO(raw_retrieve(dev, "held"), ENOENT, "the held session is dropped by the next kexec");
        d0 = raw_vfio_open(0);
        CHECK_ERRNO(d0, 0, "the device is free again: open of its cdev works");
        if (d0 >= 0) {
                int iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
                CHECK_ERRNO(raw_vfio_bind(d0, iommufd, NULL), 0, "and it can be bound");
        }
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
