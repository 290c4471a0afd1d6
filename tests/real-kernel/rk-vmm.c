/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rk-vmm: a test VMM for the real-kernel suite with many guest-RAM memfds per VM.
 *
 *   rk-vmm --socket=PATH --vm=ID [--items=N] [--kib=K] [--delegated] [--forget]
 *          [--ready-file=PATH]
 *
 * The example VMM (examples/example-vmm.c) hands over one memfd; this one hands over N
 * (labels ram0..ramN-1, K KiB each, every 8-byte word a function of the VM id, the item
 * and the word's index), so that one VM holds more files than one 7.1 LUO session takes
 * (LUO_SESSION_MAX 128 in kernel/liveupdate/luo_session.c): the daemon must roll over
 * into further sessions. --delegated preserves them into the VM's own session instead
 * (tokens 1..N). --forget hands everything over and then forgets the VM (the daemon
 * closes its sessions before the reboot). Started again after the kexec, it reclaims
 * every item, checks every byte, reports the VM restored and exits 0; any mismatch or
 * error exits 1 with a line naming it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lu-client.h"

#define ITEMS_MAX 1024

static const char *arg_socket, *arg_vm = "vm0", *arg_ready;
static unsigned arg_items = 1, arg_kib = 64;
static bool arg_delegated, arg_forget;

static void say(const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "rk-vmm[%s]: ", arg_vm);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

__attribute__((noreturn)) static void die(LuClient *c, int r, const char *what, unsigned item) {
        say("FAILED: %s (item %u): %s%s%s", what, item, strerror(r < 0 ? -r : r),
            c && *lu_client_last_error(c) ? " — " : "", c ? lu_client_last_error(c) : "");
        exit(1);
}

static uint64_t word_of(unsigned item, size_t i) {
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = arg_vm; *p; p++)
                h = (h ^ (uint8_t) *p) * 1099511628211ULL;
        h ^= (uint64_t) item << 40;
        return h ^ (i * 0x9E3779B97F4A7C15ULL);
}

static int ram_create(unsigned item) {
        size_t size = (size_t) arg_kib * 1024;
        int fd = memfd_create("guest-ram", MFD_CLOEXEC);
        uint64_t *p;

        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) size) < 0)
                return -errno;
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        for (size_t i = 0; i < size / 8; i++)
                p[i] = word_of(item, i);
        munmap(p, size);
        return fd;
}

/* 0 if every word is as written, -EBADMSG (and a line naming the first bad word) if not. */
static int ram_verify(unsigned item, int fd) {
        size_t size = (size_t) arg_kib * 1024;
        const uint64_t *p;
        struct stat st;
        int r = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if ((size_t) st.st_size != size) {
                say("item %u: size %lld, expected %zu", item, (long long) st.st_size, size);
                return -EBADMSG;
        }
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        for (size_t i = 0; i < size / 8; i++)
                if (p[i] != word_of(item, i)) {
                        say("item %u: word %zu is %#" PRIx64 ", expected %#" PRIx64, item, i, p[i], word_of(item, i));
                        r = -EBADMSG;
                        break;
                }
        munmap((void *) p, size);
        return r;
}

static void ready(void) {
        FILE *f;
        if (!arg_ready)
                return;
        f = fopen(arg_ready, "we");
        if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0) {
                say("FAILED: write %s: %m", arg_ready);
                exit(1);
        }
}

static int first_start(LuClient *c) {
        char label[16];
        int session = -1, r;
        bool incoming;

        if (arg_delegated) {
                r = lu_client_session_get(c, &session, &incoming);
                if (r < 0)
                        die(c, r, "get the delegated session", 0);
        }
        for (unsigned i = 0; i < arg_items; i++) {
                int fd = ram_create(i);
                if (fd < 0)
                        die(c, fd, "create guest RAM", i);
                snprintf(label, sizeof(label), "ram%u", i);
                r = arg_delegated ? lu_client_session_preserve(c, session, fd, i + 1) : lu_client_preserve(c, label, fd, NULL);
                if (r < 0)
                        die(c, r, "preserve", i);
                close(fd);   /* the kernel (and the daemon) hold their own references */
        }
        if (session >= 0)
                close(session);
        say("handed over %u memfd(s) of %u KiB%s", arg_items, arg_kib, arg_delegated ? " into my own session" : "");
        if (arg_forget) {
                r = lu_client_forget(c);
                if (r < 0)
                        die(c, r, "forget", 0);
                say("forgot the VM before the update");
                ready();
                return 0;
        }
        ready();
        for (;;) {
                LuEvent ev;
                r = lu_client_next_event(c, -1, &ev);
                if (r < 0)
                        die(c, r, "wait for events", 0);
                if (ev.type == LU_EVENT_PREPARE || ev.type == LU_EVENT_FREEZE) {
                        r = lu_client_ack(c, &ev, true, NULL);
                        if (r < 0)
                                die(c, r, "ack", 0);
                } else if (ev.type == LU_EVENT_RESUME)
                        say("resume (%s: %s)", ev.reason, ev.message);
        }
}

static int restart(LuClient *c) {
        int session = -1, r;
        bool incoming;

        if (arg_delegated) {
                r = lu_client_session_get(c, &session, &incoming);
                if (r < 0)
                        die(c, r, "get the delegated session back", 0);
                if (!incoming)
                        die(c, -ENOENT, "the delegated session is not the incoming one", 0);
        }
        for (unsigned i = 0; i < arg_items;) {
                char labels[LU_CLIENT_RECLAIM_MAX][16];
                const char *lp[LU_CLIENT_RECLAIM_MAX];
                int fds[LU_CLIENT_RECLAIM_MAX];
                unsigned n = arg_items - i < LU_CLIENT_RECLAIM_MAX ? arg_items - i : LU_CLIENT_RECLAIM_MAX;

                if (arg_delegated) {
                        n = 1;
                        r = lu_client_session_retrieve(c, session, i + 1, &fds[0]);
                } else {
                        for (unsigned k = 0; k < n; k++) {
                                snprintf(labels[k], sizeof(labels[k]), "ram%u", i + k);
                                lp[k] = labels[k];
                        }
                        r = lu_client_reclaim_many(c, lp, n, fds, NULL);
                }
                if (r < 0)
                        die(c, r, "reclaim", i);
                for (unsigned k = 0; k < n; k++) {
                        r = ram_verify(i + k, fds[k]);
                        if (r < 0)
                                die(c, r, "verify", i + k);
                        close(fds[k]);
                }
                i += n;
        }
        if (session >= 0)
                close(session);
        say("reclaimed %u memfd(s), every byte intact", arg_items);
        r = lu_client_restored(c);
        if (r < 0)
                die(c, r, "report restored", 0);
        say("RESTORED");
        return 0;
}

int main(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_VM, ARG_ITEMS, ARG_KIB, ARG_DELEGATED, ARG_FORGET, ARG_READY };
        static const struct option options[] = {
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "vm", required_argument, NULL, ARG_VM },
                { "items", required_argument, NULL, ARG_ITEMS },
                { "kib", required_argument, NULL, ARG_KIB },
                { "delegated", no_argument, NULL, ARG_DELEGATED },
                { "forget", no_argument, NULL, ARG_FORGET },
                { "ready-file", required_argument, NULL, ARG_READY },
                {}
        };
        LuClient *c = NULL;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case ARG_SOCKET: arg_socket = optarg; break;
                case ARG_VM: arg_vm = optarg; break;
                case ARG_ITEMS: arg_items = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_KIB: arg_kib = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_DELEGATED: arg_delegated = true; break;
                case ARG_FORGET: arg_forget = true; break;
                case ARG_READY: arg_ready = optarg; break;
                default: return 2;
                }
        if (arg_items < 1 || arg_items > ITEMS_MAX || arg_kib < 4 || arg_kib > 65536 || arg_kib % 4) {
                say("--items must be 1..%d and --kib a multiple of 4 in 4..65536", ITEMS_MAX);
                return 2;
        }
        setvbuf(stderr, NULL, _IOLBF, 0);
        r = lu_client_connect(arg_socket, arg_vm, &c);
        if (r < 0)
                die(c, r, "connect to lu-vfiod", 0);
        r = lu_client_incoming(c) ? restart(c) : first_start(c);
        lu_client_free(c);
        return r < 0 ? 1 : 0;
}
