/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KexecMode=systemd (docs/operations.md): instead of calling reboot(LINUX_REBOOT_CMD_KEXEC)
 * itself, lu-vfiod asks the service manager for the kexec (what `systemctl kexec` does),
 * after every session fd is in the fd store with FileDescriptorStorePreserve=yes. The new
 * kernel is already loaded by prepare.
 */
#pragma once

/*
 * kexec_request_systemd() - call org.freedesktop.systemd1.Manager.KExec() on the system
 * bus and wait for the reply. 0 when systemd accepted the job (the machine is then being
 * shut down; the caller must not unpreserve anything), negative errno otherwise with a
 * description in @errbuf.
 */
int kexec_request_systemd(char *errbuf, size_t errlen);
