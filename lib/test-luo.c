/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for lib/luo.c without a LUO kernel.
 *
 * Real files answer the "not LUO" cases (missing path, /dev/null, a regular file).
 * For the ABI paths this program defines its own ioctl(), which the static library
 * binds to instead of libc's: a small fake of the four kernel ABIs' dispatchers as
 * shared/spec/luo-abi.md describes them (size rules, EINVAL for unknown numbers). It
 * records every command so the tests can check what the library sent: the probe order,
 * that 0xBA04-0xBA07 are never probed, the v4 vs upstream struct sizes and numbers,
 * and that invalid names never reach the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "linux/liveupdate.h"
#include "lu/liveupdate-v4.h"
#include "luo.h"
#include "test-helpers.h"

typedef enum { FAKE_UPSTREAM, FAKE_UPSTREAM_MM, FAKE_V4, FAKE_V1, FAKE_G1 } FakeAbi;

static struct {
        FakeAbi abi;
        int device_fd;        /* fds the fake answers for; everything else goes to the kernel */
        int session_fd;
        int new_fd;           /* what CREATE/RETRIEVE/RESTORE hand out */
        unsigned long log[64];
        uint32_t log_size[64];
        unsigned n_log;
        uint8_t last_arg[128];
} fake;

static int fake_fail(int e) {
        errno = e;
        return -1;
}

/* The size-prefixed struct rule (spec §1.3). */
static int fake_check_size(const void *arg, uint32_t min) {
        uint32_t size;

        memcpy(&size, arg, sizeof(size));
        return size < min ? -EINVAL : 0;
}

static int fake_device(unsigned long cmd, void *arg) {
        uint32_t size;

        memcpy(&size, arg, sizeof(size));
        switch (fake.abi) {
        case FAKE_V1:
                if (cmd == LUO_V1_IOCTL_GET_STATE) {
                        uint32_t state = 0;
                        memcpy(arg, &state, sizeof(state));
                        return 0;
                }
                return fake_fail(ENOTTY);

        case FAKE_G1:
                if (cmd == 0xBA03) {
                        if (size < 8)
                                return fake_fail(EINVAL);
                        uint32_t state = 1;
                        memcpy((uint8_t *) arg + 4, &state, 4);
                        return 0;
                }
                if ((cmd & 0xff) <= 0x06 && (cmd & ~0xffUL) != 0xBA00)
                        return fake_fail(ENOTTY);
                if (cmd == 0xBA00 || cmd == 0xBA02)
                        return fake_fail(size < 16 ? EINVAL : EBADF);
                return fake_fail(EINVAL);

        case FAKE_V4:
                if (cmd == LUO_V4_IOCTL_GET_STATE) {
                        if (size < 8)
                                return fake_fail(EINVAL);
                        uint32_t state = LUO_V4_STATE_NORMAL;
                        memcpy((uint8_t *) arg + 4, &state, 4);
                        return 0;
                }
                if (cmd == LUO_V4_IOCTL_SET_EVENT)
                        return size < 8 ? fake_fail(EINVAL) : 0;
                if (cmd == LUO_V4_IOCTL_CREATE_SESSION || cmd == LUO_V4_IOCTL_RETRIEVE_SESSION) {
                        uint32_t min = cmd == LUO_V4_IOCTL_CREATE_SESSION ? 64 : 72;
                        if (fake_check_size(arg, min) < 0)
                                return fake_fail(EINVAL);
                        memcpy(fake.last_arg, arg, min);
                        memcpy((uint8_t *) arg + 4, &fake.new_fd, 4);
                        return 0;
                }
                if ((cmd & 0xff) <= 0x03 && (cmd & ~0xffUL) != 0xBA00)
                        return fake_fail(ENOTTY);
                return fake_fail(EINVAL);

        case FAKE_UPSTREAM:
        case FAKE_UPSTREAM_MM:
                if (cmd == LIVEUPDATE_IOCTL_CREATE_SESSION || cmd == LIVEUPDATE_IOCTL_RETRIEVE_SESSION) {
                        if (fake_check_size(arg, 72) < 0)
                                return fake_fail(EINVAL);
                        memcpy(fake.last_arg, arg, 72);
                        memcpy((uint8_t *) arg + 4, &fake.new_fd, 4);
                        return 0;
                }
                if ((cmd & 0xff) <= 0x01 && (cmd & ~0xffUL) != 0xBA00)
                        return fake_fail(ENOTTY);
                return fake_fail(EINVAL);
        }
        return fake_fail(EINVAL);
}

static int fake_session(unsigned long cmd, void *arg) {
        bool v4 = fake.abi == FAKE_V4;
        uint32_t min;

        switch (cmd) {
        case 0xBA40: min = 16; break;                         /* PRESERVE_FD, both */
        case 0xBA41: min = 16; break;                         /* RETRIEVE_FD / v4 UNPRESERVE_FD */
        case 0xBA42: min = v4 ? 16 : 8; break;                /* v4 RESTORE_FD / FINISH */
        case 0xBA43:
                if (v4)
                        min = 12;                             /* v4 SESSION_GET_STATE */
                else if (fake.abi == FAKE_UPSTREAM_MM)
                        min = 72;                             /* linux-mm GET_NAME */
                else
                        return fake_fail(EINVAL);             /* out of the upstream table */
                break;
        case 0xBA44:
                if (!v4)
                        return fake_fail(EINVAL);
                min = 8;                                      /* v4 SESSION_SET_EVENT */
                break;
        default:
                return fake_fail(EINVAL);
        }
        if (fake_check_size(arg, min) < 0)
                return fake_fail(EINVAL);
        memcpy(fake.last_arg, arg, min);

        if ((!v4 && cmd == 0xBA41) || (v4 && cmd == 0xBA42))
                memcpy((uint8_t *) arg + 4, &fake.new_fd, 4);
        if (v4 && cmd == 0xBA43) {
                uint32_t state = LUO_V4_STATE_UPDATED;
                ((uint8_t *) arg)[4] = 1;
                memcpy((uint8_t *) arg + 8, &state, 4);
        }
        if (!v4 && cmd == 0xBA43)
                memcpy((uint8_t *) arg + 8, "from-kernel", sizeof("from-kernel"));
        return 0;
}

/* Replaces libc's ioctl() for this program. */
int ioctl(int fd, unsigned long cmd, ...) {
        va_list ap;
        void *arg;

        va_start(ap, cmd);
        arg = va_arg(ap, void *);
        va_end(ap);

        if (fd != fake.device_fd && fd != fake.session_fd)
                return (int) syscall(SYS_ioctl, fd, cmd, arg);

        if (fake.n_log < ELEMENTSOF(fake.log)) {
                uint32_t size;
                memcpy(&size, arg, sizeof(size));
                fake.log[fake.n_log] = cmd;
                fake.log_size[fake.n_log] = size;
                fake.n_log++;
        }
        return fd == fake.device_fd ? fake_device(cmd, arg) : fake_session(cmd, arg);
}

static void fake_reset(FakeAbi abi) {
        fake.abi = abi;
        fake.n_log = 0;
        memset(fake.last_arg, 0, sizeof(fake.last_arg));
}

static void test_open_not_luo(void) {
        char path[] = "/tmp/test-luo-XXXXXX";
        Luo *l = (Luo *) 1;
        LuoAbi abi;
        int fd;

        TEST_ERRNO(luo_open("/nonexistent/liveupdate", &l), ENOENT);
        TEST_ASSERT(l == NULL);
        if (access(LUO_DEVICE_PATH, F_OK) < 0)
                TEST_ERRNO(luo_open(NULL, &l), ENOENT);

        /* A device that knows none of the LUO numbers answers ENOTTY to every probe. */
        TEST_ERRNO(luo_open("/dev/null", &l), ENOTTY);
        TEST_ASSERT(l == NULL);
        TEST_ERRNO(luo_open("/", &l), EISDIR);

        fd = mkstemp(path);
        TEST_ASSERT(fd >= 0);
        if (fd >= 0) {
                TEST_ERRNO(luo_open(path, &l), ENOTTY);
                TEST_ERRNO(luo_detect_abi(fd, &abi), ENOTTY);
                /* On failure luo_open_fd() leaves the fd with the caller. */
                TEST_ERRNO(luo_open_fd(fd, &l), ENOTTY);
                TEST_ASSERT(fcntl(fd, F_GETFD) >= 0);
                close(fd);
                unlink(path);
        }

        TEST_ERRNO(luo_open(NULL, NULL), EINVAL);
        TEST_ERRNO(luo_open_fd(-1, &l), EBADF);
        TEST_ERRNO(luo_open_fd(0, NULL), EINVAL);
        TEST_ERRNO(luo_detect_abi(-1, &abi), EBADF);
        TEST_ERRNO(luo_detect_abi(0, NULL), EINVAL);
        TEST_ASSERT(luo_free(NULL) == NULL);
}

/* Opens a Luo over the fake with the given ABI; the device fd is a real fd (for close()). */
static Luo *fake_open(FakeAbi abi, int expect) {
        Luo *l = NULL;
        int fd, r;

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        TEST_ASSERT(fd >= 0);
        fake.device_fd = fd;
        fake_reset(abi);
        r = luo_open_fd(fd, &l);
        if (expect == 0 ? r < 0 : r != -expect) {
                fprintf(stderr, "luo_open_fd(fake %d) = %d, expected %d\n", abi, r, -expect);
                test_failures++;
        }
        if (r < 0)
                close(fd);

        /* Detection is side-effect free: only the three probe numbers, never 0xBA04-0xBA07. */
        for (unsigned i = 0; i < fake.n_log; i++) {
                unsigned long c = fake.log[i];
                TEST_ASSERT(c == LUO_V1_IOCTL_GET_STATE || c == 0xBA00 || c == 0xBA03);
                TEST_ASSERT(!(c >= 0xBA04 && c <= 0xBA07));
        }
        return l;
}

static void test_detect(void) {
        LuoAbi abi;
        Luo *l;

        l = fake_open(FAKE_V1, EPROTONOSUPPORT);
        TEST_ASSERT(l == NULL);
        TEST_ASSERT(fake.n_log == 1 && fake.log[0] == 0x8004BA03);

        l = fake_open(FAKE_G1, EPROTONOSUPPORT);
        TEST_ASSERT(l == NULL);
        TEST_ASSERT(fake.n_log == 3 && fake.log[0] == 0x8004BA03 && fake.log[1] == 0xBA00 &&
                    fake.log[2] == 0xBA03);
        TEST_ASSERT(fake.log_size[1] == 8 && fake.log_size[2] == 8);

        l = fake_open(FAKE_V4, 0);
        TEST_ASSERT(luo_get_abi(l) == LUO_ABI_V4);
        TEST_ASSERT(fake.n_log == 2);
        TEST_ASSERT(luo_get_fd(l) == fake.device_fd);
        TEST_ASSERT(luo_session_name_max(l) == LUO_V4_NAME_MAX);
        l = luo_free(l);

        l = fake_open(FAKE_UPSTREAM, 0);
        TEST_ASSERT(luo_get_abi(l) == LUO_ABI_UPSTREAM);
        TEST_ASSERT(fake.n_log == 3);
        TEST_ASSERT(luo_session_name_max(l) == LUO_NAME_MAX);
        /* Detection on an open handle's fd gives the same answer. */
        TEST_ERRNO(luo_detect_abi(luo_get_fd(l), &abi), 0);
        TEST_ASSERT(abi == LUO_ABI_UPSTREAM);
        l = luo_free(l);
}

static void test_names(FakeAbi fabi) {
        char name[80];
        int sfd = -1;
        Luo *l;

        l = fake_open(fabi, 0);
        if (!l)
                return;

        fake.new_fd = 42;
        fake.n_log = 0;
        TEST_ERRNO(luo_session_create(l, NULL, &sfd), EINVAL);
        TEST_ERRNO(luo_session_create(l, "", &sfd), EINVAL);
        TEST_ERRNO(luo_session_create(l, "a/b", &sfd), EINVAL);
        TEST_ERRNO(luo_session_create(l, "tab\there", &sfd), EINVAL);
        TEST_ERRNO(luo_session_create(l, "caf\xc3\xa9", &sfd), EINVAL);
        TEST_ERRNO(luo_session_create(l, "ok", NULL), EINVAL);
        memset(name, 'x', sizeof(name));
        name[luo_session_name_max(l) + 1] = '\0';
        TEST_ERRNO(luo_session_create(l, name, &sfd), EINVAL);
        memset(name, 'x', sizeof(name));
        name[LUO_NAME_MAX + 1] = '\0';
        TEST_ERRNO(luo_session_retrieve(l, name, &sfd), EINVAL);
        TEST_ERRNO(luo_session_retrieve(l, "", &sfd), EINVAL);
        TEST_ERRNO(luo_session_retrieve(l, NULL, &sfd), EINVAL);
        TEST_ERRNO(luo_session_retrieve(l, "ok", NULL), EINVAL);
        /* None of those reached the kernel. */
        TEST_ASSERT(fake.n_log == 0);
        TEST_ASSERT(sfd == -1);

        /* The longest legal name goes through, NUL-terminated inside the kernel's buffer. */
        memset(name, 'x', sizeof(name));
        name[luo_session_name_max(l)] = '\0';
        TEST_ERRNO(luo_session_create(l, name, &sfd), 0);
        TEST_ASSERT(sfd == 42);
        TEST_ASSERT(fake.n_log == 1);
        if (fabi == FAKE_V4) {
                TEST_ASSERT(fake.log[0] == 0xBA02 && fake.log_size[0] == 64);
                TEST_ASSERT(fake.last_arg[8 + LUO_V4_NAME_MAX] == '\0');
        } else {
                TEST_ASSERT(fake.log[0] == 0xBA00 && fake.log_size[0] == 72);
                TEST_ASSERT(fake.last_arg[8 + LUO_NAME_MAX] == '\0');
        }
        TEST_ASSERT(memcmp(fake.last_arg + 8, name, strlen(name)) == 0);

        /* Retrieve takes up to 63 bytes on both ABIs (v4's 72-byte retrieve struct). */
        memset(name, 'y', sizeof(name));
        name[LUO_NAME_MAX] = '\0';
        fake.n_log = 0;
        TEST_ERRNO(luo_session_retrieve(l, name, &sfd), 0);
        TEST_ASSERT(fake.n_log == 1);
        TEST_ASSERT(fake.log[0] == (fabi == FAKE_V4 ? 0xBA03UL : 0xBA01UL));
        TEST_ASSERT(fake.log_size[0] == 72);
        TEST_ASSERT(fake.last_arg[8 + LUO_NAME_MAX] == '\0');
        TEST_ASSERT(memcmp(fake.last_arg + 8, name, LUO_NAME_MAX) == 0);

        /* A kernel that claims success without an fd is reported, not trusted. */
        fake.new_fd = -1;
        TEST_ERRNO(luo_session_create(l, "s", &sfd), EIO);

        luo_free(l);
}

static void test_session_ops(FakeAbi fabi) {
        bool v4 = fabi == FAKE_V4, incoming = false;
        char name[64];
        LuoState st;
        int fd = -1;
        Luo *l;

        l = fake_open(fabi, 0);
        if (!l)
                return;
        fake.session_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        TEST_ASSERT(fake.session_fd >= 0);
        fake.new_fd = 77;
        fake.n_log = 0;

        /* Argument checks before any ioctl. */
        TEST_ERRNO(luo_session_preserve_fd(l, -1, 3, 1), EBADF);
        TEST_ERRNO(luo_session_preserve_fd(l, fake.session_fd, -1, 1), EBADF);
        TEST_ERRNO(luo_session_retrieve_fd(l, -1, 1, &fd), EBADF);
        TEST_ERRNO(luo_session_retrieve_fd(l, fake.session_fd, 1, NULL), EINVAL);
        TEST_ERRNO(luo_session_finish(l, -1), EBADF);
        TEST_ERRNO(luo_session_set_event(l, fake.session_fd, 4), EINVAL);
        TEST_ERRNO(luo_session_get_state(l, fake.session_fd, NULL, NULL), EINVAL);
        TEST_ERRNO(luo_get_state(l, NULL), EINVAL);
        TEST_ERRNO(luo_session_get_name(l, -1, name), EBADF);
        TEST_ASSERT(fake.n_log == 0);

        TEST_ERRNO(luo_session_preserve_fd(l, fake.session_fd, 5, 0x1122334455667788ULL), 0);
        TEST_ASSERT(fake.log[fake.n_log - 1] == 0xBA40 && fake.log_size[fake.n_log - 1] == 16);
        {
                uint64_t token;
                int32_t pfd;
                memcpy(&pfd, fake.last_arg + 4, 4);
                memcpy(&token, fake.last_arg + 8, 8);
                TEST_ASSERT(pfd == 5 && token == 0x1122334455667788ULL);
        }

        /* Upstream RETRIEVE_FD is 0x41; on v4 0x41 would unpreserve, it must be RESTORE_FD 0x42. */
        TEST_ERRNO(luo_session_retrieve_fd(l, fake.session_fd, 9, &fd), 0);
        TEST_ASSERT(fd == 77);
        TEST_ASSERT(fake.log[fake.n_log - 1] == (v4 ? 0xBA42UL : 0xBA41UL));

        TEST_ERRNO(luo_session_finish(l, fake.session_fd), 0);
        if (v4) {
                uint32_t ev;
                TEST_ASSERT(fake.log[fake.n_log - 1] == 0xBA44);
                memcpy(&ev, fake.last_arg + 4, 4);
                TEST_ASSERT(ev == LUO_V4_EVENT_FINISH);
        } else
                TEST_ASSERT(fake.log[fake.n_log - 1] == 0xBA42 && fake.log_size[fake.n_log - 1] == 8);

        if (v4) {
                TEST_ERRNO(luo_session_unpreserve_fd(l, fake.session_fd, 9), 0);
                TEST_ASSERT(fake.log[fake.n_log - 1] == 0xBA41);
                TEST_ERRNO(luo_session_get_state(l, fake.session_fd, &st, &incoming), 0);
                TEST_ASSERT(st == LUO_STATE_UPDATED && incoming);
                TEST_ERRNO(luo_session_set_event(l, fake.session_fd, LUO_V4_EVENT_PREPARE), 0);
                TEST_ERRNO(luo_get_state(l, &st), 0);
                TEST_ASSERT(st == LUO_STATE_NORMAL);
                unsigned before = fake.n_log;
                TEST_ERRNO(luo_prepare(l), 0);
                TEST_ERRNO(luo_cancel(l), 0);
                TEST_ERRNO(luo_finish(l), 0);
                TEST_ASSERT(fake.n_log == before + 3 && fake.log[before] == 0xBA01);
                /* 0xBA43 is SESSION_GET_STATE on v4: GET_NAME is refused without asking. */
                before = fake.n_log;
                TEST_ERRNO(luo_session_get_name(l, fake.session_fd, name), EOPNOTSUPP);
                TEST_ASSERT(fake.n_log == before);
        } else {
                unsigned before = fake.n_log;
                TEST_ERRNO(luo_session_unpreserve_fd(l, fake.session_fd, 9), EOPNOTSUPP);
                TEST_ERRNO(luo_session_get_state(l, fake.session_fd, &st, &incoming), EOPNOTSUPP);
                TEST_ERRNO(luo_session_set_event(l, fake.session_fd, 0), EOPNOTSUPP);
                TEST_ERRNO(luo_get_state(l, &st), EOPNOTSUPP);
                /* No global events upstream: successful no-ops that never touch the device. */
                TEST_ERRNO(luo_prepare(l), 0);
                TEST_ERRNO(luo_cancel(l), 0);
                TEST_ERRNO(luo_finish(l), 0);
                TEST_ASSERT(fake.n_log == before);

                if (fabi == FAKE_UPSTREAM_MM) {
                        TEST_ERRNO(luo_session_get_name(l, fake.session_fd, name), 0);
                        TEST_STREQ(name, "from-kernel");
                } else {
                        TEST_ERRNO(luo_session_get_name(l, fake.session_fd, name), EOPNOTSUPP);
                        /* The answer is remembered: no second probe. */
                        before = fake.n_log;
                        TEST_ERRNO(luo_session_get_name(l, fake.session_fd, name), EOPNOTSUPP);
                        TEST_ASSERT(fake.n_log == before);
                }
        }

        close(fake.session_fd);
        fake.session_fd = -1;
        luo_free(l);
}

static void test_null_handle(void) {
        char name[64];
        LuoState st;
        int fd;

        TEST_ERRNO(luo_session_create(NULL, "x", &fd), EINVAL);
        TEST_ERRNO(luo_session_retrieve(NULL, "x", &fd), EINVAL);
        TEST_ERRNO(luo_session_preserve_fd(NULL, 3, 4, 1), EINVAL);
        TEST_ERRNO(luo_session_unpreserve_fd(NULL, 3, 1), EINVAL);
        TEST_ERRNO(luo_session_retrieve_fd(NULL, 3, 1, &fd), EINVAL);
        TEST_ERRNO(luo_session_finish(NULL, 3), EINVAL);
        TEST_ERRNO(luo_session_get_name(NULL, 3, name), EINVAL);
        TEST_ERRNO(luo_session_get_state(NULL, 3, &st, NULL), EINVAL);
        TEST_ERRNO(luo_session_set_event(NULL, 3, 0), EINVAL);
        TEST_ERRNO(luo_get_state(NULL, &st), EINVAL);
        TEST_ERRNO(luo_prepare(NULL), EINVAL);
        TEST_ERRNO(luo_cancel(NULL), EINVAL);
        TEST_ERRNO(luo_finish(NULL), EINVAL);
        TEST_ERRNO(luo_get_fd(NULL), EINVAL);
        TEST_ASSERT(luo_get_abi(NULL) == LUO_ABI_UNKNOWN);
        TEST_ASSERT(luo_session_name_max(NULL) == 0);
}

static void test_strings(void) {
        LuoAbi abi;

        for (int i = 0; i < _LUO_ABI_MAX; i++) {
                const char *s = luo_abi_to_string((LuoAbi) i);
                TEST_ASSERT(s != NULL);
                TEST_ERRNO(luo_abi_from_string(s, &abi), 0);
                TEST_ASSERT(abi == (LuoAbi) i);
        }
        TEST_STREQ(luo_abi_to_string(LUO_ABI_UPSTREAM), "upstream");
        TEST_STREQ(luo_abi_to_string(LUO_ABI_V4), "v4");
        TEST_STREQ(luo_abi_to_string(LUO_ABI_UNKNOWN), "unknown");
        TEST_ASSERT(luo_abi_to_string(_LUO_ABI_MAX) == NULL);
        TEST_ERRNO(luo_abi_from_string("V4", &abi), EINVAL);
        TEST_ERRNO(luo_abi_from_string("", &abi), EINVAL);
        TEST_ERRNO(luo_abi_from_string(NULL, &abi), EINVAL);
        TEST_ERRNO(luo_abi_from_string("v4", NULL), EINVAL);

        TEST_STREQ(luo_state_to_string(LUO_STATE_NORMAL), "normal");
        TEST_STREQ(luo_state_to_string(LUO_STATE_PREPARED), "prepared");
        TEST_STREQ(luo_state_to_string(LUO_STATE_FROZEN), "frozen");
        TEST_STREQ(luo_state_to_string(LUO_STATE_UPDATED), "updated");
        TEST_STREQ(luo_state_to_string(LUO_STATE_UNDEFINED), "undefined");
        TEST_ASSERT(luo_state_to_string((LuoState) 5) == NULL);
}

/*
 * Linux 7.1 against 7.2 (spec §8), told apart by GET_NAME on the first session: the file limit
 * is assumed until a session answers, then dropped where GET_NAME works; a retrieved session is
 * checked against the name asked for where the kernel can name it.
 */
static void test_kernel_model(FakeAbi fabi) {
        int sfd = -1, dup_fd;
        Luo *l;

        l = fake_open(fabi, 0);
        if (!l)
                return;
        TEST_ASSERT(luo_session_files_max(l) == LUO_FILES_PER_SESSION);
        fake.session_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        TEST_ASSERT(fake.session_fd >= 0);
        /* create and retrieve hand out a dup of the fake's session fd, so it is asked again */
        dup_fd = fcntl(fake.session_fd, F_DUPFD_CLOEXEC, 100);
        TEST_ASSERT(dup_fd >= 0);
        fake.new_fd = fake.session_fd;
        fake.n_log = 0;
        TEST_ERRNO(luo_session_create(l, "first", &sfd), 0);
        if (fabi == FAKE_UPSTREAM_MM) {
                TEST_ASSERT(fake.n_log == 2 && fake.log[1] == 0xBA43);   /* create, then the GET_NAME probe */
                TEST_ASSERT(luo_session_files_max(l) == 0);
                /* the fake names every session "from-kernel" */
                fake.session_fd = dup_fd;
                fake.new_fd = dup_fd;
                TEST_ERRNO(luo_session_retrieve(l, "from-kernel", &sfd), 0);
                TEST_ASSERT(sfd == dup_fd);
                TEST_ERRNO(luo_session_retrieve(l, "other", &sfd), EBADMSG);
                TEST_ASSERT(fcntl(dup_fd, F_GETFD) < 0 && errno == EBADF);   /* closed */
                dup_fd = -1;
        } else {
                if (fabi == FAKE_UPSTREAM)
                        TEST_ASSERT(fake.n_log == 2 && fake.log[1] == 0xBA43);   /* asked once: EINVAL */
                else
                        TEST_ASSERT(fake.n_log == 1);                              /* v4: never asked */
                TEST_ASSERT(luo_session_files_max(l) == LUO_FILES_PER_SESSION);
                fake.n_log = 0;
                TEST_ERRNO(luo_session_retrieve(l, "other", &sfd), 0);
                TEST_ASSERT(fake.n_log == 1);                                      /* the answer is remembered */
        }
        if (dup_fd >= 0)
                close(dup_fd);
        close(fake.session_fd);
        fake.session_fd = -1;
        luo_free(l);
}

int main(void) {
        fake.device_fd = fake.session_fd = -1;

        test_open_not_luo();
        test_detect();
        test_names(FAKE_UPSTREAM);
        test_names(FAKE_V4);
        test_session_ops(FAKE_UPSTREAM);
        test_session_ops(FAKE_UPSTREAM_MM);
        test_session_ops(FAKE_V4);
        test_kernel_model(FAKE_UPSTREAM);
        test_kernel_model(FAKE_UPSTREAM_MM);
        test_kernel_model(FAKE_V4);
        test_null_handle();
        test_strings();
        return test_result("test-luo");
}
