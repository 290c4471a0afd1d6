/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Assertion helpers for the lib/ unit tests: print the failing expression, keep going, fail at the end. */
#pragma once

#include <stdio.h>
#include <string.h>

static int test_failures;

#define TEST_ASSERT(expr) do {                                                  \
                if (!(expr)) {                                                  \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n",        \
                                __FILE__, __LINE__, #expr);                     \
                        test_failures++;                                        \
                }                                                               \
        } while (0)

/* Expect a negative-errno result equal to @e (0 = any success). */
#define TEST_ERRNO(expr, e) do {                                                \
                long _r = (long) (expr);                                        \
                long _e = (long) (e);                                           \
                if (_e == 0 ? _r < 0 : _r != -_e) {                             \
                        fprintf(stderr, "%s:%d: %s = %ld (%s), expected %s\n",  \
                                __FILE__, __LINE__, #expr, _r,                  \
                                _r < 0 ? strerror((int) -_r) : "success",       \
                                _e ? strerror((int) _e) : "success");           \
                        test_failures++;                                        \
                }                                                               \
        } while (0)

#define TEST_STREQ(a, b) do {                                                   \
                const char *_a = (a), *_b = (b);                                \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                        \
                        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n",            \
                                __FILE__, __LINE__, _a ?: "(null)", _b ?: "(null)"); \
                        test_failures++;                                        \
                }                                                               \
        } while (0)

static inline int test_result(const char *name) {
        if (test_failures) {
                fprintf(stderr, "%s: %d failure(s)\n", name, test_failures);
                return 1;
        }
        printf("%s: all passed\n", name);
        return 0;
}
