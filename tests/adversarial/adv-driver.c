/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Adversarial clients against lu-vfiod, run as luo-emu's COMMAND (pid 1):
 *
 *   adv-driver SCENARIO LU_VFIOD        (E2E_DIR = work directory)
 *
 * Boot 0: start the daemon, preserve a victim VM's memfd (known contents) and close the
 * victim's connection, take the daemon's settled fd count as the baseline, attack
 * (SCENARIO), then check: fd count back at the baseline, `status` answers, the victim
 * still listed with its item; then prepare + commit (the emulated kexec). Boot 1: the
 * daemon starts again, the victim reclaims its memfd, the contents are compared, the VM
 * reports restored and the daemon returns to idle. Exit 0 only if every check passed.
 *
 * Scenarios: flood, slow, limits, fds, kill (docs/reliability.md "Adversarial clients").
 */
#include <inttypes.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include "adv-common.h"

#define VICTIM "victim-1"
#define VICTIM_SIZE (64 * 1024)

static void victim_pattern(char *buf, size_t size) {
        for (size_t i = 0; i < size; i++)
                buf[i] = (char) ((i * 131 + 7) ^ (unsigned char) adv_name[i % strlen(adv_name)]);
}

static void victim_setup(void) {
        static char buf[VICTIM_SIZE];
        int fd = vmm_conn(VICTIM), m = memfd_create("victim-ram", MFD_CLOEXEC);
        json_object *r;

        victim_pattern(buf, sizeof(buf));
        if (m < 0 || pwrite(m, buf, sizeof(buf), 0) != (ssize_t) sizeof(buf))
                bail("victim memfd: %m");
        r = request(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"ram0\"}", &m, 1, 5);
        if (!result_of(r))
                bail("victim preserve: %s", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        close(m);
        close(fd);
        say("victim %s preserved its 64 KiB memfd as ram0", VICTIM);
}

/* The victim is still known with its item (operator list), and the daemon answers status. */
static void check_victim_listed(const char *when) {
        json_object *r = ctl("{\"id\":3,\"method\":\"list\"}", 5), *vms, *items = NULL;
        bool found = false;

        if (json_object_object_get_ex(result_of(r), "vms", &vms))
                for (size_t i = 0; i < json_object_array_length(vms); i++) {
                        json_object *v = json_object_array_get_idx(vms, i), *id, *ss;
                        if (!json_object_object_get_ex(v, "id", &id) || strcmp(json_object_get_string(id), VICTIM) != 0)
                                continue;
                        if (json_object_object_get_ex(v, "sessions", &ss))
                                for (size_t j = 0; j < json_object_array_length(ss); j++) {
                                        json_object *s = json_object_array_get_idx(ss, j);
                                        if (json_object_object_get_ex(s, "items", &items) &&
                                            strstr(json_object_to_json_string(items), "\"ram0\""))
                                                found = true;
                                }
                }
        CHECK(found, "%s: victim %s still listed with its item ram0", when, VICTIM);
        json_object_put(r);
}

static void check_settled(int baseline, const char *when) {
        const char *st;

        expect_fds(baseline, when);
        st = status_state();
        CHECK(strcmp(st, "idle") == 0, "%s: daemon answers status (state %s)", when, st);
        check_victim_listed(when);
}

static json_object *send_prepare(void) {
        char kernel[300], req[600];
        write_kernel(kernel, sizeof(kernel));
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        if (ctl_fd < 0)
                (void) status_state();
        if (send_str(ctl_fd, req) < 0)
                bail("send prepare: %m");
        return NULL;
}

/* prepare must succeed, then commit must never be answered: the machine reboots. */
static void update(void) {
        json_object *r;

        send_prepare();
        r = recv_reply(ctl_fd, 20, NULL);
        if (!result_of(r))
                bail("prepare failed: %s", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        save_int("boot0-failures", failures);
        say("prepared; committing");
        r = ctl("{\"id\":11,\"method\":\"commit\"}", 20);
        bail("commit returned instead of rebooting: %s", r ? json_object_to_json_string(r) : "no reply (timeout)");
}

static void boot1(void) {
        static char want[VICTIM_SIZE], got[VICTIM_SIZE];
        json_object *r, *inc;
        int fd, m = -1, n0;
        const char *st = "?";

        n0 = load_int("boot0-failures");
        CHECK(n0 == 0, "boot 0 passed every check (%d failed)", n0);
        start_daemon();
        fd = connect_sock(vmm_sock);
        r = request(fd, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"" VICTIM "\"}", NULL, 0, 5);
        CHECK(json_object_object_get_ex(result_of(r), "incoming", &inc) && json_object_get_boolean(inc),
              "victim is incoming after the update (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        if (send_str(fd, "{\"id\":2,\"method\":\"reclaim\",\"label\":\"ram0\"}") < 0)
                bail("send reclaim");
        r = recv_reply(fd, 10, &m);
        CHECK(result_of(r) && m >= 0, "victim reclaimed ram0 (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        victim_pattern(want, sizeof(want));
        CHECK(m >= 0 && pread(m, got, sizeof(got), 0) == (ssize_t) sizeof(got) && memcmp(want, got, sizeof(got)) == 0,
              "victim's memfd has the right contents (64 KiB compared)");
        if (m >= 0)
                close(m);
        r = request(fd, "{\"id\":3,\"method\":\"restored\"}", NULL, 0, 10);
        CHECK(result_of(r) != NULL, "victim restored (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        close(fd);
        /* VMs of killed clients are released after ReclaimGraceSec */
        for (int i = 0; i < 1000; i++) {
                st = status_state();
                if (strcmp(st, "idle") == 0)
                        break;
                usleep(10000);
        }
        CHECK(strcmp(st, "idle") == 0, "daemon back to idle after the restore and answers status (%s)", st);
}

/* ---- 1. connection flood ---------------------------------------------------------- */

#define FLOOD_ROOT 320
#define FLOOD_NOBODY 80
/* test config: MaxConnections=100, MaxConnectionsPerUser=64 (root is not counted per user) */

/* Open @n connections at once, then classify: served (hello-required to a request) or refused (limit-reached). */
static void flood(int n, int *conns, int *served, int *refused) {
        *served = *refused = 0;
        for (int i = 0; i < n; i++)
                conns[i] = connect_sock(vmm_sock);
        for (int i = 0; i < n; i++) {
                json_object *r;
                const char *c;
                if (conns[i] < 0)
                        continue;
                (void) send_str(conns[i], "{\"id\":1,\"method\":\"list\"}");
                r = recv_reply(conns[i], 5, NULL);
                c = err_code(r);
                if (c && strcmp(c, "hello-required") == 0)
                        (*served)++;
                else if (c && strcmp(c, "limit-reached") == 0 && json_object_get_type(json_object_object_get(r, "id")) == json_type_null)
                        (*refused)++;
                json_object_put(r);
        }
}

static void scenario_flood(int baseline) {
        static int conns[FLOOD_ROOT];
        int served, refused, p[2], go[2];
        pid_t pid;
        char res[64] = "";

        (void) status_state();   /* root holds 1 connection from here: the operator's (the victim's VMM has left) */
        /* an unprivileged uid floods first and keeps its connections: MaxConnectionsPerUser bounds it */
        if (pipe(p) < 0 || pipe(go) < 0)
                bail("pipe");
        pid = fork();
        if (pid == 0) {
                static int c[FLOOD_NOBODY];
                struct passwd *pw = getpwnam("nobody");
                int sv, rf;
                char b;
                if (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                        _exit(10);
                flood(FLOOD_NOBODY, c, &sv, &rf);
                dprintf(p[1], "%d %d", sv, rf);
                close(p[1]);
                (void) !read(go[0], &b, 1);   /* hold them until the parent is done */
                _exit(0);                      /* all closed by exit */
        }
        close(p[1]);
        close(go[0]);
        (void) !read(p[0], res, sizeof(res) - 1);
        close(p[0]);
        served = refused = -1;
        sscanf(res, "%d %d", &served, &refused);
        CHECK(served == 64 && refused == FLOOD_NOBODY - 64,
              "uid nobody flood: %d connections, %d served, %d refused with limit-reached (expected 64/%d: MaxConnectionsPerUser=64)",
              FLOOD_NOBODY, served, refused, FLOOD_NOBODY - 64);
        /* root is bounded by the total only: 100 - 64 (nobody) - 1 (the operator's) = 35 */
        flood(FLOOD_ROOT, conns, &served, &refused);
        CHECK(served == 35 && refused == FLOOD_ROOT - 35,
              "root flood while nobody holds 64: %d connections, %d served, %d refused (expected 35/%d: MaxConnections=100)",
              FLOOD_ROOT, served, refused, FLOOD_ROOT - 35);
        CHECK(strcmp(status_state(), "idle") == 0, "status answers during the flood");
        (void) !write(go[1], "x", 1);
        close(go[1]);
        CHECK(wait_pid(pid, 20) == 0, "nobody's flood ran");
        for (int i = 0; i < FLOOD_ROOT; i++)
                if (conns[i] >= 0)
                        close(conns[i]);
        check_settled(baseline, "after closing all 400 connections");
        /* the slots came back: 99 new root connections are all served again */
        flood(99, conns, &served, &refused);
        CHECK(served == 99 && refused == 0, "after the flood: 99 new connections served (%d/%d)", served, refused);
        for (int i = 0; i < 99; i++)
                if (conns[i] >= 0)
                        close(conns[i]);
        check_settled(baseline, "after the second wave");
}

/* ---- 2. slow and partial senders --------------------------------------------------- */

static void scenario_slow(int baseline) {
        int idle[20], half[20], reader, sent = 0, m;
        double t0, t;
        json_object *r;
        bool hup = false;

        for (int i = 0; i < 20; i++)
                idle[i] = connect_sock(vmm_sock);       /* connect, never send */
        for (int i = 0; i < 20; i++) {
                half[i] = connect_sock(vmm_sock);       /* half a hello, then stall */
                (void) send_str(half[i], "{\"id\":1,\"method\":\"hello\",\"vers");
        }
        for (int i = 0; i < 20; i++) {
                r = recv_reply(half[i], 5, NULL);
                CHECK(i > 0 || (err_code(r) && strcmp(err_code(r), "invalid-json") == 0), "half a hello -> invalid-json (%s)",
                      r ? json_object_to_json_string(r) : "no reply");
                if (!(err_code(r) && strcmp(err_code(r), "invalid-json") == 0))
                        CHECK(false, "half hello %d: %s", i, r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
        }
        /* a well-behaved client is served promptly meanwhile */
        t0 = now_s();
        {
                int fd = vmm_conn("bystander");
                m = memfd_create("b", MFD_CLOEXEC);
                (void) ftruncate(m, 4096);
                expect_result(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"b\"}", 0, &m, 1, "bystander preserve while 40 clients stall");
                expect_result(fd, "{\"id\":3,\"method\":\"forget\"}", 0, NULL, 0, "bystander forget");
                close(m);
                close(fd);
        }
        t = now_s() - t0;
        CHECK(t < 1.0, "bystander served in %.3f s while 40 connections stall", t);
        /* a client that never reads: requests until the daemon's queue limit disconnects it */
        reader = vmm_conn("never-reads");
        t0 = now_s();
        while (now_s() - t0 < 10 && !hup) {
                struct pollfd p = { .fd = reader, .events = POLLOUT };
                char msg[64];
                int k;
                snprintf(msg, sizeof(msg), "{\"id\":%d,\"method\":\"list\"}", 100 + sent);
                k = send_fds_flags(reader, msg, strlen(msg), NULL, 0, MSG_DONTWAIT);
                if (k == 0)
                        sent++;
                else if (k == -EPIPE || k == -ECONNRESET)
                        hup = true;
                else
                        (void) poll(&p, 1, 50);
                p.events = 0;
                p.revents = 0;
                if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
                        hup = true;
        }
        CHECK(hup, "never-reading client disconnected by the daemon after %d unread requests (%.2f s)", sent, now_s() - t0);
        CHECK(strcmp(status_state(), "idle") == 0, "status answers while clients stall");
        close(reader);
        /* the never-reading VM can be claimed again at once */
        {
                int fd = vmm_conn("never-reads");
                expect_result(fd, "{\"id\":2,\"method\":\"forget\"}", 0, NULL, 0, "never-reads reconnects and forgets");
                close(fd);
        }
        for (int i = 0; i < 20; i++) {
                close(idle[i]);
                close(half[i]);
        }
        check_settled(baseline, "after closing 20 silent, 20 half-hello connections");
}

/* ---- 3. messages at and over every limit -------------------------------------------- */

static char big[65537 + 16];

static size_t padded(const char *json, size_t total) {
        size_t l = strlen(json);
        memset(big, ' ', total);
        memcpy(big, json, l);
        return total;
}

static void scenario_limits(int baseline) {
        int fd = vmm_conn("lim"), m = memfd_create("l", MFD_CLOEXEC), fds[20], c, depth_ok, n_checks = failures;
        char msg[512], label[80], vm[48];

        (void) ftruncate(m, 4096);
        /* message size */
        expect_result(fd, big, padded("{\"id\":2,\"method\":\"list\"}", 65536), NULL, 0, "message of exactly 65536 bytes");
        expect_error(fd, big, padded("{\"id\":2,\"method\":\"list\"}", 65537), NULL, 0, "message-too-large", "message of 65537 bytes");
        expect_error(fd, big, padded("{\"id\":2,\"method\":\"preserve\",\"label\":\"big\"}", 65537), &m, 1, "message-too-large",
                     "65537 bytes with an fd");
        /* nesting: the object is level 1; 7 arrays inside = depth 8 (parsed: the field is then refused) */
        for (depth_ok = 6; depth_ok <= 8; depth_ok += 2) {
                size_t l = (size_t) snprintf(msg, sizeof(msg), "{\"id\":3,\"method\":\"list\",\"a\":");
                for (int i = 0; i < depth_ok; i++)
                        msg[l++] = '[';
                msg[l++] = '1';
                for (int i = 0; i < depth_ok; i++)
                        msg[l++] = ']';
                msg[l++] = '}';
                msg[l] = 0;
                expect_error(fd, msg, 0, NULL, 0, depth_ok == 6 ? "invalid-params" : "invalid-json",
                             depth_ok == 6 ? "nesting depth 7 (parsed, unknown field)" : "nesting depth 9");
        }
        /* fds */
        for (int i = 0; i < 20; i++)
                fds[i] = m;
        expect_error(fd, "{\"id\":4,\"method\":\"preserve\",\"label\":\"f\"}", 0, fds, 16, "wrong-fd-count", "16 fds (accepted, wrong count)");
        expect_error(fd, "{\"id\":4,\"method\":\"preserve\",\"label\":\"f\"}", 0, fds, 17, "too-many-fds", "17 fds");
        /* label */
        memset(label, 'L', 65);
        label[64] = 0;
        snprintf(msg, sizeof(msg), "{\"id\":5,\"method\":\"preserve\",\"label\":\"%s\"}", label);
        expect_result(fd, msg, 0, &m, 1, "label of 64 chars");
        label[64] = 'L';
        label[65] = 0;
        snprintf(msg, sizeof(msg), "{\"id\":5,\"method\":\"preserve\",\"label\":\"%s\"}", label);
        expect_error(fd, msg, 0, &m, 1, "invalid-params", "label of 65 chars");
        /* VM id */
        c = connect_sock(vmm_sock);
        memset(vm, 'v', 37);
        vm[37] = 0;
        snprintf(msg, sizeof(msg), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
        expect_error(c, msg, 0, NULL, 0, "invalid-params", "VM id of 37 chars");
        vm[36] = 0;
        snprintf(msg, sizeof(msg), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
        expect_result(c, msg, 0, NULL, 0, "VM id of 36 chars");
        expect_result(c, "{\"id\":2,\"method\":\"forget\"}", 0, NULL, 0, "36-char VM forgets");
        close(c);
        /* encoding */
        expect_error(fd, "{\"id\":6,\"method\":\"list\",\"x\":\"\xff\xfe\"}", 0, NULL, 0, "invalid-json", "invalid UTF-8 (ff fe)");
        expect_error(fd, "{\"id\":6,\"method\":\"list\",\"x\":\"\xe2\x82\"}", 0, NULL, 0, "invalid-json", "truncated UTF-8 sequence (e2 82)");
        expect_error(fd, "{\"id\":6,\"method\":\"list\"}\0", 25, NULL, 0, "invalid-json", "trailing NUL byte");
        expect_error(fd, "{\"id\":6,\"method\":\"li\0st\"}", 25, NULL, 0, "invalid-json", "NUL inside a string");
        expect_error(fd, "\0{\"id\":6,\"method\":\"list\"}", 25, NULL, 0, "invalid-json", "leading NUL byte");
        expect_error(fd, "{\"id\":6,\"method\":\"list\",\"x\":\"\\u0000\"}", 0, NULL, 0, "invalid-params", "escaped \\u0000 in an unknown field");
        /* numbers */
        expect_result(fd, "{\"id\":9007199254740992,\"method\":\"list\"}", 0, NULL, 0, "id 2^53");
        expect_error(fd, "{\"id\":9007199254740993,\"method\":\"list\"}", 0, NULL, 0, "invalid-message", "id 2^53+1");
        expect_error(fd, "{\"id\":123456789012345678901234567890,\"method\":\"list\"}", 0, NULL, 0, "invalid-message", "id of 30 digits");
        expect_error(fd, "{\"id\":1e400,\"method\":\"list\"}", 0, NULL, 0, "invalid-message", "id 1e400");
        expect_error(fd, "{\"id\":0,\"method\":\"list\"}", 0, NULL, 0, "invalid-message", "id 0");
        expect_error(fd, "{\"id\":-9223372036854775809,\"method\":\"list\"}", 0, NULL, 0, "invalid-message", "id below INT64_MIN");
        expect_error(fd, "{\"id\":7,\"method\":\"ack\",\"seq\":1e308,\"ok\":true}", 0, NULL, 0, "invalid-params", "ack seq 1e308");
        expect_error(fd, "{\"id\":7,\"method\":\"ack\",\"seq\":18446744073709551617,\"ok\":true}", 0, NULL, 0, "invalid-params", "ack seq 2^64+1");
        /* duplicate keys: answered, and the connection keeps working */
        {
                json_object *r;
                (void) send_str(fd, "{\"id\":8,\"method\":\"list\",\"method\":\"list\"}");
                r = recv_reply(fd, 5, NULL);
                CHECK(r != NULL, "duplicate \"method\" answered (%s)", r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                (void) send_str(fd, "{\"id\":8,\"id\":9,\"method\":\"list\"}");
                r = recv_reply(fd, 5, NULL);
                CHECK(r != NULL, "duplicate \"id\" answered (%s)", r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                /* a duplicated "vm" must not claim the victim: it is answered for exactly one VM id */
                c = connect_sock(vmm_sock);
                (void) send_str(c, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"lim\",\"vm\":\"dup-vm\"}");
                r = recv_reply(c, 5, NULL);
                CHECK(r != NULL, "duplicate \"vm\" in hello answered (%s)", r ? json_object_to_json_string(r) : "no reply");
                if (result_of(r))
                        expect_result(c, "{\"id\":2,\"method\":\"forget\"}", 0, NULL, 0, "dup-vm forgets");
                json_object_put(r);
                close(c);
        }
        expect_result(fd, "{\"id\":10,\"method\":\"list\"}", 0, NULL, 0, "connection still usable after all that");
        expect_result(fd, "{\"id\":11,\"method\":\"forget\"}", 0, NULL, 0, "lim forgets its 64-char label item");
        close(fd);
        close(m);
        say("limits: %d checks failed", failures - n_checks);
        check_settled(baseline, "after the limit messages");
}

/*
 * Open bugs (docs/reliability.md): registered with should_fail until the daemon is fixed.
 * MaxJSONDepth=N accepts only N-1 levels (json_tokener_new_ex(N) counts that way).
 */
static void scenario_limits_depth(int baseline) {
        int fd = vmm_conn("lim");
        char msg[200];
        size_t l = (size_t) snprintf(msg, sizeof(msg), "{\"id\":3,\"method\":\"list\",\"a\":");

        for (int i = 0; i < 7; i++)
                msg[l++] = '[';
        msg[l++] = '1';
        for (int i = 0; i < 7; i++)
                msg[l++] = ']';
        msg[l++] = '}';
        msg[l] = 0;
        expect_error(fd, msg, 0, NULL, 0, "invalid-params", "nesting depth 8 = MaxJSONDepth is accepted (then the unknown field refused)");
        close(fd);
        check_settled(baseline, "after the depth-8 message");
}

/* Invalid UTF-8 that json-c 0.16's JSON_TOKENER_VALIDATE_UTF8 lets through. */
static void scenario_limits_utf8(int baseline) {
        int fd = vmm_conn("lim"), c;

        expect_error(fd, "{\"id\":6,\"method\":\"list\",\"x\":\"\xc0\xaf\"}", 0, NULL, 0, "invalid-json", "overlong UTF-8 (c0 af)");
        expect_error(fd, "{\"id\":6,\"method\":\"list\",\"x\":\"\xed\xa0\x80\"}", 0, NULL, 0, "invalid-json", "UTF-16 surrogate in UTF-8 (ed a0 80)");
        expect_error(fd, "{\"id\":6,\"method\":\"list\",\"x\":\"\xf4\x90\x80\x80\"}", 0, NULL, 0, "invalid-json", "code point above U+10FFFF (f4 90 80 80)");
        close(fd);
        /* where it matters: free text the daemon keeps and logs */
        c = connect_sock(vmm_sock);
        expect_error(c, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"utf\",\"client\":\"\xc0\xaf\xed\xa0\x80\"}", 0, NULL, 0,
                     "invalid-json", "hello with an overlong/surrogate client string");
        close(c);
        check_settled(baseline, "after the invalid UTF-8 messages");
}

/* ---- 4. fds of every kind ----------------------------------------------------------- */

static void scenario_fds(int baseline) {
        int fd = vmm_conn("fds"), deleg = vmm_conn("deleg"), m = memfd_create("f", MFD_CLOEXEC);
        int many[253], pp[2], sp[2], wrong[16], n = 0, sess = -1, iommu;
        const char *names[16];
        json_object *r;

        (void) ftruncate(m, 4096);
        for (int i = 0; i < 253; i++)
                many[i] = m;
        expect_error(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"x\"}", 0, many, 253, "too-many-fds", "253 fds (SCM_MAX_FD) with preserve");
        expect_error(fd, "{\"id\":2,\"method\":\"list\"}", 0, many, 253, "too-many-fds", "253 fds with list");
        expect_error(fd, "{\"id\":2,\"method\":\"hello\"", 0, many, 253, "too-many-fds", "253 fds with truncated JSON");
        {
                int d[253];
                for (int i = 0; i < 253; i++)
                        d[i] = dup(m);
                expect_error(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"x\"}", 0, d, 253, "too-many-fds", "253 distinct fds");
                for (int i = 0; i < 253; i++)
                        close(d[i]);
        }
        if (pipe2(pp, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                bail("pipe/socketpair");
        names[n] = "pipe read end", wrong[n++] = pp[0];
        names[n] = "pipe write end", wrong[n++] = pp[1];
        names[n] = "unix socket", wrong[n++] = sp[0];
        names[n] = "/dev/null", wrong[n++] = open("/dev/null", O_RDWR | O_CLOEXEC);
        names[n] = "O_PATH directory", wrong[n++] = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        names[n] = "eventfd", wrong[n++] = eventfd(0, EFD_CLOEXEC);
        names[n] = "epoll", wrong[n++] = epoll_create1(EPOLL_CLOEXEC);
        names[n] = "timerfd", wrong[n++] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        {
                char p[400];
                snprintf(p, sizeof(p), "%s/regular-file", work_dir);
                write_text(p, "x");
                names[n] = "regular file", wrong[n++] = open(p, O_RDWR | O_CLOEXEC);
        }
        {
                int h = memfd_create("huge", MFD_CLOEXEC | MFD_HUGETLB);
                if (h >= 0)
                        names[n] = "hugetlb memfd", wrong[n++] = h;
                else
                        say("no hugetlb memfd here (%m): skipped");
        }
        /* a LUO session fd: the daemon hands one out for delegated mode */
        (void) send_str(deleg, "{\"id\":2,\"method\":\"session\"}");
        r = recv_reply(deleg, 5, &sess);
        CHECK(result_of(r) && sess >= 0, "a LUO session fd from the session method");
        json_object_put(r);
        if (sess >= 0)
                names[n] = "LUO session fd", wrong[n++] = sess;
        for (int i = 0; i < n; i++) {
                char what[100];
                CHECK(wrong[i] >= 0, "%s opened", names[i]);
                snprintf(what, sizeof(what), "preserve a %s", names[i]);
                expect_error(fd, "{\"id\":3,\"method\":\"preserve\",\"label\":\"w\"}", 0, &wrong[i], 1, "wrong-fd-kind", what);
                snprintf(what, sizeof(what), "a %s with list", names[i]);
                expect_error(fd, "{\"id\":4,\"method\":\"list\"}", 0, &wrong[i], 1, "wrong-fd-count", what);
        }
        expect_error(fd, "{\"id\":5,\"method\":\"preserve\",\"label\":\"w\"}", 0, wrong, (size_t) n, "wrong-fd-count",
                     "all the wrong kinds in one preserve");
        /* an iommufd: no supported kernel preserves one, refused before the kernel is asked */
        iommu = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        CHECK(iommu >= 0, "/dev/iommu opened");
        {
                int io = vmm_conn("iommu-vm");
                expect_error(io, "{\"id\":2,\"method\":\"preserve\",\"label\":\"io\"}", 0, &iommu, 1, "wrong-fd-kind",
                             "preserve an iommufd");
                expect_error(io, "{\"id\":4,\"method\":\"preserve\",\"label\":\"io2\"}", 0, (int[]) { iommu, m }, 2, "wrong-fd-count",
                             "iommufd + memfd in one preserve");
                expect_result(io, "{\"id\":5,\"method\":\"forget\"}", 0, NULL, 0, "iommu-vm forgets");
                close(io);
        }
        expect_result(fd, "{\"id\":6,\"method\":\"preserve\",\"label\":\"ok\"}", 0, &m, 1, "a real memfd afterwards");
        expect_result(fd, "{\"id\":7,\"method\":\"forget\"}", 0, NULL, 0, "fds VM forgets");
        expect_result(deleg, "{\"id\":3,\"method\":\"forget\"}", 0, NULL, 0, "delegated VM forgets its session");
        for (int i = 0; i < n; i++)
                if (wrong[i] >= 0)
                        close(wrong[i]);
        close(sp[1]);
        close(iommu);
        close(m);
        close(fd);
        close(deleg);
        check_settled(baseline, "after every wrong fd kind");
}

/* ---- 5. clients killed at every step ------------------------------------------------ */

/* A client process: hello @vm, then @step; writes one byte to @w whenever the parent may kill it. */
enum { K_HELLO, K_PRESERVE, K_PREPARE, K_FREEZE };

static pid_t killable(const char *vm, int step, int w) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        int fd = vmm_conn(vm), m = memfd_create("k", MFD_CLOEXEC);
        (void) ftruncate(m, 1 << 20);
        if (step == K_HELLO) {
                (void) !write(w, "h", 1);
                pause();
        }
        if (step == K_PRESERVE) {
                (void) !write(w, "p", 1);
                for (int i = 0;; i++) {     /* keep preserving until killed */
                        char msg[100];
                        snprintf(msg, sizeof(msg), "{\"id\":%d,\"method\":\"preserve\",\"label\":\"r%d\"}", 10 + i, i);
                        if (send_fds(fd, msg, strlen(msg), &m, 1) < 0)
                                pause();
                        if (i % 4 == 3)
                                json_object_put(recv_reply(fd, 5, NULL));
                }
        }
        json_object_put(request(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"ram\"}", &m, 1, 5));
        (void) !write(w, "r", 1);
        for (;;) {
                json_object *e = recv_any(fd, 30), *ev, *seq;
                if (!e)
                        _exit(3);
                if (json_object_object_get_ex(e, "event", &ev) && json_object_object_get_ex(e, "seq", &seq)) {
                        const char *name = json_object_get_string(ev);
                        if ((step == K_PREPARE && strcmp(name, "prepare") == 0) || (step == K_FREEZE && strcmp(name, "freeze") == 0)) {
                                (void) !write(w, "e", 1);
                                pause();
                        }
                        if (strcmp(name, "prepare") == 0) {
                                char ack[100];
                                snprintf(ack, sizeof(ack), "{\"id\":3,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":true}",
                                         json_object_get_int64(seq));
                                (void) send_str(fd, ack);
                        }
                }
                json_object_put(e);
        }
}

static bool wait_byte(int r, double timeout) {
        struct pollfd p = { .fd = r, .events = POLLIN };
        char c;
        return poll(&p, 1, (int) (timeout * 1000)) > 0 && read(r, &c, 1) == 1;
}

/* Claim @vm again (the daemon notices the dead peer's EOF a moment later), report its items, forget it. */
static int reclaim_and_forget(const char *vm) {
        char hello[200];
        int items = -1;
        for (int t = 0; t < 200; t++) {
                int fd = connect_sock(vmm_sock);
                json_object *r, *it;
                snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"%s\"}", vm);
                r = request(fd, hello, NULL, 0, 5);
                if (result_of(r)) {
                        if (json_object_object_get_ex(result_of(r), "items", &it))
                                items = (int) json_object_array_length(it);
                        json_object_put(r);
                        r = request(fd, "{\"id\":2,\"method\":\"forget\"}", NULL, 0, 5);
                        if (!result_of(r))
                                items = -2;
                        json_object_put(r);
                        close(fd);
                        return items;
                }
                json_object_put(r);
                close(fd);
                usleep(10000);
        }
        return -1;
}

static void scenario_kill(int baseline) {
        int p[2], items_total = 0, ok = 0;
        pid_t pid, kp, kf;
        json_object *r;
        double t0;

        if (pipe2(p, O_CLOEXEC) < 0)
                bail("pipe");
        for (int i = 0; i < 10; i++) {
                char vm[32];
                snprintf(vm, sizeof(vm), "k-hello-%d", i);
                pid = killable(vm, K_HELLO, p[1]);
                if (!wait_byte(p[0], 5))
                        bail("%s did not say hello", vm);
                kill(pid, SIGKILL);
                wait_pid(pid, 5);
                ok += reclaim_and_forget(vm) == 0;
        }
        CHECK(ok == 10, "10 clients SIGKILLed after hello: each VM claimable again (%d)", ok);
        ok = 0;
        for (int i = 0; i < 20; i++) {
                char vm[32];
                int n;
                snprintf(vm, sizeof(vm), "k-pres-%d", i);
                pid = killable(vm, K_PRESERVE, p[1]);
                if (!wait_byte(p[0], 5))
                        bail("%s did not start preserving", vm);
                usleep((useconds_t) (i * 250));
                kill(pid, SIGKILL);
                wait_pid(pid, 5);
                n = reclaim_and_forget(vm);
                ok += n >= 0;
                items_total += n > 0 ? n : 0;
        }
        CHECK(ok == 20, "20 clients SIGKILLed mid-preserve (0-5 ms in, %d items had been preserved): all consistent and forgotten (%d)",
              items_total, ok);
        check_settled(baseline, "after 30 killed clients");

        /* killed while prepare waits for its ack; another VMM acks normally and is killed at freeze */
        kp = killable("k-prepare", K_PREPARE, p[1]);
        kf = killable("k-freeze", K_FREEZE, p[1]);
        if (!wait_byte(p[0], 5) || !wait_byte(p[0], 5))
                bail("killable VMMs not ready");
        t0 = now_s();
        send_prepare();
        if (!wait_byte(p[0], 5))
                bail("k-prepare got no prepare event");
        kill(kp, SIGKILL);
        wait_pid(kp, 5);
        r = recv_reply(ctl_fd, 20, NULL);
        CHECK(result_of(r) != NULL && now_s() - t0 < 4, "prepare completes %.2f s after its VMM was killed while it waited for the ack (%s)",
              now_s() - t0, r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        save_int("boot0-failures", failures);
        if (send_str(ctl_fd, "{\"id\":11,\"method\":\"commit\"}") < 0)
                bail("send commit");
        if (!wait_byte(p[0], 5))
                bail("k-freeze got no freeze event");
        say("killing k-freeze while the commit waits for its freeze ack");
        kill(kf, SIGKILL);
        r = recv_reply(ctl_fd, 20, NULL);
        bail("commit returned instead of rebooting: %s", r ? json_object_to_json_string(r) : "no reply (timeout)");
}

/* ---- 6. SIGSTOPped clients during an update ------------------------------------------ */

/*
 * A VMM process that hands over a memfd and acks every prepare and freeze; it writes one
 * byte to @w per event it reads ('p' prepare, 'f' freeze, 'r' resume, 'o' other) and 'R'
 * once it has handed over. SIGSTOP freezes it wherever it is, as a hung VMM would be.
 */
static pid_t acking_vmm(const char *vm, int w) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        int fd = vmm_conn(vm), m = memfd_create("s", MFD_CLOEXEC);
        (void) ftruncate(m, 1 << 16);
        json_object_put(request(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"ram\"}", &m, 1, 5));
        (void) !write(w, "R", 1);
        for (int id = 100;; id++) {
                json_object *e = recv_any(fd, 120), *ev, *seq;
                const char *name;
                if (!e)
                        _exit(0);
                if (!json_object_object_get_ex(e, "event", &ev)) {
                        json_object_put(e);
                        continue;
                }
                name = json_object_get_string(ev);
                (void) !write(w, strcmp(name, "prepare") == 0 ? "p" : strcmp(name, "freeze") == 0 ? "f" :
                                 strcmp(name, "resume") == 0 ? "r" : "o", 1);
                if ((strcmp(name, "prepare") == 0 || strcmp(name, "freeze") == 0) && json_object_object_get_ex(e, "seq", &seq)) {
                        char ack[120];
                        snprintf(ack, sizeof(ack), "{\"id\":%d,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":true}",
                                 id, json_object_get_int64(seq));
                        (void) send_str(fd, ack);
                }
                json_object_put(e);
        }
}

typedef struct Counts {
        int r;          /* read end of the VMM's pipe */
        int n[128];
} Counts;

/* Read what the VMM reported until @code was seen @want times or @timeout passed. */
static bool wait_code(Counts *c, char code, int want, double timeout) {
        double end = now_s() + timeout;
        while (c->n[(int) code] < want) {
                struct pollfd p = { .fd = c->r, .events = POLLIN };
                char buf[256];
                ssize_t k;
                int left = (int) ((end - now_s()) * 1000);
                if (left <= 0 || poll(&p, 1, left) <= 0)
                        return false;
                k = read(c->r, buf, sizeof(buf));
                if (k <= 0)
                        return false;
                for (ssize_t i = 0; i < k; i++)
                        c->n[buf[i] & 127]++;
        }
        return true;
}

static void wait_idle(double timeout) {
        for (double end = now_s() + timeout; now_s() < end && strcmp(status_state(), "idle") != 0;)
                usleep(5000);
}

#define STOP_CYCLES 100

static void scenario_stopped(int baseline) {
        const char *names[3] = { "s-prepare", "s-freeze", "s-bystander" };
        Counts c[3] = {};
        pid_t pid[3];
        char kernel[300], req[600];
        int pc, cycles_ok = 0;
        json_object *r;
        double t0, t, worst = 0;

        for (int i = 0; i < 3; i++) {
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0)
                        bail("pipe");
                pid[i] = acking_vmm(names[i], p[1]);
                close(p[1]);
                c[i].r = p[0];
                if (!wait_code(&c[i], 'R', 1, 5))
                        bail("%s did not hand over", names[i]);
        }
        write_kernel(kernel, sizeof(kernel));

        /* A: s-prepare is stopped while prepare waits for its ack; the deadline applies. */
        kill(pid[0], SIGSTOP);
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\",\"timeout_ms\":1500}", kernel);
        t0 = now_s();
        r = ctl(req, 20);
        t = now_s() - t0;
        CHECK(err_code(r) && strcmp(err_code(r), "timeout") == 0 && t < 6,
              "prepare with a stopped VMM fails with timeout after %.2f s (deadline 1.5 s): %s", t,
              r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        CHECK(wait_code(&c[1], 'r', 1, 5) && wait_code(&c[2], 'r', 1, 5), "the running VMMs were told to resume");
        wait_idle(5);
        /*
         * Its socket fills: prepare + cancel, STOP_CYCLES times, sends it 2 events a cycle that
         * it does not read (the kernel queues ~10 datagrams; the rest wait in the daemon).
         */
        for (int i = 0; i < STOP_CYCLES; i++) {
                double c0 = now_s();
                bool ok;
                pc = connect_sock(ctl_sock);
                snprintf(req, sizeof(req), "{\"id\":%d,\"method\":\"prepare\",\"kernel\":\"%s\",\"timeout_ms\":30000}", 20 + i, kernel);
                (void) send_str(pc, req);
                ok = wait_code(&c[2], 'p', 2 + i, 5) && wait_code(&c[1], 'p', 2 + i, 5);
                r = ctl("{\"id\":5,\"method\":\"cancel\"}", 5);
                ok = ok && result_of(r);
                json_object_put(r);
                r = recv_reply(pc, 5, NULL);
                ok = ok && err_code(r) && strcmp(err_code(r), "cancelled") == 0;
                json_object_put(r);
                close(pc);
                ok = ok && wait_code(&c[2], 'r', 2 + i, 5);
                cycles_ok += ok;
                if (now_s() - c0 > worst)
                        worst = now_s() - c0;
        }
        CHECK(cycles_ok == STOP_CYCLES, "%d prepare/cancel cycles with a stopped VMM: %d went through, slowest %.3f s",
              STOP_CYCLES, cycles_ok, worst);
        t0 = now_s();
        CHECK(strcmp(status_state(), "idle") == 0 && now_s() - t0 < 1, "status answers at once (%.3f s)", now_s() - t0);
        kill(pid[0], SIGCONT);
        CHECK(wait_code(&c[0], 'p', 1 + STOP_CYCLES, 10) && wait_code(&c[0], 'r', 1 + STOP_CYCLES, 10),
              "resumed, s-prepare reads every queued event: %d prepare, %d resume (expected %d each)",
              c[0].n['p'], c[0].n['r'], 1 + STOP_CYCLES);

        /* B: s-freeze is stopped after acking prepare, while commit waits for its freeze ack. */
        snprintf(req, sizeof(req), "{\"id\":40,\"method\":\"prepare\",\"kernel\":\"%s\"}", kernel);
        r = ctl(req, 20);
        CHECK(result_of(r) != NULL, "prepare with every VMM running (%s)", r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        kill(pid[1], SIGSTOP);
        t0 = now_s();
        r = ctl("{\"id\":41,\"method\":\"commit\",\"timeout_ms\":1500}", 20);
        t = now_s() - t0;
        CHECK(err_code(r) && strcmp(err_code(r), "timeout") == 0 && t < 6,
              "commit with a stopped VMM fails with timeout after %.2f s (deadline 1.5 s): %s", t,
              r ? json_object_to_json_string(r) : "no reply");
        json_object_put(r);
        CHECK(wait_code(&c[0], 'f', 1, 5) && wait_code(&c[2], 'f', 1, 5) &&
              wait_code(&c[0], 'r', 2 + STOP_CYCLES, 5) && wait_code(&c[2], 'r', 2 + STOP_CYCLES, 5),
              "the frozen running VMMs were told to resume");
        wait_idle(5);
        CHECK(system("test \"$(cat /sys/kernel/kexec_loaded)\" = 0") == 0, "no kernel image left loaded");
        kill(pid[1], SIGCONT);
        CHECK(wait_code(&c[1], 'f', 1, 10) && wait_code(&c[1], 'r', 2 + STOP_CYCLES, 10),
              "resumed, s-freeze reads its freeze and resume events");
        for (int i = 0; i < 3; i++) {
                kill(pid[i], SIGKILL);
                wait_pid(pid[i], 5);
                close(c[i].r);
                CHECK(reclaim_and_forget(names[i]) == 1, "%s still holds its item, and forgets it", names[i]);
        }
        check_settled(baseline, "after the stopped VMMs");
}

/* ---- 7. control socket flood --------------------------------------------------------- */

#define CTL_FLOOD 200
#define CTL_HALF 13     /* with the operator's, the never-reader's and a VMM's: root's 16 */

static void scenario_ctl_flood(int baseline) {
        static int conns[CTL_FLOOD];
        int served = 0, refused = 0, half[CTL_HALF], reader, sent = 0, p[2];
        bool hup = false;
        char res[64] = "";
        json_object *r;
        double t0, t;
        pid_t pid;

        /* many control connections at once, each asks for status */
        for (int i = 0; i < CTL_FLOOD; i++)
                conns[i] = connect_sock(ctl_sock);
        for (int i = 0; i < CTL_FLOOD; i++) {
                const char *c;
                if (conns[i] < 0)
                        continue;
                (void) send_str(conns[i], "{\"id\":1,\"method\":\"status\"}");
                r = recv_reply(conns[i], 5, NULL);
                c = err_code(r);
                served += result_of(r) != NULL;
                refused += c && strcmp(c, "limit-reached") == 0;
                json_object_put(r);
        }
        /* default limits: root is bounded by MaxConnections (1024) only */
        CHECK(served == CTL_FLOOD && refused == 0,
              "%d control connections at once: %d served, %d refused (root is not limited per user)",
              CTL_FLOOD, served, refused);
        /* while they are all open: a VMM of another uid is served, and so is the operator's status */
        if (pipe(p) < 0)
                bail("pipe");
        t0 = now_s();
        pid = fork();
        if (pid == 0) {
                struct passwd *pw = getpwnam("nobody");
                int fd, m, ok = 0;
                if (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                        _exit(10);
                fd = connect_sock(vmm_sock);
                m = memfd_create("b", MFD_CLOEXEC);
                (void) ftruncate(m, 4096);
                r = request(fd, "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"ctl-bystander\"}", NULL, 0, 5);
                ok += result_of(r) != NULL;
                r = request(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"b\"}", &m, 1, 5);
                ok += result_of(r) != NULL;
                r = request(fd, "{\"id\":3,\"method\":\"forget\"}", NULL, 0, 5);
                ok += result_of(r) != NULL;
                dprintf(p[1], "%d", ok);
                _exit(0);
        }
        close(p[1]);
        CHECK(wait_pid(pid, 20) == 0, "bystander VMM (uid nobody) ran");
        (void) !read(p[0], res, sizeof(res) - 1);
        close(p[0]);
        t = now_s() - t0;
        CHECK(strcmp(res, "3") == 0 && t < 2, "a VMM of uid nobody served during the flood (%s of 3 requests, %.3f s)", res, t);
        t0 = now_s();
        {
                const char *st = status_state();
                CHECK(strcmp(st, "idle") == 0 && now_s() - t0 < 1,
                      "the operator's status on its open connection answers during the flood (%s, %.3f s)", st, now_s() - t0);
        }
        {
                /* root's VMMs are not locked out by root's control connections */
                int fd = vmm_conn("ctl-root-vmm");
                expect_result(fd, "{\"id\":2,\"method\":\"forget\"}", 0, NULL, 0, "a root VMM is served during the control flood");
                close(fd);
        }
        for (int i = 0; i < CTL_FLOOD; i++)
                if (conns[i] >= 0)
                        close(conns[i]);
        check_settled(baseline, "after closing the control flood");

        /* slow and partial senders: half a request, then nothing */
        for (int i = 0; i < CTL_HALF; i++) {
                half[i] = connect_sock(ctl_sock);
                (void) send_str(half[i], "{\"id\":1,\"method\":\"sta");
        }
        for (int i = 0; i < CTL_HALF; i++) {
                r = recv_reply(half[i], 5, NULL);
                if (!(err_code(r) && strcmp(err_code(r), "invalid-json") == 0))
                        CHECK(false, "half a control request %d: %s", i, r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
        }
        /* a control client that sends status requests and never reads */
        reader = connect_sock(ctl_sock);
        t0 = now_s();
        while (now_s() - t0 < 10 && !hup) {
                struct pollfd q = { .fd = reader, .events = POLLOUT };
                int k = send_fds_flags(reader, "{\"id\":1,\"method\":\"status\"}", 26, NULL, 0, MSG_DONTWAIT);
                if (k == 0)
                        sent++;
                else if (k == -EPIPE || k == -ECONNRESET)
                        hup = true;
                else
                        (void) poll(&q, 1, 50);
                q.events = 0;
                if (poll(&q, 1, 0) > 0 && (q.revents & (POLLHUP | POLLERR)))
                        hup = true;
        }
        CHECK(hup, "a never-reading control client is disconnected after %d unread requests (%.2f s)", sent, now_s() - t0);
        close(reader);
        t0 = now_s();
        {
                int fd = vmm_conn("ctl-bystander-2"), m = memfd_create("b", MFD_CLOEXEC);
                (void) ftruncate(m, 4096);
                expect_result(fd, "{\"id\":2,\"method\":\"preserve\",\"label\":\"b\"}", 0, &m, 1, "a VMM preserves while 13 control clients stall");
                expect_result(fd, "{\"id\":3,\"method\":\"forget\"}", 0, NULL, 0, "and forgets");
                close(m);
                close(fd);
        }
        t = now_s() - t0;
        CHECK(t < 1.0, "VMM served in %.3f s", t);
        t0 = now_s();
        {
                const char *st = status_state();
                CHECK(strcmp(st, "idle") == 0 && now_s() - t0 < 1, "operator status answers (%s, %.3f s)", st, now_s() - t0);
        }
        for (int i = 0; i < CTL_HALF; i++)
                close(half[i]);
        check_settled(baseline, "after closing the stalled control connections");
}

int main(int argc, char **argv) {
        const char *b = getenv("LUO_EMU_BOOT");
        const char *limits = "";
        int baseline;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 3) {
                fprintf(stderr, "usage: adv-driver SCENARIO LU_VFIOD\n");
                return 2;
        }
        adv_name = argv[1];
        daemon_bin = argv[2];
        work_dir = getenv("E2E_DIR");
        if (!b || !work_dir)
                bail("run under luo-emu with E2E_DIR set");
        adv_boot = atoi(b);
        fds_skip_timerfd = true;
        snprintf(vmm_sock, sizeof(vmm_sock), "%s/vmm.sock", work_dir);
        snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", work_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", work_dir);
        snprintf(conf_path, sizeof(conf_path), "%s/lu-vfiod.conf", work_dir);
        signal(SIGPIPE, SIG_IGN);
        if (adv_boot == 1)
                boot1();
        else if (adv_boot == 0) {
                char cmd[600], conf[1000];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && chmod 755 '%s'", work_dir, work_dir, work_dir);
                if (system(cmd) != 0)
                        bail("cannot create %s", work_dir);
                if (strcmp(adv_name, "flood") == 0)
                        limits = "[Limits]\nMaxConnections=100\nMaxConnectionsPerUser=64\n";
                else if (strcmp(adv_name, "slow") == 0)   /* room for 40 stalled connections */
                        limits = "[Limits]\nMaxConnectionsPerUser=128\n";
                snprintf(conf, sizeof(conf), "%s[Update]\nPrepareTimeoutSec=8\nFreezeTimeoutSec=8\n"
                         "[Restore]\nBindTimeoutSec=5\nReclaimGraceSec=1\nUnclaimedPolicy=release\n", limits);
                write_text(conf_path, conf);
                start_daemon();
                victim_setup();
                (void) status_state();      /* the control connection stays open from here on */
                baseline = count_open_fds_settled();
                say("baseline: %d daemon fds", baseline);
                if (strcmp(adv_name, "flood") == 0)
                        scenario_flood(baseline);
                else if (strcmp(adv_name, "slow") == 0)
                        scenario_slow(baseline);
                else if (strcmp(adv_name, "limits") == 0)
                        scenario_limits(baseline);
                else if (strcmp(adv_name, "limits-depth") == 0)
                        scenario_limits_depth(baseline);
                else if (strcmp(adv_name, "limits-utf8") == 0)
                        scenario_limits_utf8(baseline);
                else if (strcmp(adv_name, "fds") == 0)
                        scenario_fds(baseline);
                else if (strcmp(adv_name, "kill") == 0)
                        scenario_kill(baseline);   /* reboots */
                else if (strcmp(adv_name, "stopped") == 0)
                        scenario_stopped(baseline);
                else if (strcmp(adv_name, "ctl-flood") == 0)
                        scenario_ctl_flood(baseline);
                else
                        bail("unknown scenario %s", adv_name);
                update();                          /* reboots */
        } else
                bail("unexpected boot %d", adv_boot);
        return finish_run();
}
