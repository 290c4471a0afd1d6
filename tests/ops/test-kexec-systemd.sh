#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# KexecMode=systemd under luo-emu (luo-emu's COMMAND):
#   test-kexec-systemd.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE FAKE_SYSTEMD FAKE_SYSTEMD1 LU_VFIOCTL   ($OPS_DIR)
# Boot 0: lu-vfiod under fake-systemd (fd store, preserved when the daemon stops) with
# KexecMode=systemd; a commit (lu-vfioctl) puts the frozen update's state session and
# memfd into the store next to the VM sessions and asks org.freedesktop.systemd1
# (fake-systemd1, the stand-in for systemd >= 261, on the test bus) for the kexec
# (StartUnit kexec.target, after prepare checked its Version) instead of calling reboot() itself;
# fake-systemd1 stops the daemon as systemd's kexec.target would, and kexecs the machine
# 2 s later: meanwhile the bus outlives the daemon, and lu-vfioctl must report the commit
# a success. Boot 1: the VMM reclaims and verifies its RAM and device.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 fake=$4 fake1=$5 ctl=$6
dir=${OPS_DIR:?} boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/dbus-lib.sh"

if [ "$boot" = 0 ]; then
        rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
        printf '[Service]\nKexecMode=systemd\n[Update]\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\n' > "$dir/lu-vfiod.conf"
        kernel_image "$dir/vmlinuz-next"
        # The test bus lets root own org.freedesktop.systemd1 too.
        cat > "$dir/extra-policy.conf" <<'EOT'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.freedesktop.systemd1"/>
    <allow send_destination="org.freedesktop.systemd1"/>
  </policy>
</busconfig>
EOT
fi
bus_start "$dir" "$policy"
if [ "$boot" = 0 ]; then "$fake1" --refuse-first --stop-caller "$dir/systemd1.log" & else "$fake1" "$dir/systemd1.log" & fi
log=$dir/fake-systemd-$boot.log
"$fake" --log="$log" --fdstore-preserve -- "$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" \
        --state-dir="$dir/state" --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon-$boot.log" &
wait_name || bail "lu-vfiod did not take $DEST"
rm -f "$dir/vm0.ready"
"$vmm" --socket="$dir/vmm.sock" --vm=vm0 --vfio=/dev/vfio/devices/vfio0 --ready-file="$dir/vm0.ready" \
        --state-file="$dir/vm0.state" >>"$dir/vmm-$boot.log" 2>&1 &
vmm_pid=$!

if [ "$boot" = 0 ]; then
        for _ in $(seq 200); do [ -e "$dir/vm0.ready" ] && break; sleep 0.05; done
        check "VMM handed over" test -e "$dir/vm0.ready"
        check "fake systemd1 on the bus" grep -q READY "$dir/systemd1.log"
        out=$(busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 2>&1)
        check "Prepare ($out)" test "$out" = "t 1"
        check "state session not in the fd store while only prepared" bash -c '! grep -q "^FDSTORE name=ses/luvf/state " "$0"' "$log"
        # systemd refuses the first StartUnit(kexec.target): a failed update, VMMs resume, the stored state goes.
        err=$(gdbus call --system --timeout=30 -d "$DEST" -o "$OBJ" -m "$IFACE.Commit" "{}" 2>&1)
        check "refused kexec.target fails the commit with KernelError" grep -q "$IFACE.Error.KernelError: systemd refused to start kexec.target" <<<"$err"
        check "idle again" wait_prop State idle
        check "LastUpdate: failed, naming systemd" grep -q '"result":"failed".*systemd refused to start kexec.target\|systemd refused to start kexec.target.*"result":"failed"' <<<"$(last_update)"
        check "state session had been stored, then removed" bash -c 'grep -q "^FDSTORE name=ses/luvf/state " "$0" && grep -q "^FDSTOREREMOVE name=ses/luvf/state dropped=1" "$0"' "$log"
        out=$(busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "" "" 0 2>&1)
        check "Prepare again re-creates the state session ($out)" test "$out" = "t 2"
        echo "$fail" > "$dir/boot0.fail"
        echo "$n" > "$dir/boot0.n"
        "$ctl" commit > "$dir/commit.out" 2>&1
        echo $? > "$dir/commit.rc"
        # Normally the machine is gone by now; if not, say why.
        sleep 5
        bad "no kexec after Commit: $(cat "$dir/commit.out") / $(tail -3 "$dir/daemon-0.log")"
        echo "1..$n"
        exit 1
fi

n=$(cat "$dir/boot0.n" 2>/dev/null || echo 0)
fail=$(cat "$dir/boot0.fail" 2>/dev/null || echo 1)
check "boot 0 ended in a kexec" test -e "$dir/boot0.n"
check "the daemon asked systemd for the kexec (twice: refused, then accepted)" test "$(grep -c "^StartUnit kexec.target replace-irreversibly from " "$dir/systemd1.log")" = 2
check "... and systemd (not the daemon) rebooted" grep -q "^REBOOT-KEXEC" "$dir/systemd1.log"
# Per-VM STATUS= lines are held back for up to 100 ms (service-notify.c); the next phase's line
# must send the held one first, never drop it.
check "STATUS= of vm0's acknowledgement sent, before the prepared line" awk '
        /^MSG STATUS=preparing: vm0: acknowledged prepare$/ { ack = NR }
        /^MSG STATUS=prepared: every VMM acknowledged prepare$/ { if (!ack) exit 1; ok = 1 }
        END { exit !ok }' "$dir/fake-systemd-0.log"
check "systemd stopped the daemon before the kexec, the store preserved" \
        bash -c 'grep -q "^STOP " "$0" && grep -q "^PRESERVE stored=" "$1"' "$dir/systemd1.log" "$dir/fake-systemd-0.log"
note "lu-vfioctl commit: $(cat "$dir/commit.out" 2>/dev/null)"
check "lu-vfioctl commit returned 0 although the bus outlived the daemon" test "$(cat "$dir/commit.rc" 2>/dev/null)" = 0
check "... saying the machine is rebooting" grep -q "^lu-vfiod went away: the machine is rebooting" "$dir/commit.out"
check "the daemon logged the request" grep -q "kexec requested from systemd" "$dir/daemon-0.log"
# What the store held when systemd stopped the daemon for the kexec, from its FDSTORE/FDSTOREREMOVE log
held=$(awk '/^FDSTORE name=/ { sub(/^name=/, "", $2); s[$2] = 1 } /^FDSTOREREMOVE name=/ { sub(/^name=/, "", $2); delete s[$2] }
        /^PRESERVE stored=/ { for (k in s) print k; exit }' "$dir/fake-systemd-0.log" | sort | tr '\n' ' ')
note "the fd store at the kexec: $held"
check "frozen update's state session was in the fd store at the kexec" grep -q "ses/luvf/state " <<<"$held"
check "... and the VM's session" grep -q "ses/luvf/vm0/0 " <<<"$held"
check "... but no memfd or device fd (preserved in those sessions: systemd >= 261 would preserve them again)" \
        bash -c '! grep -qE "(^| )(state|item/[^ ]*) " <<<"$0"' "$held"
check "the item fds had been stored before the freeze, then removed" \
        bash -c 'grep -q "^FDSTORE name=item/vm0/ram0 " "$0" && grep -q "^FDSTOREREMOVE name=item/vm0/ram0 " "$0"' "$dir/fake-systemd-0.log"
wait "$vmm_pid"; st=$?
check "VMM reclaimed and verified RAM and device after the kexec (exit $st)" test "$st" = 0
check "update complete" wait_prop State idle
check "LastUpdate: done" grep -q '"result":"done"' <<<"$(last_update)"
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
