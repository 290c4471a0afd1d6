#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# One host of the simulated fleet (docs/fleet.md): luo-emu's COMMAND, run again on every boot.
#   fleet-host.sh HOST_DIR LU_VFIOD EXAMPLE_VMM POLICY_FILE
# Each boot brings up what a hypervisor host runs: its own system bus (HOST_DIR/bus.sock, with
# the shipped lu-vfiod policy), lu-vfiod on HOST_DIR's sockets and state directory, and one
# example VMM per line of HOST_DIR/vms ("VM [extra example-vmm options]", device vfio<N> for
# the N-th line; the word "fleet:boot0-only" instead starts that VMM in the first boot only: a
# VMM that does not come back after the kexec), then writes HOST_DIR/up (the boot number) and idles until HOST_DIR/poweroff
# appears. A kexec kills all of it; luo-emu then boots it again, and the restarted VMMs reclaim
# their VMs. Nothing of the host is reached from outside but the bus socket and the files here.
set -uo pipefail
dir=$1 daemon=$2 vmm=$3 policy=$4 boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/../ops/dbus-lib.sh"

rm -f "$dir/up"
echo "$boot" > "$dir/boot"
bus_start "$dir" "$policy"
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon-$boot.log" &
daemon_pid=$!
wait_name || bail "lu-vfiod did not take $DEST"
pids=() i=0
while read -r vm opts; do
        [ -n "$vm" ] || continue
        case " $opts " in
        *" fleet:boot0-only "*)
                opts=${opts//fleet:boot0-only/}
                [ "$boot" = 0 ] || { i=$((i + 1)); continue; } ;;
        esac
        rm -f "$dir/$vm.ready"
        # shellcheck disable=SC2086 # opts are words
        "$vmm" --socket="$dir/vmm.sock" --vm="$vm" --vfio=/dev/vfio/devices/vfio$i --ready-file="$dir/$vm.ready" \
                --state-file="$dir/$vm.state" $opts >>"$dir/vmm-$vm-$boot.log" 2>&1 &
        pids+=($!) i=$((i + 1))
done < "$dir/vms"
if [ "$boot" = 0 ]; then
        # a fresh boot is up once every VMM has handed its VM over
        for vm in $(cut -d' ' -f1 "$dir/vms"); do
                for _ in $(seq 1200); do [ -e "$dir/$vm.ready" ] && break; sleep 0.05; done
                [ -e "$dir/$vm.ready" ] || bail "VMM of $vm did not hand its VM over"
        done
fi
echo "$boot" > "$dir/up"
while [ ! -e "$dir/poweroff" ]; do sleep 0.2; done
kill "${pids[@]}" "$daemon_pid" 2>/dev/null
wait "$daemon_pid" 2>/dev/null
kill "$BUS_PID" 2>/dev/null
rm -f "$dir/up"
exit 0
