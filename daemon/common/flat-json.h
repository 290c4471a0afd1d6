/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A decoder for the one shape most protocol messages have: a flat JSON object whose values are
 * plain strings, small non-negative integers, booleans or null ({"id":7,"method":"ack",
 * "seq":3,"quiet":true}). It decodes only what it can decode exactly as json-c does and says
 * "not mine" for everything else (escapes, nesting, other numbers, duplicate keys, any syntax
 * error), so that json-c stays the one judge of what is valid JSON and what it means. json-c
 * builds a hash table and a heap object per field; at 256 VMs its parse of the
 * acknowledgements was a quarter of the daemon's freeze path (docs/performance.md).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLAT_JSON_FIELDS_MAX 16
#define FLAT_JSON_UINT_DIGITS 15          /* below 2^53: exact in every JSON implementation */

typedef enum FlatJsonType {
        FLAT_JSON_NULL,
        FLAT_JSON_BOOL,
        FLAT_JSON_UINT,
        FLAT_JSON_STRING,
} FlatJsonType;

typedef struct FlatJsonField {
        const char *key;                  /* NUL-terminated, in FlatJson.text */
        const char *str;                  /* FLAT_JSON_STRING: NUL-terminated, in FlatJson.text */
        size_t len;                       /* FLAT_JSON_STRING: bytes of str */
        uint64_t num;                     /* FLAT_JSON_UINT: the value; FLAT_JSON_BOOL: 0 or 1 */
        FlatJsonType type;
} FlatJsonField;

typedef struct FlatJson {
        char *text;                       /* owned: a copy of the message, strings cut in place */
        FlatJsonField fields[FLAT_JSON_FIELDS_MAX];
        size_t n_fields;                  /* in the order of the message */
} FlatJson;

/*
 * flat_json_parse() - decode @len bytes of @buf (no NUL bytes, already valid UTF-8) if they are a
 * flat object as above, with JSON whitespace around any token. Returns 1 and fills @ret (free
 * with flat_json_done()), 0 if the message is anything else (nothing allocated), -ENOMEM.
 */
int flat_json_parse(const char *buf, size_t len, FlatJson *ret);

/* flat_json_find() - the field named @key, or NULL. */
const FlatJsonField *flat_json_find(const FlatJson *j, const char *key);

/* flat_json_done() - free what flat_json_parse() allocated; @j may be zeroed or already done. */
void flat_json_done(FlatJson *j);
