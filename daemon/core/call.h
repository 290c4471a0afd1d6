/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Calls: a request a front end hands to the core that is answered later (a prepare, a
 * commit, a reclaim waiting for a device). The core completes each exactly once; the
 * front end's ->complete sends the answer, or drops it when its client went away.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#include "common/protocol.h"

/*
 * A request that is answered later. The front end allocates it, fills ->complete, and
 * hands it to the manager, which calls call_complete() (or call_complete_fds()) exactly
 * once. ->complete takes ownership of @result and of the @n_fds fds in @fds (the array
 * itself stays the caller's) and frees the call. A front end whose client went away
 * sets ->gone; the manager still completes the call (the front end then just drops it).
 */
typedef struct Call Call;
struct Call {
        void (*complete)(Call *c, json_object *result, int *fds, size_t n_fds, const ProtoError *err);
        void *userdata;
        uint64_t id;
        bool gone;
        Call *next;      /* manager's wait list */
};
/* call_complete() - one fd (or none: negative @fd). */
void call_complete(Call *c, json_object *result, int fd, const ProtoError *err);
void call_complete_fds(Call *c, json_object *result, int *fds, size_t n_fds, const ProtoError *err);
void call_fail(Call *c, ProtoErrorCode code, int error, const char *fmt, ...) _printf_(4, 5);
