/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* READY/STATUS/WATCHDOG/STOPPING for the service manager, see service-notify.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "frontends/service-notify.h"
#include "system/log.h"

/* A burst of VMMs (re)connecting, e.g. after a kexec, becomes one STATUS= line. */
#define COUNT_STATUS_DELAY_USEC (200 * 1000)

/* Per-VM progress within one state (an acknowledgement from each of 256 VMMs) becomes at
 * most one STATUS= per interval: each is a message to PID 1 on the update's critical path. */
#define PROGRESS_STATUS_INTERVAL_USEC (100 * 1000)

/* One per process: the service manager knows the daemon as a whole. */
static struct {
        Manager *m;
        sd_event_source *post, *timer, *progress_timer;
        size_t sent_vms, sent_connected;    /* the counts the last STATUS= showed */
        bool enabled;                       /* $NOTIFY_SOCKET set: else every STATUS= is a no-op */
        const char *sent_state;             /* of the last progress STATUS= (a static string) */
        uint64_t sent_usec;                 /* ... and when it went, CLOCK_MONOTONIC */
        bool pending;                       /* a per-VM line held back, sent when the interval ends */
        const char *p_state;                /* static, as sent_state */
        char p_vm[64], p_detail[256];
} notify;

static void status_send_counts(Manager *m, bool ready) {
        notify.sent_vms = m->reg ? m->reg->n_vms : 0;
        notify.sent_connected = m->n_connected;
        (void) sd_notifyf(false, "%sSTATUS=%s%s, %zu VM(s), %zu connected", ready ? "READY=1\n" : "",
                          update_state_to_string(m->state), m->boot_incoming ? " (incoming live update)" : "",
                          notify.sent_vms, notify.sent_connected);
}

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void progress_send(const char *state, const char *vm, const char *detail) {
        (void) sd_notifyf(false, "STATUS=%s: %s%s%s", state, vm ? vm : "", vm ? ": " : "", detail);
        notify.sent_state = state;
        notify.sent_usec = now_monotonic_usec();
}

static void progress_flush(void) {
        if (!notify.pending)
                return;
        notify.pending = false;
        progress_send(notify.p_state, notify.p_vm, notify.p_detail);
        (void) sd_event_source_set_enabled(notify.progress_timer, SD_EVENT_OFF);
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        progress_flush();
        return 0;
}

/* A phase line (no VM, or a new state) goes at once, after any per-VM line held back; a
 * per-VM line within the interval after the last one is held back, the latest replacing it. */
static void on_progress(void *userdata, const char *state, const char *vm, const char *detail) {
        uint64_t now;

        if (!notify.enabled)
                return;
        now = now_monotonic_usec();
        if (vm && notify.progress_timer && notify.sent_state && strcmp(state, notify.sent_state) == 0 &&
            now < notify.sent_usec + PROGRESS_STATUS_INTERVAL_USEC) {
                notify.p_state = state;
                strscpy(notify.p_vm, sizeof(notify.p_vm), vm);
                strscpy(notify.p_detail, sizeof(notify.p_detail), detail);
                if (!notify.pending) {
                        notify.pending = true;
                        if (sd_event_source_set_time(notify.progress_timer, notify.sent_usec + PROGRESS_STATUS_INTERVAL_USEC) < 0 ||
                            sd_event_source_set_enabled(notify.progress_timer, SD_EVENT_ONESHOT) < 0)
                                progress_flush();
                }
                return;
        }
        progress_flush();
        progress_send(state, vm, detail);
}

static int on_count_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        status_send_counts(notify.m, false);
        return 0;
}

/* After every dispatch: a changed VM count arms the timer that reports it. */
static int on_post(sd_event_source *s, void *userdata) {
        Manager *m = notify.m;
        int r;

        if (!m->reg || (m->reg->n_vms == notify.sent_vms && m->n_connected == notify.sent_connected))
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
        notify.enabled = getenv("NOTIFY_SOCKET");
        if (notify.enabled) {   /* else every STATUS= is a no-op anyway */
                r = sd_event_add_time_relative(e, &notify.timer, CLOCK_MONOTONIC, COUNT_STATUS_DELAY_USEC, 10 * 1000,
                                               on_count_timer, NULL);
                if (r >= 0)
                        r = sd_event_source_set_enabled(notify.timer, SD_EVENT_OFF);
                if (r >= 0)
                        r = sd_event_add_time(e, &notify.progress_timer, CLOCK_MONOTONIC, 0, 1000, on_progress_timer, NULL);
                if (r >= 0)
                        r = sd_event_source_set_enabled(notify.progress_timer, SD_EVENT_OFF);
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
        notify.progress_timer = sd_event_source_disable_unref(notify.progress_timer);
        notify.pending = false;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=stopping");
}
