/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Progress lines and their subscribers (progress.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/progress.h"
#include "system/log.h"

int manager_subscribe(Manager *m, ProgressFn fn, void *userdata) {
        Subscriber *s = calloc(1, sizeof(Subscriber));
        if (!s)
                return -ENOMEM;
        s->fn = fn;
        s->userdata = userdata;
        s->next = m->subscribers;
        m->subscribers = s;
        return 0;
}

void manager_unsubscribe(Manager *m, void *userdata) {
        for (Subscriber **p = &m->subscribers; *p; p = &(*p)->next)
                if ((*p)->userdata == userdata) {
                        Subscriber *s = *p;
                        *p = s->next;
                        free(s);
                        return;
                }
}

static void progressv(Manager *m, const char *message_id, const char *vm, const char *fmt, va_list ap) _printf_(4, 0);
static void progressv(Manager *m, const char *message_id, const char *vm, const char *fmt, va_list ap) {
        char detail[256];

        (void) vsnprintf(detail, sizeof(detail), fmt, ap);
        utf8_truncate(detail);
        log_event(message_id ? LOG_NOTICE : LOG_INFO, message_id, 0, vm, NULL, NULL, "%s: %s",
                  update_state_to_string(m->state), detail);
        /* A subscriber may unsubscribe while being called: walk a snapshot of next pointers. */
        for (Subscriber *s = m->subscribers, *n; s; s = n) {
                n = s->next;
                s->fn(s->userdata, update_state_to_string(m->state), vm, detail);
        }
}

void manager_progress(Manager *m, const char *vm, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        progressv(m, NULL, vm, fmt, ap);
        va_end(ap);
}

void manager_progress_event(Manager *m, const char *message_id, const char *vm, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        progressv(m, message_id, vm, fmt, ap);
        va_end(ap);
}
