/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* READY/STATUS/WATCHDOG/STOPPING for the service manager, see service-notify.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "service-notify.h"

/* A burst of VMMs (re)connecting, e.g. after a kexec, becomes one STATUS= line. */
#define COUNT_STATUS_DELAY_USEC (200 * 1000)

/* One per process: the service manager knows the daemon as a whole. */
static struct {
        Manager *m;
        sd_event_source *post, *timer;
        size_t sent_vms, sent_connected;    /* the counts the last STATUS= showed */
} notify;

static size_t connected_count(Manager *m) {
        size_t n = 0;

        for (size_t i = 0; i < m->reg->n_vms; i++)
                n += !!m->reg->vms[i]->conn;
        return n;
}

static void status_send_counts(Manager *m, bool ready) {
        notify.sent_vms = m->reg ? m->reg->n_vms : 0;
        notify.sent_connected = m->reg ? connected_count(m) : 0;
        (void) sd_notifyf(false, "%sSTATUS=%s%s, %zu VM(s), %zu connected", ready ? "READY=1\n" : "",
                          update_state_to_string(m->state), m->boot_incoming ? " (incoming live update)" : "",
                          notify.sent_vms, notify.sent_connected);
}

static void on_progress(void *userdata, const char *state, const char *vm, const char *detail) {
        (void) sd_notifyf(false, "STATUS=%s: %s%s%s", state, vm ? vm : "", vm ? ": " : "", detail);
}

static int on_count_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        status_send_counts(notify.m, false);
        return 0;
}

/* After every dispatch: a changed VM count arms the timer that reports it. */
static int on_post(sd_event_source *s, void *userdata) {
        Manager *m = notify.m;
        int r;

        if (!m->reg || (m->reg->n_vms == notify.sent_vms && connected_count(m) == notify.sent_connected))
                return 0;
        r = sd_event_source_get_enabled(notify.timer, NULL);
        if (r > 0)
                return 0;   /* already on its way */
        r = sd_event_source_set_time_relative(notify.timer, COUNT_STATUS_DELAY_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(notify.timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug("Cannot schedule the STATUS= update: %s", strerror(-r));
        return 0;
}

int service_notify_start(sd_event *e, Manager *m) {
        int r;

        /* With WATCHDOG_USEC set, sd-event pings at half the interval whenever it wakes up. */
        r = sd_event_set_watchdog(e, true);
        if (r < 0)
                return log_error_errno(r, "Cannot enable the watchdog: %m");
        if (r > 0)
                log_debug("Service manager watchdog enabled");
        notify.m = m;
        if (getenv("NOTIFY_SOCKET")) {   /* else every STATUS= is a no-op anyway */
                r = sd_event_add_time_relative(e, &notify.timer, CLOCK_MONOTONIC, COUNT_STATUS_DELAY_USEC, 10 * 1000,
                                               on_count_timer, NULL);
                if (r >= 0)
                        r = sd_event_source_set_enabled(notify.timer, SD_EVENT_OFF);
                if (r >= 0)
                        r = sd_event_add_post(e, &notify.post, on_post, NULL);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up STATUS= updates: %m");
        }
        return manager_subscribe(m, on_progress, &notify);
}

void service_notify_ready(Manager *m) {
        status_send_counts(m, true);
}

void service_notify_stop(Manager *m) {
        manager_unsubscribe(m, &notify);
        notify.post = sd_event_source_disable_unref(notify.post);
        notify.timer = sd_event_source_disable_unref(notify.timer);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=stopping");
}
