/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for lib/kernel-image.c on crafted images in a temporary directory: the
 * setup header (version string, payload), IKCONFIG embedded raw and inside a gzip
 * payload, config-* files beside the image, an xz payload (not read), PE signatures,
 * the host's signature enforcement from a fake root, and the version policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "kernel-image.h"
#include "macro.h"
#include "test-helpers.h"

static char tmpdir[] = "/tmp/test-kernel-image-XXXXXX";

static const char config_text[] =
        "#\n# Automatically generated file; DO NOT EDIT.\n#\n"
        "CONFIG_KEXEC_FILE=y\nCONFIG_KEXEC_HANDOVER=y\nCONFIG_LIVEUPDATE=y\n"
        "# CONFIG_LIVEUPDATE_MEMFD is not set\nCONFIG_VFIO=m\nCONFIG_LOCALVERSION=\"-lu\"\n"
        "CONFIG_LIVEUPDATE_TEST=n\n";

static char *path_in(const char *name) {
        static char buf[4][PATH_MAX];
        static unsigned n;
        char *b = buf[n++ % 4];
        snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
        return b;
}

static void write_file(const char *path, const void *data, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        TEST_ASSERT(fd >= 0);
        TEST_ASSERT(write(fd, data, n) == (ssize_t) n);
        close(fd);
}

/*
 * gzip (not zlib) framing, as IKCONFIG and gzip bzImage payloads have it. Fixed Huffman codes
 * only: a stored block would copy the IKCONFIG marker into the payload verbatim, and the raw
 * scan of the image would find it without decompressing the payload.
 */
static size_t gzip(const void *in, size_t n, uint8_t *out, size_t cap) {
        z_stream z = {};
        TEST_ASSERT(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_FIXED) == Z_OK);
        z.next_in = (Bytef *) in;
        z.avail_in = (uInt) n;
        z.next_out = out;
        z.avail_out = (uInt) cap;
        TEST_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
        size_t got = cap - z.avail_out;
        deflateEnd(&z);
        return got;
}

/* "IKCFG_ST" gzip(config) "IKCFG_ED" surrounded by filler: a vmlinux's view of it. */
static size_t fake_vmlinux(uint8_t *buf, size_t cap) {
        size_t n = 0;
        memset(buf, 0xcc, 5000);
        n += 5000;
        memcpy(buf + n, "IKCFG_ST", 8);
        n += 8;
        n += gzip(config_text, strlen(config_text), buf + n, cap - n - 5000);
        memcpy(buf + n, "IKCFG_ED", 8);
        n += 8;
        memset(buf + n, 0x90, 4000);
        return n + 4000;
}

/* A bzImage: setup_sects 3, header 2.15, optional version string and payload. */
static size_t fake_bzimage(uint8_t *img, size_t cap, const char *version, const void *payload, size_t payload_n) {
        size_t setup = 4 * 512;
        memset(img, 0, cap);
        img[0x1f1] = 3;
        memcpy(img + 0x202, "HdrS", 4);
        img[0x206] = 0x0f;
        img[0x207] = 0x02;
        if (version) {
                uint16_t vptr = 0x600 - 0x200;
                img[0x20e] = vptr & 0xff;
                img[0x20f] = vptr >> 8;
                memcpy(img + 0x600, version, strlen(version) + 1);
        }
        if (payload) {
                uint32_t off = 0x100, len = (uint32_t) payload_n;
                memcpy(img + 0x248, &off, 4);
                memcpy(img + 0x24c, &len, 4);
                memcpy(img + setup + off, payload, payload_n);
                return setup + off + payload_n + 64;
        }
        return setup;
}

static void test_header(void) {
        static uint8_t img[8192];
        KernelImageHeader h;
        char rel[64];
        int fd;

        write_file(path_in("vmlinuz-a"), img, fake_bzimage(img, sizeof(img), "7.1.8-lu (root@vm) #1 SMP", NULL, 0));
        fd = open(path_in("vmlinuz-a"), O_RDONLY | O_CLOEXEC);
        TEST_ERRNO(kernel_image_read_header(fd, &h), 0);
        TEST_ASSERT(h.protocol == 0x020f);
        TEST_STREQ(h.version, "7.1.8-lu (root@vm) #1 SMP");
        TEST_STREQ(kernel_version_release(h.version, rel, sizeof(rel)), "7.1.8-lu");
        TEST_ASSERT(h.payload_offset == 0);
        close(fd);

        /* The tests' fake image: magic only, no version pointer. */
        write_file(path_in("vmlinuz-b"), img, fake_bzimage(img, sizeof(img), NULL, NULL, 0));
        fd = open(path_in("vmlinuz-b"), O_RDONLY | O_CLOEXEC);
        TEST_ERRNO(kernel_image_read_header(fd, &h), 0);
        TEST_STREQ(h.version, "");
        close(fd);

        /* Not a bzImage, and a file too short for a header. */
        memset(img, 0, sizeof(img));
        write_file(path_in("notimage"), img, sizeof(img));
        fd = open(path_in("notimage"), O_RDONLY | O_CLOEXEC);
        TEST_ERRNO(kernel_image_read_header(fd, &h), ENOEXEC);
        close(fd);
        write_file(path_in("short"), "HdrS", 4);
        fd = open(path_in("short"), O_RDONLY | O_CLOEXEC);
        TEST_ERRNO(kernel_image_read_header(fd, &h), ENOEXEC);
        close(fd);

        /* A version pointer at garbage (not NUL-terminated text) reads as no version. */
        fake_bzimage(img, sizeof(img), NULL, NULL, 0);
        img[0x20e] = 0x00;
        img[0x20f] = 0x10;             /* 0x1200: inside the image, all 0xff */
        memset(img + 0x1200, 0xff, 0x200);
        write_file(path_in("vmlinuz-c"), img, 8192);
        fd = open(path_in("vmlinuz-c"), O_RDONLY | O_CLOEXEC);
        TEST_ERRNO(kernel_image_read_header(fd, &h), 0);
        TEST_STREQ(h.version, "");
        close(fd);
}

static void test_kconfig(void) {
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_LIVEUPDATE") == KCONFIG_YES);
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_KEXEC_HANDOVER") == KCONFIG_YES);
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_LIVEUPDATE_MEMFD") == KCONFIG_UNSET);
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_VFIO") == KCONFIG_MODULE);
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_LOCALVERSION") == KCONFIG_OTHER);
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_LIVEUPDATE_TEST") == KCONFIG_UNSET);
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_KEXEC") == KCONFIG_UNSET);      /* a prefix is not a match */
        TEST_ASSERT(kconfig_get(config_text, "CONFIG_NOPE") == KCONFIG_UNSET);
        TEST_ASSERT(kconfig_get("", "CONFIG_LIVEUPDATE") == KCONFIG_UNSET);
        TEST_ASSERT(kconfig_get("CONFIG_LIVEUPDATE=y", "CONFIG_LIVEUPDATE") == KCONFIG_YES);  /* no final newline */
}

static void read_config_of(const char *name, int expect, const char *want_source, const char *why_has) {
        KernelImageHeader h = {};
        char *config = NULL, *source = NULL, why[512] = "";
        int fd = open(path_in(name), O_RDONLY | O_CLOEXEC), r;

        TEST_ASSERT(fd >= 0);
        TEST_ERRNO(kernel_image_read_header(fd, &h), 0);
        close(fd);
        r = kernel_image_read_config(path_in(name), &h, &config, &source, why, sizeof(why));
        TEST_ERRNO(r, expect);
        if (r >= 0) {
                TEST_ASSERT(config && strcmp(config, config_text) == 0);
                TEST_STREQ(source, want_source);
        } else if (why_has && !strstr(why, why_has)) {
                fprintf(stderr, "%s: why \"%s\" lacks \"%s\"\n", name, why, why_has);
                test_failures++;
        }
        free(config);
        free(source);
}

static void test_config(void) {
        static uint8_t vmlinux[64 * 1024], gz[64 * 1024], img[128 * 1024];
        size_t n = fake_vmlinux(vmlinux, sizeof(vmlinux)), gn;
        char *out = NULL;

        /* The marker finder itself: found, absent, broken gzip after the marker. */
        TEST_ERRNO(kernel_ikconfig_find(vmlinux, n, &out), 0);
        TEST_ASSERT(out && strcmp(out, config_text) == 0);
        free(out);
        out = NULL;
        TEST_ERRNO(kernel_ikconfig_find(vmlinux, 5000, &out), ENOENT);
        {
                static uint8_t broken[64 * 1024];
                memcpy(broken, vmlinux, n);
                memset(broken + 5000 + 8 + 12, 0x55, 40);   /* damage the deflate stream */
                TEST_ASSERT(kernel_ikconfig_find(broken, n, &out) < 0);
        }

        /* An uncompressed image with IKCONFIG in it. */
        write_file(path_in("vmlinux-raw"), vmlinux, n);
        {
                KernelImageHeader h = {};
                char *config = NULL, *source = NULL, why[256];
                TEST_ERRNO(kernel_image_read_config(path_in("vmlinux-raw"), &h, &config, &source, why, sizeof(why)), 0);
                TEST_ASSERT(config && strcmp(config, config_text) == 0);
                TEST_STREQ(source, "embedded IKCONFIG");
                free(config);
                free(source);
        }

        /* A bzImage with a gzip payload: IKCONFIG inside, compressed twice. */
        gn = gzip(vmlinux, n, gz, sizeof(gz));
        write_file(path_in("vmlinuz-gz"), img, fake_bzimage(img, sizeof(img), "7.1.9 #1", gz, gn));
        read_config_of("vmlinuz-gz", 0, "embedded IKCONFIG (gzip payload)", NULL);

        /* An xz payload is not read: config-RELEASE beside the image is used... */
        write_file(path_in("vmlinuz-xz"), img, fake_bzimage(img, sizeof(img), "7.1.10-x #1", "\375" "7zXZ\0\0\0\0", 10));
        read_config_of("vmlinuz-xz", ENOENT, NULL, "xz payload: only gzip is read");
        read_config_of("vmlinuz-xz", ENOENT, NULL, "config-7.1.10-x");
        write_file(path_in("config-7.1.10-x"), config_text, strlen(config_text));
        read_config_of("vmlinuz-xz", 0, path_in("config-7.1.10-x"), NULL);

        /* ...and for an image without a version, config-SUFFIX of vmlinuz-SUFFIX. */
        write_file(path_in("vmlinuz-next"), img, fake_bzimage(img, sizeof(img), NULL, NULL, 0));
        read_config_of("vmlinuz-next", ENOENT, NULL, "config-next");
        write_file(path_in("config-next"), config_text, strlen(config_text));
        read_config_of("vmlinuz-next", 0, path_in("config-next"), NULL);

        /* The marker straddling the 256 KiB inflate chunks of the payload scan. */
        {
                static uint8_t big[600 * 1024], bgz[640 * 1024], bimg[700 * 1024];
                size_t off = 256 * 1024 - 5, bn;
                for (size_t i = 0; i < off; i++)
                        big[i] = (uint8_t) (i % 251);   /* compressible: the first inflate call fills its 256 KiB */
                memcpy(big + off, "IKCFG_ST", 8);
                bn = off + 8;
                bn += gzip(config_text, strlen(config_text), big + bn, sizeof(big) - bn);
                memcpy(big + bn, "IKCFG_ED", 8);
                bn += 8 + 100000;
                gn = gzip(big, bn, bgz, sizeof(bgz));
                write_file(path_in("vmlinuz-gzbig"), bimg, fake_bzimage(bimg, sizeof(bimg), "7.1.11 #1", bgz, gn));
                read_config_of("vmlinuz-gzbig", 0, "embedded IKCONFIG (gzip payload)", NULL);
        }

        /* A gzip payload without IKCONFIG falls back to the file too, and says it searched. */
        gn = gzip(vmlinux, 5000, gz, sizeof(gz));
        write_file(path_in("vmlinuz-gz2"), img, fake_bzimage(img, sizeof(img), "7.2.0 #1", gz, gn));
        read_config_of("vmlinuz-gz2", ENOENT, NULL, "gzip payload searched");
}

/* A PE32+ header at 0x80 with @n_dirs data directories, the certificate table @size. */
static void test_pe(void) {
        static uint8_t img[8192];
        int fd;

        memset(img, 0, sizeof(img));
        img[0] = 'M';
        img[1] = 'Z';
        img[0x3c] = 0x80;
        memcpy(img + 0x80, "PE\0\0", 4);
        img[0x80 + 24] = 0x0b;
        img[0x80 + 25] = 0x02;
        img[0x80 + 24 + 108] = 16;                  /* NumberOfRvaAndSizes */
        write_file(path_in("pe-unsigned"), img, sizeof(img));
        img[0x80 + 24 + 112 + 32 + 1] = 0x10;       /* certificate table at 0x1000 */
        img[0x80 + 24 + 112 + 36] = 0x40;           /* ... of 64 bytes */
        write_file(path_in("pe-signed"), img, sizeof(img));
        img[0x80 + 24 + 108] = 4;                   /* too few directories for one */
        write_file(path_in("pe-fewdirs"), img, sizeof(img));

        fd = open(path_in("pe-signed"), O_RDONLY | O_CLOEXEC);
        TEST_ASSERT(kernel_image_pe_signed(fd) == 1);
        close(fd);
        fd = open(path_in("pe-unsigned"), O_RDONLY | O_CLOEXEC);
        TEST_ASSERT(kernel_image_pe_signed(fd) == 0);
        close(fd);
        fd = open(path_in("pe-fewdirs"), O_RDONLY | O_CLOEXEC);
        TEST_ASSERT(kernel_image_pe_signed(fd) == 0);
        close(fd);
        fd = open(path_in("vmlinuz-next"), O_RDONLY | O_CLOEXEC);
        TEST_ERRNO(kernel_image_pe_signed(fd), ENOEXEC);
        close(fd);
}

static void make_root(const char *root, const char *config, const char *lockdown, int secure_boot, bool config_gz) {
        char p[2048];

        snprintf(p, sizeof(p), "mkdir -p %s/boot %s/proc %s/sys/kernel/security %s/sys/firmware/efi/efivars", root, root, root, root);
        TEST_ASSERT(system(p) == 0);
        if (config && !config_gz) {
                snprintf(p, sizeof(p), "%s/boot/config-6.1.0", root);
                write_file(p, config, strlen(config));
        }
        if (config && config_gz) {
                static uint8_t gz[8192];
                size_t n = gzip(config, strlen(config), gz, sizeof(gz));
                snprintf(p, sizeof(p), "%s/proc/config.gz", root);
                write_file(p, gz, n);
        }
        if (lockdown) {
                snprintf(p, sizeof(p), "%s/sys/kernel/security/lockdown", root);
                write_file(p, lockdown, strlen(lockdown));
        }
        if (secure_boot >= 0) {
                uint8_t v[5] = { 6, 0, 0, 0, (uint8_t) secure_boot };
                snprintf(p, sizeof(p), "%s/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", root);
                write_file(p, v, sizeof(v));
        }
}

static void expect_enforced(const char *name, const char *config, const char *lockdown, int sb, bool gz,
                            int expect, const char *why_has) {
        char root[256], why[512] = "";
        int r;

        snprintf(root, sizeof(root), "%s/root-%s", tmpdir, name);
        make_root(root, config, lockdown, sb, gz);
        r = kexec_sig_enforced(root, "6.1.0", why, sizeof(why));
        if (r != expect || !strstr(why, why_has)) {
                fprintf(stderr, "%s: kexec_sig_enforced() = %d (%s), expected %d with \"%s\"\n", name, r, why, expect, why_has);
                test_failures++;
        }
}

static void test_sig_enforced(void) {
        static const char nosig[] = "CONFIG_KEXEC_FILE=y\n# CONFIG_KEXEC_SIG is not set\n";
        static const char sig[] = "CONFIG_KEXEC_SIG=y\n";
        static const char force[] = "CONFIG_KEXEC_SIG=y\nCONFIG_KEXEC_SIG_FORCE=y\n";
        static const char ima[] = "CONFIG_KEXEC_SIG=y\nCONFIG_IMA_ARCH_POLICY=y\n";
        const char *none = "[none] integrity confidentiality\n";

        expect_enforced("nosig", nosig, "none [integrity] confidentiality\n", -1, false, 0, "no CONFIG_KEXEC_SIG");
        expect_enforced("nosig-gz", nosig, NULL, -1, true, 0, "config.gz");
        expect_enforced("force", force, none, -1, false, 1, "CONFIG_KEXEC_SIG_FORCE=y");
        expect_enforced("lockdown", sig, "none [integrity] confidentiality\n", -1, false, 1, "lockdown is in integrity mode");
        expect_enforced("lockdown-c", sig, "none integrity [confidentiality]\n", -1, false, 1, "confidentiality");
        expect_enforced("sb-ima", ima, none, 1, false, 1, "Secure Boot");
        expect_enforced("sb-noima", sig, none, 1, false, 0, "Secure Boot on without IMA");
        expect_enforced("sb-noconfig", NULL, none, 1, false, 2, "Secure Boot is on");
        expect_enforced("plain", sig, none, 0, false, 0, "without _FORCE");
        expect_enforced("nolockdown", sig, NULL, -1, false, 2, "lockdown state is unreadable");
        expect_enforced("nothing", NULL, NULL, -1, false, 2, "configuration is unreadable");
}

static void test_versions(void) {
        char why[256];

        TEST_ASSERT(kernel_version_compare("7.1.8", "7.1.10") < 0);
        TEST_ASSERT(kernel_version_compare("7.1.10-amd64", "7.1.10") == 0);
        TEST_ASSERT(kernel_version_compare("7.2", "7.1.99") > 0);
        TEST_ASSERT(kernel_version_compare("7.1", "7.1.0") == 0);

        TEST_ASSERT(kernel_versions_policy_valid("any"));
        TEST_ASSERT(kernel_versions_policy_valid("running-series"));
        TEST_ASSERT(kernel_versions_policy_valid("7.1"));
        TEST_ASSERT(kernel_versions_policy_valid("7.1.8..7.1.20 7.2"));
        TEST_ASSERT(kernel_versions_policy_valid("7.1.8.."));
        TEST_ASSERT(!kernel_versions_policy_valid(""));
        TEST_ASSERT(!kernel_versions_policy_valid("   "));
        TEST_ASSERT(!kernel_versions_policy_valid("7.x"));
        TEST_ASSERT(!kernel_versions_policy_valid("..7.1"));
        TEST_ASSERT(!kernel_versions_policy_valid("7.1...7.2"));
        TEST_ASSERT(!kernel_versions_policy_valid("7.1.2.3"));
        TEST_ASSERT(!kernel_versions_policy_valid("7."));
        TEST_ASSERT(!kernel_versions_policy_valid("latest"));

        TEST_ASSERT(kernel_version_allowed("any", "6.1.0", "9.0", why, sizeof(why)) == 1);
        TEST_ASSERT(kernel_version_allowed("running-series", "7.1.8", "7.1.12-lu", why, sizeof(why)) == 1);
        TEST_ASSERT(kernel_version_allowed("running-series", "7.1.8", "7.2.0", why, sizeof(why)) == 0);
        TEST_ASSERT(strstr(why, "series 7.1") != NULL);
        TEST_ASSERT(kernel_version_allowed("running-series", "7.1.8", "8.1.0", why, sizeof(why)) == 0);
        TEST_ASSERT(kernel_version_allowed("running-series", "garbage", "7.1.0", why, sizeof(why)) == 0);
        TEST_ASSERT(kernel_version_allowed("7.1.8..7.1.20", "7.1.8", "7.1.20", why, sizeof(why)) == 1);
        TEST_ASSERT(kernel_version_allowed("7.1.8..7.1.20", "7.1.8", "7.1.21", why, sizeof(why)) == 0);
        TEST_ASSERT(strstr(why, "outside NextKernelVersions=7.1.8..7.1.20") != NULL);
        TEST_ASSERT(kernel_version_allowed("7.1.8..7.1.20", "7.1.8", "7.1.7", why, sizeof(why)) == 0);
        TEST_ASSERT(kernel_version_allowed("7.1.8..7.1.20 7.2", "7.1.8", "7.2.3", why, sizeof(why)) == 1);
        TEST_ASSERT(strstr(why, "item 7.2") != NULL);
        TEST_ASSERT(kernel_version_allowed("7.1", "7.1.8", "7.10.1", why, sizeof(why)) == 0);  /* components, not text */
        TEST_ASSERT(kernel_version_allowed("7.1.8..", "7.1.8", "9.0.0", why, sizeof(why)) == 1);
        TEST_ASSERT(kernel_version_allowed("7.x", "7.1.8", "7.1.8", why, sizeof(why)) == -EINVAL);
}

int main(void) {
        char cmd[PATH_MAX + 16];

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        test_header();
        test_kconfig();
        test_config();
        test_pe();
        test_sig_enforced();
        test_versions();
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        (void) system(cmd);
        return test_result("test-kernel-image");
}
