#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Fetches the upstream Linux 7.1.x tarball that Debian's `linux` source package
# ships (linux_<ver>.orig.tar.xz) with a PRIVATE apt setup: our own sources list
# (one deb-src line for sid on the mirror host the machine's apt already uses)
# and our own list directory. The machine's apt configuration and lists are
# never touched.
#
#   fetch-kernel.sh [CACHE_DIR]    prints the path of the tarball on stdout
#
# CACHE_DIR defaults to /var/cache/lu-vfiod-test/kernel. A tarball already
# there is reused. Exit 77 (meson's "skip") when no tarball can be had.
set -euo pipefail

cache=${1:-${LU_VFIOD_KERNEL_CACHE:-/var/cache/lu-vfiod-test/kernel}}
series=${LU_VFIOD_KERNEL_SERIES:-7.1}
mkdir -p "$cache/src"

log() { echo "fetch-kernel: $*" >&2; }

existing=$(ls -1 "$cache/src"/linux_"$series".*.orig.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "$existing" ] && [ -s "$existing" ]; then
        echo "$existing"
        exit 0
fi

command -v apt-get >/dev/null || { log "no apt-get: cannot fetch the kernel tarball"; exit 77; }

# The mirror host: the first http(s) deb line the machine's apt uses for Debian.
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
                /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
         grep -oE 'https?://[^ ]+' | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc"
cat >"$apt/etc/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main
SRC
opts=(-o Dir::Etc::SourceList="$apt/etc/sources.list"
      -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$apt/lists"
      -o Dir::Cache="$apt/cache"
      -o Dir::Cache::Archives="$apt/archives"
      -o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache=""
      -o APT::Get::List-Cleanup=0
      -o Acquire::Retries=3)
mkdir -p "$apt/cache"

log "updating private apt lists for $mirror sid (deb-src)"
if ! apt-get "${opts[@]}" -qq update >"$apt/update.log" 2>&1; then
        log "apt-get update failed (see $apt/update.log)"
        exit 77
fi

# Newest first: every version of `linux` in the series that the lists know.
mapfile -t versions < <(apt-cache "${opts[@]}" showsrc linux 2>/dev/null |
        awk '/^Version:/ {print $2}' | grep -E "^$series\." | sort -Vr | uniq)
if [ ${#versions[@]} -eq 0 ]; then
        log "no linux $series.x source in $mirror sid"
        exit 77
fi

cd "$cache/src"
for v in "${versions[@]}"; do
        up=${v%-*}
        log "trying linux=$v (orig tarball linux_$up.orig.tar.xz)"
        # --download-only: the .dsc or the debian.tar may be missing on the
        # mirror for some versions; what we need is the orig tarball, which
        # apt fetches first. A failure after it arrived is fine.
        apt-get "${opts[@]}" -qq source --download-only "linux=$v" >"$apt/source-$v.log" 2>&1 || true
        if [ -s "linux_$up.orig.tar.xz" ] && xz -t "linux_$up.orig.tar.xz" 2>/dev/null; then
                rm -f linux_*.dsc linux_*.debian.tar.xz
                echo "$cache/src/linux_$up.orig.tar.xz"
                exit 0
        fi
        rm -f "linux_$up.orig.tar.xz"
done
log "no orig tarball of linux $series.x could be downloaded (logs in $apt)"
exit 77
