/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-polkit: a STAND-IN for polkitd (docs/reliability.md §6): the real polkitd decides in
 * tests/realstack (realstack-dbus-polkit); this one stays for the interactive authorization
 * that succeeds, which the real one shows only with an authentication agent in a logind
 * session, and for the ASan build. org.freedesktop.PolicyKit1 on a test bus, answering
 * CheckAuthorization with a fixed policy:
 *   org.luvfiod.LiveUpdate1.prepare  authorized only when the caller allowed interaction
 *                                    (flag 1), otherwise "challenge" (not authorized)
 *   anything else                    denied
 * Every check is logged: "CHECK <action> flags=<n> subject=<bus name>".
 *
 *   fake-polkit LOGFILE     ($DBUS_SYSTEM_BUS_ADDRESS: the bus)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

static FILE *log_file;

static int method_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *kind, *action, *cancel, *key, *name = "?";
        uint32_t flags;
        int authorized, challenge, r;

        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &kind);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && strcmp(key, "name") == 0)
                        r = sd_bus_message_read(m, "v", "s", &name);
                else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &action);
        if (r >= 0)
                r = sd_bus_message_skip(m, "a{ss}");
        if (r >= 0)
                r = sd_bus_message_read(m, "us", &flags, &cancel);
        if (r < 0)
                return r;
        fprintf(log_file, "CHECK %s flags=%u subject=%s:%s\n", action, flags, kind, name);
        fflush(log_file);
        authorized = strcmp(action, "org.luvfiod.LiveUpdate1.prepare") == 0 && (flags & 1);
        challenge = strcmp(action, "org.luvfiod.LiveUpdate1.prepare") == 0 && !(flags & 1);
        return sd_bus_reply_method_return(m, "(bba{ss})", authorized, challenge, 0);
}

static const sd_bus_vtable authority_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", method_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int main(int argc, char **argv) {
        sd_event *e = NULL;
        sd_bus *bus = NULL;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: fake-polkit LOGFILE\n");
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
                r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/PolicyKit1/Authority",
                                             "org.freedesktop.PolicyKit1.Authority", authority_vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.PolicyKit1", 0);
        if (r < 0) {
                fprintf(stderr, "fake-polkit: %s\n", strerror(-r));
                return 1;
        }
        fprintf(log_file, "READY\n");
        fflush(log_file);
        r = sd_event_loop(e);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(e);
        return r < 0 ? 1 : 0;
}
