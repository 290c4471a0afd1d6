/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Progress: every step of an update, logged once and passed to each subscriber (control
 * socket connections, D-Bus signals, STATUS= to the service manager, the fd-store mirror).
 */
#pragma once

#include "core/state.h"

/* Progress subscribers (control connections, D-Bus signals, STATUS=, the fd-store mirror). */
typedef void (*ProgressFn)(void *userdata, const char *state, const char *vm, const char *detail);

typedef struct Subscriber {
        ProgressFn fn;
        void *userdata;
        struct Subscriber *next;
} Subscriber;

int manager_subscribe(Manager *m, ProgressFn fn, void *userdata);
void manager_unsubscribe(Manager *m, void *userdata);
void manager_progress(Manager *m, const char *vm, const char *fmt, ...) _printf_(3, 4);
/* manager_progress_event() - the same, logged with a catalogued MESSAGE_ID= (message-ids.h). */
void manager_progress_event(Manager *m, const char *message_id, const char *vm, const char *fmt, ...) _printf_(4, 5);
