#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `meson install` with the default prefix puts every file where the host's systemd,
# dbus-daemon, polkitd, man and the daemon itself look (docs/operations.md, "Installed
# files"); the installed units pass `systemd-analyze verify` with their man pages; the
# daemon's compiled-in configuration path is the installed one.
# usage: test-meson-install.sh BUILD_ROOT
set -euo pipefail
build=$(readlink -f "$1")
prefix=$(meson introspect --buildoptions "$build" | python3 -c \
        'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
if [ "$prefix" != /usr ]; then
        echo "1..0 # SKIP $build is configured with prefix=$prefix, not the default /usr (set up a new build dir)"
        exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok()  { n=$((n + 1)); echo "ok $n - $*"; }
bad() { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }

if ! meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1; then
        sed 's/^/# /' "$tmp/install.log"
        bad "meson install"
        echo "1..$n"
        exit 1
fi
r=$tmp/root
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)
tmpfilesdir=$(pkg-config --variable=tmpfilesdir systemd 2>/dev/null || echo /usr/lib/tmpfiles.d)
libdir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "")
libdir=${libdir%/}
for f in /usr/sbin/lu-vfiod /usr/bin/lu-vfioctl /etc/lu-vfiod/lu-vfiod.conf \
         "$unitdir/lu-vfiod.service" "$unitdir/lu-vfiod.socket" "$tmpfilesdir/lu-vfiod.conf" \
         /usr/share/dbus-1/system.d/org.luvfiod.LiveUpdate1.conf \
         /usr/share/dbus-1/system-services/org.luvfiod.LiveUpdate1.service \
         /usr/share/polkit-1/actions/org.luvfiod.LiveUpdate1.policy \
         /usr/lib/systemd/catalog/lu-vfiod.catalog \
         /usr/share/man/man1/lu-vfioctl.1 /usr/share/man/man8/lu-vfiod.8 \
         /usr/share/doc/lu-vfiod/operations.md /usr/share/doc/lu-vfiod/configuration.md \
         /usr/include/lu-client.h "$libdir/pkgconfig/lu-vfio-client.pc" \
         "$libdir/liblu-vfio-client.so" "$libdir/liblu-vfio-client.so.0"; do
        [ -e "$r$f" ] && ok "installs $f" || bad "does not install $f"
done
stray=$(cd "$r" && find . \( -path ./usr/local -o -path ./usr/local/\* \) -print | head -3)
[ -z "$stray" ] && ok "nothing under /usr/local" || bad "files under /usr/local: $stray"

if out=$(MANPATH=$r/usr/share/man SYSTEMD_LOG_LEVEL=notice \
         systemd-analyze verify --root="$r" lu-vfiod.service lu-vfiod.socket 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify on the installed units: no complaints"
else
        printf '%s\n' "$out" | sed 's/^/# /'
        bad "systemd-analyze verify on the installed units"
fi
doc=$(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' "$r$unitdir/lu-vfiod.service")
[ -n "$doc" ] && [ -f "$r$doc" ] && ok "the unit's Documentation=file://$doc is installed" || bad "Documentation=file://$doc"
"$r/usr/sbin/lu-vfiod" --help | grep -q "default /etc/lu-vfiod/lu-vfiod.conf)" \
        && ok "lu-vfiod --help: default configuration /etc/lu-vfiod/lu-vfiod.conf" || bad "lu-vfiod --help config path"
cflags=$(PKG_CONFIG_SYSROOT_DIR=$r PKG_CONFIG_LIBDIR=$r$libdir/pkgconfig pkg-config --cflags --libs lu-vfio-client)
printf '#include <lu-client.h>\nint main(void) { return lu_client_connect == 0; }\n' > "$tmp/vmm.c"
# shellcheck disable=SC2086
if cc -o "$tmp/vmm" "$tmp/vmm.c" $cflags -Wl,-rpath-link,"$r$libdir" 2>"$tmp/cc.log"; then
        ok "a VMM builds against the installed header and library (pkg-config lu-vfio-client)"
else
        sed 's/^/# /' "$tmp/cc.log"
        bad "build against lu-vfio-client.pc"
fi
echo "1..$n"
exit $fail
