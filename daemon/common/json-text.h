/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON text written directly into a growing buffer, byte for byte what json-c prints
 * (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE): building json-c trees only to
 * print them, and json-c's printbuf with a sprintf per number, were most of the freeze path's
 * instructions (docs/performance.md). Used for replies and events (protocol.c) and the registry
 * (core/registry.c). On OOM the buffer stops growing and json_text_finish() returns NULL.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct JsonText {
        char *p;
        size_t n, cap;
        bool oom;
} JsonText;

/* json_text_add() - append @n bytes of @s as they are. */
void json_text_add(JsonText *b, const char *s, size_t n);
#define json_text_lit(b, s) json_text_add(b, s, sizeof(s) - 1)
/* json_text_u64() - append @v in decimal. */
void json_text_u64(JsonText *b, uint64_t v);
/* json_text_str() - append @n bytes of @s as a JSON string, escaped as json-c escapes it. */
void json_text_str(JsonText *b, const char *s, size_t n);
/* json_text_string() - the same for a NUL-terminated @s. */
void json_text_string(JsonText *b, const char *s);
/* json_text_value() - append the text json-c prints for @v (NULL: null). */
void json_text_value(JsonText *b, json_object *v);
/* json_text_finish() - the NUL-terminated text (its length in @ret_len), or NULL on OOM; @b is emptied. */
char *json_text_finish(JsonText *b, size_t *ret_len);
