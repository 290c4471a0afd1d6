/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the fuzz targets: the libFuzzer entry point and the checks a target makes
 * on what the parser under test accepted. A failed check aborts, so libFuzzer (and the
 * corpus replayer) report it like a sanitizer finding, with the input saved.
 *
 * Checks for bugs that are known and not yet fixed are "known" checks: they only abort
 * with LU_FUZZ_STRICT=1 in the environment, so that a bounded fuzz run in CI stays
 * useful (it keeps looking for new problems) while a reproducer in
 * corpus/<target>/crashes/ still demonstrates the open bug. When the fix lands, the
 * check becomes FUZZ_CHECK and the reproducer moves into the regression corpus.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr, ...) do {                                              \
                if (!(expr)) {                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s: ",            \
                                __FILE__, __LINE__, #expr);                     \
                        fprintf(stderr, __VA_ARGS__);                           \
                        fputc('\n', stderr);                                    \
                        abort();                                                \
                }                                                               \
        } while (0)

static inline bool fuzz_strict(void) {
        static int strict = -1;

        if (strict < 0) {
                const char *e = getenv("LU_FUZZ_STRICT");
                strict = e && *e && *e != '0';
        }
        return strict;
}

/* @bug names the open bug (docs/reliability.md lists them). */
#define FUZZ_CHECK_KNOWN(bug, expr, ...) do {                                   \
                if (fuzz_strict())                                              \
                        FUZZ_CHECK(expr, "[known bug " bug "] " __VA_ARGS__);   \
        } while (0)
