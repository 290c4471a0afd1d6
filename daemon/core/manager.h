/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core of lu-vfiod: VMs, their items and LUO sessions, and the update state
 * machine (design §3). This is the only place lifecycle logic lives. Front ends (the
 * VMM socket, the operator control socket, later D-Bus) translate requests into
 * manager_* calls, complete asynchronous ones through a Call, and subscribe to progress.
 * restore.c is the after-kexec half of the same core.
 */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/config.h"
#include "luo.h"
#include "common/protocol.h"
#include "core/registry.h"

typedef enum UpdateState {
        UPDATE_IDLE,
        UPDATE_PREPARING,
        UPDATE_PREPARED,
        UPDATE_FREEZING,
        UPDATE_FROZEN,
        UPDATE_RESTORING,
        UPDATE_FINISHING,
        _UPDATE_STATE_MAX,
} UpdateState;

const char *update_state_to_string(UpdateState s);

/*
 * A request that is answered later. The front end allocates it, fills ->complete, and
 * hands it to the manager, which calls call_complete() (or call_complete_fds()) exactly
 * once. ->complete takes ownership of @result and of the @n_fds fds in @fds (the array
 * itself stays the caller's) and frees the call. A front end whose client went away
 * sets ->gone; the manager still completes the call (the front end then just drops it).
 */
typedef struct Call Call;
struct Call {
        void (*complete)(Call *c, json_object *result, int *fds, size_t n_fds, const ProtoError *err);
        void *userdata;
        uint64_t id;
        bool gone;
        Call *next;      /* manager's wait list */
};
/* call_complete() - one fd (or none: negative @fd). */
void call_complete(Call *c, json_object *result, int fd, const ProtoError *err);
void call_complete_fds(Call *c, json_object *result, int *fds, size_t n_fds, const ProtoError *err);
void call_fail(Call *c, ProtoErrorCode code, int error, const char *fmt, ...) _printf_(4, 5);

/* Transport hooks for VMM connections: how the manager pushes events to a VM's VMM. */
typedef struct VmmOps {
        /* send @event with @fields (ownership taken) to @conn; returns the seq used, or negative errno */
        int64_t (*send_event)(void *conn, const char *event, json_object *fields);
        /* the same with the event's text up to its seq (proto_event_head()), for one event to every VM */
        int64_t (*send_event_head)(void *conn, const char *head, size_t len);
} VmmOps;

/* Progress subscribers (operator connections, later D-Bus signals). */
typedef void (*ProgressFn)(void *userdata, const char *state, const char *vm, const char *detail);

typedef struct Subscriber {
        ProgressFn fn;
        void *userdata;
        struct Subscriber *next;
} Subscriber;

typedef struct Waiter Waiter;   /* a reclaim waiting for a VFIO device to be bound */
typedef struct BindWatch BindWatch;

typedef struct ManagerOptions {
        const char *state_dir;
        const char *luo_path;           /* NULL: /dev/liveupdate */
        bool skip_irq_disable;          /* test hook: do not disable VFIO interrupts at commit */
} ManagerOptions;

typedef struct Manager {
        sd_event *event;
        Config *config;
        char *state_dir;
        char *luo_path;
        bool skip_irq_disable;

        Luo *luo;
        int luo_error;                  /* why luo is NULL (negative errno) */
        int luo_finish_error;           /* v4: the restore's global FINISH failed (negative errno), else 0 */
        Registry *reg;
        VmmOps vmm_ops;
        Subscriber *subscribers;

        UpdateState state;
        uint64_t update_id;
        int state_session_fd;           /* luvf:state: outgoing (prepared) or incoming */
        int state_memfd;                /* registry memfd preserved in it (outgoing) */
        int incoming_memfd;             /* the registry memfd retrieved from it (incoming, until the restore is done) */
        Call *prepare_call;
        Call *commit_call;
        bool commit_force;
        sd_event_source *deadline;
        sd_event_source *save_defer;
        bool dirty;
        /* the registry written at commit (freeze_write_early()): its length and generation, and
         * the sync() of its mirror running meanwhile */
        bool early_written;
        size_t early_len;
        uint64_t early_generation;
        bool sync_running;
        pthread_t sync_thread;

        /* after the reboot */
        bool boot_incoming;
        Waiter *waiters;
        BindWatch *bind_watch;
        sd_event_source *grace;
        sd_event_source *bind_deadline;
        uint64_t t_start_us;

        /* fds passed in by the service manager's fd store (manager-fdstore.h); NULL if none */
        struct ListenFds *stored_fds;
        /* the mirror of our fds in that store (manager-fdstore.h); NULL without a service manager */
        struct FdStoreMirror *fdstore;
} Manager;

int manager_new(sd_event *e, Config *config, const ManagerOptions *opts, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/*
 * manager_startup() - open the LUO device, detect an incoming update (our state session),
 * load the registry (from the incoming memfd, else the file mirror) and start restoring.
 */
int manager_startup(Manager *m);

int manager_subscribe(Manager *m, ProgressFn fn, void *userdata);
void manager_unsubscribe(Manager *m, void *userdata);
void manager_progress(Manager *m, const char *vm, const char *fmt, ...) _printf_(3, 4);
/* manager_progress_event() - the same, logged with a catalogued MESSAGE_ID= (message-ids.h). */
void manager_progress_event(Manager *m, const char *message_id, const char *vm, const char *fmt, ...) _printf_(4, 5);

/* Save the registry mirror soon (coalesced) or now. */
void manager_mark_dirty(Manager *m);
int manager_save(Manager *m);

uint64_t now_realtime_us(void);

/* ---- VMM side (custodian and delegated modes) ---- */
int manager_vm_claim(Manager *m, void *conn, const char *vm_id, uid_t uid, gid_t gid, RegVm **ret, ProtoError *err);
void manager_vm_disconnect(Manager *m, RegVm *vm);
json_object *manager_vm_items_json(Manager *m, const RegVm *vm);
/* manager_preserve() - takes ownership of @fd in every case. */
int manager_preserve(Manager *m, RegVm *vm, const char *label, int fd, json_object **ret, ProtoError *err);
int manager_unpreserve(Manager *m, RegVm *vm, const char *label, ProtoError *err);
int manager_forget(Manager *m, RegVm *vm, ProtoError *err);
int manager_session_get(Manager *m, RegVm *vm, int *ret_fd, json_object **ret, ProtoError *err);
int manager_ack_check(Manager *m, RegVm *vm, uint64_t seq, ProtoError *err);
int manager_ack(Manager *m, RegVm *vm, uint64_t seq, bool ok, const char *message, ProtoError *err);
void manager_reclaim(Manager *m, RegVm *vm, const char *label, Call *call);
/*
 * manager_reclaim_many() - reclaim @n labels (1..PROTO_RECLAIM_LABELS_MAX) at once: completes
 * @call once, with {"items":[...]} and the fds in label order, or with the first error (in label
 * order) and no fd at all.
 */
void manager_reclaim_many(Manager *m, RegVm *vm, const char *const *labels, size_t n, Call *call);
/* manager_wait_bound() - answer once PCI device @pci is bound to vfio-pci (or time out). */
void manager_wait_bound(Manager *m, const char *pci, uint64_t timeout_ms, Call *call);
int manager_restored(Manager *m, RegVm *vm, json_object **ret, ProtoError *err);
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

/* ---- restore.c (after the reboot) ---- */
int restore_start(Manager *m);
void restore_stop(Manager *m);
void restore_reclaim(Manager *m, RegVm *vm, RegItem *it, Call *call);
int restore_finish_vm(Manager *m, RegVm *vm, bool release, ProtoError *err);
void restore_check_done(Manager *m);
void restore_record_vm(Manager *m, const char *vm, const char *key);
