/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The LUO v4 ABI (spec §3.3) and its detection (§3.4), luo-emu --abi=v4 --vfio=1, two
 * boots: command numbers, GET_STATE values, the global and per-session state machines
 * with their EBUSY rules, PREPARE/FREEZE/CANCEL/FINISH events, UNPRESERVE_FD,
 * RESTORE_FD, the 64-byte CREATE vs 72-byte RETRIEVE struct, and a full cycle with a
 * memfd and a VFIO device following the VFIO RFC's flow (global PREPARE, kexec,
 * RETRIEVE_SESSION, RESTORE_FD, bind, global FINISH).
 *
 * Readings where §3.3 is terse (the v4 series text is not in the public trees we can
 * search): CANCEL takes a PREPARED/FROZEN session or the PREPARED global state back to
 * NORMAL, and a global FINISH takes UPDATED back to NORMAL (as in the v1 and G1 state
 * machines with the same numbering, §3.1/§3.2). Preserve with the global state
 * PREPARED is EBUSY (rule "(un)preserve needs global NORMAL/UPDATED").
 */
#include "luo-raw.h"
#include "lu/liveupdate-v4.h"

_Static_assert(LUO_V4_IOCTL_GET_STATE == 0xBA00, "GET_STATE");
_Static_assert(LUO_V4_IOCTL_SET_EVENT == 0xBA01, "SET_EVENT");
_Static_assert(LUO_V4_IOCTL_CREATE_SESSION == 0xBA02, "CREATE_SESSION");
_Static_assert(LUO_V4_IOCTL_RETRIEVE_SESSION == 0xBA03, "RETRIEVE_SESSION");
_Static_assert(LUO_V4_SESSION_PRESERVE_FD == 0xBA40, "PRESERVE_FD");
_Static_assert(LUO_V4_SESSION_UNPRESERVE_FD == 0xBA41, "UNPRESERVE_FD");
_Static_assert(LUO_V4_SESSION_RESTORE_FD == 0xBA42, "RESTORE_FD");
_Static_assert(LUO_V4_SESSION_GET_STATE == 0xBA43, "SESSION_GET_STATE");
_Static_assert(LUO_V4_SESSION_SET_EVENT == 0xBA44, "SESSION_SET_EVENT");
_Static_assert(sizeof(struct luo_v4_create_session) == 64, "v4 create is 64 bytes");
_Static_assert(sizeof(struct luo_v4_retrieve_session) == 72, "v4 retrieve is 72 bytes");
_Static_assert(sizeof(struct luo_v4_session_get_state) == 12, "v4 session state is 12 bytes");

#define V4_NAME55 "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
_Static_assert(sizeof(V4_NAME55) == 56, "55 characters");

/* The raw helpers below use literal command numbers on purpose. */

static int v4_state(int dev) {
        struct luo_v4_get_state a = { .size = sizeof(a), .state = 0xffff };

        if (ioctl(dev, 0xBA00, &a) < 0)
                return -1;
        return (int) a.state;
}

static int v4_event(int dev, uint32_t event) {
        struct luo_v4_set_event a = { .size = sizeof(a), .event = event };

        return ioctl(dev, 0xBA01, &a);
}

static int v4_create(int dev, const char *name) {
        struct luo_v4_create_session a = { .size = sizeof(a), .fd = -1 };

        raw_set_name(a.name, sizeof(a.name), name);
        if (ioctl(dev, 0xBA02, &a) < 0)
                return -1;
        return a.fd;
}

static int v4_retrieve_sized(int dev, const char *name, uint32_t size) {
        struct luo_v4_retrieve_session a = { .size = size, .fd = -1 };

        raw_set_name(a.name, sizeof(a.name), name);
        if (ioctl(dev, 0xBA03, &a) < 0)
                return -1;
        return a.fd;
}

static int v4_preserve(int s, int fd, uint64_t token) {
        struct luo_v4_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };

        return ioctl(s, 0xBA40, &a);
}

static int v4_unpreserve(int s, uint64_t token, uint32_t reserved) {
        struct luo_v4_session_unpreserve_fd a = { .size = sizeof(a), .reserved = reserved, .token = token };

        return ioctl(s, 0xBA41, &a);
}

static int v4_restore(int s, uint64_t token) {
        struct luo_v4_session_restore_fd a = { .size = sizeof(a), .fd = -1, .token = token };

        if (ioctl(s, 0xBA42, &a) < 0)
                return -1;
        return a.fd;
}

/* Session state, or -1; *incoming set from the reply. */
static int v4_session_state(int s, int *incoming) {
        struct luo_v4_session_get_state a = { .size = sizeof(a), .incoming = 0xff, .state = 0xffff };

        if (ioctl(s, 0xBA43, &a) < 0)
                return -1;
        if (incoming)
                *incoming = a.incoming;
        return (int) a.state;
}

static int v4_session_event(int s, uint32_t event) {
        struct luo_v4_session_set_event a = { .size = sizeof(a), .event = event };

        return ioctl(s, 0xBA44, &a);
}

/* spec §3.4 on a v4 device. */
static void check_probes(int dev) {
        uint8_t buf[72] = {};
        uint32_t u = 0;
        int r, e;

        r = ioctl(dev, 0x8004BA03, &u);
        e = r < 0 ? errno : 0;
        harness_check(r < 0 && (e == EINVAL || e == ENOTTY), "probe v1 GET_STATE 0x8004BA03 fails with EINVAL/ENOTTY (%s)",
                      r < 0 ? strerror(e) : "succeeded");

        *(uint32_t *) buf = 8;
        r = ioctl(dev, 0xBA00, buf);
        CHECK_ERRNO(r, 0, "probe GET_STATE 0xBA00 {size=8} succeeds on v4");
        harness_check(r >= 0 && ((uint32_t *) buf)[1] >= 1 && ((uint32_t *) buf)[1] <= 4,
                      "... with a state in 1..4 (%u)", ((uint32_t *) buf)[1]);

        memset(buf, 0, sizeof(buf));
        *(uint32_t *) buf = 8;
        CHECK_ERRNO(ioctl(dev, 0xBA03, buf), EINVAL, "probe 0xBA03 {size=8} -> EINVAL on v4 (size < 72)");
}

static void check_global(int dev) {
        int s, m;

        CHECK_ERRNO(v4_event(dev, LUO_V4_EVENT_FREEZE), EOPNOTSUPP, "global SET_EVENT FREEZE -> EOPNOTSUPP");
        CHECK_ERRNO(v4_event(dev, 9), EOPNOTSUPP, "global SET_EVENT 9 -> EOPNOTSUPP");
        harness_check(v4_state(dev) == LUO_V4_STATE_NORMAL, "still NORMAL after rejected events");

        s = v4_create(dev, "v4-global");
        m = raw_memfd("v4-g", "g");
        if (s < 0)
                raw_bail("create v4-global");
        CHECK_ERRNO(v4_event(dev, LUO_V4_EVENT_PREPARE), 0, "global SET_EVENT PREPARE");
        harness_check(v4_state(dev) == LUO_V4_STATE_PREPARED, "GET_STATE -> PREPARED (2) (got %d)", v4_state(dev));
        CHECK_ERRNO(v4_preserve(s, m, 1), EBUSY, "PRESERVE_FD while globally PREPARED -> EBUSY");
        CHECK_ERRNO(v4_event(dev, LUO_V4_EVENT_CANCEL), 0, "global SET_EVENT CANCEL");
        harness_check(v4_state(dev) == LUO_V4_STATE_NORMAL, "GET_STATE -> NORMAL (1) after CANCEL (got %d)", v4_state(dev));
        CHECK_ERRNO(v4_preserve(s, m, 1), 0, "PRESERVE_FD works again after CANCEL");
        close(m);
        close(s);
}

static void check_session_machine(int dev) {
        int s, m, m2, inc = -1, closed;

        s = v4_create(dev, "v4-sm");
        CHECK_ERRNO(s, 0, "CREATE_SESSION (64-byte struct)");
        if (s < 0)
                raw_bail("create v4-sm");
        harness_check(raw_is_cloexec(s), "session fd is O_CLOEXEC");
        harness_check(v4_session_state(s, &inc) == LUO_V4_STATE_NORMAL && inc == 0,
                      "SESSION_GET_STATE: NORMAL, not incoming (state %d, incoming %d)", v4_session_state(s, NULL), inc);
        CHECK_ERRNO(v4_create(dev, "v4-sm"), EEXIST, "duplicate name -> EEXIST");

        m = raw_memfd("v4-m", "m");
        m2 = raw_memfd("v4-m2", "m2");
        CHECK_ERRNO(v4_preserve(s, m, 1), 0, "PRESERVE_FD token 1");
        CHECK_ERRNO(v4_preserve(s, m2, 2), 0, "PRESERVE_FD token 2");
        CHECK_ERRNO(v4_unpreserve(s, 2, 1), EOPNOTSUPP, "UNPRESERVE_FD with reserved != 0 -> EOPNOTSUPP");
        CHECK_ERRNO(v4_unpreserve(s, 2, 0), 0, "UNPRESERVE_FD token 2");
        CHECK_ERRNO(ftruncate(m2, 64), 0, "the unpreserved memfd is free again (ftruncate works)");
        CHECK_ERRNO(v4_preserve(s, m2, 2), 0, "token 2 can be used again after UNPRESERVE_FD");
        CHECK_ERRNO(v4_restore(s, 1), EBUSY, "RESTORE_FD on an outgoing NORMAL session -> EBUSY");

        CHECK_ERRNO(v4_session_event(s, 7), EINVAL, "SESSION_SET_EVENT 7 -> EINVAL");
        CHECK_ERRNO(v4_session_event(s, LUO_V4_EVENT_FREEZE), EBUSY, "session FREEZE from NORMAL -> EBUSY");
        CHECK_ERRNO(v4_session_event(s, LUO_V4_EVENT_PREPARE), 0, "session PREPARE");
        harness_check(v4_session_state(s, NULL) == LUO_V4_STATE_PREPARED, "session state PREPARED");
        CHECK_ERRNO(v4_session_event(s, LUO_V4_EVENT_PREPARE), EBUSY, "session PREPARE again -> EBUSY");
        CHECK_ERRNO(v4_preserve(s, m, 3), EBUSY, "PRESERVE_FD into a PREPARED session -> EBUSY");
        CHECK_ERRNO(v4_unpreserve(s, 1, 0), EBUSY, "UNPRESERVE_FD in a PREPARED session -> EBUSY");
        CHECK_ERRNO(v4_session_event(s, LUO_V4_EVENT_FREEZE), 0, "session FREEZE from PREPARED");
        harness_check(v4_session_state(s, NULL) == LUO_V4_STATE_FROZEN, "session state FROZEN");
        CHECK_ERRNO(v4_preserve(s, m, 3), EBUSY, "PRESERVE_FD into a FROZEN session -> EBUSY");
        CHECK_ERRNO(v4_session_event(s, LUO_V4_EVENT_CANCEL), 0, "session CANCEL from FROZEN");
        harness_check(v4_session_state(s, NULL) == LUO_V4_STATE_NORMAL, "session state NORMAL after CANCEL");
        CHECK_ERRNO(v4_unpreserve(s, 1, 0), 0, "UNPRESERVE_FD works again after CANCEL");
        close(s);

        /* Closing a PREPARED/FROZEN session cancels it and unpreserves its files. */
        closed = v4_create(dev, "v4-closed");
        CHECK_ERRNO(v4_preserve(closed, m, 1), 0, "PRESERVE_FD into v4-closed");
        CHECK_ERRNO(v4_session_event(closed, LUO_V4_EVENT_PREPARE), 0, "v4-closed PREPARE");
        CHECK_ERRNO(v4_session_event(closed, LUO_V4_EVENT_FREEZE), 0, "v4-closed FREEZE");
        CHECK_ERRNO(close(closed), 0, "close the FROZEN session v4-closed");
        CHECK_ERRNO(ftruncate(m, 64), 0, "its memfd is unpreserved (ftruncate works)");
        close(m);
        close(m2);
}

static void boot0(void) {
        int dev, s, sp, m, d0, iommufd;

        dev = raw_open_dev();
        CHECK_ERRNO(dev, 0, "open /dev/liveupdate (v4)");
        if (dev < 0)
                raw_bail("open");
        CHECK_ERRNO(raw_open_dev(), EBUSY, "second open -> EBUSY (v4 is exclusive too)");
        check_probes(dev);
        harness_check(v4_state(dev) == LUO_V4_STATE_NORMAL, "GET_STATE on a cold boot -> NORMAL (1)");
        CHECK_ERRNO(v4_retrieve_sized(dev, "v4-cycle", 72), ENOENT, "RETRIEVE_SESSION on a cold boot -> ENOENT");

        {
                struct luo_v4_create_session a = { .size = 8 };
                CHECK_ERRNO(ioctl(dev, 0xBA02, &a), EINVAL, "CREATE_SESSION size 8 -> EINVAL");
        }
        s = v4_create(dev, V4_NAME55);
        CHECK_ERRNO(s, 0, "CREATE_SESSION with a 55-character name (v4 limit)");
        close(s);

        check_global(dev);
        check_session_machine(dev);

        /* The cycle: a memfd and a bound VFIO device, interrupts off. */
        s = v4_create(dev, "v4-cycle");
        if (s < 0)
                raw_bail("create v4-cycle");
        m = raw_memfd("v4-cycle", "v4 memfd data");
        CHECK_ERRNO(v4_preserve(s, m, 1), 0, "PRESERVE_FD memfd into v4-cycle");
        close(m);
        d0 = raw_vfio_open(0);
        CHECK_ERRNO(d0, 0, "open /dev/vfio/devices/vfio0");
        if (d0 < 0)
                raw_bail("no VFIO device (run with --vfio=1)");
        iommufd = raw_vfio_setup(d0, -1);
        raw_note_set("pci0", raw_vfio_pci_addr(d0, -1));
        CHECK_ERRNO(v4_preserve(s, d0, 2), 0, "PRESERVE_FD of the bound VFIO cdev");

        /* A session left PREPARED is frozen by the reboot. */
        sp = v4_create(dev, "v4-sprep");
        m = raw_memfd("v4-sprep", "prepared");
        CHECK_ERRNO(v4_preserve(sp, m, 5), 0, "PRESERVE_FD into v4-sprep");
        close(m);
        CHECK_ERRNO(v4_session_event(sp, LUO_V4_EVENT_PREPARE), 0, "v4-sprep PREPARE (left PREPARED)");

        CHECK_ERRNO(v4_event(dev, LUO_V4_EVENT_PREPARE), 0, "global PREPARE before the kexec");
        (void) iommufd;
        raw_kexec_or_bail();
}

static void boot1(void) {
        int dev, s, sp, m, d, iommufd, inc = -1;
        struct lu_vfio_device_info info = { .argsz = sizeof(info) };

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open");
        harness_check(v4_state(dev) == LUO_V4_STATE_UPDATED, "GET_STATE after the kexec -> UPDATED (4) (got %d)", v4_state(dev));

        CHECK_ERRNO(v4_retrieve_sized(dev, "v4-cycle", 64), EINVAL, "RETRIEVE_SESSION with a 64-byte struct -> EINVAL (needs 72)");
        s = v4_retrieve_sized(dev, "v4-cycle", 72);
        CHECK_ERRNO(s, 0, "RETRIEVE_SESSION with the 72-byte struct");
        if (s < 0)
                raw_bail("no session");
        harness_check(v4_session_state(s, &inc) == LUO_V4_STATE_UPDATED && inc == 1,
                      "SESSION_GET_STATE: UPDATED, incoming (state %d, incoming %d)", v4_session_state(s, NULL), inc);
        CHECK_ERRNO(v4_retrieve_sized(dev, "v4-closed", 72), ENOENT, "a session closed while FROZEN was not handed over");

        m = v4_restore(s, 1);
        CHECK_ERRNO(m, 0, "RESTORE_FD memfd");
        harness_check(m >= 0 && raw_memfd_is(m, "v4 memfd data"), "memfd contents survived");
        CHECK_ERRNO(v4_preserve(s, m, 9), EBUSY, "PRESERVE_FD into an incoming UPDATED session -> EBUSY");
        CHECK_ERRNO(v4_unpreserve(s, 1, 0), EBUSY, "UNPRESERVE_FD in an incoming UPDATED session -> EBUSY");

        CHECK_ERRNO(raw_vfio_open(0), EBUSY, "open of the preserved VFIO cdev -> EBUSY");
        d = v4_restore(s, 2);
        CHECK_ERRNO(d, 0, "RESTORE_FD VFIO device");
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_GET_INFO, &info), EINVAL, "restored device refuses GET_INFO until bound");
        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK_ERRNO(raw_vfio_bind(d, iommufd, NULL), 0, "BIND_IOMMUFD the restored device");
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_GET_INFO, &info), 0, "bound: GET_INFO works");
        {
                long long was = raw_note_get("pci0", -1), now = raw_vfio_pci_addr(d, -1);
                if (was >= 0)
                        harness_check(now == was, "same PCI address as before the kexec (%llx, %llx)", was, now);
        }

        sp = v4_retrieve_sized(dev, "v4-sprep", 72);
        CHECK_ERRNO(sp, 0, "v4-sprep (left PREPARED) was handed over");
        m = sp >= 0 ? v4_restore(sp, 5) : -1;
        harness_check(m >= 0 && raw_memfd_is(m, "prepared"), "its memfd arrived");

        /* Outgoing sessions work while UPDATED: (un)preserve needs global NORMAL/UPDATED. */
        {
                int n = v4_create(dev, "v4-next");
                int nm = raw_memfd("v4-next", "next");
                CHECK_ERRNO(n, 0, "CREATE_SESSION while UPDATED");
                CHECK_ERRNO(v4_preserve(n, nm, 1), 0, "PRESERVE_FD into a new session while UPDATED");
                CHECK_ERRNO(v4_unpreserve(n, 1, 0), 0, "UNPRESERVE_FD in it while UPDATED");
                close(nm);
                close(n);
        }

        CHECK_ERRNO(v4_event(dev, LUO_V4_EVENT_FINISH), 0, "global SET_EVENT FINISH");
        harness_check(v4_state(dev) == LUO_V4_STATE_NORMAL, "GET_STATE after FINISH -> NORMAL (got %d)", v4_state(dev));
        CHECK_ERRNO(v4_restore(s, 1), EBUSY, "RESTORE_FD once the global state left UPDATED -> EBUSY");
        CHECK_ERRNO(ioctl(d, VFIO_DEVICE_GET_INFO, &info), 0, "the device works after FINISH");
}

int main(void) {
        raw_init();
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
