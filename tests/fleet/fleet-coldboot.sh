#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Stand-in for a cold reboot of one simulated host (the role's live_update_cold_reboot_command in
# the fleet tests; on a real host ansible.builtin.reboot): luo-emu does not emulate a cold restart,
# so the host's machine is powered off and a new one booted on the same host directory. Only the
# disk crosses (the daemon's state directory); the VMMs start their VMs afresh.
#   fleet-coldboot.sh HOST_DIR LUO_EMU LU_VFIOD EXAMPLE_VMM POLICY_FILE
set -euo pipefail
dir=$1 luo_emu=$2 daemon=$3 vmm=$4 policy=$5
touch "$dir/poweroff"
for _ in $(seq 200); do [ -e "$dir/up" ] || break; sleep 0.05; done
sleep 0.5   # the rest of the old machine's teardown
rm -f "$dir/poweroff" "$dir"/*.state "$dir"/*.ready
echo cold >> "$dir/coldboots"
setsid "$luo_emu" --vfio=2 -- "$(dirname "$(readlink -f "$0")")/fleet-host.sh" "$dir" "$daemon" "$vmm" "$policy" \
        >>"$dir/luo-emu.log" 2>&1 </dev/null &
for _ in $(seq 1200); do [ -e "$dir/up" ] && exit 0; sleep 0.1; done
echo "fleet-coldboot.sh: $dir did not come up again" >&2
exit 1
