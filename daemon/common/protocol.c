/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding, validating and encoding protocol messages; see protocol.h and docs/protocol.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/json-text.h"
#include "common/protocol.h"

static void utf8_truncate_end(char *s);

static const char *const error_names[_PROTO_E_MAX] = {
        [PROTO_OK]                  = "ok",
        [PROTO_E_INVALID_JSON]      = "invalid-json",
        [PROTO_E_INVALID_MESSAGE]   = "invalid-message",
        [PROTO_E_MESSAGE_TOO_LARGE] = "message-too-large",
        [PROTO_E_TOO_MANY_FDS]      = "too-many-fds",
        [PROTO_E_UNKNOWN_METHOD]    = "unknown-method",
        [PROTO_E_INVALID_PARAMS]    = "invalid-params",
        [PROTO_E_WRONG_FD_COUNT]    = "wrong-fd-count",
        [PROTO_E_WRONG_FD_KIND]     = "wrong-fd-kind",
        [PROTO_E_VERSION]           = "version-unsupported",
        [PROTO_E_HELLO_REQUIRED]    = "hello-required",
        [PROTO_E_ALREADY_HELLO]     = "already-hello",
        [PROTO_E_PERMISSION_DENIED] = "permission-denied",
        [PROTO_E_VM_BUSY]           = "vm-busy",
        [PROTO_E_LABEL_EXISTS]      = "label-exists",
        [PROTO_E_LABEL_UNKNOWN]     = "label-unknown",
        [PROTO_E_LIMIT]             = "limit-reached",
        [PROTO_E_ORDER]             = "order-violation",
        [PROTO_E_STATE]             = "invalid-state",
        [PROTO_E_KERNEL]            = "kernel-error",
        [PROTO_E_PRECONDITION]      = "precondition-failed",
        [PROTO_E_TIMEOUT]           = "timeout",
        [PROTO_E_CANCELLED]         = "cancelled",
        [PROTO_E_INTERNAL]          = "internal-error",
};

const char *proto_error_to_string(ProtoErrorCode c) {
        if ((unsigned) c >= _PROTO_E_MAX)
                return "internal-error";
        return error_names[c];
}

/*
 * Make @s valid UTF-8 in place: an incomplete sequence at the end (left by a byte-bounded
 * format) is dropped, any other invalid byte (e.g. a "%.64s" cut in the middle) becomes '?'.
 */
void utf8_truncate(char *s) {
        size_t n;

        utf8_truncate_end(s);
        n = strlen(s);
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) s[i];
                size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
                bool ok = need > 0 && i + need <= n && !(need == 2 && c < 0xC2);

                for (size_t k = 1; ok && k < need; k++)
                        ok = ((unsigned char) s[i + k] & 0xC0) == 0x80;
                if (ok && need == 3) {
                        unsigned char c1 = (unsigned char) s[i + 1];
                        ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);   /* overlong, surrogates */
                }
                if (ok && need == 4) {
                        unsigned char c1 = (unsigned char) s[i + 1];
                        ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
                }
                if (!ok) {
                        s[i++] = '?';
                        continue;
                }
                i += need;
        }
}

static void utf8_truncate_end(char *s) {
        size_t n = strlen(s), i = n, need;
        unsigned char c;

        /* find the start of the last sequence (at most 3 continuation bytes back) */
        while (i > 0 && n - i < 4 && ((unsigned char) s[i - 1] & 0xC0) == 0x80)
                i--;
        if (i == 0)
                return;
        c = (unsigned char) s[i - 1];
        if (c < 0x80)
                return;
        need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (n - (i - 1) < need)
                s[i - 1] = 0;
}

size_t utf8_prefix_len(const char *s, size_t max) {
        size_t n = strnlen(s, max);

        if (n < max || s[n] == 0)
                return n;
        /* s continues beyond max: back off to a character boundary */
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        return n;
}

int proto_error_set(ProtoError *e, ProtoErrorCode code, int error, const char *fmt, ...) {
        va_list ap;

        e->code = code;
        e->error = error < 0 ? -error : error;
        va_start(ap, fmt);
        (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        utf8_truncate(e->message);
        return e->error ? -e->error : -EINVAL;
}

static bool name_is_valid(const char *s, size_t max, const char *extra) {
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n < 1 || n > max)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                        continue;
                if (!strchr(extra, c) || c == 0)
                        return false;
        }
        return true;
}

bool proto_vm_id_is_valid(const char *s) {
        return name_is_valid(s, PROTO_VM_ID_MAX, "._-");
}

bool proto_label_is_valid(const char *s) {
        return name_is_valid(s, PROTO_LABEL_MAX, "._:-");
}

void proto_request_done(ProtoRequest *r) {
        json_object_put(r->obj);
        flat_json_done(&r->flat);
        *r = (ProtoRequest) {};
}

/* One top-level value of a request, whichever decoder produced it. */
typedef enum ValueType {
        VALUE_ABSENT,
        VALUE_NULL,
        VALUE_BOOL,
        VALUE_INT,
        VALUE_STRING,
        VALUE_OTHER,                 /* a double, an object or an array */
} ValueType;

typedef struct Value {
        ValueType type;
        bool b;
        int64_t i;                   /* VALUE_INT: json-c's int64 reading (saturated) */
        uint64_t u;                  /* VALUE_INT: json-c's uint64 reading */
        const char *str;             /* VALUE_STRING, NUL-terminated */
        size_t len;                  /* VALUE_STRING: the JSON string's length (a NUL inside makes it longer than strlen) */
        json_object *obj;            /* json-c's value, NULL when decoded flat */
} Value;

static Value value_of_json(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_null:
                return (Value) { .type = VALUE_NULL };
        case json_type_boolean:
                return (Value) { .type = VALUE_BOOL, .b = json_object_get_boolean(o), .obj = o };
        case json_type_int:
                return (Value) { .type = VALUE_INT, .i = json_object_get_int64(o), .u = json_object_get_uint64(o), .obj = o };
        case json_type_string:
                return (Value) { .type = VALUE_STRING, .str = json_object_get_string(o),
                                 .len = (size_t) json_object_get_string_len(o), .obj = o };
        default:
                return (Value) { .type = VALUE_OTHER, .obj = o };
        }
}

static Value value_of_flat(const FlatJsonField *f) {
        switch (f->type) {
        case FLAT_JSON_NULL:
                return (Value) { .type = VALUE_NULL };
        case FLAT_JSON_BOOL:
                return (Value) { .type = VALUE_BOOL, .b = f->num != 0 };
        case FLAT_JSON_UINT:
                return (Value) { .type = VALUE_INT, .i = (int64_t) f->num, .u = f->num };
        case FLAT_JSON_STRING:
                return (Value) { .type = VALUE_STRING, .str = f->str, .len = f->len };
        }
        return (Value) { .type = VALUE_OTHER };
}

static Value request_get(const ProtoRequest *r, const char *key) {
        json_object *o;

        if (r->flat.text) {
                const FlatJsonField *f = flat_json_find(&r->flat, key);
                return f ? value_of_flat(f) : (Value) { .type = VALUE_ABSENT };
        }
        if (!r->obj || !json_object_object_get_ex(r->obj, key, &o))
                return (Value) { .type = VALUE_ABSENT };
        return value_of_json(o);
}

static int id_from_value(const Value *v, uint64_t *ret) {
        if (v->type != VALUE_INT)
                return -EINVAL;
        /* json-c saturates values beyond int64 and keeps uint64 separately: reject both. */
        if (v->i < 1 || (uint64_t) v->i > PROTO_ID_MAX || v->u != (uint64_t) v->i)
                return -ERANGE;
        *ret = (uint64_t) v->i;
        return 0;
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * json-c's own check lets all three through, and these strings end up in logs and in
 * replies to other clients.
 */
static bool utf8_is_valid(const char *buf, size_t len) {
        const unsigned char *p = (const unsigned char *) buf, *end = p + len;

        while (p < end) {
                unsigned char c = *p;
                size_t n;
                uint32_t cp, min;

                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1; cp = c & 0x1f; min = 0x80;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2; cp = c & 0x0f; min = 0x800;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3; cp = c & 0x07; min = 0x10000;
                } else
                        return false;   /* continuation byte, 0xc0/0xc1 or 0xf5.. */
                if ((size_t) (end - p) <= n)
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

/* json-c's decoding of the whole message into r->obj: every message that is not flat. */
static int request_decode_json(const char *buf, size_t len, unsigned max_depth, ProtoRequest *r, ProtoError *err) {
        json_tokener *tok;
        json_object *obj;
        size_t off;

        /* A new tokener per message, not one kept and reset: with one reused, fuzz-protocol found
         * a message (a lone high-surrogate escape in a string) decoded differently depending on
         * what the tokener had parsed before; json-c 0.16's reset does not clear all its state. */
        /* json-c counts one level more than we do: new_ex(N) accepts N-1 levels of nesting. */
        tok = json_tokener_new_ex(max_depth > 0 ? (int) max_depth + 1 : 2);
        if (!tok)
                return proto_error_set(err, PROTO_E_INTERNAL, ENOMEM, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, buf, (int) len);
        if (!obj) {
                enum json_tokener_error je = json_tokener_get_error(tok);
                json_tokener_free(tok);
                if (je == json_tokener_continue)
                        return proto_error_set(err, PROTO_E_INVALID_JSON, EINVAL, "truncated JSON message");
                return proto_error_set(err, PROTO_E_INVALID_JSON, EINVAL, "invalid JSON: %s",
                                       json_tokener_error_desc(je));
        }
        off = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; off < len; off++)
                if (!strchr(" \t\r\n", buf[off])) {
                        json_object_put(obj);
                        return proto_error_set(err, PROTO_E_INVALID_JSON, EINVAL,
                                               "trailing data after the JSON object");
                }
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                return proto_error_set(err, PROTO_E_INVALID_MESSAGE, EINVAL, "message is not a JSON object");
        }
        r->obj = obj;
        return 0;
}

static int request_parse(const char *buf, size_t len, unsigned max_depth, bool allow_flat, ProtoRequest *r, ProtoError *err) {
        Value v;
        int k;

        *r = (ProtoRequest) {};
        if (len == 0)
                return proto_error_set(err, PROTO_E_INVALID_JSON, EINVAL, "empty message");
        if (len > INT32_MAX)
                return proto_error_set(err, PROTO_E_MESSAGE_TOO_LARGE, EMSGSIZE, "message too large");
        if (memchr(buf, 0, len))
                return proto_error_set(err, PROTO_E_INVALID_JSON, EINVAL, "message contains a NUL byte");

        if (!utf8_is_valid(buf, len))
                return proto_error_set(err, PROTO_E_INVALID_JSON, EINVAL, "message is not valid UTF-8");

        /* A flat object has one level of nesting, which every max_depth of 1 or more allows. */
        k = allow_flat && max_depth > 0 ? flat_json_parse(buf, len, &r->flat) : 0;
        if (k < 0)
                return proto_error_set(err, PROTO_E_INTERNAL, ENOMEM, "out of memory");
        if (k == 0) {
                k = request_decode_json(buf, len, max_depth, r, err);
                if (k < 0)
                        return k;
        }

        v = request_get(r, "id");
        if (id_from_value(&v, &r->id) < 0) {
                proto_request_done(r);
                return proto_error_set(err, PROTO_E_INVALID_MESSAGE, EINVAL,
                                       "\"id\" must be an integer in 1..2^53");
        }
        r->has_id = true;
        v = request_get(r, "method");
        if (v.type != VALUE_STRING || v.len == 0 || strlen(v.str) != v.len) {
                uint64_t id = r->id;
                bool nul = v.type == VALUE_STRING && v.len > 0;
                proto_request_done(r);
                r->has_id = true;
                r->id = id;
                if (nul)
                        return proto_error_set(err, PROTO_E_INVALID_MESSAGE, EINVAL, "\"method\" contains a NUL character");
                return proto_error_set(err, PROTO_E_INVALID_MESSAGE, EINVAL, "\"method\" must be a non-empty string");
        }
        r->method = v.str;
        return 0;
}

int proto_request_parse(const char *buf, size_t len, unsigned max_depth, ProtoRequest *r, ProtoError *err) {
        return request_parse(buf, len, max_depth, true, r, err);
}

int proto_request_parse_json(const char *buf, size_t len, unsigned max_depth, ProtoRequest *r, ProtoError *err) {
        return request_parse(buf, len, max_depth, false, r, err);
}

int proto_get_string(const ProtoRequest *r, const char *key, bool required, const char **ret, ProtoError *err) {
        Value v = request_get(r, key);

        if (v.type == VALUE_ABSENT || v.type == VALUE_NULL) {
                if (required)
                        return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "missing field \"%s\"", key);
                *ret = NULL;
                return 0;
        }
        if (v.type != VALUE_STRING)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" must be a string", key);
        /* C strings end at the first NUL: refuse what would silently be a different string. */
        if (strlen(v.str) != v.len)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" contains a NUL character", key);
        *ret = v.str;
        return 1;
}

int proto_get_text(const ProtoRequest *r, const char *key, bool required, size_t max_len, const char **ret, ProtoError *err) {
        const char *s = NULL;
        int k = proto_get_string(r, key, required, &s, err);

        if (k <= 0) {
                if (k == 0)
                        *ret = NULL;
                return k;
        }
        if (strlen(s) > max_len)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" longer than %zu bytes", key, max_len);
        /* A newline or escape sequence would forge log lines or terminal output. */
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" contains a control character", key);
        *ret = s;
        return 1;
}

int proto_get_uint(const ProtoRequest *r, const char *key, bool required, uint64_t max, uint64_t *ret, ProtoError *err) {
        Value v = request_get(r, key);

        if (v.type == VALUE_ABSENT || v.type == VALUE_NULL) {
                if (required)
                        return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "missing field \"%s\"", key);
                return 0;
        }
        if (v.type != VALUE_INT)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" must be an integer", key);
        if (v.i < 0 || (uint64_t) v.i > max || v.u != (uint64_t) v.i)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, ERANGE,
                                       "field \"%s\" out of range 0..%llu", key, (unsigned long long) max);
        *ret = (uint64_t) v.i;
        return 1;
}

int proto_get_bool(const ProtoRequest *r, const char *key, bool required, bool *ret, ProtoError *err) {
        Value v = request_get(r, key);

        if (v.type == VALUE_ABSENT || v.type == VALUE_NULL) {
                if (required)
                        return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "missing field \"%s\"", key);
                return 0;
        }
        if (v.type != VALUE_BOOL)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" must be a boolean", key);
        *ret = v.b;
        return 1;
}

int proto_get_string_array(const ProtoRequest *r, const char *key, size_t max, const char **ret, size_t *ret_n, ProtoError *err) {
        Value v = request_get(r, key);
        size_t n;

        *ret_n = 0;
        if (v.type == VALUE_ABSENT || v.type == VALUE_NULL)
                return 0;
        if (!v.obj || !json_object_is_type(v.obj, json_type_array))
                goto fail;
        n = json_object_array_length(v.obj);
        if (n < 1 || n > max)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v.obj, i);
                if (!json_object_is_type(e, json_type_string) ||
                    strlen(json_object_get_string(e)) != (size_t) json_object_get_string_len(e))
                        goto fail;
                ret[i] = json_object_get_string(e);
        }
        *ret_n = n;
        return 1;
fail:
        return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL, "field \"%s\" must be an array of 1-%zu strings", key, max);
}

/* Refuses @key unless it is id, method or in @allowed. */
static int check_field(const ProtoRequest *r, const char *key, const char *const *allowed, ProtoError *err) {
        bool ok = strcmp(key, "id") == 0 || strcmp(key, "method") == 0;

        for (const char *const *a = allowed; !ok && a && *a; a++)
                ok = strcmp(key, *a) == 0;
        if (!ok)
                return proto_error_set(err, PROTO_E_INVALID_PARAMS, EINVAL,
                                       "unknown field \"%.*s\" for method %s",
                                       (int) utf8_prefix_len(key, 64), key, r->method);
        return 0;
}

int proto_check_fields(const ProtoRequest *r, const char *const *allowed, ProtoError *err) {
        if (r->flat.text) {
                for (size_t i = 0; i < r->flat.n_fields; i++)
                        if (check_field(r, r->flat.fields[i].key, allowed, err) < 0)
                                return -EINVAL;
                return 0;
        }
        json_object_object_foreach(r->obj, key, val) {
                (void) val;
                if (check_field(r, key, allowed, err) < 0)
                        return -EINVAL;
        }
        return 0;
}

char *proto_json_text(json_object *v, size_t *ret_len) {
        JsonText b = {};

        json_text_value(&b, v);
        return json_text_finish(&b, ret_len);
}

static char *to_string_free(json_object *o) {
        char *s = NULL;

        if (o)
                s = proto_json_text(o, NULL);
        json_object_put(o);
        return s;
}

char *proto_reply_ok(uint64_t id, json_object *result) {
        json_object *o = json_object_new_object();

        if (!o) {
                json_object_put(result);
                return NULL;
        }
        json_object_object_add(o, "id", json_object_new_uint64(id));
        json_object_object_add(o, "result", result ? result : json_object_new_object());
        return to_string_free(o);
}

char *proto_reply_error(bool has_id, uint64_t id, const ProtoError *e) {
        json_object *o = json_object_new_object(), *eo = json_object_new_object();

        if (!o || !eo) {
                json_object_put(o);
                json_object_put(eo);
                return NULL;
        }
        json_object_object_add(o, "id", has_id ? json_object_new_uint64(id) : NULL);
        json_object_object_add(eo, "code", json_object_new_string(proto_error_to_string(e->code)));
        json_object_object_add(eo, "errno", json_object_new_int(e->error));
        json_object_object_add(eo, "message", json_object_new_string(e->message));
        json_object_object_add(o, "error", eo);
        return to_string_free(o);
}

char *proto_event_head(const char *name, json_object *fields, size_t *ret_len) {
        json_object *o = fields ? fields : json_object_new_object();
        char *s;
        size_t n;

        if (!o)
                return NULL;
        json_object_object_add(o, "event", json_object_new_string(name));
        s = to_string_free(o);
        if (!s)
                return NULL;
        n = strlen(s);
        if (n < 2 || s[n - 1] != '}') {
                free(s);
                return NULL;
        }
        s[--n] = 0;   /* the closing brace comes after the seq */
        *ret_len = n;
        return s;
}

char *proto_event_finish(const char *head, size_t len, uint64_t seq) {
        char digits[20], *d = digits + sizeof(digits), *s;
        size_t n;

        /* by hand, not snprintf(): this runs once per event and connection, a third of its cost */
        do
                *--d = (char) ('0' + seq % 10);
        while ((seq /= 10) > 0);
        n = (size_t) (digits + sizeof(digits) - d);
        s = malloc(len + sizeof(",\"seq\":}") + n);
        if (!s)
                return NULL;
        memcpy(s, head, len);
        memcpy(s + len, ",\"seq\":", 7);
        memcpy(s + len + 7, d, n);
        memcpy(s + len + 7 + n, "}", 2);
        return s;
}

char *proto_event(const char *name, uint64_t seq, json_object *fields) {
        json_object *o = fields ? fields : json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "event", json_object_new_string(name));
        json_object_object_add(o, "seq", json_object_new_uint64(seq));
        return to_string_free(o);
}
