/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-systemd1: a STAND-IN for systemd >= 261's service manager, whose fd store carries LUO
 * session fds through `systemctl kexec` (docs/reliability.md). The real systemd 252 of the
 * realstack machine (tests/realstack) cannot do that, so KexecMode=systemd's successful path
 * is tested only against this: org.freedesktop.systemd1 on a test bus with what lu-vfiod's
 * KexecMode=systemd uses. The Manager's Version property (default "261"), and
 * StartUnit("kexec.target", "replace-irreversibly"), which is logged, answered, and then
 * carried out the way systemd would end it: reboot(LINUX_REBOOT_CMD_KEXEC) of the (emulated)
 * machine.
 *
 *   fake-systemd1 [--refuse-first] [--stop-caller] [--version=STR] LOGFILE
 *                                              ($DBUS_SYSTEM_BUS_ADDRESS: the bus)
 *
 * --refuse-first answers the first StartUnit() with an error, as a systemd that cannot start
 * the job would. --stop-caller does what systemd's orderly kexec does before the reboot:
 * it stops the units, here the caller (SIGTERM), and reboots 2 s later, while the bus and
 * the other clients still run.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

static FILE *log_file;
static int refuse = 0;
static bool stop_caller = false;
static const char *version = "261";

static int on_kexec_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        fprintf(log_file, "REBOOT-KEXEC\n");
        fflush(log_file);
        sync();
        if (syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL) < 0) {
                fprintf(log_file, "REBOOT-FAILED %s\n", strerror(errno));
                fflush(log_file);
        }
        return 0;
}

static int method_start_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_creds *creds = NULL;
        sd_event *e = userdata;
        const char *unit, *mode;
        pid_t caller = 0;
        int r;

        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        fprintf(log_file, "StartUnit %s %s from %s\n", unit, mode, sd_bus_message_get_sender(m));
        fflush(log_file);
        if (strcmp(unit, "kexec.target") != 0)
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit",
                                         "Unit %s not handled by the stand-in", unit);
        if (refuse > 0) {
                refuse--;
                fprintf(log_file, "REFUSED\n");
                fflush(log_file);
                return sd_bus_error_set(error, "org.freedesktop.systemd1.TransactionIsDestructive",
                                        "Transaction for kexec.target/start is destructive (test)");
        }
        if (stop_caller) {
                r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_PID, &creds);
                if (r >= 0)
                        r = sd_bus_creds_get_pid(creds, &caller);
                if (r < 0) {
                        sd_bus_creds_unref(creds);
                        return r;
                }
                fprintf(log_file, "STOP %d\n", (int) caller);
                fflush(log_file);
        }
        r = sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/job/1");
        if (r < 0) {
                sd_bus_creds_unref(creds);
                return r;
        }
        if (stop_caller) {
                /* The unit's stop: SIGTERM; the bus and its other clients stay until the reboot. */
                (void) kill(caller, SIGTERM);
                sd_bus_creds_unref(creds);
                return sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 2000 * 1000, 0, on_kexec_timer, NULL);
        }
        /* systemd would now stop every unit; give the caller a moment to see the reply. */
        return sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 100 * 1000, 0, on_kexec_timer, NULL);
}

static int property_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", version);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD("StartUnit", "ss", "o", method_start_unit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int main(int argc, char **argv) {
        sd_event *e = NULL;
        sd_bus *bus = NULL;
        int r;

        for (; argc > 2 && argv[1][0] == '-'; argv++, argc--)
                if (strcmp(argv[1], "--refuse-first") == 0)
                        refuse = 1;
                else if (strcmp(argv[1], "--stop-caller") == 0)
                        stop_caller = true;
                else if (strncmp(argv[1], "--version=", 10) == 0)
                        version = argv[1] + 10;
                else
                        break;
        if (argc != 2) {
                fprintf(stderr, "usage: fake-systemd1 [--refuse-first] [--stop-caller] [--version=STR] LOGFILE\n");
                return 2;
        }
        log_file = fopen(argv[1], "ae");
        if (!log_file)
                return 1;
        r = sd_event_default(&e);
        if (r >= 0)
                r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, e, 0);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                             manager_vtable, e);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0);
        if (r < 0) {
                fprintf(stderr, "fake-systemd1: %s\n", strerror(-r));
                return 1;
        }
        fprintf(log_file, "READY\n");
        fflush(log_file);
        r = sd_event_loop(e);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(e);
        return r < 0 ? 1 : 0;
}
