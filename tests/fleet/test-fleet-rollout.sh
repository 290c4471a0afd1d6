#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A clean rolling live update of a simulated fleet of 8 hosts, 2 at a time, with the Ansible
# collection of contrib/ansible (docs/fleet.md):
#   test-fleet-rollout.sh LUO_EMU LU_VFIOD EXAMPLE_VMM POLICY LU_VFIOCTL COLLECTIONS_DIR   ($FLEET_DIR: work dir)
# check mode changes nothing; the rollout moves every host to the new kernel in 4 batches with
# every VM restored and the gates passed; running it again changes nothing.
set -uo pipefail
luo_emu=$1 daemon=$2 vmm=$3 policy=$4 ctl=$5 collections=$6
dir=${FLEET_DIR:?}
. "$(dirname "$0")/../ops/dbus-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

command -v ansible-playbook >/dev/null || { echo "1..0 # SKIP ansible-playbook not installed (Debian: ansible-core)"; exit 0; }
rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
trap fleet_stop EXIT
fleet_start 8
ok "8 emulated hosts up, each with its own bus, lu-vfiod and 2 VMMs"

# Bad input to the modules: a failed task whose msg names what was wrong, and nothing changes.
bus="bus_address=unix:path=$fdir/host01/bus.sock lu_vfioctl=$ctl"
out=$(adhoc host01 lu_vfiod_update "state=committed $bus")
check "update without kernel: 'missing required arguments: kernel'" grep -q "FAILED.*state is committed but all of the following are missing: kernel" <<<"$out"
out=$(adhoc host01 lu_vfiod_update "state=prepared kernel=$fdir/nosuchkernel $bus")
check "update with a missing kernel file names it" grep -q "FAILED.*kernel $fdir/nosuchkernel: no such file on this host" <<<"$out"
out=$(adhoc host01 lu_vfiod_update "state=committed kernel=$fdir/vmlinuz-next wait_timeout=0 $bus")
check "wait_timeout=0 refused" grep -q "FAILED.*wait_timeout must be a number of seconds in (0, 604800], not 0" <<<"$out"
out=$(adhoc host01 lu_vfiod_info "bus_address=unix:path=$fdir/nosuchbus lu_vfioctl=$ctl")
check "info on an unreachable bus: failed, saying so" grep -q "FAILED.*lu-vfiod on this host: status: .*No such file or directory" <<<"$out"
out=$(adhoc host01 lu_vfiod_update "state=bogus $bus")
check "unknown state: the choices are listed" grep -q "FAILED.*value of state must be one of: prepared, committed, cancelled" <<<"$out"
out=$(adhoc host01 lu_vfiod_info "kernel=$fdir/vmlinuz-next $bus")
check "info: facts of host01 (idle, upstream, 2 VMs with 2 preserved items, ready, not at target)" python3 -c '
import json, sys
d = json.loads(sys.argv[1].split(" => ", 1)[1])["lu_vfiod"]
ok = (d["status"]["state"] == "idle" and d["status"]["abi"] == "upstream" and len(d["vms"]) == 2
      and all(len(v["devices"]) == 2 and all(x["state"] == "preserved" for x in v["devices"]) for v in d["vms"])
      and d["readiness"] == {"ready": True, "problems": []} and d["at_target"] is False)
sys.exit(0 if ok else 1)' "$out"
check "bad input changed nothing on host01" host_is host01 0 'd["state"]=="idle" and d["update_id"]==0'

play check --check
check "check mode: exit 0" test "$play_rc" = 0
check "check mode: every host would change" test "$(for h in "${hosts[@]}"; do recap "$h" changed; done | grep -c '^[1-9]')" = 8
for h in "${hosts[@]}"; do
        check "check mode: $h still in boot 0, idle, no update" \
                host_is "$h" 0 'd["state"]=="idle" and d["update_id"]==0 and d["connected"]==2'
done

play rollout -e lu_serial=2
rollout_s=$play_s
check "rollout: exit 0" test "$play_rc" = 0
check "rollout: 4 batches of 2" test "$(grep -c '^PLAY \[Live-update' "$play_out")" = 4
check "rollout: batches host01+02, 03+04, 05+06, 07+08" test "$(batches)" = "host01,host02 host03,host04 host05,host06 host07,host08"
for h in "${hosts[@]}"; do
        check "rollout: $h recap ok, not failed" test "$(recap "$h" failed)" = 0
        check "rollout: $h came back in boot 1 by a live update, idle" \
                host_is "$h" 1 'd["state"]=="idle" and d["boot_incoming"] and d["update_id"]==1'
        check "rollout: $h last update done, both VMs restored" \
                hjson "$h" 'd["result"]=="done" and all("t_restored_us" in d["vms"][v] for v in ("vm0","vm1"))' last-update
done
# the hosts' own share: per host its prepare plus commit -> every VM restored (the time between
# the two is the play's); per batch the slower host, batches run one after another
own=$(for h in "${hosts[@]}"; do hctl "$h" --json last-update; done | python3 -c "
import json, sys
t = [(lambda d: d['prepare_ms'] + (d['t_end_us'] - d['t_commit_us']) / 1000)(json.loads(l)) for l in sys.stdin]
print(round(sum(max(t[i:i + 2]) for i in range(0, len(t), 2)) / 1000, 2))")
note "rollout of 8 hosts, 2 at a time: ${rollout_s} s wall, hosts' own update time ${own} s (per batch the slower host), orchestration $(python3 -c "print(round($rollout_s - $own, 1))") s"
echo "rollout_s=$rollout_s own_s=$own" > "$dir/measure.txt"

play again -e lu_serial=2
check "again: exit 0" test "$play_rc" = 0
for h in "${hosts[@]}"; do
        check "again: $h changed=0 failed=0" test "$(recap "$h" changed)/$(recap "$h" failed)" = 0/0
done
check "again: no host booted again" test "$(cat "$fdir"/host0*/boot | sort -u)" = 1
fleet_stop
echo "1..$n"
exit $fail
