/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a next kernel image says about itself (see kernel-image.h). Facts used, from the
 * x86 boot protocol and the kernel build: "HdrS" at 0x202, the boot protocol version at
 * 0x206, the kernel_version pointer at 0x20E (the string sits at pointer + 0x200),
 * setup_sects at 0x1F1 (0 means 4), payload_offset/payload_length at 0x248/0x24C (from
 * protocol 2.08) counted from the end of the setup code; IKCONFIG is a gzip stream
 * between "IKCFG_ST" and "IKCFG_ED" inside vmlinux, so inside a compressed bzImage it is
 * compressed twice. zlib reads the gzip layers (IKCONFIG, a gzip payload, /proc/config.gz);
 * other payload compressions (xz, zstd, lz4...) are not read: then only a config-* file
 * installed beside the image can say what the kernel was built with.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "kernel-image.h"
#include "macro.h"

#define IKCFG_ST            "IKCFG_ST"
#define IKCFG_ED            "IKCFG_ED"
#define GZIP_MAGIC          "\037\213\010"
/* A .config is some 300 KiB; anything much larger is not one. */
#define CONFIG_MAX          (16U * 1024 * 1024)
/* A decompressed vmlinux is some 50-150 MiB: stop looking past this much. */
#define PAYLOAD_SCAN_MAX    (512ULL * 1024 * 1024)
#define IMAGE_MAP_MAX       (256ULL * 1024 * 1024)
#define INFLATE_CHUNK       (256U * 1024)

static int pread_exact(int fd, void *buf, size_t n, off_t off) {
        ssize_t k = pread(fd, buf, n, off);
        if (k < 0)
                return negative_errno();
        return (size_t) k == n ? 0 : -ENODATA;
}

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

int kernel_image_read_header(int fd, KernelImageHeader *ret) {
        uint8_t hdr[0x260];
        KernelImageHeader h = {};
        unsigned setup_sects;
        uint16_t vptr;
        int r;

        r = pread_exact(fd, hdr, sizeof(hdr), 0);
        if (r == -ENODATA)
                return -ENOEXEC;
        if (r < 0)
                return r;
        if (memcmp(hdr + 0x202, "HdrS", 4) != 0)
                return -ENOEXEC;
        h.protocol = le16(hdr + 0x206);
        setup_sects = hdr[0x1f1] ? hdr[0x1f1] : 4;
        vptr = le16(hdr + 0x20e);
        /* The pointer is meaningful from protocol 2.00; an image without one leaves it 0. */
        if (h.protocol >= 0x0200 && vptr != 0) {
                char v[sizeof(h.version)];
                ssize_t k = pread(fd, v, sizeof(v), (off_t) vptr + 0x200);
                if (k > 0) {
                        size_t len = strnlen(v, (size_t) k);
                        bool ok = len > 0 && len < (size_t) k;
                        for (size_t i = 0; ok && i < len; i++)
                                ok = v[i] >= 0x20 && v[i] < 0x7f;
                        if (ok)
                                memcpy(h.version, v, len + 1);
                }
        }
        if (h.protocol >= 0x0208 && le32(hdr + 0x24c) > 0) {
                h.payload_offset = (uint64_t) (setup_sects + 1) * 512 + le32(hdr + 0x248);
                h.payload_length = le32(hdr + 0x24c);
        }
        *ret = h;
        return 0;
}

const char *kernel_version_release(const char *version, char *buf, size_t size) {
        size_t n = strcspn(version, " \t");

        if (size == 0)
                return "";
        n = MIN(n, size - 1);
        memcpy(buf, version, n);
        buf[n] = 0;
        return buf;
}

/* Gunzip @size bytes at @data (trailing bytes after the stream are ignored). */
static int gunzip(const void *data, size_t size, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t cap = 64 * 1024, n = 0;
        z_stream z = {};
        int zr;

        if (size > UINT_MAX)
                return -EFBIG;
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        out = malloc(cap);
        if (!out) {
                inflateEnd(&z);
                return -ENOMEM;
        }
        z.next_in = (Bytef *) data;
        z.avail_in = (uInt) size;
        for (;;) {
                if (cap - n < 2) {
                        char *t;
                        if (cap >= CONFIG_MAX) {
                                inflateEnd(&z);
                                return -EFBIG;
                        }
                        t = realloc(out, cap * 2);
                        if (!t) {
                                inflateEnd(&z);
                                return -ENOMEM;
                        }
                        out = t;
                        cap *= 2;
                }
                z.next_out = (Bytef *) out + n;
                z.avail_out = (uInt) (cap - n - 1);
                zr = inflate(&z, Z_NO_FLUSH);
                n = cap - 1 - z.avail_out;
                if (zr == Z_STREAM_END)
                        break;
                if (zr != Z_OK) {
                        inflateEnd(&z);
                        return -EBADMSG;
                }
                if (z.avail_in == 0 && z.avail_out > 0) {
                        /* Input ran out in the middle of the stream. */
                        inflateEnd(&z);
                        return -EBADMSG;
                }
        }
        inflateEnd(&z);
        out[n] = 0;
        if (strlen(out) != n)
                return -EBADMSG;     /* a .config is text */
        *ret = TAKE_PTR(out);
        return 0;
}

int kernel_ikconfig_find(const void *data, size_t size, char **ret) {
        const char *p = data, *end = p + size;
        int r = -ENOENT;

        /* The marker followed by a gzip header, as scripts/extract-ikconfig looks for it. */
        while (p < end) {
                const char *st = memmem(p, (size_t) (end - p), IKCFG_ST GZIP_MAGIC, 11), *ed;
                if (!st)
                        break;
                st += 8;
                ed = memmem(st, (size_t) (end - st), IKCFG_ED, 8);
                r = gunzip(st, (size_t) ((ed ? ed : end) - st), ret);
                if (r >= 0)
                        return 0;
                p = st;
        }
        return r;
}

/* Scan the gzip payload of a bzImage for an embedded IKCONFIG, a chunk at a time. */
static int payload_gzip_ikconfig(int fd, const KernelImageHeader *h, char **ret) {
        _cleanup_free_ uint8_t *in = NULL, *win = NULL;
        _cleanup_free_ char *cap = NULL;
        size_t keep = 0, cap_n = 0, cap_size = 0;
        uint64_t left = h->payload_length, total = 0;
        off_t off = (off_t) h->payload_offset;
        z_stream z = {};
        int zr = Z_OK, r = -ENOENT;

        in = malloc(INFLATE_CHUNK);
        /* The window: the last 10 bytes of the previous chunk, then the new chunk. */
        win = malloc(INFLATE_CHUNK + 16);
        if (!in || !win)
                return -ENOMEM;
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        while (zr != Z_STREAM_END && total < PAYLOAD_SCAN_MAX) {
                if (z.avail_in == 0) {
                        ssize_t k;
                        if (left == 0)
                                break;
                        k = pread(fd, in, (size_t) MIN(left, (uint64_t) INFLATE_CHUNK), off);
                        if (k <= 0) {
                                r = k < 0 ? negative_errno() : -EBADMSG;
                                goto out;
                        }
                        off += k;
                        left -= (uint64_t) k;
                        z.next_in = in;
                        z.avail_in = (uInt) k;
                }
                z.next_out = win + keep;
                z.avail_out = INFLATE_CHUNK;
                zr = inflate(&z, Z_NO_FLUSH);
                if (zr != Z_OK && zr != Z_STREAM_END) {
                        r = -EBADMSG;
                        goto out;
                }
                size_t got = INFLATE_CHUNK - z.avail_out, n = keep + got;
                total += got;
                if (cap) {
                        /* Collecting: everything from the start marker up to the end marker. */
                        if (cap_n + got > cap_size) {
                                r = -EFBIG;
                                goto out;
                        }
                        memcpy(cap + cap_n, win + keep, got);
                        cap_n += got;
                        if (memmem(cap, cap_n, IKCFG_ED, 8))
                                break;
                } else {
                        uint8_t *st = memmem(win, n, IKCFG_ST GZIP_MAGIC, 11);
                        if (st) {
                                cap_size = CONFIG_MAX;
                                cap = malloc(cap_size);
                                if (!cap) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                cap_n = (size_t) (win + n - st);
                                memcpy(cap, st, cap_n);
                                if (memmem(cap, cap_n, IKCFG_ED, 8))
                                        break;
                        }
                }
                keep = MIN(n, (size_t) 10);
                memmove(win, win + n - keep, keep);
        }
        if (cap)
                r = kernel_ikconfig_find(cap, cap_n, ret);
out:
        inflateEnd(&z);
        return r;
}

/* An IKCONFIG in the image file itself (an uncompressed image). */
static int file_ikconfig(int fd, char **ret) {
        struct stat st;
        void *p;
        int r;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size <= 0 || (uint64_t) st.st_size > IMAGE_MAP_MAX)
                return -ENOENT;
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        r = kernel_ikconfig_find(p, (size_t) st.st_size, ret);
        (void) munmap(p, (size_t) st.st_size);
        return r;
}

/* The whole file at @path (at most CONFIG_MAX bytes), NUL-terminated, its length in *ret_size. */
static int read_whole_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;

        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t k;
                if (cap - n < 4096) {
                        char *t;
                        if (cap >= CONFIG_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 64 * 1024;
                        t = realloc(buf, cap);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                }
                k = read(fd, buf + n, cap - n - 1);
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int read_text_file(const char *path, char **ret) {
        return read_whole_file(path, ret, NULL);
}

static const char *payload_compression(int fd, const KernelImageHeader *h) {
        static const struct { const char *magic; size_t n; const char *name; } m[] = {
                { "\037\213", 2, "gzip" }, { "\375" "7zXZ", 6, "xz" }, { "\050\265\057\375", 4, "zstd" },
                { "BZh", 3, "bzip2" }, { "\135\000\000", 3, "lzma" }, { "\002\041\114\030", 4, "lz4" },
                { "\211LZO", 4, "lzo" },
        };
        uint8_t b[6];

        if (!h->payload_offset || pread_exact(fd, b, sizeof(b), (off_t) h->payload_offset) < 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(m); i++)
                if (memcmp(b, m[i].magic, m[i].n) == 0)
                        return m[i].name;
        return "unknown";
}

int kernel_image_read_config(const char *path, const KernelImageHeader *h, char **ret, char **ret_source,
                             char *why, size_t why_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dir = NULL;
        char release[sizeof(h->version)], tried[2][PATH_MAX];
        const char *base, *comp, *embedded;
        size_t n_tried = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                (void) snprintf(why, why_size, "cannot open the image: %s", strerror(-r));
                return r;
        }
        r = file_ikconfig(fd, ret);
        if (r >= 0) {
                embedded = "embedded IKCONFIG";
                goto embedded;
        }
        comp = payload_compression(fd, h);
        if (comp && strcmp(comp, "gzip") == 0) {
                r = payload_gzip_ikconfig(fd, h, ret);
                if (r >= 0) {
                        embedded = "embedded IKCONFIG (gzip payload)";
                        goto embedded;
                }
        }

        base = strrchr(path, '/');
        dir = base ? strndup(path, (size_t) (base - path)) : strdup(".");
        if (!dir)
                return -ENOMEM;
        base = base ? base + 1 : path;
        if (h->version[0])
                (void) snprintf(tried[n_tried++], PATH_MAX, "%s/config-%s", dir,
                                kernel_version_release(h->version, release, sizeof(release)));
        if (strncmp(base, "vmlinuz-", 8) == 0 && base[8] && (n_tried == 0 || strcmp(base + 8, release) != 0))
                (void) snprintf(tried[n_tried++], PATH_MAX, "%s/config-%s", dir, base + 8);
        for (size_t i = 0; i < n_tried; i++) {
                r = read_text_file(tried[i], ret);
                if (r >= 0) {
                        *ret_source = strdup(tried[i]);
                        if (!*ret_source) {
                                free(*ret);
                                *ret = NULL;
                                return -ENOMEM;
                        }
                        return 0;
                }
        }
        if (!comp)
                (void) snprintf(why, why_size, "no embedded IKCONFIG");
        else if (strcmp(comp, "gzip") == 0)
                (void) snprintf(why, why_size, "no embedded IKCONFIG (gzip payload searched)");
        else
                (void) snprintf(why, why_size, "embedded IKCONFIG not searched (%s payload: only gzip is read)", comp);
        if (n_tried == 0)
                (void) snprintf(why + strlen(why), why_size - strlen(why), ", and no config-* file can be named beside the image");
        else
                (void) snprintf(why + strlen(why), why_size - strlen(why), ", and no %s%s%s", tried[0],
                                n_tried > 1 ? " nor " : "", n_tried > 1 ? tried[1] : "");
        return -ENOENT;

embedded:
        *ret_source = strdup(embedded);
        if (!*ret_source) {
                free(*ret);
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

KconfigValue kconfig_get(const char *config, const char *name) {
        size_t len = strlen(name);

        for (const char *p = config; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, name, len) == 0 && p[len] == '=') {
                        const char *v = p + len + 1;
                        if (v[0] == 'y' && (v[1] == '\n' || !v[1]))
                                return KCONFIG_YES;
                        if (v[0] == 'm' && (v[1] == '\n' || !v[1]))
                                return KCONFIG_MODULE;
                        return v[0] == 'n' && (v[1] == '\n' || !v[1]) ? KCONFIG_UNSET : KCONFIG_OTHER;
                }
        }
        return KCONFIG_UNSET;
}

int kernel_image_pe_signed(int fd) {
        uint8_t dos[0x40], pe[24 + 2];
        uint8_t dir[8];
        uint32_t lfanew, n_dirs_off, dirs_off;
        uint8_t nd[4];
        int r;

        r = pread_exact(fd, dos, sizeof(dos), 0);
        if (r < 0)
                return r == -ENODATA ? -ENOEXEC : r;
        if (dos[0] != 'M' || dos[1] != 'Z')
                return -ENOEXEC;
        lfanew = le32(dos + 0x3c);
        r = pread_exact(fd, pe, sizeof(pe), lfanew);
        if (r < 0)
                return r == -ENODATA ? -ENOEXEC : r;
        if (memcmp(pe, "PE\0\0", 4) != 0)
                return -ENOEXEC;
        /* The optional header follows the 4-byte signature and the 20-byte COFF header. */
        if (le16(pe + 24) == 0x10b) {            /* PE32 */
                n_dirs_off = lfanew + 24 + 92;
                dirs_off = lfanew + 24 + 96;
        } else if (le16(pe + 24) == 0x20b) {     /* PE32+ */
                n_dirs_off = lfanew + 24 + 108;
                dirs_off = lfanew + 24 + 112;
        } else
                return -ENOEXEC;
        r = pread_exact(fd, nd, sizeof(nd), n_dirs_off);
        if (r < 0)
                return r == -ENODATA ? -ENOEXEC : r;
        /* The certificate table is data directory 4. */
        if (le32(nd) < 5)
                return 0;
        r = pread_exact(fd, dir, sizeof(dir), dirs_off + 4 * 8);
        if (r < 0)
                return r == -ENODATA ? -ENOEXEC : r;
        return le32(dir) != 0 && le32(dir + 4) != 0;
}

static int read_running_config(const char *root, const char *release, char **ret, char *src, size_t src_size) {
        _cleanup_free_ char *gz = NULL;
        char path[PATH_MAX];
        size_t n;
        int r;

        (void) snprintf(path, sizeof(path), "%s/boot/config-%s", root, release);
        if (read_text_file(path, ret) >= 0) {
                (void) snprintf(src, src_size, "%s", path);
                return 0;
        }
        (void) snprintf(path, sizeof(path), "%s/proc/config.gz", root);
        r = read_whole_file(path, &gz, &n);
        if (r < 0)
                return r;
        r = gunzip(gz, n, ret);
        if (r < 0)
                return r;
        (void) snprintf(src, src_size, "%s", path);
        return 0;
}

static int lockdown_mode(const char *root, char *mode, size_t size) {
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        const char *a, *b;
        int r;

        (void) snprintf(path, sizeof(path), "%s/sys/kernel/security/lockdown", root);
        r = read_text_file(path, &text);
        if (r < 0)
                return r;
        a = strchr(text, '[');
        b = a ? strchr(a, ']') : NULL;
        if (!b)
                return -EBADMSG;
        (void) snprintf(mode, size, "%.*s", (int) (b - a - 1), a + 1);
        return 0;
}

/* EFI Secure Boot: the SecureBoot variable (4 attribute bytes, then the value). */
static int secure_boot(const char *root) {
        _cleanup_close_ int fd = -EBADF;
        char path[PATH_MAX];
        uint8_t b[5];

        (void) snprintf(path, sizeof(path), "%s/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", root);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (read(fd, b, sizeof(b)) != (ssize_t) sizeof(b))
                return -EBADMSG;
        return b[4] == 1;
}

int kexec_sig_enforced(const char *root, const char *release, char *why, size_t why_size) {
        _cleanup_free_ char *config = NULL;
        char src[PATH_MAX] = "", mode[32] = "";
        int cr, lr, sb;

        cr = read_running_config(root, release, &config, src, sizeof(src));
        lr = lockdown_mode(root, mode, sizeof(mode));
        sb = secure_boot(root);
        if (cr >= 0 && kconfig_get(config, "CONFIG_KEXEC_SIG") != KCONFIG_YES) {
                (void) snprintf(why, why_size, "the running kernel has no CONFIG_KEXEC_SIG (%s): kexec images are not signature-checked", src);
                return 0;
        }
        if (cr >= 0 && kconfig_get(config, "CONFIG_KEXEC_SIG_FORCE") == KCONFIG_YES) {
                (void) snprintf(why, why_size, "CONFIG_KEXEC_SIG_FORCE=y in the running kernel (%s)", src);
                return 1;
        }
        if (lr >= 0 && (strcmp(mode, "integrity") == 0 || strcmp(mode, "confidentiality") == 0)) {
                (void) snprintf(why, why_size, "kernel lockdown is in %s mode", mode);
                return 1;
        }
        if (sb > 0 && cr >= 0 && kconfig_get(config, "CONFIG_IMA_ARCH_POLICY") == KCONFIG_YES) {
                (void) snprintf(why, why_size, "EFI Secure Boot is on and the running kernel has CONFIG_IMA_ARCH_POLICY=y");
                return 1;
        }
        if (sb > 0 && cr < 0) {
                (void) snprintf(why, why_size, "EFI Secure Boot is on and the running kernel's configuration is unreadable");
                return 2;
        }
        if (cr < 0 || lr < 0) {
                (void) snprintf(why, why_size, "%s%s%s", cr < 0 ? "the running kernel's configuration is unreadable" : "",
                                cr < 0 && lr < 0 ? " and " : "",
                                lr < 0 ? "the lockdown state is unreadable (securityfs not mounted?)" : "");
                return 2;
        }
        (void) snprintf(why, why_size, "CONFIG_KEXEC_SIG without _FORCE (%s), lockdown %s%s", src, mode,
                        sb > 0 ? ", Secure Boot on without IMA arch policy" : "");
        return 0;
}

/* The numeric components of a release's "X.Y.Z" prefix; returns how many were read. */
static size_t version_parse(const char *s, unsigned long v[3]) {
        size_t n = 0;

        v[0] = v[1] = v[2] = 0;
        while (n < 3 && isdigit((unsigned char) *s)) {
                char *end;
                v[n++] = strtoul(s, &end, 10);
                s = end;
                if (*s != '.')
                        break;
                s++;
        }
        return n;
}

int kernel_version_compare(const char *a, const char *b) {
        unsigned long va[3], vb[3];

        (void) version_parse(a, va);
        (void) version_parse(b, vb);
        for (size_t i = 0; i < 3; i++)
                if (va[i] != vb[i])
                        return va[i] < vb[i] ? -1 : 1;
        return 0;
}

/* A version as the policy writes it: 1 to 3 dot-separated numbers and nothing else. */
static bool version_token_valid(const char *s, size_t len) {
        size_t dots = 0;

        if (len == 0 || !isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[len - 1]))
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '.') {
                        if (s[i + 1] == '.')
                                return false;
                        dots++;
                } else if (!isdigit((unsigned char) s[i]))
                        return false;
        }
        return dots <= 2;
}

/* Whether @next matches policy item @item (@len bytes): a prefix or an A..B range. */
static int item_match(const char *item, size_t len, const char *next) {
        const char *dd = NULL;
        char a[32], b[32];
        unsigned long vi[3], vn[3];
        size_t n;

        for (size_t i = 0; i + 1 < len; i++)
                if (item[i] == '.' && item[i + 1] == '.') {
                        dd = item + i;
                        break;
                }
        if (!dd) {
                if (len >= sizeof(a) || !version_token_valid(item, len))
                        return -EINVAL;
                memcpy(a, item, len);
                a[len] = 0;
                n = version_parse(a, vi);
                (void) version_parse(next, vn);
                for (size_t i = 0; i < n; i++)
                        if (vi[i] != vn[i])
                                return 0;
                return 1;
        }
        size_t la = (size_t) (dd - item), lb = len - la - 2;
        if (la >= sizeof(a) || lb >= sizeof(b) || !version_token_valid(item, la) ||
            (lb > 0 && !version_token_valid(dd + 2, lb)))
                return -EINVAL;
        memcpy(a, item, la);
        a[la] = 0;
        memcpy(b, dd + 2, lb);
        b[lb] = 0;
        if (kernel_version_compare(next, a) < 0)
                return 0;
        return lb == 0 || kernel_version_compare(next, b) <= 0;
}

static int policy_walk(const char *policy, const char *next, char *why, size_t why_size) {
        const char *p = policy;
        bool any_item = false;

        for (;;) {
                size_t len;
                int r;
                p += strspn(p, " \t");
                if (!*p)
                        break;
                len = strcspn(p, " \t");
                any_item = true;
                r = item_match(p, len, next ? next : "0");
                if (r < 0)
                        return r;
                if (r > 0 && next) {
                        (void) snprintf(why, why_size, "%s is allowed by NextKernelVersions= item %.*s", next, (int) len, p);
                        return 1;
                }
                p += len;
        }
        if (!any_item)
                return -EINVAL;
        if (next)
                (void) snprintf(why, why_size, "%s is outside NextKernelVersions=%s", next, policy);
        return 0;
}

bool kernel_versions_policy_valid(const char *policy) {
        if (strcmp(policy, "any") == 0 || strcmp(policy, "running-series") == 0)
                return true;
        return policy_walk(policy, NULL, NULL, 0) >= 0;
}

int kernel_version_allowed(const char *policy, const char *running, const char *next, char *why, size_t why_size) {
        unsigned long vr[3], vn[3];

        if (strcmp(policy, "any") == 0) {
                (void) snprintf(why, why_size, "NextKernelVersions=any allows %s", next);
                return 1;
        }
        if (strcmp(policy, "running-series") == 0) {
                if (version_parse(running, vr) < 2 || version_parse(next, vn) < 2) {
                        (void) snprintf(why, why_size, "cannot read a X.Y series from %s and %s", running, next);
                        return 0;
                }
                if (vr[0] == vn[0] && vr[1] == vn[1]) {
                        (void) snprintf(why, why_size, "%s is in the running kernel's series %lu.%lu (NextKernelVersions=running-series)",
                                        next, vr[0], vr[1]);
                        return 1;
                }
                (void) snprintf(why, why_size, "%s is not in the running kernel's series %lu.%lu (%s; NextKernelVersions=running-series)",
                                next, vr[0], vr[1], running);
                return 0;
        }
        return policy_walk(policy, next, why, why_size);
}
