/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for protocol.c: decoding limits and error replies as a client sees them. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "common/protocol.h"

static int failures;
#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); failures++; } } while (0)

static ProtoErrorCode parse(const char *s, ProtoRequest *r) {
        ProtoError e = {};
        int k = proto_request_parse(s, strlen(s), 8, r, &e);
        CHECK((k < 0) == (e.code != PROTO_OK));
        return e.code;
}

/* Every accessor's answer for @key, as one string, so that two decodings can be compared. */
static void describe_field(const ProtoRequest *r, const char *key, char *buf, size_t size) {
        ProtoError e1 = {}, e2 = {}, e3 = {}, e4 = {};
        const char *s = NULL, *arr[4] = {};
        uint64_t u = 0;
        bool b = false;
        size_t n = 0;
        int k1 = proto_get_string(r, key, true, &s, &e1);
        int k2 = proto_get_uint(r, key, true, UINT64_MAX, &u, &e2);
        int k3 = proto_get_bool(r, key, true, &b, &e3);
        int k4 = proto_get_string_array(r, key, 4, arr, &n, &e4);

        (void) snprintf(buf, size, "%d[%s]%s|%d[%s]%llu|%d[%s]%d|%d[%s]%zu",
                        k1, e1.message, k1 > 0 ? s : "", k2, e2.message, (unsigned long long) (k2 > 0 ? u : 0),
                        k3, e3.message, k3 > 0 && b, k4, e4.message, n);
}

/* The flat fast path and json-c must agree on @msg: outcome, error, id, method, every field. */
static void check_same_decoding(const char *msg, bool want_flat) {
        static const char *const keys[] = { "id", "method", "vm", "seq", "quiet", "ok", "labels", "x", "", NULL };
        const char *const none[] = { NULL };
        ProtoRequest a, b;
        ProtoError ea = {}, eb = {};
        int ka = proto_request_parse(msg, strlen(msg), 8, &a, &ea);
        int kb = proto_request_parse_json(msg, strlen(msg), 8, &b, &eb);

        CHECK(ka == kb && ea.code == eb.code && strcmp(ea.message, eb.message) == 0);
        CHECK(a.has_id == b.has_id && a.id == b.id);
        CHECK(!b.flat.text);
        if (ka != kb || (ka >= 0 && want_flat != !!a.flat.text))
                fprintf(stderr, "decodings differ or fast path %s for: %s\n", a.flat.text ? "taken" : "not taken", msg);
        if (ka >= 0 && kb >= 0) {
                CHECK(want_flat == !!a.flat.text);
                CHECK(strcmp(a.method, b.method) == 0);
                for (const char *const *k = keys; *k; k++) {
                        char da[1200], db[1200];
                        describe_field(&a, *k, da, sizeof(da));
                        describe_field(&b, *k, db, sizeof(db));
                        CHECK(strcmp(da, db) == 0);
                }
                ea = eb = (ProtoError) {};
                CHECK(proto_check_fields(&a, none, &ea) == proto_check_fields(&b, none, &eb));
                CHECK(strcmp(ea.message, eb.message) == 0);
        }
        proto_request_done(&a);
        proto_request_done(&b);
}

int main(void) {
        ProtoRequest r;
        ProtoError e = {};
        const char *s;
        uint64_t u;
        bool b;
        char *out;

        CHECK(proto_vm_id_is_valid("vm-1.a_b"));
        CHECK(!proto_vm_id_is_valid(""));
        CHECK(!proto_vm_id_is_valid("vm/1"));
        CHECK(!proto_vm_id_is_valid("vm:1"));
        CHECK(proto_vm_id_is_valid("123456789012345678901234567890123456"));
        CHECK(!proto_vm_id_is_valid("1234567890123456789012345678901234567"));
        CHECK(proto_label_is_valid("ram:node0"));
        CHECK(!proto_label_is_valid("ram node0"));
        CHECK(!proto_label_is_valid("ä"));

        CHECK(parse("{\"id\":1,\"method\":\"hello\",\"vm\":\"a\"}", &r) == PROTO_OK);
        CHECK(r.id == 1 && strcmp(r.method, "hello") == 0);
        CHECK(proto_get_string(&r, "vm", true, &s, &e) == 1 && strcmp(s, "a") == 0);
        CHECK(proto_get_string(&r, "label", true, &s, &e) < 0 && e.code == PROTO_E_INVALID_PARAMS);
        CHECK(strstr(e.message, "label"));
        CHECK(proto_get_uint(&r, "vm", true, 10, &u, &e) < 0);
        CHECK(proto_get_bool(&r, "force", false, &b, &e) == 0);
        {
                const char *const allowed[] = { "vm", NULL };
                const char *const none[] = { NULL };
                CHECK(proto_check_fields(&r, allowed, &e) == 0);
                CHECK(proto_check_fields(&r, none, &e) < 0 && strstr(e.message, "\"vm\""));
        }
        proto_request_done(&r);

        /* free text that ends up in logs: bounded, no control characters */
        CHECK(parse("{\"id\":1,\"method\":\"ack\",\"message\":\"device busy\",\"nl\":\"a\\nFAKE: forged\","
                    "\"esc\":\"\\u001b[2J\",\"del\":\"\\u007f\",\"ok\":\"caf\u00e9\"}", &r) == PROTO_OK);
        CHECK(proto_get_text(&r, "message", true, 256, &s, &e) == 1 && strcmp(s, "device busy") == 0);
        CHECK(proto_get_text(&r, "message", true, 10, &s, &e) < 0 && strstr(e.message, "longer than 10 bytes"));
        CHECK(proto_get_text(&r, "nl", true, 256, &s, &e) < 0 && strstr(e.message, "\"nl\" contains a control character"));
        CHECK(proto_get_text(&r, "esc", true, 256, &s, &e) < 0 && e.code == PROTO_E_INVALID_PARAMS);
        CHECK(proto_get_text(&r, "del", true, 256, &s, &e) < 0);
        CHECK(proto_get_text(&r, "ok", true, 256, &s, &e) == 1);   /* UTF-8 is text */
        s = "x";
        CHECK(proto_get_text(&r, "missing", false, 256, &s, &e) == 0 && s == NULL);
        proto_request_done(&r);

        /* malformed */
        CHECK(parse("", &r) == PROTO_E_INVALID_JSON);
        CHECK(parse("{\"id\":1,\"method\":\"hel", &r) == PROTO_E_INVALID_JSON);
        CHECK(parse("[1,2]", &r) == PROTO_E_INVALID_MESSAGE);
        CHECK(parse("{\"id\":1,\"method\":\"x\"} x", &r) == PROTO_E_INVALID_JSON);
        CHECK(parse("{\"id\":1,\"method\":\"x\"}  \n", &r) == PROTO_OK);
        proto_request_done(&r);
        CHECK(parse("{\"id\":1,,}", &r) == PROTO_E_INVALID_JSON);
        CHECK(parse("{\"id\":0,\"method\":\"x\"}", &r) == PROTO_E_INVALID_MESSAGE && !r.has_id);
        CHECK(parse("{\"id\":-5,\"method\":\"x\"}", &r) == PROTO_E_INVALID_MESSAGE);
        CHECK(parse("{\"id\":1.5,\"method\":\"x\"}", &r) == PROTO_E_INVALID_MESSAGE);
        CHECK(parse("{\"id\":99999999999999999999,\"method\":\"x\"}", &r) == PROTO_E_INVALID_MESSAGE);
        CHECK(parse("{\"id\":9007199254740993,\"method\":\"x\"}", &r) == PROTO_E_INVALID_MESSAGE);
        CHECK(parse("{\"id\":\"1\",\"method\":\"x\"}", &r) == PROTO_E_INVALID_MESSAGE);
        CHECK(parse("{\"id\":7,\"method\":3}", &r) == PROTO_E_INVALID_MESSAGE && r.has_id && r.id == 7);
        CHECK(parse("{\"id\":7}", &r) == PROTO_E_INVALID_MESSAGE && r.has_id);
        CHECK(parse("{\"id\":1,\"method\":\"x\",\"a\":[[[[[[[[[1]]]]]]]]]}", &r) == PROTO_E_INVALID_JSON);
        CHECK(parse("{\"id\":1,\"method\":\"x\",\"a\":\"\xff\xfe\"}", &r) == PROTO_E_INVALID_JSON);
        {
                const char msg[] = "{\"id\":1,\"method\":\"x\"}\0{}";
                CHECK(proto_request_parse(msg, sizeof(msg) - 1, 8, &r, &e) < 0 && e.code == PROTO_E_INVALID_JSON);
        }

        /* the flat fast path (flat-json.c) decodes exactly what json-c decodes, or leaves it to json-c */
        check_same_decoding("{\"id\":1,\"method\":\"ack\",\"seq\":12,\"quiet\":true}", true);
        check_same_decoding(" {\r\n\t\"id\" : 3 , \"method\" :\"hello\" ,\"vm\":\"vm-1\",\"ok\":false,\"x\":null } \n", true);
        check_same_decoding("{\"id\":999999999999999,\"method\":\"x\",\"seq\":0,\"\":\"caf\u00e9\x7f\"}", true);
        check_same_decoding("{}", true);
        check_same_decoding("{\"method\":\"x\"}", true);
        check_same_decoding("{\"id\":0,\"method\":\"x\"}", true);
        check_same_decoding("{\"id\":1,\"method\":\"\"}", true);
        check_same_decoding("{\"id\":1,\"method\":null}", true);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"labels\":\"a\"}", true);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"labels\":[\"a\",\"b\"]}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"labels\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"vm\":\"a\\u0000b\"}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"vm\":\"a\\\"b\"}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"vm\":\"a\",\"vm\":\"b\"}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"seq\":01}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"seq\":1.0}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"seq\":1e2}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"seq\":-1}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"seq\":1000000000000000}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"seq\":9007199254740993}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"ok\":tru}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"ok\":truex}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\"} x", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\"}{}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"vm\":\"a\tb\"}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"vm\":{}}", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\"", false);
        check_same_decoding("{\"id\":1,\"method\":\"x\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,"
                            "\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1}", false);
        {
                /* a MaxJSONDepth of 0 allows no object at all: json-c's answer */
                ProtoRequest ra, rb;
                ProtoError ea = {}, eb = {};
                const char *m = "{\"id\":1,\"method\":\"x\"}";
                CHECK(proto_request_parse(m, strlen(m), 0, &ra, &ea) == proto_request_parse_json(m, strlen(m), 0, &rb, &eb));
                CHECK(ea.code == eb.code && strcmp(ea.message, eb.message) == 0);
                proto_request_done(&ra);
                proto_request_done(&rb);
        }

        /* escaped NULs: never act on a different string than the one sent */
        CHECK(parse("{\"id\":1,\"method\":\"forget\\u0000x\"}", &r) == PROTO_E_INVALID_MESSAGE && r.has_id);
        CHECK(parse("{\"id\":1,\"method\":\"x\",\"label\":\"ram0\\u0000../x\"}", &r) == PROTO_OK);
        CHECK(proto_get_string(&r, "label", true, &s, &e) < 0 && e.code == PROTO_E_INVALID_PARAMS && strstr(e.message, "NUL"));
        proto_request_done(&r);

        /* error messages stay valid UTF-8 when cut */
        {
                char buf[8] = "ab\xc3\xa9";       /* "abé" */
                utf8_truncate(buf);
                CHECK(strcmp(buf, "ab\xc3\xa9") == 0);
                buf[3] = 0;                         /* cut inside é */
                utf8_truncate(buf);
                CHECK(strcmp(buf, "ab") == 0);
                strcpy(buf, "a\xe2\x82");           /* 2 of 3 bytes of € */
                utf8_truncate(buf);
                CHECK(strcmp(buf, "a") == 0);
                CHECK(utf8_prefix_len("ab\xc3\xa9z", 3) == 2);
                strcpy(buf, "a\xc3\"b");              /* cut in the middle */
                utf8_truncate(buf);
                CHECK(strcmp(buf, "a?\"b") == 0);
                CHECK(utf8_prefix_len("abc", 64) == 3);
        }
        {
                char msg[400];
                memset(msg, 0, sizeof(msg));
                strcpy(msg, "{\"id\":1,\"method\":\"x\",\"");
                for (int i = 0; i < 63; i++)
                        strcat(msg, "k");
                strcat(msg, "\xc3\xa9\":1}");
                CHECK(parse(msg, &r) == PROTO_OK);
                {
                        const char *const none[] = { NULL };
                        CHECK(proto_check_fields(&r, none, &e) < 0);
                        CHECK(strstr(e.message, "\xc3\"") == NULL);   /* no half character before the quote */
                }
                proto_request_done(&r);
        }

        /* encoders */
        out = proto_reply_ok(42, NULL);
        CHECK(out && strcmp(out, "{\"id\":42,\"result\":{}}") == 0);
        free(out);
        proto_error_set(&e, PROTO_E_LABEL_EXISTS, 17, "label \"%s\" exists", "x");
        out = proto_reply_error(true, 3, &e);
        CHECK(out && strcmp(out, "{\"id\":3,\"error\":{\"code\":\"label-exists\",\"errno\":17,\"message\":\"label \\\"x\\\" exists\"}}") == 0);
        free(out);
        out = proto_reply_error(false, 0, &e);
        CHECK(out && strncmp(out, "{\"id\":null,", 11) == 0);
        free(out);
        out = proto_event("prepare", 5, NULL);
        CHECK(out && strcmp(out, "{\"event\":\"prepare\",\"seq\":5}") == 0);
        free(out);
        /* one event to many connections (send_all()): head once, each its seq; proto_event()'s text */
        {
                char *head, *one;
                size_t len;
                json_object *f = json_object_new_object(), *g = json_object_new_object();

                json_object_object_add(f, "update", json_object_new_uint64(7));
                json_object_object_add(f, "reason", json_object_new_string("a \"quoted\" reason/x"));
                json_object_object_add(g, "update", json_object_new_uint64(7));
                json_object_object_add(g, "reason", json_object_new_string("a \"quoted\" reason/x"));
                head = proto_event_head("resume", f, &len);
                one = proto_event_finish(head, len, 18446744073709551615ULL);
                out = proto_event("resume", 18446744073709551615ULL, g);
                CHECK(head && one && out && strcmp(one, out) == 0);
                free(one);
                free(out);
                one = proto_event_finish(head, len, 1);
                CHECK(one && strcmp(one, "{\"update\":7,\"reason\":\"a \\\"quoted\\\" reason/x\",\"event\":\"resume\",\"seq\":1}") == 0);
                free(one);
                free(head);
        }
        /* proto_json_text() is json-c's text, byte for byte, whatever the tree holds (json-text) */
        {
                static const char *const docs[] = {
                        "{\"a\":1,\"b\":-9223372036854775808,\"c\":18446744073709551615,\"d\":9223372036854775807,"
                        "\"e\":1.5,\"f\":-0.0,\"g\":1e300,\"h\":0.1000,\"i\":true,\"j\":false,\"k\":null,\"l\":[],\"m\":{},"
                        "\"n\":[1,null,\"x\",[[]],{\"o\":{}}],\"q\\\"uo\\\\te\":\"s\\/l\\u0001\\u001f\\u007f\\u00e9\\ud83d\\ude00\\t\\n\","
                        "\"\":\"\",\"z\":-1}",
                        "[]", "\"plain\"", "0", "-5", "3.25",
                        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1,{\"deep\":2.5}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                };
                for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
                        json_object *o = json_tokener_parse(docs[i]);
                        size_t n = 0;
                        char *t = o ? proto_json_text(o, &n) : NULL;
                        const char *ref = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
                        CHECK(o && t && ref && strcmp(t, ref) == 0 && n == strlen(ref));
                        if (t && ref && strcmp(t, ref) != 0)
                                fprintf(stderr, "json-text %zu:\n  ours   %s\n  json-c %s\n", i, t, ref);
                        free(t);
                        json_object_put(o);
                }
                /* built, not parsed: doubles without their text, int32 and uint64, embedded NUL, a NULL member */
                {
                        json_object *o = json_object_new_object(), *a = json_object_new_array();
                        char *t;
                        json_object_object_add(o, "d", json_object_new_double(2.0 / 3.0));
                        json_object_object_add(o, "i", json_object_new_int(-2147483647 - 1));
                        json_object_object_add(o, "u", json_object_new_uint64(18446744073709551615ULL));
                        json_object_object_add(o, "s", json_object_new_string_len("a\0b", 3));
                        json_object_object_add(o, "nul", NULL);
                        json_object_array_add(a, NULL);
                        json_object_array_add(a, json_object_new_boolean(1));
                        json_object_object_add(o, "a", a);
                        for (int d = 0; d < 40; d++) {   /* deeper than the direct printer goes */
                                json_object *w = json_object_new_array();
                                json_object_array_add(w, a == json_object_object_get(o, "a") ? json_object_new_string("in\"ner") : a);
                                a = w;
                        }
                        json_object_object_add(o, "deep", a);
                        t = proto_json_text(o, NULL);
                        CHECK(t && strcmp(t, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) == 0);
                        free(t);
                        json_object_put(o);
                }
        }
        for (unsigned c = 0; c < _PROTO_E_MAX; c++)
                CHECK(proto_error_to_string(c) != NULL);

        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
