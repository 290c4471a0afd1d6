/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the wire protocol decoder (daemon/common/protocol.c): one input is one
 * SEQPACKET datagram. The message is decoded as the server does (proto_request_parse
 * with the default MaxJSONDepth), then put through the per-method validation of
 * daemon/frontends/vmm-server.c (VMM socket) and daemon/frontends/operator.c (control socket), and every
 * reply the daemon would send is encoded and decoded again the way a strict client
 * would.
 *
 * The per-method validation lives inside vmm_dispatch()/operator_dispatch(), next to
 * socket and manager calls, so it is mirrored here step by step (same accessors, same
 * order, same limits); docs/reliability.md proposes factoring it out into protocol.c so
 * that this target exercises the daemon's own copy.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "common/protocol.h"

#define DEFAULT_MAX_DEPTH 8       /* Config default MaxJSONDepth */
#define LARGEST_MAX_DEPTH 64      /* largest MaxJSONDepth the config accepts */
#define OP_TIMEOUT_MAX    (7ULL * 86400 * 1000)

/* Decodes @text as a client that follows docs/protocol.md §1 must: strict JSON, UTF-8. */
static json_object *client_decode(const char *text, bool validate_utf8) {
        json_tokener *tok = json_tokener_new();
        json_object *o;

        FUZZ_CHECK(tok, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | (validate_utf8 ? JSON_TOKENER_VALIDATE_UTF8 : 0));
        o = json_tokener_parse_ex(tok, text, (int) strlen(text));
        if (o && json_tokener_get_parse_end(tok) != strlen(text)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

static bool utf8_is_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                unsigned n, cp;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0)
                        n = 1, cp = *p & 0x1f;
                else if ((*p & 0xf0) == 0xe0)
                        n = 2, cp = *p & 0x0f;
                else if ((*p & 0xf8) == 0xf0)
                        n = 3, cp = *p & 0x07;
                else
                        return false;
                p++;
                for (unsigned i = 0; i < n; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (*p & 0x3f);
                }
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
        }
        return true;
}

/* Every message the daemon sends must be one compact, strict, UTF-8 JSON object. */
static json_object *check_sent(const char *text) {
        json_object *o;

        FUZZ_CHECK(text, "encoder returned NULL");
        FUZZ_CHECK(utf8_is_valid(text), "daemon would send invalid UTF-8: %s", text);
        o = client_decode(text, false);
        FUZZ_CHECK(o && json_object_is_type(o, json_type_object), "daemon would send undecodable JSON: %s", text);
        return o;
}

static void check_error_reply(bool has_id, uint64_t id, const ProtoError *e) {
        _cleanup_free_ char *text = proto_reply_error(has_id, id, e);
        json_object *o = check_sent(text), *v, *err;

        FUZZ_CHECK(e->code > PROTO_OK && e->code < _PROTO_E_MAX, "bad error code %d", (int) e->code);
        FUZZ_CHECK(json_object_object_get_ex(o, "id", &v), "no id in %s", text);
        if (has_id)
                FUZZ_CHECK(json_object_is_type(v, json_type_int) && json_object_get_uint64(v) == id,
                           "id %llu not echoed: %s", (unsigned long long) id, text);
        else
                FUZZ_CHECK(json_object_is_type(v, json_type_null), "id should be null: %s", text);
        FUZZ_CHECK(json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_object),
                   "no error object: %s", text);
        FUZZ_CHECK(json_object_object_get_ex(err, "code", &v) &&
                   strcmp(json_object_get_string(v), proto_error_to_string(e->code)) == 0, "wrong code: %s", text);
        FUZZ_CHECK(json_object_object_get_ex(err, "errno", &v) && json_object_get_int(v) == e->error &&
                   e->error > 0, "wrong errno: %s", text);
        FUZZ_CHECK(json_object_object_get_ex(err, "message", &v) && strcmp(json_object_get_string(v), e->message) == 0,
                   "message not preserved: %s", text);
        json_object_put(o);
}

static void check_ok_reply(uint64_t id, json_object *result) {
        _cleanup_free_ char *text = proto_reply_ok(id, result);
        json_object *o = check_sent(text), *v;

        FUZZ_CHECK(json_object_object_get_ex(o, "id", &v) && json_object_get_uint64(v) == id, "id not echoed: %s", text);
        FUZZ_CHECK(json_object_object_get_ex(o, "result", &v) && json_object_is_type(v, json_type_object),
                   "no result: %s", text);
        json_object_put(o);
}

/* json-c's decoding of the current input (proto_request_parse_json()), which the daemon's decoding
 * (flat or not) is checked against. */
static const ProtoRequest *reference;

/* A string the daemon acts on must be the whole JSON string: C code sees up to the first NUL. */
static void check_string(const ProtoRequest *req, const char *key, const char *s) {
        json_object *o;

        (void) req;
        if (!s)
                return;
        FUZZ_CHECK(json_object_object_get_ex(reference->obj, key, &o), "accessor invented field %s", key);
        FUZZ_CHECK((size_t) json_object_get_string_len(o) == strlen(s),
                   "field \"%s\" accepted with an embedded NUL (\"%s\" acted on)", key, s);
}

static int get_string(const ProtoRequest *req, const char *key, bool required, const char **ret, ProtoError *e) {
        int r = proto_get_string(req, key, required, ret, e);

        if (r >= 0) {
                FUZZ_CHECK(!required || *ret, "required string %s missing but accepted", key);
                check_string(req, key, *ret);
        }
        return r;
}

static int get_uint(const ProtoRequest *req, const char *key, bool required, uint64_t max, uint64_t *ret, ProtoError *e) {
        uint64_t v = UINT64_MAX;
        int r = proto_get_uint(req, key, required, max, &v, e);

        if (r > 0)
                FUZZ_CHECK(v <= max, "%s = %llu accepted above %llu", key, (unsigned long long) v, (unsigned long long) max);
        if (r == 0)
                FUZZ_CHECK(!required && v == UINT64_MAX, "%s: absent but value written or required", key);
        if (r > 0)
                *ret = v;
        return r;
}

static int want_fds(size_t n_fds, size_t want, const char *method, ProtoError *e) {
        if (n_fds == want)
                return 0;
        return proto_error_set(e, PROTO_E_WRONG_FD_COUNT, EINVAL, "%s takes %zu fd(s), got %zu", method, want, n_fds);
}

static int check_fields(const ProtoRequest *req, const char *const *allowed, ProtoError *e) {
        int r = proto_check_fields(req, allowed, e);

        if (r < 0)
                return r;
        json_object_object_foreach(reference->obj, key, val) {
                bool ok = strcmp(key, "id") == 0 || strcmp(key, "method") == 0;
                (void) val;
                for (const char *const *a = allowed; !ok && *a; a++)
                        ok = strcmp(key, *a) == 0;
                FUZZ_CHECK(ok, "unknown field \"%s\" accepted", key);
        }
        return r;
}

#define FIELDS(...) do { static const char *const _f[] = { __VA_ARGS__, NULL }; \
                if (check_fields(req, _f, e) < 0) return -EINVAL; } while (0)

/*
 * The veto path of manager_ack(): the VMM's message is formatted into a 256-byte buffer
 * by fail_update() and sent to every VMM ("resume") and operator ("progress").
 */
static void check_veto_event(const char *vm_id, const char *message) {
        json_object *f = json_object_new_object(), *o;
        char msg[256];
        char *text;

        (void) snprintf(msg, sizeof(msg), "VM %s refused %s: %s", vm_id, "prepare", message ? message : "no reason given");
        utf8_truncate(msg);
        json_object_object_add(f, "update", json_object_new_uint64(1));
        json_object_object_add(f, "reason", json_object_new_string("failed"));
        json_object_object_add(f, "message", json_object_new_string(msg));
        text = proto_event("resume", 1, f);
        o = check_sent(text);
        json_object_put(o);
        free(text);
}

/* vmm_dispatch(), with the VM claimed by this connection after hello; manager checks that need no state. */
static int validate_vmm(const ProtoRequest *req, size_t n_fds, json_object **res, ProtoError *e) {
        const char *method = req->method;

        if (strcmp(method, "hello") == 0) {
                const char *vm_id, *client;
                uint64_t version;

                FIELDS("version", "vm", "client");
                if (want_fds(n_fds, 0, method, e) < 0 ||
                    get_uint(req, "version", true, UINT32_MAX, &version, e) < 0 ||
                    get_string(req, "vm", true, &vm_id, e) < 0 ||
                    proto_get_text(req, "client", false, PROTO_CLIENT_MAX, &client, e) < 0)
                        return -EINVAL;
                FUZZ_CHECK(!client || strlen(client) <= PROTO_CLIENT_MAX, "client too long accepted");
                if (version < PROTO_VERSION_MIN)
                        return proto_error_set(e, PROTO_E_VERSION, EPROTONOSUPPORT, "protocol version %llu not supported (%d..%d)",
                                               (unsigned long long) version, PROTO_VERSION_MIN, PROTO_VERSION);
                /* manager_vm_claim() */
                if (!proto_vm_id_is_valid(vm_id))
                        return proto_error_set(e, PROTO_E_INVALID_PARAMS, EINVAL,
                                               "invalid VM id (1-36 characters of A-Z a-z 0-9 . _ -)");
                FUZZ_CHECK(strlen(vm_id) >= 1 && strlen(vm_id) <= PROTO_VM_ID_MAX &&
                           strspn(vm_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(vm_id),
                           "VM id \"%s\" accepted", vm_id);
                *res = json_object_new_object();
                json_object_object_add(*res, "version", json_object_new_int(MIN(version, (uint64_t) PROTO_VERSION)));
                json_object_object_add(*res, "daemon", json_object_new_string(PROJECT_VERSION));
                json_object_object_add(*res, "items", json_object_new_array());
                return 0;
        }
        if (strcmp(method, "reclaim") == 0) {
                const char *label, *labels[PROTO_RECLAIM_LABELS_MAX];
                size_t n = 0;
                int k;

                FIELDS("label", "labels");
                if (want_fds(n_fds, 0, method, e) < 0 || get_string(req, "label", false, &label, e) < 0)
                        return -EINVAL;
                k = proto_get_string_array(req, "labels", PROTO_RECLAIM_LABELS_MAX, labels, &n, e);
                if (k != 0 && label)
                        return proto_error_set(e, PROTO_E_INVALID_PARAMS, EINVAL, "\"label\" and \"labels\" exclude each other");
                if (k < 0)
                        return k;
                if (k == 0 && !label)
                        return proto_error_set(e, PROTO_E_INVALID_PARAMS, EINVAL, "missing field \"label\"");
                FUZZ_CHECK(k == 0 || (n >= 1 && n <= PROTO_RECLAIM_LABELS_MAX), "%zu labels accepted", n);
                /* manager_reclaim_many(): each label is checked and named in its error. */
                for (size_t i = 0; i < n; i++) {
                        FUZZ_CHECK(strlen(labels[i]) == (size_t) json_object_get_string_len(json_object_array_get_idx(
                                           json_object_object_get(reference->obj, "labels"), i)),
                                   "label %zu accepted with an embedded NUL", i);
                        if (!proto_label_is_valid(labels[i]))
                                return proto_error_set(e, PROTO_E_INVALID_PARAMS, EINVAL, "invalid label \"%.*s\"",
                                                       (int) utf8_prefix_len(labels[i], 64), labels[i]);
                }
                if (!label)
                        return 0;
                if (!proto_label_is_valid(label))
                        return proto_error_set(e, PROTO_E_INVALID_PARAMS, EINVAL,
                                               "invalid label (1-64 characters of A-Z a-z 0-9 . _ : -)");
                return 0;
        }
        if (strcmp(method, "preserve") == 0 || strcmp(method, "unpreserve") == 0) {
                const char *label;

                FIELDS("label");
                if (want_fds(n_fds, strcmp(method, "preserve") == 0, method, e) < 0 ||
                    get_string(req, "label", true, &label, e) < 0)
                        return -EINVAL;
                /* manager_preserve(), manager_unpreserve(), manager_reclaim() */
                if (!proto_label_is_valid(label))
                        return proto_error_set(e, PROTO_E_INVALID_PARAMS, EINVAL,
                                               "invalid label (1-64 characters of A-Z a-z 0-9 . _ : -)");
                FUZZ_CHECK(strlen(label) >= 1 && strlen(label) <= PROTO_LABEL_MAX &&
                           strspn(label, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == strlen(label),
                           "label \"%s\" accepted", label);
                *res = json_object_new_object();
                json_object_object_add(*res, "label", json_object_new_string(label));
                return 0;
        }
        if (strcmp(method, "list") == 0 || strcmp(method, "session") == 0 ||
            strcmp(method, "restored") == 0 || strcmp(method, "forget") == 0) {
                FIELDS(NULL);
                return want_fds(n_fds, 0, method, e);
        }
        if (strcmp(method, "ack") == 0) {
                const char *message = NULL;
                uint64_t seq;
                bool ok = true;

                FIELDS("seq", "ok", "message");
                if (want_fds(n_fds, 0, method, e) < 0 ||
                    get_uint(req, "seq", true, PROTO_ID_MAX, &seq, e) < 0 ||
                    proto_get_bool(req, "ok", false, &ok, e) < 0 ||
                    proto_get_text(req, "message", false, PROTO_ACK_MESSAGE_MAX, &message, e) < 0)
                        return -EINVAL;
                for (const char *p = message; p && *p; p++)
                        FUZZ_CHECK((unsigned char) *p >= 0x20 && *p != 0x7f, "control character in an accepted ack message");
                if (!ok)
                        check_veto_event("vm-1", message);
                return 0;
        }
        return proto_error_set(e, PROTO_E_UNKNOWN_METHOD, EOPNOTSUPP, "unknown method \"%.*s\"",
                               (int) utf8_prefix_len(method, 64), method);
}

/* operator_dispatch() for root (no fds). */
static int validate_operator(const ProtoRequest *req, json_object **res, ProtoError *e) {
        const char *method = req->method;

        if (strcmp(method, "status") == 0 || strcmp(method, "list") == 0 ||
            strcmp(method, "timeline") == 0 || strcmp(method, "cancel") == 0) {
                FIELDS(NULL);
                return 0;
        }
        if (strcmp(method, "prepare") == 0) {
                const char *kernel, *initrd, *cmdline;
                uint64_t timeout = 0;

                FIELDS("kernel", "initrd", "cmdline", "timeout_ms");
                if (get_string(req, "kernel", true, &kernel, e) < 0 ||
                    get_string(req, "initrd", false, &initrd, e) < 0 ||
                    get_string(req, "cmdline", false, &cmdline, e) < 0 ||
                    get_uint(req, "timeout_ms", false, OP_TIMEOUT_MAX, &timeout, e) < 0)
                        return -EINVAL;
                return 0;
        }
        if (strcmp(method, "commit") == 0) {
                uint64_t timeout = 0;
                bool force = false;

                FIELDS("force", "timeout_ms");
                if (proto_get_bool(req, "force", false, &force, e) < 0 ||
                    get_uint(req, "timeout_ms", false, OP_TIMEOUT_MAX, &timeout, e) < 0)
                        return -EINVAL;
                return 0;
        }
        if (strcmp(method, "release") == 0) {
                const char *vm;

                FIELDS("vm");
                if (get_string(req, "vm", true, &vm, e) < 0)
                        return -EINVAL;
                /* manager_release_vm(): the name is echoed in the "no VM" error. */
                return proto_error_set(e, PROTO_E_INVALID_PARAMS, ENOENT, "no VM \"%s\"", vm);
        }
        return proto_error_set(e, PROTO_E_UNKNOWN_METHOD, EOPNOTSUPP, "unknown method \"%.*s\"",
                               (int) utf8_prefix_len(method, 64), method);
}
#undef FIELDS

static int dispatch_one(const ProtoRequest *req, bool operator, size_t n_fds, ProtoError *ret_e) {
        ProtoError e = {};
        json_object *res = NULL;
        int r;

        r = operator ? validate_operator(req, &res, &e) : validate_vmm(req, n_fds, &res, &e);
        *ret_e = e;
        if (r < 0) {
                FUZZ_CHECK(!res, "result built for a failed request");
                check_error_reply(true, req->id, &e);
        } else {
                FUZZ_CHECK(e.code == PROTO_OK, "request accepted with error %s set", proto_error_to_string(e.code));
                check_ok_reply(req->id, res);
        }
        return r;
}

/* The daemon's decoding and json-c's must validate alike: same outcome, same error. */
static int dispatch(const ProtoRequest *req, bool operator, size_t n_fds) {
        ProtoError e, e_ref;
        int r = dispatch_one(req, operator, n_fds, &e);
        int r_ref = dispatch_one(reference, operator, n_fds, &e_ref);

        FUZZ_CHECK(r == r_ref && e.code == e_ref.code && strcmp(e.message, e_ref.message) == 0,
                   "the flat decoding validates differently: %d %s \"%s\", json-c: %d %s \"%s\"",
                   r, proto_error_to_string(e.code), e.message, r_ref, proto_error_to_string(e_ref.code), e_ref.message);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ProtoRequest req, deep, ref;
        ProtoError e = {}, e2 = {}, e_ref = {};
        int r, r2, r_ref;

        r = proto_request_parse((const char *) data, size, DEFAULT_MAX_DEPTH, &req, &e);
        r_ref = proto_request_parse_json((const char *) data, size, DEFAULT_MAX_DEPTH, &ref, &e_ref);
        FUZZ_CHECK(r == r_ref && e.code == e_ref.code && strcmp(e.message, e_ref.message) == 0 &&
                   req.has_id == ref.has_id && req.id == ref.id,
                   "flat and json-c decodings differ: %d \"%s\" / %d \"%s\"", r, e.message, r_ref, e_ref.message);
        FUZZ_CHECK(!ref.flat.text, "proto_request_parse_json() decoded flat");
        reference = &ref;
        if (r < 0) {
                FUZZ_CHECK(!req.obj && !req.flat.text && !req.method, "failed parse left a request behind");
                FUZZ_CHECK(e.code == PROTO_E_INVALID_JSON || e.code == PROTO_E_INVALID_MESSAGE ||
                           e.code == PROTO_E_MESSAGE_TOO_LARGE, "parse failed with %s", proto_error_to_string(e.code));
                FUZZ_CHECK(!req.has_id || e.code == PROTO_E_INVALID_MESSAGE, "id kept for %s", proto_error_to_string(e.code));
                check_error_reply(req.has_id, req.id, &e);
        } else {
                FUZZ_CHECK(req.flat.text || json_object_is_type(req.obj, json_type_object), "not an object");
                FUZZ_CHECK(json_object_is_type(ref.obj, json_type_object), "not an object");
                FUZZ_CHECK(strcmp(req.method, ref.method) == 0, "flat and json-c decode different methods");
                FUZZ_CHECK(req.has_id && req.id >= 1 && req.id <= PROTO_ID_MAX, "id %llu", (unsigned long long) req.id);
                FUZZ_CHECK(req.method, "no method");
                FUZZ_CHECK(*req.method, "\"method\" accepted that is empty up to its first NUL");
                FUZZ_CHECK(memchr(data, 0, size) == NULL, "NUL byte accepted");
                check_string(&req, "method", req.method);

                /* A larger MaxJSONDepth accepts everything the default accepts, identically. */
                r2 = proto_request_parse((const char *) data, size, LARGEST_MAX_DEPTH, &deep, &e2);
                FUZZ_CHECK(r2 >= 0, "accepted at depth %d, refused at %d: %s", DEFAULT_MAX_DEPTH, LARGEST_MAX_DEPTH, e2.message);
                FUZZ_CHECK(deep.id == req.id && strcmp(deep.method, req.method) == 0, "depth changed the decoding");
                proto_request_done(&deep);

                (void) dispatch(&req, false, strcmp(req.method, "preserve") == 0 ? 1 : 0);
                FUZZ_CHECK(dispatch(&req, false, 2) < 0, "a VMM method accepted two fds");
                (void) dispatch(&req, true, 0);
                proto_request_done(&req);
        }
        proto_request_done(&ref);
        reference = NULL;
        return 0;
}
