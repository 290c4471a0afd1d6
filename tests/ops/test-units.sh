#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shipped systemd files are valid and hardened:
#   systemd-analyze verify on lu-vfiod.service + lu-vfiod.socket,
#   systemd-analyze security exposure <= 3.0 with /dev/liveupdate and VFIO still allowed,
#   tmpfiles.d creates the directories with the right modes, XML files are well-formed.
# usage: test-units.sh SYSTEMD_SRC_DIR LU_VFIOD_BINARY
set -euo pipefail
src=$(readlink -f "$1") daemon=$(readlink -f "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok()  { n=$((n + 1)); echo "ok $n - $*"; }
bad() { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }

mkdir "$tmp/units"
sed -e "s|@sbindir@|$(dirname "$daemon")|g" -e "s|@docdir@|/usr/share/doc/lu-vfiod|g" \
        "$src/lu-vfiod.service.in" > "$tmp/units/lu-vfiod.service"
cp "$src/lu-vfiod.socket" "$tmp/units/"
grep -q "^ExecStart=$(dirname "$daemon")/lu-vfiod$" "$tmp/units/lu-vfiod.service" || bad "ExecStart substituted"

if out=$(cd "$tmp/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./lu-vfiod.service ./lu-vfiod.socket 2>&1) \
   && [ -z "$out" ]; then
        ok "systemd-analyze verify: no complaints"
else
        printf '%s\n' "$out" | sed "s/^/# /"
        bad "systemd-analyze verify"
fi

sec=$(systemd-analyze security --offline=yes "$tmp/units/lu-vfiod.service" 2>&1) || true
level=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for lu-vfiod.service: \([0-9.]*\).*/\1/p')
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }'; then
        ok "systemd-analyze security exposure $level <= 3.0"
else
        printf '%s\n' "$sec" | sed "s/^/# /"
        bad "systemd-analyze security exposure '$level' > 3.0"
fi
if systemd-analyze security --offline=yes --threshold=30 "$tmp/units/lu-vfiod.service" >/dev/null 2>&1; then
        ok "systemd-analyze security --threshold=30 passes"
else
        bad "systemd-analyze security --threshold=30"
fi
# Hardening must not lock the daemon out of what it exists for.
for want in "DevicePolicy=closed" "DeviceAllow=/dev/liveupdate rw" "DeviceAllow=char-vfio rw" \
            "CapabilityBoundingSet=CAP_SYS_BOOT" "Type=notify" "FileDescriptorStoreMax=" "WatchdogSec=" \
            "Restart=on-failure"; do
        grep -q "^$want" "$tmp/units/lu-vfiod.service" && ok "service has $want" || bad "service lacks $want"
done
printf '%s\n' "$sec" | grep -q "DeviceAllow=.*char-vfio:rw.*/dev/liveupdate:rw" \
        && ok "security report shows /dev/liveupdate and VFIO allowed" || bad "device ACL in the security report"
# The syscall filter must leave kexec_file_load and reboot callable.
printf '%s\n' "$sec" | grep -q "kexec_file_load is allowed" \
        && ok "kexec_file_load allowed by the syscall filter" || bad "kexec_file_load filtered"

mkdir "$tmp/root"
if systemd-tmpfiles --create --root="$tmp/root" "$src/lu-vfiod.tmpfiles" >/dev/null 2>&1 &&
   [ "$(stat -c %a "$tmp/root/run/lu-vfiod")" = 755 ] && [ "$(stat -c %a "$tmp/root/var/lib/lu-vfiod")" = 700 ]; then
        ok "tmpfiles.d creates /run/lu-vfiod 0755 and /var/lib/lu-vfiod 0700"
else
        bad "tmpfiles.d"
fi

if command -v xmllint >/dev/null; then
        for f in org.luvfiod.LiveUpdate1.conf org.luvfiod.LiveUpdate1.policy; do
                xmllint --noout "$src/$f" && ok "$f well-formed" || bad "$f malformed"
        done
fi
grep -q "^SystemdService=lu-vfiod.service$" "$src/org.luvfiod.LiveUpdate1.service.in" \
        && ok "D-Bus activation hands over to lu-vfiod.service" || bad "activation file"
for a in prepare commit; do
        grep -q "action id=\"org.luvfiod.LiveUpdate1.$a\"" "$src/org.luvfiod.LiveUpdate1.policy" \
                && ok "polkit action org.luvfiod.LiveUpdate1.$a" || bad "polkit action $a"
done
echo "1..$n"
exit $fail
