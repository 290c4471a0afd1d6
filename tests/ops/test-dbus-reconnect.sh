#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# lu-vfiod and a bus that is not there yet, or goes away (run as luo-emu's COMMAND):
#   test-dbus-reconnect.sh LU_VFIOD POLICY_FILE    ($OPS_DIR: work directory)
# The daemon starts before the bus, then the bus appears: the name shows up. The bus is
# killed and started again: the name comes back, properties and methods answer, the
# daemon did not spin while waiting, and the control socket answered throughout.
set -uo pipefail
daemon=$1 policy=$2
dir=${OPS_DIR:?}
. "$(dirname "$0")/dbus-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus.sock
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config=/dev/null 2>>"$dir/daemon.log" &
daemon_pid=$!
trap 'kill $daemon_pid ${BUS_PID:-} 2>/dev/null' EXIT

ctl_status() {   # the control socket's view, independent of D-Bus
        python3 - "$dir/control.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
s.send(b'{"id":1,"method":"status"}')
print(s.recv(65536).decode())
PY
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }

for _ in $(seq 100); do [ -S "$dir/control.sock" ] && break; sleep 0.05; done
check "daemon runs without a bus" kill -0 $daemon_pid
check "... and says D-Bus is unavailable, retrying" grep -q "D-Bus unavailable.*retrying" "$dir/daemon.log"
check "control socket answers without a bus" grep -q '"state":"idle"' <<<"$(ctl_status)"

t0=$(cpu_ticks)
sleep 1.5
t1=$(cpu_ticks)
check "no busy loop while the bus is missing ($((t1 - t0)) ticks of CPU in 1.5 s)" test $((t1 - t0)) -le 10

bus_start "$dir" "$policy"
check "the name appears once the bus does" wait_name
check "State answers over D-Bus" test "$(prop State)" = idle

kill "$BUS_PID"
for _ in $(seq 100); do kill -0 "$BUS_PID" 2>/dev/null || break; sleep 0.05; done
for _ in $(seq 100); do grep -q "Lost the D-Bus connection" "$dir/daemon.log" && break; sleep 0.05; done
check "the daemon noticed the bus going away" grep -q "Lost the D-Bus connection; reconnecting" "$dir/daemon.log"
t0=$(cpu_ticks)
sleep 1.5
t1=$(cpu_ticks)
check "no busy loop while the bus is away ($((t1 - t0)) ticks of CPU in 1.5 s)" test $((t1 - t0)) -le 10
check "control socket answers while the bus is away" grep -q '"state":"idle"' <<<"$(ctl_status)"
check "daemon still running" kill -0 $daemon_pid

bus_start "$dir" "$policy"
check "the name comes back with the bus" wait_name
check "State answers over D-Bus again" test "$(prop State)" = idle
out=$(busctl --system call "$DEST" "$OBJ" "$IFACE" ListVMs 2>&1)
check "methods answer again (ListVMs: $out)" grep -q '^a(subbbu) 0' <<<"$out"
for _ in $(seq 100); do grep -q "Connected to D-Bus again" "$dir/daemon.log" && break; sleep 0.05; done
check "the daemon logs the reconnection" grep -q "Connected to D-Bus again" "$dir/daemon.log"

kill -TERM $daemon_pid
wait $daemon_pid
rc=$?
check "daemon exits cleanly on SIGTERM (status $rc)" test $rc = 0
trap - EXIT
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
