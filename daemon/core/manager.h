/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core of lu-vfiod: VMs, their items and LUO sessions, and the update state
 * machine (design §3). This is the only place lifecycle logic lives. Front ends (the
 * VMM socket, the operator control socket, D-Bus) translate requests into
 * manager_* calls, complete asynchronous ones through a Call (call.h), and subscribe to
 * progress (progress.h). restore.h is the after-kexec half of the same core.
 */
#pragma once

#include "core/call.h"
#include "core/persist.h"
#include "core/progress.h"
#include "core/state.h"

int manager_new(sd_event *e, Config *config, const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/*
 * manager_startup() - open the LUO device, detect an incoming update (our state session),
 * load the registry (from the incoming memfd, else the file mirror) and start restoring.
 */
int manager_startup(Manager *m);

/* ---- VMM side (custodian and delegated modes) ---- */
/* manager_vm_claim() - bind @vm_id to the connection @conn of a VMM running as @uid/@gid that
 * said hello (@client: its self-description, logged, or NULL); the VM in @ret. */
int manager_vm_claim(Manager *m, void *conn, const char *vm_id, uid_t uid, gid_t gid, const char *client,
                     RegVm **ret, ProtoError *err);
void manager_vm_disconnect(Manager *m, RegVm *vm);
json_object *manager_vm_items_json(Manager *m, const RegVm *vm);
/* manager_preserve() - takes ownership of @fd in every case. */
int manager_preserve(Manager *m, RegVm *vm, const char *label, int fd, json_object **ret, ProtoError *err);
int manager_unpreserve(Manager *m, RegVm *vm, const char *label, ProtoError *err);
int manager_forget(Manager *m, RegVm *vm, ProtoError *err);
int manager_session_get(Manager *m, RegVm *vm, int *ret_fd, json_object **ret, ProtoError *err);
int manager_ack_check(Manager *m, RegVm *vm, uint64_t seq, ProtoError *err);
int manager_ack(Manager *m, RegVm *vm, uint64_t seq, bool ok, const char *message, ProtoError *err);
/* called by the front end right after a successful hello reply */
void manager_vm_hello_done(Manager *m, RegVm *vm);

/* ---- operator side ---- */
json_object *manager_status(Manager *m);
json_object *manager_list(Manager *m);
/* @force: the next kernel's own pre-flight checks do not refuse (logged); the others still do. */
void manager_prepare(Manager *m, const char *kernel, const char *initrd, const char *cmdline,
                     bool force, uint64_t timeout_ms, Call *call);
/*
 * manager_check_prepare() - every pre-flight check of a prepare with these arguments,
 * without loading or freezing anything: {"checks":[...], "refused_by", "cmdline"}
 * (preflight_to_json()); NULL when out of memory.
 */
json_object *manager_check_prepare(Manager *m, const char *kernel, const char *initrd, const char *cmdline, bool force);
void manager_commit(Manager *m, bool force, uint64_t timeout_ms, Call *call);
int manager_cancel(Manager *m, ProtoError *err);
json_object *manager_timeline(Manager *m);
int manager_release_vm(Manager *m, const char *vm_id, ProtoError *err);
