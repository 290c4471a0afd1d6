/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* READY/STATUS/WATCHDOG/STOPPING for the service manager, see service-notify.h. */
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "service-notify.h"

/* The subscription needs a unique userdata key in the manager's subscriber list. */
static char notify_key;

static void on_progress(void *userdata, const char *state, const char *vm, const char *detail) {
        (void) sd_notifyf(false, "STATUS=%s: %s%s%s", state, vm ? vm : "", vm ? ": " : "", detail);
}

int service_notify_start(sd_event *e, Manager *m) {
        int r;

        /* With WATCHDOG_USEC set, sd-event pings at half the interval whenever it wakes up. */
        r = sd_event_set_watchdog(e, true);
        if (r < 0)
                return log_error_errno(r, "Cannot enable the watchdog: %m");
        if (r > 0)
                log_debug("Service manager watchdog enabled");
        return manager_subscribe(m, on_progress, &notify_key);
}

void service_notify_ready(Manager *m) {
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s%s, %zu VM(s)", update_state_to_string(m->state),
                          m->boot_incoming ? " (incoming live update)" : "", m->reg ? m->reg->n_vms : 0);
}

void service_notify_stop(Manager *m) {
        manager_unsubscribe(m, &notify_key);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=stopping");
}
