#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The kexec paths on the real systemd 252 (docs/operations.md "Kexec modes"):
#  - KexecMode=systemd: prepare's pre-flight reads the manager's Version over the real bus and
#    refuses (precondition-failed, lu-vfioctl exit 5) naming systemd 252, which cannot carry
#    LUO session fds through `systemctl kexec` (261 can);
#  - what 252 does when an operator runs the orderly `systemctl kexec` with VMs preserved and
#    the kernel loaded by prepare: every unit is stopped (lu-vfiod too: its sessions are
#    closed, so LUO drops them), systemd-shutdown kexecs (luo-emu takes its restart as the
#    kexec, docs/emulator.md), the new boot has no incoming sessions and the VMM service
#    starts a fresh guest: the running VM is lost.
#   test-kexec-systemd.sh LUO_EMU BUILD_ROOT EXAMPLE_VMM     (env RS_DIR)
set -u
LUO_EMU=$1 BUILD_ROOT=$2 RS_VMM=$3
. "$(dirname "$0")/machine.sh"
mkdir -p "$RS_DIR"
rs_setup
printf '[Service]\nKexecMode=systemd\n' >"$RS_DIR/root$RS_CONF"
rs_boot --vfio=1
rs_wait_up 90 || bail "the machine's systemd did not finish booting"
rs_exec systemctl enable --now vmm@vm0.service >/dev/null 2>&1
rs_wait rs_exec test -e /run/vmm-vm0.ready || bail "the VMM service did not hand over"

out=$(rs_run lu-vfioctl prepare /boot/vmlinuz-next 2>&1); st=$?
note "$out"
check "KexecMode=systemd on systemd 252: prepare refused as a failed pre-flight (exit $st)" test "$st" = 5
check "... naming the running systemd's version and the one needed" \
        grep -q "needs systemd >= 261.*the running manager is systemd 252" <<<"$out"
check "the update is idle again, nothing loaded" \
        test "$(rs_prop State)/$(rs_run cat /sys/kernel/kexec_loaded)" = idle/0

# KexecMode=direct with the kernel loaded, but the operator reboots with `systemctl kexec`.
rm "$RS_DIR/root$RS_CONF"
rs_exec systemctl restart lu-vfiod.service
rs_wait eval '[ "$(rs_prop State)" = idle ]'
rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1
check "prepared with KexecMode=direct" test "$(rs_prop State)" = prepared
check "the kernel image is loaded" test "$(rs_run cat /sys/kernel/kexec_loaded)" = 1
rs_exec systemctl kexec >/dev/null 2>&1 &
rs_wait_boot 1 90 || bail "systemctl kexec did not end in a kexec"
ok "systemctl kexec on the real systemd 252 reached the emulated kexec (systemd-shutdown's restart)"
sed -n '/^=== boot 0/,/^=== boot 1/p' "$RS_DIR/console.log" >"$RS_DIR/shutdown.log"
check "the orderly path: units were stopped (console)" grep -q "Stopped.*lu-vfiod.service" "$RS_DIR/shutdown.log"
check "systemd-shutdown ran (console)" grep -q -i "kexec\|Rebooting" "$RS_DIR/shutdown.log"
rs_wait eval '[ "$(rs_unit_prop vmm@vm0.service ActiveState)" != activating ]'
out=$(rs_run lu-vfioctl status 2>&1)
note "$out"
check "systemd 252 did not carry the sessions: the new boot has no incoming live update" \
        grep -q "This boot: *regular boot" <<<"$out"
rs_wait rs_exec test -e /run/vmm-vm0.ready
fresh_guest() {
        ! rs_run journalctl -b _SYSTEMD_UNIT=vmm@vm0.service -o cat | grep -q RESTORED &&
                rs_exec test -e /run/vmm-vm0.ready
}
check "the VMM service found nothing to reclaim: it started a fresh guest (state lost)" fresh_guest
rs_poweroff
echo "1..$n"
exit $fail
