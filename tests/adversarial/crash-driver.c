/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon SIGKILLed at every phase of a live update and started again, run as
 * luo-emu's COMMAND (pid 1):
 *
 *   crash-driver PHASE LU_VFIOD     (E2E_DIR = work directory)
 *
 * The daemon without a service manager, so without an fd store: the driver restarts it with
 * nothing, and the VMMs (three child processes speaking the raw protocol, each preserving a
 * 64 KiB memfd with a pattern of its own and keeping its copy) hand over again what the
 * restarted daemon reports lost (docs/protocol.md §5.10a). The same phases with the fd store,
 * under the real systemd 252, are tests/realstack/test-crash.sh (realstack-crash-*); after the
 * kexec only "restored" runs here, since without the fd store a crash during the restore
 * loses it (documented).
 *
 * PHASE (where the SIGKILL lands):
 *   idle            boot 0, every VM handed over, no update
 *   preparing       boot 0, prepare waits for vm-1's ack (vm-0 and vm-2 acked)
 *   prepared        boot 0, after the prepare reply
 *   freezing        boot 0, commit waits for vm-1's freeze ack (vm-0 and vm-2 frozen)
 *   restoring       boot 1, restore started, no VMM came back yet
 *   restoring-some  boot 1, vm-0 reclaimed and restored, vm-1 and vm-2 not yet
 *   restored        boot 1, right after the last VM's "restored" reply
 *
 * Then: the daemon is back, every VMM reconnects (each one told "resume" if an update it
 * took part in was abandoned), nothing is lost, the daemon holds as many fds as before the
 * kill, the update runs again and goes through the kexec; in the next boot every VMM
 * reclaims its memfd and compares the contents, the daemon returns to idle with the fds of
 * a fresh daemon, and exits 0 on SIGTERM (LeakSanitizer in the ASan build).
 */
#include <inttypes.h>

#include "adv-common.h"

#define N_VMS 3
#define RAM_SIZE (64 * 1024)

static int rep_r = -1, rep_w = -1;     /* VMM children report lines "vm-N what" on this pipe */

static bool phase_is(const char *p) {
        return strcmp(adv_name, p) == 0;
}

static void ram_pattern(const char *vm, char *buf, size_t size) {
        for (size_t i = 0; i < size; i++)
                buf[i] = (char) ((i * 131 + 7) ^ (unsigned char) vm[i % strlen(vm)] ^ (unsigned char) (i >> 9));
}

/* SIGKILL the daemon and start it again, with nothing (no service manager). */
static void daemon_crash_restart(const char *when) {
        double t0 = now_s();

        say("SIGKILL the daemon %s", when);
        kill(daemon_pid, SIGKILL);
        CHECK(wait_pid(daemon_pid, 10) == 128 + SIGKILL, "daemon killed");
        start_daemon();
        say("daemon back after %.3f s", now_s() - t0);
}

/* ---- VMMs ---------------------------------------------------------------------------- */

static void report(const char *vm, const char *what) {
        dprintf(rep_w, "%s %s\n", vm, what);
}

/* Connect and claim @vm, retrying while the daemon is away or has not seen the old connection go. */
static int vmm_claim(const char *vm, json_object **ret_hello) {
        char hello[200];
        double end = now_s() + 30;

        snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
        while (now_s() < end) {
                int fd = connect_sock(vmm_sock);
                json_object *r;
                if (fd < 0) {
                        usleep(10000);
                        continue;
                }
                r = request(fd, hello, NULL, 0, 5);
                if (result_of(r)) {
                        *ret_hello = r;
                        return fd;
                }
                json_object_put(r);
                close(fd);
                usleep(10000);
        }
        return -1;
}

static const char *item_state(json_object *hello, const char *label) {
        json_object *items, *l, *st;

        if (!json_object_object_get_ex(result_of(hello), "items", &items))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                json_object *it = json_object_array_get_idx(items, i);
                if (json_object_object_get_ex(it, "label", &l) && strcmp(json_object_get_string(l), label) == 0 &&
                    json_object_object_get_ex(it, "state", &st))
                        return json_object_get_string(st);
        }
        return NULL;
}

/* request() for a VMM: events that come before the reply are reported, not dropped. */
static json_object *vmm_request(const char *vm, int fd, const char *json, const int *fds, size_t n_fds) {
        if (send_fds(fd, json, strlen(json), fds, n_fds) < 0)
                return NULL;
        for (;;) {
                json_object *o = recv_any(fd, 10), *ev;
                if (!o || !json_object_object_get_ex(o, "event", &ev))
                        return o;
                report(vm, json_object_get_string(ev));
                json_object_put(o);
        }
}

enum { HOLD_NONE, HOLD_PREPARE, HOLD_FREEZE };

/*
 * Boot 0 VMM: hand over ram0, ack events (except the one it was told to hold, the first
 * time), report every event; when the daemon goes away, claim the VM again and hand over
 * ram0 again if the daemon reports it lost or does not know it.
 */
static pid_t vmm_boot0(const char *vm, int hold) {
        static char buf[RAM_SIZE];
        pid_t pid = fork();
        int m;

        if (pid < 0)
                bail("fork: %m");
        if (pid > 0)
                return pid;
        ram_pattern(vm, buf, sizeof(buf));
        m = memfd_create("guest-ram", MFD_CLOEXEC);
        if (m < 0 || pwrite(m, buf, sizeof(buf), 0) != (ssize_t) sizeof(buf))
                _exit(10);
        for (bool first = true;; first = false) {
                json_object *h = NULL, *r;
                const char *st;
                int fd = vmm_claim(vm, &h);

                if (fd < 0) {
                        report(vm, "claim-failed");
                        _exit(11);
                }
                st = item_state(h, "ram0");
                if (!st || strcmp(st, "lost") == 0) {
                        r = vmm_request(vm, fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"ram0\"}", &m, 1);
                        report(vm, !result_of(r) ? "preserve-failed" : first ? "preserved" : "re-preserved");
                        json_object_put(r);
                } else {
                        char what[64];
                        snprintf(what, sizeof(what), "kept-%s", st);
                        report(vm, what);
                }
                json_object_put(h);
                report(vm, "ready");
                for (int id = 100;; id++) {
                        json_object *e = recv_any(fd, 3600), *ev, *seq;
                        if (!e) {
                                report(vm, "eof");
                                hold = HOLD_NONE;
                                close(fd);
                                break;
                        }
                        if (json_object_object_get_ex(e, "event", &ev)) {
                                const char *name = json_object_get_string(ev);
                                bool held = (hold == HOLD_PREPARE && strcmp(name, "prepare") == 0) ||
                                            (hold == HOLD_FREEZE && strcmp(name, "freeze") == 0);
                                report(vm, name);
                                if ((strcmp(name, "prepare") == 0 || strcmp(name, "freeze") == 0) && !held &&
                                    json_object_object_get_ex(e, "seq", &seq)) {
                                        char ack[120];
                                        snprintf(ack, sizeof(ack), "{\"id\":%d,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":true}",
                                                 id, json_object_get_int64(seq));
                                        (void) send_str(fd, ack);
                                }
                        }
                        json_object_put(e);
                }
        }
}

/* Boot 1 VMM: claim (incoming), reclaim ram0, compare the 64 KiB, report restored; exit 0 if all held. */
static pid_t vmm_boot1(const char *vm) {
        static char want[RAM_SIZE], got[RAM_SIZE];
        json_object *h = NULL, *r, *inc;
        pid_t pid = fork();
        int fd, m = -1;

        if (pid < 0)
                bail("fork: %m");
        if (pid > 0)
                return pid;
        fd = vmm_claim(vm, &h);
        if (fd < 0)
                _exit(2);
        if (!json_object_object_get_ex(result_of(h), "incoming", &inc) || !json_object_get_boolean(inc))
                _exit(3);
        if (send_str(fd, "{\"id\":2,\"method\":\"reclaim\",\"label\":\"ram0\"}") < 0)
                _exit(4);
        r = recv_reply(fd, 20, &m);
        if (!result_of(r) || m < 0)
                _exit(5);
        ram_pattern(vm, want, sizeof(want));
        if (pread(m, got, sizeof(got), 0) != (ssize_t) sizeof(got) || memcmp(want, got, sizeof(got)) != 0)
                _exit(6);
        r = request(fd, "{\"id\":3,\"method\":\"restored\"}", NULL, 0, 20);
        _exit(result_of(r) ? 0 : 7);
}

/* ---- reports --------------------------------------------------------------------------- */

static char seen[512][48];
static size_t n_seen;

static bool seen_line(const char *line) {
        for (size_t i = 0; i < n_seen; i++)
                if (strcmp(seen[i], line) == 0)
                        return true;
        return false;
}

/* Wait up to @timeout s for the report "@vm @what" (reports are kept, so order does not matter). */
static bool wait_report(const char *vm, const char *what, double timeout) {
        static char part[4096];
        static size_t n_part;
        char want[48];
        double end = now_s() + timeout;

        snprintf(want, sizeof(want), "%s %s", vm, what);
        for (;;) {
                struct pollfd p = { .fd = rep_r, .events = POLLIN };
                int left = (int) ((end - now_s()) * 1000);
                ssize_t n;
                char *nl;

                if (seen_line(want))
                        return true;
                if (left <= 0 || poll(&p, 1, left) <= 0)
                        return false;
                n = read(rep_r, part + n_part, sizeof(part) - 1 - n_part);
                if (n <= 0)
                        return false;
                n_part += (size_t) n;
                part[n_part] = 0;
                while ((nl = strchr(part, '\n'))) {
                        *nl = 0;
                        say("  vmm: %s", part);
                        if (n_seen < ELEMS(seen))
                                snprintf(seen[n_seen++], sizeof(seen[0]), "%.47s", part);
                        n_part -= (size_t) (nl + 1 - part);
                        memmove(part, nl + 1, n_part + 1);
                }
        }
}

static void forget_reports(void) {
        (void) wait_report("-", "-", 0.2);   /* drain what is there */
        n_seen = 0;
}

/* ---- helpers of the update ------------------------------------------------------------- */

static void wait_state(const char *want, double timeout) {
        const char *st = "?";
        for (double end = now_s() + timeout; now_s() < end; usleep(10000)) {
                st = status_state();
                if (strcmp(st, want) == 0)
                        break;
        }
        CHECK(strcmp(st, want) == 0, "daemon state %s (%s)", want, st);
}

/* Send prepare on a connection of its own (it may stay pending); returns that connection. */
static int prepare_async(void) {
        char kernel[300], req[600];
        int fd = connect_sock(ctl_sock);

        if (fd < 0)
                bail("control socket: %s", strerror(-fd));
        write_kernel(kernel, sizeof(kernel));
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        if (send_str(fd, req) < 0)
                bail("send prepare");
        return fd;
}

static bool list_has_lost(void) {
        json_object *r = ctl("{\"id\":3,\"method\":\"list\"}", 5);
        bool lost = !r || strstr(json_object_to_json_string(r), "\"lost\"");
        json_object_put(r);
        return lost;
}

/* prepare + commit; commit must never be answered: the machine reboots. */
static void update(void) {
        int c = prepare_async();
        json_object *r = recv_reply(c, 30, NULL);

        if (!result_of(r))
                bail("prepare failed: %s", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        say("prepared; committing");
        save_int("boot0-failures", failures);
        r = request(c, "{\"id\":11,\"method\":\"commit\"}", NULL, 0, 30);
        bail("commit returned instead of rebooting: %s", r ? json_object_to_json_string(r) : "no reply (timeout)");
}

/* ---- the two boots --------------------------------------------------------------------- */

static const char *const vms[N_VMS] = { "vm-0", "vm-1", "vm-2" };

static void boot0(void) {
        bool aborts = !phase_is("idle");
        int handed, c = -1;
        json_object *r;

        daemon_start();
        (void) status_state();     /* the control connection is open in every count */
        save_int("fresh-fds", count_open_fds_settled());
        for (size_t i = 0; i < N_VMS; i++)
                (void) vmm_boot0(vms[i], i != 1 ? HOLD_NONE : phase_is("preparing") ? HOLD_PREPARE :
                                    phase_is("freezing") ? HOLD_FREEZE : HOLD_NONE);
        for (size_t i = 0; i < N_VMS; i++)
                if (!wait_report(vms[i], "ready", 20))
                        bail("%s did not hand over", vms[i]);
        handed = count_open_fds_settled();
        say("every VM handed over; the daemon holds %d fds", handed);

        if (phase_is("preparing")) {
                c = prepare_async();
                for (size_t i = 0; i < N_VMS; i++)
                        CHECK(wait_report(vms[i], "prepare", 10), "%s got prepare", vms[i]);
                wait_state("preparing", 10);
        } else if (phase_is("prepared") || phase_is("freezing")) {
                c = prepare_async();
                r = recv_reply(c, 30, NULL);
                CHECK(result_of(r) != NULL, "prepared (%s)", r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                if (phase_is("freezing")) {
                        if (send_str(c, "{\"id\":11,\"method\":\"commit\"}") < 0)
                                bail("send commit");
                        for (size_t i = 0; i < N_VMS; i++)
                                CHECK(wait_report(vms[i], "freeze", 10), "%s got freeze", vms[i]);
                        wait_state("freezing", 10);
                }
        } else if (!phase_is("idle")) {
                /* a phase of boot 1: an ordinary update first */
                update();
        }
        forget_reports();

        daemon_crash_restart(adv_name);
        if (c >= 0) {
                r = recv_reply(c, 5, NULL);
                CHECK(!r, "the pending request's connection ended with the daemon");
                json_object_put(r);
                close(c);
        }
        for (size_t i = 0; i < N_VMS; i++) {
                CHECK(wait_report(vms[i], "eof", 10), "%s saw the daemon go", vms[i]);
                CHECK(wait_report(vms[i], "ready", 30), "%s claimed its VM again", vms[i]);
                CHECK(wait_report(vms[i], "re-preserved", 0), "%s: ram0 reported lost and handed over again", vms[i]);
                if (aborts)
                        CHECK(wait_report(vms[i], "resume", 10), "%s told to resume (the update was abandoned)", vms[i]);
                else
                        CHECK(!wait_report(vms[i], "resume", 0.2), "%s not told to resume (there was no update)", vms[i]);
        }
        wait_state("idle", 10);
        CHECK(system("test \"$(cat /sys/kernel/kexec_loaded)\" = 0") == 0, "no kernel image left loaded");
        CHECK(!list_has_lost(), "no item lost");
        (void) status_state();
        expect_fds(handed, "restarted daemon with every VMM back");
        if (failures)
                say("boot 0 failed; trying the update anyway");
        update();
}

static void boot1(void) {
        pid_t pids[N_VMS] = { -1, -1, -1 };
        int fresh = load_int("fresh-fds"), n0 = load_int("boot0-failures"), st;
        json_object *r;

        CHECK(n0 == 0, "boot 0 passed every check (%d failed)", n0);
        daemon_start();
        wait_state("restoring", 10);
        if (phase_is("restoring"))
                daemon_crash_restart("during the restore, before any VMM came back");
        if (phase_is("restoring-some")) {
                pids[0] = vmm_boot1(vms[0]);
                st = wait_pid(pids[0], 30);
                CHECK(st == 0, "vm-0 reclaimed, compared and restored before the crash (status %d)", st);
                wait_state("restoring", 5);
                daemon_crash_restart("during the restore, vm-0 restored, vm-1 and vm-2 not back yet");
        }
        if (phase_is("restoring") || phase_is("restoring-some"))
                wait_state("restoring", 10);
        for (size_t i = 0; i < N_VMS; i++)
                if (pids[i] < 0)
                        pids[i] = vmm_boot1(vms[i]);
        for (size_t i = 0; i < N_VMS; i++) {
                if (phase_is("restoring-some") && i == 0)
                        continue;
                st = wait_pid(pids[i], 40);
                CHECK(st == 0, "%s reclaimed ram0, the 64 KiB match, restored (status %d)", vms[i], st);
        }
        if (phase_is("restored"))
                daemon_crash_restart("right after the last VM's restored reply");
        wait_state("idle", 20);
        r = ctl("{\"id\":20,\"method\":\"timeline\"}", 5);
        {
                json_object *t = json_object_object_get(result_of(r), "timeline"), *res;
                const char *rs = json_object_object_get_ex(t, "result", &res) ? json_object_get_string(res) : "none";
                CHECK(strcmp(rs, "done") == 0, "the update is recorded done (%s)", rs);
        }
        json_object_put(r);
        (void) status_state();
        expect_fds(fresh, "after the restore (every VMM gone): the fds of a fresh daemon");
}

int main(int argc, char **argv) {
        const char *b = getenv("LUO_EMU_BOOT");
        int p[2];

        setvbuf(stdout, NULL, _IOLBF, 0);
        adv_prefix = "crash";
        if (argc != 3) {
                fprintf(stderr, "usage: crash-driver PHASE LU_VFIOD\n");
                return 2;
        }
        adv_name = argv[1];
        if (phase_is("restoring") || phase_is("restoring-some")) {
                fprintf(stderr, "crash-driver: %s needs the fd store: see tests/realstack/test-crash.sh\n", adv_name);
                return 2;
        }
        daemon_bin = argv[2];
        fds_skip_timerfd = true;
        work_dir = getenv("E2E_DIR");
        if (!b || !work_dir)
                bail("run under luo-emu with E2E_DIR set");
        adv_boot = atoi(b);
        snprintf(vmm_sock, sizeof(vmm_sock), "%s/vmm.sock", work_dir);
        snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", work_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", work_dir);
        snprintf(conf_path, sizeof(conf_path), "%s/lu-vfiod.conf", work_dir);
        signal(SIGPIPE, SIG_IGN);
        if (pipe2(p, O_CLOEXEC) < 0)
                bail("pipe: %m");
        rep_r = p[0];
        rep_w = p[1];
        if (adv_boot == 0) {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", work_dir, work_dir);
                if (system(cmd) != 0)
                        bail("cannot create %s", work_dir);
                /* long timeouts and grace: the restart must not be rescued by a deadline */
                write_text(conf_path, "[Update]\nPrepareTimeoutSec=30\nFreezeTimeoutSec=30\n"
                                      "[Restore]\nBindTimeoutSec=5\nReclaimGraceSec=60\nUnclaimedPolicy=release\n");
                boot0();   /* reboots */
        } else if (adv_boot == 1)
                boot1();
        else
                bail("unexpected boot %d", adv_boot);
        return finish_run();
}
