/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.luvfiod.LiveUpdate1: method translation onto manager_*, polkit checks, signals; see dbus-service.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/dbus-service.h"
#include "system/log.h"

#define POLKIT_TIMEOUT_USEC             (25ULL * 1000000ULL)
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (300ULL * 1000000ULL)
#define TIMEOUT_MS_MAX                  (7ULL * 86400 * 1000)
/* Reconnecting after the bus went away (or was not there yet): 250 ms doubling to 10 s. */
#define RECONNECT_FIRST_USEC            (250ULL * 1000ULL)
#define RECONNECT_MAX_USEC              (10ULL * 1000000ULL)

typedef enum Op {
        OP_PREPARE,
        OP_COMMIT,
        OP_CANCEL,
        OP_FINISH,
        OP_CHECK_PREPARE,
} Op;

static const char *const op_names[] = {
        [OP_PREPARE] = "Prepare",
        [OP_COMMIT] = "Commit",
        [OP_CANCEL] = "Cancel",
        [OP_FINISH] = "Finish",
        [OP_CHECK_PREPARE] = "CheckPrepare",
};

typedef struct AuthRequest AuthRequest;
typedef struct DbusCall DbusCall;

struct DbusService {
        sd_event *event;
        Manager *m;
        sd_bus *bus;                     /* NULL while disconnected */
        DbusServiceOptions opts;
        char *address;                   /* opts.address, kept for reconnecting */
        sd_bus_slot *object_slot;
        sd_bus_slot *manager_slot;
        sd_bus_slot *disconnect_slot;
        sd_event_source *reconnect;
        uint64_t reconnect_usec;         /* next delay */
        bool lost_logged;                /* the current outage was logged */
        sd_event_source *post;
        AuthRequest *auths;
        DbusCall *calls;
        bool subscribed;

        /* what PropertiesChanged last told the bus */
        bool published;
        UpdateState pub_state;
        uint32_t pub_vms, pub_connected;
        uint64_t pub_update_id;
        bool pub_incoming;
        char *phase;
        bool phase_dirty;
};

/* A state-changing call waiting for polkit. */
struct AuthRequest {
        DbusService *s;
        sd_bus_message *msg;
        sd_bus_slot *slot;
        Op op;
        AuthRequest *next;
};

/* A manager Call answered by a D-Bus reply; ->call must stay the first member. */
struct DbusCall {
        Call call;
        DbusService *s;
        sd_bus_message *msg;
        Op op;
        DbusCall *next;
};

/* ------------------------------------------------------------------ errors */

const char *dbus_error_name(ProtoErrorCode code, int error) {
        switch (code) {
        case PROTO_E_INVALID_PARAMS:
                return error == ENOENT ? DBUS_SERVICE_ERROR ".NoSuchVM" : SD_BUS_ERROR_INVALID_ARGS;
        case PROTO_E_PERMISSION_DENIED:
                return SD_BUS_ERROR_ACCESS_DENIED;
        case PROTO_E_STATE:
                return DBUS_SERVICE_ERROR ".WrongState";
        case PROTO_E_PRECONDITION:
                return DBUS_SERVICE_ERROR ".PreconditionFailed";
        case PROTO_E_KERNEL:
                return DBUS_SERVICE_ERROR ".KernelError";
        case PROTO_E_TIMEOUT:
                return DBUS_SERVICE_ERROR ".Timeout";
        case PROTO_E_CANCELLED:
                return DBUS_SERVICE_ERROR ".Cancelled";
        case PROTO_E_LIMIT:
                return DBUS_SERVICE_ERROR ".LimitReached";
        default:
                return DBUS_SERVICE_ERROR ".Failed";
        }
}

static int reply_proto_error(sd_bus_message *msg, const ProtoError *e) {
        return sd_bus_reply_method_errorf(msg, dbus_error_name(e->code, e->error), "%s", e->message);
}

static int set_proto_error(sd_bus_error *error, const ProtoError *e) {
        return sd_bus_error_setf(error, dbus_error_name(e->code, e->error), "%s", e->message);
}

/* ------------------------------------------------------------------ manager calls */

static void dbus_call_unlink(DbusCall *dc) {
        if (!dc->s)
                return;
        for (DbusCall **p = &dc->s->calls; *p; p = &(*p)->next)
                if (*p == dc) {
                        *p = dc->next;
                        break;
                }
        dc->s = NULL;
}

static void on_call_complete(Call *c, json_object *result, int *fds, size_t n_fds, const ProtoError *err) {
        DbusCall *dc = (DbusCall *) c;
        int r = 0;

        for (size_t i = 0; i < n_fds; i++)
                if (fds[i] >= 0)
                        (void) close(fds[i]);
        if (!c->gone && dc->msg) {
                if (err && err->code != PROTO_OK)
                        r = reply_proto_error(dc->msg, err);
                else if (dc->op == OP_PREPARE) {
                        json_object *id = NULL;
                        (void) json_object_object_get_ex(result, "update", &id);
                        r = sd_bus_reply_method_return(dc->msg, "t", (uint64_t) json_object_get_int64(id));
                } else
                        r = sd_bus_reply_method_return(dc->msg, NULL);
                if (r < 0)
                        log_warning_errno(r, "Cannot send the reply to %s: %m", op_names[dc->op]);
        }
        json_object_put(result);
        dbus_call_unlink(dc);
        sd_bus_message_unref(dc->msg);
        free(dc);
}

static DbusCall *dbus_call_new(DbusService *s, sd_bus_message *msg, Op op) {
        DbusCall *dc = calloc(1, sizeof(DbusCall));

        if (!dc)
                return NULL;
        dc->call.complete = on_call_complete;
        dc->call.userdata = s;
        dc->s = s;
        dc->msg = sd_bus_message_ref(msg);
        dc->op = op;
        dc->next = s->calls;
        s->calls = dc;
        return dc;
}

/* ------------------------------------------------------------------ the operations (after authorization) */

static const char *jstr(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return "";
        return json_object_get_string(v);
}

static bool jbool(json_object *o, const char *key) {
        return json_object_get_boolean(json_object_object_get(o, key));
}


/* Options dictionaries: a{sv} with the keys documented per method; anything else is refused. */
static int read_timeout(sd_bus_message *msg, uint64_t *ret, sd_bus_error *error) {
        char type;
        const char *contents;
        int r;

        r = sd_bus_message_peek_type(msg, &type, &contents);
        if (r < 0)
                return r;
        if (contents && strcmp(contents, "t") == 0)
                r = sd_bus_message_read(msg, "v", "t", ret);
        else if (contents && strcmp(contents, "u") == 0) {
                uint32_t u;
                r = sd_bus_message_read(msg, "v", "u", &u);
                *ret = u;
        } else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "timeout-ms must be of type t or u");
        if (r < 0)
                return r;
        if (*ret > TIMEOUT_MS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "timeout-ms exceeds 7 days");
        return 0;
}

static int read_options(sd_bus_message *msg, bool allow_timeout, bool allow_force, uint64_t *timeout_ms, bool *force,
                        sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                if (allow_timeout && strcmp(key, "timeout-ms") == 0)
                        r = read_timeout(msg, timeout_ms, error);
                else if (allow_force && strcmp(key, "force") == 0) {
                        int b;
                        if (sd_bus_message_peek_type(msg, NULL, &key) < 0 || !key || strcmp(key, "b") != 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "force must be of type b");
                        r = sd_bus_message_read(msg, "v", "b", &b);
                        *force = b;
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown option \"%.64s\"", key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* Prepare's and CheckPrepare's arguments: (s kernel, s initrd, s cmdline, a{sv} options). */
static int read_prepare_args(sd_bus_message *msg, bool allow_timeout, const char **kernel, const char **initrd,
                             const char **cmdline, uint64_t *timeout_ms, bool *force, sd_bus_error *error) {
        int r;

        r = sd_bus_message_read(msg, "sss", kernel, initrd, cmdline);
        if (r < 0)
                return r;
        r = read_options(msg, allow_timeout, true, timeout_ms, force, error);
        if (r < 0)
                return r;
        if ((*kernel)[0] != '/')
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "kernel must be an absolute path");
        if ((*initrd)[0] && (*initrd)[0] != '/')
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "initrd must be empty or an absolute path");
        /* An empty initrd means none; an empty command line "the running kernel's" (lu-vfioctl --reuse-cmdline). */
        if (!(*initrd)[0])
                *initrd = NULL;
        if (!(*cmdline)[0])
                *cmdline = NULL;
        return 0;
}

static int op_prepare(DbusService *s, sd_bus_message *msg, sd_bus_error *error) {
        const char *kernel, *initrd, *cmdline;
        uint64_t timeout_ms = 0;
        bool force = false;
        DbusCall *dc;
        int r;

        r = read_prepare_args(msg, true, &kernel, &initrd, &cmdline, &timeout_ms, &force, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        dc = dbus_call_new(s, msg, OP_PREPARE);
        if (!dc)
                return -ENOMEM;
        manager_prepare(s->m, kernel, initrd, cmdline, force, timeout_ms, &dc->call);
        return 1;
}

/* Every pre-flight check, nothing loaded: a(sssb) of (check, result, detail, refuses), and the refusing check or "". */
static int op_check_prepare(DbusService *s, sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_put_nullp) json_object *res = NULL;
        const char *kernel, *initrd, *cmdline;
        json_object *checks = NULL, *by = NULL;
        uint64_t timeout_ms = 0;
        bool force = false;
        int r;

        r = read_prepare_args(msg, false, &kernel, &initrd, &cmdline, &timeout_ms, &force, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        res = manager_check_prepare(s->m, kernel, initrd, cmdline, force);
        if (!res || !json_object_object_get_ex(res, "checks", &checks))
                return -ENOMEM;
        (void) json_object_object_get_ex(res, "refused_by", &by);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssb)");
        for (size_t i = 0; r >= 0 && i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                r = sd_bus_message_append(reply, "(sssb)", jstr(c, "check"), jstr(c, "result"), jstr(c, "detail"),
                                          jbool(c, "refuses"));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", by ? json_object_get_string(by) : "");
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int op_commit(DbusService *s, sd_bus_message *msg, sd_bus_error *error) {
        uint64_t timeout_ms = 0;
        bool force = false;
        DbusCall *dc;
        int r;

        r = read_options(msg, true, true, &timeout_ms, &force, error);
        if (r < 0)
                return r;
        dc = dbus_call_new(s, msg, OP_COMMIT);
        if (!dc)
                return -ENOMEM;
        /* Success is the kexec itself: the reply is only ever an error. */
        manager_commit(s->m, force, timeout_ms, &dc->call);
        return 1;
}

static int op_cancel(DbusService *s, sd_bus_message *msg, sd_bus_error *error) {
        ProtoError e = {};

        if (manager_cancel(s->m, &e) < 0)
                return set_proto_error(error, &e);
        return sd_bus_reply_method_return(msg, NULL);
}

static int op_finish(DbusService *s, sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(json_object_put_nullp) json_object *list = NULL;
        json_object *vms = NULL;
        const char *vm;
        ProtoError e = {};
        size_t n = 0;
        int r;

        r = sd_bus_message_read(msg, "s", &vm);
        if (r < 0)
                return r;
        if (vm[0]) {
                if (manager_release_vm(s->m, vm, &e) < 0)
                        return set_proto_error(error, &e);
                return sd_bus_reply_method_return(msg, "u", 1);
        }
        /* Every VM still waiting for its VMM: the operator gives up on them now. */
        list = manager_list(s->m);
        if (!list || !json_object_object_get_ex(list, "vms", &vms))
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                json_object *v = json_object_array_get_idx(vms, i);
                if (!json_object_get_boolean(json_object_object_get(v, "incoming")) ||
                    json_object_get_boolean(json_object_object_get(v, "restored")) ||
                    json_object_get_boolean(json_object_object_get(v, "released")))
                        continue;
                if (manager_release_vm(s->m, json_object_get_string(json_object_object_get(v, "id")), &e) < 0)
                        return set_proto_error(error, &e);
                n++;
        }
        if (n == 0)
                return sd_bus_error_setf(error, DBUS_SERVICE_ERROR ".WrongState", "no VM is waiting to be finished");
        return sd_bus_reply_method_return(msg, "u", (uint32_t) n);
}

static int op_run(DbusService *s, sd_bus_message *msg, Op op, sd_bus_error *error) {
        switch (op) {
        case OP_PREPARE:
                return op_prepare(s, msg, error);
        case OP_COMMIT:
                return op_commit(s, msg, error);
        case OP_CANCEL:
                return op_cancel(s, msg, error);
        case OP_FINISH:
                return op_finish(s, msg, error);
        case OP_CHECK_PREPARE:
                return op_check_prepare(s, msg, error);
        }
        return -EINVAL;
}

/* Run @op for a message whose handler already returned: errors become the reply. */
static void op_run_deferred(DbusService *s, sd_bus_message *msg, Op op) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = op_run(s, msg, op, &error);
        if (r < 0 || sd_bus_error_is_set(&error)) {
                if (!sd_bus_error_is_set(&error))
                        (void) sd_bus_error_set_errno(&error, r);
                r = sd_bus_reply_method_error(msg, &error);
                if (r < 0)
                        log_warning_errno(r, "Cannot send the reply to %s: %m", op_names[op]);
        }
}

/* ------------------------------------------------------------------ authorization */

/* CheckPrepare is prepare's: it has the daemon open and decompress files a caller names. */
static const char *op_action(Op op) {
        return op == OP_COMMIT ? DBUS_POLKIT_ACTION_COMMIT : DBUS_POLKIT_ACTION_PREPARE;
}

static void auth_free(AuthRequest *a) {
        if (!a)
                return;
        if (a->s)
                for (AuthRequest **p = &a->s->auths; *p; p = &(*p)->next)
                        if (*p == a) {
                                *p = a->next;
                                break;
                        }
        sd_bus_slot_unref(a->slot);
        sd_bus_message_unref(a->msg);
        free(a);
}

/* The fallback without polkit: root, and members of the configured group. */
static bool caller_in_fallback_group(DbusService *s, sd_bus_creds *creds) {
        const gid_t *gids;
        gid_t gid;
        int n;

        if (s->opts.fallback_gid == (gid_t) -1)
                return false;
        if (sd_bus_creds_get_egid(creds, &gid) >= 0 && gid == s->opts.fallback_gid)
                return true;
        n = sd_bus_creds_get_supplementary_gids(creds, &gids);
        for (int i = 0; i < n; i++)
                if (gids[i] == s->opts.fallback_gid)
                        return true;
        return false;
}

static int deny_without_polkit(DbusService *s, sd_bus_message *msg, Op op, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT, &creds);
        if (r >= 0 && caller_in_fallback_group(s, creds))
                return 0;
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "%s: polkit is not available and the caller is not root%s",
                                 op_names[op], s->opts.fallback_gid != (gid_t) -1 ? " nor in the operator group" : "");
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        AuthRequest *a = userdata;
        DbusService *s = a->s;
        int authorized = 0, challenge = 0, r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        log_debug("polkit is not available (%s): falling back", e->name);
                        r = deny_without_polkit(s, a->msg, a->op, &error);
                        if (r >= 0 && !sd_bus_error_is_set(&error)) {
                                op_run_deferred(s, a->msg, a->op);
                                goto done;
                        }
                } else
                        (void) sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED, "%s: polkit check failed: %s",
                                                 op_names[a->op], e && e->message ? e->message : "unknown error");
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0)
                        (void) sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED, "%s: bad reply from polkit", op_names[a->op]);
                else if (authorized) {
                        op_run_deferred(s, a->msg, a->op);
                        goto done;
                } else if (challenge)
                        (void) sd_bus_error_setf(&error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                                 "%s needs interactive authorization (%s)", op_names[a->op], op_action(a->op));
                else
                        (void) sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED, "%s: not authorized (%s)",
                                                 op_names[a->op], op_action(a->op));
        }
        r = sd_bus_reply_method_error(a->msg, &error);
        if (r < 0)
                log_warning_errno(r, "Cannot send the reply to %s: %m", op_names[a->op]);
done:
        auth_free(a);
        return 0;
}

static int polkit_check_async(DbusService *s, sd_bus_message *msg, Op op) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *q = NULL;
        bool interactive = sd_bus_message_get_allow_interactive_authorization(msg) > 0;
        AuthRequest *a;
        int r;

        r = sd_bus_message_new_method_call(s->bus, &q, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        /* Subject: the calling connection; flags 1 = AllowUserInteraction. */
        r = sd_bus_message_append(q, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s",
                                  sd_bus_message_get_sender(msg), op_action(op), 0, (uint32_t) interactive, "");
        if (r < 0)
                return r;
        a = calloc(1, sizeof(AuthRequest));
        if (!a)
                return -ENOMEM;
        a->s = s;
        a->msg = sd_bus_message_ref(msg);
        a->op = op;
        r = sd_bus_call_async(s->bus, &a->slot, q, on_polkit_reply, a,
                              interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                a->s = NULL;
                auth_free(a);
                return r;
        }
        a->next = s->auths;
        s->auths = a;
        return 1;
}

/* Root may always; everyone else needs polkit (or the fallback group when polkit is off). */
static int method_authorized(sd_bus_message *msg, void *userdata, Op op, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        DbusService *s = userdata;
        uid_t uid;
        int r;

        /* The bus's SO_PEERCRED record of the caller (no /proc augmenting: pids may be from another namespace). */
        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "%s: cannot identify the caller", op_names[op]);
        if (uid == 0)
                return op_run(s, msg, op, error);
        if (!s->opts.use_polkit) {
                r = deny_without_polkit(s, msg, op, error);
                if (r < 0 || sd_bus_error_is_set(error))
                        return r;
                return op_run(s, msg, op, error);
        }
        return polkit_check_async(s, msg, op);
}

static int method_prepare(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_authorized(msg, userdata, OP_PREPARE, error);
}

static int method_commit(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_authorized(msg, userdata, OP_COMMIT, error);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_authorized(msg, userdata, OP_CANCEL, error);
}

static int method_finish(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_authorized(msg, userdata, OP_FINISH, error);
}

static int method_check_prepare(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_authorized(msg, userdata, OP_CHECK_PREPARE, error);
}

/* ------------------------------------------------------------------ reading */

static int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_put_nullp) json_object *list = NULL;
        DbusService *s = userdata;
        json_object *vms = NULL;
        int r;

        list = manager_list(s->m);
        if (!list || !json_object_object_get_ex(list, "vms", &vms))
                return -ENOMEM;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(subbbu)");
        for (size_t i = 0; r >= 0 && i < json_object_array_length(vms); i++) {
                json_object *v = json_object_array_get_idx(vms, i), *ss = json_object_object_get(v, "sessions");
                uint32_t items = 0;
                /* A delegated session counts as one item: it is what the daemon holds for that VM. */
                for (size_t j = 0; j < json_object_array_length(ss); j++) {
                        json_object *so = json_object_array_get_idx(ss, j);
                        items += jbool(so, "delegated") ? 1 : json_object_array_length(json_object_object_get(so, "items"));
                }
                r = sd_bus_message_append(reply, "(subbbu)", jstr(v, "id"),
                                          (uint32_t) json_object_get_int64(json_object_object_get(v, "uid")),
                                          jbool(v, "connected"), jbool(v, "incoming"), jbool(v, "restored"), items);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_devices(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_put_nullp) json_object *list = NULL;
        DbusService *s = userdata;
        json_object *vms = NULL, *vm = NULL;
        const char *want;
        int r;

        r = sd_bus_message_read(msg, "s", &want);
        if (r < 0)
                return r;
        list = manager_list(s->m);
        if (!list || !json_object_object_get_ex(list, "vms", &vms))
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(vms); i++)
                if (strcmp(jstr(json_object_array_get_idx(vms, i), "id"), want) == 0)
                        vm = json_object_array_get_idx(vms, i);
        if (!vm)
                return sd_bus_error_setf(error, DBUS_SERVICE_ERROR ".NoSuchVM", "no VM \"%.64s\"", want);

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssstb)");
        json_object *ss = json_object_object_get(vm, "sessions");
        for (size_t j = 0; r >= 0 && j < json_object_array_length(ss); j++) {
                json_object *so = json_object_array_get_idx(ss, j), *items = json_object_object_get(so, "items");
                if (jbool(so, "delegated")) {
                        /* The VMM's own session: one row of kind "session" (no label, no token),
                         * reclaimable after the reboot until the VM reports restored. */
                        r = sd_bus_message_append(reply, "(ssssstb)", "", "session", "",
                                                  jbool(vm, "incoming") && !jbool(vm, "restored") ? "reclaimable" : "preserved",
                                                  jstr(so, "name"), (uint64_t) 0, true);
                        continue;
                }
                for (size_t k = 0; r >= 0 && k < json_object_array_length(items); k++) {
                        json_object *it = json_object_array_get_idx(items, k);
                        r = sd_bus_message_append(reply, "(ssssstb)", jstr(it, "label"), jstr(it, "kind"),
                                                  jstr(it, "pci"), jstr(it, "state"), jstr(so, "name"),
                                                  (uint64_t) json_object_get_int64(json_object_object_get(it, "token")),
                                                  jbool(so, "delegated"));
                }
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static uint32_t connected_vms(Manager *m) {
        uint32_t n = 0;
        for (size_t i = 0; i < m->reg->n_vms; i++)
                n += !!m->reg->vms[i]->conn;
        return n;
}

static const char *kernel_abi(Manager *m) {
        return m->luo ? luo_abi_to_string(luo_get_abi(m->luo)) : "none";
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        DbusService *s = userdata;
        Manager *m = s->m;

        if (strcmp(property, "State") == 0)
                return sd_bus_message_append(reply, "s", update_state_to_string(m->state));
        if (strcmp(property, "Phase") == 0)
                return sd_bus_message_append(reply, "s", s->phase ?: "");
        if (strcmp(property, "KernelABI") == 0)
                return sd_bus_message_append(reply, "s", kernel_abi(m));
        if (strcmp(property, "VMCount") == 0)
                return sd_bus_message_append(reply, "u", (uint32_t) m->reg->n_vms);
        if (strcmp(property, "ConnectedVMCount") == 0)
                return sd_bus_message_append(reply, "u", connected_vms(m));
        if (strcmp(property, "UpdateId") == 0)
                return sd_bus_message_append(reply, "t", m->update_id);
        if (strcmp(property, "BootIncoming") == 0)
                return sd_bus_message_append(reply, "b", m->boot_incoming);
        if (strcmp(property, "CurrentUpdate") == 0)
                return sd_bus_message_append(reply, "s", m->reg->update ?
                        json_object_to_json_string_ext(m->reg->update, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "{}");
        if (strcmp(property, "LastUpdate") == 0) {
                _cleanup_(json_object_put_nullp) json_object *t = manager_timeline(m);
                json_object *tl = NULL;
                if (!t)
                        return -ENOMEM;
                (void) json_object_object_get_ex(t, "timeline", &tl);
                return sd_bus_message_append(reply, "s", tl ? json_object_to_json_string_ext(tl, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "{}");
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "unknown property %s", property);
}

/* ------------------------------------------------------------------ signals and PropertiesChanged */

static void on_progress(void *userdata, const char *state, const char *vm, const char *detail) {
        DbusService *s = userdata;
        char *p;
        int r;

        p = strdup(detail);
        if (p) {
                free(s->phase);
                s->phase = p;
                s->phase_dirty = true;
        }
        if (!s->bus)
                return;
        r = sd_bus_emit_signal(s->bus, DBUS_SERVICE_PATH, DBUS_SERVICE_INTERFACE, "Progress", "sss",
                               state, vm ?: "", detail);
        if (r < 0)
                log_debug("Cannot emit Progress: %s", strerror(-r));
        /* The core reports an acknowledgement as "acknowledged prepare|freeze" for the VM. */
        if (vm && strncmp(detail, "acknowledged ", 13) == 0) {
                r = sd_bus_emit_signal(s->bus, DBUS_SERVICE_PATH, DBUS_SERVICE_INTERFACE, "VMAcknowledged", "ss",
                                       vm, detail + 13);
                if (r < 0)
                        log_debug("Cannot emit VMAcknowledged: %s", strerror(-r));
        }
}

/* After every dispatch: tell the bus what changed (cheap comparisons of the core's counters). */
static int on_post(sd_event_source *source, void *userdata) {
        DbusService *s = userdata;
        Manager *m = s->m;
        const char *changed[10];
        size_t n = 0;
        bool state_changed;
        uint32_t vms = m->reg ? (uint32_t) m->reg->n_vms : 0, connected = m->reg ? connected_vms(m) : 0;
        int r;

        if (!m->reg || !s->bus)
                return 0;
        state_changed = !s->published || s->pub_state != m->state;
        if (state_changed) {
                changed[n++] = "State";
                changed[n++] = "CurrentUpdate";
                changed[n++] = "LastUpdate";
                changed[n++] = "KernelABI";
                changed[n++] = "BootIncoming";
        }
        if (s->phase_dirty)
                changed[n++] = "Phase";
        if (!s->published || s->pub_vms != vms)
                changed[n++] = "VMCount";
        if (!s->published || s->pub_connected != connected)
                changed[n++] = "ConnectedVMCount";
        if (!s->published || s->pub_update_id != m->update_id)
                changed[n++] = "UpdateId";
        changed[n] = NULL;

        if (state_changed && s->published) {
                r = sd_bus_emit_signal(s->bus, DBUS_SERVICE_PATH, DBUS_SERVICE_INTERFACE, "PhaseChanged", "sss",
                                       update_state_to_string(s->pub_state), update_state_to_string(m->state),
                                       s->phase ?: "");
                if (r < 0)
                        log_debug("Cannot emit PhaseChanged: %s", strerror(-r));
        }
        if (n > 0 && s->published) {
                r = sd_bus_emit_properties_changed_strv(s->bus, DBUS_SERVICE_PATH, DBUS_SERVICE_INTERFACE, (char **) changed);
                if (r < 0)
                        log_debug("Cannot emit PropertiesChanged: %s", strerror(-r));
        }
        s->published = true;
        s->pub_state = m->state;
        s->pub_vms = vms;
        s->pub_connected = connected;
        s->pub_update_id = m->update_id;
        s->pub_incoming = m->boot_incoming;
        s->phase_dirty = false;
        return 0;
}

/* The frozen state ends in reboot(): flush what the bus should see before the machine goes. */
static void flush_before_kexec(void *userdata, const char *state, const char *vm, const char *detail) {
        DbusService *s = userdata;

        on_progress(userdata, state, vm, detail);
        if (strcmp(state, "frozen") == 0 && s->bus) {
                (void) on_post(s->post, s);
                (void) sd_bus_flush(s->bus);
        }
}

static const sd_bus_vtable service_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Phase", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("KernelABI", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("VMCount", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConnectedVMCount", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdateId", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BootIncoming", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentUpdate", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastUpdate", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),

        SD_BUS_METHOD_WITH_ARGS("Prepare",
                SD_BUS_ARGS("s", kernel, "s", initrd, "s", cmdline, "a{sv}", options),
                SD_BUS_RESULT("t", update),
                method_prepare, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckPrepare",
                SD_BUS_ARGS("s", kernel, "s", initrd, "s", cmdline, "a{sv}", options),
                SD_BUS_RESULT("a(sssb)", checks, "s", refused_by),
                method_check_prepare, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Commit",
                SD_BUS_ARGS("a{sv}", options),
                SD_BUS_NO_RESULT,
                method_commit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel",
                SD_BUS_NO_ARGS,
                SD_BUS_NO_RESULT,
                method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Finish",
                SD_BUS_ARGS("s", vm),
                SD_BUS_RESULT("u", finished),
                method_finish, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVMs",
                SD_BUS_NO_ARGS,
                SD_BUS_RESULT("a(subbbu)", vms),
                method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDevices",
                SD_BUS_ARGS("s", vm),
                SD_BUS_RESULT("a(ssssstb)", devices),
                method_list_devices, SD_BUS_VTABLE_UNPRIVILEGED),

        SD_BUS_SIGNAL_WITH_ARGS("Progress",
                SD_BUS_ARGS("s", state, "s", vm, "s", message), 0),
        SD_BUS_SIGNAL_WITH_ARGS("VMAcknowledged",
                SD_BUS_ARGS("s", vm, "s", event), 0),
        SD_BUS_SIGNAL_WITH_ARGS("PhaseChanged",
                SD_BUS_ARGS("s", old_state, "s", new_state, "s", message), 0),
        SD_BUS_VTABLE_END
};

static int on_name_acquired(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_warning("Cannot own the D-Bus name %s (%s): D-Bus interface unavailable",
                            DBUS_SERVICE_NAME, e->message ?: e->name);
        else
                log_debug("Acquired the D-Bus name %s", DBUS_SERVICE_NAME);
        return 0;
}

/* Leave the bus: requests that came over it can no longer be answered. */
static void bus_drop(DbusService *s) {
        while (s->auths) {
                AuthRequest *a = s->auths;
                s->auths = a->next;
                a->s = NULL;
                auth_free(a);
        }
        /* The manager still owns these Calls and completes them later; they must not reply. */
        for (DbusCall *dc = s->calls, *n; dc; dc = n) {
                n = dc->next;
                dc->call.gone = true;
                dc->s = NULL;
                dc->msg = sd_bus_message_unref(dc->msg);
        }
        s->calls = NULL;
        s->object_slot = sd_bus_slot_unref(s->object_slot);
        s->manager_slot = sd_bus_slot_unref(s->manager_slot);
        s->disconnect_slot = sd_bus_slot_unref(s->disconnect_slot);
        if (s->bus) {
                (void) sd_bus_flush(s->bus);
                s->bus = sd_bus_flush_close_unref(s->bus);
        }
        s->published = false;   /* a new connection announces everything again */
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error);

static int bus_connect(DbusService *s) {
        int r;

        if (s->address) {
                r = sd_bus_new(&s->bus);
                if (r >= 0)
                        r = sd_bus_set_address(s->bus, s->address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(s->bus, true);
                if (r >= 0)
                        r = sd_bus_start(s->bus);
        } else
                r = sd_bus_open_system(&s->bus);
        if (r >= 0) {
                (void) sd_bus_set_description(s->bus, "lu-vfiod");
                r = sd_bus_attach_event(s->bus, s->event, SD_EVENT_PRIORITY_NORMAL);
        }
        if (r >= 0)
                r = sd_bus_add_object_vtable(s->bus, &s->object_slot, DBUS_SERVICE_PATH, DBUS_SERVICE_INTERFACE,
                                             service_vtable, s);
        if (r >= 0)
                /* GetManagedObjects lists the objects *below* the manager's path: at "/" it
                 * returns /org/luvfiod/LiveUpdate1 with its interfaces and properties. */
                r = sd_bus_add_object_manager(s->bus, &s->manager_slot, "/");
        /* sd-bus synthesizes this local signal when the connection closes. */
        if (r >= 0)
                r = sd_bus_match_signal(s->bus, &s->disconnect_slot, "org.freedesktop.DBus.Local",
                                        "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local", "Disconnected",
                                        on_disconnected, s);
        if (r >= 0)
                r = sd_bus_request_name_async(s->bus, NULL, DBUS_SERVICE_NAME, 0, on_name_acquired, s);
        if (r < 0)
                bus_drop(s);
        return r;
}

static int on_reconnect(sd_event_source *source, uint64_t usec, void *userdata);

static void reconnect_schedule(DbusService *s) {
        int r;

        if (!s->reconnect_usec)
                s->reconnect_usec = RECONNECT_FIRST_USEC;
        if (s->reconnect)
                r = sd_event_source_set_time_relative(s->reconnect, s->reconnect_usec);
        else
                r = sd_event_add_time_relative(s->event, &s->reconnect, CLOCK_MONOTONIC, s->reconnect_usec,
                                               10 * 1000, on_reconnect, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->reconnect, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Cannot schedule reconnecting to D-Bus, the D-Bus interface stays unavailable: %m");
        s->reconnect_usec = MIN(s->reconnect_usec * 2, RECONNECT_MAX_USEC);
}

static int on_reconnect(sd_event_source *source, uint64_t usec, void *userdata) {
        DbusService *s = userdata;
        int r;

        bus_drop(s);
        r = bus_connect(s);
        if (r < 0) {
                if (!s->lost_logged)
                        log_warning_errno(r, "D-Bus unavailable (%m); retrying, the control socket keeps working");
                s->lost_logged = true;
                reconnect_schedule(s);
                return 0;
        }
        if (s->lost_logged)
                log_notice("Connected to D-Bus again");
        s->lost_logged = false;
        s->reconnect_usec = 0;
        return 0;
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        DbusService *s = userdata;

        /* Not dropped here: this runs inside the old bus's dispatch. The timer does it. */
        log_warning("Lost the D-Bus connection; reconnecting (the control socket keeps working)");
        s->lost_logged = true;
        s->reconnect_usec = RECONNECT_FIRST_USEC;
        reconnect_schedule(s);
        return 0;
}

int dbus_service_new(sd_event *e, Manager *m, const DbusServiceOptions *opts, DbusService **ret) {
        _cleanup_(dbus_service_freep) DbusService *s = calloc(1, sizeof(DbusService));
        int r;

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->m = m;
        s->opts = *opts;
        s->opts.address = NULL;
        if (opts->address) {
                s->address = strdup(opts->address);
                if (!s->address)
                        return -ENOMEM;
        }
        r = sd_event_add_post(e, &s->post, on_post, s);
        if (r < 0)
                return r;
        r = manager_subscribe(m, flush_before_kexec, s);
        if (r < 0)
                return r;
        s->subscribed = true;
        r = bus_connect(s);
        if (r < 0) {
                /* E.g. started before the bus: keep trying, the interface appears when it does. */
                log_warning_errno(r, "D-Bus unavailable (%m); retrying, the control socket keeps working");
                s->lost_logged = true;
                reconnect_schedule(s);
        }
        *ret = TAKE_PTR(s);
        return 0;
}

DbusService *dbus_service_free(DbusService *s) {
        if (!s)
                return NULL;
        if (s->subscribed)
                manager_unsubscribe(s->m, s);
        bus_drop(s);
        s->reconnect = sd_event_source_disable_unref(s->reconnect);
        s->post = sd_event_source_disable_unref(s->post);
        sd_event_unref(s->event);
        free(s->address);
        free(s->phase);
        free(s);
        return NULL;
}
