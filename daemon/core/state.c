/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The update states' names and the timeline's clock (state.h). */
#include <time.h>

#include "core/state.h"

static const char *const state_names[_UPDATE_STATE_MAX] = {
        [UPDATE_IDLE] = "idle",
        [UPDATE_PREPARING] = "preparing",
        [UPDATE_PREPARED] = "prepared",
        [UPDATE_FREEZING] = "freezing",
        [UPDATE_FROZEN] = "frozen",
        [UPDATE_RESTORING] = "restoring",
        [UPDATE_FINISHING] = "finishing",
};

const char *update_state_to_string(UpdateState s) {
        return (unsigned) s < _UPDATE_STATE_MAX ? state_names[s] : "unknown";
}

uint64_t now_realtime_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}
