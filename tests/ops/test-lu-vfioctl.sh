#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# lu-vfioctl against the daemon under luo-emu (run as luo-emu's COMMAND):
#   test-lu-vfioctl.sh LU_VFIOD EXAMPLE_VMM POLICY_FILE LU_VFIOCTL ACTIVATION_FILE    ($OPS_DIR)
# Boot 0: exit codes (and JSON errors) with no bus, with a bus whose activation of the
# stopped daemon fails, usage errors; status/list/show as tables and --json, prepare
# with live per-VM progress, cancel, prepare again, commit (kexec). Boot 1: status,
# last-update.
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 ctl=$4 activation=$5
dir=${OPS_DIR:?} boot=${LUO_EMU_BOOT:?}
. "$(dirname "$0")/dbus-lib.sh"

jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }

if [ "$boot" = 0 ]; then
        rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
        printf '[Update]\nPrepareTimeoutSec=10\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=5\n' > "$dir/lu-vfiod.conf"
        kernel_image "$dir/vmlinuz-next"
fi
ctl=$(stage_for_nobody "$ctl") || bail "cannot stage lu-vfioctl for uid nobody"

# Before anything runs: usage errors and an unreachable daemon have their own exit codes.
if [ "$boot" = 0 ]; then
        DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/nobus.sock "$ctl" status >/dev/null 2>&1
        check "no bus: exit 9" test $? = 9
        "$ctl" frobnicate >/dev/null 2>&1
        check "unknown command: exit 2" test $? = 2
        "$ctl" show >/dev/null 2>&1
        check "show without a VM: exit 2" test $? = 2
        "$ctl" --force status >/dev/null 2>&1
        check "--force outside commit: exit 2" test $? = 2
        "$ctl" --timeout=-1 prepare /x >/dev/null 2>&1
        check "bad --timeout: exit 2" test $? = 2

        # --json: every error is a JSON object on stdout too, usage errors and a missing bus included.
        out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/nobus.sock "$ctl" --json status 2>/dev/null); st=$?
        check "no bus --json: exit 9 and an error object with exit 9 ($out)" \
                jq_py "$st == 9 and d['exit'] == 9 and 'system bus' in d['message']" <<<"$out"
        out=$("$ctl" --json frobnicate 2>/dev/null); st=$?
        check "unknown command --json: exit 2, error \"usage\" naming it ($out)" \
                jq_py "$st == 2 and d['error'] == 'usage' and d['exit'] == 2 and 'frobnicate' in d['message']" <<<"$out"
        out=$("$ctl" --json --timeout=-1 prepare /x 2>/dev/null); st=$?
        check "bad option value --json: a usage error object ($out)" \
                jq_py "$st == 2 and d['error'] == 'usage' and '--timeout' in d['message']" <<<"$out"
        out=$("$ctl" --json --no-such-option status 2>/dev/null); st=$?
        check "unknown option --json: a usage error object ($out)" \
                jq_py "$st == 2 and d['error'] == 'usage' and '--no-such-option' in d['message']" <<<"$out"

        # A bus that knows the shipped activation file but cannot start the daemon (no
        # systemd: Exec=/bin/false, or the launch helper refuses): "cannot be reached", 9.
        mkdir -p "$dir/act/services" && cp "$activation" "$dir/act/services/"
        bus_start "$dir/act" "$policy"
        out=$("$ctl" --json status 2>"$dir/act/stderr"); st=$?
        note "activation: $out $(cat "$dir/act/stderr")"
        check "stopped daemon, activation fails: exit 9, not 1" test "$st" = 9
        check "... the error is the bus's activation failure" jq_py 'd["error"].startswith("org.freedesktop.DBus.Error.Spawn.") and d["exit"]==9' <<<"$out"
        kill "$BUS_PID" 2>/dev/null
fi

bus_start "$dir" "$policy"
if [ "$boot" = 0 ]; then
        "$ctl" status >/dev/null 2>&1
        check "bus up, daemon not yet: exit 9" test $? = 9
fi
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon-$boot.log" &
daemon_pid=$!
wait_name || bail "lu-vfiod did not take $DEST"
pids=()
for i in 0 1; do
        rm -f "$dir/vm$i.ready"
        "$vmm" --socket="$dir/vmm.sock" --vm=vm$i --vfio=/dev/vfio/devices/vfio$i --ready-file="$dir/vm$i.ready" \
                --state-file="$dir/vm$i.state" >>"$dir/vmm-$boot.log" 2>&1 &
        pids+=($!)
done

if [ "$boot" = 0 ]; then
        for _ in $(seq 200); do [ -e "$dir/vm0.ready" ] && [ -e "$dir/vm1.ready" ] && break; sleep 0.05; done
        check "two VMMs handed everything over" test -e "$dir/vm0.ready" -a -e "$dir/vm1.ready"

        out=$("$ctl" status); note "$out"
        check "status: State idle" grep -q "^State: *idle$" <<<"$out"
        check "status: 2 VMs, 2 connected" grep -q "^VMs: *2 (2 connected)$" <<<"$out"
        out=$("$ctl" --json status)
        check "status --json parses, state idle, 2 VMs" jq_py 'd["schema"]==1 and d["state"]=="idle" and d["vms"]==2 and d["connected"]==2' <<<"$out"

        out=$("$ctl" list); note "$out"
        check "list: header" grep -qE "^VM +UID +CONNECTED +INCOMING +RESTORED +ITEMS$" <<<"$out"
        check "list: vm0 and vm1 rows" test "$(grep -cE '^vm[01] +0 +yes +no +no +2$' <<<"$out")" = 2
        # aligned: every row has its second column at the same offset
        check "list: columns aligned" test "$(awk '{ match($0, /^[^ ]+ +[^ ]+ +/); print RLENGTH }' <<<"$out" | sort -u | wc -l)" = 1
        out=$("$ctl" --json list)
        check "list --json: 2 VMs with 2 items each" jq_py 'd["schema"]==1 and len(d["vms"])==2 and all(v["items"]==2 for v in d["vms"])' <<<"$out"

        out=$("$ctl" show vm1); note "$out"
        check "show: header" grep -qE "^LABEL +KIND +PCI +STATE +SESSION +TOKEN +MODE$" <<<"$out"
        check "show: the VFIO device with its PCI address" grep -qE ' vfio +[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] +preserved +.* custodian$' <<<"$out"
        check "show: the memfd" grep -qE ' memfd +- +preserved ' <<<"$out"
        out=$("$ctl" --json show vm1)
        check "show --json: 2 devices of vm1" jq_py 'd["schema"]==1 and d["vm"]=="vm1" and len(d["devices"])==2' <<<"$out"
        "$ctl" show nosuchvm >/dev/null 2>&1
        check "show of an unknown VM: exit 10" test $? = 10

        # A delegated VM holds no file the daemon knows of, only its session: show and list say so.
        python3 - "$dir/vmm.sock" "$dir/vm2" <<'PY' 2>>"$dir/vm2.log" &
import array, json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
def call(req):
    s.send(json.dumps(req).encode())
    msg, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
    for _, _, data in anc:
        for fd in array.array("i", data[: len(data) - len(data) % 4]):
            os.close(fd)
    return json.loads(msg)
assert "result" in call({"id": 1, "method": "hello", "version": 1, "vm": "vm2"})
assert "result" in call({"id": 2, "method": "session"})
open(sys.argv[2] + ".ready", "w").close()
for _ in range(400):
    if os.path.exists(sys.argv[2] + ".go"):
        break
    time.sleep(0.05)
assert "result" in call({"id": 3, "method": "forget"})
PY
        deleg_pid=$!
        for _ in $(seq 200); do [ -e "$dir/vm2.ready" ] && break; sleep 0.05; done
        out=$("$ctl" show vm2); note "$out"
        check "show of a delegated VM: its session, kind session, mode delegated" grep -qE '^- +session +- +preserved +luvf:vm2:[0-9]+ +- +delegated$' <<<"$out"
        out=$("$ctl" --json show vm2)
        check "show --json of a delegated VM: one session row" jq_py 'len(d["devices"])==1 and d["devices"][0]["kind"]=="session" and d["devices"][0]["mode"]=="delegated" and d["devices"][0]["label"] is None' <<<"$out"
        check "list: the delegated VM holds 1 item" grep -qE '^vm2 +0 +yes +no +no +1$' <<<"$("$ctl" list)"
        touch "$dir/vm2.go"
        wait "$deleg_pid"
        check "the delegated VM forgot its session" test $? = 0

        "$ctl" cancel >/dev/null 2>&1
        check "cancel while idle: exit 4" test $? = 4
        "$ctl" prepare "$dir/missing" >/dev/null 2>&1
        check "prepare of a missing kernel: exit 5" test $? = 5
        as_nobody "$ctl" --no-ask-password cancel >/dev/null 2>&1
        check "cancel as an unprivileged user: exit 3" test $? = 3
        out=$(as_nobody "$ctl" --json --no-ask-password prepare "$dir/vmlinuz-next" 2>/dev/null)
        check "unprivileged prepare --json names AccessDenied" jq_py 'd["schema"]==1 and d["error"]=="org.freedesktop.DBus.Error.AccessDenied" and d["exit"]==3' <<<"$out"

        # The next kernel's own pre-flight (issue 15): configuration beside the image, command line.
        kernel_image "$dir/vmlinuz-nolu"
        printf 'CONFIG_KEXEC_HANDOVER=y\n# CONFIG_LIVEUPDATE is not set\nCONFIG_LIVEUPDATE_MEMFD=y\nCONFIG_VFIO_PCI_LIVEUPDATE=y\n' >"$dir/config-nolu"
        kernel_image "$dir/vmlinuz-good"
        printf 'CONFIG_KEXEC_HANDOVER=y\nCONFIG_LIVEUPDATE=y\nCONFIG_LIVEUPDATE_MEMFD=y\nCONFIG_VFIO_PCI_LIVEUPDATE=y\n' >"$dir/config-good"
        out=$("$ctl" prepare --cmdline="root=/dev/vda kho=on" "$dir/vmlinuz-good" 2>&1); st=$?; note "$out"
        check "next command line without liveupdate=on: exit 5 naming it" bash -c '[ "$0" = 5 ] && grep -q "next kernel command line lacks liveupdate=on$" <<<"$1"' "$st" "$out"
        out=$("$ctl" prepare "$dir/vmlinuz-nolu" 2>&1); st=$?; note "$out"
        check "config-nolu without CONFIG_LIVEUPDATE: exit 5 naming the check" bash -c '[ "$0" = 5 ] && grep -q "pre-flight next-config:CONFIG_LIVEUPDATE failed: the next kernel is built without CONFIG_LIVEUPDATE" <<<"$1"' "$st" "$out"
        out=$("$ctl" --json prepare "$dir/vmlinuz-nolu" 2>/dev/null)
        check "... over --json: PreconditionFailed, exit 5" jq_py 'd["error"]=="org.luvfiod.LiveUpdate1.Error.PreconditionFailed" and d["exit"]==5 and "CONFIG_LIVEUPDATE" in d["message"]' <<<"$out"
        check "... nothing loaded, still idle" bash -c 'test "$(cat /sys/kernel/kexec_loaded)" = 0 && grep -q "^State: *idle$" <<<"$("$0" status)"' "$ctl"

        out=$("$ctl" prepare --check "$dir/vmlinuz-nolu"); st=$?; note "$out"
        check "prepare --check of vmlinuz-nolu: exit 5" test "$st" = 5
        check "prepare --check: the failed check marked as refusing" grep -qE "^fail +next-config:CONFIG_LIVEUPDATE +the next kernel is built without CONFIG_LIVEUPDATE .*config-nolu\).* \[refuses\]$" <<<"$out"
        check "prepare --check: the other config options pass" test "$(grep -cE "^pass +next-config:CONFIG_(KEXEC_HANDOVER|LIVEUPDATE_MEMFD|VFIO_PCI_LIVEUPDATE) " <<<"$out")" = 3
        check "prepare --check: a line per check, orchestrator to signature" bash -c 'for c in update-state orchestrator previous-update running-cmdline next-cmdline kexec-mode vm-state kernel-file initrd-file next-version next-signature; do grep -qE "^[a-z]+ +$c " <<<"$0" || exit 1; done' "$out"
        check "prepare --check: a fake image has no version: unknown, not refusing" grep -qE "^unknown +next-version +the image has no version string$" <<<"$out"
        check "prepare --check: the verdict names the check" grep -q "^Prepare would be refused (precondition-failed): next-config:CONFIG_LIVEUPDATE\.$" <<<"$out"
        out=$("$ctl" prepare --check --force "$dir/vmlinuz-nolu"); st=$?; note "$out"
        check "prepare --check --force: exit 0, the failure shown but not refusing" bash -c '[ "$0" = 0 ] && grep -qE "^fail +next-config:CONFIG_LIVEUPDATE .*[^]]$" <<<"$1" && grep -q "^Prepare would go ahead" <<<"$1"' "$st" "$out"
        out=$("$ctl" --json prepare --check --cmdline="root=/dev/vda liveupdate=on kho=on" "$dir/vmlinuz-good"); st=$?; note "$out"
        check "prepare --check --json of vmlinuz-good: exit 0, refused_by null, every config option passes" \
                jq_py "$st == 0 and d['schema'] == 1 and d['refused_by'] is None and len([c for c in d['checks'] if c['check'].startswith('next-config:') and c['result'] == 'pass']) == 4 and not any(c['refuses'] for c in d['checks'])" <<<"$out"
        kernel_image "$dir/vmlinuz-khodef"
        { cat "$dir/config-good"; echo CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y; } >"$dir/config-khodef"
        out=$("$ctl" prepare --check --cmdline="root=/dev/vda liveupdate=on" "$dir/vmlinuz-khodef"); st=$?; note "$out"
        check "CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT: no kho=on needed" bash -c '[ "$0" = 0 ] && grep -qE "^pass +next-cmdline +liveupdate=on kho=on \(KHO on by CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT\)$" <<<"$1"' "$st" "$out"
        out=$("$ctl" prepare --check --cmdline="root=/dev/vda liveupdate=on kho=off" "$dir/vmlinuz-khodef"); st=$?; note "$out"
        check "... but kho=off still refuses" bash -c '[ "$0" = 5 ] && grep -qE "^fail +next-cmdline +next kernel command line lacks kho=on \(kho=off overrides" <<<"$1"' "$st" "$out"
        out=$("$ctl" --json prepare --check "$dir/missing" 2>/dev/null); st=$?
        check "prepare --check of a missing kernel: exit 5" test "$st" = 5
        out=$(as_nobody "$ctl" --json --no-ask-password prepare --check "$dir/vmlinuz-good" 2>/dev/null)
        check "unprivileged prepare --check: AccessDenied (the prepare action)" jq_py 'd["error"]=="org.freedesktop.DBus.Error.AccessDenied" and d["exit"]==3' <<<"$out"
        "$ctl" --check status >/dev/null 2>&1
        check "--check outside prepare: exit 2" test $? = 2
        check "prepare --check loaded nothing and told no VMM: idle, update 0, kexec_loaded 0" \
                bash -c 'test "$(cat /sys/kernel/kexec_loaded)" = 0 && grep -q "^State: *idle$" <<<"$("$0" status)" && test "$1" = 0' "$ctl" "$(prop UpdateId)"
        out=$(busctl --system call "$DEST" "$OBJ" "$IFACE" CheckPrepare "sssa{sv}" "$dir/vmlinuz-good" "" "" 1 timeout-ms t 5 2>&1)
        check "CheckPrepare refuses timeout-ms ($out)" grep -q "unknown option" <<<"$out"

        # "$dir/missing" is a path realpath(3) accepts (the directory exists): the daemon refuses it.
        out=$(busctl --system call "$DEST" "$OBJ" "$IFACE" Prepare "sssa{sv}" "$dir/missing" "" "" 1 force b true 2>&1)
        check "force does not skip the other checks: a missing kernel is still refused ($out)" grep -q "PreconditionFailed\|kernel image .*missing: No such file" <<<"$out"
        out=$("$ctl" prepare --force --timeout=10 "$dir/vmlinuz-nolu"); st=$?; note "$out"
        check "prepare --force past the next-kernel check: exit 0, update 1 prepared" bash -c '[ "$0" = 0 ] && grep -q "^Update 1 prepared" <<<"$1"' "$st" "$out"
        check "... the daemon logged what it was forced past" grep -q "forced past the failed pre-flight check next-config:CONFIG_LIVEUPDATE" "$dir/daemon-$boot.log"
        check "... the update records forced" grep -qE 'forced\\?": ?true' <<<"$(prop CurrentUpdate)"
        "$ctl" cancel >/dev/null 2>&1
        check "... cancelled: idle" grep -q "^State: *idle$" <<<"$("$ctl" status)"

        out=$("$ctl" prepare --timeout=10 --reuse-cmdline "$dir/vmlinuz-next"); st=$?; note "$out"
        check "prepare: exit 0" test $st = 0
        check "prepare: live per-VM progress [1/2] and [2/2]" bash -c 'grep -qE "^  \[1/2\] vm[01] acknowledged prepare$" <<<"$0" && grep -qE "^  \[2/2\] vm[01] acknowledged prepare$" <<<"$0"' "$out"
        check "prepare: update 2 prepared" grep -q "^Update 2 prepared" <<<"$out"
        check "status after prepare: prepared" grep -q "^State: *prepared$" <<<"$("$ctl" status)"
        "$ctl" prepare "$dir/vmlinuz-next" >/dev/null 2>&1
        check "prepare while prepared: exit 4" test $? = 4
        out=$("$ctl" cancel); st=$?
        check "cancel: exit 0" test $st = 0
        check "status after cancel: idle" grep -q "^State: *idle$" <<<"$("$ctl" status)"
        out=$("$ctl" last-update); note "$out"
        check "last-update shows the cancelled update" grep -q "^Result: *cancelled$" <<<"$out"

        # VMMs resumed after the cancel and stay connected for another try.
        check "VMMs still connected" test "$(prop ConnectedVMCount)" = 2
        out=$("$ctl" --json prepare --cmdline="root=/dev/vda liveupdate=on kho=on" "$dir/vmlinuz-next"); st=$?
        check "prepare --json: exit 0" test $st = 0
        check "prepare --json: progress lines then the result" bash -c '
                python3 -c "
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
acks = [l for l in lines if l.get(\"event\") == \"progress\" and l[\"message\"] == \"acknowledged prepare\"]
sys.exit(0 if len(acks) == 2 and all(l[\"schema\"] == 1 for l in lines) and lines[-1] == {\"state\": \"prepared\", \"update\": 3, \"schema\": 1} else 1)" "$0"' "$out"
        note "$out"
        echo "$fail" > "$dir/boot0.fail"
        echo "$n" > "$dir/boot0.n"
        "$ctl" commit > "$dir/commit.out" 2>&1
        bad "commit returned instead of rebooting: $(cat "$dir/commit.out")"
        echo "1..$n"
        exit 1
fi

n=$(cat "$dir/boot0.n" 2>/dev/null || echo 0)
fail=$(cat "$dir/boot0.fail" 2>/dev/null || echo 1)
check "boot 0 ended in the kexec" test -e "$dir/boot0.n"
out=$("$ctl" status); note "$out"
check "status: this boot came in with a live update" grep -q "^This boot: *came in with a live update$" <<<"$out"
for p in "${pids[@]}"; do wait "$p"; check "restarted VMM restored its VM (exit $?)" test $? = 0; done
check "back to idle" wait_prop State idle
out=$("$ctl" last-update); note "$out"
check "last-update: update 3" grep -q "^Update: *3$" <<<"$out"
check "last-update: freeze and restore durations" bash -c 'grep -qE "^freeze \(commit->registry\) +[0-9.]+ ms$" <<<"$0" && grep -qE "^restore \(all VMs\) +[0-9.]+ ms$" <<<"$0"' "$out"
check "last-update: per-VM table" bash -c 'grep -qE "^VM +RECLAIMED_MS +RESTORED_MS$" <<<"$0" && grep -qE "^vm1 +[0-9.]+ +[0-9.]+$" <<<"$0"' "$out"
out=$("$ctl" --json last-update)
check "last-update --json: restore_ms and both VMs" jq_py 'd["schema"]==1 and "restore_ms" in d and set(d["vms"])=={"vm0","vm1"}' <<<"$out"
out=$("$ctl" list); note "$out"
check "list after the restore: both VMs restored" bash -c 'grep -qE "^vm0 +[0-9]+ +no +no +yes +0$" <<<"$0" && grep -qE "^vm1 +[0-9]+ +no +no +yes +0$" <<<"$0"' "$out"
# A restart later in this boot (a crash, a package upgrade) still knows which VMs the update restored.
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
for _ in $(seq 200); do busctl --system status "$DEST" >/dev/null 2>&1 || break; sleep 0.05; done
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon-$boot.log" &
daemon_pid=$!
wait_name || bail "the restarted lu-vfiod did not take $DEST"
out=$("$ctl" list); note "$out"
check "list after a restart in the same boot: both VMs still restored" bash -c 'grep -qE "^vm0 +[0-9]+ +no +no +yes +0$" <<<"$0" && grep -qE "^vm1 +[0-9]+ +no +no +yes +0$" <<<"$0"' "$out"
check "last-update after the restart: the update, done in this boot" jq_py 'd["result"]=="done" and len(d["boot_id"])==32' <<<"$("$ctl" --json last-update)"
"$ctl" finish >/dev/null 2>&1
check "finish with nothing waiting: exit 4" test $? = 4
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
