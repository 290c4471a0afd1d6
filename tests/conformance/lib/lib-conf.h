/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers for the lib-level conformance programs: they run under luo-emu and check the
 * kernel rules through lib/ (luo.h, fd-kind.h, vfio-dev.h, kexec.h) rather than raw
 * ioctls, so that the access layer itself is what is being proven on both ABIs.
 *
 * Each program takes the ABI luo-emu was started with as argv[1] ("upstream"/"v4").
 * Values needed on the next boot go to a notes file next to the TAP state file.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-kind.h"
#include "harness.h"
#include "kexec.h"
#include "luo.h"
#include "pci-addr.h"
#include "vfio-dev.h"

static LuoAbi conf_abi = LUO_ABI_UNKNOWN;

static inline void conf_path(char *buf, size_t n, const char *suffix) {
        snprintf(buf, n, "%s.%s", harness_state_path(), suffix);
}

__attribute__((noreturn, format(printf, 1, 2)))
static inline void conf_bail(const char *fmt, ...) {
        va_list ap;
        printf("Bail out! ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        exit(1);
}

/* harness_init() plus the expected ABI from argv[1]; skips outside the emulator. */
static inline void conf_init(int argc, char **argv) {
        char p[PATH_MAX];

        if (harness_boot() < 0) {
                printf("1..0 # SKIP LUO_EMU_BOOT not set: run under tests/emu/luo-emu\n");
                exit(0);
        }
        if (argc < 2 || luo_abi_from_string(argv[1], &conf_abi) < 0)
                conf_bail("usage: %s upstream|v4", argv[0]);
        harness_init();
        if (harness_boot() == 0) {
                conf_path(p, sizeof(p), "notes");
                (void) unlink(p);
        }
}

static inline void conf_note_set(const char *key, const char *value) {
        char p[PATH_MAX];
        FILE *f;

        conf_path(p, sizeof(p), "notes");
        f = fopen(p, "ae");
        if (!f || fprintf(f, "%s %s\n", key, value) < 0 || fclose(f) != 0)
                conf_bail("cannot write %s", p);
}

/* The last value written for @key into @buf (empty if none). */
static inline const char *conf_note_get(const char *key, char *buf, size_t n) {
        char p[PATH_MAX], k[128], v[256];
        FILE *f;

        buf[0] = '\0';
        conf_path(p, sizeof(p), "notes");
        f = fopen(p, "re");
        if (!f)
                return buf;
        while (fscanf(f, "%127s %255s", k, v) == 2)
                if (strcmp(k, key) == 0 && strlen(v) < n)
                        memcpy(buf, v, strlen(v) + 1);
        fclose(f);
        return buf;
}

/* Opens LUO through lib/ or bails: everything after depends on it. */
static inline Luo *conf_open(void) {
        Luo *l = NULL;
        int r = luo_open(NULL, &l);

        if (r < 0)
                conf_bail("luo_open: %s", strerror(-r));
        return l;
}

/* A memfd of @size bytes: byte i is (i * 131 + seed) & 0xff, so any shift or hole shows. */
static inline int conf_memfd(const char *name, size_t size, unsigned seed) {
        uint8_t *p;
        int fd;

        fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                conf_bail("memfd %s: %s", name, strerror(errno));
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                conf_bail("mmap: %s", strerror(errno));
        for (size_t i = 0; i < size; i++)
                p[i] = (uint8_t) (i * 131 + seed);
        munmap(p, size);
        return fd;
}

static inline bool conf_memfd_check(int fd, size_t size, unsigned seed) {
        struct stat st;
        uint8_t *p;
        bool ok = true;

        if (fstat(fd, &st) < 0 || (size_t) st.st_size != size)
                return false;
        p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return false;
        for (size_t i = 0; i < size && ok; i++)
                ok = p[i] == (uint8_t) (i * 131 + seed);
        munmap(p, size);
        return ok;
}

/* A file luo-emu's (and the kernel's bzImage) loader accepts: "HdrS" at 0x202. */
static inline const char *conf_write_image(bool valid, char *path, size_t n) {
        char img[1024] = {};
        int fd;

        conf_path(path, n, valid ? "bzImage" : "not-a-kernel");
        if (valid)
                memcpy(img + 0x202, "HdrS", 4);
        else
                memcpy(img, "#!/bin/sh\n", 10);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, img, sizeof(img)) != (ssize_t) sizeof(img) || close(fd) < 0)
                conf_bail("cannot write %s", path);
        return path;
}

/* Loads the fake kernel with the running command line and kexecs; never returns. */
__attribute__((noreturn))
static inline void conf_kexec(Luo *l) {
        char path[PATH_MAX];
        char *cmdline = NULL;
        int r;

        if (kernel_cmdline_read(&cmdline) < 0)
                conf_bail("kernel_cmdline_read");
        r = kexec_load_kernel(conf_write_image(true, path, sizeof(path)), NULL, cmdline);
        free(cmdline);
        if (r < 0)
                conf_bail("kexec_load_kernel: %s", strerror(-r));
        if (l && luo_get_abi(l) == LUO_ABI_V4) {
                LuoState st = LUO_STATE_UNDEFINED;
                if (luo_get_state(l, &st) >= 0 && st == LUO_STATE_NORMAL && (r = luo_prepare(l)) < 0)
                        conf_bail("luo_prepare: %s", strerror(-r));
        }
        harness_carry();
        r = kexec_reboot();
        conf_bail("kexec_reboot returned: %s", strerror(-r));
}
