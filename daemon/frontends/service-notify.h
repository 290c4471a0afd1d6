/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Talking to the service manager (systemd Type=notify): READY=1 once the sockets are up,
 * a STATUS= line for every phase of an update (its per-VM lines at most every 100 ms, the
 * latest, flushed before the next phase's line) and, coalesced over 200 ms, one whenever
 * the number of VMs or of connected VMMs changes, WATCHDOG=1 pings from the event loop
 * (sd_event_set_watchdog(): at half of WatchdogSec=, and only while the loop turns), and
 * STOPPING=1. Every call is a no-op when $NOTIFY_SOCKET is not set.
 */
#pragma once

#include <systemd/sd-event.h>

#include "core/manager.h"

/* service_notify_start() - enable watchdog pings on @e, subscribe STATUS= to @m's progress and
 * watch its VM counts. */
int service_notify_start(sd_event *e, Manager *m);
/* service_notify_ready() - READY=1 with the current state and VM counts as STATUS=. */
void service_notify_ready(Manager *m);
/* service_notify_stop() - STOPPING=1 and unsubscribe. */
void service_notify_stop(Manager *m);
