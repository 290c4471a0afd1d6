#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The service-manager protocol of the daemon against the real systemd 252: what it sends on the
# notify socket and what it keeps in the fd store, read from systemd's own debug log ("Got
# notification message from PID …", "Added fd … to fd store") and unit properties:
#  - daemon/system/fdstore.c's helpers in a transient Type=notify unit (tests/ops/test-fdstore-client):
#    three memfds stored by name and one stored and removed (FDSTOREREMOVE), SIGKILL, and the
#    restarted unit gets exactly the three back, by name, with their contents;
#  - lu-vfiod.service: READY=1, a STATUS= per burst of VM changes (coalesced), per phase of a
#    prepare and a cancel, WATCHDOG=1 at half of WatchdogSec= with no missed deadline, STOPPING=1
#    and exit 0 on stop;
#  - a VMM that takes an item back and forgets its VM (tests/ops/test-unpreserve-client): the
#    fd store ends up holding what it held before the VMM came;
#  - the real journald's entries of the service (journalctl -o json): SYSLOG_IDENTIFIER,
#    PRIORITY, VM=, LU_SESSION=, VFIO_BDF= on the VM's lines, MESSAGE_ID on catalogued events,
#    MESSAGE without stderr decoration, and nothing written to stderr outside the journal.
#   test-notify.sh LUO_EMU BUILD_ROOT EXAMPLE_VMM     (env RS_DIR)
set -u
LUO_EMU=$1 BUILD_ROOT=$2 RS_VMM=$3
. "$(dirname "$0")/machine.sh"
mkdir -p "$RS_DIR"
rs_setup
install -m 0755 "$BUILD_ROOT/tests/ops/test-fdstore-client" "$BUILD_ROOT/tests/ops/test-unpreserve-client" \
        "$RS_DIR/root/usr/local/bin/" || bail "cannot install the test clients"
mkdir -p "$RS_DIR/root/etc/systemd/system/lu-vfiod.service.d"
printf '[Service]\nWatchdogSec=800ms\n' >"$RS_DIR/root/etc/systemd/system/lu-vfiod.service.d/test-watchdog.conf"
rs_boot --vfio=1
rs_wait_up 90 || bail "the machine's systemd did not finish booting"
rs_exec systemd-analyze log-level debug
# the package enables the service at boot: start it afresh, so that its READY=1 is logged
rs_exec systemctl stop lu-vfiod.service
# journal_pid1 PATTERN: lines of the manager's own log (this boot) matching PATTERN
journal_pid1() { rs_run sh -c 'journalctl -b _PID=1 -o cat | grep -E "^$0"' "$1"; }
# notifications UNIT: what UNIT's processes sent on the notify socket, one message per line
notifications() {
        rs_run sh -c 'journalctl -b _PID=1 -o cat | sed -n "s/^$0: Got notification message from PID [0-9]* (\(.*\))\$/\1/p"' "$1"
}

# sent PATTERN: lu-vfiod.service sent a notification matching PATTERN
sent() { notifications lu-vfiod.service | grep -q -- "$1"; }

# --- the fd store helpers
out=$(rs_run -p Type=notify -p NotifyAccess=main -p FileDescriptorStoreMax=8 -p Restart=on-failure -p RestartSec=100ms \
        --unit=fdstore-test -- /usr/local/bin/test-fdstore-client 2>&1)
st=$?
note "$(grep -c '^ok' <<<"$out") of $(grep -c 'ok ' <<<"$out") checks of the client passed"
check "the fd store client's checks in both generations pass" test -n "$out" -a "$(grep -c '^not ok' <<<"$out")" = 0
check "... and its second generation exited 0 (systemd-run status $st)" test "$st" = 0
check "systemd added its 4 fds to the fd store" test "$(journal_pid1 'fdstore-test.service: Added fd [0-9]+ \(' | wc -l)" = 4
check "... and removed one by name (FDSTOREREMOVE)" \
        bash -c 'grep -q "FDSTOREREMOVE=1" <<<"$0"' "$(notifications fdstore-test.service)"
check "systemd saw the SIGKILL and restarted it" \
        bash -c 'grep -qE "fdstore-test.service: (Main process exited, code=killed, status=9/KILL|Scheduled restart job)" <<<"$0"' \
        "$(journal_pid1 'fdstore-test.service: (Main process exited|Scheduled restart)')"

# --- lu-vfiod.service's notifications
rs_exec systemctl start lu-vfiod.service
rs_wait eval '[ "$(rs_unit_prop lu-vfiod.service ActiveState)" = active ]'
check "READY=1 sent (the Type=notify unit is active)" sent "READY=1"
rs_exec systemctl start vmm@vm0.service
rs_wait rs_exec test -e /run/vmm-vm0.ready || bail "the VMM service did not hand over"
status_lines() { notifications lu-vfiod.service | tr ',' '\n' | grep -c "STATUS=idle, [0-9]* VM(s)"; }
rs_wait eval '[ "$(rs_unit_prop lu-vfiod.service StatusText)" = "idle, 1 VM(s), 1 connected" ]'
check "STATUS follows the VM count ($(rs_unit_prop lu-vfiod.service StatusText))" \
        test "$(rs_unit_prop lu-vfiod.service StatusText)" = "idle, 1 VM(s), 1 connected"
note "notifications: $(notifications lu-vfiod.service | grep -v '^WATCHDOG=1$' | tr '\n' '|')"
n_status=$(notifications lu-vfiod.service | grep -c "STATUS=idle, [0-9]* VM(s)")
check "... in one coalesced message after READY's ($n_status STATUS=idle, N VM(s) messages)" test "$n_status" = 2
rs_run lu-vfioctl prepare /boot/vmlinuz-next >/dev/null 2>&1
check "prepared" test "$(rs_prop State)" = prepared
msgs=$(notifications lu-vfiod.service)
check "a STATUS for preparing" grep -q "STATUS=preparing: kernel .* loaded, asking VMMs to prepare" <<<"$msgs"
check "a STATUS naming the VM that acknowledged" grep -q "STATUS=preparing: vm0: acknowledged prepare" <<<"$msgs"
check "a STATUS for prepared" grep -q "STATUS=prepared: every VMM acknowledged prepare" <<<"$msgs"
rs_run lu-vfioctl cancel >/dev/null 2>&1
rs_wait sent "STATUS=idle: update cancelled"
check "a STATUS for the cancel" sent "STATUS=idle: update cancelled"
w0=$(notifications lu-vfiod.service | grep -c "^WATCHDOG=1$")
sleep 2
w1=$(notifications lu-vfiod.service | grep -c "^WATCHDOG=1$")
check "WATCHDOG=1 pings at half of WatchdogSec=800ms ($((w1 - w0)) in 2 s)" test $((w1 - w0)) -ge 4
missed=$(journal_pid1 'lu-vfiod.service: Watchdog timeout')
check "no missed watchdog${missed:+: $(head -n1 <<<"$missed")}" test -z "$missed"

# --- the journal's fields (the real journald; parsed here, the machine has no python). By
# SYSLOG_IDENTIFIER, not -u: with the manager at debug level, journald files the daemon's first
# entries under init.scope, the context it cached for that pid from the manager's forked child
# logging before the exec (`journalctl -u lu-vfiod` at the default level: realstack-update).
rs_run journalctl -b SYSLOG_IDENTIFIER=lu-vfiod -o json >"$RS_DIR/journal.jsonl" 2>/dev/null
jq_lines() { python3 -c "
import json, sys
es = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
es = [e for e in es if e.get('SYSLOG_IDENTIFIER') == 'lu-vfiod']
sys.exit(0 if any($1 for e in es) else 1)" "$RS_DIR/journal.jsonl"; }
check "the daemon's entries are in the journal ($(wc -l <"$RS_DIR/journal.jsonl") lines)" \
        jq_lines 'e.get("SYSLOG_IDENTIFIER") == "lu-vfiod" and e.get("PRIORITY") == "6"'
check "the VFIO preserve entry carries VM=, LU_SESSION= and VFIO_BDF=" \
        jq_lines 'e.get("VM") == "vm0" and e.get("LU_SESSION") == "luvf:vm0:0" and e.get("VFIO_BDF", "").startswith("0000:") and "preserved vfio" in e.get("MESSAGE", "")'
check "a VM's acknowledgement is filed under VM=vm0" jq_lines 'e.get("VM") == "vm0" and "acknowledged prepare" in e.get("MESSAGE", "")'
check "MESSAGE has no stderr decoration" jq_lines '"preserved vfio" in e.get("MESSAGE", "") and not e["MESSAGE"].startswith("lu-vfiod:")'
for id in 1c271937f0b94d14b10892686a81afb1 8b0383d72d6b4c9b86dedde28774b09d 87bab09da9cd4e85879f9f6ad59a5509; do
        check "catalogued event $id (ready, prepared, cancelled) carries its MESSAGE_ID" jq_lines "e.get('MESSAGE_ID') == '$id'"
done
check "entries without a catalogue id carry none" jq_lines '"preserved vfio" in e.get("MESSAGE", "") and "MESSAGE_ID" not in e'
check "everything went to the journal's native protocol, nothing through stderr (_TRANSPORT=journal)" \
        bash -c '! python3 -c "
import json, sys
es = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(e.get(\"SYSLOG_IDENTIFIER\") == \"lu-vfiod\" and e.get(\"_TRANSPORT\") == \"stdout\" for e in es) else 1)" "$0"' "$RS_DIR/journal.jsonl"

# --- unpreserve and forget with the fd store
store0=$(rs_unit_prop lu-vfiod.service NFileDescriptorStore)
out=$(rs_run /usr/local/bin/test-unpreserve-client /run/lu-vfiod/vmm.sock 2>&1); st=$?
note "$(grep -c '^ok' <<<"$out") checks of the unpreserving client passed"
check "a VMM that unpreserves and forgets: its checks pass (exit $st)" test "$st" = 0 -a "$(grep -c '^not ok' <<<"$out")" = 0
store1=$(rs_unit_prop lu-vfiod.service NFileDescriptorStore)
check "the fd store holds what it held before that VMM came ($store0 -> $store1 fds)" test "$store1" = "$store0"

# --- stop
rs_exec systemctl stop vmm@vm0.service
rs_exec systemctl stop lu-vfiod.service
check "stop: STOPPING=1 sent" sent "STOPPING=1"
check "... and the daemon exited 0 (result $(rs_unit_prop lu-vfiod.service Result), status $(rs_unit_prop lu-vfiod.service ExecMainStatus))" \
        test "$(rs_unit_prop lu-vfiod.service Result)/$(rs_unit_prop lu-vfiod.service ExecMainStatus)" = success/0

rs_poweroff
echo "1..$n"
exit $fail
