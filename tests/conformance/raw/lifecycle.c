/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Incoming sessions after a kexec (spec §1.6, §1.7), upstream ABI, three boots:
 * RETRIEVE_SESSION once (then EINVAL), RETRIEVE_FD (unknown token ENOENT; repeated
 * retrieves give new fds on one open file description), FINISH (repeatable), close of
 * a retrieved session = implicit FINISH, FINISH of an unretrieved file discards it,
 * and sessions never retrieved are gone after the next kexec.
 *
 * Kernel reading (luo_session.c, luo_file.c): RETRIEVE_SESSION refuses with EINVAL as
 * long as the session object exists and was retrieved, which includes after a
 * successful FINISH while its fd is still open; FINISH releases every file, so a
 * RETRIEVE_FD after it finds no token (ENOENT); the close of a retrieved session whose
 * implicit finish succeeds removes it (RETRIEVE_SESSION -> ENOENT).
 */
#include "luo-raw.h"

static int make_session(int dev, const char *name, uint64_t token, const char *text) {
        int s = raw_create(dev, name), m;

        if (s < 0)
                raw_bail("create %s", name);
        if (text) {
                m = raw_memfd(name, text);
                if (raw_preserve(s, m, token) < 0)
                        raw_bail("preserve into %s", name);
                close(m);
        }
        return s;
}

static void boot0(void) {
        int dev = raw_open_dev();

        if (dev < 0)
                raw_bail("open /dev/liveupdate");
        make_session(dev, "lc-a", 10, "AAAA");
        make_session(dev, "lc-b", 20, "BBBB");
        make_session(dev, "lc-c", 30, "CCCC");    /* never retrieved */
        make_session(dev, "lc-d", 40, "DDDD");    /* finished without retrieving its file */
        make_session(dev, "lc-empty", 0, NULL);
        harness_check(true, "boot 0: five sessions created");
        raw_kexec_or_bail();
}

static void boot1(void) {
        int dev, a, b, d, e, r1, r2, rb, fl;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");

        a = raw_retrieve(dev, "lc-a");
        CHECK_ERRNO(a, 0, "RETRIEVE_SESSION lc-a");
        CHECK_ERRNO(raw_retrieve(dev, "lc-a"), EINVAL, "RETRIEVE_SESSION lc-a again while retrieved -> EINVAL");
        if (a < 0)
                raw_bail("lc-a");

        CHECK_ERRNO(raw_retrieve_fd(a, 999), ENOENT, "RETRIEVE_FD of an unknown token -> ENOENT");
        r1 = raw_retrieve_fd(a, 10);
        CHECK_ERRNO(r1, 0, "RETRIEVE_FD token 10");
        r2 = raw_retrieve_fd(a, 10);
        CHECK_ERRNO(r2, 0, "RETRIEVE_FD token 10 again succeeds");
        harness_check(r1 >= 0 && r2 >= 0 && r1 != r2, "the repeated RETRIEVE_FD returns a new fd (%d, %d)", r1, r2);
        harness_check(raw_is_cloexec(r1) && raw_is_cloexec(r2), "both retrieved fds are O_CLOEXEC");
        harness_check(raw_memfd_is(r1, "AAAA"), "the memfd holds its data");
        /* Same open file description: the position and the status flags are shared. */
        harness_check(lseek(r1, 3, SEEK_SET) == 3 && lseek(r2, 0, SEEK_CUR) == 3,
                      "file position is shared between the two fds");
        fl = fcntl(r1, F_GETFL);
        harness_check(fl >= 0 && fcntl(r1, F_SETFL, fl | O_APPEND) == 0 && (fcntl(r2, F_GETFL) & O_APPEND),
                      "file status flags are shared between the two fds");
        harness_check(fstat(r1, &(struct stat){}) == 0, "fstat on the retrieved fd");

        CHECK_ERRNO(raw_finish(a), 0, "FINISH lc-a");
        CHECK_ERRNO(raw_finish(a), 0, "FINISH lc-a again -> 0 (upstream)");
        CHECK_ERRNO(raw_retrieve_fd(a, 10), ENOENT, "RETRIEVE_FD after FINISH -> ENOENT (files released)");
        CHECK_ERRNO(raw_retrieve(dev, "lc-a"), EINVAL, "RETRIEVE_SESSION of a finished, still open session -> EINVAL");
        harness_check(raw_memfd_is(r1, "AAAA"), "the retrieved memfd is still usable after FINISH");
        CHECK_ERRNO(close(a), 0, "close lc-a");
        CHECK_ERRNO(raw_retrieve(dev, "lc-a"), ENOENT, "RETRIEVE_SESSION after FINISH and close -> ENOENT");
        close(r2);

        /* Close without FINISH = implicit FINISH. */
        b = raw_retrieve(dev, "lc-b");
        CHECK_ERRNO(b, 0, "RETRIEVE_SESSION lc-b");
        rb = raw_retrieve_fd(b, 20);
        CHECK_ERRNO(rb, 0, "RETRIEVE_FD token 20");
        CHECK_ERRNO(close(b), 0, "close lc-b without FINISH");
        CHECK_ERRNO(raw_retrieve(dev, "lc-b"), ENOENT, "the close finished lc-b: RETRIEVE_SESSION -> ENOENT");
        harness_check(raw_memfd_is(rb, "BBBB"), "the memfd retrieved from lc-b survives the implicit finish");
        close(rb);

        /* FINISH with an unretrieved memfd: allowed, the file is discarded. */
        d = raw_retrieve(dev, "lc-d");
        CHECK_ERRNO(d, 0, "RETRIEVE_SESSION lc-d");
        CHECK_ERRNO(raw_finish(d), 0, "FINISH with an unretrieved memfd -> 0");
        CHECK_ERRNO(raw_retrieve_fd(d, 40), ENOENT, "the unretrieved memfd is gone after FINISH -> ENOENT");
        close(d);

        e = raw_retrieve(dev, "lc-empty");
        CHECK_ERRNO(e, 0, "RETRIEVE_SESSION of an empty session");
        CHECK_ERRNO(raw_finish(e), 0, "FINISH of an empty session -> 0");
        close(e);

        /* lc-c stays untouched; a new outgoing session goes to the next boot. */
        {
                int n = make_session(dev, "lc-next", 50, "NEXT");
                /* A memfd that came through one kexec can be preserved for the next one. */
                CHECK_ERRNO(raw_preserve(n, r1, 51), 0, "PRESERVE_FD of the finished, retrieved lc-a memfd");
                close(r1);
        }
        raw_kexec_or_bail();
}

static void boot2(void) {
        int dev, n, r;

        dev = raw_open_dev();
        if (dev < 0)
                raw_bail("open /dev/liveupdate");
        CHECK_ERRNO(raw_retrieve(dev, "lc-c"), ENOENT, "a session never retrieved is gone after the next kexec");
        CHECK_ERRNO(raw_retrieve(dev, "lc-a"), ENOENT, "lc-a is not carried forward");
        n = raw_retrieve(dev, "lc-next");
        CHECK_ERRNO(n, 0, "RETRIEVE_SESSION lc-next (created on boot 1)");
        r = n >= 0 ? raw_retrieve_fd(n, 50) : -1;
        harness_check(r >= 0 && raw_memfd_is(r, "NEXT"), "lc-next's memfd arrived on boot 2");
        r = n >= 0 ? raw_retrieve_fd(n, 51) : -1;
        harness_check(r >= 0 && raw_memfd_is(r, "AAAA"), "the memfd from boot 0 crossed a second kexec");
        harness_check(r >= 0 && lseek(r, 0, SEEK_CUR) == 3, "with the position it had on boot 1");
        /* Only O_RDWR|O_LARGEFILE are status flags of a retrieved memfd; O_APPEND set on boot 1 is gone. */
        harness_check(r >= 0 && !(fcntl(r, F_GETFL) & O_APPEND), "O_APPEND did not cross the kexec");
        CHECK_ERRNO(raw_finish(n), 0, "FINISH lc-next");
}

int main(void) {
        raw_init();
        switch (harness_boot()) {
        case 0:
                boot0();
                break;
        case 1:
                boot1();
                break;
        default:
                break;
        }
        boot2();
        return harness_done();
}
