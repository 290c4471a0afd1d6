#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `lu-vfioctl finish VM` for a VM whose VMM does not come back (luo-emu's COMMAND):
#   test-lu-vfioctl-finish.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE LU_VFIOCTL    ($OPS_DIR)
# Boot 0: three VMs (vm0 with RAM and a VFIO device, vm1 and vm2 with RAM), prepare and
# commit with lu-vfioctl. Boot 1: only vm0's VMM returns and restores; the operator
# releases vm1 by name, then every VM still waiting (vm2). Released VMs must show as
# released, not restored, and the update as partial, naming them.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 ctl=$4
dir=${OPS_DIR:?} boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/dbus-lib.sh"

jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }

if [ "$boot" = 0 ]; then
        rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
        printf '[Update]\nPrepareTimeoutSec=10\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=600\n' > "$dir/lu-vfiod.conf"
        kernel_image "$dir/vmlinuz-next"
fi
bus_start "$dir" "$policy"
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon-$boot.log" &
daemon_pid=$!
wait_name || bail "lu-vfiod did not take $DEST"

if [ "$boot" = 0 ]; then
        start_vmm vm0
        for vm in vm1 vm2; do
                rm -f "$dir/$vm.ready"
                "$vmm" --socket="$dir/vmm.sock" --vm=$vm --ready-file="$dir/$vm.ready" --state-file="$dir/$vm.state" \
                        >>"$dir/vmm-$vm-$boot.log" 2>&1 &
        done
        check "the three VMMs handed everything over" bash -c 'for _ in $(seq 200); do [ -e "$0/vm0.ready" ] && [ -e "$0/vm1.ready" ] && [ -e "$0/vm2.ready" ] && exit 0; sleep 0.05; done; exit 1' "$dir"
        "$ctl" prepare "$dir/vmlinuz-next" >"$dir/prepare.out" 2>&1
        check "prepare: exit 0" test $? = 0
        echo "$fail" > "$dir/boot0.fail"
        echo "$n" > "$dir/boot0.n"
        "$ctl" commit > "$dir/commit.out" 2>&1
        bad "commit returned instead of rebooting: $(cat "$dir/commit.out")"
        echo "1..$n"
        exit 1
fi

n=$(cat "$dir/boot0.n" 2>/dev/null || echo 0)
fail=$(cat "$dir/boot0.fail" 2>/dev/null || echo 1)
check "boot 0 ended in the kexec" test -e "$dir/boot0.n"
start_vmm vm0
wait "$last_vmm"; st=$?
check "vm0's VMM reclaimed and restored (exit $st)" test "$st" = 0
out=$("$ctl" list); note "$out"
check "list: vm0 restored, vm1 still waiting" bash -c 'grep -qE "^vm0 +0 +no +yes +yes +[0-9]+$" <<<"$0" && grep -qE "^vm1 +0 +no +yes +no +1$" <<<"$0"' "$out"
check "state: restoring" test "$(prop State)" = restoring

out=$("$ctl" finish vm1); st=$?; note "$out"
check "finish vm1: exit 0, one VM released" bash -c 'test "$0" = 0 && grep -q "^Released 1 VM(s)" <<<"$1"' "$st" "$out"
check "vm2 still waiting: restoring" test "$(prop State)" = restoring
out=$("$ctl" finish); st=$?; note "$out"
check "finish (every waiting VM): exit 0, releases vm2 only" bash -c 'test "$0" = 0 && grep -q "^Released 1 VM(s)" <<<"$1"' "$st" "$out"
check "the update ends: idle" wait_prop State idle
out=$("$ctl" list); note "$out"
check "list: vm1 and vm2 show as released, not restored" bash -c 'grep -qE "^vm1 +0 +no +no +released +0$" <<<"$0" && grep -qE "^vm2 +0 +no +no +released +0$" <<<"$0"' "$out"
check "list: vm0 still restored" grep -qE "^vm0 +0 +no +no +yes +[0-9]+$" <<<"$out"
out=$("$ctl" --json list)
check "list --json: vm1 released and not restored, vm0 restored and not released" jq_py \
        'd["schema"]==1 and {v["id"]: (v["restored"], v["released"]) for v in d["vms"]} == {"vm0": (True, False), "vm1": (False, True), "vm2": (False, True)}' <<<"$out"
out=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.ListVMs")
check "ListVMs: vm1 not restored ($out)" grep -qE "\('vm1', (uint32 )?0, false, false, false, (uint32 )?[0-9]+\)" <<<"$out"
out=$("$ctl" last-update); note "$out"
check "last-update: result partial, not done" grep -q "^Result: *partial$" <<<"$out"
# in registry order, which is the order the VMMs first said hello in boot 0 (they start together)
check "last-update: names vm1 and vm2 as released" grep -qE "^Released: *(vm1, vm2|vm2, vm1) " <<<"$out"
check "last-update: per-VM table says vm1 released" grep -qE "^vm1 +[-0-9.]+ +released$" <<<"$out"
out=$("$ctl" --json last-update)
check "last-update --json: result partial, released [vm1, vm2]" jq_py 'd["result"]=="partial" and sorted(d["released"])==["vm1","vm2"] and "restored_ms" in d["vms"]["vm0"]' <<<"$out"
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
