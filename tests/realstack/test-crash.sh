#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon SIGKILLed at one phase of a live update under the real systemd 252, which
# restarts it with every fd from its real fd store (docs/reliability.md §5, "Daemon crashes at
# every phase"; the same phases as the crash-* matrix):
#   idle            boot 0, every VM handed over, no update
#   preparing       boot 0, prepare waits for vm1's acknowledgement (its VMM runs --no-ack)
#   prepared        boot 0, after the prepare reply
#   freezing        boot 0, commit waits for vm1's freeze acknowledgement (--no-ack-freeze)
#   restoring       boot 1, restore started, no VMM came back yet (vm1 and vm2 not started)
#   restoring-some  boot 1, vm0 reclaimed and restored, vm1 and vm2 not started yet
#   restored        boot 1, right after the last VM was restored
# Then: systemd restarted it (a new MainPID, the journal's "recovered from the fd store"), an
# interrupted update is abandoned (the VMMs are told to resume, no kernel stays loaded), every
# VM holds the same items; in boot 0 an update then runs through the kexec, and in the next boot
# every VMM service reclaims its RAM and device, compares the RAM byte for byte (the example
# VMM's pattern) and exits 0, and the update is recorded done.
#   test-crash.sh LUO_EMU BUILD_ROOT EXAMPLE_VMM ABI PHASE     (env RS_DIR)
set -u
LUO_EMU=$1 BUILD_ROOT=$2 RS_VMM=$3 abi=$4 phase=$5
. "$(dirname "$0")/machine.sh"
case "$phase" in idle|preparing|prepared|freezing) boot=0 ;; restoring|restoring-some|restored) boot=1 ;;
        *) echo "test-crash.sh: unknown phase $phase" >&2; exit 2 ;; esac
mkdir -p "$RS_DIR"
rs_setup
# Long deadlines: the restart must not be rescued (or beaten) by a timeout.
mkdir -p "$RS_DIR/root$(dirname "$RS_CONF")"
printf '[Update]\nPrepareTimeoutSec=60\nFreezeTimeoutSec=60\n[Restore]\nBindTimeoutSec=5\nReclaimGraceSec=120\n' \
        >"$RS_DIR/root$RS_CONF"
case "$phase" in
preparing) printf '[Service]\nEnvironment=VMM_OPTS=--no-ack\n' >"$RS_DIR/root/etc/systemd/system/vmm@vm1.service.d/test.conf" ;;
freezing) printf '[Service]\nEnvironment=VMM_OPTS=--no-ack-freeze\n' >"$RS_DIR/root/etc/systemd/system/vmm@vm1.service.d/test.conf" ;;
esac
rs_boot --abi="$abi" --vfio=3
rs_wait_up 90 || bail "the machine's systemd did not finish booting"
rs_exec systemctl enable --now vmm@vm0.service vmm@vm1.service vmm@vm2.service >/dev/null 2>&1
rs_wait rs_exec test -e /run/vmm-vm0.ready -a -e /run/vmm-vm1.ready -a -e /run/vmm-vm2.ready ||
        bail "the VMM services did not hand over"

pid() { rs_unit_prop lu-vfiod.service MainPID; }
items() { rs_run lu-vfioctl show "$1" | awk 'NR>1 {print $1, $4}' | sort | tr '\n' ' '; }
recovered() { rs_run journalctl -b -u lu-vfiod -o cat | grep -c "recovered from the fd store with"; }
resumed() { rs_run journalctl -b -u "vmm@$1" -o cat | grep -c "^example-vmm\[$1\]: resume ("; }
declare -A before
for vm in vm0 vm1 vm2; do before[$vm]=$(items $vm); done
note "items: vm0: ${before[vm0]}/ vm1: ${before[vm1]}/ vm2: ${before[vm2]}"
check "every VM has its RAM and device preserved" test -n "${before[vm0]}" -a -n "${before[vm1]}" -a -n "${before[vm2]}"

# kill_and_wait WHEN: SIGKILL the daemon, wait until systemd has a new one running
kill_and_wait() {
        local p0 st n0
        p0=$(pid) n0=$(recovered) st=$(rs_unit_prop lu-vfiod.service StatusText)
        note "STATUS before the kill: $st"
        rs_exec kill -KILL "$p0"
        ok "SIGKILL the daemon $1 (pid $p0)"
        new_pid() { local p; p=$(pid); [ "$p" != 0 ] && [ "$p" != "$p0" ] &&
                [ "$(rs_unit_prop lu-vfiod.service ActiveState)" = active ]; }
        rs_wait new_pid
        check "systemd restarted it (pid $p0 -> $(pid), restarts $(rs_unit_prop lu-vfiod.service NRestarts))" new_pid
        if [ "$phase" = restored ]; then
                # nothing is held any more: the store keeps at most what the kill beat
                rs_wait eval '[ "$(rs_unit_prop lu-vfiod.service NFileDescriptorStore)" = 0 ]'
                check "... and its fd store ends up empty (NFileDescriptorStore=$(rs_unit_prop lu-vfiod.service NFileDescriptorStore))" \
                        test "$(rs_unit_prop lu-vfiod.service NFileDescriptorStore)" = 0
        else
                rs_wait eval '[ "$(recovered)" -gt '"$n0"' ]'
                check "... with every fd from the real fd store ($(rs_run journalctl -b -u lu-vfiod -o cat |
                        grep "recovered from the fd store" | tail -n1))" test "$(recovered)" -gt "$n0"
        fi
}

# boot1_reclaimed VM...: each VM's VMM service ran again after the kexec, reclaimed, compared and exited 0
boot1_reclaimed() {
        local vm
        for vm in "$@"; do
                rs_wait eval "[ \"\$(rs_unit_prop vmm@$vm.service SubState)\" = exited ]"
                check "$vm's VMM reclaimed its RAM (contents compared) and device, and exited 0 ($(rs_unit_prop vmm@$vm.service SubState)/$(rs_unit_prop vmm@$vm.service ExecMainStatus))" \
                        test "$(rs_unit_prop vmm@$vm.service SubState)/$(rs_unit_prop vmm@$vm.service ExecMainStatus)" = exited/0
        done
}
update_done() {
        rs_wait eval '[ "$(rs_prop State)" = idle ]'
        check "the daemon is idle again" test "$(rs_prop State)" = idle
        check "the update is recorded done (lu-vfioctl last-update)" rs_run sh -c 'lu-vfioctl last-update | grep -q "^Result: *done"'
}

if [ $boot = 0 ]; then
        case "$phase" in
        preparing)
                rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1 &
                rs_wait eval '[ "$(rs_prop State)" = preparing ]'
                check "prepare waits for vm1" test "$(rs_prop State)" = preparing ;;
        prepared|freezing)
                rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1
                check "prepared" test "$(rs_prop State)" = prepared
                if [ "$phase" = freezing ]; then
                        rs_run lu-vfioctl commit >/dev/null 2>&1 &
                        rs_wait eval '[ "$(rs_prop State)" = freezing ]'
                        check "commit waits for vm1's freeze acknowledgement" test "$(rs_prop State)" = freezing
                fi ;;
        esac
        kill_and_wait "($phase)"
        rs_wait eval '[ "$(rs_prop State)" = idle ]'
        check "the daemon is idle: nothing half-done (State $(rs_prop State))" test "$(rs_prop State)" = idle
        check "no kernel image left loaded" test "$(rs_run cat /sys/kernel/kexec_loaded)" = 0
        for vm in vm0 vm1 vm2; do
                rs_wait eval "[ \"\$(items $vm)\" = \"${before[$vm]}\" ]"
                check "$vm holds the same items ($(items $vm))" test "$(items $vm)" = "${before[$vm]}"
        done
        if [ "$phase" != idle ]; then
                for vm in vm0 vm2; do
                        rs_wait eval "[ \"\$(resumed $vm)\" -ge 1 ]"
                        check "$vm's VMM was told to resume (the update was abandoned)" test "$(resumed $vm)" -ge 1
                done
        fi
        if [ -e "$RS_DIR/root/etc/systemd/system/vmm@vm1.service.d/test.conf" ]; then
                # vm1's VMM acknowledges from now on (started again, it finds its items still held)
                rm -f "$RS_DIR/root/etc/systemd/system/vmm@vm1.service.d/test.conf"
                rs_exec systemctl daemon-reload
                rs_exec rm -f /run/vmm-vm1.ready
                rs_exec systemctl restart vmm@vm1.service
                rs_wait rs_exec test -e /run/vmm-vm1.ready || bail "vm1's VMM did not come back"
                check "vm1 still holds the same items after its VMM restarted" test "$(items vm1)" = "${before[vm1]}"
        fi
        rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1
        check "an update after the crash prepares" test "$(rs_prop State)" = prepared
        rs_run lu-vfioctl commit >/dev/null 2>&1 &
        rs_wait_boot 1 90 || bail "no kexec after the crash"
        ok "... and kexecs into boot 1"
        boot1_reclaimed vm0 vm1 vm2
        update_done
else
        # In boot 1, the VMM services that should come back late are not started at boot.
        case "$phase" in
        restoring) rs_exec systemctl disable -q vmm@vm0.service vmm@vm1.service vmm@vm2.service ;;
        restoring-some) rs_exec systemctl disable -q vmm@vm1.service vmm@vm2.service ;;
        esac
        rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1
        check "prepared" test "$(rs_prop State)" = prepared
        rs_run lu-vfioctl commit >/dev/null 2>&1 &
        rs_wait_boot 1 90 || bail "no kexec"
        ok "kexec'd into boot 1"
        case "$phase" in
        restoring)
                rs_wait eval '[ "$(rs_prop State)" = restoring ]'
                check "restoring, no VMM back yet" test "$(rs_prop State)" = restoring
                kill_and_wait "during the restore, before any VMM came back"
                check "still restoring" test "$(rs_prop State)" = restoring
                rs_exec systemctl start vmm@vm0.service vmm@vm1.service vmm@vm2.service
                boot1_reclaimed vm0 vm1 vm2 ;;
        restoring-some)
                boot1_reclaimed vm0
                check "restoring: vm1 and vm2 not back yet" test "$(rs_prop State)" = restoring
                kill_and_wait "during the restore, vm0 restored, vm1 and vm2 not back yet"
                check "still restoring" test "$(rs_prop State)" = restoring
                rs_exec systemctl start vmm@vm1.service vmm@vm2.service
                boot1_reclaimed vm1 vm2
                check "vm0's VMM was not started again (it had restored before the crash; restarts $(rs_unit_prop vmm@vm0.service NRestarts))" \
                        test "$(rs_unit_prop vmm@vm0.service NRestarts)" = 0 ;;
        restored)
                boot1_reclaimed vm0 vm1 vm2
                rs_wait eval '[ "$(rs_prop State)" = idle ]'
                kill_and_wait "right after the last VM was restored" ;;
        esac
        update_done
        list=$(rs_run lu-vfioctl list 2>&1)
        note "lu-vfioctl list: $(tr '\n' '|' <<<"$list")"
        check "no VM is left incoming (nothing offered twice)" bash -c '! grep -q incoming <<<"$0"' "$list"
fi

rs_poweroff
echo "1..$n"
exit $fail
