/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checks of prepare's pre-flight, each with its own result; see preflight.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kernel-image.h"
#include "kexec.h"

#include "core/preflight.h"
#include "system/kexec-systemd.h"

/* What a next kernel needs to take the VMs over (kernel/liveupdate/Kconfig). */
static const char *const next_config_required[] = {
        "CONFIG_KEXEC_HANDOVER",
        "CONFIG_LIVEUPDATE",
        "CONFIG_LIVEUPDATE_MEMFD",
};
/* The vfio-pci live update handler (out of tree: docs/protocol.md, luo-abi.md §4). */
#define NEXT_CONFIG_VFIO "CONFIG_VFIO_PCI_LIVEUPDATE"

/* What the next kernel image says about itself, read once for all its checks. */
typedef struct NextImage {
        int fd;                    /* or negative errno of the open */
        int header_r;              /* kernel_image_read_header() */
        KernelImageHeader h;
        int config_r;              /* kernel_image_read_config() */
        char *config, *source;
        char why[400];
} NextImage;

static void next_image_read(const char *kernel, NextImage *n) {
        *n = (NextImage) { .fd = -EBADF };
        n->fd = open(kernel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (n->fd < 0) {
                n->fd = n->header_r = n->config_r = -errno;
                (void) snprintf(n->why, sizeof(n->why), "cannot open the image: %s", strerror(-n->fd));
                return;
        }
        n->header_r = kernel_image_read_header(n->fd, &n->h);
        n->config_r = kernel_image_read_config(kernel, &n->h, &n->config, &n->source, n->why, sizeof(n->why));
}

static void next_image_done(NextImage *n) {
        if (n->fd >= 0)
                (void) close(n->fd);
        free(n->config);
        free(n->source);
}

const char *preflight_status_to_string(PreflightStatus s) {
        static const char *const names[] = {
                [PREFLIGHT_PASS] = "pass",
                [PREFLIGHT_FAIL] = "fail",
                [PREFLIGHT_UNKNOWN] = "unknown",
                [PREFLIGHT_SKIPPED] = "skipped",
        };
        return (unsigned) s < ELEMENTSOF(names) ? names[s] : "unknown";
}

_printf_(5, 6)
static void add(Preflight *p, const char *name, PreflightStatus status, int error, const char *fmt, ...) {
        PreflightCheck *c;
        va_list ap;

        if (p->n >= PREFLIGHT_CHECKS_MAX)
                return;
        c = &p->checks[p->n++];
        *c = (PreflightCheck) { .status = status, .error = error < 0 ? -error : error };
        (void) snprintf(c->name, sizeof(c->name), "%s", name);
        c->next_kernel = strncmp(name, "next-", 5) == 0;
        va_start(ap, fmt);
        (void) vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
        va_end(ap);
}

static void check_orchestrator(Manager *m, bool check_only, Preflight *p) {
        int r;

        if (!m->luo) {
                int e = m->luo_error ? -m->luo_error : ENOENT;
                add(p, "orchestrator", PREFLIGHT_FAIL, e, "no Live Update Orchestrator (/dev/liveupdate: %s)", strerror(e));
                return;
        }
        if (luo_get_abi(m->luo) != LUO_ABI_UPSTREAM && luo_get_abi(m->luo) != LUO_ABI_V4) {
                add(p, "orchestrator", PREFLIGHT_FAIL, EPROTONOSUPPORT, "unsupported LUO ABI %s",
                    luo_abi_to_string(luo_get_abi(m->luo)));
                return;
        }
        add(p, "orchestrator", PREFLIGHT_PASS, 0, "/dev/liveupdate, LUO ABI %s", luo_abi_to_string(luo_get_abi(m->luo)));

        if (m->luo_finish_error >= 0) {
                add(p, "previous-update", PREFLIGHT_PASS, 0, "the kernel finished the previous live update");
                return;
        }
        if (check_only) {
                /* Only prepare retries the FINISH: a check changes nothing. */
                add(p, "previous-update", PREFLIGHT_UNKNOWN, -m->luo_finish_error,
                    "the kernel's FINISH of the previous live update failed (%s); prepare tries it again",
                    strerror(-m->luo_finish_error));
                return;
        }
        /* v4 PREPARE needs the global FINISH of the last update; say so rather than EINVAL. */
        r = luo_finish(m->luo);
        if (r < 0) {
                add(p, "previous-update", PREFLIGHT_FAIL, r,
                    "the kernel has not finished the previous live update (LUO FINISH: %s): "
                    "a session that cannot finish holds it until the next reboot", strerror(-r));
                return;
        }
        m->luo_finish_error = 0;
        add(p, "previous-update", PREFLIGHT_PASS, 0, "the kernel finished the previous live update now");
}

static void check_cmdlines(Manager *m, const char *cmdline, const NextImage *next, Preflight *p) {
        _cleanup_free_ char *running = NULL;
        bool kho_default, lu, kho;
        int r;

        if (!m->config->check_cmdline) {
                add(p, "running-cmdline", PREFLIGHT_SKIPPED, 0, "CheckCommandLine=no");
                add(p, "next-cmdline", PREFLIGHT_SKIPPED, 0, "CheckCommandLine=no");
                return;
        }
        r = kernel_cmdline_read(&running);
        if (r < 0)
                add(p, "running-cmdline", PREFLIGHT_FAIL, r, "cannot read /proc/cmdline: %s", strerror(-r));
        else if (!kernel_cmdline_has_flag(running, "liveupdate") || !kernel_cmdline_has_flag(running, "kho"))
                add(p, "running-cmdline", PREFLIGHT_FAIL, EINVAL, "running kernel command line lacks liveupdate=on or kho=on");
        else
                add(p, "running-cmdline", PREFLIGHT_PASS, 0, "liveupdate=on kho=on");
        /* A next kernel built with CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT has KHO on unless kho=off. */
        kho_default = next->config_r >= 0 && kconfig_get(next->config, "CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT") == KCONFIG_YES;
        lu = kernel_cmdline_has_flag(cmdline, "liveupdate");
        kho = kernel_cmdline_flag_or(cmdline, "kho", kho_default);
        if (!lu || !kho)
                add(p, "next-cmdline", PREFLIGHT_FAIL, EINVAL, "next kernel command line lacks %s%s%s%s",
                    lu ? "" : "liveupdate=on", !lu && !kho ? " and " : "", kho ? "" : "kho=on",
                    !kho && kho_default ? " (kho=off overrides CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT)" : "");
        else
                add(p, "next-cmdline", PREFLIGHT_PASS, 0, "liveupdate=on kho=on%s",
                    kho_default && !kernel_cmdline_has_flag(cmdline, "kho") ? " (KHO on by CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT)" : "");
}

static void check_kexec_mode(Manager *m, Preflight *p) {
        char why[256] = "";
        int r;

        if (m->config->kexec_mode != KEXEC_MODE_SYSTEMD) {
                add(p, "kexec-mode", PREFLIGHT_PASS, 0, "KexecMode=direct");
                return;
        }
        r = kexec_systemd_check(why, sizeof(why));
        if (r < 0)
                add(p, "kexec-mode", PREFLIGHT_FAIL, r, "%s", why);
        else
                add(p, "kexec-mode", PREFLIGHT_PASS, 0, "KexecMode=systemd, systemd >= %d", KEXEC_SYSTEMD_MIN_VERSION);
}

static bool vms_hold_vfio(Manager *m) {
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                for (size_t j = 0; j < vm->n_sessions; j++)
                        for (size_t k = 0; k < vm->sessions[j].n_items; k++)
                                if (vm->sessions[j].items[k].kind == REG_KIND_VFIO)
                                        return true;
        }
        return false;
}

static void check_vms(Manager *m, Preflight *p) {
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                if (vm->incoming && !vm->restored) {
                        add(p, "vm-state", PREFLIGHT_FAIL, EBUSY, "VM %s has not been restored from the previous update", vm->id);
                        return;
                }
                for (size_t j = 0; j < vm->n_sessions; j++)
                        for (size_t k = 0; k < vm->sessions[j].n_items; k++)
                                if (vm->sessions[j].items[k].lost) {
                                        add(p, "vm-state", PREFLIGHT_FAIL, ENOENT,
                                            "VM %s: item \"%s\" is not preserved (VMM must preserve it again)",
                                            vm->id, vm->sessions[j].items[k].label);
                                        return;
                                }
        }
        add(p, "vm-state", PREFLIGHT_PASS, 0, "%zu VM(s), every item preserved", m->reg->n_vms);
}

static void check_files(const char *kernel, const char *initrd, Preflight *p) {
        if (access(kernel, R_OK) < 0)
                add(p, "kernel-file", PREFLIGHT_FAIL, errno, "kernel image %s: %s", kernel, strerror(errno));
        else
                add(p, "kernel-file", PREFLIGHT_PASS, 0, "%s", kernel);
        /* Else kexec_file_load() fails on it, and that reads as the kernel's fault. */
        if (!initrd)
                add(p, "initrd-file", PREFLIGHT_PASS, 0, "no initrd");
        else if (access(initrd, R_OK) < 0)
                add(p, "initrd-file", PREFLIGHT_FAIL, errno, "initrd %s: %s", initrd, strerror(errno));
        else
                add(p, "initrd-file", PREFLIGHT_PASS, 0, "%s", initrd);
}

/* The next kernel's own configuration, version and signature. */
static void check_image(Manager *m, const NextImage *next, Preflight *p) {
        char why[400] = "", release[sizeof(next->h.version)], name[48];
        const char *policy = m->config->next_kernel_versions ?: "running-series";
        struct utsname u;
        int r, enforced, sig;

        /* Configuration */
        for (size_t i = 0; i <= ELEMENTSOF(next_config_required); i++) {
                const char *opt = i < ELEMENTSOF(next_config_required) ? next_config_required[i] : NEXT_CONFIG_VFIO;
                KconfigValue v;
                (void) snprintf(name, sizeof(name), "next-config:%s", opt);
                if (i == ELEMENTSOF(next_config_required) && !vms_hold_vfio(m)) {
                        add(p, name, PREFLIGHT_PASS, 0, "not needed: no VM holds a VFIO device");
                        continue;
                }
                if (next->config_r < 0) {
                        add(p, name, PREFLIGHT_UNKNOWN, -next->config_r, "configuration not readable: %s", next->why);
                        continue;
                }
                v = kconfig_get(next->config, opt);
                if (v == KCONFIG_YES)
                        add(p, name, PREFLIGHT_PASS, 0, "%s=y (%s)", opt, next->source);
                else
                        add(p, name, PREFLIGHT_FAIL, ENOTSUP, "the next kernel is built without %s (%s%s, %s)", opt, opt,
                            v == KCONFIG_MODULE ? "=m" : " unset", next->source);
        }

        /* Version */
        if (next->header_r < 0)
                add(p, "next-version", PREFLIGHT_UNKNOWN, -next->header_r, "%s",
                    next->fd < 0 ? next->why : next->header_r == -ENOEXEC ? "not a bzImage (no setup header)" :
                    "cannot read the setup header");
        else if (!next->h.version[0])
                add(p, "next-version", PREFLIGHT_UNKNOWN, ENODATA, "the image has no version string");
        else if (uname(&u) < 0)
                add(p, "next-version", PREFLIGHT_UNKNOWN, errno, "uname: %s", strerror(errno));
        else {
                r = kernel_version_allowed(policy, u.release, kernel_version_release(next->h.version, release, sizeof(release)),
                                           why, sizeof(why));
                if (r > 0)
                        add(p, "next-version", PREFLIGHT_PASS, 0, "%s", why);
                else
                        add(p, "next-version", PREFLIGHT_FAIL, EPROTONOSUPPORT, "%s", why);
        }

        /* Signature */
        if (uname(&u) < 0) {
                add(p, "next-signature", PREFLIGHT_UNKNOWN, errno, "uname: %s", strerror(errno));
                return;
        }
        enforced = kexec_sig_enforced("", u.release, why, sizeof(why));
        sig = next->fd < 0 ? next->fd : kernel_image_pe_signed(next->fd);
        if (enforced == 0)
                add(p, "next-signature", PREFLIGHT_PASS, 0, "not enforced: %s", why);
        else if (sig > 0)
                add(p, "next-signature", PREFLIGHT_PASS, 0, "the image carries a PE signature (the kernel verifies it at load); %s",
                    enforced == 1 ? why : "enforcement unknown");
        else if (enforced == 1)
                add(p, "next-signature", PREFLIGHT_FAIL, EKEYREJECTED, "the host enforces kexec signatures (%s) and the image is %s",
                    why, sig == 0 ? "an unsigned PE image" : "not a signed PE image");
        else
                add(p, "next-signature", PREFLIGHT_UNKNOWN, ENODATA, "the image is unsigned and enforcement cannot be told: %s", why);
}

void preflight_run(Manager *m, const char *kernel, const char *initrd, const char *cmdline, bool check_only,
                   bool force, Preflight *ret) {
        NextImage next;

        *ret = (Preflight) {};
        next_image_read(kernel, &next);

        /* prepare answers wrong-state before its pre-flight; a check-prepare reports it here. */
        if (m->state == UPDATE_IDLE)
                add(ret, "update-state", PREFLIGHT_PASS, 0, "idle");
        else
                add(ret, "update-state", PREFLIGHT_FAIL, EBUSY, "update is %s", update_state_to_string(m->state));
        check_orchestrator(m, check_only, ret);
        check_cmdlines(m, cmdline, &next, ret);
        check_kexec_mode(m, ret);
        check_vms(m, ret);
        check_files(kernel, initrd, ret);
        check_image(m, &next, ret);
        next_image_done(&next);

        for (size_t i = 0; i < ret->n; i++) {
                PreflightCheck *c = &ret->checks[i];
                bool would = c->status == PREFLIGHT_FAIL ||
                        (c->status == PREFLIGHT_UNKNOWN && c->next_kernel && m->config->next_kernel_strict);
                if (!would)
                        continue;
                if (c->next_kernel && force) {
                        c->forced = true;
                        continue;
                }
                c->refuses = true;
                if (!ret->refused_by)
                        ret->refused_by = c;
        }
}

json_object *preflight_to_json(const Preflight *p) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; i < p->n; i++) {
                const PreflightCheck *c = &p->checks[i];
                json_object *e = json_object_new_object();
                json_object_object_add(e, "check", json_object_new_string(c->name));
                json_object_object_add(e, "result", json_object_new_string(preflight_status_to_string(c->status)));
                json_object_object_add(e, "detail", json_object_new_string(c->detail));
                json_object_object_add(e, "next_kernel", json_object_new_boolean(c->next_kernel));
                json_object_object_add(e, "refuses", json_object_new_boolean(c->refuses));
                json_object_object_add(e, "forced", json_object_new_boolean(c->forced));
                json_object_array_add(a, e);
        }
        json_object_object_add(o, "checks", a);
        json_object_object_add(o, "refused_by", p->refused_by ? json_object_new_string(p->refused_by->name) : NULL);
        return o;
}
