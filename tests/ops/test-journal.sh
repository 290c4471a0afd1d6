#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Logs (luo-emu's COMMAND): started by hand, not under journald, lu-vfiod prints readable lines
# on stderr ("lu-vfiod: LEVEL: [VM] message session=… bdf=…"). Under the real journald its
# structured entries are checked by tests/realstack/test-notify.sh (realstack-notify).
#   test-journal.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE    ($OPS_DIR: work directory)
set -uo pipefail
daemon=$1 vmm=$2 policy=$3
dir=${OPS_DIR:?}
here=$(dirname "$(readlink -f "$0")")
. "$here/dbus-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
kernel_image "$dir/vmlinuz-next"
: > "$dir/lu-vfiod.conf"
bus_start "$dir" "$policy"

# run_daemon NAME: the daemon started by hand (no JOURNAL_STREAM), stderr in $dir/stderr-NAME
run_daemon() {
        : > "$dir/stderr-$1"
        unset JOURNAL_STREAM
        "$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state-$1" \
                --config="$dir/lu-vfiod.conf" 2>>"$dir/stderr-$1" &
        dpid=$!
        wait_name || bail "lu-vfiod did not start ($1)"
        rm -f "$dir/vm0.ready"
        "$vmm" --socket="$dir/vmm.sock" --vm=vm0 --vfio=/dev/vfio/devices/vfio0 --ready-file="$dir/vm0.ready" \
                --state-file="$dir/vm0.state" --exit-on-resume >>"$dir/vmm.log" 2>&1 &
        vpid=$!
        for _ in $(seq 200); do [ -e "$dir/vm0.ready" ] && break; sleep 0.05; done
        busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 >/dev/null
        busctl --system call "$DEST" "$OBJ" "$IFACE" Cancel >/dev/null
        wait "$vpid"
        kill "$dpid"; wait "$dpid"
}

run_daemon plain
p=$dir/stderr-plain
note "$(head -5 "$p")"
check "plain stderr: 'lu-vfiod: LEVEL: message' lines" grep -qE '^lu-vfiod: INFO: lu-vfiod [0-9.]+ ready' "$p"
check "plain stderr: VM prefix, session and bdf suffixes" \
        grep -qE '^lu-vfiod: INFO: \[vm0\] preserved vfio "dev0" as token 2 session=luvf:vm0:0 bdf=0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$' "$p"
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
