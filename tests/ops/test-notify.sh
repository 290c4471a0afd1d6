#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# lu-vfiod as a Type=notify service under fake-systemd, inside luo-emu (luo-emu's COMMAND):
#   test-notify.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE FAKE_SYSTEMD    ($OPS_DIR: work directory)
# READY=1 once up, STATUS= following the VM count (coalesced), a STATUS= line per phase of a prepare/cancel, WATCHDOG=1 pings at
# half of WATCHDOG_USEC with no missed deadline, STOPPING on SIGTERM and a clean exit.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 fake=$4
dir=${OPS_DIR:?}
. "$(dirname "$0")/dbus-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
printf '[Update]\nPrepareTimeoutSec=10\n' > "$dir/lu-vfiod.conf"
kernel_image "$dir/vmlinuz-next"
bus_start "$dir" "$policy"
log=$dir/fake-systemd.log
"$fake" --log="$log" --watchdog-usec=400000 --max-restarts=0 -- \
        "$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon.log" &
fake_pid=$!
wait_name || bail "lu-vfiod did not take $DEST"
check "READY=1 sent" grep -q "^MSG READY=1" "$log"
check "STATUS with the state at READY" grep -q "^MSG STATUS=idle, 0 VM(s)" "$log"
"$vmm" --socket="$dir/vmm.sock" --vm=vm0 --vfio=/dev/vfio/devices/vfio0 --ready-file="$dir/vm0.ready" \
        --state-file="$dir/vm0.state" --exit-on-resume >>"$dir/vmm.log" 2>&1 &
for _ in $(seq 200); do [ -e "$dir/vm0.ready" ] && break; sleep 0.05; done
# systemctl status must follow the VMs, not stay at READY's "0 VM(s)"; one line per burst.
for _ in $(seq 40); do grep -q "^MSG STATUS=idle, 1 VM(s), 1 connected$" "$log" && break; sleep 0.05; done
check "STATUS follows the VM count: idle, 1 VM(s), 1 connected" grep -q "^MSG STATUS=idle, 1 VM(s), 1 connected$" "$log"
check "... in one coalesced line" test "$(grep -c "^MSG STATUS=idle, [0-9]* VM(s)" "$log")" = 2
out=$(busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 2>&1)
check "Prepare over D-Bus ($out)" test "$out" = "t 1"
check "STATUS line for preparing" grep -q "^MSG STATUS=preparing: kernel .* loaded, asking VMMs to prepare" "$log"
check "STATUS line naming the VM that acknowledged" grep -q "^MSG STATUS=preparing: vm0: acknowledged prepare" "$log"
check "STATUS line for prepared" grep -q "^MSG STATUS=prepared: every VMM acknowledged prepare" "$log"
busctl --system call "$DEST" "$OBJ" "$IFACE" Cancel >/dev/null
# fake-systemd logs what it reads asynchronously: give it a moment after the reply.
for _ in $(seq 40); do grep -q "^MSG STATUS=idle: update cancelled" "$log" && break; sleep 0.05; done
check "STATUS line for the cancel" grep -q "^MSG STATUS=idle: update cancelled" "$log"
sleep 1.2
pings=$(grep -c "^MSG WATCHDOG=1" "$log")
check "WATCHDOG=1 pings while idle ($pings in ~2 s at 400 ms)" test "$pings" -ge 4
check "no missed watchdog" bash -c '! grep -q WATCHDOG-TIMEOUT "$0"' "$log"
kill -TERM "$fake_pid"; wait "$fake_pid"; st=$?
check "SIGTERM: daemon exits 0 (fake-systemd status $st)" test "$st" = 0
check "STOPPING=1 sent" grep -q "^MSG STOPPING=1" "$log"
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
