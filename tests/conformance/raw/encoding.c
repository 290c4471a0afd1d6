/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ioctl encoding and struct extensibility of the upstream ABI (spec §1.3-§1.5):
 * literal command numbers, size < min -> EINVAL, size > struct with a non-zero tail
 * -> E2BIG and with a zero tail -> accepted, bad pointer -> EFAULT, nr outside the
 * table -> EINVAL, right nr with other dir/size/type bits -> ENOTTY. One boot.
 *
 * Order of the checks in the kernel's dispatchers (luo_core.c luo_ioctl(),
 * luo_session.c luo_session_ioctl()), which decides the errno when several things
 * are wrong at once: nr range (EINVAL, argument not read) -> read the size (EFAULT) ->
 * full cmd compare (ENOTTY) -> session ioctls only: the session's direction (EINVAL,
 * luo_ioctl_type_valid() in 7.1.8) -> size < min (EINVAL) -> copy_struct_from_user
 * (EFAULT, E2BIG). Checked against the real kernel in the real-kernel suite.
 */
#include "luo-raw.h"

_Static_assert(LIVEUPDATE_IOCTL_CREATE_SESSION == 0xBA00, "CREATE_SESSION number");
_Static_assert(LIVEUPDATE_IOCTL_RETRIEVE_SESSION == 0xBA01, "RETRIEVE_SESSION number");
_Static_assert(LIVEUPDATE_SESSION_PRESERVE_FD == 0xBA40, "PRESERVE_FD number");
_Static_assert(LIVEUPDATE_SESSION_RETRIEVE_FD == 0xBA41, "RETRIEVE_FD number");
_Static_assert(LIVEUPDATE_SESSION_FINISH == 0xBA42, "FINISH number");
_Static_assert(sizeof(struct liveupdate_ioctl_create_session) == 72, "create_session size");
_Static_assert(sizeof(struct liveupdate_session_preserve_fd) == 16, "preserve_fd size");

/* A create_session request in a buffer of @size bytes (>= 8), name at offset 8. */
struct big_create {
        uint32_t size;
        int32_t fd;
        char name[64];
        uint8_t tail[24];
};

static int create_sized(int dev, uint32_t size, const char *name, uint8_t tail_byte) {
        struct big_create a = { .size = size, .fd = -1 };

        strncpy(a.name, name, sizeof(a.name) - 1);
        a.tail[size > 72 ? size - 73 : 0] = tail_byte;
        if (ioctl(dev, 0xBA00, &a) < 0)
                return -1;
        return a.fd;
}

static void check_device_sizes(int dev) {
        int fd;

        CHECK_ERRNO(create_sized(dev, 71, "enc-71", 0), EINVAL, "CREATE_SESSION size 71 (< 72) -> EINVAL");
        CHECK_ERRNO(create_sized(dev, 8, "enc-8", 0), EINVAL, "CREATE_SESSION size 8 -> EINVAL");
        CHECK_ERRNO(create_sized(dev, 0, "enc-0", 0), EINVAL, "CREATE_SESSION size 0 -> EINVAL");

        CHECK_ERRNO(create_sized(dev, 80, "enc-e2big", 0x5a), E2BIG,
                    "CREATE_SESSION size 80, non-zero byte in the tail -> E2BIG");
        /* Nothing was created by the rejected call: the name is free. */
        fd = raw_create(dev, "enc-e2big");
        CHECK_ERRNO(fd, 0, "the E2BIG call created no session");
        close(fd);

        fd = create_sized(dev, 80, "enc-80", 0);
        CHECK_ERRNO(fd, 0, "CREATE_SESSION size 80 with a zero tail -> accepted");
        harness_check(fd >= 0 && raw_is_cloexec(fd), "the fd written back by a size-80 call is a session fd");
        CHECK_ERRNO(raw_create(dev, "enc-80"), EEXIST, "the size-80 call did create the session");
        close(fd);

        /* RETRIEVE_SESSION checks its size the same way (before looking for the name). */
        {
                struct big_create a = { .size = 71 };
                strcpy(a.name, "enc-none");
                CHECK_ERRNO(ioctl(dev, 0xBA01, &a), EINVAL, "RETRIEVE_SESSION size 71 -> EINVAL");
                a.size = 80;
                a.tail[7] = 1;
                CHECK_ERRNO(ioctl(dev, 0xBA01, &a), E2BIG, "RETRIEVE_SESSION size 80, non-zero tail -> E2BIG");
                a.tail[7] = 0;
                CHECK_ERRNO(ioctl(dev, 0xBA01, &a), ENOENT, "RETRIEVE_SESSION size 80, zero tail -> reaches the lookup (ENOENT)");
        }
}

static void check_bad_pointers(int dev, int s) {
        long page = sysconf(_SC_PAGESIZE);
        uint8_t *map;

        /* Two pages, the second one inaccessible: a struct straddling the boundary. */
        map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
                raw_bail("mmap");
        if (mprotect(map + page, page, PROT_NONE) < 0)
                raw_bail("mprotect");

        CHECK_ERRNO(ioctl(dev, 0xBA00, NULL), EFAULT, "CREATE_SESSION with a NULL argument -> EFAULT");
        CHECK_ERRNO(ioctl(dev, 0xBA00, map + page), EFAULT, "CREATE_SESSION with an unmapped argument -> EFAULT");
        {
                uint8_t *p = map + page - 16;   /* size readable, name runs into PROT_NONE */
                memset(p, 0, 16);
                *(uint32_t *) p = 72;
                memcpy(p + 8, "enc-fault", 8);
                CHECK_ERRNO(ioctl(dev, 0xBA00, p), EFAULT, "CREATE_SESSION struct running into an unmapped page -> EFAULT");
        }
        CHECK_ERRNO(ioctl(s, 0xBA40, NULL), EFAULT, "PRESERVE_FD with a NULL argument -> EFAULT");
        CHECK_ERRNO(ioctl(s, 0xBA42, map + page), EFAULT, "FINISH with an unmapped argument -> EFAULT");

        /* The nr range check comes first: an out-of-range nr never reads the argument. */
        CHECK_ERRNO(ioctl(dev, 0xBA02, NULL), EINVAL, "nr 0x02 on /dev/liveupdate with NULL -> EINVAL, not EFAULT");
        CHECK_ERRNO(ioctl(s, 0xBA45, NULL), EINVAL, "nr 0x45 on a session with NULL -> EINVAL, not EFAULT");
        /* ... while the size is read before the full command is compared. */
        CHECK_ERRNO(ioctl(dev, 0xC048BA00, NULL), EFAULT, "0xC048BA00 with NULL -> EFAULT (size read before the cmd compare)");
        CHECK_ERRNO(ioctl(s, 0x3B42, NULL), EFAULT, "type 0x3B nr 0x42 on a session with NULL -> EFAULT");
        munmap(map, 2 * page);
}

static void check_numbers(int dev, int s) {
        uint8_t buf[128] = {};

        *(uint32_t *) buf = 72;
        /* nr outside the device's table (0x00-0x01). */
        CHECK_ERRNO(ioctl(dev, 0xBA02, buf), EINVAL, "0xBA02 on /dev/liveupdate -> EINVAL (nr outside the table)");
        CHECK_ERRNO(ioctl(dev, 0xBA40, buf), EINVAL, "0xBA40 (a session command) on /dev/liveupdate -> EINVAL");
        CHECK_ERRNO(ioctl(dev, 0xBAFF, buf), EINVAL, "0xBAFF on /dev/liveupdate -> EINVAL");
        /* nr outside the session table (0x40-0x42). */
        *(uint32_t *) buf = 16;
        CHECK_ERRNO(ioctl(s, 0xBA00, buf), EINVAL, "0xBA00 (CREATE_SESSION) on a session fd -> EINVAL");
        CHECK_ERRNO(ioctl(s, 0xBA3F, buf), EINVAL, "0xBA3F on a session fd -> EINVAL");
        CHECK_ERRNO(ioctl(s, 0xBA43, buf), EINVAL, "0xBA43 on a session fd -> EINVAL");

        /* Right nr, other dir/size/type bits: ENOTTY. */
        *(uint32_t *) buf = 72;
        CHECK_ERRNO(ioctl(dev, _IOWR(0xBA, 0x00, struct liveupdate_ioctl_create_session), buf), ENOTTY,
                    "_IOWR(0xBA, 0, 72) = 0xC048BA00 on /dev/liveupdate -> ENOTTY");
        CHECK_ERRNO(ioctl(dev, 0x4048BA01, buf), ENOTTY, "_IOW(0xBA, 1, 72) on /dev/liveupdate -> ENOTTY");
        CHECK_ERRNO(ioctl(dev, 0x3B00, buf), ENOTTY, "type 0x3B, nr 0 on /dev/liveupdate -> ENOTTY");
        *(uint32_t *) buf = 16;
        CHECK_ERRNO(ioctl(s, _IOW(0xBA, 0x40, struct liveupdate_session_preserve_fd), buf), ENOTTY,
                    "_IOW(0xBA, 0x40, 16) on a session fd -> ENOTTY");
        CHECK_ERRNO(ioctl(s, 0x3B42, buf), ENOTTY, "type 0x3B, nr 0x42 on a session fd -> ENOTTY");
}

static void check_session_sizes(int s) {
        struct {
                uint32_t size;
                int32_t fd;
                uint64_t token;
                uint8_t tail[16];
        } a;
        int m = raw_memfd("enc-m", "data");

        memset(&a, 0, sizeof(a));
        a.size = 15;
        a.fd = m;
        a.token = 1;
        CHECK_ERRNO(ioctl(s, 0xBA40, &a), EINVAL, "PRESERVE_FD size 15 (< 16) -> EINVAL");
        a.size = 24;
        a.tail[3] = 1;
        CHECK_ERRNO(ioctl(s, 0xBA40, &a), E2BIG, "PRESERVE_FD size 24, non-zero tail -> E2BIG");
        a.tail[3] = 0;
        CHECK_ERRNO(ioctl(s, 0xBA40, &a), 0, "PRESERVE_FD size 24, zero tail -> preserved");
        a.size = 16;
        CHECK_ERRNO(ioctl(s, 0xBA40, &a), EEXIST, "the size-24 call did preserve token 1");
        close(m);

        {
                /* s is outgoing: FINISH is refused for its direction (7.1.8 luo_ioctl_type_valid())
                 * before the size is looked at, so neither a short size nor a non-zero tail shows. */
                struct { uint32_t size, reserved; uint8_t tail[8]; } f = { .size = 7 };
                CHECK_ERRNO(ioctl(s, 0xBA42, &f), EINVAL, "FINISH size 7 on an outgoing session -> EINVAL");
                f.size = 16;
                f.tail[7] = 9;
                CHECK_ERRNO(ioctl(s, 0xBA42, &f), EINVAL,
                            "FINISH size 16, non-zero tail, on an outgoing session -> EINVAL (direction first, not E2BIG)");
        }
        {
                struct liveupdate_session_retrieve_fd r = { .size = 8, .token = 1 };
                CHECK_ERRNO(ioctl(s, 0xBA41, &r), EINVAL, "RETRIEVE_FD size 8 (< 16) -> EINVAL");
        }
}

int main(void) {
        int dev, s;

        raw_init();
        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        /* The literal number works like the macro. */
        {
                struct liveupdate_ioctl_create_session a = { .size = 72 };
                memcpy(a.name, "enc-literal", 11);
                CHECK_ERRNO(ioctl(dev, 0xBA00, &a), 0, "ioctl(dev, 0xBA00, {size=72}) creates a session");
                s = a.fd;
        }
        if (s < 0)
                raw_bail("no session");

        check_device_sizes(dev);
        check_bad_pointers(dev, s);
        check_numbers(dev, s);
        check_session_sizes(s);

        close(s);
        close(dev);
        return harness_done();
}
