/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VMM that changes its mind, for the fd store tests: hands over three memfds, takes one
 * back (unpreserve: a session rebuild on the upstream ABI), forgets the VM and registers
 * it again at once. With the daemon's sessions mirrored in the service manager's fd
 * store, none of this may trip over a session copy the store still holds. TAP output.
 *
 *   test-unpreserve-client SOCKET
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lu-client.h"

static int n, failed;

static void check(int ok, const char *what, LuClient *c) {
        printf("%sok %d - %s%s%s\n", ok ? "" : "not ", ++n, what, !ok && c ? ": " : "", !ok && c ? lu_client_last_error(c) : "");
        failed |= !ok;
}

static int memfd(const char *name) {
        int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, 4096) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

int main(int argc, char **argv) {
        LuClient *c = NULL;
        const char *labels[] = { "ram0", "ram1", "ram2" };
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 2) {
                fprintf(stderr, "usage: test-unpreserve-client SOCKET\n");
                return 2;
        }
        for (int round = 0; round < 2; round++) {
                r = lu_client_connect(argv[1], "vm-u", &c);
                check(r >= 0, round ? "connect again after forget" : "connect", c);
                if (r < 0)
                        return 1;
                for (size_t i = 0; i < 3; i++) {
                        int fd = memfd(labels[i]);
                        r = lu_client_preserve(c, labels[i], fd, NULL);
                        close(fd);
                        check(r >= 0, "preserve a memfd", c);
                }
                r = lu_client_unpreserve(c, "ram1");
                check(r >= 0, "unpreserve the middle one (session rebuilt on upstream)", c);
                check(lu_client_item_state(c, "ram1") == NULL || strcmp(lu_client_item_state(c, "ram1"), "preserved") != 0,
                      "ram1 no longer preserved", NULL);
                r = lu_client_unpreserve(c, "ram2");
                check(r >= 0, "unpreserve another one right after", c);
                r = lu_client_forget(c);
                check(r >= 0, "forget the VM", c);
                c = lu_client_free(c);
        }
        printf("1..%d\n", n);
        return failed;
}
