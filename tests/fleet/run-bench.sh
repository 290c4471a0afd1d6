#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Time of one rolling live update of the simulated fleet end to end, and the orchestration's
# share of it (docs/performance.md):  sudo tests/fleet/run-bench.sh BUILD_DIR [RUNS] [HOSTS] [SERIAL]
# Each run starts a fresh fleet of HOSTS (default 8) emulated hosts and rolls it SERIAL (default
# 2) at a time with the sample playbook. "hosts' own" is, per batch, the slower host's prepare plus
# its commit -> every VM restored (from the daemon's timeline); the rest of the wall time is
# Ansible's (the tasks around them, module start-up, the waits between batches).
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(readlink -f "${1:?usage: run-bench.sh BUILD_DIR [RUNS] [HOSTS] [SERIAL]}") runs=${2:-3} count=${3:-8} serial=${4:-2}
luo_emu=$build/tests/emu/luo-emu daemon=$build/daemon/lu-vfiod vmm=$build/tests/e2e/example-vmm
policy=$src/systemd/org.luvfiod.LiveUpdate1.conf ctl=$build/tools/lu-vfioctl collections=$src/contrib/ansible
dir=$(mktemp -d /var/tmp/lu-vfiod-fleet-bench.XXXXXX)
. "$src/tests/ops/dbus-lib.sh"
. "$src/tests/fleet/fleet-lib.sh"
command -v ansible-playbook >/dev/null || { echo "run-bench.sh: ansible-playbook not installed" >&2; exit 1; }
trap 'fleet_stop; rm -rf "$dir"' EXIT

echo "run wall_s hosts_own_s orchestration_s per_host_s"
for r in $(seq "$runs"); do
        fleet_start "$count" >/dev/null
        play rollout -e lu_serial="$serial" >/dev/null
        [ "$play_rc" = 0 ] || { echo "run $r: the play failed (exit $play_rc), see:"; tail -30 "$play_out"; exit 1; }
        own=$(for h in "${hosts[@]}"; do hctl "$h" --json last-update; done | python3 -c "
import json, sys
t = [(lambda d: d['prepare_ms'] + (d['t_end_us'] - d['t_commit_us']) / 1000)(json.loads(l)) for l in sys.stdin]
print(round(sum(max(t[i:i + $serial]) for i in range(0, len(t), $serial)) / 1000, 2))")
        python3 -c "w, o = $play_s, $own; print($r, w, o, round(w - o, 1), round(w / $count, 2))"
        fleet_stop
done
