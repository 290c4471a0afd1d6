/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * liblu-vfio-client: the VMM side of the lu-vfiod protocol (docs/protocol.md).
 *
 * A VMM connects once per VM, hands over the fds that must survive a kexec live update
 * (guest RAM memfds, VFIO device cdev fds bound to an iommufd), answers the daemon's prepare and
 * freeze events, and after the reboot reclaims everything by label and reports the VM
 * restored. The calls block until the daemon answers; lu_client_get_fd() gives an fd
 * the VMM can poll for incoming events, which it then reads with lu_client_next_event().
 *
 * Conventions: every function returns 0 (or a non-negative value) on success and a
 * negative errno on failure. For an error reply of the daemon the errno is the one the
 * daemon sent (e.g. -EEXIST for a duplicate label, the kernel's errno for a kernel
 * error) and lu_client_last_error() returns the daemon's code and message. Nothing is
 * logged. A LuClient is not thread-safe; use one per thread or lock around it.
 *
 * Typical use, before the update:
 *     lu_client_connect(NULL, "vm-42", &c);
 *     lu_client_preserve(c, "ram0", memfd);          (memfds, then VFIO devices; never the iommufd)
 *     lu_client_preserve(c, "dev0", vfio_fd);
 *     loop: poll(lu_client_get_fd(c)) -> lu_client_next_event(c, 0, &ev)
 *           prepare: get ready, lu_client_ack(c, &ev, true, NULL)
 *           freeze:  pause vCPUs, disable device interrupts, lu_client_ack(c, &ev, true, NULL)
 *           resume:  the update was abandoned, carry on
 * after the reboot (lu_client_incoming(c) is true):
 *     lu_client_reclaim(c, "ram0", &memfd, NULL); lu_client_reclaim(c, "dev0", &dev, pci);
 *     bind the device to an iommufd again, then lu_client_restored(c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LU_CLIENT_DEFAULT_SOCKET "/run/lu-vfiod/vmm.sock"
#define LU_CLIENT_PROTOCOL_VERSION 2
#define LU_CLIENT_PCI_MAX 20

typedef struct LuClient LuClient;

typedef enum LuEventType {
        LU_EVENT_OTHER = 0,          /* an event this library version does not know; ignore it */
        LU_EVENT_PREPARE,            /* must be acknowledged */
        LU_EVENT_FREEZE,             /* must be acknowledged */
        LU_EVENT_RESUME,             /* update abandoned (reason "cancelled" or "failed") */
        LU_EVENT_RESTORE_READY,      /* after the reboot: items can be reclaimed */
} LuEventType;

typedef struct LuEvent {
        LuEventType type;
        char name[32];               /* the event name as sent */
        uint64_t seq;                /* pass the event to lu_client_ack() */
        uint64_t update;             /* update number */
        uint64_t deadline_ms;        /* prepare/freeze: time the daemon waits for the ack */
        char reason[32];             /* resume: "cancelled" or "failed" */
        char message[256];           /* resume: why */
} LuEvent;

/*
 * lu_client_connect() - connect to @path (NULL: LU_CLIENT_DEFAULT_SOCKET), say hello
 * for VM @vm_id (1-36 characters of A-Z a-z 0-9 . _ -) and return the client.
 * -EPERM: not allowed to claim this VM; -EBUSY: another connection holds it;
 * -EPROTONOSUPPORT: no common protocol version; -ENOENT/-ECONNREFUSED: no daemon.
 */
int lu_client_connect(const char *path, const char *vm_id, LuClient **ret);

/*
 * lu_client_connect_reclaim() - lu_client_connect(), asking the daemon to send every item
 * that came across the update with the hello reply (protocol version 2; with an older
 * daemon it says hello without). lu_client_reclaim() and lu_client_reclaim_many() then
 * return those fds without asking the daemon again: a restarted VMM gets its files back in
 * one round trip. For a VM with nothing incoming it is lu_client_connect(). If any item
 * cannot be reclaimed (a device that failed, or is not bound within BindTimeoutSec; more
 * than LU_CLIENT_RECLAIM_MAX items) none comes with the hello, and the reclaim calls ask the
 * daemon as usual (and get that item's error). The reply waits for the VM's VFIO devices to
 * be bound to vfio-pci again. Fds not reclaimed are closed by lu_client_free().
 */
int lu_client_connect_reclaim(const char *path, const char *vm_id, LuClient **ret);

/* lu_client_free() - close the connection (preserved items stay preserved). Returns NULL. */
LuClient *lu_client_free(LuClient *c);

/* lu_client_get_fd() - the socket, to poll for POLLIN (an event or a reply is waiting). */
int lu_client_get_fd(const LuClient *c);

/* lu_client_incoming() - true if this VM came across a live update and has items to reclaim. */
bool lu_client_incoming(const LuClient *c);

/* lu_client_abi() - the kernel LUO ABI the daemon drives: "upstream", "v4" or "none". */
const char *lu_client_abi(const LuClient *c);

/*
 * lu_client_item_state() - state of item @label as reported at connect time:
 * "preserved", "reclaimable", "reclaimed", "failed", "lost", or NULL if the daemon holds
 * no such item for this VM. A VMM that reconnects (after its own restart, without a
 * kexec) uses it to avoid handing the same thing over twice, and re-preserves "lost" ones.
 */
const char *lu_client_item_state(const LuClient *c, const char *label);

/*
 * lu_client_item_session() - name of the LUO session item @label is in, as reported at
 * connect time ("luvf:vm-42:0"), or NULL. After the reboot: a session holding a VFIO device
 * whose reclaim failed for good (a kernel error, not -ETIMEDOUT) cannot be finished and is
 * closed at lu_client_restored(); the memfds reclaimed from that same session stay the
 * kernel's until the next live update and cannot be handed over again (-EBUSY): copy their
 * contents into new memfds (docs/protocol.md §5.8).
 */
const char *lu_client_item_session(const LuClient *c, const char *label);

/* lu_client_daemon_state() - the update state reported at hello ("idle", "restoring", ...). */
const char *lu_client_daemon_state(const LuClient *c);

/*
 * lu_client_last_error() - code and message of the daemon's last error reply
 * ("label-exists: label \"ram0\" already used in VM vm-42"), "" if none.
 */
const char *lu_client_last_error(const LuClient *c);

/*
 * lu_client_preserve() - custodian mode: hand @fd over under @label (1-64 characters
 * of A-Z a-z 0-9 . _ : -). @fd is sent as a copy: the caller keeps (and may close) its
 * own. Accepted: a memfd (not hugetlb) and a VFIO cdev fd (/dev/vfio/devices/vfioN, not
 * O_PATH; on the upstream ABI bound to an iommufd first); not an iommufd, which no
 * supported kernel preserves (docs/protocol.md §5.2). Order within a VM: memfds, then VFIO
 * devices (-EINVAL otherwise). On success *ret_token (may be NULL) is the token the daemon
 * allocated; a refused preserve uses no token.
 * -EEXIST label in use; -EINVAL wrong kind or state of fd ("wrong-fd-kind" naming the kind
 * in lu_client_last_error()) or bad label; -ENOSPC limit; -EBUSY an update is in progress;
 * other errnos from the kernel.
 */
int lu_client_preserve(LuClient *c, const char *label, int fd, uint64_t *ret_token);

/* lu_client_unpreserve() - stop preserving @label (-ENOENT unknown label). */
int lu_client_unpreserve(LuClient *c, const char *label);

/*
 * lu_client_next_event() - wait up to @timeout_ms (-1 forever, 0 just check) for the next
 * event. -ETIMEDOUT if none came, -ECONNRESET if the daemon went away.
 */
int lu_client_next_event(LuClient *c, int timeout_ms, LuEvent *ret);

/*
 * lu_client_ack() - acknowledge a prepare or freeze event. @ok false vetoes the update
 * with @message (may be NULL). Acknowledge a freeze only after the vCPUs are paused and
 * device interrupts are off. Acknowledging the last freeze may start the reboot at once.
 * The daemon takes a message of at most 256 bytes without control characters; this sends
 * at most the first 256 bytes (cut at a UTF-8 character boundary), control characters
 * replaced by spaces, so that a veto is never refused for its wording.
 * With a daemon speaking protocol version 2, an @ok acknowledgement is sent "quiet": it
 * returns once sent, without waiting for the daemon; a refusal (the update ended meanwhile,
 * and a resume event follows) is only noted in lu_client_last_error(). A veto waits for its
 * reply.
 */
int lu_client_ack(LuClient *c, const LuEvent *ev, bool ok, const char *message);

/*
 * lu_client_reclaim() - after the reboot: get the preserved file @label back. For a VFIO
 * device this waits until the device is bound to vfio-pci again. @pci (may be NULL)
 * receives the PCI address ("0000:00:04.0") or "". -ENOENT unknown label, -ETIMEDOUT the
 * device never came back, the kernel's errno if retrieval failed (for good).
 */
int lu_client_reclaim(LuClient *c, const char *label, int *ret_fd, char pci[LU_CLIENT_PCI_MAX]);

/* Most labels one lu_client_reclaim_many() call takes. */
#define LU_CLIENT_RECLAIM_MAX 16

/*
 * lu_client_reclaim_many() - lu_client_reclaim() for @n labels (1..LU_CLIENT_RECLAIM_MAX) in
 * one round trip. On success @ret_fds[i] is the fd of @labels[i] and @pcis[i] (@pcis may be
 * NULL) its PCI address or "". All or nothing: if any label fails, no fd is returned and the
 * error is that of the first failing label (as for lu_client_reclaim()); -EINVAL bad @n.
 */
int lu_client_reclaim_many(LuClient *c, const char *const *labels, size_t n, int *ret_fds, char (*pcis)[LU_CLIENT_PCI_MAX]);

/*
 * lu_client_restored() - everything is reclaimed and VFIO devices are bound to an
 * iommufd again: the daemon finishes the VM's sessions. -EBUSY: the kernel says a
 * device is not bound yet; bind it and call again.
 */
int lu_client_restored(LuClient *c);

/*
 * lu_client_forget() - the VM shuts down: unpreserve everything and drop the VM. Allowed
 * when idle, and after a reboot for a VM that did not come across it or is restored
 * (-EBUSY otherwise). Afterwards the connection acts for no VM: free the client.
 */
int lu_client_forget(LuClient *c);

/*
 * lu_client_session_get() - delegated mode: get the VM's own LUO session fd. Preserve
 * files into it with lu_client_session_preserve() and tokens you choose and remember;
 * after the reboot the same call returns the incoming session (*ret_incoming true), from
 * which lu_client_session_retrieve() gets them back. The daemon keeps the session open
 * through the kexec and finishes it on lu_client_restored().
 */
int lu_client_session_get(LuClient *c, int *ret_fd, bool *ret_incoming);

/*
 * lu_client_wait_bound() - delegated mode, after the reboot: wait until PCI device @pci
 * ("0000:01:00.0") is bound to vfio-pci again; only then retrieve it from the session (a
 * retrieve that comes too early fails for good). @timeout_ms 0: the daemon's default.
 * -ETIMEDOUT if it never happens.
 */
int lu_client_wait_bound(LuClient *c, const char *pci, unsigned timeout_ms);

/*
 * lu_client_session_preserve() - PRESERVE_FD (0xBA40 on both ABIs) of @fd under @token on a
 * delegated session. The token is the caller's to choose (unique in the session) and to
 * remember across the reboot. -EEXIST token used, -EBUSY file preserved elsewhere, -ENOENT
 * a kind the kernel does not preserve, -ENOSPC session full.
 */
int lu_client_session_preserve(LuClient *c, int session_fd, int fd, uint64_t token);

/*
 * lu_client_session_retrieve() - get the file preserved under @token back from an incoming
 * delegated session: RETRIEVE_FD (0xBA41) on the upstream ABI, RESTORE_FD (0xBA42) on v4,
 * where 0xBA41 is UNPRESERVE_FD. For a VFIO device call lu_client_wait_bound() first.
 */
int lu_client_session_retrieve(LuClient *c, int session_fd, uint64_t token, int *ret_fd);

#ifdef __cplusplus
}
#endif
