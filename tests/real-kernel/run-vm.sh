#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One test of the real-kernel suite: boots the LUO kernel (build-kernel.sh) under QEMU
# (TCG) with an initramfs of rk-init (pid 1), lu-vfiod, the VMMs, the kernel's LUO
# selftests and their shared libraries, lets rk-init run SCENARIO across its kexecs,
# and checks the console log.
#
#   run-vm.sh SCENARIO BOOTS BUILD_DIR RK_INIT LU_VFIOD EXAMPLE_VMM RK_VMM [EXTRA_CMDLINE]
#
# BOOTS is how many kernels must have booted (1 + the number of kexecs), or "any".
# Exit 0 when the last boot printed "rk[SCENARIO boot BOOTS-1]: PASSED" (any boot's
# PASSED for "any"), every boot after the first found the handed-over KHO and LUO data
# (not checked for "any": some conformance boots have LUO off on purpose), and no line
# says FAIL; 77 (skip) only when QEMU or the kernel tarball cannot be had; 1 otherwise.
# The conformance scenario also gets the raw conformance programs of BUILD_DIR and a
# small ext2 disk (what they keep across a kexec).
set -euo pipefail

scenario=$1 boots=$2 build=$3 rk_init=$4 daemon=$5 example_vmm=$6 rk_vmm=$7 extra=${8:-}
here=$(dirname "$(readlink -f "$0")")
out=$build/real-kernel/$scenario
timeout_s=${LU_VFIOD_RK_TIMEOUT:-1500}

qemu=$(command -v qemu-system-x86_64 || true)
if [ -z "$qemu" ]; then
        echo "SKIP: qemu-system-x86_64 not installed (Debian: qemu-system-x86; ./run.sh installs it)"
        exit 77
fi
rc=0
kdir=$("$here/build-kernel.sh") || rc=$?
if [ $rc -eq 77 ]; then
        echo "SKIP: the Linux 7.1 tarball cannot be had (tests/real-kernel/fetch-kernel.sh)"
        exit 77
elif [ $rc -ne 0 ]; then
        echo "FAIL: building the kernel failed (tests/real-kernel/build-kernel.sh)"
        exit 1
fi

# --- the initramfs
root=$out/root
rm -rf "$out"; mkdir -p "$root"/{bin,boot,selftests,dev,proc,sys,run,tmp}
install -m 0755 "$rk_init" "$root/init"
ln -s ../init "$root/bin/rk-init"
install -m 0755 "$daemon" "$root/bin/lu-vfiod"
install -m 0755 "$example_vmm" "$root/bin/example-vmm"
install -m 0755 "$rk_vmm" "$root/bin/rk-vmm"
install -m 0644 "$kdir/bzImage" "$root/boot/bzImage"
# Its .config beside it as config-RELEASE (the directory is RELEASE-KEY), as distributions
# install it: what the daemon's pre-flight reads of an xz-compressed image.
rel=$(basename "$kdir"); install -m 0644 "$kdir/config" "$root/boot/config-${rel%-*}"
install -m 0755 "$kdir"/selftests/* "$root/selftests/"
drive=()
if [ "$scenario" = conformance ] || [ "$scenario" = bench ]; then
        mkdir -p "$root/conformance"
        for prog in "$build"/tests/conformance/conf-raw-*; do
                [ -f "$prog" ] && [ -x "$prog" ] && install -m 0755 "$prog" "$root/conformance/"
        done
        truncate -s 32M "$out/disk.img"
        mkfs.ext2 -q -F "$out/disk.img"
        drive=(-drive "file=$out/disk.img,format=raw,if=virtio")
fi
# shared libraries (and the dynamic loader) of everything dynamically linked, at their paths
for bin in "$root/init" "$root"/bin/* "$root"/conformance/*; do
        [ -L "$bin" ] && continue
        ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true
done | sort -u | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
done
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out/initrd.cpio"

# --- the machine
log=$out/console.log
cmdline="console=ttyS0 no_timer_check kho=on liveupdate=on retain_initrd panic=-1 rk.scenario=$scenario rk.boot=0 $extra"
echo "booting Linux $(basename "$kdir") under QEMU (TCG): $cmdline"
echo "console log: $log"
start=$(date +%s)
timeout --kill-after=10 "$timeout_s" "$qemu" -machine pc -cpu max -smp 1 -m 2048 \
        -display none -monitor none -serial "file:$log" -no-reboot \
        "${drive[@]}" -kernel "$kdir/bzImage" -initrd "$out/initrd.cpio" -append "$cmdline" || qrc=$?
echo "QEMU ended after $(( $(date +%s) - start )) s (status ${qrc:-0})"

# --- the verdict, from the console log
fail=0
check() {   # check DESCRIPTION COMMAND...
        if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}
grep -a -E '^(rk|e2e|example-vmm|rk-vmm|lu-vfiod: (ERROR|WARNING)|not ok|Bail out|BENCH)' "$log" | sed -E 's/\r$//' | tail -n 400 || true
n=$(grep -a -c 'Linux version' "$log" || true)
if [ "$boots" = any ]; then
        echo "$n kernel(s) booted"
        check "the last boot passed" grep -a -q "^rk\[$scenario boot [0-9]*\]: PASSED" "$log"
else
        check "$boots kernel(s) booted (saw $n)" test "$n" -eq "$boots"
        for ((b = 1; b < boots; b++)); do
                check "boot $b found the KHO data and LUO's incoming state" \
                        grep -a -q "liveupdate number: $b" "$log"
        done
        check "the last boot passed" grep -a -q "^rk\[$scenario boot $((boots - 1))\]: PASSED" "$log"
fi
check "no check failed" bash -c "! grep -a -E '^rk\[.*(FAIL|BAIL)|^not ok|^Bail out' '$log' | grep -a -q -v '# TODO'"
check "no kernel oops, BUG or panic" bash -c "! grep -a -q -E 'Oops|BUG:|Kernel panic|WARNING: CPU' '$log'"
exit $fail
