/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core after the reboot (restore.c): retrieving the incoming sessions, handing the
 * items back to the VMMs that reclaim them, finishing the VMs and the update.
 */
#pragma once

#include "core/state.h"

/*
 * restore_start() - take the incoming update (if one came in): read the registry and retrieve
 * every VM's sessions and files (a VFIO device once it is bound to vfio-pci again).
 */
int restore_start(Manager *m);
void restore_stop(Manager *m);
void restore_reclaim(Manager *m, RegVm *vm, RegItem *it, Call *call);
int restore_finish_vm(Manager *m, RegVm *vm, bool release, ProtoError *err);
void restore_check_done(Manager *m);
/*
 * restore_recall_restored() - for a daemon started without an incoming update: mark restored
 * the VMs that the update recorded as completed in this boot (by its boot_id) restored, so that
 * a restart after the restore does not make them look not restored.
 */
void restore_recall_restored(Manager *m);
void restore_record_vm(Manager *m, const char *vm, const char *key);

/* ---- for the VMM front end ---- */
void manager_reclaim(Manager *m, RegVm *vm, const char *label, Call *call);
/*
 * manager_reclaim_many() - reclaim @n labels (1..PROTO_RECLAIM_LABELS_MAX) at once: completes
 * @call once, with {"items":[...]} and the fds in label order, or with the first error (in label
 * order) and no fd at all.
 */
void manager_reclaim_many(Manager *m, RegVm *vm, const char *const *labels, size_t n, Call *call);
/*
 * manager_reclaim_all() - manager_reclaim_many() for every item of @vm that came across the
 * update, in the order hello lists them ("reclaim" at hello, protocol version 2). Completes
 * @call with {"items":[]} and no fd when @vm has nothing incoming, and with limit-reached when
 * it has more than PROTO_RECLAIM_LABELS_MAX items incoming.
 */
void manager_reclaim_all(Manager *m, RegVm *vm, Call *call);
/* manager_wait_bound() - answer once PCI device @pci is bound to vfio-pci (or time out). */
void manager_wait_bound(Manager *m, const char *pci, uint64_t timeout_ms, Call *call);
int manager_restored(Manager *m, RegVm *vm, json_object **ret, ProtoError *err);
