#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A VMM veto in a rolling live update of a simulated fleet of 8 hosts (docs/fleet.md):
#   test-fleet-veto.sh LUO_EMU LU_VFIOD EXAMPLE_VMM POLICY LU_VFIOCTL COLLECTIONS_DIR   ($FLEET_DIR: work dir)
# vm1 of host03 refuses the freeze, vm1 of host06 refuses to prepare. With max_fail_percentage 0
# the rollout stops in the second batch: host03 fails naming the VM and its reason, its update is
# abandoned and its VMs keep running on the old boot, no cold reboot (the fallback is off by
# default), and the later batches are not touched. With 50 the rollout goes on past host03, and
# in the third batch host06's refusal cancels host05's prepared update too (a batch goes together),
# 2 of 2 failed: the rollout stops there. Without the batch cancel, host05, 07 and 08 are updated;
# host09, alone in the last batch, kexecs but the VMM of its vm1 never comes back: the wait ends
# at its deadline naming vm1, and the host fails.
set -uo pipefail
luo_emu=$1 daemon=$2 vmm=$3 policy=$4 ctl=$5 collections=$6
dir=${FLEET_DIR:?}
. "$(dirname "$0")/../ops/dbus-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

command -v ansible-playbook >/dev/null || { echo "1..0 # SKIP ansible-playbook not installed (Debian: ansible-core)"; exit 0; }
rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
trap fleet_stop EXIT
fleet_start 9 host03:freeze host06:prepare host09:lost
ok "9 emulated hosts up; vm1 of host03 will refuse the freeze, vm1 of host06 to prepare, vm1 of host09 not come back"

# host03 is on the old boot with both VMs running and its update abandoned, naming vm1
host03_kept() {
        host_is host03 0 'd["state"]=="idle" and d["connected"]==2 and not d["boot_incoming"]' &&
                hjson host03 'd["result"]=="failed" and "VM vm1 refused freeze" in d["message"]' last-update &&
                hjson host03 'all(x["state"]=="preserved" for x in d["devices"])' show vm1
}

host05_cancelled() {
        host_is host05 0 'd["state"]=="idle" and d["connected"]==2' && hjson host05 'd["result"]=="cancelled"' last-update
}
failed_kept() { test "$(recap "$1" failed)" = 1 && host_is "$1" 0 'd["state"]=="idle" and d["connected"]==2'; }

play stop -e lu_serial=2 -e lu_max_fail_percentage=0
check "max_fail_percentage 0: the play fails (exit 2)" test "$play_rc" = 2
check "the failure names the host, the VM and its reason" \
        grep -q "fatal: \[host03\]: FAILED.*VM vm1 refused the freeze: vetoed by test" "$play_out"
check "only the first two batches ran" test "$(batches)" = "host01,host02 host03,host04"
check "host03 failed in the recap" test "$(recap host03 failed)" = 1
check "host03: update abandoned, VMs resumed on the old boot, items still preserved" host03_kept
check "host03: no cold reboot (the fallback is off by default)" \
        bash -c '! grep -q "Cold reboot with" "$0" || grep -A1 "Cold reboot with" "$0" | grep -q "skipping: \[host03\]"' "$play_out"
for h in host01 host02; do
        check "$h (first batch) updated" host_is "$h" 1 'd["state"]=="idle" and d["boot_incoming"] and d["update_id"]==1'
done
# host04 committed in the same task as host03: its kexec ran, and Ansible then stopped the play
check "host04 (host03's batch, committed in parallel) came back updated" \
        host_is host04 1 'd["state"]=="idle" and d["boot_incoming"] and d["update_id"]==1'
for h in host05 host06 host07 host08 host09; do
        check "$h (later batch) untouched" host_is "$h" 0 'd["state"]=="idle" and d["update_id"]==0 and d["connected"]==2'
done

play go-on -e lu_serial=2 -e lu_max_fail_percentage=50
check "max_fail_percentage 50: the play fails (exit 2)" test "$play_rc" = 2
check "three batches ran" test "$(batches)" = "host01,host02 host03,host04 host05,host06"
check "host03 failed again, the same way" \
        grep -q "fatal: \[host03\]: FAILED.*VM vm1 refused the freeze: vetoed by test" "$play_out"
check "host03 kept its VMs again" host03_kept
for h in host01 host02 host04; do
        check "$h already at the target: changed=0 failed=0" test "$(recap "$h" changed)/$(recap "$h" failed)" = 0/0
done
check "host06 failed prepare naming the VM and its reason" \
        grep -q "fatal: \[host06\]: FAILED.*VM vm1 refused prepare: vetoed by test" "$play_out"
check "host05 cancelled with its batch, naming host06" \
        grep -q "fatal: \[host05\]: FAILED.*cancelled: host06 of this batch failed pre-flight or prepare" "$play_out"
check "host05: its prepared update was cancelled, VMs running on the old boot" host05_cancelled
check "host06: idle on the old boot, both VMMs connected" host_is host06 0 'd["state"]=="idle" and d["connected"]==2'
for h in host07 host08 host09; do
        check "$h (after the stop) untouched" host_is "$h" 0 'd["state"]=="idle" and d["update_id"]==0'
done

play no-batch-cancel -e lu_serial=2 -e lu_max_fail_percentage=50 -e live_update_cancel_batch_on_failure=false \
        -e live_update_wait_timeout=10
check "without the batch cancel: exit 2 (host03, host06 failed)" test "$play_rc" = 2
check "all five batches ran" test "$(batches)" = "host01,host02 host03,host04 host05,host06 host07,host08 host09"
check "host09: the wait ended at its deadline naming vm1" \
        grep -q "fatal: \[host09\]: FAILED.*restore not complete within 10 s (state restoring): VMs not restored: vm1" "$play_out"
check "host09: in the new boot, vm0 restored, vm1 still incoming" bash -c '
        [ "$(cat "$0/boot")" = 1 ] && grep -qx "lu_vfiod_vm_restored{vm=\"vm0\"} 1" <<<"$1" &&
        grep -qx "lu_vfiod_vm_incoming{vm=\"vm1\"} 1" <<<"$1" && grep -qx "lu_vfiod_state{state=\"restoring\"} 1" <<<"$1"' \
        "$fdir/host09" "$(hctl host09 metrics)"
for h in host05 host07 host08; do
        check "$h updated" host_is "$h" 1 'd["state"]=="idle" and d["boot_incoming"] and d["update_id"]>=1'
        check "$h: both VMs restored" hjson "$h" 'd["result"]=="done" and len(d["vms"])==2 and all("t_restored_us" in v for v in d["vms"].values())' last-update
done
for h in host03 host06; do
        check "$h failed, on the old boot with its VMs" failed_kept "$h"
done
# The opt-in fallback, on host03 alone: its live update fails as before, then the host is
# cold-rebooted (here by fleet-coldboot.sh, a stand-in for ansible.builtin.reboot that boots a new
# emulated machine) and the play counts it rescued, not failed.
cold="[\"$(readlink -f "$(dirname "$0")/fleet-coldboot.sh")\", \"$fdir/host03\", \"$luo_emu\", \"$daemon\", \"$vmm\", \"$policy\"]"
play cold-reboot --limit host03 -e live_update_cold_reboot_fallback=true -e "{\"live_update_cold_reboot_command\": $cold}"
check "cold-reboot fallback: exit 0" test "$play_rc" = 0
check "cold-reboot fallback: the live update failed first, naming the VM" \
        grep -q "fatal: \[host03\]: FAILED.*VM vm1 refused the freeze: vetoed by test" "$play_out"
check "cold-reboot fallback: host03 rescued, not failed" test "$(recap host03 rescued)/$(recap host03 failed)" = 1/0
check "cold-reboot fallback: host03 was cold-booted once" test "$(wc -l < "$fdir/host03/coldboots")" = 1
check "cold-reboot fallback: a fresh boot (not a live update), both VMs started afresh" \
        host_is host03 0 'd["state"]=="idle" and not d["boot_incoming"] and d["connected"]==2'
fleet_stop
echo "1..$n"
exit $fail
