/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel fault injection against lu-vfiod, run as luo-emu's COMMAND (pid 1) with a
 * `--fail=WHAT:ERRNO[:COUNT[:SKIP]][@BOOT]` or `--bind-delay=MS` chosen per scenario
 * (tests/faults/meson.build):
 *
 *   fault-driver SCENARIO LU_VFIOD        (E2E_DIR = work directory)
 *
 * Two VMs, vm-a and vm-b, preserve 64 KiB memfds with known contents (vm-a also a VFIO
 * device in bind-timeout). Each scenario checks the daemon's documented reaction to its
 * fault (docs/reliability.md "Kernel fault injection"): the error the VMM or operator gets,
 * that the other VM is unaffected, and then a full update: in boot 1 every item that the
 * kernel did not fail comes back with the right contents, the daemon returns to idle with
 * its fd count at the boot-0 baseline and exits 0 on SIGTERM (under ASan: no leak).
 *
 * luo-emu fails COUNT calls of a kind after letting SKIP through, in boot BOOT only or
 * counting across boots; each scenario's option lands the failure on the call it names
 * (the older scenarios use boot-less counts chosen for the same effect).
 */
#include <inttypes.h>
#include <sys/mman.h>

/* adv-common.h is header-only and shared: not every driver uses every helper. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../adversarial/adv-common.h"
#pragma GCC diagnostic pop

#include "vfio-dev.h"

#define ITEM_SIZE (64 * 1024)
#define VFIO0_PATH "/dev/vfio/devices/vfio0"
#define VFIO0_PCI "0000:01:00.0"
/* ReclaimGraceSec of the scenarios about the grace-period release. */
#define RELEASE_GRACE_SEC "3"

static char daemon_log[300];

/* Contents of @vm's @label: differs per VM, label and scenario. */
static void pattern(char *buf, size_t size, const char *vm, const char *label) {
        unsigned h = 5381;
        for (const char *p = vm; *p; p++)
                h = h * 33 + (unsigned char) *p;
        for (const char *p = label; *p; p++)
                h = h * 33 + (unsigned char) *p;
        for (const char *p = adv_name; *p; p++)
                h = h * 33 + (unsigned char) *p;
        for (size_t i = 0; i < size; i++)
                buf[i] = (char) ((i * 131 + h) ^ (h >> (i % 24)));
}

static int memfd_with_pattern(const char *vm, const char *label) {
        static char buf[ITEM_SIZE];
        int m = memfd_create(label, MFD_CLOEXEC);

        pattern(buf, sizeof(buf), vm, label);
        if (m < 0 || pwrite(m, buf, sizeof(buf), 0) != (ssize_t) sizeof(buf))
                bail("memfd %s/%s: %m", vm, label);
        return m;
}

static bool memfd_has_pattern(int m, const char *vm, const char *label) {
        static char want[ITEM_SIZE], got[ITEM_SIZE];

        pattern(want, sizeof(want), vm, label);
        return m >= 0 && pread(m, got, sizeof(got), 0) == (ssize_t) sizeof(got) && memcmp(want, got, sizeof(got)) == 0;
}

static const char *errmsg(json_object *reply) {
        json_object *e, *m;
        if (reply && json_object_object_get_ex(reply, "error", &e) && json_object_object_get_ex(e, "message", &m))
                return json_object_get_string(m);
        return "";
}

static int errnum(json_object *reply) {
        json_object *e, *n;
        if (reply && json_object_object_get_ex(reply, "error", &e) && json_object_object_get_ex(e, "errno", &n))
                return json_object_get_int(n);
        return 0;
}

static const char *str_of(json_object *o) {
        return o ? json_object_to_json_string(o) : "no reply";
}

/* The reply is error @code with errno @err and a message containing @text. */
static bool is_error(json_object *r, const char *code, int err, const char *text) {
        return err_code(r) && strcmp(err_code(r), code) == 0 && errnum(r) == err && strstr(errmsg(r), text);
}

static json_object *preserve(int fd, const char *label, int item) {
        char req[200];
        snprintf(req, sizeof(req), "{\"id\":20,\"method\":\"preserve\",\"label\":\"%s\"}", label);
        return request(fd, req, &item, 1, 10);
}

static void preserve_ok(int fd, const char *vm, const char *label) {
        int m = memfd_with_pattern(vm, label);
        json_object *r = preserve(fd, label, m);
        CHECK(result_of(r) != NULL, "%s preserves %s (%s)", vm, label, str_of(r));
        json_object_put(r);
        close(m);
}

/* ---- the daemon, its log, its fds ----------------------------------------------------- */

/* The daemon's stderr goes to a file: scenarios check what an operator would read there. */
static void start_daemon_logged(void) {
        int saved = dup(STDERR_FILENO), lf = open(daemon_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

        if (saved < 0 || lf < 0 || dup2(lf, STDERR_FILENO) < 0)
                bail("redirect stderr: %m");
        start_daemon();
        (void) dup2(saved, STDERR_FILENO);
        close(saved);
        close(lf);
}

static bool log_contains(const char *text) {
        static char buf[256 * 1024];
        FILE *f = fopen(daemon_log, "re");
        size_t n;

        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        return strstr(buf, text) != NULL;
}

static void dump_log(void) {
        char line[1024];
        FILE *f = fopen(daemon_log, "re");

        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                printf("  daemon: %s", line);
        fclose(f);
        fflush(stdout);
}

/* SIGTERM; the daemon must exit 0 (under ASan a leak makes LeakSanitizer exit non-zero). */
static void stop_daemon(const char *when) {
        int st;

        kill(daemon_pid, SIGTERM);
        st = wait_pid(daemon_pid, 30);
        CHECK(st == 0, "%s: daemon exits 0 after SIGTERM (status %d)", when, st);
        daemon_pid = -1;
        if (ctl_fd >= 0)
                close(ctl_fd);
        ctl_fd = -1;
}

/* Sessions and items the operator's list shows with an open fd in the daemon. */
static int held_fds(void) {
        json_object *r = ctl("{\"id\":3,\"method\":\"list\"}", 5), *vms;
        int n = 0;

        if (json_object_object_get_ex(result_of(r), "vms", &vms))
                for (size_t i = 0; i < json_object_array_length(vms); i++) {
                        json_object *ss = json_object_object_get(json_object_array_get_idx(vms, i), "sessions");
                        for (size_t j = 0; ss && j < json_object_array_length(ss); j++) {
                                json_object *items = json_object_object_get(json_object_array_get_idx(ss, j), "items");
                                n++;
                                for (size_t k = 0; items && k < json_object_array_length(items); k++) {
                                        json_object *st = json_object_object_get(json_object_array_get_idx(items, k), "state");
                                        n += st && strcmp(json_object_get_string(st), "preserved") == 0;
                                }
                        }
                }
        json_object_put(r);
        return n;
}

/* What the daemon's fds are, for the log when a count is off. */
static void print_fds(void) {
        char path[64], target[256];
        for (int i = 0; i < 4096; i++) {
                ssize_t n;
                snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) daemon_pid, i);
                n = readlink(path, target, sizeof(target) - 1);
                if (n < 0)
                        continue;
                target[n] = 0;
                say("  fd %d -> %s", i, target);
        }
}

/*
 * The daemon's fds without sd-event's timerfd: sd-event opens one per clock the first time a
 * timer is armed and keeps it, so it is no leak; *ret_timers counts them (at most 1: the
 * daemon only uses CLOCK_MONOTONIC). Settled: the same count twice 20 ms apart, and no file
 * of the state directory open (the registry is saved from an idle-priority event, with an
 * fsync that can take a while on a loaded machine; a leaked one stays and is counted).
 */
static int daemon_fds(int *ret_timers) {
        int prev = -1, n = 0, timers = 0;

        for (int pass = 0; pass < 250; pass++) {
                char path[64], target[256];
                bool saving = false;
                n = timers = 0;
                for (int i = 0; i < 4096; i++) {
                        ssize_t k;
                        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) daemon_pid, i);
                        k = readlink(path, target, sizeof(target) - 1);
                        if (k < 0)
                                continue;
                        target[k] = 0;
                        if (strcmp(target, "anon_inode:[timerfd]") == 0)
                                timers++;
                        else
                                n++;
                        saving = saving || strncmp(target, state_dir, strlen(state_dir)) == 0;
                }
                if (n * 16 + timers == prev && !saving)
                        break;
                prev = n * 16 + timers;
                usleep(20000);
        }
        *ret_timers = timers;
        return n;
}

/* Boot 0, idle, no VMM connected: baseline + one fd per session and per preserved item. */
static void check_fds(int baseline, const char *when) {
        int held = held_fds(), timers, n = daemon_fds(&timers);
        CHECK(n == baseline + held && timers <= 1, "%s: daemon fd count %d = baseline %d + %d sessions and items (+ %d sd-event timerfd)",
              when, n, baseline, held, timers);
        if (n != baseline + held)
                print_fds();
}

/* The operator's view of one item: "state" (and "errno") from list. */
static json_object *list_item(const char *vm, const char *label) {
        static json_object *last;
        json_object *r = ctl("{\"id\":3,\"method\":\"list\"}", 5), *vms, *found = NULL;

        json_object_put(last);
        last = NULL;
        if (json_object_object_get_ex(result_of(r), "vms", &vms))
                for (size_t i = 0; i < json_object_array_length(vms); i++) {
                        json_object *v = json_object_array_get_idx(vms, i);
                        json_object *ss = json_object_object_get(v, "sessions");
                        if (strcmp(json_object_get_string(json_object_object_get(v, "id")), vm) != 0)
                                continue;
                        for (size_t j = 0; ss && j < json_object_array_length(ss); j++) {
                                json_object *items = json_object_object_get(json_object_array_get_idx(ss, j), "items");
                                for (size_t k = 0; items && k < json_object_array_length(items); k++) {
                                        json_object *it = json_object_array_get_idx(items, k);
                                        if (strcmp(json_object_get_string(json_object_object_get(it, "label")), label) == 0)
                                                found = it;
                                }
                        }
                }
        if (found)
                last = json_object_get(found);
        json_object_put(r);
        return last;
}

static const char *list_item_state(const char *vm, const char *label) {
        json_object *it = list_item(vm, label), *st;
        return it && json_object_object_get_ex(it, "state", &st) ? json_object_get_string(st) : "absent";
}

static bool wait_state(const char *want, double timeout) {
        double end = now_s() + timeout;
        do {
                if (strcmp(status_state(), want) == 0)
                        return true;
                usleep(10000);
        } while (now_s() < end);
        return false;
}

/* ---- the update ------------------------------------------------------------------------ */

/* Acknowledge every prepare/freeze event on @vmms; note a resume and its reason. */
static void pump_events(int *vmms, size_t n, double timeout, char resumed[][32]) {
        double end = now_s() + timeout;

        while (now_s() < end) {
                struct pollfd p[8];
                for (size_t i = 0; i < n; i++)
                        p[i] = (struct pollfd) { .fd = vmms[i], .events = POLLIN };
                if (poll(p, n, 20) <= 0)
                        return;
                for (size_t i = 0; i < n; i++) {
                        json_object *e, *ev, *seq, *reason;
                        if (!(p[i].revents & POLLIN))
                                continue;
                        e = recv_any(vmms[i], 1);
                        if (e && json_object_object_get_ex(e, "event", &ev)) {
                                const char *name = json_object_get_string(ev);
                                if ((strcmp(name, "prepare") == 0 || strcmp(name, "freeze") == 0) &&
                                    json_object_object_get_ex(e, "seq", &seq)) {
                                        char ack[100];
                                        snprintf(ack, sizeof(ack), "{\"id\":30,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":true}",
                                                 json_object_get_int64(seq));
                                        (void) send_str(vmms[i], ack);
                                } else if (strcmp(name, "resume") == 0 && resumed &&
                                           json_object_object_get_ex(e, "reason", &reason))
                                        snprintf(resumed[i], sizeof(resumed[i]), "%s", json_object_get_string(reason));
                        }
                        json_object_put(e);
                }
        }
}

/* Operator request on the control connection, acknowledging VMM events meanwhile. */
static json_object *ctl_with_vmms(const char *req, int *vmms, size_t n, double timeout, char resumed[][32]) {
        double end = now_s() + timeout;

        if (ctl_fd < 0)
                (void) status_state();
        if (send_str(ctl_fd, req) < 0)
                bail("send %s: %m", req);
        while (now_s() < end) {
                json_object *r;
                pump_events(vmms, n, 0.05, resumed);
                r = recv_reply(ctl_fd, 0.05, NULL);
                if (r) {
                        pump_events(vmms, n, 0.2, resumed);   /* a resume follows a failed commit */
                        return r;
                }
        }
        return NULL;
}

static void prepare_ok(int *vmms, size_t n) {
        char kernel[300], req[600];
        json_object *r;

        write_kernel(kernel, sizeof(kernel));
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        r = ctl_with_vmms(req, vmms, n, 30, NULL);
        if (!result_of(r))
                bail("prepare failed: %s", str_of(r));
        json_object_put(r);
}

/* prepare + commit: the machine reboots, commit is never answered. */
static void update(int *vmms, size_t n) {
        json_object *r;

        prepare_ok(vmms, n);
        save_int("boot0-failures", failures);
        say("prepared; committing");
        dump_log();
        r = ctl_with_vmms("{\"id\":11,\"method\":\"commit\"}", vmms, n, 30, NULL);
        bail("commit returned instead of rebooting: %s", str_of(r));
}

/* ---- boot 1 ----------------------------------------------------------------------------- */

typedef struct Vm {
        const char *id;
        const char *labels[3];
        int fd;
} Vm;

static int hello_incoming(const char *vm, json_object **ret_items) {
        char hello[200];
        json_object *r, *inc, *items;
        int fd = connect_sock(vmm_sock);

        snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
        r = request(fd, hello, NULL, 0, 5);
        CHECK(json_object_object_get_ex(result_of(r), "incoming", &inc) && json_object_get_boolean(inc),
              "%s is incoming after the update (%s)", vm, str_of(r));
        if (ret_items)
                *ret_items = json_object_object_get_ex(result_of(r), "items", &items) ? json_object_get(items) : NULL;
        json_object_put(r);
        return fd;
}

static json_object *reclaim(int fd, const char *label, int *ret_fd, double timeout) {
        char req[200];
        snprintf(req, sizeof(req), "{\"id\":40,\"method\":\"reclaim\",\"label\":\"%s\"}", label);
        if (send_str(fd, req) < 0)
                bail("send reclaim");
        return recv_reply(fd, timeout, ret_fd);
}

static void reclaim_ok(int fd, const char *vm, const char *label) {
        int m = -1;
        json_object *r = reclaim(fd, label, &m, 15);

        CHECK(result_of(r) && memfd_has_pattern(m, vm, label), "%s reclaims %s with the right contents (%s)", vm, label, str_of(r));
        json_object_put(r);
        if (m >= 0)
                close(m);
}

static void restored_ok(int fd, const char *vm) {
        json_object *r = request(fd, "{\"id\":50,\"method\":\"restored\"}", NULL, 0, 10), *fin;
        CHECK(json_object_object_get_ex(result_of(r), "finished", &fin) && json_object_get_boolean(fin),
              "%s restored, its sessions finished (%s)", vm, str_of(r));
        json_object_put(r);
}

/* Every VM of @vms reclaims each label, compares, reports restored. */
static void restore_vms(Vm *vms, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int fd = hello_incoming(vms[i].id, NULL);
                for (size_t j = 0; j < ELEMS(vms[i].labels) && vms[i].labels[j]; j++)
                        reclaim_ok(fd, vms[i].id, vms[i].labels[j]);
                restored_ok(fd, vms[i].id);
                close(fd);
        }
}

/* End of boot 1: idle, fd count at the boot-0 baseline (nothing held), clean exit. */
static void boot1_end(void) {
        int base = load_int("baseline"), n, timers;

        CHECK(wait_state("idle", 10), "daemon back to idle (%s)", status_state());
        n = daemon_fds(&timers);
        CHECK(n == base && timers <= 1, "daemon fd count %d back at the baseline of a fresh daemon (%d) (+ %d sd-event timerfd)",
              n, base, timers);
        if (n != base)
                print_fds();
        stop_daemon("end of boot 1");
}

static void boot1_start(bool daemon) {
        int n0 = load_int("boot0-failures");
        CHECK(n0 == 0, "boot 0 passed every check (%d failed)", n0);
        if (daemon)
                start_daemon_logged();
}

/* ---- boot 0 helpers -------------------------------------------------------------------- */

/* Start the daemon, open the control connection, note the fd baseline of a fresh daemon. */
static int boot0_start(void) {
        int baseline;

        start_daemon_logged();
        (void) status_state();
        baseline = daemon_fds(&(int) { 0 });
        save_int("baseline", baseline);
        say("baseline: %d daemon fds", baseline);
        return baseline;
}

/* vm-a: ram0, ram1; vm-b: ram0. The normal boot 1 of most scenarios. */
static Vm two_vms[] = { { "vm-a", { "ram0", "ram1" } }, { "vm-b", { "ram0" } } };

static void boot0_two_vms(int baseline) {
        int a = vmm_conn("vm-a"), b = vmm_conn("vm-b");
        preserve_ok(a, "vm-a", "ram0");
        preserve_ok(b, "vm-b", "ram0");
        preserve_ok(a, "vm-a", "ram1");
        close(a);
        close(b);
        check_fds(baseline, "after preserving");
}

/* ---- scenarios ------------------------------------------------------------------------- */

/*
 * --fail=preserve:ENOMEM:1 (or create-session:ENOMEM:1): vm-a's first preserve fails with
 * kernel-error naming the call; no item is recorded, the fd is not kept; a retry succeeds;
 * vm-b is not affected; the update carries everything.
 */
static void scenario_preserve_fails(int baseline, const char *call) {
        int a = vmm_conn("vm-a"), b, m = memfd_with_pattern("vm-a", "ram0");
        json_object *r = preserve(a, "ram0", m);

        CHECK(is_error(r, "kernel-error", ENOMEM, call) && strstr(errmsg(r), strerror(ENOMEM)),
              "vm-a's first preserve: kernel-error, errno ENOMEM, message names %s (%s)", call, str_of(r));
        json_object_put(r);
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "absent") == 0, "the failed item is not recorded (%s)",
              list_item_state("vm-a", "ram0"));
        close(a);
        check_fds(baseline, "after the failed preserve");
        a = vmm_conn("vm-a");
        r = preserve(a, "ram0", m);
        CHECK(result_of(r) != NULL, "vm-a retries ram0 with the same fd: preserved (%s)", str_of(r));
        json_object_put(r);
        close(m);
        b = vmm_conn("vm-b");
        preserve_ok(b, "vm-b", "ram0");
        preserve_ok(a, "vm-a", "ram1");
        close(a);
        close(b);
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "preserved") == 0 &&
              strcmp(list_item_state("vm-b", "ram0"), "preserved") == 0, "vm-a and vm-b items preserved");
        check_fds(baseline, "after the retry");
}

/*
 * --fail=preserve:ENOMEM:1, and vm-a gives up: it has nothing preserved, so after the update
 * it has nothing incoming and the restore does not wait for it.
 */
static void scenario_preserve_fails_only(int baseline) {
        int a = vmm_conn("vm-a"), b, m = memfd_with_pattern("vm-a", "ram0");
        json_object *r = preserve(a, "ram0", m);

        CHECK(is_error(r, "kernel-error", ENOMEM, "PRESERVE_FD"), "vm-a's only preserve fails (%s)", str_of(r));
        json_object_put(r);
        close(m);
        close(a);
        b = vmm_conn("vm-b");
        preserve_ok(b, "vm-b", "ram0");
        close(b);
        check_fds(baseline, "after vm-a gave up");
}

static void boot1_preserve_fails_only(void) {
        char hello[200];
        json_object *r, *inc;
        int a = connect_sock(vmm_sock);
        Vm b[] = { { "vm-b", { "ram0" } } };

        snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"vm-a\"}");
        r = request(a, hello, NULL, 0, 5);
        CHECK(json_object_object_get_ex(result_of(r), "incoming", &inc) && !json_object_get_boolean(inc),
              "vm-a, which preserved nothing, has nothing incoming (%s)", str_of(r));
        json_object_put(r);
        close(a);
        restore_vms(b, 1);
        CHECK(wait_state("idle", 5), "the restore completes with vm-b alone (%s)", status_state());
}

/*
 * --fail=create-session:ENOMEM:1 or preserve:ENOMEM:1 with prepare as the first call: the
 * daemon's own state session or registry memfd cannot be set up; prepare gets kernel-error
 * naming the call, the update is over (idle, nothing left open), and the next one works.
 */
static void scenario_prepare_fails(int baseline, const char *call) {
        char kernel[300], req[600];
        json_object *r, *tl, *res;

        write_kernel(kernel, sizeof(kernel));
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        r = ctl(req, 10);
        CHECK(is_error(r, "kernel-error", ENOMEM, call), "prepare -> kernel-error ENOMEM naming %s (%s)", call, str_of(r));
        json_object_put(r);
        CHECK(strcmp(status_state(), "idle") == 0, "daemon idle after the failed prepare");
        r = ctl("{\"id\":12,\"method\":\"timeline\"}", 5);
        CHECK(json_object_object_get_ex(result_of(r), "timeline", &tl) && json_object_object_get_ex(tl, "result", &res) &&
              strcmp(json_object_get_string(res), "failed") == 0, "the timeline records the update as failed (%s)", str_of(r));
        json_object_put(r);
        check_fds(baseline, "after the failed prepare");
        boot0_two_vms(baseline);
}

/*
 * --fail=open:EIO:1 at boot 0: the daemon runs without LUO (warning in the log, status
 * abi "none"), preserve is kernel-error EIO, prepare precondition-failed EIO; it stops
 * cleanly, and restarted (the kernel recovered) it works: a full update follows.
 */
static int scenario_open_eio(void) {
        int a, m, baseline;
        json_object *r, *abi;
        char kernel[300], req[600];

        start_daemon_logged();
        CHECK(log_contains("No usable Live Update Orchestrator (Input/output error)"),
              "the log says: No usable Live Update Orchestrator (Input/output error)");
        r = ctl("{\"id\":1,\"method\":\"status\"}", 5);
        CHECK(json_object_object_get_ex(result_of(r), "abi", &abi) && strcmp(json_object_get_string(abi), "none") == 0,
              "status answers with abi none (%s)", str_of(r));
        json_object_put(r);
        a = vmm_conn("vm-a");
        m = memfd_with_pattern("vm-a", "ram0");
        r = preserve(a, "ram0", m);
        CHECK(is_error(r, "kernel-error", EIO, "no Live Update Orchestrator"), "preserve -> kernel-error EIO (%s)", str_of(r));
        json_object_put(r);
        close(m);
        close(a);
        write_kernel(kernel, sizeof(kernel));
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        r = ctl(req, 10);
        CHECK(is_error(r, "precondition-failed", EIO, "no Live Update Orchestrator"), "prepare -> precondition-failed EIO (%s)",
              str_of(r));
        json_object_put(r);
        stop_daemon("without LUO");
        say("restarting the daemon");
        baseline = boot0_start();
        r = ctl("{\"id\":1,\"method\":\"status\"}", 5);
        CHECK(json_object_object_get_ex(result_of(r), "abi", &abi) && strcmp(json_object_get_string(abi), "none") != 0,
              "after the restart LUO is in use (%s)", str_of(r));
        json_object_put(r);
        return baseline;
}

/*
 * --fail=freeze:EINVAL:1 (e2e failed-reboot-inject checks the commit error and the
 * timeline): both VMMs, connected, get resume with reason failed; nothing is lost; the
 * daemon's fds are back; a second prepare + commit reboots.
 */
static void scenario_freeze_einval(int baseline) {
        int v[2] = { vmm_conn("vm-a"), vmm_conn("vm-b") };
        char resumed[2][32] = { "", "" };
        json_object *r;

        preserve_ok(v[0], "vm-a", "ram0");
        preserve_ok(v[1], "vm-b", "ram0");
        preserve_ok(v[0], "vm-a", "ram1");
        prepare_ok(v, 2);
        r = ctl_with_vmms("{\"id\":11,\"method\":\"commit\"}", v, 2, 30, resumed);
        CHECK(is_error(r, "kernel-error", EINVAL, "reboot(LINUX_REBOOT_CMD_KEXEC) returned"),
              "commit -> kernel-error EINVAL, reboot returned (%s)", str_of(r));
        json_object_put(r);
        CHECK(strcmp(resumed[0], "failed") == 0 && strcmp(resumed[1], "failed") == 0,
              "both VMMs got resume with reason failed (vm-a: %s, vm-b: %s)", resumed[0], resumed[1]);
        CHECK(strcmp(status_state(), "idle") == 0, "daemon idle after the failed reboot");
        CHECK(system("test \"$(cat /sys/kernel/kexec_loaded)\" = 0") == 0, "the kernel image is unloaded");
        r = ctl("{\"id\":12,\"method\":\"timeline\"}", 5);
        {
                json_object *tl, *res;
                CHECK(json_object_object_get_ex(result_of(r), "timeline", &tl) && json_object_object_get_ex(tl, "result", &res) &&
                      strcmp(json_object_get_string(res), "failed") == 0, "the timeline records the update as failed");
        }
        json_object_put(r);
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "preserved") == 0 && strcmp(list_item_state("vm-a", "ram1"), "preserved") == 0 &&
              strcmp(list_item_state("vm-b", "ram0"), "preserved") == 0, "every item still preserved");
        close(v[0]);
        close(v[1]);
        check_fds(baseline, "after the failed reboot");
        say("second attempt");
        v[0] = vmm_conn("vm-a");
        v[1] = vmm_conn("vm-b");
        update(v, 2);
}

/*
 * Boot 1 of --fail=finish:EBUSY:1: vm-a's restored gets kernel-error EBUSY naming FINISH;
 * vm-a stays incoming with its items (reclaim works again); vm-b restores; vm-a's retry of
 * restored finishes.
 */
static void boot1_finish_ebusy(void) {
        int a = hello_incoming("vm-a", NULL), b, m = -1;
        json_object *r;

        reclaim_ok(a, "vm-a", "ram0");
        reclaim_ok(a, "vm-a", "ram1");
        r = request(a, "{\"id\":50,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(is_error(r, "kernel-error", EBUSY, "FINISH luvf:vm-a:0"), "vm-a restored -> kernel-error EBUSY from FINISH (%s)",
              str_of(r));
        json_object_put(r);
        CHECK(strcmp(status_state(), "restoring") == 0, "daemon still restoring");
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "reclaimed") == 0, "vm-a's ram0 still held (%s)",
              list_item_state("vm-a", "ram0"));
        r = reclaim(a, "ram0", &m, 10);
        CHECK(result_of(r) && memfd_has_pattern(m, "vm-a", "ram0"), "vm-a reclaims ram0 again after the failed FINISH");
        json_object_put(r);
        if (m >= 0)
                close(m);
        b = hello_incoming("vm-b", NULL);
        reclaim_ok(b, "vm-b", "ram0");
        restored_ok(b, "vm-b");
        close(b);
        restored_ok(a, "vm-a");
        close(a);
}

/*
 * --fail=retrieve-fd:ENODEV:2 (the registry memfd, then vm-a's ram0) or
 * --fail=retrieve-session:EIO:3 (boot 0's look for an incoming state session, boot 1's
 * state session, then vm-a's session): the daemon falls back to its registry mirror for the
 * state; the VM items the kernel failed are reported failed with its errno, reclaim gets
 * kernel-error, nothing is retried; everything else restores.
 */
static void boot1_retrieve_fails(const char *what, int err, bool whole_session) {
        json_object *items = NULL, *r;
        int a, b, m = -1;
        long t0, t1;
        char path[64];
        FILE *f;

        a = hello_incoming("vm-a", &items);
        CHECK(items && strstr(json_object_to_json_string(items), "\"failed\""), "vm-a's hello shows a failed item (%s)",
              str_of(items));
        json_object_put(items);
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "failed") == 0, "operator list: vm-a ram0 failed");
        {
                json_object *it = list_item("vm-a", "ram0"), *e;
                CHECK(it && json_object_object_get_ex(it, "errno", &e) && json_object_get_int(e) == err,
                      "operator list: vm-a ram0 errno %d (%s)", err, str_of(it));
        }
        r = reclaim(a, "ram0", &m, 10);
        CHECK(is_error(r, "kernel-error", err, "could not be retrieved") && m < 0, "vm-a reclaim ram0 -> kernel-error %s (%s)",
              strerror(err), str_of(r));
        json_object_put(r);
        if (whole_session) {
                r = reclaim(a, "ram1", &m, 10);
                CHECK(is_error(r, "kernel-error", err, "could not be retrieved") && m < 0,
                      "vm-a reclaim ram1 (same session) -> kernel-error %s (%s)", strerror(err), str_of(r));
                json_object_put(r);
        } else
                reclaim_ok(a, "vm-a", "ram1");
        /* A sticky failure is not retried: the daemon stays idle (CPU time) for a second. */
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) daemon_pid);
        t0 = t1 = -1;
        for (int pass = 0; pass < 2; pass++) {
                f = fopen(path, "re");
                long ut = -1, stt = -1;
                if (f && fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &stt) == 2)
                        *(pass ? &t1 : &t0) = ut + stt;
                if (f)
                        fclose(f);
                if (pass == 0)
                        usleep(1000000);
        }
        CHECK(t0 >= 0 && t1 >= 0 && t1 - t0 < 20, "no retry loop: %ld clock ticks of daemon CPU in 1 s", t1 - t0);
        r = reclaim(a, "ram0", &m, 10);
        CHECK(is_error(r, "kernel-error", err, "could not be retrieved"), "vm-a reclaim ram0 again -> the same error at once");
        json_object_put(r);
        b = hello_incoming("vm-b", NULL);
        reclaim_ok(b, "vm-b", "ram0");
        restored_ok(b, "vm-b");
        close(b);
        r = request(a, "{\"id\":50,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(result_of(r) && strstr(json_object_to_json_string(result_of(r)), "ram0"),
              "vm-a restored, ram0 listed unclaimed (%s)", str_of(r));
        json_object_put(r);
        close(a);
        say("%s checked", what);
}

/* Boot 1 of a lost state retrieve: the mirror file describes the update; everything restores. */
static void boot1_state_from_mirror(const char *logtext) {
        CHECK(log_contains(logtext), "the log says: %s", logtext);
        CHECK(log_contains("registry mirror"), "the log says the registry mirror was used");
        restore_vms(two_vms, ELEMS(two_vms));
}

/*
 * Boot 1 with /dev/liveupdate held by another process (the kernel's EBUSY for a second
 * opener): the daemon refuses to start, saying why, and touches nothing; once the device is
 * free it starts and restores every VM.
 */
static void boot1_open_ebusy(void) {
        char a1[400], a2[400], a3[400], a4[400];
        char *argv[] = { (char *) daemon_bin, a1, a2, a3, a4, NULL };
        int luo = open("/dev/liveupdate", O_RDWR | O_CLOEXEC), saved, lf, st;
        pid_t pid;

        CHECK(luo >= 0, "another process opens /dev/liveupdate first (%s)", luo < 0 ? strerror(errno) : "ok");
        snprintf(a1, sizeof(a1), "--vmm-socket=%s", vmm_sock);
        snprintf(a2, sizeof(a2), "--control-socket=%s", ctl_sock);
        snprintf(a3, sizeof(a3), "--state-dir=%s", state_dir);
        snprintf(a4, sizeof(a4), "--config=%s", conf_path);
        saved = dup(STDERR_FILENO);
        lf = open(daemon_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (saved < 0 || lf < 0 || dup2(lf, STDERR_FILENO) < 0)
                bail("redirect stderr: %m");
        pid = spawn(argv);
        (void) dup2(saved, STDERR_FILENO);
        close(saved);
        close(lf);
        st = wait_pid(pid, 30);
        CHECK(st == 1, "the daemon exits 1 (status %d)", st);
        CHECK(log_contains("LUO device is owned by another process"), "the log says: LUO device is owned by another process");
        if (luo >= 0)
                close(luo);
        say("device released; starting the daemon again");
        start_daemon_logged();
        restore_vms(two_vms, ELEMS(two_vms));
}

/* ---- bind timeout (--vfio=1 --bind-delay=4000, BindTimeoutSec=1) ------------------------ */

static int bound_vfio(const char *path) {
        int dev = open(path, O_RDWR | O_CLOEXEC), iommu = open("/dev/iommu", O_RDWR | O_CLOEXEC), r;

        if (dev < 0 || iommu < 0)
                bail("open %s / /dev/iommu: %m", path);
        r = vfio_device_bind_iommufd(dev, iommu, NULL);
        if (r < 0)
                bail("bind %s: %s", path, strerror(-r));
        close(iommu);   /* the bind holds the iommufd */
        return dev;
}

static void boot0_bind_timeout(int baseline) {
        int a = vmm_conn("vm-a"), b = vmm_conn("vm-b"), dev = bound_vfio(VFIO0_PATH);
        json_object *r;

        preserve_ok(a, "vm-a", "ram0");
        preserve_ok(b, "vm-b", "ram0");
        r = preserve(a, "dev0", dev);
        CHECK(result_of(r) != NULL, "vm-a preserves its VFIO device as dev0 (%s)", str_of(r));
        json_object_put(r);
        close(dev);
        close(a);
        close(b);
        check_fds(baseline, "after preserving");
}

static bool sysfs_bound(void) {
        char target[256];
        ssize_t n = readlink("/sys/bus/pci/devices/" VFIO0_PCI "/driver", target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = 0;
        return strstr(target, "vfio-pci") != NULL;
}

static void boot1_bind_timeout(void) {
        int a = hello_incoming("vm-a", NULL), b, dev = -1, iommu, r;
        json_object *rep;
        double t0 = now_s();

        /* vm-b is not held up by vm-a's device */
        b = hello_incoming("vm-b", NULL);
        reclaim_ok(b, "vm-b", "ram0");
        restored_ok(b, "vm-b");
        close(b);
        CHECK(!sysfs_bound(), "vm-b restored (%.2f s) before the device is bound", now_s() - t0);
        reclaim_ok(a, "vm-a", "ram0");
        rep = reclaim(a, "dev0", &dev, 20);
        CHECK(is_error(rep, "timeout", ETIMEDOUT, "could not be retrieved") && dev < 0 && !sysfs_bound(),
              "vm-a reclaim dev0 -> timeout ETIMEDOUT after BindTimeoutSec, %.2f s after start (%s)", now_s() - t0, str_of(rep));
        json_object_put(rep);
        CHECK(strcmp(list_item_state("vm-a", "dev0"), "failed") == 0, "operator list: dev0 failed (%s)",
              list_item_state("vm-a", "dev0"));
        CHECK(strcmp(status_state(), "restoring") == 0, "daemon still restoring");
        for (int i = 0; i < 1000 && !sysfs_bound(); i++)
                usleep(10000);
        CHECK(sysfs_bound(), "the device is bound to vfio-pci after %.2f s", now_s() - t0);
        rep = reclaim(a, "dev0", &dev, 20);
        CHECK(result_of(rep) && dev >= 0, "once bound, vm-a reclaims dev0 (%s)", str_of(rep));
        json_object_put(rep);
        iommu = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        r = dev >= 0 && iommu >= 0 ? vfio_device_bind_iommufd(dev, iommu, NULL) : -EBADF;
        CHECK(r >= 0, "vm-a binds dev0 to a new iommufd (%s)", strerror(r < 0 ? -r : 0));
        restored_ok(a, "vm-a");
        if (iommu >= 0)
                close(iommu);
        if (dev >= 0)
                close(dev);
        close(a);
}

/* ---- faults scoped to one boot or to the Nth call (--fail=…:SKIP@BOOT) ------------------ */

/* How often @text occurs in the daemon's log of this boot. */
static int log_count(const char *text) {
        static char buf[256 * 1024];
        FILE *f = fopen(daemon_log, "re");
        size_t n;
        int k = 0;

        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        for (const char *p = strstr(buf, text); p; p = strstr(p + 1, text))
                k++;
        return k;
}

static bool wait_log(const char *text, int times, double timeout) {
        double end = now_s() + timeout;
        do {
                if (log_count(text) >= times)
                        return true;
                usleep(20000);
        } while (now_s() < end);
        return false;
}

/*
 * --fail=preserve:ENOMEM:1:2@0: vm-a's second preserve (ram1, after vm-a's ram0 and vm-b's
 * ram0) fails; ram0 of the same VM and session stays preserved and recorded; vm-a gives up
 * on ram1, and after the update it has ram0 alone.
 */
static void scenario_preserve_later_fails(int baseline) {
        int a = vmm_conn("vm-a"), b = vmm_conn("vm-b"), m;
        json_object *r;

        preserve_ok(a, "vm-a", "ram0");
        preserve_ok(b, "vm-b", "ram0");
        m = memfd_with_pattern("vm-a", "ram1");
        r = preserve(a, "ram1", m);
        CHECK(is_error(r, "kernel-error", ENOMEM, "PRESERVE_FD of \"ram1\" into luvf:vm-a:0"),
              "vm-a's second preserve: kernel-error ENOMEM naming ram1 and its session (%s)", str_of(r));
        json_object_put(r);
        close(m);
        CHECK(strcmp(list_item_state("vm-a", "ram1"), "absent") == 0, "ram1 not recorded (%s)", list_item_state("vm-a", "ram1"));
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "preserved") == 0, "vm-a's earlier ram0 still preserved (%s)",
              list_item_state("vm-a", "ram0"));
        CHECK(strcmp(list_item_state("vm-b", "ram0"), "preserved") == 0, "vm-b's ram0 preserved");
        close(a);
        close(b);
        check_fds(baseline, "after the failed second preserve");
}

static void boot1_preserve_later_fails(void) {
        Vm vms[] = { { "vm-a", { "ram0" } }, { "vm-b", { "ram0" } } };
        json_object *items = NULL, *r;
        int a = hello_incoming("vm-a", &items), m = -1;

        CHECK(items && json_object_array_length(items) == 1 && strstr(json_object_to_json_string(items), "\"ram0\""),
              "vm-a's hello shows ram0 alone (%s)", str_of(items));
        json_object_put(items);
        r = reclaim(a, "ram1", &m, 10);
        CHECK(err_code(r) && strcmp(err_code(r), "label-unknown") == 0 && m < 0, "reclaim of the refused ram1 -> label-unknown (%s)",
              str_of(r));
        json_object_put(r);
        close(a);
        restore_vms(vms, ELEMS(vms));
}

/*
 * --fail=open:EIO:1@1: the kernel's EIO for a broken incoming state at the daemon's first
 * open after the kexec. The daemon runs without LUO and shows the VMs' items lost; the
 * incoming sessions stay in the kernel, so the daemon restarted once the open works
 * restores every VM.
 */
static void boot1_open_eio(void) {
        json_object *r, *abi;

        CHECK(log_contains("No usable Live Update Orchestrator (Input/output error)"),
              "the log says: No usable Live Update Orchestrator (Input/output error)");
        r = ctl("{\"id\":1,\"method\":\"status\"}", 5);
        CHECK(json_object_object_get_ex(result_of(r), "abi", &abi) && strcmp(json_object_get_string(abi), "none") == 0,
              "status answers with abi none (%s)", str_of(r));
        json_object_put(r);
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "lost") == 0 && strcmp(list_item_state("vm-b", "ram0"), "lost") == 0,
              "operator list: the items show as lost meanwhile (vm-a ram0 %s)", list_item_state("vm-a", "ram0"));
        CHECK(log_contains("Item ram0 is unavailable without LUO (Input/output error): if a live update came in, "
                           "restart lu-vfiod once /dev/liveupdate opens"),
              "the log tells the operator to restart the daemon once /dev/liveupdate opens");
        CHECK(!log_contains("daemon restarted"), "the log does not blame a daemon restart");
        {
                /* a fresh daemon's fds but /dev/liveupdate: nothing of the incoming update is held */
                int base = load_int("baseline"), timers, n = daemon_fds(&timers);
                CHECK(n == base - 1 && timers <= 1, "without LUO: daemon fd count %d = baseline %d - /dev/liveupdate", n, base);
                if (n != base - 1)
                        print_fds();
        }
        stop_daemon("without LUO after the kexec");
        say("restarting the daemon");
        start_daemon_logged();
        restore_vms(two_vms, ELEMS(two_vms));
}

/*
 * --vfio=1 --fail=retrieve-fd:ENODEV:1:2@1: boot 1's third RETRIEVE_FD (after the registry
 * memfd and vm-a's ram0) is vm-a's VFIO device, the kernel's "no device at that address".
 * The kernel can never FINISH a session with a device it failed to retrieve, so vm-a's
 * restored closes that session instead (the kernel keeps what it holds until the next
 * update) and lists dev0 unclaimed; vm-b restores; the update completes.
 */
static void boot1_vfio_retrieve_fails(void) {
        json_object *items = NULL, *r, *it, *e, *un;
        int a = hello_incoming("vm-a", &items), dev = -1;
        Vm vb[] = { { "vm-b", { "ram0" } } };

        CHECK(items && strstr(json_object_to_json_string(items), "\"failed\""), "vm-a's hello shows a failed item (%s)",
              str_of(items));
        json_object_put(items);
        CHECK(strcmp(list_item_state("vm-a", "dev0"), "failed") == 0, "operator list: dev0 failed");
        it = list_item("vm-a", "dev0");   /* valid until the next list_item() */
        CHECK(it && json_object_object_get_ex(it, "errno", &e) && json_object_get_int(e) == ENODEV,
              "operator list: dev0 errno ENODEV (%s)", str_of(it));
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "reclaimable") == 0,
              "vm-a's ram0 not affected (%s)", list_item_state("vm-a", "ram0"));
        r = reclaim(a, "dev0", &dev, 10);
        CHECK(is_error(r, "kernel-error", ENODEV, "could not be retrieved") && dev < 0, "vm-a reclaim dev0 -> kernel-error ENODEV (%s)",
              str_of(r));
        json_object_put(r);
        reclaim_ok(a, "vm-a", "ram0");
        restore_vms(vb, 1);
        r = request(a, "{\"id\":50,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(json_object_object_get_ex(result_of(r), "finished", &e) && json_object_get_boolean(e) &&
              json_object_object_get_ex(result_of(r), "unclaimed", &un) && strstr(json_object_to_json_string(un), "dev0"),
              "vm-a restored: finished, dev0 unclaimed (%s)", str_of(r));
        json_object_put(r);
        CHECK(log_contains("cannot be finished"), "the log says the session cannot be finished");
        close(a);
        CHECK(wait_state("idle", 10), "the update completes (%s)", status_state());
        /*
         * The next update: upstream has no global state, so it can follow. v4's global FINISH is
         * all or nothing and the closed session still cannot finish, so the kernel stays
         * UPDATED and would refuse PREPARE (EINVAL) until the next boot (emulator's reading,
         * docs/emulator.md); the daemon tries the global FINISH again and says why it refuses.
         */
        {
                char kernel[300], req[600];
                json_object *abi = NULL;
                bool v4;

                r = ctl("{\"id\":1,\"method\":\"status\"}", 5);
                v4 = json_object_object_get_ex(result_of(r), "abi", &abi) && strcmp(json_object_get_string(abi), "v4") == 0;
                json_object_put(r);
                CHECK(log_contains(v4 ? "LUO FINISH failed: Device or resource busy" : "restore complete"),
                      "the log says: %s", v4 ? "LUO FINISH failed: Device or resource busy" : "restore complete");
                write_kernel(kernel, sizeof(kernel));
                snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
                r = ctl(req, 20);
                if (v4)
                        CHECK(is_error(r, "precondition-failed", EBUSY, "has not finished the previous live update"),
                              "v4: the next prepare -> precondition-failed EBUSY, the previous update not finished (%s)",
                              str_of(r));
                else
                        CHECK(result_of(r) != NULL, "upstream: the next prepare works (%s)", str_of(r));
                json_object_put(r);
                if (!v4) {
                        r = ctl("{\"id\":14,\"method\":\"cancel\"}", 20);
                        CHECK(result_of(r) != NULL, "and is cancelled (%s)", str_of(r));
                        json_object_put(r);
                }
                CHECK(wait_state("idle", 10), "idle again (%s)", status_state());
        }
}

/*
 * UnclaimedPolicy=release, ReclaimGraceSec=3, --fail=finish:EBUSY:1:1@1: vm-b restores
 * (the first FINISH); vm-a's VMM reclaims and dies without restored; at the end of the grace
 * period the release's FINISH fails: nothing is released (still restoring, items held); the
 * release is tried again a grace period later and the update completes.
 */
static void boot1_release_retry(void) {
        Vm vb[] = { { "vm-b", { "ram0" } } };
        int a;
        double t0;

        restore_vms(vb, 1);
        a = hello_incoming("vm-a", NULL);
        reclaim_ok(a, "vm-a", "ram0");
        reclaim_ok(a, "vm-a", "ram1");
        close(a);
        t0 = now_s();
        CHECK(wait_log("release failed", 1, 30), "the log says: release failed (after %.1f s)", now_s() - t0);
        t0 = now_s();
        CHECK(strcmp(status_state(), "restoring") == 0, "daemon still restoring after the failed release");
        CHECK(strcmp(list_item_state("vm-a", "ram0"), "reclaimed") == 0, "vm-a's items still held (%s)",
              list_item_state("vm-a", "ram0"));
        CHECK(wait_state("idle", 30) && now_s() - t0 >= 2.5,
              "the release is tried again a grace period (" RELEASE_GRACE_SEC " s) later, %.1f s, and the update completes (%s)",
              now_s() - t0, status_state());
        CHECK(log_count("release failed") == 1, "one failed release logged");
}

/*
 * UnclaimedPolicy=release, ReclaimGraceSec=3, --fail=finish:EBUSY@1: the kernel refuses every
 * FINISH. Both VMs' restored get kernel-error EBUSY; the grace-period release fails and is
 * retried; the operator's release gets kernel-error EBUSY; nothing is released: the items
 * can be reclaimed again with their contents; the daemon stays restoring and exits 0 on SIGTERM.
 */
static void boot1_finish_always(void) {
        int a = hello_incoming("vm-a", NULL), b = hello_incoming("vm-b", NULL);
        json_object *r;

        reclaim_ok(a, "vm-a", "ram0");
        reclaim_ok(a, "vm-a", "ram1");
        reclaim_ok(b, "vm-b", "ram0");
        r = request(a, "{\"id\":50,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(is_error(r, "kernel-error", EBUSY, "FINISH luvf:vm-a:0"), "vm-a restored -> kernel-error EBUSY (%s)", str_of(r));
        json_object_put(r);
        r = request(b, "{\"id\":50,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(is_error(r, "kernel-error", EBUSY, "FINISH luvf:vm-b:0"), "vm-b restored -> kernel-error EBUSY (%s)", str_of(r));
        json_object_put(r);
        CHECK(wait_log("release failed", 4, 30), "the grace-period release of both VMs fails and is retried (%d logged)",
              log_count("release failed"));
        r = ctl("{\"id\":13,\"method\":\"release\",\"vm\":\"vm-a\"}", 10);
        CHECK(is_error(r, "kernel-error", EBUSY, "FINISH luvf:vm-a:0"), "operator release vm-a -> kernel-error EBUSY (%s)",
              str_of(r));
        json_object_put(r);
        CHECK(strcmp(status_state(), "restoring") == 0, "daemon still restoring");
        reclaim_ok(a, "vm-a", "ram0");
        reclaim_ok(b, "vm-b", "ram0");
        close(a);
        close(b);
        {
                /* held: luvf:state and its memfd, the two VM sessions and their three items */
                int base = load_int("baseline"), timers, n = daemon_fds(&timers);
                CHECK(n == base + 7 && timers <= 1, "daemon fd count %d = baseline %d + 7 held (nothing leaked by the retries)",
                      n, base);
                if (n != base + 7)
                        print_fds();
        }
        stop_daemon("restore that cannot finish");
}

/*
 * --fail=finish:EIO:1:2@1: after both VMs' FINISH, the one of the daemon's own luvf:state
 * fails: logged, the session is closed, the update completes (idle, fds back); a daemon
 * restarted afterwards finds nothing incoming and shows nothing lost.
 */
static void boot1_state_finish_fails(void) {
        json_object *r;

        restore_vms(two_vms, ELEMS(two_vms));
        CHECK(wait_state("idle", 10), "daemon idle (%s)", status_state());
        CHECK(log_contains("FINISH of luvf:state failed: Input/output error"),
              "the log says: FINISH of luvf:state failed: Input/output error");
        boot1_end();
        say("restarting the daemon");
        start_daemon_logged();
        CHECK(strcmp(status_state(), "idle") == 0, "restarted daemon idle");
        r = ctl("{\"id\":3,\"method\":\"list\"}", 5);
        CHECK(result_of(r) && !strstr(json_object_to_json_string(result_of(r)), "lost"), "nothing shown lost (%s)", str_of(r));
        json_object_put(r);
        {
                int base = load_int("baseline"), timers, n = daemon_fds(&timers);
                CHECK(n == base && timers <= 1, "restarted daemon fd count %d = baseline %d", n, base);
        }
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
        const char *b = getenv("LUO_EMU_BOOT");
        const char *s;
        int baseline;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 3) {
                fprintf(stderr, "usage: fault-driver SCENARIO LU_VFIOD\n");
                return 2;
        }
        s = adv_name = argv[1];
        daemon_bin = argv[2];
        work_dir = getenv("E2E_DIR");
        if (!b || !work_dir)
                bail("run under luo-emu with E2E_DIR set");
        adv_boot = atoi(b);
        snprintf(vmm_sock, sizeof(vmm_sock), "%s/vmm.sock", work_dir);
        snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", work_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", work_dir);
        snprintf(conf_path, sizeof(conf_path), "%s/lu-vfiod.conf", work_dir);
        snprintf(daemon_log, sizeof(daemon_log), "%s/daemon-boot%d.log", work_dir, adv_boot);
        signal(SIGPIPE, SIG_IGN);

        if (adv_boot == 0) {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && chmod 755 '%s'", work_dir, work_dir, work_dir);
                if (system(cmd) != 0)
                        bail("cannot create %s", work_dir);
                if (strcmp(s, "finish-release-retry") == 0 || strcmp(s, "finish-always") == 0)
                        /* the grace-period release is what these scenarios are about */
                        write_text(conf_path, "[Update]\nPrepareTimeoutSec=20\nFreezeTimeoutSec=20\n"
                                   "[Restore]\nBindTimeoutSec=1\nUnclaimedPolicy=release\n"
                                   "ReclaimGraceSec=" RELEASE_GRACE_SEC "\n");
                else
                        write_text(conf_path, "[Update]\nPrepareTimeoutSec=20\nFreezeTimeoutSec=20\n"
                                   "[Restore]\nBindTimeoutSec=1\nReclaimGraceSec=120\n");
                if (strcmp(s, "open-eio") == 0)
                        baseline = scenario_open_eio();
                else
                        baseline = boot0_start();
                if (strcmp(s, "preserve-enomem") == 0)
                        scenario_preserve_fails(baseline, "PRESERVE_FD of \"ram0\"");
                else if (strcmp(s, "create-session-enomem") == 0)
                        scenario_preserve_fails(baseline, "CREATE_SESSION luvf:vm-a:0");
                else if (strcmp(s, "preserve-enomem-only") == 0)
                        scenario_preserve_fails_only(baseline);
                else if (strcmp(s, "prepare-create-enomem") == 0)
                        scenario_prepare_fails(baseline, "CREATE_SESSION luvf:state");
                else if (strcmp(s, "prepare-preserve-enomem") == 0)
                        scenario_prepare_fails(baseline, "PRESERVE_FD of the registry memfd");
                else if (strcmp(s, "freeze-einval") == 0)
                        scenario_freeze_einval(baseline);   /* reboots */
                else if (strcmp(s, "preserve-later-enomem") == 0)
                        scenario_preserve_later_fails(baseline);
                else if (strcmp(s, "bind-timeout") == 0 || strcmp(s, "vfio-retrieve-enodev") == 0)
                        boot0_bind_timeout(baseline);
                else
                        boot0_two_vms(baseline);
                update(NULL, 0);                            /* reboots */
        } else if (adv_boot == 1) {
                boot1_start(strcmp(s, "open-ebusy") != 0);
                if (strcmp(s, "open-ebusy") == 0)
                        boot1_open_ebusy();
                else if (strcmp(s, "finish-ebusy") == 0)
                        boot1_finish_ebusy();
                else if (strcmp(s, "preserve-enomem-only") == 0)
                        boot1_preserve_fails_only();
                else if (strcmp(s, "retrieve-fd-enodev") == 0)
                        boot1_retrieve_fails("retrieve-fd ENODEV", ENODEV, false);
                else if (strcmp(s, "retrieve-session-eio") == 0)
                        boot1_retrieve_fails("retrieve-session EIO", EIO, true);
                else if (strcmp(s, "state-memfd-enodev") == 0)
                        boot1_state_from_mirror("Retrieving the registry memfd failed");
                else if (strcmp(s, "state-session-eio") == 0)
                        boot1_state_from_mirror("Retrieving our state session luvf:state failed");
                else if (strcmp(s, "bind-timeout") == 0)
                        boot1_bind_timeout();
                else if (strcmp(s, "open-eio-after-kexec") == 0)
                        boot1_open_eio();
                else if (strcmp(s, "preserve-later-enomem") == 0)
                        boot1_preserve_later_fails();
                else if (strcmp(s, "vfio-retrieve-enodev") == 0)
                        boot1_vfio_retrieve_fails();
                else if (strcmp(s, "finish-release-retry") == 0)
                        boot1_release_retry();
                else if (strcmp(s, "finish-always") == 0)
                        boot1_finish_always();
                else if (strcmp(s, "state-finish-eio") == 0)
                        boot1_state_finish_fails();
                else
                        restore_vms(two_vms, ELEMS(two_vms));
                /* these end the daemon themselves: one cannot finish, one checks a restart */
                if (strcmp(s, "finish-always") != 0 && strcmp(s, "state-finish-eio") != 0)
                        boot1_end();
                else if (daemon_pid > 0)
                        stop_daemon("end of boot 1");
                dump_log();
        } else
                bail("unexpected boot %d", adv_boot);
        say("%s", failures ? "FAILED" : "PASSED");
        return failures ? 1 : 0;
}
