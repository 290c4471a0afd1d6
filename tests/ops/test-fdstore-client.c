/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run as a Type=notify unit of the real systemd (realstack-notify): the first generation (no
 * LISTEN_FDS) stores three memfds in the fd store with daemon/system/fdstore.c names, stores and
 * removes a fourth, sends READY and STATUS, and SIGKILLs itself. The second generation must get exactly the three back,
 * by name, with their contents. TAP output.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "system/fdstore.h"

static int n, failed;

static void check(int ok, const char *what) {
        printf("%sok %d - %s\n", ok ? "" : "not ", ++n, what);
        failed |= !ok;
}

static int memfd_with(const char *text) {
        int fd = memfd_create("fdstore-test", MFD_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
                abort();
        return fd;
}

static int has(int fd, const char *text) {
        char buf[64] = "";
        ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
        return k == (ssize_t) strlen(text) && memcmp(buf, text, (size_t) k) == 0;
}

int main(void) {
        char ses[FDSTORE_NAME_MAX + 1], item[FDSTORE_NAME_MAX + 1], a[128], b[128];
        const char *kind;
        ListenFds l;
        int r, fd;

        setvbuf(stdout, NULL, _IOLBF, 0);
        (void) fdstore_name_session("luvf:vm-1:0", ses, sizeof(ses));
        (void) fdstore_name_item("vm-1", "ram:node0", item, sizeof(item));

        r = listen_fds_take(&l);
        if (r == 0) {
                check(fdstore_name_session("luvf:vm-1:0", ses, sizeof(ses)) == 0 && strcmp(ses, "ses/luvf/vm-1/0") == 0,
                      "session name encoded without ':'");
                check(fdstore_name_item("vm-1", "ram:node0", item, sizeof(item)) == 0 && strcmp(item, "item/vm-1/ram/node0") == 0,
                      "item name encoded without ':'");
                check(fdstore_name_item("vm-1", "a/b", a, sizeof(a)) == -EINVAL, "a label with '/' is refused");
                check(fdstore_name_parse("item/vm-1/ram/node0", &kind, a, sizeof(a), b, sizeof(b)) == 0 &&
                      strcmp(kind, "item") == 0 && strcmp(a, "vm-1") == 0 && strcmp(b, "ram:node0") == 0, "item name decoded");
                check(fdstore_name_parse("vmm", &kind, a, sizeof(a), b, sizeof(b)) == -EINVAL, "foreign name not ours");
                check(fdstore_enabled(), "NOTIFY_SOCKET is set");
                fd = memfd_with("session");
                check(fdstore_push(ses, fd) == 0, "push session fd");
                fd = memfd_with("item");
                check(fdstore_push(item, fd) == 0, "push item fd");
                fd = memfd_with("state");
                check(fdstore_push(FDSTORE_STATE, fd) == 0, "push state memfd");
                fd = memfd_with("gone");
                check(fdstore_push("ses/luvf/vm-2/0", fd) == 0, "push a session fd to remove");
                check(fdstore_remove("ses/luvf/vm-2/0") == 0, "FDSTOREREMOVE it");
                (void) sd_notify(false, "READY=1\nSTATUS=generation 0 stored");
                printf("# SIGKILL\n");
                raise(SIGKILL);
                return 1;
        }
        printf("# generation 1: %d fds\n", r);
        check(r == 3, "three fds came back through LISTEN_FDS");
        check(getenv("LISTEN_FDS") == NULL, "LISTEN_* unset after taking them");
        fd = listen_fds_pop(&l, ses);
        check(fd >= 0 && has(fd, "session"), "session fd back by name with its content");
        fd = listen_fds_pop(&l, item);
        check(fd >= 0 && has(fd, "item"), "item fd back by name with its content");
        fd = listen_fds_pop(&l, FDSTORE_STATE);
        check(fd >= 0 && has(fd, "state"), "state memfd back by name with its content");
        check(listen_fds_pop(&l, "ses/luvf/vm-2/0") == -ENOENT, "the removed fd did not come back");
        check(listen_fds_done(&l) == 0, "nothing left over");
        (void) sd_notify(false, "READY=1\nSTATUS=generation 1 recovered");
        printf("1..%d\n", n);
        return failed;
}
