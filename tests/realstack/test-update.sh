#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A whole live update on the real host stack (Debian 12's systemd 252, dbus-daemon, polkitd)
# inside luo-emu's machine: two example VMMs run as systemd services (vmm@.service, After=
# lu-vfiod.socket) and socket-activate the daemon; lu-vfioctl (over the real system bus) prepares
# and commits with KexecMode=direct; the kexec boots the real systemd again, the VMM services
# start again and reclaim. On the way: the hardened unit sees the emulated /proc/cmdline, each
# boot has its own boot_id, `systemctl status` shows each phase's STATUS, and `journalctl
# --catalog` shows the catalogued MESSAGE_IDs with their text.
#   test-update.sh LUO_EMU BUILD_ROOT EXAMPLE_VMM ABI     (env RS_DIR: scratch directory)
set -u
LUO_EMU=$1 BUILD_ROOT=$2 RS_VMM=$3 abi=$4
. "$(dirname "$0")/machine.sh"
mkdir -p "$RS_DIR"
rs_setup
# The package enables lu-vfiod.service at boot (WantedBy=multi-user.target); here only the
# socket is, so that the first VMM's connection is what starts the daemon.
chroot "$RS_DIR/root" sh -c 'systemctl disable -q lu-vfiod.service && systemctl enable -q lu-vfiod.socket' ||
        bail "cannot leave only lu-vfiod.socket enabled"
rs_boot --abi="$abi" --vfio=2
rs_wait_up 90 || bail "the machine's systemd did not finish booting"
ok "boot 0: systemd 252 is up ($(rs_exec systemctl --version | head -n1))"

# The hardened unit's sandbox (its own procfs) sees the emulated command line.
cl=$(rs_run -p ProtectProc=invisible -p ProtectKernelTunables=yes -p ProtectControlGroups=yes cat /proc/cmdline)
case "$cl" in *liveupdate=on*) ok "a unit with ProtectProc=/ProtectKernelTunables= sees the emulated /proc/cmdline" ;;
        *) bad "a hardened unit saw /proc/cmdline \"$cl\"" ;; esac

check "lu-vfiod.socket is listening, the service not started" \
        test "$(rs_unit_prop lu-vfiod.socket ActiveState)/$(rs_unit_prop lu-vfiod.service ActiveState)" = active/inactive

rs_exec systemctl enable --now vmm@vm0.service vmm@vm1.service >/dev/null 2>&1
rs_wait rs_exec test -e /run/vmm-vm0.ready -a -e /run/vmm-vm1.ready || bail "the VMM services did not hand over"
check "a VMM connecting to lu-vfiod.socket socket-activated lu-vfiod.service" \
        test "$(rs_unit_prop lu-vfiod.service ActiveState)" = active
check "the daemon was started by the socket (journal)" \
        rs_run sh -c 'journalctl -b -u lu-vfiod -o cat | grep -q "socket activation"'
check "both VMs registered (lu-vfioctl list)" rs_run sh -c 'lu-vfioctl list | grep -q vm0 && lu-vfioctl list | grep -q vm1'

st=$(rs_unit_prop lu-vfiod.service StatusText); note "STATUS before prepare: $st"
check "systemctl status shows the idle STATUS" test "${st%%:*}" = idle -o "${st%%,*}" = idle

rs_run lu-vfioctl prepare /boot/vmlinuz-next >"$RS_DIR/prepare.out" 2>&1
check "lu-vfioctl prepare exits 0" test $? = 0
st=$(rs_unit_prop lu-vfiod.service StatusText); note "STATUS after prepare: $st"
check "systemctl status shows the prepared STATUS" test "${st%%:*}" = prepared
check "systemctl status lu-vfiod prints it" rs_exec sh -c 'systemctl status lu-vfiod --no-pager | grep -q "Status: \"prepared"'

rs_run lu-vfioctl commit >"$RS_DIR/commit.out" 2>&1 &
commit=$!
rs_wait_boot 1 90 || bail "boot 1 did not come up after the commit"
wait $commit 2>/dev/null
ok "the commit kexec'd: boot 1 of the machine runs the real systemd"
check "the commit reached the reboot (lu-vfioctl said so)" grep -q rebooting "$RS_DIR/commit.out"
check "the old machine's systemd did not shut down (direct kexec: no stop jobs)" \
        sh -c "! sed -n '/^=== boot 0/,/^=== boot 1/p' '$RS_DIR/console.log' | grep -q 'Stopped target'"

for vm in vm0 vm1; do
        rs_wait eval "[ \"\$(rs_unit_prop vmm@$vm.service SubState)\" = exited ]"
        check "$vm's VMM service came back after the kexec and exited 0" \
                test "$(rs_unit_prop vmm@$vm.service SubState)/$(rs_unit_prop vmm@$vm.service ExecMainStatus)" = exited/0
        check "$vm reclaimed its RAM and device (journal)" \
                rs_run sh -c "journalctl -b _SYSTEMD_UNIT=vmm@$vm.service -o cat | grep -q RESTORED"
done
restored() { case "$(rs_unit_prop lu-vfiod.service StatusText)" in "idle (incoming live update)"*", 0 connected") return 0 ;; esac; return 1; }
rs_wait restored
st=$(rs_unit_prop lu-vfiod.service StatusText); note "STATUS after the restore: $st"
check "systemctl status shows the restore's end (idle, the VMs came in with the update)" restored
check "lu-vfioctl status: this boot came in with a live update" \
        rs_run sh -c 'lu-vfioctl status | grep -q "came in with a live update"'

nb=$(rs_exec journalctl --list-boots --no-pager | tail -n +2 | wc -l)
check "journalctl --list-boots shows the two emulated boots ($nb)" test "$nb" = 2
nb=$(rs_exec journalctl --list-boots --no-pager | awk 'NR>1 {print $2}' | sort -u | wc -l)
check "each boot has its own boot_id" test "$nb" = 2
check "the current boot's boot_id is the emulated one, not the host's" \
        test "$(rs_run cat /proc/sys/kernel/random/boot_id)" != "$(cat /proc/sys/kernel/random/boot_id)"

# The catalog: every MESSAGE_ID the daemon logged this update has its text in --catalog output.
ids=$(rs_exec journalctl _SYSTEMD_UNIT=lu-vfiod.service SYSLOG_IDENTIFIER=lu-vfiod -o verbose --no-pager | sed -n 's/^ *MESSAGE_ID=//p' | sort -u)
check "the daemon logged catalogued MESSAGE_IDs ($(echo $ids | wc -w))" test -n "$ids"
missing=
for id in $ids; do
        rs_exec journalctl --list-catalog "$id" 2>/dev/null | grep -q "^$id lu-vfiod" || missing="$missing $id"
done
check "each has a lu-vfiod catalog entry${missing:+ (missing:$missing)}" test -z "$missing"
check "journalctl -u lu-vfiod --catalog shows the catalog text" \
        rs_exec sh -c 'journalctl -b -1 -u lu-vfiod --catalog --no-pager | grep -q "Defined-By: lu-vfiod"'

rs_poweroff
check "the machine powers off cleanly (luo-emu exit 0)" test $? = 0
echo "1..$n"
exit $fail
