#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Logs (luo-emu's COMMAND): under journald (JOURNAL_STREAM matches stderr) lu-vfiod sends
# structured entries with VM=, LU_SESSION=, VFIO_BDF=; started by hand it prints readable
# lines on stderr. A private mount namespace gets a fake journald socket.
#   test-journal.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE    ($OPS_DIR: work directory)
set -uo pipefail
if [ -z "${OPS_UNSHARED:-}" ]; then
        exec unshare --mount --propagation private env OPS_UNSHARED=1 "$0" "$@"
fi
daemon=$1 vmm=$2 policy=$3
dir=${OPS_DIR:?}
here=$(dirname "$(readlink -f "$0")")
. "$here/dbus-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
kernel_image "$dir/vmlinuz-next"
: > "$dir/lu-vfiod.conf"
{ mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; } || bail "cannot mount a private /run/systemd"
mkdir -p /run/systemd/journal
python3 "$here/fake-journald.py" /run/systemd/journal/socket "$dir/journal.jsonl" &
jd=$!
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
bus_start "$dir" "$policy"

# run_daemon MODE: "journal" (stderr is "the journal stream") or "plain"
run_daemon() {
        : > "$dir/stderr-$1"
        if [ "$1" = journal ]; then
                export JOURNAL_STREAM=$(stat -c '%d:%i' "$dir/stderr-$1")
        else
                unset JOURNAL_STREAM
        fi
        "$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state-$1" \
                --config="$dir/lu-vfiod.conf" 2>>"$dir/stderr-$1" &
        dpid=$!
        unset JOURNAL_STREAM
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

run_daemon journal
sleep 0.2
j=$dir/journal.jsonl
jq_lines() { python3 -c "
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any($1 for e in es) else 1)" "$j"; }
check "entries reached the journal socket ($(wc -l < "$j"))" test -s "$j"
check "SYSLOG_IDENTIFIER=lu-vfiod and PRIORITY on entries" jq_lines 'e.get("SYSLOG_IDENTIFIER") == "lu-vfiod" and e.get("PRIORITY") == "6"'
check "VFIO preserve entry carries VM=, LU_SESSION= and VFIO_BDF=" \
        jq_lines 'e.get("VM") == "vm0" and e.get("LU_SESSION") == "luvf:vm0:0" and e.get("VFIO_BDF", "").startswith("0000:") and "preserved vfio" in e.get("MESSAGE", "")'
check "a VM acknowledgement is filed under VM=vm0" jq_lines 'e.get("VM") == "vm0" and "acknowledged prepare" in e.get("MESSAGE", "")'
check "MESSAGE has no stderr decoration" jq_lines '"preserved vfio" in e.get("MESSAGE", "") and not e["MESSAGE"].startswith("lu-vfiod:")'
check "catalogued events carry MESSAGE_ID (ready, prepared, cancelled)" bash -c '
        for id in 1c271937f0b94d14b10892686a81afb1 8b0383d72d6b4c9b86dedde28774b09d 87bab09da9cd4e85879f9f6ad59a5509; do
                grep -q "\"MESSAGE_ID\": \"$id\"" "$0" || exit 1
        done' "$j"
check "entries without a catalogue id carry none" jq_lines '"preserved vfio" in e.get("MESSAGE", "") and "MESSAGE_ID" not in e'
check "nothing on stderr under journald" test ! -s "$dir/stderr-journal"

run_daemon plain
p=$dir/stderr-plain
note "$(head -5 "$p")"
check "plain stderr: 'lu-vfiod: LEVEL: message' lines" grep -qE '^lu-vfiod: INFO: lu-vfiod [0-9.]+ ready' "$p"
check "plain stderr: VM prefix, session and bdf suffixes" \
        grep -qE '^lu-vfiod: INFO: \[vm0\] preserved vfio "dev0" as token 2 session=luvf:vm0:0 bdf=0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$' "$p"
kill "$jd" "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
