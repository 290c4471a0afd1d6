#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# lu-vfioctl metrics against one emulated host (fleet-host.sh under luo-emu) through a live update:
#   test-metrics.sh LUO_EMU LU_VFIOD EXAMPLE_VMM POLICY LU_VFIOCTL   ($FLEET_DIR: work dir)
# The figures are checked against the state, and the text against Prometheus' own checker
# (promtool check metrics, from Debian's prometheus package; run.sh extracts it into
# /var/cache/lu-vfiod-test): those checks are skipped, and say so, without it.
set -uo pipefail
luo_emu=$1 daemon=$2 vmm=$3 policy=$4 ctl=$5
dir=${FLEET_DIR:?}
. "$(dirname "$0")/../ops/dbus-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

promtool=${PROMTOOL:-$(command -v promtool || ls /var/cache/lu-vfiod-test/promtool-*/promtool 2>/dev/null | tail -1)}
rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
trap fleet_stop EXIT
fleet_start 1
h=host01

promcheck() {
        if [ -z "$promtool" ]; then
                n=$((n + 1)); echo "ok $n - promtool check metrics ($1) # SKIP no promtool (Debian: prometheus)"
                return
        fi
        local msg; msg=$("$promtool" check metrics <<<"$out" 2>&1)
        check "promtool check metrics ($1)" test $? = 0
        [ -z "$msg" ] || note "$msg"
}

out=$(hctl $h metrics); st=$?
check "metrics: exit 0" test $st = 0
promcheck "idle"
check "up, idle, upstream ABI" bash -c 'grep -qx "lu_vfiod_up 1" <<<"$0" && grep -qx "lu_vfiod_state{state=\"idle\"} 1" <<<"$0" &&
        grep -qx "lu_vfiod_state{state=\"prepared\"} 0" <<<"$0" && grep -qx "lu_vfiod_info{abi=\"upstream\"} 1" <<<"$0"' "$out"
check "2 VMs, both connected, 2 items each" bash -c 'grep -qx "lu_vfiod_vms 2" <<<"$0" && grep -qx "lu_vfiod_vms_connected 2" <<<"$0" &&
        grep -qx "lu_vfiod_vm_items{vm=\"vm0\"} 2" <<<"$0" && grep -qx "lu_vfiod_vm_connected{vm=\"vm1\"} 1" <<<"$0"' "$out"
check "items by kind and state: 2 memfds, 2 VFIO devices preserved" \
        bash -c 'grep -qx "lu_vfiod_items{kind=\"memfd\",state=\"preserved\"} 2" <<<"$0" && grep -qx "lu_vfiod_items{kind=\"vfio\",state=\"preserved\"} 2" <<<"$0"' "$out"
check "no update yet: no timeline figures" bash -c '! grep -q "^lu_vfiod_last_update" <<<"$0"' "$out"

hctl $h prepare "$fdir/vmlinuz-next" >/dev/null
out=$(hctl $h metrics)
check "after prepare: state prepared, update 1" \
        bash -c 'grep -qx "lu_vfiod_state{state=\"prepared\"} 1" <<<"$0" && grep -qx "lu_vfiod_update_id 1" <<<"$0"' "$out"
hctl $h cancel >/dev/null
out=$(hctl $h metrics)
promcheck "after a cancel"
check "after cancel: last update 1 cancelled" bash -c 'grep -qx "lu_vfiod_last_update_result{result=\"cancelled\"} 1" <<<"$0" && grep -qx "lu_vfiod_last_update_id 1" <<<"$0"' "$out"

hctl $h prepare "$fdir/vmlinuz-next" >/dev/null
hctl $h commit >/dev/null 2>&1
for _ in $(seq 100); do hjson $h 'd["boot_incoming"] and d["state"]=="idle"' status 2>/dev/null && break; sleep 0.1; done
out=$(hctl $h metrics); note "$out"
promcheck "after the live update"
check "boot came in with the update, last update 2 done" bash -c 'grep -qx "lu_vfiod_boot_incoming 1" <<<"$0" &&
        grep -qx "lu_vfiod_last_update_id 2" <<<"$0" && grep -qx "lu_vfiod_last_update_result{result=\"done\"} 1" <<<"$0"' "$out"
check "both VMs restored" bash -c 'grep -qx "lu_vfiod_vm_restored{vm=\"vm0\"} 1" <<<"$0" && grep -qx "lu_vfiod_vm_restored{vm=\"vm1\"} 1" <<<"$0"' "$out"
# the figures are the timeline's, in seconds
check "phase durations and per-VM blackout equal the timeline's" python3 -c '
import json, re, sys
m = dict(re.findall(r"^(lu_vfiod_last_update_\S+) (\S+)$", sys.argv[1], re.M))
t = json.loads(sys.argv[2])
ok = all(abs(float(m["lu_vfiod_last_update_duration_seconds{phase=\"%s\"}" % p]) - t[p + "_ms"] / 1000) < 1e-6
         for p in ("prepare", "freeze", "reboot_to_start", "retrieve", "restore", "total"))
for vm, v in t["vms"].items():
    b = float(m["lu_vfiod_last_update_vm_seconds{vm=\"%s\",phase=\"blackout\"}" % vm])
    ok = ok and abs(b - (v["t_restored_us"] - v["t_freeze_ack_us"]) / 1e6) < 1e-6 and b > 0
    ok = ok and abs(float(m["lu_vfiod_last_update_vm_seconds{vm=\"%s\",phase=\"restored\"}" % vm]) - v["restored_ms"] / 1000) < 1e-6
sys.exit(0 if ok else 1)' "$out" "$(hctl $h --json last-update)"

hctl $h --json metrics >/dev/null 2>&1
check "--json metrics: usage error (exit 2)" test $? = 2
fleet_stop
out=$(hctl $h metrics 2>/dev/null); st=$?
check "daemon gone: exit 9 and lu_vfiod_up 0" bash -c '[ "$1" = 9 ] && grep -qx "lu_vfiod_up 0" <<<"$0"' "$out" $st
promcheck "daemon gone"
echo "1..$n"
exit $fail
