/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the configuration parser (daemon/common/config.c): one input is the content
 * of lu-vfiod.conf. It is parsed from memory (config_parse_string) and from a file
 * (config_parse_file, through a memfd's /proc/self/fd path); both must agree, a refusal
 * must come with a "name:line: key: problem" message, and an accepted configuration
 * must hold only values inside the documented ranges (conf/lu-vfiod.conf), since the
 * daemon sizes buffers and tokenizers from them without further checks.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/config.h"
#include "fuzz.h"
#include "macro.h"

#define NAME "fuzz.conf"

static int input_fd = -EBADF;
static char input_path[64];

static void write_input(const uint8_t *data, size_t size) {
        if (input_fd < 0) {
                input_fd = memfd_create("fuzz-config", MFD_CLOEXEC);
                FUZZ_CHECK(input_fd >= 0, "memfd_create: %m");
                (void) snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", input_fd);
        }
        FUZZ_CHECK(ftruncate(input_fd, 0) >= 0, "ftruncate: %m");
        FUZZ_CHECK(size == 0 || pwrite(input_fd, data, size, 0) == (ssize_t) size, "pwrite: %m");
}

static void check_error(const char *name, const char *err, const char *text) {
        unsigned lines = 1, line;
        size_t n = strlen(name);

        for (const char *p = text; *p; p++)
                lines += *p == '\n';
        FUZZ_CHECK(strncmp(err, name, n) == 0 && sscanf(err + n, ":%u: ", &line) == 1,
                   "error without name:line: \"%s\"", err);
        /* Line 0 is the whole-file check (MaxConnectionsPerUser > MaxConnections). */
        FUZZ_CHECK(line <= lines, "error on line %u of %u: %s", line, lines, err);
}

/* [Service] paths: absent, or absolute, bounded, without blanks, "//" or "/../" (config.c parse_path()). */
static void check_path(const char *key, const char *p, size_t max) {
        if (!p)
                return;
        FUZZ_CHECK(p[0] == '/' && strlen(p) <= max && !strpbrk(p, " \t") && !strstr(p, "//") && !strstr(p, "/../"),
                   "%s=\"%s\" accepted", key, p);
}

static bool str_equal(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static void check_config(const Config *c) {
        /* Socket paths must fit sockaddr_un.sun_path (108 bytes with the NUL). */
        check_path("VMMSocket", c->vmm_socket, 107);
        check_path("ControlSocket", c->control_socket, 107);
        check_path("StateDirectory", c->state_dir, PATH_MAX - 64);
        FUZZ_CHECK(c->kexec_mode == KEXEC_MODE_DIRECT || c->kexec_mode == KEXEC_MODE_SYSTEMD, "KexecMode %d", (int) c->kexec_mode);
        FUZZ_CHECK(!c->has_operator_gid || c->operator_gid != UINT32_MAX, "OperatorGroup (gid_t) -1");
        FUZZ_CHECK(c->max_message_size >= 1024 && c->max_message_size <= 16 * 1024 * 1024, "MaxMessageSize %u", c->max_message_size);
        FUZZ_CHECK(c->max_fds_per_message >= 1 && c->max_fds_per_message <= 253, "MaxFdsPerMessage %u", c->max_fds_per_message);
        FUZZ_CHECK(c->max_items_per_vm >= 1 && c->max_items_per_vm <= 65536, "MaxItemsPerVM %u", c->max_items_per_vm);
        FUZZ_CHECK(c->max_vms >= 1 && c->max_vms <= 65536, "MaxVMs %u", c->max_vms);
        FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 65536, "MaxConnections %u", c->max_connections);
        FUZZ_CHECK(c->max_connections_per_uid >= 1 && c->max_connections_per_uid <= c->max_connections,
                   "MaxConnectionsPerUser %u of %u", c->max_connections_per_uid, c->max_connections);
        FUZZ_CHECK(c->max_json_depth >= 2 && c->max_json_depth <= 64, "MaxJSONDepth %u", c->max_json_depth);
        FUZZ_CHECK(c->max_pending_requests >= 1 && c->max_pending_requests <= 4096, "MaxPendingRequests %u", c->max_pending_requests);
        FUZZ_CHECK(c->prepare_timeout_ms >= 1 && c->prepare_timeout_ms <= 604800000, "PrepareTimeoutSec %llu ms",
                   (unsigned long long) c->prepare_timeout_ms);
        FUZZ_CHECK(c->freeze_timeout_ms >= 1 && c->freeze_timeout_ms <= 604800000, "FreezeTimeoutSec %llu ms",
                   (unsigned long long) c->freeze_timeout_ms);
        FUZZ_CHECK(c->bind_timeout_ms >= 1 && c->bind_timeout_ms <= 604800000, "BindTimeoutSec %llu ms",
                   (unsigned long long) c->bind_timeout_ms);
        FUZZ_CHECK(c->reclaim_grace_ms >= 1 && c->reclaim_grace_ms <= 604800000, "ReclaimGraceSec %llu ms",
                   (unsigned long long) c->reclaim_grace_ms);
        FUZZ_CHECK(c->freeze_policy == FREEZE_POLICY_ABORT || c->freeze_policy == FREEZE_POLICY_FORCE, "FreezeTimeoutPolicy");
        FUZZ_CHECK(c->unclaimed_policy == UNCLAIMED_KEEP || c->unclaimed_policy == UNCLAIMED_RELEASE, "UnclaimedPolicy");
        FUZZ_CHECK(!!c->allow_uids == (c->n_allow_uids > 0), "AllowUsers list inconsistent");
        FUZZ_CHECK(!!c->allow_gids == (c->n_allow_gids > 0), "AllowGroups list inconsistent");
        FUZZ_CHECK(!!c->claims == (c->n_claims > 0), "VMClaim list inconsistent");
        for (size_t i = 0; i < c->n_allow_uids; i++)
                FUZZ_CHECK(c->allow_uids[i] != UINT32_MAX, "AllowUsers contains (uid_t) -1");
        for (size_t i = 0; i < c->n_allow_gids; i++)
                FUZZ_CHECK(c->allow_gids[i] != UINT32_MAX, "AllowGroups contains (gid_t) -1");
        for (size_t i = 0; i < c->n_claims; i++) {
                const char *p = c->claims[i].pattern;
                size_t n = strnlen(p, sizeof(c->claims[i].pattern));

                FUZZ_CHECK(n >= 1 && n < sizeof(c->claims[i].pattern), "VMClaim pattern length %zu", n);
                FUZZ_CHECK(strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-*?[]!") == n,
                           "VMClaim pattern \"%s\"", p);
                FUZZ_CHECK(c->claims[i].id != UINT32_MAX, "VMClaim for (uid_t) -1");
        }
}

/* Two parses of one input into fresh defaults must give the same configuration. */
static bool config_equal(const Config *a, const Config *b) {
        return str_equal(a->vmm_socket, b->vmm_socket) && str_equal(a->control_socket, b->control_socket) &&
                str_equal(a->state_dir, b->state_dir) && a->kexec_mode == b->kexec_mode && a->dbus == b->dbus &&
                a->polkit == b->polkit && a->has_operator_gid == b->has_operator_gid &&
                (!a->has_operator_gid || a->operator_gid == b->operator_gid) &&
                a->max_message_size == b->max_message_size && a->max_fds_per_message == b->max_fds_per_message &&
                a->max_items_per_vm == b->max_items_per_vm && a->max_vms == b->max_vms &&
                a->max_connections == b->max_connections && a->max_connections_per_uid == b->max_connections_per_uid &&
                a->max_json_depth == b->max_json_depth && a->max_pending_requests == b->max_pending_requests &&
                a->prepare_timeout_ms == b->prepare_timeout_ms && a->freeze_timeout_ms == b->freeze_timeout_ms &&
                a->freeze_policy == b->freeze_policy && a->check_cmdline == b->check_cmdline &&
                a->bind_timeout_ms == b->bind_timeout_ms && a->reclaim_grace_ms == b->reclaim_grace_ms &&
                a->unclaimed_policy == b->unclaimed_policy &&
                a->n_allow_uids == b->n_allow_uids && a->n_allow_gids == b->n_allow_gids && a->n_claims == b->n_claims &&
                (a->n_allow_uids == 0 || memcmp(a->allow_uids, b->allow_uids, a->n_allow_uids * sizeof(uint32_t)) == 0) &&
                (a->n_allow_gids == 0 || memcmp(a->allow_gids, b->allow_gids, a->n_allow_gids * sizeof(uint32_t)) == 0) &&
                (a->n_claims == 0 || memcmp(a->claims, b->claims, a->n_claims * sizeof(ClaimRule)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;
        char err[512] = "", ferr[512] = "";
        Config c, f;
        bool has_nul;
        int r, rf;

        /* Beyond config_parse_file()'s 1 MiB limit nothing new is reachable; keep runs fast. */
        if (size > 64 * 1024)
                return 0;
        text = strndup((const char *) data, size);
        FUZZ_CHECK(text, "out of memory");
        has_nul = strlen(text) != size;

        config_init_defaults(&c);
        r = config_parse_string(&c, NAME, text, err, sizeof(err));
        FUZZ_CHECK(r >= 0 || r == -EINVAL, "config_parse_string: unexpected %s", strerror(-r));
        if (r < 0)
                check_error(NAME, err, text);
        else {
                check_config(&c);
                /* The daemon's questions must be answerable for any accepted configuration. */
                (void) config_may_connect(&c, 65534, 65534);
                (void) config_may_claim(&c, 65534, 65534, "vm-1");
                FUZZ_CHECK(config_may_connect(&c, 0, 0) && config_may_claim(&c, 0, 0, "vm-1"), "root refused");
        }

        /* From a file: the same answer, except that a NUL byte is refused. */
        write_input(data, size);
        config_init_defaults(&f);
        rf = config_parse_file(&f, input_path, false, ferr, sizeof(ferr));
        if (has_nul)
                FUZZ_CHECK(rf == -EINVAL && strstr(ferr, "NUL"), "NUL byte not refused: %d %s", rf, ferr);
        else {
                FUZZ_CHECK(rf == r, "file parse %d, string parse %d", rf, r);
                if (r >= 0)
                        FUZZ_CHECK(config_equal(&c, &f), "file and string parses differ");
                else {
                        /* Same ":line: key: problem" after the name (up to where the longer name truncated it). */
                        const char *a = err + strlen(NAME), *b = ferr + strlen(input_path);
                        check_error(input_path, ferr, text);
                        FUZZ_CHECK(strncmp(a, b, MIN(strlen(a), strlen(b))) == 0,
                                   "different errors: \"%s\" and \"%s\"", err, ferr);
                }
        }
        config_done(&c);
        config_done(&f);
        return 0;
}
