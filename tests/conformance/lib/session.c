/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sessions and memfds through lib/luo.h, on the ABI named in argv[1], two boots.
 *
 * Boot 0: luo_open() detects the emulated ABI and reports the distinct open errors;
 * create (name rules checked before the kernel, EEXIST from it), preserve (EEXIST,
 * ENOENT for a file LUO has no handler for), ABI-only operations (-EOPNOTSUPP on the
 * other ABI), v4 states, then kexec through lib/kexec.h holding the session fd.
 * Boot 1: retrieve the session and the memfds, check every byte, FINISH.
 */
#include "lib-conf.h"

#define MEMFD_SIZE (1u << 20)

static void check_open_errors(void) {
        Luo *l2 = (Luo *) 1;

        CHECK_NERRNO(luo_open(NULL, &l2), EBUSY, "a second luo_open() while the device is held -> -EBUSY");
        harness_check(l2 == NULL, "the failed open returns no handle");
        CHECK_NERRNO(luo_open("/nonexistent/liveupdate", &l2), ENOENT, "luo_open() of a missing node -> -ENOENT");
        CHECK_NERRNO(luo_open("/dev/null", &l2), ENOTTY, "luo_open() of a device that is not LUO -> -ENOTTY");
}

static void boot0(void) {
        char name[80], buf[64];
        int s = -1, s2 = -1, m1, m2, m3, p[2], r;
        LuoState st;
        FdInfo info;
        bool v4 = conf_abi == LUO_ABI_V4;
        Luo *l;

        l = conf_open();
        harness_check(luo_get_abi(l) == conf_abi, "luo_open() detects the %s ABI (got %s)",
                      luo_abi_to_string(conf_abi), luo_abi_to_string(luo_get_abi(l)));
        {
                LuoAbi abi = LUO_ABI_UNKNOWN;
                CHECK_NERRNO(luo_detect_abi(luo_get_fd(l), &abi), 0, "luo_detect_abi() again on the open fd");
                harness_check(abi == conf_abi, "the probe is repeatable (%s)", luo_abi_to_string(abi));
        }
        harness_check(luo_session_name_max(l) == (v4 ? LUO_V4_NAME_MAX : LUO_NAME_MAX),
                      "longest session name: %zu", luo_session_name_max(l));
        check_open_errors();

        if (v4) {
                CHECK_NERRNO(luo_get_state(l, &st), 0, "v4: luo_get_state()");
                harness_check(st == LUO_STATE_NORMAL, "v4: global state normal on a cold boot (%s)",
                              luo_state_to_string(st) ?: "?");
        } else
                CHECK_NERRNO(luo_get_state(l, &st), EOPNOTSUPP, "upstream: no global state -> -EOPNOTSUPP");

        CHECK_NERRNO(luo_session_retrieve(l, "lib-conf", &s), ENOENT, "no incoming session on a cold boot -> -ENOENT");

        CHECK_NERRNO(luo_session_create(l, "lib-conf", &s), 0, "luo_session_create(lib-conf)");
        if (s < 0)
                conf_bail("no session");
        CHECK_NERRNO(luo_session_create(l, "lib-conf", &s2), EEXIST, "the same name again -> -EEXIST");
        CHECK_NERRNO(luo_session_create(l, "a/b", &s2), EINVAL, "a name with '/' -> -EINVAL");
        CHECK_NERRNO(luo_session_create(l, "", &s2), EINVAL, "an empty name -> -EINVAL");
        memset(name, 'n', sizeof(name));
        name[luo_session_name_max(l) + 1] = '\0';
        CHECK_NERRNO(luo_session_create(l, name, &s2), EINVAL, "a name one byte too long -> -EINVAL");
        name[luo_session_name_max(l)] = '\0';
        CHECK_NERRNO(luo_session_create(l, name, &s2), 0, "the longest legal name is accepted by the kernel");
        conf_note_set("longname", name);

        CHECK_NERRNO(fd_classify(s, &info), 0, "fd_classify(session fd)");
        harness_check(info.kind == FD_KIND_LUO_SESSION, "a session fd classifies as luo-session (%s)",
                      fd_kind_to_string(info.kind));
        CHECK_NERRNO(fd_classify(luo_get_fd(l), &info), 0, "fd_classify(/dev/liveupdate)");
        harness_check(info.kind == FD_KIND_OTHER, "the device fd itself is not preservable (%s)",
                      fd_kind_to_string(info.kind));

        m1 = conf_memfd("lib-conf-1", MEMFD_SIZE, 1);
        m2 = conf_memfd("lib-conf-2", 4096, 2);
        m3 = conf_memfd("lib-conf-3", 4096, 3);
        CHECK_NERRNO(fd_classify(m1, &info), 0, "fd_classify(memfd)");
        harness_check(info.kind == FD_KIND_MEMFD && !info.has_pci, "a memfd classifies as memfd");

        CHECK_NERRNO(luo_session_preserve_fd(l, s, m1, 1), 0, "preserve a 1 MiB memfd as token 1");
        CHECK_NERRNO(luo_session_preserve_fd(l, s, m2, 1), EEXIST, "token 1 again -> -EEXIST");
        CHECK_NERRNO(luo_session_preserve_fd(l, s, m2, UINT64_MAX), 0, "preserve a memfd as token 2^64-1");
        if (pipe2(p, O_CLOEXEC) < 0)
                conf_bail("pipe");
        CHECK_NERRNO(luo_session_preserve_fd(l, s, p[0], 7), ENOENT, "preserve a pipe -> -ENOENT (no handler)");
        CHECK_NERRNO(luo_session_preserve_fd(l, s, -1, 8), EBADF, "preserve fd -1 -> -EBADF");

        if (v4) {
                CHECK_NERRNO(luo_session_preserve_fd(l, s, m3, 3), 0, "v4: preserve token 3");
                CHECK_NERRNO(luo_session_unpreserve_fd(l, s, 3), 0, "v4: unpreserve token 3");
                bool incoming = true;
                CHECK_NERRNO(luo_session_get_state(l, s, &st, &incoming), 0, "v4: luo_session_get_state()");
                harness_check(st == LUO_STATE_NORMAL && !incoming, "v4: new session is normal and outgoing");
                CHECK_NERRNO(luo_session_get_name(l, s, buf), EOPNOTSUPP, "v4: no GET_NAME -> -EOPNOTSUPP");
        } else {
                CHECK_NERRNO(luo_session_unpreserve_fd(l, s, 1), EOPNOTSUPP, "upstream: no unpreserve -> -EOPNOTSUPP");
                CHECK_NERRNO(luo_session_get_state(l, s, &st, NULL), EOPNOTSUPP, "upstream: no session state -> -EOPNOTSUPP");
                CHECK_NERRNO(luo_session_set_event(l, s, 0), EOPNOTSUPP, "upstream: no session events -> -EOPNOTSUPP");
                r = luo_session_get_name(l, s, buf);
                if (harness_kernel_7_2())
                        harness_check(r == 0 && strcmp(buf, "lib-conf") == 0, "7.2: GET_NAME names the session (%d)", r);
                else
                        harness_check(r == -EOPNOTSUPP, "7.1: no GET_NAME -> -EOPNOTSUPP (%d)", r);
                CHECK_NERRNO(luo_prepare(l), 0, "upstream: luo_prepare() is a no-op");
                CHECK_NERRNO(luo_cancel(l), 0, "upstream: luo_cancel() is a no-op");
        }

        /* The kernel holds its own references: closing ours changes nothing. */
        close(m1);
        close(m2);
        close(m3);
        close(p[0]);
        close(p[1]);
        (void) s2;

        conf_kexec(l);
}

static void boot1(void) {
        char name[80];
        int s = -1, s2 = -1, m = -1, r;
        bool v4 = conf_abi == LUO_ABI_V4;
        FdInfo info;
        LuoState st;
        Luo *l;

        l = conf_open();
        harness_check(luo_get_abi(l) == conf_abi, "boot 1: %s ABI detected again", luo_abi_to_string(conf_abi));
        if (v4) {
                CHECK_NERRNO(luo_get_state(l, &st), 0, "v4: luo_get_state() after the kexec");
                harness_check(st == LUO_STATE_UPDATED, "v4: global state updated (%s)", luo_state_to_string(st) ?: "?");
        }

        CHECK_NERRNO(luo_session_retrieve(l, "no-such-session", &s), ENOENT, "retrieve an unknown name -> -ENOENT");
        CHECK_NERRNO(luo_session_retrieve(l, "lib-conf", &s), 0, "luo_session_retrieve(lib-conf)");
        if (s < 0)
                conf_bail("session lost");
        CHECK_NERRNO(luo_session_retrieve(l, "lib-conf", &s2), EINVAL, "retrieve it a second time -> -EINVAL");
        CHECK_NERRNO(luo_session_retrieve(l, conf_note_get("longname", name, sizeof(name)), &s2), 0,
                     "the session with the longest name came through too");
        if (v4) {
                bool incoming = false;
                CHECK_NERRNO(luo_session_get_state(l, s, &st, &incoming), 0, "v4: session state");
                harness_check(incoming && st == LUO_STATE_UPDATED, "v4: retrieved session is incoming and updated");
        }

        CHECK_NERRNO(luo_session_retrieve_fd(l, s, 1, &m), 0, "retrieve token 1");
        harness_check(m >= 0 && conf_memfd_check(m, MEMFD_SIZE, 1), "token 1: size and every byte unchanged");
        CHECK_NERRNO(fd_classify(m, &info), 0, "fd_classify(retrieved memfd)");
        harness_check(info.kind == FD_KIND_MEMFD, "a retrieved memfd is a memfd again (%s)", fd_kind_to_string(info.kind));
        if (m >= 0)
                close(m);
        m = -1;
        CHECK_NERRNO(luo_session_retrieve_fd(l, s, UINT64_MAX, &m), 0, "retrieve token 2^64-1");
        harness_check(m >= 0 && conf_memfd_check(m, 4096, 2), "token 2^64-1: contents unchanged");
        if (m >= 0)
                close(m);
        CHECK_NERRNO(luo_session_retrieve_fd(l, s, 7, &m), ENOENT, "the pipe's token was never preserved -> -ENOENT");
        if (v4)
                CHECK_NERRNO(luo_session_retrieve_fd(l, s, 3, &m), ENOENT, "v4: the unpreserved token 3 is gone -> -ENOENT");

        CHECK_NERRNO(luo_session_finish(l, s), 0, "luo_session_finish(lib-conf)");
        r = luo_session_finish(l, s2);
        CHECK_NERRNO(r, 0, "luo_session_finish(long name)");
        if (v4)
                CHECK_NERRNO(luo_finish(l), 0, "v4: global FINISH event");
        luo_free(l);
}

int main(int argc, char **argv) {
        conf_init(argc, argv);
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
