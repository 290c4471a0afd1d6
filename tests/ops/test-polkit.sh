#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon's polkit path with a stand-in for polkitd (luo-emu's COMMAND):
#   test-polkit.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE FAKE_POLKIT LU_VFIOCTL   ($OPS_DIR)
# fake-polkit authorizes org.luvfiod.LiveUpdate1.prepare only for callers that allow
# interactive authorization, and denies .commit. Root is never asked about.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 fakepk=$4 ctl=$5
dir=${OPS_DIR:?}
. "$(dirname "$0")/dbus-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
: > "$dir/lu-vfiod.conf"
ctl=$(stage_for_nobody "$ctl") || bail "cannot stage lu-vfioctl for uid nobody"
cat > "$dir/extra-policy.conf" <<'EOT'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root"><allow own="org.freedesktop.PolicyKit1"/></policy>
  <policy context="default"><allow send_destination="org.freedesktop.PolicyKit1"/></policy>
</busconfig>
EOT
bus_start "$dir" "$policy"
pklog=$dir/polkit.log
"$fakepk" "$pklog" &
for _ in $(seq 100); do grep -q READY "$pklog" 2>/dev/null && break; sleep 0.05; done
check "fake polkit on the bus" grep -q READY "$pklog"
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon.log" &
dpid=$!
wait_name || bail "lu-vfiod did not take $DEST"

"$ctl" cancel >/dev/null 2>&1; st=$?
check "root: Cancel reaches the core (WrongState, exit 4)" test $st = 4
check "root: polkit never asked" bash -c '! grep -q "^CHECK" "$0"' "$pklog"

as_nobody "$ctl" --no-ask-password cancel 2>"$dir/err1"; st=$?
check "nobody without interaction: exit 3" test $st = 3
out=$(as_nobody "$ctl" --json --no-ask-password cancel 2>/dev/null)
check "... InteractiveAuthorizationRequired" grep -q '"error":"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"' <<<"$out"
check "polkit asked for .prepare with flags=0 about the caller's bus name" \
        grep -qE "^CHECK org.luvfiod.LiveUpdate1.prepare flags=0 subject=system-bus-name::[0-9]+\.[0-9]+$" "$pklog"

as_nobody "$ctl" cancel >/dev/null 2>&1; st=$?
check "nobody allowing interaction: authorized, Cancel reaches the core (exit 4)" test $st = 4
check "polkit asked with flags=1 (AllowUserInteraction)" grep -q "^CHECK org.luvfiod.LiveUpdate1.prepare flags=1 " "$pklog"

as_nobody "$ctl" commit >/dev/null 2>&1; st=$?
check "nobody: Commit denied (.commit action), exit 3" test $st = 3
check "polkit asked for .commit" grep -q "^CHECK org.luvfiod.LiveUpdate1.commit " "$pklog"
check "State untouched" test "$(prop State)" = idle

kill "$dpid"; wait "$dpid" 2>/dev/null
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
