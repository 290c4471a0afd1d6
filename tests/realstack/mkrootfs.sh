#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build (or reuse) the realstack test machine's base rootfs: Debian 12 minbase plus the real host
# stack (systemd, dbus, polkitd) from Debian's packages only, from the mirror this machine's apt uses.
# The result is cached outside the checkout, keyed by the package list and this script, so a fresh
# clone builds it once and later runs (CI on the same machine) reuse it. Prints the rootfs path.
#
#   mkrootfs.sh [CACHE_DIR]     (default /var/cache/lu-vfiod-test/rootfs)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-/var/cache/lu-vfiod-test/rootfs}
key=$(cat "$here/packages.txt" "$here/mkrootfs.sh" | sha256sum | cut -c1-16)
dest="$cache/$key"

if [ -e "$dest/.complete" ]; then
        echo "$dest"
        exit 0
fi
if [ "$(id -u)" != 0 ]; then
        echo "mkrootfs: building the rootfs needs root (debootstrap)" >&2
        exit 77
fi
if ! command -v debootstrap >/dev/null; then
        echo "mkrootfs: debootstrap is not installed (apt-get install debootstrap)" >&2
        exit 77
fi

# The mirror this machine's apt uses for bookworm (deb822 or one-line sources), else Debian's default.
mirror=$(grep -hs -A3 '^URIs:' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
         awk '/^URIs:/ {u=$2} /^Suites:.*bookworm( |$)/ && u {print u; exit}' || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

pkgs=$(grep -v '^#' "$here/packages.txt" | grep -v '^$' | paste -sd, -)
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "mkrootfs: debootstrap bookworm from $mirror into $tmp (packages: $pkgs)" >&2
debootstrap --variant=minbase --include="$pkgs" bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
        tail -n 30 "$tmp/debootstrap.log" >&2
        echo "mkrootfs: debootstrap failed (log above)" >&2
        exit 1
}

root="$tmp/root"
# A machine without a login console: the test talks to it through the shared directory.
for u in console-getty.service getty@tty1.service serial-getty@console.service \
         systemd-logind.service.d systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
         e2scrub_all.timer fstrim.timer; do
        case "$u" in *.d) continue ;; esac
        ln -sf /dev/null "$root/etc/systemd/system/$u"
done
echo realstack >"$root/etc/hostname"
: >"$root/etc/machine-id"   # systemd gives each boot of a copy its own on first boot
rm -f "$root/var/cache/apt/archives/"*.deb
echo "$mirror" >"$tmp/root/.mirror"
touch "$tmp/root/.complete"
mv "$tmp/root" "$dest"
echo "$dest"
