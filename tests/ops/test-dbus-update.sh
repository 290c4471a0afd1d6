#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A whole live update driven over D-Bus under luo-emu (run as luo-emu's COMMAND):
#   test-dbus-update.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE    ($OPS_DIR: work directory)
# Each boot starts a private system bus with the shipped policy, the daemon and an
# example VMM. Boot 0: introspection, listing, an unprivileged caller refused, Prepare
# with busctl (signals watched with gdbus monitor), Commit with dbus-send -> kexec.
# Boot 1: the VMM reclaims; the update's end and timeline are read with gdbus.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3
dir=${OPS_DIR:?} boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/dbus-lib.sh"

if [ "$boot" = 0 ]; then
        rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
        printf '[Update]\nPrepareTimeoutSec=10\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=5\n[Access]\nOperatorGroup=4242\n' > "$dir/lu-vfiod.conf"
        kernel_image "$dir/vmlinuz-next"
fi
bus_start "$dir" "$policy"
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon-$boot.log" &
daemon_pid=$!
wait_name || bail "lu-vfiod did not take $DEST"
rm -f "$dir/vm0.ready"
"$vmm" --socket="$dir/vmm.sock" --vm=vm0 --vfio=/dev/vfio/devices/vfio0 --ready-file="$dir/vm0.ready" \
        --state-file="$dir/vm0.state" >>"$dir/vmm-$boot.log" 2>&1 &
vmm_pid=$!

if [ "$boot" = 0 ]; then
        for _ in $(seq 200); do [ -e "$dir/vm0.ready" ] && break; sleep 0.05; done
        check "VMM handed its RAM and device over" test -e "$dir/vm0.ready"
        xml=$(busctl --system introspect --xml-interface "$DEST" "$OBJ")
        for m in Prepare Commit Cancel Finish ListVMs ListDevices; do
                check "introspection lists method $m" grep -q "<method name=\"$m\">" <<<"$xml"
        done
        for s in Progress VMAcknowledged PhaseChanged; do
                check "introspection lists signal $s" grep -q "<signal name=\"$s\">" <<<"$xml"
        done
        check "State is idle" test "$(prop State)" = idle
        check "KernelABI is the emulator's ($(prop KernelABI))" grep -qE '^(upstream|v4)$' <<<"$(prop KernelABI)"
        check "VMCount is 1" wait_prop VMCount 1
        check "ConnectedVMCount is 1" test "$(prop ConnectedVMCount)" = 1
        out=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.ListVMs")
        check "gdbus ListVMs shows vm0 connected with 2 items ($out)" grep -q "('vm0', uint32 0, true, false, false, uint32 2)" <<<"$out"
        out=$(busctl --system call "$DEST" "$OBJ" "$IFACE" ListDevices s vm0)
        check "ListDevices shows the VFIO device with its PCI address" grep -qE '"vfio" "[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]" "preserved"' <<<"$out"
        check "ListDevices shows the guest RAM memfd" grep -q '"memfd" "" "preserved"' <<<"$out"
        err=$(busctl --system call "$DEST" "$OBJ" "$IFACE" ListDevices s nosuchvm 2>&1)
        check "ListDevices of an unknown VM fails" test -n "$err"
        err=$(dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IFACE.ListDevices" string:nosuchvm 2>&1)
        check "... with the named error NoSuchVM" grep -q "Error $IFACE.Error.NoSuchVM" <<<"$err"

        # The ObjectManager at "/" lists the one object with its interface and properties.
        out=$(busctl --system call "$DEST" / org.freedesktop.DBus.ObjectManager GetManagedObjects 2>&1)
        check "GetManagedObjects lists $OBJ with $IFACE" bash -c 'grep -q "\"$1\"" <<<"$3" && grep -q "\"$2\"" <<<"$3" && grep -q "\"VMCount\" u 1" <<<"$3"' _ "$OBJ" "$IFACE" "$out"
        out=$(as_nobody gdbus call --system -d "$DEST" -o / -m org.freedesktop.DBus.ObjectManager.GetManagedObjects 2>&1)
        check "... an unprivileged caller may call it too" grep -q "'$OBJ'" <<<"$out"

        # A missing kernel and a missing initrd are both a failed pre-flight naming the file.
        err=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.Prepare" "$dir/nokernel" "" "" "{}" 2>&1)
        check "missing kernel: PreconditionFailed naming it" grep -q "$IFACE.Error.PreconditionFailed: kernel image $dir/nokernel:" <<<"$err"
        out=$(busctl --system call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/vmlinuz-next" "$dir/noinitrd" "" 0 2>&1)
        check "missing initrd: refused naming the initrd, not the kernel ($out)" bash -c 'grep -q "initrd $0: No such file" <<<"$1" && ! grep -q vmlinuz <<<"$1"' "$dir/noinitrd" "$out"
        err=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.Prepare" "$dir/vmlinuz-next" "$dir/noinitrd" "" "{}" 2>&1)
        check "... with the error PreconditionFailed" grep -q "$IFACE.Error.PreconditionFailed" <<<"$err"
        check "... and the state is still idle" test "$(prop State)" = idle

        # Unprivileged callers: reading is allowed, changing state is not (no polkit on this bus).
        out=$(as_nobody busctl --system get-property "$DEST" "$OBJ" "$IFACE" State 2>&1)
        check "unprivileged caller may read State" test "$out" = 's "idle"'
        err=$(as_nobody gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.Prepare" "$dir/vmlinuz-next" "" "" "{}" 2>&1)
        check "unprivileged Prepare refused with AccessDenied" grep -q "org.freedesktop.DBus.Error.AccessDenied" <<<"$err"
        check "... naming the polkit fallback" grep -q "polkit is not available" <<<"$err"
        err=$(as_nobody busctl --system call "$DEST" "$OBJ" "$IFACE" Commit "a{sv}" 0 2>&1)
        check "unprivileged Commit refused" test -n "$err"
        check "State still idle after the refused calls" test "$(prop State)" = idle
        # OperatorGroup=4242: its members pass the no-polkit fallback (Cancel then fails on the state, not on access).
        err=$(setpriv --reuid=65534 --regid=65534 --groups=4242 gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.Cancel" 2>&1)
        check "OperatorGroup member passes the polkit fallback" grep -q "$IFACE.Error.WrongState" <<<"$err"

        err=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.Prepare" "$dir/vmlinuz-next" "" "" "{'bogus': <1>}" 2>&1)
        check "unknown Prepare option refused with InvalidArgs" grep -q "org.freedesktop.DBus.Error.InvalidArgs" <<<"$err"
        err=$(dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IFACE.Cancel" 2>&1)
        check "Cancel while idle: named error WrongState" grep -q "Error $IFACE.Error.WrongState" <<<"$err"
        err=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.Prepare" "$dir/missing-kernel" "" "" "{}" 2>&1)
        check "Prepare of a missing kernel: PreconditionFailed" grep -q "$IFACE.Error.PreconditionFailed" <<<"$err"

        gdbus monitor --system -d "$DEST" > "$dir/monitor.log" 2>&1 &
        mon_pid=$!
        sleep 0.5
        out=$(busctl --system --timeout=30 call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" \
                "$dir/vmlinuz-next" "" "" 1 timeout-ms t 10000 2>&1)
        check "busctl Prepare returns the update id ($out)" test "$out" = "t 1"
        check "State is prepared" test "$(prop State)" = prepared
        check "UpdateId is 1" test "$(prop UpdateId)" = 1
        check "CurrentUpdate names the kernel" grep -q "vmlinuz-next" <<<"$(prop CurrentUpdate)"
        sleep 0.3
        kill "$mon_pid" 2>/dev/null; wait "$mon_pid" 2>/dev/null
        mon=$(cat "$dir/monitor.log")
        check "signal VMAcknowledged('vm0', 'prepare')" grep -q "$IFACE.VMAcknowledged ('vm0', 'prepare')" <<<"$mon"
        check "signal PhaseChanged idle -> preparing" grep -q "$IFACE.PhaseChanged ('idle', 'preparing'" <<<"$mon"
        check "signal PhaseChanged preparing -> prepared" grep -q "$IFACE.PhaseChanged ('preparing', 'prepared'" <<<"$mon"
        check "PropertiesChanged with State prepared" grep -q "PropertiesChanged ('$IFACE', {.*'State': <'prepared'>" <<<"$mon"
        check "Progress signals carry the core's messages" grep -q "$IFACE.Progress ('prepared', '', 'every VMM acknowledged prepare')" <<<"$mon"

        # Commit never answers: the machine kexecs. Results so far go to a file for boot 1.
        echo "1..$n" > "$dir/boot0.tap.plan"
        echo "$fail" > "$dir/boot0.fail"
        echo "$n" > "$dir/boot0.n"
        gdbus call --system --timeout=30 -d "$DEST" -o "$OBJ" -m "$IFACE.Commit" "{'force': <false>}" >"$dir/commit.log" 2>&1
        bad "Commit returned instead of rebooting: $(cat "$dir/commit.log")"
        echo "1..$n"
        exit 1
fi

# Boot 1
n=$(cat "$dir/boot0.n" 2>/dev/null || echo 0)
fail=$(cat "$dir/boot0.fail" 2>/dev/null || echo 1)
check "boot 0 ended in the kexec" test -e "$dir/boot0.n"
check "BootIncoming is true after the kexec" test "$(prop BootIncoming)" = true
wait "$vmm_pid"
st=$?
check "restarted VMM reclaimed and verified its RAM and device (exit $st)" test "$st" = 0
check "State back to idle once vm0 is restored" wait_prop State idle
out=$(gdbus call --system -d "$DEST" -o "$OBJ" -m "$IFACE.ListVMs")
check "gdbus ListVMs: vm0 restored and its items handed back ($out)" grep -q "('vm0', uint32 0, false, false, true, uint32 0)" <<<"$out"
last=$(gdbus call --system -d "$DEST" -o "$OBJ" -m org.freedesktop.DBus.Properties.Get "$IFACE" LastUpdate)
note "LastUpdate: $last"
for k in '"id":1' freeze_ms reboot_to_start_ms restore_ms '"vm0"'; do
        check "LastUpdate timeline has $k" grep -q "$k" <<<"$last"
done
err=$(dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IFACE.Finish" string: 2>&1)
check "Finish with nothing waiting: WrongState" grep -q "Error $IFACE.Error.WrongState" <<<"$err"
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
