#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon dies and the real systemd 252 brings it back with every fd from its REAL fd store
# (FileDescriptorStoreMax=; 252 has no `systemd-analyze fdstore`, so the outcome is checked:
# the journal's "recovered from the fd store with N item(s)", the VMs' items, and a live update
# that restores them all afterwards):
#  - the watchdog: the daemon SIGSTOPped, systemd's WatchdogSec= kills and restarts it;
#  - a package upgrade (apt-get install --reinstall of the .deb) while VMs are preserved;
#  - SIGKILL after the kexec, mid-restore (devices bind 15 s late: luo-emu --bind-delay);
#  - SIGKILL mid-prepare (a VMM that never acknowledges prepare).
# A test drop-in shortens WatchdogSec= and TimeoutAbortSec= (30 s in the shipped unit).
#   test-restart.sh LUO_EMU BUILD_ROOT EXAMPLE_VMM ABI     (env RS_DIR)
set -u
LUO_EMU=$1 BUILD_ROOT=$2 RS_VMM=$3 abi=$4
. "$(dirname "$0")/machine.sh"
mkdir -p "$RS_DIR"
rs_setup
mkdir -p "$RS_DIR/root/etc/systemd/system/lu-vfiod.service.d"
printf '[Service]\nWatchdogSec=3s\nTimeoutAbortSec=2s\n' >"$RS_DIR/root/etc/systemd/system/lu-vfiod.service.d/test-watchdog.conf"
printf '[Service]\nEnvironment=VMM_OPTS=--no-ack\n' >"$RS_DIR/root/etc/systemd/system/vmm@vm2.service.d/no-ack.conf"
[ -n "${RS_DEB:-}" ] && cp "$RS_DEB" "$RS_DIR/root/var/cache/"
rs_boot --abi="$abi" --vfio=3 --bind-delay=15000
rs_wait_up 90 || bail "the machine's systemd did not finish booting"
rs_exec systemctl enable --now vmm@vm0.service vmm@vm1.service >/dev/null 2>&1
rs_wait rs_exec test -e /run/vmm-vm0.ready -a -e /run/vmm-vm1.ready || bail "the VMM services did not hand over"

pid() { rs_unit_prop lu-vfiod.service MainPID; }
restarts() { rs_unit_prop lu-vfiod.service NRestarts; }
# items VM: the VM's preserved items as lu-vfioctl show lists them (label state)
items() { rs_run lu-vfioctl show "$1" | awk 'NR>1 {print $1, $4}' | sort | tr '\n' ' '; }
recovered() { rs_run journalctl -b -u lu-vfiod -o cat | grep -c "recovered from the fd store with"; }
before0=$(items vm0) before1=$(items vm1)
note "vm0: $before0/ vm1: $before1"
check "both VMs have RAM and device preserved" test -n "$before0" -a -n "$before1"

# --- watchdog
p0=$(pid) r0=$(restarts) n0=$(recovered)
rs_exec kill -STOP "$p0"
new_pid() { local p; p=$(pid); [ "$p" != 0 ] && [ "$p" != "$p0" ] && [ "$(rs_unit_prop lu-vfiod.service ActiveState)" = active ]; }
rs_wait new_pid
check "the watchdog caught the SIGSTOPped daemon and systemd restarted it (pid $p0 -> $(pid), restarts $r0 -> $(restarts))" new_pid
check "the journal names the watchdog" rs_exec sh -c "journalctl -u lu-vfiod -o cat | grep -q -i 'watchdog timeout'"
check "the new daemon recovered its fds from the fd store" test "$(recovered)" -gt "$n0"
check "vm0 and vm1 hold the same items" test "$(items vm0)/$(items vm1)" = "$before0/$before1"

# --- package upgrade: the .deb installed again while VMs are preserved
if [ -n "${RS_DEB:-}" ]; then
        p0=$(pid) n0=$(recovered)
        rs_exec sh -c "cd /var/cache && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall ./$(basename "$RS_DEB")" \
                >"$RS_DIR/upgrade.log" 2>&1
        check "apt-get install --reinstall of $(basename "$RS_DEB") succeeded" test $? = 0
        rs_wait new_pid
        check "the upgrade restarted the daemon (pid $p0 -> $(pid))" new_pid
        check "... which recovered its fds from the fd store" test "$(recovered)" -gt "$n0"
        check "the upgrade lost nothing: vm0 and vm1 hold the same items" test "$(items vm0)/$(items vm1)" = "$before0/$before1"
        check "the socket was not restarted by the upgrade" \
                test "$(rs_unit_prop lu-vfiod.socket ActiveState)" = active
else
        ok "# SKIP package upgrade: no .deb (LU_VFIOD_DEB_DIR)"
fi

# --- SIGKILL mid-restore, after the kexec
rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1
check "prepared" test "$(rs_prop State)" = prepared
rs_run lu-vfioctl commit >/dev/null 2>&1 &
rs_wait_boot 1 90 || bail "no kexec"
ok "kexec'd into boot 1 (devices bind only 15 s after boot)"
restoring() { case "$(rs_unit_prop lu-vfiod.service StatusText)" in restoring*) return 0 ;; esac; return 1; }
rs_wait restoring
st=$(rs_unit_prop lu-vfiod.service StatusText)
note "STATUS before the kill: $st"
p0=$(pid)
rs_exec kill -KILL "$p0"
check "killed while restoring (STATUS: $st)" test "${st%% *}" = restoring
rs_wait new_pid
check "systemd restarted the SIGKILLed daemon (pid $p0 -> $(pid))" new_pid
check "... which recovered the incoming sessions from the fd store" test "$(recovered)" -ge 1
for vm in vm0 vm1; do
        rs_wait eval "[ \"\$(rs_unit_prop vmm@$vm.service SubState)\" = exited ]"
        check "$vm's VMM (restarted by systemd if its connection broke) reclaimed everything (exit $(rs_unit_prop vmm@$vm.service ExecMainStatus))" \
                test "$(rs_unit_prop vmm@$vm.service SubState)/$(rs_unit_prop vmm@$vm.service ExecMainStatus)" = exited/0
done

# --- SIGKILL mid-prepare: vm2's VMM never acknowledges prepare
rs_exec systemctl start vmm@vm2.service
rs_wait rs_exec test -e /run/vmm-vm2.ready || bail "vm2's VMM did not hand over"
before2=$(items vm2)
rs_run lu-vfioctl prepare --timeout=60 /boot/vmlinuz-next >/dev/null 2>&1 &
rs_wait eval '[ "$(rs_prop State)" = preparing ]'
check "prepare waits for vm2" test "$(rs_prop State)" = preparing
p0=$(pid)
rs_exec kill -KILL "$p0"
rs_wait new_pid
check "systemd restarted the daemon SIGKILLed mid-prepare (pid $p0 -> $(pid))" new_pid
st=$(rs_prop State)
check "the interrupted update is not left half-prepared (state $st)" test "$st" = idle
check "vm2 still holds its items ($before2)" test "$(items vm2)" = "$before2"

rs_poweroff
echo "1..$n"
exit $fail
