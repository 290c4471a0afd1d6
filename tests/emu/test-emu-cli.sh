#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# luo-emu command-line behaviour: exit status of COMMAND, power-off, usage errors,
# the "must run as root" refusal, SIGTERM shutdown, LUO disabled by the command line,
# /proc/cmdline and boot_id through the trap, systemd-shutdown's restart as the kexec.
# Usage: test-emu-cli.sh LUO_EMU
emu="$1"
n=0
fail=0

check() {
        n=$((n + 1))
        if [ "$1" = "$2" ]; then
                echo "ok $n - $3"
        else
                echo "not ok $n - $3 (expected $2, got $1)"
                fail=1
        fi
}

"$emu" -- sh -c 'exit 7' 2>/dev/null
check "$?" 7 "exit status of COMMAND"

"$emu" -- sh -c 'echo $LUO_EMU_BOOT' >"${TMPDIR:-/tmp}/emu-cli.$$" 2>/dev/null
check "$(cat "${TMPDIR:-/tmp}/emu-cli.$$")" 0 "LUO_EMU_BOOT=0 on the first boot"
rm -f "${TMPDIR:-/tmp}/emu-cli.$$"

"$emu" -- sh -c 'test ! -e /dev/liveupdate' 2>/dev/null
check "$?" 1 "/dev/liveupdate exists with the default command line"

"$emu" --cmdline="root=/dev/vda liveupdate=on" -- sh -c 'test ! -e /dev/liveupdate && grep -qx "root=/dev/vda liveupdate=on" /proc/cmdline' 2>/dev/null
check "$?" 0 "without kho=on there is no /dev/liveupdate; /proc/cmdline is the emulated one"

"$emu" -- sh -c 'ls /proc | grep -qx 1 && test "$$" = 1' 2>/dev/null
check "$?" 0 "COMMAND is PID 1 of its own PID namespace"

"$emu" --abi=bogus -- true 2>/dev/null
check "$?" 2 "bad option: usage error, exit 2"

"$emu" --kernel=7.3 -- true 2>/dev/null
check "$?" 2 "--kernel=7.3: usage error, exit 2"

"$emu" --abi=v4 --kernel=7.2 -- true 2>/dev/null
check "$?" 2 "--kernel= with --abi=v4: usage error, exit 2"

"$emu" -- sh -c 'test "$LUO_EMU_KERNEL" = 7.1' 2>/dev/null
check "$?" 0 "the default kernel model is 7.1 (LUO_EMU_KERNEL)"

"$emu" --kernel=7.2 -- sh -c 'test "$LUO_EMU_KERNEL" = 7.2' 2>/dev/null
check "$?" 0 "--kernel=7.2 is told to COMMAND (LUO_EMU_KERNEL)"

"$emu" 2>/dev/null
check "$?" 2 "no COMMAND: usage error, exit 2"

"$emu" --help >/dev/null 2>&1
check "$?" 0 "--help"

if command -v setpriv >/dev/null 2>&1; then
        msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$emu" -- true 2>&1)
        rc=$?
        check "$rc" 1 "not root: exit 1"
        case "$msg" in
        *"luo-emu: must run as root"*) check 1 1 "not root: says so" ;;
        *) check "$msg" "luo-emu: must run as root..." "not root: says so" ;;
        esac
else
        echo "ok $((n + 1)) - # SKIP setpriv not installed"
        n=$((n + 1))
fi

if command -v setpriv >/dev/null 2>&1; then
        "$emu" -- sh -c 'setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "exec 3<>/dev/liveupdate"' 2>/dev/null
        check "$?" 2 "a non-root process cannot open the 0600 /dev/liveupdate (EACCES)"
        "$emu" -- sh -c 'chmod 666 /dev/liveupdate && setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "exec 3<>/dev/liveupdate"' 2>/dev/null
        check "$?" 0 "node permissions decide: after chmod 666 it can"
        out=$("$emu" -- setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all /usr/bin/python3 -c 'import ctypes, os; l = ctypes.CDLL(None, use_errno=True); r = l.syscall(169, 0xfee1dead, 672274793, 0x45584543, 0); print(r, ctypes.get_errno())' 2>/dev/null)
        check "$out" "-1 1" "reboot() without CAP_SYS_BOOT is EPERM"
fi

# A power-off from inside ends the emulation with status 0.
"$emu" -- /usr/bin/python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); l.syscall(169, 0xfee1dead, 672274793, 0x4321fedc, 0); import time; time.sleep(5); raise SystemExit(9)' 2>/dev/null
check "$?" 0 "reboot(POWER_OFF) ends the machine with status 0"

# SIGTERM to luo-emu: clean shutdown, 128+15.
"$emu" -- sleep 30 2>/dev/null &
pid=$!
sleep 0.5
kill -TERM "$pid"
wait "$pid"
check "$?" 143 "SIGTERM shuts the machine down (exit 143)"

# /proc/cmdline and boot_id come from the trap: a fresh procfs (as a unit with ProtectProc=
# gets) shows the emulated command line, and every boot has its own boot_id.
"$emu" --cmdline="root=/dev/vda liveupdate=on kho=on fresh=1" -- unshare -m -p -f --mount-proc \
        sh -c 'grep -qx "root=/dev/vda liveupdate=on kho=on fresh=1" /proc/cmdline' 2>/dev/null
check "$?" 0 "a fresh procfs inside the machine shows the emulated /proc/cmdline"
b1=$("$emu" -- cat /proc/sys/kernel/random/boot_id 2>/dev/null)
b2=$("$emu" -- cat /proc/sys/kernel/random/boot_id 2>/dev/null)
echo "$b1" | grep -qxE '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
check "$?" 0 "boot_id is a version 4 UUID ($b1)"
check "$([ "$b1" != "$(cat /proc/sys/kernel/random/boot_id)" ] && [ "$b1" != "$b2" ] && echo differs)" differs \
        "boot_id is the emulated boot's: not the host's, new for every machine"

# systemd-shutdown's "kexec" verb ends in reboot(RESTART) in a container: with an image loaded
# that is the kexec (next boot, new boot_id); any other restart ends the emulation.
d=$(mktemp -d)
{ head -c 514 /dev/zero; printf HdrS; head -c 3578 /dev/zero; } >"$d/vmlinuz"
cat >"$d/kexec" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
boot = os.environ["LUO_EMU_BOOT"]
with open(os.path.join(sys.argv[1], "boot" + boot), "w") as f:
    f.write(open("/proc/sys/kernel/random/boot_id").read())
if boot == "0":
    k = os.open(os.path.join(sys.argv[1], "vmlinuz"), os.O_RDONLY)
    cl = b"liveupdate=on kho=on\0"
    if libc.syscall(L(320), L(k), L(-1), L(len(cl)), ctypes.c_char_p(cl), L(4)) != 0:
        sys.exit(10)
    libc.syscall(L(169), L(0xfee1dead), L(672274793), L(0x01234567), L(0))
    sys.exit(11)
PY
"$emu" -- bash -c "cd '$d' && exec -a /lib/systemd/systemd-shutdown /usr/bin/python3 kexec '$d'" 2>/dev/null
st=$?
check "$st/$([ -s "$d/boot1" ] && ! cmp -s "$d/boot0" "$d/boot1" && echo booted)" 0/booted \
        "systemd-shutdown's reboot(RESTART) with an image loaded is the kexec (boot 1, its own boot_id)"
rm -f "$d/boot0" "$d/boot1"
"$emu" -- bash -c "cd '$d' && exec -a /usr/bin/other /usr/bin/python3 kexec '$d'" 2>/dev/null
st=$?
check "$st/$([ -e "$d/boot1" ] && echo booted)" 0/ "any other reboot(RESTART) ends the emulation (no boot 1)"
rm -rf "$d"

left=$(ls -d /tmp/luo-emu.* 2>/dev/null | wc -l)
echo "# leftover temp dirs (any luo-emu instance): $left"

echo "1..$n"
exit $fail
