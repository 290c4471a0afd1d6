#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon's polkit path against the real polkitd (Debian's, /usr/lib/polkit-1/polkitd) on
# the test's private system bus, so that the sanitizer build runs it too (luo-emu's COMMAND):
#   test-polkit.sh LU_VFIOD EXAMPLE_VMM BUS_POLICY POLKIT_ACTIONS LU_VFIOCTL   ($OPS_DIR)
# polkitd runs in a mount namespace of its own, where the test's rules directory, an empty one
# and the shipped action file are bind-mounted over /etc/polkit-1/rules.d,
# /usr/share/polkit-1/rules.d and /usr/share/polkit-1/actions: the host's polkit configuration is
# neither used nor touched. The rules log every check they see
# (polkit.log), so the test knows what the daemon asked. Interactive authorization with an agent
# that a person answers is shown on the real stack (tests/realstack/test-dbus-polkit.sh).
set -uo pipefail
daemon=$1 vmm=$2 policy=$3 actions=$4 ctl=$5
dir=${OPS_DIR:?}
. "$(dirname "$0")/dbus-lib.sh"
POLKITD=/usr/lib/polkit-1/polkitd

[ -x "$POLKITD" ] || { echo "1..0 # SKIP polkitd is not installed ($POLKITD)"; exit 77; }
pkuser=$(stat -c %U /etc/polkit-1/rules.d 2>/dev/null) || pkuser=polkitd
getent passwd "$pkuser" >/dev/null || { echo "1..0 # SKIP no polkitd user ($pkuser)"; exit 77; }

rm -rf "$dir" && mkdir -p "$dir" || bail "cannot create $dir"
chmod 755 "$dir"
: > "$dir/lu-vfiod.conf"
ctl=$(stage_for_nobody "$ctl") || bail "cannot stage lu-vfioctl for uid nobody"
mkdir -p "$dir/rules.d" "$dir/share-rules.d" "$dir/actions"
install -m 644 "$actions" "$dir/actions/"
# Rules: log what is asked; nobody needs an administrator for .prepare (a challenge: no agent
# here, so never granted) and is refused .commit outright.
cat > "$dir/rules.d/50-test.rules" <<'EOT'
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.luvfiod.") != 0)
                return polkit.Result.NOT_HANDLED;
        polkit.log("CHECK " + action.id + " user=" + subject.user + " pid=" + subject.pid);
        if (action.id == "org.luvfiod.LiveUpdate1.commit")
                return polkit.Result.NO;
        return polkit.Result.NOT_HANDLED;
});
EOT
cat > "$dir/extra-policy.conf" <<EOT
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="$pkuser"><allow own="org.freedesktop.PolicyKit1"/></policy>
  <policy context="default"><allow send_destination="org.freedesktop.PolicyKit1"/></policy>
</busconfig>
EOT
bus_start "$dir" "$policy"
pklog=$dir/polkitd.log
unshare -m --propagation private sh -c '
        mount --bind "$1/rules.d" /etc/polkit-1/rules.d &&
        mount --bind "$1/share-rules.d" /usr/share/polkit-1/rules.d &&
        mount --bind "$1/actions" /usr/share/polkit-1/actions &&
        exec "$2"' sh "$dir" "$POLKITD" >"$pklog" 2>&1 &
pkpid=$!
pk_ready() { busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1; }
for _ in $(seq 200); do pk_ready && break; sleep 0.05; done
check "the real polkitd owns org.freedesktop.PolicyKit1 on the test bus" pk_ready
check "... with the test's rules loaded" grep -q "Finished loading, compiling and executing 1 rules" "$pklog"
"$daemon" --vmm-socket="$dir/vmm.sock" --control-socket="$dir/control.sock" --state-dir="$dir/state" \
        --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon.log" &
dpid=$!
wait_name || bail "lu-vfiod did not take $DEST"
checks() { grep -c "CHECK org.luvfiod" "$pklog"; }
# polkit.log lines reach polkitd's output asynchronously
wait_checks() { for _ in $(seq 100); do [ "$(checks)" -ge "$1" ] && return 0; sleep 0.05; done; return 1; }

"$ctl" cancel >/dev/null 2>&1; st=$?
check "root: Cancel reaches the core (WrongState, exit $st = 4)" test $st = 4
check "root: polkit never asked" test "$(checks)" = 0

as_nobody "$ctl" --no-ask-password cancel 2>"$dir/err1"; st=$?
check "nobody without interaction: exit $st = 3" test $st = 3
out=$(as_nobody "$ctl" --json --no-ask-password cancel 2>/dev/null)
check "... InteractiveAuthorizationRequired (the shipped policy wants an administrator)" \
        grep -q '"error":"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"' <<<"$out"
wait_checks 2
check "polkitd was asked about .prepare for user nobody" \
        grep -qE "CHECK org.luvfiod.LiveUpdate1.prepare user=nobody pid=[0-9]+" "$pklog"

as_nobody "$ctl" cancel 2>"$dir/err2"; st=$?
check "nobody allowing interaction, but no agent to ask through: refused (exit $st = 3)" test $st = 3
note "$(cat "$dir/err2")"

as_nobody "$ctl" commit >/dev/null 2>"$dir/err3"; st=$?
check "nobody: Commit refused by a rule (the .commit action), exit $st = 3" test $st = 3
check "... as AccessDenied, not a challenge" grep -q "not authorized\|AccessDenied\|denied" "$dir/err3"
note "$(cat "$dir/err3")"
wait_checks 4
check "polkitd was asked about .commit" grep -q "CHECK org.luvfiod.LiveUpdate1.commit user=nobody" "$pklog"
check "State untouched" test "$(prop State)" = idle

# A rule that grants nobody .prepare; polkitd reloads its rules when the directory changes.
cat > "$dir/rules.d/40-grant.rules" <<'EOT'
polkit.addRule(function(action, subject) {
        if (action.id == "org.luvfiod.LiveUpdate1.prepare" && subject.user == "nobody")
                return polkit.Result.YES;
});
EOT
reloaded() { grep -q "Finished loading, compiling and executing 2 rules" "$pklog"; }
for _ in $(seq 200); do reloaded && break; sleep 0.05; done
check "polkitd reloaded its rules (2 files)" reloaded
as_nobody "$ctl" --no-ask-password cancel >/dev/null 2>&1; st=$?
check "nobody, granted .prepare by a rule: authorized, Cancel reaches the core (exit $st = 4)" test $st = 4
as_nobody "$ctl" commit >/dev/null 2>&1; st=$?
check "... but still refused .commit (exit $st = 3)" test $st = 3

kill "$dpid"; wait "$dpid" 2>/dev/null; st=$?
check "the daemon exits 0 on SIGTERM (status $st)" test $st = 0
kill "$pkpid" 2>/dev/null; wait "$pkpid" 2>/dev/null
kill "$BUS_PID" 2>/dev/null
echo "1..$n"
exit $fail
