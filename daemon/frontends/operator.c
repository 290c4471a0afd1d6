/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Operator control socket methods: a thin translation onto manager_*; see operator.h. */
#include <errno.h>
#include <string.h>

#include "common/json-text.h"
#include "frontends/operator.h"
#include "macro.h"

/* One per acknowledgement during an update: the text written directly (the bytes json-c
 * would print for the object, fields in this order), not built as a tree and printed. */
static void on_progress(void *userdata, const char *state, const char *vm, const char *detail) {
        _cleanup_free_ char *head = NULL;
        JsonText t = {};
        size_t len = 0;

        json_text_lit(&t, "{\"state\":");
        json_text_string(&t, state);
        json_text_lit(&t, ",\"vm\":");
        if (vm)
                json_text_string(&t, vm);
        else
                json_text_lit(&t, "null");
        json_text_lit(&t, ",\"detail\":");
        json_text_string(&t, detail);
        json_text_lit(&t, ",\"event\":\"progress\"");
        head = json_text_finish(&t, &len);
        (void) conn_send_event_head(userdata, head, len);   /* NULL (out of memory): the connection ends */
}

static void operator_connected(Conn *c) {
        (void) manager_subscribe(conn_manager(c), on_progress, c);
}

static void operator_disconnected(Conn *c) {
        manager_unsubscribe(conn_manager(c), c);
}

static void operator_dispatch(Conn *c, const ProtoRequest *req, int *fds, size_t n_fds) {
        Manager *m = conn_manager(c);
        const char *method = req->method;
        json_object *res = NULL;
        ProtoError e = {};

#define FIELDS(...) do { static const char *const _f[] = { __VA_ARGS__, NULL }; \
                if (proto_check_fields(req, _f, &e) < 0) goto fail; } while (0)

        /* SO_PEERCRED was checked at accept; check again so no path can skip it. */
        if (conn_uid(c) != 0) {
                proto_error_set(&e, PROTO_E_PERMISSION_DENIED, EPERM, "root only");
                goto fail;
        }
        if (n_fds > 0) {
                proto_error_set(&e, PROTO_E_WRONG_FD_COUNT, EINVAL, "the control socket takes no fds");
                goto fail;
        }
        if (strcmp(method, "status") == 0) {
                FIELDS(NULL);
                res = manager_status(m);
        } else if (strcmp(method, "list") == 0) {
                FIELDS(NULL);
                res = manager_list(m);
        } else if (strcmp(method, "timeline") == 0) {
                FIELDS(NULL);
                res = manager_timeline(m);
        } else if (strcmp(method, "prepare") == 0) {
                const char *kernel, *initrd, *cmdline;
                uint64_t timeout = 0;
                bool force = false;
                Call *call;
                FIELDS("kernel", "initrd", "cmdline", "timeout_ms", "force");
                if (proto_get_string(req, "kernel", true, &kernel, &e) < 0 ||
                    proto_get_string(req, "initrd", false, &initrd, &e) < 0 ||
                    proto_get_string(req, "cmdline", false, &cmdline, &e) < 0 ||
                    proto_get_uint(req, "timeout_ms", false, 7ULL * 86400 * 1000, &timeout, &e) < 0 ||
                    proto_get_bool(req, "force", false, &force, &e) < 0)
                        goto fail;
                call = conn_new_call(c, req->id);
                if (call)
                        manager_prepare(m, kernel, initrd, cmdline, force, timeout, call);
                return;
        } else if (strcmp(method, "check-prepare") == 0) {
                const char *kernel, *initrd, *cmdline;
                bool force = false;
                FIELDS("kernel", "initrd", "cmdline", "force");
                if (proto_get_string(req, "kernel", true, &kernel, &e) < 0 ||
                    proto_get_string(req, "initrd", false, &initrd, &e) < 0 ||
                    proto_get_string(req, "cmdline", false, &cmdline, &e) < 0 ||
                    proto_get_bool(req, "force", false, &force, &e) < 0)
                        goto fail;
                res = manager_check_prepare(m, kernel, initrd, cmdline, force);
                if (!res) {
                        proto_error_set(&e, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                        goto fail;
                }
        } else if (strcmp(method, "commit") == 0) {
                uint64_t timeout = 0;
                bool force = false;
                Call *call;
                FIELDS("force", "timeout_ms");
                if (proto_get_bool(req, "force", false, &force, &e) < 0 ||
                    proto_get_uint(req, "timeout_ms", false, 7ULL * 86400 * 1000, &timeout, &e) < 0)
                        goto fail;
                call = conn_new_call(c, req->id);
                if (call)
                        manager_commit(m, force, timeout, call);
                return;
        } else if (strcmp(method, "cancel") == 0) {
                FIELDS(NULL);
                if (manager_cancel(m, &e) < 0)
                        goto fail;
        } else if (strcmp(method, "release") == 0) {
                const char *vm;
                FIELDS("vm");
                if (proto_get_string(req, "vm", true, &vm, &e) < 0 || manager_release_vm(m, vm, &e) < 0)
                        goto fail;
        } else {
                proto_error_set(&e, PROTO_E_UNKNOWN_METHOD, EOPNOTSUPP, "unknown method \"%.*s\"", (int) utf8_prefix_len(method, 64), method);
                goto fail;
        }
        conn_reply_ok(c, req->id, res, -EBADF);
        return;
fail:
        conn_reply_error(c, true, req->id, &e);
#undef FIELDS
}

static int operator_admit(Server *s, const struct ucred *peer, ProtoError *e) {
        if (peer->uid != 0)
                return proto_error_set(e, PROTO_E_PERMISSION_DENIED, EPERM, "the control socket is for root only");
        return 0;
}

const ConnProtocol operator_protocol = {
        .name = "control",
        .socket_mode = 0600,
        .admit = operator_admit,
        .connected = operator_connected,
        .disconnected = operator_disconnected,
        .dispatch = operator_dispatch,
};
