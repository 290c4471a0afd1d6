/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Completing a Call (call.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/call.h"

void call_complete(Call *c, json_object *result, int fd, const ProtoError *err) {
        int fds[1] = { fd };

        c->complete(c, result, fds, fd >= 0 ? 1 : 0, err);
}

void call_complete_fds(Call *c, json_object *result, int *fds, size_t n_fds, const ProtoError *err) {
        c->complete(c, result, fds, n_fds, err);
}

void call_fail(Call *c, ProtoErrorCode code, int error, const char *fmt, ...) {
        ProtoError e = { .code = code, .error = error < 0 ? -error : error };
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        utf8_truncate(e.message);
        call_complete(c, NULL, -EBADF, &e);
}
