/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The D-Bus front end of lu-vfiod (docs/dbus.md): org.luvfiod.LiveUpdate1 on the system
 * bus, served by sd-bus on the daemon's sd-event loop. A peer of the operator control
 * socket: it translates method calls into the same manager_* calls and never holds
 * lifecycle logic of its own. State-changing methods are authorized with polkit.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "core/manager.h"

#define DBUS_SERVICE_NAME      "org.luvfiod.LiveUpdate1"
#define DBUS_SERVICE_PATH      "/org/luvfiod/LiveUpdate1"
#define DBUS_SERVICE_INTERFACE "org.luvfiod.LiveUpdate1"
#define DBUS_SERVICE_ERROR     "org.luvfiod.LiveUpdate1.Error"

#define DBUS_POLKIT_ACTION_PREPARE "org.luvfiod.LiveUpdate1.prepare"
#define DBUS_POLKIT_ACTION_COMMIT  "org.luvfiod.LiveUpdate1.commit"

typedef struct DbusServiceOptions {
        /* NULL: the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the default socket) */
        const char *address;
        /* false: never ask polkit, so only root (and @fallback_gid) may change state */
        bool use_polkit;
        /*
         * Members of this group (primary or supplementary) may call the state-changing
         * methods when polkit cannot be reached; (gid_t) -1 for none. Root always may.
         */
        gid_t fallback_gid;
} DbusServiceOptions;

typedef struct DbusService DbusService;

/*
 * dbus_service_new() - connect to the bus, attach it to @e, publish the object and
 * request the name (asynchronously: a refusal is logged, the daemon keeps running
 * without D-Bus). When the bus cannot be reached, or later goes away (a restarted
 * dbus-daemon or dbus-broker), it logs that once and reconnects with a backoff from
 * 250 ms to 10 s; calls that were in flight on the old connection get no reply.
 * Returns 0, or a negative errno when out of memory or the event loop refuses.
 */
int dbus_service_new(sd_event *e, Manager *m, const DbusServiceOptions *opts, DbusService **ret);

/* dbus_service_free() - leave the bus; calls still pending in the manager are dropped when they complete. */
DbusService *dbus_service_free(DbusService *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DbusService *, dbus_service_free);

/* dbus_error_name() - the D-Bus error name for a core error code (named errors of docs/dbus.md). */
const char *dbus_error_name(ProtoErrorCode code, int error);
