/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Loading and unloading the next kernel with kexec_file_load(), and jumping into it. */
#pragma once

#include <stdbool.h>

/*
 * kexec_load_kernel() - kexec_file_load() a kernel image with optional @initrd (NULL for
 * none) and @cmdline (NULL or "" for an empty one). -ENOEXEC not a kernel image the
 * running kernel can load; -EPERM no CAP_SYS_BOOT or kexec disabled; -EBUSY an image is
 * already being loaded; -ENOENT a file is missing.
 */
int kexec_load_kernel(const char *kernel, const char *initrd, const char *cmdline);

/* kexec_unload_kernel() - KEXEC_FILE_UNLOAD; unloading when nothing is loaded is not an error. */
int kexec_unload_kernel(void);

/* kexec_is_loaded() - reads /sys/kernel/kexec_loaded: 1 loaded, 0 not, negative errno if unreadable. */
int kexec_is_loaded(void);

/*
 * kexec_reboot() - reboot(LINUX_REBOOT_CMD_KEXEC). Returns only on failure, with the
 * negative errno: -EINVAL no image loaded or a LUO freeze callback refused (e.g. a VFIO
 * device still has interrupts on), -EPERM no CAP_SYS_BOOT.
 */
int kexec_reboot(void);

/* kernel_cmdline_read() - the running kernel's /proc/cmdline, trailing newline removed (malloc'd). */
int kernel_cmdline_read(char **ret);

/*
 * kernel_cmdline_has_flag() - true if @cmdline enables boolean kernel parameter @key
 * ("liveupdate", "kho"): "key=1", "key=on", "key=y"... with the last valid occurrence
 * winning, as the kernel parses it (kstrtobool; '-' and '_' alike; nothing after "--").
 * A bare "key" or an unparsable value is ignored, as the kernel's early_param handlers
 * for liveupdate= and kho= reject it and keep the previous value (default off).
 */
bool kernel_cmdline_has_flag(const char *cmdline, const char *key);

/*
 * kernel_cmdline_flag_or() - the same with the kernel's built-in default @default_value for
 * @key when the command line does not set it (kho= with CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT).
 */
bool kernel_cmdline_flag_or(const char *cmdline, const char *key, bool default_value);
