/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test build of lu-vfiod with the D-Bus front end wired in from outside main.c: main.c
 * is compiled with manager_startup renamed to ops_manager_startup, which starts the
 * core and then publishes org.luvfiod.LiveUpdate1 on $DBUS_SYSTEM_BUS_ADDRESS.
 * It also enables the watchdog and STATUS= lines (daemon/service-notify.c).
 * $LU_VFIOD_DBUS_FALLBACK_GID sets the group allowed without polkit.
 */
#include <stdlib.h>

#include "dbus-service.h"
#include "log.h"
#include "service-notify.h"

int ops_manager_startup(Manager *m);

/* Never freed: main() frees the manager first, and the process ends right after. */
static DbusService *service;

int ops_manager_startup(Manager *m) {
        DbusServiceOptions opts = { .use_polkit = true, .fallback_gid = (gid_t) -1 };
        const char *g = getenv("LU_VFIOD_DBUS_FALLBACK_GID");
        int r;

        r = manager_startup(m);
        if (r < 0)
                return r;
        r = service_notify_start(m->event, m);
        if (r < 0)
                return r;
        if (g)
                opts.fallback_gid = (gid_t) strtoul(g, NULL, 10);
        r = dbus_service_new(m->event, m, &opts, &service);
        if (r < 0)
                log_warning_errno(r, "D-Bus interface unavailable: %m");
        return 0;
}
