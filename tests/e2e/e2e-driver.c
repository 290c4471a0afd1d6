/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * End-to-end driver, run as luo-emu's COMMAND (pid 1 of the emulated machine).
 *
 *   e2e-driver SCENARIO LU_VFIOD EXAMPLE_VMM
 *
 * Boot 0 starts lu-vfiod and example VMMs, drives prepare/commit through the control
 * socket (the emulated kexec then kills everything); boot 1 starts the daemon again,
 * restarted VMMs reclaim, verify and report restored, and the driver checks status and
 * timeline. Some scenarios end within boot 0 (cancel, failed reboot, bad input). Exit
 * 0 only if every check passed. Work directory: $E2E_DIR (recreated on boot 0).
 */
#include <pwd.h>
#include <sys/ioctl.h>

#include "../adversarial/adv-common.h"

static const char *vmm_bin;

/*
 * The fd count of a fresh daemon (boot 0, no client yet, the driver's control connection
 * open), kept across the kexec in a file: an idle daemon that holds nothing any more must
 * be back at it.
 */
static int fresh_fds = -1;

static void e2e_start_daemon(void) {
        char p[400], t[32];
        FILE *f;

        start_daemon();
        if (fresh_fds >= 0)
                return;
        snprintf(p, sizeof(p), "%s/fresh-fds", work_dir);
        if (adv_boot == 0) {
                (void) status_state();   /* the control connection is open in every count */
                fresh_fds = count_open_fds_settled();
                snprintf(t, sizeof(t), "%d\n", fresh_fds);
                write_text(p, t);
                say("a fresh daemon holds %d fds", fresh_fds);
        } else {
                f = fopen(p, "re");
                if (!f || fscanf(f, "%d", &fresh_fds) != 1)
                        bail("no fd count of boot 0 in %s", p);
                fclose(f);
        }
}

/* Idle, every VMM gone and nothing preserved any more: the daemon holds what it held when fresh. */
static void expect_fresh_fds(const char *what) {
        (void) status_state();
        expect_fds(fresh_fds, what);
}

typedef struct Vmm {
        char vm[32];
        int vfio;             /* -1 none */
        bool delegated;
        const char *extra[4];
        pid_t pid;
        char ready[300];
} Vmm;

static void start_vmm(Vmm *v) {
        char a_sock[300], a_vm[64], a_vfio[64], a_ready[400], a_state[400];
        char *argv[16];
        int n = 0;

        snprintf(a_sock, sizeof(a_sock), "--socket=%s", vmm_sock);
        snprintf(a_vm, sizeof(a_vm), "--vm=%s", v->vm);
        snprintf(a_vfio, sizeof(a_vfio), "--vfio=/dev/vfio/devices/vfio%d", v->vfio);
        snprintf(v->ready, sizeof(v->ready), "%s/%s.ready", work_dir, v->vm);
        snprintf(a_ready, sizeof(a_ready), "--ready-file=%s", v->ready);
        snprintf(a_state, sizeof(a_state), "--state-file=%s/%s.state", work_dir, v->vm);
        unlink(v->ready);
        argv[n++] = (char *) vmm_bin;
        argv[n++] = a_sock;
        argv[n++] = a_vm;
        if (v->vfio >= 0)
                argv[n++] = a_vfio;
        argv[n++] = a_ready;
        argv[n++] = a_state;
        if (v->delegated)
                argv[n++] = (char *) "--delegated";
        for (int i = 0; i < 4 && v->extra[i]; i++)
                argv[n++] = (char *) v->extra[i];
        argv[n] = NULL;
        v->pid = spawn(argv);
}

static void wait_ready(Vmm *v, size_t n) {
        double end = now_s() + 20;
        for (size_t i = 0; i < n; i++)
                while (access(v[i].ready, F_OK) < 0) {
                        int st;
                        if (waitpid(v[i].pid, &st, WNOHANG) == v[i].pid)
                                bail("VMM %s exited before it was ready (status %d)", v[i].vm, st);
                        if (now_s() > end)
                                bail("VMM %s not ready", v[i].vm);
                        usleep(5000);
                }
}

static json_object *prepare(double timeout_ms) {
        char kernel[300], req[600];
        write_kernel(kernel, sizeof(kernel));
        if (timeout_ms > 0)
                snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\",\"timeout_ms\":%.0f}", kernel, timeout_ms);
        else
                snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        return ctl(req, 30);
}

/* prepare must succeed, then commit must never be answered: the machine reboots. */
static void prepare_and_commit(const char *commit_json) {
        json_object *r = prepare(0);
        if (!result_of(r))
                bail("prepare failed: %s", r ? json_object_to_json_string(r) : "no reply");
        say("prepared");
        json_object_put(r);
        r = ctl(commit_json ? commit_json : "{\"id\":11,\"method\":\"commit\"}", 30);
        bail("commit returned instead of rebooting: %s", r ? json_object_to_json_string(r) : "no reply (timeout)");
}

static void print_timeline(void) {
        json_object *r = ctl("{\"id\":20,\"method\":\"timeline\"}", 5), *t = json_object_object_get(result_of(r), "timeline");
        json_object *v;

        CHECK(t != NULL, "a timeline was recorded");
        if (t) {
                CHECK(json_object_object_get_ex(t, "result", &v) && strcmp(json_object_get_string(v), "done") == 0,
                      "timeline result is \"done\"");
                say("timeline: %s", json_object_to_json_string_ext(t, JSON_C_TO_STRING_PRETTY));
        }
        json_object_put(r);
}

static bool arg_demo = false;
static void print_timeline_table(void);

static void finish_boot1(Vmm *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int st = wait_pid(v[i].pid, 30);
                CHECK(st == 0, "VMM %s reclaimed, verified and restored (status %d)", v[i].vm, st);
        }
        /* restore completes right after the last restored */
        for (int i = 0; i < 1000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "daemon back to idle after the restore");
        expect_fresh_fds("after the restore, every VMM gone");
        print_timeline();
        if (arg_demo)
                print_timeline_table();
}

static double ms_of(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : -1.0;
}

/* The README demo's closing table. */
static void print_timeline_table(void) {
        json_object *r = ctl("{\"id\":22,\"method\":\"timeline\"}", 5), *t = json_object_object_get(result_of(r), "timeline");
        json_object *vms;

        if (!t) {
                json_object_put(r);
                return;
        }
        printf("\n  Live update %s (%s ABI) — timeline\n", json_object_get_string(json_object_object_get(t, "id")),
               json_object_get_string(json_object_object_get(t, "abi")));
        printf("  %-42s %10.2f ms\n", "prepare (kexec load + VMM acks)", ms_of(t, "prepare_ms"));
        printf("  %-42s %10.2f ms\n", "freeze (commit -> registry write)", ms_of(t, "freeze_ms"));
        printf("  %-42s %10.2f ms\n", "registry write, sync, kexec -> daemon up", ms_of(t, "reboot_to_start_ms"));
        printf("  %-42s %10.2f ms\n", "retrieve everything (after device bind)", ms_of(t, "retrieve_ms"));
        printf("  %-42s %10.2f ms\n", "daemon start -> every VM restored", ms_of(t, "restore_ms"));
        if (json_object_object_get_ex(t, "vms", &vms)) {
                json_object_object_foreach(vms, k, v) {
                        if (ms_of(v, "reclaimed_ms") >= 0)
                                printf("    VM %-12s first reclaim after %8.2f ms, restored after %8.2f ms\n", k,
                                       ms_of(v, "reclaimed_ms"), ms_of(v, "restored_ms"));
                        else
                                printf("    VM %-12s (delegated session)          restored after %8.2f ms\n", k,
                                       ms_of(v, "restored_ms"));
                }
        }
        printf("  %-42s %10.2f ms\n\n", "total (prepare -> restored)", ms_of(t, "total_ms"));
        json_object_put(r);
}

/* ------------------------------------------------------------------ scenarios */

static int scenario_full(size_t n_vms, bool delegated_mix, bool all_delegated, const char *extra) {
        Vmm v[16] = {};

        for (size_t i = 0; i < n_vms; i++) {
                snprintf(v[i].vm, sizeof(v[i].vm), "vm-%zu", i);
                v[i].vfio = (int) i;
                v[i].delegated = all_delegated || (delegated_mix && i % 2 == 1);
                v[i].extra[0] = extra;
        }
        e2e_start_daemon();
        for (size_t i = 0; i < n_vms; i++)
                start_vmm(&v[i]);
        if (adv_boot == 0) {
                wait_ready(v, n_vms);
                say("%zu VMM(s) handed everything over", n_vms);
                prepare_and_commit(NULL);
        }
        finish_boot1(v, n_vms);
        return 0;
}

/*
 * The update was abandoned: idle, each VMM got resume (and exited, --exit-on-resume), and the
 * daemon holds the fds it held when the VMMs had handed over (@handed), minus their connections.
 */
static void expect_resume_and_idle(Vmm *v, size_t n, const char *what, int handed) {
        char w[200];

        for (int i = 0; i < 1000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "idle after %s", what);
        for (size_t i = 0; i < n; i++)
                CHECK(wait_pid(v[i].pid, 10) == 0, "VMM %s told to resume after %s", v[i].vm, what);
        snprintf(w, sizeof(w), "after %s, VMM(s) gone", what);
        expect_fds(handed - (int) n, w);
}

/* Cancel in preparing, prepared and freezing; then a full update still works. */
static int scenario_cancel(void) {
        Vmm v = { .vm = "vm-c", .vfio = 0, .extra = { "--exit-on-resume" } };
        json_object *r;
        int fd, handed;

        e2e_start_daemon();
        if (adv_boot == 1) {
                Vmm w = { .vm = "vm-c", .vfio = 0 };
                start_vmm(&w);
                finish_boot1(&w, 1);
                return 0;
        }
        /* preparing: the VMM never acks, so prepare stays pending; cancel from a second connection */
        v.extra[1] = "--no-ack";
        start_vmm(&v);
        wait_ready(&v, 1);
        handed = count_open_fds_settled();
        {
                char kernel[300], req[600];
                write_kernel(kernel, sizeof(kernel));
                snprintf(req, sizeof(req), "{\"id\":30,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
                fd = connect_sock(ctl_sock);
                send_fds(fd, req, strlen(req), NULL, 0);
        }
        for (int i = 0; i < 1000 && strcmp(status_state(), "preparing") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "preparing") == 0, "state preparing while the VMM does not ack");
        r = ctl("{\"id\":31,\"method\":\"cancel\"}", 5);
        CHECK(result_of(r) != NULL, "cancel in preparing accepted");
        json_object_put(r);
        r = recv_reply(fd, 5, NULL);
        CHECK(err_code(r) && strcmp(err_code(r), "cancelled") == 0, "pending prepare answered \"cancelled\"");
        json_object_put(r);
        close(fd);
        expect_resume_and_idle(&v, 1, "cancel in preparing", handed);
        CHECK(system("test \"$(cat /sys/kernel/kexec_loaded)\" = 0") == 0, "kernel image unloaded after cancel");

        /* prepared */
        v.extra[1] = NULL;
        start_vmm(&v);      /* reconnects to the same VM: items are still preserved */
        wait_ready(&v, 1);
        handed = count_open_fds_settled();
        r = prepare(0);
        CHECK(result_of(r) != NULL, "prepare after a cancel");
        json_object_put(r);
        CHECK(strcmp(status_state(), "prepared") == 0, "state prepared");
        r = ctl("{\"id\":32,\"method\":\"cancel\"}", 5);
        CHECK(result_of(r) != NULL, "cancel in prepared accepted");
        json_object_put(r);
        expect_resume_and_idle(&v, 1, "cancel in prepared", handed);

        /* freezing: a VMM that acks prepare but not freeze */
        v.extra[1] = "--no-ack-freeze";
        start_vmm(&v);
        wait_ready(&v, 1);
        handed = count_open_fds_settled();
        r = prepare(0);
        CHECK(result_of(r) != NULL, "prepare (third time)");
        json_object_put(r);
        fd = connect_sock(ctl_sock);
        send_fds(fd, "{\"id\":33,\"method\":\"commit\",\"timeout_ms\":60000}", strlen("{\"id\":33,\"method\":\"commit\",\"timeout_ms\":60000}"), NULL, 0);
        for (int i = 0; i < 1000 && strcmp(status_state(), "freezing") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "freezing") == 0, "state freezing while the VMM does not ack");
        r = ctl("{\"id\":34,\"method\":\"cancel\"}", 5);
        CHECK(result_of(r) != NULL, "cancel in freezing accepted");
        json_object_put(r);
        r = recv_reply(fd, 5, NULL);
        CHECK(err_code(r) && strcmp(err_code(r), "cancelled") == 0, "pending commit answered \"cancelled\"");
        json_object_put(r);
        close(fd);
        expect_resume_and_idle(&v, 1, "cancel in freezing", handed);
        r = ctl("{\"id\":35,\"method\":\"cancel\"}", 5);
        CHECK(err_code(r) && strcmp(err_code(r), "invalid-state") == 0, "cancel in idle refused");
        json_object_put(r);
        if (failures)
                return 1;

        /* and the same preserved items still go through a real update */
        v.extra[0] = NULL;
        v.extra[1] = NULL;
        start_vmm(&v);
        wait_ready(&v, 1);
        prepare_and_commit(NULL);
        return 1;
}

/* A device left with interrupts on and the daemon's own disable switched off: reboot() fails. */
static int scenario_failed_reboot(void) {
        Vmm v = { .vm = "vm-f", .vfio = 0, .extra = { "--skip-irq-disable", "--exit-on-resume" } };
        json_object *r;
        int handed;

        if (adv_boot > 0)
                bail("must not reboot");
        daemon_extra_arg = "--test-skip-irq-disable";
        e2e_start_daemon();
        start_vmm(&v);
        wait_ready(&v, 1);
        handed = count_open_fds_settled();
        r = prepare(0);
        CHECK(result_of(r) != NULL, "prepared");
        json_object_put(r);
        r = ctl("{\"id\":11,\"method\":\"commit\"}", 20);
        CHECK(err_code(r) && strcmp(err_code(r), "kernel-error") == 0, "commit answered kernel-error (reboot returned): %s",
              r ? json_object_to_json_string(r) : "none");
        json_object_put(r);
        expect_resume_and_idle(&v, 1, "a failed reboot", handed);
        r = ctl("{\"id\":12,\"method\":\"timeline\"}", 5);
        CHECK(r && strstr(json_object_to_json_string(r), "\"failed\""), "timeline records the failure");
        json_object_put(r);
        return 1;
}

/* The kernel refuses the freeze once (luo-emu --fail=freeze:EINVAL:1): report, resume, retry. */
static int scenario_failed_inject(void) {
        Vmm v = { .vm = "vm-i", .vfio = 0 };
        json_object *r;
        int handed;

        e2e_start_daemon();
        start_vmm(&v);
        if (adv_boot == 0) {
                wait_ready(&v, 1);
                handed = count_open_fds_settled();
                r = prepare(0);
                CHECK(result_of(r) != NULL, "prepared");
                json_object_put(r);
                r = ctl("{\"id\":11,\"method\":\"commit\"}", 20);
                CHECK(err_code(r) && strcmp(err_code(r), "kernel-error") == 0, "commit answered kernel-error: %s",
                      r ? json_object_to_json_string(r) : "none");
                json_object_put(r);
                for (int i = 0; i < 1000 && strcmp(status_state(), "idle") != 0; i++)
                        usleep(10000);
                CHECK(strcmp(status_state(), "idle") == 0, "idle after the failed reboot");
                expect_fds(handed, "after the failed reboot (the VMM still connected)");
                CHECK(system("test \"$(cat /sys/kernel/kexec_loaded)\" = 0") == 0, "kernel image unloaded");
                if (failures)
                        return 1;
                say("second attempt");
                prepare_and_commit(NULL);
        }
        finish_boot1(&v, 1);
        return 0;
}

/* The daemon is SIGKILLed after the hand-over and started again: nothing may be lost. */
static int scenario_daemon_restart(void) {
        Vmm v[2] = { { .vm = "vm-r0", .vfio = 0, .extra = { "--reconnect" } },
                     { .vm = "vm-r1", .vfio = 1, .extra = { "--reconnect" } } };
        bool complete = false;

        e2e_start_daemon();
        start_vmm(&v[0]);
        start_vmm(&v[1]);
        if (adv_boot == 0) {
                wait_ready(v, 2);
                kill(daemon_pid, SIGKILL);
                CHECK(wait_pid(daemon_pid, 5) == 128 + SIGKILL, "daemon killed with SIGKILL");
                e2e_start_daemon();
                for (int i = 0; i < 500 && !complete; i++) {
                        json_object *r = ctl("{\"id\":5,\"method\":\"list\"}", 5), *vms;
                        size_t ok = 0;
                        /* per VM: a VM the mirror did not record yet (killed before the save) is listed
                         * without items until its VMM has handed them over again */
                        if (json_object_object_get_ex(result_of(r), "vms", &vms))
                                for (size_t k = 0; k < json_object_array_length(vms); k++) {
                                        const char *t = json_object_to_json_string(json_object_array_get_idx(vms, k));
                                        ok += (strstr(t, "\"vm-r0\"") || strstr(t, "\"vm-r1\"")) && !strstr(t, "\"lost\"") &&
                                              strstr(t, "\"ram0\"") && strstr(t, "\"dev0\"");
                                }
                        complete = ok == 2;
                        json_object_put(r);
                        if (!complete)
                                usleep(10000);
                }
                CHECK(complete, "restarted daemon knows both VMs and has every item preserved again");
                if (failures)
                        return 1;
                prepare_and_commit(NULL);
        }
        finish_boot1(v, 2);
        return 0;
}

/* The VMM skips disabling interrupts; the daemon does it itself, so the update goes through. */
static int scenario_daemon_irq(void) {
        return scenario_full(1, false, false, "--skip-irq-disable");
}

/* The VMM dies right after handing over; a restarted one reclaims after the reboot. */
static int scenario_vmm_crash(void) {
        Vmm v = { .vm = "vm-x", .vfio = 0, .extra = { "--crash-after-preserve" } };

        e2e_start_daemon();
        if (adv_boot == 0) {
                int st;
                start_vmm(&v);
                st = wait_pid(v.pid, 10);
                CHECK(st == 3, "VMM crashed after preserving (status %d)", st);
                prepare_and_commit(NULL);
        }
        v.extra[0] = NULL;
        start_vmm(&v);
        finish_boot1(&v, 1);
        return 0;
}

/* A VM whose VMM never comes back: after the grace period it is reported and released. */
static int scenario_never_returns(void) {
        Vmm v[2] = { { .vm = "vm-back", .vfio = 0 }, { .vm = "vm-gone", .vfio = 1 } };
        json_object *r, *t, *x;

        e2e_start_daemon();
        if (adv_boot == 0) {
                start_vmm(&v[0]);
                start_vmm(&v[1]);
                wait_ready(v, 2);
                prepare_and_commit(NULL);
        }
        start_vmm(&v[0]);
        CHECK(wait_pid(v[0].pid, 30) == 0, "returning VMM restored");
        for (int i = 0; i < 2000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "idle after the grace period released the missing VM");
        r = ctl("{\"id\":21,\"method\":\"timeline\"}", 5);
        t = json_object_object_get(result_of(r), "timeline");
        x = t ? json_object_object_get(json_object_object_get(t, "vms"), "vm-gone") : NULL;
        CHECK(x && json_object_object_get(x, "t_unclaimed_us"), "timeline reports vm-gone as unclaimed");
        json_object_put(r);
        expect_fresh_fds("after the restore, vm-gone released");
        return 0;
}

static bool fd_is_memfd(int fd) {
        char path[64], target[256];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = 0;
        return strncmp(target, "/memfd:", 7) == 0;
}

/*
 * BindDevices=yes: after the kexec the devices get no driver for a minute (--bind-delay=60000,
 * far past BindTimeoutSec); the daemon binds them to vfio-pci itself (driver_override + bind),
 * so both VMs restore their devices, long before any udev rule would have.
 */
static int scenario_bind_devices(void) {
        double t0 = now_s();
        int r = scenario_full(2, false, false, NULL);

        if (adv_boot == 1) {
                CHECK(now_s() - t0 < 40, "restored in %.1f s, well before the devices would have been bound (60 s)", now_s() - t0);
                /* the new kernel left the overrides unset: the daemon wrote them */
                CHECK(system("test \"$(cat /sys/bus/pci/devices/*/driver_override | grep -cx vfio-pci)\" = 2") == 0,
                      "the daemon set both devices' driver_override to vfio-pci");
        }
        return r;
}

/*
 * An SR-IOV virtual function (--vfio-vf=1): the PCI preservation series cannot preserve VFs,
 * so the daemon refuses it at preserve with wrong-fd-kind naming it; the PF next to it goes.
 */
static int scenario_vf_refused(void) {
        json_object *r;
        const char *msg;
        int fd, dev;

        e2e_start_daemon();
        fd = vmm_conn("vm-vf");
        dev = open("/dev/vfio/devices/vfio1", O_RDWR | O_CLOEXEC);
        if (dev < 0)
                bail("open vfio1: %m");
        r = request(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"dev0\"}", &dev, 1, 10);
        msg = r ? json_object_get_string(json_object_object_get(json_object_object_get(r, "error"), "message")) : NULL;
        CHECK(err_code(r) && strcmp(err_code(r), "wrong-fd-kind") == 0 && msg && strstr(msg, "virtual function"),
              "a VF is refused with wrong-fd-kind naming it (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        close(dev);
        r = ctl("{\"id\":3,\"method\":\"list\"}", 5);
        CHECK(r && !strstr(json_object_to_json_string(r), "dev0"), "nothing of it was recorded");
        json_object_put(r);
        close(fd);
        expect_fresh_fds("after the refused VF");
        return 0;
}

/*
 * 200 items in one VM, across a kexec (spec §1.8 and §8.4): Linux 7.1 takes 128 files per
 * session, so the daemon starts a second session for the rest; 7.2 has no such limit (told by
 * GET_NAME on the first session), so they all stay in one. After the reboot the driver, as the
 * VMM, reclaims every memfd and compares its contents, and the hello reply names the sessions.
 */
#define MANY_ITEMS 200
static void many_pattern(int i, char *buf, size_t n) {
        for (size_t k = 0; k < n; k++)
                buf[k] = (char) (i * 7 + k * 13 + (k >> 8));
}

static int scenario_session_limit(void) {
        const char *k = getenv("LUO_EMU_KERNEL");
        bool limit = !k || strcmp(k, "7.2") != 0;
        char req[200], buf[4096], got[4096];
        json_object *r, *items;
        int fd;

        e2e_start_daemon();
        if (adv_boot == 0) {
                fd = vmm_conn("vm-200");
                for (int i = 0; i < MANY_ITEMS; i++) {
                        int m = memfd_create("many", MFD_CLOEXEC);
                        many_pattern(i, buf, sizeof(buf));
                        if (m < 0 || write(m, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
                                bail("memfd %d", i);
                        snprintf(req, sizeof(req), "{\"id\":%d,\"method\":\"preserve\",\"label\":\"m%d\"}", 10 + i, i);
                        r = request(fd, req, &m, 1, 10);
                        if (!result_of(r))
                                bail("preserve m%d: %s", i, r ? json_object_to_json_string(r) : "no reply");
                        json_object_put(r);
                        close(m);
                }
                say("%d memfds handed over", MANY_ITEMS);
                /* the VMM stays connected and acknowledges: a child answers the events */
                pid_t child = fork();
                if (child == 0) {
                        for (;;) {
                                json_object *e = recv_any(fd, 60), *t, *seq;
                                if (!e)
                                        _exit(0);
                                if (json_object_object_get_ex(e, "event", &t) && json_object_object_get_ex(e, "seq", &seq)) {
                                        const char *ev = json_object_get_string(t);
                                        if (strcmp(ev, "prepare") == 0 || strcmp(ev, "freeze") == 0) {
                                                snprintf(req, sizeof(req), "{\"id\":900,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":true}",
                                                         json_object_get_int64(seq));
                                                (void) send_str(fd, req);
                                        }
                                }
                                json_object_put(e);
                        }
                }
                prepare_and_commit(NULL);
        }
        fd = connect_sock(vmm_sock);
        if (fd < 0)
                bail("connect: %s", strerror(-fd));
        r = request(fd, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-200\"}", NULL, 0, 10);
        items = json_object_object_get(result_of(r), "items");
        {
                size_t n = items ? json_object_array_length(items) : 0, in_first = 0;
                bool second = false;
                for (size_t i = 0; i < n; i++) {
                        const char *ses = json_object_get_string(json_object_object_get(json_object_array_get_idx(items, i), "session"));
                        if (ses && strcmp(ses, "luvf:vm-200:0") == 0)
                                in_first++;
                        else if (ses && strcmp(ses, "luvf:vm-200:1") == 0)
                                second = true;
                }
                CHECK(n == MANY_ITEMS, "all %d items came across the kexec (%zu)", MANY_ITEMS, n);
                if (limit)
                        CHECK(in_first == 128 && second, "7.1: 128 items in the first session, the rest in a second (%zu in the first)", in_first);
                else
                        CHECK(in_first == MANY_ITEMS && !second, "7.2: all in one session, no rollover (%zu in the first)", in_first);
        }
        json_object_put(r);
        int bad = 0;
        for (int i = 0; i < MANY_ITEMS; i++) {
                int m = -1;
                snprintf(req, sizeof(req), "{\"id\":%d,\"method\":\"reclaim\",\"label\":\"m%d\"}", 1000 + i, i);
                if (send_str(fd, req) < 0)
                        bail("send");
                r = recv_reply(fd, 15, &m);
                many_pattern(i, buf, sizeof(buf));
                if (!result_of(r) || m < 0 || pread(m, got, sizeof(got), 0) != (ssize_t) sizeof(got) || memcmp(buf, got, sizeof(buf)) != 0)
                        bad++;
                if (m >= 0)
                        close(m);
                json_object_put(r);
        }
        CHECK(bad == 0, "every one of the %d memfds reclaimed with its contents (%d bad)", MANY_ITEMS, bad);
        r = request(fd, "{\"id\":3,\"method\":\"restored\"}", NULL, 0, 15);
        CHECK(result_of(r) != NULL, "restored (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        close(fd);
        for (int i = 0; i < 1000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "idle after vm-200 restored");
        return 0;
}

/*
 * Multi-label reclaim after the reboot, by the driver acting as the VMM: bad forms are
 * refused, one unknown label fails the whole request without handing out (or leaking) an
 * fd, and a good one returns every fd in label order in one reply.
 */
static int scenario_reclaim_many(void) {
        Vmm v = { .vm = "vm-many", .vfio = 0 };
        json_object *r, *items;
        int fd, fds[16];
        size_t n = 0;
        int before, after;

        e2e_start_daemon();
        if (adv_boot == 0) {
                start_vmm(&v);
                wait_ready(&v, 1);
                prepare_and_commit(NULL);
        }
        fd = vmm_conn("vm-many");
        expect_error(fd, "{\"id\":2,\"method\":\"reclaim\",\"label\":\"ram0\",\"labels\":[\"dev0\"]}", 0, NULL, 0,
                     "invalid-params", "reclaim with both label and labels");
        expect_error(fd, "{\"id\":3,\"method\":\"reclaim\",\"labels\":[]}", 0, NULL, 0, "invalid-params", "reclaim with no labels");
        expect_error(fd, "{\"id\":4,\"method\":\"reclaim\",\"labels\":[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                         "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}", 0, NULL, 0, "invalid-params", "reclaim with 17 labels");
        expect_error(fd, "{\"id\":5,\"method\":\"reclaim\",\"labels\":[\"ram0\",7]}", 0, NULL, 0, "invalid-params",
                     "reclaim with a non-string label");
        expect_error(fd, "{\"id\":6,\"method\":\"reclaim\"}", 0, NULL, 0, "invalid-params", "reclaim with neither label nor labels");

        /* One unknown label among good ones: the whole request fails, no fd is sent or left behind. */
        before = count_open_fds_settled();
        {
                const char *req = "{\"id\":7,\"method\":\"reclaim\",\"labels\":[\"ram0\",\"nope\",\"dev0\"]}";
                if (send_fds(fd, req, strlen(req), NULL, 0) < 0)
                        bail("send");
        }
        r = recv_reply_fds(fd, 15, fds, &n);
        CHECK(err_code(r) && strcmp(err_code(r), "label-unknown") == 0 && n == 0,
              "multi-label reclaim with an unknown label -> label-unknown, no fd (%s, %zu fds)",
              r ? json_object_to_json_string(r) : "no reply", n);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        json_object_put(r);
        after = count_open_fds_settled();
        CHECK(after == before, "no fd leaked by the failed multi-label reclaim (%d -> %d)", before, after);

        /* The good one: both fds, in label order, in one reply (dev0 waits for its bind). */
        {
                const char *req = "{\"id\":8,\"method\":\"reclaim\",\"labels\":[\"dev0\",\"ram0\"]}";
                if (send_fds(fd, req, strlen(req), NULL, 0) < 0)
                        bail("send");
        }
        n = 0;
        r = recv_reply_fds(fd, 15, fds, &n);
        items = json_object_object_get(result_of(r), "items");
        CHECK(items && json_object_is_type(items, json_type_array) && json_object_array_length(items) == 2 &&
              strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(items, 0), "label")), "dev0") == 0 &&
              strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(items, 1), "label")), "ram0") == 0 &&
              strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(items, 0), "kind")), "vfio") == 0,
              "multi-label reclaim answers items dev0, ram0 in order (%s)", r ? json_object_to_json_string(r) : "no reply");
        CHECK(n == 2 && !fd_is_memfd(fds[0]) && fd_is_memfd(fds[1]), "the two fds come in label order: device, then memfd (%zu fds)", n);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        json_object_put(r);

        /* The single-label form still works alongside. */
        {
                int one = -1;
                if (send_fds(fd, "{\"id\":9,\"method\":\"reclaim\",\"label\":\"ram0\"}",
                             strlen("{\"id\":9,\"method\":\"reclaim\",\"label\":\"ram0\"}"), NULL, 0) < 0)
                        bail("send");
                r = recv_reply(fd, 15, &one);
                CHECK(result_of(r) && one >= 0 && fd_is_memfd(one), "single-label reclaim still returns one memfd");
                if (one >= 0)
                        close(one);
                json_object_put(r);
        }
        close(fd);
        /* never reported restored: released after ReclaimGraceSec */
        for (int i = 0; i < 2000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "idle once the grace period released vm-many");
        expect_fresh_fds("after vm-many was released");
        return 0;
}

/*
 * Protocol version 2, by the driver acting as VMM "vm-q" (17 memfds) next to the example VMM
 * "vm-v2" (a memfd and a VFIO device). Boot 0: a quiet ack gets no reply, a refused quiet ack
 * still gets its error (a child answering the events vetoes the freeze otherwise, and the
 * update fails). Boot 1: hello with "reclaim" hands a VM's items over with its reply (after the
 * device's bind), refuses more than 16 with reclaim_error limit-reached and no fd, answers a VM
 * with nothing incoming at once; a malformed "reclaim" is refused.
 */
#define V2_ITEMS 17
static int contract_memfd(const char *text);
static bool memfd_holds(int fd, const char *text);
static int scenario_protocol_v2(void) {
        Vmm v = { .vm = "vm-v2", .vfio = 0 };
        char req[200];
        json_object *r, *arr;
        int fd, fds[16];
        size_t n = 0;

        e2e_start_daemon();
        if (adv_boot == 0) {
                start_vmm(&v);
                wait_ready(&v, 1);
                fd = connect_sock(vmm_sock);
                if (fd < 0)
                        bail("connect: %s", strerror(-fd));
                r = request(fd, "{\"id\":1,\"method\":\"hello\",\"version\":2,\"vm\":\"vm-q\"}", NULL, 0, 10);
                CHECK(result_of(r) && json_object_get_int(json_object_object_get(result_of(r), "version")) == 2,
                      "hello version 2 is answered with version 2 (%s)", r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                for (int i = 0; i < V2_ITEMS; i++) {
                        int m = contract_memfd("v2");
                        snprintf(req, sizeof(req), "{\"id\":%d,\"method\":\"preserve\",\"label\":\"m%d\"}", 10 + i, i);
                        r = request(fd, req, &m, 1, 10);
                        if (!result_of(r))
                                bail("preserve m%d: %s", i, r ? json_object_to_json_string(r) : "no reply");
                        json_object_put(r);
                        close(m);
                }
                pid_t child = fork();
                if (child == 0) {
                        bool refused_seen = false, stray = false;
                        for (;;) {
                                json_object *e = recv_any(fd, 60), *t, *seq, *id;
                                if (!e)
                                        _exit(0);
                                if (json_object_object_get_ex(e, "id", &id)) {
                                        /* only the bad ack (901) may be answered */
                                        if (json_object_get_int(id) == 901 && strcmp(err_code(e) ?: "", "invalid-params") == 0)
                                                refused_seen = true;
                                        else
                                                stray = true;
                                } else if (json_object_object_get_ex(e, "event", &t) && json_object_object_get_ex(e, "seq", &seq)) {
                                        const char *ev = json_object_get_string(t);
                                        int64_t q = json_object_get_int64(seq);
                                        if (strcmp(ev, "prepare") == 0) {
                                                (void) send_str(fd, "{\"id\":901,\"method\":\"ack\",\"seq\":99,\"quiet\":true}");
                                                snprintf(req, sizeof(req), "{\"id\":900,\"method\":\"ack\",\"seq\":%" PRId64 ",\"quiet\":true}", q);
                                                (void) send_str(fd, req);
                                        } else if (strcmp(ev, "freeze") == 0) {
                                                if (refused_seen && !stray)
                                                        snprintf(req, sizeof(req), "{\"id\":902,\"method\":\"ack\",\"seq\":%" PRId64 ",\"quiet\":true}", q);
                                                else
                                                        snprintf(req, sizeof(req), "{\"id\":902,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":false,"
                                                                 "\"message\":\"quiet ack: %s\"}", q,
                                                                 stray ? "a reply came for an accepted quiet ack" : "no error for a refused one");
                                                (void) send_str(fd, req);
                                        }
                                }
                                json_object_put(e);
                        }
                }
                prepare_and_commit(NULL);   /* reboots only if the child found the acks answered as documented */
        }
        say("the update went through: accepted quiet acks got no reply, the refused one its error");

        /* a VM with nothing incoming: "reclaimed" is empty and comes at once */
        fd = connect_sock(vmm_sock);
        if (fd < 0)
                bail("connect: %s", strerror(-fd));
        expect_error(fd, "{\"id\":1,\"method\":\"hello\",\"version\":2,\"vm\":\"vm-new\",\"reclaim\":1}", 0, NULL, 0,
                     "invalid-params", "hello with a non-boolean reclaim");
        if (send_str(fd, "{\"id\":2,\"method\":\"hello\",\"version\":2,\"vm\":\"vm-new\",\"reclaim\":true}") < 0)
                bail("send");
        r = recv_reply_fds(fd, 5, fds, &n);
        arr = json_object_object_get(result_of(r), "reclaimed");
        CHECK(arr && json_object_array_length(arr) == 0 && n == 0 && !json_object_object_get(result_of(r), "reclaim_error"),
              "hello reclaim for a VM with nothing incoming: reclaimed [], no fd (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        close(fd);

        /* 17 items incoming: more than one hello carries; the hello succeeds without fds */
        fd = connect_sock(vmm_sock);
        if (fd < 0)
                bail("connect: %s", strerror(-fd));
        if (send_str(fd, "{\"id\":1,\"method\":\"hello\",\"version\":2,\"vm\":\"vm-q\",\"reclaim\":true}") < 0)
                bail("send");
        n = 0;
        r = recv_reply_fds(fd, 10, fds, &n);
        arr = json_object_object_get(result_of(r), "reclaimed");
        CHECK(result_of(r) && json_object_get_boolean(json_object_object_get(result_of(r), "incoming")) &&
              arr && json_object_array_length(arr) == 0 && n == 0 &&
              strcmp(json_object_get_string(json_object_object_get(json_object_object_get(result_of(r), "reclaim_error"), "code")) ?: "",
                     "limit-reached") == 0,
              "hello reclaim with %d items incoming: reclaim_error limit-reached, no fd (%s, %zu fds)", V2_ITEMS,
              r ? json_object_to_json_string(r) : "no reply", n);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        json_object_put(r);
        {
                int bad = 0;
                for (int i = 0; i < V2_ITEMS; i++) {
                        int m = -1;
                        snprintf(req, sizeof(req), "{\"id\":%d,\"method\":\"reclaim\",\"label\":\"m%d\"}", 100 + i, i);
                        if (send_str(fd, req) < 0)
                                bail("send");
                        r = recv_reply(fd, 10, &m);
                        bad += !result_of(r) || m < 0 || !memfd_holds(m, "v2");
                        if (m >= 0)
                                close(m);
                        json_object_put(r);
                }
                CHECK(bad == 0, "vm-q reclaims its %d memfds by label afterwards, contents intact (%d bad)", V2_ITEMS, bad);
        }
        r = request(fd, "{\"id\":200,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(result_of(r) != NULL, "vm-q restored (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        close(fd);

        /* the example VMM's VM: memfd and device with the hello reply, once the device is bound */
        fd = connect_sock(vmm_sock);
        if (fd < 0)
                bail("connect: %s", strerror(-fd));
        if (send_str(fd, "{\"id\":1,\"method\":\"hello\",\"version\":2,\"vm\":\"vm-v2\",\"reclaim\":true}") < 0)
                bail("send");
        n = 0;
        r = recv_reply_fds(fd, 15, fds, &n);
        arr = json_object_object_get(result_of(r), "reclaimed");
        CHECK(arr && json_object_array_length(arr) == 2 &&
              strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, 0), "kind")) ?: "", "memfd") == 0 &&
              strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, 1), "kind")) ?: "", "vfio") == 0,
              "hello reclaim of vm-v2 lists its memfd, then its device (%s)", r ? json_object_to_json_string(r) : "no reply");
        CHECK(n == 2 && fd_is_memfd(fds[0]) && !fd_is_memfd(fds[1]), "the hello reply carries 2 fds: memfd, then device (%zu)", n);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        json_object_put(r);
        {
                /* restore-ready comes after the reply; the device can be reclaimed again */
                json_object *e = recv_any(fd, 5);
                CHECK(e && strcmp(json_object_get_string(json_object_object_get(e, "event")) ?: "", "restore-ready") == 0,
                      "restore-ready follows the hello reply (%s)", e ? json_object_to_json_string(e) : "nothing");
                json_object_put(e);
        }
        {
                int d = -1;
                r = request(fd, "{\"id\":2,\"method\":\"reclaim\",\"label\":\"dev0\"}", NULL, 0, 10);
                json_object_put(r);
                if (send_str(fd, "{\"id\":3,\"method\":\"reclaim\",\"label\":\"dev0\"}") < 0)
                        bail("send");
                r = recv_reply(fd, 10, &d);
                CHECK(result_of(r) && d >= 0, "dev0 may be reclaimed again after the hello carried it");
                if (d >= 0)
                        close(d);
                json_object_put(r);
        }
        close(fd);
        /* vm-v2 never reports restored here: released after ReclaimGraceSec, like reclaim-many */
        for (int i = 0; i < 2000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "idle once vm-v2 was released");
        expect_fresh_fds("after the version 2 scenario");
        return 0;
}

/* Malformed, oversized, truncated messages; fds; labels; claims; another uid; many clients. */
static int scenario_bad_input(void) {
        static char big[70 * 1024];
        int fd, fd2, memfd, devnull, fds[20], before, after;
        json_object *r;

        if (adv_boot > 0)
                bail("must not reboot");
        e2e_start_daemon();
        fd = connect_sock(vmm_sock);
        memfd = memfd_create("x", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, 4096) < 0)
                bail("memfd");
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

        expect_error(fd, "{\"id\":1,\"method\":\"preserve\",\"label\":\"a\"}", 0, &memfd, 1, "hello-required", "preserve before hello");
        expect_error(fd, "not json", 0, NULL, 0, "invalid-json", "non-JSON");
        expect_error(fd, "{\"id\":2,\"method\":\"hel", 0, NULL, 0, "invalid-json", "truncated JSON");
        expect_error(fd, "[1]", 0, NULL, 0, "invalid-message", "array");
        expect_error(fd, "{\"method\":\"hello\"}", 0, NULL, 0, "invalid-message", "no id");
        memset(big, ' ', sizeof(big));
        memcpy(big, "{\"id\":3,\"method\":\"list\",\"x\":\"", 29);
        big[sizeof(big) - 2] = '"';
        big[sizeof(big) - 1] = '}';
        expect_error(fd, big, sizeof(big), NULL, 0, "message-too-large", "70 KiB message");
        expect_error(fd, "{\"id\":4,\"method\":\"hello\",\"version\":1,\"vm\":\"a/b\"}", 0, NULL, 0, "invalid-params", "bad VM id");
        expect_error(fd, "{\"id\":5,\"method\":\"hello\",\"version\":0,\"vm\":\"ab\"}", 0, NULL, 0, "version-unsupported", "version 0");
        expect_error(fd, "{\"id\":6,\"method\":\"hello\",\"version\":1,\"vm\":\"ab\",\"evil\":1}", 0, NULL, 0, "invalid-params", "unknown field");
        expect_error(fd, "{\"id\":6,\"method\":\"x\",\"a\":[[[[[[[[[[1]]]]]]]]]]}", 0, NULL, 0, "invalid-json", "nesting too deep");
        close(fd);

        fd = vmm_conn("vm-a");
        before = count_open_fds_settled();
        for (int i = 0; i < 20; i++)
                fds[i] = memfd;
        expect_error(fd, "{\"id\":7,\"method\":\"preserve\",\"label\":\"m\"}", 0, fds, 20, "too-many-fds", "20 fds in one message");
        expect_error(fd, "{\"id\":8,\"method\":\"preserve\",\"label\":\"m\"}", 0, fds, 2, "wrong-fd-count", "2 fds for preserve");
        expect_error(fd, "{\"id\":9,\"method\":\"preserve\",\"label\":\"m\"}", 0, NULL, 0, "wrong-fd-count", "no fd for preserve");
        expect_error(fd, "{\"id\":10,\"method\":\"preserve\",\"label\":\"m\"}", 0, &devnull, 1, "wrong-fd-kind", "/dev/null");
        expect_error(fd, "{\"id\":11,\"method\":\"preserve\",\"label\":\"bad label\"}", 0, &memfd, 1, "invalid-params", "bad label");
        after = count_open_fds_settled();
        CHECK(before == after, "no fd leaked by refused messages (%d before, %d after)", before, after);
        r = request(fd, "{\"id\":12,\"method\":\"preserve\",\"label\":\"m\"}", &memfd, 1, 5);
        CHECK(result_of(r) != NULL, "memfd preserved");
        json_object_put(r);
        expect_error(fd, "{\"id\":13,\"method\":\"preserve\",\"label\":\"m\"}", 0, &memfd, 1, "label-exists", "duplicate label");
        {
                int m2 = memfd_create("y", MFD_CLOEXEC);
                (void) ftruncate(m2, 4096);
                r = request(fd, "{\"id\":14,\"method\":\"preserve\",\"label\":\"m2\"}", &m2, 1, 5);
                CHECK(result_of(r) != NULL, "second memfd preserved");
                json_object_put(r);
                close(m2);
        }
        expect_error(fd, "{\"id\":15,\"method\":\"reclaim\",\"label\":\"m\"}", 0, NULL, 0, "invalid-state", "reclaim without an update");
        expect_error(fd, "{\"id\":16,\"method\":\"unpreserve\",\"label\":\"zz\"}", 0, NULL, 0, "label-unknown", "unpreserve unknown label");
        r = request(fd, "{\"id\":17,\"method\":\"unpreserve\",\"label\":\"m\"}", NULL, 0, 5);
        CHECK(result_of(r) != NULL, "unpreserve m");
        json_object_put(r);
        r = request(fd, "{\"id\":18,\"method\":\"list\"}", NULL, 0, 5);
        CHECK(r && strstr(json_object_to_json_string(r), "\"m2\"") && !strstr(json_object_to_json_string(r), "\"m\""),
              "list shows m2 and not m");
        json_object_put(r);
        expect_error(fd, "{\"id\":19,\"method\":\"frobnicate\"}", 0, NULL, 0, "unknown-method", "unknown method");
        expect_error(fd, "{\"id\":20,\"method\":\"ack\",\"seq\":99}", 0, NULL, 0, "invalid-params", "ack of nothing");

        /* claims: same VM from a second connection, and from another uid */
        fd2 = connect_sock(vmm_sock);
        expect_error(fd2, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-a\"}", 0, NULL, 0, "vm-busy", "claim a held VM");
        close(fd2);
        {
                pid_t pid = fork();
                if (pid == 0) {
                        struct passwd *pw = getpwnam("nobody");
                        int c, bad = 0;
                        if (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                                _exit(10);
                        close(fd);
                        c = connect_sock(vmm_sock);
                        send_fds(c, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-a\"}", strlen("{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-a\"}"), NULL, 0);
                        r = recv_reply(c, 5, NULL);
                        bad += !(err_code(r) && strcmp(err_code(r), "permission-denied") == 0);
                        close(c);
                        c = connect_sock(ctl_sock);
                        r = c >= 0 ? recv_reply(c, 5, NULL) : NULL;
                        bad += c >= 0 && !(err_code(r) && strcmp(err_code(r), "permission-denied") == 0);
                        _exit(bad);
                }
                CHECK(wait_pid(pid, 10) == 0, "another uid: may not claim root's VM, control socket refused");
        }
        /* MaxConnectionsPerUser=16 does not apply to root: two connections (fd and ctl) are already open, 20 more all served */
        (void) status_state();
        {
                int c[20], accepted = 0;
                char msg[200];
                for (int i = 0; i < 20; i++)
                        c[i] = connect_sock(vmm_sock);
                for (int i = 0; i < 20; i++) {
                        json_object *a;
                        if (c[i] < 0)
                                continue;
                        snprintf(msg, sizeof(msg), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"lim-%d\"}", i);
                        (void) send_fds(c[i], msg, strlen(msg), NULL, 0);
                        a = recv_reply(c[i], 10, NULL);   /* refused ones got an error (or EOF) */
                        accepted += result_of(a) != NULL;
                        json_object_put(a);
                }
                CHECK(accepted == 20, "root is not limited per user: %d of 20 new connections served (expected 20)", accepted);
                for (int i = 0; i < 20; i++)
                        if (c[i] >= 0)
                                close(c[i]);
        }
        /* many clients at once: 12 VMs hello and preserve concurrently (interleaved);
         * give the daemon a moment to reap the 20 connections just closed */
        usleep(500000);
        {
                int c[12], ok = 0;
                char msg[200];
                for (int i = 0; i < 12; i++) {
                        c[i] = connect_sock(vmm_sock);
                        snprintf(msg, sizeof(msg), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"many-%d\"}", i);
                        send_fds(c[i], msg, strlen(msg), NULL, 0);
                }
                for (int i = 0; i < 12; i++) {
                        int m = memfd_create("z", MFD_CLOEXEC);
                        (void) ftruncate(m, 4096);
                        send_fds(c[i], "{\"id\":2,\"method\":\"preserve\",\"label\":\"ram\"}", strlen("{\"id\":2,\"method\":\"preserve\",\"label\":\"ram\"}"), &m, 1);
                        close(m);
                }
                for (int i = 0; i < 12; i++) {
                        json_object *a = recv_reply(c[i], 5, NULL), *b = recv_reply(c[i], 5, NULL);
                        ok += result_of(a) && result_of(b);
                        json_object_put(a);
                        json_object_put(b);
                        close(c[i]);
                }
                CHECK(ok == 12, "12 concurrent clients served (%d ok)", ok);
        }
        r = ctl("{\"id\":2,\"method\":\"list\"}", 5);
        CHECK(r && strstr(json_object_to_json_string(r), "many-11"), "operator list shows the concurrent VMs");
        json_object_put(r);
        CHECK(strcmp(status_state(), "idle") == 0, "daemon alive and idle after all that");
        /* every VM that holds something forgets it: nothing may stay behind */
        expect_result(fd, "{\"id\":21,\"method\":\"forget\"}", 0, NULL, 0, "vm-a forgets");
        close(fd);
        for (int i = 0; i < 12; i++) {
                char vm[32];
                int c;
                snprintf(vm, sizeof(vm), "many-%d", i);
                c = vmm_conn(vm);
                expect_result(c, "{\"id\":2,\"method\":\"forget\"}", 0, NULL, 0, vm);
                close(c);
        }
        close(memfd);
        close(devnull);
        expect_fresh_fds("after every VM forgot its items");
        return 1;
}

/*
 * What docs/protocol.md promises a VMM author where the daemon used to answer otherwise
 * (issue 10): fds refused before the kernel is asked, with the kind named (O_PATH, iommufd,
 * an unbound cdev on upstream); a kernel refusal does not use up a token; invalid-state
 * comes with EBUSY; forget is allowed after a reboot for a VM that did not come across it,
 * and leaves the connection waiting for a new hello; a delegated VMM's own ioctls, with
 * the numbers and struct the document gives per ABI, carry a memfd across the update.
 */
struct luo_fd_arg { uint32_t size; int32_t fd; uint64_t token; };   /* docs/protocol.md §5.5 */

static json_object *hello_as(int fd, const char *vm) {
        char hello[200];
        snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
        return request(fd, hello, NULL, 0, 5);
}

static const char *str_at(json_object *o, const char *a, const char *b) {
        json_object *v = o;
        if (v && a)
                v = json_object_object_get(v, a);
        if (v && b)
                v = json_object_object_get(v, b);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static int64_t int_at(json_object *o, const char *a, const char *b) {
        json_object *v = o ? json_object_object_get(o, a) : NULL;
        if (v && b)
                v = json_object_object_get(v, b);
        return v ? json_object_get_int64(v) : -1;
}

/* Error @code whose message contains @text and whose errno is @err (0: any). */
static void expect_error_text(int fd, const char *msg, const int *fds, size_t n_fds, const char *code, int err,
                              const char *text, const char *what) {
        json_object *r = request(fd, msg, fds, n_fds, 5);
        CHECK(err_code(r) && strcmp(err_code(r), code) == 0 && strstr(str_at(r, "error", "message"), text) &&
              (err == 0 || int_at(r, "error", "errno") == err),
              "%s -> %s, errno %d, message with \"%s\" (%s)", what, code, err, text, r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
}

static int contract_memfd(const char *text) {
        int m = memfd_create("contract", MFD_CLOEXEC);
        if (m < 0 || ftruncate(m, 4096) < 0 || pwrite(m, text, strlen(text), 0) != (ssize_t) strlen(text))
                bail("memfd: %m");
        return m;
}

static bool memfd_holds(int fd, const char *text) {
        char buf[64] = "";
        return fd >= 0 && pread(fd, buf, strlen(text), 0) == (ssize_t) strlen(text) && memcmp(buf, text, strlen(text)) == 0;
}

static int scenario_contract(void) {
        bool upstream;
        json_object *r;
        int c, d, g;

        e2e_start_daemon();
        if (adv_boot == 0) {
                int opath, null, iommu, cdev, ram, x, y, sess;
                struct luo_fd_arg a;

                c = connect_sock(vmm_sock);
                r = hello_as(c, "vm-c");
                upstream = strcmp(str_at(r, "result", "abi"), "upstream") == 0;
                CHECK(result_of(r) != NULL, "vm-c hello (%s ABI)", str_at(r, "result", "abi"));
                json_object_put(r);
                save_int("upstream", upstream);

                /* classified before the kernel is touched, the kind named */
                opath = open("/dev/vfio/devices/vfio0", O_PATH | O_CLOEXEC);
                null = open("/dev/null", O_RDWR | O_CLOEXEC);
                iommu = open("/dev/iommu", O_RDWR | O_CLOEXEC);
                CHECK(opath >= 0 && null >= 0 && iommu >= 0, "O_PATH cdev, /dev/null and /dev/iommu opened");
                expect_error_text(c, "{\"id\":2,\"method\":\"preserve\",\"label\":\"p\"}", &opath, 1, "wrong-fd-kind", EINVAL,
                                  "kind \"o-path\"", "an O_PATH VFIO cdev");
                expect_error_text(c, "{\"id\":3,\"method\":\"preserve\",\"label\":\"n\"}", &null, 1, "wrong-fd-kind", EINVAL,
                                  "fd is of kind \"other\"", "/dev/null");
                expect_error_text(c, "{\"id\":4,\"method\":\"preserve\",\"label\":\"i\"}", &iommu, 1, "wrong-fd-kind", EINVAL,
                                  "kind \"iommufd\"", "an iommufd");
                cdev = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
                CHECK(cdev >= 0, "cdev opened, not bound to an iommufd");
                if (upstream)
                        expect_error_text(c, "{\"id\":5,\"method\":\"preserve\",\"label\":\"u\"}", &cdev, 1, "wrong-fd-kind", EINVAL,
                                          "not bound to an iommufd", "upstream: an unbound cdev");
                else {
                        /* v4 (the RFC's handler) preserves any cdev: accepted, then handed back */
                        expect_result(c, "{\"id\":5,\"method\":\"preserve\",\"label\":\"u\"}", 0, &cdev, 1, "v4: an unbound cdev");
                        expect_result(c, "{\"id\":6,\"method\":\"unpreserve\",\"label\":\"u\"}", 0, NULL, 0, "v4: unpreserve it");
                }
                close(opath);
                close(null);
                close(iommu);
                close(cdev);

                /* a kernel refusal (EBUSY: the file is preserved by another VM) uses no token */
                d = vmm_conn("vm-d");
                x = contract_memfd("x");
                expect_result(d, "{\"id\":2,\"method\":\"preserve\",\"label\":\"x\"}", 0, &x, 1, "vm-d preserves x");
                ram = contract_memfd("contract-ram0");
                r = request(c, "{\"id\":7,\"method\":\"preserve\",\"label\":\"ram0\"}", &ram, 1, 5);
                CHECK(int_at(r, "result", "token") == 1, "vm-c ram0 is token 1 (%s)", r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                expect_error_text(c, "{\"id\":8,\"method\":\"preserve\",\"label\":\"x\"}", &x, 1, "kernel-error", EBUSY,
                                  "PRESERVE_FD", "vm-c preserves vm-d's file");
                y = contract_memfd("contract-y");
                r = request(c, "{\"id\":9,\"method\":\"preserve\",\"label\":\"y\"}", &y, 1, 5);
                CHECK(int_at(r, "result", "token") == 2, "the refusal used no token: y is token 2 (%s)",
                      r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                expect_result(d, "{\"id\":3,\"method\":\"forget\"}", 0, NULL, 0, "vm-d forgets");
                close(d);

                /* invalid-state carries EBUSY, as the error table says */
                expect_error_text(c, "{\"id\":10,\"method\":\"reclaim\",\"label\":\"ram0\"}", NULL, 0, "invalid-state", EBUSY,
                                  "did not come across", "reclaim before any update");
                expect_error_text(c, "[1]", NULL, 0, "invalid-message", EINVAL, "not a JSON object", "a JSON array");

                /* delegated: the VMM's own PRESERVE_FD on its session, 0xBA40 on both ABIs */
                g = vmm_conn("vm-g");
                if (send_str(g, "{\"id\":2,\"method\":\"session\"}") < 0)
                        bail("send");
                r = recv_reply(g, 5, &sess);
                CHECK(result_of(r) && sess >= 0, "vm-g got its session fd");
                json_object_put(r);
                x = contract_memfd("delegated-ram");
                a = (struct luo_fd_arg) { .size = sizeof(a), .fd = x, .token = 7 };
                CHECK(ioctl(sess, 0xBA40, &a) == 0, "PRESERVE_FD (0xBA40) of a memfd as token 7: %s", strerror(errno));
                close(sess);
                close(x);
                /* disconnected VMMs are not asked to acknowledge; what they handed over stays */
                close(g);
                close(c);
                say("contract: boot 0 checks done, updating");
                prepare_and_commit(NULL);
        }

        upstream = load_int("upstream");
        CHECK(strcmp(status_state(), "restoring") == 0, "restoring while vm-c and vm-g are not reclaimed");
        /* forget after a reboot, for a VM that did not come across it; the connection then needs a hello */
        d = vmm_conn("vm-new");
        {
                int m = contract_memfd("new");
                expect_result(d, "{\"id\":2,\"method\":\"preserve\",\"label\":\"m\"}", 0, &m, 1, "vm-new preserves while restoring");
                close(m);
        }
        expect_result(d, "{\"id\":3,\"method\":\"forget\"}", 0, NULL, 0, "vm-new forgets while restoring");
        expect_error(d, "{\"id\":4,\"method\":\"list\"}", 0, NULL, 0, "hello-required", "a request after forget");
        r = hello_as(d, "vm-new2");
        CHECK(result_of(r) != NULL, "a new hello on the same connection (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        expect_result(d, "{\"id\":5,\"method\":\"forget\"}", 0, NULL, 0, "vm-new2 forgets");
        close(d);
        c = connect_sock(vmm_sock);
        r = hello_as(c, "vm-c");
        expect_error_text(c, "{\"id\":2,\"method\":\"forget\"}", NULL, 0, "invalid-state", EBUSY, "cannot forget",
                          "forget of a VM that came across the update");
        json_object_put(r);
        {
                int fds[2] = { -1, -1 };
                size_t n = 0;
                if (send_str(c, "{\"id\":3,\"method\":\"reclaim\",\"labels\":[\"ram0\",\"y\"]}") < 0)
                        bail("send");
                r = recv_reply_fds(c, 20, fds, &n);
                CHECK(result_of(r) && n == 2 && memfd_holds(fds[0], "contract-ram0") && memfd_holds(fds[1], "contract-y"),
                      "vm-c reclaims ram0 and y, contents intact");
                json_object_put(r);
                for (size_t i = 0; i < n; i++)
                        close(fds[i]);
        }
        expect_result(c, "{\"id\":4,\"method\":\"restored\"}", 0, NULL, 0, "vm-c restored");
        CHECK(strcmp(status_state(), "restoring") == 0, "still restoring: vm-g is not restored");
        expect_result(c, "{\"id\":5,\"method\":\"forget\"}", 0, NULL, 0, "vm-c, restored, may forget while restoring");
        close(c);
        g = vmm_conn("vm-g");
        {
                int sess = -1;
                struct luo_fd_arg a = { .size = sizeof(a), .fd = -1, .token = 7 };
                unsigned long nr = upstream ? 0xBA41 : 0xBA42;   /* RETRIEVE_FD / v4 RESTORE_FD */
                if (send_str(g, "{\"id\":2,\"method\":\"session\"}") < 0)
                        bail("send");
                r = recv_reply(g, 5, &sess);
                CHECK(json_object_get_boolean(json_object_object_get(result_of(r), "incoming")) && sess >= 0,
                      "vm-g gets its incoming session");
                json_object_put(r);
                CHECK(ioctl(sess, nr, &a) == 0 && memfd_holds(a.fd, "delegated-ram"),
                      "%s (0x%lX) of token 7 gives the memfd back", upstream ? "RETRIEVE_FD" : "RESTORE_FD", nr);
                if (a.fd >= 0)
                        close(a.fd);
                close(sess);
        }
        expect_result(g, "{\"id\":3,\"method\":\"restored\"}", 0, NULL, 0, "vm-g restored");
        close(g);
        for (int i = 0; i < 500 && strcmp(status_state(), "idle") != 0; i++)
                usleep(10000);
        CHECK(strcmp(status_state(), "idle") == 0, "idle after both VMs restored");

        /* The next update in this boot: once prepared, no VM may unpreserve or forget, whether
         * or not it came across the last update (boot_incoming stays set for the whole boot). */
        d = vmm_conn("vm-late");
        {
                int m = contract_memfd("late");
                expect_result(d, "{\"id\":2,\"method\":\"preserve\",\"label\":\"m\"}", 0, &m, 1, "vm-late preserves m");
                close(m);
        }
        close(d);   /* not connected: prepare waits for nobody */
        r = prepare(0);
        CHECK(result_of(r) != NULL, "the second update of this boot is prepared (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        d = vmm_conn("vm-late");
        expect_error_text(d, "{\"id\":3,\"method\":\"unpreserve\",\"label\":\"m\"}", NULL, 0, "invalid-state", EBUSY,
                          "cannot unpreserve while the update is prepared", "unpreserve during the next update");
        expect_error_text(d, "{\"id\":4,\"method\":\"forget\"}", NULL, 0, "invalid-state", EBUSY,
                          "cannot forget a VM while the update is prepared", "forget during the next update");
        close(d);
        r = ctl("{\"id\":30,\"method\":\"cancel\"}", 10);
        CHECK(result_of(r) != NULL, "the second update is cancelled (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        d = vmm_conn("vm-late");
        expect_result(d, "{\"id\":5,\"method\":\"forget\"}", 0, NULL, 0, "vm-late forgets once idle again");
        close(d);
        return 0;
}

/* [Access]: who may connect, who may claim which VM. */
static int scenario_access(void) {
        struct passwd *pw = getpwnam("nobody");
        pid_t pid;

        if (adv_boot > 0)
                bail("must not reboot");
        if (!pw)
                bail("no user nobody");
        e2e_start_daemon();
        pid = fork();
        if (pid == 0) {
                int bad = 0, c;
                json_object *r;
                if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                        _exit(10);
                c = connect_sock(vmm_sock);
                send_fds(c, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-x\"}",
                         strlen("{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-x\"}"), NULL, 0);
                r = recv_reply(c, 5, NULL);
                bad += !(err_code(r) && strcmp(err_code(r), "permission-denied") == 0);
                json_object_put(r);
                send_fds(c, "{\"id\":2,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-n1\"}",
                         strlen("{\"id\":2,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-n1\"}"), NULL, 0);
                r = recv_reply(c, 5, NULL);
                bad += result_of(r) == NULL;
                json_object_put(r);
                _exit(bad);
        }
        CHECK(wait_pid(pid, 10) == 0, "nobody may claim vm-n1 (VMClaim=nobody vm-n*) but not vm-x");
        pid = fork();
        if (pid == 0) {
                int c;
                json_object *r;
                /* a uid that is not in AllowUsers is refused at connect */
                if (setgid(65533) < 0 || setuid(65533) < 0)
                        _exit(10);
                c = connect_sock(vmm_sock);
                r = c >= 0 ? recv_reply(c, 5, NULL) : NULL;
                _exit(err_code(r) && strcmp(err_code(r), "permission-denied") == 0 ? 0 : 1);
        }
        CHECK(wait_pid(pid, 10) == 0, "uid 65533 (not in AllowUsers) refused at connect");
        expect_fresh_fds("after the refused clients");
        return 1;
}

int main(int argc, char **argv) {
        const char *b = getenv("LUO_EMU_BOOT");
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 4) {
                fprintf(stderr, "usage: e2e-driver SCENARIO LU_VFIOD EXAMPLE_VMM\n");
                return 2;
        }
        adv_prefix = "e2e";
        adv_show_progress = true;
        fds_skip_timerfd = true;
        adv_name = argv[1];
        daemon_bin = argv[2];
        vmm_bin = argv[3];
        work_dir = getenv("E2E_DIR");
        if (!b || !work_dir)
                bail("run under luo-emu with E2E_DIR set");
        adv_boot = atoi(b);
        if (adv_boot > 1)
                bail("unexpected boot %d", adv_boot);
        snprintf(vmm_sock, sizeof(vmm_sock), "%s/vmm.sock", work_dir);
        snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", work_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", work_dir);
        snprintf(conf_path, sizeof(conf_path), "%s/lu-vfiod.conf", work_dir);
        if (adv_boot == 0) {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", work_dir, work_dir);
                if (system(cmd) != 0)
                        bail("cannot create %s", work_dir);
                write_text(conf_path,
                           strcmp(adv_name, "bind-devices") == 0 ?
                           "[Update]\nPrepareTimeoutSec=10\nFreezeTimeoutSec=10\n"
                           "[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=20\nUnclaimedPolicy=release\nBindDevices=yes\n" :
                           strcmp(adv_name, "access") == 0 ?
                           "[Access]\nAllowUsers=root nobody\nVMClaim=nobody vm-n*\n" :
                           "[Limits]\nMaxConnectionsPerUser=16\n"
                           "[Update]\nPrepareTimeoutSec=10\nFreezeTimeoutSec=10\n"
                           "[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=3\nUnclaimedPolicy=release\n");
        }
        signal(SIGPIPE, SIG_IGN);

        if (strcmp(adv_name, "basic") == 0)
                r = scenario_full(1, false, false, NULL);
        else if (strcmp(adv_name, "demo") == 0) {
                /* three VMs, two in custodian mode and one delegated, each with a device */
                arg_demo = true;
                r = scenario_full(3, true, false, NULL);
        } else if (strcmp(adv_name, "bind-delay") == 0)
                r = scenario_full(2, false, false, NULL);
        else if (strcmp(adv_name, "multi") == 0)
                r = scenario_full(4, false, false, NULL);
        else if (strcmp(adv_name, "delegated") == 0 || strcmp(adv_name, "delegated-bind-delay") == 0)
                r = scenario_full(1, false, true, NULL);
        else if (strcmp(adv_name, "mixed") == 0)
                r = scenario_full(4, true, false, NULL);
        else if (strcmp(adv_name, "cancel") == 0)
                r = scenario_cancel();
        else if (strcmp(adv_name, "failed-reboot") == 0)
                r = scenario_failed_reboot();
        else if (strcmp(adv_name, "failed-reboot-inject") == 0)
                r = scenario_failed_inject();
        else if (strcmp(adv_name, "daemon-restart") == 0)
                r = scenario_daemon_restart();
        else if (strcmp(adv_name, "daemon-irq") == 0)
                r = scenario_daemon_irq();
        else if (strcmp(adv_name, "vmm-crash") == 0)
                r = scenario_vmm_crash();
        else if (strcmp(adv_name, "never-returns") == 0)
                r = scenario_never_returns();
        else if (strcmp(adv_name, "access") == 0)
                r = scenario_access();
        else if (strcmp(adv_name, "bind-devices") == 0)
                r = scenario_bind_devices();
        else if (strcmp(adv_name, "vf-refused") == 0)
                r = scenario_vf_refused();
        else if (strcmp(adv_name, "session-limit") == 0 || strcmp(adv_name, "session-limit-7.2") == 0)
                r = scenario_session_limit();
        else if (strcmp(adv_name, "bad-input") == 0)
                r = scenario_bad_input();
        else if (strcmp(adv_name, "reclaim-many") == 0)
                r = scenario_reclaim_many();
        else if (strcmp(adv_name, "protocol-v2") == 0)
                r = scenario_protocol_v2();
        else if (strcmp(adv_name, "contract") == 0)
                r = scenario_contract();
        else
                bail("unknown scenario %s", adv_name);
        (void) r;
        return finish_run();
}
