/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lu-vfiod core after the kexec: detect the incoming update from our own state
 * session, read the registry it carries, retrieve sessions and files, wait for VFIO
 * devices to be bound to vfio-pci before retrieving them (a failed retrieve is sticky),
 * serve reclaims, FINISH restored VMs, apply the grace-period policy and keep the
 * timeline. Bind detection: kernel uevents through libnl, confirmed in sysfs, with a
 * periodic sysfs re-check as a fallback (uevents can be missed or not emulated).
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-id128.h>

#include "pci-addr.h"
#include "pci-sysfs.h"
#include "vfio-dev.h"

#include "common/message-ids.h"
#include "core/call.h"
#include "core/manager-fdstore.h"
#include "core/persist.h"
#include "core/progress.h"
#include "core/restore.h"
#include "core/state.h"
#include "system/fdstore.h"
#include "system/log.h"

#define BIND_POLL_USEC (20 * 1000)

struct Waiter {
        Call *call;
        char vm[REG_VM_ID_MAX + 1];
        char label[REG_LABEL_MAX + 1];
        Waiter *next;
};

struct BindWatch {
        struct nl_sock *sk;
        sd_event_source *io;
        sd_event_source *timer;
};

static void bind_watch_free(BindWatch *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        if (w->sk)
                nl_socket_free(w->sk);
        free(w);
}

/* /sys/bus/pci/devices/<BDF>/driver -> .../vfio-pci */
static bool pci_bound_to_vfio(const char *bdf) {
        char path[128], target[256];
        const char *base;
        ssize_t n;

        (void) snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = 0;
        base = strrchr(target, '/');
        return strcmp(base ? base + 1 : target, "vfio-pci") == 0;
}

void restore_record_vm(Manager *m, const char *vm, const char *key) {
        json_object *vms, *v;

        if (!m->reg->update || !json_object_object_get_ex(m->reg->update, "vms", &vms) ||
            !json_object_is_type(vms, json_type_object))
                return;
        if (!json_object_object_get_ex(vms, vm, &v) || !json_object_is_type(v, json_type_object)) {
                v = json_object_new_object();
                json_object_object_add(vms, vm, v);   /* replaces anything that is not an object */
        }
        json_object_object_add(v, key, json_object_new_uint64(now_realtime_us()));
}

static int dup_fd(int fd) {
        int k = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return k < 0 ? -errno : k;
}

static bool call_is_batch_part(const Call *call);

static void reply_item(Manager *m, RegVm *vm, RegItem *it, Call *call) {
        json_object *res;
        int fd;

        if (it->retrieve_error) {
                call_fail(call, it->retrieve_error == ETIMEDOUT ? PROTO_E_TIMEOUT : PROTO_E_KERNEL, it->retrieve_error,
                          "\"%s\" could not be retrieved: %s", it->label, strerror(it->retrieve_error));
                return;
        }
        fd = dup_fd(it->fd);
        if (fd < 0) {
                call_fail(call, PROTO_E_INTERNAL, fd, "dup: %s", strerror(-fd));
                return;
        }
        if (!it->claimed) {
                it->claimed = true;
                restore_record_vm(m, vm->id, "t_reclaimed_us");
        }
        res = json_object_new_object();
        json_object_object_add(res, "label", json_object_new_string(it->label));
        json_object_object_add(res, "kind", json_object_new_string(reg_kind_to_string(it->kind)));
        json_object_object_add(res, "pci", it->pci[0] ? json_object_new_string(it->pci) : NULL);
        /* A VFIO device gets its own line (VFIO_BDF= in the journal); the other files of a
         * multi-label reclaim are named in one line when it completes (reclaim_batch_done()). */
        log_full(it->kind == REG_KIND_VFIO || !call_is_batch_part(call) ? LOG_INFO : LOG_DEBUG, 0, vm->id, NULL,
                 it->pci[0] ? it->pci : NULL, "\"%s\" reclaimed", it->label);
        call_complete(call, res, fd, NULL);
}

static RegSession *item_session(RegVm *vm, RegItem *it) {
        for (size_t i = 0; i < vm->n_sessions; i++)
                if (it >= vm->sessions[i].items && it < vm->sessions[i].items + vm->sessions[i].n_items)
                        return &vm->sessions[i];
        return NULL;
}

static void retrieve_item(Manager *m, RegVm *vm, RegSession *s, RegItem *it) {
        int r;

        if (s->fd < 0) {
                it->retrieve_error = s->error ? s->error : ENOENT;
                return;
        }
        r = luo_session_retrieve_fd(m->luo, s->fd, it->token, &it->fd);
        if (r < 0) {
                it->fd = -EBADF;
                it->retrieve_error = -r;
                log_full(LOG_ERR, r, vm->id, s->name, it->pci[0] ? it->pci : NULL,
                         "RETRIEVE_FD of \"%s\" (token %llu) failed: %m", it->label, (unsigned long long) it->token);
        }
}

static bool item_waiting(const RegItem *it) {
        return it->incoming && it->fd < 0 && !it->retrieve_error;
}

/* Complete parked reclaims whose item is now retrieved or failed. */
static void serve_waiters(Manager *m) {
        for (Waiter **p = &m->waiters; *p;) {
                Waiter *w = *p;
                RegVm *vm = registry_find_vm(m->reg, w->vm);
                RegItem *it = vm ? reg_vm_find_item(vm, w->label, NULL) : NULL;

                if (it && item_waiting(it)) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                if (!it)
                        call_fail(w->call, PROTO_E_LABEL_UNKNOWN, ENOENT, "\"%s\" is gone", w->label);
                else
                        reply_item(m, vm, it, w->call);
                free(w);
        }
}

static void mark_retrieved_if_done(Manager *m) {
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                for (size_t j = 0; j < vm->n_sessions; j++)
                        for (size_t k = 0; k < vm->sessions[j].n_items; k++)
                                if (item_waiting(&vm->sessions[j].items[k]))
                                        return;
        }
        if (m->reg->update && !json_object_object_get(m->reg->update, "t_retrieved_us")) {
                json_object_object_add(m->reg->update, "t_retrieved_us", json_object_new_uint64(now_realtime_us()));
                manager_progress(m, NULL, "every preserved file retrieved");
        }
        if (m->bind_watch) {
                bind_watch_free(m->bind_watch);
                m->bind_watch = NULL;
        }
        m->bind_deadline = sd_event_source_disable_unref(m->bind_deadline);
}

/*
 * BindDevices=yes: the PCI preservation series leaves binding a preserved device after the
 * kexec to userspace. Bind it to vfio-pci here (driver_override + bind); the retrieve then
 * waits for sysfs to show the driver, as it would for a udev rule's bind.
 */
static void bind_device(RegVm *vm, RegSession *s, RegItem *it) {
        char driver[64] = "";
        int r = pci_bind_vfio_pci("/sys", it->pci);

        if (r == -EBUSY && pci_driver_name("/sys", it->pci, driver, sizeof(driver)) > 0)
                log_full(LOG_ERR, r, vm->id, s->name, it->pci,
                         "BindDevices: the device is bound to %s, not vfio-pci; not taking it from that driver", driver);
        else if (r < 0)
                log_full(LOG_ERR, r, vm->id, s->name, it->pci, "BindDevices: cannot bind the device to vfio-pci: %m");
        else
                log_full(LOG_INFO, 0, vm->id, s->name, it->pci, "BindDevices: asked vfio-pci to bind the device");
}

/* Retrieve every VFIO item whose device is bound now. */
static void check_binds(Manager *m) {
        bool changed = false;

        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                for (size_t j = 0; j < vm->n_sessions; j++) {
                        RegSession *s = &vm->sessions[j];
                        for (size_t k = 0; k < s->n_items; k++) {
                                RegItem *it = &s->items[k];
                                if (!item_waiting(it) || it->kind != REG_KIND_VFIO)
                                        continue;
                                if (!pci_bound_to_vfio(it->pci))
                                        continue;
                                log_full(LOG_INFO, 0, vm->id, s->name, it->pci, "device bound to vfio-pci, retrieving");
                                retrieve_item(m, vm, s, it);
                                changed = true;
                        }
                }
        }
        if (changed) {
                serve_waiters(m);
                mark_retrieved_if_done(m);
        }
}

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        bool relevant = false;

        for (;;) {
                struct sockaddr_nl addr;
                unsigned char *buf = NULL;
                int n = nl_recv(m->bind_watch->sk, &addr, &buf, NULL);
                if (n <= 0) {
                        free(buf);
                        break;
                }
                /* "bind@/devices/...": anything about binding may concern us; sysfs decides. */
                if ((n >= 5 && memcmp(buf, "bind@", 5) == 0) || (n >= 4 && memcmp(buf, "add@", 4) == 0))
                        relevant = true;
                free(buf);
        }
        if (relevant)
                check_binds(m);
        return 0;
}

static int on_bind_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        check_binds(m);
        if (m->bind_watch && m->bind_watch->timer == s) {
                (void) sd_event_source_set_time_relative(s, BIND_POLL_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

static int on_bind_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->bind_deadline = sd_event_source_disable_unref(m->bind_deadline);
        check_binds(m);
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                for (size_t j = 0; j < vm->n_sessions; j++)
                        for (size_t k = 0; k < vm->sessions[j].n_items; k++) {
                                RegItem *it = &vm->sessions[j].items[k];
                                if (!item_waiting(it))
                                        continue;
                                /* Not retrieved, so not burnt: a later reclaim re-checks sysfs. */
                                it->retrieve_error = ETIMEDOUT;
                                log_full(LOG_ERR, 0, vm->id, vm->sessions[j].name, it->pci,
                                         "device not bound to vfio-pci within %llu ms",
                                         (unsigned long long) m->config->bind_timeout_ms);
                        }
        }
        serve_waiters(m);
        mark_retrieved_if_done(m);
        return 0;
}

static int bind_watch_start(Manager *m) {
        BindWatch *w = calloc(1, sizeof(BindWatch));
        int r;

        if (!w)
                return -ENOMEM;
        m->bind_watch = w;
        w->sk = nl_socket_alloc();
        if (w->sk) {
                nl_socket_disable_seq_check(w->sk);
                r = nl_connect(w->sk, NETLINK_KOBJECT_UEVENT);
                if (r >= 0)
                        r = nl_socket_add_membership(w->sk, 1);
                if (r >= 0)
                        r = nl_socket_set_nonblocking(w->sk);
                if (r >= 0)
                        r = sd_event_add_io(m->event, &w->io, nl_socket_get_fd(w->sk), EPOLLIN, on_uevent, m);
                if (r < 0) {
                        log_warning("No kernel uevents (%s); polling sysfs for device binding", nl_geterror(r));
                        w->io = sd_event_source_disable_unref(w->io);
                        nl_socket_free(w->sk);
                        w->sk = NULL;
                }
        }
        return sd_event_add_time_relative(m->event, &w->timer, CLOCK_MONOTONIC, BIND_POLL_USEC, 1000, on_bind_poll, m);
}

static bool vm_recorded(Manager *m, const char *vm, const char *key) {
        json_object *vms, *v;

        return m->reg->update && json_object_object_get_ex(m->reg->update, "vms", &vms) &&
               json_object_object_get_ex(vms, vm, &v) && json_object_is_type(v, json_type_object) &&
               json_object_object_get(v, key);
}

/*
 * The grace period passed. UnclaimedPolicy=release: a release the kernel refuses (FINISH
 * EBUSY: a device not bound yet) is tried again every ReclaimGraceSec, else the VM's memory
 * and devices would stay pinned for good, against the policy, and no update could follow.
 */
static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        bool retry = false;
        int r;

        m->grace = sd_event_source_disable_unref(m->grace);
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                ProtoError err = {};
                if (!vm->incoming || vm->restored)
                        continue;
                if (!vm_recorded(m, vm->id, "t_unclaimed_us")) {
                        manager_progress_event(m, LU_MESSAGE_VM_NOT_RECLAIMED, vm->id, "not restored within the grace period (%s)",
                                               m->config->unclaimed_policy == UNCLAIMED_RELEASE ? "releasing" : "kept pinned");
                        restore_record_vm(m, vm->id, "t_unclaimed_us");
                }
                if (m->config->unclaimed_policy == UNCLAIMED_RELEASE && restore_finish_vm(m, vm, true, &err) < 0) {
                        manager_progress(m, vm->id, "release failed: %s; trying again in %llu s", err.message,
                                         (unsigned long long) (m->config->reclaim_grace_ms / 1000));
                        retry = true;
                }
        }
        restore_check_done(m);
        if (retry && m->state == UPDATE_RESTORING) {
                r = sd_event_add_time_relative(m->event, &m->grace, CLOCK_MONOTONIC, m->config->reclaim_grace_ms * 1000,
                                               1000, on_grace, m);
                if (r < 0)
                        log_error_errno(r, "Cannot arm the release retry: %m");
        }
        return 0;
}

/*
 * A daemon restarted during the restore: the service manager's fd store kept the registry
 * memfd (unchanged since the kexec, or the copy of the mirror's: it describes the incoming
 * update) and, with it, the state session, which the kernel will not hand out again (EINVAL,
 * already retrieved). The session is missing when our predecessor could not retrieve it and
 * restored from the mirror (*ret_sfd is then -EBADF). -ENOENT: no registry memfd stored.
 */
static int adopt_stored_state(Manager *m, int *ret_sfd, int *ret_memfd) {
        _cleanup_close_ int sfd = -EBADF, memfd = -EBADF;
        char name[FDSTORE_NAME_MAX + 1];
        int r;

        if (!m->stored_fds)
                return -ENOENT;
        r = fdstore_name_session(REG_STATE_SESSION, name, sizeof(name));
        if (r < 0)
                return r;
        sfd = listen_fds_pop(m->stored_fds, name);
        memfd = listen_fds_pop(m->stored_fds, FDSTORE_STATE);
        if (memfd < 0)
                return -ENOENT;
        if (lseek(memfd, 0, SEEK_SET) < 0)   /* the store's copy shares our predecessor's offset */
                return -errno;
        *ret_sfd = TAKE_FD(sfd);
        *ret_memfd = TAKE_FD(memfd);
        return 0;
}

/* Restarted: @s was either kept in the fd store (still open) or finished before the restart. */
static void adopt_session(Manager *m, RegVm *vm, RegSession *s) {
        int r;

        if (m->stored_fds && manager_fdstore_adopt_session(m, m->stored_fds, vm, s))
                return;
        /* Not in the store: retrieved and finished (the VM was restored), or never retrieved. */
        r = luo_session_retrieve(m->luo, s->name, &s->fd);
        if (r < 0) {
                s->fd = -EBADF;
                s->error = -r;
                s->finished = r == -ENOENT;
                if (r != -ENOENT)
                        log_full(LOG_ERR, r, vm->id, s->name, NULL, "RETRIEVE_SESSION failed: %m");
        }
}

/*
 * The kernel failed our state session or its memfd, but an update did come in: the mirror
 * file was written from the same serialisation as the memfd and synced before the reboot
 * call, so while it still records that update as freezing (written at commit, when the
 * registry stops changing) or frozen (by a daemon that wrote it at the reboot) it describes
 * the incoming sessions exactly, and the VMs' sessions (intact in the kernel) need not be lost.
 */
static int registry_from_mirror(Manager *m, Registry **ret) {
        _cleanup_(registry_freep) Registry *reg = NULL;
        json_object *st;
        int r;

        r = registry_load_file(m->state_dir, &reg);
        if (r < 0)
                return r;
        if (!reg->update && reg->timeline && json_object_object_get_ex(reg->timeline, "without_luo", &st) &&
            json_object_get_boolean(st)) {
                /* A daemon that could not open /dev/liveupdate in this boot recorded the frozen
                 * update abandoned, unable to tell that it came in: it did, and is still to restore
                 * (found by the soak, SOAK_SEED=4000 SOAK_RUN=279 and 396). */
                reg->update = TAKE_PTR(reg->timeline);
                json_object_object_del(reg->update, "result");
                json_object_object_del(reg->update, "without_luo");
        }
        if (!reg->update || !json_object_object_get_ex(reg->update, "state", &st) ||
            !json_object_is_type(st, json_type_string) ||
            (strcmp(json_object_get_string(st), "frozen") != 0 && strcmp(json_object_get_string(st), "freezing") != 0))
                return -ESTALE;
        *ret = TAKE_PTR(reg);
        return 0;
}

/*
 * The incoming registry @reg describes an update the mirror says is over: a predecessor in
 * this boot failed to retrieve our state session (so it stayed in the kernel), restored from
 * the mirror and completed (and maybe ran more updates since, which cancelled or failed).
 * Restoring it again would retrieve finished sessions (ENOENT) and put the VMs' new sessions
 * aside: the incoming state is stale. Update ids only grow: a mirror whose last finished update
 * is this one, done, or a later one, or which has a later one in flight, has seen this one end.
 */
static bool incoming_already_done(Manager *m, const Registry *reg, int memfd) {
        _cleanup_(registry_freep) Registry *file_reg_parsed = NULL;
        const Registry *file_reg;
        json_object *in_id, *id, *res;

        if (!reg->update || !json_object_object_get_ex(reg->update, "id", &in_id))
                return false;
        /* The usual case: the mirror is the very text of the memfd (one write at commit), so it
         * reads as @reg. Parsing it again was 23% of the restore path at 256 VMs (performance.md). */
        if (memfd >= 0 && registry_file_equals_fd(m->state_dir, memfd) > 0)
                file_reg = reg;
        else if (registry_load_file(m->state_dir, &file_reg_parsed) < 0)
                return false;
        else
                file_reg = file_reg_parsed;
        /* a later update was started (it is in flight in the mirror: the daemon died in it) */
        if (file_reg->update && json_object_object_get_ex(file_reg->update, "id", &id) &&
            json_object_get_int64(id) > json_object_get_int64(in_id))
                return true;
        /* this one restored and done, or a later one finished (a daemon without LUO, after a
         * broken open, records this very update "abandoned": that one is still to restore) */
        if (!file_reg->timeline || !json_object_object_get_ex(file_reg->timeline, "id", &id))
                return false;
        if (json_object_get_int64(id) > json_object_get_int64(in_id))
                return true;
        return json_object_get_int64(id) == json_object_get_int64(in_id) &&
               json_object_object_get_ex(file_reg->timeline, "result", &res) &&
               strcmp(json_object_get_string(res), "done") == 0;
}

/*
 * Retrieve @vm's sessions and every item that can be retrieved now (a VFIO device only once
 * it is bound to vfio-pci). @restarted: a daemon restarted during the restore, whose
 * predecessor kept what it had retrieved in the fd store. Returns true if a device must be
 * waited for.
 */
static bool vm_retrieve(Manager *m, RegVm *vm, bool restarted) {
        bool waiting = false;
        size_t finished = 0;
        int r;

        /* next_session stays past every incoming name: a VM restored in this boot hands its
         * items over again into a session that must not share an incoming one's name (the fd
         * store keeps sessions by name, and a daemon restarted during the restore took the new
         * session for the finished incoming one), and the mirror written meanwhile must stay
         * readable (a session number below next_session). */
        for (size_t j = 0; j < vm->n_sessions; j++) {
                RegSession *s = &vm->sessions[j];
                if (restarted) {
                        adopt_session(m, vm, s);
                        finished += s->finished;
                } else {
                        r = luo_session_retrieve(m->luo, s->name, &s->fd);
                        if (r < 0) {
                                s->fd = -EBADF;
                                s->error = -r;
                                log_full(LOG_ERR, r, vm->id, s->name, NULL, "RETRIEVE_SESSION failed: %m");
                        }
                }
                for (size_t k = 0; k < s->n_items; k++) {
                        RegItem *it = &s->items[k];
                        if (it->fd >= 0)
                                continue;   /* adopted from the fd store */
                        /* VFIO devices must be bound first; everything else is retrieved now. */
                        if (it->kind == REG_KIND_VFIO && s->fd >= 0) {
                                if (m->config->bind_devices && !pci_bound_to_vfio(it->pci))
                                        bind_device(vm, s, it);
                                if (pci_bound_to_vfio(it->pci))
                                        retrieve_item(m, vm, s, it);
                                else
                                        waiting = true;
                        } else
                                retrieve_item(m, vm, s, it);
                }
        }
        if (restarted && vm->n_sessions > 0 && finished == vm->n_sessions) {
                /* Every session finished before the restart: the VMM reported "restored". */
                while (vm->n_sessions > 0)
                        reg_vm_remove_session(vm, &vm->sessions[vm->n_sessions - 1]);
                vm->restored = true;
                log_full(LOG_NOTICE, 0, vm->id, NULL, NULL, "restored before the daemon restarted");
        }
        return waiting;
}

int restore_start(Manager *m) {
        _cleanup_close_ int sfd = -EBADF, memfd = -EBADF, stored_sfd = -EBADF;
        Registry *reg = NULL;
        bool waiting = false, restarted = false, from_mirror_copy = false;
        int r;

        r = luo_session_retrieve(m->luo, REG_STATE_SESSION, &sfd);
        if (r == -ENOENT)
                return 0;   /* cold boot or no update: nothing came in */
        if (r == -EINVAL && adopt_stored_state(m, &sfd, &memfd) >= 0 && sfd >= 0) {
                restarted = true;
                log_notice("Restarted during the restore: state session %s and registry adopted from the fd store",
                           REG_STATE_SESSION);
        } else if (memfd >= 0 || (r != -EINVAL && adopt_stored_state(m, &stored_sfd, &memfd) >= 0)) {
                /* A registry memfd in the store without the state session: our predecessor failed
                 * to retrieve the session, restored from the mirror and kept a copy of its registry
                 * here, then died during that restore. Continue it: restoring the update afresh
                 * would retrieve the sessions it already retrieved (EINVAL: they are in the store)
                 * or finished (ENOENT), and fail every item. The session, if the kernel hands it
                 * out now (the failure did not repeat), is finished when the restore completes. */
                if (stored_sfd >= 0) {
                        /* Stored with it: the incoming session (the kernel failed this retrieve,
                         * which would have been EINVAL: our predecessor retrieved it) */
                        safe_close(sfd);
                        sfd = TAKE_FD(stored_sfd);
                } else if (r < 0)
                        sfd = -EBADF;
                restarted = true;
                from_mirror_copy = sfd < 0 || r >= 0;
                log_notice("Restarted during the restore: registry adopted from the fd store, state session %s",
                           r < 0 && sfd >= 0 ? "from the fd store too" : sfd >= 0 ? "retrieved now" : "lost");
        } else if (r == -EINVAL) {
                /* A predecessor in this boot retrieved everything: nothing is left to retrieve. */
                log_error_errno(r, "Retrieving our state session %s failed (already retrieved, and not in the fd store): %m",
                                REG_STATE_SESSION);
                return 0;
        } else if (r < 0)
                log_error_errno(r, "Retrieving our state session %s failed: %m", REG_STATE_SESSION);
        else {
                r = luo_session_retrieve_fd(m->luo, sfd, REG_STATE_TOKEN, &memfd);
                if (r < 0)
                        log_error_errno(r, "Retrieving the registry memfd failed: %m");
        }
        if (memfd >= 0) {
                r = registry_read_fd(memfd, &reg);
                if (r < 0) {
                        log_error_errno(r, "The incoming registry is unreadable: %m");
                        memfd = safe_close(memfd);
                } else {
                        /* the update record's last entries, appended at the reboot (do_kexec()):
                         * without them (none written, or unreadable) only the timeline has less */
                        r = registry_merge_final(reg, memfd);
                        if (r < 0 && r != -ENOENT)
                                log_warning_errno(r, "Cannot read the final entries of the incoming update record: %m");
                }
        }
        /* a copy of the mirror's left in the store by a daemon that died after that restore completed */
        if (reg && (!restarted || from_mirror_copy) && incoming_already_done(m, reg, memfd)) {
                log_warning("The incoming state in %s is of an update already restored in this boot (from the "
                            "registry mirror): finishing it, not restoring it again", REG_STATE_SESSION);
                registry_free(reg);
                if (sfd >= 0 && luo_session_finish(m->luo, sfd) < 0)
                        log_debug("FINISH of the stale %s failed: closing it", REG_STATE_SESSION);
                return 0;
        }
        if (!reg) {
                r = registry_from_mirror(m, &reg);
                if (r < 0) {
                        log_error_errno(r, "No record of the incoming update in the registry mirror in %s either (%m): "
                                        "its VMs cannot be restored", m->state_dir);
                        return 0;
                }
                log_warning("Restoring from the registry mirror in %s, written at the same commit as the lost memfd",
                            m->state_dir);
                /* The fd store keeps a registry memfd (with the state session, if we have it), so
                 * that a daemon restarted during this restore continues it (a session cannot be
                 * retrieved twice): it gets a copy of what the mirror says came in. */
                if (memfd < 0) {
                        r = registry_write_memfd(reg, 0, &memfd);
                        if (r < 0)
                                log_warning_errno(r, "Cannot keep a copy of the incoming registry for a restart: %m");
                }
        }
        m->reg = reg;
        m->boot_incoming = true;
        m->state_session_fd = TAKE_FD(sfd);
        m->incoming_memfd = TAKE_FD(memfd);
        m->state = UPDATE_RESTORING;
        if (!m->reg->update)
                m->reg->update = json_object_new_object();
        json_object_object_add(m->reg->update, "state", json_object_new_string("restoring"));
        json_object_object_add(m->reg->update, "t_daemon_start_us", json_object_new_uint64(m->t_start_us));
        if (!json_object_object_get(m->reg->update, "vms"))
                json_object_object_add(m->reg->update, "vms", json_object_new_object());
        m->update_id = (uint64_t) json_object_get_int64(json_object_object_get(m->reg->update, "id"));
        manager_progress_event(m, LU_MESSAGE_INCOMING, NULL, "incoming live update %llu with %zu VMs", (unsigned long long) m->update_id, m->reg->n_vms);

        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                vm->incoming = vm->n_sessions > 0;
                for (size_t j = 0; j < vm->n_sessions; j++)
                        for (size_t k = 0; k < vm->sessions[j].n_items; k++)
                                vm->sessions[j].items[k].incoming = true;
                /*
                 * Everything at once, before the first VMM is served. Retrieving each VM when its
                 * VMM said hello (the rest at idle priority) was built and measured slower, 15-20 %
                 * at 256 and 512 VMs (docs/performance.md, fourth round).
                 */
                waiting |= vm_retrieve(m, vm, restarted);
                if (!restarted)   /* in the store before any reply (a restarted daemon's came from it) */
                        fdstore_mirror_push_vm(m->fdstore, vm);
        }
        if (waiting) {
                /* The deadline runs from the daemon's start, on a timer of its own: if the watch
                 * cannot be set up, reclaims waiting for a device are still answered (ETIMEDOUT). */
                r = sd_event_add_time_relative(m->event, &m->bind_deadline, CLOCK_MONOTONIC,
                                               m->config->bind_timeout_ms * 1000, 1000, on_bind_deadline, m);
                if (r < 0)
                        return log_error_errno(r, "Cannot arm the bind deadline: %m");
                r = bind_watch_start(m);
                if (r < 0)
                        return log_error_errno(r, "Cannot watch for device binding: %m");
        }
        mark_retrieved_if_done(m);
        r = sd_event_add_time_relative(m->event, &m->grace, CLOCK_MONOTONIC, m->config->reclaim_grace_ms * 1000,
                                       1000, on_grace, m);
        if (r < 0)
                return r;
        restore_check_done(m);
        return 0;
}

void restore_stop(Manager *m) {
        while (m->waiters) {
                Waiter *w = m->waiters;
                m->waiters = w->next;
                call_fail(w->call, PROTO_E_CANCELLED, ECANCELED, "daemon shutting down");
                free(w);
        }
        bind_watch_free(m->bind_watch);
        m->bind_watch = NULL;
        m->bind_deadline = sd_event_source_disable_unref(m->bind_deadline);
        m->grace = sd_event_source_disable_unref(m->grace);
}

void restore_reclaim(Manager *m, RegVm *vm, RegItem *it, Call *call) {
        Waiter *w;

        if (it->retrieve_error == ETIMEDOUT && pci_bound_to_vfio(it->pci)) {
                RegSession *s = item_session(vm, it);
                it->retrieve_error = 0;
                if (s)
                        retrieve_item(m, vm, s, it);
        }
        if (!item_waiting(it)) {
                reply_item(m, vm, it, call);
                return;
        }
        w = calloc(1, sizeof(Waiter));
        if (!w) {
                call_fail(call, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                return;
        }
        w->call = call;
        strcpy(w->vm, vm->id);
        strcpy(w->label, it->label);
        w->next = m->waiters;
        m->waiters = w;
        log_full(LOG_INFO, 0, vm->id, NULL, it->pci, "reclaim of \"%s\" waits for the device to be bound", it->label);
}

/* wait-bound: delegated VMMs retrieve their own devices, but must not do so before the bind. */
typedef struct BindWait {
        Call *call;
        char pci[PCI_ADDR_STRING_MAX];
        uint64_t deadline;
        sd_event_source *timer;
} BindWait;

static int on_bind_wait(sd_event_source *s, uint64_t usec, void *userdata) {
        BindWait *w = userdata;
        bool bound = pci_bound_to_vfio(w->pci);

        if (!bound && usec < w->deadline) {
                (void) sd_event_source_set_time_relative(s, BIND_POLL_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        if (bound) {
                json_object *res = json_object_new_object();
                json_object_object_add(res, "pci", json_object_new_string(w->pci));
                call_complete(w->call, res, -EBADF, NULL);
        } else
                call_fail(w->call, PROTO_E_TIMEOUT, ETIMEDOUT, "%s not bound to vfio-pci in time", w->pci);
        sd_event_source_disable_unref(w->timer);
        free(w);
        return 0;
}

void manager_wait_bound(Manager *m, const char *pci, uint64_t timeout_ms, Call *call) {
        BindWait *w;
        PciAddr a;
        uint64_t now;
        int r;

        if (!pci || pci_addr_parse(pci, &a) < 0) {
                call_fail(call, PROTO_E_INVALID_PARAMS, EINVAL, "invalid PCI address (DDDD:BB:DD.F)");
                return;
        }
        w = calloc(1, sizeof(BindWait));
        if (!w) {
                call_fail(call, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                return;
        }
        w->call = call;
        pci_addr_to_string(&a, w->pci);
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        w->deadline = now + (timeout_ms ? timeout_ms : m->config->bind_timeout_ms) * 1000;
        /* Checked at once and then every poll period (sysfs is the truth, uevents only a hint). */
        r = sd_event_add_time(m->event, &w->timer, CLOCK_MONOTONIC, now, 1000, on_bind_wait, w);
        if (r < 0) {
                free(w);
                call_fail(call, PROTO_E_INTERNAL, r, "cannot arm a timer");
        }
}

void manager_reclaim(Manager *m, RegVm *vm, const char *label, Call *call) {
        RegItem *it;

        if (!proto_label_is_valid(label)) {
                call_fail(call, PROTO_E_INVALID_PARAMS, EINVAL, "invalid label");
                return;
        }
        it = reg_vm_find_item(vm, label, NULL);
        if (!it) {
                call_fail(call, PROTO_E_LABEL_UNKNOWN, ENOENT, "no item \"%s\" in VM %s", label, vm->id);
                return;
        }
        if (!it->incoming) {
                call_fail(call, PROTO_E_STATE, EBUSY, "\"%s\" did not come across an update", label);
                return;
        }
        restore_reclaim(m, vm, it, call);
}

/*
 * A multi-label reclaim: one sub-call per label through manager_reclaim() (so waiting for
 * the bind, retries and errors are exactly those of a single reclaim), gathered here and
 * answered once. Any failure fails the whole request and every fd already got is closed.
 */
typedef struct ReclaimBatch ReclaimBatch;

typedef struct ReclaimPart {
        Call call;
        ReclaimBatch *batch;
        size_t idx;
} ReclaimPart;

struct ReclaimBatch {
        Call *call;
        char vm[REG_VM_ID_MAX + 1];
        size_t n, pending;
        json_object *items[PROTO_RECLAIM_LABELS_MAX];
        int fds[PROTO_RECLAIM_LABELS_MAX];
        bool failed;
        size_t err_idx;
        ProtoError err;
        ReclaimPart parts[PROTO_RECLAIM_LABELS_MAX];
};

static void on_reclaim_part(Call *call, json_object *result, int *fds, size_t n_fds, const ProtoError *err);

static bool call_is_batch_part(const Call *call) {
        return call->complete == on_reclaim_part;
}

/* One line for the files of a batch that are no VFIO device (those had theirs), not one per file. */
static void batch_log(const char *vm, json_object *items) {
        char line[512];
        size_t n = 0, count = 0;

        for (size_t i = 0; i < json_object_array_length(items); i++) {
                json_object *it = json_object_array_get_idx(items, i), *kind, *label;
                if (!json_object_object_get_ex(it, "kind", &kind) || strcmp(json_object_get_string(kind), "vfio") == 0 ||
                    !json_object_object_get_ex(it, "label", &label))
                        continue;
                count++;
                if (n < sizeof(line))
                        n += (size_t) snprintf(line + n, sizeof(line) - n, "%s\"%s\"", n ? " " : "",
                                               json_object_get_string(label));
        }
        if (n >= sizeof(line))   /* cut: say so rather than end in the middle of a label */
                memcpy(line + sizeof(line) - 5, " ...", 5);
        if (count > 0)
                log_vm(LOG_INFO, vm, "reclaimed %zu file%s: %s", count, count == 1 ? "" : "s", line);
}

static void reclaim_batch_done(ReclaimBatch *b) {
        json_object *res, *arr;

        if (!b->failed) {
                res = json_object_new_object();
                arr = json_object_new_array();
                if (!res || !arr) {
                        json_object_put(res);
                        json_object_put(arr);
                        proto_error_set(&b->err, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                        b->failed = true;
                } else {
                        for (size_t i = 0; i < b->n; i++) {
                                (void) json_object_array_add(arr, b->items[i]);
                                b->items[i] = NULL;
                        }
                        json_object_object_add(res, "items", arr);
                        batch_log(b->vm, arr);
                        call_complete_fds(b->call, res, b->fds, b->n, NULL);
                }
        }
        if (b->failed) {
                for (size_t i = 0; i < b->n; i++) {
                        json_object_put(b->items[i]);
                        b->fds[i] = safe_close(b->fds[i]);
                }
                call_complete(b->call, NULL, -EBADF, &b->err);
        }
        free(b);
}

static void on_reclaim_part(Call *call, json_object *result, int *fds, size_t n_fds, const ProtoError *err) {
        ReclaimPart *p = (ReclaimPart *) call;
        ReclaimBatch *b = p->batch;

        if (err || n_fds != 1 || fds[0] < 0) {
                /* Report the failure of the earliest label, whatever order they completed in. */
                if (!b->failed || p->idx < b->err_idx) {
                        if (err)
                                b->err = *err;
                        else
                                proto_error_set(&b->err, PROTO_E_INTERNAL, EIO, "no fd for item %zu", p->idx);
                        b->err_idx = p->idx;
                }
                b->failed = true;
                json_object_put(result);
                for (size_t i = 0; i < n_fds; i++)
                        (void) safe_close(fds[i]);
        } else {
                b->items[p->idx] = result;
                b->fds[p->idx] = fds[0];
        }
        if (--b->pending == 0)
                reclaim_batch_done(b);
}

void manager_reclaim_many(Manager *m, RegVm *vm, const char *const *labels, size_t n, Call *call) {
        ReclaimBatch *b;

        if (n < 1 || n > PROTO_RECLAIM_LABELS_MAX) {
                call_fail(call, PROTO_E_INVALID_PARAMS, EINVAL, "1-%d labels", PROTO_RECLAIM_LABELS_MAX);
                return;
        }
        /* Refuse before anything is retrieved or handed out: nothing to undo. */
        for (size_t i = 0; i < n; i++) {
                RegItem *it;

                if (!proto_label_is_valid(labels[i])) {
                        call_fail(call, PROTO_E_INVALID_PARAMS, EINVAL, "invalid label");
                        return;
                }
                it = reg_vm_find_item(vm, labels[i], NULL);
                if (!it) {
                        call_fail(call, PROTO_E_LABEL_UNKNOWN, ENOENT, "no item \"%s\" in VM %s", labels[i], vm->id);
                        return;
                }
                if (!it->incoming) {
                        call_fail(call, PROTO_E_STATE, EBUSY, "\"%s\" did not come across an update", labels[i]);
                        return;
                }
        }
        b = calloc(1, sizeof(ReclaimBatch));
        if (!b) {
                call_fail(call, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                return;
        }
        b->call = call;
        (void) snprintf(b->vm, sizeof(b->vm), "%s", vm->id);
        b->n = n;
        b->pending = n + 1;   /* parts may complete at once: hold the batch until all are started */
        for (size_t i = 0; i < n; i++) {
                b->fds[i] = -EBADF;
                b->parts[i] = (ReclaimPart) { .call.complete = on_reclaim_part, .call.id = call->id, .batch = b, .idx = i };
        }
        for (size_t i = 0; i < n; i++)
                manager_reclaim(m, vm, labels[i], &b->parts[i].call);
        if (--b->pending == 0)
                reclaim_batch_done(b);
}

void manager_reclaim_all(Manager *m, RegVm *vm, Call *call) {
        const char *labels[PROTO_RECLAIM_LABELS_MAX];
        size_t n = 0;

        for (size_t i = 0; i < vm->n_sessions; i++)
                for (size_t k = 0; k < vm->sessions[i].n_items; k++) {
                        RegItem *it = &vm->sessions[i].items[k];

                        if (!it->incoming || vm->restored)
                                continue;
                        if (n == PROTO_RECLAIM_LABELS_MAX) {
                                call_fail(call, PROTO_E_LIMIT, E2BIG, "VM %s has more than %d items to reclaim: reclaim them by label",
                                          vm->id, PROTO_RECLAIM_LABELS_MAX);
                                return;
                        }
                        labels[n++] = it->label;
                }
        if (n == 0) {
                json_object *res = json_object_new_object();
                json_object_object_add(res, "items", json_object_new_array());
                call_complete(call, res, -EBADF, NULL);
                return;
        }
        manager_reclaim_many(m, vm, labels, n, call);
}

/*
 * Releasing a VM whose VMM is gone: the kernel finishes a VFIO device only once it is
 * bound (can_finish), so bind the retrieved devices to a throwaway iommufd first; the
 * device then goes back to the host when we close it. A device the VMM reclaimed is
 * included: a VMM that died before binding it left it unbound, and the VM could never
 * be released (one it did bind refuses a second bind with EINVAL, which is fine).
 */
static void bind_unclaimed_devices(RegVm *vm) {
        _cleanup_close_ int iommufd = -EBADF;

        for (size_t i = 0; i < vm->n_sessions; i++)
                for (size_t j = 0; j < vm->sessions[i].n_items; j++) {
                        RegItem *it = &vm->sessions[i].items[j];
                        int r;
                        if (it->kind != REG_KIND_VFIO || it->fd < 0)
                                continue;
                        if (iommufd < 0)
                                iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
                        if (iommufd < 0)
                                return;
                        r = vfio_device_bind_iommufd(it->fd, iommufd, NULL);
                        if (r < 0 && !(r == -EINVAL && it->claimed))
                                log_full(LOG_WARNING, r, vm->id, vm->sessions[i].name, it->pci,
                                         "binding unclaimed \"%s\" for release failed: %m", it->label);
                }
}

/*
 * A VFIO device whose retrieve failed for good (sticky; a bind timeout is not: it was never
 * tried) never passes the kernel's can_finish, so its session can never be FINISHed.
 */
static const RegItem *session_unfinishable_item(const RegSession *s) {
        for (size_t k = 0; k < s->n_items; k++)
                if (s->items[k].kind == REG_KIND_VFIO && s->items[k].retrieve_error &&
                    s->items[k].retrieve_error != ETIMEDOUT)
                        return &s->items[k];
        return NULL;
}

/*
 * A session the kernel failed to hand us (RETRIEVE_SESSION failed) stays in the kernel with
 * the VM's old files, while the VMM was told they failed and goes on without them. A daemon
 * restarted later in this boot could retrieve it then (the failure may not repeat) and offer
 * the VM memory older than what its guest has written since (soak: SOAK_SEED=4000
 * SOAK_RUN=44). So once the VM is restored, try once more and drop the session: FINISH, or
 * close it when the kernel refuses (unretrieved VFIO devices), which leaves it held and
 * never retrievable again in this boot.
 */
static void session_discard_unretrieved(Manager *m, RegVm *vm, RegSession *s) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = luo_session_retrieve(m->luo, s->name, &fd);
        if (r == -ENOENT) {
                s->finished = true;
                return;
        }
        if (r < 0) {
                log_full(LOG_WARNING, r, vm->id, s->name, NULL,
                         "RETRIEVE_SESSION failed again (%m): the session stays in the kernel, and a daemon "
                         "restarted in this boot may offer its old items to the VM again");
                return;
        }
        r = luo_session_finish(m->luo, fd);
        if (r < 0)
                log_full(LOG_WARNING, r, vm->id, s->name, NULL,
                         "FINISH of the session the VM was told it lost failed (%m): closing it; the kernel keeps "
                         "its files until the next live update");
        else
                log_full(LOG_INFO, 0, vm->id, s->name, NULL, "session the VM was told it lost retrieved late and finished");
        s->finished = true;
}

int restore_finish_vm(Manager *m, RegVm *vm, bool release, ProtoError *err) {
        if (!vm->conn)
                bind_unclaimed_devices(vm);
        for (size_t i = 0; i < vm->n_sessions; i++)
                if (vm->sessions[i].fd < 0 && !vm->sessions[i].finished)
                        session_discard_unretrieved(m, vm, &vm->sessions[i]);
        for (size_t i = 0; i < vm->n_sessions; i++) {
                RegSession *s = &vm->sessions[i];
                const RegItem *bad;
                int r;
                if (s->fd < 0 || s->finished)
                        continue;
                /* Out of the store first: a restart must not find a finished session there. */
                fdstore_mirror_drop_session(m->fdstore, s->name);
                r = luo_session_finish(m->luo, s->fd);
                if (r == -EBUSY && (bad = session_unfinishable_item(s))) {
                        /* Waiting would keep the update restoring for good (no next prepare).
                         * Closing is the kernel's implicit FINISH: it fails the same way and
                         * the kernel keeps what it holds until the next live update. */
                        log_full(LOG_WARNING, r, vm->id, s->name, bad->pci,
                                 "FINISH refused and \"%s\" could not be retrieved (%s): the session cannot be finished, "
                                 "closing it; the kernel keeps its files until the next live update",
                                 bad->label, strerror(bad->retrieve_error));
                        s->finished = true;   /* closed with the session below */
                        continue;
                }
                if (r < 0) {
                        if (m->fdstore)
                                fdstore_mirror_sync(m->fdstore);   /* still open: back into the store */
                        return proto_error_set(err, PROTO_E_KERNEL, r, "FINISH %s: %s%s", s->name, strerror(-r),
                                               r == -EBUSY ? " (bind every VFIO device to iommufd first)" : "");
                }
                s->finished = true;
                /* debug: the "restored" line that follows says it for every session */
                log_full(LOG_DEBUG, 0, vm->id, s->name, NULL, "session finished");
        }
        /* The sessions left the store above; the copies of the items handed over since the
         * kexec go now, before their fds close (not a whole sync: that per VM was O(N²)). */
        fdstore_mirror_drop_vm_items(m->fdstore, vm);
        while (vm->n_sessions > 0)
                reg_vm_remove_session(vm, &vm->sessions[vm->n_sessions - 1]);
        vm->restored = true;
        vm->released = release;
        restore_record_vm(m, vm->id, release ? "t_released_us" : "t_restored_us");
        manager_progress(m, vm->id, release ? "released without its VMM" : "restored");
        /* No mirror write per VM: the incoming memfd is the record until the restore is
         * complete (restore_check_done() saves), and N fsyncs would dominate the restore. */
        restore_check_done(m);
        return 0;
}

int manager_restored(Manager *m, RegVm *vm, json_object **ret, ProtoError *err) {
        json_object *unclaimed;
        int r;

        *ret = json_object_new_object();
        if (!vm->incoming || vm->restored) {
                json_object_object_add(*ret, "finished", json_object_new_boolean(false));
                return 0;
        }
        unclaimed = json_object_new_array();
        for (size_t i = 0; i < vm->n_sessions; i++)
                for (size_t j = 0; j < vm->sessions[i].n_items; j++)
                        if (!vm->sessions[i].items[j].claimed)
                                json_object_array_add(unclaimed, json_object_new_string(vm->sessions[i].items[j].label));
        r = restore_finish_vm(m, vm, false, err);
        if (r < 0) {
                json_object_put(unclaimed);
                json_object_put(*ret);
                *ret = NULL;
                return r;
        }
        json_object_object_add(*ret, "finished", json_object_new_boolean(true));
        json_object_object_add(*ret, "unclaimed", unclaimed);
        return 0;
}

void restore_recall_restored(Manager *m) {
        json_object *t = m->reg ? m->reg->timeline : NULL, *v, *vms;
        const char *result;
        sd_id128_t boot;
        size_t n = 0;

        if (!t || !json_object_object_get_ex(t, "boot_id", &v) || !json_object_is_type(v, json_type_string) ||
            sd_id128_get_boot(&boot) < 0 || strcmp(json_object_get_string(v), SD_ID128_TO_STRING(boot)) != 0)
                return;   /* no update completed in this boot */
        result = json_object_object_get_ex(t, "result", &v) && json_object_is_type(v, json_type_string)
                 ? json_object_get_string(v) : "";
        if ((strcmp(result, "done") != 0 && strcmp(result, "partial") != 0) ||
            !json_object_object_get_ex(t, "vms", &vms) || !json_object_is_type(vms, json_type_object))
                return;
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                json_object *rec;

                if (json_object_object_get_ex(vms, vm->id, &rec) && json_object_is_type(rec, json_type_object) &&
                    json_object_object_get_ex(rec, "t_restored_us", NULL)) {
                        vm->restored = true;
                        n++;
                }
        }
        if (n > 0)
                log_info("%zu VM(s) were restored by the live update that completed earlier in this boot", n);
}

void restore_check_done(Manager *m) {
        _cleanup_(json_object_put_nullp) json_object *released = NULL;
        sd_id128_t boot;
        int r;

        if (!m->boot_incoming || m->state != UPDATE_RESTORING)
                return;
        for (size_t i = 0; i < m->reg->n_vms; i++)
                if (m->reg->vms[i]->incoming && !m->reg->vms[i]->restored)
                        return;
        m->state = UPDATE_FINISHING;
        released = json_object_new_array();
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                m->reg->vms[i]->incoming = false;
                if (m->reg->vms[i]->released)
                        json_object_array_add(released, json_object_new_string(m->reg->vms[i]->id));
        }
        if (m->reg->update) {
                /* "done" only when every VM came back; "partial" names those given up on. */
                json_object_object_add(m->reg->update, "state", json_object_new_string("idle"));
                json_object_object_add(m->reg->update, "result",
                                       json_object_new_string(json_object_array_length(released) > 0 ? "partial" : "done"));
                if (json_object_array_length(released) > 0)
                        json_object_object_add(m->reg->update, "released", json_object_get(released));
                json_object_object_add(m->reg->update, "t_end_us", json_object_new_uint64(now_realtime_us()));
                /* A daemon restarted later in this boot knows from it which VMs were restored. */
                if (sd_id128_get_boot(&boot) >= 0)
                        json_object_object_add(m->reg->update, "boot_id", json_object_new_string(SD_ID128_TO_STRING(boot)));
                json_object_put(m->reg->timeline);
                m->reg->timeline = m->reg->update;
                m->reg->update = NULL;
        }
        /*
         * The mirror must say "done" before the state session goes: a daemon that dies after
         * its FINISH finds no incoming state, so it believes the mirror, and a mirror still
         * describing the update would make it record the update abandoned and report every
         * restored item lost. (One fsync per update; a crash before this point finds the state
         * session and completes the restore again.)
         */
        (void) manager_save(m);
        if (m->state_session_fd >= 0) {
                fdstore_mirror_drop_session(m->fdstore, REG_STATE_SESSION);
                r = luo_session_finish(m->luo, m->state_session_fd);
                if (r < 0)
                        log_warning_errno(r, "FINISH of %s failed: %m", REG_STATE_SESSION);
                m->state_session_fd = safe_close(m->state_session_fd);
        }
        m->incoming_memfd = safe_close(m->incoming_memfd);
        if (luo_get_abi(m->luo) == LUO_ABI_V4) {
                r = luo_finish(m->luo);
                if (r < 0)
                        log_warning_errno(r, "LUO FINISH failed: %m");
                m->luo_finish_error = r < 0 ? r : 0;   /* prepare tries again (the kernel stays UPDATED) */
        }
        m->grace = sd_event_source_disable_unref(m->grace);
        m->state = UPDATE_IDLE;
        manager_progress_event(m, LU_MESSAGE_RESTORE_DONE, NULL, "restore complete");
        /* The restore's many small allocations are gone; give the pages back (the daemon idles for months). */
        (void) malloc_trim(0);
}
