/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for config.c: values, defaults, and "file:line: key: problem" messages. */
#include <stdio.h>
#include <string.h>

#include "common/config.h"

static int failures;
#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); failures++; } } while (0)

static int parse(Config *c, const char *text, char *err) {
        config_done(c);
        config_init_defaults(c);
        err[0] = 0;
        return config_parse_string(c, "t.conf", text, err, 256);
}

int main(void) {
        Config c;
        char err[256];

        config_init_defaults(&c);
        CHECK(c.max_message_size == 65536 && c.max_fds_per_message == 16 && c.max_items_per_vm == 1024);
        CHECK(c.max_vms == 1024 && c.max_connections == 1024 && c.max_connections_per_uid == 256 && c.max_json_depth == 8);

        CHECK(parse(&c, "# comment\n\n[Limits]\nMaxFdsPerMessage = 4\n[Update]\nFreezeTimeoutSec=1.5\n"
                        "FreezeTimeoutPolicy=force\nCheckCommandLine=no\n[Restore]\nUnclaimedPolicy=release\n"
                        "ReclaimGraceSec=2\n", err) == 0);
        CHECK(c.max_fds_per_message == 4 && c.freeze_timeout_ms == 1500 && c.freeze_policy == FREEZE_POLICY_FORCE);
        CHECK(!c.check_cmdline && c.unclaimed_policy == UNCLAIMED_RELEASE && c.reclaim_grace_ms == 2000);

        /* the per-user default follows a smaller MaxConnections; an explicit larger value is refused */
        CHECK(parse(&c, "[Limits]\nMaxConnections=100\n", err) == 0 && c.max_connections_per_uid == 100);
        CHECK(parse(&c, "[Limits]\nMaxConnections=100\nMaxConnectionsPerUser=200\n", err) < 0 &&
              strstr(err, "MaxConnectionsPerUser: larger than MaxConnections"));
        CHECK(parse(&c, "[Limits]\nMaxFoo=1\n", err) < 0);
        CHECK(strcmp(err, "t.conf:2: MaxFoo: unknown key in section [Limits]") == 0);
        CHECK(parse(&c, "[Limits]\n\n\nMaxVMs=0\n", err) < 0);
        CHECK(strncmp(err, "t.conf:4: MaxVMs: expected an integer", 37) == 0);
        CHECK(parse(&c, "[Limits]\nMaxVMs=12x\n", err) < 0);
        CHECK(parse(&c, "[Limits]\nMaxVMs=-1\n", err) < 0);
        CHECK(parse(&c, "MaxVMs=1\n", err) < 0 && strstr(err, "outside of a section"));
        CHECK(parse(&c, "[Bogus]\n", err) < 0 && strstr(err, "t.conf:1:") && strstr(err, "unknown section"));
        CHECK(parse(&c, "[Update]\nFreezeTimeoutPolicy=maybe\n", err) < 0 && strstr(err, "FreezeTimeoutPolicy"));
        CHECK(parse(&c, "[Update]\nPrepareTimeoutSec=0\n", err) < 0);
        CHECK(parse(&c, "[Update]\nCheckCommandLine=perhaps\n", err) < 0);
        /* the next-kernel version policy and strictness (issue 15) */
        CHECK(parse(&c, "", err) == 0 && !c.next_kernel_versions && !c.next_kernel_strict);
        CHECK(parse(&c, "[Update]\nNextKernelVersions=7.1.8..7.1.20 7.2\nNextKernelStrict=yes\n", err) == 0 &&
              c.next_kernel_versions && strcmp(c.next_kernel_versions, "7.1.8..7.1.20 7.2") == 0 && c.next_kernel_strict);
        CHECK(parse(&c, "[Update]\nNextKernelVersions=any\nNextKernelVersions=running-series\n", err) == 0 &&
              strcmp(c.next_kernel_versions, "running-series") == 0);
        CHECK(parse(&c, "[Update]\nNextKernelVersions=7.x\n", err) < 0 &&
              strstr(err, "t.conf:2: NextKernelVersions: expected") && strstr(err, "\"7.x\""));
        CHECK(parse(&c, "[Update]\nNextKernelVersions=\n", err) < 0 && strstr(err, "NextKernelVersions"));
        CHECK(parse(&c, "[Update]\nNextKernelStrict=sometimes\n", err) < 0 && strstr(err, "NextKernelStrict"));
        CHECK(parse(&c, "[Limits]\njunk\n", err) < 0 && strstr(err, "key=value"));

        CHECK(parse(&c, "[Access]\nAllowUsers=0 1000\nAllowGroups=root\nVMClaim=1000 vm-*\nVMClaim=@0 db-?\n", err) == 0);
        CHECK(c.n_allow_uids == 2 && c.n_claims == 2);
        CHECK(config_may_connect(&c, 1000, 1000));
        CHECK(!config_may_connect(&c, 1001, 1001));
        CHECK(config_may_claim(&c, 1000, 1000, "vm-7"));
        CHECK(!config_may_claim(&c, 1000, 1000, "db-1"));
        CHECK(config_may_claim(&c, 0, 0, "anything"));
        CHECK(config_may_claim(&c, 1002, 0, "db-1"));
        CHECK(!config_may_claim(&c, 1002, 1002, "vm-1"));
        CHECK(parse(&c, "[Access]\nVMClaim=1000\n", err) < 0);
        CHECK(parse(&c, "[Access]\nVMClaim=nosuchuser-xyz vm\n", err) < 0 && strstr(err, "unknown user"));
        CHECK(parse(&c, "[Access]\nAllowUsers=\n", err) == 0 && config_may_connect(&c, 5, 5));

        CHECK(config_parse_file(&c, "/nonexistent/lu.conf", true, err, sizeof(err)) == 0);
        CHECK(config_parse_file(&c, "/nonexistent/lu.conf", false, err, sizeof(err)) < 0);
#ifdef CONF_FILE
        config_done(&c);
        config_init_defaults(&c);
        err[0] = 0;
        CHECK(config_parse_file(&c, CONF_FILE, false, err, sizeof(err)) == 0);
        if (err[0])
                fprintf(stderr, "shipped config: %s\n", err);
#endif
        config_done(&c);
        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
