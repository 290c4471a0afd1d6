/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * example-vmm: a pretend VMM built on liblu-vfio-client, showing the whole live update
 * from a VMM's side and used by the end-to-end tests.
 *
 * Fresh start: fill a memfd "guest RAM" with a pattern derived from the VM id, open a
 * VFIO device cdev, bind it to an iommufd and enable MSI-X (the "running guest"), hand
 * both to lu-vfiod (custodian mode) or preserve them into the VM's own session
 * (delegated mode), then serve events: ack prepare, and on freeze disable interrupts
 * and ack. The kexec kills it. Started again after the reboot, it sees its VM is
 * incoming, reclaims (or retrieves) both, verifies the pattern and the PCI address,
 * binds the device to a new iommufd and reports the VM restored, then exits 0.
 *
 * Options for tests: --skip-irq-disable (ack freeze with interrupts still on), --no-ack
 * (never acknowledge), --no-ack-freeze (acknowledge prepare only), --veto=prepare|freeze, --crash-after-preserve (exit 3 right after
 * handing over), --ready-file=PATH (created once everything is handed over),
 * --state-file=PATH (remembers the PCI address across the reboot), --duplicate-label,
 * --exit-on-resume, --reconnect (reconnect and re-preserve lost items when the daemon
 * restarts).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-kind.h"
#include "lu-client.h"
#include "pci-addr.h"
#include "vfio-dev.h"

#define MSIX_VECTORS 2
#define TOKEN_RAM 1
#define TOKEN_DEV 2

static const char *arg_socket = NULL;
static const char *arg_vm = "vm0";
static const char *arg_vfio = NULL;           /* /dev/vfio/devices/vfioN, or none */
static const char *arg_ready_file = NULL;
static const char *arg_state_file = NULL;
static const char *arg_veto = NULL;
static unsigned arg_ram_kib = 1024;
static bool arg_delegated = false;
static bool arg_skip_irq_disable = false;
static bool arg_no_ack = false;
static bool arg_no_ack_freeze = false;
static bool arg_crash_after_preserve = false;
static bool arg_duplicate_label = false;
static bool arg_exit_on_resume = false;
static bool arg_reconnect = false;

static void say(const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "example-vmm[%s]: ", arg_vm);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static void die(LuClient *c, int r, const char *what) {
        say("FAILED: %s: %s%s%s", what, strerror(r < 0 ? -r : r), c && *lu_client_last_error(c) ? " — " : "",
            c ? lu_client_last_error(c) : "");
        exit(1);
}

/* Every 8-byte word holds a function of its index and the VM id: any mix-up shows. */
static uint64_t seed_of(const char *vm) {
        uint64_t h = 1469598103934665603ULL;
        for (; *vm; vm++)
                h = (h ^ (uint8_t) *vm) * 1099511628211ULL;
        return h;
}

static uint64_t pattern(uint64_t seed, size_t i) {
        return (seed + i) * 0x9E3779B97F4A7C15ULL;
}

static int ram_create(int *ret) {
        size_t size = (size_t) arg_ram_kib * 1024;
        uint64_t seed = seed_of(arg_vm), *p;
        int fd = memfd_create("guest-ram", MFD_CLOEXEC);

        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                return -errno;
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        for (size_t i = 0; i < size / 8; i++)
                p[i] = pattern(seed, i);
        munmap(p, size);
        *ret = fd;
        return 0;
}

static int ram_verify(int fd) {
        size_t size = (size_t) arg_ram_kib * 1024, bad = 0;
        uint64_t seed = seed_of(arg_vm), *p;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if ((size_t) st.st_size != size) {
                say("guest RAM is %jd bytes, expected %zu", (intmax_t) st.st_size, size);
                return -EBADMSG;
        }
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        for (size_t i = 0; i < size / 8; i++)
                bad += p[i] != pattern(seed, i);
        munmap(p, size);
        if (bad) {
                say("guest RAM: %zu of %zu words differ", bad, size / 8);
                return -EBADMSG;
        }
        return 0;
}

static int device_start(int *ret_dev, char pci[PCI_ADDR_STRING_MAX]) {
        int dev, iommufd, efd[MSIX_VECTORS], r;
        uint32_t ioas;
        FdInfo info;

        dev = open(arg_vfio, O_RDWR | O_CLOEXEC);
        if (dev < 0)
                return -errno;
        r = fd_classify(dev, &info);
        if (r < 0)
                return r;
        if (!info.has_pci)
                return -ENODEV;
        pci_addr_to_string(&info.pci, pci);
        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (iommufd < 0)
                return -errno;
        r = vfio_device_bind_iommufd(dev, iommufd, NULL);
        if (r >= 0)
                r = iommufd_ioas_alloc(iommufd, &ioas);
        if (r >= 0)
                r = vfio_device_attach_pt(dev, ioas, NULL);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < MSIX_VECTORS; i++) {
                efd[i] = eventfd(0, EFD_CLOEXEC);
                if (efd[i] < 0)
                        return -errno;
        }
        r = vfio_device_set_irqs_eventfd(dev, VFIO_PCI_MSIX_IRQ_INDEX, efd, MSIX_VECTORS);
        if (r < 0)
                return r;
        /* iommufd and eventfds stay open for the life of the "guest". */
        *ret_dev = dev;
        return 0;
}

static void write_file(const char *path, const char *text) {
        FILE *f;

        if (!path)
                return;
        f = fopen(path, "we");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                say("cannot write %s: %m", path);
}

static void read_file(const char *path, char *buf, size_t size) {
        FILE *f = path ? fopen(path, "re") : NULL;

        buf[0] = 0;
        if (!f)
                return;
        if (!fgets(buf, (int) size, f))
                buf[0] = 0;
        buf[strcspn(buf, "\n")] = 0;
        fclose(f);
}

/*
 * The daemon went away (crash, upgrade, restart). Its kernel sessions died with it, but we
 * still hold our fds: connect again and hand over whatever it now reports as "lost".
 */
static LuClient *reconnect(LuClient *old, int ram, int dev) {
        LuClient *c = NULL;
        int r = -ECONNREFUSED;

        lu_client_free(old);
        say("daemon connection lost, reconnecting");
        for (int i = 0; i < 1000; i++) {
                r = lu_client_connect(arg_socket, arg_vm, &c);
                if (r >= 0)
                        break;
                usleep(10000);
        }
        if (r < 0)
                die(NULL, r, "reconnect to lu-vfiod");
        /* Unknown (the daemon died before recording it) or lost: hand it over again. */
        if (ram >= 0 && (!lu_client_item_state(c, "ram0") || strcmp(lu_client_item_state(c, "ram0"), "lost") == 0)) {
                r = lu_client_preserve(c, "ram0", ram, NULL);
                if (r < 0)
                        die(c, r, "preserve ram0 again");
        }
        if (dev >= 0 && (!lu_client_item_state(c, "dev0") || strcmp(lu_client_item_state(c, "dev0"), "lost") == 0)) {
                r = lu_client_preserve(c, "dev0", dev, NULL);
                if (r < 0)
                        die(c, r, "preserve dev0 again");
        }
        say("reconnected; lost items handed over again");
        return c;
}

static int first_start(LuClient *c) {
        char pci[PCI_ADDR_STRING_MAX] = "";
        int ram = -1, dev = -1, r;
        uint64_t token;

        if (!arg_delegated && lu_client_item_state(c, "ram0") &&
            strcmp(lu_client_item_state(c, "ram0"), "preserved") == 0) {
                /* Reconnected without a kexec (e.g. restarted VMM): the daemon still holds it all. */
                say("daemon already holds my items; not handing them over again");
                goto serve;
        }
        r = ram_create(&ram);
        if (r < 0)
                die(c, r, "create guest RAM");
        if (arg_vfio) {
                r = device_start(&dev, pci);
                if (r < 0)
                        die(c, r, "start the VFIO device");
                say("device %s (%s) bound to iommufd, MSI-X on", arg_vfio, pci);
                write_file(arg_state_file, pci);
        }
        if (arg_delegated) {
                int session;
                bool incoming;
                r = lu_client_session_get(c, &session, &incoming);
                if (r < 0)
                        die(c, r, "get the delegated session");
                r = lu_client_session_preserve(c, session, ram, TOKEN_RAM);
                if (r < 0)
                        die(c, r, "preserve guest RAM into my session");
                if (dev >= 0) {
                        r = lu_client_session_preserve(c, session, dev, TOKEN_DEV);
                        if (r < 0)
                                die(c, r, "preserve the device into my session");
                }
                close(session);
                say("preserved guest RAM%s in my own session", dev >= 0 ? " and the device" : "");
        } else {
                r = lu_client_preserve(c, "ram0", ram, &token);
                if (r < 0)
                        die(c, r, "preserve ram0");
                say("handed over ram0 (token %" PRIu64 ")", token);
                if (arg_duplicate_label) {
                        r = lu_client_preserve(c, "ram0", ram, NULL);
                        if (r != -EEXIST)
                                die(c, r < 0 ? r : -EINVAL, "duplicate label was not refused with EEXIST");
                        say("duplicate label refused: %s", lu_client_last_error(c));
                }
                if (dev >= 0) {
                        r = lu_client_preserve(c, "dev0", dev, &token);
                        if (r < 0)
                                die(c, r, "preserve dev0");
                        say("handed over dev0 (token %" PRIu64 ")", token);
                }
        }
        if (arg_crash_after_preserve) {
                say("crashing on purpose");
                _exit(3);
        }
serve:
        write_file(arg_ready_file, "ready\n");

        for (;;) {
                LuEvent ev;
                bool veto;

                r = lu_client_next_event(c, -1, &ev);
                if (r == -ECONNRESET && arg_reconnect) {
                        c = reconnect(c, ram, dev);
                        continue;
                }
                if (r < 0)
                        die(c, r, "wait for events");
                switch (ev.type) {
                case LU_EVENT_PREPARE:
                case LU_EVENT_FREEZE:
                        say("event %s (update %" PRIu64 ", deadline %" PRIu64 " ms)", ev.name, ev.update, ev.deadline_ms);
                        if (arg_no_ack || (arg_no_ack_freeze && ev.type == LU_EVENT_FREEZE)) {
                                say("not acknowledging (test)");
                                break;
                        }
                        veto = arg_veto && strcmp(arg_veto, ev.name) == 0;
                        if (ev.type == LU_EVENT_FREEZE && dev >= 0 && !arg_skip_irq_disable && !veto) {
                                r = vfio_device_disable_irqs(dev);
                                if (r < 0)
                                        die(c, r, "disable interrupts");
                                say("vCPUs paused, %d interrupt index(es) disabled", r);
                        }
                        r = lu_client_ack(c, &ev, !veto, veto ? "vetoed by test" : NULL);
                        /* An ack that crosses the end of the update (another VM refused, the operator
                         * cancelled) is refused as not awaited; the resume event is on its way. */
                        if (r == -EINVAL)
                                say("ack refused (%s): the update ended meanwhile, waiting for resume",
                                    lu_client_last_error(c));
                        else if ((r == -EPIPE || r == -ECONNRESET) && arg_reconnect)
                                c = reconnect(c, ram, dev);   /* the daemon died under the ack */
                        else if (r < 0)
                                die(c, r, "ack");
                        break;
                case LU_EVENT_RESUME:
                        say("resume (%s: %s)", ev.reason, ev.message);
                        if (arg_exit_on_resume)
                                return 0;
                        break;
                default:
                        say("ignoring event %s", ev.name);
                }
        }
}

static int restart(LuClient *c) {
        char pci[LU_CLIENT_PCI_MAX] = "", expected[64];
        int ram = -1, dev = -1, r;
        FdInfo info;

        read_file(arg_state_file, expected, sizeof(expected));
        if (arg_delegated) {
                int session;
                bool incoming;
                r = lu_client_session_get(c, &session, &incoming);
                if (r < 0)
                        die(c, r, "get the delegated session back");
                if (!incoming)
                        die(c, -ENOENT, "delegated session is not the incoming one");
                r = lu_client_session_retrieve(c, session, TOKEN_RAM, &ram);
                if (r < 0)
                        die(c, r, "retrieve guest RAM from my session");
                if (arg_vfio) {
                        /* We retrieve it ourselves: not before the device is bound again. */
                        r = lu_client_wait_bound(c, expected, 0);
                        if (r < 0)
                                die(c, r, "wait for the device to be bound");
                        r = lu_client_session_retrieve(c, session, TOKEN_DEV, &dev);
                        if (r < 0)
                                die(c, r, "retrieve the device from my session");
                }
                close(session);
        } else {
                /* Everything in one round trip; a VFIO device is handed back once bound again. */
                const char *labels[] = { "ram0", "dev0" };
                char pcis[2][LU_CLIENT_PCI_MAX];
                int fds[2];

                r = lu_client_reclaim_many(c, labels, arg_vfio ? 2 : 1, fds, pcis);
                if (r < 0)
                        die(c, r, arg_vfio ? "reclaim ram0 and dev0" : "reclaim ram0");
                ram = fds[0];
                if (arg_vfio) {
                        dev = fds[1];
                        snprintf(pci, LU_CLIENT_PCI_MAX, "%s", pcis[1]);
                }
        }
        r = ram_verify(ram);
        if (r < 0)
                die(c, r, "verify guest RAM");
        say("guest RAM reclaimed, pattern intact (%u KiB)", arg_ram_kib);
        if (dev >= 0) {
                char actual[PCI_ADDR_STRING_MAX] = "";
                int iommufd;

                r = fd_classify(dev, &info);
                if (r < 0 || !fd_kind_is_vfio_device(info.kind))
                        die(c, r < 0 ? r : -EBADF, "reclaimed fd is not a VFIO device");
                if (info.has_pci)
                        pci_addr_to_string(&info.pci, actual);
                if (!arg_delegated && strcmp(pci, expected) != 0)
                        die(c, -EBADMSG, "daemon reported a different PCI address");
                if (info.has_pci && strcmp(actual, expected) != 0)
                        die(c, -EBADMSG, "reclaimed device has a different PCI address");
                iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
                if (iommufd < 0)
                        die(c, -errno, "open /dev/iommu");
                r = vfio_device_bind_iommufd(dev, iommufd, NULL);
                if (r < 0)
                        die(c, r, "bind the reclaimed device");
                say("device %s reclaimed and bound to a new iommufd", expected);
        }
        r = lu_client_restored(c);
        if (r < 0)
                die(c, r, "report restored");
        say("RESTORED");
        return 0;
}

int main(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_VM, ARG_VFIO, ARG_READY, ARG_STATE, ARG_RAM, ARG_DELEGATED, ARG_SKIP_IRQ,
               ARG_NO_ACK, ARG_NO_ACK_FREEZE, ARG_VETO, ARG_CRASH, ARG_DUP, ARG_EXIT_RESUME, ARG_RECONNECT };
        static const struct option options[] = {
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "vm", required_argument, NULL, ARG_VM },
                { "vfio", required_argument, NULL, ARG_VFIO },
                { "ready-file", required_argument, NULL, ARG_READY },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "ram-kib", required_argument, NULL, ARG_RAM },
                { "delegated", no_argument, NULL, ARG_DELEGATED },
                { "skip-irq-disable", no_argument, NULL, ARG_SKIP_IRQ },
                { "no-ack", no_argument, NULL, ARG_NO_ACK },
                { "no-ack-freeze", no_argument, NULL, ARG_NO_ACK_FREEZE },
                { "veto", required_argument, NULL, ARG_VETO },
                { "crash-after-preserve", no_argument, NULL, ARG_CRASH },
                { "duplicate-label", no_argument, NULL, ARG_DUP },
                { "exit-on-resume", no_argument, NULL, ARG_EXIT_RESUME },
                { "reconnect", no_argument, NULL, ARG_RECONNECT },
                {}
        };
        LuClient *c = NULL;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case ARG_SOCKET: arg_socket = optarg; break;
                case ARG_VM: arg_vm = optarg; break;
                case ARG_VFIO: arg_vfio = optarg; break;
                case ARG_READY: arg_ready_file = optarg; break;
                case ARG_STATE: arg_state_file = optarg; break;
                case ARG_RAM: arg_ram_kib = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_DELEGATED: arg_delegated = true; break;
                case ARG_SKIP_IRQ: arg_skip_irq_disable = true; break;
                case ARG_NO_ACK: arg_no_ack = true; break;
                case ARG_NO_ACK_FREEZE: arg_no_ack_freeze = true; break;
                case ARG_VETO: arg_veto = optarg; break;
                case ARG_CRASH: arg_crash_after_preserve = true; break;
                case ARG_DUP: arg_duplicate_label = true; break;
                case ARG_EXIT_RESUME: arg_exit_on_resume = true; break;
                case ARG_RECONNECT: arg_reconnect = true; break;
                default: return 2;
                }
        if (arg_ram_kib == 0 || arg_ram_kib > 1024 * 1024)
                arg_ram_kib = 1024;
        setvbuf(stderr, NULL, _IOLBF, 0);

        r = lu_client_connect(arg_socket, arg_vm, &c);
        if (r < 0)
                die(c, r, "connect to lu-vfiod");
        say("connected (ABI %s, daemon %s, %s)", lu_client_abi(c), lu_client_daemon_state(c),
            lu_client_incoming(c) ? "incoming: restoring" : "fresh start");
        r = lu_client_incoming(c) ? restart(c) : first_start(c);
        lu_client_free(c);
        return r < 0 ? 1 : 0;
}
