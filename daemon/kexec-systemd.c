/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ask systemd for the kexec; see kexec-systemd.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "kexec-systemd.h"
#include "macro.h"

int kexec_request_systemd(char *errbuf, size_t errlen) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                (void) snprintf(errbuf, errlen, "cannot connect to the system bus: %s", strerror(-r));
                return r;
        }
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "KExec", &error, NULL, NULL);
        if (r < 0)
                (void) snprintf(errbuf, errlen, "systemd refused KExec: %s",
                                error.message ? error.message : strerror(-r));
        sd_bus_flush_close_unref(bus);
        return r;
}
