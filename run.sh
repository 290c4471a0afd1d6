#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The two commands of the README, for a fresh Debian 12 machine:
#   ./run.sh demo   install what is missing, build, run the emulated live update demo
#                   (the daemon and three example VMMs under the LUO kernel emulator)
#   ./run.sh test   install what is missing, build (warnings are errors), run every test suite
#                   twice (plain build, and AddressSanitizer + UBSan with leak detection),
#                   fuzz each parser for 30 s, and print a summary
#
# Root is needed: packages are installed with apt-get, and the LUO kernel emulator
# (tests/emu/luo-emu) uses namespaces and seccomp user notification.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")"

PACKAGES=(
        build-essential clang meson ninja-build pkg-config python3
        clang-14 libclang-rt-14-dev llvm-14
        libsystemd-dev libjson-c-dev libnl-3-dev libnl-genl-3-dev libnl-route-3-dev zlib1g-dev
        util-linux
        dbus libglib2.0-bin systemd polkitd
        debhelper lintian
        cargo rustc librust-libc-dev librust-serde-json-dev
        debootstrap
        # the real-kernel suite: build Linux 7.1 (tests/real-kernel/build-kernel.sh), boot it under QEMU
        bc bison flex libelf-dev libssl-dev cpio xz-utils qemu-system-x86 e2fsprogs
        # the fleet suite: Ansible (tests/fleet, docs/fleet.md)
        ansible-core
)

die() { echo "run.sh: $*" >&2; exit 1; }

need_root() {
        if [ "$(id -u)" -ne 0 ]; then
                if command -v sudo >/dev/null; then
                        exec sudo --preserve-env=CI "$0" "$@"
                fi
                die "must run as root (apt-get, and the kernel emulator needs namespaces and seccomp)"
        fi
}

install_missing() {
        local missing=()
        for p in "${PACKAGES[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
                echo "==> installing: ${missing[*]}"
                DEBIAN_FRONTEND=noninteractive apt-get update -qq
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
}

# promtool (the fleet suite's check of lu-vfioctl metrics) from Debian's prometheus package: only
# the one static binary is taken out of the .deb (apt-get download, dpkg-deb -x) into
# /var/cache/lu-vfiod-test/promtool-<version>, so no Prometheus server is installed or started.
install_promtool() {
        local ver dest tmp
        ver=$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p')
        if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
                DEBIAN_FRONTEND=noninteractive apt-get update -qq
                ver=$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p')
        fi
        [ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "==> no prometheus package: metrics are not checked with promtool"; return 0; }
        dest=/var/cache/lu-vfiod-test/promtool-$ver
        [ -x "$dest/promtool" ] && return 0
        echo "==> extracting promtool from prometheus $ver"
        tmp=$(mktemp -d) && chmod 755 "$tmp"   # apt-get download runs as _apt
        if (cd "$tmp" && apt-get download -qq "prometheus=$ver" >/dev/null && dpkg-deb -x prometheus_*.deb x) &&
           mkdir -p "$dest" && install -m 755 "$tmp/x/usr/bin/promtool" "$dest/promtool"; then
                :
        else
                echo "==> could not extract promtool: metrics are not checked with promtool"
        fi
        rm -rf "$tmp"
}

# build DIR [meson options...]
build() {
        local dir=$1; shift
        if [ -f "$dir/build.ninja" ]; then
                meson configure "$dir" "$@" >/dev/null
        else
                meson setup "$dir" "$@" >/dev/null
        fi
        ninja -C "$dir"
}

# Prints "N passed, N failed, N skipped" for one or more meson build dirs and
# returns non-zero if anything failed.
summarize() {
        python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    try:
        lines = open(f"{d}/meson-logs/testlog.json").read().splitlines()
    except OSError:
        failed += 1
        print(f"no test log in {d}")
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
}

cmd=${1:-}
case "$cmd" in
demo)
        need_root "$@"
        install_missing
        build build -Dwerror=true
        # The real daemon and three example VMMs through one emulated live update.
        exec sh examples/run-demo.sh build
        ;;
test)
        need_root "$@"
        install_missing
        install_promtool
        build build -Dwerror=true
        build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
        rc=0
        # --- package step (debian/, tests/package): the .deb files, built from a copy of
        # the tree into build/deb; the `package` suite of both builds checks them.
        tests/package/build-deb.sh . build/deb || rc=1
        export LU_VFIOD_DEB_DIR=$PWD/build/deb
        # --- end of package step
        # --- realstack step (tests/realstack, docs/realstack.md): the cached Debian 12 rootfs
        # (built once, about a minute) the `realstack` suite boots with the .deb installed.
        tests/realstack/mkrootfs.sh >/dev/null || echo "run.sh: no realstack rootfs (its tests will say why)"
        # --- end of realstack step
        # --- real-kernel step (docs/real-kernel.md): fetch and build the LUO kernel once, cached
        # in /var/cache/lu-vfiod-test/kernel; a failed build fails the suite's tests, a tarball
        # that cannot be had makes them skip.
        echo "==> real-kernel: fetching/building Linux 7.1 (cached after the first run)"
        kstart=$(date +%s)
        tests/real-kernel/build-kernel.sh >/dev/null || echo "==> real-kernel: kernel not available (status $?): the real-kernel tests will say why"
        echo "==> real-kernel: kernel ready after $(( $(date +%s) - kstart )) s"
        # --- end of real-kernel step
        meson test -C build --print-errorlogs --num-processes 2 || rc=1
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                meson test -C build-asan --print-errorlogs --num-processes 2 || rc=1
        # --- fuzz step (tests/fuzz, docs/reliability.md): a bounded libFuzzer run of the
        # protocol, registry and config parsers (30 s each, clang build in build-fuzz).
        tests/fuzz/run-fuzz.sh 30 || rc=1
        # --- end of fuzz step
        summarize build build-asan || rc=1
        exit $rc
        ;;
*)
        echo "usage: $0 demo|test" >&2
        exit 2
        ;;
esac
