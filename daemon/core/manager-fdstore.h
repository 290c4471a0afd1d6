/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core's side of the systemd fd store (fdstore.h has the transport): keep a copy of
 * every LUO session fd and preserved item fd in the service manager, so that a crash or
 * restart of the daemon before the kexec unpreserves nothing, and re-attach them to the
 * registry when the daemon comes back.
 *
 * The store mirrors the registry: after every event dispatch the fds the registry holds
 * are compared with what was pushed, new ones are pushed and vanished ones removed
 * (FDSTOREREMOVE). The registry memfd and state session of an update are not stored
 * (unless KexecMode=systemd, and then only once frozen): an update in flight when the
 * daemon dies is abandoned anyway, and re-creating the state session by name right after
 * a cancel must not race with the service manager closing its copy.
 */
#pragma once

#include "core/state.h"
#include "system/fdstore.h"

typedef struct FdStoreMirror FdStoreMirror;

/*
 * manager_fdstore_adopt_session() - the same for one session of @vm: true if its fd was
 * in @l (the session and its items are then attached and not lost).
 */
bool manager_fdstore_adopt_session(Manager *m, ListenFds *l, RegVm *vm, RegSession *s);
/* manager_fdstore_drop_rest() - close and un-store every fd of @l except the VMM socket. */
void manager_fdstore_drop_rest(ListenFds *l);

/* fdstore_mirror_new() - start mirroring @m's fds into the store (no-op without $NOTIFY_SOCKET). */
int fdstore_mirror_new(Manager *m, FdStoreMirror **ret);
FdStoreMirror *fdstore_mirror_free(FdStoreMirror *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(FdStoreMirror *, fdstore_mirror_free);
/* fdstore_mirror_sync() - push/remove now (also runs after every event dispatch, and right before a kexec). */
void fdstore_mirror_sync(FdStoreMirror *f);
/*
 * fdstore_mirror_push_vm() - store @vm's open sessions now, without a whole sync: right after
 * they are retrieved, before anything a client can see happens (a daemon killed between the
 * retrieve and the push loses the session: the kernel hands it out once). @f may be NULL.
 */
void fdstore_mirror_push_vm(FdStoreMirror *f, RegVm *vm);
/*
 * fdstore_mirror_flush() - sync, then wait until the service manager has closed what was removed
 * (fdstore_barrier()), so that a file the registry let go of is released when this returns: a VMM
 * told `forget`/`unpreserve` succeeded may open and bind its device again right away (the kernel
 * refuses a second cdev bind, EINVAL, while any copy of the old bound file is open). A NULL @f
 * (no fd store) is a no-op. Logs a timeout, which is not an error for the caller.
 */
void fdstore_mirror_flush(FdStoreMirror *f);
/*
 * fdstore_mirror_drop_session() - a session is about to be closed and re-created under the
 * same name (a rebuild): ask the store to drop its copy now, and forget it was pushed so
 * the new session is pushed even if it gets the same fd number. @f may be NULL.
 */
void fdstore_mirror_drop_session(FdStoreMirror *f, const char *session);
/*
 * fdstore_mirror_drop_vm_items() - @vm's item fds are about to be closed (the VM is restored
 * or released): ask the store to drop the copies pushed, without a whole sync. @f may be NULL.
 */
void fdstore_mirror_drop_vm_items(FdStoreMirror *f, RegVm *vm);

/*
 * fdstore_mirror_include_state() - also store the update's state session ("ses/luvf/state")
 * and registry memfd ("state") once the update is frozen: KexecMode=systemd, where
 * systemd, not the daemon, holds everything through the kexec.
 */
void fdstore_mirror_include_state(FdStoreMirror *f, bool include);
