/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The service manager's file descriptor store (systemd FileDescriptorStoreMax=): every
 * LUO session fd, preserved item fd and the registry memfd is pushed there, so that a
 * crash or restart of the daemon closes nothing the kernel must keep; the next instance
 * gets them back through LISTEN_FDS/LISTEN_FDNAMES (sd_listen_fds_with_names()).
 *
 * FDNAME allows printable ASCII without ':' (LISTEN_FDNAMES is ':'-separated), while LUO
 * session names and labels contain ':'. Names are therefore encoded, ':' -> '/', which
 * never occurs in VM ids, labels or session names:
 *   "ses/<session>"       a LUO session fd          (ses/luvf/vm-1/0)
 *   "item/<vm>/<label>"   a preserved item's fd     (item/vm-1/ram/node0)
 *   "state"               the registry memfd of a prepared update, or of the incoming one during the restore
 * Without $NOTIFY_SOCKET every push is a successful no-op.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDSTORE_NAME_MAX 255
#define FDSTORE_STATE    "state"
#define FDSTORE_VMM_SOCKET "vmm"     /* FileDescriptorName= of lu-vfiod.socket */

/* fdstore_name_session()/fdstore_name_item() - encode into @buf; -ENAMETOOLONG or -EINVAL on a bad name. */
int fdstore_name_session(const char *session, char *buf, size_t size);
int fdstore_name_item(const char *vm, const char *label, char *buf, size_t size);
/*
 * fdstore_name_parse() - decode a stored name. Sets *@ret_kind to "ses", "item" or "state"
 * and writes the session name (ses) or VM id and label (item) into @a and @b.
 * Returns -EINVAL for a name this daemon never stores.
 */
int fdstore_name_parse(const char *fdname, const char **ret_kind, char *a, size_t a_size, char *b, size_t b_size);

/* fdstore_enabled() - is there a service manager with an fd store to talk to? */
bool fdstore_enabled(void);
/* fdstore_push() - store a duplicate of @fd (the caller keeps @fd) under @fdname. */
int fdstore_push(const char *fdname, int fd);
/* fdstore_remove() - drop (and let the manager close) every stored fd named @fdname. */
int fdstore_remove(const char *fdname);

/*
 * fdstore_barrier() - wait (at most @timeout_usec) until the service manager has handled every
 * notification sent before, FDSTOREREMOVE included: then it has closed the removed fds
 * (sd_notify_barrier()). 0 without $NOTIFY_SOCKET; -ETIMEDOUT if the manager is that late.
 */
int fdstore_barrier(uint64_t timeout_usec);

/* The fds passed in at startup, by name. */
typedef struct ListenFds {
        size_t n;
        int *fds;          /* -EBADF once taken */
        char **names;
} ListenFds;

/*
 * listen_fds_take() - collect LISTEN_FDS (with names; unnamed ones are "unknown") and
 * unset the variables. A process not started with fds gets an empty set. Every fd is
 * made O_CLOEXEC.
 */
int listen_fds_take(ListenFds *ret);
/* listen_fds_pop() - take the first fd named @name (ownership to the caller), or -ENOENT. */
int listen_fds_pop(ListenFds *l, const char *name);
/* listen_fds_done() - close every fd nobody took; returns how many that were. */
size_t listen_fds_done(ListenFds *l);
