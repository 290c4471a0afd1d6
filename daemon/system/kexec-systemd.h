/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KexecMode=systemd (docs/operations.md): instead of calling reboot(LINUX_REBOOT_CMD_KEXEC)
 * itself, lu-vfiod asks the service manager for the kexec (what `systemctl kexec` does),
 * after every session fd is in the fd store with FileDescriptorStorePreserve=yes. The new
 * kernel is already loaded by prepare. Only a service manager that carries its fd store
 * across the kexec (systemd >= 261) keeps the sessions; prepare checks that first.
 */
#pragma once

#include <stddef.h>

/* The first systemd whose fd store carries LUO session fds through `systemctl kexec`. */
#define KEXEC_SYSTEMD_MIN_VERSION 261

/*
 * kexec_systemd_check() - read org.freedesktop.systemd1.Manager's Version property on the
 * system bus. 0 when the running systemd is at least KEXEC_SYSTEMD_MIN_VERSION;
 * -EOPNOTSUPP for an older one, another negative errno when the manager cannot be asked,
 * both with a description naming the version in @errbuf.
 */
int kexec_systemd_check(char *errbuf, size_t errlen);

/*
 * kexec_request_systemd() - start kexec.target ("replace-irreversibly", the job `systemctl
 * kexec` queues) on the system bus and wait for the reply. 0 when systemd accepted the job
 * (the machine is then being shut down; the caller must not unpreserve anything), negative
 * errno otherwise with a description in @errbuf.
 */
int kexec_request_systemd(char *errbuf, size_t errlen);
