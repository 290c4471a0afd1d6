/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The core's shared state: the update states and the Manager object, which manager.c
 * (before the reboot) and restore.c (after it) both work on. It holds no functions of
 * either, so that neither half depends on the other through it.
 */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "luo.h"

#include "common/config.h"
#include "common/protocol.h"
#include "core/call.h"
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

/* Transport hooks for VMM connections: how the manager pushes events to a VM's VMM. */
typedef struct VmmOps {
        /* send @event with @fields (ownership taken) to @conn; returns the seq used, or negative errno */
        int64_t (*send_event)(void *conn, const char *event, json_object *fields);
        /* the same with the event's text up to its seq (proto_event_head()), for one event to every VM */
        int64_t (*send_event_head)(void *conn, const char *head, size_t len);
} VmmOps;

typedef struct Subscriber Subscriber;   /* progress.h */
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
        size_t n_connected;               /* VMs with conn set (manager.c: claim, disconnect, forget) */
        size_t n_acks_pending;            /* VMs with ack_pending set (manager.c, vm_set_ack_pending()) */
        sd_event_source *bind_deadline;
        uint64_t t_start_us;

        /* fds passed in by the service manager's fd store (manager-fdstore.h); NULL if none */
        struct ListenFds *stored_fds;
        /* the mirror of our fds in that store (manager-fdstore.h); NULL without a service manager */
        struct FdStoreMirror *fdstore;
} Manager;

/* now_realtime_us() - CLOCK_REALTIME in µs: the timeline's clock, which runs on across a kexec. */
uint64_t now_realtime_us(void);
