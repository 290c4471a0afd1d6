/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo-emu smoke test for --abi=v4 (spec §3.3): the detection probes of §3.4, the
 * global and per-session state machines with their EBUSY rules, UNPRESERVE_FD, and
 * a live update of a memfd and an (unbound, RFC-style) VFIO cdev with interrupts
 * left on, which the v4 freeze switches off itself.
 * Run as: luo-emu --abi=v4 --vfio=1 -- test-emu-v4
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "lu/iommufd.h"
#include "lu/liveupdate-v4.h"
#include "lu/vfio-cdev.h"
#include "test-emu-util.h"

static int global_state(int luo) {
        struct luo_v4_get_state a = { .size = sizeof(a) };
        return ioctl(luo, LUO_V4_IOCTL_GET_STATE, &a) < 0 ? -1 : (int) a.state;
}

static int global_event(int luo, uint32_t ev) {
        struct luo_v4_set_event a = { .size = sizeof(a), .event = ev };
        return ioctl(luo, LUO_V4_IOCTL_SET_EVENT, &a);
}

static int session_state(int s, int *incoming) {
        struct luo_v4_session_get_state a = { .size = sizeof(a), .incoming = (uint8_t) *incoming };

        if (ioctl(s, LUO_V4_SESSION_GET_STATE, &a) < 0)
                return -1;
        *incoming = a.incoming;
        return (int) a.state;
}

static int session_event(int s, uint32_t ev) {
        struct luo_v4_session_set_event a = { .size = sizeof(a), .event = ev };
        return ioctl(s, LUO_V4_SESSION_SET_EVENT, &a);
}

static int preserve(int s, int fd, uint64_t token) {
        struct luo_v4_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };
        return ioctl(s, LUO_V4_SESSION_PRESERVE_FD, &a);
}

static int unpreserve(int s, uint64_t token, uint32_t reserved) {
        struct luo_v4_session_unpreserve_fd a = { .size = sizeof(a), .reserved = reserved, .token = token };
        return ioctl(s, LUO_V4_SESSION_UNPRESERVE_FD, &a);
}

static int restore(int s, uint64_t token) {
        struct luo_v4_session_restore_fd a = { .size = sizeof(a), .token = token };
        return ioctl(s, LUO_V4_SESSION_RESTORE_FD, &a) < 0 ? -1 : a.fd;
}

static void boot0(void) {
        struct luo_v4_create_session cs = { .size = sizeof(cs), .name = "emu-v4" };
        uint32_t probe[18] = {};
        int luo, s, m, d, io, inc = 0, k;
        struct vfio_device_bind_iommufd b = { .argsz = sizeof(b) };
        union {
                struct vfio_irq_set hdr;
                uint8_t raw[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
        } irq = { .hdr = { .argsz = sizeof(irq), .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                           .index = VFIO_PCI_MSIX_IRQ_INDEX, .count = 1 } };
        int32_t efd;

        luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(luo, 0, "open /dev/liveupdate");
        CHECK_ERRNO(ioctl(luo, LUO_V1_IOCTL_GET_STATE, probe), ENOTTY, "probe 2 (v1 GET_STATE) is ENOTTY");
        probe[0] = 8;
        CHECK_ERRNO(ioctl(luo, LUO_V4_IOCTL_GET_STATE, probe), 0, "probe 3 (0xBA00 size 8) succeeds");
        harness_check(probe[1] == LUO_V4_STATE_NORMAL, "global state NORMAL");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_FINISH), EINVAL, "global FINISH in NORMAL is EINVAL");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_FREEZE), EOPNOTSUPP, "global FREEZE is EOPNOTSUPP");

        CHECK_ERRNO(ioctl(luo, LUO_V4_IOCTL_CREATE_SESSION, &cs), 0, "create session");
        s = cs.fd;
        harness_check(session_state(s, &inc) == LUO_V4_STATE_NORMAL && inc == 0, "session NORMAL, outgoing");
        m = memfd_create("v4", MFD_CLOEXEC);
        k = (int) write(m, "v4data", 6);
        harness_check(k == 6, "write memfd");
        CHECK_ERRNO(preserve(s, m, 1), 0, "preserve memfd");
        CHECK_ERRNO(unpreserve(s, 1, 1), EOPNOTSUPP, "UNPRESERVE with reserved set is EOPNOTSUPP");
        CHECK_ERRNO(unpreserve(s, 1, 0), 0, "UNPRESERVE");
        CHECK_ERRNO(unpreserve(s, 1, 0), ENOENT, "UNPRESERVE of an unknown token is ENOENT");
        CHECK_ERRNO(ftruncate(m, 100), 0, "an unpreserved memfd can be resized");
        CHECK_ERRNO(ftruncate(m, 6), 0, "and back");
        CHECK_ERRNO(preserve(s, m, 1), 0, "preserve memfd again");

        d = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
        io = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        b.iommufd = io;
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, &b), 0, "bind vfio0");
        efd = eventfd(0, EFD_CLOEXEC);
        memcpy(irq.raw + sizeof(irq.hdr), &efd, sizeof(efd));
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_SET_IRQS, &irq), 0, "enable MSI-X");
        CHECK_ERRNO(preserve(s, d, 2), 0, "preserve vfio0");

        CHECK_ERRNO(session_event(s, LUO_V4_EVENT_FINISH), EBUSY, "session FINISH on an outgoing session is EBUSY");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_PREPARE), 0, "global PREPARE");
        harness_check(global_state(luo) == LUO_V4_STATE_PREPARED, "global state PREPARED");
        harness_check(session_state(s, &inc) == LUO_V4_STATE_PREPARED, "session PREPARED");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_PREPARE), EINVAL, "second PREPARE is EINVAL");
        CHECK_ERRNO(preserve(s, memfd_create("late", MFD_CLOEXEC), 3), EBUSY, "preserve while PREPARED is EBUSY");
        cs.fd = -1;
        snprintf((char *) cs.name, sizeof(cs.name), "late");
        CHECK_ERRNO(ioctl(luo, LUO_V4_IOCTL_CREATE_SESSION, &cs), EBUSY, "create while PREPARED is EBUSY");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_CANCEL), 0, "global CANCEL");
        harness_check(session_state(s, &inc) == LUO_V4_STATE_NORMAL, "CANCEL returns the session to NORMAL");
        CHECK_ERRNO(session_event(s, LUO_V4_EVENT_FREEZE), EBUSY, "session FREEZE from NORMAL is EBUSY");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_PREPARE), 0, "global PREPARE again");

        k = emu_test_kernel_image();
        CHECK_ERRNO(emu_test_kexec_load(k, "root=/dev/vda liveupdate=on kho=on"), 0, "kexec_file_load");
        harness_carry();
        emu_test_reboot_kexec();
        printf("Bail out! reboot(KEXEC) returned: %m\n");
        exit(1);
}

static void boot1(void) {
        struct luo_v4_retrieve_session rs = { .size = sizeof(rs), .name = "emu-v4" };
        struct vfio_device_bind_iommufd b = { .argsz = sizeof(b) };
        char buf[8] = {};
        int luo, s, m, d, io, inc = 1;

        luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
        harness_check(global_state(luo) == LUO_V4_STATE_UPDATED, "global state UPDATED after the kexec");
        CHECK_ERRNO(ioctl(luo, LUO_V4_IOCTL_RETRIEVE_SESSION, &rs), 0, "RETRIEVE_SESSION");
        s = rs.fd;
        harness_check(session_state(s, &inc) == LUO_V4_STATE_UPDATED && inc == 1, "session UPDATED, incoming");
        CHECK_ERRNO(preserve(s, memfd_create("x", MFD_CLOEXEC), 9), EBUSY, "preserve into an UPDATED session is EBUSY");
        m = restore(s, 1);
        CHECK_ERRNO(m, 0, "RESTORE_FD memfd");
        harness_check(pread(m, buf, 6, 0) == 6 && memcmp(buf, "v4data", 6) == 0, "memfd contents");
        d = restore(s, 2);
        CHECK_ERRNO(d, 0, "RESTORE_FD vfio0");
        CHECK_ERRNO(session_event(s, LUO_V4_EVENT_FINISH), EBUSY, "session FINISH before BIND is EBUSY");
        io = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        b.iommufd = io;
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, &b), 0, "bind the restored device");
        CHECK_ERRNO(session_event(s, LUO_V4_EVENT_FINISH), 0, "session FINISH");
        CHECK_ERRNO(global_event(luo, LUO_V4_EVENT_FINISH), 0, "global FINISH");
        harness_check(global_state(luo) == LUO_V4_STATE_NORMAL, "global state NORMAL again");
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
