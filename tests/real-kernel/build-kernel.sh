#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the kernel of the real-kernel suite once and caches it outside the
# checkout:
#
#   /var/cache/lu-vfiod-test/kernel/<version>-<key>/bzImage
#                                                   config     (the final .config)
#                                                   selftests/ (the kernel's LUO selftests)
#                                                   build.log, build-seconds
#
# <key> is a hash of kernel.config and this script, so a change to either
# builds anew and an unchanged checkout (or CI on the same machine) reuses the
# result. The tarball comes from fetch-kernel.sh.
#
#   build-kernel.sh [CACHE_DIR]    prints the output directory on stdout
#
# Exit 77 when no tarball can be had (fetch-kernel.sh said so); any other
# failure (a build error, an LUO option that did not end up =y) is exit 1.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
cache=${1:-${LU_VFIOD_KERNEL_CACHE:-/var/cache/lu-vfiod-test/kernel}}
jobs=${LU_VFIOD_KERNEL_JOBS:-2}
mkdir -p "$cache"

log() { echo "build-kernel: $*" >&2; }

# One build at a time: run.sh and the suite's tests may all ask at once.
exec 9>"$cache/.lock"
flock 9

rc=0
tarball=$("$here/fetch-kernel.sh" "$cache") || rc=$?
[ $rc -eq 0 ] || exit $rc
ver=$(basename "$tarball" .orig.tar.xz); ver=${ver#linux_}

key=$(cat "$here/kernel.config" "$here/build-kernel.sh" | sha256sum | cut -c1-12)
out=$cache/$ver-$key
if [ -s "$out/bzImage" ] && [ -x "$out/selftests/liveupdate" ]; then
        echo "$out"
        exit 0
fi

for tool in make gcc bc bison flex cpio perl; do
        command -v $tool >/dev/null || { log "missing build tool: $tool (run.sh installs it)"; exit 1; }
done

src=$cache/tree/linux-$ver
if [ ! -f "$src/.extracted" ]; then
        log "extracting $tarball"
        rm -rf "$src"; mkdir -p "$cache/tree"
        tar -C "$cache/tree" -xf "$tarball"
        touch "$src/.extracted"
fi

rm -rf "$out"; mkdir -p "$out"
obj=$out/obj
start=$(date +%s)
log "building Linux $ver in $obj (-j$jobs; log in $out/build.log)"
{
        make -C "$src" O="$obj" tinyconfig
        "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$here/kernel.config"
        make -C "$src" O="$obj" olddefconfig
} >"$out/build.log" 2>&1 || { log "configuring failed; tail of $out/build.log:"; tail -n 30 "$out/build.log" >&2; exit 1; }

# A Kconfig dependency that is not met drops an option silently: every option
# of the fragment's "must be =y" block has to be in the final .config.
missing=0
while read -r opt; do
        grep -qx "$opt" "$obj/.config" || { log "not in the final .config: $opt"; missing=1; }
done < <(sed -n '/^# --- must be =y/,/^# --- end/p' "$here/kernel.config" | grep '^CONFIG_')
grep -q '^CONFIG_DEFERRED_STRUCT_PAGE_INIT=y' "$obj/.config" && { log "DEFERRED_STRUCT_PAGE_INIT is on"; missing=1; }
[ $missing -eq 0 ] || exit 1

make -C "$src" O="$obj" -j"$jobs" bzImage >>"$out/build.log" 2>&1 ||
        { log "kernel build failed; tail of $out/build.log:"; tail -n 30 "$out/build.log" >&2; exit 1; }

# The kernel's own LUO selftests, against this tree's uapi headers, linked
# statically so they run in the initramfs and on the host alike.
make -C "$src" O="$obj" headers >>"$out/build.log" 2>&1 ||
        { log "make headers failed (see $out/build.log)"; exit 1; }
mkdir -p "$out/selftests"
st=$src/tools/testing/selftests/liveupdate
for t in liveupdate luo_kexec_simple luo_multi_session; do
        files=("$st/$t.c")
        [ "$t" = liveupdate ] || files+=("$st/luo_test_utils.c")
        gcc -static -O2 -Wall -D_GNU_SOURCE -isystem "$obj/usr/include" -I "$src/tools/testing/selftests" \
                -I "$st" -o "$out/selftests/$t" "${files[@]}" >>"$out/build.log" 2>&1 ||
                { log "selftest $t failed to build (see $out/build.log)"; exit 1; }
done

cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp"
cp "$obj/.config" "$out/config"
echo $(( $(date +%s) - start )) >"$out/build-seconds"
mv "$out/bzImage.tmp" "$out/bzImage"
# Builds of older fragments of the same version are of no use any more.
for old in "$cache/$ver"-*; do
        [ "$old" = "$out" ] || rm -rf "$old"
done
# Only the image, the config and the selftests are needed later.
rm -rf "$obj"
log "built in $(cat "$out/build-seconds") s: $out/bzImage"
echo "$out"
