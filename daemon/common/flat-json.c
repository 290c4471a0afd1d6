/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The flat-object fast path of the protocol decoder; see flat-json.h for what it takes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/flat-json.h"

static char *skip_ws(char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

/* @p is after the opening quote. Cuts the string at its closing quote; NULL if not plain. */
static char *scan_string(char *p, const char *end, size_t *ret_len) {
        char *s = p;

        for (; p < end; p++) {
                unsigned char c = (unsigned char) *p;
                if (c == '"') {
                        *p = 0;
                        *ret_len = (size_t) (p - s);
                        return p + 1;
                }
                /* An escape means decoding, and json-c's handling of lone surrogates is its
                 * own; a control character is an error. Both are json-c's to judge. */
                if (c == '\\' || c < 0x20)
                        return NULL;
        }
        return NULL;
}

static char *scan_literal(char *p, const char *end, const char *word) {
        size_t n = strlen(word);

        if ((size_t) (end - p) < n || memcmp(p, word, n) != 0)
                return NULL;
        return p + n;
}

/* Fills @f's value from @p; returns the position after it, NULL if not one we take. */
static char *scan_value(char *p, const char *end, FlatJsonField *f) {
        if (p >= end)
                return NULL;
        switch (*p) {
        case '"':
                f->type = FLAT_JSON_STRING;
                f->str = p + 1;
                return scan_string(p + 1, end, &f->len);
        case 't':
                f->type = FLAT_JSON_BOOL;
                f->num = 1;
                return scan_literal(p, end, "true");
        case 'f':
                f->type = FLAT_JSON_BOOL;
                f->num = 0;
                return scan_literal(p, end, "false");
        case 'n':
                f->type = FLAT_JSON_NULL;
                return scan_literal(p, end, "null");
        case '0' ... '9': {
                uint64_t v = 0;
                size_t n = 0;

                /* "01" is an error in strict JSON, "1.0" and "1e3" are doubles: json-c's. */
                for (; p < end && *p >= '0' && *p <= '9'; p++, n++) {
                        if (n == FLAT_JSON_UINT_DIGITS || (n == 1 && v == 0))
                                return NULL;
                        v = v * 10 + (uint64_t) (*p - '0');
                }
                if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
                        return NULL;
                f->type = FLAT_JSON_UINT;
                f->num = v;
                return p;
        }
        default:
                return NULL;   /* an object, an array, a negative number, an error */
        }
}

static int parse_into(char *p, const char *end, FlatJson *j) {
        p = skip_ws(p, end);
        if (p >= end || *p != '{')
                return 0;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}')
                p++;
        else
                for (;;) {
                        FlatJsonField *f;
                        size_t klen;

                        if (p >= end || *p != '"' || j->n_fields == FLAT_JSON_FIELDS_MAX)
                                return 0;
                        f = &j->fields[j->n_fields];
                        *f = (FlatJsonField) { .key = p + 1 };
                        p = scan_string(p + 1, end, &klen);
                        if (!p)
                                return 0;
                        /* json-c keeps the last of duplicate keys in the first one's place. */
                        if (flat_json_find(j, f->key))
                                return 0;
                        p = skip_ws(p, end);
                        if (p >= end || *p != ':')
                                return 0;
                        p = scan_value(skip_ws(p + 1, end), end, f);
                        if (!p)
                                return 0;
                        j->n_fields++;
                        p = skip_ws(p, end);
                        if (p < end && *p == ',') {
                                p = skip_ws(p + 1, end);
                                continue;
                        }
                        if (p < end && *p == '}') {
                                p++;
                                break;
                        }
                        return 0;
                }
        return skip_ws(p, end) == end;
}

int flat_json_parse(const char *buf, size_t len, FlatJson *ret) {
        FlatJson j = {};
        int r;

        j.text = malloc(len + 1);
        if (!j.text)
                return -ENOMEM;
        memcpy(j.text, buf, len);
        j.text[len] = 0;
        r = parse_into(j.text, j.text + len, &j);
        if (r <= 0) {
                free(j.text);
                return r;
        }
        *ret = j;
        return 1;
}

const FlatJsonField *flat_json_find(const FlatJson *j, const char *key) {
        for (size_t i = 0; i < j->n_fields; i++)
                if (strcmp(j->fields[i].key, key) == 0)
                        return &j->fields[i];
        return NULL;
}

void flat_json_done(FlatJson *j) {
        free(j->text);
        *j = (FlatJson) {};
}
