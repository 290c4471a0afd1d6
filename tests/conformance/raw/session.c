/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CREATE_SESSION / RETRIEVE_SESSION names and limits (spec §1.6, §1.8), upstream ABI,
 * over two boots: duplicates, the 63-character maximum, what a 64-byte unterminated
 * name becomes, the session limit, RETRIEVE before any reboot, and a name living in
 * the incoming and the outgoing list at the same time.
 *
 * Names (Linux 7.1.8 kernel/liveupdate/luo_session.c, luo_session_create()): an empty
 * name, or 64 bytes without a NUL, is refused with EINVAL (the spec's older "truncated
 * to 63, empty allowed" reading is wrong for 7.1; the kernel's own selftest
 * liveupdate.c checks both). Retrieve compares with strncmp(.., 64) and does not
 * validate: 64 unterminated bytes or the empty name simply find nothing (ENOENT).
 */
#include <sys/resource.h>

#include "luo-raw.h"

#define N63 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
#define U63 "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"

_Static_assert(sizeof(N63) == 64 && sizeof(U63) == 64, "63 characters");

/* CREATE/RETRIEVE with exactly 64 non-NUL bytes in name. */
static int ioctl_unterminated(int dev, unsigned long cmd, char c) {
        struct liveupdate_ioctl_create_session a = { .size = sizeof(a), .fd = -1 };

        memset(a.name, c, sizeof(a.name));
        if (ioctl(dev, cmd, &a) < 0)
                return -1;
        return a.fd;
}

/*
 * spec §1.8: 819 sessions with 4 KiB pages ((16 pages - 8 B) / 80 B), the source comment
 * says 744; beyond the limit CREATE_SESSION -> ENOMEM. @open_now sessions exist already.
 */
static void check_limit(int dev, int open_now) {
        enum { TRY = 1000 };
        static int fds[TRY];
        int n = 0, err = 0, again;

        for (; n < TRY; n++) {
                char name[32];
                snprintf(name, sizeof(name), "lim-%d", n);
                fds[n] = raw_create(dev, name);
                if (fds[n] < 0) {
                        err = errno;
                        break;
                }
        }
        if (harness_kernel_7_2()) {
                /* spec §8.4: 7.2 removed the page-bounded session count */
                harness_check(n == TRY, "7.2: no session limit: %d sessions more than 819 exist (got %d, %s)",
                              TRY + open_now - 819, open_now + n, err ? strerror(err) : "no failure");
        } else {
                harness_check(open_now + n >= 744, "at least 744 sessions can exist (got %d)", open_now + n);
                harness_check(err == ENOMEM, "creating sessions beyond the limit fails with ENOMEM (got %s after %d)",
                              err ? strerror(err) : "no failure", open_now + n);
                harness_check(open_now + n == 819, "the limit is 819 sessions with 4 KiB pages (got %d)", open_now + n);
        }

        for (int i = 0; i < n; i++)
                close(fds[i]);
        again = raw_create(dev, "lim-again");
        CHECK_ERRNO(again, 0, "after closing them, sessions can be created again");
        close(again);
}

/*
 * A full fd table: CREATE/RETRIEVE_SESSION allocate the new fd first
 * (luo_core.c get_unused_fd_flags() before anything else), so EMFILE wins over
 * EEXIST and ENOENT.
 */
static void check_emfile(int dev) {
        struct rlimit old, low;
        int fds[64], n = 0, s;

        if (getrlimit(RLIMIT_NOFILE, &old) < 0)
                raw_bail("getrlimit");
        low = (struct rlimit) { 64, old.rlim_max };   /* soft limit only: raising it back needs no privilege */
        if (setrlimit(RLIMIT_NOFILE, &low) < 0)
                raw_bail("setrlimit");
        while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
                n++;
        if (n == 0 || errno != EMFILE)
                raw_bail("could not fill the fd table");

        CHECK_ERRNO(raw_create(dev, "emfile"), EMFILE, "CREATE_SESSION with a full fd table -> EMFILE");
        CHECK_ERRNO(raw_retrieve(dev, "emfile"), EMFILE, "RETRIEVE_SESSION with a full fd table -> EMFILE (before ENOENT)");
        CHECK_ERRNO(raw_create(dev, "s-a"), EMFILE, "CREATE_SESSION of a taken name with a full fd table -> EMFILE (before EEXIST)");

        close(fds[--n]);
        s = raw_create(dev, "emfile");
        CHECK_ERRNO(s, 0, "with one fd free again, CREATE_SESSION works");
        close(s);
        while (n > 0)
                close(fds[--n]);
        if (setrlimit(RLIMIT_NOFILE, &old) < 0)
                raw_bail("setrlimit");
}

static void boot0(void) {
        struct rlimit rl = { 4096, 4096 };
        int dev, a, n63, both;

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                raw_bail("setrlimit");
        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        CHECK_ERRNO(raw_retrieve(dev, "s-a"), ENOENT, "RETRIEVE_SESSION before any reboot -> ENOENT");
        CHECK_ERRNO(raw_retrieve(dev, ""), ENOENT, "RETRIEVE_SESSION of the empty name before any reboot -> ENOENT");

        a = raw_create(dev, "s-a");
        CHECK_ERRNO(a, 0, "CREATE_SESSION s-a");
        CHECK_ERRNO(raw_create(dev, "s-a"), EEXIST, "CREATE_SESSION s-a again -> EEXIST");
        CHECK_ERRNO(raw_retrieve(dev, "s-a"), ENOENT, "an outgoing session cannot be retrieved -> ENOENT");

        n63 = raw_create(dev, N63);
        CHECK_ERRNO(n63, 0, "CREATE_SESSION with a 63-character name");
        CHECK_ERRNO(raw_create(dev, N63), EEXIST, "63-character name again -> EEXIST");

        CHECK_ERRNO(ioctl_unterminated(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, 'u'), EINVAL,
                    "CREATE_SESSION with 64 unterminated bytes -> EINVAL (7.1.8 validates names)");
        CHECK_ERRNO(raw_create(dev, ""), EINVAL, "CREATE_SESSION with the empty name -> EINVAL");
        CHECK_ERRNO(raw_create(dev, U63), 0, "CREATE_SESSION with the 63-byte name the refused one began with");

        both = raw_create(dev, "s-both");
        CHECK_ERRNO(both, 0, "CREATE_SESSION s-both");

        check_limit(dev, 4);
        check_emfile(dev);

        /* Everything above stays open through the reboot. */
        raw_kexec_or_bail();
}

static void boot1(void) {
        int dev, s, out;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        s = raw_retrieve(dev, "s-a");
        CHECK_ERRNO(s, 0, "RETRIEVE_SESSION s-a after the reboot");
        {
                char p[64], link[256] = "";
                ssize_t n;

                snprintf(p, sizeof(p), "/proc/self/fd/%d", s);
                n = readlink(p, link, sizeof(link) - 1);
                if (n > 0)
                        link[n] = 0;
                harness_check(strcmp(link, "anon_inode:[luo_session] s-a") == 0,
                              "retrieved session fd links to \"anon_inode:[luo_session] s-a\" (%s)", link);
        }
        CHECK_ERRNO(raw_retrieve(dev, N63), 0, "RETRIEVE_SESSION of the 63-character name");
        CHECK_ERRNO(ioctl_unterminated(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, 'u'), ENOENT,
                    "RETRIEVE_SESSION with 64 unterminated bytes -> ENOENT (compared over 64 bytes)");
        CHECK_ERRNO(raw_retrieve(dev, U63), 0, "RETRIEVE_SESSION of the 63-byte name");
        CHECK_ERRNO(raw_retrieve(dev, ""), ENOENT, "RETRIEVE_SESSION of the empty name -> ENOENT (never created)");
        CHECK_ERRNO(raw_retrieve(dev, "lim-0"), ENOENT, "sessions closed before the reboot are not incoming");
        CHECK_ERRNO(raw_retrieve(dev, "never"), ENOENT, "RETRIEVE_SESSION of an unknown name -> ENOENT");

        /* Incoming and outgoing lists are separate: a name may be in both. */
        out = raw_create(dev, "s-both");
        CHECK_ERRNO(out, 0, "CREATE_SESSION s-both while s-both is incoming (not retrieved)");
        CHECK_ERRNO(raw_create(dev, "s-both"), EEXIST, "a second outgoing s-both -> EEXIST");
        s = raw_retrieve(dev, "s-both");
        CHECK_ERRNO(s, 0, "RETRIEVE_SESSION s-both still finds the incoming one");
        harness_check(s >= 0 && s != out && raw_is_cloexec(s), "retrieved session fd is a new O_CLOEXEC fd");
        CHECK_ERRNO(raw_create(dev, "s-a"), 0, "CREATE_SESSION s-a while s-a is incoming and retrieved");
}

int main(void) {
        raw_init();
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
