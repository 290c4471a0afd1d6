/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading what a next kernel image says about itself before it is loaded: the x86 boot
 * protocol's setup header (version string, payload), its build configuration (embedded
 * IKCONFIG or the config-* file installed beside it), its PE signature, and whether the
 * running kernel enforces kexec image signatures. No logging: reasons come back as text.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct KernelImageHeader {
        uint16_t protocol;          /* boot protocol version, e.g. 0x020f */
        char version[128];          /* the kernel_version string, "" when the image has none */
        uint64_t payload_offset;    /* file offset of the compressed kernel, 0 when unknown */
        uint32_t payload_length;
} KernelImageHeader;

/*
 * kernel_image_read_header() - the setup header of the bzImage open at @fd. -ENOEXEC when
 * there is no "HdrS" magic at 0x202 (not a bzImage). A missing or unterminated version
 * string is not an error: version is left "".
 */
int kernel_image_read_header(int fd, KernelImageHeader *ret);

/* The first word of a version string ("7.1.8 (root@vm) #1 ..." → "7.1.8"), in @buf. */
const char *kernel_version_release(const char *version, char *buf, size_t size);

/*
 * kernel_image_read_config() - the build configuration of the image at @path, as .config
 * text (malloc'd, in *ret). Tried in order: an IKCONFIG embedded in an uncompressed image or
 * in a gzip-compressed payload; config-RELEASE beside the image (RELEASE from the header's
 * version string); config-SUFFIX for an image named vmlinuz-SUFFIX. *ret_source says
 * which ("embedded IKCONFIG" or the file's path). -ENOENT when none could be read, with
 * @why saying what was tried (e.g. "the payload is xz-compressed, only gzip is read").
 */
int kernel_image_read_config(const char *path, const KernelImageHeader *h, char **ret, char **ret_source,
                             char *why, size_t why_size);

/*
 * kernel_ikconfig_find() - the configuration between "IKCFG_ST" and "IKCFG_ED" in @data,
 * gunzipped (malloc'd in *ret). -ENOENT no marker, -EBADMSG a marker without valid gzip.
 */
int kernel_ikconfig_find(const void *data, size_t size, char **ret);

typedef enum KconfigValue {
        KCONFIG_UNSET = 0,          /* "# CONFIG_X is not set", or absent */
        KCONFIG_YES,
        KCONFIG_MODULE,
        KCONFIG_OTHER,              /* a string or number value */
} KconfigValue;

/* kconfig_get() - the value of option @name ("CONFIG_LIVEUPDATE") in .config text @config. */
KconfigValue kconfig_get(const char *config, const char *name);

/*
 * kernel_image_pe_signed() - 1 when the image at @fd is a PE/COFF (EFI stub) image with a
 * certificate table (an Authenticode signature), 0 when it is a PE image without one,
 * -ENOEXEC when it is not a PE image. Presence only: whether the signature verifies
 * against the running kernel's keyrings is the kernel's to say, at kexec_file_load().
 */
int kernel_image_pe_signed(int fd);

/*
 * kexec_sig_enforced() - whether the running kernel (release @release) refuses unsigned
 * kexec images, judged from what userspace can read under @root ("/" on a host): the
 * lockdown LSM in integrity or confidentiality mode (/sys/kernel/security/lockdown), a
 * running configuration with CONFIG_KEXEC_SIG_FORCE=y (/boot/config-RELEASE or
 * /proc/config.gz), or EFI Secure Boot with CONFIG_IMA_ARCH_POLICY=y (which enforces
 * them). The kernel's sig_enforce flag itself is not visible to userspace. 1 enforced,
 * 0 not as far as can be seen; @why says on what grounds either way.
 */
int kexec_sig_enforced(const char *root, const char *release, char *why, size_t why_size);

/*
 * kernel_version_compare() - compare the numeric "X.Y.Z" prefixes of two releases
 * ("7.1.8-amd64" and "7.1.10": -1). Missing components count as 0.
 */
int kernel_version_compare(const char *a, const char *b);

/*
 * kernel_versions_policy_valid() - whether @policy is a valid NextKernelVersions= value:
 * "any", "running-series", or white-space separated items, each a version prefix ("7.1")
 * or an inclusive range "A..B" ("7.1.8..7.1.20"; "A.." has no upper end).
 */
bool kernel_versions_policy_valid(const char *policy);

/*
 * kernel_version_allowed() - 1 when next kernel release @next may follow the running
 * release @running under @policy, 0 when not; @why names the rule either way.
 * -EINVAL an invalid policy.
 */
int kernel_version_allowed(const char *policy, const char *running, const char *next, char *why, size_t why_size);
