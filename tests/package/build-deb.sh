#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian packages (debian/) with `dpkg-buildpackage -us -uc -b` from a copy of
# the source tree, so the checkout stays clean, and puts the .deb files, the .buildinfo
# and .changes into OUTDIR. A tree whose files hash the same as the last build's is not
# built again (OUTDIR/source.sha256).
# usage: build-deb.sh SRCDIR OUTDIR
set -euo pipefail
src=$(readlink -f "$1") out=$2
mkdir -p "$out"
out=$(readlink -f "$out")

# The files of the tree: tracked ones and new ones not ignored (not build dirs).
list_files() {
        if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
                git -C "$src" ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
                        [ -e "$src/$f" ] && printf '%s\0' "$f"
                done
        else
                (cd "$src" && find . -path ./.git -prune -o -path './build*' -prune -o -type f -print0)
        fi
}

hash=$(cd "$src" && list_files | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -f "$out/source.sha256" ] && [ "$(cat "$out/source.sha256")" = "$hash" ] && ls "$out"/*.deb >/dev/null 2>&1; then
        echo "build-deb: packages in $out are up to date with the source ($hash)"
        exit 0
fi

tmp=$(mktemp -d /tmp/lu-vfiod-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/lu-vfiod"
(cd "$src" && list_files | tar --null -T - -cf -) | tar -xf - -C "$tmp/lu-vfiod"

log="$out/dpkg-buildpackage.log"
echo "build-deb: dpkg-buildpackage -us -uc -b in $tmp (log: $log)"
if ! (cd "$tmp/lu-vfiod" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "build-deb: dpkg-buildpackage failed, see $log" >&2
        exit 1
fi
rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.buildinfo "$out"/*.changes "$out/source.sha256"
mv "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$out"/
echo "$hash" > "$out/source.sha256"
echo "build-deb: built $(cd "$out" && echo *.deb)"
