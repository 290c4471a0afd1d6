/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lu-vfiod wire protocol (docs/protocol.md): decoding and validating one JSON
 * message, encoding replies and events. Pure functions over buffers and json-c objects,
 * no sockets and no global state, so they can be unit-tested and fuzzed.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/flat-json.h"
#include "macro.h"

#define PROTO_VERSION          2
#define PROTO_VERSION_MIN      1
#define PROTO_ID_MAX           ((uint64_t) 1 << 53)   /* exact in every JSON implementation */
#define PROTO_VM_ID_MAX        36
#define PROTO_LABEL_MAX        64
#define PROTO_CLIENT_MAX       64                     /* hello "client", bytes */
#define PROTO_ACK_MESSAGE_MAX  256                    /* ack "message", bytes */
#define PROTO_RECLAIM_LABELS_MAX 16                   /* labels in one multi-label reclaim */

typedef enum ProtoErrorCode {
        PROTO_OK = 0,
        PROTO_E_INVALID_JSON,        /* not a JSON object, bad UTF-8, nested too deep, trailing data */
        PROTO_E_INVALID_MESSAGE,     /* JSON but not a valid request: bad/missing id or method */
        PROTO_E_MESSAGE_TOO_LARGE,   /* longer than the configured limit (it was truncated) */
        PROTO_E_TOO_MANY_FDS,        /* more fds than allowed per message; all were closed */
        PROTO_E_UNKNOWN_METHOD,
        PROTO_E_INVALID_PARAMS,      /* a field missing, of the wrong type or out of range */
        PROTO_E_WRONG_FD_COUNT,      /* this method needs a different number of fds */
        PROTO_E_WRONG_FD_KIND,       /* fd is not of a kind this method accepts */
        PROTO_E_VERSION,             /* no common protocol version */
        PROTO_E_HELLO_REQUIRED,      /* first request must be hello */
        PROTO_E_ALREADY_HELLO,
        PROTO_E_PERMISSION_DENIED,   /* peer may not do this (uid, VM claim rules, operator) */
        PROTO_E_VM_BUSY,             /* another connection holds this VM */
        PROTO_E_LABEL_EXISTS,
        PROTO_E_LABEL_UNKNOWN,
        PROTO_E_LIMIT,               /* items/VMs/requests limit reached */
        PROTO_E_ORDER,               /* memfd -> iommufd -> VFIO order violated */
        PROTO_E_STATE,               /* not allowed in the current update state */
        PROTO_E_KERNEL,              /* the kernel refused; errno in the reply */
        PROTO_E_PRECONDITION,        /* a pre-flight check of prepare failed */
        PROTO_E_TIMEOUT,
        PROTO_E_CANCELLED,
        PROTO_E_INTERNAL,
        _PROTO_E_MAX,
} ProtoErrorCode;

const char *proto_error_to_string(ProtoErrorCode c);

typedef struct ProtoError {
        ProtoErrorCode code;
        int error;                   /* positive errno or 0 */
        char message[256];
} ProtoError;

/* proto_error_set() - fill @e; returns -EINVAL-ish negative errno for convenient returns. */
int proto_error_set(ProtoError *e, ProtoErrorCode code, int error, const char *fmt, ...) _printf_(4, 5);

/* utf8_truncate() - make @s valid UTF-8 after a bounded format: drop a cut sequence at the end, '?' for other invalid bytes. */
void utf8_truncate(char *s);
/* utf8_prefix_len() - length of @s cut to at most @max bytes on a character boundary (for "%.*s"). */
size_t utf8_prefix_len(const char *s, size_t max);

/* Names: VM ids 1-36 of [A-Za-z0-9._-], labels 1-64 of [A-Za-z0-9._:-]. */
bool proto_vm_id_is_valid(const char *s);
bool proto_label_is_valid(const char *s);

typedef struct ProtoRequest {
        json_object *obj;            /* owned: the whole message, or NULL when it was decoded flat */
        FlatJson flat;               /* owned: the whole message when it was a flat object (flat.text set) */
        bool has_id;
        uint64_t id;
        const char *method;          /* points into obj */
} ProtoRequest;

void proto_request_done(ProtoRequest *r);

/*
 * proto_request_parse() - decode one message of @len bytes.
 * Requires a JSON object (strict JSON, valid UTF-8, at most @max_depth nesting, no
 * trailing bytes other than whitespace), an integer "id" in 1..2^53 and a string
 * "method". On failure fills @err and returns a negative errno; r->has_id tells whether
 * the id could still be read, so the error reply can carry it.
 */
int proto_request_parse(const char *buf, size_t len, unsigned max_depth, ProtoRequest *r, ProtoError *err);
/*
 * proto_request_parse_json() - the same, always through json-c (never decoded flat). The result
 * and every error are proto_request_parse()'s; tests and fuzzers compare the two.
 */
int proto_request_parse_json(const char *buf, size_t len, unsigned max_depth, ProtoRequest *r, ProtoError *err);

/* Field accessors: on failure fill @err (INVALID_PARAMS naming the field) and return -EINVAL. */
int proto_get_string(const ProtoRequest *r, const char *key, bool required, const char **ret, ProtoError *err);
/* proto_get_text() - a string for logs and messages: at most @max_len bytes, no control characters (no log injection). */
int proto_get_text(const ProtoRequest *r, const char *key, bool required, size_t max_len, const char **ret, ProtoError *err);
int proto_get_uint(const ProtoRequest *r, const char *key, bool required, uint64_t max, uint64_t *ret, ProtoError *err);
int proto_get_bool(const ProtoRequest *r, const char *key, bool required, bool *ret, ProtoError *err);
/*
 * proto_get_string_array() - an array of 1..@max strings (no NUL characters) into @ret, which
 * has room for @max; the count in @ret_n. 0 (and *ret_n = 0) when absent or null.
 */
int proto_get_string_array(const ProtoRequest *r, const char *key, size_t max, const char **ret, size_t *ret_n, ProtoError *err);
/* proto_check_fields() - refuse unknown top-level keys (id and method always allowed). NULL-terminated list. */
int proto_check_fields(const ProtoRequest *r, const char *const *allowed, ProtoError *err);

/*
 * Encoders: return a malloc'd NUL-terminated string (compact JSON) or NULL on OOM.
 * proto_reply_ok() takes ownership of @result (may be NULL for {}).
 */
char *proto_reply_ok(uint64_t id, json_object *result);
/* proto_reply_error() - @has_id false gives "id": null (the request had no usable id). */
char *proto_reply_error(bool has_id, uint64_t id, const ProtoError *e);
/*
 * proto_json_text() - the text json-c prints for @v (JSON_C_TO_STRING_PLAIN | NOSLASHESCAPE),
 * byte for byte, written directly: json-c's printbuf and a sprintf per number were a fifth of
 * the freeze path (docs/performance.md). NULL on OOM.
 */
char *proto_json_text(json_object *v, size_t *ret_len);
/* proto_event() - {"event": name, "seq": seq, ...fields}; takes ownership of @fields (may be NULL). */
char *proto_event(const char *name, uint64_t seq, json_object *fields);
/*
 * The same text in two steps, for one event sent to many connections (each with its own seq):
 * proto_event_head() prints @fields (ownership taken) with "event" once, without its closing
 * brace; proto_event_finish() adds ,"seq":N}. The result is proto_event()'s, byte for byte.
 */
char *proto_event_head(const char *name, json_object *fields, size_t *ret_len);
char *proto_event_finish(const char *head, size_t len, uint64_t seq);

static inline json_object *json_object_put_null(json_object *o) {
        json_object_put(o);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put_null);
