/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lu-vfioctl: the operator's command line for lu-vfiod, a client of its D-Bus API
 * (org.luvfiod.LiveUpdate1, docs/dbus.md). Human tables by default, --json for
 * automation; exit codes in lu-vfioctl(1).
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "macro.h"
#include "polkit-agent.h"

#define DEST  "org.luvfiod.LiveUpdate1"
#define PATH  "/org/luvfiod/LiveUpdate1"
#define IFACE "org.luvfiod.LiveUpdate1"

enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_DENIED = 3,
        EXIT_STATE = 4,
        EXIT_PRECONDITION = 5,
        EXIT_TIMEOUT = 6,
        EXIT_CANCELLED = 7,
        EXIT_KERNEL = 8,
        EXIT_UNREACHABLE = 9,
        EXIT_NO_VM = 10,
};

static bool arg_json = false;
static bool arg_ask_password = true;
static bool arg_force = false;
static bool arg_reuse_cmdline = false;
static bool arg_check = false;
static const char *arg_initrd = NULL;
static const char *arg_cmdline = NULL;
static uint64_t arg_timeout_ms = 0;

/* Version of the --json output (docs/json.md): every object printed carries "schema". A
 * field is never removed or changes meaning within a schema version; new fields may appear. */
#define JSON_SCHEMA_VERSION 1

static void json_print(json_object *o) {
        if (json_object_is_type(o, json_type_object))
                json_object_object_add(o, "schema", json_object_new_int(JSON_SCHEMA_VERSION));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static json_object *json_object_unref(json_object *o) {
        json_object_put(o);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_unref);

/* ---------------------------------------------------------------- errors and exit codes */

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int exit_code_for(const sd_bus_error *e, int r) {
        static const struct { const char *name; int code; } map[] = {
                { SD_BUS_ERROR_ACCESS_DENIED, EXIT_DENIED },
                { SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, EXIT_DENIED },
                { IFACE ".Error.WrongState", EXIT_STATE },
                { IFACE ".Error.PreconditionFailed", EXIT_PRECONDITION },
                { IFACE ".Error.Timeout", EXIT_TIMEOUT },
                { IFACE ".Error.Cancelled", EXIT_CANCELLED },
                { IFACE ".Error.KernelError", EXIT_KERNEL },
                { IFACE ".Error.NoSuchVM", EXIT_NO_VM },
                { SD_BUS_ERROR_SERVICE_UNKNOWN, EXIT_UNREACHABLE },
                { SD_BUS_ERROR_NAME_HAS_NO_OWNER, EXIT_UNREACHABLE },
                { SD_BUS_ERROR_NO_REPLY, EXIT_UNREACHABLE },
                { SD_BUS_ERROR_DISCONNECTED, EXIT_UNREACHABLE },
        };

        if (e && e->name) {
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (strcmp(e->name, map[i].name) == 0)
                                return map[i].code;
                /* The bus could not start the daemon: a bus without systemd activation runs
                 * the activation file's Exec=/bin/false (Spawn.ChildExited), systemd's start
                 * of lu-vfiod.service failed (org.freedesktop.systemd1.*), or timed out. */
                if (startswith(e->name, "org.freedesktop.DBus.Error.Spawn.") ||
                    startswith(e->name, "org.freedesktop.systemd1.") ||
                    strcmp(e->name, "org.freedesktop.DBus.Error.TimedOut") == 0)
                        return EXIT_UNREACHABLE;
        }
        if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTCONN || r == -ECONNRESET)
                return EXIT_UNREACHABLE;
        if (r == -EACCES || r == -EPERM)
                return EXIT_DENIED;
        return EXIT_FAIL;
}

/* An error for people on stderr and, with --json, for programs on stdout. */
static int report_error(const char *name, const char *message, int code) {
        if (arg_json) {
                _cleanup_(json_object_unrefp) json_object *o = json_object_new_object();
                json_object_object_add(o, "error", json_object_new_string(name));
                json_object_object_add(o, "message", json_object_new_string(message));
                json_object_object_add(o, "exit", json_object_new_int(code));
                json_print(o);
        }
        fprintf(stderr, "lu-vfioctl: %s\n", message);
        return code;
}

static int fail(const sd_bus_error *e, int r, const char *what) {
        _cleanup_free_ char *message = NULL;
        const char *text = e && e->message ? e->message : strerror(r < 0 ? -r : r);

        if (asprintf(&message, "%s: %s", what, text) < 0)
                message = NULL;
        return report_error(e && e->name ? e->name : strerror(r < 0 ? -r : r), message ?: text, exit_code_for(e, r));
}

/* A usage error (exit 2); the JSON error name is "usage". */
_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        return report_error("usage", r < 0 ? "invalid command line" : message, EXIT_USAGE);
}

static int bus_connect(sd_bus **ret) {
        int r = sd_bus_open_system(ret);
        if (r < 0)
                return r;
        (void) sd_bus_set_allow_interactive_authorization(*ret, arg_ask_password);
        return 0;
}

/* ---------------------------------------------------------------- aligned tables */

#define TABLE_COLS_MAX 8

typedef struct Table {
        size_t n_cols, n_rows;
        char **cells;              /* row-major, n_rows * n_cols, row 0 is the header */
} Table;

static void table_free(Table *t) {
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->cells);
}

static int table_add(Table *t, const char *const *row) {
        char **c = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(char *));
        if (!c)
                return -ENOMEM;
        t->cells = c;
        for (size_t i = 0; i < t->n_cols; i++) {
                c[t->n_rows * t->n_cols + i] = strdup(row[i] ? row[i] : "-");
                if (!c[t->n_rows * t->n_cols + i])
                        return -ENOMEM;
        }
        t->n_rows++;
        return 0;
}

static void table_print(const Table *t) {
        size_t w[TABLE_COLS_MAX] = {};

        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_cols; c++)
                        w[c] = MAX(w[c], strlen(t->cells[r * t->n_cols + c]));
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_cols; c++) {
                        const char *s = t->cells[r * t->n_cols + c];
                        if (c + 1 == t->n_cols)
                                printf("%s\n", s);
                        else
                                printf("%-*s  ", (int) w[c], s);
                }
        }
}

/* ---------------------------------------------------------------- status */

typedef struct Status {
        const char *state, *phase, *abi, *current, *last;
        uint32_t vms, connected;
        uint64_t update_id;
        int incoming;
        sd_bus_message *reply;
} Status;

static int status_read(sd_bus *bus, Status *s, sd_bus_error *error) {
        const char *name;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, "org.freedesktop.DBus.Properties", "GetAll", error, &s->reply, "s", IFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(s->reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(s->reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(s->reply, "s", &name);
                if (r < 0)
                        break;
#define P(n, t, v) else if (strcmp(name, n) == 0) r = sd_bus_message_read(s->reply, "v", t, v)
                if (false) {}
                P("State", "s", &s->state);
                P("Phase", "s", &s->phase);
                P("KernelABI", "s", &s->abi);
                P("CurrentUpdate", "s", &s->current);
                P("LastUpdate", "s", &s->last);
                P("VMCount", "u", &s->vms);
                P("ConnectedVMCount", "u", &s->connected);
                P("UpdateId", "t", &s->update_id);
                P("BootIncoming", "b", &s->incoming);
                else
                        r = sd_bus_message_skip(s->reply, "v");
#undef P
                if (r >= 0)
                        r = sd_bus_message_exit_container(s->reply);
        }
        return r < 0 ? r : 0;
}

static json_object *json_parse_or_null(const char *s) {
        return s && s[0] ? json_tokener_parse(s) : NULL;
}

static int cmd_status(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Status s = {};
        int r;

        r = status_read(bus, &s, &error);
        if (r < 0) {
                sd_bus_message_unref(s.reply);
                return fail(&error, r, "status");
        }
        if (arg_json) {
                _cleanup_(json_object_unrefp) json_object *o = json_object_new_object();
                json_object_object_add(o, "state", json_object_new_string(s.state ?: ""));
                json_object_object_add(o, "phase", json_object_new_string(s.phase ?: ""));
                json_object_object_add(o, "abi", json_object_new_string(s.abi ?: ""));
                json_object_object_add(o, "vms", json_object_new_uint64(s.vms));
                json_object_object_add(o, "connected", json_object_new_uint64(s.connected));
                json_object_object_add(o, "update_id", json_object_new_uint64(s.update_id));
                json_object_object_add(o, "boot_incoming", json_object_new_boolean(s.incoming));
                json_object_object_add(o, "update", json_parse_or_null(s.current));
                json_print(o);
        } else {
                printf("State:       %s\n", s.state ?: "?");
                if (s.phase && s.phase[0])
                        printf("Last event:  %s\n", s.phase);
                printf("Kernel ABI:  %s\n", s.abi ?: "?");
                printf("VMs:         %u (%u connected)\n", s.vms, s.connected);
                if (s.update_id)
                        printf("Update:      %llu\n", (unsigned long long) s.update_id);
                printf("This boot:   %s\n", s.incoming ? "came in with a live update" : "regular boot");
        }
        sd_bus_message_unref(s.reply);
        return EXIT_OK;
}

/* ---------------------------------------------------------------- list, show */

/* Whether @update's record (CurrentUpdate or LastUpdate JSON) says @vm was released
 * without its VMM (finish, UnclaimedPolicy=release) rather than restored. */
static bool update_released_vm(json_object *update, const char *vm) {
        json_object *vms, *v;

        return update && json_object_object_get_ex(update, "vms", &vms) && json_object_is_type(vms, json_type_object) &&
               json_object_object_get_ex(vms, vm, &v) && json_object_is_type(v, json_type_object) &&
               json_object_object_get_ex(v, "t_released_us", NULL);
}

/* The records of the update in progress and of the last one, parsed; NULL where there is none. */
static void updates_read(sd_bus *bus, json_object **ret_current, json_object **ret_last) {
        _cleanup_free_ char *current = NULL, *last = NULL;

        *ret_current = *ret_last = NULL;
        if (sd_bus_get_property_string(bus, DEST, PATH, IFACE, "CurrentUpdate", NULL, &current) >= 0)
                *ret_current = json_parse_or_null(current);
        if (sd_bus_get_property_string(bus, DEST, PATH, IFACE, "LastUpdate", NULL, &last) >= 0)
                *ret_last = json_parse_or_null(last);
}

static int cmd_list(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_unrefp) json_object *a = json_object_new_array();
        _cleanup_(json_object_unrefp) json_object *current = NULL, *last = NULL;
        Table t = { .n_cols = 6 };
        const char *id;
        uint32_t uid, items;
        int connected, incoming, restored, r;

        r = sd_bus_call_method(bus, DEST, PATH, IFACE, "ListVMs", &error, &reply, NULL);
        if (r < 0)
                return fail(&error, r, "list");
        /* ListVMs says "not restored" for a VM released after the kexec; the update records say which. */
        updates_read(bus, &current, &last);
        r = table_add(&t, (const char *const[]) { "VM", "UID", "CONNECTED", "INCOMING", "RESTORED", "ITEMS" });
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(subbbu)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(subbbu)", &id, &uid, &connected, &incoming, &restored, &items)) > 0) {
                char u[16], n[16];
                /* Released: holds nothing and no VMM came back for it since (a returning VMM registers again). */
                bool released = !restored && !connected && items == 0 &&
                                (update_released_vm(current, id) || update_released_vm(last, id));
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_string(id));
                json_object_object_add(o, "uid", json_object_new_uint64(uid));
                json_object_object_add(o, "connected", json_object_new_boolean(connected));
                json_object_object_add(o, "incoming", json_object_new_boolean(incoming));
                json_object_object_add(o, "restored", json_object_new_boolean(restored));
                json_object_object_add(o, "released", json_object_new_boolean(released));
                json_object_object_add(o, "items", json_object_new_uint64(items));
                json_object_array_add(a, o);
                snprintf(u, sizeof(u), "%u", uid);
                snprintf(n, sizeof(n), "%u", items);
                r = table_add(&t, (const char *const[]) { id, u, connected ? "yes" : "no", incoming ? "yes" : "no",
                                                          restored ? "yes" : released ? "released" : "no", n });
        }
        if (r < 0) {
                table_free(&t);
                return fail(NULL, r, "list");
        }
        if (arg_json) {
                _cleanup_(json_object_unrefp) json_object *o = json_object_new_object();
                json_object_object_add(o, "vms", json_object_get(a));
                json_print(o);
        } else if (t.n_rows == 1)
                printf("No VMs.\n");
        else
                table_print(&t);
        table_free(&t);
        return EXIT_OK;
}

static int cmd_show(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_unrefp) json_object *a = json_object_new_array();
        Table t = { .n_cols = 7 };
        const char *label, *kind, *pci, *state, *session;
        uint64_t token;
        int delegated, r;

        r = sd_bus_call_method(bus, DEST, PATH, IFACE, "ListDevices", &error, &reply, "s", argv[1]);
        if (r < 0)
                return fail(&error, r, argv[1]);
        r = table_add(&t, (const char *const[]) { "LABEL", "KIND", "PCI", "STATE", "SESSION", "TOKEN", "MODE" });
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ssssstb)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ssssstb)", &label, &kind, &pci, &state, &session, &token, &delegated)) > 0) {
                char tok[24];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "label", label[0] ? json_object_new_string(label) : NULL);
                json_object_object_add(o, "kind", json_object_new_string(kind));
                json_object_object_add(o, "pci", pci[0] ? json_object_new_string(pci) : NULL);
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "session", json_object_new_string(session));
                json_object_object_add(o, "token", json_object_new_uint64(token));
                json_object_object_add(o, "mode", json_object_new_string(delegated ? "delegated" : "custodian"));
                json_object_array_add(a, o);
                snprintf(tok, sizeof(tok), "%llu", (unsigned long long) token);
                r = table_add(&t, (const char *const[]) { label[0] ? label : "-", kind, pci[0] ? pci : "-", state, session,
                                                          delegated && !label[0] ? "-" : tok,
                                                          delegated ? "delegated" : "custodian" });
        }
        if (r < 0) {
                table_free(&t);
                return fail(NULL, r, "show");
        }
        if (arg_json) {
                _cleanup_(json_object_unrefp) json_object *o = json_object_new_object();
                json_object_object_add(o, "vm", json_object_new_string(argv[1]));
                json_object_object_add(o, "devices", json_object_get(a));
                json_print(o);
        } else if (t.n_rows == 1)
                printf("VM %s holds nothing.\n", argv[1]);
        else
                table_print(&t);
        table_free(&t);
        return EXIT_OK;
}

/* ---------------------------------------------------------------- prepare, commit: live progress */

typedef struct Watch {
        bool done;
        bool rebooting;            /* the daemon said "rebooting": it goes away without a reply */
        int exit;
        uint32_t vms, acked;
        uint64_t update_id;
        const char *what;
} Watch;

static int commit_done(void) {
        if (arg_json)
                printf("{\"state\":\"rebooting\",\"schema\":%d}\n", JSON_SCHEMA_VERSION);
        else
                printf("lu-vfiod went away: the machine is rebooting into the new kernel.\n");
        return EXIT_OK;
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;
        const char *state, *vm, *message;

        if (sd_bus_message_read(m, "sss", &state, &vm, &message) < 0)
                return 0;
        if (!vm[0] && strcmp(message, "rebooting") == 0)
                w->rebooting = true;
        if (arg_json) {
                _cleanup_(json_object_unrefp) json_object *o = json_object_new_object();
                json_object_object_add(o, "event", json_object_new_string("progress"));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "vm", vm[0] ? json_object_new_string(vm) : NULL);
                json_object_object_add(o, "message", json_object_new_string(message));
                json_print(o);
        } else if (vm[0] && strncmp(message, "acknowledged ", 13) == 0) {
                w->acked++;
                printf("  [%u/%u] %s %s\n", w->acked, w->vms, vm, message);
        } else
                printf("  %s%s%s\n", vm[0] ? vm : "", vm[0] ? ": " : "", message);
        fflush(stdout);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        w->done = true;
        /* A commit succeeds by the daemon going away: past "rebooting" it kexecs (or systemd
         * stops it for the kexec), and a bus that outlives it answers for it. */
        if (e && w->rebooting && strcmp(w->what, "commit") == 0 &&
            (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) || sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED))) {
                w->exit = commit_done();
                return 0;
        }
        if (e) {
                w->exit = fail(e, sd_bus_message_get_errno(m), w->what);
                return 0;
        }
        if (strcmp(w->what, "prepare") == 0)
                (void) sd_bus_message_read(m, "t", &w->update_id);
        w->exit = EXIT_OK;
        return 0;
}

static int run_watched(sd_bus *bus, sd_bus_message *call, Watch *w, uint64_t timeout_usec) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *slot = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_trivial(bus, DEST, PATH, IFACE, "VMCount", &error, 'u', &w->vms);
        if (r < 0)
                return fail(&error, r, w->what);
        r = sd_bus_match_signal(bus, &match, DEST, PATH, IFACE, "Progress", on_progress, w);
        if (r < 0)
                return fail(NULL, r, "subscribing to progress");
        r = sd_bus_call_async(bus, &slot, call, on_reply, w, timeout_usec);
        if (r < 0)
                return fail(NULL, r, w->what);
        while (!w->done) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        /* The bus going away in the middle of a commit is the kexec. */
                        if (strcmp(w->what, "commit") == 0 && (r == -ECONNRESET || r == -ENOTCONN))
                                return commit_done();
                        return fail(NULL, r, w->what);
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0)
                        return fail(NULL, r, w->what);
        }
        return w->exit;
}

static int append_timeout(sd_bus_message *m) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_timeout_ms)
                r = sd_bus_message_append(m, "{sv}", "timeout-ms", "t", arg_timeout_ms);
        if (r >= 0 && arg_force)
                r = sd_bus_message_append(m, "{sv}", "force", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* A file named on our command line is unusable: what the daemon would say (exit 5). */
static int fail_precondition(const char *what, const char *path, int r) {
        _cleanup_free_ char *message = NULL;

        if (asprintf(&message, "%s %s: %s", what, path, strerror(-r)) < 0)
                message = NULL;
        return report_error(IFACE ".Error.PreconditionFailed", message ?: strerror(-r), EXIT_PRECONDITION);
}

/* prepare --check: CheckPrepare, one line per check; exit 0 unless prepare would be refused. */
static int check_prepare(sd_bus *bus, const char *kernel, const char *initrd) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(json_object_unrefp) json_object *o = json_object_new_object(), *a = json_object_new_array();
        const char *by = "";
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, IFACE, "CheckPrepare");
        if (r >= 0)
                r = sd_bus_message_append(m, "sss", kernel, initrd ?: "", arg_cmdline ?: "");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_force)
                r = sd_bus_message_append(m, "{sv}", "force", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return fail(NULL, r, "prepare --check");
        r = sd_bus_call(bus, m, 120ULL * 1000000ULL, &error, &reply);
        if (r < 0)
                return fail(&error, r, "prepare --check");
        r = sd_bus_message_enter_container(reply, 'a', "(sssb)");
        while (r >= 0) {
                const char *check, *result, *detail;
                int refuses;
                r = sd_bus_message_read(reply, "(sssb)", &check, &result, &detail, &refuses);
                if (r <= 0)
                        break;
                if (arg_json) {
                        json_object *c = json_object_new_object();
                        json_object_object_add(c, "check", json_object_new_string(check));
                        json_object_object_add(c, "result", json_object_new_string(result));
                        json_object_object_add(c, "detail", json_object_new_string(detail));
                        json_object_object_add(c, "refuses", json_object_new_boolean(refuses));
                        json_object_array_add(a, c);
                } else
                        printf("%-8s %-34s %s%s\n", result, check, detail, refuses ? " [refuses]" : "");
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &by);
        if (r < 0)
                return fail(NULL, r, "prepare --check: bad reply");
        if (arg_json) {
                json_object_object_add(o, "checks", json_object_get(a));
                json_object_object_add(o, "refused_by", by[0] ? json_object_new_string(by) : NULL);
                json_print(o);
        } else if (by[0])
                printf("Prepare would be refused (precondition-failed): %s.\n", by);
        else
                printf("Prepare would go ahead: no check refuses%s.\n", arg_force ? " (forced past the next-kernel checks)" : "");
        return by[0] ? EXIT_PRECONDITION : EXIT_OK;
}

static int cmd_prepare(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *kernel = NULL, *initrd = NULL;
        Watch w = { .what = "prepare" };
        int r;

        if (arg_cmdline && arg_reuse_cmdline)
                return usage_error("--cmdline and --reuse-cmdline exclude each other");
        /* The daemon resolves nothing relative to our working directory. */
        kernel = realpath(argv[1], NULL);
        if (!kernel)
                return fail_precondition("kernel image", argv[1], -errno);
        if (arg_initrd) {
                initrd = realpath(arg_initrd, NULL);
                if (!initrd)
                        return fail_precondition("initrd", arg_initrd, -errno);
        }
        if (arg_check)
                return check_prepare(bus, kernel, initrd);
        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, IFACE, "Prepare");
        if (r >= 0)
                r = sd_bus_message_append(m, "sss", kernel, initrd ?: "", arg_cmdline ?: "");
        if (r >= 0)
                r = append_timeout(m);
        if (r < 0)
                return fail(NULL, r, "prepare");
        if (!arg_json)
                printf("Preparing the live update to %s...\n", kernel);
        /* The daemon's deadline ends the call; ours only guards against a daemon that never answers. */
        r = run_watched(bus, m, &w, (arg_timeout_ms ? arg_timeout_ms * 1000 : 3600ULL * 1000000ULL) + 30ULL * 1000000ULL);
        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                _cleanup_(json_object_unrefp) json_object *o = json_object_new_object();
                json_object_object_add(o, "state", json_object_new_string("prepared"));
                json_object_object_add(o, "update", json_object_new_uint64(w.update_id));
                json_print(o);
        } else
                printf("Update %llu prepared: every VMM is ready. Run \"lu-vfioctl commit\" to switch kernels.\n",
                       (unsigned long long) w.update_id);
        return EXIT_OK;
}

static int cmd_commit(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Watch w = { .what = "commit" };
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, IFACE, "Commit");
        if (r >= 0)
                r = append_timeout(m);
        if (r < 0)
                return fail(NULL, r, "commit");
        if (!arg_json)
                printf("Committing: freezing VMs and rebooting into the new kernel...\n");
        r = run_watched(bus, m, &w, (arg_timeout_ms ? arg_timeout_ms * 1000 : 3600ULL * 1000000ULL) + 30ULL * 1000000ULL);
        return r;
}

static int cmd_simple(sd_bus *bus, const char *method, const char *what, const char *done) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, DEST, PATH, IFACE, method, &error, NULL, NULL);

        if (r < 0)
                return fail(&error, r, what);
        if (arg_json)
                printf("{\"result\":\"ok\",\"schema\":%d}\n", JSON_SCHEMA_VERSION);
        else
                printf("%s\n", done);
        return EXIT_OK;
}

static int cmd_cancel(sd_bus *bus, int argc, char **argv) {
        return cmd_simple(bus, "Cancel", "cancel", "Update cancelled: VMMs resume, the new kernel is unloaded.");
}

static int cmd_finish(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t n = 0;
        int r;

        r = sd_bus_call_method(bus, DEST, PATH, IFACE, "Finish", &error, &reply, "s", argc > 1 ? argv[1] : "");
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &n);
        if (r < 0)
                return fail(&error, r, "finish");
        if (arg_json)
                printf("{\"finished\":%u,\"schema\":%d}\n", n, JSON_SCHEMA_VERSION);
        else
                printf("Released %u VM(s) that were waiting for their VMM.\n", n);
        return EXIT_OK;
}

/* ---------------------------------------------------------------- last-update */

static void print_ms(const char *label, json_object *t, const char *key) {
        json_object *v;
        if (json_object_object_get_ex(t, key, &v))
                printf("%-38s %10.1f ms\n", label, json_object_get_double(v));
}

static int cmd_last_update(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_object_unrefp) json_object *t = NULL;
        json_object *vms;
        int r;

        r = sd_bus_get_property_string(bus, DEST, PATH, IFACE, "LastUpdate", &error, &text);
        if (r < 0)
                return fail(&error, r, "last-update");
        t = json_tokener_parse(text);
        if (arg_json) {
                /* The daemon's timeline record ({} when none), with the schema added. */
                if (!t || !json_object_is_type(t, json_type_object)) {
                        json_object_put(t);
                        t = json_object_new_object();
                }
                json_print(t);
                return EXIT_OK;
        }
        if (!t || json_object_object_length(t) == 0) {
                printf("No live update has completed yet.\n");
                return EXIT_OK;
        }
        printf("Update:    %lld\n", (long long) json_object_get_int64(json_object_object_get(t, "id")));
        printf("Result:    %s\n", json_object_get_string(json_object_object_get(t, "result")) ?: "?");
        if (json_object_object_get(t, "message"))
                printf("Message:   %s\n", json_object_get_string(json_object_object_get(t, "message")));
        if (json_object_object_get_ex(t, "released", &vms) && json_object_is_type(vms, json_type_array)) {
                printf("Released:  ");
                for (size_t i = 0; i < json_object_array_length(vms); i++)
                        printf("%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(vms, i)));
                printf(" (without their VMM: their memory and devices are gone)\n");
        }
        printf("Kernel:    %s\n", json_object_get_string(json_object_object_get(t, "kernel")) ?: "?");
        printf("ABI:       %s\n", json_object_get_string(json_object_object_get(t, "abi")) ?: "?");
        printf("\n");
        print_ms("prepare", t, "prepare_ms");
        print_ms("freeze (commit->registry)", t, "freeze_ms");
        print_ms("registry, sync, kexec -> daemon start", t, "reboot_to_start_ms");
        print_ms("retrieve", t, "retrieve_ms");
        print_ms("restore (all VMs)", t, "restore_ms");
        print_ms("total", t, "total_ms");
        if (json_object_object_get_ex(t, "vms", &vms) && json_object_is_type(vms, json_type_object) &&
            json_object_object_length(vms) > 0) {
                Table tab = { .n_cols = 3 };
                printf("\n");
                r = table_add(&tab, (const char *const[]) { "VM", "RECLAIMED_MS", "RESTORED_MS" });
                json_object_object_foreach(vms, k, v) {
                        char a[32] = "-", b[32] = "-";
                        json_object *x;
                        if (json_object_object_get_ex(v, "reclaimed_ms", &x))
                                snprintf(a, sizeof(a), "%.1f", json_object_get_double(x));
                        if (json_object_object_get_ex(v, "restored_ms", &x))
                                snprintf(b, sizeof(b), "%.1f", json_object_get_double(x));
                        else if (json_object_object_get_ex(v, "released_ms", &x))
                                snprintf(b, sizeof(b), "released");
                        if (r >= 0)
                                r = table_add(&tab, (const char *const[]) { k, a, b });
                }
                if (r >= 0)
                        table_print(&tab);
                table_free(&tab);
        }
        return EXIT_OK;
}

/* ---------------------------------------------------------------- metrics */

/* Prometheus text exposition format (version 0.0.4) for node_exporter's textfile collector:
 * lu-vfioctl metrics > /var/lib/prometheus/node-exporter/lu-vfiod.prom.$$ && mv ... (lu-vfioctl(1)).
 * Durations in seconds, as Prometheus names them; per update and per VM from the LastUpdate timeline. */

static void metric_head(const char *name, const char *type, const char *help) {
        printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the format wants. */
static void metric_label_print(const char *v) {
        for (; *v; v++)
                if (*v == '\\' || *v == '"')
                        printf("\\%c", *v);
                else if (*v == '\n')
                        fputs("\\n", stdout);
                else
                        putchar(*v);
}

static void metric_vm(const char *name, const char *vm, const char *phase, double value) {
        printf("%s{vm=\"", name);
        metric_label_print(vm);
        if (phase)
                printf("\",phase=\"%s", phase);
        printf("\"} %.9g\n", value);
}

/* Also written when the bus cannot be reached, so the textfile collector sees the daemon down. */
static void metrics_print_up(bool up) {
        metric_head("lu_vfiod_up", "gauge", "Whether lu-vfiod answered on D-Bus.");
        printf("lu_vfiod_up %d\n", up);
}

typedef struct ItemCount {
        char kind[16], state[16];
        unsigned n;
} ItemCount;

#define METRICS_ITEM_KINDS_MAX 32

static int metrics_count_items(sd_bus *bus, const char *vm, ItemCount *counts, size_t *n_counts, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *label, *kind, *pci, *state, *session;
        uint64_t token;
        int delegated, r;

        r = sd_bus_call_method(bus, DEST, PATH, IFACE, "ListDevices", error, &reply, "s", vm);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssssstb)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ssssstb)", &label, &kind, &pci, &state, &session, &token, &delegated)) > 0) {
                size_t i;
                for (i = 0; i < *n_counts; i++)
                        if (strcmp(counts[i].kind, kind) == 0 && strcmp(counts[i].state, state) == 0)
                                break;
                if (i == *n_counts) {
                        /* the daemon's kinds and states are short fixed words; anything else is a bug there */
                        if (*n_counts == METRICS_ITEM_KINDS_MAX || strlen(kind) >= sizeof(counts[i].kind) ||
                            strlen(state) >= sizeof(counts[i].state))
                                return -EBADMSG;
                        strcpy(counts[i].kind, kind);
                        strcpy(counts[i].state, state);
                        counts[i].n = 0;
                        (*n_counts)++;
                }
                counts[i].n++;
        }
        return r < 0 ? r : 0;
}

static int cmd_metrics(sd_bus *bus, int argc, char **argv) {
        static const char *const states[] = { "idle", "preparing", "prepared", "freezing", "frozen", "restoring", "finishing" };
        static const struct { const char *key, *phase; } phases[] = {
                { "prepare_ms", "prepare" }, { "freeze_ms", "freeze" }, { "reboot_to_start_ms", "reboot_to_start" },
                { "retrieve_ms", "retrieve" }, { "restore_ms", "restore" }, { "total_ms", "total" },
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *vms = NULL;
        _cleanup_(json_object_unrefp) json_object *t = NULL;
        ItemCount counts[METRICS_ITEM_KINDS_MAX];
        size_t n_counts = 0;
        Status s = {};
        const char *id;
        uint32_t uid, items;
        int connected, incoming, restored, r;
        json_object *v, *tvms;

        r = status_read(bus, &s, &error);
        if (r >= 0)
                r = sd_bus_call_method(bus, DEST, PATH, IFACE, "ListVMs", &error, &vms, NULL);
        metrics_print_up(r >= 0);
        if (r < 0) {
                sd_bus_message_unref(s.reply);
                return fail(&error, r, "metrics");
        }
        t = json_parse_or_null(s.last);

        metric_head("lu_vfiod_info", "gauge", "The kernel's Live Update ABI the daemon drives (upstream, v4, none).");
        printf("lu_vfiod_info{abi=\"");
        metric_label_print(s.abi ?: "");
        printf("\"} 1\n");
        metric_head("lu_vfiod_state", "gauge", "The update state: 1 for the current one.");
        for (size_t i = 0; i < ELEMENTSOF(states); i++)
                printf("lu_vfiod_state{state=\"%s\"} %d\n", states[i], s.state && strcmp(s.state, states[i]) == 0);
        metric_head("lu_vfiod_boot_incoming", "gauge", "Whether this boot came in with a live update.");
        printf("lu_vfiod_boot_incoming %d\n", s.incoming ? 1 : 0);
        metric_head("lu_vfiod_update_id", "gauge", "Id of the current or last update (0: none yet).");
        printf("lu_vfiod_update_id %llu\n", (unsigned long long) s.update_id);
        metric_head("lu_vfiod_vms", "gauge", "VMs known to the daemon.");
        printf("lu_vfiod_vms %u\n", s.vms);
        metric_head("lu_vfiod_vms_connected", "gauge", "VMs with a connected VMM.");
        printf("lu_vfiod_vms_connected %u\n", s.connected);
        sd_bus_message_unref(s.reply);

        /* per VM: one gauge family at a time, so the list is walked once per family */
        static const char *const vm_families[][2] = {
                { "lu_vfiod_vm_connected", "Whether the VM's VMM is connected." },
                { "lu_vfiod_vm_incoming", "Whether the VM has preserved files waiting to be reclaimed after a live update." },
                { "lu_vfiod_vm_restored", "Whether the VM was restored after the live update of this boot." },
                { "lu_vfiod_vm_items", "Files the daemon holds for the VM." },
        };
        for (size_t f = 0; f < ELEMENTSOF(vm_families); f++) {
                metric_head(vm_families[f][0], "gauge", vm_families[f][1]);
                r = sd_bus_message_rewind(vms, true);
                if (r >= 0)
                        r = sd_bus_message_enter_container(vms, 'a', "(subbbu)");
                while (r >= 0 && (r = sd_bus_message_read(vms, "(subbbu)", &id, &uid, &connected, &incoming, &restored, &items)) > 0) {
                        double val = f == 0 ? (double) connected : f == 1 ? (double) incoming : f == 2 ? (double) restored : (double) items;
                        metric_vm(vm_families[f][0], id, NULL, val);
                        if (f == 0 && r >= 0)
                                r = metrics_count_items(bus, id, counts, &n_counts, &error);
                }
                if (r < 0)
                        return fail(&error, r, "metrics");
        }
        metric_head("lu_vfiod_items", "gauge", "Files the daemon holds, by kind and state.");
        for (size_t i = 0; i < n_counts; i++)
                printf("lu_vfiod_items{kind=\"%s\",state=\"%s\"} %u\n", counts[i].kind, counts[i].state, counts[i].n);

        if (!t || !json_object_object_get_ex(t, "id", &v))
                return EXIT_OK;           /* no update finished yet: no timeline figures */
        metric_head("lu_vfiod_last_update_id", "gauge", "Id of the last finished, cancelled or failed update.");
        printf("lu_vfiod_last_update_id %lld\n", (long long) json_object_get_int64(v));
        metric_head("lu_vfiod_last_update_result", "gauge", "Result of the last update: 1 for its result.");
        static const char *const results[] = { "done", "cancelled", "failed", "abandoned" };
        const char *result = json_object_get_string(json_object_object_get(t, "result")) ?: "";
        for (size_t i = 0; i < ELEMENTSOF(results); i++)
                printf("lu_vfiod_last_update_result{result=\"%s\"} %d\n", results[i], strcmp(result, results[i]) == 0);
        if (json_object_object_get_ex(t, "t_end_us", &v)) {
                metric_head("lu_vfiod_last_update_end_timestamp_seconds", "gauge", "When the last update ended (Unix time).");
                printf("lu_vfiod_last_update_end_timestamp_seconds %.6f\n", (double) json_object_get_int64(v) / 1e6);
        }
        metric_head("lu_vfiod_last_update_duration_seconds", "gauge",
                    "Phases of the last update: prepare, freeze (commit to registry write), reboot_to_start, retrieve, restore (daemon start to every VM restored), total.");
        for (size_t i = 0; i < ELEMENTSOF(phases); i++)
                if (json_object_object_get_ex(t, phases[i].key, &v))
                        printf("lu_vfiod_last_update_duration_seconds{phase=\"%s\"} %.6f\n", phases[i].phase,
                               json_object_get_double(v) / 1000.0);
        if (!json_object_object_get_ex(t, "vms", &tvms) || !json_object_is_type(tvms, json_type_object))
                return EXIT_OK;
        metric_head("lu_vfiod_last_update_vm_seconds", "gauge",
                    "Per VM in the last update: reclaimed and restored (from the daemon's start in the new boot), blackout (its freeze acknowledgement to its restore).");
        json_object_object_foreach(tvms, vm, tv) {
                json_object *a, *b;
                if (json_object_object_get_ex(tv, "reclaimed_ms", &a))
                        metric_vm("lu_vfiod_last_update_vm_seconds", vm, "reclaimed", json_object_get_double(a) / 1000.0);
                if (json_object_object_get_ex(tv, "restored_ms", &a))
                        metric_vm("lu_vfiod_last_update_vm_seconds", vm, "restored", json_object_get_double(a) / 1000.0);
                if (json_object_object_get_ex(tv, "t_freeze_ack_us", &a) && json_object_object_get_ex(tv, "t_restored_us", &b))
                        metric_vm("lu_vfiod_last_update_vm_seconds", vm, "blackout",
                                  (double) (json_object_get_int64(b) - json_object_get_int64(a)) / 1e6);
        }
        return EXIT_OK;
}

/* ---------------------------------------------------------------- command line */

static void help(void) {
        printf("Usage: lu-vfioctl [OPTIONS] COMMAND [ARGS]\n"
               "Operate lu-vfiod: kernel live updates that keep VMs with VFIO devices running.\n\n"
               "Commands:\n"
               "  status                   update state, kernel ABI, VM counts\n"
               "  list                     VMs known to the daemon\n"
               "  show VM                  preserved devices and memory of one VM\n"
               "  prepare KERNEL           load KERNEL and get every VMM ready\n"
               "  prepare --check KERNEL   run every pre-flight check of prepare, load nothing\n"
               "  commit                   freeze VMMs and kexec into the prepared kernel\n"
               "  cancel                   cancel the update before the reboot\n"
               "  finish [VM]              release VMs whose VMM did not come back\n"
               "  last-update              timeline of the last update\n"
               "  metrics                  Prometheus text format (node_exporter textfile collector)\n\n"
               "Options:\n"
               "  --initrd=PATH            initrd for prepare\n"
               "  --cmdline=STRING         kernel command line for prepare\n"
               "  --reuse-cmdline          use the running kernel's command line (default)\n"
               "  --timeout=SEC            VMM acknowledgement deadline for prepare/commit\n"
               "  --force                  commit even if VMMs miss the freeze deadline; prepare\n"
               "                           past failed checks of the next kernel itself\n"
               "  --check                  with prepare: only report the pre-flight checks\n"
               "  --json                   machine-readable output\n"
               "  --no-ask-password        do not ask for interactive polkit authorization\n"
               "  -h --help                this help\n"
               "  --version                version\n\n"
               "See lu-vfioctl(1) for exit codes.\n");
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_INITRD = 0x100, ARG_CMDLINE, ARG_REUSE, ARG_TIMEOUT, ARG_FORCE, ARG_CHECK, ARG_JSON, ARG_NO_ASK, ARG_VERSION };
        static const struct option options[] = {
                { "initrd", required_argument, NULL, ARG_INITRD },
                { "cmdline", required_argument, NULL, ARG_CMDLINE },
                { "reuse-cmdline", no_argument, NULL, ARG_REUSE },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "force", no_argument, NULL, ARG_FORCE },
                { "check", no_argument, NULL, ARG_CHECK },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        /* Known before any error is reported, so that even usage errors come as JSON. */
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--json") == 0)
                        arg_json = true;
        opterr = 0;   /* usage_error() reports it */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_INITRD:
                        arg_initrd = optarg;
                        break;
                case ARG_CMDLINE:
                        if (!optarg[0]) {
                                usage_error("--cmdline must not be empty (use --reuse-cmdline)");
                                return -EINVAL;
                        }
                        arg_cmdline = optarg;
                        break;
                case ARG_REUSE:
                        arg_reuse_cmdline = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        double d;
                        errno = 0;
                        d = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(d > 0) || d > 7 * 86400) {
                                usage_error("--timeout: not a number of seconds in (0, 604800]: %s", optarg);
                                return -EINVAL;
                        }
                        arg_timeout_ms = (uint64_t) (d * 1000);
                        if (arg_timeout_ms == 0)
                                arg_timeout_ms = 1;
                        break;
                }
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_CHECK:
                        arg_check = true;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_ASK:
                        arg_ask_password = false;
                        break;
                case ARG_VERSION:
                        printf("lu-vfioctl %s\n", PROJECT_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        usage_error("invalid option \"%s\" (see --help)", argv[optind - 1]);
                        return -EINVAL;
                }
        return 1;
}

typedef struct Verb {
        const char *name;
        int min_args, max_args;   /* counting the verb itself */
        int (*run)(sd_bus *bus, int argc, char **argv);
        bool authorized;          /* a polkit action guards it (docs/dbus.md) */
} Verb;

static void polkit_agent_closep(pid_t *pid) {
        polkit_agent_close(*pid);
}

int main(int argc, char **argv) {
        static const Verb verbs[] = {
                { "status", 1, 1, cmd_status },
                { "list", 1, 1, cmd_list },
                { "show", 2, 2, cmd_show },
                { "prepare", 2, 2, cmd_prepare, true },
                { "commit", 1, 1, cmd_commit, true },
                { "cancel", 1, 1, cmd_cancel, true },
                { "finish", 1, 2, cmd_finish, true },
                { "last-update", 1, 1, cmd_last_update },
                { "metrics", 1, 1, cmd_metrics },
        };
        _cleanup_(polkit_agent_closep) pid_t agent = 0;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        int r, n;

        setvbuf(stdout, NULL, _IOLBF, 0);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;
        n = argc - optind;
        if (n == 0) {
                if (arg_json)
                        return usage_error("no command given (see --help)");
                help();
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(argv[optind], verbs[i].name) == 0)
                        verb = &verbs[i];
        if (!verb)
                return usage_error("unknown command \"%s\" (see --help)", argv[optind]);
        if (n < verb->min_args || n > verb->max_args)
                return usage_error("%s: wrong number of arguments (see --help)", verb->name);
        if ((arg_initrd || arg_cmdline || arg_reuse_cmdline) && verb->run != cmd_prepare)
                return usage_error("--initrd, --cmdline and --reuse-cmdline apply to prepare only");
        if (arg_force && verb->run != cmd_commit && verb->run != cmd_prepare)
                return usage_error("--force applies to prepare and commit only");
        if (arg_check && verb->run != cmd_prepare)
                return usage_error("--check applies to prepare only");
        if (arg_check && arg_timeout_ms)
                return usage_error("--timeout does not apply to prepare --check");
        if (arg_json && verb->run == cmd_metrics)
                return usage_error("metrics has its own format; --json does not apply");
        r = bus_connect(&bus);
        if (r < 0) {
                if (verb->run == cmd_metrics)
                        metrics_print_up(false);
                /* Whatever the errno: no bus means lu-vfiod cannot be reached. */
                fail(NULL, r, "cannot connect to the system bus");
                return EXIT_UNREACHABLE;
        }
        /* Without an agent for this process, polkit cannot ask a person at a terminal. */
        if (verb->authorized && arg_ask_password) {
                r = polkit_agent_open(&agent);
                if (r < 0 && !arg_json)
                        fprintf(stderr, "lu-vfioctl: cannot start the polkit agent %s (%s): going on without it\n",
                                "pkttyagent", strerror(-r));
        }
        return verb->run(bus, n, argv + optind);
}
