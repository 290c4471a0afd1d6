/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test build of lu-vfiod with the D-Bus front end wired in from outside main.c: main.c
 * is compiled with manager_startup renamed to ops_manager_startup, which starts the
 * core and then publishes org.luvfiod.LiveUpdate1 on $DBUS_SYSTEM_BUS_ADDRESS.
 * It also enables the watchdog and STATUS= lines (daemon/service-notify.c), and the fd
 * store: session and item fds are mirrored into it and taken back after a restart
 * (daemon/manager-fdstore.c).
 * $LU_VFIOD_DBUS_FALLBACK_GID sets the group allowed without polkit.
 */
#include <stdlib.h>

#include "dbus-service.h"
#include "log.h"
#include "manager-fdstore.h"
#include "service-notify.h"

int ops_manager_startup(Manager *m);

/* Never freed: main() frees the manager first, and the process ends right after. */
static DbusService *service;
static FdStoreMirror *mirror;

int ops_manager_startup(Manager *m) {
        DbusServiceOptions opts = { .use_polkit = true, .fallback_gid = (gid_t) -1 };
        const char *g = getenv("LU_VFIOD_DBUS_FALLBACK_GID");
        _cleanup_(listen_fds_done) ListenFds fds = {};
        int r;

        r = listen_fds_take(&fds);
        if (r < 0)
                log_warning_errno(r, "Ignoring LISTEN_FDS: %m");
        r = manager_startup(m);
        if (r < 0)
                return r;
        r = manager_fdstore_adopt(m, &fds);
        if (r > 0)
                log_notice("Recovered %d session(s) from the fd store", r);
        r = fdstore_mirror_new(m, &mirror);
        if (r < 0)
                return log_error_errno(r, "Cannot mirror sessions into the fd store: %m");
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
