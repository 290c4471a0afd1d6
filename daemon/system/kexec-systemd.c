/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ask systemd for the kexec, and check that it can carry the sessions; see kexec-systemd.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "macro.h"

#include "system/kexec-systemd.h"

static void bus_closep(sd_bus **bus) {
        if (*bus)
                sd_bus_flush_close_unref(*bus);
}

int kexec_systemd_check(char *errbuf, size_t errlen) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(bus_closep) sd_bus *bus = NULL;
        _cleanup_free_ char *version = NULL;
        char *end;
        long major;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                (void) snprintf(errbuf, errlen, "KexecMode=systemd: cannot connect to the system bus: %s", strerror(-r));
                return r;
        }
        r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "Version", &error, &version);
        if (r < 0) {
                (void) snprintf(errbuf, errlen, "KexecMode=systemd: cannot read the service manager's Version: %s",
                                error.message ? error.message : strerror(-r));
                return r;
        }
        /* "252.39-1~deb12u2", "261", "261~rc1": the major number comes first */
        errno = 0;
        major = strtol(version, &end, 10);
        if (errno != 0 || end == version) {
                (void) snprintf(errbuf, errlen, "KexecMode=systemd: unrecognised systemd version \"%s\"", version);
                return -EPROTO;
        }
        if (major < KEXEC_SYSTEMD_MIN_VERSION) {
                (void) snprintf(errbuf, errlen,
                                "KexecMode=systemd needs systemd >= %d to carry the LUO session fds through "
                                "`systemctl kexec`; the running manager is systemd %s (use KexecMode=direct)",
                                KEXEC_SYSTEMD_MIN_VERSION, version);
                return -EOPNOTSUPP;
        }
        return 0;
}

int kexec_request_systemd(char *errbuf, size_t errlen) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(bus_closep) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                (void) snprintf(errbuf, errlen, "cannot connect to the system bus: %s", strerror(-r));
                return r;
        }
        /* What `systemctl kexec` does: the orderly path through kexec.target, every unit
         * stopped, file systems unmounted; Manager.KExec() would be `systemctl kexec --force`. */
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "StartUnit", &error, NULL, "ss",
                               "kexec.target", "replace-irreversibly");
        if (r < 0)
                (void) snprintf(errbuf, errlen, "systemd refused to start kexec.target: %s",
                                error.message ? error.message : strerror(-r));
        return r;
}
