/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kexec_file_load() and reboot() of the emulated kernel: image validation and
 * the loaded command line, the reboot magic and capability checks, the LUO
 * freeze at LINUX_REBOOT_CMD_KEXEC (a failure keeps the machine running and is
 * the syscall's result), and the switch to the next boot.
 */
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu.h"

#define KEXEC_FILE_UNLOAD       0x00000001
#define KEXEC_FILE_ON_CRASH     0x00000002
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#define KEXEC_FILE_DEBUG        0x00000008
#define KEXEC_FILE_NO_CMA       0x00000010
#define KEXEC_FILE_FLAGS        0x0000001f
#define CAP_SYS_BOOT_BIT        22

static bool kstrtobool_true(const char *v) {
        switch (v[0]) {
        case 'y': case 'Y': case '1': case 't': case 'T':
                return true;
        case 'o': case 'O':
                return v[1] == 'n' || v[1] == 'N';
        default:
                return false;
        }
}

bool cmdline_luo_enabled(const char *cmdline) {
        bool lu = false, kho = false;
        const char *p = cmdline;

        while (p && *p) {
                size_t n;
                char tok[256];

                p += strspn(p, " \t\n");
                n = strcspn(p, " \t\n");
                if (n == 0)
                        break;
                snprintf(tok, sizeof(tok), "%.*s", (int) MIN(n, sizeof(tok) - 1), p);
                p += n;
                if (strcmp(tok, "--") == 0)
                        break;
                if (strncmp(tok, "liveupdate=", 11) == 0)
                        lu = kstrtobool_true(tok + 11);
                else if (strncmp(tok, "kho=", 4) == 0)
                        kho = kstrtobool_true(tok + 4);
        }
        return lu && kho;
}

/* Effective capabilities of the caller (reboot/kexec path only, never per ioctl). */
static bool caller_has_cap(struct call *c, int cap) {
        char path[64], line[256];
        FILE *f;
        bool ok = false;

        snprintf(path, sizeof(path), "/proc/%u/status", c->req->pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long v;

                if (sscanf(line, "CapEff: %llx", &v) == 1) {
                        ok = (v >> cap) & 1;
                        break;
                }
        }
        fclose(f);
        return ok;
}

void kexec_file_load_call(struct call *c) {
        int kernel_fd = (int) c->req->data.args[0];
        int initrd_fd = (int) c->req->data.args[1];
        uint64_t cmdline_len = c->req->data.args[2];
        uint64_t cmdline_ptr = c->req->data.args[3];
        uint64_t flags = c->req->data.args[4];
        _cleanup_close_ int kfd = -EBADF, ifd = -EBADF;
        _cleanup_free_ char *cmdline = NULL;
        char magic[4];
        struct stat st;
        int fl;

        if (!caller_has_cap(c, CAP_SYS_BOOT_BIT))
                return call_reply(c, -EPERM);
        if (flags & ~(uint64_t) KEXEC_FILE_FLAGS)
                return call_reply(c, -EINVAL);
        if (flags & KEXEC_FILE_UNLOAD) {
                if (flags & KEXEC_FILE_ON_CRASH)
                        emu.kexec_crash_loaded = false;
                else {
                        emu.kexec_loaded = false;
                        free(emu.kexec_cmdline);
                        emu.kexec_cmdline = NULL;
                        fakefs_set_kexec_loaded(false);
                }
                log_debug("kexec image unloaded");
                return call_reply(c, 0);
        }

        kfd = call_getfd(c, kernel_fd);
        if (kfd < 0)
                return call_reply(c, -EBADF);
        fl = fcntl(kfd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
                return call_reply(c, -EBADF);
        if (fstat(kfd, &st) < 0 || !S_ISREG(st.st_mode))
                return call_reply(c, -EINVAL);
        if (pread(kfd, magic, sizeof(magic), 0x202) != sizeof(magic) || memcmp(magic, "HdrS", 4) != 0)
                return call_reply(c, -ENOEXEC);
        if (!(flags & KEXEC_FILE_NO_INITRAMFS)) {
                ifd = call_getfd(c, initrd_fd);
                if (ifd < 0)
                        return call_reply(c, -EBADF);
                fl = fcntl(ifd, F_GETFL);
                if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
                        return call_reply(c, -EBADF);
                if (fstat(ifd, &st) < 0 || !S_ISREG(st.st_mode))
                        return call_reply(c, -EINVAL);
        }
        if (cmdline_len > 0) {
                if (cmdline_len > 65536)
                        return call_reply(c, -EINVAL);
                cmdline = malloc(cmdline_len);
                if (!cmdline)
                        return call_reply(c, -ENOMEM);
                if (call_read(c, cmdline_ptr, cmdline, cmdline_len) < 0)
                        return call_reply(c, -EFAULT);
                if (cmdline[cmdline_len - 1] != 0)
                        return call_reply(c, -EINVAL);
        } else {
                cmdline = strdup("");
                if (!cmdline)
                        return call_reply(c, -ENOMEM);
        }
        if (flags & KEXEC_FILE_ON_CRASH) {
                emu.kexec_crash_loaded = true;
                return call_reply(c, 0);
        }
        free(emu.kexec_cmdline);
        emu.kexec_cmdline = TAKE_PTR(cmdline);
        emu.kexec_loaded = true;
        fakefs_set_kexec_loaded(true);
        log_debug("kexec image loaded, next cmdline \"%s\"", emu.kexec_cmdline);
        call_reply(c, 0);
}

/* Like the real thing, the reboot() call never returns: the caller stays blocked in
 * its notification until the kill reaches it (closing the listener instead would
 * hand it ENOSYS and let it run on briefly). */
static void machine_stop(struct call *c) {
        machine_kill();
        c->answered = true;
}

/* reboot(LINUX_REBOOT_CMD_KEXEC) with an image loaded: LUO freeze, then the next boot. */
static void kexec_commit(struct call *c) {
        struct timespec ts;
        uint64_t t_call;
        bool next_enabled;
        int r;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        t_call = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        if (!emu.kexec_loaded)
                return call_reply(c, -EINVAL);
        r = opt.abi == EMU_ABI_V4 ? luo_v4_freeze_all() : luo_freeze_all();
        if (r < 0) {
                log_debug("kexec refused: LUO freeze failed: %s", strerror(-r));
                return call_reply(c, r);
        }
        next_enabled = cmdline_luo_enabled(emu.kexec_cmdline);
        log_debug("kexec committed (boot %u -> %u)", emu.boot, emu.boot + 1);
        emu.reboot_call_us = t_call;
        /* The old machine's files die with it; only what LUO froze survives. */
        machine_stop(c);
        luo_handover(next_enabled);
        object_drop_all();
        vfio_boot_reset();
        if (opt.abi == EMU_ABI_V4)
                luo_v4_boot(luo_incoming.count > 0);
        free(emu.cmdline);
        emu.cmdline = TAKE_PTR(emu.kexec_cmdline);
        emu.kexec_loaded = false;
        machine_kexec_pending = true;
}

/*
 * In a container, systemd-shutdown turns its "kexec" verb into a plain restart (it
 * cannot know that the machine's kernel can kexec, and would exec kexec-tools' `kexec
 * -e` only outside one). On a host that same moment is the kexec of the loaded image.
 * So the emulated machine takes a RESTART from a process that is systemd-shutdown run
 * with the verb "kexec", while an image is loaded, as reboot(LINUX_REBOOT_CMD_KEXEC);
 * every other restart still ends the emulation.
 */
static bool caller_is_shutdown_kexec(struct call *c) {
        char p[64], buf[512];
        const char *argv0, *base;
        ssize_t n;
        int fd;

        snprintf(p, sizeof(p), "/proc/%u/cmdline", c->req->pid);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = 0;
        argv0 = buf;
        base = strrchr(argv0, '/');
        base = base ? base + 1 : argv0;
        if (strcmp(base, "systemd-shutdown") != 0 || (size_t) n <= strlen(argv0) + 1)
                return false;
        return strcmp(argv0 + strlen(argv0) + 1, "kexec") == 0;
}

void kexec_reboot_call(struct call *c) {
        uint32_t magic1 = (uint32_t) c->req->data.args[0];
        uint32_t magic2 = (uint32_t) c->req->data.args[1];
        uint32_t cmd = (uint32_t) c->req->data.args[2];

        if (!caller_has_cap(c, CAP_SYS_BOOT_BIT))
                return call_reply(c, -EPERM);
        if (magic1 != LINUX_REBOOT_MAGIC1 ||
            (magic2 != LINUX_REBOOT_MAGIC2 && magic2 != LINUX_REBOOT_MAGIC2A &&
             magic2 != LINUX_REBOOT_MAGIC2B && magic2 != LINUX_REBOOT_MAGIC2C))
                return call_reply(c, -EINVAL);

        switch (cmd) {
        case LINUX_REBOOT_CMD_KEXEC:
                return kexec_commit(c);
        case LINUX_REBOOT_CMD_RESTART:
        case LINUX_REBOOT_CMD_RESTART2:
                if (emu.kexec_loaded && caller_is_shutdown_kexec(c)) {
                        log_debug("systemd-shutdown's restart of its kexec verb is taken as the kexec");
                        return kexec_commit(c);
                }
                __attribute__((fallthrough));
        case LINUX_REBOOT_CMD_HALT:
        case LINUX_REBOOT_CMD_POWER_OFF:
                log_debug("machine %s", cmd == LINUX_REBOOT_CMD_POWER_OFF ? "powered off" :
                          cmd == LINUX_REBOOT_CMD_HALT ? "halted" : "restarted (ends the emulation)");
                machine_exit_request = 0;
                machine_stop(c);
                return;
        case LINUX_REBOOT_CMD_CAD_ON:
        case LINUX_REBOOT_CMD_CAD_OFF:
                return call_reply(c, 0);
        default:
                return call_reply(c, -EINVAL);
        }
}
