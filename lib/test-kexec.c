/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for lib/kexec.c that need no privileges and never load anything: the
 * command line flag parser and the errors for missing files and bad arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kexec.h"
#include "test-helpers.h"

static void test_cmdline_flags(void) {
        static const struct {
                const char *cmdline;
                const char *key;
                bool expected;
        } cases[] = {
                { "", "liveupdate", false },
                { "root=/dev/sda1 quiet", "liveupdate", false },
                { "liveupdate", "liveupdate", false },              /* bare: kstrtobool(NULL) fails */
                { "liveupdate=on", "liveupdate", true },
                { "liveupdate=ON", "liveupdate", true },
                { "liveupdate=1", "liveupdate", true },
                { "liveupdate=y", "liveupdate", true },
                { "liveupdate=Y", "liveupdate", true },
                { "liveupdate=yes", "liveupdate", true },            /* kstrtobool looks at 'y' only */
                { "liveupdate=off", "liveupdate", false },
                { "liveupdate=OFF", "liveupdate", false },
                { "liveupdate=0", "liveupdate", false },
                { "liveupdate=n", "liveupdate", false },
                { "liveupdate=N", "liveupdate", false },
                { "liveupdate=no", "liveupdate", false },
                { "liveupdate=true", "liveupdate", false },          /* not a kstrtobool word */
                { "liveupdate=", "liveupdate", false },
                { "liveupdate=o", "liveupdate", false },
                { "liveupdate=on liveupdate=off", "liveupdate", false }, /* last one wins */
                { "liveupdate=off liveupdate=on", "liveupdate", true },
                { "liveupdate=off liveupdate", "liveupdate", false }, /* bare leaves it as it was */
                { "liveupdate=on liveupdate", "liveupdate", true },
                { "liveupdate=on liveupdate=bogus", "liveupdate", true }, /* invalid leaves it */
                { "liveupdate=off liveupdate=bogus", "liveupdate", false },
                { "  kho=on\tliveupdate=on\n", "liveupdate", true },
                { "kho=on liveupdate=on", "kho", true },
                { "kho=on", "liveupdate", false },
                { "liveupdate_foo=on", "liveupdate", false },        /* whole names only */
                { "xliveupdate=on", "liveupdate", false },
                { "foo.liveupdate=on", "liveupdate", false },
                { "init=/bin/sh liveupdate=on", "liveupdate", true },
                { "a=\"x liveupdate=on\" b", "liveupdate", false },  /* inside a quoted value */
                { "\"liveupdate=on\"", "liveupdate", true },
                { "liveupdate=\"on\"", "liveupdate", true },
                { "root=x -- liveupdate=on", "liveupdate", false },  /* after -- it is init's */
                { "liveupdate=on -- liveupdate=off", "liveupdate", true },
                { "some-flag=y", "some_flag", true },               /* '-' and '_' are the same */
                { "some_flag=0", "some-flag", false },
                { "some_flag=1", "some-flag", true },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                bool b = kernel_cmdline_has_flag(cases[i].cmdline, cases[i].key);
                if (b != cases[i].expected) {
                        fprintf(stderr, "has_flag(\"%s\", \"%s\") = %d, expected %d\n",
                                cases[i].cmdline, cases[i].key, b, cases[i].expected);
                        test_failures++;
                }
        }

        TEST_ASSERT(!kernel_cmdline_has_flag(NULL, "liveupdate"));
        TEST_ASSERT(!kernel_cmdline_has_flag("liveupdate", NULL));
        TEST_ASSERT(!kernel_cmdline_has_flag("liveupdate", ""));

        /* A built-in default on (kho with CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT) holds unless turned off. */
        TEST_ASSERT(kernel_cmdline_flag_or("root=/dev/vda", "kho", true));
        TEST_ASSERT(kernel_cmdline_flag_or("kho", "kho", true));              /* bare: rejected, default kept */
        TEST_ASSERT(kernel_cmdline_flag_or("kho=bogus", "kho", true));
        TEST_ASSERT(!kernel_cmdline_flag_or("kho=off", "kho", true));
        TEST_ASSERT(kernel_cmdline_flag_or("kho=off kho=on", "kho", true));
        TEST_ASSERT(!kernel_cmdline_flag_or("root=/dev/vda", "kho", false));
        TEST_ASSERT(kernel_cmdline_flag_or(NULL, "kho", true));
}

static void test_cmdline_read(void) {
        char *c = NULL;
        size_t n;

        TEST_ERRNO(kernel_cmdline_read(NULL), EINVAL);
        /* /proc/cmdline exists on every Linux system this runs on. */
        TEST_ERRNO(kernel_cmdline_read(&c), 0);
        TEST_ASSERT(c != NULL);
        if (c) {
                n = strlen(c);
                TEST_ASSERT(n == 0 || c[n - 1] != '\n');
                free(c);
        }
}

static void test_load_errors(void) {
        char path[] = "/tmp/test-kexec-XXXXXX";
        int fd;

        TEST_ERRNO(kexec_load_kernel(NULL, NULL, NULL), EINVAL);
        TEST_ERRNO(kexec_load_kernel("", NULL, NULL), EINVAL);
        TEST_ERRNO(kexec_load_kernel("/nonexistent/vmlinuz", NULL, "quiet"), ENOENT);

        /* A missing initrd is found before the kernel is asked anything. */
        fd = mkstemp(path);
        TEST_ASSERT(fd >= 0);
        if (fd >= 0) {
                TEST_ERRNO(kexec_load_kernel(path, "/nonexistent/initrd.img", NULL), ENOENT);
                TEST_ERRNO(kexec_load_kernel(path, "", NULL), EINVAL);
                close(fd);
                unlink(path);
        }
}

static void test_is_loaded(void) {
        int r = kexec_is_loaded();

        /* 0 or 1 on a kernel with kexec; -ENOENT without CONFIG_KEXEC_CORE. */
        TEST_ASSERT(r == 0 || r == 1 || r == -ENOENT);
}

int main(void) {
        test_cmdline_flags();
        test_cmdline_read();
        test_load_errors();
        test_is_loaded();
        return test_result("test-kexec");
}
