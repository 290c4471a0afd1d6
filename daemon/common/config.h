/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lu-vfiod configuration: defaults and a strict parser for the INI-style file
 * (conf/lu-vfiod.conf documents every key). Unknown sections/keys and bad values are
 * refused with "file:line: key: problem".
 */
#pragma once

/* One VMM connection per VM: enough for a host whose VMMs all run as one user (libvirt). */
#define CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID 256

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH LU_SYSCONFDIR "/lu-vfiod/lu-vfiod.conf"

typedef enum UnclaimedPolicy {
        UNCLAIMED_KEEP,      /* report, leave the sessions pinned until the next update */
        UNCLAIMED_RELEASE,   /* report, then FINISH (release) the VM's sessions */
} UnclaimedPolicy;

typedef enum FreezePolicy {
        FREEZE_POLICY_ABORT,  /* a VMM that misses the freeze deadline aborts the update */
        FREEZE_POLICY_FORCE,  /* proceed anyway (the daemon disables interrupts itself) */
} FreezePolicy;

typedef enum KexecMode {
        KEXEC_MODE_DIRECT,    /* the daemon calls reboot(LINUX_REBOOT_CMD_KEXEC) itself */
        KEXEC_MODE_SYSTEMD,   /* sessions in systemd's fd store, kexec asked of systemd */
} KexecMode;

/* "Who may claim which VM": a uid or gid and a shell glob over VM ids. */
typedef struct ClaimRule {
        bool is_group;
        uint32_t id;
        char pattern[64];
} ClaimRule;

typedef struct Config {
        /* [Service] (NULL: the built-in default, or the command line option) */
        char *vmm_socket;
        char *control_socket;
        char *state_dir;
        KexecMode kexec_mode;
        bool dbus;


        /* [Limits] */
        uint32_t max_message_size;
        uint32_t max_fds_per_message;
        uint32_t max_items_per_vm;
        uint32_t max_vms;
        uint32_t max_connections;
        uint32_t max_connections_per_uid;    /* root is not counted */
        uint32_t max_json_depth;
        uint32_t max_pending_requests;

        /* [Access] */
        uint32_t *allow_uids;
        size_t n_allow_uids;
        uint32_t *allow_gids;
        size_t n_allow_gids;
        ClaimRule *claims;
        size_t n_claims;
        bool polkit;                 /* ask polkit about non-root D-Bus callers */
        bool has_operator_gid;
        uint32_t operator_gid;       /* may change state over D-Bus when polkit is unreachable */

        /* [Update] (milliseconds) */
        uint64_t prepare_timeout_ms;
        uint64_t freeze_timeout_ms;
        FreezePolicy freeze_policy;
        bool check_cmdline;
        char *next_kernel_versions;  /* NextKernelVersions= policy; NULL: "running-series" */
        bool next_kernel_strict;     /* a next-kernel check that cannot be made refuses too */

        /* [Restore] (milliseconds) */
        uint64_t bind_timeout_ms;
        bool bind_devices;           /* bind the incoming VFIO devices to vfio-pci ourselves */
        uint64_t reclaim_grace_ms;
        UnclaimedPolicy unclaimed_policy;
} Config;

void config_init_defaults(Config *c);
void config_done(Config *c);

/*
 * config_parse_file() - read @path into @c (on top of the defaults already in @c).
 * @missing_ok: a missing file is not an error (the default path).
 * On a syntax or value error writes "path:line: key: problem" to @errbuf and returns -EINVAL.
 */
int config_parse_file(Config *c, const char *path, bool missing_ok, char *errbuf, size_t errlen);
/* config_parse_string() - same on an in-memory text; @name is used in messages. */
int config_parse_string(Config *c, const char *name, const char *text, char *errbuf, size_t errlen);

/* config_may_connect() - uid 0 always; else listed uid, or primary/supplementary gid listed; empty lists = anyone. */
bool config_may_connect(const Config *c, uid_t uid, gid_t gid);
/* config_may_claim() - no rules = anyone may claim any VM id; else a matching rule for uid or gid is needed (root always). */
bool config_may_claim(const Config *c, uid_t uid, gid_t gid, const char *vm_id);
