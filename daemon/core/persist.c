/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing the registry mirror, coalesced per event-loop iteration (persist.h). */
#include <errno.h>

#include "core/persist.h"
#include "system/log.h"

int manager_save(Manager *m) {
        int r;

        m->dirty = false;
        r = registry_save_file(m->reg, m->state_dir);
        if (r < 0)
                log_error_errno(r, "Failed to save registry to %s: %m", m->state_dir);
        return r;
}

static int on_save_defer(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (m->dirty)
                (void) manager_save(m);
        return 0;
}

/* Coalesce the many small changes of a burst of requests into one atomic write. */
void manager_mark_dirty(Manager *m) {
        m->dirty = true;
        if (!m->save_defer) {
                if (sd_event_add_defer(m->event, &m->save_defer, on_save_defer, m) < 0) {
                        (void) manager_save(m);
                        return;
                }
                (void) sd_event_source_set_priority(m->save_defer, SD_EVENT_PRIORITY_IDLE);
        }
        (void) sd_event_source_set_enabled(m->save_defer, SD_EVENT_ONESHOT);
}
