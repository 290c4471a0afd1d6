#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon SIGKILLed in the middle of the restore (after the kexec) loses nothing
# (run as luo-emu's COMMAND):
#   test-fdstore-restore.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE FAKE_SYSTEMD   ($OPS_DIR)
# Boot 0: two VMMs hand over RAM and a device; Prepare, Commit, kexec.
# Boot 1: lu-vfiod under fake-systemd (notify socket + fd store); vm0 reclaims, verifies and
# reports restored; the daemon is SIGKILLed and comes back with the stored fds (the incoming
# state session, the registry memfd, vm1's session and items); vm1 then reclaims its RAM
# (verified byte for byte) and device, reports restored, and the update completes.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 fake=$4
dir=${OPS_DIR:?} boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/dbus-lib.sh"

if [ "$boot" = 0 ]; then
        rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
        # A long grace period: the restart must not be rescued by the unclaimed policy.
        printf '[Update]\nPrepareTimeoutSec=30\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=60\n' > "$dir/lu-vfiod.conf"
        kernel_image "$dir/vmlinuz-next"
fi
bus_start "$dir" "$policy"
daemon_under_fake_systemd "$fake" "$daemon"
wait_name || bail "lu-vfiod did not take $DEST"

# wait_exit PID: its exit status, or 124 (and killed) after 30 s
wait_exit() {
        for _ in $(seq 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
        kill -0 "$1" 2>/dev/null && { kill -KILL "$1"; wait "$1" 2>/dev/null; return 124; }
        wait "$1"
}

if [ "$boot" = 0 ]; then
        start_vmm vm0
        start_vmm vm1
        check "both VMMs handed over" bash -c "$(declare -f wait_ready); dir=$dir; wait_ready vm0 && wait_ready vm1"
        out=$(busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 2>&1)
        check "Prepare ($out)" bash -c '[[ $0 == "t "[0-9]* ]]' "$out"
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
check "restoring" wait_prop State restoring
for name in ses/luvf/state state ses/luvf/vm0/0 ses/luvf/vm1/0 item/vm1/ram0 item/vm1/dev0; do
        check "fd store holds $name during the restore" \
                bash -c 'for _ in $(seq 200); do grep -q "^FDSTORE name=$1 " "$0" && exit 0; sleep 0.05; done; exit 1' "$log" "$name"
done
start_vmm vm0; p0=$last_vmm
wait_exit "$p0"; st0=$?
check "vm0 reclaimed, verified and restored (exit $st0)" test "$st0" = 0
check "still restoring: vm1 has not come back" test "$(prop State)" = restoring
pid=$(sed -n 's/^START generation=0 pid=\([0-9]*\).*/\1/p' "$log")
kill -KILL "$pid"
check "restarted by the service manager with the stored fds" \
        bash -c 'for _ in $(seq 200); do grep -q "^START generation=1 .*listen_fds=[1-9]" "$0" && exit 0; sleep 0.05; done; exit 1' "$log"
check "daemon back on the bus" wait_name
check "the restarted daemon continues the restore" wait_prop State restoring
check "the restarted daemon adopted the incoming state session" grep -q "adopted from the fd store" "$dir/daemon-1.log"
start_vmm vm1; p1=$last_vmm
wait_exit "$p1"; st1=$?
check "vm1 reclaimed and verified RAM and device after the daemon restart (exit $st1)" test "$st1" = 0
check "update complete" wait_prop State idle 100
check "LastUpdate: done" grep -q '"result":"done"' <<<"$(last_update)"
check "nothing reported lost" bash -c '! grep -qi "not carried over\|unreadable\|already retrieved" "$0"' "$dir/daemon-1.log"
kill -TERM "$fake_pid"; wait "$fake_pid"
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
