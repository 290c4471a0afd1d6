#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon SIGKILLed in the middle of a prepare comes back with every session
# (run as luo-emu's COMMAND):
#   test-fdstore-restart.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE FAKE_SYSTEMD   ($OPS_DIR)
# Boot 0: lu-vfiod under fake-systemd (notify socket + fd store) with two VMMs; vm1's
# VMM never acknowledges, so Prepare hangs in "preparing"; SIGKILL the daemon. fake-systemd
# restarts it with LISTEN_FDS: every item must still be preserved (same tokens, not
# "lost"); a fresh vm1 VMM finds its items held; a full update then goes through.
# Boot 1: both VMMs reclaim and verify their RAM and device.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 fake=$4
dir=${OPS_DIR:?} boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/dbus-lib.sh"

if [ "$boot" = 0 ]; then
        rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
        printf '[Update]\nPrepareTimeoutSec=30\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=5\n' > "$dir/lu-vfiod.conf"
        kernel_image "$dir/vmlinuz-next"
fi
bus_start "$dir" "$policy"
daemon_under_fake_systemd "$fake" "$daemon"
wait_name || bail "lu-vfiod did not take $DEST"

devices() { busctl --system call "$DEST" "$OBJ" "$IFACE" ListDevices s "$1"; }

if [ "$boot" = 0 ]; then
        start_vmm vm0 --reconnect; vm0_pid=$last_vmm
        start_vmm vm1 --no-ack; vm1_pid=$last_vmm
        check "both VMMs handed over" bash -c "$(declare -f wait_ready); dir=$dir; wait_ready vm0 && wait_ready vm1"
        for name in ses/luvf/vm0/0 item/vm0/ram0 item/vm0/dev0 ses/luvf/vm1/0 item/vm1/ram0 item/vm1/dev0; do
                check "fd store holds $name" grep -q "^FDSTORE name=$name " "$log"
        done
        before0=$(devices vm0) before1=$(devices vm1)
        note "vm1 before: $before1"
        busctl --system --timeout=60 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 \
                >"$dir/prepare0.out" 2>&1 &
        check "state preparing (vm1 does not acknowledge)" wait_prop State preparing
        pid=$(sed -n 's/^START generation=0 pid=\([0-9]*\).*/\1/p' "$log")
        kill -KILL "$pid"
        check "restarted by the service manager with the stored fds" \
                bash -c 'for _ in $(seq 200); do grep -q "^START generation=1 .*listen_fds=6$" "$0" && exit 0; sleep 0.05; done; exit 1' "$log"
        check "daemon back on the bus" wait_name
        check "the interrupted update is over: idle" wait_prop State idle
        after0=$(devices vm0) after1=$(devices vm1)
        note "vm1 after: $after1"
        check "vm0: same items, same tokens, still preserved" test "$after0" = "$before0"
        check "vm1: same items, same tokens, still preserved" test "$after1" = "$before1"
        check "nothing reported lost" bash -c '! grep -q "\"lost\"" <<<"$0"' "$after0$after1"
        check "no item was reported lost by the restarted daemon" bash -c '! grep -q "was not carried over" "$0"' "$dir/daemon-0.log"
        check "the daemon said it recovered both sessions" test "$(grep -c "recovered from the fd store with 2 item(s) (2 with the daemon.s fd)" "$dir/daemon-0.log")" = 2
        check "LastUpdate: the interrupted update was abandoned" grep -q '"result":"abandoned"' <<<"$(last_update)"
        # vm1's VMM is replaced by one that acknowledges; it must find everything held.
        kill "$vm1_pid"; wait "$vm1_pid" 2>/dev/null
        start_vmm vm1
        check "new vm1 VMM ready" wait_ready vm1
        check "... and found its items held by the daemon" grep -q "daemon already holds my items" "$dir/vmm-vm1-0.log"
        check "vm0's VMM reconnected" wait_prop ConnectedVMCount 2
        check "items unchanged after the reconnects" test "$(devices vm0)$(devices vm1)" = "$before0$before1"
        out=$(busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 2>&1)
        check "Prepare after the restart ($out)" test "$out" = "t 2"
        echo "$fail" > "$dir/boot0.fail"
        echo "$n" > "$dir/boot0.n"
        gdbus call --system --timeout=30 -d "$DEST" -o "$OBJ" -m "$IFACE.Commit" "{}" >"$dir/commit.log" 2>&1
        bad "Commit returned instead of rebooting: $(cat "$dir/commit.log")"
        echo "1..$n"
        exit 1
fi

n=$(cat "$dir/boot0.n" 2>/dev/null || echo 0)
fail=$(cat "$dir/boot0.fail" 2>/dev/null || echo 1)
check "boot 0 ended in the kexec" test -e "$dir/boot0.n"
start_vmm vm0; p0=$last_vmm
start_vmm vm1; p1=$last_vmm
wait "$p0"; st0=$?
wait "$p1"; st1=$?
check "vm0 reclaimed and verified RAM and device after the kexec (exit $st0)" test "$st0" = 0
check "vm1 reclaimed and verified RAM and device after the kexec (exit $st1)" test "$st1" = 0
check "update complete" wait_prop State idle
check "LastUpdate: done" grep -q '"result":"done"' <<<"$(last_update)"
kill -TERM "$fake_pid"; wait "$fake_pid"
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
