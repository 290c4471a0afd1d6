#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The built Debian packages (tests/package/build-deb.sh, run by ./run.sh test) hold what
# an operator and a VMM author need and nothing else, their maintainer scripts do what
# debian/README.source says (socket enabled and started on install; an upgrade restarts
# a running daemon without stopping it first and never touches the socket; removal stops
# both; purge removes /var/lib/lu-vfiod), the unpacked units pass `systemd-analyze
# verify` with their man pages, and lintian finds no error or warning.
# usage: test-package.sh VERSION DEBDIR      (DEBDIR: $LU_VFIOD_DEB_DIR wins)
set -euo pipefail
version=$1 debdir=${LU_VFIOD_DEB_DIR:-$2}
arch=$(dpkg --print-architecture) multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
daemon_deb=$debdir/lu-vfiod_${version}_$arch.deb
lib_deb=$debdir/liblu-vfio-client0_${version}_$arch.deb
dev_deb=$debdir/liblu-vfio-client-dev_${version}_$arch.deb
for d in "$daemon_deb" "$lib_deb" "$dev_deb"; do
        if [ ! -f "$d" ]; then
                echo "1..0 # SKIP no $d: build the packages first (tests/package/build-deb.sh SRCDIR $debdir; ./run.sh test does)"
                exit 0
        fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
bad()  { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }
skip() { n=$((n + 1)); echo "ok $n - # SKIP $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# contents DEB: files and symlinks (no directories), one path a line, sorted.
contents() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|' | sort; }
same_list() {   # NAME EXPECTED ACTUAL
        if [ "$2" = "$3" ]; then ok "$1"; else
                bad "$1"; diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/# /' || true; fi
}

same_list "lu-vfiod holds exactly the daemon, tool, units, bus/polkit files, catalog, conf, man pages, docs" "$(sort <<EOF2
/etc/lu-vfiod/lu-vfiod.conf
/lib/systemd/system/lu-vfiod.service
/lib/systemd/system/lu-vfiod.socket
/usr/bin/lu-vfioctl
/usr/lib/systemd/catalog/lu-vfiod.catalog
/usr/lib/tmpfiles.d/lu-vfiod.conf
/usr/sbin/lu-vfiod
/usr/share/dbus-1/system-services/org.luvfiod.LiveUpdate1.service
/usr/share/dbus-1/system.d/org.luvfiod.LiveUpdate1.conf
/usr/share/doc/lu-vfiod/README.md
/usr/share/doc/lu-vfiod/changelog.gz
/usr/share/doc/lu-vfiod/configuration.md
/usr/share/doc/lu-vfiod/copyright
/usr/share/doc/lu-vfiod/dbus.md
/usr/share/doc/lu-vfiod/emulator.md
/usr/share/doc/lu-vfiod/operations.md
/usr/share/doc/lu-vfiod/performance.md
/usr/share/doc/lu-vfiod/protocol.md
/usr/share/doc/lu-vfiod/reliability.md
/usr/share/man/man1/lu-vfioctl.1.gz
/usr/share/man/man8/lu-vfiod.8.gz
/usr/share/polkit-1/actions/org.luvfiod.LiveUpdate1.policy
EOF2
)" "$(contents "$daemon_deb")"
same_list "liblu-vfio-client0 holds the shared library" "$(sort <<EOF2
/usr/lib/$multiarch/liblu-vfio-client.so.0
/usr/lib/$multiarch/liblu-vfio-client.so.0.1.0
/usr/share/doc/liblu-vfio-client0/changelog.gz
/usr/share/doc/liblu-vfio-client0/copyright
EOF2
)" "$(contents "$lib_deb")"
same_list "liblu-vfio-client-dev holds the header, pkg-config file and .so link" "$(sort <<EOF2
/usr/include/lu-client.h
/usr/lib/$multiarch/liblu-vfio-client.so
/usr/lib/$multiarch/pkgconfig/lu-vfio-client.pc
/usr/share/doc/liblu-vfio-client-dev/changelog.gz
/usr/share/doc/liblu-vfio-client-dev/copyright
EOF2
)" "$(contents "$dev_deb")"

dpkg-deb -e "$daemon_deb" "$tmp/ctl"
check "the configuration file is a conffile" grep -qx /etc/lu-vfiod/lu-vfiod.conf "$tmp/ctl/conffiles"
check "liblu-vfio-client-dev depends on liblu-vfio-client0 of the same version" \
        sh -c "dpkg-deb -f '$dev_deb' Depends | grep -q 'liblu-vfio-client0 (= $version)'"
dpkg-deb -x "$lib_deb" "$tmp/lib"
check "the library's soname is liblu-vfio-client.so.0" \
        sh -c "objdump -p '$tmp/lib/usr/lib/$multiarch/liblu-vfio-client.so.0' | grep -q 'SONAME *liblu-vfio-client.so.0$'"
dpkg-deb -e "$lib_deb" "$tmp/libctl"
check "liblu-vfio-client0 has a symbols file listing lu_client_connect" grep -q "^ lu_client_connect@Base" "$tmp/libctl/symbols"

# The packaged files, unpacked: they must work where they are installed.
dpkg-deb -x "$daemon_deb" "$tmp/root"
r=$tmp/root
check "the unit runs /usr/sbin/lu-vfiod" grep -qx "ExecStart=/usr/sbin/lu-vfiod" "$r/lib/systemd/system/lu-vfiod.service"
doc=$(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' "$r/lib/systemd/system/lu-vfiod.service")
check "the unit's Documentation=file://$doc is in the package" test -n "$doc" -a -f "$r$doc"
check "the D-Bus activation file hands over to lu-vfiod.service" \
        grep -qx "SystemdService=lu-vfiod.service" "$r/usr/share/dbus-1/system-services/org.luvfiod.LiveUpdate1.service"
if out=$(MANPATH=$r/usr/share/man SYSTEMD_LOG_LEVEL=notice \
         systemd-analyze verify --root="$r" lu-vfiod.service lu-vfiod.socket 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify on the installed units (man pages and ExecStart found): no complaints"
else
        printf '%s\n' "$out" | sed 's/^/# /'
        bad "systemd-analyze verify on the installed units"
fi
check "lu-vfiod --help names the packaged configuration file" \
        sh -c "'$r/usr/sbin/lu-vfiod' --help | grep -q 'default /etc/lu-vfiod/lu-vfiod.conf)'"

# The maintainer scripts, run for real in a private mount namespace with tmpfs over /run
# (so /run/systemd/system says "systemd runs") and /var/lib, against stand-ins for
# systemctl, deb-systemd-invoke, deb-systemd-helper and systemd-tmpfiles that record their
# arguments (no systemd runs here; the real upgrade runs in the real-systemd test machine).
mkdir "$tmp/stub"
for c in systemctl deb-systemd-invoke deb-systemd-helper systemd-tmpfiles; do
        printf '#!/bin/sh\necho "%s $*" >> "$STUB_LOG"\nexit 0\n' "$c" > "$tmp/stub/$c"
        chmod +x "$tmp/stub/$c"
done
# script NAME ARGS...: runs the maintainer script, prints what it asked of systemd.
script() {
        local name=$1; shift
        : > "$tmp/log"
        STUB_LOG=$tmp/log PATH=$tmp/stub:$PATH unshare --mount --propagation private sh -c '
                set -e
                mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system
                mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/lu-vfiod && echo x > /var/lib/lu-vfiod/registry
                sh "$@"
                if [ -e /var/lib/lu-vfiod ]; then echo "state-dir-kept" >> "$STUB_LOG"; fi' sh "$tmp/ctl/$name" "$@" \
                || echo "script-failed $?" >> "$tmp/log"
        cat "$tmp/log"
}
if [ "$(id -u)" -ne 0 ] || ! unshare --mount true 2>/dev/null; then
        skip "maintainer scripts: need root and mount namespaces"
else
        log=$(script postinst configure)
        printf '%s\n' "$log" | sed 's/^/# install: /'
        check "install: enables lu-vfiod.socket" grep -qx "deb-systemd-helper enable lu-vfiod.socket" <<<"$log"
        check "install: enables lu-vfiod.service" grep -qx "deb-systemd-helper enable lu-vfiod.service" <<<"$log"
        check "install: starts lu-vfiod.socket" grep -qx "deb-systemd-invoke start lu-vfiod.socket" <<<"$log"
        check "install: does not start the service (activation does)" \
                sh -c '! grep -q "deb-systemd-invoke .*lu-vfiod.service"' <<<"$log"
        check "install: creates the tmpfiles.d directories" grep -qx "systemd-tmpfiles --create lu-vfiod.conf" <<<"$log"
        check "install: the script succeeds" sh -c '! grep -q script-failed' <<<"$log"

        log=$(script prerm upgrade "$version")
        check "upgrade: prerm stops nothing (the daemon keeps its fd store)" \
                sh -c '! grep -q "deb-systemd-invoke stop\|systemctl.* stop"' <<<"$log"
        log=$(script postinst configure 0.0.1)
        printf '%s\n' "$log" | sed 's/^/# upgrade: /'
        check "upgrade: postinst restarts a running daemon (try-restart, through the fd store)" \
                grep -qx "deb-systemd-invoke try-restart lu-vfiod.service" <<<"$log"
        check "upgrade: the socket is neither stopped nor restarted" \
                sh -c '! grep -q "\(stop\|restart\) .*lu-vfiod.socket"' <<<"$log"

        log=$(script prerm remove)
        check "remove: stops lu-vfiod.service" grep -qx "deb-systemd-invoke stop lu-vfiod.service" <<<"$log"
        check "remove: stops lu-vfiod.socket" grep -qx "deb-systemd-invoke stop lu-vfiod.socket" <<<"$log"
        log=$(script postrm remove)
        check "remove: keeps /var/lib/lu-vfiod" grep -qx "state-dir-kept" <<<"$log"
        log=$(script postrm purge)
        check "purge: removes /var/lib/lu-vfiod" sh -c '! grep -q state-dir-kept' <<<"$log"
        check "purge: forgets the units' enablement" grep -qx "deb-systemd-helper purge lu-vfiod.service" <<<"$log"
fi

if command -v lintian >/dev/null; then
        changes=$(ls "$debdir"/lu-vfiod_"${version}"_"$arch".changes)
        if lint=$(lintian --fail-on error,warning --display-level '>=info' "$changes" 2>&1); then
                ok "lintian: no errors, no warnings"
        else
                bad "lintian: errors or warnings"
        fi
        printf '%s\n' "$lint" | grep -v '^running with root' | sed 's/^/# lintian: /'
else
        skip "lintian is not installed (./run.sh installs it)"
fi
echo "1..$n"
exit $fail
