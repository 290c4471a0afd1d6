#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Socket activation of the VMM socket with systemd-socket-activate (luo-emu's COMMAND):
#   test-socket-activation.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE   ($OPS_DIR: work directory)
# The socket exists before the daemon; the first VMM connection starts the daemon, which
# serves on the passed socket (never binding its own path) and keeps it across its exit.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3
dir=${OPS_DIR:?}
. "$(dirname "$0")/dbus-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
: > "$dir/lu-vfiod.conf"
bus_start "$dir" "$policy"
systemd-socket-activate --seqpacket -l "$dir/vmm.sock" --fdname=vmm -E DBUS_SYSTEM_BUS_ADDRESS -- \
        "$daemon" --vmm-socket="$dir/unused/vmm.sock" --control-socket="$dir/control.sock" \
        --state-dir="$dir/state" --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon.log" &
act_pid=$!
for _ in $(seq 100); do [ -S "$dir/vmm.sock" ] && break; sleep 0.05; done
check "the socket exists before the daemon runs" test -S "$dir/vmm.sock"
ino=$(stat -c %i "$dir/vmm.sock")
busctl --system status "$DEST" >/dev/null 2>&1
check "no daemon yet" test $? != 0
"$vmm" --socket="$dir/vmm.sock" --vm=vm0 --vfio=/dev/vfio/devices/vfio0 --ready-file="$dir/vm0.ready" \
        --state-file="$dir/vm0.state" >>"$dir/vmm.log" 2>&1 &
for _ in $(seq 200); do [ -e "$dir/vm0.ready" ] && break; sleep 0.05; done
check "the first VMM connection started the daemon and was served" test -e "$dir/vm0.ready"
check "daemon says the socket came from the service manager" grep -q "VMM socket passed by the service manager" "$dir/daemon.log"
check "daemon did not bind its own --vmm-socket path" test ! -e "$dir/unused/vmm.sock"
check "the socket file is the activator's (same inode)" test "$(stat -c %i "$dir/vmm.sock")" = "$ino"
check "daemon on the bus" wait_name
check "the VM is registered" wait_prop VMCount 1
kill -TERM "$act_pid"; wait "$act_pid"; st=$?
check "daemon exits 0 on SIGTERM (status $st)" test "$st" = 0
check "socket path left in place for the next start" test -S "$dir/vmm.sock"
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
