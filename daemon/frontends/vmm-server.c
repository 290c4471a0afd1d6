/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VMM protocol's methods and events (vmm-server.h), on the connections of connection.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/restore.h"
#include "frontends/vmm-server.h"
#include "system/log.h"

static int want_fds(size_t n_fds, size_t want, const char *method, ProtoError *e) {
        if (n_fds == want)
                return 0;
        return proto_error_set(e, PROTO_E_WRONG_FD_COUNT, EINVAL, "%s takes %zu fd(s), got %zu", method, want, n_fds);
}

/*
 * hello with "reclaim" (protocol version 2): the hello reply waits for the VM's incoming
 * items and carries their fds, saving the VMM a round trip per VM on the restore.
 */
typedef struct HelloReclaim {
        Call call;            /* handed to manager_reclaim_all() */
        Call *reply;          /* the connection's call answering the hello */
        Conn *conn;           /* valid while !reply->gone */
        json_object *hello;   /* the hello result, completed with "reclaimed" */
} HelloReclaim;

static void on_hello_reclaimed(Call *call, json_object *result, int *fds, size_t n_fds, const ProtoError *err) {
        HelloReclaim *h = (HelloReclaim *) call;
        bool gone = h->reply->gone;
        json_object *items = NULL;
        Conn *c = h->conn;

        if (err) {
                /* The hello itself succeeded: say why nothing came with it; the VMM reclaims by label. */
                json_object *e = json_object_new_object();
                json_object_object_add(e, "code", json_object_new_string(proto_error_to_string(err->code)));
                json_object_object_add(e, "errno", json_object_new_int(err->error));
                json_object_object_add(e, "message", json_object_new_string(err->message));
                json_object_object_add(h->hello, "reclaim_error", e);
                json_object_object_add(h->hello, "reclaimed", json_object_new_array());
        } else {
                if (!json_object_object_get_ex(result, "items", &items) || !json_object_is_type(items, json_type_array))
                        items = NULL;
                json_object_object_add(h->hello, "reclaimed", items ? json_object_get(items) : json_object_new_array());
        }
        json_object_put(result);
        call_complete_fds(h->reply, h->hello, fds, err ? 0 : n_fds, NULL);
        if (!gone) {
                RegVm *vm = conn_get_userdata(c);
                if (vm)
                        manager_vm_hello_done(conn_manager(c), vm);
        }
        free(h);
}

static void vmm_dispatch(Conn *c, const ProtoRequest *req, int *fds, size_t n_fds) {
        Manager *m = conn_manager(c);
        RegVm *cvm = conn_get_userdata(c);
        ProtoError e = {};
        json_object *res = NULL;
        const char *method = req->method;
        int fd = -EBADF, r;

#define FIELDS(...) do { static const char *const _f[] = { __VA_ARGS__, NULL }; \
                if (proto_check_fields(req, _f, &e) < 0) goto fail; } while (0)

        if (strcmp(method, "hello") == 0) {
                const char *vm_id, *client;
                uint64_t version;
                bool reclaim = false;
                Call *reply = NULL;
                RegVm *vm;

                if (cvm) {
                        proto_error_set(&e, PROTO_E_ALREADY_HELLO, EALREADY, "hello already done for VM %s", cvm->id);
                        goto fail;
                }
                FIELDS("version", "vm", "client", "reclaim");
                if (want_fds(n_fds, 0, method, &e) < 0 ||
                    proto_get_uint(req, "version", true, UINT32_MAX, &version, &e) < 0 ||
                    proto_get_string(req, "vm", true, &vm_id, &e) < 0 ||
                    proto_get_text(req, "client", false, PROTO_CLIENT_MAX, &client, &e) < 0 ||
                    proto_get_bool(req, "reclaim", false, &reclaim, &e) < 0)
                        goto fail;
                if (version < PROTO_VERSION_MIN) {
                        proto_error_set(&e, PROTO_E_VERSION, EPROTONOSUPPORT, "protocol version %llu not supported (%d..%d)",
                                        (unsigned long long) version, PROTO_VERSION_MIN, PROTO_VERSION);
                        goto fail;
                }
                if (reclaim) {
                        /* Taken before the claim: a refusal (MaxPendingRequests) is then the hello's own. */
                        reply = conn_new_call(c, req->id);
                        if (!reply)
                                return;
                }
                if (manager_vm_claim(m, c, vm_id, conn_uid(c), conn_gid(c), client, &vm, &e) < 0) {
                        if (reply) {
                                call_complete(reply, NULL, -EBADF, &e);
                                return;
                        }
                        goto fail;
                }
                conn_set_userdata(c, vm);
                res = json_object_new_object();
                json_object_object_add(res, "version", json_object_new_int(MIN(version, (uint64_t) PROTO_VERSION)));
                json_object_object_add(res, "daemon", json_object_new_string(PROJECT_VERSION));
                json_object_object_add(res, "abi", json_object_new_string(m->luo ? luo_abi_to_string(luo_get_abi(m->luo)) : "none"));
                json_object_object_add(res, "state", json_object_new_string(update_state_to_string(m->state)));
                json_object_object_add(res, "incoming", json_object_new_boolean(vm->incoming && !vm->restored));
                json_object_object_add(res, "items", manager_vm_items_json(m, vm));
                if (reply) {
                        HelloReclaim *h = calloc(1, sizeof(HelloReclaim));

                        if (!h) {
                                json_object_put(res);
                                call_fail(reply, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                                return;
                        }
                        *h = (HelloReclaim) { .call.complete = on_hello_reclaimed, .call.id = req->id,
                                              .reply = reply, .conn = c, .hello = res };
                        manager_reclaim_all(m, vm, &h->call);
                        return;
                }
                conn_reply_ok(c, req->id, res, -EBADF);
                manager_vm_hello_done(m, vm);
                return;
        }
        if (!cvm) {
                proto_error_set(&e, PROTO_E_HELLO_REQUIRED, EPERM, "the first request must be hello");
                goto fail;
        }
        if (strcmp(method, "preserve") == 0) {
                const char *label;
                FIELDS("label");
                if (want_fds(n_fds, 1, method, &e) < 0 || proto_get_string(req, "label", true, &label, &e) < 0)
                        goto fail;
                /* manager_preserve() owns the fd from here on, success or not. */
                r = manager_preserve(m, cvm, label, fds[0], &res, &e);
                fds[0] = -EBADF;
                if (r < 0)
                        goto fail;
        } else if (strcmp(method, "unpreserve") == 0) {
                const char *label;
                FIELDS("label");
                if (want_fds(n_fds, 0, method, &e) < 0 || proto_get_string(req, "label", true, &label, &e) < 0 ||
                    manager_unpreserve(m, cvm, label, &e) < 0)
                        goto fail;
        } else if (strcmp(method, "list") == 0) {
                FIELDS(NULL);
                if (want_fds(n_fds, 0, method, &e) < 0)
                        goto fail;
                res = json_object_new_object();
                json_object_object_add(res, "items", manager_vm_items_json(m, cvm));
        } else if (strcmp(method, "session") == 0) {
                FIELDS(NULL);
                if (want_fds(n_fds, 0, method, &e) < 0 || manager_session_get(m, cvm, &fd, &res, &e) < 0)
                        goto fail;
        } else if (strcmp(method, "ack") == 0) {
                const char *message = NULL;
                uint64_t seq;
                bool ok = true, quiet = false;
                FIELDS("seq", "ok", "message", "quiet");
                if (want_fds(n_fds, 0, method, &e) < 0 ||
                    proto_get_uint(req, "seq", true, PROTO_ID_MAX, &seq, &e) < 0 ||
                    proto_get_bool(req, "ok", false, &ok, &e) < 0 ||
                    proto_get_text(req, "message", false, PROTO_ACK_MESSAGE_MAX, &message, &e) < 0 ||
                    proto_get_bool(req, "quiet", false, &quiet, &e) < 0)
                        goto fail;
                if (manager_ack_check(m, cvm, seq, &e) < 0)
                        goto fail;
                /* Reply first: acking may complete the update and, on success, reboot the machine.
                 * A quiet ack is answered only when refused: one datagram per VM and event. */
                if (!quiet)
                        conn_reply_ok(c, req->id, NULL, -EBADF);
                (void) manager_ack(m, cvm, seq, ok, message, &e);
                return;
        } else if (strcmp(method, "reclaim") == 0) {
                const char *label, *labels[PROTO_RECLAIM_LABELS_MAX];
                size_t n = 0;
                int k;
                Call *call;
                FIELDS("label", "labels");
                if (want_fds(n_fds, 0, method, &e) < 0 || proto_get_string(req, "label", false, &label, &e) < 0)
                        goto fail;
                k = proto_get_string_array(req, "labels", PROTO_RECLAIM_LABELS_MAX, labels, &n, &e);
                if (k != 0 && label) {
                        proto_error_set(&e, PROTO_E_INVALID_PARAMS, EINVAL, "\"label\" and \"labels\" exclude each other");
                        goto fail;
                }
                if (k < 0)
                        goto fail;
                if (k == 0 && !label) {
                        proto_error_set(&e, PROTO_E_INVALID_PARAMS, EINVAL, "missing field \"label\"");
                        goto fail;
                }
                call = conn_new_call(c, req->id);
                if (call) {
                        if (n > 0)
                                manager_reclaim_many(m, cvm, labels, n, call);
                        else
                                manager_reclaim(m, cvm, label, call);
                }
                return;
        } else if (strcmp(method, "wait-bound") == 0) {
                const char *pci;
                uint64_t timeout = 0;
                Call *call;
                FIELDS("pci", "timeout_ms");
                if (want_fds(n_fds, 0, method, &e) < 0 || proto_get_string(req, "pci", true, &pci, &e) < 0 ||
                    proto_get_uint(req, "timeout_ms", false, 3600ULL * 1000, &timeout, &e) < 0)
                        goto fail;
                call = conn_new_call(c, req->id);
                if (call)
                        manager_wait_bound(m, pci, timeout, call);
                return;
        } else if (strcmp(method, "restored") == 0) {
                FIELDS(NULL);
                if (want_fds(n_fds, 0, method, &e) < 0 || manager_restored(m, cvm, &res, &e) < 0)
                        goto fail;
        } else if (strcmp(method, "forget") == 0) {
                FIELDS(NULL);
                if (want_fds(n_fds, 0, method, &e) < 0)
                        goto fail;
                if (manager_forget(m, cvm, &e) < 0)
                        goto fail;
                conn_set_userdata(c, NULL);   /* the connection may hello again (for another VM) */
        } else {
                proto_error_set(&e, PROTO_E_UNKNOWN_METHOD, EOPNOTSUPP, "unknown method \"%.*s\"", (int) utf8_prefix_len(method, 64), method);
                goto fail;
        }
        conn_reply_ok(c, req->id, res, fd);
        return;
fail:
        safe_close(fd);
        conn_reply_error(c, true, req->id, &e);
#undef FIELDS
}

static int vmm_admit(Server *s, const struct ucred *peer, ProtoError *e) {
        if (!config_may_connect(server_config(s), peer->uid, peer->gid)) {
                log_warning("Refusing VMM connection from uid %u (AllowUsers/AllowGroups)", (unsigned) peer->uid);
                return proto_error_set(e, PROTO_E_PERMISSION_DENIED, EPERM, "uid not allowed to connect");
        }
        return 0;
}

static void vmm_disconnected(Conn *c) {
        RegVm *vm = conn_get_userdata(c);

        if (vm) {
                conn_set_userdata(c, NULL);
                manager_vm_disconnect(conn_manager(c), vm);
        }
}

const ConnProtocol vmm_protocol = {
        .name = "VMM",
        .socket_mode = 0666,   /* access is decided by [Access] on the peer's credentials */
        .admit = vmm_admit,
        .disconnected = vmm_disconnected,
        .dispatch = vmm_dispatch,
};

static int64_t vmm_send_event(void *conn, const char *event, json_object *fields) {
        /* Never free here: the manager is iterating its VMs. The io handler reaps it (EPOLLHUP). */
        return conn_send_event(conn, event, fields);
}

static int64_t vmm_send_event_head(void *conn, const char *head, size_t len) {
        return conn_send_event_head(conn, head, len);
}

void vmm_protocol_attach(Manager *m) {
        m->vmm_ops.send_event = vmm_send_event;
        m->vmm_ops.send_event_head = vmm_send_event_head;
}
