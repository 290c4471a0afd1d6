/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON text written directly, json-c's bytes; see json-text.h. */
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#include "common/json-text.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void json_text_add(JsonText *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->n + n + 1 > b->cap) {
                size_t cap = MAX(MAX(b->cap * 2, b->n + n + 1), (size_t) 256);
                char *t = realloc(b->p, cap);
                if (!t) {
                        b->oom = true;
                        return;
                }
                b->p = t;
                b->cap = cap;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
}

/* json-c's own text of @v (doubles, odd strings, anything deeper than we go). */
static void jb_json_c(JsonText *b, json_object *v) {
        size_t n;
        const char *t = json_object_to_json_string_length(v, JSON_FLAGS, &n);

        if (!t)
                b->oom = true;
        else
                json_text_add(b, t, n);
}

static void jb_int(JsonText *b, json_object *v) {
        char d[24], *e = d + sizeof(d), *q = e;
        int64_t i = json_object_get_int64(v);
        /* an int64 >= 0 reads the same as a uint64; a uint64 above INT64_MAX reads as INT64_MAX */
        uint64_t u = i < 0 ? (uint64_t) 0 - (uint64_t) i : json_object_get_uint64(v);

        do
                *--q = (char) ('0' + u % 10);
        while ((u /= 10) > 0);
        if (i < 0)
                *--q = '-';
        json_text_add(b, q, (size_t) (e - q));
}

/* Printable ASCII but '"' and '\' goes out as it is; anything else through json-c's escaping. */
void json_text_str(JsonText *b, const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                        json_object *j = json_object_new_string_len(s, (int) n);
                        if (!j)
                                b->oom = true;
                        else
                                jb_json_c(b, j);
                        json_object_put(j);
                        return;
                }
        }
        /* One reservation for quote, text and quote: three appends were a tenth of the restore path. */
        json_text_add(b, "\"", 1);
        if (b->oom || b->n + n + 2 > b->cap) {
                json_text_add(b, s, n);
                json_text_add(b, "\"", 1);
                return;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n++] = '"';
        b->p[b->n] = 0;
}

static void jb_value(JsonText *b, json_object *v, unsigned depth) {
        bool first = true;

        if (!v) {
                json_text_lit(b, "null");
                return;
        }
        switch (depth < 32 ? json_object_get_type(v) : json_type_double) {
        case json_type_boolean:
                if (json_object_get_boolean(v))
                        json_text_lit(b, "true");
                else
                        json_text_lit(b, "false");
                return;
        case json_type_int:
                jb_int(b, v);
                return;
        case json_type_string:
                json_text_str(b, json_object_get_string(v), (size_t) json_object_get_string_len(v));
                return;
        case json_type_object:
                json_text_lit(b, "{");
                json_object_object_foreach(v, key, val) {
                        if (!first)
                                json_text_lit(b, ",");
                        first = false;
                        json_text_str(b, key, strlen(key));
                        json_text_lit(b, ":");
                        jb_value(b, val, depth + 1);
                }
                json_text_lit(b, "}");
                return;
        case json_type_array:
                json_text_lit(b, "[");
                for (size_t i = 0, n = json_object_array_length(v); i < n; i++) {
                        if (i)
                                json_text_lit(b, ",");
                        jb_value(b, json_object_array_get_idx(v, i), depth + 1);
                }
                json_text_lit(b, "]");
                return;
        default:   /* doubles keep json-c's formatting (and a parsed number its original text) */
                jb_json_c(b, v);
                return;
        }
}

void json_text_string(JsonText *b, const char *s) {
        json_text_str(b, s, strlen(s));
}

void json_text_value(JsonText *b, json_object *v) {
        jb_value(b, v, 0);
}

void json_text_u64(JsonText *b, uint64_t v) {
        char d[21], *e = d + sizeof(d), *q = e;

        do
                *--q = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        json_text_add(b, q, (size_t) (e - q));
}

char *json_text_finish(JsonText *b, size_t *ret_len) {
        char *p = b->p;

        if (b->oom || !p) {
                free(p);
                p = NULL;
        } else if (ret_len)
                *ret_len = b->n;
        *b = (JsonText) {};
        return p;
}
