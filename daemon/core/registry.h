/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The registry: what the daemon holds for whom. VM -> sessions -> items (label, token,
 * kind, PCI address) plus the current update record and the last update's timeline.
 * It is the daemon's in-memory model (runtime fields such as fds live beside the
 * persistent ones and are never serialised) and its JSON form, which crosses the
 * reboot in a memfd preserved in the daemon's own LUO session and is mirrored to
 * <state-dir>/registry.json, written atomically.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define REGISTRY_VERSION      1
#define REGISTRY_FILE         "registry.json"
#define REG_VM_ID_MAX         36
#define REG_LABEL_MAX         64
#define REG_SESSION_NAME_MAX  63
#define REG_PCI_MAX           20
#define REG_STATE_SESSION     "luvf:state"
#define REG_STATE_TOKEN       1

/* Kinds in their required preservation order within a VM (K1: memfd -> iommufd -> VFIO). */
typedef enum RegKind {
        REG_KIND_MEMFD = 0,
        REG_KIND_IOMMUFD,
        REG_KIND_VFIO,
        _REG_KIND_MAX,
} RegKind;

const char *reg_kind_to_string(RegKind k);    /* "memfd", "iommufd", "vfio" */
int reg_kind_from_string(const char *s, RegKind *ret);

typedef struct RegItem {
        char label[REG_LABEL_MAX + 1];
        uint64_t token;
        RegKind kind;
        char pci[REG_PCI_MAX];       /* "" if none */
        /* runtime */
        int fd;                      /* daemon's reference: handed-in fd before, retrieved fd after the reboot */
        int retrieve_error;          /* positive errno of a failed (sticky) retrieve */
        bool claimed;                /* handed back to the VMM after the reboot */
        bool incoming;               /* came across the reboot (to be retrieved/reclaimed) */
        bool lost;                   /* the kernel no longer holds it (daemon restarted before the update) */
} RegItem;

typedef struct RegSession {
        char name[REG_SESSION_NAME_MAX + 1];
        bool delegated;              /* the VMM preserves into it itself; items unknown to us */
        uint64_t next_token;
        RegItem *items;
        size_t n_items;
        /* runtime */
        int fd;
        bool finished;
        int error;                   /* positive errno of a failed retrieve/finish */
} RegSession;

typedef struct RegVm {
        char id[REG_VM_ID_MAX + 1];
        uint32_t uid;                /* owner: the uid that first claimed it */
        uint32_t next_session;       /* n in luvf:<vm>:<n> */
        RegSession *sessions;
        size_t n_sessions;
        /* runtime */
        void *conn;                  /* the connection currently holding the VM, if any */
        bool restored;               /* its incoming sessions are done with: restored or released */
        bool released;               /* ... released without its VMM (finish VM, UnclaimedPolicy=release) */
        bool incoming;               /* came across the reboot */
        uint64_t ack_seq;            /* event awaiting acknowledgement, 0 if none */
        bool ack_pending;
        bool resume_owed;            /* its update was abandoned by a daemon restart: "resume" at the next hello */
} RegVm;

typedef struct Registry {
        uint64_t generation;         /* bumped on every save */
        RegVm **vms;
        size_t n_vms;
        RegVm **by_id;               /* open-addressing index of vms by id, n_slots a power of 2 (or 0) */
        size_t n_slots;
        json_object *update;         /* current update record (object) or NULL */
        json_object *timeline;       /* last finished update's record, or NULL */
} Registry;

Registry *registry_new(void);
Registry *registry_free(Registry *r);           /* closes every runtime fd */
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

RegVm *registry_find_vm(const Registry *r, const char *id);
int registry_add_vm(Registry *r, const char *id, uint32_t uid, RegVm **ret);
void registry_remove_vm(Registry *r, RegVm *vm);          /* closes its fds */
RegSession *reg_vm_add_session(RegVm *vm, bool delegated); /* name luvf:<vm>:<n>, NULL on OOM */
void reg_vm_remove_session(RegVm *vm, RegSession *s);
RegItem *reg_vm_find_item(const RegVm *vm, const char *label, RegSession **ret_session);
size_t reg_vm_count_items(const RegVm *vm);
RegItem *reg_session_add_item(RegSession *s, const char *label, RegKind kind, const char *pci);
void reg_session_remove_item(RegSession *s, RegItem *it);  /* closes its fd */
RegSession *reg_vm_delegated_session(const RegVm *vm);

/* JSON form (docs/protocol.md §Registry). from_json validates everything and fails with -EBADMSG. */
json_object *registry_to_json(const Registry *r);
int registry_from_json(json_object *o, Registry **ret);
int registry_serialize(const Registry *r, char **ret, size_t *ret_len);
int registry_parse(const char *buf, size_t len, Registry **ret);

/* registry_save_file() - write <dir>/registry.json atomically (temp file, fsync, rename, fsync dir). */
int registry_save_file(Registry *r, const char *dir);
/* registry_load_file() - -ENOENT if there is none. */
int registry_load_file(const char *dir, Registry **ret);
/*
 * registry_write_memfd() - a new memfd holding the JSON followed by a NUL, at least
 * @size bytes long. A preserved memfd cannot change size (EPERM), so it is created with
 * room to spare and later rewritten in place with registry_rewrite_memfd().
 */
int registry_write_memfd(const Registry *r, size_t size, int *ret_fd);
/* registry_rewrite_memfd() - rewrite in place; -ENOSPC if the JSON no longer fits. */
int registry_rewrite_memfd(const Registry *r, int fd);
/*
 * registry_save_both() - serialise once into @memfd (in place, as registry_rewrite_memfd())
 * and <dir>/registry.json, without fsync: for the freeze path, where the caller sync()s.
 */
int registry_save_both(Registry *r, const char *dir, int memfd, size_t *ret_len);
/*
 * The freeze path writes the registry at commit (registry_save_both(), while the VMMs freeze)
 * and at the reboot only the update record's last entries, after the registry's NUL in the
 * memfd (docs/protocol.md §7): REG_FINAL_MAGIC, then
 * {"id":N,"t_frozen_us":..,"t_reboot_us":..,"vms":{"<vm>":{"t_freeze_ack_us":..}}} and a NUL.
 * Readers that stop at the first NUL (registry_read_fd()) do not see it.
 * registry_write_final() - write it at @offset (the registry's length + 1); -ENOSPC if it does not fit.
 * registry_merge_final() - add it to @r->update; -ENOENT if there is none, or of another update.
 */
#define REG_FINAL_MAGIC "\001luvf-final 1\n"
int registry_write_final(int memfd, size_t offset, json_object *update);
int registry_merge_final(Registry *r, int memfd);
/*
 * registry_file_equals_fd() - 1 if <dir>/registry.json holds the same registry text as @fd
 * (each up to its first NUL), 0 if not: a cheap way to tell that both came from one write.
 */
int registry_file_equals_fd(const char *dir, int fd);
/* registry_read_fd() - parse a registry from the start of @fd, up to the first NUL. */
int registry_read_fd(int fd, Registry **ret);
