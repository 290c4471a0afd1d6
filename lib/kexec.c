/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kexec side of a live update: loading the next kernel with kexec_file_load(),
 * unloading it after a cancel, jumping into it, and reading the kernel command line
 * the way the kernel itself reads boolean parameters such as liveupdate= and kho=.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kexec.h>
#include <linux/reboot.h>

#include "kexec.h"
#include "macro.h"

#define KERNEL_CMDLINE_PATH  "/proc/cmdline"
#define KEXEC_LOADED_PATH    "/sys/kernel/kexec_loaded"

static int open_image(const char *path) {
        int fd;

        if (!*path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

int kexec_load_kernel(const char *kernel, const char *initrd, const char *cmdline) {
        _cleanup_close_ int kernel_fd = -EBADF, initrd_fd = -EBADF;
        unsigned long flags = 0, cmdline_len = 0;

        if (!kernel)
                return -EINVAL;

        kernel_fd = open_image(kernel);
        if (kernel_fd < 0)
                return kernel_fd;

        if (initrd) {
                initrd_fd = open_image(initrd);
                if (initrd_fd < 0)
                        return initrd_fd;
        } else
                flags |= KEXEC_FILE_NO_INITRAMFS;

        if (cmdline && *cmdline)
                /* The kernel wants the terminating NUL counted and checks that it is there. */
                cmdline_len = strlen(cmdline) + 1;
        else
                cmdline = NULL;

        if (syscall(SYS_kexec_file_load, kernel_fd, initrd_fd < 0 ? -1 : initrd_fd,
                    cmdline_len, cmdline, flags) < 0)
                return negative_errno();
        return 0;
}

int kexec_unload_kernel(void) {
        if (syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long) KEXEC_FILE_UNLOAD) < 0)
                return negative_errno();
        return 0;
}

int kexec_is_loaded(void) {
        char buf[16] = {};
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        fd = open(KEXEC_LOADED_PATH, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -EIO;
        if (buf[0] == '0')
                return 0;
        if (buf[0] == '1')
                return 1;
        return -EIO;
}

int kexec_reboot(void) {
        /* The raw syscall: glibc's reboot() wrapper has no way to pass the magic pair. */
        if (syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                    LINUX_REBOOT_CMD_KEXEC, NULL) < 0)
                return negative_errno();
        return 0;
}

int kernel_cmdline_read(char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;
        FILE *f;

        if (!ret)
                return -EINVAL;

        f = fopen(KERNEL_CMDLINE_PATH, "re");
        if (!f)
                return negative_errno();

        /* /proc/cmdline can be longer than any fixed buffer on some architectures. */
        for (;;) {
                size_t n;

                if (len + 1 >= size) {
                        size_t nsize = size ? size * 2 : 4096;
                        char *p = realloc(buf, nsize);
                        if (!p) {
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = p;
                        size = nsize;
                }
                n = fread(buf + len, 1, size - len - 1, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                fclose(f);
                return -EIO;
        }
        fclose(f);

        buf[len] = '\0';
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
                buf[--len] = '\0';

        *ret = TAKE_PTR(buf);
        return 0;
}

/* kstrtobool(): only the first one or two characters count. */
static int parse_kernel_bool(const char *v, bool *ret) {
        if (!v)
                return -EINVAL;
        switch (v[0]) {
        case 'y': case 'Y': case '1':
                *ret = true;
                return 0;
        case 'n': case 'N': case '0':
                *ret = false;
                return 0;
        case 'o': case 'O':
                if (v[1] == 'n' || v[1] == 'N') {
                        *ret = true;
                        return 0;
                }
                if (v[1] == 'f' || v[1] == 'F') {
                        *ret = false;
                        return 0;
                }
                return -EINVAL;
        default:
                return -EINVAL;
        }
}

/* The kernel treats '-' and '_' in parameter names as the same character. */
static bool param_name_equal(const char *a, size_t alen, const char *b) {
        if (strlen(b) != alen)
                return false;
        for (size_t i = 0; i < alen; i++) {
                char x = a[i] == '-' ? '_' : a[i];
                char y = b[i] == '-' ? '_' : b[i];
                if (x != y)
                        return false;
        }
        return true;
}

bool kernel_cmdline_has_flag(const char *cmdline, const char *key) {
        return kernel_cmdline_flag_or(cmdline, key, false);
}

bool kernel_cmdline_flag_or(const char *cmdline, const char *key, bool default_value) {
        bool enabled = default_value;
        const char *p;

        if (!cmdline || !key || !*key)
                return default_value;

        p = cmdline;
        for (;;) {
                const char *start, *eq = NULL;
                char value[64];
                size_t len, vlen;
                bool in_quote = false, b;

                p += strspn(p, " \t\n");
                if (!*p)
                        break;

                /* One argument: up to unquoted white space; the first '=' splits it. */
                start = p;
                for (; *p; p++) {
                        if ((*p == ' ' || *p == '\t' || *p == '\n') && !in_quote)
                                break;
                        if (!eq && *p == '=')
                                eq = p;
                        if (*p == '"')
                                in_quote = !in_quote;
                }
                len = (size_t) (p - start);

                /* A leading quote wraps the whole argument ("key=value with spaces"). */
                if (*start == '"') {
                        start++;
                        len--;
                        if (len > 0 && start[len - 1] == '"')
                                len--;
                }

                if (!eq) {
                        /* Everything after a bare "--" belongs to init, not to the kernel. */
                        if (len == 2 && strncmp(start, "--", 2) == 0)
                                break;
                        /*
                         * A bare "liveupdate" or "kho" reaches their early_param handlers as
                         * kstrtobool(NULL), which fails: the kernel keeps the previous value.
                         */
                        continue;
                }
                if (eq < start || eq >= start + len)
                        continue;
                if (!param_name_equal(start, (size_t) (eq - start), key))
                        continue;

                vlen = len - (size_t) (eq - start) - 1;
                if (vlen >= sizeof(value))
                        vlen = sizeof(value) - 1;
                memcpy(value, eq + 1, vlen);
                value[vlen] = '\0';
                if (value[0] == '"')
                        memmove(value, value + 1, strlen(value));

                /* An unparsable value is rejected by the kernel and leaves the flag as it was. */
                if (parse_kernel_bool(value, &b) >= 0)
                        enabled = b;
        }

        return enabled;
}
