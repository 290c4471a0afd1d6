/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When the registry mirror (registry.json in the state directory) is written. */
#pragma once

#include "core/state.h"

/* Save the registry mirror soon (coalesced) or now. */
void manager_mark_dirty(Manager *m);
int manager_save(Manager *m);
