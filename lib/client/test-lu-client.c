/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of liblu-vfio-client against a scripted fake daemon (a thread on a real
 * SEQPACKET socket): hello, fd passing both ways, error replies mapped to errnos, events
 * that arrive while a request waits being queued in order, item states, EOF; then protocol
 * version 2: hello with "reclaim" (and its fallback for a version 1 daemon), the fds of the
 * hello reply served by lu_client_reclaim(), quiet acks and their refusal.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lu-client.h"

static int failures;
#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); failures++; } } while (0)

static char path[108];
static int listen_fd;

static int recv_with_fd(int fd, char *buf, size_t size, int *ret_fd) {
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        *ret_fd = -1;
        if (n <= 0)
                return -1;
        buf[n] = 0;
        if (cm && cm->cmsg_type == SCM_RIGHTS)
                memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
        return (int) n;
}

static void send_with_fd(int fd, const char *msg, int pass) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov = { .iov_base = (void *) msg, .iov_len = strlen(msg) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (pass >= 0) {
                struct cmsghdr *cm;
                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &pass, sizeof(int));
        }
        (void) sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static void send_with_fds(int fd, const char *msg, const int *pass, size_t n) {
        char cbuf[CMSG_SPACE(sizeof(int) * 4)] = {};
        struct iovec iov = { .iov_base = (void *) msg, .iov_len = strlen(msg) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), pass, sizeof(int) * n);
        (void) sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static void *fake_daemon(void *arg) {
        char buf[4096];
        int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC), fd, ok = 1;

        (void) arg;
        /* hello */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"hello\"") && strstr(buf, "\"vm\":\"vm-t\"");
        send_with_fd(c, "{\"id\":1,\"result\":{\"version\":1,\"abi\":\"v4\",\"state\":\"restoring\",\"incoming\":true,"
                        "\"items\":[{\"label\":\"ram0\",\"session\":\"luvf:vm-t:0\",\"state\":\"reclaimable\"}]}}", -1);
        /* preserve: must carry an fd; an event arrives before the reply */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"preserve\"") && fd >= 0;
        if (fd >= 0)
                close(fd);
        send_with_fd(c, "{\"event\":\"prepare\",\"seq\":7,\"update\":3,\"deadline_ms\":500}", -1);
        send_with_fd(c, "{\"id\":2,\"result\":{\"token\":42}}", -1);
        /* second preserve: error reply */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0;
        if (fd >= 0)
                close(fd);
        send_with_fd(c, "{\"id\":3,\"error\":{\"code\":\"label-exists\",\"errno\":17,\"message\":\"label \\\"a\\\" exists\"}}", -1);
        /* ack */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"seq\":7") && strstr(buf, "\"ok\":true");
        send_with_fd(c, "{\"id\":4,\"result\":{}}", -1);
        /* reclaim: reply with a memfd */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"label\":\"dev0\"");
        {
                int m = memfd_create("t", MFD_CLOEXEC);
                (void) ftruncate(m, 12345);
                send_with_fd(c, "{\"id\":5,\"result\":{\"label\":\"dev0\",\"kind\":\"vfio\",\"pci\":\"0000:01:00.0\"}}", m);
                close(m);
        }
        /* multi-label reclaim: two fds in label order in one reply */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"labels\":[\"ram0\",\"dev0\"]") && !strstr(buf, "\"label\":");
        {
                int m[2] = { memfd_create("a", MFD_CLOEXEC), memfd_create("b", MFD_CLOEXEC) };
                (void) ftruncate(m[0], 111);
                (void) ftruncate(m[1], 222);
                send_with_fds(c, "{\"id\":6,\"result\":{\"items\":[{\"label\":\"ram0\",\"kind\":\"memfd\",\"pci\":null},"
                                 "{\"label\":\"dev0\",\"kind\":\"vfio\",\"pci\":\"0000:01:00.0\"}]}}", m, 2);
                close(m[0]);
                close(m[1]);
        }
        /* multi-label reclaim with an unknown label: an error, no fds */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"labels\":[\"ram0\",\"nope\"]");
        send_with_fd(c, "{\"id\":7,\"error\":{\"code\":\"label-unknown\",\"errno\":2,\"message\":\"no item \\\"nope\\\"\"}}", -1);
        /* restored: an unknown error code without errno maps via the code table */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"restored\"");
        send_with_fd(c, "{\"id\":8,\"error\":{\"code\":\"vm-busy\",\"errno\":0,\"message\":\"x\"}}", -1);
        /* an unknown event, then hang up */
        send_with_fd(c, "{\"event\":\"something-new\",\"seq\":8}", -1);
        usleep(20000);
        close(c);
        return (void *) (long) ok;
}

/* Version 2 sessions: a version 1 daemon refusing "reclaim", then a version 2 daemon. */
static void *fake_daemon_v2(void *arg) {
        char buf[4096];
        int c, fd, ok = 1;

        (void) arg;
        c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"reclaim\":true") && strstr(buf, "\"version\":2");
        send_with_fd(c, "{\"id\":1,\"error\":{\"code\":\"invalid-params\",\"errno\":22,\"message\":\"unknown field \\\"reclaim\\\"\"}}", -1);
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"hello\"") && !strstr(buf, "reclaim");
        send_with_fd(c, "{\"id\":2,\"result\":{\"version\":1,\"abi\":\"upstream\",\"state\":\"idle\",\"incoming\":false,\"items\":[]}}", -1);
        /* a version 1 daemon: the ack waits for its reply */
        send_with_fd(c, "{\"event\":\"prepare\",\"seq\":1,\"update\":1,\"deadline_ms\":500}", -1);
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"ack\"") && !strstr(buf, "quiet");
        send_with_fd(c, "{\"id\":3,\"result\":{}}", -1);
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) == -1;   /* the client hangs up */
        close(c);

        c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"reclaim\":true");
        {
                int m = memfd_create("h", MFD_CLOEXEC);
                (void) ftruncate(m, 333);
                send_with_fd(c, "{\"id\":1,\"result\":{\"version\":2,\"abi\":\"upstream\",\"state\":\"restoring\",\"incoming\":true,"
                                "\"items\":[{\"label\":\"ram0\",\"state\":\"reclaimed\"}],"
                                "\"reclaimed\":[{\"label\":\"ram0\",\"kind\":\"memfd\",\"pci\":null}]}}", m);
                close(m);
        }
        /* a quiet ack: no reply; its refusal comes later, as a stray reply */
        send_with_fd(c, "{\"event\":\"freeze\",\"seq\":2,\"update\":1,\"deadline_ms\":500}", -1);
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"ack\"") && strstr(buf, "\"quiet\":true");
        send_with_fd(c, "{\"id\":2,\"error\":{\"code\":\"invalid-params\",\"errno\":22,\"message\":\"update over\"}}", -1);
        send_with_fd(c, "{\"event\":\"resume\",\"seq\":3,\"update\":1,\"reason\":\"failed\"}", -1);
        /* the second reclaim of ram0 asks the daemon */
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) > 0 && strstr(buf, "\"method\":\"reclaim\"") && strstr(buf, "\"label\":\"ram0\"");
        {
                int m = memfd_create("r", MFD_CLOEXEC);
                (void) ftruncate(m, 444);
                send_with_fd(c, "{\"id\":3,\"result\":{\"label\":\"ram0\",\"kind\":\"memfd\",\"pci\":null}}", m);
                close(m);
        }
        ok &= recv_with_fd(c, buf, sizeof(buf), &fd) == -1;
        close(c);
        return (void *) (long) ok;
}

static void test_v2(void) {
        LuClient *c = NULL;
        pthread_t t;
        LuEvent ev;
        struct stat st;
        void *ok;
        int fd = -1;

        pthread_create(&t, NULL, fake_daemon_v2, NULL);
        /* a version 1 daemon: hello again without "reclaim"; acks wait for their reply */
        CHECK(lu_client_connect_reclaim(path, "vm-t", &c) == 0);
        CHECK(c && !lu_client_incoming(c));
        CHECK(lu_client_next_event(c, 2000, &ev) == 0 && ev.type == LU_EVENT_PREPARE);
        CHECK(lu_client_ack(c, &ev, true, NULL) == 0);
        c = lu_client_free(c);

        CHECK(lu_client_connect_reclaim(path, "vm-t", &c) == 0);
        CHECK(c && lu_client_incoming(c));
        /* the fd that came with the hello, without a round trip (the fake answers no reclaim yet) */
        CHECK(lu_client_reclaim(c, "ram0", &fd, NULL) == 0 && fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 333);
        if (fd >= 0)
                close(fd);
        CHECK(lu_client_next_event(c, 2000, &ev) == 0 && ev.type == LU_EVENT_FREEZE);
        CHECK(lu_client_ack(c, &ev, true, NULL) == 0);   /* quiet: returns once sent */
        CHECK(lu_client_next_event(c, 2000, &ev) == 0 && ev.type == LU_EVENT_RESUME);
        CHECK(strstr(lu_client_last_error(c), "update over") != NULL);
        /* taken once: a second reclaim asks the daemon */
        fd = -1;
        CHECK(lu_client_reclaim(c, "ram0", &fd, NULL) == 0 && fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 444);
        if (fd >= 0)
                close(fd);
        lu_client_free(c);
        pthread_join(t, &ok);
        CHECK(ok == (void *) 1L);
}

int main(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        LuClient *c = NULL;
        pthread_t t;
        LuEvent ev;
        uint64_t token = 0;
        char pci[LU_CLIENT_PCI_MAX];
        struct stat st;
        void *ok;
        int fd, r;

        snprintf(path, sizeof(path), "/tmp/test-lu-client.%d.sock", (int) getpid());
        strcpy(sa.sun_path, path);
        listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        unlink(path);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(listen_fd, 1) < 0) {
                perror("listen");
                return 1;
        }
        CHECK(lu_client_connect("/nonexistent/x.sock", "vm-t", &c) == -ENOENT);
        pthread_create(&t, NULL, fake_daemon, NULL);

        CHECK(lu_client_connect(path, "vm-t", &c) == 0);
        CHECK(c && lu_client_incoming(c) && strcmp(lu_client_abi(c), "v4") == 0);
        CHECK(strcmp(lu_client_daemon_state(c), "restoring") == 0);
        CHECK(lu_client_item_state(c, "ram0") && strcmp(lu_client_item_state(c, "ram0"), "reclaimable") == 0);
        CHECK(lu_client_item_state(c, "nope") == NULL);
        CHECK(lu_client_item_session(c, "ram0") && strcmp(lu_client_item_session(c, "ram0"), "luvf:vm-t:0") == 0);
        CHECK(lu_client_item_session(c, "nope") == NULL);

        fd = memfd_create("x", MFD_CLOEXEC);
        CHECK(lu_client_preserve(c, "a", fd, &token) == 0 && token == 42);
        r = lu_client_preserve(c, "a", fd, NULL);
        CHECK(r == -EEXIST);
        CHECK(strstr(lu_client_last_error(c), "label-exists") != NULL);
        close(fd);

        /* the event that came in during the preserve is delivered now */
        CHECK(lu_client_next_event(c, 0, &ev) == 0 && ev.type == LU_EVENT_PREPARE && ev.seq == 7 &&
              ev.update == 3 && ev.deadline_ms == 500);
        CHECK(lu_client_ack(c, &ev, true, NULL) == 0);
        CHECK(lu_client_reclaim(c, "dev0", &fd, pci) == 0 && strcmp(pci, "0000:01:00.0") == 0);
        CHECK(fstat(fd, &st) == 0 && st.st_size == 12345);
        close(fd);
        {
                const char *labels[] = { "ram0", "dev0" }, *bad[] = { "ram0", "nope" };
                char pcis[2][LU_CLIENT_PCI_MAX];
                int fds[2] = { -1, -1 };

                CHECK(lu_client_reclaim_many(c, labels, 0, fds, pcis) == -EINVAL);
                CHECK(lu_client_reclaim_many(c, labels, LU_CLIENT_RECLAIM_MAX + 1, fds, pcis) == -EINVAL);
                CHECK(lu_client_reclaim_many(c, labels, 2, fds, pcis) == 0);
                CHECK(fds[0] >= 0 && fstat(fds[0], &st) == 0 && st.st_size == 111);
                CHECK(fds[1] >= 0 && fstat(fds[1], &st) == 0 && st.st_size == 222);
                CHECK(strcmp(pcis[0], "") == 0 && strcmp(pcis[1], "0000:01:00.0") == 0);
                close(fds[0]);
                close(fds[1]);
                fds[0] = fds[1] = -1;
                CHECK(lu_client_reclaim_many(c, bad, 2, fds, NULL) == -ENOENT);
                CHECK(fds[0] == -1 && fds[1] == -1);
                CHECK(strstr(lu_client_last_error(c), "label-unknown") != NULL);
        }
        CHECK(lu_client_restored(c) == -EBUSY);
        CHECK(lu_client_next_event(c, 2000, &ev) == 0 && ev.type == LU_EVENT_OTHER && strcmp(ev.name, "something-new") == 0);
        CHECK(lu_client_next_event(c, 2000, &ev) == -ECONNRESET);
        lu_client_free(c);

        pthread_join(t, &ok);
        CHECK(ok == (void *) 1L);
        test_v2();
        unlink(path);
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
