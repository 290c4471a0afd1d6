/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rk-init: pid 1 of the real-kernel suite's QEMU machine (tests/real-kernel/run-vm.sh).
 *
 * A small C init rather than a busybox shell script: it must reap every child as pid 1,
 * speak the daemon's JSON control socket, issue raw LUO ioctls and kexec the machine,
 * all of which a shell would need helper programs for. The scenario and the boot number
 * come from the kernel command line (rk.scenario=NAME rk.boot=N); the next boot's
 * command line is this one with rk.boot incremented, so the same kernel and initramfs
 * carry the test across every kexec. The initramfs it booted from is kept by the kernel
 * (retain_initrd) in /sys/firmware/initrd; rk-init copies it to /run/initrd.img for
 * kexec_file_load(). Results are lines on the console, ending with
 * "rk[SCENARIO boot N]: PASSED" or "...: FAILED"; then the machine reboots, which ends
 * QEMU (-no-reboot).
 *
 * Scenarios:
 *   update     boot 0: a raw session that is closed before the reboot and one that is
 *              kept; lu-vfiod with many VMs (example VMMs, one VM with more items than a
 *              7.1 session takes, a delegated VM, a VM forgotten before the update);
 *              a prepare the kernel refuses (not a kernel image); prepare + commit: the
 *              daemon itself kexecs. boot 1: every VM reclaims and verifies every byte,
 *              the daemon finishes everything; raw checks of what the kernel kept.
 *   selftests  the kernel's own LUO selftests: liveupdate, then luo_kexec_simple and
 *              luo_multi_session across two kexecs (rk-init kexecs between the stages).
 *   conformance  the project's raw conformance programs (tests/conformance/raw) that do
 *              not need VFIO, each across one kexec.
 *   bench      tests/e2e/e2e-bench in the daemon and bare modes (rk.vms=N).
 */
#include <dirent.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <linux/kexec.h>
#include <linux/reboot.h>

#include "../adversarial/adv-common.h"
#include "linux/liveupdate.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

#define RK_KERNEL "/boot/bzImage"
#define RK_INITRD "/run/initrd.img"
#define RK_ITEMS_BIG 200      /* > LUO_SESSION_MAX (128): the daemon rolls over into a second session */

static char cmdline[2048], scenario[64] = "update";
static int n_vms = 16;
/*
 * Under luo-emu instead of a real machine (rk-init --emu SCENARIO SELFTEST_DIR, pid 1 of
 * luo-emu's machine): the boot number is LUO_EMU_BOOT, nothing is mounted, the kexec
 * loads the emulator's stand-in image, and the verdict is the exit status.
 */
static bool emu;
static const char *selftest_dir = "/selftests";

/* ------------------------------------------------------------------ machine */

static void mount_or_bail(const char *src, const char *dst, const char *type) {
        (void) mkdir(dst, 0755);
        if (mount(src, dst, type, 0, NULL) < 0 && errno != EBUSY)
                bail("mount %s on %s: %m", type, dst);
}

static void machine_setup(void) {
        int fd;

        mount_or_bail("devtmpfs", "/dev", "devtmpfs");
        fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0) {
                dup2(fd, 0);
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
        }
        mount_or_bail("proc", "/proc", "proc");
        mount_or_bail("sysfs", "/sys", "sysfs");
        mount_or_bail("tmpfs", "/run", "tmpfs");
        mount_or_bail("tmpfs", "/tmp", "tmpfs");
        (void) mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
}

static void cmdline_read(void) {
        FILE *f = fopen("/proc/cmdline", "re");
        char *p;

        if (!f || !fgets(cmdline, sizeof(cmdline), f))
                bail("cannot read /proc/cmdline: %m");
        fclose(f);
        cmdline[strcspn(cmdline, "\n")] = 0;
        if ((p = strstr(cmdline, "rk.scenario=")))
                sscanf(p + strlen("rk.scenario="), "%63[^ ]", scenario);
        if ((p = strstr(cmdline, "rk.boot=")))
                adv_boot = atoi(p + strlen("rk.boot="));
        if ((p = strstr(cmdline, "rk.vms=")))
                n_vms = atoi(p + strlen("rk.vms="));
}

/* The command line of the next boot: this one with rk.boot=N+1. */
static void cmdline_next(char *buf, size_t size) {
        char *p = strstr(cmdline, "rk.boot=");
        size_t n;

        if (!p)
                bail("no rk.boot= on the command line");
        n = (size_t) (p - cmdline);
        snprintf(buf, size, "%.*srk.boot=%d%s", (int) n, cmdline, adv_boot + 1, p + strcspn(p, " "));
}

/* The kernel kept the initramfs we booted from (retain_initrd): a file for kexec_file_load(). */
static void initrd_save(void) {
        char buf[65536];
        int in = open("/sys/firmware/initrd", O_RDONLY | O_CLOEXEC), out;
        ssize_t n;

        if (in < 0)
                bail("open /sys/firmware/initrd (retain_initrd on the command line?): %m");
        out = open(RK_INITRD, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0)
                bail("create %s: %m", RK_INITRD);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t) n) != n)
                        bail("write %s: %m", RK_INITRD);
        if (n < 0)
                bail("read /sys/firmware/initrd: %m");
        close(in);
        close(out);
}

/* Ends the run: the verdict line, then a reboot that QEMU (-no-reboot) turns into its exit. */
__attribute__((noreturn)) static void machine_end(void) {
        say("%s", failures ? "FAILED" : "PASSED");
        if (emu)
                _exit(failures ? 1 : 0);
        sync();
        reboot(RB_AUTOBOOT);
        for (;;)
                pause();
}

/* bail() exits: as pid 1 that would panic the kernel; end the run with the verdict instead. */
static void machine_atexit(void) {
        failures += failures == 0;
        machine_end();
}

/* kexec the same kernel and initramfs into the next boot (the selftests' do_kexec.sh, without kexec-tools). */
static void machine_kexec(void) {
        char next[2048], image[300];
        int k, i;

        if (emu) {
                write_kernel(image, sizeof(image));
                k = open(image, O_RDONLY | O_CLOEXEC);
                i = open("/dev/null", O_RDONLY | O_CLOEXEC);
                snprintf(next, sizeof(next), "liveupdate=on kho=on rk.boot=%d", adv_boot + 1);
        } else {
                k = open(RK_KERNEL, O_RDONLY | O_CLOEXEC);
                i = open(RK_INITRD, O_RDONLY | O_CLOEXEC);
                cmdline_next(next, sizeof(next));
        }
        if (k < 0 || i < 0)
                bail("open the kernel or initrd: %m");
        if (syscall(SYS_kexec_file_load, k, emu ? -1 : i, strlen(next) + 1, next,
                    emu ? (unsigned long) KEXEC_FILE_NO_INITRAMFS : 0UL) < 0)
                bail("kexec_file_load: %m");
        say("kexec into boot %d", adv_boot + 1);
        sync();
        reboot(LINUX_REBOOT_CMD_KEXEC);
        bail("reboot(LINUX_REBOOT_CMD_KEXEC) returned: %m");
}

static int run(char *const argv[], double timeout) {
        pid_t pid = spawn(argv);
        int st = wait_pid(pid, timeout);
        if (st < 0) {
                kill(pid, SIGKILL);
                (void) wait_pid(pid, 5);
        }
        return st;
}

/* ------------------------------------------------------------------ raw LUO */

static uint64_t raw_word(uint64_t seed, size_t i) {
        return seed * 0x100000001B3ULL ^ (i * 0x9E3779B97F4A7C15ULL);
}

static int raw_memfd(uint64_t seed, size_t size) {
        int fd = memfd_create("rk-raw", MFD_CLOEXEC);
        uint64_t *p;

        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                bail("memfd: %m");
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                bail("mmap: %m");
        for (size_t i = 0; i < size / 8; i++)
                p[i] = raw_word(seed, i);
        munmap(p, size);
        return fd;
}

static bool raw_verify(int fd, uint64_t seed, size_t size) {
        const uint64_t *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        bool ok = p != MAP_FAILED;

        for (size_t i = 0; ok && i < size / 8; i++)
                ok = p[i] == raw_word(seed, i);
        if (p != MAP_FAILED)
                munmap((void *) p, size);
        return ok;
}

static int raw_session(int luo, unsigned long cmd, const char *name) {
        struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };
        snprintf((char *) a.name, sizeof(a.name), "%s", name);
        if (ioctl(luo, cmd, &a) < 0)
                return -errno;
        return a.fd;
}

static int raw_preserve(int session, int fd, uint64_t token) {
        struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };
        return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &a) < 0 ? -errno : 0;
}

static int raw_retrieve(int session, uint64_t token) {
        struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = token };
        return ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0 ? -errno : a.fd;
}

static int raw_finish(int session) {
        struct liveupdate_session_finish a = { .size = sizeof(a) };
        return ioctl(session, LIVEUPDATE_SESSION_FINISH, &a) < 0 ? -errno : 0;
}

#define RAW_SIZE (256 * 1024)
static int raw_kept = -1;   /* held by pid 1 across the kexec, next to the daemon's sessions */

/* Boot 0, before the daemon: one session closed again (must be gone), one kept. */
static void raw_before(void) {
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC), s, m, r;

        if (luo < 0)
                bail("open /dev/liveupdate: %m");
        s = raw_session(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "rk:closed");
        CHECK(s >= 0, "raw: CREATE_SESSION rk:closed (%s)", s < 0 ? strerror(-s) : "ok");
        m = raw_memfd(1, RAW_SIZE);
        r = s >= 0 ? raw_preserve(s, m, 1) : -EBADF;
        CHECK(r == 0, "raw: PRESERVE_FD into rk:closed (%s)", strerror(-r));
        close(m);
        close(s);    /* last reference: the kernel unpreserves the memfd and drops the session */

        raw_kept = raw_session(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "rk:kept");
        CHECK(raw_kept >= 0, "raw: CREATE_SESSION rk:kept");
        m = raw_memfd(2, RAW_SIZE);
        r = raw_preserve(raw_kept, m, 7);
        CHECK(r == 0, "raw: PRESERVE_FD into rk:kept (%s)", strerror(-r));
        r = raw_preserve(raw_kept, m, 8);
        CHECK(r == -EBUSY || r == -EEXIST, "raw: the same memfd a second time is refused (%s)", strerror(-r));
        close(m);
        s = raw_session(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "rk:kept");
        CHECK(s == -EEXIST, "raw: a duplicate session name is refused with EEXIST (%s)", strerror(-s));
        close(luo);  /* the device is free for the daemon; the session fd stays valid */
}

/* Boot 1, after the daemon exited: what the kernel kept, and that the daemon left nothing behind. */
static void raw_after(void) {
        static const char *gone[] = { "rk:closed", "luvf:state", "luvf:vm-0:0", "luvf:big:0", "luvf:big:1",
                                      "luvf:vm-forget:0" };
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC), s, m, r;

        if (luo < 0)
                bail("open /dev/liveupdate after the daemon: %m");
        for (size_t i = 0; i < ELEMS(gone); i++) {
                s = raw_session(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, gone[i]);
                CHECK(s == -ENOENT, "raw: RETRIEVE_SESSION %s -> ENOENT (%s)", gone[i], s < 0 ? strerror(-s) : "retrieved");
                if (s >= 0)
                        close(s);
        }
        s = raw_session(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "rk:kept");
        CHECK(s >= 0, "raw: RETRIEVE_SESSION rk:kept (%s)", s < 0 ? strerror(-s) : "ok");
        if (s < 0)
                return;
        m = raw_retrieve(s, 7);
        CHECK(m >= 0 && raw_verify(m, 2, RAW_SIZE), "raw: rk:kept's memfd retrieved, every byte intact (%s)",
              m < 0 ? strerror(-m) : "ok");
        r = raw_retrieve(s, 8);
        CHECK(r == -ENOENT, "raw: RETRIEVE_FD of an unknown token -> ENOENT (%s)", strerror(-r));
        r = raw_finish(s);
        CHECK(r == 0, "raw: FINISH rk:kept (%s)", strerror(-r));
        if (m >= 0)
                close(m);
        close(s);
        close(luo);
}

/* ------------------------------------------------------------------ update */

static const char *example_vmm = "/bin/example-vmm", *rk_vmm = "/bin/rk-vmm";

typedef struct Vm {
        char id[32], ready[64];
        char *argv[12];
        char a[4][300];
        pid_t pid;
} Vm;

static void vm_init(Vm *v, const char *bin, const char *id, const char *opt1, const char *opt2, const char *opt3) {
        int n = 0;

        snprintf(v->id, sizeof(v->id), "%s", id);
        snprintf(v->ready, sizeof(v->ready), "/run/%s.ready", id);
        v->argv[n++] = (char *) bin;
        snprintf(v->a[0], sizeof(v->a[0]), "--socket=%s", vmm_sock);
        snprintf(v->a[1], sizeof(v->a[1]), "--vm=%s", id);
        snprintf(v->a[2], sizeof(v->a[2]), "--ready-file=%s", v->ready);
        for (int i = 0; i < 3; i++)
                v->argv[n++] = v->a[i];
        if (opt1)
                v->argv[n++] = (char *) opt1;
        if (opt2)
                v->argv[n++] = (char *) opt2;
        if (opt3)
                v->argv[n++] = (char *) opt3;
        v->argv[n] = NULL;
}

static size_t vms_make(Vm *v, size_t max) {
        size_t n = 0;
        char id[32];

        for (int i = 0; i < n_vms && n < max - 3; i++) {
                snprintf(id, sizeof(id), "vm-%d", i);
                vm_init(&v[n++], example_vmm, id, "--ram-kib=256", NULL, NULL);
        }
        vm_init(&v[n++], rk_vmm, "big", "--items=" STRINGIFY(RK_ITEMS_BIG), "--kib=16", NULL);
        vm_init(&v[n++], rk_vmm, "deleg", "--items=8", "--kib=64", "--delegated");
        return n;
}

static void vms_start(Vm *v, size_t n, bool wait_ready) {
        for (size_t i = 0; i < n; i++) {
                unlink(v[i].ready);
                v[i].pid = spawn(v[i].argv);
        }
        if (!wait_ready)
                return;
        for (size_t i = 0; i < n; i++)
                for (double end = now_s() + 120; access(v[i].ready, F_OK) < 0;) {
                        int st;
                        if (waitpid(v[i].pid, &st, WNOHANG) == v[i].pid)
                                bail("VMM %s exited before it was ready (status %d)", v[i].id, st);
                        if (now_s() > end)
                                bail("VMM %s not ready after 120 s", v[i].id);
                        usleep(10000);
                }
}

static void daemon_config(void) {
        write_text(conf_path,
                   "# lu-vfiod inside the test machine: no D-Bus, no systemd; the daemon kexecs itself\n"
                   "[Service]\nKexecMode=direct\nDBus=no\n"
                   "[Update]\nPrepareTimeoutSec=300\nFreezeTimeoutSec=300\n"
                   "[Restore]\nReclaimGraceSec=600\n");
}

static bool reply_has(json_object *r, const char *needle) {
        return r && strstr(json_object_to_json_string(r), needle);
}

/* The member at dotted @path ("result.timeline.result") of @r, or NULL. */
static json_object *reply_get(json_object *r, const char *path) {
        char buf[128], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *k = strtok_r(buf, ".", &save); r && k; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(r, k, &r))
                        return NULL;
        return r;
}

static bool reply_is(json_object *r, const char *path, const char *value) {
        json_object *v = reply_get(r, path);
        return v && strcmp(json_object_get_string(v), value) == 0;
}

/* The result ("pass", "fail", ...) of pre-flight check @name in a check-prepare reply, its detail in @detail. */
static const char *check_result(json_object *r, const char *name, const char **detail) {
        json_object *checks = reply_get(r, "result.checks");

        for (size_t i = 0; checks && i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                if (reply_is(c, "check", name)) {
                        *detail = json_object_get_string(reply_get(c, "detail"));
                        return json_object_get_string(reply_get(c, "result"));
                }
        }
        *detail = "";
        return NULL;
}

static void scenario_update(void) {
        static Vm v[80];
        size_t n = vms_make(v, ELEMS(v));
        json_object *r;
        char req[4096], next[2048];

        daemon_config();
        if (adv_boot == 0) {
                Vm forget;

                raw_before();
                start_daemon();
                say("daemon up; %zu VMs hand over their guest RAM", n);
                vms_start(v, n, true);
                vm_init(&forget, rk_vmm, "vm-forget", "--items=3", "--kib=16", "--forget");
                vms_start(&forget, 1, false);
                CHECK(wait_pid(forget.pid, 120) == 0, "vm-forget handed over 3 memfds and forgot its VM");
                r = ctl("{\"id\":2,\"method\":\"list\"}", 30);
                CHECK(reply_has(r, "\"luvf:big:1\""), "the VM with %d items rolled over into a second session",
                      RK_ITEMS_BIG);
                CHECK(!reply_has(r, "vm-forget"), "the forgotten VM is gone from the registry");
                json_object_put(r);

                /* the kernel refuses a file that is no kernel image (kexec_file_load: ENOEXEC) */
                r = ctl("{\"id\":3,\"method\":\"prepare\",\"kernel\":\"/bin/rk-init\"}", 120);
                CHECK(reply_is(r, "error.code", "kernel-error") && reply_is(r, "error.errno", STRINGIFY(ENOEXEC)),
                      "prepare with a non-kernel refused by kexec_file_load (%s)",
                      r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                CHECK(strcmp(status_state(), "idle") == 0, "idle again after the refused prepare");

                initrd_save();
                cmdline_next(next, sizeof(next));

                /* The pre-flight of the real next kernel: its config-7.1.8 beside it, its version. */
                snprintf(req, sizeof(req),
                         "{\"id\":6,\"method\":\"check-prepare\",\"kernel\":\"%s\",\"initrd\":\"%s\",\"cmdline\":\"%s\"}",
                         RK_KERNEL, RK_INITRD, next);
                r = ctl(req, 120);
                CHECK(result_of(r) && !reply_get(r, "result.refused_by"), "check-prepare of the real next kernel: nothing refuses (%s)",
                      r ? json_object_to_json_string(r) : "no reply");
                {
                        static const char *const opts[] = { "next-config:CONFIG_KEXEC_HANDOVER", "next-config:CONFIG_LIVEUPDATE",
                                                            "next-config:CONFIG_LIVEUPDATE_MEMFD" };
                        const char *res, *detail;
                        for (size_t i = 0; i < ELEMS(opts); i++) {
                                res = check_result(r, opts[i], &detail);
                                CHECK(res && strcmp(res, "pass") == 0 && strstr(detail, "/boot/config-"),
                                      "%s passes, read from /boot/config-* (%s: %s)", opts[i], res ?: "missing", detail);
                        }
                        res = check_result(r, "next-version", &detail);
                        CHECK(res && strcmp(res, "pass") == 0, "next-version: the running series (%s: %s)", res ?: "missing", detail);
                        res = check_result(r, "next-signature", &detail);
                        say("next-signature: %s: %s", res ?: "missing", detail);
                }
                json_object_put(r);
                CHECK(strcmp(status_state(), "idle") == 0, "check-prepare left the state idle");

                snprintf(req, sizeof(req),
                         "{\"id\":4,\"method\":\"prepare\",\"kernel\":\"%s\",\"initrd\":\"%s\",\"cmdline\":\"%s\"}",
                         RK_KERNEL, RK_INITRD, next);
                r = ctl(req, 600);
                if (!result_of(r))
                        bail("prepare failed: %s", r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                say("prepared; committing (the daemon kexecs the machine)");
                r = ctl("{\"id\":5,\"method\":\"commit\"}", 600);
                bail("commit returned instead of rebooting: %s", r ? json_object_to_json_string(r) : "no reply");
        }

        /* boot 1 */
        start_daemon();
        r = ctl("{\"id\":2,\"method\":\"status\"}", 30);
        CHECK(reply_is(r, "result.boot_incoming", "true") && reply_is(r, "result.state", "restoring"),
              "the daemon found its state session: an update came in, restoring");
        json_object_put(r);
        r = ctl("{\"id\":3,\"method\":\"list\"}", 30);
        CHECK(!reply_has(r, "vm-forget"), "the VM forgotten before the update did not come back");
        CHECK(reply_has(r, "\"big\""), "the VM with %d items is known again", RK_ITEMS_BIG);
        json_object_put(r);
        vms_start(v, n, false);
        for (size_t i = 0; i < n; i++) {
                int st = wait_pid(v[i].pid, 600);
                CHECK(st == 0, "VMM %s reclaimed, verified every byte and restored (status %d)", v[i].id, st);
        }
        for (int i = 0; i < 6000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(20000);
        CHECK(strcmp(status_state(), "idle") == 0, "daemon idle: the update is complete");
        r = ctl("{\"id\":20,\"method\":\"timeline\"}", 30);
        CHECK(reply_is(r, "result.timeline.result", "done"), "timeline result done");
        say("timeline: %s", r ? json_object_to_json_string(r) : "none");
        json_object_put(r);
        kill(daemon_pid, SIGTERM);
        CHECK(wait_pid(daemon_pid, 60) == 0, "daemon exited cleanly on SIGTERM");
        daemon_pid = -1;
        raw_after();
}

/* ------------------------------------------------------------------ selftests */

/* The kernel's tools/testing/selftests/liveupdate programs; rk-init kexecs between the stages. */
static void scenario_selftests(void) {
        char p_lu[300], p_simple[300], p_multi[300];
        char *liveupdate[] = { p_lu, NULL };
        char *simple1[] = { p_simple, (char *) "--stage", (char *) "1", NULL };
        char *simple2[] = { p_simple, (char *) "--stage", (char *) "2", NULL };
        char *multi1[] = { p_multi, (char *) "--stage", (char *) "1", NULL };
        char *multi2[] = { p_multi, (char *) "--stage", (char *) "2", NULL };
        int st;

        snprintf(p_lu, sizeof(p_lu), "%s/liveupdate", selftest_dir);
        snprintf(p_simple, sizeof(p_simple), "%s/luo_kexec_simple", selftest_dir);
        snprintf(p_multi, sizeof(p_multi), "%s/luo_multi_session", selftest_dir);
        if (!emu)
                initrd_save();
        switch (adv_boot) {
        case 0:
                st = run(liveupdate, 600);
                CHECK(st == 0, "selftest liveupdate (status %d)", st);
                st = run(simple1, 300);
                CHECK(st == 0, "selftest luo_kexec_simple stage 1 (status %d)", st);
                if (failures)
                        break;
                machine_kexec();
                break;
        case 1:
                st = run(simple2, 300);
                CHECK(st == 0, "selftest luo_kexec_simple stage 2 (status %d)", st);
                st = run(multi1, 300);
                CHECK(st == 0, "selftest luo_multi_session stage 1 (status %d)", st);
                if (failures)
                        break;
                machine_kexec();
                break;
        default:
                st = run(multi2, 300);
                CHECK(st == 0, "selftest luo_multi_session stage 2 (status %d)", st);
        }
}

/* ------------------------------------------------------------------ conformance */

/*
 * The project's raw conformance programs (tests/conformance/raw) that need no VFIO, on
 * the real kernel. Each starts on a fresh boot (rk-init kexecs into it, with the
 * command line the program expects), runs with the harness's boot number in
 * LUO_EMU_BOOT and its TAP counts and notes in LUO_TEST_STATE on a disk mounted -o sync
 * (the only file system that outlives a kexec here), kexecs itself through the real
 * kernel (LUO_RAW_KERNEL, LUO_RAW_INITRD, LUO_RAW_CMDLINE_PREFIX) as often as it needs,
 * and ends with its exit status. rk-init's own place in the list is on the disk too.
 */
static const struct { const char *name, *cmdline; } conformance[] = {
        { "device", "kho=on liveupdate=on" },
        { "encoding", "kho=on liveupdate=on" },
        { "session", "kho=on liveupdate=on" },
        { "preserve", "kho=on liveupdate=on" },
        { "memfd", "kho=on liveupdate=on" },
        { "lifecycle", "kho=on liveupdate=on" },
        { "kexec", "kho=on liveupdate=on" },
        { "disabled", "kho=on" },
};

#define CONF_DIR "/mnt"
#define CONF_PREFIX "console=ttyS0 no_timer_check retain_initrd panic=-1 rk.scenario=conformance"

static void conf_state_write(int idx, int boot) {
        char t[64];
        snprintf(t, sizeof(t), "%d %d\n", idx, boot);
        write_text(CONF_DIR "/rk.state", t);
}

/* kexec into a fresh boot with @cmdline after the prefix (nothing preserved). */
__attribute__((noreturn)) static void conf_kexec(const char *extra) {
        char next[1024];
        int k = open(RK_KERNEL, O_RDONLY | O_CLOEXEC), i = open(RK_INITRD, O_RDONLY | O_CLOEXEC);

        snprintf(next, sizeof(next), "%s %s", CONF_PREFIX, extra);
        if (k < 0 || i < 0 || syscall(SYS_kexec_file_load, k, i, strlen(next) + 1, next, 0UL) < 0)
                bail("kexec_file_load: %m");
        sync();
        reboot(LINUX_REBOOT_CMD_KEXEC);
        bail("reboot(LINUX_REBOOT_CMD_KEXEC) returned: %m");
        exit(1);
}

static void scenario_conformance(void) {
        int idx = 0, boot = -1;
        FILE *f;

        (void) mkdir(CONF_DIR, 0755);
        if (mount("/dev/vda", CONF_DIR, "ext2", MS_SYNCHRONOUS, NULL) < 0)
                bail("mount /dev/vda (ext2) on " CONF_DIR ": %m");
        initrd_save();
        /* the boots of this machine, for the log lines (the command line does not count them here) */
        adv_boot = load_int("machine-boots") + 1;
        save_int("machine-boots", adv_boot);
        f = fopen(CONF_DIR "/rk.state", "re");
        if (f) {
                if (fscanf(f, "%d %d", &idx, &boot) != 2)
                        bail("bad " CONF_DIR "/rk.state");
                fclose(f);
        }
        /* the verdicts of the programs that ended in earlier boots */
        failures = load_int("conf-failures") > 0 ? load_int("conf-failures") : 0;
        for (;;) {
                char prog[300], state[300], sboot[16], *argv[2] = { prog, NULL };
                int st;

                if (idx >= (int) ELEMS(conformance))
                        return;
                if (boot < 0) {
                        conf_state_write(idx, 0);
                        say("conformance %s: kexec into a fresh boot", conformance[idx].name);
                        conf_kexec(conformance[idx].cmdline);
                }
                snprintf(prog, sizeof(prog), "/conformance/conf-raw-%s", conformance[idx].name);
                snprintf(state, sizeof(state), CONF_DIR "/raw-%s.state", conformance[idx].name);
                snprintf(sboot, sizeof(sboot), "%d", boot);
                setenv("LUO_EMU_BOOT", sboot, 1);
                setenv("LUO_TEST_STATE", state, 1);
                setenv("LUO_RAW_KERNEL", RK_KERNEL, 1);
                setenv("LUO_RAW_INITRD", RK_INITRD, 1);
                setenv("LUO_RAW_CMDLINE_PREFIX", CONF_PREFIX, 1);
                conf_state_write(idx, boot + 1);   /* if the program kexecs, its next boot */
                say("conformance %s boot %d", conformance[idx].name, boot);
                st = run(argv, 600);
                CHECK(st == 0, "conformance raw-%s on the real kernel (status %d)", conformance[idx].name, st);
                save_int("conf-failures", failures);
                idx++;
                boot = -1;
                conf_state_write(idx, boot);
                /* the next program gets a fresh boot */
        }
}

/* ------------------------------------------------------------------ bench */

/*
 * The daemon's freeze and restore paths against the bare kernel calls, on the real
 * kernel, at 1, 16 and 64 VMs x 4 memfds of 64 KiB, all in one run of the machine
 * (a benchmark, not a test: docs/performance.md). Per size: boot A creates the bare
 * sessions and kexecs; boot B restores them, then the daemon takes the same load from N
 * rk-vmm processes, prepares and commits; boot C restores through the daemon (and starts
 * the next size). The step and the numbers live on the disk (ext2, -o sync).
 *
 *   freeze->call  bare: start of the freeze work (state memfd write, sync) -> the
 *                 reboot(KEXEC) call; daemon: commit request sent -> the daemon's own
 *                 t_reboot_us (its timeline, read back after the kexec). One clock
 *                 (CLOCK_REALTIME) within boot 0 of the pair.
 *   restore       bare: exec of the restoring program (rk-init again) -> every session
 *                 retrieved, every byte checked, FINISHed; daemon: spawn of lu-vfiod ->
 *                 N restarted VMMs reclaimed, checked every byte, were answered restored,
 *                 and the daemon is idle. CLOCK_MONOTONIC within the new boot.
 * The kernel's own part (reboot() entry -> next init) is the same for both and is not
 * the daemon's: it is left out.
 */
static const unsigned bench_sizes[] = { 1, 16, 64 };
#define BENCH_FDS 4
#define BENCH_KIB 64

static uint64_t mono_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t real_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void bench_save(const char *key, unsigned n, double v) {
        char name[64], t[64];
        snprintf(name, sizeof(name), CONF_DIR "/bench-%s-%u", key, n);
        snprintf(t, sizeof(t), "%.3f\n", v);
        write_text(name, t);
}

static double bench_load(const char *key, unsigned n) {
        char name[64];
        double v = -1;
        FILE *f;
        snprintf(name, sizeof(name), CONF_DIR "/bench-%s-%u", key, n);
        f = fopen(name, "re");
        if (f) {
                if (fscanf(f, "%lf", &v) != 1)
                        v = -1;
                fclose(f);
        }
        return v;
}

static void bench_kexec(const char *why) {
        char next[1024];
        int k = open(RK_KERNEL, O_RDONLY | O_CLOEXEC), i = open(RK_INITRD, O_RDONLY | O_CLOEXEC);

        snprintf(next, sizeof(next), "console=ttyS0 no_timer_check retain_initrd panic=-1 kho=on liveupdate=on rk.scenario=bench");
        if (k < 0 || i < 0 || syscall(SYS_kexec_file_load, k, i, strlen(next) + 1, next, 0UL) < 0)
                bail("kexec_file_load: %m");
        say("%s: kexec", why);
}

/* Boot A: N sessions x 4 memfds and a state session, then the freeze path and the reboot. */
static void bench_bare_freeze(unsigned n) {
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC), state, smfd;
        char name[64];
        uint64_t t0;

        if (luo < 0)
                bail("open /dev/liveupdate: %m");
        for (unsigned v = 0; v < n; v++) {
                int s;
                snprintf(name, sizeof(name), "bare:%u", v);
                s = raw_session(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, name);
                if (s < 0)
                        bail("create %s: %s", name, strerror(-s));
                for (unsigned i = 0; i < BENCH_FDS; i++) {
                        int m = raw_memfd(v * BENCH_FDS + i, BENCH_KIB * 1024), r = raw_preserve(s, m, i + 1);
                        if (r < 0)
                                bail("preserve: %s", strerror(-r));
                        close(m);
                }
        }
        state = raw_session(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, "bare:state");
        smfd = raw_memfd(0, 4096);
        if (state < 0 || raw_preserve(state, smfd, 1) < 0)
                bail("state session");
        bench_kexec("bare");
        t0 = real_us();
        if (pwrite(smfd, "state", 5, 0) != 5)
                bail("state write: %m");
        sync();
        bench_save("bare-freeze", n, (double) (real_us() - t0) / 1000.0);
        reboot(LINUX_REBOOT_CMD_KEXEC);
        bail("reboot returned: %m");
}

/* Boot B, after exec'ing rk-init again (the daemon is exec'ed too): retrieve, check, finish. */
static void bench_bare_restore(unsigned n, uint64_t t0) {
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC), s, m;
        char name[64];

        if (luo < 0)
                bail("open /dev/liveupdate: %m");
        s = raw_session(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, "bare:state");
        m = s >= 0 ? raw_retrieve(s, 1) : -1;
        if (m < 0 || raw_finish(s) < 0)
                bail("bare:state");
        close(m);
        close(s);
        for (unsigned v = 0; v < n; v++) {
                snprintf(name, sizeof(name), "bare:%u", v);
                s = raw_session(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, name);
                if (s < 0)
                        bail("retrieve %s: %s", name, strerror(-s));
                for (unsigned i = 0; i < BENCH_FDS; i++) {
                        m = raw_retrieve(s, i + 1);
                        if (m < 0 || !raw_verify(m, v * BENCH_FDS + i, BENCH_KIB * 1024))
                                bail("%s token %u lost or changed", name, i + 1);
                        close(m);
                }
                if (raw_finish(s) < 0)
                        bail("finish %s: %m", name);
                close(s);
        }
        bench_save("bare-restore", n, (double) (mono_us() - t0) / 1000.0);
        close(luo);
}

static size_t bench_vms(Vm *v, unsigned n) {
        char id[32];
        for (unsigned i = 0; i < n; i++) {
                snprintf(id, sizeof(id), "b%u-%u", n, i);
                vm_init(&v[i], rk_vmm, id, "--items=" STRINGIFY(BENCH_FDS), "--kib=" STRINGIFY(BENCH_KIB), NULL);
        }
        return n;
}

/* Boot B, after the bare restore: the same load through the daemon; commit kexecs. */
static void bench_daemon_freeze(unsigned n) {
        static Vm v[64];
        char req[2048];
        json_object *r;

        daemon_config();
        start_daemon();
        vms_start(v, bench_vms(v, n), true);
        snprintf(req, sizeof(req), "{\"id\":4,\"method\":\"prepare\",\"kernel\":\"%s\",\"initrd\":\"%s\","
                 "\"cmdline\":\"console=ttyS0 no_timer_check retain_initrd panic=-1 kho=on liveupdate=on rk.scenario=bench\"}",
                 RK_KERNEL, RK_INITRD);
        r = ctl(req, 600);
        if (!result_of(r))
                bail("prepare failed: %s", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        bench_save("daemon-commit-sent-us", n, (double) real_us());
        r = ctl("{\"id\":5,\"method\":\"commit\"}", 600);
        bail("commit returned: %s", r ? json_object_to_json_string(r) : "no reply");
}

static void bench_daemon_restore(unsigned n) {
        static Vm v[64];
        uint64_t t0 = mono_us();
        json_object *r, *t;
        size_t nv = bench_vms(v, n);
        bool ok = true;

        daemon_config();
        start_daemon();
        vms_start(v, nv, false);
        for (size_t i = 0; i < nv; i++)
                ok &= wait_pid(v[i].pid, 600) == 0;
        for (int i = 0; i < 60000 && strcmp(status_state(), "idle") != 0; i++)
                usleep(1000);
        bench_save("daemon-restore", n, (double) (mono_us() - t0) / 1000.0);
        CHECK(ok, "bench %u VMs: every VMM restored", n);
        r = ctl("{\"id\":20,\"method\":\"timeline\"}", 30);
        t = reply_get(r, "result.timeline");
        if (reply_get(t, "t_reboot_us"))
                bench_save("daemon-freeze", n, ((double) json_object_get_int64(reply_get(t, "t_reboot_us")) -
                                                bench_load("daemon-commit-sent-us", n)) / 1000.0);
        if (reply_get(t, "freeze_ms"))
                bench_save("daemon-own-freeze", n, json_object_get_double(reply_get(t, "freeze_ms")));
        if (reply_get(t, "restore_ms"))
                bench_save("daemon-own-restore", n, json_object_get_double(reply_get(t, "restore_ms")));
        json_object_put(r);
        kill(daemon_pid, SIGTERM);
        CHECK(wait_pid(daemon_pid, 60) == 0, "daemon exited cleanly");
        daemon_pid = -1;
}

static void bench_table(void) {
        say("BENCH | VMs | freeze->call daemon | bare | xbare | restore daemon | bare | xbare | daemon's own freeze / restore ms |");
        for (size_t k = 0; k < ELEMS(bench_sizes); k++) {
                unsigned n = bench_sizes[k];
                double df = bench_load("daemon-freeze", n), bf = bench_load("bare-freeze", n);
                double dr = bench_load("daemon-restore", n), br = bench_load("bare-restore", n);
                say("BENCH | %u | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx | %.2f / %.2f |", n, df, bf, df / bf, dr, br,
                    dr / br, bench_load("daemon-own-freeze", n), bench_load("daemon-own-restore", n));
        }
}

/* Steps per size k: 3k bare freeze (kexec), 3k+1 bare restore + daemon freeze (kexec), 3k+2 daemon restore. */
static void scenario_bench(char **argv) {
        int step = 0;

        (void) mkdir(CONF_DIR, 0755);
        if (mount("/dev/vda", CONF_DIR, "ext2", MS_SYNCHRONOUS, NULL) < 0 && errno != EBUSY)
                bail("mount /dev/vda (ext2) on " CONF_DIR ": %m");
        adv_boot = load_int("machine-boots") + 1;
        if (!getenv("RK_BENCH_T0"))
                save_int("machine-boots", adv_boot);
        initrd_save();
        step = load_int("bench-step");
        if (step < 0)
                step = 0;
        for (;;) {
                size_t k = (size_t) step / 3;
                unsigned n;

                if (k >= ELEMS(bench_sizes)) {
                        bench_table();
                        return;
                }
                n = bench_sizes[k];
                switch (step % 3) {
                case 0:
                        save_int("bench-step", step + 1);
                        bench_bare_freeze(n);
                        break;
                case 1:
                        if (!getenv("RK_BENCH_T0")) {
                                char t[32];
                                snprintf(t, sizeof(t), "%llu", (unsigned long long) mono_us());
                                setenv("RK_BENCH_T0", t, 1);
                                execv("/init", argv);
                                bail("exec /init: %m");
                        }
                        bench_bare_restore(n, strtoull(getenv("RK_BENCH_T0"), NULL, 10));
                        unsetenv("RK_BENCH_T0");
                        save_int("bench-step", step + 1);
                        bench_daemon_freeze(n);
                        break;
                default:
                        bench_daemon_restore(n);
                        step++;
                        save_int("bench-step", step);
                }
        }
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (getpid() != 1) {
                fprintf(stderr, "rk-init: must run as pid 1 of the test machine (or of luo-emu's)\n");
                return 2;
        }
        if (argc == 4 && strcmp(argv[1], "--emu") == 0 && getenv("LUO_EMU_BOOT")) {
                emu = true;
                adv_boot = atoi(getenv("LUO_EMU_BOOT"));
                snprintf(scenario, sizeof(scenario), "%s", argv[2]);
                selftest_dir = argv[3];
                if (strcmp(scenario, "selftests") != 0) {
                        fprintf(stderr, "rk-init: only the selftests scenario runs under luo-emu\n");
                        return 2;
                }
                work_dir = getenv("E2E_DIR");
                if (!work_dir || (mkdir(work_dir, 0755) < 0 && errno != EEXIST)) {
                        fprintf(stderr, "rk-init: --emu needs E2E_DIR, a directory for the stand-in kernel image\n");
                        return 2;
                }
        } else {
                machine_setup();
                cmdline_read();
                work_dir = "/run";
        }
        atexit(machine_atexit);
        adv_prefix = "rk";
        adv_name = scenario;
        fds_skip_timerfd = true;
        daemon_bin = "/bin/lu-vfiod";
        snprintf(vmm_sock, sizeof(vmm_sock), "/run/vmm.sock");
        snprintf(ctl_sock, sizeof(ctl_sock), "/run/control.sock");
        snprintf(state_dir, sizeof(state_dir), "/run/state");
        snprintf(conf_path, sizeof(conf_path), "/run/lu-vfiod.conf");
        signal(SIGPIPE, SIG_IGN);
        say("up: %s", emu ? "under luo-emu" : cmdline);

        if (strcmp(scenario, "update") == 0)
                scenario_update();
        else if (strcmp(scenario, "selftests") == 0)
                scenario_selftests();
        else if (strcmp(scenario, "conformance") == 0) {
                work_dir = CONF_DIR;
                scenario_conformance();
        } else if (strcmp(scenario, "bench") == 0) {
                work_dir = CONF_DIR;
                scenario_bench(argv);
        }
        else
                bail("unknown scenario %s", scenario);
        machine_end();
}
