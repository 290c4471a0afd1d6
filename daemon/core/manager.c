/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lu-vfiod core before the reboot: VMs and their items, custodian and delegated
 * sessions, and the update state machine prepare -> commit -> kexec (design §3), with
 * cancel and failed-reboot handling. See manager.h.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd-kind.h"
#include "kexec.h"
#include "pci-sysfs.h"
#include "vfio-dev.h"

#include "common/message-ids.h"
#include "core/manager-fdstore.h"
#include "core/manager.h"
#include "core/preflight.h"
#include "core/restore.h"
#include "system/kexec-systemd.h"
#include "system/log.h"

/* Room for the registry memfd beyond its size at prepare: the update record grows at commit. */
#define STATE_MEMFD_SLACK (256 * 1024)

int manager_new(sd_event *e, Config *config, const ManagerOptions *opts, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));

        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->config = config;
        m->state_session_fd = m->state_memfd = m->incoming_memfd = -EBADF;
        m->state_dir = strdup(opts->state_dir);
        m->luo_path = opts->luo_path ? strdup(opts->luo_path) : NULL;
        m->skip_irq_disable = opts->skip_irq_disable;
        m->t_start_us = now_realtime_us();
        if (!m->state_dir || (opts->luo_path && !m->luo_path))
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

static void fail_pending_calls(Manager *m, ProtoErrorCode code, int error, const char *message);
static void sync_wait(Manager *m);

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Every Call is completed exactly once, also at exit: a Commit in KexecMode=systemd is
         * still pending when systemd stops the daemon for the kexec (its front end is gone by
         * now, so nobody is answered; the completion frees it). */
        fail_pending_calls(m, PROTO_E_INTERNAL, ESHUTDOWN, "lu-vfiod is stopping");
        sync_wait(m);
        restore_stop(m);
        sd_event_source_disable_unref(m->deadline);
        sd_event_source_disable_unref(m->save_defer);
        while (m->subscribers) {
                Subscriber *s = m->subscribers;
                m->subscribers = s->next;
                free(s);
        }
        registry_free(m->reg);
        safe_close(m->state_session_fd);
        safe_close(m->state_memfd);
        safe_close(m->incoming_memfd);
        luo_free(m->luo);
        sd_event_unref(m->event);
        free(m->state_dir);
        free(m->luo_path);
        free(m);
        return NULL;
}

void manager_vm_hello_done(Manager *m, RegVm *vm) {
        if (vm->resume_owed && vm->conn) {
                json_object *f = json_object_new_object();
                json_object_object_add(f, "update", json_object_new_uint64(m->update_id));
                json_object_object_add(f, "reason", json_object_new_string("failed"));
                json_object_object_add(f, "message", json_object_new_string("the daemon restarted during the update"));
                (void) m->vmm_ops.send_event(vm->conn, "resume", f);
                vm->resume_owed = false;
        }
        if (vm->incoming && !vm->restored && vm->conn) {
                json_object *f = json_object_new_object();
                json_object_object_add(f, "update", json_object_new_uint64(m->update_id));
                (void) m->vmm_ops.send_event(vm->conn, "restore-ready", f);
        }
}

static void update_set(Manager *m, const char *key, json_object *v) {
        if (!m->reg->update) {
                json_object_put(v);
                return;
        }
        json_object_object_add(m->reg->update, key, v);
}

static void update_set_time(Manager *m, const char *key) {
        update_set(m, key, json_object_new_uint64(now_realtime_us()));
}

static void set_state(Manager *m, UpdateState s) {
        m->state = s;
        update_set(m, "state", json_object_new_string(update_state_to_string(s)));
}

int manager_startup(Manager *m) {
        _cleanup_(registry_freep) Registry *file_reg = NULL;
        int r;

        r = luo_open(m->luo_path, &m->luo);
        if (r < 0) {
                m->luo = NULL;
                m->luo_error = r;
                if (r == -EBUSY)
                        return log_error_errno(r, "LUO device is owned by another process");
                log_event(LOG_WARNING, LU_MESSAGE_NO_LUO, r, NULL, NULL, NULL,
                          "No usable Live Update Orchestrator (%m): preservation is unavailable");
        } else
                log_info("LUO ABI: %s", luo_abi_to_string(luo_get_abi(m->luo)));

        if (m->luo) {
                r = restore_start(m);   /* takes the registry from the incoming memfd if there is one */
                if (r < 0)
                        return r;
        }
        if (!m->reg) {
                /* Read only now: after a live update the memfd's copy is the one used, and parsing
                 * the mirror as well was 20% of the restore path's instructions (performance.md). */
                r = registry_load_file(m->state_dir, &file_reg);
                if (r < 0 && r != -ENOENT)
                        log_warning_errno(r, "Ignoring unreadable registry mirror in %s: %m", m->state_dir);
                /* No live update came in: any sessions the mirror names died with their fds. */
                m->reg = file_reg ? TAKE_PTR(file_reg) : registry_new();
                if (!m->reg)
                        return -ENOMEM;
                for (size_t i = 0; i < m->reg->n_vms; i++) {
                        RegVm *vm = m->reg->vms[i];
                        for (size_t j = 0; j < vm->n_sessions; j++) {
                                /* Kept alive in the service manager's fd store: nothing was lost. */
                                if (m->stored_fds && manager_fdstore_adopt_session(m, m->stored_fds, vm, &vm->sessions[j]))
                                        continue;
                                for (size_t k = 0; k < vm->sessions[j].n_items; k++) {
                                        vm->sessions[j].items[k].lost = true;
                                        /* Without LUO we cannot tell: after a kexec (broken incoming
                                         * state, EIO) the sessions may still wait in the kernel. */
                                        if (m->luo)
                                                log_event(LOG_WARNING, LU_MESSAGE_ITEM_LOST, 0, vm->id, vm->sessions[j].name, NULL,
                                                          "Item %s was not carried over (daemon restarted): must be preserved again",
                                                          vm->sessions[j].items[k].label);
                                        else
                                                log_event(LOG_WARNING, LU_MESSAGE_ITEM_LOST, m->luo_error, vm->id,
                                                          vm->sessions[j].name, NULL,
                                                          "Item %s is unavailable without LUO (%m): if a live update came in, "
                                                          "restart lu-vfiod once /dev/liveupdate opens to restore it",
                                                          vm->sessions[j].items[k].label);
                                }
                        }
                }
                if (m->stored_fds)
                        manager_fdstore_drop_rest(m->stored_fds);
                restore_recall_restored(m);
                if (m->reg->update) {
                        json_object *id = json_object_object_get(m->reg->update, "id");

                        /* An update in flight when the daemon went away is over. Its VMMs may
                         * have been told prepare or freeze (and be frozen) by the dead daemon:
                         * each is told resume when it claims its VM again. */
                        m->update_id = id ? (uint64_t) json_object_get_int64(id) : 0;
                        for (size_t i = 0; i < m->reg->n_vms; i++)
                                m->reg->vms[i]->resume_owed = true;
                        json_object_object_add(m->reg->update, "result", json_object_new_string("abandoned"));
                        /* Without LUO we cannot tell whether this update came in (the kernel's
                         * state is what failed to open): a daemon restarted once the device opens
                         * may still restore it from the mirror (registry_from_mirror()). */
                        if (!m->luo)
                                json_object_object_add(m->reg->update, "without_luo", json_object_new_boolean(true));
                        json_object_put(m->reg->timeline);
                        m->reg->timeline = m->reg->update;
                        m->reg->update = NULL;
                        (void) kexec_unload_kernel();
                        /* v4: the kernel stays PREPARED after its owner died; nothing can be preserved until CANCEL. */
                        if (m->luo && luo_get_abi(m->luo) == LUO_ABI_V4) {
                                int k = luo_cancel(m->luo);
                                if (k < 0)
                                        log_debug("LUO CANCEL of the abandoned update: %s", strerror(-k));
                        }
                }
                m->state = UPDATE_IDLE;
        }
        if (m->boot_incoming) {
                /* Stored fds the restore did not adopt (a session finished before a restart) end now. */
                if (m->stored_fds)
                        manager_fdstore_drop_rest(m->stored_fds);
                /* The incoming memfd is the record until the restore completes, which saves. */
                return 0;
        }
        return manager_save(m);
}

/* ---------------------------------------------------------------- VMM side */

/* Every change of a VM's ack_pending goes through here, so that the count is right and
 * the check after each acknowledgement is O(1), not a walk over every VM. */
static void vm_set_ack_pending(Manager *m, RegVm *vm, bool pending) {
        if (vm->ack_pending == pending)
                return;
        vm->ack_pending = pending;
        if (pending)
                m->n_acks_pending++;
        else {
                assert(m->n_acks_pending > 0);
                m->n_acks_pending--;
        }
}

int manager_vm_claim(Manager *m, void *conn, const char *vm_id, uid_t uid, gid_t gid, const char *client,
                     RegVm **ret, ProtoError *err) {
        RegVm *vm;
        int r;

        if (!proto_vm_id_is_valid(vm_id))
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL,
                                       "invalid VM id (1-36 characters of A-Z a-z 0-9 . _ -)");
        if (!config_may_claim(m->config, uid, gid, vm_id))
                return proto_error_set(err, PROTO_E_PERMISSION_DENIED, EPERM,
                                       "uid %u may not claim VM %s (VMClaim rules)", (unsigned) uid, vm_id);
        vm = registry_find_vm(m->reg, vm_id);
        if (vm) {
                if (vm->uid != uid && uid != 0)
                        return proto_error_set(err, PROTO_E_PERMISSION_DENIED, EPERM,
                                               "VM %s belongs to uid %u", vm_id, vm->uid);
                if (vm->conn)
                        return proto_error_set(err, PROTO_E_VM_BUSY, EBUSY,
                                               "VM %s is held by another connection", vm_id);
        } else {
                if (m->reg->n_vms >= m->config->max_vms)
                        return proto_error_set(err, PROTO_E_LIMIT, ENOSPC, "too many VMs (MaxVMs=%u)", m->config->max_vms);
                if (m->state == UPDATE_FREEZING || m->state == UPDATE_FROZEN)
                        return proto_error_set(err, PROTO_E_STATE, EBUSY, "update is %s: no new VMs",
                                               update_state_to_string(m->state));
                r = registry_add_vm(m->reg, vm_id, uid, &vm);
                if (r < 0)
                        return proto_error_set(err, PROTO_E_INTERNAL, r, "cannot add VM");
                manager_mark_dirty(m);
        }
        m->n_connected += !vm->conn;
        vm->conn = conn;
        vm_set_ack_pending(m, vm, false);
        vm->ack_seq = 0;
        *ret = vm;
        /* One line per connection, the client with it: at MaxVMs every line per VM counts
         * against journald's rate limit (docs/operations.md, "Log volume"). */
        if (client)
                log_vm(LOG_INFO, vm->id, "VMM connected (uid %u, client %s)", (unsigned) uid, client);
        else
                log_vm(LOG_INFO, vm->id, "VMM connected (uid %u)", (unsigned) uid);
        return 0;
}

static void check_acks(Manager *m);

void manager_vm_disconnect(Manager *m, RegVm *vm) {
        m->n_connected -= !!vm->conn;
        vm->conn = NULL;
        log_vm(LOG_INFO, vm->id, "VMM disconnected; everything it handed over stays preserved");
        if (vm->ack_pending) {
                vm_set_ack_pending(m, vm, false);
                manager_progress(m, vm->id, "VMM went away without acknowledging");
                check_acks(m);
        }
}

static const char *item_state(const RegItem *it) {
        if (it->lost)
                return "lost";
        if (it->retrieve_error)
                return "failed";
        if (it->incoming)
                return it->claimed ? "reclaimed" : "reclaimable";
        return "preserved";
}

static json_object *item_json(const RegSession *s, const RegItem *it, bool with_state) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "label", json_object_new_string(it->label));
        json_object_object_add(o, "kind", json_object_new_string(reg_kind_to_string(it->kind)));
        json_object_object_add(o, "session", json_object_new_string(s->name));
        json_object_object_add(o, "token", json_object_new_uint64(it->token));
        json_object_object_add(o, "pci", it->pci[0] ? json_object_new_string(it->pci) : NULL);
        if (with_state) {
                json_object_object_add(o, "state", json_object_new_string(item_state(it)));
                if (it->retrieve_error)
                        json_object_object_add(o, "errno", json_object_new_int(it->retrieve_error));
        }
        return o;
}

json_object *manager_vm_items_json(Manager *m, const RegVm *vm) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < vm->n_sessions; i++)
                for (size_t j = 0; j < vm->sessions[i].n_items; j++)
                        json_object_array_add(a, item_json(&vm->sessions[i], &vm->sessions[i].items[j], true));
        return a;
}

static int need_luo(Manager *m, ProtoError *err) {
        if (m->luo)
                return 0;
        return proto_error_set(err, PROTO_E_KERNEL, m->luo_error ? m->luo_error : -ENOENT,
                               "no Live Update Orchestrator: %s", strerror(m->luo_error ? -m->luo_error : ENOENT));
}

static int session_open(Manager *m, RegSession *s, ProtoError *err) {
        int r;

        if (s->fd >= 0)
                return 0;
        r = luo_session_create(m->luo, s->name, &s->fd);
        if (r < 0)
                return proto_error_set(err, PROTO_E_KERNEL, r, "CREATE_SESSION %s: %s", s->name, strerror(-r));
        log_full(LOG_DEBUG, 0, NULL, s->name, NULL, "session created");
        return 0;
}

/*
 * Open a session just added to @vm. EEXIST: a session of that name lives on without us, held
 * by a VMM that got it (delegated mode) from a predecessor of ours whose record of it we do not
 * have (restarted during a restore, the registry is the one of the kexec); the name is taken,
 * so take the VM's next one instead of failing the VM's every request for good.
 */
static int session_open_new(Manager *m, RegVm *vm, RegSession *s, ProtoError *err) {
        int r;

        for (unsigned tries = 0;; tries++) {
                r = session_open(m, s, err);
                if (r != -EEXIST || tries >= 8 || vm->next_session == UINT32_MAX)
                        return r;
                log_full(LOG_NOTICE, 0, vm->id, s->name, NULL, "session name taken by a session we do not hold: using the next");
                (void) snprintf(s->name, sizeof(s->name), "luvf:%s:%u", vm->id, vm->next_session++);
        }
}

/* Non-delegated session with room left, creating one if needed. */
static RegSession *vm_current_session(Manager *m, RegVm *vm, ProtoError *err) {
        RegSession *s = NULL;

        for (size_t i = vm->n_sessions; i > 0; i--)
                if (!vm->sessions[i - 1].delegated) {
                        s = &vm->sessions[i - 1];
                        break;
                }
        /* A 7.1 kernel takes 128 files per session: start the next one before it refuses. */
        unsigned max = luo_session_files_max(m->luo);
        if (!s || (max > 0 && s->n_items >= max)) {
                if (strlen(vm->id) + 16 > luo_session_name_max(m->luo) + 1 && luo_session_name_max(m->luo) < 63) {
                        proto_error_set(err, PROTO_E_LIMIT, ENAMETOOLONG, "session name too long for this kernel");
                        return NULL;
                }
                s = reg_vm_add_session(vm, false);
                if (!s) {
                        proto_error_set(err, errno == ENOSPC ? PROTO_E_LIMIT : PROTO_E_INTERNAL, errno,
                                        "VM %s: %s", vm->id, errno == ENOSPC ? "session numbers used up" : "out of memory");
                        return NULL;
                }
        }
        if (session_open_new(m, vm, s, err) < 0) {
                if (s->n_items == 0)
                        reg_vm_remove_session(vm, s);
                return NULL;
        }
        return s;
}

/*
 * What the VMM handed over, refused before the kernel is touched where the daemon can
 * tell that the kernel would refuse it (with a bare ENOENT). docs/protocol.md §5.2 lists
 * the same rules for VMM authors.
 */
static int kind_from_fd(Manager *m, int fd, RegKind *ret, char *pci, ProtoError *err) {
        FdInfo fi;
        int r;

        r = fd_classify(fd, &fi);
        if (r < 0)
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, r, "cannot classify fd: %s", strerror(-r));
        switch (fi.kind) {
        case FD_KIND_MEMFD:
                *ret = REG_KIND_MEMFD;
                break;
        case FD_KIND_VFIO_CDEV:
                *ret = REG_KIND_VFIO;
                break;
        case FD_KIND_IOMMUFD:
                /* Neither kernel ABI has an iommufd LUO handler (spec §1.9, §4): PRESERVE_FD is ENOENT. */
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, EINVAL,
                                       "fd is of kind \"iommufd\", which no supported kernel preserves: keep it, and after "
                                       "the update bind the reclaimed device to a new iommufd");
        case FD_KIND_O_PATH:
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, EINVAL,
                                       "fd is of kind \"o-path\" (opened with O_PATH): hand over the open file itself; "
                                       "accepted kinds are memfd and vfio-cdev");
        default:
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, EINVAL,
                                       "fd is of kind \"%s\"; accepted kinds are memfd and vfio-cdev",
                                       fd_kind_to_string(fi.kind));
        }
        pci[0] = 0;
        if (fi.has_pci)
                (void) pci_addr_to_string(&fi.pci, pci);
        else if (*ret == REG_KIND_VFIO)
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, ENODEV,
                                       "cannot find the PCI address of this VFIO device");
        /* The PCI preservation series cannot preserve a VF (spec §8): say so before the kernel does. */
        if (*ret == REG_KIND_VFIO && pci_is_virtfn("/sys", pci) == 1)
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, EOPNOTSUPP,
                                       "%s is an SR-IOV virtual function: the kernel's PCI live update cannot "
                                       "preserve VFs; assign the physical function, or keep this device out of "
                                       "the live update", pci);
        /* The upstream VFIO handler preserves only a device bound to an iommufd (D2 can_preserve);
         * the v4-era RFC takes any cdev. */
        if (*ret == REG_KIND_VFIO && fi.vfio_unbound && m->luo && luo_get_abi(m->luo) == LUO_ABI_UPSTREAM)
                return proto_error_set(err, PROTO_E_WRONG_FD_KIND, EINVAL,
                                       "fd is of kind \"vfio-cdev\" but %s (%s) is not bound to an iommufd: "
                                       "VFIO_DEVICE_BIND_IOMMUFD it before preserve", fi.vfio_name, pci);
        return 0;
}

int manager_preserve(Manager *m, RegVm *vm, const char *label, int fd_in, json_object **ret, ProtoError *err) {
        _cleanup_close_ int fd = fd_in;
        char pci[PCI_ADDR_STRING_MAX];
        RegSession *s, *ls = NULL;
        RegItem *it, *lost;
        RegKind kind;
        int r;

        /* Classify before anything else, so a wrong fd gets a precise answer. */
        r = kind_from_fd(m, fd, &kind, pci, err);
        if (r < 0)
                return r;
        if (!proto_label_is_valid(label))
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL,
                                       "invalid label (1-64 characters of A-Z a-z 0-9 . _ : -)");
        r = need_luo(m, err);
        if (r < 0)
                return r;
        if (!(m->state == UPDATE_IDLE || m->state == UPDATE_RESTORING || m->state == UPDATE_FINISHING ||
              ((m->state == UPDATE_PREPARING || m->state == UPDATE_PREPARED) && luo_get_abi(m->luo) == LUO_ABI_UPSTREAM)))
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "cannot preserve while the update is %s",
                                       update_state_to_string(m->state));
        if (vm->incoming && !vm->restored)
                return proto_error_set(err, PROTO_E_STATE, EBUSY,
                                       "VM still has incoming items: reclaim them and report restored first");
        lost = reg_vm_find_item(vm, label, &ls);
        if (lost && !lost->lost)
                return proto_error_set(err, PROTO_E_LABEL_EXISTS, EEXIST, "label \"%s\" already used in VM %s", label, vm->id);
        if (!lost && reg_vm_count_items(vm) >= m->config->max_items_per_vm)
                return proto_error_set(err, PROTO_E_LIMIT, ENOSPC, "VM has %u items (MaxItemsPerVM)", m->config->max_items_per_vm);
        for (size_t i = 0; i < vm->n_sessions; i++)
                for (size_t j = 0; j < vm->sessions[i].n_items; j++) {
                        RegItem *o = &vm->sessions[i].items[j];
                        if (!o->lost && o->kind > kind)
                                return proto_error_set(err, PROTO_E_ORDER, EINVAL,
                                                       "a %s cannot follow a %s (\"%s\") in VM %s: order is memfd, iommufd, vfio",
                                                       reg_kind_to_string(kind), reg_kind_to_string(o->kind), o->label, vm->id);
                }
        if (lost)
                reg_session_remove_item(ls, lost);

        s = vm_current_session(m, vm, err);
        if (!s)
                return -err->error;
        it = reg_session_add_item(s, label, kind, pci[0] ? pci : NULL);
        if (!it)
                return proto_error_set(err, PROTO_E_INTERNAL, ENOMEM, "out of memory");
        r = luo_session_preserve_fd(m->luo, s->fd, fd, it->token);
        if (r == -ENOSPC) {
                /* The kernel's per-session limit may be lower than we assumed: start a new session. */
                s->next_token--;
                s->n_items--;
                s = reg_vm_add_session(vm, false);
                if (!s || session_open_new(m, vm, s, err) < 0) {
                        if (s)
                                reg_vm_remove_session(vm, s);
                        return proto_error_set(err, PROTO_E_KERNEL, ENOSPC, "session full and no new session");
                }
                it = reg_session_add_item(s, label, kind, pci[0] ? pci : NULL);
                if (!it)
                        return proto_error_set(err, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                r = luo_session_preserve_fd(m->luo, s->fd, fd, it->token);
        }
        if (r < 0) {
                /* The kernel holds nothing under this token: it is free again, so a
                 * refusal does not leave a gap in the session's tokens. */
                s->n_items--;
                s->next_token--;
                r = proto_error_set(err, PROTO_E_KERNEL, r, "PRESERVE_FD of \"%s\" into %s: %s%s", label, s->name,
                                    strerror(-r), r == -EBUSY ? " (file already preserved elsewhere?)" : "");
                /* A session left empty would cross the kexec and make the VM "incoming" with
                 * nothing to reclaim, holding up the restore: close it (the kernel drops it). */
                if (s->n_items == 0)
                        reg_vm_remove_session(vm, s);
                return r;
        }
        it->fd = TAKE_FD(fd);
        log_full(LOG_INFO, 0, vm->id, s->name, it->pci[0] ? it->pci : NULL, "preserved %s \"%s\" as token %llu",
                 reg_kind_to_string(kind), label, (unsigned long long) it->token);
        manager_mark_dirty(m);
        *ret = item_json(s, it, false);
        return 0;
}

/*
 * Upstream has no UNPRESERVE: rebuild the session from the fds we still hold. The old
 * session must be gone before its name and files can be used again, and a copy in the
 * service manager's fd store keeps it alive until the manager has processed our
 * FDSTOREREMOVE (asynchronous): retry CREATE_SESSION while the name still exists.
 */
#define REBUILD_WAIT_USEC   (2 * 1000 * 1000)
#define REBUILD_RETRY_USEC  (2 * 1000)
static int session_rebuild(Manager *m, RegSession *s, ProtoError *err) {
        int r;

        fdstore_mirror_drop_session(m->fdstore, s->name);
        s->fd = safe_close(s->fd);
        for (unsigned waited = 0;; waited += REBUILD_RETRY_USEC) {
                r = session_open(m, s, err);
                if (r != -EEXIST || waited >= REBUILD_WAIT_USEC)
                        break;
                (void) usleep(REBUILD_RETRY_USEC);
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_items; i++) {
                RegItem *it = &s->items[i];
                if (it->fd < 0) {
                        it->lost = true;
                        continue;
                }
                r = luo_session_preserve_fd(m->luo, s->fd, it->fd, it->token);
                if (r < 0) {
                        it->lost = true;
                        log_full(LOG_ERR, r, NULL, s->name, NULL, "re-preserving \"%s\" failed: %m", it->label);
                }
        }
        return 0;
}

/*
 * Whether @vm may drop what it handed over (unpreserve, forget): when no update is on, or
 * during the restore for a VM that did not come across it or has reported restored. Not
 * while a later update of the same boot is on: boot_incoming stays set for the whole boot,
 * and testing it let VMs unpreserve and forget during every update after the first.
 */
static bool vm_may_drop(Manager *m, RegVm *vm) {
        return m->state == UPDATE_IDLE ||
               ((m->state == UPDATE_RESTORING || m->state == UPDATE_FINISHING) && (!vm->incoming || vm->restored));
}

int manager_unpreserve(Manager *m, RegVm *vm, const char *label, ProtoError *err) {
        RegSession *s;
        RegItem *it;
        int r;

        if (!vm_may_drop(m, vm))
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "cannot unpreserve while the update is %s",
                                       update_state_to_string(m->state));
        if (!proto_label_is_valid(label))
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "invalid label");
        it = reg_vm_find_item(vm, label, &s);
        if (!it)
                return proto_error_set(err, PROTO_E_LABEL_UNKNOWN, ENOENT, "no item \"%s\" in VM %s", label, vm->id);
        if (it->incoming)
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "item \"%s\" came across the update: reclaim it", label);
        if (it->lost || s->fd < 0) {
                reg_session_remove_item(s, it);
        } else {
                r = luo_session_unpreserve_fd(m->luo, s->fd, it->token);
                if (r == -EOPNOTSUPP) {
                        reg_session_remove_item(s, it);
                        r = session_rebuild(m, s, err);
                        if (r < 0)
                                return r;
                } else if (r < 0)
                        return proto_error_set(err, PROTO_E_KERNEL, r, "UNPRESERVE_FD: %s", strerror(-r));
                else
                        reg_session_remove_item(s, it);
        }
        if (s->n_items == 0 && !s->delegated)
                reg_vm_remove_session(vm, s);
        log_vm(LOG_INFO, vm->id, "unpreserved \"%s\"", label);
        manager_mark_dirty(m);
        /* released means released: the store's copies too, before the VMM hears it */
        fdstore_mirror_flush(m->fdstore);
        return 0;
}

int manager_forget(Manager *m, RegVm *vm, ProtoError *err) {
        if (!vm_may_drop(m, vm))
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "cannot forget a VM while the update is %s",
                                       update_state_to_string(m->state));
        if (vm->incoming && !vm->restored)
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "VM has incoming items; release it via the operator");
        log_vm(LOG_INFO, vm->id, "forgotten: every item unpreserved");
        m->n_connected -= !!vm->conn;
        registry_remove_vm(m->reg, vm);     /* closing the session fds unpreserves everything */
        manager_mark_dirty(m);
        /* The service manager's copies of the VM's session and item fds keep the files open (a
         * device stays bound) until it has handled our FDSTOREREMOVE, asynchronously: wait for it
         * before the reply, so that the VMM can rely on its devices being free (found by the soak,
         * docs/reliability.md §7.3). */
        fdstore_mirror_flush(m->fdstore);
        return 0;
}

int manager_session_get(Manager *m, RegVm *vm, int *ret_fd, json_object **ret, ProtoError *err) {
        RegSession *s;
        int r, fd;

        r = need_luo(m, err);
        if (r < 0)
                return r;
        s = reg_vm_delegated_session(vm);
        if (!s) {
                if (m->state != UPDATE_IDLE && !(m->state == UPDATE_RESTORING || m->state == UPDATE_FINISHING))
                        return proto_error_set(err, PROTO_E_STATE, EBUSY, "cannot create a session while the update is %s",
                                               update_state_to_string(m->state));
                s = reg_vm_add_session(vm, true);
                if (!s)
                        return proto_error_set(err, errno == ENOSPC ? PROTO_E_LIMIT : PROTO_E_INTERNAL, errno,
                                               "VM %s: %s", vm->id, errno == ENOSPC ? "session numbers used up" : "out of memory");
                r = session_open_new(m, vm, s, err);
                if (r < 0) {
                        reg_vm_remove_session(vm, s);
                        return r;
                }
                manager_mark_dirty(m);
        } else if (s->fd < 0) {
                if (s->error)
                        return proto_error_set(err, PROTO_E_KERNEL, s->error, "session %s could not be retrieved: %s",
                                               s->name, strerror(s->error));
                /* Lost with a daemon restart: a fresh one. Its VMM may still hold the old one,
                 * which keeps the name taken (EEXIST): then under the VM's next name, and the VMM
                 * sees in the reply that the session it preserved into is not this one. */
                r = session_open_new(m, vm, s, err);
                if (r < 0)
                        return r;
                manager_mark_dirty(m);
        }
        fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return proto_error_set(err, PROTO_E_INTERNAL, errno, "dup: %m");
        *ret_fd = fd;
        *ret = json_object_new_object();
        json_object_object_add(*ret, "session", json_object_new_string(s->name));
        json_object_object_add(*ret, "incoming", json_object_new_boolean(vm->incoming));
        json_object_object_add(*ret, "abi", json_object_new_string(luo_abi_to_string(luo_get_abi(m->luo))));
        log_full(LOG_INFO, 0, vm->id, s->name, NULL, "delegated session handed to the VMM");
        return 0;
}

/* ---------------------------------------------------------------- update state machine */

/* One event to every connected VM: its text is made once, each connection adds its own seq. */
static void send_all(Manager *m, const char *event, uint64_t deadline_ms, bool want_ack, const char *reason, const char *message) {
        _cleanup_free_ char *head = NULL;
        size_t len = 0;
        json_object *f;

        f = json_object_new_object();
        json_object_object_add(f, "update", json_object_new_uint64(m->update_id));
        if (deadline_ms)
                json_object_object_add(f, "deadline_ms", json_object_new_uint64(deadline_ms));
        if (reason)
                json_object_object_add(f, "reason", json_object_new_string(reason));
        if (message)
                json_object_object_add(f, "message", json_object_new_string(message));
        head = proto_event_head(event, f, &len);
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                int64_t seq;

                if (!vm->conn)
                        continue;
                /* no text (out of memory): as for a failed send, the VM's acknowledgement is not awaited */
                seq = head ? m->vmm_ops.send_event_head(vm->conn, head, len) : -ENOMEM;
                if (want_ack) {
                        vm_set_ack_pending(m, vm, seq > 0);
                        vm->ack_seq = seq > 0 ? (uint64_t) seq : 0;
                }
        }
}

static void *sync_main(void *userdata) {
        sync();
        return NULL;
}

/* Wait for the sync() of the registry mirror written at commit, if one is running. */
static void sync_wait(Manager *m) {
        if (!m->sync_running)
                return;
        (void) pthread_join(m->sync_thread, NULL);
        m->sync_running = false;
}

/*
 * At commit, while the VMMs work on their freeze events: from now until the reboot nothing in
 * the registry changes but the update record's last entries (acknowledgement times, t_frozen_us,
 * t_reboot_us), which do_kexec() appends to the memfd as a small final record. So the registry
 * (memfd and mirror, one serialisation) is written now and the mirror synced by a thread; that
 * was 4-5 ms of the freeze path at 256 VMs, most of it the sync() (docs/performance.md). If this
 * fails, do_kexec() writes everything as before.
 */
static void freeze_write_early(Manager *m) {
        size_t n;
        int r;

        m->early_written = false;
        if (m->state_memfd < 0)
                return;
        r = registry_save_both(m->reg, m->state_dir, m->state_memfd, &n);
        if (r < 0) {
                log_warning_errno(r, "Cannot write the registry at commit, writing it at the reboot: %m");
                return;
        }
        m->early_written = true;
        m->early_len = n;
        m->early_generation = m->reg->generation;
        r = pthread_create(&m->sync_thread, NULL, sync_main, NULL);
        if (r != 0)
                log_debug("Cannot start a thread for sync(): %s; syncing at the reboot", strerror(r));
        m->sync_running = r == 0;
}

static void deadline_stop(Manager *m) {
        m->deadline = sd_event_source_disable_unref(m->deadline);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata);

static int deadline_start(Manager *m, uint64_t ms) {
        deadline_stop(m);
        return sd_event_add_time_relative(m->event, &m->deadline, CLOCK_MONOTONIC, ms * 1000, 1000, on_deadline, m);
}

static void clear_acks(Manager *m) {
        for (size_t i = 0; i < m->reg->n_vms; i++)
                vm_set_ack_pending(m, m->reg->vms[i], false);
}

/* Back to idle after cancel or failure: VMMs resume, the kernel image goes, sessions stay. */
static void abandon(Manager *m, const char *reason, const char *message) {
        int r;

        deadline_stop(m);
        clear_acks(m);
        sync_wait(m);
        m->early_written = false;
        r = kexec_unload_kernel();
        if (r < 0)
                log_warning_errno(r, "Unloading the kexec image failed: %m");
        if (m->luo && luo_get_abi(m->luo) == LUO_ABI_V4) {
                r = luo_cancel(m->luo);
                if (r < 0)
                        log_warning_errno(r, "LUO CANCEL failed: %m");
        }
        /* The state memfd is recreated by the next prepare; closing the session unpreserves it
         * (KexecMode=systemd may have put a copy in the fd store: drop that too). */
        if (m->state_session_fd >= 0)
                fdstore_mirror_drop_session(m->fdstore, REG_STATE_SESSION);
        m->state_session_fd = safe_close(m->state_session_fd);
        m->state_memfd = safe_close(m->state_memfd);
        send_all(m, "resume", 0, false, reason, message);
        update_set(m, "result", json_object_new_string(reason));
        update_set(m, "message", json_object_new_string(message));
        update_set_time(m, "t_end_us");
        m->state = UPDATE_IDLE;
        if (m->reg->update) {
                json_object_put(m->reg->timeline);
                m->reg->timeline = m->reg->update;
                m->reg->update = NULL;
        }
        manager_progress_event(m, strcmp(reason, "cancelled") == 0 ? LU_MESSAGE_UPDATE_CANCELLED : LU_MESSAGE_UPDATE_FAILED,
                               NULL, "update %s: %s", reason, message);
        (void) manager_save(m);
}

static void fail_pending_calls(Manager *m, ProtoErrorCode code, int error, const char *message) {
        if (m->prepare_call) {
                call_fail(m->prepare_call, code, error, "%s", message);
                m->prepare_call = NULL;
        }
        if (m->commit_call) {
                call_fail(m->commit_call, code, error, "%s", message);
                m->commit_call = NULL;
        }
}

static void fail_update(Manager *m, ProtoErrorCode code, int error, const char *fmt, ...) _printf_(4, 5);
static void fail_update(Manager *m, ProtoErrorCode code, int error, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        utf8_truncate(msg);
        log_error("Update failed: %s", msg);
        abandon(m, "failed", msg);
        fail_pending_calls(m, code, error, msg);
}

static int state_session_write(Manager *m, ProtoError *err) {
        int r;

        if (m->state_memfd >= 0) {
                r = registry_rewrite_memfd(m->reg, m->state_memfd);
                if (r < 0)
                        return proto_error_set(err, PROTO_E_INTERNAL, r, "cannot write the registry memfd: %s", strerror(-r));
                return 0;
        }
        m->state_session_fd = safe_close(m->state_session_fd);
        /* A copy of an abandoned update's state session may still be closing in the fd store. */
        for (unsigned waited = 0;; waited += REBUILD_RETRY_USEC) {
                r = luo_session_create(m->luo, REG_STATE_SESSION, &m->state_session_fd);
                if (r != -EEXIST || waited >= REBUILD_WAIT_USEC)
                        break;
                (void) usleep(REBUILD_RETRY_USEC);
        }
        if (r < 0)
                return proto_error_set(err, PROTO_E_KERNEL, r, "CREATE_SESSION %s: %s", REG_STATE_SESSION, strerror(-r));
        {
                _cleanup_free_ char *buf = NULL;
                size_t n;
                r = registry_serialize(m->reg, &buf, &n);
                if (r < 0)
                        return proto_error_set(err, PROTO_E_INTERNAL, r, "cannot serialise the registry");
                r = registry_write_memfd(m->reg, n * 2 + STATE_MEMFD_SLACK, &m->state_memfd);
        }
        if (r < 0)
                return proto_error_set(err, PROTO_E_INTERNAL, r, "cannot create the registry memfd: %s", strerror(-r));
        r = luo_session_preserve_fd(m->luo, m->state_session_fd, m->state_memfd, REG_STATE_TOKEN);
        if (r < 0)
                return proto_error_set(err, PROTO_E_KERNEL, r, "PRESERVE_FD of the registry memfd: %s", strerror(-r));
        return 0;
}

/* The pre-flight of a prepare (preflight.c): the first check that refuses is the answer. */
static int preflight(Manager *m, const char *kernel, const char *initrd, const char *cmdline, bool force, ProtoError *err) {
        Preflight p;
        const PreflightCheck *c;

        preflight_run(m, kernel, initrd, cmdline, false, force, &p);
        c = p.refused_by;
        if (!c) {
                /* Logged only when the prepare goes ahead on it. */
                for (size_t i = 0; i < p.n; i++)
                        if (p.checks[i].forced)
                                log_warning("Prepare of %s forced past the failed pre-flight check %s: %s",
                                            kernel, p.checks[i].name, p.checks[i].detail);
                return 0;
        }
        /* The older checks keep their messages; a next-kernel check names itself and the way past it. */
        if (c->next_kernel && strcmp(c->name, "next-cmdline") != 0)
                return proto_error_set(err, PROTO_E_PRECONDITION, c->error, "pre-flight %s %s: %s (force skips the next-kernel checks)",
                                       c->name, c->status == PREFLIGHT_FAIL ? "failed" : "not checkable (NextKernelStrict=yes)",
                                       c->detail);
        return proto_error_set(err, PROTO_E_PRECONDITION, c->error, "%s", c->detail);
}

json_object *manager_check_prepare(Manager *m, const char *kernel, const char *initrd, const char *cmdline_in, bool force) {
        _cleanup_free_ char *cmdline = NULL;
        Preflight p;
        json_object *o;

        if (cmdline_in)
                cmdline = strdup(cmdline_in);
        else if (kernel_cmdline_read(&cmdline) < 0)
                cmdline = strdup("");
        if (!cmdline)
                return NULL;
        preflight_run(m, kernel, initrd, cmdline, true, force, &p);
        o = preflight_to_json(&p);
        if (o)
                json_object_object_add(o, "cmdline", json_object_new_string(cmdline));
        return o;
}

static void prepared_done(Manager *m) {
        json_object *res;

        deadline_stop(m);
        set_state(m, UPDATE_PREPARED);
        update_set_time(m, "t_prepared_us");
        manager_progress_event(m, LU_MESSAGE_PREPARED, NULL, "every VMM acknowledged prepare");
        (void) manager_save(m);
        if (m->prepare_call) {
                res = json_object_new_object();
                json_object_object_add(res, "state", json_object_new_string("prepared"));
                json_object_object_add(res, "update", json_object_new_uint64(m->update_id));
                call_complete(m->prepare_call, res, -EBADF, NULL);
                m->prepare_call = NULL;
        }
}

static void do_kexec(Manager *m);

static bool acks_outstanding(Manager *m) {
        return m->n_acks_pending > 0;
}

static void check_acks(Manager *m) {
        if (acks_outstanding(m))
                return;
        if (m->state == UPDATE_PREPARING)
                prepared_done(m);
        else if (m->state == UPDATE_FREEZING) {
                deadline_stop(m);
                do_kexec(m);
        }
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char late[200] = "";
        size_t n = 0;

        m->deadline = sd_event_source_disable_unref(m->deadline);
        for (size_t i = 0; i < m->reg->n_vms; i++)
                if (m->reg->vms[i]->ack_pending)
                        n += snprintf(late + MIN(n, sizeof(late) - 1), sizeof(late) - MIN(n, sizeof(late) - 1),
                                      "%s%s", n ? " " : "", m->reg->vms[i]->id);
        if (m->state == UPDATE_PREPARING)
                fail_update(m, PROTO_E_TIMEOUT, ETIMEDOUT, "VMMs did not acknowledge prepare in time: %s", late);
        else if (m->state == UPDATE_FREEZING) {
                if (m->commit_force || m->config->freeze_policy == FREEZE_POLICY_FORCE) {
                        manager_progress(m, NULL, "freeze deadline passed, forcing: %s", late);
                        clear_acks(m);
                        do_kexec(m);
                } else
                        fail_update(m, PROTO_E_TIMEOUT, ETIMEDOUT, "VMMs did not acknowledge freeze in time: %s", late);
        }
        return 0;
}

int manager_ack_check(Manager *m, RegVm *vm, uint64_t seq, ProtoError *err) {
        if (!vm->ack_pending || vm->ack_seq != seq)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "event %llu is not awaiting an acknowledgement",
                                       (unsigned long long) seq);
        return 0;
}

int manager_ack(Manager *m, RegVm *vm, uint64_t seq, bool ok, const char *message, ProtoError *err) {
        int r = manager_ack_check(m, vm, seq, err);

        if (r < 0)
                return r;
        vm_set_ack_pending(m, vm, false);
        if (!ok) {
                const char *what = m->state == UPDATE_PREPARING ? "prepare" : "freeze";
                fail_update(m, PROTO_E_CANCELLED, ECANCELED, "VM %s refused %s: %s", vm->id, what,
                            message ? message : "no reason given");
                return 0;
        }
        manager_progress(m, vm->id, "acknowledged %s", m->state == UPDATE_PREPARING ? "prepare" : "freeze");
        restore_record_vm(m, vm->id, m->state == UPDATE_PREPARING ? "t_prepare_ack_us" : "t_freeze_ack_us");
        check_acks(m);
        return 0;
}

void manager_prepare(Manager *m, const char *kernel, const char *initrd, const char *cmdline_in,
                     bool force, uint64_t timeout_ms, Call *call) {
        _cleanup_free_ char *cmdline = NULL;
        ProtoError err = {};
        int r;

        if (m->state != UPDATE_IDLE) {
                call_fail(call, PROTO_E_STATE, EBUSY, "update is %s", update_state_to_string(m->state));
                return;
        }
        if (cmdline_in)
                cmdline = strdup(cmdline_in);
        else if (kernel_cmdline_read(&cmdline) < 0)
                cmdline = strdup("");
        if (!cmdline) {
                call_fail(call, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                return;
        }
        if (preflight(m, kernel, initrd, cmdline, force, &err) < 0) {
                call_complete(call, NULL, -EBADF, &err);
                return;
        }

        m->update_id = m->reg->timeline && json_object_object_get(m->reg->timeline, "id")
                ? (uint64_t) json_object_get_int64(json_object_object_get(m->reg->timeline, "id")) + 1 : 1;
        json_object_put(m->reg->update);
        m->reg->update = json_object_new_object();
        update_set(m, "id", json_object_new_uint64(m->update_id));
        /* A resume still owed for an update abandoned by a restart would now be misread. */
        for (size_t i = 0; i < m->reg->n_vms; i++)
                m->reg->vms[i]->resume_owed = false;
        update_set(m, "kernel", json_object_new_string(kernel));
        update_set(m, "initrd", initrd ? json_object_new_string(initrd) : NULL);
        update_set(m, "cmdline", json_object_new_string(cmdline));
        if (force)
                update_set(m, "forced", json_object_new_boolean(true));
        update_set(m, "abi", json_object_new_string(luo_abi_to_string(luo_get_abi(m->luo))));
        update_set_time(m, "t_prepare_us");
        update_set(m, "vms", json_object_new_object());
        set_state(m, UPDATE_PREPARING);

        r = kexec_load_kernel(kernel, initrd, cmdline);
        if (r < 0) {
                fail_update(m, PROTO_E_KERNEL, r, "kexec_file_load(%s): %s", kernel, strerror(-r));
                call_fail(call, PROTO_E_KERNEL, r, "kexec_file_load(%s): %s", kernel, strerror(-r));
                return;
        }
        update_set_time(m, "t_loaded_us");
        /* The registry memfd must be preserved before a v4 PREPARE (preservation needs NORMAL). */
        if (state_session_write(m, &err) < 0) {
                fail_update(m, err.code, err.error, "%s", err.message);
                call_complete(call, NULL, -EBADF, &err);
                return;
        }
        if (luo_get_abi(m->luo) == LUO_ABI_V4) {
                r = luo_prepare(m->luo);
                if (r < 0) {
                        fail_update(m, PROTO_E_KERNEL, r, "LUO PREPARE: %s", strerror(-r));
                        call_fail(call, PROTO_E_KERNEL, r, "LUO PREPARE: %s", strerror(-r));
                        return;
                }
        }
        m->prepare_call = call;
        manager_progress(m, NULL, "kernel %s loaded, asking VMMs to prepare", kernel);
        send_all(m, "prepare", timeout_ms ? timeout_ms : m->config->prepare_timeout_ms, true, NULL, NULL);
        r = deadline_start(m, timeout_ms ? timeout_ms : m->config->prepare_timeout_ms);
        if (r < 0) {
                fail_update(m, PROTO_E_INTERNAL, r, "cannot arm the deadline");
                return;
        }
        (void) manager_save(m);
        check_acks(m);
}

void manager_commit(Manager *m, bool force, uint64_t timeout_ms, Call *call) {
        int r;

        if (m->state != UPDATE_PREPARED) {
                call_fail(call, PROTO_E_STATE, EBUSY, "update is %s, commit needs prepared", update_state_to_string(m->state));
                return;
        }
        m->commit_call = call;
        m->commit_force = force;
        set_state(m, UPDATE_FREEZING);
        update_set_time(m, "t_commit_us");
        manager_progress(m, NULL, "asking VMMs to freeze");
        send_all(m, "freeze", timeout_ms ? timeout_ms : m->config->freeze_timeout_ms, true, NULL, NULL);
        r = deadline_start(m, timeout_ms ? timeout_ms : m->config->freeze_timeout_ms);
        if (r < 0) {
                fail_update(m, PROTO_E_INTERNAL, r, "cannot arm the deadline");
                return;
        }
        freeze_write_early(m);
        check_acks(m);
}

static void disable_all_irqs(Manager *m) {
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                for (size_t j = 0; j < vm->n_sessions; j++)
                        for (size_t k = 0; k < vm->sessions[j].n_items; k++) {
                                RegItem *it = &vm->sessions[j].items[k];
                                int r;
                                if (it->kind != REG_KIND_VFIO || it->fd < 0)
                                        continue;
                                r = vfio_device_disable_irqs(it->fd);
                                if (r < 0)
                                        log_full(LOG_WARNING, r, vm->id, vm->sessions[j].name, it->pci,
                                                 "disabling interrupts of \"%s\" failed: %m", it->label);
                                else if (r > 0)
                                        log_full(LOG_NOTICE, 0, vm->id, vm->sessions[j].name, it->pci,
                                                 "VMM left %d interrupt index(es) of \"%s\" enabled; disabled them", r, it->label);
                        }
        }
}

static void do_kexec(Manager *m) {
        ProtoError err = {};
        bool early;
        int r;

        /* What commit wrote is still the registry unless something was saved or marked since. */
        early = m->early_written && !m->dirty && m->reg->generation == m->early_generation;
        m->early_written = false;
        m->dirty = false;

        set_state(m, UPDATE_FROZEN);
        update_set_time(m, "t_frozen_us");
        if (!m->skip_irq_disable)
                disable_all_irqs(m);
        update_set_time(m, "t_reboot_us");
        sync_wait(m);
        r = early && m->state_memfd >= 0 ? registry_write_final(m->state_memfd, m->early_len + 1, m->reg->update) : -ESTALE;
        if (r < 0) {
                if (r != -ESTALE)
                        log_warning_errno(r, "Cannot append the final record to the registry memfd, writing the registry again: %m");
                /* One serialisation for memfd and mirror; sync() below makes the mirror durable. */
                r = m->state_memfd >= 0 ? registry_save_both(m->reg, m->state_dir, m->state_memfd, NULL) : -EBADF;
        }
        if (r < 0) {
                fail_update(m, PROTO_E_INTERNAL, r, "cannot write the registry: %s", err.message[0] ? err.message : strerror(-r));
                return;
        }
        /* Mostly done by the thread already: what is left is what was written since (log lines). */
        sync();
        manager_progress_event(m, LU_MESSAGE_REBOOTING, NULL, "rebooting");
        if (m->config->kexec_mode == KEXEC_MODE_SYSTEMD) {
                char why[256] = "";
                /* The sessions are in the fd store (progress subscribers flushed it); systemd does the rest. */
                r = kexec_request_systemd(why, sizeof(why));
                if (r >= 0) {
                        manager_progress(m, NULL, "kexec requested from systemd");
                        return;
                }
                fail_update(m, PROTO_E_KERNEL, r, "%s", why);
                return;
        }
        r = kexec_reboot();
        /* Still here: a LUO freeze callback refused, e.g. a VFIO device with interrupts on. */
        fail_update(m, PROTO_E_KERNEL, r, "reboot(LINUX_REBOOT_CMD_KEXEC) returned: %s", strerror(-r));
}

int manager_cancel(Manager *m, ProtoError *err) {
        if (m->state != UPDATE_PREPARING && m->state != UPDATE_PREPARED && m->state != UPDATE_FREEZING &&
            m->state != UPDATE_FROZEN)
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "nothing to cancel: update is %s",
                                       update_state_to_string(m->state));
        abandon(m, "cancelled", "cancelled by the operator");
        fail_pending_calls(m, PROTO_E_CANCELLED, ECANCELED, "cancelled by the operator");
        return 0;
}

/* ---------------------------------------------------------------- operator views */

json_object *manager_status(Manager *m) {
        json_object *o = json_object_new_object();
        size_t connected = 0;

        for (size_t i = 0; i < m->reg->n_vms; i++)
                connected += !!m->reg->vms[i]->conn;
        json_object_object_add(o, "state", json_object_new_string(update_state_to_string(m->state)));
        json_object_object_add(o, "abi", json_object_new_string(m->luo ? luo_abi_to_string(luo_get_abi(m->luo)) : "none"));
        json_object_object_add(o, "update", m->reg->update ? json_object_get(m->reg->update) : NULL);
        json_object_object_add(o, "vms", json_object_new_uint64(m->reg->n_vms));
        json_object_object_add(o, "connected", json_object_new_uint64(connected));
        json_object_object_add(o, "boot_incoming", json_object_new_boolean(m->boot_incoming));
        return o;
}

json_object *manager_list(Manager *m) {
        json_object *o = json_object_new_object(), *vms = json_object_new_array();

        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                json_object *v = json_object_new_object(), *ss = json_object_new_array();

                json_object_object_add(v, "id", json_object_new_string(vm->id));
                json_object_object_add(v, "uid", json_object_new_int64(vm->uid));
                json_object_object_add(v, "connected", json_object_new_boolean(vm->conn != NULL));
                json_object_object_add(v, "incoming", json_object_new_boolean(vm->incoming));
                json_object_object_add(v, "restored", json_object_new_boolean(vm->restored && !vm->released));
                json_object_object_add(v, "released", json_object_new_boolean(vm->released));
                for (size_t j = 0; j < vm->n_sessions; j++) {
                        RegSession *s = &vm->sessions[j];
                        json_object *so = json_object_new_object(), *items = json_object_new_array();
                        json_object_object_add(so, "name", json_object_new_string(s->name));
                        json_object_object_add(so, "delegated", json_object_new_boolean(s->delegated));
                        for (size_t k = 0; k < s->n_items; k++)
                                json_object_array_add(items, item_json(s, &s->items[k], true));
                        json_object_object_add(so, "items", items);
                        json_object_array_add(ss, so);
                }
                json_object_object_add(v, "sessions", ss);
                json_object_array_add(vms, v);
        }
        json_object_object_add(o, "vms", vms);
        return o;
}

static void add_ms(json_object *t, const char *name, const char *from, const char *to) {
        json_object *a, *b;

        if (json_object_object_get_ex(t, from, &a) && json_object_object_get_ex(t, to, &b) &&
            json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int)) {
                /* Microsecond resolution is all there is: print 49.103, not 49.103000000000002. */
                double ms = (double) (json_object_get_int64(b) - json_object_get_int64(a)) / 1000.0;
                char text[32];

                (void) snprintf(text, sizeof(text), "%.3f", ms);
                json_object_object_add(t, name, json_object_new_double_s(ms, text));
        }
}

json_object *manager_timeline(Manager *m) {
        json_object *o = json_object_new_object(), *t = NULL;

        if (m->reg->timeline) {
                /* A deep copy with durations derived from the raw timestamps. */
                if (json_object_deep_copy(m->reg->timeline, &t, NULL) < 0)
                        t = NULL;
        }
        if (t) {
                json_object *vms;
                add_ms(t, "prepare_ms", "t_prepare_us", "t_prepared_us");
                add_ms(t, "freeze_ms", "t_commit_us", "t_reboot_us");
                add_ms(t, "reboot_to_start_ms", "t_reboot_us", "t_daemon_start_us");
                add_ms(t, "retrieve_ms", "t_daemon_start_us", "t_retrieved_us");
                add_ms(t, "restore_ms", "t_daemon_start_us", "t_end_us");
                add_ms(t, "total_ms", "t_prepare_us", "t_end_us");
                if (json_object_object_get_ex(t, "vms", &vms) && json_object_is_type(vms, json_type_object)) {
                        json_object *start = json_object_object_get(t, "t_daemon_start_us");
                        json_object_object_foreach(vms, k, v) {
                                (void) k;
                                if (start && json_object_is_type(v, json_type_object)) {
                                        json_object_object_add(v, "t_daemon_start_us", json_object_get(start));
                                        add_ms(v, "reclaimed_ms", "t_daemon_start_us", "t_reclaimed_us");
                                        add_ms(v, "restored_ms", "t_daemon_start_us", "t_restored_us");
                                        add_ms(v, "released_ms", "t_daemon_start_us", "t_released_us");
                                        json_object_object_del(v, "t_daemon_start_us");
                                }
                        }
                }
        }
        json_object_object_add(o, "timeline", t);
        return o;
}

int manager_release_vm(Manager *m, const char *vm_id, ProtoError *err) {
        RegVm *vm = registry_find_vm(m->reg, vm_id ? vm_id : "");

        if (!vm)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, ENOENT, "no VM \"%s\"", vm_id ? vm_id : "");
        if (!vm->incoming || vm->restored)
                return proto_error_set(err, PROTO_E_STATE, EBUSY, "VM %s has nothing incoming to release", vm_id);
        return restore_finish_vm(m, vm, true, err);
}
