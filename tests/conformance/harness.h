/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A minimal TAP producer for the conformance programs that run under luo-emu. Each
 * program checks the rules of one area across boots; every check prints one TAP line,
 * and the last boot prints the plan. meson runs them with protocol 'tap'.
 *
 * Boot number: LUO_EMU_BOOT (set by luo-emu, 0 on the first boot). An emulated kexec
 * starts the program afresh, so the running counts cross the reboot the way anything
 * crosses a real one: in a file on disk, named by LUO_TEST_STATE (meson sets a distinct
 * one per test), default ./luo-test.state.
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failed;
static int harness_count;
static const char *harness_todo_reason;   /* set by harness_todo(), applies to the next check */

/*
 * Mark the next check as a known failure of the emulator: if it fails, it is printed
 * with a TAP "# TODO" directive and does not fail the test; if it passes it is a plain
 * "ok" (so fixing the emulator never turns the suite red). Every use must be listed in
 * a report so that it gets fixed; remove it once the check passes.
 */
static inline void harness_todo(const char *reason) {
        harness_todo_reason = reason;
}

/*
 * Whether the kernel is expected to behave as Linux 7.2 (spec §8): luo-emu --kernel=7.2 says so
 * in LUO_EMU_KERNEL. Everywhere else (luo-emu's default, the real 7.1.8 kernel) the 7.1 rules.
 */
static inline int harness_kernel_7_2(void) {
        const char *k = getenv("LUO_EMU_KERNEL");
        return k && strcmp(k, "7.2") == 0;
}

static inline int harness_boot(void) {
        const char *b = getenv("LUO_EMU_BOOT");
        return b ? atoi(b) : -1;
}

static inline const char *harness_state_path(void) {
        const char *p = getenv("LUO_TEST_STATE");
        return p && *p ? p : "./luo-test.state";
}

/* Call first. On boot 0 the counts start at zero; later boots continue from the file. */
static inline void harness_init(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        harness_count = harness_failed = 0;
        if (harness_boot() > 0) {
                FILE *f = fopen(harness_state_path(), "re");
                if (!f || fscanf(f, "%d %d", &harness_count, &harness_failed) != 2) {
                        printf("Bail out! cannot read test state %s\n", harness_state_path());
                        exit(1);
                }
                fclose(f);
        }
}

__attribute__((format(printf, 2, 3)))
static inline void harness_check(int ok, const char *fmt, ...) {
        va_list ap;
        const char *todo = harness_todo_reason;
        harness_todo_reason = NULL;
        harness_count++;
        if (!ok && !todo)
                harness_failed++;
        printf("%s %d - ", ok ? "ok" : "not ok", harness_count);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        if (todo && !ok)
                printf(" # TODO %s", todo);
        printf("\n");
}

/* A check that cannot run here (TAP "# SKIP"): counts as passed. */
static inline void harness_skip(const char *reason) {
        printf("ok %d - # SKIP %s\n", ++harness_count, reason);
}

/* Expect a syscall-style result: r == -1 with errno == e (e == 0: r >= 0). */
#define CHECK_ERRNO(r, e, ...) do {                                                \
                long _r = (long) (r);                                              \
                int _e = _r < 0 ? errno : 0;                                       \
                harness_check(_e == (e), __VA_ARGS__);                             \
                if (_e != (e))                                                     \
                        printf("#   expected %s, got %s (r=%ld)\n",                 \
                               (e) ? strerror(e) : "success", _e ? strerror(_e) : "success", _r); \
        } while (0)

/* Expect a negative-errno result from lib/: r == -e (e == 0: r >= 0). */
#define CHECK_NERRNO(r, e, ...) do {                                               \
                long _r = (long) (r);                                              \
                int _e = _r < 0 ? (int) -_r : 0;                                   \
                harness_check(_e == (e), __VA_ARGS__);                             \
                if (_e != (e))                                                     \
                        printf("#   expected %s, got %s (r=%ld)\n",                 \
                               (e) ? strerror(e) : "success", _e ? strerror(_e) : "success", _r); \
        } while (0)

/* Before a reboot: save the counts so the next boot continues the numbering. */
static inline void harness_carry(void) {
        FILE *f = fopen(harness_state_path(), "we");
        if (!f || fprintf(f, "%d %d\n", harness_count, harness_failed) < 0 || fclose(f) != 0) {
                printf("Bail out! cannot write test state %s\n", harness_state_path());
                exit(1);
        }
        fflush(stdout);
}

/* At the very end: print the plan and return the exit status. */
static inline int harness_done(void) {
        printf("1..%d\n", harness_count);
        return harness_failed ? 1 : 0;
}
